/* Not written yet (issue #9). */
#include <stdio.h>

#include "ai.h"
#include "cli.h"

int ai_status(int argc, char **argv) {
    (void)argc;
    fprintf(stderr, "nstack: %s is not available yet\n", argv[0]);
    return NS_EXIT_FAIL;
}

int ai_detect(int argc, char **argv) {
    (void)argc;
    fprintf(stderr, "nstack: %s is not available yet\n", argv[0]);
    return NS_EXIT_FAIL;
}

int ai_models(int argc, char **argv) {
    (void)argc;
    fprintf(stderr, "nstack: %s is not available yet\n", argv[0]);
    return NS_EXIT_FAIL;
}

int ai_unload(int argc, char **argv) {
    (void)argc;
    fprintf(stderr, "nstack: %s is not available yet\n", argv[0]);
    return NS_EXIT_FAIL;
}

int ai_preload(int argc, char **argv) {
    (void)argc;
    fprintf(stderr, "nstack: %s is not available yet\n", argv[0]);
    return NS_EXIT_FAIL;
}

int vram_status(int argc, char **argv) {
    (void)argc;
    fprintf(stderr, "nstack: %s is not available yet\n", argv[0]);
    return NS_EXIT_FAIL;
}

int vram_clear(int argc, char **argv) {
    (void)argc;
    fprintf(stderr, "nstack: %s is not available yet\n", argv[0]);
    return NS_EXIT_FAIL;
}
