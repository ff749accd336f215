/* The runtime manager, runner and jobs with the real stories260K model (and
 * tiny-llama-q4_0 for a second file): outputs equal a direct engine loop,
 * concurrency, prefix reuse, cancellation, queue limits, keep_alive,
 * eviction, reload and shutdown. Where a test needs a job to be at a given
 * point (queued, mid-generation), the runner is paused through the test
 * hooks of runtime_internal.h, never by timing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nstack/model.h"
#include "nstack/sampler.h"
#include "runtime/events.h"
#include "runtime/runtime.h"
#include "runtime/runtime_internal.h"
#include "runtime/store.h"
#include "testutil.h"

static char stories_path[4096];
static char tiny_path[4096];
static char tmp_dir[256];
static char models_dir[512];
static ns_model *ref_model; /* stories260K, for the reference loop and tokenizing */
static ns_store *store;
static const char *prompt_text = "Once upon a time";

enum { WAIT_MS = 60000 };

/* ---- helpers ---- */

typedef struct {
    int32_t *ids;
    int n;
} toks;

static toks tokenize(const char *text) {
    const ns_vocab *v = ns_model_vocab(ref_model);
    int n = ns_tokenize(v, text, strlen(text), ns_vocab_add_bos(v), true, NULL, 0);
    toks t = {malloc(sizeof(int32_t) * (size_t)n), n};
    ns_tokenize(v, text, strlen(text), ns_vocab_add_bos(v), true, t.ids, n);
    return t;
}

/* What a job produced. */
typedef struct {
    int32_t tokens[1024];
    int n_tokens;
    char text[8192];
    size_t text_len;
    ns_job_stats stats;
    int n_lp_first;
    ns_token_logprob lp_first[1 + NS_MAX_TOP_LOGPROBS];
    int events_after_done; /* ns_job_next's answer after DONE */
} result;

static void result_add(result *r, const ns_job_event *ev) {
    if (ev->token >= 0 && r->n_tokens < 1024) {
        if (r->n_tokens == 0) {
            r->n_lp_first = ev->n_lp;
            memcpy(r->lp_first, ev->lp, sizeof ev->lp);
        }
        r->tokens[r->n_tokens++] = ev->token;
    }
    if (r->text_len + ev->len < sizeof r->text) {
        memcpy(r->text + r->text_len, ev->text, ev->len);
        r->text_len += ev->len;
        r->text[r->text_len] = 0;
    }
}

/* Reads a job to its end; 0, or -1 when it stalls (no event for WAIT_MS). */
static int drain(ns_job *j, result *r) {
    memset(r, 0, sizeof *r);
    for (;;) {
        ns_job_event ev;
        int rc = ns_job_next(j, &ev, WAIT_MS);
        if (rc <= 0) return -1;
        if (ev.kind == NS_JOB_DONE) {
            r->stats = ev.stats;
            r->stats.context = NULL;
            ns_job_event_clear(&ev);
            r->events_after_done = ns_job_next(j, &ev, 0);
            return 0;
        }
        result_add(r, &ev);
        ns_job_event_clear(&ev);
    }
}

static ns_gen_params greedy(const toks *p, long long n_predict) {
    ns_gen_params g;
    memset(&g, 0, sizeof g);
    g.prompt = p->ids;
    g.n_prompt = p->n;
    g.sampling = ns_sampler_defaults();
    g.sampling.temperature = 0;
    g.n_predict = n_predict;
    return g;
}

/* The engine alone: decode the prompt, then argmax, piece, decode, as the
 * CLI does, on a context like the runtime's (n_ctx tokens). */
static void reference(const toks *p, int n_predict, int n_ctx, result *r) {
    memset(r, 0, sizeof *r);
    char err[256];
    ns_context_params cp = {.n_ctx = n_ctx, .n_seq = 1, .n_threads = 1};
    ns_context *c = ns_context_new(ref_model, &cp, err, sizeof err);
    assert_non_null(c);
    const ns_vocab *v = ns_model_vocab(ref_model);
    const int n_vocab = ns_model_hparams(ref_model)->n_vocab;
    assert_int_equal(ns_decode(c, 0, p->ids, p->n, false, err, sizeof err), 0);
    bool prev_bos = p->ids[p->n - 1] == ns_vocab_bos(v);
    for (int i = 0; i < n_predict; i++) {
        int32_t tok = ns_argmax(ns_context_logits(c, -1), n_vocab);
        if (ns_vocab_is_eog(v, tok)) break;
        char piece[256];
        int len = ns_token_to_piece(v, tok, false, piece, sizeof piece);
        int skip = (prev_bos && len > 0 && piece[0] == ' ') ? 1 : 0;
        prev_bos = false;
        r->tokens[r->n_tokens++] = tok;
        if (len > skip) {
            memcpy(r->text + r->text_len, piece + skip, (size_t)(len - skip));
            r->text_len += (size_t)(len - skip);
            r->text[r->text_len] = 0;
        }
        if (ns_seq_len(c, 0) >= n_ctx) break;
        assert_int_equal(ns_decode(c, 0, &tok, 1, false, err, sizeof err), 0);
    }
    ns_context_free(c);
}

static void assert_same_output(const result *want, const result *got) {
    assert_int_equal(got->n_tokens, want->n_tokens);
    assert_memory_equal(got->tokens, want->tokens, sizeof(int32_t) * (size_t)want->n_tokens);
    assert_string_equal(got->text, want->text);
}

static ns_runtime_config base_config(ns_events *events) {
    ns_runtime_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.store = store;
    cfg.events = events;
    cfg.defaults.n_thread = 1;
    return cfg;
}

static ns_runtime *new_runtime(const ns_runtime_config *cfg) {
    char err[256] = "";
    ns_runtime *rt = ns_runtime_new(cfg, err, sizeof err);
    if (!rt) fprintf(stderr, "ns_runtime_new: %s\n", err);
    assert_non_null(rt);
    return rt;
}

static ns_loaded *acquire(ns_runtime *rt, const char *path, const ns_load_opts *o) {
    char err[256] = "";
    int status = 0;
    int64_t load_ns = -1;
    ns_loaded *lm = ns_runtime_acquire(rt, path, o, &load_ns, &status, err, sizeof err);
    if (!lm) fprintf(stderr, "acquire %s: %d %s\n", path, status, err);
    assert_non_null(lm);
    assert_int_equal(status, 200);
    assert_true(load_ns >= 0);
    return lm;
}

static ns_job *submit(ns_loaded *lm, const ns_gen_params *g) {
    char err[256] = "";
    int status = 0;
    ns_job *j = ns_job_submit(lm, g, &status, err, sizeof err);
    if (!j) fprintf(stderr, "submit: %d %s\n", status, err);
    assert_non_null(j);
    return j;
}

