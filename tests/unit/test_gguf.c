/* GGUF reader and writer: round trip, every truncation, targeted corruptions,
 * and the real files of the shared folder. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/gguf_write.h"
#include "engine/types.h"
#include "fuzz/gguf_walk.h"
#include "nstack/gguf.h"
#include "testutil.h"

/* ------------------------------------------------------------------ */
/* helpers */

static void fill(uint8_t *p, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++) p[i] = (uint8_t)(seed * 131u + i * 7u + (i >> 5));
}

/* Parses a private copy of exactly size bytes (so ASan sees any over-read). */
static ns_gguf *parse_copy(const uint8_t *buf, size_t size, uint8_t **copy, char *err, size_t errlen) {
    *copy = malloc(size ? size : 1);
    assert_non_null(*copy);
    if (size) memcpy(*copy, buf, size);
    return ns_gguf_parse(*copy, size, err, errlen);
}

static void expect_fail(const uint8_t *buf, size_t size, const char *want1, const char *want2) {
    char err[512];
    uint8_t *copy;
    memset(err, 'x', sizeof err);
    ns_gguf *g = parse_copy(buf, size, &copy, err, sizeof err);
    if (g) {
        ns_gguf_close(g);
        free(copy);
        fail_msg("parse succeeded, expected an error with '%s'", want1);
    }
    assert_true(strlen(err) > 0 && strlen(err) < sizeof err);
    if (!strstr(err, want1) || (want2 && !strstr(err, want2))) {
        free(copy);
        fail_msg("error '%s' does not contain '%s'%s%s", err, want1, want2 ? " and " : "", want2 ? want2 : "");
    }
    free(copy);
}

static size_t find_bytes(const uint8_t *buf, size_t size, const char *s) {
    size_t n = strlen(s);
    size_t found = SIZE_MAX;
    for (size_t i = 0; i + n <= size; i++) {
        if (memcmp(buf + i, s, n) == 0) {
            assert_true(found == SIZE_MAX); /* must be unique */
            found = i;
        }
    }
    assert_true(found != SIZE_MAX);
    return found;
}

static void put32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void put64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* ------------------------------------------------------------------ */
/* round trip */

static const float arr_f32_v[] = {1.5f, -2.25f, 0.0f, 1e30f};
static const int32_t arr_i32_v[] = {-7, 0, 2147483647, -2147483647 - 1};
static const uint8_t arr_u8_v[] = {0, 1, 255};
static const int8_t arr_i8_v[] = {-128, 0, 127};
static const uint16_t arr_u16_v[] = {0, 65535};
static const int16_t arr_i16_v[] = {-32768, 32767};
static const uint32_t arr_u32_v[] = {0, 4294967295u};
static const uint64_t arr_u64_v[] = {0, 18446744073709551615ull, 42};
static const int64_t arr_i64_v[] = {-9223372036854775807ll - 1, 9223372036854775807ll};
static const double arr_f64_v[] = {3.0, -0.5, 1e300};
static const uint8_t arr_bool_v[] = {1, 0, 1};
static const char *const arr_str_v[] = {"<s>", "", "hello world", "\xe2\x96\x81the"};

typedef struct {
    const char *name;
    uint32_t type;
    uint32_t n_dims;
    int64_t ne[4];
} tspec;

static const tspec tensors[] = {
    {"token_embd.weight", NS_TYPE_F32, 2, {4, 3, 1, 1}},
    {"blk.0.attn_norm.weight", NS_TYPE_F16, 1, {8, 1, 1, 1}},
    {"blk.0.attn_q.weight", NS_TYPE_Q4_0, 2, {64, 2, 1, 1}},
    {"blk.0.attn_k.weight", NS_TYPE_Q8_0, 3, {32, 1, 2, 1}},
    {"blk.0.ffn_up.weight", NS_TYPE_Q4_K, 2, {256, 2, 1, 1}},
    {"blk.0.ffn_down.weight", NS_TYPE_Q6_K, 2, {512, 1, 1, 1}},
    {"x.bf16", NS_TYPE_BF16, 4, {3, 2, 2, 2}},
    {"x.q5_1", NS_TYPE_Q5_1, 1, {32, 1, 1, 1}},
};
#define N_TENSORS (sizeof tensors / sizeof tensors[0])

static uint64_t spec_nbytes(const tspec *t) {
    const ns_type_info *ti = ns_type_get(t->type);
    int64_t rows = 1;
    for (uint32_t d = 1; d < t->n_dims; d++) rows *= t->ne[d];
    return (uint64_t)(t->ne[0] / ti->block_size) * ti->type_size * (uint64_t)rows;
}

