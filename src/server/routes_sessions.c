/* /api/sessions: the server's named sessions and their snapshots
 * (docs/sessions.md). The session logic is in sessions.c; the files in
 * runtime/snapshot.c; the KV in and out of the model's slots in the runtime. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "options.h"
#include "routes.h"
#include "runtime/snapshot.h"
#include "sessions.h"
#include "util/duration.h"
#include "util/log.h"
#include "util/paths.h"

#define PREFIX "/api/sessions"
#define MAX_SEGMENTS 3

/* ---- small helpers ---- */

/* The body as an object; an empty body is an empty object. NULL after a 400. */
static cJSON *optional_body(ns_http_req *r) {
    size_t len;
    const char *body = ns_http_body(r, &len);
    size_t i = 0;
    while (i < len && (body[i] == ' ' || body[i] == '\t' || body[i] == '\r' || body[i] == '\n')) i++;
    if (i == len) return cJSON_CreateObject();
    return ns_route_parse_body(r);
}

/* 1 and *out when given, 0 when absent, -1 after answering 400. */
static int opt_int(ns_http_req *r, const cJSON *body, const char *key, double lo, double hi, int *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, key);
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < lo || v->valuedouble > hi) {
        ns_http_respond_error(r, 400, "%s must be an integer from %.0f to %.0f", key, lo, hi);
        return -1;
    }
    *out = (int)v->valuedouble;
    return 1;
}

static void respond_bad_id(ns_http_req *r, const char *what, const char *id) {
    ns_http_respond_error(r, 400, "invalid %s '%.80s': " NS_NAME_RULE, what, id);
}


static double ms_of(int64_t ns) { return (double)ns / 1e6; }

static double mb_per_s(uint64_t bytes, int64_t ns) { return ns > 0 ? (double)bytes / 1e6 / ((double)ns / 1e9) : 0; }

/* Whether model (a display name) is loaded, and its context. */
static bool loaded_ctx(const ns_loaded_info *ps, int n_ps, const char *model, int *n_ctx) {
    for (int i = 0; i < n_ps; i++)
        if (strcmp(ps[i].name, model) == 0) {
            *n_ctx = ps[i].n_ctx;
            return true;
        }
    return false;
}

static cJSON *info_of(ns_server *s, const ns_session_state *st, bool full) {
    ns_loaded_info *ps = NULL;
    int n_ps = 0, n_ctx = 0;
    if (ns_runtime_ps(s->rt, &ps, &n_ps) != 0) n_ps = 0;
    bool loaded = loaded_ctx(ps, n_ps, st->model, &n_ctx);
    free(ps);
    return ns_session_info_json(st, loaded, n_ctx, full);
}

