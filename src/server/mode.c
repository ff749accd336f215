/* The server's mode and its state file (mode.h). */
#include "mode.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "util/duration.h"
#include "util/log.h"
#include "util/paths.h"

/* A state file is a few hundred bytes; anything much larger is not ours. */
#define MAX_FILE_BYTES (64 * 1024)

struct ns_mode {
    pthread_mutex_t mu;
    ns_mode_state st;
    ns_events *events;
    char path[4096];      /* "" when there is none */
    char path_err[256];   /* why there is none */
};

const char *ns_mode_name(ns_mode_kind m) { return m == NS_MODE_GAMING ? "GAMING" : "NORMAL"; }

int ns_mode_parse_name(const char *s, ns_mode_kind *out) {
    if (!s) return -1;
    if (strcasecmp(s, "normal") == 0) *out = NS_MODE_NORMAL;
    else if (strcasecmp(s, "gaming") == 0) *out = NS_MODE_GAMING;
    else return -1;
    return 0;
}

static bool digits(const char *s, int n) {
    for (int i = 0; i < n; i++)
        if (!isdigit((unsigned char)s[i])) return false;
    return true;
}

/* The shape of an RFC 3339 time: 2026-12-07T21:00:00[.123][Z|+01:00]. The
 * value is only ever shown again, never computed with, so the shape is what
 * matters: it tells a hand-edited or truncated file from ours. */
static bool rfc3339_shaped(const char *s) {
    if (strlen(s) < 20 || !digits(s, 4) || s[4] != '-' || !digits(s + 5, 2) || s[7] != '-' || !digits(s + 8, 2) ||
        (s[10] != 'T' && s[10] != 't') || !digits(s + 11, 2) || s[13] != ':' || !digits(s + 14, 2) || s[16] != ':' ||
        !digits(s + 17, 2))
        return false;
    const char *p = s + 19;
    if (*p == '.') {
        if (!isdigit((unsigned char)p[1])) return false;
        for (p++; isdigit((unsigned char)*p); p++) {
        }
    }
    if (*p == 'Z' || *p == 'z') return p[1] == '\0';
    if ((*p == '+' || *p == '-') && digits(p + 1, 2) && p[3] == ':' && digits(p + 4, 2)) return p[6] == '\0';
    return false;
}

int ns_mode_parse_state(const char *text, size_t len, ns_mode_state *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    cJSON *j = cJSON_ParseWithLength(text, len);
    if (!j || !cJSON_IsObject(j)) {
        snprintf(err, errlen, j ? "not a JSON object" : "invalid JSON");
        cJSON_Delete(j);
        return -1;
    }
    int rc = -1;
    const cJSON *mode = cJSON_GetObjectItemCaseSensitive(j, "mode");
    const cJSON *since = cJSON_GetObjectItemCaseSensitive(j, "since");
    const cJSON *by = cJSON_GetObjectItemCaseSensitive(j, "changed_by");
    if (!cJSON_IsString(mode) || ns_mode_parse_name(mode->valuestring, &out->mode) != 0) {
        snprintf(err, errlen, "\"mode\" must be \"NORMAL\" or \"GAMING\"");
        goto out;
    }
    if (!cJSON_IsString(since) || !rfc3339_shaped(since->valuestring) ||
        strlen(since->valuestring) >= sizeof out->since) {
        snprintf(err, errlen, "\"since\" must be an RFC 3339 time");
        goto out;
    }
    if (by && !cJSON_IsNull(by) && !cJSON_IsString(by)) {
        snprintf(err, errlen, "\"changed_by\" must be a string");
        goto out;
    }
    snprintf(out->since, sizeof out->since, "%s", since->valuestring);
    /* a long changed_by is cut rather than refused: it is only shown */
    snprintf(out->changed_by, sizeof out->changed_by, "%s", cJSON_IsString(by) ? by->valuestring : "");
    rc = 0;
out:
    cJSON_Delete(j);
    return rc;
}

