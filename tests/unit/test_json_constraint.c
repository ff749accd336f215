/* JSON mode's token mask (src/runtime/json_constraint.c) against an
 * independent recursive-descent checker written here:
 *  - valid and invalid texts fed byte by byte through a vocabulary built in
 *    memory (one token per byte, EOS, a control token);
 *  - every token of real vocabularies (stories260K's SentencePiece,
 *    tiny-qwen2's byte-level BPE) masked exactly as the checker says, from a
 *    set of document prefixes;
 *  - random generation over the masked vocabulary always ends in text that
 *    cJSON parses (and, with require_object, an object).
 * Without the shared folder only the in-memory tests run, and the test
 * reports itself skipped (exit 77). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/gguf_write.h"
#include "nstack/gguf.h"
#include "nstack/tokenizer.h"
#include "runtime/json_constraint.h"
#include "testutil.h"

/* ------------------------------------------------ the reference checker */

/* Parses as far as the text goes: INVALID when no continuation can make it
 * JSON, PREFIX when some can, COMPLETE when it is one whole value (and
 * nothing follows). Same limits as the constraint: nesting <= 64, at most 16
 * whitespace bytes in a row, surrogate escapes paired, strict UTF-8. */
enum { INVALID = -1, COMPLETE = 0, PREFIX = 1 };

typedef struct {
    const uint8_t *p;
    size_t n, i;
    int depth;
} rd;

static int at_end(const rd *r) { return r->i >= r->n; }

static int skip_ws(rd *r) {
    int run = 0;
    while (!at_end(r) && strchr(" \t\n\r", r->p[r->i]) && r->p[r->i]) {
        if (++run > 16) return INVALID;
        r->i++;
    }
    return COMPLETE;
}

static int parse_value(rd *r);

static int expect_byte(rd *r, uint8_t b) {
    if (at_end(r)) return PREFIX;
    if (r->p[r->i] != b) return INVALID;
    r->i++;
    return COMPLETE;
}

static int parse_literal(rd *r, const char *lit) {
    for (; *lit; lit++) {
        int s = expect_byte(r, (uint8_t)*lit);
        if (s) return s;
    }
    return COMPLETE;
}

static int is_digit_b(uint8_t b) { return b >= '0' && b <= '9'; }

/* digits+ ; 0 when at least one was read */
static int digits(rd *r) {
    if (at_end(r)) return PREFIX;
    if (!is_digit_b(r->p[r->i])) return INVALID;
    while (!at_end(r) && is_digit_b(r->p[r->i])) r->i++;
    return COMPLETE;
}

static int parse_number(rd *r) {
    if (r->p[r->i] == '-') {
        r->i++;
        if (at_end(r)) return PREFIX;
    }
    if (r->p[r->i] == '0') r->i++;
    else {
        int s = digits(r);
        if (s) return s;
    }
    if (!at_end(r) && r->p[r->i] == '.') {
        r->i++;
        int s = digits(r);
        if (s) return s;
    }
    if (!at_end(r) && (r->p[r->i] == 'e' || r->p[r->i] == 'E')) {
        r->i++;
        if (at_end(r)) return PREFIX;
        if (r->p[r->i] == '+' || r->p[r->i] == '-') r->i++;
        int s = digits(r);
        if (s) return s;
    }
    return COMPLETE;
}

static int hex4(rd *r, unsigned *code) {
    *code = 0;
    for (int k = 0; k < 4; k++) {
        if (at_end(r)) return PREFIX;
        uint8_t b = r->p[r->i];
        unsigned h;
        if (b >= '0' && b <= '9') h = b - '0';
        else if (b >= 'a' && b <= 'f') h = b - 'a' + 10;
        else if (b >= 'A' && b <= 'F') h = b - 'A' + 10;
        else return INVALID;
        *code = *code * 16 + h;
        r->i++;
    }
    return COMPLETE;
}

/* The first two hex digits of an escape, as far as they go, already tell
 * whether the code unit is a low surrogate. */
static int partial_is_low(const rd *r, size_t start) {
    size_t have = r->n - start;
    if (have < 2) return -1; /* unknown yet */
    char two[3] = {(char)r->p[start], (char)r->p[start + 1], 0};
    unsigned v = (unsigned)strtoul(two, NULL, 16);
    return v >= 0xDC && v <= 0xDF;
}

