/* One reading of the machine's resources, shared by the NVML reader, the
 * alerts and the sampler. Plain data: copied by value into rings and
 * callbacks. A field that could not be read is -1 (GPU fields) so a reader
 * never mistakes "unknown" for "zero". */
#ifndef NS_MONITOR_SAMPLE_H
#define NS_MONITOR_SAMPLE_H

#include <stdint.h>

#define NS_MON_MAX_GPUS 8

typedef struct {
    char name[96];
    int64_t vram_total, vram_used, vram_ours; /* bytes, -1 unknown */
    double util_pct, temp_c, power_w;         /* -1 unknown */
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
