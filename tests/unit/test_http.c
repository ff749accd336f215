/* The HTTP layer (src/server/http.c) against real sockets: request data,
 * the body limit, streaming with its done callback (normal end, a client
 * that hangs up, a server that stops under a blocked stream), and errors.
 * Waits are for events (condition variables with a generous bound that only
 * a broken build reaches), never timing thresholds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "server/http.h"
#include "server/server.h"

/* ---- what the handlers saw ---- */

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int done_calls, done_gone;

static void reset_done(void) {
    pthread_mutex_lock(&mu);
    done_calls = done_gone = 0;
    pthread_mutex_unlock(&mu);
}

/* Waits until done ran n times (bounded, so a bug fails instead of hanging). */
static int wait_done(int n) {
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 20;
    pthread_mutex_lock(&mu);
    while (done_calls < n && pthread_cond_timedwait(&cv, &mu, &until) == 0) {
    }
    int got = done_calls;
    pthread_mutex_unlock(&mu);
    return got;
}

typedef struct {
    ns_http_req *req;
    int i, n;
    bool block; /* wait for the client to go away instead of ending */
} stream_user;

static int stream_fn(void *user, ns_buf *out) {
    stream_user *u = user;
    if (u->i == 0 || !u->block) {
        ns_buf_printf(out, "chunk %d\n", u->i);
        return ++u->i >= u->n && !u->block ? NS_STREAM_END : NS_STREAM_MORE;
    }
    while (!ns_http_client_gone(u->req)) usleep(2000);
    return NS_STREAM_END;
}

static void stream_done(void *user, bool client_gone) {
    free(user);
    pthread_mutex_lock(&mu);
    done_calls++;
    if (client_gone) done_gone++;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

static void handler(void *app, ns_http_req *r) {
    (void)app;
    const char *path = ns_http_path(r);
    if (strcmp(path, "/echo") == 0) {
        size_t len;
        const char *body = ns_http_body(r, &len);
        const char *q = ns_http_query(r, "x"), *h = ns_http_header(r, "x-test");
        char text[256];
        snprintf(text, sizeof text, "%s %s x=%s h=%s len=%zu body=%.40s", ns_http_method(r), path, q ? q : "-",
                 h ? h : "-", len, body);
        ns_http_add_header(r, "X-Extra", "yes");
        ns_http_respond(r, 200, "text/plain", text, strlen(text));
    } else if (strcmp(path, "/json") == 0) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "n", 7);
        ns_http_respond_json(r, 201, o);
    } else if (strcmp(path, "/error") == 0) {
        ns_http_respond_error(r, 422, "bad %s", "thing");
    } else if (strcmp(path, "/stream") == 0 || strcmp(path, "/block") == 0) {
        stream_user *u = calloc(1, sizeof *u);
        u->req = r;
        u->n = 5;
        u->block = strcmp(path, "/block") == 0;
        ns_http_respond_stream(r, 200, "application/x-ndjson", stream_fn, stream_done, u);
    } else if (strcmp(path, "/slow") == 0) {
        usleep(2500 * 1000); /* longer than the idle timeout the test sets */
        ns_http_respond(r, 200, "text/plain", "late", 4);
    }
    /* anything else: no answer, which the layer turns into a 500 */
}

/* ---- a small curl client ---- */

typedef struct {
    long status;
    char body[4096];
    size_t len;
    char request_id[64];
    bool extra_header;
} response;

static size_t on_body(char *p, size_t size, size_t n, void *user) {
    response *r = user;
    size_t k = size * n, room = sizeof r->body - 1 - r->len;
    memcpy(r->body + r->len, p, k < room ? k : room);
    r->len += k < room ? k : room;
    r->body[r->len] = '\0';
    return size * n;
}

static size_t on_header(char *p, size_t size, size_t n, void *user) {
    response *r = user;
    size_t k = size * n;
    if (k > 14 && strncasecmp(p, "X-Request-Id: ", 14) == 0) {
        snprintf(r->request_id, sizeof r->request_id, "%.*s", (int)(k - 14), p + 14);
        r->request_id[strcspn(r->request_id, "\r\n")] = '\0';
    }
    if (k > 9 && strncasecmp(p, "X-Extra: ", 9) == 0) r->extra_header = true;
    return k;
}

