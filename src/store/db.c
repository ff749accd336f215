/* The monitor's SQLite file (db.h).
 *
 * Tables (schema 1):
 *   generations, events, model_records   one row per record, own rowid
 *   resources + resource_gpus            raw samples; GPUs in a child table
 *   resource_minutes + resource_minute_gpus   1-minute averages
 *
 * GPUs live in child tables rather than as JSON text because the minute
 * folding and the bucketed query average them per GPU index in SQL (AVG ...
 * GROUP BY gpu), which JSON would turn into parsing in C or a dependence on
 * SQLite's JSON functions. Unknown GPU and CPU figures (negative in the
 * structs) are stored as NULL so that AVG skips them instead of averaging a
 * -1 in; NULL reads back as -1.
 *
 * Concurrency: one writer connection, used only by the writer thread (and by
 * ns_db_open before the thread starts), and one read connection behind a
 * mutex for the queries; WAL lets the two run at once. The queue is a ring of
 * pointers to malloc'd copies of the records: a caller holds the queue mutex
 * only to push one pointer, and the writer only to take up to BATCH_MAX of
 * them, so ns_db_add_* never wait on the disk. */
#define _GNU_SOURCE /* pthread_setname_np */
#include "store/db.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "util/log.h"
#include "util/paths.h"

#define SEC_NS INT64_C(1000000000)
#define MINUTE_NS (60 * SEC_NS)
#define DEFAULT_RAW_NS (3600 * SEC_NS)
#define DEFAULT_MINUTES_NS (24 * 3600 * SEC_NS)
#define DEFAULT_RECORDS_NS (30 * 24 * 3600 * SEC_NS)
/* Records per transaction: large enough that a burst costs a handful of
 * fsyncs, small enough that one transaction stays well under a second. */
#define BATCH_MAX 4096
#define RETENTION_EVERY_NS MINUTE_NS
#define BUSY_TIMEOUT_MS 5000
#define DEFAULT_LIMIT 100

/* ---- schema ---- */

/* Migration i brings a file from user_version i to i + 1. Append steps; never
 * edit one that has shipped. */
static const char *const MIGRATIONS[] = {
    /* 1: the initial schema */
    "CREATE TABLE generations ("
    " id INTEGER PRIMARY KEY, time_ns INTEGER NOT NULL, request_id TEXT NOT NULL, model TEXT NOT NULL,"
    " endpoint TEXT NOT NULL, prompt_tokens INTEGER NOT NULL, cached_tokens INTEGER NOT NULL,"
    " eval_tokens INTEGER NOT NULL, ttft_ms REAL, prompt_ms REAL, prompt_tps REAL, eval_ms REAL,"
    " eval_tps REAL, total_ms REAL, finish TEXT NOT NULL, session TEXT NOT NULL, error TEXT NOT NULL);"
    "CREATE INDEX generations_time ON generations(time_ns);"
    "CREATE INDEX generations_model_time ON generations(model, time_ns);"
    "CREATE TABLE resources ("
    " id INTEGER PRIMARY KEY, time_ns INTEGER NOT NULL, cpu_system_pct REAL, cpu_process_pct REAL,"
    " ram_total INTEGER NOT NULL, ram_used INTEGER NOT NULL, ram_available INTEGER NOT NULL,"
    " process_rss INTEGER NOT NULL, mapped_model INTEGER NOT NULL, n_gpus INTEGER NOT NULL);"
    "CREATE INDEX resources_time ON resources(time_ns);"
    "CREATE TABLE resource_gpus ("
    " sample_id INTEGER NOT NULL, gpu INTEGER NOT NULL, name TEXT NOT NULL, vram_total INTEGER NOT NULL,"
    " vram_used INTEGER NOT NULL, vram_ours INTEGER NOT NULL, util_pct REAL, temp_c REAL, power_w REAL,"
    " PRIMARY KEY (sample_id, gpu)) WITHOUT ROWID;"
    "CREATE TABLE resource_minutes ("
    " minute_ns INTEGER PRIMARY KEY, samples INTEGER NOT NULL, cpu_system_pct REAL, cpu_process_pct REAL,"
    " ram_total INTEGER NOT NULL, ram_used INTEGER NOT NULL, ram_available INTEGER NOT NULL,"
    " process_rss INTEGER NOT NULL, mapped_model INTEGER NOT NULL, n_gpus INTEGER NOT NULL);"
    "CREATE TABLE resource_minute_gpus ("
    " minute_ns INTEGER NOT NULL, gpu INTEGER NOT NULL, samples INTEGER NOT NULL, name TEXT NOT NULL,"
    " vram_total INTEGER NOT NULL, vram_used INTEGER NOT NULL, vram_ours INTEGER NOT NULL, util_pct REAL,"
    " temp_c REAL, power_w REAL, PRIMARY KEY (minute_ns, gpu)) WITHOUT ROWID;"
    "CREATE TABLE events ("
    " id INTEGER PRIMARY KEY, bus_id INTEGER NOT NULL, time_ns INTEGER NOT NULL, kind TEXT NOT NULL,"
    " model TEXT NOT NULL, request_id TEXT NOT NULL, detail TEXT NOT NULL);"
    "CREATE INDEX events_time ON events(time_ns);"
    "CREATE INDEX events_kind_time ON events(kind, time_ns);"
    "CREATE TABLE model_records ("
    " id INTEGER PRIMARY KEY, time_ns INTEGER NOT NULL, model TEXT NOT NULL, action TEXT NOT NULL,"
    " bytes INTEGER NOT NULL, ms REAL, detail TEXT NOT NULL);"
    "CREATE INDEX model_records_time ON model_records(time_ns);"
    "CREATE INDEX model_records_model_time ON model_records(model, time_ns);",
};
#define SCHEMA_VERSION ((int)(sizeof MIGRATIONS / sizeof MIGRATIONS[0]))

int ns_db_schema_version(void) { return SCHEMA_VERSION; }

/* ---- the handle ---- */

typedef enum { REC_GENERATION, REC_RESOURCE, REC_EVENT, REC_MODEL } rec_kind;

typedef struct {
    rec_kind kind;
    void *rec; /* malloc'd copy of the caller's struct */
} queued;

