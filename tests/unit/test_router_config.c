/* The router's configuration (router/config.h): a full file read back
 * field by field, the defaults, and every validation error with its exact
 * message and line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "router/config.h"

#define SEC 1000000000LL

/* Two valid upstreams, appended after the [router] lines under test:
 * their [[router.upstream]] headers sit on lines N+1 and N+6 when the part
 * before them has N lines. */
static const char upstreams[] = "[[router.upstream]]\n"
                                "url = \"http://s:1\"\n"
                                "kind = \"nstack\"\n"
                                "role = \"small\"\n"
                                "model = \"s\"\n"
                                "[[router.upstream]]\n"
                                "url = \"http://b:2/\"\n"
                                "kind = \"ollama\"\n"
                                "role = \"big\"\n"
                                "model = \"b\"\n";

static void test_full_example(void **state) {
    (void)state;
    const char *doc = "# serve's own keys may sit beside [router]\n"
                      "[server]\n"
                      "port = 1\n"
                      "\n"
                      "[router]\n"
                      "listen = \"0.0.0.0:11500\"\n"
                      "token_threshold = 1_500\n"
                      "mode_url = \"http://big:11434/mode/\"\n"
                      "mode_poll = \"2s\"\n"
                      "mode_timeout = \"250ms\"\n"
                      "health_interval = \"5s\"\n"
                      "health_backoff_max = \"1m\"\n"
                      "audit_max_size = \"8MiB\"\n"
                      "audit_log = \"/var/log/nstack/route.jsonl\"\n"
                      "tokenizer = \"/models/small.gguf\"\n"
                      "\n"
                      "[router.force]\n"
                      "header = \"X-Big\"\n"
                      "model = \"large\"\n"
                      "tag = \"#big\"\n"
                      "regex = '(?i)prove|theorem|\\d+'\n"
                      "\n"
                      "[[router.upstream]]\n"
                      "name = \"gpu\"\n"
                      "url = \"https://gpu.example:8000//\"\n"
                      "kind = \"openai\"\n"
                      "role = \"big\"\n"
                      "model = \"qwen2.5:72b\"\n"
                      "api_key = \"sk-test\"\n"
                      "\n"
                      "[[router.upstream]]\n"
                      "name = \"local\"\n"
                      "url = \"http://127.0.0.1:11434\"\n"
                      "kind = \"nstack\"\n"
                      "role = \"small\"\n"
                      "model = \"llama3.2:3b\"\n"
                      "connect_timeout = \"1s\"\n"
                      "first_byte_timeout = \"30s\"\n"
                      "timeout = \"1h30m\"\n";
    ns_router_config c;
    bool found = false;
    char err[512];
    if (ns_router_config_parse(doc, strlen(doc), "router.toml", &c, &found, err, sizeof err) != 0) fail_msg("%s", err);
    assert_true(found);
    assert_string_equal(c.listen, "0.0.0.0:11500");
    assert_int_equal(c.token_threshold, 1500);
    assert_string_equal(c.mode_url, "http://big:11434/mode");
    assert_int_equal(c.mode_poll_ns, 2 * SEC);
    assert_int_equal(c.mode_timeout_ns, 250000000LL);
    assert_int_equal(c.health_interval_ns, 5 * SEC);
    assert_int_equal(c.health_backoff_max_ns, 60 * SEC);
    assert_int_equal(c.audit_max_size, 8 << 20);
    assert_string_equal(c.audit_log, "/var/log/nstack/route.jsonl");
    assert_string_equal(c.tokenizer, "/models/small.gguf");
    assert_string_equal(c.force_header, "X-Big");
    assert_string_equal(c.force_model, "large");
    assert_string_equal(c.force_tag, "#big");
    assert_string_equal(c.force_regex, "(?i)prove|theorem|\\d+");
    assert_int_equal(c.n_upstreams, 2);
    assert_int_equal(c.big, 0);
    assert_int_equal(c.small, 1);
    const ns_upstream_config *g = &c.upstreams[0], *l = &c.upstreams[1];
    assert_string_equal(g->name, "gpu");
    assert_string_equal(g->url, "https://gpu.example:8000");
    assert_int_equal(g->kind, NS_UPSTREAM_OPENAI);
    assert_int_equal(g->role, NS_ROLE_BIG);
    assert_string_equal(g->model, "qwen2.5:72b");
    assert_string_equal(g->api_key, "sk-test");
    assert_int_equal(g->connect_timeout_ns, 2 * SEC);
    assert_int_equal(g->first_byte_timeout_ns, 60 * SEC);
    assert_int_equal(g->timeout_ns, 0);
    assert_string_equal(l->name, "local");
    assert_string_equal(l->url, "http://127.0.0.1:11434");
    assert_int_equal(l->kind, NS_UPSTREAM_NSTACK);
    assert_int_equal(l->role, NS_ROLE_SMALL);
    assert_string_equal(l->model, "llama3.2:3b");
    assert_string_equal(l->api_key, "");
    assert_int_equal(l->connect_timeout_ns, 1 * SEC);
    assert_int_equal(l->first_byte_timeout_ns, 30 * SEC);
    assert_int_equal(l->timeout_ns, 5400 * SEC);
}

