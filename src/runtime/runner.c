/* The runner: one thread per loaded model, the only user of its context.
 *
 * The context's KV cache holds one sequence per slot. Queued jobs take free
 * slots in arrival order; each round the runner goes over the active slots
 * in turn and does one unit of work for each (a chunk of up to n_batch
 * prompt tokens, or sample + emit + decode one token), so a long prompt
 * does not stall the others' tokens. Cancellation and timeouts are checked
 * before every unit. A slot keeps its tokens after its job ends, so the
 * next job with the same beginning (a chat's next turn) only evaluates what
 * is new.
 *
 * The token loop is the CLI's (src/cli/generate.c): the same prompt and
 * sampling parameters give the same text. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "runtime/runtime_internal.h"
#include "util/duration.h"
#include "util/log.h"

typedef struct {
    int seq;
    ns_job *job;         /* NULL when free; written only by the runner thread (under mu) */
    int32_t *cache;      /* the tokens this sequence's KV holds (n_ctx room) */
    int n_cache;
    int n_eval;          /* prompt tokens of the job in the cache */
    bool generating;     /* the prompt is done; logits hold the next token's */
    bool announce;       /* generation_started not published yet */
    float *logits;
    uint64_t last_used;
} ns_slot;

struct ns_runner {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    bool started;

    ns_context *ctx;
    const ns_vocab *vocab;
    int n_vocab, n_ctx, n_batch;
    ns_events *events;
    char model[256];
    int64_t timeout_ns;

    ns_slot *slots;
    int n_slots;
    int rr;               /* the slot that goes first in the next round */
    uint64_t clock;
    float *work;          /* logits masked by a JSON constraint */

    /* under mu */
    ns_job *qhead, *qtail;
    int n_queued, n_active;
    int max_queue;
    bool stop;
    bool paused;
    atomic_bool cancel_all;
    atomic_int pause_at_gen;
    bool pause_hit;       /* runner thread only */
};

/* ---- events and logs ---- */

static void publish(ns_runner *r, ns_event_kind kind, const ns_job *j, cJSON *detail) {
    if (r->events) {
        char *txt = cJSON_PrintUnformatted(detail);
        ns_events_publish(r->events, kind, r->model, j->request_id, txt);
        free(txt);
    }
    cJSON_Delete(detail);
}

static void announce(ns_runner *r, const ns_job *j) {
    ns_log_debug("runtime", "generation started", "model=%s request=\"%s\" prompt_tokens=%d cached_tokens=%d", r->model,
                 j->request_id, j->n_prompt, j->n_cached);
    if (!r->events) return;
    cJSON *d = cJSON_CreateObject();
    cJSON_AddNumberToObject(d, "prompt_tokens", j->n_prompt);
    cJSON_AddNumberToObject(d, "cached_tokens", j->n_cached);
    publish(r, NS_EV_GEN_STARTED, j, d);
}

static void report_end(ns_runner *r, const ns_job *j, ns_finish finish, const char *error) {
    int64_t now = ns_now_mono();
    double ttft_ms = j->t_first ? (double)(j->t_first - j->t_submit) / 1e6 : 0.0;
    double eval_s = j->t_first ? (double)(now - j->t_first) / 1e9 : 0.0;
    double tps = eval_s > 0 ? j->n_gen / eval_s : 0.0;
    ns_log_debug("runtime", "generation done",
                 "model=%s request=\"%s\" finish=%s prompt_tokens=%d cached_tokens=%d eval_tokens=%d ttft_ms=%.1f "
                 "tokens_per_s=%.1f",
                 r->model, j->request_id, ns_finish_name(finish), j->n_prompt, j->n_cached, j->n_gen, ttft_ms, tps);
    if (!r->events) return;
    cJSON *d = cJSON_CreateObject();
    cJSON_AddNumberToObject(d, "prompt_tokens", j->n_prompt);
    cJSON_AddNumberToObject(d, "cached_tokens", j->n_cached);
    cJSON_AddNumberToObject(d, "eval_tokens", j->n_gen);
    cJSON_AddNumberToObject(d, "ttft_ms", ttft_ms);
    cJSON_AddNumberToObject(d, "tokens_per_s", tps);
    cJSON_AddStringToObject(d, "finish", ns_finish_name(finish));
    if (error && *error) cJSON_AddStringToObject(d, "error", error);
    publish(r, finish == NS_FINISH_ERROR ? NS_EV_GEN_FAILED : NS_EV_GEN_COMPLETED, j, d);
}

