/* The runner: one thread per loaded model, the only user of its context.
 *
 * The context's KV cache holds one sequence per slot. Queued jobs take free
 * slots in arrival order. Each step is one forward pass for every active
 * slot at once (continuous batching, ns_decode_batch): the next token of
 * every generating slot, plus prompt tokens of slots still reading their
 * prompt, up to the context's batch size. The weights are read once per
 * step for all of them. While any slot is generating, prompts get at most
 * PROMPT_TOKENS_PER_STEP tokens of a step (taken in turn), so a long prompt
 * delays the others' next tokens by a bounded amount and is itself never
 * starved. New jobs are admitted between steps; cancellation and timeouts
 * are checked before every step.
 *
 * A slot keeps its tokens after its job ends, so the next job with the same
 * beginning (a chat's next turn) only evaluates what is new; a job whose
 * beginning another slot holds copies that KV instead of recomputing it. A job that
 * names a session prefers the slot that session used last, and other jobs
 * take untagged slots first, so a session's KV survives other traffic while
 * there is room. When a generation fills the context and the job allows it,
 * the slot keeps the first n_keep tokens and the most recent half of the
 * rest, re-evaluates that tail, and goes on (a context shift).
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

enum { PROMPT_TOKENS_PER_STEP = 128 };

typedef struct {
    int seq;
    ns_job *job;         /* NULL when free; written only by the runner thread (under mu) */
    int32_t *cache;      /* the slot's tokens (n_ctx room); the first n_kv are in the KV cache */
    int n_cache, n_kv;
    bool generating;     /* every token is evaluated; logits hold the next token's */
    bool announce;       /* generation_started not published yet */
    float *logits;
    uint64_t last_used;
    char tag[65];        /* the session whose KV this is, "" none */
} ns_slot;

/* A session KV operation waiting for the runner thread (runtime.h). */
typedef struct kv_op {
    struct kv_op *next;
    bool import;
    const char *session;
    const int32_t *tokens;
    int n_tokens;
    const void *kv_in;
    size_t kv_in_bytes;
    ns_kv_io_fn io;      /* the zero-copy variants: pieces instead of kv_in / kv_out */
    void *io_arg;
    void *kv_out;
    size_t kv_out_bytes;
    int status;          /* 0 or an HTTP-like status */
    char err[256];
    bool done;
} kv_op;

struct ns_runner {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_cond_t op_cv;  /* a kv_op is done */
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
    int n_pieces;         /* of a state image: 1 + 2 * layers */
    struct iovec *pieces; /* n_pieces room, for the session KV operations */
    int rr;               /* the slot that goes first in the next step */
    uint64_t clock;
    float *work;          /* logits masked by a JSON constraint */
    ns_batch_item *items; /* one step's batch, n_slots room */
    ns_slot **item_slot;

    /* under mu */
    ns_job *qhead, *qtail;
    int n_queued, n_active;
    int max_queue;
    kv_op *ops;
    bool stop;
    bool paused;
    atomic_bool cancel_all;
    atomic_int pause_at_gen;
};

/* ---- events and logs ---- */

