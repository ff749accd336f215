/* Internals shared by the interpreter (jinja_interp.c) and its built-in
 * filters, tests, functions and methods (jinja_builtins.c). */
#ifndef NS_JINJA_INTERP_H
#define NS_JINJA_INTERP_H

#include "engine/jinja_ast.h"
#include "engine/jinja_template.h"
#include "engine/jinja_value.h"

struct jx_template {
    jx_arena arena;
    const char *src; /* normalized source */
    size_t srclen;
    jx_nodes body;
};

/* Variables of one scope: the globals, the template, a loop iteration, a macro call. */
typedef struct jx_frame {
    struct jx_frame *parent;
    size_t n, cap;
    const char **names;
    jv *vals;
} jx_frame;

typedef struct jx_loop {
    jx_list *items;
    size_t index0;
    struct jx_loop *parent;
    int depth0;
    const jx_node *for_node; /* for loop(...) in recursive loops */
    jx_frame *frame;         /* scope the for statement runs in */
    jv changed_last;         /* loop.changed() */
    bool changed_seen;
} jx_loop;

typedef struct jx_run jx_run;

/* Arguments of a call: positional, then keyword. */
typedef struct {
    jv *pos;
    size_t npos;
    const char **kwn;
    jv *kwv;
    size_t nkw;
} jx_args;

typedef jv (*jx_builtin)(jx_run *R, jv self, jx_args *a);

typedef enum { FN_BUILTIN, FN_MACRO, FN_CALLER } jx_fn_kind;

struct jx_func {
    jx_fn_kind kind;
    const char *name;
    jv self;              /* FN_BUILTIN methods: the receiver */
    jx_builtin fn;        /* FN_BUILTIN */
    const jx_node *node;  /* FN_MACRO: macro; FN_CALLER: call block */
    jx_frame *closure;    /* scope the macro / call block was defined in */
};

enum { CTL_NONE = 0, CTL_BREAK, CTL_CONTINUE };

struct jx_run {
    jx_env env;
    jx_arena arena;
    jmp_buf jb;
    const jx_template *tpl;
    jx_frame *globals;
    jx_buf *out;
    size_t max_output;
    long iterations, max_iterations;
    int depth;      /* nesting of evaluation */
    int call_depth; /* nested macro calls */
    int max_call_depth;
    int ctl;
    int64_t now;
    bool now_fixed;
    double deadline_ms; /* monotonic clock time the render must end by */
    unsigned ticks;     /* work units since the clock was last read */
};

/* Fails at a node's position. */
#if defined(__GNUC__)
__attribute__((noreturn, format(printf, 3, 4)))
#endif
void jx_rfail(jx_run *R, const jx_node *n, const char *fmt, ...);

/* Fails with the message an undefined value carries ("'x' is undefined"). */
#if defined(__GNUC__)
__attribute__((noreturn))
#endif
void jx_undefined_fail(jx_run *R, jv v);

/* An undefined value that reports msg (printf-style) when it is used. */
jv jx_undef_hint(jx_run *R, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* A built-in callable (self: the receiver of a method, or none). */
jv jx_builtin_func(jx_run *R, const char *name, jx_builtin fn, jv self);
/* "dict object", "list object", ... for messages. */
const char *jx_obj_desc(jv v);

/* Calls any callable with positional and keyword arguments. */
jv jx_call(jx_run *R, jv fn, jx_args *a, const jx_node *at);
/* obj.name as Jinja resolves it (methods of str/list/dict, dict keys, loop fields). */
jv jx_getattr(jx_run *R, jv obj, const char *name);
/* obj[key] (dict key, list/str index). */
jv jx_getitem(jx_run *R, jv obj, jv key);
/* obj[start:stop:step] with Python's rules, for lists, tuples and strings. */
jv jx_slice(jx_run *R, const jx_node *n, jv obj, jv vstart, jv vstop, jv vstep);
/* a op b for + - * / // % ** (jx_op values). */
jv jx_arith(jx_run *R, const jx_node *n, int op, jv a, jv b);
/* a op b for == != < <= > >= in, not in (jx_op values, CMP_IN, CMP_NOTIN). */
bool jx_compare_op(jx_run *R, const jx_node *n, int op, jv a, jv b);
/* The items a for loop would visit: list items, dict keys, string characters. */
jx_list *jx_iter_list(jx_run *R, jv v);
void jx_count_iterations(jx_run *R, long n);
/* Charges work to the time budget (checks the clock now and then). */
void jx_tick(jx_run *R, unsigned units);

/* Built-ins (jinja_builtins.c). */
jx_builtin jx_find_filter(const char *name);
bool jx_test_exists(const char *name);
/* Runs a test by name; false with *found=false when there is no such test. */
bool jx_run_test(jx_run *R, const char *name, jv v, jx_args *a, bool *found);
jx_builtin jx_find_method(jv self, const char *name);
jx_builtin jx_find_global(const char *name);
jv jx_loop_attr(jx_run *R, jx_loop *loop, const char *name, bool *found);
/* Applies a filter by name (used by map/select and by filter blocks). */
jv jx_apply_filter(jx_run *R, const char *name, jv input, jx_args *a);

/* Argument helpers for built-ins: the i-th positional or the named keyword. */
jv *jx_arg(jx_args *a, size_t i, const char *kw);
jv jx_arg_or(jx_args *a, size_t i, const char *kw, jv def);

#endif
