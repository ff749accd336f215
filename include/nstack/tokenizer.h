/* Text <-> token ids with the vocabulary stored in a GGUF file. */
#ifndef NSTACK_TOKENIZER_H
#define NSTACK_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#include "gguf.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ns_vocab ns_vocab;

/* Token types as GGUF stores them in tokenizer.ggml.token_type. */
enum {
    NS_TOKEN_NORMAL = 1,
    NS_TOKEN_UNKNOWN = 2,
    NS_TOKEN_CONTROL = 3,
    NS_TOKEN_USER_DEFINED = 4,
    NS_TOKEN_UNUSED = 5,
    NS_TOKEN_BYTE = 6,
};

/* Reads tokenizer.ggml.* from g (which may hold no tensors). The vocab
 * copies what it needs: g may be closed afterwards. NULL + err on failure
 * (unknown tokenizer model, missing or inconsistent arrays, an unknown
 * tokenizer.ggml.pre). tokenizer.ggml.model "llama" is SentencePiece,
 * "gpt2" byte-level BPE with its merges and the pre-tokenizer named by
 * tokenizer.ggml.pre (absent: "default", with a warning on stderr, as the
 * reference engine does). */
ns_vocab *ns_vocab_load(const ns_gguf *g, char *err, size_t errlen);
void ns_vocab_free(ns_vocab *v);

int32_t ns_vocab_size(const ns_vocab *v);
int32_t ns_vocab_bos(const ns_vocab *v);   /* -1 if none */
int32_t ns_vocab_eos(const ns_vocab *v);   /* -1 if none */
bool ns_vocab_add_bos(const ns_vocab *v);  /* the file's rule */
bool ns_vocab_add_eos(const ns_vocab *v);
/* End of generation: EOS, EOT, or another token the file marks as ending a turn. */
bool ns_vocab_is_eog(const ns_vocab *v, int32_t tok);
int ns_vocab_token_type(const ns_vocab *v, int32_t tok);
int32_t ns_vocab_unk(const ns_vocab *v);   /* -1 if none */
/* The token's text as the vocabulary stores it (SentencePiece pieces keep
 * their U+2581), NUL-terminated; NULL for an id out of range. */
const char *ns_vocab_token_text(const ns_vocab *v, int32_t tok);

/* Tokenize len bytes of text. add_bos: prepend BOS when the vocab has one
 * (callers pass ns_vocab_add_bos() for the file's rule). parse_special:
 * control/user-defined token texts found in the input become those tokens.
 * Writes at most max ids; returns the total count needed, or -1 on error. */
int ns_tokenize(const ns_vocab *v, const char *text, size_t len, bool add_bos,
                bool parse_special, int32_t *out, int max);

/* The bytes token tok stands for (byte tokens decode to their byte, the
 * SentencePiece space mark to ' ', a byte-level BPE token to its raw bytes,
 * which may be part of a UTF-8 character: callers that print pieces as they
 * come hold back an incomplete character). Control tokens give "" unless
 * special.
 * Returns the length written (not NUL-terminated), or -needed if buf is too
 * small, or INT32_MIN for an id out of range. */
int ns_token_to_piece(const ns_vocab *v, int32_t tok, bool special, char *buf, int buflen);

/* Detokenize a whole sequence; handles the leading-space rule of
 * SentencePiece (a leading space after BOS is dropped). Byte-level BPE
 * gives the exact bytes back (no clean-up of spaces before punctuation).
 * Returns a malloc'd NUL-terminated string. */
char *ns_detokenize(const ns_vocab *v, const int32_t *toks, int n, bool special);

#ifdef __cplusplus
}
#endif
#endif
