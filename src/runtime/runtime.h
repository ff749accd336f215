/* The runtime manager: which models are in memory, and the generations
 * running on them.
 *
 * Lifecycle of a model (DESIGN.md §2): load -> active (jobs running) ->
 * idle-warm (loaded, no jobs, until its keep_alive expires) -> unloaded,
 * its memory released. Several models may be loaded at once within
 * max_loaded and a memory budget; to make room, the least recently used
 * idle model is unloaded first.
 *
 * Each loaded model has one ns_context whose KV cache holds num_parallel
 * sequences (slots), and one runner thread that owns that context: it
 * admits queued jobs into free slots in arrival order and advances every
 * active slot in turn (a prompt chunk or one token), checking cancellation
 * between steps. Jobs are the only way to the context.
 *
 * Typical use by a route:
 *   lm = ns_runtime_acquire(rt, "demo", &opts, &load_ns, &status, err, n);
 *   job = ns_job_submit(lm, &params, &status, err, n);
 *   ns_runtime_release(rt, lm, keep_alive_ns);  (the job holds its own ref)
 *   while (ns_job_next(job, &ev, -1) > 0) { ...stream ev...; ns_job_event_clear(&ev); }
 *   ns_job_free(job);
 * The keep_alive countdown starts when the last reference (handle or job)
 * is gone. All functions are thread-safe. */
#ifndef NS_RUNTIME_RUNTIME_H
#define NS_RUNTIME_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nstack/chat.h"
#include "nstack/model.h"
#include "nstack/sampler.h"
#include "events.h"
#include "store.h"

/* Load options (Ollama's options num_ctx, num_batch, num_thread, num_gpu,
 * main_gpu, use_mmap). 0 (or -1 for num_gpu) means "the runtime's default"; a request
 * whose explicit options differ from the loaded model's reloads it once
 * it is idle. */
typedef struct {
    int n_ctx;    /* tokens per slot */
    int n_batch;
    int n_thread;
    int num_gpu;  /* layers on the GPU; -1 auto. CPU-only builds accept and record it. */
    int main_gpu;
    ns_kv_type kv_type;
    int use_mmap; /* 1: map the file; -1: read it into private memory (gguf.h says why) */
} ns_load_opts;

#define NS_KEEP_ALIVE_DEFAULT INT64_MIN /* ns_runtime_release: use the runtime's default */
#define NS_MAX_TOP_LOGPROBS 20

typedef struct {
    ns_store *store;         /* not owned */
    ns_events *events;       /* not owned; may be NULL */
    int max_loaded;          /* 0: NSTACK_MAX_LOADED_MODELS or 3 */
    int64_t mem_budget;      /* bytes (weights + KV) for all loaded models; 0: 90% of
                              * MemAvailable when the runtime starts */
    int num_parallel;        /* slots per model; 0: NSTACK_NUM_PARALLEL or 4 */
    int max_queue;           /* waiting jobs per model beyond the slots; 0: NSTACK_MAX_QUEUE or 512 */
    int64_t keep_alive_ns;   /* default keep_alive; 0: NSTACK_KEEP_ALIVE or 5 min */
    int64_t request_timeout_ns; /* a job running longer is stopped (finish TIMEOUT); 0: none */
    ns_load_opts defaults;   /* 0 fields: n_ctx 4096 (capped by the model's training context),
                              * n_batch 512, n_thread = online CPUs, kv F16 */
} ns_runtime_config;

typedef struct ns_runtime ns_runtime;
typedef struct ns_loaded ns_loaded;
typedef struct ns_job ns_job;

ns_runtime *ns_runtime_new(const ns_runtime_config *cfg, char *err, size_t errlen);
/* Stops admitting jobs, lets running ones finish for up to grace_ns, then
 * cancels the rest, unloads every model and frees the runtime. */
void ns_runtime_free(ns_runtime *rt, int64_t grace_ns);

/* Resolves name through the store and returns a reference to the loaded
 * model, loading it (blocking the caller) when needed. *load_ns gets the
 * time this call spent loading (0 when it was warm). NULL on failure with
 * *status: 404 unknown model, 400 bad options, 500 a file that fails to load,
 * 503 no room (every loaded model busy and the budget full) or shutting
 * down; err has one clear sentence. */
ns_loaded *ns_runtime_acquire(ns_runtime *rt, const char *name, const ns_load_opts *opts, int64_t *load_ns,
                              int *status, char *err, size_t errlen);
/* Drops a reference and sets the model's keep_alive: > 0 a duration, 0
 * unload as soon as idle, < 0 forever, NS_KEEP_ALIVE_DEFAULT the default. */
void ns_runtime_release(ns_runtime *rt, ns_loaded *lm, int64_t keep_alive_ns);

