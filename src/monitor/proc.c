/* /proc readers (proc.h). Parsing is by hand on a length-delimited buffer:
 * no sscanf, no allocation, so the sampler's cost per reading is the read
 * syscalls and a pass over a few KB of text. */
#include "monitor/proc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* /proc/stat carries one line per CPU plus a long "intr" line; the buffer
 * starts here and doubles when a file does not fit, so after the first few
 * samples it never changes again. */
#define INITIAL_CAP 8192
/* A file bigger than this is not a /proc file we understand. */
#define MAX_CAP ((size_t)16 << 20)

/* ---- text cursor ---- */

typedef struct {
    const char *p, *end;
} cursor;

static void skip_blanks(cursor *c) {
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t')) c->p++;
}

static void skip_line(cursor *c) {
    while (c->p < c->end && *c->p != '\n') c->p++;
    if (c->p < c->end) c->p++;
}

/* Skips one whitespace-delimited token on the current line. */
static bool skip_token(cursor *c) {
    skip_blanks(c);
    const char *start = c->p;
    while (c->p < c->end && *c->p != ' ' && *c->p != '\t' && *c->p != '\n') c->p++;
    return c->p > start;
}

/* Non-negative decimal; false when there is no digit before the end of
 * the line. */
static bool parse_u(cursor *c, int64_t *v) {
    skip_blanks(c);
    if (c->p >= c->end || *c->p < '0' || *c->p > '9') return false;
    int64_t x = 0;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
        if (x > (INT64_MAX - 9) / 10) return false; /* not a counter we can hold */
        x = x * 10 + (*c->p - '0');
        c->p++;
    }
    *v = x;
    return true;
}

static bool starts_with(const cursor *c, const char *s) {
    size_t n = strlen(s);
    return (size_t)(c->end - c->p) >= n && memcmp(c->p, s, n) == 0;
}

/* ---- parsers ---- */

int ns_proc_parse_stat(const char *text, size_t len, ns_cpu_times *out) {
    cursor c = {text, text + len};
    if (!starts_with(&c, "cpu ")) return -1;
    c.p += 3;
    int64_t f[8] = {0};
    int n = 0;
    while (n < 8 && parse_u(&c, &f[n])) n++;
    /* user nice system idle exist on every kernel; iowait, irq, softirq
     * and steal came later and read as 0 where absent. */
    if (n < 4) return -1;
    memset(out, 0, sizeof *out);
    out->user = f[0];
    out->nice = f[1];
    out->system = f[2];
    out->idle = f[3];
    out->iowait = f[4];
    out->irq = f[5];
    out->softirq = f[6];
    out->steal = f[7];
    skip_line(&c);
    /* The cpuN lines follow the aggregate line and end at the first line
     * that is not one. */
    while (starts_with(&c, "cpu") && c.end - c.p > 3 && c.p[3] >= '0' && c.p[3] <= '9') {
        out->n_cpus++;
        skip_line(&c);
    }
    if (out->n_cpus == 0) return -1;
    return 0;
}

int ns_proc_parse_self_stat(const char *text, size_t len, int64_t *ticks) {
    /* "pid (comm) state ppid ...": comm is the executable's name and may
     * hold spaces and ')' itself, so the fields start after the LAST ')'. */
    const char *close = NULL;
    for (size_t i = len; i > 0; i--) {
        if (text[i - 1] == ')') {
            close = text + i - 1;
            break;
        }
    }
    if (!close) return -1;
    cursor c = {close + 1, text + len};
    /* Fields 3..13 (state .. cmajflt), then utime (14) and stime (15). */
    for (int i = 0; i < 11; i++)
        if (!skip_token(&c)) return -1;
    int64_t utime, stime;
    if (!parse_u(&c, &utime) || !parse_u(&c, &stime)) return -1;
    *ticks = utime + stime;
    return 0;
}

