/* Methods of values in chat templates: Python's str, list and dict
 * methods that templates call ("x".strip(), d.items(), l.append(x)), and
 * the fields and methods of the `loop` variable. */
#include "engine/jinja_interp.h"
#include "engine/jinja_text.h"

#include <string.h>

static jx_str *str_arg(jx_run *R, jx_args *a, size_t i, const char *what) {
    jv *v = jx_arg(a, i, NULL);
    if (!v) jx_fail(&R->env, "%s() needs an argument", what);
    if (v->t != JV_STR) jx_fail(&R->env, "%s() argument must be str, not %s", what, jv_type_name(*v));
    return v->u.s;
}

static jx_str *opt_str(jx_run *R, jx_args *a, size_t i, const char *kw, const char *what) {
    jv *v = jx_arg(a, i, kw);
    if (!v || v->t == JV_NONE) return NULL;
    if (v->t != JV_STR) jx_fail(&R->env, "%s() argument must be str or None, not %s", what, jv_type_name(*v));
    return v->u.s;
}

static int64_t opt_int(jx_run *R, jx_args *a, size_t i, const char *kw, int64_t def) {
    jv *v = jx_arg(a, i, kw);
    if (!v || v->t == JV_NONE) return def;
    if (v->t == JV_INT) return v->u.i;
    if (v->t == JV_BOOL) return v->u.b;
    jx_fail(&R->env, "an integer is required, not %s", jv_type_name(*v));
}

/* Byte range of s for optional code point indices start/end (Python slicing rules). */
static void cp_range(jx_run *R, const jx_str *s, jx_args *a, size_t first, size_t *from, size_t *to) {
    int64_t n = (int64_t)jx_utf8_len(s->s, s->len);
    int64_t st = opt_int(R, a, first, NULL, 0), en = opt_int(R, a, first + 1, NULL, n);
    if (st < 0) st += n;
    if (en < 0) en += n;
    if (st < 0) st = 0;
    if (en > n) en = n;
    if (st > n) st = n;
    if (en < st) en = st;
    *from = jx_utf8_offset(s->s, s->len, (size_t)st);
    *to = jx_utf8_offset(s->s, s->len, (size_t)en);
}

/* ------------------------------------------------------------- str */

static jv m_strip(jx_run *R, jv s, jx_args *a) { return jx_strip(R, s.u.s, opt_str(R, a, 0, "chars", "strip"), true, true); }
static jv m_lstrip(jx_run *R, jv s, jx_args *a) { return jx_strip(R, s.u.s, opt_str(R, a, 0, "chars", "lstrip"), true, false); }
static jv m_rstrip(jx_run *R, jv s, jx_args *a) { return jx_strip(R, s.u.s, opt_str(R, a, 0, "chars", "rstrip"), false, true); }
static jv m_upper(jx_run *R, jv s, jx_args *a) { (void)a; return jx_change_case(R, s.u.s, CASE_UPPER); }
static jv m_lower(jx_run *R, jv s, jx_args *a) { (void)a; return jx_change_case(R, s.u.s, CASE_LOWER); }
static jv m_title(jx_run *R, jv s, jx_args *a) { (void)a; return jx_change_case(R, s.u.s, CASE_TITLE_PY); }
static jv m_capitalize(jx_run *R, jv s, jx_args *a) { (void)a; return jx_change_case(R, s.u.s, CASE_CAPITALIZE); }
static jv m_swapcase(jx_run *R, jv s, jx_args *a) { (void)a; return jx_change_case(R, s.u.s, CASE_SWAP); }

static jv m_split(jx_run *R, jv s, jx_args *a) {
    return jx_split(R, s.u.s, opt_str(R, a, 0, "sep", "split"), opt_int(R, a, 1, "maxsplit", -1), false);
}
static jv m_rsplit(jx_run *R, jv s, jx_args *a) {
    return jx_split(R, s.u.s, opt_str(R, a, 0, "sep", "rsplit"), opt_int(R, a, 1, "maxsplit", -1), true);
}
static jv m_splitlines(jx_run *R, jv s, jx_args *a) {
    jv *k = jx_arg(a, 0, "keepends");
    return jx_splitlines(R, s.u.s, k && jv_truthy(*k));
}

