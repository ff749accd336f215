/* JSON mode (Ollama's format: "json", OpenAI's response_format json_object):
 * at each step, tokens whose text cannot continue a valid JSON text are
 * masked out, so the output is one JSON value (an object when
 * require_object), then end of generation.
 *
 * The check is a byte-level pushdown automaton over the JSON grammar
 * (RFC 8259, UTF-8 validated, nesting up to 64 levels). Once the value is
 * complete only end-of-generation tokens remain possible. Leading and
 * between-token whitespace is allowed but capped (at most 16 whitespace bytes
 * in a row) so a model cannot loop on spaces. */
#ifndef NS_RUNTIME_JSON_CONSTRAINT_H
#define NS_RUNTIME_JSON_CONSTRAINT_H

#include <stdbool.h>
#include <stdint.h>

#include "nstack/tokenizer.h"

typedef struct ns_json_constraint ns_json_constraint;

/* The vocab must outlive the constraint. NULL when memory runs out. */
ns_json_constraint *ns_json_constraint_new(const ns_vocab *v, bool require_object);
void ns_json_constraint_free(ns_json_constraint *c);

/* Sets logits[t] = -INFINITY for every token t that cannot come next
 * (n_vocab entries). End-of-generation tokens stay possible only once the
 * value is complete. */
void ns_json_constraint_mask(ns_json_constraint *c, float *logits, int n_vocab);

/* Advances over token tok (which the mask allowed). */
void ns_json_constraint_accept(ns_json_constraint *c, int32_t tok);

/* The value is complete (only end of generation may follow). */
bool ns_json_constraint_complete(const ns_json_constraint *c);

#endif
