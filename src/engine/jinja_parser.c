/* Parser of the chat-template interpreter: tokens to a syntax tree, with
 * Jinja2's grammar and operator precedence (loosest first): inline if,
 * or, and, not, comparisons (== != < <= > >= in, not in), + -, ~,
 * * / // %, **, unary - +, then postfix (.attr [item] (call)) and
 * filters / tests (| name, is name). */
#include "engine/jinja_ast.h"
#include "engine/jinja_interp.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    jx_env *env;
    jx_tok *t;
    size_t n, i;
    int depth;
    int loops; /* enclosing for loops, for break/continue */
} parser;

/* ------------------------------------------------------------- helpers */

static jx_tok *cur(parser *P) { return &P->t[P->i < P->n ? P->i : P->n - 1]; }
static jx_tok *peek(parser *P, size_t k) { return &P->t[P->i + k < P->n ? P->i + k : P->n - 1]; }
static void advance(parser *P) {
    if (P->i < P->n - 1) P->i++;
}

static bool at_op(parser *P, jx_op op) { return cur(P)->type == JT_OP && cur(P)->op == op; }
static bool tok_is_name(const jx_tok *t, const char *name) { return t->type == JT_NAME && strcmp(t->s, name) == 0; }
static bool at_name(parser *P, const char *name) { return tok_is_name(cur(P), name); }

static void tok_desc(const jx_tok *t, char *buf, size_t n) {
    switch (t->type) {
    case JT_EOF: snprintf(buf, n, "end of template"); break;
    case JT_DATA: snprintf(buf, n, "template text"); break;
    case JT_VAR_BEGIN: snprintf(buf, n, "'{{'"); break;
    case JT_VAR_END: snprintf(buf, n, "'}}'"); break;
    case JT_BLOCK_BEGIN: snprintf(buf, n, "'{%%'"); break;
    case JT_BLOCK_END: snprintf(buf, n, "'%%}'"); break;
    case JT_NAME: snprintf(buf, n, "'%.40s'", t->s); break;
    case JT_STRING: snprintf(buf, n, "a string"); break;
    case JT_INT:
    case JT_FLOAT: snprintf(buf, n, "a number"); break;
    case JT_OP: snprintf(buf, n, "'%s'", jx_op_text(t->op)); break;
    }
}

#if defined(__GNUC__)
__attribute__((noreturn, format(printf, 3, 4)))
#endif
static void pfail_at(parser *P, size_t pos, const char *fmt, ...);

static void pfail_at(parser *P, size_t pos, const char *fmt, ...) {
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    P->env->pos = pos;
    jx_fail(P->env, "%s", msg);
}

#if defined(__GNUC__)
__attribute__((noreturn))
#endif
static void unexpected(parser *P, const char *expected) {
    char d[64];
    tok_desc(cur(P), d, sizeof d);
    if (expected)
        pfail_at(P, cur(P)->pos, "unexpected %s, expected %s", d, expected);
    pfail_at(P, cur(P)->pos, "unexpected %s", d);
}

static void expect_op(parser *P, jx_op op) {
    if (!at_op(P, op)) {
        char e[16];
        snprintf(e, sizeof e, "'%s'", jx_op_text(op));
        unexpected(P, e);
    }
    advance(P);
}

static const char *expect_name(parser *P) {
    if (cur(P)->type != JT_NAME) unexpected(P, "a name");
    const char *s = cur(P)->s;
    advance(P);
    return s;
}

static void expect_block_end(parser *P) {
    if (cur(P)->type != JT_BLOCK_END) unexpected(P, "'%}'");
    advance(P);
}

static jx_node *node(parser *P, jx_kind kind, size_t pos) {
    jx_node *n = jx_alloc(P->env, sizeof *n);
    n->kind = kind;
    n->pos = pos;
    return n;
}

static void push_node(parser *P, jx_nodes *list, int *cap, jx_node *x) {
    if (list->n == *cap) {
        int nc = *cap ? *cap * 2 : 4;
        jx_node **v = jx_alloc(P->env, (size_t)nc * sizeof *v);
        if (list->n) memcpy(v, list->v, (size_t)list->n * sizeof *v);
        list->v = v;
        *cap = nc;
    }
    list->v[list->n++] = x;
}

