/* `nstack ai watch`: a live view of the machine and a server, redrawn in
 * place; and `nstack ai benchmark`: a short standard generation against a
 * runtime speaking the Ollama API, with TTFT and tokens/s.
 *
 * The watch draws with plain ANSI sequences (alternate screen, cursor
 * positioning, erase in line / display) and reads keys in raw mode
 * (termios); the layout itself is watch_view.c, testable without a
 * terminal. */
#define _GNU_SOURCE /* setenv, pipe2 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "ai.h"
#include "cli.h"
#include "client.h"
#include "monitor/sampler.h"
#include "util/duration.h"
#include "util/log.h"
#include "watch_view.h"

/* ---- options shared by both commands ---- */

/* Log lines (NVML's "no GPU" note) would land in the middle of the frame:
 * only errors, unless the user asked for a level. */
static void quiet_logs(void) {
    if (!getenv("NSTACK_LOG")) {
        setenv("NSTACK_LOG", "error", 1);
        ns_log_init();
    }
}

/* ======================= ai watch ======================= */

static void watch_usage(FILE *f) {
    fprintf(f,
            "usage: nstack ai watch [--host URL] [--interval DUR] [--once] [--json]\n"
            "A live view of CPU, RAM, each GPU, the server's loaded models, recent\n"
            "generations and alerts, redrawn in place; q or Ctrl-C quits.\n"
            "  --host URL        the server (default: NSTACK_HOST or " CLIENT_DEFAULT_HOST ")\n"
            "  --interval DUR    time between refreshes (default 1s, at least 50ms)\n"
            "  --once            print one snapshot and exit (also when stdout is not a terminal)\n"
            "  --json            with --once: the server's answers as one JSON object\n");
}

/* The terminal's state, for the exit paths and the signal handlers. */
static struct termios g_saved_tio;
static volatile sig_atomic_t g_raw = 0; /* raw mode and alternate screen are on */
static volatile sig_atomic_t g_winch = 0;
static int g_wake[2] = {-1, -1}; /* self-pipe: a signal wakes poll() */

#define ENTER_SCREEN "\x1b[?1049h\x1b[?25l\x1b[H\x1b[2J"
#define LEAVE_SCREEN "\x1b[0m\x1b[?25h\x1b[?1049l"

static void write_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return;
        }
        p += w, n -= (size_t)w;
    }
}

/* Async-signal-safe: write(2) and tcsetattr(3) only. */
static void restore_terminal(void) {
    if (!g_raw) return;
    g_raw = 0;
    write_all(STDOUT_FILENO, LEAVE_SCREEN, sizeof LEAVE_SCREEN - 1);
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &g_saved_tio);
}

/* SIGTERM, SIGINT (from kill: Ctrl-C is a key in raw mode), SIGHUP,
 * SIGQUIT: give the terminal back, then die of the signal as if there were
 * no handler, so the parent sees what happened. */
static void on_fatal_signal(int sig) {
    restore_terminal();
    signal(sig, SIG_DFL);
    raise(sig);
}

static void on_winch(int sig) {
    (void)sig;
    int saved = errno;
    g_winch = 1;
    if (g_wake[1] >= 0) {
        ssize_t w = write(g_wake[1], "w", 1);
        (void)w;
    }
    errno = saved;
}

