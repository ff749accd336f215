/* nstack tokenize: the ids of a text as a JSON array. Needs only the
 * vocabulary, so vocabulary-only GGUF files work. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "nstack/gguf.h"
#include "nstack/tokenizer.h"

int cmd_tokenize(int argc, char **argv) {
    const char *path = NULL, *text = NULL;
    bool bos = true, special = true;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--no-bos") == 0) bos = false;
        else if (strcmp(argv[i], "--no-special") == 0) special = false;
        else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            printf("usage: nstack tokenize MODEL.gguf TEXT [--no-bos] [--no-special]\n");
            return NS_EXIT_OK;
        } else if (argv[i][0] == '-' && argv[i][1] == '-' && !path) {
            fprintf(stderr, "nstack tokenize: unknown option '%s'\n", argv[i]);
            return NS_EXIT_USAGE;
        } else if (!path) path = argv[i];
        else if (!text) text = argv[i];
        else {
            fprintf(stderr, "nstack tokenize: unexpected argument '%s'\n", argv[i]);
            return NS_EXIT_USAGE;
        }
    }
    if (!path || !text) {
        fprintf(stderr, "usage: nstack tokenize MODEL.gguf TEXT [--no-bos] [--no-special]\n");
        return NS_EXIT_USAGE;
    }
    char err[512];
    ns_gguf *g = ns_gguf_open(path, err, sizeof err);
    if (!g) {
        fprintf(stderr, "nstack: %s\n", err);
        return NS_EXIT_FAIL;
    }
    ns_vocab *v = ns_vocab_load(g, err, sizeof err);
    ns_gguf_close(g);
    if (!v) {
        fprintf(stderr, "nstack: %s: %s\n", path, err);
        return NS_EXIT_FAIL;
    }
    size_t len = strlen(text);
    bool add_bos = bos && ns_vocab_add_bos(v);
    int n = ns_tokenize(v, text, len, add_bos, special, NULL, 0);
    int32_t *ids = n > 0 ? malloc(sizeof(int32_t) * (size_t)n) : NULL;
    if (n < 0 || (n > 0 && !ids)) {
        fprintf(stderr, "nstack: cannot tokenize the text\n");
        ns_vocab_free(v);
        free(ids);
        return NS_EXIT_FAIL;
    }
    if (n > 0) ns_tokenize(v, text, len, add_bos, special, ids, n);
    putchar('[');
    for (int i = 0; i < n; i++) printf(i ? ",%d" : "%d", ids[i]);
    puts("]");
    free(ids);
    ns_vocab_free(v);
    return NS_EXIT_OK;
}
