/* The resource monitor: /proc parsers on fixture files (a comm with spaces
 * and ')' in it, a /proc/stat bigger than the first buffer), the CPU %
 * arithmetic, alerts with hysteresis, NVML through a fake library and
 * through a missing one, and the sampler thread running for real on this
 * machine (samples arrive, ring order, prompt stop, alerts through it). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <dirent.h>
#include <dlfcn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "monitor/alerts.h"
#include "monitor/nvml.h"
#include "monitor/proc.h"
#include "monitor/sampler.h"

#ifndef FAKE_NVML_PATH
#error "tests/CMakeLists.txt defines FAKE_NVML_PATH for test_monitor"
#endif

static char root[256];

static void write_fixture(const char *rel, const char *text) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void remove_fixture(const char *rel) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    unlink(path);
}

static int64_t mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int setup_root(void **state) {
    (void)state;
    snprintf(root, sizeof root, "%s", "/tmp/ns_test_monitor_XXXXXX");
    if (!mkdtemp(root)) return -1;
    char self[512];
    snprintf(self, sizeof self, "%s/self", root);
    return mkdir(self, 0700);
}

static int teardown_root(void **state) {
    (void)state;
    static const char *const files[] = {"stat", "self/stat", "meminfo", "self/statm"};
    for (size_t i = 0; i < 4; i++) remove_fixture(files[i]);
    remove_fixture("self");
    char self[512];
    snprintf(self, sizeof self, "%s/self", root);
    rmdir(self);
    rmdir(root);
    return 0;
}

/* ---- /proc parsers ---- */

static const char STAT[] = "cpu  100 20 30 400 50 6 7 8 0 0\n"
                           "cpu0 25 5 7 100 12 1 2 2 0 0\n"
                           "cpu1 25 5 8 100 13 2 2 2 0 0\n"
                           "cpu2 25 5 7 100 12 1 1 2 0 0\n"
                           "cpu3 25 5 8 100 13 2 2 2 0 0\n"
                           "intr 12345 1 2 3 4\n"
                           "ctxt 999\n"
                           "btime 1700000000\n";

static void test_cpu_times(void **state) {
    (void)state;
    write_fixture("stat", STAT);
    ns_cpu_times t;
    assert_int_equal(ns_proc_cpu_times(root, &t), 0);
    assert_int_equal(t.user, 100);
    assert_int_equal(t.nice, 20);
    assert_int_equal(t.system, 30);
    assert_int_equal(t.idle, 400);
    assert_int_equal(t.iowait, 50);
    assert_int_equal(t.irq, 6);
    assert_int_equal(t.softirq, 7);
    assert_int_equal(t.steal, 8);
    assert_int_equal(t.n_cpus, 4);

    /* An old kernel's four fields. */
    write_fixture("stat", "cpu 1 2 3 4\ncpu0 1 2 3 4\n");
    assert_int_equal(ns_proc_cpu_times(root, &t), 0);
    assert_int_equal(t.idle, 4);
    assert_int_equal(t.steal, 0);
    assert_int_equal(t.n_cpus, 1);

    /* Bigger than the reader's first buffer: 300 CPUs and a long intr line. */
    size_t cap = 300 * 64 + 20000;
    char *big = malloc(cap);
    assert_non_null(big);
    size_t at = (size_t)snprintf(big, cap, "cpu  1 2 3 4 5 6 7 8 0 0\n");
    for (int i = 0; i < 300; i++) at += (size_t)snprintf(big + at, cap - at, "cpu%d 1 2 3 4 5 6 7 8 0 0\n", i);
    at += (size_t)snprintf(big + at, cap - at, "intr 1");
    while (at < cap - 16) at += (size_t)snprintf(big + at, cap - at, " 0");
    snprintf(big + at, cap - at, "\nctxt 1\n");
    write_fixture("stat", big);
    free(big);
    assert_int_equal(ns_proc_cpu_times(root, &t), 0);
    assert_int_equal(t.n_cpus, 300);
    assert_int_equal(t.steal, 8);

    write_fixture("stat", "intr 1 2 3\n");
    assert_int_equal(ns_proc_cpu_times(root, &t), -1);
    write_fixture("stat", "cpu  x y z\n");
    assert_int_equal(ns_proc_cpu_times(root, &t), -1);
    write_fixture("stat", "");
    assert_int_equal(ns_proc_cpu_times(root, &t), -1);
    remove_fixture("stat");
    assert_int_equal(ns_proc_cpu_times(root, &t), -1);
}