static void push_name(parser *P, const char ***names, int n, int *cap, const char *s) {
    if (n == *cap) {
        int nc = *cap ? *cap * 2 : 4;
        const char **v = jx_alloc(P->env, (size_t)nc * sizeof *v);
        if (n) memcpy(v, *names, (size_t)n * sizeof *v);
        *names = v;
        *cap = nc;
    }
    (*names)[n] = s;
}

static void enter(parser *P) {
    if (++P->depth > JX_MAX_NESTING) pfail_at(P, cur(P)->pos, "template nested too deeply (more than %d levels)", JX_MAX_NESTING);
}
static void leave(parser *P) { P->depth--; }

/* ------------------------------------------------------------- expressions */

static jx_node *parse_expression(parser *P, bool with_condexpr);
static jx_node *parse_tuple(parser *P, bool with_condexpr, bool explicit_parens, const char *extra_end);
static jx_node *parse_unary(parser *P, bool with_filter);
static jx_node *parse_primary(parser *P);
static jx_node *parse_postfix(parser *P, jx_node *n);

/* (args, kw=values) after the callee; the current token is '('. */
static void parse_call_args(parser *P, jx_node *n) {
    int acap = 0, kcap = 0, ncap = 0;
    expect_op(P, OP_LPAREN);
    while (!at_op(P, OP_RPAREN)) {
        if (n->args.n || n->kwvals.n) {
            expect_op(P, OP_COMMA);
            if (at_op(P, OP_RPAREN)) break;
        }
        if (at_op(P, OP_MUL) || at_op(P, OP_POW)) pfail_at(P, cur(P)->pos, "*args and **kwargs in calls are not supported");
        if (cur(P)->type == JT_NAME && peek(P, 1)->type == JT_OP && peek(P, 1)->op == OP_ASSIGN) {
            const char *k = cur(P)->s;
            advance(P);
            advance(P);
            push_name(P, &n->kwnames, n->kwvals.n, &ncap, k);
            push_node(P, &n->kwvals, &kcap, parse_expression(P, true));
        } else {
            if (n->kwvals.n) pfail_at(P, cur(P)->pos, "positional argument after keyword arguments");
            push_node(P, &n->args, &acap, parse_expression(P, true));
        }
    }
    expect_op(P, OP_RPAREN);
}

static jx_node *parse_filter(parser *P, jx_node *input) {
    size_t pos = cur(P)->pos;
    expect_op(P, OP_PIPE);
    const char *name = expect_name(P);
    while (at_op(P, OP_DOT) && peek(P, 1)->type == JT_NAME) { /* dotted filter names */
        advance(P);
        name = cur(P)->s;
        advance(P);
    }
    if (!jx_find_filter(name)) pfail_at(P, pos, "no filter named '%.40s'", name);
    jx_node *f = node(P, N_FILTER, pos);
    f->a = input;
    f->name = name;
    if (at_op(P, OP_LPAREN)) parse_call_args(P, f);
    return f;
}

static bool starts_primary(const jx_tok *t) {
    if (t->type == JT_STRING || t->type == JT_INT || t->type == JT_FLOAT) return true;
    if (t->type == JT_NAME) return !(strcmp(t->s, "else") == 0 || strcmp(t->s, "or") == 0 || strcmp(t->s, "and") == 0);
    return t->type == JT_OP && (t->op == OP_LPAREN || t->op == OP_LBRACKET || t->op == OP_LBRACE);
}

static jx_node *parse_test(parser *P, jx_node *input) {
    size_t pos = cur(P)->pos;
    advance(P); /* is */
    jx_node *t = node(P, N_TEST, pos);
    t->a = input;
    if (at_name(P, "not")) {
        t->negated = true;
        advance(P);
    }
    t->name = expect_name(P);
    while (at_op(P, OP_DOT) && peek(P, 1)->type == JT_NAME) {
        advance(P);
        t->name = cur(P)->s;
        advance(P);
    }
    if (!jx_test_exists(t->name)) pfail_at(P, pos, "no test named '%.40s'", t->name);
    if (at_op(P, OP_LPAREN)) {
        parse_call_args(P, t);
    } else if (starts_primary(cur(P))) {
        if (at_name(P, "is")) unexpected(P, NULL);
        jx_node *arg = parse_postfix(P, parse_primary(P));
        int cap = 0;
        push_node(P, &t->args, &cap, arg);
    }
    return t;
}

