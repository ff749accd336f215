/* The server's active profile and its state file (profile_state.h). */
#include "profile_state.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/duration.h"
#include "util/log.h"
#include "util/paths.h"

#define MAX_FILE_BYTES (64 * 1024)

struct ns_profile_state {
    pthread_mutex_t mu;
    ns_events *events;
    ns_runtime_config base;  /* before any profile */
    bool active;             /* a profile is applied */
    ns_profile prof;         /* the active one */
    char selected_by[32];    /* "state file", "--profile", "api", "none" */
    char since[64];
    char changed_by[128];
    char note[768];
    char dir[1024];          /* the profiles directory; "" the default */
    char path[4096];         /* the state file; "" none */
    char path_err[256];
};

static void now_rfc3339(char *buf, size_t len) { ns_time_format_rfc3339(ns_now_wall(), buf, len); }

/* ---- the state file ---- */

/* 1 with name/since/by, 0 no file, -1 with err. */
static int read_state(const char *path, char *name, size_t namelen, char *since, size_t sincelen, char *by,
                      size_t bylen, char *err, size_t errlen) {
    char *buf;
    size_t n;
    if (ns_read_small_file(path, MAX_FILE_BYTES, &buf, &n, err, errlen) != 0) return errno == ENOENT ? 0 : -1;
    int rc = -1;
    cJSON *j = cJSON_ParseWithLength(buf, n);
    const cJSON *nm = cJSON_GetObjectItemCaseSensitive(j, "name");
    if (!cJSON_IsObject(j)) snprintf(err, errlen, n == 0 ? "empty file" : "not a JSON object");
    else if (!cJSON_IsString(nm) || !ns_profile_name_ok(nm->valuestring))
        snprintf(err, errlen, "\"name\" must be a profile name");
    else {
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(j, "since"), *b = cJSON_GetObjectItemCaseSensitive(j, "changed_by");
        snprintf(name, namelen, "%s", nm->valuestring);
        snprintf(since, sincelen, "%s", cJSON_IsString(s) ? s->valuestring : "");
        snprintf(by, bylen, "%s", cJSON_IsString(b) ? b->valuestring : "unknown");
        rc = 1;
    }
    cJSON_Delete(j);
    free(buf);
    return rc;
}

/* Writes the state to path; a crash leaves the old file or the new one. */
static int write_state(const char *path, const char *name, const char *since, const char *by, char *err,
                       size_t errlen) {
    cJSON *j = cJSON_CreateObject();
    char *text = NULL;
    if (j && cJSON_AddStringToObject(j, "name", name) && cJSON_AddStringToObject(j, "since", since) &&
        cJSON_AddStringToObject(j, "changed_by", by))
        text = cJSON_Print(j);
    cJSON_Delete(j);
    if (!text) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int rc = ns_write_file_durably(path, text, strlen(text), "profile file", err, errlen);
    free(text);
    return rc;
}

/* ---- the object ---- */

static const char *dir_or_null(const ns_profile_state *ps) { return ps->dir[0] ? ps->dir : NULL; }

ns_profile_state *ns_profile_state_open(const char *path, const char *profiles_dir, const char *override,
                                        const ns_runtime_config *base, ns_runtime_config *cfg, ns_events *events,
                                        char *err, size_t errlen) {
    ns_profile_state *ps = calloc(1, sizeof *ps);
    if (!ps) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&ps->mu, NULL);
    ps->events = events;
    ps->base = *base;
    snprintf(ps->selected_by, sizeof ps->selected_by, "none");
    if (profiles_dir) snprintf(ps->dir, sizeof ps->dir, "%s", profiles_dir);
    if (path && *path) snprintf(ps->path, sizeof ps->path, "%s", path);
    else if (ns_data_path("NSTACK_PROFILE_FILE", "profile.json", "profile file", ps->path, sizeof ps->path,
                          ps->path_err, sizeof ps->path_err) != 0)
        ps->path[0] = '\0';

    char ferr[1024];
    if (override) {
        if (ns_profile_find(dir_or_null(ps), override, &ps->prof, ferr, sizeof ferr) != 0) {
            snprintf(err, errlen, "--profile: %s", ferr);
            ns_profile_state_free(ps);
            return NULL;
        }
        ps->active = true;
        snprintf(ps->selected_by, sizeof ps->selected_by, "--profile");
        now_rfc3339(ps->since, sizeof ps->since);
        snprintf(ps->changed_by, sizeof ps->changed_by, "startup");
    } else if (ps->path[0]) {
        char name[NS_PROFILE_NAME_MAX];
        int got = read_state(ps->path, name, sizeof name, ps->since, sizeof ps->since, ps->changed_by,
                             sizeof ps->changed_by, ferr, sizeof ferr);
        if (got < 0) {
            snprintf(ps->note, sizeof ps->note, "the profile file %.300s could not be read (%.200s); no profile",
                     ps->path, ferr);
        } else if (got > 0) {
            if (ns_profile_find(dir_or_null(ps), name, &ps->prof, ferr, sizeof ferr) == 0) {
                ps->active = true;
                snprintf(ps->selected_by, sizeof ps->selected_by, "state file");
            } else {
                snprintf(ps->note, sizeof ps->note, "the profile file names \"%s\", which cannot be used (%.500s); no profile",
                         name, ferr);
            }
        }
        if (ps->note[0]) ns_log_warn("profile", "no profile", "reason=\"%s\"", ps->note);
    }
    if (cfg != base) *cfg = *base;
    if (ps->active) ns_profile_apply_to_config(&ps->prof, cfg);
    ns_log_info("profile", "profile", "profile=%s selected_by=\"%s\" file=\"%s\"", ps->active ? ps->prof.name : "none",
                ps->selected_by, ps->path);
    return ps;
}

