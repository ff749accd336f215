/* Snapshot files (snapshot.h). The header is a fixed 768-byte record written
 * field by field in little-endian, so the format does not depend on a C
 * compiler's struct layout:
 *
 *     0 magic "NSTKSNAP"        8 version u32           12 header bytes u32
 *    16 n_tokens i32           20 n_keep i32           24 created i64
 *    32 messages_len u64       40 kv_bytes u64         48 tokens offset u64
 *    56 messages offset u64    64 kv offset u64        72 trailer offset u64
 *    80 file bytes u64         88 name[64]            152 session[64]
 *   216 model[256]            472 model_digest[80]    552 fingerprint[160]
 *   712 zeros                 760 checksum of bytes 0..759 (u64)
 *
 * Strings are zero-padded; a field must hold its text's NUL unless the text
 * fills it (only names reach 64). The magic and version come first and never
 * move, so any later version is recognised as such before anything else is
 * read. The body checksum sits in a trailer, so a writer streams the body
 * (checksumming each chunk right before writing it, while it is in cache)
 * without going back to patch the header; a reader checks the header and the
 * file size before it sizes any allocation from the header, then reads each
 * section straight into its final buffer a few MB at a time and checksums
 * the chunk it just read. */
#define _GNU_SOURCE /* renameat2 */
#include "runtime/snapshot.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "util/checksum.h"
#include "util/checksum_behind.h"
#include "util/log.h"
#include "util/paths.h"

#define SNAP_MAGIC "NSTKSNAP"
#define HDR_BYTES 768
#define HDR_SUM_AT 760
#define TRAILER_BYTES 8
#define HDR_SEED 0x6e736e6170686472ull  /* "nsnaphdr" */
#define BODY_SEED 0x6e736e6170626479ull /* "nsnapbdy" */
/* Reads and writes go in chunks this size so each one is checksummed while
 * it is still in the CPU's cache. */
#define IO_CHUNK ((size_t)1 << 20)
/* KV sections from this size up are checksummed on a second thread while
 * the first moves the bytes (checksum_behind.h): a save or restore of 62 MB
 * took 7 ms one pass after the other. */
#define BEHIND_MIN ((uint64_t)4 << 20)
/* Far above any real context, low enough that a hostile header cannot make
 * us size a giant buffer from a sparse file. */
#define MAX_TOKENS ((int64_t)1 << 26)
#define MAX_MESSAGES_BYTES ((uint64_t)1 << 30)

enum {
    OFF_MAGIC = 0, OFF_VERSION = 8, OFF_HDR_BYTES = 12, OFF_N_TOKENS = 16, OFF_N_KEEP = 20, OFF_CREATED = 24,
    OFF_MESSAGES_LEN = 32, OFF_KV_BYTES = 40, OFF_TOKENS_AT = 48, OFF_MESSAGES_AT = 56, OFF_KV_AT = 64,
    OFF_TRAILER_AT = 72, OFF_FILE_BYTES = 80, OFF_NAME = 88, OFF_SESSION = 152, OFF_MODEL = 216,
    OFF_DIGEST = 472, OFF_FINGERPRINT = 552, OFF_END_FIELDS = 712
};
#define W_NAME 64
#define W_SESSION 64
#define W_MODEL 256
#define W_DIGEST 80
#define W_FINGERPRINT 160

typedef struct {
    uint64_t tokens_at, messages_at, kv_at, trailer_at, file_bytes;
} layout;

/* ---- little-endian fields ---- */

static void put_u32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void put_u64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t get_u32(const uint8_t *p) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) v |= (uint32_t)p[i] << (8 * i);
    return v;
}
static uint64_t get_u64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}
static void put_str(uint8_t *p, size_t width, const char *s) {
    size_t n = strnlen(s, width);
    memcpy(p, s, n);
    memset(p + n, 0, width - n);
}
/* Text that goes into one-line messages and logs: no control characters. */
static bool printable(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) return false;
    return true;
}

/* Copies a padded field into out (outsize > text); false when the text does
 * not fit out, has control characters, or the padding is not all zeros. */
static bool get_str(const uint8_t *p, size_t width, char *out, size_t outsize) {
    size_t n = strnlen((const char *)p, width);
    if (n >= outsize || !printable((const char *)p, n)) return false;
    for (size_t i = n; i < width; i++)
        if (p[i]) return false;
    memcpy(out, p, n);
    out[n] = '\0';
    return true;
}

static bool host_is_little_endian(void) {
    const uint16_t one = 1;
    return *(const uint8_t *)&one == 1;
}

