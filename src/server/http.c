/* The HTTP layer on libmicrohttpd (thread per connection).
 *
 * MHD calls the access handler several times per request: once with the
 * headers, then with pieces of the body, then once more with none. The body
 * is gathered into the request (or dropped past max_body, answered 413 once
 * it is drained) and the application handler runs on the last call, on the
 * connection's own thread, so it may block.
 *
 * A streamed response is an MHD callback response of unknown size (chunked).
 * Its state (stream_state) is owned by the MHD response; the request (owned
 * by the connection until MHD reports it completed) points at it and back,
 * and whichever goes first clears the other's pointer. The application's
 * done callback runs exactly once: from the completion notice, which knows
 * whether the response went out whole, or, failing that, when the response
 * is destroyed. */
#define _GNU_SOURCE /* POLLRDHUP */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "http.h"
#include "util/duration.h"
#include "util/log.h"

struct ns_http_server {
    struct MHD_Daemon *daemon;
    MHD_socket listen_fd; /* ours again once quiesced: MHD no longer closes it */
    bool quiesced;
    int port;
    size_t max_body;
    ns_http_handler handler;
    ns_http_done_fn on_done;
    void *app;
    uint64_t id_seed;
    atomic_uint_fast64_t id_counter;
    pthread_mutex_t mu; /* guards active */
    pthread_cond_t idle;
    int active;         /* requests from their headers to their completion */
};

typedef struct {
    char *name, *value;
} header_kv;

typedef struct stream_state stream_state;

struct ns_http_req {
    ns_http_server *srv;
    struct MHD_Connection *conn;
    char method[16];
    char *path;
    ns_buf body;
    bool too_large;
    bool handled;   /* the application handler ran */
    bool responded;
    int status;
    char id[24];
    char peer[80];
    header_kv *headers;
    int n_headers;
    int64_t start_ns;
    const char *route; /* ns_http_set_route */
    stream_state *stream;
};

struct stream_state {
    ns_http_req *req; /* NULL once the request is completed */
    ns_stream_fn fn;
    ns_stream_done_fn done;
    void *user;
    ns_buf out;
    size_t off;
    bool ended;
    bool client_gone;
    bool done_called;
};

/* ---- request accessors ---- */

const char *ns_http_method(const ns_http_req *r) { return r->method; }
const char *ns_http_path(const ns_http_req *r) { return r->path; }
const char *ns_http_request_id(const ns_http_req *r) { return r->id; }
const char *ns_http_peer(const ns_http_req *r) { return r->peer; }

const char *ns_http_header(const ns_http_req *r, const char *name) {
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *ns_http_query(const ns_http_req *r, const char *key) {
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, key);
}

const char *ns_http_body(const ns_http_req *r, size_t *len) {
    if (len) *len = r->body.len;
    return r->body.data ? r->body.data : "";
}

bool ns_http_client_gone(ns_http_req *r) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci) return true;
    struct pollfd p = {.fd = ci->connect_fd, .events = POLLIN | POLLRDHUP};
    if (poll(&p, 1, 0) <= 0) return false;
    if (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) return true;
    if (p.revents & POLLIN) {
        /* readable: either the next pipelined request (still here) or EOF */
        char c;
        ssize_t n = recv(ci->connect_fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
        return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
    }
    return false;
}

void ns_http_add_header(ns_http_req *r, const char *name, const char *value) {
    header_kv *h = realloc(r->headers, sizeof *h * (size_t)(r->n_headers + 1));
    if (!h) return;
    r->headers = h;
    char *n = strdup(name), *v = strdup(value);
    if (!n || !v) {
        free(n);
        free(v);
        return;
    }
    h[r->n_headers].name = n;
    h[r->n_headers].value = v;
    r->n_headers++;
}

/* ---- responses ---- */

