/* Interpreter of the chat-template language: the parse and render entry
 * points, scopes, expression evaluation, calls and statement execution
 * (value access is in jinja_access.c, operators in jinja_ops.c). */
#include "engine/jinja_interp.h"
#include "engine/jinja_text.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PARSE_MEMORY (64u << 20)
#define MAX_EVAL_DEPTH 600

/* ------------------------------------------------------------- errors */

void jx_rfail(jx_run *R, const jx_node *n, const char *fmt, ...) {
    char msg[480];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n) R->env.pos = n->pos;
    jx_fail(&R->env, "%s", msg);
}

void jx_undefined_fail(jx_run *R, jv v) {
    if (v.t == JV_UNDEF && v.u.s) jx_fail(&R->env, "%s", v.u.s->s);
    jx_fail(&R->env, "undefined value");
}

jv jx_undef_hint(jx_run *R, const char *fmt, ...) {
    char msg[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return jv_undef_named(&R->env, msg);
}

jv jx_builtin_func(jx_run *R, const char *name, jx_builtin fn, jv self) {
    jv v = {.t = JV_FUNC};
    v.u.fn = jx_alloc(&R->env, sizeof(jx_func));
    v.u.fn->kind = FN_BUILTIN;
    v.u.fn->name = name;
    v.u.fn->fn = fn;
    v.u.fn->self = self;
    return v;
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

void jx_tick(jx_run *R, unsigned units) {
    R->ticks += units;
    if (R->ticks < 4096) return;
    R->ticks = 0;
    if (now_ms() > R->deadline_ms) jx_fail(&R->env, "template took too long to render (time limit reached)");
}

void jx_count_iterations(jx_run *R, long n) {
    if (n < 0 || R->iterations > R->max_iterations - n)
        jx_fail(&R->env, "too many loop iterations (limit %ld)", R->max_iterations);
    R->iterations += n;
    jx_tick(R, (unsigned)(n < 4096 ? 16 * n + 1 : 65536));
}

/* ------------------------------------------------------------- scopes */

static jx_frame *frame_new(jx_run *R, jx_frame *parent) {
    jx_frame *f = jx_alloc(&R->env, sizeof *f);
    f->parent = parent;
    return f;
}

static jv *frame_find(jx_frame *f, const char *name) {
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(f->names[i], name) == 0) return &f->vals[i];
    return NULL;
}

static void frame_set(jx_run *R, jx_frame *f, const char *name, jv v) {
    jv *slot = frame_find(f, name);
    if (slot) {
        *slot = v;
        return;
    }
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 8;
        const char **names = jx_alloc(&R->env, cap * sizeof *names);
        jv *vals = jx_alloc(&R->env, cap * sizeof *vals);
        if (f->n) {
            memcpy(names, f->names, f->n * sizeof *names);
            memcpy(vals, f->vals, f->n * sizeof *vals);
        }
        f->names = names;
        f->vals = vals;
        f->cap = cap;
    }
    f->names[f->n] = name;
    f->vals[f->n] = v;
    f->n++;
}

static jv lookup(jx_run *R, jx_frame *f, const char *name) {
    for (; f; f = f->parent) {
        jv *v = frame_find(f, name);
        if (v) return *v;
    }
    jx_builtin g = jx_find_global(name);
    if (g) return jx_builtin_func(R, name, g, jv_none());
    return jx_undef_hint(R, "'%s' is undefined", name);
}

/* ------------------------------------------------------------- output */

static void out_value(jx_run *R, jv v) { jv_write_str(&R->env, R->out, v); }

static void exec_body(jx_run *R, const jx_nodes *body, jx_frame *f);

/* Runs body with output going to a fresh buffer; returns what it wrote. */
static jv capture(jx_run *R, const jx_nodes *body, jx_frame *f) {
    jx_buf buf = {.limit = R->max_output};
    jx_buf *saved = R->out;
    R->out = &buf;
    exec_body(R, body, f);
    R->out = saved;
    return jx_buf_value(&R->env, &buf);
}

/* ------------------------------------------------------------- expressions */

static jv eval(jx_run *R, const jx_node *n, jx_frame *f);

