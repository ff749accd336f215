/* The router's configuration (config.h): the [router] table of a TOML file
 * read with util/toml.h and checked key by key. Every message names the
 * file, the line of the value at fault and the key in dotted form, so a
 * typo is found without reading the code. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "router/config.h"

#include <errno.h>
#include <limits.h>
#include <pcre2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/duration.h"
#include "util/paths.h"
#include "util/size.h"
#include "util/toml.h"
#include "util/toml_fields.h"

/* A router config is a few dozen lines; anything this big is a wrong path. */
#define MAX_FILE_BYTES ((size_t)1 << 20)

static int want_type(const ns_toml_cx *cx, const ns_toml *v, const char *key, ns_toml_type t) {
    if (ns_toml_type_of(v) == t) return 0;
    return ns_toml_bad(cx, v, key, "must be %s, not %s", t == NS_TOML_INT ? "an integer" : "a string",
                       ns_toml_a_type(v));
}

static int get_nonempty(const ns_toml_cx *cx, const ns_toml *v, const char *key, char *out, size_t outlen) {
    if (ns_toml_get_string(cx, v, key, out, outlen)) return -1;
    return *out ? 0 : ns_toml_bad(cx, v, key, "must not be empty");
}

static int get_url(const ns_toml_cx *cx, const ns_toml *v, const char *key, char *out, size_t outlen) {
    if (ns_toml_get_string(cx, v, key, out, outlen)) return -1;
    size_t scheme = strncmp(out, "http://", 7) == 0 ? 7 : strncmp(out, "https://", 8) == 0 ? 8 : 0;
    if (!scheme) return ns_toml_bad(cx, v, key, "must start with http:// or https://");
    size_t n = strlen(out);
    while (n > scheme && out[n - 1] == '/') out[--n] = 0;
    if (n == scheme) return ns_toml_bad(cx, v, key, "has no host");
    return 0;
}

static int get_duration(const ns_toml_cx *cx, const ns_toml *v, const char *key, int64_t *out) {
    if (ns_toml_type_of(v) != NS_TOML_STRING)
        return ns_toml_bad(cx, v, key, "must be a duration string such as \"2s\", not %s", ns_toml_a_type(v));
    char e[256];
    if (ns_duration_parse(ns_toml_string(v), out, e, sizeof e)) return ns_toml_bad(cx, v, key, "%s", e);
    if (*out < 0) return ns_toml_bad(cx, v, key, "must not be negative");
    return 0;
}

static int get_regex(const ns_toml_cx *cx, const ns_toml *v, const char *key, char *out, size_t outlen) {
    if (ns_toml_get_string(cx, v, key, out, outlen)) return -1;
    if (!*out) return 0;
    /* compiled here only to check it, with PCRE2_UTF as prompts are UTF-8 */
    int code;
    PCRE2_SIZE offset;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)out, PCRE2_ZERO_TERMINATED, PCRE2_UTF, &code, &offset, NULL);
    if (!re) {
        PCRE2_UCHAR msg[256];
        if (pcre2_get_error_message(code, msg, sizeof msg) < 0) snprintf((char *)msg, sizeof msg, "error %d", code);
        return ns_toml_bad(cx, v, key, "invalid regular expression at offset %zu: %s", (size_t)offset, (char *)msg);
    }
    pcre2_code_free(re);
    return 0;
}

static int read_force(const ns_toml_cx *cx, const ns_toml *t, ns_router_config *c) {
    if (ns_toml_type_of(t) != NS_TOML_TABLE) return ns_toml_bad(cx, t, "router.force", "must be a table");
    for (int i = 0; i < ns_toml_count(t); i++) {
        const char *k = ns_toml_key_at(t, i);
        const ns_toml *v = ns_toml_at(t, i);
        char key[160];
        ns_toml_dotted(key, sizeof key, "router.force", k);
        int rc;
        if (strcmp(k, "header") == 0) rc = ns_toml_get_string(cx, v, key, c->force_header, sizeof c->force_header);
        else if (strcmp(k, "model") == 0) rc = ns_toml_get_string(cx, v, key, c->force_model, sizeof c->force_model);
        else if (strcmp(k, "tag") == 0) rc = ns_toml_get_string(cx, v, key, c->force_tag, sizeof c->force_tag);
        else if (strcmp(k, "regex") == 0) rc = get_regex(cx, v, key, c->force_regex, sizeof c->force_regex);
        else rc = ns_toml_bad(cx, v, key, ns_toml_type_of(v) == NS_TOML_TABLE ? "unknown table" : "unknown key");
        if (rc) return -1;
    }
    return 0;
}

