/* nstack quantize: converts a GGUF model to another file type (Q4_K_M,
 * Q8_0, ...) with the reference quantize tool's per-tensor choices, writing
 * a file the reference engine also loads. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "engine/quantize.h"
#include "nstack/gguf.h"

static void q_usage(FILE *f) {
    fprintf(f,
            "usage: nstack quantize IN.gguf OUT.gguf TYPE [options]\n"
            "       nstack quantize IN.gguf TYPE --dry-run\n"
            "  TYPE           %s\n"
            "                 (case-insensitive, as llama-quantize takes them)\n"
            "  --threads N    threads for quantizing (default: online CPUs)\n"
            "  --dry-run      print each tensor's type in and out, write nothing\n"
            "  --quiet        no per-tensor progress on stderr\n"
            "Input tensors may be F32, F16, BF16 or already quantized (requantizing loses quality).\n",
            ns_ftype_list());
}

static int online_cpus(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)(n < 512 ? n : 512) : 1;
}

int cmd_quantize(int argc, char **argv) {
    const char *pos[3] = {NULL, NULL, NULL};
    int n_pos = 0;
    long long threads = 0;
    bool dry_run = false, quiet = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--threads") == 0 || strcmp(a, "-t") == 0) {
            const char *v = cli_value(argc, argv, &i);
            if (!v) return NS_EXIT_USAGE;
            if (!cli_parse_int(v, 1, 1024, &threads)) {
                fprintf(stderr, "nstack quantize: invalid value for %s: '%s'\n", a, v);
                return NS_EXIT_USAGE;
            }
        } else if (strcmp(a, "--dry-run") == 0) {
            dry_run = true;
        } else if (strcmp(a, "--quiet") == 0 || strcmp(a, "-q") == 0) {
            quiet = true;
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            q_usage(stdout);
            return NS_EXIT_OK;
        } else if (a[0] == '-' && a[1] != 0) {
            fprintf(stderr, "nstack quantize: unknown option '%s'\n", a);
            return NS_EXIT_USAGE;
        } else if (n_pos < 3) {
            pos[n_pos++] = a;
        } else {
            fprintf(stderr, "nstack quantize: unexpected argument '%s'\n", a);
            return NS_EXIT_USAGE;
        }
    }
    const char *in = pos[0], *out = NULL, *type = NULL;
    if (n_pos == 3) {
        out = pos[1];
        type = pos[2];
    } else if (n_pos == 2 && dry_run) {
        type = pos[1];
    } else {
        q_usage(stderr);
        return NS_EXIT_USAGE;
    }
    ns_ftype ft;
    if (ns_ftype_parse(type, &ft) != 0) {
        fprintf(stderr, "nstack quantize: unknown type '%s' (one of: %s)\n", type, ns_ftype_list());
        return NS_EXIT_USAGE;
    }

    char err[1024];
    ns_gguf *g = ns_gguf_open(in, err, sizeof err);
    if (!g) {
        fprintf(stderr, "nstack: %s\n", err);
        return NS_EXIT_FAIL;
    }
    ns_qplan plan;
    if (ns_quantize_plan(g, ft, &plan, err, sizeof err) != 0) {
        fprintf(stderr, "nstack quantize: %s: %s\n", in, err);
        ns_gguf_close(g);
        return NS_EXIT_FAIL;
    }
    int rc = NS_EXIT_OK;
    if (dry_run) {
        for (size_t i = 0; i < plan.n; i++) {
            const ns_qplan_tensor *e = &plan.t[i];
            printf("%s %s -> %s%s\n", e->name, ns_type_name(e->src->type), ns_type_name(e->type),
                   e->fallback ? " (fallback)" : "");
        }
        goto done;
    }
    if (plan.n_requant > 0)
        fprintf(stderr,
                "nstack quantize: warning: %d tensor(s) of %s are already quantized; requantizing them loses "
                "quality (quantize from the F32/F16/BF16 model when you have it)\n",
                plan.n_requant, in);
    if (plan.n_fallback > 0)
        fprintf(stderr,
                "nstack quantize: warning: %d tensor(s) have rows that %s's block size does not divide and use a "
                "fallback type\n",
                plan.n_fallback, ns_ftype_name(ft));
    if (!quiet)
        fprintf(stderr, "nstack quantize: %s -> %s as %s, %d thread(s)\n", in, out, ns_ftype_name(ft),
                threads ? (int)threads : online_cpus());
    if (ns_quantize_write(g, &plan, out, threads ? (int)threads : online_cpus(), quiet ? NULL : stderr, err,
                          sizeof err) != 0) {
        fprintf(stderr, "nstack quantize: %s\n", err);
        rc = NS_EXIT_FAIL;
    }
done:
    ns_quantize_plan_free(&plan);
    ns_gguf_close(g);
    return rc;
}
