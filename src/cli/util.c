#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

bool cli_parse_int(const char *s, long long lo, long long hi, long long *out) {
    if (!s || !*s) return false;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < lo || v > hi) return false;
    *out = v;
    return true;
}

bool cli_parse_float(const char *s, double *out) {
    if (!s || !*s) return false;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || !isfinite(v)) return false;
    *out = v;
    return true;
}

bool cli_parse_kv_type(const char *s, ns_kv_type *out) {
    if (strcmp(s, "f16") == 0) *out = NS_KV_F16;
    else if (strcmp(s, "f32") == 0) *out = NS_KV_F32;
    else return false;
    return true;
}

const char *cli_value(int argc, char **argv, int *i) {
    if (*i + 1 >= argc) {
        fprintf(stderr, "nstack: option %s needs a value\n", argv[*i]);
        return NULL;
    }
    return argv[++*i];
}

char *cli_read_all(const char *path, size_t *len) {
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, n = 0, got;
    char *buf = malloc(cap);
    while (buf && (got = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += got;
        if (cap - n < 2) {
            char *g = realloc(buf, cap * 2);
            if (!g) free(buf);
            buf = g;
            cap *= 2;
        }
    }
    int e = buf ? (ferror(f) ? EIO : 0) : ENOMEM;
    if (f != stdin) fclose(f);
    if (e) {
        free(buf);
        errno = e;
        return NULL;
    }
    buf[n] = '\0';
    if (len) *len = n;
    return buf;
}

int cli_opt_value(int argc, char **argv, int *i, const char *name, const char **val) {
    const char *a = argv[*i];
    size_t n = strlen(name);
    if (strncmp(a, name, n) != 0) return 0;
    if (a[n] == '=') {
        *val = a + n + 1;
        return 1;
    }
    if (a[n] != 0) return 0;
    const char *v = cli_value(argc, argv, i);
    if (!v) return -1;
    *val = v;
    return 1;
}

bool cli_is_help(const char *a) { return strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0; }

double cli_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* One line of input without its newline (malloc'd), or NULL at the end. */
static char *read_line(FILE *in) {
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, in);
    if (n < 0) {
        free(line);
        return NULL;
    }
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = 0;
    return line;
}

char *cli_read_message(FILE *in, FILE *prompt) {
    char *line = read_line(in);
    if (!line || strncmp(line, "\"\"\"", 3) != 0) return line;
    char *buf = strdup(line + 3);
    free(line);
    if (!buf) return NULL;
    size_t len = strlen(buf);
    for (;;) {
        if (prompt) fputs("... ", prompt), fflush(prompt);
        if (!(line = read_line(in))) break;
        char *end = strstr(line, "\"\"\"");
        if (end) *end = 0;
        size_t add = strlen(line);
        if (end && add == 0) { /* a closing line with nothing before the quotes */
            free(line);
            break;
        }
        char *nb = realloc(buf, len + 1 + add + 1);
        if (!nb) {
            free(line);
            break;
        }
        buf = nb;
        if (len > 0) buf[len++] = '\n';
        memcpy(buf + len, line, add + 1);
        len += add;
        free(line);
        if (end) break;
    }
    return buf;
}