static void eval_args(jx_run *R, const jx_node *n, jx_frame *f, jx_args *a) {
    a->npos = (size_t)n->args.n;
    a->nkw = (size_t)n->kwvals.n;
    a->pos = a->npos ? jx_alloc(&R->env, a->npos * sizeof(jv)) : NULL;
    a->kwv = a->nkw ? jx_alloc(&R->env, a->nkw * sizeof(jv)) : NULL;
    a->kwn = n->kwnames;
    for (size_t i = 0; i < a->npos; i++) a->pos[i] = eval(R, n->args.v[i], f);
    for (size_t i = 0; i < a->nkw; i++) a->kwv[i] = eval(R, n->kwvals.v[i], f);
}

static jv eval(jx_run *R, const jx_node *n, jx_frame *f) {
    if (++R->depth > MAX_EVAL_DEPTH) jx_rfail(R, n, "evaluation nested too deeply");
    jv r;
    switch (n->kind) {
    case N_LIT: r = n->lit; break;
    case N_NAME: r = lookup(R, f, n->name); break;
    case N_LIST:
    case N_TUPLE:
        r = n->kind == N_TUPLE ? jv_tuple(&R->env, (size_t)n->args.n) : jv_list(&R->env, (size_t)n->args.n);
        for (int i = 0; i < n->args.n; i++) jx_list_push(&R->env, r.u.l, eval(R, n->args.v[i], f));
        break;
    case N_DICT:
        r = jv_dict(&R->env, (size_t)n->args.n);
        for (int i = 0; i < n->args.n; i++) {
            jv k = eval(R, n->args.v[i], f);
            jv v = eval(R, n->kwvals.v[i], f);
            if (k.t == JV_LIST && !k.u.l->tuple) jx_rfail(R, n->args.v[i], "unhashable type: 'list'");
            if (k.t == JV_DICT) jx_rfail(R, n->args.v[i], "unhashable type: 'dict'");
            jx_dict_set(&R->env, r.u.d, k, v);
        }
        break;
    case N_ATTR: {
        jv obj = eval(R, n->a, f);
        R->env.pos = n->pos;
        r = jx_getattr(R, obj, n->name);
        break;
    }
    case N_ITEM: {
        jv obj = eval(R, n->a, f);
        jv key = eval(R, n->b, f);
        R->env.pos = n->pos;
        r = jx_getitem(R, obj, key);
        break;
    }
    case N_SLICE: {
        jv obj = eval(R, n->a, f);
        jv s = n->b ? eval(R, n->b, f) : jv_none();
        jv e = n->c ? eval(R, n->c, f) : jv_none();
        jv st = n->d ? eval(R, n->d, f) : jv_none();
        R->env.pos = n->pos;
        r = jx_slice(R, n, obj, s, e, st);
        break;
    }
    case N_CALL: {
        jv callee = eval(R, n->a, f);
        jx_args a;
        eval_args(R, n, f, &a);
        r = jx_call(R, callee, &a, n);
        break;
    }
    case N_FILTER: {
        jv input = eval(R, n->a, f);
        jx_args a;
        eval_args(R, n, f, &a);
        R->env.pos = n->pos;
        r = jx_apply_filter(R, n->name, input, &a);
        break;
    }
    case N_TEST: {
        jv input = eval(R, n->a, f);
        jx_args a;
        eval_args(R, n, f, &a);
        R->env.pos = n->pos;
        bool found;
        bool t = jx_run_test(R, n->name, input, &a, &found);
        if (!found) jx_rfail(R, n, "no test named '%s'", n->name);
        r = jv_bool(n->negated ? !t : t);
        break;
    }
    case N_NEG:
    case N_POS: {
        jv v = eval(R, n->a, f);
        R->env.pos = n->pos;
        if (v.t == JV_UNDEF) jx_undefined_fail(R, v);
        if (!jv_is_num(v)) jx_rfail(R, n, "bad operand type for unary %c: '%s'", n->kind == N_NEG ? '-' : '+', jv_type_name(v));
        int64_t x = v.t == JV_BOOL ? (int64_t)v.u.b : v.u.i;
        if (v.t == JV_FLOAT) {
            r = n->kind == N_NEG ? jv_float(-v.u.f) : v;
        } else if (n->kind == N_POS) {
            r = jv_int(x);
        } else {
            if (x == INT64_MIN) jx_rfail(R, n, "integer overflow");
            r = jv_int(-x);
        }
        break;
    }
    case N_NOT: r = jv_bool(!jv_truthy(eval(R, n->a, f))); break;
    case N_BINOP: {
        jv a = eval(R, n->a, f);
        jv b = eval(R, n->b, f);
        r = jx_arith(R, n, n->op, a, b);
        break;
    }
    case N_CONCAT: {
        jx_buf b = {0};
        for (int i = 0; i < n->args.n; i++) jv_write_str(&R->env, &b, eval(R, n->args.v[i], f));
        r = jx_buf_value(&R->env, &b);
        break;
    }
    case N_AND: {
        jv a = eval(R, n->a, f);
        r = jv_truthy(a) ? eval(R, n->b, f) : a;
        break;
    }
    case N_OR: {
        jv a = eval(R, n->a, f);
        r = jv_truthy(a) ? a : eval(R, n->b, f);
        break;
    }
    case N_COMPARE: {
        jv left = eval(R, n->a, f);
        r = jv_bool(true);
        for (int i = 0; i < n->args.n; i++) {
            jv right = eval(R, n->args.v[i], f);
            if (!jx_compare_op(R, n, n->ops[i], left, right)) {
                r = jv_bool(false);
                break;
            }
            left = right;
        }
        break;
    }
    case N_COND:
        if (jv_truthy(eval(R, n->a, f)))
            r = eval(R, n->b, f);
        else if (n->c)
            r = eval(R, n->c, f);
        else
            r = jx_undef_hint(R, "the inline if-expression evaluated to false and has no else section");
        break;
    default: jx_rfail(R, n, "internal error: statement used as an expression");
    }
    R->depth--;
    return r;
}

