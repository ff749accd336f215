/* Values of the chat-template interpreter: arena, errors, containers,
 * Python semantics (truth, equality, ordering) and str()/repr(). */
#include "engine/jinja_value.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------- arena */

struct jx_chunk {
    jx_chunk *next;
    size_t cap, used;
    max_align_t data[];
};

void jx_arena_init(jx_arena *a, size_t limit) {
    a->head = NULL;
    a->total = 0;
    a->limit = limit;
}

void *jx_arena_alloc(jx_arena *a, size_t n) {
    const size_t align = sizeof(max_align_t);
    if (n > a->limit) return NULL;
    n = (n + align - 1) / align * align;
    if (n == 0) n = align;
    jx_chunk *c = a->head;
    if (!c || c->cap - c->used < n) {
        size_t cap = 64 * 1024;
        if (n > cap / 4) cap = n; /* big blocks get a chunk of their own */
        if (a->total + cap + sizeof(jx_chunk) > a->limit) return NULL;
        jx_chunk *nc = malloc(sizeof(jx_chunk) + cap);
        if (!nc) return NULL;
        a->total += cap + sizeof(jx_chunk);
        nc->cap = cap;
        nc->used = 0;
        if (c && n == cap && c->cap - c->used >= 256) {
            /* keep filling the current chunk: put the big one behind it */
            nc->next = c->next;
            c->next = nc;
        } else {
            nc->next = c;
            a->head = nc;
        }
        c = nc;
    }
    void *p = (char *)c->data + c->used;
    c->used += n;
    memset(p, 0, n);
    return p;
}

void jx_arena_free(jx_arena *a) {
    jx_chunk *c = a->head;
    while (c) {
        jx_chunk *next = c->next;
        free(c);
        c = next;
    }
    a->head = NULL;
    a->total = 0;
}

/* ------------------------------------------------------------- errors */

void jx_line_col(const char *src, size_t srclen, size_t pos, int *line, int *col) {
    int l = 1;
    size_t ls = 0;
    if (pos > srclen) pos = srclen;
    for (size_t i = 0; src && i < pos; i++) {
        if (src[i] == '\n') {
            l++;
            ls = i + 1;
        }
    }
    *line = l;
    *col = (int)(pos - ls) + 1;
}

void jx_fail(jx_env *env, const char *fmt, ...) {
    if (env->err && env->errlen > 0) {
        int line, col;
        jx_line_col(env->src, env->srclen, env->pos, &line, &col);
        char msg[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        snprintf(env->err, env->errlen, "line %d, column %d: %s", line, col, msg);
    }
    longjmp(*env->jb, 1);
}

void *jx_alloc(jx_env *env, size_t n) {
    void *p = jx_arena_alloc(env->arena, n);
    if (!p) jx_fail(env, "memory limit reached (%zu bytes)", env->arena->limit);
    return p;
}

/* ------------------------------------------------------------- constructors */

jx_str *jx_str_new(jx_env *env, const char *s, size_t len) {
    if (len > env->arena->limit) jx_fail(env, "memory limit reached (%zu bytes)", env->arena->limit);
    jx_str *r = jx_alloc(env, sizeof(jx_str) + len + 1);
    r->len = len;
    if (len) memcpy(r->s, s, len);
    r->s[len] = 0;
    return r;
}

jv jv_strv(jx_str *s) {
    jv v = {.t = JV_STR};
    v.u.s = s;
    return v;
}

jv jv_str(jx_env *env, const char *s, size_t len) { return jv_strv(jx_str_new(env, s, len)); }

jv jv_cstr(jx_env *env, const char *s) { return jv_str(env, s, strlen(s)); }

jv jv_undef_named(jx_env *env, const char *msg) {
    jv v = jv_undef();
    if (msg) v.u.s = jx_str_new(env, msg, strlen(msg));
    return v;
}

jv jv_list(jx_env *env, size_t cap) {
    jv v = {.t = JV_LIST};
    v.u.l = jx_alloc(env, sizeof(jx_list));
    if (cap) {
        if (cap > env->arena->limit / sizeof(jv)) jx_fail(env, "memory limit reached");
        v.u.l->items = jx_alloc(env, cap * sizeof(jv));
        v.u.l->cap = cap;
    }
    return v;
}

jv jv_tuple(jx_env *env, size_t cap) {
    jv v = jv_list(env, cap);
    v.u.l->tuple = true;
    return v;
}

jv jv_dict(jx_env *env, size_t cap) {
    jv v = {.t = JV_DICT};
    v.u.d = jx_alloc(env, sizeof(jx_dict));
    if (cap) {
        if (cap > env->arena->limit / sizeof(jv)) jx_fail(env, "memory limit reached");
        v.u.d->keys = jx_alloc(env, cap * sizeof(jv));
        v.u.d->vals = jx_alloc(env, cap * sizeof(jv));
        v.u.d->cap = cap;
    }
    return v;
}

void jx_list_push(jx_env *env, jx_list *l, jv v) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 4;
        if (cap > env->arena->limit / sizeof(jv)) jx_fail(env, "memory limit reached");
        jv *items = jx_alloc(env, cap * sizeof(jv));
        if (l->n) memcpy(items, l->items, l->n * sizeof(jv));
        l->items = items;
        l->cap = cap;
    }
    l->items[l->n++] = v;
}

