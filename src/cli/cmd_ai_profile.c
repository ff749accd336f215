/* `nstack ai profile`: list the profiles (built-in and this machine's user
 * files, runtime/profile.h), marking the one active on the server;
 * `nstack ai profile NAME` applies one to the running server (PUT
 * /api/profile) and prints what changed; `--show NAME` prints a profile's
 * fields, saying which the runtime honours today. --json on each. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ai.h"
#include "cli.h"
#include "client.h"
#include "runtime/profile.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: nstack ai profile [NAME | --show NAME] [--host URL] [--json]\n"
            "Profiles bundle server settings for a kind of work (docs/ai.md).\n"
            "  (no argument)     list the profiles, marking the server's active one with '*'\n"
            "  NAME              apply NAME to the running server and print what changed\n"
            "  --show NAME       a profile's fields and which of them are enforced today\n"
            "  --host URL        the server (default: NSTACK_HOST or " CLIENT_DEFAULT_HOST ")\n"
            "  --json            machine-readable output\n"
            "User profiles: NAME.toml files in $NSTACK_PROFILES, else $XDG_CONFIG_HOME/nstack/profiles,\n"
            "else ~/.config/nstack/profiles.\n");
}

static void print_json(cJSON *o) {
    char *t = o ? cJSON_PrintUnformatted(o) : NULL;
    if (t) puts(t);
    free(t);
}

static void field_value(const ns_profile *p, ns_profile_field f, char *buf, size_t len) {
    switch (f) {
    case NS_PF_VRAM_RESERVE: ns_format_size(p->vram_reserve, buf, len); break;
    case NS_PF_KV_CACHE_LIMIT:
        if (p->kv_cache_limit == 0) snprintf(buf, len, "none");
        else ns_format_size(p->kv_cache_limit, buf, len);
        break;
    case NS_PF_AUTO_OFFLOAD: snprintf(buf, len, "%s", p->auto_offload ? "true" : "false"); break;
    case NS_PF_AUTO_UNLOAD_IDLE: {
        cJSON *j = ns_profile_json(p);
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "fields"),
                                                          "auto_unload_idle");
        snprintf(buf, len, "%s", cJSON_IsString(v) ? v->valuestring : "?");
        cJSON_Delete(j);
        break;
    }
    case NS_PF_VRAM_UNLOAD_THRESHOLD_PCT: snprintf(buf, len, "%d%%", p->vram_unload_threshold_pct); break;
    case NS_PF_PREFER: snprintf(buf, len, "%s", ns_profile_prefer_name(p->prefer)); break;
    case NS_PF_MAX_BATCH: snprintf(buf, len, "%d tokens", p->max_batch); break;
    case NS_PF_PARALLEL: snprintf(buf, len, "%d slots", p->parallel); break;
    case NS_PF_CTX: snprintf(buf, len, "%d tokens", p->ctx); break;
    default: snprintf(buf, len, "?");
    }
}

static int show(const char *name, bool json) {
    ns_profile p;
    char err[2048];
    if (ns_profile_find(NULL, name, &p, err, sizeof err) != 0) {
        fprintf(stderr, "nstack ai profile: %s\n", err);
        return NS_EXIT_FAIL;
    }
    if (json) {
        cJSON *o = ns_profile_json(&p);
        print_json(o);
        cJSON_Delete(o);
        return NS_EXIT_OK;
    }
    printf("%s (%s)\n", p.name, p.source);
    if (p.description[0]) printf("  %s\n", p.description);
    for (int i = 0; i < NS_PF_COUNT; i++) {
        ns_profile_field f = (ns_profile_field)i;
        char v[64];
        if (!ns_profile_has(&p, f)) {
            printf("  %-26s (not set: the server's own setting)\n", ns_profile_field_name(f));
            continue;
        }
        field_value(&p, f, v, sizeof v);
        printf("  %-26s %-14s %s\n", ns_profile_field_name(f), v, ns_profile_field_effect(f));
    }
    return NS_EXIT_OK;
}

/* The server's active profile name into buf ("" none); -1 with err. */
static int server_active(const char *host, char *buf, size_t len, char *err, size_t errlen) {
    client *c = client_open(client_host_spec(host), err, errlen);
    if (!c) return -1;
    cJSON *a = NULL;
    int rc = client_call(c, "GET", "/api/profile", NULL, &a, err, errlen);
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(a, "name");
    buf[0] = '\0';
    if (rc == 0 && cJSON_IsString(n)) snprintf(buf, len, "%s", n->valuestring);
    cJSON_Delete(a);
    client_close(c);
    return rc;
}

