/* Jobs: checking and queuing a generation, and the event channel between
 * the runner that produces its tokens and the consumer that reads them.
 *
 * A job has two owners, the consumer (until ns_job_free) and the runner
 * side (until ns_job_finish), so either may go first: the consumer may
 * leave before the job started, and may read the last events after the
 * runtime itself is gone. Once finished, a job touches nothing but itself. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runtime/runtime_internal.h"
#include "util/duration.h"

typedef struct ns_job_event_node {
    ns_job_event ev;
    struct ns_job_event_node *next;
} ns_job_event_node;

const char *ns_finish_name(ns_finish f) {
    switch (f) {
    case NS_FINISH_STOP: return "stop";
    case NS_FINISH_LENGTH: return "length";
    case NS_FINISH_CONTEXT: return "context";
    case NS_FINISH_CANCELLED: return "cancelled";
    case NS_FINISH_TIMEOUT: return "timeout";
    case NS_FINISH_ERROR: return "error";
    case NS_FINISH_NONE: break;
    }
    return "none";
}

void ns_job_event_clear(ns_job_event *ev) {
    if (!ev) return;
    free(ev->text);
    free(ev->stats.context);
    memset(ev, 0, sizeof *ev);
}

static void set_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || !errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static void job_destroy(ns_job *j) {
    ns_job_event_node *n = j->head;
    while (n) {
        ns_job_event_node *next = n->next;
        ns_job_event_clear(&n->ev);
        free(n);
        n = next;
    }
    ns_sampler_free(j->sampler);
    ns_stop_free(j->stop);
    ns_json_constraint_free(j->json);
    free(j->prompt);
    free(j->toks);
    pthread_cond_destroy(&j->cv);
    pthread_mutex_destroy(&j->mu);
    free(j);
}

void ns_job_unref(ns_job *j) {
    pthread_mutex_lock(&j->mu);
    bool last = --j->refs == 0;
    pthread_mutex_unlock(&j->mu);
    if (last) job_destroy(j);
}

int ns_job_toks_push(ns_job *j, int32_t tok) {
    if (j->n_toks == j->cap_toks) {
        int cap = j->cap_toks ? j->cap_toks * 2 : 64;
        int32_t *t = realloc(j->toks, sizeof *t * (size_t)cap);
        if (!t) return -1;
        j->toks = t;
        j->cap_toks = cap;
    }
    j->toks[j->n_toks++] = tok;
    return 0;
}

/* Appends an event; takes ownership of what ev points to. */
static void push_event(ns_job *j, const ns_job_event *ev) {
    ns_job_event_node *n = malloc(sizeof *n);
    if (!n) {
        /* out of memory: the token is lost, DONE still matters most */
        ns_job_event tmp = *ev;
        ns_job_event_clear(&tmp);
        return;
    }
    n->ev = *ev;
    n->next = NULL;
    pthread_mutex_lock(&j->mu);
    if (j->tail) j->tail->next = n;
    else j->head = n;
    j->tail = n;
    if (!j->wake_on_done || ev->kind == NS_JOB_DONE) pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
}

void ns_job_push_token(ns_job *j, int32_t token, const char *text, size_t len, const ns_token_logprob *lp, int n_lp) {
    ns_job_event ev;
    memset(&ev, 0, sizeof ev);
    ev.kind = NS_JOB_TOKEN;
    ev.token = token;
    ev.text = malloc(len + 1);
    if (!ev.text) return;
    if (len) memcpy(ev.text, text, len);
    ev.text[len] = 0;
    ev.len = len;
    if (lp && n_lp > 0) {
        if (n_lp > 1 + NS_MAX_TOP_LOGPROBS) n_lp = 1 + NS_MAX_TOP_LOGPROBS;
        memcpy(ev.lp, lp, sizeof *lp * (size_t)n_lp);
        ev.n_lp = n_lp;
    }
    push_event(j, &ev);
}

void ns_job_times(const ns_job *j, int64_t end, ns_job_stats *st) {
    int64_t admit = j->t_admit ? j->t_admit : end;
    int64_t first = j->t_first ? j->t_first : end;
    st->queued_ns = admit - j->t_submit;
    st->prompt_eval_ns = first - admit;
    st->eval_ns = end - first;
    st->total_ns = end - j->t_submit;
}

