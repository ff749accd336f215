/* Pulling GGUF files into the store: file:// URLs, and http:// from a small
 * local Python server (skipped without python3) for 404s, redirects,
 * non-GGUF bodies and cancellation. Every failure must leave no partial
 * file and no model behind. */
#define _XOPEN_SOURCE 700 /* nftw */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <dirent.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime/pull.h"
#include "testutil.h"

static char stories[PATH_MAX];

/* ---- helpers ---- */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

/* The first len bytes of the shared model (all of it when len is 0). */
static void copy_model(const char *dst, size_t len)
{
    size_t n = 0;
    char *data = ns_test_read_file(stories, &n);
    assert_non_null(data);
    write_file(dst, data, len && len < n ? len : n);
    free(data);
}

typedef struct {
    char root[4096];    /* temp dir */
    char files[4200];   /* what the URLs serve */
    char models[4200];  /* the store */
    ns_store *store;
    pid_t server;       /* python3 http server, or 0 */
    int port;
} fixture;

/* Serves f->files on a free port; redirects /redirect/X to /X and
 * /to-file to a file:// URL (which must not be followed); /stall sends the
 * first 64 KiB of the model and then nothing for a minute, so only a
 * working cancel ends that download quickly. */
static const char *server_py =
    "import http.server, os, sys, time\n"
    "os.chdir(sys.argv[1])\n"
    "class H(http.server.SimpleHTTPRequestHandler):\n"
    "    def log_message(self, *a): pass\n"
    "    def go(self, where):\n"
    "        self.send_response(302)\n"
    "        self.send_header('Location', where)\n"
    "        self.send_header('Content-Length', '0')\n"
    "        self.end_headers()\n"
    "    def stall(self):\n"
    "        data = open('model.gguf', 'rb').read()\n"
    "        self.send_response(200)\n"
    "        self.send_header('Content-Length', str(len(data)))\n"
    "        self.end_headers()\n"
    "        self.wfile.write(data[:65536])\n"
    "        self.wfile.flush()\n"
    "        time.sleep(60)\n"
    "        self.wfile.write(data[65536:])\n"
    "    def do_GET(self):\n"
    "        if self.path.startswith('/redirect/'): return self.go(self.path[len('/redirect'):])\n"
    "        if self.path == '/to-file': return self.go('file://' + os.path.abspath('model.gguf'))\n"
    "        if self.path == '/stall': return self.stall()\n"
    "        return super().do_GET()\n"
    "s = http.server.ThreadingHTTPServer(('127.0.0.1', 0), H)\n"
    "print(s.server_address[1], flush=True)\n"
    "s.serve_forever()\n";

static void start_server(fixture *f)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execlp("python3", "python3", "-c", server_py, f->files, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    /* The server prints its port once it listens: reading blocks until then
     * (or returns nothing when python3 could not start). */
    char line[32] = "";
    FILE *in = fdopen(fds[0], "r");
    if (!fgets(line, sizeof line, in) || atoi(line) <= 0) {
        fclose(in);
        waitpid(pid, NULL, 0);
        return;
    }
    fclose(in);
    f->server = pid;
    f->port = atoi(line);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    const char *base = getenv("TMPDIR");
    snprintf(f->root, sizeof f->root, "%s/ns_test_pull_XXXXXX", base && *base ? base : "/tmp");
    assert_non_null(mkdtemp(f->root));
    snprintf(f->files, sizeof f->files, "%s/files", f->root);
    snprintf(f->models, sizeof f->models, "%s/models", f->root);
    assert_int_equal(mkdir(f->files, 0755), 0);

    char path[4400];
    snprintf(path, sizeof path, "%s/model.gguf", f->files);
    copy_model(path, 0);
    snprintf(path, sizeof path, "%s/Tiny-Stories.Q8_0.gguf", f->files);
    copy_model(path, 0);
    snprintf(path, sizeof path, "%s/truncated.gguf", f->files);
    copy_model(path, 4096);
    snprintf(path, sizeof path, "%s/page.html", f->files);
    write_file(path, "<html>not a model</html>\n", 25);
    snprintf(path, sizeof path, "%s/empty.gguf", f->files);
    write_file(path, "", 0);

    char err[512] = "";
    f->store = ns_store_open(f->models, f->root, err, sizeof err);
    assert_non_null(f->store);
    *state = f;
    return 0;
}

