/* The checksum thread (checksum_behind.h). It takes the bytes a chunk at a
 * time, small enough that the chunk the caller just copied is still in the
 * shared cache when the checksum reads it. */
#include "util/checksum_behind.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK ((uint64_t)1 << 20)

struct ns_checksum_behind {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t moved;
    uint64_t ready;   /* bytes the caller has made available (under lock) */
    bool abandon;     /* under lock */
    ns_checksum ck;   /* the thread's until it is joined */
    int n;
    struct iovec pieces[];
};

/* Blocks until at least `want` bytes are ready; false when abandoned. */
static bool wait_ready(ns_checksum_behind *b, uint64_t want) {
    pthread_mutex_lock(&b->lock);
    while (b->ready < want && !b->abandon) pthread_cond_wait(&b->moved, &b->lock);
    bool go = !b->abandon;
    pthread_mutex_unlock(&b->lock);
    return go;
}

static void *run(void *arg) {
    ns_checksum_behind *b = arg;
    uint64_t at = 0, seen = 0; /* bytes checksummed; bytes known ready */
    for (int i = 0; i < b->n; i++) {
        const uint8_t *p = b->pieces[i].iov_base;
        for (size_t done = 0; done < b->pieces[i].iov_len;) {
            size_t len = b->pieces[i].iov_len - done;
            if (len > CHUNK) len = CHUNK;
            if (at + len > seen) {
                if (!wait_ready(b, at + len)) return NULL;
                pthread_mutex_lock(&b->lock);
                seen = b->ready;
                pthread_mutex_unlock(&b->lock);
            }
            ns_checksum_update(&b->ck, p + done, len);
            done += len;
            at += len;
        }
    }
    return NULL;
}

ns_checksum_behind *ns_checksum_behind_start(const ns_checksum *ck, const struct iovec *pieces, int n, bool all_ready) {
    if (n < 0) return NULL;
    ns_checksum_behind *b = malloc(sizeof *b + (size_t)n * sizeof b->pieces[0]);
    if (!b) return NULL;
    b->ck = *ck;
    b->n = n;
    if (n) memcpy(b->pieces, pieces, (size_t)n * sizeof b->pieces[0]);
    b->ready = all_ready ? UINT64_MAX : 0;
    b->abandon = false;
    if (pthread_mutex_init(&b->lock, NULL) != 0) goto no_lock;
    if (pthread_cond_init(&b->moved, NULL) != 0) goto no_cond;
    if (pthread_create(&b->thread, NULL, run, b) != 0) goto no_thread;
    return b;
no_thread:
    pthread_cond_destroy(&b->moved);
no_cond:
    pthread_mutex_destroy(&b->lock);
no_lock:
    free(b);
    return NULL;
}

void ns_checksum_behind_ready(ns_checksum_behind *b, uint64_t bytes) {
    pthread_mutex_lock(&b->lock);
    if (bytes > b->ready) b->ready = bytes;
    pthread_cond_signal(&b->moved);
    pthread_mutex_unlock(&b->lock);
}

void ns_checksum_behind_finish(ns_checksum_behind *b, ns_checksum *ck, bool abandon) {
    pthread_mutex_lock(&b->lock);
    if (abandon) b->abandon = true;
    else b->ready = UINT64_MAX;
    pthread_cond_signal(&b->moved);
    pthread_mutex_unlock(&b->lock);
    pthread_join(b->thread, NULL);
    if (!abandon) *ck = b->ck;
    pthread_cond_destroy(&b->moved);
    pthread_mutex_destroy(&b->lock);
    free(b);
}
