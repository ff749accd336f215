/* The session table and a request's turn on a session (sessions.h). */
#include "sessions.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "nstack/tokenizer.h"
#include "options.h"
#include "prompt.h"
#include "routes.h"
#include "runtime/snapshot.h"
#include "util/duration.h"
#include "util/log.h"

struct ns_sessions {
    pthread_mutex_t mu;
    ns_events *events;
    int max;
    ns_session_state **items; /* creation order */
    int n, cap;
};

/* ---- state ---- */

void ns_session_state_clear(ns_session_state *st) {
    if (!st) return;
    free(st->tokens);
    cJSON_Delete(st->messages);
    free(st->system);
    memset(st, 0, sizeof *st);
}

int ns_session_state_copy(ns_session_state *dst, const ns_session_state *src) {
    *dst = *src;
    dst->tokens = NULL;
    dst->messages = NULL;
    dst->system = NULL;
    if (src->n_tokens > 0) {
        if (!(dst->tokens = malloc(sizeof(int32_t) * (size_t)src->n_tokens))) goto oom;
        memcpy(dst->tokens, src->tokens, sizeof(int32_t) * (size_t)src->n_tokens);
    }
    if (src->messages && !(dst->messages = cJSON_Duplicate(src->messages, true))) goto oom;
    if (src->system && !(dst->system = strdup(src->system))) goto oom;
    return 0;
oom:
    ns_session_state_clear(dst);
    return -1;
}

/* ---- the table ---- */

ns_sessions *ns_sessions_new(ns_events *events, int max) {
    ns_sessions *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    pthread_mutex_init(&t->mu, NULL);
    t->events = events;
    t->max = max > 0 ? max : NS_SESSIONS_MAX;
    return t;
}

void ns_sessions_free(ns_sessions *t) {
    if (!t) return;
    for (int i = 0; i < t->n; i++) {
        ns_session_state_clear(t->items[i]);
        free(t->items[i]);
    }
    free(t->items);
    pthread_mutex_destroy(&t->mu);
    free(t);
}

bool ns_session_id_ok(const char *id) { return id && ns_snapshot_name_ok(id) && strcmp(id, "snapshots") != 0; }

void ns_session_new_id(char *out, size_t outlen) {
    uint64_t x = 0;
    FILE *f = fopen("/dev/urandom", "rb");
    if (!f || fread(&x, sizeof x, 1, f) != 1) x = (uint64_t)ns_now_wall() ^ ((uint64_t)ns_now_mono() << 21);
    if (f) fclose(f);
    snprintf(out, outlen, "s-%016llx", (unsigned long long)x);
}

int ns_session_id_of(ns_http_req *r, const cJSON *body, const char **id, char *err, size_t errlen) {
    *id = NULL;
    const cJSON *v = body ? cJSON_GetObjectItemCaseSensitive(body, "session") : NULL;
    const char *from_body = NULL;
    if (v && !cJSON_IsNull(v)) {
        if (!cJSON_IsString(v)) {
            snprintf(err, errlen, "session must be a string (a session id)");
            return 400;
        }
        from_body = v->valuestring;
    }
    const char *from_header = ns_http_header(r, "X-Session-Id");
    if (from_header && !*from_header) from_header = NULL;
    if (from_body && from_header && strcmp(from_body, from_header) != 0) {
        snprintf(err, errlen, "the body names session '%.64s' but X-Session-Id names '%.64s'", from_body,
                 from_header);
        return 400;
    }
    const char *s = from_body ? from_body : from_header;
    if (!s) return 0;
    if (!ns_session_id_ok(s)) {
        snprintf(err, errlen, "invalid session id '%.80s': " NS_NAME_RULE, s);
        return 400;
    }
    *id = s;
    return 0;
}

static int find(const ns_sessions *t, const char *id) {
    for (int i = 0; i < t->n; i++)
        if (strcmp(t->items[i]->id, id) == 0) return i;
    return -1;
}

