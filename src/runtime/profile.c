/* Profiles (profile.h): the built-ins, user files read with util/toml.h and
 * checked key by key (as router/config.c does), and the mapping onto the
 * runtime's configuration. */
#include "runtime/profile.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/duration.h"
#include "util/paths.h"
#include "util/size.h"
#include "util/toml.h"
#include "util/toml_fields.h"

#define MAX_FILE_BYTES ((size_t)1 << 20)
#define GIB (INT64_C(1) << 30)
#define MIN_NS (INT64_C(60) * 1000000000)

#define BIT(f) (1u << (f))
#define ALL_FIELDS ((1u << NS_PF_COUNT) - 1)

static const struct {
    const char *name, *effect, *applies_to;
    bool enforced;
} fields[NS_PF_COUNT] = {
    [NS_PF_VRAM_RESERVE] = {"vram_reserve", "recorded, not yet enforced: the CPU runtime does not place models in VRAM",
                            "not yet enforced", false},
    [NS_PF_KV_CACHE_LIMIT] = {"kv_cache_limit", "recorded, not yet enforced: the KV cache is sized by ctx and parallel",
                              "not yet enforced", false},
    [NS_PF_AUTO_OFFLOAD] = {"auto_offload", "recorded, not yet enforced: needs the CUDA backend", "not yet enforced",
                            false},
    [NS_PF_AUTO_UNLOAD_IDLE] = {"auto_unload_idle", "keep_alive (the default for requests without one)",
                                "models released from now on", true},
    [NS_PF_VRAM_UNLOAD_THRESHOLD_PCT] = {"vram_unload_threshold_pct",
                                         "recorded, not yet enforced: the runtime does not unload on VRAM use",
                                         "not yet enforced", false},
    [NS_PF_PREFER] = {"prefer", "recorded, not yet enforced: shown only; parallel and max_batch carry it",
                      "not yet enforced", false},
    [NS_PF_MAX_BATCH] = {"max_batch", "num_batch (default for loads without one)", "models loaded from now on", true},
    [NS_PF_PARALLEL] = {"parallel", "num_parallel (slots per model)", "models loaded from now on", true},
    [NS_PF_CTX] = {"ctx", "num_ctx (default for loads without one)", "models loaded from now on", true},
};

const char *ns_profile_field_name(ns_profile_field f) { return f < NS_PF_COUNT ? fields[f].name : "?"; }
bool ns_profile_field_enforced(ns_profile_field f) { return f < NS_PF_COUNT && fields[f].enforced; }
const char *ns_profile_field_effect(ns_profile_field f) { return f < NS_PF_COUNT ? fields[f].effect : "?"; }
const char *ns_profile_field_applies_to(ns_profile_field f) { return f < NS_PF_COUNT ? fields[f].applies_to : "?"; }

const char *ns_profile_prefer_name(ns_profile_prefer p) {
    return p == NS_PREFER_THROUGHPUT ? "throughput" : p == NS_PREFER_LATENCY ? "latency" : "";
}

/* ---- the built-ins ---- */

static const ns_profile builtins[] = {
    {.name = "local_llm",
     .description = "interactive use: few slots, models stay loaded, 1 GiB of VRAM kept free",
     .source = "built-in",
     .builtin = true,
     .set = ALL_FIELDS,
     .vram_reserve = GIB,
     .kv_cache_limit = 0,
     .auto_offload = true,
     .auto_unload_idle_ns = -1,
     .vram_unload_threshold_pct = 95,
     .prefer = NS_PREFER_LATENCY,
     .max_batch = 512,
     .parallel = 2,
     .ctx = 8192},
    {.name = "batch_inference",
     .description = "throughput: many slots, large batches, a high KV cache limit",
     .source = "built-in",
     .builtin = true,
     .set = ALL_FIELDS,
     .vram_reserve = 512 * (INT64_C(1) << 20),
     .kv_cache_limit = 64 * GIB,
     .auto_offload = true,
     .auto_unload_idle_ns = 30 * MIN_NS,
     .vram_unload_threshold_pct = 98,
     .prefer = NS_PREFER_THROUGHPUT,
     .max_batch = 2048,
     .parallel = 8,
     .ctx = 4096},
    {.name = "image_generation",
     .description = "leave the GPU to image tools: 6 GiB of VRAM kept free, idle models unloaded after 1 minute",
     .source = "built-in",
     .builtin = true,
     .set = ALL_FIELDS,
     .vram_reserve = 6 * GIB,
     .kv_cache_limit = 2 * GIB,
     .auto_offload = true,
     .auto_unload_idle_ns = MIN_NS,
     .vram_unload_threshold_pct = 50,
     .prefer = NS_PREFER_LATENCY,
     .max_batch = 256,
     .parallel = 1,
     .ctx = 4096},
};

