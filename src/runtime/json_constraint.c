/* JSON mode: a byte-level pushdown automaton over RFC 8259 (see the header).
 *
 * The whole parser state fits in a small struct that is copied to try a
 * token: a bit stack of open containers (1 = object) and a mode with a few
 * bytes of detail. Masking runs every token's bytes on a copy; two shortcuts
 * keep that cheap on large vocabularies: a 256-entry table of the bytes the
 * current state accepts first (most tokens fail on their first byte outside
 * strings), and, inside a string, a per-token flag for text that stays plain
 * string content whatever comes before it. */
#include "runtime/json_constraint.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 64
#define MAX_WS_RUN 16

enum mode {
    M_VALUE,       /* a value must come (after ':', ',' in an array, or at the start) */
    M_ARRAY_FIRST, /* after '[': a value or ']' */
    M_OBJ_FIRST,   /* after '{': a key or '}' */
    M_OBJ_KEY,     /* after ',' in an object: a key */
    M_COLON,       /* after a key */
    M_AFTER,       /* after a value inside a container: ',' or the closing bracket */
    M_STR,         /* inside a string, nothing pending */
    M_STR_ESC,     /* after a backslash */
    M_STR_HEX,     /* inside \uXXXX: aux digits read, val so far */
    M_STR_LOW_BS,  /* after a high surrogate: '\' must follow */
    M_STR_LOW_U,   /* after a high surrogate and '\': 'u' must follow */
    M_STR_UTF8,    /* inside a multi-byte character: aux continuation bytes left */
    M_LIT,         /* inside true/false/null: lit, aux bytes matched */
    M_NUM_MINUS,   /* after '-' */
    M_NUM_ZERO,    /* a leading 0 */
    M_NUM_INT,     /* integer digits */
    M_NUM_DOT,     /* after '.' */
    M_NUM_FRAC,    /* fraction digits */
    M_NUM_E,       /* after 'e' or 'E' */
    M_NUM_ESIGN,   /* after the exponent's sign */
    M_NUM_EXP,     /* exponent digits */
    M_DONE,        /* the value is complete */
    M_FAILED,      /* a token the mask did not allow was accepted */
};

typedef struct {
    uint64_t stack; /* bit i: the container at level i is an object */
    uint16_t val;   /* \u digits so far */
    uint8_t depth;
    uint8_t mode;
    uint8_t aux;
    uint8_t lit;      /* M_LIT: index into literals */
    uint8_t lo, hi;   /* M_STR_UTF8: the range the next byte must fall in */
    uint8_t ws_run;   /* whitespace bytes in a row */
    uint8_t in_key;   /* the string being read is an object key */
    uint8_t low_half; /* M_STR_HEX: reading the low half of a surrogate pair */
} jstate;

static const char *const literals[] = {"true", "false", "null"};

/* Tokens of two bytes or more, ordered by their first two bytes, so the
 * mask settles whole runs of them from two table lookups. */
typedef struct {
    uint32_t *ids;
    uint32_t *pair_start; /* n_pairs + 1: where each (b0, b1) run begins in ids */
    uint8_t *pair_b1;
    uint32_t b0_pair[257]; /* the first pair of each first byte */
} token_runs;

struct ns_json_constraint {
    const ns_vocab *vocab;
    int32_t n_vocab;
    bool require_object;
    jstate st;
    /* every token's text, one blob, with offsets (n_vocab + 1 entries) */
    char *bytes;
    uint32_t *offset;
    uint8_t *flags;
    int32_t *singles; /* the one-byte tokens */
    int n_singles;
    int32_t *others;  /* EOG and textless tokens */
    int n_others;
    token_runs all;       /* every token of two bytes or more */
    token_runs non_plain; /* those not always fine inside a string */
    /* per mask call: the state after each first byte, whether it is
     * allowed, and the second-byte table rows filled so far */
    jstate after1[256];
    bool ok1[256];
    bool row_done[256];
    uint8_t ok2[256][256];
};

enum { TOK_EOG = 1, TOK_PLAIN_STRING = 2, TOK_EMPTY = 4 };