static ns_gguf_writer *full_writer(uint32_t alignment) {
    ns_gguf_writer *w = ns_gguf_writer_new();
    assert_non_null(w);
    assert_int_equal(ns_gguf_w_str(w, "general.architecture", "llama"), 0);
    if (alignment) assert_int_equal(ns_gguf_w_u32(w, "general.alignment", alignment), 0);
    assert_int_equal(ns_gguf_w_u8(w, "t.u8", 200), 0);
    assert_int_equal(ns_gguf_w_i8(w, "t.i8", -100), 0);
    assert_int_equal(ns_gguf_w_u16(w, "t.u16", 60000), 0);
    assert_int_equal(ns_gguf_w_i16(w, "t.i16", -30000), 0);
    assert_int_equal(ns_gguf_w_u32(w, "t.u32", 4000000000u), 0);
    assert_int_equal(ns_gguf_w_i32(w, "t.i32", -2000000000), 0);
    assert_int_equal(ns_gguf_w_f32(w, "t.f32", 0.125f), 0);
    assert_int_equal(ns_gguf_w_bool(w, "t.bool", true), 0);
    assert_int_equal(ns_gguf_w_bool(w, "t.bool_false", false), 0);
    assert_int_equal(ns_gguf_w_str(w, "t.str", "h\xc3\xa9llo"), 0);
    assert_int_equal(ns_gguf_w_str(w, "t.str_empty", ""), 0);
    assert_int_equal(ns_gguf_w_u64(w, "t.u64", 18446744073709551615ull), 0);
    assert_int_equal(ns_gguf_w_i64(w, "t.i64", -9000000000000000000ll), 0);
    assert_int_equal(ns_gguf_w_f64(w, "t.f64", 2.718281828459045), 0);
    assert_int_equal(ns_gguf_w_arr_f32(w, "a.f32", arr_f32_v, 4), 0);
    assert_int_equal(ns_gguf_w_arr_i32(w, "a.i32", arr_i32_v, 4), 0);
    assert_int_equal(ns_gguf_w_arr(w, "a.u8", NS_GGUF_UINT8, arr_u8_v, 3), 0);
    assert_int_equal(ns_gguf_w_arr(w, "a.i8", NS_GGUF_INT8, arr_i8_v, 3), 0);
    assert_int_equal(ns_gguf_w_arr(w, "a.u16", NS_GGUF_UINT16, arr_u16_v, 2), 0);
    assert_int_equal(ns_gguf_w_arr(w, "a.i16", NS_GGUF_INT16, arr_i16_v, 2), 0);
    assert_int_equal(ns_gguf_w_arr(w, "a.u32", NS_GGUF_UINT32, arr_u32_v, 2), 0);
    assert_int_equal(ns_gguf_w_arr(w, "a.u64", NS_GGUF_UINT64, arr_u64_v, 3), 0);
    assert_int_equal(ns_gguf_w_arr(w, "a.i64", NS_GGUF_INT64, arr_i64_v, 2), 0);
    assert_int_equal(ns_gguf_w_arr(w, "a.f64", NS_GGUF_FLOAT64, arr_f64_v, 3), 0);
    assert_int_equal(ns_gguf_w_arr(w, "a.bool", NS_GGUF_BOOL, arr_bool_v, 3), 0);
    assert_int_equal(ns_gguf_w_arr_str(w, "a.str", arr_str_v, 4), 0);
    assert_int_equal(ns_gguf_w_arr_i32(w, "a.empty", NULL, 0), 0);
    assert_int_equal(ns_gguf_w_arr_str(w, "a.str_empty", NULL, 0), 0);
    /* refused by the writer */
    assert_int_equal(ns_gguf_w_arr(w, "a.bad", NS_GGUF_STRING, arr_u8_v, 1), -1);
    assert_int_equal(ns_gguf_w_arr(w, "a.bad", NS_GGUF_ARRAY, arr_u8_v, 1), -1);

    for (size_t i = 0; i < N_TENSORS; i++) {
        uint64_t nb = spec_nbytes(&tensors[i]);
        uint8_t *d = malloc((size_t)nb);
        fill(d, (size_t)nb, (unsigned)i);
        assert_int_equal(ns_gguf_w_tensor(w, tensors[i].name, tensors[i].type, tensors[i].n_dims, tensors[i].ne, d),
                         0);
        free(d);
    }
    int64_t bad_ne[2] = {33, 1};
    assert_int_equal(ns_gguf_w_tensor(w, "bad", NS_TYPE_Q4_0, 2, bad_ne, NULL), -1);
    assert_int_equal(ns_gguf_w_tensor(w, "bad", 4, 2, bad_ne, NULL), -1);
    assert_int_equal(ns_gguf_w_tensor(w, "bad", NS_TYPE_F32, 5, bad_ne, NULL), -1);
    return w;
}