/* ---- names and paths ---- */

bool ns_snapshot_name_ok(const char *name) {
    if (!name || !name[0] || name[0] == '.') return false;
    size_t n = 0;
    for (const char *p = name; *p; p++, n++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                  c == '_' || c == '-';
        if (!ok || n >= 64) return false;
    }
    return true;
}

static bool bad_name(const char *name, char *err, size_t errlen) {
    if (ns_snapshot_name_ok(name)) return false;
    snprintf(err, errlen, "invalid snapshot name '%.80s': " NS_NAME_RULE, name ? name : "");
    return true;
}

static int snap_path(char *out, size_t outlen, const char *dir, const char *name, const char *suffix, char *err,
                     size_t errlen) {
    if (!dir || !*dir) {
        snprintf(err, errlen, "no snapshot directory given");
        return -1;
    }
    if (snprintf(out, outlen, "%s/%s" NS_SNAPSHOT_EXT "%s", dir, name, suffix) >= (int)outlen) {
        snprintf(err, errlen, "snapshot path too long: %.200s/%s" NS_SNAPSHOT_EXT, dir, name);
        return -1;
    }
    return 0;
}

bool ns_snapshot_exists(const char *dir, const char *name) {
    char path[4200], err[300];
    if (bad_name(name, err, sizeof err) || snap_path(path, sizeof path, dir, name, "", err, sizeof err) != 0)
        return false;
    return access(path, F_OK) == 0;
}

int ns_snapshot_dir(char *out, size_t outlen, bool create, char *err, size_t errlen) {
    if (ns_data_path("NSTACK_SNAPSHOTS", "snapshots", "snapshot directory", out, outlen, err, errlen) != 0) return -1;
    return create ? ns_mkdir_p(out, err, errlen) : 0;
}

/* ---- layout ---- */

static bool add_u64(uint64_t a, uint64_t b, uint64_t *out) {
    if (a > UINT64_MAX - b) return false;
    *out = a + b;
    return true;
}

/* The sections follow the header back to back; false when the lengths
 * overflow a file offset. */
static bool compute_layout(int64_t n_tokens, uint64_t messages_len, uint64_t kv_bytes, layout *l) {
    if (n_tokens < 0 || n_tokens > MAX_TOKENS) return false;
    l->tokens_at = HDR_BYTES;
    return add_u64(l->tokens_at, (uint64_t)n_tokens * 4, &l->messages_at) &&
           add_u64(l->messages_at, messages_len, &l->kv_at) && add_u64(l->kv_at, kv_bytes, &l->trailer_at) &&
           add_u64(l->trailer_at, TRAILER_BYTES, &l->file_bytes) && l->file_bytes <= (uint64_t)INT64_MAX;
}

static void encode_header(uint8_t *h, const ns_snapshot_meta *m, const layout *l) {
    memset(h, 0, HDR_BYTES);
    memcpy(h + OFF_MAGIC, SNAP_MAGIC, 8);
    put_u32(h + OFF_VERSION, NS_SNAPSHOT_VERSION);
    put_u32(h + OFF_HDR_BYTES, HDR_BYTES);
    put_u32(h + OFF_N_TOKENS, (uint32_t)m->n_tokens);
    put_u32(h + OFF_N_KEEP, (uint32_t)m->n_keep);
    put_u64(h + OFF_CREATED, (uint64_t)m->created);
    put_u64(h + OFF_MESSAGES_LEN, m->messages_len);
    put_u64(h + OFF_KV_BYTES, m->kv_bytes);
    put_u64(h + OFF_TOKENS_AT, l->tokens_at);
    put_u64(h + OFF_MESSAGES_AT, l->messages_at);
    put_u64(h + OFF_KV_AT, l->kv_at);
    put_u64(h + OFF_TRAILER_AT, l->trailer_at);
    put_u64(h + OFF_FILE_BYTES, l->file_bytes);
    put_str(h + OFF_NAME, W_NAME, m->name);
    put_str(h + OFF_SESSION, W_SESSION, m->session);
    put_str(h + OFF_MODEL, W_MODEL, m->model);
    put_str(h + OFF_DIGEST, W_DIGEST, m->model_digest);
    put_str(h + OFF_FINGERPRINT, W_FINGERPRINT, m->fingerprint);
    ns_checksum c;
    ns_checksum_init(&c, HDR_SEED);
    ns_checksum_update(&c, h, HDR_SUM_AT);
    put_u64(h + HDR_SUM_AT, ns_checksum_final(&c));
}

