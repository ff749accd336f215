/* The avx512vnni level: kernels_avx512.c built with -mavx512vnni as well. */
#define NS_KERNELS_AVX512VNNI 1
#include "kernels_avx512.c"
