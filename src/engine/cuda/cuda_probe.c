/* ns_cuda_available: the device count asked once per process, and the one
 * info line when the engine will stay on the CPU. Plain C, built with or
 * without CUDA (the stub answers 0 with "not built with CUDA"). */
#include "cuda_backend.h"

#include <pthread.h>
#include <stdio.h>

#include "util/log.h"

static pthread_once_t probe_once = PTHREAD_ONCE_INIT;
static int probe_count;
static char probe_why[256];

static void probe(void) {
    probe_count = ns_cuda_device_count(probe_why, sizeof probe_why);
    if (probe_count < 1)
        ns_log_info("cuda", "no CUDA device: running on the CPU", "reason=\"%s\"", probe_why);
    else
        ns_log_debug("cuda", "CUDA devices found", "count=%d build=\"%s\"", probe_count, ns_cuda_build_info());
}

int ns_cuda_available(char *why, size_t whylen) {
    pthread_once(&probe_once, probe);
    if (why && whylen) snprintf(why, whylen, "%s", probe_why);
    return probe_count;
}