void ns_job_finish_at(ns_job *j, ns_finish finish, const char *error, int64_t end) {
    ns_job_event ev;
    memset(&ev, 0, sizeof ev);
    ev.kind = NS_JOB_DONE;
    ns_job_stats *st = &ev.stats;
    st->finish = finish;
    st->n_prompt = j->n_prompt;
    st->n_prompt_cached = j->n_cached;
    st->n_gen = j->n_gen;
    st->n_shifts = j->n_shifts;
    ns_job_times(j, end, st);
    if (error) snprintf(st->error, sizeof st->error, "%s", error);
    /* the prompt and what was generated (only the prompt for a job that never ran) */
    st->context = malloc(sizeof(int32_t) * (size_t)j->n_toks);
    if (st->context) {
        memcpy(st->context, j->toks, sizeof(int32_t) * (size_t)j->n_toks);
        st->n_context = j->n_toks;
    }

    pthread_mutex_lock(&j->mu);
    j->finished = true;
    ns_loaded *lm = j->lm;
    j->lm = NULL;
    pthread_mutex_unlock(&j->mu);
    /* The model is idle again before DONE arrives, so a consumer that saw
     * DONE sees the model's keep_alive already running (ps, unload). */
    if (lm) ns_lm_job_done(lm);
    push_event(j, &ev);
    ns_job_unref(j);
}

ns_job *ns_job_submit(ns_loaded *lm, const ns_gen_params *p, int *status, char *err, size_t errlen) {
    int st_dummy;
    if (!status) status = &st_dummy;
    *status = 400;
    if (!lm || !p) {
        set_err(err, errlen, "no model or no parameters");
        return NULL;
    }
    const ns_vocab *vocab = ns_loaded_vocab(lm);
    const int n_vocab = ns_model_hparams(ns_loaded_model(lm))->n_vocab;
    const int n_ctx = ns_loaded_n_ctx(lm);
    if (!p->prompt || p->n_prompt < 1) {
        set_err(err, errlen, "the prompt is empty");
        return NULL;
    }
    if (p->session && (!p->session[0] || strlen(p->session) > 64)) {
        set_err(err, errlen, "a session id has 1 to 64 characters");
        return NULL;
    }
    if (p->n_prompt > n_ctx) {
        set_err(err, errlen, "prompt is %d tokens but the context is %d", p->n_prompt, n_ctx);
        return NULL;
    }
    for (int i = 0; i < p->n_prompt; i++)
        if (p->prompt[i] < 0 || p->prompt[i] >= n_vocab) {
            set_err(err, errlen, "prompt token %d at position %d is outside the vocabulary (0..%d)", p->prompt[i], i,
                    n_vocab - 1);
            return NULL;
        }
    if (p->top_logprobs < 0 || p->top_logprobs > NS_MAX_TOP_LOGPROBS) {
        set_err(err, errlen, "top_logprobs must be in [0, %d], got %d", NS_MAX_TOP_LOGPROBS, p->top_logprobs);
        return NULL;
    }
    if (p->json_mode < 0 || p->json_mode > 2) {
        set_err(err, errlen, "json_mode must be 0, 1 or 2, got %d", p->json_mode);
        return NULL;
    }
    if (p->n_stops < 0 || (p->n_stops > 0 && !p->stops)) {
        set_err(err, errlen, "bad stop sequences");
        return NULL;
    }

    ns_job *j = calloc(1, sizeof *j);
    if (!j) goto oom;
    pthread_mutex_init(&j->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&j->cv, &ca);
    pthread_condattr_destroy(&ca);
    j->refs = 2; /* the consumer and the runner side */
    atomic_init(&j->cancel, false);
    j->sampler = ns_sampler_new_checked(&p->sampling, n_vocab, err, errlen);
    if (!j->sampler) {
        job_destroy(j);
        return NULL; /* status 400, err from the sampler */
    }
    j->stop = ns_stop_new(p->stops, p->n_stops);
    j->prompt = malloc(sizeof(int32_t) * (size_t)p->n_prompt);
    if (!j->stop || !j->prompt) goto oom_job;
    if (p->json_mode) {
        j->json = ns_json_constraint_new(vocab, p->json_mode == 2);
        if (!j->json) goto oom_job;
    }
    memcpy(j->prompt, p->prompt, sizeof(int32_t) * (size_t)p->n_prompt);
    j->n_prompt = p->n_prompt;
    for (int i = 0; i < j->n_prompt; i++)
        if (ns_job_toks_push(j, j->prompt[i]) != 0) goto oom_job;
    j->n_predict = p->n_predict;
    j->top_logprobs = p->top_logprobs;
    j->logprobs = p->logprobs;
    if (p->request_id) snprintf(j->request_id, sizeof j->request_id, "%s", p->request_id);
    if (p->session) snprintf(j->session, sizeof j->session, "%s", p->session);
    j->context_shift = p->context_shift;
    j->wake_on_done = p->wake_on_done;
    j->n_keep = p->n_keep < 0 ? 0 : p->n_keep > p->n_prompt ? p->n_prompt : p->n_keep;
    /* the prompt counts for the repetition penalties, as in the CLI */
    ns_sampler_accept_many(j->sampler, j->prompt, j->n_prompt);
    j->prev_bos = j->prompt[j->n_prompt - 1] == ns_vocab_bos(vocab);
    j->t_submit = ns_now_mono();
    j->state = NS_JOB_QUEUED;

    if (ns_lm_job_ref(lm, err, errlen) != 0) {
        *status = 503;
        job_destroy(j);
        return NULL;
    }
    j->lm = lm;
    int rc = ns_runner_enqueue(lm->runner, j, err, errlen);
    if (rc != 0) {
        *status = rc;
        ns_lm_job_done(lm);
        job_destroy(j);
        return NULL;
    }
    *status = 200;
    return j;
oom_job:
    job_destroy(j);
oom:
    *status = 500;
    set_err(err, errlen, "out of memory");
    return NULL;
}