static void test_self_cpu(void **state) {
    (void)state;
    int64_t ticks = 0;
    /* comm holds spaces and both parentheses, with a ") R 7" look-alike. */
    write_fixture("self/stat", "4242 (evil ) R 7 (prog)) S 1 4242 4242 0 -1 4194560 1500 0 3 0 250 75 "
                               "0 0 20 0 5 0 12345 1000000 300 18446744073709551615\n");
    assert_int_equal(ns_proc_self_cpu(root, &ticks), 0);
    assert_int_equal(ticks, 325);

    write_fixture("self/stat", "1 (init) S 0 1 1 0 -1 4194560 1 0 0 0 7 3 0 0 20 0 1 0 5 100 10\n");
    assert_int_equal(ns_proc_self_cpu(root, &ticks), 0);
    assert_int_equal(ticks, 10);

    write_fixture("self/stat", "1 (init S 0 1 1 0 -1 4194560 1 0 0 0 7 3\n");
    assert_int_equal(ns_proc_self_cpu(root, &ticks), -1);
    write_fixture("self/stat", "1 (init) S 0 1 1\n");
    assert_int_equal(ns_proc_self_cpu(root, &ticks), -1);

    /* And the real file. */
    assert_int_equal(ns_proc_self_cpu("/proc", &ticks), 0);
    assert_true(ticks >= 0);
}

static void test_meminfo(void **state) {
    (void)state;
    int64_t total = 0, avail = 0;
    write_fixture("meminfo", "MemTotal:       16000000 kB\n"
                             "MemFree:         1000000 kB\n"
                             "MemAvailable:   12000000 kB\n"
                             "Buffers:          200000 kB\n"
                             "Cached:          3000000 kB\n"
                             "HugePages_Total:       0\n");
    assert_int_equal(ns_proc_meminfo(root, &total, &avail), 0);
    assert_int_equal(total, 16000000LL * 1024);
    assert_int_equal(avail, 12000000LL * 1024);

    /* Before MemAvailable existed: free + buffers + cached. */
    write_fixture("meminfo", "MemTotal:  1000 kB\nMemFree:  100 kB\nBuffers:  20 kB\nCached:  300 kB\n");
    assert_int_equal(ns_proc_meminfo(root, &total, &avail), 0);
    assert_int_equal(total, 1000 * 1024);
    assert_int_equal(avail, 420 * 1024);

    write_fixture("meminfo", "MemFree:  100 kB\n");
    assert_int_equal(ns_proc_meminfo(root, &total, &avail), -1);

    assert_int_equal(ns_proc_meminfo("/proc", &total, &avail), 0);
    assert_true(total > 0);
    assert_true(avail > 0 && avail <= total);
}

static void test_rss(void **state) {
    (void)state;
    int64_t rss = 0;
    write_fixture("self/statm", "1000 300 100 10 0 200 0\n");
    assert_int_equal(ns_proc_self_rss(root, &rss), 0);
    assert_int_equal(rss, 300 * (int64_t)sysconf(_SC_PAGESIZE));
    write_fixture("self/statm", "\n");
    assert_int_equal(ns_proc_self_rss(root, &rss), -1);
    assert_int_equal(ns_proc_self_rss("/proc", &rss), 0);
    assert_true(rss > 0);
}

