/* AI runtime detection (src/detect): the /proc parsers on text and on a
 * fake proc tree written to a temp dir (comm, cmdline with NULs, status,
 * maps, environ, statm, net/tcp and tcp6 in the kernel's format, fd links
 * "socket:[N]"), the classification rules, a whole ns_detect over the fake
 * tree without probing, and the vLLM /metrics parser on fixture text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "detect/detect.h"
#include "detect/proc_scan.h"

static char root[256];

static void write_bytes(const char *rel, const char *data, size_t len) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
}

static void write_text(const char *rel, const char *text) { write_bytes(rel, text, strlen(text)); }

static void mkdir_rel(const char *rel) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    assert_int_equal(mkdir(path, 0755), 0);
}

static void symlink_rel(const char *target, const char *rel) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    assert_int_equal(symlink(target, path), 0);
}

static const char TCP[] =
    "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
    /* 127.0.0.1:11434 LISTEN, inode 1001 */
    "   0: 0100007F:2CAA 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 1001 1 "
    "0000000000000000 100 0 0 10 0\n"
    /* 0.0.0.0:8080 LISTEN, inode 1002 */
    "   1: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 1002 1 "
    "0000000000000000 100 0 0 10 0\n"
    /* an established connection: not listening */
    "   2: 0100007F:2CAA 0100007F:D431 01 00000000:00000000 00:00000000 00000000  1000        0 1003 1 "
    "0000000000000000 20 4 30 10 -1\n"
    /* 192.168.1.5:9000 LISTEN, inode 1004 (owner unknown) */
    "   3: 0501A8C0:2328 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1004 1 "
    "0000000000000000 100 0 0 10 0\n";

static const char TCP6[] =
    "  sl  local_address                         remote_address                        st tx_queue rx_queue tr "
    "tm->when retrnsmt   uid  timeout inode\n"
    /* [::]:8000 LISTEN, inode 2001 */
    "   0: 00000000000000000000000000000000:1F40 00000000000000000000000000000000:0000 0A 00000000:00000000 "
    "00:00000000 00000000  1000        0 2001 1 0000000000000000 100 0 0 10 0\n"
    /* [::ffff:127.0.0.1]:7000 LISTEN, inode 2002 */
    "   1: 0000000000000000FFFF00000100007F:1B58 00000000000000000000000000000000:0000 0A 00000000:00000000 "
    "00:00000000 00000000  1000        0 2002 1 0000000000000000 100 0 0 10 0\n";

/* The fake tree:
 *   100 ollama serve          socket 1001 (11434), OLLAMA_HOST in environ
 *   200 llama-server (python) socket 1002 (8080)
 *   300 python3 -m vllm...    socket 2001 (8000)
 *   400 python3 train.py      maps libtorch_cuda.so and libcudart
 *   500 bash                  nothing of ours
 *   600 a.out                 maps libggml-base.so only
 *   700 vanished              no comm (gone between readdir and read)
 */