static int parse_escape_u(rd *r) {
    size_t start = r->i;
    unsigned code;
    int s = hex4(r, &code);
    if (s == INVALID) return s;
    if (s == PREFIX) return partial_is_low(r, start) == 1 ? INVALID : PREFIX;
    if (code >= 0xDC00 && code <= 0xDFFF) return INVALID;
    if (code < 0xD800 || code > 0xDBFF) return COMPLETE;
    if ((s = expect_byte(r, '\\'))) return s;
    if ((s = expect_byte(r, 'u'))) return s;
    start = r->i;
    s = hex4(r, &code);
    if (s == INVALID) return s;
    if (s == PREFIX) return partial_is_low(r, start) == 0 ? INVALID : PREFIX;
    return code >= 0xDC00 && code <= 0xDFFF ? COMPLETE : INVALID;
}

static int parse_utf8(rd *r) {
    uint8_t b = r->p[r->i++];
    int more;
    uint8_t lo = 0x80, hi = 0xBF;
    if (b >= 0xC2 && b <= 0xDF) more = 1;
    else if (b >= 0xE0 && b <= 0xEF) {
        more = 2;
        if (b == 0xE0) lo = 0xA0;
        if (b == 0xED) hi = 0x9F;
    } else if (b >= 0xF0 && b <= 0xF4) {
        more = 3;
        if (b == 0xF0) lo = 0x90;
        if (b == 0xF4) hi = 0x8F;
    } else return INVALID;
    for (int k = 0; k < more; k++) {
        if (at_end(r)) return PREFIX;
        uint8_t c = r->p[r->i++];
        if (c < lo || c > hi) return INVALID;
        lo = 0x80;
        hi = 0xBF;
    }
    return COMPLETE;
}

static int parse_string(rd *r) {
    r->i++; /* the opening quote */
    for (;;) {
        if (at_end(r)) return PREFIX;
        uint8_t b = r->p[r->i];
        if (b == '"') {
            r->i++;
            return COMPLETE;
        }
        if (b < 0x20) return INVALID;
        int s = COMPLETE;
        if (b == '\\') {
            r->i++;
            if (at_end(r)) return PREFIX;
            uint8_t e = r->p[r->i++];
            if (e == 'u') s = parse_escape_u(r);
            else if (!strchr("\"\\/bfnrt", e) || !e) s = INVALID;
        } else if (b >= 0x80) {
            s = parse_utf8(r);
        } else {
            r->i++;
        }
        if (s) return s;
    }
}

static int parse_container(rd *r, int object) {
    r->i++;
    if (++r->depth > 64) return INVALID;
    uint8_t close = object ? '}' : ']';
    int s;
    if ((s = skip_ws(r))) return s;
    if (at_end(r)) return PREFIX;
    if (r->p[r->i] == close) {
        r->i++;
        r->depth--;
        return COMPLETE;
    }
    for (;;) {
        if (object) {
            if ((s = skip_ws(r))) return s;
            if (at_end(r)) return PREFIX;
            if (r->p[r->i] != '"') return INVALID;
            if ((s = parse_string(r))) return s;
            if ((s = skip_ws(r))) return s;
            if ((s = expect_byte(r, ':'))) return s;
        }
        if ((s = parse_value(r))) return s;
        if ((s = skip_ws(r))) return s;
        if (at_end(r)) return PREFIX;
        uint8_t b = r->p[r->i++];
        if (b == close) break;
        if (b != ',') return INVALID;
    }
    r->depth--;
    return COMPLETE;
}

static int parse_value(rd *r) {
    int s = skip_ws(r);
    if (s) return s;
    if (at_end(r)) return PREFIX;
    uint8_t b = r->p[r->i];
    if (b == '{') return parse_container(r, 1);
    if (b == '[') return parse_container(r, 0);
    if (b == '"') return parse_string(r);
    if (b == '-' || is_digit_b(b)) return parse_number(r);
    if (b == 't') return parse_literal(r, "true");
    if (b == 'f') return parse_literal(r, "false");
    if (b == 'n') return parse_literal(r, "null");
    return INVALID;
}

