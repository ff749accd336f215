/* GGUF v2/v3 reader.
 *
 * The whole header (key/value pairs and tensor infos) is validated before
 * anything is returned: every read is bounds-checked against the buffer,
 * every count is bounded by what the bytes left could hold, every tensor's
 * data range lies inside the file. Multi-byte fields are assembled byte by
 * byte (little-endian), so unaligned fields are never dereferenced. */
#include "nstack/gguf.h"

#include "types.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define GGUF_MAGIC "GGUF"
#define GGUF_HEADER_SIZE 24u          /* magic, version, n_tensors, n_kv */
#define GGUF_DEFAULT_ALIGNMENT 32u
#define GGUF_MIN_KV_BYTES 13u         /* key length + type + 1-byte value */
#define GGUF_MIN_TENSOR_BYTES 32u     /* name length + n_dims + ne[0] + type + offset */

/* The public struct plus private lookup tables; ns_gguf is the first member
 * so that the pointer handed out is the allocation. */
typedef struct {
    ns_gguf pub;
    uint64_t *kv_hash;       /* open addressing: index + 1, 0 = empty */
    size_t kv_hash_cap;      /* power of two, or 0 */
    uint64_t *t_hash;
    size_t t_hash_cap;
} gguf_impl;

typedef struct {
    const uint8_t *p;
    size_t size;
    size_t pos;
    char *err;
    size_t errlen;
    const char *fname;   /* NULL: no file name prefix */
    char ctx[160];       /* "kv 3 (general.name)", "tensor 'x'", "header" */
} reader;

/* ------------------------------------------------------------------ */
/* messages */

static void set_err(reader *r, const char *fmt, ...) {
    if (!r->err || r->errlen == 0) return;
    size_t n = 0;
    r->err[0] = 0;
    if (r->fname) {
        int k = snprintf(r->err, r->errlen, "%s: ", r->fname);
        if (k > 0) n = (size_t)k < r->errlen ? (size_t)k : r->errlen - 1;
    }
    if (r->ctx[0] && n < r->errlen) {
        int k = snprintf(r->err + n, r->errlen - n, "%s: ", r->ctx);
        if (k > 0) n += (size_t)k < r->errlen - n ? (size_t)k : r->errlen - n - 1;
    }
    if (n < r->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(r->err + n, r->errlen - n, fmt, ap);
        va_end(ap);
    }
}

/* A file string made printable for messages: at most 64 bytes, control and
 * non-ASCII bytes shown as '?'. */
