#include "run_remote.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "client.h"

/* What the stream said, for after it. */
typedef struct {
    const char *field;  /* "response" (generate) or "message" (chat) */
    bool done, printed;
    char done_reason[32];
    double total_ns, load_ns, prompt_eval_ns, eval_ns, prompt_eval_count, eval_count;
    char *text;         /* the chat's reply (malloc'd), kept for the history */
    size_t text_len;
} stream_state;

static double num(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

static void keep_text(stream_state *st, const char *s, size_t n) {
    char *t = realloc(st->text, st->text_len + n + 1);
    if (!t) return;
    memcpy(t + st->text_len, s, n);
    st->text_len += n;
    t[st->text_len] = 0;
    st->text = t;
}

static int on_line(void *user, const cJSON *line) {
    stream_state *st = user;
    const cJSON *piece = cJSON_GetObjectItemCaseSensitive(line, st->field);
    if (cJSON_IsObject(piece)) piece = cJSON_GetObjectItemCaseSensitive(piece, "content");
    if (cJSON_IsString(piece) && *piece->valuestring) {
        size_t n = strlen(piece->valuestring);
        fwrite(piece->valuestring, 1, n, stdout);
        fflush(stdout);
        st->printed = true;
        if (strcmp(st->field, "message") == 0) keep_text(st, piece->valuestring, n);
    }
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(line, "done"))) {
        st->done = true;
        const cJSON *why = cJSON_GetObjectItemCaseSensitive(line, "done_reason");
        snprintf(st->done_reason, sizeof st->done_reason, "%s", cJSON_IsString(why) ? why->valuestring : "");
        st->total_ns = num(line, "total_duration");
        st->load_ns = num(line, "load_duration");
        st->prompt_eval_ns = num(line, "prompt_eval_duration");
        st->eval_ns = num(line, "eval_duration");
        st->prompt_eval_count = num(line, "prompt_eval_count");
        st->eval_count = num(line, "eval_count");
    }
    return 0;
}

static void print_duration(const char *label, double s) {
    if (s >= 1.0) fprintf(stderr, "%-22s%.6fs\n", label, s);
    else fprintf(stderr, "%-22s%.6fms\n", label, s * 1e3);
}

/* The block the local run prints with --verbose, from the server's numbers. */
static void print_timings(const stream_state *st) {
    double pe = st->prompt_eval_ns / 1e9, ev = st->eval_ns / 1e9;
    print_duration("total duration:", st->total_ns / 1e9);
    print_duration("load duration:", st->load_ns / 1e9);
    fprintf(stderr, "%-22s%.0f token(s)\n", "prompt eval count:", st->prompt_eval_count);
    print_duration("prompt eval duration:", pe);
    fprintf(stderr, "%-22s%.2f tokens/s\n", "prompt eval rate:", pe > 0 ? st->prompt_eval_count / pe : 0.0);
    fprintf(stderr, "%-22s%.0f token(s)\n", "eval count:", st->eval_count);
    print_duration("eval duration:", ev);
    fprintf(stderr, "%-22s%.2f tokens/s\n", "eval rate:", ev > 0 ? st->eval_count / ev : 0.0);
}

/* A model named by a local file path goes to the server as an absolute
 * path, so a server on this machine finds it whatever its directory. */
static void model_name(const char *model, char *buf, size_t len) {
    size_t n = strlen(model);
    bool pathlike = strchr(model, '/') || (n > 5 && strcmp(model + n - 5, ".gguf") == 0);
    char *abs = pathlike && access(model, R_OK) == 0 ? realpath(model, NULL) : NULL;
    snprintf(buf, len, "%s", abs ? abs : model);
    free(abs);
}

/* {"model", "stream": true, "options"}: what both endpoints take. */
static cJSON *base_body(const remote_run *r, const cJSON *options) {
    char model[PATH_MAX];
    model_name(r->model, model, sizeof model);
    cJSON *b = cJSON_CreateObject();
    if (!b) return NULL;
    cJSON_AddStringToObject(b, "model", model);
    cJSON_AddBoolToObject(b, "stream", 1);
    if (options && cJSON_GetArraySize(options) > 0) cJSON_AddItemToObject(b, "options", cJSON_Duplicate(options, 1));
    return b;
}