int ns_profile_builtin_count(void) { return (int)(sizeof builtins / sizeof builtins[0]); }
const ns_profile *ns_profile_builtin(int i) {
    return i >= 0 && i < ns_profile_builtin_count() ? &builtins[i] : NULL;
}

bool ns_profile_name_ok(const char *s) {
    if (!s || !*s || strlen(s) >= NS_PROFILE_NAME_MAX || s[0] == '.') return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-' && *s != '.') return false;
    return true;
}

/* ---- sizes ---- */


void ns_format_size(int64_t b, char *buf, size_t buflen) {
    static const char *const u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int i = 0;
    double v = (double)b;
    while (i < 4 && v >= 1024 && b >= 1024) {
        v /= 1024;
        i++;
    }
    if (i == 0 || v == floor(v)) snprintf(buf, buflen, "%.0f%s", v, u[i]);
    else snprintf(buf, buflen, "%.2f%s", v, u[i]);
    /* trailing zeros: 1.50GiB -> 1.5GiB */
    char *dot = strchr(buf, '.');
    if (dot) {
        char *e = dot;
        while (isdigit((unsigned char)e[1])) e++;
        char *z = e;
        while (z > dot && *z == '0') z--;
        if (z == dot) z--;
        memmove(z + 1, e + 1, strlen(e + 1) + 1);
    }
}

/* ---- parsing a file ---- */

static int get_int(const ns_toml_cx *cx, const ns_toml *v, const char *key, long long lo, long long hi, int *out) {
    if (ns_toml_type_of(v) != NS_TOML_INT) return ns_toml_bad(cx, v, key, "must be an integer, not %s", ns_toml_a_type(v));
    int64_t x = ns_toml_int(v);
    if (x < lo || x > hi) return ns_toml_bad(cx, v, key, "must be in [%lld, %lld], got %lld", lo, hi, (long long)x);
    *out = (int)x;
    return 0;
}

static int get_size(const ns_toml_cx *cx, const ns_toml *v, const char *key, int64_t *out) {
    if (ns_toml_type_of(v) == NS_TOML_INT) {
        if (ns_toml_int(v) < 0) return ns_toml_bad(cx, v, key, "must not be negative");
        *out = ns_toml_int(v);
        return 0;
    }
    if (ns_toml_type_of(v) != NS_TOML_STRING)
        return ns_toml_bad(cx, v, key, "must be a size string such as \"1GiB\", not %s", ns_toml_a_type(v));
    char e[256];
    if (ns_size_parse(ns_toml_string(v), out, e, sizeof e)) return ns_toml_bad(cx, v, key, "%s", e);
    return 0;
}

static int read_field(const ns_toml_cx *cx, const ns_toml *v, const char *k, const char *key, ns_profile *p) {
    if (strcmp(k, "description") == 0) return ns_toml_get_string(cx, v, key, p->description, sizeof p->description);
    int f = -1;
    for (int i = 0; i < NS_PF_COUNT; i++)
        if (strcmp(k, fields[i].name) == 0) f = i;
    if (f < 0) return ns_toml_bad(cx, v, key, ns_toml_type_of(v) == NS_TOML_TABLE ? "unknown table" : "unknown key");
    int rc = 0;
    switch ((ns_profile_field)f) {
    case NS_PF_VRAM_RESERVE: rc = get_size(cx, v, key, &p->vram_reserve); break;
    case NS_PF_KV_CACHE_LIMIT: rc = get_size(cx, v, key, &p->kv_cache_limit); break;
    case NS_PF_AUTO_OFFLOAD:
        if (ns_toml_type_of(v) != NS_TOML_BOOL) rc = ns_toml_bad(cx, v, key, "must be true or false, not %s", ns_toml_a_type(v));
        else p->auto_offload = ns_toml_bool(v);
        break;
    case NS_PF_AUTO_UNLOAD_IDLE: {
        char e[256];
        if (ns_toml_type_of(v) != NS_TOML_STRING) {
            rc = ns_toml_bad(cx, v, key, "must be a duration string such as \"5m\" or \"never\", not %s", ns_toml_a_type(v));
        } else if (strcmp(ns_toml_string(v), "never") == 0) {
            p->auto_unload_idle_ns = -1;
        } else if (ns_duration_parse(ns_toml_string(v), &p->auto_unload_idle_ns, e, sizeof e)) {
            rc = ns_toml_bad(cx, v, key, "%s", e);
        } else if (p->auto_unload_idle_ns < 0) {
            rc = ns_toml_bad(cx, v, key, "must not be negative (\"never\" keeps models loaded)");
        }
        break;
    }
    case NS_PF_VRAM_UNLOAD_THRESHOLD_PCT: rc = get_int(cx, v, key, 1, 100, &p->vram_unload_threshold_pct); break;
    case NS_PF_PREFER: {
        if (ns_toml_type_of(v) != NS_TOML_STRING) rc = ns_toml_bad(cx, v, key, "must be a string, not %s", ns_toml_a_type(v));
        else if (strcmp(ns_toml_string(v), "latency") == 0) p->prefer = NS_PREFER_LATENCY;
        else if (strcmp(ns_toml_string(v), "throughput") == 0) p->prefer = NS_PREFER_THROUGHPUT;
        else rc = ns_toml_bad(cx, v, key, "must be \"latency\" or \"throughput\"");
        break;
    }
    case NS_PF_MAX_BATCH: rc = get_int(cx, v, key, 1, 1 << 20, &p->max_batch); break;
    case NS_PF_PARALLEL: rc = get_int(cx, v, key, 1, 1024, &p->parallel); break;
    case NS_PF_CTX: rc = get_int(cx, v, key, 1, 1 << 20, &p->ctx); break;
    default: break;
    }
    if (rc == 0) p->set |= BIT(f);
    return rc;
}