static int list(const char *host, bool json) {
    ns_profile_list l;
    if (ns_profile_list_load(NULL, &l) != 0) {
        fprintf(stderr, "nstack ai profile: out of memory\n");
        return NS_EXIT_FAIL;
    }
    char active[NS_PROFILE_NAME_MAX], err[1024];
    bool reached = server_active(host, active, sizeof active, err, sizeof err) == 0;
    if (!reached && !json) fprintf(stderr, "nstack ai profile: the active profile is unknown: %s\n", err);
    for (int i = 0; i < l.n_errors; i++) fprintf(stderr, "nstack ai profile: skipped %s\n", l.errors[i]);
    if (json) {
        cJSON *o = cJSON_CreateObject(), *arr = cJSON_CreateArray();
        for (int i = 0; o && arr && i < l.n; i++) {
            cJSON *p = ns_profile_json(&l.items[i]);
            if (!p) continue;
            cJSON_AddBoolToObject(p, "active", reached && strcmp(active, l.items[i].name) == 0);
            cJSON_AddItemToArray(arr, p);
        }
        if (o && arr) {
            cJSON_AddItemToObject(o, "profiles", arr);
            arr = NULL;
            if (reached && active[0]) cJSON_AddStringToObject(o, "active", active);
            else cJSON_AddNullToObject(o, "active");
            if (!reached) cJSON_AddStringToObject(o, "server_error", err);
            cJSON *errs = cJSON_CreateArray();
            for (int i = 0; errs && i < l.n_errors; i++) cJSON_AddItemToArray(errs, cJSON_CreateString(l.errors[i]));
            if (errs) cJSON_AddItemToObject(o, "errors", errs);
        }
        print_json(o);
        cJSON_Delete(arr);
        cJSON_Delete(o);
    } else {
        printf("  %-20s %-10s %s\n", "NAME", "SOURCE", "DESCRIPTION");
        for (int i = 0; i < l.n; i++) {
            const ns_profile *p = &l.items[i];
            bool on = reached && strcmp(active, p->name) == 0;
            printf("%c %-20s %-10s %s\n", on ? '*' : ' ', p->name,
                   p->builtin ? "built-in" : p->overrides_builtin ? "user*" : "user", p->description);
        }
        if (reached && !active[0]) printf("(no profile active on the server)\n");
    }
    ns_profile_list_free(&l);
    return NS_EXIT_OK;
}

static int apply(const char *host, const char *name, bool json) {
    char err[4096];
    client *c = client_open(client_host_spec(host), err, sizeof err);
    if (!c) {
        fprintf(stderr, "nstack ai profile: %s\n", err);
        return NS_EXIT_USAGE;
    }
    cJSON *body = cJSON_CreateObject(), *a = NULL;
    if (!body || !cJSON_AddStringToObject(body, "name", name)) {
        cJSON_Delete(body);
        client_close(c);
        fprintf(stderr, "nstack ai profile: out of memory\n");
        return NS_EXIT_FAIL;
    }
    int rc = client_call(c, "PUT", "/api/profile", body, &a, err, sizeof err);
    cJSON_Delete(body);
    client_close(c);
    if (rc != 0) {
        fprintf(stderr, "nstack ai profile: %s\n", err);
        cJSON_Delete(a);
        return NS_EXIT_FAIL;
    }
    if (json) {
        print_json(a);
        cJSON_Delete(a);
        return NS_EXIT_OK;
    }
    const cJSON *prev = cJSON_GetObjectItemCaseSensitive(a, "previous");
    printf("profile %s applied (was %s)\n", name, cJSON_IsString(prev) ? prev->valuestring : "none");
    const cJSON *ch, *changed = cJSON_GetObjectItemCaseSensitive(a, "changed");
    int n = 0;
    cJSON_ArrayForEach(ch, changed) {
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(ch, "setting"), *f = cJSON_GetObjectItemCaseSensitive(ch, "from"),
                    *t = cJSON_GetObjectItemCaseSensitive(ch, "to"), *ap = cJSON_GetObjectItemCaseSensitive(ch, "applies_to");
        char fb[64], tb[64];
        if (cJSON_IsNumber(f)) snprintf(fb, sizeof fb, "%.0f", f->valuedouble);
        else snprintf(fb, sizeof fb, "%s", cJSON_IsString(f) ? f->valuestring : "?");
        if (cJSON_IsNumber(t)) snprintf(tb, sizeof tb, "%.0f", t->valuedouble);
        else snprintf(tb, sizeof tb, "%s", cJSON_IsString(t) ? t->valuestring : "?");
        printf("  %-12s %s -> %s (%s)\n", cJSON_IsString(s) ? s->valuestring : "?", fb, tb,
               cJSON_IsString(ap) ? ap->valuestring : "");
        n++;
    }
    if (n == 0) printf("  no runtime setting changed\n");
    const cJSON *note = cJSON_GetObjectItemCaseSensitive(a, "note");
    if (cJSON_IsString(note)) printf("  %s\n", note->valuestring);
    cJSON_Delete(a);
    return NS_EXIT_OK;
}

int ai_profile(int argc, char **argv) {
    const char *host = NULL, *name = NULL, *show_name = NULL;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return NS_EXIT_OK;
        } else if (strcmp(a, "--json") == 0) {
            json = true;
        } else if (strncmp(a, "--host=", 7) == 0) {
            host = a + 7;
        } else if (strcmp(a, "--host") == 0) {
            if (!(host = cli_value(argc, argv, &i))) return NS_EXIT_USAGE;
        } else if (strcmp(a, "--show") == 0) {
            if (!(show_name = cli_value(argc, argv, &i))) return NS_EXIT_USAGE;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "nstack ai profile: unknown option '%s'\n", a);
            usage(stderr);
            return NS_EXIT_USAGE;
        } else if (!name) {
            name = a;
        } else {
            fprintf(stderr, "nstack ai profile: unexpected argument '%s' (one profile at a time)\n", a);
            usage(stderr);
            return NS_EXIT_USAGE;
        }
    }
    if (show_name && name) {
        fprintf(stderr, "nstack ai profile: --show NAME or NAME, not both\n");
        usage(stderr);
        return NS_EXIT_USAGE;
    }
    if (show_name) return show(show_name, json);
    if (name) return apply(host, name, json);
    return list(host, json);
}
