/* Downloading a GGUF file into the store with libcurl's easy interface.
 *
 * The body goes to blobs/partial-<random>; its first bytes must be the GGUF
 * magic (so a wrong URL stops after one packet, not after gigabytes of
 * HTML), the finished file must parse as GGUF, and only then is it imported
 * (a rename within blobs/). Every failure removes the partial file. */
#include "runtime/pull.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "nstack/gguf.h"
#include "util/log.h"

#ifndef NSTACK_VERSION
#define NSTACK_VERSION "dev"
#endif

#define PROGRESS_INTERVAL_NS 100000000LL /* at most 10 progress calls a second */
#define CONNECT_TIMEOUT_S 30L
#define LOW_SPEED_BYTES 1024L /* abort below 1 KiB/s ... */
#define LOW_SPEED_TIME_S 60L  /* ... sustained for a minute */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_OK;

static void curl_init_once(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

typedef struct {
    const char *url;
    FILE *out;
    int write_errno;      /* the file write that failed, or 0 */
    unsigned char magic[4];
    size_t magic_got;
    bool not_gguf;
    bool cancelled;
    int64_t received;
    ns_pull_progress_fn fn;
    void *user;
    atomic_bool *cancel;
    int64_t last_report_ns;
} pull_ctx;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static bool cancel_requested(pull_ctx *c)
{
    if (c->cancel && atomic_load(c->cancel))
        c->cancelled = true;
    return c->cancelled;
}

static int report(pull_ctx *c, const char *status, const char *digest, int64_t total, int64_t completed)
{
    if (c->fn && c->fn(c->user, status, digest, total, completed) != 0)
        c->cancelled = true;
    return cancel_requested(c) ? -1 : 0;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *user)
{
    pull_ctx *c = user;
    size_t len = size * nmemb;
    if (cancel_requested(c))
        return 0;
    for (size_t i = 0; c->magic_got < sizeof c->magic && i < len; i++)
        c->magic[c->magic_got++] = (unsigned char)data[i];
    if (memcmp(c->magic, "GGUF", c->magic_got) != 0) {
        c->not_gguf = true;
        return 0;
    }
    if (len && fwrite(data, 1, len, c->out) != len) {
        c->write_errno = errno ? errno : EIO;
        return 0;
    }
    c->received += (int64_t)len;
    return len;
}

static int on_progress(void *user, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
    (void)ultotal;
    (void)ulnow;
    pull_ctx *c = user;
    if (cancel_requested(c))
        return 1;
    int64_t now = now_ns();
    if (dlnow == 0 || now - c->last_report_ns < PROGRESS_INTERVAL_NS)
        return 0;
    c->last_report_ns = now;
    return report(c, "downloading", "", (int64_t)dltotal, (int64_t)dlnow) != 0;
}

static CURL *make_handle(const char *url, pull_ctx *c, char *errbuf)
{
    CURL *h = curl_easy_init();
    if (!h)
        return NULL;
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L); /* we run on server threads */
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https,file");
    curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https"); /* a server may not send us to file:// */
#else
    curl_easy_setopt(h, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS | CURLPROTO_FILE));
    curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(h, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(h, CURLOPT_FAILONERROR, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, CONNECT_TIMEOUT_S);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, LOW_SPEED_BYTES);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, LOW_SPEED_TIME_S);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "nstack/" NSTACK_VERSION);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, c);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    return h;
}

/* Downloads url into path. Returns 0, or -1 with err. */
static int download(pull_ctx *c, const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0 || !(c->out = fdopen(fd, "wb"))) {
        snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    char errbuf[CURL_ERROR_SIZE] = "";
    CURL *h = make_handle(c->url, c, errbuf);
    if (!h) {
        fclose(c->out);
        snprintf(err, errlen, "cannot start a download: out of memory");
        return -1;
    }
    CURLcode rc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_off_t total = 0;
    curl_easy_getinfo(h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &total);
    curl_easy_cleanup(h);
    if (fclose(c->out) != 0 && rc == CURLE_OK)
        c->write_errno = errno ? errno : EIO;
    c->out = NULL;

    /* libcurl quotes names with '"'; single quotes keep log lines and JSON errors plain. */
    for (char *q = errbuf; *q; q++)
        if (*q == '"')
            *q = '\'';
    if (cancel_requested(c))
        snprintf(err, errlen, "cancelled");
    else if (c->not_gguf)
        snprintf(err, errlen, "not a GGUF file: %s", c->url);
    else if (c->write_errno)
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(c->write_errno));
    else if (rc == CURLE_HTTP_RETURNED_ERROR)
        snprintf(err, errlen, "HTTP %ld from %s", status, c->url);
    else if (rc != CURLE_OK)
        snprintf(err, errlen, "download of %s failed: %s", c->url, errbuf[0] ? errbuf : curl_easy_strerror(rc));
    else if (c->magic_got < sizeof c->magic)
        snprintf(err, errlen, "not a GGUF file: %s", c->url);
    else if (report(c, "downloading", "", total > 0 ? (int64_t)total : c->received, c->received) != 0)
        snprintf(err, errlen, "cancelled"); /* the last progress line shows it all arrived */
    else
        return 0;
    return -1;
}

