/* Tokenizers over the vocabulary stored in a GGUF file, matching the
 * reference engine (llama.cpp): SentencePiece-style (tokenizer.ggml.model =
 * "llama", here) and byte-level BPE ("gpt2": tokenizer_bpe.c for the merges,
 * pretokenize.c for the pre-tokenizers; the loading, the special tokens and
 * the pieces are shared and live here).
 *
 * SentencePiece:
 *
 *  - special tokens (CONTROL, USER_DEFINED, UNKNOWN) are split out of the text
 *    first, longest first; CONTROL and UNKNOWN ones only when parse_special,
 *    USER_DEFINED ones always (as the reference does);
 *  - every remaining text fragment gets the dummy prefix " " when it starts
 *    the text or follows a special token, spaces become U+2581, and the
 *    fragment is split into UTF-8 characters that are merged pairwise, the
 *    pair whose concatenation is the highest-scoring vocabulary entry first
 *    (ties: leftmost first);
 *  - a final symbol that is not in the vocabulary falls back to its bytes as
 *    <0xXX> tokens (or <unk> when the vocabulary has no byte tokens).
 */
#include "nstack/tokenizer.h"

#include "tokenizer_bpe.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    F_EOG = 1,
    F_LSTRIP = 2,
    F_RSTRIP = 4,
};

typedef struct {
    int32_t id;     /* -1: empty slot */
    uint32_t tag;   /* low bits of the hash */
} hslot;

struct ns_vocab {
    int32_t n;
    char *pool;          /* every token's text, NUL-terminated */
    uint32_t *off;       /* n offsets into pool */
    uint32_t *len;       /* n lengths */
    float *score;
    uint8_t *type;       /* NS_TOKEN_*, 0 for anything else */
    uint8_t *flags;      /* F_* */

    hslot *htab;
    size_t hcap;         /* power of two */

    int32_t bos, eos, unk, pad, eot, eom;
    bool add_bos, add_eos, add_space_prefix;

    int32_t byte_tok[256];   /* token of byte b, -1 if none */

    int32_t *special;        /* CONTROL/USER_DEFINED/UNKNOWN ids, longest first */
    int32_t n_special;

    /* The set of pairs of adjacent characters found anywhere in any token's
     * text (a few thousand for a 32000-token vocabulary). Where two adjacent
     * characters of the input form a pair that is absent, no token can span
     * them: the merges on either side are independent, and each side gets
     * its own small priority queue (same result, far fewer cache misses on
     * long inputs). Keys are pair_key() (never 0); 0 marks an empty slot. */
    uint64_t *pairs;
    size_t pairs_cap, pairs_n;   /* cap: power of two */

    ns_bpe *bpe;             /* byte-level BPE ("gpt2"); NULL for SentencePiece */
};

/* ---------------------------------------------------------------- helpers */

static void seterr(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || errlen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull;  /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h ^ (h >> 29);
}

static inline const char *tok_text(const ns_vocab *v, int32_t id) { return v->pool + v->off[id]; }

static int32_t vocab_find(const ns_vocab *v, const char *s, size_t n) {
    uint64_t h = hash_bytes(s, n);
    uint32_t tag = (uint32_t)(h >> 32);
    size_t mask = v->hcap - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        const hslot *e = &v->htab[i];
        if (e->id < 0) return -1;
        if (e->tag == tag && v->len[e->id] == n && memcmp(tok_text(v, e->id), s, n) == 0) return e->id;
    }
}

/* Inserts id; returns the id already holding the same text, or -1. */
static int32_t vocab_insert(ns_vocab *v, int32_t id) {
    const char *s = tok_text(v, id);
    size_t n = v->len[id];
    uint64_t h = hash_bytes(s, n);
    uint32_t tag = (uint32_t)(h >> 32);
    size_t mask = v->hcap - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        hslot *e = &v->htab[i];
        if (e->id < 0) {
            e->id = id;
            e->tag = tag;
            return -1;
        }
        if (e->tag == tag && v->len[e->id] == n && memcmp(tok_text(v, e->id), s, n) == 0) return e->id;
    }
}

static bool valid_id(const ns_vocab *v, int32_t id) { return v && id >= 0 && id < v->n; }

int32_t ns_vocab_lookup(const ns_vocab *v, const char *s, size_t n) { return vocab_find(v, s, n); }

/* Printable, truncated copy of a token's text for messages. */
static void printable(char *dst, size_t dstlen, const char *s, size_t n) {
    size_t j = 0;
    for (size_t i = 0; i < n && j + 5 < dstlen; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != 0x7f) dst[j++] = (char)c;
        else j += (size_t)snprintf(dst + j, dstlen - j, "\\x%02x", c);
    }
    if (dstlen) dst[j < dstlen ? j : dstlen - 1] = 0;
}

/* ------------------------------------------------------- character pairs */

/* Length of the well-formed UTF-8 character at s (a lead byte and exactly
 * its continuation bytes), its value in *cp; 0 if not well-formed. */
static int wf_char(const unsigned char *s, size_t n, uint32_t *cp) {
    unsigned c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    int l = c < 0xC0 ? 0 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : c < 0xF8 ? 4 : 0;
    if (l == 0 || (size_t)l > n) return 0;
    uint32_t x = c & (0x7Fu >> l);
    for (int i = 1; i < l; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        x = x << 6 | (s[i] & 0x3Fu);
    }
    *cp = x;
    return l;
}