struct ns_db {
    char *path;
    ns_db_retention ret;
    sqlite3 *wconn; /* the writer thread's */
    sqlite3_stmt *ins_gen, *ins_res, *ins_gpu, *ins_event, *ins_model;
    bool write_failing; /* writer only: the last batch failed, so the next failure is not logged again */

    pthread_mutex_t read_mu; /* guards rconn */
    sqlite3 *rconn;

    pthread_mutex_t mu;     /* guards everything down to `thread` */
    pthread_cond_t wake;    /* the writer waits here (CLOCK_MONOTONIC) */
    pthread_cond_t done_cv; /* ns_db_flush and ns_db_run_retention wait here */
    queued *ring;
    int cap, head, count;
    uint64_t accepted, processed; /* records queued / taken and finished by the writer */
    uint64_t retention_asked, retention_done;
    int64_t retention_now;
    bool paused, stop;
    queued *batch; /* the writer's, BATCH_MAX */
    pthread_t thread;

    _Atomic uint64_t dropped, written;
};

/* ---- small helpers ---- */

static int64_t clock_ns(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * SEC_NS + ts.tv_nsec;
}

static int64_t floor_minute(int64_t t) {
    int64_t m = t / MINUTE_NS;
    if (t < 0 && m * MINUTE_NS != t) m--;
    return m * MINUTE_NS;
}

/* Length of a fixed-size string field to store: at most cap - 1 bytes so it
 * reads back into the same field, and when the field was not terminated the
 * cut backs off to a UTF-8 character boundary. */
static int text_len(const char *s, size_t cap) {
    size_t n = strnlen(s, cap - 1);
    if (n == cap - 1 && s[n] != '\0')
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80) n--;
    return (int)n;
}

/* Copies column i into a field of cap bytes, cut the same way. */
static void col_text(sqlite3_stmt *st, int i, char *dst, size_t cap) {
    const unsigned char *t = sqlite3_column_text(st, i);
    size_t n = t ? (size_t)sqlite3_column_bytes(st, i) : 0;
    if (n > cap - 1) {
        n = cap - 1;
        while (n > 0 && (t[n] & 0xC0) == 0x80) n--;
    }
    if (n) memcpy(dst, t, n);
    dst[n] = '\0';
}

#define BIND_TEXT(st, i, field) sqlite3_bind_text(st, i, field, text_len(field, sizeof field), SQLITE_STATIC)

/* Unknown (negative or NaN) figures are stored as NULL. */
static int bind_known(sqlite3_stmt *st, int i, double v) {
    return v >= 0 ? sqlite3_bind_double(st, i, v) : sqlite3_bind_null(st, i);
}

static double col_known(sqlite3_stmt *st, int i) {
    return sqlite3_column_type(st, i) == SQLITE_NULL ? -1 : sqlite3_column_double(st, i);
}

static int64_t col_rounded(sqlite3_stmt *st, int i) {
    return sqlite3_column_type(st, i) == SQLITE_NULL ? 0 : llround(sqlite3_column_double(st, i));
}

static int sql_fail(char *err, size_t errlen, const char *what, sqlite3 *c) {
    snprintf(err, errlen, "%s: %s", what, c ? sqlite3_errmsg(c) : "out of memory");
    return -1;
}

static int exec(sqlite3 *c, const char *sql, char *err, size_t errlen) {
    char *msg = NULL;
    if (sqlite3_exec(c, sql, NULL, NULL, &msg) == SQLITE_OK) return 0;
    snprintf(err, errlen, "%s", msg ? msg : sqlite3_errmsg(c));
    sqlite3_free(msg);
    return -1;
}

/* Runs one statement whose only parameter is a time. */
static int exec_at(sqlite3 *c, const char *sql, int64_t t, char *err, size_t errlen) {
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(c, sql, -1, &st, NULL) != SQLITE_OK) return sql_fail(err, errlen, "prepare", c);
    sqlite3_bind_int64(st, 1, t);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) return sql_fail(err, errlen, "retention", c);
    return 0;
}

/* Grows a result array by doubling; -1 when out of memory. */
static int grow(void **arr, int *cap, int n, size_t elem) {
    if (n < *cap) return 0;
    int ncap = *cap ? *cap * 2 : 16;
    void *p = realloc(*arr, (size_t)ncap * elem);
    if (!p) return -1;
    *arr = p;
    *cap = ncap;
    return 0;
}

int ns_db_default_path(char *out, size_t outlen, char *err, size_t errlen) {
    return ns_data_path("NSTACK_DB", "nstack.db", "database path", out, outlen, err, errlen);
}

/* ---- opening and migrating ---- */

static int user_version(sqlite3 *c, const char *path, int *v, char *err, size_t errlen) {
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(c, "PRAGMA user_version", -1, &st, NULL);
    if (rc == SQLITE_OK) rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) *v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    if (rc == SQLITE_ROW) return 0;
    if (rc == SQLITE_NOTADB)
        snprintf(err, errlen, "cannot open %.300s: it is not an SQLite database (not an nstack database file?)",
                 path);
    else
        snprintf(err, errlen, "cannot read %.300s: %s", path, sqlite3_errmsg(c));
    return -1;
}

static int refuse_newer(const char *path, int v, char *err, size_t errlen) {
    snprintf(err, errlen, "%.300s was written by a newer nstack (schema %d, this build knows %d)", path, v,
             SCHEMA_VERSION);
    return -1;
}

/* Brings the file to SCHEMA_VERSION in one transaction. The version is read
 * again inside it because another process may have migrated meanwhile. */
