/* AI runtime detection (detect.h): walk /proc, classify, attach ports,
 * memory and VRAM, then confirm through the runtimes' HTTP APIs. */
#include "detect/detect.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "detect/ollama_client.h"
#include "detect/proc_scan.h"
#include "monitor/nvml.h"

const char *ns_ai_kind_name(ns_ai_kind k) {
    switch (k) {
    case NS_AI_NSTACK: return "nstack";
    case NS_AI_OLLAMA: return "ollama";
    case NS_AI_LLAMACPP: return "llama.cpp";
    case NS_AI_VLLM: return "vllm";
    case NS_AI_PYTORCH: return "pytorch";
    case NS_AI_ONNX: return "onnxruntime";
    case NS_AI_IMAGE_GEN: return "image-gen";
    case NS_AI_WHISPER: return "whisper";
    case NS_AI_CUDA_OTHER: return "cuda";
    }
    return "unknown";
}

/* ---- probing ---- */

static void add_why(ns_ai_runtime *rt, const char *fmt_port_path, int port) {
    size_t k = strlen(rt->why);
    snprintf(rt->why + k, sizeof rt->why - k, "%s", k ? ", " : "");
    k = strlen(rt->why);
    snprintf(rt->why + k, sizeof rt->why - k, fmt_port_path, port);
}

/* GET base+path as JSON: the object (caller deletes), NULL when there is
 * no JSON object behind a 2xx (or, with any_status, any) answer. */
static cJSON *get_json(const char *base, const char *path, int timeout_ms, bool any_status, long *status_out) {
    char url[256], err[256];
    snprintf(url, sizeof url, "%s%s", base, path);
    long status;
    char *text = NULL;
    size_t len;
    if (ns_http_request("GET", url, NULL, timeout_ms, &status, &text, &len, err, sizeof err) != 0) return NULL;
    if (status_out) *status_out = status;
    cJSON *j = (any_status || (status >= 200 && status < 300)) ? cJSON_ParseWithLength(text, len) : NULL;
    free(text);
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return NULL;
    }
    return j;
}

static const char *jstr(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* /v1/models' data[].id into rt->models (OpenAI's list; llama.cpp, vLLM). */
static bool openai_models(ns_ai_runtime *rt, const char *base, int timeout_ms) {
    cJSON *j = get_json(base, "/v1/models", timeout_ms, false, NULL);
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(j, "data");
    if (!cJSON_IsArray(data)) {
        cJSON_Delete(j);
        return false;
    }
    rt->n_models = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, data) {
        const char *id = jstr(m, "id");
        if (!id || rt->n_models >= NS_AI_MAX_MODELS) continue;
        ns_ai_model *o = &rt->models[rt->n_models++];
        memset(o, 0, sizeof *o);
        snprintf(o->name, sizeof o->name, "%s", id);
        o->size = o->size_vram = -1;
        o->active = -1;
    }
    cJSON_Delete(j);
    return true;
}

/* nstack and Ollama: /api/version, then /api/ps. */
static bool probe_ollama_api(ns_ai_runtime *rt, const char *base, int port, int timeout_ms, bool name_decides) {
    char url[256], err[256];
    snprintf(url, sizeof url, "%s/api/version", base);
    long status;
    char *text = NULL;
    size_t len;
    if (ns_http_request("GET", url, NULL, timeout_ms, &status, &text, &len, err, sizeof err) != 0) return false;
    cJSON *j = status == 200 ? cJSON_ParseWithLength(text, len) : NULL;
    const char *v = jstr(j, "version");
    bool ok = v != NULL;
    if (ok) {
        snprintf(rt->version, sizeof rt->version, "%s", v);
        if (!name_decides) {
            bool nstack = strstr(text, "nstack") != NULL;
            if (!nstack) {
                cJSON *h = get_json(base, "/health", timeout_ms, false, NULL);
                nstack = jstr(h, "status") && jstr(h, "version") &&
                         cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(h, "uptime_s"));
                cJSON_Delete(h);
            }
            rt->kind = nstack ? NS_AI_NSTACK : NS_AI_OLLAMA;
        }
    }
    cJSON_Delete(j);
    free(text);
    if (!ok) return false;
    add_why(rt, "port %d /api/version", port);
    ns_ai_model models[NS_AI_MAX_MODELS];
    int n = 0;
    if (ns_ollama_ps(base, timeout_ms, models, NS_AI_MAX_MODELS, &n, err, sizeof err) == 0) {
        memcpy(rt->models, models, (size_t)n * sizeof models[0]);
        rt->n_models = n;
    }
    return true;
}