static inline uint64_t pair_key(uint32_t a, uint32_t b) { return ((uint64_t)a << 21 | b) + 1; }

static inline size_t pair_slot(uint64_t k, size_t cap) {
    k *= 0x9E3779B97F4A7C15ull;
    return (size_t)(k >> 32) & (cap - 1);
}

static bool pair_add(ns_vocab *v, uint32_t a, uint32_t b) {
    uint64_t k = pair_key(a, b);
    if ((v->pairs_n + 1) * 2 > v->pairs_cap) {  /* grow, keeping the load under 1/2 */
        size_t nc = v->pairs_cap ? v->pairs_cap * 2 : 4096;
        uint64_t *np = calloc(nc, sizeof *np);
        if (!np) return false;
        for (size_t i = 0; i < v->pairs_cap; i++) {
            uint64_t x = v->pairs[i];
            if (!x) continue;
            size_t j = pair_slot(x, nc);
            while (np[j]) j = (j + 1) & (nc - 1);
            np[j] = x;
        }
        free(v->pairs);
        v->pairs = np;
        v->pairs_cap = nc;
    }
    size_t i = pair_slot(k, v->pairs_cap);
    while (v->pairs[i]) {
        if (v->pairs[i] == k) return true;
        i = (i + 1) & (v->pairs_cap - 1);
    }
    v->pairs[i] = k;
    v->pairs_n++;
    return true;
}

static inline bool pair_known(const ns_vocab *v, uint32_t a, uint32_t b) {
    uint64_t k = pair_key(a, b);
    for (size_t i = pair_slot(k, v->pairs_cap);; i = (i + 1) & (v->pairs_cap - 1)) {
        if (v->pairs[i] == k) return true;
        if (!v->pairs[i]) return false;
    }
}

/* Every pair of adjacent well-formed characters at every byte offset of
 * every token (so an occurrence is found whatever the token's alignment). */
static bool build_pairs(ns_vocab *v) {
    v->pairs_cap = 4096;
    v->pairs = calloc(v->pairs_cap, sizeof *v->pairs);
    if (!v->pairs) return false;
    for (int32_t id = 0; id < v->n; id++) {
        const unsigned char *t = (const unsigned char *)tok_text(v, id);
        size_t n = v->len[id];
        for (size_t p = 0; p + 1 < n; p++) {
            uint32_t a, b;
            int la, lb;
            if (t[p] < 0x80) {
                a = t[p];
                la = 1;
            } else if ((la = wf_char(t + p, n - p, &a)) == 0 || p + (size_t)la >= n) {
                continue;
            }
            if (t[p + (size_t)la] < 0x80) {
                b = t[p + (size_t)la];
                lb = 1;
            } else {
                lb = wf_char(t + p + la, n - p - (size_t)la, &b);
            }
            if (lb && !pair_add(v, a, b)) return false;
        }
    }
    return true;
}

/* ------------------------------------------------------------------- load */

static bool read_special_id(const ns_gguf *g, const char *key, int32_t n, int32_t *id) {
    int64_t x;
    if (!ns_gguf_get_i64(g, key, &x)) return false;
    if (x < 0 || x >= n) return false;   /* out of range: keep the default */
    *id = (int32_t)x;
    return true;
}

static int cmp_special(const void *a, const void *b, const ns_vocab *v) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    if (v->len[x] != v->len[y]) return v->len[x] > v->len[y] ? -1 : 1;
    return x < y ? -1 : x > y;
}

/* qsort has no context argument in C11: a small insertion-friendly merge sort. */
static void sort_special(int32_t *a, int32_t n, const ns_vocab *v) {
    if (n < 2) return;
    int32_t *tmp = malloc((size_t)n * sizeof *tmp);
    if (!tmp) {  /* fall back to insertion sort */
        for (int32_t i = 1; i < n; i++) {
            int32_t x = a[i], j = i;
            while (j > 0 && cmp_special(&a[j - 1], &x, v) > 0) { a[j] = a[j - 1]; j--; }
            a[j] = x;
        }
        return;
    }
    for (int32_t w = 1; w < n; w *= 2) {
        for (int32_t lo = 0; lo < n; lo += 2 * w) {
            int32_t mid = lo + w < n ? lo + w : n;
            int32_t hi = lo + 2 * w < n ? lo + 2 * w : n;
            int32_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi) tmp[k++] = cmp_special(&a[j], &a[i], v) < 0 ? a[j++] : a[i++];
            while (i < mid) tmp[k++] = a[i++];
            while (j < hi) tmp[k++] = a[j++];
        }
        memcpy(a, tmp, (size_t)n * sizeof *a);
    }
    free(tmp);
}

static const char *const eog_names[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
    "<|eom_id|>", "<EOT>", "_<EOT>", "<|end_of_text|>",
};
static const char *const eot_names[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
    "<|end_of_text|>", "<EOT>", "_<EOT>",
};

static int32_t find_cstr(const ns_vocab *v, const char *s) { return vocab_find(v, s, strlen(s)); }

static void make_control(ns_vocab *v, int32_t id) {
    if (v->type[id] != NS_TOKEN_CONTROL) v->type[id] = NS_TOKEN_CONTROL;
}