static bool is_ws(uint8_t b) { return b == ' ' || b == '\t' || b == '\n' || b == '\r'; }
static bool is_digit(uint8_t b) { return b >= '0' && b <= '9'; }
static int hex_value(uint8_t b) {
    if (b >= '0' && b <= '9') return b - '0';
    if (b >= 'a' && b <= 'f') return b - 'a' + 10;
    if (b >= 'A' && b <= 'F') return b - 'A' + 10;
    return -1;
}

static bool top_is_object(const jstate *s) { return (s->stack >> (s->depth - 1)) & 1u; }

static void value_done(jstate *s) { s->mode = s->depth == 0 ? M_DONE : M_AFTER; }

static bool push(jstate *s, bool object) {
    if (s->depth >= MAX_DEPTH) return false;
    uint64_t bit = (uint64_t)1 << s->depth;
    s->stack = object ? (s->stack | bit) : (s->stack & ~bit);
    s->depth++;
    s->mode = object ? M_OBJ_FIRST : M_ARRAY_FIRST;
    return true;
}

static bool pop(jstate *s, bool object) {
    if (s->depth == 0 || top_is_object(s) != object) return false;
    s->depth--;
    value_done(s);
    return true;
}

/* Whitespace where the grammar allows it, capped so a model cannot loop. */
static bool take_ws(jstate *s) {
    if (s->ws_run >= MAX_WS_RUN) return false;
    s->ws_run++;
    return true;
}

static bool begin_value(jstate *s, uint8_t b, bool top_level) {
    if (top_level && b != '{') return false; /* require_object */
    switch (b) {
    case '{': return push(s, true);
    case '[': return push(s, false);
    case '"': s->mode = M_STR; s->in_key = 0; return true;
    case '-': s->mode = M_NUM_MINUS; return true;
    case '0': s->mode = M_NUM_ZERO; return true;
    case 't': s->mode = M_LIT; s->lit = 0; s->aux = 1; return true;
    case 'f': s->mode = M_LIT; s->lit = 1; s->aux = 1; return true;
    case 'n': s->mode = M_LIT; s->lit = 2; s->aux = 1; return true;
    default:
        if (b >= '1' && b <= '9') { s->mode = M_NUM_INT; return true; }
        return false;
    }
}

/* The byte after a number that is not part of it: the number ends there. */
static bool end_number(jstate *s, uint8_t b);

static bool string_byte(jstate *s, uint8_t b) {
    if (b == '"') {
        if (s->in_key) s->mode = M_COLON;
        else value_done(s);
        return true;
    }
    if (b == '\\') { s->mode = M_STR_ESC; return true; }
    if (b < 0x20) return false;
    if (b < 0x80) return true;
    /* UTF-8 lead bytes with the range of their first continuation byte
     * (no overlong forms, no surrogates, nothing above U+10FFFF) */
    s->lo = 0x80;
    s->hi = 0xBF;
    if (b >= 0xC2 && b <= 0xDF) s->aux = 1;
    else if (b == 0xE0) { s->aux = 2; s->lo = 0xA0; }
    else if (b == 0xED) { s->aux = 2; s->hi = 0x9F; }
    else if (b >= 0xE1 && b <= 0xEF) s->aux = 2;
    else if (b == 0xF0) { s->aux = 3; s->lo = 0x90; }
    else if (b >= 0xF1 && b <= 0xF3) s->aux = 3;
    else if (b == 0xF4) { s->aux = 3; s->hi = 0x8F; }
    else return false;
    s->mode = M_STR_UTF8;
    return true;
}

/* One \u hex digit. Surrogates must pair (high then low), as JSON parsers
 * such as cJSON require. */