/* The kept-open reader sees a file's new contents on every read. */
static void test_reader_rereads(void **state) {
    (void)state;
    write_fixture("stat", STAT);
    write_fixture("self/stat", "9 (x) S 0 1 1 0 -1 0 0 0 0 0 5 5 0\n");
    write_fixture("meminfo", "MemTotal: 100 kB\nMemFree: 1 kB\nMemAvailable: 50 kB\n");
    write_fixture("self/statm", "10 2 1 0 0 0 0\n");
    ns_proc_reader r;
    char err[256];
    assert_int_equal(ns_proc_reader_open(&r, root, err, sizeof err), 0);
    ns_cpu_times t;
    int64_t ticks, total, avail, rss;
    assert_int_equal(ns_proc_reader_cpu(&r, &t), 0);
    assert_int_equal(t.n_cpus, 4);
    assert_int_equal(ns_proc_reader_self_cpu(&r, &ticks), 0);
    assert_int_equal(ticks, 10);
    assert_int_equal(ns_proc_reader_meminfo(&r, &total, &avail), 0);
    assert_int_equal(avail, 50 * 1024);
    assert_int_equal(ns_proc_reader_rss(&r, &rss), 0);
    assert_int_equal(rss, 2 * (int64_t)sysconf(_SC_PAGESIZE));

    /* Rewritten in place (same inode, as procfs regenerates). */
    write_fixture("self/stat", "9 (x) S 0 1 1 0 -1 0 0 0 0 0 50 25 0\n");
    write_fixture("meminfo", "MemTotal: 100 kB\nMemFree: 1 kB\nMemAvailable: 7 kB\n");
    assert_int_equal(ns_proc_reader_self_cpu(&r, &ticks), 0);
    assert_int_equal(ticks, 75);
    assert_int_equal(ns_proc_reader_meminfo(&r, &total, &avail), 0);
    assert_int_equal(avail, 7 * 1024);
    ns_proc_reader_close(&r);

    remove_fixture("self/statm");
    assert_int_equal(ns_proc_reader_open(&r, root, err, sizeof err), -1);
    assert_non_null(strstr(err, "self/statm"));

    /* The real /proc, twice: the second read is a fresh one. */
    assert_int_equal(ns_proc_reader_open(&r, "/proc", err, sizeof err), 0);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(ns_proc_reader_cpu(&r, &t), 0);
        assert_true(t.n_cpus >= 1);
        assert_int_equal(ns_proc_reader_self_cpu(&r, &ticks), 0);
        assert_int_equal(ns_proc_reader_meminfo(&r, &total, &avail), 0);
        assert_true(total > 0);
        assert_int_equal(ns_proc_reader_rss(&r, &rss), 0);
        assert_true(rss > 0);
    }
    ns_proc_reader_close(&r);
}

static void test_cpu_percent(void **state) {
    (void)state;
    ns_cpu_times a = {100, 0, 100, 1000, 0, 0, 0, 0, 4};
    ns_cpu_times b = a;
    /* 400 ticks elapsed over 4 CPUs (100 each): 300 busy, 100 idle. */
    b.user += 200;
    b.system += 50;
    b.softirq += 30;
    b.steal += 20;
    b.idle += 80;
    b.iowait += 20;
    double sys, proc;
    ns_cpu_percent(&a, &b, 1000, 1040, &sys, &proc);
    assert_float_equal(sys, 75.0, 1e-9);
    /* 40 process ticks of 100 x 4 CPUs: 10 % of the machine. */
    assert_float_equal(proc, 10.0, 1e-9);

    /* Nothing elapsed: zeros, not a division by zero. */
    ns_cpu_percent(&a, &a, 5, 9, &sys, &proc);
    assert_float_equal(sys, 0, 0);
    assert_float_equal(proc, 0, 0);

    /* iowait stepping backwards does not shrink the elapsed time below
     * what busy and idle account for. */
    ns_cpu_times c = a;
    c.user += 100;
    c.idle += 100;
    c.iowait = a.iowait - 5;
    ns_cpu_percent(&a, &c, 0, 0, &sys, &proc);
    assert_true(sys >= 0 && sys <= 100);

    /* Process ticks ahead of the machine's (different read instants):
     * clamped to 100. Process ticks backwards: 0. */
    ns_cpu_percent(&a, &b, 0, 10000, &sys, &proc);
    assert_float_equal(proc, 100.0, 0);
    ns_cpu_percent(&a, &b, 50, 10, &sys, &proc);
    assert_float_equal(proc, 0, 0);
}