jv *jx_dict_get(const jx_dict *d, jv key) {
    for (size_t i = 0; i < d->n; i++)
        if (jv_equal(d->keys[i], key)) return &d->vals[i];
    return NULL;
}

jv *jx_dict_gets(const jx_dict *d, const char *key) {
    size_t n = strlen(key);
    for (size_t i = 0; i < d->n; i++) {
        const jv *k = &d->keys[i];
        if (k->t == JV_STR && k->u.s->len == n && memcmp(k->u.s->s, key, n) == 0) return &d->vals[i];
    }
    return NULL;
}

void jx_dict_set(jx_env *env, jx_dict *d, jv key, jv val) {
    jv *slot = jx_dict_get(d, key);
    if (slot) {
        *slot = val;
        return;
    }
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 4;
        if (cap > env->arena->limit / sizeof(jv)) jx_fail(env, "memory limit reached");
        jv *keys = jx_alloc(env, cap * sizeof(jv));
        jv *vals = jx_alloc(env, cap * sizeof(jv));
        if (d->n) {
            memcpy(keys, d->keys, d->n * sizeof(jv));
            memcpy(vals, d->vals, d->n * sizeof(jv));
        }
        d->keys = keys;
        d->vals = vals;
        d->cap = cap;
    }
    d->keys[d->n] = key;
    d->vals[d->n] = val;
    d->n++;
}

void jx_dict_sets(jx_env *env, jx_dict *d, const char *key, jv val) { jx_dict_set(env, d, jv_cstr(env, key), val); }

bool jx_dict_del(jx_dict *d, jv key) {
    for (size_t i = 0; i < d->n; i++) {
        if (jv_equal(d->keys[i], key)) {
            memmove(&d->keys[i], &d->keys[i + 1], (d->n - i - 1) * sizeof(jv));
            memmove(&d->vals[i], &d->vals[i + 1], (d->n - i - 1) * sizeof(jv));
            d->n--;
            return true;
        }
    }
    return false;
}

/* ------------------------------------------------------------- semantics */

const char *jv_type_name(jv v) {
    switch (v.t) {
    case JV_UNDEF: return "Undefined";
    case JV_NONE: return "NoneType";
    case JV_BOOL: return "bool";
    case JV_INT: return "int";
    case JV_FLOAT: return "float";
    case JV_STR: return "str";
    case JV_LIST: return v.u.l->tuple ? "tuple" : "list";
    case JV_DICT: return v.u.d->ns ? "Namespace" : "dict";
    case JV_FUNC: return "function";
    case JV_LOOP: return "LoopContext";
    }
    return "object";
}

bool jv_truthy(jv v) {
    switch (v.t) {
    case JV_UNDEF:
    case JV_NONE: return false;
    case JV_BOOL: return v.u.b;
    case JV_INT: return v.u.i != 0;
    case JV_FLOAT: return v.u.f != 0.0;
    case JV_STR: return v.u.s->len > 0;
    case JV_LIST: return v.u.l->n > 0;
    case JV_DICT: return v.u.d->ns || v.u.d->n > 0;
    case JV_FUNC:
    case JV_LOOP: return true;
    }
    return false;
}

bool jv_is_num(jv v) { return v.t == JV_INT || v.t == JV_FLOAT || v.t == JV_BOOL; }

double jv_num(jv v) {
    if (v.t == JV_INT) return (double)v.u.i;
    if (v.t == JV_FLOAT) return v.u.f;
    if (v.t == JV_BOOL) return v.u.b ? 1.0 : 0.0;
    return 0.0;
}

