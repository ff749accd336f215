/* What the runtime's parts share: the manager (manager.c: models, budget,
 * keep_alive, the reaper), the runner (runner.c: one thread per loaded
 * model that owns its context) and jobs (job.c: the event channel between
 * a runner and a consumer).
 *
 * Locks, always taken in this order, never the other way round:
 *   job->mu  ->  rt->mu  ->  runner->mu
 * The runner thread holds no lock while it decodes, and holds none when it
 * finishes a job (which takes job->mu, then rt->mu to drop the model ref). */
#ifndef NS_RUNTIME_INTERNAL_H
#define NS_RUNTIME_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "nstack/stop.h"
#include "runtime/json_constraint.h"
#include "runtime/runtime.h"

typedef struct ns_runner ns_runner;

/* ---- the manager ---- */

typedef enum {
    NS_LM_LOADING,   /* a thread is loading it; acquirers of the same file wait */
    NS_LM_READY,     /* loaded: busy (refs > 0) or idle-warm */
    NS_LM_UNLOADING, /* going away: hidden from ps, acquirers wait for it to be gone */
} ns_lm_state;

struct ns_loaded {
    ns_runtime *rt;
    ns_loaded *next; /* rt->models, in load order */
    ns_lm_state state;
    bool removed;         /* unlinked from rt->models; freed once pins is 0 */
    int pins;             /* acquirers waiting on this load: keep the struct alive */
    bool failed;          /* the load failed: status and load_err say why */
    int load_status;
    char load_err[256];
    bool draining;        /* a request with other load options waits to reload it */
    bool unload_requested;/* ns_runtime_unload while busy: unload once idle */
    bool reap_pending;    /* UNLOADING, waiting for the reaper to do it */
    const char *unload_reason;
    ns_loaded *next_victim; /* make_room's list of models to evict */

    ns_model_ref ref;
    ns_load_opts asked;   /* the options of the request that loaded it (0: default) */
    ns_load_opts opts;    /* as loaded, defaults filled in */
    ns_load_opts defaults;/* rt->cfg.defaults when it was created (a profile may change them later) */
    int n_parallel;
    ns_model *model;
    ns_context *ctx;
    ns_chat_template *tmpl;
    char *tmpl_err;
    ns_runner *runner;
    char kv_fingerprint[160]; /* ns_loaded_kv_fingerprint */

    int refs;             /* handles + unfinished jobs */
    int jobs;             /* unfinished jobs */
    int64_t keep_alive_ns;/* < 0 never expires */
    int64_t expires_mono; /* when idle */
    int64_t est_bytes;
    /* Layers the placement planner would put on main_gpu (placement.h's
     * num_gpu count) when num_gpu is auto; an explicit num_gpu as given.
     * Advice only until a GPU backend uses it (issue #10). */
    int planned_gpu_layers;
    int64_t loaded_at_wall;
    uint64_t last_used;   /* rt->clock at the last acquire */
};

struct ns_runtime {
    ns_runtime_config cfg; /* defaults filled in */
    pthread_mutex_t mu;
    pthread_cond_t cv;        /* model state and reference changes (monotonic clock) */
    pthread_cond_t reaper_cv; /* wakes the reaper (monotonic clock) */
    pthread_t reaper;
    bool reaper_started, reaper_stop;
    ns_loaded *models;
    bool shutting_down;
    uint64_t clock;
};

/* A job takes a reference on its model: 503 "server is shutting down" when
 * the runtime no longer admits work. */
int ns_lm_job_ref(ns_loaded *lm, char *err, size_t errlen);
/* The runner (or a cancelled queued job) is done with the job's model. */
void ns_lm_job_done(ns_loaded *lm);
ns_events *ns_lm_events(const ns_loaded *lm);
int64_t ns_lm_request_timeout(const ns_loaded *lm);

/* ---- jobs ---- */

typedef enum { NS_JOB_QUEUED, NS_JOB_TAKEN } ns_job_state;

