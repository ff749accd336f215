/* AI workload detection (issue #9, DESIGN.md §4): which AI runtimes run on
 * this host, found from /proc and confirmed through their HTTP APIs.
 *
 * Candidates come from process names and command lines (ollama,
 * llama-server, vllm, python -m vllm..., comfyui, whisper), the shared
 * libraries a process maps (libtorch*, libonnxruntime*, libcudart*,
 * libggml*, libllama*), its environment where readable, and its listening
 * TCP sockets (/proc/net/tcp, tcp6, matched to the process by socket
 * inode). A candidate with a port is confirmed through its API: nstack and
 * Ollama GET /api/version (nstack's answer carries "nstack"), then
 * /api/ps for loaded models; llama.cpp server GET /health and /v1/models;
 * vLLM GET /v1/models and /metrics (GPU KV-cache usage, running and waiting
 * requests). Processes of other users are reported as far as /proc lets us
 * read them; an unreadable field is left empty, never an error. */
#ifndef NS_DETECT_DETECT_H
#define NS_DETECT_DETECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    NS_AI_NSTACK,
    NS_AI_OLLAMA,
    NS_AI_LLAMACPP,  /* llama.cpp's server or a program linking libllama / libggml */
    NS_AI_VLLM,
    NS_AI_PYTORCH,   /* a process mapping libtorch, not one of the above */
    NS_AI_ONNX,      /* a process mapping libonnxruntime */
    NS_AI_IMAGE_GEN, /* ComfyUI, Stable Diffusion web UIs, diffusers */
    NS_AI_WHISPER,
    NS_AI_CUDA_OTHER /* uses the GPU (libcudart / NVML process list), nothing more known */
} ns_ai_kind;

const char *ns_ai_kind_name(ns_ai_kind k); /* "nstack", "ollama", "llama.cpp", "vllm", "pytorch", "onnxruntime",
                                            * "image-gen", "whisper", "cuda" */

#define NS_AI_MAX_PORTS 8
#define NS_AI_MAX_MODELS 32

typedef struct {
    char name[256];
    int64_t size;      /* bytes in memory, -1 unknown */
    int64_t size_vram; /* bytes on the GPU, -1 unknown */
    char expires_at[40]; /* RFC 3339 as the runtime says, "" unknown */
    int active;        /* requests running or queued on it (nstack's /api/ps says), -1 unknown */
} ns_ai_model;

typedef struct {
    ns_ai_kind kind;
    int pid;
    char user[64];         /* the owner's name (or uid as text) */
    char name[64];         /* /proc/PID/comm */
    char command[512];     /* the command line, NULs as spaces, cut to fit */
    char why[128];         /* how it was recognised: "name ollama", "maps libtorch_cuda.so", "port 11434 /api/version" */
    char env[192];         /* OLLAMA_HOST=... CUDA_VISIBLE_DEVICES=... from its environment when readable, else "" */
    int ports[NS_AI_MAX_PORTS]; /* listening TCP ports */
    int n_ports;
    bool confirmed;        /* its API answered as that runtime */
    char api[128];         /* "http://127.0.0.1:11434" when confirmed, else "" */
    char version[64];      /* from the API, "" unknown */
    int64_t rss;           /* bytes, -1 unreadable */
    int64_t vram;          /* bytes from NVML's process list, -1 unknown / no GPU */
    ns_ai_model models[NS_AI_MAX_MODELS];
    int n_models;          /* loaded models from the API (/api/ps, /v1/models) */
    /* vLLM, from /metrics; -1 unknown */
    double kv_cache_usage_pct;
    int requests_running, requests_waiting;
} ns_ai_runtime;

typedef struct {
    const char *proc_root; /* NULL: "/proc" (tests point it elsewhere) */
    bool probe_apis;       /* confirm through HTTP (default true in the CLI) */
    int timeout_ms;        /* per API call; 0: 500 */
} ns_detect_options;

/* Every AI runtime found, sorted by kind then pid; *out malloc'd (free()).
 * The calling process itself is left out. 0, or -1 with err when /proc
 * itself cannot be read.
 *
 * Ports: a process's own listening sockets when its fd links are readable
 * (our own processes, or everything as root); otherwise the port its
 * command line (--port, --host) or OLLAMA_HOST names, or the runtime's
 * default port (Ollama 11434, llama.cpp 8080, vLLM 8000), when something
 * listens there whose owner we cannot see.
 *
 * nstack or Ollama: both answer /api/version with {"version"}. The process
 * name decides between them ("nstack" or "ollama*"); for a process whose
 * name says neither, an answer that mentions "nstack", or a /health that
 * answers {"status", "version", "uptime_s"} (nstack's; Ollama has no
 * /health) makes it nstack, else Ollama. */
int ns_detect(const ns_detect_options *o, ns_ai_runtime **out, int *n, char *err, size_t errlen);

/* Confirms one runtime through its API on its ports (rt->ports, kind
 * already set): sets confirmed, api, version, models, vLLM's metrics, and
 * appends the evidence to why. Exposed so the CLI can re-probe a runtime
 * given by URL. */
void ns_detect_probe(ns_ai_runtime *rt, int timeout_ms);

#endif
