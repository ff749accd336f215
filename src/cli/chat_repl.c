#include "chat_repl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "generate.h"
#include "nstack/stop.h"

typedef struct {
    char *role, *content;
} message;

typedef struct {
    const chat_opts *o;
    ns_sampler_params sp;
    long long n_predict;
    char *system;
    message *msgs;
    int n_msgs, cap_msgs;
    tokvec kv;       /* the tokens sequence 0 of the cache holds, in order */
} chat;

static int add_message(chat *ch, const char *role, const char *content) {
    if (ch->n_msgs == ch->cap_msgs) {
        int cap = ch->cap_msgs ? ch->cap_msgs * 2 : 16;
        message *n = realloc(ch->msgs, sizeof *n * (size_t)cap);
        if (!n) return -1;
        ch->msgs = n;
        ch->cap_msgs = cap;
    }
    message *m = &ch->msgs[ch->n_msgs];
    m->role = strdup(role);
    m->content = strdup(content);
    if (!m->role || !m->content) {
        free(m->role);
        free(m->content);
        return -1;
    }
    ch->n_msgs++;
    return 0;
}

/* Takes back the user message of a turn that could not run. */
static void drop_last_message(chat *ch) {
    ch->n_msgs--;
    free(ch->msgs[ch->n_msgs].role);
    free(ch->msgs[ch->n_msgs].content);
}

static void clear_messages(chat *ch) {
    for (int i = 0; i < ch->n_msgs; i++) {
        free(ch->msgs[i].role);
        free(ch->msgs[i].content);
    }
    ch->n_msgs = 0;
}

static void forget_cache(chat *ch) {
    ns_seq_truncate(ch->o->c, 0, 0);
    ch->kv.n = 0;
}

/* The prompt text for the whole conversation so far (malloc'd). */
static char *render(chat *ch, const char *user_line, char *err, size_t errlen) {
    const ns_vocab *v = ns_model_vocab(ch->o->m);
    if (!ch->o->tmpl) {
        /* no template: the conversation is one running text */
        return strdup(user_line);
    }
    int n = ch->n_msgs + (ch->system ? 1 : 0);
    ns_chat_msg *msgs = calloc((size_t)n + 1, sizeof *msgs);
    if (!msgs) return NULL;
    int k = 0;
    if (ch->system) msgs[k++] = (ns_chat_msg){.role = "system", .content = ch->system};
    for (int i = 0; i < ch->n_msgs; i++) msgs[k++] = (ns_chat_msg){.role = ch->msgs[i].role, .content = ch->msgs[i].content};
    int32_t bos = ns_vocab_bos(v), eos = ns_vocab_eos(v);
    ns_chat_opts co = {.bos_token = bos >= 0 ? ns_vocab_token_text(v, bos) : "",
                       .eos_token = eos >= 0 ? ns_vocab_token_text(v, eos) : "",
                       .add_generation_prompt = true};
    char *text = ns_chat_render(ch->o->tmpl, msgs, k, &co, err, errlen);
    free(msgs);
    return text;
}

/* Brings the cache to the tokens of text, reusing the longest prefix it
 * already holds, and leaves the logits of the last token. */
