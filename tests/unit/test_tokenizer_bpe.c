/* Byte-level BPE (tokenizer.ggml.model = "gpt2") against the reference
 * engine's token ids.
 *
 * Which pre-tokenizers are verified, and how:
 *  - by the shared vectors (../shared, made by the reference engine):
 *      "gpt-2"  vocab/ggml-vocab-gpt-2.gguf, 46 .inp/.out vectors, and the
 *               prompt_tokens of models/refs/tiny-qwen2-q8_0.jsonl (a qwen2
 *               model whose GGUF carries GPT-2's vocabulary and
 *               tokenizer.ggml.pre = "gpt-2", BOS rule from the file,
 *               special tokens parsed);
 *      "falcon" vocab/ggml-vocab-falcon.gguf, 46 vectors.
 *  - by reference ids generated for this test (bpe_ref_vectors.h): the
 *    GPT-2 vocabulary and merges with tokenizer.ggml.pre set to each of
 *    default, gpt-2, llama-bpe, qwen2, falcon, starcoder, deepseek-llm,
 *    deepseek-coder, deepseek-v3, bloom, viking, tekken, chameleon, and the
 *    names that share their regexes (mpt, refact, command-r, smollm,
 *    phi-2, stablelm2, olmo, dbrx, jais, chatglm-bpe, exaone, minerva-7b,
 *    poro-chat, codeshell, gpt3-finnish, smaug-bpe, megrez, falcon3),
 *    tokenized by llama.cpp itself (71 inputs each: the 46 of the GPT-2
 *    file and 25 aimed at each regex: contractions in any case, digit
 *    runs, \r\n, Unicode spaces, CJK, cased scripts, sentinels, ...).
 *    With GPT-2's merges a word comes out the same whatever splits it, so
 *    these ids check the pre-tokenizers' splits, not other vocabularies.
 *  - by unit tests written from the regex definitions only (no reference
 *    output): the splits in test_pretok_splits, ignore_merges (llama-bpe,
 *    tekken: GPT-2's merges never show it) and the per-name BOS defaults,
 *    on small vocabularies built here.
 * Without the shared folder only the in-memory tests run and the test
 * reports itself skipped (exit 77). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/pretokenize.h"
#include "nstack/gguf.h"
#include "nstack/tokenizer.h"
#include "testutil.h"

#include "bpe_ref_vectors.h"

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* ------------------------------------------------ a tiny in-memory GGUF */

typedef struct {
    uint8_t *p;
    size_t n, cap;
    uint64_t n_kv;
} gbuf;

static void gb_put(gbuf *b, const void *d, size_t n) {
    if (b->n + n > b->cap) {
        size_t c = b->cap ? b->cap * 2 : 256;
        while (c < b->n + n) c *= 2;
        b->p = realloc(b->p, c);
        assert_non_null(b->p);
        b->cap = c;
    }
    if (n) memcpy(b->p + b->n, d, n);
    b->n += n;
}
static void gb_u32(gbuf *b, uint32_t x) { gb_put(b, &x, 4); }
static void gb_u64(gbuf *b, uint64_t x) { gb_put(b, &x, 8); }
static void gb_strn(gbuf *b, const char *s, size_t n) {
    gb_u64(b, n);
    gb_put(b, s, n);
}
static void gb_str(gbuf *b, const char *s) { gb_strn(b, s, strlen(s)); }
static void kv_str(gbuf *b, const char *k, const char *v) {
    gb_str(b, k);
    gb_u32(b, NS_GGUF_STRING);
    gb_str(b, v);
    b->n_kv++;
}
static void kv_bool(gbuf *b, const char *k, bool v) {
    gb_str(b, k);
    gb_u32(b, NS_GGUF_BOOL);
    uint8_t x = v;
    gb_put(b, &x, 1);
    b->n_kv++;
}
static void kv_u32(gbuf *b, const char *k, uint32_t v) {
    gb_str(b, k);
    gb_u32(b, NS_GGUF_UINT32);
    gb_u32(b, v);
    b->n_kv++;
}
static void kv_arr_str(gbuf *b, const char *k, const char *const *v, int n) {
    gb_str(b, k);
    gb_u32(b, NS_GGUF_ARRAY);
    gb_u32(b, NS_GGUF_STRING);
    gb_u64(b, (uint64_t)n);
    for (int i = 0; i < n; i++) gb_str(b, v[i]);
    b->n_kv++;
}
static void kv_arr_gstr(gbuf *b, const char *k, const ns_gguf_kv *src) {
    gb_str(b, k);
    gb_u32(b, NS_GGUF_ARRAY);
    gb_u32(b, NS_GGUF_STRING);
    gb_u64(b, src->arr_n);
    for (uint64_t i = 0; i < src->arr_n; i++) gb_strn(b, src->arr_str[i].ptr, (size_t)src->arr_str[i].len);
    b->n_kv++;
}
static void kv_arr_i32(gbuf *b, const char *k, const int32_t *v, int n) {
    gb_str(b, k);
    gb_u32(b, NS_GGUF_ARRAY);
    gb_u32(b, NS_GGUF_INT32);
    gb_u64(b, (uint64_t)n);
    gb_put(b, v, (size_t)n * 4);
    b->n_kv++;
}

static uint8_t *gb_finish(gbuf *body, size_t *size) {
    gbuf f = {0};
    gb_put(&f, "GGUF", 4);
    gb_u32(&f, 3);
    gb_u64(&f, 0);
    gb_u64(&f, body->n_kv);
    gb_put(&f, body->p, body->n);
    static const uint8_t zero[32] = {0};
    if (f.n % 32) gb_put(&f, zero, 32 - f.n % 32);
    free(body->p);
    *size = f.n;
    return f.p;
}

