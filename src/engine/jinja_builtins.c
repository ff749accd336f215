/* Global functions (range, namespace, raise_exception, strftime_now, dict)
 * and tests (is defined, is string, ...) of the chat-template interpreter,
 * plus the argument helpers every built-in uses. */
#include "engine/jinja_interp.h"
#include "engine/jinja_text.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

jv *jx_arg(jx_args *a, size_t i, const char *kw) {
    if (i < a->npos) return &a->pos[i];
    if (kw)
        for (size_t k = 0; k < a->nkw; k++)
            if (strcmp(a->kwn[k], kw) == 0) return &a->kwv[k];
    return NULL;
}

jv jx_arg_or(jx_args *a, size_t i, const char *kw, jv def) {
    jv *v = jx_arg(a, i, kw);
    return v ? *v : def;
}

static int64_t int_arg(jx_run *R, jv v, const char *what) {
    if (v.t == JV_INT) return v.u.i;
    if (v.t == JV_BOOL) return v.u.b;
    jx_fail(&R->env, "%s must be an integer, not %s", what, jv_type_name(v));
}

/* ------------------------------------------------------------- globals */

static jv g_range(jx_run *R, jv self, jx_args *a) {
    (void)self;
    if (a->npos < 1 || a->npos > 3 || a->nkw) jx_fail(&R->env, "range() takes 1 to 3 positional arguments");
    int64_t start = 0, stop, step = 1;
    if (a->npos == 1) {
        stop = int_arg(R, a->pos[0], "range() argument");
    } else {
        start = int_arg(R, a->pos[0], "range() argument");
        stop = int_arg(R, a->pos[1], "range() argument");
        if (a->npos == 3) step = int_arg(R, a->pos[2], "range() argument");
    }
    if (step == 0) jx_fail(&R->env, "range() arg 3 must not be zero");
    double count = step > 0 ? ((double)stop - (double)start) / (double)step : ((double)start - (double)stop) / -(double)step;
    if (count > (double)R->max_iterations) jx_fail(&R->env, "range() too large (limit %ld items)", R->max_iterations);
    jv l = jv_list(&R->env, 0);
    for (int64_t i = start; step > 0 ? i < stop : i > stop;) {
        jx_count_iterations(R, 1);
        jx_list_push(&R->env, l.u.l, jv_int(i));
        if (__builtin_add_overflow(i, step, &i)) break;
    }
    return l;
}

static jv g_namespace(jx_run *R, jv self, jx_args *a) {
    (void)self;
    jv ns = jv_dict(&R->env, a->nkw);
    ns.u.d->ns = true;
    for (size_t i = 0; i < a->npos; i++) {
        if (a->pos[i].t != JV_DICT) jx_fail(&R->env, "namespace() takes a mapping and keyword arguments");
        const jx_dict *d = a->pos[i].u.d;
        for (size_t k = 0; k < d->n; k++) jx_dict_set(&R->env, ns.u.d, d->keys[k], d->vals[k]);
    }
    for (size_t k = 0; k < a->nkw; k++) jx_dict_sets(&R->env, ns.u.d, a->kwn[k], a->kwv[k]);
    return ns;
}

static jv g_dict(jx_run *R, jv self, jx_args *a) {
    (void)self;
    jv d = jv_dict(&R->env, 0);
    for (size_t i = 0; i < a->npos; i++) {
        jv src = a->pos[i];
        if (src.t == JV_DICT) {
            for (size_t k = 0; k < src.u.d->n; k++) jx_dict_set(&R->env, d.u.d, src.u.d->keys[k], src.u.d->vals[k]);
        } else if (src.t == JV_LIST) {
            for (size_t k = 0; k < src.u.l->n; k++) {
                jv p = src.u.l->items[k];
                if (p.t != JV_LIST || p.u.l->n != 2) jx_fail(&R->env, "dict() needs pairs");
                jx_dict_set(&R->env, d.u.d, p.u.l->items[0], p.u.l->items[1]);
            }
        } else {
            jx_fail(&R->env, "dict() takes a mapping or pairs, not %s", jv_type_name(src));
        }
    }
    for (size_t k = 0; k < a->nkw; k++) jx_dict_sets(&R->env, d.u.d, a->kwn[k], a->kwv[k]);
    return d;
}

static jv g_raise_exception(jx_run *R, jv self, jx_args *a) {
    (void)self;
    jv *m = jx_arg(a, 0, "message");
    jx_str *msg = m ? jx_text(R, *m) : jx_str_new(&R->env, "(no message)", 12);
    jx_fail(&R->env, "template raised an exception: %.400s", msg->s);
}

static jv g_strftime_now(jx_run *R, jv self, jx_args *a) {
    (void)self;
    jv *f = jx_arg(a, 0, "format");
    if (!f || f->t != JV_STR) jx_fail(&R->env, "strftime_now() needs a format string");
    struct tm tm;
    time_t t = R->now_fixed ? (time_t)R->now : time(NULL);
    if (R->now_fixed)
        gmtime_r(&t, &tm);
    else
        localtime_r(&t, &tm);
    if (f->u.s->len > 200) jx_fail(&R->env, "strftime_now() format too long");
    char out[1024];
    size_t n = strftime(out, sizeof out, f->u.s->s, &tm);
    return jv_str(&R->env, out, n);
}

