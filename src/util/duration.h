/* Durations as Ollama accepts them for keep_alive: a JSON number of
 * seconds, or a Go duration string ("5m", "1h30m", "300ms", "-1m", "0"). */
#ifndef NS_UTIL_DURATION_H
#define NS_UTIL_DURATION_H

#include <stddef.h>
#include <stdint.h>

/* Parses a Go duration string into nanoseconds. Units: ns us µs ms s m h;
 * a bare number is seconds (Ollama accepts "300" too). Returns 0, or -1 with
 * a reason in err. */
int ns_duration_parse(const char *s, int64_t *out_ns, char *err, size_t errlen);

/* Formats ns as a Go duration ("5m0s", "1h30m0s", "300ms"). */
void ns_duration_format(int64_t ns, char *buf, size_t buflen);

/* Monotonic and wall clocks in nanoseconds. */
int64_t ns_now_mono(void);
int64_t ns_now_wall(void);

/* RFC 3339 with nanoseconds and the local offset, as Ollama writes times
 * ("2024-06-04T14:38:31.83753-07:00"). */
void ns_time_format_rfc3339(int64_t wall_ns, char *buf, size_t buflen);

#endif
