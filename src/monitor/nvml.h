/* NVIDIA GPUs through NVML, opened with dlopen at run time so the server
 * neither links against the driver nor needs its headers to build: a
 * machine without an NVIDIA driver simply has zero GPUs.
 *
 * The library is "libnvidia-ml.so.1" (the name the driver installs), or
 * $NSTACK_NVML_LIB when set (tests point it at a fake). Any failure to load
 * or initialise means no GPUs and one info log line, never an error. A
 * function the driver lacks, or a call that fails, leaves that field -1.
 *
 * Thread-safe: reads on one handle are serialised by a lock inside it. */
#ifndef NS_MONITOR_NVML_H
#define NS_MONITOR_NVML_H

#include "monitor/sample.h"

typedef struct ns_nvml ns_nvml;

/* NULL = no GPUs (logged once per process at info, then at debug). */
ns_nvml *ns_nvml_open(void);
/* GPUs this handle reads, at most NS_MON_MAX_GPUS; 0 for NULL. */
int ns_nvml_count(ns_nvml *n);
/* Reads GPU `index` now. -1 only for a bad index or NULL handle; failed
 * fields are -1 inside *out. */
int ns_nvml_read(ns_nvml *n, int index, ns_gpu_reading *out);
void ns_nvml_close(ns_nvml *n);

#endif