/* Appends an empty session (t->mu held). NULL when full or out of memory. */
static ns_session_state *add(ns_sessions *t, const char *id, const char *model) {
    if (t->n >= t->max) return NULL;
    if (t->n == t->cap) {
        int cap = t->cap ? t->cap * 2 : 16;
        ns_session_state **items = realloc(t->items, sizeof *items * (size_t)cap);
        if (!items) return NULL;
        t->items = items;
        t->cap = cap;
    }
    ns_session_state *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    snprintf(s->id, sizeof s->id, "%s", id);
    snprintf(s->model, sizeof s->model, "%s", model);
    s->n_keep = NS_N_KEEP_UNSET;
    s->created = s->last_used = ns_now_wall();
    t->items[t->n++] = s;
    return s;
}

static void publish_created(ns_sessions *t, const ns_session_state *s, const char *request_id) {
    char d[256];
    snprintf(d, sizeof d, "{\"session\":\"%s\"}", s->id);
    ns_sessions_publish(t, NS_EV_SESSION_CREATED, s->model, request_id, d);
}

int ns_sessions_hold(ns_sessions *t, const char *id, const char *model, bool create, const char *request_id,
                     ns_session_state *st, bool *created, char *err, size_t errlen) {
    if (created) *created = false;
    memset(st, 0, sizeof *st);
    pthread_mutex_lock(&t->mu);
    int i = find(t, id);
    ns_session_state *s = i >= 0 ? t->items[i] : NULL;
    int status = 0;
    if (!s && !(create && model)) {
        snprintf(err, errlen, "session '%s' not found", id);
        status = 404;
    } else if (!s && !(s = add(t, id, model))) {
        snprintf(err, errlen, "too many sessions (%d): delete some with DELETE /api/sessions/{id}", t->max);
        status = 503;
    } else if (i < 0) {
        if (created) *created = true;
        publish_created(t, s, request_id);
    }
    if (!status && model && strcmp(s->model, model) != 0) {
        snprintf(err, errlen, "session '%s' belongs to model '%s', not '%s'", id, s->model, model);
        status = 409;
    } else if (!status && s->busy) {
        snprintf(err, errlen, "session '%s' is busy with another request", id);
        status = 409;
    }
    if (!status) {
        if (ns_session_state_copy(st, s) != 0) {
            snprintf(err, errlen, "out of memory");
            status = 500;
        } else {
            s->busy = true;
        }
    }
    pthread_mutex_unlock(&t->mu);
    return status;
}

void ns_sessions_unhold(ns_sessions *t, const char *id, const ns_session_state *commit) {
    pthread_mutex_lock(&t->mu);
    int i = find(t, id);
    if (i >= 0) {
        ns_session_state *s = t->items[i];
        ns_session_state copy;
        if (commit && ns_session_state_copy(&copy, commit) == 0) {
            /* the table's own identity and creation time stay */
            snprintf(copy.id, sizeof copy.id, "%s", s->id);
            copy.created = s->created;
            ns_session_state_clear(s);
            *s = copy;
        } else if (commit) {
            ns_log_error("server", "out of memory: a session's turn was not saved", "session=%s", id);
        }
        s->busy = false;
    }
    pthread_mutex_unlock(&t->mu);
}

int ns_sessions_put(ns_sessions *t, ns_session_state *st, bool replace, char *err, size_t errlen) {
    pthread_mutex_lock(&t->mu);
    int i = find(t, st->id), status = 0;
    if (i >= 0 && !replace) {
        snprintf(err, errlen, "session '%s' already exists (restore with \"replace\": true to replace it)", st->id);
        status = 409;
    } else if (i >= 0 && t->items[i]->busy) {
        snprintf(err, errlen, "session '%s' is busy with another request", st->id);
        status = 409;
    } else {
        ns_session_state *s = i >= 0 ? t->items[i] : add(t, st->id, st->model);
        if (!s) {
            snprintf(err, errlen, "too many sessions (%d): delete some with DELETE /api/sessions/{id}", t->max);
            status = 503;
        } else {
            ns_session_state_clear(s);
            *s = *st;
            s->busy = false;
            memset(st, 0, sizeof *st);
        }
    }
    pthread_mutex_unlock(&t->mu);
    return status;
}