static int setup_tree(void **state) {
    (void)state;
    snprintf(root, sizeof root, "%s", "/tmp/ns_test_detect_XXXXXX");
    assert_non_null(mkdtemp(root));
    mkdir_rel("net");
    write_text("net/tcp", TCP);
    write_text("net/tcp6", TCP6);

    mkdir_rel("100");
    mkdir_rel("100/fd");
    write_text("100/comm", "ollama\n");
    write_bytes("100/cmdline", "/usr/local/bin/ollama\0serve\0", 28);
    write_text("100/status", "Name:\tollama\nUmask:\t0022\nState:\tS (sleeping)\nUid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\n");
    write_bytes("100/environ", "HOME=/root\0OLLAMA_HOST=0.0.0.0:11434\0CUDA_VISIBLE_DEVICES=0,1\0", 62);
    write_text("100/statm", "1000 256 10 1 0 100 0\n");
    write_text("100/maps", "00400000-00452000 r-xp 00000000 08:02 173521 /usr/local/bin/ollama\n");
    symlink_rel("socket:[1001]", "100/fd/3");
    symlink_rel("/dev/null", "100/fd/0");
    symlink_rel("pipe:[555]", "100/fd/1");

    mkdir_rel("200");
    mkdir_rel("200/fd");
    write_text("200/comm", "llama-server\n");
    static const char c200[] = "/usr/bin/python3\0/tmp/bin/llama-server\0--port\0" "8080\0";
    write_bytes("200/cmdline", c200, sizeof c200 - 1);
    write_text("200/status", "Name:\tllama-server\nUid:\t0\t0\t0\t0\n");
    symlink_rel("socket:[1002]", "200/fd/5");

    mkdir_rel("300");
    mkdir_rel("300/fd");
    write_text("300/comm", "python3\n");
    write_bytes("300/cmdline", "python3\0-m\0vllm.entrypoints.openai.api_server\0--port=8000\0", 58);
    write_text("300/status", "Name:\tpython3\nUid:\t0\t0\t0\t0\n");
    symlink_rel("socket:[2001]", "300/fd/7");

    mkdir_rel("400");
    write_text("400/comm", "python3\n");
    write_bytes("400/cmdline", "python3\0train.py\0", 17);
    write_text("400/maps",
               "7f0000000000-7f0000100000 r-xp 00000000 08:02 1 /usr/lib/libc.so.6\n"
               "7f0000100000-7f0000200000 r-xp 00000000 08:02 2 /opt/venv/lib/python3.11/site-packages/torch/lib/"
               "libcudart-9335f6a2.so.12\n"
               "7f0000200000-7f0000300000 r-xp 00000000 08:02 3 /opt/venv/lib/python3.11/site-packages/torch/lib/"
               "libtorch_cuda.so\n"
               "7f0000300000-7f0000400000 rw-p 00000000 00:00 0 [heap]\n");

    mkdir_rel("500");
    write_text("500/comm", "bash\n");
    write_bytes("500/cmdline", "-bash\0", 6);

    mkdir_rel("600");
    write_text("600/comm", "a.out\n");
    write_text("600/maps", "7f0000000000-7f0000100000 r-xp 00000000 08:02 1 /home/u/ggml/build/libggml-base.so\n");

    mkdir_rel("700");
    return 0;
}

static int teardown_tree(void **state) {
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    return system(cmd) == 0 ? 0 : -1;
}

/* ---- parsers on text ---- */

static void test_cmdline(void **state) {
    (void)state;
    ns_proc_info p;
    memset(&p, 0, sizeof p);
    static const char c[] = "/usr/bin/python3\0/opt/app/server.py\0--host\0" "127.0.0.1:9999\0";
    ns_detect_parse_cmdline(c, sizeof c - 1, &p);
    assert_string_equal(p.cmdline, "/usr/bin/python3 /opt/app/server.py --host 127.0.0.1:9999");
    assert_string_equal(p.argv0, "python3");
    assert_string_equal(p.argv1, "server.py");
    assert_int_equal(p.cmd_port, 9999);

    memset(&p, 0, sizeof p);
    ns_detect_parse_cmdline("", 0, &p); /* a kernel thread */
    assert_string_equal(p.cmdline, "");
    assert_string_equal(p.argv0, "");
    assert_int_equal(p.cmd_port, 0);

    memset(&p, 0, sizeof p);
    static const char d[] = "llama-server\0-m\0x.gguf\0--port\0" "8081";
    ns_detect_parse_cmdline(d, sizeof d - 1, &p); /* no final NUL */
    assert_int_equal(p.cmd_port, 8081);
    assert_string_equal(p.cmdline, "llama-server -m x.gguf --port 8081");
}

static void test_status_uid(void **state) {
    (void)state;
    static const char s[] = "Name:\tx\nPid:\t5\nUid:\t1000\t1000\t1000\t1000\nGid:\t1000\n";
    assert_int_equal(ns_detect_parse_status_uid(s, sizeof s - 1), 1000);
    static const char t[] = "Name:\tx\nGid:\t5\n";
    assert_int_equal(ns_detect_parse_status_uid(t, sizeof t - 1), -1);
}

