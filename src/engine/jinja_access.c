/* Reading values in chat templates: obj.attr and obj[key] as Jinja resolves
 * them (methods, dict keys, list and string indexes, loop fields), Python
 * slices, and the items a for loop visits. */
#include "engine/jinja_interp.h"

#include <string.h>

/* "dict object", "list object", ... as Jinja's messages name values. */
const char *jx_obj_desc(jv v) {
    switch (v.t) {
    case JV_DICT: return v.u.d->ns ? "Namespace object" : "dict object";
    case JV_LIST: return v.u.l->tuple ? "tuple object" : "list object";
    case JV_STR: return "str object";
    case JV_INT: return "int object";
    case JV_FLOAT: return "float object";
    case JV_BOOL: return "bool object";
    case JV_NONE: return "None";
    case JV_FUNC: return "function";
    case JV_LOOP: return "LoopContext";
    default: return "object";
    }
}

jv jx_getattr(jx_run *R, jv obj, const char *name) {
    switch (obj.t) {
    case JV_UNDEF: jx_undefined_fail(R, obj);
    case JV_DICT: {
        if (!obj.u.d->ns) {
            jx_builtin m = jx_find_method(obj, name);
            if (m) return jx_builtin_func(R, name, m, obj);
        }
        jv *v = jx_dict_gets(obj.u.d, name);
        if (v) return *v;
        return jx_undef_hint(R, "'%s' has no attribute '%s'", jx_obj_desc(obj), name);
    }
    case JV_LOOP: {
        bool found;
        jv v = jx_loop_attr(R, obj.u.loop, name, &found);
        if (found) return v;
        break;
    }
    default: break;
    }
    jx_builtin m = jx_find_method(obj, name);
    if (m) return jx_builtin_func(R, name, m, obj);
    return jx_undef_hint(R, "'%s' has no attribute '%s'", jx_obj_desc(obj), name);
}

static bool as_index(jv k, int64_t *out) {
    if (k.t == JV_INT) {
        *out = k.u.i;
        return true;
    }
    if (k.t == JV_BOOL) {
        *out = k.u.b;
        return true;
    }
    return false;
}

static bool str_is_ascii(const jx_str *s) {
    for (size_t i = 0; i < s->len; i++)
        if ((unsigned char)s->s[i] >= 0x80) return false;
    return true;
}

jv jx_getitem(jx_run *R, jv obj, jv key) {
    int64_t idx;
    switch (obj.t) {
    case JV_UNDEF: jx_undefined_fail(R, obj);
    case JV_DICT: {
        jv *v = jx_dict_get(obj.u.d, key);
        if (v) return *v;
        if (key.t == JV_STR) return jx_getattr(R, obj, key.u.s->s);
        return jx_undef_hint(R, "'%s' has no element %s", jx_obj_desc(obj), jv_to_str(&R->env, key).u.s->s);
    }
    case JV_LIST:
        if (as_index(key, &idx)) {
            int64_t n = (int64_t)obj.u.l->n;
            if (idx < 0) idx += n;
            if (idx >= 0 && idx < n) return obj.u.l->items[idx];
            return jx_undef_hint(R, "'%s' has no element %lld", jx_obj_desc(obj), (long long)(idx < 0 ? idx - n : idx));
        }
        break;
    case JV_STR:
        if (as_index(key, &idx)) {
            const jx_str *s = obj.u.s;
            bool ascii = str_is_ascii(s);
            int64_t n = ascii ? (int64_t)s->len : (int64_t)jx_utf8_len(s->s, s->len);
            if (idx < 0) idx += n;
            if (idx >= 0 && idx < n) {
                size_t off = ascii ? (size_t)idx : jx_utf8_offset(s->s, s->len, (size_t)idx);
                size_t len = ascii ? 1 : jx_utf8_seqlen(s->s + off, s->len - off);
                return jv_str(&R->env, s->s + off, len);
            }
            return jx_undef_hint(R, "string index out of range");
        }
        break;
    default: break;
    }
    if (key.t == JV_STR) return jx_getattr(R, obj, key.u.s->s);
    return jx_undef_hint(R, "'%s' has no element %s", jx_obj_desc(obj), jv_to_str(&R->env, key).u.s->s);
}