static bool hex_byte(jstate *s, uint8_t b) {
    int h = hex_value(b);
    if (h < 0) return false;
    s->val = (uint16_t)((s->val << 4) | (unsigned)h);
    s->aux++;
    if (s->aux == 2) {
        /* the first two digits decide the surrogate class */
        bool is_low = s->val >= 0xDC && s->val <= 0xDF;
        if (s->low_half ? !is_low : is_low) return false;
    }
    if (s->aux < 4) return true;
    bool high = s->val >= 0xD800 && s->val <= 0xDBFF;
    if (!s->low_half && high) {
        s->mode = M_STR_LOW_BS;
    } else {
        s->mode = M_STR;
    }
    s->low_half = 0;
    return true;
}

static bool step(jstate *s, uint8_t b) {
    switch (s->mode) {
    case M_VALUE:
        if (is_ws(b)) return take_ws(s);
        s->ws_run = 0;
        return begin_value(s, b, false);
    case M_ARRAY_FIRST:
        if (is_ws(b)) return take_ws(s);
        s->ws_run = 0;
        if (b == ']') return pop(s, false);
        return begin_value(s, b, false);
    case M_OBJ_FIRST:
        if (is_ws(b)) return take_ws(s);
        s->ws_run = 0;
        if (b == '}') return pop(s, true);
        if (b == '"') { s->mode = M_STR; s->in_key = 1; return true; }
        return false;
    case M_OBJ_KEY:
        if (is_ws(b)) return take_ws(s);
        s->ws_run = 0;
        if (b == '"') { s->mode = M_STR; s->in_key = 1; return true; }
        return false;
    case M_COLON:
        if (is_ws(b)) return take_ws(s);
        s->ws_run = 0;
        if (b == ':') { s->mode = M_VALUE; return true; }
        return false;
    case M_AFTER:
        if (is_ws(b)) return take_ws(s);
        s->ws_run = 0;
        if (b == ',') { s->mode = top_is_object(s) ? M_OBJ_KEY : M_VALUE; return true; }
        if (b == '}') return pop(s, true);
        if (b == ']') return pop(s, false);
        return false;
    case M_STR:
        return string_byte(s, b);
    case M_STR_ESC:
        switch (b) {
        case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
            s->mode = M_STR;
            return true;
        case 'u':
            s->mode = M_STR_HEX;
            s->aux = 0;
            s->val = 0;
            s->low_half = 0;
            return true;
        default:
            return false;
        }
    case M_STR_HEX:
        return hex_byte(s, b);
    case M_STR_LOW_BS:
        if (b != '\\') return false;
        s->mode = M_STR_LOW_U;
        return true;
    case M_STR_LOW_U:
        if (b != 'u') return false;
        s->mode = M_STR_HEX;
        s->aux = 0;
        s->val = 0;
        s->low_half = 1;
        return true;
    case M_STR_UTF8:
        if (b < s->lo || b > s->hi) return false;
        s->lo = 0x80;
        s->hi = 0xBF;
        if (--s->aux == 0) s->mode = M_STR;
        return true;
    case M_LIT: {
        const char *lit = literals[s->lit];
        if (b != (uint8_t)lit[s->aux]) return false;
        if (lit[++s->aux] == '\0') value_done(s);
        return true;
    }
    case M_NUM_MINUS:
        if (b == '0') { s->mode = M_NUM_ZERO; return true; }
        if (is_digit(b)) { s->mode = M_NUM_INT; return true; }
        return false;
    case M_NUM_ZERO:
        if (b == '.') { s->mode = M_NUM_DOT; return true; }
        if (b == 'e' || b == 'E') { s->mode = M_NUM_E; return true; }
        return end_number(s, b);
    case M_NUM_INT:
        if (is_digit(b)) return true;
        if (b == '.') { s->mode = M_NUM_DOT; return true; }
        if (b == 'e' || b == 'E') { s->mode = M_NUM_E; return true; }
        return end_number(s, b);
    case M_NUM_DOT:
        if (is_digit(b)) { s->mode = M_NUM_FRAC; return true; }
        return false;
    case M_NUM_FRAC:
        if (is_digit(b)) return true;
        if (b == 'e' || b == 'E') { s->mode = M_NUM_E; return true; }
        return end_number(s, b);
    case M_NUM_E:
        if (b == '+' || b == '-') { s->mode = M_NUM_ESIGN; return true; }
        if (is_digit(b)) { s->mode = M_NUM_EXP; return true; }
        return false;
    case M_NUM_ESIGN:
        if (is_digit(b)) { s->mode = M_NUM_EXP; return true; }
        return false;
    case M_NUM_EXP:
        if (is_digit(b)) return true;
        return end_number(s, b);
    default: /* M_DONE, M_FAILED: nothing may follow */
        return false;
    }
}

