/* The TOML reader (util/toml.h): every supported form read back with its
 * exact value and line, the errors with their exact messages and lines,
 * examples from the TOML 1.0 specification typed in again, the depth and
 * size limits, and a mutation fuzz loop over valid documents (run it under
 * valgrind to check that no path leaks). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/toml.h"

static ns_toml *parse_ok(const char *s) {
    char err[512];
    ns_toml *t = ns_toml_parse(s, strlen(s), "t.toml", err, sizeof err);
    if (!t) fail_msg("unexpected error: %s\n--- in:\n%s", err, s);
    return t;
}

static void expect_err(const char *s, const char *want) {
    char err[512];
    ns_toml *t = ns_toml_parse(s, strlen(s), "t.toml", err, sizeof err);
    if (t) {
        ns_toml_free(t);
        fail_msg("parsed, expected \"%s\"\n--- in:\n%s", want, s);
    }
    if (strcmp(err, want) != 0) fail_msg("got \"%s\"\nwant \"%s\"\n--- in:\n%s", err, want, s);
}

/* A node by a dotted path (test convenience: keys without dots only);
 * a number part indexes an array. */
static const ns_toml *get(const ns_toml *root, const char *path) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    const ns_toml *n = root;
    for (char *save = NULL, *k = strtok_r(buf, ".", &save); k && n; k = strtok_r(NULL, ".", &save)) {
        if (ns_toml_type_of(n) == NS_TOML_ARRAY) n = ns_toml_at(n, atoi(k));
        else n = ns_toml_get(n, k);
    }
    if (!n) fail_msg("no %s", path);
    return n;
}

static const char *str(const ns_toml *root, const char *path) {
    const ns_toml *n = get(root, path);
    assert_int_equal(ns_toml_type_of(n), NS_TOML_STRING);
    return ns_toml_string(n);
}

static int64_t num(const ns_toml *root, const char *path) {
    const ns_toml *n = get(root, path);
    assert_int_equal(ns_toml_type_of(n), NS_TOML_INT);
    return ns_toml_int(n);
}

static double flt(const ns_toml *root, const char *path) {
    const ns_toml *n = get(root, path);
    assert_int_equal(ns_toml_type_of(n), NS_TOML_FLOAT);
    return ns_toml_float(n);
}