static void publish(ns_server *s, ns_event_kind kind, const char *model, ns_http_req *r, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void publish(ns_server *s, ns_event_kind kind, const char *model, ns_http_req *r, const char *fmt, ...) {
    char d[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d, sizeof d, fmt, ap);
    va_end(ap);
    ns_sessions_publish(s->sessions, kind, model, ns_http_request_id(r), d);
}

/* n_keep as a token count for a history of n tokens. */
static int keep_of(const ns_session_state *st, int n) {
    int k = st->n_keep == -1 ? st->first_prompt : st->n_keep;
    if (k < 0) k = 0;
    return k > n ? n : k;
}

/* ---- sessions ---- */

static void list_sessions(ns_server *s, ns_http_req *r) {
    ns_session_state *all = NULL;
    int n = 0;
    if (ns_sessions_list(s->sessions, &all, &n) != 0) {
        ns_http_respond_error(r, 500, "out of memory");
        return;
    }
    ns_loaded_info *ps = NULL;
    int n_ps = 0;
    if (ns_runtime_ps(s->rt, &ps, &n_ps) != 0) n_ps = 0;
    cJSON *o = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(o, "sessions");
    for (int i = 0; i < n; i++) {
        int n_ctx = 0;
        bool loaded = loaded_ctx(ps, n_ps, all[i].model, &n_ctx);
        cJSON_AddItemToArray(arr, ns_session_info_json(&all[i], loaded, n_ctx, false));
        ns_session_state_clear(&all[i]);
    }
    free(all);
    free(ps);
    ns_http_respond_json(r, 200, o);
}

static void create_session(ns_server *s, ns_http_req *r) {
    cJSON *body = ns_route_parse_body(r);
    if (!body) return;
    const char *model = NULL, *id = NULL, *system = NULL;
    int num_keep = NS_N_KEEP_UNSET, rc;
    char gen_id[32], err[512];
    ns_model_ref ref = {0};
    ns_session_state st = {0};
    if (ns_route_get_string(r, body, "model", NULL, &model) || ns_route_get_string(r, body, "id", NULL, &id) ||
        ns_route_get_string(r, body, "system", NULL, &system) ||
        (rc = opt_int(r, body, "num_keep", -1, 1 << 30, &num_keep)) < 0)
        goto out;
    if (!model || !*model) {
        ns_http_respond_error(r, 400, "model is required");
        goto out;
    }
    if (id && !ns_session_id_ok(id)) {
        respond_bad_id(r, "session id", id);
        goto out;
    }
    if (!id) {
        ns_session_new_id(gen_id, sizeof gen_id);
        id = gen_id;
    }
    if (ns_store_resolve(s->store, model, &ref, err, sizeof err) != 0) {
        ns_route_respond_model_error(r, model, strstr(err, "not found") ? 404 : 400, err);
        goto out;
    }
    snprintf(st.id, sizeof st.id, "%s", id);
    snprintf(st.model, sizeof st.model, "%s", ref.name);
    st.n_keep = num_keep;
    st.n_keep_explicit = num_keep != NS_N_KEEP_UNSET;
    st.created = st.last_used = ns_now_wall();
    if (system && *system && !(st.system = strdup(system))) {
        ns_http_respond_error(r, 500, "out of memory");
        goto out;
    }
    ns_session_state shown;
    if (ns_session_state_copy(&shown, &st) != 0) {
        ns_http_respond_error(r, 500, "out of memory");
        goto out;
    }
    int status = ns_sessions_put(s->sessions, &st, false, err, sizeof err);
    if (status) {
        ns_session_state_clear(&shown);
        if (status == 409) ns_http_respond_error(r, 409, "session '%s' already exists", id);
        else ns_http_respond_error(r, status, "%s", err);
        goto out;
    }
    publish(s, NS_EV_SESSION_CREATED, shown.model, r, "{\"session\":\"%s\"}", shown.id);
    ns_http_respond_json(r, 201, info_of(s, &shown, false));
    ns_session_state_clear(&shown);
out:
    ns_session_state_clear(&st);
    ns_model_ref_clear(&ref);
    cJSON_Delete(body);
}

static void get_session(ns_server *s, ns_http_req *r, const char *id) {
    ns_session_state st;
    char err[256];
    int status = ns_sessions_get(s->sessions, id, &st, err, sizeof err);
    if (status) {
        ns_http_respond_error(r, status, "%s", err);
        return;
    }
    ns_http_respond_json(r, 200, info_of(s, &st, true));
    ns_session_state_clear(&st);
}

static void delete_session(ns_server *s, ns_http_req *r, const char *id) {
    ns_session_state st;
    char err[256];
    int status = ns_sessions_get(s->sessions, id, &st, err, sizeof err);
    if (!status) status = ns_sessions_delete(s->sessions, id, err, sizeof err);
    if (status) {
        ns_http_respond_error(r, status, "%s", err);
        ns_session_state_clear(&st);
        return;
    }
    ns_runtime_session_forget(s->rt, id);
    publish(s, NS_EV_SESSION_DELETED, st.model, r, "{\"session\":\"%s\",\"tokens\":%d}", id, st.n_tokens);
    ns_session_state_clear(&st);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "deleted", id);
    ns_http_respond_json(r, 200, o);
}

static void clear_session(ns_server *s, ns_http_req *r, const char *id) {
    ns_session_state st;
    char err[256];
    int status = ns_sessions_hold(s->sessions, id, NULL, false, ns_http_request_id(r), &st, NULL, err, sizeof err);
    if (status) {
        ns_http_respond_error(r, status, "%s", err);
        return;
    }
    int before = st.n_tokens;
    free(st.tokens);
    st.tokens = NULL;
    st.n_tokens = 0;
    cJSON_Delete(st.messages);
    st.messages = NULL;
    st.first_prompt = 0;
    if (!st.n_keep_explicit) st.n_keep = NS_N_KEEP_UNSET;
    st.last_used = ns_now_wall();
    ns_sessions_unhold(s->sessions, id, &st);
    ns_runtime_session_forget(s->rt, id);
    publish(s, NS_EV_SESSION_CLEARED, st.model, r, "{\"session\":\"%s\",\"tokens_before\":%d}", id, before);
    st.busy = false;
    ns_http_respond_json(r, 200, info_of(s, &st, false));
    ns_session_state_clear(&st);
}