static void test_port_of(void **state) {
    (void)state;
    assert_int_equal(ns_detect_port_of("127.0.0.1:11434"), 11434);
    assert_int_equal(ns_detect_port_of("http://0.0.0.0:8080/"), 8080);
    assert_int_equal(ns_detect_port_of("[::1]:7000"), 7000);
    assert_int_equal(ns_detect_port_of("[::1]"), 0);
    assert_int_equal(ns_detect_port_of("0.0.0.0"), 0);
    assert_int_equal(ns_detect_port_of("host:99999"), 0);
    assert_int_equal(ns_detect_port_of("host:12ab"), 0);
}

static void test_net_tcp(void **state) {
    (void)state;
    ns_listen_set set = {0};
    assert_int_equal(ns_detect_parse_net_tcp(TCP, sizeof TCP - 1, false, &set), 0);
    assert_int_equal(set.n, 3);
    assert_int_equal(set.v[0].port, 11434);
    assert_int_equal(set.v[0].inode, 1001);
    assert_string_equal(set.v[0].host, "127.0.0.1");
    assert_int_equal(set.v[1].port, 8080);
    assert_string_equal(set.v[1].host, "127.0.0.1"); /* the wildcard is reached on loopback */
    assert_int_equal(set.v[2].port, 9000);
    assert_string_equal(set.v[2].host, "192.168.1.5");
    assert_int_equal(ns_detect_parse_net_tcp(TCP6, sizeof TCP6 - 1, true, &set), 0);
    assert_int_equal(set.n, 5);
    assert_int_equal(set.v[3].port, 8000);
    assert_int_equal(set.v[3].inode, 2001);
    assert_string_equal(set.v[3].host, "[::1]");
    assert_int_equal(set.v[4].port, 7000);
    assert_string_equal(set.v[4].host, "127.0.0.1"); /* v4-mapped */
    ns_listen_set_free(&set);

    /* garbage and a header only */
    static const char junk[] = "header\nnot a line at all\n  0: zz:zz 0 0A\n";
    assert_int_equal(ns_detect_parse_net_tcp(junk, sizeof junk - 1, false, &set), 0);
    assert_int_equal(set.n, 0);
    ns_listen_set_free(&set);
}

static void test_socket_inode(void **state) {
    (void)state;
    assert_int_equal(ns_detect_socket_inode("socket:[123]"), 123);
    assert_int_equal(ns_detect_socket_inode("socket:[]"), 0);
    assert_int_equal(ns_detect_socket_inode("socket:[12"), 0);
    assert_int_equal(ns_detect_socket_inode("pipe:[123]"), 0);
    assert_int_equal(ns_detect_socket_inode("/dev/null"), 0);
}

static void test_maps(void **state) {
    (void)state;
    ns_proc_info p;
    memset(&p, 0, sizeof p);
    static const char m[] = "7f00-7f01 r-xp 00000000 08:02 1 /usr/lib/libonnxruntime.so.1.17.0\n"
                            "7f01-7f02 r-xp 00000000 08:02 2 /usr/local/cuda/lib64/libcudart.so.12.2.140\n"
                            "7f02-7f03 r-xp 00000000 08:02 3 /opt/llama/libllama.so\n"
                            "7f03-7f04 r-xp 00000000 08:02 4 /opt/llama/libllama.so\n"
                            "7f04-7f05 rw-p 00000000 00:00 0 \n"
                            "7f05-7f06 r--p 00000000 08:02 5 /usr/lib/libtorchaudio-ish/not_a_lib.txt";
    ns_detect_parse_maps(m, sizeof m - 1, &p);
    assert_int_equal(p.libs, NS_LIB_ONNX | NS_LIB_CUDART | NS_LIB_LLAMA);
    assert_string_equal(p.lib_names[3], "libonnxruntime.so.1.17.0");
    assert_string_equal(p.lib_names[0], "libllama.so");
}

static void test_environ(void **state) {
    (void)state;
    ns_proc_info p;
    memset(&p, 0, sizeof p);
    static const char e[] = "PATH=/bin\0OLLAMA_HOST=http://127.0.0.1:11500\0CUDA_VISIBLE_DEVICES=1\0";
    ns_detect_parse_environ(e, sizeof e - 1, &p);
    assert_string_equal(p.env, "OLLAMA_HOST=http://127.0.0.1:11500 CUDA_VISIBLE_DEVICES=1");
    assert_int_equal(p.env_port, 11500);
    memset(&p, 0, sizeof p);
    static const char f[] = "OLLAMA_HOST=0.0.0.0\0";
    ns_detect_parse_environ(f, sizeof f - 1, &p);
    assert_int_equal(p.env_port, 11434);
}