typedef struct {
    uint8_t *img;
    ns_gguf *g;
    ns_vocab *v;
    char err[512];
} mem_vocab;

/* Parses the image in b and loads a vocab from it (m->v may be NULL). */
static void mem_load(mem_vocab *m, gbuf *b) {
    size_t size;
    m->img = gb_finish(b, &size);
    m->g = ns_gguf_parse(m->img, size, m->err, sizeof m->err);
    if (!m->g) fprintf(stderr, "ns_gguf_parse: %s\n", m->err);
    assert_non_null(m->g);
    m->v = ns_vocab_load(m->g, m->err, sizeof m->err);
}

static void mem_free(mem_vocab *m) {
    ns_vocab_free(m->v);
    ns_gguf_close(m->g);
    free(m->img);
}

#define G_SPACE "\xc4\xa0" /* U+0120, the byte-level alphabet's space */

/* A small byte-level vocabulary. */
static const char *const sm_toks[] = {
    "<|endoftext|>", "a", "b", "c", "ab", "bc", "abc", G_SPACE, G_SPACE "a", "<|u|>", G_SPACE "ab", "!",
};
static const int32_t sm_types[] = {
    NS_TOKEN_CONTROL, 1, 1, 1, 1, 1, 1, 1, 1, NS_TOKEN_USER_DEFINED, 1, 1,
};
#define SM_N ((int)(sizeof sm_toks / sizeof sm_toks[0]))

/* pre: NULL = no key. bos: -1 = no key. add_bos: -1 = no key. */
static void sm_make(mem_vocab *m, const char *pre, const char *const *merges, int n_merges, int bos, int add_bos) {
    gbuf b = {0};
    kv_str(&b, "general.architecture", "gpt2");
    kv_str(&b, "tokenizer.ggml.model", "gpt2");
    if (pre) kv_str(&b, "tokenizer.ggml.pre", pre);
    kv_arr_str(&b, "tokenizer.ggml.tokens", sm_toks, SM_N);
    kv_arr_i32(&b, "tokenizer.ggml.token_type", sm_types, SM_N);
    if (n_merges >= 0) kv_arr_str(&b, "tokenizer.ggml.merges", merges, n_merges);
    if (bos >= 0) kv_u32(&b, "tokenizer.ggml.bos_token_id", (uint32_t)bos);
    kv_u32(&b, "tokenizer.ggml.eos_token_id", 0);
    if (add_bos >= 0) kv_bool(&b, "tokenizer.ggml.add_bos_token", add_bos != 0);
    mem_load(m, &b);
}

static void expect_ids(const int32_t *got, int n_got, const int32_t *want, int n_want, const char *what) {
    bool same = n_got == n_want;
    for (int i = 0; same && i < n_got; i++) same = got[i] == want[i];
    if (!same) {
        fprintf(stderr, "%s:\n  want:", what);
        for (int i = 0; i < n_want; i++) fprintf(stderr, " %d", want[i]);
        fprintf(stderr, "\n  got: ");
        for (int i = 0; i < n_got; i++) fprintf(stderr, " %d", got[i]);
        fprintf(stderr, "\n");
    }
    assert_true(same);
}

#define EXPECT(v, text, bos, special, ...)                                                  \
    do {                                                                                    \
        const int32_t want_[] = {__VA_ARGS__};                                              \
        int32_t got_[64];                                                                   \
        int n_ = ns_tokenize(v, text, strlen(text), bos, special, got_, 64);                \
        assert_in_range(n_, 0, 64);                                                         \
        expect_ids(got_, n_, want_, (int)(sizeof want_ / sizeof want_[0]), "\"" text "\""); \
    } while (0)

static int tok(const ns_vocab *v, const char *s, bool bos, bool special, int32_t *out, int max) {
    return ns_tokenize(v, s, strlen(s), bos, special, out, max);
}

/* ------------------------------------------------------ in-memory tests */

static void test_merge_order(void **state) {
    (void)state;
    mem_vocab m;
    /* bc has the lowest rank: a + bc, then a bc -> abc */
    const char *m1[] = {"b c", "a b", "a bc", G_SPACE " a"};
    sm_make(&m, "gpt-2", m1, 4, -1, -1);
    assert_non_null(m.v);
    EXPECT(m.v, "abc", false, false, 6);
    EXPECT(m.v, "abab", false, false, 4, 4);          /* equal ranks: leftmost first, both merge */
    EXPECT(m.v, " ab", false, false, 7, 4);           /* ab (rank 1) before " a" (rank 3); no " ab" merge */
    EXPECT(m.v, " a!", false, false, 8, 11);          /* " a" and "!" are two words */
    EXPECT(m.v, "az", false, false, 1);               /* z is no token, nor its byte: dropped as in the reference */
    mem_free(&m);

    /* ab first: ab + c, and "ab c" is no merge */
    const char *m2[] = {"a b", "b c"};
    sm_make(&m, "gpt-2", m2, 2, -1, -1);
    assert_non_null(m.v);
    EXPECT(m.v, "abc", false, false, 4, 3);
    EXPECT(m.v, "bcab", false, false, 5, 4);
    mem_free(&m);

    /* a merge whose result is no token: the symbol falls back to its bytes */
    const char *m3[] = {"b a"};
    sm_make(&m, "gpt-2", m3, 1, -1, -1);
    assert_non_null(m.v);
    EXPECT(m.v, "ba", false, false, 2, 1);
    mem_free(&m);

    /* a merge line without a space and duplicates are ignored (the first rank stays) */
    const char *m4[] = {"ab", "b c", "a b", "b c"};
    sm_make(&m, "gpt-2", m4, 4, -1, -1);
    assert_non_null(m.v);
    EXPECT(m.v, "abc", false, false, 1, 5);
    mem_free(&m);
}

