/* Lexer of the chat-template interpreter: template text to tokens, with
 * Jinja2's whitespace control as Hugging Face configures it
 * (trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=False):
 * `{%-`/`-%}` (and the same for `{{ }}` and `{# #}`) strip whitespace,
 * `{%+`/`+%}` keep it, the first newline after a block or comment tag is
 * dropped, and spaces before a block or comment tag alone on its line are
 * dropped. Comments vanish; `{% raw %}` bodies become plain data. */
#ifndef NS_JINJA_LEXER_H
#define NS_JINJA_LEXER_H

#include "engine/jinja_value.h"

typedef enum {
    JT_EOF = 0,
    JT_DATA,
    JT_VAR_BEGIN,
    JT_VAR_END,
    JT_BLOCK_BEGIN,
    JT_BLOCK_END,
    JT_NAME,
    JT_STRING,
    JT_INT,
    JT_FLOAT,
    JT_OP,
} jx_tok_type;

typedef enum {
    OP_ADD = 1, OP_SUB, OP_MUL, OP_DIV, OP_FLOORDIV, OP_MOD, OP_POW, OP_TILDE,
    OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE, OP_ASSIGN,
    OP_LPAREN, OP_RPAREN, OP_LBRACKET, OP_RBRACKET, OP_LBRACE, OP_RBRACE,
    OP_COMMA, OP_DOT, OP_COLON, OP_PIPE,
} jx_op;

typedef struct {
    jx_tok_type type;
    jx_op op;
    size_t pos;    /* offset in the (normalized) source */
    const char *s; /* DATA, NAME, STRING: text (NUL-terminated, in the arena) */
    size_t len;
    int64_t i; /* INT */
    double f;  /* FLOAT */
} jx_tok;

/* Tokenizes src (newlines already normalized to \n). Fails through env. */
void jx_lex(jx_env *env, const char *src, size_t len, jx_tok **toks, size_t *ntoks);

const char *jx_op_text(jx_op op);

#endif
