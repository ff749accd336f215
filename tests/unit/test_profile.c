/* Profiles (runtime/profile.h): the built-ins are valid, a user file parses
 * and every error names its line and key, a user file replaces a built-in
 * of its name, and apply_to_config maps the fields the runtime has. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/profile.h"
#include "util/size.h"

static char dir[256];

static int setup(void **state) {
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/nstack-test-profile.XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void write_file(const char *name, const char *text) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int parse(const char *text, ns_profile *p, char *err, size_t errlen) {
    return ns_profile_parse(text, strlen(text), "p.toml", "p", p, err, errlen);
}

static void test_builtins(void **state) {
    (void)state;
    assert_int_equal(ns_profile_builtin_count(), 3);
    const char *names[] = {"local_llm", "batch_inference", "image_generation"};
    for (int i = 0; i < 3; i++) {
        const ns_profile *p = ns_profile_builtin(i);
        assert_string_equal(p->name, names[i]);
        assert_true(p->builtin);
        assert_true(ns_profile_name_ok(p->name));
        for (int f = 0; f < NS_PF_COUNT; f++) assert_true(ns_profile_has(p, (ns_profile_field)f));
        assert_true(p->parallel >= 1 && p->parallel <= 1024);
        assert_true(p->ctx >= 1 && p->max_batch >= 1);
        assert_true(p->vram_unload_threshold_pct >= 1 && p->vram_unload_threshold_pct <= 100);
        assert_true(strlen(p->description) > 0);
    }
    const ns_profile *local = ns_profile_builtin(0), *batch = ns_profile_builtin(1), *img = ns_profile_builtin(2);
    assert_true(local->parallel <= 2);
    assert_int_equal(local->vram_reserve, 1LL << 30);
    assert_true(local->auto_unload_idle_ns < 0);
    assert_int_equal(local->prefer, NS_PREFER_LATENCY);
    assert_true(batch->parallel >= 8 && batch->parallel <= 16);
    assert_int_equal(batch->prefer, NS_PREFER_THROUGHPUT);
    assert_true(batch->max_batch > local->max_batch);
    assert_true(img->vram_reserve >= 6LL << 30);
    assert_true(img->auto_unload_idle_ns > 0 && img->auto_unload_idle_ns <= 5 * 60 * 1000000000LL);
    assert_null(ns_profile_builtin(3));
}

static void test_sizes(void **state) {
    (void)state;
    int64_t v;
    char err[256];
    assert_int_equal(ns_size_parse("1GiB", &v, err, sizeof err), 0);
    assert_int_equal(v, 1LL << 30);
    assert_int_equal(ns_size_parse("512 MiB", &v, err, sizeof err), 0);
    assert_int_equal(v, 512LL << 20);
    assert_int_equal(ns_size_parse("1.5gib", &v, err, sizeof err), 0);
    assert_int_equal(v, 3LL << 29);
    assert_int_equal(ns_size_parse("2GB", &v, err, sizeof err), 0);
    assert_int_equal(v, 2000000000LL);
    assert_int_equal(ns_size_parse("4096", &v, err, sizeof err), 0);
    assert_int_equal(v, 4096);
    assert_int_equal(ns_size_parse("1 parsec", &v, err, sizeof err), -1);
    assert_non_null(strstr(err, "unknown unit"));
    assert_int_equal(ns_size_parse("-1GiB", &v, err, sizeof err), -1);
    assert_int_equal(ns_size_parse("GiB", &v, err, sizeof err), -1);
    char buf[32];
    ns_format_size(1LL << 30, buf, sizeof buf);
    assert_string_equal(buf, "1GiB");
    ns_format_size(3LL << 29, buf, sizeof buf);
    assert_string_equal(buf, "1.5GiB");
    ns_format_size(100, buf, sizeof buf);
    assert_string_equal(buf, "100B");
}

static void test_parse_full(void **state) {
    (void)state;
    ns_profile p;
    char err[512];
    const char *text = "# a user profile\n"
                       "[profile]\n"
                       "description = \"overnight jobs\"\n"
                       "vram_reserve = \"2GiB\"\n"
                       "kv_cache_limit = 1073741824\n"
                       "auto_offload = false\n"
                       "auto_unload_idle = \"10m\"\n"
                       "vram_unload_threshold_pct = 80\n"
                       "prefer = \"throughput\"\n"
                       "max_batch = 1024\n"
                       "parallel = 12\n"
                       "ctx = 8192\n";
    assert_int_equal(parse(text, &p, err, sizeof err), 0);
    assert_string_equal(p.name, "p");
    assert_string_equal(p.source, "p.toml");
    assert_false(p.builtin);
    assert_string_equal(p.description, "overnight jobs");
    assert_int_equal(p.vram_reserve, 2LL << 30);
    assert_int_equal(p.kv_cache_limit, 1LL << 30);
    assert_false(p.auto_offload);
    assert_int_equal(p.auto_unload_idle_ns, 600LL * 1000000000);
    assert_int_equal(p.vram_unload_threshold_pct, 80);
    assert_int_equal(p.prefer, NS_PREFER_THROUGHPUT);
    assert_int_equal(p.max_batch, 1024);
    assert_int_equal(p.parallel, 12);
    assert_int_equal(p.ctx, 8192);
    assert_int_equal(p.set, (1u << NS_PF_COUNT) - 1);

    /* partial, and "never" */
    assert_int_equal(parse("[profile]\nparallel = 3\nauto_unload_idle = \"never\"\n", &p, err, sizeof err), 0);
    assert_true(ns_profile_has(&p, NS_PF_PARALLEL));
    assert_true(ns_profile_has(&p, NS_PF_AUTO_UNLOAD_IDLE));
    assert_false(ns_profile_has(&p, NS_PF_CTX));
    assert_true(p.auto_unload_idle_ns < 0);
    /* an empty table is a valid (do-nothing) profile */
    assert_int_equal(parse("[profile]\n", &p, err, sizeof err), 0);
    assert_int_equal(p.set, 0);
}

