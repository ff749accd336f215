/* nstack run: load a model, evaluate the prompt, stream the generated text. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "chat_repl.h"
#include "generate.h"
#include "run_remote.h"
#include "nstack/chat.h"
#include "nstack/model.h"
#include "nstack/sampler.h"
#include "nstack/stop.h"

typedef struct {
    const char *model;
    const char *prompt;
    long long n_predict;
    ns_sampler_params sp;
    bool seed_given;
    ns_logit_bias *bias; /* --logit-bias, malloc'd */
    int n_bias;
    const char **stops; /* --stop, malloc'd; the strings are argv's */
    int n_stops;
    int n_ctx, n_threads;
    ns_kv_type kv_type;
    bool no_mmap;               /* --no-mmap */
    bool verbose;
    bool chat;                  /* --chat, or no prompt on a terminal */
    const char *template_name;  /* --template: a built-in format */
    bool template_fallback;     /* --template-fallback */
    const char *system;         /* --system */
    const char *host;           /* --host or NSTACK_HOST: the model runs on that server */
    cJSON *remote_options;      /* the options given, as Ollama names them, for the server */
    const char *local_only;     /* the last option a server cannot take (--logit-bias, ...) */
} run_opts;

static void run_usage(FILE *f) {
    fprintf(f,
            "usage: nstack run MODEL.gguf [PROMPT] [options]\n"
            "  -n, --predict N   tokens to generate (default: until end of text or full context)\n"
            "  --temp T          temperature; 0 = greedy (default 0.8)\n"
            "  --top-k K         keep the K most likely tokens (default 40; 0 = all)\n"
            "  --top-p P         keep the smallest set with probability P (default 0.9)\n"
            "  --min-p P         drop tokens less likely than P times the best (default 0 = off)\n"
            "  --typical-p P     locally typical sampling mass (default 1 = off)\n"
            "  --repeat-penalty R      penalty for tokens in the last N (default 1.1; 1 = off)\n"
            "  --repeat-last-n N       tokens the penalties look back at (default 64; 0 = off, -1 = all)\n"
            "  --presence-penalty P    subtracted once from seen tokens, in [-2, 2] (default 0)\n"
            "  --frequency-penalty F   subtracted per occurrence, in [-2, 2] (default 0)\n"
            "  --mirostat M      0 = off (default), 1 = Mirostat, 2 = Mirostat 2.0\n"
            "  --mirostat-tau T  Mirostat target surprise in bits (default 5)\n"
            "  --mirostat-eta E  Mirostat learning rate (default 0.1)\n"
            "  --logit-bias ID=B add B to token ID's logit; B = -inf bans it (repeatable)\n"
            "  --stop TEXT       stop before TEXT, which is not printed (repeatable)\n"
            "  --seed S          random seed (default: from the clock)\n"
            "  --ctx N           context size in tokens (default: the model's, at most 4096)\n"
            "  --threads N       threads (default: online CPUs)\n"
            "  --kv-type T       f16 (default) or f32\n"
            "  --no-mmap         read the model into memory instead of mapping it\n"
            "  --verbose         print timings to stderr\n"
            "  --chat            interactive chat (the default with no prompt on a terminal)\n"
            "  --system TEXT     the chat's system message\n"
            "  --template NAME   chat format: a built-in (chatml, llama2, llama3, phi3, gemma, mistral,\n"
            "                    zephyr) instead of the model's own template\n"
            "  --template-fallback  use the closest built-in format if the model's template fails\n"
            "  --host URL        run on a running `nstack serve` (or Ollama) at URL; the default when\n"
            "                    NSTACK_HOST is set. MODEL is then a name the server knows, or a path\n"
            "                    it can read; the options go as Ollama's options (not --logit-bias,\n"
            "                    --kv-type, --template, --template-fallback)\n"
            "Without a prompt, standard input is the prompt, or on a terminal the chat starts.\n");
}

/* After an option set a sampler field: the field's range, checked where the
 * engine checks it, with the option's name in the message. */
