#include "events.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/duration.h"

typedef struct {
    int id;
    ns_event_fn fn;
    void *user;
} subscriber;

struct ns_events {
    pthread_mutex_t mu;
    uint64_t next_id;
    ns_event ring[NS_EVENTS_RING];
    int ring_len;   /* valid entries */
    int ring_head;  /* index of the oldest */
    subscriber *subs;
    int n_subs, cap_subs, next_sub;
};

static const char *const kind_names[NS_EV_KIND_COUNT] = {
    "load_started", "load_completed", "load_failed", "unloaded",
    "generation_started", "generation_completed", "generation_failed", "context_shifted",
    "session_created", "session_truncated", "session_cleared", "session_deleted",
    "snapshot_saved", "snapshot_restored", "snapshot_deleted", "alert_fired", "alert_cleared",
    "mode_changed", "profile_applied",
};

const char *ns_event_kind_name(ns_event_kind k) {
    return (k >= 0 && k < NS_EV_KIND_COUNT) ? kind_names[k] : "unknown";
}

ns_events *ns_events_new(void) {
    ns_events *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    pthread_mutex_init(&b->mu, NULL);
    b->next_id = 1;
    b->next_sub = 1;
    return b;
}

void ns_events_free(ns_events *b) {
    if (!b) return;
    pthread_mutex_destroy(&b->mu);
    free(b->subs);
    free(b);
}

static void copy_str(char *dst, size_t cap, const char *src) {
    if (!src) src = "";
    size_t n = strlen(src);
    if (n >= cap) n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = 0;
}

void ns_events_publish(ns_events *b, ns_event_kind kind, const char *model, const char *request_id,
                       const char *detail_json) {
    if (!b) return;
    ns_event e;
    memset(&e, 0, sizeof e);
    e.kind = kind;
    e.time_ns = ns_now_wall();
    copy_str(e.model, sizeof e.model, model);
    copy_str(e.request_id, sizeof e.request_id, request_id);
    /* a detail that does not fit would be broken JSON: drop it instead */
    if (detail_json && strlen(detail_json) < sizeof e.detail)
        copy_str(e.detail, sizeof e.detail, detail_json);
    else
        copy_str(e.detail, sizeof e.detail, "{}");
    /* Subscribers run under the lock so that an unsubscribe that returned
     * never sees a later call; they are required to be quick. */
    pthread_mutex_lock(&b->mu);
    e.id = b->next_id++;
    int slot = (b->ring_head + b->ring_len) % NS_EVENTS_RING;
    if (b->ring_len == NS_EVENTS_RING) {
        slot = b->ring_head;
        b->ring_head = (b->ring_head + 1) % NS_EVENTS_RING;
    } else {
        b->ring_len++;
    }
    b->ring[slot] = e;
    for (int i = 0; i < b->n_subs; i++) b->subs[i].fn(&e, b->subs[i].user);
    pthread_mutex_unlock(&b->mu);
}

int ns_events_subscribe(ns_events *b, ns_event_fn fn, void *user) {
    if (!b || !fn) return -1;
    pthread_mutex_lock(&b->mu);
    int id = -1;
    if (b->n_subs == b->cap_subs) {
        int cap = b->cap_subs ? b->cap_subs * 2 : 8;
        subscriber *n = realloc(b->subs, sizeof *n * (size_t)cap);
        if (!n) goto out;
        b->subs = n;
        b->cap_subs = cap;
    }
    id = b->next_sub++;
    b->subs[b->n_subs++] = (subscriber){id, fn, user};
out:
    pthread_mutex_unlock(&b->mu);
    return id;
}

void ns_events_unsubscribe(ns_events *b, int id) {
    if (!b) return;
    pthread_mutex_lock(&b->mu);
    for (int i = 0; i < b->n_subs; i++) {
        if (b->subs[i].id == id) {
            memmove(&b->subs[i], &b->subs[i + 1], sizeof *b->subs * (size_t)(b->n_subs - i - 1));
            b->n_subs--;
            break;
        }
    }
    pthread_mutex_unlock(&b->mu);
}

int ns_events_recent(ns_events *b, uint64_t after_id, ns_event *out, int max) {
    if (!b || max <= 0) return 0;
    pthread_mutex_lock(&b->mu);
    int start = 0;
    while (start < b->ring_len && b->ring[(b->ring_head + start) % NS_EVENTS_RING].id <= after_id) start++;
    int n = b->ring_len - start;
    if (n > max) {
        start += n - max;
        n = max;
    }
    for (int i = 0; i < n; i++) out[i] = b->ring[(b->ring_head + start + i) % NS_EVENTS_RING];
    pthread_mutex_unlock(&b->mu);
    return n;
}