static int migrate(sqlite3 *c, const char *path, char *err, size_t errlen) {
    int v;
    if (user_version(c, path, &v, err, errlen) != 0) return -1;
    if (v > SCHEMA_VERSION) return refuse_newer(path, v, err, errlen);
    if (v == SCHEMA_VERSION) return 0;
    if (exec(c, "BEGIN IMMEDIATE", err, errlen) != 0) return -1;
    int rc = user_version(c, path, &v, err, errlen);
    if (rc == 0 && v > SCHEMA_VERSION) rc = refuse_newer(path, v, err, errlen);
    for (int i = v; rc == 0 && i < SCHEMA_VERSION; i++) {
        char why[512];
        if (exec(c, MIGRATIONS[i], why, sizeof why) != 0) {
            snprintf(err, errlen, "cannot migrate %.300s to schema %d: %s", path, i + 1, why);
            rc = -1;
        }
    }
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA user_version = %d", SCHEMA_VERSION);
    if (rc == 0) rc = exec(c, sql, err, errlen);
    if (rc == 0) rc = exec(c, "COMMIT", err, errlen);
    if (rc != 0) sqlite3_exec(c, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

static int open_conn(const char *path, int flags, sqlite3 **out, char *err, size_t errlen) {
    sqlite3 *c = NULL;
    if (sqlite3_open_v2(path, &c, flags | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "cannot open %.300s: %s", path, c ? sqlite3_errmsg(c) : "out of memory");
        sqlite3_close(c);
        return -1;
    }
    sqlite3_busy_timeout(c, BUSY_TIMEOUT_MS);
    *out = c;
    return 0;
}

/* WAL so the read connection never waits on the writer; NORMAL sync is safe
 * with WAL (a power cut may lose the last commits, never corrupt). */
static int setup_writer(ns_db *db, char *err, size_t errlen) {
    int v;
    /* Read the version before anything writes the file, so a file that is not
     * ours, or is newer, is left exactly as it was. */
    if (user_version(db->wconn, db->path, &v, err, errlen) != 0) return -1;
    if (v > SCHEMA_VERSION) return refuse_newer(db->path, v, err, errlen);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db->wconn, "PRAGMA journal_mode=WAL", -1, &st, NULL) != SQLITE_OK)
        return sql_fail(err, errlen, "journal_mode", db->wconn);
    int rc = sqlite3_step(st);
    const unsigned char *mode = rc == SQLITE_ROW ? sqlite3_column_text(st, 0) : NULL;
    if (!mode || strcmp((const char *)mode, "wal") != 0)
        ns_log_warn("db", "WAL mode is not available; readers may wait on the writer", "path=\"%s\" mode=%s",
                    db->path, mode ? (const char *)mode : "?");
    sqlite3_finalize(st);
    if (exec(db->wconn, "PRAGMA synchronous=NORMAL", err, errlen) != 0) return -1;
    if (migrate(db->wconn, db->path, err, errlen) != 0) return -1;

    static const struct {
        size_t off;
        const char *sql;
    } stmts[] = {
        {offsetof(ns_db, ins_gen),
         "INSERT INTO generations (time_ns, request_id, model, endpoint, prompt_tokens, cached_tokens, eval_tokens,"
         " ttft_ms, prompt_ms, prompt_tps, eval_ms, eval_tps, total_ms, finish, session, error)"
         " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)"},
        {offsetof(ns_db, ins_res),
         "INSERT INTO resources (time_ns, cpu_system_pct, cpu_process_pct, ram_total, ram_used, ram_available,"
         " process_rss, mapped_model, n_gpus) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"},
        {offsetof(ns_db, ins_gpu),
         "INSERT INTO resource_gpus (sample_id, gpu, name, vram_total, vram_used, vram_ours, util_pct, temp_c,"
         " power_w) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"},
        {offsetof(ns_db, ins_event),
         "INSERT INTO events (bus_id, time_ns, kind, model, request_id, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"},
        {offsetof(ns_db, ins_model),
         "INSERT INTO model_records (time_ns, model, action, bytes, ms, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"},
    };
    for (size_t i = 0; i < sizeof stmts / sizeof stmts[0]; i++) {
        sqlite3_stmt **slot = (sqlite3_stmt **)((char *)db + stmts[i].off);
        if (sqlite3_prepare_v3(db->wconn, stmts[i].sql, -1, SQLITE_PREPARE_PERSISTENT, slot, NULL) != SQLITE_OK)
            return sql_fail(err, errlen, "prepare", db->wconn);
    }
    return 0;
}

/* ---- retention ---- */

/* The minute a raw row falls in, in SQL (times are positive Unix ns). */
#define MINUTE_OF(col) "(" col " / 60000000000 * 60000000000)"

/* Folds whole minutes before the raw cutoff into resource_minutes and deletes
 * everything past its window, in one transaction. A minute that is already in
 * resource_minutes is left as it is (a late raw row for it is dropped), so no
 * minute is folded twice. */
static int run_retention(ns_db *db, int64_t now, char *err, size_t errlen) {
    static const char *const fold_gpus =
        "INSERT OR IGNORE INTO resource_minute_gpus (minute_ns, gpu, samples, name, vram_total, vram_used,"
        " vram_ours, util_pct, temp_c, power_w)"
        " SELECT " MINUTE_OF("r.time_ns") " AS m, g.gpu, COUNT(*), MAX(g.name),"
        " CAST(ROUND(AVG(g.vram_total)) AS INTEGER), CAST(ROUND(AVG(g.vram_used)) AS INTEGER),"
        " CAST(ROUND(AVG(g.vram_ours)) AS INTEGER), AVG(g.util_pct), AVG(g.temp_c), AVG(g.power_w)"
        " FROM resources r JOIN resource_gpus g ON g.sample_id = r.id"
        " WHERE r.time_ns < ?1 AND NOT EXISTS"
        " (SELECT 1 FROM resource_minutes x WHERE x.minute_ns = " MINUTE_OF("r.time_ns") ")"
        " GROUP BY m, g.gpu";
    static const char *const fold =
        "INSERT OR IGNORE INTO resource_minutes (minute_ns, samples, cpu_system_pct, cpu_process_pct, ram_total,"
        " ram_used, ram_available, process_rss, mapped_model, n_gpus)"
        " SELECT " MINUTE_OF("time_ns") " AS m, COUNT(*), AVG(cpu_system_pct), AVG(cpu_process_pct),"
        " CAST(ROUND(AVG(ram_total)) AS INTEGER), CAST(ROUND(AVG(ram_used)) AS INTEGER),"
        " CAST(ROUND(AVG(ram_available)) AS INTEGER), CAST(ROUND(AVG(process_rss)) AS INTEGER),"
        " CAST(ROUND(AVG(mapped_model)) AS INTEGER), MAX(n_gpus)"
        " FROM resources WHERE time_ns < ?1 GROUP BY m";
    const struct {
        const char *sql;
        int64_t before;
    } steps[] = {
        {fold_gpus, floor_minute(now - db->ret.retain_raw_ns)},
        {fold, floor_minute(now - db->ret.retain_raw_ns)},
        {"DELETE FROM resource_gpus WHERE sample_id IN (SELECT id FROM resources WHERE time_ns < ?1)",
         floor_minute(now - db->ret.retain_raw_ns)},
        {"DELETE FROM resources WHERE time_ns < ?1", floor_minute(now - db->ret.retain_raw_ns)},
        {"DELETE FROM resource_minute_gpus WHERE minute_ns < ?1", now - db->ret.retain_minutes_ns},
        {"DELETE FROM resource_minutes WHERE minute_ns < ?1", now - db->ret.retain_minutes_ns},
        {"DELETE FROM generations WHERE time_ns < ?1", now - db->ret.retain_records_ns},
        {"DELETE FROM events WHERE time_ns < ?1", now - db->ret.retain_records_ns},
        {"DELETE FROM model_records WHERE time_ns < ?1", now - db->ret.retain_records_ns},
    };
    if (exec(db->wconn, "BEGIN IMMEDIATE", err, errlen) != 0) return -1;
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        if (exec_at(db->wconn, steps[i].sql, steps[i].before, err, errlen) != 0) {
            sqlite3_exec(db->wconn, "ROLLBACK", NULL, NULL, NULL);
            return -1;
        }
    }
    if (exec(db->wconn, "COMMIT", err, errlen) != 0) {
        sqlite3_exec(db->wconn, "ROLLBACK", NULL, NULL, NULL);
        return -1;
    }
    return 0;
}

