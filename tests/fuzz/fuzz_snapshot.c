/* libFuzzer harness for the snapshot reader: any file must either be
 * refused with a one-line message or read back into buffers that match its
 * header and the expectations given.
 *
 * Random bytes almost never carry a right checksum, so each input is also
 * tried with its header checksum recomputed, and then with the body checksum
 * too: that is how a hostile file looks, and it takes the fuzzer past the
 * checksums into the field checks behind them. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/snapshot.h"
#include "util/checksum.h"

/* The format, as snapshot.c documents it. */
#define HDR_BYTES 768
#define HDR_SUM_AT 760
#define HDR_SEED 0x6e736e6170686472ull
#define BODY_SEED 0x6e736e6170626479ull

#define WANT_DIGEST "sha256:0000000000000000000000000000000000000000000000000000000000000000"
#define WANT_FPRINT "llama layers=2 kv_dim=8 kv=f16"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64];
static volatile uint32_t sink;
static char path[128];

static void cleanup(void) {
    unlink(path);
    rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    /* every input is written to a file: on tmpfs that costs little, while on
     * ext4 rewriting a file forces a flush each time (35 times slower) */
    const char *tmp = getenv("TMPDIR");
    if (access("/dev/shm", W_OK) == 0)
        tmp = "/dev/shm";
    else if (!tmp || !*tmp || strlen(tmp) > 32)
        tmp = "/tmp";
    snprintf(dir, sizeof dir, "%s/fuzz_snapshot_XXXXXX", tmp);
    if (!mkdtemp(dir)) abort();
    snprintf(path, sizeof path, "%s/f" NS_SNAPSHOT_EXT, dir);
    atexit(cleanup);
    return 0;
}

static void put_u64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t sum(uint64_t seed, const uint8_t *p, size_t n) {
    ns_checksum c;
    ns_checksum_init(&c, seed);
    ns_checksum_update(&c, p, n);
    return ns_checksum_final(&c);
}

static void save(const uint8_t *data, size_t size) {
    unlink(path);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (fd < 0) abort();
    if (size && write(fd, data, size) != (ssize_t)size) abort();
    close(fd);
}

static void check_err(const char *err, size_t errlen) {
    if (err[0] == 0 || memchr(err, 0, errlen) == NULL || strchr(err, '\n')) abort();
}

static void read_one(size_t size, const char *want_digest, const char *want_fp, bool meta_ok) {
    ns_snapshot_meta m;
    int32_t *tokens;
    char *messages;
    void *kv;
    char err[512];
    err[0] = 'x';
    if (ns_snapshot_read(dir, "f", want_digest, want_fp, &m, &tokens, &messages, &kv, err, sizeof err) != 0) {
        check_err(err, sizeof err);
        if (tokens || messages || kv) abort();
        return;
    }
    if (!meta_ok || m.file_bytes != size || m.n_tokens < 0 || !tokens || !kv) abort();
    if (want_fp && strcmp(m.fingerprint, want_fp) != 0) abort();
    if (want_digest && *want_digest && *m.model_digest && strcmp(m.model_digest, want_digest) != 0) abort();
    if (HDR_BYTES + 4 * (uint64_t)m.n_tokens + m.messages_len + m.kv_bytes + 8 != size) abort();
    /* every byte claimed is there (ASan checks the bounds) */
    uint32_t acc = 0;
    for (int32_t i = 0; i < m.n_tokens; i++) acc += (uint32_t)tokens[i];
    if (m.messages_len) {
        if (!messages || messages[m.messages_len] != 0) abort();
        for (uint64_t i = 0; i < m.messages_len; i++) acc += (uint8_t)messages[i];
    } else if (messages) {
        abort();
    }
    for (uint64_t i = 0; i < m.kv_bytes; i++) acc += ((const uint8_t *)kv)[i];
    sink = acc;
    free(tokens);
    free(messages);
    free(kv);
}

static void try_file(const uint8_t *data, size_t size) {
    save(data, size);
    ns_snapshot_meta m;
    char err[512];
    err[0] = 'x';
    bool meta_ok = ns_snapshot_read_meta(dir, "f", &m, err, sizeof err) == 0;
    if (!meta_ok) check_err(err, sizeof err);
    else if (m.file_bytes != size || strcmp(m.name, "f") != 0) abort();
    read_one(size, NULL, NULL, meta_ok);
    read_one(size, WANT_DIGEST, WANT_FPRINT, meta_ok);
    read_one(size, "", "", meta_ok);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    try_file(data, size);
    if (size < HDR_BYTES) return 0;
    uint8_t *b = malloc(size);
    if (!b) return 0;
    memcpy(b, data, size);
    put_u64(b + HDR_SUM_AT, sum(HDR_SEED, b, HDR_SUM_AT));
    try_file(b, size);
    if (size >= HDR_BYTES + 8) {
        put_u64(b + size - 8, sum(BODY_SEED, b + HDR_BYTES, size - HDR_BYTES - 8));
        try_file(b, size);
    }
    free(b);
    return 0;
}
