/* The monitor's SQLite file (store/db.h): every record type through add ->
 * flush -> query, a restart, the schema version checks, retention with a fake
 * clock, bucketed history, and the queue under several threads and when
 * full. Each test works in its own mkdtemp folder.
 *
 * Times are taken near the real clock so that the writer's own once-a-minute
 * retention (real clock) agrees with the fake "now" the tests pass. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <dirent.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store/db.h"

#define SEC INT64_C(1000000000)
#define MIN (60 * SEC)
#define HOUR (60 * MIN)
#define DAY (24 * HOUR)

typedef struct {
    char dir[64];
    char path[256]; /* dir/nstack.db */
} fixture;

static void remove_tree(const char *path) {
    DIR *d = opendir(path);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            char p[1024];
            snprintf(p, sizeof p, "%s/%s", path, e->d_name);
            remove_tree(p);
        }
        closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/ns_db_XXXXXX");
    if (!mkdtemp(f->dir)) return -1;
    snprintf(f->path, sizeof f->path, "%s/nstack.db", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    remove_tree(f->dir);
    free(f);
    return 0;
}

static int64_t real_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * SEC + ts.tv_nsec;
}

static int64_t minute_floor(int64_t t) { return t / MIN * MIN; }

/* Fills a field to its full length (size - 1 bytes) with whole copies of
 * unit, then 'x': valid UTF-8 with quotes and non-ASCII text. */
static void fill_text(char *dst, size_t size, const char *unit) {
    size_t n = 0, u = strlen(unit);
    while (n + u <= size - 1) {
        memcpy(dst + n, unit, u);
        n += u;
    }
    while (n < size - 1) dst[n++] = 'x';
    dst[n] = '\0';
}

static ns_db *open_ok(const char *path, const ns_db_options *opt) {
    char err[512] = "";
    ns_db *db = ns_db_open_with(path, opt, err, sizeof err);
    if (!db) fprintf(stderr, "open failed: %s\n", err);
    assert_non_null(db);
    return db;
}

static ns_db_generation make_generation(int64_t t) {
    ns_db_generation g;
    memset(&g, 0, sizeof g);
    g.time_ns = t;
    fill_text(g.request_id, sizeof g.request_id, "req-\"'ü");
    fill_text(g.model, sizeof g.model, "ü\"'x");
    fill_text(g.endpoint, sizeof g.endpoint, "/v1/chat/completions");
    g.prompt_tokens = 1234;
    g.cached_tokens = 512;
    g.eval_tokens = 77;
    g.ttft_ms = 12.5;
    g.prompt_ms = 100.25;
    g.prompt_tps = 12340.125;
    g.eval_ms = 3000.75;
    g.eval_tps = 25.66;
    g.total_ms = 3101.0625;
    fill_text(g.finish, sizeof g.finish, "length");
    fill_text(g.session, sizeof g.session, "sess-日本語");
    fill_text(g.error, sizeof g.error, "it said \"no\" — ");
    return g;
}

static void assert_generation_equal(const ns_db_generation *a, const ns_db_generation *b) {
    assert_int_equal(a->time_ns, b->time_ns);
    assert_string_equal(a->request_id, b->request_id);
    assert_string_equal(a->model, b->model);
    assert_string_equal(a->endpoint, b->endpoint);
    assert_int_equal(a->prompt_tokens, b->prompt_tokens);
    assert_int_equal(a->cached_tokens, b->cached_tokens);
    assert_int_equal(a->eval_tokens, b->eval_tokens);
    assert_true(a->ttft_ms == b->ttft_ms);
    assert_true(a->prompt_ms == b->prompt_ms);
    assert_true(a->prompt_tps == b->prompt_tps);
    assert_true(a->eval_ms == b->eval_ms);
    assert_true(a->eval_tps == b->eval_tps);
    assert_true(a->total_ms == b->total_ms);
    assert_string_equal(a->finish, b->finish);
    assert_string_equal(a->session, b->session);
    assert_string_equal(a->error, b->error);
}

