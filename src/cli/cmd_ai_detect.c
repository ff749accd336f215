/* `nstack ai status|detect|models|unload|preload` and `nstack vram
 * status|clear` (issue #9): the AI runtimes on this host as src/detect
 * finds them, and the Ollama API (which `nstack serve` speaks too) to
 * list, unload and preload their models. Each command prints a table, or
 * with --json one JSON object on stdout; errors go to stderr with exit 1
 * (2 for a usage error), as the other client commands do. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "ai.h"
#include "cli.h"
#include "client.h"
#include "client_format.h"
#include "detect/detect.h"
#include "detect/ollama_client.h"
#include "monitor/proc.h"
#include "monitor/sampler.h"
#include "util/log.h"

/* Per API call while detecting: loopback answers in microseconds, but a
 * busy runtime (loading a model) may take a moment. */
#define PROBE_TIMEOUT_MS 1000
#define UNLOAD_TIMEOUT_MS 30000
/* Preloading reads the whole model from disk. */
#define PRELOAD_TIMEOUT_MS 600000

#define MIB (1024.0 * 1024.0)

/* ---- shared ---- */

typedef struct {
    bool json, no_probe, dry_run;
    const char *runtime; /* --runtime PID|URL */
    const char *model;   /* the one positional argument, where taken */
} ai_opts;

enum { TAKES_PROBE = 1, TAKES_RUNTIME = 2, TAKES_MODEL = 4, TAKES_DRY_RUN = 8 };

/* -1 to go on, or the exit code (after --help or a usage error). */
static int parse_opts(int argc, char **argv, unsigned takes, const char *usage, ai_opts *o) {
    memset(o, 0, sizeof *o);
    /* "no NVML: GPU monitoring off" and the like are server log lines; a
     * client command says what matters in its own output. NSTACK_LOG set
     * by the user still wins. */
    if (setenv("NSTACK_LOG", "warn", 0) == 0) ns_log_init();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(usage, stdout);
            return NS_EXIT_OK;
        }
        if (strcmp(a, "--json") == 0) o->json = true;
        else if ((takes & TAKES_PROBE) && strcmp(a, "--no-probe") == 0) o->no_probe = true;
        else if ((takes & TAKES_DRY_RUN) && strcmp(a, "--dry-run") == 0) o->dry_run = true;
        else if ((takes & TAKES_RUNTIME) && (strcmp(a, "--runtime") == 0 || strcmp(a, "--host") == 0)) {
            if (!(o->runtime = cli_value(argc, argv, &i))) return NS_EXIT_USAGE;
        } else if ((takes & TAKES_RUNTIME) && strncmp(a, "--runtime=", 10) == 0) o->runtime = a + 10;
        else if ((takes & TAKES_RUNTIME) && strncmp(a, "--host=", 7) == 0) o->runtime = a + 7;
        else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "nstack %s: unknown option '%s'\n%s", argv[0], a, usage);
            return NS_EXIT_USAGE;
        } else if ((takes & TAKES_MODEL) && !o->model) o->model = a;
        else {
            fprintf(stderr, "nstack %s: unexpected argument '%s'\n%s", argv[0], a, usage);
            return NS_EXIT_USAGE;
        }
    }
    if ((takes & TAKES_MODEL) && !o->model) {
        fprintf(stderr, "nstack %s: which model? (a MODEL argument is needed)\n%s", argv[0], usage);
        return NS_EXIT_USAGE;
    }
    return -1;
}

static int detect_all(bool probe, ns_ai_runtime **rts, int *n) {
    char err[512];
    ns_detect_options o = {.proc_root = NULL, .probe_apis = probe, .timeout_ms = PROBE_TIMEOUT_MS};
    if (ns_detect(&o, rts, n, err, sizeof err) != 0) {
        fprintf(stderr, "nstack: cannot detect runtimes: %s\n", err);
        return -1;
    }
    return 0;
}

/* A runtime speaks the Ollama API (list / unload / preload). */
static bool ollama_api(const ns_ai_runtime *r) {
    return r->confirmed && (r->kind == NS_AI_NSTACK || r->kind == NS_AI_OLLAMA);
}

/* -1 (unknown) as JSON null. */
static void add_i64(cJSON *o, const char *key, int64_t v) {
    if (v < 0) cJSON_AddNullToObject(o, key);
    else cJSON_AddNumberToObject(o, key, (double)v);
}

static void bytes_or_dash(int64_t b, char *buf, size_t len) {
    if (b < 0) snprintf(buf, len, "-");
    else human_bytes(b, buf, len);
}

static void print_json(cJSON *o) {
    char *s = cJSON_Print(o);
    if (s) {
        puts(s);
        free(s);
    }
    cJSON_Delete(o);
}

