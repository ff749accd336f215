/* `nstack route --config router.toml`: the router alone (docs/router.md),
 * and `--explain` to see how a request would be routed without sending it.
 * Signals as in `serve`: the first SIGINT / SIGTERM stops it gracefully. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "router/router.h"

static void route_usage(FILE *f) {
    fprintf(f,
            "usage: nstack route --config FILE [--listen HOST:PORT]\n"
            "       nstack route --config FILE --explain [--path /v1/chat/completions] [--header 'Name: value']...\n"
            "                    [--body JSON | --body @FILE | --body -]\n"
            "  --config FILE   the router's TOML file (docs/router.md)\n"
            "  --listen H:P    overrides router.listen\n"
            "  --explain       print how the request would be routed (JSON) and exit; the upstreams and\n"
            "                  the mode are probed once, nothing is sent for inference\n");
}

/* The body argument: JSON text, @FILE, or - for standard input. malloc'd. */
static char *read_body(const char *arg) {
    if (strcmp(arg, "-") == 0) return cli_read_all("-", NULL);
    if (arg[0] == '@') return cli_read_all(arg + 1, NULL);
    return strdup(arg);
}

static int explain(const ns_router_config *cfg, const char *path, const char *body_arg, const char *const *headers,
                   int n_headers) {
    char *body = read_body(body_arg ? body_arg : "-");
    if (!body) {
        fprintf(stderr, "nstack route: cannot read the request body %s\n", body_arg ? body_arg : "from stdin");
        return NS_EXIT_FAIL;
    }
    cJSON *out = NULL;
    char err[1024];
    int rc = ns_router_explain(cfg, path, body, headers, n_headers, &out, err, sizeof err);
    free(body);
    if (rc != 0) {
        fprintf(stderr, "nstack route: %s\n", err);
        return NS_EXIT_FAIL;
    }
    char *text = cJSON_Print(out);
    printf("%s\n", text ? text : "{}");
    free(text);
    cJSON_Delete(out);
    return NS_EXIT_OK;
}

int cmd_route(int argc, char **argv) {
    const char *config = NULL, *listen = NULL, *path = "/v1/chat/completions", *body = NULL;
    const char *headers[32];
    int n_headers = 0;
    bool want_explain = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--config") == 0) {
            if (!(config = cli_value(argc, argv, &i))) return NS_EXIT_USAGE;
        } else if (strcmp(a, "--listen") == 0) {
            if (!(listen = cli_value(argc, argv, &i))) return NS_EXIT_USAGE;
        } else if (strcmp(a, "--explain") == 0) {
            want_explain = true;
        } else if (strcmp(a, "--path") == 0) {
            if (!(path = cli_value(argc, argv, &i))) return NS_EXIT_USAGE;
        } else if (strcmp(a, "--body") == 0) {
            if (!(body = cli_value(argc, argv, &i))) return NS_EXIT_USAGE;
        } else if (strcmp(a, "--header") == 0) {
            const char *v = cli_value(argc, argv, &i);
            if (!v) return NS_EXIT_USAGE;
            if (n_headers == 32 || !strchr(v, ':')) {
                fprintf(stderr, "nstack route: --header takes 'Name: value' (at most 32)\n");
                return NS_EXIT_USAGE;
            }
            headers[n_headers++] = v;
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            route_usage(stdout);
            return NS_EXIT_OK;
        } else {
            fprintf(stderr, "nstack route: unexpected argument '%s'\n", a);
            route_usage(stderr);
            return NS_EXIT_USAGE;
        }
    }
    if (!config) {
        fprintf(stderr, "nstack route: --config FILE is required\n");
        route_usage(stderr);
        return NS_EXIT_USAGE;
    }
    static ns_router_config cfg; /* large: not on the stack */
    char err[1024];
    if (ns_router_config_load(config, &cfg, err, sizeof err) != 0) {
        fprintf(stderr, "nstack route: %s\n", err);
        return NS_EXIT_FAIL;
    }
    if (listen) snprintf(cfg.listen, sizeof cfg.listen, "%s", listen);
    if (want_explain) return explain(&cfg, path, body, headers, n_headers);

    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    ns_router *r = ns_router_start(&cfg, err, sizeof err);
    if (!r) {
        fprintf(stderr, "nstack route: %s\n", err);
        return NS_EXIT_FAIL;
    }
    int sig = 0;
    sigwait(&set, &sig);
    ns_router_stop(r);
    return NS_EXIT_OK;
}
