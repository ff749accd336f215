/* /proc readers and classification rules for detection (proc_scan.h).
 * Parsing is by hand on length-delimited text, as in monitor/proc.c. */
#include "detect/proc_scan.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "monitor/proc.h"

/* maps of a big Python process run to a few MB; more is not a /proc file
 * we want to hold. */
#define MAX_FILE ((size_t)16 << 20)

/* The whole of a file, NUL-terminated, malloc'd; NULL when it cannot be
 * read (gone, permission, too big). */
static char *read_file(const char *path, size_t *len) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (n + 1 >= cap) {
            if (cap >= MAX_FILE) {
                free(buf);
                buf = NULL;
                break;
            }
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            free(buf);
            buf = NULL;
            break;
        }
        if (r == 0) break;
        n += (size_t)r;
    }
    close(fd);
    if (!buf) return NULL;
    buf[n] = '\0';
    if (len) *len = n;
    return buf;
}

static void copy_cut(char *dst, size_t cap, const char *src, size_t n) {
    if (cap == 0) return;
    if (n >= cap) n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static const char *base_of(const char *s, size_t n, size_t *blen) {
    const char *b = s;
    for (size_t i = 0; i < n; i++)
        if (s[i] == '/') b = s + i + 1;
    *blen = n - (size_t)(b - s);
    return b;
}

/* ---- parsers ---- */

void ns_detect_parse_cmdline(const char *text, size_t len, ns_proc_info *out) {
    out->cmdline[0] = out->argv0[0] = out->argv1[0] = '\0';
    while (len > 0 && text[len - 1] == '\0') len--; /* the final NUL is not a separator */
    size_t k = 0, arg = 0, start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || text[i] == '\0') {
            size_t blen;
            const char *b = base_of(text + start, i - start, &blen);
            if (arg == 0) copy_cut(out->argv0, sizeof out->argv0, b, blen);
            else if (arg == 1) copy_cut(out->argv1, sizeof out->argv1, b, blen);
            arg++;
            start = i + 1;
        }
        if (i < len && k + 1 < sizeof out->cmdline) out->cmdline[k++] = text[i] ? text[i] : ' ';
    }
    out->cmdline[k] = '\0';

    /* A port on the command line, for runtimes whose sockets we cannot map
     * (another user's process): --port N, --port=N, --host H:P. */
    out->cmd_port = 0;
    /* each argument copied out: the text need not end in a NUL */
    char prev[16] = "", a[160];
    start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && text[i] != '\0') continue;
        copy_cut(a, sizeof a, text + start, i - start);
        if (strncmp(a, "--port=", 7) == 0) out->cmd_port = atoi(a + 7);
        else if (strncmp(a, "--host=", 7) == 0) out->cmd_port = ns_detect_port_of(a + 7);
        else if (strcmp(prev, "--port") == 0) out->cmd_port = atoi(a);
        else if (strcmp(prev, "--host") == 0 && ns_detect_port_of(a) > 0) out->cmd_port = ns_detect_port_of(a);
        copy_cut(prev, sizeof prev, a, strlen(a));
        start = i + 1;
    }
    if (out->cmd_port < 0 || out->cmd_port > 65535) out->cmd_port = 0;
}

int ns_detect_parse_status_uid(const char *text, size_t len) {
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        if (le - p > 4 && memcmp(p, "Uid:", 4) == 0) {
            const char *q = p + 4;
            while (q < le && (*q == ' ' || *q == '\t')) q++;
            if (q >= le || !isdigit((unsigned char)*q)) return -1;
            long v = 0;
            while (q < le && isdigit((unsigned char)*q) && v < 0x7fffffff / 10) v = v * 10 + (*q++ - '0');
            return (int)v;
        }
        p = le + 1;
    }
    return -1;
}

static const struct {
    const char *prefix;
    unsigned bit;
} LIBS[] = {
    {"libllama", NS_LIB_LLAMA}, {"libggml", NS_LIB_GGML}, {"libtorch", NS_LIB_TORCH},
    {"libonnxruntime", NS_LIB_ONNX}, {"libcudart", NS_LIB_CUDART},
};

static int bit_index(unsigned bit) {
    int i = 0;
    while (bit > 1) {
        bit >>= 1;
        i++;
    }
    return i;
}