int ns_sessions_delete(ns_sessions *t, const char *id, char *err, size_t errlen) {
    pthread_mutex_lock(&t->mu);
    int i = find(t, id), status = 0;
    if (i < 0) {
        snprintf(err, errlen, "session '%s' not found", id);
        status = 404;
    } else if (t->items[i]->busy) {
        snprintf(err, errlen, "session '%s' is busy with another request", id);
        status = 409;
    } else {
        ns_session_state_clear(t->items[i]);
        free(t->items[i]);
        memmove(t->items + i, t->items + i + 1, sizeof *t->items * (size_t)(t->n - i - 1));
        t->n--;
    }
    pthread_mutex_unlock(&t->mu);
    return status;
}

int ns_sessions_get(ns_sessions *t, const char *id, ns_session_state *st, char *err, size_t errlen) {
    memset(st, 0, sizeof *st);
    pthread_mutex_lock(&t->mu);
    int i = find(t, id), status = 0;
    if (i < 0) {
        snprintf(err, errlen, "session '%s' not found", id);
        status = 404;
    } else if (ns_session_state_copy(st, t->items[i]) != 0) {
        snprintf(err, errlen, "out of memory");
        status = 500;
    }
    pthread_mutex_unlock(&t->mu);
    return status;
}

int ns_sessions_list(ns_sessions *t, ns_session_state **out, int *n) {
    *out = NULL;
    *n = 0;
    pthread_mutex_lock(&t->mu);
    int rc = 0;
    ns_session_state *all = calloc((size_t)t->n + 1, sizeof *all);
    if (!all) rc = -1;
    for (int i = 0; rc == 0 && i < t->n; i++) {
        if (ns_session_state_copy(&all[i], t->items[i]) != 0) rc = -1;
        else (*n)++;
    }
    pthread_mutex_unlock(&t->mu);
    if (rc != 0) {
        for (int i = 0; i < *n; i++) ns_session_state_clear(&all[i]);
        free(all);
        *n = 0;
        return -1;
    }
    *out = all;
    return 0;
}

void ns_sessions_publish(ns_sessions *t, ns_event_kind kind, const char *model, const char *request_id,
                         const char *detail_json) {
    if (t->events) ns_events_publish(t->events, kind, model, request_id, detail_json);
}

/* ---- info ---- */


static const char *kind_name(ns_session_kind k) {
    return k == NS_SESSION_CHAT ? "chat" : k == NS_SESSION_GENERATE ? "generate" : NULL;
}

/* A stored message as the API shows it (tool_calls as JSON, not text). */
static cJSON *msg_for_api(const cJSON *m) {
    cJSON *o = cJSON_Duplicate(m, true);
    cJSON *tc = cJSON_GetObjectItemCaseSensitive(o, "tool_calls");
    if (cJSON_IsString(tc)) {
        cJSON *parsed = cJSON_Parse(tc->valuestring);
        if (parsed) cJSON_ReplaceItemInObjectCaseSensitive(o, "tool_calls", parsed);
    }
    return o;
}

cJSON *ns_session_info_json(const ns_session_state *st, bool loaded, int n_ctx, bool full) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", st->id);
    cJSON_AddStringToObject(o, "model", st->model);
    const char *kind = kind_name(st->kind);
    if (kind) cJSON_AddStringToObject(o, "kind", kind);
    else cJSON_AddNullToObject(o, "kind");
    ns_route_add_time(o, "created_at", st->created);
    ns_route_add_time(o, "last_used_at", st->last_used);
    cJSON_AddNumberToObject(o, "tokens", st->n_tokens);
    if (loaded) cJSON_AddNumberToObject(o, "max_tokens", n_ctx);
    else cJSON_AddNullToObject(o, "max_tokens");
    if (loaded && st->kv_per_token > 0)
        cJSON_AddNumberToObject(o, "kv_bytes", (double)st->kv_per_token * st->n_tokens);
    else cJSON_AddNullToObject(o, "kv_bytes");
    if (st->n_keep == NS_N_KEEP_UNSET) cJSON_AddNullToObject(o, "n_keep");
    else cJSON_AddNumberToObject(o, "n_keep", st->n_keep);
    cJSON_AddNumberToObject(o, "messages", st->messages ? cJSON_GetArraySize(st->messages) : 0);
    cJSON_AddBoolToObject(o, "busy", st->busy);
    cJSON_AddNumberToObject(o, "requests", st->requests);
    cJSON_AddNumberToObject(o, "shifts", st->shifts);
    cJSON_AddNumberToObject(o, "truncations", st->truncations);
    if (!full) return o;
    cJSON *ctx = cJSON_AddArrayToObject(o, "context");
    for (int i = 0; i < st->n_tokens; i++) cJSON_AddItemToArray(ctx, cJSON_CreateNumber(st->tokens[i]));
    cJSON *list = cJSON_AddArrayToObject(o, "messages_list");
    const cJSON *m;
    if (st->messages) cJSON_ArrayForEach(m, st->messages) cJSON_AddItemToArray(list, msg_for_api(m));
    if (st->system) cJSON_AddStringToObject(o, "system", st->system);
    return o;
}

