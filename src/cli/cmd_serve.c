/* nstack serve: the Ollama- and OpenAI-compatible server.
 *
 * Signals are blocked before any thread starts, so every thread inherits the
 * mask and only the main thread takes them, with sigwait: the first SIGINT or
 * SIGTERM starts a graceful stop on a helper thread (which signals SIGUSR1
 * back when done); a second one exits at once. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "router/router.h"
#include "server/server.h"
#include "util/duration.h"
#include "util/log.h"

#define GRACE_NS (10 * 1000000000LL)

static void serve_usage(FILE *f) {
    fprintf(f,
            "usage: nstack serve [options]\n"
            "  --host H[:P]        listen address (default NSTACK_HOST or 127.0.0.1:11434; port 0: any free port)\n"
            "  --models DIR        model store (default NSTACK_MODELS or ~/.local/share/nstack/models)\n"
            "  --max-loaded N      models loaded at once (default NSTACK_MAX_LOADED_MODELS or 3)\n"
            "  --num-parallel N    concurrent generations per model (default NSTACK_NUM_PARALLEL or 4)\n"
            "  --keep-alive DUR    how long an idle model stays loaded: 5m, 1h, 0, -1 forever\n"
            "                      (default NSTACK_KEEP_ALIVE or 5m)\n"
            "  --ctx N             context tokens per slot (default 4096, capped by the model)\n"
            "  --threads N         threads per model (default: online CPUs)\n"
            "  --max-queue N       waiting requests per model beyond the slots (default 512)\n"
            "  --max-body BYTES    largest request body (default 33554432)\n"
            "  --timeout DUR       stop generations running longer than this (default: none)\n"
            "  --preload MODEL     load MODEL before accepting requests\n"
            "  --snapshots DIR     where session snapshots are saved (default NSTACK_SNAPSHOTS or\n"
            "                      ~/.local/share/nstack/snapshots)\n"
            "  --no-mmap           read model files into memory instead of mapping them\n"
            "                      (a request's options.use_mmap overrides it)\n"
            "  --no-demo           do not create the random-weight demo model in an empty store\n"
            "  --db PATH|off       metrics database (default NSTACK_DB or ~/.local/share/nstack/nstack.db)\n"
            "  --sample-interval DUR  resource sampling period, 1ms or more, or off (default 100ms)\n"
            "  --alert-ram PCT     alert when RAM use reaches PCT percent, 0: off (default 90)\n"
            "  --alert-vram PCT    alert when a GPU's memory use reaches PCT percent, 0: off (default 90)\n"
            "  --alert-temp C      alert when a GPU reaches C degrees Celsius, 0: off (default 85)\n"
            "  --config FILE       a TOML file; its [router] table runs the router beside the server\n"
            "  --profile NAME      apply this profile for this run, over the saved one (nstack ai profile)\n"
            "                      (docs/router.md)\n");
}

static bool parse_duration_arg(const char *flag, const char *v, int64_t *out) {
    char err[256];
    if (ns_duration_parse(v, out, err, sizeof err) != 0) {
        fprintf(stderr, "nstack serve: invalid value for %s: %s\n", flag, err);
        return false;
    }
    return true;
}

typedef struct {
    ns_server *server;
    ns_router *router;
    pthread_t main_thread;
} stopper;

static void *stop_server(void *arg) {
    stopper *st = arg;
    ns_router_stop(st->router); /* first: it may be sending requests to this server */
    ns_server_stop(st->server, GRACE_NS);
    pthread_kill(st->main_thread, SIGUSR1);
    return NULL;
}

/* serve's config file: today only its [router] table means anything; a
 * file without one is accepted (the router stays off). */