/* Acquires the session's model as the routes do (its loaded options kept). */
static ns_loaded *acquire_model(ns_server *s, ns_http_req *r, const char *model) {
    ns_load_opts lo = {0};
    lo.num_gpu = -1;
    int64_t load_ns = 0;
    int status = 0;
    char err[512];
    ns_loaded *lm = ns_runtime_acquire(s->rt, model, &lo, &load_ns, &status, err, sizeof err);
    if (!lm) ns_route_respond_model_error(r, model, status, err);
    return lm;
}

static void truncate_session(ns_server *s, ns_http_req *r, const char *id) {
    cJSON *body = ns_route_parse_body(r);
    if (!body) return;
    int n = 0, rc = opt_int(r, body, "tokens", 0, 1 << 30, &n);
    cJSON_Delete(body);
    if (rc < 0) return;
    if (rc == 0) {
        ns_http_respond_error(r, 400, "tokens is required (how many tokens to keep)");
        return;
    }
    ns_session_state st;
    char err[512];
    int status = ns_sessions_hold(s->sessions, id, NULL, false, ns_http_request_id(r), &st, NULL, err, sizeof err);
    if (status) {
        ns_http_respond_error(r, status, "%s", err);
        return;
    }
    int before = st.n_tokens;
    if (st.kind == NS_SESSION_CHAT && st.messages && cJSON_GetArraySize(st.messages) > 0) {
        /* a conversation is cut at message boundaries: the tokens are its rendering */
        ns_loaded *lm = acquire_model(s, r, st.model);
        if (!lm) goto fail;
        int32_t *toks = NULL;
        int n_toks = 0;
        int dropped = ns_session_chat_fit(lm, st.messages, -1, NULL, NULL, n, &toks, &n_toks, err, sizeof err);
        ns_runtime_release(s->rt, lm, NS_KEEP_ALIVE_DEFAULT);
        if (dropped < 0) {
            ns_http_respond_error(r, -dropped, "%s", err);
            goto fail;
        }
        if (dropped > 0) {
            free(st.tokens);
            st.tokens = toks;
            st.n_tokens = n_toks;
        } else {
            free(toks);
        }
    } else {
        int keep = keep_of(&st, st.n_tokens);
        if (n < keep) {
            ns_http_respond_error(r, 400, "tokens must be at least the session's n_keep (%d)", keep);
            goto fail;
        }
        if (n < st.n_tokens) {
            /* the first n_keep and the most recent, n in all */
            memmove(st.tokens + keep, st.tokens + st.n_tokens - (n - keep), sizeof(int32_t) * (size_t)(n - keep));
            st.n_tokens = n;
        }
    }
    if (st.n_tokens != before) {
        st.truncations++;
        publish(s, NS_EV_SESSION_TRUNCATED, st.model, r,
                "{\"session\":\"%s\",\"tokens_before\":%d,\"tokens_after\":%d,\"reason\":\"request\"}", id, before,
                st.n_tokens);
    }
    st.last_used = ns_now_wall();
    ns_sessions_unhold(s->sessions, id, &st);
    st.busy = false;
    ns_http_respond_json(r, 200, info_of(s, &st, false));
    ns_session_state_clear(&st);
    return;
fail:
    ns_sessions_unhold(s->sessions, id, NULL);
    ns_session_state_clear(&st);
}

/* ---- snapshots ---- */


/* The snapshot directory (created when missing). 0, or -1 after a 500. */
static int snapshot_dir(ns_server *s, ns_http_req *r, char *out, size_t outlen) {
    char err[512];
    if (s->cfg.snapshot_dir && *s->cfg.snapshot_dir) {
        snprintf(out, outlen, "%s", s->cfg.snapshot_dir);
        if (ns_mkdir_p(out, err, sizeof err) != 0) {
            ns_http_respond_error(r, 500, "cannot create the snapshot directory: %s", err);
            return -1;
        }
        return 0;
    }
    if (ns_snapshot_dir(out, outlen, true, err, sizeof err) != 0) {
        ns_http_respond_error(r, 500, "%s", err);
        return -1;
    }
    return 0;
}