static void check_full(const ns_gguf *g, uint64_t alignment, bool has_align_kv) {
    assert_int_equal(g->version, 3);
    assert_int_equal(g->alignment, alignment);
    assert_int_equal(g->data_offset % alignment, 0);
    assert_int_equal(g->n_kv, has_align_kv ? 30 : 29);
    assert_int_equal(g->n_tensors, N_TENSORS);

    char *s = ns_gguf_get_str(g, "general.architecture");
    assert_string_equal(s, "llama");
    free(s);
    s = ns_gguf_get_str(g, "t.str");
    assert_string_equal(s, "h\xc3\xa9llo");
    free(s);
    s = ns_gguf_get_str(g, "t.str_empty");
    assert_string_equal(s, "");
    free(s);
    assert_null(ns_gguf_get_str(g, "t.u32"));
    assert_null(ns_gguf_get_str(g, "missing"));
    assert_null(ns_gguf_find(g, "missing"));
    assert_null(ns_gguf_find(g, "t.u3"));
    assert_null(ns_gguf_find(g, ""));

    const ns_gguf_kv *kv;
    kv = ns_gguf_find(g, "t.u8");
    assert_int_equal(kv->type, NS_GGUF_UINT8);
    assert_int_equal(kv->v.u64, 200);
    kv = ns_gguf_find(g, "t.i8");
    assert_int_equal(kv->type, NS_GGUF_INT8);
    assert_int_equal(kv->v.i64, -100);
    kv = ns_gguf_find(g, "t.u16");
    assert_int_equal(kv->type, NS_GGUF_UINT16);
    assert_int_equal(kv->v.u64, 60000);
    kv = ns_gguf_find(g, "t.i16");
    assert_int_equal(kv->type, NS_GGUF_INT16);
    assert_int_equal(kv->v.i64, -30000);
    kv = ns_gguf_find(g, "t.u32");
    assert_int_equal(kv->type, NS_GGUF_UINT32);
    assert_int_equal(kv->v.u64, 4000000000u);
    kv = ns_gguf_find(g, "t.i32");
    assert_int_equal(kv->type, NS_GGUF_INT32);
    assert_int_equal(kv->v.i64, -2000000000);
    kv = ns_gguf_find(g, "t.f32");
    assert_int_equal(kv->type, NS_GGUF_FLOAT32);
    assert_true(kv->v.f64 == 0.125);
    kv = ns_gguf_find(g, "t.bool");
    assert_int_equal(kv->type, NS_GGUF_BOOL);
    kv = ns_gguf_find(g, "t.u64");
    assert_int_equal(kv->type, NS_GGUF_UINT64);
    assert_true(kv->v.u64 == 18446744073709551615ull);
    kv = ns_gguf_find(g, "t.i64");
    assert_int_equal(kv->type, NS_GGUF_INT64);
    assert_true(kv->v.i64 == -9000000000000000000ll);
    kv = ns_gguf_find(g, "t.f64");
    assert_int_equal(kv->type, NS_GGUF_FLOAT64);
    assert_true(kv->v.f64 == 2.718281828459045);

    /* getters and their conversions */
    uint32_t u32;
    int64_t i64;
    float f32;
    bool b;
    assert_true(ns_gguf_get_u32(g, "t.u8", &u32) && u32 == 200);
    assert_true(ns_gguf_get_u32(g, "t.u16", &u32) && u32 == 60000);
    assert_true(ns_gguf_get_u32(g, "t.u32", &u32) && u32 == 4000000000u);
    assert_false(ns_gguf_get_u32(g, "t.u64", &u32));   /* does not fit */
    assert_false(ns_gguf_get_u32(g, "t.i8", &u32));    /* negative */
    assert_false(ns_gguf_get_u32(g, "t.f32", &u32));   /* not an integer type */
    assert_false(ns_gguf_get_u32(g, "t.str", &u32));
    assert_false(ns_gguf_get_u32(g, "missing", &u32));
    assert_true(ns_gguf_get_i64(g, "t.i8", &i64) && i64 == -100);
    assert_true(ns_gguf_get_i64(g, "t.i16", &i64) && i64 == -30000);
    assert_true(ns_gguf_get_i64(g, "t.i32", &i64) && i64 == -2000000000);
    assert_true(ns_gguf_get_i64(g, "t.i64", &i64) && i64 == -9000000000000000000ll);
    assert_true(ns_gguf_get_i64(g, "t.u32", &i64) && i64 == 4000000000ll);
    assert_false(ns_gguf_get_i64(g, "t.u64", &i64));   /* > INT64_MAX */
    assert_false(ns_gguf_get_i64(g, "t.bool", &i64));
    assert_true(ns_gguf_get_f32(g, "t.f32", &f32) && f32 == 0.125f);
    assert_true(ns_gguf_get_f32(g, "t.f64", &f32) && fabsf(f32 - 2.7182817f) < 1e-6f);
    assert_true(ns_gguf_get_f32(g, "t.i16", &f32) && f32 == -30000.0f);
    assert_true(ns_gguf_get_f32(g, "t.u8", &f32) && f32 == 200.0f);
    assert_false(ns_gguf_get_f32(g, "t.str", &f32));
    assert_false(ns_gguf_get_f32(g, "a.f32", &f32));
    assert_true(ns_gguf_get_bool(g, "t.bool", &b) && b);
    assert_true(ns_gguf_get_bool(g, "t.bool_false", &b) && !b);
    assert_false(ns_gguf_get_bool(g, "t.u8", &b));

    /* arrays */
    double d;
    kv = ns_gguf_find(g, "a.f32");
    assert_int_equal(kv->type, NS_GGUF_ARRAY);
    assert_int_equal(kv->arr_type, NS_GGUF_FLOAT32);
    assert_int_equal(kv->arr_n, 4);
    assert_memory_equal(kv->arr_data, arr_f32_v, sizeof arr_f32_v);
    for (int i = 0; i < 4; i++) assert_true(ns_gguf_arr_f64(kv, (uint64_t)i, &d) && d == (double)arr_f32_v[i]);
    assert_false(ns_gguf_arr_f64(kv, 4, &d));
    assert_true(ns_gguf_arr_i64(kv, 2, &i64) && i64 == 0);
    assert_false(ns_gguf_arr_i64(kv, 0, &i64)); /* 1.5 is not a whole number */
    kv = ns_gguf_find(g, "a.i32");
    assert_int_equal(kv->arr_type, NS_GGUF_INT32);
    for (int i = 0; i < 4; i++) assert_true(ns_gguf_arr_i64(kv, (uint64_t)i, &i64) && i64 == arr_i32_v[i]);
    assert_false(ns_gguf_arr_i64(kv, 4, &i64));
    kv = ns_gguf_find(g, "a.u8");
    for (int i = 0; i < 3; i++) assert_true(ns_gguf_arr_i64(kv, (uint64_t)i, &i64) && i64 == arr_u8_v[i]);
    kv = ns_gguf_find(g, "a.i8");
    for (int i = 0; i < 3; i++) assert_true(ns_gguf_arr_i64(kv, (uint64_t)i, &i64) && i64 == arr_i8_v[i]);
    kv = ns_gguf_find(g, "a.u16");
    for (int i = 0; i < 2; i++) assert_true(ns_gguf_arr_i64(kv, (uint64_t)i, &i64) && i64 == arr_u16_v[i]);
    kv = ns_gguf_find(g, "a.i16");
    for (int i = 0; i < 2; i++) assert_true(ns_gguf_arr_f64(kv, (uint64_t)i, &d) && d == arr_i16_v[i]);
    kv = ns_gguf_find(g, "a.u32");
    for (int i = 0; i < 2; i++) assert_true(ns_gguf_arr_i64(kv, (uint64_t)i, &i64) && i64 == arr_u32_v[i]);
    kv = ns_gguf_find(g, "a.u64");
    assert_true(ns_gguf_arr_i64(kv, 0, &i64) && i64 == 0);
    assert_false(ns_gguf_arr_i64(kv, 1, &i64)); /* > INT64_MAX */
    assert_true(ns_gguf_arr_f64(kv, 1, &d) && d == 18446744073709551615.0);
    assert_true(ns_gguf_arr_i64(kv, 2, &i64) && i64 == 42);
    kv = ns_gguf_find(g, "a.i64");
    for (int i = 0; i < 2; i++) assert_true(ns_gguf_arr_i64(kv, (uint64_t)i, &i64) && i64 == arr_i64_v[i]);
    kv = ns_gguf_find(g, "a.f64");
    for (int i = 0; i < 3; i++) assert_true(ns_gguf_arr_f64(kv, (uint64_t)i, &d) && d == arr_f64_v[i]);
    assert_true(ns_gguf_arr_i64(kv, 0, &i64) && i64 == 3);
    assert_false(ns_gguf_arr_i64(kv, 2, &i64)); /* 1e300 does not fit */
    kv = ns_gguf_find(g, "a.bool");
    assert_int_equal(kv->arr_type, NS_GGUF_BOOL);
    for (int i = 0; i < 3; i++) assert_true(ns_gguf_arr_i64(kv, (uint64_t)i, &i64) && i64 == arr_bool_v[i]);
    kv = ns_gguf_find(g, "a.str");
    assert_int_equal(kv->arr_type, NS_GGUF_STRING);
    assert_int_equal(kv->arr_n, 4);
    assert_non_null(kv->arr_str);
    for (int i = 0; i < 4; i++) assert_true(ns_gguf_str_eq(kv->arr_str[i], arr_str_v[i]));
    assert_false(ns_gguf_arr_f64(kv, 0, &d));
    assert_false(ns_gguf_arr_i64(kv, 0, &i64));
    kv = ns_gguf_find(g, "a.empty");
    assert_int_equal(kv->arr_n, 0);
    assert_false(ns_gguf_arr_i64(kv, 0, &i64));
    kv = ns_gguf_find(g, "a.str_empty");
    assert_int_equal(kv->arr_type, NS_GGUF_STRING);
    assert_int_equal(kv->arr_n, 0);
    assert_false(ns_gguf_arr_f64(ns_gguf_find(g, "t.u8"), 0, &d)); /* not an array */

    /* tensors */
    for (size_t i = 0; i < N_TENSORS; i++) {
        const ns_gguf_tensor *t = ns_gguf_find_tensor(g, tensors[i].name);
        assert_non_null(t);
        assert_ptr_equal(t, &g->tensors[i]);
        assert_true(ns_gguf_str_eq(t->name, tensors[i].name));
        assert_int_equal(t->type, tensors[i].type);
        assert_int_equal(t->n_dims, tensors[i].n_dims);
        for (int k = 0; k < 4; k++) assert_int_equal(t->ne[k], tensors[i].ne[k]);
        uint64_t nb = spec_nbytes(&tensors[i]);
        assert_int_equal(t->nbytes, nb);
        assert_int_equal(t->offset % alignment, 0);
        assert_ptr_equal(t->data, g->base + g->data_offset + t->offset);
        uint8_t *want = malloc((size_t)nb);
        fill(want, (size_t)nb, (unsigned)i);
        assert_memory_equal(t->data, want, (size_t)nb);
        free(want);
    }
    assert_null(ns_gguf_find_tensor(g, "missing"));
    assert_null(ns_gguf_find_tensor(g, "token_embd.weigh"));
    ns_gguf_walk(g);
}

