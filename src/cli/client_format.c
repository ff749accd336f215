#include "client_format.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void human_bytes(int64_t b, char *buf, size_t len) {
    static const struct {
        double v;
        const char *unit;
    } units[] = {{1e12, "TB"}, {1e9, "GB"}, {1e6, "MB"}, {1e3, "KB"}};
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if ((double)b < units[i].v) continue;
        double v = (double)b / units[i].v;
        /* one decimal only below 10 and when there is one, as Ollama prints */
        if (v >= 10 || v == trunc(v)) snprintf(buf, len, "%d %s", (int)v, units[i].unit);
        else snprintf(buf, len, "%.1f %s", v, units[i].unit);
        return;
    }
    snprintf(buf, len, "%lld B", (long long)b);
}

void human_duration(double d, char *buf, size_t len) {
    long long s = (long long)d;
    if (s < 1) {
        snprintf(buf, len, "Less than a second");
        return;
    }
    if (s == 1) {
        snprintf(buf, len, "1 second");
        return;
    }
    if (s < 60) {
        snprintf(buf, len, "%lld seconds", s);
        return;
    }
    long long m = s / 60;
    if (m == 1) {
        snprintf(buf, len, "About a minute");
        return;
    }
    if (m < 60) {
        snprintf(buf, len, "%lld minutes", m);
        return;
    }
    long long h = llround(d / 3600);
    if (h == 1) snprintf(buf, len, "About an hour");
    else if (h < 48) snprintf(buf, len, "%lld hours", h);
    else if (h < 24 * 7 * 2) snprintf(buf, len, "%lld days", h / 24);
    else if (h < 24 * 30 * 2) snprintf(buf, len, "%lld weeks", h / 24 / 7);
    else if (h < 24 * 365 * 2) snprintf(buf, len, "%lld months", h / 24 / 30);
    else snprintf(buf, len, "%lld years", h / 24 / 365);
}

void human_time(double t, double now, const char *zero_value, char *buf, size_t len) {
    if (t <= 0) {
        snprintf(buf, len, "%s", zero_value);
        return;
    }
    double delta = now - t;
    if (delta < -20.0 * 365 * 24 * 3600) {
        snprintf(buf, len, "Forever");
        return;
    }
    char span[64];
    human_duration(fabs(delta), span, sizeof span);
    snprintf(buf, len, "%s %s", span, delta < 0 ? "from now" : "ago");
}

static bool digits(const char *s, int n, int *out) {
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i])) return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

bool parse_rfc3339(const char *s, double *out) {
    if (!s) return false;
    int Y, M, D, h, m, sec;
    if (strlen(s) < 20 || !digits(s, 4, &Y) || s[4] != '-' || !digits(s + 5, 2, &M) || s[7] != '-' ||
        !digits(s + 8, 2, &D) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || !digits(s + 11, 2, &h) ||
        s[13] != ':' || !digits(s + 14, 2, &m) || s[16] != ':' || !digits(s + 17, 2, &sec))
        return false;
    const char *p = s + 19;
    double frac = 0;
    if (*p == '.') {
        double scale = 0.1;
        for (p++; isdigit((unsigned char)*p); p++, scale /= 10) frac += (*p - '0') * scale;
    }
    long offset = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh, om;
        if (!digits(p + 1, 2, &oh) || p[3] != ':' || !digits(p + 4, 2, &om)) return false;
        offset = (*p == '-' ? -1 : 1) * (oh * 3600L + om * 60L);
        p += 6;
    } else {
        return false;
    }
    if (*p) return false;
    /* Go's zero time (year 1) and anything before 1970 read as "no time" */
    if (Y < 1970) {
        *out = 0;
        return true;
    }
    struct tm tm = {.tm_year = Y - 1900, .tm_mon = M - 1, .tm_mday = D, .tm_hour = h, .tm_min = m, .tm_sec = sec};
    time_t t = timegm(&tm);
    *out = (double)t - (double)offset + frac;
    return true;
}

void short_digest(const char *digest, char *buf, size_t len) {
    if (!digest) digest = "";
    if (strncmp(digest, "sha256:", 7) == 0 || strncmp(digest, "sha256-", 7) == 0) digest += 7;
    snprintf(buf, len, "%.12s", digest);
}

/* ---- tables ---- */

void table_init(table *t, int ncols) { *t = (table){.ncols = ncols}; }

void table_row(table *t, const char *const *cells) {
    if (t->nrows == t->cap) {
        int cap = t->cap ? t->cap * 2 : 16;
        char **c = realloc(t->cells, sizeof *c * (size_t)cap * (size_t)t->ncols);
        if (!c) return;
        t->cells = c;
        t->cap = cap;
    }
    char **row = t->cells + (size_t)t->nrows * (size_t)t->ncols;
    for (int i = 0; i < t->ncols; i++) row[i] = strdup(cells[i] ? cells[i] : "");
    t->nrows++;
}

/* Characters, not bytes, so names in UTF-8 line up. */
static int width(const char *s) {
    int w = 0;
    for (; *s; s++) w += ((unsigned char)*s & 0xC0) != 0x80;
    return w;
}

void table_print_indented(const table *t, FILE *out, const char *indent) {
    int *w = calloc((size_t)t->ncols, sizeof *w);
    if (!w) return;
    for (int r = 0; r < t->nrows; r++)
        for (int c = 0; c < t->ncols; c++) {
            const char *s = t->cells[(size_t)r * (size_t)t->ncols + (size_t)c];
            int n = s ? width(s) : 0;
            if (n > w[c]) w[c] = n;
        }
    for (int r = 0; r < t->nrows; r++) {
        fputs(indent, out);
        for (int c = 0; c < t->ncols; c++) {
            const char *s = t->cells[(size_t)r * (size_t)t->ncols + (size_t)c];
            if (!s) s = "";
            fputs(s, out);
            if (c + 1 < t->ncols) fprintf(out, "%*s", w[c] - width(s) + 4, "");
        }
        fputc('\n', out);
    }
    free(w);
}

void table_print(const table *t, FILE *out) { table_print_indented(t, out, ""); }

void table_free(table *t) {
    for (size_t i = 0; i < (size_t)t->nrows * (size_t)t->ncols; i++) free(t->cells[i]);
    free(t->cells);
    *t = (table){0};
}