static jv starts_ends(jx_run *R, jv s, jx_args *a, bool ends) {
    jv *p = jx_arg(a, 0, NULL);
    if (!p) jx_fail(&R->env, "%s() needs an argument", ends ? "endswith" : "startswith");
    size_t from, to;
    cp_range(R, s.u.s, a, 1, &from, &to);
    jv *cands = p;
    size_t nc = 1;
    if (p->t == JV_LIST) {
        cands = p->u.l->items;
        nc = p->u.l->n;
    }
    for (size_t i = 0; i < nc; i++) {
        if (cands[i].t != JV_STR)
            jx_fail(&R->env, "%s first arg must be str or a tuple of str, not %s", ends ? "endswith" : "startswith",
                    jv_type_name(cands[i]));
        const jx_str *x = cands[i].u.s;
        if (x->len > to - from) continue;
        const char *at = ends ? s.u.s->s + to - x->len : s.u.s->s + from;
        if (memcmp(at, x->s, x->len) == 0) return jv_bool(true);
    }
    return jv_bool(false);
}
static jv m_startswith(jx_run *R, jv s, jx_args *a) { return starts_ends(R, s, a, false); }
static jv m_endswith(jx_run *R, jv s, jx_args *a) { return starts_ends(R, s, a, true); }

static jv m_replace(jx_run *R, jv s, jx_args *a) {
    return jx_replace(R, s.u.s, str_arg(R, a, 0, "replace"), str_arg(R, a, 1, "replace"), opt_int(R, a, 2, "count", -1));
}

static jv find_common(jx_run *R, jv s, jx_args *a, bool reverse, bool raise) {
    const jx_str *sub = str_arg(R, a, 0, reverse ? "rfind" : "find");
    size_t from, to;
    cp_range(R, s.u.s, a, 1, &from, &to);
    int64_t p = jx_find(&R->env, s.u.s, sub, from, to, reverse);
    if (p < 0) {
        if (raise) jx_fail(&R->env, "substring not found");
        return jv_int(-1);
    }
    return jv_int((int64_t)jx_utf8_len(s.u.s->s, (size_t)p));
}
static jv m_find(jx_run *R, jv s, jx_args *a) { return find_common(R, s, a, false, false); }
static jv m_rfind(jx_run *R, jv s, jx_args *a) { return find_common(R, s, a, true, false); }
static jv m_index(jx_run *R, jv s, jx_args *a) { return find_common(R, s, a, false, true); }
static jv m_rindex(jx_run *R, jv s, jx_args *a) { return find_common(R, s, a, true, true); }

static jv m_count(jx_run *R, jv s, jx_args *a) {
    const jx_str *sub = str_arg(R, a, 0, "count");
    size_t from, to;
    cp_range(R, s.u.s, a, 1, &from, &to);
    if (sub->len == 0) return jv_int((int64_t)jx_utf8_len(s.u.s->s + from, to - from) + 1);
    int64_t n = 0;
    for (;;) {
        int64_t p = jx_find(&R->env, s.u.s, sub, from, to, false);
        if (p < 0) break;
        n++;
        from = (size_t)p + sub->len;
    }
    return jv_int(n);
}

static jv m_join(jx_run *R, jv s, jx_args *a) {
    jv *it = jx_arg(a, 0, NULL);
    if (!it) jx_fail(&R->env, "join() needs an argument");
    jx_list *l = jx_iter_list(R, *it);
    jx_buf b = {0};
    for (size_t i = 0; i < l->n; i++) {
        if (l->items[i].t != JV_STR)
            jx_fail(&R->env, "sequence item %zu: expected str instance, %s found", i, jv_type_name(l->items[i]));
        if (i) jx_buf_put(&R->env, &b, s.u.s->s, s.u.s->len);
        jx_buf_put(&R->env, &b, l->items[i].u.s->s, l->items[i].u.s->len);
    }
    if (!b.p) return jv_str(&R->env, "", 0);
    return jx_buf_value(&R->env, &b);
}

typedef bool (*cp_pred)(uint32_t cp);
static bool is_digit_cp(uint32_t cp) { return cp >= '0' && cp <= '9'; }
static bool is_alnum_cp(uint32_t cp) { return is_digit_cp(cp) || jx_is_alpha_cp(cp); }

