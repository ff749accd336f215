/* A TOML 1.0 reader for configuration files: the text is parsed into a tree
 * of nodes that the caller walks and then frees with ns_toml_free.
 *
 * Supported: comments; bare, quoted and dotted keys; [tables] and
 * [[arrays of tables]]; basic strings with every TOML 1.0 escape (\b \t \n
 * \f \r \" \\ \uXXXX \UXXXXXXXX, turned into UTF-8), literal strings and
 * both multi-line forms (with the line-ending backslash); integers (decimal
 * with _ separators, 0x, 0o, 0b; out of int64 range is an error); floats
 * (fractions, exponents, inf, nan); booleans; arrays (multi-line, nested,
 * mixed types, trailing comma); inline tables.
 *
 * Not supported: offset date-times, local date-times, dates and times. A
 * value that looks like one is refused with "dates and times are not
 * supported" rather than misread as a number.
 *
 * The whole document must be valid UTF-8 (a leading BOM is skipped);
 * newlines are LF or CRLF.
 *
 * Errors come back as one line, "NAME:LINE: reason", where NAME is what the
 * caller passed (a file name) and LINE counts from 1:
 *   "router.toml:7: duplicate key 'listen' (first defined at line 2)"
 *
 * Limits against hostile input: tables and arrays nest at most
 * NS_TOML_MAX_DEPTH deep (this bounds the parser's recursion and
 * ns_toml_free's); arrays grow by doubling; every table keeps a hash index
 * of its keys, so duplicate checks and ns_toml_get cost O(1) on average.
 * The hash is unseeded (FNV-1a): a document built to collide degrades to
 * O(n^2) key inserts, acceptable for files a person writes. The size of
 * the text is the caller's to bound. */
#ifndef NS_UTIL_TOML_H
#define NS_UTIL_TOML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NS_TOML_MAX_DEPTH 64

typedef enum { NS_TOML_TABLE, NS_TOML_ARRAY, NS_TOML_STRING, NS_TOML_INT, NS_TOML_FLOAT, NS_TOML_BOOL } ns_toml_type;

typedef struct ns_toml ns_toml; /* one node: a table, an array or a value */

/* Parses len bytes of text (need not be NUL-terminated) into the root
 * table; NULL with err filled on any error. `name` prefixes messages. */
ns_toml *ns_toml_parse(const char *text, size_t len, const char *name, char *err, size_t errlen);

/* Frees the tree from its root (NULL is fine). Nodes inside it are owned by
 * the root and never freed on their own. */
void ns_toml_free(ns_toml *root);

ns_toml_type ns_toml_type_of(const ns_toml *n);
/* "table", "array", "string", "integer", "float", "boolean". */
const char *ns_toml_type_name(ns_toml_type t);
/* The line the node starts on: a value's first line, a table's [header]
 * (or the key or header that first created it), an inline table's '{'. */
int ns_toml_line(const ns_toml *n);

/* The value of one key of a table (no dot splitting: "a.b" is one key),
 * or NULL when absent or when `table` is not a table. */
const ns_toml *ns_toml_get(const ns_toml *table, const char *key);
/* Entries of a table or items of an array; 0 for a value. */
int ns_toml_count(const ns_toml *n);
/* The i-th array item or table value (tables keep their file order), or
 * NULL when out of range. */
const ns_toml *ns_toml_at(const ns_toml *n, int i);
/* The i-th key of a table, in file order, or NULL. Keys holding a NUL
 * (from "\u0000") read as cut at it; ns_toml_key_len gives the full length. */
const char *ns_toml_key_at(const ns_toml *table, int i);
size_t ns_toml_key_len(const ns_toml *table, int i);

/* Typed reads; a node of another type gives NULL / 0 / 0.0 / false. A
 * string is NUL-terminated and may hold NULs of its own ("\u0000"): compare
 * strlen with ns_toml_string_len to refuse those. ns_toml_float also reads
 * an integer node, converted. */
const char *ns_toml_string(const ns_toml *n);
size_t ns_toml_string_len(const ns_toml *n);
int64_t ns_toml_int(const ns_toml *n);
double ns_toml_float(const ns_toml *n);
bool ns_toml_bool(const ns_toml *n);

#endif
