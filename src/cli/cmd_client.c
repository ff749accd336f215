/* The commands that manage a running server, shaped like Ollama's:
 * ps, list, show, load, stop, pull, rm; and ours: mode. Each talks to the
 * server's HTTP API (client.h) and prints what `ollama` prints for the same
 * command. */
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "client.h"
#include "client_format.h"
#include "util/duration.h"

/* ---- shared by the commands ---- */

static const char HOST_HELP[] = "  --host URL        the server (default: NSTACK_HOST or " CLIENT_DEFAULT_HOST ")\n";

static int host_option(int argc, char **argv, int *i, const char **host) {
    return cli_opt_value(argc, argv, i, "--host", host);
}

static int usage_error(const char *cmd, void (*usage)(FILE *), const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int usage_error(const char *cmd, void (*usage)(FILE *), const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "nstack %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    usage(stderr);
    return NS_EXIT_USAGE;
}

static int open_client(const char *host, client **c) { return client_open_cli(client_host_spec(host), c); }

static int fail(client *c, const char *err) {
    fprintf(stderr, "nstack: %s\n", err);
    client_close(c);
    return NS_EXIT_FAIL;
}

static const char *str_field(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static double num_field(const cJSON *o, const char *key, double dflt) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

/* The JSON body {"model": name} every model route takes. */
static cJSON *model_body(const char *name) {
    cJSON *b = cJSON_CreateObject();
    if (b && !cJSON_AddStringToObject(b, "model", name)) {
        cJSON_Delete(b);
        return NULL;
    }
    return b;
}

/* GET path; the answer's "models" array, or NULL after printing the error. */
static cJSON *get_models(client *c, const char *path, cJSON **answer) {
    char err[1024];
    if (client_call(c, "GET", path, NULL, answer, err, sizeof err) != 0) {
        fprintf(stderr, "nstack: %s\n", err);
        return NULL;
    }
    cJSON *models = cJSON_GetObjectItemCaseSensitive(*answer, "models");
    if (!cJSON_IsArray(models)) {
        fprintf(stderr, "nstack: the server at %s answered %s without a \"models\" list\n", client_url(c), path);
        return NULL;
    }
    return models;
}

/* The common part of `ps` and `list`: a command line of --host only, then
 * GET path. Returns -1 with *c, *answer and *models set (the caller
 * closes and deletes them), or the exit code to return. */
static int fetch_model_list(int argc, char **argv, const char *cmd, void (*usage)(FILE *), const char *path,
                            client **c, cJSON **answer, cJSON **models) {
    const char *host = NULL;
    for (int i = 1; i < argc; i++) {
        int h = host_option(argc, argv, &i, &host);
        if (h < 0) return NS_EXIT_USAGE;
        if (h > 0) continue;
        if (cli_is_help(argv[i])) {
            usage(stdout);
            return NS_EXIT_OK;
        }
        return usage_error(cmd, usage, argv[i][0] == '-' ? "unknown option '%s'" : "unexpected argument '%s'",
                           argv[i]);
    }
    int open_rc = open_client(host, c);
    if (open_rc != NS_EXIT_OK) return open_rc;
    *answer = NULL;
    *models = get_models(*c, path, answer);
    if (!*models) {
        cJSON_Delete(*answer);
        client_close(*c);
        return NS_EXIT_FAIL;
    }
    return -1;
}

/* ---- ps ---- */

static void ps_usage(FILE *f) {
    fprintf(f, "usage: nstack ps [--host URL]\nThe models a server has loaded: NAME ID SIZE PROCESSOR UNTIL.\n%s",
            HOST_HELP);
}

/* Where the model's bytes are, as `ollama ps` says it. */
static void processor(double size, double vram, char *buf, size_t n) {
    if (vram <= 0) snprintf(buf, n, "100%% CPU");
    else if (vram == size) snprintf(buf, n, "100%% GPU");
    else if (vram > size || size <= 0) snprintf(buf, n, "Unknown");
    else {
        int cpu = (int)lround((size - vram) / size * 100);
        snprintf(buf, n, "%d%%/%d%% CPU/GPU", cpu, 100 - cpu);
    }
}

int cmd_ps(int argc, char **argv) {
    client *c = NULL;
    cJSON *answer = NULL, *models = NULL;
    int rc = fetch_model_list(argc, argv, "ps", ps_usage, "/api/ps", &c, &answer, &models);
    if (rc >= 0) return rc;
    table t;
    table_init(&t, 5);
    table_row(&t, (const char *[]){"NAME", "ID", "SIZE", "PROCESSOR", "UNTIL"});
    double now = (double)ns_now_wall() / 1e9;
    const cJSON *m;
    cJSON_ArrayForEach(m, models) {
        char id[16], size[32], proc[48], until[64];
        double sz = num_field(m, "size", 0), vram = num_field(m, "size_vram", 0);
        short_digest(str_field(m, "digest"), id, sizeof id);
        human_bytes((int64_t)sz, size, sizeof size);
        processor(sz, vram, proc, sizeof proc);
        double exp;
        if (!parse_rfc3339(str_field(m, "expires_at"), &exp)) snprintf(until, sizeof until, "Never");
        else if (exp < now) snprintf(until, sizeof until, "Stopping...");
        else human_time(exp, now, "Never", until, sizeof until);
        const char *name = str_field(m, "name");
        table_row(&t, (const char *[]){name ? name : "", id, size, proc, until});
    }
    table_print(&t, stdout);
    table_free(&t);
    cJSON_Delete(answer);
    client_close(c);
    return NS_EXIT_OK;
}

/* ---- list ---- */

static void list_usage(FILE *f) {
    fprintf(f, "usage: nstack list [--host URL]   (or: nstack ls)\nThe models a server has: NAME ID SIZE MODIFIED.\n%s",
            HOST_HELP);
}

int cmd_list(int argc, char **argv) {
    client *c = NULL;
    cJSON *answer = NULL, *models = NULL;
    int rc = fetch_model_list(argc, argv, "list", list_usage, "/api/tags", &c, &answer, &models);
    if (rc >= 0) return rc;
    table t;
    table_init(&t, 4);
    table_row(&t, (const char *[]){"NAME", "ID", "SIZE", "MODIFIED"});
    double now = (double)ns_now_wall() / 1e9;
    const cJSON *m;
    cJSON_ArrayForEach(m, models) {
        char id[16], size[32], modified[64];
        short_digest(str_field(m, "digest"), id, sizeof id);
        human_bytes((int64_t)num_field(m, "size", 0), size, sizeof size);
        double when;
        if (parse_rfc3339(str_field(m, "modified_at"), &when)) human_time(when, now, "Never", modified, sizeof modified);
        else snprintf(modified, sizeof modified, "Unknown");
        const char *name = str_field(m, "name");
        table_row(&t, (const char *[]){name ? name : "", id, size, modified});
    }
    table_print(&t, stdout);
    table_free(&t);
    cJSON_Delete(answer);
    client_close(c);
    return NS_EXIT_OK;
}

/* ---- show ---- */

static void show_usage(FILE *f) {
    fprintf(f,
            "usage: nstack show MODEL [--modelfile|--template|--parameters|--system|--license|--json]\n"
            "A model's details (architecture, size, context, quantization, parameters), or one part of them.\n"
            "  --modelfile       the Modelfile\n"
            "  --template        the prompt template\n"
            "  --parameters      the default parameters\n"
            "  --system          the system message\n"
            "  --license         the license\n"
            "  --json            the server's whole answer as JSON\n"
            "%s",
            HOST_HELP);
}

/* A number of parameters as Ollama writes it: 8.0B, 260K. */
static void human_count(double n, char *buf, size_t len) {
    static const struct {
        double v;
        const char *unit;
    } units[] = {{1e12, "T"}, {1e9, "B"}, {1e6, "M"}, {1e3, "K"}};
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (n < units[i].v) continue;
        double x = n / units[i].v;
        snprintf(buf, len, x == floor(x) ? "%.0f%s" : "%.1f%s", x, units[i].unit);
        return;
    }
    snprintf(buf, len, "%.0f", n);
}

/* A section of the default view: a title and its rows of (key, value). */
static void print_section(const char *title, table *t) {
    if (t->nrows == 0) return;
    printf("  %s\n", title);
    table_print_indented(t, stdout, "    ");
    putchar('\n');
}

static void show_summary(const cJSON *info) {
    const cJSON *details = cJSON_GetObjectItemCaseSensitive(info, "details");
    const cJSON *mi = cJSON_GetObjectItemCaseSensitive(info, "model_info");
    const char *arch = str_field(mi, "general.architecture");
    if (!arch) arch = str_field(details, "family");
    char key[192], val[64];
    table t;
    table_init(&t, 2);
    if (arch) table_row(&t, (const char *[]){"architecture", arch});
    const char *params = str_field(details, "parameter_size");
    double count = num_field(mi, "general.parameter_count", -1);
    if (!params && count >= 0) {
        human_count(count, val, sizeof val);
        params = val;
    }
    if (params && *params) table_row(&t, (const char *[]){"parameters", params});
    if (arch) {
        static const char *const keys[][2] = {{"context_length", "context length"},
                                              {"embedding_length", "embedding length"}};
        for (size_t i = 0; i < 2; i++) {
            snprintf(key, sizeof key, "%s.%s", arch, keys[i][0]);
            double v = num_field(mi, key, -1);
            if (v < 0) continue;
            snprintf(val, sizeof val, "%.0f", v);
            table_row(&t, (const char *[]){keys[i][1], val});
        }
    }
    const char *quant = str_field(details, "quantization_level");
    if (quant && *quant) table_row(&t, (const char *[]){"quantization", quant});
    print_section("Model", &t);
    table_free(&t);

    table_init(&t, 1);
    const cJSON *cap;
    cJSON_ArrayForEach(cap, cJSON_GetObjectItemCaseSensitive(info, "capabilities")) {
        if (cJSON_IsString(cap)) table_row(&t, (const char *[]){cap->valuestring});
    }
    print_section("Capabilities", &t);
    table_free(&t);

    /* "parameters" is Modelfile text: one "key value" per line */
    table_init(&t, 2);
    const char *p = str_field(info, "parameters");
    while (p && *p) {
        size_t n = strcspn(p, "\n");
        char line[1024];
        snprintf(line, sizeof line, "%.*s", (int)(n < sizeof line ? n : sizeof line - 1), p);
        char *k = line + strspn(line, " \t");
        char *v = k + strcspn(k, " \t");
        if (*v) *v++ = 0;
        v += strspn(v, " \t");
        if (*k) table_row(&t, (const char *[]){k, v});
        p += n + (p[n] == '\n');
    }
    print_section("Parameters", &t);
    table_free(&t);

    /* the system message and the license: their first lines */
    static const char *const texts[][2] = {{"system", "System"}, {"license", "License"}};
    for (size_t i = 0; i < 2; i++) {
        const char *text = str_field(info, texts[i][0]);
        if (!text || !*text) continue;
        printf("  %s\n", texts[i][1]);
        int lines = 0;
        for (const char *q = text + strspn(text, "\n"); *q && lines < 3;) {
            size_t n = strcspn(q, "\n");
            if (n > 0) {
                printf("    %.*s\n", (int)n, q);
                lines++;
            }
            q += n + (q[n] == '\n');
            if (lines == 2 && *q) {
                printf("    ...\n");
                break;
            }
        }
        putchar('\n');
    }
}

int cmd_show(int argc, char **argv) {
    const char *host = NULL, *model = NULL, *part = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int h = host_option(argc, argv, &i, &host);
        if (h < 0) return NS_EXIT_USAGE;
        if (h > 0) continue;
        if (cli_is_help(a)) {
            show_usage(stdout);
            return NS_EXIT_OK;
        }
        if (strcmp(a, "--modelfile") == 0 || strcmp(a, "--template") == 0 || strcmp(a, "--parameters") == 0 ||
            strcmp(a, "--system") == 0 || strcmp(a, "--license") == 0 || strcmp(a, "--json") == 0) {
            if (part && strcmp(part, a) != 0) return usage_error("show", show_usage, "choose one of the views, not '%s' too", a);
            part = a;
        } else if (a[0] == '-' && a[1]) {
            return usage_error("show", show_usage, "unknown option '%s'", a);
        } else if (!model) {
            model = a;
        } else {
            return usage_error("show", show_usage, "unexpected argument '%s' (one model at a time)", a);
        }
    }
    if (!model) return usage_error("show", show_usage, "%s", "which model? (nstack show MODEL)");
    client *c;
    int open_rc = open_client(host, &c);
    if (open_rc != NS_EXIT_OK) return open_rc;
    char err[1024];
    cJSON *body = model_body(model), *info = NULL;
    int rc = body ? client_call(c, "POST", "/api/show", body, &info, err, sizeof err) : -1;
    cJSON_Delete(body);
    if (rc != 0) {
        cJSON_Delete(info);
        return fail(c, body ? err : "out of memory");
    }
    if (!cJSON_IsObject(info)) {
        cJSON_Delete(info);
        snprintf(err, sizeof err, "the server at %s answered /api/show with no JSON object", client_url(c));
        return fail(c, err);
    }
    if (!part) {
        show_summary(info);
    } else if (strcmp(part, "--json") == 0) {
        char *s = cJSON_Print(info);
        if (s) puts(s);
        free(s);
    } else {
        const char *text = str_field(info, part + 2);
        if (text) {
            fputs(text, stdout);
            if (*text && text[strlen(text) - 1] != '\n') putchar('\n');
        }
    }
    cJSON_Delete(info);
    client_close(c);
    return NS_EXIT_OK;
}

