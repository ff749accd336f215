/* Operators of chat templates with Python's meaning: arithmetic on ints
 * (overflow is an error) and floats, + and * on strings and lists,
 * %-formatting, comparisons and `in`. */
#include "engine/jinja_interp.h"
#include "engine/jinja_text.h"

#include <math.h>
#include <string.h>

/* ------------------------------------------------------------- operators */

static void need_defined(jx_run *R, const jx_node *n, jv v) {
    if (v.t == JV_UNDEF) {
        R->env.pos = n->pos;
        jx_undefined_fail(R, v);
    }
}

static int64_t ival(jv v) { return v.t == JV_BOOL ? (int64_t)v.u.b : v.u.i; }
static bool is_intlike(jv v) { return v.t == JV_INT || v.t == JV_BOOL; }

#if defined(__GNUC__)
__attribute__((noreturn))
#endif
static void bad_operands(jx_run *R, const jx_node *n, const char *op, jv a, jv b) {
    jx_rfail(R, n, "unsupported operand types for %s: '%s' and '%s'", op, jv_type_name(a), jv_type_name(b));
}

static jv repeat(jx_run *R, const jx_node *n, jv seq, int64_t times) {
    if (times < 0) times = 0;
    if ((seq.t == JV_STR && seq.u.s->len == 0) || (seq.t == JV_LIST && seq.u.l->n == 0)) times = 0;
    if (seq.t == JV_STR) {
        size_t len = seq.u.s->len;
        if (len && (uint64_t)times > R->arena.limit / len) jx_rfail(R, n, "string repetition too large");
        jx_buf b = {0};
        for (int64_t i = 0; i < times; i++) jx_buf_put(&R->env, &b, seq.u.s->s, len);
        return jx_buf_value(&R->env, &b);
    }
    size_t len = seq.u.l->n;
    if (len && (uint64_t)times > R->arena.limit / (len * sizeof(jv))) jx_rfail(R, n, "list repetition too large");
    jv r = seq.u.l->tuple ? jv_tuple(&R->env, 0) : jv_list(&R->env, 0);
    for (int64_t i = 0; i < times; i++)
        for (size_t k = 0; k < len; k++) jx_list_push(&R->env, r.u.l, seq.u.l->items[k]);
    return r;
}