int ns_profile_parse(const char *text, size_t len, const char *file, const char *name, ns_profile *out, char *err,
                     size_t errlen) {
    memset(out, 0, sizeof *out);
    ns_toml_cx cx = {file ? file : "profile", err, errlen};
    if (!ns_profile_name_ok(name)) {
        snprintf(err, errlen, "%s: invalid profile name \"%.80s\" (letters, digits, _ - . only)", cx.name,
                 name ? name : "");
        return -1;
    }
    ns_toml *root = ns_toml_parse(text, len, cx.name, err, errlen);
    if (!root) return -1;
    int rc = -1;
    const ns_toml *t = NULL;
    for (int i = 0; i < ns_toml_count(root); i++) {
        const char *k = ns_toml_key_at(root, i);
        const ns_toml *v = ns_toml_at(root, i);
        if (strcmp(k, "profile") == 0) {
            t = v;
            continue;
        }
        char key[128];
        snprintf(key, sizeof key, "%.100s", k);
        for (char *c = key; *c; c++)
            if ((unsigned char)*c < 0x20) *c = '?';
        ns_toml_bad(&cx, v, key, ns_toml_type_of(v) == NS_TOML_TABLE ? "unknown table (the file has one [profile] table)"
                                                             : "unknown key (keys go in the [profile] table)");
        goto out;
    }
    if (!t) {
        ns_toml_bad(&cx, NULL, "profile", "missing (the file needs a [profile] table)");
        goto out;
    }
    if (ns_toml_type_of(t) != NS_TOML_TABLE) {
        ns_toml_bad(&cx, t, "profile", "must be a table, not %s", ns_toml_a_type(t));
        goto out;
    }
    for (int i = 0; i < ns_toml_count(t); i++) {
        char key[128];
        ns_toml_dotted(key, sizeof key, "profile", ns_toml_key_at(t, i));
        if (read_field(&cx, ns_toml_at(t, i), ns_toml_key_at(t, i), key, out)) goto out;
    }
    snprintf(out->name, sizeof out->name, "%s", name);
    snprintf(out->source, sizeof out->source, "%s", cx.name);
    for (int i = 0; i < ns_profile_builtin_count(); i++)
        if (strcmp(builtins[i].name, name) == 0) out->overrides_builtin = true;
    rc = 0;
out:
    ns_toml_free(root);
    return rc;
}

int ns_profile_load_file(const char *path, const char *name, ns_profile *out, char *err, size_t errlen) {
    char *buf, why[256];
    size_t n;
    if (ns_read_small_file(path, MAX_FILE_BYTES, &buf, &n, why, sizeof why) != 0) {
        snprintf(err, errlen, "%.700s: %.200s", path, why);
        return -1;
    }
    int rc = ns_profile_parse(buf, n, path, name, out, err, errlen);
    free(buf);
    return rc;
}

/* ---- the directory and the list ---- */