int64_t ns_session_kv_per_token(const ns_loaded *lm) {
    const ns_hparams *hp = ns_model_hparams(ns_loaded_model(lm));
    const ns_load_opts *lo = ns_loaded_opts(lm);
    int64_t elem = lo && lo->kv_type == NS_KV_F32 ? 4 : 2;
    return 2 * (int64_t)hp->n_layer * hp->n_head_kv * hp->head_dim * elem;
}

/* ---- messages ---- */

static const char *str_item(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

int ns_session_msgs_view(const cJSON *messages, ns_chat_msg **out, int extra) {
    int n = messages ? cJSON_GetArraySize(messages) : 0;
    *out = calloc((size_t)(n + extra) + 1, sizeof **out);
    if (!*out) return -1;
    int i = 0;
    const cJSON *m;
    if (messages) cJSON_ArrayForEach(m, messages) {
        ns_chat_msg *cm = &(*out)[i++];
        cm->role = str_item(m, "role");
        if (!cm->role) cm->role = "user";
        cm->content = str_item(m, "content");
        cm->name = str_item(m, "name");
        cm->tool_call_id = str_item(m, "tool_call_id");
        cm->tool_calls_json = str_item(m, "tool_calls");
    }
    return i;
}

cJSON *ns_session_msg_json(const ns_chat_msg *m) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddStringToObject(o, "role", m->role ? m->role : "user");
    cJSON_AddStringToObject(o, "content", m->content ? m->content : "");
    if (m->name) cJSON_AddStringToObject(o, "name", m->name);
    if (m->tool_call_id) cJSON_AddStringToObject(o, "tool_call_id", m->tool_call_id);
    /* kept as the text the templates take */
    if (m->tool_calls_json) cJSON_AddStringToObject(o, "tool_calls", m->tool_calls_json);
    return o;
}

static bool is_role(const cJSON *m, const char *role) {
    const char *r = str_item(m, "role");
    return r && strcmp(r, role) == 0;
}

/* Renders and tokenizes a conversation. 0 or a status with err. */
static int render_tokens(ns_loaded *lm, const cJSON *messages, const char *go_template, const char *tools_json,
                         int32_t **toks, int *n_toks, char *err, size_t errlen) {
    *toks = NULL;
    ns_chat_msg *view = NULL;
    int n = ns_session_msgs_view(messages, &view, 0);
    if (n < 0) {
        snprintf(err, errlen, "out of memory");
        return 500;
    }
    int status = 500;
    char *text = ns_prompt_render(lm, view, n, go_template, tools_json, &status, err, errlen);
    free(view);
    if (!text) return status;
    *n_toks = ns_prompt_tokenize(lm, text, toks, err, errlen);
    free(text);
    return *n_toks < 0 ? 400 : 0;
}