static void printable(char *dst, size_t dstlen, const uint8_t *s, uint64_t len) {
    size_t max = 64, o = 0;
    if (dstlen < 8) { if (dstlen) dst[0] = 0; return; }
    for (uint64_t i = 0; i < len && i < max && o + 4 < dstlen; i++) {
        uint8_t c = s[i];
        dst[o++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    if (len > max && o + 4 < dstlen) { dst[o++] = '.'; dst[o++] = '.'; dst[o++] = '.'; }
    dst[o] = 0;
}

static const char *vtype_name(uint32_t t) {
    static const char *names[] = {"UINT8", "INT8", "UINT16", "INT16", "UINT32", "INT32", "FLOAT32",
                                  "BOOL", "STRING", "ARRAY", "UINT64", "INT64", "FLOAT64"};
    return t < sizeof names / sizeof names[0] ? names[t] : "unknown";
}

/* Size of a fixed-size value type; 0 for STRING/ARRAY; -1 for unknown. */
static int vtype_size(uint32_t t) {
    switch (t) {
    case NS_GGUF_UINT8: case NS_GGUF_INT8: case NS_GGUF_BOOL: return 1;
    case NS_GGUF_UINT16: case NS_GGUF_INT16: return 2;
    case NS_GGUF_UINT32: case NS_GGUF_INT32: case NS_GGUF_FLOAT32: return 4;
    case NS_GGUF_UINT64: case NS_GGUF_INT64: case NS_GGUF_FLOAT64: return 8;
    case NS_GGUF_STRING: case NS_GGUF_ARRAY: return 0;
    default: return -1;
    }
}

/* ------------------------------------------------------------------ */
/* little-endian loads */

static uint64_t load_le(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

static bool need(reader *r, uint64_t n, const char *what) {
    if (n > r->size - r->pos) {
        set_err(r, "%s runs past end of file at offset %zu (needs %" PRIu64 " bytes, %zu left)",
                what, r->pos, n, r->size - r->pos);
        return false;
    }
    return true;
}

static bool rd_u32(reader *r, uint32_t *out, const char *what) {
    if (!need(r, 4, what)) return false;
    *out = (uint32_t)load_le(r->p + r->pos, 4);
    r->pos += 4;
    return true;
}

static bool rd_u64(reader *r, uint64_t *out, const char *what) {
    if (!need(r, 8, what)) return false;
    *out = load_le(r->p + r->pos, 8);
    r->pos += 8;
    return true;
}

static bool rd_str(reader *r, ns_gguf_str *out, const char *what) {
    size_t at = r->pos;
    uint64_t len;
    char w[96];
    snprintf(w, sizeof w, "%s length", what);
    if (!rd_u64(r, &len, w)) return false;
    if (len > r->size - r->pos) {
        set_err(r, "%s length %" PRIu64 " runs past end of file at offset %zu (%zu bytes left)",
                what, len, at, r->size - r->pos);
        return false;
    }
    out->ptr = (const char *)(r->p + r->pos);
    out->len = len;
    r->pos += (size_t)len;
    return true;
}

/* ------------------------------------------------------------------ */
/* values */

static bool rd_scalar(reader *r, uint32_t type, ns_gguf_kv *kv) {
    int sz = vtype_size(type);
    if (type == NS_GGUF_STRING) return rd_str(r, &kv->v.str, "string");
    if (sz <= 0) {
        set_err(r, "unknown value type %" PRIu32, type);
        return false;
    }
    if (!need(r, (uint64_t)sz, "value")) return false;
    const uint8_t *p = r->p + r->pos;
    uint64_t raw = load_le(p, sz);
    switch (type) {
    case NS_GGUF_UINT8: case NS_GGUF_UINT16: case NS_GGUF_UINT32: case NS_GGUF_UINT64:
        kv->v.u64 = raw;
        break;
    case NS_GGUF_BOOL:
        if (raw > 1) {
            set_err(r, "bool value %" PRIu64 " at offset %zu is not 0 or 1", raw, r->pos);
            return false;
        }
        kv->v.u64 = raw;
        break;
    case NS_GGUF_INT8: kv->v.i64 = (int8_t)(uint8_t)raw; break;
    case NS_GGUF_INT16: kv->v.i64 = (int16_t)(uint16_t)raw; break;
    case NS_GGUF_INT32: kv->v.i64 = (int32_t)(uint32_t)raw; break;
    case NS_GGUF_INT64: {
        int64_t v;
        memcpy(&v, &raw, sizeof v);
        kv->v.i64 = v;
        break;
    }
    case NS_GGUF_FLOAT32: {
        uint32_t b = (uint32_t)raw;
        float f;
        memcpy(&f, &b, sizeof f);
        kv->v.f64 = f;
        break;
    }
    case NS_GGUF_FLOAT64: {
        double d;
        memcpy(&d, &raw, sizeof d);
        kv->v.f64 = d;
        break;
    }
    default: break;
    }
    r->pos += (size_t)sz;
    return true;
}

static bool rd_array(reader *r, ns_gguf_kv *kv) {
    uint32_t et;
    uint64_t n;
    if (!rd_u32(r, &et, "array element type")) return false;
    if (et == NS_GGUF_ARRAY) {
        set_err(r, "nested arrays are not supported (array element type ARRAY at offset %zu)", r->pos - 4);
        return false;
    }
    int esz = vtype_size(et);
    if (esz < 0) {
        set_err(r, "unknown array element type %" PRIu32 " at offset %zu", et, r->pos - 4);
        return false;
    }
    size_t count_at = r->pos;
    if (!rd_u64(r, &n, "array count")) return false;
    kv->arr_type = et;
    kv->arr_n = n;
    if (et != NS_GGUF_STRING) {
        if (n > (r->size - r->pos) / (uint64_t)esz) {
            set_err(r, "array of %" PRIu64 " %s runs past end of file at offset %zu (%zu bytes left)", n,
                    vtype_name(et), count_at, r->size - r->pos);
            return false;
        }
        kv->arr_data = r->p + r->pos;
        if (et == NS_GGUF_BOOL) {
            for (uint64_t i = 0; i < n; i++) {
                if (r->p[r->pos + i] > 1) {
                    set_err(r, "bool element %" PRIu64 " = %u at offset %zu is not 0 or 1", i,
                            (unsigned)r->p[r->pos + i], r->pos + (size_t)i);
                    return false;
                }
            }
        }
        r->pos += (size_t)(n * (uint64_t)esz);
        return true;
    }
    /* strings: each takes at least its 8-byte length */
    if (n > (r->size - r->pos) / 8) {
        set_err(r, "array of %" PRIu64 " strings runs past end of file at offset %zu (%zu bytes left)", n,
                count_at, r->size - r->pos);
        return false;
    }
    /* pass 1: validate every length without allocating */
    size_t start = r->pos;
    for (uint64_t i = 0; i < n; i++) {
        ns_gguf_str s;
        char w[64];
        snprintf(w, sizeof w, "element %" PRIu64 ": string", i);
        if (!rd_str(r, &s, w)) return false;
    }
    if (n == 0) return true;
    /* pass 2: fill */
    kv->arr_str = malloc((size_t)n * sizeof *kv->arr_str);
    if (!kv->arr_str) {
        set_err(r, "out of memory for %" PRIu64 " strings", n);
        return false;
    }
    size_t p = start;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t len = load_le(r->p + p, 8);
        p += 8;
        kv->arr_str[i].ptr = (const char *)(r->p + p);
        kv->arr_str[i].len = len;
        p += (size_t)len;
    }
    return true;
}

/* ------------------------------------------------------------------ */
/* lookup tables */

static uint64_t hash_bytes(const void *s, uint64_t len) {
    const uint8_t *p = s;
    uint64_t h = 1469598103934665603ull;
    for (uint64_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 1099511628211ull;
    }
    return h;
}

static bool str_same(ns_gguf_str a, ns_gguf_str b) {
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, (size_t)a.len) == 0);
}

