/* The nstack subcommands and the small helpers they share. */
#ifndef NS_CLI_H
#define NS_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "nstack/model.h"

int cmd_run(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_logits(int argc, char **argv);
int cmd_mkmodel(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_quantize(int argc, char **argv);
int cmd_serve(int argc, char **argv); /* cmd_serve.c */
int cmd_route(int argc, char **argv); /* cmd_route.c */
int cmd_ai(int argc, char **argv);    /* cmd_ai.c */
int cmd_vram(int argc, char **argv);  /* cmd_ai.c */
/* Clients of a running server (cmd_client.c): */
int cmd_ps(int argc, char **argv);
int cmd_list(int argc, char **argv);
int cmd_show(int argc, char **argv);
int cmd_load(int argc, char **argv);
int cmd_stop(int argc, char **argv);
int cmd_pull(int argc, char **argv);
int cmd_rm(int argc, char **argv);
int cmd_mode(int argc, char **argv); /* GET/PUT /mode: NORMAL or GAMING */

/* Exit codes: 0 ok, 1 runtime failure (bad file, ...), 2 usage error. */
enum { NS_EXIT_OK = 0, NS_EXIT_FAIL = 1, NS_EXIT_USAGE = 2 };

/* Strict number parsing: the whole string must be a number within range. */
bool cli_parse_int(const char *s, long long lo, long long hi, long long *out);
bool cli_parse_float(const char *s, double *out);

/* "f16" or "f32" for --kv-type; false for anything else. */
bool cli_parse_kv_type(const char *s, ns_kv_type *out);

/* For "--opt VALUE": the value, advancing *i; NULL (with a message) when missing. */
const char *cli_value(int argc, char **argv, int *i);

/* NAME VALUE or NAME=VALUE at argv[*i]: 1 taken (*val set, *i advanced
 * past a separate value), 0 another option, -1 the value is missing
 * (said). */
int cli_opt_value(int argc, char **argv, int *i, const char *name, const char **val);

/* -h or --help */
bool cli_is_help(const char *a);

/* Monotonic seconds. */
double cli_now(void);

/* The whole of a file ("-": standard input), NUL-terminated, malloc'd;
 * *len (may be NULL) gets its length. NULL with errno set on failure. */
char *cli_read_all(const char *path, size_t *len);

/* A chat message from in: one line, or the lines between two """ lines
 * (text after the opening quotes and before the closing ones counts).
 * prompt, when not NULL, gets "... " before each continuation line.
 * malloc'd, without the final newline; NULL at the end of input. */
char *cli_read_message(FILE *in, FILE *prompt);

#endif