static response fetch(int port, const char *method, const char *path, const char *body, size_t body_len) {
    response r = {0};
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    CURL *c = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, "x-test: hello");
    h = curl_slist_append(h, "Expect:");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)body_len);
    }
    if (curl_easy_perform(c) == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return r;
}

/* A raw connection that sent a GET for path and read up to the first chunk. */
static int open_stream(int port, const char *path) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    char reqbuf[256];
    int n = snprintf(reqbuf, sizeof reqbuf, "GET %s HTTP/1.1\r\nHost: test\r\n\r\n", path);
    assert_int_equal(send(fd, reqbuf, (size_t)n, 0), n);
    char buf[2048];
    size_t got = 0;
    while (got < sizeof buf - 1) {
        ssize_t k = recv(fd, buf + got, sizeof buf - 1 - got, 0);
        assert_true(k > 0);
        got += (size_t)k;
        buf[got] = '\0';
        if (strstr(buf, "chunk 0\n")) break;
    }
    assert_non_null(strstr(buf, "HTTP/1.1 200"));
    assert_non_null(strstr(buf, "chunk 0\n"));
    return fd;
}

static ns_http_server *start(size_t max_body, int timeout_s) {
    ns_http_config cfg = {.host = "127.0.0.1", .port = 0, .max_body = max_body, .connection_timeout_s = timeout_s};
    char err[256];
    ns_http_server *s = ns_http_server_start(&cfg, handler, NULL, err, sizeof err);
    assert_non_null(s);
    assert_true(ns_http_server_port(s) > 0);
    return s;
}

/* ---- tests ---- */

static void test_buf(void **state) {
    (void)state;
    ns_buf b = {0};
    assert_int_equal(ns_buf_append(&b, "ab", 2), 0);
    assert_int_equal(ns_buf_printf(&b, "-%d-", 42), 0);
    for (int i = 0; i < 1000; i++) assert_int_equal(ns_buf_append(&b, "x", 1), 0);
    assert_int_equal(b.len, 6 + 1000);
    assert_memory_equal(b.data, "ab-42-x", 7);
    assert_int_equal(b.data[b.len], '\0');
    ns_buf_free(&b);
    assert_null(b.data);
}

static void test_request_and_responses(void **state) {
    (void)state;
    ns_http_server *s = start(1 << 20, 0);
    int port = ns_http_server_port(s);
    response r = fetch(port, "POST", "/echo?x=a%20b", "{\"k\":1}", 7);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "POST /echo x=a b h=hello len=7 body={\"k\":1}");
    assert_true(r.extra_header);
    assert_int_equal(strlen(r.request_id), 20);
    assert_memory_equal(r.request_id, "req-", 4);
    response r2 = fetch(port, "GET", "/echo", NULL, 0);
    assert_string_equal(r2.body, "GET /echo x=- h=hello len=0 body=");
    assert_string_not_equal(r.request_id, r2.request_id);
    r = fetch(port, "GET", "/json", NULL, 0);
    assert_int_equal(r.status, 201);
    assert_string_equal(r.body, "{\"n\":7}");
    r = fetch(port, "GET", "/error", NULL, 0);
    assert_int_equal(r.status, 422);
    assert_string_equal(r.body, "{\"error\":\"bad thing\"}");
    r = fetch(port, "GET", "/no-answer", NULL, 0);
    assert_int_equal(r.status, 500);
    ns_http_server_stop(s);
}

static void test_body_limit(void **state) {
    (void)state;
    ns_http_server *s = start(1000, 0);
    int port = ns_http_server_port(s);
    char *big = malloc(100000);
    memset(big, 'x', 100000);
    response r = fetch(port, "POST", "/echo", big, 100000);
    free(big);
    assert_int_equal(r.status, 413);
    assert_string_equal(r.body, "{\"error\":\"request body is larger than the limit of 1000 bytes\"}");
    r = fetch(port, "POST", "/echo", "0123456789", 10);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "len=10"));
    char limit[1000];
    memset(limit, 'y', sizeof limit);
    r = fetch(port, "POST", "/echo", limit, sizeof limit); /* exactly the limit is fine */
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "len=1000"));
    ns_http_server_stop(s);
}