static int queue(ns_http_req *r, int status, const char *content_type, struct MHD_Response *resp) {
    if (!resp) return -1;
    MHD_add_response_header(resp, "X-Request-Id", r->id);
    if (content_type) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    for (int i = 0; i < r->n_headers; i++) MHD_add_response_header(resp, r->headers[i].name, r->headers[i].value);
    enum MHD_Result ok = MHD_queue_response(r->conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    if (ok != MHD_YES) return -1;
    r->responded = true;
    r->status = status;
    return 0;
}

void ns_http_set_route(ns_http_req *r, const char *pattern) { r->route = pattern; }

int ns_http_respond(ns_http_req *r, int status, const char *content_type, const char *body, size_t len) {
    if (r->responded) {
        ns_log_error("http", "a route answered twice", "request_id=%s", r->id);
        return -1;
    }
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, (void *)(body ? body : ""), MHD_RESPMEM_MUST_COPY);
    return queue(r, status, content_type, resp);
}

int ns_http_respond_json(ns_http_req *r, int status, cJSON *json) {
    char *text = json ? cJSON_PrintUnformatted(json) : NULL;
    cJSON_Delete(json);
    if (!text) return ns_http_respond_error(r, 500, "out of memory");
    int rc = ns_http_respond(r, status, "application/json; charset=utf-8", text, strlen(text));
    free(text);
    return rc;
}

int ns_http_respond_error(ns_http_req *r, int status, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    ns_log(status >= 500 ? NS_LOG_ERROR : NS_LOG_WARN, "http", "request failed",
           "status=%d request_id=%s error=\"%s\"", status, r->id, msg);
    cJSON *o = cJSON_CreateObject();
    char *text = o && cJSON_AddStringToObject(o, "error", msg) ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    /* out of memory: still answer, with the fixed text */
    static const char oom[] = "{\"error\":\"out of memory\"}";
    int rc = ns_http_respond(r, status, "application/json; charset=utf-8", text ? text : oom,
                             text ? strlen(text) : sizeof oom - 1);
    free(text);
    return rc;
}

static void stream_call_done(stream_state *st, bool client_gone) {
    if (st->done_called) return;
    st->done_called = true;
    st->done(st->user, client_gone);
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    stream_state *st = cls;
    while (st->off >= st->out.len) {
        /* a client that left gets no more work done for it; MHD might not
         * notice by itself, since writing to a closed socket can succeed once */
        if (st->req && ns_http_client_gone(st->req)) {
            st->client_gone = true;
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
        if (st->ended) return MHD_CONTENT_READER_END_OF_STREAM;
        st->out.len = 0;
        st->off = 0;
        int rc = st->fn(st->user, &st->out);
        if (rc != NS_STREAM_MORE) st->ended = true;
    }
    size_t n = st->out.len - st->off;
    if (n > max) n = max;
    memcpy(buf, st->out.data + st->off, n);
    st->off += n;
    return (ssize_t)n;
}

static void stream_free(void *cls) {
    stream_state *st = cls;
    if (st->req) st->req->stream = NULL;
    stream_call_done(st, true); /* only when the completion notice did not come first */
    ns_buf_free(&st->out);
    free(st);
}

int ns_http_respond_stream(ns_http_req *r, int status, const char *content_type, ns_stream_fn fn,
                           ns_stream_done_fn done, void *user) {
    stream_state *st = r->responded ? NULL : calloc(1, sizeof *st);
    if (!st) {
        if (r->responded) ns_log_error("http", "a route answered twice", "request_id=%s", r->id);
        done(user, true);
        return -1;
    }
    st->fn = fn;
    st->done = done;
    st->user = user;
    struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, stream_read, st, stream_free);
    if (!resp) {
        stream_free(st);
        return -1;
    }
    st->req = r;
    r->stream = st;
    /* proxies (nginx) must pass chunks on as they come */
    MHD_add_response_header(resp, "X-Accel-Buffering", "no");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    /* on failure MHD_destroy_response in queue() runs stream_free, which calls done */
    return queue(r, status, content_type, resp);
}

/* ---- MHD callbacks ---- */

static void make_request_id(ns_http_server *s, char out[24]) {
    uint64_t z = s->id_seed + 0x9e3779b97f4a7c15ull * (atomic_fetch_add(&s->id_counter, 1) + 1);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    snprintf(out, 24, "req-%016llx", (unsigned long long)z);
}