/* Builds a table over n names; dup_a and dup_b get the first duplicate pair
 * (returns 1), 0 on success, -1 when out of memory. */
static int build_table(uint64_t n, const ns_gguf_str *(*name_of)(const void *, uint64_t), const void *arr,
                       uint64_t **table, size_t *cap, uint64_t *dup_a, uint64_t *dup_b) {
    *table = NULL;
    *cap = 0;
    if (n == 0) return 0;
    size_t c = 16;
    while (c < n * 2) c *= 2;
    uint64_t *t = calloc(c, sizeof *t);
    if (!t) return -1;
    for (uint64_t i = 0; i < n; i++) {
        const ns_gguf_str *s = name_of(arr, i);
        size_t h = (size_t)hash_bytes(s->ptr, s->len) & (c - 1);
        while (t[h]) {
            if (str_same(*name_of(arr, t[h] - 1), *s)) {
                *dup_a = t[h] - 1;
                *dup_b = i;
                free(t);
                return 1;
            }
            h = (h + 1) & (c - 1);
        }
        t[h] = i + 1;
    }
    *table = t;
    *cap = c;
    return 0;
}

static const ns_gguf_str *kv_name(const void *arr, uint64_t i) { return &((const ns_gguf_kv *)arr)[i].key; }
static const ns_gguf_str *t_name(const void *arr, uint64_t i) { return &((const ns_gguf_tensor *)arr)[i].name; }

