/* Health and mode polling (upstream.h). One thread, one libcurl handle
 * reused for every probe, a condition variable to sleep until the next one
 * is due and to wake at stop. */
#include "router/upstream.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "util/duration.h"
#include "util/log.h"

struct ns_upstreams {
    const ns_router_config *cfg;
    CURL *curl; /* the thread's (or the one-shot caller's) */
    pthread_t thread;
    bool has_thread, stop;
    pthread_mutex_t mu;
    pthread_cond_t wake;
    ns_upstream_health health[NS_ROUTER_MAX_UPSTREAMS];
    int64_t next_probe[NS_ROUTER_MAX_UPSTREAMS]; /* monotonic ns */
    ns_node_mode mode;
    char mode_error[256];
    int64_t next_mode; /* monotonic ns */
    int64_t health_ns, mode_poll_ns;
};

typedef struct {
    char buf[4096];
    size_t len;
} small_body;

static size_t keep_body(char *p, size_t size, size_t n, void *user) {
    small_body *b = user;
    size_t k = size * n, room = sizeof b->buf - 1 - b->len;
    memcpy(b->buf + b->len, p, k < room ? k : room);
    b->len += k < room ? k : room;
    b->buf[b->len] = '\0';
    return k;
}

/* GET url within timeout_ns; the status (0 when no answer) and the body
 * (its first 4 KB). 0 on an HTTP answer, -1 with err otherwise. */
static int get(CURL *c, const char *url, int64_t timeout_ns, int64_t connect_ns, long *status, small_body *body,
               char *err, size_t errlen) {
    body->len = 0;
    body->buf[0] = '\0';
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)(timeout_ns / 1000000 > 0 ? timeout_ns / 1000000 : 1));
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)(connect_ns / 1000000 > 0 ? connect_ns / 1000000 : 1));
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, keep_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, body);
    CURLcode rc = curl_easy_perform(c);
    *status = 0;
    if (rc != CURLE_OK) {
        snprintf(err, errlen, "%s", curl_easy_strerror(rc));
        return -1;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    return 0;
}

static void probe_upstream(ns_upstreams *u, int i) {
    const ns_upstream_config *up = &u->cfg->upstreams[i];
    char url[600], err[256] = "";
    snprintf(url, sizeof url, "%s%s", up->url, up->kind == NS_UPSTREAM_OPENAI ? "/v1/models" : "/api/version");
    long status;
    small_body body;
    int64_t t0 = ns_now_mono();
    int64_t limit = up->connect_timeout_ns * 2 > 2000000000LL ? up->connect_timeout_ns * 2 : 2000000000LL;
    int rc = get(u->curl, url, limit, up->connect_timeout_ns, &status, &body, err, sizeof err);
    if (rc == 0 && status != 200) snprintf(err, sizeof err, "GET %.200s answered %ld", url, status);
    bool ok = rc == 0 && status == 200;
    pthread_mutex_lock(&u->mu);
    ns_upstream_health *h = &u->health[i];
    bool was = h->healthy;
    h->healthy = ok;
    h->failures = ok ? 0 : h->failures + 1;
    h->checked_at = ns_now_wall();
    h->probe_ms = (double)(ns_now_mono() - t0) / 1e6;
    snprintf(h->error, sizeof h->error, "%s", ok ? "" : err);
    /* a failing node is probed less and less often: interval * 2^failures, capped */
    int64_t wait = u->health_ns;
    for (int k = 0; k < h->failures && wait < u->cfg->health_backoff_max_ns; k++) wait *= 2;
    if (wait > u->cfg->health_backoff_max_ns) wait = u->cfg->health_backoff_max_ns;
    u->next_probe[i] = ns_now_mono() + wait;
    int failures = h->failures;
    pthread_mutex_unlock(&u->mu);
    if (ok != was) {
        if (ok) ns_log_info("router", "upstream healthy", "upstream=%s", up->name);
        else
            ns_log_warn("router", "upstream unhealthy", "upstream=%s failures=%d error=\"%s\"", up->name, failures, err);
    }
}

static void poll_mode(ns_upstreams *u) {
    long status;
    small_body body;
    char err[256] = "";
    ns_node_mode mode = NS_NODE_UNREACHABLE;
    if (get(u->curl, u->cfg->mode_url, u->cfg->mode_timeout_ns, u->cfg->mode_timeout_ns, &status, &body, err,
            sizeof err) == 0) {
        cJSON *o = cJSON_Parse(body.buf);
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, "mode");
        if (status == 200 && cJSON_IsString(m) && strcmp(m->valuestring, "NORMAL") == 0) mode = NS_NODE_NORMAL;
        else if (status == 200 && cJSON_IsString(m) && strcmp(m->valuestring, "GAMING") == 0) mode = NS_NODE_GAMING;
        else snprintf(err, sizeof err, "GET %.180s answered %ld without a mode of NORMAL or GAMING", u->cfg->mode_url, status);
        cJSON_Delete(o);
    }
    pthread_mutex_lock(&u->mu);
    ns_node_mode was = u->mode;
    u->mode = mode;
    snprintf(u->mode_error, sizeof u->mode_error, "%s", mode == NS_NODE_UNREACHABLE ? err : "");
    u->next_mode = ns_now_mono() + u->mode_poll_ns;
    pthread_mutex_unlock(&u->mu);
    if (mode != was)
        ns_log_info("router", "big node mode", "mode=%s error=\"%s\"", ns_node_mode_name(mode),
                    mode == NS_NODE_UNREACHABLE ? err : "");
}