static int64_t jv_intval(jv v) { return v.t == JV_BOOL ? (int64_t)v.u.b : v.u.i; }

/* Containers nested deeper than this compare by identity (a template can
 * build arbitrarily deep or cyclic values; Python would fail with a
 * RecursionError). */
#define MAX_VALUE_DEPTH 200

static bool equal_at(jv a, jv b, int depth) {
    if (jv_is_num(a) && jv_is_num(b)) {
        if (a.t != JV_FLOAT && b.t != JV_FLOAT) return jv_intval(a) == jv_intval(b);
        return jv_num(a) == jv_num(b);
    }
    if (a.t != b.t) return false;
    switch (a.t) {
    case JV_UNDEF:
    case JV_NONE: return true;
    case JV_STR: return a.u.s->len == b.u.s->len && memcmp(a.u.s->s, b.u.s->s, a.u.s->len) == 0;
    case JV_LIST:
        if (a.u.l == b.u.l) return true;
        if (a.u.l->tuple != b.u.l->tuple || a.u.l->n != b.u.l->n || depth > MAX_VALUE_DEPTH) return false;
        for (size_t i = 0; i < a.u.l->n; i++)
            if (!equal_at(a.u.l->items[i], b.u.l->items[i], depth + 1)) return false;
        return true;
    case JV_DICT:
        if (a.u.d == b.u.d) return true;
        if (a.u.d->ns || b.u.d->ns) return false;
        if (a.u.d->n != b.u.d->n || depth > MAX_VALUE_DEPTH) return false;
        for (size_t i = 0; i < a.u.d->n; i++) {
            jv *o = NULL;
            for (size_t k = 0; k < b.u.d->n && !o; k++)
                if (equal_at(a.u.d->keys[i], b.u.d->keys[k], depth + 1)) o = &b.u.d->vals[k];
            if (!o || !equal_at(a.u.d->vals[i], *o, depth + 1)) return false;
        }
        return true;
    case JV_FUNC: return a.u.fn == b.u.fn;
    case JV_LOOP: return a.u.loop == b.u.loop;
    default: return false;
    }
}

bool jv_equal(jv a, jv b) { return equal_at(a, b, 0); }

static int lower_ascii(int c) { return (c >= 'A' && c <= 'Z') ? c + 32 : c; }

static int compare_at(jx_env *env, jv a, jv b, bool case_insensitive, int depth) {
    if (jv_is_num(a) && jv_is_num(b)) {
        if (a.t != JV_FLOAT && b.t != JV_FLOAT) {
            int64_t x = jv_intval(a), y = jv_intval(b);
            return x < y ? -1 : x > y;
        }
        double x = jv_num(a), y = jv_num(b);
        return x < y ? -1 : x > y;
    }
    if (a.t == JV_STR && b.t == JV_STR) {
        size_t n = a.u.s->len < b.u.s->len ? a.u.s->len : b.u.s->len;
        for (size_t i = 0; i < n; i++) {
            int x = (unsigned char)a.u.s->s[i], y = (unsigned char)b.u.s->s[i];
            if (case_insensitive) {
                x = lower_ascii(x);
                y = lower_ascii(y);
            }
            if (x != y) return x < y ? -1 : 1;
        }
        return a.u.s->len < b.u.s->len ? -1 : a.u.s->len > b.u.s->len;
    }
    if (a.t == JV_LIST && b.t == JV_LIST) {
        if (depth > MAX_VALUE_DEPTH) jx_fail(env, "comparison nested too deeply");
        size_t n = a.u.l->n < b.u.l->n ? a.u.l->n : b.u.l->n;
        for (size_t i = 0; i < n; i++) {
            if (equal_at(a.u.l->items[i], b.u.l->items[i], depth + 1)) continue;
            return compare_at(env, a.u.l->items[i], b.u.l->items[i], case_insensitive, depth + 1);
        }
        return a.u.l->n < b.u.l->n ? -1 : a.u.l->n > b.u.l->n;
    }
    jx_fail(env, "cannot compare '%s' with '%s'", jv_type_name(a), jv_type_name(b));
}

int jv_compare(jx_env *env, jv a, jv b, bool case_insensitive) { return compare_at(env, a, b, case_insensitive, 0); }

/* ------------------------------------------------------------- buffers */