static jx_node *parse_filter_expr(parser *P, jx_node *n) {
    for (;;) {
        if (at_op(P, OP_PIPE)) {
            n = parse_filter(P, n);
        } else if (at_name(P, "is")) {
            n = parse_test(P, n);
        } else if (at_op(P, OP_LPAREN)) {
            jx_node *c = node(P, N_CALL, n->pos);
            c->a = n;
            parse_call_args(P, c);
            n = c;
        } else {
            return n;
        }
    }
}

/* One subscript: an expression or a slice a:b:c. */
static jx_node *parse_subscribed(parser *P, jx_node *obj, size_t pos) {
    jx_node *start = NULL;
    if (!at_op(P, OP_COLON)) {
        start = parse_expression(P, true);
        if (!at_op(P, OP_COLON)) {
            jx_node *it = node(P, N_ITEM, pos);
            it->a = obj;
            it->b = start;
            return it;
        }
    }
    advance(P); /* : */
    jx_node *s = node(P, N_SLICE, pos);
    s->a = obj;
    s->b = start;
    if (!at_op(P, OP_RBRACKET) && !at_op(P, OP_COMMA) && !at_op(P, OP_COLON)) s->c = parse_expression(P, true);
    if (at_op(P, OP_COLON)) {
        advance(P);
        if (!at_op(P, OP_RBRACKET) && !at_op(P, OP_COMMA)) s->d = parse_expression(P, true);
    }
    return s;
}

static jx_node *parse_postfix(parser *P, jx_node *n) {
    for (;;) {
        if (at_op(P, OP_DOT)) {
            size_t pos = cur(P)->pos;
            advance(P);
            if (cur(P)->type == JT_NAME) {
                jx_node *a = node(P, N_ATTR, pos);
                a->a = n;
                a->name = cur(P)->s;
                advance(P);
                n = a;
            } else if (cur(P)->type == JT_INT) {
                jx_node *it = node(P, N_ITEM, pos);
                it->a = n;
                it->b = node(P, N_LIT, pos);
                it->b->lit = jv_int(cur(P)->i);
                advance(P);
                n = it;
            } else {
                unexpected(P, "an attribute name");
            }
        } else if (at_op(P, OP_LBRACKET)) {
            size_t pos = cur(P)->pos;
            advance(P);
            jx_node *first = parse_subscribed(P, n, pos);
            if (at_op(P, OP_COMMA)) { /* a[x, y]: a tuple key */
                jx_node *tup = node(P, N_TUPLE, pos);
                int cap = 0;
                if (first->kind != N_ITEM) pfail_at(P, pos, "slices cannot be part of a tuple subscript");
                push_node(P, &tup->args, &cap, first->b);
                while (at_op(P, OP_COMMA)) {
                    advance(P);
                    if (at_op(P, OP_RBRACKET)) break;
                    push_node(P, &tup->args, &cap, parse_expression(P, true));
                }
                first->b = tup;
            }
            expect_op(P, OP_RBRACKET);
            n = first;
        } else if (at_op(P, OP_LPAREN)) {
            jx_node *c = node(P, N_CALL, n->pos);
            c->a = n;
            parse_call_args(P, c);
            n = c;
        } else {
            return n;
        }
    }
}