static void test_ignore_merges(void **state) {
    (void)state;
    mem_vocab m;
    const char *mg[] = {"b c", G_SPACE " a"};
    /* gpt-2: merges only: a + bc; " ab": " a" + b */
    sm_make(&m, "gpt-2", mg, 2, -1, -1);
    assert_non_null(m.v);
    EXPECT(m.v, "abc", false, false, 1, 5);
    EXPECT(m.v, " ab", false, false, 8, 2);
    mem_free(&m);
    /* llama-bpe and tekken: a word that is a token is taken whole */
    static const char *const pres[] = {"llama-bpe", "tekken"};
    for (int k = 0; k < 2; k++) {
        sm_make(&m, pres[k], mg, 2, -1, -1);
        assert_non_null(m.v);
        EXPECT(m.v, "abc", false, false, 6);
        EXPECT(m.v, " ab", false, false, 10);
        EXPECT(m.v, "abcb", false, false, 1, 5, 2); /* not a token: merged as usual */
        mem_free(&m);
    }
    /* dbrx has Llama 3's regex but not its ignore_merges */
    sm_make(&m, "dbrx", mg, 2, -1, -1);
    assert_non_null(m.v);
    EXPECT(m.v, "abc", false, false, 1, 5);
    mem_free(&m);
}

static void test_special_and_bos(void **state) {
    (void)state;
    mem_vocab m;
    const char *mg[] = {"a b", "ab c"};
    sm_make(&m, "gpt-2", mg, 2, 0, -1);
    assert_non_null(m.v);
    assert_false(ns_vocab_add_bos(m.v));  /* gpt2 vocabularies: no BOS by default */
    assert_int_equal(ns_vocab_bos(m.v), 0);
    assert_true(ns_vocab_is_eog(m.v, 0));
    assert_int_equal(ns_vocab_unk(m.v), -1);
    EXPECT(m.v, "a<|endoftext|>abc", false, true, 1, 0, 6);
    EXPECT(m.v, "abc", true, false, 0, 6);  /* asked for: BOS */
    EXPECT(m.v, "a<|u|>b", false, false, 1, 9, 2);  /* user-defined: always split out */
    int32_t out[64];
    int n = tok(m.v, "a<|endoftext|>", false, false, out, 64);
    assert_in_range(n, 1, 64);
    for (int i = 0; i < n; i++) assert_int_not_equal(out[i], 0);

    /* pieces and text back */
    char buf[32];
    assert_int_equal(ns_token_to_piece(m.v, 8, false, buf, sizeof buf), 2);
    assert_memory_equal(buf, " a", 2);
    assert_int_equal(ns_token_to_piece(m.v, 8, false, buf, 1), -2);
    assert_int_equal(ns_token_to_piece(m.v, 0, false, buf, sizeof buf), 0);
    assert_int_equal(ns_token_to_piece(m.v, 0, true, buf, sizeof buf), 13);
    assert_memory_equal(buf, "<|endoftext|>", 13);
    assert_int_equal(ns_token_to_piece(m.v, 9, false, buf, sizeof buf), 5);
    assert_int_equal(ns_token_to_piece(m.v, SM_N, false, buf, sizeof buf), INT32_MIN);
    int32_t seq[] = {0, 8, 10, 11, 9, 7};
    char *s = ns_detokenize(m.v, seq, 6, false);
    assert_string_equal(s, " a ab!<|u|> ");  /* no space dropped: BPE has no dummy prefix */
    free(s);
    s = ns_detokenize(m.v, seq, 6, true);
    assert_string_equal(s, "<|endoftext|> a ab!<|u|> ");
    free(s);
    mem_free(&m);

    /* the BOS rule per pre-tokenizer and from the file */
    sm_make(&m, "llama-bpe", mg, 2, 0, -1);
    assert_non_null(m.v);
    assert_true(ns_vocab_add_bos(m.v));
    mem_free(&m);
    sm_make(&m, "llama-bpe", mg, 2, 0, 0);
    assert_non_null(m.v);
    assert_false(ns_vocab_add_bos(m.v));
    mem_free(&m);
    sm_make(&m, "qwen2", mg, 2, 0, 1);
    assert_non_null(m.v);
    assert_true(ns_vocab_add_bos(m.v));
    mem_free(&m);
    sm_make(&m, "gpt-2", mg, 2, -1, -1);  /* no id in the file: the reference's default, 11 */
    assert_non_null(m.v);
    assert_int_equal(ns_vocab_bos(m.v), 11);
    mem_free(&m);
    sm_make(&m, "chatglm-bpe", mg, 2, -1, -1);  /* ... which chatglm-bpe drops */
    assert_non_null(m.v);
    assert_int_equal(ns_vocab_bos(m.v), -1);
    assert_false(ns_vocab_add_bos(m.v));
    EXPECT(m.v, "abc", true, false, 6);
    mem_free(&m);
    sm_make(&m, NULL, mg, 2, 0, -1);  /* no pre-tokenizer named: "default", as the reference */
    assert_non_null(m.v);
    EXPECT(m.v, "abc!", false, false, 6, 11);
    mem_free(&m);
}