/* Python's slice.indices() and the slice itself. */
jv jx_slice(jx_run *R, const jx_node *n, jv obj, jv vstart, jv vstop, jv vstep) {
    int64_t start = 0, stop = 0, step = 1;
    bool has_start = vstart.t != JV_NONE && vstart.t != JV_UNDEF;
    bool has_stop = vstop.t != JV_NONE && vstop.t != JV_UNDEF;
    if ((has_start && !as_index(vstart, &start)) || (has_stop && !as_index(vstop, &stop)) ||
        (vstep.t != JV_NONE && vstep.t != JV_UNDEF && !as_index(vstep, &step)))
        jx_rfail(R, n, "slice indices must be integers or None");
    if (step == 0) jx_rfail(R, n, "slice step cannot be zero");
    if (obj.t == JV_UNDEF) jx_undefined_fail(R, obj);
    bool is_str = obj.t == JV_STR;
    if (!is_str && obj.t != JV_LIST) jx_rfail(R, n, "'%s' object is not subscriptable", jv_type_name(obj));
    size_t *offs = NULL; /* code point offsets of a non-ASCII string */
    int64_t len;
    if (is_str) {
        const jx_str *s = obj.u.s;
        if (str_is_ascii(s)) {
            len = (int64_t)s->len;
        } else {
            len = (int64_t)jx_utf8_len(s->s, s->len);
            offs = jx_alloc(&R->env, ((size_t)len + 1) * sizeof *offs);
            size_t o = 0;
            for (int64_t i = 0; i < len; i++) {
                offs[i] = o;
                o += jx_utf8_seqlen(s->s + o, s->len - o);
            }
            offs[len] = s->len;
        }
    } else {
        len = (int64_t)obj.u.l->n;
    }
    int64_t lower = step < 0 ? -1 : 0, upper = step < 0 ? len - 1 : len;
    if (!has_start) {
        start = step < 0 ? upper : lower;
    } else {
        if (start < 0) start += len;
        if (start < lower) start = lower;
        if (start > upper) start = upper;
    }
    if (!has_stop) {
        stop = step < 0 ? lower : upper;
    } else {
        if (stop < 0) stop += len;
        if (stop < lower) stop = lower;
        if (stop > upper) stop = upper;
    }
    if (is_str) {
        const jx_str *s = obj.u.s;
        if (step == 1 && !offs) return jv_str(&R->env, s->s + start, stop > start ? (size_t)(stop - start) : 0);
        jx_buf b = {0};
        for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
            if (offs)
                jx_buf_put(&R->env, &b, s->s + offs[i], offs[i + 1] - offs[i]);
            else
                jx_buf_putc(&R->env, &b, s->s[i]);
        }
        return jx_buf_value(&R->env, &b);
    }
    jv r = obj.u.l->tuple ? jv_tuple(&R->env, 0) : jv_list(&R->env, 0);
    for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) jx_list_push(&R->env, r.u.l, obj.u.l->items[i]);
    return r;
}

jx_list *jx_iter_list(jx_run *R, jv v) {
    jv r = jv_list(&R->env, 0);
    switch (v.t) {
    case JV_UNDEF: break;
    case JV_LIST:
        if (v.u.l->n) {
            r.u.l->items = jx_alloc(&R->env, v.u.l->n * sizeof(jv));
            memcpy(r.u.l->items, v.u.l->items, v.u.l->n * sizeof(jv));
            r.u.l->n = r.u.l->cap = v.u.l->n;
        }
        break;
    case JV_DICT:
        for (size_t i = 0; i < v.u.d->n; i++) jx_list_push(&R->env, r.u.l, v.u.d->keys[i]);
        break;
    case JV_STR: {
        const jx_str *s = v.u.s;
        for (size_t i = 0; i < s->len;) {
            size_t k = jx_utf8_seqlen(s->s + i, s->len - i);
            jx_list_push(&R->env, r.u.l, jv_str(&R->env, s->s + i, k));
            i += k;
        }
        break;
    }
    default: jx_fail(&R->env, "'%s' object is not iterable", jv_type_name(v));
    }
    return r.u.l;
}
