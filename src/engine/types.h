/* Tensor element types as numbered in GGUF files, with their block geometry. */
#ifndef NS_TYPES_H
#define NS_TYPES_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

typedef enum {
    NS_TYPE_F32 = 0,
    NS_TYPE_F16 = 1,
    NS_TYPE_Q4_0 = 2,
    NS_TYPE_Q4_1 = 3,
    NS_TYPE_Q5_0 = 6,
    NS_TYPE_Q5_1 = 7,
    NS_TYPE_Q8_0 = 8,
    NS_TYPE_Q8_1 = 9,
    NS_TYPE_Q2_K = 10,
    NS_TYPE_Q3_K = 11,
    NS_TYPE_Q4_K = 12,
    NS_TYPE_Q5_K = 13,
    NS_TYPE_Q6_K = 14,
    NS_TYPE_Q8_K = 15,
    NS_TYPE_IQ2_XXS = 16,
    NS_TYPE_IQ2_XS = 17,
    NS_TYPE_IQ3_XXS = 18,
    NS_TYPE_IQ1_S = 19,
    NS_TYPE_IQ4_NL = 20,
    NS_TYPE_IQ3_S = 21,
    NS_TYPE_IQ2_S = 22,
    NS_TYPE_IQ4_XS = 23,
    NS_TYPE_I8 = 24,
    NS_TYPE_I16 = 25,
    NS_TYPE_I32 = 26,
    NS_TYPE_I64 = 27,
    NS_TYPE_F64 = 28,
    NS_TYPE_IQ1_M = 29,
    NS_TYPE_BF16 = 30,
    NS_TYPE_TQ1_0 = 34,
    NS_TYPE_TQ2_0 = 35,
    NS_TYPE_COUNT = 36
} ns_type;

typedef struct {
    const char *name;     /* NULL: no such type id */
    uint32_t block_size;  /* elements per block */
    uint32_t type_size;   /* bytes per block */
    bool engine_supported; /* the engine can compute with it */
} ns_type_info;

/* NULL when id is not a type GGUF defines. */
const ns_type_info *ns_type_get(uint32_t id);
const char *ns_type_name(uint32_t id);

/* Bytes of a row of n elements; 0 when n is not a whole number of blocks. */
size_t ns_row_size(ns_type t, int64_t n);

/* IEEE half and bfloat16 conversions, bit-exact with the file formats. */
float ns_fp16_to_fp32(uint16_t h);
uint16_t ns_fp32_to_fp16(float f);
float ns_bf16_to_fp32(uint16_t h);
uint16_t ns_fp32_to_bf16(float f);

#endif