/* ---- slots ---- */

static int common_prefix(const int32_t *a, int na, const int32_t *b, int nb) {
    int n = na < nb ? na : nb, i = 0;
    while (i < n && a[i] == b[i]) i++;
    return i;
}

/* Under mu. The free slot whose cached tokens share the longest beginning
 * with the prompt; of equals, the one unused the longest (so one
 * conversation's cache is not overwritten while an older one would do). */
static ns_slot *pick_slot(ns_runner *r, const ns_job *j, int *common) {
    ns_slot *best = NULL;
    int best_n = -1;
    for (int i = 0; i < r->n_slots; i++) {
        ns_slot *s = &r->slots[i];
        if (s->job) continue;
        int n = common_prefix(s->cache, s->n_cache, j->prompt, j->n_prompt);
        if (n > best_n || (n == best_n && s->last_used < best->last_used)) {
            best = s;
            best_n = n;
        }
    }
    *common = best_n;
    return best;
}

/* Under mu: queued jobs into free slots, in arrival order. */
static void admit(ns_runner *r) {
    while (r->qhead) {
        ns_job *j = r->qhead;
        int common;
        ns_slot *s = pick_slot(r, j, &common);
        if (!s) break;
        r->qhead = j->qnext;
        if (!r->qhead) r->qtail = NULL;
        j->qnext = NULL;
        j->state = NS_JOB_TAKEN;
        r->n_queued--;
        r->n_active++;
        /* at least the last prompt token is evaluated again: its logits
         * are where the generation starts */
        int keep = common < j->n_prompt - 1 ? common : j->n_prompt - 1;
        ns_seq_truncate(r->ctx, s->seq, keep);
        s->n_cache = keep;
        s->n_eval = keep;
        s->generating = false;
        s->announce = true;
        s->last_used = ++r->clock;
        s->job = j;
        j->n_cached = keep;
        j->t_admit = ns_now_mono();
    }
}

static void end_slot(ns_runner *r, ns_slot *s, ns_finish finish, const char *error) {
    ns_job *j = s->job;
    if (finish != NS_FINISH_ERROR) {
        const char *out;
        size_t n = ns_stop_flush(j->stop, &out);
        if (n > 0) ns_job_push_token(j, -1, out, n, NULL, 0);
    }
    if (s->announce) announce(r, j);
    report_end(r, j, finish, error);
    pthread_mutex_lock(&r->mu);
    s->job = NULL;
    r->n_active--;
    pthread_mutex_unlock(&r->mu);
    ns_job_finish(j, finish, error);
}

static int decode(ns_runner *r, ns_slot *s, const int32_t *toks, int n, char *err, size_t errlen) {
    if (ns_decode(r->ctx, s->seq, toks, n, false, err, errlen) != 0) {
        /* what the cache holds is no longer known for sure: start it afresh */
        ns_seq_truncate(r->ctx, s->seq, 0);
        s->n_cache = 0;
        return -1;
    }
    memcpy(s->cache + s->n_cache, toks, sizeof *toks * (size_t)n);
    s->n_cache += n;
    return 0;
}

static void prompt_unit(ns_runner *r, ns_slot *s) {
    ns_job *j = s->job;
    int n = j->n_prompt - s->n_eval;
    if (n > r->n_batch) n = r->n_batch;
    char err[256];
    if (decode(r, s, j->prompt + s->n_eval, n, err, sizeof err) != 0) {
        end_slot(r, s, NS_FINISH_ERROR, err);
        return;
    }
    s->n_eval += n;
    if (s->n_eval == j->n_prompt) {
        memcpy(s->logits, ns_context_logits(r->ctx, -1), sizeof(float) * (size_t)r->n_vocab);
        s->generating = true;
    }
}