static void test_round_trip(void **state) {
    (void)state;
    uint32_t aligns[] = {0, 64, 1};
    for (size_t a = 0; a < sizeof aligns / sizeof aligns[0]; a++) {
        ns_gguf_writer *w = full_writer(aligns[a]);
        uint8_t *buf;
        size_t size;
        assert_int_equal(ns_gguf_w_to_mem(w, &buf, &size), 0);
        char err[512];
        ns_gguf *g = ns_gguf_parse(buf, size, err, sizeof err);
        if (!g) fail_msg("parse: %s", err);
        assert_false(g->mapped);
        assert_ptr_equal(g->base, buf);
        assert_int_equal(g->size, size);
        uint64_t al = aligns[a] ? aligns[a] : 32;
        check_full(g, al, aligns[a] != 0);
        ns_gguf_close(g);

        /* the same bytes through a file */
        char path[] = "/tmp/ns_test_gguf_XXXXXX";
        int fd = mkstemp(path);
        assert_true(fd >= 0);
        close(fd);
        assert_int_equal(ns_gguf_w_to_file(w, path, err, sizeof err), 0);
        size_t flen;
        char *fbuf = ns_test_read_file(path, &flen);
        assert_non_null(fbuf);
        assert_int_equal(flen, size);
        assert_memory_equal(fbuf, buf, size);
        free(fbuf);
        g = ns_gguf_open(path, err, sizeof err);
        if (!g) fail_msg("open: %s", err);
        assert_true(g->mapped);
        check_full(g, al, aligns[a] != 0);
        ns_gguf_close(g);
        /* read into private memory instead of mapped: the same view */
        g = ns_gguf_open_ex(path, NS_GGUF_READ, err, sizeof err);
        if (!g) fail_msg("open (read): %s", err);
        assert_true(g->mapped);
        assert_memory_equal(g->base, buf, size);
        check_full(g, al, aligns[a] != 0);
        ns_gguf_close(g);
        unlink(path);
        assert_null(ns_gguf_open_ex(path, NS_GGUF_READ, err, sizeof err));
        assert_non_null(strstr(err, "cannot open"));
        free(buf);
        ns_gguf_writer_free(w);
    }
}

