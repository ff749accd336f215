/* The /proc side of AI runtime detection (detect.h): one process's comm,
 * command line, owner, mapped libraries, environment hints and RSS; the
 * listening TCP sockets of the host and which process owns each; and the
 * rules that turn what was read into a runtime kind. Every reader takes the
 * proc root so tests run them on a fake tree; the parsers work on text +
 * length and are exposed for tests. A missing or unreadable file leaves its
 * fields empty: processes come and go while we read them. */
#ifndef NS_DETECT_PROC_SCAN_H
#define NS_DETECT_PROC_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "detect/detect.h"

/* Libraries that tell what a process is, as bits of ns_proc_info.libs. */
enum {
    NS_LIB_LLAMA = 1u << 0,  /* libllama* */
    NS_LIB_GGML = 1u << 1,   /* libggml* */
    NS_LIB_TORCH = 1u << 2,  /* libtorch* (libtorch_cuda.so, libtorch_cpu.so, ...) */
    NS_LIB_ONNX = 1u << 3,   /* libonnxruntime* */
    NS_LIB_CUDART = 1u << 4, /* libcudart* */
    NS_LIB_COUNT = 5
};

typedef struct {
    int pid;
    int uid;            /* real uid from status, -1 unreadable */
    char comm[64];      /* "" unreadable */
    char cmdline[512];  /* NULs as spaces, cut to fit; "" for kernel threads or unreadable */
    char argv0[64];     /* basename of the first argument */
    char argv1[64];     /* basename of the second one (the script under an interpreter) */
    unsigned libs;      /* NS_LIB_* bits from maps */
    char lib_names[NS_LIB_COUNT][64]; /* the first basename that set each bit */
    char env[192];      /* "OLLAMA_HOST=... CUDA_VISIBLE_DEVICES=..." when environ is readable */
    int env_port;       /* the port of OLLAMA_HOST, 0 none */
    int cmd_port;       /* --port N / --port=N / --host H:P on the command line, 0 none */
    int64_t rss;        /* bytes, -1 unreadable */
} ns_proc_info;

/* Reads <root>/<pid>/{comm,cmdline,status,maps,environ,statm}. 0, or -1
 * when the process directory is gone (then nothing is worth reporting). */
int ns_proc_info_read(const char *root, int pid, ns_proc_info *out);

/* Parsers. */
/* cmdline's NUL-separated arguments into text with spaces, and the
 * basenames of the first two arguments. */
void ns_detect_parse_cmdline(const char *text, size_t len, ns_proc_info *out);
/* The real uid from status's "Uid:" line; -1 when absent. */
int ns_detect_parse_status_uid(const char *text, size_t len);
/* Sets NS_LIB_* bits and lib_names from maps lines. */
void ns_detect_parse_maps(const char *text, size_t len, ns_proc_info *out);
/* OLLAMA_HOST and CUDA_VISIBLE_DEVICES from environ (NUL-separated). */
void ns_detect_parse_environ(const char *text, size_t len, ns_proc_info *out);
/* The port of a host spec "host:port", "http://host:port/", "[::1]:port";
 * 0 when none is given. */
int ns_detect_port_of(const char *spec);

/* A listening TCP socket. */
typedef struct {
    int port;
    uint64_t inode;
    char host[48]; /* where to reach it: "127.0.0.1" for the wildcard and loopback, else the bound address */
    int pid;       /* owner, 0 unknown (another user's process, or not looked up) */
} ns_listen_sock;

typedef struct {
    ns_listen_sock *v;
    int n, cap;
} ns_listen_set;

/* Appends the LISTEN (state 0A) lines of a /proc/net/tcp (v6 false) or
 * tcp6 (v6 true) text to set. 0, or -1 out of memory. */
int ns_detect_parse_net_tcp(const char *text, size_t len, bool v6, ns_listen_set *set);
/* The inode of a "socket:[12345]" fd link target, 0 for anything else. */
uint64_t ns_detect_socket_inode(const char *link);
/* Reads <root>/net/tcp and tcp6, then walks <root>/[pid]/fd to find each
 * socket's owner. Files that cannot be read are skipped. 0, or -1 out of
 * memory. */
int ns_detect_listen_scan(const char *root, ns_listen_set *set);
void ns_listen_set_free(ns_listen_set *set);

/* The kind of runtime a process is, with the reason in why ("name ollama",
 * "maps libtorch_cuda.so"); false when it is none of ours. */
bool ns_detect_classify(const ns_proc_info *p, ns_ai_kind *kind, char *why, size_t whylen);

/* vLLM's Prometheus /metrics text: KV-cache usage in percent
 * (vllm:gpu_cache_usage_perc, or vllm:kv_cache_usage_perc in newer
 * releases: both 0..1; the highest over label sets), running and waiting
 * requests (summed over label sets). Fields not found stay -1. true when any was found. */
bool ns_detect_parse_vllm_metrics(const char *text, size_t len, double *kv_pct, int *running, int *waiting);

#endif