/* The token's text; *heap is set when it did not fit in buf. */
static int token_piece(ns_runner *r, int32_t tok, char *buf, int buflen, char **heap) {
    *heap = NULL;
    int len = ns_token_to_piece(r->vocab, tok, false, buf, buflen);
    if (len < 0 && len != INT32_MIN) {
        *heap = malloc((size_t)-len);
        if (!*heap) return 0;
        len = ns_token_to_piece(r->vocab, tok, false, *heap, -len);
    }
    return len > 0 ? len : 0;
}

/* The test hook of ns_runtime_test_pause_at: the pause is set before the
 * token's event goes out, so a test that saw the event and releases the
 * runner cannot be overtaken by the pause. */
static void test_pause_point(ns_runner *r, const ns_job *j) {
    int at = atomic_load(&r->pause_at_gen);
    if (at <= 0 || j->n_gen < at) return;
    pthread_mutex_lock(&r->mu);
    r->paused = true;
    atomic_store(&r->pause_at_gen, 0);
    pthread_mutex_unlock(&r->mu);
    r->pause_hit = true;
}

static void token_unit(ns_runner *r, ns_slot *s) {
    ns_job *j = s->job;
    if (j->n_predict >= 0 && j->n_gen >= j->n_predict) {
        end_slot(r, s, NS_FINISH_LENGTH, NULL);
        return;
    }
    const float *logits = s->logits;
    if (j->json) {
        memcpy(r->work, s->logits, sizeof(float) * (size_t)r->n_vocab);
        ns_json_constraint_mask(j->json, r->work, r->n_vocab);
        logits = r->work;
    }
    int32_t tok = ns_sampler_sample(j->sampler, logits);
    if (!j->t_first) j->t_first = ns_now_mono();
    if (tok < 0) {
        end_slot(r, s, NS_FINISH_ERROR, "no token can be sampled: every token is banned or masked");
        return;
    }
    ns_sampler_accept(j->sampler, tok);
    j->n_gen++;
    if (j->json) ns_json_constraint_accept(j->json, tok);
    if (ns_vocab_is_eog(r->vocab, tok)) {
        end_slot(r, s, NS_FINISH_STOP, NULL);
        return;
    }
    ns_token_logprob lp[1 + NS_MAX_TOP_LOGPROBS];
    int n_lp = 0;
    if (j->logprobs || j->top_logprobs > 0) n_lp = ns_sampler_logprobs(j->sampler, j->top_logprobs, lp);

    char buf[256], *heap;
    int len = token_piece(r, tok, buf, sizeof buf, &heap);
    const char *piece = heap ? heap : buf;
    const char *out = "";
    size_t n_out = 0;
    if (len > 0) {
        int skip = (j->prev_bos && piece[0] == ' ') ? 1 : 0; /* SentencePiece's dummy prefix */
        n_out = ns_stop_feed(j->stop, piece + skip, (size_t)(len - skip), &out);
    }
    j->prev_bos = false;
    ns_job_toks_push(j, tok);
    test_pause_point(r, j);
    ns_job_push_token(j, tok, out, n_out, lp, n_lp > 0 ? n_lp : 0);
    free(heap);

    if (ns_stop_hit(j->stop)) {
        end_slot(r, s, NS_FINISH_STOP, NULL);
        return;
    }
    if (j->n_predict >= 0 && j->n_gen >= j->n_predict) {
        end_slot(r, s, NS_FINISH_LENGTH, NULL);
        return;
    }
    if (s->n_cache >= r->n_ctx) {
        end_slot(r, s, NS_FINISH_CONTEXT, NULL);
        return;
    }
    char err[256];
    if (decode(r, s, &tok, 1, err, sizeof err) != 0) {
        end_slot(r, s, NS_FINISH_ERROR, err);
        return;
    }
    memcpy(s->logits, ns_context_logits(r->ctx, -1), sizeof(float) * (size_t)r->n_vocab);
}

