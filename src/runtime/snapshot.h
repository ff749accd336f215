/* Snapshot files: a session's conversation (token history, optional chat
 * messages) and the KV cache of those tokens, saved to disk and restored in
 * another server process.
 *
 * Layout (little-endian), version NS_SNAPSHOT_VERSION:
 *   header   fixed size: magic "NSTKSNAP", version, the lengths and offsets
 *            of the sections below, the meta fields, and a checksum of the
 *            header itself
 *   tokens   n_tokens int32
 *   messages messages_len bytes of JSON text (may be 0)
 *   kv       kv_bytes: the engine's sequence-state image (ns_seq_state_save)
 *   trailer  checksum (util/checksum.h) of tokens + messages + kv
 * A reader refuses, with one clear sentence naming the file: a short or
 * over-long file, a bad magic, another version, a header or body checksum
 * mismatch, a snapshot of another model (digest) or KV layout (fingerprint).
 *
 * Writes go to "<path>.tmp" and are renamed into place, so a crash never
 * leaves a half-written snapshot under the real name. */
#ifndef NS_RUNTIME_SNAPSHOT_H
#define NS_RUNTIME_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define NS_SNAPSHOT_VERSION 1
#define NS_SNAPSHOT_EXT ".nsnap"

typedef struct {
    char name[65];          /* the snapshot's name ([A-Za-z0-9._-], 1..64) */
    char session[65];       /* the session it was saved from */
    char model[256];        /* model name as the session used it */
    char model_digest[80];  /* "sha256:<hex>" of the model file, or "" for a plain path (then
                             * the fingerprint and model name are the whole check) */
    char fingerprint[160];  /* KV layout, e.g. "llama layers=16 kv_dim=512 kv=f16"; must match exactly */
    int32_t n_keep;         /* tokens kept at the front on a context shift */
    int64_t created;        /* wall clock, Unix ns */
    int32_t n_tokens;
    uint64_t messages_len;  /* bytes of JSON text */
    uint64_t kv_bytes;
    uint64_t file_bytes;    /* filled by read/stat */
} ns_snapshot_meta;

/* Name check for snapshot and session names: 1..64 of [A-Za-z0-9._-], not
 * starting with '.'. */
/* The rule ns_snapshot_name_ok applies, for error messages. */
#define NS_NAME_RULE "use 1 to 64 letters, digits, '.', '_' or '-', not starting with '.'"
bool ns_snapshot_name_ok(const char *name);

/* The snapshot directory: $NSTACK_SNAPSHOTS, else $XDG_DATA_HOME/nstack/snapshots,
 * else ~/.local/share/nstack/snapshots. Writes it into out (created with
 * mkdir -p when create is true). 0 or -1 with err. */
int ns_snapshot_dir(char *out, size_t outlen, bool create, char *err, size_t errlen);

/* Writes dir/<meta->name>.nsnap (meta->file_bytes is ignored). messages may
 * be NULL when messages_len is 0. With sync, fsync the file and the
 * directory before returning (durable; slower). 0, or -1 with err. */
int ns_snapshot_write(const char *dir, const ns_snapshot_meta *meta, const int32_t *tokens, const char *messages,
                      const void *kv, bool sync, char *err, size_t errlen);

/* The same with the KV in pieces (ns_seq_state_pieces: straight from the
 * cache, no copy); the pieces' lengths must add up to meta->kv_bytes. */
int ns_snapshot_write_iov(const char *dir, const ns_snapshot_meta *meta, const int32_t *tokens, const char *messages,
                          const struct iovec *kv, int n_kv, bool sync, char *err, size_t errlen);

/* Reads only the header (cheap, for listing): checks magic, version, header
 * checksum and that the file's size matches the header. 0, or -1 with err. */
int ns_snapshot_read_meta(const char *dir, const char *name, ns_snapshot_meta *meta, char *err, size_t errlen);

/* Reads and checks the whole snapshot. When want_digest / want_fingerprint
 * are non-NULL they must match (want_digest "" skips the digest check):
 * "snapshot 'x' was saved from model sha256:1234abcd..., not the loaded
 * sha256:5678...". On success *tokens, *messages (NUL-terminated, NULL when
 * messages_len is 0) and *kv are malloc'd and owned by the caller. */
int ns_snapshot_read(const char *dir, const char *name, const char *want_digest, const char *want_fingerprint,
                     ns_snapshot_meta *meta, int32_t **tokens, char **messages, void **kv, char *err,
                     size_t errlen);

/* ns_snapshot_read in two steps, so the KV can be read straight into its
 * destination (the cache's pieces): open checks everything ns_snapshot_read
 * checks before the KV and returns the tokens and messages (malloc'd, the
 * caller's); read_kv reads the KV into pieces whose lengths add up to
 * meta->kv_bytes and checks the body checksum (on failure the pieces hold
 * garbage). NULL / -1 with err. */
typedef struct ns_snapshot_reader ns_snapshot_reader;
ns_snapshot_reader *ns_snapshot_open(const char *dir, const char *name, const char *want_digest,
                                     const char *want_fingerprint, ns_snapshot_meta *meta, int32_t **tokens,
                                     char **messages, char *err, size_t errlen);
int ns_snapshot_read_kv(ns_snapshot_reader *rd, const struct iovec *kv, int n_kv, char *err, size_t errlen);
void ns_snapshot_close(ns_snapshot_reader *rd);

/* Every readable snapshot's meta in dir, sorted by name; files that fail
 * read_meta are skipped (and logged). *out malloc'd. 0 or -1 with err. */
int ns_snapshot_list(const char *dir, ns_snapshot_meta **out, int *n, char *err, size_t errlen);

/* Whether dir holds a snapshot file of that name (readable or not). */
bool ns_snapshot_exists(const char *dir, const char *name);

/* 0, or -1 with err (404-like "snapshot 'x' does not exist" when absent: *missing set). */
int ns_snapshot_delete(const char *dir, const char *name, bool *missing, char *err, size_t errlen);

#endif
