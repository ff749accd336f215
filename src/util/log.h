/* Structured logs: one line per event on stderr.
 *
 *   time=2026-11-23T13:05:01.123Z level=info comp=runtime msg="model loaded" model=demo:latest ms=41
 *
 * or, with NSTACK_LOG_FORMAT=json, the same fields as one JSON object per
 * line. The level comes from NSTACK_LOG (debug, info, warn, error; default
 * info). Thread-safe: a line is written with one write(2). */
#ifndef NS_UTIL_LOG_H
#define NS_UTIL_LOG_H

typedef enum { NS_LOG_DEBUG = 0, NS_LOG_INFO = 1, NS_LOG_WARN = 2, NS_LOG_ERROR = 3 } ns_log_level;

/* Reads NSTACK_LOG and NSTACK_LOG_FORMAT again (called lazily on first use). */
void ns_log_init(void);
int ns_log_enabled(ns_log_level level);

/* msg is the human sentence; kv is "key=value key2=value2 ..." with values
 * already free of spaces, or values quoted with "..." (printf-formatted);
 * may be NULL. Values are passed through as given in text mode and turned
 * into JSON strings in JSON mode. */
void ns_log(ns_log_level level, const char *comp, const char *msg, const char *kv_fmt, ...)
    __attribute__((format(printf, 4, 5)));

#define ns_log_debug(comp, msg, ...) ns_log(NS_LOG_DEBUG, comp, msg, __VA_ARGS__)
#define ns_log_info(comp, msg, ...) ns_log(NS_LOG_INFO, comp, msg, __VA_ARGS__)
#define ns_log_warn(comp, msg, ...) ns_log(NS_LOG_WARN, comp, msg, __VA_ARGS__)
#define ns_log_error(comp, msg, ...) ns_log(NS_LOG_ERROR, comp, msg, __VA_ARGS__)

#endif
