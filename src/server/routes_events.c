/* GET /api/events: the event bus as Server-Sent Events.
 *
 * A client first gets a replay of recent events (those after its
 * Last-Event-ID header or `?after=ID`, else the last `?replay=N`, default
 * 50), then every new event as it is published. Each event is
 *
 *     id: 42
 *     event: load_completed
 *     data: {"id":42,"kind":"load_completed","time":"...","model":"...","request_id":"","detail":{...}}
 *
 * The bus calls subscribers on the publishing thread, so a client's
 * subscriber only copies the event into the client's own bounded queue; the
 * connection's thread sends from there. A client too slow to keep up loses
 * the oldest queued events and is told how many with an `event: dropped`.
 * A comment line every 15 s keeps proxies from closing an idle stream. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "routes.h"
#include "util/duration.h"

#define QUEUE_CAP 1024
#define REPLAY_DEFAULT 50
#define KEEPALIVE_NS (15 * 1000000000LL)
#define WAIT_NS (250 * 1000000LL) /* how often a waiting stream checks for a client that left */

typedef struct {
    ns_server *srv;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    ns_event *queue; /* ring of QUEUE_CAP */
    int head, len;
    uint64_t dropped;      /* not yet reported */
    uint64_t last_sent_id; /* live events at or below it were in the replay */
    int sub_id;
    int64_t last_write_ns;
    ns_buf replay; /* sent first */
} sse_client;

static void on_event(const ns_event *e, void *user) {
    sse_client *c = user;
    pthread_mutex_lock(&c->mu);
    if (c->len == QUEUE_CAP) {
        c->head = (c->head + 1) % QUEUE_CAP;
        c->len--;
        c->dropped++;
    }
    c->queue[(c->head + c->len) % QUEUE_CAP] = *e;
    c->len++;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

static void write_event(ns_buf *out, const ns_event *e) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "id", (double)e->id);
    cJSON_AddStringToObject(o, "kind", ns_event_kind_name(e->kind));
    ns_route_add_time(o, "time", e->time_ns);
    cJSON_AddStringToObject(o, "model", e->model);
    cJSON_AddStringToObject(o, "request_id", e->request_id);
    cJSON *detail = cJSON_Parse(e->detail);
    if (detail) cJSON_AddItemToObject(o, "detail", detail);
    else cJSON_AddItemToObject(o, "detail", cJSON_CreateObject());
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    /* cJSON escapes newlines inside strings, so the data is one line */
    ns_buf_printf(out, "id: %llu\nevent: %s\ndata: %s\n\n", (unsigned long long)e->id, ns_event_kind_name(e->kind),
                  text ? text : "{}");
    free(text);
}

static void deadline_in(struct timespec *ts, int64_t ns) {
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += (time_t)(ns / 1000000000LL);
    ts->tv_nsec += (long)(ns % 1000000000LL);
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

static int sse_stream(void *user, ns_buf *out) {
    sse_client *c = user;
    if (atomic_load(&c->srv->stopping)) return NS_STREAM_END;
    if (c->replay.len) {
        ns_buf_append(out, c->replay.data, c->replay.len);
        ns_buf_free(&c->replay);
        return NS_STREAM_MORE;
    }
    pthread_mutex_lock(&c->mu);
    if (c->len == 0 && !c->dropped) {
        struct timespec ts;
        deadline_in(&ts, WAIT_NS);
        pthread_cond_timedwait(&c->cv, &c->mu, &ts);
    }
    uint64_t dropped = c->dropped;
    c->dropped = 0;
    ns_event batch[64];
    int n = 0;
    while (c->len > 0 && n < 64) {
        batch[n++] = c->queue[c->head];
        c->head = (c->head + 1) % QUEUE_CAP;
        c->len--;
    }
    pthread_mutex_unlock(&c->mu);
    if (dropped) ns_buf_printf(out, "event: dropped\ndata: {\"count\":%llu}\n\n", (unsigned long long)dropped);
    for (int i = 0; i < n; i++) {
        if (batch[i].id <= c->last_sent_id) continue; /* already in the replay */
        write_event(out, &batch[i]);
        c->last_sent_id = batch[i].id;
    }
    int64_t now = ns_now_mono();
    if (out->len) c->last_write_ns = now;
    else if (now - c->last_write_ns >= KEEPALIVE_NS) {
        ns_buf_printf(out, ": keep-alive\n\n");
        c->last_write_ns = now;
    }
    return NS_STREAM_MORE;
}

static void sse_done(void *user, bool client_gone) {
    (void)client_gone;
    sse_client *c = user;
    ns_events_unsubscribe(c->srv->events, c->sub_id);
    ns_buf_free(&c->replay);
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    free(c->queue);
    free(c);
}

/* A non-negative integer query or header value; def when absent, -1 when malformed. */
static long long parse_count(const char *v, long long def) {
    if (!v) return def;
    char *end;
    long long x = strtoll(v, &end, 10);
    return (*v && !*end && x >= 0) ? x : -1;
}

void ns_route_api_events(ns_server *s, ns_http_req *r) {
    long long replay = parse_count(ns_http_query(r, "replay"), REPLAY_DEFAULT);
    const char *after_s = ns_http_query(r, "after");
    if (!after_s) after_s = ns_http_header(r, "Last-Event-ID");
    long long after = parse_count(after_s, -1);
    if (replay < 0 || (after_s && after < 0)) {
        ns_http_respond_error(r, 400, "replay and after (or Last-Event-ID) must be non-negative integers");
        return;
    }
    if (replay > NS_EVENTS_RING) replay = NS_EVENTS_RING;
    sse_client *c = calloc(1, sizeof *c);
    if (c) c->queue = malloc(sizeof(ns_event) * QUEUE_CAP);
    if (!c || !c->queue) {
        if (c) free(c);
        ns_http_respond_error(r, 500, "out of memory");
        return;
    }
    c->srv = s;
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    /* subscribe before reading the replay, so nothing falls between them */
    c->sub_id = ns_events_subscribe(s->events, on_event, c);
    if (c->sub_id < 0) {
        pthread_cond_destroy(&c->cv);
        pthread_mutex_destroy(&c->mu);
        free(c->queue);
        free(c);
        ns_http_respond_error(r, 500, "cannot subscribe to events");
        return;
    }
    ns_event *past = malloc(sizeof(ns_event) * NS_EVENTS_RING);
    int n = past ? ns_events_recent(s->events, after >= 0 ? (uint64_t)after : 0, past, NS_EVENTS_RING) : 0;
    int from = after >= 0 ? 0 : (n > replay ? n - (int)replay : 0);
    ns_buf_printf(&c->replay, ": neurostack events\nretry: 2000\n\n");
    for (int i = from; i < n; i++) write_event(&c->replay, &past[i]);
    c->last_sent_id = after > 0 ? (uint64_t)after : 0;
    if (n > 0 && past[n - 1].id > c->last_sent_id) c->last_sent_id = past[n - 1].id;
    free(past);
    c->last_write_ns = ns_now_mono();
    ns_http_respond_stream(r, 200, "text/event-stream", sse_stream, sse_done, c);
}