void ns_profile_state_free(ns_profile_state *ps) {
    if (!ps) return;
    pthread_mutex_destroy(&ps->mu);
    free(ps);
}

static void dur_string(int64_t ns, char *buf, size_t len) {
    if (ns < 0) snprintf(buf, len, "never");
    else ns_duration_format(ns, buf, len);
}

static cJSON *runtime_json(ns_runtime *rt) {
    ns_runtime_config c;
    ns_runtime_get_config(rt, &c);
    cJSON *o = cJSON_CreateObject();
    char ka[64];
    dur_string(c.keep_alive_ns, ka, sizeof ka);
    if (o) {
        cJSON_AddNumberToObject(o, "num_parallel", c.num_parallel);
        cJSON_AddNumberToObject(o, "num_ctx", c.defaults.n_ctx); /* 0: 4096 capped by the model */
        cJSON_AddNumberToObject(o, "num_batch", c.defaults.n_batch);
        cJSON_AddStringToObject(o, "keep_alive", ka);
    }
    return o;
}

/* Under ps->mu. */
static cJSON *state_json_locked(ns_profile_state *ps, ns_runtime *rt) {
    cJSON *o = ps->active ? ns_profile_json(&ps->prof) : cJSON_CreateObject();
    if (!o) return NULL;
    if (!ps->active) {
        cJSON_AddNullToObject(o, "name");
        cJSON_AddStringToObject(o, "description", "no profile: the server's flags and environment decide");
    } else {
        cJSON *at = cJSON_CreateObject();
        for (int i = 0; at && i < NS_PF_COUNT; i++)
            if (ns_profile_has(&ps->prof, (ns_profile_field)i))
                cJSON_AddStringToObject(at, ns_profile_field_name((ns_profile_field)i),
                                        ns_profile_field_applies_to((ns_profile_field)i));
        if (at) cJSON_AddItemToObject(o, "applies_to", at);
    }
    cJSON_AddStringToObject(o, "selected_by", ps->selected_by);
    if (ps->since[0]) cJSON_AddStringToObject(o, "since", ps->since);
    if (ps->changed_by[0]) cJSON_AddStringToObject(o, "changed_by", ps->changed_by);
    if (ps->note[0]) {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(o, "note");
        char both[1400];
        snprintf(both, sizeof both, "%s%s%s", cJSON_IsString(n) ? n->valuestring : "", cJSON_IsString(n) ? "; " : "",
                 ps->note);
        cJSON_DeleteItemFromObjectCaseSensitive(o, "note");
        cJSON_AddStringToObject(o, "note", both);
    }
    cJSON *r = runtime_json(rt);
    if (r) cJSON_AddItemToObject(o, "runtime", r);
    ns_profile_list l;
    cJSON *av = cJSON_CreateArray();
    if (av && ns_profile_list_load(dir_or_null(ps), &l) == 0) {
        for (int i = 0; i < l.n; i++) cJSON_AddItemToArray(av, cJSON_CreateString(l.items[i].name));
        ns_profile_list_free(&l);
    }
    if (av) cJSON_AddItemToObject(o, "available", av);
    return o;
}

cJSON *ns_profile_state_json(ns_profile_state *ps, ns_runtime *rt) {
    pthread_mutex_lock(&ps->mu);
    cJSON *o = state_json_locked(ps, rt);
    pthread_mutex_unlock(&ps->mu);
    return o;
}

static void add_change_i(cJSON *arr, const char *setting, long long from, long long to, const char *applies) {
    if (from == to) return;
    cJSON *c = cJSON_CreateObject();
    if (!c) return;
    cJSON_AddStringToObject(c, "setting", setting);
    cJSON_AddNumberToObject(c, "from", (double)from);
    cJSON_AddNumberToObject(c, "to", (double)to);
    cJSON_AddStringToObject(c, "applies_to", applies);
    cJSON_AddItemToArray(arr, c);
}