static int enter_terminal(char *err, size_t errlen) {
    if (tcgetattr(STDIN_FILENO, &g_saved_tio) != 0) {
        snprintf(err, errlen, "cannot read the terminal's settings: %s", strerror(errno));
        return -1;
    }
    if (pipe2(g_wake, O_NONBLOCK | O_CLOEXEC) != 0) {
        snprintf(err, errlen, "cannot create a pipe: %s", strerror(errno));
        return -1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_fatal_signal;
    int fatal[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
    for (size_t i = 0; i < sizeof fatal / sizeof fatal[0]; i++) sigaction(fatal[i], &sa, NULL);
    sa.sa_handler = on_winch;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGWINCH, &sa, NULL);

    struct termios raw = g_saved_tio;
    /* no echo, keys one at a time, Ctrl-C / Ctrl-Z / Ctrl-S as plain keys
     * (q and Ctrl-C quit through the same clean path); output processing
     * stays on */
    raw.c_lflag &= ~(tcflag_t)(ECHO | ICANON | ISIG | IEXTEN);
    raw.c_iflag &= ~(tcflag_t)(IXON | ICRNL | BRKINT | INPCK | ISTRIP);
    raw.c_cc[VMIN] = 0;
    raw.c_cc[VTIME] = 0;
    g_raw = 1; /* before the change: a signal during it still restores */
    atexit(restore_terminal);
    if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &raw) != 0) {
        g_raw = 0;
        snprintf(err, errlen, "cannot put the terminal in raw mode: %s", strerror(errno));
        return -1;
    }
    write_all(STDOUT_FILENO, ENTER_SCREEN, sizeof ENTER_SCREEN - 1);
    return 0;
}

static void terminal_size(int *w, int *h) {
    struct winsize ws;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 && ws.ws_row > 0) {
        *w = ws.ws_col;
        *h = ws.ws_row;
        return;
    }
    const char *c = getenv("COLUMNS"), *l = getenv("LINES");
    *w = c && atoi(c) > 0 ? atoi(c) : 80;
    *h = l && atoi(l) > 0 ? atoi(l) : 24;
}

/* The short reason in a client error: what follows "... at URL: ". */
static const char *short_reason(const char *err, const char *url) {
    const char *p = strstr(err, url);
    if (p && strncmp(p + strlen(url), ": ", 2) == 0) return p + strlen(url) + 2;
    return err;
}

/* One reading: the server's answers, or the machine read here when the
 * server cannot be reached. raw (may be NULL) gets the answers as one
 * object for --json. */
static void fetch(client *c, watch_data *d, cJSON **raw) {
    watch_data_init(d, client_url(c));
    cJSON *res = NULL, *ps = NULL, *gens = NULL;
    char err[1024];
    if (client_call(c, "GET", "/api/resources", NULL, &res, err, sizeof err) != 0 || !cJSON_IsObject(res)) {
        cJSON_Delete(res);
        res = NULL;
        ns_resource_sample s;
        memset(&s, 0, sizeof s);
        if (ns_monitor_read_now(&s) == 0) watch_data_from_sample(d, &s);
        d->reachable = false;
        const char *why = short_reason(err, client_url(c));
        size_t n = strlen(why);
        if (n >= sizeof d->error) n = sizeof d->error - 1;
        memcpy(d->error, why, n);
        d->error[n] = 0;
        if (raw) {
            *raw = cJSON_CreateObject();
            cJSON_AddStringToObject(*raw, "server", client_url(c));
            cJSON_AddBoolToObject(*raw, "reachable", false);
            cJSON_AddStringToObject(*raw, "error", err);
        }
        return;
    }
    /* the other two are extras: a server without them still shows */
    if (client_call(c, "GET", "/api/ps", NULL, &ps, err, sizeof err) != 0) ps = NULL;
    if (client_call(c, "GET", "/api/metrics/generations?limit=5", NULL, &gens, err, sizeof err) != 0) gens = NULL;
    watch_data_from_json(d, res, ps, gens);
    if (raw) {
        *raw = cJSON_CreateObject();
        cJSON_AddStringToObject(*raw, "server", client_url(c));
        cJSON_AddBoolToObject(*raw, "reachable", true);
        cJSON_AddItemToObject(*raw, "resources", res);
        cJSON_AddItemToObject(*raw, "ps", ps ? ps : cJSON_CreateNull());
        cJSON_AddItemToObject(*raw, "generations", gens ? gens : cJSON_CreateNull());
        return;
    }
    cJSON_Delete(res);
    cJSON_Delete(ps);
    cJSON_Delete(gens);
}

#define FRAME_CAP (256 * 1024)

/* Draws a frame: every line positioned and erased to its end, then the
 * rest of the screen erased; one write, so the terminal never shows half
 * a frame or scrolls. */
