/* The avxvnni level: kernels_avx2.c built with -mavxvnni as well. */
#define NS_KERNELS_AVXVNNI 1
#include "kernels_avx2.c"