void ns_detect_parse_maps(const char *text, size_t len, ns_proc_info *out) {
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        /* The path is the sixth field and the only one that starts with '/'. */
        const char *path = memchr(p, '/', (size_t)(le - p));
        if (path) {
            size_t blen;
            const char *b = base_of(path, (size_t)(le - path), &blen);
            for (size_t i = 0; i < sizeof LIBS / sizeof LIBS[0]; i++) {
                size_t pl = strlen(LIBS[i].prefix);
                if (blen > pl && memcmp(b, LIBS[i].prefix, pl) == 0 && !(out->libs & LIBS[i].bit)) {
                    out->libs |= LIBS[i].bit;
                    copy_cut(out->lib_names[bit_index(LIBS[i].bit)], sizeof out->lib_names[0], b, blen);
                }
            }
        }
        p = le + 1;
    }
}

int ns_detect_port_of(const char *spec) {
    const char *h = strstr(spec, "://");
    h = h ? h + 3 : spec;
    const char *end = h + strcspn(h, "/");
    const char *colon = NULL;
    if (*h == '[') {
        const char *rb = memchr(h, ']', (size_t)(end - h));
        if (rb && rb + 1 < end && rb[1] == ':') colon = rb + 1;
    } else {
        for (const char *q = h; q < end; q++)
            if (*q == ':') colon = q;
    }
    if (!colon) return 0;
    long v = 0;
    const char *q = colon + 1;
    if (q >= end) return 0;
    for (; q < end; q++) {
        if (!isdigit((unsigned char)*q)) return 0;
        v = v * 10 + (*q - '0');
        if (v > 65535) return 0;
    }
    return (int)v;
}

void ns_detect_parse_environ(const char *text, size_t len, ns_proc_info *out) {
    static const char *const KEYS[] = {"OLLAMA_HOST=", "CUDA_VISIBLE_DEVICES="};
    size_t k = strlen(out->env);
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && text[i] != '\0') continue;
        const char *a = text + start;
        size_t alen = i - start;
        for (size_t j = 0; j < sizeof KEYS / sizeof KEYS[0]; j++) {
            size_t kl = strlen(KEYS[j]);
            if (alen < kl || memcmp(a, KEYS[j], kl) != 0) continue;
            int w = snprintf(out->env + k, sizeof out->env - k, "%s%.*s", k ? " " : "", (int)alen, a);
            if (w > 0) k = (size_t)w + k < sizeof out->env ? k + (size_t)w : sizeof out->env - 1;
            if (j == 0) {
                char spec[160];
                copy_cut(spec, sizeof spec, a + kl, alen - kl);
                out->env_port = ns_detect_port_of(spec);
                /* OLLAMA_HOST=0.0.0.0 means Ollama's own default port */
                if (out->env_port == 0 && spec[0]) out->env_port = 11434;
            }
        }
        start = i + 1;
    }
}

/* ---- one process ---- */

int ns_proc_info_read(const char *root, int pid, ns_proc_info *out) {
    memset(out, 0, sizeof *out);
    out->pid = pid;
    out->uid = -1;
    out->rss = -1;
    char path[512];
    size_t len;
    char *t;

    snprintf(path, sizeof path, "%s/%d/comm", root, pid);
    if (!(t = read_file(path, &len))) return -1; /* gone: nothing to report */
    while (len > 0 && (t[len - 1] == '\n' || t[len - 1] == '\0')) len--;
    copy_cut(out->comm, sizeof out->comm, t, len);
    free(t);

    snprintf(path, sizeof path, "%s/%d/cmdline", root, pid);
    if ((t = read_file(path, &len))) {
        ns_detect_parse_cmdline(t, len, out);
        free(t);
    }
    snprintf(path, sizeof path, "%s/%d/status", root, pid);
    if ((t = read_file(path, &len))) {
        out->uid = ns_detect_parse_status_uid(t, len);
        free(t);
    }
    snprintf(path, sizeof path, "%s/%d/maps", root, pid);
    if ((t = read_file(path, &len))) { /* another user's maps: permission denied, fine */
        ns_detect_parse_maps(t, len, out);
        free(t);
    }
    snprintf(path, sizeof path, "%s/%d/environ", root, pid);
    if ((t = read_file(path, &len))) {
        ns_detect_parse_environ(t, len, out);
        free(t);
    }
    snprintf(path, sizeof path, "%s/%d/statm", root, pid);
    if ((t = read_file(path, &len))) {
        long page = sysconf(_SC_PAGESIZE);
        int64_t rss;
        if (ns_proc_parse_statm(t, len, page > 0 ? page : 4096, &rss) == 0) out->rss = rss;
        free(t);
    }
    return 0;
}

