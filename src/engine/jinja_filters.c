/* Filters of the chat-template interpreter ({{ x | name(args) }}), with
 * the behaviour of Jinja2's built-ins and of Hugging Face's `tojson`. */
#include "engine/jinja_interp.h"
#include "engine/jinja_text.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------- helpers */

static bool flag_arg(jx_args *a, size_t i, const char *kw, bool def) {
    jv *v = jx_arg(a, i, kw);
    return v ? jv_truthy(*v) : def;
}

static int64_t int_arg(jx_run *R, jx_args *a, size_t i, const char *kw, int64_t def) {
    jv *v = jx_arg(a, i, kw);
    if (!v || v->t == JV_NONE) return def;
    if (v->t == JV_INT) return v->u.i;
    if (v->t == JV_BOOL) return v->u.b;
    jx_fail(&R->env, "argument '%s' must be an integer, not %s", kw, jv_type_name(*v));
}

/* item.attr.0.name as Jinja's attribute getters read it (items first). */
static jv attr_path(jx_run *R, jv obj, jv attr) {
    if (attr.t == JV_INT) return jx_getitem(R, obj, attr);
    if (attr.t != JV_STR) jx_fail(&R->env, "attribute must be a string or an integer");
    const char *s = attr.u.s->s;
    size_t n = attr.u.s->len, i = 0;
    while (i <= n) {
        size_t e = i;
        while (e < n && s[e] != '.') e++;
        bool digits = e > i;
        for (size_t k = i; k < e; k++)
            if (s[k] < '0' || s[k] > '9') digits = false;
        jv key;
        if (digits) {
            key = jv_int(strtoll(s + i, NULL, 10));
        } else {
            key = jv_str(&R->env, s + i, e - i);
        }
        obj = jx_getitem(R, obj, key);
        i = e + 1;
    }
    return obj;
}

static jx_list *seq_of(jx_run *R, jv v) { return jx_iter_list(R, v); }

/* Stable merge sort of items by keys (Python ordering). */
static void sort_by(jx_run *R, jv *items, jv *keys, size_t n, bool ci, bool reverse) {
    if (n < 2) return;
    jv *ti = jx_alloc(&R->env, n * sizeof(jv));
    jv *tk = jx_alloc(&R->env, n * sizeof(jv));
    for (size_t w = 1; w < n; w *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * w) {
            size_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
            size_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi) {
                int c = jv_compare(&R->env, keys[j], keys[i], ci);
                bool take_right = reverse ? c > 0 : c < 0;
                if (take_right) {
                    ti[k] = items[j];
                    tk[k++] = keys[j++];
                } else {
                    ti[k] = items[i];
                    tk[k++] = keys[i++];
                }
            }
            while (i < mid) {
                ti[k] = items[i];
                tk[k++] = keys[i++];
            }
            while (j < hi) {
                ti[k] = items[j];
                tk[k++] = keys[j++];
            }
        }
        memcpy(items, ti, n * sizeof(jv));
        memcpy(keys, tk, n * sizeof(jv));
    }
}

static jv make_list(jx_run *R, jv *items, size_t n) {
    jv l = jv_list(&R->env, n);
    if (n) memcpy(l.u.l->items, items, n * sizeof(jv));
    l.u.l->n = n;
    return l;
}

/* ------------------------------------------------------------- filters */

static jv f_abs(jx_run *R, jv v, jx_args *a) {
    (void)a;
    if (v.t == JV_INT) {
        if (v.u.i == INT64_MIN) jx_fail(&R->env, "integer overflow");
        return jv_int(v.u.i < 0 ? -v.u.i : v.u.i);
    }
    if (v.t == JV_BOOL) return jv_int(v.u.b);
    if (v.t == JV_FLOAT) return jv_float(fabs(v.u.f));
    jx_fail(&R->env, "bad operand type for abs(): '%s'", jv_type_name(v));
}

static jv f_attr(jx_run *R, jv v, jx_args *a) {
    jv *name = jx_arg(a, 0, "name");
    if (!name || name->t != JV_STR) jx_fail(&R->env, "attr() needs an attribute name");
    return jx_getattr(R, v, name->u.s->s);
}

