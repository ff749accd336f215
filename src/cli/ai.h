/* `nstack ai ...`, `nstack vram ...` and `nstack doctor` (issue #9): each
 * subcommand is one function; cmd_ai.c dispatches. argv[0] is the
 * subcommand's name. Every one takes --json and the client commands'
 * --host option where it talks to a server. */
#ifndef NS_CLI_AI_H
#define NS_CLI_AI_H

int ai_status(int argc, char **argv);    /* cmd_ai_detect.c: runtimes, memory and VRAM in one view */
int ai_detect(int argc, char **argv);    /* cmd_ai_detect.c */
int ai_models(int argc, char **argv);    /* cmd_ai_detect.c: every runtime's loaded models */
int ai_unload(int argc, char **argv);    /* cmd_ai_detect.c: MODEL [--runtime PID|URL] */
int ai_preload(int argc, char **argv);   /* cmd_ai_detect.c */
int vram_status(int argc, char **argv);  /* cmd_ai_detect.c */
int vram_clear(int argc, char **argv);   /* cmd_ai_detect.c: unload idle models everywhere, summary of what was freed */
int ai_optimize(int argc, char **argv);  /* cmd_ai_optimize.c: the placement planner for a model */
int ai_profile(int argc, char **argv);   /* cmd_ai_profile.c: list / show / apply profiles */
int ai_watch(int argc, char **argv);     /* cmd_ai_watch.c: the live terminal view */
int ai_benchmark(int argc, char **argv); /* cmd_ai_watch.c */
int cmd_doctor(int argc, char **argv);   /* cmd_doctor.c */

#endif