/* "11434,8080" */
static void ports_text(const ns_ai_runtime *r, char *buf, size_t len) {
    size_t k = 0;
    buf[0] = '\0';
    for (int i = 0; i < r->n_ports && k < len; i++)
        k += (size_t)snprintf(buf + k, len - k, "%s%d", i ? "," : "", r->ports[i]);
    if (r->n_ports == 0) snprintf(buf, len, "-");
}

static cJSON *model_json(const ns_ai_model *m) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", m->name);
    add_i64(o, "size", m->size);
    add_i64(o, "size_vram", m->size_vram);
    if (m->expires_at[0]) cJSON_AddStringToObject(o, "expires_at", m->expires_at);
    else cJSON_AddNullToObject(o, "expires_at");
    add_i64(o, "active", m->active);
    return o;
}

static cJSON *runtime_json(const ns_ai_runtime *r) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "kind", ns_ai_kind_name(r->kind));
    cJSON_AddNumberToObject(o, "pid", r->pid);
    cJSON_AddStringToObject(o, "user", r->user);
    cJSON_AddStringToObject(o, "name", r->name);
    cJSON_AddStringToObject(o, "command", r->command);
    cJSON *ports = cJSON_AddArrayToObject(o, "ports");
    for (int i = 0; i < r->n_ports; i++) cJSON_AddItemToArray(ports, cJSON_CreateNumber(r->ports[i]));
    cJSON_AddBoolToObject(o, "confirmed", r->confirmed);
    if (r->api[0]) cJSON_AddStringToObject(o, "api", r->api);
    else cJSON_AddNullToObject(o, "api");
    if (r->version[0]) cJSON_AddStringToObject(o, "version", r->version);
    else cJSON_AddNullToObject(o, "version");
    add_i64(o, "rss", r->rss);
    add_i64(o, "vram", r->vram);
    cJSON_AddStringToObject(o, "why", r->why);
    if (r->env[0]) cJSON_AddStringToObject(o, "env", r->env);
    cJSON *models = cJSON_AddArrayToObject(o, "models");
    for (int i = 0; i < r->n_models; i++) cJSON_AddItemToArray(models, model_json(&r->models[i]));
    if (r->kind == NS_AI_VLLM) {
        if (r->kv_cache_usage_pct >= 0) cJSON_AddNumberToObject(o, "kv_cache_usage_pct", r->kv_cache_usage_pct);
        else cJSON_AddNullToObject(o, "kv_cache_usage_pct");
        add_i64(o, "requests_running", r->requests_running);
        add_i64(o, "requests_waiting", r->requests_waiting);
    }
    return o;
}

/* "demo" and "demo:latest" name the same model, as Ollama resolves them. */
static bool same_model(const char *a, const char *b) {
    if (strcmp(a, b) == 0) return true;
    size_t la = strlen(a), lb = strlen(b);
    if (la + 7 == lb && strncmp(a, b, la) == 0 && strcmp(b + la, ":latest") == 0) return true;
    if (lb + 7 == la && strncmp(a, b, lb) == 0 && strcmp(a + lb, ":latest") == 0) return true;
    return false;
}

/* One runtime to talk to through the Ollama API. */
typedef struct {
    char api[1024];
    const char *kind; /* "nstack", "ollama", or "runtime" when given by URL */
    int pid;          /* 0 when given by URL */
} target;

/* --runtime PID|URL into a target: a PID must be a runtime detection
 * confirmed; anything else is a host spec in OLLAMA_HOST's forms. */
static int resolve_runtime(const char *spec, target *t) {
    memset(t, 0, sizeof *t);
    long long pid;
    if (cli_parse_int(spec, 1, 0x7fffffff, &pid)) {
        ns_ai_runtime *rts = NULL;
        int n = 0;
        if (detect_all(true, &rts, &n) != 0) return NS_EXIT_FAIL;
        int rc = NS_EXIT_FAIL;
        const ns_ai_runtime *r = NULL;
        for (int i = 0; i < n; i++)
            if (rts[i].pid == (int)pid) r = &rts[i];
        if (!r) fprintf(stderr, "nstack: process %lld is not an AI runtime detection knows\n", pid);
        else if (!ollama_api(r))
            fprintf(stderr, "nstack: process %lld (%s) has no Ollama API that answered%s%s\n", pid,
                    ns_ai_kind_name(r->kind), r->n_ports ? "" : " (no listening port found)", "");
        else {
            snprintf(t->api, sizeof t->api, "%s", r->api);
            t->kind = ns_ai_kind_name(r->kind);
            t->pid = r->pid;
            rc = NS_EXIT_OK;
        }
        free(rts);
        return rc;
    }
    char err[512];
    if (client_base_url_for(spec, t->api, sizeof t->api, err, sizeof err) != 0) {
        fprintf(stderr, "nstack: --runtime: %s\n", err);
        return NS_EXIT_USAGE;
    }
    t->kind = "runtime";
    return NS_EXIT_OK;
}

