/* `nstack ai SUBCOMMAND` and `nstack vram SUBCOMMAND`: the dispatch to the
 * functions of ai.h. */
#include <stdio.h>
#include <string.h>

#include "ai.h"
#include "cli.h"

typedef struct {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *help;
} subcommand;

static const subcommand ai_subs[] = {
    {"status", ai_status, "runtimes, memory and VRAM on this host"},
    {"detect", ai_detect, "find the AI runtimes running here (Ollama, llama.cpp, vLLM, PyTorch, ...)"},
    {"models", ai_models, "the models every runtime has loaded"},
    {"unload", ai_unload, "MODEL: unload a model from the runtime that holds it"},
    {"preload", ai_preload, "MODEL: load a model into a runtime"},
    {"optimize", ai_optimize, "MODEL.gguf: how many layers fit on the GPU, KV cache and buffer sizes"},
    {"profile", ai_profile, "[NAME]: list the profiles, or apply one to the running server"},
    {"watch", ai_watch, "a live view of memory, VRAM, runtimes and models (q quits)"},
    {"benchmark", ai_benchmark, "a short standard generation against a runtime: TTFT and tokens/s"},
};

static const subcommand vram_subs[] = {
    {"status", vram_status, "who holds how much GPU memory"},
    {"clear", vram_clear, "unload idle models in every runtime we can talk to"},
};

static void usage(FILE *f, const char *cmd, const subcommand *subs, size_t n) {
    fprintf(f, "usage: nstack %s SUBCOMMAND [options] (--json on each)\n", cmd);
    for (size_t i = 0; i < n; i++) fprintf(f, "  %-10s %s\n", subs[i].name, subs[i].help);
    fprintf(f, "`nstack %s SUBCOMMAND --help` describes its options.\n", cmd);
}

static int dispatch(const char *cmd, const subcommand *subs, size_t n, int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        usage(argc < 2 ? stderr : stdout, cmd, subs, n);
        return argc < 2 ? NS_EXIT_USAGE : NS_EXIT_OK;
    }
    for (size_t i = 0; i < n; i++)
        if (strcmp(argv[1], subs[i].name) == 0) return subs[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "nstack %s: unknown subcommand '%s'\n", cmd, argv[1]);
    usage(stderr, cmd, subs, n);
    return NS_EXIT_USAGE;
}

int cmd_ai(int argc, char **argv) { return dispatch("ai", ai_subs, sizeof ai_subs / sizeof ai_subs[0], argc, argv); }

int cmd_vram(int argc, char **argv) {
    return dispatch("vram", vram_subs, sizeof vram_subs / sizeof vram_subs[0], argc, argv);
}