static void publish(ns_runner *r, ns_event_kind kind, const char *request_id, cJSON *detail) {
    if (r->events) {
        char *txt = cJSON_PrintUnformatted(detail);
        ns_events_publish(r->events, kind, r->model, request_id, txt);
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
    if (j->session[0]) cJSON_AddStringToObject(d, "session", j->session);
    publish(r, NS_EV_GEN_STARTED, j->request_id, d);
}

static void report_end(ns_runner *r, const ns_job *j, ns_finish finish, const char *error, int64_t end) {
    double ttft_ms = j->t_first ? (double)(j->t_first - j->t_submit) / 1e6 : 0.0;
    ns_job_stats st;
    ns_job_times(j, end, &st);
    double eval_s = j->t_first ? (double)st.eval_ns / 1e9 : 0.0;
    double tps = eval_s > 0 ? j->n_gen / eval_s : 0.0;
    double prompt_ms = (double)st.prompt_eval_ns / 1e6;
    int n_evaluated = j->n_prompt - j->n_cached;
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
    cJSON_AddNumberToObject(d, "queued_ms", (double)st.queued_ns / 1e6);
    cJSON_AddNumberToObject(d, "prompt_ms", prompt_ms);
    cJSON_AddNumberToObject(d, "prompt_tokens_per_s", prompt_ms > 0 ? n_evaluated / (prompt_ms / 1e3) : 0.0);
    cJSON_AddNumberToObject(d, "eval_ms", (double)st.eval_ns / 1e6);
    cJSON_AddNumberToObject(d, "total_ms", (double)st.total_ns / 1e6);
    cJSON_AddNumberToObject(d, "tokens_per_s", tps);
    cJSON_AddStringToObject(d, "finish", ns_finish_name(finish));
    if (j->n_shifts) cJSON_AddNumberToObject(d, "context_shifts", j->n_shifts);
    if (j->session[0]) cJSON_AddStringToObject(d, "session", j->session);
    if (error && *error) cJSON_AddStringToObject(d, "error", error);
    publish(r, finish == NS_FINISH_ERROR ? NS_EV_GEN_FAILED : NS_EV_GEN_COMPLETED, j->request_id, d);
}

/* ---- slots ---- */

static int common_prefix(const int32_t *a, int na, const int32_t *b, int nb) {
    int n = na < nb ? na : nb, i = 0;
    while (i < n && a[i] == b[i]) i++;
    return i;
}

static ns_slot *tagged_slot(ns_runner *r, const char *session) {
    if (!session || !session[0]) return NULL;
    for (int i = 0; i < r->n_slots; i++)
        if (strcmp(r->slots[i].tag, session) == 0) return &r->slots[i];
    return NULL;
}

/* The free slot for a job (or a session operation) with these tokens: the
 * session's own slot when it is free; else of the untagged slots the one
 * whose KV shares the longest beginning with the tokens (of equals, the one
 * unused the longest); only when every free slot holds some session's KV,
 * the one of those unused the longest (that session will recompute). */
static ns_slot *pick_slot(ns_runner *r, const char *session, const int32_t *toks, int n, int *common) {
    ns_slot *own = tagged_slot(r, session);
    if (own) {
        if (own->job) return NULL; /* the session is busy: wait for its slot */
        *common = common_prefix(own->cache, own->n_kv, toks, n);
        return own;
    }
    ns_slot *best = NULL;
    int best_n = -1;
    bool best_tagged = true;
    for (int i = 0; i < r->n_slots; i++) {
        ns_slot *s = &r->slots[i];
        if (s->job) continue;
        bool tagged = s->tag[0] != 0;
        int c = tagged ? 0 : common_prefix(s->cache, s->n_kv, toks, n);
        bool better = !best || (best_tagged && !tagged) ||
                      (tagged == best_tagged && (c > best_n || (c == best_n && s->last_used < best->last_used)));
        if (better) {
            best = s;
            best_n = c;
            best_tagged = tagged;
        }
    }
    if (best && best_tagged) {
        best_n = 0;
        best->n_kv = 0; /* another session's KV: start afresh */
    }
    *common = best_n;
    return best;
}

/* When another slot (busy or not) holds a longer beginning of toks than s
 * does, copies that prefix's KV into s: a system prompt shared by many
 * requests is evaluated once. Returns the tokens s now shares with toks. */
static int borrow_prefix(ns_runner *r, ns_slot *s, const int32_t *toks, int n, int common) {
    ns_slot *src = NULL;
    int best = common;
    for (int i = 0; i < r->n_slots; i++) {
        ns_slot *o = &r->slots[i];
        if (o == s) continue;
        int c = common_prefix(o->cache, o->n_kv, toks, n);
        if (c > best) {
            best = c;
            src = o;
        }
    }
    if (!src || ns_seq_copy(r->ctx, src->seq, s->seq, best) != 0) return common;
    memcpy(s->cache, toks, sizeof(int32_t) * (size_t)best);
    s->n_kv = best;
    return best;
}

/* Under mu: queued jobs into free slots, in arrival order (a job whose
 * session's slot is busy waits without holding up the others). */
static void admit(ns_runner *r) {
    ns_job *prev = NULL;
    for (ns_job *j = r->qhead; j;) {
        int common;
        ns_slot *s = pick_slot(r, j->session, j->prompt, j->n_prompt, &common);
        if (!s) {
            if (!tagged_slot(r, j->session)) break; /* no free slot at all */
            prev = j;
            j = j->qnext;
            continue;
        }
        ns_job *next = j->qnext;
        if (prev) prev->qnext = next;
        else r->qhead = next;
        if (r->qtail == j) r->qtail = prev;
        j->qnext = NULL;
        j->state = NS_JOB_TAKEN;
        r->n_queued--;
        r->n_active++;
        common = borrow_prefix(r, s, j->prompt, j->n_prompt, common);
        /* at least the last prompt token is evaluated again: its logits
         * are where the generation starts */
        int keep = common < j->n_prompt - 1 ? common : j->n_prompt - 1;
        ns_seq_truncate(r->ctx, s->seq, keep);
        memcpy(s->cache, j->prompt, sizeof(int32_t) * (size_t)j->n_prompt);
        s->n_cache = j->n_prompt;
        s->n_kv = keep;
        s->generating = false;
        s->announce = true;
        s->last_used = ++r->clock;
        if (j->session[0]) {
            snprintf(s->tag, sizeof s->tag, "%s", j->session);
        } else {
            s->tag[0] = 0;
        }
        s->job = j;
        j->n_cached = keep;
        j->t_admit = ns_now_mono();
        j = next;
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
    int64_t end = ns_now_mono();
    report_end(r, j, finish, error, end);
    if (j->n_shifts > 0 && s->n_cache <= j->n_toks) {
        /* after a shift the context is what the model kept, so a next turn
         * built on it finds all of it in this slot */
        memcpy(j->toks, s->cache, sizeof(int32_t) * (size_t)s->n_cache);
        j->n_toks = s->n_cache;
    }
    pthread_mutex_lock(&r->mu);
    s->job = NULL;
    r->n_active--;
    pthread_mutex_unlock(&r->mu);
    ns_job_finish_at(j, finish, error, end);
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
 * runner cannot be overtaken by the pause. It holds the runner before its
 * next step; the rest of this step (other slots' tokens) still happens. */
static void test_pause_point(ns_runner *r, const ns_job *j) {
    int at = atomic_load(&r->pause_at_gen);
    if (at <= 0 || j->n_gen < at) return;
    pthread_mutex_lock(&r->mu);
    r->paused = true;
    atomic_store(&r->pause_at_gen, 0);
    pthread_mutex_unlock(&r->mu);
}

/* The context is full: keep the first n_keep tokens and the most recent
 * half of the rest. Their KV is recomputed from n_keep on (positions move,
 * and keys carry their position). */
static void context_shift(ns_runner *r, ns_slot *s) {
    ns_job *j = s->job;
    int keep = j->n_keep < s->n_cache - 2 ? j->n_keep : 0;
    int discard = (s->n_cache - keep) / 2;
    int before = s->n_cache;
    memmove(s->cache + keep, s->cache + keep + discard, sizeof(int32_t) * (size_t)(s->n_cache - keep - discard));
    s->n_cache -= discard;
    s->n_kv = keep;
    ns_seq_truncate(r->ctx, s->seq, keep);
    s->generating = false;
    j->n_shifts++;
    ns_log_info("runtime", "context shift", "model=%s request=\"%s\" tokens_before=%d tokens_after=%d n_keep=%d",
                r->model, j->request_id, before, s->n_cache, keep);
    if (r->events) {
        cJSON *d = cJSON_CreateObject();
        cJSON_AddNumberToObject(d, "tokens_before", before);
        cJSON_AddNumberToObject(d, "tokens_after", s->n_cache);
        cJSON_AddNumberToObject(d, "n_keep", keep);
        if (j->session[0]) cJSON_AddStringToObject(d, "session", j->session);
        publish(r, NS_EV_CONTEXT_SHIFTED, j->request_id, d);
    }
}

/* Samples and emits the next token of a generating slot. Returns false when
 * the job ended; else the token is appended to the slot's cache, to be
 * evaluated in this step. */
static bool next_token(ns_runner *r, ns_slot *s) {
    ns_job *j = s->job;
    if (j->n_predict >= 0 && j->n_gen >= j->n_predict) {
        end_slot(r, s, NS_FINISH_LENGTH, NULL);
        return false;
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
        return false;
    }
    ns_sampler_accept(j->sampler, tok);
    j->n_gen++;
    if (j->json) ns_json_constraint_accept(j->json, tok);
    if (ns_vocab_is_eog(r->vocab, tok)) {
        end_slot(r, s, NS_FINISH_STOP, NULL);
        return false;
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
    s->cache[s->n_cache++] = tok; /* room: the cache holds n_ctx + 1; evaluated in this step */
    test_pause_point(r, j);
    ns_job_push_token(j, tok, out, n_out, lp, n_lp > 0 ? n_lp : 0);
    free(heap);

    if (ns_stop_hit(j->stop)) {
        end_slot(r, s, NS_FINISH_STOP, NULL);
        return false;
    }
    if (j->n_predict >= 0 && j->n_gen >= j->n_predict) {
        end_slot(r, s, NS_FINISH_LENGTH, NULL);
        return false;
    }
    if (s->n_cache > r->n_ctx) {
        if (!j->context_shift || r->n_ctx < 4) {
            end_slot(r, s, NS_FINISH_CONTEXT, NULL);
            return false;
        }
        context_shift(r, s);
    }
    return true;
}

/* Cancellation, timeout and the first-step announcement. False when the
 * job ended. */
static bool slot_alive(ns_runner *r, ns_slot *s) {
    ns_job *j = s->job;
    if (atomic_load(&j->cancel) || atomic_load(&r->cancel_all)) {
        end_slot(r, s, NS_FINISH_CANCELLED, NULL);
        return false;
    }
    if (r->timeout_ns > 0 && ns_now_mono() - j->t_submit > r->timeout_ns) {
        end_slot(r, s, NS_FINISH_TIMEOUT, NULL);
        return false;
    }
    if (s->announce) {
        s->announce = false;
        announce(r, j);
    }
    return true;
}

/* One forward pass for every active slot. */
static void step(ns_runner *r) {
    int n_items = 0, budget = r->n_batch, n_gen_slots = 0;
    /* generating slots first: each adds its next token */
    for (int k = 0; k < r->n_slots && budget > 0; k++) {
        ns_slot *s = &r->slots[(r->rr + k) % r->n_slots];
        if (!s->job || !s->generating || !slot_alive(r, s)) continue;
        if (!next_token(r, s)) continue;
        n_gen_slots++;
        if (!s->generating) continue; /* shifted: its tail is a prompt now */
        r->items[n_items] = (ns_batch_item){s->seq, s->cache + s->n_kv, 1};
        r->item_slot[n_items++] = s;
        budget--;
    }
    /* then prompt tokens, in turn, within what is left */
    if (n_gen_slots > 0 && budget > PROMPT_TOKENS_PER_STEP) budget = PROMPT_TOKENS_PER_STEP;
    for (int k = 0; k < r->n_slots && budget > 0; k++) {
        ns_slot *s = &r->slots[(r->rr + k) % r->n_slots];
        if (!s->job || s->generating || !slot_alive(r, s)) continue;
        int n = s->n_cache - s->n_kv;
        if (n > budget) n = budget;
        r->items[n_items] = (ns_batch_item){s->seq, s->cache + s->n_kv, n};
        r->item_slot[n_items++] = s;
        budget -= n;
    }
    r->rr = (r->rr + 1) % r->n_slots;
    if (n_items == 0) return;

    char err[256];
    if (ns_decode_batch(r->ctx, r->items, n_items, err, sizeof err) != 0) {
        /* what the caches hold is no longer known for sure: start them afresh */
        for (int i = 0; i < n_items; i++) {
            ns_slot *s = r->item_slot[i];
            ns_seq_truncate(r->ctx, s->seq, 0);
            s->n_kv = 0;
            end_slot(r, s, NS_FINISH_ERROR, err);
        }
        return;
    }
    for (int i = 0; i < n_items; i++) {
        ns_slot *s = r->item_slot[i];
        s->n_kv += r->items[i].n;
        if (s->n_kv == s->n_cache) {
            memcpy(s->logits, ns_context_batch_logits(r->ctx, i), sizeof(float) * (size_t)r->n_vocab);
            s->generating = true;
        }
    }
}

/* ---- session KV operations (on the runner thread) ---- */

/* Evaluates tokens[from..n) into the slot, which holds tokens[0..from). */
static int eval_into(ns_runner *r, ns_slot *s, const int32_t *tokens, int from, int n, char *err, size_t errlen) {
    ns_seq_truncate(r->ctx, s->seq, from);
    s->n_kv = from;
    s->n_cache = from;
    while (s->n_kv < n) {
        int chunk = n - s->n_kv < r->n_batch ? n - s->n_kv : r->n_batch;
        if (ns_decode(r->ctx, s->seq, tokens + s->n_kv, chunk, false, err, errlen) != 0) {
            ns_seq_truncate(r->ctx, s->seq, 0);
            s->n_kv = s->n_cache = 0;
            return 500;
        }
        memcpy(s->cache + s->n_kv, tokens + s->n_kv, sizeof(int32_t) * (size_t)chunk);
        s->n_kv += chunk;
        s->n_cache = s->n_kv;
    }
    s->generating = false;
    return 0;
}

/* Reads an image straight into the slot's rows through op->io. */
static int load_pieces(ns_runner *r, ns_slot *s, kv_op *op) {
    int n = ns_seq_state_load_pieces(r->ctx, s->seq, op->n_tokens, r->pieces, r->n_pieces, op->err, sizeof op->err);
    if (n < 0) return 400;
    int st = op->io(op->io_arg, r->pieces, n, op->err, sizeof op->err);
    if (st != 0) {
        ns_seq_truncate(r->ctx, s->seq, 0);
        return st;
    }
    return ns_seq_state_load_commit(r->ctx, s->seq, op->err, sizeof op->err) != 0 ? 400 : 0;
}

static void run_op(ns_runner *r, kv_op *op) {
    if (op->n_tokens > r->n_ctx) {
        op->status = 400;
        snprintf(op->err, sizeof op->err, "the session has %d tokens but the context of %.64s is %d", op->n_tokens,
                 r->model, r->n_ctx);
        return;
    }
    int common = 0;
    pthread_mutex_lock(&r->mu);
    ns_slot *s = pick_slot(r, op->session, op->tokens, op->n_tokens, &common);
    pthread_mutex_unlock(&r->mu);
    if (!s) {
        op->status = tagged_slot(r, op->session) ? 409 : 503;
        snprintf(op->err, sizeof op->err, op->status == 409 ? "session '%s' is busy with a request"
                                                            : "every slot of the model is busy; try again (session '%s')",
                 op->session);
        return;
    }
    s->last_used = ++r->clock;
    if (op->import) {
        s->tag[0] = 0;
        s->n_kv = s->n_cache = 0;
        if (op->io) {
            if ((op->status = load_pieces(r, s, op)) != 0) return;
        } else if (ns_seq_state_load(r->ctx, s->seq, op->kv_in, op->kv_in_bytes, op->err, sizeof op->err) != 0) {
            ns_seq_truncate(r->ctx, s->seq, 0);
            op->status = 400;
            return;
        }
        if (ns_seq_len(r->ctx, s->seq) != op->n_tokens) {
            snprintf(op->err, sizeof op->err, "the KV image holds %d tokens but the session has %d",
                     ns_seq_len(r->ctx, s->seq), op->n_tokens);
            ns_seq_truncate(r->ctx, s->seq, 0);
            op->status = 400;
            return;
        }
        memcpy(s->cache, op->tokens, sizeof(int32_t) * (size_t)op->n_tokens);
        s->n_kv = s->n_cache = op->n_tokens;
        s->generating = false;
        snprintf(s->tag, sizeof s->tag, "%s", op->session);
        return;
    }
    if (common < op->n_tokens || s->n_kv != op->n_tokens) {
        op->status = eval_into(r, s, op->tokens, common, op->n_tokens, op->err, sizeof op->err);
        if (op->status) return;
    }
    snprintf(s->tag, sizeof s->tag, "%s", op->session);
    if (op->io) {
        int n = ns_seq_state_pieces(r->ctx, s->seq, r->pieces, r->n_pieces);
        if (n < 0) {
            op->status = 500;
            snprintf(op->err, sizeof op->err, "cannot list the KV of session '%s'", op->session);
            return;
        }
        op->status = op->io(op->io_arg, r->pieces, n, op->err, sizeof op->err);
        return;
    }
    size_t need = ns_seq_state_size(r->ctx, s->seq);
    op->kv_out = malloc(need);
    if (!op->kv_out) {
        op->status = 500;
        snprintf(op->err, sizeof op->err, "out of memory for a KV image of %zu bytes", need);
        return;
    }
    if (ns_seq_state_save(r->ctx, s->seq, op->kv_out, need) != 0) {
        free(op->kv_out);
        op->kv_out = NULL;
        op->status = 500;
        snprintf(op->err, sizeof op->err, "cannot save the KV of session '%s'", op->session);
        return;
    }
    op->kv_out_bytes = need;
}

/* Under mu: runs the waiting operations (mu released while each runs). */
static void run_ops(ns_runner *r) {
    while (r->ops) {
        kv_op *op = r->ops;
        r->ops = op->next;
        pthread_mutex_unlock(&r->mu);
        if (atomic_load(&r->cancel_all)) {
            op->status = 503;
            snprintf(op->err, sizeof op->err, "server is shutting down");
        } else {
            run_op(r, op);
        }
        pthread_mutex_lock(&r->mu);
        op->done = true;
        pthread_cond_broadcast(&r->op_cv);
    }
}

static int submit_op(ns_runner *r, kv_op *op) {
    pthread_mutex_lock(&r->mu);
    if (r->stop) {
        pthread_mutex_unlock(&r->mu);
        snprintf(op->err, sizeof op->err, "server is shutting down");
        return 503;
    }
    op->next = NULL;
    kv_op **pp = &r->ops;
    while (*pp) pp = &(*pp)->next;
    *pp = op;
    pthread_cond_signal(&r->cv);
    while (!op->done) pthread_cond_wait(&r->op_cv, &r->mu);
    pthread_mutex_unlock(&r->mu);
    return op->status;
}

int ns_runner_kv_export(ns_runner *r, const char *session, const int32_t *tokens, int n_tokens, void **kv,
                        size_t *kv_bytes, char *err, size_t errlen) {
    kv_op op = {.session = session, .tokens = tokens, .n_tokens = n_tokens};
    int st = submit_op(r, &op);
    if (st) {
        snprintf(err, errlen, "%s", op.err);
        return st;
    }
    *kv = op.kv_out;
    *kv_bytes = op.kv_out_bytes;
    return 0;
}

int ns_runner_kv_import(ns_runner *r, const char *session, const int32_t *tokens, int n_tokens, const void *kv,
                        size_t kv_bytes, char *err, size_t errlen) {
    kv_op op = {.import = true, .session = session, .tokens = tokens, .n_tokens = n_tokens, .kv_in = kv,
                .kv_in_bytes = kv_bytes};
    int st = submit_op(r, &op);
    if (st) snprintf(err, errlen, "%s", op.err);
    return st;
}

int ns_runner_kv_save_with(ns_runner *r, const char *session, const int32_t *tokens, int n_tokens, ns_kv_io_fn io,
                           void *arg, char *err, size_t errlen) {
    kv_op op = {.session = session, .tokens = tokens, .n_tokens = n_tokens, .io = io, .io_arg = arg};
    int st = submit_op(r, &op);
    if (st) snprintf(err, errlen, "%s", op.err);
    return st;
}

int ns_runner_kv_load_with(ns_runner *r, const char *session, const int32_t *tokens, int n_tokens, ns_kv_io_fn io,
                           void *arg, char *err, size_t errlen) {
    kv_op op = {.import = true, .session = session, .tokens = tokens, .n_tokens = n_tokens, .io = io, .io_arg = arg};
    int st = submit_op(r, &op);
    if (st) snprintf(err, errlen, "%s", op.err);
    return st;
}

void ns_runner_forget(ns_runner *r, const char *session) {
    pthread_mutex_lock(&r->mu);
    /* a running job keeps its tag until it ends; only an idle slot forgets */
    for (int i = 0; i < r->n_slots; i++)
        if (!r->slots[i].job && strcmp(r->slots[i].tag, session) == 0) r->slots[i].tag[0] = 0;
    pthread_mutex_unlock(&r->mu);
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
        ns_job_finish_at(j, finish, NULL, ns_now_mono());
        j = next;
    }
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
        if (!r->paused) run_ops(r);
        if (!r->paused) admit(r);
        if (r->stop && r->n_active == 0 && !r->qhead && !r->ops) break;
        if (r->n_active == 0 || r->paused) {
            pthread_cond_wait(&r->cv, &r->mu);
            continue;
        }
        pthread_mutex_unlock(&r->mu);
        step(r);
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
    free(r->items);
    free(r->item_slot);
    free(r->pieces);
    pthread_cond_destroy(&r->op_cv);
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
    pthread_cond_init(&r->op_cv, NULL);
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
    r->n_pieces = 1 + 2 * ns_model_hparams(lm->model)->n_layer;
    r->pieces = malloc(sizeof *r->pieces * (size_t)r->n_pieces);
    r->slots = calloc((size_t)r->n_slots, sizeof *r->slots);
    r->work = malloc(sizeof(float) * (size_t)r->n_vocab);
    r->items = malloc(sizeof *r->items * (size_t)r->n_slots);
    r->item_slot = malloc(sizeof *r->item_slot * (size_t)r->n_slots);
    if (!r->slots || !r->work || !r->items || !r->item_slot || !r->pieces) goto oom;
    for (int i = 0; i < r->n_slots; i++) {
        ns_slot *s = &r->slots[i];
        s->seq = i;
        s->cache = malloc(sizeof(int32_t) * ((size_t)r->n_ctx + 1));
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