/* ---- listening sockets ---- */

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Next whitespace-delimited token on the line [*p, le). */
static bool next_token(const char **p, const char *le, const char **tok, size_t *tlen) {
    const char *q = *p;
    while (q < le && (*q == ' ' || *q == '\t')) q++;
    const char *s = q;
    while (q < le && *q != ' ' && *q != '\t') q++;
    *p = q;
    *tok = s;
    *tlen = (size_t)(q - s);
    return q > s;
}

/* The kernel prints addresses as the in-memory bytes of each 32-bit word in
 * host order: on little-endian machines 127.0.0.1 is "0100007F". */
static bool hex_addr(const char *s, size_t n, unsigned char *bytes) {
    if (n != 8 && n != 32) return false;
    for (size_t w = 0; w < n / 8; w++) {
        uint32_t v = 0;
        for (size_t i = 0; i < 8; i++) {
            int h = hexval(s[w * 8 + i]);
            if (h < 0) return false;
            v = v << 4 | (uint32_t)h;
        }
        /* v is the word as the kernel held it; memcpy gives back its bytes */
        memcpy(bytes + w * 4, &v, 4);
    }
    return true;
}

static void probe_host(const unsigned char *b, bool v6, char *host, size_t cap) {
    static const unsigned char zero[16] = {0};
    static const unsigned char v6_loop[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    static const unsigned char v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (!v6) {
        if (memcmp(b, zero, 4) == 0 || b[0] == 127) snprintf(host, cap, "127.0.0.1");
        else snprintf(host, cap, "%u.%u.%u.%u", b[0], b[1], b[2], b[3]);
        return;
    }
    if (memcmp(b, v4_mapped, 12) == 0) {
        if (memcmp(b + 12, zero, 4) == 0 || b[12] == 127) snprintf(host, cap, "127.0.0.1");
        else snprintf(host, cap, "%u.%u.%u.%u", b[12], b[13], b[14], b[15]);
        return;
    }
    /* [::] takes IPv4 connections too unless it is v6-only; [::1] works for both */
    if (memcmp(b, zero, 16) == 0 || memcmp(b, v6_loop, 16) == 0) {
        snprintf(host, cap, "[::1]");
        return;
    }
    size_t k = 0;
    k += (size_t)snprintf(host + k, cap - k, "[");
    for (int i = 0; i < 16 && k < cap; i += 2)
        k += (size_t)snprintf(host + k, cap - k, "%s%x", i ? ":" : "", (unsigned)(b[i] << 8 | b[i + 1]));
    if (k < cap) snprintf(host + k, cap - k, "]");
}

int ns_detect_parse_net_tcp(const char *text, size_t len, bool v6, ns_listen_set *set) {
    const char *p = text, *end = text + len;
    bool header = true;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        const char *q = p;
        p = le + 1;
        if (header) { /* "  sl  local_address rem_address   st ..." */
            header = false;
            continue;
        }
        const char *tok[10];
        size_t tl[10];
        int n = 0;
        while (n < 10 && next_token(&q, le, &tok[n], &tl[n])) n++;
        if (n < 10) continue;
        if (tl[3] != 2 || tok[3][0] != '0' || (tok[3][1] != 'A' && tok[3][1] != 'a')) continue; /* 0A = LISTEN */
        const char *colon = memchr(tok[1], ':', tl[1]);
        if (!colon) continue;
        unsigned char addr[16];
        if (!hex_addr(tok[1], (size_t)(colon - tok[1]), addr)) continue;
        size_t alen = (size_t)(colon - tok[1]);
        if ((alen == 32) != v6) continue;
        int port = 0;
        for (const char *c = colon + 1; c < tok[1] + tl[1]; c++) {
            int h = hexval(*c);
            if (h < 0) {
                port = -1;
                break;
            }
            port = port * 16 + h;
        }
        if (port <= 0 || port > 65535) continue;
        uint64_t inode = 0;
        for (size_t i = 0; i < tl[9]; i++) {
            if (!isdigit((unsigned char)tok[9][i])) break;
            inode = inode * 10 + (uint64_t)(tok[9][i] - '0');
        }
        if (set->n == set->cap) {
            int nc = set->cap ? set->cap * 2 : 32;
            ns_listen_sock *nv = realloc(set->v, (size_t)nc * sizeof *nv);
            if (!nv) return -1;
            set->v = nv;
            set->cap = nc;
        }
        ns_listen_sock *s = &set->v[set->n++];
        memset(s, 0, sizeof *s);
        s->port = port;
        s->inode = inode;
        probe_host(addr, v6, s->host, sizeof s->host);
    }
    return 0;
}