static bool end_number(jstate *s, uint8_t b) {
    /* A top-level number is complete already: nothing may follow it. */
    if (s->depth == 0) return false;
    s->mode = M_AFTER;
    return step(s, b);
}

static bool number_can_end(uint8_t mode) {
    return mode == M_NUM_ZERO || mode == M_NUM_INT || mode == M_NUM_FRAC || mode == M_NUM_EXP;
}

static bool state_complete(const jstate *s) {
    return s->mode == M_DONE || (s->depth == 0 && number_can_end(s->mode));
}

/* The first byte of the document goes through here so require_object holds. */
static bool step_top(jstate *s, uint8_t b, bool require_object) {
    if (s->mode == M_VALUE && s->depth == 0 && require_object && !is_ws(b)) {
        s->ws_run = 0;
        return begin_value(s, b, true);
    }
    return step(s, b);
}

static bool run_bytes(jstate *s, const char *p, uint32_t n, bool require_object) {
    for (uint32_t i = 0; i < n; i++)
        if (!step_top(s, (uint8_t)p[i], require_object)) return false;
    return true;
}

/* The token's text stays string content from a plain M_STR state, whatever
 * the surrounding document: then it is allowed wherever M_STR is. */
static bool plain_string_piece(const char *p, uint32_t n) {
    jstate s = {0};
    s.mode = M_STR;
    s.depth = 1;
    for (uint32_t i = 0; i < n; i++) {
        if (!step(&s, (uint8_t)p[i])) return false;
        if (s.mode < M_STR || s.mode > M_STR_UTF8) return false;
    }
    return s.mode == M_STR;
}

static void runs_free(token_runs *r) {
    free(r->ids);
    free(r->pair_start);
    free(r->pair_b1);
}

static unsigned pair_key(const ns_json_constraint *c, int32_t t) {
    const uint8_t *p = (const uint8_t *)c->bytes + c->offset[t];
    return (unsigned)p[0] << 8 | p[1];
}

/* Counting sort by the first two bytes of the tokens that have two or more
 * (and, when plain_too is false, are not TOK_PLAIN_STRING). */
static bool runs_build(ns_json_constraint *c, token_runs *r, bool plain_too) {
    uint32_t *count = calloc(65536 + 1, sizeof *count);
    if (!count) return false;
    uint32_t n = 0;
    for (int32_t t = 0; t < c->n_vocab; t++) {
        if ((c->flags[t] & (TOK_EOG | TOK_EMPTY)) || c->offset[t + 1] - c->offset[t] < 2) continue;
        if (!plain_too && (c->flags[t] & TOK_PLAIN_STRING)) continue;
        count[pair_key(c, t) + 1]++;
        n++;
    }
    uint32_t n_pairs = 0;
    for (unsigned k = 1; k <= 65536; k++) {
        n_pairs += count[k] != 0;
        count[k] += count[k - 1];
    }
    r->ids = malloc(sizeof *r->ids * (n ? n : 1));
    r->pair_start = malloc(sizeof *r->pair_start * (n_pairs + 1));
    r->pair_b1 = malloc(n_pairs ? n_pairs : 1);
    if (!r->ids || !r->pair_start || !r->pair_b1) {
        free(count);
        return false;
    }
    /* the pairs in key order, then the ids into place */
    uint32_t p = 0;
    for (unsigned b0 = 0; b0 < 256; b0++) {
        r->b0_pair[b0] = p;
        for (unsigned b1 = 0; b1 < 256; b1++) {
            unsigned k = b0 << 8 | b1;
            if (count[k + 1] == count[k]) continue;
            r->pair_start[p] = count[k];
            r->pair_b1[p] = (uint8_t)b1;
            p++;
        }
    }
    r->b0_pair[256] = p;
    r->pair_start[p] = n;
    for (int32_t t = 0; t < c->n_vocab; t++) {
        if ((c->flags[t] & (TOK_EOG | TOK_EMPTY)) || c->offset[t + 1] - c->offset[t] < 2) continue;
        if (!plain_too && (c->flags[t] & TOK_PLAIN_STRING)) continue;
        r->ids[count[pair_key(c, t)]++] = (uint32_t)t;
    }
    free(count);
    return true;
}