/* Every confirmed Ollama-API runtime as targets; *n may be 0. */
static int all_targets(target **out, int *n) {
    ns_ai_runtime *rts = NULL;
    int nr = 0;
    *out = NULL;
    *n = 0;
    if (detect_all(true, &rts, &nr) != 0) return NS_EXIT_FAIL;
    target *t = calloc((size_t)(nr > 0 ? nr : 1), sizeof *t);
    if (!t) {
        free(rts);
        fprintf(stderr, "nstack: out of memory\n");
        return NS_EXIT_FAIL;
    }
    for (int i = 0; i < nr; i++) {
        if (!ollama_api(&rts[i])) continue;
        snprintf(t[*n].api, sizeof t[*n].api, "%s", rts[i].api);
        t[*n].kind = ns_ai_kind_name(rts[i].kind); /* a static string */
        t[*n].pid = rts[i].pid;
        (*n)++;
    }
    free(rts);
    *out = t;
    return NS_EXIT_OK;
}

/* ---- ai detect ---- */

static const char DETECT_USAGE[] =
    "usage: nstack ai detect [--no-probe] [--json]\n"
    "The AI runtimes running on this host (Ollama, llama.cpp, vLLM, nstack, PyTorch, ONNX Runtime,\n"
    "image generation, Whisper, other CUDA programs), from /proc and confirmed through their APIs.\n"
    "  --no-probe        do not call the runtimes' HTTP APIs (nothing is confirmed)\n"
    "  --json            one JSON object {\"runtimes\": [...]}\n";

int ai_detect(int argc, char **argv) {
    ai_opts o;
    int rc = parse_opts(argc, argv, TAKES_PROBE, DETECT_USAGE, &o);
    if (rc >= 0) return rc;
    ns_ai_runtime *rts = NULL;
    int n = 0;
    if (detect_all(!o.no_probe, &rts, &n) != 0) return NS_EXIT_FAIL;
    if (o.json) {
        cJSON *root = cJSON_CreateObject();
        cJSON *arr = cJSON_AddArrayToObject(root, "runtimes");
        for (int i = 0; i < n; i++) cJSON_AddItemToArray(arr, runtime_json(&rts[i]));
        print_json(root);
    } else if (n == 0) {
        printf("No AI runtimes found on this host.\n");
    } else {
        table t;
        table_init(&t, 9);
        table_row(&t, (const char *[]){"KIND", "PID", "USER", "PORTS", "CONFIRMED", "VERSION", "RSS", "VRAM", "WHY"});
        for (int i = 0; i < n; i++) {
            const ns_ai_runtime *r = &rts[i];
            char pid[16], ports[64], rss[32], vram[32];
            snprintf(pid, sizeof pid, "%d", r->pid);
            ports_text(r, ports, sizeof ports);
            bytes_or_dash(r->rss, rss, sizeof rss);
            bytes_or_dash(r->vram, vram, sizeof vram);
            table_row(&t, (const char *[]){ns_ai_kind_name(r->kind), pid, r->user[0] ? r->user : "-", ports,
                                           o.no_probe ? "-" : r->confirmed ? "yes" : "no",
                                           r->version[0] ? r->version : "-", rss, vram, r->why});
        }
        table_print(&t, stdout);
        table_free(&t);
    }
    free(rts);
    return NS_EXIT_OK;
}

/* ---- ai status ---- */

static const char STATUS_USAGE[] =
    "usage: nstack ai status [--no-probe] [--json]\n"
    "This host's memory, CPU and GPUs, and the AI runtimes on it with their loaded models.\n"
    "  --no-probe        do not call the runtimes' HTTP APIs\n"
    "  --json            one JSON object {\"ram\", \"cpu\", \"gpus\", \"runtimes\"}\n";

static cJSON *gpu_json(const ns_gpu_reading *g, int index) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "index", index);
    cJSON_AddStringToObject(o, "name", g->name);
    add_i64(o, "vram_total", g->vram_total);
    add_i64(o, "vram_used", g->vram_used);
    if (g->util_pct >= 0) cJSON_AddNumberToObject(o, "util_pct", g->util_pct);
    else cJSON_AddNullToObject(o, "util_pct");
    if (g->temp_c >= 0) cJSON_AddNumberToObject(o, "temp_c", g->temp_c);
    else cJSON_AddNullToObject(o, "temp_c");
    return o;
}

