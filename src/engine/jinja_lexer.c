/* Lexer of the chat-template interpreter (see jinja_lexer.h). */
#include "engine/jinja_lexer.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    jx_env *env;
    const char *s;
    size_t n, i;
    jx_tok *toks;
    size_t ntoks, cap;
    int balance[64]; /* open brackets inside the current tag */
    int nbalance;
    bool in_block; /* the current tag is {% %} (else {{ }}) */
} lexer;

static const char *op_texts[] = {
    [OP_ADD] = "+",      [OP_SUB] = "-",      [OP_MUL] = "*",       [OP_DIV] = "/",      [OP_FLOORDIV] = "//",
    [OP_MOD] = "%",      [OP_POW] = "**",     [OP_TILDE] = "~",     [OP_EQ] = "==",      [OP_NE] = "!=",
    [OP_LT] = "<",       [OP_LE] = "<=",      [OP_GT] = ">",        [OP_GE] = ">=",      [OP_ASSIGN] = "=",
    [OP_LPAREN] = "(",   [OP_RPAREN] = ")",   [OP_LBRACKET] = "[",  [OP_RBRACKET] = "]", [OP_LBRACE] = "{",
    [OP_RBRACE] = "}",   [OP_COMMA] = ",",    [OP_DOT] = ".",       [OP_COLON] = ":",    [OP_PIPE] = "|",
};

const char *jx_op_text(jx_op op) {
    if ((int)op <= 0 || (size_t)op >= sizeof op_texts / sizeof op_texts[0] || !op_texts[op]) return "?";
    return op_texts[op];
}

#if defined(__GNUC__)
__attribute__((noreturn))
#endif
static void lex_fail(lexer *L, size_t pos, const char *msg) {
    L->env->pos = pos;
    jx_fail(L->env, "%s", msg);
}

static jx_tok *push(lexer *L, jx_tok_type type, size_t pos) {
    if (L->ntoks == L->cap) {
        size_t cap = L->cap ? L->cap * 2 : 256;
        jx_tok *t = jx_alloc(L->env, cap * sizeof(jx_tok));
        if (L->ntoks) memcpy(t, L->toks, L->ntoks * sizeof(jx_tok));
        L->toks = t;
        L->cap = cap;
    }
    jx_tok *t = &L->toks[L->ntoks++];
    memset(t, 0, sizeof *t);
    t->type = type;
    t->pos = pos;
    return t;
}

static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }
static bool is_digit(char c) { return c >= '0' && c <= '9'; }
static bool is_name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
static bool is_name_char(char c) { return is_name_start(c) || is_digit(c); }

static void push_data(lexer *L, size_t pos, const char *s, size_t n) {
    if (n == 0) return;
    jx_tok *t = push(L, JT_DATA, pos);
    jx_str *str = jx_str_new(L->env, s, n);
    t->s = str->s;
    t->len = n;
}

/* Where the next tag opener ({{, {%, {#) starts, or n. */
static size_t find_tag(const lexer *L, size_t from) {
    for (size_t i = from; i + 1 < L->n; i++) {
        if (L->s[i] == '{' && (L->s[i + 1] == '{' || L->s[i + 1] == '%' || L->s[i + 1] == '#')) return i;
    }
    return L->n;
}

/* Applies `-` / lstrip_blocks to the data before a tag: returns its kept length. */
static size_t strip_before(const char *text, size_t n, char sign, bool block_or_comment, bool line_starting) {
    if (sign == '-') {
        while (n > 0 && is_space(text[n - 1])) n--;
        return n;
    }
    if (sign == '+' || !block_or_comment) return n;
    size_t l = n;
    while (l > 0 && text[l - 1] != '\n') l--;
    if (l == n) return n; /* nothing between the newline and the tag */
    if (l == 0 && !line_starting) return n;
    for (size_t k = l; k < n; k++)
        if (!is_space(text[k])) return n;
    return l;
}

static uint32_t read_hex(lexer *L, size_t *i, int digits, bool *ok) {
    uint32_t v = 0;
    for (int k = 0; k < digits; k++) {
        if (*i >= L->n) {
            *ok = false;
            return 0;
        }
        char c = L->s[*i];
        int h = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
        if (h < 0) {
            *ok = false;
            return 0;
        }
        v = v * 16 + (uint32_t)h;
        (*i)++;
    }
    *ok = true;
    return v;
}

