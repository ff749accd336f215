/* The context's KV cache: truncation, several sequences, state images,
 * batch splitting and thread counts all give the same logits as one plain
 * pass (each token's arithmetic does not depend on how the work was cut,
 * so these comparisons are exact). Uses the real stories260K model. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nstack/model.h"
#include "testutil.h"

static ns_model *model;
static int n_vocab;
static const int32_t toks[12] = {1, 403, 407, 261, 378, 11, 349, 384, 262, 275, 310, 400};
enum { N = 12 };

static ns_context *new_ctx(int n_seq, int n_threads, int n_batch) {
    char err[256];
    ns_context_params p = {.n_ctx = 64, .n_seq = n_seq, .n_threads = n_threads, .n_batch = n_batch};
    ns_context *c = ns_context_new(model, &p, err, sizeof err);
    assert_non_null(c);
    return c;
}

/* Logits of every position of toks, in one pass: the baseline. */
static float *baseline(void) {
    ns_context *c = new_ctx(1, 2, 0);
    char err[256];
    assert_int_equal(ns_decode(c, 0, toks, N, true, err, sizeof err), 0);
    float *all = malloc(sizeof(float) * N * (size_t)n_vocab);
    for (int i = 0; i < N; i++) memcpy(all + (size_t)i * n_vocab, ns_context_logits(c, i), sizeof(float) * n_vocab);
    ns_context_free(c);
    return all;
}

static void assert_row(const float *want, const float *got) {
    assert_non_null(got);
    assert_memory_equal(want, got, sizeof(float) * (size_t)n_vocab);
}

static void test_truncate_and_redo(void **state) {
    (void)state;
    float *base = baseline();
    ns_context *c = new_ctx(1, 2, 0);
    char err[256];
    assert_int_equal(ns_decode(c, 0, toks, N, false, err, sizeof err), 0);
    assert_int_equal(ns_seq_len(c, 0), N);
    ns_seq_truncate(c, 0, 5);
    assert_int_equal(ns_seq_len(c, 0), 5);
    assert_int_equal(ns_decode(c, 0, toks + 5, N - 5, true, err, sizeof err), 0);
    for (int i = 5; i < N; i++) assert_row(base + (size_t)i * n_vocab, ns_context_logits(c, i - 5));
    /* the last token's logits, asked for by -1 */
    assert_row(base + (size_t)(N - 1) * n_vocab, ns_context_logits(c, -1));
    ns_context_free(c);
    free(base);
}

static void test_sequences_are_independent(void **state) {
    (void)state;
    float *base = baseline();
    ns_context *c = new_ctx(3, 2, 0);
    char err[256];
    /* interleave: seq 2 gets junk, seq 0 and 1 the same tokens in different cuts */
    const int32_t junk[4] = {5, 6, 7, 8};
    assert_int_equal(ns_decode(c, 2, junk, 4, false, err, sizeof err), 0);
    assert_int_equal(ns_decode(c, 0, toks, 4, false, err, sizeof err), 0);
    assert_int_equal(ns_decode(c, 1, toks, 7, false, err, sizeof err), 0);
    assert_int_equal(ns_decode(c, 2, junk, 4, false, err, sizeof err), 0);
    assert_int_equal(ns_decode(c, 0, toks + 4, N - 4, false, err, sizeof err), 0);
    assert_row(base + (size_t)(N - 1) * n_vocab, ns_context_logits(c, -1));
    assert_int_equal(ns_decode(c, 1, toks + 7, N - 7, false, err, sizeof err), 0);
    assert_row(base + (size_t)(N - 1) * n_vocab, ns_context_logits(c, -1));
    assert_int_equal(ns_seq_len(c, 0), N);
    assert_int_equal(ns_seq_len(c, 1), N);
    assert_int_equal(ns_seq_len(c, 2), 8);
    assert_int_equal(ns_seq_len(c, 3), -1);
    ns_context_free(c);
    free(base);
}

