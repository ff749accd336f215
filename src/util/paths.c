#include "util/paths.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

int ns_data_path(const char *env, const char *leaf, const char *what, char *out, size_t outlen, char *err,
                 size_t errlen) {
    const char *v = getenv(env);
    const char *xdg = getenv("XDG_DATA_HOME");
    const char *home = getenv("HOME");
    int n;
    if (v && *v) n = snprintf(out, outlen, "%s", v);
    else if (xdg && *xdg == '/') n = snprintf(out, outlen, "%s/nstack/%s", xdg, leaf);
    else if (home && *home) n = snprintf(out, outlen, "%s/.local/share/nstack/%s", home, leaf);
    else {
        snprintf(err, errlen, "no %s: set %s or HOME", what, env);
        return -1;
    }
    if (n < 0 || (size_t)n >= outlen) {
        snprintf(err, errlen, "%s path too long", what);
        return -1;
    }
    while (n > 1 && out[n - 1] == '/') out[--n] = '\0';
    return 0;
}

int ns_mkdir_p(const char *dir, char *err, size_t errlen) {
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s", dir) >= (int)sizeof tmp) {
        snprintf(err, errlen, "path too long: %.200s", dir);
        return -1;
    }
    for (char *p = tmp + 1;; p++) {
        if (*p != '/' && *p != '\0') continue;
        char was = *p;
        *p = '\0';
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST) {
            snprintf(err, errlen, "cannot create %.300s: %s", tmp, strerror(errno));
            return -1;
        }
        if (was == '\0') break;
        *p = '/';
    }
    struct stat st;
    if (stat(tmp, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "%.300s is not a directory", tmp);
        return -1;
    }
    return 0;
}

int ns_mkdir_parent(const char *file, char *err, size_t errlen) {
    char dir[4096];
    if (snprintf(dir, sizeof dir, "%s", file) >= (int)sizeof dir) {
        snprintf(err, errlen, "path too long: %.200s", file);
        return -1;
    }
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir) return 0;
    *slash = '\0';
    return ns_mkdir_p(dir, err, errlen);
}

int ns_read_small_file(const char *path, size_t max, char **out, size_t *len, char *err, size_t errlen) {
    *out = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "%s", strerror(errno));
        return -1;
    }
    char *buf = malloc(max + 1);
    size_t n = 0;
    int e = buf ? 0 : ENOMEM;
    while (!e) {
        /* one byte past max tells a file of exactly max from a longer one */
        ssize_t k = read(fd, buf + n, max + 1 - n);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) e = errno;
        else if (k == 0) break;
        else if ((n += (size_t)k) > max) e = EFBIG;
    }
    close(fd);
    if (e) {
        if (e == EFBIG) snprintf(err, errlen, "larger than %zu bytes", max);
        else if (e == ENOMEM) snprintf(err, errlen, "out of memory");
        else snprintf(err, errlen, "%s", strerror(e));
        free(buf);
        errno = e;
        return -1;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}

static int write_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

int ns_write_file_durably(const char *path, const void *data, size_t len, const char *what, char *err,
                          size_t errlen) {
    char tmp[4200], derr[512];
    if (ns_mkdir_parent(path, derr, sizeof derr) != 0) {
        snprintf(err, errlen, "cannot write the %s %.300s: %s", what, path, derr);
        return -1;
    }
    /* the directory, for the temp file beside the file and its fsync */
    const char *slash = strrchr(path, '/');
    char dir[4096];
    if (!slash) snprintf(dir, sizeof dir, ".");
    else snprintf(dir, sizeof dir, "%.*s", slash == path ? 1 : (int)(slash - path), path);
    /* unique beside the file, so concurrent writers never share a temp file */
    snprintf(tmp, sizeof tmp, "%s/.tmp-XXXXXX", dir);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        snprintf(err, errlen, "cannot write the %s %.300s: %s", what, path, strerror(errno));
        return -1;
    }
    int rc = fchmod(fd, 0644) || write_all(fd, data, len) || fsync(fd); /* mkstemp makes it 0600 */
    int saved_errno = errno;
    if (close(fd) != 0 && !rc) {
        rc = 1;
        saved_errno = errno;
    }
    if (!rc && rename(tmp, path) != 0) {
        rc = 1;
        saved_errno = errno;
    }
    if (rc) {
        unlink(tmp);
        snprintf(err, errlen, "cannot write the %s %.300s: %s", what, path, strerror(saved_errno));
        return -1;
    }
    int dfd = open(dir, O_RDONLY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd); /* best effort: some file systems refuse fsync on a directory */
        close(dfd);
    }
    return 0;
}