static void test_basic_strings(void **state) {
    (void)state;
    ns_toml *t = parse_ok("a = \"plain\"\n"
                          "b = \"tab\\there \\\"q\\\" back\\\\slash\"\n"
                          "c = \"\\b\\f\\n\\r\"\n"
                          "d = \"\\u00e9\\u20AC\\U0001F600\"\n"
                          "e = \"\"\n"
                          "f = \"caf\xc3\xa9 # not a comment\" # a comment\n"
                          "g = \"nul\\u0000in\"\n"
                          "h = 'C:\\Users\\nodejs' \n"
                          "i = '<\\i\\c*\\s*>'\n"
                          "j = ''\n");
    assert_string_equal(str(t, "a"), "plain");
    assert_string_equal(str(t, "b"), "tab\there \"q\" back\\slash");
    assert_string_equal(str(t, "c"), "\b\f\n\r");
    assert_string_equal(str(t, "d"), "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
    assert_string_equal(str(t, "e"), "");
    assert_string_equal(str(t, "f"), "caf\xc3\xa9 # not a comment");
    assert_int_equal(ns_toml_string_len(get(t, "g")), 6);
    assert_memory_equal(str(t, "g"), "nul\0in", 7);
    assert_string_equal(str(t, "h"), "C:\\Users\\nodejs");
    assert_string_equal(str(t, "i"), "<\\i\\c*\\s*>");
    assert_string_equal(str(t, "j"), "");
    assert_int_equal(ns_toml_line(get(t, "j")), 10);
    ns_toml_free(t);
}

static void test_multiline_strings(void **state) {
    (void)state;
    ns_toml *t = parse_ok("a = \"\"\"\nRoses are red\nViolets are blue\"\"\"\n"
                          "b = \"\"\"\r\none\r\ntwo\"\"\"\n"
                          "c = \"\"\"\nThe quick brown \\\n\n\n  fox jumps over \\\n    the lazy dog.\"\"\"\n"
                          "d = \"\"\"\\\n       The quick brown \\\t  \n       fox.\\\n       \"\"\"\n"
                          "e = \"\"\"Here are two quotation marks: \"\". Simple enough.\"\"\"\n"
                          "f = \"\"\"\"This,\" she said, \"is just a pointless statement.\"\"\"\"\n"
                          "g = '''\nThe first newline is\ntrimmed in raw strings.\n   All other whitespace\n   is preserved.\n'''\n"
                          "h = '''I [dw]on't need \\d{2} apples'''\n"
                          "i = ''''That,' she said, 'is still pointless.'''''\n"
                          "j = \"\"\"tab\\tescape \\u0041\"\"\"\n"
                          "k = \"\"\"\"\"\"\"\n"
                          "l = 1\n");
    assert_string_equal(str(t, "a"), "Roses are red\nViolets are blue");
    assert_string_equal(str(t, "b"), "one\ntwo");
    assert_string_equal(str(t, "c"), "The quick brown fox jumps over the lazy dog.");
    assert_string_equal(str(t, "d"), "The quick brown fox.");
    assert_string_equal(str(t, "e"), "Here are two quotation marks: \"\". Simple enough.");
    assert_string_equal(str(t, "f"), "\"This,\" she said, \"is just a pointless statement.\"");
    assert_string_equal(str(t, "g"), "The first newline is\ntrimmed in raw strings.\n   All other whitespace\n   is "
                                     "preserved.\n");
    assert_string_equal(str(t, "h"), "I [dw]on't need \\d{2} apples");
    assert_string_equal(str(t, "i"), "'That,' she said, 'is still pointless.''");
    assert_string_equal(str(t, "j"), "tab\tescape A");
    assert_string_equal(str(t, "k"), "\"");
    /* lines: a 1-3, b 4-6, c 7-12, d 13-16, e 17, f 18, g 19-24, h 25 */
    assert_int_equal(ns_toml_line(get(t, "c")), 7);
    assert_int_equal(ns_toml_line(get(t, "d")), 13);
    assert_int_equal(ns_toml_line(get(t, "g")), 19);
    assert_int_equal(ns_toml_line(get(t, "h")), 25);
    assert_int_equal(ns_toml_line(get(t, "l")), 29);
    ns_toml_free(t);
}

static void test_integers(void **state) {
    (void)state;
    ns_toml *t = parse_ok("a = +99\nb = 42\nc = 0\nd = -17\ne = 1_000\nf = 5_349_221\ng = 1_2_3_4_5\n"
                          "h = 0xDEADBEEF\ni = 0xdead_beef\nj = 0o01234567\nk = 0o755\nl = 0b11010110\n"
                          "m = 9223372036854775807\nn = -9223372036854775808\no = 0x7fffffffffffffff\n"
                          "p = -0\nq = +0\nr = 0x0000_0001\n");
    assert_int_equal(num(t, "a"), 99);
    assert_int_equal(num(t, "b"), 42);
    assert_int_equal(num(t, "c"), 0);
    assert_int_equal(num(t, "d"), -17);
    assert_int_equal(num(t, "e"), 1000);
    assert_int_equal(num(t, "f"), 5349221);
    assert_int_equal(num(t, "g"), 12345);
    assert_int_equal(num(t, "h"), 0xDEADBEEF);
    assert_int_equal(num(t, "i"), 0xDEADBEEF);
    assert_int_equal(num(t, "j"), 01234567);
    assert_int_equal(num(t, "k"), 0755);
    assert_int_equal(num(t, "l"), 214);
    assert_true(num(t, "m") == INT64_MAX);
    assert_true(num(t, "n") == INT64_MIN);
    assert_true(num(t, "o") == INT64_MAX);
    assert_int_equal(num(t, "p"), 0);
    assert_int_equal(num(t, "q"), 0);
    assert_int_equal(num(t, "r"), 1);
    assert_int_equal(ns_toml_line(get(t, "r")), 18);
    ns_toml_free(t);
}

static void test_floats_and_bools(void **state) {
    (void)state;
    ns_toml *t = parse_ok("a = +1.0\nb = 3.1415\nc = -0.01\nd = 5e+22\ne = 1e06\nf = -2E-2\ng = 6.626e-34\n"
                          "h = 224_617.445_991_228\ni = inf\nj = +inf\nk = -inf\nl = nan\nm = +nan\nn = -nan\n"
                          "o = 0.0\np = -0.0\nq = true\nr = false\ns = 1e-400\n");
    assert_true(flt(t, "a") == 1.0);
    assert_true(flt(t, "b") == 3.1415);
    assert_true(flt(t, "c") == -0.01);
    assert_true(flt(t, "d") == 5e22);
    assert_true(flt(t, "e") == 1e6);
    assert_true(flt(t, "f") == -2e-2);
    assert_true(flt(t, "g") == 6.626e-34);
    assert_true(flt(t, "h") == 224617.445991228);
    assert_true(isinf(flt(t, "i")) && flt(t, "i") > 0);
    assert_true(isinf(flt(t, "j")) && flt(t, "j") > 0);
    assert_true(isinf(flt(t, "k")) && flt(t, "k") < 0);
    assert_true(isnan(flt(t, "l")) && isnan(flt(t, "m")) && isnan(flt(t, "n")));
    assert_true(flt(t, "o") == 0.0 && !signbit(flt(t, "o")));
    assert_true(flt(t, "p") == 0.0 && signbit(flt(t, "p")));
    assert_int_equal(ns_toml_type_of(get(t, "q")), NS_TOML_BOOL);
    assert_true(ns_toml_bool(get(t, "q")));
    assert_false(ns_toml_bool(get(t, "r")));
    assert_true(flt(t, "s") == 0.0); /* underflow reads as zero */
    /* typed reads of the wrong type */
    assert_null(ns_toml_string(get(t, "a")));
    assert_int_equal(ns_toml_int(get(t, "a")), 0);
    assert_false(ns_toml_bool(get(t, "a")));
    assert_int_equal(ns_toml_count(get(t, "a")), 0);
    assert_string_equal(ns_toml_type_name(NS_TOML_FLOAT), "float");
    ns_toml_free(t);
    t = parse_ok("i = 7");
    assert_true(ns_toml_float(get(t, "i")) == 7.0);
    ns_toml_free(t);
}

static void test_keys(void **state) {
    (void)state;
    ns_toml *t = parse_ok("key = 1\nbare_key = 2\nbare-key = 3\n1234 = 4\n\"127.0.0.1\" = 5\n"
                          "\"character encoding\" = 6\n\"\xca\x8e\xc7\x9d\xca\x9e\" = 7\n'key2' = 8\n"
                          "'quoted \"value\"' = 9\n\"\" = 10\n"
                          "physical.color = \"orange\"\nphysical.shape = \"round\"\n"
                          "site.\"google.com\" = true\n fruit . name = \"banana\"\n"
                          "3.14159 = \"pi\"\n\"\\u0061b\" = 11\n");
    assert_int_equal(num(t, "key"), 1);
    assert_int_equal(num(t, "bare-key"), 3);
    assert_int_equal(num(t, "1234"), 4);
    assert_int_equal(ns_toml_int(ns_toml_get(t, "127.0.0.1")), 5);
    assert_int_equal(ns_toml_int(ns_toml_get(t, "character encoding")), 6);
    assert_int_equal(ns_toml_int(ns_toml_get(t, "\xca\x8e\xc7\x9d\xca\x9e")), 7);
    assert_int_equal(ns_toml_int(ns_toml_get(t, "key2")), 8);
    assert_int_equal(ns_toml_int(ns_toml_get(t, "quoted \"value\"")), 9);
    assert_int_equal(ns_toml_int(ns_toml_get(t, "")), 10);
    assert_string_equal(str(t, "physical.color"), "orange");
    assert_string_equal(str(t, "physical.shape"), "round");
    assert_true(ns_toml_bool(ns_toml_get(get(t, "site"), "google.com")));
    assert_string_equal(str(t, "fruit.name"), "banana");
    assert_string_equal(str(t, "3.14159"), "pi");
    assert_int_equal(num(t, "ab"), 11);
    /* file order, with dotted keys' tables where first seen */
    const char *order[] = {"key",         "bare_key", "bare-key", "1234",  "127.0.0.1", "character encoding",
                           "\xca\x8e\xc7\x9d\xca\x9e", "key2", "quoted \"value\"", "", "physical", "site",
                           "fruit",       "3",        "ab"};
    assert_int_equal(ns_toml_count(t), 15);
    for (int i = 0; i < 15; i++) assert_string_equal(ns_toml_key_at(t, i), order[i]);
    assert_null(ns_toml_key_at(t, 15));
    assert_null(ns_toml_at(t, -1));
    assert_int_equal(ns_toml_line(get(t, "physical")), 11);
    assert_int_equal(ns_toml_line(get(t, "fruit")), 14);
    ns_toml_free(t);
}

static void test_tables(void **state) {
    (void)state;
    ns_toml *t = parse_ok("# top\n"
                          "title = \"x\"\n"
                          "\n"
                          "[table-1]\n"
                          "key1 = \"some string\"\n"
                          "key2 = 123\n"
                          "\n"
                          "[ dog . \"tater.man\" ]   # spaces\n"
                          "type.name = \"pug\"\n"
                          "[x.y.z.w] # implicit x, y, z\n"
                          "[x] # and x defined after\n"
                          "k = 1\n"
                          "[fruit]\n"
                          "apple.color = \"red\"\n"
                          "apple.taste.sweet = true\n"
                          "[fruit.apple.texture]\n"
                          "smooth = true\n"
                          "[\"\"]\n"
                          "e = 2\n");
    assert_string_equal(str(t, "title"), "x");
    assert_string_equal(str(t, "table-1.key1"), "some string");
    assert_int_equal(num(t, "table-1.key2"), 123);
    assert_int_equal(ns_toml_line(get(t, "table-1")), 4);
    const ns_toml *tater = ns_toml_get(get(t, "dog"), "tater.man");
    assert_non_null(tater);
    assert_string_equal(ns_toml_string(ns_toml_get(ns_toml_get(tater, "type"), "name")), "pug");
    assert_int_equal(ns_toml_line(tater), 8);
    assert_int_equal(ns_toml_type_of(get(t, "x.y.z.w")), NS_TOML_TABLE);
    assert_int_equal(ns_toml_count(get(t, "x.y.z.w")), 0);
    assert_int_equal(ns_toml_line(get(t, "x.y")), 10);
    assert_int_equal(ns_toml_line(get(t, "x")), 11); /* its definition */
    assert_int_equal(num(t, "x.k"), 1);
    assert_string_equal(str(t, "fruit.apple.color"), "red");
    assert_true(ns_toml_bool(get(t, "fruit.apple.taste.sweet")));
    assert_true(ns_toml_bool(get(t, "fruit.apple.texture.smooth")));
    assert_int_equal(ns_toml_int(ns_toml_get(ns_toml_get(t, ""), "e")), 2);
    ns_toml_free(t);
}

static void test_arrays_of_tables(void **state) {
    (void)state;
    ns_toml *t = parse_ok("[[products]]\n"
                          "name = \"Hammer\"\n"
                          "sku = 738594937\n"
                          "\n"
                          "[[products]]  # empty table within the array\n"
                          "\n"
                          "[[products]]\n"
                          "name = \"Nail\"\n"
                          "color = \"gray\"\n"
                          "[[fruits]]\n"
                          "name = \"apple\"\n"
                          "[fruits.physical]  # subtable\n"
                          "color = \"red\"\n"
                          "[[fruits.varieties]]  # nested array of tables\n"
                          "name = \"red delicious\"\n"
                          "[[fruits.varieties]]\n"
                          "name = \"granny smith\"\n"
                          "[[fruits]]\n"
                          "name = \"banana\"\n"
                          "[[fruits.varieties]]\n"
                          "name = \"plantain\"\n");
    const ns_toml *p = get(t, "products");
    assert_int_equal(ns_toml_type_of(p), NS_TOML_ARRAY);
    assert_int_equal(ns_toml_count(p), 3);
    assert_string_equal(str(t, "products.0.name"), "Hammer");
    assert_int_equal(num(t, "products.0.sku"), 738594937);
    assert_int_equal(ns_toml_count(get(t, "products.1")), 0);
    assert_int_equal(ns_toml_line(get(t, "products.1")), 5);
    assert_string_equal(str(t, "products.2.color"), "gray");
    assert_int_equal(ns_toml_count(get(t, "fruits")), 2);
    assert_string_equal(str(t, "fruits.0.physical.color"), "red");
    assert_string_equal(str(t, "fruits.0.varieties.1.name"), "granny smith");
    assert_int_equal(ns_toml_count(get(t, "fruits.1.varieties")), 1);
    assert_string_equal(str(t, "fruits.1.varieties.0.name"), "plantain");
    assert_int_equal(ns_toml_line(get(t, "fruits.1.varieties.0")), 20);
    ns_toml_free(t);
}

static void test_arrays(void **state) {
    (void)state;
    ns_toml *t = parse_ok("integers = [ 1, 2, 3 ]\n"
                          "colors = [ \"red\", 'yellow', \"\"\"green\"\"\" ]\n"
                          "nested = [ [ 1, 2 ], [3, 4, 5], [] ]\n"
                          "mixed = [ [ 1, 2 ], [\"a\", \"b\", \"c\"], 0.5, true, { x = 1 } ]\n"
                          "empty = []\n"
                          "multi = [\n"
                          "  1, # one\n"
                          "  # a whole comment line\n"
                          "  2,\n"
                          "  \"three\",\n"
                          "]\n"
                          "trailing = [ 1, 2, ]\n"
                          "after = 1\n");
    assert_int_equal(ns_toml_count(get(t, "integers")), 3);
    assert_int_equal(num(t, "integers.2"), 3);
    assert_string_equal(str(t, "colors.2"), "green");
    assert_int_equal(num(t, "nested.1.2"), 5);
    assert_int_equal(ns_toml_count(get(t, "nested.2")), 0);
    assert_string_equal(str(t, "mixed.1.0"), "a");
    assert_true(flt(t, "mixed.2") == 0.5);
    assert_int_equal(num(t, "mixed.4.x"), 1);
    assert_int_equal(ns_toml_count(get(t, "empty")), 0);
    assert_int_equal(ns_toml_count(get(t, "multi")), 3);
    assert_int_equal(ns_toml_line(get(t, "multi")), 6);
    assert_int_equal(ns_toml_line(get(t, "multi.1")), 9);
    assert_int_equal(ns_toml_line(get(t, "multi.2")), 10);
    assert_int_equal(ns_toml_count(get(t, "trailing")), 2);
    assert_int_equal(ns_toml_line(get(t, "after")), 13);
    assert_null(ns_toml_at(get(t, "integers"), 3));
    assert_null(ns_toml_key_at(get(t, "integers"), 0));
    ns_toml_free(t);
}

static void test_inline_tables(void **state) {
    (void)state;
    ns_toml *t = parse_ok("name = { first = \"Tom\", last = \"Preston-Werner\" }\n"
                          "point = { x = 1, y = 2 }\n"
                          "animal = { type.name = \"pug\", type.age = 3 }\n"
                          "empty = {}\n"
                          "deep = { a = { b = { c = [ { d = 1 } ] } } }\n");
    assert_string_equal(str(t, "name.last"), "Preston-Werner");
    assert_int_equal(num(t, "point.y"), 2);
    assert_string_equal(str(t, "animal.type.name"), "pug");
    assert_int_equal(num(t, "animal.type.age"), 3);
    assert_int_equal(ns_toml_count(get(t, "empty")), 0);
    assert_int_equal(num(t, "deep.a.b.c.0.d"), 1);
    assert_string_equal(ns_toml_key_at(get(t, "name"), 1), "last");
    ns_toml_free(t);
}

static void test_whitespace_and_comments(void **state) {
    (void)state;
    ns_toml *t = parse_ok("\xef\xbb\xbf# BOM, then CRLF lines\r\n"
                          "\ta\t=\t1\t# tab\r\n"
                          "\r\n"
                          "  [ t ]  \r\n"
                          "b=\"x\"#no space\r\n"
                          "c = 'comment chars: \xc3\xa9 \t ok'"); /* no final newline */
    assert_int_equal(num(t, "a"), 1);
    assert_int_equal(ns_toml_line(get(t, "a")), 2);
    assert_string_equal(str(t, "t.b"), "x");
    assert_int_equal(ns_toml_line(get(t, "t.c")), 6);
    ns_toml_free(t);
    t = parse_ok("");
    assert_int_equal(ns_toml_count(t), 0);
    ns_toml_free(t);
    t = parse_ok("# only a comment");
    ns_toml_free(t);
    /* not NUL-terminated: only len bytes are read */
    char err[256];
    t = ns_toml_parse("a = 12345", 6, "t.toml", err, sizeof err);
    assert_non_null(t);
    assert_int_equal(num(t, "a"), 12);
    ns_toml_free(t);
}

static void test_errors(void **state) {
    (void)state;
    static const struct {
        const char *doc, *err;
    } cases[] = {
        /* keys and tables defined twice */
        {"a = 1\nb = 2\na = 3\n", "t.toml:3: duplicate key 'a' (first defined at line 1)"},
        {"[t]\nx.y = 1\nx.y = 2\n", "t.toml:3: duplicate key 't.x.y' (first defined at line 2)"},
        {"\"a b\" = 1\n'a b' = 2\n", "t.toml:2: duplicate key '\"a b\"' (first defined at line 1)"},
        {"[a]\nx = 1\n\n[a]\ny = 2\n", "t.toml:4: table [a] is defined twice (first at line 1)"},
        {"[a.b]\n[a]\n[a]\n", "t.toml:3: table [a] is defined twice (first at line 2)"},
        {"a = 1\n[a]\n", "t.toml:2: 'a' is an integer (line 1), not a table"},
        {"a = 1\n[a.b]\n", "t.toml:2: 'a' is an integer (line 1), not a table"},
        {"a = \"s\"\na.b = 1\n", "t.toml:2: 'a' is a string (line 1), not a table"},
        {"a = [1]\n[[a]]\n", "t.toml:2: 'a' is an array (line 1), not an array of tables"},
        {"a = []\n[a.b]\n", "t.toml:2: 'a' is an array (line 1), not a table"},
        {"[a]\n[[a]]\n", "t.toml:2: 'a' is a table (line 1), not an array of tables"},
        {"[[a]]\n[a]\n", "t.toml:2: 'a' is an array of tables (line 1), not a table"},
        {"[fruit]\napple.color = \"red\"\n\n[fruit.apple]\n",
         "t.toml:4: table [fruit.apple] was already defined by dotted keys (line 2)"},
        {"[a.b]\nx = 1\n[a]\nb.y = 2\n", "t.toml:4: table [a.b] (line 1) cannot be extended with dotted keys"},
        {"[a.b.c]\nz = 9\n[a]\nb.c.t = 1\n", "t.toml:4: table [a.b] (line 1) cannot be extended with dotted keys"},
        {"a = { x = 1 }\na.y = 2\n", "t.toml:2: 'a' is an inline table (line 1) and cannot be extended"},
        {"a = { x = 1 }\n[a.b]\n", "t.toml:2: 'a' is an inline table (line 1) and cannot be extended"},
        {"a = { x = 1 }\n[a]\n", "t.toml:2: 'a' is an inline table (line 1) and cannot be extended"},
        {"a = { x = 1, x = 2 }\n", "t.toml:1: duplicate key 'x' (first defined at line 1)"},
        {"a = { x.y = 1, x = 2 }\n", "t.toml:1: duplicate key 'x' (first defined at line 1)"},
        /* strings */
        {"a = \"bad \\q escape\"\n", "t.toml:1: invalid escape '\\q'"},
        {"a = \"\\x41\"\n", "t.toml:1: invalid escape '\\x'"},
        {"a = \"\\e\"\n", "t.toml:1: invalid escape '\\e'"},
        {"a = \"\\u12\"\n", "t.toml:1: invalid escape: \\u needs 4 hex digits"},
        {"a = \"\\U0000004\"\n", "t.toml:1: invalid escape: \\U needs 8 hex digits"},
        {"a = \"\\uD800\"\n", "t.toml:1: invalid escape: U+D800 is not a Unicode scalar value"},
        {"a = \"\\U00110000\"\n", "t.toml:1: invalid escape: U+110000 is not a Unicode scalar value"},
        {"\n\na = \"open\nb = 1\n", "t.toml:3: unterminated string (newline before the closing quote)"},
        {"a = 'open\n", "t.toml:1: unterminated string (newline before the closing quote)"},
        {"x = 1\na = \"\"\"open\n\nstill", "t.toml:2: unterminated string"},
        {"a = '''open\n", "t.toml:1: unterminated string"},
        {"a = \"tab\tok, bell\a\"\n", "t.toml:1: control character U+0007 in a string"},
        {"a = '\x7f'\n", "t.toml:1: control character U+007F in a string"},
        {"a = \"\"\"\nx\ry\"\"\"\n", "t.toml:2: control character U+000D in a string"},
        {"a = \"\"\"x \\  y\"\"\"\n", "t.toml:1: a backslash followed by spaces must end the line"},
        {"a = \"\"\"x\"\"\"\"\"\"\n", "t.toml:1: too many quotes at the end of a multi-line string"},
        {"a = \"caf\xc3\"\n", "t.toml:1: invalid UTF-8"},
        {"\n\n# \xed\xa0\x80 surrogate\n", "t.toml:3: invalid UTF-8"},
        {"a = \"\xc0\xaf\"\n", "t.toml:1: invalid UTF-8"},
        {"a = 1 # bell \a\n", "t.toml:1: control character U+0007 in a comment"},
        {"\"\"\"a\"\"\" = 1\n", "t.toml:1: a key cannot be a multi-line string"},
        /* numbers */
        {"a = 9223372036854775808\n", "t.toml:1: integer '9223372036854775808' does not fit in 64 bits"},
        {"a = -9223372036854775809\n", "t.toml:1: integer '-9223372036854775809' does not fit in 64 bits"},
        {"a = 0x8000000000000000\n", "t.toml:1: integer '0x8000000000000000' does not fit in 64 bits"},
        {"a = 0b1111111111111111111111111111111111111111111111111111111111111111\n",
         /* the number is cut at 60 characters */
         "t.toml:1: integer '0b1111111111111111111111111111111111111111111111111111111111' does not fit in 64 bits"},
        {"a = 012\n", "t.toml:1: leading zeros are not allowed in '012'"},
        {"a = -01\n", "t.toml:1: leading zeros are not allowed in '-01'"},
        {"a = 01.5\n", "t.toml:1: leading zeros are not allowed in '01.5'"},
        {"a = 1__0\n", "t.toml:1: invalid number '1__0'"},
        {"a = 1_\n", "t.toml:1: invalid number '1_'"},
        {"a = _1\n", "t.toml:1: invalid value '_1' (strings need quotes)"},
        {"a = 0x\n", "t.toml:1: invalid number '0x'"},
        {"a = 0x_1\n", "t.toml:1: invalid number '0x_1'"},
        {"a = 0XFF\n", "t.toml:1: invalid number '0XFF'"},
        {"a = -0x1\n", "t.toml:1: invalid number '-0x1'"},
        {"a = 0o8\n", "t.toml:1: invalid number '0o8'"},
        {"a = 0b102\n", "t.toml:1: invalid number '0b102'"},
        {"a = 1.\n", "t.toml:1: invalid number '1.'"},
        {"a = .5\n", "t.toml:1: invalid number '.5'"},
        {"a = 1.5.\n", "t.toml:1: invalid number '1.5.'"},
        {"a = 1e\n", "t.toml:1: invalid number '1e'"},
        {"a = 1e_5\n", "t.toml:1: invalid number '1e_5'"},
        {"a = 1.e5\n", "t.toml:1: invalid number '1.e5'"},
        {"a = 1e400\n", "t.toml:1: float '1e400' is out of range"},
        {"a = infinity\n", "t.toml:1: invalid value 'infinity' (strings need quotes)"},
        {"a = NaN\n", "t.toml:1: invalid value 'NaN' (strings need quotes)"},
        {"a = True\n", "t.toml:1: invalid value 'True' (strings need quotes)"},
        {"a = truey\n", "t.toml:1: invalid value 'truey' (strings need quotes)"},
        {"a = bare\n", "t.toml:1: invalid value 'bare' (strings need quotes)"},
        {"a = 1979-05-27\n", "t.toml:1: dates and times are not supported"},
        {"\na = 1979-05-27T07:32:00Z\n", "t.toml:2: dates and times are not supported"},
        {"a = 07:32:00\n", "t.toml:1: dates and times are not supported"},
        /* structure */
        {"a = \n", "t.toml:1: expected a value, found the end of the line"},
        {"a =", "t.toml:1: expected a value, found the end of the file"},
        {"a\n", "t.toml:1: expected '=' after the key, found the end of the line"},
        {"a b = 1\n", "t.toml:1: expected '=' after the key, found 'b'"},
        {"a. = 1\n", "t.toml:1: expected a key, found '='"},
        {"= 1\n", "t.toml:1: expected a key, a [table] or a comment, found '='"},
        {"a = 1 b = 2\n", "t.toml:1: expected the end of the line after the value, found 'b'"},
        {"a = \"x\" \"y\"\n", "t.toml:1: expected the end of the line after the value, found '\"'"},
        {"[a] b = 1\n", "t.toml:1: expected the end of the line after the header, found 'b'"},
        {"[a\n", "t.toml:1: expected ']' to close the header, found the end of the line"},
        {"[]\n", "t.toml:1: expected a key, found ']'"},
        {"[[a]\n", "t.toml:1: expected ']]' to close the header, found the end of the line"},
        {"[[a] ]\n", "t.toml:1: expected ']]' to close the header, found ' '"},
        {"a = 1\r\rb = 2\n", "t.toml:1: expected the end of the line after the value, found byte 0x0D"},
        {"a = [1 2]\n", "t.toml:1: expected ',' or ']' in the array, found '2'"},
        {"a = [1,,2]\n", "t.toml:1: expected a value, found ','"},
        {"a = [,]\n", "t.toml:1: expected a value, found ','"},
        {"a = [\n1,\n", "t.toml:3: expected a value, found the end of the file"},
        {"a = [\n1,\n2\n\n", "t.toml:5: expected ',' or ']' in the array, found the end of the file"},
        {"a = { x = 1\n}\n", "t.toml:1: an inline table must be on one line"},
        {"a = {\nx = 1 }\n", "t.toml:1: an inline table must be on one line"},
        {"a = { x = 1, }\n", "t.toml:1: a trailing comma is not allowed in an inline table"},
        {"a = { x = 1 y = 2 }\n", "t.toml:1: expected ',' or '}' in the inline table, found 'y'"},
        {"a = { x }\n", "t.toml:1: expected '=' after the key, found '}'"},
        {"a = { , }\n", "t.toml:1: expected a key, found ','"},
        {"a = 1\x01\n", "t.toml:1: expected the end of the line after the value, found byte 0x01"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) expect_err(cases[i].doc, cases[i].err);
    /* an embedded NUL byte in the text */
    char err[256];
    assert_null(ns_toml_parse("a = \"x\0y\"\n", 10, "t.toml", err, sizeof err));
    assert_string_equal(err, "t.toml:1: control character U+0000 in a string");
    /* a small err buffer gets a cut message, never an overflow */
    char small[8];
    assert_null(ns_toml_parse("a = ?", 5, "t.toml", small, sizeof small));
    assert_string_equal(small, "t.toml:");
}

/* The error message's path is printable and one line, whatever the key. */
static void test_error_paths(void **state) {
    (void)state;
    expect_err("\"a\\nb\" = 1\n\"a\\nb\" = 2\n", "t.toml:2: duplicate key '\"a?b\"' (first defined at line 1)");
    char doc[1200], want[400];
    memset(doc, 0, sizeof doc);
    char *p = doc;
    for (int i = 0; i < 2; i++) {
        for (int j = 0; j < 300; j++) *p++ = 'k';
        p += sprintf(p, " = %d\n", i);
    }
    snprintf(want, sizeof want, "t.toml:2: duplicate key '%.*s...' (first defined at line 1)", 156, doc);
    expect_err(doc, want);
}

static void test_depth_limit(void **state) {
    (void)state;
    /* 64 levels of arrays are fine (the root table is level 0) */
    char doc[4096];
    int n = 0;
    n += sprintf(doc + n, "a = ");
    for (int i = 0; i < 64; i++) doc[n++] = '[';
    for (int i = 0; i < 64; i++) doc[n++] = ']';
    doc[n] = 0;
    ns_toml *t = parse_ok(doc);
    ns_toml_free(t);
    n = sprintf(doc, "a = ");
    for (int i = 0; i < 65; i++) doc[n++] = '[';
    for (int i = 0; i < 65; i++) doc[n++] = ']';
    doc[n] = 0;
    expect_err(doc, "t.toml:1: nested deeper than 64 levels");
    /* deep dotted keys and headers hit the same limit */
    n = sprintf(doc, "\n");
    for (int i = 0; i < 64; i++) n += sprintf(doc + n, "k.");
    sprintf(doc + n, "k = 1\n");
    expect_err(doc, "t.toml:2: nested deeper than 64 levels");
    n = sprintf(doc, "[");
    for (int i = 0; i < 64; i++) n += sprintf(doc + n, "k.");
    sprintf(doc + n, "k]\n");
    expect_err(doc, "t.toml:1: nested deeper than 64 levels");
    /* a hostile nesting far past the limit stops early, no deep recursion */
    size_t big = 1000000;
    char *deep = malloc(big + 8);
    assert_non_null(deep);
    memcpy(deep, "a = ", 4);
    memset(deep + 4, '[', big);
    deep[big + 4] = 0;
    expect_err(deep, "t.toml:1: nested deeper than 64 levels");
    memset(deep + 4, '{', big);
    expect_err(deep, "t.toml:1: expected a key, found '{'");
    for (size_t i = 0; i + 3 <= big; i += 3) memcpy(deep + 4 + i, "{a=", 3);
    expect_err(deep, "t.toml:1: nested deeper than 64 levels");
    free(deep);
}

/* Many keys and long arrays stay linear: 200k keys in one table, 1M items. */
static void test_large(void **state) {
    (void)state;
    size_t cap = 200000 * 16;
    char *doc = malloc(cap);
    assert_non_null(doc);
    size_t n = 0;
    for (int i = 0; i < 200000; i++) n += (size_t)sprintf(doc + n, "k%d = %d\n", i, i);
    char err[256];
    ns_toml *t = ns_toml_parse(doc, n, "t.toml", err, sizeof err);
    assert_non_null(t);
    assert_int_equal(ns_toml_count(t), 200000);
    assert_int_equal(ns_toml_int(ns_toml_get(t, "k123456")), 123456);
    assert_string_equal(ns_toml_key_at(t, 199999), "k199999");
    assert_int_equal(ns_toml_line(ns_toml_get(t, "k199999")), 200000);
    ns_toml_free(t);
    free(doc);
    cap = 1000000 * 3 + 16;
    doc = malloc(cap);
    assert_non_null(doc);
    n = (size_t)sprintf(doc, "a = [");
    for (int i = 0; i < 1000000; i++) n += (size_t)sprintf(doc + n, "%d,", i % 10);
    n += (size_t)sprintf(doc + n, "]");
    t = ns_toml_parse(doc, n, "t.toml", err, sizeof err);
    assert_non_null(t);
    assert_int_equal(ns_toml_count(ns_toml_get(t, "a")), 1000000);
    assert_int_equal(ns_toml_int(ns_toml_at(ns_toml_get(t, "a"), 999999)), 9);
    ns_toml_free(t);
    free(doc);
}

/* The TOML 1.0 specification's longer example, typed in again. */
static const char spec_example[] =
    "# This is a TOML document\n"
    "\n"
    "title = \"TOML Example\"\n"
    "\n"
    "[owner]\n"
    "name = \"Tom Preston-Werner\"\n"
    "\n"
    "[database]\n"
    "enabled = true\n"
    "ports = [ 8000, 8001, 8002 ]\n"
    "data = [ [\"delta\", \"phi\"], [3.14] ]\n"
    "temp_targets = { cpu = 79.5, case = 72.0 }\n"
    "\n"
    "[servers]\n"
    "\n"
    "[servers.alpha]\n"
    "ip = \"10.0.0.1\"\n"
    "role = \"frontend\"\n"
    "\n"
    "[servers.beta]\n"
    "ip = \"10.0.0.2\"\n"
    "role = \"backend\"\n";

static void test_spec_examples(void **state) {
    (void)state;
    ns_toml *t = parse_ok(spec_example);
    assert_string_equal(str(t, "title"), "TOML Example");
    assert_string_equal(str(t, "owner.name"), "Tom Preston-Werner");
    assert_true(ns_toml_bool(get(t, "database.enabled")));
    assert_int_equal(num(t, "database.ports.2"), 8002);
    assert_string_equal(str(t, "database.data.0.1"), "phi");
    assert_true(flt(t, "database.data.1.0") == 3.14);
    assert_true(flt(t, "database.temp_targets.case") == 72.0);
    assert_string_equal(str(t, "servers.beta.role"), "backend");
    assert_int_equal(ns_toml_line(get(t, "servers.alpha")), 16);
    assert_int_equal(ns_toml_line(get(t, "servers.beta.ip")), 21);
    ns_toml_free(t);

    /* the spec's "valid but discouraged" out-of-order tables and keys */
    t = parse_ok("apple.type = \"fruit\"\norange.type = \"fruit\"\napple.skin = \"thin\"\n"
                 "orange.skin = \"thick\"\napple.color = \"red\"\norange.color = \"orange\"\n"
                 "[fruit.apple]\n[animal]\n[fruit.orange]\n");
    assert_string_equal(str(t, "apple.color"), "red");
    assert_string_equal(str(t, "orange.skin"), "thick");
    assert_int_equal(ns_toml_count(get(t, "fruit")), 2);
    ns_toml_free(t);

    /* the spec's quoting examples */
    t = parse_ok("str1 = \"\"\"\nRoses are red\nViolets are blue\"\"\"\n"
                 "str4 = \"\"\"Here are two quotation marks: \"\". Simple enough.\"\"\"\n"
                 "str5 = \"\"\"Here are three quotation marks: \"\"\\\".\"\"\"\n"
                 "str6 = \"\"\"Here are fifteen quotation marks: "
                 "\"\"\\\"\"\"\\\"\"\"\\\"\"\"\\\"\"\"\\\".\"\"\"\n"
                 "quot15 = '''Here are fifteen quotation marks: \"\"\"\"\"\"\"\"\"\"\"\"\"\"\"'''\n"
                 "apos15 = \"Here are fifteen apostrophes: '''''''''''''''\"\n"
                 "str = ''''That,' she said, 'is still pointless.''''\n"
                 "winpath  = 'C:\\Users\\nodejs\\templates'\n"
                 "winpath2 = '\\\\ServerX\\admin$\\system32\\'\n"
                 "quoted   = 'Tom \"Dubs\" Preston-Werner'\n"
                 "regex    = '<\\i\\c*\\s*>'\n"
                 "str7 = \"I'm a string. \\\"You can quote me\\\". Name\\tJos\\u00E9\\nLocation\\tSF.\"\n");
    assert_string_equal(str(t, "str5"), "Here are three quotation marks: \"\"\".");
    assert_string_equal(str(t, "str6"), "Here are fifteen quotation marks: \"\"\"\"\"\"\"\"\"\"\"\"\"\"\".");
    assert_string_equal(str(t, "quot15"), "Here are fifteen quotation marks: \"\"\"\"\"\"\"\"\"\"\"\"\"\"\"");
    assert_string_equal(str(t, "apos15"), "Here are fifteen apostrophes: '''''''''''''''");
    assert_string_equal(str(t, "str"), "'That,' she said, 'is still pointless.'");
    assert_string_equal(str(t, "winpath"), "C:\\Users\\nodejs\\templates");
    assert_string_equal(str(t, "winpath2"), "\\\\ServerX\\admin$\\system32\\");
    assert_string_equal(str(t, "quoted"), "Tom \"Dubs\" Preston-Werner");
    assert_string_equal(str(t, "str7"), "I'm a string. \"You can quote me\". Name\tJos\xc3\xa9\nLocation\tSF.");
    ns_toml_free(t);

    /* the spec's invalid examples */
    expect_err("name = \"Tom\"\nname = \"Pradyun\"\n", "t.toml:2: duplicate key 'name' (first defined at line 1)");
    expect_err("spelling = \"favorite\"\n\"spelling\" = \"favourite\"\n",
               "t.toml:2: duplicate key 'spelling' (first defined at line 1)");
    expect_err("fruit.apple = 1\nfruit.apple.smooth = true\n", "t.toml:2: 'fruit.apple' is an integer (line 1), not a table");
    expect_err("[fruit]\napple = \"red\"\n\n[fruit]\norange = \"orange\"\n",
               "t.toml:4: table [fruit] is defined twice (first at line 1)");
    expect_err("[fruit]\napple = \"red\"\n\n[fruit.apple]\ntexture = \"smooth\"\n",
               "t.toml:4: 'fruit.apple' is a string (line 2), not a table");
    expect_err("[product]\ntype = { name = \"Nail\" }\ntype.edible = false\n",
               "t.toml:3: 'product.type' is an inline table (line 2) and cannot be extended");
    expect_err("[product]\ntype.name = \"Nail\"\ntype = { edible = false }\n",
               "t.toml:3: duplicate key 'product.type' (first defined at line 2)");
    expect_err("[fruit.physical]\ncolor = \"red\"\n\n[[fruit]]\nname = \"apple\"\n",
               "t.toml:4: 'fruit' is a table (line 1), not an array of tables");
    expect_err("fruits = []\n\n[[fruits]]\n", "t.toml:3: 'fruits' is an array (line 1), not an array of tables");
    expect_err("[[fruits]]\nname = \"apple\"\n\n[[fruits.varieties]]\nname = \"red delicious\"\n\n"
               "[fruits.varieties]\nname = \"granny smith\"\n",
               "t.toml:7: 'fruits.varieties' is an array of tables (line 4), not a table");
    expect_err("[[fruits]]\nname = \"apple\"\n\n[fruits.physical]\ncolor = \"red\"\n\n[[fruits.physical]]\n",
               "t.toml:7: 'fruits.physical' is a table (line 4), not an array of tables");
    expect_err("key = # INVALID\n", "t.toml:1: expected a value, found '#'");
    expect_err("first = \"Tom\" last = \"Preston-Werner\" # INVALID\n",
               "t.toml:1: expected the end of the line after the value, found 'l'");
    expect_err("= \"no key name\"  # INVALID\n", "t.toml:1: expected a key, a [table] or a comment, found '='");
    expect_err("\"\"\"key\"\"\" = \"value\"  # INVALID\n", "t.toml:1: a key cannot be a multi-line string");
    expect_err("invalid_float_1 = .7\n", "t.toml:1: invalid number '.7'");
    expect_err("invalid_float_2 = 7.\n", "t.toml:1: invalid number '7.'");
    expect_err("invalid_float_3 = 3.e+20\n", "t.toml:1: invalid number '3.e+20'");
    expect_err("[ j . \"ʞ\" . 'l' ]\n[j.\"ʞ\".l]\n", "t.toml:2: table [j.\"ʞ\".l] is defined twice (first at line 1)");
}

/* ---- mutation fuzzing ---- */

static uint64_t rng = 0x243f6a8885a308d3ull;
static uint64_t next_rand(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* Walks every node (reads every field) so that a broken tree shows up
 * under valgrind or ASan. */
static size_t walk(const ns_toml *n, int depth) {
    assert_true(depth <= NS_TOML_MAX_DEPTH);
    assert_true(ns_toml_line(n) >= 1);
    size_t count = 1;
    switch (ns_toml_type_of(n)) {
    case NS_TOML_TABLE:
        for (int i = 0; i < ns_toml_count(n); i++) {
            const char *k = ns_toml_key_at(n, i);
            assert_non_null(k);
            if (strlen(k) == ns_toml_key_len(n, i)) assert_ptr_equal(ns_toml_get(n, k), ns_toml_at(n, i));
            count += walk(ns_toml_at(n, i), depth + 1);
        }
        break;
    case NS_TOML_ARRAY:
        for (int i = 0; i < ns_toml_count(n); i++) count += walk(ns_toml_at(n, i), depth + 1);
        break;
    case NS_TOML_STRING: assert_true(strlen(ns_toml_string(n)) <= ns_toml_string_len(n)); break;
    default: break;
    }
    return count;
}

static void test_mutation_fuzz(void **state) {
    (void)state;
    static const char *const seeds[] = {
        spec_example,
        "[router]\nlisten = \"127.0.0.1:11500\"\ntoken_threshold = 2_000\n[router.force]\nregex = '(?i)prove'\n"
        "[[router.upstream]]\nname = \"small\"\nurl = \"http://127.0.0.1:11434/\"\n[[router.upstream]]\n"
        "name = \"big\"\ntimeout = \"10m\"\n",
        "a = \"\"\"\nx \\\n  y\\u00e9\\U0001F600\"\"\"\nb = '''\nraw\n'''\nc = [1, 0x1f, 0o7, 0b1, -2.5e-3, inf, "
        "nan, true]\nd = { e.f = 1, g = [ { h = 'i' } ] }\n[[t]]\n[t.u]\n[[t]]\n\"q k\".'r' = +1_000\n",
        "x.y.z = 1\n[a.b]\n[a]\nc = [\n  [1, 2], # c\n  [\"3\"],\n]\n",
    };
    static const char alphabet[] = "[]{}=.,\"'\\#\n\r\t _-+0123456789abefinxotruUe:\x01\x7f\xc3\xa9\xff";
    char doc[2048], err[256];
    int parsed = 0;
    for (int round = 0; round < 20000; round++) {
        const char *seed = seeds[round % (sizeof seeds / sizeof seeds[0])];
        size_t n = strlen(seed);
        memcpy(doc, seed, n);
        int edits = 1 + (int)(next_rand() % 6);
        for (int e = 0; e < edits; e++) {
            size_t pos = n ? next_rand() % n : 0;
            uint64_t r = next_rand();
            char c = (r >> 8) & 1 ? alphabet[(r >> 16) % (sizeof alphabet - 1)] : (char)(r >> 16);
            switch (r % 4) {
            case 0: doc[pos] = c; break; /* replace */
            case 1:                      /* insert */
                if (n + 1 < sizeof doc) {
                    memmove(doc + pos + 1, doc + pos, n - pos);
                    doc[pos] = c;
                    n++;
                }
                break;
            case 2: /* delete */
                if (n) {
                    memmove(doc + pos, doc + pos + 1, n - pos - 1);
                    n--;
                }
                break;
            default: { /* duplicate a span */
                size_t len = 1 + (r >> 24) % 32;
                if (pos + len <= n && n + len < sizeof doc) {
                    memmove(doc + pos + len, doc + pos, n - pos);
                    n += len;
                }
            }
            }
        }
        err[0] = 'x';
        ns_toml *t = ns_toml_parse(doc, n, "f.toml", err, sizeof err);
        if (t) {
            parsed++;
            walk(t, 0);
            ns_toml_free(t);
        } else {
            assert_true(strncmp(err, "f.toml:", 7) == 0);
            assert_null(strchr(err, '\n'));
        }
    }
    /* the mutations must leave some documents valid, or the loop only tests errors */
    assert_true(parsed > 1000);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic_strings),  cmocka_unit_test(test_multiline_strings),
        cmocka_unit_test(test_integers),       cmocka_unit_test(test_floats_and_bools),
        cmocka_unit_test(test_keys),           cmocka_unit_test(test_tables),
        cmocka_unit_test(test_arrays_of_tables), cmocka_unit_test(test_arrays),
        cmocka_unit_test(test_inline_tables),  cmocka_unit_test(test_whitespace_and_comments),
        cmocka_unit_test(test_errors),         cmocka_unit_test(test_error_paths),
        cmocka_unit_test(test_depth_limit),    cmocka_unit_test(test_large),
        cmocka_unit_test(test_spec_examples),  cmocka_unit_test(test_mutation_fuzz),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