static cJSON *meta_json(const ns_snapshot_meta *m) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", m->name);
    cJSON_AddStringToObject(o, "session", m->session);
    cJSON_AddStringToObject(o, "model", m->model);
    cJSON_AddStringToObject(o, "model_digest", m->model_digest);
    cJSON_AddStringToObject(o, "fingerprint", m->fingerprint);
    cJSON_AddNumberToObject(o, "n_keep", m->n_keep);
    ns_route_add_time(o, "created_at", m->created);
    cJSON_AddNumberToObject(o, "tokens", m->n_tokens);
    cJSON_AddNumberToObject(o, "messages_bytes", (double)m->messages_len);
    cJSON_AddNumberToObject(o, "kv_bytes", (double)m->kv_bytes);
    cJSON_AddNumberToObject(o, "file_bytes", (double)m->file_bytes);
    return o;
}

static void default_snapshot_name(const char *id, char *out, size_t outlen) {
    char ts[32];
    time_t now = (time_t)(ns_now_wall() / 1000000000);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(ts, sizeof ts, "%Y%m%dT%H%M%S", &tm);
    /* ids are at most 64 characters: the stamp goes in whole */
    snprintf(out, outlen, "%.*s-%s", (int)(NS_SESSION_ID_MAX - 1 - strlen(ts)), id, ts);
}

/* Writes the snapshot file from the KV pieces, on the model's runner thread
 * (ns_session_kv_save_with): the cache goes to the file without a copy. */
typedef struct {
    const char *dir;
    ns_snapshot_meta *meta;
    const int32_t *tokens;
    const char *messages;
    bool sync;
} snapshot_writer;

static int write_pieces(void *arg, const struct iovec *pieces, int n, char *err, size_t errlen) {
    snapshot_writer *w = arg;
    w->meta->kv_bytes = 0;
    for (int i = 0; i < n; i++) w->meta->kv_bytes += pieces[i].iov_len;
    if (ns_snapshot_write_iov(w->dir, w->meta, w->tokens, w->messages, pieces, n, w->sync, err, errlen) != 0)
        return 500;
    return 0;
}

static int read_pieces(void *arg, const struct iovec *pieces, int n, char *err, size_t errlen) {
    return ns_snapshot_read_kv(arg, pieces, n, err, errlen) == 0 ? 0 : 400;
}