static jx_node *parse_primary(parser *P) {
    jx_tok *t = cur(P);
    size_t pos = t->pos;
    jx_node *n;
    switch (t->type) {
    case JT_NAME:
        n = node(P, N_LIT, pos);
        if (!strcmp(t->s, "true") || !strcmp(t->s, "True")) {
            n->lit = jv_bool(true);
        } else if (!strcmp(t->s, "false") || !strcmp(t->s, "False")) {
            n->lit = jv_bool(false);
        } else if (!strcmp(t->s, "none") || !strcmp(t->s, "None")) {
            n->lit = jv_none();
        } else {
            n->kind = N_NAME;
            n->name = t->s;
        }
        advance(P);
        return n;
    case JT_STRING: {
        n = node(P, N_LIT, pos);
        if (peek(P, 1)->type != JT_STRING) {
            n->lit = jv_str(P->env, t->s, t->len);
            advance(P);
            return n;
        }
        jx_buf b = {0};
        while (cur(P)->type == JT_STRING) { /* 'a' 'b' is 'ab' */
            jx_buf_put(P->env, &b, cur(P)->s, cur(P)->len);
            advance(P);
        }
        n->lit = jx_buf_value(P->env, &b);
        return n;
    }
    case JT_INT:
        n = node(P, N_LIT, pos);
        n->lit = jv_int(t->i);
        advance(P);
        return n;
    case JT_FLOAT:
        n = node(P, N_LIT, pos);
        n->lit = jv_float(t->f);
        advance(P);
        return n;
    case JT_OP:
        if (t->op == OP_LPAREN) {
            enter(P);
            advance(P);
            n = parse_tuple(P, true, true, NULL);
            expect_op(P, OP_RPAREN);
            leave(P);
            return n;
        }
        if (t->op == OP_LBRACKET) {
            enter(P);
            advance(P);
            n = node(P, N_LIST, pos);
            int cap = 0;
            while (!at_op(P, OP_RBRACKET)) {
                if (n->args.n) {
                    expect_op(P, OP_COMMA);
                    if (at_op(P, OP_RBRACKET)) break;
                }
                push_node(P, &n->args, &cap, parse_expression(P, true));
            }
            advance(P);
            leave(P);
            return n;
        }
        if (t->op == OP_LBRACE) {
            enter(P);
            advance(P);
            n = node(P, N_DICT, pos);
            int kcap = 0, vcap = 0;
            while (!at_op(P, OP_RBRACE)) {
                if (n->args.n) {
                    expect_op(P, OP_COMMA);
                    if (at_op(P, OP_RBRACE)) break;
                }
                push_node(P, &n->args, &kcap, parse_expression(P, true));
                expect_op(P, OP_COLON);
                push_node(P, &n->kwvals, &vcap, parse_expression(P, true));
            }
            advance(P);
            leave(P);
            return n;
        }
        break;
    default: break;
    }
    unexpected(P, "an expression");
}

static jx_node *parse_unary(parser *P, bool with_filter) {
    jx_node *n;
    enter(P);
    if (at_op(P, OP_SUB) || at_op(P, OP_ADD)) {
        n = node(P, at_op(P, OP_SUB) ? N_NEG : N_POS, cur(P)->pos);
        advance(P);
        n->a = parse_unary(P, false);
    } else {
        n = parse_postfix(P, parse_primary(P));
    }
    if (with_filter) n = parse_filter_expr(P, n);
    leave(P);
    return n;
}

static jx_node *binop(parser *P, jx_node *l, int op, size_t pos, jx_node *r) {
    jx_node *n = node(P, N_BINOP, pos);
    n->op = op;
    n->a = l;
    n->b = r;
    return n;
}

static jx_node *parse_pow(parser *P) {
    jx_node *l = parse_unary(P, true);
    while (at_op(P, OP_POW)) {
        size_t pos = cur(P)->pos;
        advance(P);
        l = binop(P, l, OP_POW, pos, parse_unary(P, true));
    }
    return l;
}

static jx_node *parse_math2(parser *P) {
    jx_node *l = parse_pow(P);
    while (at_op(P, OP_MUL) || at_op(P, OP_DIV) || at_op(P, OP_FLOORDIV) || at_op(P, OP_MOD)) {
        int op = cur(P)->op;
        size_t pos = cur(P)->pos;
        advance(P);
        l = binop(P, l, op, pos, parse_pow(P));
    }
    return l;
}

static jx_node *parse_concat(parser *P) {
    jx_node *first = parse_math2(P);
    if (!at_op(P, OP_TILDE)) return first;
    jx_node *n = node(P, N_CONCAT, cur(P)->pos);
    int cap = 0;
    push_node(P, &n->args, &cap, first);
    while (at_op(P, OP_TILDE)) {
        advance(P);
        push_node(P, &n->args, &cap, parse_math2(P));
    }
    return n;
}