static jv f_capitalize(jx_run *R, jv v, jx_args *a) { (void)a; return jx_change_case(R, jx_text(R, v), CASE_CAPITALIZE); }
static jv f_lower(jx_run *R, jv v, jx_args *a) { (void)a; return jx_change_case(R, jx_text(R, v), CASE_LOWER); }
static jv f_upper(jx_run *R, jv v, jx_args *a) { (void)a; return jx_change_case(R, jx_text(R, v), CASE_UPPER); }
static jv f_title(jx_run *R, jv v, jx_args *a) { (void)a; return jx_change_case(R, jx_text(R, v), CASE_TITLE_JINJA); }
static jv f_string(jx_run *R, jv v, jx_args *a) { (void)a; return jv_strv(jx_text(R, v)); }
static jv f_safe(jx_run *R, jv v, jx_args *a) { (void)R; (void)a; return v; }

static jv f_pprint(jx_run *R, jv v, jx_args *a) {
    (void)a;
    jx_buf b = {0};
    jv_write_repr(&R->env, &b, v);
    return jx_buf_value(&R->env, &b);
}

static jv f_center(jx_run *R, jv v, jx_args *a) {
    jx_str *s = jx_text(R, v);
    int64_t width = int_arg(R, a, 0, "width", 80);
    int64_t len = (int64_t)jx_utf8_len(s->s, s->len);
    if (width <= len) return jv_strv(s);
    if (width > 100000) jx_fail(&R->env, "center() width too large");
    int64_t marg = width - len, left = marg / 2 + (marg & width & 1);
    jx_buf b = {0};
    for (int64_t i = 0; i < left; i++) jx_buf_putc(&R->env, &b, ' ');
    jx_buf_put(&R->env, &b, s->s, s->len);
    for (int64_t i = 0; i < marg - left; i++) jx_buf_putc(&R->env, &b, ' ');
    return jx_buf_value(&R->env, &b);
}

static jv f_default(jx_run *R, jv v, jx_args *a) {
    jv def = jx_arg_or(a, 0, "default_value", jv_str(&R->env, "", 0));
    bool boolean = flag_arg(a, 1, "boolean", false);
    if (v.t == JV_UNDEF || (boolean && !jv_truthy(v))) return def;
    return v;
}

static jv f_escape(jx_run *R, jv v, jx_args *a) {
    (void)a;
    jx_str *s = jx_text(R, v);
    jx_buf b = {0};
    for (size_t i = 0; i < s->len; i++) {
        switch (s->s[i]) {
        case '&': jx_buf_puts(&R->env, &b, "&amp;"); break;
        case '<': jx_buf_puts(&R->env, &b, "&lt;"); break;
        case '>': jx_buf_puts(&R->env, &b, "&gt;"); break;
        case '"': jx_buf_puts(&R->env, &b, "&#34;"); break;
        case '\'': jx_buf_puts(&R->env, &b, "&#39;"); break;
        default: jx_buf_putc(&R->env, &b, s->s[i]);
        }
    }
    if (!b.p) return jv_str(&R->env, "", 0);
    return jx_buf_value(&R->env, &b);
}

static jv f_first(jx_run *R, jv v, jx_args *a) {
    (void)a;
    if (v.t == JV_UNDEF) return v;
    jx_list *l = seq_of(R, v);
    return l->n ? l->items[0] : jv_undef_named(&R->env, "first() of an empty sequence");
}

static jv f_last(jx_run *R, jv v, jx_args *a) {
    (void)a;
    if (v.t == JV_UNDEF) return v;
    jx_list *l = seq_of(R, v);
    return l->n ? l->items[l->n - 1] : jv_undef_named(&R->env, "last() of an empty sequence");
}

/* Python's int(text, base): whitespace, a sign, an optional 0x/0o/0b prefix
 * (required to match base 0's choice), digits with single underscores. */