static void expect_error(const char *text, const char *want) {
    ns_profile p;
    char err[512];
    assert_int_equal(parse(text, &p, err, sizeof err), -1);
    if (strcmp(err, want) != 0) fail_msg("for:\n%s\ngot:  %s\nwant: %s", text, err, want);
}

static void test_parse_errors(void **state) {
    (void)state;
    expect_error("[profile]\nparallel = 2\nbogus = 1\n", "p.toml:3: profile.bogus: unknown key");
    expect_error("[profile]\n[profile.x]\n", "p.toml:2: profile.x: unknown table");
    expect_error("name = 1\n[profile]\n", "p.toml:1: name: unknown key (keys go in the [profile] table)");
    expect_error("[other]\n", "p.toml:1: other: unknown table (the file has one [profile] table)");
    expect_error("# nothing\n", "p.toml:1: profile: missing (the file needs a [profile] table)");
    expect_error("profile = 3\n", "p.toml:1: profile: must be a table, not an integer");
    expect_error("[profile]\n\nparallel = \"8\"\n", "p.toml:3: profile.parallel: must be an integer, not a string");
    expect_error("[profile]\nparallel = 0\n", "p.toml:2: profile.parallel: must be in [1, 1024], got 0");
    expect_error("[profile]\nparallel = 5000\n", "p.toml:2: profile.parallel: must be in [1, 1024], got 5000");
    expect_error("[profile]\nctx = -1\n", "p.toml:2: profile.ctx: must be in [1, 1048576], got -1");
    expect_error("[profile]\nmax_batch = 1.5\n", "p.toml:2: profile.max_batch: must be an integer, not a float");
    expect_error("[profile]\nvram_reserve = \"lots\"\n",
                 "p.toml:2: profile.vram_reserve: must be a size such as \"1GiB\" or \"512MiB\", not \"lots\"");
    expect_error("[profile]\nkv_cache_limit = -5\n", "p.toml:2: profile.kv_cache_limit: must not be negative");
    expect_error("[profile]\nkv_cache_limit = true\n",
                 "p.toml:2: profile.kv_cache_limit: must be a size string such as \"1GiB\", not a boolean");
    expect_error("[profile]\nauto_offload = \"yes\"\n",
                 "p.toml:2: profile.auto_offload: must be true or false, not a string");
    expect_error("[profile]\nauto_unload_idle = 5\n",
                 "p.toml:2: profile.auto_unload_idle: must be a duration string such as \"5m\" or \"never\", not an integer");
    expect_error("[profile]\nauto_unload_idle = \"-1m\"\n",
                 "p.toml:2: profile.auto_unload_idle: must not be negative (\"never\" keeps models loaded)");
    expect_error("[profile]\nvram_unload_threshold_pct = 101\n",
                 "p.toml:2: profile.vram_unload_threshold_pct: must be in [1, 100], got 101");
    expect_error("[profile]\nprefer = \"speed\"\n", "p.toml:2: profile.prefer: must be \"latency\" or \"throughput\"");
    expect_error("[profile]\ndescription = 3\n", "p.toml:2: profile.description: must be a string, not an integer");
    /* TOML syntax errors come from util/toml with their line */
    ns_profile p;
    char err[512];
    assert_int_equal(parse("[profile]\nparallel = = 2\n", &p, err, sizeof err), -1);
    assert_int_equal(strncmp(err, "p.toml:2: ", 10), 0);
    assert_int_equal(parse("[profile]\nparallel = 2\nparallel = 3\n", &p, err, sizeof err), -1);
    assert_int_equal(strncmp(err, "p.toml:3: ", 10), 0);
    /* a bad name */
    assert_int_equal(ns_profile_parse("[profile]\n", 10, "x.toml", "../x", &p, err, sizeof err), -1);
    assert_non_null(strstr(err, "invalid profile name"));
}