static void test_defaults(void **state) {
    (void)state;
    ns_router_config c;
    ns_router_config_defaults(&c);
    assert_string_equal(c.listen, "127.0.0.1:11500");
    assert_int_equal(c.token_threshold, 2000);
    assert_string_equal(c.mode_url, "");
    assert_int_equal(c.mode_poll_ns, 1 * SEC);
    assert_int_equal(c.mode_timeout_ns, 300000000LL);
    assert_int_equal(c.health_interval_ns, 2 * SEC);
    assert_int_equal(c.health_backoff_max_ns, 30 * SEC);
    assert_int_equal(c.audit_max_size, 100 << 20);
    assert_string_equal(c.audit_log, "");
    assert_string_equal(c.tokenizer, "");
    assert_string_equal(c.force_header, "X-Force-Big");
    assert_string_equal(c.force_model, "big");
    assert_string_equal(c.force_tag, "#force_big");
    assert_string_equal(c.force_regex, "");
    assert_int_equal(c.n_upstreams, 0);

    /* a minimal file: only the required keys */
    char doc[1024];
    snprintf(doc, sizeof doc, "[router]\n%s", upstreams);
    bool found = false;
    char err[512];
    if (ns_router_config_parse(doc, strlen(doc), "r.toml", &c, &found, err, sizeof err) != 0) fail_msg("%s", err);
    assert_true(found);
    assert_string_equal(c.listen, "127.0.0.1:11500");
    assert_int_equal(c.token_threshold, 2000);
    assert_string_equal(c.mode_url, "http://b:2/mode");
    assert_string_equal(c.force_header, "X-Force-Big");
    assert_int_equal(c.n_upstreams, 2);
    assert_int_equal(c.small, 0);
    assert_int_equal(c.big, 1);
    assert_string_equal(c.upstreams[0].name, "small"); /* the role's name */
    assert_string_equal(c.upstreams[1].name, "big");
    assert_string_equal(c.upstreams[1].url, "http://b:2");
    assert_int_equal(c.upstreams[1].kind, NS_UPSTREAM_OLLAMA);
    assert_int_equal(c.upstreams[1].connect_timeout_ns, 2 * SEC);
    assert_int_equal(c.upstreams[1].first_byte_timeout_ns, 60 * SEC);
    assert_int_equal(c.upstreams[1].timeout_ns, 0);

    /* [router] only through its sub-tables still counts */
    snprintf(doc, sizeof doc, "[router.force]\ntag = \"\"\n%s", upstreams);
    assert_int_equal(ns_router_config_parse(doc, strlen(doc), "r.toml", &c, &found, err, sizeof err), 0);
    assert_true(found);
    assert_string_equal(c.force_tag, "");

    /* no [router]: the defaults, and found = false */
    const char *other = "[server]\nport = 1\n";
    found = true;
    assert_int_equal(ns_router_config_parse(other, strlen(other), "r.toml", &c, &found, err, sizeof err), 0);
    assert_false(found);
    assert_int_equal(c.token_threshold, 2000);
    assert_int_equal(c.n_upstreams, 0);
    assert_int_equal(ns_router_config_parse("", 0, "r.toml", &c, &found, err, sizeof err), 0);
    assert_false(found);

    assert_string_equal(ns_upstream_kind_name(NS_UPSTREAM_NSTACK), "nstack");
    assert_string_equal(ns_upstream_kind_name(NS_UPSTREAM_OLLAMA), "ollama");
    assert_string_equal(ns_upstream_kind_name(NS_UPSTREAM_OPENAI), "openai");
    assert_string_equal(ns_upstream_role_name(NS_ROLE_SMALL), "small");
    assert_string_equal(ns_upstream_role_name(NS_ROLE_BIG), "big");
}