static int check_json(const char *text, size_t n, int require_object) {
    rd r = {(const uint8_t *)text, n, 0, 0};
    if (require_object) {
        if (skip_ws(&r)) return INVALID;
        if (at_end(&r)) return PREFIX;
        if (r.p[r.i] != '{') return INVALID;
    }
    int s = parse_value(&r);
    if (s) return s;
    return at_end(&r) ? COMPLETE : INVALID;
}

/* ------------------------------------------------ vocabularies */

typedef struct {
    ns_vocab *v;
    int n;
    char **piece; /* n pieces (special = false) */
    int *len;
    int byte_tok[256]; /* a token whose text is exactly that byte */
} vocab_info;

static void info_fill(vocab_info *vi, ns_vocab *v) {
    memset(vi, 0, sizeof *vi);
    vi->v = v;
    vi->n = ns_vocab_size(v);
    vi->piece = calloc((size_t)vi->n, sizeof *vi->piece);
    vi->len = calloc((size_t)vi->n, sizeof *vi->len);
    assert_non_null(vi->piece);
    for (int b = 0; b < 256; b++) vi->byte_tok[b] = -1;
    for (int t = 0; t < vi->n; t++) {
        char buf[512];
        int n = ns_token_to_piece(v, t, false, buf, (int)sizeof buf);
        assert_true(n >= 0);
        vi->piece[t] = malloc((size_t)n + 1);
        memcpy(vi->piece[t], buf, (size_t)n);
        vi->piece[t][n] = 0;
        vi->len[t] = n;
        if (n == 1 && vi->byte_tok[(uint8_t)buf[0]] < 0) vi->byte_tok[(uint8_t)buf[0]] = t;
    }
}

static void info_free(vocab_info *vi) {
    for (int t = 0; t < vi->n; t++) free(vi->piece[t]);
    free(vi->piece);
    free(vi->len);
    ns_vocab_free(vi->v);
}

/* <unk> <s> </s> <|ctl|> then one byte token per byte, then a few words. */
static ns_vocab *byte_vocab(void) {
    const char *toks[4 + 256 + 4];
    char names[256][8];
    int32_t types[4 + 256 + 4];
    float scores[4 + 256 + 4];
    int n = 0;
    toks[n] = "<unk>", types[n++] = NS_TOKEN_UNKNOWN;
    toks[n] = "<s>", types[n++] = NS_TOKEN_CONTROL;
    toks[n] = "</s>", types[n++] = NS_TOKEN_CONTROL;
    toks[n] = "<|ctl|>", types[n++] = NS_TOKEN_CONTROL;
    for (int b = 0; b < 256; b++) {
        snprintf(names[b], sizeof names[b], "<0x%02X>", b);
        toks[n] = names[b], types[n++] = NS_TOKEN_BYTE;
    }
    toks[n] = "{\"", types[n++] = NS_TOKEN_NORMAL;
    toks[n] = "\":", types[n++] = NS_TOKEN_NORMAL;
    toks[n] = "true", types[n++] = NS_TOKEN_NORMAL;
    toks[n] = "abc", types[n++] = NS_TOKEN_NORMAL;
    for (int i = 0; i < n; i++) scores[i] = 0;
    ns_gguf_writer *w = ns_gguf_writer_new();
    assert_non_null(w);
    ns_gguf_w_str(w, "general.architecture", "llama");
    ns_gguf_w_str(w, "tokenizer.ggml.model", "llama");
    ns_gguf_w_arr_str(w, "tokenizer.ggml.tokens", toks, (uint64_t)n);
    ns_gguf_w_arr_f32(w, "tokenizer.ggml.scores", scores, (uint64_t)n);
    ns_gguf_w_arr_i32(w, "tokenizer.ggml.token_type", types, (uint64_t)n);
    ns_gguf_w_u32(w, "tokenizer.ggml.bos_token_id", 1);
    ns_gguf_w_u32(w, "tokenizer.ggml.eos_token_id", 2);
    ns_gguf_w_u32(w, "tokenizer.ggml.unknown_token_id", 0);
    uint8_t *img;
    size_t size;
    assert_int_equal(ns_gguf_w_to_mem(w, &img, &size), 0);
    ns_gguf_writer_free(w);
    char err[256];
    ns_gguf *g = ns_gguf_parse(img, size, err, sizeof err);
    assert_non_null(g);
    ns_vocab *v = ns_vocab_load(g, err, sizeof err);
    if (!v) fprintf(stderr, "ns_vocab_load: %s\n", err);
    assert_non_null(v);
    ns_gguf_close(g);
    free(img);
    return v;
}

