/* TOML 1.0 reader (toml.h): a recursive-descent parser over a cursor that
 * builds the tree as it goes.
 *
 * Which tables may be reopened is the subtle part of TOML, so every table
 * remembers how it came to be (its flags):
 *   - implicit (no flag): created on the way to a deeper [a.b.c] header; a
 *     later [a] or [a.b] may still define it, once;
 *   - T_HEADER: defined by a [header] or an element of [[header]]; defining
 *     it again is an error, and dotted keys from elsewhere cannot add to it;
 *   - T_DOTTED: created by a dotted key (a.b = 1); more dotted keys in the
 *     same table may add to it, and headers may add sub-tables under it,
 *     but no header may define it;
 *   - T_INLINE: an inline table, closed once its '}' is read.
 * Arrays made by [[...]] carry A_OF_TABLES: later [[...]] append to them and
 * headers walk into their last element; a static array (a = [...]) allows
 * neither. */
#include "util/toml.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    T_HEADER = 1,
    T_DOTTED = 2,
    T_INLINE = 4,
    A_OF_TABLES = 8,
};

typedef struct {
    char *key; /* NUL-terminated copy; klen counts NULs from "\u0000" too */
    size_t klen;
    uint32_t hash;
    ns_toml *val;
} entry;

struct ns_toml {
    ns_toml_type type;
    int line;
    int depth; /* the root is 0; checked against NS_TOML_MAX_DEPTH on creation */
    int flags;
    union {
        struct {
            char *s;
            size_t len;
        } str;
        int64_t i;
        double f;
        bool b;
        struct {
            ns_toml **items;
            int n, cap;
        } arr;
        struct {
            entry *ents; /* in file order */
            int n, cap;
            int32_t *slots; /* open addressing: index into ents, or -1 */
            uint32_t nslots; /* 0 or a power of two, kept over twice n */
        } tab;
    } u;
};

typedef struct {
    char *s;
    size_t len;
} key;

/* A key as written: one or more parts joined by dots. */
typedef struct {
    key *k;
    int n, cap;
    int line;
} keypath;

typedef struct {
    const char *p, *end;
    int line;
    const char *name;
    char *err;
    size_t errlen;
    ns_toml *root;
    keypath kp; /* reused for every top-level key and header */
    char table_path[160]; /* the last header's key, to name keys in messages */
} parser;

/* A growing byte string (string values and keys). */
typedef struct {
    char *p;
    size_t n, cap;
} buf;

__attribute__((format(printf, 3, 4))) static int fail_line(parser *ps, int line, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (ps->errlen) snprintf(ps->err, ps->errlen, "%s:%d: %s", ps->name, line, msg);
    return -1;
}
#define fail(ps, ...) fail_line((ps), (ps)->line, __VA_ARGS__)

/* ---- the cursor ---- */

static int at(const parser *ps, size_t off) {
    return (size_t)(ps->end - ps->p) > off ? (unsigned char)ps->p[off] : -1;
}

static bool at_newline(const parser *ps) {
    return at(ps, 0) == '\n' || (at(ps, 0) == '\r' && at(ps, 1) == '\n');
}

static bool eat_newline(parser *ps) {
    if (at(ps, 0) == '\n') ps->p++;
    else if (at(ps, 0) == '\r' && at(ps, 1) == '\n') ps->p += 2;
    else return false;
    ps->line++;
    return true;
}

static void skip_ws(parser *ps) {
    while (at(ps, 0) == ' ' || at(ps, 0) == '\t') ps->p++;
}

static bool is_control(int c) {
    return (c >= 0 && c < 0x20 && c != '\t') || c == 0x7f;
}