/* ------------------------------------------------------------- calls */

static jv call_macro(jx_run *R, const jx_func *fn, jx_args *a, const jx_node *at) {
    const jx_node *m = fn->node;
    if (++R->call_depth > R->max_call_depth) jx_rfail(R, at, "macro calls nested too deeply (limit %d)", R->max_call_depth);
    jx_tick(R, 64);
    jx_frame *mf = frame_new(R, fn->closure);
    bool *set = m->ntargets ? jx_alloc(&R->env, (size_t)m->ntargets) : NULL;
    jv varargs = jv_tuple(&R->env, 0), kwargs = jv_dict(&R->env, 0);
    for (size_t i = 0; i < a->npos; i++) {
        if ((int)i < m->ntargets) {
            frame_set(R, mf, m->targets[i], a->pos[i]);
            set[i] = true;
        } else {
            jx_list_push(&R->env, varargs.u.l, a->pos[i]);
        }
    }
    bool has_caller = false;
    for (size_t k = 0; k < a->nkw; k++) {
        int idx = -1;
        for (int i = 0; i < m->ntargets; i++)
            if (!strcmp(m->targets[i], a->kwn[k])) idx = i;
        if (idx >= 0) {
            if (set[idx]) jx_rfail(R, at, "macro '%s' got multiple values for argument '%s'", m->name, a->kwn[k]);
            frame_set(R, mf, m->targets[idx], a->kwv[k]);
            set[idx] = true;
        } else if (!strcmp(a->kwn[k], "caller")) {
            frame_set(R, mf, "caller", a->kwv[k]);
            has_caller = true;
        } else {
            jx_dict_sets(&R->env, kwargs.u.d, a->kwn[k], a->kwv[k]);
        }
    }
    for (int i = 0; i < m->ntargets; i++) {
        if (set[i]) continue;
        if (m->defaults.v[i])
            frame_set(R, mf, m->targets[i], eval(R, m->defaults.v[i], mf));
        else
            frame_set(R, mf, m->targets[i], jx_undef_hint(R, "parameter '%s' was not provided", m->targets[i]));
    }
    frame_set(R, mf, "varargs", varargs);
    frame_set(R, mf, "kwargs", kwargs);
    if (!has_caller && !frame_find(mf, "caller")) {
        /* no caller: leave it undefined (lookup finds outer callers otherwise) */
        frame_set(R, mf, "caller", jx_undef_hint(R, "'caller' is undefined"));
    }
    jv out = capture(R, &m->body, mf);
    R->ctl = CTL_NONE;
    R->call_depth--;
    return out;
}

static void run_for(jx_run *R, const jx_node *n, jx_list *items, jx_frame *f, int depth0);