/* ---- alerts ---- */

typedef struct {
    int n;
    ns_alert last[16];
} alert_log;

static void record(const ns_alert *a, void *user) {
    alert_log *l = user;
    if (l->n < 16) l->last[l->n] = *a;
    l->n++;
}

static ns_resource_sample ram_sample(double pct) {
    ns_resource_sample s;
    memset(&s, 0, sizeof s);
    s.ram_total = 1000000;
    s.ram_used = (int64_t)(pct * 10000);
    s.ram_available = s.ram_total - s.ram_used;
    return s;
}

static void test_alerts_ram(void **state) {
    (void)state;
    ns_alerts_config cfg = {.ram_pct = 90};
    ns_alerts a;
    ns_alerts_init(&a, &cfg);
    assert_float_equal(a.cfg.clear_margin_pct, 5.0, 0);
    alert_log l = {0};

    ns_resource_sample s = ram_sample(50);
    assert_int_equal(ns_alerts_update(&a, &s, record, &l), 0);
    s = ram_sample(90); /* reaching the threshold fires */
    assert_int_equal(ns_alerts_update(&a, &s, record, &l), 1);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.last[0].metric, "ram_pct");
    assert_int_equal(l.last[0].gpu, -1);
    assert_true(l.last[0].fired);
    assert_float_equal(l.last[0].value, 90.0, 1e-9);
    assert_float_equal(l.last[0].threshold, 90.0, 0);

    /* Staying above, and jitter around the line down to the margin: quiet. */
    double jitter[] = {95, 99, 89.9, 90.1, 86, 91, 85.0, 88};
    for (size_t i = 0; i < sizeof jitter / sizeof jitter[0]; i++) {
        s = ram_sample(jitter[i]);
        assert_int_equal(ns_alerts_update(&a, &s, record, &l), 0);
    }
    assert_int_equal(l.n, 1);

    /* Below threshold - margin: cleared, once. */
    s = ram_sample(84.9);
    assert_int_equal(ns_alerts_update(&a, &s, record, &l), 1);
    assert_int_equal(l.n, 2);
    assert_false(l.last[1].fired);
    assert_float_equal(l.last[1].value, 84.9, 1e-9);
    s = ram_sample(10);
    assert_int_equal(ns_alerts_update(&a, &s, record, &l), 0);

    /* Fires again on the next crossing. */
    s = ram_sample(92);
    assert_int_equal(ns_alerts_update(&a, &s, record, &l), 1);
    assert_true(l.last[2].fired);

    /* An unreadable RAM total is no evidence either way. */
    s = ram_sample(0);
    s.ram_total = 0;
    assert_int_equal(ns_alerts_update(&a, &s, record, &l), 0);

    /* Disabling a fired alert clears it. */
    ns_alerts_config off = {.ram_pct = 0};
    ns_alerts_set_config(&a, &off);
    s = ram_sample(99);
    assert_int_equal(ns_alerts_update(&a, &s, record, &l), 1);
    assert_false(l.last[3].fired);
    assert_int_equal(ns_alerts_update(&a, &s, record, &l), 0);
    assert_int_equal(l.n, 4);

    /* A NULL callback still tracks state. */
    ns_alerts_set_config(&a, &cfg);
    assert_int_equal(ns_alerts_update(&a, &s, NULL, NULL), 1);
    assert_int_equal(ns_alerts_update(&a, &s, NULL, NULL), 0);
}