static ns_vocab *file_vocab(const char *rel) {
    const char *path = ns_test_shared_path(rel);
    assert_non_null(path);
    char err[256];
    ns_gguf *g = ns_gguf_open(path, err, sizeof err);
    if (!g) fprintf(stderr, "%s: %s\n", path, err);
    assert_non_null(g);
    ns_vocab *v = ns_vocab_load(g, err, sizeof err);
    assert_non_null(v);
    ns_gguf_close(g);
    return v;
}

/* ------------------------------------------------ feeding text */

static float *logits_buf(int n) {
    float *l = malloc(sizeof *l * (size_t)n);
    assert_non_null(l);
    return l;
}

static bool allowed(ns_json_constraint *c, float *l, int n, int tok) {
    for (int i = 0; i < n; i++) l[i] = 0.0f;
    ns_json_constraint_mask(c, l, n);
    return l[tok] == 0.0f;
}

/* Feeds text byte by byte; returns how many bytes the mask let through. */
static size_t feed_bytes(ns_json_constraint *c, const vocab_info *vi, float *l, const char *text, size_t n) {
    for (size_t i = 0; i < n; i++) {
        int t = vi->byte_tok[(uint8_t)text[i]];
        assert_true(t >= 0);
        if (!allowed(c, l, vi->n, t)) return i;
        ns_json_constraint_accept(c, t);
    }
    return n;
}

/* The constraint agrees with the checker on text: every byte allowed while
 * the text stays a viable prefix, the first dead byte refused, and EOS
 * allowed exactly when the text is complete. */
static void agree_on(const vocab_info *vi, const char *text, size_t n, bool require_object) {
    ns_json_constraint *c = ns_json_constraint_new(vi->v, require_object);
    assert_non_null(c);
    float *l = logits_buf(vi->n);
    int eos = ns_vocab_eos(vi->v);
    size_t viable = 0; /* longest viable prefix */
    while (viable < n && check_json(text, viable + 1, require_object) != INVALID) viable++;
    for (size_t i = 0; i <= viable; i++) {
        int want = check_json(text, i, require_object);
        bool eos_ok = allowed(c, l, vi->n, eos);
        if (eos_ok != (want == COMPLETE) || ns_json_constraint_complete(c) != (want == COMPLETE)) {
            fprintf(stderr, "after %zu bytes of \"%.*s\": EOS %s, the checker says %d\n", i, (int)n, text,
                    eos_ok ? "allowed" : "refused", want);
            fail();
        }
        if (i == n) break;
        size_t got = feed_bytes(c, vi, l, text + i, 1);
        bool want_ok = i < viable;
        if ((got == 1) != want_ok) {
            fprintf(stderr, "byte %zu (0x%02x) of \"%.*s\": %s, the checker says %s\n", i, (uint8_t)text[i],
                    (int)n, text, got ? "allowed" : "refused", want_ok ? "viable" : "dead");
            fail();
        }
        if (!got) break;
    }
    free(l);
    ns_json_constraint_free(c);
}

#define AGREE(vi, s, obj) agree_on(vi, s, sizeof(s) - 1, obj)

static vocab_info byte_vi;

static int setup_byte_vocab(void **state) {
    (void)state;
    info_fill(&byte_vi, byte_vocab());
    return 0;
}
static int teardown_byte_vocab(void **state) {
    (void)state;
    info_free(&byte_vi);
    return 0;
}

static const char *const valid_docs[] = {
    "{}",
    " {\"a\": 1}",
    "{\"key\":\"value\",\"n\":-0.5e+10,\"arr\":[1,2.0,3e3,true,false,null,[],{}]}",
    "{\"s\":\"esc \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u00e9 \\uD83D\\ude00 end\"}",
    "{\"utf8\":\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xed\x9f\xbf \xf4\x8f\xbf\xbf\"}",
    "{ \"a\" : [ 1 , { \"b\" : null } ] ,\n\t\"c\" : 0 }",
    "{\"n\":[0,-0,0.0,1E5,1e-5,123456789012345678901234567890]}",
    "{\"deep\":[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]}",
};