static void draw(const watch_data *d, char *frame, char *out) {
    int w, h;
    terminal_size(&w, &h);
    int n = watch_render(d, w, h, frame, FRAME_CAP);
    size_t o = 0;
    const char *line = frame;
    for (int i = 0; i < n && o + 64 < FRAME_CAP * 2; i++) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        o += (size_t)snprintf(out + o, 32, "\x1b[%d;1H\x1b[2K", i + 1);
        if (o + len + 32 >= (size_t)FRAME_CAP * 2) break;
        memcpy(out + o, line, len);
        o += len;
        line = end ? end + 1 : line + len;
    }
    if (n < h) o += (size_t)snprintf(out + o, 32, "\x1b[%d;1H\x1b[J", n + 1);
    write_all(STDOUT_FILENO, out, o);
}

/* Waits for a key, a resize or the deadline. 1: quit, 0 otherwise. */
static int wait_input(int timeout_ms, bool *refresh) {
    struct pollfd p[2] = {{.fd = STDIN_FILENO, .events = POLLIN}, {.fd = g_wake[0], .events = POLLIN}};
    int r = poll(p, 2, timeout_ms);
    if (r <= 0) return 0;
    if (p[1].revents & POLLIN) {
        char b[16];
        while (read(g_wake[0], b, sizeof b) > 0) {
        }
    }
    if (p[0].revents & (POLLHUP | POLLERR)) return 1; /* the terminal went away */
    if (p[0].revents & POLLIN) {
        char keys[64];
        ssize_t n = read(STDIN_FILENO, keys, sizeof keys);
        if (n == 0) return 1;
        for (ssize_t i = 0; i < n; i++) {
            if (keys[i] == 'q' || keys[i] == 'Q' || keys[i] == 3 /* Ctrl-C */ || keys[i] == 4 /* Ctrl-D */) return 1;
            if (keys[i] == 'r' || keys[i] == ' ') *refresh = true;
        }
    }
    return 0;
}

