/* JSON for the chat-template interpreter: reading JSON text into values
 * (tools, tool calls, extra variables) and writing values as Python's
 * json.dumps does (the `tojson` filter of Hugging Face chat templates:
 * ensure_ascii=False, ", " and ": " separators, optional indent). */
#include "engine/jinja_value.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------- reading */

typedef struct {
    jx_env *env;
    const char *s;
    size_t n, i;
    int depth;
} jp;

#if defined(__GNUC__)
__attribute__((noreturn))
#endif
static void jp_fail(jp *p, const char *what) {
    p->env->pos = p->i;
    jx_fail(p->env, "invalid JSON: %s", what);
}

static void jp_ws(jp *p) {
    while (p->i < p->n && (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\n' || p->s[p->i] == '\r')) p->i++;
}

static bool jp_lit(jp *p, const char *w) {
    size_t k = strlen(w);
    if (p->n - p->i >= k && memcmp(p->s + p->i, w, k) == 0) {
        p->i += k;
        return true;
    }
    return false;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static uint32_t jp_hex4(jp *p) {
    if (p->n - p->i < 4) jp_fail(p, "truncated \\u escape");
    uint32_t v = 0;
    for (int k = 0; k < 4; k++) {
        int h = hexval(p->s[p->i + k]);
        if (h < 0) jp_fail(p, "bad \\u escape");
        v = v * 16 + (uint32_t)h;
    }
    p->i += 4;
    return v;
}

static jv jp_string(jp *p) {
    jx_buf b = {0};
    p->i++; /* opening quote */
    for (;;) {
        if (p->i >= p->n) jp_fail(p, "unterminated string");
        unsigned char c = (unsigned char)p->s[p->i];
        if (c == '"') {
            p->i++;
            break;
        }
        if (c < 0x20) jp_fail(p, "control character in string");
        if (c != '\\') {
            size_t start = p->i;
            while (p->i < p->n && p->s[p->i] != '"' && p->s[p->i] != '\\' && (unsigned char)p->s[p->i] >= 0x20) p->i++;
            jx_buf_put(p->env, &b, p->s + start, p->i - start);
            continue;
        }
        p->i++;
        if (p->i >= p->n) jp_fail(p, "unterminated string");
        char e = p->s[p->i++];
        switch (e) {
        case '"': jx_buf_putc(p->env, &b, '"'); break;
        case '\\': jx_buf_putc(p->env, &b, '\\'); break;
        case '/': jx_buf_putc(p->env, &b, '/'); break;
        case 'b': jx_buf_putc(p->env, &b, '\b'); break;
        case 'f': jx_buf_putc(p->env, &b, '\f'); break;
        case 'n': jx_buf_putc(p->env, &b, '\n'); break;
        case 'r': jx_buf_putc(p->env, &b, '\r'); break;
        case 't': jx_buf_putc(p->env, &b, '\t'); break;
        case 'u': {
            uint32_t cp = jp_hex4(p);
            if (cp >= 0xD800 && cp < 0xDC00 && p->n - p->i >= 6 && p->s[p->i] == '\\' && p->s[p->i + 1] == 'u') {
                size_t save = p->i;
                p->i += 2;
                uint32_t lo = jp_hex4(p);
                if (lo >= 0xDC00 && lo < 0xE000)
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                else
                    p->i = save;
            }
            if (cp >= 0xD800 && cp < 0xE000) cp = 0xFFFD; /* lone surrogate */
            jx_utf8_put(p->env, &b, cp);
            break;
        }
        default: p->i--; jp_fail(p, "bad escape in string");
        }
    }
    return jx_buf_value(p->env, &b);
}

static jv jp_number(jp *p) {
    size_t start = p->i;
    bool is_float = false;
    if (p->s[p->i] == '-') p->i++;
    if (p->i >= p->n || p->s[p->i] < '0' || p->s[p->i] > '9') jp_fail(p, "bad number");
    if (p->s[p->i] == '0') {
        p->i++;
    } else {
        while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9') p->i++;
    }
    if (p->i < p->n && p->s[p->i] == '.') {
        is_float = true;
        p->i++;
        if (p->i >= p->n || p->s[p->i] < '0' || p->s[p->i] > '9') jp_fail(p, "bad number");
        while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9') p->i++;
    }
    if (p->i < p->n && (p->s[p->i] == 'e' || p->s[p->i] == 'E')) {
        is_float = true;
        p->i++;
        if (p->i < p->n && (p->s[p->i] == '+' || p->s[p->i] == '-')) p->i++;
        if (p->i >= p->n || p->s[p->i] < '0' || p->s[p->i] > '9') jp_fail(p, "bad number");
        while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9') p->i++;
    }
    char tmp[64];
    size_t len = p->i - start;
    if (len >= sizeof tmp) {
        /* a very long number: read it as a float */
        jx_str *t = jx_str_new(p->env, p->s + start, len);
        return jv_float(strtod(t->s, NULL));
    }
    memcpy(tmp, p->s + start, len);
    tmp[len] = 0;
    if (!is_float) {
        char *end;
        errno = 0;
        long long v = strtoll(tmp, &end, 10);
        if (*end == 0 && errno == 0) return jv_int(v);
    }
    return jv_float(strtod(tmp, NULL));
}

typedef struct {
    const jx_list *keys;
    size_t idx;
} key_ref;

static int cmp_key_ref(const void *a, const void *b) {
    const key_ref *x = a, *y = b;
    const jx_str *s = x->keys->items[x->idx].u.s, *t = y->keys->items[y->idx].u.s;
    size_t n = s->len < t->len ? s->len : t->len;
    int c = memcmp(s->s, t->s, n);
    if (c) return c;
    if (s->len != t->len) return s->len < t->len ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* A dict as Python's json builds it: keys in first-seen order, the last
 * value of a repeated key (sorting finds repeats in n log n). */
static jv make_object(jx_env *env, const jx_list *keys, const jx_list *vals) {
    size_t n = keys->n;
    jv d = jv_dict(env, n);
    if (n <= 16) {
        for (size_t i = 0; i < n; i++) jx_dict_set(env, d.u.d, keys->items[i], vals->items[i]);
        return d;
    }
    key_ref *refs = jx_alloc(env, n * sizeof *refs);
    size_t *last = jx_alloc(env, n * sizeof *last); /* for a first occurrence: its last one */
    bool *skip = jx_alloc(env, n);
    for (size_t i = 0; i < n; i++) refs[i] = (key_ref){keys, i};
    qsort(refs, n, sizeof *refs, cmp_key_ref);
    for (size_t i = 0; i < n;) {
        size_t j = i + 1;
        while (j < n && jv_equal(keys->items[refs[j].idx], keys->items[refs[i].idx])) {
            skip[refs[j].idx] = true;
            j++;
        }
        last[refs[i].idx] = refs[j - 1].idx;
        i = j;
    }
    for (size_t i = 0; i < n; i++) {
        if (skip[i]) continue;
        d.u.d->keys[d.u.d->n] = keys->items[i];
        d.u.d->vals[d.u.d->n] = vals->items[last[i]];
        d.u.d->n++;
    }
    return d;
}

static jv jp_value(jp *p) {
    jp_ws(p);
    if (p->i >= p->n) jp_fail(p, "unexpected end of input");
    char c = p->s[p->i];
    if (c == '{' || c == '[') {
        if (++p->depth > 128) jp_fail(p, "nested too deeply");
        p->i++;
        jv r;
        if (c == '[') {
            r = jv_list(p->env, 0);
            jp_ws(p);
            if (p->i < p->n && p->s[p->i] == ']') {
                p->i++;
            } else {
                for (;;) {
                    jx_list_push(p->env, r.u.l, jp_value(p));
                    jp_ws(p);
                    if (p->i < p->n && p->s[p->i] == ',') {
                        p->i++;
                        continue;
                    }
                    if (p->i < p->n && p->s[p->i] == ']') {
                        p->i++;
                        break;
                    }
                    jp_fail(p, "expected ',' or ']'");
                }
            }
        } else {
            /* keys and values in order; duplicates resolved after (linear time) */
            jv keys = jv_list(p->env, 0), vals = jv_list(p->env, 0);
            jp_ws(p);
            if (p->i < p->n && p->s[p->i] == '}') {
                p->i++;
            } else {
                for (;;) {
                    jp_ws(p);
                    if (p->i >= p->n || p->s[p->i] != '"') jp_fail(p, "expected a string key");
                    jx_list_push(p->env, keys.u.l, jp_string(p));
                    jp_ws(p);
                    if (p->i >= p->n || p->s[p->i] != ':') jp_fail(p, "expected ':'");
                    p->i++;
                    jx_list_push(p->env, vals.u.l, jp_value(p));
                    jp_ws(p);
                    if (p->i < p->n && p->s[p->i] == ',') {
                        p->i++;
                        continue;
                    }
                    if (p->i < p->n && p->s[p->i] == '}') {
                        p->i++;
                        break;
                    }
                    jp_fail(p, "expected ',' or '}'");
                }
            }
            r = make_object(p->env, keys.u.l, vals.u.l);
        }
        p->depth--;
        return r;
    }
    if (c == '"') return jp_string(p);
    if (c == '-' || (c >= '0' && c <= '9')) return jp_number(p);
    if (jp_lit(p, "true")) return jv_bool(true);
    if (jp_lit(p, "false")) return jv_bool(false);
    if (jp_lit(p, "null")) return jv_none();
    jp_fail(p, "unexpected character");
}

jv jx_json_parse(jx_env *env, const char *text, size_t len) {
    jp p = {.env = env, .s = text, .n = len, .i = 0, .depth = 0};
    jv v = jp_value(&p);
    jp_ws(&p);
    if (p.i != p.n) jp_fail(&p, "trailing characters after the value");
    return v;
}

/* ------------------------------------------------------------- writing */

static void dump_string(jx_env *env, jx_buf *b, const char *s, size_t n, bool ensure_ascii) {
    jx_buf_putc(env, b, '"');
    size_t i = 0;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        char t[16];
        if (c == '"') {
            jx_buf_puts(env, b, "\\\"");
        } else if (c == '\\') {
            jx_buf_puts(env, b, "\\\\");
        } else if (c == '\n') {
            jx_buf_puts(env, b, "\\n");
        } else if (c == '\r') {
            jx_buf_puts(env, b, "\\r");
        } else if (c == '\t') {
            jx_buf_puts(env, b, "\\t");
        } else if (c == '\b') {
            jx_buf_puts(env, b, "\\b");
        } else if (c == '\f') {
            jx_buf_puts(env, b, "\\f");
        } else if (c < 0x20 || (ensure_ascii && c == 0x7f)) {
            snprintf(t, sizeof t, "\\u%04x", c);
            jx_buf_puts(env, b, t);
        } else if (c >= 0x80 && ensure_ascii) {
            size_t k = jx_utf8_seqlen(s + i, n - i);
            uint32_t cp;
            if (k == 1) {
                cp = 0xFFFD;
            } else {
                cp = (uint32_t)(c & (0xFF >> (k + 1)));
                for (size_t j = 1; j < k; j++) cp = (cp << 6) | ((unsigned char)s[i + j] & 0x3F);
            }
            if (cp >= 0x10000) {
                uint32_t v = cp - 0x10000;
                snprintf(t, sizeof t, "\\u%04x\\u%04x", 0xD800 + (v >> 10), 0xDC00 + (v & 0x3FF));
            } else {
                snprintf(t, sizeof t, "\\u%04x", cp);
            }
            jx_buf_puts(env, b, t);
            i += k;
            continue;
        } else {
            jx_buf_putc(env, b, (char)c);
        }
        i++;
    }
    jx_buf_putc(env, b, '"');
}

static void dump_float(jx_env *env, jx_buf *b, double d) {
    if (isnan(d)) {
        jx_buf_puts(env, b, "NaN");
    } else if (isinf(d)) {
        jx_buf_puts(env, b, d < 0 ? "-Infinity" : "Infinity");
    } else {
        char t[64];
        jx_float_repr(d, t, sizeof t);
        jx_buf_puts(env, b, t);
    }
}

typedef struct {
    int indent;
    const char *item_sep, *key_sep;
    bool ensure_ascii, sort_keys;
} dump_opts;

static void newline_indent(jx_env *env, jx_buf *b, const dump_opts *o, int level) {
    jx_buf_putc(env, b, '\n');
    for (int i = 0; i < o->indent * level; i++) jx_buf_putc(env, b, ' ');
}

/* A dict key as json.dumps converts it. */
static jv key_text(jx_env *env, jv k) {
    switch (k.t) {
    case JV_STR: return k;
    case JV_BOOL: return jv_cstr(env, k.u.b ? "true" : "false");
    case JV_NONE: return jv_cstr(env, "null");
    case JV_INT:
    case JV_FLOAT: {
        jx_buf t = {0};
        if (k.t == JV_INT)
            jv_write_str(env, &t, k);
        else
            dump_float(env, &t, k.u.f);
        return jx_buf_value(env, &t);
    }
    default: jx_fail(env, "tojson: keys must be str, int, float, bool or None, not %s", jv_type_name(k));
    }
}

static void dump_value(jx_env *env, jx_buf *b, jv v, const dump_opts *o, int level) {
    if (level > 128) jx_fail(env, "tojson: value nested too deeply");
    switch (v.t) {
    case JV_NONE: jx_buf_puts(env, b, "null"); return;
    case JV_BOOL: jx_buf_puts(env, b, v.u.b ? "true" : "false"); return;
    case JV_INT: jv_write_str(env, b, v); return;
    case JV_FLOAT: dump_float(env, b, v.u.f); return;
    case JV_STR: dump_string(env, b, v.u.s->s, v.u.s->len, o->ensure_ascii); return;
    case JV_LIST: {
        const jx_list *l = v.u.l;
        if (l->n == 0) {
            jx_buf_puts(env, b, "[]");
            return;
        }
        jx_buf_putc(env, b, '[');
        for (size_t i = 0; i < l->n; i++) {
            if (i) jx_buf_puts(env, b, o->item_sep);
            if (o->indent >= 0) newline_indent(env, b, o, level + 1);
            dump_value(env, b, l->items[i], o, level + 1);
        }
        if (o->indent >= 0) newline_indent(env, b, o, level);
        jx_buf_putc(env, b, ']');
        return;
    }
    case JV_DICT: {
        const jx_dict *d = v.u.d;
        if (d->ns) break;
        if (d->n == 0) {
            jx_buf_puts(env, b, "{}");
            return;
        }
        size_t *order = jx_alloc(env, d->n * sizeof(size_t));
        jv *keys = jx_alloc(env, d->n * sizeof(jv));
        for (size_t i = 0; i < d->n; i++) {
            order[i] = i;
            keys[i] = key_text(env, d->keys[i]);
        }
        if (o->sort_keys) { /* insertion sort: stable, dicts are small */
            for (size_t i = 1; i < d->n; i++) {
                size_t x = order[i], j = i;
                while (j > 0 && jv_compare(env, keys[order[j - 1]], keys[x], false) > 0) {
                    order[j] = order[j - 1];
                    j--;
                }
                order[j] = x;
            }
        }
        jx_buf_putc(env, b, '{');
        for (size_t k = 0; k < d->n; k++) {
            size_t i = order[k];
            if (k) jx_buf_puts(env, b, o->item_sep);
            if (o->indent >= 0) newline_indent(env, b, o, level + 1);
            dump_string(env, b, keys[i].u.s->s, keys[i].u.s->len, o->ensure_ascii);
            jx_buf_puts(env, b, o->key_sep);
            dump_value(env, b, d->vals[i], o, level + 1);
        }
        if (o->indent >= 0) newline_indent(env, b, o, level);
        jx_buf_putc(env, b, '}');
        return;
    }
    default: break;
    }
    jx_fail(env, "tojson: object of type '%s' is not JSON serializable", jv_type_name(v));
}

void jx_json_dump(jx_env *env, jx_buf *b, jv v, int indent, const char *item_sep, const char *key_sep,
                  bool ensure_ascii, bool sort_keys) {
    dump_opts o = {.indent = indent,
                   .item_sep = item_sep ? item_sep : (indent >= 0 ? "," : ", "),
                   .key_sep = key_sep ? key_sep : ": ",
                   .ensure_ascii = ensure_ascii,
                   .sort_keys = sort_keys};
    dump_value(env, b, v, &o, 0);
}
