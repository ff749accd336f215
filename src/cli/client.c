#include "cli.h"
#include "client.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#define DEFAULT_PORT 11434
/* Only for connecting: a generation may take as long as it takes. */
#define CONNECT_TIMEOUT_S 10L

struct client {
    CURL *curl;
    char base[1024];
    bool loopback;
    long timeout_ms; /* client_set_timeout; 0: none */
    int last_status;
    bool last_server_error;
};

/* ---- the host spec ---- */

const char *client_host_spec(const char *host_opt) {
    if (host_opt && *host_opt) return host_opt;
    const char *env = getenv("NSTACK_HOST");
    if (env && *env) return env;
    return CLIENT_DEFAULT_HOST;
}

static bool parse_port(const char *s, size_t n, int *port) {
    if (n == 0 || n > 5) return false;
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i])) return false;
        v = v * 10 + (s[i] - '0');
    }
    if (v < 1 || v > 65535) return false;
    *port = v;
    return true;
}

int client_base_url_for(const char *spec, char *url, size_t urllen, char *err, size_t errlen) {
    while (isspace((unsigned char)*spec)) spec++;
    size_t n = strlen(spec);
    while (n > 0 && isspace((unsigned char)spec[n - 1])) n--;
    char s[1024];
    if (n >= sizeof s) {
        snprintf(err, errlen, "host '%s' is too long", spec);
        return -1;
    }
    memcpy(s, spec, n);
    s[n] = 0;

    const char *scheme = "http", *hostport = s;
    int port = DEFAULT_PORT;
    char *sep = strstr(s, "://");
    if (sep) {
        *sep = 0;
        hostport = sep + 3;
        /* as Ollama's OLLAMA_HOST (and our server) read it: an explicit
         * scheme without a port means that scheme's port */
        if (strcmp(s, "https") == 0) {
            scheme = "https";
            port = 443;
        } else if (strcmp(s, "http") == 0) {
            port = 80;
        } else {
            snprintf(err, errlen, "host '%s': unsupported scheme '%s' (use http:// or https://)", spec, s);
            return -1;
        }
    }
    /* a path after the address is kept as a prefix (a server behind a proxy) */
    char prefix[512] = "";
    char *slash = strchr(hostport, '/');
    if (slash) {
        size_t pl = strlen(slash);
        while (pl > 0 && slash[pl - 1] == '/') pl--;
        if (pl >= sizeof prefix) pl = sizeof prefix - 1;
        memcpy(prefix, slash, pl);
        prefix[pl] = 0;
        *slash = 0;
    }

    char host[256];
    const char *h = hostport, *port_s = NULL;
    size_t hl;
    bool v6 = false;
    if (*h == '[') {
        const char *close = strchr(h, ']');
        if (!close || (close[1] && close[1] != ':')) goto bad;
        h++;
        hl = (size_t)(close - h);
        v6 = true;
        if (close[1] == ':') port_s = close + 2;
    } else {
        const char *colon = strchr(h, ':');
        if (colon && strchr(colon + 1, ':')) { /* a bare IPv6 address */
            hl = strlen(h);
            v6 = true;
        } else {
            hl = colon ? (size_t)(colon - h) : strlen(h);
            if (colon) port_s = colon + 1;
        }
    }
    if (hl >= sizeof host) goto bad;
    memcpy(host, h, hl);
    host[hl] = 0;
    if (port_s && !parse_port(port_s, strlen(port_s), &port)) {
        snprintf(err, errlen, "host '%s': invalid port '%s' (expected 1 to 65535)", spec, port_s);
        return -1;
    }
    /* a server listening on every address answers on loopback */
    if (!*host || strcmp(host, "0.0.0.0") == 0) {
        snprintf(host, sizeof host, "127.0.0.1");
    } else if (strcmp(host, "::") == 0) {
        snprintf(host, sizeof host, "::1");
    }
    for (const char *p = host; *p; p++) {
        if (isspace((unsigned char)*p) || *p == '@' || *p == '?' || *p == '#') goto bad;
    }
    int w = snprintf(url, urllen, v6 ? "%s://[%s]:%d%s" : "%s://%s:%d%s", scheme, host, port, prefix);
    if (w < 0 || (size_t)w >= urllen) goto bad;
    return 0;
bad:
    snprintf(err, errlen, "invalid host '%s' (expected HOST, HOST:PORT or http://HOST:PORT)", spec);
    return -1;
}

static bool is_loopback_url(const char *url) {
    const char *h = strstr(url, "://");
    h = h ? h + 3 : url;
    return strncmp(h, "127.", 4) == 0 || strncmp(h, "localhost:", 10) == 0 || strncmp(h, "localhost/", 10) == 0 ||
           strncmp(h, "[::1]", 5) == 0;
}

/* ---- the client ---- */