/* A string literal with Python's escapes. */
static void lex_string(lexer *L) {
    size_t start = L->i;
    char q = L->s[L->i++];
    jx_buf b = {0};
    for (;;) {
        if (L->i >= L->n) lex_fail(L, start, "unterminated string literal");
        char c = L->s[L->i];
        if (c == q) {
            L->i++;
            break;
        }
        if (c != '\\') {
            size_t k = L->i;
            while (L->i < L->n && L->s[L->i] != q && L->s[L->i] != '\\') L->i++;
            jx_buf_put(L->env, &b, L->s + k, L->i - k);
            continue;
        }
        if (L->i + 1 >= L->n) lex_fail(L, start, "unterminated string literal");
        char e = L->s[L->i + 1];
        L->i += 2;
        switch (e) {
        case '\n': break; /* line continuation */
        case '\\': jx_buf_putc(L->env, &b, '\\'); break;
        case '\'': jx_buf_putc(L->env, &b, '\''); break;
        case '"': jx_buf_putc(L->env, &b, '"'); break;
        case 'a': jx_buf_putc(L->env, &b, '\a'); break;
        case 'b': jx_buf_putc(L->env, &b, '\b'); break;
        case 'f': jx_buf_putc(L->env, &b, '\f'); break;
        case 'n': jx_buf_putc(L->env, &b, '\n'); break;
        case 'r': jx_buf_putc(L->env, &b, '\r'); break;
        case 't': jx_buf_putc(L->env, &b, '\t'); break;
        case 'v': jx_buf_putc(L->env, &b, '\v'); break;
        case 'x':
        case 'u':
        case 'U': {
            bool ok;
            size_t save = L->i;
            uint32_t cp = read_hex(L, &L->i, e == 'x' ? 2 : e == 'u' ? 4 : 8, &ok);
            if (!ok) {
                L->env->pos = save - 2;
                jx_fail(L->env, "bad \\%c escape in string literal", e);
            }
            if (cp > 0x10FFFF || (cp >= 0xD800 && cp < 0xE000)) cp = 0xFFFD;
            jx_utf8_put(L->env, &b, cp);
            break;
        }
        default:
            if (e >= '0' && e <= '7') {
                uint32_t v = (uint32_t)(e - '0');
                for (int k = 0; k < 2 && L->i < L->n && L->s[L->i] >= '0' && L->s[L->i] <= '7'; k++)
                    v = v * 8 + (uint32_t)(L->s[L->i++] - '0');
                jx_utf8_put(L->env, &b, v);
            } else {
                /* unknown escapes stay as they are */
                jx_buf_putc(L->env, &b, '\\');
                L->i--;
            }
        }
    }
    jx_tok *t = push(L, JT_STRING, start);
    jv v = jx_buf_value(L->env, &b);
    t->s = v.u.s->s;
    t->len = v.u.s->len;
}

/* Digits with optional single underscores between them; returns the count read. */
static size_t digits_run(const lexer *L, size_t i) {
    size_t k = i;
    if (k >= L->n || !is_digit(L->s[k])) return 0;
    while (k < L->n) {
        if (is_digit(L->s[k])) {
            k++;
        } else if (L->s[k] == '_' && k + 1 < L->n && is_digit(L->s[k + 1])) {
            k++;
        } else {
            break;
        }
    }
    return k - i;
}

static void lex_number(lexer *L) {
    size_t start = L->i;
    size_t k = start + digits_run(L, start);
    bool is_float = false;
    if (k + 1 < L->n && L->s[k] == '.' && is_digit(L->s[k + 1])) {
        is_float = true;
        k += 1 + digits_run(L, k + 1);
    }
    if (k < L->n && (L->s[k] == 'e' || L->s[k] == 'E')) {
        size_t e = k + 1;
        if (e < L->n && (L->s[e] == '+' || L->s[e] == '-')) e++;
        size_t d = digits_run(L, e);
        if (d) {
            is_float = true;
            k = e + d;
        }
    }
    char tmp[128];
    size_t m = 0;
    for (size_t i = start; i < k && m + 1 < sizeof tmp; i++)
        if (L->s[i] != '_') tmp[m++] = L->s[i];
    tmp[m] = 0;
    L->i = k;
    if (k - start >= sizeof tmp) lex_fail(L, start, "number literal too long");
    jx_tok *t;
    if (!is_float) {
        errno = 0;
        long long v = strtoll(tmp, NULL, 10);
        if (errno == 0) {
            t = push(L, JT_INT, start);
            t->i = v;
            return;
        }
    }
    t = push(L, JT_FLOAT, start);
    t->f = strtod(tmp, NULL);
}