static void expect_err(const char *doc, const char *want) {
    ns_router_config c;
    bool found;
    char err[512];
    if (ns_router_config_parse(doc, strlen(doc), "r.toml", &c, &found, err, sizeof err) == 0)
        fail_msg("parsed, expected \"%s\"\n--- in:\n%s", want, doc);
    if (strcmp(err, want) != 0) fail_msg("got \"%s\"\nwant \"%s\"\n--- in:\n%s", err, want, doc);
    /* a failed parse leaves the defaults, not half a config */
    assert_int_equal(c.n_upstreams, 0);
    assert_string_equal(c.listen, "127.0.0.1:11500");
}

/* "[router]\n" + one line + upstreams: the line under test is line 2. */
static void expect_router_line_err(const char *line, const char *want) {
    char doc[8192];
    snprintf(doc, sizeof doc, "[router]\n%s\n%s", line, upstreams);
    expect_err(doc, want);
}

/* Two upstreams, the second with `extra` lines added (from line 12 on),
 * `drop` (a key) removed from it. */
static void expect_upstream_err(const char *extra, const char *drop, const char *want) {
    char doc[4096];
    int n = snprintf(doc, sizeof doc, "[router]\n");
    const char *second = strstr(upstreams, "[[router.upstream]]\nurl = \"http://b");
    n += snprintf(doc + n, sizeof doc - (size_t)n, "%.*s", (int)(second - upstreams), upstreams);
    n += snprintf(doc + n, sizeof doc - (size_t)n, "[[router.upstream]]\n");
    for (const char *p = second + strlen("[[router.upstream]]\n"); *p;) {
        const char *eol = strchr(p, '\n');
        if (!drop || strncmp(p, drop, strlen(drop)) != 0 || p[strlen(drop)] != ' ')
            n += snprintf(doc + n, sizeof doc - (size_t)n, "%.*s", (int)(eol + 1 - p), p);
        p = eol + 1;
    }
    snprintf(doc + n, sizeof doc - (size_t)n, "%s", extra);
    expect_err(doc, want);
}

static void test_router_errors(void **state) {
    (void)state;
    expect_router_line_err("listen = 11500", "r.toml:2: router.listen: must be a string, not an integer");
    expect_router_line_err("listen = \"\"", "r.toml:2: router.listen: must not be empty");
    expect_router_line_err("listen = \"a\\u0000b\"", "r.toml:2: router.listen: must not contain a NUL character");
    expect_router_line_err("lisen = \"x\"", "r.toml:2: router.lisen: unknown key");
    expect_router_line_err("\"odd\\nkey\" = 1", "r.toml:2: router.odd?key: unknown key");
    expect_router_line_err("sub = { a = 1 }", "r.toml:2: router.sub: unknown table");
    expect_router_line_err("token_threshold = -1", "r.toml:2: router.token_threshold: must be >= 0");
    expect_router_line_err("token_threshold = 3_000_000_000",
                           "r.toml:2: router.token_threshold: must be at most 2147483647");
    expect_router_line_err("token_threshold = 1.5", "r.toml:2: router.token_threshold: must be an integer, not a float");
    expect_router_line_err("token_threshold = \"2000\"",
                           "r.toml:2: router.token_threshold: must be an integer, not a string");
    expect_router_line_err("mode_poll = \"fast\"", "r.toml:2: router.mode_poll: invalid duration 'fast' (expected "
                                                   "e.g. \"5m\", \"1h30m\", \"300ms\" or seconds)");
    expect_router_line_err("mode_poll = \"-1s\"", "r.toml:2: router.mode_poll: must not be negative");
    expect_router_line_err("health_interval = 2",
                           "r.toml:2: router.health_interval: must be a duration string such as \"2s\", not an integer");
    expect_router_line_err("health_backoff_max = \"\"", "r.toml:2: router.health_backoff_max: empty duration");
    expect_router_line_err("audit_max_size = \"12 parsecs\"",
                           "r.toml:2: router.audit_max_size: unknown unit \"parsecs\" (B, KiB, MiB, GiB, TiB or K, M, G, T; "
                           "KB, MB, GB, TB for powers of 1000)");
    expect_router_line_err("mode_timeout = \"-300ms\"", "r.toml:2: router.mode_timeout: must not be negative");
    expect_router_line_err("mode_url = \"ftp://big/mode\"", "r.toml:2: router.mode_url: must start with http:// or https://");
    expect_router_line_err("mode_url = \"https:///\"", "r.toml:2: router.mode_url: has no host");
    expect_router_line_err("audit_log = [\"a\"]", "r.toml:2: router.audit_log: must be a string, not an array");
    char line[5000];
    snprintf(line, sizeof line, "tokenizer = \"/%04095d\"", 0);
    expect_router_line_err(line, "r.toml:2: router.tokenizer: longer than 4095 bytes");
    snprintf(line, sizeof line, "tokenizer = \"/%04094d\"", 0); /* 4095 bytes fit */
    char doc[8192];
    snprintf(doc, sizeof doc, "[router]\n%s\n%s", line, upstreams);
    ns_router_config c;
    bool found;
    char err[512];
    assert_int_equal(ns_router_config_parse(doc, strlen(doc), "r.toml", &c, &found, err, sizeof err), 0);
    assert_int_equal(strlen(c.tokenizer), 4095);
    expect_err("router = 1\n", "r.toml:1: router: must be a table");
    expect_err("[router]\nlisten = \"a\"\nlisten = \"b\"\n",
               "r.toml:3: duplicate key 'router.listen' (first defined at line 2)");
    expect_err("[router]\nmode_poll = 1979-05-27\n", "r.toml:2: dates and times are not supported");
}