jv jx_arith(jx_run *R, const jx_node *n, int op, jv a, jv b) {
    need_defined(R, n, a);
    need_defined(R, n, b);
    R->env.pos = n->pos;
    bool nums = jv_is_num(a) && jv_is_num(b);
    bool ints = is_intlike(a) && is_intlike(b);
    int64_t r;
    switch (op) {
    case OP_ADD:
        if (ints) {
            if (__builtin_add_overflow(ival(a), ival(b), &r)) jx_rfail(R, n, "integer overflow");
            return jv_int(r);
        }
        if (nums) return jv_float(jv_num(a) + jv_num(b));
        if (a.t == JV_STR && b.t == JV_STR) {
            jx_buf buf = {0};
            jx_buf_put(&R->env, &buf, a.u.s->s, a.u.s->len);
            jx_buf_put(&R->env, &buf, b.u.s->s, b.u.s->len);
            return jx_buf_value(&R->env, &buf);
        }
        if (a.t == JV_LIST && b.t == JV_LIST && a.u.l->tuple == b.u.l->tuple) {
            jv l = a.u.l->tuple ? jv_tuple(&R->env, 0) : jv_list(&R->env, 0);
            for (size_t i = 0; i < a.u.l->n; i++) jx_list_push(&R->env, l.u.l, a.u.l->items[i]);
            for (size_t i = 0; i < b.u.l->n; i++) jx_list_push(&R->env, l.u.l, b.u.l->items[i]);
            return l;
        }
        if (a.t == JV_STR || b.t == JV_STR)
            jx_rfail(R, n, "can only concatenate str (not \"%s\") to str", jv_type_name(a.t == JV_STR ? b : a));
        bad_operands(R, n, "+", a, b);
    case OP_SUB:
        if (ints) {
            if (__builtin_sub_overflow(ival(a), ival(b), &r)) jx_rfail(R, n, "integer overflow");
            return jv_int(r);
        }
        if (nums) return jv_float(jv_num(a) - jv_num(b));
        bad_operands(R, n, "-", a, b);
    case OP_MUL:
        if (ints) {
            if (__builtin_mul_overflow(ival(a), ival(b), &r)) jx_rfail(R, n, "integer overflow");
            return jv_int(r);
        }
        if (nums) return jv_float(jv_num(a) * jv_num(b));
        if ((a.t == JV_STR || a.t == JV_LIST) && is_intlike(b)) return repeat(R, n, a, ival(b));
        if ((b.t == JV_STR || b.t == JV_LIST) && is_intlike(a)) return repeat(R, n, b, ival(a));
        bad_operands(R, n, "*", a, b);
    case OP_DIV:
        if (!nums) bad_operands(R, n, "/", a, b);
        if (jv_num(b) == 0.0) jx_rfail(R, n, "division by zero");
        return jv_float(jv_num(a) / jv_num(b));
    case OP_FLOORDIV:
        if (!nums) bad_operands(R, n, "//", a, b);
        if (jv_num(b) == 0.0) jx_rfail(R, n, "division by zero");
        if (ints) {
            int64_t x = ival(a), y = ival(b);
            if (x == INT64_MIN && y == -1) jx_rfail(R, n, "integer overflow");
            int64_t q = x / y;
            if ((x % y != 0) && ((x < 0) != (y < 0))) q--;
            return jv_int(q);
        }
        return jv_float(floor(jv_num(a) / jv_num(b)));
    case OP_MOD:
        if (a.t == JV_STR) return jx_percent_format(R, n, a, b);
        if (!nums) bad_operands(R, n, "%", a, b);
        if (jv_num(b) == 0.0) jx_rfail(R, n, "modulo by zero");
        if (ints) {
            int64_t x = ival(a), y = ival(b);
            if (y == -1) return jv_int(0);
            int64_t m = x % y;
            if (m != 0 && ((m < 0) != (y < 0))) m += y;
            return jv_int(m);
        } else {
            double x = jv_num(a), y = jv_num(b);
            double m = fmod(x, y);
            if (m != 0 && ((m < 0) != (y < 0))) m += y;
            return jv_float(m);
        }
    case OP_POW:
        if (!nums) bad_operands(R, n, "**", a, b);
        if (ints && ival(b) >= 0) {
            int64_t base = ival(a), e = ival(b), acc = 1;
            while (e > 0) {
                if (e & 1)
                    if (__builtin_mul_overflow(acc, base, &acc)) jx_rfail(R, n, "integer overflow");
                e >>= 1;
                if (e && __builtin_mul_overflow(base, base, &base)) jx_rfail(R, n, "integer overflow");
            }
            return jv_int(acc);
        }
        if (jv_num(a) == 0.0 && jv_num(b) < 0) jx_rfail(R, n, "0.0 cannot be raised to a negative power");
        return jv_float(pow(jv_num(a), jv_num(b)));
    default: jx_rfail(R, n, "unknown operator");
    }
}

static bool contains(jx_run *R, const jx_node *n, jv item, jv container) {
    switch (container.t) {
    case JV_STR:
        if (item.t != JV_STR) jx_rfail(R, n, "'in <string>' requires string as left operand, not %s", jv_type_name(item));
        return jx_find(&R->env, container.u.s, item.u.s, 0, container.u.s->len, false) >= 0;
    case JV_LIST:
        for (size_t i = 0; i < container.u.l->n; i++)
            if (jv_equal(container.u.l->items[i], item)) return true;
        return false;
    case JV_DICT: return jx_dict_get(container.u.d, item) != NULL;
    case JV_UNDEF: return false;
    default: jx_rfail(R, n, "argument of type '%s' is not iterable", jv_type_name(container));
    }
}

bool jx_compare_op(jx_run *R, const jx_node *n, int op, jv a, jv b) {
    switch (op) {
    case OP_EQ: return jv_equal(a, b);
    case OP_NE: return !jv_equal(a, b);
    case CMP_IN: return contains(R, n, a, b);
    case CMP_NOTIN: return !contains(R, n, a, b);
    default: break;
    }
    need_defined(R, n, a);
    need_defined(R, n, b);
    R->env.pos = n->pos;
    if (!(jv_is_num(a) && jv_is_num(b)) && a.t != b.t)
        jx_rfail(R, n, "'%s' not supported between instances of '%s' and '%s'",
                 op == OP_LT ? "<" : op == OP_LE ? "<=" : op == OP_GT ? ">" : ">=", jv_type_name(a), jv_type_name(b));
    int c = jv_compare(&R->env, a, b, false);
    switch (op) {
    case OP_LT: return c < 0;
    case OP_LE: return c <= 0;
    case OP_GT: return c > 0;
    default: return c >= 0;
    }
}
