/* The profiler (runtime/profiler.c), its histograms (util/histogram.c) and
 * the Prometheus writer (server/prom.c): records from generation events,
 * per-model totals, averages and peaks, the ring of recent records, bucket
 * edges, and the text format's escaping and number forms. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/profiler.h"
#include "server/prom.h"
#include "util/histogram.h"

static ns_event gen_event(ns_event_kind kind, const char *model, const char *detail) {
    ns_event e;
    memset(&e, 0, sizeof e);
    e.id = 7;
    e.kind = kind;
    e.time_ns = 1700000000000000000LL;
    snprintf(e.model, sizeof e.model, "%s", model);
    snprintf(e.request_id, sizeof e.request_id, "req-1");
    snprintf(e.detail, sizeof e.detail, "%s", detail);
    return e;
}

static ns_gen_record rec(const char *model, int eval_tokens, double eval_ms, double ttft_ms, const char *finish) {
    ns_gen_record g;
    memset(&g, 0, sizeof g);
    snprintf(g.model, sizeof g.model, "%s", model);
    snprintf(g.finish, sizeof g.finish, "%s", finish);
    g.eval_tokens = eval_tokens;
    g.prompt_tokens = 10;
    g.eval_ms = eval_ms;
    g.eval_tps = eval_ms > 0 ? eval_tokens / (eval_ms / 1e3) : 0;
    g.ttft_ms = ttft_ms;
    g.total_ms = ttft_ms + eval_ms;
    g.failed = strcmp(finish, "error") == 0;
    return g;
}

static void test_record_from_event(void **state) {
    (void)state;
    ns_event e = gen_event(NS_EV_GEN_COMPLETED, "m:latest",
                           "{\"prompt_tokens\":12,\"cached_tokens\":4,\"eval_tokens\":30,\"ttft_ms\":15.5,"
                           "\"queued_ms\":1,\"prompt_ms\":14,\"prompt_tokens_per_s\":571.4,\"eval_ms\":300,"
                           "\"total_ms\":316,\"tokens_per_s\":100,\"finish\":\"length\",\"session\":\"s1\"}");
    ns_gen_record g;
    assert_true(ns_gen_record_from_event(&e, &g));
    assert_string_equal(g.model, "m:latest");
    assert_string_equal(g.request_id, "req-1");
    assert_string_equal(g.finish, "length");
    assert_string_equal(g.session, "s1");
    assert_false(g.failed);
    assert_int_equal(g.prompt_tokens, 12);
    assert_int_equal(g.cached_tokens, 4);
    assert_int_equal(g.eval_tokens, 30);
    assert_true(g.ttft_ms == 15.5 && g.prompt_ms == 14 && g.eval_ms == 300 && g.total_ms == 316 && g.eval_tps == 100);

    e = gen_event(NS_EV_GEN_FAILED, "m", "{\"finish\":\"error\",\"error\":\"decode failed\"}");
    assert_true(ns_gen_record_from_event(&e, &g));
    assert_true(g.failed);
    assert_string_equal(g.error, "decode failed");

    e = gen_event(NS_EV_LOAD_COMPLETED, "m", "{}");
    assert_false(ns_gen_record_from_event(&e, &g));
    e = gen_event(NS_EV_GEN_COMPLETED, "m", "not json");
    assert_false(ns_gen_record_from_event(&e, &g));
    e = gen_event(NS_EV_GEN_COMPLETED, "m", "[1,2]");
    assert_false(ns_gen_record_from_event(&e, &g));
}

static void test_totals_averages_peaks(void **state) {
    (void)state;
    ns_profiler *p = ns_profiler_new(0);
    assert_non_null(p);
    ns_gen_record a = rec("a", 100, 1000, 50, "stop");   /* 100 tok/s */
    ns_gen_record b = rec("a", 300, 2000, 150, "length"); /* 150 tok/s */
    ns_gen_record one = rec("a", 1, 0.1, 20, "stop");    /* 10000 tok/s of one token: not a peak */
    ns_gen_record c = rec("b", 0, 0, 0, "error");
    ns_profiler_add(p, &a);
    ns_profiler_add(p, &b);
    ns_profiler_add(p, &one);
    ns_profiler_add(p, &c);
    ns_model_perf *m;
    int n;
    assert_int_equal(ns_profiler_models(p, &m, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(m[0].model, "a");
    assert_int_equal(m[0].requests, 3);
    assert_int_equal(m[0].eval_tokens, 401);
    assert_int_equal(m[0].prompt_tokens, 30);
    assert_true(fabs(ns_model_perf_avg_tps(&m[0]) - 401 / 3.0001) < 1e-6);
    assert_true(m[0].peak_tps == 150);
    assert_true(fabs(ns_model_perf_avg_ttft_ms(&m[0]) - (50 + 150 + 20) / 3.0) < 1e-9);
    assert_string_equal(m[0].finishes[0].name, "stop");
    assert_int_equal(m[0].finishes[0].count, 2);
    assert_string_equal(m[0].finishes[1].name, "length");
    assert_int_equal(m[0].ttft_s.count, 3);
    assert_int_equal(m[0].total_s.count, 3);
    assert_string_equal(m[1].model, "b");
    assert_int_equal(m[1].failed, 1);
    assert_int_equal(m[1].ttft_s.count, 0); /* no token, no time to it */
    assert_true(ns_model_perf_avg_tps(&m[1]) == 0 && ns_model_perf_avg_ttft_ms(&m[1]) == 0);
    free(m);
    ns_profiler_free(p);
}

static void test_recent_ring(void **state) {
    (void)state;
    ns_profiler *p = ns_profiler_new(3);
    for (int i = 0; i < 5; i++) {
        ns_gen_record g = rec(i % 2 ? "odd" : "even", i + 1, 10, 1, "stop");
        ns_profiler_add(p, &g);
    }
    ns_gen_record out[8];
    int n = ns_profiler_recent(p, NULL, out, 8);
    assert_int_equal(n, 3); /* the ring keeps 3: records 5, 4, 3, newest first */
    assert_int_equal(out[0].eval_tokens, 5);
    assert_int_equal(out[1].eval_tokens, 4);
    assert_int_equal(out[2].eval_tokens, 3);
    n = ns_profiler_recent(p, "odd", out, 8);
    assert_int_equal(n, 1);
    assert_int_equal(out[0].eval_tokens, 4);
    assert_int_equal(ns_profiler_recent(p, "", out, 2), 2);
    ns_profiler_free(p);
}

static void test_histogram_edges(void **state) {
    (void)state;
    const double bounds[] = {1, 2, 5};
    ns_histogram h;
    ns_histogram_init(&h, bounds, 3);
    const double v[] = {0.5, 1, 1.5, 2, 5, 6, -1};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) ns_histogram_observe(&h, v[i]);
    assert_int_equal(ns_histogram_cumulative(&h, 0), 3); /* 0.5, 1 (a bound is inclusive), -1 */
    assert_int_equal(ns_histogram_cumulative(&h, 1), 5);
    assert_int_equal(ns_histogram_cumulative(&h, 2), 6);
    assert_int_equal(ns_histogram_cumulative(&h, 3), 7); /* +Inf */
    assert_int_equal(h.count, 7);
    assert_true(h.sum == 15);
    double many[40];
    for (int i = 0; i < 40; i++) many[i] = i;
    ns_histogram_init(&h, many, 40);
    assert_int_equal(h.n_bounds, NS_HIST_MAX_BOUNDS);
}