struct ns_job {
    pthread_mutex_t mu;
    pthread_cond_t cv;      /* monotonic clock */
    int refs;               /* the consumer's and the runner's; under mu */
    bool finished;          /* DONE is (being) pushed; lm no longer used */
    bool done_returned;
    struct ns_job_event_node *head, *tail;
    atomic_bool cancel;

    ns_loaded *lm;          /* valid until finished */
    ns_job_state state;     /* under the runner's mu */
    ns_job *qnext;

    int32_t *prompt;
    int n_prompt;
    ns_sampler *sampler;
    ns_stop *stop;
    ns_json_constraint *json;
    long long n_predict;
    int top_logprobs;
    bool logprobs;
    char request_id[48];
    char session[65];       /* "" when none */
    bool context_shift;
    int n_keep;
    bool wake_on_done;

    /* progress, owned by whoever runs the job (the runner thread) */
    int32_t *toks;          /* prompt + kept generated tokens */
    int n_toks, cap_toks;
    int n_gen, n_cached, n_shifts;
    bool prev_bos;          /* the last token before the first generated one is BOS */
    int64_t t_submit, t_admit, t_first;
};

/* Pushes a TOKEN event (text copied). */
void ns_job_push_token(ns_job *j, int32_t token, const char *text, size_t len, const ns_token_logprob *lp, int n_lp);
/* Ends the job: drops the model reference, pushes DONE with these stats
 * (context filled from j->toks), and drops the runner's reference. Called
 * with no lock held, by the one thread that took the job out of the queue. */
/* Ends the job at monotonic time end: its DONE event carries the stats. */
void ns_job_finish_at(ns_job *j, ns_finish finish, const char *error, int64_t end);
/* The durations of the stats (queued, prompt eval, eval, total) of a job
 * ending at end: the responses' timing fields and the profiler's records
 * come from this one computation, so they agree exactly. */
void ns_job_times(const ns_job *j, int64_t end, ns_job_stats *st);
void ns_job_unref(ns_job *j);
int ns_job_toks_push(ns_job *j, int32_t tok);

/* ---- the runner ---- */

ns_runner *ns_runner_start(ns_loaded *lm, char *err, size_t errlen);
/* Ends the thread (there must be no jobs left) and frees the runner. */
void ns_runner_stop(ns_runner *r);
/* 0, or 503 with err when the queue is full. */
int ns_runner_enqueue(ns_runner *r, ns_job *j, char *err, size_t errlen);
/* Takes j out of the queue when it is still there: true, and the caller
 * now owns it (must finish it). Called with j->mu held. */
bool ns_runner_dequeue(ns_runner *r, ns_job *j);
/* Shutdown: every queued and running job ends CANCELLED. */
void ns_runner_cancel_all(ns_runner *r);
void ns_runner_counts(ns_runner *r, int *active, int *queued);

/* Session KV, run on the runner thread between steps (runtime.h's
 * ns_session_kv_export / import / ns_runtime_session_forget). */
int ns_runner_kv_export(ns_runner *r, const char *session, const int32_t *tokens, int n_tokens, void **kv,
                        size_t *kv_bytes, char *err, size_t errlen);
int ns_runner_kv_import(ns_runner *r, const char *session, const int32_t *tokens, int n_tokens, const void *kv,
                        size_t kv_bytes, char *err, size_t errlen);
int ns_runner_kv_save_with(ns_runner *r, const char *session, const int32_t *tokens, int n_tokens, ns_kv_io_fn io,
                           void *arg, char *err, size_t errlen);
int ns_runner_kv_load_with(ns_runner *r, const char *session, const int32_t *tokens, int n_tokens, ns_kv_io_fn io,
                           void *arg, char *err, size_t errlen);
void ns_runner_forget(ns_runner *r, const char *session);

/* Tests only: hold the runner before its next unit of work (no admission,
 * no step) until released; or pause it once any job has generated n_gen
 * tokens. Shutdown releases a paused runner. */
void ns_runtime_test_pause(ns_loaded *lm, bool paused);
void ns_runtime_test_pause_at(ns_loaded *lm, int n_gen);

#endif