/* llama.cpp's server: /health answers {"status": "ok"} (503 while it loads
 * the model), /v1/models lists the one model, /props may carry the build. */
static bool probe_llamacpp(ns_ai_runtime *rt, const char *base, int port, int timeout_ms) {
    long status = 0;
    cJSON *h = get_json(base, "/health", timeout_ms, true, &status);
    bool ok = h && jstr(h, "status") && (status == 200 || status == 503);
    if (!ok) {
        /* older builds answer /health with an error object while loading */
        ok = h && status == 503 && cJSON_GetObjectItemCaseSensitive(h, "error");
    }
    cJSON_Delete(h);
    if (!ok) return false;
    add_why(rt, "port %d /health", port);
    openai_models(rt, base, timeout_ms);
    cJSON *p = get_json(base, "/props", timeout_ms, false, NULL);
    const char *b = jstr(p, "build_info");
    if (b) snprintf(rt->version, sizeof rt->version, "%s", b);
    cJSON_Delete(p);
    return true;
}

/* vLLM: /v1/models, /version, and /metrics for the KV cache and queue. */
static bool probe_vllm(ns_ai_runtime *rt, const char *base, int port, int timeout_ms) {
    if (!openai_models(rt, base, timeout_ms)) return false;
    add_why(rt, "port %d /v1/models", port);
    cJSON *v = get_json(base, "/version", timeout_ms, false, NULL);
    const char *ver = jstr(v, "version");
    if (ver) snprintf(rt->version, sizeof rt->version, "%s", ver);
    cJSON_Delete(v);
    char url[256], err[256];
    snprintf(url, sizeof url, "%s/metrics", base);
    long status;
    char *text = NULL;
    size_t len;
    if (ns_http_request("GET", url, NULL, timeout_ms, &status, &text, &len, err, sizeof err) == 0 && status == 200)
        ns_detect_parse_vllm_metrics(text, len, &rt->kv_cache_usage_pct, &rt->requests_running,
                                     &rt->requests_waiting);
    free(text);
    return true;
}

static bool probe_at(ns_ai_runtime *rt, const char *host, int port, int timeout_ms, bool name_decides) {
    char base[128];
    snprintf(base, sizeof base, "http://%s:%d", host, port);
    bool ok = false;
    switch (rt->kind) {
    case NS_AI_NSTACK:
    case NS_AI_OLLAMA: ok = probe_ollama_api(rt, base, port, timeout_ms, name_decides); break;
    case NS_AI_LLAMACPP: ok = probe_llamacpp(rt, base, port, timeout_ms); break;
    case NS_AI_VLLM: ok = probe_vllm(rt, base, port, timeout_ms); break;
    default:
        /* A process known only by its libraries may still serve an API:
         * the Ollama one (then it is nstack or Ollama), or OpenAI's list. */
        ok = probe_ollama_api(rt, base, port, timeout_ms, false);
        if (!ok && openai_models(rt, base, timeout_ms)) {
            add_why(rt, "port %d /v1/models", port);
            ok = true;
        }
    }
    if (ok) {
        rt->confirmed = true;
        snprintf(rt->api, sizeof rt->api, "%s", base);
    }
    return ok;
}

void ns_detect_probe(ns_ai_runtime *rt, int timeout_ms) {
    for (int i = 0; i < rt->n_ports && !rt->confirmed; i++) probe_at(rt, "127.0.0.1", rt->ports[i], timeout_ms, true);
}

