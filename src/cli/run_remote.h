/* `nstack run --host URL` (or with NSTACK_HOST set): the same command, with
 * the model on a running server. One-shot prompts go to /api/generate as
 * raw text (no template, as the local one-shot run does), so greedy output
 * is the local output; the chat goes to /api/chat. The text streams to
 * stdout exactly as the local run prints it. */
#ifndef NS_CLI_RUN_REMOTE_H
#define NS_CLI_RUN_REMOTE_H

#include <stdbool.h>

#include <cjson/cJSON.h>

typedef struct {
    const char *host;      /* the host spec (client.h) */
    const char *model;     /* a name, or a local path (sent absolute) */
    const char *prompt;    /* the one-shot prompt; unused for the chat */
    bool chat;
    bool chat_interactive; /* a terminal: the greeting and the ">>> " prompt */
    const char *system;    /* the chat's system message, or NULL */
    const cJSON *options;  /* Ollama options the command line set (NULL: none) */
    bool verbose;          /* the timing block on stderr, from the server's durations */
} remote_run;

/* Returns a process exit code. */
int run_remote(const remote_run *r);

#endif