int ai_status(int argc, char **argv) {
    ai_opts o;
    int rc = parse_opts(argc, argv, TAKES_PROBE, STATUS_USAGE, &o);
    if (rc >= 0) return rc;
    /* CPU busy % needs two readings: one before detection, one after (the
     * scan and probes take a while); at least 100 ms apart. */
    ns_cpu_times c0, c1;
    bool have_cpu = ns_proc_cpu_times("/proc", &c0) == 0;
    ns_ai_runtime *rts = NULL;
    int n = 0;
    if (detect_all(!o.no_probe, &rts, &n) != 0) return NS_EXIT_FAIL;
    ns_resource_sample s;
    if (ns_monitor_read_now(&s) != 0) {
        fprintf(stderr, "nstack: cannot read /proc/meminfo\n");
        free(rts);
        return NS_EXIT_FAIL;
    }
    double busy = -1, proc_pct;
    if (have_cpu) {
        nanosleep(&(struct timespec){0, 100000000L}, NULL);
        if (ns_proc_cpu_times("/proc", &c1) == 0) ns_cpu_percent(&c0, &c1, 0, 0, &busy, &proc_pct);
    }
    if (o.json) {
        cJSON *root = cJSON_CreateObject();
        cJSON *ram = cJSON_AddObjectToObject(root, "ram");
        cJSON_AddNumberToObject(ram, "total", (double)s.ram_total);
        cJSON_AddNumberToObject(ram, "used", (double)s.ram_used);
        cJSON_AddNumberToObject(ram, "available", (double)s.ram_available);
        cJSON *cpu = cJSON_AddObjectToObject(root, "cpu");
        cJSON_AddNumberToObject(cpu, "cores", s.n_cpus);
        if (busy >= 0) cJSON_AddNumberToObject(cpu, "busy_pct", busy);
        else cJSON_AddNullToObject(cpu, "busy_pct");
        cJSON *gpus = cJSON_AddArrayToObject(root, "gpus");
        for (int g = 0; g < s.n_gpus; g++) cJSON_AddItemToArray(gpus, gpu_json(&s.gpu[g], g));
        cJSON *arr = cJSON_AddArrayToObject(root, "runtimes");
        for (int i = 0; i < n; i++) {
            const ns_ai_runtime *r = &rts[i];
            cJSON *x = cJSON_CreateObject();
            cJSON_AddStringToObject(x, "kind", ns_ai_kind_name(r->kind));
            cJSON_AddNumberToObject(x, "pid", r->pid);
            cJSON_AddBoolToObject(x, "confirmed", r->confirmed);
            if (r->api[0]) cJSON_AddStringToObject(x, "api", r->api);
            else cJSON_AddNullToObject(x, "api");
            cJSON_AddNumberToObject(x, "models", r->n_models);
            add_i64(x, "rss", r->rss);
            add_i64(x, "vram", r->vram);
            cJSON_AddItemToArray(arr, x);
        }
        print_json(root);
        free(rts);
        return NS_EXIT_OK;
    }
    char used[32], total[32], avail[32];
    human_bytes(s.ram_used, used, sizeof used);
    human_bytes(s.ram_total, total, sizeof total);
    human_bytes(s.ram_available, avail, sizeof avail);
    printf("RAM       %s used of %s (%s available)\n", used, total, avail);
    if (busy >= 0) printf("CPU       %d cores, %.0f%% busy\n", s.n_cpus, busy);
    else printf("CPU       %d cores\n", s.n_cpus);
    if (s.n_gpus == 0) printf("GPU       none found (no NVIDIA driver or NVML)\n");
    for (int g = 0; g < s.n_gpus; g++) {
        bytes_or_dash(s.gpu[g].vram_used, used, sizeof used);
        bytes_or_dash(s.gpu[g].vram_total, total, sizeof total);
        printf("GPU %-5d %s: %s used of %s\n", g, s.gpu[g].name, used, total);
    }
    printf("\n");
    if (n == 0) printf("No AI runtimes found on this host.\n");
    else {
        table t;
        table_init(&t, 7);
        table_row(&t, (const char *[]){"KIND", "PID", "API", "CONFIRMED", "MODELS", "RSS", "VRAM"});
        for (int i = 0; i < n; i++) {
            const ns_ai_runtime *r = &rts[i];
            char pid[16], models[16], rss[32], vram[32];
            snprintf(pid, sizeof pid, "%d", r->pid);
            if (r->confirmed) snprintf(models, sizeof models, "%d", r->n_models);
            else snprintf(models, sizeof models, "-");
            bytes_or_dash(r->rss, rss, sizeof rss);
            bytes_or_dash(r->vram, vram, sizeof vram);
            table_row(&t, (const char *[]){ns_ai_kind_name(r->kind), pid, r->api[0] ? r->api : "-",
                                           o.no_probe ? "-" : r->confirmed ? "yes" : "no", models, rss, vram});
        }
        table_print(&t, stdout);
        table_free(&t);
    }
    free(rts);
    return NS_EXIT_OK;
}

/* ---- ai models ---- */

static const char MODELS_USAGE[] = "usage: nstack ai models [--json]\n"
                                   "The models every confirmed runtime on this host has loaded.\n"
                                   "  --json            one JSON object {\"models\": [...]}\n";