static bool parse_int_text(const jx_str *s, int base, int64_t *out) {
    size_t a = 0, b = s->len;
    while (a < b && jx_is_space_cp((unsigned char)s->s[a])) a++;
    while (b > a && jx_is_space_cp((unsigned char)s->s[b - 1])) b--;
    bool neg = false;
    if (a < b && (s->s[a] == '+' || s->s[a] == '-')) neg = s->s[a++] == '-';
    if (b - a >= 2 && s->s[a] == '0') {
        char p = (char)(s->s[a + 1] | 0x20);
        int pb = p == 'x' ? 16 : p == 'o' ? 8 : p == 'b' ? 2 : 0;
        if (pb && (base == 0 || base == pb)) {
            base = pb;
            a += 2;
            if (a < b && s->s[a] == '_') a++;
        }
    }
    if (base == 0) base = 10;
    if (a >= b) return false;
    uint64_t v = 0;
    bool prev_us = true;
    for (size_t i = a; i < b; i++) {
        char c = s->s[i];
        if (c == '_') {
            if (prev_us) return false;
            prev_us = true;
            continue;
        }
        int d = (c >= '0' && c <= '9') ? c - '0' : (c | 0x20) >= 'a' && (c | 0x20) <= 'z' ? (c | 0x20) - 'a' + 10 : 99;
        if (d >= base) return false;
        if (v > (UINT64_MAX - (uint64_t)d) / (uint64_t)base) return false;
        v = v * (uint64_t)base + (uint64_t)d;
        prev_us = false;
    }
    if (prev_us) return false;
    if (v > (uint64_t)INT64_MAX + (neg ? 1u : 0u)) return false;
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return true;
}

static bool parse_float_text(const jx_str *s, double *out) {
    char tmp[128];
    size_t a = 0, b = s->len, m = 0;
    while (a < b && jx_is_space_cp((unsigned char)s->s[a])) a++;
    while (b > a && jx_is_space_cp((unsigned char)s->s[b - 1])) b--;
    if (b == a || b - a >= sizeof tmp) return false;
    for (size_t i = a; i < b; i++)
        if (s->s[i] != '_') tmp[m++] = s->s[i];
    tmp[m] = 0;
    if (tmp[0] == '0' && (tmp[1] == 'x' || tmp[1] == 'X')) return false; /* no hex floats */
    char *end;
    double d = strtod(tmp, &end);
    if (*end || end == tmp) return false;
    *out = d;
    return true;
}

static jv f_int(jx_run *R, jv v, jx_args *a) {
    jv def = jx_arg_or(a, 0, "default", jv_int(0));
    int64_t base = int_arg(R, a, 1, "base", 10);
    switch (v.t) {
    case JV_INT: return v;
    case JV_BOOL: return jv_int(v.u.b);
    case JV_FLOAT:
        if (isfinite(v.u.f) && fabs(v.u.f) < 9.2e18) return jv_int((int64_t)v.u.f);
        return def;
    case JV_STR: {
        int64_t out;
        double d;
        if ((base == 0 || (base >= 2 && base <= 36)) && parse_int_text(v.u.s, (int)base, &out)) return jv_int(out);
        if (parse_float_text(v.u.s, &d) && isfinite(d) && fabs(d) < 9.2e18) return jv_int((int64_t)d);
        return def;
    }
    default: return def;
    }
}

static jv f_float(jx_run *R, jv v, jx_args *a) {
    (void)R;
    jv def = jx_arg_or(a, 0, "default", jv_float(0.0));
    double d;
    switch (v.t) {
    case JV_FLOAT: return v;
    case JV_INT: return jv_float((double)v.u.i);
    case JV_BOOL: return jv_float(v.u.b);
    case JV_STR: return parse_float_text(v.u.s, &d) ? jv_float(d) : def;
    default: return def;
    }
}

static jv f_format(jx_run *R, jv v, jx_args *a) {
    if (v.t != JV_STR) v = jv_strv(jx_text(R, v));
    jv args;
    if (a->nkw) {
        args = jv_dict(&R->env, a->nkw);
        for (size_t k = 0; k < a->nkw; k++) jx_dict_sets(&R->env, args.u.d, a->kwn[k], a->kwv[k]);
    } else {
        args = jv_tuple(&R->env, a->npos);
        for (size_t i = 0; i < a->npos; i++) jx_list_push(&R->env, args.u.l, a->pos[i]);
    }
    return jx_percent_format(R, NULL, v, args);
}