static bool contains_ci(const char *hay, const char *needle) {
    size_t n = strlen(needle);
    for (const char *p = hay; *p; p++) {
        size_t i = 0;
        while (i < n && p[i]) {
            char c = p[i];
            if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
            if (c != needle[i]) break;
            i++;
        }
        if (i == n) return true;
    }
    return false;
}

ns_vocab *ns_vocab_load(const ns_gguf *g, char *err, size_t errlen) {
    if (err && errlen) err[0] = 0;
    if (!g) {
        seterr(err, errlen, "tokenizer: no GGUF file");
        return NULL;
    }

    const ns_gguf_kv *mkv = ns_gguf_find(g, "tokenizer.ggml.model");
    if (!mkv) {
        seterr(err, errlen, "tokenizer: tokenizer.ggml.model is missing (the file holds no vocabulary)");
        return NULL;
    }
    if (mkv->type != NS_GGUF_STRING) {
        seterr(err, errlen, "tokenizer: tokenizer.ggml.model is not a string");
        return NULL;
    }
    bool is_bpe = ns_gguf_str_eq(mkv->v.str, "gpt2");
    if (!is_bpe && !ns_gguf_str_eq(mkv->v.str, "llama")) {
        char name[64];
        printable(name, sizeof name, mkv->v.str.ptr, (size_t)mkv->v.str.len);
        seterr(err, errlen,
               "tokenizer: unsupported tokenizer.ggml.model \"%s\" (supported: \"llama\", SentencePiece, and "
               "\"gpt2\", byte-level BPE)",
               name);
        return NULL;
    }

    const ns_gguf_kv *tkv = ns_gguf_find(g, "tokenizer.ggml.tokens");
    if (!tkv) {
        seterr(err, errlen, "tokenizer: tokenizer.ggml.tokens is missing");
        return NULL;
    }
    if (tkv->type != NS_GGUF_ARRAY || tkv->arr_type != NS_GGUF_STRING || !tkv->arr_str) {
        seterr(err, errlen, "tokenizer: tokenizer.ggml.tokens is not an array of strings");
        return NULL;
    }
    if (tkv->arr_n == 0 || tkv->arr_n > (uint64_t)INT32_MAX / 4) {
        seterr(err, errlen, "tokenizer: tokenizer.ggml.tokens has %llu entries (expected 1 to %d)",
               (unsigned long long)tkv->arr_n, INT32_MAX / 4);
        return NULL;
    }
    int32_t n = (int32_t)tkv->arr_n;

    const ns_gguf_kv *skv = ns_gguf_find(g, "tokenizer.ggml.scores");
    if (skv) {
        if (skv->type != NS_GGUF_ARRAY || skv->arr_type == NS_GGUF_STRING || skv->arr_type == NS_GGUF_ARRAY ||
            skv->arr_type == NS_GGUF_BOOL || !skv->arr_data) {
            seterr(err, errlen, "tokenizer: tokenizer.ggml.scores is not a numeric array");
            return NULL;
        }
        if (skv->arr_n < (uint64_t)n) {
            seterr(err, errlen, "tokenizer: tokenizer.ggml.scores has %llu entries, fewer than the %d tokens",
                   (unsigned long long)skv->arr_n, n);
            return NULL;
        }
    }
    const ns_gguf_kv *ykv = ns_gguf_find(g, "tokenizer.ggml.token_type");
    if (ykv) {
        if (ykv->type != NS_GGUF_ARRAY || ykv->arr_type == NS_GGUF_STRING || ykv->arr_type == NS_GGUF_ARRAY ||
            ykv->arr_type == NS_GGUF_FLOAT32 || ykv->arr_type == NS_GGUF_FLOAT64 || ykv->arr_type == NS_GGUF_BOOL ||
            !ykv->arr_data) {
            seterr(err, errlen, "tokenizer: tokenizer.ggml.token_type is not an integer array");
            return NULL;
        }
        if (ykv->arr_n < (uint64_t)n) {
            seterr(err, errlen, "tokenizer: tokenizer.ggml.token_type has %llu entries, fewer than the %d tokens",
                   (unsigned long long)ykv->arr_n, n);
            return NULL;
        }
    }

    ns_vocab *v = calloc(1, sizeof *v);
    if (!v) goto oom;
    v->n = n;
    if (is_bpe) {  /* merges and pre-tokenizer first: their errors are the likely ones */
        v->bpe = ns_bpe_load(g, err, errlen);
        if (!v->bpe) {
            ns_vocab_free(v);
            return NULL;
        }
    }

    /* text pool; an empty entry becomes "[EMPTY_<id>]" as in the reference */
    size_t total = 0;
    for (int32_t i = 0; i < n; i++) {
        uint64_t l = tkv->arr_str[i].len;
        if (l == 0) l = 24;
        if (l > (uint64_t)UINT32_MAX / 2 || total + (size_t)l + 1 > (size_t)UINT32_MAX) {
            seterr(err, errlen, "tokenizer: tokenizer.ggml.tokens is too large (at token %d)", i);
            ns_vocab_free(v);
            return NULL;
        }
        total += (size_t)l + 1;
    }
    v->pool = malloc(total);
    v->off = malloc((size_t)n * sizeof *v->off);
    v->len = malloc((size_t)n * sizeof *v->len);
    v->score = malloc((size_t)n * sizeof *v->score);
    v->type = malloc((size_t)n);
    v->flags = calloc((size_t)n, 1);
    v->hcap = 16;
    while (v->hcap < (size_t)n * 2) v->hcap *= 2;
    v->htab = malloc(v->hcap * sizeof *v->htab);
    if (!v->pool || !v->off || !v->len || !v->score || !v->type || !v->flags || !v->htab) goto oom;
    for (size_t i = 0; i < v->hcap; i++) v->htab[i].id = -1;

    size_t pos = 0;
    for (int32_t i = 0; i < n; i++) {
        ns_gguf_str s = tkv->arr_str[i];
        v->off[i] = (uint32_t)pos;
        if (s.len == 0) {
            int k = snprintf(v->pool + pos, 24, "[EMPTY_%d]", (int)i);
            v->len[i] = (uint32_t)k;
            pos += (size_t)k + 1;
        } else {
            memcpy(v->pool + pos, s.ptr, (size_t)s.len);
            v->pool[pos + (size_t)s.len] = 0;
            v->len[i] = (uint32_t)s.len;
            pos += (size_t)s.len + 1;
        }

        float sc = 0.0f;
        if (skv) {
            if (skv->arr_type == NS_GGUF_FLOAT32) {
                memcpy(&sc, (const char *)skv->arr_data + (size_t)i * 4, 4);
            } else {
                double d = 0;
                if (!ns_gguf_arr_f64(skv, (uint64_t)i, &d)) d = 0;
                sc = (float)d;
            }
        }
        v->score[i] = sc;

        int64_t t = NS_TOKEN_NORMAL;
        if (ykv) {
            if (ykv->arr_type == NS_GGUF_INT32) {
                int32_t t32;
                memcpy(&t32, (const char *)ykv->arr_data + (size_t)i * 4, 4);
                t = t32;
            } else if (!ns_gguf_arr_i64(ykv, (uint64_t)i, &t)) {
                t = 0;
            }
        }
        v->type[i] = (t >= NS_TOKEN_NORMAL && t <= NS_TOKEN_BYTE) ? (uint8_t)t : 0;

        int32_t dup = vocab_insert(v, i);
        if (dup >= 0) {
            char name[80];
            printable(name, sizeof name, tok_text(v, i), v->len[i]);
            seterr(err, errlen, "tokenizer: tokenizer.ggml.tokens holds \"%s\" twice (ids %d and %d)", name,
                   (int)dup, (int)i);
            ns_vocab_free(v);
            return NULL;
        }
    }

    /* special ids: the reference's defaults for the vocab type, then the file */
    unsigned pflags = ns_bpe_flags(v->bpe);
    if (v->bpe) {
        v->bos = 11 < n && !(pflags & NS_PRETOK_NO_BOS) ? 11 : -1;
        v->eos = 11 < n ? 11 : -1;
        v->unk = -1;
    } else {
        v->bos = 1 < n ? 1 : -1;
        v->eos = 2 < n ? 2 : -1;
        v->unk = 0;
    }
    v->pad = -1;
    v->eot = -1;
    v->eom = -1;
    read_special_id(g, "tokenizer.ggml.bos_token_id", n, &v->bos);
    read_special_id(g, "tokenizer.ggml.eos_token_id", n, &v->eos);
    read_special_id(g, "tokenizer.ggml.unknown_token_id", n, &v->unk);
    read_special_id(g, "tokenizer.ggml.padding_token_id", n, &v->pad);
    read_special_id(g, "tokenizer.ggml.eot_token_id", n, &v->eot);
    read_special_id(g, "tokenizer.ggml.eom_token_id", n, &v->eom);

    /* SentencePiece adds BOS and a dummy space prefix; BPE adds BOS only
     * for some pre-tokenizers (llama3, tekken, chameleon); the file decides */
    v->add_bos = v->bpe ? (pflags & NS_PRETOK_ADD_BOS) != 0 : true;
    v->add_eos = false;
    v->add_space_prefix = !v->bpe;
    bool b;
    if (ns_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &b)) v->add_bos = b;
    if (ns_gguf_get_bool(g, "tokenizer.ggml.add_eos_token", &b)) v->add_eos = b;
    if (ns_gguf_get_bool(g, "tokenizer.ggml.add_space_prefix", &b)) v->add_space_prefix = b;
    if (v->bos < 0) v->add_bos = false;
    if (v->eos < 0) v->add_eos = false;

    /* byte fallback: "<0xXX>", else the byte itself as a one-character piece */
    for (int c = 0; c < 256; c++) {
        char buf[8];
        snprintf(buf, sizeof buf, "<0x%02X>", c);
        int32_t id = vocab_find(v, buf, 6);
        if (id < 0) {
            buf[0] = (char)c;
            id = vocab_find(v, buf, 1);
        }
        v->byte_tok[c] = id;
    }

    /* end of generation: EOS, EOT, EOM and the tokens named like a turn end
     * (the reference makes those control tokens when they are not) */
    if (v->eot < 0) {
        for (size_t k = 0; k < sizeof eot_names / sizeof eot_names[0] && v->eot < 0; k++) {
            int32_t id = find_cstr(v, eot_names[k]);
            if (id >= 0) {
                v->eot = id;
                make_control(v, id);
            }
        }
    }
    if (v->eom < 0) {
        int32_t id = find_cstr(v, "<|eom_id|>");
        if (id >= 0) {
            v->eom = id;
            make_control(v, id);
        }
    }
    for (size_t k = 0; k < sizeof eog_names / sizeof eog_names[0]; k++) {
        int32_t id = find_cstr(v, eog_names[k]);
        if (id >= 0) {
            v->flags[id] |= F_EOG;
            make_control(v, id);
        }
    }
    if (v->eos >= 0) v->flags[v->eos] |= F_EOG;
    if (v->eot >= 0) v->flags[v->eot] |= F_EOG;
    if (v->eom >= 0) v->flags[v->eom] |= F_EOG;
    static const char *const fim_eog_keys[] = {
        "tokenizer.ggml.fim_pad_token_id", "tokenizer.ggml.fim_rep_token_id", "tokenizer.ggml.fim_sep_token_id",
    };
    for (size_t k = 0; k < sizeof fim_eog_keys / sizeof fim_eog_keys[0]; k++) {
        int32_t id = -1;
        if (read_special_id(g, fim_eog_keys[k], n, &id)) v->flags[id] |= F_EOG;
    }

    /* fill-in-the-middle tokens named like the reference's list become
     * control tokens; pad, repo and file-separator ones end generation */
    static const char *const fim_names[6][7] = {
        {"<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<\xef\xbd\x9c" "fim\xe2\x96\x81" "begin\xef\xbd\x9c>", "<PRE>",
         "\xe2\x96\x81<PRE>", NULL},
        {"<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<\xef\xbd\x9c" "fim\xe2\x96\x81" "hole\xef\xbd\x9c>", "<SUF>",
         "\xe2\x96\x81<SUF>", NULL},
        {"<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<\xef\xbd\x9c" "fim\xe2\x96\x81" "end\xef\xbd\x9c>", "<MID>",
         "\xe2\x96\x81<MID>", NULL},
        {"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", NULL},
        {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>", NULL},
        {"<|file_sep|>", NULL},
    };
    static const char *const fim_keys[6] = {
        "tokenizer.ggml.fim_pre_token_id", "tokenizer.ggml.fim_suf_token_id", "tokenizer.ggml.fim_mid_token_id",
        "tokenizer.ggml.fim_pad_token_id", "tokenizer.ggml.fim_rep_token_id", "tokenizer.ggml.fim_sep_token_id",
    };
    for (int k = 0; k < 6; k++) {
        int32_t id = -1;
        if (read_special_id(g, fim_keys[k], n, &id)) continue;
        if (k < 3 && read_special_id(g, k == 0 ? "tokenizer.ggml.prefix_token_id"
                                       : k == 1 ? "tokenizer.ggml.suffix_token_id"
                                                : "tokenizer.ggml.middle_token_id", n, &id))
            continue;
        for (int j = 0; fim_names[k][j] && id < 0; j++) id = find_cstr(v, fim_names[k][j]);
        if (id < 0) continue;
        make_control(v, id);
        if (k >= 3) v->flags[id] |= F_EOG;
    }

    if (!v->bpe && !build_pairs(v)) goto oom;

    /* the special tokens that are split out of the text, longest first */
    int32_t ns = 0;
    for (int32_t i = 0; i < n; i++) {
        uint8_t t = v->type[i];
        if (t == NS_TOKEN_CONTROL || t == NS_TOKEN_USER_DEFINED || t == NS_TOKEN_UNKNOWN) ns++;
    }
    if (ns > 0) {
        v->special = malloc((size_t)ns * sizeof *v->special);
        if (!v->special) goto oom;
        for (int32_t i = 0, k = 0; i < n; i++) {
            uint8_t t = v->type[i];
            if (t == NS_TOKEN_CONTROL || t == NS_TOKEN_USER_DEFINED || t == NS_TOKEN_UNKNOWN) v->special[k++] = i;
        }
        v->n_special = ns;
        sort_special(v->special, ns, v);
    }

    /* the reference's per-model attributes: Phi-3 strips the whitespace that
     * follows its special tokens (general.name containing "phi-3"/"phi3") */
    char *name = ns_gguf_get_str(g, "general.name");
    if (name && (contains_ci(name, "phi-3") || contains_ci(name, "phi3"))) {
        for (int32_t k = 0; k < v->n_special; k++) v->flags[v->special[k]] |= F_RSTRIP;
        int32_t id = find_cstr(v, "</s>");
        if (id >= 0) v->flags[id] |= F_RSTRIP;
        static const char *const keep[] = {"<unk>", "<s>", "<|endoftext|>"};
        for (size_t k = 0; k < 3; k++) {
            id = find_cstr(v, keep[k]);
            if (id >= 0) v->flags[id] &= (uint8_t)~F_RSTRIP;
        }
    }
    free(name);
    return v;

oom:
    seterr(err, errlen, "tokenizer: out of memory loading the vocabulary");
    ns_vocab_free(v);
    return NULL;
}