static jv all_cps(jv s, cp_pred pred) {
    if (s.u.s->len == 0) return jv_bool(false);
    for (size_t i = 0; i < s.u.s->len;) {
        size_t k;
        if (!pred(jx_utf8_decode(s.u.s->s + i, s.u.s->len - i, &k))) return jv_bool(false);
        i += k;
    }
    return jv_bool(true);
}
static jv m_isdigit(jx_run *R, jv s, jx_args *a) { (void)R; (void)a; return all_cps(s, is_digit_cp); }
static jv m_isalpha(jx_run *R, jv s, jx_args *a) { (void)R; (void)a; return all_cps(s, jx_is_alpha_cp); }
static jv m_isalnum(jx_run *R, jv s, jx_args *a) { (void)R; (void)a; return all_cps(s, is_alnum_cp); }
static jv m_isspace(jx_run *R, jv s, jx_args *a) { (void)R; (void)a; return all_cps(s, jx_is_space_cp); }

static jv case_test(jv s, bool want_lower) {
    bool cased = false;
    for (size_t i = 0; i < s.u.s->len;) {
        size_t k;
        uint32_t cp = jx_utf8_decode(s.u.s->s + i, s.u.s->len - i, &k);
        if (want_lower ? jx_lower_cp(cp) != cp : jx_upper_cp(cp) != cp) return jv_bool(false);
        if (jx_is_cased_letter(cp)) cased = true;
        i += k;
    }
    return jv_bool(cased);
}
static jv m_islower(jx_run *R, jv s, jx_args *a) { (void)R; (void)a; return case_test(s, true); }
static jv m_isupper(jx_run *R, jv s, jx_args *a) { (void)R; (void)a; return case_test(s, false); }

static jv m_removeprefix(jx_run *R, jv s, jx_args *a) {
    const jx_str *p = str_arg(R, a, 0, "removeprefix");
    if (p->len <= s.u.s->len && memcmp(s.u.s->s, p->s, p->len) == 0) return jv_str(&R->env, s.u.s->s + p->len, s.u.s->len - p->len);
    return s;
}
static jv m_removesuffix(jx_run *R, jv s, jx_args *a) {
    const jx_str *p = str_arg(R, a, 0, "removesuffix");
    if (p->len && p->len <= s.u.s->len && memcmp(s.u.s->s + s.u.s->len - p->len, p->s, p->len) == 0)
        return jv_str(&R->env, s.u.s->s, s.u.s->len - p->len);
    return s;
}

static jv partition(jx_run *R, jv s, jx_args *a, bool reverse) {
    const jx_str *sep = str_arg(R, a, 0, reverse ? "rpartition" : "partition");
    if (sep->len == 0) jx_fail(&R->env, "empty separator");
    int64_t p = jx_find(&R->env, s.u.s, sep, 0, s.u.s->len, reverse);
    jv t = jv_tuple(&R->env, 3);
    jv empty = jv_str(&R->env, "", 0);
    if (p < 0) {
        jx_list_push(&R->env, t.u.l, reverse ? empty : s);
        jx_list_push(&R->env, t.u.l, empty);
        jx_list_push(&R->env, t.u.l, reverse ? s : empty);
        return t;
    }
    jx_list_push(&R->env, t.u.l, jv_str(&R->env, s.u.s->s, (size_t)p));
    jx_list_push(&R->env, t.u.l, jv_strv((jx_str *)sep));
    jx_list_push(&R->env, t.u.l, jv_str(&R->env, s.u.s->s + p + sep->len, s.u.s->len - (size_t)p - sep->len));
    return t;
}
static jv m_partition(jx_run *R, jv s, jx_args *a) { return partition(R, s, a, false); }
static jv m_rpartition(jx_run *R, jv s, jx_args *a) { return partition(R, s, a, true); }

static jv justify(jx_run *R, jv s, jx_args *a, int mode /* 0 left, 1 right, 2 zfill */) {
    int64_t width = opt_int(R, a, 0, "width", 0);
    if (width > 100000) jx_fail(&R->env, "width too large");
    jx_str *fill = opt_str(R, a, 1, "fillchar", "ljust");
    int64_t n = (int64_t)jx_utf8_len(s.u.s->s, s.u.s->len);
    if (width <= n) return s;
    const char *fc = mode == 2 ? "0" : fill ? fill->s : " ";
    size_t fl = mode == 2 ? 1 : fill ? fill->len : 1;
    jx_buf b = {0};
    size_t sign = 0;
    if (mode == 2 && s.u.s->len && (s.u.s->s[0] == '-' || s.u.s->s[0] == '+')) {
        jx_buf_putc(&R->env, &b, s.u.s->s[0]);
        sign = 1;
    }
    if (mode == 0) jx_buf_put(&R->env, &b, s.u.s->s, s.u.s->len);
    for (int64_t i = n; i < width; i++) jx_buf_put(&R->env, &b, fc, fl);
    if (mode != 0) jx_buf_put(&R->env, &b, s.u.s->s + sign, s.u.s->len - sign);
    return jx_buf_value(&R->env, &b);
}
static jv m_ljust(jx_run *R, jv s, jx_args *a) { return justify(R, s, a, 0); }
static jv m_rjust(jx_run *R, jv s, jx_args *a) { return justify(R, s, a, 1); }
static jv m_zfill(jx_run *R, jv s, jx_args *a) { return justify(R, s, a, 2); }