int ai_watch(int argc, char **argv) {
    const char *host = NULL, *interval_s = "1s";
    bool once = false, json = false;
    for (int i = 1; i < argc; i++) {
        const char *v;
        int r;
        if ((r = cli_opt_value(argc, argv, &i, "--host", &v)) != 0) {
            if (r < 0) return NS_EXIT_USAGE;
            host = v;
        } else if ((r = cli_opt_value(argc, argv, &i, "--interval", &v)) != 0) {
            if (r < 0) return NS_EXIT_USAGE;
            interval_s = v;
        } else if (strcmp(argv[i], "--once") == 0) {
            once = true;
        } else if (strcmp(argv[i], "--json") == 0) {
            json = true;
        } else if (cli_is_help(argv[i])) {
            watch_usage(stdout);
            return NS_EXIT_OK;
        } else {
            fprintf(stderr, "nstack ai %s: %s '%s'\n", argv[0],
                    argv[i][0] == '-' ? "unknown option" : "unexpected argument", argv[i]);
            watch_usage(stderr);
            return NS_EXIT_USAGE;
        }
    }
    int64_t interval_ns;
    char why[128];
    if (ns_duration_parse(interval_s, &interval_ns, why, sizeof why) != 0 || interval_ns < 50000000LL) {
        fprintf(stderr, "nstack ai %s: --interval must be a duration of 50ms or more, such as 500ms or 2s (got '%s')\n",
                argv[0], interval_s);
        return NS_EXIT_USAGE;
    }
    quiet_logs();
    client *c = NULL;
    int rc = client_open_cli(client_host_spec(host), &c);
    if (rc != NS_EXIT_OK) return rc;
    /* a server that accepts and never answers must not freeze the view
     * (and its q key): each poll gives up after 2 s and shows it unreachable */
    client_set_timeout(c, 2000);

    watch_data *d = malloc(sizeof *d);
    char *frame = malloc(FRAME_CAP), *out = malloc((size_t)FRAME_CAP * 2);
    if (!d || !frame || !out) {
        fprintf(stderr, "nstack: out of memory\n");
        rc = NS_EXIT_FAIL;
        goto done;
    }

    /* not a terminal (a pipe, a file, a script): one snapshot, which keeps
     * the command scriptable */
    if (once || json || !isatty(STDOUT_FILENO) || !isatty(STDIN_FILENO)) {
        cJSON *raw = NULL;
        fetch(c, d, json ? &raw : NULL);
        if (json) {
            char *s = cJSON_Print(raw);
            if (s) printf("%s\n", s);
            free(s);
            cJSON_Delete(raw);
        } else {
            int w = 80, h;
            if (isatty(STDOUT_FILENO)) terminal_size(&w, &h);
            else if (getenv("COLUMNS") && atoi(getenv("COLUMNS")) > 0) w = atoi(getenv("COLUMNS"));
            watch_render(d, w, 0, frame, FRAME_CAP);
            printf("%s\n", frame);
        }
        /* a snapshot of an unreachable server still shows the machine, but
         * says so in its status */
        rc = d->reachable ? NS_EXIT_OK : NS_EXIT_FAIL;
        goto done;
    }

    char err[256];
    if (enter_terminal(err, sizeof err) != 0) {
        fprintf(stderr, "nstack: %s\n", err);
        rc = NS_EXIT_FAIL;
        goto done;
    }
    int64_t next = 0;
    for (;;) {
        int64_t now = ns_now_mono();
        if (now >= next) {
            fetch(c, d, NULL);
            draw(d, frame, out);
            next = ns_now_mono() + interval_ns;
            continue;
        }
        bool refresh = false;
        int timeout_ms = (int)((next - now + 999999) / 1000000);
        if (wait_input(timeout_ms, &refresh)) break;
        if (refresh) next = 0;
        if (g_winch) {
            g_winch = 0;
            draw(d, frame, out); /* the new size at once, with the data we have */
        }
    }
    restore_terminal();
    rc = NS_EXIT_OK;
done:
    free(d);
    free(frame);
    free(out);
    client_close(c);
    return rc;
}

/* ======================= ai benchmark ======================= */

#define BENCH_DEFAULT_PROMPT "Write a short paragraph about the history of computers."
#define BENCH_MAX_RUNS 100

static void bench_usage(FILE *f) {
    fprintf(f,
            "usage: nstack ai benchmark [--host URL] [--runtime URL] [--model M] [--prompt TEXT]\n"
            "                           [--tokens N] [--runs N] [--json]\n"
            "A short standard generation (streaming POST /api/generate, temperature 0) against\n"
            "a runtime speaking the Ollama API: time to first token and tokens/s per run, and\n"
            "the median.\n"
            "  --host URL        our server (default: NSTACK_HOST or " CLIENT_DEFAULT_HOST ")\n"
            "  --runtime URL     any Ollama-compatible runtime instead (e.g. http://127.0.0.1:11434)\n"
            "  --model M         the model (default: the first loaded, else the first installed)\n"
            "  --prompt TEXT     the prompt (default: \"" BENCH_DEFAULT_PROMPT "\")\n"
            "  --tokens N        tokens to generate per run (default 128)\n"
            "  --runs N          runs (default 3, at most 100)\n"
            "  --json            one JSON object\n");
}

typedef struct {
    double start;          /* cli_now() when the request went out */
    double first, last;    /* first and last non-empty token, 0 none */
    int chunks;            /* non-empty response pieces */
    double eval_count, eval_duration_ns, prompt_eval_count, prompt_eval_duration_ns, load_duration_ns,
        total_duration_ns;
    bool done;
    char done_reason[32];
} bench_run;