int ns_profile_dir(char *out, size_t outlen, char *err, size_t errlen) {
    const char *env = getenv("NSTACK_PROFILES"), *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
    int n;
    if (env && *env) n = snprintf(out, outlen, "%s", env);
    else if (xdg && xdg[0] == '/') n = snprintf(out, outlen, "%s/nstack/profiles", xdg);
    else if (home && *home) n = snprintf(out, outlen, "%s/.config/nstack/profiles", home);
    else {
        snprintf(err, errlen, "no profiles directory: set NSTACK_PROFILES or HOME");
        return -1;
    }
    if (n < 0 || (size_t)n >= outlen) {
        snprintf(err, errlen, "the profiles directory path is too long");
        return -1;
    }
    return 0;
}

static int cmp_name(const void *a, const void *b) {
    return strcmp(((const ns_profile *)a)->name, ((const ns_profile *)b)->name);
}

static void add_error(ns_profile_list *l, const char *msg) {
    char **e = realloc(l->errors, (size_t)(l->n_errors + 1) * sizeof *e);
    if (!e) return;
    l->errors = e;
    if ((e[l->n_errors] = strdup(msg))) l->n_errors++;
}

int ns_profile_list_load(const char *dir, ns_profile_list *out) {
    memset(out, 0, sizeof *out);
    int nb = ns_profile_builtin_count();
    out->items = calloc(NS_PROFILE_MAX, sizeof *out->items);
    if (!out->items) return -1;
    for (int i = 0; i < nb; i++) out->items[out->n++] = builtins[i];
    char dbuf[1024], err[1024];
    if (!dir) {
        if (ns_profile_dir(dbuf, sizeof dbuf, err, sizeof err) != 0) return 0; /* built-ins only */
        dir = dbuf;
    }
    DIR *d = opendir(dir);
    if (!d) {
        if (errno != ENOENT) {
            snprintf(err, sizeof err, "%.900s: %s", dir, strerror(errno));
            add_error(out, err);
        }
        return 0;
    }
    int first_user = out->n;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len <= 5 || strcmp(e->d_name + len - 5, ".toml") != 0 || e->d_name[0] == '.') continue;
        char name[NS_PROFILE_NAME_MAX + 8], path[2200];
        snprintf(name, sizeof name, "%.*s", (int)(len - 5 < NS_PROFILE_NAME_MAX ? len - 5 : NS_PROFILE_NAME_MAX),
                 e->d_name);
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        ns_profile p;
        if (ns_profile_load_file(path, name, &p, err, sizeof err) != 0) {
            add_error(out, err);
            continue;
        }
        int slot = -1;
        for (int i = 0; i < nb; i++)
            if (strcmp(out->items[i].name, p.name) == 0) slot = i;
        if (slot >= 0) out->items[slot] = p;
        else if (out->n < NS_PROFILE_MAX) out->items[out->n++] = p;
    }
    closedir(d);
    qsort(out->items + first_user, (size_t)(out->n - first_user), sizeof *out->items, cmp_name);
    return 0;
}

void ns_profile_list_free(ns_profile_list *l) {
    if (!l) return;
    free(l->items);
    for (int i = 0; i < l->n_errors; i++) free(l->errors[i]);
    free(l->errors);
    memset(l, 0, sizeof *l);
}

const ns_profile *ns_profile_list_find(const ns_profile_list *l, const char *name) {
    for (int i = 0; name && i < l->n; i++)
        if (strcmp(l->items[i].name, name) == 0) return &l->items[i];
    return NULL;
}

void ns_profile_list_names(const ns_profile_list *l, char *buf, size_t buflen) {
    size_t o = 0;
    if (buflen) buf[0] = '\0';
    for (int i = 0; i < l->n && o < buflen; i++) {
        int n = snprintf(buf + o, buflen - o, "%s%s", i ? ", " : "", l->items[i].name);
        if (n < 0) break;
        o += (size_t)n;
    }
}

int ns_profile_find(const char *dir, const char *name, ns_profile *out, char *err, size_t errlen) {
    char dbuf[1024], derr[256];
    if (!dir && ns_profile_dir(dbuf, sizeof dbuf, derr, sizeof derr) == 0) dir = dbuf;
    if (dir && ns_profile_name_ok(name)) {
        char path[2200];
        snprintf(path, sizeof path, "%s/%s.toml", dir, name);
        FILE *f = fopen(path, "rb");
        if (f) {
            fclose(f);
            return ns_profile_load_file(path, name, out, err, errlen) == 0 ? 0 : -2;
        }
    }
    for (int i = 0; name && i < ns_profile_builtin_count(); i++) {
        if (strcmp(builtins[i].name, name) == 0) {
            *out = builtins[i];
            return 0;
        }
    }
    ns_profile_list l;
    char names[2048] = "";
    if (ns_profile_list_load(dir, &l) == 0) ns_profile_list_names(&l, names, sizeof names);
    ns_profile_list_free(&l);
    snprintf(err, errlen, "unknown profile \"%.80s\" (known: %s)", name ? name : "", names);
    return -1;
}