/* ------------------------------------------------------------- list */

static jv m_append(jx_run *R, jv l, jx_args *a) {
    jv *x = jx_arg(a, 0, NULL);
    if (!x) jx_fail(&R->env, "append() takes exactly one argument");
    if (l.u.l->tuple) jx_fail(&R->env, "'tuple' object has no attribute 'append'");
    jx_list_push(&R->env, l.u.l, *x);
    return jv_none();
}

static jv m_extend(jx_run *R, jv l, jx_args *a) {
    jv *x = jx_arg(a, 0, NULL);
    if (!x) jx_fail(&R->env, "extend() takes exactly one argument");
    jx_list *src = jx_iter_list(R, *x);
    for (size_t i = 0; i < src->n; i++) jx_list_push(&R->env, l.u.l, src->items[i]);
    return jv_none();
}

static jv m_insert(jx_run *R, jv l, jx_args *a) {
    int64_t i = opt_int(R, a, 0, NULL, 0);
    jv *x = jx_arg(a, 1, NULL);
    if (!x) jx_fail(&R->env, "insert() takes exactly two arguments");
    int64_t n = (int64_t)l.u.l->n;
    if (i < 0) i += n;
    if (i < 0) i = 0;
    if (i > n) i = n;
    jx_list_push(&R->env, l.u.l, jv_none());
    memmove(&l.u.l->items[i + 1], &l.u.l->items[i], (size_t)(n - i) * sizeof(jv));
    l.u.l->items[i] = *x;
    return jv_none();
}

static jv m_pop(jx_run *R, jv self, jx_args *a) {
    if (self.t == JV_DICT) {
        jv *k = jx_arg(a, 0, NULL);
        if (!k) jx_fail(&R->env, "pop expected at least 1 argument");
        jv *v = jx_dict_get(self.u.d, *k);
        if (!v) {
            jv *def = jx_arg(a, 1, NULL);
            if (def) return *def;
            jx_fail(&R->env, "key not found in pop()");
        }
        jv r = *v;
        jx_dict_del(self.u.d, *k);
        return r;
    }
    int64_t n = (int64_t)self.u.l->n;
    if (n == 0) jx_fail(&R->env, "pop from empty list");
    int64_t i = opt_int(R, a, 0, NULL, -1);
    if (i < 0) i += n;
    if (i < 0 || i >= n) jx_fail(&R->env, "pop index out of range");
    jv r = self.u.l->items[i];
    memmove(&self.u.l->items[i], &self.u.l->items[i + 1], (size_t)(n - i - 1) * sizeof(jv));
    self.u.l->n--;
    return r;
}

static jv m_list_index(jx_run *R, jv l, jx_args *a) {
    jv *x = jx_arg(a, 0, NULL);
    if (!x) jx_fail(&R->env, "index() takes at least 1 argument");
    for (size_t i = 0; i < l.u.l->n; i++)
        if (jv_equal(l.u.l->items[i], *x)) return jv_int((int64_t)i);
    jx_fail(&R->env, "value is not in list");
}

static jv m_list_count(jx_run *R, jv l, jx_args *a) {
    jv *x = jx_arg(a, 0, NULL);
    if (!x) jx_fail(&R->env, "count() takes exactly one argument");
    int64_t n = 0;
    for (size_t i = 0; i < l.u.l->n; i++)
        if (jv_equal(l.u.l->items[i], *x)) n++;
    return jv_int(n);
}

static jv m_remove(jx_run *R, jv l, jx_args *a) {
    jv *x = jx_arg(a, 0, NULL);
    if (!x) jx_fail(&R->env, "remove() takes exactly one argument");
    for (size_t i = 0; i < l.u.l->n; i++) {
        if (jv_equal(l.u.l->items[i], *x)) {
            memmove(&l.u.l->items[i], &l.u.l->items[i + 1], (l.u.l->n - i - 1) * sizeof(jv));
            l.u.l->n--;
            return jv_none();
        }
    }
    jx_fail(&R->env, "list.remove(x): x not in list");
}

