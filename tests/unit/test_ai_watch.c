/* The frame of `nstack ai watch` (src/cli/watch_view.h), rendered without
 * a terminal: at 80x24 and 40x10 no line is wider than the width and no
 * frame taller than the height; long and UTF-8 names are cut on a
 * character boundary with a '~'; control bytes from a server never reach
 * the terminal; the sections show what the JSON answers hold; an
 * unreachable server says so. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/watch_view.h"

static char buf[64 * 1024];

static const char RESOURCES[] =
    "{\"time\": \"2026-12-07T21:08:40.113Z\", \"cpu\": {\"system_pct\": 12.5, \"process_pct\": 3.1, \"cores\": 16},"
    " \"ram\": {\"total\": 68719476736, \"used\": 20132659200, \"available\": 48586817536},"
    " \"gpus\": [{\"index\": 0, \"name\": \"NVIDIA H100 80GB HBM3\", \"vram_total\": 85899345920,"
    "   \"vram_used\": 42949672960, \"vram_ours\": 0, \"util_pct\": 97, \"temp_c\": 61, \"power_w\": 402.5}],"
    " \"models\": [{\"name\": \"from-resources\", \"size\": 1000, \"size_vram\": 0, \"active_jobs\": 0, "
    "\"queued_jobs\": 0}],"
    " \"alerts\": {\"thresholds\": {}, \"active\": [{\"metric\": \"temp_c\", \"gpu\": 0, \"value\": 88, "
    "\"threshold\": 85}]}}";

/* A long name, a UTF-8 name (2-byte, 3-byte wide, 4-byte emoji) and one
 * with an escape sequence in it. */
static const char PS[] =
    "{\"models\": ["
    "{\"name\": \"a-model-with-a-very-long-name-that-does-not-fit-anywhere:latest\", \"size\": 4108204032,"
    " \"size_vram\": 4108204032, \"active_requests\": 1, \"queued_requests\": 2},"
    "{\"name\": \"\xc3\xa9t\xc3\xa9-\xe6\xbc\xa2\xe5\xad\x97\xe6\xbc\xa2\xe5\xad\x97\xe6\xbc\xa2\xe5\xad\x97\xe6\xbc"
    "\xa2\xe5\xad\x97\xe6\xbc\xa2\xe5\xad\x97\xe6\xbc\xa2\xe5\xad\x97-\xf0\x9f\x98\x80\xf0\x9f\x98\x80:7b\", "
    "\"size\": 2000000, \"size_vram\": 0, \"active_requests\": 0, \"queued_requests\": 0},"
    "{\"name\": \"evil\\u001b[2Jname\", \"size\": 1, \"size_vram\": 0, \"active_requests\": 0, \"queued_requests\": 0}"
    "]}";

static const char GENS[] =
    "{\"generations\": ["
    "{\"model\": \"demo:latest\", \"finish\": \"stop\", \"eval_tokens\": 128, \"ttft_ms\": 41.2,"
    " \"eval_tokens_per_s\": 87.25},"
    "{\"model\": \"demo:latest\", \"finish\": \"length\", \"eval_tokens\": 16, \"ttft_ms\": 1520,"
    " \"eval_tokens_per_s\": 12.5}]}";

static void full_data(watch_data *d) {
    watch_data_init(d, "http://127.0.0.1:11434");
    cJSON *res = cJSON_Parse(RESOURCES), *ps = cJSON_Parse(PS), *gens = cJSON_Parse(GENS);
    assert_non_null(res);
    assert_non_null(ps);
    assert_non_null(gens);
    watch_data_from_json(d, res, ps, gens);
    cJSON_Delete(res);
    cJSON_Delete(ps);
    cJSON_Delete(gens);
}

/* Every line within width columns, at most height lines (height 0: any),
 * valid UTF-8 and no control byte; returns the line count. */
static int check_frame(const char *frame, int width, int height) {
    int lines = 0;
    const char *p = frame;
    for (;;) {
        const char *end = strchr(p, '\n');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char line[4096];
        assert_true(len < sizeof line);
        memcpy(line, p, len);
        line[len] = 0;
        int w = watch_text_width(line);
        if (w > width) fail_msg("line %d is %d columns, wider than %d: '%s'", lines + 1, w, width, line);
        for (size_t i = 0; i < len; i++) {
            unsigned char c = (unsigned char)line[i];
            if (c < 0x20 || c == 0x7f) fail_msg("control byte 0x%02x in line %d: '%s'", c, lines + 1, line);
            /* a lead byte must be followed by its continuation bytes */
            int need = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : c >= 0xC0 ? 1 : 0;
            if (c >= 0x80 && c < 0xC0) fail_msg("stray continuation byte in line %d: '%s'", lines + 1, line);
            for (int k = 1; k <= need; k++)
                if (i + (size_t)k >= len || ((unsigned char)line[i + (size_t)k] & 0xC0) != 0x80)
                    fail_msg("UTF-8 sequence cut in line %d: '%s'", lines + 1, line);
            i += (size_t)need;
        }
        lines++;
        if (!end) break;
        p = end + 1;
    }
    if (height > 0) assert_true(lines <= height);
    return lines;
}

