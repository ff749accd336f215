/* Named sessions held by the server (docs/sessions.md): a conversation's
 * token history (what the model saw), for chat also its messages, and the
 * settings that steer its context (n_keep). The KV cache of a session
 * lives in the runtime (a slot tagged with the session id, runtime.h).
 *
 * The table is bounded and thread-safe. A session is used by one request
 * at a time: a request "holds" it (busy), works on a private copy of its
 * state, and on release either commits the changed copy or leaves the
 * session as it was (an error, a cancel, a timeout). A held session cannot
 * be deleted, cleared or held again (409).
 *
 * A request's turn (ns_session_turn_*) is that hold plus what /api/generate,
 * /api/chat and the OpenAI routes need: the prompt tokens (the session's
 * history and the new text), n_keep, the automatic truncation of a history
 * that no longer fits, and the commit of the job's context. */
#ifndef NS_SERVER_SESSIONS_H
#define NS_SERVER_SESSIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "http.h"
#include "nstack/chat.h"
#include "runtime/events.h"
#include "runtime/runtime.h"

#define NS_SESSIONS_MAX 4096
#define NS_SESSION_ID_MAX 64

typedef enum { NS_SESSION_NEW = 0, NS_SESSION_GENERATE, NS_SESSION_CHAT } ns_session_kind;

/* A session's state; as a copy, owned by whoever holds it. */
typedef struct {
    char id[NS_SESSION_ID_MAX + 1];
    char model[256];        /* the model's display name (ns_model_ref.name) */
    ns_session_kind kind;   /* set by the first request */
    int32_t *tokens;        /* malloc'd */
    int n_tokens;
    cJSON *messages;        /* chat: an array of {"role","content",...}; NULL otherwise */
    char *system;           /* from POST /api/sessions, used by the first request; may be NULL */
    int n_keep;             /* -1: all of the first prompt; NS_N_KEEP_UNSET (options.h): not known yet */
    bool n_keep_explicit;   /* given as num_keep: not recomputed */
    int first_prompt;       /* tokens of the first request's prompt (0: none yet) */
    int64_t created, last_used; /* wall ns */
    int requests, shifts, truncations;
    int n_ctx;              /* the model's context when last used (0: never) */
    int64_t kv_per_token;   /* KV bytes per token of the model when last used */
    bool busy;
} ns_session_state;

void ns_session_state_clear(ns_session_state *st);
/* A deep copy; 0 or -1 (out of memory). */
int ns_session_state_copy(ns_session_state *dst, const ns_session_state *src);

typedef struct ns_sessions ns_sessions;

/* events may be NULL; max 0: NS_SESSIONS_MAX. */
ns_sessions *ns_sessions_new(ns_events *events, int max);
void ns_sessions_free(ns_sessions *t);

/* Session ids: ns_snapshot_name_ok and not "snapshots" (a path of the API). */
bool ns_session_id_ok(const char *id);
/* A random id ("s-" and 16 hex digits). */
void ns_session_new_id(char *out, size_t outlen);

/* The session a request names: body "session" or the X-Session-Id header
 * (both given and different: 400; a bad id: 400). 0 with *id NULL when
 * none, or the id (pointing into body or the header); else 400 and err. */
int ns_session_id_of(ns_http_req *r, const cJSON *body, const char **id, char *err, size_t errlen);

/* Holds a session (marks it busy) and copies its state into *st. With
 * create (model non-NULL) an unknown id is created bound to model
 * (*created set). model non-NULL also checks the binding. 0, or a status
 * with err: 404 unknown, 409 busy or another model, 503 table full. */
int ns_sessions_hold(ns_sessions *t, const char *id, const char *model, bool create, const char *request_id,
                     ns_session_state *st, bool *created, char *err, size_t errlen);
/* Ends a hold. commit non-NULL: the session takes commit's content (a
 * copy); NULL: unchanged. */
void ns_sessions_unhold(ns_sessions *t, const char *id, const ns_session_state *commit);

/* Adds a session with st's content (taken: st is cleared). replace: an
 * existing, not busy session is replaced. 0, or 409 (exists / busy), 503
 * (full) with err. */
