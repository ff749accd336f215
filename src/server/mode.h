/* The server's mode: NORMAL or GAMING. The router polls GET /mode on the big
 * machine and keeps inference off it while its owner is gaming, so the mode
 * must survive restarts and must fail safe: it lives in a small JSON state
 * file (written atomically), a missing file means NORMAL, and a file that
 * cannot be read means GAMING until someone sets the mode.
 *
 *   {"mode":"GAMING","since":"2026-12-07T21:00:00Z","changed_by":"192.168.1.20:53412"}
 *
 * Thread-safe: one mutex guards the state and the file. */
#ifndef NS_SERVER_MODE_H
#define NS_SERVER_MODE_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "runtime/events.h"

typedef enum { NS_MODE_NORMAL = 0, NS_MODE_GAMING = 1 } ns_mode_kind;

typedef struct {
    ns_mode_kind mode;
    char since[64];       /* RFC 3339: when the mode last changed */
    char changed_by[128]; /* the peer address that set it, or "startup" */
    char note[640];       /* "" or why the mode is not what the file says (a corrupt file) */
} ns_mode_state;

/* "NORMAL" or "GAMING". */
const char *ns_mode_name(ns_mode_kind m);

/* "normal" / "gaming" in any case; 0, or -1 for anything else. */
int ns_mode_parse_name(const char *s, ns_mode_kind *out);

/* Parses a state file's text: an object with "mode" (required), "since" (an
 * RFC 3339 time, required) and "changed_by" (a string, optional). 0, or -1
 * with err ("invalid JSON", "\"mode\" must be \"NORMAL\" or \"GAMING\"").
 * out->note is left empty. */
int ns_mode_parse_state(const char *text, size_t len, ns_mode_state *out, char *err, size_t errlen);

/* {"mode","since","changed_by"} plus "note" when there is one. NULL: no memory. */
cJSON *ns_mode_state_json(const ns_mode_state *st);

typedef struct ns_mode ns_mode;

/* Reads the state file: path when not NULL, else $NSTACK_MODE_FILE, else
 * the data dir's mode.json. A missing file starts NORMAL (since now, by
 * "startup"); an unreadable or corrupt one starts GAMING with a note and a
 * logged warning. When no path can be found (no HOME) the mode starts NORMAL
 * and every ns_mode_set fails with the reason. events (may be NULL) hears
 * NS_EV_MODE_CHANGED. NULL only when out of memory. */
ns_mode *ns_mode_open(const char *path, ns_events *events);
void ns_mode_free(ns_mode *m);

/* The state file's path; "" when there is none. */
const char *ns_mode_path(const ns_mode *m);

void ns_mode_get(ns_mode *m, ns_mode_state *out);

/* Sets the mode and writes the state file (temp file, fsync, rename).
 * Setting the mode it already has keeps since and changed_by, rewrites the
 * file and clears a note. Publishes NS_EV_MODE_CHANGED (detail mode,
 * previous, by) when the mode changed. 0 with *out (when not NULL) the new
 * state, or -1 with err ("cannot write /x/mode.json: Permission denied"):
 * then nothing changed. */
int ns_mode_set(ns_mode *m, ns_mode_kind mode, const char *by, const char *request_id, ns_mode_state *out,
                char *err, size_t errlen);

#endif