static bool sampler_field_ok(const run_opts *o, const char *opt) {
    char err[256];
    if (ns_sampler_params_check(&o->sp, err, sizeof err) == 0) return true;
    fprintf(stderr, "nstack run: invalid value for %s: %s\n", opt, err);
    return false;
}

/* "ID=BIAS", BIAS a number or -inf */
static bool parse_logit_bias(const char *v, ns_logit_bias *out) {
    const char *eq = strchr(v, '=');
    if (!eq || eq == v) return false;
    char id[32];
    size_t n = (size_t)(eq - v);
    if (n >= sizeof id) return false;
    memcpy(id, v, n);
    id[n] = 0;
    long long iv;
    if (!cli_parse_int(id, 0, INT32_MAX, &iv)) return false;
    double b;
    if (strcmp(eq + 1, "-inf") == 0 || strcmp(eq + 1, "-infinity") == 0) b = -INFINITY;
    else if (!cli_parse_float(eq + 1, &b)) return false;
    out->token = (int32_t)iv;
    out->bias = (float)b;
    return true;
}

static void free_run_opts(run_opts *o) {
    free(o->bias);
    free(o->stops);
    cJSON_Delete(o->remote_options);
    o->bias = NULL;
    o->stops = NULL;
    o->remote_options = NULL;
}

/* Records an option for a server under its Ollama name; the last one
 * given wins, as it does locally. */
static void remote_opt(run_opts *o, const char *name, double v) {
    if (!o->remote_options && !(o->remote_options = cJSON_CreateObject())) return;
    cJSON_DeleteItemFromObjectCaseSensitive(o->remote_options, name);
    cJSON_AddNumberToObject(o->remote_options, name, v);
}

