#include "router/audit.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/log.h"
#include "util/paths.h"

struct ns_audit {
    int fd;
    char path[4096];
};

ns_audit *ns_audit_open(const char *path, char *err, size_t errlen) {
    ns_audit *a = calloc(1, sizeof *a);
    if (!a) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (path && strcmp(path, "-") == 0) {
        a->fd = STDOUT_FILENO;
        snprintf(a->path, sizeof a->path, "-");
        return a;
    }
    if (path && *path) snprintf(a->path, sizeof a->path, "%s", path);
    else if (ns_data_path("NSTACK_ROUTE_LOG", "route.jsonl", "audit log", a->path, sizeof a->path, err, errlen) != 0)
        goto fail;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", a->path);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = '\0';
        if (ns_mkdir_p(dir, err, errlen) != 0) goto fail;
    }
    a->fd = open(a->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (a->fd < 0) {
        snprintf(err, errlen, "cannot open the audit log %.300s: %s", a->path, strerror(errno));
        goto fail;
    }
    return a;
fail:
    free(a);
    return NULL;
}

void ns_audit_close(ns_audit *a) {
    if (!a) return;
    if (a->fd > STDERR_FILENO) close(a->fd);
    free(a);
}

const char *ns_audit_path(const ns_audit *a) { return a->path; }

void ns_audit_write(ns_audit *a, const cJSON *line) {
    char *text = cJSON_PrintUnformatted(line);
    if (!text) return;
    size_t n = strlen(text);
    text[n] = '\n'; /* overwrites the terminator: the buffer is written by length */
    ssize_t w = write(a->fd, text, n + 1);
    if (w != (ssize_t)(n + 1))
        ns_log_error("router", "cannot write the audit log", "path=\"%s\" error=\"%s\"", a->path,
                     w < 0 ? strerror(errno) : "short write");
    free(text);
}
