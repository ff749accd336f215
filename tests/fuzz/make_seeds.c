/* Writes the seed corpus for fuzz_gguf: small valid files made with the
 * writer, plus (given real GGUF files) a shrunken copy of each one's metadata
 * and the first 4 KB of it.
 *
 *   fuzz_gguf_seeds OUT_DIR [real.gguf ...] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf_write.h"
#include "nstack/gguf.h"
#include "types.h"

static int save(ns_gguf_writer *w, const char *dir, const char *name) {
    char path[4096], err[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int rc = ns_gguf_w_to_file(w, path, err, sizeof err);
    if (rc) fprintf(stderr, "%s\n", err);
    ns_gguf_writer_free(w);
    return rc;
}

static void add_tensor(ns_gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims, int64_t e0, int64_t e1) {
    int64_t ne[2] = {e0, e1};
    size_t nb = ns_row_size((ns_type)type, e0) * (size_t)(n_dims > 1 ? e1 : 1);
    unsigned char *d = malloc(nb);
    for (size_t i = 0; i < nb; i++) d[i] = (unsigned char)(i * 37u + 11u);
    if (ns_gguf_w_tensor(w, name, type, n_dims, ne, d)) fprintf(stderr, "tensor %s refused\n", name);
    free(d);
}

/* Copies path's metadata with arrays cut to 8 elements and strings to 64
 * bytes, and its first 3 small tensors. */