static void test_alerts_margin_and_disabled(void **state) {
    (void)state;
    /* A custom margin. */
    ns_alerts_config cfg = {.ram_pct = 80, .clear_margin_pct = 20};
    ns_alerts a;
    ns_alerts_init(&a, &cfg);
    alert_log l = {0};
    ns_resource_sample s = ram_sample(80);
    assert_int_equal(ns_alerts_update(&a, &s, record, &l), 1);
    s = ram_sample(61);
    assert_int_equal(ns_alerts_update(&a, &s, record, &l), 0);
    s = ram_sample(59.9);
    assert_int_equal(ns_alerts_update(&a, &s, record, &l), 1);

    /* Everything disabled (NULL config): never a call. */
    ns_alerts_init(&a, NULL);
    s = ram_sample(100);
    s.n_gpus = 1;
    s.gpu[0].vram_total = 100;
    s.gpu[0].vram_used = 100;
    s.gpu[0].temp_c = 120;
    assert_int_equal(ns_alerts_update(&a, &s, record, &l), 0);
    assert_int_equal(l.n, 2);
}

static void test_alerts_gpu(void **state) {
    (void)state;
    ns_alerts_config cfg = {.vram_pct = 90, .temp_c = 80, .temp_clear_margin_c = 10};
    ns_alerts a;
    ns_alerts_init(&a, &cfg);
    alert_log l = {0};
    ns_resource_sample s = ram_sample(99); /* RAM alert disabled */
    s.n_gpus = 2;
    for (int i = 0; i < 2; i++) {
        snprintf(s.gpu[i].name, sizeof s.gpu[i].name, "g%d", i);
        s.gpu[i].vram_total = 1000;
        s.gpu[i].vram_used = 100;
        s.gpu[i].temp_c = 50;
    }
    assert_int_equal(ns_alerts_update(&a, &s, record, &l), 0);

    s.gpu[1].vram_used = 950;
    s.gpu[0].temp_c = 80;
    assert_int_equal(ns_alerts_update(&a, &s, record, &l), 2);
    /* GPU by GPU, VRAM before temperature. */
    assert_string_equal(l.last[0].metric, "temp_c");
    assert_int_equal(l.last[0].gpu, 0);
    assert_float_equal(l.last[0].value, 80.0, 0);
    assert_true(l.last[0].fired);
    assert_string_equal(l.last[1].metric, "vram_pct");
    assert_int_equal(l.last[1].gpu, 1);
    assert_float_equal(l.last[1].value, 95.0, 1e-9);
    assert_true(l.last[1].fired);

    /* An unknown temperature (-1) neither clears nor fires. */
    s.gpu[0].temp_c = -1;
    s.gpu[1].vram_used = -1;
    assert_int_equal(ns_alerts_update(&a, &s, record, &l), 0);

    /* 75 C is inside the 10-degree margin; 69 C is out. */
    s.gpu[0].temp_c = 75;
    s.gpu[1].vram_used = 860;
    assert_int_equal(ns_alerts_update(&a, &s, record, &l), 0);
    s.gpu[0].temp_c = 69;
    s.gpu[1].vram_used = 849;
    assert_int_equal(ns_alerts_update(&a, &s, record, &l), 2);
    assert_false(l.last[2].fired);
    assert_false(l.last[3].fired);
    assert_int_equal(l.n, 4);
}

/* ---- NVML ---- */

typedef int (*counter_fn)(void);

static int fake_counter(void *lib, const char *name) {
    void *p = dlsym(lib, name);
    assert_non_null(p);
    counter_fn f;
    memcpy(&f, &p, sizeof f);
    return f();
}