client *client_open(const char *host_spec, char *err, size_t errlen) {
    client *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (client_base_url_for(host_spec, c->base, sizeof c->base, err, errlen) != 0) {
        free(c);
        return NULL;
    }
    c->loopback = is_loopback_url(c->base);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || !(c->curl = curl_easy_init())) {
        snprintf(err, errlen, "cannot start the HTTP client (libcurl)");
        free(c);
        return NULL;
    }
    return c;
}

void client_close(client *c) {
    if (!c) return;
    curl_easy_cleanup(c->curl);
    curl_global_cleanup();
    free(c);
}

int client_open_cli(const char *host_spec, client **c) {
    char err[512], url[1024];
    if (client_base_url_for(host_spec, url, sizeof url, err, sizeof err) != 0) {
        fprintf(stderr, "nstack: %s\n", err);
        return NS_EXIT_USAGE;
    }
    if (!(*c = client_open(host_spec, err, sizeof err))) {
        fprintf(stderr, "nstack: %s\n", err);
        return NS_EXIT_FAIL;
    }
    return NS_EXIT_OK;
}

void client_set_timeout(client *c, long timeout_ms) { c->timeout_ms = timeout_ms; }

const char *client_url(const client *c) { return c->base; }
int client_last_status(const client *c) { return c->last_status; }
bool client_last_error_from_server(const client *c) { return c->last_server_error; }

/* ---- one transfer ---- */

typedef struct {
    client *c;
    char *data;
    size_t len, cap;
    client_line_fn fn; /* NULL: keep the whole body */
    void *user;
    bool stopped;      /* fn asked to stop */
    char *line_error;  /* a {"error"} line of a stream (malloc'd) */
    char *bad_line;    /* a line that is not a JSON object (malloc'd) */
} transfer;

static int buf_append(transfer *t, const char *p, size_t n) {
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 4096;
        while (cap < t->len + n + 1) cap *= 2;
        char *d = realloc(t->data, cap);
        if (!d) return -1;
        t->data = d;
        t->cap = cap;
    }
    memcpy(t->data + t->len, p, n);
    t->len += n;
    t->data[t->len] = 0;
    return 0;
}

/* The message of an error body: Ollama's {"error": "..."} or OpenAI's
 * {"error": {"message": "..."}}; NULL otherwise. */
static const char *error_message(const cJSON *j) {
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
    if (cJSON_IsString(e)) return e->valuestring;
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(e, "message");
    return cJSON_IsString(m) ? m->valuestring : NULL;
}

/* One NDJSON line; false to stop the transfer. */
static bool handle_line(transfer *t, const char *line, size_t n) {
    while (n > 0 && isspace((unsigned char)line[n - 1])) n--;
    while (n > 0 && isspace((unsigned char)*line)) line++, n--;
    if (n == 0) return true;
    cJSON *j = cJSON_ParseWithLength(line, n);
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        t->bad_line = strndup(line, n > 200 ? 200 : n);
        return false;
    }
    const char *msg = error_message(j);
    if (msg) {
        t->line_error = strdup(msg);
        cJSON_Delete(j);
        return false;
    }
    int stop = t->fn(t->user, j);
    cJSON_Delete(j);
    if (stop) t->stopped = true;
    return !stop;
}

static bool status_ok(long status) { return status >= 200 && status < 300; }

static size_t on_data(char *p, size_t size, size_t nmemb, void *user) {
    transfer *t = user;
    size_t n = size * nmemb;
    if (buf_append(t, p, n) != 0) return 0;
    long status = 0;
    curl_easy_getinfo(t->c->curl, CURLINFO_RESPONSE_CODE, &status);
    if (!t->fn || !status_ok(status)) return n; /* the whole body is read at the end */
    size_t start = 0;
    for (size_t i = t->len - n; i < t->len; i++) {
        if (t->data[i] != '\n') continue;
        if (!handle_line(t, t->data + start, i - start)) return 0;
        start = i + 1;
    }
    memmove(t->data, t->data + start, t->len - start);
    t->len -= start;
    t->data[t->len] = 0;
    return n;
}

static void lower_first(char *s) {
    if (*s) *s = (char)tolower((unsigned char)*s);
}