static void test_text_width(void **state) {
    (void)state;
    assert_int_equal(watch_text_width(""), 0);
    assert_int_equal(watch_text_width("abc"), 3);
    assert_int_equal(watch_text_width("\xc3\xa9t\xc3\xa9"), 3);         /* été */
    assert_int_equal(watch_text_width("\xe6\xbc\xa2\xe5\xad\x97"), 4); /* two wide characters */
    assert_int_equal(watch_text_width("\xf0\x9f\x98\x80"), 2);         /* an emoji */
    assert_int_equal(watch_text_width("e\xcc\x81"), 1);                /* e + combining acute */
    assert_int_equal(watch_text_width("\xff\xfe"), 2);                 /* invalid bytes count 1 each */
}

static void test_80x24(void **state) {
    (void)state;
    static watch_data d;
    full_data(&d);
    int n = watch_render(&d, 80, 24, buf, sizeof buf);
    assert_int_equal(check_frame(buf, 80, 24), n);
    assert_non_null(strstr(buf, "nstack ai watch  http://127.0.0.1:11434"));
    assert_non_null(strstr(buf, "21:08:40"));
    assert_non_null(strstr(buf, "CPU "));
    assert_non_null(strstr(buf, "12.5%  16 cores"));
    assert_non_null(strstr(buf, "RAM "));
    assert_non_null(strstr(buf, "18.8 GiB / 64.0 GiB"));
    assert_non_null(strstr(buf, "GPU0 NVIDIA H100 80GB HBM3"));
    assert_non_null(strstr(buf, "40.0 GiB / 80.0 GiB  util 97%  61C  402W"));
    /* the models come from /api/ps, not /api/resources */
    assert_non_null(strstr(buf, "MODELS  3 loaded"));
    assert_null(strstr(buf, "from-resources"));
    assert_non_null(strstr(buf, "ACTIVE"));
    assert_non_null(strstr(buf, "3.8 GiB"));
    assert_non_null(strstr(buf, "a-model-with-a-very-long-name"));
    assert_non_null(strstr(buf, "~ ")); /* the long name was cut with a marker */
    assert_non_null(strstr(buf, "evil?[2Jname"));
    assert_non_null(strstr(buf, "RECENT GENERATIONS"));
    assert_non_null(strstr(buf, "87.2"));
    assert_non_null(strstr(buf, "41 ms"));
    assert_non_null(strstr(buf, "1.52 s"));
    assert_non_null(strstr(buf, "ALERTS  1 active"));
    assert_non_null(strstr(buf, "GPU0 at 88C (threshold 85C)"));
    assert_null(strstr(buf, "unreachable"));
}

static void test_40x10(void **state) {
    (void)state;
    static watch_data d;
    full_data(&d);
    int n = watch_render(&d, 40, 10, buf, sizeof buf);
    assert_int_equal(n, 10);
    assert_int_equal(check_frame(buf, 40, 10), 10);
    /* the frame did not fit: its last line says how much is hidden */
    const char *last = strrchr(buf, '\n');
    assert_non_null(last);
    assert_non_null(strstr(last, "lines: enlarge the terminal)"));
    assert_non_null(strstr(buf, "RAM "));

    /* without a height limit (a snapshot) everything shows, still 40 wide,
     * with fewer table columns rather than names cut to nothing */
    n = watch_render(&d, 40, 0, buf, sizeof buf);
    assert_true(n > 10);
    check_frame(buf, 40, 0);
    assert_non_null(strstr(buf, "GPU0 at 88C"));
    assert_null(strstr(buf, "QUEUED"));
    assert_non_null(strstr(buf, "a-model-with-a"));
}

/* Every width from tiny to wide: the UTF-8 names are cut at every possible
 * place; no frame may break a rule. */
static void test_every_width(void **state) {
    (void)state;
    static watch_data d;
    full_data(&d);
    for (int w = 1; w <= 140; w++) {
        for (int h = 1; h <= 30; h += 7) {
            watch_render(&d, w, h, buf, sizeof buf);
            check_frame(buf, w < 10 ? 10 : w, h);
        }
    }
}

static void test_unreachable(void **state) {
    (void)state;
    static watch_data d;
    watch_data_init(&d, "http://127.0.0.1:1");
    ns_resource_sample s;
    memset(&s, 0, sizeof s);
    s.time_ns = 1700000000LL * 1000000000LL;
    s.ram_total = 8LL << 30;
    s.ram_used = 2LL << 30;
    s.n_cpus = 4;
    watch_data_from_sample(&d, &s);
    snprintf(d.error, sizeof d.error, "connection refused (is `nstack serve` running?)");
    int n = watch_render(&d, 80, 24, buf, sizeof buf);
    assert_int_equal(check_frame(buf, 80, 24), n);
    assert_non_null(strstr(buf, "server: unreachable (http://127.0.0.1:1)"));
    assert_non_null(strstr(buf, "connection refused"));
    assert_non_null(strstr(buf, "2.0 GiB / 8.0 GiB  25%"));
    assert_non_null(strstr(buf, "GPU  none"));
    assert_null(strstr(buf, "MODELS"));
}

/* A small buffer truncates the frame but still ends in a NUL. */
static void test_small_buffer(void **state) {
    (void)state;
    static watch_data d;
    full_data(&d);
    char small[100];
    memset(small, 'x', sizeof small);
    watch_render(&d, 80, 24, small, sizeof small);
    assert_true(strlen(small) < sizeof small);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text_width), cmocka_unit_test(test_80x24),       cmocka_unit_test(test_40x10),
        cmocka_unit_test(test_every_width), cmocka_unit_test(test_unreachable), cmocka_unit_test(test_small_buffer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
