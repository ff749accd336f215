#include "util/toml_fields.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int ns_toml_bad(const ns_toml_cx *cx, const ns_toml *at, const char *key, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(cx->err, cx->errlen, "%s:%d: %s: %s", cx->name, at ? ns_toml_line(at) : 1, key, msg);
    return -1;
}

const char *ns_toml_a_type(const ns_toml *v) {
    static const char *const names[] = {"a table", "an array", "a string", "an integer", "a float", "a boolean"};
    unsigned t = (unsigned)ns_toml_type_of(v);
    return t < sizeof names / sizeof names[0] ? names[t] : "a value";
}

void ns_toml_dotted(char *out, size_t outlen, const char *prefix, const char *k) {
    int n = snprintf(out, outlen, "%s.", prefix);
    size_t o = n > 0 && (size_t)n < outlen ? (size_t)n : 0, end = o + 100;
    for (; *k && o + 1 < outlen && o < end; k++) out[o++] = (unsigned char)*k < 0x20 || *k == 0x7f ? '?' : *k;
    out[o] = 0;
}

int ns_toml_get_string(const ns_toml_cx *cx, const ns_toml *v, const char *key, char *out, size_t outlen) {
    if (ns_toml_type_of(v) != NS_TOML_STRING)
        return ns_toml_bad(cx, v, key, "must be a string, not %s", ns_toml_a_type(v));
    const char *s = ns_toml_string(v);
    size_t len = ns_toml_string_len(v);
    if (strlen(s) != len) return ns_toml_bad(cx, v, key, "must not contain a NUL character");
    if (len >= outlen) return ns_toml_bad(cx, v, key, "longer than %zu bytes", outlen - 1);
    memcpy(out, s, len + 1);
    return 0;
}