cJSON *ns_mode_state_json(const ns_mode_state *st) {
    cJSON *o = cJSON_CreateObject();
    if (!o || !cJSON_AddStringToObject(o, "mode", ns_mode_name(st->mode)) ||
        !cJSON_AddStringToObject(o, "since", st->since) || !cJSON_AddStringToObject(o, "changed_by", st->changed_by) ||
        (st->note[0] && !cJSON_AddStringToObject(o, "note", st->note))) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* ---- the state file ---- */

static void now_rfc3339(char *buf, size_t len) { ns_time_format_rfc3339(ns_now_wall(), buf, len); }

/* 1 and *out from the file, 0 when there is no file, -1 with err when it
 * exists but cannot be read or parsed. */
static int read_state(const char *path, ns_mode_state *out, char *err, size_t errlen) {
    char *buf;
    size_t n;
    if (ns_read_small_file(path, MAX_FILE_BYTES, &buf, &n, err, errlen) != 0) return errno == ENOENT ? 0 : -1;
    char perr[128];
    int rc = 1;
    if (ns_mode_parse_state(buf, n, out, perr, sizeof perr) != 0) {
        if (n == 0) snprintf(err, errlen, "empty file");
        else snprintf(err, errlen, "%s", perr);
        rc = -1;
    }
    free(buf);
    return rc;
}

/* Writes st to path; a crash leaves the old file or the new one. */
static int write_state(const char *path, const ns_mode_state *st, char *err, size_t errlen) {
    ns_mode_state saved = *st;
    saved.note[0] = '\0';
    cJSON *j = ns_mode_state_json(&saved);
    char *text = j ? cJSON_Print(j) : NULL;
    cJSON_Delete(j);
    if (!text) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    size_t n = strlen(text);
    char *line = realloc(text, n + 2);
    if (!line) {
        free(text);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    memcpy(line + n, "\n", 2);
    int rc = ns_write_file_durably(path, line, n + 1, "mode file", err, errlen);
    free(line);
    return rc;
}

/* ---- the object ---- */

ns_mode *ns_mode_open(const char *path, ns_events *events) {
    ns_mode *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    pthread_mutex_init(&m->mu, NULL);
    m->events = events;
    m->st.mode = NS_MODE_NORMAL;
    now_rfc3339(m->st.since, sizeof m->st.since);
    snprintf(m->st.changed_by, sizeof m->st.changed_by, "startup");

    if (path && *path) {
        if (snprintf(m->path, sizeof m->path, "%s", path) >= (int)sizeof m->path) {
            m->path[0] = '\0';
            snprintf(m->path_err, sizeof m->path_err, "mode file path too long");
        }
    } else if (ns_data_path("NSTACK_MODE_FILE", "mode.json", "mode file", m->path, sizeof m->path, m->path_err,
                            sizeof m->path_err) != 0) {
        m->path[0] = '\0';
    }
    if (!m->path[0]) {
        /* nowhere to keep it: serve NORMAL (nothing says otherwise) and let
         * every PUT say why it cannot be kept */
        ns_log_warn("mode", "the mode will not be kept", "reason=\"%s\"", m->path_err);
        return m;
    }

    ns_mode_state st;
    char err[512];
    int got = read_state(m->path, &st, err, sizeof err);
    if (got > 0) {
        m->st = st;
        if (!m->st.changed_by[0]) snprintf(m->st.changed_by, sizeof m->st.changed_by, "unknown");
    } else if (got < 0) {
        /* GAMING is the safe side: the router keeps work off the big machine
         * until its owner says otherwise */
        m->st.mode = NS_MODE_GAMING;
        snprintf(m->st.note, sizeof m->st.note, "the mode file %.300s could not be read (%.200s); GAMING until set", m->path,
                 err);
        ns_log_warn("mode", "the mode file could not be read: GAMING until set", "file=\"%s\" reason=\"%s\"", m->path,
                    err);
    }
    ns_log_info("mode", "mode", "mode=%s since=%s file=\"%s\"", ns_mode_name(m->st.mode), m->st.since, m->path);
    return m;
}

void ns_mode_free(ns_mode *m) {
    if (!m) return;
    pthread_mutex_destroy(&m->mu);
    free(m);
}

const char *ns_mode_path(const ns_mode *m) { return m->path; }

void ns_mode_get(ns_mode *m, ns_mode_state *out) {
    pthread_mutex_lock(&m->mu);
    *out = m->st;
    pthread_mutex_unlock(&m->mu);
}

static void publish_change(ns_mode *m, ns_mode_kind previous, const char *request_id) {
    if (!m->events) return;
    cJSON *d = cJSON_CreateObject();
    char *text = NULL;
    if (d && cJSON_AddStringToObject(d, "mode", ns_mode_name(m->st.mode)) &&
        cJSON_AddStringToObject(d, "previous", ns_mode_name(previous)) &&
        cJSON_AddStringToObject(d, "by", m->st.changed_by))
        text = cJSON_PrintUnformatted(d);
    cJSON_Delete(d);
    ns_events_publish(m->events, NS_EV_MODE_CHANGED, NULL, request_id, text ? text : "{}");
    free(text);
}

int ns_mode_set(ns_mode *m, ns_mode_kind mode, const char *by, const char *request_id, ns_mode_state *out,
                char *err, size_t errlen) {
    pthread_mutex_lock(&m->mu);
    ns_mode_state next = m->st;
    bool changed = next.mode != mode;
    if (changed) {
        next.mode = mode;
        now_rfc3339(next.since, sizeof next.since);
        snprintf(next.changed_by, sizeof next.changed_by, "%s", by && *by ? by : "unknown");
    }
    next.note[0] = '\0';
    int rc = -1;
    if (!m->path[0]) {
        snprintf(err, errlen, "cannot keep the mode: %s", m->path_err);
    } else if (write_state(m->path, &next, err, errlen) == 0) {
        ns_mode_kind previous = m->st.mode;
        m->st = next;
        if (changed) {
            ns_log_info("mode", "mode changed", "mode=%s previous=%s by=%s", ns_mode_name(mode),
                        ns_mode_name(previous), m->st.changed_by);
            /* under the lock, so the events come in the order of the changes
             * (subscribers never call back into the mode) */
            publish_change(m, previous, request_id);
        }
        rc = 0;
    }
    if (out) *out = m->st;
    pthread_mutex_unlock(&m->mu);
    return rc;
}
