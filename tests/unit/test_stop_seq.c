/* The streaming stop-sequence matcher: held-back prefixes, stops split
 * across pieces, several stops, no stop, flush, UTF-8, and a randomized
 * comparison with a plain whole-text search under random piece splits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nstack/stop.h"

/* everything a matcher released, appended */
typedef struct {
    char buf[4096];
    size_t len;
} sink;

static size_t feed(ns_stop *st, sink *out, const char *piece) {
    const char *p;
    size_t n = ns_stop_feed(st, piece, strlen(piece), &p);
    assert_true(out->len + n < sizeof out->buf);
    memcpy(out->buf + out->len, p, n);
    out->len += n;
    out->buf[out->len] = 0;
    return n;
}

static size_t flush(ns_stop *st, sink *out) {
    const char *p;
    size_t n = ns_stop_flush(st, &p);
    assert_true(out->len + n < sizeof out->buf);
    memcpy(out->buf + out->len, p, n);
    out->len += n;
    out->buf[out->len] = 0;
    return n;
}

static void test_no_stops_passes_text(void **state) {
    (void)state;
    ns_stop *st = ns_stop_new(NULL, 0);
    assert_non_null(st);
    sink o = {.len = 0};
    assert_int_equal(feed(st, &o, "Hello"), 5);
    assert_int_equal(feed(st, &o, ", world"), 7);
    assert_int_equal(feed(st, &o, ""), 0);
    assert_int_equal(flush(st, &o), 0);
    assert_string_equal(o.buf, "Hello, world");
    assert_false(ns_stop_hit(st));
    assert_int_equal(ns_stop_which(st), -1);
    ns_stop_free(st);
}

static void test_utf8_never_split(void **state) {
    (void)state;
    ns_stop *st = ns_stop_new(NULL, 0);
    sink o = {.len = 0};
    /* "é" = C3 A9 split over two pieces */
    assert_int_equal(feed(st, &o, "caf\xC3"), 3);
    assert_int_equal(ns_stop_held(st), 1);
    assert_int_equal(feed(st, &o, "\xA9!"), 3);
    /* a 4-byte character one byte at a time */
    assert_int_equal(feed(st, &o, "\xF0"), 0);
    assert_int_equal(feed(st, &o, "\x9F"), 0);
    assert_int_equal(feed(st, &o, "\x98"), 0);
    assert_int_equal(feed(st, &o, "\x80"), 4);
    assert_string_equal(o.buf, "caf\xC3\xA9!\xF0\x9F\x98\x80");
    /* an incomplete character at the very end comes out at the flush */
    assert_int_equal(feed(st, &o, "x\xE2\x82"), 1);
    assert_int_equal(flush(st, &o), 2);
    assert_string_equal(o.buf, "caf\xC3\xA9!\xF0\x9F\x98\x80x\xE2\x82");
    /* stray continuation bytes are not held forever */
    ns_stop_reset(st);
    o.len = 0;
    assert_int_equal(feed(st, &o, "\x80\x80\x80\x80\x80"), 5);
    ns_stop_free(st);
}

static void test_prefix_held_then_stop(void **state) {
    (void)state;
    const char *stops[] = {"\nUser:"};
    ns_stop *st = ns_stop_new(stops, 1);
    sink o = {.len = 0};
    assert_int_equal(feed(st, &o, "Hello\nUs"), 5); /* "\nUs" could start the stop */
    assert_int_equal(ns_stop_held(st), 3);
    assert_int_equal(feed(st, &o, "e"), 0);
    assert_int_equal(ns_stop_held(st), 4);
    assert_false(ns_stop_hit(st));
    assert_int_equal(feed(st, &o, "r: and more"), 0);
    assert_true(ns_stop_hit(st));
    assert_int_equal(ns_stop_which(st), 0);
    assert_int_equal(feed(st, &o, "ignored"), 0); /* after the stop: nothing */
    assert_int_equal(flush(st, &o), 0);
    assert_string_equal(o.buf, "Hello");
    ns_stop_free(st);
}