static void test_valid_documents(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof valid_docs / sizeof *valid_docs; i++) {
        size_t n = strlen(valid_docs[i]);
        assert_int_equal(check_json(valid_docs[i], n, 1), COMPLETE); /* the checker itself */
        cJSON *j = cJSON_ParseWithLength(valid_docs[i], n);
        assert_non_null(j);
        cJSON_Delete(j);
        agree_on(&byte_vi, valid_docs[i], n, true);
        agree_on(&byte_vi, valid_docs[i], n, false);
    }
}

static void test_top_level_values(void **state) {
    (void)state;
    /* without require_object any value is a document */
    AGREE(&byte_vi, "[1,[2],\"x\"]", false);
    AGREE(&byte_vi, "\"just a string\"", false);
    AGREE(&byte_vi, "12.5e3", false);
    AGREE(&byte_vi, "  true", false);
    AGREE(&byte_vi, "null", false);
    AGREE(&byte_vi, "-0", false);
    /* with it, only an object */
    AGREE(&byte_vi, "[1]", true);
    AGREE(&byte_vi, "\"s\"", true);
    AGREE(&byte_vi, "1", true);
    AGREE(&byte_vi, "true", true);
}

static void test_invalid_documents(void **state) {
    (void)state;
    static const char *const bad[] = {
        "{\"a\":1,}", "{,}", "{\"a\" 1}", "{\"a\":}", "{a:1}", "{\"a\":01}", "{\"a\":1.}", "{\"a\":.5}",
        "{\"a\":-}", "{\"a\":1e}", "{\"a\":1e+}", "{\"a\":+1}", "{\"a\":tru}", "{\"a\":nul,}", "{\"a\":True}",
        "{\"a\":\"\\x\"}", "{\"a\":\"\\u12G4\"}", "{\"a\":\"\\uDC00\"}", "{\"a\":\"\\uD800\"}",
        "{\"a\":\"\\uD800\\n\"}", "{\"a\":\"\\uD800\\u0041\"}", "{\"a\":\"tab\there\"}",
        "{\"a\":\"\xc0\x80\"}", "{\"a\":\"\xc3\"}", "{\"a\":\"\xe0\x80\x80\"}", "{\"a\":\"\xed\xa0\x80\"}",
        "{\"a\":\"\xf4\x90\x80\x80\"}", "{\"a\":\"\xf5\"}", "{\"a\":\"\x80\"}", "{\"a\":[1 2]}", "{\"a\":[1,]}",
        "{\"a\":1]", "[1}", "{}}", "{} ", "{}x", "{\"a\":1}{}", "{\"a\"::1}", "{\"a\":1,,\"b\":2}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        size_t n = strlen(bad[i]);
        assert_int_not_equal(check_json(bad[i], n, 0), COMPLETE);
        agree_on(&byte_vi, bad[i], n, true);
        agree_on(&byte_vi, bad[i], n, false);
    }
}

static void test_limits(void **state) {
    (void)state;
    /* 64 levels of nesting are fine, the 65th is refused */
    char deep[200];
    size_t n = 0;
    deep[n++] = '{';
    memcpy(deep + n, "\"a\":", 4), n += 4;
    for (int i = 0; i < 63; i++) deep[n++] = '[';
    size_t open_end = n;
    for (int i = 0; i < 63; i++) deep[n++] = ']';
    deep[n++] = '}';
    agree_on(&byte_vi, deep, n, true);
    assert_int_equal(check_json(deep, n, 1), COMPLETE);
    memmove(deep + open_end + 1, deep + open_end, n - open_end);
    deep[open_end] = '[';
    n++;
    agree_on(&byte_vi, deep, n, true);
    assert_int_equal(check_json(deep, open_end + 1, 1), INVALID);

    /* 16 whitespace bytes in a row, not 17 */
    AGREE(&byte_vi, "{                \"a\":1}", true);
    AGREE(&byte_vi, "{                 \"a\":1}", true);
    AGREE(&byte_vi, "{\"a\":1 \n\t\r \n\t\r \n\t\r \n\t\r}", true);
    AGREE(&byte_vi, "{\"a\":1 \n\t\r \n\t\r \n\t\r \n\t\r }", true);
    AGREE(&byte_vi, "                {}", true);
    AGREE(&byte_vi, "                 {}", true);
    /* spaces inside a string are text, not whitespace */
    AGREE(&byte_vi, "{\"a\":\"                                      \"}", true);
}

