/* PLACEHOLDER until the client commands land. */
#include <stdio.h>

#include "cli.h"

#define NOT_YET(fn)                                                                                                   \
    int fn(int argc, char **argv) {                                                                                   \
        (void)argc;                                                                                                   \
        (void)argv;                                                                                                   \
        fprintf(stderr, "nstack: not built yet\n");                                                                   \
        return NS_EXIT_FAIL;                                                                                          \
    }
NOT_YET(cmd_ps)
NOT_YET(cmd_list)
NOT_YET(cmd_show)
NOT_YET(cmd_load)
NOT_YET(cmd_stop)
NOT_YET(cmd_pull)
NOT_YET(cmd_rm)
