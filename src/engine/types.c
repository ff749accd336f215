#include "types.h"

#include <string.h>

static const ns_type_info type_table[NS_TYPE_COUNT] = {
    [NS_TYPE_F32] = {"F32", 1, 4, true},
    [NS_TYPE_F16] = {"F16", 1, 2, true},
    [NS_TYPE_Q4_0] = {"Q4_0", 32, 18, true},
    [NS_TYPE_Q4_1] = {"Q4_1", 32, 20, true},
    [NS_TYPE_Q5_0] = {"Q5_0", 32, 22, true},
    [NS_TYPE_Q5_1] = {"Q5_1", 32, 24, true},
    [NS_TYPE_Q8_0] = {"Q8_0", 32, 34, true},
    [NS_TYPE_Q8_1] = {"Q8_1", 32, 36, false},
    [NS_TYPE_Q2_K] = {"Q2_K", 256, 84, true},
    [NS_TYPE_Q3_K] = {"Q3_K", 256, 110, true},
    [NS_TYPE_Q4_K] = {"Q4_K", 256, 144, true},
    [NS_TYPE_Q5_K] = {"Q5_K", 256, 176, true},
    [NS_TYPE_Q6_K] = {"Q6_K", 256, 210, true},
    [NS_TYPE_Q8_K] = {"Q8_K", 256, 292, false},
    [NS_TYPE_IQ2_XXS] = {"IQ2_XXS", 256, 66, false},
    [NS_TYPE_IQ2_XS] = {"IQ2_XS", 256, 74, false},
    [NS_TYPE_IQ3_XXS] = {"IQ3_XXS", 256, 98, false},
    [NS_TYPE_IQ1_S] = {"IQ1_S", 256, 50, false},
    [NS_TYPE_IQ4_NL] = {"IQ4_NL", 32, 18, false},
    [NS_TYPE_IQ3_S] = {"IQ3_S", 256, 110, false},
    [NS_TYPE_IQ2_S] = {"IQ2_S", 256, 82, false},
    [NS_TYPE_IQ4_XS] = {"IQ4_XS", 256, 136, false},
    [NS_TYPE_I8] = {"I8", 1, 1, false},
    [NS_TYPE_I16] = {"I16", 1, 2, false},
    [NS_TYPE_I32] = {"I32", 1, 4, false},
    [NS_TYPE_I64] = {"I64", 1, 8, false},
    [NS_TYPE_F64] = {"F64", 1, 8, false},
    [NS_TYPE_IQ1_M] = {"IQ1_M", 256, 56, false},
    [NS_TYPE_BF16] = {"BF16", 1, 2, true},
    [NS_TYPE_TQ1_0] = {"TQ1_0", 256, 54, false},
    [NS_TYPE_TQ2_0] = {"TQ2_0", 256, 66, false},
};

const ns_type_info *ns_type_get(uint32_t id) {
    if (id >= NS_TYPE_COUNT || type_table[id].name == NULL) return NULL;
    return &type_table[id];
}

const char *ns_type_name(uint32_t id) {
    const ns_type_info *ti = ns_type_get(id);
    return ti ? ti->name : "unknown";
}

size_t ns_row_size(ns_type t, int64_t n) {
    const ns_type_info *ti = ns_type_get((uint32_t)t);
    if (!ti || n < 0 || n % ti->block_size != 0) return 0;
    return (size_t)(n / ti->block_size) * ti->type_size;
}

static uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

float ns_fp16_to_fp32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t mant = h & 0x3ff;
    if (exp == 0) {
        if (mant == 0) return bits_f32(sign);
        /* subnormal: value is mant * 2^-24 */
        float v = (float)mant * (1.0f / 16777216.0f);
        return sign ? -v : v;
    }
    if (exp == 31) return bits_f32(sign | 0x7f800000u | (mant << 13));
    return bits_f32(sign | ((exp + 112) << 23) | (mant << 13));
}

uint16_t ns_fp32_to_fp16(float f) {
    /* round to nearest even, with overflow to infinity and NaN kept quiet */
    uint32_t x = f32_bits(f);
    uint32_t sign = (x >> 16) & 0x8000;
    uint32_t absx = x & 0x7fffffff;
    if (absx > 0x7f800000u) return (uint16_t)(sign | 0x7e00);
    if (absx >= 0x477ff000u) return (uint16_t)(sign | 0x7c00); /* rounds to >= 65520 */
    if (absx < 0x38800000u) {
        /* result is subnormal or zero: scale so the integer part is the mantissa */
        float a = bits_f32(absx);
        float scaled = a * 16777216.0f; /* 2^24 */
        uint32_t m = (uint32_t)scaled;
        float rem = scaled - (float)m;
        if (rem > 0.5f || (rem == 0.5f && (m & 1))) m++;
        return (uint16_t)(sign | m);
    }
    uint32_t e = ((absx >> 23) - 112) << 10;
    uint32_t m = (absx >> 13) & 0x3ff;
    uint32_t rest = absx & 0x1fff;
    uint32_t h = e | m;
    if (rest > 0x1000 || (rest == 0x1000 && (h & 1))) h++;
    return (uint16_t)(sign | h);
}

float ns_bf16_to_fp32(uint16_t h) { return bits_f32((uint32_t)h << 16); }

uint16_t ns_fp32_to_bf16(float f) {
    uint32_t x = f32_bits(f);
    if ((x & 0x7fffffff) > 0x7f800000u) return (uint16_t)((x >> 16) | 64);
    return (uint16_t)((x + (0x7fff + ((x >> 16) & 1))) >> 16);
}
