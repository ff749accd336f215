/* libFuzzer harness for the GGUF reader: any input must either be refused
 * with a message or give a structure whose every part can be read. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gguf_walk.h"
#include "nstack/gguf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[256];
    err[0] = 'x';
    ns_gguf *g = ns_gguf_parse(data, size, err, sizeof err);
    if (!g) {
        /* a failure always says why */
        if (err[0] == 0 || memchr(err, 0, sizeof err) == NULL) abort();
        return 0;
    }
    if (g->base != data || g->size != size) abort();
    volatile unsigned sink = ns_gguf_walk(g);
    (void)sink;
    ns_gguf_close(g);
    return 0;
}