/* ---- load ---- */

static void load_usage(FILE *f) {
    fprintf(f,
            "usage: nstack load MODEL [--keep-alive DURATION] [--ctx N]\n"
            "Loads a model on the server so the first request does not wait for it.\n"
            "  --keep-alive D    how long it stays loaded when idle: \"5m\", \"1h\", seconds, -1 = forever\n"
            "  --ctx N           context size in tokens (Ollama's num_ctx)\n"
            "%s",
            HOST_HELP);
}

/* A keep_alive value for the body: a number of seconds as a number, any
 * other duration as the string it is. */
static cJSON *keep_alive_json(const char *v) {
    long long secs;
    if (cli_parse_int(v, INT32_MIN, INT32_MAX, &secs)) return cJSON_CreateNumber((double)secs);
    return cJSON_CreateString(v);
}

int cmd_load(int argc, char **argv) {
    const char *host = NULL, *model = NULL, *keep_alive = NULL;
    long long n_ctx = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        int h = host_option(argc, argv, &i, &host);
        if (h < 0) return NS_EXIT_USAGE;
        if (h > 0) continue;
        if (cli_is_help(a)) {
            load_usage(stdout);
            return NS_EXIT_OK;
        }
        if (strcmp(a, "--keep-alive") == 0) {
            if (!(v = cli_value(argc, argv, &i))) return NS_EXIT_USAGE;
            int64_t ns;
            char err[256];
            if (ns_duration_parse(v, &ns, err, sizeof err) != 0)
                return usage_error("load", load_usage, "invalid value for --keep-alive: %s", err);
            keep_alive = v;
        } else if (strcmp(a, "--ctx") == 0) {
            if (!(v = cli_value(argc, argv, &i))) return NS_EXIT_USAGE;
            if (!cli_parse_int(v, 1, 1 << 24, &n_ctx))
                return usage_error("load", load_usage, "invalid value for --ctx: '%s' (a number of tokens)", v);
        } else if (a[0] == '-' && a[1]) {
            return usage_error("load", load_usage, "unknown option '%s'", a);
        } else if (!model) {
            model = a;
        } else {
            return usage_error("load", load_usage, "unexpected argument '%s' (one model at a time)", a);
        }
    }
    if (!model) return usage_error("load", load_usage, "%s", "which model? (nstack load MODEL)");
    client *c;
    int open_rc = open_client(host, &c);
    if (open_rc != NS_EXIT_OK) return open_rc;
    char err[1024];
    cJSON *body = model_body(model), *answer = NULL;
    if (!body) return fail(c, "out of memory");
    if (keep_alive) cJSON_AddItemToObject(body, "keep_alive", keep_alive_json(keep_alive));
    if (n_ctx > 0) cJSON_AddNumberToObject(cJSON_AddObjectToObject(body, "options"), "num_ctx", (double)n_ctx);
    int rc = client_call(c, "POST", "/api/load", body, &answer, err, sizeof err);
    if (rc != 0 && client_last_status(c) == 404 && !client_last_error_from_server(c)) {
        /* a server without /api/load (Ollama): a generate with no prompt loads */
        cJSON_AddBoolToObject(body, "stream", 0);
        cJSON_Delete(answer);
        rc = client_call(c, "POST", "/api/generate", body, &answer, err, sizeof err);
    }
    cJSON_Delete(body);
    if (rc != 0) {
        cJSON_Delete(answer);
        return fail(c, err);
    }
    const char *name = str_field(answer, "model");
    double load_ns = num_field(answer, "load_duration", -1);
    if (load_ns >= 0) printf("loaded %s in %.2fs\n", name ? name : model, load_ns / 1e9);
    else printf("loaded %s\n", name ? name : model);
    cJSON_Delete(answer);
    client_close(c);
    return NS_EXIT_OK;
}