static int on_bench_line(void *user, const cJSON *line) {
    bench_run *r = user;
    double now = cli_now();
    const cJSON *resp = cJSON_GetObjectItemCaseSensitive(line, "response");
    if (cJSON_IsString(resp) && resp->valuestring[0]) {
        if (r->first == 0) r->first = now;
        r->last = now;
        r->chunks++;
    }
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(line, "done"))) {
        r->done = true;
        const cJSON *v;
#define NUM(field, key)                                               \
    v = cJSON_GetObjectItemCaseSensitive(line, key);                  \
    r->field = cJSON_IsNumber(v) ? v->valuedouble : -1;
        NUM(eval_count, "eval_count");
        NUM(eval_duration_ns, "eval_duration");
        NUM(prompt_eval_count, "prompt_eval_count");
        NUM(prompt_eval_duration_ns, "prompt_eval_duration");
        NUM(load_duration_ns, "load_duration");
        NUM(total_duration_ns, "total_duration");
#undef NUM
        v = cJSON_GetObjectItemCaseSensitive(line, "done_reason");
        snprintf(r->done_reason, sizeof r->done_reason, "%s", cJSON_IsString(v) ? v->valuestring : "");
    }
    return 0;
}

/* The numbers of one run; -1 where unknown. */
typedef struct {
    double ttft_ms, tps, client_tps, tokens, prompt_tokens, total_ms, load_ms;
} bench_result;

static bench_result bench_numbers(const bench_run *r, double end) {
    bench_result o;
    o.ttft_ms = r->first > 0 ? (r->first - r->start) * 1000 : -1;
    o.tokens = r->eval_count >= 0 ? r->eval_count : r->chunks;
    o.prompt_tokens = r->prompt_eval_count;
    o.tps = r->eval_count > 0 && r->eval_duration_ns > 0 ? r->eval_count / (r->eval_duration_ns / 1e9) : -1;
    /* client side, end to end: the tokens over the time from sending the
     * request to the last token (TTFT included). Not first-to-last token:
     * a fast runtime's tokens arrive in a few network reads, and the gap
     * between the first and the last read says little. */
    o.client_tps = -1;
    if (r->last > r->start && o.tokens > 0) o.client_tps = o.tokens / (r->last - r->start);
    o.total_ms = (end - r->start) * 1000;
    o.load_ms = r->load_duration_ns >= 0 ? r->load_duration_ns / 1e6 : -1;
    return o;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The median of the known (>= 0) values; -1 for none. */
static double median(const bench_result *rs, int n, size_t offset) {
    double v[BENCH_MAX_RUNS];
    int k = 0;
    for (int i = 0; i < n; i++) {
        double x;
        memcpy(&x, (const char *)&rs[i] + offset, sizeof x);
        if (x >= 0) v[k++] = x;
    }
    if (k == 0) return -1;
    qsort(v, (size_t)k, sizeof v[0], cmp_double);
    return k % 2 ? v[k / 2] : (v[k / 2 - 1] + v[k / 2]) / 2;
}

static void add_num_or_null(cJSON *o, const char *key, double v) {
    if (v >= 0) cJSON_AddNumberToObject(o, key, round(v * 100) / 100);
    else cJSON_AddNullToObject(o, key);
}

static void fmt_num(char *buf, size_t n, double v, const char *fmt) {
    if (v >= 0) snprintf(buf, n, fmt, v);
    else snprintf(buf, n, "-");
}

static void fmt_ms(char *buf, size_t n, double ms) {
    if (ms < 0) snprintf(buf, n, "-");
    else if (ms < 1000) snprintf(buf, n, "%.1f ms", ms);
    else snprintf(buf, n, "%.2f s", ms / 1000);
}

/* The model to use when none was given: the first loaded, else the first
 * installed. NULL after saying why. */
static char *default_model(client *c) {
    char err[1024];
    const char *paths[] = {"/api/ps", "/api/tags"};
    for (int p = 0; p < 2; p++) {
        cJSON *a = NULL;
        if (client_call(c, "GET", paths[p], NULL, &a, err, sizeof err) != 0) {
            fprintf(stderr, "nstack: %s\n", err);
            return NULL;
        }
        const cJSON *m = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(a, "models"), 0);
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(m, "name");
        char *r = cJSON_IsString(name) ? strdup(name->valuestring) : NULL;
        cJSON_Delete(a);
        if (r) return r;
    }
    fprintf(stderr, "nstack: the runtime at %s has no models; pass --model (or pull one first)\n", client_url(c));
    return NULL;
}