/* A copied prefix continues exactly as the original would. */
static void test_seq_copy(void **state) {
    (void)state;
    float *base = baseline();
    ns_context *c = new_ctx(2, 2, 0);
    char err[256];
    const int32_t junk[9] = {5, 6, 7, 8, 9, 10, 11, 12, 13};
    assert_int_equal(ns_decode(c, 1, junk, 9, false, err, sizeof err), 0);
    assert_int_equal(ns_decode(c, 0, toks, 8, false, err, sizeof err), 0);
    assert_int_equal(ns_seq_copy(c, 0, 1, 5), 0);
    assert_int_equal(ns_seq_len(c, 1), 5);
    assert_int_equal(ns_decode(c, 1, toks + 5, N - 5, false, err, sizeof err), 0);
    assert_row(base + (size_t)(N - 1) * n_vocab, ns_context_logits(c, -1));
    assert_int_equal(ns_seq_copy(c, 0, 1, 9), -1); /* longer than the source */
    assert_int_equal(ns_seq_copy(c, 0, 2, 1), -1);
    assert_int_equal(ns_seq_len(c, 1), N);
    ns_context_free(c);
    free(base);
}

static void test_state_image_round_trip(void **state) {
    (void)state;
    float *base = baseline();
    ns_context *c = new_ctx(2, 2, 0);
    char err[256];
    assert_int_equal(ns_decode(c, 0, toks, 6, false, err, sizeof err), 0);
    size_t size = ns_seq_state_size(c, 0);
    assert_true(size > 0);
    uint8_t *img = malloc(size);
    assert_int_equal(ns_seq_state_save(c, 0, img, size), 0);
    assert_int_equal(ns_seq_state_save(c, 0, img, size - 1), -1);

    /* restore into the other sequence and into a fresh context; both continue exactly */
    assert_int_equal(ns_seq_state_load(c, 1, img, size, err, sizeof err), 0);
    assert_int_equal(ns_seq_len(c, 1), 6);
    assert_int_equal(ns_decode(c, 1, toks + 6, N - 6, false, err, sizeof err), 0);
    assert_row(base + (size_t)(N - 1) * n_vocab, ns_context_logits(c, -1));
    ns_context *c2 = new_ctx(1, 1, 0);
    assert_int_equal(ns_seq_state_load(c2, 0, img, size, err, sizeof err), 0);
    assert_int_equal(ns_decode(c2, 0, toks + 6, N - 6, false, err, sizeof err), 0);
    assert_row(base + (size_t)(N - 1) * n_vocab, ns_context_logits(c2, -1));
    ns_context_free(c2);

    /* images that do not fit are refused, and the sequence is left as it was */
    assert_int_equal(ns_seq_state_load(c, 1, img, size - 1, err, sizeof err), -1);
    assert_non_null(strstr(err, "bytes"));
    img[0] ^= 1;
    assert_int_equal(ns_seq_state_load(c, 1, img, size, err, sizeof err), -1);
    assert_non_null(strstr(err, "not a KV state image"));
    img[0] ^= 1;
    ns_context_params p32 = {.n_ctx = 64, .kv_type = NS_KV_F32};
    ns_context *c3 = ns_context_new(model, &p32, err, sizeof err);
    assert_int_equal(ns_seq_state_load(c3, 0, img, size, err, sizeof err), -1);
    assert_non_null(strstr(err, "type"));
    ns_context_free(c3);
    assert_int_equal(ns_seq_len(c, 1), N);
    free(img);
    ns_context_free(c);
    free(base);
}

