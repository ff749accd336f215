/* The server mode (server/mode.h): parsing the state file, and the file's
 * life: missing means NORMAL, corrupt means GAMING with a note, a set writes
 * it (and survives a reopen), a set that cannot write changes nothing, the
 * same mode again keeps since, and a change publishes mode_changed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/events.h"
#include "server/mode.h"
#include "testutil.h"

static char dir[256];

static int setup(void **state) {
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/nstack-test-mode.XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int parse(const char *text, ns_mode_state *st, char *err, size_t errlen) {
    return ns_mode_parse_state(text, strlen(text), st, err, errlen);
}

static void test_names(void **state) {
    (void)state;
    ns_mode_kind m;
    assert_int_equal(ns_mode_parse_name("gaming", &m), 0);
    assert_int_equal(m, NS_MODE_GAMING);
    assert_int_equal(ns_mode_parse_name("NoRmAl", &m), 0);
    assert_int_equal(m, NS_MODE_NORMAL);
    assert_int_equal(ns_mode_parse_name("", &m), -1);
    assert_int_equal(ns_mode_parse_name("gamingx", &m), -1);
    assert_int_equal(ns_mode_parse_name(NULL, &m), -1);
    assert_string_equal(ns_mode_name(NS_MODE_GAMING), "GAMING");
    assert_string_equal(ns_mode_name(NS_MODE_NORMAL), "NORMAL");
}

static void test_parse_good(void **state) {
    (void)state;
    ns_mode_state st;
    char err[128];
    assert_int_equal(parse("{\"mode\":\"GAMING\",\"since\":\"2026-12-07T21:00:00Z\",\"changed_by\":\"10.0.0.2:5555\"}",
                           &st, err, sizeof err),
                     0);
    assert_int_equal(st.mode, NS_MODE_GAMING);
    assert_string_equal(st.since, "2026-12-07T21:00:00Z");
    assert_string_equal(st.changed_by, "10.0.0.2:5555");
    assert_string_equal(st.note, "");
    /* fractions, offsets, lower case, no changed_by, other keys ignored */
    assert_int_equal(parse("{\"mode\":\"normal\",\"since\":\"2026-12-07T21:00:00.123456789+01:00\",\"x\":1}", &st, err,
                           sizeof err),
                     0);
    assert_int_equal(st.mode, NS_MODE_NORMAL);
    assert_string_equal(st.since, "2026-12-07T21:00:00.123456789+01:00");
    assert_string_equal(st.changed_by, "");
    assert_int_equal(parse("{\"mode\":\"NORMAL\",\"since\":\"2026-12-07T21:00:00-05:30\",\"changed_by\":null}", &st,
                           err, sizeof err),
                     0);
}