static void test_nvml_fake(void **state) {
    (void)state;
    /* Held open here so the counters survive the monitor's dlclose. */
    void *lib = dlopen(FAKE_NVML_PATH, RTLD_NOW | RTLD_LOCAL);
    assert_non_null(lib);
    int inits0 = fake_counter(lib, "fake_nvml_inits"), shut0 = fake_counter(lib, "fake_nvml_shutdowns");

    setenv("NSTACK_NVML_LIB", FAKE_NVML_PATH, 1);
    ns_nvml *n = ns_nvml_open();
    assert_non_null(n);
    assert_int_equal(ns_nvml_count(n), 2);

    ns_gpu_reading g;
    assert_int_equal(ns_nvml_read(n, 0, &g), 0);
    assert_string_equal(g.name, "Fake GPU 0");
    assert_int_equal(g.vram_total, 16LL << 30);
    assert_int_equal(g.vram_used, 4LL << 30);
    assert_int_equal(g.vram_ours, 512LL << 20);
    assert_int_equal(g.n_procs, 2);
    assert_int_equal(g.n_procs_total, 2);
    assert_int_equal(g.procs[0].pid, 1);
    assert_int_equal(g.procs[0].vram, 1LL << 30);
    assert_int_equal(g.procs[1].pid, getpid());
    assert_int_equal(g.procs[1].vram, 512LL << 20);
    assert_float_equal(g.util_pct, 37, 0);
    assert_float_equal(g.temp_c, 61, 0);
    assert_float_equal(g.power_w, 123.456, 1e-9);

    assert_int_equal(ns_nvml_read(n, 1, &g), 0);
    assert_string_equal(g.name, "Fake GPU 1");
    assert_int_equal(g.vram_total, 8LL << 30);
    assert_int_equal(g.vram_used, 7LL << 30);
    /* 72 processes: more than the first buffer; ours twice (MIG). */
    assert_int_equal(g.vram_ours, 128LL << 20);
    /* 71 processes (ours once, its two MIG entries added up); the first 16 listed */
    assert_int_equal(g.n_procs_total, 71);
    assert_int_equal(g.n_procs, NS_MON_MAX_GPU_PROCS);
    assert_int_equal(g.procs[0].pid, 100000);
    assert_int_equal(g.procs[0].vram, 1LL << 20);
    assert_float_equal(g.util_pct, 90, 0);
    assert_float_equal(g.temp_c, -1, 0); /* not supported: unknown */
    assert_float_equal(g.power_w, 250, 1e-9);

    assert_int_equal(ns_nvml_read(n, 2, &g), -1);
    assert_int_equal(ns_nvml_read(n, -1, &g), -1);
    ns_nvml_close(n);
    assert_int_equal(fake_counter(lib, "fake_nvml_inits"), inits0 + 1);
    assert_int_equal(fake_counter(lib, "fake_nvml_shutdowns"), shut0 + 1);

    /* A failing nvmlInit: no GPUs, no shutdown owed. */
    setenv("FAKE_NVML_FAIL_INIT", "1", 1);
    assert_null(ns_nvml_open());
    unsetenv("FAKE_NVML_FAIL_INIT");
    assert_int_equal(fake_counter(lib, "fake_nvml_inits"), inits0 + 1);
    assert_int_equal(fake_counter(lib, "fake_nvml_shutdowns"), shut0 + 1);
    dlclose(lib);
}

static void test_nvml_missing(void **state) {
    (void)state;
    setenv("NSTACK_NVML_LIB", "/nonexistent/libnvidia-ml.so.1", 1);
    ns_nvml *n = ns_nvml_open();
    assert_null(n);
    assert_int_equal(ns_nvml_count(n), 0);
    ns_gpu_reading g;
    assert_int_equal(ns_nvml_read(n, 0, &g), -1);
    ns_nvml_close(n);

    /* A library that is not NVML at all. */
    setenv("NSTACK_NVML_LIB", "libc.so.6", 1);
    assert_null(ns_nvml_open());

    /* And read-now without a sampler: RAM yes, GPUs none, no error. */
    setenv("NSTACK_NVML_LIB", "/nonexistent/libnvidia-ml.so.1", 1);
    ns_resource_sample s;
    assert_int_equal(ns_monitor_read_now(&s), 0);
    assert_true(s.ram_total > 0);
    assert_true(s.ram_used > 0 && s.ram_used < s.ram_total);
    assert_true(s.process_rss > 0);
    assert_int_equal(s.n_gpus, 0);
    assert_float_equal(s.cpu_system_pct, 0, 0);
    unsetenv("NSTACK_NVML_LIB");
}

/* ---- the sampler thread ---- */

typedef struct {
    atomic_int samples;
    atomic_int fired, cleared;
    atomic_int bad; /* a sample or alert that broke an invariant */
} sampler_probe;