static void test_list_and_override(void **state) {
    (void)state;
    write_file("batch_inference.toml", "[profile]\ndescription = \"my batch\"\nparallel = 16\n");
    write_file("mine.toml", "[profile]\nctx = 2048\n");
    write_file("broken.toml", "[profile]\nparallel = \"x\"\n");
    write_file("notes.txt", "not a profile");
    ns_profile_list l;
    assert_int_equal(ns_profile_list_load(dir, &l), 0);
    assert_int_equal(l.n, 4);
    assert_string_equal(l.items[0].name, "local_llm");
    assert_string_equal(l.items[1].name, "batch_inference");
    assert_string_equal(l.items[2].name, "image_generation");
    assert_string_equal(l.items[3].name, "mine");
    const ns_profile *b = ns_profile_list_find(&l, "batch_inference");
    assert_non_null(b);
    assert_false(b->builtin);
    assert_true(b->overrides_builtin);
    assert_int_equal(b->parallel, 16);
    assert_string_equal(b->description, "my batch");
    assert_false(ns_profile_has(b, NS_PF_CTX)); /* a replacement, not a merge */
    assert_int_equal(l.n_errors, 1);
    assert_non_null(strstr(l.errors[0], "broken.toml:2: profile.parallel: must be an integer"));
    char names[256];
    ns_profile_list_names(&l, names, sizeof names);
    assert_string_equal(names, "local_llm, batch_inference, image_generation, mine");
    ns_profile_list_free(&l);

    ns_profile p;
    char err[1024];
    assert_int_equal(ns_profile_find(dir, "batch_inference", &p, err, sizeof err), 0);
    assert_int_equal(p.parallel, 16);
    assert_int_equal(ns_profile_find(dir, "local_llm", &p, err, sizeof err), 0);
    assert_true(p.builtin);
    assert_int_equal(ns_profile_find(dir, "broken", &p, err, sizeof err), -2);
    assert_non_null(strstr(err, "broken.toml:2:"));
    assert_int_equal(ns_profile_find(dir, "nope", &p, err, sizeof err), -1);
    assert_string_equal(err, "unknown profile \"nope\" (known: local_llm, batch_inference, image_generation, mine)");
    /* a missing directory: the built-ins only */
    char missing[300];
    snprintf(missing, sizeof missing, "%s/none", dir);
    assert_int_equal(ns_profile_list_load(missing, &l), 0);
    assert_int_equal(l.n, 3);
    assert_int_equal(l.n_errors, 0);
    ns_profile_list_free(&l);
}