static void test_parse_bad(void **state) {
    (void)state;
    static const struct {
        const char *text, *err;
    } bad[] = {
        {"", "invalid JSON"},
        {"{\"mode\":\"GAM", "invalid JSON"},
        {"[\"GAMING\"]", "not a JSON object"},
        {"{\"since\":\"2026-12-07T21:00:00Z\"}", "\"mode\" must be"},
        {"{\"mode\":\"turbo\",\"since\":\"2026-12-07T21:00:00Z\"}", "\"mode\" must be"},
        {"{\"mode\":1,\"since\":\"2026-12-07T21:00:00Z\"}", "\"mode\" must be"},
        {"{\"mode\":\"GAMING\"}", "\"since\" must be"},
        {"{\"mode\":\"GAMING\",\"since\":\"yesterday\"}", "\"since\" must be"},
        {"{\"mode\":\"GAMING\",\"since\":\"2026-12-07 21:00:00Z\"}", "\"since\" must be"},
        {"{\"mode\":\"GAMING\",\"since\":\"2026-12-07T21:00:00\"}", "\"since\" must be"},
        {"{\"mode\":\"GAMING\",\"since\":\"2026-12-07T21:00:00.Z\"}", "\"since\" must be"},
        {"{\"mode\":\"GAMING\",\"since\":\"2026-12-07T21:00:00Zjunk\"}", "\"since\" must be"},
        {"{\"mode\":\"GAMING\",\"since\":\"2026-12-07T21:00:00+0100\"}", "\"since\" must be"},
        {"{\"mode\":\"GAMING\",\"since\":\"2026-12-07T21:00:00Z\",\"changed_by\":7}", "\"changed_by\" must be"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ns_mode_state st;
        char err[128] = "";
        if (parse(bad[i].text, &st, err, sizeof err) != -1) fail_msg("accepted: %s", bad[i].text);
        if (!strstr(err, bad[i].err)) fail_msg("%s: error '%s' lacks '%s'", bad[i].text, err, bad[i].err);
    }
}

static void test_state_json(void **state) {
    (void)state;
    ns_mode_state st = {.mode = NS_MODE_GAMING, .since = "2026-12-07T21:00:00Z", .changed_by = "startup"};
    cJSON *o = ns_mode_state_json(&st);
    char *s = cJSON_PrintUnformatted(o);
    assert_string_equal(s, "{\"mode\":\"GAMING\",\"since\":\"2026-12-07T21:00:00Z\",\"changed_by\":\"startup\"}");
    free(s);
    cJSON_Delete(o);
    snprintf(st.note, sizeof st.note, "why");
    o = ns_mode_state_json(&st);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(o, "note")->valuestring, "why");
    cJSON_Delete(o);
}

typedef struct {
    int n;
    ns_event last;
} seen_events;

static void on_event(const ns_event *e, void *user) {
    seen_events *s = user;
    s->n++;
    s->last = *e;
}

static void test_file_life(void **state) {
    (void)state;
    char path[512], err[512];
    snprintf(path, sizeof path, "%s/sub/mode.json", dir);
    ns_events *bus = ns_events_new();
    seen_events seen = {0};
    assert_true(ns_events_subscribe(bus, on_event, &seen) > 0);

    /* missing: NORMAL, since startup; nothing written yet */
    ns_mode *m = ns_mode_open(path, bus);
    assert_non_null(m);
    assert_string_equal(ns_mode_path(m), path);
    ns_mode_state st, got;
    ns_mode_get(m, &st);
    assert_int_equal(st.mode, NS_MODE_NORMAL);
    assert_string_equal(st.changed_by, "startup");
    assert_string_equal(st.note, "");
    assert_int_equal(access(path, F_OK), -1);

    /* a change: written (the missing directory made), published */
    assert_int_equal(ns_mode_set(m, NS_MODE_GAMING, "10.0.0.9:1234", "req-1", &st, err, sizeof err), 0);
    assert_int_equal(st.mode, NS_MODE_GAMING);
    assert_string_equal(st.changed_by, "10.0.0.9:1234");
    assert_int_equal(seen.n, 1);
    assert_int_equal(seen.last.kind, NS_EV_MODE_CHANGED);
    assert_string_equal(ns_event_kind_name(seen.last.kind), "mode_changed");
    assert_string_equal(seen.last.detail, "{\"mode\":\"GAMING\",\"previous\":\"NORMAL\",\"by\":\"10.0.0.9:1234\"}");
    assert_string_equal(seen.last.request_id, "req-1");
    size_t len;
    char *text = ns_test_read_file(path, &len);
    assert_non_null(text);
    ns_mode_state file;
    assert_int_equal(ns_mode_parse_state(text, len, &file, err, sizeof err), 0);
    free(text);
    assert_int_equal(file.mode, NS_MODE_GAMING);
    assert_string_equal(file.since, st.since);

    /* the same mode again: since and changed_by kept, no event */
    assert_int_equal(ns_mode_set(m, NS_MODE_GAMING, "10.0.0.10:1", NULL, &got, err, sizeof err), 0);
    assert_string_equal(got.since, st.since);
    assert_string_equal(got.changed_by, "10.0.0.9:1234");
    assert_int_equal(seen.n, 1);
    ns_mode_free(m);

    /* a reopen reads it back */
    m = ns_mode_open(path, bus);
    ns_mode_get(m, &got);
    assert_int_equal(got.mode, NS_MODE_GAMING);
    assert_string_equal(got.since, st.since);
    assert_string_equal(got.changed_by, "10.0.0.9:1234");
    assert_string_equal(got.note, "");

    /* a write that fails changes nothing and publishes nothing */
    char sub[512], cmd[1200];
    snprintf(sub, sizeof sub, "%s/sub", dir);
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && echo x > '%s'", sub, sub);
    assert_int_equal(system(cmd), 0);
    err[0] = '\0';
    assert_int_equal(ns_mode_set(m, NS_MODE_NORMAL, "10.0.0.9:1", NULL, &got, err, sizeof err), -1);
    assert_non_null(strstr(err, "cannot write the mode file"));
    assert_int_equal(got.mode, NS_MODE_GAMING);
    ns_mode_get(m, &got);
    assert_int_equal(got.mode, NS_MODE_GAMING);
    assert_string_equal(got.since, st.since);
    assert_int_equal(seen.n, 1);
    ns_mode_free(m);
    ns_events_free(bus);
}

