/* Byte-level BPE (tokenizer.ggml.model = "gpt2") as the reference engine
 * (llama.cpp) runs it:
 *
 *  1. the text (a fragment between special tokens) is decoded to code
 *     points the way the reference decodes it (a byte that does not start
 *     a complete sequence becomes U+FFFD; over-long forms are accepted and
 *     re-encoded short) and re-encoded;
 *  2. the pre-tokenizer of tokenizer.ggml.pre cuts it into words
 *     (pretokenize.c);
 *  3. each word's bytes are mapped to the GPT-2 byte alphabet (bytes that
 *     are printable Latin-1 stand for themselves, the others for U+0100
 *     and up, in order);
 *  4. with ignore_merges (llama-bpe, tekken), a word that is a token is
 *     that token;
 *  5. otherwise every character is a symbol and the adjacent pair with
 *     the lowest merge rank (index in tokenizer.ggml.merges; ties: the
 *     leftmost) is merged until no pair has a rank;
 *  6. each symbol is its token; a symbol that is not a token gives the
 *     tokens of its single bytes that exist (none, in practice).
 *
 * Verified against the reference's own output (tests/unit/
 * test_tokenizer_bpe.c has the details):
 *  - shared vectors: "gpt-2" (vocab/ggml-vocab-gpt-2.gguf, 46 vectors, and
 *    the prompts of models/refs/tiny-qwen2-q8_0.jsonl: a qwen2 model whose
 *    GGUF has GPT-2's vocabulary and tokenizer.ggml.pre = "gpt-2") and
 *    "falcon" (vocab/ggml-vocab-falcon.gguf, 46 vectors);
 *  - ids produced by llama.cpp itself for GPT-2's vocabulary under every
 *    other pre-tokenizer name listed in pretokenize.c (71 inputs each,
 *    tests/unit/bpe_ref_vectors.h): these check the splits;
 *  - unit tests only (written from the definitions): ignore_merges, the
 *    BOS defaults per name, the UTF-8 normalization, merge order details.
 *
 * Speed: merges live in one open-addressing hash table keyed by the two
 * strings (8-byte slots; 50k merges load in about 2 ms once the memory is
 * mapped); a word is merged with a binary
 * heap (n log n in its length); pre-tokenizing is linear in the text.
 */
#include "tokenizer_bpe.h"

#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* -------------------------------------------------- GPT-2 byte alphabet */

/* Code point standing for byte b: printable Latin-1 bytes themselves,
 * the 68 others 256, 257, ... in byte order. */
static uint32_t byte_cp(unsigned b) {
    if ((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)) return b;
    uint32_t n = 0;
    for (unsigned c = 0; c < b; c++)
        if (!((c >= 0x21 && c <= 0x7E) || (c >= 0xA1 && c <= 0xAC) || (c >= 0xAE && c <= 0xFF))) n++;
    return 256 + n;
}

typedef struct {
    char enc[256][2];     /* UTF-8 of byte_cp(b) */
    uint8_t enc_len[256];
    int16_t dec[324];     /* code point (< 0x144) -> byte, -1 if none */
} byte_map;

static byte_map g_bytes;  /* filled once (pthread_once) */
static pthread_once_t g_bytes_once = PTHREAD_ONCE_INIT;

static void bytes_init(void) {
    for (int i = 0; i < 324; i++) g_bytes.dec[i] = -1;
    for (unsigned b = 0; b < 256; b++) {
        uint32_t cp = byte_cp(b);
        if (cp < 0x80) {
            g_bytes.enc[b][0] = (char)cp;
            g_bytes.enc_len[b] = 1;
        } else {
            g_bytes.enc[b][0] = (char)(0xC0 | (cp >> 6));
            g_bytes.enc[b][1] = (char)(0x80 | (cp & 0x3F));
            g_bytes.enc_len[b] = 2;
        }
        g_bytes.dec[cp] = (int16_t)b;
    }
}

static const byte_map *bytes(void) {
    pthread_once(&g_bytes_once, bytes_init);
    return &g_bytes;
}

/* ------------------------------------------------------- UTF-8 handling */

#define BAD_CP 0xFFFDu

/* The reference's decoder (unicode_cpt_from_utf8): the lead byte's length,
 * continuation bytes checked, no check of over-long forms or surrogates;
 * anything else is one invalid byte. Returns the bytes consumed. */