/* Decodes a whole header whose magic and version were already checked;
 * NULL, or what is wrong with it. */
static const char *decode_header(const uint8_t *h, ns_snapshot_meta *m, layout *l) {
    ns_checksum c;
    ns_checksum_init(&c, HDR_SEED);
    ns_checksum_update(&c, h, HDR_SUM_AT);
    if (ns_checksum_final(&c) != get_u64(h + HDR_SUM_AT)) return "header checksum mismatch";
    if (get_u32(h + OFF_HDR_BYTES) != HDR_BYTES) return "wrong header size";
    memset(m, 0, sizeof *m);
    m->n_tokens = (int32_t)get_u32(h + OFF_N_TOKENS);
    m->n_keep = (int32_t)get_u32(h + OFF_N_KEEP);
    m->created = (int64_t)get_u64(h + OFF_CREATED);
    m->messages_len = get_u64(h + OFF_MESSAGES_LEN);
    m->kv_bytes = get_u64(h + OFF_KV_BYTES);
    if (!get_str(h + OFF_NAME, W_NAME, m->name, sizeof m->name) || !ns_snapshot_name_ok(m->name))
        return "bad name field";
    if (!get_str(h + OFF_SESSION, W_SESSION, m->session, sizeof m->session) ||
        (m->session[0] && !ns_snapshot_name_ok(m->session)))
        return "bad session field";
    if (!get_str(h + OFF_MODEL, W_MODEL, m->model, sizeof m->model) ||
        !get_str(h + OFF_DIGEST, W_DIGEST, m->model_digest, sizeof m->model_digest) ||
        !get_str(h + OFF_FINGERPRINT, W_FINGERPRINT, m->fingerprint, sizeof m->fingerprint))
        return "bad model field";
    if (m->n_tokens < 0 || m->n_tokens > MAX_TOKENS) return "bad token count";
    if (m->messages_len > MAX_MESSAGES_BYTES) return "bad messages length";
    if (!compute_layout(m->n_tokens, m->messages_len, m->kv_bytes, l)) return "section lengths overflow";
    if (get_u64(h + OFF_TOKENS_AT) != l->tokens_at || get_u64(h + OFF_MESSAGES_AT) != l->messages_at ||
        get_u64(h + OFF_KV_AT) != l->kv_at || get_u64(h + OFF_TRAILER_AT) != l->trailer_at ||
        get_u64(h + OFF_FILE_BYTES) != l->file_bytes)
        return "section offsets do not match their lengths";
    return NULL;
}

/* ---- plain I/O that finishes the job ---- */