int ai_models(int argc, char **argv) {
    ai_opts o;
    int rc = parse_opts(argc, argv, 0, MODELS_USAGE, &o);
    if (rc >= 0) return rc;
    ns_ai_runtime *rts = NULL;
    int n = 0;
    if (detect_all(true, &rts, &n) != 0) return NS_EXIT_FAIL;
    cJSON *root = o.json ? cJSON_CreateObject() : NULL;
    cJSON *arr = root ? cJSON_AddArrayToObject(root, "models") : NULL;
    table t;
    table_init(&t, 6);
    table_row(&t, (const char *[]){"RUNTIME", "API", "MODEL", "SIZE", "VRAM", "EXPIRES"});
    int rows = 0;
    double now = (double)time(NULL);
    for (int i = 0; i < n; i++) {
        const ns_ai_runtime *r = &rts[i];
        if (!r->confirmed) continue;
        for (int m = 0; m < r->n_models; m++) {
            const ns_ai_model *md = &r->models[m];
            rows++;
            if (root) {
                cJSON *x = model_json(md);
                cJSON_AddStringToObject(x, "runtime", ns_ai_kind_name(r->kind));
                cJSON_AddNumberToObject(x, "pid", r->pid);
                cJSON_AddStringToObject(x, "api", r->api);
                cJSON_AddItemToArray(arr, x);
                continue;
            }
            char size[32], vram[32], exp[64];
            bytes_or_dash(md->size, size, sizeof size);
            bytes_or_dash(md->size_vram, vram, sizeof vram);
            double e;
            if (!parse_rfc3339(md->expires_at[0] ? md->expires_at : NULL, &e)) snprintf(exp, sizeof exp, "-");
            else if (e < now) snprintf(exp, sizeof exp, "Stopping...");
            else human_time(e, now, "Never", exp, sizeof exp);
            table_row(&t, (const char *[]){ns_ai_kind_name(r->kind), r->api, md->name, size, vram, exp});
        }
    }
    if (root) print_json(root);
    else if (rows == 0) printf("No loaded models in the runtimes found on this host.\n");
    else table_print(&t, stdout);
    table_free(&t);
    free(rts);
    return NS_EXIT_OK;
}

/* ---- ai unload ---- */

static const char UNLOAD_USAGE[] =
    "usage: nstack ai unload MODEL [--runtime PID|URL] [--json]\n"
    "Unloads MODEL from every runtime that has it loaded (through the Ollama API: nstack, Ollama).\n"
    "  --runtime PID|URL only this runtime (a process id, or a host spec like 127.0.0.1:11434)\n"
    "  --json            one JSON object {\"unloaded\": [...]}\n";

/* Whether the runtime at t has model loaded; -1 when it cannot be asked. */
static int holds(const target *t, const char *model, char *name, size_t nlen, char *err, size_t errlen) {
    ns_ai_model ms[NS_AI_MAX_MODELS];
    int n = 0;
    if (ns_ollama_ps(t->api, PROBE_TIMEOUT_MS * 5, ms, NS_AI_MAX_MODELS, &n, err, errlen) != 0) return -1;
    for (int i = 0; i < n; i++)
        if (same_model(ms[i].name, model)) {
            snprintf(name, nlen, "%s", ms[i].name);
            return 1;
        }
    return 0;
}

int ai_unload(int argc, char **argv) {
    ai_opts o;
    int rc = parse_opts(argc, argv, TAKES_RUNTIME | TAKES_MODEL, UNLOAD_USAGE, &o);
    if (rc >= 0) return rc;
    target *ts = NULL;
    int nt = 0;
    if (o.runtime) {
        ts = calloc(1, sizeof *ts);
        if (!ts) return NS_EXIT_FAIL;
        if ((rc = resolve_runtime(o.runtime, ts)) != NS_EXIT_OK) {
            free(ts);
            return rc;
        }
        nt = 1;
    } else if ((rc = all_targets(&ts, &nt)) != NS_EXIT_OK) {
        return rc;
    }
    if (nt == 0) {
        fprintf(stderr, "nstack: no runtime with the Ollama API (nstack, Ollama) found on this host\n");
        free(ts);
        return NS_EXIT_FAIL;
    }
    cJSON *root = cJSON_CreateObject();
    cJSON *done = cJSON_AddArrayToObject(root, "unloaded");
    char asked[1024] = "";
    size_t ak = 0;
    int found = 0, failed = 0;
    for (int i = 0; i < nt; i++) {
        char err[1024], name[256];
        if (ak < sizeof asked) ak += (size_t)snprintf(asked + ak, sizeof asked - ak, "%s%s", i ? ", " : "", ts[i].api);
        int h = holds(&ts[i], o.model, name, sizeof name, err, sizeof err);
        if (h < 0) {
            fprintf(stderr, "nstack: cannot ask %s: %s\n", ts[i].api, err);
            failed++;
            continue;
        }
        if (h == 0) continue;
        found++;
        if (ns_ollama_unload(ts[i].api, name, UNLOAD_TIMEOUT_MS, err, sizeof err) != 0) {
            fprintf(stderr, "nstack: cannot unload %s from %s: %s\n", name, ts[i].api, err);
            failed++;
            continue;
        }
        cJSON *x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "model", name);
        cJSON_AddStringToObject(x, "runtime", ts[i].kind);
        if (ts[i].pid) cJSON_AddNumberToObject(x, "pid", ts[i].pid);
        cJSON_AddStringToObject(x, "api", ts[i].api);
        cJSON_AddItemToArray(done, x);
        if (!o.json) printf("unloaded %s from %s at %s\n", name, ts[i].kind, ts[i].api);
    }
    free(ts);
    if (found == 0 && failed == 0) {
        cJSON_Delete(root);
        fprintf(stderr, "nstack: no runtime has %s loaded (asked: %s)\n", o.model, asked);
        return NS_EXIT_FAIL;
    }
    if (o.json) print_json(root);
    else cJSON_Delete(root);
    return failed ? NS_EXIT_FAIL : NS_EXIT_OK;
}