static int feed(chat *ch, const char *text, char *err, size_t errlen) {
    const ns_vocab *v = ns_model_vocab(ch->o->m);
    ns_context *c = ch->o->c;
    int32_t bos = ns_vocab_bos(v);
    const char *bos_text = bos >= 0 ? ns_vocab_token_text(v, bos) : NULL;
    bool add_bos = ns_vocab_add_bos(v) && !(bos_text && *bos_text && strncmp(text, bos_text, strlen(bos_text)) == 0);
    if (!ch->o->tmpl && ch->kv.n > 0) add_bos = false; /* a continuation */
    size_t len = strlen(text);
    int n = ns_tokenize(v, text, len, add_bos, true, NULL, 0);
    if (n < 0) {
        snprintf(err, errlen, "cannot tokenize the prompt");
        return -1;
    }
    int32_t *toks = malloc(sizeof(int32_t) * (size_t)(n > 0 ? n : 1));
    if (!toks) return -1;
    ns_tokenize(v, text, len, add_bos, true, toks, n);
    int32_t *all = toks;
    int n_all = n;
    if (!ch->o->tmpl) {
        /* plain continuation: the new text goes after what the cache holds */
        all = malloc(sizeof(int32_t) * (size_t)(ch->kv.n + n + 1));
        if (!all) {
            free(toks);
            return -1;
        }
        if (ch->kv.n > 0) memcpy(all, ch->kv.ids, sizeof(int32_t) * (size_t)ch->kv.n);
        if (n > 0) memcpy(all + ch->kv.n, toks, sizeof(int32_t) * (size_t)n);
        n_all = ch->kv.n + n;
        free(toks);
    }
    int rc = -1;
    if (n_all >= ns_context_n_ctx(c)) {
        snprintf(err, errlen, "the conversation has %d tokens, the context only %d: /clear it or use --ctx", n_all,
                 ns_context_n_ctx(c));
        goto out;
    }
    int keep = 0;
    while (keep < ch->kv.n && keep < n_all && ch->kv.ids[keep] == all[keep]) keep++;
    if (keep == n_all) keep--; /* the last token is evaluated again for its logits */
    ns_seq_truncate(c, 0, keep);
    ch->kv.n = keep;
    if (n_all - keep > 0 && ns_decode(c, 0, all + keep, n_all - keep, false, err, errlen) != 0) {
        forget_cache(ch);
        goto out;
    }
    for (int i = keep; i < n_all; i++) tokvec_push(&ch->kv, all[i]);
    rc = 0;
out:
    free(all);
    return rc;
}

static int turn(chat *ch, const char *line) {
    char err[512];
    const chat_opts *o = ch->o;
    if (o->tmpl && add_message(ch, "user", line) != 0) return -1;
    char *prompt = render(ch, line, err, sizeof err);
    if (!prompt) {
        fprintf(stderr, "nstack: %s\n", err);
        if (o->tmpl) drop_last_message(ch);
        return 0;
    }
    int rc = feed(ch, prompt, err, sizeof err);
    free(prompt);
    if (rc != 0) {
        fprintf(stderr, "nstack: %s\n", err);
        if (o->tmpl) drop_last_message(ch);
        return 0;
    }
    ns_sampler *s = ns_sampler_new_checked(&ch->sp, ns_model_hparams(o->m)->n_vocab, err, sizeof err);
    ns_stop *stop = ns_stop_new(o->stops, o->n_stops);
    if (!s || !stop) {
        fprintf(stderr, "nstack: %s\n", s ? "out of memory" : err);
        ns_sampler_free(s);
        ns_stop_free(stop);
        return 0;
    }
    ns_sampler_accept_many(s, ch->kv.ids, ch->kv.n);
    char *reply = NULL;
    gen_result gr;
    const ns_vocab *v = ns_model_vocab(o->m);
    bool prev_bos = ch->kv.n > 0 && ch->kv.ids[ch->kv.n - 1] == ns_vocab_bos(v);
    if (cli_generate(o->c, v, s, stop, ch->n_predict, prev_bos, o->out, &reply, &ch->kv, &gr, err, sizeof err) != 0)
        fprintf(stderr, "\nnstack: %s\n", err);
    if (gr.context_full) fprintf(stderr, "\nnstack: context full; /clear to start again\n");
    fputs("\n\n", o->out);
    fflush(o->out);
    if (o->tmpl) add_message(ch, "assistant", reply ? reply : "");
    free(reply);
    ns_sampler_free(s);
    ns_stop_free(stop);
    return 0;
}