static int write_all(int fd, const void *buf, size_t n) {
    const uint8_t *p = buf;
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        if (w == 0) {
            errno = EIO;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Bytes read (fewer at end of file), or -1. */
static ssize_t pread_full(int fd, void *buf, size_t n, uint64_t off) {
    uint8_t *p = buf;
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, p + got, n - got, (off_t)(off + got));
        if (r < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        if (r == 0) break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

/* Checksums then writes n bytes a chunk at a time. */
static int emit(int fd, ns_checksum *ck, const void *data, size_t n) {
    const uint8_t *p = data;
    for (size_t done = 0; done < n;) {
        size_t len = n - done < IO_CHUNK ? n - done : IO_CHUNK;
        ns_checksum_update(ck, p + done, len);
        if (write_all(fd, p + done, len) != 0) return -1;
        done += len;
    }
    return 0;
}

static int emit_tokens(int fd, ns_checksum *ck, const int32_t *tokens, int n) {
    if (host_is_little_endian()) return emit(fd, ck, tokens, (size_t)n * 4);
    enum { BATCH = 16384 };
    uint8_t *buf = malloc((size_t)BATCH * 4);
    if (!buf) return -1;
    for (int i = 0; i < n; i += BATCH) {
        int k = n - i < BATCH ? n - i : BATCH;
        for (int j = 0; j < k; j++) put_u32(buf + 4 * j, (uint32_t)tokens[i + j]);
        if (emit(fd, ck, buf, (size_t)k * 4) != 0) {
            free(buf);
            return -1;
        }
    }
    free(buf);
    return 0;
}

/* ---- write ---- */

/* A save writes a hidden temporary file and renames it over the snapshot,
 * so a crash never leaves a half-written snapshot under its name. Writing a
 * new file on Linux runs at the file system's block allocation speed (about
 * 1 GB/s on ext4 here), while rewriting an existing file's blocks runs at
 * memory speed (10+ GB/s): so the snapshot a save replaces is kept as the
 * directory's one spare file, and the next save writes into it. At most one
 * spare exists, never larger than the largest snapshot replaced; deleting a
 * snapshot deletes it too (it may hold an older version of any snapshot). */
#define SPARE_FILE ".spare" NS_SNAPSHOT_EXT

static int spare_path(char *out, size_t outlen, const char *dir) {
    return snprintf(out, outlen, "%s/" SPARE_FILE, dir) < (int)outlen ? 0 : -1;
}

/* ".PID-N-NAME.nsnap.tmp": unique among the saves of every process on the
 * directory, hidden from listing (names never start with a dot), and it
 * names its writer for sweep_stale_temps. */
static int temp_path(char *out, size_t outlen, const char *dir, const char *name) {
    static atomic_uint seq;
    unsigned n = atomic_fetch_add(&seq, 1);
    return snprintf(out, outlen, "%s/.%ld-%u-%s" NS_SNAPSHOT_EXT ".tmp", dir, (long)getpid(), n, name) <
                   (int)outlen ? 0 : -1;
}

/* Removes the temporary files of writers that died mid-save (their process
 * is gone), which nothing else would ever claim. */
static void sweep_stale_temps(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        const char *nm = e->d_name;
        size_t len = strlen(nm);
        if (nm[0] != '.' || len < 5 || strcmp(nm + len - 4, ".tmp") != 0) continue;
        char *end;
        long pid = strtol(nm + 1, &end, 10);
        if (end == nm + 1 || *end != '-' || pid <= 0 || pid == (long)getpid()) continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue;
        char path[4200];
        if (snprintf(path, sizeof path, "%s/%s", dir, nm) < (int)sizeof path) unlink(path);
    }
    closedir(d);
}

static bool str_ok(const char *s, size_t size) {
    const char *end = memchr(s, '\0', size);
    return end && printable(s, (size_t)(end - s));
}

int ns_snapshot_write(const char *dir, const ns_snapshot_meta *meta, const int32_t *tokens, const char *messages,
                      const void *kv, bool sync, char *err, size_t errlen) {
    struct iovec one = {(void *)kv, meta ? (size_t)meta->kv_bytes : 0};
    return ns_snapshot_write_iov(dir, meta, tokens, messages, &one, 1, sync, err, errlen);
}

int ns_snapshot_write_iov(const char *dir, const ns_snapshot_meta *meta, const int32_t *tokens, const char *messages,
                          const struct iovec *kv, int n_kv, bool sync, char *err, size_t errlen) {
    if (!meta) {
        snprintf(err, errlen, "no snapshot to write");
        return -1;
    }
    if (bad_name(meta->name, err, errlen)) return -1;
    const char *nm = meta->name;
    if (!str_ok(meta->session, sizeof meta->session) ||
        (meta->session[0] && !ns_snapshot_name_ok(meta->session))) {
        snprintf(err, errlen, "snapshot '%s': invalid session name", nm);
        return -1;
    }
    if (!str_ok(meta->model, sizeof meta->model) || !str_ok(meta->model_digest, sizeof meta->model_digest) ||
        !str_ok(meta->fingerprint, sizeof meta->fingerprint)) {
        snprintf(err, errlen, "snapshot '%s': model name, digest or fingerprint is unterminated or has control "
                 "characters", nm);
        return -1;
    }
    layout l;
    if (!compute_layout(meta->n_tokens, meta->messages_len, meta->kv_bytes, &l) ||
        meta->messages_len > MAX_MESSAGES_BYTES || (size_t)meta->kv_bytes != meta->kv_bytes) {
        snprintf(err, errlen, "snapshot '%s': bad sizes (%" PRId32 " tokens, %" PRIu64 " message bytes, %" PRIu64
                 " KV bytes)", nm, meta->n_tokens, meta->messages_len, meta->kv_bytes);
        return -1;
    }
    uint64_t kv_total = 0;
    for (int i = 0; kv && i < n_kv; i++) {
        if (kv[i].iov_len && !kv[i].iov_base) kv_total = UINT64_MAX - 1; /* a piece with no data */
        else kv_total += kv[i].iov_len;
    }
    if ((meta->n_tokens > 0 && !tokens) || (meta->messages_len > 0 && !messages) || kv_total != meta->kv_bytes) {
        snprintf(err, errlen, "snapshot '%s': a section with a length has no data", nm);
        return -1;
    }
    char path[4200], tmp[4200], spare[4200];
    if (snap_path(path, sizeof path, dir, nm, "", err, errlen) != 0 || temp_path(tmp, sizeof tmp, dir, nm) != 0 ||
        spare_path(spare, sizeof spare, dir) != 0) {
        snprintf(err, errlen, "snapshot path too long: %.200s/%s" NS_SNAPSHOT_EXT, dir, nm);
        return -1;
    }

    uint8_t hdr[HDR_BYTES];
    encode_header(hdr, meta, &l);
    /* Claiming the spare is one rename, so two saves never share it. */
    bool reused = rename(spare, tmp) == 0;
    if (!reused) sweep_stale_temps(dir);
    int fd = reused ? open(tmp, O_WRONLY | O_CLOEXEC) : open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(err, errlen, "cannot save snapshot '%s' in %.300s: %s", nm, dir, strerror(errno));
        if (reused) unlink(tmp);
        return -1;
    }
    const char *step = "write";
    ns_checksum ck;
    ns_checksum_init(&ck, BODY_SEED);
    uint8_t trailer[TRAILER_BYTES];
    if (write_all(fd, hdr, sizeof hdr) != 0 || emit_tokens(fd, &ck, tokens, meta->n_tokens) != 0 ||
        emit(fd, &ck, messages, (size_t)meta->messages_len) != 0)
        goto fail;
    ns_checksum_behind *behind = kv_total >= BEHIND_MIN ? ns_checksum_behind_start(&ck, kv, n_kv, true) : NULL;
    for (int i = 0; i < n_kv; i++) {
        if (behind ? write_all(fd, kv[i].iov_base, kv[i].iov_len) == 0
                   : emit(fd, &ck, kv[i].iov_base, kv[i].iov_len) == 0)
            continue;
        int e = errno;
        if (behind) ns_checksum_behind_finish(behind, &ck, true);
        errno = e;
        goto fail;
    }
    if (behind) ns_checksum_behind_finish(behind, &ck, false);
    put_u64(trailer, ns_checksum_final(&ck));
    if (write_all(fd, trailer, sizeof trailer) != 0) goto fail;
    step = "truncate"; /* a reused spare may be longer than this snapshot */
    if (reused && ftruncate(fd, (off_t)l.file_bytes) != 0) goto fail;
    step = "sync";
    if (sync && fsync(fd) != 0) goto fail;
    step = "close";
    int rc = close(fd);
    fd = -1;
    if (rc != 0) goto fail;
    step = "rename";
    /* Swapping keeps the snapshot being replaced as the next spare (its
     * blocks and cached pages are what make the next save fast); with no
     * snapshot of that name, or a file system without RENAME_EXCHANGE, a
     * plain rename. */
    if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_EXCHANGE) == 0) {
        if (rename(tmp, spare) != 0) unlink(tmp);
    } else if (rename(tmp, path) != 0) {
        goto fail;
    }
    if (sync) {
        /* the rename is durable only once the directory is */
        int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0 || fsync(dfd) != 0) {
            snprintf(err, errlen, "snapshot '%s' saved but its directory %.300s could not be synced: %s", nm, dir,
                     strerror(errno));
            if (dfd >= 0) close(dfd);
            return -1;
        }
        close(dfd);
    }
    return 0;