/* ---- ai preload ---- */

static const char PRELOAD_USAGE[] =
    "usage: nstack ai preload MODEL --runtime PID|URL [--json]\n"
    "Loads MODEL into a runtime (through the Ollama API) so the first request does not wait for it.\n"
    "  --runtime PID|URL the runtime: a process id, or a host spec like 127.0.0.1:11434\n"
    "  --json            one JSON object {\"loaded\": {...}}\n";

int ai_preload(int argc, char **argv) {
    ai_opts o;
    int rc = parse_opts(argc, argv, TAKES_RUNTIME | TAKES_MODEL, PRELOAD_USAGE, &o);
    if (rc >= 0) return rc;
    if (!o.runtime) {
        fprintf(stderr, "nstack %s: which runtime? (--runtime PID|URL is needed)\n%s", argv[0], PRELOAD_USAGE);
        return NS_EXIT_USAGE;
    }
    target t;
    if ((rc = resolve_runtime(o.runtime, &t)) != NS_EXIT_OK) return rc;
    char err[1024];
    if (ns_ollama_preload(t.api, o.model, PRELOAD_TIMEOUT_MS, err, sizeof err) != 0) {
        fprintf(stderr, "nstack: cannot load %s into %s: %s\n", o.model, t.api, err);
        return NS_EXIT_FAIL;
    }
    if (o.json) {
        cJSON *root = cJSON_CreateObject();
        cJSON *x = cJSON_AddObjectToObject(root, "loaded");
        cJSON_AddStringToObject(x, "model", o.model);
        cJSON_AddStringToObject(x, "runtime", t.kind);
        if (t.pid) cJSON_AddNumberToObject(x, "pid", t.pid);
        cJSON_AddStringToObject(x, "api", t.api);
        print_json(root);
    } else {
        printf("loaded %s into %s at %s\n", o.model, t.kind, t.api);
    }
    return NS_EXIT_OK;
}

/* ---- vram status ---- */

static const char VRAM_STATUS_USAGE[] =
    "usage: nstack vram status [--no-probe] [--json]\n"
    "Each GPU's memory, and the processes holding it with their kind. Without GPUs, the AI\n"
    "runtimes' RAM instead.\n"
    "  --no-probe        do not call the runtimes' HTTP APIs\n"
    "  --json            one JSON object {\"gpus\": [...], \"runtimes\": [...]}\n";

static const ns_ai_runtime *find_pid(const ns_ai_runtime *rts, int n, int pid) {
    for (int i = 0; i < n; i++)
        if (rts[i].pid == pid) return &rts[i];
    return NULL;
}

/* /proc/PID/comm for a GPU process detection did not classify. */
static void comm_of(int pid, char *buf, size_t len) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/comm", pid);
    buf[0] = '\0';
    FILE *f = fopen(path, "r");
    if (!f) return;
    if (fgets(buf, (int)len, f)) buf[strcspn(buf, "\n")] = '\0';
    fclose(f);
}