/* Unloads a model by name (or path) once its jobs end; -1 and err when it
 * is not loaded. */
int ns_runtime_unload(ns_runtime *rt, const char *name, char *err, size_t errlen);
void ns_runtime_unload_all(ns_runtime *rt);

const ns_model *ns_loaded_model(const ns_loaded *lm);
const ns_vocab *ns_loaded_vocab(const ns_loaded *lm);
const ns_model_ref *ns_loaded_ref(const ns_loaded *lm);
/* The file's chat template, parsed once at load; NULL when the file has none
 * or it does not parse (ns_loaded_template_error says why, or NULL). */
const ns_chat_template *ns_loaded_template(const ns_loaded *lm);
const char *ns_loaded_template_error(const ns_loaded *lm);
int ns_loaded_n_ctx(const ns_loaded *lm);
const ns_load_opts *ns_loaded_opts(const ns_loaded *lm); /* as loaded, defaults filled in */

/* Changes what a running runtime can change (a profile, runtime/profile.h):
 * num_parallel, keep_alive_ns, defaults.n_ctx and defaults.n_batch of c,
 * its 0 fields meaning the same defaults as ns_runtime_new's. The slots,
 * context and batch apply to models loaded from now on (a loaded model keeps
 * what it was loaded with until it is unloaded); keep_alive to models
 * released from now on. Other fields of c are ignored. */
void ns_runtime_retune(ns_runtime *rt, const ns_runtime_config *c);
/* The runtime's configuration now, defaults filled in. */
void ns_runtime_get_config(ns_runtime *rt, ns_runtime_config *out);

/* What /api/ps shows. */
typedef struct {
    char name[256];
    char path[4096];
    char digest[80];
    int64_t size;           /* bytes: file + KV cache + buffers */
    int64_t size_vram;      /* 0 on the CPU */
    int planned_gpu_layers; /* num_gpu the placement planner chose for "auto" (or the
                             * explicit num_gpu): advice, nothing is offloaded yet */
    int64_t loaded_at;      /* wall ns */
    int64_t expires_at;     /* wall ns; INT64_MAX: never; the expiry if it went idle now while busy */
    int n_ctx, n_parallel;
    int active_jobs, queued_jobs;
    ns_load_opts opts;
} ns_loaded_info;

/* *out malloc'd (free it), in load order. */
int ns_runtime_ps(ns_runtime *rt, ns_loaded_info **out, int *n);

/* ---- generations ---- */

typedef enum {
    NS_FINISH_NONE = 0,
    NS_FINISH_STOP,      /* end-of-generation token or a stop sequence */
    NS_FINISH_LENGTH,    /* n_predict tokens */
    NS_FINISH_CONTEXT,   /* the slot's context is full */
    NS_FINISH_CANCELLED, /* ns_job_cancel / ns_job_free / shutdown */
    NS_FINISH_TIMEOUT,   /* request_timeout_ns */
    NS_FINISH_ERROR      /* a decode failed: see stats.error */
} ns_finish;

const char *ns_finish_name(ns_finish f); /* "stop", "length", "context", "cancelled", "timeout", "error" */

typedef struct {
    const int32_t *prompt;   /* copied; n_prompt >= 1; must fit in the slot's context */
    int n_prompt;
    ns_sampler_params sampling; /* checked; logit_bias copied */
    const char *const *stops;   /* copied */
    int n_stops;
    long long n_predict;     /* < 0: until end of generation or a full context */
    int top_logprobs;        /* 0..NS_MAX_TOP_LOGPROBS alternatives per token */
    bool logprobs;           /* report the chosen token's log-probability */
    int json_mode;           /* 0 off; 1 any JSON value; 2 a JSON object (json_constraint.h) */
    const char *request_id;  /* copied, for events and logs; may be NULL */
    /* Slot affinity: the slot whose KV was last used by this session id is
     * preferred, and after the job the slot is tagged with it, so other
     * requests take other slots while they can (copied; may be NULL). */
    const char *session;
    /* Context shift: when the slot's context fills during generation, keep
     * the first n_keep tokens and the most recent half of the rest,
     * re-evaluate them, and go on (instead of ending with NS_FINISH_CONTEXT). */
    bool context_shift;
    int n_keep;
    /* The consumer reads the events only at the end (a non-streaming
     * response): it is woken for DONE, not for every token, so that many
     * waiting request threads do not take turns at the model's cores. */
    bool wake_on_done;
} ns_gen_params;

