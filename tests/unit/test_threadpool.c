/* The pool runs every task of every section exactly once, with the caller
 * taking part, across both of its waiting modes (spinning between close
 * sections, sleeping after idle gaps). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "engine/threadpool.h"

typedef struct {
    atomic_int *hits;
    atomic_int calls;
} counter;

static void count_task(void *arg, int task, int n_tasks) {
    counter *c = arg;
    assert_true(task >= 0 && task < n_tasks);
    atomic_fetch_add(&c->hits[task], 1);
    atomic_fetch_add(&c->calls, 1);
}

static void run_sections(int n_threads, int n_sections, long gap_ns) {
    ns_pool *p = ns_pool_new(n_threads);
    assert_non_null(p);
    assert_int_equal(ns_pool_threads(p), n_threads);
    atomic_int hits[97];
    for (int s = 0; s < n_sections; s++) {
        int n_tasks = 1 + (s * 7) % 97;
        for (int i = 0; i < 97; i++) atomic_init(&hits[i], 0);
        counter c = {hits, 0};
        ns_pool_run(p, count_task, &c, n_tasks);
        assert_int_equal(atomic_load(&c.calls), n_tasks);
        for (int i = 0; i < n_tasks; i++) assert_int_equal(atomic_load(&hits[i]), 1);
        if (gap_ns) {
            struct timespec ts = {0, gap_ns};
            nanosleep(&ts, NULL);
        }
    }
    ns_pool_free(p);
}

static void test_many_close_sections(void **state) {
    (void)state;
    for (int t = 1; t <= 4; t++) run_sections(t, 2000, 0);
}

static void test_sections_after_idle_gaps(void **state) {
    (void)state;
    /* gaps longer than the spin time make the workers sleep in between */
    run_sections(3, 20, 2 * 1000 * 1000);
}

static void test_zero_tasks_and_create_free(void **state) {
    (void)state;
    for (int i = 0; i < 50; i++) {
        ns_pool *p = ns_pool_new(1 + i % 4);
        assert_non_null(p);
        ns_pool_run(p, count_task, NULL, 0);
        ns_pool_free(p);
    }
    ns_pool *p = ns_pool_new(0); /* clamps to one thread */
    assert_int_equal(ns_pool_threads(p), 1);
    ns_pool_free(p);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_many_close_sections),
        cmocka_unit_test(test_sections_after_idle_gaps),
        cmocka_unit_test(test_zero_tasks_and_create_free),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