/* ---- applying ---- */

void ns_profile_apply_to_config(const ns_profile *p, ns_runtime_config *c) {
    if (ns_profile_has(p, NS_PF_PARALLEL)) c->num_parallel = p->parallel;
    if (ns_profile_has(p, NS_PF_CTX)) c->defaults.n_ctx = p->ctx;
    if (ns_profile_has(p, NS_PF_MAX_BATCH)) c->defaults.n_batch = p->max_batch;
    if (ns_profile_has(p, NS_PF_AUTO_UNLOAD_IDLE))
        c->keep_alive_ns = p->auto_unload_idle_ns < 0 ? -1 : p->auto_unload_idle_ns == 0 ? 1 : p->auto_unload_idle_ns;
}

static bool add_field(cJSON *o, const ns_profile *p, ns_profile_field f) {
    const char *k = fields[f].name;
    char buf[64];
    switch (f) {
    case NS_PF_VRAM_RESERVE: return cJSON_AddNumberToObject(o, k, (double)p->vram_reserve) != NULL;
    case NS_PF_KV_CACHE_LIMIT: return cJSON_AddNumberToObject(o, k, (double)p->kv_cache_limit) != NULL;
    case NS_PF_AUTO_OFFLOAD: return cJSON_AddBoolToObject(o, k, p->auto_offload) != NULL;
    case NS_PF_AUTO_UNLOAD_IDLE:
        if (p->auto_unload_idle_ns < 0) snprintf(buf, sizeof buf, "never");
        else ns_duration_format(p->auto_unload_idle_ns, buf, sizeof buf);
        return cJSON_AddStringToObject(o, k, buf) != NULL;
    case NS_PF_VRAM_UNLOAD_THRESHOLD_PCT: return cJSON_AddNumberToObject(o, k, p->vram_unload_threshold_pct) != NULL;
    case NS_PF_PREFER: return cJSON_AddStringToObject(o, k, ns_profile_prefer_name(p->prefer)) != NULL;
    case NS_PF_MAX_BATCH: return cJSON_AddNumberToObject(o, k, p->max_batch) != NULL;
    case NS_PF_PARALLEL: return cJSON_AddNumberToObject(o, k, p->parallel) != NULL;
    case NS_PF_CTX: return cJSON_AddNumberToObject(o, k, p->ctx) != NULL;
    default: return true;
    }
}

cJSON *ns_profile_json(const ns_profile *p) {
    cJSON *o = cJSON_CreateObject(), *f = cJSON_CreateObject(), *eff = cJSON_CreateArray(),
          *not_enf = cJSON_CreateArray();
    bool ok = o && f && eff && not_enf;
    char note[512] = "";
    size_t no = 0;
    for (int i = 0; ok && i < NS_PF_COUNT; i++) {
        if (!ns_profile_has(p, (ns_profile_field)i)) continue;
        ok = add_field(f, p, (ns_profile_field)i);
        cJSON *name = cJSON_CreateString(fields[i].name);
        ok = ok && name;
        if (ok) cJSON_AddItemToArray(fields[i].enforced ? eff : not_enf, name);
        if (!fields[i].enforced && no < sizeof note) {
            int n = snprintf(note + no, sizeof note - no, "%s%s", no ? ", " : "recorded, not yet enforced: ",
                             fields[i].name);
            if (n > 0) no += (size_t)n;
        }
    }
    if (ok) {
        ok = cJSON_AddStringToObject(o, "name", p->name) && cJSON_AddStringToObject(o, "description", p->description) &&
             cJSON_AddStringToObject(o, "source", p->source) && cJSON_AddBoolToObject(o, "builtin", p->builtin) &&
             cJSON_AddBoolToObject(o, "overrides_builtin", p->overrides_builtin);
    }
    if (ok) {
        cJSON_AddItemToObject(o, "fields", f);
        cJSON_AddItemToObject(o, "in_effect", eff);
        cJSON_AddItemToObject(o, "not_enforced", not_enf);
        f = eff = not_enf = NULL;
        if (note[0] && !cJSON_AddStringToObject(o, "note", note)) ok = false;
    }
    cJSON_Delete(f);
    cJSON_Delete(eff);
    cJSON_Delete(not_enf);
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}