static void add_change_dur(cJSON *arr, const char *setting, int64_t from, int64_t to, const char *applies) {
    if (from == to) return;
    cJSON *c = cJSON_CreateObject();
    if (!c) return;
    char a[64], b[64];
    dur_string(from, a, sizeof a);
    dur_string(to, b, sizeof b);
    cJSON_AddStringToObject(c, "setting", setting);
    cJSON_AddStringToObject(c, "from", a);
    cJSON_AddStringToObject(c, "to", b);
    cJSON_AddStringToObject(c, "applies_to", applies);
    cJSON_AddItemToArray(arr, c);
}

int ns_profile_state_set(ns_profile_state *ps, ns_runtime *rt, const char *name, const char *by,
                         const char *request_id, cJSON **answer, char *err, size_t errlen) {
    *answer = NULL;
    ns_profile p;
    char ferr[2048];
    int f = ns_profile_find(dir_or_null(ps), name, &p, ferr, sizeof ferr);
    if (f == -1) {
        snprintf(err, errlen, "%s", ferr);
        return 404;
    }
    if (f == -2) {
        snprintf(err, errlen, "%s", ferr);
        return 422;
    }
    pthread_mutex_lock(&ps->mu);
    char since[64], who[128];
    now_rfc3339(since, sizeof since);
    snprintf(who, sizeof who, "%s", by && *by ? by : "unknown");
    if (!ps->path[0]) {
        snprintf(err, errlen, "cannot keep the profile: %s", ps->path_err);
        pthread_mutex_unlock(&ps->mu);
        return 500;
    }
    if (write_state(ps->path, p.name, since, who, err, errlen) != 0) {
        pthread_mutex_unlock(&ps->mu);
        return 500;
    }
    ns_runtime_config before, want = ps->base, after;
    ns_runtime_get_config(rt, &before);
    ns_profile_apply_to_config(&p, &want);
    ns_runtime_retune(rt, &want);
    ns_runtime_get_config(rt, &after);

    char previous[NS_PROFILE_NAME_MAX];
    snprintf(previous, sizeof previous, "%s", ps->active ? ps->prof.name : "");
    ps->prof = p;
    ps->active = true;
    snprintf(ps->selected_by, sizeof ps->selected_by, "api");
    snprintf(ps->since, sizeof ps->since, "%s", since);
    snprintf(ps->changed_by, sizeof ps->changed_by, "%s", who);
    ps->note[0] = '\0';

    cJSON *changed = cJSON_CreateArray();
    if (changed) {
        add_change_i(changed, "num_parallel", before.num_parallel, after.num_parallel, "models loaded from now on");
        add_change_i(changed, "num_ctx", before.defaults.n_ctx, after.defaults.n_ctx, "models loaded from now on");
        add_change_i(changed, "num_batch", before.defaults.n_batch, after.defaults.n_batch, "models loaded from now on");
        add_change_dur(changed, "keep_alive", before.keep_alive_ns, after.keep_alive_ns, "models released from now on");
    }
    cJSON *o = state_json_locked(ps, rt);
    if (o) {
        if (previous[0]) cJSON_AddStringToObject(o, "previous", previous);
        else cJSON_AddNullToObject(o, "previous");
        if (changed) cJSON_AddItemToObject(o, "changed", changed);
        changed = NULL;
    }
    cJSON_Delete(changed);

    ns_log_info("profile", "profile applied", "profile=%s previous=%s by=%s", p.name, previous[0] ? previous : "none",
                who);
    if (ps->events) {
        cJSON *d = cJSON_CreateObject();
        char *text = NULL;
        if (d && cJSON_AddStringToObject(d, "name", p.name) &&
            (previous[0] ? cJSON_AddStringToObject(d, "previous", previous) : cJSON_AddNullToObject(d, "previous")) &&
            cJSON_AddStringToObject(d, "by", who)) {
            const cJSON *ch = o ? cJSON_GetObjectItemCaseSensitive(o, "changed") : NULL;
            cJSON_AddNumberToObject(d, "changed", cJSON_GetArraySize(ch));
            text = cJSON_PrintUnformatted(d);
        }
        cJSON_Delete(d);
        ns_events_publish(ps->events, NS_EV_PROFILE_APPLIED, NULL, request_id, text ? text : "{}");
        free(text);
    }
    pthread_mutex_unlock(&ps->mu);
    if (!o) {
        snprintf(err, errlen, "out of memory");
        return 500;
    }
    *answer = o;
    return 0;
}