static void test_stream_to_the_end(void **state) {
    (void)state;
    reset_done();
    ns_http_server *s = start(0, 0);
    response r = fetch(ns_http_server_port(s), "GET", "/stream", NULL, 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "chunk 0\nchunk 1\nchunk 2\nchunk 3\nchunk 4\n");
    assert_int_equal(wait_done(1), 1);
    assert_int_equal(done_gone, 0);
    ns_http_server_stop(s);
    assert_int_equal(done_calls, 1);
}

static void test_stream_client_goes_away(void **state) {
    (void)state;
    reset_done();
    ns_http_server *s = start(0, 0);
    int fd = open_stream(ns_http_server_port(s), "/block");
    close(fd); /* the blocked stream sees the client gone and ends */
    assert_int_equal(wait_done(1), 1);
    assert_int_equal(done_gone, 1);
    /* still serving */
    response r = fetch(ns_http_server_port(s), "GET", "/echo", NULL, 0);
    assert_int_equal(r.status, 200);
    ns_http_server_stop(s);
    assert_int_equal(done_calls, 1);
}

static void test_stop_with_blocked_streams(void **state) {
    (void)state;
    reset_done();
    ns_http_server *s = start(0, 0);
    int port = ns_http_server_port(s);
    int fds[3];
    for (int i = 0; i < 3; i++) fds[i] = open_stream(port, "/block");
    ns_http_server_quiesce(s);
    assert_int_equal(ns_http_server_wait_idle(s, 1000000), 3); /* 1 ms: the three still run */
    ns_http_server_stop(s); /* ends the connections: each stream's done runs once */
    assert_int_equal(done_calls, 3);
    for (int i = 0; i < 3; i++) close(fds[i]);
}

static void test_idle_timeout_spares_a_slow_handler(void **state) {
    (void)state;
    ns_http_server *s = start(0, 1);
    response r = fetch(ns_http_server_port(s), "GET", "/slow", NULL, 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "late");
    ns_http_server_stop(s);
}

static void test_port_in_use(void **state) {
    (void)state;
    ns_http_server *s = start(0, 0);
    ns_http_config cfg = {.host = "127.0.0.1", .port = ns_http_server_port(s)};
    char err[256];
    assert_null(ns_http_server_start(&cfg, handler, NULL, err, sizeof err));
    assert_non_null(strstr(err, "address in use"));
    ns_http_server_stop(s);
}

static void test_parse_host(void **state) {
    (void)state;
    static const struct {
        const char *spec, *host;
        int port;
    } good[] = {
        {NULL, "127.0.0.1", 11434},          {"", "127.0.0.1", 11434},
        {"0.0.0.0", "0.0.0.0", 11434},       {"example.com:1234", "example.com", 1234},
        {"http://h", "h", 80},               {"https://h", "h", 443},
        {"http://h:99/some/path", "h", 99},  {"[::1]:5000", "::1", 5000},
        {"::1", "::1", 11434},               {"[::]", "::", 11434},
        {":8080", "0.0.0.0", 8080},          {"  127.0.0.1:0 ", "127.0.0.1", 0},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        char host[256], err[256];
        int port = -1;
        assert_int_equal(ns_server_parse_host(good[i].spec, host, sizeof host, &port, err, sizeof err), 0);
        assert_string_equal(host, good[i].host);
        assert_int_equal(port, good[i].port);
    }
    static const char *const bad[] = {"h:99999", "h:-1", "h:abc", "ftp://h", "[::1", "[::1]x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char host[256], err[256] = "";
        int port;
        assert_int_equal(ns_server_parse_host(bad[i], host, sizeof host, &port, err, sizeof err), -1);
        assert_true(strlen(err) > 0);
    }
}

int main(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buf),
        cmocka_unit_test(test_request_and_responses),
        cmocka_unit_test(test_body_limit),
        cmocka_unit_test(test_stream_to_the_end),
        cmocka_unit_test(test_stream_client_goes_away),
        cmocka_unit_test(test_stop_with_blocked_streams),
        cmocka_unit_test(test_idle_timeout_spares_a_slow_handler),
        cmocka_unit_test(test_port_in_use),
        cmocka_unit_test(test_parse_host),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
