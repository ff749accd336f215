/* The router's configuration (docs/router.md), read from TOML:
 *
 *     [router]
 *     listen = "127.0.0.1:11500"
 *     token_threshold = 2000          # estimated prompt tokens from which NORMAL mode goes big
 *     mode_url = "http://big:11434/mode"   # default: the big upstream's url + "/mode"
 *     mode_poll = "1s"                # how often the mode is fetched (a duration)
 *     mode_timeout = "300ms"
 *     health_interval = "2s"          # health checks; failures back off to health_backoff_max
 *     health_backoff_max = "30s"
 *     audit_log = "/var/log/nstack/route.jsonl"   # default: $NSTACK_ROUTE_LOG or the data dir's route.jsonl
 *     audit_max_size = "100MiB"       # past this the log becomes route.jsonl.1 and a new one starts; "0": no limit
 *     tokenizer = "/models/small.gguf"  # a GGUF whose tokenizer estimates prompt tokens; default: bytes / 4
 *
 *     [router.force]
 *     header = "X-Force-Big"          # a request header whose value true / 1 / yes forces big
 *     model = "big"                   # a request for this model name forces big
 *     tag = "#force_big"              # this text in the prompt forces big (and is removed from it)
 *     regex = "(?i)prove|theorem"     # in NORMAL mode, a prompt matching this goes big (PCRE2); "" none
 *
 *     [[router.upstream]]
 *     name = "small"
 *     url = "http://127.0.0.1:11434"
 *     kind = "nstack"                 # nstack | ollama | openai (vLLM, llama.cpp server, LM Studio, ...)
 *     role = "small"                  # small | big: exactly one of each
 *     model = "llama3.2:3b"           # the model name sent upstream
 *     api_key = ""                    # sent as Authorization: Bearer (openai kind)
 *     connect_timeout = "2s"
 *     first_byte_timeout = "60s"      # until the upstream's response starts (fail-soft window)
 *     timeout = "10m"                 # the whole request; "0" none
 *
 * Every key is optional except the upstreams' url, kind, role and model.
 * An unknown key or table is an error (a typo must not silently change the
 * policy), reported with the file, line and key. */
#ifndef NS_ROUTER_CONFIG_H
#define NS_ROUTER_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NS_ROUTER_MAX_UPSTREAMS 8

typedef enum { NS_UPSTREAM_NSTACK, NS_UPSTREAM_OLLAMA, NS_UPSTREAM_OPENAI } ns_upstream_kind;
typedef enum { NS_ROLE_SMALL, NS_ROLE_BIG } ns_upstream_role;

typedef struct {
    char name[64];
    char url[512];   /* without a trailing '/' */
    ns_upstream_kind kind;
    ns_upstream_role role;
    char model[256];
    char api_key[256];
    int64_t connect_timeout_ns;    /* default 2 s */
    int64_t first_byte_timeout_ns; /* default 60 s */
    int64_t timeout_ns;            /* default 0: none */
} ns_upstream_config;

typedef struct {
    char listen[256];          /* default "127.0.0.1:11500" */
    int token_threshold;       /* default 2000 */
    char mode_url[512];        /* default: the big upstream's url + "/mode" */
    int64_t mode_poll_ns;      /* default 1 s */
    int64_t mode_timeout_ns;   /* default 300 ms */
    int64_t health_interval_ns;    /* default 2 s */
    int64_t health_backoff_max_ns; /* default 30 s */
    char audit_log[4096];      /* default "": $NSTACK_ROUTE_LOG, else the data dir's route.jsonl */
    int64_t audit_max_size;    /* bytes; default 100 MiB; 0: no limit */
    char tokenizer[4096];      /* default "": bytes / 4 */
    char force_header[64];     /* default "X-Force-Big"; "" off */
    char force_model[64];      /* default "big"; "" off */
    char force_tag[64];        /* default "#force_big"; "" off */
    char force_regex[512];     /* default "": off */
    ns_upstream_config upstreams[NS_ROUTER_MAX_UPSTREAMS];
    int n_upstreams;
    int small, big;            /* indexes into upstreams, filled by the loader */
} ns_router_config;

/* Fills the defaults (no upstreams). */
void ns_router_config_defaults(ns_router_config *c);

/* Parses TOML text; `name` is the file name used in errors. With a
 * [router] table absent, *found is false and c holds the defaults (serve's
 * config may have no router). 0, or -1 with err
 * "router.toml:12: router.upstream.kind: must be nstack, ollama or openai". */
int ns_router_config_parse(const char *text, size_t len, const char *name, ns_router_config *c, bool *found,
                           char *err, size_t errlen);
/* Reads and parses a file; a file without [router] is an error here. */
int ns_router_config_load(const char *path, ns_router_config *c, char *err, size_t errlen);

const char *ns_upstream_kind_name(ns_upstream_kind k); /* "nstack", "ollama", "openai" */
const char *ns_upstream_role_name(ns_upstream_role r); /* "small", "big" */

#endif
