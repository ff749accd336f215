/* One reading of the machine's resources, shared by the NVML reader, the
 * alerts and the sampler. Plain data: copied by value into rings and
 * callbacks. A field that could not be read is -1 (GPU fields) so a reader
 * never mistakes "unknown" for "zero". */
#ifndef NS_MONITOR_SAMPLE_H
#define NS_MONITOR_SAMPLE_H

#include <stdint.h>

#define NS_MON_MAX_GPUS 8

#define NS_MON_MAX_GPU_PROCS 16

typedef struct {
    int32_t pid;
    int64_t vram; /* bytes, -1 unknown */
} ns_gpu_process;

typedef struct {
    char name[96];
    int64_t vram_total, vram_used, vram_ours; /* bytes, -1 unknown */
    double util_pct, temp_c, power_w;         /* -1 unknown */
    /* Compute processes on the GPU (one entry per pid, MIG instances added
     * up), the first NS_MON_MAX_GPU_PROCS as NVML lists them; n_procs_total
     * counts them all. */
    int n_procs, n_procs_total;
    ns_gpu_process procs[NS_MON_MAX_GPU_PROCS];
} ns_gpu_reading;

typedef struct {
    int64_t time_ns;                        /* wall clock Unix ns */
    double cpu_system_pct, cpu_process_pct; /* 0..100 of the whole machine */
    int n_cpus;
    int64_t ram_total, ram_used /* total - available */, ram_available, process_rss, mapped_model; /* bytes */
    int n_gpus;
    ns_gpu_reading gpu[NS_MON_MAX_GPUS];
} ns_resource_sample;

#endif