/* ---- stop ---- */

static void stop_usage(FILE *f) {
    fprintf(f,
            "usage: nstack stop MODEL | nstack stop --all\n"
            "Unloads a model from the server's memory (or every model with --all).\n"
            "%s",
            HOST_HELP);
}

int cmd_stop(int argc, char **argv) {
    const char *host = NULL, *model = NULL;
    bool all = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int h = host_option(argc, argv, &i, &host);
        if (h < 0) return NS_EXIT_USAGE;
        if (h > 0) continue;
        if (cli_is_help(a)) {
            stop_usage(stdout);
            return NS_EXIT_OK;
        }
        if (strcmp(a, "--all") == 0) all = true;
        else if (a[0] == '-' && a[1]) return usage_error("stop", stop_usage, "unknown option '%s'", a);
        else if (!model) model = a;
        else return usage_error("stop", stop_usage, "unexpected argument '%s' (one model, or --all)", a);
    }
    if (!model && !all) return usage_error("stop", stop_usage, "%s", "which model? (nstack stop MODEL, or --all)");
    if (model && all) return usage_error("stop", stop_usage, "a model or --all, not both (got '%s')", model);
    client *c;
    int open_rc = open_client(host, &c);
    if (open_rc != NS_EXIT_OK) return open_rc;
    char err[1024];
    cJSON *body = all ? cJSON_CreateObject() : model_body(model);
    if (!body) return fail(c, "out of memory");
    int rc;
    if (all) {
        cJSON_AddBoolToObject(body, "all", 1);
        rc = client_call(c, "POST", "/api/unload", body, NULL, err, sizeof err);
    } else {
        /* as `ollama stop` does it: a generation with nothing to do and keep_alive 0 */
        cJSON_AddNumberToObject(body, "keep_alive", 0);
        cJSON_AddBoolToObject(body, "stream", 0);
        rc = client_call(c, "POST", "/api/generate", body, NULL, err, sizeof err);
        if (rc != 0 && client_last_status(c) == 404)
            snprintf(err, sizeof err, "couldn't find model \"%s\" to stop", model);
    }
    cJSON_Delete(body);
    if (rc != 0) return fail(c, err);
    client_close(c);
    return NS_EXIT_OK;
}