/* One [[router.upstream]]; *role_at gets the node its role came from. */
static int read_upstream(const ns_toml_cx *cx, const ns_toml *t, ns_upstream_config *u, const ns_toml **role_at,
                         const ns_toml **name_at) {
    if (ns_toml_type_of(t) != NS_TOML_TABLE)
        return ns_toml_bad(cx, t, "router.upstream", "must be an array of tables ([[router.upstream]])");
    memset(u, 0, sizeof *u);
    u->connect_timeout_ns = 2000000000LL;
    u->first_byte_timeout_ns = 60000000000LL;
    u->timeout_ns = 0;
    *role_at = *name_at = NULL;
    bool have_url = false, have_kind = false, have_model = false;
    for (int i = 0; i < ns_toml_count(t); i++) {
        const char *k = ns_toml_key_at(t, i);
        const ns_toml *v = ns_toml_at(t, i);
        char key[160];
        ns_toml_dotted(key, sizeof key, "router.upstream", k);
        int rc = 0;
        if (strcmp(k, "name") == 0) {
            rc = get_nonempty(cx, v, key, u->name, sizeof u->name);
            *name_at = v;
        } else if (strcmp(k, "url") == 0) {
            rc = get_url(cx, v, key, u->url, sizeof u->url);
            have_url = true;
        } else if (strcmp(k, "kind") == 0) {
            const char *s = ns_toml_string(v);
            if ((rc = want_type(cx, v, key, NS_TOML_STRING)) != 0) {
            } else if (strcmp(s, "nstack") == 0) u->kind = NS_UPSTREAM_NSTACK;
            else if (strcmp(s, "ollama") == 0) u->kind = NS_UPSTREAM_OLLAMA;
            else if (strcmp(s, "openai") == 0) u->kind = NS_UPSTREAM_OPENAI;
            else rc = ns_toml_bad(cx, v, key, "must be nstack, ollama or openai");
            have_kind = true;
        } else if (strcmp(k, "role") == 0) {
            const char *s = ns_toml_string(v);
            if ((rc = want_type(cx, v, key, NS_TOML_STRING)) != 0) {
            } else if (strcmp(s, "small") == 0) u->role = NS_ROLE_SMALL;
            else if (strcmp(s, "big") == 0) u->role = NS_ROLE_BIG;
            else rc = ns_toml_bad(cx, v, key, "must be small or big");
            *role_at = v;
        } else if (strcmp(k, "model") == 0) {
            rc = get_nonempty(cx, v, key, u->model, sizeof u->model);
            have_model = true;
        } else if (strcmp(k, "api_key") == 0) {
            rc = ns_toml_get_string(cx, v, key, u->api_key, sizeof u->api_key);
        } else if (strcmp(k, "connect_timeout") == 0) {
            rc = get_duration(cx, v, key, &u->connect_timeout_ns);
        } else if (strcmp(k, "first_byte_timeout") == 0) {
            rc = get_duration(cx, v, key, &u->first_byte_timeout_ns);
        } else if (strcmp(k, "timeout") == 0) {
            rc = get_duration(cx, v, key, &u->timeout_ns);
        } else {
            rc = ns_toml_bad(cx, v, key, ns_toml_type_of(v) == NS_TOML_TABLE ? "unknown table" : "unknown key");
        }
        if (rc) return -1;
    }
    if (!have_url) return ns_toml_bad(cx, t, "router.upstream.url", "missing");
    if (!have_kind) return ns_toml_bad(cx, t, "router.upstream.kind", "missing");
    if (!*role_at) return ns_toml_bad(cx, t, "router.upstream.role", "missing");
    if (!have_model) return ns_toml_bad(cx, t, "router.upstream.model", "missing");
    if (!*name_at) snprintf(u->name, sizeof u->name, "%s", ns_upstream_role_name(u->role));
    return 0;
}