static void slot_unit(ns_runner *r, ns_slot *s) {
    ns_job *j = s->job;
    if (atomic_load(&j->cancel) || atomic_load(&r->cancel_all)) {
        end_slot(r, s, NS_FINISH_CANCELLED, NULL);
        return;
    }
    if (r->timeout_ns > 0 && ns_now_mono() - j->t_submit > r->timeout_ns) {
        end_slot(r, s, NS_FINISH_TIMEOUT, NULL);
        return;
    }
    if (s->announce) {
        s->announce = false;
        announce(r, j);
    }
    if (!s->generating) prompt_unit(r, s);
    else token_unit(r, s);
}

/* ---- the thread ---- */

/* Under mu: queued jobs that end without running (shutdown, timeout) move
 * to *out; the caller finishes them once mu is released. */
static void take_dead_queued(ns_runner *r, ns_job **cancelled, ns_job **timed_out) {
    bool all = atomic_load(&r->cancel_all);
    if (!all && r->timeout_ns <= 0) return;
    int64_t now = ns_now_mono();
    ns_job **pp = &r->qhead, *prev = NULL;
    while (*pp) {
        ns_job *j = *pp;
        bool late = r->timeout_ns > 0 && now - j->t_submit > r->timeout_ns;
        if (!all && !late) {
            prev = j;
            pp = &j->qnext;
            continue;
        }
        *pp = j->qnext;
        if (r->qtail == j) r->qtail = prev;
        j->state = NS_JOB_TAKEN;
        r->n_queued--;
        ns_job **dst = all ? cancelled : timed_out;
        j->qnext = *dst;
        *dst = j;
    }
}

static void finish_list(ns_job *j, ns_finish finish) {
    while (j) {
        ns_job *next = j->qnext;
        j->qnext = NULL;
        ns_job_finish(j, finish, NULL);
        j = next;
    }
}

static void round_of_units(ns_runner *r) {
    for (int k = 0; k < r->n_slots; k++) {
        ns_slot *s = &r->slots[(r->rr + k) % r->n_slots];
        if (!s->job) continue;
        slot_unit(r, s);
        if (r->pause_hit) { /* tests: stop the round where the pause came */
            r->pause_hit = false;
            break;
        }
    }
    r->rr = (r->rr + 1) % r->n_slots;
}

