/* The snapshot checksum: fixed values (snapshot files on disk depend on
 * them), streaming with any split equal to one call, and the changes it must
 * always catch (bit flips, moved words, length); and the same checksum run
 * on a second thread (checksum_behind.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/checksum.h"
#include "util/checksum_behind.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next_rand(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void fill_pattern(uint8_t *b, size_t n) {
    for (size_t i = 0; i < n; i++) b[i] = (uint8_t)(i * 7 + 3);
}

/* Changing any of these changes the format of every snapshot ever saved:
 * bump NS_SNAPSHOT_VERSION with it. */
static void test_known_values(void **state) {
    (void)state;
    static const struct {
        size_t len;
        uint64_t sum;
    } known[] = {
        {0, 0xab389ad2c8348dc4ull},  {1, 0xbf570128ee22c065ull},   {7, 0x8c6f37a4dae5f155ull},
        {8, 0x9f8805cc5af7e405ull},  {31, 0x9c303fcce9b8636aull},  {32, 0x4522b4fc2daffb0full},
        {33, 0x5bb67f600effa9d7ull}, {100, 0xaf073e7120ff4d68ull}, {1000, 0xdf5d2d6393e8bc31ull},
    };
    uint8_t b[1000];
    fill_pattern(b, sizeof b);
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        assert_int_equal(ns_checksum64(b, known[i].len), known[i].sum);
    ns_checksum c;
    ns_checksum_init(&c, 42);
    ns_checksum_update(&c, b, 1000);
    assert_int_equal(ns_checksum_final(&c), 0x267361ab0c40a0e7ull);
}

static uint64_t split_sum(const uint8_t *b, size_t n, uint64_t seed, const size_t *cuts, int n_cuts) {
    ns_checksum c;
    ns_checksum_init(&c, seed);
    size_t at = 0;
    for (int i = 0; i < n_cuts; i++) {
        ns_checksum_update(&c, b + at, cuts[i] - at);
        at = cuts[i];
    }
    ns_checksum_update(&c, b + at, n - at);
    return ns_checksum_final(&c);
}

static void test_every_two_way_split(void **state) {
    (void)state;
    uint8_t b[200];
    for (size_t i = 0; i < sizeof b; i++) b[i] = (uint8_t)next_rand();
    for (size_t n = 0; n <= sizeof b; n++) {
        uint64_t whole = ns_checksum64(b, n);
        for (size_t cut = 0; cut <= n; cut++) assert_int_equal(split_sum(b, n, 0, &cut, 1), whole);
    }
}

static void test_random_splits(void **state) {
    (void)state;
    size_t n = 100000;
    uint8_t *b = malloc(n);
    assert_non_null(b);
    for (size_t i = 0; i < n; i++) b[i] = (uint8_t)next_rand();
    for (int round = 0; round < 300; round++) {
        size_t len = (size_t)(next_rand() % (n + 1));
        uint64_t seed = round % 3 ? next_rand() : 0;
        ns_checksum one;
        ns_checksum_init(&one, seed);
        ns_checksum_update(&one, b, len);
        size_t cuts[64];
        int n_cuts = (int)(next_rand() % 64);
        for (int i = 0; i < n_cuts; i++) {
            /* mostly small pieces (inside a stripe), sometimes large ones */
            size_t prev = i ? cuts[i - 1] : 0;
            size_t step = next_rand() % 4 ? next_rand() % 40 : next_rand() % 5000;
            cuts[i] = prev + step > len ? len : prev + step;
        }
        assert_int_equal(split_sum(b, len, seed, cuts, n_cuts), ns_checksum_final(&one));
        if (seed == 0) assert_int_equal(ns_checksum_final(&one), ns_checksum64(b, len));
    }
    free(b);
}

static void test_final_does_not_consume(void **state) {
    (void)state;
    uint8_t b[77];
    fill_pattern(b, sizeof b);
    ns_checksum c;
    ns_checksum_init(&c, 0);
    ns_checksum_update(&c, b, 40);
    uint64_t mid = ns_checksum_final(&c);
    assert_int_equal(mid, ns_checksum64(b, 40));
    ns_checksum_update(&c, b + 40, 37);
    assert_int_equal(ns_checksum_final(&c), ns_checksum64(b, 77));
}