typedef struct {
    ns_finish finish;
    int n_prompt;            /* prompt tokens */
    int n_prompt_cached;     /* of those, reused from the slot's cache, not evaluated */
    int n_gen;               /* tokens generated (the end-of-generation token counts) */
    int n_shifts;            /* context shifts during the job */
    int64_t queued_ns;       /* submit -> admitted into a slot */
    int64_t prompt_eval_ns;  /* admitted -> first token sampled */
    int64_t eval_ns;         /* first token sampled -> done */
    int64_t total_ns;        /* submit -> done */
    int32_t *context;        /* prompt + generated tokens (malloc'd), for /api/generate's context;
                              * after a context shift, the tokens the slot kept */
    int n_context;
    char error[256];
} ns_job_stats;

typedef enum { NS_JOB_TOKEN = 1, NS_JOB_DONE = 2 } ns_job_event_kind;

typedef struct {
    ns_job_event_kind kind;
    /* NS_JOB_TOKEN: one generated token, or (token -1) the text a stop
     * matcher released at the end. text is what may be shown now (held-back
     * bytes of a possible stop sequence or an incomplete UTF-8 character come
     * in a later event), malloc'd and NUL-terminated, possibly "". The
     * end-of-generation token is not sent as an event. */
    char *text;
    size_t len;
    int32_t token;
    ns_token_logprob lp[1 + NS_MAX_TOP_LOGPROBS]; /* lp[0] chosen, then the alternatives */
    int n_lp;
    /* NS_JOB_DONE: the last event of a job. */
    ns_job_stats stats;
} ns_job_event;

void ns_job_event_clear(ns_job_event *ev); /* frees text and stats.context */

/* Queues a generation on the model. NULL with *status 400 (bad params, a
 * prompt longer than the context: "prompt is 5000 tokens but the context
 * is 4096"), 503 (the queue is full, or the runtime is shutting down). */
ns_job *ns_job_submit(ns_loaded *lm, const ns_gen_params *p, int *status, char *err, size_t errlen);
/* Waits up to timeout_ms (-1: forever) for the next event. 1: *ev filled
 * (caller clears it); 0: none yet; -1: the job is over and DONE was
 * already returned. */
int ns_job_next(ns_job *j, ns_job_event *ev, int timeout_ms);
/* Asks the runner to stop the job before its next token (a client went
 * away). Events still come, ending with DONE (CANCELLED). */
void ns_job_cancel(ns_job *j);
/* Cancels if still running and drops the caller's reference; the runner
 * drops its own when it is done with the slot. */
void ns_job_free(ns_job *j);

/* ---- KV of a session, in and out of a model's slots ----
 * Both run on the model's runner thread between two forward passes (the
 * caller blocks until done). 409-style conflicts are the caller's business:
 * the session must not have a job running. */

/* The KV layout of the loaded model, for snapshot checks:
 * "llama layers=16 kv_dim=512 kv=f16". */
const char *ns_loaded_kv_fingerprint(const ns_loaded *lm);

/* The engine state image (ns_seq_state_save) of exactly these tokens. Uses
 * the slot tagged with session when its cache begins with them, else
 * evaluates them in a free slot (which is then tagged). *kv malloc'd.
 * 0, or an HTTP-like status (400 too long for the context, 503 no free slot
 * / shutting down, 500) with err. */
int ns_session_kv_export(ns_loaded *lm, const char *session, const int32_t *tokens, int n_tokens, void **kv,
                         size_t *kv_bytes, char *err, size_t errlen);
/* Loads an image of these tokens into a free slot and tags it with session,
 * so the next job of the session evaluates nothing it already has. 0, or a
 * status with err (400 an image that does not fit this model, 503 no free slot). */
int ns_session_kv_import(ns_loaded *lm, const char *session, const int32_t *tokens, int n_tokens, const void *kv,
                         size_t kv_bytes, char *err, size_t errlen);
/* The same without a copy of the image: io runs on the runner thread with
 * the image's pieces (ns_seq_state_pieces: a header, then K and V runs
 * inside the cache). Saving, io reads them (writes them to a file); loading,
 * io fills them (reads a file into them), after which the header is checked.
 * io returns 0, or an HTTP-like status with err. The runner does no other
 * work while io runs. */
typedef int (*ns_kv_io_fn)(void *arg, const struct iovec *pieces, int n_pieces, char *err, size_t errlen);
int ns_session_kv_save_with(ns_loaded *lm, const char *session, const int32_t *tokens, int n_tokens, ns_kv_io_fn io,
                            void *arg, char *err, size_t errlen);
int ns_session_kv_load_with(ns_loaded *lm, const char *session, const int32_t *tokens, int n_tokens, ns_kv_io_fn io,
                            void *arg, char *err, size_t errlen);

/* Drops the tag in every loaded model (a deleted or cleared session): its
 * slot is free for anyone. */
void ns_runtime_session_forget(ns_runtime *rt, const char *session);

#endif