static jx_node *parse_math1(parser *P) {
    jx_node *l = parse_concat(P);
    while (at_op(P, OP_ADD) || at_op(P, OP_SUB)) {
        int op = cur(P)->op;
        size_t pos = cur(P)->pos;
        advance(P);
        l = binop(P, l, op, pos, parse_concat(P));
    }
    return l;
}

static jx_node *parse_compare(parser *P) {
    jx_node *first = parse_math1(P);
    jx_node *n = NULL;
    int cap = 0, ocap = 0;
    for (;;) {
        int op;
        size_t pos = cur(P)->pos;
        jx_tok *t = cur(P);
        if (t->type == JT_OP && (t->op == OP_EQ || t->op == OP_NE || t->op == OP_LT || t->op == OP_LE || t->op == OP_GT || t->op == OP_GE)) {
            op = t->op;
            advance(P);
        } else if (tok_is_name(t, "in")) {
            op = CMP_IN;
            advance(P);
        } else if (tok_is_name(t, "not") && tok_is_name(peek(P, 1), "in")) {
            op = CMP_NOTIN;
            advance(P);
            advance(P);
        } else {
            break;
        }
        if (!n) {
            n = node(P, N_COMPARE, pos);
            n->a = first;
        }
        if (n->args.n == ocap) {
            int nc = ocap ? ocap * 2 : 4;
            int *ops = jx_alloc(P->env, (size_t)nc * sizeof *ops);
            if (n->args.n) memcpy(ops, n->ops, (size_t)n->args.n * sizeof *ops);
            n->ops = ops;
            ocap = nc;
        }
        n->ops[n->args.n] = op;
        push_node(P, &n->args, &cap, parse_math1(P));
    }
    return n ? n : first;
}

static jx_node *parse_not(parser *P) {
    if (at_name(P, "not")) {
        enter(P);
        jx_node *n = node(P, N_NOT, cur(P)->pos);
        advance(P);
        n->a = parse_not(P);
        leave(P);
        return n;
    }
    return parse_compare(P);
}

static jx_node *parse_and(parser *P) {
    jx_node *l = parse_not(P);
    while (at_name(P, "and")) {
        jx_node *n = node(P, N_AND, cur(P)->pos);
        advance(P);
        n->a = l;
        n->b = parse_not(P);
        l = n;
    }
    return l;
}

static jx_node *parse_or(parser *P) {
    jx_node *l = parse_and(P);
    while (at_name(P, "or")) {
        jx_node *n = node(P, N_OR, cur(P)->pos);
        advance(P);
        n->a = l;
        n->b = parse_and(P);
        l = n;
    }
    return l;
}

static jx_node *parse_condexpr(parser *P) {
    enter(P);
    jx_node *e = parse_or(P);
    while (at_name(P, "if")) {
        jx_node *c = node(P, N_COND, cur(P)->pos);
        advance(P);
        c->b = e;
        c->a = parse_or(P);
        if (at_name(P, "else")) {
            advance(P);
            c->c = parse_condexpr(P);
        }
        e = c;
    }
    leave(P);
    return e;
}

static jx_node *parse_expression(parser *P, bool with_condexpr) {
    return with_condexpr ? parse_condexpr(P) : parse_or(P);
}

static bool is_tuple_end(parser *P, const char *extra_end) {
    jx_tok *t = cur(P);
    if (t->type == JT_VAR_END || t->type == JT_BLOCK_END || t->type == JT_EOF) return true;
    if (t->type == JT_OP && t->op == OP_RPAREN) return true;
    return extra_end && tok_is_name(t, extra_end);
}

/* Comma-separated expressions; a single one without a comma is itself. */
static jx_node *parse_tuple(parser *P, bool with_condexpr, bool explicit_parens, const char *extra_end) {
    size_t pos = cur(P)->pos;
    jx_nodes items = {0};
    int cap = 0;
    bool is_tuple = false;
    for (;;) {
        if (items.n) expect_op(P, OP_COMMA);
        if (is_tuple_end(P, extra_end)) break;
        push_node(P, &items, &cap, parse_expression(P, with_condexpr));
        if (at_op(P, OP_COMMA))
            is_tuple = true;
        else
            break;
    }
    if (!is_tuple) {
        if (items.n) return items.v[0];
        if (!explicit_parens) unexpected(P, "an expression");
    }
    jx_node *t = node(P, N_TUPLE, pos);
    t->args = items;
    return t;
}