/* Reads every token's text once. */
static bool read_pieces(ns_json_constraint *c) {
    const ns_vocab *v = c->vocab;
    size_t cap = (size_t)c->n_vocab * 8 + 64, len = 0;
    c->offset = malloc(sizeof *c->offset * ((size_t)c->n_vocab + 1));
    c->flags = calloc((size_t)c->n_vocab + 1, 1);
    c->singles = malloc(sizeof *c->singles * ((size_t)c->n_vocab + 1));
    c->others = malloc(sizeof *c->others * ((size_t)c->n_vocab + 1));
    c->bytes = malloc(cap);
    if (!c->offset || !c->flags || !c->singles || !c->others || !c->bytes) return false;
    char piece[256];
    for (int32_t t = 0; t < c->n_vocab; t++) {
        c->offset[t] = (uint32_t)len;
        /* control tokens give no text (special = false): never allowed */
        int n = ns_token_to_piece(v, t, false, piece, (int)sizeof piece);
        char *big = NULL;
        if (n < 0 && n != INT32_MIN) {
            big = malloc((size_t)-n);
            if (!big) return false;
            n = ns_token_to_piece(v, t, false, big, -n);
        }
        if (ns_vocab_is_eog(v, t) || n <= 0) {
            free(big);
            c->flags[t] |= ns_vocab_is_eog(v, t) ? TOK_EOG : TOK_EMPTY;
            c->others[c->n_others++] = t;
            continue;
        }
        if (len + (size_t)n > cap) {
            while (len + (size_t)n > cap) cap *= 2;
            char *nb = realloc(c->bytes, cap);
            if (!nb) {
                free(big);
                return false;
            }
            c->bytes = nb;
        }
        memcpy(c->bytes + len, big ? big : piece, (size_t)n);
        free(big);
        if (plain_string_piece(c->bytes + len, (uint32_t)n)) c->flags[t] |= TOK_PLAIN_STRING;
        if (n == 1) c->singles[c->n_singles++] = t;
        len += (size_t)n;
    }
    c->offset[c->n_vocab] = (uint32_t)len;
    return true;
}

ns_json_constraint *ns_json_constraint_new(const ns_vocab *v, bool require_object) {
    if (!v) return NULL;
    ns_json_constraint *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->vocab = v;
    c->n_vocab = ns_vocab_size(v);
    c->require_object = require_object;
    c->st.mode = M_VALUE;
    if (!read_pieces(c) || !runs_build(c, &c->all, true) || !runs_build(c, &c->non_plain, false)) {
        ns_json_constraint_free(c);
        return NULL;
    }
    return c;
}

void ns_json_constraint_free(ns_json_constraint *c) {
    if (!c) return;
    free(c->bytes);
    free(c->offset);
    free(c->flags);
    free(c->singles);
    free(c->others);
    runs_free(&c->all);
    runs_free(&c->non_plain);
    free(c);
}

/* The two-byte filter's row for first byte b0: which second bytes may follow. */
static const uint8_t *second_row(ns_json_constraint *c, uint8_t b0) {
    if (!c->row_done[b0]) {
        for (int b = 0; b < 256; b++) {
            jstate s = c->after1[b0];
            c->ok2[b0][b] = step_top(&s, (uint8_t)b, c->require_object);
        }
        c->row_done[b0] = true;
    }
    return c->ok2[b0];
}

