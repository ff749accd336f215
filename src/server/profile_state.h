/* The server's active profile (runtime/profile.h) and its state file, as
 * mode.h keeps the mode: a small JSON file written atomically,
 *
 *   {"name":"batch_inference","since":"2026-12-07T21:00:00Z","changed_by":"127.0.0.1:53412"}
 *
 * at path, else $NSTACK_PROFILE_FILE, else the data dir's profile.json. At
 * start the file's profile is applied again (`serve --profile NAME` wins for
 * that run and is not written); no file means no profile: the server's flags
 * and environment decide everything. A profile is looked up again by name
 * (user files first, then the built-ins) each time it is applied.
 *
 * Applying one: the server's base configuration (flags, environment) with
 * the profile's fields on top goes to ns_runtime_retune, so fields a user
 * profile leaves out return to the base. Thread-safe: one mutex. */
#ifndef NS_SERVER_PROFILE_STATE_H
#define NS_SERVER_PROFILE_STATE_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "runtime/events.h"
#include "runtime/profile.h"
#include "runtime/runtime.h"

typedef struct ns_profile_state ns_profile_state;

/* Reads the state file and picks the active profile: override (when not
 * NULL: a name that must exist, else NULL with err listing the known
 * names), else the file's. A file that cannot be read, or names a profile
 * that no longer exists or no longer parses, starts with no profile and a
 * note (logged). profiles_dir NULL: the default directory. *base is the
 * server's runtime configuration before any profile; *cfg (may be base)
 * gets the active profile applied. */
ns_profile_state *ns_profile_state_open(const char *path, const char *profiles_dir, const char *override,
                                        const ns_runtime_config *base, ns_runtime_config *cfg, ns_events *events,
                                        char *err, size_t errlen);
void ns_profile_state_free(ns_profile_state *ps);

/* GET /api/profile's answer: {"name" (null when none), "description",
 * "source", "selected_by" ("state file" | "--profile" | "api" | "none"),
 * "since", "changed_by", "fields", "in_effect", "not_enforced", "note",
 * "applies_to", "runtime" (the runtime's settings now), "available"}. */
cJSON *ns_profile_state_json(ns_profile_state *ps, ns_runtime *rt);

/* Applies the named profile to rt, writes the state file, publishes
 * profile_applied. 0 with *answer (the GET answer plus "previous" and
 * "changed": [{"setting","from","to","applies_to"}]); else an HTTP status
 * with err: 404 unknown name (err lists the known names), 422 a user file
 * that does not parse, 500 the state file cannot be written (nothing
 * changed). */
int ns_profile_state_set(ns_profile_state *ps, ns_runtime *rt, const char *name, const char *by,
                         const char *request_id, cJSON **answer, char *err, size_t errlen);

#endif