static ns_db_resource_sample make_sample(int64_t t, int n_gpus) {
    ns_db_resource_sample s;
    memset(&s, 0, sizeof s);
    s.time_ns = t;
    s.cpu_system_pct = 12.5;
    s.cpu_process_pct = 3.25;
    s.ram_total = INT64_C(540000000000);
    s.ram_used = INT64_C(123456789012);
    s.ram_available = INT64_C(416543210988);
    s.process_rss = INT64_C(9876543210);
    s.mapped_model = INT64_C(4000000001);
    s.n_gpus = n_gpus;
    for (int i = 0; i < n_gpus; i++) {
        ns_db_gpu *g = &s.gpu[i];
        char unit[32];
        snprintf(unit, sizeof unit, "GPU %d \"H100\" ü ", i);
        fill_text(g->name, sizeof g->name, unit);
        g->vram_total = INT64_C(85899345920);
        g->vram_used = INT64_C(1000000000) * (i + 1) + 7;
        g->vram_ours = INT64_C(500000000) * (i + 1) + 3;
        g->util_pct = 10.5 * i;
        g->temp_c = i == 3 ? -1 : 40.25 + i;
        g->power_w = i == 5 ? -1 : 300.5 + i;
    }
    return s;
}

static void assert_gpus_equal(const ns_db_resource_sample *a, const ns_db_resource_sample *b) {
    assert_int_equal(a->n_gpus, b->n_gpus);
    for (int i = 0; i < a->n_gpus; i++) {
        assert_string_equal(a->gpu[i].name, b->gpu[i].name);
        assert_int_equal(a->gpu[i].vram_total, b->gpu[i].vram_total);
        assert_int_equal(a->gpu[i].vram_used, b->gpu[i].vram_used);
        assert_int_equal(a->gpu[i].vram_ours, b->gpu[i].vram_ours);
        assert_true(a->gpu[i].util_pct == b->gpu[i].util_pct);
        assert_true(a->gpu[i].temp_c == b->gpu[i].temp_c);
        assert_true(a->gpu[i].power_w == b->gpu[i].power_w);
    }
}

static ns_db_event make_event(int64_t t, uint64_t id, const char *kind) {
    ns_db_event e;
    memset(&e, 0, sizeof e);
    e.id = id;
    e.time_ns = t;
    snprintf(e.kind, sizeof e.kind, "%s", kind);
    fill_text(e.model, sizeof e.model, "qwen2.5:7b-\"ü\"");
    fill_text(e.request_id, sizeof e.request_id, "r'é");
    fill_text(e.detail, sizeof e.detail, "{\"k\":\"v ü \\\"q\\\"\"}");
    return e;
}

static ns_db_model_record make_model_record(int64_t t, const char *model, const char *action) {
    ns_db_model_record m;
    memset(&m, 0, sizeof m);
    m.time_ns = t;
    snprintf(m.model, sizeof m.model, "%s", model);
    snprintf(m.action, sizeof m.action, "%s", action);
    m.bytes = INT64_C(4683074048);
    m.ms = 1234.5;
    fill_text(m.detail, sizeof m.detail, "{\"path\":\"/models/ü\"}");
    return m;
}

/* ---- tests ---- */

static void test_null_handle(void **state) {
    (void)state;
    ns_db_close(NULL);
    ns_db_flush(NULL);
    ns_db_generation g = make_generation(1);
    ns_db_add_generation(NULL, &g);
    assert_int_equal(ns_db_dropped(NULL), 0);
    assert_int_equal(ns_db_written(NULL), 0);
    char err[128] = "";
    ns_db_generation *out = NULL;
    int n = 0;
    assert_int_equal(ns_db_generations(NULL, NULL, 0, 0, &out, &n, err, sizeof err), -1);
    assert_true(err[0] != '\0');
    assert_null(ns_db_open("", NULL, err, sizeof err));
}