static void save_snapshot(ns_server *s, ns_http_req *r, const char *id) {
    cJSON *body = optional_body(r);
    if (!body) return;
    const char *name = NULL;
    bool sync = false, overwrite = false;
    char dir[4096], def_name[NS_SESSION_ID_MAX + 1], err[512];
    ns_session_state st = {0};
    bool held = false;
    ns_loaded *lm = NULL;
    char *messages = NULL;
    if (ns_route_get_string(r, body, "name", NULL, &name) || ns_route_get_bool(r, body, "sync", false, &sync) ||
        ns_route_get_bool(r, body, "overwrite", false, &overwrite))
        goto out;
    if (!name) {
        default_snapshot_name(id, def_name, sizeof def_name);
        name = def_name;
    }
    if (!ns_snapshot_name_ok(name)) {
        respond_bad_id(r, "snapshot name", name);
        goto out;
    }
    if (snapshot_dir(s, r, dir, sizeof dir) != 0) goto out;
    if (!overwrite && ns_snapshot_exists(dir, name)) {
        ns_http_respond_error(r, 409, "snapshot '%s' already exists (send \"overwrite\": true to replace it)", name);
        goto out;
    }
    int status = ns_sessions_hold(s->sessions, id, NULL, false, ns_http_request_id(r), &st, NULL, err, sizeof err);
    if (status) {
        ns_http_respond_error(r, status, "%s", err);
        goto out;
    }
    held = true;
    if (st.n_tokens == 0) {
        ns_http_respond_error(r, 400, "session '%s' is empty: there is nothing to save", id);
        goto out;
    }
    if (!(lm = acquire_model(s, r, st.model))) goto out;
    int64_t t0 = ns_now_mono();
    if (st.messages && !(messages = cJSON_PrintUnformatted(st.messages))) {
        ns_http_respond_error(r, 500, "out of memory");
        goto out;
    }
    ns_snapshot_meta meta = {0};
    snprintf(meta.name, sizeof meta.name, "%s", name);
    snprintf(meta.session, sizeof meta.session, "%s", id);
    snprintf(meta.model, sizeof meta.model, "%s", st.model);
    snprintf(meta.model_digest, sizeof meta.model_digest, "%s", ns_loaded_ref(lm)->digest);
    snprintf(meta.fingerprint, sizeof meta.fingerprint, "%s", ns_loaded_kv_fingerprint(lm));
    meta.n_keep = keep_of(&st, st.n_tokens);
    meta.created = ns_now_wall();
    meta.n_tokens = st.n_tokens;
    meta.messages_len = messages ? strlen(messages) : 0;
    snapshot_writer w = {dir, &meta, st.tokens, messages, sync};
    status = ns_session_kv_save_with(lm, id, st.tokens, st.n_tokens, write_pieces, &w, err, sizeof err);
    if (status) {
        ns_http_respond_error(r, status, "%s", err);
        goto out;
    }
    int64_t save_ns = ns_now_mono() - t0;
    ns_snapshot_meta written;
    if (ns_snapshot_read_meta(dir, name, &written, err, sizeof err) == 0) meta.file_bytes = written.file_bytes;
    publish(s, NS_EV_SNAPSHOT_SAVED, st.model, r, "{\"name\":\"%s\",\"session\":\"%s\",\"bytes\":%llu,\"ms\":%.3f}",
            name, id, (unsigned long long)meta.file_bytes, ms_of(save_ns));
    ns_log_info("server", "snapshot saved", "name=%s session=%s bytes=%llu ms=%.1f", name, id,
                (unsigned long long)meta.file_bytes, ms_of(save_ns));
    cJSON *o = meta_json(&meta);
    cJSON_AddNumberToObject(o, "save_ms", ms_of(save_ns));
    cJSON_AddNumberToObject(o, "mb_per_s", mb_per_s(meta.file_bytes, save_ns));
    ns_http_respond_json(r, 201, o);
out:
    if (lm) ns_runtime_release(s->rt, lm, NS_KEEP_ALIVE_DEFAULT);
    if (held) ns_sessions_unhold(s->sessions, id, NULL);
    ns_session_state_clear(&st);
    free(messages);
    cJSON_Delete(body);
}

/* Reads a snapshot's header: 0, or -1 after 404 (missing) / 400 (damaged). */
static int read_meta(ns_http_req *r, const char *dir, const char *name, ns_snapshot_meta *meta) {
    char err[512];
    if (!ns_snapshot_exists(dir, name)) {
        ns_http_respond_error(r, 404, "snapshot '%s' does not exist", name);
        return -1;
    }
    if (ns_snapshot_read_meta(dir, name, meta, err, sizeof err) != 0) {
        ns_http_respond_error(r, 400, "%s", err);
        return -1;
    }
    return 0;
}

