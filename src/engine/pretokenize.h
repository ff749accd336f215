/* Pre-tokenizers of byte-level BPE vocabularies: the text is cut into
 * words by the regular expressions the reference engine (llama.cpp) uses
 * for each tokenizer.ggml.pre value, applied one after the other (each one
 * splits every piece the previous ones made; text between two matches is a
 * piece of its own). Internal to the engine; see pretokenize.c. */
#ifndef NSTACK_PRETOKENIZE_H
#define NSTACK_PRETOKENIZE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ns_pretok ns_pretok;

/* What a pre-tokenizer name implies besides its regexes (the reference's
 * per-name settings). */
enum {
    NS_PRETOK_IGNORE_MERGES = 1,  /* a word that is a token is taken whole */
    NS_PRETOK_ADD_BOS = 2,        /* BOS added by default (llama3, tekken, chameleon) */
    NS_PRETOK_NO_BOS = 4,         /* no BOS id by default (chatglm-bpe) */
};

/* A piece of the text: byte offset and length. */
typedef struct {
    size_t off, len;
} ns_span;

/* Buffers one tokenization reuses (one per call or per thread). */
typedef struct {
    ns_span *cur, *nxt;
    size_t cur_cap, nxt_cap;
    void *md;  /* pcre2_match_data */
} ns_pretok_scratch;

/* The pre-tokenizer named name (the value of tokenizer.ggml.pre; NULL when
 * the key is absent, which selects "default" as the reference does). NULL
 * and a message naming the value in err when the name is unknown or a
 * regex does not compile. */
ns_pretok *ns_pretok_new(const char *name, char *err, size_t errlen);
void ns_pretok_free(ns_pretok *p);

unsigned ns_pretok_flags(const ns_pretok *p);
/* The name it was made from ("default" when the key was absent). */
const char *ns_pretok_name(const ns_pretok *p);

/* Splits text[0..len) into pieces. The text must be valid UTF-8 without
 * surrogates (ns_bpe normalizes it first). On success *out points at *n
 * spans inside s, in order, covering the whole text; false on failure
 * (out of memory, or a regex engine error). */
bool ns_pretok_split(const ns_pretok *p, ns_pretok_scratch *s, const char *text, size_t len, const ns_span **out,
                     size_t *n);
void ns_pretok_scratch_free(ns_pretok_scratch *s);

/* The i-th name ns_pretok_new accepts; NULL past the last. */
const char *ns_pretok_known(size_t i);

#endif