int ns_sessions_put(ns_sessions *t, ns_session_state *st, bool replace, char *err, size_t errlen);
/* 0, or 404 / 409 (busy) with err. */
int ns_sessions_delete(ns_sessions *t, const char *id, char *err, size_t errlen);
/* A copy of a session's state (busy or not); 0 or 404. */
int ns_sessions_get(ns_sessions *t, const char *id, ns_session_state *st, char *err, size_t errlen);
/* Copies of every session, in creation order; *out malloc'd (clear each). */
int ns_sessions_list(ns_sessions *t, ns_session_state **out, int *n);

/* Publishes a session or snapshot event (detail: a JSON object text). */
void ns_sessions_publish(ns_sessions *t, ns_event_kind kind, const char *model, const char *request_id,
                         const char *detail_json);

/* The info object GET /api/sessions shows; loaded: the model's context
 * (max_tokens) and kv_bytes are known only while it is loaded. full adds
 * "context" and "messages_list". */
cJSON *ns_session_info_json(const ns_session_state *st, bool loaded, int n_ctx, bool full);

/* KV bytes per token of a loaded model (keys and values of every layer). */
int64_t ns_session_kv_per_token(const ns_loaded *lm);

/* The messages as ns_chat_msg (pointing into the array's strings); *out
 * malloc'd with room for extra more. Returns the count, or -1. */
int ns_session_msgs_view(const cJSON *messages, ns_chat_msg **out, int extra);
/* One message as stored. */
cJSON *ns_session_msg_json(const ns_chat_msg *m);

/* Chat truncation: drops the oldest non-system messages (a user message
 * with the assistant answer after it) until the rendering is at most
 * target tokens; never a message at or after index keep_from (-1: none
 * protected). *messages changes; *toks and *n_toks get the last rendering's
 * tokens (malloc'd). Returns how many messages were dropped, or -status
 * with err when the rendering fails or cannot get down to target. */
int ns_session_chat_fit(ns_loaded *lm, cJSON *messages, int keep_from, const char *go_template,
                        const char *tools_json, int target, int32_t **toks, int *n_toks, char *err, size_t errlen);

/* ---- one request's turn ---- */

typedef struct {
    ns_sessions *table;
    char request_id[48];
    ns_session_state st; /* the held copy, changed by the turn */
    bool held;
    int n_keep;          /* for ns_gen_params.n_keep */
} ns_session_turn;

/* Holds session id for a generation on lm (created on first use). 0 or a
 * status with err (409 busy / another model / a chat session used for
 * completion or the reverse, 503 too many sessions). */
int ns_session_turn_begin(ns_sessions *t, const char *id, ns_loaded *lm, ns_session_kind kind,
                          const char *request_id, ns_session_turn *turn, char *err, size_t errlen);
/* Generate: the system prompt the session was created with, for its first
 * request only (NULL otherwise). */
const char *ns_session_turn_system(const ns_session_turn *turn);
/* Generate: the session's tokens, then text's tokens (no second BOS; an
 * empty session starts as ns_prompt_tokenize does). with_system: the
 * prompt had a system prompt (n_keep of a first prompt). num_keep: the
 * request's options.num_keep or NS_N_KEEP_UNSET. *toks malloc'd. 0 or a
 * status with err. */
int ns_session_turn_generate(ns_session_turn *turn, ns_loaded *lm, const char *text, bool with_system, int num_keep,
                             int32_t **toks, int *n_toks, char *err, size_t errlen);
/* Chat: the session's messages and the new ones, rendered as ns_prompt_render
 * does and tokenized. 0 or a status with err. */
int ns_session_turn_chat(ns_session_turn *turn, ns_loaded *lm, const ns_chat_msg *msgs, int n, const char *go_template,
                         const char *tools_json, int num_keep, int32_t **toks, int *n_toks, char *err, size_t errlen);
/* Fills the session fields of a job's params (session, context_shift, n_keep). */
void ns_session_turn_params(const ns_session_turn *turn, ns_gen_params *p);
/* The job is over: a stop, length or context finish commits (the session's
 * tokens become stats->context; chat appends the assistant's text); any
 * other finish leaves the session unchanged. Releases the hold. */
void ns_session_turn_end(ns_session_turn *turn, const ns_job_stats *stats, const char *text, size_t len);
/* Releases the hold with the session unchanged (safe to call twice). */
void ns_session_turn_abort(ns_session_turn *turn);

#endif