static int parse_run(int argc, char **argv, run_opts *o) {
    memset(o, 0, sizeof *o);
    o->n_predict = -1;
    o->sp = ns_sampler_defaults();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        long long iv;
        double fv;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            run_usage(stdout);
            exit(NS_EXIT_OK);
        } else if (strcmp(a, "-n") == 0 || strcmp(a, "--predict") == 0) {
            if (!(v = cli_value(argc, argv, &i)) || !cli_parse_int(v, -1, 1 << 30, &iv)) goto bad;
            o->n_predict = iv;
            remote_opt(o, "num_predict", (double)iv);
        } else if (strcmp(a, "--temp") == 0) {
            if (!(v = cli_value(argc, argv, &i)) || !cli_parse_float(v, &fv) || fv < 0) goto bad;
            o->sp.temperature = (float)fv;
            remote_opt(o, "temperature", (double)fv);
        } else if (strcmp(a, "--top-k") == 0) {
            if (!(v = cli_value(argc, argv, &i)) || !cli_parse_int(v, 0, 1 << 30, &iv)) goto bad;
            o->sp.top_k = (int)iv;
            remote_opt(o, "top_k", (double)iv);
        } else if (strcmp(a, "--top-p") == 0) {
            if (!(v = cli_value(argc, argv, &i)) || !cli_parse_float(v, &fv)) goto bad;
            o->sp.top_p = (float)fv;
            remote_opt(o, "top_p", (double)fv);
            if (!sampler_field_ok(o, a)) return -1;
        } else if (strcmp(a, "--min-p") == 0) {
            if (!(v = cli_value(argc, argv, &i)) || !cli_parse_float(v, &fv)) goto bad;
            o->sp.min_p = (float)fv;
            remote_opt(o, "min_p", (double)fv);
            if (!sampler_field_ok(o, a)) return -1;
        } else if (strcmp(a, "--typical-p") == 0) {
            if (!(v = cli_value(argc, argv, &i)) || !cli_parse_float(v, &fv)) goto bad;
            o->sp.typical_p = (float)fv;
            remote_opt(o, "typical_p", (double)fv);
            if (!sampler_field_ok(o, a)) return -1;
        } else if (strcmp(a, "--repeat-penalty") == 0) {
            if (!(v = cli_value(argc, argv, &i)) || !cli_parse_float(v, &fv)) goto bad;
            o->sp.repeat_penalty = (float)fv;
            remote_opt(o, "repeat_penalty", (double)fv);
            if (!sampler_field_ok(o, a)) return -1;
        } else if (strcmp(a, "--repeat-last-n") == 0) {
            if (!(v = cli_value(argc, argv, &i)) || !cli_parse_int(v, INT32_MIN, INT32_MAX, &iv)) goto bad;
            o->sp.repeat_last_n = (int)iv;
            remote_opt(o, "repeat_last_n", (double)iv);
            if (!sampler_field_ok(o, a)) return -1;
        } else if (strcmp(a, "--presence-penalty") == 0) {
            if (!(v = cli_value(argc, argv, &i)) || !cli_parse_float(v, &fv)) goto bad;
            o->sp.presence_penalty = (float)fv;
            remote_opt(o, "presence_penalty", (double)fv);
            if (!sampler_field_ok(o, a)) return -1;
        } else if (strcmp(a, "--frequency-penalty") == 0) {
            if (!(v = cli_value(argc, argv, &i)) || !cli_parse_float(v, &fv)) goto bad;
            o->sp.frequency_penalty = (float)fv;
            remote_opt(o, "frequency_penalty", (double)fv);
            if (!sampler_field_ok(o, a)) return -1;
        } else if (strcmp(a, "--mirostat") == 0) {
            if (!(v = cli_value(argc, argv, &i)) || !cli_parse_int(v, INT32_MIN, INT32_MAX, &iv)) goto bad;
            o->sp.mirostat = (int)iv;
            remote_opt(o, "mirostat", (double)iv);
            if (!sampler_field_ok(o, a)) return -1;
        } else if (strcmp(a, "--mirostat-tau") == 0) {
            if (!(v = cli_value(argc, argv, &i)) || !cli_parse_float(v, &fv)) goto bad;
            o->sp.mirostat_tau = (float)fv;
            remote_opt(o, "mirostat_tau", (double)fv);
            if (!sampler_field_ok(o, a)) return -1;
        } else if (strcmp(a, "--mirostat-eta") == 0) {
            if (!(v = cli_value(argc, argv, &i)) || !cli_parse_float(v, &fv)) goto bad;
            o->sp.mirostat_eta = (float)fv;
            remote_opt(o, "mirostat_eta", (double)fv);
            if (!sampler_field_ok(o, a)) return -1;
        } else if (strcmp(a, "--logit-bias") == 0) {
            ns_logit_bias b;
            if (!(v = cli_value(argc, argv, &i))) goto bad;
            if (!parse_logit_bias(v, &b)) {
                fprintf(stderr, "nstack run: invalid value for %s: '%s' (expected TOKEN_ID=BIAS, BIAS a number or -inf)\n",
                        a, v);
                return -1;
            }
            ns_logit_bias *nb = realloc(o->bias, sizeof *nb * (size_t)(o->n_bias + 1));
            if (!nb) goto oom;
            o->bias = nb;
            o->bias[o->n_bias++] = b;
            o->local_only = a;
        } else if (strcmp(a, "--stop") == 0) {
            if (!(v = cli_value(argc, argv, &i))) goto bad;
            if (!*v) {
                fprintf(stderr, "nstack run: invalid value for %s: the stop text is empty\n", a);
                return -1;
            }
            const char **ns = realloc(o->stops, sizeof *ns * (size_t)(o->n_stops + 1));
            if (!ns) goto oom;
            o->stops = ns;
            o->stops[o->n_stops++] = v;
        } else if (strcmp(a, "--seed") == 0) {
            if (!(v = cli_value(argc, argv, &i)) || !cli_parse_int(v, 0, INT64_MAX, &iv)) goto bad;
            o->sp.seed = (uint64_t)iv;
            remote_opt(o, "seed", (double)iv);
            o->seed_given = true;
        } else if (strcmp(a, "--ctx") == 0) {
            if (!(v = cli_value(argc, argv, &i)) || !cli_parse_int(v, 1, 1 << 20, &iv)) goto bad;
            o->n_ctx = (int)iv;
            remote_opt(o, "num_ctx", (double)iv);
        } else if (strcmp(a, "--threads") == 0 || strcmp(a, "-t") == 0) {
            if (!(v = cli_value(argc, argv, &i)) || !cli_parse_int(v, 1, 1024, &iv)) goto bad;
            o->n_threads = (int)iv;
            remote_opt(o, "num_thread", (double)iv);
        } else if (strcmp(a, "--kv-type") == 0) {
            if (!(v = cli_value(argc, argv, &i)) || !cli_parse_kv_type(v, &o->kv_type)) goto bad;
            o->local_only = a;
        } else if (strcmp(a, "--no-mmap") == 0) {
            o->no_mmap = true;
            if (o->remote_options || (o->remote_options = cJSON_CreateObject())) {
                cJSON_DeleteItemFromObjectCaseSensitive(o->remote_options, "use_mmap");
                cJSON_AddFalseToObject(o->remote_options, "use_mmap");
            }
        } else if (strcmp(a, "--chat") == 0) {
            o->chat = true;
        } else if (strcmp(a, "--template-fallback") == 0) {
            o->template_fallback = true;
            o->local_only = a;
        } else if (strcmp(a, "--template") == 0) {
            if (!(v = cli_value(argc, argv, &i))) goto bad;
            if (!ns_chat_builtin(v)) {
                fprintf(stderr, "nstack run: unknown --template '%s' (built-ins:", v);
                for (const char *const *n = ns_chat_builtin_names(); *n; n++) fprintf(stderr, " %s", *n);
                fprintf(stderr, ")\n");
                return -1;
            }
            o->template_name = v;
            o->local_only = a;
        } else if (strcmp(a, "--system") == 0) {
            if (!(v = cli_value(argc, argv, &i))) goto bad;
            o->system = v;
        } else if (strcmp(a, "--host") == 0) {
            if (!(v = cli_value(argc, argv, &i))) goto bad;
            if (!*v) {
                fprintf(stderr, "nstack run: invalid value for %s: the URL is empty\n", a);
                return -1;
            }
            o->host = v;
        } else if (strcmp(a, "--verbose") == 0 || strcmp(a, "-v") == 0) {
            o->verbose = true;
        } else if (a[0] == '-' && a[1] != 0) {
            fprintf(stderr, "nstack run: unknown option '%s'\n", a);
            return -1;
        } else if (!o->model) {
            o->model = a;
        } else if (!o->prompt) {
            o->prompt = a;
        } else {
            fprintf(stderr, "nstack run: unexpected argument '%s' (quote the prompt)\n", a);
            return -1;
        }
        continue;
    bad:
        fprintf(stderr, "nstack run: invalid value for %s\n", a);
        return -1;
    oom:
        fprintf(stderr, "nstack run: out of memory\n");
        return -1;
    }
    o->sp.logit_bias = o->bias;
    o->sp.n_logit_bias = o->n_bias;
    if (!o->model) {
        run_usage(stderr);
        return -1;
    }
    if (!o->host) {
        const char *env = getenv("NSTACK_HOST");
        if (env && *env) o->host = env;
    }
    if (o->host && o->local_only) {
        fprintf(stderr, "nstack run: %s is not available on a server (--host or NSTACK_HOST is set)\n",
                o->local_only);
        return -1;
    }
    if (o->host && o->n_stops > 0) {
        if (!o->remote_options && !(o->remote_options = cJSON_CreateObject())) goto oom_end;
        cJSON *stops = cJSON_AddArrayToObject(o->remote_options, "stop");
        for (int k = 0; stops && k < o->n_stops; k++) cJSON_AddItemToArray(stops, cJSON_CreateString(o->stops[k]));
    }
    return 0;
