/* Syntax tree of a parsed chat template, and the parser's entry point. */
#ifndef NS_JINJA_AST_H
#define NS_JINJA_AST_H

#include "engine/jinja_lexer.h"
#include "engine/jinja_value.h"

typedef enum {
    /* expressions */
    N_LIT,     /* lit */
    N_NAME,    /* name */
    N_LIST,    /* args: items */
    N_TUPLE,   /* args: items */
    N_DICT,    /* args: keys, kwvals: values */
    N_ATTR,    /* a.name */
    N_ITEM,    /* a[b] */
    N_SLICE,   /* a[b:c:d], any of b/c/d may be NULL */
    N_CALL,    /* a(args, kwnames=kwvals) */
    N_FILTER,  /* a | name(args, kw) */
    N_TEST,    /* a is [not] name(args) */
    N_NEG,     /* -a */
    N_POS,     /* +a */
    N_NOT,     /* not a */
    N_BINOP,   /* a op b: + - * / // % ** */
    N_CONCAT,  /* args joined with ~ */
    N_AND,     /* a and b */
    N_OR,      /* a or b */
    N_COMPARE, /* a ops[0] args[0] ops[1] args[1] ... */
    N_COND,    /* b if a else c */
    /* statements */
    S_DATA,        /* lit: text */
    S_OUTPUT,      /* {{ a }} */
    S_IF,          /* if a: body else else_body */
    S_FOR,         /* for targets in a [if b]: body else else_body */
    S_SET,         /* set targets = b, or set a(N_ATTR) = b */
    S_SETBLOCK,    /* set name [| filters]: body */
    S_MACRO,       /* macro name(targets = defaults): body */
    S_CALLBLOCK,   /* call(targets = defaults) a(N_CALL): body */
    S_FILTERBLOCK, /* filter filters: body */
    S_BREAK,
    S_CONTINUE,
    S_BLOCK, /* generation / block: body */
    S_DO,    /* do a */
    S_WITH,  /* with targets = args: body */
} jx_kind;

typedef struct jx_node jx_node;
typedef struct {
    jx_node **v;
    int n;
} jx_nodes;

struct jx_node {
    jx_kind kind;
    size_t pos; /* source offset, for error messages */
    int op;     /* N_BINOP: jx_op */
    bool negated, recursive;
    const char *name;
    jv lit;
    jx_node *a, *b, *c, *d;
    jx_nodes args;
    jx_nodes kwvals;
    const char **kwnames; /* one per kwvals entry */
    int *ops;             /* N_COMPARE: one per args entry (jx_op, or CMP_IN / CMP_NOTIN) */
    const char **targets;
    int ntargets;
    jx_nodes defaults; /* one per target (entries may be NULL) */
    jx_nodes filters;  /* N_FILTER nodes whose input (a) is NULL */
    jx_nodes body, else_body;
};

enum { CMP_IN = 100, CMP_NOTIN = 101 };

/* Parses tokens into a statement list. Fails through env; nesting deeper
 * than JX_MAX_NESTING (statements and expressions) is an error. */
#define JX_MAX_NESTING 200
jx_nodes jx_parse(jx_env *env, jx_tok *toks, size_t ntoks);

#endif