static void *runner_main(void *arg) {
    ns_runner *r = arg;
    pthread_mutex_lock(&r->mu);
    for (;;) {
        if (atomic_load(&r->cancel_all)) r->paused = false;
        ns_job *cancelled = NULL, *timed_out = NULL;
        take_dead_queued(r, &cancelled, &timed_out);
        if (cancelled || timed_out) {
            pthread_mutex_unlock(&r->mu);
            finish_list(cancelled, NS_FINISH_CANCELLED);
            finish_list(timed_out, NS_FINISH_TIMEOUT);
            pthread_mutex_lock(&r->mu);
            continue;
        }
        if (!r->paused) admit(r);
        if (r->stop && r->n_active == 0 && !r->qhead) break;
        if (r->n_active == 0 || r->paused) {
            pthread_cond_wait(&r->cv, &r->mu);
            continue;
        }
        pthread_mutex_unlock(&r->mu);
        round_of_units(r);
        pthread_mutex_lock(&r->mu);
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

static void runner_free(ns_runner *r) {
    if (r->slots)
        for (int i = 0; i < r->n_slots; i++) {
            free(r->slots[i].cache);
            free(r->slots[i].logits);
        }
    free(r->slots);
    free(r->work);
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

ns_runner *ns_runner_start(ns_loaded *lm, char *err, size_t errlen) {
    ns_runner *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    atomic_init(&r->cancel_all, false);
    atomic_init(&r->pause_at_gen, 0);
    r->ctx = lm->ctx;
    r->vocab = ns_model_vocab(lm->model);
    r->n_vocab = ns_model_hparams(lm->model)->n_vocab;
    r->n_ctx = ns_context_n_ctx(lm->ctx);
    r->n_batch = lm->opts.n_batch < r->n_ctx ? lm->opts.n_batch : r->n_ctx;
    if (r->n_batch < 1) r->n_batch = 1;
    r->events = ns_lm_events(lm);
    snprintf(r->model, sizeof r->model, "%s", lm->ref.name);
    r->timeout_ns = ns_lm_request_timeout(lm);
    r->max_queue = lm->rt->cfg.max_queue;
    r->n_slots = lm->n_parallel;
    r->slots = calloc((size_t)r->n_slots, sizeof *r->slots);
    r->work = malloc(sizeof(float) * (size_t)r->n_vocab);
    if (!r->slots || !r->work) goto oom;
    for (int i = 0; i < r->n_slots; i++) {
        ns_slot *s = &r->slots[i];
        s->seq = i;
        s->cache = malloc(sizeof(int32_t) * (size_t)r->n_ctx);
        s->logits = malloc(sizeof(float) * (size_t)r->n_vocab);
        if (!s->cache || !s->logits) goto oom;
    }
    if (pthread_create(&r->thread, NULL, runner_main, r) != 0) {
        snprintf(err, errlen, "cannot start the runner thread");
        runner_free(r);
        return NULL;
    }
    r->started = true;
    return r;
oom:
    snprintf(err, errlen, "out of memory for %d slots", r->n_slots);
    runner_free(r);
    return NULL;
}

void ns_runner_stop(ns_runner *r) {
    if (!r) return;
    pthread_mutex_lock(&r->mu);
    r->stop = true;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
    if (r->started) pthread_join(r->thread, NULL);
    runner_free(r);
}

int ns_runner_enqueue(ns_runner *r, ns_job *j, char *err, size_t errlen) {
    pthread_mutex_lock(&r->mu);
    if (r->n_active + r->n_queued >= r->n_slots + r->max_queue) {
        int waiting = r->n_queued;
        pthread_mutex_unlock(&r->mu);
        snprintf(err, errlen, "model %s is busy: %d requests are waiting (the queue holds %d)", r->model, waiting,
                 r->max_queue);
        return 503;
    }
    j->qnext = NULL;
    if (r->qtail) r->qtail->qnext = j;
    else r->qhead = j;
    r->qtail = j;
    r->n_queued++;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
    return 0;
}

bool ns_runner_dequeue(ns_runner *r, ns_job *j) {
    pthread_mutex_lock(&r->mu);
    bool found = false;
    if (j->state == NS_JOB_QUEUED) {
        ns_job *prev = NULL;
        for (ns_job *q = r->qhead; q; prev = q, q = q->qnext) {
            if (q != j) continue;
            if (prev) prev->qnext = j->qnext;
            else r->qhead = j->qnext;
            if (r->qtail == j) r->qtail = prev;
            j->qnext = NULL;
            j->state = NS_JOB_TAKEN;
            r->n_queued--;
            found = true;
            break;
        }
    }
    pthread_mutex_unlock(&r->mu);
    return found;
}

void ns_runner_cancel_all(ns_runner *r) {
    pthread_mutex_lock(&r->mu);
    atomic_store(&r->cancel_all, true);
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

void ns_runner_counts(ns_runner *r, int *active, int *queued) {
    pthread_mutex_lock(&r->mu);
    *active = r->n_active;
    *queued = r->n_queued;
    pthread_mutex_unlock(&r->mu);
}

void ns_runtime_test_pause(ns_loaded *lm, bool paused) {
    ns_runner *r = lm->runner;
    pthread_mutex_lock(&r->mu);
    r->paused = paused;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

void ns_runtime_test_pause_at(ns_loaded *lm, int n_gen) { atomic_store(&lm->runner->pause_at_gen, n_gen); }