static void test_metadata_only(void **state) {
    (void)state;
    ns_gguf_writer *w = ns_gguf_writer_new();
    assert_int_equal(ns_gguf_w_str(w, "general.architecture", "gpt2"), 0);
    uint8_t *buf;
    size_t size;
    assert_int_equal(ns_gguf_w_to_mem(w, &buf, &size), 0);
    char err[256];
    ns_gguf *g = ns_gguf_parse(buf, size, err, sizeof err);
    if (!g) fail_msg("%s", err);
    assert_int_equal(g->n_tensors, 0);
    assert_int_equal(g->n_kv, 1);
    ns_gguf_close(g);
    free(buf);
    ns_gguf_writer_free(w);

    /* nothing at all */
    w = ns_gguf_writer_new();
    assert_int_equal(ns_gguf_w_to_mem(w, &buf, &size), 0);
    assert_int_equal(size, 24);
    g = ns_gguf_parse(buf, size, err, sizeof err);
    if (!g) fail_msg("%s", err);
    assert_int_equal(g->n_kv, 0);
    assert_null(ns_gguf_find(g, "x"));
    assert_null(ns_gguf_find_tensor(g, "x"));
    ns_gguf_close(g);
    free(buf);
    ns_gguf_writer_free(w);
    ns_gguf_close(NULL);
}

/* ------------------------------------------------------------------ */
/* the small file the corruption tests patch */

static void small_file(uint8_t **buf, size_t *size) {
    ns_gguf_writer *w = ns_gguf_writer_new();
    assert_int_equal(ns_gguf_w_str(w, "general.architecture", "llama"), 0);
    assert_int_equal(ns_gguf_w_str(w, "general.name", "tiny"), 0);
    assert_int_equal(ns_gguf_w_u32(w, "test.u32", 7), 0);
    int32_t a[3] = {1, 2, 3};
    assert_int_equal(ns_gguf_w_arr_i32(w, "test.arr", a, 3), 0);
    assert_int_equal(ns_gguf_w_bool(w, "test.flag", true), 0);
    const char *strs[] = {"a", "bc"};
    assert_int_equal(ns_gguf_w_arr_str(w, "test.strs", strs, 2), 0);
    int64_t ne1[2] = {8, 2}, ne2[2] = {64, 1}, ne3[1] = {8};
    uint8_t data[64];
    fill(data, sizeof data, 1);
    assert_int_equal(ns_gguf_w_tensor(w, "t.f32", NS_TYPE_F32, 2, ne1, data), 0);
    assert_int_equal(ns_gguf_w_tensor(w, "t.q4", NS_TYPE_Q4_0, 2, ne2, data), 0);
    /* last tensor is exactly 32 bytes: no padding at the end of the file */
    assert_int_equal(ns_gguf_w_tensor(w, "t.last", NS_TYPE_F32, 1, ne3, data), 0);
    assert_int_equal(ns_gguf_w_to_mem(w, buf, size), 0);
    ns_gguf_writer_free(w);
}

static void test_version2(void **state) {
    (void)state;
    uint8_t *buf;
    size_t size;
    small_file(&buf, &size);
    put32(buf + 4, 2);
    char err[256];
    ns_gguf *g = ns_gguf_parse(buf, size, err, sizeof err);
    if (!g) fail_msg("%s", err);
    assert_int_equal(g->version, 2);
    assert_int_equal(g->n_tensors, 3);
    ns_gguf_close(g);
    free(buf);
}

static void test_truncations(void **state) {
    (void)state;
    uint8_t *buf;
    size_t size;
    small_file(&buf, &size);
    char err[512];
    uint8_t *copy;
    ns_gguf *g = parse_copy(buf, size, &copy, err, sizeof err);
    if (!g) fail_msg("%s", err);
    assert_int_equal(g->n_tensors, 3);
    assert_int_equal(g->tensors[2].offset + g->tensors[2].nbytes + g->data_offset, size);
    ns_gguf_close(g);
    free(copy);
    for (size_t len = 0; len < size; len++) {
        err[0] = 0;
        g = parse_copy(buf, len, &copy, err, sizeof err);
        if (g) fail_msg("prefix of %zu/%zu bytes parsed", len, size);
        assert_true(strlen(err) > 0);
        free(copy);
    }
    /* spot checks of the messages */
    expect_fail(buf, 0, "file is empty", NULL);
    expect_fail(buf, 3, "too small", NULL);
    expect_fail(buf, 6, "version runs past end of file", NULL);
    expect_fail(buf, 30, "n_kv", NULL);
    expect_fail(buf, size - 1, "tensor 't.last'", "runs past end of file");
    free(buf);
}

