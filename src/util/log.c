#include "log.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <pthread.h>

static pthread_once_t log_once = PTHREAD_ONCE_INIT;
static int log_min = NS_LOG_INFO;
static int log_json = 0;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

static void read_env(void) {
    const char *lv = getenv("NSTACK_LOG");
    if (lv) {
        for (int i = 0; i < 4; i++)
            if (strcasecmp(lv, level_names[i]) == 0) log_min = i;
        if (strcasecmp(lv, "warning") == 0) log_min = NS_LOG_WARN;
        if (strcasecmp(lv, "off") == 0 || strcasecmp(lv, "none") == 0) log_min = NS_LOG_ERROR + 1;
    }
    const char *fmt = getenv("NSTACK_LOG_FORMAT");
    log_json = fmt && strcasecmp(fmt, "json") == 0;
}

void ns_log_init(void) { pthread_once(&log_once, read_env); }

int ns_log_enabled(ns_log_level level) {
    ns_log_init();
    return (int)level >= log_min;
}

typedef struct {
    char *p;
    size_t len, cap;
} line_buf;

static void put(line_buf *b, const char *s, size_t n) {
    if (b->len + n >= b->cap) n = b->cap - b->len - 1;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

static void puts_(line_buf *b, const char *s) { put(b, s, strlen(s)); }

/* JSON string body of n bytes of s. */
static void put_json_str(line_buf *b, const char *s, size_t n) {
    puts_(b, "\"");
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            put(b, esc, 2);
        } else if (c < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            puts_(b, esc);
        } else {
            put(b, (const char *)&c, 1);
        }
    }
    puts_(b, "\"");
}

/* Value in text mode: quoted when it has spaces or quotes and is not quoted yet. */
static void put_text_value(line_buf *b, const char *s, size_t n) {
    bool needs = n == 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] == ' ' || s[i] == '"' || s[i] == '=' || (unsigned char)s[i] < 0x20) needs = true;
    if (n >= 2 && s[0] == '"' && s[n - 1] == '"') needs = false;
    if (needs)
        put_json_str(b, s, n);
    else
        put(b, s, n);
}

/* Splits "k=v k2="quoted value"" into pairs. */
static void put_pairs(line_buf *b, const char *kv, bool json) {
    const char *p = kv;
    while (*p) {
        while (*p == ' ') p++;
        if (!*p) break;
        const char *k = p;
        while (*p && *p != '=' && *p != ' ') p++;
        size_t klen = (size_t)(p - k);
        const char *v = p;
        size_t vlen = 0;
        if (*p == '=') {
            p++;
            v = p;
            if (*p == '"') {
                p++;
                while (*p && !(*p == '"' && p[-1] != '\\')) p++;
                if (*p == '"') p++;
            } else {
                while (*p && *p != ' ') p++;
            }
            vlen = (size_t)(p - v);
        }
        if (json) {
            puts_(b, ",");
            put_json_str(b, k, klen);
            puts_(b, ":");
            if (vlen >= 2 && v[0] == '"' && v[vlen - 1] == '"') {
                v++;
                vlen -= 2;
            }
            put_json_str(b, v, vlen);
        } else {
            puts_(b, " ");
            put(b, k, klen);
            puts_(b, "=");
            put_text_value(b, v, vlen);
        }
    }
}

void ns_log(ns_log_level level, const char *comp, const char *msg, const char *kv_fmt, ...) {
    if (!ns_log_enabled(level)) return;
    char kv[2048] = "";
    if (kv_fmt) {
        va_list ap;
        va_start(ap, kv_fmt);
        vsnprintf(kv, sizeof kv, kv_fmt, ap);
        va_end(ap);
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[80];
    snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
             tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
    char line[4096];
    line_buf b = {line, 0, sizeof line};
    line[0] = 0;
    if (log_json) {
        puts_(&b, "{\"time\":\"");
        puts_(&b, when);
        puts_(&b, "\",\"level\":\"");
        puts_(&b, level_names[level]);
        puts_(&b, "\",\"comp\":");
        put_json_str(&b, comp, strlen(comp));
        puts_(&b, ",\"msg\":");
        put_json_str(&b, msg, strlen(msg));
        put_pairs(&b, kv, true);
        puts_(&b, "}");
    } else {
        puts_(&b, "time=");
        puts_(&b, when);
        puts_(&b, " level=");
        puts_(&b, level_names[level]);
        puts_(&b, " comp=");
        puts_(&b, comp);
        puts_(&b, " msg=");
        put_json_str(&b, msg, strlen(msg));
        put_pairs(&b, kv, false);
    }
    /* room for the newline is always kept by put() */
    line[b.len++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, b.len);
    (void)w;
}