static void retention_logged(ns_db *db, int64_t now) {
    char err[512];
    if (run_retention(db, now, err, sizeof err) != 0)
        ns_log_warn("db", "retention failed", "path=\"%s\" error=\"%s\"", db->path, err);
}

/* ---- the writer ---- */

static int step_reset(sqlite3_stmt *st) {
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

static int write_generation(ns_db *db, const ns_db_generation *g) {
    sqlite3_stmt *st = db->ins_gen;
    sqlite3_bind_int64(st, 1, g->time_ns);
    BIND_TEXT(st, 2, g->request_id);
    BIND_TEXT(st, 3, g->model);
    BIND_TEXT(st, 4, g->endpoint);
    sqlite3_bind_int(st, 5, g->prompt_tokens);
    sqlite3_bind_int(st, 6, g->cached_tokens);
    sqlite3_bind_int(st, 7, g->eval_tokens);
    sqlite3_bind_double(st, 8, g->ttft_ms);
    sqlite3_bind_double(st, 9, g->prompt_ms);
    sqlite3_bind_double(st, 10, g->prompt_tps);
    sqlite3_bind_double(st, 11, g->eval_ms);
    sqlite3_bind_double(st, 12, g->eval_tps);
    sqlite3_bind_double(st, 13, g->total_ms);
    BIND_TEXT(st, 14, g->finish);
    BIND_TEXT(st, 15, g->session);
    BIND_TEXT(st, 16, g->error);
    return step_reset(st);
}

static int write_resource(ns_db *db, const ns_db_resource_sample *s) {
    int n_gpus = s->n_gpus < 0 ? 0 : s->n_gpus > NS_DB_MAX_GPUS ? NS_DB_MAX_GPUS : s->n_gpus;
    sqlite3_stmt *st = db->ins_res;
    sqlite3_bind_int64(st, 1, s->time_ns);
    bind_known(st, 2, s->cpu_system_pct);
    bind_known(st, 3, s->cpu_process_pct);
    sqlite3_bind_int64(st, 4, s->ram_total);
    sqlite3_bind_int64(st, 5, s->ram_used);
    sqlite3_bind_int64(st, 6, s->ram_available);
    sqlite3_bind_int64(st, 7, s->process_rss);
    sqlite3_bind_int64(st, 8, s->mapped_model);
    sqlite3_bind_int(st, 9, n_gpus);
    if (step_reset(st) != 0) return -1;
    sqlite3_int64 id = sqlite3_last_insert_rowid(db->wconn);
    for (int i = 0; i < n_gpus; i++) {
        const ns_db_gpu *g = &s->gpu[i];
        st = db->ins_gpu;
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_int(st, 2, i);
        BIND_TEXT(st, 3, g->name);
        sqlite3_bind_int64(st, 4, g->vram_total);
        sqlite3_bind_int64(st, 5, g->vram_used);
        sqlite3_bind_int64(st, 6, g->vram_ours);
        bind_known(st, 7, g->util_pct);
        bind_known(st, 8, g->temp_c);
        bind_known(st, 9, g->power_w);
        if (step_reset(st) != 0) return -1;
    }
    return 0;
}

static int write_event(ns_db *db, const ns_db_event *e) {
    sqlite3_stmt *st = db->ins_event;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)e->id); /* the bits of a u64; read back the same way */
    sqlite3_bind_int64(st, 2, e->time_ns);
    BIND_TEXT(st, 3, e->kind);
    BIND_TEXT(st, 4, e->model);
    BIND_TEXT(st, 5, e->request_id);
    BIND_TEXT(st, 6, e->detail);
    return step_reset(st);
}

static int write_model(ns_db *db, const ns_db_model_record *m) {
    sqlite3_stmt *st = db->ins_model;
    sqlite3_bind_int64(st, 1, m->time_ns);
    BIND_TEXT(st, 2, m->model);
    BIND_TEXT(st, 3, m->action);
    sqlite3_bind_int64(st, 4, m->bytes);
    sqlite3_bind_double(st, 5, m->ms);
    BIND_TEXT(st, 6, m->detail);
    return step_reset(st);
}

static int write_one(ns_db *db, const queued *q) {
    switch (q->kind) {
    case REC_GENERATION: return write_generation(db, q->rec);
    case REC_RESOURCE: return write_resource(db, q->rec);
    case REC_EVENT: return write_event(db, q->rec);
    case REC_MODEL: return write_model(db, q->rec);
    }
    return -1;
}

/* One transaction for the whole batch. Our inserts cannot break a constraint,
 * so a failure is the disk's (full, I/O error): the batch is rolled back and
 * counted as dropped rather than retried forever. */