static bool is_bare(int c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

/* What the cursor is on, for "expected X, found Y". */
static const char *here(const parser *ps, char *out, size_t outlen) {
    int c = at(ps, 0);
    if (c < 0) snprintf(out, outlen, "the end of the file");
    else if (c == '\n' || (c == '\r' && at(ps, 1) == '\n')) snprintf(out, outlen, "the end of the line");
    else if (c >= 0x20 && c < 0x7f) snprintf(out, outlen, "'%c'", c);
    else snprintf(out, outlen, "byte 0x%02X", (unsigned)c);
    return out;
}

static int skip_comment(parser *ps) {
    if (at(ps, 0) != '#') return 0;
    ps->p++;
    for (;;) {
        int c = at(ps, 0);
        if (c < 0 || at_newline(ps)) return 0;
        if (is_control(c)) return fail(ps, "control character U+%04X in a comment", (unsigned)c);
        ps->p++;
    }
}

/* Spaces, comments and newlines, as allowed between array items. */
static int skip_blank(parser *ps) {
    for (;;) {
        skip_ws(ps);
        if (skip_comment(ps)) return -1;
        if (!eat_newline(ps)) return 0;
    }
}

/* After a key/value pair or a header only a comment may follow. */
static int end_of_line(parser *ps, const char *after) {
    skip_ws(ps);
    if (skip_comment(ps)) return -1;
    if (at(ps, 0) < 0 || eat_newline(ps)) return 0;
    char h[32];
    return fail(ps, "expected the end of the line after %s, found %s", after, here(ps, h, sizeof h));
}

/* TOML documents are UTF-8; checking it once up front lets every later step
 * copy bytes >= 0x80 through as they are. */
static int check_utf8(parser *ps) {
    const unsigned char *s = (const unsigned char *)ps->p, *e = (const unsigned char *)ps->end;
    int line = 1;
    while (s < e) {
        unsigned c = *s;
        if (c < 0x80) {
            if (c == '\n') line++;
            s++;
            continue;
        }
        size_t n;
        uint32_t cp, min;
        if ((c & 0xe0) == 0xc0) n = 1, cp = c & 0x1f, min = 0x80;
        else if ((c & 0xf0) == 0xe0) n = 2, cp = c & 0x0f, min = 0x800;
        else if ((c & 0xf8) == 0xf0) n = 3, cp = c & 0x07, min = 0x10000;
        else return fail_line(ps, line, "invalid UTF-8");
        if ((size_t)(e - s) <= n) return fail_line(ps, line, "invalid UTF-8");
        for (size_t j = 1; j <= n; j++) {
            if ((s[j] & 0xc0) != 0x80) return fail_line(ps, line, "invalid UTF-8");
            cp = cp << 6 | (s[j] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return fail_line(ps, line, "invalid UTF-8");
        s += n + 1;
    }
    return 0;
}

/* ---- nodes ---- */

static void free_node(ns_toml *n) {
    if (!n) return;
    if (n->type == NS_TOML_STRING) {
        free(n->u.str.s);
    } else if (n->type == NS_TOML_ARRAY) {
        for (int i = 0; i < n->u.arr.n; i++) free_node(n->u.arr.items[i]);
        free(n->u.arr.items);
    } else if (n->type == NS_TOML_TABLE) {
        for (int i = 0; i < n->u.tab.n; i++) {
            free(n->u.tab.ents[i].key);
            free_node(n->u.tab.ents[i].val);
        }
        free(n->u.tab.ents);
        free(n->u.tab.slots);
    }
    free(n);
}

void ns_toml_free(ns_toml *root) {
    free_node(root);
}

static ns_toml *new_node(parser *ps, ns_toml_type type, int line, int depth) {
    if (depth > NS_TOML_MAX_DEPTH) {
        fail_line(ps, line, "nested deeper than %d levels", NS_TOML_MAX_DEPTH);
        return NULL;
    }
    ns_toml *n = calloc(1, sizeof *n);
    if (!n) {
        fail_line(ps, line, "out of memory");
        return NULL;
    }
    n->type = type;
    n->line = line;
    n->depth = depth;
    return n;
}

/* Grows *items (of `size` bytes each) to hold one more than n. */
static int grow(parser *ps, void **items, int n, int *cap, size_t size) {
    if (n < *cap) return 0;
    if (*cap > INT_MAX / 2) return fail(ps, "too many items");
    int ncap = *cap ? *cap * 2 : 4;
    void *p = realloc(*items, (size_t)ncap * size);
    if (!p) return fail(ps, "out of memory");
    *items = p;
    *cap = ncap;
    return 0;
}

/* Takes ownership of v: on failure it is freed. */
static int push_item(parser *ps, ns_toml *a, ns_toml *v) {
    if (grow(ps, (void **)&a->u.arr.items, a->u.arr.n, &a->u.arr.cap, sizeof *a->u.arr.items)) {
        free_node(v);
        return -1;
    }
    a->u.arr.items[a->u.arr.n++] = v;
    return 0;
}

static uint32_t hash_key(const char *k, size_t n) {
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)k[i]) * 16777619u;
    return h;
}

static int find(const ns_toml *t, const char *k, size_t n, uint32_t h) {
    if (!t->u.tab.nslots) return -1;
    uint32_t mask = t->u.tab.nslots - 1;
    for (uint32_t i = h & mask;; i = (i + 1) & mask) {
        int32_t s = t->u.tab.slots[i];
        if (s < 0) return -1;
        const entry *e = &t->u.tab.ents[s];
        if (e->hash == h && e->klen == n && memcmp(e->key, k, n) == 0) return s;
    }
}

static int rehash(parser *ps, ns_toml *t, uint32_t nslots) {
    int32_t *slots = malloc((size_t)nslots * sizeof *slots);
    if (!slots) return fail(ps, "out of memory");
    for (uint32_t i = 0; i < nslots; i++) slots[i] = -1;
    for (int j = 0; j < t->u.tab.n; j++) {
        uint32_t i = t->u.tab.ents[j].hash & (nslots - 1);
        while (slots[i] >= 0) i = (i + 1) & (nslots - 1);
        slots[i] = j;
    }
    free(t->u.tab.slots);
    t->u.tab.slots = slots;
    t->u.tab.nslots = nslots;
    return 0;
}

/* Adds a key the caller has checked is absent. Copies k; takes ownership of
 * v (freed on failure). */
static int add_entry(parser *ps, ns_toml *t, const key *k, uint32_t h, ns_toml *v) {
    if ((uint64_t)(t->u.tab.n + 1) * 2 > t->u.tab.nslots) {
        if (t->u.tab.nslots > UINT32_MAX / 4 || rehash(ps, t, t->u.tab.nslots ? t->u.tab.nslots * 2 : 8)) {
            free_node(v);
            return t->u.tab.nslots > UINT32_MAX / 4 ? fail(ps, "too many keys") : -1;
        }
    }
    char *copy = malloc(k->len + 1);
    if (!copy || grow(ps, (void **)&t->u.tab.ents, t->u.tab.n, &t->u.tab.cap, sizeof *t->u.tab.ents)) {
        free(copy);
        free_node(v);
        return copy ? -1 : fail(ps, "out of memory");
    }
    memcpy(copy, k->s, k->len);
    copy[k->len] = 0;
    int j = t->u.tab.n++;
    t->u.tab.ents[j] = (entry){copy, k->len, h, v};
    uint32_t i = h & (t->u.tab.nslots - 1);
    while (t->u.tab.slots[i] >= 0) i = (i + 1) & (t->u.tab.nslots - 1);
    t->u.tab.slots[i] = j;
    return 0;
}

/* "a string", "an inline table", ... for messages about existing nodes. */
static const char *describe(const ns_toml *n) {
    switch (n->type) {
    case NS_TOML_TABLE: return n->flags & T_INLINE ? "an inline table" : "a table";
    case NS_TOML_ARRAY: return n->flags & A_OF_TABLES ? "an array of tables" : "an array";
    case NS_TOML_STRING: return "a string";
    case NS_TOML_INT: return "an integer";
    case NS_TOML_FLOAT: return "a float";
    case NS_TOML_BOOL: return "a boolean";
    }
    return "a value";
}

/* The first `upto` parts of a key for messages: quoted where not bare,
 * control characters shown as '?', cut short at a character boundary. */
static const char *path_str(const keypath *kp, int upto, char *out, size_t outlen) {
    size_t o = 0, room = outlen - 4; /* keep space for "..." */
    bool cut = false;
    for (int i = 0; i < upto && !cut; i++) {
        const key *k = &kp->k[i];
        bool bare = k->len > 0;
        for (size_t j = 0; j < k->len; j++) bare = bare && is_bare((unsigned char)k->s[j]);
        char piece[4] = {0};
        size_t np = 0;
        if (i) piece[np++] = '.';
        if (!bare) piece[np++] = '"';
        for (size_t j = 0; j < np && !cut; j++) {
            if (o >= room) cut = true;
            else out[o++] = piece[j];
        }
        for (size_t j = 0; j < k->len && !cut; j++) {
            unsigned char c = (unsigned char)k->s[j];
            if (o >= room) cut = true;
            else out[o++] = (char)(is_control(c) || c == 0 ? '?' : c);
        }
        if (!bare && !cut) {
            if (o >= room) cut = true;
            else out[o++] = '"';
        }
    }
    if (cut) {
        while (o > 0 && ((unsigned char)out[o - 1] & 0xc0) == 0x80) o--;
        if (o > 0 && ((unsigned char)out[o - 1] & 0xc0) == 0xc0) o--;
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = 0;
    return out;
}

/* ---- strings ---- */

static int buf_put(parser *ps, buf *b, const char *s, size_t n) {
    if (b->cap - b->n <= n) {
        size_t ncap = b->cap ? b->cap : 32;
        while (ncap - b->n <= n) {
            if (ncap > SIZE_MAX / 2) return fail(ps, "out of memory");
            ncap *= 2;
        }
        char *p = realloc(b->p, ncap);
        if (!p) return fail(ps, "out of memory");
        b->p = p;
        b->cap = ncap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
    return 0;
}

static int buf_utf8(parser *ps, buf *b, uint32_t cp) {
    char u[4];
    size_t n;
    if (cp < 0x80) u[0] = (char)cp, n = 1;
    else if (cp < 0x800) u[0] = (char)(0xc0 | cp >> 6), u[1] = (char)(0x80 | (cp & 0x3f)), n = 2;
    else if (cp < 0x10000)
        u[0] = (char)(0xe0 | cp >> 12), u[1] = (char)(0x80 | ((cp >> 6) & 0x3f)), u[2] = (char)(0x80 | (cp & 0x3f)),
        n = 3;
    else
        u[0] = (char)(0xf0 | cp >> 18), u[1] = (char)(0x80 | ((cp >> 12) & 0x3f)),
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3f)), u[3] = (char)(0x80 | (cp & 0x3f)), n = 4;
    return buf_put(ps, b, u, n);
}

static int hex_value(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* The cursor is on a backslash inside a basic string. */
static int parse_escape(parser *ps, buf *b, bool ml) {
    int e = at(ps, 1);
    if (ml && (e == ' ' || e == '\t' || e == '\n' || e == '\r')) {
        /* a backslash ending a line drops it and all blank space after */
        size_t k = 1;
        while (at(ps, k) == ' ' || at(ps, k) == '\t') k++;
        if (at(ps, k) != '\n' && !(at(ps, k) == '\r' && at(ps, k + 1) == '\n'))
            return fail(ps, "a backslash followed by spaces must end the line");
        ps->p += k;
        for (;;) {
            skip_ws(ps);
            if (!eat_newline(ps)) return 0;
        }
    }
    const char *simple = "b\bt\tn\nf\fr\r\"\"\\\\";
    for (const char *s = simple; *s; s += 2)
        if (e == *s) {
            ps->p += 2;
            return buf_put(ps, b, s + 1, 1);
        }
    if (e == 'u' || e == 'U') {
        int digits = e == 'u' ? 4 : 8;
        uint32_t cp = 0;
        for (int i = 0; i < digits; i++) {
            int v = hex_value(at(ps, 2 + (size_t)i));
            if (v < 0) return fail(ps, "invalid escape: \\%c needs %d hex digits", e, digits);
            cp = cp << 4 | (uint32_t)v;
        }
        if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return fail(ps, "invalid escape: U+%04X is not a Unicode scalar value", (unsigned)cp);
        ps->p += 2 + digits;
        return buf_utf8(ps, b, cp);
    }
    if (e < 0) return fail(ps, "unterminated string");
    if (e > 0x20 && e < 0x7f) return fail(ps, "invalid escape '\\%c'", e);
    return fail(ps, "invalid escape: a backslash before byte 0x%02X", (unsigned)e);
}

/* A basic ("...", """...""") or literal ('...', '''...''') string into b;
 * the cursor is on the opening quote. Multi-line strings drop a newline
 * right after the opening quotes, and their CRLFs read as LF. */
static int parse_string(parser *ps, buf *b) {
    int q = at(ps, 0);
    bool ml = at(ps, 1) == q && at(ps, 2) == q, basic = q == '"';
    int start = ps->line;
    ps->p += ml ? 3 : 1;
    if (ml) eat_newline(ps);
    if (buf_put(ps, b, "", 0)) return -1; /* an empty string is "", not NULL */
    for (;;) {
        int c = at(ps, 0);
        if (c < 0) return fail_line(ps, start, "unterminated string");
        if (c == q) {
            if (!ml) {
                ps->p++;
                return 0;
            }
            /* one or two quotes are content; three close the string, and up
             * to two more right before them are content too */
            size_t n = 0;
            while (at(ps, n) == q) n++;
            if (n >= 3) {
                if (n > 5) return fail(ps, "too many quotes at the end of a multi-line string");
                ps->p += n;
                return buf_put(ps, b, basic ? "\"\"" : "''", n - 3);
            }
            if (buf_put(ps, b, ps->p, n)) return -1;
            ps->p += n;
            continue;
        }
        if (c == '\\' && basic) {
            if (parse_escape(ps, b, ml)) return -1;
            continue;
        }
        if (at_newline(ps)) {
            if (!ml) return fail(ps, "unterminated string (newline before the closing quote)");
            eat_newline(ps);
            if (buf_put(ps, b, "\n", 1)) return -1;
            continue;
        }
        if (is_control(c)) return fail(ps, "control character U+%04X in a string", (unsigned)c);
        const char *s = ps->p;
        while (ps->p < ps->end) {
            int d = (unsigned char)*ps->p;
            if (d == q || (d == '\\' && basic) || is_control(d) || d == '\r' || d == '\n') break;
            ps->p++;
        }
        if (buf_put(ps, b, s, (size_t)(ps->p - s))) return -1;
    }
}

/* ---- keys ---- */

static void keypath_clear(keypath *kp) {
    for (int i = 0; i < kp->n; i++) free(kp->k[i].s);
    kp->n = 0;
}

static void keypath_free(keypath *kp) {
    keypath_clear(kp);
    free(kp->k);
    kp->k = NULL;
    kp->cap = 0;
}

/* key = simple-key *( ws "." ws simple-key ); the cursor is on its start. */
static int parse_key(parser *ps, keypath *kp) {
    keypath_clear(kp);
    kp->line = ps->line;
    for (;;) {
        skip_ws(ps);
        buf b = {0};
        int c = at(ps, 0);
        if (is_bare(c)) {
            const char *s = ps->p;
            while (is_bare(at(ps, 0))) ps->p++;
            if (buf_put(ps, &b, s, (size_t)(ps->p - s))) return -1;
        } else if (c == '"' || c == '\'') {
            if (at(ps, 1) == c && at(ps, 2) == c) return fail(ps, "a key cannot be a multi-line string");
            if (parse_string(ps, &b)) {
                free(b.p);
                return -1;
            }
        } else {
            char h[32];
            return fail(ps, "expected a key, found %s", here(ps, h, sizeof h));
        }
        if (grow(ps, (void **)&kp->k, kp->n, &kp->cap, sizeof *kp->k)) {
            free(b.p);
            return -1;
        }
        kp->k[kp->n++] = (key){b.p, b.n};
        skip_ws(ps);
        if (at(ps, 0) != '.') return 0;
        ps->p++;
    }
}

/* The first `upto` parts of kp under the table named prefix ("" for the
 * root or an inline table). */
static const char *full_path(const char *prefix, const keypath *kp, int upto, char *out, size_t outlen) {
    char rel[160];
    path_str(kp, upto, rel, sizeof rel);
    snprintf(out, outlen, "%s%s%s", prefix, *prefix ? "." : "", rel);
    return out;
}

/* Puts val at the dotted key kp under table t, named prefix in messages.
 * Takes ownership of val. */
static int insert_keyval(parser *ps, ns_toml *t, const char *prefix, const keypath *kp, ns_toml *val) {
    char path[330];
    for (int i = 0; i < kp->n; i++) {
        const key *k = &kp->k[i];
        uint32_t h = hash_key(k->s, k->len);
        int idx = find(t, k->s, k->len, h);
        if (i == kp->n - 1) {
            if (idx < 0) return add_entry(ps, t, k, h, val);
            free_node(val);
            return fail_line(ps, kp->line, "duplicate key '%s' (first defined at line %d)",
                             full_path(prefix, kp, i + 1, path, sizeof path), t->u.tab.ents[idx].val->line);
        }
        if (idx < 0) {
            ns_toml *sub = new_node(ps, NS_TOML_TABLE, kp->line, t->depth + 1);
            if (!sub || add_entry(ps, t, k, h, sub)) {
                free_node(val);
                return -1;
            }
            sub->flags = T_DOTTED;
            t = sub;
            continue;
        }
        ns_toml *v = t->u.tab.ents[idx].val;
        if (v->type == NS_TOML_TABLE && (v->flags & T_DOTTED)) {
            t = v;
            continue;
        }
        free_node(val);
        full_path(prefix, kp, i + 1, path, sizeof path);
        if (v->type == NS_TOML_TABLE && (v->flags & T_INLINE))
            return fail_line(ps, kp->line, "'%s' is an inline table (line %d) and cannot be extended", path, v->line);
        if (v->type == NS_TOML_TABLE)
            return fail_line(ps, kp->line, "table [%s] (line %d) cannot be extended with dotted keys", path, v->line);
        return fail_line(ps, kp->line, "'%s' is %s (line %d), not a table", path, describe(v), v->line);
    }
    free_node(val);
    return fail(ps, "expected a key");
}

/* ---- values ---- */

static int parse_value(parser *ps, int depth, ns_toml **out);

static int parse_array(parser *ps, int depth, ns_toml **out) {
    ns_toml *a = new_node(ps, NS_TOML_ARRAY, ps->line, depth);
    if (!a) return -1;
    ps->p++;
    for (;;) {
        if (skip_blank(ps)) goto bad;
        if (at(ps, 0) == ']') break;
        ns_toml *v;
        if (parse_value(ps, depth + 1, &v) || push_item(ps, a, v)) goto bad;
        if (skip_blank(ps)) goto bad;
        if (at(ps, 0) == ',') {
            ps->p++;
            continue;
        }
        if (at(ps, 0) == ']') break;
        char h[32];
        fail(ps, "expected ',' or ']' in the array, found %s", here(ps, h, sizeof h));
        goto bad;
    }
    ps->p++;
    *out = a;
    return 0;
bad:
    free_node(a);
    return -1;
}

static int parse_inline_table(parser *ps, int depth, ns_toml **out) {
    ns_toml *t = new_node(ps, NS_TOML_TABLE, ps->line, depth);
    if (!t) return -1;
    t->flags = T_INLINE;
    keypath kp = {0};
    char h[32];
    ps->p++;
    skip_ws(ps);
    if (at(ps, 0) == '}') goto done;
    for (;;) {
        skip_ws(ps);
        if (at_newline(ps)) {
            fail(ps, "an inline table must be on one line");
            goto bad;
        }
        if (parse_key(ps, &kp)) goto bad;
        if (at(ps, 0) != '=') {
            fail(ps, "expected '=' after the key, found %s", here(ps, h, sizeof h));
            goto bad;
        }
        ps->p++;
        skip_ws(ps);
        ns_toml *v;
        if (parse_value(ps, depth + kp.n, &v) || insert_keyval(ps, t, "", &kp, v)) goto bad;
        skip_ws(ps);
        if (at(ps, 0) == '}') break;
        if (at(ps, 0) != ',') {
            if (at_newline(ps)) fail(ps, "an inline table must be on one line");
            else fail(ps, "expected ',' or '}' in the inline table, found %s", here(ps, h, sizeof h));
            goto bad;
        }
        ps->p++;
        skip_ws(ps);
        if (at(ps, 0) == '}') {
            fail(ps, "a trailing comma is not allowed in an inline table");
            goto bad;
        }
    }
done:
    ps->p++;
    keypath_free(&kp);
    *out = t;
    return 0;
bad:
    keypath_free(&kp);
    free_node(t);
    return -1;
}

static bool all_digits(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9') return false;
    return true;
}

/* Digits of `radix` with single underscores between them; the digits
 * without underscores are appended to *out (NULL: only checked). */
static bool digits_ok(const char *s, size_t n, int radix, char *out, size_t *outn) {
    if (n == 0) return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '_') {
            if (i == 0 || i == n - 1 || s[i - 1] == '_') return false;
            continue;
        }
        int v = hex_value((unsigned char)s[i]);
        if (v < 0 || v >= radix) return false;
        if (out) out[(*outn)++] = s[i];
    }
    return true;
}