void ns_vocab_free(ns_vocab *v) {
    if (!v) return;
    free(v->pool);
    free(v->off);
    free(v->len);
    free(v->score);
    free(v->type);
    free(v->flags);
    free(v->htab);
    free(v->special);
    free(v->pairs);
    ns_bpe_free(v->bpe);
    free(v);
}

int32_t ns_vocab_size(const ns_vocab *v) { return v ? v->n : 0; }
int32_t ns_vocab_bos(const ns_vocab *v) { return v ? v->bos : -1; }
int32_t ns_vocab_eos(const ns_vocab *v) { return v ? v->eos : -1; }
int32_t ns_vocab_unk(const ns_vocab *v) { return v ? v->unk : -1; }
bool ns_vocab_add_bos(const ns_vocab *v) { return v && v->add_bos; }
bool ns_vocab_add_eos(const ns_vocab *v) { return v && v->add_eos; }

bool ns_vocab_is_eog(const ns_vocab *v, int32_t tok) { return valid_id(v, tok) && (v->flags[tok] & F_EOG); }

int ns_vocab_token_type(const ns_vocab *v, int32_t tok) { return valid_id(v, tok) ? v->type[tok] : -1; }

const char *ns_vocab_token_text(const ns_vocab *v, int32_t tok) {
    return valid_id(v, tok) ? tok_text(v, tok) : NULL;
}