static void test_default_path(void **state) {
    (void)state;
    const char *names[] = {"NSTACK_DB", "XDG_DATA_HOME", "HOME"};
    char *saved[3];
    for (int i = 0; i < 3; i++) saved[i] = getenv(names[i]) ? strdup(getenv(names[i])) : NULL;
    char out[512], err[256];

    setenv("NSTACK_DB", "/srv/x/monitor.db", 1);
    setenv("XDG_DATA_HOME", "/xdg", 1);
    setenv("HOME", "/home/u", 1);
    assert_int_equal(ns_db_default_path(out, sizeof out, err, sizeof err), 0);
    assert_string_equal(out, "/srv/x/monitor.db");

    unsetenv("NSTACK_DB");
    assert_int_equal(ns_db_default_path(out, sizeof out, err, sizeof err), 0);
    assert_string_equal(out, "/xdg/nstack/nstack.db");

    setenv("XDG_DATA_HOME", "relative/xdg", 1); /* ignored: not absolute */
    assert_int_equal(ns_db_default_path(out, sizeof out, err, sizeof err), 0);
    assert_string_equal(out, "/home/u/.local/share/nstack/nstack.db");

    unsetenv("XDG_DATA_HOME");
    unsetenv("HOME");
    assert_int_equal(ns_db_default_path(out, sizeof out, err, sizeof err), -1);
    assert_non_null(strstr(err, "NSTACK_DB"));

    setenv("NSTACK_DB", "/a/very/long/path.db", 1);
    assert_int_equal(ns_db_default_path(out, 8, err, sizeof err), -1);

    for (int i = 0; i < 3; i++) {
        if (saved[i]) setenv(names[i], saved[i], 1);
        else unsetenv(names[i]);
        free(saved[i]);
    }
}