static int parse_int(parser *ps, const char *s, size_t n, int64_t *out) {
    int radix = 10;
    bool neg = false;
    const char *d = s;
    size_t dn = n;
    if (n > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'o' || s[1] == 'b')) {
        radix = s[1] == 'x' ? 16 : s[1] == 'o' ? 8 : 2;
        d += 2, dn -= 2;
    } else if (n > 0 && (s[0] == '+' || s[0] == '-')) {
        neg = s[0] == '-';
        d++, dn--;
    }
    if (!digits_ok(d, dn, radix, NULL, NULL)) return fail(ps, "invalid number '%.*s'", (int)(n > 60 ? 60 : n), s);
    if (radix == 10 && d[0] == '0' && dn > 1)
        return fail(ps, "leading zeros are not allowed in '%.*s'", (int)(n > 60 ? 60 : n), s);
    /* up to 2^63 for a negative number, 2^63 - 1 otherwise */
    uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX, v = 0;
    for (size_t i = 0; i < dn; i++) {
        if (d[i] == '_') continue;
        uint64_t digit = (uint64_t)hex_value((unsigned char)d[i]);
        if (v > (limit - digit) / (uint64_t)radix)
            return fail(ps, "integer '%.*s' does not fit in 64 bits", (int)(n > 60 ? 60 : n), s);
        v = v * (uint64_t)radix + digit;
    }
    *out = neg ? (v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v) : (int64_t)v;
    return 0;
}