static void test_prefix_that_was_not_a_stop(void **state) {
    (void)state;
    const char *stops[] = {"\nUser:"};
    ns_stop *st = ns_stop_new(stops, 1);
    sink o = {.len = 0};
    assert_int_equal(feed(st, &o, "a\nU"), 1);
    assert_int_equal(feed(st, &o, "nder"), 6); /* released as soon as it cannot match */
    assert_int_equal(feed(st, &o, " the\n"), 4);
    assert_int_equal(ns_stop_held(st), 1);
    assert_int_equal(flush(st, &o), 1); /* the end: what was held comes out */
    assert_string_equal(o.buf, "a\nUnder the\n");
    assert_false(ns_stop_hit(st));
    ns_stop_free(st);
}

static void test_stop_inside_one_piece(void **state) {
    (void)state;
    const char *stops[] = {"STOP"};
    ns_stop *st = ns_stop_new(stops, 1);
    sink o = {.len = 0};
    assert_int_equal(feed(st, &o, "abc STOP def"), 4);
    assert_true(ns_stop_hit(st));
    assert_string_equal(o.buf, "abc ");
    /* at the very start */
    ns_stop_reset(st);
    o.len = 0;
    o.buf[0] = 0;
    assert_false(ns_stop_hit(st));
    assert_int_equal(feed(st, &o, "STOP"), 0);
    assert_true(ns_stop_hit(st));
    assert_string_equal(o.buf, "");
    ns_stop_free(st);
}

static void test_split_across_many_pieces(void **state) {
    (void)state;
    const char *stops[] = {"</answer>"};
    ns_stop *st = ns_stop_new(stops, 1);
    sink o = {.len = 0};
    const char *pieces[] = {"The", " answer", " is 4", ".<", "/", "ans", "wer", "> trailing"};
    for (size_t i = 0; i < sizeof pieces / sizeof pieces[0]; i++) feed(st, &o, pieces[i]);
    assert_true(ns_stop_hit(st));
    assert_string_equal(o.buf, "The answer is 4.");
    ns_stop_free(st);
}

static void test_several_stops(void **state) {
    (void)state;
    /* the one that completes first wins, however the text is cut */
    const char *stops[] = {"abcd", "bc"};
    ns_stop *st = ns_stop_new(stops, 2);
    sink o = {.len = 0};
    feed(st, &o, "xabcd");
    assert_true(ns_stop_hit(st));
    assert_int_equal(ns_stop_which(st), 1);
    assert_string_equal(o.buf, "xa");
    ns_stop_reset(st);
    o.len = 0;
    const char *bytes[] = {"x", "a", "b", "c", "d"};
    for (int i = 0; i < 5; i++) feed(st, &o, bytes[i]);
    assert_int_equal(ns_stop_which(st), 1);
    assert_string_equal(o.buf, "xa");
    ns_stop_free(st);

    /* ending on the same byte: the longest */
    const char *stops2[] = {"c", "bc", "zz"};
    st = ns_stop_new(stops2, 3);
    o.len = 0;
    feed(st, &o, "abc");
    assert_int_equal(ns_stop_which(st), 1);
    assert_string_equal(o.buf, "a");
    ns_stop_free(st);

    /* overlapping prefixes: "aab" in "aaab" */
    const char *stops3[] = {"aab", "ax"};
    st = ns_stop_new(stops3, 2);
    o.len = 0;
    assert_int_equal(feed(st, &o, "a"), 0);
    assert_int_equal(feed(st, &o, "a"), 0);
    assert_int_equal(feed(st, &o, "a"), 1); /* the first a can no longer start "aab" */
    assert_int_equal(feed(st, &o, "b"), 0);
    assert_int_equal(ns_stop_which(st), 0);
    assert_string_equal(o.buf, "a");
    ns_stop_free(st);

    /* empty strings are ignored; indexes stay those given */
    const char *stops4[] = {"", NULL, "end"};
    st = ns_stop_new(stops4, 3);
    o.len = 0;
    feed(st, &o, "the end");
    assert_int_equal(ns_stop_which(st), 2);
    assert_string_equal(o.buf, "the ");
    ns_stop_free(st);
}

static void test_utf8_stop(void **state) {
    (void)state;
    const char *stops[] = {"\xC3\xA9!"}; /* "é!" */
    ns_stop *st = ns_stop_new(stops, 1);
    sink o = {.len = 0};
    assert_int_equal(feed(st, &o, "caf\xC3"), 3);
    assert_int_equal(feed(st, &o, "\xA9"), 0);
    assert_int_equal(feed(st, &o, "!"), 0);
    assert_true(ns_stop_hit(st));
    assert_string_equal(o.buf, "caf");
    /* "é" followed by something else comes out whole */
    ns_stop_reset(st);
    o.len = 0;
    feed(st, &o, "caf\xC3");
    feed(st, &o, "\xA9");
    assert_int_equal(feed(st, &o, "s"), 3);
    assert_int_equal(flush(st, &o), 0);
    assert_string_equal(o.buf, "caf\xC3\xA9s");
    ns_stop_free(st);
}

