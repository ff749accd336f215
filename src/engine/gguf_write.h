/* Builds GGUF v3 files: used by `nstack mkmodel` and by tests that need
 * well-formed (and deliberately broken) files. */
#ifndef NS_GGUF_WRITE_H
#define NS_GGUF_WRITE_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

typedef struct ns_gguf_writer ns_gguf_writer;

ns_gguf_writer *ns_gguf_writer_new(void);
void ns_gguf_writer_free(ns_gguf_writer *w);

/* Metadata; keys and strings are copied. Return 0, or -1 on allocation failure. */
int ns_gguf_w_u32(ns_gguf_writer *w, const char *key, uint32_t v);
int ns_gguf_w_i32(ns_gguf_writer *w, const char *key, int32_t v);
int ns_gguf_w_f32(ns_gguf_writer *w, const char *key, float v);
int ns_gguf_w_bool(ns_gguf_writer *w, const char *key, bool v);
int ns_gguf_w_str(ns_gguf_writer *w, const char *key, const char *v);
int ns_gguf_w_arr_str(ns_gguf_writer *w, const char *key, const char *const *v, uint64_t n);
int ns_gguf_w_arr_f32(ns_gguf_writer *w, const char *key, const float *v, uint64_t n);
int ns_gguf_w_arr_i32(ns_gguf_writer *w, const char *key, const int32_t *v, uint64_t n);

/* The other value types, for tests that need every GGUF type. */
int ns_gguf_w_u8(ns_gguf_writer *w, const char *key, uint8_t v);
int ns_gguf_w_i8(ns_gguf_writer *w, const char *key, int8_t v);
int ns_gguf_w_u16(ns_gguf_writer *w, const char *key, uint16_t v);
int ns_gguf_w_i16(ns_gguf_writer *w, const char *key, int16_t v);
int ns_gguf_w_u64(ns_gguf_writer *w, const char *key, uint64_t v);
int ns_gguf_w_i64(ns_gguf_writer *w, const char *key, int64_t v);
int ns_gguf_w_f64(ns_gguf_writer *w, const char *key, double v);
/* An array of n packed elements of fixed-size type elem_type (NS_GGUF_*,
 * not STRING or ARRAY), in host order (files are little-endian). */
int ns_gguf_w_arr(ns_gguf_writer *w, const char *key, uint32_t elem_type, const void *v, uint64_t n);

/* A tensor of ns_type `type` and shape ne[0..n_dims-1]; data (row_size *
 * rows bytes) is copied; NULL writes zeros. Returns -1 also for an unknown
 * type, n_dims outside 1..4, a dimension <= 0, or ne[0] not a multiple of the
 * type's block size. Names and keys are not checked for duplicates (tests
 * build broken files with them). */
int ns_gguf_w_tensor(ns_gguf_writer *w, const char *name, uint32_t type,
                     uint32_t n_dims, const int64_t *ne, const void *data);

/* Serialize (alignment 32, or the value of a "general.alignment" UINT32 key
 * when it is a power of two). ns_gguf_w_to_file streams to the file. */
int ns_gguf_w_to_mem(const ns_gguf_writer *w, uint8_t **out, size_t *size);
int ns_gguf_w_to_file(const ns_gguf_writer *w, const char *path, char *err, size_t errlen);

#endif