fail:;
    int e = errno;
    if (fd >= 0) close(fd);
    unlink(tmp);
    snprintf(err, errlen, "cannot save snapshot '%s' in %.300s (%s): %s", nm, dir, step, strerror(e));
    return -1;
}

/* ---- read ---- */

/* Opens dir/name.nsnap and checks everything the header alone can tell:
 * magic, version, header checksum, fields, and the file's size. The open fd
 * (>= 0), or -1 with err. */
static int open_checked(const char *dir, const char *name, ns_snapshot_meta *m, layout *l, char *err,
                        size_t errlen) {
    if (bad_name(name, err, errlen)) return -1;
    char path[4200];
    if (snap_path(path, sizeof path, dir, name, "", err, errlen) != 0) return -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            snprintf(err, errlen, "snapshot '%s' does not exist", name);
        else
            snprintf(err, errlen, "cannot open snapshot '%s': %s", name, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "snapshot '%s' is not a regular file", name);
        goto fail;
    }
    uint8_t h[HDR_BYTES];
    ssize_t got = pread_full(fd, h, sizeof h, 0);
    if (got < 0) {
        snprintf(err, errlen, "cannot read snapshot '%s': %s", name, strerror(errno));
        goto fail;
    }
    size_t magic_n = got < 8 ? (size_t)got : 8;
    if (memcmp(h, SNAP_MAGIC, magic_n) != 0 || (got == 0 && st.st_size > 0)) {
        snprintf(err, errlen, "snapshot '%s' is not an nstack snapshot (bad magic)", name);
        goto fail;
    }
    if (got >= OFF_VERSION + 4 && get_u32(h + OFF_VERSION) != NS_SNAPSHOT_VERSION) {
        snprintf(err, errlen, "snapshot '%s' is version %" PRIu32 "; this nstack reads version %d", name,
                 get_u32(h + OFF_VERSION), NS_SNAPSHOT_VERSION);
        goto fail;
    }
    if (got < HDR_BYTES) {
        snprintf(err, errlen, "snapshot '%s' is truncated: %lld bytes, shorter than its %d-byte header", name,
                 (long long)st.st_size, HDR_BYTES);
        goto fail;
    }
    const char *why = decode_header(h, m, l);
    if (why) {
        snprintf(err, errlen, "snapshot '%s' is damaged: %s", name, why);
        goto fail;
    }
    uint64_t size = (uint64_t)st.st_size;
    if (size < l->file_bytes) {
        snprintf(err, errlen, "snapshot '%s' is truncated: %" PRIu64 " bytes, the header says %" PRIu64, name, size,
                 l->file_bytes);
        goto fail;
    }
    if (size > l->file_bytes) {
        snprintf(err, errlen, "snapshot '%s' is damaged: %" PRIu64 " bytes, more than the %" PRIu64
                 " its header says", name, size, l->file_bytes);
        goto fail;
    }
    /* the file's name is the snapshot's name, even if it was renamed */
    snprintf(m->name, sizeof m->name, "%s", name);
    m->file_bytes = size;
    return fd;