jv jx_call(jx_run *R, jv fn, jx_args *a, const jx_node *at) {
    if (at) R->env.pos = at->pos;
    if (fn.t == JV_UNDEF) jx_undefined_fail(R, fn);
    if (fn.t == JV_LOOP) { /* loop(children) in a recursive loop */
        jx_loop *lp = fn.u.loop;
        if (!lp->for_node->recursive) jx_rfail(R, at, "loop() can only be called in a loop marked 'recursive'");
        if (a->npos != 1 || a->nkw) jx_rfail(R, at, "loop() takes exactly one argument");
        if (++R->call_depth > R->max_call_depth) jx_rfail(R, at, "recursive loop nested too deeply (limit %d)", R->max_call_depth);
        jx_list *items = jx_iter_list(R, a->pos[0]);
        jx_buf buf = {.limit = R->max_output};
        jx_buf *saved = R->out;
        R->out = &buf;
        run_for(R, lp->for_node, items, lp->frame, lp->depth0 + 1);
        R->out = saved;
        R->call_depth--;
        return jx_buf_value(&R->env, &buf);
    }
    if (fn.t != JV_FUNC) jx_rfail(R, at, "'%s' object is not callable", jv_type_name(fn));
    const jx_func *f = fn.u.fn;
    switch (f->kind) {
    case FN_BUILTIN: return f->fn(R, f->self, a);
    case FN_MACRO: return call_macro(R, f, a, at);
    case FN_CALLER: {
        const jx_node *cb = f->node;
        if (++R->call_depth > R->max_call_depth) jx_rfail(R, at, "calls nested too deeply (limit %d)", R->max_call_depth);
        jx_frame *cf = frame_new(R, f->closure);
        for (int i = 0; i < cb->ntargets; i++) {
            jv v;
            if ((size_t)i < a->npos)
                v = a->pos[i];
            else if (cb->defaults.v[i])
                v = eval(R, cb->defaults.v[i], cf);
            else
                v = jx_undef_hint(R, "parameter '%s' was not provided", cb->targets[i]);
            frame_set(R, cf, cb->targets[i], v);
        }
        jv out = capture(R, &cb->body, cf);
        R->ctl = CTL_NONE;
        R->call_depth--;
        return out;
    }
    }
    jx_rfail(R, at, "not callable");
}

/* ------------------------------------------------------------- statements */

static void bind_targets(jx_run *R, const jx_node *n, jx_frame *f, jv v) {
    if (n->ntargets == 1) {
        frame_set(R, f, n->targets[0], v);
        return;
    }
    jx_list *l;
    if (v.t == JV_LIST) {
        l = v.u.l;
    } else if (v.t == JV_STR || v.t == JV_DICT) {
        l = jx_iter_list(R, v);
    } else {
        jx_rfail(R, n, "cannot unpack non-iterable %s object", jv_type_name(v));
    }
    if (l->n != (size_t)n->ntargets)
        jx_rfail(R, n, "%s values to unpack (expected %d, got %zu)", l->n > (size_t)n->ntargets ? "too many" : "not enough",
                 n->ntargets, l->n);
    for (int i = 0; i < n->ntargets; i++) frame_set(R, f, n->targets[i], l->items[i]);
}

static void run_for(jx_run *R, const jx_node *n, jx_list *items, jx_frame *f, int depth0) {
    jx_frame *it = frame_new(R, f);
    if (n->b) { /* for x in xs if cond */
        jv kept = jv_list(&R->env, 0);
        for (size_t i = 0; i < items->n; i++) {
            jx_count_iterations(R, 1);
            it->n = 0;
            bind_targets(R, n, it, items->items[i]);
            if (jv_truthy(eval(R, n->b, it))) jx_list_push(&R->env, kept.u.l, items->items[i]);
        }
        items = kept.u.l;
    }
    if (items->n == 0) {
        exec_body(R, &n->else_body, f);
        return;
    }
    jx_loop *loop = jx_alloc(&R->env, sizeof *loop);
    loop->items = items;
    loop->depth0 = depth0;
    loop->for_node = n;
    loop->frame = f;
    jv loopv = {.t = JV_LOOP};
    loopv.u.loop = loop;
    for (size_t i = 0; i < items->n; i++) {
        jx_count_iterations(R, 1);
        it->n = 0;
        loop->index0 = i;
        bind_targets(R, n, it, items->items[i]);
        frame_set(R, it, "loop", loopv);
        exec_body(R, &n->body, it);
        if (R->ctl == CTL_BREAK) {
            R->ctl = CTL_NONE;
            break;
        }
        if (R->ctl == CTL_CONTINUE) R->ctl = CTL_NONE;
    }
}

static jv apply_filters(jx_run *R, const jx_nodes *filters, jv v, jx_frame *f) {
    for (int i = 0; i < filters->n; i++) {
        const jx_node *fl = filters->v[i];
        jx_args a;
        eval_args(R, fl, f, &a);
        R->env.pos = fl->pos;
        v = jx_apply_filter(R, fl->name, v, &a);
    }
    return v;
}