static jv m_copy(jx_run *R, jv self, jx_args *a) {
    (void)a;
    if (self.t == JV_DICT) {
        jv d = jv_dict(&R->env, self.u.d->n);
        for (size_t i = 0; i < self.u.d->n; i++) jx_dict_set(&R->env, d.u.d, self.u.d->keys[i], self.u.d->vals[i]);
        return d;
    }
    jv l = self.u.l->tuple ? jv_tuple(&R->env, self.u.l->n) : jv_list(&R->env, self.u.l->n);
    for (size_t i = 0; i < self.u.l->n; i++) jx_list_push(&R->env, l.u.l, self.u.l->items[i]);
    return l;
}

static jv m_clear(jx_run *R, jv self, jx_args *a) {
    (void)R;
    (void)a;
    if (self.t == JV_DICT)
        self.u.d->n = 0;
    else
        self.u.l->n = 0;
    return jv_none();
}

static jv m_list_reverse(jx_run *R, jv l, jx_args *a) {
    (void)R;
    (void)a;
    for (size_t i = 0, j = l.u.l->n; i + 1 < j; i++, j--) {
        jv t = l.u.l->items[i];
        l.u.l->items[i] = l.u.l->items[j - 1];
        l.u.l->items[j - 1] = t;
    }
    return jv_none();
}

/* ------------------------------------------------------------- dict */

static jv m_items(jx_run *R, jv d, jx_args *a) {
    (void)a;
    jv out = jv_list(&R->env, d.u.d->n);
    for (size_t i = 0; i < d.u.d->n; i++) {
        jv p = jv_tuple(&R->env, 2);
        jx_list_push(&R->env, p.u.l, d.u.d->keys[i]);
        jx_list_push(&R->env, p.u.l, d.u.d->vals[i]);
        jx_list_push(&R->env, out.u.l, p);
    }
    return out;
}

static jv m_keys(jx_run *R, jv d, jx_args *a) {
    (void)a;
    jv out = jv_list(&R->env, d.u.d->n);
    for (size_t i = 0; i < d.u.d->n; i++) jx_list_push(&R->env, out.u.l, d.u.d->keys[i]);
    return out;
}

static jv m_values(jx_run *R, jv d, jx_args *a) {
    (void)a;
    jv out = jv_list(&R->env, d.u.d->n);
    for (size_t i = 0; i < d.u.d->n; i++) jx_list_push(&R->env, out.u.l, d.u.d->vals[i]);
    return out;
}

static jv m_get(jx_run *R, jv d, jx_args *a) {
    jv *k = jx_arg(a, 0, NULL);
    if (!k) jx_fail(&R->env, "get expected at least 1 argument");
    jv *v = jx_dict_get(d.u.d, *k);
    if (v) return *v;
    return jx_arg_or(a, 1, NULL, jv_none());
}

static jv m_update(jx_run *R, jv d, jx_args *a) {
    for (size_t i = 0; i < a->npos; i++) {
        jv src = a->pos[i];
        if (src.t != JV_DICT) jx_fail(&R->env, "update() needs a mapping, not %s", jv_type_name(src));
        for (size_t k = 0; k < src.u.d->n; k++) jx_dict_set(&R->env, d.u.d, src.u.d->keys[k], src.u.d->vals[k]);
    }
    for (size_t k = 0; k < a->nkw; k++) jx_dict_sets(&R->env, d.u.d, a->kwn[k], a->kwv[k]);
    return jv_none();
}

static jv m_setdefault(jx_run *R, jv d, jx_args *a) {
    jv *k = jx_arg(a, 0, NULL);
    if (!k) jx_fail(&R->env, "setdefault expected at least 1 argument");
    jv *v = jx_dict_get(d.u.d, *k);
    if (v) return *v;
    jv def = jx_arg_or(a, 1, NULL, jv_none());
    jx_dict_set(&R->env, d.u.d, *k, def);
    return def;
}

/* ------------------------------------------------------------- loop */

static jv m_cycle(jx_run *R, jv loop, jx_args *a) {
    if (a->npos == 0) jx_fail(&R->env, "no items for cycling given");
    return a->pos[loop.u.loop->index0 % a->npos];
}