static void test_prometheus_text(void **state) {
    (void)state;
    ns_buf b = {0};
    ns_prom_labels l;
    ns_prom_labels_init(&l);
    ns_prom_label(&l, "model", "a\"b\\c\nd");
    ns_prom_label(&l, "finish", "stop");
    ns_prom_family(&b, "x_total", "counter", "Things.");
    ns_prom_sample(&b, "x_total", &l, 3);
    ns_prom_sample(&b, "x_total", NULL, 0.25);
    ns_prom_sample(&b, "x_total", NULL, NAN);
    ns_prom_sample(&b, "x_total", NULL, -INFINITY);
    ns_prom_sample(&b, "x_total", NULL, 1e20);
    const double bounds[] = {0.5, 1};
    ns_histogram h;
    ns_histogram_init(&h, bounds, 2);
    ns_histogram_observe(&h, 0.7);
    ns_histogram_observe(&h, 3);
    ns_prom_labels_init(&l);
    ns_prom_label(&l, "route", "/api/x");
    ns_prom_histogram(&b, "lat_seconds", &l, &h);
    ns_prom_histogram(&b, "bare_seconds", NULL, &h);
    const char *want = "# HELP x_total Things.\n# TYPE x_total counter\n"
                       "x_total{model=\"a\\\"b\\\\c\\nd\",finish=\"stop\"} 3\n"
                       "x_total 0.25\nx_total NaN\nx_total -Inf\nx_total 1e+20\n"
                       "lat_seconds_bucket{route=\"/api/x\",le=\"0.5\"} 0\n"
                       "lat_seconds_bucket{route=\"/api/x\",le=\"1\"} 1\n"
                       "lat_seconds_bucket{route=\"/api/x\",le=\"+Inf\"} 2\n"
                       "lat_seconds_sum{route=\"/api/x\"} 3.7\nlat_seconds_count{route=\"/api/x\"} 2\n"
                       "bare_seconds_bucket{le=\"0.5\"} 0\nbare_seconds_bucket{le=\"1\"} 1\n"
                       "bare_seconds_bucket{le=\"+Inf\"} 2\nbare_seconds_sum 3.7\nbare_seconds_count 2\n";
    assert_non_null(b.data);
    assert_string_equal(b.data, want);
    ns_buf_free(&b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_record_from_event),
        cmocka_unit_test(test_totals_averages_peaks),
        cmocka_unit_test(test_recent_ring),
        cmocka_unit_test(test_histogram_edges),
        cmocka_unit_test(test_prometheus_text),
    };
    return cmocka_run_group_tests_name("profiler", tests, NULL, NULL);
}
