/* The model store: Ollama's name rules, import / resolve / list / copy /
 * delete in a temporary store, a hand-written Ollama store read beside it,
 * bad manifests, and names that try to leave the store. */
#define _XOPEN_SOURCE 700 /* nftw */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <dirent.h>
#include <limits.h>
#include <pthread.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/store.h"
#include "testutil.h"

/* ---- helpers ---- */

static const char *stories; /* the shared tiny model */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void rm_rf(const char *dir)
{
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void make_tmpdir(char *buf, size_t len)
{
    const char *base = getenv("TMPDIR");
    snprintf(buf, len, "%s/ns_test_store_XXXXXX", base && *base ? base : "/tmp");
    assert_non_null(mkdtemp(buf));
}

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static void copy_to(const char *src, const char *dst)
{
    size_t len = 0;
    char *data = ns_test_read_file(src, &len);
    assert_non_null(data);
    write_file(dst, data, len);
    free(data);
}

static void mkdirs(const char *path)
{
    char tmp[4400];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            mkdir(tmp, 0755);
            *p = '/';
        }
    mkdir(tmp, 0755);
}

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

static bool exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

typedef struct {
    char root[PATH_MAX]; /* temp dir holding everything */
    char models[4200]; /* our store */
    char ollama[4200]; /* the fake Ollama store */
    ns_store *store;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    char made[4096];
    make_tmpdir(made, sizeof made);
    assert_non_null(realpath(made, f->root)); /* the store reports canonical paths */
    snprintf(f->models, sizeof f->models, "%s/models", f->root);
    snprintf(f->ollama, sizeof f->ollama, "%s/ollama", f->root);
    char err[512] = "";
    f->store = ns_store_open(f->models, f->ollama, err, sizeof err);
    if (!f->store)
        fprintf(stderr, "ns_store_open: %s\n", err);
    assert_non_null(f->store);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    ns_store_close(f->store);
    rm_rf(f->root);
    free(f);
    return 0;
}

/* A private copy of the shared model that the test may move or delete. */
static void model_copy(const fixture *f, const char *leaf, char *out, size_t len)
{
    snprintf(out, len, "%s/%s", f->root, leaf);
    copy_to(stories, out);
}

/* ---- names ---- */

