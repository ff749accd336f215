/* Workers spin briefly on a generation counter between sections, because a
 * forward pass posts hundreds of sections per token a few microseconds
 * apart, and only then sleep on a condition variable, so an idle pool costs
 * nothing. Tasks are handed out through an atomic counter. */
#include "threadpool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#else
#define cpu_relax() ((void)0)
#endif

/* How long an idle worker spins before sleeping. */
#define SPIN_NS 200000L

struct ns_pool {
    int n_threads;
    pthread_t *workers;
    atomic_uint_fast64_t generation; /* bumped when a section is posted */
    atomic_int pending;              /* workers still inside the section */
    atomic_int sleeping;             /* workers blocked on wake */
    atomic_int shutdown;
    pthread_mutex_t mu;
    pthread_cond_t wake;
    ns_task_fn fn;
    void *arg;
    int n_tasks;
    atomic_int next_task;
};

static long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000000000L + ts.tv_nsec;
}

static void run_tasks(ns_pool *p) {
    for (;;) {
        int t = atomic_fetch_add_explicit(&p->next_task, 1, memory_order_relaxed);
        if (t >= p->n_tasks) break;
        p->fn(p->arg, t, p->n_tasks);
    }
}

/* Returns the new generation, or 0 on shutdown. */
static uint64_t wait_for_section(ns_pool *p, uint64_t seen) {
    long start = now_ns();
    for (unsigned spins = 0;; spins++) {
        uint64_t g = atomic_load(&p->generation);
        if (g != seen) return g;
        if (atomic_load_explicit(&p->shutdown, memory_order_relaxed)) return 0;
        if ((spins & 255) != 255 || now_ns() - start < SPIN_NS) {
            cpu_relax();
            continue;
        }
        /* Sleep. The poster bumps the generation, then looks for sleepers;
         * we announce ourselves, then look at the generation under the
         * mutex the poster takes to signal: one of us sees the other. */
        pthread_mutex_lock(&p->mu);
        atomic_fetch_add(&p->sleeping, 1);
        while (atomic_load(&p->generation) == seen && !atomic_load(&p->shutdown))
            pthread_cond_wait(&p->wake, &p->mu);
        atomic_fetch_sub(&p->sleeping, 1);
        pthread_mutex_unlock(&p->mu);
        start = now_ns();
    }
}

static void *worker_main(void *arg) {
    ns_pool *p = arg;
    uint64_t seen = 0;
    while ((seen = wait_for_section(p, seen)) != 0) {
        run_tasks(p);
        atomic_fetch_sub_explicit(&p->pending, 1, memory_order_release);
    }
    return NULL;
}

ns_pool *ns_pool_new(int n_threads) {
    if (n_threads < 1) n_threads = 1;
    ns_pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->n_threads = 1;
    atomic_init(&p->generation, 0);
    atomic_init(&p->pending, 0);
    atomic_init(&p->sleeping, 0);
    atomic_init(&p->shutdown, 0);
    atomic_init(&p->next_task, 0);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    if (n_threads > 1) {
        p->workers = calloc((size_t)n_threads - 1, sizeof *p->workers);
        if (!p->workers) {
            ns_pool_free(p);
            return NULL;
        }
        for (int i = 0; i < n_threads - 1; i++) {
            if (pthread_create(&p->workers[i], NULL, worker_main, p) != 0) {
                ns_pool_free(p); /* joins the i workers that started */
                return NULL;
            }
            p->n_threads = i + 2;
        }
    }
    return p;
}

void ns_pool_free(ns_pool *p) {
    if (!p) return;
    if (p->workers) {
        pthread_mutex_lock(&p->mu);
        atomic_store(&p->shutdown, 1);
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->mu);
        for (int i = 0; i < p->n_threads - 1; i++) pthread_join(p->workers[i], NULL);
        free(p->workers);
    }
    pthread_cond_destroy(&p->wake);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

int ns_pool_threads(const ns_pool *p) { return p->n_threads; }

void ns_pool_run(ns_pool *p, ns_task_fn fn, void *arg, int n_tasks) {
    if (n_tasks <= 0) return;
    if (p->n_threads == 1 || n_tasks == 1) {
        for (int t = 0; t < n_tasks; t++) fn(arg, t, n_tasks);
        return;
    }
    p->fn = fn;
    p->arg = arg;
    p->n_tasks = n_tasks;
    atomic_store_explicit(&p->next_task, 0, memory_order_relaxed);
    atomic_store_explicit(&p->pending, p->n_threads - 1, memory_order_relaxed);
    atomic_fetch_add(&p->generation, 1); /* publishes the fields above */
    if (atomic_load(&p->sleeping) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->mu);
    }
    run_tasks(p);
    /* a worker that lost its core to another process finishes sooner if we
     * give the core up than if we spin on it */
    for (unsigned spins = 0; atomic_load_explicit(&p->pending, memory_order_acquire) > 0; spins++) {
        if (spins < 4096) cpu_relax();
        else sched_yield();
    }
}

void ns_pool_run_work(ns_pool *p, ns_task_fn fn, void *arg, int n_tasks, long long work) {
    if (work < NS_POOL_MIN_WORK) {
        for (int t = 0; t < n_tasks; t++) fn(arg, t, n_tasks);
        return;
    }
    ns_pool_run(p, fn, arg, n_tasks);
}