int vram_status(int argc, char **argv) {
    ai_opts o;
    int rc = parse_opts(argc, argv, TAKES_PROBE, VRAM_STATUS_USAGE, &o);
    if (rc >= 0) return rc;
    ns_ai_runtime *rts = NULL;
    int n = 0;
    if (detect_all(!o.no_probe, &rts, &n) != 0) return NS_EXIT_FAIL;
    ns_resource_sample s;
    if (ns_monitor_read_now(&s) != 0) {
        fprintf(stderr, "nstack: cannot read /proc/meminfo\n");
        free(rts);
        return NS_EXIT_FAIL;
    }
    cJSON *root = o.json ? cJSON_CreateObject() : NULL;
    cJSON *gpus = root ? cJSON_AddArrayToObject(root, "gpus") : NULL;
    if (!root && s.n_gpus == 0) printf("No GPUs found (no NVIDIA driver or NVML): the runtimes use RAM only.\n");
    for (int g = 0; g < s.n_gpus; g++) {
        const ns_gpu_reading *gr = &s.gpu[g];
        cJSON *gj = NULL, *procs = NULL;
        char used[32], total[32];
        if (root) {
            gj = gpu_json(gr, g);
            procs = cJSON_AddArrayToObject(gj, "processes");
            cJSON_AddItemToArray(gpus, gj);
        } else {
            bytes_or_dash(gr->vram_used, used, sizeof used);
            bytes_or_dash(gr->vram_total, total, sizeof total);
            printf("%sGPU %d  %s: %s used of %s\n", g ? "\n" : "", g, gr->name, used, total);
        }
        table t;
        table_init(&t, 4);
        table_row(&t, (const char *[]){"PID", "KIND", "NAME", "VRAM"});
        for (int i = 0; i < gr->n_procs; i++) {
            const ns_ai_runtime *r = find_pid(rts, n, gr->procs[i].pid);
            char name[64], pid[16], vram[32];
            if (r) snprintf(name, sizeof name, "%s", r->name);
            else comm_of(gr->procs[i].pid, name, sizeof name);
            const char *kind = r ? ns_ai_kind_name(r->kind) : "-";
            if (root) {
                cJSON *x = cJSON_CreateObject();
                cJSON_AddNumberToObject(x, "pid", gr->procs[i].pid);
                cJSON_AddStringToObject(x, "kind", kind);
                cJSON_AddStringToObject(x, "name", name);
                add_i64(x, "vram", gr->procs[i].vram);
                cJSON_AddItemToArray(procs, x);
                continue;
            }
            snprintf(pid, sizeof pid, "%d", (int)gr->procs[i].pid);
            bytes_or_dash(gr->procs[i].vram, vram, sizeof vram);
            table_row(&t, (const char *[]){pid, kind, name[0] ? name : "-", vram});
        }
        if (!root) {
            if (gr->n_procs == 0) printf("  no processes\n");
            else table_print_indented(&t, stdout, "  ");
            if (gr->n_procs_total > gr->n_procs)
                printf("  ... and %d more processes\n", gr->n_procs_total - gr->n_procs);
        }
        table_free(&t);
    }
    if (root) {
        cJSON *arr = cJSON_AddArrayToObject(root, "runtimes");
        for (int i = 0; i < n; i++) {
            cJSON *x = cJSON_CreateObject();
            cJSON_AddStringToObject(x, "kind", ns_ai_kind_name(rts[i].kind));
            cJSON_AddNumberToObject(x, "pid", rts[i].pid);
            add_i64(x, "rss", rts[i].rss);
            add_i64(x, "vram", rts[i].vram);
            cJSON_AddItemToArray(arr, x);
        }
        print_json(root);
    } else if (s.n_gpus == 0) {
        if (n == 0) printf("No AI runtimes found on this host.\n");
        else {
            table t;
            table_init(&t, 4);
            table_row(&t, (const char *[]){"KIND", "PID", "NAME", "RSS"});
            for (int i = 0; i < n; i++) {
                char pid[16], rss[32];
                snprintf(pid, sizeof pid, "%d", rts[i].pid);
                bytes_or_dash(rts[i].rss, rss, sizeof rss);
                table_row(&t, (const char *[]){ns_ai_kind_name(rts[i].kind), pid, rts[i].name, rss});
            }
            table_print(&t, stdout);
            table_free(&t);
        }
    }
    free(rts);
    return NS_EXIT_OK;
}

/* ---- vram clear ---- */

static const char VRAM_CLEAR_USAGE[] =
    "usage: nstack vram clear [--dry-run] [--runtime PID|URL] [--json]\n"
    "Unloads every idle model (loaded, and not generating as far as the runtime says) from every\n"
    "runtime with the Ollama API on this host, and says what that freed, from /api/ps before and after.\n"
    "  --dry-run         only say what would be unloaded\n"
    "  --runtime PID|URL only this runtime (a process id, or a host spec like 127.0.0.1:11434)\n"
    "  --json            one JSON object {\"unloaded\", \"skipped\", \"errors\", \"freed\"}\n";

static int64_t ram_part(const ns_ai_model *m) {
    if (m->size <= 0) return 0;
    return m->size_vram > 0 ? (m->size > m->size_vram ? m->size - m->size_vram : 0) : m->size;
}