int ns_proc_parse_meminfo(const char *text, size_t len, int64_t *total, int64_t *available) {
    static const char *const keys[] = {"MemTotal:", "MemAvailable:", "MemFree:", "Buffers:", "Cached:"};
    enum { K_TOTAL, K_AVAIL, K_FREE, K_BUFFERS, K_CACHED, K_N };
    int64_t v[K_N];
    for (int i = 0; i < K_N; i++) v[i] = -1;
    cursor c = {text, text + len};
    while (c.p < c.end) {
        for (int k = 0; k < K_N; k++) {
            if (!starts_with(&c, keys[k])) continue;
            c.p += strlen(keys[k]);
            int64_t x;
            if (parse_u(&c, &x)) {
                skip_blanks(&c);
                /* Every size in meminfo is in kB (KiB); the unit is still
                 * checked so a count-valued line could never be scaled. */
                if (starts_with(&c, "kB")) x *= 1024;
                v[k] = x;
            }
            break;
        }
        /* MemTotal and MemAvailable are the first and third lines. */
        if (v[K_TOTAL] >= 0 && v[K_AVAIL] >= 0) break;
        skip_line(&c);
    }
    if (v[K_TOTAL] <= 0) return -1;
    if (v[K_AVAIL] < 0) {
        /* Kernels before 3.14: the old estimate. */
        if (v[K_FREE] < 0) return -1;
        v[K_AVAIL] = v[K_FREE] + (v[K_BUFFERS] > 0 ? v[K_BUFFERS] : 0) + (v[K_CACHED] > 0 ? v[K_CACHED] : 0);
    }
    *total = v[K_TOTAL];
    *available = v[K_AVAIL] < v[K_TOTAL] ? v[K_AVAIL] : v[K_TOTAL];
    return 0;
}

int ns_proc_parse_statm(const char *text, size_t len, int64_t page_size, int64_t *rss) {
    cursor c = {text, text + len};
    int64_t size, resident;
    if (!parse_u(&c, &size) || !parse_u(&c, &resident)) return -1;
    *rss = resident * page_size;
    return 0;
}

void ns_cpu_percent(const ns_cpu_times *prev, const ns_cpu_times *cur, int64_t proc_prev, int64_t proc_cur,
                    double *system_pct, double *process_pct) {
    int64_t busy0 = prev->user + prev->nice + prev->system + prev->irq + prev->softirq + prev->steal;
    int64_t busy1 = cur->user + cur->nice + cur->system + cur->irq + cur->softirq + cur->steal;
    int64_t idle0 = prev->idle + prev->iowait, idle1 = cur->idle + cur->iowait;
    int64_t dbusy = busy1 - busy0, didle = idle1 - idle0;
    /* iowait is known to step backwards on some kernels: a negative part
     * counts as nothing rather than shrinking the elapsed time. */
    if (dbusy < 0) dbusy = 0;
    if (didle < 0) didle = 0;
    int64_t elapsed = dbusy + didle;
    int64_t dproc = proc_cur - proc_prev;
    double sys = 0, proc = 0;
    if (elapsed > 0) {
        sys = 100.0 * (double)dbusy / (double)elapsed;
        proc = dproc > 0 ? 100.0 * (double)dproc / (double)elapsed : 0;
    }
    *system_pct = sys > 100 ? 100 : sys;
    *process_pct = proc > 100 ? 100 : proc;
}

/* ---- reading ---- */

/* The whole file from offset 0 into *buf, growing it when the file does not
 * fit. procfs files are generated on each read from offset 0, so a pread
 * there is a fresh reading without reopening; a read shorter than asked is
 * the end of the file (procfs hands a seq file out in one piece). */
static int read_all(int fd, char **buf, size_t *cap, size_t *len) {
    for (;;) {
        if (!*buf) {
            *buf = malloc(INITIAL_CAP);
            if (!*buf) return -1;
            *cap = INITIAL_CAP;
        }
        ssize_t n;
        do {
            n = pread(fd, *buf, *cap, 0);
        } while (n < 0 && errno == EINTR);
        if (n < 0) return -1;
        if ((size_t)n < *cap) {
            *len = (size_t)n;
            return 0;
        }
        /* Filled: the file may go on. Grow and read again from the start,
         * so the text is one consistent reading. */
        if (*cap >= MAX_CAP) return -1;
        char *bigger = realloc(*buf, *cap * 2);
        if (!bigger) return -1;
        *buf = bigger;
        *cap *= 2;
    }
}

