/* GGUF v3 writer. Metadata is kept serialized (one byte blob per key/value
 * pair), tensor data is copied; serializing walks the same layout either into
 * one buffer or streamed to a file. */
#include "gguf_write.h"

#include "nstack/gguf.h"
#include "types.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define W_DEFAULT_ALIGNMENT 32u

typedef struct {
    uint8_t *blob;          /* key length, key, type, value: as in the file */
    size_t len;
    bool is_alignment;      /* "general.alignment" with a UINT32 value */
    uint32_t u32;
} w_kv;

typedef struct {
    char *name;
    uint32_t type;
    uint32_t n_dims;
    int64_t ne[NS_GGUF_MAX_DIMS];
    uint8_t *data;          /* NULL: zeros */
    uint64_t nbytes;
} w_tensor;

struct ns_gguf_writer {
    w_kv *kv;
    size_t n_kv, cap_kv;
    w_tensor *t;
    size_t n_t, cap_t;
};

/* ------------------------------------------------------------------ */
/* byte buffers */

typedef struct {
    uint8_t *p;
    size_t len, cap;
    bool oom;
} bbuf;

static void bb_put(bbuf *b, const void *src, size_t n) {
    if (b->oom) return;
    if (n > SIZE_MAX - b->len) { b->oom = true; return; }
    if (b->len + n > b->cap) {
        size_t c = b->cap ? b->cap : 64;
        while (c < b->len + n) {
            if (c > SIZE_MAX / 2) { c = b->len + n; break; }
            c *= 2;
        }
        uint8_t *q = realloc(b->p, c);
        if (!q) { b->oom = true; return; }
        b->p = q;
        b->cap = c;
    }
    if (n) memcpy(b->p + b->len, src, n);
    b->len += n;
}

static void put_le(uint8_t *dst, uint64_t v, int n) {
    for (int i = 0; i < n; i++) dst[i] = (uint8_t)(v >> (8 * i));
}

static void bb_u32(bbuf *b, uint32_t v) { uint8_t x[4]; put_le(x, v, 4); bb_put(b, x, 4); }
static void bb_u64(bbuf *b, uint64_t v) { uint8_t x[8]; put_le(x, v, 8); bb_put(b, x, 8); }
static void bb_str(bbuf *b, const char *s, size_t n) { bb_u64(b, n); bb_put(b, s, n); }

/* ------------------------------------------------------------------ */

ns_gguf_writer *ns_gguf_writer_new(void) { return calloc(1, sizeof(ns_gguf_writer)); }

void ns_gguf_writer_free(ns_gguf_writer *w) {
    if (!w) return;
    for (size_t i = 0; i < w->n_kv; i++) free(w->kv[i].blob);
    for (size_t i = 0; i < w->n_t; i++) {
        free(w->t[i].name);
        free(w->t[i].data);
    }
    free(w->kv);
    free(w->t);
    free(w);
}

static int elem_size(uint32_t t) {
    switch (t) {
    case NS_GGUF_UINT8: case NS_GGUF_INT8: case NS_GGUF_BOOL: return 1;
    case NS_GGUF_UINT16: case NS_GGUF_INT16: return 2;
    case NS_GGUF_UINT32: case NS_GGUF_INT32: case NS_GGUF_FLOAT32: return 4;
    case NS_GGUF_UINT64: case NS_GGUF_INT64: case NS_GGUF_FLOAT64: return 8;
    default: return 0;
    }
}

/* Starts a blob with the key and the value type. */
static void kv_begin(bbuf *b, const char *key, uint32_t type) {
    bb_str(b, key, strlen(key));
    bb_u32(b, type);
}

static int kv_finish(ns_gguf_writer *w, bbuf *b, const char *key, uint32_t type, uint64_t u) {
    if (b->oom) { free(b->p); return -1; }
    if (w->n_kv == w->cap_kv) {
        size_t c = w->cap_kv ? w->cap_kv * 2 : 16;
        w_kv *k = realloc(w->kv, c * sizeof *k);
        if (!k) { free(b->p); return -1; }
        w->kv = k;
        w->cap_kv = c;
    }
    w_kv *kv = &w->kv[w->n_kv++];
    kv->blob = b->p;
    kv->len = b->len;
    kv->is_alignment = type == NS_GGUF_UINT32 && strcmp(key, "general.alignment") == 0;
    kv->u32 = (uint32_t)u;
    return 0;
}