static void test_load_errors(void **state) {
    (void)state;
    mem_vocab m;
    const char *mg[] = {"a b"};
    sm_make(&m, "gpt-2", mg, -1, -1, -1);  /* no merges */
    assert_null(m.v);
    assert_non_null(strstr(m.err, "tokenizer.ggml.merges"));
    mem_free(&m);

    sm_make(&m, "no-such-pre", mg, 1, -1, -1);
    assert_null(m.v);
    assert_non_null(strstr(m.err, "tokenizer.ggml.pre"));
    assert_non_null(strstr(m.err, "no-such-pre"));
    mem_free(&m);

    gbuf b = {0};  /* merges of the wrong type */
    kv_str(&b, "tokenizer.ggml.model", "gpt2");
    kv_arr_str(&b, "tokenizer.ggml.tokens", sm_toks, SM_N);
    kv_arr_i32(&b, "tokenizer.ggml.merges", sm_types, SM_N);
    mem_load(&m, &b);
    assert_null(m.v);
    assert_non_null(strstr(m.err, "tokenizer.ggml.merges"));
    mem_free(&m);

    b = (gbuf){0};  /* pre-tokenizer of the wrong type */
    kv_str(&b, "tokenizer.ggml.model", "gpt2");
    kv_u32(&b, "tokenizer.ggml.pre", 3);
    kv_arr_str(&b, "tokenizer.ggml.tokens", sm_toks, SM_N);
    kv_arr_str(&b, "tokenizer.ggml.merges", mg, 1);
    mem_load(&m, &b);
    assert_null(m.v);
    assert_non_null(strstr(m.err, "tokenizer.ggml.pre"));
    mem_free(&m);

    b = (gbuf){0};  /* a tokenizer model neither llama nor gpt2 */
    kv_str(&b, "tokenizer.ggml.model", "bert");
    kv_arr_str(&b, "tokenizer.ggml.tokens", sm_toks, SM_N);
    mem_load(&m, &b);
    assert_null(m.v);
    assert_non_null(strstr(m.err, "tokenizer.ggml.model"));
    assert_non_null(strstr(m.err, "bert"));
    mem_free(&m);

    /* every name the table knows compiles */
    char err[256];
    int n = 0;
    for (size_t i = 0; ns_pretok_known(i); i++, n++) {
        ns_pretok *p = ns_pretok_new(ns_pretok_known(i), err, sizeof err);
        if (!p) fprintf(stderr, "%s: %s\n", ns_pretok_known(i), err);
        assert_non_null(p);
        assert_string_equal(ns_pretok_name(p), ns_pretok_known(i));
        ns_pretok_free(p);
    }
    assert_true(n >= 25);
}

/* A vocabulary of the 256 single characters of the byte alphabet, no
 * merges: one token per byte, so the normalized bytes show. */
static void byte_vocab(mem_vocab *m, const char *pre) {
    static char texts[256][3];
    const char *toks[257];
    int32_t types[257];
    int k = 0;
    for (int b = 0; b < 256; b++) {
        int cp = b;
        if (!((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF))) {
            cp = 256;
            for (int c = 0; c < b; c++)
                if (!((c >= 0x21 && c <= 0x7E) || (c >= 0xA1 && c <= 0xAC) || (c >= 0xAE && c <= 0xFF))) cp++;
        }
        if (cp < 0x80) {
            texts[b][0] = (char)cp;
            texts[b][1] = 0;
        } else {
            texts[b][0] = (char)(0xC0 | (cp >> 6));
            texts[b][1] = (char)(0x80 | (cp & 0x3F));
            texts[b][2] = 0;
        }
        toks[k] = texts[b];
        types[k++] = NS_TOKEN_NORMAL;
    }
    toks[k] = "<|endoftext|>";
    types[k++] = NS_TOKEN_CONTROL;
    const char *mg[] = {"a b"};
    gbuf b = {0};
    kv_str(&b, "tokenizer.ggml.model", "gpt2");
    kv_str(&b, "tokenizer.ggml.pre", pre);
    kv_arr_str(&b, "tokenizer.ggml.tokens", toks, k);
    kv_arr_i32(&b, "tokenizer.ggml.token_type", types, k);
    kv_arr_str(&b, "tokenizer.ggml.merges", mg, 1);
    mem_load(m, &b);
    assert_non_null(m->v);
}

/* The bytes the ids of text stand for. */
static char *roundtrip(const ns_vocab *v, const char *text, size_t len, size_t *outlen) {
    int n = ns_tokenize(v, text, len, false, false, NULL, 0);
    assert_true(n >= 0);
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)(n + 1));
    assert_non_null(ids);
    assert_int_equal(ns_tokenize(v, text, len, false, false, ids, n), n);
    /* piece by piece (as a streaming caller does) */
    size_t cap = 64 + 4 * len, w = 0;
    char *s = malloc(cap);
    assert_non_null(s);
    for (int i = 0; i < n; i++) {
        int k = ns_token_to_piece(v, ids[i], false, s + w, (int)(cap - w));
        assert_true(k >= 0);
        w += (size_t)k;
    }
    char *d = ns_detokenize(v, ids, n, false);
    assert_non_null(d);
    assert_int_equal(strlen(d), w);  /* (no NUL inside in these tests) */
    assert_memory_equal(d, s, w);
    free(d);
    free(ids);
    *outlen = w;
    return s;
}