static int load_config(const char *path, ns_router_config *rc, bool *found) {
    char err[1024];
    size_t len;
    char *text = cli_read_all(path, &len);
    if (!text) {
        fprintf(stderr, "nstack serve: cannot read %s: %s\n", path, strerror(errno));
        return -1;
    }
    int rc_ = ns_router_config_parse(text, len, path, rc, found, err, sizeof err);
    free(text);
    if (rc_ != 0) fprintf(stderr, "nstack serve: %s\n", err);
    return rc_;
}

int cmd_serve(int argc, char **argv) {
    ns_server_config cfg = {0};
    const char *config_file = NULL;
    cfg.create_demo = true;
    cfg.observe.alerts = (ns_alerts_config){.ram_pct = NS_ALERT_RAM_PCT, .vram_pct = NS_ALERT_VRAM_PCT,
                                            .temp_c = NS_ALERT_TEMP_C};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        long long n;
        int *int_target = NULL;
        long long lo = 1, hi = 1 << 20;
        if (strcmp(a, "--max-loaded") == 0) int_target = &cfg.runtime.max_loaded, hi = 1024;
        else if (strcmp(a, "--num-parallel") == 0) int_target = &cfg.runtime.num_parallel, hi = 1024;
        else if (strcmp(a, "--ctx") == 0) int_target = &cfg.runtime.defaults.n_ctx, hi = 1 << 24;
        else if (strcmp(a, "--threads") == 0) int_target = &cfg.runtime.defaults.n_thread, hi = 1024;
        else if (strcmp(a, "--max-queue") == 0) int_target = &cfg.runtime.max_queue, hi = 1 << 20;
        if (int_target) {
            if (!(v = cli_value(argc, argv, &i))) return NS_EXIT_USAGE;
            if (!cli_parse_int(v, lo, hi, &n)) {
                fprintf(stderr, "nstack serve: invalid value for %s: '%s' (a number from %lld to %lld)\n", a, v, lo, hi);
                return NS_EXIT_USAGE;
            }
            *int_target = (int)n;
        } else if (strcmp(a, "--host") == 0) {
            if (!(cfg.host = cli_value(argc, argv, &i))) return NS_EXIT_USAGE;
        } else if (strcmp(a, "--models") == 0) {
            if (!(cfg.models_dir = cli_value(argc, argv, &i))) return NS_EXIT_USAGE;
        } else if (strcmp(a, "--snapshots") == 0) {
            if (!(cfg.snapshot_dir = cli_value(argc, argv, &i))) return NS_EXIT_USAGE;
        } else if (strcmp(a, "--profile") == 0) {
            if (!(cfg.profile = cli_value(argc, argv, &i))) return NS_EXIT_USAGE;
        } else if (strcmp(a, "--preload") == 0) {
            if (!(cfg.default_model = cli_value(argc, argv, &i))) return NS_EXIT_USAGE;
        } else if (strcmp(a, "--keep-alive") == 0) {
            int64_t d;
            if (!(v = cli_value(argc, argv, &i)) || !parse_duration_arg(a, v, &d)) return NS_EXIT_USAGE;
            /* 0 in the runtime's config means "its default"; 1 ns unloads as soon as idle, as 0 asks */
            cfg.runtime.keep_alive_ns = d == 0 ? 1 : d;
        } else if (strcmp(a, "--timeout") == 0) {
            int64_t d;
            if (!(v = cli_value(argc, argv, &i)) || !parse_duration_arg(a, v, &d)) return NS_EXIT_USAGE;
            if (d < 0) {
                fprintf(stderr, "nstack serve: invalid value for --timeout: must not be negative\n");
                return NS_EXIT_USAGE;
            }
            cfg.runtime.request_timeout_ns = d;
        } else if (strcmp(a, "--max-body") == 0) {
            if (!(v = cli_value(argc, argv, &i))) return NS_EXIT_USAGE;
            if (!cli_parse_int(v, 1, 1LL << 40, &n)) {
                fprintf(stderr, "nstack serve: invalid value for --max-body: '%s' (bytes)\n", v);
                return NS_EXIT_USAGE;
            }
            cfg.max_body = (size_t)n;
        } else if (strcmp(a, "--no-mmap") == 0) {
            cfg.runtime.defaults.use_mmap = -1;
        } else if (strcmp(a, "--no-demo") == 0) {
            cfg.create_demo = false;
        } else if (strcmp(a, "--config") == 0) {
            if (!(config_file = cli_value(argc, argv, &i))) return NS_EXIT_USAGE;
        } else if (strcmp(a, "--db") == 0) {
            if (!(cfg.observe.db_path = cli_value(argc, argv, &i))) return NS_EXIT_USAGE;
        } else if (strcmp(a, "--sample-interval") == 0) {
            int64_t d;
            if (!(v = cli_value(argc, argv, &i))) return NS_EXIT_USAGE;
            if (strcmp(v, "off") == 0) d = -1;
            else if (!parse_duration_arg(a, v, &d)) return NS_EXIT_USAGE;
            else if (d < 1000000) {
                fprintf(stderr, "nstack serve: invalid value for --sample-interval: '%s' (1ms or more, or off)\n", v);
                return NS_EXIT_USAGE;
            }
            cfg.observe.sample_interval_ns = d;
        } else if (strcmp(a, "--alert-ram") == 0 || strcmp(a, "--alert-vram") == 0 || strcmp(a, "--alert-temp") == 0) {
            double *t = a[8] == 'r' ? &cfg.observe.alerts.ram_pct
                        : a[8] == 'v' ? &cfg.observe.alerts.vram_pct : &cfg.observe.alerts.temp_c;
            double max = a[8] == 't' ? 200 : 100;
            char *end;
            if (!(v = cli_value(argc, argv, &i))) return NS_EXIT_USAGE;
            *t = strtod(v, &end);
            if (!*v || *end || !(*t >= 0 && *t <= max)) {
                fprintf(stderr, "nstack serve: invalid value for %s: '%s' (a number from 0, off, to %g)\n", a, v, max);
                return NS_EXIT_USAGE;
            }
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            serve_usage(stdout);
            return NS_EXIT_OK;
        } else {
            fprintf(stderr, "nstack serve: unexpected argument '%s'\n", a);
            serve_usage(stderr);
            return NS_EXIT_USAGE;
        }
    }

    static ns_router_config router_cfg; /* large: not on the stack */
    bool with_router = false;
    if (config_file && load_config(config_file, &router_cfg, &with_router) != 0) return NS_EXIT_FAIL;

    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    char err[1024];
    ns_server *s = ns_server_start(&cfg, err, sizeof err);
    if (!s) {
        fprintf(stderr, "nstack serve: %s\n", err);
        return NS_EXIT_FAIL;
    }
    ns_router *router = NULL;
    if (with_router && !(router = ns_router_start(&router_cfg, err, sizeof err))) {
        fprintf(stderr, "nstack serve: the router: %s\n", err);
        ns_server_stop(s, GRACE_NS);
        return NS_EXIT_FAIL;
    }

    int sig = 0;
    do sigwait(&set, &sig);
    while (sig == SIGUSR1);
    ns_log_info("server", "shutting down", "signal=%s grace_s=%d", sig == SIGINT ? "SIGINT" : "SIGTERM",
                (int)(GRACE_NS / 1000000000));

    stopper st = {s, router, pthread_self()};
    pthread_t th;
    if (pthread_create(&th, NULL, stop_server, &st) != 0) {
        ns_router_stop(router);
        ns_server_stop(s, GRACE_NS);
        return NS_EXIT_OK;
    }
    for (;;) {
        sigwait(&set, &sig);
        if (sig == SIGUSR1) break;
        ns_log_warn("server", "second signal: exiting now", "signal=%s", sig == SIGINT ? "SIGINT" : "SIGTERM");
        _exit(128 + sig);
    }
    pthread_join(th, NULL);
    return NS_EXIT_OK;
}