static int shrink_real(const char *path, const char *dir, int idx) {
    char err[512];
    ns_gguf *g = ns_gguf_open(path, err, sizeof err);
    if (!g) { fprintf(stderr, "%s\n", err); return 1; }
    ns_gguf_writer *w = ns_gguf_writer_new();
    for (uint64_t i = 0; i < g->n_kv; i++) {
        const ns_gguf_kv *kv = &g->kv[i];
        char key[256];
        snprintf(key, sizeof key, "%.*s", (int)kv->key.len, kv->key.ptr);
        switch (kv->type) {
        case NS_GGUF_UINT8: ns_gguf_w_u8(w, key, (uint8_t)kv->v.u64); break;
        case NS_GGUF_INT8: ns_gguf_w_i8(w, key, (int8_t)kv->v.i64); break;
        case NS_GGUF_UINT16: ns_gguf_w_u16(w, key, (uint16_t)kv->v.u64); break;
        case NS_GGUF_INT16: ns_gguf_w_i16(w, key, (int16_t)kv->v.i64); break;
        case NS_GGUF_UINT32: ns_gguf_w_u32(w, key, (uint32_t)kv->v.u64); break;
        case NS_GGUF_INT32: ns_gguf_w_i32(w, key, (int32_t)kv->v.i64); break;
        case NS_GGUF_UINT64: ns_gguf_w_u64(w, key, kv->v.u64); break;
        case NS_GGUF_INT64: ns_gguf_w_i64(w, key, kv->v.i64); break;
        case NS_GGUF_FLOAT32: ns_gguf_w_f32(w, key, (float)kv->v.f64); break;
        case NS_GGUF_FLOAT64: ns_gguf_w_f64(w, key, kv->v.f64); break;
        case NS_GGUF_BOOL: ns_gguf_w_bool(w, key, kv->v.u64 != 0); break;
        case NS_GGUF_STRING: {
            char s[65];
            snprintf(s, sizeof s, "%.*s", (int)(kv->v.str.len < 64 ? kv->v.str.len : 64), kv->v.str.ptr);
            ns_gguf_w_str(w, key, s);
            break;
        }
        case NS_GGUF_ARRAY: {
            uint64_t n = kv->arr_n < 8 ? kv->arr_n : 8;
            if (kv->arr_type == NS_GGUF_STRING) {
                char buf[8][65];
                const char *v[8];
                for (uint64_t j = 0; j < n; j++) {
                    ns_gguf_str e = kv->arr_str[j];
                    snprintf(buf[j], sizeof buf[j], "%.*s", (int)(e.len < 64 ? e.len : 64), e.ptr);
                    v[j] = buf[j];
                }
                ns_gguf_w_arr_str(w, key, v, n);
            } else {
                ns_gguf_w_arr(w, key, kv->arr_type, kv->arr_data, n);
            }
            break;
        }
        default: break;
        }
    }
    int copied = 0;
    for (uint64_t i = 0; i < g->n_tensors && copied < 3; i++) {
        const ns_gguf_tensor *t = &g->tensors[i];
        if (t->nbytes > 1024) continue;
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.ptr);
        ns_gguf_w_tensor(w, name, t->type, t->n_dims, t->ne, t->data);
        copied++;
    }
    char out[64];
    snprintf(out, sizeof out, "real-shrunk-%d.gguf", idx);
    int rc = save(w, dir, out);
    /* and the first 4 KB, as is */
    snprintf(out, sizeof out, "%s/real-head-%d.gguf", dir, idx);
    FILE *f = fopen(out, "wb");
    if (f) {
        fwrite(g->base, 1, g->size < 4096 ? g->size : 4096, f);
        fclose(f);
    }
    ns_gguf_close(g);
    return rc;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s OUT_DIR [real.gguf ...]\n", argv[0]);
        return 2;
    }
    const char *dir = argv[1];
    int rc = 0;

    rc |= save(ns_gguf_writer_new(), dir, "empty.gguf");

    ns_gguf_writer *w = ns_gguf_writer_new();
    ns_gguf_w_str(w, "general.architecture", "llama");
    ns_gguf_w_u8(w, "t.u8", 200);
    ns_gguf_w_i8(w, "t.i8", -100);
    ns_gguf_w_u16(w, "t.u16", 60000);
    ns_gguf_w_i16(w, "t.i16", -30000);
    ns_gguf_w_u32(w, "t.u32", 4000000000u);
    ns_gguf_w_i32(w, "t.i32", -2000000000);
    ns_gguf_w_f32(w, "t.f32", 0.125f);
    ns_gguf_w_bool(w, "t.bool", true);
    ns_gguf_w_str(w, "t.str", "hello");
    ns_gguf_w_u64(w, "t.u64", 18446744073709551615ull);
    ns_gguf_w_i64(w, "t.i64", -9000000000000000000ll);
    ns_gguf_w_f64(w, "t.f64", 2.5);
    float af[3] = {1, 2.5f, -3};
    int32_t ai[3] = {-1, 0, 7};
    uint8_t ab[3] = {1, 0, 1};
    double ad[2] = {1.5, 3};
    uint64_t au[2] = {1, 18446744073709551615ull};
    const char *as[3] = {"<s>", "", "\xe2\x96\x81the"};
    ns_gguf_w_arr_f32(w, "a.f32", af, 3);
    ns_gguf_w_arr_i32(w, "a.i32", ai, 3);
    ns_gguf_w_arr(w, "a.bool", NS_GGUF_BOOL, ab, 3);
    ns_gguf_w_arr(w, "a.f64", NS_GGUF_FLOAT64, ad, 2);
    ns_gguf_w_arr(w, "a.u64", NS_GGUF_UINT64, au, 2);
    ns_gguf_w_arr(w, "a.u8", NS_GGUF_UINT8, ab, 3);
    ns_gguf_w_arr_str(w, "a.str", as, 3);
    ns_gguf_w_arr_str(w, "a.str0", NULL, 0);
    add_tensor(w, "token_embd.weight", NS_TYPE_F32, 2, 4, 3);
    add_tensor(w, "f16", NS_TYPE_F16, 1, 8, 1);
    add_tensor(w, "q4_0", NS_TYPE_Q4_0, 2, 64, 2);
    add_tensor(w, "q8_0", NS_TYPE_Q8_0, 1, 32, 1);
    add_tensor(w, "q4_k", NS_TYPE_Q4_K, 1, 256, 1);
    add_tensor(w, "bf16", NS_TYPE_BF16, 2, 3, 2);
    rc |= save(w, dir, "all-types.gguf");

    w = ns_gguf_writer_new();
    ns_gguf_w_u32(w, "general.alignment", 64);
    ns_gguf_w_str(w, "general.architecture", "qwen2");
    add_tensor(w, "a", NS_TYPE_F32, 1, 3, 1);
    add_tensor(w, "b", NS_TYPE_Q6_K, 1, 256, 1);
    rc |= save(w, dir, "align64.gguf");

    w = ns_gguf_writer_new();
    ns_gguf_w_str(w, "general.architecture", "gpt2");
    const char *toks[4] = {"a", "b", "ab", "\xc4\xa0"};
    ns_gguf_w_arr_str(w, "tokenizer.ggml.tokens", toks, 4);
    const char *merges[1] = {"a b"};
    ns_gguf_w_arr_str(w, "tokenizer.ggml.merges", merges, 1);
    rc |= save(w, dir, "vocab-only.gguf");

    for (int i = 2; i < argc; i++) rc |= shrink_real(argv[i], dir, i - 2);
    return rc ? 1 : 0;
}