/* ---- the scan ---- */

static int default_port(ns_ai_kind k) {
    switch (k) {
    case NS_AI_NSTACK:
    case NS_AI_OLLAMA: return 11434;
    case NS_AI_LLAMACPP: return 8080;
    case NS_AI_VLLM: return 8000;
    default: return 0;
    }
}

static void user_name(int uid, char *buf, size_t len) {
    if (uid < 0) {
        buf[0] = '\0';
        return;
    }
    struct passwd pw, *res = NULL;
    char tmp[2048];
    if (getpwuid_r((uid_t)uid, &pw, tmp, sizeof tmp, &res) == 0 && res) snprintf(buf, len, "%s", res->pw_name);
    else snprintf(buf, len, "%d", uid);
}

typedef struct {
    int pid;
    int64_t vram;
} pid_vram;

/* Per-pid VRAM summed over the GPUs. *n 0 without NVML. */
static pid_vram *gpu_procs(int *n, bool *have_gpu) {
    *n = 0;
    *have_gpu = false;
    ns_nvml *nv = ns_nvml_open();
    if (!nv) return NULL;
    int ng = ns_nvml_count(nv);
    pid_vram *v = calloc((size_t)(ng > 0 ? ng : 1) * NS_MON_MAX_GPU_PROCS, sizeof *v);
    for (int g = 0; v && g < ng; g++) {
        ns_gpu_reading r;
        if (ns_nvml_read(nv, g, &r) != 0) continue;
        *have_gpu = true;
        for (int i = 0; i < r.n_procs; i++) {
            int j = 0;
            while (j < *n && v[j].pid != r.procs[i].pid) j++;
            if (j == *n) {
                v[(*n)++] = (pid_vram){r.procs[i].pid, 0};
            }
            if (r.procs[i].vram > 0) v[j].vram += r.procs[i].vram;
        }
    }
    ns_nvml_close(nv);
    return v;
}

static int cmp_rt(const void *a, const void *b) {
    const ns_ai_runtime *x = a, *y = b;
    if (x->kind != y->kind) return x->kind < y->kind ? -1 : 1;
    return (x->pid > y->pid) - (x->pid < y->pid);
}

static bool all_digits(const char *s) {
    if (!*s) return false;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s)) return false;
    return true;
}

static void add_port(ns_ai_runtime *rt, char hosts[][48], int port, const char *host) {
    for (int i = 0; i < rt->n_ports; i++)
        if (rt->ports[i] == port) return; /* the same port on tcp and tcp6 */
    if (rt->n_ports >= NS_AI_MAX_PORTS) return;
    snprintf(hosts[rt->n_ports], 48, "%s", host);
    rt->ports[rt->n_ports++] = port;
}