/* ---- classification ---- */

static ns_ai_kind classify(const char *comm, const char *cmd, size_t cmdlen, unsigned libs, const char *lib,
                           char *why) {
    ns_proc_info p;
    memset(&p, 0, sizeof p);
    snprintf(p.comm, sizeof p.comm, "%s", comm);
    ns_detect_parse_cmdline(cmd, cmdlen, &p);
    p.libs = libs;
    for (int i = 0; i < NS_LIB_COUNT; i++)
        if (libs & (1u << i)) snprintf(p.lib_names[i], sizeof p.lib_names[i], "%s", lib);
    ns_ai_kind k;
    if (!ns_detect_classify(&p, &k, why, 128)) return (ns_ai_kind)-1;
    return k;
}

#define C(comm, cmd, libs, lib) classify(comm, cmd, sizeof cmd - 1, libs, lib, why)

static void test_classify(void **state) {
    (void)state;
    char why[128];
    assert_int_equal(C("nstack", "/usr/bin/nstack\0serve\0", 0, ""), NS_AI_NSTACK);
    assert_string_equal(why, "name nstack");
    assert_int_equal(C("ollama", "ollama\0serve\0", 0, ""), NS_AI_OLLAMA);
    assert_string_equal(why, "name ollama");
    assert_int_equal(C("ollama_llama_se", "/tmp/ollama_llama_server\0runner\0", NS_LIB_CUDART, "libcudart.so"),
                     NS_AI_OLLAMA);
    assert_int_equal(C("llama-server", "/usr/bin/python3\0/tmp/bin/llama-server\0", 0, ""), NS_AI_LLAMACPP);
    assert_int_equal(C("main", "/opt/llama.cpp/main\0-m\0x\0", 0, ""), (ns_ai_kind)-1); /* only argv0 counts */
    assert_int_equal(C("python3", "python3\0-m\0vllm.entrypoints.openai.api_server\0", NS_LIB_TORCH, "libtorch.so"),
                     NS_AI_VLLM);
    assert_string_equal(why, "command line vllm");
    assert_int_equal(C("python", "python\0main.py\0--listen\0", 0, ""), (ns_ai_kind)-1);
    assert_int_equal(C("python", "python\0/srv/ComfyUI/main.py\0", NS_LIB_TORCH, "libtorch.so"), NS_AI_IMAGE_GEN);
    assert_int_equal(C("python", "python\0webui.py\0--ckpt\0stable-diffusion-v1-5\0", 0, ""), NS_AI_IMAGE_GEN);
    assert_int_equal(C("whisper-server", "whisper-server\0", 0, ""), NS_AI_WHISPER);
    assert_int_equal(C("a.out", "./a.out\0", NS_LIB_GGML, "libggml.so"), NS_AI_LLAMACPP);
    assert_string_equal(why, "maps libggml.so");
    assert_int_equal(C("python3", "python3\0train.py\0", NS_LIB_TORCH | NS_LIB_CUDART, "libtorch_cuda.so"),
                     NS_AI_PYTORCH);
    assert_int_equal(C("app", "app\0", NS_LIB_ONNX, "libonnxruntime.so"), NS_AI_ONNX);
    assert_int_equal(C("blender", "blender\0", NS_LIB_CUDART, "libcudart.so.12"), NS_AI_CUDA_OTHER);
    assert_string_equal(why, "maps libcudart.so.12");
    assert_int_equal(C("bash", "-bash\0", 0, ""), (ns_ai_kind)-1);
    assert_string_equal(ns_ai_kind_name(NS_AI_LLAMACPP), "llama.cpp");
    assert_string_equal(ns_ai_kind_name(NS_AI_ONNX), "onnxruntime");
    assert_string_equal(ns_ai_kind_name(NS_AI_CUDA_OTHER), "cuda");
}

/* ---- the fake tree ---- */

