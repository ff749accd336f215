/* libFuzzer harness for the TOML reader (src/util/toml.c): any input must
 * either be refused with a one-line "fuzz.toml:LINE: reason" or parse into
 * a tree whose every node can be read, within the nesting limit. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/toml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile size_t sink;

static size_t walk(const ns_toml *n, int depth) {
    if (depth > NS_TOML_MAX_DEPTH || ns_toml_line(n) < 1) abort();
    size_t acc = (size_t)ns_toml_type_of(n);
    switch (ns_toml_type_of(n)) {
    case NS_TOML_TABLE:
        for (int i = 0; i < ns_toml_count(n); i++) {
            const char *k = ns_toml_key_at(n, i);
            if (!k) abort();
            /* keys without a NUL of their own must be found again by name */
            if (strlen(k) == ns_toml_key_len(n, i) && ns_toml_get(n, k) != ns_toml_at(n, i)) abort();
            acc += walk(ns_toml_at(n, i), depth + 1);
        }
        break;
    case NS_TOML_ARRAY:
        for (int i = 0; i < ns_toml_count(n); i++) acc += walk(ns_toml_at(n, i), depth + 1);
        break;
    case NS_TOML_STRING: {
        const char *s = ns_toml_string(n);
        size_t len = ns_toml_string_len(n);
        if (!s || s[len] != 0) abort();
        for (size_t i = 0; i < len; i++) acc += (unsigned char)s[i];
        break;
    }
    case NS_TOML_INT: acc += (size_t)ns_toml_int(n); break;
    case NS_TOML_FLOAT: acc += ns_toml_float(n) > 0; break;
    case NS_TOML_BOOL: acc += ns_toml_bool(n); break;
    }
    return acc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* a copy of exactly size bytes, so ASan catches any read past the end */
    char *text = malloc(size ? size : 1);
    if (!text) return 0;
    if (size) memcpy(text, data, size);
    char err[256];
    err[0] = 'x';
    ns_toml *t = ns_toml_parse(text, size, "fuzz.toml", err, sizeof err);
    if (t) {
        if (ns_toml_type_of(t) != NS_TOML_TABLE) abort();
        sink = walk(t, 0);
        ns_toml_free(t);
    } else if (strncmp(err, "fuzz.toml:", 10) != 0 || !memchr(err, 0, sizeof err) || strchr(err, '\n')) {
        abort();
    }
    free(text);
    return 0;
}
