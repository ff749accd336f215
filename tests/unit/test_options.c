/* Ollama's `options` object and keep_alive: every key's type and range,
 * with the key named in the error. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/options.h"

static int apply(ns_gen_options *o, const char *json, char *err, size_t errlen) {
    cJSON *j = cJSON_Parse(json);
    assert_non_null(j);
    int rc = ns_gen_options_apply(o, j, "options", err, errlen);
    cJSON_Delete(j);
    return rc;
}

static void expect_ok(const char *json, ns_gen_options *o) {
    char err[256] = "";
    int rc = apply(o, json, err, sizeof err);
    if (rc) fprintf(stderr, "%s: %s\n", json, err);
    assert_int_equal(rc, 0);
}

static void expect_bad(const char *json, const char *want) {
    ns_gen_options o;
    ns_gen_options_init(&o);
    char err[256] = "";
    int rc = apply(&o, json, err, sizeof err);
    if (rc == 0 || !strstr(err, want)) fprintf(stderr, "%s: rc %d, err [%s], want [%s]\n", json, rc, err, want);
    assert_int_equal(rc, -1);
    assert_non_null(strstr(err, want));
    ns_gen_options_free(&o);
}

static void test_defaults(void **state) {
    (void)state;
    ns_gen_options o;
    ns_gen_options_init(&o);
    ns_sampler_params d = ns_sampler_defaults();
    assert_true(o.sampling.temperature == d.temperature);
    assert_int_equal(o.sampling.top_k, 40);
    assert_true(o.sampling.repeat_penalty == d.repeat_penalty);
    assert_int_equal(o.n_predict, -1);
    assert_int_equal(o.load.n_ctx, 0);
    assert_int_equal(o.load.num_gpu, -1);
    assert_int_equal(o.n_stops, 0);
    /* no seed given: random, as Ollama's -1 */
    ns_gen_options p;
    ns_gen_options_init(&p);
    assert_true(o.sampling.seed != p.sampling.seed);
    assert_int_equal(ns_gen_options_apply(&o, NULL, "options", NULL, 0), 0);
    ns_gen_options_free(&o);
    ns_gen_options_free(&p);
}

static void test_every_key(void **state) {
    (void)state;
    ns_gen_options o;
    ns_gen_options_init(&o);
    expect_ok("{\"temperature\":0,\"top_k\":10,\"top_p\":0.5,\"min_p\":0.05,\"typical_p\":0.7,\"repeat_last_n\":-1,"
              "\"repeat_penalty\":1.3,\"frequency_penalty\":-0.5,\"presence_penalty\":2,\"mirostat\":2,"
              "\"mirostat_tau\":4.5,\"mirostat_eta\":0.2,\"seed\":42,\"stop\":[\"a\",\"bc\"],\"num_predict\":17,"
              "\"num_ctx\":1024,\"num_batch\":64,\"num_thread\":2,\"num_gpu\":0,\"main_gpu\":1,\"num_keep\":4,"
              "\"use_mmap\":true,\"numa\":false,\"something_new\":\"ignored\"}",
              &o);
    const ns_sampler_params *s = &o.sampling;
    assert_true(s->temperature == 0.0f);
    assert_int_equal(s->top_k, 10);
    assert_true(s->top_p == 0.5f);
    assert_true(s->min_p == 0.05f);
    assert_true(s->typical_p == 0.7f);
    assert_int_equal(s->repeat_last_n, -1);
    assert_true(s->repeat_penalty == 1.3f);
    assert_true(s->frequency_penalty == -0.5f);
    assert_true(s->presence_penalty == 2.0f);
    assert_int_equal(s->mirostat, 2);
    assert_true(s->mirostat_tau == 4.5f);
    assert_true(s->mirostat_eta == 0.2f);
    assert_int_equal(s->seed, 42);
    assert_int_equal(o.n_stops, 2);
    assert_string_equal(o.stops[0], "a");
    assert_string_equal(o.stops[1], "bc");
    assert_int_equal(o.n_predict, 17);
    assert_int_equal(o.load.n_ctx, 1024);
    assert_int_equal(o.load.n_batch, 64);
    assert_int_equal(o.load.n_thread, 2);
    assert_int_equal(o.load.num_gpu, 0);
    assert_int_equal(o.load.main_gpu, 1);
    assert_int_equal(o.load.use_mmap, 1);
    expect_ok("{\"use_mmap\":false}", &o);
    assert_int_equal(o.load.use_mmap, -1);
    /* a second layer over the first (the request over the Modelfile's params):
     * stop replaces, null keeps */
    expect_ok("{\"stop\":\"zz\",\"top_k\":null,\"num_predict\":-2}", &o);
    assert_int_equal(o.n_stops, 1);
    assert_string_equal(o.stops[0], "zz");
    assert_int_equal(o.sampling.top_k, 10);
    assert_int_equal(o.n_predict, -1);
    expect_ok("{\"num_predict\":-1,\"seed\":-1,\"stop\":[]}", &o);
    assert_int_equal(o.n_predict, -1);
    assert_int_equal(o.n_stops, 0);
    expect_ok("{\"seed\":-7}", &o);
    assert_true(o.sampling.seed == (uint64_t)(int64_t)-7);
    expect_ok("{\"temperature\":3.0,\"top_k\":0,\"top_p\":1,\"integral_float\":1}", &o);
    expect_ok("{\"num_ctx\":2048.0}", &o); /* an integral number is an integer */
    assert_int_equal(o.load.n_ctx, 2048);
    ns_gen_options_free(&o);
    ns_gen_options_free(&o); /* twice is fine */
}