static void exec_stmt(jx_run *R, const jx_node *n, jx_frame *f) {
    if (++R->depth > MAX_EVAL_DEPTH) jx_rfail(R, n, "evaluation nested too deeply");
    jx_tick(R, 1);
    switch (n->kind) {
    case S_DATA: jx_buf_put(&R->env, R->out, n->lit.u.s->s, n->lit.u.s->len); break;
    case S_OUTPUT: {
        jv v = eval(R, n->a, f);
        R->env.pos = n->pos;
        out_value(R, v);
        break;
    }
    case S_IF:
        if (jv_truthy(eval(R, n->a, f)))
            exec_body(R, &n->body, f);
        else
            exec_body(R, &n->else_body, f);
        break;
    case S_FOR: {
        jv seq = eval(R, n->a, f);
        R->env.pos = n->a->pos;
        run_for(R, n, jx_iter_list(R, seq), f, 0);
        break;
    }
    case S_SET: {
        jv v = eval(R, n->b, f);
        if (n->a) {
            jv obj = eval(R, n->a->a, f);
            if (obj.t != JV_DICT || !obj.u.d->ns) jx_rfail(R, n->a, "cannot assign attribute on non-namespace object");
            R->env.pos = n->pos;
            jx_dict_sets(&R->env, obj.u.d, n->a->name, v);
        } else {
            bind_targets(R, n, f, v);
        }
        break;
    }
    case S_SETBLOCK: {
        jv v = capture(R, &n->body, f);
        v = apply_filters(R, &n->filters, v, f);
        frame_set(R, f, n->name, v);
        break;
    }
    case S_MACRO: {
        jv fv = {.t = JV_FUNC};
        fv.u.fn = jx_alloc(&R->env, sizeof(jx_func));
        fv.u.fn->kind = FN_MACRO;
        fv.u.fn->name = n->name;
        fv.u.fn->node = n;
        fv.u.fn->closure = f;
        frame_set(R, f, n->name, fv);
        break;
    }
    case S_CALLBLOCK: {
        const jx_node *call = n->a;
        jv callee = eval(R, call->a, f);
        jx_args a;
        eval_args(R, call, f, &a);
        jv cv = {.t = JV_FUNC};
        cv.u.fn = jx_alloc(&R->env, sizeof(jx_func));
        cv.u.fn->kind = FN_CALLER;
        cv.u.fn->name = "caller";
        cv.u.fn->node = n;
        cv.u.fn->closure = f;
        const char **kwn = jx_alloc(&R->env, (a.nkw + 1) * sizeof *kwn);
        jv *kwv = jx_alloc(&R->env, (a.nkw + 1) * sizeof *kwv);
        for (size_t i = 0; i < a.nkw; i++) {
            kwn[i] = a.kwn[i];
            kwv[i] = a.kwv[i];
        }
        kwn[a.nkw] = "caller";
        kwv[a.nkw] = cv;
        a.kwn = kwn;
        a.kwv = kwv;
        a.nkw++;
        out_value(R, jx_call(R, callee, &a, call));
        break;
    }
    case S_FILTERBLOCK: {
        jv v = capture(R, &n->body, f);
        out_value(R, apply_filters(R, &n->filters, v, f));
        break;
    }
    case S_BREAK: R->ctl = CTL_BREAK; break;
    case S_CONTINUE: R->ctl = CTL_CONTINUE; break;
    case S_BLOCK: exec_body(R, &n->body, f); break;
    case S_DO: (void)eval(R, n->a, f); break;
    case S_WITH: {
        jx_frame *wf = frame_new(R, f);
        for (int i = 0; i < n->ntargets; i++) frame_set(R, wf, n->targets[i], eval(R, n->args.v[i], f));
        exec_body(R, &n->body, wf);
        break;
    }
    default: jx_rfail(R, n, "internal error: expression used as a statement");
    }
    R->depth--;
}

static void exec_body(jx_run *R, const jx_nodes *body, jx_frame *f) {
    for (int i = 0; i < body->n; i++) {
        exec_stmt(R, body->v[i], f);
        if (R->ctl) return;
    }
}

/* ------------------------------------------------------------- entry points */

