/* PLACEHOLDER until the server lands: replaced by the real `nstack serve`. */
#include <stdio.h>

#include "cli.h"

int cmd_serve(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "nstack: serve is not built yet\n");
    return NS_EXIT_FAIL;
}
