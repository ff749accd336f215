/* Not written yet (issue #9). */
#include <stdio.h>

#include "ai.h"
#include "cli.h"

int cmd_doctor(int argc, char **argv) {
    (void)argc;
    fprintf(stderr, "nstack: %s is not available yet\n", argv[0]);
    return NS_EXIT_FAIL;
}