/* --------------------------------------------------------------- tokenize */

typedef ns_tokbuf outbuf;

static inline void emit(outbuf *o, int32_t tok) { ns_tokbuf_push(o, tok); }

typedef struct {
    int prev, next;
    int off;      /* into the escaped text */
    int n;        /* bytes; 0 once merged into its left neighbour */
} symbol;

typedef struct {
    float score;
    int left, right;
    int size;
} bigram;

typedef struct {
    char *text;
    size_t text_cap;
    symbol *sym;
    size_t sym_cap;
    bigram *heap;
    size_t heap_n, heap_cap;
} session;

static bool grow_buf(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return true;
    size_t c = *cap ? *cap : 64;
    while (c < need) c *= 2;
    void *q = realloc(*p, c * elem);
    if (!q) return false;
    *p = q;
    *cap = c;
    return true;
}

/* Heap order: higher score first, then smaller left index. */
static inline bool bg_before(const bigram *a, const bigram *b) {
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

static bool heap_push(session *s, bigram b) {
    if (!grow_buf((void **)&s->heap, &s->heap_cap, s->heap_n + 1, sizeof *s->heap)) return false;
    size_t i = s->heap_n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!bg_before(&b, &s->heap[p])) break;
        s->heap[i] = s->heap[p];
        i = p;
    }
    s->heap[i] = b;
    return true;
}