static void describe_peer(struct MHD_Connection *c, char *buf, size_t len) {
    snprintf(buf, len, "unknown");
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (!ci || !ci->client_addr) return;
    const struct sockaddr *sa = ci->client_addr;
    socklen_t sl = sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    char host[48], serv[12]; /* INET6_ADDRSTRLEN, a port */
    if (getnameinfo(sa, sl, host, sizeof host, serv, sizeof serv, NI_NUMERICHOST | NI_NUMERICSERV) != 0) return;
    if (sa->sa_family == AF_INET6) snprintf(buf, len, "[%s]:%s", host, serv);
    else snprintf(buf, len, "%s:%s", host, serv);
}

static void active_add(ns_http_server *s, int d) {
    pthread_mutex_lock(&s->mu);
    s->active += d;
    if (s->active == 0) pthread_cond_broadcast(&s->idle);
    pthread_mutex_unlock(&s->mu);
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                 const char *version, const char *upload_data, size_t *upload_data_size,
                                 void **con_cls) {
    (void)version;
    ns_http_server *s = cls;
    ns_http_req *r = *con_cls;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r) return MHD_NO;
        r->path = strdup(url ? url : "/");
        if (!r->path) {
            free(r);
            return MHD_NO;
        }
        r->srv = s;
        r->conn = conn;
        r->start_ns = ns_now_mono();
        snprintf(r->method, sizeof r->method, "%s", method ? method : "");
        make_request_id(s, r->id);
        describe_peer(conn, r->peer, sizeof r->peer);
        active_add(s, 1);
        *con_cls = r;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        if (!r->too_large) {
            if (r->body.len + *upload_data_size > s->max_body) {
                r->too_large = true; /* keep reading (and dropping) so the answer reaches the client */
                ns_buf_free(&r->body);
            } else if (ns_buf_append(&r->body, upload_data, *upload_data_size) != 0) {
                return MHD_NO;
            }
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (r->handled) return MHD_YES; /* MHD may call again after a response is queued */
    r->handled = true;
    if (r->too_large) {
        ns_http_respond_error(r, 413, "request body is larger than the limit of %zu bytes", s->max_body);
    } else {
        s->handler(s->app, r);
        if (!r->responded) ns_http_respond_error(r, 500, "internal error: the route gave no answer");
    }
    return r->responded ? MHD_YES : MHD_NO;
}

/* The path as a log value: no spaces or quotes, however odd the request. */
static void log_safe(const char *in, char *out, size_t len) {
    size_t j = 0;
    for (const unsigned char *p = (const unsigned char *)in; *p && j + 4 < len; p++) {
        if (*p <= ' ' || *p == '"' || *p == '\\' || *p >= 0x7f) j += (size_t)snprintf(out + j, len - j, "%%%02X", *p);
        else out[j++] = (char)*p;
    }
    out[j] = '\0';
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe) {
    (void)conn;
    ns_http_server *s = cls;
    ns_http_req *r = *con_cls;
    if (!r) return;
    *con_cls = NULL;
    bool gone = toe != MHD_REQUEST_TERMINATED_COMPLETED_OK;
    if (r->stream) {
        stream_state *st = r->stream;
        st->req = NULL;
        r->stream = NULL;
        gone = gone || st->client_gone;
        stream_call_done(st, gone);
    }
    char path[512];
    log_safe(r->path, path, sizeof path);
    double ms = (double)(ns_now_mono() - r->start_ns) / 1e6;
    if (!gone)
        ns_log_info("http", "request", "method=%s path=%s status=%d ms=%.1f request_id=%s peer=%s", r->method, path,
                    r->status, ms, r->id, r->peer);
    else
        ns_log_info("http", "request", "method=%s path=%s status=%d ms=%.1f request_id=%s peer=%s client_gone=true",
                    r->method, path, r->status, ms, r->id, r->peer);
    if (s->on_done) {
        ns_http_done d = {r->method, r->route ? r->route : "other", r->status, ms / 1e3, gone};
        s->on_done(s->app, &d);
    }
    for (int i = 0; i < r->n_headers; i++) {
        free(r->headers[i].name);
        free(r->headers[i].value);
    }
    free(r->headers);
    ns_buf_free(&r->body);
    free(r->path);
    free(r);
    active_add(s, -1);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap) {
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r')) msg[--n] = '\0';
    for (char *p = msg; *p; p++)
        if (*p == '"') *p = '\'';
    /* MHD reports every client that hangs up mid-response: debug, not noise */
    ns_log_debug("http", "libmicrohttpd", "detail=\"%s\"", msg);
}