static uint64_t table_find(const uint64_t *t, size_t cap, const char *key,
                           const ns_gguf_str *(*name_of)(const void *, uint64_t), const void *arr) {
    if (!t || !key) return 0;
    size_t len = strlen(key);
    size_t h = (size_t)hash_bytes(key, len) & (cap - 1);
    while (t[h]) {
        const ns_gguf_str *s = name_of(arr, t[h] - 1);
        if (s->len == len && (len == 0 || memcmp(s->ptr, key, len) == 0)) return t[h];
        h = (h + 1) & (cap - 1);
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* parse */

static void free_impl(gguf_impl *g) {
    if (!g) return;
    if (g->pub.kv) {
        for (uint64_t i = 0; i < g->pub.n_kv; i++) free(g->pub.kv[i].arr_str);
    }
    free(g->pub.kv);
    free(g->pub.tensors);
    free(g->kv_hash);
    free(g->t_hash);
    free(g);
}

static bool grow(void **arr, uint64_t *cap, uint64_t need_n, size_t elem, uint64_t max_n) {
    if (need_n <= *cap) return true;
    uint64_t c = *cap ? *cap * 2 : 64;
    if (c > max_n) c = max_n;
    if (c < need_n) c = need_n;
    void *p = realloc(*arr, (size_t)c * elem);
    if (!p) return false;
    memset((char *)p + (size_t)*cap * elem, 0, (size_t)(c - *cap) * elem);
    *arr = p;
    *cap = c;
    return true;
}

static bool parse_tensor_info(reader *r, uint64_t i, ns_gguf_tensor *t) {
    snprintf(r->ctx, sizeof r->ctx, "tensor %" PRIu64, i);
    if (!rd_str(r, &t->name, "name")) return false;
    if (t->name.len == 0) {
        set_err(r, "empty tensor name");
        return false;
    }
    char nm[80];
    printable(nm, sizeof nm, (const uint8_t *)t->name.ptr, t->name.len);
    snprintf(r->ctx, sizeof r->ctx, "tensor '%s'", nm);

    if (!rd_u32(r, &t->n_dims, "n_dims")) return false;
    if (t->n_dims < 1 || t->n_dims > NS_GGUF_MAX_DIMS) {
        set_err(r, "n_dims=%" PRIu32 " is out of range 1..%d", t->n_dims, NS_GGUF_MAX_DIMS);
        return false;
    }
    for (int d = 0; d < NS_GGUF_MAX_DIMS; d++) t->ne[d] = 1;
    int64_t nelem = 1;
    for (uint32_t d = 0; d < t->n_dims; d++) {
        uint64_t v;
        char w[16];
        snprintf(w, sizeof w, "ne[%" PRIu32 "]", d);
        if (!rd_u64(r, &v, w)) return false;
        if (v == 0) {
            set_err(r, "ne[%" PRIu32 "]=0: every dimension must be > 0", d);
            return false;
        }
        if (v > (uint64_t)INT64_MAX) {
            set_err(r, "ne[%" PRIu32 "]=%" PRIu64 " is too large", d, v);
            return false;
        }
        t->ne[d] = (int64_t)v;
        if (t->ne[d] > INT64_MAX / nelem) {
            set_err(r, "element count overflows int64 at ne[%" PRIu32 "]=%" PRId64, d, t->ne[d]);
            return false;
        }
        nelem *= t->ne[d];
    }
    if (!rd_u32(r, &t->type, "type")) return false;
    const ns_type_info *ti = ns_type_get(t->type);
    if (!ti) {
        set_err(r, "unknown tensor type %" PRIu32, t->type);
        return false;
    }
    if (t->ne[0] % (int64_t)ti->block_size != 0) {
        set_err(r, "ne[0]=%" PRId64 " is not a multiple of the %s block size %" PRIu32, t->ne[0], ti->name,
                ti->block_size);
        return false;
    }
    uint64_t blocks = (uint64_t)(nelem / (int64_t)ti->block_size);
    if (blocks > UINT64_MAX / ti->type_size) {
        set_err(r, "data size overflows (%" PRIu64 " blocks of %s)", blocks, ti->name);
        return false;
    }
    t->nbytes = blocks * ti->type_size;
    if (!rd_u64(r, &t->offset, "offset")) return false;
    return true;
}

static ns_gguf *parse(const uint8_t *buf, size_t size, const char *fname, char *err, size_t errlen) {
    reader rr = {.p = buf, .size = size, .pos = 0, .err = err, .errlen = errlen, .fname = fname};
    reader *r = &rr;
    if (err && errlen) err[0] = 0;
    snprintf(r->ctx, sizeof r->ctx, "header");
    if (!buf && size) {
        set_err(r, "no buffer");
        return NULL;
    }
    if (size == 0) {
        set_err(r, "file is empty");
        return NULL;
    }
    if (size < 4) {
        set_err(r, "file too small for a GGUF header (%zu bytes)", size);
        return NULL;
    }
    if (memcmp(buf, GGUF_MAGIC, 4) != 0) {
        set_err(r, "bad magic %02x %02x %02x %02x: not a GGUF file", buf[0], buf[1], buf[2], buf[3]);
        return NULL;
    }
    r->pos = 4;
    uint32_t version;
    if (!rd_u32(r, &version, "version")) return NULL;
    if (version == 1) {
        set_err(r, "GGUF version 1 is not supported (only versions 2 and 3)");
        return NULL;
    }
    if (version != 2 && version != 3) {
        uint32_t sw = ((version & 0xffu) << 24) | ((version & 0xff00u) << 8) | ((version >> 8) & 0xff00u) |
                      (version >> 24);
        if (sw == 2 || sw == 3)
            set_err(r, "version %" PRIu32 " is a byte-swapped %" PRIu32 ": big-endian GGUF files are not supported",
                    version, sw);
        else
            set_err(r, "unsupported GGUF version %" PRIu32 " (only versions 2 and 3)", version);
        return NULL;
    }
    uint64_t n_tensors, n_kv;
    if (!rd_u64(r, &n_tensors, "n_tensors")) return NULL;
    if (!rd_u64(r, &n_kv, "n_kv")) return NULL;
    uint64_t left = size - r->pos;
    if (n_kv > left / GGUF_MIN_KV_BYTES) {
        set_err(r, "n_kv=%" PRIu64 " is more than the file could hold (%" PRIu64 " bytes left, %u per kv at least)",
                n_kv, left, GGUF_MIN_KV_BYTES);
        return NULL;
    }
    if (n_tensors > left / GGUF_MIN_TENSOR_BYTES) {
        set_err(r,
                "n_tensors=%" PRIu64 " is more than the file could hold (%" PRIu64
                " bytes left, %u per tensor info at least)",
                n_tensors, left, GGUF_MIN_TENSOR_BYTES);
        return NULL;
    }
    if (n_kv * GGUF_MIN_KV_BYTES + n_tensors * GGUF_MIN_TENSOR_BYTES > left) {
        set_err(r, "n_kv=%" PRIu64 " and n_tensors=%" PRIu64 " are more than the file could hold (%" PRIu64 " bytes left)",
                n_kv, n_tensors, left);
        return NULL;
    }

    gguf_impl *g = calloc(1, sizeof *g);
    if (!g) {
        set_err(r, "out of memory");
        return NULL;
    }
    g->pub.base = buf;
    g->pub.size = size;
    g->pub.version = version;
    g->pub.alignment = GGUF_DEFAULT_ALIGNMENT;

    /* key/value pairs */
    uint64_t kv_cap = 0;
    for (uint64_t i = 0; i < n_kv; i++) {
        if (!grow((void **)&g->pub.kv, &kv_cap, i + 1, sizeof(ns_gguf_kv), n_kv)) {
            set_err(r, "out of memory");
            goto fail;
        }
        ns_gguf_kv *kv = &g->pub.kv[i];
        g->pub.n_kv = i + 1; /* so that free_impl sees arr_str */
        snprintf(r->ctx, sizeof r->ctx, "kv %" PRIu64, i);
        if (!rd_str(r, &kv->key, "key")) goto fail;
        if (kv->key.len == 0) {
            set_err(r, "empty key");
            goto fail;
        }
        char kn[80];
        printable(kn, sizeof kn, (const uint8_t *)kv->key.ptr, kv->key.len);
        snprintf(r->ctx, sizeof r->ctx, "kv %" PRIu64 " (%s)", i, kn);
        if (!rd_u32(r, &kv->type, "value type")) goto fail;
        if (vtype_size(kv->type) < 0) {
            set_err(r, "unknown value type %" PRIu32 " at offset %zu", kv->type, r->pos - 4);
            goto fail;
        }
        if (kv->type == NS_GGUF_ARRAY) {
            if (!rd_array(r, kv)) goto fail;
        } else {
            if (!rd_scalar(r, kv->type, kv)) goto fail;
        }
        if (ns_gguf_str_eq(kv->key, "general.alignment")) {
            if (kv->type != NS_GGUF_UINT32) {
                set_err(r, "alignment has type %s, expected UINT32", vtype_name(kv->type));
                goto fail;
            }
            if (kv->v.u64 == 0) {
                set_err(r, "alignment 0 is invalid: must be a power of two > 0");
                goto fail;
            }
            if (kv->v.u64 & (kv->v.u64 - 1)) {
                set_err(r, "alignment %" PRIu64 " is not a power of two", kv->v.u64);
                goto fail;
            }
            g->pub.alignment = kv->v.u64;
        }
    }
    {
        uint64_t a = 0, b = 0;
        int rc = build_table(g->pub.n_kv, kv_name, g->pub.kv, &g->kv_hash, &g->kv_hash_cap, &a, &b);
        if (rc < 0) {
            r->ctx[0] = 0;
            set_err(r, "out of memory");
            goto fail;
        }
        if (rc > 0) {
            char kn[80];
            printable(kn, sizeof kn, (const uint8_t *)g->pub.kv[b].key.ptr, g->pub.kv[b].key.len);
            snprintf(r->ctx, sizeof r->ctx, "kv %" PRIu64 " (%s)", b, kn);
            set_err(r, "duplicate key (first defined by kv %" PRIu64 ")", a);
            goto fail;
        }
    }

    /* tensor infos */
    uint64_t t_cap = 0;
    for (uint64_t i = 0; i < n_tensors; i++) {
        /* grown as infos are read: a lying count costs no more than the
         * bytes that are really there */
        if (!grow((void **)&g->pub.tensors, &t_cap, i + 1, sizeof(ns_gguf_tensor), n_tensors)) {
            r->ctx[0] = 0;
            set_err(r, "out of memory for %" PRIu64 " tensor infos", n_tensors);
            goto fail;
        }
        if (!parse_tensor_info(r, i, &g->pub.tensors[i])) goto fail;
        g->pub.n_tensors = i + 1;
    }
    {
        uint64_t a = 0, b = 0;
        int rc = build_table(g->pub.n_tensors, t_name, g->pub.tensors, &g->t_hash, &g->t_hash_cap, &a, &b);
        if (rc < 0) {
            r->ctx[0] = 0;
            set_err(r, "out of memory");
            goto fail;
        }
        if (rc > 0) {
            char nm[80];
            printable(nm, sizeof nm, (const uint8_t *)g->pub.tensors[b].name.ptr, g->pub.tensors[b].name.len);
            snprintf(r->ctx, sizeof r->ctx, "tensor %" PRIu64 " '%s'", b, nm);
            set_err(r, "duplicate tensor name (first used by tensor %" PRIu64 ")", a);
            goto fail;
        }
    }

    /* data section */
    uint64_t align = g->pub.alignment;
    uint64_t data_off = ((uint64_t)r->pos + align - 1) & ~(align - 1);
    g->pub.data_offset = data_off;
    for (uint64_t i = 0; i < g->pub.n_tensors; i++) {
        ns_gguf_tensor *t = &g->pub.tensors[i];
        char nm[80];
        printable(nm, sizeof nm, (const uint8_t *)t->name.ptr, t->name.len);
        snprintf(r->ctx, sizeof r->ctx, "tensor '%s'", nm);
        if (t->offset % align != 0) {
            set_err(r, "offset %" PRIu64 " is not a multiple of the alignment %" PRIu64, t->offset, align);
            goto fail;
        }
        if (data_off > size || t->offset > size - data_off || t->nbytes > size - data_off - t->offset) {
            set_err(r,
                    "data at offset %" PRIu64 " (%" PRIu64 " bytes) runs past end of file "
                    "(data section starts at %" PRIu64 ", file size %zu)",
                    t->offset, t->nbytes, data_off, size);
            goto fail;
        }
        t->data = buf + data_off + t->offset;
    }
    return &g->pub;

fail:
    free_impl(g);
    return NULL;
}

/* ------------------------------------------------------------------ */
/* public API */

ns_gguf *ns_gguf_parse(const void *buf, size_t size, char *err, size_t errlen) {
    return parse(buf, size, NULL, err, errlen);
}

/* Reads the whole file into fresh anonymous memory. Slower to open than a
 * map, but the pages are new: on virtual machines whose host has reclaimed
 * an old page-cache page, every later touch of a mapped page can cost a
 * host fault (a 2 GB model decoded 7x slower from such a cache). */
static void *read_whole(int fd, size_t size, const char *path, char *err, size_t errlen) {
    size_t cap = (size + 4095) & ~(size_t)4095;
    void *m = mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) {
        if (err && errlen) snprintf(err, errlen, "%s: cannot allocate %zu bytes: %s", path, size, strerror(errno));
        return NULL;
    }
#ifdef MADV_HUGEPAGE
    (void)madvise(m, cap, MADV_HUGEPAGE); /* fewer TLB misses while streaming weights */
#endif
    size_t got = 0;
    while (got < size) {
        ssize_t r = pread(fd, (uint8_t *)m + got, size - got > (1u << 30) ? (1u << 30) : size - got, (off_t)got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            if (err && errlen)
                snprintf(err, errlen, "%s: read failed at byte %zu: %s", path, got, r < 0 ? strerror(errno) : "file shrank");
            munmap(m, cap);
            return NULL;
        }
        got += (size_t)r;
    }
    if (mprotect(m, cap, PROT_READ) != 0) { /* weights are read-only, as in a map */
        if (err && errlen) snprintf(err, errlen, "%s: mprotect: %s", path, strerror(errno));
        munmap(m, cap);
        return NULL;
    }
    return m;
}

ns_gguf *ns_gguf_open(const char *path, char *err, size_t errlen) {
    return ns_gguf_open_ex(path, NS_GGUF_MMAP, err, errlen);
}

ns_gguf *ns_gguf_open_ex(const char *path, ns_gguf_load how, char *err, size_t errlen) {
    if (err && errlen) err[0] = 0;
    if (!path) {
        if (err && errlen) snprintf(err, errlen, "(null): no path");
        return NULL;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (err && errlen) snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        if (err && errlen) snprintf(err, errlen, "%s: cannot stat: %s", path, strerror(errno));
        close(fd);
        return NULL;
    }
    if (!S_ISREG(st.st_mode)) {
        if (err && errlen) snprintf(err, errlen, "%s: not a regular file", path);
        close(fd);
        return NULL;
    }
    if (st.st_size <= 0) {
        if (err && errlen) snprintf(err, errlen, "%s: file is empty", path);
        close(fd);
        return NULL;
    }
    if ((uint64_t)st.st_size > (uint64_t)SIZE_MAX) {
        if (err && errlen) snprintf(err, errlen, "%s: file too large to map", path);
        close(fd);
        return NULL;
    }
    size_t size = (size_t)st.st_size;
    void *m;
    if (how == NS_GGUF_READ) {
        m = read_whole(fd, size, path, err, errlen);
        close(fd);
        if (!m) return NULL;
    } else {
        m = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
        int merr = errno;
        close(fd);
        if (m == MAP_FAILED) {
            if (err && errlen) snprintf(err, errlen, "%s: cannot map: %s", path, strerror(merr));
            return NULL;
        }
    }
    ns_gguf *g = parse(m, size, path, err, errlen);
    if (!g) {
        munmap(m, size);
        return NULL;
    }
    g->mapped = true;
    return g;
}

void ns_gguf_close(ns_gguf *g) {
    if (!g) return;
    if (g->mapped && g->base) munmap((void *)g->base, g->size);
    free_impl((gguf_impl *)g);
}

const ns_gguf_kv *ns_gguf_find(const ns_gguf *g, const char *key) {
    if (!g || !key) return NULL;
    const gguf_impl *im = (const gguf_impl *)g;
    uint64_t i = table_find(im->kv_hash, im->kv_hash_cap, key, kv_name, g->kv);
    return i ? &g->kv[i - 1] : NULL;
}

const ns_gguf_tensor *ns_gguf_find_tensor(const ns_gguf *g, const char *name) {
    if (!g || !name) return NULL;
    const gguf_impl *im = (const gguf_impl *)g;
    uint64_t i = table_find(im->t_hash, im->t_hash_cap, name, t_name, g->tensors);
    return i ? &g->tensors[i - 1] : NULL;
}

static bool is_unsigned(uint32_t t) {
    return t == NS_GGUF_UINT8 || t == NS_GGUF_UINT16 || t == NS_GGUF_UINT32 || t == NS_GGUF_UINT64;
}
static bool is_signed(uint32_t t) {
    return t == NS_GGUF_INT8 || t == NS_GGUF_INT16 || t == NS_GGUF_INT32 || t == NS_GGUF_INT64;
}
static bool is_float(uint32_t t) { return t == NS_GGUF_FLOAT32 || t == NS_GGUF_FLOAT64; }

bool ns_gguf_get_u32(const ns_gguf *g, const char *key, uint32_t *out) {
    const ns_gguf_kv *kv = ns_gguf_find(g, key);
    if (!kv) return false;
    if (is_unsigned(kv->type)) {
        if (kv->v.u64 > UINT32_MAX) return false;
        if (out) *out = (uint32_t)kv->v.u64;
        return true;
    }
    if (is_signed(kv->type)) {
        if (kv->v.i64 < 0 || kv->v.i64 > (int64_t)UINT32_MAX) return false;
        if (out) *out = (uint32_t)kv->v.i64;
        return true;
    }
    return false;
}

bool ns_gguf_get_i64(const ns_gguf *g, const char *key, int64_t *out) {
    const ns_gguf_kv *kv = ns_gguf_find(g, key);
    if (!kv) return false;
    if (is_unsigned(kv->type)) {
        if (kv->v.u64 > (uint64_t)INT64_MAX) return false;
        if (out) *out = (int64_t)kv->v.u64;
        return true;
    }
    if (is_signed(kv->type)) {
        if (out) *out = kv->v.i64;
        return true;
    }
    return false;
}

bool ns_gguf_get_f32(const ns_gguf *g, const char *key, float *out) {
    const ns_gguf_kv *kv = ns_gguf_find(g, key);
    if (!kv) return false;
    double d;
    if (is_unsigned(kv->type)) d = (double)kv->v.u64;
    else if (is_signed(kv->type)) d = (double)kv->v.i64;
    else if (is_float(kv->type)) d = kv->v.f64;
    else return false;
    if (out) *out = (float)d;
    return true;
}

bool ns_gguf_get_bool(const ns_gguf *g, const char *key, bool *out) {
    const ns_gguf_kv *kv = ns_gguf_find(g, key);
    if (!kv || kv->type != NS_GGUF_BOOL) return false;
    if (out) *out = kv->v.u64 != 0;
    return true;
}

char *ns_gguf_get_str(const ns_gguf *g, const char *key) {
    const ns_gguf_kv *kv = ns_gguf_find(g, key);
    if (!kv || kv->type != NS_GGUF_STRING) return NULL;
    if (kv->v.str.len >= SIZE_MAX) return NULL;
    char *s = malloc((size_t)kv->v.str.len + 1);
    if (!s) return NULL;
    if (kv->v.str.len) memcpy(s, kv->v.str.ptr, (size_t)kv->v.str.len);
    s[kv->v.str.len] = 0;
    return s;
}

/* Element i of a fixed-size array as its raw little-endian bits. */
static bool arr_raw(const ns_gguf_kv *kv, uint64_t i, uint64_t *raw, int *sz) {
    if (!kv || kv->type != NS_GGUF_ARRAY || i >= kv->arr_n || !kv->arr_data) return false;
    int s = vtype_size(kv->arr_type);
    if (s <= 0) return false;
    *raw = load_le((const uint8_t *)kv->arr_data + (size_t)i * (size_t)s, s);
    *sz = s;
    return true;
}

bool ns_gguf_arr_f64(const ns_gguf_kv *kv, uint64_t i, double *out) {
    uint64_t raw;
    int sz;
    if (!arr_raw(kv, i, &raw, &sz)) return false;
    double d;
    switch (kv->arr_type) {
    case NS_GGUF_UINT8: case NS_GGUF_UINT16: case NS_GGUF_UINT32: case NS_GGUF_UINT64: case NS_GGUF_BOOL:
        d = (double)raw;
        break;
    case NS_GGUF_INT8: d = (int8_t)(uint8_t)raw; break;
    case NS_GGUF_INT16: d = (int16_t)(uint16_t)raw; break;
    case NS_GGUF_INT32: d = (int32_t)(uint32_t)raw; break;
    case NS_GGUF_INT64: {
        int64_t v;
        memcpy(&v, &raw, sizeof v);
        d = (double)v;
        break;
    }
    case NS_GGUF_FLOAT32: {
        uint32_t b = (uint32_t)raw;
        float f;
        memcpy(&f, &b, sizeof f);
        d = f;
        break;
    }
    case NS_GGUF_FLOAT64: memcpy(&d, &raw, sizeof d); break;
    default: return false;
    }
    if (out) *out = d;
    return true;
}

bool ns_gguf_arr_i64(const ns_gguf_kv *kv, uint64_t i, int64_t *out) {
    uint64_t raw;
    int sz;
    if (!arr_raw(kv, i, &raw, &sz)) return false;
    int64_t v;
    switch (kv->arr_type) {
    case NS_GGUF_UINT8: case NS_GGUF_UINT16: case NS_GGUF_UINT32: case NS_GGUF_BOOL:
        v = (int64_t)raw;
        break;
    case NS_GGUF_UINT64:
        if (raw > (uint64_t)INT64_MAX) return false;
        v = (int64_t)raw;
        break;
    case NS_GGUF_INT8: v = (int8_t)(uint8_t)raw; break;
    case NS_GGUF_INT16: v = (int16_t)(uint16_t)raw; break;
    case NS_GGUF_INT32: v = (int32_t)(uint32_t)raw; break;
    case NS_GGUF_INT64: memcpy(&v, &raw, sizeof v); break;
    case NS_GGUF_FLOAT32: case NS_GGUF_FLOAT64: {
        double d;
        if (!ns_gguf_arr_f64(kv, i, &d)) return false;
        /* only whole numbers that fit */
        if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0)) return false;
        v = (int64_t)d;
        if ((double)v != d) return false;
        break;
    }
    default: return false;
    }
    if (out) *out = v;
    return true;
}

bool ns_gguf_str_eq(ns_gguf_str s, const char *c) {
    if (!c) return false;
    size_t n = strlen(c);
    return s.len == n && (n == 0 || memcmp(s.ptr, c, n) == 0);
}