jx_builtin jx_find_global(const char *name) {
    static const struct {
        const char *name;
        jx_builtin fn;
    } globals[] = {
        {"range", g_range},
        {"namespace", g_namespace},
        {"dict", g_dict},
        {"raise_exception", g_raise_exception},
        {"strftime_now", g_strftime_now},
    };
    for (size_t i = 0; i < sizeof globals / sizeof globals[0]; i++)
        if (strcmp(globals[i].name, name) == 0) return globals[i].fn;
    return NULL;
}

/* ------------------------------------------------------------- tests */

typedef bool (*test_fn)(jx_run *R, jv v, jx_args *a);

static jv test_arg(jx_run *R, jx_args *a, const char *test) {
    jv *o = jx_arg(a, 0, NULL);
    if (!o) jx_fail(&R->env, "test '%s' needs an argument", test);
    return *o;
}

static bool t_defined(jx_run *R, jv v, jx_args *a) { (void)R; (void)a; return v.t != JV_UNDEF; }
static bool t_undefined(jx_run *R, jv v, jx_args *a) { (void)R; (void)a; return v.t == JV_UNDEF; }
static bool t_none(jx_run *R, jv v, jx_args *a) { (void)R; (void)a; return v.t == JV_NONE; }
static bool t_boolean(jx_run *R, jv v, jx_args *a) { (void)R; (void)a; return v.t == JV_BOOL; }
static bool t_true(jx_run *R, jv v, jx_args *a) { (void)R; (void)a; return v.t == JV_BOOL && v.u.b; }
static bool t_false(jx_run *R, jv v, jx_args *a) { (void)R; (void)a; return v.t == JV_BOOL && !v.u.b; }
static bool t_integer(jx_run *R, jv v, jx_args *a) { (void)R; (void)a; return v.t == JV_INT; }
static bool t_float(jx_run *R, jv v, jx_args *a) { (void)R; (void)a; return v.t == JV_FLOAT; }
static bool t_number(jx_run *R, jv v, jx_args *a) { (void)R; (void)a; return jv_is_num(v); }
static bool t_string(jx_run *R, jv v, jx_args *a) { (void)R; (void)a; return v.t == JV_STR; }
static bool t_mapping(jx_run *R, jv v, jx_args *a) { (void)R; (void)a; return v.t == JV_DICT && !v.u.d->ns; }
static bool t_iterable(jx_run *R, jv v, jx_args *a) {
    (void)R;
    (void)a;
    return v.t == JV_STR || v.t == JV_LIST || (v.t == JV_DICT && !v.u.d->ns) || v.t == JV_UNDEF;
}
static bool t_sequence(jx_run *R, jv v, jx_args *a) { return t_iterable(R, v, a); }
static bool t_callable(jx_run *R, jv v, jx_args *a) { (void)R; (void)a; return v.t == JV_FUNC; }
static bool t_escaped(jx_run *R, jv v, jx_args *a) { (void)R; (void)a; (void)v; return false; }

static int64_t int_of(jx_run *R, jv v, const char *test) {
    if (v.t == JV_UNDEF) jx_undefined_fail(R, v);
    if (v.t == JV_INT || v.t == JV_BOOL) return v.t == JV_BOOL ? v.u.b : v.u.i;
    if (v.t == JV_FLOAT) return (int64_t)v.u.f;
    jx_fail(&R->env, "test '%s' needs a number, not %s", test, jv_type_name(v));
}
static bool t_odd(jx_run *R, jv v, jx_args *a) { (void)a; return (int_of(R, v, "odd") & 1) != 0; }
static bool t_even(jx_run *R, jv v, jx_args *a) { (void)a; return (int_of(R, v, "even") & 1) == 0; }
static bool t_divisibleby(jx_run *R, jv v, jx_args *a) {
    int64_t d = int_of(R, test_arg(R, a, "divisibleby"), "divisibleby");
    if (d == 0) jx_fail(&R->env, "division by zero");
    if (d == -1) return true;
    return int_of(R, v, "divisibleby") % d == 0;
}

