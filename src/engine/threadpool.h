/* A fixed pool of worker threads for the many short parallel sections of a
 * forward pass. The caller's thread takes part in every section, so a pool
 * of n threads starts n-1 workers. */
#ifndef NS_THREADPOOL_H
#define NS_THREADPOOL_H

typedef struct ns_pool ns_pool;

/* fn(arg, task, n_tasks) is called once for every task in [0, n_tasks),
 * spread over the threads. */
typedef void (*ns_task_fn)(void *arg, int task, int n_tasks);

ns_pool *ns_pool_new(int n_threads);
void ns_pool_free(ns_pool *p);
int ns_pool_threads(const ns_pool *p);

/* Runs every task and returns when all have finished. Not reentrant. */
void ns_pool_run(ns_pool *p, ns_task_fn fn, void *arg, int n_tasks);

/* Below this many multiply-adds a section runs on the calling thread alone:
 * handing it to the workers costs more than it saves, and far more when a
 * worker has lost its core to another process (a 260K-parameter model
 * decoded at ~100 tokens/s on 2 threads beside one busy core, ~7000 on 1). */
#define NS_POOL_MIN_WORK (64 * 1024)

/* ns_pool_run for a section of about `work` multiply-adds. */
void ns_pool_run_work(ns_pool *p, ns_task_fn fn, void *arg, int n_tasks, long long work);

#endif