static void test_bad_values(void **state) {
    (void)state;
    expect_bad("{\"temperature\":\"hot\"}", "options.temperature must be a number");
    expect_bad("{\"top_p\":1.5}", "options.top_p must be a number in [0, 1]");
    expect_bad("{\"min_p\":-0.1}", "options.min_p must be a number in [0, 1]");
    expect_bad("{\"typical_p\":true}", "options.typical_p must be a number in [0, 1]");
    expect_bad("{\"top_k\":-1}", "options.top_k must be an integer >= 0");
    expect_bad("{\"top_k\":2.5}", "options.top_k must be an integer");
    expect_bad("{\"repeat_last_n\":-2}", "options.repeat_last_n must be an integer >= -1");
    expect_bad("{\"repeat_penalty\":0}", "options.repeat_penalty must be a number > 0");
    expect_bad("{\"frequency_penalty\":3}", "options.frequency_penalty must be a number in [-2, 2]");
    expect_bad("{\"presence_penalty\":-2.5}", "options.presence_penalty must be a number in [-2, 2]");
    expect_bad("{\"mirostat\":3}", "options.mirostat must be an integer in [0, 2]");
    expect_bad("{\"mirostat_tau\":101}", "options.mirostat_tau must be a number in [0, 100]");
    expect_bad("{\"mirostat_eta\":2}", "options.mirostat_eta must be a number in [0, 1]");
    expect_bad("{\"seed\":1.5}", "options.seed must be an integer");
    expect_bad("{\"seed\":\"42\"}", "options.seed must be an integer");
    expect_bad("{\"stop\":5}", "options.stop must be a string or an array of strings");
    expect_bad("{\"stop\":[\"a\",1]}", "options.stop must be a string or an array of strings");
    expect_bad("{\"stop\":[\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\",\"9\",\"10\",\"11\",\"12\",\"13\",\"14\","
               "\"15\",\"16\",\"17\"]}",
               "options.stop has 17 strings; at most 16");
    char big[400];
    memset(big, 'x', 300);
    big[300] = 0;
    char json[512];
    snprintf(json, sizeof json, "{\"stop\":\"%s\"}", big);
    expect_bad(json, "longer than 256 bytes");
    expect_bad("{\"num_predict\":-3}", "options.num_predict must be an integer >= -2");
    expect_bad("{\"num_predict\":1.5}", "options.num_predict must be an integer");
    expect_bad("{\"num_ctx\":-1}", "options.num_ctx must be an integer in [0, 1048576]");
    expect_bad("{\"num_ctx\":\"4096\"}", "options.num_ctx must be an integer");
    expect_bad("{\"num_batch\":1e9}", "options.num_batch must be an integer");
    expect_bad("{\"num_thread\":5000}", "options.num_thread must be an integer in [0, 1024]");
    expect_bad("{\"num_gpu\":-2}", "options.num_gpu must be an integer >= -1");
    expect_bad("{\"main_gpu\":-1}", "options.main_gpu must be an integer");
    expect_bad("{\"use_mmap\":1}", "options.use_mmap must be true or false");
    /* not an object at all */
    ns_gen_options o;
    ns_gen_options_init(&o);
    char err[128];
    cJSON *arr = cJSON_Parse("[1]");
    assert_int_equal(ns_gen_options_apply(&o, arr, "params", err, sizeof err), -1);
    assert_string_equal(err, "params must be an object");
    cJSON_Delete(arr);
    ns_gen_options_free(&o);
}

static int64_t keep_alive(const char *json, int *rc) {
    cJSON *j = json ? cJSON_Parse(json) : NULL;
    if (json) assert_non_null(j);
    int64_t ns = 12345;
    char err[256] = "";
    *rc = ns_parse_keep_alive(j, &ns, err, sizeof err);
    cJSON_Delete(j);
    return ns;
}

static void test_keep_alive(void **state) {
    (void)state;
    int rc;
    assert_true(keep_alive(NULL, &rc) == NS_KEEP_ALIVE_DEFAULT);
    assert_int_equal(rc, 0);
    assert_true(keep_alive("null", &rc) == NS_KEEP_ALIVE_DEFAULT);
    assert_true(keep_alive("\"5m\"", &rc) == 300000000000LL);
    assert_int_equal(rc, 0);
    assert_true(keep_alive("\"1h30m\"", &rc) == 5400000000000LL);
    assert_true(keep_alive("\"300ms\"", &rc) == 300000000LL);
    assert_true(keep_alive("\"0\"", &rc) == 0);
    assert_true(keep_alive("0", &rc) == 0);
    assert_true(keep_alive("10", &rc) == 10000000000LL);
    assert_true(keep_alive("1.5", &rc) == 1500000000LL);
    assert_true(keep_alive("\"120\"", &rc) == 120000000000LL);
    assert_true(keep_alive("-1", &rc) < 0);
    assert_true(keep_alive("\"-1m\"", &rc) < 0);
    assert_int_equal(rc, 0);
    keep_alive("\"soon\"", &rc);
    assert_int_equal(rc, -1);
    keep_alive("true", &rc);
    assert_int_equal(rc, -1);
    keep_alive("[1]", &rc);
    assert_int_equal(rc, -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_every_key),
        cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_keep_alive),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
