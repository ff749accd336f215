/* Text helpers of the chat-template interpreter (see jinja_text.h). */
#include "engine/jinja_text.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uint32_t jx_utf8_decode(const char *s, size_t n, size_t *len) {
    size_t k = jx_utf8_seqlen(s, n);
    *len = k;
    unsigned char c = (unsigned char)s[0];
    if (k == 1) return c < 0x80 ? c : 0xFFFD;
    uint32_t cp = (uint32_t)(c & (0xFF >> (k + 1)));
    for (size_t i = 1; i < k; i++) cp = (cp << 6) | ((unsigned char)s[i] & 0x3F);
    return cp;
}

bool jx_is_space_cp(uint32_t cp) {
    return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20) || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
           (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

uint32_t jx_upper_cp(uint32_t cp) {
    if (cp >= 'a' && cp <= 'z') return cp - 32;
    if (cp < 0x80) return cp;
    if ((cp >= 0xE0 && cp <= 0xFE && cp != 0xF7)) return cp - 32;
    if (cp == 0xFF) return 0x178;
    if (cp >= 0x3B1 && cp <= 0x3C9 && cp != 0x3C2) return cp - 32;
    if (cp == 0x3C2) return 0x3A3;
    if (cp >= 0x430 && cp <= 0x44F) return cp - 32;
    if (cp >= 0x450 && cp <= 0x45F) return cp - 80;
    if (cp >= 0x100 && cp <= 0x17F && cp != 0x131 && cp != 0x138 && cp != 0x149 && cp != 0x17F) {
        /* Latin Extended-A: pairs, mostly even upper / odd lower */
        bool odd_lower = (cp < 0x138) || (cp > 0x148 && cp < 0x178);
        if (odd_lower && (cp & 1)) return cp - 1;
        if (!odd_lower && !(cp & 1) && cp != 0x178) return cp - 1;
    }
    return cp;
}

uint32_t jx_lower_cp(uint32_t cp) {
    if (cp >= 'A' && cp <= 'Z') return cp + 32;
    if (cp < 0x80) return cp;
    if (cp >= 0xC0 && cp <= 0xDE && cp != 0xD7) return cp + 32;
    if (cp == 0x178) return 0xFF;
    if (cp >= 0x391 && cp <= 0x3A9 && cp != 0x3A2) return cp + 32;
    if (cp >= 0x410 && cp <= 0x42F) return cp + 32;
    if (cp >= 0x400 && cp <= 0x40F) return cp + 80;
    if (cp >= 0x100 && cp <= 0x17F && cp != 0x130 && cp != 0x138 && cp != 0x149 && cp != 0x178) {
        bool even_upper = (cp < 0x138) || (cp > 0x148 && cp < 0x178);
        if (even_upper && !(cp & 1)) return cp + 1;
        if (!even_upper && (cp & 1) && cp != 0x17F) return cp + 1;
    }
    return cp;
}

bool jx_is_cased_letter(uint32_t cp) { return jx_upper_cp(cp) != cp || jx_lower_cp(cp) != cp || cp == 0xDF; }

bool jx_is_alpha_cp(uint32_t cp) {
    if (cp < 0x80) return (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z');
    if (jx_is_cased_letter(cp)) return true;
    /* letters of scripts without case (CJK, kana, Hangul, Arabic, Hebrew, ...) */
    return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3040 && cp <= 0x30FF) || (cp >= 0xAC00 && cp <= 0xD7A3) ||
           (cp >= 0x0600 && cp <= 0x06FF && !(cp >= 0x0660 && cp <= 0x0669)) || (cp >= 0x05D0 && cp <= 0x05EA) ||
           (cp >= 0x0900 && cp <= 0x097F) || (cp >= 0xAA && cp <= 0xBA && (cp == 0xAA || cp == 0xBA));
}

jx_str *jx_text(jx_run *R, jv v) {
    if (v.t == JV_UNDEF) return jx_str_new(&R->env, "", 0);
    return jv_to_str(&R->env, v).u.s;
}

jv jx_change_case(jx_run *R, const jx_str *s, jx_case mode) {
    jx_buf b = {0};
    bool prev_cased = false;   /* Python title(): previous char is a cased letter */
    bool word_start = true;    /* Jinja title: start of a word */
    for (size_t i = 0; i < s->len;) {
        size_t k;
        uint32_t cp = jx_utf8_decode(s->s + i, s->len - i, &k);
        uint32_t out = cp;
        switch (mode) {
        case CASE_UPPER: out = jx_upper_cp(cp); break;
        case CASE_LOWER: out = jx_lower_cp(cp); break;
        case CASE_SWAP: out = jx_upper_cp(cp) != cp ? jx_upper_cp(cp) : jx_lower_cp(cp); break;
        case CASE_CAPITALIZE: out = i == 0 ? jx_upper_cp(cp) : jx_lower_cp(cp); break;
        case CASE_TITLE_PY:
            out = prev_cased ? jx_lower_cp(cp) : jx_upper_cp(cp);
            prev_cased = jx_is_cased_letter(cp);
            break;
        case CASE_TITLE_JINJA: {
            bool sep = jx_is_space_cp(cp) || cp == '-' || cp == '(' || cp == '{' || cp == '[' || cp == '<';
            if (sep) {
                word_start = true;
            } else {
                out = word_start ? jx_upper_cp(cp) : jx_lower_cp(cp);
                word_start = false;
            }
            break;
        }
        }
        if (cp == 0xDF && (mode == CASE_UPPER || (mode == CASE_SWAP))) { /* ß has no single upper case */
            jx_buf_puts(&R->env, &b, "SS");
            i += k;
            continue;
        }
        if (out == cp && k > 1)
            jx_buf_put(&R->env, &b, s->s + i, k); /* keep the original bytes (also invalid ones) */
        else
            jx_utf8_put(&R->env, &b, out);
        i += k;
    }
    return jx_buf_value(&R->env, &b);
}

typedef struct {
    uint32_t *cps;
    size_t n;
} cp_set;

static int cmp_cp(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static cp_set make_set(jx_run *R, const jx_str *chars) {
    cp_set set = {.cps = jx_alloc(&R->env, (chars->len + 1) * sizeof(uint32_t)), .n = 0};
    for (size_t i = 0; i < chars->len;) {
        size_t k;
        set.cps[set.n++] = jx_utf8_decode(chars->s + i, chars->len - i, &k);
        i += k;
    }
    qsort(set.cps, set.n, sizeof(uint32_t), cmp_cp);
    return set;
}

static bool in_set(const cp_set *set, uint32_t cp) {
    return bsearch(&cp, set->cps, set->n, sizeof(uint32_t), cmp_cp) != NULL;
}

jv jx_strip(jx_run *R, const jx_str *s, const jx_str *chars, bool left, bool right) {
    size_t a = 0, b = s->len;
    cp_set set = {0};
    if (chars) set = make_set(R, chars);
    if (left) {
        while (a < b) {
            size_t k;
            uint32_t cp = jx_utf8_decode(s->s + a, b - a, &k);
            if (chars ? !in_set(&set, cp) : !jx_is_space_cp(cp)) break;
            a += k;
        }
    }
    if (right) {
        while (b > a) {
            size_t st = b - 1;
            while (st > a && ((unsigned char)s->s[st] >> 6) == 2) st--;
            size_t k;
            uint32_t cp = jx_utf8_decode(s->s + st, b - st, &k);
            if (st + k != b) { /* invalid sequence: treat the last byte alone */
                st = b - 1;
                cp = 0xFFFD;
            }
            if (chars ? !in_set(&set, cp) : !jx_is_space_cp(cp)) break;
            b = st;
        }
    }
    return jv_str(&R->env, s->s + a, b - a);
}

/* First match of nd (m bytes) in h (n bytes), in linear time: short
 * needles by memchr + memcmp, long ones by Knuth-Morris-Pratt. */
static const char *find_bytes(jx_env *env, const char *h, size_t n, const char *nd, size_t m) {
    if (m > n) return NULL;
    if (m <= 16) {
        const char *end = h + (n - m) + 1;
        for (const char *p = h; p < end; p++) {
            p = memchr(p, nd[0], (size_t)(end - p));
            if (!p) return NULL;
            if (memcmp(p, nd, m) == 0) return p;
        }
        return NULL;
    }
    size_t *fail = jx_alloc(env, m * sizeof(size_t));
    fail[0] = 0;
    for (size_t i = 1, k = 0; i < m; i++) {
        while (k && nd[i] != nd[k]) k = fail[k - 1];
        if (nd[i] == nd[k]) k++;
        fail[i] = k;
    }
    for (size_t i = 0, k = 0; i < n; i++) {
        while (k && h[i] != nd[k]) k = fail[k - 1];
        if (h[i] == nd[k]) k++;
        if (k == m) return h + i + 1 - m;
    }
    return NULL;
}

int64_t jx_find(jx_env *env, const jx_str *hay, const jx_str *needle, size_t from, size_t to, bool reverse) {
    if (to > hay->len) to = hay->len;
    if (from > to || needle->len > to - from) return -1;
    size_t n = to - from, m = needle->len;
    if (m == 0) return (int64_t)(reverse ? to : from);
    if (!reverse) {
        const char *p = find_bytes(env, hay->s + from, n, needle->s, m);
        return p ? (int64_t)(p - hay->s) : -1;
    }
    /* the last match: the first one in the reversed texts */
    char *rh = jx_alloc(env, n), *rn = jx_alloc(env, m);
    for (size_t i = 0; i < n; i++) rh[i] = hay->s[to - 1 - i];
    for (size_t i = 0; i < m; i++) rn[i] = needle->s[m - 1 - i];
    const char *p = find_bytes(env, rh, n, rn, m);
    if (!p) return -1;
    return (int64_t)(to - (size_t)(p - rh) - m);
}

/* Whitespace run boundaries for split() without a separator. */
static size_t skip_space(const jx_str *s, size_t i) {
    while (i < s->len) {
        size_t k;
        if (!jx_is_space_cp(jx_utf8_decode(s->s + i, s->len - i, &k))) break;
        i += k;
    }
    return i;
}

static size_t skip_word(const jx_str *s, size_t i) {
    while (i < s->len) {
        size_t k;
        if (jx_is_space_cp(jx_utf8_decode(s->s + i, s->len - i, &k))) break;
        i += k;
    }
    return i;
}

static bool space_before(const jx_str *s, size_t end, size_t *start) {
    if (end == 0) return false;
    size_t st = end - 1;
    while (st > 0 && ((unsigned char)s->s[st] >> 6) == 2) st--;
    size_t k;
    uint32_t cp = jx_utf8_decode(s->s + st, end - st, &k);
    if (st + k != end) {
        st = end - 1;
        cp = 0xFFFD;
    }
    *start = st;
    return jx_is_space_cp(cp);
}

jv jx_split(jx_run *R, const jx_str *s, const jx_str *sep, int64_t maxsplit, bool from_right) {
    jv out = jv_list(&R->env, 0);
    if (sep && sep->len == 0) jx_fail(&R->env, "empty separator");
    if (!from_right) {
        if (!sep) {
            size_t i = skip_space(s, 0);
            while (i < s->len) {
                if (maxsplit >= 0 && (int64_t)out.u.l->n >= maxsplit) {
                    /* the rest of the string, as it is */
                    jx_list_push(&R->env, out.u.l, jv_str(&R->env, s->s + i, s->len - i));
                    return out;
                }
                size_t e = skip_word(s, i);
                jx_list_push(&R->env, out.u.l, jv_str(&R->env, s->s + i, e - i));
                i = skip_space(s, e);
            }
            return out;
        }
        size_t i = 0;
        for (;;) {
            int64_t p = (maxsplit >= 0 && (int64_t)out.u.l->n >= maxsplit) ? -1 : jx_find(&R->env, s, sep, i, s->len, false);
            if (p < 0) {
                jx_list_push(&R->env, out.u.l, jv_str(&R->env, s->s + i, s->len - i));
                return out;
            }
            jx_list_push(&R->env, out.u.l, jv_str(&R->env, s->s + i, (size_t)p - i));
            i = (size_t)p + sep->len;
        }
    }
    /* rsplit: collect from the right, then reverse */
    jv rev = jv_list(&R->env, 0);
    if (!sep) {
        size_t e = s->len, st;
        while (e > 0 && space_before(s, e, &st)) e = st;
        while (e > 0) {
            size_t b = e;
            if (maxsplit >= 0 && (int64_t)rev.u.l->n >= maxsplit) {
                jx_list_push(&R->env, rev.u.l, jv_str(&R->env, s->s, e));
                break;
            }
            while (b > 0 && !space_before(s, b, &st)) {
                size_t k = 1;
                while (b - k > 0 && ((unsigned char)s->s[b - k] >> 6) == 2) k++;
                b -= k;
            }
            jx_list_push(&R->env, rev.u.l, jv_str(&R->env, s->s + b, e - b));
            e = b;
            while (e > 0 && space_before(s, e, &st)) e = st;
        }
    } else {
        size_t e = s->len;
        for (;;) {
            int64_t p = (maxsplit >= 0 && (int64_t)rev.u.l->n >= maxsplit) ? -1 : jx_find(&R->env, s, sep, 0, e, true);
            if (p < 0) {
                jx_list_push(&R->env, rev.u.l, jv_str(&R->env, s->s, e));
                break;
            }
            jx_list_push(&R->env, rev.u.l, jv_str(&R->env, s->s + p + sep->len, e - (size_t)p - sep->len));
            e = (size_t)p;
        }
    }
    for (size_t i = rev.u.l->n; i-- > 0;) jx_list_push(&R->env, out.u.l, rev.u.l->items[i]);
    return out;
}

jv jx_splitlines(jx_run *R, const jx_str *s, bool keepends) {
    jv out = jv_list(&R->env, 0);
    size_t start = 0, i = 0;
    while (i < s->len) {
        size_t k;
        uint32_t cp = jx_utf8_decode(s->s + i, s->len - i, &k);
        bool brk = cp == '\n' || cp == '\r' || cp == '\v' || cp == '\f' || cp == 0x1C || cp == 0x1D || cp == 0x1E ||
                   cp == 0x85 || cp == 0x2028 || cp == 0x2029;
        if (!brk) {
            i += k;
            continue;
        }
        size_t end = i;
        i += k;
        if (cp == '\r' && i < s->len && s->s[i] == '\n') i++;
        jx_list_push(&R->env, out.u.l, jv_str(&R->env, s->s + start, (keepends ? i : end) - start));
        start = i;
    }
    if (start < s->len) jx_list_push(&R->env, out.u.l, jv_str(&R->env, s->s + start, s->len - start));
    return out;
}

jv jx_replace(jx_run *R, const jx_str *s, const jx_str *old, const jx_str *rep, int64_t count) {
    jx_buf b = {0};
    if (old->len == 0) { /* Python inserts rep before every character and at the end */
        int64_t done = 0;
        size_t i = 0;
        while (i <= s->len) {
            if (count < 0 || done < count) {
                jx_buf_put(&R->env, &b, rep->s, rep->len);
                done++;
            }
            if (i == s->len) break;
            size_t k = jx_utf8_seqlen(s->s + i, s->len - i);
            jx_buf_put(&R->env, &b, s->s + i, k);
            i += k;
        }
        return jx_buf_value(&R->env, &b);
    }
    size_t i = 0;
    int64_t done = 0;
    while (i <= s->len) {
        int64_t p = (count >= 0 && done >= count) ? -1 : jx_find(&R->env, s, old, i, s->len, false);
        if (p < 0) break;
        jx_buf_put(&R->env, &b, s->s + i, (size_t)p - i);
        jx_buf_put(&R->env, &b, rep->s, rep->len);
        i = (size_t)p + old->len;
        done++;
    }
    jx_buf_put(&R->env, &b, s->s + i, s->len - i);
    if (!b.p) return jv_str(&R->env, "", 0);
    return jx_buf_value(&R->env, &b);
}

/* ------------------------------------------------------------- %-formatting */

static void pad(jx_run *R, jx_buf *b, const char *s, size_t n, int width, bool left) {
    size_t cps = jx_utf8_len(s, n);
    if (!left)
        for (size_t i = cps; (int)i < width; i++) jx_buf_putc(&R->env, b, ' ');
    jx_buf_put(&R->env, b, s, n);
    if (left)
        for (size_t i = cps; (int)i < width; i++) jx_buf_putc(&R->env, b, ' ');
}

jv jx_percent_format(jx_run *R, const jx_node *n, jv fmt, jv args) {
    const jx_str *f = fmt.u.s;
    jv *items;
    size_t nitems;
    jv single = args;
    jx_dict *mapping = args.t == JV_DICT ? args.u.d : NULL;
    if (args.t == JV_LIST && args.u.l->tuple) {
        items = args.u.l->items;
        nitems = args.u.l->n;
    } else {
        items = &single;
        nitems = 1;
    }
    size_t used = 0;
    bool used_mapping = false;
    jx_buf b = {0};
    for (size_t i = 0; i < f->len;) {
        char c = f->s[i];
        if (c != '%') {
            size_t st = i;
            while (i < f->len && f->s[i] != '%') i++;
            jx_buf_put(&R->env, &b, f->s + st, i - st);
            continue;
        }
        i++;
        if (i >= f->len) jx_rfail(R, n, "incomplete format");
        jv arg;
        bool have_arg = false;
        if (f->s[i] == '(') {
            size_t st = ++i;
            while (i < f->len && f->s[i] != ')') i++;
            if (i >= f->len) jx_rfail(R, n, "incomplete format key");
            if (!mapping) jx_rfail(R, n, "format requires a mapping");
            jv key = jv_str(&R->env, f->s + st, i - st);
            jv *v = jx_dict_get(mapping, key);
            if (!v) jx_rfail(R, n, "format key '%s' not found", key.u.s->s);
            arg = *v;
            have_arg = true;
            used_mapping = true;
            i++;
        }
        char flags[8];
        int nf = 0;
        while (i < f->len && strchr("-+ 0#", f->s[i]) && nf < 7) flags[nf++] = f->s[i++];
        flags[nf] = 0;
        int width = -1, prec = -1;
        if (i < f->len && f->s[i] == '*') {
            if (used >= nitems) jx_rfail(R, n, "not enough arguments for format string");
            jv w = items[used++];
            if (w.t != JV_INT) jx_rfail(R, n, "* wants int");
            width = (int)(w.u.i > 1000 ? 1000 : w.u.i < 0 ? 0 : w.u.i);
            i++;
        } else {
            while (i < f->len && f->s[i] >= '0' && f->s[i] <= '9') {
                width = (width < 0 ? 0 : width) * 10 + (f->s[i++] - '0');
                if (width > 1000) width = 1000;
            }
        }
        if (i < f->len && f->s[i] == '.') {
            i++;
            prec = 0;
            while (i < f->len && f->s[i] >= '0' && f->s[i] <= '9') {
                prec = prec * 10 + (f->s[i++] - '0');
                if (prec > 100) prec = 100;
            }
        }
        while (i < f->len && (f->s[i] == 'l' || f->s[i] == 'h' || f->s[i] == 'L')) i++;
        if (i >= f->len) jx_rfail(R, n, "incomplete format");
        char conv = f->s[i++];
        if (conv == '%') {
            jx_buf_putc(&R->env, &b, '%');
            continue;
        }
        if (!have_arg) {
            if (mapping && args.t == JV_DICT && nitems == 1 && !used_mapping) {
                arg = args; /* "%s" % {'a': 1} prints the dict */
                used = 1;
            } else {
                if (used >= nitems) jx_rfail(R, n, "not enough arguments for format string");
                arg = items[used++];
            }
        }
        bool left = strchr(flags, '-') != NULL;
        char cf[32], out[512];
        switch (conv) {
        case 's':
        case 'r':
        case 'a': {
            jx_buf t = {0};
            if (conv == 's')
                jv_write_str(&R->env, &t, arg);
            else
                jv_write_repr(&R->env, &t, arg);
            size_t len = t.n;
            if (prec >= 0) len = jx_utf8_offset(t.p ? t.p : "", t.n, (size_t)prec);
            pad(R, &b, t.p ? t.p : "", len, width, left);
            break;
        }
        case 'd':
        case 'i':
        case 'u':
        case 'x':
        case 'X':
        case 'o': {
            long long v;
            if (arg.t == JV_INT || arg.t == JV_BOOL)
                v = arg.t == JV_BOOL ? arg.u.b : (long long)arg.u.i;
            else if (arg.t == JV_FLOAT && isfinite(arg.u.f) && fabs(arg.u.f) < 9.2e18)
                v = (long long)arg.u.f;
            else
                jx_rfail(R, n, "%%%c format: a real number is required, not %s", conv, jv_type_name(arg));
            snprintf(cf, sizeof cf, "%%%s%s%s%s%s", flags, width >= 0 ? "*" : "", prec >= 0 ? ".*" : "", "ll",
                     conv == 'i' || conv == 'u' ? "d" : (char[]){conv, 0});
            if (width >= 0 && prec >= 0)
                snprintf(out, sizeof out, cf, width, prec, v);
            else if (width >= 0)
                snprintf(out, sizeof out, cf, width, v);
            else if (prec >= 0)
                snprintf(out, sizeof out, cf, prec, v);
            else
                snprintf(out, sizeof out, cf, v);
            jx_buf_puts(&R->env, &b, out);
            break;
        }
        case 'f':
        case 'F':
        case 'e':
        case 'E':
        case 'g':
        case 'G': {
            if (!jv_is_num(arg)) jx_rfail(R, n, "must be real number, not %s", jv_type_name(arg));
            double v = jv_num(arg);
            snprintf(cf, sizeof cf, "%%%s%s.*%c", flags, width >= 0 ? "*" : "", conv);
            if (width >= 0)
                snprintf(out, sizeof out, cf, width, prec >= 0 ? prec : 6, v);
            else
                snprintf(out, sizeof out, cf, prec >= 0 ? prec : 6, v);
            jx_buf_puts(&R->env, &b, out);
            break;
        }
        case 'c': {
            jx_buf t = {0};
            if (arg.t == JV_INT && arg.u.i >= 0 && arg.u.i <= 0x10FFFF)
                jx_utf8_put(&R->env, &t, (uint32_t)arg.u.i);
            else if (arg.t == JV_STR && jx_utf8_len(arg.u.s->s, arg.u.s->len) == 1)
                jx_buf_put(&R->env, &t, arg.u.s->s, arg.u.s->len);
            else
                jx_rfail(R, n, "%%c requires an int or a single character");
            pad(R, &b, t.p, t.n, width, left);
            break;
        }
        default: jx_rfail(R, n, "unsupported format character '%c'", conv);
        }
    }
    if (!mapping && used < nitems) jx_rfail(R, n, "not all arguments converted during string formatting");
    if (!b.p) return jv_str(&R->env, "", 0);
    return jx_buf_value(&R->env, &b);
}