uint64_t ns_detect_socket_inode(const char *link) {
    if (strncmp(link, "socket:[", 8) != 0) return 0;
    uint64_t v = 0;
    const char *q = link + 8;
    if (!isdigit((unsigned char)*q)) return 0;
    while (isdigit((unsigned char)*q)) v = v * 10 + (uint64_t)(*q++ - '0');
    return *q == ']' ? v : 0;
}

static bool all_digits(const char *s) {
    if (!*s) return false;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s)) return false;
    return true;
}

int ns_detect_listen_scan(const char *root, ns_listen_set *set) {
    char path[512];
    for (int v6 = 0; v6 < 2; v6++) {
        snprintf(path, sizeof path, "%s/net/%s", root, v6 ? "tcp6" : "tcp");
        size_t len;
        char *t = read_file(path, &len);
        if (!t) continue; /* no IPv6, or a restricted /proc */
        int rc = ns_detect_parse_net_tcp(t, len, v6 != 0, set);
        free(t);
        if (rc != 0) return -1;
    }
    if (set->n == 0) return 0;
    /* Owners: only our own processes' fd links are readable as non-root;
     * the rest stay pid 0 and are matched later by port hints. */
    DIR *d = opendir(root);
    if (!d) return 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!all_digits(de->d_name)) continue;
        snprintf(path, sizeof path, "%s/%s/fd", root, de->d_name);
        DIR *fds = opendir(path);
        if (!fds) continue;
        struct dirent *fe;
        while ((fe = readdir(fds))) {
            if (!all_digits(fe->d_name)) continue;
            char lp[800], target[64];
            snprintf(lp, sizeof lp, "%s/%s", path, fe->d_name);
            ssize_t n = readlink(lp, target, sizeof target - 1);
            if (n <= 0) continue;
            target[n] = '\0';
            uint64_t ino = ns_detect_socket_inode(target);
            if (!ino) continue;
            for (int i = 0; i < set->n; i++)
                if (set->v[i].inode == ino && set->v[i].pid == 0) set->v[i].pid = atoi(de->d_name);
        }
        closedir(fds);
    }
    closedir(d);
    return 0;
}

void ns_listen_set_free(ns_listen_set *set) {
    free(set->v);
    set->v = NULL;
    set->n = set->cap = 0;
}

/* ---- classification ---- */

static bool has_ci(const char *hay, const char *needle) {
    size_t n = strlen(needle);
    for (const char *p = hay; *p; p++)
        if (strncasecmp(p, needle, n) == 0) return true;
    return false;
}

/* The process's own name: comm, which for a script run through its shebang
 * is the script's name, or the first argument's basename. */
static bool named(const ns_proc_info *p, const char *name) {
    return strcmp(p->comm, name) == 0 || strcmp(p->argv0, name) == 0;
}

static bool named_prefix(const ns_proc_info *p, const char *prefix) {
    size_t n = strlen(prefix);
    return strncmp(p->comm, prefix, n) == 0 || strncmp(p->argv0, prefix, n) == 0;
}