static void test_utf8_normalization(void **state) {
    (void)state;
    mem_vocab m;
    byte_vocab(&m, "gpt-2");
    /* valid text comes back unchanged, NUL bytes included */
    const char ok[] = "caf\xc3\xa9 \xe2\x98\x95 \xf0\x9f\xa6\x99 x\0y";
    int32_t ids[64];
    int n = ns_tokenize(m.v, ok, sizeof ok - 1, false, false, ids, 64);
    assert_int_equal(n, (int)sizeof ok - 1);
    /* the reference's decoding: a byte that starts no complete sequence is
     * U+FFFD; over-long forms are decoded and written short; surrogates
     * are kept as they are */
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"a\xff" "b", "a\xef\xbf\xbd" "b"},
        {"\xc3", "\xef\xbf\xbd"},
        {"\xe2\x82x", "\xef\xbf\xbd\xef\xbf\xbdx"},
        {"\x80\x80", "\xef\xbf\xbd\xef\xbf\xbd"},
        {"\xc1\x81", "A"},
        {"\xe0\x81\x81z", "Az"},
        {"\xed\xa0\x80 s", "\xed\xa0\x80 s"},
        {"\xf8\x88\x80\x80\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
        {"\xf4\x90\x80\x80", "\xef\xbf\xbd"},  /* above U+10FFFF (the reference fails on it) */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t w;
        char *s = roundtrip(m.v, cases[i].in, strlen(cases[i].in), &w);
        if (w != strlen(cases[i].out) || memcmp(s, cases[i].out, w) != 0) fprintf(stderr, "utf-8 case %zu\n", i);
        assert_int_equal(w, strlen(cases[i].out));
        assert_memory_equal(s, cases[i].out, w);
        free(s);
    }
    /* a token standing for half a character gives its raw bytes */
    n = tok(m.v, "\xf0\x9f\xa6\x99", false, false, ids, 64);
    assert_int_equal(n, 4);
    char buf[8];
    assert_int_equal(ns_token_to_piece(m.v, ids[1], false, buf, sizeof buf), 1);
    assert_int_equal((unsigned char)buf[0], 0x9f);
    mem_free(&m);

    /* a token text outside the byte alphabet: the reference's marker */
    const char *toks[] = {"<|endoftext|>", "\xe2\x82\xac", "a"};
    int32_t types[] = {NS_TOKEN_CONTROL, 1, 1};
    const char *mg[] = {"a a"};
    gbuf b = {0};
    kv_str(&b, "tokenizer.ggml.model", "gpt2");
    kv_str(&b, "tokenizer.ggml.pre", "gpt-2");
    kv_arr_str(&b, "tokenizer.ggml.tokens", toks, 3);
    kv_arr_i32(&b, "tokenizer.ggml.token_type", types, 3);
    kv_arr_str(&b, "tokenizer.ggml.merges", mg, 1);
    mem_load(&m, &b);
    assert_non_null(m.v);
    char pb[64];
    int k = ns_token_to_piece(m.v, 1, false, pb, sizeof pb);
    assert_in_range(k, 1, 63);
    pb[k] = 0;
    assert_string_equal(pb, "[UNK_BYTE_0xe282ac\xe2\x82\xac]");
    mem_free(&m);
}

/* Splits by name, written from the regexes alone. */
static void test_pretok_splits(void **state) {
    (void)state;
    static const struct {
        const char *pre, *text;
        const char *pieces[16];
    } cases[] = {
        {"gpt-2", "Hello  world's 1234\n\n  x", {"Hello", " ", " world", "'s", " 1234", "\n\n ", " x"}},
        {"qwen2", "Hello  world's 1234\n\n  x",
         {"Hello", " ", " world", "'s", " ", "1", "2", "3", "4", "\n\n", " ", " x"}},
        {"llama-bpe", "I'M 12345 ok!!\r\n\r\nx", {"I", "'M", " ", "123", "45", " ok", "!!\r\n\r\n", "x"}},
        {"default", "a+b=12345!", {"a", "+", "b", "=", "123", "45", "!"}},
        {"falcon", "x`y 1234", {"x", "`", "y", " ", "123", "4"}},
        {"starcoder", "ab 123", {"ab", " ", "1", "2", "3"}},
        {"deepseek-llm", "Hello world  \n", {"Hello", " world", "  ", "\n"}},
        {"deepseek-coder", "ab, 12\ncd", {"ab", ",", " ", "1", "2", "\n", "cd"}},
        {"deepseek-v3", "1234 .abc", {"123", "4", " .", "abc"}},
        {"bloom", "Hi, you. Ok", {"Hi", ",", " you", ".", " Ok"}},
        {"viking", "a12.b", {"a", "1", "2", ".", "b"}},
        /* Tekken as the reference adapted it: any letter outside a-z may be
         * "upper", any outside A-Z "lower" */
        {"tekken", "HelloWORLD camelCase \xc3\x89" "COLE",
         {"Hello", "WORLD", " camel", "Case", " \xc3\x89", "COLE"}},
        {"tekken", "a!/\n/b\n", {"a", "!/\n/", "b", "\n"}},
        {"chameleon", "<sentinel:12>IMGIMGABZ\tx  y",
         {"<", "sentinel", ":", "1", "2", ">", "IMGIMGABZ", "\t", "x", "  ", "y"}},
        /* White_Space includes U+0085 and U+3000 */
        {"gpt-2", "a\xc2\x85\xc2\x85" "b\xe3\x80\x80", {"a", "\xc2\x85", "\xc2\x85", "b", "\xe3\x80\x80"}},
        {"qwen2", "x\xc2\x85y", {"x", "\xc2\x85y"}},
    };
    char err[256];
    ns_pretok_scratch sc = {0};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        ns_pretok *p = ns_pretok_new(cases[c].pre, err, sizeof err);
        assert_non_null(p);
        const ns_span *sp;
        size_t n;
        const char *t = cases[c].text;
        assert_true(ns_pretok_split(p, &sc, t, strlen(t), &sp, &n));
        size_t want = 0;
        while (want < 16 && cases[c].pieces[want]) want++;
        bool same = n == want;
        for (size_t i = 0; same && i < n; i++)
            same = sp[i].len == strlen(cases[c].pieces[i]) && memcmp(t + sp[i].off, cases[c].pieces[i], sp[i].len) == 0;
        if (!same) {
            fprintf(stderr, "%s \"%s\":", cases[c].pre, t);
            for (size_t i = 0; i < n; i++) fprintf(stderr, " [%.*s]", (int)sp[i].len, t + sp[i].off);
            fprintf(stderr, "\n");
        }
        assert_true(same);
        ns_pretok_free(p);
    }
    ns_pretok_scratch_free(&sc);
}