/* Sends one request and streams its text. 0, or -1 after printing why. */
static int stream_text(client *c, const char *path, cJSON *body, stream_state *st) {
    char err[1024];
    if (client_stream(c, "POST", path, body, on_line, st, err, sizeof err) != 0) {
        fprintf(stderr, "%snstack: %s\n", st->printed ? "\n" : "", err);
        return -1;
    }
    if (!st->done) {
        fprintf(stderr, "%snstack: the server at %s ended the answer before it was done\n", st->printed ? "\n" : "",
                client_url(c));
        return -1;
    }
    if (strcmp(st->done_reason, "context") == 0) fprintf(stderr, "\nnstack: context full; stopping\n");
    return 0;
}

static int run_once(client *c, const remote_run *r) {
    cJSON *body = base_body(r, r->options);
    if (!body) {
        fprintf(stderr, "nstack: out of memory\n");
        return NS_EXIT_FAIL;
    }
    cJSON_AddStringToObject(body, "prompt", r->prompt ? r->prompt : "");
    /* the local one-shot run applies no template: neither does this */
    cJSON_AddBoolToObject(body, "raw", 1);
    stream_state st = {.field = "response"};
    int rc = stream_text(c, "/api/generate", body, &st);
    cJSON_Delete(body);
    free(st.text);
    if (rc != 0) return NS_EXIT_FAIL;
    if (strcmp(st.done_reason, "load") == 0 && (!r->prompt || !*r->prompt))
        fprintf(stderr, "nstack: the prompt is empty: the server only loaded the model\n");
    if (isatty(STDOUT_FILENO)) fputc('\n', stdout);
    fflush(stdout);
    if (r->verbose) print_timings(&st);
    return NS_EXIT_OK;
}

/* ---- the chat ---- */

typedef struct {
    client *c;
    const remote_run *r;
    cJSON *options;   /* the command line's, then /set parameter's */
    char *system;
    cJSON *history;   /* [{"role", "content"}...] */
} chat;

static void add_message(cJSON *arr, const char *role, const char *content) {
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "role", role);
    cJSON_AddStringToObject(m, "content", content);
    cJSON_AddItemToArray(arr, m);
}

static void turn(chat *ch, const char *line) {
    cJSON *body = base_body(ch->r, ch->options);
    if (!body) return;
    cJSON *msgs = cJSON_AddArrayToObject(body, "messages");
    if (ch->system) add_message(msgs, "system", ch->system);
    const cJSON *m;
    cJSON_ArrayForEach(m, ch->history) cJSON_AddItemToArray(msgs, cJSON_Duplicate(m, 1));
    add_message(msgs, "user", line);
    stream_state st = {.field = "message"};
    int rc = stream_text(ch->c, "/api/chat", body, &st);
    cJSON_Delete(body);
    if (rc == 0) {
        add_message(ch->history, "user", line);
        add_message(ch->history, "assistant", st.text ? st.text : "");
    }
    if (rc == 0 || st.printed) {
        fputs("\n\n", stdout);
        fflush(stdout);
    }
    if (rc == 0 && ch->r->verbose) print_timings(&st);
    free(st.text);
}

/* "/set parameter NAME VALUE": an Ollama option, checked by the server. */
static void set_parameter(chat *ch, const char *name, const char *value) {
    double v;
    if (!cli_parse_float(value, &v)) {
        fprintf(stderr, "nstack: '%s' is not a number\n", value);
        return;
    }
    cJSON_DeleteItemFromObjectCaseSensitive(ch->options, name);
    cJSON_AddNumberToObject(ch->options, name, v);
    printf("Set parameter '%s' to '%s'\n", name, value);
}

