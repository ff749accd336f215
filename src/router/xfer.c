#include "router/xfer.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct {
    CURLM *multi;
    CURL *easy;
} thread_handles;

static pthread_key_t handles_key;
static pthread_once_t handles_once = PTHREAD_ONCE_INIT;

static void free_handles(void *p) {
    thread_handles *h = p;
    if (h->multi && h->easy) curl_multi_remove_handle(h->multi, h->easy);
    if (h->easy) curl_easy_cleanup(h->easy);
    if (h->multi) curl_multi_cleanup(h->multi);
    free(h);
}

static void make_key(void) { pthread_key_create(&handles_key, free_handles); }

static thread_handles *my_handles(void) {
    pthread_once(&handles_once, make_key);
    thread_handles *h = pthread_getspecific(handles_key);
    if (h) return h;
    h = calloc(1, sizeof *h);
    if (!h) return NULL;
    h->multi = curl_multi_init();
    h->easy = curl_easy_init();
    if (!h->multi || !h->easy || pthread_setspecific(handles_key, h) != 0) {
        free_handles(h);
        return NULL;
    }
    return h;
}

static size_t on_body(char *p, size_t size, size_t n, void *user) {
    ns_xfer *x = user;
    size_t k = size * n;
    if (x->len + k > x->cap) {
        size_t cap = x->cap ? x->cap : 16384;
        while (cap < x->len + k) cap *= 2;
        char *g = realloc(x->data, cap);
        if (!g) return 0; /* makes curl fail the transfer: out of memory */
        x->data = g;
        x->cap = cap;
    }
    memcpy(x->data + x->len, p, k);
    x->len += k;
    x->received += k;
    return k;
}

/* Tracks the status line and Content-Type; headers of interim (1xx)
 * responses start over. The blank line ends a block of headers. */
static size_t on_header(char *p, size_t size, size_t n, void *user) {
    ns_xfer *x = user;
    size_t k = size * n;
    if (k >= 5 && strncmp(p, "HTTP/", 5) == 0) {
        const char *sp = memchr(p, ' ', k);
        x->status = sp ? strtol(sp + 1, NULL, 10) : 0;
        x->content_type[0] = '\0';
    } else if (k > 13 && strncasecmp(p, "Content-Type:", 13) == 0) {
        size_t a = 13, b = k;
        while (a < b && (p[a] == ' ' || p[a] == '\t')) a++;
        while (b > a && (p[b - 1] == '\r' || p[b - 1] == '\n' || p[b - 1] == ' ')) b--;
        snprintf(x->content_type, sizeof x->content_type, "%.*s", (int)(b - a), p + a);
    } else if ((k == 2 && p[0] == '\r') || (k == 1 && p[0] == '\n')) {
        if (x->status >= 200) x->headers_done = true;
    }
    return k;
}

int ns_xfer_start(ns_xfer *x, const char *url, const char *body, size_t len, const char *const *headers, int n_headers,
                  int64_t connect_ns, int64_t total_ns) {
    memset(x, 0, sizeof *x);
    thread_handles *h = my_handles();
    if (!h) {
        snprintf(x->error, sizeof x->error, "out of memory");
        x->finished = true;
        return -1;
    }
    CURL *e = h->easy;
    curl_easy_reset(e);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)(connect_ns > 1000000 ? connect_ns / 1000000 : 1));
    if (total_ns > 0) curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(total_ns / 1000000 > 0 ? total_ns / 1000000 : 1));
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    struct curl_slist *hl = curl_slist_append(NULL, "Expect:"); /* no 100-continue round trip */
    for (int i = 0; hl && i < n_headers; i++) {
        struct curl_slist *g = curl_slist_append(hl, headers[i]);
        if (!g) {
            curl_slist_free_all(hl);
            hl = NULL;
        }
        hl = g;
    }
    if (!hl) {
        snprintf(x->error, sizeof x->error, "out of memory");
        x->finished = true;
        return -1;
    }
    x->headers = hl;
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, hl);
    if (body) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, body); /* not copied: body outlives the transfer */
    }
    if (curl_multi_add_handle(h->multi, e) != CURLM_OK) {
        snprintf(x->error, sizeof x->error, "cannot start the request");
        x->finished = true;
        return -1;
    }
    x->multi = h->multi;
    x->easy = e;
    return 0;
}

void ns_xfer_pump(ns_xfer *x, int wait_ms) {
    if (x->finished) return;
    size_t len0 = x->len;
    bool hdr0 = x->headers_done;
    int running = 0;
    curl_multi_perform(x->multi, &running);
    if (running && x->len == len0 && x->headers_done == hdr0) {
        curl_multi_poll(x->multi, NULL, 0, wait_ms, NULL);
        curl_multi_perform(x->multi, &running);
    }
    int left;
    CURLMsg *m;
    while ((m = curl_multi_info_read(x->multi, &left)) != NULL) {
        if (m->msg != CURLMSG_DONE || m->easy_handle != x->easy) continue;
        x->finished = true;
        if (m->data.result != CURLE_OK) snprintf(x->error, sizeof x->error, "%s", curl_easy_strerror(m->data.result));
        else if (!x->headers_done) x->headers_done = x->status >= 200;
    }
}

void ns_xfer_consume(ns_xfer *x, size_t n) {
    if (n >= x->len) {
        x->len = 0;
        return;
    }
    memmove(x->data, x->data + n, x->len - n);
    x->len -= n;
}

void ns_xfer_end(ns_xfer *x) {
    if (x->multi && x->easy) curl_multi_remove_handle(x->multi, x->easy);
    curl_slist_free_all(x->headers);
    free(x->data);
    x->data = NULL;
    x->headers = NULL;
    x->multi = x->easy = NULL;
}
