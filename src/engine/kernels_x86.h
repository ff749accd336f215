/* The x86 kernel levels, each in its own file built with its own -m flags
 * (kernels_avx2.c, kernels_avxvnni.c, kernels_avx512.c,
 * kernels_avx512vnni.c). A file built without its instruction set (another
 * architecture, an old compiler) compiles to stubs whose _built() is false.
 *
 * ns_kernels_<level>(tab) overwrites the entries of tab (indexed by ns_type,
 * already holding the level below) that this level implements. */
#ifndef NS_KERNELS_X86_H
#define NS_KERNELS_X86_H

#include <stdbool.h>

#include "quant.h"

bool ns_kernels_avx2_built(void);
bool ns_kernels_avxvnni_built(void);
bool ns_kernels_avx512_built(void);
bool ns_kernels_avx512vnni_built(void);

void ns_kernels_avx2(ns_type_kernels *tab);
void ns_kernels_avxvnni(ns_type_kernels *tab);
void ns_kernels_avx512(ns_type_kernels *tab);
void ns_kernels_avx512vnni(ns_type_kernels *tab);

#endif