static jv m_changed(jx_run *R, jv loop, jx_args *a) {
    jv cur = jv_tuple(&R->env, a->npos);
    for (size_t i = 0; i < a->npos; i++) jx_list_push(&R->env, cur.u.l, a->pos[i]);
    jx_loop *l = loop.u.loop;
    if (l->changed_seen && jv_equal(l->changed_last, cur)) return jv_bool(false);
    l->changed_seen = true;
    l->changed_last = cur;
    return jv_bool(true);
}

jv jx_loop_attr(jx_run *R, jx_loop *l, const char *name, bool *found) {
    size_t n = l->items->n, i = l->index0;
    *found = true;
    if (!strcmp(name, "index")) return jv_int((int64_t)i + 1);
    if (!strcmp(name, "index0")) return jv_int((int64_t)i);
    if (!strcmp(name, "revindex")) return jv_int((int64_t)(n - i));
    if (!strcmp(name, "revindex0")) return jv_int((int64_t)(n - i - 1));
    if (!strcmp(name, "first")) return jv_bool(i == 0);
    if (!strcmp(name, "last")) return jv_bool(i + 1 == n);
    if (!strcmp(name, "length")) return jv_int((int64_t)n);
    if (!strcmp(name, "depth")) return jv_int(l->depth0 + 1);
    if (!strcmp(name, "depth0")) return jv_int(l->depth0);
    if (!strcmp(name, "previtem"))
        return i > 0 ? l->items->items[i - 1] : jv_undef_named(&R->env, "there is no previous item");
    if (!strcmp(name, "nextitem"))
        return i + 1 < n ? l->items->items[i + 1] : jv_undef_named(&R->env, "there is no next item");
    *found = false;
    return jv_undef();
}

/* ------------------------------------------------------------- lookup */

typedef struct {
    const char *name;
    jx_builtin fn;
} method;

static const method str_methods[] = {
    {"strip", m_strip},       {"lstrip", m_lstrip},         {"rstrip", m_rstrip},         {"upper", m_upper},
    {"lower", m_lower},       {"title", m_title},           {"capitalize", m_capitalize}, {"swapcase", m_swapcase},
    {"split", m_split},       {"rsplit", m_rsplit},         {"splitlines", m_splitlines}, {"startswith", m_startswith},
    {"endswith", m_endswith}, {"replace", m_replace},       {"find", m_find},             {"rfind", m_rfind},
    {"index", m_index},       {"rindex", m_rindex},         {"count", m_count},           {"join", m_join},
    {"isdigit", m_isdigit},   {"isnumeric", m_isdigit},     {"isdecimal", m_isdigit},     {"isalpha", m_isalpha},
    {"isalnum", m_isalnum},   {"isspace", m_isspace},       {"islower", m_islower},       {"isupper", m_isupper},
    {"removeprefix", m_removeprefix}, {"removesuffix", m_removesuffix}, {"partition", m_partition},
    {"rpartition", m_rpartition}, {"ljust", m_ljust},       {"rjust", m_rjust},           {"zfill", m_zfill},
};

static const method list_methods[] = {
    {"append", m_append}, {"extend", m_extend}, {"insert", m_insert},     {"pop", m_pop},
    {"index", m_list_index}, {"count", m_list_count}, {"remove", m_remove}, {"copy", m_copy},
    {"clear", m_clear},   {"reverse", m_list_reverse},
};

static const method dict_methods[] = {
    {"items", m_items}, {"keys", m_keys}, {"values", m_values},        {"get", m_get},   {"update", m_update},
    {"pop", m_pop},     {"copy", m_copy}, {"setdefault", m_setdefault}, {"clear", m_clear},
};

static const method loop_methods[] = {{"cycle", m_cycle}, {"changed", m_changed}};

static jx_builtin find_in(const method *m, size_t n, const char *name) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(m[i].name, name) == 0) return m[i].fn;
    return NULL;
}

jx_builtin jx_find_method(jv self, const char *name) {
    switch (self.t) {
    case JV_STR: return find_in(str_methods, sizeof str_methods / sizeof str_methods[0], name);
    case JV_LIST: return find_in(list_methods, sizeof list_methods / sizeof list_methods[0], name);
    case JV_DICT: return self.u.d->ns ? NULL : find_in(dict_methods, sizeof dict_methods / sizeof dict_methods[0], name);
    case JV_LOOP: return find_in(loop_methods, sizeof loop_methods / sizeof loop_methods[0], name);
    default: return NULL;
    }
}