oom_end:
    fprintf(stderr, "nstack run: out of memory\n");
    return -1;
}

static char *read_stdin(void) {
    size_t len;
    char *buf = cli_read_all("-", &len);
    /* a prompt piped with echo ends in a newline the user did not mean */
    if (buf && len > 0 && buf[len - 1] == '\n') buf[len - 1] = 0;
    return buf;
}

static void print_duration(const char *label, double s) {
    if (s >= 1.0) fprintf(stderr, "%-22s%.6fs\n", label, s);
    else fprintf(stderr, "%-22s%.6fms\n", label, s * 1e3);
}

/* The chat template to use: --template, else the model's (or, when it does
 * not parse and --template-fallback allows it, the built-in it resembles).
 * *tmpl stays NULL for a model without a template: plain continuation. */
static int choose_template(const run_opts *o, const ns_model *m, ns_chat_template **tmpl) {
    char err[512];
    *tmpl = NULL;
    char *src = o->template_name ? strdup(ns_chat_builtin(o->template_name))
                                 : ns_gguf_get_str(ns_model_gguf(m), "tokenizer.chat_template");
    if (!src) {
        fprintf(stderr, "nstack: %s has no chat template: the chat continues one text (or use --template)\n",
                o->model);
        return 0;
    }
    *tmpl = ns_chat_template_new(src, err, sizeof err);
    if (!*tmpl && o->template_fallback) {
        const char *name = ns_chat_guess(src);
        if (!name) name = "chatml";
        fprintf(stderr, "nstack: the model's %s; using the built-in '%s' format (--template-fallback)\n", err, name);
        *tmpl = ns_chat_template_new(ns_chat_builtin(name), err, sizeof err);
    } else if (!*tmpl) {
        fprintf(stderr, "nstack: the model's %s\n(--template NAME picks a built-in format, --template-fallback the "
                        "closest one)\n",
                err);
    }
    free(src);
    return *tmpl ? 0 : -1;
}