void jx_buf_put(jx_env *env, jx_buf *b, const char *s, size_t n) {
    if (n == 0) return;
    if (b->limit && (n > b->limit || b->n > b->limit - n)) jx_fail(env, "output size limit reached (%zu bytes)", b->limit);
    if (b->cap - b->n < n + 1) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap - b->n < n + 1) {
            if (cap > env->arena->limit) jx_fail(env, "memory limit reached (%zu bytes)", env->arena->limit);
            cap *= 2;
        }
        char *p = jx_alloc(env, cap);
        if (b->n) memcpy(p, b->p, b->n);
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

void jx_buf_puts(jx_env *env, jx_buf *b, const char *s) { jx_buf_put(env, b, s, strlen(s)); }

void jx_buf_putc(jx_env *env, jx_buf *b, char c) { jx_buf_put(env, b, &c, 1); }

jv jx_buf_value(jx_env *env, const jx_buf *b) { return jv_str(env, b->p ? b->p : "", b->n); }

/* ------------------------------------------------------------- UTF-8 */

size_t jx_utf8_seqlen(const char *s, size_t n) {
    unsigned char c = (unsigned char)s[0];
    size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
    if (len > n) return 1;
    for (size_t i = 1; i < len; i++)
        if (((unsigned char)s[i] >> 6) != 2) return 1;
    return len;
}

size_t jx_utf8_len(const char *s, size_t n) {
    size_t count = 0;
    for (size_t i = 0; i < n; i += jx_utf8_seqlen(s + i, n - i)) count++;
    return count;
}

size_t jx_utf8_offset(const char *s, size_t n, size_t cp_index) {
    size_t i = 0;
    while (cp_index > 0 && i < n) {
        i += jx_utf8_seqlen(s + i, n - i);
        cp_index--;
    }
    return i;
}