int ns_session_chat_fit(ns_loaded *lm, cJSON *messages, int keep_from, const char *go_template,
                        const char *tools_json, int target, int32_t **toks, int *n_toks, char *err, size_t errlen) {
    int dropped = 0;
    for (;;) {
        int status = render_tokens(lm, messages, go_template, tools_json, toks, n_toks, err, errlen);
        if (status) return -status;
        if (*n_toks <= target) return dropped;
        /* the oldest message that is not a system message */
        int i = 0, n = cJSON_GetArraySize(messages);
        while (i < n && is_role(cJSON_GetArrayItem(messages, i), "system")) i++;
        if (i >= n || (keep_from >= 0 && i >= keep_from - dropped)) {
            snprintf(err, errlen,
                     "the conversation is %d tokens and cannot be cut to %d: what is left is the system "
                     "prompt%s",
                     *n_toks, target, keep_from >= 0 ? " and the last user message" : "");
            free(*toks);
            *toks = NULL;
            return -400;
        }
        free(*toks);
        *toks = NULL;
        bool pair = is_role(cJSON_GetArrayItem(messages, i), "user") && i + 1 < n &&
                    is_role(cJSON_GetArrayItem(messages, i + 1), "assistant") &&
                    !(keep_from >= 0 && i + 1 >= keep_from - dropped);
        cJSON_DeleteItemFromArray(messages, i);
        dropped++;
        if (pair) {
            cJSON_DeleteItemFromArray(messages, i);
            dropped++;
        }
    }
}

/* ---- a request's turn ---- */

int ns_session_turn_begin(ns_sessions *t, const char *id, ns_loaded *lm, ns_session_kind kind,
                          const char *request_id, ns_session_turn *turn, char *err, size_t errlen) {
    memset(turn, 0, sizeof *turn);
    turn->table = t;
    snprintf(turn->request_id, sizeof turn->request_id, "%s", request_id ? request_id : "");
    const ns_model_ref *ref = ns_loaded_ref(lm);
    int status = ns_sessions_hold(t, id, ref->name, true, request_id, &turn->st, NULL, err, errlen);
    if (status) return status;
    turn->held = true;
    if (turn->st.kind != NS_SESSION_NEW && turn->st.kind != kind) {
        snprintf(err, errlen, "session '%s' holds a %s conversation: continue it with %s", id,
                 turn->st.kind == NS_SESSION_CHAT ? "chat" : "completion",
                 turn->st.kind == NS_SESSION_CHAT ? "/api/chat or /v1/chat/completions"
                                                  : "/api/generate or /v1/completions");
        ns_session_turn_abort(turn);
        return 409;
    }
    turn->st.kind = kind;
    turn->st.n_ctx = ns_loaded_n_ctx(lm);
    turn->st.kv_per_token = ns_session_kv_per_token(lm);
    return 0;
}

const char *ns_session_turn_system(const ns_session_turn *turn) {
    return turn->st.n_tokens == 0 && turn->st.system && *turn->st.system ? turn->st.system : NULL;
}

static void publish_truncated(ns_session_turn *turn, int before, int after, const char *reason) {
    char d[256];
    snprintf(d, sizeof d, "{\"session\":\"%s\",\"tokens_before\":%d,\"tokens_after\":%d,\"reason\":\"%s\"}",
             turn->st.id, before, after, reason);
    ns_sessions_publish(turn->table, NS_EV_SESSION_TRUNCATED, turn->st.model, turn->request_id, d);
    ns_log_info("server", "session truncated", "session=%s tokens_before=%d tokens_after=%d reason=%s", turn->st.id,
                before, after, reason);
}

/* The request's num_keep becomes the session's (kept for later requests). */
static void take_num_keep(ns_session_state *st, int num_keep) {
    if (num_keep == NS_N_KEEP_UNSET) return;
    st->n_keep = num_keep;
    st->n_keep_explicit = true;
}

/* memcpy of n tokens; an empty history may be NULL. */
static void copy_tokens(int32_t *dst, const int32_t *src, int n) {
    if (n > 0) memcpy(dst, src, sizeof(int32_t) * (size_t)n);
}

/* n_keep as a token count for a history of n tokens. */
static int resolve_keep(const ns_session_state *st, int n) {
    int k = st->n_keep;
    if (k == -1) k = st->first_prompt;
    if (k < 0) k = 0;
    return k > n ? n : k;
}

static int too_long(int n, int n_ctx, char *err, size_t errlen) {
    snprintf(err, errlen, "prompt is %d tokens but the context is %d, even with the session's older tokens dropped",
             n, n_ctx);
    return 400;
}

