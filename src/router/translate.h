/* Translation between the router's front APIs and an upstream's. nstack and
 * Ollama upstreams speak both APIs, so requests pass through with only the
 * model name replaced; an `openai` upstream (vLLM, llama.cpp server, LM
 * Studio) speaks only OpenAI's, so an Ollama-API request to it is
 * translated, and its answer translated back: a JSON body, or a stream of
 * Server-Sent Events turned into Ollama's NDJSON lines as they arrive.
 *
 * Pure functions over cJSON and byte buffers: no I/O, no clock (times are
 * passed in), so every mapping is unit-tested. */
#ifndef NS_ROUTER_TRANSLATE_H
#define NS_ROUTER_TRANSLATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

typedef enum {
    NS_FRONT_OPENAI_CHAT,        /* POST /v1/chat/completions */
    NS_FRONT_OPENAI_COMPLETIONS, /* POST /v1/completions */
    NS_FRONT_OLLAMA_CHAT,        /* POST /api/chat */
    NS_FRONT_OLLAMA_GENERATE     /* POST /api/generate */
} ns_front_api;

/* The text the policy looks at: the prompt, or the messages' contents
 * joined with newlines (string contents and the text parts of arrays).
 * malloc'd; NULL when the body has neither (or out of memory). */
char *ns_tr_prompt_text(const cJSON *body, ns_front_api api);

/* Removes every occurrence of tag from the prompt / message contents (the
 * force tag must not reach the model). Returns how many were removed. */
int ns_tr_strip_tag(cJSON *body, ns_front_api api, const char *tag);

/* An Ollama-API request (/api/chat or /api/generate) as an OpenAI one
 * (/v1/chat/completions or /v1/completions) for `model`: messages or
 * prompt (+ system, as a first system message for chat; prepended for
 * generate), stream, options.temperature / top_p / seed / stop /
 * num_predict (max_tokens) / presence_penalty / frequency_penalty,
 * format "json" (response_format json_object), and for streams
 * stream_options.include_usage so the last line can carry the counts.
 * Fields OpenAI has no room for (raw, context, keep_alive, images,
 * options.top_k ...) are dropped; *dropped lists them ("raw, top_k") when
 * non-NULL (malloc'd, "" when none). NULL with err when the request is not
 * an object or has no messages / prompt. */
cJSON *ns_tr_ollama_to_openai(const cJSON *req, ns_front_api api, const char *model, char **dropped, char *err,
                              size_t errlen);

/* A non-streaming OpenAI answer as Ollama's: message.content (chat) or
 * response (generate), done true, done_reason from finish_reason (stop /
 * length), prompt_eval_count / eval_count from usage, total_duration from
 * total_ns, created_at from now_ns (RFC 3339), model = front_model. NULL
 * with err when it is not an OpenAI completion. */
cJSON *ns_tr_openai_to_ollama(const cJSON *resp, ns_front_api api, const char *front_model, int64_t now_ns,
                              int64_t total_ns, char *err, size_t errlen);

/* Streaming OpenAI -> Ollama. Feed the upstream's bytes as they come, in
 * any split; each call appends complete NDJSON lines to *out (grown with
 * realloc; *out_len updated). Lines: {"model","created_at","message":
 * {"role":"assistant","content":"..."},"done":false} (chat) or
 * {"model","created_at","response":"...","done":false} (generate), one per
 * delta with text; at "data: [DONE]" (or ns_tr_stream_finish) the last
 * line with done true, done_reason and the usage counts if any chunk had
 * them. An upstream error object becomes {"error":"..."} and ends the
 * stream. Returns 0, or -1 on malformed input (err set; the caller ends the
 * stream with an error line). */
typedef struct ns_tr_stream ns_tr_stream;
ns_tr_stream *ns_tr_stream_new(ns_front_api api, const char *front_model);
/* Added: the wall time (ns) the request started, so that the done line
 * written at "data: [DONE]" can carry total_duration (now_ns - start_ns);
 * without it that line has no total_duration. Call before the first feed.
 *
 * Details of the stream translator:
 * - An upstream that answers with one JSON body instead of SSE (first
 *   non-space byte '{') is read whole: an error object becomes the
 *   {"error":"..."} line, a complete (non-streamed) completion becomes a
 *   single done line carrying all the text.
 * - SSE error chunks (data: {"error":...} or {"object":"error",...}) also
 *   become the error line and end the stream.
 * - After -1 from feed, later feeds return -1 with the same err and finish
 *   writes nothing: the caller writes the error line.
 * - Only choices[0] is read (Ollama has no n). */
void ns_tr_stream_set_start(ns_tr_stream *s, int64_t start_ns);
int ns_tr_stream_feed(ns_tr_stream *s, const char *data, size_t len, int64_t now_ns, char **out, size_t *out_len,
                      size_t *out_cap, char *err, size_t errlen);
/* The upstream ended: appends the done line if [DONE] never came. Call it
 * when the upstream closed its body normally (on a transport error, end the
 * stream with your own error line instead). A last line without its line
 * end still counts. It writes an error line instead of the done line when
 * the tail was malformed, when a JSON body was cut short, or when no SSE
 * event came at all. Returns 0, or -1 when out of memory. Nothing is
 * written when the stream is already done or feed failed. */
int ns_tr_stream_finish(ns_tr_stream *s, int64_t now_ns, int64_t total_ns, char **out, size_t *out_len,
                        size_t *out_cap);
bool ns_tr_stream_done(const ns_tr_stream *s); /* the done (or error) line was written */
void ns_tr_stream_free(ns_tr_stream *s);

#endif
