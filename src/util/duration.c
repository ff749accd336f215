#include "duration.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int64_t ns_now_mono(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int64_t ns_now_wall(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static double unit_ns(const char *u, size_t n) {
    static const struct {
        const char *name;
        double ns;
    } units[] = {{"ns", 1}, {"us", 1e3}, {"\xc2\xb5s", 1e3}, {"\xce\xbcs", 1e3}, {"ms", 1e6},
                 {"s", 1e9}, {"m", 60e9}, {"h", 3600e9}};
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (strlen(units[i].name) == n && memcmp(units[i].name, u, n) == 0) return units[i].ns;
    return 0;
}

int ns_duration_parse(const char *s, int64_t *out_ns, char *err, size_t errlen) {
    if (!s || !*s) {
        snprintf(err, errlen, "empty duration");
        return -1;
    }
    const char *p = s;
    int sign = 1;
    if (*p == '-' || *p == '+') {
        if (*p == '-') sign = -1;
        p++;
    }
    /* a bare number is seconds */
    char *end;
    double bare = strtod(p, &end);
    if (end != p && *end == 0) {
        if (!isfinite(bare) || bare > 9.2e9) {
            snprintf(err, errlen, "duration '%s' is out of range", s);
            return -1;
        }
        *out_ns = (int64_t)(sign * bare * 1e9);
        return 0;
    }
    if (strcmp(p, "0") == 0) {
        *out_ns = 0;
        return 0;
    }
    double total = 0;
    int parts = 0;
    while (*p) {
        if (!((*p >= '0' && *p <= '9') || *p == '.')) goto bad;
        double v = strtod(p, &end);
        if (end == p) goto bad;
        p = end;
        const char *u = p;
        while (*p && !((*p >= '0' && *p <= '9') || *p == '.')) p++;
        double mult = unit_ns(u, (size_t)(p - u));
        if (mult == 0) goto bad;
        total += v * mult;
        parts++;
    }
    if (parts == 0 || total > 9.2e18) goto bad;
    *out_ns = (int64_t)(sign * total);
    return 0;
bad:
    snprintf(err, errlen, "invalid duration '%s' (expected e.g. \"5m\", \"1h30m\", \"300ms\" or seconds)", s);
    return -1;
}

void ns_duration_format(int64_t ns, char *buf, size_t buflen) {
    const char *sign = "";
    uint64_t u = (uint64_t)ns;
    if (ns < 0) {
        sign = "-";
        u = (uint64_t)0 - (uint64_t)ns;
    }
    if (u == 0) {
        snprintf(buf, buflen, "0s");
    } else if (u < 1000ULL) {
        snprintf(buf, buflen, "%s%lluns", sign, (unsigned long long)u);
    } else if (u < 1000000ULL) {
        snprintf(buf, buflen, "%s%gµs", sign, (double)u / 1e3);
    } else if (u < 1000000000ULL) {
        snprintf(buf, buflen, "%s%gms", sign, (double)u / 1e6);
    } else {
        uint64_t h = u / 3600000000000ULL, rem = u % 3600000000000ULL;
        uint64_t m = rem / 60000000000ULL;
        double sec = (double)(rem % 60000000000ULL) / 1e9;
        if (h)
            snprintf(buf, buflen, "%s%lluh%llum%gs", sign, (unsigned long long)h, (unsigned long long)m, sec);
        else if (m)
            snprintf(buf, buflen, "%s%llum%gs", sign, (unsigned long long)m, sec);
        else
            snprintf(buf, buflen, "%s%gs", sign, sec);
    }
}

void ns_time_format_rfc3339(int64_t wall_ns, char *buf, size_t buflen) {
    time_t secs = (time_t)(wall_ns / 1000000000LL);
    long frac = (long)(wall_ns % 1000000000LL);
    if (frac < 0) {
        frac += 1000000000L;
        secs -= 1;
    }
    struct tm tm;
    localtime_r(&secs, &tm);
    char off[40];
    long gmtoff = tm.tm_gmtoff;
    if (gmtoff == 0) {
        snprintf(off, sizeof off, "Z");
    } else {
        char sg = gmtoff < 0 ? '-' : '+';
        if (gmtoff < 0) gmtoff = -gmtoff;
        snprintf(off, sizeof off, "%c%02ld:%02ld", sg, gmtoff / 3600, (gmtoff % 3600) / 60);
    }
    /* Go prints up to 9 fraction digits without trailing zeros */
    char fr[16] = "";
    if (frac) {
        snprintf(fr, sizeof fr, ".%09ld", frac);
        size_t n = strlen(fr);
        while (n > 1 && fr[n - 1] == '0') fr[--n] = 0;
    }
    snprintf(buf, buflen, "%04d-%02d-%02dT%02d:%02d:%02d%s%s", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
             tm.tm_hour, tm.tm_min, tm.tm_sec, fr, off);
}