static bool lex_op(lexer *L) {
    static const struct {
        const char *s;
        jx_op op;
    } ops[] = {
        {"//", OP_FLOORDIV}, {"**", OP_POW}, {"==", OP_EQ}, {"!=", OP_NE}, {"<=", OP_LE}, {">=", OP_GE},
        {"+", OP_ADD},       {"-", OP_SUB},  {"*", OP_MUL}, {"/", OP_DIV}, {"%", OP_MOD}, {"~", OP_TILDE},
        {"<", OP_LT},        {">", OP_GT},   {"=", OP_ASSIGN}, {"(", OP_LPAREN}, {")", OP_RPAREN},
        {"[", OP_LBRACKET},  {"]", OP_RBRACKET}, {"{", OP_LBRACE}, {"}", OP_RBRACE}, {",", OP_COMMA},
        {".", OP_DOT},       {":", OP_COLON}, {"|", OP_PIPE},
    };
    for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++) {
        size_t len = strlen(ops[k].s);
        if (L->n - L->i >= len && memcmp(L->s + L->i, ops[k].s, len) == 0) {
            jx_op op = ops[k].op;
            if (op == OP_LPAREN || op == OP_LBRACKET || op == OP_LBRACE) {
                if (L->nbalance >= (int)(sizeof L->balance / sizeof L->balance[0])) lex_fail(L, L->i, "brackets nested too deeply");
                L->balance[L->nbalance++] = op;
            } else if (op == OP_RPAREN || op == OP_RBRACKET || op == OP_RBRACE) {
                jx_op want = op == OP_RPAREN ? OP_LPAREN : op == OP_RBRACKET ? OP_LBRACKET : OP_LBRACE;
                if (L->nbalance == 0 || L->balance[L->nbalance - 1] != (int)want) {
                    L->env->pos = L->i;
                    if (op == OP_RBRACE && L->nbalance == 0)
                        jx_fail(L->env, "unexpected '}', expected '%s'", L->in_block ? "%}" : "}}");
                    if (L->nbalance > 0) {
                        int open = L->balance[L->nbalance - 1];
                        jx_fail(L->env, "unexpected '%s', expected '%s'", ops[k].s,
                                open == OP_LPAREN ? ")" : open == OP_LBRACKET ? "]" : "}");
                    }
                    jx_fail(L->env, "unexpected '%s'", ops[k].s);
                }
                L->nbalance--;
            }
            jx_tok *t = push(L, JT_OP, L->i);
            t->op = op;
            L->i += len;
            return true;
        }
    }
    return false;
}

/* After a tag's end: `-` strips all following whitespace, trim_blocks drops one newline. */
static void after_end(lexer *L, char sign, bool block_or_comment) {
    if (sign == '-') {
        while (L->i < L->n && is_space(L->s[L->i])) L->i++;
    } else if (sign != '+' && block_or_comment && L->i < L->n && L->s[L->i] == '\n') {
        L->i++;
    }
}

/* Tokens of one {{ }} or {% %} tag, up to and including its end. */
static void lex_tag(lexer *L, bool is_block, size_t tag_pos) {
    L->nbalance = 0;
    L->in_block = is_block;
    for (;;) {
        while (L->i < L->n && is_space(L->s[L->i])) L->i++;
        if (L->i >= L->n) lex_fail(L, tag_pos, is_block ? "unexpected end of template: missing '%}'" : "unexpected end of template: missing '}}'");
        char c = L->s[L->i];
        if (L->nbalance == 0) {
            char sign = 0;
            size_t k = L->i;
            if ((c == '-' || (c == '+' && is_block)) && k + 1 < L->n) {
                sign = c;
                k++;
            }
            if (k + 1 < L->n && ((is_block && L->s[k] == '%' && L->s[k + 1] == '}') || (!is_block && L->s[k] == '}' && L->s[k + 1] == '}'))) {
                push(L, is_block ? JT_BLOCK_END : JT_VAR_END, L->i);
                L->i = k + 2;
                after_end(L, sign, is_block);
                return;
            }
        }
        if (c == '\'' || c == '"') {
            lex_string(L);
        } else if (is_digit(c)) {
            lex_number(L);
        } else if (is_name_start(c)) {
            size_t start = L->i;
            while (L->i < L->n && is_name_char(L->s[L->i])) L->i++;
            jx_tok *t = push(L, JT_NAME, start);
            jx_str *str = jx_str_new(L->env, L->s + start, L->i - start);
            t->s = str->s;
            t->len = str->len;
        } else if (!lex_op(L)) {
            L->env->pos = L->i;
            if ((unsigned char)c >= 0x20 && (unsigned char)c < 0x7f)
                jx_fail(L->env, "unexpected character '%c'", c);
            jx_fail(L->env, "unexpected character (byte 0x%02x)", (unsigned char)c);
        }
    }
}