/* A fixed-size scalar given as its little-endian bits. */
static int w_scalar(ns_gguf_writer *w, const char *key, uint32_t type, uint64_t bits) {
    if (!w || !key) return -1;
    bbuf b = {0};
    uint8_t x[8];
    int n = elem_size(type);
    kv_begin(&b, key, type);
    put_le(x, bits, n);
    bb_put(&b, x, (size_t)n);
    return kv_finish(w, &b, key, type, bits);
}

int ns_gguf_w_u8(ns_gguf_writer *w, const char *key, uint8_t v) { return w_scalar(w, key, NS_GGUF_UINT8, v); }
int ns_gguf_w_i8(ns_gguf_writer *w, const char *key, int8_t v) { return w_scalar(w, key, NS_GGUF_INT8, (uint8_t)v); }
int ns_gguf_w_u16(ns_gguf_writer *w, const char *key, uint16_t v) { return w_scalar(w, key, NS_GGUF_UINT16, v); }
int ns_gguf_w_i16(ns_gguf_writer *w, const char *key, int16_t v) {
    return w_scalar(w, key, NS_GGUF_INT16, (uint16_t)v);
}
int ns_gguf_w_u32(ns_gguf_writer *w, const char *key, uint32_t v) { return w_scalar(w, key, NS_GGUF_UINT32, v); }
int ns_gguf_w_i32(ns_gguf_writer *w, const char *key, int32_t v) {
    return w_scalar(w, key, NS_GGUF_INT32, (uint32_t)v);
}
int ns_gguf_w_u64(ns_gguf_writer *w, const char *key, uint64_t v) { return w_scalar(w, key, NS_GGUF_UINT64, v); }
int ns_gguf_w_i64(ns_gguf_writer *w, const char *key, int64_t v) {
    return w_scalar(w, key, NS_GGUF_INT64, (uint64_t)v);
}
int ns_gguf_w_f32(ns_gguf_writer *w, const char *key, float v) {
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    return w_scalar(w, key, NS_GGUF_FLOAT32, u);
}
int ns_gguf_w_f64(ns_gguf_writer *w, const char *key, double v) {
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    return w_scalar(w, key, NS_GGUF_FLOAT64, u);
}
int ns_gguf_w_bool(ns_gguf_writer *w, const char *key, bool v) { return w_scalar(w, key, NS_GGUF_BOOL, v ? 1 : 0); }

int ns_gguf_w_str(ns_gguf_writer *w, const char *key, const char *v) {
    if (!w || !key || !v) return -1;
    bbuf b = {0};
    kv_begin(&b, key, NS_GGUF_STRING);
    bb_str(&b, v, strlen(v));
    return kv_finish(w, &b, key, NS_GGUF_STRING, 0);
}

int ns_gguf_w_arr_str(ns_gguf_writer *w, const char *key, const char *const *v, uint64_t n) {
    if (!w || !key || (n && !v)) return -1;
    bbuf b = {0};
    kv_begin(&b, key, NS_GGUF_ARRAY);
    bb_u32(&b, NS_GGUF_STRING);
    bb_u64(&b, n);
    for (uint64_t i = 0; i < n; i++) {
        const char *s = v[i] ? v[i] : "";
        bb_str(&b, s, strlen(s));
    }
    return kv_finish(w, &b, key, NS_GGUF_ARRAY, 0);
}