/* ------------------------------------------------------ the shared files */

static ns_vocab *load_vocab(const char *rel) {
    const char *path = ns_test_shared_path(rel);
    assert_non_null(path);
    char err[512];
    ns_gguf *g = ns_gguf_open(path, err, sizeof err);
    if (!g) fprintf(stderr, "%s\n", err);
    assert_non_null(g);
    double t0 = now_ms();
    ns_vocab *v = ns_vocab_load(g, err, sizeof err);
    double t1 = now_ms();
    if (!v) fprintf(stderr, "%s: %s\n", rel, err);
    assert_non_null(v);
    printf("  %s: %d tokens loaded in %.2f ms\n", rel, ns_vocab_size(v), t1 - t0);
    ns_gguf_close(g);
    return v;
}

static int parse_ids(const char *line, const char *eol, int32_t *ids, int max) {
    int n = 0;
    for (const char *q = line; q < eol;) {
        char *end;
        long x = strtol(q, &end, 10);
        if (end == q) break;
        assert_true(n < max);
        ids[n++] = (int32_t)x;
        q = end;
    }
    return n;
}

static void print_escaped(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f) fputc(c, stderr);
        else fprintf(stderr, "\\x%02x", c);
    }
}

/* Tokenizes text; compares with want; checks that the ids give the text back. */
static bool check_case(const ns_vocab *v, const char *text, size_t len, const int32_t *want, int nw, const char *what,
                       bool *rt_ok) {
    int32_t got[2048];
    int ng = ns_tokenize(v, text, len, false, false, got, 2048);
    assert_in_range(ng, 0, 2048);
    bool same = ng == nw;
    for (int i = 0; same && i < ng; i++) same = got[i] == want[i];
    if (!same) {
        fprintf(stderr, "%s \"", what);
        print_escaped(text, len);
        fprintf(stderr, "\"\n  want:");
        for (int i = 0; i < nw; i++) fprintf(stderr, " %d", want[i]);
        fprintf(stderr, "\n  got: ");
        for (int i = 0; i < ng; i++) fprintf(stderr, " %d", got[i]);
        fprintf(stderr, "\n");
    }
    char *back = ns_detokenize(v, want, nw, false);
    assert_non_null(back);
    *rt_ok = strlen(back) == len && memcmp(back, text, len) == 0;
    if (!*rt_ok && memchr(text, 0, len)) *rt_ok = true;  /* a NUL cannot come back through a C string */
    if (!*rt_ok) {
        fprintf(stderr, "%s: detokenized \"", what);
        print_escaped(back, strlen(back));
        fprintf(stderr, "\"\n");
    }
    free(back);
    return same;
}

static void vocab_vectors(const char *name) {
    char rel[256];
    snprintf(rel, sizeof rel, "vocab/ggml-vocab-%s.gguf.inp", name);
    const char *ip = ns_test_shared_path(rel);
    assert_non_null(ip);
    char *inp = ns_test_read_file(ip, NULL);
    assert_non_null(inp);
    snprintf(rel, sizeof rel, "vocab/ggml-vocab-%s.gguf.out", name);
    const char *op = ns_test_shared_path(rel);
    assert_non_null(op);
    char *outs = ns_test_read_file(op, NULL);
    assert_non_null(outs);
    snprintf(rel, sizeof rel, "vocab/ggml-vocab-%s.gguf", name);
    ns_vocab *v = load_vocab(rel);

    static const char sep[] = "\n__ggml_vocab_test__\n";
    const char *p = inp, *line = outs;
    int n_cases = 0, n_ok = 0, n_rt = 0;
    for (;;) {
        const char *e = strstr(p, sep);
        if (!e) break;
        assert_true(*line != 0);
        const char *eol = strchr(line, '\n');
        if (!eol) eol = line + strlen(line);
        int32_t want[2048];
        int nw = parse_ids(line, eol, want, 2048);
        bool rt;
        char what[64];
        snprintf(what, sizeof what, "%s case %d", name, n_cases);
        n_ok += check_case(v, p, (size_t)(e - p), want, nw, what, &rt);
        n_rt += rt;
        n_cases++;
        p = e + strlen(sep);
        line = *eol ? eol + 1 : eol;
    }
    printf("  %s vectors: %d/%d tokenized, %d/%d detokenized back\n", name, n_ok, n_cases, n_rt, n_cases);
    assert_int_equal(n_cases, 46);
    assert_int_equal(n_ok, n_cases);
    assert_int_equal(n_rt, n_cases);
    ns_vocab_free(v);
    free(inp);
    free(outs);
}

static void test_gpt2_vectors(void **state) {
    (void)state;
    vocab_vectors("gpt-2");
}

static void test_falcon_vectors(void **state) {
    (void)state;
    vocab_vectors("falcon");
}