/* The image as pieces is the image; reading pieces back restores it. */
static void test_state_pieces(void **state) {
    (void)state;
    float *base = baseline();
    ns_context *c = new_ctx(2, 2, 0);
    char err[256];
    assert_int_equal(ns_decode(c, 0, toks, 6, false, err, sizeof err), 0);
    size_t size = ns_seq_state_size(c, 0);
    uint8_t *img = malloc(size), *cat = malloc(size);
    assert_int_equal(ns_seq_state_save(c, 0, img, size), 0);
    struct iovec pc[64];
    assert_int_equal(ns_seq_state_pieces(c, 0, pc, 3), -1);
    int n = ns_seq_state_pieces(c, 0, pc, 64);
    assert_true(n > 1);
    size_t at = 0;
    for (int i = 0; i < n; i++) {
        assert_true(at + pc[i].iov_len <= size);
        memcpy(cat + at, pc[i].iov_base, pc[i].iov_len);
        at += pc[i].iov_len;
    }
    assert_int_equal(at, size);
    assert_memory_equal(cat, img, size);

    /* read into sequence 1's pieces, commit, continue exactly */
    assert_int_equal(ns_decode(c, 1, toks, 3, false, err, sizeof err), 0);
    n = ns_seq_state_load_pieces(c, 1, 6, pc, 64, err, sizeof err);
    assert_true(n > 1);
    assert_int_equal(ns_seq_len(c, 1), 0);
    at = 0;
    for (int i = 0; i < n; i++) {
        memcpy(pc[i].iov_base, img + at, pc[i].iov_len);
        at += pc[i].iov_len;
    }
    assert_int_equal(ns_seq_state_load_commit(c, 1, err, sizeof err), 0);
    assert_int_equal(ns_seq_len(c, 1), 6);
    assert_int_equal(ns_decode(c, 1, toks + 6, N - 6, false, err, sizeof err), 0);
    assert_row(base + (size_t)(N - 1) * n_vocab, ns_context_logits(c, -1));

    /* a header that does not match what was asked: refused, sequence empty */
    n = ns_seq_state_load_pieces(c, 1, 5, pc, 64, err, sizeof err);
    memcpy(pc[0].iov_base, img, pc[0].iov_len); /* says 6 tokens */
    assert_int_equal(ns_seq_state_load_commit(c, 1, err, sizeof err), -1);
    assert_non_null(strstr(err, "expected 5"));
    assert_int_equal(ns_seq_len(c, 1), 0);
    assert_int_equal(ns_seq_state_load_commit(c, 1, err, sizeof err), -1); /* nothing pending */
    assert_int_equal(ns_seq_state_load_pieces(c, 1, 65, pc, 64, err, sizeof err), -1);
    free(img);
    free(cat);
    ns_context_free(c);
    free(base);
}

static void test_batch_and_threads_do_not_change_numbers(void **state) {
    (void)state;
    float *base = baseline();
    const int cfg[][2] = {{1, 0}, {3, 0}, {2, 1}, {2, 5}};
    for (size_t k = 0; k < sizeof cfg / sizeof cfg[0]; k++) {
        ns_context *c = new_ctx(1, cfg[k][0], cfg[k][1]);
        char err[256];
        assert_int_equal(ns_decode(c, 0, toks, N, true, err, sizeof err), 0);
        for (int i = 0; i < N; i++) assert_row(base + (size_t)i * n_vocab, ns_context_logits(c, i));
        ns_context_free(c);
    }
    free(base);
}

static void test_decode_errors_leave_state_alone(void **state) {
    (void)state;
    ns_context *c = new_ctx(1, 2, 0);
    char err[256];
    assert_int_equal(ns_decode(c, 0, toks, 3, false, err, sizeof err), 0);
    const int32_t bad[2] = {1, 600};
    assert_int_equal(ns_decode(c, 0, bad, 2, false, err, sizeof err), -1);
    assert_non_null(strstr(err, "outside the vocabulary"));
    assert_int_equal(ns_decode(c, 1, toks, 2, false, err, sizeof err), -1);
    assert_non_null(strstr(err, "sequence 1"));
    assert_int_equal(ns_decode(c, 0, toks, 0, false, err, sizeof err), -1);
    int32_t many[64] = {0};
    assert_int_equal(ns_decode(c, 0, many, 62, false, err, sizeof err), -1);
    assert_non_null(strstr(err, "context is full"));
    assert_int_equal(ns_seq_len(c, 0), 3);
    /* and the context still works */
    assert_int_equal(ns_decode(c, 0, toks + 3, 2, false, err, sizeof err), 0);
    assert_int_equal(ns_seq_len(c, 0), 5);
    ns_context_free(c);
}

int main(void) {
    const char *path = ns_test_shared_path("models/stories260K.gguf");
    if (!path) return NS_TEST_SKIP;
    char err[512];
    model = ns_model_load(path, err, sizeof err);
    if (!model) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    n_vocab = ns_model_hparams(model)->n_vocab;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_truncate_and_redo),
        cmocka_unit_test(test_sequences_are_independent),
        cmocka_unit_test(test_seq_copy),
        cmocka_unit_test(test_state_image_round_trip),
        cmocka_unit_test(test_state_pieces),
        cmocka_unit_test(test_batch_and_threads_do_not_change_numbers),
        cmocka_unit_test(test_decode_errors_leave_state_alone),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    ns_model_free(model);
    return rc;
}