typedef void (*patch_fn)(uint8_t *buf, size_t size);

static void corrupt(patch_fn patch, const char *want1, const char *want2) {
    uint8_t *buf;
    size_t size;
    small_file(&buf, &size);
    patch(buf, size);
    expect_fail(buf, size, want1, want2);
    free(buf);
}

static void p_magic(uint8_t *b, size_t n) { (void)n; b[0] = 'X'; }
static void p_v1(uint8_t *b, size_t n) { (void)n; put32(b + 4, 1); }
static void p_v99(uint8_t *b, size_t n) { (void)n; put32(b + 4, 99); }
static void p_vbe(uint8_t *b, size_t n) { (void)n; put32(b + 4, 0x03000000u); }
static void p_huge_ntensors(uint8_t *b, size_t n) { (void)n; put64(b + 8, 1ull << 60); }
static void p_huge_nkv(uint8_t *b, size_t n) { (void)n; put64(b + 16, 0xffffffffffffffffull); }
static void p_more_nkv(uint8_t *b, size_t n) { (void)n; put64(b + 16, 12); }
static void p_huge_str(uint8_t *b, size_t n) {
    size_t k = find_bytes(b, n, "general.name");
    put64(b + k + 12 + 4, 9999999);
}
static void p_huge_key(uint8_t *b, size_t n) {
    size_t k = find_bytes(b, n, "general.name");
    put64(b + k - 8, 1ull << 62);
}
static void p_empty_key(uint8_t *b, size_t n) {
    size_t k = find_bytes(b, n, "general.architecture");
    put64(b + k - 8, 0);
}
static void p_unknown_vtype(uint8_t *b, size_t n) {
    size_t k = find_bytes(b, n, "test.u32");
    put32(b + k + 8, 13);
}
static void p_nested(uint8_t *b, size_t n) {
    size_t k = find_bytes(b, n, "test.arr");
    put32(b + k + 8 + 4, NS_GGUF_ARRAY);
}
static void p_unknown_etype(uint8_t *b, size_t n) {
    size_t k = find_bytes(b, n, "test.arr");
    put32(b + k + 8 + 4, 77);
}
static void p_huge_arr(uint8_t *b, size_t n) {
    size_t k = find_bytes(b, n, "test.arr");
    put64(b + k + 8 + 8, 1ull << 61);
}
static void p_huge_str_arr(uint8_t *b, size_t n) {
    size_t k = find_bytes(b, n, "test.strs");
    put64(b + k + 9 + 8, 1ull << 40);
}
static void p_str_elem(uint8_t *b, size_t n) {
    size_t k = find_bytes(b, n, "test.strs");
    /* key, type, elem type, count, then element 0's length */
    put64(b + k + 9 + 4 + 4 + 8, 1000);
}
static void p_bool(uint8_t *b, size_t n) {
    size_t k = find_bytes(b, n, "test.flag");
    b[k + 9 + 4] = 2;
}
/* tensor info fields, relative to the name */
static size_t tinfo(uint8_t *b, size_t n, const char *name) { return find_bytes(b, n, name) + strlen(name); }
static void p_ndims0(uint8_t *b, size_t n) { put32(b + tinfo(b, n, "t.q4"), 0); }
static void p_ndims5(uint8_t *b, size_t n) { put32(b + tinfo(b, n, "t.q4"), 5); }
static void p_dim0(uint8_t *b, size_t n) { put64(b + tinfo(b, n, "t.q4") + 4 + 8, 0); }
static void p_dim_neg(uint8_t *b, size_t n) { put64(b + tinfo(b, n, "t.q4") + 4 + 8, 1ull << 63); }
static void p_dim_overflow(uint8_t *b, size_t n) {
    size_t k = tinfo(b, n, "t.f32");
    put64(b + k + 4, 1ull << 32);
    put64(b + k + 4 + 8, 1ull << 32);
}
static void p_nbytes_overflow(uint8_t *b, size_t n) {
    size_t k = tinfo(b, n, "t.f32");
    put64(b + k + 4, 1ull << 31);
    put64(b + k + 4 + 8, 1ull << 31); /* 2^62 elements, 2^64 bytes */
}
static void p_unknown_ttype(uint8_t *b, size_t n) { put32(b + tinfo(b, n, "t.q4") + 4 + 16, 99); }
static void p_removed_ttype(uint8_t *b, size_t n) { put32(b + tinfo(b, n, "t.q4") + 4 + 16, 4); }
static void p_block(uint8_t *b, size_t n) { put64(b + tinfo(b, n, "t.q4") + 4, 33); }
static void p_unaligned(uint8_t *b, size_t n) { put64(b + tinfo(b, n, "t.q4") + 4 + 16 + 4, 8); }
static void p_past_eof(uint8_t *b, size_t n) { put64(b + tinfo(b, n, "t.q4") + 4 + 16 + 4, 4096); }
static void p_offset_huge(uint8_t *b, size_t n) {
    put64(b + tinfo(b, n, "t.q4") + 4 + 16 + 4, 0xffffffffffffffe0ull);
}
static void p_empty_name(uint8_t *b, size_t n) {
    size_t k = find_bytes(b, n, "t.q4");
    put64(b + k - 8, 0);
}