static int64_t fake_mapped(void *user) {
    (void)user;
    return 12345;
}

static void count_sample(const ns_resource_sample *s, void *user) {
    sampler_probe *p = user;
    if (s->ram_total <= 0 || s->n_cpus <= 0 || s->mapped_model != 12345) atomic_store(&p->bad, 1);
    if (s->cpu_system_pct < 0 || s->cpu_system_pct > 100 || s->cpu_process_pct < 0 || s->cpu_process_pct > 100)
        atomic_store(&p->bad, 2);
    atomic_fetch_add(&p->samples, 1);
}

static void count_alert(const ns_alert *a, void *user) {
    sampler_probe *p = user;
    if (strcmp(a->metric, "ram_pct") != 0 || a->gpu != -1) {
        atomic_store(&p->bad, 3);
        return;
    }
    atomic_fetch_add(a->fired ? &p->fired : &p->cleared, 1);
}

/* Polls cond for up to 10 s (valgrind is slow). */
#define WAIT_FOR(cond)                                                     \
    do {                                                                   \
        for (int w_ = 0; w_ < 1000 && !(cond); w_++) sleep_ms(10);          \
    } while (0)

static bool thread_named(const char *want) {
    DIR *d = opendir("/proc/self/task");
    if (!d) return false;
    bool found = false;
    struct dirent *e;
    while (!found && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        char path[300], comm[64] = {0};
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        if (fgets(comm, sizeof comm, f)) {
            comm[strcspn(comm, "\n")] = '\0';
            found = strcmp(comm, want) == 0;
        }
        fclose(f);
    }
    closedir(d);
    return found;
}

static void test_sampler_runs(void **state) {
    (void)state;
    setenv("NSTACK_NVML_LIB", FAKE_NVML_PATH, 1);
    sampler_probe p = {0};
    ns_sampler_config cfg = {
        .interval_ns = 10 * 1000000LL,
        .ring = 8,
        .user = &p,
        .mapped_bytes = fake_mapped,
        .on_sample = count_sample,
    };
    char err[256] = "";
    ns_sampler *s = ns_sampler_start(&cfg, err, sizeof err);
    assert_non_null(s);
    ns_resource_sample one;

    int64_t t0 = mono_ns();
    sleep_ms(300);
    WAIT_FOR(atomic_load(&p.samples) >= 12);
    int got = atomic_load(&p.samples);
    assert_true(got >= 12);
    assert_int_equal(atomic_load(&p.bad), 0);
    assert_true(thread_named(NS_SAMPLER_THREAD_NAME));

    assert_true(ns_sampler_latest(s, &one));
    assert_true(one.ram_total > 0);
    assert_true(one.ram_available > 0 && one.ram_used == one.ram_total - one.ram_available);
    assert_true(one.process_rss > 0);
    assert_int_equal(one.mapped_model, 12345);
    assert_true(one.n_cpus >= 1);
    assert_int_equal(one.n_gpus, 2);
    assert_string_equal(one.gpu[0].name, "Fake GPU 0");
    assert_int_equal(one.gpu[1].vram_ours, 128LL << 20);
    assert_true(one.time_ns > 1600000000LL * 1000000000LL);

    /* The ring keeps the last 8, oldest first. */
    ns_resource_sample ring[20];
    int n = ns_sampler_recent(s, ring, 20);
    assert_int_equal(n, 8);
    for (int i = 1; i < n; i++) assert_true(ring[i].time_ns > ring[i - 1].time_ns);
    assert_int_equal(ns_sampler_recent(s, ring, 3), 3);
    assert_true(ring[2].time_ns >= ring[1].time_ns);
    assert_int_equal(ns_sampler_recent(s, ring, 0), 0);

    /* Read-now borrows the running sampler's NVML. */
    ns_resource_sample now;
    assert_int_equal(ns_monitor_read_now(&now), 0);
    assert_int_equal(now.n_gpus, 2);
    assert_true(now.ram_total > 0);

    ns_sampler_stop(s);
    int64_t ran_ns = mono_ns() - t0;
    /* Roughly one sample per 10 ms, never a burst beyond the schedule. */
    assert_true(atomic_load(&p.samples) <= ran_ns / 10000000 + 2);
    unsetenv("NSTACK_NVML_LIB");
}