static jv f_indent(jx_run *R, jv v, jx_args *a) {
    jx_str *s = jx_text(R, v);
    jv *w = jx_arg(a, 0, "width");
    jx_str *ind;
    if (w && w->t == JV_STR) {
        ind = w->u.s;
    } else {
        int64_t width = int_arg(R, a, 0, "width", 4);
        if (width < 0) width = 0;
        if (width > 10000) jx_fail(&R->env, "indent() width too large");
        jx_buf ib = {0};
        for (int64_t i = 0; i < width; i++) jx_buf_putc(&R->env, &ib, ' ');
        ind = ib.p ? jx_buf_value(&R->env, &ib).u.s : jx_str_new(&R->env, "", 0);
    }
    bool first = flag_arg(a, 1, "first", false);
    bool blank = flag_arg(a, 2, "blank", false);
    /* Jinja appends "\n" and then splits into lines */
    jx_buf t = {0};
    jx_buf_put(&R->env, &t, s->s, s->len);
    jx_buf_putc(&R->env, &t, '\n');
    jv lines = jx_splitlines(R, jx_buf_value(&R->env, &t).u.s, false);
    jx_buf b = {0};
    if (first) jx_buf_put(&R->env, &b, ind->s, ind->len);
    for (size_t i = 0; i < lines.u.l->n; i++) {
        jx_str *line = lines.u.l->items[i].u.s;
        if (i > 0) {
            jx_buf_putc(&R->env, &b, '\n');
            if (blank || line->len) jx_buf_put(&R->env, &b, ind->s, ind->len);
        }
        jx_buf_put(&R->env, &b, line->s, line->len);
    }
    if (!b.p) return jv_str(&R->env, "", 0);
    return jx_buf_value(&R->env, &b);
}

static jv f_items(jx_run *R, jv v, jx_args *a) {
    (void)a;
    jv out = jv_list(&R->env, 0);
    if (v.t == JV_UNDEF) return out;
    if (v.t != JV_DICT) jx_fail(&R->env, "can only get item pairs from a mapping, not %s", jv_type_name(v));
    for (size_t i = 0; i < v.u.d->n; i++) {
        jv p = jv_tuple(&R->env, 2);
        jx_list_push(&R->env, p.u.l, v.u.d->keys[i]);
        jx_list_push(&R->env, p.u.l, v.u.d->vals[i]);
        jx_list_push(&R->env, out.u.l, p);
    }
    return out;
}

static jv f_join(jx_run *R, jv v, jx_args *a) {
    jv *d = jx_arg(a, 0, "d");
    jx_str *sep = d ? jx_text(R, *d) : jx_str_new(&R->env, "", 0);
    jv *attr = jx_arg(a, 1, "attribute");
    jx_list *l = seq_of(R, v);
    jx_buf b = {0};
    for (size_t i = 0; i < l->n; i++) {
        if (i) jx_buf_put(&R->env, &b, sep->s, sep->len);
        jv item = attr && attr->t != JV_NONE ? attr_path(R, l->items[i], *attr) : l->items[i];
        jv_write_str(&R->env, &b, item);
    }
    if (!b.p) return jv_str(&R->env, "", 0);
    return jx_buf_value(&R->env, &b);
}

static jv f_length(jx_run *R, jv v, jx_args *a) {
    (void)a;
    switch (v.t) {
    case JV_UNDEF: return jv_int(0);
    case JV_STR: return jv_int((int64_t)jx_utf8_len(v.u.s->s, v.u.s->len));
    case JV_LIST: return jv_int((int64_t)v.u.l->n);
    case JV_DICT: return jv_int((int64_t)v.u.d->n);
    case JV_LOOP: return jv_int((int64_t)v.u.loop->items->n);
    default: jx_fail(&R->env, "object of type '%s' has no len()", jv_type_name(v));
    }
}

static jv f_list(jx_run *R, jv v, jx_args *a) {
    (void)a;
    jx_list *l = seq_of(R, v);
    jv r = {.t = JV_LIST};
    r.u.l = l;
    return r;
}

