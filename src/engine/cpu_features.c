/* CPUID / XGETBV detection and the NSTACK_ISA override (see cpu_features.h). */
#include "cpu_features.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

#include "kernels_x86.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define NS_X86 1
#endif

static ns_cpu_features features;
static pthread_once_t features_once = PTHREAD_ONCE_INIT;

#ifdef NS_X86
static uint64_t read_xcr0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}
#endif

static void detect(void) {
    ns_cpu_features f = {0};
#ifdef NS_X86
    unsigned a, b, c, d;
    f.x86 = true;
    const unsigned max_leaf = __get_cpuid_max(0, NULL);
    if (max_leaf >= 1 && __get_cpuid(1, &a, &b, &c, &d)) {
        const bool osxsave = (c >> 27) & 1;
        f.avx = (c >> 28) & 1;
        f.fma = (c >> 12) & 1;
        f.f16c = (c >> 29) & 1;
        if (osxsave) {
            const uint64_t xcr0 = read_xcr0();
            f.os_ymm = (xcr0 & 0x6) == 0x6;
            f.os_zmm = f.os_ymm && (xcr0 & 0xe0) == 0xe0;
        }
    }
    if (max_leaf >= 7 && __get_cpuid_count(7, 0, &a, &b, &c, &d)) {
        f.avx2 = (b >> 5) & 1;
        f.avx512f = (b >> 16) & 1;
        f.avx512dq = (b >> 17) & 1;
        f.avx512bw = (b >> 30) & 1;
        f.avx512vl = (b >> 31) & 1;
        f.avx512vnni = (c >> 11) & 1;
        const unsigned max_sub = a;
        if (max_sub >= 1 && __get_cpuid_count(7, 1, &a, &b, &c, &d)) f.avx_vnni = (a >> 4) & 1;
    }
#endif
    features = f;
}

const ns_cpu_features *ns_cpu_features_get(void) {
    pthread_once(&features_once, detect);
    return &features;
}

static bool cpu_can(ns_isa level) {
    const ns_cpu_features *f = ns_cpu_features_get();
    const bool avx2 = f->x86 && f->os_ymm && f->avx && f->avx2 && f->fma && f->f16c;
    const bool avx512 = avx2 && f->os_zmm && f->avx512f && f->avx512bw && f->avx512dq && f->avx512vl;
    switch (level) {
    case NS_ISA_SCALAR: return true;
    case NS_ISA_AVX2: return avx2;
    case NS_ISA_AVXVNNI: return avx2 && f->avx_vnni;
    case NS_ISA_AVX512: return avx512;
    case NS_ISA_AVX512VNNI: return avx512 && f->avx512vnni;
    default: return false;
    }
}

static bool built(ns_isa level) {
    switch (level) {
    case NS_ISA_SCALAR: return true;
    case NS_ISA_AVX2: return ns_kernels_avx2_built();
    case NS_ISA_AVXVNNI: return ns_kernels_avxvnni_built();
    case NS_ISA_AVX512: return ns_kernels_avx512_built();
    case NS_ISA_AVX512VNNI: return ns_kernels_avx512vnni_built();
    default: return false;
    }
}

bool ns_isa_supported(ns_isa level) {
    if ((unsigned)level >= NS_ISA_COUNT) return false;
    return cpu_can(level) && built(level);
}

ns_isa ns_isa_clamp(ns_isa requested) {
    int l = (int)requested;
    if (l >= NS_ISA_COUNT) l = NS_ISA_COUNT - 1;
    for (; l > 0; l--)
        if (ns_isa_supported((ns_isa)l)) return (ns_isa)l;
    return NS_ISA_SCALAR;
}

ns_isa ns_isa_detected(void) { return ns_isa_clamp((ns_isa)(NS_ISA_COUNT - 1)); }

static const char *const names[NS_ISA_COUNT] = {"scalar", "avx2", "avxvnni", "avx512", "avx512vnni"};

const char *ns_isa_name(ns_isa level) {
    if ((unsigned)level >= NS_ISA_COUNT) return "?";
    return names[level];
}

bool ns_isa_parse(const char *s, ns_isa *out) {
    if (s == NULL) return false;
    for (int l = 0; l < NS_ISA_COUNT; l++) {
        if (strcasecmp(s, names[l]) == 0) {
            *out = (ns_isa)l;
            return true;
        }
    }
    return false;
}

static ns_isa active;
static pthread_once_t active_once = PTHREAD_ONCE_INIT;

static void choose_active(void) {
    ns_isa level = ns_isa_detected();
    const char *env = getenv("NSTACK_ISA");
    if (env != NULL && env[0] != '\0') {
        ns_isa req;
        if (ns_isa_parse(env, &req)) {
            if (req < level) level = ns_isa_clamp(req);
        } else {
            fprintf(stderr,
                    "nstack: NSTACK_ISA=%s is not one of scalar, avx2, avxvnni, avx512, avx512vnni; "
                    "using %s\n",
                    env, ns_isa_name(level));
        }
    }
    active = level;
}

ns_isa ns_isa_active(void) {
    pthread_once(&active_once, choose_active);
    return active;
}

const char *ns_isa_active_name(void) { return ns_isa_name(ns_isa_active()); }