/* ---- pull ---- */

static void pull_usage(FILE *f) {
    fprintf(f,
            "usage: nstack pull URL [NAME]   or   nstack pull NAME --url URL\n"
            "Downloads a GGUF file from an http(s) URL into the server's model store as NAME (default: from\n"
            "the file's name, tag latest). Progress goes to stderr.\n"
            "  --url URL         where to download from\n"
            "%s",
            HOST_HELP);
}

typedef struct {
    bool tty;           /* redraw one progress line */
    bool line_open;     /* the tty progress line has no newline yet */
    char status[64];    /* the last status printed */
    int last_decile;    /* without a tty: the last 10% step printed */
    bool success;
} pull_progress;

static void end_progress_line(pull_progress *p) {
    if (p->line_open) fputc('\n', stderr);
    p->line_open = false;
}

static int on_pull_line(void *user, const cJSON *line) {
    pull_progress *p = user;
    const char *status = str_field(line, "status");
    if (!status) return 0;
    if (strcmp(status, "success") == 0) p->success = true;
    double total = num_field(line, "total", 0), done = num_field(line, "completed", 0);
    bool downloading = strcmp(status, "downloading") == 0 || (total > 0 && strncmp(status, "pulling ", 8) == 0);
    if (!downloading) {
        if (strcmp(status, p->status) != 0) {
            end_progress_line(p);
            fprintf(stderr, "%s\n", status);
        }
        snprintf(p->status, sizeof p->status, "%s", status);
        return 0;
    }
    char id[16], got[32], all[32];
    short_digest(str_field(line, "digest"), id, sizeof id);
    const char *label = *id ? "pulling " : "downloading"; /* the digest comes once the file is hashed */
    human_bytes((int64_t)done, got, sizeof got);
    human_bytes((int64_t)total, all, sizeof all);
    int pct = total > 0 ? (int)(done * 100 / total) : -1;
    if (pct > 100) pct = 100;
    if (p->tty) {
        if (pct >= 0) {
            char bar[3 * 25 + 1] = "";
            int filled = pct / 4;
            for (int i = 0; i < 25; i++) strcat(bar, i < filled ? "\xe2\x96\x88" : " ");
            fprintf(stderr, "\r\033[K%s%s: %3d%% \xe2\x96\x95%s\xe2\x96\x8f %s/%s", label, id, pct, bar, got, all);
        } else {
            fprintf(stderr, "\r\033[K%s%s: %s", label, id, got);
        }
        p->line_open = true;
    } else if (pct >= 0 && pct / 10 > p->last_decile) {
        p->last_decile = pct / 10;
        fprintf(stderr, "%s%s: %d%% (%s/%s)\n", label, id, p->last_decile * 10, got, all);
    }
    snprintf(p->status, sizeof p->status, "%s", status);
    fflush(stderr);
    return 0;
}