static void test_special_tokens(void **state) {
    (void)state;
    ns_json_constraint *c = ns_json_constraint_new(byte_vi.v, true);
    float *l = logits_buf(byte_vi.n);
    int ctl = 3, eos = ns_vocab_eos(byte_vi.v), bos = ns_vocab_bos(byte_vi.v);
    const char *doc = "{\"a\":[1,\"x\"]}";
    for (size_t i = 0; i <= strlen(doc); i++) {
        assert_false(allowed(c, l, byte_vi.n, ctl));
        assert_false(allowed(c, l, byte_vi.n, bos));
        assert_false(allowed(c, l, byte_vi.n, 0)); /* <unk> has no text either */
        assert_int_equal(allowed(c, l, byte_vi.n, eos), doc[i] == '\0');
        if (doc[i]) assert_int_equal(feed_bytes(c, &byte_vi, l, doc + i, 1), 1);
    }
    /* complete: nothing but EOS remains */
    for (int i = 0; i < byte_vi.n; i++) l[i] = 1.0f;
    ns_json_constraint_mask(c, l, byte_vi.n);
    for (int i = 0; i < byte_vi.n; i++) assert_true(i == eos ? l[i] == 1.0f : isinf(l[i]));
    assert_true(ns_json_constraint_complete(c));
    /* multi-byte tokens go through the same automaton */
    ns_json_constraint_free(c);
    c = ns_json_constraint_new(byte_vi.v, true);
    int t_open = 4 + 256, t_colon = t_open + 1, t_true = t_open + 2, t_abc = t_open + 3;
    assert_false(allowed(c, l, byte_vi.n, t_colon));
    assert_false(allowed(c, l, byte_vi.n, t_true));
    assert_true(allowed(c, l, byte_vi.n, t_open));
    ns_json_constraint_accept(c, t_open);
    assert_true(allowed(c, l, byte_vi.n, t_abc));
    assert_true(allowed(c, l, byte_vi.n, t_colon));
    ns_json_constraint_accept(c, t_abc);
    ns_json_constraint_accept(c, t_colon);
    assert_true(allowed(c, l, byte_vi.n, t_true));
    assert_false(allowed(c, l, byte_vi.n, t_abc));
    ns_json_constraint_accept(c, t_true);
    assert_false(ns_json_constraint_complete(c));
    feed_bytes(c, &byte_vi, l, "}", 1);
    assert_true(ns_json_constraint_complete(c));
    ns_json_constraint_free(c);

    /* a logits row longer than the vocabulary (padded models): the extra ids
     * never come; a shorter one: nothing is written past its end */
    c = ns_json_constraint_new(byte_vi.v, true);
    float *wide = logits_buf(byte_vi.n + 8);
    for (int i = 0; i < byte_vi.n + 8; i++) wide[i] = 0.0f;
    ns_json_constraint_mask(c, wide, byte_vi.n + 8);
    for (int i = byte_vi.n; i < byte_vi.n + 8; i++) assert_true(isinf(wide[i]));
    assert_true(wide[byte_vi.byte_tok['{']] == 0.0f);
    for (int i = 0; i < byte_vi.n + 8; i++) wide[i] = 0.0f;
    ns_json_constraint_mask(c, wide, 100);
    assert_in_range(byte_vi.byte_tok['0'], 0, 99);
    assert_true(isinf(wide[byte_vi.byte_tok['0']]));
    for (int i = 100; i < byte_vi.n + 8; i++) assert_true(wide[i] == 0.0f);
    free(wide);
    free(l);
    ns_json_constraint_free(c);
}

/* ------------------------------------------------ real vocabularies */

