/* A small interpreter for the Go text/template subset that Ollama Modelfile
 * templates use: a lexer, a parser to a tiny AST, and an evaluator over
 * plain values (nil, bool, int, float, string, list, map).
 *
 * Data follows Ollama's template package (template.Values, Execute): with a
 * template that mentions .Messages, one execution with .System, .Messages,
 * .Tools, .Prompt and .Response; with a legacy template (.System, .Prompt,
 * .Response only), one execution per user/assistant turn and a last one cut
 * after its {{ .Response }}, as Ollama does. Consecutive messages of one role
 * are merged with "\n\n" first (Ollama's collate).
 *
 * Everything a render allocates lives in one arena freed at the end; output
 * size, loop iterations, nesting and arena size are bounded so a hostile
 * template ends with an error, not a hang. */
#include "gotmpl.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#define GT_MAX_OUTPUT ((size_t)4 << 20)
#define GT_MAX_ARENA ((size_t)64 << 20)
#define GT_MAX_ITERATIONS 1000000L
#define GT_MAX_DEPTH 64

/* ---- arena ---- */

typedef struct chunk {
    struct chunk *next;
    size_t used, cap;
    max_align_t data[];
} chunk;

typedef struct {
    chunk *head;
    size_t total;
} arena;

static void *arena_alloc(arena *a, size_t n) {
    n = (n + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
    if (n == 0) n = sizeof(max_align_t);
    if (!a->head || a->head->cap - a->head->used < n) {
        size_t cap = n > 64 * 1024 ? n : 64 * 1024;
        if (a->total + cap > GT_MAX_ARENA) return NULL;
        chunk *c = malloc(sizeof *c + cap);
        if (!c) return NULL;
        c->next = a->head;
        c->used = 0;
        c->cap = cap;
        a->head = c;
        a->total += cap;
    }
    void *p = (char *)a->head->data + a->head->used;
    a->head->used += n;
    memset(p, 0, n);
    return p;
}

static void arena_free(arena *a) {
    chunk *c = a->head;
    while (c) {
        chunk *next = c->next;
        free(c);
        c = next;
    }
    a->head = NULL;
    a->total = 0;
}

static char *arena_strndup(arena *a, const char *s, size_t n) {
    char *p = arena_alloc(a, n + 1);
    if (!p) return NULL;
    memcpy(p, s, n);
    p[n] = 0;
    return p;
}

/* A growable array of pointers in the arena (old blocks are simply left). */
typedef struct {
    void **items;
    int n, cap;
} ptrvec;

static int ptrvec_push(arena *a, ptrvec *v, void *item) {
    if (v->n == v->cap) {
        int cap = v->cap ? v->cap * 2 : 4;
        void **items = arena_alloc(a, sizeof(void *) * (size_t)cap);
        if (!items) return -1;
        if (v->n) memcpy(items, v->items, sizeof(void *) * (size_t)v->n);
        v->items = items;
        v->cap = cap;
    }
    v->items[v->n++] = item;
    return 0;
}

/* ---- errors ---- */

typedef struct {
    arena a;
    char *err;
    size_t errlen;
    bool failed;
} gt_state;

static void fail(gt_state *st, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fail(gt_state *st, int line, const char *fmt, ...) {
    if (st->failed) return;
    st->failed = true;
    if (!st->err || !st->errlen) return;
    char msg[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(st->err, st->errlen, "template error at line %d: %s", line, msg);
}

static void fail_oom(gt_state *st, int line) { fail(st, line, "out of memory (the template uses too much)"); }

/* ---- lexer ---- */

typedef enum {
    T_EOF,
    T_TEXT,
    T_LDELIM,
    T_RDELIM,
    T_FIELD,  /* .Name (s = "Name") */
    T_VAR,    /* $name or $ (s = "$name") */
    T_IDENT,  /* keyword or function name */
    T_STRING, /* decoded */
    T_NUMBER, /* s = literal text */
    T_CHAR,   /* ival */
    T_LPAREN,
    T_RPAREN,
    T_PIPE,
    T_DECLARE,
    T_ASSIGN,
    T_COMMA,
    T_DOT,
} ttype;

typedef struct {
    ttype t;
    const char *s; /* NUL-terminated copy in the arena */
    size_t n;
    int64_t ival;
    int line;
    bool spaced; /* whitespace came right before it (field chains need none) */
} token;

typedef struct {
    gt_state *st;
    const char *src;
    size_t len, pos;
    int line;
    token *toks;
    int n, cap;
} lexer;

static bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
static bool is_alnum_(char c) { return isalnum((unsigned char)c) || c == '_'; }

static void count_lines(lexer *lx, size_t from, size_t to) {
    for (size_t i = from; i < to; i++)
        if (lx->src[i] == '\n') lx->line++;
}

static token *emit(lexer *lx, ttype t, const char *s, size_t n, int line, bool spaced) {
    if (lx->n == lx->cap) {
        int cap = lx->cap ? lx->cap * 2 : 64;
        token *nt = arena_alloc(&lx->st->a, sizeof *nt * (size_t)cap);
        if (!nt) {
            fail_oom(lx->st, line);
            return NULL;
        }
        if (lx->n) memcpy(nt, lx->toks, sizeof *nt * (size_t)lx->n);
        lx->toks = nt;
        lx->cap = cap;
    }
    token *tk = &lx->toks[lx->n++];
    memset(tk, 0, sizeof *tk);
    tk->t = t;
    tk->line = line;
    tk->spaced = spaced;
    tk->n = n;
    tk->s = s ? arena_strndup(&lx->st->a, s, n) : "";
    if (!tk->s) {
        fail_oom(lx->st, line);
        return NULL;
    }
    return tk;
}

static void put_utf8(char *buf, size_t *n, uint32_t cp) {
    if (cp < 0x80) {
        buf[(*n)++] = (char)cp;
    } else if (cp < 0x800) {
        buf[(*n)++] = (char)(0xC0 | (cp >> 6));
        buf[(*n)++] = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        buf[(*n)++] = (char)(0xE0 | (cp >> 12));
        buf[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
        buf[(*n)++] = (char)(0x80 | (cp & 0x3F));
    } else {
        buf[(*n)++] = (char)(0xF0 | (cp >> 18));
        buf[(*n)++] = (char)(0x80 | ((cp >> 12) & 0x3F));
        buf[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
        buf[(*n)++] = (char)(0x80 | (cp & 0x3F));
    }
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Decodes a Go quoted string or char literal body starting after the quote;
 * returns the position after the closing quote, or 0 on error. */
static size_t lex_quoted(lexer *lx, size_t p, char quote, char *out, size_t *outn) {
    *outn = 0;
    while (p < lx->len && lx->src[p] != quote) {
        char c = lx->src[p];
        if (c == '\n') {
            fail(lx->st, lx->line, "unterminated quoted string");
            return 0;
        }
        if (c != '\\') {
            out[(*outn)++] = c;
            p++;
            continue;
        }
        if (++p >= lx->len) break;
        char e = lx->src[p++];
        int digits = 0;
        switch (e) {
        case 'n': out[(*outn)++] = '\n'; break;
        case 't': out[(*outn)++] = '\t'; break;
        case 'r': out[(*outn)++] = '\r'; break;
        case 'a': out[(*outn)++] = '\a'; break;
        case 'b': out[(*outn)++] = '\b'; break;
        case 'f': out[(*outn)++] = '\f'; break;
        case 'v': out[(*outn)++] = '\v'; break;
        case '\\': out[(*outn)++] = '\\'; break;
        case '\'': out[(*outn)++] = '\''; break;
        case '"': out[(*outn)++] = '"'; break;
        case 'x': digits = 2; break;
        case 'u': digits = 4; break;
        case 'U': digits = 8; break;
        default:
            if (e >= '0' && e <= '7' && p + 1 < lx->len) {
                int v = (e - '0') * 64 + (lx->src[p] - '0') * 8 + (lx->src[p + 1] - '0');
                if (lx->src[p] < '0' || lx->src[p] > '7' || lx->src[p + 1] < '0' || lx->src[p + 1] > '7' || v > 255) {
                    fail(lx->st, lx->line, "invalid octal escape in string");
                    return 0;
                }
                out[(*outn)++] = (char)v;
                p += 2;
                break;
            }
            fail(lx->st, lx->line, "unknown escape sequence \\%c in string", e);
            return 0;
        }
        if (digits) {
            uint32_t v = 0;
            for (int i = 0; i < digits; i++) {
                int h = p < lx->len ? hexval(lx->src[p]) : -1;
                if (h < 0) {
                    fail(lx->st, lx->line, "invalid \\%c escape in string", e);
                    return 0;
                }
                v = v * 16 + (uint32_t)h;
                p++;
            }
            if (e == 'x') out[(*outn)++] = (char)v;
            else if (v > 0x10FFFF || (v >= 0xD800 && v < 0xE000)) {
                fail(lx->st, lx->line, "invalid Unicode code point in string");
                return 0;
            } else put_utf8(out, outn, v);
        }
    }
    if (p >= lx->len) {
        fail(lx->st, lx->line, "unterminated quoted string");
        return 0;
    }
    return p + 1;
}

/* The inside of one action, from p (just after "{{" and a trim marker) to
 * the closing "}}"; returns the position after it and whether it trims. */
static size_t lex_action(lexer *lx, size_t p, bool *trim_right) {
    *trim_right = false;
    const char *s = lx->src;
    for (;;) {
        bool spaced = false;
        size_t ws = p;
        while (p < lx->len && is_ws(s[p])) p++;
        if (p > ws) {
            spaced = true;
            count_lines(lx, ws, p);
        }
        if (p >= lx->len) {
            fail(lx->st, lx->line, "unclosed action");
            return 0;
        }
        int line = lx->line;
        if (spaced && strncmp(s + p, "-}}", 3) == 0) {
            *trim_right = true;
            if (!emit(lx, T_RDELIM, NULL, 0, line, spaced)) return 0;
            return p + 3;
        }
        if (strncmp(s + p, "}}", 2) == 0) {
            if (!emit(lx, T_RDELIM, NULL, 0, line, spaced)) return 0;
            return p + 2;
        }
        char c = s[p];
        token *tk = NULL;
        if (c == '(' || c == ')' || c == '|' || c == ',') {
            ttype t = c == '(' ? T_LPAREN : c == ')' ? T_RPAREN : c == '|' ? T_PIPE : T_COMMA;
            tk = emit(lx, t, s + p, 1, line, spaced);
            p++;
        } else if (c == ':' && p + 1 < lx->len && s[p + 1] == '=') {
            tk = emit(lx, T_DECLARE, s + p, 2, line, spaced);
            p += 2;
        } else if (c == '=') {
            tk = emit(lx, T_ASSIGN, s + p, 1, line, spaced);
            p++;
        } else if (c == '"' || c == '\'') {
            size_t start = p + 1, end = start;
            while (end < lx->len && s[end] != c && s[end] != '\n') end += (s[end] == '\\') ? 2 : 1;
            char *buf = arena_alloc(&lx->st->a, end - start + 8);
            if (!buf) {
                fail_oom(lx->st, line);
                return 0;
            }
            size_t n;
            size_t next = lex_quoted(lx, start, c, buf, &n);
            if (!next) return 0;
            if (c == '"') {
                tk = emit(lx, T_STRING, buf, n, line, spaced);
            } else {
                /* a char constant is its code point, as in Go */
                const unsigned char *u = (const unsigned char *)buf;
                int64_t cp = -1;
                if (n == 1) cp = u[0];
                else if (n == 2 && (u[0] & 0xE0) == 0xC0) cp = ((u[0] & 0x1F) << 6) | (u[1] & 0x3F);
                else if (n == 3 && (u[0] & 0xF0) == 0xE0)
                    cp = ((u[0] & 0x0F) << 12) | ((u[1] & 0x3F) << 6) | (u[2] & 0x3F);
                else if (n == 4 && (u[0] & 0xF8) == 0xF0)
                    cp = ((int64_t)(u[0] & 0x07) << 18) | ((u[1] & 0x3F) << 12) | ((u[2] & 0x3F) << 6) | (u[3] & 0x3F);
                if (cp < 0) {
                    fail(lx->st, line, "malformed character constant");
                    return 0;
                }
                tk = emit(lx, T_CHAR, s + p, next - p, line, spaced);
                if (tk) tk->ival = cp;
            }
            p = next;
        } else if (c == '`') {
            size_t start = p + 1, end = start;
            while (end < lx->len && s[end] != '`') end++;
            if (end >= lx->len) {
                fail(lx->st, line, "unterminated raw quoted string");
                return 0;
            }
            tk = emit(lx, T_STRING, s + start, end - start, line, spaced);
            count_lines(lx, start, end);
            p = end + 1;
        } else if (c == '$') {
            size_t end = p + 1;
            while (end < lx->len && is_alnum_(s[end])) end++;
            tk = emit(lx, T_VAR, s + p, end - p, line, spaced);
            p = end;
        } else if (c == '.' && p + 1 < lx->len && (isalpha((unsigned char)s[p + 1]) || s[p + 1] == '_')) {
            size_t end = p + 1;
            while (end < lx->len && is_alnum_(s[end])) end++;
            tk = emit(lx, T_FIELD, s + p + 1, end - p - 1, line, spaced);
            p = end;
        } else if (isdigit((unsigned char)c) || ((c == '-' || c == '+' || c == '.') && p + 1 < lx->len &&
                                                  (isdigit((unsigned char)s[p + 1]) || s[p + 1] == '.'))) {
            size_t end = p + 1;
            while (end < lx->len) {
                char d = s[end];
                if (isalnum((unsigned char)d) || d == '_' || d == '.') end++;
                else if ((d == '+' || d == '-') && strchr("eEpP", s[end - 1]) && !(s[p] == '0' && end == p + 1)) end++;
                else break;
            }
            tk = emit(lx, T_NUMBER, s + p, end - p, line, spaced);
            p = end;
        } else if (c == '.') {
            tk = emit(lx, T_DOT, s + p, 1, line, spaced);
            p++;
        } else if (isalpha((unsigned char)c) || c == '_') {
            size_t end = p + 1;
            while (end < lx->len && is_alnum_(s[end])) end++;
            tk = emit(lx, T_IDENT, s + p, end - p, line, spaced);
            p = end;
        } else {
            fail(lx->st, line, "unexpected \"%c\" in action", c);
            return 0;
        }
        if (!tk) return 0;
    }
}

static int lex(lexer *lx) {
    const char *s = lx->src;
    size_t p = 0;
    bool trim_next = false;
    while (!lx->st->failed) {
        const char *open = p < lx->len ? strstr(s + p, "{{") : NULL;
        size_t text_end = open ? (size_t)(open - s) : lx->len;
        bool trim_left = open && open[2] == '-' && is_ws(open[3]);
        size_t a = p, b = text_end;
        if (trim_next)
            while (a < b && is_ws(s[a])) a++;
        if (trim_left)
            while (b > a && is_ws(s[b - 1])) b--;
        int text_line = lx->line;
        count_lines(lx, p, a); /* trimmed leading whitespace */
        text_line = lx->line;
        if (b > a && !emit(lx, T_TEXT, s + a, b - a, text_line, false)) return -1;
        count_lines(lx, a, text_end);
        if (!open) break;
        int line = lx->line;
        size_t q = text_end + 2 + (trim_left ? 2 : 0);
        if (trim_left) count_lines(lx, text_end + 3, text_end + 4);
        /* a comment: "{{/" "* ... *" "/}}", with optional trim markers */
        if (strncmp(s + q, "/*", 2) == 0) {
            const char *close = strstr(s + q + 2, "*/");
            if (!close) {
                fail(lx->st, line, "unclosed comment");
                return -1;
            }
            size_t after = (size_t)(close - s) + 2;
            count_lines(lx, q, after);
            if (strncmp(s + after, "}}", 2) == 0) {
                trim_next = false;
                p = after + 2;
            } else if (is_ws(s[after]) && strncmp(s + after + 1, "-}}", 3) == 0) {
                count_lines(lx, after, after + 1);
                trim_next = true;
                p = after + 4;
            } else {
                fail(lx->st, lx->line, "comment ends before closing delimiter");
                return -1;
            }
            continue;
        }
        if (!emit(lx, T_LDELIM, NULL, 0, line, false)) return -1;
        p = lex_action(lx, q, &trim_next);
        if (!p) return -1;
    }
    if (lx->st->failed) return -1;
    return emit(lx, T_EOF, NULL, 0, lx->line, false) ? 0 : -1;
}

/* ---- AST ---- */

typedef enum { A_FIELD, A_VAR, A_DOT, A_STRING, A_INT, A_FLOAT, A_BOOL, A_NIL, A_FUNC, A_PIPE } arg_kind;

typedef struct pipe pipe;

typedef struct {
    arg_kind kind;
    int line;
    const char *s; /* string value, variable or function name */
    size_t slen;
    int64_t ival;
    double fval;
    bool bval;
    const char **idents; /* field chain */
    int nidents;
    pipe *sub; /* A_PIPE */
} arg;

typedef struct {
    arg **args;
    int nargs;
} cmd;

struct pipe {
    int line;
    const char *decl[2];
    int ndecl;
    bool assign; /* "=" rather than ":=" */
    cmd **cmds;
    int ncmds;
};

typedef enum { N_TEXT, N_ACTION, N_IF, N_RANGE, N_WITH, N_BREAK, N_CONTINUE } node_kind;

typedef struct node node;
typedef struct {
    node **items;
    int n;
} nlist;

struct node {
    node_kind kind;
    int line;
    const char *text;
    size_t tlen;
    pipe *p;
    nlist list, else_list;
};

typedef struct {
    gt_state *st;
    token *toks;
    int pos;
    int depth;
    int range_depth;
} parser;

static token *peek(parser *ps) { return &ps->toks[ps->pos]; }
static token *next(parser *ps) {
    token *t = &ps->toks[ps->pos];
    if (t->t != T_EOF) ps->pos++;
    return t;
}

static const char *const known_funcs[] = {"and",  "or",    "not",   "eq",     "ne",      "lt",          "le",
                                          "gt",   "ge",    "len",   "index",  "slice",   "print",       "printf",
                                          "println", "json", "html", "js",   "urlquery", "currentDate", "yesterdayDate",
                                          NULL};

static bool is_known_func(const char *name) {
    for (int i = 0; known_funcs[i]; i++)
        if (strcmp(known_funcs[i], name) == 0) return true;
    return false;
}

static pipe *parse_pipe(parser *ps, bool allow_decl, bool range_decl, ttype end);

static const char *tok_desc(const token *t) {
    switch (t->t) {
    case T_EOF: return "end of template";
    case T_RDELIM: return "\"}}\"";
    case T_RPAREN: return "\")\"";
    case T_PIPE: return "\"|\"";
    case T_COMMA: return "\",\"";
    case T_DECLARE: return "\":=\"";
    case T_ASSIGN: return "\"=\"";
    case T_LDELIM: return "\"{{\"";
    default: return t->s;
    }
}

static int add_chain(parser *ps, arg *a) {
    ptrvec v = {0};
    for (int i = 0; i < a->nidents; i++)
        if (ptrvec_push(&ps->st->a, &v, (void *)a->idents[i])) goto oom;
    while (peek(ps)->t == T_FIELD && !peek(ps)->spaced) {
        if (ptrvec_push(&ps->st->a, &v, (void *)next(ps)->s)) goto oom;
    }
    a->idents = (const char **)v.items;
    a->nidents = v.n;
    return 0;
oom:
    fail_oom(ps->st, a->line);
    return -1;
}

static arg *parse_operand(parser *ps) {
    token *t = next(ps);
    arg *a = arena_alloc(&ps->st->a, sizeof *a);
    if (!a) {
        fail_oom(ps->st, t->line);
        return NULL;
    }
    a->line = t->line;
    switch (t->t) {
    case T_FIELD:
        a->kind = A_FIELD;
        a->idents = arena_alloc(&ps->st->a, sizeof(char *));
        if (!a->idents) {
            fail_oom(ps->st, t->line);
            return NULL;
        }
        a->idents[0] = t->s;
        a->nidents = 1;
        break;
    case T_DOT: a->kind = A_DOT; break;
    case T_VAR: a->kind = A_VAR; a->s = t->s; break;
    case T_STRING: a->kind = A_STRING; a->s = t->s; a->slen = t->n; return a;
    case T_CHAR: a->kind = A_INT; a->ival = t->ival; return a;
    case T_NUMBER: {
        char *end;
        long long iv = strtoll(t->s, &end, 0);
        if (*end == 0 && !strchr(t->s, '_')) {
            a->kind = A_INT;
            a->ival = iv;
            return a;
        }
        double fv = strtod(t->s, &end);
        if (*end != 0 || !isfinite(fv)) {
            fail(ps->st, t->line, "bad number syntax: %s", t->s);
            return NULL;
        }
        a->kind = A_FLOAT;
        a->fval = fv;
        return a;
    }
    case T_IDENT:
        if (strcmp(t->s, "true") == 0 || strcmp(t->s, "false") == 0) {
            a->kind = A_BOOL;
            a->bval = t->s[0] == 't';
            return a;
        }
        if (strcmp(t->s, "nil") == 0) {
            a->kind = A_NIL;
            return a;
        }
        if (!is_known_func(t->s)) {
            fail(ps->st, t->line, "function \"%s\" not defined", t->s);
            return NULL;
        }
        a->kind = A_FUNC;
        a->s = t->s;
        return a;
    case T_LPAREN:
        if (++ps->depth > GT_MAX_DEPTH) {
            fail(ps->st, t->line, "nesting deeper than %d", GT_MAX_DEPTH);
            return NULL;
        }
        a->kind = A_PIPE;
        a->sub = parse_pipe(ps, true, false, T_RPAREN);
        ps->depth--;
        if (!a->sub) return NULL;
        break;
    default:
        fail(ps->st, t->line, "unexpected %s in operand", tok_desc(t));
        return NULL;
    }
    return add_chain(ps, a) ? NULL : a;
}

static pipe *parse_pipe(parser *ps, bool allow_decl, bool range_decl, ttype end) {
    pipe *p = arena_alloc(&ps->st->a, sizeof *p);
    if (!p) {
        fail_oom(ps->st, peek(ps)->line);
        return NULL;
    }
    p->line = peek(ps)->line;
    /* $x := / $x = / $i, $v := (range) */
    if (allow_decl && peek(ps)->t == T_VAR) {
        token *t0 = peek(ps), *t1 = &ps->toks[ps->pos + 1];
        if (t1->t == T_DECLARE || t1->t == T_ASSIGN) {
            p->decl[p->ndecl++] = t0->s;
            p->assign = t1->t == T_ASSIGN;
            ps->pos += 2;
        } else if (range_decl && t1->t == T_COMMA && ps->toks[ps->pos + 2].t == T_VAR &&
                   (ps->toks[ps->pos + 3].t == T_DECLARE || ps->toks[ps->pos + 3].t == T_ASSIGN)) {
            p->decl[p->ndecl++] = t0->s;
            p->decl[p->ndecl++] = ps->toks[ps->pos + 2].s;
            p->assign = ps->toks[ps->pos + 3].t == T_ASSIGN;
            ps->pos += 4;
        }
        if (p->ndecl && strcmp(p->decl[0], "$") == 0) {
            fail(ps->st, t0->line, "cannot assign to $");
            return NULL;
        }
    }
    ptrvec cmds = {0};
    for (;;) {
        ptrvec args = {0};
        while (peek(ps)->t != T_PIPE && peek(ps)->t != end) {
            token *t = peek(ps);
            if (t->t == T_EOF || t->t == T_RDELIM || t->t == T_RPAREN || t->t == T_COMMA || t->t == T_DECLARE ||
                t->t == T_ASSIGN) {
                fail(ps->st, t->line, "unexpected %s in command", tok_desc(t));
                return NULL;
            }
            arg *a = parse_operand(ps);
            if (!a) return NULL;
            if (ptrvec_push(&ps->st->a, &args, a)) {
                fail_oom(ps->st, t->line);
                return NULL;
            }
        }
        if (args.n == 0) {
            fail(ps->st, peek(ps)->line, "missing value for command");
            return NULL;
        }
        cmd *c = arena_alloc(&ps->st->a, sizeof *c);
        if (!c || ptrvec_push(&ps->st->a, &cmds, c)) {
            fail_oom(ps->st, p->line);
            return NULL;
        }
        c->args = (arg **)args.items;
        c->nargs = args.n;
        if (next(ps)->t == end) break;
    }
    p->cmds = (cmd **)cmds.items;
    p->ncmds = cmds.n;
    return p;
}

static bool is_kw(const token *t, const char *kw) { return t->t == T_IDENT && strcmp(t->s, kw) == 0; }

/* Parses nodes until {{ end }} / {{ else ... }} (or EOF at the top). *stop
 * gets the keyword that ended the list ("end", "else", or NULL at EOF);
 * the parser is left just after that keyword. */
static int parse_list(parser *ps, nlist *out, const char **stop);

static int expect_rdelim(parser *ps) {
    token *t = next(ps);
    if (t->t != T_RDELIM) {
        fail(ps->st, t->line, "unexpected %s, expected \"}}\"", tok_desc(t));
        return -1;
    }
    return 0;
}

/* After "if"/"with"/"range": the pipeline, the body, an optional else, end. */
static node *parse_control(parser *ps, node_kind kind, int line) {
    if (++ps->depth > GT_MAX_DEPTH) {
        fail(ps->st, line, "nesting deeper than %d", GT_MAX_DEPTH);
        return NULL;
    }
    node *n = arena_alloc(&ps->st->a, sizeof *n);
    if (!n) {
        fail_oom(ps->st, line);
        return NULL;
    }
    n->kind = kind;
    n->line = line;
    if (peek(ps)->t == T_RDELIM) {
        fail(ps->st, line, "missing value for %s", kind == N_IF ? "if" : kind == N_WITH ? "with" : "range");
        return NULL;
    }
    n->p = parse_pipe(ps, true, kind == N_RANGE, T_RDELIM);
    if (!n->p) return NULL;
    if (kind == N_RANGE) ps->range_depth++;
    const char *stop;
    if (parse_list(ps, &n->list, &stop)) return NULL;
    if (kind == N_RANGE) ps->range_depth--;
    if (!stop) {
        fail(ps->st, line, "unexpected end of template: missing {{ end }}");
        return NULL;
    }
    if (strcmp(stop, "else") == 0) {
        token *t = peek(ps);
        if (kind != N_RANGE && (is_kw(t, "if") || is_kw(t, "with"))) {
            /* {{ else if x }} is {{ else }}{{ if x }}...{{ end }}{{ end }} with one end */
            next(ps);
            node *inner = parse_control(ps, is_kw(t, "if") ? N_IF : N_WITH, t->line);
            if (!inner) return NULL;
            n->else_list.items = arena_alloc(&ps->st->a, sizeof(node *));
            if (!n->else_list.items) {
                fail_oom(ps->st, line);
                return NULL;
            }
            n->else_list.items[0] = inner;
            n->else_list.n = 1;
            ps->depth--;
            return n;
        }
        if (expect_rdelim(ps)) return NULL;
        if (parse_list(ps, &n->else_list, &stop)) return NULL;
        if (!stop || strcmp(stop, "end") != 0) {
            fail(ps->st, line, stop ? "expected {{ end }} after {{ else }}" : "unexpected end of template: missing {{ end }}");
            return NULL;
        }
    }
    if (expect_rdelim(ps)) return NULL;
    ps->depth--;
    return n;
}

static int parse_list(parser *ps, nlist *out, const char **stop) {
    ptrvec v = {0};
    *stop = NULL;
    for (;;) {
        token *t = next(ps);
        if (t->t == T_EOF) break;
        node *n = NULL;
        if (t->t == T_TEXT) {
            n = arena_alloc(&ps->st->a, sizeof *n);
            if (!n) goto oom;
            n->kind = N_TEXT;
            n->line = t->line;
            n->text = t->s;
            n->tlen = t->n;
        } else if (t->t == T_LDELIM) {
            token *k = peek(ps);
            if (is_kw(k, "end") || is_kw(k, "else")) {
                next(ps);
                *stop = k->s;
                if (strcmp(k->s, "end") == 0 && peek(ps)->t != T_RDELIM) {
                    fail(ps->st, k->line, "unexpected %s in end", tok_desc(peek(ps)));
                    return -1;
                }
                break;
            }
            if (is_kw(k, "if") || is_kw(k, "range") || is_kw(k, "with")) {
                next(ps);
                n = parse_control(ps, k->s[0] == 'i' ? N_IF : k->s[0] == 'r' ? N_RANGE : N_WITH, k->line);
                if (!n) return -1;
            } else if (is_kw(k, "break") || is_kw(k, "continue")) {
                next(ps);
                if (ps->range_depth == 0) {
                    fail(ps->st, k->line, "{{ %s }} outside {{ range }}", k->s);
                    return -1;
                }
                if (expect_rdelim(ps)) return -1;
                n = arena_alloc(&ps->st->a, sizeof *n);
                if (!n) goto oom;
                n->kind = k->s[0] == 'b' ? N_BREAK : N_CONTINUE;
                n->line = k->line;
            } else if (is_kw(k, "define") || is_kw(k, "template") || is_kw(k, "block")) {
                fail(ps->st, k->line, "{{ %s }} is not supported", k->s);
                return -1;
            } else {
                n = arena_alloc(&ps->st->a, sizeof *n);
                if (!n) goto oom;
                n->kind = N_ACTION;
                n->line = k->line;
                if (k->t == T_RDELIM) {
                    fail(ps->st, k->line, "missing value for command");
                    return -1;
                }
                n->p = parse_pipe(ps, true, false, T_RDELIM);
                if (!n->p) return -1;
            }
        } else {
            fail(ps->st, t->line, "unexpected %s", tok_desc(t));
            return -1;
        }
        if (ptrvec_push(&ps->st->a, &v, n)) goto oom;
    }
    out->items = (node **)v.items;
    out->n = v.n;
    return 0;
oom:
    fail_oom(ps->st, peek(ps)->line);
    return -1;
}

static int parse_template(gt_state *st, const char *src, nlist *root) {
    lexer lx = {.st = st, .src = src, .len = strlen(src), .line = 1};
    if (lex(&lx)) return -1;
    parser ps = {.st = st, .toks = lx.toks};
    const char *stop;
    if (parse_list(&ps, root, &stop)) return -1;
    if (stop) {
        fail(st, ps.toks[ps.pos > 0 ? ps.pos - 1 : 0].line, "unexpected {{ %s }}", stop);
        return -1;
    }
    return 0;
}

/* ---- what Ollama does with templates, on the AST ---- */

static bool ident_is(const char *a, const char *b) {
    for (; *a && *b; a++, b++)
        if (tolower((unsigned char)*a) != tolower((unsigned char)*b)) return false;
    return *a == *b;
}

static bool pipe_mentions(const pipe *p, const char *name);
static bool arg_mentions(const arg *a, const char *name) {
    for (int i = 0; i < a->nidents; i++)
        if (ident_is(a->idents[i], name)) return true;
    return a->sub && pipe_mentions(a->sub, name);
}
static bool pipe_mentions(const pipe *p, const char *name) {
    for (int i = 0; i < p->ncmds; i++)
        for (int j = 0; j < p->cmds[i]->nargs; j++)
            if (arg_mentions(p->cmds[i]->args[j], name)) return true;
    return false;
}
/* Ollama's Vars(): the template uses a field or variable chain named so. */
static bool list_mentions(const nlist *l, const char *name) {
    for (int i = 0; i < l->n; i++) {
        const node *n = l->items[i];
        if (n->p && pipe_mentions(n->p, name)) return true;
        if (list_mentions(&n->list, name) || list_mentions(&n->else_list, name)) return true;
    }
    return false;
}

/* Ollama's deleteNode for the last turn of a legacy template: every node
 * after the first .Response field (in tree order, if/range/with conditions
 * not searched) is removed, so the prompt ends where the reply begins. */
typedef struct {
    bool cut;
} cutter;

static bool cut_arg(cutter *c, arg *a);
static bool cut_pipe(cutter *c, pipe *p) {
    int nc = 0;
    for (int i = 0; i < p->ncmds; i++) {
        cmd *cm = p->cmds[i];
        int na = 0;
        for (int j = 0; j < cm->nargs; j++)
            if (cut_arg(c, cm->args[j])) cm->args[na++] = cm->args[j];
        cm->nargs = na;
        if (na == 0) return false;
        p->cmds[nc++] = cm;
    }
    p->ncmds = nc;
    return nc > 0;
}
/* false: delete it */
static bool cut_arg(cutter *c, arg *a) {
    if (c->cut) return false;
    if (a->kind == A_FIELD) {
        for (int i = 0; i < a->nidents; i++)
            if (strcmp(a->idents[i], "Response") == 0) {
                c->cut = true;
                return true;
            }
    }
    if (a->kind == A_PIPE && !a->nidents) return cut_pipe(c, a->sub);
    return true;
}
static void cut_list(cutter *c, nlist *l) {
    int k = 0;
    for (int i = 0; i < l->n; i++) {
        node *n = l->items[i];
        if (c->cut) continue;
        bool keep = true;
        switch (n->kind) {
        case N_ACTION: keep = cut_pipe(c, n->p); break;
        case N_IF:
        case N_RANGE:
        case N_WITH:
            cut_list(c, &n->list);
            cut_list(c, &n->else_list);
            break;
        default: break;
        }
        if (keep) l->items[k++] = n;
    }
    l->n = k;
}

/* ---- values ---- */

typedef enum { V_NIL, V_BOOL, V_INT, V_FLOAT, V_STR, V_LIST, V_MAP } vkind;

typedef struct value value;
struct value {
    vkind k;
    bool b;
    int64_t i;
    double f;
    const char *s;
    size_t slen;
    value **items;
    const char **keys; /* V_MAP: parallel to items */
    int n;
};

static value nil_value = {.k = V_NIL};

static value *v_new(gt_state *st, vkind k) {
    value *v = arena_alloc(&st->a, sizeof *v);
    if (v) v->k = k;
    return v;
}

static value *v_str(gt_state *st, const char *s, size_t n) {
    value *v = v_new(st, V_STR);
    if (!v) return NULL;
    v->s = arena_strndup(&st->a, s, n);
    v->slen = n;
    return v->s ? v : NULL;
}
static value *v_cstr(gt_state *st, const char *s) { return v_str(st, s ? s : "", s ? strlen(s) : 0); }
static value *v_int(gt_state *st, int64_t i) {
    value *v = v_new(st, V_INT);
    if (v) v->i = i;
    return v;
}
static value *v_bool(gt_state *st, bool b) {
    value *v = v_new(st, V_BOOL);
    if (v) v->b = b;
    return v;
}

static value *v_list(gt_state *st, int n) {
    value *v = v_new(st, V_LIST);
    if (!v) return NULL;
    v->n = n;
    if (n > 0 && !(v->items = arena_alloc(&st->a, sizeof(value *) * (size_t)n))) return NULL;
    return v;
}

static value *v_map(gt_state *st, int cap) {
    value *v = v_new(st, V_MAP);
    if (!v) return NULL;
    if (cap > 0) {
        v->items = arena_alloc(&st->a, sizeof(value *) * (size_t)cap);
        v->keys = arena_alloc(&st->a, sizeof(char *) * (size_t)cap);
        if (!v->items || !v->keys) return NULL;
    }
    return v;
}
/* the map was made with room for it */
static int map_set(gt_state *st, value *m, const char *key, value *v) {
    if (!v) return -1;
    m->keys[m->n] = arena_strndup(&st->a, key, strlen(key));
    if (!m->keys[m->n]) return -1;
    m->items[m->n++] = v;
    return 0;
}

static value *from_json(gt_state *st, const cJSON *j) {
    if (!j || cJSON_IsNull(j)) return &nil_value;
    if (cJSON_IsBool(j)) return v_bool(st, cJSON_IsTrue(j));
    if (cJSON_IsNumber(j)) {
        double d = j->valuedouble;
        if (d == floor(d) && fabs(d) < 9007199254740992.0) return v_int(st, (int64_t)d);
        value *v = v_new(st, V_FLOAT);
        if (v) v->f = d;
        return v;
    }
    if (cJSON_IsString(j)) return v_cstr(st, j->valuestring);
    if (cJSON_IsRaw(j)) return v_cstr(st, j->valuestring);
    int n = cJSON_GetArraySize(j);
    if (cJSON_IsArray(j)) {
        value *v = v_list(st, n);
        if (!v) return NULL;
        int i = 0;
        for (const cJSON *c = j->child; c; c = c->next, i++)
            if (!(v->items[i] = from_json(st, c))) return NULL;
        return v;
    }
    value *m = v_map(st, n);
    if (!m) return NULL;
    for (const cJSON *c = j->child; c; c = c->next) {
        value *cv = from_json(st, c);
        if (!cv || map_set(st, m, c->string ? c->string : "", cv)) return NULL;
    }
    return m;
}

static bool truth(const value *v) {
    switch (v->k) {
    case V_NIL: return false;
    case V_BOOL: return v->b;
    case V_INT: return v->i != 0;
    case V_FLOAT: return v->f != 0;
    case V_STR: return v->slen > 0;
    case V_LIST:
    case V_MAP: return v->n > 0;
    }
    return false;
}

static const char *kind_name(const value *v) {
    static const char *const names[] = {"nil", "bool", "int", "float64", "string", "slice", "map"};
    return names[v->k];
}

/* Go field names are capitalized where JSON keys are not ("Function" for
 * "function", "ToolCalls" for "tool_calls"): an exact key first, then one
 * equal ignoring case and underscores. */
static bool key_loose_eq(const char *key, const char *ident) {
    for (;;) {
        while (*key == '_') key++;
        while (*ident == '_') ident++;
        if (!*key || !*ident) return !*key && !*ident;
        if (tolower((unsigned char)*key) != tolower((unsigned char)*ident)) return false;
        key++;
        ident++;
    }
}

static value *map_get(const value *m, const char *key) {
    for (int i = 0; i < m->n; i++)
        if (strcmp(m->keys[i], key) == 0) return m->items[i];
    for (int i = 0; i < m->n; i++)
        if (key_loose_eq(m->keys[i], key)) return m->items[i];
    return NULL;
}

/* ---- output buffer ---- */

typedef struct {
    char *data;
    size_t len, cap;
    size_t limit;
    bool over;
    bool oom;
} sbuf;

static void sb_add(sbuf *b, const char *s, size_t n) {
    if (b->over || b->oom || n == 0) return;
    if (b->len + n > b->limit) {
        b->over = true;
        return;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d) {
            b->oom = true;
            return;
        }
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = 0;
}
static void sb_str(sbuf *b, const char *s) { sb_add(b, s, strlen(s)); }
static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...) {
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof tmp) {
        sb_add(b, tmp, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (!big) {
        b->oom = true;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sb_add(b, big, (size_t)n);
    free(big);
}

/* Go's float formatting: the fewest digits that read back the same, as
 * %e when the decimal exponent is below min_exp or at least max_exp (Go's
 * %v uses -4 and 6 for the shortest form; encoding/json -6 and 21). */
static void fmt_float_go(sbuf *b, double f, int min_exp, int max_exp) {
    if (isinf(f)) {
        sb_str(b, f > 0 ? "+Inf" : "-Inf");
        return;
    }
    if (isnan(f)) {
        sb_str(b, "NaN");
        return;
    }
    char tmp[64];
    int prec = 1;
    for (; prec < 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*e", prec - 1, f);
        if (strtod(tmp, NULL) == f) break;
    }
    snprintf(tmp, sizeof tmp, "%.*e", prec - 1, f);
    const char *e = strchr(tmp, 'e');
    int x = e ? atoi(e + 1) : 0;
    if (f != 0 && (x < min_exp || x >= max_exp)) {
        sb_str(b, tmp);
        return;
    }
    int decimals = prec - 1 - x;
    snprintf(tmp, sizeof tmp, "%.*f", decimals > 0 ? decimals : 0, f);
    sb_str(b, tmp);
}

static void fmt_float(sbuf *b, double f) { fmt_float_go(b, f, -4, 6); }

/* JSON as Go's json.Marshal writes it (HTML-sensitive characters escaped). */
static void json_string(sbuf *b, const char *s, size_t n) {
    sb_add(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"': sb_add(b, "\\\"", 2); break;
        case '\\': sb_add(b, "\\\\", 2); break;
        case '\n': sb_add(b, "\\n", 2); break;
        case '\r': sb_add(b, "\\r", 2); break;
        case '\t': sb_add(b, "\\t", 2); break;
        case '<': case '>': case '&': sb_printf(b, "\\u%04x", c); break;
        default:
            if (c < 0x20) sb_printf(b, "\\u%04x", c);
            else sb_add(b, (const char *)&s[i], 1);
        }
    }
    sb_add(b, "\"", 1);
}

static void json_value(sbuf *b, const value *v, int depth) {
    if (depth > 200) {
        sb_str(b, "null");
        return;
    }
    switch (v->k) {
    case V_NIL: sb_str(b, "null"); break;
    case V_BOOL: sb_str(b, v->b ? "true" : "false"); break;
    case V_INT: sb_printf(b, "%lld", (long long)v->i); break;
    case V_FLOAT:
        if (!isfinite(v->f)) sb_str(b, "null");
        else fmt_float_go(b, v->f, -6, 21);
        break;
    case V_STR: json_string(b, v->s, v->slen); break;
    case V_LIST:
        sb_add(b, "[", 1);
        for (int i = 0; i < v->n; i++) {
            if (i) sb_add(b, ",", 1);
            json_value(b, v->items[i], depth + 1);
        }
        sb_add(b, "]", 1);
        break;
    case V_MAP:
        sb_add(b, "{", 1);
        for (int i = 0; i < v->n; i++) {
            if (i) sb_add(b, ",", 1);
            json_string(b, v->keys[i], strlen(v->keys[i]));
            sb_add(b, ":", 1);
            json_value(b, v->items[i], depth + 1);
        }
        sb_add(b, "}", 1);
        break;
    }
}

/* How {{ value }} prints. Lists and maps print as JSON: the values that
 * reach templates as lists or maps are Ollama's tools and tool-call
 * arguments, whose String() methods are JSON. */
static void print_value(sbuf *b, const value *v) {
    switch (v->k) {
    case V_NIL: break;
    case V_BOOL: sb_str(b, v->b ? "true" : "false"); break;
    case V_INT: sb_printf(b, "%lld", (long long)v->i); break;
    case V_FLOAT: fmt_float(b, v->f); break;
    case V_STR: sb_add(b, v->s, v->slen); break;
    case V_LIST:
    case V_MAP: json_value(b, v, 0); break;
    }
}

/* ---- evaluation ---- */

typedef struct {
    const char *name;
    value *v;
} var;

typedef struct {
    gt_state *st;
    sbuf out;
    var *vars;
    int nvars, capvars;
    long iterations;
    int loop_ctl; /* 1 break, 2 continue */
} exec;

static bool ex_failed(exec *ex) {
    if (ex->out.over) fail(ex->st, 0, "output is larger than %zu bytes", ex->out.limit);
    if (ex->out.oom) fail(ex->st, 0, "out of memory");
    return ex->st->failed;
}

static int push_var(exec *ex, const char *name, value *v, int line) {
    if (ex->nvars == ex->capvars) {
        int cap = ex->capvars ? ex->capvars * 2 : 16;
        if (cap > 1 << 16) {
            fail(ex->st, line, "too many variables");
            return -1;
        }
        var *nv = realloc(ex->vars, sizeof *nv * (size_t)cap);
        if (!nv) {
            fail_oom(ex->st, line);
            return -1;
        }
        ex->vars = nv;
        ex->capvars = cap;
    }
    ex->vars[ex->nvars].name = name;
    ex->vars[ex->nvars].v = v;
    ex->nvars++;
    return 0;
}

static var *find_var(exec *ex, const char *name) {
    for (int i = ex->nvars - 1; i >= 0; i--)
        if (strcmp(ex->vars[i].name, name) == 0) return &ex->vars[i];
    return NULL;
}

static value *walk_chain(exec *ex, value *v, const char *const *idents, int n, int line) {
    for (int i = 0; i < n && v; i++) {
        if (v->k == V_NIL) return &nil_value; /* a missing field stays missing */
        if (v->k != V_MAP) {
            fail(ex->st, line, "can't evaluate field %s in type %s", idents[i], kind_name(v));
            return NULL;
        }
        value *f = map_get(v, idents[i]);
        v = f ? f : &nil_value;
    }
    return v;
}

static value *eval_pipe(exec *ex, pipe *p, value *dot);
static value *call_func(exec *ex, const arg *fn, arg *const *args, int nargs, value *final, value *dot);

static value *eval_arg(exec *ex, const arg *a, value *dot) {
    value *v = NULL;
    switch (a->kind) {
    case A_FIELD: return walk_chain(ex, dot, a->idents, a->nidents, a->line);
    case A_DOT: v = dot; break;
    case A_VAR: {
        var *vr = find_var(ex, a->s);
        if (!vr) {
            fail(ex->st, a->line, "undefined variable: %s", a->s);
            return NULL;
        }
        v = vr->v;
        break;
    }
    case A_STRING: v = v_str(ex->st, a->s, a->slen); break;
    case A_INT: v = v_int(ex->st, a->ival); break;
    case A_FLOAT:
        v = v_new(ex->st, V_FLOAT);
        if (v) v->f = a->fval;
        break;
    case A_BOOL: v = v_bool(ex->st, a->bval); break;
    case A_NIL: v = &nil_value; break;
    case A_FUNC: v = call_func(ex, a, NULL, 0, NULL, dot); break;
    case A_PIPE: {
        int mark = ex->nvars;
        v = eval_pipe(ex, a->sub, dot);
        ex->nvars = mark;
        break;
    }
    }
    if (!v) {
        if (!ex->st->failed) fail_oom(ex->st, a->line);
        return NULL;
    }
    return walk_chain(ex, v, a->idents, a->nidents, a->line);
}

static bool is_num(const value *v) { return v->k == V_INT || v->k == V_FLOAT; }
static double num(const value *v) { return v->k == V_INT ? (double)v->i : v->f; }

/* -1/0/1, or 2 when the values cannot be ordered/compared */
static int compare(const value *a, const value *b, bool ordered) {
    if (a->k == V_INT && b->k == V_INT) return (a->i > b->i) - (a->i < b->i);
    if (is_num(a) && is_num(b)) return (num(a) > num(b)) - (num(a) < num(b));
    if (a->k == V_STR && b->k == V_STR) {
        size_t n = a->slen < b->slen ? a->slen : b->slen;
        int c = memcmp(a->s, b->s, n);
        if (c == 0) c = (a->slen > b->slen) - (a->slen < b->slen);
        return (c > 0) - (c < 0);
    }
    if (!ordered && a->k == V_BOOL && b->k == V_BOOL) return a->b != b->b;
    if (!ordered && (a->k == V_NIL || b->k == V_NIL)) return a->k == V_NIL && b->k == V_NIL ? 0 : 1;
    return 2;
}

static bool to_index(exec *ex, const value *v, int64_t *out, int line, const char *fn) {
    if (v->k == V_INT) {
        *out = v->i;
        return true;
    }
    fail(ex->st, line, "%s: cannot index with type %s", fn, kind_name(v));
    return false;
}

/* Go's %q of a string */
static void go_quote(sbuf *b, const char *s, size_t n) {
    sb_add(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            sb_add(b, "\\", 1);
            sb_add(b, (const char *)&s[i], 1);
        } else if (c == '\n') sb_add(b, "\\n", 2);
        else if (c == '\t') sb_add(b, "\\t", 2);
        else if (c == '\r') sb_add(b, "\\r", 2);
        else if (c < 0x20 || c == 0x7f) sb_printf(b, "\\x%02x", c);
        else sb_add(b, (const char *)&s[i], 1);
    }
    sb_add(b, "\"", 1);
}

static value *sbuf_to_value(exec *ex, sbuf *b, int line) {
    if (b->over || b->oom) {
        free(b->data);
        fail(ex->st, line, "output is too large");
        return NULL;
    }
    value *v = v_str(ex->st, b->data ? b->data : "", b->len);
    free(b->data);
    if (!v) fail_oom(ex->st, line);
    return v;
}

static value *fn_printf(exec *ex, value **vals, int n, int line) {
    if (n < 1 || vals[0]->k != V_STR) {
        fail(ex->st, line, "printf: the format must be a string");
        return NULL;
    }
    sbuf b = {.limit = GT_MAX_OUTPUT};
    const char *f = vals[0]->s, *end = f + vals[0]->slen;
    int ai = 1;
    while (f < end) {
        if (*f != '%') {
            sb_add(&b, f++, 1);
            continue;
        }
        const char *spec = f++;
        while (f < end && strchr("+-# 0", *f)) f++;
        while (f < end && isdigit((unsigned char)*f)) f++;
        if (f < end && *f == '.') {
            f++;
            while (f < end && isdigit((unsigned char)*f)) f++;
        }
        if (f >= end) {
            sb_str(&b, "%!(NOVERB)");
            break;
        }
        char verb = *f++;
        if (verb == '%') {
            sb_add(&b, "%", 1);
            continue;
        }
        char cfmt[48];
        size_t flen = (size_t)(f - 1 - spec);
        if (flen > 32) flen = 32;
        if (ai >= n) {
            sb_printf(&b, "%%!%c(MISSING)", verb);
            continue;
        }
        value *v = vals[ai++];
        switch (verb) {
        case 'd':
            if (v->k == V_INT) {
                snprintf(cfmt, sizeof cfmt, "%.*slld", (int)flen, spec);
                sb_printf(&b, cfmt, (long long)v->i);
            } else sb_printf(&b, "%%!d(%s)", kind_name(v));
            break;
        case 'x':
        case 'X':
        case 'o':
        case 'c':
            if (v->k == V_INT && verb == 'c') {
                char u[4];
                size_t un = 0;
                if (v->i >= 0 && v->i <= 0x10FFFF) put_utf8(u, &un, (uint32_t)v->i);
                sb_add(&b, u, un);
            } else if (v->k == V_INT) {
                snprintf(cfmt, sizeof cfmt, "%.*sll%c", (int)flen, spec, verb);
                sb_printf(&b, cfmt, (long long)v->i);
            } else if (v->k == V_STR && verb != 'c' && verb != 'o') {
                for (size_t i = 0; i < v->slen; i++) sb_printf(&b, verb == 'x' ? "%02x" : "%02X", (unsigned char)v->s[i]);
            } else sb_printf(&b, "%%!%c(%s)", verb, kind_name(v));
            break;
        case 'e':
        case 'E':
        case 'f':
        case 'F':
        case 'g':
        case 'G':
            if (is_num(v)) {
                snprintf(cfmt, sizeof cfmt, "%.*s%c", (int)flen, spec, verb);
                sb_printf(&b, cfmt, num(v));
            } else sb_printf(&b, "%%!%c(%s)", verb, kind_name(v));
            break;
        case 't':
            if (v->k == V_BOOL) sb_str(&b, v->b ? "true" : "false");
            else sb_printf(&b, "%%!t(%s)", kind_name(v));
            break;
        case 'q':
            if (v->k == V_STR) go_quote(&b, v->s, v->slen);
            else sb_printf(&b, "%%!q(%s)", kind_name(v));
            break;
        case 's':
        case 'v': {
            sbuf tmp = {.limit = GT_MAX_OUTPUT};
            print_value(&tmp, v);
            snprintf(cfmt, sizeof cfmt, "%.*s.*s", (int)flen, spec);
            /* width and precision of %s apply to the text */
            if (flen > 1) sb_printf(&b, cfmt, (int)tmp.len, tmp.data ? tmp.data : "");
            else sb_add(&b, tmp.data ? tmp.data : "", tmp.len);
            if (tmp.over || tmp.oom) b.over = true;
            free(tmp.data);
            break;
        }
        default: sb_printf(&b, "%%!%c(%s)", verb, kind_name(v));
        }
    }
    if (ai < n) sb_str(&b, "%!(EXTRA)");
    return sbuf_to_value(ex, &b, line);
}

static value *call_func(exec *ex, const arg *fn, arg *const *args, int nargs, value *final, value *dot) {
    const char *name = fn->s;
    int line = fn->line;
    int total = nargs + (final ? 1 : 0);
    /* and/or stop at the first value that decides (Go 1.18+) */
    if (strcmp(name, "and") == 0 || strcmp(name, "or") == 0) {
        if (total < 1) {
            fail(ex->st, line, "wrong number of args for %s: want at least 1 got 0", name);
            return NULL;
        }
        bool is_and = name[0] == 'a';
        value *v = NULL;
        for (int i = 0; i < total; i++) {
            v = i < nargs ? eval_arg(ex, args[i], dot) : final;
            if (!v) return NULL;
            if (is_and ? !truth(v) : truth(v)) return v;
        }
        return v;
    }
    value *stackvals[8];
    value **vals = stackvals;
    if (total > 8 && !(vals = arena_alloc(&ex->st->a, sizeof(value *) * (size_t)total))) {
        fail_oom(ex->st, line);
        return NULL;
    }
    for (int i = 0; i < nargs; i++)
        if (!(vals[i] = eval_arg(ex, args[i], dot))) return NULL;
    if (final) vals[nargs] = final;

#define ARGS(lo, hi)                                                                                              \
    do {                                                                                                          \
        if (total < (lo) || total > (hi)) {                                                                       \
            fail(ex->st, line, "wrong number of args for %s: want %d got %d", name, (lo), total);                \
            return NULL;                                                                                          \
        }                                                                                                         \
    } while (0)

    if (strcmp(name, "not") == 0) {
        ARGS(1, 1);
        return v_bool(ex->st, !truth(vals[0]));
    }
    if (strcmp(name, "eq") == 0) {
        ARGS(2, 1 << 20);
        for (int i = 1; i < total; i++) {
            int c = compare(vals[0], vals[i], false);
            if (c == 2) {
                fail(ex->st, line, "error calling eq: incompatible types for comparison (%s and %s)",
                     kind_name(vals[0]), kind_name(vals[i]));
                return NULL;
            }
            if (c == 0) return v_bool(ex->st, true);
        }
        return v_bool(ex->st, false);
    }
    if (strcmp(name, "ne") == 0 || strcmp(name, "lt") == 0 || strcmp(name, "le") == 0 || strcmp(name, "gt") == 0 ||
        strcmp(name, "ge") == 0) {
        ARGS(2, 2);
        bool ordered = name[0] != 'n';
        int c = compare(vals[0], vals[1], ordered);
        if (c == 2) {
            fail(ex->st, line, "error calling %s: incompatible types for comparison (%s and %s)", name,
                 kind_name(vals[0]), kind_name(vals[1]));
            return NULL;
        }
        bool r = name[0] == 'n' ? c != 0 : name[0] == 'l' ? (name[1] == 't' ? c < 0 : c <= 0)
                                                          : (name[1] == 't' ? c > 0 : c >= 0);
        return v_bool(ex->st, r);
    }
    if (strcmp(name, "len") == 0) {
        ARGS(1, 1);
        const value *v = vals[0];
        if (v->k == V_STR) return v_int(ex->st, (int64_t)v->slen);
        if (v->k == V_LIST || v->k == V_MAP) return v_int(ex->st, v->n);
        if (v->k == V_NIL) return v_int(ex->st, 0); /* a nil slice, such as .Tools without tools */
        fail(ex->st, line, "error calling len: len of type %s", kind_name(v));
        return NULL;
    }
    if (strcmp(name, "index") == 0) {
        ARGS(1, 1 << 20);
        value *v = vals[0];
        for (int i = 1; i < total; i++) {
            if (v->k == V_LIST || v->k == V_STR) {
                int64_t ix;
                if (!to_index(ex, vals[i], &ix, line, "index")) return NULL;
                int64_t n = v->k == V_LIST ? v->n : (int64_t)v->slen;
                if (ix < 0 || ix >= n) {
                    fail(ex->st, line, "error calling index: index out of range: %lld", (long long)ix);
                    return NULL;
                }
                v = v->k == V_LIST ? v->items[ix] : v_int(ex->st, (unsigned char)v->s[ix]);
            } else if (v->k == V_MAP) {
                if (vals[i]->k != V_STR) {
                    fail(ex->st, line, "error calling index: map key must be a string, not %s", kind_name(vals[i]));
                    return NULL;
                }
                value *f = NULL;
                for (int k = 0; k < v->n; k++)
                    if (strcmp(v->keys[k], vals[i]->s) == 0) f = v->items[k];
                v = f ? f : &nil_value;
            } else {
                fail(ex->st, line, "error calling index: cannot index %s", kind_name(v));
                return NULL;
            }
            if (!v) return NULL;
        }
        return v;
    }
    if (strcmp(name, "slice") == 0) {
        ARGS(1, 4);
        value *v = vals[0];
        if (v->k != V_LIST && v->k != V_STR) {
            fail(ex->st, line, "error calling slice: can't slice item of type %s", kind_name(v));
            return NULL;
        }
        int64_t n = v->k == V_LIST ? v->n : (int64_t)v->slen, ix[3] = {0, n, n};
        if (v->k == V_STR && total == 4) {
            fail(ex->st, line, "error calling slice: cannot 3-index slice a string");
            return NULL;
        }
        for (int i = 1; i < total; i++)
            if (!to_index(ex, vals[i], &ix[i - 1], line, "slice")) return NULL;
        if (total < 3) ix[1] = n;
        if (ix[0] < 0 || ix[1] < ix[0] || ix[1] > n || (total == 4 && (ix[2] < ix[1] || ix[2] > n))) {
            fail(ex->st, line, "error calling slice: index out of range");
            return NULL;
        }
        if (v->k == V_STR) return v_str(ex->st, v->s + ix[0], (size_t)(ix[1] - ix[0]));
        value *r = v_list(ex->st, (int)(ix[1] - ix[0]));
        if (!r) return NULL;
        for (int64_t i = ix[0]; i < ix[1]; i++) r->items[i - ix[0]] = v->items[i];
        return r;
    }
    if (strcmp(name, "print") == 0 || strcmp(name, "println") == 0) {
        sbuf b = {.limit = GT_MAX_OUTPUT};
        bool ln = name[5] == 'l';
        for (int i = 0; i < total; i++) {
            /* Sprint puts spaces between operands when neither is a string */
            if (i > 0 && (ln || (vals[i]->k != V_STR && vals[i - 1]->k != V_STR))) sb_add(&b, " ", 1);
            print_value(&b, vals[i]);
        }
        if (ln) sb_add(&b, "\n", 1);
        return sbuf_to_value(ex, &b, line);
    }
    if (strcmp(name, "printf") == 0) return fn_printf(ex, vals, total, line);
    if (strcmp(name, "json") == 0) {
        ARGS(1, 1);
        sbuf b = {.limit = GT_MAX_OUTPUT};
        json_value(&b, vals[0], 0);
        return sbuf_to_value(ex, &b, line);
    }
    if (strcmp(name, "html") == 0 || strcmp(name, "js") == 0 || strcmp(name, "urlquery") == 0) {
        sbuf raw = {.limit = GT_MAX_OUTPUT}, b = {.limit = GT_MAX_OUTPUT};
        for (int i = 0; i < total; i++) print_value(&raw, vals[i]);
        for (size_t i = 0; i < raw.len; i++) {
            unsigned char c = (unsigned char)raw.data[i];
            if (name[0] == 'h') {
                if (c == '<') sb_str(&b, "&lt;");
                else if (c == '>') sb_str(&b, "&gt;");
                else if (c == '&') sb_str(&b, "&amp;");
                else if (c == '"') sb_str(&b, "&#34;");
                else if (c == '\'') sb_str(&b, "&#39;");
                else if (c == 0) sb_str(&b, "\xEF\xBF\xBD");
                else sb_add(&b, (const char *)&c, 1);
            } else if (name[0] == 'j') {
                if (c == '\\' || c == '\'' || c == '"') {
                    sb_add(&b, "\\", 1);
                    sb_add(&b, (const char *)&c, 1);
                } else if (c == '<' || c == '>' || c == '&' || c == '=' || c < 0x20) sb_printf(&b, "\\u%04X", c);
                else sb_add(&b, (const char *)&c, 1);
            } else {
                if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') sb_add(&b, (const char *)&c, 1);
                else if (c == ' ') sb_add(&b, "+", 1);
                else sb_printf(&b, "%%%02X", c);
            }
        }
        free(raw.data);
        return sbuf_to_value(ex, &b, line);
    }
    if (strcmp(name, "currentDate") == 0 || strcmp(name, "yesterdayDate") == 0) {
        ARGS(0, 0);
        time_t t = time(NULL) - (name[0] == 'y' ? 86400 : 0);
        struct tm tm;
        char buf[32];
        if (!localtime_r(&t, &tm) || !strftime(buf, sizeof buf, "%Y-%m-%d", &tm)) buf[0] = 0;
        return v_cstr(ex->st, buf);
    }
#undef ARGS
    fail(ex->st, line, "function \"%s\" not defined", name);
    return NULL;
}

static value *eval_cmd(exec *ex, const cmd *c, value *dot, value *final) {
    const arg *a0 = c->args[0];
    if (a0->kind == A_FUNC) return call_func(ex, a0, c->args + 1, c->nargs - 1, final, dot);
    if (c->nargs > 1 || final) {
        fail(ex->st, a0->line, "can't give argument to non-function");
        return NULL;
    }
    return eval_arg(ex, a0, dot);
}

/* Evaluates the commands and applies a declaration (not for range). */
static value *eval_pipe(exec *ex, pipe *p, value *dot) {
    value *v = NULL;
    for (int i = 0; i < p->ncmds; i++)
        if (!(v = eval_cmd(ex, p->cmds[i], dot, v))) return NULL;
    if (p->ndecl) {
        if (p->assign) {
            var *vr = find_var(ex, p->decl[0]);
            if (!vr) {
                fail(ex->st, p->line, "undefined variable: %s", p->decl[0]);
                return NULL;
            }
            vr->v = v;
        } else if (push_var(ex, p->decl[0], v, p->line)) {
            return NULL;
        }
    }
    return v;
}

static int exec_list(exec *ex, const nlist *l, value *dot);

static int exec_range(exec *ex, const node *n, value *dot) {
    pipe *p = n->p;
    value *coll = NULL;
    for (int i = 0; i < p->ncmds; i++)
        if (!(coll = eval_cmd(ex, p->cmds[i], dot, coll))) return -1;
    int count;
    switch (coll->k) {
    case V_NIL: count = 0; break;
    case V_LIST:
    case V_MAP: count = coll->n; break;
    case V_INT: count = coll->i > 0 ? (int)(coll->i > INT32_MAX ? INT32_MAX : coll->i) : 0; break;
    default: fail(ex->st, n->line, "range can't iterate over %s", kind_name(coll)); return -1;
    }
    if (coll->k == V_INT && p->ndecl > 1) {
        fail(ex->st, n->line, "can't use %s to iterate over more than one variable", "an integer");
        return -1;
    }
    int *order = NULL;
    if (coll->k == V_MAP && count > 1) {
        /* Go ranges over a map in key order */
        order = arena_alloc(&ex->st->a, sizeof(int) * (size_t)count);
        if (!order) {
            fail_oom(ex->st, n->line);
            return -1;
        }
        for (int i = 0; i < count; i++) order[i] = i;
        for (int i = 1; i < count; i++)
            for (int j = i; j > 0 && strcmp(coll->keys[order[j - 1]], coll->keys[order[j]]) > 0; j--) {
                int t = order[j];
                order[j] = order[j - 1];
                order[j - 1] = t;
            }
    }
    int mark = ex->nvars;
    if (!p->assign)
        for (int d = 0; d < p->ndecl; d++)
            if (push_var(ex, p->decl[d], &nil_value, n->line)) return -1;
    for (int i = 0; i < count; i++) {
        if (++ex->iterations > GT_MAX_ITERATIONS) {
            fail(ex->st, n->line, "more than %ld loop iterations", GT_MAX_ITERATIONS);
            return -1;
        }
        int k = order ? order[i] : i;
        value *elem, *key;
        if (coll->k == V_INT) {
            elem = key = v_int(ex->st, i);
        } else {
            elem = coll->items[k];
            key = coll->k == V_MAP ? v_cstr(ex->st, coll->keys[k]) : v_int(ex->st, i);
        }
        if (!elem || !key) {
            fail_oom(ex->st, n->line);
            return -1;
        }
        if (p->ndecl) {
            value *vals[2] = {p->ndecl == 1 ? elem : key, elem};
            for (int d = 0; d < p->ndecl; d++) {
                var *vr = p->assign ? find_var(ex, p->decl[d]) : &ex->vars[mark + d];
                if (!vr) {
                    fail(ex->st, n->line, "undefined variable: %s", p->decl[d]);
                    return -1;
                }
                vr->v = vals[d];
            }
        }
        int body_mark = ex->nvars;
        if (exec_list(ex, &n->list, elem)) return -1;
        ex->nvars = body_mark;
        if (ex->loop_ctl == 1) {
            ex->loop_ctl = 0;
            break;
        }
        ex->loop_ctl = 0;
    }
    ex->nvars = mark;
    if (count == 0 && exec_list(ex, &n->else_list, dot)) return -1;
    return 0;
}

static int exec_node(exec *ex, const node *n, value *dot) {
    switch (n->kind) {
    case N_TEXT: sb_add(&ex->out, n->text, n->tlen); break;
    case N_ACTION: {
        value *v = eval_pipe(ex, n->p, dot);
        if (!v) return -1;
        if (!n->p->ndecl) print_value(&ex->out, v);
        break;
    }
    case N_IF:
    case N_WITH: {
        int mark = ex->nvars;
        value *v = eval_pipe(ex, n->p, dot);
        if (!v) return -1;
        int rc;
        if (truth(v)) rc = exec_list(ex, &n->list, n->kind == N_WITH ? v : dot);
        else rc = exec_list(ex, &n->else_list, dot);
        /* a break or continue inside passes through to the range */
        ex->nvars = mark;
        if (rc) return -1;
        break;
    }
    case N_RANGE:
        if (exec_range(ex, n, dot)) return -1;
        break;
    case N_BREAK: ex->loop_ctl = 1; break;
    case N_CONTINUE: ex->loop_ctl = 2; break;
    }
    return ex_failed(ex) ? -1 : 0;
}

static int exec_list(exec *ex, const nlist *l, value *dot) {
    for (int i = 0; i < l->n; i++) {
        if (exec_node(ex, l->items[i], dot)) return -1;
        if (ex->loop_ctl) return 0;
    }
    return 0;
}

/* Runs a parsed template with data into out (appending). */
static int execute(gt_state *st, const nlist *root, value *data, sbuf *out) {
    exec ex = {.st = st, .out = *out};
    int rc = push_var(&ex, "$", data, 1);
    if (rc == 0) rc = exec_list(&ex, root, data);
    if (rc == 0 && ex_failed(&ex)) rc = -1;
    free(ex.vars);
    *out = ex.out;
    return rc;
}

/* ---- Ollama's data ---- */

typedef struct {
    const char *role;
    char *content; /* arena */
    const ns_chat_msg *src;
} cmsg;

static value *message_value(gt_state *st, const cmsg *m) {
    value *v = v_map(st, 6);
    if (!v) return NULL;
    if (map_set(st, v, "Role", v_cstr(st, m->role)) || map_set(st, v, "Content", v_cstr(st, m->content))) return NULL;
    value *calls = &nil_value;
    if (m->src->tool_calls_json) {
        cJSON *j = cJSON_Parse(m->src->tool_calls_json);
        calls = j ? from_json(st, j) : &nil_value;
        cJSON_Delete(j);
        if (!calls) return NULL;
    }
    if (map_set(st, v, "ToolCalls", calls) || map_set(st, v, "Images", &nil_value)) return NULL;
    if (m->src->name && map_set(st, v, "ToolName", v_cstr(st, m->src->name))) return NULL;
    if (m->src->tool_call_id && map_set(st, v, "ToolCallID", v_cstr(st, m->src->tool_call_id))) return NULL;
    return v;
}

static char *finish(sbuf *out, gt_state *st) {
    arena_free(&st->a);
    if (st->failed) {
        free(out->data);
        return NULL;
    }
    if (!out->data) {
        out->data = malloc(1);
        if (out->data) out->data[0] = 0;
        else if (st->err && st->errlen) snprintf(st->err, st->errlen, "out of memory");
    }
    return out->data;
}

char *ns_gotmpl_render(const char *tmpl, const char *system, const ns_chat_msg *msgs, int n, const char *tools_json,
                       char *err, size_t errlen) {
    gt_state st = {.err = err, .errlen = errlen};
    sbuf out = {.limit = GT_MAX_OUTPUT};
    nlist root;
    if (!tmpl || n < 0 || (n > 0 && !msgs)) {
        fail(&st, 0, "invalid arguments");
        return finish(&out, &st);
    }
    if (parse_template(&st, tmpl, &root)) return finish(&out, &st);

    /* The conversation: the separate system text first when the messages
     * carry none, then consecutive messages of one role merged (collate). */
    bool has_system = false;
    for (int i = 0; i < n; i++)
        if (msgs[i].role && strcmp(msgs[i].role, "system") == 0) has_system = true;
    ns_chat_msg sys_msg = {.role = "system", .content = system};
    int total = n + (system && !has_system ? 1 : 0);
    cmsg *cm = arena_alloc(&st.a, sizeof *cm * (size_t)(total + 1));
    if (!cm) {
        fail_oom(&st, 0);
        return finish(&out, &st);
    }
    int nc = 0;
    size_t sys_len = 0;
    char *joined_system = NULL;
    for (int i = 0; i < total; i++) {
        const ns_chat_msg *m = (system && !has_system) ? (i == 0 ? &sys_msg : &msgs[i - 1]) : &msgs[i];
        const char *role = m->role ? m->role : "";
        const char *content = m->content ? m->content : "";
        if (strcmp(role, "system") == 0) {
            size_t cl = strlen(content);
            char *j = arena_alloc(&st.a, sys_len + cl + 3);
            if (!j) {
                fail_oom(&st, 0);
                return finish(&out, &st);
            }
            if (joined_system) {
                memcpy(j, joined_system, sys_len);
                memcpy(j + sys_len, "\n\n", 2);
                sys_len += 2;
            }
            memcpy(j + sys_len, content, cl + 1);
            sys_len += cl;
            joined_system = j;
        }
        if (nc > 0 && strcmp(cm[nc - 1].role, role) == 0) {
            size_t a = strlen(cm[nc - 1].content), b = strlen(content);
            char *c = arena_alloc(&st.a, a + b + 3);
            if (!c) {
                fail_oom(&st, 0);
                return finish(&out, &st);
            }
            memcpy(c, cm[nc - 1].content, a);
            memcpy(c + a, "\n\n", 2);
            memcpy(c + a + 2, content, b + 1);
            cm[nc - 1].content = c;
        } else {
            cm[nc].role = role;
            cm[nc].content = arena_strndup(&st.a, content, strlen(content));
            cm[nc].src = m;
            if (!cm[nc].content) {
                fail_oom(&st, 0);
                return finish(&out, &st);
            }
            nc++;
        }
    }
    const char *sys_text = system ? system : joined_system ? joined_system : "";

    if (list_mentions(&root, "Messages")) {
        value *data = v_map(&st, 6);
        value *list = v_list(&st, nc);
        const char *last_user = "";
        for (int i = 0; i < nc && list; i++) {
            if (!(list->items[i] = message_value(&st, &cm[i]))) list = NULL;
            else if (strcmp(cm[i].role, "user") == 0) last_user = cm[i].content;
        }
        value *tools = &nil_value;
        if (tools_json) {
            cJSON *j = cJSON_Parse(tools_json);
            if (!j) {
                fail(&st, 0, "the tools are not valid JSON");
                return finish(&out, &st);
            }
            tools = from_json(&st, j);
            cJSON_Delete(j);
        }
        if (!data || !list || !tools || map_set(&st, data, "System", v_cstr(&st, sys_text)) ||
            map_set(&st, data, "Messages", list) || map_set(&st, data, "Tools", tools) ||
            map_set(&st, data, "Prompt", v_cstr(&st, last_user)) || map_set(&st, data, "Response", v_cstr(&st, ""))) {
            fail_oom(&st, 0);
            return finish(&out, &st);
        }
        execute(&st, &root, data, &out);
        return finish(&out, &st);
    }

    /* A legacy template: one execution per exchange, as Ollama does. */
    const char *sys = "", *prompt = "", *response = "";
    for (int i = 0; i <= nc && !st.failed; i++) {
        bool last = i == nc;
        const char *role = last ? "" : cm[i].role;
        bool flush = last ? false
                          : (strcmp(role, "system") == 0 && (*prompt || *response)) ||
                                (strcmp(role, "user") == 0 && *response);
        if (flush || last) {
            nlist tree = root;
            if (last) {
                /* the last exchange ends where the response begins */
                nlist cut;
                if (parse_template(&st, tmpl, &cut)) break;
                cutter c = {false};
                cut_list(&c, &cut);
                tree = cut;
            }
            value *data = v_map(&st, 3);
            if (!data || map_set(&st, data, "System", v_cstr(&st, sys)) ||
                map_set(&st, data, "Prompt", v_cstr(&st, prompt)) ||
                map_set(&st, data, "Response", v_cstr(&st, response))) {
                fail_oom(&st, 0);
                break;
            }
            if (execute(&st, &tree, data, &out)) break;
            sys = prompt = response = "";
            if (last) break;
        }
        if (strcmp(role, "system") == 0) sys = cm[i].content;
        else if (strcmp(role, "user") == 0) prompt = cm[i].content;
        else if (strcmp(role, "assistant") == 0) response = cm[i].content;
    }
    return finish(&out, &st);
}

char *ns_gotmpl_render_json(const char *tmpl, const char *data_json, char *err, size_t errlen) {
    gt_state st = {.err = err, .errlen = errlen};
    sbuf out = {.limit = GT_MAX_OUTPUT};
    nlist root;
    if (!tmpl) {
        fail(&st, 0, "invalid arguments");
        return finish(&out, &st);
    }
    if (parse_template(&st, tmpl, &root)) return finish(&out, &st);
    cJSON *j = data_json ? cJSON_Parse(data_json) : NULL;
    if (data_json && !j) {
        fail(&st, 0, "the data is not valid JSON");
        return finish(&out, &st);
    }
    value *data = from_json(&st, j);
    cJSON_Delete(j);
    if (!data) {
        fail_oom(&st, 0);
        return finish(&out, &st);
    }
    execute(&st, &root, data, &out);
    return finish(&out, &st);
}