static int ps_count(ns_runtime *rt) {
    ns_loaded_info *info;
    int n;
    assert_int_equal(ns_runtime_ps(rt, &info, &n), 0);
    free(info);
    return n;
}

/* ---- tests ---- */

static void test_greedy_equals_engine(void **state) {
    (void)state;
    ns_runtime_config cfg = base_config(NULL);
    ns_runtime *rt = new_runtime(&cfg);
    ns_loaded *lm = acquire(rt, stories_path, NULL);
    assert_int_equal(ns_loaded_n_ctx(lm), 512); /* default 4096, capped by the model's 512 */
    toks p = tokenize(prompt_text);
    result want, got;
    reference(&p, 48, 512, &want);
    assert_int_equal(want.n_tokens, 48);

    ns_gen_params g = greedy(&p, 48);
    ns_job *j = submit(lm, &g);
    ns_runtime_release(rt, lm, NS_KEEP_ALIVE_DEFAULT);
    assert_int_equal(drain(j, &got), 0);
    assert_same_output(&want, &got);
    assert_int_equal(got.stats.finish, NS_FINISH_LENGTH);
    assert_int_equal(got.stats.n_gen, 48);
    assert_int_equal(got.stats.n_prompt, p.n);
    assert_int_equal(got.events_after_done, -1);
    assert_true(got.stats.total_ns >= got.stats.eval_ns);
    ns_job_free(j);

    /* the DONE event's context: the prompt, then the generated tokens */
    j = submit(lm = acquire(rt, stories_path, NULL), &g);
    ns_runtime_release(rt, lm, NS_KEEP_ALIVE_DEFAULT);
    ns_job_event ev;
    for (;;) {
        assert_int_equal(ns_job_next(j, &ev, WAIT_MS), 1);
        if (ev.kind == NS_JOB_DONE) break;
        ns_job_event_clear(&ev);
    }
    assert_int_equal(ev.stats.n_context, p.n + 48);
    assert_memory_equal(ev.stats.context, p.ids, sizeof(int32_t) * (size_t)p.n);
    assert_memory_equal(ev.stats.context + p.n, want.tokens, sizeof(int32_t) * 48);
    ns_job_event_clear(&ev);
    ns_job_free(j);

    /* the model stays warm: a second acquire does not load */
    int64_t load_ns = -1;
    int status;
    char err[256];
    lm = ns_runtime_acquire(rt, stories_path, NULL, &load_ns, &status, err, sizeof err);
    assert_non_null(lm);
    assert_int_equal(load_ns, 0);
    ns_runtime_release(rt, lm, NS_KEEP_ALIVE_DEFAULT);
    assert_int_equal(ps_count(rt), 1);
    free(p.ids);
    ns_runtime_free(rt, 0);
}

typedef struct {
    ns_runtime *rt;
    const toks *p;
    result res;
    int status;
} worker;

static void *worker_main(void *arg) {
    worker *w = arg;
    char err[256];
    int64_t load_ns;
    ns_loaded *lm = ns_runtime_acquire(w->rt, stories_path, NULL, &load_ns, &w->status, err, sizeof err);
    if (!lm) return NULL;
    ns_gen_params g = greedy(w->p, 40);
    ns_job *j = ns_job_submit(lm, &g, &w->status, err, sizeof err);
    ns_runtime_release(w->rt, lm, NS_KEEP_ALIVE_DEFAULT);
    if (!j) return NULL;
    if (drain(j, &w->res) != 0) w->status = -1;
    ns_job_free(j);
    return NULL;
}