static void test_corruptions(void **state) {
    (void)state;
    corrupt(p_magic, "bad magic", NULL);
    corrupt(p_v1, "version 1 is not supported", NULL);
    corrupt(p_v99, "unsupported GGUF version 99", NULL);
    corrupt(p_vbe, "big-endian", NULL);
    corrupt(p_huge_ntensors, "n_tensors=1152921504606846976", "more than the file could hold");
    corrupt(p_huge_nkv, "n_kv=18446744073709551615", "more than the file could hold");
    corrupt(p_more_nkv, "kv ", NULL);
    corrupt(p_huge_str, "kv 1 (general.name): string length 9999999 runs past end of file at offset", NULL);
    corrupt(p_huge_key, "kv 1: key length 4611686018427387904 runs past end of file", NULL);
    corrupt(p_empty_key, "kv 0: empty key", NULL);
    corrupt(p_unknown_vtype, "kv 2 (test.u32): unknown value type 13", NULL);
    corrupt(p_nested, "kv 3 (test.arr): nested arrays are not supported", NULL);
    corrupt(p_unknown_etype, "kv 3 (test.arr): unknown array element type 77", NULL);
    corrupt(p_huge_arr, "kv 3 (test.arr): array of 2305843009213693952 INT32 runs past end of file", NULL);
    corrupt(p_huge_str_arr, "kv 5 (test.strs): array of 1099511627776 strings", NULL);
    corrupt(p_str_elem, "kv 5 (test.strs): element 0: string length 1000 runs past end of file", NULL);
    corrupt(p_bool, "kv 4 (test.flag): bool value 2", NULL);
    corrupt(p_ndims0, "tensor 't.q4': n_dims=0 is out of range", NULL);
    corrupt(p_ndims5, "tensor 't.q4': n_dims=5 is out of range", NULL);
    corrupt(p_dim0, "tensor 't.q4': ne[1]=0", NULL);
    corrupt(p_dim_neg, "tensor 't.q4': ne[1]=9223372036854775808 is too large", NULL);
    corrupt(p_dim_overflow, "tensor 't.f32': element count overflows", NULL);
    corrupt(p_nbytes_overflow, "tensor 't.f32': data size overflows", NULL);
    corrupt(p_unknown_ttype, "tensor 't.q4': unknown tensor type 99", NULL);
    corrupt(p_removed_ttype, "tensor 't.q4': unknown tensor type 4", NULL);
    corrupt(p_block, "tensor 't.q4': ne[0]=33 is not a multiple of the Q4_0 block size 32", NULL);
    corrupt(p_unaligned, "tensor 't.q4': offset 8 is not a multiple of the alignment 32", NULL);
    corrupt(p_past_eof, "tensor 't.q4': data at offset 4096", "runs past end of file");
    corrupt(p_offset_huge, "tensor 't.q4'", "runs past end of file");
    corrupt(p_empty_name, "tensor 1: empty tensor name", NULL);
}

static void expect_writer_fail(ns_gguf_writer *w, const char *want1, const char *want2) {
    uint8_t *buf;
    size_t size;
    assert_int_equal(ns_gguf_w_to_mem(w, &buf, &size), 0);
    expect_fail(buf, size, want1, want2);
    free(buf);
    ns_gguf_writer_free(w);
}

static void test_writer_built_errors(void **state) {
    (void)state;
    ns_gguf_writer *w = ns_gguf_writer_new();
    ns_gguf_w_str(w, "general.architecture", "llama");
    ns_gguf_w_u32(w, "a.b", 1);
    ns_gguf_w_str(w, "general.architecture", "qwen2");
    expect_writer_fail(w, "kv 2 (general.architecture): duplicate key", "kv 0");

    int64_t ne[1] = {32};
    w = ns_gguf_writer_new();
    ns_gguf_w_tensor(w, "x", NS_TYPE_F32, 1, ne, NULL);
    ns_gguf_w_tensor(w, "y", NS_TYPE_F32, 1, ne, NULL);
    ns_gguf_w_tensor(w, "x", NS_TYPE_F16, 1, ne, NULL);
    expect_writer_fail(w, "tensor 2 'x': duplicate tensor name", "tensor 0");

    w = ns_gguf_writer_new();
    ns_gguf_w_u32(w, "general.alignment", 0);
    ns_gguf_w_tensor(w, "x", NS_TYPE_F32, 1, ne, NULL);
    expect_writer_fail(w, "kv 0 (general.alignment): alignment 0", NULL);

    w = ns_gguf_writer_new();
    ns_gguf_w_u32(w, "general.alignment", 3);
    expect_writer_fail(w, "kv 0 (general.alignment): alignment 3 is not a power of two", NULL);

    w = ns_gguf_writer_new();
    ns_gguf_w_u64(w, "general.alignment", 64);
    expect_writer_fail(w, "kv 0 (general.alignment): alignment has type UINT64", NULL);
}

/* ------------------------------------------------------------------ */
/* ns_gguf_open */

