/* NVML through dlopen (nvml.h). The few types below follow NVML's
 * documented C ABI (nvml.h from the CUDA toolkit); only the fields and
 * functions the monitor reads are declared. */
#include "monitor/nvml.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/log.h"

typedef int nv_return;          /* nvmlReturn_t */
typedef struct nv_device *nv_device; /* nvmlDevice_t, opaque */

#define NV_SUCCESS 0
#define NV_ERROR_INSUFFICIENT_SIZE 7
#define NV_TEMPERATURE_GPU 0
/* usedGpuMemory when the driver cannot tell (e.g. under WDDM). */
#define NV_VALUE_NOT_AVAILABLE 0xffffffffffffffffull

typedef struct { /* nvmlMemory_t */
    unsigned long long total, free, used;
} nv_memory;

typedef struct { /* nvmlUtilization_t */
    unsigned int gpu, memory;
} nv_utilization;

typedef struct { /* nvmlProcessInfo_t as taken by the _v2 and _v3 calls */
    unsigned int pid;
    unsigned long long usedGpuMemory;
    unsigned int gpuInstanceId, computeInstanceId;
} nv_process;

typedef nv_return (*fn_void)(void);
typedef nv_return (*fn_count)(unsigned int *);
typedef nv_return (*fn_handle)(unsigned int, nv_device *);
typedef nv_return (*fn_name)(nv_device, char *, unsigned int);
typedef nv_return (*fn_memory)(nv_device, nv_memory *);
typedef nv_return (*fn_util)(nv_device, nv_utilization *);
typedef nv_return (*fn_temp)(nv_device, int, unsigned int *);
typedef nv_return (*fn_power)(nv_device, unsigned int *);
typedef nv_return (*fn_procs)(nv_device, unsigned int *, nv_process *);

/* Processes asked for on the stack; a GPU with more is asked again with a
 * buffer of the size the driver reports (rare: a shared training box). */
#define PROCS_ON_STACK 64

struct ns_nvml {
    void *lib;
    pthread_mutex_t lock;
    fn_void shutdown;
    fn_memory memory;
    fn_util util;
    fn_temp temp;
    fn_power power;
    fn_procs procs;
    int n;
    nv_device dev[NS_MON_MAX_GPUS];
    char name[NS_MON_MAX_GPUS][96];
};

static atomic_bool logged_off;

/* "no NVML" is worth one info line per process: the read-now path opens
 * NVML before every model load and would repeat it. */
static void log_off(const char *lib, const char *reason) {
    bool was = atomic_exchange(&logged_off, true);
    ns_log(was ? NS_LOG_DEBUG : NS_LOG_INFO, "monitor", "no NVML: GPU monitoring off", "lib=%s reason=\"%s\"",
           lib, reason);
}

/* dlsym returns void *; copying the bytes keeps the object-to-function
 * pointer conversion (which POSIX guarantees) out of ISO C's way. */
#define LOAD(lib, dst, name)                  \
    do {                                      \
        void *p_ = dlsym(lib, name);          \
        memcpy(&(dst), &p_, sizeof(dst));     \
    } while (0)

ns_nvml *ns_nvml_open(void) {
    const char *path = getenv("NSTACK_NVML_LIB");
    if (!path || !*path) path = "libnvidia-ml.so.1";
    char reason[256];

    void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        const char *e = dlerror();
        snprintf(reason, sizeof reason, "%s", e ? e : "dlopen failed");
        /* The reason goes inside a quoted value: no quotes in it. */
        for (char *q = reason; *q; q++)
            if (*q == '"') *q = '\'';
        log_off(path, reason);
        return NULL;
    }
    fn_void init = NULL, shutdown = NULL;
    fn_count count = NULL;
    fn_handle handle = NULL;
    LOAD(lib, init, "nvmlInit_v2");
    LOAD(lib, shutdown, "nvmlShutdown");
    LOAD(lib, count, "nvmlDeviceGetCount_v2");
    LOAD(lib, handle, "nvmlDeviceGetHandleByIndex_v2");
    if (!init || !shutdown || !count || !handle) {
        log_off(path, "library lacks nvmlInit_v2/nvmlDeviceGetCount_v2/nvmlDeviceGetHandleByIndex_v2");
        dlclose(lib);
        return NULL;
    }
    nv_return rc = init();
    if (rc != NV_SUCCESS) {
        snprintf(reason, sizeof reason, "nvmlInit_v2 returned %d", rc);
        log_off(path, reason);
        dlclose(lib);
        return NULL;
    }
    unsigned int n_dev = 0;
    rc = count(&n_dev);
    if (rc != NV_SUCCESS || n_dev == 0) {
        if (rc != NV_SUCCESS)
            snprintf(reason, sizeof reason, "nvmlDeviceGetCount_v2 returned %d", rc);
        else
            snprintf(reason, sizeof reason, "no devices");
        log_off(path, reason);
        shutdown();
        dlclose(lib);
        return NULL;
    }

    ns_nvml *n = calloc(1, sizeof *n);
    if (!n) {
        shutdown();
        dlclose(lib);
        return NULL;
    }
    n->lib = lib;
    n->shutdown = shutdown;
    pthread_mutex_init(&n->lock, NULL);
    fn_name name = NULL;
    LOAD(lib, name, "nvmlDeviceGetName");
    LOAD(lib, n->memory, "nvmlDeviceGetMemoryInfo");
    LOAD(lib, n->util, "nvmlDeviceGetUtilizationRates");
    LOAD(lib, n->temp, "nvmlDeviceGetTemperature");
    LOAD(lib, n->power, "nvmlDeviceGetPowerUsage");
    /* _v3 is the current entry point; _v2 takes the same struct on older
     * drivers. The unversioned one takes a smaller struct: not used. */
    LOAD(lib, n->procs, "nvmlDeviceGetComputeRunningProcesses_v3");
    if (!n->procs) LOAD(lib, n->procs, "nvmlDeviceGetComputeRunningProcesses_v2");

    /* Handles and names do not change while NVML is initialised: fetched
     * once. A GPU whose handle fails (lost, or not ours to see) is skipped. */
    for (unsigned int i = 0; i < n_dev && n->n < NS_MON_MAX_GPUS; i++) {
        nv_device d;
        if (handle(i, &d) != NV_SUCCESS) continue;
        n->dev[n->n] = d;
        char *nm = n->name[n->n];
        if (!name || name(d, nm, sizeof n->name[0]) != NV_SUCCESS) snprintf(nm, sizeof n->name[0], "GPU %u", i);
        nm[sizeof n->name[0] - 1] = '\0';
        n->n++;
    }
    ns_log_info("monitor", "NVML GPU monitoring on", "lib=%s gpus=%d first=\"%s\"", path, n->n,
                n->n > 0 ? n->name[0] : "");
    return n;
}