int ns_gguf_w_arr(ns_gguf_writer *w, const char *key, uint32_t elem_type, const void *v, uint64_t n) {
    int es = elem_size(elem_type);
    if (!w || !key || es == 0 || (n && !v)) return -1;
    if (n > SIZE_MAX / (size_t)es) return -1;
    bbuf b = {0};
    kv_begin(&b, key, NS_GGUF_ARRAY);
    bb_u32(&b, elem_type);
    bb_u64(&b, n);
    const uint8_t *src = v;
    for (uint64_t i = 0; i < n && !b.oom; i++) {
        uint64_t bits = 0;
        uint8_t x[8];
        switch (es) {
        case 1: bits = src[i]; break;
        case 2: { uint16_t t; memcpy(&t, src + i * 2, 2); bits = t; break; }
        case 4: { uint32_t t; memcpy(&t, src + i * 4, 4); bits = t; break; }
        default: memcpy(&bits, src + i * 8, 8); break;
        }
        put_le(x, bits, es);
        bb_put(&b, x, (size_t)es);
    }
    return kv_finish(w, &b, key, NS_GGUF_ARRAY, 0);
}

int ns_gguf_w_arr_f32(ns_gguf_writer *w, const char *key, const float *v, uint64_t n) {
    return ns_gguf_w_arr(w, key, NS_GGUF_FLOAT32, v, n);
}

int ns_gguf_w_arr_i32(ns_gguf_writer *w, const char *key, const int32_t *v, uint64_t n) {
    return ns_gguf_w_arr(w, key, NS_GGUF_INT32, v, n);
}

int ns_gguf_w_tensor(ns_gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims, const int64_t *ne,
                     const void *data) {
    if (!w || !name || !ne || n_dims < 1 || n_dims > NS_GGUF_MAX_DIMS) return -1;
    const ns_type_info *ti = ns_type_get(type);
    if (!ti) return -1;
    uint64_t nel = 1;
    for (uint32_t d = 0; d < n_dims; d++) {
        if (ne[d] <= 0) return -1;
        if ((uint64_t)ne[d] > (uint64_t)INT64_MAX / nel) return -1;
        nel *= (uint64_t)ne[d];
    }
    if (ne[0] % ti->block_size != 0) return -1;
    uint64_t blocks = nel / ti->block_size;
    if (blocks > SIZE_MAX / ti->type_size) return -1;
    uint64_t nbytes = blocks * ti->type_size;

    if (w->n_t == w->cap_t) {
        size_t c = w->cap_t ? w->cap_t * 2 : 16;
        w_tensor *t = realloc(w->t, c * sizeof *t);
        if (!t) return -1;
        w->t = t;
        w->cap_t = c;
    }
    w_tensor t = {0};
    t.name = strdup(name);
    if (!t.name) return -1;
    if (data) {
        t.data = malloc(nbytes ? (size_t)nbytes : 1);
        if (!t.data) { free(t.name); return -1; }
        memcpy(t.data, data, (size_t)nbytes);
    }
    t.type = type;
    t.n_dims = n_dims;
    for (int d = 0; d < NS_GGUF_MAX_DIMS; d++) t.ne[d] = (uint32_t)d < n_dims ? ne[d] : 1;
    t.nbytes = nbytes;
    w->t[w->n_t++] = t;
    return 0;
}

/* ------------------------------------------------------------------ */
/* serialization */

typedef struct {
    FILE *f;          /* file sink, or */
    uint8_t *mem;     /* memory sink (exactly sized) */
    size_t pos;
    bool failed;
} sink;

static void sk_put(sink *s, const void *p, size_t n) {
    if (s->failed || n == 0) return;
    if (s->f) {
        if (fwrite(p, 1, n, s->f) != n) s->failed = true;
    } else {
        memcpy(s->mem + s->pos, p, n);
    }
    s->pos += n;
}

static void sk_zeros(sink *s, size_t n) {
    static const uint8_t z[4096];
    while (n) {
        size_t k = n < sizeof z ? n : sizeof z;
        sk_put(s, z, k);
        n -= k;
    }
}

static uint64_t w_alignment(const ns_gguf_writer *w) {
    uint64_t a = W_DEFAULT_ALIGNMENT;
    for (size_t i = 0; i < w->n_kv; i++)
        if (w->kv[i].is_alignment && w->kv[i].u32 && !(w->kv[i].u32 & (w->kv[i].u32 - 1))) a = w->kv[i].u32;
    return a;
}

static uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) & ~(a - 1); }

/* Size of everything before the data section (unpadded). */
static uint64_t header_size(const ns_gguf_writer *w) {
    uint64_t n = 24;
    for (size_t i = 0; i < w->n_kv; i++) n += w->kv[i].len;
    for (size_t i = 0; i < w->n_t; i++) n += 8 + strlen(w->t[i].name) + 4 + 8ull * w->t[i].n_dims + 4 + 8;
    return n;
}

static uint64_t total_size(const ns_gguf_writer *w) {
    uint64_t a = w_alignment(w);
    uint64_t n = header_size(w);
    if (w->n_t == 0) return n;
    n = align_up(n, a);
    for (size_t i = 0; i < w->n_t; i++) n += align_up(w->t[i].nbytes, a);
    return n;
}

static void serialize(const ns_gguf_writer *w, sink *s) {
    uint64_t a = w_alignment(w);
    uint8_t x[8];
    sk_put(s, "GGUF", 4);
    put_le(x, 3, 4);
    sk_put(s, x, 4);
    put_le(x, w->n_t, 8);
    sk_put(s, x, 8);
    put_le(x, w->n_kv, 8);
    sk_put(s, x, 8);
    for (size_t i = 0; i < w->n_kv; i++) sk_put(s, w->kv[i].blob, w->kv[i].len);
    uint64_t off = 0;
    for (size_t i = 0; i < w->n_t; i++) {
        const w_tensor *t = &w->t[i];
        size_t nl = strlen(t->name);
        put_le(x, nl, 8);
        sk_put(s, x, 8);
        sk_put(s, t->name, nl);
        put_le(x, t->n_dims, 4);
        sk_put(s, x, 4);
        for (uint32_t d = 0; d < t->n_dims; d++) {
            put_le(x, (uint64_t)t->ne[d], 8);
            sk_put(s, x, 8);
        }
        put_le(x, t->type, 4);
        sk_put(s, x, 4);
        put_le(x, off, 8);
        sk_put(s, x, 8);
        off += align_up(t->nbytes, a);
    }
    if (w->n_t == 0) return;
    sk_zeros(s, (size_t)(align_up(s->pos, a) - s->pos));
    for (size_t i = 0; i < w->n_t && !s->failed; i++) {
        const w_tensor *t = &w->t[i];
        if (t->data) sk_put(s, t->data, (size_t)t->nbytes);
        else sk_zeros(s, (size_t)t->nbytes);
        sk_zeros(s, (size_t)(align_up(t->nbytes, a) - t->nbytes));
    }
}

int ns_gguf_w_to_mem(const ns_gguf_writer *w, uint8_t **out, size_t *size) {
    if (!w || !out || !size) return -1;
    uint64_t n = total_size(w);
    if (n > SIZE_MAX) return -1;
    uint8_t *m = malloc((size_t)n);
    if (!m) return -1;
    sink s = {.mem = m};
    serialize(w, &s);
    *out = m;
    *size = (size_t)n;
    return 0;
}

int ns_gguf_w_to_file(const ns_gguf_writer *w, const char *path, char *err, size_t errlen) {
    if (err && errlen) err[0] = 0;
    if (!w || !path) {
        if (err && errlen) snprintf(err, errlen, "gguf writer: no writer or path");
        return -1;
    }
    FILE *f = fopen(path, "wb");
    if (!f) {
        if (err && errlen) snprintf(err, errlen, "%s: cannot create: %s", path, strerror(errno));
        return -1;
    }
    setvbuf(f, NULL, _IOFBF, 1 << 20);
    sink s = {.f = f};
    serialize(w, &s);
    int e = s.failed ? errno : 0;
    if (fclose(f) != 0 && !s.failed) {
        s.failed = true;
        e = errno;
    }
    if (s.failed) {
        if (err && errlen) snprintf(err, errlen, "%s: write failed: %s", path, strerror(e ? e : EIO));
        unlink(path);
        return -1;
    }
    return 0;
}