static void test_alignment_does_not_matter(void **state) {
    (void)state;
    uint8_t src[300], buf[320];
    for (size_t i = 0; i < sizeof src; i++) src[i] = (uint8_t)next_rand();
    uint64_t want = ns_checksum64(src, sizeof src);
    for (size_t shift = 1; shift < 16; shift++) {
        memcpy(buf + shift, src, sizeof src);
        assert_int_equal(ns_checksum64(buf + shift, sizeof src), want);
    }
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void assert_all_distinct(uint64_t *v, size_t n) {
    qsort(v, n, sizeof *v, cmp_u64);
    for (size_t i = 1; i < n; i++)
        if (v[i] == v[i - 1]) fail_msg("two inputs gave the same checksum %016llx", (unsigned long long)v[i]);
}

/* A flipped bit anywhere (stripes and tail) always changes the value, and
 * every flip gives a different one. */
static void test_every_bit_flip_is_caught(void **state) {
    (void)state;
    enum { N = 203 };
    uint8_t b[N];
    for (size_t i = 0; i < N; i++) b[i] = (uint8_t)next_rand();
    uint64_t *sums = malloc((N * 8 + 1) * sizeof *sums);
    assert_non_null(sums);
    sums[0] = ns_checksum64(b, N);
    for (size_t bit = 0; bit < N * 8; bit++) {
        b[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        sums[bit + 1] = ns_checksum64(b, N);
        b[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    assert_all_distinct(sums, N * 8 + 1);
    free(sums);
}

/* Two flipped bits in words that one lane folds one after the other (and in
 * neighbouring lanes, and in the tail): a multiply only carries differences
 * upwards, so this is where a weak step would let the second flip cancel
 * the first. */
static void test_two_bit_flips_are_caught(void **state) {
    (void)state;
    enum { N = 150 }; /* four stripes and a 22-byte tail */
    uint8_t b[N];
    for (size_t i = 0; i < N; i++) b[i] = (uint8_t)next_rand();
    uint64_t orig = ns_checksum64(b, N);
    static const size_t word_pairs[][2] = {{0, 32}, {8, 40}, {24, 56}, {0, 64}, {0, 8}, {96, 128}, {128, 136}, {128, 142}};
    for (size_t p = 0; p < sizeof word_pairs / sizeof word_pairs[0]; p++) {
        size_t wa = word_pairs[p][0], wb = word_pairs[p][1];
        for (int x = 0; x < 64; x++)
            for (int y = 0; y < 64; y++) {
                b[wa + x / 8] ^= (uint8_t)(1u << (x % 8));
                b[wb + y / 8] ^= (uint8_t)(1u << (y % 8));
                if (ns_checksum64(b, N) == orig) fail_msg("flips of bit %d at %zu and %d at %zu cancel", x, wa, y, wb);
                b[wa + x / 8] ^= (uint8_t)(1u << (x % 8));
                b[wb + y / 8] ^= (uint8_t)(1u << (y % 8));
            }
    }
}

/* Zeros of every length, and the same bytes moved to another place. */
static void test_length_and_order_count(void **state) {
    (void)state;
    static uint8_t zeros[600];
    uint64_t sums[601];
    for (size_t n = 0; n <= 600; n++) sums[n] = ns_checksum64(zeros, n);
    assert_all_distinct(sums, 601);

    uint8_t a[128], b[128];
    for (size_t i = 0; i < sizeof a; i++) a[i] = (uint8_t)next_rand();
    memcpy(b, a, sizeof a);
    /* swap the first word of stripes 0 and 2 (same lane) */
    memcpy(b, a + 64, 8);
    memcpy(b + 64, a, 8);
    assert_true(ns_checksum64(a, sizeof a) != ns_checksum64(b, sizeof b));
    /* swap two words of one stripe (different lanes) */
    memcpy(b, a, sizeof a);
    memcpy(b, a + 8, 8);
    memcpy(b + 8, a, 8);
    assert_true(ns_checksum64(a, sizeof a) != ns_checksum64(b, sizeof b));
}

static void test_seed_matters(void **state) {
    (void)state;
    uint8_t b[64];
    fill_pattern(b, sizeof b);
    uint64_t sums[8];
    for (int s = 0; s < 8; s++) {
        ns_checksum c;
        ns_checksum_init(&c, (uint64_t)s);
        ns_checksum_update(&c, b, sizeof b);
        sums[s] = ns_checksum_final(&c);
    }
    assert_all_distinct(sums, 8);
}

/* ---- on a second thread ---- */

/* Uneven pieces (some empty, some over the helper's 1 MB chunk, odd
 * lengths), continuing a state that already holds a few bytes: the helper's
 * result equals one thread's, with everything ready at once or with the
 * bytes reported ready in random steps as a reader would. */
static void test_behind_equals_inline(void **state) {
    (void)state;
    enum { N = 3 * 1024 * 1024 + 77 };
    uint8_t *b = malloc(N);
    assert_non_null(b);
    for (size_t i = 0; i < N; i++) b[i] = (uint8_t)next_rand();
    const size_t cuts[] = {0, 5, 5, 1500000, 1500001, 2900000, N};
    struct iovec pieces[6];
    for (int i = 0; i < 6; i++) pieces[i] = (struct iovec){b + cuts[i], cuts[i + 1] - cuts[i]};

    ns_checksum start, inline_ck;
    ns_checksum_init(&start, 7);
    ns_checksum_update(&start, "head", 4);
    inline_ck = start;
    ns_checksum_update(&inline_ck, b, N);
    const uint64_t want = ns_checksum_final(&inline_ck);

    for (int ready_now = 1; ready_now >= 0; ready_now--) {
        ns_checksum ck = start;
        ns_checksum_behind *h = ns_checksum_behind_start(&ck, pieces, 6, ready_now);
        assert_non_null(h);
        for (uint64_t at = 0; !ready_now && at < N;) {
            at += 1 + next_rand() % 400000;
            ns_checksum_behind_ready(h, at < N ? at : N);
        }
        ns_checksum_behind_finish(h, &ck, false);
        assert_int_equal(ns_checksum_final(&ck), want);
    }
    free(b);
}

/* A caller that fails midway abandons the helper: it returns without the
 * missing bytes and leaves the caller's state as it was. */
static void test_behind_abandoned(void **state) {
    (void)state;
    uint8_t b[4096];
    fill_pattern(b, sizeof b);
    struct iovec piece = {b, sizeof b};
    ns_checksum ck;
    ns_checksum_init(&ck, 1);
    const uint64_t before = ns_checksum_final(&ck);
    ns_checksum_behind *h = ns_checksum_behind_start(&ck, &piece, 1, false);
    assert_non_null(h);
    ns_checksum_behind_ready(h, 100);
    ns_checksum_behind_finish(h, &ck, true);
    assert_int_equal(ns_checksum_final(&ck), before);
    h = ns_checksum_behind_start(&ck, NULL, 0, false); /* nothing to do */
    assert_non_null(h);
    ns_checksum_behind_finish(h, &ck, false);
    assert_int_equal(ns_checksum_final(&ck), before);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_values),
        cmocka_unit_test(test_every_two_way_split),
        cmocka_unit_test(test_random_splits),
        cmocka_unit_test(test_final_does_not_consume),
        cmocka_unit_test(test_alignment_does_not_matter),
        cmocka_unit_test(test_every_bit_flip_is_caught),
        cmocka_unit_test(test_two_bit_flips_are_caught),
        cmocka_unit_test(test_length_and_order_count),
        cmocka_unit_test(test_seed_matters),
        cmocka_unit_test(test_behind_equals_inline),
        cmocka_unit_test(test_behind_abandoned),
    };
    return cmocka_run_group_tests_name("checksum", tests, NULL, NULL);
}
