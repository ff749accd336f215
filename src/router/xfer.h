/* One HTTP request to an upstream, driven step by step from the calling
 * thread (libcurl's multi interface), so the router's connection thread can
 * wait for the upstream's first byte with its own deadline, notice a client
 * that left, and pass a stream on as it arrives, without a second thread.
 *
 * Each thread keeps its curl handles between requests (a thread-specific
 * key frees them when the thread ends), so a client's keep-alive
 * connection to the router reuses the router's connection to the upstream:
 * no TCP handshake per request. */
#ifndef NS_ROUTER_XFER_H
#define NS_ROUTER_XFER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    /* bytes received and not yet taken by the caller */
    char *data;
    size_t len, cap;
    long status;            /* the final response's status; 0 until its headers are in */
    char content_type[128]; /* "" when the upstream sent none */
    bool headers_done;      /* the final response's headers are all in */
    bool finished;          /* the transfer is over: see error */
    char error[256];        /* "" when it ended well; else why (connection refused, timeout, ...) */
    size_t received;        /* body bytes so far */
    /* the curl handles, the thread's */
    void *multi, *easy;
    struct curl_slist *headers;
} ns_xfer;

/* Starts a POST of body (or a GET when body is NULL) to url with extra
 * request headers ("Name: value"). Timeouts: connect, and the whole
 * transfer (0: none). -1 with x->error when it cannot even start. */
int ns_xfer_start(ns_xfer *x, const char *url, const char *body, size_t len, const char *const *headers, int n_headers,
                  int64_t connect_ns, int64_t total_ns);

/* Runs the transfer for up to wait_ms or until something new arrives
 * (headers, bytes, the end), whichever is first. */
void ns_xfer_pump(ns_xfer *x, int wait_ms);

/* Drops the bytes the caller has taken (the first n of data). */
void ns_xfer_consume(ns_xfer *x, size_t n);

/* Ends the transfer (aborting it if still running) and frees its buffers;
 * the thread keeps the handles for the next one. */
void ns_xfer_end(ns_xfer *x);

#endif