static void test_open_errors(void **state) {
    (void)state;
    char err[512];
    assert_null(ns_gguf_open("/nonexistent/x.gguf", err, sizeof err));
    assert_non_null(strstr(err, "/nonexistent/x.gguf"));
    assert_non_null(strstr(err, "cannot open"));
    assert_null(ns_gguf_open("/tmp", err, sizeof err));
    assert_non_null(strstr(err, "/tmp: not a regular file"));

    char path[] = "/tmp/ns_test_gguf_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_null(ns_gguf_open(path, err, sizeof err));
    assert_non_null(strstr(err, "file is empty"));
    assert_non_null(strstr(err, path));

    uint8_t *buf;
    size_t size;
    small_file(&buf, &size);
    p_block(buf, size);
    assert_int_equal(write(fd, buf, size), (ssize_t)size);
    close(fd);
    assert_null(ns_gguf_open(path, err, sizeof err));
    char want[600];
    snprintf(want, sizeof want, "%s: tensor 't.q4': ne[0]=33 is not a multiple of the Q4_0 block size 32", path);
    assert_string_equal(err, want);
    /* a tiny error buffer is still NUL-terminated */
    char small[8];
    assert_null(ns_gguf_open(path, small, sizeof small));
    assert_int_equal(strlen(small), 7);
    assert_null(ns_gguf_open(path, NULL, 0));
    unlink(path);
    free(buf);

    /* writer errors */
    ns_gguf_writer *w = ns_gguf_writer_new();
    assert_int_equal(ns_gguf_w_to_file(w, "/nonexistent/dir/x.gguf", err, sizeof err), -1);
    assert_non_null(strstr(err, "/nonexistent/dir/x.gguf"));
    ns_gguf_writer_free(w);
}

/* ------------------------------------------------------------------ */
/* real files */

static const char *real_files[] = {
    "models/stories260K.gguf",        "models/tiny-llama-f16.gguf",     "models/tiny-llama-q2_k.gguf",
    "models/tiny-llama-q3_k_m.gguf",  "models/tiny-llama-q4_0.gguf",    "models/tiny-llama-q4_1.gguf",
    "models/tiny-llama-q4_k_m.gguf",  "models/tiny-llama-q5_0.gguf",    "models/tiny-llama-q5_1.gguf",
    "models/tiny-llama-q5_k_m.gguf",  "models/tiny-llama-q6_k.gguf",    "models/tiny-llama-q8_0.gguf",
    "models/tiny-phi3-q4_0.gguf",     "models/tiny-qwen2-q8_0.gguf",    "vocab/ggml-vocab-falcon.gguf",
    "vocab/ggml-vocab-gpt-2.gguf",    "vocab/ggml-vocab-llama-spm.gguf",
};

static void test_real_files(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof real_files / sizeof real_files[0]; i++) {
        const char *p = ns_test_shared_path(real_files[i]);
        if (!p) fail_msg("%s is missing", real_files[i]);
        char err[512];
        ns_gguf *g = ns_gguf_open(p, err, sizeof err);
        if (!g) fail_msg("%s", err);
        char *arch = ns_gguf_get_str(g, "general.architecture");
        assert_non_null(arch);
        const ns_gguf_kv *tok = ns_gguf_find(g, "tokenizer.ggml.tokens");
        assert_non_null(tok);
        assert_int_equal(tok->type, NS_GGUF_ARRAY);
        assert_int_equal(tok->arr_type, NS_GGUF_STRING);
        assert_true(tok->arr_n >= 256);
        bool is_model = strncmp(real_files[i], "models/", 7) == 0;
        if (is_model) {
            assert_true(g->n_tensors > 0);
            uint32_t n_layer;
            char key[128];
            snprintf(key, sizeof key, "%s.block_count", arch);
            assert_true(ns_gguf_get_u32(g, key, &n_layer));
            assert_non_null(ns_gguf_find_tensor(g, "token_embd.weight"));
            assert_non_null(ns_gguf_find_tensor(g, "blk.0.attn_norm.weight"));
        } else {
            assert_int_equal(g->n_tensors, 0);
        }
        ns_gguf_walk(g);
        if (strstr(real_files[i], "tiny-llama-f16")) {
            const ns_gguf_tensor *t = ns_gguf_find_tensor(g, "token_embd.weight");
            assert_int_equal(t->type, NS_TYPE_F16);
            assert_int_equal(t->n_dims, 2);
            assert_int_equal(t->ne[0], 256);
            assert_int_equal(t->ne[1], 32000);
            assert_int_equal(t->nbytes, 256 * 32000 * 2);
            assert_int_equal(tok->arr_n, 32000);
            assert_true(ns_gguf_str_eq(tok->arr_str[1], "<s>"));
        }
        free(arch);
        ns_gguf_close(g);
    }
}

int main(void) {
    const struct CMUnitTest all[] = {
        cmocka_unit_test(test_round_trip),       cmocka_unit_test(test_metadata_only),
        cmocka_unit_test(test_version2),
        cmocka_unit_test(test_truncations),      cmocka_unit_test(test_corruptions),
        cmocka_unit_test(test_writer_built_errors), cmocka_unit_test(test_open_errors),
    };
    int rc = cmocka_run_group_tests_name("gguf", all, NULL, NULL);
    if (rc) return rc;
    if (!ns_test_shared_path("models/stories260K.gguf")) {
        printf("SKIP: shared models absent, real-file checks not run\n");
        return NS_TEST_SKIP;
    }
    const struct CMUnitTest real[] = {cmocka_unit_test(test_real_files)};
    return cmocka_run_group_tests_name("gguf_real_files", real, NULL, NULL);
}
