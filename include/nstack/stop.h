/* Stop sequences for streamed text.
 *
 * Generated text is fed piece by piece (one token's bytes at a time); the
 * matcher says how many bytes are safe to show now.  Bytes that could still
 * be the start of a stop sequence are held back, so nothing is ever shown and
 * then taken back.  When a stop sequence completes, the text before it is
 * released, the stop text and anything after it are dropped, and the caller
 * stops generating.  The stop that completes first in the text wins (of
 * those ending on the same byte, the longest), so the output is the same
 * however the text was cut into pieces.  When generation ends otherwise,
 * ns_stop_flush releases what is held.
 *
 * UTF-8: released text never ends inside a multi-byte character (an
 * incomplete character at the end is held until it completes or is
 * flushed), and stop sequences are matched byte for byte, so a stop split
 * across tokens, or across the bytes of one character, is still found.
 *
 * With no stop sequences the matcher only holds incomplete characters back,
 * which is what a streaming printer needs anyway.
 */
#ifndef NSTACK_STOP_H
#define NSTACK_STOP_H

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ns_stop ns_stop;

/* Copies the n strings (NUL-terminated; empty ones are ignored).  NULL only
 * when memory runs out. */
ns_stop *ns_stop_new(const char *const *stops, int n);
void ns_stop_free(ns_stop *st);

/* Feed len bytes of generated text.  Returns how many bytes are safe to emit
 * now and points *out at them (valid until the next call on st).  Once a stop
 * sequence has completed, returns the text before it (possibly 0 bytes) and
 * every later call returns 0. */
size_t ns_stop_feed(ns_stop *st, const char *piece, size_t len, const char **out);

/* At the end of generation without a stop: everything still held back.
 * Returns 0 after a stop matched. */
size_t ns_stop_flush(ns_stop *st, const char **out);

/* True once a stop sequence completed; ns_stop_which says which one (its
 * index among the strings given to ns_stop_new, or -1). */
bool ns_stop_hit(const ns_stop *st);
int ns_stop_which(const ns_stop *st);

/* Bytes currently held back. */
size_t ns_stop_held(const ns_stop *st);

/* Start a new text with the same stop sequences. */
void ns_stop_reset(ns_stop *st);

#ifdef __cplusplus
}
#endif
#endif