/* ------------------------------------------------------------- statements */

static jx_nodes parse_body(parser *P, const char *const *ends, const char *opener, size_t opener_pos);

/* Names to assign: a  |  a, b  |  (a, b). */
static void parse_targets(parser *P, jx_node *n, const char *extra_end) {
    int cap = 0;
    bool paren = false;
    if (at_op(P, OP_LPAREN)) {
        paren = true;
        advance(P);
    }
    for (;;) {
        push_name(P, &n->targets, n->ntargets, &cap, expect_name(P));
        n->ntargets++;
        if (!at_op(P, OP_COMMA)) break;
        advance(P);
        if ((paren && at_op(P, OP_RPAREN)) || (extra_end && at_name(P, extra_end))) break;
    }
    if (paren) expect_op(P, OP_RPAREN);
}

/* (name [= default], ...) of a macro or call block. */
static void parse_params(parser *P, jx_node *n) {
    int cap = 0, dcap = 0;
    expect_op(P, OP_LPAREN);
    while (!at_op(P, OP_RPAREN)) {
        if (n->ntargets) {
            expect_op(P, OP_COMMA);
            if (at_op(P, OP_RPAREN)) break;
        }
        push_name(P, &n->targets, n->ntargets, &cap, expect_name(P));
        n->ntargets++;
        jx_node *def = NULL;
        if (at_op(P, OP_ASSIGN)) {
            advance(P);
            def = parse_expression(P, true);
        }
        push_node(P, &n->defaults, &dcap, def);
    }
    advance(P);
}

/* | f(args) | g ... (filters of a set block or filter block). */
static void parse_filter_chain(parser *P, jx_node *n, bool first_without_pipe) {
    int cap = 0;
    if (first_without_pipe) {
        size_t pos = cur(P)->pos;
        jx_node *f = node(P, N_FILTER, pos);
        f->name = expect_name(P);
        if (!jx_find_filter(f->name)) pfail_at(P, pos, "no filter named '%.40s'", f->name);
        if (at_op(P, OP_LPAREN)) parse_call_args(P, f);
        push_node(P, &n->filters, &cap, f);
    }
    while (at_op(P, OP_PIPE)) push_node(P, &n->filters, &cap, parse_filter(P, NULL));
}

static bool end_is(const char *got, const char *want) { return got && strcmp(got, want) == 0; }

static jx_node *parse_if(parser *P, size_t pos, const char *opener) {
    jx_node *n = node(P, S_IF, pos);
    n->a = parse_tuple(P, false, false, NULL);
    expect_block_end(P);
    static const char *const ends[] = {"elif", "else", "endif", NULL};
    n->body = parse_body(P, ends, opener, pos);
    const char *end = cur(P)->s;
    size_t end_pos = cur(P)->pos;
    advance(P);
    if (end_is(end, "elif")) {
        jx_node *elif = parse_if(P, end_pos, "elif");
        n->else_body.v = jx_alloc(P->env, sizeof(jx_node *));
        n->else_body.v[0] = elif;
        n->else_body.n = 1;
        return n; /* the nested if consumed endif */
    }
    if (end_is(end, "else")) {
        expect_block_end(P);
        static const char *const ends2[] = {"endif", NULL};
        n->else_body = parse_body(P, ends2, opener, pos);
        advance(P);
    }
    expect_block_end(P);
    return n;
}