static int cmp_arg(jx_run *R, jv v, jx_args *a, const char *test) {
    jv o = test_arg(R, a, test);
    if (v.t == JV_UNDEF) jx_undefined_fail(R, v);
    if (o.t == JV_UNDEF) jx_undefined_fail(R, o);
    if (!(jv_is_num(v) && jv_is_num(o)) && v.t != o.t)
        jx_fail(&R->env, "'%s' not supported between instances of '%s' and '%s'", test, jv_type_name(v), jv_type_name(o));
    return jv_compare(&R->env, v, o, false);
}
static bool t_eq(jx_run *R, jv v, jx_args *a) { return jv_equal(v, test_arg(R, a, "eq")); }
static bool t_ne(jx_run *R, jv v, jx_args *a) { return !jv_equal(v, test_arg(R, a, "ne")); }
static bool t_lt(jx_run *R, jv v, jx_args *a) { return cmp_arg(R, v, a, "<") < 0; }
static bool t_le(jx_run *R, jv v, jx_args *a) { return cmp_arg(R, v, a, "<=") <= 0; }
static bool t_gt(jx_run *R, jv v, jx_args *a) { return cmp_arg(R, v, a, ">") > 0; }
static bool t_ge(jx_run *R, jv v, jx_args *a) { return cmp_arg(R, v, a, ">=") >= 0; }

static bool t_in(jx_run *R, jv v, jx_args *a) {
    jv seq = test_arg(R, a, "in");
    switch (seq.t) {
    case JV_STR: {
        if (v.t != JV_STR) jx_fail(&R->env, "'in <string>' requires string as left operand, not %s", jv_type_name(v));
        return jx_find(&R->env, seq.u.s, v.u.s, 0, seq.u.s->len, false) >= 0;
    }
    case JV_LIST:
        for (size_t i = 0; i < seq.u.l->n; i++)
            if (jv_equal(seq.u.l->items[i], v)) return true;
        return false;
    case JV_DICT: return jx_dict_get(seq.u.d, v) != NULL;
    case JV_UNDEF: return false;
    default: jx_fail(&R->env, "argument of type '%s' is not iterable", jv_type_name(seq));
    }
}

static bool t_lower(jx_run *R, jv v, jx_args *a) {
    (void)a;
    jx_str *s = jx_text(R, v);
    bool cased = false;
    for (size_t i = 0; i < s->len;) {
        size_t k;
        uint32_t cp = jx_utf8_decode(s->s + i, s->len - i, &k);
        if (jx_lower_cp(cp) != cp) return false;
        if (jx_upper_cp(cp) != cp) cased = true;
        i += k;
    }
    return cased;
}

static bool t_upper(jx_run *R, jv v, jx_args *a) {
    (void)a;
    jx_str *s = jx_text(R, v);
    bool cased = false;
    for (size_t i = 0; i < s->len;) {
        size_t k;
        uint32_t cp = jx_utf8_decode(s->s + i, s->len - i, &k);
        if (jx_upper_cp(cp) != cp) return false;
        if (jx_lower_cp(cp) != cp) cased = true;
        i += k;
    }
    return cased;
}

static bool t_sameas(jx_run *R, jv v, jx_args *a) {
    jv o = test_arg(R, a, "sameas");
    if (v.t != o.t) return false;
    switch (v.t) {
    case JV_LIST: return v.u.l == o.u.l;
    case JV_DICT: return v.u.d == o.u.d;
    case JV_FUNC: return v.u.fn == o.u.fn;
    case JV_STR: return v.u.s == o.u.s || jv_equal(v, o);
    default: return jv_equal(v, o);
    }
}

static bool t_filter(jx_run *R, jv v, jx_args *a) { (void)R; (void)a; return v.t == JV_STR && jx_find_filter(v.u.s->s) != NULL; }
static bool t_test(jx_run *R, jv v, jx_args *a) { (void)R; (void)a; return v.t == JV_STR && jx_test_exists(v.u.s->s); }

static const struct {
    const char *name;
    test_fn fn;
} tests[] = {
    {"defined", t_defined},   {"undefined", t_undefined}, {"none", t_none},         {"boolean", t_boolean},
    {"true", t_true},         {"false", t_false},         {"integer", t_integer},   {"float", t_float},
    {"number", t_number},     {"string", t_string},       {"mapping", t_mapping},   {"iterable", t_iterable},
    {"sequence", t_sequence}, {"callable", t_callable},   {"escaped", t_escaped},   {"odd", t_odd},
    {"even", t_even},         {"divisibleby", t_divisibleby}, {"eq", t_eq},         {"equalto", t_eq},
    {"==", t_eq},             {"ne", t_ne},               {"!=", t_ne},             {"lt", t_lt},
    {"lessthan", t_lt},       {"<", t_lt},                {"le", t_le},             {"<=", t_le},
    {"gt", t_gt},             {"greaterthan", t_gt},      {">", t_gt},              {"ge", t_ge},
    {">=", t_ge},             {"in", t_in},               {"lower", t_lower},       {"upper", t_upper},
    {"sameas", t_sameas},     {"filter", t_filter},       {"test", t_test},
};

static test_fn find_test(const char *name) {
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++)
        if (strcmp(tests[i].name, name) == 0) return tests[i].fn;
    return NULL;
}

bool jx_test_exists(const char *name) { return find_test(name) != NULL; }

bool jx_run_test(jx_run *R, const char *name, jv v, jx_args *a, bool *found) {
    test_fn fn = find_test(name);
    *found = fn != NULL;
    return fn ? fn(R, v, a) : false;
}