static const char *const prefixes[] = {
    "", " ", "{", "{\"", "{\"ke", "{\"key\"", "{\"key\" ", "{\"key\":", "{\"key\": 1", "{\"key\": -",
    "{\"key\": 0", "{\"key\": 1.5e", "{\"key\": [tr", "{\"key\": [", "{\"key\": [1,", "{\"a\":\"\\",
    "{\"a\":\"\\u00", "{\"a\":\"\\uD83D", "{\"a\":\"\\uD83D\\u", "{\"a\":\"\xe2\x82", "{\"a\":\"x\\n",
    "{\"a\":{\"b\":{}}", "{\"a\":{}}", "{\"a\":1 ", "[", "[1", "\"abc", "12", "-", "tr",
};

/* From each prefix, every token of the vocabulary is allowed exactly when
 * the checker says the prefix + its text can still become JSON (EOG tokens:
 * when the prefix is complete). */
static void check_vocab_masks(const char *rel) {
    vocab_info vi;
    info_fill(&vi, file_vocab(rel));
    float *l = logits_buf(vi.n);
    size_t cap = 4096;
    char *buf = malloc(cap);
    double worst_ms = 0;
    int checked = 0;
    for (int obj = 0; obj <= 1; obj++) {
        for (size_t p = 0; p < sizeof prefixes / sizeof *prefixes; p++) {
            const char *pre = prefixes[p];
            size_t pn = strlen(pre);
            /* inside an object both modes are the same automaton: once is enough */
            if (!obj && pre[0] == '{') continue;
            int pre_state = check_json(pre, pn, obj);
            if (pre_state == INVALID) continue;
            ns_json_constraint *c = ns_json_constraint_new(vi.v, obj);
            assert_non_null(c);
            assert_int_equal(feed_bytes(c, &vi, l, pre, pn), pn);
            for (int t = 0; t < vi.n; t++) l[t] = 0.0f;
            struct timespec t0, t1;
            clock_gettime(CLOCK_MONOTONIC, &t0);
            ns_json_constraint_mask(c, l, vi.n);
            clock_gettime(CLOCK_MONOTONIC, &t1);
            double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
            if (ms > worst_ms) worst_ms = ms;
            int n_ok = 0;
            for (int t = 0; t < vi.n; t++) {
                bool want;
                if (ns_vocab_is_eog(vi.v, t)) want = pre_state == COMPLETE;
                else if (vi.len[t] == 0) want = false;
                else {
                    memcpy(buf, pre, pn);
                    memcpy(buf + pn, vi.piece[t], (size_t)vi.len[t]);
                    want = check_json(buf, pn + (size_t)vi.len[t], obj) != INVALID;
                }
                bool got = l[t] == 0.0f;
                if (got != want) {
                    fprintf(stderr, "%s, prefix \"%s\" (object %d): token %d \"%s\" %s, the checker says %s\n", rel,
                            pre, obj, t, vi.piece[t], got ? "allowed" : "masked", want ? "allowed" : "masked");
                    fail();
                }
                n_ok += got;
                checked++;
            }
            /* a viable prefix always has some way on in these vocabularies */
            assert_true(n_ok > 0);
            ns_json_constraint_free(c);
        }
    }
    printf("%s: %d vocab entries, %d token checks; slowest mask %.3f ms\n", rel, vi.n, checked, worst_ms);
    free(buf);
    free(l);
    info_free(&vi);
}

static void test_stories_vocab(void **state) {
    (void)state;
    check_vocab_masks("models/stories260K.gguf");
}

static void test_qwen2_vocab(void **state) {
    (void)state;
    check_vocab_masks("models/tiny-qwen2-q8_0.gguf");
}

/* ------------------------------------------------ random generation */

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 32);
}

/* Random tokens among the allowed ones for a while, then the shortest way
 * to a close (one-byte tokens, closers first), so every run ends; the text
 * must parse with cJSON, and be an object under require_object. */