void jx_utf8_put(jx_env *env, jx_buf *b, uint32_t cp) {
    char t[4];
    size_t n;
    if (cp < 0x80) {
        t[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        t[0] = (char)(0xC0 | (cp >> 6));
        t[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        t[0] = (char)(0xE0 | (cp >> 12));
        t[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        t[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        if (cp > 0x10FFFF) cp = 0xFFFD;
        t[0] = (char)(0xF0 | (cp >> 18));
        t[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        t[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        t[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    jx_buf_put(env, b, t, n);
}

/* ------------------------------------------------------------- str() and repr() */

void jx_float_repr(double d, char *out, size_t outlen) {
    if (isnan(d)) {
        snprintf(out, outlen, "nan");
        return;
    }
    if (isinf(d)) {
        snprintf(out, outlen, d < 0 ? "-inf" : "inf");
        return;
    }
    char tmp[48];
    int prec;
    for (prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*e", prec - 1, d);
        if (strtod(tmp, NULL) == d) break;
    }
    if (prec > 17) prec = 17;
    snprintf(tmp, sizeof tmp, "%.*e", prec - 1, d);
    /* tmp: [-]D[.DDD]e[+-]XX */
    bool neg = tmp[0] == '-';
    const char *p = tmp + (neg ? 1 : 0);
    char digits[24];
    int nd = 0;
    while (*p && *p != 'e') {
        if (*p != '.' && nd < 20) digits[nd++] = *p;
        p++;
    }
    int exp10 = (*p == 'e') ? atoi(p + 1) : 0;
    while (nd > 1 && digits[nd - 1] == '0') nd--; /* shortest */
    digits[nd] = 0;
    int decpt = exp10 + 1; /* value = 0.DIGITS * 10^decpt */
    char buf[64];
    size_t k = 0;
    if (neg) buf[k++] = '-';
    if (decpt > -4 && decpt <= 16) { /* Python switches to exponents outside 1e-4 .. 1e16 */
        if (decpt <= 0) {
            buf[k++] = '0';
            buf[k++] = '.';
            for (int i = 0; i < -decpt; i++) buf[k++] = '0';
            for (int i = 0; i < nd; i++) buf[k++] = digits[i];
        } else if (decpt >= nd) {
            for (int i = 0; i < nd; i++) buf[k++] = digits[i];
            for (int i = nd; i < decpt; i++) buf[k++] = '0';
            buf[k++] = '.';
            buf[k++] = '0';
        } else {
            for (int i = 0; i < decpt; i++) buf[k++] = digits[i];
            buf[k++] = '.';
            for (int i = decpt; i < nd; i++) buf[k++] = digits[i];
        }
        buf[k] = 0;
    } else {
        buf[k++] = digits[0];
        if (nd > 1) {
            buf[k++] = '.';
            for (int i = 1; i < nd; i++) buf[k++] = digits[i];
        }
        buf[k] = 0;
        int e = decpt - 1;
        snprintf(buf + k, sizeof buf - k, "e%c%02d", e < 0 ? '-' : '+', e < 0 ? -e : e);
    }
    snprintf(out, outlen, "%s", buf);
}

static void write_str_repr(jx_env *env, jx_buf *b, const jx_str *s) {
    bool has_sq = memchr(s->s, '\'', s->len) != NULL;
    bool has_dq = memchr(s->s, '"', s->len) != NULL;
    char q = (has_sq && !has_dq) ? '"' : '\'';
    jx_buf_putc(env, b, q);
    for (size_t i = 0; i < s->len; i++) {
        unsigned char c = (unsigned char)s->s[i];
        char t[8];
        if (c == (unsigned char)q || c == '\\') {
            t[0] = '\\';
            t[1] = (char)c;
            jx_buf_put(env, b, t, 2);
        } else if (c == '\n') {
            jx_buf_puts(env, b, "\\n");
        } else if (c == '\r') {
            jx_buf_puts(env, b, "\\r");
        } else if (c == '\t') {
            jx_buf_puts(env, b, "\\t");
        } else if (c < 0x20 || c == 0x7f) {
            snprintf(t, sizeof t, "\\x%02x", c);
            jx_buf_puts(env, b, t);
        } else {
            jx_buf_putc(env, b, (char)c);
        }
    }
    jx_buf_putc(env, b, q);
}

static void write_num(jx_env *env, jx_buf *b, jv v) {
    char t[64];
    if (v.t == JV_INT)
        snprintf(t, sizeof t, "%lld", (long long)v.u.i);
    else
        jx_float_repr(v.u.f, t, sizeof t);
    jx_buf_puts(env, b, t);
}

static void write_value(jx_env *env, jx_buf *b, jv v, bool repr, int depth) {
    if (depth > 64) jx_fail(env, "value nested too deeply to print");
    switch (v.t) {
    case JV_UNDEF:
        if (repr) jx_buf_puts(env, b, "Undefined");
        return;
    case JV_NONE: jx_buf_puts(env, b, "None"); return;
    case JV_BOOL: jx_buf_puts(env, b, v.u.b ? "True" : "False"); return;
    case JV_INT:
    case JV_FLOAT: write_num(env, b, v); return;
    case JV_STR:
        if (repr)
            write_str_repr(env, b, v.u.s);
        else
            jx_buf_put(env, b, v.u.s->s, v.u.s->len);
        return;
    case JV_LIST: {
        const jx_list *l = v.u.l;
        jx_buf_putc(env, b, l->tuple ? '(' : '[');
        for (size_t i = 0; i < l->n; i++) {
            if (i) jx_buf_puts(env, b, ", ");
            write_value(env, b, l->items[i], true, depth + 1);
        }
        if (l->tuple && l->n == 1) jx_buf_putc(env, b, ',');
        jx_buf_putc(env, b, l->tuple ? ')' : ']');
        return;
    }
    case JV_DICT: {
        const jx_dict *d = v.u.d;
        if (d->ns) jx_buf_puts(env, b, "<Namespace ");
        jx_buf_putc(env, b, '{');
        for (size_t i = 0; i < d->n; i++) {
            if (i) jx_buf_puts(env, b, ", ");
            write_value(env, b, d->keys[i], true, depth + 1);
            jx_buf_puts(env, b, ": ");
            write_value(env, b, d->vals[i], true, depth + 1);
        }
        jx_buf_putc(env, b, '}');
        if (d->ns) jx_buf_putc(env, b, '>');
        return;
    }
    case JV_FUNC: jx_buf_puts(env, b, "<function>"); return;
    case JV_LOOP: jx_buf_puts(env, b, "<LoopContext>"); return;
    }
}

void jv_write_str(jx_env *env, jx_buf *b, jv v) { write_value(env, b, v, false, 0); }

void jv_write_repr(jx_env *env, jx_buf *b, jv v) { write_value(env, b, v, true, 0); }

jv jv_to_str(jx_env *env, jv v) {
    if (v.t == JV_STR) return v;
    jx_buf b = {0};
    jv_write_str(env, &b, v);
    return jx_buf_value(env, &b);
}