static void restore_snapshot(ns_server *s, ns_http_req *r, const char *name) {
    cJSON *body = optional_body(r);
    if (!body) return;
    const char *sid = NULL, *model = NULL;
    bool replace = false;
    char dir[4096], err[512];
    ns_snapshot_meta meta;
    ns_loaded *lm = NULL;
    int32_t *tokens = NULL;
    char *messages = NULL;
    ns_snapshot_reader *rd = NULL;
    ns_session_state st = {0}, existing = {0};
    if (ns_route_get_string(r, body, "session", NULL, &sid) || ns_route_get_string(r, body, "model", NULL, &model) ||
        ns_route_get_bool(r, body, "replace", false, &replace))
        goto out;
    if (snapshot_dir(s, r, dir, sizeof dir) != 0 || read_meta(r, dir, name, &meta) != 0) goto out;
    if (!sid) sid = meta.session;
    if (!model) model = meta.model;
    if (!ns_session_id_ok(sid)) {
        respond_bad_id(r, "session id", sid);
        goto out;
    }
    if (ns_sessions_get(s->sessions, sid, &existing, err, sizeof err) == 0) {
        if (!replace || existing.busy) {
            if (existing.busy) ns_http_respond_error(r, 409, "session '%s' is busy with another request", sid);
            else ns_http_respond_error(r, 409, "session '%s' already exists (send \"replace\": true to replace it)", sid);
            goto out;
        }
    }
    if (!(lm = acquire_model(s, r, model))) goto out;
    const ns_model_ref *ref = ns_loaded_ref(lm);
    /* another model: the same file under another name is fine, anything else is not */
    bool same_file = *ref->digest && *meta.model_digest && strcmp(ref->digest, meta.model_digest) == 0;
    if (strcmp(ref->name, meta.model) != 0 && !same_file) {
        ns_http_respond_error(r, 400, "snapshot '%s' was saved from model '%s', not '%s'", name, meta.model, ref->name);
        goto out;
    }
    int64_t t0 = ns_now_mono();
    ns_snapshot_meta full;
    rd = ns_snapshot_open(dir, name, *meta.model_digest ? ref->digest : "", ns_loaded_kv_fingerprint(lm), &full,
                          &tokens, &messages, err, sizeof err);
    if (!rd) {
        ns_http_respond_error(r, ns_snapshot_exists(dir, name) ? 400 : 404, "%s", err);
        goto out;
    }
    cJSON *msgs = NULL;
    if (messages && !(msgs = cJSON_Parse(messages))) {
        ns_http_respond_error(r, 400, "snapshot '%s' holds messages that are not valid JSON", name);
        goto out;
    }
    if (replace) ns_runtime_session_forget(s->rt, sid);
    /* the KV goes from the file straight into a slot, on the runner thread */
    int status = ns_session_kv_load_with(lm, sid, tokens, full.n_tokens, read_pieces, rd, err, sizeof err);
    ns_snapshot_close(rd);
    rd = NULL;
    if (status) {
        cJSON_Delete(msgs);
        ns_http_respond_error(r, status, "%s", err);
        goto out;
    }
    int64_t restore_ns = ns_now_mono() - t0;
    snprintf(st.id, sizeof st.id, "%s", sid);
    snprintf(st.model, sizeof st.model, "%s", ref->name);
    st.kind = msgs ? NS_SESSION_CHAT : NS_SESSION_GENERATE;
    st.tokens = tokens;
    tokens = NULL;
    st.n_tokens = full.n_tokens;
    st.messages = msgs;
    st.n_keep = full.n_keep;
    st.first_prompt = full.n_tokens > 0 ? (full.n_keep > 0 ? full.n_keep : 1) : 0;
    st.created = st.last_used = ns_now_wall();
    st.n_ctx = ns_loaded_n_ctx(lm);
    st.kv_per_token = ns_session_kv_per_token(lm);
    ns_session_state shown;
    if (ns_session_state_copy(&shown, &st) != 0) {
        ns_http_respond_error(r, 500, "out of memory");
        goto out;
    }
    status = ns_sessions_put(s->sessions, &st, replace, err, sizeof err);
    if (status) {
        ns_session_state_clear(&shown);
        ns_http_respond_error(r, status, "%s", err);
        goto out;
    }
    publish(s, NS_EV_SNAPSHOT_RESTORED, shown.model, r,
            "{\"name\":\"%s\",\"session\":\"%s\",\"bytes\":%llu,\"ms\":%.3f}", name, sid,
            (unsigned long long)full.file_bytes, ms_of(restore_ns));
    ns_log_info("server", "snapshot restored", "name=%s session=%s bytes=%llu ms=%.1f", name, sid,
                (unsigned long long)full.file_bytes, ms_of(restore_ns));
    cJSON *o = info_of(s, &shown, false);
    cJSON_AddStringToObject(o, "snapshot", name);
    cJSON_AddNumberToObject(o, "restore_ms", ms_of(restore_ns));
    cJSON_AddNumberToObject(o, "mb_per_s", mb_per_s(full.file_bytes, restore_ns));
    ns_http_respond_json(r, 201, o);
    ns_session_state_clear(&shown);
out:
    if (lm) ns_runtime_release(s->rt, lm, NS_KEEP_ALIVE_DEFAULT);
    ns_session_state_clear(&st);
    ns_session_state_clear(&existing);
    free(tokens);
    free(messages);
    ns_snapshot_close(rd);
    cJSON_Delete(body);
}

static void list_snapshots(ns_server *s, ns_http_req *r) {
    char dir[4096], err[512];
    if (snapshot_dir(s, r, dir, sizeof dir) != 0) return;
    ns_snapshot_meta *all = NULL;
    int n = 0;
    if (ns_snapshot_list(dir, &all, &n, err, sizeof err) != 0) {
        ns_http_respond_error(r, 500, "%s", err);
        return;
    }
    cJSON *o = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(o, "snapshots");
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(arr, meta_json(&all[i]));
    free(all);
    ns_http_respond_json(r, 200, o);
}

