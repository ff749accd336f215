#include "util/size.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int ns_size_parse(const char *s, int64_t *out, char *err, size_t errlen) {
    static const struct {
        const char *unit;
        double mult;
    } units[] = {
        {"", 1},           {"b", 1},
        {"k", 1024.0},     {"ki", 1024.0},     {"kib", 1024.0},     {"kb", 1e3},
        {"m", 1048576.0},  {"mi", 1048576.0},  {"mib", 1048576.0},  {"mb", 1e6},
        {"g", 1073741824.0}, {"gi", 1073741824.0}, {"gib", 1073741824.0}, {"gb", 1e9},
        {"t", 1099511627776.0}, {"ti", 1099511627776.0}, {"tib", 1099511627776.0}, {"tb", 1e12},
    };
    if (!s) {
        snprintf(err, errlen, "no size given");
        return -1;
    }
    const char *p = s;
    while (*p == ' ') p++;
    const char *q = p;
    int digits = 0, dots = 0;
    for (; isdigit((unsigned char)*q) || *q == '.'; q++) {
        if (*q == '.') dots++;
        else digits++;
    }
    if (digits == 0 || dots > 1) {
        snprintf(err, errlen, "must be a size such as \"1GiB\" or \"512MiB\", not \"%.40s\"", s);
        return -1;
    }
    double v = strtod(p, NULL);
    while (*q == ' ') q++;
    size_t ulen = strlen(q);
    while (ulen > 0 && q[ulen - 1] == ' ') ulen--;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strlen(units[i].unit) != ulen || strncasecmp(units[i].unit, q, ulen) != 0) continue;
        double b = floor(v * units[i].mult + 0.5);
        if (!(b >= 0) || b > 4611686018427387904.0) { /* 2^62 */
            snprintf(err, errlen, "too large: \"%.40s\"", s);
            return -1;
        }
        *out = (int64_t)b;
        return 0;
    }
    snprintf(err, errlen, "unknown unit \"%.*s\" (B, KiB, MiB, GiB, TiB or K, M, G, T; KB, MB, GB, TB for powers of 1000)",
             (int)(ulen > 16 ? 16 : ulen), q);
    return -1;
}