static void describe_failure(client *c, CURLcode rc, const char *curl_err, char *err, size_t errlen) {
    char why[256];
    long os_errno = 0;
    curl_easy_getinfo(c->curl, CURLINFO_OS_ERRNO, &os_errno);
    switch (rc) {
    case CURLE_COULDNT_CONNECT:
        snprintf(why, sizeof why, "%s", os_errno ? strerror((int)os_errno) : "cannot connect");
        lower_first(why);
        snprintf(err, errlen, "cannot reach the server at %s: %s (is `nstack serve` running?)", c->base, why);
        return;
    case CURLE_COULDNT_RESOLVE_HOST:
        snprintf(err, errlen, "cannot reach the server at %s: unknown host name (check --host or NSTACK_HOST)",
                 c->base);
        return;
    case CURLE_OPERATION_TIMEDOUT:
        snprintf(err, errlen, "cannot reach the server at %s: connecting timed out (is `nstack serve` running?)",
                 c->base);
        return;
    case CURLE_GOT_NOTHING:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_PARTIAL_FILE:
        snprintf(err, errlen, "the server at %s closed the connection before answering in full (%s)", c->base,
                 *curl_err ? curl_err : curl_easy_strerror(rc));
        return;
    default:
        snprintf(err, errlen, "request to the server at %s failed: %s", c->base,
                 *curl_err ? curl_err : curl_easy_strerror(rc));
    }
}

/* An error answer: the server's message, or what came instead of one. */
static void describe_status(client *c, long status, const char *method, const char *path, const char *body,
                            char *err, size_t errlen) {
    cJSON *j = cJSON_Parse(body);
    const char *msg = error_message(j);
    if (msg) {
        snprintf(err, errlen, "%s", msg);
        c->last_server_error = true;
    } else {
        char first[160];
        size_t n = strcspn(body, "\r\n");
        if (n >= sizeof first) n = sizeof first - 1;
        memcpy(first, body, n);
        first[n] = 0;
        snprintf(err, errlen, "the server at %s answered HTTP %ld to %s %s%s%s", c->base, status, method, path,
                 *first ? ": " : "", first);
    }
    cJSON_Delete(j);
}

static int perform(client *c, const char *method, const char *path, const cJSON *body, transfer *t, char *err,
                   size_t errlen) {
    c->last_status = 0;
    c->last_server_error = false;
    char url[2048];
    snprintf(url, sizeof url, "%s%s", c->base, path);
    char *payload = NULL;
    if (body && !(payload = cJSON_PrintUnformatted(body))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    struct curl_slist *hdrs = NULL;
    hdrs = curl_slist_append(hdrs, "Accept: application/json, application/x-ndjson");
    if (payload) hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
    hdrs = curl_slist_append(hdrs, "Expect:"); /* no 100-continue round trip for larger bodies */

    CURL *h = c->curl;
    char curl_err[CURL_ERROR_SIZE] = "";
    curl_easy_reset(h); /* keeps the open connection */
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "nstack/" NSTACK_VERSION);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, CONNECT_TIMEOUT_S);
    if (c->timeout_ms > 0) curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c->timeout_ms);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, curl_err);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, t);
    if (c->loopback) curl_easy_setopt(h, CURLOPT_NOPROXY, "*"); /* a local server is never behind a proxy */
    if (payload) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, payload);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(payload));
    }
    if (strcmp(method, "GET") == 0) curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    else if (strcmp(method, "POST") != 0 || !payload) curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);

    CURLcode rc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    c->last_status = (int)status;
    curl_slist_free_all(hdrs);
    free(payload);

    if (t->line_error) {
        snprintf(err, errlen, "%s", t->line_error);
        c->last_server_error = true;
        return -1;
    }
    if (t->bad_line) {
        snprintf(err, errlen, "the server at %s sent a line that is not a JSON object: %s", c->base, t->bad_line);
        return -1;
    }
    if (t->stopped) return 0;
    if (rc != CURLE_OK) {
        describe_failure(c, rc, curl_err, err, errlen);
        return -1;
    }
    if (!status_ok(status)) {
        describe_status(c, status, method, path, t->data ? t->data : "", err, errlen);
        return -1;
    }
    return 0;
}

static void transfer_free(transfer *t) {
    free(t->data);
    free(t->line_error);
    free(t->bad_line);
}

int client_call(client *c, const char *method, const char *path, const cJSON *body, cJSON **out, char *err,
                size_t errlen) {
    if (out) *out = NULL;
    transfer t = {.c = c};
    int rc = perform(c, method, path, body, &t, err, errlen);
    if (rc == 0 && out && t.len > 0) *out = cJSON_ParseWithLength(t.data, t.len);
    transfer_free(&t);
    return rc;
}

int client_stream(client *c, const char *method, const char *path, const cJSON *body, client_line_fn fn, void *user,
                  char *err, size_t errlen) {
    transfer t = {.c = c, .fn = fn, .user = user};
    int rc = perform(c, method, path, body, &t, err, errlen);
    /* the last line may come without its newline */
    if (rc == 0 && !t.stopped && t.len > 0 && !handle_line(&t, t.data, t.len)) {
        if (t.line_error) {
            snprintf(err, errlen, "%s", t.line_error);
            c->last_server_error = true;
            rc = -1;
        } else if (t.bad_line) {
            snprintf(err, errlen, "the server at %s sent a line that is not a JSON object: %s", c->base, t.bad_line);
            rc = -1;
        }
    }
    transfer_free(&t);
    return rc;
}