/* `{% raw %}` at L->i (just after "{%" and its sign)? Consumes through "%}" if so. */
static bool try_raw(lexer *L) {
    size_t k = L->i;
    while (k < L->n && is_space(L->s[k])) k++;
    if (L->n - k < 3 || memcmp(L->s + k, "raw", 3) != 0) return false;
    k += 3;
    if (k < L->n && is_name_char(L->s[k])) return false;
    while (k < L->n && is_space(L->s[k])) k++;
    char sign = 0;
    if (k < L->n && (L->s[k] == '-' || L->s[k] == '+')) sign = L->s[k++];
    if (L->n - k < 2 || L->s[k] != '%' || L->s[k + 1] != '}') return false;
    L->i = k + 2;
    if (sign == '-')
        while (L->i < L->n && is_space(L->s[L->i])) L->i++;
    return true;
}

/* Body of a raw block: data up to {% endraw %}. */
static void lex_raw_body(lexer *L, size_t tag_pos, bool *line_starting) {
    size_t start = L->i;
    for (size_t i = start; i + 1 < L->n; i++) {
        if (L->s[i] != '{' || L->s[i + 1] != '%') continue;
        size_t k = i + 2;
        char sign = 0;
        if (k < L->n && (L->s[k] == '-' || L->s[k] == '+')) sign = L->s[k++];
        while (k < L->n && is_space(L->s[k])) k++;
        if (L->n - k < 6 || memcmp(L->s + k, "endraw", 6) != 0) continue;
        k += 6;
        while (k < L->n && is_space(L->s[k])) k++;
        char esign = 0;
        if (k < L->n && (L->s[k] == '-' || L->s[k] == '+')) esign = L->s[k++];
        if (L->n - k < 2 || L->s[k] != '%' || L->s[k + 1] != '}') continue;
        size_t keep = strip_before(L->s + start, i - start, sign, true, *line_starting);
        push_data(L, start, L->s + start, keep);
        L->i = k + 2;
        after_end(L, esign, true);
        *line_starting = L->i > 0 && L->s[L->i - 1] == '\n';
        return;
    }
    lex_fail(L, tag_pos, "missing {% endraw %}");
}

void jx_lex(jx_env *env, const char *src, size_t len, jx_tok **toks, size_t *ntoks) {
    lexer L = {.env = env, .s = src, .n = len, .i = 0};
    bool line_starting = true;
    while (L.i < L.n) {
        size_t p = find_tag(&L, L.i);
        const char *text = L.s + L.i;
        size_t tn = p - L.i;
        if (p >= L.n) {
            push_data(&L, L.i, text, tn);
            break;
        }
        char kind = L.s[p + 1];
        char sign = (p + 2 < L.n && (L.s[p + 2] == '-' || L.s[p + 2] == '+')) ? L.s[p + 2] : 0;
        if (kind == '{' && sign == '+') sign = 0; /* {{+ is not a modifier */
        size_t keep = strip_before(text, tn, sign, kind != '{', line_starting);
        push_data(&L, L.i, text, keep);
        L.i = p + 2 + (sign ? 1 : 0);
        if (kind == '#') {
            size_t k = L.i;
            for (;;) {
                if (k + 1 >= L.n) lex_fail(&L, p, "unterminated comment: missing '#}'");
                if (L.s[k] == '#' && L.s[k + 1] == '}') break;
                k++;
            }
            char esign = (k > L.i && (L.s[k - 1] == '-' || L.s[k - 1] == '+')) ? L.s[k - 1] : 0;
            L.i = k + 2;
            after_end(&L, esign, true);
        } else if (kind == '%' && try_raw(&L)) {
            lex_raw_body(&L, p, &line_starting);
            continue;
        } else {
            push(&L, kind == '%' ? JT_BLOCK_BEGIN : JT_VAR_BEGIN, p);
            lex_tag(&L, kind == '%', p);
        }
        line_starting = L.i > 0 && L.s[L.i - 1] == '\n';
    }
    push(&L, JT_EOF, L.n);
    *toks = L.toks;
    *ntoks = L.ntoks;
}
