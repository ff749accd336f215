/* How the client commands print what a server says, in `ollama`'s words:
 * sizes ("4.7 GB"), times ("4 minutes from now", "2 days ago"), short
 * digests, and tables with columns four spaces apart. */
#ifndef NS_CLI_CLIENT_FORMAT_H
#define NS_CLI_CLIENT_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Decimal units as Ollama prints them: "512 B", "1.5 KB", "27 MB", "4.7 GB". */
void human_bytes(int64_t bytes, char *buf, size_t len);

/* A span in words: "Less than a second", "5 seconds", "About a minute",
 * "4 minutes", "3 hours", "2 days", "3 weeks", "5 months", "2 years". */
void human_duration(double seconds, char *buf, size_t len);

/* t relative to now (Unix seconds): "4 minutes from now", "2 days ago",
 * "Forever" beyond 20 years ahead, zero_value for the zero time (year 1 or
 * before 1970). */
void human_time(double t, double now, const char *zero_value, char *buf, size_t len);

/* RFC 3339 ("2024-06-04T14:38:31.83753-07:00", "...Z") to Unix seconds;
 * false when s is NULL or malformed. */
bool parse_rfc3339(const char *s, double *out);

/* The first 12 hex digits of a digest, with or without "sha256:"; "" for
 * NULL. */
void short_digest(const char *digest, char *buf, size_t len);

/* Rows of strings, printed left-aligned. */
typedef struct {
    char **cells;
    int ncols, nrows, cap;
} table;

void table_init(table *t, int ncols);
/* Copies ncols strings (NULL prints as ""). */
void table_row(table *t, const char *const *cells);
void table_print(const table *t, FILE *out);
void table_print_indented(const table *t, FILE *out, const char *indent);
void table_free(table *t);

#endif
