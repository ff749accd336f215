/* Where nstack keeps its files, and making the directories for them. */
#ifndef NS_UTIL_PATHS_H
#define NS_UTIL_PATHS_H

#include <stddef.h>

/* The path of one of our data files or directories: $env when set, else
 * $XDG_DATA_HOME/nstack/<leaf> (an absolute XDG_DATA_HOME only, as the XDG
 * spec says), else ~/.local/share/nstack/<leaf>. 0, or -1 with err naming
 * `what` ("no snapshot directory: set NSTACK_SNAPSHOTS or HOME"). */
int ns_data_path(const char *env, const char *leaf, const char *what, char *out, size_t outlen, char *err,
                 size_t errlen);

/* mkdir -p: creates dir and its missing parents (mode 0755), and checks
 * that dir is a directory. 0, or -1 with err ("cannot create /x/y:
 * Permission denied", "/x is not a directory"). */
int ns_mkdir_p(const char *dir, char *err, size_t errlen);

/* ns_mkdir_p of the directory a file path is in (nothing to do for a file
 * in "/" or the current directory). 0, or -1 with err. */
int ns_mkdir_parent(const char *file, char *err, size_t errlen);

/* The whole of a small file (a config or state file), NUL-terminated:
 * *out malloc'd, *len its length. 0, or -1 with errno set and err holding
 * the reason alone, for the caller to put in context: strerror's text
 * (ENOENT when there is no file, which callers often accept), "larger than
 * N bytes" (EFBIG: a wrong path, not a config), "out of memory" (ENOMEM). */
int ns_read_small_file(const char *path, size_t max, char **out, size_t *len, char *err, size_t errlen);

/* Replaces the file at path (mode 0644) with len bytes of data so that a
 * crash leaves the old file or the new one, never half of one: a unique
 * temporary file beside it, fsync, rename, then fsync of the directory (so
 * the rename itself survives a power cut). Missing parent directories are created. `what`
 * names the file in errors ("cannot write the mode file /x: No space left
 * on device"). 0, or -1 with err. */
int ns_write_file_durably(const char *path, const void *data, size_t len, const char *what, char *err,
                          size_t errlen);

#endif
