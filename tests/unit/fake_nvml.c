/* A stand-in for libnvidia-ml.so.1, loaded by test_monitor through
 * NSTACK_NVML_LIB. It exports the NVML entry points the monitor uses, with
 * the documented signatures, and reports two GPUs with fixed values:
 *
 *   GPU 0 "Fake GPU 0": 16 GiB total, 4 GiB used, 37 % busy, 61 C, 123.456 W;
 *         processes: pid 1 (1 GiB) and the caller (512 MiB).
 *   GPU 1 "Fake GPU 1": 8 GiB total, 7 GiB used, 90 % busy, temperature not
 *         supported, 250 W; 70 other processes and the caller twice (two MIG
 *         instances, 100 + 28 MiB), more than fit a 64-entry buffer.
 *
 * The _v2 process call fails, so a reader that picks it over _v3 sees no
 * per-process VRAM. FAKE_NVML_FAIL_INIT=1 makes nvmlInit_v2 fail. The
 * fake_nvml_* counters let the test check init/shutdown pairs. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SUCCESS 0
#define ERROR_UNINITIALIZED 1
#define ERROR_INVALID_ARGUMENT 2
#define ERROR_NOT_SUPPORTED 3
#define ERROR_INSUFFICIENT_SIZE 7
#define ERROR_UNKNOWN 999

#define GIB (1024ull * 1024 * 1024)
#define MIB (1024ull * 1024)

typedef struct {
    unsigned long long total, free, used;
} memory;
typedef struct {
    unsigned int gpu, memory;
} utilization;
typedef struct {
    unsigned int pid;
    unsigned long long usedGpuMemory;
    unsigned int gpuInstanceId, computeInstanceId;
} process;

/* A device handle is a pointer to one of these. */
typedef struct {
    int index;
} device;

static device devices[2] = {{0}, {1}};
static int inits, shutdowns, live;

int fake_nvml_inits(void);
int fake_nvml_shutdowns(void);
int nvmlInit_v2(void);
int nvmlShutdown(void);
int nvmlDeviceGetCount_v2(unsigned int *count);
int nvmlDeviceGetHandleByIndex_v2(unsigned int index, device **dev);
int nvmlDeviceGetName(device *dev, char *name, unsigned int length);
int nvmlDeviceGetMemoryInfo(device *dev, memory *mem);
int nvmlDeviceGetUtilizationRates(device *dev, utilization *u);
int nvmlDeviceGetTemperature(device *dev, int sensor, unsigned int *temp);
int nvmlDeviceGetPowerUsage(device *dev, unsigned int *mw);
int nvmlDeviceGetComputeRunningProcesses_v3(device *dev, unsigned int *count, process *infos);
int nvmlDeviceGetComputeRunningProcesses_v2(device *dev, unsigned int *count, process *infos);

int fake_nvml_inits(void) {
    return inits;
}

int fake_nvml_shutdowns(void) {
    return shutdowns;
}

int nvmlInit_v2(void) {
    const char *fail = getenv("FAKE_NVML_FAIL_INIT");
    if (fail && strcmp(fail, "1") == 0) return ERROR_UNKNOWN;
    inits++;
    live++;
    return SUCCESS;
}

int nvmlShutdown(void) {
    if (live == 0) return ERROR_UNINITIALIZED;
    shutdowns++;
    live--;
    return SUCCESS;
}

int nvmlDeviceGetCount_v2(unsigned int *count) {
    if (live == 0) return ERROR_UNINITIALIZED;
    *count = 2;
    return SUCCESS;
}

int nvmlDeviceGetHandleByIndex_v2(unsigned int index, device **dev) {
    if (live == 0) return ERROR_UNINITIALIZED;
    if (index >= 2) return ERROR_INVALID_ARGUMENT;
    *dev = &devices[index];
    return SUCCESS;
}

int nvmlDeviceGetName(device *dev, char *name, unsigned int length) {
    const char *n = dev->index == 0 ? "Fake GPU 0" : "Fake GPU 1";
    if (length < strlen(n) + 1) return ERROR_INSUFFICIENT_SIZE;
    strcpy(name, n);
    return SUCCESS;
}

int nvmlDeviceGetMemoryInfo(device *dev, memory *mem) {
    mem->total = dev->index == 0 ? 16 * GIB : 8 * GIB;
    mem->used = dev->index == 0 ? 4 * GIB : 7 * GIB;
    mem->free = mem->total - mem->used;
    return SUCCESS;
}

int nvmlDeviceGetUtilizationRates(device *dev, utilization *u) {
    u->gpu = dev->index == 0 ? 37 : 90;
    u->memory = 10;
    return SUCCESS;
}

int nvmlDeviceGetTemperature(device *dev, int sensor, unsigned int *temp) {
    if (sensor != 0) return ERROR_INVALID_ARGUMENT;
    if (dev->index == 1) return ERROR_NOT_SUPPORTED;
    *temp = 61;
    return SUCCESS;
}

int nvmlDeviceGetPowerUsage(device *dev, unsigned int *mw) {
    *mw = dev->index == 0 ? 123456 : 250000;
    return SUCCESS;
}

/* NVML's contract: a buffer too small gets INSUFFICIENT_SIZE and *count
 * set to the number needed. */
static int put(unsigned int *count, process *infos, const process *list, unsigned int n) {
    if (*count < n) {
        *count = n;
        return ERROR_INSUFFICIENT_SIZE;
    }
    memcpy(infos, list, n * sizeof *list);
    *count = n;
    return SUCCESS;
}

int nvmlDeviceGetComputeRunningProcesses_v3(device *dev, unsigned int *count, process *infos) {
    unsigned int me = (unsigned int)getpid();
    if (dev->index == 0) {
        process list[2] = {{1, 1 * GIB, 0, 0}, {me, 512 * MIB, 0, 0}};
        return put(count, infos, list, 2);
    }
    process list[72];
    for (unsigned int i = 0; i < 70; i++) list[i] = (process){100000 + i, 1 * MIB, 0, 0};
    list[70] = (process){me, 100 * MIB, 1, 0};
    list[71] = (process){me, 28 * MIB, 2, 0};
    return put(count, infos, list, 72);
}

int nvmlDeviceGetComputeRunningProcesses_v2(device *dev, unsigned int *count, process *infos) {
    return ERROR_UNKNOWN;
}
