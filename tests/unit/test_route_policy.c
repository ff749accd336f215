/* The routing policy (router/policy.c), every rule and its order: force
 * signals before the mode, GAMING and an unreachable mode endpoint before
 * the threshold, the threshold's edge, the regex, fail-soft when big is
 * down, and what happens when small is down. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <string.h>

#include "router/policy.h"

static ns_router_config cfg(void) {
    ns_router_config c;
    memset(&c, 0, sizeof c);
    c.n_upstreams = 2;
    c.small = 0;
    c.big = 1;
    c.token_threshold = 1000;
    return c;
}

static ns_route_input normal(long tokens) {
    ns_route_input in = {.est_tokens = tokens, .mode = NS_NODE_NORMAL, .small_healthy = true, .big_healthy = true};
    return in;
}

static void expect(const ns_route_input *in, int upstream, const char *rule) {
    ns_router_config c = cfg();
    ns_route_decision d;
    ns_route_decide(&c, in, &d);
    if (d.upstream != upstream || strcmp(d.rule, rule) != 0)
        fail_msg("got upstream %d rule %s (%s); expected %d %s", d.upstream, d.rule, d.reason, upstream, rule);
    assert_true(d.reason[0] != '\0');
}

static void test_threshold(void **state) {
    (void)state;
    ns_route_input in = normal(999);
    expect(&in, 0, "below_threshold");
    in.est_tokens = 1000; /* at the threshold: big */
    expect(&in, 1, "threshold");
    in.est_tokens = 0;
    in.regex_match = true;
    expect(&in, 1, "force_regex");
}

static void test_force_signals_beat_the_mode(void **state) {
    (void)state;
    for (int s = 0; s < 3; s++) {
        for (int m = 0; m < 3; m++) {
            ns_route_input in = normal(1);
            in.mode = (ns_node_mode)m;
            in.force_header = s == 0;
            in.force_model = s == 1;
            in.force_tag = s == 2;
            expect(&in, 1, "force_big");
            in.big_healthy = false;
            expect(&in, 0, "fail_soft");
        }
    }
}

static void test_gaming_and_unreachable(void **state) {
    (void)state;
    ns_route_input in = normal(100000);
    in.regex_match = true;
    in.mode = NS_NODE_GAMING;
    expect(&in, 0, "gaming");
    in.mode = NS_NODE_UNREACHABLE;
    expect(&in, 0, "mode_unreachable");
}

static void test_big_down_fails_soft(void **state) {
    (void)state;
    ns_route_input in = normal(5000);
    in.big_healthy = false;
    expect(&in, 0, "fail_soft");
    in.est_tokens = 0;
    in.regex_match = true;
    expect(&in, 0, "fail_soft");
}

static void test_small_down(void **state) {
    (void)state;
    ns_route_input in = normal(1);
    in.small_healthy = false;
    expect(&in, 1, "small_unhealthy"); /* NORMAL: the big node may take it */
    in.mode = NS_NODE_GAMING;
    expect(&in, -1, "no_upstream"); /* never load a gaming machine for a down small one */
    in.mode = NS_NODE_UNREACHABLE;
    expect(&in, -1, "no_upstream");
    in = normal(1);
    in.small_healthy = in.big_healthy = false;
    expect(&in, -1, "no_upstream");
    in.force_header = true; /* forced to big, big down, small down */
    expect(&in, -1, "no_upstream");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_threshold),
        cmocka_unit_test(test_force_signals_beat_the_mode),
        cmocka_unit_test(test_gaming_and_unreachable),
        cmocka_unit_test(test_big_down_fails_soft),
        cmocka_unit_test(test_small_down),
    };
    return cmocka_run_group_tests_name("route_policy", tests, NULL, NULL);
}