static void test_eight_jobs_on_four_slots(void **state) {
    (void)state;
    ns_events *ev = ns_events_new();
    ns_runtime_config cfg = base_config(ev);
    cfg.num_parallel = 4;
    ns_runtime *rt = new_runtime(&cfg);
    toks p = tokenize(prompt_text);
    result want;
    reference(&p, 40, 512, &want);
    enum { N = 8 };
    worker w[N];
    pthread_t th[N];
    for (int i = 0; i < N; i++) {
        memset(&w[i], 0, sizeof w[i]);
        w[i].rt = rt;
        w[i].p = &p;
        assert_int_equal(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
    }
    for (int i = 0; i < N; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < N; i++) {
        assert_int_equal(w[i].status, 200);
        assert_same_output(&want, &w[i].res);
        assert_int_equal(w[i].res.stats.finish, NS_FINISH_LENGTH);
    }
    /* eight acquires at once, one load */
    ns_event evs[NS_EVENTS_RING];
    int n = ns_events_recent(ev, 0, evs, NS_EVENTS_RING);
    int loads = 0, started = 0, completed = 0;
    for (int i = 0; i < n; i++) {
        if (evs[i].kind == NS_EV_LOAD_STARTED) loads++;
        if (evs[i].kind == NS_EV_GEN_STARTED) started++;
        if (evs[i].kind == NS_EV_GEN_COMPLETED) {
            completed++;
            assert_non_null(strstr(evs[i].detail, "\"finish\":\"length\""));
        }
    }
    assert_int_equal(loads, 1);
    assert_int_equal(started, N);
    assert_int_equal(completed, N);
    assert_int_equal(ps_count(rt), 1);
    free(p.ids);
    ns_runtime_free(rt, 0);
    ns_events_free(ev);
}

static void test_prefix_reuse(void **state) {
    (void)state;
    ns_runtime_config cfg = base_config(NULL);
    ns_runtime *rt = new_runtime(&cfg);
    ns_loaded *lm = acquire(rt, stories_path, NULL);
    toks p = tokenize(prompt_text);
    result first, got, want;
    ns_gen_params g = greedy(&p, 16);
    ns_job *j = submit(lm, &g);
    assert_int_equal(drain(j, &first), 0);
    ns_job_free(j);
    assert_int_equal(first.stats.n_prompt_cached, 0);

    /* the next turn: the prompt, 8 of the generated tokens and more text */
    toks more = tokenize(" The end.");
    toks q = {malloc(sizeof(int32_t) * (size_t)(p.n + 8 + more.n)), p.n + 8 + more.n - 1};
    memcpy(q.ids, p.ids, sizeof(int32_t) * (size_t)p.n);
    memcpy(q.ids + p.n, first.tokens, sizeof(int32_t) * 8);
    memcpy(q.ids + p.n + 8, more.ids + 1, sizeof(int32_t) * (size_t)(more.n - 1)); /* without its BOS */
    reference(&q, 24, 512, &want);
    g = greedy(&q, 24);
    j = submit(lm, &g);
    assert_int_equal(drain(j, &got), 0);
    ns_job_free(j);
    assert_int_equal(got.stats.n_prompt, q.n);
    assert_int_equal(got.stats.n_prompt_cached, p.n + 8);
    assert_same_output(&want, &got);

    /* the same prompt again: everything but the last token comes from the cache */
    j = submit(lm, &g);
    assert_int_equal(drain(j, &got), 0);
    ns_job_free(j);
    assert_int_equal(got.stats.n_prompt_cached, q.n - 1);
    assert_same_output(&want, &got);

    /* the first prompt again: a shorter prefix of what the slot holds */
    reference(&p, 16, 512, &want);
    g = greedy(&p, 16);
    j = submit(lm, &g);
    assert_int_equal(drain(j, &got), 0);
    ns_job_free(j);
    assert_int_equal(got.stats.n_prompt_cached, p.n - 1);
    assert_same_output(&want, &got);

    ns_runtime_release(rt, lm, NS_KEEP_ALIVE_DEFAULT);
    free(p.ids);
    free(q.ids);
    free(more.ids);
    ns_runtime_free(rt, 0);
}

/* Different prompts at once share each forward pass and still give each
 * its own greedy output (stories260K has F32 weights: exact). */
static void test_batched_different_prompts(void **state) {
    (void)state;
    ns_runtime_config cfg = base_config(NULL);
    cfg.num_parallel = 4;
    ns_runtime *rt = new_runtime(&cfg);
    ns_loaded *lm = acquire(rt, stories_path, NULL);
    static const char *const texts[6] = {"Once upon a time", "The little dog", "Lily and Ben went to the park",
                                         "One day, a big", "Tom had a red ball. He", "The sun"};
    toks p[6];
    ns_job *j[6];
    for (int i = 0; i < 6; i++) {
        p[i] = tokenize(texts[i]);
        ns_gen_params g = greedy(&p[i], 20 + 4 * i);
        j[i] = submit(lm, &g);
    }
    for (int i = 0; i < 6; i++) {
        result want, got;
        reference(&p[i], 20 + 4 * i, 512, &want);
        assert_int_equal(drain(j[i], &got), 0);
        assert_same_output(&want, &got);
        ns_job_free(j[i]);
        free(p[i].ids);
    }
    ns_runtime_release(rt, lm, NS_KEEP_ALIVE_DEFAULT);
    ns_runtime_free(rt, 0);
}

/* Runs g to its end and returns its context (prompt + generated), malloc'd. */
static int32_t *run_for_context(ns_loaded *lm, const ns_gen_params *g, int *n, result *res) {
    ns_job *j = submit(lm, g);
    memset(res, 0, sizeof *res);
    int32_t *ctx = NULL;
    for (;;) {
        ns_job_event ev;
        assert_int_equal(ns_job_next(j, &ev, WAIT_MS), 1);
        if (ev.kind == NS_JOB_DONE) {
            res->stats = ev.stats;
            ctx = ev.stats.context;
            *n = ev.stats.n_context;
            res->stats.context = NULL;
            ev.stats.context = NULL;
            ns_job_event_clear(&ev);
            break;
        }
        result_add(res, &ev);
        ns_job_event_clear(&ev);
    }
    ns_job_free(j);
    return ctx;
}

/* The reference for a context shift: what the runner promises, done with
 * the engine alone (keep n_keep, drop half of the rest, re-evaluate). */
static void reference_shift(const toks *p, int n_predict, int n_ctx, int n_keep, result *r, int *shifts, int32_t *kept,
                            int *kept_n) {
    memset(r, 0, sizeof *r);
    *shifts = 0;
    char err[256];
    ns_context_params cp = {.n_ctx = n_ctx, .n_seq = 1, .n_threads = 1};
    ns_context *c = ns_context_new(ref_model, &cp, err, sizeof err);
    assert_non_null(c);
    const ns_vocab *v = ns_model_vocab(ref_model);
    const int n_vocab = ns_model_hparams(ref_model)->n_vocab;
    int32_t *cache = malloc(sizeof(int32_t) * (size_t)(n_ctx + 1));
    memcpy(cache, p->ids, sizeof(int32_t) * (size_t)p->n);
    int n = p->n;
    assert_int_equal(ns_decode(c, 0, cache, n, false, err, sizeof err), 0);
    for (int i = 0; i < n_predict; i++) {
        int32_t tok = ns_argmax(ns_context_logits(c, -1), n_vocab);
        if (ns_vocab_is_eog(v, tok)) break;
        r->tokens[r->n_tokens++] = tok;
        cache[n++] = tok;
        if (i + 1 == n_predict) break;
        if (n > n_ctx) {
            int discard = (n - n_keep) / 2;
            memmove(cache + n_keep, cache + n_keep + discard, sizeof(int32_t) * (size_t)(n - n_keep - discard));
            n -= discard;
            ns_seq_truncate(c, 0, n_keep);
            assert_int_equal(ns_decode(c, 0, cache + n_keep, n - n_keep, false, err, sizeof err), 0);
            (*shifts)++;
        } else {
            assert_int_equal(ns_decode(c, 0, &tok, 1, false, err, sizeof err), 0);
        }
    }
    memcpy(kept, cache, sizeof(int32_t) * (size_t)n);
    *kept_n = n;
    free(cache);
    ns_context_free(c);
}

static void test_context_shift(void **state) {
    (void)state;
    ns_events *ev = ns_events_new();
    ns_runtime_config cfg = base_config(ev);
    ns_runtime *rt = new_runtime(&cfg);
    ns_load_opts o = {.n_ctx = 48};
    ns_loaded *lm = acquire(rt, stories_path, &o);
    toks p = tokenize("Once upon a time, there was a little girl");
    /* without a shift the context ends the job */
    ns_gen_params g = greedy(&p, 100);
    result got, want;
    ns_job *j = submit(lm, &g);
    assert_int_equal(drain(j, &got), 0);
    ns_job_free(j);
    assert_int_equal(got.stats.finish, NS_FINISH_CONTEXT);
    /* with one it goes on, keeping the prompt's first 4 tokens */
    g.context_shift = true;
    g.n_keep = 4;
    int n_ctxt;
    int32_t *got_context = run_for_context(lm, &g, &n_ctxt, &got);
    int shifts, kept_n;
    int32_t kept[64];
    reference_shift(&p, 100, 48, 4, &want, &shifts, kept, &kept_n);
    assert_true(shifts >= 2);
    assert_int_equal(got.stats.finish, want.n_tokens == 100 ? NS_FINISH_LENGTH : NS_FINISH_STOP);
    assert_int_equal(got.stats.n_shifts, shifts);
    assert_int_equal(n_ctxt, kept_n);
    assert_memory_equal(got_context, kept, sizeof(int32_t) * (size_t)kept_n);
    assert_int_equal(got.n_tokens, want.n_tokens);
    assert_memory_equal(got.tokens, want.tokens, sizeof(int32_t) * (size_t)want.n_tokens);
    ns_event evs[NS_EVENTS_RING];
    int n = ns_events_recent(ev, 0, evs, NS_EVENTS_RING), seen = 0;
    for (int i = 0; i < n; i++)
        if (evs[i].kind == NS_EV_CONTEXT_SHIFTED) {
            seen++;
            assert_non_null(strstr(evs[i].detail, "\"n_keep\":4"));
        }
    assert_int_equal(seen, shifts);
    free(got_context);
    free(p.ids);
    ns_runtime_release(rt, lm, NS_KEEP_ALIVE_DEFAULT);
    ns_runtime_free(rt, 0);
    ns_events_free(ev);
}

typedef struct {
    uint8_t *img;
    size_t size, at;
} pieces_buf;

static int check_pieces(void *arg, const struct iovec *pc, int n, char *err, size_t errlen) {
    pieces_buf *b = arg;
    for (int i = 0; i < n; i++) {
        if (b->at + pc[i].iov_len > b->size || memcmp(b->img + b->at, pc[i].iov_base, pc[i].iov_len) != 0) {
            snprintf(err, errlen, "piece %d differs", i);
            return 500;
        }
        b->at += pc[i].iov_len;
    }
    return 0;
}

static int fill_pieces(void *arg, const struct iovec *pc, int n, char *err, size_t errlen) {
    pieces_buf *b = arg;
    (void)err;
    (void)errlen;
    for (int i = 0; i < n; i++) {
        memcpy(pc[i].iov_base, b->img + b->at, pc[i].iov_len);
        b->at += pc[i].iov_len;
    }
    return 0;
}

static int failing_io(void *arg, const struct iovec *pc, int n, char *err, size_t errlen) {
    (void)arg;
    (void)pc;
    (void)n;
    snprintf(err, errlen, "disk full");
    return 507;
}

/* A session keeps its slot while other requests come and go, and its KV
 * moves out (export) and into another session's slot (import). */
static void test_session_slots_and_kv(void **state) {
    (void)state;
    ns_runtime_config cfg = base_config(NULL);
    cfg.num_parallel = 2;
    ns_runtime *rt = new_runtime(&cfg);
    ns_loaded *lm = acquire(rt, stories_path, NULL);
    assert_string_equal(ns_loaded_kv_fingerprint(lm), "llama layers=5 kv_dim=32 kv=f16");
    toks p = tokenize("Once upon a time");
    ns_gen_params g = greedy(&p, 12);
    g.session = "s1";
    result res;
    int n_t;
    int32_t *t = run_for_context(lm, &g, &n_t, &res);
    assert_int_equal(n_t, p.n + 12);
    /* two other prompts, one after the other: they take the untagged slot */
    toks other = tokenize("The dog barked");
    for (int k = 0; k < 2; k++) {
        ns_gen_params go = greedy(&other, 8);
        int n_o;
        free(run_for_context(lm, &go, &n_o, &res));
    }
    /* the session's next turn finds its tokens (all but the last, which
     * was never evaluated) */
    toks q = {t, n_t};
    g = greedy(&q, 8);
    g.session = "s1";
    result want, got;
    reference(&q, 8, 512, &want);
    int n_u;
    int32_t *u = run_for_context(lm, &g, &n_u, &got);
    assert_int_equal(got.stats.n_prompt_cached, n_t - 1);
    assert_same_output(&want, &got);

    /* export s1's tokens, import them as s2, continue s2: nothing recomputed */
    char err[256];
    void *kv = NULL;
    size_t kv_bytes = 0;
    assert_int_equal(ns_session_kv_export(lm, "s1", u, n_u, &kv, &kv_bytes, err, sizeof err), 0);
    assert_true(kv_bytes > (size_t)n_u * 5 * 32 * 2 * 2);
    assert_int_equal(ns_session_kv_import(lm, "s2", u, n_u, kv, kv_bytes, err, sizeof err), 0);
    toks r2 = {u, n_u};
    g = greedy(&r2, 8);
    g.session = "s2";
    reference(&r2, 8, 512, &want);
    int n_v;
    free(run_for_context(lm, &g, &n_v, &got));
    assert_int_equal(got.stats.n_prompt_cached, n_u - 1);
    assert_same_output(&want, &got);
    /* an image that does not match what it claims is refused */
    assert_int_equal(ns_session_kv_import(lm, "s3", u, n_u - 1, kv, kv_bytes, err, sizeof err), 400);
    assert_non_null(strstr(err, "holds"));
    assert_int_equal(ns_session_kv_import(lm, "s3", u, n_u, kv, kv_bytes / 2, err, sizeof err), 400);
    /* the same through pieces: what io sees is the image, and filling
     * another slot's pieces from it restores it */
    pieces_buf pb = {kv, kv_bytes, 0};
    assert_int_equal(ns_session_kv_save_with(lm, "s2", u, n_u, check_pieces, &pb, err, sizeof err), 0);
    assert_int_equal(pb.at, kv_bytes);
    pb.at = 0;
    assert_int_equal(ns_session_kv_load_with(lm, "s4", u, n_u, fill_pieces, &pb, err, sizeof err), 0);
    assert_int_equal(pb.at, kv_bytes);
    g.session = "s4";
    free(run_for_context(lm, &g, &n_v, &got));
    assert_int_equal(got.stats.n_prompt_cached, n_u - 1);
    assert_same_output(&want, &got);
    /* an io failure is the caller's status, and the slot is left empty */
    assert_int_equal(ns_session_kv_load_with(lm, "s5", u, n_u, failing_io, NULL, err, sizeof err), 507);
    assert_string_equal(err, "disk full");
    ns_runtime_session_forget(rt, "s1");
    ns_runtime_session_forget(rt, "s2");
    free(kv);
    free(t);
    free(u);
    free(p.ids);
    free(other.ids);
    ns_runtime_release(rt, lm, NS_KEEP_ALIVE_DEFAULT);
    ns_runtime_free(rt, 0);
}

/* A prompt whose beginning a busy slot holds copies that KV. */
static void test_prefix_from_busy_slot(void **state) {
    (void)state;
    ns_runtime_config cfg = base_config(NULL);
    cfg.num_parallel = 2;
    ns_runtime *rt = new_runtime(&cfg);
    ns_loaded *lm = acquire(rt, stories_path, NULL);
    toks a = tokenize("Once upon a time, there was a little girl named Lily. She liked to play");
    toks b = tokenize("Once upon a time, there was a little girl named Lily. She had a dog");
    int common = 0;
    while (a.ids[common] == b.ids[common]) common++;
    assert_true(common > 10);
    ns_runtime_test_pause_at(lm, 1);
    ns_gen_params ga = greedy(&a, 16);
    ns_job *ja = submit(lm, &ga);
    ns_job_event ev;
    assert_int_equal(ns_job_next(ja, &ev, WAIT_MS), 1); /* a's prompt is in its slot; the runner holds */
    ns_job_event_clear(&ev);
    ns_gen_params gb = greedy(&b, 16);
    ns_job *jb = submit(lm, &gb);
    ns_runtime_test_pause(lm, false);
    result got_a, got_b, want;
    assert_int_equal(drain(jb, &got_b), 0);
    assert_int_equal(drain(ja, &got_a), 0);
    assert_int_equal(got_b.stats.n_prompt_cached, common);
    reference(&b, 16, 512, &want);
    assert_same_output(&want, &got_b);
    ns_job_free(ja);
    ns_job_free(jb);
    free(a.ids);
    free(b.ids);
    ns_runtime_release(rt, lm, NS_KEEP_ALIVE_DEFAULT);
    ns_runtime_free(rt, 0);
}

static void test_cancel_mid_generation(void **state) {
    (void)state;
    ns_runtime_config cfg = base_config(NULL);
    ns_runtime *rt = new_runtime(&cfg);
    ns_loaded *lm = acquire(rt, stories_path, NULL);
    toks p = tokenize(prompt_text);
    ns_runtime_test_pause_at(lm, 3);
    ns_gen_params g = greedy(&p, -1);
    ns_job *j = submit(lm, &g);
    ns_job_event ev;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(ns_job_next(j, &ev, WAIT_MS), 1);
        assert_int_equal(ev.kind, NS_JOB_TOKEN);
        ns_job_event_clear(&ev);
    }
    /* the runner holds before the 4th token */
    assert_int_equal(ns_job_next(j, &ev, 0), 0);
    ns_job_cancel(j);
    ns_runtime_test_pause(lm, false);
    result rest;
    assert_int_equal(drain(j, &rest), 0);
    assert_int_equal(rest.stats.finish, NS_FINISH_CANCELLED);
    assert_int_equal(rest.stats.n_gen, 3);
    ns_job_free(j);
    ns_runtime_release(rt, lm, NS_KEEP_ALIVE_DEFAULT);
    free(p.ids);
    ns_runtime_free(rt, 0);
}