int ns_session_turn_generate(ns_session_turn *turn, ns_loaded *lm, const char *text, bool with_system, int num_keep,
                             int32_t **toks, int *n_toks, char *err, size_t errlen) {
    ns_session_state *st = &turn->st;
    const ns_vocab *v = ns_loaded_vocab(lm);
    int32_t *new_toks = NULL;
    int n_new;
    bool first = st->n_tokens == 0;
    if (first) {
        /* an empty session starts as a plain request does (BOS by the file's rule) */
        n_new = ns_prompt_tokenize(lm, text, &new_toks, err, errlen);
        if (n_new < 0) return 400;
    } else {
        /* appended to the history as /api/generate's context does it: no second BOS */
        size_t len = strlen(text);
        n_new = ns_tokenize(v, text, len, false, true, NULL, 0);
        if (n_new < 0) {
            snprintf(err, errlen, "cannot tokenize the prompt");
            return 500;
        }
        if (!(new_toks = malloc(sizeof(int32_t) * (size_t)(n_new + 1)))) goto oom;
        ns_tokenize(v, text, len, false, true, new_toks, n_new);
        if (n_new > 0 && new_toks[0] == ns_vocab_bos(v)) { /* a template that wrote {{ bos_token }} */
            memmove(new_toks, new_toks + 1, sizeof(int32_t) * (size_t)(n_new - 1));
            n_new--;
        }
    }
    if (first) {
        st->first_prompt = n_new;
        if (!st->n_keep_explicit) st->n_keep = with_system ? n_new : ns_vocab_add_bos(v) ? 1 : 0;
    }
    take_num_keep(st, num_keep);

    /* too long for the context before it runs: drop the oldest history after n_keep */
    int n_ctx = ns_loaded_n_ctx(lm), n_old = st->n_tokens, total = n_old + n_new;
    int keep = resolve_keep(st, n_old), drop = 0;
    if (total >= n_ctx - 1) {
        drop = total - n_ctx / 2;
        if (drop > n_old - keep) drop = n_old - keep;
        if (drop < 0) drop = 0;
        if (total - drop >= n_ctx - 1) {
            free(new_toks);
            return too_long(total - drop, n_ctx, err, errlen);
        }
    }
    int32_t *all = malloc(sizeof(int32_t) * (size_t)(total - drop + 1));
    if (!all) goto oom;
    if (n_old > 0) {
        copy_tokens(all, st->tokens, keep);
        copy_tokens(all + keep, st->tokens + keep + drop, n_old - keep - drop);
    }
    copy_tokens(all + n_old - drop, new_toks, n_new);
    free(new_toks);
    if (total - drop == 0) {
        free(all);
        snprintf(err, errlen, "the prompt is empty");
        return 400;
    }
    if (drop > 0) {
        st->truncations++;
        publish_truncated(turn, total, total - drop, "auto");
    }
    turn->n_keep = resolve_keep(st, total - drop);
    *toks = all;
    *n_toks = total - drop;
    return 0;
oom:
    free(new_toks);
    snprintf(err, errlen, "out of memory");
    return 500;
}

/* Chat's n_keep: the tokens the system message(s) render to (the common
 * prefix of the whole rendering and the system-only one). */
static int system_prefix(ns_loaded *lm, const cJSON *messages, const char *go_template, const int32_t *toks,
                         int n_toks) {
    cJSON *sys = cJSON_CreateArray();
    const cJSON *m;
    cJSON_ArrayForEach(m, messages) if (is_role(m, "system")) cJSON_AddItemToArray(sys, cJSON_Duplicate(m, true));
    int32_t *st = NULL;
    int n = 0, keep = -1;
    char err[256];
    if (cJSON_GetArraySize(sys) > 0 && render_tokens(lm, sys, go_template, NULL, &st, &n, err, sizeof err) == 0) {
        keep = 0;
        while (keep < n && keep < n_toks && st[keep] == toks[keep]) keep++;
    }
    free(st);
    cJSON_Delete(sys);
    if (keep < 0) keep = ns_vocab_add_bos(ns_loaded_vocab(lm)) && n_toks > 0 ? 1 : 0;
    return keep;
}

