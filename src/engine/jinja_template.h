/* The chat-template interpreter's entry points: parse a Jinja2 template
 * once, render it many times with a set of variables.
 *
 * Supported: {{ }}, {% %}, {# #}, whitespace control as Hugging Face
 * renders chat templates (trim_blocks, lstrip_blocks), if/elif/else,
 * for (loop variables, else, inline if, recursive), set (names, tuples,
 * namespace attributes, blocks), macro, call, filter blocks, break and
 * continue, with, do, generation; Python-like values and operators; the
 * filters, tests, functions and str/list/dict methods that real chat
 * templates use. Everything runs under limits (memory, output size, loop
 * iterations, nesting, time) and reports errors as "line L, column C: reason". */
#ifndef NS_JINJA_TEMPLATE_H
#define NS_JINJA_TEMPLATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/jinja_value.h"

typedef struct jx_template jx_template;

typedef struct {
    size_t max_memory;    /* bytes of values and buffers (default 64 MiB) */
    size_t max_output;    /* bytes of rendered text (default 4 MiB) */
    long max_iterations;  /* loop iterations and range() items in all (default 1,000,000) */
    int max_call_depth;   /* nested macro calls / recursive loops (default 64) */
    long max_time_ms;     /* wall-clock time of one render (default 5000 ms) */
    int64_t now;          /* strftime_now(): this Unix time (UTC) when now_fixed */
    bool now_fixed;       /* else the current local time */
} jx_options;

/* Parses a template; NULL with "line L, column C: reason" in err on error. */
jx_template *jx_template_parse(const char *src, size_t len, char *err, size_t errlen);
void jx_template_free(jx_template *t);

/* Fills the variables of one render (in the render's arena) before it runs;
 * any failure inside (jx_fail) ends the render with that error. */
typedef void (*jx_setup_fn)(jx_env *env, jx_dict *vars, void *ud);

/* Renders the template with the variables that setup puts in vars. Returns
 * a malloc'd string (its length in *out_len when not NULL), or NULL with
 * the reason in err. opts may be NULL (defaults). */
char *jx_template_render(const jx_template *t, const jx_options *opts, jx_setup_fn setup, void *ud, char *err,
                         size_t errlen, size_t *out_len);

#endif