static void write_batch(ns_db *db, queued *items, int n) {
    char err[512] = "";
    int rc = exec(db->wconn, "BEGIN IMMEDIATE", err, sizeof err);
    for (int i = 0; rc == 0 && i < n; i++)
        if (write_one(db, &items[i]) != 0) {
            snprintf(err, sizeof err, "%s", sqlite3_errmsg(db->wconn));
            rc = -1;
        }
    if (rc == 0) rc = exec(db->wconn, "COMMIT", err, sizeof err);
    if (rc != 0) {
        if (!sqlite3_get_autocommit(db->wconn)) sqlite3_exec(db->wconn, "ROLLBACK", NULL, NULL, NULL);
        if (!db->write_failing)
            ns_log_warn("db", "cannot write to the database; records are dropped",
                        "path=\"%s\" records=%d error=\"%s\"", db->path, n, err);
        atomic_fetch_add(&db->dropped, (uint64_t)n);
    } else {
        atomic_fetch_add(&db->written, (uint64_t)n);
    }
    db->write_failing = rc != 0;
    for (int i = 0; i < n; i++) free(items[i].rec);
}

static struct timespec mono_deadline(int64_t t) {
    struct timespec ts = {.tv_sec = t / SEC_NS, .tv_nsec = t % SEC_NS};
    return ts;
}

/* Drains the queue a batch at a time, and runs retention when asked or once a
 * minute. Holds mu except while it touches the disk. */
static void *writer_main(void *arg) {
    pthread_setname_np(pthread_self(), "ns-db-writer"); /* found by bench/sampler_cost.sh */
    ns_db *db = arg;
    int64_t next_retention = clock_ns(CLOCK_MONOTONIC) + RETENTION_EVERY_NS;
    pthread_mutex_lock(&db->mu);
    for (;;) {
        bool items = db->count > 0 && (!db->paused || db->stop);
        bool asked = db->retention_asked > db->retention_done;
        bool due = clock_ns(CLOCK_MONOTONIC) >= next_retention;
        if (!items && !asked && !due) {
            if (db->stop) break;
            struct timespec until = mono_deadline(next_retention);
            pthread_cond_timedwait(&db->wake, &db->mu, &until);
            continue;
        }
        int take = 0;
        if (items) {
            take = db->count < BATCH_MAX ? db->count : BATCH_MAX;
            for (int i = 0; i < take; i++) db->batch[i] = db->ring[(db->head + i) % db->cap];
            db->head = (db->head + take) % db->cap;
            db->count -= take;
        }
        uint64_t ticket = db->retention_asked;
        int64_t now = asked ? db->retention_now : 0;
        pthread_mutex_unlock(&db->mu);

        if (take) write_batch(db, db->batch, take);
        /* An asked retention waits for the batch above: ns_db_run_retention
         * flushed before asking, so this one is empty or newer. */
        if (asked || due) {
            retention_logged(db, asked ? now : clock_ns(CLOCK_REALTIME));
            if (due) next_retention = clock_ns(CLOCK_MONOTONIC) + RETENTION_EVERY_NS;
        }

        pthread_mutex_lock(&db->mu);
        db->processed += (uint64_t)take;
        if (asked) db->retention_done = ticket;
        pthread_cond_broadcast(&db->done_cv);
    }
    pthread_mutex_unlock(&db->mu);
    return NULL;
}

/* ---- open / close ---- */

static void finalize_writer(ns_db *db) {
    sqlite3_stmt *all[] = {db->ins_gen, db->ins_res, db->ins_gpu, db->ins_event, db->ins_model};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) sqlite3_finalize(all[i]);
}

/* Frees what open made, in any state of construction (no thread running). */
static void destroy(ns_db *db) {
    finalize_writer(db);
    sqlite3_close(db->rconn);
    sqlite3_close(db->wconn);
    for (int i = 0; i < db->count; i++) free(db->ring[(db->head + i) % db->cap].rec);
    free(db->ring);
    free(db->batch);
    free(db->path);
    free(db);
}

static int64_t or_default(int64_t v, int64_t def) { return v > 0 ? v : def; }

ns_db *ns_db_open(const char *path, const ns_db_retention *ret, char *err, size_t errlen) {
    ns_db_options opt = {0};
    if (ret) opt.retention = *ret;
    return ns_db_open_with(path, &opt, err, errlen);
}

ns_db *ns_db_open_with(const char *path, const ns_db_options *opt, char *err, size_t errlen) {
    if (!path || !*path) {
        snprintf(err, errlen, "no database path given");
        return NULL;
    }
    ns_db_options o = opt ? *opt : (ns_db_options){0};
    ns_db *db = calloc(1, sizeof *db);
    if (!db) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    db->ret.retain_raw_ns = or_default(o.retention.retain_raw_ns, DEFAULT_RAW_NS);
    db->ret.retain_minutes_ns = or_default(o.retention.retain_minutes_ns, DEFAULT_MINUTES_NS);
    db->ret.retain_records_ns = or_default(o.retention.retain_records_ns, DEFAULT_RECORDS_NS);
    db->cap = o.queue_capacity > 0 ? o.queue_capacity : NS_DB_QUEUE_DEFAULT;
    db->path = strdup(path);
    db->ring = calloc((size_t)db->cap, sizeof *db->ring);
    db->batch = calloc(BATCH_MAX, sizeof *db->batch);
    if (!db->path || !db->ring || !db->batch) {
        snprintf(err, errlen, "out of memory");
        destroy(db);
        return NULL;
    }
    if (ns_mkdir_parent(path, err, errlen) != 0 ||
        open_conn(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, &db->wconn, err, errlen) != 0 ||
        setup_writer(db, err, errlen) != 0) {
        destroy(db);
        return NULL;
    }
    retention_logged(db, clock_ns(CLOCK_REALTIME));
    /* Opened after the schema exists, read-only: queries cannot write. */
    if (open_conn(path, SQLITE_OPEN_READONLY, &db->rconn, err, errlen) != 0) {
        destroy(db);
        return NULL;
    }

    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&db->mu, NULL);
    pthread_mutex_init(&db->read_mu, NULL);
    pthread_cond_init(&db->wake, &ca);
    pthread_cond_init(&db->done_cv, NULL);
    pthread_condattr_destroy(&ca);
    int rc = pthread_create(&db->thread, NULL, writer_main, db);
    if (rc != 0) {
        snprintf(err, errlen, "cannot start the database writer thread: %s", strerror(rc));
        pthread_cond_destroy(&db->wake);
        pthread_cond_destroy(&db->done_cv);
        pthread_mutex_destroy(&db->mu);
        pthread_mutex_destroy(&db->read_mu);
        destroy(db);
        return NULL;
    }
    return db;
}