/* ---- the server ---- */

/* Binds ourselves (not MHD) so a failure says why, and names resolve. */
static int open_listener(const char *host, int port, int *bound_port, char *err, size_t errlen) {
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
    struct addrinfo *res = NULL;
    int gai = getaddrinfo(host && *host ? host : NULL, portstr, &hints, &res);
    if (gai != 0) {
        snprintf(err, errlen, "cannot listen on %s:%d: %s", host, port, gai_strerror(gai));
        return -1;
    }
    int fd = -1, last_errno = 0;
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            last_errno = errno;
            continue;
        }
        int one = 1, zero = 0;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        /* "::" serves IPv4 too, as Go's listener does */
        if (ai->ai_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 511) != 0) {
            last_errno = errno;
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0) {
        snprintf(err, errlen, "cannot listen on %s:%d: %s", host, port,
                 last_errno == EADDRINUSE ? "address in use" : strerror(last_errno));
        return -1;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    *bound_port = port;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
        *bound_port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                     : ((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}

ns_http_server *ns_http_server_start(const ns_http_config *cfg, ns_http_handler handler, void *app, char *err,
                                     size_t errlen) {
    ns_http_server *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->handler = handler;
    s->on_done = cfg->on_done;
    s->app = app;
    s->max_body = cfg->max_body ? cfg->max_body : 32u << 20;
    if (getrandom(&s->id_seed, sizeof s->id_seed, 0) != (ssize_t)sizeof s->id_seed)
        s->id_seed = (uint64_t)ns_now_wall() ^ ((uint64_t)getpid() << 32);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->idle, NULL);
    int fd = open_listener(cfg->host, cfg->port, &s->port, err, errlen);
    if (fd < 0) goto fail;
    s->listen_fd = fd;
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG;
    s->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_access, s, MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)(cfg->max_connections > 0 ? cfg->max_connections : 1024), MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)(cfg->connection_timeout_s > 0 ? cfg->connection_timeout_s : 300), MHD_OPTION_NOTIFY_COMPLETED,
        on_completed, s, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL, MHD_OPTION_END);
    if (!s->daemon) {
        close(fd);
        snprintf(err, errlen, "cannot start the HTTP server on %s:%d", cfg->host, cfg->port);
        goto fail;
    }
    return s;
fail:
    pthread_cond_destroy(&s->idle);
    pthread_mutex_destroy(&s->mu);
    free(s);
    return NULL;
}

int ns_http_server_port(const ns_http_server *s) { return s->port; }

void ns_http_server_quiesce(ns_http_server *s) {
    if (!s || s->quiesced) return;
    MHD_socket fd = MHD_quiesce_daemon(s->daemon);
    if (fd != MHD_INVALID_SOCKET) {
        s->quiesced = true;
        s->listen_fd = fd;
    }
}

int ns_http_server_wait_idle(ns_http_server *s, int64_t timeout_ns) {
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    int64_t ns = (int64_t)until.tv_nsec + (timeout_ns > 0 ? timeout_ns : 0);
    until.tv_sec += (time_t)(ns / 1000000000);
    until.tv_nsec = (long)(ns % 1000000000);
    pthread_mutex_lock(&s->mu);
    while (s->active > 0)
        if (pthread_cond_timedwait(&s->idle, &s->mu, &until) == ETIMEDOUT) break;
    int left = s->active;
    pthread_mutex_unlock(&s->mu);
    return left;
}

void ns_http_server_stop(ns_http_server *s) {
    if (!s) return;
    MHD_stop_daemon(s->daemon);
    if (s->quiesced) close(s->listen_fd);
    pthread_cond_destroy(&s->idle);
    pthread_mutex_destroy(&s->mu);
    free(s);
}