static jv f_map(jx_run *R, jv v, jx_args *a) {
    jx_list *l = seq_of(R, v);
    jv out = jv_list(&R->env, l->n);
    jv *attr = NULL;
    for (size_t k = 0; k < a->nkw; k++)
        if (!strcmp(a->kwn[k], "attribute")) attr = &a->kwv[k];
    if (attr) {
        jv *def = NULL;
        for (size_t k = 0; k < a->nkw; k++)
            if (!strcmp(a->kwn[k], "default")) def = &a->kwv[k];
        for (size_t i = 0; i < l->n; i++) {
            jv x = attr_path(R, l->items[i], *attr);
            if (x.t == JV_UNDEF && def) x = *def;
            jx_list_push(&R->env, out.u.l, x);
        }
        return out;
    }
    if (a->npos < 1 || a->pos[0].t != JV_STR) jx_fail(&R->env, "map() needs a filter name or attribute=");
    const char *name = a->pos[0].u.s->s;
    jx_args rest = {.pos = a->pos + 1, .npos = a->npos - 1, .kwn = a->kwn, .kwv = a->kwv, .nkw = a->nkw};
    for (size_t i = 0; i < l->n; i++) jx_list_push(&R->env, out.u.l, jx_apply_filter(R, name, l->items[i], &rest));
    return out;
}

/* select / reject / selectattr / rejectattr */
static jv select_common(jx_run *R, jv v, jx_args *a, bool use_attr, bool keep_when) {
    jx_list *l = seq_of(R, v);
    jv out = jv_list(&R->env, 0);
    size_t first = 0;
    jv attr = jv_none();
    if (use_attr) {
        if (a->npos < 1) jx_fail(&R->env, "selectattr/rejectattr need an attribute");
        attr = a->pos[0];
        first = 1;
    }
    const char *test = NULL;
    if (a->npos > first) {
        if (a->pos[first].t != JV_STR) jx_fail(&R->env, "test name must be a string");
        test = a->pos[first].u.s->s;
        if (!jx_test_exists(test)) jx_fail(&R->env, "no test named '%s'", test);
    }
    jx_args targs = {.pos = a->npos > first + 1 ? a->pos + first + 1 : NULL,
                     .npos = a->npos > first + 1 ? a->npos - first - 1 : 0,
                     .kwn = a->kwn,
                     .kwv = a->kwv,
                     .nkw = a->nkw};
    for (size_t i = 0; i < l->n; i++) {
        jv x = use_attr ? attr_path(R, l->items[i], attr) : l->items[i];
        bool r;
        if (test) {
            bool found;
            r = jx_run_test(R, test, x, &targs, &found);
        } else {
            r = jv_truthy(x);
        }
        if (r == keep_when) jx_list_push(&R->env, out.u.l, l->items[i]);
    }
    return out;
}

static jv f_select(jx_run *R, jv v, jx_args *a) { return select_common(R, v, a, false, true); }
static jv f_reject(jx_run *R, jv v, jx_args *a) { return select_common(R, v, a, false, false); }
static jv f_selectattr(jx_run *R, jv v, jx_args *a) { return select_common(R, v, a, true, true); }
static jv f_rejectattr(jx_run *R, jv v, jx_args *a) { return select_common(R, v, a, true, false); }

static jv min_max(jx_run *R, jv v, jx_args *a, bool want_max) {
    bool cs = flag_arg(a, 0, "case_sensitive", false);
    jv *attr = jx_arg(a, 1, "attribute");
    jx_list *l = seq_of(R, v);
    if (l->n == 0) return jv_undef_named(&R->env, "no items in the sequence");
    size_t best = 0;
    jv bestk = attr ? attr_path(R, l->items[0], *attr) : l->items[0];
    for (size_t i = 1; i < l->n; i++) {
        jv k = attr ? attr_path(R, l->items[i], *attr) : l->items[i];
        int c = jv_compare(&R->env, k, bestk, !cs);
        if (want_max ? c > 0 : c < 0) {
            best = i;
            bestk = k;
        }
    }
    return l->items[best];
}

static jv f_max(jx_run *R, jv v, jx_args *a) { return min_max(R, v, a, true); }
static jv f_min(jx_run *R, jv v, jx_args *a) { return min_max(R, v, a, false); }