int ns_job_next(ns_job *j, ns_job_event *ev, int timeout_ms) {
    struct timespec deadline;
    if (timeout_ms > 0) {
        clock_gettime(CLOCK_MONOTONIC, &deadline);
        deadline.tv_sec += timeout_ms / 1000;
        deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        if (deadline.tv_nsec >= 1000000000L) {
            deadline.tv_sec++;
            deadline.tv_nsec -= 1000000000L;
        }
    }
    pthread_mutex_lock(&j->mu);
    int rc = 0;
    for (;;) {
        if (j->head) {
            ns_job_event_node *n = j->head;
            j->head = n->next;
            if (!j->head) j->tail = NULL;
            *ev = n->ev;
            free(n);
            if (ev->kind == NS_JOB_DONE) j->done_returned = true;
            rc = 1;
            break;
        }
        if (j->done_returned) {
            rc = -1;
            break;
        }
        if (timeout_ms == 0) break;
        if (timeout_ms < 0) {
            pthread_cond_wait(&j->cv, &j->mu);
        } else if (pthread_cond_timedwait(&j->cv, &j->mu, &deadline) != 0) {
            /* timed out (or failed): look once more, then report nothing */
            if (!j->head) break;
        }
    }
    pthread_mutex_unlock(&j->mu);
    return rc;
}

void ns_job_cancel(ns_job *j) {
    if (!j) return;
    pthread_mutex_lock(&j->mu);
    atomic_store(&j->cancel, true);
    /* A job still in the queue is taken out and ended here, so it does not
     * wait for a slot just to be cancelled; a running one is stopped by its
     * runner before the next token. The job holds its model (and so the
     * runner) until it is finished, and finishing needs j->mu. */
    bool ours = !j->finished && j->lm && ns_runner_dequeue(j->lm->runner, j);
    pthread_mutex_unlock(&j->mu);
    if (ours) ns_job_finish_at(j, NS_FINISH_CANCELLED, NULL, ns_now_mono());
}

void ns_job_free(ns_job *j) {
    if (!j) return;
    ns_job_cancel(j);
    ns_job_unref(j);
}
