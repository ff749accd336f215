/* The SQLite file of the resource monitor and the profiler: generation
 * metrics, resource history (raw samples, then per-minute averages), events
 * and model load records.
 *
 * One file in WAL mode. Writes never block the caller: ns_db_add_* copy the
 * record into a bounded in-memory queue that one writer thread drains, a few
 * thousand records per transaction; when the queue is full the record is
 * dropped and counted (ns_db_dropped). Queries run on their own read
 * connection, beside the writer.
 *
 * The schema is versioned with PRAGMA user_version and migrated at open; a
 * file written by a newer schema than this build knows is refused.
 *
 * Retention (about once a minute on the writer thread, and at open): raw
 * resource samples older than retain_raw are folded into 1-minute averages
 * (whole minutes only, so the raw window is up to a minute longer than asked;
 * a minute is folded once) and deleted; minute rows older than retain_minutes
 * and generations, events and model records older than retain_records are
 * deleted.
 *
 * Thread-safety: every function may be called from any thread, except that
 * ns_db_close must not race with the others on the same handle. */
#ifndef NS_STORE_DB_H
#define NS_STORE_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NS_DB_MAX_GPUS 8
/* Records the queue holds before ns_db_add_* start dropping. */
#define NS_DB_QUEUE_DEFAULT 65536

typedef struct ns_db ns_db;

typedef struct {
    int64_t retain_raw_ns;     /* resource samples at full rate: default 1 hour */
    int64_t retain_minutes_ns; /* 1-minute averages: default 24 hours */
    int64_t retain_records_ns; /* generations, events, model records: default 30 days */
} ns_db_retention;             /* zero fields take the defaults */

/* Everything ns_db_open_with accepts; a zeroed struct means the defaults. */
typedef struct {
    ns_db_retention retention;
    int queue_capacity; /* <= 0: NS_DB_QUEUE_DEFAULT */
} ns_db_options;

/* Opens or creates the file (and its parent directories), applies
 * migrations, starts the writer thread. NULL with err. */
ns_db *ns_db_open(const char *path, const ns_db_retention *ret /* NULL: defaults */, char *err, size_t errlen);
/* The same with every option (opt NULL: defaults). */
ns_db *ns_db_open_with(const char *path, const ns_db_options *opt, char *err, size_t errlen);
void ns_db_close(ns_db *db); /* writes everything queued, stops the thread, closes; NULL ok */
/* $NSTACK_DB, else $XDG_DATA_HOME/nstack/nstack.db (absolute XDG only), else ~/.local/share/nstack/nstack.db */
int ns_db_default_path(char *out, size_t outlen, char *err, size_t errlen);
int ns_db_schema_version(void); /* this build's */

typedef struct {
    int64_t time_ns; /* wall clock Unix ns when it ended */
    char request_id[48];
    char model[256];
    char endpoint[32]; /* "/api/generate", "/v1/chat/completions", ... may be "" */
    int32_t prompt_tokens, cached_tokens, eval_tokens;
    double ttft_ms, prompt_ms, prompt_tps, eval_ms, eval_tps, total_ms;
    char finish[16]; /* "stop", "length", "error", "cancelled", ... */
    char session[65];
    char error[256];
} ns_db_generation;

typedef struct {
    char name[96];
    int64_t vram_total, vram_used, vram_ours; /* bytes */
    double util_pct, temp_c, power_w;         /* -1 when unknown */
} ns_db_gpu;

typedef struct {
    int64_t time_ns;
    double cpu_system_pct, cpu_process_pct; /* both 0..100 of the whole machine; negative = unknown */
    int64_t ram_total, ram_used, ram_available, process_rss, mapped_model; /* bytes */
    int n_gpus;
    ns_db_gpu gpu[NS_DB_MAX_GPUS];
    /* Filled by ns_db_resources, ignored by ns_db_add_resource: how many raw
     * samples the row stands for (1 for a raw row; the sample count of a
     * minute average; the sum over a bucket). */
    int32_t samples;
} ns_db_resource_sample;

typedef struct {
    uint64_t id; /* the event bus id (may repeat across restarts: the file keys rows by its own rowid) */
    int64_t time_ns;
    char kind[32]; /* "load_completed", "alert_fired", ... */
    char model[256];
    char request_id[48];
    char detail[512]; /* JSON object text */
} ns_db_event;

typedef struct {
    int64_t time_ns;
    char model[256];
    char action[16]; /* "load", "unload", "load_failed" */
    int64_t bytes;   /* estimated memory */
    double ms;       /* load time, 0 for unload */
    char detail[512]; /* JSON text or "" */
} ns_db_model_record;

/* Queue for the writer; never block, never fail loudly (dropped when full).
 * Strings are copied up to their field's size less one byte. db NULL: no-op. */
void ns_db_add_generation(ns_db *db, const ns_db_generation *g);
void ns_db_add_resource(ns_db *db, const ns_db_resource_sample *s);
void ns_db_add_event(ns_db *db, const ns_db_event *e);
void ns_db_add_model_record(ns_db *db, const ns_db_model_record *m);
/* Returns once everything queued before the call is committed (tests,
 * shutdown). Waits for ns_db_test_pause_writer(db, false) when paused. */
void ns_db_flush(ns_db *db);
/* Records that never reached the file: queue full, out of memory, or a
 * failed write (logged). */
uint64_t ns_db_dropped(const ns_db *db);
uint64_t ns_db_written(const ns_db *db); /* records committed since open (a sample with its GPUs is one) */

/* Queries: malloc'd arrays the caller frees (an empty result may be NULL with
 * *n = 0); 0 or -1 with err. */
/* newest first; model NULL or "" = all; since_ns 0 = all; limit <= 0 = 100 */
int ns_db_generations(ns_db *db, const char *model, int64_t since_ns, int limit, ns_db_generation **out, int *n,
                      char *err, size_t errlen);
/* Resource history in [since_ns, until_ns] (until_ns <= 0: no upper bound),
 * oldest first, averaged into buckets of step_ns (0 = raw rows) that start at
 * since_ns. Reads raw rows where they still exist and the 1-minute averages
 * (time_ns = the minute's start) for older times. Averages are weighted by
 * samples and skip unknown values (a field unknown in the whole bucket reads
 * -1). GPU fields are per GPU index; n_gpus is the most any row had. */
int ns_db_resources(ns_db *db, int64_t since_ns, int64_t until_ns, int64_t step_ns, ns_db_resource_sample **out,
                    int *n, char *err, size_t errlen);
/* newest first, since_ns 0 = all, limit <= 0 = 100; kind NULL/"" = all */
int ns_db_events(ns_db *db, const char *kind, int64_t since_ns, int limit, ns_db_event **out, int *n, char *err,
                 size_t errlen);
/* newest first, model NULL/"" = all, limit <= 0 = 100 */
int ns_db_model_records(ns_db *db, const char *model, int limit, ns_db_model_record **out, int *n, char *err,
                        size_t errlen);

/* ---- test hooks ---- */

/* Commits what is queued (so, like ns_db_flush, waits for a paused writer),
 * then runs retention on the writer thread as if the wall clock read now_ns,
 * and returns when it is done. */
void ns_db_run_retention(ns_db *db, int64_t now_ns);
/* While paused the writer takes nothing from the queue (ns_db_close still
 * writes everything), so a test can fill the queue. */
void ns_db_test_pause_writer(ns_db *db, bool paused);

#endif