static void help(void) {
    fputs("Available Commands:\n"
          "  /set parameter NAME VALUE  an Ollama option: temperature, top_k, top_p, min_p, typical_p,\n"
          "                             repeat_penalty, repeat_last_n, presence_penalty, frequency_penalty,\n"
          "                             mirostat, mirostat_tau, mirostat_eta, seed, num_predict, num_ctx\n"
          "  /set system TEXT           set the system message\n"
          "  /clear                     clear the conversation\n"
          "  /bye                       exit\n"
          "  /?, /help                  this help\n"
          "Use \"\"\" to begin and end a multi-line message.\n",
          stdout);
}

/* A slash command of the chat; false for /bye. */
static bool command(chat *ch, char *line) {
    char *save = NULL, *cmd = strtok_r(line, " ", &save);
    char *arg1 = strtok_r(NULL, " ", &save);
    if (strcmp(cmd, "/bye") == 0) return false;
    if (strcmp(cmd, "/clear") == 0) {
        cJSON_Delete(ch->history);
        ch->history = cJSON_CreateArray();
        puts("Cleared session context");
    } else if (strcmp(cmd, "/set") == 0 && arg1 && strcmp(arg1, "parameter") == 0) {
        char *name = strtok_r(NULL, " ", &save), *value = strtok_r(NULL, " ", &save);
        if (name && value) set_parameter(ch, name, value);
        else puts("Usage: /set parameter NAME VALUE");
    } else if (strcmp(cmd, "/set") == 0 && arg1 && strcmp(arg1, "system") == 0) {
        free(ch->system);
        ch->system = save && *save ? strdup(save) : NULL;
        puts("Set system message.");
    } else if (strcmp(cmd, "/?") == 0 || strcmp(cmd, "/help") == 0) {
        help();
    } else {
        printf("Unknown command '%s'. Type /? for help\n", cmd);
    }
    return true;
}

static int run_chat(client *c, const remote_run *r) {
    chat ch = {.c = c, .r = r, .history = cJSON_CreateArray(),
               .options = r->options ? cJSON_Duplicate(r->options, 1) : cJSON_CreateObject(),
               .system = r->system ? strdup(r->system) : NULL};
    if (!ch.history || !ch.options) {
        cJSON_Delete(ch.history);
        cJSON_Delete(ch.options);
        free(ch.system);
        fprintf(stderr, "nstack: out of memory\n");
        return NS_EXIT_FAIL;
    }
    /* load the model first: a wrong name or an unreachable server is said
     * now, not after the first message */
    char err[1024];
    cJSON *load = base_body(r, ch.options);
    if (load) cJSON_ReplaceItemInObjectCaseSensitive(load, "stream", cJSON_CreateFalse());
    if (!load || client_call(c, "POST", "/api/generate", load, NULL, err, sizeof err) != 0) {
        fprintf(stderr, "nstack: %s\n", load ? err : "out of memory");
        cJSON_Delete(load);
        cJSON_Delete(ch.history);
        cJSON_Delete(ch.options);
        free(ch.system);
        return NS_EXIT_FAIL;
    }
    cJSON_Delete(load);
    if (r->chat_interactive) puts("Send a message (/? for help)");
    for (;;) {
        if (r->chat_interactive) {
            fputs(">>> ", stdout);
            fflush(stdout);
        }
        char *line = cli_read_message(stdin, r->chat_interactive ? stdout : NULL);
        if (!line) break;
        bool go_on = true;
        if (line[0] == '/') go_on = command(&ch, line);
        else if (*line) turn(&ch, line);
        free(line);
        if (!go_on) break;
    }
    cJSON_Delete(ch.history);
    cJSON_Delete(ch.options);
    free(ch.system);
    return NS_EXIT_OK;
}

int run_remote(const remote_run *r) {
    char err[512], url[1024];
    if (client_base_url_for(r->host, url, sizeof url, err, sizeof err) != 0) {
        fprintf(stderr, "nstack: %s\n", err);
        return NS_EXIT_USAGE;
    }
    client *c = client_open(r->host, err, sizeof err);
    if (!c) {
        fprintf(stderr, "nstack: %s\n", err);
        return NS_EXIT_FAIL;
    }
    int rc = r->chat ? run_chat(c, r) : run_once(c, r);
    client_close(c);
    return rc;
}