int ns_session_turn_chat(ns_session_turn *turn, ns_loaded *lm, const ns_chat_msg *msgs, int n, const char *go_template,
                         const char *tools_json, int num_keep, int32_t **toks, int *n_toks, char *err, size_t errlen) {
    ns_session_state *st = &turn->st;
    if (!st->messages && !(st->messages = cJSON_CreateArray())) goto oom;
    if (cJSON_GetArraySize(st->messages) == 0 && st->system && *st->system) {
        ns_chat_msg sm = {.role = "system", .content = st->system};
        cJSON_AddItemToArray(st->messages, ns_session_msg_json(&sm));
    }
    int last_user = -1;
    for (int i = 0; i < n; i++) {
        cJSON *m = ns_session_msg_json(&msgs[i]);
        if (!m) goto oom;
        cJSON_AddItemToArray(st->messages, m);
    }
    int total = cJSON_GetArraySize(st->messages);
    for (int i = 0; i < total; i++)
        if (is_role(cJSON_GetArrayItem(st->messages, i), "user")) last_user = i;

    int n_ctx = ns_loaded_n_ctx(lm);
    int status = render_tokens(lm, st->messages, go_template, tools_json, toks, n_toks, err, errlen);
    if (status) return status;
    if (*n_toks >= n_ctx - 1) {
        int before = *n_toks;
        free(*toks);
        *toks = NULL;
        int dropped = ns_session_chat_fit(lm, st->messages, last_user, go_template, tools_json, n_ctx / 2, toks,
                                          n_toks, err, errlen);
        if (dropped < 0) {
            if (-dropped == 400) return too_long(before, n_ctx, err, errlen);
            return -dropped;
        }
        st->truncations++;
        publish_truncated(turn, before, *n_toks, "auto");
    }
    bool first = st->first_prompt == 0;
    if (first) st->first_prompt = *n_toks;
    take_num_keep(st, num_keep);
    if (!st->n_keep_explicit) st->n_keep = system_prefix(lm, st->messages, go_template, *toks, *n_toks);
    turn->n_keep = resolve_keep(st, *n_toks);
    return 0;
oom:
    snprintf(err, errlen, "out of memory");
    return 500;
}

void ns_session_turn_params(const ns_session_turn *turn, ns_gen_params *p) {
    p->session = turn->st.id;
    p->context_shift = true;
    p->n_keep = turn->n_keep;
}

void ns_session_turn_end(ns_session_turn *turn, const ns_job_stats *stats, const char *text, size_t len) {
    if (!turn->held) return;
    ns_finish f = stats->finish;
    if (f != NS_FINISH_STOP && f != NS_FINISH_LENGTH && f != NS_FINISH_CONTEXT) {
        ns_session_turn_abort(turn);
        return;
    }
    ns_session_state *st = &turn->st;
    int32_t *tokens = NULL;
    if (stats->n_context > 0 && (tokens = malloc(sizeof(int32_t) * (size_t)stats->n_context)))
        copy_tokens(tokens, stats->context, stats->n_context);
    if (tokens || stats->n_context == 0) {
        free(st->tokens);
        st->tokens = tokens;
        st->n_tokens = stats->n_context;
    }
    if (st->kind == NS_SESSION_CHAT && st->messages) {
        char *content = malloc(len + 1);
        if (content) {
            memcpy(content, text ? text : "", len);
            content[len] = '\0';
            ns_chat_msg am = {.role = "assistant", .content = content};
            cJSON_AddItemToArray(st->messages, ns_session_msg_json(&am));
            free(content);
        }
    }
    st->requests++;
    st->shifts += stats->n_shifts;
    st->last_used = ns_now_wall();
    ns_sessions_unhold(turn->table, st->id, st);
    ns_session_state_clear(st);
    turn->held = false;
}

void ns_session_turn_abort(ns_session_turn *turn) {
    if (!turn || !turn->held) return;
    ns_sessions_unhold(turn->table, turn->st.id, NULL);
    ns_session_state_clear(&turn->st);
    turn->held = false;
}