static size_t decode_cp(const unsigned char *s, size_t n, uint32_t *cp) {
    unsigned c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (!(c & 0x40)) goto bad;
    if (!(c & 0x20)) {
        if (n < 2 || (s[1] & 0xC0) != 0x80) goto bad;
        *cp = (c & 0x1Fu) << 6 | (s[1] & 0x3Fu);
        return 2;
    }
    if (!(c & 0x10)) {
        if (n < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80) goto bad;
        *cp = (c & 0x0Fu) << 12 | (s[1] & 0x3Fu) << 6 | (s[2] & 0x3Fu);
        return 3;
    }
    if (!(c & 0x08)) {
        if (n < 4 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80) goto bad;
        *cp = (c & 0x07u) << 18 | (s[1] & 0x3Fu) << 12 | (s[2] & 0x3Fu) << 6 | (s[3] & 0x3Fu);
        /* above U+10FFFF the reference fails (its encoder throws); here:
         * the replacement character */
        if (*cp > 0x10FFFF) *cp = BAD_CP;
        return 4;
    }
bad:
    *cp = BAD_CP;
    return 1;
}

static size_t encode_cp(uint32_t cp, char *o) {
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* ------------------------------------------------------------ the merges */

typedef struct {
    uint32_t tag;   /* high bits of the hash */
    int32_t rank;   /* -1: empty slot */
} mslot;

/* The merges: by rank, the two strings back to back in pool; a hash table
 * of 8-byte slots (rank + hash tag) finds a pair's rank. */
struct ns_bpe {
    ns_pretok *pre;
    char *pool;
    uint32_t *m_off;   /* by rank: offset in pool */
    uint16_t *m_len;   /* by rank: both strings */
    uint16_t *m_llen;  /* by rank: the first */
    mslot *tab;
    size_t cap;        /* power of two */
    uint32_t max_len;  /* longest merged string */
    int32_t n_merges;
};

static uint64_t merge_hash(const char *s, size_t n, size_t llen) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    h ^= (uint64_t)llen * 0x9E3779B97F4A7C15ull;
    return h ^ (h >> 31);
}

static inline bool merge_is(const ns_bpe *b, int32_t r, const char *s, size_t n, size_t llen) {
    return b->m_len[r] == n && b->m_llen[r] == llen && memcmp(b->pool + b->m_off[r], s, n) == 0;
}

/* Rank of the pair (s[0..llen), s[llen..n)), or -1. */
static int32_t merge_rank(const ns_bpe *b, const char *s, size_t n, size_t llen) {
    if (n > b->max_len) return -1;
    uint64_t h = merge_hash(s, n, llen);
    uint32_t tag = (uint32_t)(h >> 32);
    size_t mask = b->cap - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        const mslot *e = &b->tab[i];
        if (e->rank < 0) return -1;
        if (e->tag == tag && merge_is(b, e->rank, s, n, llen)) return e->rank;
    }
}