static void test_qwen2_refs(void **state) {
    (void)state;
    ns_vocab *v = load_vocab("models/tiny-qwen2-q8_0.gguf");
    assert_false(ns_vocab_add_bos(v));
    const char *path = ns_test_shared_path("models/refs/tiny-qwen2-q8_0.jsonl");
    assert_non_null(path);
    char *txt = ns_test_read_file(path, NULL);
    assert_non_null(txt);
    int n_prompts = 0;
    for (char *ln = txt; *ln;) {
        char *nl = strchr(ln, '\n');
        if (nl) *nl = 0;
        if (*ln) {
            cJSON *j = cJSON_Parse(ln);
            assert_non_null(j);
            const cJSON *pr = cJSON_GetObjectItem(j, "prompt");
            const cJSON *pt = cJSON_GetObjectItem(j, "prompt_tokens");
            assert_true(cJSON_IsString(pr) && cJSON_IsArray(pt));
            int nw = cJSON_GetArraySize(pt);
            int32_t want[1024];
            assert_true(nw < 1024);
            for (int i = 0; i < nw; i++) want[i] = (int32_t)cJSON_GetArrayItem(pt, i)->valueint;
            const char *prompt = pr->valuestring;
            int32_t got[1024];
            int ng = ns_tokenize(v, prompt, strlen(prompt), ns_vocab_add_bos(v), true, got, 1024);
            assert_in_range(ng, 0, 1024);
            char what[300];
            snprintf(what, sizeof what, "tiny-qwen2: \"%.200s\"", prompt);
            expect_ids(got, ng, want, nw, what);
            char *back = ns_detokenize(v, got, ng, false);
            assert_string_equal(back, prompt);
            free(back);
            cJSON_Delete(j);
            n_prompts++;
        }
        if (!nl) break;
        ln = nl + 1;
    }
    printf("  tiny-qwen2 prompts: %d match\n", n_prompts);
    assert_true(n_prompts >= 3);
    free(txt);
    ns_vocab_free(v);
}

/* GPT-2's vocabulary and merges under another tokenizer.ggml.pre. */
static void gpt2_with_pre(const ns_gguf *src, const char *pre, mem_vocab *m) {
    gbuf b = {0};
    kv_str(&b, "general.architecture", "gpt2");
    kv_str(&b, "tokenizer.ggml.model", "gpt2");
    kv_str(&b, "tokenizer.ggml.pre", pre);
    const ns_gguf_kv *t = ns_gguf_find(src, "tokenizer.ggml.tokens");
    const ns_gguf_kv *y = ns_gguf_find(src, "tokenizer.ggml.token_type");
    const ns_gguf_kv *mg = ns_gguf_find(src, "tokenizer.ggml.merges");
    assert_true(t && y && mg && y->arr_type == NS_GGUF_INT32);
    kv_arr_gstr(&b, "tokenizer.ggml.tokens", t);
    kv_arr_i32(&b, "tokenizer.ggml.token_type", y->arr_data, (int)y->arr_n);
    kv_arr_gstr(&b, "tokenizer.ggml.merges", mg);
    kv_u32(&b, "tokenizer.ggml.bos_token_id", 50256);
    kv_u32(&b, "tokenizer.ggml.eos_token_id", 50256);
    mem_load(m, &b);
    if (!m->v) fprintf(stderr, "%s: %s\n", pre, m->err);
    assert_non_null(m->v);
}

static void test_reference_pretokenizers(void **state) {
    (void)state;
    const char *path = ns_test_shared_path("vocab/ggml-vocab-gpt-2.gguf");
    assert_non_null(path);
    char err[512];
    ns_gguf *src = ns_gguf_open(path, err, sizeof err);
    assert_non_null(src);
    int n_names = 0, n_ok = 0, n_rt = 0, n_all = 0;
    size_t n_alias = sizeof bpe_ref_alias / sizeof bpe_ref_alias[0];
    for (size_t k = 0; k < BPE_REF_N_KINDS + n_alias; k++) {
        const char *pre = k < BPE_REF_N_KINDS ? bpe_ref_kinds[k] : bpe_ref_alias[k - BPE_REF_N_KINDS][0];
        size_t kind = k;
        if (k >= BPE_REF_N_KINDS) {  /* the ids of the name it shares its regexes with */
            const char *as = bpe_ref_alias[k - BPE_REF_N_KINDS][1];
            for (kind = 0; kind < BPE_REF_N_KINDS && strcmp(bpe_ref_kinds[kind], as) != 0; kind++) {}
            assert_true(kind < BPE_REF_N_KINDS);
        }
        mem_vocab m;
        gpt2_with_pre(src, pre, &m);
        for (int i = 0; i < BPE_REF_N_INPUTS; i++) {
            const char *ids = bpe_ref_ids[bpe_ref_idx[kind][i]];
            int32_t want[2048];
            int nw = parse_ids(ids, ids + strlen(ids), want, 2048);
            char what[96];
            snprintf(what, sizeof what, "pre %s, input %d:", pre, i);
            bool rt;
            n_ok += check_case(m.v, bpe_ref_inputs[i].s, bpe_ref_inputs[i].n, want, nw, what, &rt);
            n_rt += rt;
            n_all++;
        }
        mem_free(&m);
        n_names++;
    }
    ns_gguf_close(src);
    printf("  %d pre-tokenizer names x %d inputs: %d/%d as the reference, %d/%d detokenized back\n", n_names,
           BPE_REF_N_INPUTS, n_ok, n_all, n_rt, n_all);
    assert_int_equal(n_ok, n_all);
    assert_int_equal(n_rt, n_all);
}

