/* nstack: one binary, one subcommand per job. */
#include <stdio.h>
#include <string.h>

#include "ai.h"
#include "cli.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: nstack COMMAND [ARGS]\n"
            "\n"
            "commands:\n"
            "  serve                     start the server (Ollama and OpenAI APIs) on 127.0.0.1:11434\n"
            "  route --config FILE       route requests between a small and a big node (docs/router.md)\n"
            "  ai SUBCOMMAND             AI runtimes on this host: status, detect, models, unload, preload,\n"
            "                            optimize, profile, watch, benchmark (docs/ai.md)\n"
            "  vram status | clear       who holds GPU memory; unload idle models everywhere\n"
            "  doctor                    driver, CUDA, NVML and WSL checks with fix hints\n"
            "  run MODEL [PROMPT]        generate text (prompt from stdin when omitted; --host: on a server)\n"
            "  tokenize MODEL TEXT       print token ids as a JSON array\n"
            "  logits MODEL --tokens L   print the top logits after each token, one JSON line each\n"
            "  mkmodel OUT.gguf          write a random-weight model for tests and benchmarks\n"
            "  bench MODEL               prompt and decode tokens/s, as llama-bench reports them\n"
            "  quantize IN OUT TYPE      convert a model to q4_k_m, q8_0, ... as llama-quantize does\n"
            "  ps | list | show MODEL    loaded models, stored models, one model's details (of a server)\n"
            "  load MODEL | stop MODEL   load a model on a server, unload it\n"
            "  pull URL [NAME] | rm NAME download a GGUF into the store, remove one\n"
            "  mode [normal|gaming]      a server's mode (GAMING keeps the router's work off it), or set it\n"
            "  version                   print the version\n"
            "\n"
            "`nstack COMMAND --help` describes a command's options.\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return NS_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "run") == 0) return cmd_run(argc - 1, argv + 1);
    if (strcmp(cmd, "tokenize") == 0) return cmd_tokenize(argc - 1, argv + 1);
    if (strcmp(cmd, "logits") == 0) return cmd_logits(argc - 1, argv + 1);
    if (strcmp(cmd, "mkmodel") == 0) return cmd_mkmodel(argc - 1, argv + 1);
    if (strcmp(cmd, "bench") == 0) return cmd_bench(argc - 1, argv + 1);
    if (strcmp(cmd, "quantize") == 0) return cmd_quantize(argc - 1, argv + 1);
    if (strcmp(cmd, "serve") == 0) return cmd_serve(argc - 1, argv + 1);
    if (strcmp(cmd, "route") == 0) return cmd_route(argc - 1, argv + 1);
    if (strcmp(cmd, "ai") == 0) return cmd_ai(argc - 1, argv + 1);
    if (strcmp(cmd, "vram") == 0) return cmd_vram(argc - 1, argv + 1);
    if (strcmp(cmd, "doctor") == 0) return cmd_doctor(argc - 1, argv + 1);
    if (strcmp(cmd, "ps") == 0) return cmd_ps(argc - 1, argv + 1);
    if (strcmp(cmd, "list") == 0 || strcmp(cmd, "ls") == 0) return cmd_list(argc - 1, argv + 1);
    if (strcmp(cmd, "show") == 0) return cmd_show(argc - 1, argv + 1);
    if (strcmp(cmd, "load") == 0) return cmd_load(argc - 1, argv + 1);
    if (strcmp(cmd, "stop") == 0) return cmd_stop(argc - 1, argv + 1);
    if (strcmp(cmd, "pull") == 0) return cmd_pull(argc - 1, argv + 1);
    if (strcmp(cmd, "rm") == 0) return cmd_rm(argc - 1, argv + 1);
    if (strcmp(cmd, "mode") == 0) return cmd_mode(argc - 1, argv + 1);
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("nstack %s\n", NSTACK_VERSION);
        return NS_EXIT_OK;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        usage(stdout);
        return NS_EXIT_OK;
    }
    fprintf(stderr, "nstack: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return NS_EXIT_USAGE;
}