int ns_nvml_count(ns_nvml *n) {
    return n ? n->n : 0;
}

/* Adds entry i of the NVML process list to out->procs; a pid listed before
 * (one entry per MIG instance) adds its bytes to that pid's entry. */
static void add_process(ns_gpu_reading *out, const nv_process *list, unsigned int i) {
    int64_t bytes = list[i].usedGpuMemory == NV_VALUE_NOT_AVAILABLE ? -1 : (int64_t)list[i].usedGpuMemory;
    for (unsigned int j = 0; j < i; j++) {
        if (list[j].pid != list[i].pid) continue;
        for (int k = 0; k < out->n_procs; k++)
            if (out->procs[k].pid == (int32_t)list[i].pid)
                out->procs[k].vram = out->procs[k].vram < 0 || bytes < 0 ? -1 : out->procs[k].vram + bytes;
        return;
    }
    out->n_procs_total++;
    if (out->n_procs < NS_MON_MAX_GPU_PROCS) out->procs[out->n_procs++] = (ns_gpu_process){(int32_t)list[i].pid, bytes};
}

/* The GPU's compute processes into out->procs, and the bytes this process
 * uses into out->vram_ours (-1 unknown). */
static void read_processes(ns_nvml *n, nv_device d, ns_gpu_reading *out) {
    out->vram_ours = -1;
    if (!n->procs) return;
    nv_process stack[PROCS_ON_STACK];
    nv_process *list = stack;
    unsigned int count = PROCS_ON_STACK;
    nv_return rc = n->procs(d, &count, list);
    if (rc == NV_ERROR_INSUFFICIENT_SIZE) {
        /* More processes than fit: count now holds the number; leave room
         * for a few that start in between. */
        unsigned int want = count + 16;
        list = malloc(want * sizeof *list);
        if (!list) return;
        count = want;
        rc = n->procs(d, &count, list);
    }
    if (rc == NV_SUCCESS) {
        unsigned int me = (unsigned int)getpid();
        /* one entry per MIG instance a process uses: they add up */
        for (unsigned int i = 0; i < count; i++) add_process(out, list, i);
        out->vram_ours = 0;
        for (unsigned int i = 0; i < count; i++) {
            if (list[i].pid != me) continue;
            if (list[i].usedGpuMemory == NV_VALUE_NOT_AVAILABLE) {
                out->vram_ours = -1;
                break;
            }
            out->vram_ours += (int64_t)list[i].usedGpuMemory;
        }
    }
    if (list != stack) free(list);
}

int ns_nvml_read(ns_nvml *n, int index, ns_gpu_reading *out) {
    if (!n || index < 0 || index >= n->n) return -1;
    nv_device d = n->dev[index];
    memset(out, 0, sizeof *out);
    memcpy(out->name, n->name[index], sizeof out->name);
    out->vram_total = out->vram_used = out->vram_ours = -1;
    out->util_pct = out->temp_c = out->power_w = -1;

    pthread_mutex_lock(&n->lock);
    nv_memory mem;
    if (n->memory && n->memory(d, &mem) == NV_SUCCESS) {
        out->vram_total = (int64_t)mem.total;
        out->vram_used = (int64_t)mem.used;
    }
    nv_utilization u;
    if (n->util && n->util(d, &u) == NV_SUCCESS) out->util_pct = u.gpu;
    unsigned int t;
    if (n->temp && n->temp(d, NV_TEMPERATURE_GPU, &t) == NV_SUCCESS) out->temp_c = t;
    unsigned int mw;
    if (n->power && n->power(d, &mw) == NV_SUCCESS) out->power_w = mw / 1000.0;
    read_processes(n, d, out);
    pthread_mutex_unlock(&n->lock);
    return 0;
}

void ns_nvml_close(ns_nvml *n) {
    if (!n) return;
    /* nvmlInit/nvmlShutdown are reference-counted by NVML, so another
     * open handle (the sampler's, a read-now one) stays valid. */
    n->shutdown();
    dlclose(n->lib);
    pthread_mutex_destroy(&n->lock);
    free(n);
}