int cmd_pull(int argc, char **argv) {
    const char *host = NULL, *url = NULL, *name = NULL, *pos[2] = {NULL, NULL};
    int n_pos = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int h = host_option(argc, argv, &i, &host);
        if (h < 0) return NS_EXIT_USAGE;
        if (h > 0) continue;
        if (cli_is_help(a)) {
            pull_usage(stdout);
            return NS_EXIT_OK;
        }
        if (strcmp(a, "--url") == 0) {
            if (!(url = cli_value(argc, argv, &i))) return NS_EXIT_USAGE;
        } else if (a[0] == '-' && a[1]) {
            return usage_error("pull", pull_usage, "unknown option '%s'", a);
        } else if (n_pos < 2) {
            pos[n_pos++] = a;
        } else {
            return usage_error("pull", pull_usage, "unexpected argument '%s'", a);
        }
    }
    if (n_pos == 0) return usage_error("pull", pull_usage, "%s", "what to pull? (a URL, or NAME --url URL)");
    if (strstr(pos[0], "://")) {
        if (url) return usage_error("pull", pull_usage, "two URLs: '%s' and --url", pos[0]);
        url = pos[0];
        name = pos[1];
    } else {
        if (n_pos > 1) return usage_error("pull", pull_usage, "unexpected argument '%s' (NAME --url URL)", pos[1]);
        name = pos[0];
    }
    client *c;
    int open_rc = open_client(host, &c);
    if (open_rc != NS_EXIT_OK) return open_rc;
    char err[1024];
    cJSON *body = model_body(name ? name : url);
    if (!body) return fail(c, "out of memory");
    if (url && name) cJSON_AddStringToObject(body, "url", url);
    cJSON_AddBoolToObject(body, "stream", 1);
    pull_progress p = {.tty = isatty(STDERR_FILENO) != 0};
    int rc = client_stream(c, "POST", "/api/pull", body, on_pull_line, &p, err, sizeof err);
    cJSON_Delete(body);
    end_progress_line(&p);
    if (rc == 0 && !p.success) {
        snprintf(err, sizeof err, "the server at %s ended the pull without saying \"success\"", client_url(c));
        rc = -1;
    }
    if (rc != 0) return fail(c, err);
    client_close(c);
    return NS_EXIT_OK;
}