static void test_sampler_stop_prompt(void **state) {
    (void)state;
    ns_sampler_config cfg = {.interval_ns = 10LL * 1000000000LL, .no_gpu = true};
    char err[256];
    ns_sampler *s = ns_sampler_start(&cfg, err, sizeof err);
    assert_non_null(s);
    sleep_ms(20);
    int64_t t0 = mono_ns();
    ns_sampler_stop(s);
    int64_t took = mono_ns() - t0;
    assert_true(took < 100 * 1000000LL);

    /* Defaults and the 1 ms floor start too; NULL stop is a no-op. */
    cfg.interval_ns = 1;
    s = ns_sampler_start(&cfg, err, sizeof err);
    assert_non_null(s);
    ns_sampler_stop(s);
    ns_sampler_stop(NULL);

    /* A /proc that is not there: an error, not a thread. */
    cfg.proc_root = "/nonexistent-proc";
    assert_null(ns_sampler_start(&cfg, err, sizeof err));
    assert_non_null(strstr(err, "/nonexistent-proc"));
}

static void test_sampler_alerts(void **state) {
    (void)state;
    sampler_probe p = {0};
    ns_sampler_config cfg = {
        .interval_ns = 5 * 1000000LL,
        .no_gpu = true,
        .user = &p,
        .on_alert = count_alert,
        .alerts = {.ram_pct = 0}, /* off to begin with */
    };
    char err[256];
    ns_sampler *s = ns_sampler_start(&cfg, err, sizeof err);
    assert_non_null(s);
    WAIT_FOR(ns_sampler_count(s) >= 2);
    assert_int_equal(atomic_load(&p.fired), 0);

    /* Any machine uses more than 1 % of its RAM. */
    ns_alerts_config low = {.ram_pct = 1};
    ns_sampler_set_alerts(s, &low);
    WAIT_FOR(atomic_load(&p.fired) >= 1);
    assert_int_equal(atomic_load(&p.fired), 1);
    uint64_t seen = ns_sampler_count(s);
    WAIT_FOR(ns_sampler_count(s) >= seen + 3);
    assert_int_equal(atomic_load(&p.fired), 1); /* not repeated */
    assert_int_equal(atomic_load(&p.cleared), 0);

    /* At 100 % it clears once RAM is below 95 %, as it is here. */
    ns_resource_sample now;
    assert_true(ns_sampler_latest(s, &now));
    if (100.0 * (double)now.ram_used / (double)now.ram_total < 95.0) {
        ns_alerts_config high = {.ram_pct = 100};
        ns_sampler_set_alerts(s, &high);
        WAIT_FOR(atomic_load(&p.cleared) >= 1);
        assert_int_equal(atomic_load(&p.cleared), 1);
    }
    assert_int_equal(atomic_load(&p.bad), 0);
    ns_sampler_stop(s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_cpu_times, setup_root, teardown_root),
        cmocka_unit_test_setup_teardown(test_self_cpu, setup_root, teardown_root),
        cmocka_unit_test_setup_teardown(test_meminfo, setup_root, teardown_root),
        cmocka_unit_test_setup_teardown(test_rss, setup_root, teardown_root),
        cmocka_unit_test_setup_teardown(test_reader_rereads, setup_root, teardown_root),
        cmocka_unit_test(test_cpu_percent),
        cmocka_unit_test(test_alerts_ram),
        cmocka_unit_test(test_alerts_margin_and_disabled),
        cmocka_unit_test(test_alerts_gpu),
        cmocka_unit_test(test_nvml_fake),
        cmocka_unit_test(test_nvml_missing),
        cmocka_unit_test(test_sampler_runs),
        cmocka_unit_test(test_sampler_stop_prompt),
        cmocka_unit_test(test_sampler_alerts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