static int open_under(const char *root, const char *rel) {
    char path[4096];
    int n = snprintf(path, sizeof path, "%s/%s", root, rel);
    if (n < 0 || (size_t)n >= sizeof path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return open(path, O_RDONLY | O_CLOEXEC);
}

/* One-shot: open, read, close. */
static int read_file(const char *root, const char *rel, char **buf, size_t *len) {
    int fd = open_under(root, rel);
    if (fd < 0) return -1;
    size_t cap = 0;
    *buf = NULL;
    int rc = read_all(fd, buf, &cap, len);
    close(fd);
    if (rc != 0) {
        free(*buf);
        *buf = NULL;
    }
    return rc;
}

static int64_t page_size(void) {
    long p = sysconf(_SC_PAGESIZE);
    return p > 0 ? p : 4096;
}

int ns_proc_cpu_times(const char *root, ns_cpu_times *out) {
    char *b;
    size_t n;
    if (read_file(root, "stat", &b, &n) != 0) return -1;
    int rc = ns_proc_parse_stat(b, n, out);
    free(b);
    return rc;
}

int ns_proc_self_cpu(const char *root, int64_t *ticks) {
    char *b;
    size_t n;
    if (read_file(root, "self/stat", &b, &n) != 0) return -1;
    int rc = ns_proc_parse_self_stat(b, n, ticks);
    free(b);
    return rc;
}

int ns_proc_meminfo(const char *root, int64_t *total, int64_t *available) {
    char *b;
    size_t n;
    if (read_file(root, "meminfo", &b, &n) != 0) return -1;
    int rc = ns_proc_parse_meminfo(b, n, total, available);
    free(b);
    return rc;
}

int ns_proc_self_rss(const char *root, int64_t *rss) {
    char *b;
    size_t n;
    if (read_file(root, "self/statm", &b, &n) != 0) return -1;
    int rc = ns_proc_parse_statm(b, n, page_size(), rss);
    free(b);
    return rc;
}

/* ---- kept-open reader ---- */

int ns_proc_reader_open(ns_proc_reader *r, const char *root, char *err, size_t errlen) {
    memset(r, 0, sizeof *r);
    r->fd_stat = r->fd_self_stat = r->fd_meminfo = r->fd_statm = -1;
    r->page_size = page_size();
    static const char *const rel[] = {"stat", "self/stat", "meminfo", "self/statm"};
    int *fds[] = {&r->fd_stat, &r->fd_self_stat, &r->fd_meminfo, &r->fd_statm};
    for (int i = 0; i < 4; i++) {
        *fds[i] = open_under(root, rel[i]);
        if (*fds[i] < 0) {
            if (err) snprintf(err, errlen, "open %s/%s: %s", root, rel[i], strerror(errno));
            ns_proc_reader_close(r);
            return -1;
        }
    }
    return 0;
}

void ns_proc_reader_close(ns_proc_reader *r) {
    int *fds[] = {&r->fd_stat, &r->fd_self_stat, &r->fd_meminfo, &r->fd_statm};
    for (int i = 0; i < 4; i++) {
        if (*fds[i] >= 0) close(*fds[i]);
        *fds[i] = -1;
    }
    free(r->buf);
    r->buf = NULL;
    r->cap = 0;
}

int ns_proc_reader_cpu(ns_proc_reader *r, ns_cpu_times *out) {
    size_t n;
    if (read_all(r->fd_stat, &r->buf, &r->cap, &n) != 0) return -1;
    return ns_proc_parse_stat(r->buf, n, out);
}

int ns_proc_reader_self_cpu(ns_proc_reader *r, int64_t *ticks) {
    size_t n;
    if (read_all(r->fd_self_stat, &r->buf, &r->cap, &n) != 0) return -1;
    return ns_proc_parse_self_stat(r->buf, n, ticks);
}

int ns_proc_reader_meminfo(ns_proc_reader *r, int64_t *total, int64_t *available) {
    size_t n;
    if (read_all(r->fd_meminfo, &r->buf, &r->cap, &n) != 0) return -1;
    return ns_proc_parse_meminfo(r->buf, n, total, available);
}

int ns_proc_reader_rss(ns_proc_reader *r, int64_t *rss) {
    size_t n;
    if (read_all(r->fd_statm, &r->buf, &r->cap, &n) != 0) return -1;
    return ns_proc_parse_statm(r->buf, n, r->page_size, rss);
}