/* Normalizes, lexes and parses src into t (fails through env). */
static void parse_into(jx_template *t, jx_env *env, const char *src, size_t len) {
    /* Jinja reads \r\n and \r as \n, and drops one trailing newline. */
    char *norm = jx_alloc(env, len + 1);
    size_t m = 0;
    for (size_t i = 0; i < len; i++) {
        if (src[i] == '\r') {
            norm[m++] = '\n';
            if (i + 1 < len && src[i + 1] == '\n') i++;
        } else {
            norm[m++] = src[i];
        }
    }
    if (m > 0 && norm[m - 1] == '\n') m--;
    norm[m] = 0;
    t->src = norm;
    t->srclen = m;
    env->src = norm;
    env->srclen = m;
    jx_tok *toks;
    size_t ntoks;
    jx_lex(env, norm, m, &toks, &ntoks);
    t->body = jx_parse(env, toks, ntoks);
}

jx_template *jx_template_parse(const char *src, size_t len, char *err, size_t errlen) {
    if (err && errlen) err[0] = 0;
    jx_template *volatile t = calloc(1, sizeof(jx_template));
    if (!t) {
        if (err && errlen) snprintf(err, errlen, "out of memory");
        return NULL;
    }
    jx_arena_init(&t->arena, PARSE_MEMORY + 16 * len);
    jmp_buf jb;
    jx_env env = {.arena = &t->arena, .jb = &jb, .err = err, .errlen = errlen};
    if (setjmp(jb)) {
        jx_arena_free(&t->arena);
        free(t);
        return NULL;
    }
    parse_into(t, &env, src ? src : "", src ? len : 0);
    return t;
}

void jx_template_free(jx_template *t) {
    if (!t) return;
    jx_arena_free(&t->arena);
    free(t);
}

char *jx_template_render(const jx_template *t, const jx_options *opts, jx_setup_fn setup, void *ud, char *err,
                         size_t errlen, size_t *out_len) {
    if (err && errlen) err[0] = 0;
    if (out_len) *out_len = 0;
    if (!t) {
        if (err && errlen) snprintf(err, errlen, "no template");
        return NULL;
    }
    jx_run *R = calloc(1, sizeof *R);
    if (!R) {
        if (err && errlen) snprintf(err, errlen, "out of memory");
        return NULL;
    }
    jx_options o = {.max_memory = 64u << 20,
                    .max_output = 4u << 20,
                    .max_iterations = 1000000,
                    .max_call_depth = 64,
                    .max_time_ms = 5000};
    if (opts) {
        if (opts->max_memory) o.max_memory = opts->max_memory;
        if (opts->max_output) o.max_output = opts->max_output;
        if (opts->max_iterations) o.max_iterations = opts->max_iterations;
        if (opts->max_call_depth) o.max_call_depth = opts->max_call_depth;
        if (opts->max_time_ms) o.max_time_ms = opts->max_time_ms;
        o.now = opts->now;
        o.now_fixed = opts->now_fixed;
    }
    jx_arena_init(&R->arena, o.max_memory);
    R->env = (jx_env){.arena = &R->arena, .jb = &R->jb, .err = err, .errlen = errlen, .src = t->src, .srclen = t->srclen};
    R->tpl = t;
    R->max_output = o.max_output;
    R->max_iterations = o.max_iterations;
    R->max_call_depth = o.max_call_depth;
    R->now = o.now;
    R->now_fixed = o.now_fixed;
    R->deadline_ms = now_ms() + (double)o.max_time_ms;
    if (setjmp(R->jb)) {
        jx_arena_free(&R->arena);
        free(R);
        return NULL;
    }
    jv vars = jv_dict(&R->env, 0);
    if (setup) setup(&R->env, vars.u.d, ud);
    R->env.pos = 0;
    R->globals = frame_new(R, NULL);
    for (size_t i = 0; i < vars.u.d->n; i++) {
        jv k = vars.u.d->keys[i];
        if (k.t == JV_STR) frame_set(R, R->globals, k.u.s->s, vars.u.d->vals[i]);
    }
    jx_frame *root = frame_new(R, R->globals);
    jx_buf out = {.limit = o.max_output};
    R->out = &out;
    exec_body(R, &t->body, root);
    char *res = malloc(out.n + 1);
    if (!res) {
        if (err && errlen) snprintf(err, errlen, "out of memory");
    } else {
        if (out.n) memcpy(res, out.p, out.n);
        res[out.n] = 0;
        if (out_len) *out_len = out.n;
    }
    jx_arena_free(&R->arena);
    free(R);
    return res;
}