static void test_round_trip(void **state) {
    fixture *f = *state;
    ns_db *db = open_ok(f->path, NULL);
    char err[256];
    int64_t t = real_now();

    ns_db_generation g = make_generation(t);
    ns_db_resource_sample s = make_sample(t, NS_DB_MAX_GPUS);
    ns_db_event e = make_event(t, UINT64_MAX - 5, "load_completed");
    ns_db_model_record m = make_model_record(t, "llama3:8b \"q4\" ü", "load");
    ns_db_add_generation(db, &g);
    ns_db_add_resource(db, &s);
    ns_db_add_event(db, &e);
    ns_db_add_model_record(db, &m);
    ns_db_flush(db);
    assert_int_equal(ns_db_written(db), 4);
    assert_int_equal(ns_db_dropped(db), 0);

    ns_db_generation *gs = NULL;
    int n = 0;
    assert_int_equal(ns_db_generations(db, NULL, 0, 0, &gs, &n, err, sizeof err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(strlen(gs[0].model), sizeof g.model - 1);
    assert_generation_equal(&gs[0], &g);
    free(gs);

    ns_db_resource_sample *rs = NULL;
    assert_int_equal(ns_db_resources(db, 0, 0, 0, &rs, &n, err, sizeof err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(rs[0].time_ns, t);
    assert_int_equal(rs[0].samples, 1);
    assert_true(rs[0].cpu_system_pct == s.cpu_system_pct);
    assert_true(rs[0].cpu_process_pct == s.cpu_process_pct);
    assert_int_equal(rs[0].ram_total, s.ram_total);
    assert_int_equal(rs[0].ram_used, s.ram_used);
    assert_int_equal(rs[0].ram_available, s.ram_available);
    assert_int_equal(rs[0].process_rss, s.process_rss);
    assert_int_equal(rs[0].mapped_model, s.mapped_model);
    assert_gpus_equal(&rs[0], &s);
    assert_true(rs[0].gpu[3].temp_c == -1);
    free(rs);

    ns_db_event *es = NULL;
    assert_int_equal(ns_db_events(db, NULL, 0, 0, &es, &n, err, sizeof err), 0);
    assert_int_equal(n, 1);
    assert_true(es[0].id == e.id);
    assert_int_equal(es[0].time_ns, e.time_ns);
    assert_string_equal(es[0].kind, e.kind);
    assert_string_equal(es[0].model, e.model);
    assert_string_equal(es[0].request_id, e.request_id);
    assert_string_equal(es[0].detail, e.detail);
    assert_int_equal(strlen(es[0].detail), sizeof e.detail - 1);
    free(es);

    ns_db_model_record *ms = NULL;
    assert_int_equal(ns_db_model_records(db, NULL, 0, &ms, &n, err, sizeof err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(ms[0].time_ns, m.time_ns);
    assert_string_equal(ms[0].model, m.model);
    assert_string_equal(ms[0].action, m.action);
    assert_int_equal(ms[0].bytes, m.bytes);
    assert_true(ms[0].ms == m.ms);
    assert_string_equal(ms[0].detail, m.detail);
    free(ms);

    ns_db_close(db);
}

/* A field the caller filled without a terminating NUL keeps size - 1 bytes,
 * cut back to a whole UTF-8 character. */
static void test_unterminated_field_is_cut_on_a_character(void **state) {
    fixture *f = *state;
    ns_db *db = open_ok(f->path, NULL);
    ns_db_generation g = make_generation(real_now());
    for (size_t i = 0; i + 1 < sizeof g.finish; i += 2) memcpy(g.finish + i, "\xc3\xa9", 2); /* 8 x "é", no NUL */
    ns_db_add_generation(db, &g);
    ns_db_flush(db);
    ns_db_generation *gs = NULL;
    int n = 0;
    char err[256];
    assert_int_equal(ns_db_generations(db, NULL, 0, 0, &gs, &n, err, sizeof err), 0);
    assert_int_equal(n, 1);
    assert_string_equal(gs[0].finish, "ééééééé");
    free(gs);
    ns_db_close(db);
}

static void test_filters_and_order(void **state) {
    fixture *f = *state;
    ns_db *db = open_ok(f->path, NULL);
    char err[256];
    int64_t t = real_now() - 10 * MIN;
    for (int i = 0; i < 6; i++) {
        ns_db_generation g = make_generation(t + i * SEC);
        snprintf(g.model, sizeof g.model, "%s", i % 2 ? "m1" : "m2");
        g.eval_tokens = i;
        ns_db_add_generation(db, &g);
        ns_db_event e = make_event(t + i * SEC, (uint64_t)i, i % 3 ? "alert_fired" : "load_completed");
        ns_db_add_event(db, &e);
        ns_db_model_record m = make_model_record(t + i * SEC, i < 4 ? "a" : "b", i % 2 ? "unload" : "load");
        ns_db_add_model_record(db, &m);
    }
    ns_db_flush(db);

    ns_db_generation *gs = NULL;
    int n = 0;
    assert_int_equal(ns_db_generations(db, "m1", 0, 0, &gs, &n, err, sizeof err), 0);
    assert_int_equal(n, 3); /* 5, 3, 1: newest first */
    assert_int_equal(gs[0].eval_tokens, 5);
    assert_int_equal(gs[2].eval_tokens, 1);
    free(gs);
    assert_int_equal(ns_db_generations(db, "", t + 2 * SEC, 2, &gs, &n, err, sizeof err), 0);
    assert_int_equal(n, 2);
    assert_int_equal(gs[0].eval_tokens, 5);
    assert_int_equal(gs[1].eval_tokens, 4);
    free(gs);
    assert_int_equal(ns_db_generations(db, "none", 0, 0, &gs, &n, err, sizeof err), 0);
    assert_int_equal(n, 0);
    free(gs);

    ns_db_event *es = NULL;
    assert_int_equal(ns_db_events(db, "load_completed", 0, 0, &es, &n, err, sizeof err), 0);
    assert_int_equal(n, 2);
    assert_int_equal(es[0].id, 3);
    assert_int_equal(es[1].id, 0);
    free(es);
    assert_int_equal(ns_db_events(db, NULL, t + 4 * SEC, 0, &es, &n, err, sizeof err), 0);
    assert_int_equal(n, 2);
    free(es);

    ns_db_model_record *ms = NULL;
    assert_int_equal(ns_db_model_records(db, "a", 3, &ms, &n, err, sizeof err), 0);
    assert_int_equal(n, 3);
    assert_int_equal(ms[0].time_ns, t + 3 * SEC);
    assert_string_equal(ms[0].action, "unload");
    free(ms);
    ns_db_close(db);
}

static void test_restart_keeps_rows(void **state) {
    fixture *f = *state;
    char err[256];
    int64_t t = real_now();
    ns_db *db = open_ok(f->path, NULL);
    ns_db_generation g = make_generation(t);
    ns_db_resource_sample s = make_sample(t, 2);
    ns_db_event e = make_event(t, 1, "load_completed");
    ns_db_model_record m = make_model_record(t, "x", "load");
    ns_db_add_generation(db, &g);
    ns_db_add_resource(db, &s);
    ns_db_add_event(db, &e);
    ns_db_add_model_record(db, &m);
    ns_db_close(db); /* no flush: close writes what is queued */

    db = open_ok(f->path, NULL);
    assert_int_equal(ns_db_written(db), 0);
    ns_db_generation *gs = NULL;
    int n = 0;
    assert_int_equal(ns_db_generations(db, NULL, 0, 0, &gs, &n, err, sizeof err), 0);
    assert_int_equal(n, 1);
    assert_generation_equal(&gs[0], &g);
    free(gs);
    ns_db_resource_sample *rs = NULL;
    assert_int_equal(ns_db_resources(db, 0, 0, 0, &rs, &n, err, sizeof err), 0);
    assert_int_equal(n, 1);
    assert_gpus_equal(&rs[0], &s);
    free(rs);
    ns_db_model_record *ms = NULL;
    assert_int_equal(ns_db_model_records(db, "x", 0, &ms, &n, err, sizeof err), 0);
    assert_int_equal(n, 1);
    free(ms);

    /* The event bus starts again at 1 after a restart: both rows stay. */
    e.time_ns = t + SEC;
    ns_db_add_event(db, &e);
    ns_db_close(db);
    db = open_ok(f->path, NULL);
    ns_db_event *es = NULL;
    assert_int_equal(ns_db_events(db, NULL, 0, 0, &es, &n, err, sizeof err), 0);
    assert_int_equal(n, 2);
    assert_int_equal(es[0].id, 1);
    assert_int_equal(es[1].id, 1);
    assert_int_equal(es[0].time_ns, t + SEC);
    free(es);
    ns_db_close(db);
}

static void test_creates_parent_directories(void **state) {
    fixture *f = *state;
    char path[512];
    snprintf(path, sizeof path, "%s/a/b/c/nstack.db", f->dir);
    ns_db *db = open_ok(path, NULL);
    ns_db_close(db);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISREG(st.st_mode));

    char err[512] = "";
    snprintf(path, sizeof path, "%s/a/b", f->dir); /* a directory, not a file */
    assert_null(ns_db_open(path, NULL, err, sizeof err));
    assert_non_null(strstr(err, path));
}

static int file_user_version(const char *path) {
    sqlite3 *c = NULL;
    assert_int_equal(sqlite3_open_v2(path, &c, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(c, "PRAGMA user_version", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(c);
    return v;
}

static void test_schema_fresh_file(void **state) {
    fixture *f = *state;
    assert_true(ns_db_schema_version() >= 1);
    ns_db *db = open_ok(f->path, NULL);
    ns_db_close(db);
    assert_int_equal(file_user_version(f->path), ns_db_schema_version());
    db = open_ok(f->path, NULL); /* already current: nothing to migrate */
    ns_db_close(db);
    assert_int_equal(file_user_version(f->path), ns_db_schema_version());
}

static void test_schema_newer_refused(void **state) {
    fixture *f = *state;
    sqlite3 *c = NULL;
    assert_int_equal(sqlite3_open(f->path, &c), SQLITE_OK);
    int newer = ns_db_schema_version() + 6;
    char sql[128];
    snprintf(sql, sizeof sql, "CREATE TABLE future (a); PRAGMA user_version = %d;", newer);
    assert_int_equal(sqlite3_exec(c, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(c);

    char err[512] = "", want[128];
    assert_null(ns_db_open(f->path, NULL, err, sizeof err));
    snprintf(want, sizeof want, "was written by a newer nstack (schema %d, this build knows %d)", newer,
             ns_db_schema_version());
    assert_non_null(strstr(err, want));
    assert_non_null(strstr(err, f->path));
    assert_int_equal(file_user_version(f->path), newer); /* left as it was */
}

static void test_not_sqlite_refused(void **state) {
    fixture *f = *state;
    uint8_t junk[4096];
    uint64_t x = 0x243f6a8885a308d3ull;
    for (size_t i = 0; i < sizeof junk; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        junk[i] = (uint8_t)x;
    }
    FILE *fp = fopen(f->path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(junk, 1, sizeof junk, fp), sizeof junk);
    fclose(fp);

    char err[512] = "";
    assert_null(ns_db_open(f->path, NULL, err, sizeof err));
    assert_non_null(strstr(err, "not an SQLite database"));
    assert_non_null(strstr(err, f->path));

    uint8_t back[sizeof junk + 1];
    fp = fopen(f->path, "rb");
    assert_non_null(fp);
    assert_int_equal(fread(back, 1, sizeof back, fp), sizeof junk);
    fclose(fp);
    assert_memory_equal(back, junk, sizeof junk);
}

static ns_db_resource_sample simple_sample(int64_t t, double cpu, double util0) {
    ns_db_resource_sample s;
    memset(&s, 0, sizeof s);
    s.time_ns = t;
    s.cpu_system_pct = cpu;
    s.cpu_process_pct = cpu / 10;
    s.ram_total = 1000;
    s.ram_used = (int64_t)(cpu * 10);
    s.n_gpus = 1;
    snprintf(s.gpu[0].name, sizeof s.gpu[0].name, "H100");
    s.gpu[0].vram_used = (int64_t)(cpu * 100);
    s.gpu[0].util_pct = util0;
    s.gpu[0].temp_c = cpu + 30;
    s.gpu[0].power_w = -1;
    return s;
}

static void test_retention(void **state) {
    fixture *f = *state;
    char err[256];
    ns_db *db = open_ok(f->path, NULL); /* default windows: 1 h raw, 24 h minutes, 30 days records */
    int64_t now = minute_floor(real_now());
    int64_t a = now - 3 * HOUR, b = a + MIN;

    ns_db_resource_sample s;
    s = simple_sample(a, 10, 50);
    ns_db_add_resource(db, &s);
    s = simple_sample(a + 10 * SEC, 20, -1); /* unknown: skipped by the average */
    ns_db_add_resource(db, &s);
    s = simple_sample(a + 20 * SEC, 30, 70);
    ns_db_add_resource(db, &s);
    s = simple_sample(b, 40, 10);
    s.n_gpus = 2;
    s.gpu[1].util_pct = 80;
    s.gpu[1].temp_c = s.gpu[1].power_w = -1;
    ns_db_add_resource(db, &s);
    s = simple_sample(b + 30 * SEC, 50, 20);
    s.n_gpus = 2;
    s.gpu[1].util_pct = 90;
    s.gpu[1].temp_c = s.gpu[1].power_w = -1;
    ns_db_add_resource(db, &s);
    s = simple_sample(now - 25 * HOUR, 99, 99); /* past the minute window too */
    ns_db_add_resource(db, &s);
    s = simple_sample(now - 10 * MIN, 5, 1);
    ns_db_add_resource(db, &s);
    s = simple_sample(now - 5 * MIN, 6, 2);
    ns_db_add_resource(db, &s);

    ns_db_generation g = make_generation(now - 31 * DAY);
    ns_db_add_generation(db, &g);
    g = make_generation(now - DAY);
    ns_db_add_generation(db, &g);
    ns_db_event e = make_event(now - 31 * DAY, 1, "old");
    ns_db_add_event(db, &e);
    e = make_event(now - DAY, 2, "new");
    ns_db_add_event(db, &e);
    ns_db_model_record m = make_model_record(now - 31 * DAY, "old", "load");
    ns_db_add_model_record(db, &m);
    m = make_model_record(now - DAY, "new", "load");
    ns_db_add_model_record(db, &m);

    for (int round = 0; round < 2; round++) {
        ns_db_run_retention(db, now);
        ns_db_resource_sample *rs = NULL;
        int n = 0;
        assert_int_equal(ns_db_resources(db, 0, 0, 0, &rs, &n, err, sizeof err), 0);
        assert_int_equal(n, 4); /* minute a, minute b, two raw rows; oldest first */
        assert_int_equal(rs[0].time_ns, a);
        assert_int_equal(rs[0].samples, 3);
        assert_true(rs[0].cpu_system_pct == 20);
        assert_true(rs[0].cpu_process_pct == 2);
        assert_int_equal(rs[0].ram_used, 200);
        assert_int_equal(rs[0].ram_total, 1000);
        assert_int_equal(rs[0].n_gpus, 1);
        assert_string_equal(rs[0].gpu[0].name, "H100");
        assert_true(rs[0].gpu[0].util_pct == 60);
        assert_true(rs[0].gpu[0].temp_c == 50);
        assert_true(rs[0].gpu[0].power_w == -1);
        assert_int_equal(rs[0].gpu[0].vram_used, 2000);
        assert_int_equal(rs[1].time_ns, b);
        assert_int_equal(rs[1].samples, 2);
        assert_true(rs[1].cpu_system_pct == 45);
        assert_int_equal(rs[1].n_gpus, 2);
        assert_true(rs[1].gpu[0].util_pct == 15);
        assert_true(rs[1].gpu[1].util_pct == 85);
        assert_true(rs[1].gpu[1].temp_c == -1);
        assert_int_equal(rs[2].time_ns, now - 10 * MIN);
        assert_int_equal(rs[2].samples, 1);
        assert_true(rs[2].cpu_system_pct == 5);
        assert_int_equal(rs[3].time_ns, now - 5 * MIN);
        free(rs);

        /* A late raw row for a minute already folded: the next round must
         * neither fold the minute again nor keep the row. */
        if (round == 0) {
            s = simple_sample(a + 30 * SEC, 1000, 1000);
            ns_db_add_resource(db, &s);
        }
    }

    /* A window over both kinds of rows. */
    ns_db_resource_sample *rs = NULL;
    int n = 0;
    assert_int_equal(ns_db_resources(db, b, now, 0, &rs, &n, err, sizeof err), 0);
    assert_int_equal(n, 3);
    assert_int_equal(rs[0].time_ns, b);
    assert_int_equal(rs[1].time_ns, now - 10 * MIN);
    free(rs);

    /* A bucket over both minutes averages by sample count. */
    assert_int_equal(ns_db_resources(db, a, b + MIN - 1, 2 * MIN, &rs, &n, err, sizeof err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(rs[0].time_ns, a);
    assert_int_equal(rs[0].samples, 5);
    assert_true(rs[0].cpu_system_pct == (20.0 * 3 + 45.0 * 2) / 5);
    assert_int_equal(rs[0].n_gpus, 2);
    assert_true(rs[0].gpu[0].util_pct == (60.0 * 3 + 15.0 * 2) / 5);
    assert_true(rs[0].gpu[1].util_pct == 85);
    free(rs);

    ns_db_generation *gs = NULL;
    assert_int_equal(ns_db_generations(db, NULL, 0, 0, &gs, &n, err, sizeof err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(gs[0].time_ns, now - DAY);
    free(gs);
    ns_db_event *es = NULL;
    assert_int_equal(ns_db_events(db, NULL, 0, 0, &es, &n, err, sizeof err), 0);
    assert_int_equal(n, 1);
    assert_string_equal(es[0].kind, "new");
    free(es);
    ns_db_model_record *ms = NULL;
    assert_int_equal(ns_db_model_records(db, NULL, 0, &ms, &n, err, sizeof err), 0);
    assert_int_equal(n, 1);
    assert_string_equal(ms[0].model, "new");
    free(ms);
    ns_db_close(db);
}

static void test_buckets(void **state) {
    fixture *f = *state;
    char err[256];
    ns_db *db = open_ok(f->path, NULL);
    int64_t base = minute_floor(real_now()) - 30 * MIN;
    for (int i = 0; i < 10; i++) {
        ns_db_resource_sample s = simple_sample(base + i * SEC, i, 10.0 * i);
        s.gpu[0].temp_c = -1;
        ns_db_add_resource(db, &s);
    }
    ns_db_flush(db);

    ns_db_resource_sample *rs = NULL;
    int n = 0;
    assert_int_equal(ns_db_resources(db, base, base + 9 * SEC, 5 * SEC, &rs, &n, err, sizeof err), 0);
    assert_int_equal(n, 2);
    assert_int_equal(rs[0].time_ns, base);
    assert_int_equal(rs[1].time_ns, base + 5 * SEC);
    assert_int_equal(rs[0].samples, 5);
    assert_true(rs[0].cpu_system_pct == 2);
    assert_true(rs[1].cpu_system_pct == 7);
    assert_int_equal(rs[0].ram_used, 20);
    assert_int_equal(rs[1].ram_used, 70);
    assert_int_equal(rs[1].n_gpus, 1);
    assert_true(rs[0].gpu[0].util_pct == 20);
    assert_true(rs[1].gpu[0].util_pct == 70);
    assert_true(rs[1].gpu[0].temp_c == -1);
    assert_int_equal(rs[1].gpu[0].vram_used, 700);
    free(rs);

    /* Buckets start at since_ns; rows outside the window are left out. */
    assert_int_equal(ns_db_resources(db, base + 2 * SEC, base + 7 * SEC, 3 * SEC, &rs, &n, err, sizeof err), 0);
    assert_int_equal(n, 2);
    assert_int_equal(rs[0].time_ns, base + 2 * SEC);
    assert_true(rs[0].cpu_system_pct == 3); /* 2, 3, 4 */
    assert_true(rs[1].cpu_system_pct == 6); /* 5, 6, 7 */
    free(rs);

    assert_int_equal(ns_db_resources(db, base, 0, -1, &rs, &n, err, sizeof err), -1);
    ns_db_close(db);
}

typedef struct {
    ns_db *db;
    int thread;
    int count;
} adder_arg;

static void *adder(void *p) {
    adder_arg *a = p;
    int64_t t = real_now();
    ns_db_event e = make_event(t, 0, "");
    snprintf(e.kind, sizeof e.kind, "t%d", a->thread);
    for (int i = 0; i < a->count; i++) {
        e.id = (uint64_t)i;
        e.time_ns = t + i;
        ns_db_add_event(a->db, &e);
    }
    return NULL;
}

static void test_threads_lose_nothing(void **state) {
    fixture *f = *state;
    char err[256];
    ns_db *db = open_ok(f->path, NULL);
    enum { THREADS = 4, EACH = 5000 };
    pthread_t th[THREADS];
    adder_arg args[THREADS];
    for (int i = 0; i < THREADS; i++) {
        args[i] = (adder_arg){db, i, EACH};
        assert_int_equal(pthread_create(&th[i], NULL, adder, &args[i]), 0);
    }
    /* A reader beside the writers. */
    ns_db_event *es = NULL;
    int n = 0;
    assert_int_equal(ns_db_events(db, NULL, 0, 10, &es, &n, err, sizeof err), 0);
    free(es);
    for (int i = 0; i < THREADS; i++) pthread_join(th[i], NULL);
    ns_db_flush(db);
    assert_int_equal(ns_db_dropped(db), 0);
    assert_int_equal(ns_db_written(db), THREADS * EACH);
    for (int i = 0; i < THREADS; i++) {
        char kind[16];
        snprintf(kind, sizeof kind, "t%d", i);
        assert_int_equal(ns_db_events(db, kind, 0, 2 * EACH, &es, &n, err, sizeof err), 0);
        assert_int_equal(n, EACH);
        for (int j = 0; j < EACH; j++) assert_int_equal(es[j].id, EACH - 1 - j);
        free(es);
    }
    ns_db_close(db);
}

static void test_full_queue_drops(void **state) {
    fixture *f = *state;
    char err[256];
    ns_db_options opt = {.queue_capacity = 100};
    ns_db *db = open_ok(f->path, &opt);
    ns_db_test_pause_writer(db, true);
    ns_db_model_record m = make_model_record(real_now(), "burst", "load");
    for (int i = 0; i < 150; i++) ns_db_add_model_record(db, &m); /* returns although nothing drains */
    assert_int_equal(ns_db_dropped(db), 50);
    assert_int_equal(ns_db_written(db), 0);
    ns_db_test_pause_writer(db, false);
    ns_db_flush(db);
    assert_int_equal(ns_db_written(db), 100);
    ns_db_model_record *ms = NULL;
    int n = 0;
    assert_int_equal(ns_db_model_records(db, "burst", 1000, &ms, &n, err, sizeof err), 0);
    assert_int_equal(n, 100);
    free(ms);

    /* Paused again with records queued: close still writes them. */
    ns_db_test_pause_writer(db, true);
    for (int i = 0; i < 10; i++) ns_db_add_model_record(db, &m);
    ns_db_close(db);
    db = open_ok(f->path, NULL);
    assert_int_equal(ns_db_model_records(db, "burst", 1000, &ms, &n, err, sizeof err), 0);
    assert_int_equal(n, 110);
    free(ms);
    ns_db_close(db);
}

int main(void) {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_null_handle),
        cmocka_unit_test(test_default_path),
        T(test_round_trip),
        T(test_unterminated_field_is_cut_on_a_character),
        T(test_filters_and_order),
        T(test_restart_keeps_rows),
        T(test_creates_parent_directories),
        T(test_schema_fresh_file),
        T(test_schema_newer_refused),
        T(test_not_sqlite_refused),
        T(test_retention),
        T(test_buckets),
        T(test_threads_lose_nothing),
        T(test_full_queue_drops),
    };
    return cmocka_run_group_tests_name("db", tests, NULL, NULL);
}