static void test_force_errors(void **state) {
    (void)state;
    expect_err("[router]\nforce = 1\n", "r.toml:2: router.force: must be a table");
    expect_err("[router]\n[router.force]\ncolour = \"x\"\n", "r.toml:3: router.force.colour: unknown key");
    expect_err("[router.forse]\nheader = \"x\"\n", "r.toml:1: router.forse: unknown table");
    expect_err("[router.force]\nheader = \"0123456789012345678901234567890123456789012345678901234567890123\"\n",
               "r.toml:2: router.force.header: longer than 63 bytes");
    expect_err("[router.force]\nmodel = false\n", "r.toml:2: router.force.model: must be a string, not a boolean");
    expect_err("[router.force]\n\nregex = \"(prove|theorem\"\n",
               "r.toml:3: router.force.regex: invalid regular expression at offset 14: missing closing parenthesis");
    expect_err("[router.force]\nregex = '[a-'\n",
               "r.toml:2: router.force.regex: invalid regular expression at offset 3: missing terminating ] for "
               "character class");
    expect_err("[router.force]\nregex = 'a{2,1}'\n",
               "r.toml:2: router.force.regex: invalid regular expression at offset 5: numbers out of order in {} "
               "quantifier");
}

static void test_upstream_errors(void **state) {
    (void)state;
    /* the second upstream's header is on line 7, its keys on 8..11; extras follow
     * them (line 12, or 11 when a key was dropped) */
    expect_upstream_err("", "url", "r.toml:7: router.upstream.url: missing");
    expect_upstream_err("", "kind", "r.toml:7: router.upstream.kind: missing");
    expect_upstream_err("", "role", "r.toml:7: router.upstream.role: missing");
    expect_upstream_err("", "model", "r.toml:7: router.upstream.model: missing");
    expect_upstream_err("flavor = \"x\"\n", NULL, "r.toml:12: router.upstream.flavor: unknown key");
    expect_upstream_err("[router.upstream.tls]\n", NULL, "r.toml:12: router.upstream.tls: unknown table");
    expect_upstream_err("name = \"\"\n", NULL, "r.toml:12: router.upstream.name: must not be empty");
    expect_upstream_err("name = \"small\"\n", NULL,
                        "r.toml:12: router.upstream.name: 'small' is used twice (first at line 2)");
    expect_upstream_err("api_key = 5\n", NULL, "r.toml:12: router.upstream.api_key: must be a string, not an integer");
    expect_upstream_err("timeout = \"10 minutes\"\n", NULL,
                        "r.toml:12: router.upstream.timeout: invalid duration '10 minutes' (expected e.g. \"5m\", "
                        "\"1h30m\", \"300ms\" or seconds)");
    expect_upstream_err("connect_timeout = \"-2s\"\n", NULL, "r.toml:12: router.upstream.connect_timeout: must not be negative");
    expect_upstream_err("first_byte_timeout = true\n", NULL,
                        "r.toml:12: router.upstream.first_byte_timeout: must be a duration string such as \"2s\", not "
                        "a boolean");
    expect_upstream_err("kind = \"vllm\"\n", "kind", "r.toml:11: router.upstream.kind: must be nstack, ollama or openai");
    expect_upstream_err("role = \"medium\"\n", "role", "r.toml:11: router.upstream.role: must be small or big");
    expect_upstream_err("role = 1\n", "role", "r.toml:11: router.upstream.role: must be a string, not an integer");
    expect_upstream_err("url = \"127.0.0.1:11434\"\n", "url",
                        "r.toml:11: router.upstream.url: must start with http:// or https://");
    expect_upstream_err("url = \"http://\"\n", "url", "r.toml:11: router.upstream.url: has no host");
    expect_upstream_err("model = \"\"\n", "model", "r.toml:11: router.upstream.model: must not be empty");
    char extra[700];
    snprintf(extra, sizeof extra, "model = \"%0256d\"\n", 0);
    expect_upstream_err(extra, "model", "r.toml:11: router.upstream.model: longer than 255 bytes");
    /* roles: exactly one of each, a second one reported where it is */
    expect_upstream_err("role = \"small\"\n", "role",
                        "r.toml:11: router.upstream.role: exactly one upstream must have role small (found 2)");
    expect_err("[router]\nlisten = \"x\"\n[[router.upstream]]\nurl = \"http://a\"\nkind = \"nstack\"\nrole = "
               "\"big\"\nmodel = \"m\"\n",
               "r.toml:3: router.upstream.role: exactly one upstream must have role small (found 0)");
    expect_err("[router]\n\nlisten = \"x\"\n", "r.toml:1: router.upstream.role: exactly one upstream must have role "
                                               "small (found 0)");
    expect_err("[router]\nupstream = []\n",
               "r.toml:2: router.upstream.role: exactly one upstream must have role small (found 0)");
    expect_err("[router]\n[router.upstream]\nurl = \"http://a\"\n",
               "r.toml:2: router.upstream: must be an array of tables ([[router.upstream]])");
    expect_err("[router]\nupstream = [1]\n", "r.toml:2: router.upstream: must be an array of tables ([[router.upstream]])");
    expect_err("[router]\nupstream = \"x\"\n",
               "r.toml:2: router.upstream: must be an array of tables ([[router.upstream]])");
    /* at most eight, reported at the ninth */
    char doc[8192];
    int n = snprintf(doc, sizeof doc, "[router]\n");
    for (int i = 0; i < 9; i++)
        n += snprintf(doc + n, sizeof doc - (size_t)n,
                      "[[router.upstream]]\nname = \"u%d\"\nurl = \"http://a\"\nkind = \"nstack\"\nrole = \"small\"\n"
                      "model = \"m\"\n",
                      i);
    expect_err(doc, "r.toml:50: router.upstream: at most 8 upstreams");
    /* mode_url's default must fit too */
    n = snprintf(doc, sizeof doc, "[router]\n%.*s", (int)(strstr(upstreams, "[[router.upstream]]\nurl = \"http://b") - upstreams),
                 upstreams);
    snprintf(doc + n, sizeof doc - (size_t)n,
             "[[router.upstream]]\nurl = \"http://%0500d\"\nkind = \"ollama\"\nrole = \"big\"\nmodel = \"b\"\n", 0);
    expect_err(doc, "r.toml:1: router.mode_url: the big upstream's url + \"/mode\" is longer than 511 bytes");
}

