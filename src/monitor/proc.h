/* Readers of Linux /proc for the resource monitor. Every reader takes the
 * root directory ("/proc" in production) so tests can point it at fixture
 * files. Two ways in:
 *
 *   - ns_proc_cpu_times() and friends open, read and close a file: for
 *     one-shot reads;
 *   - ns_proc_reader keeps the four files open and preads them from offset 0
 *     into one reusable buffer: for the sampler, which reads them ten times a
 *     second and must not pay for open/close or allocate per sample.
 *
 * The parsers work on text (not NUL-terminated: text + length) and are
 * exposed for tests. All return 0 on success, -1 on error. */
#ifndef NS_MONITOR_PROC_H
#define NS_MONITOR_PROC_H

#include <stddef.h>
#include <stdint.h>

/* The aggregate "cpu" line of <root>/stat, in USER_HZ ticks summed over all
 * CPUs, and the number of cpuN lines. */
typedef struct {
    int64_t user, nice, system, idle, iowait, irq, softirq, steal;
    int n_cpus;
} ns_cpu_times;

int ns_proc_cpu_times(const char *root, ns_cpu_times *out);
/* utime + stime of this process (all threads), in USER_HZ ticks. */
int ns_proc_self_cpu(const char *root, int64_t *ticks);
/* MemTotal and MemAvailable in bytes (MemFree + Buffers + Cached on kernels
 * without MemAvailable). */
int ns_proc_meminfo(const char *root, int64_t *total, int64_t *available);
/* Resident set size of this process in bytes (self/statm x page size). */
int ns_proc_self_rss(const char *root, int64_t *rss);

/* System busy % and process % between two readings, both 0..100 of the
 * whole machine. Elapsed time is the /proc/stat total delta (already summed
 * over all CPUs, so it equals elapsed ticks x n_cpus), which keeps both
 * numbers in the kernel's own tick units. A zero or negative elapsed time
 * gives 0; results are clamped to 0..100 because the two files are read at
 * slightly different instants. */
void ns_cpu_percent(const ns_cpu_times *prev, const ns_cpu_times *cur, int64_t proc_prev, int64_t proc_cur,
                    double *system_pct, double *process_pct);

/* Parsers. */
int ns_proc_parse_stat(const char *text, size_t len, ns_cpu_times *out);
int ns_proc_parse_self_stat(const char *text, size_t len, int64_t *ticks);
int ns_proc_parse_meminfo(const char *text, size_t len, int64_t *total, int64_t *available);
int ns_proc_parse_statm(const char *text, size_t len, int64_t page_size, int64_t *rss);

/* Kept-open files. */
typedef struct {
    int fd_stat, fd_self_stat, fd_meminfo, fd_statm;
    char *buf;
    size_t cap;
    int64_t page_size;
} ns_proc_reader;

int ns_proc_reader_open(ns_proc_reader *r, const char *root, char *err, size_t errlen);
void ns_proc_reader_close(ns_proc_reader *r);
int ns_proc_reader_cpu(ns_proc_reader *r, ns_cpu_times *out);
int ns_proc_reader_self_cpu(ns_proc_reader *r, int64_t *ticks);
int ns_proc_reader_meminfo(ns_proc_reader *r, int64_t *total, int64_t *available);
int ns_proc_reader_rss(ns_proc_reader *r, int64_t *rss);

#endif
