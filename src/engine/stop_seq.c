/* Streaming stop-sequence matcher (include/nstack/stop.h). */
#include "nstack/stop.h"

#include <stdlib.h>
#include <string.h>

struct ns_stop {
    int n;        /* non-empty stop sequences kept */
    char **text;  /* their bytes */
    size_t *len;  /* their lengths */
    int *index;   /* their index among the strings given to ns_stop_new */
    size_t max_len;

    char *buf; /* held text is buf[start, start + held) */
    size_t cap, start, held;
    bool hit;
    int which;
};

void ns_stop_free(ns_stop *st) {
    if (!st) return;
    for (int i = 0; i < st->n; i++) free(st->text[i]);
    free(st->text);
    free(st->len);
    free(st->index);
    free(st->buf);
    free(st);
}

ns_stop *ns_stop_new(const char *const *stops, int n) {
    ns_stop *st = calloc(1, sizeof *st);
    if (!st) return NULL;
    st->which = -1;
    if (n > 0 && stops) {
        st->text = calloc((size_t)n, sizeof *st->text);
        st->len = calloc((size_t)n, sizeof *st->len);
        st->index = calloc((size_t)n, sizeof *st->index);
        if (!st->text || !st->len || !st->index) goto oom;
        for (int i = 0; i < n; i++) {
            if (!stops[i] || !stops[i][0]) continue;
            size_t l = strlen(stops[i]);
            char *t = malloc(l + 1);
            if (!t) goto oom;
            memcpy(t, stops[i], l + 1);
            st->text[st->n] = t;
            st->len[st->n] = l;
            st->index[st->n] = i;
            st->n++;
            if (l > st->max_len) st->max_len = l;
        }
    }
    return st;
oom:
    ns_stop_free(st);
    return NULL;
}

void ns_stop_reset(ns_stop *st) {
    st->start = st->held = 0;
    st->hit = false;
    st->which = -1;
}

bool ns_stop_hit(const ns_stop *st) { return st->hit; }
int ns_stop_which(const ns_stop *st) { return st->which; }
size_t ns_stop_held(const ns_stop *st) { return st->held; }

/* Bytes at the end of b[0..n) that begin a UTF-8 character not yet complete
 * (0 when the text ends on a whole character, or the tail is not UTF-8 that
 * more bytes could complete). */
static size_t utf8_incomplete_tail(const unsigned char *b, size_t n) {
    for (size_t back = 1; back <= 4 && back <= n; back++) {
        unsigned char c = b[n - back];
        if ((c & 0xC0) == 0x80) continue; /* continuation byte: look further back */
        size_t need = c >= 0xF8 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
        return need > back ? back : 0;
    }
    return 0;
}

/* Length of the longest suffix of b[0..n) that is a proper prefix of a stop. */
static size_t stop_prefix_tail(const ns_stop *st, const char *b, size_t n) {
    size_t h = n < st->max_len ? n : st->max_len - 1;
    for (; h > 0; h--)
        for (int k = 0; k < st->n; k++)
            if (st->len[k] > h && memcmp(st->text[k], b + n - h, h) == 0) return h;
    return 0;
}

size_t ns_stop_feed(ns_stop *st, const char *piece, size_t len, const char **out) {
    *out = st->buf ? st->buf : "";
    if (st->hit) return 0;
    /* move the held bytes to the front, then append the piece */
    if (st->start > 0) {
        memmove(st->buf, st->buf + st->start, st->held);
        st->start = 0;
    }
    if (st->held + len > st->cap) {
        size_t cap = st->cap ? st->cap : 64;
        while (cap < st->held + len) cap *= 2;
        char *nb = realloc(st->buf, cap);
        if (!nb) { /* out of memory: release what is held rather than lose it */
            *out = st->buf ? st->buf : "";
            size_t n = st->held;
            st->held = 0;
            return n;
        }
        st->buf = nb;
        st->cap = cap;
    }
    if (len > 0) memcpy(st->buf + st->held, piece, len);
    st->held += len;
    *out = st->buf;

    /* The held bytes from earlier calls are a proper prefix of some stop and
     * held no whole one, so a stop that completes now lies inside
     * buf[0..held).  The one that completes first wins (of those ending at
     * the same byte, the longest), as if the text came one byte at a time:
     * the result does not depend on how the text was cut into pieces. */
    for (size_t end = 1; end <= st->held && st->n > 0; end++) {
        int best = -1;
        for (int k = 0; k < st->n; k++)
            if (st->len[k] <= end && memcmp(st->buf + end - st->len[k], st->text[k], st->len[k]) == 0 &&
                (best < 0 || st->len[k] > st->len[best]))
                best = k;
        if (best >= 0) {
            st->hit = true;
            st->which = st->index[best];
            st->held = 0;
            return end - st->len[best];
        }
    }

    size_t hold = st->n > 0 ? stop_prefix_tail(st, st->buf, st->held) : 0;
    size_t u = utf8_incomplete_tail((const unsigned char *)st->buf, st->held);
    if (u > hold) hold = u;
    size_t emit = st->held - hold;
    st->start = emit;
    st->held = hold;
    return emit;
}

size_t ns_stop_flush(ns_stop *st, const char **out) {
    *out = st->buf ? st->buf + st->start : "";
    if (st->hit) return 0;
    size_t n = st->held;
    st->start += n;
    st->held = 0;
    return n;
}
