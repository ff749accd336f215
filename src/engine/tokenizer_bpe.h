/* Byte-level BPE (tokenizer.ggml.model = "gpt2"): what tokenizer.c and
 * tokenizer_bpe.c share. Internal to the engine. */
#ifndef NSTACK_TOKENIZER_BPE_H
#define NSTACK_TOKENIZER_BPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nstack/gguf.h"
#include "nstack/tokenizer.h"
#include "pretokenize.h"

/* Output ids: at most max are written, count is the total. */
typedef struct {
    int32_t *out;
    int max;
    size_t count;
} ns_tokbuf;

static inline void ns_tokbuf_push(ns_tokbuf *o, int32_t tok) {
    if (o->count < (size_t)o->max) o->out[o->count] = tok;
    o->count++;
}

/* The id of the token whose text is exactly s[0..n), or -1 (tokenizer.c). */
int32_t ns_vocab_lookup(const ns_vocab *v, const char *s, size_t n);

typedef struct ns_bpe ns_bpe;

/* Reads tokenizer.ggml.merges and tokenizer.ggml.pre. NULL + err when the
 * merges are missing or malformed, or the pre-tokenizer is unknown. */
ns_bpe *ns_bpe_load(const ns_gguf *g, char *err, size_t errlen);
void ns_bpe_free(ns_bpe *b);
/* NS_PRETOK_* flags of its pre-tokenizer. */
unsigned ns_bpe_flags(const ns_bpe *b);
const char *ns_bpe_pre_name(const ns_bpe *b);
int32_t ns_bpe_n_merges(const ns_bpe *b);

/* Scratch buffers of one tokenization; zero-initialize, free after. */
typedef struct {
    char *norm, *subj, *word;
    size_t norm_cap, subj_cap, word_cap;
    void *sym, *heap;
    size_t sym_cap, heap_cap, heap_n;
    ns_pretok_scratch ps;
} ns_bpe_session;

/* Tokenizes one fragment of raw text (no special tokens in it): normalizes
 * it to UTF-8 as the reference does (an invalid byte becomes U+FFFD),
 * pre-tokenizes it, maps each word's bytes to the GPT-2 byte alphabet and
 * merges by rank. False on failure (out of memory, regex engine error). */
bool ns_bpe_tokenize(const ns_vocab *v, const ns_bpe *b, ns_bpe_session *s, const char *text, size_t len,
                     ns_tokbuf *o);
void ns_bpe_session_free(ns_bpe_session *s);

/* The bytes a token's text stands for in the byte-level alphabet: writes
 * up to buflen of them into buf and returns how many there are. A
 * character outside the alphabet gives "[UNK_BYTE_0x<hex>" + text + "]",
 * as in the reference. */
int ns_bpe_decode(const char *t, size_t n, char *buf, int buflen);

#endif