static jv f_replace(jx_run *R, jv v, jx_args *a) {
    jv *old = jx_arg(a, 0, "old"), *rep = jx_arg(a, 1, "new");
    if (!old || !rep) jx_fail(&R->env, "replace() needs the old and the new text");
    int64_t count = int_arg(R, a, 2, "count", -1);
    return jx_replace(R, jx_text(R, v), jx_text(R, *old), jx_text(R, *rep), count);
}

static jv f_reverse(jx_run *R, jv v, jx_args *a) {
    (void)a;
    if (v.t == JV_STR) {
        jx_list *chars = jx_iter_list(R, v);
        jx_buf b = {0};
        for (size_t i = chars->n; i-- > 0;) jx_buf_put(&R->env, &b, chars->items[i].u.s->s, chars->items[i].u.s->len);
        if (!b.p) return jv_str(&R->env, "", 0);
        return jx_buf_value(&R->env, &b);
    }
    jx_list *l = seq_of(R, v);
    jv out = jv_list(&R->env, l->n);
    for (size_t i = l->n; i-- > 0;) jx_list_push(&R->env, out.u.l, l->items[i]);
    return out;
}

static jv f_round(jx_run *R, jv v, jx_args *a) {
    int64_t prec = int_arg(R, a, 0, "precision", 0);
    jv *m = jx_arg(a, 1, "method");
    const char *method = m && m->t == JV_STR ? m->u.s->s : "common";
    if (strcmp(method, "common") && strcmp(method, "ceil") && strcmp(method, "floor"))
        jx_fail(&R->env, "method must be common, ceil or floor");
    if (!jv_is_num(v)) jx_fail(&R->env, "round() needs a number, not %s", jv_type_name(v));
    if (prec > 30) prec = 30;
    if (prec < -30) prec = -30;
    double p10 = pow(10.0, (double)(prec < 0 ? -prec : prec));
    if (strcmp(method, "common") == 0) {
        if (v.t != JV_FLOAT) {
            int64_t x = v.t == JV_BOOL ? v.u.b : v.u.i;
            if (prec >= 0) return jv_int(x);
            double r = rint((double)x / p10) * p10;
            return jv_int((int64_t)r);
        }
        double x = v.u.f;
        if (!isfinite(x)) return v;
        if (prec == 0) return jv_float(rint(x));
        if (prec > 0) {
            char buf[512];
            snprintf(buf, sizeof buf, "%.*f", (int)prec, x);
            return jv_float(strtod(buf, NULL));
        }
        return jv_float(rint(x / p10) * p10);
    }
    double x = jv_num(v);
    double scaled = prec >= 0 ? x * p10 : x / p10;
    double r = strcmp(method, "ceil") == 0 ? ceil(scaled) : floor(scaled);
    return jv_float(prec >= 0 ? r / p10 : r * p10);
}

static jv f_sort(jx_run *R, jv v, jx_args *a) {
    bool reverse = flag_arg(a, 0, "reverse", false);
    bool cs = flag_arg(a, 1, "case_sensitive", false);
    jv *attr = jx_arg(a, 2, "attribute");
    jx_list *l = seq_of(R, v);
    jv *items = jx_alloc(&R->env, (l->n + 1) * sizeof(jv));
    jv *keys = jx_alloc(&R->env, (l->n + 1) * sizeof(jv));
    for (size_t i = 0; i < l->n; i++) {
        items[i] = l->items[i];
        keys[i] = attr && attr->t != JV_NONE ? attr_path(R, l->items[i], *attr) : l->items[i];
    }
    sort_by(R, items, keys, l->n, !cs, reverse);
    return make_list(R, items, l->n);
}