static void test_proc_info_read(void **state) {
    (void)state;
    ns_proc_info p;
    assert_int_equal(ns_proc_info_read(root, 100, &p), 0);
    assert_string_equal(p.comm, "ollama");
    assert_string_equal(p.cmdline, "/usr/local/bin/ollama serve");
    assert_int_equal(p.uid, 0);
    assert_int_equal(p.env_port, 11434);
    assert_string_equal(p.env, "OLLAMA_HOST=0.0.0.0:11434 CUDA_VISIBLE_DEVICES=0,1");
    assert_int_equal(p.rss, 256 * sysconf(_SC_PAGESIZE));
    assert_int_equal(p.libs, 0);

    assert_int_equal(ns_proc_info_read(root, 400, &p), 0);
    assert_int_equal(p.libs, NS_LIB_TORCH | NS_LIB_CUDART);
    assert_string_equal(p.lib_names[2], "libtorch_cuda.so");
    assert_int_equal(p.uid, -1); /* no status file */
    assert_int_equal(p.rss, -1); /* no statm */

    assert_int_equal(ns_proc_info_read(root, 700, &p), -1); /* vanished */
    assert_int_equal(ns_proc_info_read(root, 999, &p), -1);
}

static void test_listen_scan(void **state) {
    (void)state;
    ns_listen_set set = {0};
    assert_int_equal(ns_detect_listen_scan(root, &set), 0);
    assert_int_equal(set.n, 5);
    for (int i = 0; i < set.n; i++) {
        switch (set.v[i].port) {
        case 11434: assert_int_equal(set.v[i].pid, 100); break;
        case 8080: assert_int_equal(set.v[i].pid, 200); break;
        case 8000: assert_int_equal(set.v[i].pid, 300); break;
        default: assert_int_equal(set.v[i].pid, 0); break; /* owner not visible */
        }
    }
    ns_listen_set_free(&set);
}

static const ns_ai_runtime *find(const ns_ai_runtime *v, int n, int pid) {
    for (int i = 0; i < n; i++)
        if (v[i].pid == pid) return &v[i];
    return NULL;
}

static void test_detect_tree(void **state) {
    (void)state;
    ns_detect_options o = {.proc_root = root, .probe_apis = false};
    ns_ai_runtime *v = NULL;
    int n = -1;
    char err[256];
    assert_int_equal(ns_detect(&o, &v, &n, err, sizeof err), 0);
    assert_int_equal(n, 5); /* 100 200 300 400 600 */
    /* sorted by kind, then pid */
    for (int i = 1; i < n; i++)
        assert_true(v[i - 1].kind < v[i].kind || (v[i - 1].kind == v[i].kind && v[i - 1].pid < v[i].pid));
    const ns_ai_runtime *r = find(v, n, 100);
    assert_non_null(r);
    assert_int_equal(r->kind, NS_AI_OLLAMA);
    assert_string_equal(r->user, "root");
    assert_int_equal(r->n_ports, 1);
    assert_int_equal(r->ports[0], 11434);
    assert_false(r->confirmed);
    assert_int_equal(r->vram, -1); /* no NVML against a fake tree */
    assert_string_equal(r->why, "name ollama");
    r = find(v, n, 200);
    assert_int_equal(r->kind, NS_AI_LLAMACPP);
    assert_int_equal(r->ports[0], 8080);
    r = find(v, n, 300);
    assert_int_equal(r->kind, NS_AI_VLLM);
    assert_int_equal(r->n_ports, 1);
    assert_int_equal(r->ports[0], 8000);
    assert_int_equal(r->requests_running, -1);
    r = find(v, n, 400);
    assert_int_equal(r->kind, NS_AI_PYTORCH);
    assert_int_equal(r->n_ports, 0);
    assert_string_equal(r->user, "");
    r = find(v, n, 600);
    assert_int_equal(r->kind, NS_AI_LLAMACPP);
    assert_string_equal(r->why, "maps libggml-base.so");
    assert_null(find(v, n, 500));
    free(v);

    o.proc_root = "/nonexistent/proc";
    assert_int_equal(ns_detect(&o, &v, &n, err, sizeof err), -1);
    assert_non_null(strstr(err, "/nonexistent/proc"));
}