/* "/set parameter NAME VALUE": the names of Ollama's options. */
static void set_parameter(chat *ch, const char *name, const char *value) {
    double f;
    ns_sampler_params p = ch->sp;
    if (!cli_parse_float(value, &f)) {
        fprintf(stderr, "nstack: '%s' is not a number\n", value);
        return;
    }
    if (strcmp(name, "temperature") == 0) p.temperature = (float)f;
    else if (strcmp(name, "top_k") == 0) p.top_k = (int)f;
    else if (strcmp(name, "top_p") == 0) p.top_p = (float)f;
    else if (strcmp(name, "min_p") == 0) p.min_p = (float)f;
    else if (strcmp(name, "typical_p") == 0) p.typical_p = (float)f;
    else if (strcmp(name, "repeat_penalty") == 0) p.repeat_penalty = (float)f;
    else if (strcmp(name, "repeat_last_n") == 0) p.repeat_last_n = (int)f;
    else if (strcmp(name, "presence_penalty") == 0) p.presence_penalty = (float)f;
    else if (strcmp(name, "frequency_penalty") == 0) p.frequency_penalty = (float)f;
    else if (strcmp(name, "mirostat") == 0) p.mirostat = (int)f;
    else if (strcmp(name, "mirostat_tau") == 0) p.mirostat_tau = (float)f;
    else if (strcmp(name, "mirostat_eta") == 0) p.mirostat_eta = (float)f;
    else if (strcmp(name, "seed") == 0) p.seed = (uint64_t)f;
    else if (strcmp(name, "num_predict") == 0) {
        ch->n_predict = (long long)f;
        fprintf(ch->o->out, "Set parameter 'num_predict' to '%s'\n", value);
        return;
    } else {
        fprintf(stderr, "nstack: unknown parameter '%s'\n", name);
        return;
    }
    char err[256];
    if (ns_sampler_params_check(&p, err, sizeof err) != 0) {
        fprintf(stderr, "nstack: %s\n", err);
        return;
    }
    ch->sp = p;
    fprintf(ch->o->out, "Set parameter '%s' to '%s'\n", name, value);
}

static void help(FILE *out) {
    fputs("Available Commands:\n"
          "  /set parameter NAME VALUE  temperature, top_k, top_p, min_p, typical_p, repeat_penalty,\n"
          "                             repeat_last_n, presence_penalty, frequency_penalty, mirostat,\n"
          "                             mirostat_tau, mirostat_eta, seed, num_predict\n"
          "  /set system TEXT           set the system message\n"
          "  /clear                     clear the conversation and its cache\n"
          "  /bye                       exit\n"
          "  /?, /help                  this help\n"
          "Use \"\"\" to begin and end a multi-line message.\n",
          out);
}

int chat_repl(const chat_opts *o) {
    chat ch = {.o = o, .sp = o->sp, .n_predict = o->n_predict};
    if (o->system) ch.system = strdup(o->system);
    if (o->interactive) fputs("Send a message (/? for help)\n", o->out);
    for (;;) {
        if (o->interactive) fputs(">>> ", o->out), fflush(o->out);
        char *line = cli_read_message(o->in, o->interactive ? o->out : NULL);
        if (!line) break;
        if (strcmp(line, "/bye") == 0) {
            free(line);
            break;
        }
        if (line[0] == '/') {
            char *save = NULL, *cmd = strtok_r(line, " ", &save);
            char *arg1 = strtok_r(NULL, " ", &save);
            if (strcmp(cmd, "/clear") == 0) {
                clear_messages(&ch);
                forget_cache(&ch);
                fputs("Cleared session context\n", o->out);
            } else if (strcmp(cmd, "/set") == 0 && arg1 && strcmp(arg1, "parameter") == 0) {
                char *name = strtok_r(NULL, " ", &save), *value = strtok_r(NULL, " ", &save);
                if (name && value) set_parameter(&ch, name, value);
                else fputs("Usage: /set parameter NAME VALUE\n", o->out);
            } else if (strcmp(cmd, "/set") == 0 && arg1 && strcmp(arg1, "system") == 0) {
                free(ch.system);
                ch.system = save && *save ? strdup(save) : NULL;
                fputs("Set system message.\n", o->out);
            } else if (strcmp(cmd, "/?") == 0 || strcmp(cmd, "/help") == 0) {
                help(o->out);
            } else {
                fprintf(o->out, "Unknown command '%s'. Type /? for help\n", cmd);
            }
            free(line);
            continue;
        }
        if (*line) turn(&ch, line);
        free(line);
    }
    clear_messages(&ch);
    free(ch.msgs);
    free(ch.system);
    tokvec_free(&ch.kv);
    return NS_EXIT_OK;
}