fail:
    close(fd);
    return -1;
}

int ns_snapshot_read_meta(const char *dir, const char *name, ns_snapshot_meta *meta, char *err, size_t errlen) {
    ns_snapshot_meta m;
    layout l;
    int fd = open_checked(dir, name, &m, &l, err, errlen);
    if (fd < 0) return -1;
    close(fd);
    *meta = m;
    return 0;
}

/* Reads n bytes at off into buf a chunk at a time, checksumming each chunk
 * right after reading it; or, with behind, telling its thread how far the
 * bytes are ready (*at counts them across sections). 0, or -1 (errno set;
 * *short_file for a file that ends early). */
static int read_section(int fd, uint64_t off, void *buf, size_t n, ns_checksum *ck, ns_checksum_behind *behind,
                        uint64_t *at, bool *short_file) {
    uint8_t *p = buf;
    for (size_t done = 0; done < n;) {
        size_t len = n - done < IO_CHUNK ? n - done : IO_CHUNK;
        ssize_t got = pread_full(fd, p + done, len, off + done);
        if (got < 0) return -1;
        if ((size_t)got < len) {
            *short_file = true;
            return -1;
        }
        if (behind) ns_checksum_behind_ready(behind, *at += len);
        else ns_checksum_update(ck, p + done, len);
        done += len;
    }
    return 0;
}

/* A buffer for a large section. Where every first touch of a 4 KB page is a
 * fault (costly under a hypervisor: reading 1 GB into fresh pages took 3 s
 * on a test VM, 0.13 s with huge pages), asking for transparent huge pages
 * makes the read run at memory speed. Freed with free(). */
static void *alloc_section(size_t n) {
    const size_t huge = (size_t)2 << 20;
    if (n < 4 * huge) return malloc(n ? n : 1);
    void *p = NULL;
    if (posix_memalign(&p, huge, n) != 0) return NULL;
#ifdef MADV_HUGEPAGE
    madvise(p, n & ~(huge - 1), MADV_HUGEPAGE); /* advice only: failure is fine */
#endif
    return p;
}

static void abbrev(char *out, size_t outlen, const char *digest) {
    /* "sha256:" and 12 hex digits tell models apart in a message */
    if (strlen(digest) > 19)
        snprintf(out, outlen, "%.19s...", digest);
    else
        snprintf(out, outlen, "%s", digest);
}

struct ns_snapshot_reader {
    int fd;
    char name[65];
    ns_snapshot_meta meta;
    layout l;
    ns_checksum ck; /* over tokens and messages so far */
};

void ns_snapshot_close(ns_snapshot_reader *rd) {
    if (!rd) return;
    if (rd->fd >= 0) close(rd->fd);
    free(rd);
}