static void test_corrupt_file(void **state) {
    (void)state;
    char path[512], err[512];
    snprintf(path, sizeof path, "%s/corrupt.json", dir);
    write_file(path, "{\"mode\":\"NORMAL\",\"since\":");
    ns_mode *m = ns_mode_open(path, NULL);
    ns_mode_state st;
    ns_mode_get(m, &st);
    assert_int_equal(st.mode, NS_MODE_GAMING);
    assert_non_null(strstr(st.note, path));
    assert_non_null(strstr(st.note, "could not be read"));
    assert_non_null(strstr(st.note, "GAMING until set"));
    /* setting it (even to GAMING) rewrites the file and clears the note */
    assert_int_equal(ns_mode_set(m, NS_MODE_GAMING, "x:1", NULL, &st, err, sizeof err), 0);
    assert_string_equal(st.note, "");
    ns_mode_free(m);
    m = ns_mode_open(path, NULL);
    ns_mode_get(m, &st);
    assert_int_equal(st.mode, NS_MODE_GAMING);
    assert_string_equal(st.note, "");
    ns_mode_free(m);

    /* a directory where the file should be: unreadable, so GAMING too */
    snprintf(path, sizeof path, "%s/adir", dir);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", path);
    assert_int_equal(system(cmd), 0);
    m = ns_mode_open(path, NULL);
    ns_mode_get(m, &st);
    assert_int_equal(st.mode, NS_MODE_GAMING);
    assert_non_null(strstr(st.note, "could not be read"));
    ns_mode_free(m);
}

static void test_env_path(void **state) {
    (void)state;
    char path[512];
    snprintf(path, sizeof path, "%s/from-env.json", dir);
    setenv("NSTACK_MODE_FILE", path, 1);
    ns_mode *m = ns_mode_open(NULL, NULL);
    assert_string_equal(ns_mode_path(m), path);
    ns_mode_free(m);
    unsetenv("NSTACK_MODE_FILE");
    setenv("XDG_DATA_HOME", dir, 1);
    m = ns_mode_open(NULL, NULL);
    snprintf(path, sizeof path, "%s/nstack/mode.json", dir);
    assert_string_equal(ns_mode_path(m), path);
    ns_mode_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_parse_good),
        cmocka_unit_test(test_parse_bad),
        cmocka_unit_test(test_state_json),
        cmocka_unit_test(test_file_life),
        cmocka_unit_test(test_corrupt_file),
        cmocka_unit_test(test_env_path),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
