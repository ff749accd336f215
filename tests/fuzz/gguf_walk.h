/* Touches everything a parsed GGUF hands out: every key through every getter,
 * every array element, every tensor's bytes. Shared by the fuzz harness and
 * the corpus regression test, so that a bad pointer shows up under ASan. */
#ifndef NS_GGUF_WALK_H
#define NS_GGUF_WALK_H

#include "nstack/gguf.h"

#include <stdlib.h>
#include <string.h>

static inline unsigned ns_gguf_walk(const ns_gguf *g) {
    unsigned acc = 0;
    char key[256];
    for (uint64_t i = 0; i < g->n_kv; i++) {
        const ns_gguf_kv *kv = &g->kv[i];
        size_t kl = kv->key.len < sizeof key - 1 ? (size_t)kv->key.len : sizeof key - 1;
        memcpy(key, kv->key.ptr, kl);
        key[kl] = 0;
        const ns_gguf_kv *f = ns_gguf_find(g, key);
        if (f) acc += (unsigned)f->type;
        uint32_t u32;
        int64_t i64;
        float f32;
        bool b;
        if (ns_gguf_get_u32(g, key, &u32)) acc += u32;
        if (ns_gguf_get_i64(g, key, &i64)) acc += (unsigned)i64;
        if (ns_gguf_get_f32(g, key, &f32)) acc += f32 > 0.0f;
        if (ns_gguf_get_bool(g, key, &b)) acc += b;
        char *s = ns_gguf_get_str(g, key);
        if (s) {
            acc += (unsigned)strlen(s);
            free(s);
        }
        if (kv->type == NS_GGUF_STRING && kv->v.str.len) acc += (unsigned char)kv->v.str.ptr[kv->v.str.len - 1];
        if (kv->type == NS_GGUF_ARRAY) {
            if (kv->arr_type == NS_GGUF_STRING) {
                for (uint64_t j = 0; j < kv->arr_n; j++) {
                    ns_gguf_str e = kv->arr_str[j];
                    if (e.len) acc += (unsigned char)e.ptr[0] + (unsigned char)e.ptr[e.len - 1];
                }
            } else {
                for (uint64_t j = 0; j <= kv->arr_n; j++) { /* one past the end must be refused */
                    double d;
                    int64_t v;
                    bool okd = ns_gguf_arr_f64(kv, j, &d);
                    bool oki = ns_gguf_arr_i64(kv, j, &v);
                    if (j == kv->arr_n && (okd || oki)) abort();
                    acc += okd + oki;
                }
            }
        }
    }
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const ns_gguf_tensor *t = &g->tensors[i];
        char name[256];
        size_t nl = t->name.len < sizeof name - 1 ? (size_t)t->name.len : sizeof name - 1;
        memcpy(name, t->name.ptr, nl);
        name[nl] = 0;
        if (ns_gguf_find_tensor(g, name)) acc++;
        const uint8_t *d = t->data;
        if ((const uint8_t *)t->data < g->base || t->nbytes > g->size ||
            (size_t)(d - g->base) > g->size - t->nbytes)
            abort();
        if (t->nbytes) acc += d[0] + d[t->nbytes - 1];
    }
    return acc;
}

#endif