void ns_db_close(ns_db *db) {
    if (!db) return;
    pthread_mutex_lock(&db->mu);
    db->stop = true;
    pthread_cond_signal(&db->wake);
    pthread_mutex_unlock(&db->mu);
    pthread_join(db->thread, NULL);
    pthread_cond_destroy(&db->wake);
    pthread_cond_destroy(&db->done_cv);
    pthread_mutex_destroy(&db->mu);
    pthread_mutex_destroy(&db->read_mu);
    destroy(db);
}

/* ---- the queue ---- */

static void enqueue(ns_db *db, rec_kind kind, const void *rec, size_t size) {
    if (!db || !rec) return;
    void *copy = malloc(size);
    if (!copy) {
        atomic_fetch_add(&db->dropped, 1);
        return;
    }
    memcpy(copy, rec, size);
    pthread_mutex_lock(&db->mu);
    bool full = db->count == db->cap;
    if (!full) {
        db->ring[(db->head + db->count) % db->cap] = (queued){kind, copy};
        db->count++;
        db->accepted++;
        pthread_cond_signal(&db->wake);
    }
    pthread_mutex_unlock(&db->mu);
    if (full) {
        free(copy);
        atomic_fetch_add(&db->dropped, 1);
    }
}

void ns_db_add_generation(ns_db *db, const ns_db_generation *g) { enqueue(db, REC_GENERATION, g, sizeof *g); }
void ns_db_add_resource(ns_db *db, const ns_db_resource_sample *s) { enqueue(db, REC_RESOURCE, s, sizeof *s); }
void ns_db_add_event(ns_db *db, const ns_db_event *e) { enqueue(db, REC_EVENT, e, sizeof *e); }
void ns_db_add_model_record(ns_db *db, const ns_db_model_record *m) { enqueue(db, REC_MODEL, m, sizeof *m); }

void ns_db_flush(ns_db *db) {
    if (!db) return;
    pthread_mutex_lock(&db->mu);
    uint64_t target = db->accepted;
    pthread_cond_signal(&db->wake);
    while (db->processed < target) pthread_cond_wait(&db->done_cv, &db->mu);
    pthread_mutex_unlock(&db->mu);
}

uint64_t ns_db_dropped(const ns_db *db) { return db ? atomic_load(&db->dropped) : 0; }
uint64_t ns_db_written(const ns_db *db) { return db ? atomic_load(&db->written) : 0; }

void ns_db_run_retention(ns_db *db, int64_t now_ns) {
    if (!db) return;
    ns_db_flush(db);
    pthread_mutex_lock(&db->mu);
    uint64_t ticket = ++db->retention_asked;
    db->retention_now = now_ns;
    pthread_cond_signal(&db->wake);
    while (db->retention_done < ticket) pthread_cond_wait(&db->done_cv, &db->mu);
    pthread_mutex_unlock(&db->mu);
}

void ns_db_test_pause_writer(ns_db *db, bool paused) {
    if (!db) return;
    pthread_mutex_lock(&db->mu);
    db->paused = paused;
    pthread_cond_signal(&db->wake);
    pthread_mutex_unlock(&db->mu);
}

/* ---- queries ---- */

static int query_args(ns_db *db, void *out, int *n, char *err, size_t errlen) {
    if (!db || !out || !n) {
        snprintf(err, errlen, "database query without a database or an output");
        return -1;
    }
    return 0;
}

/* Prepares sql on the read connection; the caller holds read_mu. */
static sqlite3_stmt *prepare_read(ns_db *db, const char *sql, char *err, size_t errlen) {
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db->rconn, sql, -1, &st, NULL) != SQLITE_OK) {
        sql_fail(err, errlen, "database query", db->rconn);
        return NULL;
    }
    return st;
}

/* Ends a query loop: 0 when the statement ran to the end. */
static int finish_read(ns_db *db, sqlite3_stmt *st, int rc, char *err, size_t errlen) {
    if (rc == SQLITE_NOMEM) snprintf(err, errlen, "out of memory");
    else if (rc != SQLITE_DONE) sql_fail(err, errlen, "database query", db->rconn);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

static bool given(const char *s) { return s && *s; }

/* Fills one array element from the current row. */
typedef void (*row_fn)(sqlite3_stmt *st, void *elem);

/* The newest-first record queries: sql selects WHERE time_ns >= ?2, with
 * "AND <column> = ?1" in place of its %s when filter is given, LIMIT ?3. */
static int read_rows(ns_db *db, const char *sql_fmt, const char *filter_sql, const char *filter, int64_t since_ns,
                     int limit, size_t elem, row_fn fill, void **out, int *n, char *err, size_t errlen) {
    if (query_args(db, out, n, err, errlen) != 0) return -1;
    char sql[1024];
    snprintf(sql, sizeof sql, sql_fmt, given(filter) ? filter_sql : "");
    uint8_t *arr = NULL;
    int cnt = 0, cap = 0, rc = SQLITE_NOMEM;
    pthread_mutex_lock(&db->read_mu);
    sqlite3_stmt *st = prepare_read(db, sql, err, errlen);
    if (!st) {
        pthread_mutex_unlock(&db->read_mu);
        return -1;
    }
    if (given(filter)) sqlite3_bind_text(st, 1, filter, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, since_ns > 0 ? since_ns : INT64_MIN);
    sqlite3_bind_int(st, 3, limit > 0 ? limit : DEFAULT_LIMIT);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (grow((void **)&arr, &cap, cnt, elem) != 0) {
            rc = SQLITE_NOMEM;
            break;
        }
        void *e = arr + (size_t)cnt++ * elem;
        memset(e, 0, elem);
        fill(st, e);
    }
    int res = finish_read(db, st, rc, err, errlen);
    pthread_mutex_unlock(&db->read_mu);
    if (res != 0) {
        free(arr);
        return -1;
    }
    *out = arr;
    *n = cnt;
    return 0;
}