/* ---- randomized: streaming equals a plain search of the whole text ---- */

static uint64_t rs = 0x9E3779B97F4A7C15ull;
static unsigned rnd(unsigned n) {
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    return (unsigned)(rs % n);
}

static void random_text(char *out, size_t units) {
    static const char *alpha[] = {"a", "b", "c", "\xC3\xA9", "\xE2\x82\xAC"};
    out[0] = 0;
    for (size_t i = 0; i < units; i++) strcat(out, alpha[rnd(5)]);
}

static void test_random_against_whole_text(void **state) {
    (void)state;
    int hits = 0, misses = 0;
    for (int trial = 0; trial < 20000; trial++) {
        char text[256], stopbuf[3][32];
        const char *stops[3];
        int n_stops = 1 + (int)rnd(3);
        size_t max_len = 0;
        for (int k = 0; k < n_stops; k++) {
            random_text(stopbuf[k], 1 + rnd(3));
            stops[k] = stopbuf[k];
            if (strlen(stops[k]) > max_len) max_len = strlen(stops[k]);
        }
        random_text(text, rnd(30));
        size_t L = strlen(text);

        /* reference: the first end position where some stop ends; the
         * longest of those ending there */
        int want_which = -1;
        size_t want_len = L;
        for (size_t e = 1; e <= L && want_which < 0; e++) {
            size_t best = 0;
            for (int k = 0; k < n_stops; k++) {
                size_t sl = strlen(stops[k]);
                if (sl <= e && memcmp(text + e - sl, stops[k], sl) == 0 && sl > best) {
                    best = sl;
                    want_which = k;
                    want_len = e - sl;
                }
            }
        }

        ns_stop *st = ns_stop_new(stops, n_stops);
        assert_non_null(st);
        sink o = {.len = 0};
        size_t pos = 0;
        while (pos < L && !ns_stop_hit(st)) {
            size_t n = 1 + rnd(6);
            if (n > L - pos) n = L - pos;
            const char *p;
            size_t got = ns_stop_feed(st, text + pos, n, &p);
            memcpy(o.buf + o.len, p, got);
            o.len += got;
            pos += n;
            if (!ns_stop_hit(st)) {
                /* nothing lost: released + held = fed; held is short */
                assert_int_equal(o.len + ns_stop_held(st), pos);
                assert_true(ns_stop_held(st) <= max_len - 1 + 3);
                /* released text never ends inside a character */
                if (o.len > 0) {
                    size_t back = 0;
                    while (back < o.len && ((unsigned char)o.buf[o.len - 1 - back] & 0xC0) == 0x80) back++;
                    unsigned char lead = (unsigned char)o.buf[o.len - 1 - back];
                    size_t need = lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
                    assert_int_equal(back + 1, need);
                }
            }
        }
        if (!ns_stop_hit(st)) flush(st, &o);
        if (o.len != want_len || memcmp(o.buf, text, want_len) != 0 || ns_stop_which(st) != want_which)
            fail_msg("trial %d: text '%s', %d stops (first '%s'): got %zu bytes, stop %d; want %zu, stop %d", trial,
                     text, n_stops, stops[0], o.len, ns_stop_which(st), want_len, want_which);
        hits += want_which >= 0;
        misses += want_which < 0;
        ns_stop_free(st);
    }
    /* both outcomes were exercised plenty */
    assert_true(hits > 2000 && misses > 2000);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_stops_passes_text),
        cmocka_unit_test(test_utf8_never_split),
        cmocka_unit_test(test_prefix_held_then_stop),
        cmocka_unit_test(test_prefix_that_was_not_a_stop),
        cmocka_unit_test(test_stop_inside_one_piece),
        cmocka_unit_test(test_split_across_many_pieces),
        cmocka_unit_test(test_several_stops),
        cmocka_unit_test(test_utf8_stop),
        cmocka_unit_test(test_random_against_whole_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