static void test_gpt2_pieces_and_streaming(void **state) {
    (void)state;
    ns_vocab *v = load_vocab("vocab/ggml-vocab-gpt-2.gguf");
    assert_int_equal(ns_vocab_bos(v), 50256);
    assert_int_equal(ns_vocab_eos(v), 50256);
    assert_true(ns_vocab_is_eog(v, 50256));
    assert_false(ns_vocab_add_bos(v));
    assert_int_equal(ns_vocab_token_type(v, 50256), NS_TOKEN_CONTROL);
    /* " \xf0\x9f\xa6\x99" (a llama) is three tokens that split the character */
    int32_t ids[16];
    int n = tok(v, " \xf0\x9f\xa6\x99", false, false, ids, 16);
    assert_int_equal(n, 3);
    char buf[16];
    int k0 = ns_token_to_piece(v, ids[0], false, buf, sizeof buf);
    assert_int_equal(k0, 3);
    assert_memory_equal(buf, " \xf0\x9f", 3);
    assert_int_equal(ns_token_to_piece(v, ids[1], false, buf, sizeof buf), 1);
    assert_int_equal((unsigned char)buf[0], 0xa6);
    /* special tokens parsed or not */
    EXPECT(v, "Hello<|endoftext|>", false, true, 15496, 50256);
    n = tok(v, "Hello<|endoftext|>", false, false, ids, 16);
    assert_in_range(n, 2, 16);
    for (int i = 0; i < n; i++) assert_int_not_equal(ids[i], 50256);
    assert_int_equal(ns_token_to_piece(v, 50256, false, buf, sizeof buf), 0);
    ns_vocab_free(v);
}

/* Long and adversarial inputs: linear time (a quadratic step would take
 * minutes here), ids that give the text back. Times are printed only. */
static void test_long_inputs(void **state) {
    (void)state;
    static const char *const pres[] = {"gpt-2", "llama-bpe", "deepseek-llm", "tekken", "chameleon"};
    const char *path = ns_test_shared_path("vocab/ggml-vocab-gpt-2.gguf");
    assert_non_null(path);
    char err[512];
    ns_gguf *src = ns_gguf_open(path, err, sizeof err);
    assert_non_null(src);
    size_t hn = 512u << 10;
    char *huge = malloc(hn + 1);
    assert_non_null(huge);
    for (size_t p = 0; p < sizeof pres / sizeof pres[0]; p++) {
        mem_vocab m;
        gpt2_with_pre(src, pres[p], &m);
        for (int kind = 0; kind < 6; kind++) {
            static const char words[] = "The quick brown fox jumps over the lazy dog's 12345 tail.\n ";
            uint32_t x = 777;
            for (size_t i = 0; i < hn; i++) {
                switch (kind) {
                case 0: huge[i] = words[i % (sizeof words - 1)]; break;
                case 1: huge[i] = (char)('a' + i % 26); break;            /* one long word */
                case 2: huge[i] = ' '; break;                              /* one long space run */
                case 3: huge[i] = (char)('0' + i % 10); break;             /* digits */
                case 4: huge[i] = i + 1 == hn ? 'x' : (i % 2 ? ' ' : '\t'); break;
                default:
                    x = x * 1664525u + 1013904223u;
                    huge[i] = (char)(x >> 24 ? x >> 24 : 1);              /* arbitrary bytes, no NUL */
                    break;
                }
            }
            double t0 = now_ms();
            int need = ns_tokenize(m.v, huge, hn, false, false, NULL, 0);
            double t1 = now_ms();
            assert_true(need > 0);
            int32_t *ids = malloc(sizeof(int32_t) * (size_t)need);
            assert_non_null(ids);
            assert_int_equal(ns_tokenize(m.v, huge, hn, false, false, ids, need), need);
            char *back = ns_detokenize(m.v, ids, need, false);
            assert_non_null(back);
            if (kind < 5) {  /* valid UTF-8: the same bytes */
                assert_int_equal(strlen(back), hn);
                assert_memory_equal(back, huge, hn);
            }
            if (kind == 0 || kind == 1)
                printf("  %s, 512 KiB of %s: %d tokens in %.1f ms\n", pres[p], kind ? "one word" : "text", need, t1 - t0);
            free(back);
            free(ids);
        }
        mem_free(&m);
    }
    free(huge);
    ns_gguf_close(src);
}

int main(void) {
    const struct CMUnitTest mem_tests[] = {
        cmocka_unit_test(test_merge_order),        cmocka_unit_test(test_ignore_merges),
        cmocka_unit_test(test_special_and_bos),    cmocka_unit_test(test_load_errors),
        cmocka_unit_test(test_utf8_normalization), cmocka_unit_test(test_pretok_splits),
    };
    const struct CMUnitTest file_tests[] = {
        cmocka_unit_test(test_gpt2_vectors),
        cmocka_unit_test(test_falcon_vectors),
        cmocka_unit_test(test_qwen2_refs),
        cmocka_unit_test(test_reference_pretokenizers),
        cmocka_unit_test(test_gpt2_pieces_and_streaming),
        cmocka_unit_test(test_long_inputs),
    };
    int fails = cmocka_run_group_tests_name("bpe tokenizer (in memory)", mem_tests, NULL, NULL);
    if (!ns_test_shared_path("vocab/ggml-vocab-gpt-2.gguf") || !ns_test_shared_path("vocab/ggml-vocab-falcon.gguf") ||
        !ns_test_shared_path("models/tiny-qwen2-q8_0.gguf")) {
        if (fails) return fails;
        printf("SKIP: the shared folder is absent; only the in-memory BPE tests ran\n");
        return NS_TEST_SKIP;
    }
    fails += cmocka_run_group_tests_name("bpe tokenizer (shared files)", file_tests, NULL, NULL);
    return fails;
}