/* An unmapped listener on the runtime's hinted port is taken (another
 * user's process whose fd links we cannot read). */
static void test_port_hint(void **state) {
    (void)state;
    /* pid 800: llama-server --port 9000, no fd dir: 9000 listens, owner unknown */
    mkdir_rel("800");
    write_text("800/comm", "llama-server\n");
    static const char cmd[] = "llama-server\0--port\0" "9000\0";
    write_bytes("800/cmdline", cmd, sizeof cmd - 1);
    ns_detect_options o = {.proc_root = root, .probe_apis = false};
    ns_ai_runtime *v = NULL;
    int n = 0;
    char err[256];
    assert_int_equal(ns_detect(&o, &v, &n, err, sizeof err), 0);
    const ns_ai_runtime *r = find(v, n, 800);
    assert_non_null(r);
    assert_int_equal(r->n_ports, 1);
    assert_int_equal(r->ports[0], 9000);
    free(v);
}

/* ---- vLLM metrics ---- */

static void test_vllm_metrics(void **state) {
    (void)state;
    static const char old[] =
        "# HELP vllm:gpu_cache_usage_perc GPU KV-cache usage. 1 means 100 percent usage.\n"
        "# TYPE vllm:gpu_cache_usage_perc gauge\n"
        "vllm:gpu_cache_usage_perc{model_name=\"meta-llama/Llama-3-8B\"} 0.4375\n"
        "# TYPE vllm:num_requests_running gauge\n"
        "vllm:num_requests_running{model_name=\"meta-llama/Llama-3-8B\"} 3.0\n"
        "vllm:num_requests_waiting{model_name=\"meta-llama/Llama-3-8B\"} 1.0\n"
        "vllm:num_requests_swapped{model_name=\"meta-llama/Llama-3-8B\"} 0.0\n"
        "vllm:gpu_cache_usage_perc_other 0.99\n";
    double kv;
    int run, wait;
    assert_true(ns_detect_parse_vllm_metrics(old, sizeof old - 1, &kv, &run, &wait));
    assert_float_equal(kv, 43.75, 1e-9);
    assert_int_equal(run, 3);
    assert_int_equal(wait, 1);

    /* newer names, two engines, labels with '}' in a quoted value */
    static const char newer[] =
        "vllm:kv_cache_usage_perc{engine=\"0\",model_name=\"a}b\"} 0.25\n"
        "vllm:kv_cache_usage_perc{engine=\"1\",model_name=\"a}b\"} 0.5\n"
        "vllm:num_requests_running{engine=\"0\",model_name=\"a}b\"} 2\n"
        "vllm:num_requests_running{engine=\"1\",model_name=\"a}b\"} 5\n"
        "vllm:num_requests_waiting{engine=\"0\",model_name=\"a}b\"} 0";
    assert_true(ns_detect_parse_vllm_metrics(newer, sizeof newer - 1, &kv, &run, &wait));
    assert_float_equal(kv, 50.0, 1e-9);
    assert_int_equal(run, 7);
    assert_int_equal(wait, 0);

    static const char none[] = "# nothing\nprocess_cpu_seconds_total 12.5\nvllm:num_requests_running{x=\"1\"} NaNx\n";
    assert_false(ns_detect_parse_vllm_metrics(none, sizeof none - 1, &kv, &run, &wait));
    assert_float_equal(kv, -1, 0);
    assert_int_equal(run, -1);
    assert_int_equal(wait, -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cmdline),
        cmocka_unit_test(test_status_uid),
        cmocka_unit_test(test_port_of),
        cmocka_unit_test(test_net_tcp),
        cmocka_unit_test(test_socket_inode),
        cmocka_unit_test(test_maps),
        cmocka_unit_test(test_environ),
        cmocka_unit_test(test_classify),
        cmocka_unit_test(test_proc_info_read),
        cmocka_unit_test(test_listen_scan),
        cmocka_unit_test(test_detect_tree),
        cmocka_unit_test(test_port_hint),
        cmocka_unit_test(test_vllm_metrics),
    };
    return cmocka_run_group_tests(tests, setup_tree, teardown_tree);
}
