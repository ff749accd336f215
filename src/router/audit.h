/* The router's audit log: one JSON object per routing decision, one line
 * each, appended with a single write(2) so lines from concurrent requests
 * never interleave, and so a reader (tail -f, jq) always sees whole lines. */
#ifndef NS_ROUTER_AUDIT_H
#define NS_ROUTER_AUDIT_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

typedef struct ns_audit ns_audit;

/* path "": $NSTACK_ROUTE_LOG, else the data dir's route.jsonl; "-": stdout.
 * Parent directories are created. A line that would take the file past
 * max_size bytes (0: no limit) first moves it to PATH.1 (replacing the
 * previous one) and starts a new file, so the log keeps between max_size
 * and twice that on disk. NULL with err. */
ns_audit *ns_audit_open(const char *path, int64_t max_size, char *err, size_t errlen);
void ns_audit_close(ns_audit *a); /* NULL ok */
const char *ns_audit_path(const ns_audit *a);
/* Appends line as one line of JSON; a failed write is logged, not fatal. */
void ns_audit_write(ns_audit *a, const cJSON *line);

#endif