bool ns_detect_classify(const ns_proc_info *p, ns_ai_kind *kind, char *why, size_t whylen) {
    /* Names first: they are what the runtime calls itself. */
    if (named(p, "nstack")) {
        *kind = NS_AI_NSTACK;
        snprintf(why, whylen, "name nstack");
        return true;
    }
    /* "ollama", and its runner children ("ollama_llama_server", cut to 15
     * characters in comm) */
    if (named_prefix(p, "ollama")) {
        *kind = NS_AI_OLLAMA;
        snprintf(why, whylen, "name %s", p->comm[0] ? p->comm : p->argv0);
        return true;
    }
    if (named(p, "llama-server") || named_prefix(p, "llama-") || has_ci(p->argv0, "llama.cpp") ||
        strcmp(p->argv1, "llama-server") == 0) {
        *kind = NS_AI_LLAMACPP;
        snprintf(why, whylen, "name %s", p->comm[0] ? p->comm : p->argv0);
        return true;
    }
    /* Python runtimes run as "python3 -m vllm..." or a script: the command
     * line says which. */
    static const struct {
        const char *word;
        ns_ai_kind kind;
    } WORDS[] = {
        {"vllm", NS_AI_VLLM},           {"comfyui", NS_AI_IMAGE_GEN},  {"stable-diffusion", NS_AI_IMAGE_GEN},
        {"stable_diffusion", NS_AI_IMAGE_GEN}, {"diffusers", NS_AI_IMAGE_GEN}, {"whisper", NS_AI_WHISPER},
    };
    for (size_t i = 0; i < sizeof WORDS / sizeof WORDS[0]; i++) {
        if (has_ci(p->cmdline, WORDS[i].word) || has_ci(p->comm, WORDS[i].word)) {
            *kind = WORDS[i].kind;
            snprintf(why, whylen, "command line %s", WORDS[i].word);
            return true;
        }
    }
    /* Then the libraries it maps, most specific first. */
    static const struct {
        unsigned bit;
        ns_ai_kind kind;
    } BY_LIB[] = {
        {NS_LIB_LLAMA, NS_AI_LLAMACPP}, {NS_LIB_GGML, NS_AI_LLAMACPP}, {NS_LIB_TORCH, NS_AI_PYTORCH},
        {NS_LIB_ONNX, NS_AI_ONNX},      {NS_LIB_CUDART, NS_AI_CUDA_OTHER},
    };
    for (size_t i = 0; i < sizeof BY_LIB / sizeof BY_LIB[0]; i++) {
        if (p->libs & BY_LIB[i].bit) {
            *kind = BY_LIB[i].kind;
            snprintf(why, whylen, "maps %s", p->lib_names[bit_index(BY_LIB[i].bit)]);
            return true;
        }
    }
    return false;
}

/* ---- vLLM metrics ---- */

bool ns_detect_parse_vllm_metrics(const char *text, size_t len, double *kv_pct, int *running, int *waiting) {
    *kv_pct = -1;
    *running = *waiting = -1;
    double kv = 0, run = 0, wait = 0;
    bool have_kv = false, have_run = false, have_wait = false;
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        const char *line = p;
        p = le + 1;
        if (line == le || *line == '#') continue;
        /* name, then optional {labels}, then the value */
        const char *ne = line;
        while (ne < le && *ne != '{' && *ne != ' ' && *ne != '\t') ne++;
        size_t nl_len = (size_t)(ne - line);
        const char *v = ne;
        if (v < le && *v == '{') {
            /* label values may hold '}' only inside quotes */
            bool inq = false;
            while (v < le && (inq || *v != '}')) {
                if (*v == '"' && v[-1] != '\\') inq = !inq;
                v++;
            }
            if (v < le) v++;
        }
        char num[64];
        while (v < le && (*v == ' ' || *v == '\t')) v++;
        size_t k = 0;
        while (v < le && *v != ' ' && *v != '\t' && k + 1 < sizeof num) num[k++] = *v++;
        num[k] = '\0';
        char *stop;
        double x = strtod(num, &stop);
        if (k == 0 || *stop) continue;
#define IS(name) (nl_len == strlen(name) && memcmp(line, name, nl_len) == 0)
        if (IS("vllm:gpu_cache_usage_perc") || IS("vllm:kv_cache_usage_perc")) {
            /* one value per engine; two names in releases that moved between them */
            if (!have_kv || x > kv) kv = x;
            have_kv = true;
        } else if (IS("vllm:num_requests_running")) {
            run += x;
            have_run = true;
        } else if (IS("vllm:num_requests_waiting")) {
            wait += x;
            have_wait = true;
        }
#undef IS
    }
    if (have_kv) *kv_pct = kv * 100.0;
    if (have_run) *running = (int)run;
    if (have_wait) *waiting = (int)wait;
    return have_kv || have_run || have_wait;
}