static void seterr(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || errlen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

ns_bpe *ns_bpe_load(const ns_gguf *g, char *err, size_t errlen) {
    const ns_gguf_kv *mkv = ns_gguf_find(g, "tokenizer.ggml.merges");
    if (!mkv) {
        seterr(err, errlen, "tokenizer: tokenizer.ggml.merges is missing (a \"gpt2\" BPE vocabulary needs its merges)");
        return NULL;
    }
    if (mkv->type != NS_GGUF_ARRAY || mkv->arr_type != NS_GGUF_STRING || (mkv->arr_n > 0 && !mkv->arr_str)) {
        seterr(err, errlen, "tokenizer: tokenizer.ggml.merges is not an array of strings");
        return NULL;
    }
    if (mkv->arr_n > (uint64_t)INT32_MAX / 4) {
        seterr(err, errlen, "tokenizer: tokenizer.ggml.merges has %llu entries (too many)",
               (unsigned long long)mkv->arr_n);
        return NULL;
    }
    int32_t nm = (int32_t)mkv->arr_n;

    char *pre = NULL;
    const ns_gguf_kv *pkv = ns_gguf_find(g, "tokenizer.ggml.pre");
    if (pkv) {
        if (pkv->type != NS_GGUF_STRING) {
            seterr(err, errlen, "tokenizer: tokenizer.ggml.pre is not a string");
            return NULL;
        }
        pre = ns_gguf_get_str(g, "tokenizer.ggml.pre");
        if (!pre) {
            seterr(err, errlen, "tokenizer: out of memory");
            return NULL;
        }
        if (!pre[0]) {  /* empty: as absent */
            free(pre);
            pre = NULL;
        }
    }
    if (!pre)
        fprintf(stderr, "nstack: warning: tokenizer.ggml.pre is missing; using the \"default\" BPE pre-tokenizer "
                        "(as the reference engine does; the tokens may be wrong for this model)\n");

    ns_bpe *b = calloc(1, sizeof *b);
    if (!b) {
        free(pre);
        seterr(err, errlen, "tokenizer: out of memory");
        return NULL;
    }
    b->pre = ns_pretok_new(pre, err, errlen);
    free(pre);
    if (!b->pre) {
        ns_bpe_free(b);
        return NULL;
    }
    b->n_merges = nm;

    size_t total = 0;
    for (int32_t i = 0; i < nm; i++) {
        total += (size_t)mkv->arr_str[i].len;
        if (total > (size_t)UINT32_MAX / 2) {
            seterr(err, errlen, "tokenizer: tokenizer.ggml.merges is too large (at merge %d)", (int)i);
            ns_bpe_free(b);
            return NULL;
        }
    }
    b->cap = 16;
    while (b->cap < (size_t)nm * 2) b->cap *= 2;
    size_t nalloc = nm > 0 ? (size_t)nm : 1;
    b->pool = malloc(total + 1);
    b->m_off = malloc(nalloc * sizeof *b->m_off);
    b->m_len = malloc(nalloc * sizeof *b->m_len);
    b->m_llen = malloc(nalloc * sizeof *b->m_llen);
    b->tab = malloc(b->cap * sizeof *b->tab);
    if (!b->pool || !b->m_off || !b->m_len || !b->m_llen || !b->tab) {
        seterr(err, errlen, "tokenizer: out of memory loading the merges");
        ns_bpe_free(b);
        return NULL;
    }
    for (size_t i = 0; i < b->cap; i++) b->tab[i].rank = -1;

    size_t pos = 0, mask = b->cap - 1;
    for (int32_t r = 0; r < nm; r++) {
        const char *s = mkv->arr_str[r].ptr;
        size_t n = (size_t)mkv->arr_str[r].len;
        /* "first second", split at the first space after the first byte */
        const char *sp = n > 1 ? memchr(s + 1, ' ', n - 1) : NULL;
        b->m_len[r] = 0;  /* (a rank no slot points to) */
        if (!sp) continue;  /* the reference files it as ("", ""), which no pair can be */
        size_t llen = (size_t)(sp - s), rlen = n - llen - 1;
        if (llen + rlen == 0) continue;
        if (llen + rlen > UINT16_MAX) continue;  /* longer than any token: never a pair of symbols */
        char *k = b->pool + pos;
        memcpy(k, s, llen);
        memcpy(k + llen, sp + 1, rlen);
        size_t kl = llen + rlen;
        uint64_t h = merge_hash(k, kl, llen);
        uint32_t tag = (uint32_t)(h >> 32);
        size_t i = (size_t)h & mask;
        bool dup = false;
        for (;; i = (i + 1) & mask) {
            mslot *e = &b->tab[i];
            if (e->rank < 0) break;
            if (e->tag == tag && merge_is(b, e->rank, k, kl, llen)) {
                dup = true;  /* the first rank stays, as in the reference */
                break;
            }
        }
        if (dup) continue;
        b->m_off[r] = (uint32_t)pos;
        b->m_len[r] = (uint16_t)kl;
        b->m_llen[r] = (uint16_t)llen;
        b->tab[i] = (mslot){tag, r};
        pos += kl;
        if (kl > b->max_len) b->max_len = (uint32_t)kl;
    }
    return b;
}

void ns_bpe_free(ns_bpe *b) {
    if (!b) return;
    ns_pretok_free(b->pre);
    free(b->pool);
    free(b->m_off);
    free(b->m_len);
    free(b->m_llen);
    free(b->tab);
    free(b);
}

unsigned ns_bpe_flags(const ns_bpe *b) { return b ? ns_pretok_flags(b->pre) : 0; }
const char *ns_bpe_pre_name(const ns_bpe *b) { return b ? ns_pretok_name(b->pre) : ""; }
int32_t ns_bpe_n_merges(const ns_bpe *b) { return b ? b->n_merges : 0; }

/* -------------------------------------------------------------- tokenize */

typedef struct {
    int prev, next;
    uint32_t off, n;  /* into the encoded word; n = 0 once merged away */
} bsym;

typedef struct {
    int32_t rank;
    int left, right;
    uint32_t lsize, rsize;
} bpair;

static bool grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return true;
    size_t c = *cap ? *cap : 64;
    while (c < need) {
        if (c > SIZE_MAX / 2 / elem) return false;
        c *= 2;
    }
    void *q = realloc(*p, c * elem);
    if (!q) return false;
    *p = q;
    *cap = c;
    return true;
}

