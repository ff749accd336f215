/* The router's audit log (router/audit.c): whole lines, one per call, from
 * many threads at once, and rotation to PATH.1 past the size limit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "router/audit.h"

static char dir[64];

static int setup(void **state) {
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/ns_audit_XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Lines in a file, each checked to be a whole JSON object. */
static int count_lines(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char line[4096];
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        size_t len = strlen(line);
        if (len < 3 || line[0] != '{' || line[len - 2] != '}' || line[len - 1] != '\n') fail_msg("torn line: %s", line);
        cJSON *o = cJSON_Parse(line);
        if (!o) fail_msg("not JSON: %s", line);
        cJSON_Delete(o);
        n++;
    }
    fclose(f);
    return n;
}

typedef struct {
    ns_audit *a;
    int id;
} writer;

static void *write_many(void *arg) {
    writer *w = arg;
    for (int i = 0; i < 500; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "writer", w->id);
        cJSON_AddNumberToObject(o, "i", i);
        cJSON_AddStringToObject(o, "pad", "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
        ns_audit_write(w->a, o);
        cJSON_Delete(o);
    }
    return NULL;
}

static void test_rotation_keeps_whole_lines(void **state) {
    (void)state;
    char path[128], old[140], err[256];
    snprintf(path, sizeof path, "%s/logs/route.jsonl", dir); /* the parent is created */
    snprintf(old, sizeof old, "%s.1", path);
    ns_audit *a = ns_audit_open(path, 20000, err, sizeof err);
    assert_non_null(a);
    pthread_t t[4];
    writer w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (writer){a, i};
        assert_int_equal(pthread_create(&t[i], NULL, write_many, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
    ns_audit_close(a);
    struct stat st, st_old;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(stat(old, &st_old), 0);
    /* both files under the limit; lines whole in both (older ones rotated away) */
    assert_true(st.st_size <= 20000 && st_old.st_size <= 20000);
    int now = count_lines(path), before = count_lines(old);
    assert_true(now > 0 && before > 0);
}

static void test_no_limit_and_errors(void **state) {
    (void)state;
    char path[128], err[256];
    snprintf(path, sizeof path, "%s/plain.jsonl", dir);
    ns_audit *a = ns_audit_open(path, 0, err, sizeof err);
    assert_non_null(a);
    writer w = {a, 0};
    write_many(&w);
    ns_audit_close(a);
    assert_int_equal(count_lines(path), 500);
    char old[140];
    snprintf(old, sizeof old, "%s.1", path);
    assert_int_equal(access(old, F_OK), -1); /* no limit: never rotated */
    /* a directory where the file should be */
    snprintf(path, sizeof path, "%s", dir);
    assert_null(ns_audit_open(path, 0, err, sizeof err));
    assert_non_null(strstr(err, "cannot open the audit log"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_rotation_keeps_whole_lines, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_limit_and_errors, setup, teardown),
    };
    return cmocka_run_group_tests_name("audit", tests, NULL, NULL);
}