int ns_detect(const ns_detect_options *o, ns_ai_runtime **out, int *n, char *err, size_t errlen) {
    const char *root = o && o->proc_root ? o->proc_root : "/proc";
    int timeout_ms = o && o->timeout_ms > 0 ? o->timeout_ms : 500;
    *out = NULL;
    *n = 0;
    DIR *d = opendir(root);
    if (!d) {
        snprintf(err, errlen, "cannot read %s: %s", root, strerror(errno));
        return -1;
    }
    ns_listen_set socks = {0};
    if (ns_detect_listen_scan(root, &socks) != 0) {
        closedir(d);
        ns_listen_set_free(&socks);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    /* NVML's pids are this machine's: meaningless against a fake tree. */
    int n_gpu = 0;
    bool have_gpu = false;
    pid_vram *gv = strcmp(root, "/proc") == 0 ? gpu_procs(&n_gpu, &have_gpu) : NULL;

    int cap = 16, count = 0;
    ns_ai_runtime *v = malloc((size_t)cap * sizeof *v);
    /* the probe host of each port, parallel to v[i].ports */
    char(*hosts)[NS_AI_MAX_PORTS][48] = malloc((size_t)cap * sizeof *hosts);
    int self = (int)getpid();
    struct dirent *de;
    int rc = 0;
    while (v && hosts && (de = readdir(d))) {
        if (!all_digits(de->d_name)) continue;
        int pid = atoi(de->d_name);
        if (pid == self) continue; /* `nstack ai detect` is no runtime */
        ns_proc_info *p = malloc(sizeof *p);
        if (!p) {
            rc = -1;
            break;
        }
        if (ns_proc_info_read(root, pid, p) != 0) { /* gone meanwhile */
            free(p);
            continue;
        }
        ns_ai_kind kind;
        char why[128];
        int64_t vram = -1;
        for (int i = 0; i < n_gpu; i++)
            if (gv[i].pid == pid) vram = gv[i].vram;
        if (!ns_detect_classify(p, &kind, why, sizeof why)) {
            if (vram < 0) {
                free(p);
                continue;
            }
            kind = NS_AI_CUDA_OTHER;
            snprintf(why, sizeof why, "on the GPU (NVML)");
        }
        if (count == cap) {
            cap *= 2;
            ns_ai_runtime *nv = realloc(v, (size_t)cap * sizeof *nv);
            char(*nh)[NS_AI_MAX_PORTS][48] = nv ? realloc(hosts, (size_t)cap * sizeof *hosts) : NULL;
            if (nv) v = nv;
            if (nh) hosts = nh;
            if (!nv || !nh) {
                free(p);
                rc = -1;
                break;
            }
        }
        ns_ai_runtime *rt = &v[count];
        memset(rt, 0, sizeof *rt);
        rt->kind = kind;
        rt->pid = pid;
        user_name(p->uid, rt->user, sizeof rt->user);
        snprintf(rt->name, sizeof rt->name, "%s", p->comm);
        snprintf(rt->command, sizeof rt->command, "%s", p->cmdline);
        snprintf(rt->why, sizeof rt->why, "%s", why);
        snprintf(rt->env, sizeof rt->env, "%s", p->env);
        rt->rss = p->rss;
        rt->vram = have_gpu ? (vram >= 0 ? vram : 0) : -1;
        rt->kv_cache_usage_pct = -1;
        rt->requests_running = rt->requests_waiting = -1;
        for (int i = 0; i < socks.n; i++)
            if (socks.v[i].pid == pid) add_port(rt, hosts[count], socks.v[i].port, socks.v[i].host);
        if (rt->n_ports == 0) {
            /* Sockets of another user's process cannot be matched: take the
             * port it was told to use, or its default, when something whose
             * owner we cannot see listens there. */
            int hint[3] = {p->cmd_port, kind == NS_AI_OLLAMA ? p->env_port : 0, default_port(kind)};
            for (int h = 0; h < 3 && rt->n_ports == 0; h++) {
                if (hint[h] <= 0) continue;
                for (int i = 0; i < socks.n; i++)
                    if (socks.v[i].pid == 0 && socks.v[i].port == hint[h])
                        add_port(rt, hosts[count], socks.v[i].port, socks.v[i].host);
            }
        }
        free(p);
        count++;
    }
    closedir(d);
    free(gv);
    ns_listen_set_free(&socks);
    if (rc != 0 || !v || !hosts) {
        free(v);
        free(hosts);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (!o || o->probe_apis) {
        for (int r = 0; r < count; r++) {
            ns_ai_runtime *rt = &v[r];
            /* the name decided nstack vs Ollama only when it said one of them */
            bool name_decides = strncmp(rt->why, "name ", 5) == 0;
            for (int i = 0; i < rt->n_ports && !rt->confirmed; i++)
                probe_at(rt, hosts[r][i], rt->ports[i], timeout_ms, name_decides);
        }
    }
    free(hosts);
    qsort(v, (size_t)count, sizeof *v, cmp_rt);
    *out = v;
    *n = count;
    return 0;
}