static void get_snapshot(ns_server *s, ns_http_req *r, const char *name) {
    char dir[4096];
    ns_snapshot_meta meta;
    if (snapshot_dir(s, r, dir, sizeof dir) != 0 || read_meta(r, dir, name, &meta) != 0) return;
    ns_http_respond_json(r, 200, meta_json(&meta));
}

static void delete_snapshot(ns_server *s, ns_http_req *r, const char *name) {
    char dir[4096], err[512];
    if (snapshot_dir(s, r, dir, sizeof dir) != 0) return;
    ns_snapshot_meta meta = {0};
    bool have_meta = ns_snapshot_read_meta(dir, name, &meta, err, sizeof err) == 0;
    bool missing = false;
    if (ns_snapshot_delete(dir, name, &missing, err, sizeof err) != 0) {
        ns_http_respond_error(r, missing ? 404 : 500, "%s", err);
        return;
    }
    publish(s, NS_EV_SNAPSHOT_DELETED, have_meta ? meta.model : "", r, "{\"name\":\"%s\"}", name);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "deleted", name);
    ns_http_respond_json(r, 200, o);
}

/* ---- dispatch ---- */

static void method_not_allowed(ns_http_req *r, const char *allow) {
    ns_http_add_header(r, "Allow", allow);
    ns_http_respond_error(r, 405, "method %s is not allowed for %s (allowed: %s)", ns_http_method(r), ns_http_path(r),
                          allow);
}

void ns_route_api_sessions(ns_server *s, ns_http_req *r) {
    const char *method = ns_http_method(r), *path = ns_http_path(r);
    bool get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    bool post = strcmp(method, "POST") == 0, del = strcmp(method, "DELETE") == 0;
    /* "/api/sessions[/a[/b[/c]]]" */
    char segs[MAX_SEGMENTS][128];
    int n = 0;
    const char *p = path + strlen(PREFIX);
    while (*p == '/') {
        p++;
        const char *end = strchr(p, '/');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (n == MAX_SEGMENTS || len == 0 || len >= sizeof segs[0]) {
            ns_http_respond_error(r, 404, "not found: %s %s", method, path);
            return;
        }
        memcpy(segs[n], p, len);
        segs[n++][len] = '\0';
        p += len;
    }
    if (n == 0) {
        if (get) list_sessions(s, r);
        else if (post) create_session(s, r);
        else method_not_allowed(r, "GET, HEAD, POST, OPTIONS");
        return;
    }
    if (strcmp(segs[0], "snapshots") == 0) {
        if (n == 1) {
            if (get) list_snapshots(s, r);
            else method_not_allowed(r, "GET, HEAD, OPTIONS");
            return;
        }
        const char *name = segs[1];
        if (!ns_snapshot_name_ok(name)) {
            respond_bad_id(r, "snapshot name", name);
            return;
        }
        if (n == 2) {
            if (get) get_snapshot(s, r, name);
            else if (del) delete_snapshot(s, r, name);
            else method_not_allowed(r, "GET, HEAD, DELETE, OPTIONS");
        } else if (strcmp(segs[2], "restore") == 0) {
            if (post) restore_snapshot(s, r, name);
            else method_not_allowed(r, "POST, OPTIONS");
        } else {
            ns_http_respond_error(r, 404, "not found: %s %s", method, path);
        }
        return;
    }
    const char *id = segs[0];
    if (n == 3) {
        ns_http_respond_error(r, 404, "not found: %s %s", method, path);
        return;
    }
    if (!ns_session_id_ok(id)) {
        respond_bad_id(r, "session id", id);
        return;
    }
    if (n == 1) {
        if (get) get_session(s, r, id);
        else if (del) delete_session(s, r, id);
        else method_not_allowed(r, "GET, HEAD, DELETE, OPTIONS");
        return;
    }
    static const struct {
        const char *name;
        void (*fn)(ns_server *, ns_http_req *, const char *);
    } actions[] = {{"clear", clear_session}, {"truncate", truncate_session}, {"snapshot", save_snapshot}};
    for (size_t i = 0; i < sizeof actions / sizeof actions[0]; i++) {
        if (strcmp(segs[1], actions[i].name) != 0) continue;
        if (post) actions[i].fn(s, r, id);
        else method_not_allowed(r, "POST, OPTIONS");
        return;
    }
    ns_http_respond_error(r, 404, "not found: %s %s", method, path);
}