int ai_benchmark(int argc, char **argv) {
    const char *host = NULL, *runtime = NULL, *model_opt = NULL, *prompt = BENCH_DEFAULT_PROMPT;
    long long tokens = 128, runs = 3;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        const char *v;
        int r;
        if ((r = cli_opt_value(argc, argv, &i, "--host", &v)) != 0) {
            if (r < 0) return NS_EXIT_USAGE;
            host = v;
        } else if ((r = cli_opt_value(argc, argv, &i, "--runtime", &v)) != 0) {
            if (r < 0) return NS_EXIT_USAGE;
            runtime = v;
        } else if ((r = cli_opt_value(argc, argv, &i, "--model", &v)) != 0) {
            if (r < 0) return NS_EXIT_USAGE;
            model_opt = v;
        } else if ((r = cli_opt_value(argc, argv, &i, "--prompt", &v)) != 0) {
            if (r < 0) return NS_EXIT_USAGE;
            prompt = v;
        } else if ((r = cli_opt_value(argc, argv, &i, "--tokens", &v)) != 0) {
            if (r < 0) return NS_EXIT_USAGE;
            if (!cli_parse_int(v, 1, 1000000, &tokens)) {
                fprintf(stderr, "nstack ai %s: --tokens must be a whole number from 1 to 1000000 (got '%s')\n",
                        argv[0], v);
                return NS_EXIT_USAGE;
            }
        } else if ((r = cli_opt_value(argc, argv, &i, "--runs", &v)) != 0) {
            if (r < 0) return NS_EXIT_USAGE;
            if (!cli_parse_int(v, 1, BENCH_MAX_RUNS, &runs)) {
                fprintf(stderr, "nstack ai %s: --runs must be a whole number from 1 to %d (got '%s')\n", argv[0],
                        BENCH_MAX_RUNS, v);
                return NS_EXIT_USAGE;
            }
        } else if (strcmp(argv[i], "--json") == 0) {
            json = true;
        } else if (cli_is_help(argv[i])) {
            bench_usage(stdout);
            return NS_EXIT_OK;
        } else {
            fprintf(stderr, "nstack ai %s: %s '%s'\n", argv[0],
                    argv[i][0] == '-' ? "unknown option" : "unexpected argument", argv[i]);
            bench_usage(stderr);
            return NS_EXIT_USAGE;
        }
    }
    if (!*prompt) {
        fprintf(stderr, "nstack ai %s: --prompt must not be empty\n", argv[0]);
        return NS_EXIT_USAGE;
    }
    client *c = NULL;
    int rc = client_open_cli(runtime ? runtime : client_host_spec(host), &c);
    if (rc != NS_EXIT_OK) return rc;
    char *model = model_opt ? strdup(model_opt) : default_model(c);
    if (!model) {
        client_close(c);
        return NS_EXIT_FAIL;
    }

    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "model", model);
    cJSON_AddStringToObject(body, "prompt", prompt);
    cJSON_AddBoolToObject(body, "stream", true);
    cJSON *opts = cJSON_AddObjectToObject(body, "options");
    cJSON_AddNumberToObject(opts, "temperature", 0);
    cJSON_AddNumberToObject(opts, "seed", 42);
    cJSON_AddNumberToObject(opts, "num_predict", (double)tokens);

    bench_result results[BENCH_MAX_RUNS];
    char err[1024];
    rc = NS_EXIT_OK;
    int done_runs = 0;
    for (int i = 0; i < runs; i++) {
        bench_run r;
        memset(&r, 0, sizeof r);
        r.eval_count = r.eval_duration_ns = r.prompt_eval_count = r.load_duration_ns = -1;
        r.start = cli_now();
        if (client_stream(c, "POST", "/api/generate", body, on_bench_line, &r, err, sizeof err) != 0) {
            fprintf(stderr, "nstack: %s\n", err);
            rc = NS_EXIT_FAIL;
            break;
        }
        if (!r.done) {
            fprintf(stderr, "nstack: the runtime at %s ended the stream without a final {\"done\": true} object\n",
                    client_url(c));
            rc = NS_EXIT_FAIL;
            break;
        }
        results[i] = bench_numbers(&r, cli_now());
        done_runs++;
        if (!json) {
            /* the title once the runtime has answered: an error then
             * comes alone */
            if (i == 0) {
                printf("benchmark %s at %s: %lld tokens, %lld run%s, temperature 0\n", model, client_url(c), tokens,
                       runs, runs == 1 ? "" : "s");
                printf("%-4s %10s %10s %12s %8s %10s\n", "RUN", "TTFT", "TOK/S", "CLIENT TOK/S", "TOKENS", "TOTAL");
            }
            const bench_result *b = &results[i];
            char ttft[32], tps[32], ctps[32], tot[32];
            fmt_ms(ttft, sizeof ttft, b->ttft_ms);
            fmt_num(tps, sizeof tps, b->tps, "%.1f");
            fmt_num(ctps, sizeof ctps, b->client_tps, "%.1f");
            fmt_ms(tot, sizeof tot, b->total_ms);
            printf("%-4d %10s %10s %12s %8.0f %10s%s\n", i + 1, ttft, tps, ctps, b->tokens, tot,
                   b->load_ms > 1 ? "  (includes loading the model)" : "");
            fflush(stdout);
        }
    }
    cJSON_Delete(body);

    if (rc == NS_EXIT_OK) {
        double m_ttft = median(results, done_runs, offsetof(bench_result, ttft_ms));
        double m_tps = median(results, done_runs, offsetof(bench_result, tps));
        double m_ctps = median(results, done_runs, offsetof(bench_result, client_tps));
        double m_tok = median(results, done_runs, offsetof(bench_result, tokens));
        double m_tot = median(results, done_runs, offsetof(bench_result, total_ms));
        if (json) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "runtime", client_url(c));
            cJSON_AddStringToObject(o, "model", model);
            cJSON_AddStringToObject(o, "prompt", prompt);
            cJSON_AddNumberToObject(o, "num_predict", (double)tokens);
            cJSON *list = cJSON_AddArrayToObject(o, "runs");
            for (int i = 0; i < done_runs; i++) {
                cJSON *x = cJSON_CreateObject();
                add_num_or_null(x, "ttft_ms", results[i].ttft_ms);
                add_num_or_null(x, "tokens_per_s", results[i].tps);
                add_num_or_null(x, "client_tokens_per_s", results[i].client_tps);
                add_num_or_null(x, "tokens", results[i].tokens);
                add_num_or_null(x, "prompt_tokens", results[i].prompt_tokens);
                add_num_or_null(x, "load_ms", results[i].load_ms);
                add_num_or_null(x, "total_ms", results[i].total_ms);
                cJSON_AddItemToArray(list, x);
            }
            cJSON *med = cJSON_AddObjectToObject(o, "median");
            add_num_or_null(med, "ttft_ms", m_ttft);
            add_num_or_null(med, "tokens_per_s", m_tps);
            add_num_or_null(med, "client_tokens_per_s", m_ctps);
            add_num_or_null(med, "tokens", m_tok);
            add_num_or_null(med, "total_ms", m_tot);
            char *s = cJSON_Print(o);
            if (s) printf("%s\n", s);
            free(s);
            cJSON_Delete(o);
        } else {
            char ttft[32], tps[32], ctps[32], tot[32];
            fmt_ms(ttft, sizeof ttft, m_ttft);
            fmt_num(tps, sizeof tps, m_tps, "%.1f");
            fmt_num(ctps, sizeof ctps, m_ctps, "%.1f");
            fmt_ms(tot, sizeof tot, m_tot);
            printf("%-4s %10s %10s %12s %8.0f %10s\n", "MED", ttft, tps, ctps, m_tok < 0 ? 0 : m_tok, tot);
        }
    }
    free(model);
    client_close(c);
    return rc;
}