static void *run(void *arg) {
    ns_upstreams *u = arg;
    pthread_mutex_lock(&u->mu);
    while (!u->stop) {
        int64_t now = ns_now_mono(), next = u->next_mode;
        for (int i = 0; i < u->cfg->n_upstreams; i++)
            if (u->next_probe[i] < next) next = u->next_probe[i];
        if (next > now) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            int64_t at = (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec + (next - now);
            ts.tv_sec = (time_t)(at / 1000000000LL);
            ts.tv_nsec = (long)(at % 1000000000LL);
            pthread_cond_timedwait(&u->wake, &u->mu, &ts);
            continue;
        }
        pthread_mutex_unlock(&u->mu);
        /* probes run unlocked: readers never wait on the network */
        if (u->next_mode <= now) poll_mode(u);
        for (int i = 0; i < u->cfg->n_upstreams; i++)
            if (u->next_probe[i] <= now) probe_upstream(u, i);
        pthread_mutex_lock(&u->mu);
    }
    pthread_mutex_unlock(&u->mu);
    return NULL;
}

ns_upstreams *ns_upstreams_start(const ns_router_config *c, bool one_shot, char *err, size_t errlen) {
    ns_upstreams *u = calloc(1, sizeof *u);
    if (!u || !(u->curl = curl_easy_init())) {
        free(u);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    u->cfg = c;
    u->mode = NS_NODE_UNREACHABLE;
    /* a zero period would spin the thread: 10 ms is the floor */
    u->health_ns = c->health_interval_ns > 10000000 ? c->health_interval_ns : 10000000;
    u->mode_poll_ns = c->mode_poll_ns > 10000000 ? c->mode_poll_ns : 10000000;
    pthread_mutex_init(&u->mu, NULL);
    pthread_cond_init(&u->wake, NULL);
    poll_mode(u);
    for (int i = 0; i < c->n_upstreams; i++) probe_upstream(u, i);
    if (!one_shot) {
        if (pthread_create(&u->thread, NULL, run, u) != 0) {
            snprintf(err, errlen, "cannot start the health check thread");
            ns_upstreams_stop(u);
            return NULL;
        }
        u->has_thread = true;
    }
    return u;
}

void ns_upstreams_stop(ns_upstreams *u) {
    if (!u) return;
    if (u->has_thread) {
        pthread_mutex_lock(&u->mu);
        u->stop = true;
        pthread_cond_signal(&u->wake);
        pthread_mutex_unlock(&u->mu);
        pthread_join(u->thread, NULL);
    }
    curl_easy_cleanup(u->curl);
    pthread_cond_destroy(&u->wake);
    pthread_mutex_destroy(&u->mu);
    free(u);
}

bool ns_upstream_healthy(ns_upstreams *u, int i) {
    pthread_mutex_lock(&u->mu);
    bool ok = u->health[i].healthy;
    pthread_mutex_unlock(&u->mu);
    return ok;
}

void ns_upstream_health_of(ns_upstreams *u, int i, ns_upstream_health *out) {
    pthread_mutex_lock(&u->mu);
    *out = u->health[i];
    pthread_mutex_unlock(&u->mu);
}

void ns_upstream_mark_down(ns_upstreams *u, int i, const char *why) {
    pthread_mutex_lock(&u->mu);
    bool was = u->health[i].healthy;
    u->health[i].healthy = false;
    u->health[i].failures++;
    snprintf(u->health[i].error, sizeof u->health[i].error, "%s", why);
    /* probe again soon: it may only have restarted */
    u->next_probe[i] = ns_now_mono() + u->health_ns;
    pthread_cond_signal(&u->wake);
    pthread_mutex_unlock(&u->mu);
    if (was) ns_log_warn("router", "upstream unhealthy", "upstream=%s error=\"%s\"", u->cfg->upstreams[i].name, why);
}

ns_node_mode ns_upstreams_mode(ns_upstreams *u, char *why, size_t whylen) {
    pthread_mutex_lock(&u->mu);
    ns_node_mode m = u->mode;
    if (why && whylen) snprintf(why, whylen, "%s", u->mode_error);
    pthread_mutex_unlock(&u->mu);
    return m;
}