/* float = dec-int ( frac [ exp ] / exp ), frac = "." digits, exp = e[+-]digits */
static int parse_float(parser *ps, const char *s, size_t n, double *out) {
    int shown = (int)(n > 60 ? 60 : n);
    char *clean = malloc(n + 1);
    if (!clean) return fail(ps, "out of memory");
    size_t cn = 0, i = 0;
    if (s[0] == '+' || s[0] == '-') clean[cn++] = s[i++];
    size_t int_end = i;
    while (int_end < n && s[int_end] != '.' && s[int_end] != 'e' && s[int_end] != 'E') int_end++;
    bool ok = digits_ok(s + i, int_end - i, 10, clean, &cn);
    if (ok && s[i] == '0' && int_end - i > 1) {
        free(clean);
        return fail(ps, "leading zeros are not allowed in '%.*s'", shown, s);
    }
    i = int_end;
    if (ok && i < n && s[i] == '.') {
        size_t e = ++i;
        while (e < n && s[e] != 'e' && s[e] != 'E') e++;
        clean[cn++] = '.';
        ok = digits_ok(s + i, e - i, 10, clean, &cn);
        i = e;
    }
    if (ok && i < n) { /* s[i] is e or E */
        clean[cn++] = 'e';
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-')) clean[cn++] = s[i++];
        ok = digits_ok(s + i, n - i, 10, clean, &cn);
    }
    clean[cn] = 0;
    if (!ok) {
        free(clean);
        return fail(ps, "invalid number '%.*s'", shown, s);
    }
    /* strtod follows LC_NUMERIC; nstack never changes it from "C" */
    errno = 0;
    double v = strtod(clean, NULL);
    free(clean);
    if (errno == ERANGE && isinf(v)) return fail(ps, "float '%.*s' is out of range", shown, s);
    *out = v;
    return 0;
}