static jv f_dictsort(jx_run *R, jv v, jx_args *a) {
    bool cs = flag_arg(a, 0, "case_sensitive", false);
    jv *by = jx_arg(a, 1, "by");
    bool reverse = flag_arg(a, 2, "reverse", false);
    bool by_value = by && by->t == JV_STR && strcmp(by->u.s->s, "value") == 0;
    if (by && !(by->t == JV_STR && (by_value || strcmp(by->u.s->s, "key") == 0)))
        jx_fail(&R->env, "You can only sort by either \"key\" or \"value\"");
    if (v.t != JV_DICT) jx_fail(&R->env, "dictsort() needs a mapping, not %s", jv_type_name(v));
    size_t n = v.u.d->n;
    jv *items = jx_alloc(&R->env, (n + 1) * sizeof(jv));
    jv *keys = jx_alloc(&R->env, (n + 1) * sizeof(jv));
    for (size_t i = 0; i < n; i++) {
        jv p = jv_tuple(&R->env, 2);
        jx_list_push(&R->env, p.u.l, v.u.d->keys[i]);
        jx_list_push(&R->env, p.u.l, v.u.d->vals[i]);
        items[i] = p;
        keys[i] = by_value ? v.u.d->vals[i] : v.u.d->keys[i];
    }
    sort_by(R, items, keys, n, !cs, reverse);
    return make_list(R, items, n);
}

static jv f_sum(jx_run *R, jv v, jx_args *a) {
    jv *attr = jx_arg(a, 0, "attribute");
    jv acc = jx_arg_or(a, 1, "start", jv_int(0));
    jx_list *l = seq_of(R, v);
    for (size_t i = 0; i < l->n; i++) {
        jv x = attr && attr->t != JV_NONE ? attr_path(R, l->items[i], *attr) : l->items[i];
        if (!jv_is_num(x) || !jv_is_num(acc)) jx_fail(&R->env, "sum() needs numbers, not %s", jv_type_name(x));
        if (x.t != JV_FLOAT && acc.t != JV_FLOAT) {
            int64_t r, p = acc.t == JV_BOOL ? acc.u.b : acc.u.i, q = x.t == JV_BOOL ? x.u.b : x.u.i;
            if (__builtin_add_overflow(p, q, &r)) jx_fail(&R->env, "integer overflow");
            acc = jv_int(r);
        } else {
            acc = jv_float(jv_num(acc) + jv_num(x));
        }
    }
    return acc;
}

static jv f_tojson(jx_run *R, jv v, jx_args *a) {
    bool ensure_ascii = flag_arg(a, 0, "ensure_ascii", false);
    jv *ind = jx_arg(a, 1, "indent");
    int indent = -1;
    if (ind && ind->t != JV_NONE) {
        if (ind->t != JV_INT && ind->t != JV_BOOL) jx_fail(&R->env, "tojson: indent must be an integer");
        int64_t x = ind->t == JV_BOOL ? ind->u.b : ind->u.i;
        indent = x < 0 ? 0 : x > 64 ? 64 : (int)x;
    }
    const char *item_sep = NULL, *key_sep = NULL;
    jv *seps = jx_arg(a, 2, "separators");
    if (seps && seps->t != JV_NONE) {
        if (seps->t != JV_LIST || seps->u.l->n != 2 || seps->u.l->items[0].t != JV_STR || seps->u.l->items[1].t != JV_STR)
            jx_fail(&R->env, "tojson: separators must be two strings");
        item_sep = seps->u.l->items[0].u.s->s;
        key_sep = seps->u.l->items[1].u.s->s;
    }
    bool sort_keys = flag_arg(a, 3, "sort_keys", false);
    jx_buf b = {0};
    jx_json_dump(&R->env, &b, v, indent, item_sep, key_sep, ensure_ascii, sort_keys);
    return jx_buf_value(&R->env, &b);
}

static jv f_trim(jx_run *R, jv v, jx_args *a) {
    jv *chars = jx_arg(a, 0, "chars");
    return jx_strip(R, jx_text(R, v), chars && chars->t != JV_NONE ? jx_text(R, *chars) : NULL, true, true);
}