static bigram heap_pop(session *s) {
    bigram top = s->heap[0];
    bigram last = s->heap[--s->heap_n];
    size_t n = s->heap_n, i = 0;
    for (;;) {
        size_t l = 2 * i + 1;
        if (l >= n) break;
        size_t c = l;
        if (l + 1 < n && bg_before(&s->heap[l + 1], &s->heap[l])) c = l + 1;
        if (!bg_before(&s->heap[c], &last)) break;
        s->heap[i] = s->heap[c];
        i = c;
    }
    if (n > 0) s->heap[i] = last;
    return top;
}

static bool try_bigram(const ns_vocab *v, session *s, int left, int right, int lo, int hi) {
    if (left < lo || right < 0 || right > hi) return true;  /* outside the segment: no token spans it */
    const symbol *l = &s->sym[left], *r = &s->sym[right];
    int32_t id = vocab_find(v, s->text + l->off, (size_t)l->n + (size_t)r->n);
    if (id < 0) return true;
    bigram b = {v->score[id], left, right, l->n + r->n};
    return heap_push(s, b);
}

static inline int utf8_len(unsigned char c) {
    static const int lens[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return lens[c >> 4];
}

/* Tokenizes text[0..len) (not yet escaped), with the dummy prefix when asked. */
static bool spm_fragment(const ns_vocab *v, session *s, const char *raw, size_t len, bool prefix, outbuf *o) {
    /* escape: ' ' -> U+2581 (3 bytes) */
    size_t nsp = prefix ? 1 : 0;
    for (size_t i = 0; i < len; i++) nsp += raw[i] == ' ';
    if (len > (size_t)INT_MAX / 2 || nsp > ((size_t)INT_MAX / 2 - len) / 2) return false;
    size_t tlen = len + (prefix ? 1 : 0) + 2 * nsp;
    if (!grow_buf((void **)&s->text, &s->text_cap, tlen + 1, 1)) return false;
    char *t = s->text;
    size_t j = 0;
    if (prefix) {
        memcpy(t, "\xe2\x96\x81", 3);
        j = 3;
    }
    for (size_t i = 0; i < len; i++) {
        if (raw[i] == ' ') {
            memcpy(t + j, "\xe2\x96\x81", 3);
            j += 3;
        } else {
            t[j++] = raw[i];
        }
    }
    if (j == 0) return true;

    /* split into UTF-8 characters (a lead byte claims its continuation bytes
     * whatever they are, as the reference does) */
    int nsym = 0;
    if (!grow_buf((void **)&s->sym, &s->sym_cap, j, sizeof *s->sym)) return false;
    for (size_t p = 0; p < j;) {
        size_t cl = (size_t)utf8_len((unsigned char)t[p]);
        if (cl > j - p) cl = j - p;
        symbol *sy = &s->sym[nsym];
        sy->off = (int)p;
        sy->n = (int)cl;
        sy->prev = nsym - 1;
        p += cl;
        sy->next = p == j ? -1 : nsym + 1;
        nsym++;
    }

    /* merge, segment by segment (see pair_bits) */
    const unsigned char *ut = (const unsigned char *)t;
    uint32_t cur = 0;
    int cur_ok = wf_char(ut, (size_t)s->sym[0].n, &cur) == s->sym[0].n;
    for (int lo = 0, i = 0; i < nsym; i++) {
        if (i + 1 < nsym) {
            const symbol *nx = &s->sym[i + 1];
            uint32_t nxt = 0;
            int nxt_ok = wf_char(ut + nx->off, (size_t)nx->n, &nxt) == nx->n;
            bool cut = cur_ok && nxt_ok && !pair_known(v, cur, nxt);
            cur = nxt;
            cur_ok = nxt_ok;
            if (!cut) continue;
        }
        int hi = i;
        s->heap_n = 0;
        for (int k = lo + 1; k <= hi; k++)
            if (!try_bigram(v, s, k - 1, k, lo, hi)) return false;
        while (s->heap_n > 0) {
            bigram b = heap_pop(s);
            symbol *l = &s->sym[b.left], *r = &s->sym[b.right];
            if (l->n == 0 || r->n == 0 || l->n + r->n != b.size) continue;  /* stale */
            l->n += r->n;
            r->n = 0;
            l->next = r->next;
            if (r->next >= 0) s->sym[r->next].prev = b.left;
            if (!try_bigram(v, s, l->prev, b.left, lo, hi)) return false;
            if (!try_bigram(v, s, b.left, l->next, lo, hi)) return false;
        }
        lo = i + 1;
    }

    for (int i = 0; i != -1; i = s->sym[i].next) {
        const symbol *sy = &s->sym[i];
        int32_t id = vocab_find(v, t + sy->off, (size_t)sy->n);
        if (id >= 0) {
            emit(o, id);
            continue;
        }
        bool all_bytes = true;
        for (int k = 0; k < sy->n; k++)
            if (v->byte_tok[(unsigned char)t[sy->off + k]] < 0) all_bytes = false;
        if (all_bytes) {
            for (int k = 0; k < sy->n; k++) emit(o, v->byte_tok[(unsigned char)t[sy->off + k]]);
        } else if (v->unk >= 0) {
            emit(o, v->unk);
        }
    }
    return true;
}

typedef struct {
    int32_t tok;   /* -1: raw text */
    size_t off, len;
} fragment;

static const char *find_bytes(const char *hay, size_t hn, const char *nd, size_t nn) {
    if (nn == 0 || nn > hn) return NULL;
    const char *end = hay + (hn - nn) + 1;
    for (const char *p = hay; p < end;) {
        p = memchr(p, (unsigned char)nd[0], (size_t)(end - p));
        if (!p) return NULL;
        if (memcmp(p, nd, nn) == 0) return p;
        p++;
    }
    return NULL;
}

static inline bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

/* Splits the raw fragments around every occurrence of the special tokens,
 * one token at a time, longest first (the reference's partition). */
static bool partition(const ns_vocab *v, const char *text, bool parse_special, fragment **frags, size_t *nfrag,
                      size_t *cap) {
    fragment *nf = NULL;
    size_t nf_cap = 0;
    for (int32_t k = 0; k < v->n_special; k++) {
        int32_t id = v->special[k];
        uint8_t ty = v->type[id];
        if (!parse_special && (ty == NS_TOKEN_CONTROL || ty == NS_TOKEN_UNKNOWN)) continue;
        const char *st = tok_text(v, id);
        size_t sl = v->len[id];

        /* quick reject: the token occurs in no raw fragment */
        bool any = false;
        for (size_t f = 0; f < *nfrag && !any; f++)
            if ((*frags)[f].tok < 0 && find_bytes(text + (*frags)[f].off, (*frags)[f].len, st, sl)) any = true;
        if (!any) continue;

        size_t nn = 0;
        for (size_t f = 0; f < *nfrag; f++) {
            fragment fr = (*frags)[f];
            if (fr.tok >= 0) {
                if (!grow_buf((void **)&nf, &nf_cap, nn + 1, sizeof *nf)) goto oom;
                nf[nn++] = fr;
                continue;
            }
            size_t off = fr.off, len = fr.len;
            for (;;) {
                const char *m = find_bytes(text + off, len, st, sl);
                if (!m) {
                    if (!grow_buf((void **)&nf, &nf_cap, nn + 1, sizeof *nf)) goto oom;
                    nf[nn++] = (fragment){-1, off, len};
                    break;
                }
                size_t mpos = (size_t)(m - text);
                size_t llen = mpos - off;
                if (v->flags[id] & F_LSTRIP)
                    while (llen > 0 && is_space(text[off + llen - 1])) llen--;
                if (!grow_buf((void **)&nf, &nf_cap, nn + 2, sizeof *nf)) goto oom;
                if (llen > 0) nf[nn++] = (fragment){-1, off, llen};
                nf[nn++] = (fragment){id, 0, 0};
                size_t roff = mpos + sl, rlen = off + len - roff;
                if (v->flags[id] & F_RSTRIP)
                    while (rlen > 0 && is_space(text[roff])) {
                        roff++;
                        rlen--;
                    }
                if (rlen == 0) break;
                off = roff;
                len = rlen;
            }
        }
        fragment *tmp = *frags;
        *frags = nf;
        *nfrag = nn;
        size_t tcap = *cap;
        *cap = nf_cap;
        nf = tmp;
        nf_cap = tcap;
    }
    free(nf);
    return true;
oom:
    free(nf);
    return false;
}

int ns_tokenize(const ns_vocab *v, const char *text, size_t len, bool add_bos, bool parse_special, int32_t *out,
                int max) {
    if (!v || (!text && len > 0) || max < 0 || (!out && max > 0)) return -1;
    outbuf o = {out, max, 0};
    if (add_bos && v->bos >= 0) emit(&o, v->bos);
    if (len == 0) return (int)o.count;

    fragment *frags = malloc(sizeof *frags);
    size_t nfrag = 1, cap = 1;
    if (!frags) return -1;
    frags[0] = (fragment){-1, 0, len};

    session s = {0};
    ns_bpe_session bs = {0};
    bool ok = partition(v, text, parse_special, &frags, &nfrag, &cap);
    bool prev_special = true;  /* the dummy prefix goes before the first fragment */
    for (size_t f = 0; ok && f < nfrag; f++) {
        if (frags[f].tok >= 0) {
            emit(&o, frags[f].tok);
            prev_special = true;
        } else if (v->bpe) {
            ok = ns_bpe_tokenize(v, v->bpe, &bs, text + frags[f].off, frags[f].len, &o);
        } else {
            ok = spm_fragment(v, &s, text + frags[f].off, frags[f].len, v->add_space_prefix && prev_special, &o);
            prev_special = false;
        }
        if (o.count > (size_t)INT_MAX) ok = false;
    }
    free(frags);
    free(s.text);
    free(s.sym);
    free(s.heap);
    ns_bpe_session_free(&bs);
    return ok ? (int)o.count : -1;
}

/* ------------------------------------------------------------ detokenize */

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* The bytes of tok into buf when they fit; returns the full length, or -1
 * for an id out of range. */
static int piece_of(const ns_vocab *v, int32_t tok, bool special, char *buf, int buflen) {
    if (!valid_id(v, tok)) return -1;
    const char *t = tok_text(v, tok);
    int n = (int)v->len[tok];
    if (v->bpe) {  /* byte-level BPE: normal (and byte) tokens map back to bytes */
        switch (v->type[tok]) {
        case NS_TOKEN_CONTROL:
        case NS_TOKEN_UNKNOWN:
            if (!special) return 0;
            /* fall through */
        case NS_TOKEN_USER_DEFINED:
            if (n > 0 && n <= buflen) memcpy(buf, t, (size_t)n);
            return n;
        case NS_TOKEN_NORMAL:
        case NS_TOKEN_BYTE:
            return ns_bpe_decode(t, (size_t)n, buf, buflen);
        default:
            return 0;
        }
    }
    switch (v->type[tok]) {
    case NS_TOKEN_CONTROL:
    case NS_TOKEN_UNKNOWN:
        if (!special) return 0;
        /* fall through */
    case NS_TOKEN_USER_DEFINED:
        if (n > 0 && n <= buflen) memcpy(buf, t, (size_t)n);
        return n;
    case NS_TOKEN_BYTE: {
        int hi, lo;
        if (n == 6 && t[0] == '<' && t[1] == '0' && t[2] == 'x' && t[5] == '>' && (hi = hexval(t[3])) >= 0 &&
            (lo = hexval(t[4])) >= 0) {
            if (buflen >= 1) buf[0] = (char)(hi * 16 + lo);
            return 1;
        }
        if (n > 0 && n <= buflen) memcpy(buf, t, (size_t)n);
        return n;
    }
    case NS_TOKEN_NORMAL: {
        int w = 0;
        for (int i = 0; i < n;) {
            if (i + 3 <= n && memcmp(t + i, "\xe2\x96\x81", 3) == 0) {
                if (w < buflen) buf[w] = ' ';
                w++;
                i += 3;
            } else {
                if (w < buflen) buf[w] = t[i];
                w++;
                i++;
            }
        }
        return w;
    }
    default:  /* unused / undefined types print nothing, as in the reference */
        return 0;
    }
}

int ns_token_to_piece(const ns_vocab *v, int32_t tok, bool special, char *buf, int buflen) {
    if (!valid_id(v, tok)) return INT32_MIN;
    if (buflen < 0 || (!buf && buflen > 0)) buflen = 0;
    int need = piece_of(v, tok, special, buf, buflen);
    if (need > buflen) return -need;
    return need;
}

char *ns_detokenize(const ns_vocab *v, const int32_t *toks, int n, bool special) {
    if (!v || n < 0 || (!toks && n > 0)) return NULL;
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        int k = piece_of(v, toks[i], special, NULL, 0);
        if (k > 0) total += (size_t)k;
    }
    char *s = malloc(total + 1);
    if (!s) return NULL;
    size_t w = 0;
    bool strip = v->add_space_prefix;  /* drop the dummy prefix's space */
    for (int i = 0; i < n; i++) {
        int32_t tok = toks[i];
        int k = piece_of(v, tok, special, s + w, (int)(total - w < (size_t)INT_MAX ? total - w : (size_t)INT_MAX));
        if (k < 0) continue;  /* id out of range: nothing */
        if (strip && tok == v->bos) {  /* a leading BOS keeps the rule for what follows */
            w += (size_t)k;
            continue;
        }
        if (strip && k > 0 && s[w] == ' ') {
            memmove(s + w, s + w + 1, (size_t)k - 1);
            k--;
        }
        strip = false;
        w += (size_t)k;
    }
    s[w] = 0;
    return s;
}