int ns_pull(ns_store *s, const char *name, const char *url, ns_pull_progress_fn fn, void *user,
            atomic_bool *cancel, char *err, size_t errlen)
{
    if (!url || !*url) {
        snprintf(err, errlen, "no URL given");
        return -1;
    }
    char derived[256];
    if (!name || !*name) {
        ns_pull_name_from_url(url, derived, sizeof derived);
        name = derived;
    }
    ns_model_name parsed;
    if (ns_model_name_parse(name, &parsed, err, errlen) != 0)
        return -1;
    pthread_once(&curl_once, curl_init_once);
    if (curl_init_rc != CURLE_OK) {
        snprintf(err, errlen, "cannot start libcurl: %s", curl_easy_strerror(curl_init_rc));
        return -1;
    }
    char path[4400];
    if (ns_store_temp_path(s, path, sizeof path) != 0) {
        snprintf(err, errlen, "cannot choose a download file in %s/blobs", ns_store_dir(s));
        return -1;
    }

    /* last_report_ns 0: the first bytes are reported at once, then at most 10 a second. */
    pull_ctx c = {.url = url, .fn = fn, .user = user, .cancel = cancel, .last_report_ns = 0};
    int rc = -1;
    if (report(&c, "pulling manifest", "", 0, 0) != 0) {
        snprintf(err, errlen, "cancelled");
        return -1;
    }
    ns_log_info("store", "pull started", "url=\"%s\" model=%s", url, name);
    if (download(&c, path, err, errlen) != 0)
        goto out;
    if (report(&c, "verifying sha256 digest", "", c.received, c.received) != 0) {
        snprintf(err, errlen, "cancelled");
        goto out;
    }
    char why[512];
    ns_gguf *g = ns_gguf_open(path, why, sizeof why);
    if (!g) {
        /* The reader names the file: our temporary name means nothing to the user. */
        size_t plen = strlen(path);
        const char *reason = strncmp(why, path, plen) == 0 && strncmp(why + plen, ": ", 2) == 0 ? why + plen + 2 : why;
        snprintf(err, errlen, "not a valid GGUF file from %s: %s", url, reason);
        goto out;
    }
    ns_gguf_close(g);
    if (ns_store_import(s, name, path, false, NULL, NULL, NULL, err, errlen) != 0)
        goto out;
    ns_model_ref ref;
    char digest[80] = "";
    if (ns_store_resolve(s, name, &ref, why, sizeof why) == 0) {
        snprintf(digest, sizeof digest, "%s", ref.digest);
        ns_model_ref_clear(&ref);
    }
    /* Stored now: a late cancel changes nothing, so the answers are ignored. */
    report(&c, "writing manifest", digest, c.received, c.received);
    report(&c, "success", digest, c.received, c.received);
    rc = 0;
out:
    unlink(path); /* gone already when the import moved it */
    if (rc != 0) /* the caller reports the error; this line is for tracing */
        ns_log_debug("store", "pull failed", "url=\"%s\" error=\"%s\"", url, err);
    return rc;
}

void ns_pull_name_from_url(const char *url, char *buf, size_t buflen)
{
    if (buflen == 0)
        return;
    /* The last path segment, without query or fragment. */
    size_t end = strcspn(url, "?#");
    size_t start = end;
    while (start > 0 && url[start - 1] != '/')
        start--;
    size_t len = end - start;
    if (len >= 5 && strncasecmp(url + start + len - 5, ".gguf", 5) == 0)
        len -= 5;

    char model[81];
    size_t n = 0;
    for (size_t i = 0; i < len && n < sizeof model - 1; i++) {
        unsigned char ch = (unsigned char)url[start + i];
        char out = isalnum(ch) || ch == '_' || ch == '.' || ch == '-' ? (char)tolower(ch) : '-';
        /* A name starts with a letter, digit or '_'. */
        if (n == 0 && (out == '-' || out == '.'))
            continue;
        model[n++] = out;
    }
    model[n] = '\0';
    snprintf(buf, buflen, "%s:latest", n ? model : "model");
}