static void test_name_parse_good(void **state)
{
    (void)state;
    static const struct {
        const char *in, *host, *ns, *model, *tag, *display;
    } cases[] = {
        {"phi3", "registry.ollama.ai", "library", "phi3", "latest", "phi3:latest"},
        {"phi3:mini", "registry.ollama.ai", "library", "phi3", "mini", "phi3:mini"},
        {"me/tiny:q4", "registry.ollama.ai", "me", "tiny", "q4", "me/tiny:q4"},
        {"example.com/me/tiny", "example.com", "me", "tiny", "latest", "example.com/me/tiny:latest"},
        {"hf.co/user/repo:Q4_K_M", "hf.co", "user", "repo", "Q4_K_M", "hf.co/user/repo:Q4_K_M"},
        {"registry.ollama.ai/library/phi3:mini", "registry.ollama.ai", "library", "phi3", "mini", "phi3:mini"},
        {"REGISTRY.ollama.ai/Library/phi3", "REGISTRY.ollama.ai", "Library", "phi3", "latest", "phi3:latest"},
        {"localhost:5000/me/tiny:v1", "localhost:5000", "me", "tiny", "v1", "localhost:5000/me/tiny:v1"},
        {"https://example.com/me/tiny", "example.com", "me", "tiny", "latest", "example.com/me/tiny:latest"},
        {"example.com/library/tiny", "example.com", "library", "tiny", "latest", "example.com/library/tiny:latest"},
        {"Llama3.1:8B-instruct", "registry.ollama.ai", "library", "Llama3.1", "8B-instruct", "Llama3.1:8B-instruct"},
        {"_x-y.z:_1.0", "registry.ollama.ai", "library", "_x-y.z", "_1.0", "_x-y.z:_1.0"},
        {"a..b", "registry.ollama.ai", "library", "a..b", "latest", "a..b:latest"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ns_model_name n;
        char err[256] = "", shown[600];
        if (ns_model_name_parse(cases[i].in, &n, err, sizeof err) != 0)
            fail_msg("'%s' refused: %s", cases[i].in, err);
        assert_string_equal(n.host, cases[i].host);
        assert_string_equal(n.ns, cases[i].ns);
        assert_string_equal(n.model, cases[i].model);
        assert_string_equal(n.tag, cases[i].tag);
        ns_model_name_display(&n, shown, sizeof shown);
        assert_string_equal(shown, cases[i].display);
    }
}

static void test_name_parse_bad(void **state)
{
    (void)state;
    char long_model[100], long_tag[100];
    memset(long_model, 'm', 81);
    long_model[81] = '\0';
    snprintf(long_tag, sizeof long_tag, "x:%.*s", 81, long_model);
    const char *bad[] = {
        "", "a:b:c", "..", ".", "../x", "./x", "a/../b", "a/b/c/d", "/x", "x/", "a b", "x:", ":x", "x:y z",
        "me.x/tiny", /* namespaces have no '.' */
        ".hidden", "-x", "x:-y", "a\\b", "a\nb", "x:../../etc", "..:latest", "x/..:y", "h/../m", "a/b:c/d",
        "caf\xc3\xa9", "x:a/b", "x%2f..", "a//b", long_model, long_tag,
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ns_model_name n;
        char err[256] = "";
        if (ns_model_name_parse(bad[i], &n, err, sizeof err) == 0)
            fail_msg("'%s' accepted as %s/%s/%s:%s", bad[i], n.host, n.ns, n.model, n.tag);
        assert_non_null(strstr(err, "invalid model name"));
    }
}

/* ---- our store ---- */

static void test_import_resolve_list_copy_delete(void **state)
{
    fixture *f = *state;
    char src[4400], err[1024] = "", hex[65];
    model_copy(f, "demo.gguf", src, sizeof src);
    assert_int_equal(ns_sha256_file(src, hex, err, sizeof err), 0);

    assert_int_equal(ns_store_import(f->store, "demo", src, true, "{{ .Prompt }}", "be brief",
                                     "{\"temperature\":0.5}", err, sizeof err),
                     0);
    assert_true(exists(src)); /* keep_src */

    ns_model_ref r;
    assert_int_equal(ns_store_resolve(f->store, "demo", &r, err, sizeof err), 0);
    assert_string_equal(r.name, "demo:latest");
    assert_int_equal(r.source, NS_SRC_NSTACK);
    char want_digest[80], want_path[4400];
    snprintf(want_digest, sizeof want_digest, "sha256:%s", hex);
    snprintf(want_path, sizeof want_path, "%s/blobs/sha256-%s", f->models, hex);
    assert_string_equal(r.digest, want_digest);
    assert_string_equal(r.path, want_path);
    struct stat st;
    assert_int_equal(stat(stories, &st), 0);
    assert_int_equal(r.size, st.st_size);
    assert_true(r.modified > 0);
    assert_string_equal(r.template_text, "{{ .Prompt }}");
    assert_string_equal(r.system_text, "be brief");
    assert_string_equal(r.params_json, "{\"temperature\":0.5}");
    ns_model_ref_clear(&r);

    /* The manifest is where Ollama would put it, with a config blob. */
    char mpath[4400];
    snprintf(mpath, sizeof mpath, "%s/manifests/registry.ollama.ai/library/demo/latest", f->models);
    char *manifest = ns_test_read_file(mpath, NULL);
    assert_non_null(manifest);
    assert_non_null(strstr(manifest, "\"schemaVersion\":2"));
    assert_non_null(strstr(manifest, "application/vnd.docker.container.image.v1+json"));
    assert_non_null(strstr(manifest, "application/vnd.ollama.image.model"));
    free(manifest);

    /* Lookup ignores case; other spellings of the same name resolve. */
    assert_int_equal(ns_store_resolve(f->store, "DEMO:Latest", &r, err, sizeof err), 0);
    assert_string_equal(r.name, "demo:latest");
    ns_model_ref_clear(&r);
    assert_int_equal(ns_store_resolve(f->store, "registry.ollama.ai/library/demo", &r, err, sizeof err), 0);
    ns_model_ref_clear(&r);

    assert_int_equal(ns_store_resolve(f->store, "demo:other", &r, err, sizeof err), -1);
    assert_string_equal(err, "model 'demo:other' not found");

    assert_int_equal(ns_store_copy(f->store, "demo", "me/other:v2", err, sizeof err), 0);
    ns_model_ref *list = NULL;
    int n = 0;
    assert_int_equal(ns_store_list(f->store, &list, &n, err, sizeof err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(list[0].name, "demo:latest");
    assert_string_equal(list[1].name, "me/other:v2");
    assert_string_equal(list[1].digest, want_digest);
    assert_int_equal(list[1].size, st.st_size);
    assert_string_equal(list[1].system_text, "be brief");
    for (int i = 0; i < n; i++)
        ns_model_ref_clear(&list[i]);
    free(list);

    /* The blob stays while another name uses it. */
    assert_int_equal(ns_store_delete(f->store, "Demo", err, sizeof err), 0);
    assert_true(exists(want_path));
    assert_int_equal(ns_store_resolve(f->store, "demo", &r, err, sizeof err), -1);
    assert_int_equal(ns_store_delete(f->store, "demo", err, sizeof err), -1);
    assert_string_equal(err, "model 'demo' not found");

    assert_int_equal(ns_store_delete(f->store, "me/other:v2", err, sizeof err), 0);
    char dir[4400];
    snprintf(dir, sizeof dir, "%s/blobs", f->models);
    assert_int_equal(count_entries(dir), 0); /* model, config and text blobs all gone */
    snprintf(dir, sizeof dir, "%s/manifests", f->models);
    assert_int_equal(count_entries(dir), 0); /* and the empty directories */
    assert_int_equal(ns_store_list(f->store, &list, &n, err, sizeof err), 0);
    assert_int_equal(n, 0);
    free(list);
}

static void test_import_moves_and_replaces(void **state)
{
    fixture *f = *state;
    char src[4400], err[1024] = "";
    model_copy(f, "moved.gguf", src, sizeof src);
    assert_int_equal(ns_store_import(f->store, "m:v1", src, false, NULL, "first", NULL, err, sizeof err), 0);
    assert_false(exists(src)); /* moved, not copied */

    /* Same bytes under the same name with another system text: the old
     * text blob is collected, the model blob kept. */
    model_copy(f, "again.gguf", src, sizeof src);
    assert_int_equal(ns_store_import(f->store, "M:V1", src, false, NULL, "second", NULL, err, sizeof err), 0);
    assert_false(exists(src)); /* already stored: the source is dropped */
    ns_model_ref r;
    assert_int_equal(ns_store_resolve(f->store, "m:v1", &r, err, sizeof err), 0);
    assert_string_equal(r.system_text, "second");
    ns_model_ref_clear(&r);
    char dir[4400];
    snprintf(dir, sizeof dir, "%s/blobs", f->models);
    assert_int_equal(count_entries(dir), 3); /* model, config, system */

    /* Importing a stored blob under a new name keeps the blob. */
    assert_int_equal(ns_store_resolve(f->store, "m:v1", &r, err, sizeof err), 0);
    assert_int_equal(ns_store_import(f->store, "again", r.path, false, NULL, NULL, NULL, err, sizeof err), 0);
    assert_true(exists(r.path));
    ns_model_ref_clear(&r);

    /* A symbolic link is not moved in: what it points to is copied. */
    char link[4400];
    snprintf(link, sizeof link, "%s/link.gguf", f->root);
    model_copy(f, "target.gguf", src, sizeof src);
    assert_int_equal(ns_store_delete(f->store, "m:v1", err, sizeof err), 0);
    assert_int_equal(ns_store_delete(f->store, "again", err, sizeof err), 0);
    assert_int_equal(symlink(src, link), 0);
    assert_int_equal(ns_store_import(f->store, "linked", link, false, NULL, NULL, NULL, err, sizeof err), 0);
    assert_true(exists(src));
    assert_false(exists(link));
    assert_int_equal(ns_store_resolve(f->store, "linked", &r, err, sizeof err), 0);
    struct stat st;
    assert_int_equal(lstat(r.path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    ns_model_ref_clear(&r);
    char blobs[4400];
    snprintf(blobs, sizeof blobs, "%s/blobs", f->models);
    assert_int_equal(count_entries(blobs), 2); /* model and config */

    /* Not GGUF, missing, bad params: refused, store unchanged. */
    char txt[4400];
    snprintf(txt, sizeof txt, "%s/notes.gguf", f->root);
    write_file(txt, "hello world\n", 12);
    assert_int_equal(ns_store_import(f->store, "bad", txt, false, NULL, NULL, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "not a GGUF file"));
    assert_true(exists(txt));
    assert_int_equal(ns_store_import(f->store, "bad", "/nonexistent/x.gguf", false, NULL, NULL, NULL, err,
                                     sizeof err),
                     -1);
    assert_non_null(strstr(err, "/nonexistent/x.gguf"));
    model_copy(f, "p.gguf", src, sizeof src);
    assert_int_equal(ns_store_import(f->store, "bad", src, true, NULL, NULL, "[1,2]", err, sizeof err), -1);
    assert_non_null(strstr(err, "JSON object"));
    assert_int_equal(count_entries(blobs), 2);
}

static void test_resolve_paths(void **state)
{
    fixture *f = *state;
    char err[1024] = "";
    ns_model_ref r;
    assert_int_equal(ns_store_resolve(f->store, stories, &r, err, sizeof err), 0);
    assert_int_equal(r.source, NS_SRC_PATH);
    assert_string_equal(r.name, stories);
    assert_string_equal(r.digest, "");
    assert_true(r.size > 0);
    assert_null(r.template_text);
    ns_model_ref_clear(&r);

    assert_int_equal(ns_store_resolve(f->store, "./no-such-model.gguf", &r, err, sizeof err), -1);
    assert_non_null(strstr(err, "not found"));
    assert_int_equal(ns_store_resolve(f->store, f->root, &r, err, sizeof err), -1);
    assert_non_null(strstr(err, "not a regular file"));
    assert_int_equal(ns_store_resolve(f->store, "", &r, err, sizeof err), -1);

    /* A path source can be copied into the store (the file is kept). */
    char src[4400];
    model_copy(f, "keep.gguf", src, sizeof src);
    assert_int_equal(ns_store_copy(f->store, src, "kept", err, sizeof err), 0);
    assert_true(exists(src));
    assert_int_equal(ns_store_resolve(f->store, "kept", &r, err, sizeof err), 0);
    assert_int_equal(r.source, NS_SRC_NSTACK);
    ns_model_ref_clear(&r);

    char tmp[4400];
    assert_int_equal(ns_store_temp_path(f->store, tmp, sizeof tmp), 0);
    char want[4400];
    snprintf(want, sizeof want, "%s/blobs/partial-", f->models);
    assert_memory_equal(tmp, want, strlen(want));
}

/* ---- Ollama's store ---- */

/* Writes an Ollama manifest for a model blob (copied) plus a config blob
 * and a template layer, as `ollama pull` leaves them. */
static void fake_ollama_model(const fixture *f, const char *rel, const char *model_src)
{
    char err[512], hex[65], path[4400];
    assert_int_equal(ns_sha256_file(model_src, hex, err, sizeof err), 0);
    snprintf(path, sizeof path, "%s/blobs", f->ollama);
    mkdirs(path);
    snprintf(path, sizeof path, "%s/blobs/sha256-%s", f->ollama, hex);
    if (!exists(path))
        copy_to(model_src, path);
    const char *config_hex = "1111111111111111111111111111111111111111111111111111111111111111";
    const char *tmpl_hex = "2222222222222222222222222222222222222222222222222222222222222222";
    snprintf(path, sizeof path, "%s/blobs/sha256-%s", f->ollama, config_hex);
    write_file(path, "{\"model_format\":\"gguf\"}", 23);
    snprintf(path, sizeof path, "%s/blobs/sha256-%s", f->ollama, tmpl_hex);
    write_file(path, "{{ .Prompt }}", 13);
    char manifest[2048];
    int len = snprintf(manifest, sizeof manifest,
                       "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.docker.distribution.manifest.v2+json\","
                       "\"config\":{\"mediaType\":\"application/vnd.docker.container.image.v1+json\","
                       "\"digest\":\"sha256:%s\",\"size\":23},\"layers\":["
                       "{\"mediaType\":\"application/vnd.ollama.image.model\",\"digest\":\"sha256:%s\",\"size\":1},"
                       "{\"mediaType\":\"application/vnd.ollama.image.template\",\"digest\":\"sha256:%s\","
                       "\"size\":13}]}",
                       config_hex, hex, tmpl_hex);
    snprintf(path, sizeof path, "%s/manifests/%s", f->ollama, rel);
    char dir[4400];
    snprintf(dir, sizeof dir, "%s", path);
    *strrchr(dir, '/') = '\0';
    mkdirs(dir);
    write_file(path, manifest, (size_t)len);
}

static void test_ollama_store(void **state)
{
    fixture *f = *state;
    char err[1024] = "";
    fake_ollama_model(f, "registry.ollama.ai/library/tiny/q8", stories);
    fake_ollama_model(f, "registry.ollama.ai/someone/Other/latest", stories);

    ns_model_ref r;
    assert_int_equal(ns_store_resolve(f->store, "TINY:Q8", &r, err, sizeof err), 0);
    assert_int_equal(r.source, NS_SRC_OLLAMA);
    assert_string_equal(r.name, "tiny:q8");
    assert_string_equal(r.template_text, "{{ .Prompt }}");
    char want_prefix[4400];
    snprintf(want_prefix, sizeof want_prefix, "%s/blobs/sha256-", f->ollama);
    assert_memory_equal(r.path, want_prefix, strlen(want_prefix));
    ns_model_ref_clear(&r);
    assert_int_equal(ns_store_resolve(f->store, "someone/other", &r, err, sizeof err), 0);
    assert_string_equal(r.name, "someone/Other:latest"); /* as spelled on disk */
    ns_model_ref_clear(&r);

    ns_model_ref *list = NULL;
    int n = 0;
    assert_int_equal(ns_store_list(f->store, &list, &n, err, sizeof err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(list[0].name, "someone/Other:latest");
    assert_string_equal(list[1].name, "tiny:q8");
    assert_int_equal(list[1].source, NS_SRC_OLLAMA);
    for (int i = 0; i < n; i++)
        ns_model_ref_clear(&list[i]);
    free(list);

    assert_int_equal(ns_store_delete(f->store, "tiny:q8", err, sizeof err), -1);
    assert_non_null(strstr(err, "ollama rm"));

    /* A copy into our store shares the blob by hard link and then shadows
     * Ollama's entry of the same name in the list. */
    assert_int_equal(ns_store_copy(f->store, "tiny:q8", "tiny:q8", err, sizeof err), 0);
    assert_int_equal(ns_store_resolve(f->store, "tiny:q8", &r, err, sizeof err), 0);
    assert_int_equal(r.source, NS_SRC_NSTACK);
    assert_string_equal(r.template_text, "{{ .Prompt }}");
    char theirs[4400];
    snprintf(theirs, sizeof theirs, "%s/blobs/sha256-%s", f->ollama, r.digest + 7);
    struct stat a, b;
    assert_int_equal(stat(r.path, &a), 0);
    assert_int_equal(stat(theirs, &b), 0);
    assert_int_equal(a.st_ino, b.st_ino);
    ns_model_ref_clear(&r);
    assert_int_equal(ns_store_list(f->store, &list, &n, err, sizeof err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(list[0].name, "tiny:q8");
    assert_int_equal(list[0].source, NS_SRC_NSTACK);
    assert_string_equal(list[1].name, "someone/Other:latest");
    for (int i = 0; i < n; i++)
        ns_model_ref_clear(&list[i]);
    free(list);

    /* Deleting ours removes our link only; Ollama's model is untouched. */
    assert_int_equal(ns_store_delete(f->store, "tiny:q8", err, sizeof err), 0);
    assert_true(exists(theirs));
    assert_int_equal(ns_store_resolve(f->store, "tiny:q8", &r, err, sizeof err), 0);
    assert_int_equal(r.source, NS_SRC_OLLAMA);
    ns_model_ref_clear(&r);
}

/* A blob that is a symbolic link to the model file resolves too. */
static void test_ollama_symlinked_blob(void **state)
{
    fixture *f = *state;
    char err[1024] = "", hex[65], blob[4400];
    fake_ollama_model(f, "registry.ollama.ai/library/linked/latest", stories);
    assert_int_equal(ns_sha256_file(stories, hex, err, sizeof err), 0);
    snprintf(blob, sizeof blob, "%s/blobs/sha256-%s", f->ollama, hex);
    assert_int_equal(unlink(blob), 0);
    assert_int_equal(symlink(stories, blob), 0);
    ns_model_ref r;
    assert_int_equal(ns_store_resolve(f->store, "linked", &r, err, sizeof err), 0);
    assert_string_equal(r.path, blob);
    ns_model_ref_clear(&r);
    assert_int_equal(ns_store_copy(f->store, "linked", "mine", err, sizeof err), 0);
    assert_int_equal(ns_store_resolve(f->store, "mine", &r, err, sizeof err), 0);
    struct stat st;
    assert_int_equal(lstat(r.path, &st), 0);
    assert_true(S_ISREG(st.st_mode)); /* the file itself, not the link */
    ns_model_ref_clear(&r);
}

/* ---- bad manifests and hostile names ---- */

static void put_manifest(const fixture *f, const char *model, const char *text)
{
    char dir[4400], path[4500];
    snprintf(dir, sizeof dir, "%s/manifests/registry.ollama.ai/library/%s", f->models, model);
    mkdirs(dir);
    snprintf(path, sizeof path, "%s/latest", dir);
    write_file(path, text, strlen(text));
}

static void test_bad_manifests(void **state)
{
    fixture *f = *state;
    char err[1024] = "";
    ns_model_ref r;
    const struct {
        const char *model, *text, *expect;
    } cases[] = {
        {"garbage", "{not json", "bad manifest"},
        {"array", "[]", "not a JSON object"},
        {"nolayers", "{\"schemaVersion\":2}", "no layers array"},
        {"nomodel", "{\"layers\":[]}", "no model layer"},
        {"evil", "{\"layers\":[{\"mediaType\":\"application/vnd.ollama.image.model\","
                 "\"digest\":\"sha256:../../../../etc/passwd\"}]}",
         "invalid digest"},
        {"upper", "{\"layers\":[{\"mediaType\":\"application/vnd.ollama.image.model\",\"digest\":\"sha256:"
                  "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}]}",
         "invalid digest"},
        {"noblob", "{\"layers\":[{\"mediaType\":\"application/vnd.ollama.image.model\",\"digest\":\"sha256:"
                   "abababababababababababababababababababababababababababababababab\"}]}",
         "is missing"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        put_manifest(f, cases[i].model, cases[i].text);
        err[0] = '\0';
        assert_int_equal(ns_store_resolve(f->store, cases[i].model, &r, err, sizeof err), -1);
        if (!strstr(err, cases[i].expect) || !strstr(err, "/manifests/registry.ollama.ai/library/"))
            fail_msg("%s: unexpected error '%s'", cases[i].model, err);
    }
    /* Listing skips them all; deleting still works. */
    ns_model_ref *list = NULL;
    int n = -1;
    assert_int_equal(ns_store_list(f->store, &list, &n, err, sizeof err), 0);
    assert_int_equal(n, 0);
    free(list);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_int_equal(ns_store_delete(f->store, cases[i].model, err, sizeof err), 0);
}

static void test_hostile_names(void **state)
{
    fixture *f = *state;
    char err[1024] = "", src[4400];
    model_copy(f, "x.gguf", src, sizeof src);
    const char *hostile[] = {"../evil", "..", "a/../../evil", "x:../../../evil", "..:latest",
                             "a/b/c/../d", "evil/..:x", "e\\..\\vil"};
    for (size_t i = 0; i < sizeof hostile / sizeof hostile[0]; i++) {
        assert_int_equal(ns_store_import(f->store, hostile[i], src, true, NULL, NULL, NULL, err, sizeof err), -1);
        assert_non_null(strstr(err, "invalid model name"));
        assert_int_equal(ns_store_copy(f->store, stories, hostile[i], err, sizeof err), -1);
        assert_int_equal(ns_store_delete(f->store, hostile[i], err, sizeof err), -1);
    }
    /* Nothing was written anywhere: the temp dir holds models/, x.gguf. */
    assert_int_equal(count_entries(f->root), 2);
    char dir[4400];
    snprintf(dir, sizeof dir, "%s/manifests", f->models);
    assert_int_equal(count_entries(dir), 0);
    snprintf(dir, sizeof dir, "%s/blobs", f->models);
    assert_int_equal(count_entries(dir), 0);
}

/* Writers racing on one blob: imports and deletes of different names of
 * the same file never lose a blob that a remaining name needs. */
typedef struct {
    fixture *f;
    int id;
    int failures;
} racer;

static void *race(void *arg)
{
    racer *r = arg;
    char name[32], keep[32], err[1024];
    snprintf(name, sizeof name, "t%d", r->id);
    snprintf(keep, sizeof keep, "keep%d", r->id);
    for (int round = 0; round < 5; round++) {
        if (ns_store_import(r->f->store, name, stories, true, NULL, NULL, NULL, err, sizeof err) != 0 ||
            ns_store_copy(r->f->store, name, keep, err, sizeof err) != 0 ||
            ns_store_delete(r->f->store, name, err, sizeof err) != 0) {
            fprintf(stderr, "racer %d: %s\n", r->id, err);
            r->failures++;
        }
        ns_model_ref ref;
        if (ns_store_resolve(r->f->store, keep, &ref, err, sizeof err) != 0) {
            fprintf(stderr, "racer %d: %s\n", r->id, err);
            r->failures++;
        }
        ns_model_ref_clear(&ref);
        if (ns_store_delete(r->f->store, keep, err, sizeof err) != 0)
            r->failures++;
    }
    return NULL;
}

static void test_concurrent_writers(void **state)
{
    fixture *f = *state;
    enum { N = 4 };
    pthread_t t[N];
    racer r[N];
    for (int i = 0; i < N; i++) {
        r[i] = (racer){.f = f, .id = i};
        assert_int_equal(pthread_create(&t[i], NULL, race, &r[i]), 0);
    }
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(r[i].failures, 0);
    }
    char dir[4400];
    snprintf(dir, sizeof dir, "%s/blobs", f->models);
    assert_int_equal(count_entries(dir), 0);
}

static void test_open_defaults(void **state)
{
    (void)state;
    char root[4096], err[512] = "";
    make_tmpdir(root, sizeof root);
    char models[4200], real_root[PATH_MAX];
    assert_non_null(realpath(root, real_root));
    snprintf(models, sizeof models, "%s/deep/er/models", real_root);
    setenv("NSTACK_MODELS", models, 1);
    setenv("OLLAMA_MODELS", root, 1);
    ns_store *s = ns_store_open(NULL, NULL, err, sizeof err);
    assert_non_null(s);
    assert_string_equal(ns_store_dir(s), models);
    char sub[4400];
    snprintf(sub, sizeof sub, "%s/blobs", models);
    assert_true(exists(sub));
    snprintf(sub, sizeof sub, "%s/manifests", models);
    assert_true(exists(sub));
    ns_store_close(s);
    unsetenv("NSTACK_MODELS");
    unsetenv("OLLAMA_MODELS");

    /* A file where the store should be is a clear error. */
    snprintf(sub, sizeof sub, "%s/file", root);
    write_file(sub, "x", 1);
    assert_null(ns_store_open(sub, NULL, err, sizeof err));
    assert_non_null(strstr(err, sub));
    rm_rf(root);
}

int main(void)
{
    const struct CMUnitTest names[] = {
        cmocka_unit_test(test_name_parse_good),
        cmocka_unit_test(test_name_parse_bad),
        cmocka_unit_test(test_open_defaults),
    };
    int rc = cmocka_run_group_tests_name("store_names", names, NULL, NULL);
    if (rc)
        return rc;
    stories = ns_test_shared_path("models/stories260K.gguf");
    if (!stories)
        return NS_TEST_SKIP;
    static char stories_abs[PATH_MAX]; /* absolute: symbolic links to it must work from anywhere */
    if (!realpath(stories, stories_abs))
        return 1;
    stories = stories_abs;
    const struct CMUnitTest store[] = {
        cmocka_unit_test_setup_teardown(test_import_resolve_list_copy_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_import_moves_and_replaces, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resolve_paths, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ollama_store, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ollama_symlinked_blob, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_manifests, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_writers, setup, teardown),
    };
    return cmocka_run_group_tests_name("store", store, NULL, NULL);
}