static int run_chat(const run_opts *o, const ns_model *m, ns_context *c) {
    ns_chat_template *tmpl;
    if (choose_template(o, m, &tmpl) != 0) return NS_EXIT_FAIL;
    chat_opts co = {.m = m, .c = c, .sp = o->sp, .n_predict = o->n_predict, .stops = o->stops,
                    .n_stops = o->n_stops, .tmpl = tmpl, .system = o->system, .in = stdin, .out = stdout,
                    .interactive = isatty(STDIN_FILENO) != 0};
    int rc = chat_repl(&co);
    ns_chat_template_free(tmpl);
    return rc;
}

int cmd_run(int argc, char **argv) {
    run_opts o;
    if (parse_run(argc, argv, &o) != 0) {
        free_run_opts(&o);
        return NS_EXIT_USAGE;
    }
    if (!o.seed_given) o.sp.seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);

    if (!o.prompt && isatty(STDIN_FILENO)) o.chat = true;
    char *stdin_prompt = NULL;
    if (!o.prompt && !o.chat) {
        stdin_prompt = isatty(STDIN_FILENO) ? NULL : read_stdin();
        o.prompt = stdin_prompt ? stdin_prompt : "";
    }
    if (o.host) {
        remote_run rr = {.host = o.host, .model = o.model, .prompt = o.prompt, .chat = o.chat,
                         .chat_interactive = isatty(STDIN_FILENO) != 0, .system = o.system,
                         .options = o.remote_options, .verbose = o.verbose};
        int remote_rc = run_remote(&rr);
        free(stdin_prompt);
        free_run_opts(&o);
        return remote_rc;
    }

    int rc = NS_EXIT_FAIL;
    char err[512];
    ns_model *m = NULL;
    ns_context *c = NULL;
    ns_sampler *s = NULL;
    ns_stop *stop = NULL;
    int32_t *toks = NULL;
    double t_start = cli_now();

    m = ns_model_load_ex(o.model, o.no_mmap ? NS_GGUF_READ : NS_GGUF_MMAP, err, sizeof err);
    if (!m) {
        fprintf(stderr, "nstack: %s\n", err);
        goto out;
    }
    const ns_vocab *vocab = ns_model_vocab(m);
    if (!vocab) {
        fprintf(stderr, "nstack: %s: cannot run text generation: %s\n", o.model, ns_model_vocab_error(m));
        goto out;
    }
    ns_context_params cp = {.n_ctx = o.n_ctx, .n_threads = o.n_threads, .kv_type = o.kv_type};
    c = ns_context_new(m, &cp, err, sizeof err);
    if (!c) {
        fprintf(stderr, "nstack: %s\n", err);
        goto out;
    }
    const int n_vocab = ns_model_hparams(m)->n_vocab;
    s = ns_sampler_new_checked(&o.sp, n_vocab, err, sizeof err);
    if (!s) {
        if (strstr(err, "logit_bias")) { /* a token id the model does not have */
            fprintf(stderr, "nstack run: invalid value for --logit-bias: %s\n", err);
            rc = NS_EXIT_USAGE;
        } else {
            fprintf(stderr, "nstack: %s\n", err);
        }
        goto out;
    }
    stop = ns_stop_new(o.stops, o.n_stops);
    if (!stop) {
        fprintf(stderr, "nstack: out of memory\n");
        goto out;
    }
    double t_loaded = cli_now();
    if (o.chat) {
        rc = run_chat(&o, m, c);
        goto out;
    }

    size_t plen = strlen(o.prompt);
    int n_tok = ns_tokenize(vocab, o.prompt, plen, ns_vocab_add_bos(vocab), true, NULL, 0);
    if (n_tok < 0) {
        fprintf(stderr, "nstack: cannot tokenize the prompt\n");
        goto out;
    }
    toks = malloc(sizeof(int32_t) * (size_t)(n_tok > 0 ? n_tok : 1));
    if (!toks) goto out;
    ns_tokenize(vocab, o.prompt, plen, ns_vocab_add_bos(vocab), true, toks, n_tok);
    const int n_ctx = ns_context_n_ctx(c);
    if (n_tok == 0) {
        fprintf(stderr, "nstack: the prompt is empty and the model has no BOS token to start from\n");
        goto out;
    }
    if (n_tok >= n_ctx) {
        fprintf(stderr, "nstack: the prompt has %d tokens, the context only %d (use --ctx)\n", n_tok, n_ctx);
        goto out;
    }
    if (ns_decode(c, 0, toks, n_tok, false, err, sizeof err) != 0) {
        fprintf(stderr, "nstack: %s\n", err);
        goto out;
    }
    /* the prompt counts for the repetition penalties, as in the reference engine */
    ns_sampler_accept_many(s, toks, n_tok);
    double t_prompt = cli_now();

    gen_result gr;
    bool prev_bos = toks[n_tok - 1] == ns_vocab_bos(vocab);
    if (cli_generate(c, vocab, s, stop, o.n_predict, prev_bos, stdout, NULL, NULL, &gr, err, sizeof err) != 0) {
        fprintf(stderr, "\nnstack: %s\n", err);
        goto out;
    }
    if (gr.context_full) fprintf(stderr, "\nnstack: context full (%d tokens); stopping\n", n_ctx);
    long long n_gen = gr.n_gen;
    if (isatty(STDOUT_FILENO)) fputc('\n', stdout);
    fflush(stdout);
    double t_end = cli_now();

    if (o.verbose) {
        double pe = t_prompt - t_loaded, ev = t_end - t_prompt;
        print_duration("total duration:", t_end - t_start);
        print_duration("load duration:", t_loaded - t_start);
        fprintf(stderr, "%-22s%d token(s)\n", "prompt eval count:", n_tok);
        print_duration("prompt eval duration:", pe);
        fprintf(stderr, "%-22s%.2f tokens/s\n", "prompt eval rate:", pe > 0 ? n_tok / pe : 0.0);
        fprintf(stderr, "%-22s%lld token(s)\n", "eval count:", n_gen);
        print_duration("eval duration:", ev);
        fprintf(stderr, "%-22s%.2f tokens/s\n", "eval rate:", ev > 0 ? (double)n_gen / ev : 0.0);
    }
    rc = NS_EXIT_OK;
out:
    free(toks);
    ns_stop_free(stop);
    ns_sampler_free(s);
    ns_context_free(c);
    ns_model_free(m);
    free(stdin_prompt);
    free_run_opts(&o);
    return rc;
}