static bool looks_like_date(const char *s, size_t n, int next) {
    return (n >= 5 && all_digits(s, 4) && s[4] == '-') || (n == 2 && all_digits(s, 2) && next == ':');
}

/* Booleans, numbers, inf and nan: a run of the characters they use. */
static int parse_bare_value(parser *ps, int depth, ns_toml **out) {
    const char *s = ps->p;
    size_t n = 0;
    for (int c; (c = at(ps, n)) >= 0 && (is_bare(c) || c == '+' || c == '.'); n++) {}
    char h[32];
    if (n == 0) return fail(ps, "expected a value, found %s", here(ps, h, sizeof h));
    int shown = (int)(n > 60 ? 60 : n);
    if (looks_like_date(s, n, at(ps, n))) return fail(ps, "dates and times are not supported");
    ns_toml *v = new_node(ps, NS_TOML_BOOL, ps->line, depth);
    if (!v) return -1;
    const char *u = s + (s[0] == '+' || s[0] == '-');
    size_t un = n - (size_t)(u - s);
    int rc = 0;
    if ((n == 4 && memcmp(s, "true", 4) == 0) || (n == 5 && memcmp(s, "false", 5) == 0)) {
        v->u.b = s[0] == 't';
    } else if (un == 3 && (memcmp(u, "inf", 3) == 0 || memcmp(u, "nan", 3) == 0)) {
        v->type = NS_TOML_FLOAT;
        v->u.f = u[0] == 'i' ? INFINITY : NAN;
        if (s[0] == '-') v->u.f = -v->u.f;
    } else if (!(s[0] == '+' || s[0] == '-' || s[0] == '.' || (s[0] >= '0' && s[0] <= '9'))) {
        rc = fail(ps, "invalid value '%.*s' (strings need quotes)", shown, s);
    } else if (!(n > 2 && s[0] == '0' && s[1] == 'x') &&
               (memchr(s, '.', n) || memchr(s, 'e', n) || memchr(s, 'E', n))) { /* hex digits hold e and E */
        v->type = NS_TOML_FLOAT;
        rc = parse_float(ps, s, n, &v->u.f);
    } else {
        v->type = NS_TOML_INT;
        rc = parse_int(ps, s, n, &v->u.i);
    }
    if (rc) {
        free_node(v);
        return -1;
    }
    ps->p += n;
    *out = v;
    return 0;
}