static int read_upstreams(const ns_toml_cx *cx, const ns_toml *list, const ns_toml *router, ns_router_config *c) {
    const char *aot = "must be an array of tables ([[router.upstream]])";
    if (list && ns_toml_type_of(list) != NS_TOML_ARRAY) return ns_toml_bad(cx, list, "router.upstream", "%s", aot);
    const ns_toml *role_at[NS_ROUTER_MAX_UPSTREAMS], *name_at[NS_ROUTER_MAX_UPSTREAMS];
    int n = ns_toml_count(list);
    if (n > NS_ROUTER_MAX_UPSTREAMS)
        return ns_toml_bad(cx, ns_toml_at(list, NS_ROUTER_MAX_UPSTREAMS), "router.upstream", "at most %d upstreams",
                   NS_ROUTER_MAX_UPSTREAMS);
    for (int i = 0; i < n; i++)
        if (read_upstream(cx, ns_toml_at(list, i), &c->upstreams[i], &role_at[i], &name_at[i])) return -1;
    c->n_upstreams = n;

    /* exactly one of each role; a second one is reported where it is */
    const ns_upstream_role roles[] = {NS_ROLE_SMALL, NS_ROLE_BIG};
    int *index[] = {&c->small, &c->big};
    for (int r = 0; r < 2; r++) {
        int found = 0, second = -1;
        for (int i = 0; i < n; i++) {
            if (c->upstreams[i].role != roles[r]) continue;
            if (found++ == 0) *index[r] = i;
            else if (second < 0) second = i;
        }
        if (found != 1) {
            return ns_toml_bad(cx, second >= 0 ? role_at[second] : list ? list : router, "router.upstream.role",
                       "exactly one upstream must have role %s (found %d)", ns_upstream_role_name(roles[r]), found);
        }
    }
    for (int i = 1; i < n; i++)
        for (int j = 0; j < i; j++)
            if (strcmp(c->upstreams[i].name, c->upstreams[j].name) == 0) {
                const ns_toml *first = name_at[j] ? name_at[j] : ns_toml_at(list, j);
                return ns_toml_bad(cx, name_at[i] ? name_at[i] : ns_toml_at(list, i), "router.upstream.name",
                           "'%s' is used twice (first at line %d)", c->upstreams[i].name, ns_toml_line(first));
            }
    return 0;
}

static int read_router(const ns_toml_cx *cx, const ns_toml *r, ns_router_config *c) {
    if (ns_toml_type_of(r) != NS_TOML_TABLE) return ns_toml_bad(cx, r, "router", "must be a table");
    for (int i = 0; i < ns_toml_count(r); i++) {
        const char *k = ns_toml_key_at(r, i);
        const ns_toml *v = ns_toml_at(r, i);
        char key[160];
        ns_toml_dotted(key, sizeof key, "router", k);
        int rc = 0;
        if (strcmp(k, "listen") == 0) {
            rc = get_nonempty(cx, v, key, c->listen, sizeof c->listen);
        } else if (strcmp(k, "token_threshold") == 0) {
            if ((rc = want_type(cx, v, key, NS_TOML_INT)) != 0) {
            } else if (ns_toml_int(v) < 0) rc = ns_toml_bad(cx, v, key, "must be >= 0");
            else if (ns_toml_int(v) > INT_MAX) rc = ns_toml_bad(cx, v, key, "must be at most %d", INT_MAX);
            else c->token_threshold = (int)ns_toml_int(v);
        } else if (strcmp(k, "mode_url") == 0) {
            rc = get_url(cx, v, key, c->mode_url, sizeof c->mode_url);
        } else if (strcmp(k, "mode_poll") == 0) {
            rc = get_duration(cx, v, key, &c->mode_poll_ns);
        } else if (strcmp(k, "mode_timeout") == 0) {
            rc = get_duration(cx, v, key, &c->mode_timeout_ns);
        } else if (strcmp(k, "health_interval") == 0) {
            rc = get_duration(cx, v, key, &c->health_interval_ns);
        } else if (strcmp(k, "health_backoff_max") == 0) {
            rc = get_duration(cx, v, key, &c->health_backoff_max_ns);
        } else if (strcmp(k, "audit_log") == 0) {
            rc = ns_toml_get_string(cx, v, key, c->audit_log, sizeof c->audit_log);
        } else if (strcmp(k, "audit_max_size") == 0) {
            char text[64], why[256];
            rc = ns_toml_get_string(cx, v, key, text, sizeof text);
            if (rc == 0 && ns_size_parse(text, &c->audit_max_size, why, sizeof why) != 0)
                rc = ns_toml_bad(cx, v, key, "%s", why);
        } else if (strcmp(k, "tokenizer") == 0) {
            rc = ns_toml_get_string(cx, v, key, c->tokenizer, sizeof c->tokenizer);
        } else if (strcmp(k, "force") == 0) {
            rc = read_force(cx, v, c);
        } else if (strcmp(k, "upstream") != 0) { /* read below, once the rest is known good */
            rc = ns_toml_bad(cx, v, key, ns_toml_type_of(v) == NS_TOML_TABLE ? "unknown table" : "unknown key");
        }
        if (rc) return -1;
    }
    if (read_upstreams(cx, ns_toml_get(r, "upstream"), r, c)) return -1;
    if (!*c->mode_url) {
        const ns_upstream_config *big = &c->upstreams[c->big];
        if ((size_t)snprintf(c->mode_url, sizeof c->mode_url, "%s/mode", big->url) >= sizeof c->mode_url) {
            c->mode_url[0] = 0;
            return ns_toml_bad(cx, r, "router.mode_url", "the big upstream's url + \"/mode\" is longer than %zu bytes",
                       sizeof c->mode_url - 1);
        }
    }
    return 0;
}