static void test_free_before_start_and_queue_full(void **state) {
    (void)state;
    ns_runtime_config cfg = base_config(NULL);
    cfg.num_parallel = 1;
    cfg.max_queue = 2;
    ns_runtime *rt = new_runtime(&cfg);
    ns_loaded *lm = acquire(rt, stories_path, NULL);
    toks p = tokenize(prompt_text);
    ns_gen_params g = greedy(&p, 12);
    ns_runtime_test_pause(lm, true); /* nothing is admitted */
    ns_job *a = submit(lm, &g), *b = submit(lm, &g), *c = submit(lm, &g);
    char err[256] = "";
    int status = 0;
    assert_null(ns_job_submit(lm, &g, &status, err, sizeof err));
    assert_int_equal(status, 503);
    assert_non_null(strstr(err, "busy"));

    ns_loaded_info *info;
    int n;
    assert_int_equal(ns_runtime_ps(rt, &info, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(info[0].queued_jobs, 3);
    free(info);

    ns_job_free(a); /* never started: taken out of the queue */
    ns_job_cancel(c); /* queued: ends at once, CANCELLED */
    result got, want;
    assert_int_equal(drain(c, &got), 0);
    assert_int_equal(got.stats.finish, NS_FINISH_CANCELLED);
    assert_int_equal(got.stats.n_gen, 0);
    ns_job_free(c);
    assert_int_equal(ns_runtime_ps(rt, &info, &n), 0);
    assert_int_equal(info[0].queued_jobs, 1);
    free(info);
    ns_job *d = submit(lm, &g); /* room again */

    ns_runtime_test_pause(lm, false);
    reference(&p, 12, 512, &want);
    assert_int_equal(drain(b, &got), 0);
    assert_same_output(&want, &got);
    assert_int_equal(drain(d, &got), 0);
    assert_same_output(&want, &got);
    ns_job_free(b);
    ns_job_free(d);
    ns_runtime_release(rt, lm, NS_KEEP_ALIVE_DEFAULT);
    free(p.ids);
    ns_runtime_free(rt, 0);
}

static void test_bad_requests(void **state) {
    (void)state;
    ns_runtime_config cfg = base_config(NULL);
    ns_runtime *rt = new_runtime(&cfg);
    char err[256] = "";
    int status = 0;
    int64_t load_ns;

    assert_null(ns_runtime_acquire(rt, "no-such-model", NULL, &load_ns, &status, err, sizeof err));
    assert_int_equal(status, 404);
    assert_non_null(strstr(err, "not found"));

    ns_load_opts bad = {.n_ctx = -5, .num_gpu = -1};
    assert_null(ns_runtime_acquire(rt, stories_path, &bad, &load_ns, &status, err, sizeof err));
    assert_int_equal(status, 400);

    /* a file that is not a GGUF model: 500 naming the reason, not cached */
    char junk[600];
    snprintf(junk, sizeof junk, "%s/junk.gguf", tmp_dir);
    FILE *f = fopen(junk, "wb");
    assert_non_null(f);
    fputs("this is not a gguf file at all, just text", f);
    fclose(f);
    assert_null(ns_runtime_acquire(rt, junk, NULL, &load_ns, &status, err, sizeof err));
    assert_int_equal(status, 500);
    assert_int_equal(ps_count(rt), 0);
    unlink(junk);

    ns_load_opts small = {.n_ctx = 64, .num_gpu = -1};
    ns_loaded *lm = acquire(rt, stories_path, &small);
    assert_int_equal(ns_loaded_n_ctx(lm), 64);
    toks p = {malloc(sizeof(int32_t) * 65), 65};
    for (int i = 0; i < 65; i++) p.ids[i] = 1 + i;
    ns_gen_params g = greedy(&p, 4);
    assert_null(ns_job_submit(lm, &g, &status, err, sizeof err));
    assert_int_equal(status, 400);
    assert_string_equal(err, "prompt is 65 tokens but the context is 64");

    g.n_prompt = 4;
    g.sampling.top_p = 1.5f;
    assert_null(ns_job_submit(lm, &g, &status, err, sizeof err));
    assert_int_equal(status, 400);
    assert_non_null(strstr(err, "top_p"));
    g.sampling.top_p = 1.0f;
    g.top_logprobs = NS_MAX_TOP_LOGPROBS + 1;
    assert_null(ns_job_submit(lm, &g, &status, err, sizeof err));
    assert_int_equal(status, 400);
    g.top_logprobs = 0;
    p.ids[2] = 1 << 20;
    assert_null(ns_job_submit(lm, &g, &status, err, sizeof err));
    assert_int_equal(status, 400);

    /* a prompt that fills the context: one token, then CONTEXT */
    for (int i = 0; i < 64; i++) p.ids[i] = 1 + i;
    g.n_prompt = 64;
    g.n_predict = -1;
    ns_job *j = submit(lm, &g);
    result got;
    assert_int_equal(drain(j, &got), 0);
    assert_int_equal(got.stats.finish, NS_FINISH_CONTEXT);
    assert_int_equal(got.stats.n_gen, 1);
    ns_job_free(j);

    ns_runtime_release(rt, lm, NS_KEEP_ALIVE_DEFAULT);
    free(p.ids);
    ns_runtime_free(rt, 0);

    /* a budget the model cannot fit in */
    cfg.mem_budget = 1 << 20;
    rt = new_runtime(&cfg);
    assert_null(ns_runtime_acquire(rt, stories_path, NULL, &load_ns, &status, err, sizeof err));
    assert_int_equal(status, 500);
    assert_non_null(strstr(err, "memory budget"));
    ns_runtime_free(rt, 0);
}

static void test_stop_sequence_and_logprobs(void **state) {
    (void)state;
    ns_runtime_config cfg = base_config(NULL);
    ns_runtime *rt = new_runtime(&cfg);
    ns_loaded *lm = acquire(rt, stories_path, NULL);
    toks p = tokenize(prompt_text);
    result want, got;
    reference(&p, 60, 512, &want);
    /* stop at the second word of the text's second sentence-ish part */
    char stop[16];
    snprintf(stop, sizeof stop, "%.5s", want.text + 20);
    const char *first = strstr(want.text, stop);
    assert_non_null(first);
    size_t keep = (size_t)(first - want.text);
    const char *stops[] = {"never appears in it", stop};
    ns_gen_params g = greedy(&p, 60);
    g.stops = stops;
    g.n_stops = 2;
    ns_job *j = submit(lm, &g);
    assert_int_equal(drain(j, &got), 0);
    ns_job_free(j);
    assert_int_equal(got.stats.finish, NS_FINISH_STOP);
    assert_int_equal(got.text_len, keep);
    assert_memory_equal(got.text, want.text, keep);

    /* logprobs: the chosen token first, then the most likely ones */
    g = greedy(&p, 4);
    g.logprobs = true;
    g.top_logprobs = 3;
    j = submit(lm, &g);
    assert_int_equal(drain(j, &got), 0);
    ns_job_free(j);
    assert_int_equal(got.n_lp_first, 4);
    assert_int_equal(got.lp_first[0].token, want.tokens[0]);
    assert_int_equal(got.lp_first[1].token, want.tokens[0]); /* greedy: the best one */
    assert_true(got.lp_first[1].logprob >= got.lp_first[2].logprob);

    ns_runtime_release(rt, lm, NS_KEEP_ALIVE_DEFAULT);
    free(p.ids);
    ns_runtime_free(rt, 0);
}

static void test_keep_alive_zero(void **state) {
    (void)state;
    ns_events *ev = ns_events_new();
    ns_runtime_config cfg = base_config(ev);
    ns_runtime *rt = new_runtime(&cfg);
    ns_loaded *lm = acquire(rt, stories_path, NULL);
    assert_int_equal(ps_count(rt), 1);
    toks p = tokenize(prompt_text);
    ns_gen_params g = greedy(&p, 8);
    ns_runtime_test_pause(lm, true);
    ns_job *j = submit(lm, &g);
    ns_runtime_release(rt, lm, 0);
    assert_int_equal(ps_count(rt), 1); /* the job still holds it */
    ns_runtime_test_pause(lm, false);
    result got;
    assert_int_equal(drain(j, &got), 0);
    assert_int_equal(ps_count(rt), 0); /* gone once DONE is out */
    ns_job_free(j);

    /* it loads again on demand; keep_alive < 0 keeps it */
    lm = acquire(rt, stories_path, NULL);
    ns_runtime_release(rt, lm, -1);
    ns_loaded_info *info;
    int n;
    assert_int_equal(ns_runtime_ps(rt, &info, &n), 0);
    assert_int_equal(n, 1);
    assert_true(info[0].expires_at == INT64_MAX);
    assert_true(info[0].size > 1185376); /* the file and its KV cache */
    free(info);

    /* unload by name */
    char err[256];
    assert_int_equal(ns_runtime_unload(rt, stories_path, err, sizeof err), 0);
    assert_int_equal(ps_count(rt), 0);
    assert_int_equal(ns_runtime_unload(rt, stories_path, err, sizeof err), -1);
    free(p.ids);
    ns_runtime_free(rt, 0);

    ns_event evs[NS_EVENTS_RING];
    n = ns_events_recent(ev, 0, evs, NS_EVENTS_RING);
    const char *want[] = {"load_started", "load_completed", "generation_started", "generation_completed", "unloaded",
                          "load_started", "load_completed", "unloaded"};
    assert_int_equal(n, 8);
    for (int i = 0; i < n; i++) assert_string_equal(ns_event_kind_name(evs[i].kind), want[i]);
    assert_non_null(strstr(evs[4].detail, "\"reason\":\"expired\""));
    assert_non_null(strstr(evs[7].detail, "\"reason\":\"requested\""));
    assert_non_null(strstr(evs[1].detail, "\"ms\""));
    ns_events_free(ev);
}

/* Signals when an "unloaded" event is published. */
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int unloads;
} unload_watch;

static void on_event(const ns_event *e, void *user) {
    unload_watch *w = user;
    if (e->kind != NS_EV_UNLOADED) return;
    pthread_mutex_lock(&w->mu);
    w->unloads++;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static void test_keep_alive_expiry(void **state) {
    (void)state;
    unload_watch w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
    ns_events *ev = ns_events_new();
    assert_true(ns_events_subscribe(ev, on_event, &w) > 0);
    ns_runtime_config cfg = base_config(ev);
    ns_runtime *rt = new_runtime(&cfg);
    ns_loaded *lm = acquire(rt, stories_path, NULL);
    ns_runtime_release(rt, lm, 1000000); /* 1 ms */
    /* the reaper unloads it once the keep_alive has passed */
    pthread_mutex_lock(&w.mu);
    while (w.unloads == 0) pthread_cond_wait(&w.cv, &w.mu);
    pthread_mutex_unlock(&w.mu);
    assert_int_equal(ps_count(rt), 0);
    ns_runtime_free(rt, 0);
    ns_event evs[NS_EVENTS_RING];
    int n = ns_events_recent(ev, 0, evs, NS_EVENTS_RING);
    assert_int_equal(n, 3);
    assert_int_equal(evs[2].kind, NS_EV_UNLOADED);
    assert_non_null(strstr(evs[2].detail, "\"reason\":\"expired\""));
    ns_events_free(ev);
}

static void test_max_loaded_evicts_idle(void **state) {
    (void)state;
    ns_runtime_config cfg = base_config(NULL);
    cfg.max_loaded = 1;
    ns_runtime *rt = new_runtime(&cfg);
    ns_loaded *a = acquire(rt, stories_path, NULL);
    ns_runtime_release(rt, a, NS_KEEP_ALIVE_DEFAULT);
    ns_loaded *b = acquire(rt, tiny_path, NULL); /* evicts the idle stories260K */
    ns_loaded_info *info;
    int n;
    assert_int_equal(ns_runtime_ps(rt, &info, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(info[0].path, tiny_path);
    free(info);
    /* b is busy: no room for another */
    char err[256];
    int status;
    int64_t load_ns;
    assert_null(ns_runtime_acquire(rt, stories_path, NULL, &load_ns, &status, err, sizeof err));
    assert_int_equal(status, 503);
    ns_runtime_release(rt, b, NS_KEEP_ALIVE_DEFAULT);
    a = acquire(rt, stories_path, NULL);
    assert_int_equal(ps_count(rt), 1);
    ns_runtime_release(rt, a, NS_KEEP_ALIVE_DEFAULT);
    ns_runtime_free(rt, 0);
}

/* The fit check before a load reads the memory free now (not the budget
 * taken at start): with less available than the model needs it evicts idle
 * models first, then refuses with a message that says what is missing. */
static void test_load_checks_memory_now(void **state) {
    (void)state;
    ns_runtime_config cfg = base_config(NULL);
    cfg.mem_budget = (int64_t)1 << 40; /* the budget never decides here */
    ns_runtime *rt = new_runtime(&cfg);
    ns_loaded *a = acquire(rt, stories_path, NULL);
    ns_runtime_release(rt, a, NS_KEEP_ALIVE_DEFAULT);
    char err[512];
    int status;
    int64_t load_ns;
    setenv("NSTACK_MEM_AVAILABLE", "1000", 1);
    assert_null(ns_runtime_acquire(rt, tiny_path, NULL, &load_ns, &status, err, sizeof err));
    assert_int_equal(status, 503);
    assert_non_null(strstr(err, "not enough memory to load"));
    assert_non_null(strstr(err, "after unloading every idle model"));
    assert_int_equal(ps_count(rt), 0); /* the idle model was unloaded trying */
    setenv("NSTACK_MEM_AVAILABLE", "1", 1);
    assert_null(ns_runtime_acquire(rt, stories_path, NULL, &load_ns, &status, err, sizeof err));
    assert_int_equal(status, 503);
    assert_non_null(strstr(err, "available; free memory"));
    unsetenv("NSTACK_MEM_AVAILABLE");
    a = acquire(rt, stories_path, NULL);
    ns_runtime_release(rt, a, NS_KEEP_ALIVE_DEFAULT);
    ns_runtime_free(rt, 0);
}

typedef struct {
    ns_runtime *rt;
    int n_ctx;
} reload_arg;

static void *reload_main(void *arg) {
    reload_arg *r = arg;
    ns_load_opts o = {.n_ctx = 256, .num_gpu = -1};
    char err[256];
    int status;
    int64_t load_ns;
    ns_loaded *lm = ns_runtime_acquire(r->rt, stories_path, &o, &load_ns, &status, err, sizeof err);
    if (lm) {
        r->n_ctx = ns_loaded_n_ctx(lm);
        ns_runtime_release(r->rt, lm, NS_KEEP_ALIVE_DEFAULT);
    }
    return NULL;
}

static void test_changed_options_reload(void **state) {
    (void)state;
    ns_events *ev = ns_events_new();
    ns_runtime_config cfg = base_config(ev);
    ns_runtime *rt = new_runtime(&cfg);
    ns_load_opts o = {.n_ctx = 128, .num_gpu = -1};
    ns_loaded *lm = acquire(rt, stories_path, &o);
    assert_int_equal(ns_loaded_n_ctx(lm), 128);
    /* another request wants 256 while this one is busy: it waits, then reloads */
    reload_arg ra = {rt, 0};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, reload_main, &ra), 0);
    toks p = tokenize(prompt_text);
    ns_gen_params g = greedy(&p, 4);
    result got;
    ns_job *j = submit(lm, &g);
    assert_int_equal(drain(j, &got), 0);
    ns_job_free(j);
    ns_runtime_release(rt, lm, NS_KEEP_ALIVE_DEFAULT);
    pthread_join(th, NULL);
    assert_int_equal(ra.n_ctx, 256);
    /* no explicit options: whatever is loaded serves */
    lm = acquire(rt, stories_path, NULL);
    assert_int_equal(ns_loaded_n_ctx(lm), 256);
    assert_int_equal(ps_count(rt), 1);
    ns_runtime_release(rt, lm, NS_KEEP_ALIVE_DEFAULT);
    free(p.ids);
    ns_runtime_free(rt, 0);
    ns_event evs[NS_EVENTS_RING];
    int n = ns_events_recent(ev, 0, evs, NS_EVENTS_RING);
    int reloads = 0;
    for (int i = 0; i < n; i++)
        if (evs[i].kind == NS_EV_UNLOADED && strstr(evs[i].detail, "reload")) reloads++;
    assert_int_equal(reloads, 1);
    ns_events_free(ev);
}

static void test_free_with_job_running(void **state) {
    (void)state;
    ns_runtime_config cfg = base_config(NULL);
    ns_runtime *rt = new_runtime(&cfg);
    ns_loaded *lm = acquire(rt, stories_path, NULL);
    toks p = tokenize(prompt_text);
    ns_runtime_test_pause_at(lm, 1);
    ns_gen_params g = greedy(&p, -1);
    ns_job *running = submit(lm, &g);
    ns_job_event ev;
    assert_int_equal(ns_job_next(running, &ev, WAIT_MS), 1); /* its first token; now the runner holds */
    ns_job_event_clear(&ev);
    ns_job *queued[8];
    for (int i = 0; i < 8; i++) queued[i] = submit(lm, &g); /* not admitted while the runner holds */
    ns_runtime_release(rt, lm, NS_KEEP_ALIVE_DEFAULT);
    ns_runtime_free(rt, 0); /* no grace: everything is cancelled */
    result got;
    assert_int_equal(drain(running, &got), 0);
    assert_int_equal(got.stats.finish, NS_FINISH_CANCELLED);
    ns_job_free(running);
    for (int i = 0; i < 8; i++) {
        assert_int_equal(drain(queued[i], &got), 0);
        assert_int_equal(got.stats.finish, NS_FINISH_CANCELLED);
        assert_int_equal(got.stats.n_gen, 0);
        ns_job_free(queued[i]);
    }

    /* with a grace period a short job finishes normally */
    rt = new_runtime(&cfg);
    lm = acquire(rt, stories_path, NULL);
    g = greedy(&p, 8);
    ns_job *j = submit(lm, &g);
    ns_runtime_release(rt, lm, NS_KEEP_ALIVE_DEFAULT);
    ns_runtime_free(rt, INT64_C(60000000000));
    assert_int_equal(drain(j, &got), 0);
    assert_int_equal(got.stats.finish, NS_FINISH_LENGTH);
    ns_job_free(j);
    free(p.ids);
}

/* A job freed without reading it, while it runs, and a job submitted and
 * freed at once: no leak, no use after free (ASan/LSan). */
static void test_free_unread_jobs(void **state) {
    (void)state;
    ns_runtime_config cfg = base_config(NULL);
    ns_runtime *rt = new_runtime(&cfg);
    ns_loaded *lm = acquire(rt, stories_path, NULL);
    toks p = tokenize(prompt_text);
    ns_gen_params g = greedy(&p, 30);
    for (int i = 0; i < 6; i++) {
        ns_job *j = submit(lm, &g);
        ns_job_event ev;
        if (i % 2) {
            assert_int_equal(ns_job_next(j, &ev, WAIT_MS), 1);
            ns_job_event_clear(&ev);
        }
        ns_job_free(j);
    }
    ns_job *j = submit(lm, &g);
    result got;
    assert_int_equal(drain(j, &got), 0);
    ns_job_free(j);
    assert_int_equal(got.stats.finish, NS_FINISH_LENGTH);
    ns_runtime_release(rt, lm, NS_KEEP_ALIVE_DEFAULT);
    free(p.ids);
    ns_runtime_free(rt, 0);
}

static void test_timeout_and_json_mode(void **state) {
    (void)state;
    ns_runtime_config cfg = base_config(NULL);
    cfg.request_timeout_ns = 1; /* every job is late at its first check */
    ns_runtime *rt = new_runtime(&cfg);
    ns_loaded *lm = acquire(rt, stories_path, NULL);
    toks p = tokenize(prompt_text);
    ns_gen_params g = greedy(&p, 16);
    ns_job *j = submit(lm, &g);
    result got;
    assert_int_equal(drain(j, &got), 0);
    ns_job_free(j);
    assert_int_equal(got.stats.finish, NS_FINISH_TIMEOUT);
    assert_int_equal(got.stats.n_gen, 0);
    ns_runtime_release(rt, lm, NS_KEEP_ALIVE_DEFAULT);
    ns_runtime_free(rt, 0);

    /* JSON mode: the text starts as an object whatever the model wants */
    cfg.request_timeout_ns = 0;
    rt = new_runtime(&cfg);
    lm = acquire(rt, stories_path, NULL);
    g = greedy(&p, 24);
    g.json_mode = 2;
    j = submit(lm, &g);
    assert_int_equal(drain(j, &got), 0);
    ns_job_free(j);
    assert_true(got.stats.finish == NS_FINISH_LENGTH || got.stats.finish == NS_FINISH_STOP);
    const char *t = got.text;
    while (*t == ' ' || *t == '\n' || *t == '\t' || *t == '\r') t++;
    assert_int_equal(*t, '{');
    ns_runtime_release(rt, lm, NS_KEEP_ALIVE_DEFAULT);
    free(p.ids);
    ns_runtime_free(rt, 0);
}

int main(void) {
    const char *s = ns_test_shared_path("models/stories260K.gguf");
    if (!s) return NS_TEST_SKIP;
    snprintf(stories_path, sizeof stories_path, "%s", s);
    const char *t = ns_test_shared_path("models/tiny-llama-q4_0.gguf");
    if (!t) return NS_TEST_SKIP;
    snprintf(tiny_path, sizeof tiny_path, "%s", t);
    /* the store takes absolute paths as they are */
    char *abs = realpath(stories_path, NULL);
    snprintf(stories_path, sizeof stories_path, "%s", abs);
    free(abs);
    abs = realpath(tiny_path, NULL);
    snprintf(tiny_path, sizeof tiny_path, "%s", abs);
    free(abs);

    char err[256];
    ref_model = ns_model_load(stories_path, err, sizeof err);
    if (!ref_model) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/nstack-test-runtime-XXXXXX");
    if (!mkdtemp(tmp_dir)) return 1;
    snprintf(models_dir, sizeof models_dir, "%s/models", tmp_dir);
    char ollama_dir[600];
    snprintf(ollama_dir, sizeof ollama_dir, "%s/ollama", tmp_dir);
    store = ns_store_open(models_dir, ollama_dir, err, sizeof err);
    if (!store) {
        fprintf(stderr, "ns_store_open: %s\n", err);
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_greedy_equals_engine),
        cmocka_unit_test(test_eight_jobs_on_four_slots),
        cmocka_unit_test(test_prefix_reuse),
        cmocka_unit_test(test_batched_different_prompts),
        cmocka_unit_test(test_prefix_from_busy_slot),
        cmocka_unit_test(test_context_shift),
        cmocka_unit_test(test_session_slots_and_kv),
        cmocka_unit_test(test_cancel_mid_generation),
        cmocka_unit_test(test_free_before_start_and_queue_full),
        cmocka_unit_test(test_bad_requests),
        cmocka_unit_test(test_stop_sequence_and_logprobs),
        cmocka_unit_test(test_keep_alive_zero),
        cmocka_unit_test(test_keep_alive_expiry),
        cmocka_unit_test(test_max_loaded_evicts_idle),
        cmocka_unit_test(test_load_checks_memory_now),
        cmocka_unit_test(test_changed_options_reload),
        cmocka_unit_test(test_free_with_job_running),
        cmocka_unit_test(test_free_unread_jobs),
        cmocka_unit_test(test_timeout_and_json_mode),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    ns_store_close(store);
    ns_model_free(ref_model);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmp_dir);
    return rc;
}
