#include "generate.h"

#include <stdlib.h>
#include <string.h>

int tokvec_push(tokvec *v, int32_t id) {
    if (v->n == v->cap) {
        int cap = v->cap ? v->cap * 2 : 256;
        int32_t *n = realloc(v->ids, sizeof(int32_t) * (size_t)cap);
        if (!n) return -1;
        v->ids = n;
        v->cap = cap;
    }
    v->ids[v->n++] = id;
    return 0;
}

void tokvec_free(tokvec *v) {
    free(v->ids);
    memset(v, 0, sizeof *v);
}

static int append_text(char **text, size_t *len, const char *p, size_t n) {
    if (!text || n == 0) return 0;
    char *t = realloc(*text, *len + n + 1);
    if (!t) return -1;
    memcpy(t + *len, p, n);
    *len += n;
    t[*len] = 0;
    *text = t;
    return 0;
}

static void emit(FILE *out, char **text, size_t *len, const char *p, size_t n) {
    fwrite(p, 1, n, out);
    fflush(out);
    append_text(text, len, p, n);
}

int cli_generate(ns_context *c, const ns_vocab *v, ns_sampler *s, ns_stop *stop, long long n_predict, bool prev_bos,
                 FILE *out, char **text, tokvec *decoded, gen_result *res, char *err, size_t errlen) {
    memset(res, 0, sizeof *res);
    size_t text_len = text && *text ? strlen(*text) : 0;
    const int n_ctx = ns_context_n_ctx(c);
    const char *chunk;
    size_t n_chunk;
    int rc = 0;
    while (n_predict < 0 || res->n_gen < n_predict) {
        int32_t tok = ns_sampler_sample(s, ns_context_logits(c, -1));
        if (tok < 0) {
            fprintf(stderr, "\nnstack: no token can be sampled (every logit is -inf after --logit-bias); stopping\n");
            break;
        }
        ns_sampler_accept(s, tok);
        res->n_gen++;
        if (ns_vocab_is_eog(v, tok)) break;
        char piece[256];
        int len = ns_token_to_piece(v, tok, false, piece, sizeof piece);
        if (len > 0) {
            int skip = (prev_bos && piece[0] == ' ') ? 1 : 0; /* SentencePiece's dummy prefix */
            /* held back: an incomplete UTF-8 character, and text that may
             * still become a stop sequence */
            n_chunk = ns_stop_feed(stop, piece + skip, (size_t)(len - skip), &chunk);
            emit(out, text, &text_len, chunk, n_chunk);
            if (ns_stop_hit(stop)) break;
        }
        prev_bos = false;
        if (n_predict >= 0 && res->n_gen >= n_predict) break;
        if (ns_seq_len(c, 0) >= n_ctx) {
            res->context_full = true;
            break;
        }
        if (ns_decode(c, 0, &tok, 1, false, err, errlen) != 0) {
            rc = -1;
            break;
        }
        if (decoded) tokvec_push(decoded, tok);
    }
    n_chunk = ns_stop_flush(stop, &chunk);
    emit(out, text, &text_len, chunk, n_chunk);
    return rc;
}