void ns_router_config_defaults(ns_router_config *c) {
    memset(c, 0, sizeof *c);
    snprintf(c->listen, sizeof c->listen, "127.0.0.1:11500");
    c->token_threshold = 2000;
    c->mode_poll_ns = 1000000000LL;
    c->mode_timeout_ns = 300000000LL;
    c->health_interval_ns = 2000000000LL;
    c->health_backoff_max_ns = 30000000000LL;
    c->audit_max_size = (int64_t)100 << 20;
    snprintf(c->force_header, sizeof c->force_header, "X-Force-Big");
    snprintf(c->force_model, sizeof c->force_model, "big");
    snprintf(c->force_tag, sizeof c->force_tag, "#force_big");
    c->small = c->big = -1;
}

int ns_router_config_parse(const char *text, size_t len, const char *name, ns_router_config *c, bool *found,
                           char *err, size_t errlen) {
    ns_toml_cx cx = {name ? name : "router.toml", err, errlen};
    ns_router_config_defaults(c);
    *found = false;
    ns_toml *root = ns_toml_parse(text, len, cx.name, err, errlen);
    if (!root) return -1;
    const ns_toml *r = ns_toml_get(root, "router");
    int rc = 0;
    if (r) {
        *found = true;
        rc = read_router(&cx, r, c);
    }
    ns_toml_free(root);
    if (rc) ns_router_config_defaults(c); /* no half-read config escapes */
    return rc;
}

int ns_router_config_load(const char *path, ns_router_config *c, char *err, size_t errlen) {
    char *text, why[256];
    size_t n;
    if (ns_read_small_file(path, MAX_FILE_BYTES, &text, &n, why, sizeof why) != 0) {
        if (errno == EFBIG) snprintf(err, errlen, "%s: %s", path, why);
        else snprintf(err, errlen, "cannot read %s: %s", path, why);
        return -1;
    }
    int rc = -1;
    bool found = false;
    if (ns_router_config_parse(text, n, path, c, &found, err, errlen) == 0) {
        if (found) rc = 0;
        else snprintf(err, errlen, "%s: no [router] table", path);
    }
    free(text);
    return rc;
}

const char *ns_upstream_kind_name(ns_upstream_kind k) {
    switch (k) {
    case NS_UPSTREAM_NSTACK: return "nstack";
    case NS_UPSTREAM_OLLAMA: return "ollama";
    case NS_UPSTREAM_OPENAI: return "openai";
    }
    return "?";
}

const char *ns_upstream_role_name(ns_upstream_role r) {
    switch (r) {
    case NS_ROLE_SMALL: return "small";
    case NS_ROLE_BIG: return "big";
    }
    return "?";
}
