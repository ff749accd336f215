#include "router/audit.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/log.h"
#include "util/paths.h"

struct ns_audit {
    pthread_mutex_t mu; /* orders rotation against writes */
    int fd;
    int64_t max_size, size;
    char path[4096];
};

ns_audit *ns_audit_open(const char *path, int64_t max_size, char *err, size_t errlen) {
    ns_audit *a = calloc(1, sizeof *a);
    if (!a) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&a->mu, NULL);
    a->max_size = max_size;
    if (path && strcmp(path, "-") == 0) {
        a->fd = STDOUT_FILENO;
        snprintf(a->path, sizeof a->path, "-");
        return a;
    }
    if (path && *path) snprintf(a->path, sizeof a->path, "%s", path);
    else if (ns_data_path("NSTACK_ROUTE_LOG", "route.jsonl", "audit log", a->path, sizeof a->path, err, errlen) != 0)
        goto fail;
    if (ns_mkdir_parent(a->path, err, errlen) != 0) goto fail;
    a->fd = open(a->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (a->fd < 0) {
        snprintf(err, errlen, "cannot open the audit log %.300s: %s", a->path, strerror(errno));
        goto fail;
    }
    struct stat st;
    a->size = fstat(a->fd, &st) == 0 ? (int64_t)st.st_size : 0;
    return a;
fail:
    pthread_mutex_destroy(&a->mu);
    free(a);
    return NULL;
}

/* Under a->mu: PATH -> PATH.1 and a fresh PATH. On failure the old file
 * goes on growing (logged): losing audit lines would be worse. */
static void rotate(ns_audit *a) {
    char old[4100];
    snprintf(old, sizeof old, "%s.1", a->path);
    int fd = -1;
    if (rename(a->path, old) == 0) fd = open(a->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        ns_log_error("router", "cannot rotate the audit log", "path=\"%s\" error=\"%s\"", a->path, strerror(errno));
        a->size = 0; /* try again only after another max_size bytes */
        return;
    }
    close(a->fd);
    a->fd = fd;
    a->size = 0;
}

void ns_audit_close(ns_audit *a) {
    if (!a) return;
    if (a->fd > STDERR_FILENO) close(a->fd);
    pthread_mutex_destroy(&a->mu);
    free(a);
}

const char *ns_audit_path(const ns_audit *a) { return a->path; }

void ns_audit_write(ns_audit *a, const cJSON *line) {
    char *text = cJSON_PrintUnformatted(line);
    if (!text) return;
    size_t n = strlen(text);
    text[n] = '\n'; /* overwrites the terminator: the buffer is written by length */
    pthread_mutex_lock(&a->mu);
    if (a->max_size > 0 && a->fd > STDERR_FILENO && a->size > 0 && a->size + (int64_t)n + 1 > a->max_size) rotate(a);
    ssize_t w = write(a->fd, text, n + 1);
    if (w > 0) a->size += w;
    pthread_mutex_unlock(&a->mu);
    if (w != (ssize_t)(n + 1))
        ns_log_error("router", "cannot write the audit log", "path=\"%s\" error=\"%s\"", a->path,
                     w < 0 ? strerror(errno) : "short write");
    free(text);
}
