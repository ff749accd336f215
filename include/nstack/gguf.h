/* GGUF v2/v3 reader: the file is memory-mapped and validated whole before
 * anything is returned, so every pointer handed out lies inside the map. */
#ifndef NSTACK_GGUF_H
#define NSTACK_GGUF_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

enum {
    NS_GGUF_UINT8 = 0,
    NS_GGUF_INT8 = 1,
    NS_GGUF_UINT16 = 2,
    NS_GGUF_INT16 = 3,
    NS_GGUF_UINT32 = 4,
    NS_GGUF_INT32 = 5,
    NS_GGUF_FLOAT32 = 6,
    NS_GGUF_BOOL = 7,
    NS_GGUF_STRING = 8,
    NS_GGUF_ARRAY = 9,
    NS_GGUF_UINT64 = 10,
    NS_GGUF_INT64 = 11,
    NS_GGUF_FLOAT64 = 12,
};

#define NS_GGUF_MAX_DIMS 4

/* A string inside the file: not NUL-terminated. */
typedef struct {
    const char *ptr;
    uint64_t len;
} ns_gguf_str;

typedef struct {
    ns_gguf_str key;
    uint32_t type;          /* NS_GGUF_* */
    union {
        uint64_t u64;       /* every unsigned integer type and bool */
        int64_t i64;        /* every signed integer type */
        double f64;         /* FLOAT32 and FLOAT64 */
        ns_gguf_str str;
    } v;
    /* arrays (type == NS_GGUF_ARRAY) */
    uint32_t arr_type;      /* element type; nested arrays are rejected */
    uint64_t arr_n;
    const void *arr_data;   /* the packed elements, for fixed-size types */
    ns_gguf_str *arr_str;   /* arr_n strings, for string arrays (owned by the file) */
} ns_gguf_kv;

typedef struct {
    ns_gguf_str name;
    uint32_t n_dims;
    int64_t ne[NS_GGUF_MAX_DIMS]; /* unused dims are 1; ne[0] is the row length */
    uint32_t type;                /* ns_type id */
    uint64_t offset;              /* relative to the data section */
    const void *data;             /* inside the map */
    uint64_t nbytes;
} ns_gguf_tensor;

typedef struct ns_gguf {
    const uint8_t *base;     /* whole file */
    size_t size;
    bool mapped;             /* base was mmap'd (else borrowed by ns_gguf_parse) */
    uint32_t version;
    uint64_t n_kv;
    ns_gguf_kv *kv;
    uint64_t n_tensors;
    ns_gguf_tensor *tensors;
    uint64_t alignment;
    uint64_t data_offset;    /* start of the tensor data section */
} ns_gguf;

/* Open and validate path. On failure returns NULL and writes one message
 * naming the file, the field and the reason into err. */
ns_gguf *ns_gguf_open(const char *path, char *err, size_t errlen);

/* How the file's bytes reach memory: mapped (shared with the page cache,
 * opens instantly) or read into fresh private memory (use_mmap=false in
 * Ollama's options, -mmp 0 in llama-bench). Either way `mapped` is true and
 * ns_gguf_close releases it. */
typedef enum { NS_GGUF_MMAP = 0, NS_GGUF_READ = 1 } ns_gguf_load;
ns_gguf *ns_gguf_open_ex(const char *path, ns_gguf_load how, char *err, size_t errlen);

/* Validate an in-memory image; buf must outlive the result. */
ns_gguf *ns_gguf_parse(const void *buf, size_t size, char *err, size_t errlen);

void ns_gguf_close(ns_gguf *g);

const ns_gguf_kv *ns_gguf_find(const ns_gguf *g, const char *key);
const ns_gguf_tensor *ns_gguf_find_tensor(const ns_gguf *g, const char *name);

/* Typed getters: return false when absent or not convertible (integers
 * convert between widths when the value fits; floats accept any number). */
bool ns_gguf_get_u32(const ns_gguf *g, const char *key, uint32_t *out);
bool ns_gguf_get_i64(const ns_gguf *g, const char *key, int64_t *out);
bool ns_gguf_get_f32(const ns_gguf *g, const char *key, float *out);
bool ns_gguf_get_bool(const ns_gguf *g, const char *key, bool *out);
/* Returns a malloc'd NUL-terminated copy, or NULL. */
char *ns_gguf_get_str(const ns_gguf *g, const char *key);

/* Element i of a numeric array as a double / int64 (false when out of range
 * or not numeric). */
bool ns_gguf_arr_f64(const ns_gguf_kv *kv, uint64_t i, double *out);
bool ns_gguf_arr_i64(const ns_gguf_kv *kv, uint64_t i, int64_t *out);

/* Compare a file string with a C string. */
bool ns_gguf_str_eq(ns_gguf_str s, const char *c);

#ifdef __cplusplus
}
#endif
#endif