static int parse_value(parser *ps, int depth, ns_toml **out) {
    int c = at(ps, 0);
    if (c == '[') return parse_array(ps, depth, out);
    if (c == '{') return parse_inline_table(ps, depth, out);
    if (c != '"' && c != '\'') return parse_bare_value(ps, depth, out);
    int line = ps->line;
    buf b = {0};
    if (parse_string(ps, &b)) {
        free(b.p);
        return -1;
    }
    ns_toml *v = new_node(ps, NS_TOML_STRING, line, depth);
    if (!v) {
        free(b.p);
        return -1;
    }
    v->u.str.s = b.p;
    v->u.str.len = b.n;
    *out = v;
    return 0;
}

/* ---- statements ---- */

static int keyval(parser *ps, ns_toml *table) {
    if (parse_key(ps, &ps->kp)) return -1;
    if (at(ps, 0) != '=') {
        char h[32];
        return fail(ps, "expected '=' after the key, found %s", here(ps, h, sizeof h));
    }
    ps->p++;
    skip_ws(ps);
    ns_toml *v;
    if (parse_value(ps, table->depth + ps->kp.n, &v)) return -1;
    return insert_keyval(ps, table, ps->table_path, &ps->kp, v);
}

/* [a.b.c] or [[a.b.c]]: sets *cur to the table that the following keys go
 * into. */