static void random_documents_in(const vocab_info *vip, const char *rel, int runs) {
    const vocab_info vi = *vip;
    float *l = logits_buf(vi.n);
    int *ok = malloc(sizeof *ok * (size_t)vi.n);
    size_t cap = 1 << 16;
    char *text = malloc(cap);
    static const char closers[] = "\"}]:0";
    int completed = 0, total_tokens = 0;
    for (int run = 0; run < runs; run++) {
        bool obj = run % 3 != 0;
        ns_json_constraint *c = ns_json_constraint_new(vi.v, obj);
        size_t n = 0;
        int wander = (int)(rnd() % 60);
        bool ended = false;
        for (int step = 0; step < 4000 && !ended; step++) {
            for (int t = 0; t < vi.n; t++) l[t] = 0.0f;
            ns_json_constraint_mask(c, l, vi.n);
            int n_ok = 0;
            for (int t = 0; t < vi.n; t++)
                if (l[t] == 0.0f) ok[n_ok++] = t;
            assert_true(n_ok > 0);
            int pick = -1;
            if (step < wander) {
                pick = ok[rnd() % (uint32_t)n_ok];
            } else {
                for (int k = 0; k < n_ok && pick < 0; k++)
                    if (ns_vocab_is_eog(vi.v, ok[k])) pick = ok[k];
                for (const char *cl = closers; *cl && pick < 0; cl++) {
                    int t = vi.byte_tok[(uint8_t)*cl];
                    if (t >= 0 && l[t] == 0.0f) pick = t;
                }
                /* the lowest allowed non-space byte (a hex digit, a literal's next letter, ...) */
                for (int b = 0x21; b < 256 && pick < 0; b++) {
                    int t = vi.byte_tok[b];
                    if (t >= 0 && l[t] == 0.0f) pick = t;
                }
                if (pick < 0) pick = ok[0];
            }
            total_tokens++;
            if (ns_vocab_is_eog(vi.v, pick)) {
                assert_true(ns_json_constraint_complete(c));
                ended = true;
                break;
            }
            ns_json_constraint_accept(c, pick);
            assert_true(n + (size_t)vi.len[pick] < cap);
            memcpy(text + n, vi.piece[pick], (size_t)vi.len[pick]);
            n += (size_t)vi.len[pick];
        }
        if (!ended) fprintf(stderr, "%s run %d did not end: \"%.*s\"\n", rel, run, n > 300 ? 300 : (int)n, text);
        assert_true(ended);
        int verdict = check_json(text, n, obj);
        cJSON *j = cJSON_ParseWithLength(text, n);
        if (verdict != COMPLETE || !j || (obj && !cJSON_IsObject(j))) {
            fprintf(stderr, "%s run %d produced unparseable \"%.*s\"\n", rel, run, (int)n, text);
            fail();
        }
        cJSON_Delete(j);
        completed++;
        ns_json_constraint_free(c);
    }
    printf("%s: %d random documents parsed (%d tokens)\n", rel, completed, total_tokens);
    free(text);
    free(ok);
    free(l);
}

static void random_documents(const char *rel, int runs) {
    vocab_info vi;
    info_fill(&vi, file_vocab(rel));
    random_documents_in(&vi, rel, runs);
    info_free(&vi);
}

static void test_random_bytes(void **state) {
    (void)state;
    random_documents_in(&byte_vi, "byte vocabulary", 300);
}

static void test_random_stories(void **state) {
    (void)state;
    random_documents("models/stories260K.gguf", 300);
}

static void test_random_qwen2(void **state) {
    (void)state;
    random_documents("models/tiny-qwen2-q8_0.gguf", 20);
}

int main(void) {
    const struct CMUnitTest mem_tests[] = {
        cmocka_unit_test(test_valid_documents),
        cmocka_unit_test(test_top_level_values),
        cmocka_unit_test(test_invalid_documents),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_special_tokens),
        cmocka_unit_test(test_random_bytes),
    };
    const struct CMUnitTest file_tests[] = {
        cmocka_unit_test(test_stories_vocab),
        cmocka_unit_test(test_qwen2_vocab),
        cmocka_unit_test(test_random_stories),
        cmocka_unit_test(test_random_qwen2),
    };
    int fails = cmocka_run_group_tests_name("json constraint (in memory)", mem_tests, setup_byte_vocab,
                                            teardown_byte_vocab);
    if (!ns_test_shared_path("models/stories260K.gguf") || !ns_test_shared_path("models/tiny-qwen2-q8_0.gguf")) {
        if (fails) return fails;
        printf("SKIP: the shared folder is absent; only the in-memory JSON constraint tests ran\n");
        return NS_TEST_SKIP;
    }
    fails += cmocka_run_group_tests_name("json constraint (vocabularies)", file_tests, NULL, NULL);
    return fails;
}
