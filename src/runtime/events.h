/* In-process lifecycle events: model load/unload, generations. Later parts
 * (the monitor's SQLite store, /api/events over SSE, the dashboard) read
 * them from here, so publishers never know who listens.
 *
 * A bus keeps the last NS_EVENTS_RING events for replay and calls every
 * subscriber synchronously on the publishing thread: a subscriber must be
 * quick and must not publish (copy the event and hand it to its own queue). */
#ifndef NS_RUNTIME_EVENTS_H
#define NS_RUNTIME_EVENTS_H

#include <stddef.h>
#include <stdint.h>

#define NS_EVENTS_RING 256

typedef enum {
    NS_EV_LOAD_STARTED,
    NS_EV_LOAD_COMPLETED,
    NS_EV_LOAD_FAILED,
    NS_EV_UNLOADED,
    NS_EV_GEN_STARTED,
    NS_EV_GEN_COMPLETED,
    NS_EV_GEN_FAILED,
    NS_EV_CONTEXT_SHIFTED,   /* runner: a full context kept n_keep + recent tokens and went on */
    NS_EV_SESSION_CREATED,
    NS_EV_SESSION_TRUNCATED, /* detail: tokens_before, tokens_after, reason "request" | "auto" */
    NS_EV_SESSION_CLEARED,
    NS_EV_SESSION_DELETED,
    NS_EV_SNAPSHOT_SAVED,    /* detail: name, session, bytes, ms */
    NS_EV_SNAPSHOT_RESTORED, /* detail: name, session, bytes, ms */
    NS_EV_SNAPSHOT_DELETED,
    NS_EV_ALERT_FIRED,       /* monitor: detail: metric, gpu, value, threshold */
    NS_EV_ALERT_CLEARED,     /* monitor: detail as fired */
    NS_EV_MODE_CHANGED,      /* server mode (server/mode.h): detail: mode, previous, by */
    NS_EV_PROFILE_APPLIED,   /* a profile (runtime/profile.h) applied: detail: name, previous, by, changed */
    NS_EV_KIND_COUNT
} ns_event_kind;

typedef struct {
    uint64_t id;         /* 1, 2, 3 ... in publishing order */
    ns_event_kind kind;
    int64_t time_ns;     /* wall clock, Unix ns */
    char model[256];     /* model name, "" when none */
    char request_id[48]; /* "" when none */
    char detail[512];    /* JSON object text with kind-specific fields, "{}" when none */
} ns_event;

typedef struct ns_events ns_events;
typedef void (*ns_event_fn)(const ns_event *e, void *user);

ns_events *ns_events_new(void);
void ns_events_free(ns_events *b);

/* "load_started", "generation_completed", ... */
const char *ns_event_kind_name(ns_event_kind k);

/* Publishes (thread-safe). detail_json may be NULL. */
void ns_events_publish(ns_events *b, ns_event_kind kind, const char *model, const char *request_id,
                       const char *detail_json);

/* Returns a subscription id > 0, or -1. */
int ns_events_subscribe(ns_events *b, ns_event_fn fn, void *user);
void ns_events_unsubscribe(ns_events *b, int id);

/* Copies up to max of the most recent events with id > after_id, oldest
 * first; returns the count. */
int ns_events_recent(ns_events *b, uint64_t after_id, ns_event *out, int max);

#endif