/* lower rank first, then the leftmost */
static inline bool pair_before(const bpair *a, const bpair *b) {
    return a->rank < b->rank || (a->rank == b->rank && a->left < b->left);
}

static bool heap_push(ns_bpe_session *s, bpair p) {
    if (!grow(&s->heap, &s->heap_cap, s->heap_n + 1, sizeof(bpair))) return false;
    bpair *h = s->heap;
    size_t i = s->heap_n++;
    while (i > 0) {
        size_t up = (i - 1) / 2;
        if (!pair_before(&p, &h[up])) break;
        h[i] = h[up];
        i = up;
    }
    h[i] = p;
    return true;
}

static bpair heap_pop(ns_bpe_session *s) {
    bpair *h = s->heap;
    bpair top = h[0], last = h[--s->heap_n];
    size_t n = s->heap_n, i = 0;
    for (;;) {
        size_t l = 2 * i + 1;
        if (l >= n) break;
        size_t c = l;
        if (l + 1 < n && pair_before(&h[l + 1], &h[l])) c = l + 1;
        if (!pair_before(&h[c], &last)) break;
        h[i] = h[c];
        i = c;
    }
    if (n > 0) h[i] = last;
    return top;
}

static bool try_pair(const ns_bpe *b, ns_bpe_session *s, int left, int right) {
    if (left < 0 || right < 0) return true;
    const bsym *sym = s->sym;
    const bsym *l = &sym[left], *r = &sym[right];
    int32_t rank = merge_rank(b, s->word + l->off, (size_t)l->n + r->n, l->n);
    if (rank < 0) return true;
    return heap_push(s, (bpair){rank, left, right, l->n, r->n});
}

/* One word (raw bytes, already normalized). */
static bool bpe_word(const ns_vocab *v, const ns_bpe *b, ns_bpe_session *s, const unsigned char *w, size_t n,
                     ns_tokbuf *o) {
    if (n == 0) return true;
    if (n > (size_t)INT_MAX / 4) return false;
    const byte_map *bm = bytes();
    if (!grow((void **)&s->word, &s->word_cap, 2 * n, 1)) return false;
    size_t wl = 0;
    for (size_t i = 0; i < n; i++) {
        memcpy(s->word + wl, bm->enc[w[i]], bm->enc_len[w[i]]);
        wl += bm->enc_len[w[i]];
    }
    if (ns_pretok_flags(b->pre) & NS_PRETOK_IGNORE_MERGES) {
        int32_t id = ns_vocab_lookup(v, s->word, wl);
        if (id >= 0) {
            ns_tokbuf_push(o, id);
            return true;
        }
    }

    /* one symbol per byte (one character of the alphabet) */
    if (!grow(&s->sym, &s->sym_cap, n, sizeof(bsym))) return false;
    bsym *sym = s->sym;
    uint32_t off = 0;
    for (size_t i = 0; i < n; i++) {
        sym[i] = (bsym){(int)i - 1, i + 1 < n ? (int)i + 1 : -1, off, bm->enc_len[w[i]]};
        off += bm->enc_len[w[i]];
    }
    s->heap_n = 0;
    for (size_t i = 1; i < n; i++)
        if (!try_pair(b, s, (int)i - 1, (int)i)) return false;
    while (s->heap_n > 0) {
        bpair p = heap_pop(s);
        sym = s->sym;
        bsym *l = &sym[p.left], *r = &sym[p.right];
        if (l->n == 0 || r->n == 0 || l->n != p.lsize || r->n != p.rsize) continue;  /* outdated */
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0) sym[r->next].prev = p.left;
        if (!try_pair(b, s, l->prev, p.left)) return false;
        if (!try_pair(b, s, p.left, sym[p.left].next)) return false;
    }

    sym = s->sym;
    for (int i = 0; i != -1; i = sym[i].next) {
        const char *t = s->word + sym[i].off;
        int32_t id = ns_vocab_lookup(v, t, sym[i].n);
        if (id >= 0) {
            ns_tokbuf_push(o, id);
            continue;
        }
        for (uint32_t k = 0; k < sym[i].n; k++) {  /* the single bytes that are tokens */
            int32_t bid = ns_vocab_lookup(v, t + k, 1);
            if (bid >= 0) ns_tokbuf_push(o, bid);
        }
    }
    return true;
}