static void generation_row(sqlite3_stmt *st, void *elem) {
    ns_db_generation *g = elem;
    g->time_ns = sqlite3_column_int64(st, 0);
    col_text(st, 1, g->request_id, sizeof g->request_id);
    col_text(st, 2, g->model, sizeof g->model);
    col_text(st, 3, g->endpoint, sizeof g->endpoint);
    g->prompt_tokens = sqlite3_column_int(st, 4);
    g->cached_tokens = sqlite3_column_int(st, 5);
    g->eval_tokens = sqlite3_column_int(st, 6);
    g->ttft_ms = sqlite3_column_double(st, 7);
    g->prompt_ms = sqlite3_column_double(st, 8);
    g->prompt_tps = sqlite3_column_double(st, 9);
    g->eval_ms = sqlite3_column_double(st, 10);
    g->eval_tps = sqlite3_column_double(st, 11);
    g->total_ms = sqlite3_column_double(st, 12);
    col_text(st, 13, g->finish, sizeof g->finish);
    col_text(st, 14, g->session, sizeof g->session);
    col_text(st, 15, g->error, sizeof g->error);
}

int ns_db_generations(ns_db *db, const char *model, int64_t since_ns, int limit, ns_db_generation **out, int *n,
                      char *err, size_t errlen) {
    return read_rows(db,
                     "SELECT time_ns, request_id, model, endpoint, prompt_tokens, cached_tokens, eval_tokens, ttft_ms,"
                     " prompt_ms, prompt_tps, eval_ms, eval_tps, total_ms, finish, session, error FROM generations"
                     " WHERE time_ns >= ?2 %s ORDER BY time_ns DESC, id DESC LIMIT ?3",
                     "AND model = ?1", model, since_ns, limit, sizeof **out, generation_row, (void **)out, n, err,
                     errlen);
}

static void event_row(sqlite3_stmt *st, void *elem) {
    ns_db_event *e = elem;
    e->id = (uint64_t)sqlite3_column_int64(st, 0);
    e->time_ns = sqlite3_column_int64(st, 1);
    col_text(st, 2, e->kind, sizeof e->kind);
    col_text(st, 3, e->model, sizeof e->model);
    col_text(st, 4, e->request_id, sizeof e->request_id);
    col_text(st, 5, e->detail, sizeof e->detail);
}

int ns_db_events(ns_db *db, const char *kind, int64_t since_ns, int limit, ns_db_event **out, int *n, char *err,
                 size_t errlen) {
    return read_rows(db,
                     "SELECT bus_id, time_ns, kind, model, request_id, detail FROM events"
                     " WHERE time_ns >= ?2 %s ORDER BY time_ns DESC, id DESC LIMIT ?3",
                     "AND kind = ?1", kind, since_ns, limit, sizeof **out, event_row, (void **)out, n, err, errlen);
}

static void model_record_row(sqlite3_stmt *st, void *elem) {
    ns_db_model_record *m = elem;
    m->time_ns = sqlite3_column_int64(st, 0);
    col_text(st, 1, m->model, sizeof m->model);
    col_text(st, 2, m->action, sizeof m->action);
    m->bytes = sqlite3_column_int64(st, 3);
    m->ms = sqlite3_column_double(st, 4);
    col_text(st, 5, m->detail, sizeof m->detail);
}

int ns_db_model_records(ns_db *db, const char *model, int limit, ns_db_model_record **out, int *n, char *err,
                        size_t errlen) {
    return read_rows(db,
                     "SELECT time_ns, model, action, bytes, ms, detail FROM model_records"
                     " WHERE time_ns >= ?2 %s ORDER BY time_ns DESC, id DESC LIMIT ?3",
                     "AND model = ?1", model, 0, limit, sizeof **out, model_record_row, (void **)out, n, err, errlen);
}

/* ---- resource history ----
 *
 * Raw rows (weight 1) and minute rows (weight = their sample count) are read
 * as one source and grouped into output rows: with a step, by bucket; without
 * one, each source row is its own group, keyed by (time, kind, key) where kind
 * 0 is a minute row keyed by its minute and kind 1 a raw row keyed by its id.
 * A second query does the same for the GPU rows, in the same order, and a
 * merge walk hands each GPU row to its output row. A weighted average skips
 * NULLs (unknown figures) in both its sum and its weight. */

#define WAVG(c) "TOTAL(" c " * w) / SUM(CASE WHEN " c " IS NULL THEN 0 ELSE w END)"

static const char RES_MAIN[] =
    "WITH src(t, kind, key, w, cs, cp, rt, ru, ra, rss, mm, ng) AS ("
    " SELECT time_ns, 1, id, 1, cpu_system_pct, cpu_process_pct, ram_total, ram_used, ram_available,"
    " process_rss, mapped_model, n_gpus FROM resources WHERE time_ns BETWEEN ?1 AND ?2"
    " UNION ALL"
    " SELECT minute_ns, 0, minute_ns, samples, cpu_system_pct, cpu_process_pct, ram_total, ram_used,"
    " ram_available, process_rss, mapped_model, n_gpus FROM resource_minutes WHERE minute_ns BETWEEN ?1 AND ?2)"
    " SELECT %s AS bt, %s AS bk, %s AS bkey, SUM(w), " WAVG("cs") ", " WAVG("cp") ", " WAVG("rt") ", " WAVG(
        "ru") ", " WAVG("ra") ", " WAVG("rss") ", " WAVG("mm") ", MAX(ng)"
    " FROM src GROUP BY %s ORDER BY bt, bk, bkey";

static const char RES_GPUS[] =
    "WITH gsrc(t, kind, key, w, gpu, name, vt, vu, vo, ut, tc, pw) AS ("
    " SELECT r.time_ns, 1, r.id, 1, g.gpu, g.name, g.vram_total, g.vram_used, g.vram_ours, g.util_pct,"
    " g.temp_c, g.power_w FROM resources r JOIN resource_gpus g ON g.sample_id = r.id"
    " WHERE r.time_ns BETWEEN ?1 AND ?2"
    " UNION ALL"
    " SELECT minute_ns, 0, minute_ns, samples, gpu, name, vram_total, vram_used, vram_ours, util_pct, temp_c,"
    " power_w FROM resource_minute_gpus WHERE minute_ns BETWEEN ?1 AND ?2)"
    " SELECT %s AS bt, %s AS bk, %s AS bkey, gpu, MAX(name), " WAVG("vt") ", " WAVG("vu") ", " WAVG(
        "vo") ", " WAVG("ut") ", " WAVG("tc") ", " WAVG("pw")
    " FROM gsrc GROUP BY %s, gpu ORDER BY bt, bk, bkey, gpu";