static int read_failed(const ns_snapshot_reader *rd, bool short_file, char *err, size_t errlen) {
    if (short_file)
        snprintf(err, errlen, "snapshot '%s' is truncated: it shrank while being read", rd->name);
    else
        snprintf(err, errlen, "cannot read snapshot '%s': %s", rd->name, strerror(errno));
    return -1;
}

ns_snapshot_reader *ns_snapshot_open(const char *dir, const char *name, const char *want_digest,
                                     const char *want_fingerprint, ns_snapshot_meta *meta, int32_t **tokens,
                                     char **messages, char *err, size_t errlen) {
    *tokens = NULL;
    *messages = NULL;
    ns_snapshot_reader *rd = calloc(1, sizeof *rd);
    if (!rd) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    ns_snapshot_meta *m = &rd->meta;
    rd->fd = open_checked(dir, name, m, &rd->l, err, errlen);
    if (rd->fd < 0) goto fail;
    snprintf(rd->name, sizeof rd->name, "%s", m->name);
    if (want_digest && want_digest[0] && m->model_digest[0] && strcmp(want_digest, m->model_digest) != 0) {
        char have[32], want[32];
        abbrev(have, sizeof have, m->model_digest);
        abbrev(want, sizeof want, want_digest);
        snprintf(err, errlen, "snapshot '%s' was saved from model %s (%s), not the loaded %s", name, have, m->model,
                 want);
        goto fail;
    }
    if (want_fingerprint && strcmp(want_fingerprint, m->fingerprint) != 0) {
        snprintf(err, errlen, "snapshot '%s' has KV layout '%s' but the loaded model has '%s'", name, m->fingerprint,
                 want_fingerprint);
        goto fail;
    }
    if ((size_t)m->kv_bytes != m->kv_bytes) {
        snprintf(err, errlen, "snapshot '%s' is too large for this machine", name);
        goto fail;
    }
#ifdef POSIX_FADV_SEQUENTIAL
    posix_fadvise(rd->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
#endif
    size_t n_tok_bytes = (size_t)m->n_tokens * 4;
    int32_t *t = alloc_section(n_tok_bytes);
    char *msg = m->messages_len ? alloc_section((size_t)m->messages_len + 1) : NULL;
    *tokens = t;
    *messages = msg;
    if (!t || (m->messages_len && !msg)) {
        snprintf(err, errlen, "snapshot '%s': out of memory for %" PRIu64 " bytes", name, m->file_bytes);
        goto fail;
    }
    ns_checksum_init(&rd->ck, BODY_SEED);
    bool short_file = false;
    if (read_section(rd->fd, rd->l.tokens_at, t, n_tok_bytes, &rd->ck, NULL, NULL, &short_file) != 0 ||
        read_section(rd->fd, rd->l.messages_at, msg, (size_t)m->messages_len, &rd->ck, NULL, NULL, &short_file) !=
            0) {
        read_failed(rd, short_file, err, errlen);
        goto fail;
    }
    if (!host_is_little_endian())
        for (int32_t i = 0; i < m->n_tokens; i++) t[i] = (int32_t)get_u32((const uint8_t *)&t[i]);
    if (msg) msg[m->messages_len] = '\0';
    *meta = *m;
    return rd;
fail:
    free(*tokens);
    free(*messages);
    *tokens = NULL;
    *messages = NULL;
    ns_snapshot_close(rd);
    return NULL;
}

int ns_snapshot_read_kv(ns_snapshot_reader *rd, const struct iovec *kv, int n_kv, char *err, size_t errlen) {
    uint64_t total = 0;
    for (int i = 0; i < n_kv; i++) total += kv[i].iov_len;
    if (total != rd->meta.kv_bytes) {
        snprintf(err, errlen, "snapshot '%s' holds %" PRIu64 " bytes of KV, not the %" PRIu64 " expected", rd->name,
                 rd->meta.kv_bytes, total);
        return -1;
    }
    bool short_file = false;
    uint64_t at = rd->l.kv_at, ready = 0;
    ns_checksum_behind *behind = total >= BEHIND_MIN ? ns_checksum_behind_start(&rd->ck, kv, n_kv, false) : NULL;
    for (int i = 0; i < n_kv; i++) {
        if (read_section(rd->fd, at, kv[i].iov_base, kv[i].iov_len, &rd->ck, behind, &ready, &short_file) != 0) {
            int e = errno;
            if (behind) ns_checksum_behind_finish(behind, &rd->ck, true);
            errno = e;
            return read_failed(rd, short_file, err, errlen);
        }
        at += kv[i].iov_len;
    }
    if (behind) ns_checksum_behind_finish(behind, &rd->ck, false);
    uint8_t trailer[TRAILER_BYTES];
    ssize_t got = pread_full(rd->fd, trailer, sizeof trailer, rd->l.trailer_at);
    if (got != (ssize_t)sizeof trailer) {
        snprintf(err, errlen, "snapshot '%s' is truncated: no body checksum", rd->name);
        return -1;
    }
    if (get_u64(trailer) != ns_checksum_final(&rd->ck)) {
        snprintf(err, errlen, "snapshot '%s' is damaged: body checksum mismatch", rd->name);
        return -1;
    }
    return 0;
}

int ns_snapshot_read(const char *dir, const char *name, const char *want_digest, const char *want_fingerprint,
                     ns_snapshot_meta *meta, int32_t **tokens, char **messages, void **kv, char *err,
                     size_t errlen) {
    *kv = NULL;
    ns_snapshot_meta m;
    ns_snapshot_reader *rd =
        ns_snapshot_open(dir, name, want_digest, want_fingerprint, &m, tokens, messages, err, errlen);
    if (!rd) return -1;
    void *k = alloc_section((size_t)m.kv_bytes);
    struct iovec one = {k, (size_t)m.kv_bytes};
    if (!k) snprintf(err, errlen, "snapshot '%s': out of memory for %" PRIu64 " bytes", name, m.file_bytes);
    if (!k || ns_snapshot_read_kv(rd, &one, 1, err, errlen) != 0) {
        ns_snapshot_close(rd);
        free(k);
        free(*tokens);
        free(*messages);
        *tokens = NULL;
        *messages = NULL;
        return -1;
    }
    ns_snapshot_close(rd);
    *meta = m;
    *kv = k;
    return 0;
}

/* ---- list and delete ---- */

static int by_name(const void *a, const void *b) {
    return strcmp(((const ns_snapshot_meta *)a)->name, ((const ns_snapshot_meta *)b)->name);
}

int ns_snapshot_list(const char *dir, ns_snapshot_meta **out, int *n, char *err, size_t errlen) {
    *out = NULL;
    *n = 0;
    int cap = 8, count = 0;
    ns_snapshot_meta *list = malloc((size_t)cap * sizeof *list);
    if (!list) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    DIR *d = dir ? opendir(dir) : NULL;
    if (!d) {
        if (dir && errno == ENOENT) { /* nothing saved yet */
            *out = list;
            return 0;
        }
        snprintf(err, errlen, "cannot list snapshots in %.300s: %s", dir ? dir : "(none)", strerror(errno));
        free(list);
        return -1;
    }
    const size_t ext = strlen(NS_SNAPSHOT_EXT);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len <= ext || len - ext > 64 || strcmp(e->d_name + len - ext, NS_SNAPSHOT_EXT) != 0) continue;
        char name[65];
        memcpy(name, e->d_name, len - ext);
        name[len - ext] = '\0';
        if (!ns_snapshot_name_ok(name)) continue;
        char why[512];
        if (ns_snapshot_read_meta(dir, name, &list[count], why, sizeof why) != 0) {
            for (char *p = why; *p; p++)
                if (*p == '"') *p = '\'';
            ns_log_warn("snapshot", "skipping a snapshot that cannot be read", "name=%s error=\"%s\"", name, why);
            continue;
        }
        if (++count == cap) {
            ns_snapshot_meta *grown = cap < (1 << 20) ? realloc(list, (size_t)cap * 2 * sizeof *list) : NULL;
            if (!grown) {
                closedir(d);
                free(list);
                snprintf(err, errlen, "out of memory listing snapshots");
                return -1;
            }
            list = grown;
            cap *= 2;
        }
    }
    closedir(d);
    qsort(list, (size_t)count, sizeof *list, by_name);
    *out = list;
    *n = count;
    return 0;
}

int ns_snapshot_delete(const char *dir, const char *name, bool *missing, char *err, size_t errlen) {
    if (missing) *missing = false;
    if (bad_name(name, err, errlen)) return -1;
    char path[4200];
    if (snap_path(path, sizeof path, dir, name, "", err, errlen) != 0) return -1;
    if (unlink(path) == 0) {
        char spare[4200];
        if (spare_path(spare, sizeof spare, dir) == 0) unlink(spare);
        return 0;
    }
    if (errno == ENOENT) {
        if (missing) *missing = true;
        snprintf(err, errlen, "snapshot '%s' does not exist", name);
    } else {
        snprintf(err, errlen, "cannot delete snapshot '%s': %s", name, strerror(errno));
    }
    return -1;
}