static int header(parser *ps, ns_toml **cur) {
    int line = ps->line;
    bool aot = at(ps, 1) == '[';
    keypath *kp = &ps->kp;
    char path[160];
    ps->p += aot ? 2 : 1;
    if (parse_key(ps, kp)) return -1;
    if (at(ps, 0) != ']' || (aot && at(ps, 1) != ']')) {
        char h[32];
        if (at(ps, 0) == ']') ps->p++; /* point at what follows "]" in "[[a]" */
        return fail(ps, "expected '%s' to close the header, found %s", aot ? "]]" : "]", here(ps, h, sizeof h));
    }
    ps->p += aot ? 2 : 1;
    ns_toml *t = ps->root;
    for (int i = 0; i < kp->n - 1; i++) {
        const key *k = &kp->k[i];
        uint32_t h = hash_key(k->s, k->len);
        int idx = find(t, k->s, k->len, h);
        if (idx < 0) {
            ns_toml *sub = new_node(ps, NS_TOML_TABLE, line, t->depth + 1);
            if (!sub || add_entry(ps, t, k, h, sub)) return -1;
            t = sub;
            continue;
        }
        ns_toml *v = t->u.tab.ents[idx].val;
        if (v->type == NS_TOML_TABLE && !(v->flags & T_INLINE)) {
            t = v;
        } else if (v->type == NS_TOML_ARRAY && (v->flags & A_OF_TABLES)) {
            t = v->u.arr.items[v->u.arr.n - 1]; /* [[...]] always made one */
        } else {
            path_str(kp, i + 1, path, sizeof path);
            if (v->type == NS_TOML_TABLE)
                return fail_line(ps, line, "'%s' is an inline table (line %d) and cannot be extended", path, v->line);
            return fail_line(ps, line, "'%s' is %s (line %d), not a table", path, describe(v), v->line);
        }
    }
    const key *k = &kp->k[kp->n - 1];
    uint32_t h = hash_key(k->s, k->len);
    int idx = find(t, k->s, k->len, h);
    ns_toml *v = idx >= 0 ? t->u.tab.ents[idx].val : NULL;
    path_str(kp, kp->n, path, sizeof path);
    snprintf(ps->table_path, sizeof ps->table_path, "%s", path);
    if (aot) {
        if (!v) {
            v = new_node(ps, NS_TOML_ARRAY, line, t->depth + 1);
            if (!v || add_entry(ps, t, k, h, v)) return -1;
            v->flags = A_OF_TABLES;
        } else if (v->type != NS_TOML_ARRAY || !(v->flags & A_OF_TABLES)) {
            return fail_line(ps, line, "'%s' is %s (line %d), not an array of tables", path, describe(v), v->line);
        }
        ns_toml *item = new_node(ps, NS_TOML_TABLE, line, v->depth + 1);
        if (!item || push_item(ps, v, item)) return -1;
        item->flags = T_HEADER;
        *cur = item;
        return 0;
    }
    if (!v) {
        v = new_node(ps, NS_TOML_TABLE, line, t->depth + 1);
        if (!v || add_entry(ps, t, k, h, v)) return -1;
        v->flags = T_HEADER;
    } else if (v->type != NS_TOML_TABLE) {
        return fail_line(ps, line, "'%s' is %s (line %d), not a table", path, describe(v), v->line);
    } else if (v->flags & T_HEADER) {
        return fail_line(ps, line, "table [%s] is defined twice (first at line %d)", path, v->line);
    } else if (v->flags & T_DOTTED) {
        return fail_line(ps, line, "table [%s] was already defined by dotted keys (line %d)", path, v->line);
    } else if (v->flags & T_INLINE) {
        return fail_line(ps, line, "'%s' is an inline table (line %d) and cannot be extended", path, v->line);
    } else {
        v->flags |= T_HEADER; /* was implicit: this is its definition */
        v->line = line;
    }
    *cur = v;
    return 0;
}