static jx_node *parse_statement(parser *P) {
    jx_tok *t = cur(P);
    size_t pos = t->pos;
    if (t->type != JT_NAME) unexpected(P, "a statement name");
    const char *kw = t->s;
    advance(P);
    jx_node *n;
    if (!strcmp(kw, "if")) return parse_if(P, pos, "if");
    if (!strcmp(kw, "for")) {
        n = node(P, S_FOR, pos);
        parse_targets(P, n, "in");
        if (!at_name(P, "in")) unexpected(P, "'in'");
        advance(P);
        n->a = parse_tuple(P, false, false, "recursive");
        if (at_name(P, "if")) {
            advance(P);
            n->b = parse_expression(P, true);
        }
        if (at_name(P, "recursive")) {
            n->recursive = true;
            advance(P);
        }
        expect_block_end(P);
        static const char *const ends[] = {"endfor", "else", NULL};
        P->loops++;
        n->body = parse_body(P, ends, "for", pos);
        P->loops--;
        if (end_is(cur(P)->s, "else")) {
            advance(P);
            expect_block_end(P);
            static const char *const ends2[] = {"endfor", NULL};
            n->else_body = parse_body(P, ends2, "for", pos);
        }
        advance(P);
        expect_block_end(P);
        return n;
    }
    if (!strcmp(kw, "set")) {
        if (cur(P)->type == JT_NAME && peek(P, 1)->type == JT_OP && peek(P, 1)->op == OP_DOT) {
            n = node(P, S_SET, pos);
            jx_node *obj = node(P, N_NAME, cur(P)->pos);
            obj->name = cur(P)->s;
            advance(P);
            advance(P);
            jx_node *attr = node(P, N_ATTR, obj->pos);
            attr->a = obj;
            attr->name = expect_name(P);
            n->a = attr;
            expect_op(P, OP_ASSIGN);
            n->b = parse_tuple(P, true, false, NULL);
            expect_block_end(P);
            return n;
        }
        n = node(P, S_SET, pos);
        parse_targets(P, n, NULL);
        if (at_op(P, OP_ASSIGN)) {
            advance(P);
            n->b = parse_tuple(P, true, false, NULL);
            expect_block_end(P);
            return n;
        }
        if (n->ntargets != 1) unexpected(P, "'='");
        n->kind = S_SETBLOCK;
        n->name = n->targets[0];
        parse_filter_chain(P, n, false);
        expect_block_end(P);
        static const char *const ends[] = {"endset", NULL};
        n->body = parse_body(P, ends, "set", pos);
        advance(P);
        expect_block_end(P);
        return n;
    }
    if (!strcmp(kw, "macro")) {
        n = node(P, S_MACRO, pos);
        n->name = expect_name(P);
        parse_params(P, n);
        expect_block_end(P);
        static const char *const ends[] = {"endmacro", NULL};
        int loops = P->loops;
        P->loops = 0;
        n->body = parse_body(P, ends, "macro", pos);
        P->loops = loops;
        advance(P);
        if (cur(P)->type == JT_NAME) advance(P); /* {% endmacro name %} */
        expect_block_end(P);
        return n;
    }
    if (!strcmp(kw, "call")) {
        n = node(P, S_CALLBLOCK, pos);
        if (at_op(P, OP_LPAREN)) parse_params(P, n);
        n->a = parse_expression(P, true);
        if (n->a->kind != N_CALL) pfail_at(P, n->a->pos, "expected a macro call after 'call'");
        expect_block_end(P);
        static const char *const ends[] = {"endcall", NULL};
        n->body = parse_body(P, ends, "call", pos);
        advance(P);
        expect_block_end(P);
        return n;
    }
    if (!strcmp(kw, "filter")) {
        n = node(P, S_FILTERBLOCK, pos);
        parse_filter_chain(P, n, true);
        expect_block_end(P);
        static const char *const ends[] = {"endfilter", NULL};
        n->body = parse_body(P, ends, "filter", pos);
        advance(P);
        expect_block_end(P);
        return n;
    }
    if (!strcmp(kw, "break") || !strcmp(kw, "continue")) {
        if (P->loops == 0) pfail_at(P, pos, "'%s' outside of a for loop", kw);
        n = node(P, kw[0] == 'b' ? S_BREAK : S_CONTINUE, pos);
        expect_block_end(P);
        return n;
    }
    if (!strcmp(kw, "generation") || !strcmp(kw, "block")) {
        bool is_block = kw[0] == 'b';
        n = node(P, S_BLOCK, pos);
        if (is_block) n->name = expect_name(P);
        expect_block_end(P);
        static const char *const gen_ends[] = {"endgeneration", NULL};
        static const char *const block_ends[] = {"endblock", NULL};
        n->body = parse_body(P, is_block ? block_ends : gen_ends, kw, pos);
        advance(P);
        if (is_block && cur(P)->type == JT_NAME) advance(P);
        expect_block_end(P);
        return n;
    }
    if (!strcmp(kw, "do")) {
        n = node(P, S_DO, pos);
        n->a = parse_tuple(P, true, false, NULL);
        expect_block_end(P);
        return n;
    }
    if (!strcmp(kw, "with")) {
        n = node(P, S_WITH, pos);
        int cap = 0, acap = 0;
        while (cur(P)->type != JT_BLOCK_END) {
            if (n->ntargets) expect_op(P, OP_COMMA);
            push_name(P, &n->targets, n->ntargets, &cap, expect_name(P));
            n->ntargets++;
            expect_op(P, OP_ASSIGN);
            push_node(P, &n->args, &acap, parse_expression(P, true));
        }
        expect_block_end(P);
        static const char *const ends[] = {"endwith", NULL};
        n->body = parse_body(P, ends, "with", pos);
        advance(P);
        expect_block_end(P);
        return n;
    }
    if (!strcmp(kw, "include") || !strcmp(kw, "import") || !strcmp(kw, "from") || !strcmp(kw, "extends"))
        pfail_at(P, pos, "the '%s' tag is not supported in chat templates", kw);
    pfail_at(P, pos, "unknown tag '%.40s'", kw);
}

