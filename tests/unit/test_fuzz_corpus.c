/* Regression test for the fuzz corpus: every file in tests/fuzz/corpus/gguf
 * (seeds, merged fuzzer finds and crash repros) goes through the normal build
 * of the GGUF reader; it must be refused with a message or parse into
 * something whose every part can be read (gguf_walk). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz/gguf_walk.h"
#include "nstack/gguf.h"
#include "testutil.h"

static char corpus_dir[4096];

static void test_corpus(void **state) {
    (void)state;
    DIR *d = opendir(corpus_dir);
    if (!d) fail_msg("cannot open %s", corpus_dir);
    struct dirent *e;
    int n = 0, ok = 0;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        char path[8192];
        snprintf(path, sizeof path, "%s/%s", corpus_dir, e->d_name);
        size_t len;
        char *raw = ns_test_read_file(path, &len);
        if (!raw) continue; /* not a regular file */
        /* an exact-size copy, so that an over-read shows under ASan */
        uint8_t *buf = malloc(len ? len : 1);
        assert_non_null(buf);
        memcpy(buf, raw, len);
        free(raw);
        char err[512];
        err[0] = 'x';
        ns_gguf *g = ns_gguf_parse(buf, len, err, sizeof err);
        if (g) {
            assert_ptr_equal(g->base, buf);
            ns_gguf_walk(g);
            ns_gguf_close(g);
            ok++;
        } else {
            if (err[0] == 0) fail_msg("%s: refused without a message", e->d_name);
        }
        free(buf);
        n++;
    }
    closedir(d);
    printf("corpus: %d files, %d parsed, %d refused\n", n, ok, n - ok);
    assert_true(n > 0);
    assert_true(ok > 0);
}

int main(void) {
    const char *src = getenv("NSTACK_SOURCE_DIR");
    if (!src || !*src) {
        printf("SKIP: NSTACK_SOURCE_DIR is not set (ctest sets it)\n");
        return NS_TEST_SKIP;
    }
    snprintf(corpus_dir, sizeof corpus_dir, "%s/tests/fuzz/corpus/gguf", src);
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_corpus)};
    return cmocka_run_group_tests_name("fuzz_corpus", tests, NULL, NULL);
}
