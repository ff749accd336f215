/* Small shared parts of the control plane: Go-style durations (keep_alive),
 * RFC 3339 times, and the in-process event bus (ordering, ring replay,
 * subscribe/unsubscribe). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runtime/events.h"
#include "util/duration.h"

static void test_duration_parse(void **state) {
    (void)state;
    static const struct {
        const char *in;
        int64_t ns;
    } good[] = {
        {"0", 0},
        {"5m", 300000000000LL},
        {"1h30m", 5400000000000LL},
        {"300ms", 300000000LL},
        {"-1m", -60000000000LL},
        {"-1", -1000000000LL},
        {"300", 300000000000LL},
        {"1.5s", 1500000000LL},
        {"2h45m30.5s", 9930500000000LL},
        {"10us", 10000LL},
        {"7ns", 7LL},
    };
    char err[128];
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        int64_t ns = 12345;
        assert_int_equal(ns_duration_parse(good[i].in, &ns, err, sizeof err), 0);
        assert_int_equal(ns, good[i].ns);
    }
    static const char *bad[] = {"", "5x", "m", "5m3", "abc", "1e999", "--5m", "5 m"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t ns;
        assert_int_equal(ns_duration_parse(bad[i], &ns, err, sizeof err), -1);
        assert_true(strlen(err) > 0);
    }
}

static void test_duration_format(void **state) {
    (void)state;
    char buf[64];
    ns_duration_format(300000000000LL, buf, sizeof buf);
    assert_string_equal(buf, "5m0s");
    ns_duration_format(5400000000000LL, buf, sizeof buf);
    assert_string_equal(buf, "1h30m0s");
    ns_duration_format(300000000LL, buf, sizeof buf);
    assert_string_equal(buf, "300ms");
    ns_duration_format(0, buf, sizeof buf);
    assert_string_equal(buf, "0s");
    ns_duration_format(-60000000000LL, buf, sizeof buf);
    assert_string_equal(buf, "-1m0s");
}

static void test_rfc3339(void **state) {
    (void)state;
    setenv("TZ", "UTC", 1);
    tzset();
    char buf[64];
    ns_time_format_rfc3339(1717512000830000000LL, buf, sizeof buf);
    assert_string_equal(buf, "2024-06-04T14:40:00.83Z");
    ns_time_format_rfc3339(1717512000000000000LL, buf, sizeof buf);
    assert_string_equal(buf, "2024-06-04T14:40:00Z");
}

typedef struct {
    int calls;
    uint64_t last_id;
    char last_model[256];
} counter;

static void count_event(const ns_event *e, void *user) {
    counter *c = user;
    c->calls++;
    c->last_id = e->id;
    snprintf(c->last_model, sizeof c->last_model, "%s", e->model);
}

static void test_events(void **state) {
    (void)state;
    ns_events *b = ns_events_new();
    assert_non_null(b);
    counter c = {0};
    int sub = ns_events_subscribe(b, count_event, &c);
    assert_true(sub > 0);
    ns_events_publish(b, NS_EV_LOAD_STARTED, "demo:latest", NULL, NULL);
    ns_events_publish(b, NS_EV_LOAD_COMPLETED, "demo:latest", "req-1", "{\"ms\":12}");
    assert_int_equal(c.calls, 2);
    assert_int_equal(c.last_id, 2);
    assert_string_equal(c.last_model, "demo:latest");
    ns_events_unsubscribe(b, sub);
    ns_events_publish(b, NS_EV_UNLOADED, "demo:latest", NULL, "{\"reason\":\"expired\"}");
    assert_int_equal(c.calls, 2);

    ns_event out[4];
    int n = ns_events_recent(b, 0, out, 4);
    assert_int_equal(n, 3);
    assert_int_equal(out[0].id, 1);
    assert_string_equal(out[0].detail, "{}");
    assert_string_equal(out[1].detail, "{\"ms\":12}");
    assert_string_equal(out[1].request_id, "req-1");
    assert_string_equal(ns_event_kind_name(out[2].kind), "unloaded");
    n = ns_events_recent(b, 2, out, 4);
    assert_int_equal(n, 1);
    assert_int_equal(out[0].id, 3);

    /* the ring keeps the newest NS_EVENTS_RING */
    for (int i = 0; i < NS_EVENTS_RING + 10; i++) ns_events_publish(b, NS_EV_GEN_STARTED, "m", NULL, NULL);
    ns_event all[NS_EVENTS_RING];
    n = ns_events_recent(b, 0, all, NS_EVENTS_RING);
    assert_int_equal(n, NS_EVENTS_RING);
    assert_int_equal(all[NS_EVENTS_RING - 1].id, 3 + NS_EVENTS_RING + 10);
    assert_int_equal(all[0].id, 3 + 10 + 1);
    ns_events_free(b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_duration_parse),
        cmocka_unit_test(test_duration_format),
        cmocka_unit_test(test_rfc3339),
        cmocka_unit_test(test_events),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