ns_toml *ns_toml_parse(const char *text, size_t len, const char *name, char *err, size_t errlen) {
    if (!text) text = "", len = 0;
    parser ps = {.p = text, .end = text + len, .line = 1, .name = name ? name : "toml", .err = err, .errlen = errlen};
    if (errlen) err[0] = 0;
    if (check_utf8(&ps)) return NULL;
    if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0) ps.p += 3;
    ps.root = new_node(&ps, NS_TOML_TABLE, 1, 0);
    if (!ps.root) return NULL;
    ns_toml *cur = ps.root;
    for (;;) {
        skip_ws(&ps);
        int c = at(&ps, 0);
        if (c < 0) break;
        const char *after = "the value";
        if (c == '[') {
            if (header(&ps, &cur)) goto bad;
            after = "the header";
        } else if (is_bare(c) || c == '"' || c == '\'') {
            if (keyval(&ps, cur)) goto bad;
        } else if (c != '#' && !at_newline(&ps)) {
            char h[32];
            fail(&ps, "expected a key, a [table] or a comment, found %s", here(&ps, h, sizeof h));
            goto bad;
        }
        if (end_of_line(&ps, after)) goto bad;
    }
    keypath_free(&ps.kp);
    return ps.root;
bad:
    keypath_free(&ps.kp);
    free_node(ps.root);
    return NULL;
}

/* ---- reading the tree ---- */

ns_toml_type ns_toml_type_of(const ns_toml *n) {
    return n->type;
}

const char *ns_toml_type_name(ns_toml_type t) {
    static const char *const names[] = {"table", "array", "string", "integer", "float", "boolean"};
    return (unsigned)t < sizeof names / sizeof names[0] ? names[t] : "?";
}

int ns_toml_line(const ns_toml *n) {
    return n ? n->line : 0;
}

const ns_toml *ns_toml_get(const ns_toml *table, const char *k) {
    if (!table || table->type != NS_TOML_TABLE || !k) return NULL;
    size_t n = strlen(k);
    int idx = find(table, k, n, hash_key(k, n));
    return idx < 0 ? NULL : table->u.tab.ents[idx].val;
}

int ns_toml_count(const ns_toml *n) {
    if (!n) return 0;
    if (n->type == NS_TOML_TABLE) return n->u.tab.n;
    if (n->type == NS_TOML_ARRAY) return n->u.arr.n;
    return 0;
}

const ns_toml *ns_toml_at(const ns_toml *n, int i) {
    if (i < 0 || i >= ns_toml_count(n)) return NULL;
    return n->type == NS_TOML_TABLE ? n->u.tab.ents[i].val : n->u.arr.items[i];
}

const char *ns_toml_key_at(const ns_toml *table, int i) {
    if (!table || table->type != NS_TOML_TABLE || i < 0 || i >= table->u.tab.n) return NULL;
    return table->u.tab.ents[i].key;
}

size_t ns_toml_key_len(const ns_toml *table, int i) {
    if (!table || table->type != NS_TOML_TABLE || i < 0 || i >= table->u.tab.n) return 0;
    return table->u.tab.ents[i].klen;
}

const char *ns_toml_string(const ns_toml *n) {
    return n && n->type == NS_TOML_STRING ? n->u.str.s : NULL;
}

size_t ns_toml_string_len(const ns_toml *n) {
    return n && n->type == NS_TOML_STRING ? n->u.str.len : 0;
}

int64_t ns_toml_int(const ns_toml *n) {
    return n && n->type == NS_TOML_INT ? n->u.i : 0;
}

double ns_toml_float(const ns_toml *n) {
    if (n && n->type == NS_TOML_FLOAT) return n->u.f;
    if (n && n->type == NS_TOML_INT) return (double)n->u.i;
    return 0.0;
}

bool ns_toml_bool(const ns_toml *n) {
    return n && n->type == NS_TOML_BOOL && n->u.b;
}