/* ---- rm ---- */

static void rm_usage(FILE *f) {
    fprintf(f, "usage: nstack rm NAME...\nRemoves models from the server's store.\n%s", HOST_HELP);
}

int cmd_rm(int argc, char **argv) {
    const char *host = NULL;
    int n_names = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int h = host_option(argc, argv, &i, &host);
        if (h < 0) return NS_EXIT_USAGE;
        if (h > 0) continue;
        if (cli_is_help(a)) {
            rm_usage(stdout);
            return NS_EXIT_OK;
        }
        if (a[0] == '-' && a[1]) return usage_error("rm", rm_usage, "unknown option '%s'", a);
        n_names++;
    }
    if (n_names == 0) return usage_error("rm", rm_usage, "%s", "which model? (nstack rm NAME...)");
    client *c;
    int open_rc = open_client(host, &c);
    if (open_rc != NS_EXIT_OK) return open_rc;
    int rc = NS_EXIT_OK;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--host") == 0) {
            i++;
            continue;
        }
        if (argv[i][0] == '-' && argv[i][1]) continue;
        char err[1024];
        cJSON *body = model_body(argv[i]);
        if (!body || client_call(c, "DELETE", "/api/delete", body, NULL, err, sizeof err) != 0) {
            fprintf(stderr, "nstack: %s\n", body ? err : "out of memory");
            rc = NS_EXIT_FAIL;
            /* the server is gone: the other names would say the same */
            if (client_last_status(c) == 0) {
                cJSON_Delete(body);
                break;
            }
        } else {
            printf("deleted '%s'\n", argv[i]);
        }
        cJSON_Delete(body);
    }
    client_close(c);
    return rc;
}