/* Statements up to a {% <one of ends> %} (left as the current token) or the end. */
/* The closing tag among a block's possible ends ("endif" for elif/else/endif). */
static const char *closing_tag(const char *const *ends) {
    for (int k = 0; ends[k]; k++)
        if (!strncmp(ends[k], "end", 3)) return ends[k];
    return ends[0];
}

static jx_nodes parse_body(parser *P, const char *const *ends, const char *opener, size_t opener_pos) {
    jx_nodes body = {0};
    int cap = 0;
    enter(P);
    for (;;) {
        jx_tok *t = cur(P);
        if (t->type == JT_EOF) {
            if (ends) {
                int line, col;
                jx_line_col(P->env->src, P->env->srclen, opener_pos, &line, &col);
                pfail_at(P, t->pos, "unexpected end of template: missing {%% %s %%} for the {%% %s %%} at line %d",
                         closing_tag(ends), opener, line);
            }
            break;
        }
        if (t->type == JT_DATA) {
            jx_node *d = node(P, S_DATA, t->pos);
            d->lit = jv_str(P->env, t->s, t->len);
            push_node(P, &body, &cap, d);
            advance(P);
        } else if (t->type == JT_VAR_BEGIN) {
            advance(P);
            jx_node *o = node(P, S_OUTPUT, t->pos);
            o->a = parse_tuple(P, true, false, NULL);
            if (cur(P)->type != JT_VAR_END) unexpected(P, "'}}'");
            advance(P);
            push_node(P, &body, &cap, o);
        } else if (t->type == JT_BLOCK_BEGIN) {
            jx_tok *name = peek(P, 1);
            if (ends && name->type == JT_NAME) {
                for (int k = 0; ends[k]; k++) {
                    if (!strcmp(name->s, ends[k])) {
                        advance(P); /* leave the end name current */
                        leave(P);
                        return body;
                    }
                }
            }
            if (name->type == JT_NAME && (!strncmp(name->s, "end", 3) || !strcmp(name->s, "else") || !strcmp(name->s, "elif"))) {
                P->i++;
                if (ends)
                    pfail_at(P, name->pos, "unexpected '%.40s', expected '%s'", name->s, closing_tag(ends));
                pfail_at(P, name->pos, "unexpected '%.40s' with no open block", name->s);
            }
            advance(P);
            push_node(P, &body, &cap, parse_statement(P));
        } else {
            unexpected(P, NULL);
        }
    }
    leave(P);
    return body;
}

jx_nodes jx_parse(jx_env *env, jx_tok *toks, size_t ntoks) {
    parser P = {.env = env, .t = toks, .n = ntoks, .i = 0};
    return parse_body(&P, NULL, NULL, 0);
}