static int setup_http(void **state)
{
    setup(state);
    fixture *f = *state;
    start_server(f);
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    if (f->server > 0) {
        kill(f->server, SIGTERM);
        waitpid(f->server, NULL, 0);
    }
    ns_store_close(f->store);
    nftw(f->root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

/* Nothing half-written is left in blobs/ and no model was added. */
static void assert_store_clean(const fixture *f)
{
    char dir[4400];
    snprintf(dir, sizeof dir, "%s/blobs", f->models);
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.' || strncmp(e->d_name, ".tmp-", 5) == 0)
            fail_msg("left in blobs/: %s", e->d_name);
    closedir(d);
    ns_model_ref *list = NULL;
    int n = -1;
    char err[256];
    assert_int_equal(ns_store_list(f->store, &list, &n, err, sizeof err), 0);
    assert_int_equal(n, 0);
    free(list);
}

/* Records the statuses in order (each distinct one once) and can cancel
 * at the first "downloading" report, by return value or by the flag. */
typedef struct {
    char statuses[512];
    int downloading_calls;
    int64_t last_total, last_completed;
    char last_digest[80];
    int cancel_by_return;
    atomic_bool *cancel_flag;
} progress_log;

static int on_progress(void *user, const char *status, const char *digest, int64_t total, int64_t completed)
{
    progress_log *p = user;
    const char *last = strrchr(p->statuses, '|');
    if (!last || strcmp(last + 1, status) != 0) {
        size_t used = strlen(p->statuses);
        snprintf(p->statuses + used, sizeof p->statuses - used, "|%s", status);
    }
    snprintf(p->last_digest, sizeof p->last_digest, "%s", digest);
    if (strcmp(status, "downloading") == 0) {
        p->downloading_calls++;
        p->last_total = total;
        p->last_completed = completed;
        if (p->cancel_flag)
            atomic_store(p->cancel_flag, true);
        if (p->cancel_by_return)
            return 1;
    }
    return 0;
}

static void url_of(const fixture *f, const char *file, char *buf, size_t len)
{
    if (f->port)
        snprintf(buf, len, "http://127.0.0.1:%d/%s", f->port, file);
    else
        snprintf(buf, len, "file://%s/%s", f->files, file);
}

/* ---- tests ---- */

static void test_name_from_url(void **state)
{
    (void)state;
    static const struct {
        const char *url, *name;
    } cases[] = {
        {"https://hf.co/x/resolve/main/Phi-3-Mini.Q4_K_M.gguf?download=true", "phi-3-mini.q4_k_m:latest"},
        {"file:///tmp/stories260K.gguf", "stories260k:latest"},
        {"http://host/path/My%20Model.GGUF#frag", "my-20model:latest"},
        {"http://host/-odd_name+v2.gguf", "odd_name-v2:latest"},
        {"http://host/", "model:latest"},
        {"weird", "weird:latest"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char name[256];
        ns_pull_name_from_url(cases[i].url, name, sizeof name);
        assert_string_equal(name, cases[i].name);
        ns_model_name n;
        char err[256];
        assert_int_equal(ns_model_name_parse(name, &n, err, sizeof err), 0);
    }
}

/* A successful pull, over file:// or http:// depending on the fixture. */
static void check_pull_ok(void **state)
{
    fixture *f = *state;
    char url[4400], err[1024] = "";
    url_of(f, "Tiny-Stories.Q8_0.gguf", url, sizeof url);
    progress_log p = {0};
    assert_int_equal(ns_pull(f->store, NULL, url, on_progress, &p, NULL, err, sizeof err), 0);
    assert_string_equal(p.statuses, "|pulling manifest|downloading|verifying sha256 digest|writing manifest|success");
    struct stat st;
    assert_int_equal(stat(stories, &st), 0);
    assert_int_equal(p.last_completed, st.st_size);
    assert_int_equal(p.last_total, st.st_size);

    ns_model_ref r;
    assert_int_equal(ns_store_resolve(f->store, "tiny-stories.q8_0", &r, err, sizeof err), 0);
    assert_int_equal(r.source, NS_SRC_NSTACK);
    assert_int_equal(r.size, st.st_size);
    assert_string_equal(p.last_digest, r.digest);
    char hex[65];
    assert_int_equal(ns_sha256_file(stories, hex, err, sizeof err), 0);
    assert_string_equal(r.digest + 7, hex);
    ns_model_ref_clear(&r);

    /* Under an explicit name, no callback; the served file is untouched. */
    url_of(f, "model.gguf", url, sizeof url);
    assert_int_equal(ns_pull(f->store, "me/pulled:v1", url, NULL, NULL, NULL, err, sizeof err), 0);
    assert_int_equal(ns_store_resolve(f->store, "me/pulled:v1", &r, err, sizeof err), 0);
    ns_model_ref_clear(&r);
    char served[4400];
    snprintf(served, sizeof served, "%s/model.gguf", f->files);
    assert_int_equal(stat(served, &st), 0);

    /* Only the two blobs (shared by both names) and their config. */
    char dir[4400];
    snprintf(dir, sizeof dir, "%s/blobs", f->models);
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.') {
            assert_memory_equal(e->d_name, "sha256-", 7);
            n++;
        }
    closedir(d);
    assert_int_equal(n, 2);
}

/* Each failure: the message, and nothing left behind. */
static void check_fails(fixture *f, const char *url, const char *name, const char *expect)
{
    char err[1024] = "";
    if (ns_pull(f->store, name, url, NULL, NULL, NULL, err, sizeof err) == 0)
        fail_msg("pull of %s succeeded", url);
    if (!strstr(err, expect))
        fail_msg("pull of %s: expected '%s' in '%s'", url, expect, err);
    assert_store_clean(f);
}

static void test_file_urls(void **state)
{
    fixture *f = *state;
    check_pull_ok(state);
    ns_store_delete(f->store, "tiny-stories.q8_0", (char[256]){0}, 256);
    ns_store_delete(f->store, "me/pulled:v1", (char[256]){0}, 256);

    char url[4400];
    url_of(f, "page.html", url, sizeof url);
    check_fails(f, url, "x", "not a GGUF file");
    url_of(f, "empty.gguf", url, sizeof url);
    check_fails(f, url, "x", "not a GGUF file");
    url_of(f, "truncated.gguf", url, sizeof url);
    check_fails(f, url, "x", "not a valid GGUF file");
    url_of(f, "missing.gguf", url, sizeof url);
    check_fails(f, url, "x", "download of file://");
    check_fails(f, "ftp://127.0.0.1/x.gguf", "x", "ftp");
    check_fails(f, "", "x", "no URL");
    url_of(f, "model.gguf", url, sizeof url);
    check_fails(f, url, "../evil", "invalid model name");
}

static void test_cancel(void **state)
{
    fixture *f = *state;
    char url[4400], err[1024] = "";
    url_of(f, "model.gguf", url, sizeof url);

    /* By the callback's return value ... */
    progress_log p = {.cancel_by_return = 1};
    assert_int_equal(ns_pull(f->store, "c", url, on_progress, &p, NULL, err, sizeof err), -1);
    assert_string_equal(err, "cancelled");
    assert_int_equal(p.downloading_calls, 1);
    assert_store_clean(f);

    /* ... by the flag, raised during the download ... */
    atomic_bool cancel = false;
    progress_log q = {.cancel_flag = &cancel};
    assert_int_equal(ns_pull(f->store, "c", url, on_progress, &q, &cancel, err, sizeof err), -1);
    assert_string_equal(err, "cancelled");
    assert_store_clean(f);

    /* ... or before it starts. */
    progress_log r = {0};
    assert_int_equal(ns_pull(f->store, "c", url, on_progress, &r, &cancel, err, sizeof err), -1);
    assert_string_equal(err, "cancelled");
    assert_int_equal(r.downloading_calls, 0);
    assert_store_clean(f);
}

static void test_http(void **state)
{
    fixture *f = *state;
    if (!f->port) {
        printf("SKIP: python3 is not available, http tests not run\n");
        skip();
    }
    check_pull_ok(state);
    ns_store_delete(f->store, "tiny-stories.q8_0", (char[256]){0}, 256);
    ns_store_delete(f->store, "me/pulled:v1", (char[256]){0}, 256);

    char url[4400], err[1024] = "";
    url_of(f, "missing.gguf", url, sizeof url);
    char expect[4500];
    snprintf(expect, sizeof expect, "HTTP 404 from %s", url);
    check_fails(f, url, "x", expect);
    url_of(f, "page.html", url, sizeof url);
    check_fails(f, url, "x", "not a GGUF file");
    url_of(f, "truncated.gguf", url, sizeof url);
    check_fails(f, url, "x", "not a valid GGUF file");
    url_of(f, "to-file", url, sizeof url); /* a redirect to file:// is refused */
    check_fails(f, url, "x", "download of");

    url_of(f, "redirect/model.gguf", url, sizeof url);
    assert_int_equal(ns_pull(f->store, "redirected", url, NULL, NULL, NULL, err, sizeof err), 0);
    ns_model_ref r;
    assert_int_equal(ns_store_resolve(f->store, "redirected", &r, err, sizeof err), 0);
    ns_model_ref_clear(&r);
    ns_store_delete(f->store, "redirected", err, sizeof err);

    test_cancel(state);

    /* Cancelled in the middle of a body that is still coming. */
    url_of(f, "stall", url, sizeof url);
    progress_log p = {.cancel_by_return = 1};
    assert_int_equal(ns_pull(f->store, "stalled", url, on_progress, &p, NULL, err, sizeof err), -1);
    assert_string_equal(err, "cancelled");
    assert_true(p.last_completed > 0 && p.last_completed <= 65536);
    assert_store_clean(f);
}

int main(void)
{
    const struct CMUnitTest names[] = {cmocka_unit_test(test_name_from_url)};
    int rc = cmocka_run_group_tests_name("pull_names", names, NULL, NULL);
    if (rc)
        return rc;
    const char *shared = ns_test_shared_path("models/stories260K.gguf");
    if (!shared)
        return NS_TEST_SKIP;
    if (!realpath(shared, stories))
        return 1;
    const struct CMUnitTest pulls[] = {
        cmocka_unit_test_setup_teardown(test_file_urls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http, setup_http, teardown),
    };
    return cmocka_run_group_tests_name("pull", pulls, NULL, NULL);
}
