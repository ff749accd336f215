/* Profiles: named bundles of server settings for a kind of work (issue #9).
 *
 * Three are built in: local_llm (latency), batch_inference (throughput)
 * and image_generation (leave the GPU to image tools). A user profile is a
 * TOML file NAME.toml in the profiles directory ($NSTACK_PROFILES, else
 * $XDG_CONFIG_HOME/nstack/profiles, else ~/.config/nstack/profiles); a file
 * named like a built-in replaces it. A file:
 *
 *   [profile]
 *   description = "long batch jobs overnight"
 *   parallel = 12
 *   ctx = 8192
 *   max_batch = 1024
 *   auto_unload_idle = "10m"      # or "never"
 *   vram_reserve = "2GiB"
 *
 * Every key is optional; a key left out leaves the server's own setting
 * (its flags and environment) alone. Unknown keys, wrong types and values
 * out of range are errors "FILE:LINE: profile.KEY: reason".
 *
 * Not every field is enforced yet: ns_profile_field_enforced says which the
 * runtime honours today (parallel, ctx, max_batch, auto_unload_idle); the
 * others are parsed, stored and shown as "recorded, not yet enforced". */
#ifndef NS_RUNTIME_PROFILE_H
#define NS_RUNTIME_PROFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "runtime.h"

#define NS_PROFILE_NAME_MAX 64   /* with the NUL: names are 1..63 of [A-Za-z0-9_.-] */
#define NS_PROFILE_MAX 256       /* profiles listed at most (files beyond are ignored) */

typedef enum { NS_PREFER_LATENCY = 1, NS_PREFER_THROUGHPUT = 2 } ns_profile_prefer;

/* The fields, in the order they are documented and shown. */
typedef enum {
    NS_PF_VRAM_RESERVE,              /* bytes of VRAM kept free for other programs */
    NS_PF_KV_CACHE_LIMIT,            /* bytes of KV cache per model at most; 0 none */
    NS_PF_AUTO_OFFLOAD,              /* let the placement planner choose GPU layers */
    NS_PF_AUTO_UNLOAD_IDLE,          /* unload a model idle longer than this (keep_alive) */
    NS_PF_VRAM_UNLOAD_THRESHOLD_PCT, /* unload idle models once VRAM use passes this percent */
    NS_PF_PREFER,                    /* latency | throughput */
    NS_PF_MAX_BATCH,                 /* tokens per forward pass (num_batch) */
    NS_PF_PARALLEL,                  /* slots per model (num_parallel) */
    NS_PF_CTX,                       /* default context per slot, tokens (num_ctx) */
    NS_PF_COUNT
} ns_profile_field;

typedef struct {
    char name[NS_PROFILE_NAME_MAX];
    char description[256];
    char source[1024];      /* "built-in", or the file's path */
    bool builtin;           /* one of the built-ins, not replaced by a file */
    bool overrides_builtin; /* a file with a built-in's name */
    unsigned set;           /* bit (1u << ns_profile_field) for each field the profile sets */
    int64_t vram_reserve;   /* bytes */
    int64_t kv_cache_limit; /* bytes; 0: no limit */
    bool auto_offload;
    int64_t auto_unload_idle_ns; /* < 0: never */
    int vram_unload_threshold_pct; /* 1..100 */
    ns_profile_prefer prefer;
    int max_batch;          /* 1..1048576 */
    int parallel;           /* 1..1024 */
    int ctx;                /* 1..1048576 */
} ns_profile;

static inline bool ns_profile_has(const ns_profile *p, ns_profile_field f) { return (p->set >> f) & 1u; }

/* "vram_reserve", "parallel", ... (the TOML key). */
const char *ns_profile_field_name(ns_profile_field f);
/* Whether the runtime honours the field today. */
bool ns_profile_field_enforced(ns_profile_field f);
/* What the field maps to ("num_parallel", ...), or why it is not enforced. */
const char *ns_profile_field_effect(ns_profile_field f);
/* When an applied value takes effect: "models loaded from now on", ... */
const char *ns_profile_field_applies_to(ns_profile_field f);

/* "latency" / "throughput". */
const char *ns_profile_prefer_name(ns_profile_prefer p);

/* "1GiB", "512MiB", "1.5GiB", "123B". */
void ns_format_size(int64_t bytes, char *buf, size_t buflen);

/* Whether s is a valid profile name. */
bool ns_profile_name_ok(const char *s);

/* Parses a profile file's text. `file` prefixes messages, `name` becomes
 * out->name (the file's base name without .toml). 0, or -1 with err
 * "FILE:LINE: profile.KEY: reason". out->source is set to file. */
int ns_profile_parse(const char *text, size_t len, const char *file, const char *name, ns_profile *out, char *err,
                     size_t errlen);
/* Reads and parses one file (at most 1 MiB). */
int ns_profile_load_file(const char *path, const char *name, ns_profile *out, char *err, size_t errlen);

int ns_profile_builtin_count(void);
const ns_profile *ns_profile_builtin(int i);

/* The profiles directory (see the top of this file); -1 with err when
 * neither NSTACK_PROFILES, XDG_CONFIG_HOME nor HOME is set. */
int ns_profile_dir(char *out, size_t outlen, char *err, size_t errlen);

/* Every profile: the built-ins, then the user files in dir (NULL: the
 * default directory; a missing directory has none) sorted by name, a file
 * replacing the built-in of its name in place. A file that does not parse
 * is left out and its message added to errors. */
typedef struct {
    ns_profile *items;
    int n;
    char **errors;
    int n_errors;
} ns_profile_list;
int ns_profile_list_load(const char *dir, ns_profile_list *out);
void ns_profile_list_free(ns_profile_list *l);
const ns_profile *ns_profile_list_find(const ns_profile_list *l, const char *name);
/* "batch_inference, image_generation, local_llm, mine" into buf. */
void ns_profile_list_names(const ns_profile_list *l, char *buf, size_t buflen);

/* Finds one profile by name (a user file first, then the built-ins).
 * 0; -1 not found (err "unknown profile \"x\" (known: a, b, c)"); -2 the
 * user file exists but is invalid (err its message). */
int ns_profile_find(const char *dir, const char *name, ns_profile *out, char *err, size_t errlen);

/* Sets the fields of c the runtime honours from the fields p sets:
 * parallel -> num_parallel, ctx -> defaults.n_ctx, max_batch ->
 * defaults.n_batch, auto_unload_idle -> keep_alive_ns (never: -1, 0: 1 ns,
 * i.e. unload as soon as idle). Other fields of c are left alone. */
void ns_profile_apply_to_config(const ns_profile *p, ns_runtime_config *c);

/* {"name","description","source","builtin","fields":{...},"in_effect":[...],
 * "not_enforced":[...],"note":"recorded, not yet enforced: ..."}: fields hold
 * only what p sets, sizes in bytes, durations as Go durations or "never".
 * NULL: no memory. */
cJSON *ns_profile_json(const ns_profile *p);

#endif