typedef struct {
    int64_t t, kind, key;
} res_key;

static int key_cmp(const res_key *a, const res_key *b) {
    if (a->t != b->t) return a->t < b->t ? -1 : 1;
    if (a->kind != b->kind) return a->kind < b->kind ? -1 : 1;
    if (a->key != b->key) return a->key < b->key ? -1 : 1;
    return 0;
}

static res_key col_key(sqlite3_stmt *st) {
    return (res_key){sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1), sqlite3_column_int64(st, 2)};
}

/* Writes the statement text for a step (bucketed) or no step (raw rows). */
static void res_sql(char *out, size_t outlen, const char *tmpl, bool bucketed) {
    if (bucketed)
        snprintf(out, outlen, tmpl, "(?1 + (t - ?1) / ?3 * ?3)", "0", "0", "bt");
    else
        snprintf(out, outlen, tmpl, "t", "kind", "key", "bt, bk, bkey");
}

static void blank_sample(ns_db_resource_sample *s) {
    memset(s, 0, sizeof *s);
    for (int g = 0; g < NS_DB_MAX_GPUS; g++) s->gpu[g].util_pct = s->gpu[g].temp_c = s->gpu[g].power_w = -1;
}

/* Reads the main rows into *arr and their keys into *keys. */
static int res_read_main(sqlite3_stmt *st, ns_db_resource_sample **arr, res_key **keys, int *cnt) {
    int cap = 0, kcap = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (grow((void **)arr, &cap, *cnt, sizeof **arr) != 0 || grow((void **)keys, &kcap, *cnt, sizeof **keys) != 0)
            return SQLITE_NOMEM;
        ns_db_resource_sample *s = &(*arr)[*cnt];
        (*keys)[*cnt] = col_key(st);
        (*cnt)++;
        blank_sample(s);
        s->time_ns = sqlite3_column_int64(st, 0);
        s->samples = sqlite3_column_int(st, 3);
        s->cpu_system_pct = col_known(st, 4);
        s->cpu_process_pct = col_known(st, 5);
        s->ram_total = col_rounded(st, 6);
        s->ram_used = col_rounded(st, 7);
        s->ram_available = col_rounded(st, 8);
        s->process_rss = col_rounded(st, 9);
        s->mapped_model = col_rounded(st, 10);
        int ng = sqlite3_column_int(st, 11);
        s->n_gpus = ng < 0 ? 0 : ng > NS_DB_MAX_GPUS ? NS_DB_MAX_GPUS : ng;
    }
    return rc;
}

/* Hands each GPU row to the main row with the same key; both are in key order. */
static int res_read_gpus(sqlite3_stmt *st, ns_db_resource_sample *arr, const res_key *keys, int cnt) {
    int i = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        res_key k = col_key(st);
        while (i < cnt && key_cmp(&keys[i], &k) < 0) i++;
        int gi = sqlite3_column_int(st, 3);
        if (i == cnt || key_cmp(&keys[i], &k) != 0 || gi < 0 || gi >= NS_DB_MAX_GPUS) continue;
        ns_db_gpu *g = &arr[i].gpu[gi];
        col_text(st, 4, g->name, sizeof g->name);
        g->vram_total = col_rounded(st, 5);
        g->vram_used = col_rounded(st, 6);
        g->vram_ours = col_rounded(st, 7);
        g->util_pct = col_known(st, 8);
        g->temp_c = col_known(st, 9);
        g->power_w = col_known(st, 10);
        if (gi >= arr[i].n_gpus) arr[i].n_gpus = gi + 1;
    }
    return rc;
}

static void res_bind(sqlite3_stmt *st, int64_t since, int64_t until, int64_t step) {
    sqlite3_bind_int64(st, 1, since);
    sqlite3_bind_int64(st, 2, until);
    if (step > 0) sqlite3_bind_int64(st, 3, step);
}

int ns_db_resources(ns_db *db, int64_t since_ns, int64_t until_ns, int64_t step_ns, ns_db_resource_sample **out,
                    int *n, char *err, size_t errlen) {
    if (query_args(db, out, n, err, errlen) != 0) return -1;
    if (step_ns < 0) {
        snprintf(err, errlen, "negative step for the resource history");
        return -1;
    }
    int64_t since = since_ns > 0 ? since_ns : 0;
    int64_t until = until_ns > 0 ? until_ns : INT64_MAX;
    char main_sql[2048], gpu_sql[2048];
    res_sql(main_sql, sizeof main_sql, RES_MAIN, step_ns > 0);
    res_sql(gpu_sql, sizeof gpu_sql, RES_GPUS, step_ns > 0);

    ns_db_resource_sample *arr = NULL;
    res_key *keys = NULL;
    int cnt = 0, res = -1;
    pthread_mutex_lock(&db->read_mu);
    /* Both reads in one read transaction, so the GPU rows match the main rows
     * even while the writer commits or folds between them. */
    if (exec(db->rconn, "BEGIN", err, errlen) == 0) {
        sqlite3_stmt *st = prepare_read(db, main_sql, err, errlen);
        if (st) {
            res_bind(st, since, until, step_ns);
            res = finish_read(db, st, res_read_main(st, &arr, &keys, &cnt), err, errlen);
        }
        st = res == 0 ? prepare_read(db, gpu_sql, err, errlen) : NULL;
        if (st) {
            res_bind(st, since, until, step_ns);
            res = finish_read(db, st, res_read_gpus(st, arr, keys, cnt), err, errlen);
        } else {
            res = -1;
        }
        sqlite3_exec(db->rconn, "COMMIT", NULL, NULL, NULL);
    }
    pthread_mutex_unlock(&db->read_mu);
    free(keys);
    if (res != 0) {
        free(arr);
        return -1;
    }
    *out = arr;
    *n = cnt;
    return 0;
}