/* ---- mode ---- */

static void mode_usage(FILE *f) {
    fprintf(f,
            "usage: nstack mode [normal|gaming] [--json]\n"
            "The server's mode, or sets it. GAMING tells the router to keep inference off that machine.\n"
            "  --json            the server's answer as JSON\n"
            "%s",
            HOST_HELP);
}

int cmd_mode(int argc, char **argv) {
    const char *host = NULL, *want = NULL;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int h = host_option(argc, argv, &i, &host);
        if (h < 0) return NS_EXIT_USAGE;
        if (h > 0) continue;
        if (cli_is_help(a)) {
            mode_usage(stdout);
            return NS_EXIT_OK;
        }
        if (strcmp(a, "--json") == 0) json = true;
        else if (a[0] == '-' && a[1]) return usage_error("mode", mode_usage, "unknown option '%s'", a);
        else if (!want) want = a;
        else return usage_error("mode", mode_usage, "unexpected argument '%s' (one mode: normal or gaming)", a);
    }
    /* checked here too, so a typo never reaches (or needs) the server */
    if (want && strcasecmp(want, "normal") != 0 && strcasecmp(want, "gaming") != 0)
        return usage_error("mode", mode_usage, "unknown mode '%s' (normal or gaming)", want);
    client *c;
    int open_rc = open_client(host, &c);
    if (open_rc != NS_EXIT_OK) return open_rc;
    char err[1024];
    cJSON *body = NULL, *answer = NULL;
    if (want) {
        char upper[16];
        size_t n = 0;
        for (; want[n] && n < sizeof upper - 1; n++) upper[n] = (char)toupper((unsigned char)want[n]);
        upper[n] = '\0';
        body = cJSON_CreateObject();
        if (!body || !cJSON_AddStringToObject(body, "mode", upper)) {
            cJSON_Delete(body);
            client_close(c);
            fprintf(stderr, "nstack mode: out of memory\n");
            return NS_EXIT_FAIL;
        }
    }
    int rc = client_call(c, want ? "PUT" : "GET", "/mode", body, &answer, err, sizeof err);
    cJSON_Delete(body);
    const char *mode = str_field(answer, "mode"), *since = str_field(answer, "since");
    if (rc == 0 && !mode) {
        snprintf(err, sizeof err, "the server at %s answered /mode without a \"mode\"", client_url(c));
        rc = -1;
    }
    if (rc != 0) {
        fprintf(stderr, "nstack mode: %s\n", err);
        cJSON_Delete(answer);
        client_close(c);
        return NS_EXIT_FAIL;
    }
    if (json) {
        char *text = cJSON_PrintUnformatted(answer);
        if (text) puts(text);
        free(text);
    } else {
        printf("%s (since %s)\n", mode, since ? since : "unknown");
        const char *note = str_field(answer, "note");
        if (note) fprintf(stderr, "nstack mode: note: %s\n", note);
    }
    cJSON_Delete(answer);
    client_close(c);
    return NS_EXIT_OK;
}
