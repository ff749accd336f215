#include "util/paths.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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
