/* Reading a config file's fields out of a TOML tree (toml.h), with errors
 * that point at the place: "router.toml:12: router.upstream.kind: must be
 * a string, not an integer". Shared by the router's config and the
 * profiles, so every config file of nstack reports mistakes the same way. */
#ifndef NS_UTIL_TOML_FIELDS_H
#define NS_UTIL_TOML_FIELDS_H

#include <stddef.h>

#include "util/toml.h"

typedef struct {
    const char *name; /* the file name errors start with */
    char *err;
    size_t errlen;
} ns_toml_cx;

/* Writes "NAME:LINE: KEY: message" into cx->err (line 1 when at is NULL)
 * and returns -1, so a reader can `return ns_toml_bad(...)`. */
int ns_toml_bad(const ns_toml_cx *cx, const ns_toml *at, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* "a string", "an integer", ... for messages. */
const char *ns_toml_a_type(const ns_toml *v);

/* "prefix.k" for messages, with control characters of a hostile key shown
 * as '?' and the key cut at 100 bytes. */
void ns_toml_dotted(char *out, size_t outlen, const char *prefix, const char *k);

/* A string that fits out with its NUL; a longer one (or one holding a NUL)
 * is an error rather than cut, since a cut path or name would fail far
 * from its cause. */
int ns_toml_get_string(const ns_toml_cx *cx, const ns_toml *v, const char *key, char *out, size_t outlen);

#endif