static void test_load(void **state) {
    (void)state;
    ns_router_config c;
    char err[512];
    assert_int_equal(ns_router_config_load("/nonexistent-nstack/router.toml", &c, err, sizeof err), -1);
    assert_string_equal(err, "cannot read /nonexistent-nstack/router.toml: No such file or directory");

    char path[] = "/tmp/test_router_config_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    char doc[1024];
    int n = snprintf(doc, sizeof doc, "[router]\ntoken_threshold = 7\n%s", upstreams);
    assert_int_equal(write(fd, doc, (size_t)n), n);
    close(fd);
    if (ns_router_config_load(path, &c, err, sizeof err) != 0) fail_msg("%s", err);
    assert_int_equal(c.token_threshold, 7);
    assert_int_equal(c.big, 1);

    /* errors name the path as given */
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("[router]\nkind = 1\n", f);
    fclose(f);
    char want[256];
    assert_int_equal(ns_router_config_load(path, &c, err, sizeof err), -1);
    snprintf(want, sizeof want, "%s:2: router.kind: unknown key", path);
    assert_string_equal(err, want);

    /* a file without [router] is an error here */
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("[server]\n", f);
    fclose(f);
    assert_int_equal(ns_router_config_load(path, &c, err, sizeof err), -1);
    snprintf(want, sizeof want, "%s: no [router] table", path);
    assert_string_equal(err, want);
    unlink(path);

    assert_int_equal(ns_router_config_load("/tmp", &c, err, sizeof err), -1);
    assert_string_equal(err, "cannot read /tmp: Is a directory");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_example),  cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_router_errors), cmocka_unit_test(test_force_errors),
        cmocka_unit_test(test_upstream_errors), cmocka_unit_test(test_load),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
