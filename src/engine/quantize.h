/* Weight quantization, for `nstack quantize` and `nstack mkmodel`.
 *
 * Rows are encoded exactly as the reference engine's reference quantizers
 * (the ones its quantize tool uses when no importance matrix is given) do:
 * same scale/min searches, same roundings, same bit packing, so that a
 * file converted here holds the bytes the reference tool would write.
 *
 * A file conversion follows the reference quantize tool: the file type
 * ("q4_k_m", ...) gives a base tensor type, and per-tensor rules (output and
 * tied embeddings, attn_v / ffn_down in chosen layers, rows that do not fit
 * a block) pick each tensor's type; metadata is copied, general.file_type and
 * general.quantization_version are set, tensors are written in the
 * reference tool's order (non-layer tensors, then layer by layer, by name
 * within each). */
#ifndef NS_QUANTIZE_H
#define NS_QUANTIZE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "nstack/gguf.h"
#include "types.h"

/* ---- rows ---------------------------------------------------------------- */

/* True for the weight types ns_quantize_row can write: F32, F16, BF16, Q8_0,
 * Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K. */
bool ns_quantize_supported(ns_type t);

/* Encodes n floats (a whole number of t's blocks) into dst. Returns 0, or -1
 * for an unsupported type or n that is not a whole number of blocks. */
int ns_quantize_row(ns_type t, const float *src, void *dst, int64_t n);

/* nrows rows of n_per_row floats, rows spread over n_threads threads (<= 1:
 * the caller's thread only). The bytes do not depend on n_threads. */
int ns_quantize_rows(ns_type t, const float *src, void *dst, int64_t nrows, int64_t n_per_row, int n_threads);

/* The type a row of ne0 elements gets when t's block does not divide it, as
 * the reference tool falls back: Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0,
 * Q2_K / Q3_K -> Q4_0 (the reference picks IQ4_NL, a type this engine does
 * not run; Q4_0 has the same size), then F16 when even that block does not
 * divide ne0. Returns t itself when it fits. */
ns_type ns_quantize_fit_type(ns_type t, int64_t ne0, bool *fell_back);

/* ---- file types ------------------------------------------------------------ */

/* The reference engine's file type numbers (general.file_type). */
typedef enum {
    NS_FTYPE_ALL_F32 = 0,
    NS_FTYPE_F16 = 1,
    NS_FTYPE_Q4_0 = 2,
    NS_FTYPE_Q4_1 = 3,
    NS_FTYPE_Q8_0 = 7,
    NS_FTYPE_Q5_0 = 8,
    NS_FTYPE_Q5_1 = 9,
    NS_FTYPE_Q2_K = 10,
    NS_FTYPE_Q3_K_S = 11,
    NS_FTYPE_Q3_K_M = 12,
    NS_FTYPE_Q3_K_L = 13,
    NS_FTYPE_Q4_K_S = 14,
    NS_FTYPE_Q4_K_M = 15,
    NS_FTYPE_Q5_K_S = 16,
    NS_FTYPE_Q5_K_M = 17,
    NS_FTYPE_Q6_K = 18,
    NS_FTYPE_BF16 = 32,
} ns_ftype;

/* Names as the reference quantize tool takes them ("Q4_K_M", "q8_0", "F16",
 * case-insensitive; "q4_k" and "q5_k" mean the _M mixes, "q3_k" Q3_K_M, as
 * there). Returns 0, or -1 for an unknown name. */
int ns_ftype_parse(const char *name, ns_ftype *out);
const char *ns_ftype_name(ns_ftype ft);
/* The tensor type most weights get. */
ns_type ns_ftype_base_type(ns_ftype ft);
/* Every accepted name, comma separated, for usage texts. */
const char *ns_ftype_list(void);

/* ---- converting a file ----------------------------------------------------- */

typedef struct {
    const ns_gguf_tensor *src;
    char *name;           /* NUL-terminated copy of src->name */
    uint32_t n_dims;      /* dimensions without trailing 1s (at least 1) */
    ns_type type;         /* the type written */
    bool convert;         /* false: src's bytes are copied unchanged */
    bool requant;         /* converted from an already quantized type */
    bool fallback;        /* the rule's type did not fit ne[0] */
} ns_qplan_tensor;

typedef struct {
    ns_ftype ftype;
    size_t n;
    ns_qplan_tensor *t;   /* in output order */
    int n_requant;
    int n_fallback;
} ns_qplan;

/* Decides every tensor's type for file type ft. Returns 0, or -1 with err
 * (a tensor that needs converting from a type the engine cannot decode,
 * duplicate names, a split file, out of memory). */
int ns_quantize_plan(const ns_gguf *g, ns_ftype ft, ns_qplan *plan, char *err, size_t errlen);
void ns_quantize_plan_free(ns_qplan *plan);

/* Writes the converted file to path (removed again on failure). With log,
 * one progress line per tensor goes there. Returns 0, or -1 with err. */
int ns_quantize_write(const ns_gguf *g, const ns_qplan *plan, const char *path, int n_threads, FILE *log,
                      char *err, size_t errlen);

#endif