static void test_dir(void **state) {
    (void)state;
    char out[1024], err[256];
    setenv("NSTACK_PROFILES", "/x/p", 1);
    assert_int_equal(ns_profile_dir(out, sizeof out, err, sizeof err), 0);
    assert_string_equal(out, "/x/p");
    unsetenv("NSTACK_PROFILES");
    setenv("XDG_CONFIG_HOME", "/cfg", 1);
    assert_int_equal(ns_profile_dir(out, sizeof out, err, sizeof err), 0);
    assert_string_equal(out, "/cfg/nstack/profiles");
    unsetenv("XDG_CONFIG_HOME");
    setenv("HOME", "/home/u", 1);
    assert_int_equal(ns_profile_dir(out, sizeof out, err, sizeof err), 0);
    assert_string_equal(out, "/home/u/.config/nstack/profiles");
}

static void test_apply(void **state) {
    (void)state;
    ns_runtime_config c = {.num_parallel = 4, .max_loaded = 3, .keep_alive_ns = 300000000000LL};
    c.defaults.n_ctx = 1024;
    c.defaults.n_batch = 256;
    c.defaults.n_thread = 7;
    ns_profile_apply_to_config(ns_profile_builtin(1), &c); /* batch_inference */
    assert_int_equal(c.num_parallel, 8);
    assert_int_equal(c.defaults.n_ctx, 4096);
    assert_int_equal(c.defaults.n_batch, 2048);
    assert_int_equal(c.keep_alive_ns, 30LL * 60 * 1000000000);
    assert_int_equal(c.max_loaded, 3);        /* untouched */
    assert_int_equal(c.defaults.n_thread, 7); /* untouched */
    ns_profile_apply_to_config(ns_profile_builtin(0), &c); /* local_llm: never */
    assert_int_equal(c.keep_alive_ns, -1);
    assert_int_equal(c.num_parallel, 2);

    ns_profile p;
    char err[256];
    assert_int_equal(parse("[profile]\nparallel = 5\nauto_unload_idle = \"0\"\nvram_reserve = \"3GiB\"\n", &p, err,
                           sizeof err),
                     0);
    ns_runtime_config d = {.num_parallel = 4, .keep_alive_ns = 77};
    d.defaults.n_ctx = 1234;
    ns_profile_apply_to_config(&p, &d);
    assert_int_equal(d.num_parallel, 5);
    assert_int_equal(d.keep_alive_ns, 1); /* 0: unload as soon as idle */
    assert_int_equal(d.defaults.n_ctx, 1234); /* not set: left alone */

    /* the JSON says what is and is not enforced */
    cJSON *j = ns_profile_json(&p);
    assert_non_null(j);
    char *t = cJSON_PrintUnformatted(j);
    assert_non_null(strstr(t, "\"in_effect\":[\"auto_unload_idle\",\"parallel\"]"));
    assert_non_null(strstr(t, "\"not_enforced\":[\"vram_reserve\"]"));
    assert_non_null(strstr(t, "\"note\":\"recorded, not yet enforced: vram_reserve\""));
    assert_non_null(strstr(t, "\"vram_reserve\":3221225472"));
    free(t);
    cJSON_Delete(j);
    for (int f = 0; f < NS_PF_COUNT; f++) assert_non_null(ns_profile_field_effect((ns_profile_field)f));
    assert_true(ns_profile_field_enforced(NS_PF_PARALLEL));
    assert_false(ns_profile_field_enforced(NS_PF_VRAM_RESERVE));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_builtins),
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_parse_full),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test_setup_teardown(test_list_and_override, setup, teardown),
        cmocka_unit_test(test_dir),
        cmocka_unit_test(test_apply),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