bool ns_bpe_tokenize(const ns_vocab *v, const ns_bpe *b, ns_bpe_session *s, const char *text, size_t len,
                     ns_tokbuf *o) {
    if (len == 0) return true;
    if (len > SIZE_MAX / 4) return false;
    /* normalize: at most 3 bytes out per byte in (a bad byte -> U+FFFD) */
    if (!grow((void **)&s->norm, &s->norm_cap, 3 * len, 1)) return false;
    const unsigned char *in = (const unsigned char *)text;
    size_t nl = 0;
    bool surrogates = false;
    for (size_t i = 0; i < len;) {
        if (in[i] < 0x80) {  /* fast path */
            s->norm[nl++] = (char)in[i++];
            continue;
        }
        uint32_t cp;
        i += decode_cp(in + i, len - i, &cp);
        if (cp >= 0xD800 && cp <= 0xDFFF) surrogates = true;
        nl += encode_cp(cp, s->norm + nl);
    }
    /* the regexes see a surrogate as U+E000 (a code point of the same
     * class for every pattern: neither letter, number, mark, punctuation,
     * symbol nor space), which is also 3 bytes long */
    const char *subj = s->norm;
    if (surrogates) {
        if (!grow((void **)&s->subj, &s->subj_cap, nl, 1)) return false;
        memcpy(s->subj, s->norm, nl);
        for (size_t i = 0; i + 2 < nl; i++) {
            unsigned char c = (unsigned char)s->subj[i], d = (unsigned char)s->subj[i + 1];
            if (c == 0xED && d >= 0xA0) {
                memcpy(s->subj + i, "\xEE\x80\x80", 3);
                i += 2;
            }
        }
        subj = s->subj;
    }

    const ns_span *sp;
    size_t nsp;
    if (!ns_pretok_split(b->pre, &s->ps, subj, nl, &sp, &nsp)) return false;
    for (size_t k = 0; k < nsp; k++)
        if (!bpe_word(v, b, s, (const unsigned char *)s->norm + sp[k].off, sp[k].len, o)) return false;
    return true;
}

void ns_bpe_session_free(ns_bpe_session *s) {
    if (!s) return;
    free(s->norm);
    free(s->subj);
    free(s->word);
    free(s->sym);
    free(s->heap);
    ns_pretok_scratch_free(&s->ps);
    *s = (ns_bpe_session){0};
}

/* ---------------------------------------------------------------- decode */

static inline void put(char *buf, int buflen, int *w, const char *src, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (*w < buflen) buf[*w] = src[i];
        (*w)++;
    }
}

int ns_bpe_decode(const char *t, size_t n, char *buf, int buflen) {
    const byte_map *bm = bytes();
    const unsigned char *u = (const unsigned char *)t;
    int w = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t k = decode_cp(u + i, n - i, &cp);
        i += k;
        if (cp < 324 && bm->dec[cp] >= 0) {
            char c = (char)bm->dec[cp];
            put(buf, buflen, &w, &c, 1);
            continue;
        }
        char enc[4], hex[9];
        size_t el = encode_cp(cp, enc);
        for (size_t j = 0; j < el; j++) snprintf(hex + 2 * j, 3, "%02x", (unsigned char)enc[j]);
        put(buf, buflen, &w, "[UNK_BYTE_0x", 12);
        put(buf, buflen, &w, hex, 2 * el);
        put(buf, buflen, &w, t, n);
        put(buf, buflen, &w, "]", 1);
        if (w > INT_MAX / 2) break;
    }
    return w;
}