static void mask_range(const uint32_t *ids, uint32_t from, uint32_t to, float *logits) {
    for (uint32_t i = from; i < to; i++) logits[ids[i]] = -INFINITY;
}

/* Masks the tokens of r that cannot come. With use_rows, a (first byte,
 * second byte) pair the tables refuse settles its whole run; otherwise (in a
 * plain string, where nearly every pair passes) each token is stepped. */
static void mask_runs(ns_json_constraint *c, const token_runs *r, bool use_rows, float *logits) {
    for (unsigned b0 = 0; b0 < 256; b0++) {
        uint32_t p0 = r->b0_pair[b0], p1 = r->b0_pair[b0 + 1];
        if (p0 == p1) continue;
        if (!c->ok1[b0]) {
            mask_range(r->ids, r->pair_start[p0], r->pair_start[p1], logits);
            continue;
        }
        const uint8_t *row = use_rows ? second_row(c, (uint8_t)b0) : NULL;
        for (uint32_t p = p0; p < p1; p++) {
            if (row && !row[r->pair_b1[p]]) {
                mask_range(r->ids, r->pair_start[p], r->pair_start[p + 1], logits);
                continue;
            }
            for (uint32_t i = r->pair_start[p]; i < r->pair_start[p + 1]; i++) {
                uint32_t t = r->ids[i], off = c->offset[t], len = c->offset[t + 1] - off;
                jstate s = c->after1[b0];
                if (!run_bytes(&s, c->bytes + off + 1, len - 1, c->require_object)) logits[t] = -INFINITY;
            }
        }
    }
}

void ns_json_constraint_mask(ns_json_constraint *c, float *logits, int n_vocab) {
    const jstate cur = c->st;
    for (int b = 0; b < 256; b++) {
        c->after1[b] = cur;
        c->ok1[b] = step_top(&c->after1[b], (uint8_t)b, c->require_object);
        c->row_done[b] = false;
    }
    if (n_vocab < c->n_vocab) {
        /* a shorter logits row than the vocabulary: work on a full copy */
        float *full = calloc((size_t)c->n_vocab, sizeof *full);
        if (full) {
            memcpy(full, logits, sizeof *logits * (size_t)(n_vocab > 0 ? n_vocab : 0));
            ns_json_constraint_mask(c, full, c->n_vocab);
            memcpy(logits, full, sizeof *logits * (size_t)(n_vocab > 0 ? n_vocab : 0));
            free(full);
        } else {
            for (int t = 0; t < n_vocab; t++) logits[t] = -INFINITY;
        }
        return;
    }
    /* after a token the mask did not allow, only ending is left */
    const bool may_end = cur.mode == M_FAILED || state_complete(&cur);
    for (int i = 0; i < c->n_others; i++)
        if (!(may_end && (c->flags[c->others[i]] & TOK_EOG))) logits[c->others[i]] = -INFINITY;
    for (int i = 0; i < c->n_singles; i++)
        if (!c->ok1[(uint8_t)c->bytes[c->offset[c->singles[i]]]]) logits[c->singles[i]] = -INFINITY;
    /* inside a plain string the plain tokens all stay; the rest are checked */
    if (cur.mode == M_STR) mask_runs(c, &c->non_plain, false, logits);
    else mask_runs(c, &c->all, true, logits);
    /* ids the vocabulary does not have can never come */
    for (int t = c->n_vocab; t < n_vocab; t++) logits[t] = -INFINITY;
}

void ns_json_constraint_accept(ns_json_constraint *c, int32_t tok) {
    if (tok < 0 || tok >= c->n_vocab || c->st.mode == M_FAILED) return;
    if (c->flags[tok] & TOK_EOG) return;
    uint32_t off = c->offset[tok], len = c->offset[tok + 1] - off;
    if (!run_bytes(&c->st, c->bytes + off, len, c->require_object)) c->st.mode = M_FAILED;
}

bool ns_json_constraint_complete(const ns_json_constraint *c) {
    return c->st.mode != M_FAILED && state_complete(&c->st);
}