int vram_clear(int argc, char **argv) {
    ai_opts o;
    int rc = parse_opts(argc, argv, TAKES_DRY_RUN | TAKES_RUNTIME, VRAM_CLEAR_USAGE, &o);
    if (rc >= 0) return rc;
    target *ts = NULL;
    int nt = 0;
    if (o.runtime) { /* one runtime only: scripts and tests that must not touch the others */
        if (!(ts = calloc(1, sizeof *ts))) return NS_EXIT_FAIL;
        if ((rc = resolve_runtime(o.runtime, ts)) != NS_EXIT_OK) {
            free(ts);
            return rc;
        }
        nt = 1;
    } else if ((rc = all_targets(&ts, &nt)) != NS_EXIT_OK) {
        return rc;
    }
    cJSON *root = cJSON_CreateObject();
    cJSON_AddBoolToObject(root, "dry_run", o.dry_run);
    cJSON *unloaded = cJSON_AddArrayToObject(root, "unloaded");
    cJSON *skipped = cJSON_AddArrayToObject(root, "skipped");
    cJSON *errors = cJSON_AddArrayToObject(root, "errors");
    int freed_n = 0, n_err = 0;
    int64_t freed_ram = 0, freed_vram = 0;
    for (int i = 0; i < nt; i++) {
        char err[1024];
        ns_ai_model before[NS_AI_MAX_MODELS], after[NS_AI_MAX_MODELS];
        int nb = 0, na = 0;
        if (ns_ollama_ps(ts[i].api, PROBE_TIMEOUT_MS * 5, before, NS_AI_MAX_MODELS, &nb, err, sizeof err) != 0) {
            cJSON_AddItemToArray(errors, cJSON_CreateString(err));
            if (!o.json) fprintf(stderr, "nstack: %s\n", err);
            n_err++;
            continue;
        }
        bool asked[NS_AI_MAX_MODELS] = {false};
        for (int m = 0; m < nb; m++) {
            const ns_ai_model *md = &before[m];
            const char *skip = md->size <= 0 ? "not in memory" : md->active > 0 ? "generating" : NULL;
            cJSON *x = model_json(md);
            cJSON_AddStringToObject(x, "runtime", ts[i].kind);
            if (ts[i].pid) cJSON_AddNumberToObject(x, "pid", ts[i].pid);
            cJSON_AddStringToObject(x, "api", ts[i].api);
            if (skip) {
                cJSON_AddStringToObject(x, "reason", skip);
                cJSON_AddItemToArray(skipped, x);
                if (!o.json) printf("kept %s in %s at %s: %s\n", md->name, ts[i].kind, ts[i].api, skip);
                continue;
            }
            if (!o.dry_run && ns_ollama_unload(ts[i].api, md->name, UNLOAD_TIMEOUT_MS, err, sizeof err) != 0) {
                char msg[2600];
                snprintf(msg, sizeof msg, "cannot unload %.256s from %.1024s: %.1024s", md->name, ts[i].api, err);
                cJSON_AddItemToArray(errors, cJSON_CreateString(msg));
                if (!o.json) fprintf(stderr, "nstack: %s\n", msg);
                cJSON_Delete(x);
                n_err++;
                continue;
            }
            asked[m] = true;
            cJSON_AddItemToArray(unloaded, x);
        }
        /* What was freed is what /api/ps no longer lists; a dry run counts
         * what it would unload. */
        if (!o.dry_run && ns_ollama_ps(ts[i].api, PROBE_TIMEOUT_MS * 5, after, NS_AI_MAX_MODELS, &na, err,
                                       sizeof err) != 0) {
            cJSON_AddItemToArray(errors, cJSON_CreateString(err));
            if (!o.json) fprintf(stderr, "nstack: %s\n", err);
            n_err++;
            continue;
        }
        for (int m = 0; m < nb; m++) {
            if (!asked[m]) continue;
            bool still = false;
            for (int k = 0; k < na && !o.dry_run; k++)
                if (strcmp(after[k].name, before[m].name) == 0) still = true;
            if (still) continue;
            freed_n++;
            freed_ram += ram_part(&before[m]);
            freed_vram += before[m].size_vram > 0 ? before[m].size_vram : 0;
            if (!o.json)
                printf("%s %s from %s at %s\n", o.dry_run ? "would unload" : "unloaded", before[m].name, ts[i].kind,
                       ts[i].api);
        }
    }
    cJSON *freed = cJSON_AddObjectToObject(root, "freed");
    cJSON_AddNumberToObject(freed, "models", freed_n);
    cJSON_AddNumberToObject(freed, "ram", (double)freed_ram);
    cJSON_AddNumberToObject(freed, "vram", (double)freed_vram);
    cJSON_AddNumberToObject(root, "runtimes", nt);
    if (o.json) print_json(root);
    else {
        cJSON_Delete(root);
        if (nt == 0) printf("No runtime with the Ollama API (nstack, Ollama) found on this host: nothing to clear.\n");
        printf("%s %d model%s, %.0f MiB RAM, %.0f MiB VRAM\n", o.dry_run ? "would free" : "freed", freed_n,
               freed_n == 1 ? "" : "s", (double)freed_ram / MIB, (double)freed_vram / MIB);
    }
    free(ts);
    return n_err ? NS_EXIT_FAIL : NS_EXIT_OK;
}
