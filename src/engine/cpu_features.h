/* What the CPU can run, and which kernel level the engine uses.
 *
 * Levels are ordered; a level's kernel table is the level below it with some
 * entries replaced, so every level computes every type:
 *   scalar      portable C, the reference path
 *   avx2        AVX2 + FMA + F16C (Haswell, Zen 1 and later)
 *   avxvnni     avx2 plus the VEX-encoded VNNI dot product (Alder Lake, Zen 5)
 *   avx512      AVX-512 F/BW/DQ/VL on top of avx2 (Skylake-X, Zen 4)
 *   avx512vnni  avx512 plus AVX512_VNNI (Ice Lake, Sapphire Rapids, Zen 4/5)
 * A level is "supported" when the CPU and the operating system (XSAVE state)
 * allow it and the build contains it. The active level is the best supported
 * one, lowered (never raised) by the environment variable
 * NSTACK_ISA=scalar|avx2|avxvnni|avx512|avx512vnni: the active level is then
 * the best supported level not above the requested one. */
#ifndef NS_CPU_FEATURES_H
#define NS_CPU_FEATURES_H

#include <stdbool.h>

typedef enum {
    NS_ISA_SCALAR = 0,
    NS_ISA_AVX2 = 1,
    NS_ISA_AVXVNNI = 2,
    NS_ISA_AVX512 = 3,
    NS_ISA_AVX512VNNI = 4,
    NS_ISA_COUNT = 5
} ns_isa;

typedef struct {
    bool x86;        /* built for and running on x86-64 */
    bool os_ymm;     /* the OS saves YMM state (XCR0 bits 1-2) */
    bool os_zmm;     /* the OS saves opmask and ZMM state (XCR0 bits 5-7) */
    bool avx, avx2, fma, f16c;
    bool avx512f, avx512bw, avx512dq, avx512vl, avx512vnni;
    bool avx_vnni;
} ns_cpu_features;

/* Detected once (thread-safe). */
const ns_cpu_features *ns_cpu_features_get(void);

/* Whether this CPU, OS and build can run a level. */
bool ns_isa_supported(ns_isa level);
/* The best supported level. */
ns_isa ns_isa_detected(void);
/* The level the kernels use: detected, lowered by NSTACK_ISA. Fixed at first
 * call. */
ns_isa ns_isa_active(void);
/* "scalar", "avx2", ...; "?" for an out-of-range value. */
const char *ns_isa_name(ns_isa level);
const char *ns_isa_active_name(void);
/* Parses a level name (case-insensitive); false if unknown. */
bool ns_isa_parse(const char *s, ns_isa *out);
/* The best supported level not above `requested`. */
ns_isa ns_isa_clamp(ns_isa requested);

#endif