static jv f_unique(jx_run *R, jv v, jx_args *a) {
    bool cs = flag_arg(a, 0, "case_sensitive", false);
    jv *attr = jx_arg(a, 1, "attribute");
    jx_list *l = seq_of(R, v);
    jv out = jv_list(&R->env, 0), seen = jv_list(&R->env, 0);
    for (size_t i = 0; i < l->n; i++) {
        jv k = attr && attr->t != JV_NONE ? attr_path(R, l->items[i], *attr) : l->items[i];
        if (!cs && k.t == JV_STR) k = jx_change_case(R, k.u.s, CASE_LOWER);
        bool dup = false;
        jx_tick(R, (unsigned)(seen.u.l->n / 8 + 1));
        for (size_t j = 0; j < seen.u.l->n && !dup; j++) dup = jv_equal(seen.u.l->items[j], k);
        if (dup) continue;
        jx_list_push(&R->env, seen.u.l, k);
        jx_list_push(&R->env, out.u.l, l->items[i]);
    }
    return out;
}

static jv f_wordcount(jx_run *R, jv v, jx_args *a) {
    (void)a;
    jx_str *s = jx_text(R, v);
    int64_t words = 0;
    bool in_word = false;
    for (size_t i = 0; i < s->len; i++) {
        unsigned char c = (unsigned char)s->s[i];
        bool w = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80;
        if (w && !in_word) words++;
        in_word = w;
    }
    return jv_int(words);
}

static jv f_truncate(jx_run *R, jv v, jx_args *a) {
    jx_str *s = jx_text(R, v);
    int64_t length = int_arg(R, a, 0, "length", 255);
    bool killwords = flag_arg(a, 1, "killwords", false);
    jv *endv = jx_arg(a, 2, "end");
    jx_str *end = endv ? jx_text(R, *endv) : jx_str_new(&R->env, "...", 3);
    int64_t leeway = int_arg(R, a, 3, "leeway", 5);
    int64_t n = (int64_t)jx_utf8_len(s->s, s->len), endn = (int64_t)jx_utf8_len(end->s, end->len);
    if (length < endn) jx_fail(&R->env, "expected length >= %lld, got %lld", (long long)endn, (long long)length);
    if (n <= length + leeway) return jv_strv(s);
    size_t cut = jx_utf8_offset(s->s, s->len, (size_t)(length - endn));
    jx_buf b = {0};
    if (killwords) {
        jx_buf_put(&R->env, &b, s->s, cut);
    } else {
        size_t sp = cut;
        while (sp > 0 && s->s[sp - 1] != ' ') sp--;
        if (sp > 0) sp--;
        jx_buf_put(&R->env, &b, s->s, sp);
    }
    jx_buf_put(&R->env, &b, end->s, end->len);
    return jx_buf_value(&R->env, &b);
}

static const struct {
    const char *name;
    jx_builtin fn;
} filters[] = {
    {"abs", f_abs},         {"attr", f_attr},           {"capitalize", f_capitalize}, {"center", f_center},
    {"count", f_length},    {"d", f_default},           {"default", f_default},       {"dictsort", f_dictsort},
    {"e", f_escape},        {"escape", f_escape},       {"first", f_first},           {"float", f_float},
    {"format", f_format},   {"indent", f_indent},       {"int", f_int},               {"items", f_items},
    {"join", f_join},       {"last", f_last},           {"length", f_length},         {"list", f_list},
    {"lower", f_lower},     {"map", f_map},             {"max", f_max},               {"min", f_min},
    {"pprint", f_pprint},   {"reject", f_reject},       {"rejectattr", f_rejectattr}, {"replace", f_replace},
    {"reverse", f_reverse}, {"round", f_round},         {"safe", f_safe},             {"select", f_select},
    {"selectattr", f_selectattr}, {"sort", f_sort},     {"string", f_string},         {"sum", f_sum},
    {"title", f_title},     {"tojson", f_tojson},       {"trim", f_trim},             {"truncate", f_truncate},
    {"unique", f_unique},   {"upper", f_upper},         {"wordcount", f_wordcount},
};

jx_builtin jx_find_filter(const char *name) {
    for (size_t i = 0; i < sizeof filters / sizeof filters[0]; i++)
        if (strcmp(filters[i].name, name) == 0) return filters[i].fn;
    return NULL;
}

jv jx_apply_filter(jx_run *R, const char *name, jv input, jx_args *a) {
    jx_builtin fn = jx_find_filter(name);
    if (!fn) jx_fail(&R->env, "no filter named '%s'", name);
    return fn(R, input, a);
}
