/* Snapshot files: round trips, every kind of damage refused with its own
 * sentence, foreign snapshots, hostile headers, names, listing, deleting,
 * and the directory. Each test works in its own mkdtemp folder. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/snapshot.h"
#include "util/checksum.h"

/* The on-disk format as snapshot.c documents it; a change here is a format
 * change and needs a new NS_SNAPSHOT_VERSION. */
#define HDR_BYTES 768
#define HDR_SUM_AT 760
#define HDR_SEED 0x6e736e6170686472ull
#define OFF_VERSION 8
#define OFF_N_TOKENS 16
#define OFF_MESSAGES_LEN 32
#define OFF_KV_BYTES 40
#define OFF_KV_AT 64
#define OFF_TRAILER_AT 72
#define OFF_FILE_BYTES 80
#define OFF_NAME 88
#define OFF_FINGERPRINT 552

static const char DIGEST_A[] = "sha256:aaaaaaaaaaaa1111111111111111111111111111111111111111111111111111";
static const char DIGEST_B[] = "sha256:bbbbbbbbbbbb2222222222222222222222222222222222222222222222222222";
static const char FPRINT[] = "llama layers=5 kv_dim=64 kv=f16";

typedef struct {
    char dir[64];
} fixture;

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/ns_snap_XXXXXX");
    if (!mkdtemp(f->dir)) return -1;
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    DIR *d = opendir(f->dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            char p[512];
            snprintf(p, sizeof p, "%s/%s", f->dir, e->d_name);
            if (unlink(p) != 0) rmdir(p);
        }
        closedir(d);
    }
    chmod(f->dir, 0755);
    rmdir(f->dir);
    free(f);
    return 0;
}

/* ---- helpers ---- */

static ns_snapshot_meta make_meta(const char *name, int n_tokens, size_t messages_len, size_t kv_bytes) {
    ns_snapshot_meta m;
    memset(&m, 0, sizeof m);
    snprintf(m.name, sizeof m.name, "%s", name);
    snprintf(m.session, sizeof m.session, "chat-1");
    snprintf(m.model, sizeof m.model, "stories:260k");
    snprintf(m.model_digest, sizeof m.model_digest, "%s", DIGEST_A);
    snprintf(m.fingerprint, sizeof m.fingerprint, "%s", FPRINT);
    m.n_keep = 4;
    m.created = 1764000000123456789LL;
    m.n_tokens = n_tokens;
    m.messages_len = messages_len;
    m.kv_bytes = kv_bytes;
    return m;
}

typedef struct {
    ns_snapshot_meta meta;
    int32_t *tokens;
    char *messages;
    uint8_t *kv;
} snap_data;

static snap_data make_data(const char *name, int n_tokens, const char *messages, size_t kv_bytes) {
    snap_data s;
    s.meta = make_meta(name, n_tokens, messages ? strlen(messages) : 0, kv_bytes);
    s.tokens = malloc((size_t)n_tokens * 4 + 1);
    for (int i = 0; i < n_tokens; i++) s.tokens[i] = (int32_t)((i * 2654435761u) % 32000u) - (i == 3 ? 40000 : 0);
    s.messages = messages ? strdup(messages) : NULL;
    s.kv = malloc(kv_bytes + 1);
    for (size_t i = 0; i < kv_bytes; i++) s.kv[i] = (uint8_t)(i * 131u + (i >> 9));
    return s;
}

static void free_data(snap_data *s) {
    free(s->tokens);
    free(s->messages);
    free(s->kv);
}

static void write_ok(const char *dir, const snap_data *s, bool sync) {
    char err[512] = "";
    int rc = ns_snapshot_write(dir, &s->meta, s->tokens, s->messages, s->kv, sync, err, sizeof err);
    if (rc != 0) fail_msg("write: %s", err);
}

static void snap_file(char *out, size_t outlen, const char *dir, const char *name) {
    snprintf(out, outlen, "%s/%s" NS_SNAPSHOT_EXT, dir, name);
}

static long long file_size(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

static void read_back_equal(const char *dir, const snap_data *s) {
    ns_snapshot_meta m;
    int32_t *tokens = (int32_t *)1;
    char *messages = (char *)1;
    void *kv = (void *)1;
    char err[512] = "";
    int rc = ns_snapshot_read(dir, s->meta.name, DIGEST_A, FPRINT, &m, &tokens, &messages, &kv, err, sizeof err);
    if (rc != 0) fail_msg("read: %s", err);
    assert_string_equal(m.name, s->meta.name);
    assert_string_equal(m.session, s->meta.session);
    assert_string_equal(m.model, s->meta.model);
    assert_string_equal(m.model_digest, s->meta.model_digest);
    assert_string_equal(m.fingerprint, s->meta.fingerprint);
    assert_int_equal(m.n_keep, s->meta.n_keep);
    assert_int_equal(m.created, s->meta.created);
    assert_int_equal(m.n_tokens, s->meta.n_tokens);
    assert_int_equal(m.messages_len, s->meta.messages_len);
    assert_int_equal(m.kv_bytes, s->meta.kv_bytes);
    char path[512];
    snap_file(path, sizeof path, dir, s->meta.name);
    assert_int_equal(m.file_bytes, file_size(path));
    assert_int_equal(m.file_bytes, HDR_BYTES + 4 * (uint64_t)s->meta.n_tokens + s->meta.messages_len +
                                       s->meta.kv_bytes + 8);
    assert_non_null(tokens);
    assert_non_null(kv);
    if (s->meta.n_tokens) assert_memory_equal(tokens, s->tokens, (size_t)s->meta.n_tokens * 4);
    if (s->meta.kv_bytes) assert_memory_equal(kv, s->kv, s->meta.kv_bytes);
    if (s->meta.messages_len) {
        assert_non_null(messages);
        assert_string_equal(messages, s->messages);
    } else {
        assert_null(messages);
    }
    ns_snapshot_meta hm;
    assert_int_equal(ns_snapshot_read_meta(dir, s->meta.name, &hm, err, sizeof err), 0);
    assert_memory_equal(&hm, &m, sizeof m);
    free(tokens);
    free(messages);
    free(kv);
}

/* The read must fail with a message containing want, and set no output. */
static void read_fails(const char *dir, const char *name, const char *want_digest, const char *want_fp,
                       const char *want) {
    ns_snapshot_meta m;
    int32_t *tokens = (int32_t *)1;
    char *messages = (char *)1;
    void *kv = (void *)1;
    char err[512] = "";
    int rc = ns_snapshot_read(dir, name, want_digest, want_fp, &m, &tokens, &messages, &kv, err, sizeof err);
    if (rc == 0) fail_msg("read of '%s' succeeded; expected: %s", name, want);
    if (!strstr(err, want)) fail_msg("read of '%s': got \"%s\", expected \"%s\"", name, err, want);
    assert_null(tokens);
    assert_null(messages);
    assert_null(kv);
}

static void meta_fails(const char *dir, const char *name, const char *want) {
    ns_snapshot_meta m;
    char err[512] = "";
    if (ns_snapshot_read_meta(dir, name, &m, err, sizeof err) == 0) fail_msg("read_meta of '%s' succeeded", name);
    if (!strstr(err, want)) fail_msg("read_meta of '%s': got \"%s\", expected \"%s\"", name, err, want);
}

static uint8_t *load(const char *path, size_t *n) {
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    long len = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)len + 1);
    assert_int_equal(fread(b, 1, (size_t)len, fp), (size_t)len);
    fclose(fp);
    *n = (size_t)len;
    return b;
}

/* Writes s into dir and returns the file's bytes (*n of them); path gets
 * the file's name, for the tests that then damage it. */
static uint8_t *write_and_load(const char *dir, const snap_data *s, char *path, size_t pathlen, size_t *n) {
    write_ok(dir, s, false);
    snap_file(path, pathlen, dir, s->meta.name);
    return load(path, n);
}

static void store(const char *path, const uint8_t *b, size_t n) {
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(b, 1, n, fp), n);
    fclose(fp);
}

static void put_u32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void put_u64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* Makes a header edited by a test look intact, as a hostile file would. */
static void reseal_header(uint8_t *b) {
    ns_checksum c;
    ns_checksum_init(&c, HDR_SEED);
    ns_checksum_update(&c, b, HDR_SUM_AT);
    put_u64(b + HDR_SUM_AT, ns_checksum_final(&c));
}

static int count_files(const char *dir, const char *suffix) {
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name), sl = strlen(suffix);
        if (e->d_name[0] != '.' && len >= sl && !strcmp(e->d_name + len - sl, suffix)) n++;
    }
    closedir(d);
    return n;
}

/* ---- round trips ---- */

static void test_round_trip_with_messages(void **state) {
    fixture *f = *state;
    snap_data s = make_data("conv-1", 1000, "[{\"role\":\"user\",\"content\":\"hi \\u00e9\"}]", 100000);
    write_ok(f->dir, &s, false);
    read_back_equal(f->dir, &s);
    assert_int_equal(count_files(f->dir, ".tmp"), 0);
    assert_int_equal(count_files(f->dir, ""), 1);
    free_data(&s);
}

/* KV in pieces (as the cache gives it) makes the same file, and reads back
 * into pieces cut another way. */
static void test_pieces(void **state) {
    fixture *f = *state;
    snap_data s = make_data("whole", 50, "[]", 10000);
    write_ok(f->dir, &s, false);
    snap_data p = make_data("pieces", 50, "[]", 10000);
    p.meta.created = s.meta.created;
    struct iovec in[3] = {{p.kv, 24}, {p.kv + 24, 0}, {p.kv + 24, 10000 - 24}};
    char err[512];
    assert_int_equal(ns_snapshot_write_iov(f->dir, &p.meta, p.tokens, p.messages, in, 3, false, err, sizeof err), 0);
    char a[4300], b[4300];
    snap_file(a, sizeof a, f->dir, "whole");
    snap_file(b, sizeof b, f->dir, "pieces");
    size_t na, nb;
    uint8_t *fa = load(a, &na), *fb = load(b, &nb);
    assert_int_equal(na, nb);
    assert_true(na > 10000);
    free(fa);
    free(fb);
    struct iovec short_in[1] = {{p.kv, 9999}};
    assert_int_equal(ns_snapshot_write_iov(f->dir, &p.meta, p.tokens, p.messages, short_in, 1, false, err, sizeof err),
                     -1);

    ns_snapshot_meta m;
    int32_t *tokens;
    char *messages;
    ns_snapshot_reader *rd = ns_snapshot_open(f->dir, "pieces", NULL, NULL, &m, &tokens, &messages, err, sizeof err);
    assert_non_null(rd);
    assert_int_equal(m.n_tokens, 50);
    assert_memory_equal(tokens, p.tokens, 50 * 4);
    assert_string_equal(messages, "[]");
    uint8_t *out = malloc(10000);
    struct iovec wrong[1] = {{out, 5000}};
    assert_int_equal(ns_snapshot_read_kv(rd, wrong, 1, err, sizeof err), -1);
    assert_non_null(strstr(err, "bytes of KV"));
    struct iovec back[2] = {{out, 7}, {out + 7, 10000 - 7}};
    assert_int_equal(ns_snapshot_read_kv(rd, back, 2, err, sizeof err), 0);
    assert_memory_equal(out, p.kv, 10000);
    ns_snapshot_close(rd);
    free(tokens);
    free(messages);
    free(out);
    free_data(&s);
    free_data(&p);
}

static void test_round_trip_without_messages(void **state) {
    fixture *f = *state;
    snap_data s = make_data("plain", 17, NULL, 4096);
    write_ok(f->dir, &s, false);
    read_back_equal(f->dir, &s);
    free_data(&s);
}

static void test_round_trip_empty(void **state) {
    fixture *f = *state;
    snap_data s = make_data("empty", 0, NULL, 0);
    snprintf(s.meta.session, sizeof s.meta.session, "%s", "");
    snprintf(s.meta.model_digest, sizeof s.meta.model_digest, "%s", "");
    write_ok(f->dir, &s, true);
    read_back_equal(f->dir, &s);
    free_data(&s);
    /* NULL data is fine for empty sections */
    ns_snapshot_meta m = make_meta("nulls", 0, 0, 0);
    char err[512];
    assert_int_equal(ns_snapshot_write(f->dir, &m, NULL, NULL, NULL, false, err, sizeof err), 0);
}

/* Many tokens and a KV image spanning several I/O chunks, not a multiple of
 * any of them; saved with sync. */
static void test_round_trip_large(void **state) {
    fixture *f = *state;
    snap_data s = make_data("big.one_2", 300001, "[]", (size_t)9 * 1024 * 1024 + 13);
    write_ok(f->dir, &s, true);
    read_back_equal(f->dir, &s);
    assert_int_equal(count_files(f->dir, ".tmp"), 0);
    free_data(&s);
}

/* A KV large enough to be checksummed on a second thread (BEHIND_MIN) and
 * in pieces: one flipped byte deep inside it is still caught on reading. */
static void test_large_damage_caught(void **state) {
    fixture *f = *state;
    snap_data s = make_data("big", 1000, NULL, (size_t)6 * 1024 * 1024 + 3);
    struct iovec pieces[3] = {{s.kv, 1000}, {(uint8_t *)s.kv + 1000, 5 * 1024 * 1024},
                              {(uint8_t *)s.kv + 1000 + 5 * 1024 * 1024, s.meta.kv_bytes - 1000 - 5 * 1024 * 1024}};
    char err[512] = "", path[512];
    assert_int_equal(ns_snapshot_write_iov(f->dir, &s.meta, s.tokens, s.messages, pieces, 3, false, err, sizeof err),
                     0);
    read_back_equal(f->dir, &s);
    snap_file(path, sizeof path, f->dir, "big");
    size_t n;
    uint8_t *b = load(path, &n);
    b[n - 8 - 2 * 1024 * 1024] ^= 0x10;
    store(path, b, n);
    free(b);
    read_fails(f->dir, "big", NULL, NULL, "snapshot 'big' is damaged: body checksum mismatch");
    free_data(&s);
}

static void test_overwrite_replaces(void **state) {
    fixture *f = *state;
    snap_data a = make_data("same", 50, "[1]", 1000);
    snap_data b = make_data("same", 7, NULL, 333);
    b.meta.n_keep = 2;
    write_ok(f->dir, &a, false);
    write_ok(f->dir, &b, false);
    read_back_equal(f->dir, &b);
    assert_int_equal(count_files(f->dir, ""), 1);
    free_data(&a);
    free_data(&b);
}

/* The snapshot a save replaces becomes the directory's spare file and the
 * next save writes into it (rewriting blocks is several times faster than
 * allocating them); a longer spare is cut to the new snapshot's size. */
static void test_spare_file(void **state) {
    fixture *f = *state;
    char spare[512];
    snprintf(spare, sizeof spare, "%s/.spare" NS_SNAPSHOT_EXT, f->dir);
    snap_data big = make_data("same", 500, "[1]", 100000);
    snap_data small = make_data("same", 7, NULL, 333);
    snap_data other = make_data("other", 20, "[]", 5000);
    write_ok(f->dir, &big, false);
    assert_int_equal(file_size(spare), -1);
    write_ok(f->dir, &small, false);
    read_back_equal(f->dir, &small);
    char path[512];
    snap_file(path, sizeof path, f->dir, "same");
    long long small_bytes = file_size(path);
    assert_true(file_size(spare) > 100000);
    write_ok(f->dir, &small, false); /* into the big file: cut to size */
    read_back_equal(f->dir, &small);
    assert_int_equal(file_size(spare), small_bytes);
    write_ok(f->dir, &big, false); /* into the small file: grown */
    read_back_equal(f->dir, &big);
    assert_int_equal(file_size(spare), small_bytes);
    write_ok(f->dir, &other, false); /* a new name takes the spare for good */
    read_back_equal(f->dir, &other);
    assert_int_equal(file_size(spare), -1);
    write_ok(f->dir, &other, false);
    assert_true(file_size(spare) > 5000);
    assert_int_equal(count_files(f->dir, NS_SNAPSHOT_EXT), 2);

    /* deleting any snapshot deletes the spare (it holds an older snapshot) */
    char err[512];
    assert_int_equal(ns_snapshot_delete(f->dir, "same", NULL, err, sizeof err), 0);
    assert_int_equal(file_size(spare), -1);
    read_back_equal(f->dir, &other);
    free_data(&big);
    free_data(&small);
    free_data(&other);
}

/* A save's temporary file is named after its process; one left by a process
 * that died mid-save is removed by the next save that starts a new file, and
 * one of a live process is left alone. */
static void test_stale_temps_swept(void **state) {
    fixture *f = *state;
    char dead[512], live[512], plain[512];
    /* above any pid_max Linux allows (2^22) */
    snprintf(dead, sizeof dead, "%s/.99999999-0-x" NS_SNAPSHOT_EXT ".tmp", f->dir);
    snprintf(live, sizeof live, "%s/.%ld-0-x" NS_SNAPSHOT_EXT ".tmp", f->dir, (long)getppid());
    snprintf(plain, sizeof plain, "%s/.notes.tmp", f->dir);
    store(dead, (const uint8_t *)"x", 1);
    store(live, (const uint8_t *)"x", 1);
    store(plain, (const uint8_t *)"x", 1);
    snap_data s = make_data("fresh", 3, NULL, 64);
    write_ok(f->dir, &s, false);
    assert_int_equal(file_size(dead), -1);
    assert_int_equal(file_size(live), 1);
    assert_int_equal(file_size(plain), 1);
    read_back_equal(f->dir, &s);
    free_data(&s);
}

/* ---- damage ---- */

static void test_flipped_byte_in_each_section(void **state) {
    fixture *f = *state;
    snap_data s = make_data("flip", 100, "[\"x\"]", 5000);
    char path[512];
    size_t n;
    uint8_t *orig = write_and_load(f->dir, &s, path, sizeof path, &n);
    const struct {
        size_t at;
        const char *want;
        bool header;
    } cases[] = {
        {OFF_N_TOKENS, "is damaged: header checksum mismatch", true},
        {OFF_NAME + 1, "is damaged: header checksum mismatch", true},
        {700, "is damaged: header checksum mismatch", true}, /* padding */
        {HDR_SUM_AT + 3, "is damaged: header checksum mismatch", true},
        {HDR_BYTES + 5, "is damaged: body checksum mismatch", false},       /* tokens */
        {HDR_BYTES + 400 + 2, "is damaged: body checksum mismatch", false}, /* messages */
        {HDR_BYTES + 405 + 4000, "is damaged: body checksum mismatch", false}, /* kv */
        {n - 8, "is damaged: body checksum mismatch", false},               /* trailer */
        {n - 1, "is damaged: body checksum mismatch", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t *b = malloc(n);
        memcpy(b, orig, n);
        b[cases[i].at] ^= 0x10;
        store(path, b, n);
        read_fails(f->dir, "flip", NULL, NULL, cases[i].want);
        read_fails(f->dir, "flip", DIGEST_A, FPRINT, cases[i].want);
        if (cases[i].header) {
            meta_fails(f->dir, "flip", cases[i].want);
        } else {
            ns_snapshot_meta m;
            char err[512];
            assert_int_equal(ns_snapshot_read_meta(f->dir, "flip", &m, err, sizeof err), 0);
        }
        free(b);
    }
    free(orig);
    free_data(&s);
}

static void test_truncated_and_appended(void **state) {
    fixture *f = *state;
    snap_data s = make_data("cut", 64, "[]", 3000);
    char path[512];
    size_t n;
    uint8_t *orig = write_and_load(f->dir, &s, path, sizeof path, &n);
    char want[200];
    const size_t cuts[] = {0, 5, 11, 100, HDR_BYTES - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        store(path, orig, cuts[i]);
        snprintf(want, sizeof want, "snapshot 'cut' is truncated: %zu bytes, shorter than its %d-byte header",
                 cuts[i], HDR_BYTES);
        read_fails(f->dir, "cut", NULL, NULL, want);
        meta_fails(f->dir, "cut", want);
    }
    const size_t body_cuts[] = {HDR_BYTES, HDR_BYTES + 10, HDR_BYTES + 300, n - 9, n - 1};
    for (size_t i = 0; i < sizeof body_cuts / sizeof body_cuts[0]; i++) {
        store(path, orig, body_cuts[i]);
        snprintf(want, sizeof want, "snapshot 'cut' is truncated: %zu bytes, the header says %zu", body_cuts[i], n);
        read_fails(f->dir, "cut", NULL, NULL, want);
        meta_fails(f->dir, "cut", want);
    }
    uint8_t *longer = malloc(n + 100);
    memcpy(longer, orig, n);
    memset(longer + n, 0, 100);
    store(path, longer, n + 1);
    snprintf(want, sizeof want, "snapshot 'cut' is damaged: %zu bytes, more than the %zu its header says", n + 1, n);
    read_fails(f->dir, "cut", NULL, NULL, want);
    meta_fails(f->dir, "cut", want);
    store(path, longer, n + 100);
    read_fails(f->dir, "cut", NULL, NULL, "more than the");
    store(path, orig, n);
    read_back_equal(f->dir, &s);
    free(longer);
    free(orig);
    free_data(&s);
}

static void test_wrong_version_and_magic(void **state) {
    fixture *f = *state;
    snap_data s = make_data("ver", 3, NULL, 10);
    char path[512];
    size_t n;
    uint8_t *orig = write_and_load(f->dir, &s, path, sizeof path, &n);
    uint8_t *b = malloc(n);

    memcpy(b, orig, n);
    put_u32(b + OFF_VERSION, 7);
    store(path, b, n);
    read_fails(f->dir, "ver", NULL, NULL, "snapshot 'ver' is version 7; this nstack reads version 1");
    meta_fails(f->dir, "ver", "is version 7; this nstack reads version 1");
    /* a later version may be any size: the version is told before the size */
    store(path, b, 40);
    meta_fails(f->dir, "ver", "is version 7");
    put_u32(b + OFF_VERSION, 0);
    store(path, b, n);
    meta_fails(f->dir, "ver", "is version 0;");

    memcpy(b, orig, n);
    b[0] = 'X';
    store(path, b, n);
    read_fails(f->dir, "ver", NULL, NULL, "snapshot 'ver' is not an nstack snapshot (bad magic)");
    store(path, (const uint8_t *)"{\"not\": \"a snapshot\"}\n", 22);
    meta_fails(f->dir, "ver", "bad magic");
    store(path, (const uint8_t *)"NSTX", 4);
    meta_fails(f->dir, "ver", "bad magic");
    free(b);
    free(orig);
    free_data(&s);
}

/* Headers whose checksum is right but whose fields lie: refused before any
 * buffer is sized from them (under ASan a terabyte malloc would abort). */
static void test_hostile_headers(void **state) {
    fixture *f = *state;
    snap_data s = make_data("evil", 10, "[]", 100);
    char path[512];
    size_t n;
    uint8_t *orig = write_and_load(f->dir, &s, path, sizeof path, &n);
    uint8_t *b = malloc(n);
    uint8_t *h = b;

    memcpy(b, orig, n);
    put_u32(h + OFF_N_TOKENS, 0x7fffffff);
    reseal_header(h);
    store(path, b, n);
    read_fails(f->dir, "evil", NULL, NULL, "is damaged: bad token count");

    memcpy(b, orig, n);
    put_u32(h + OFF_N_TOKENS, 0xffffffff); /* -1 */
    reseal_header(h);
    store(path, b, n);
    read_fails(f->dir, "evil", NULL, NULL, "is damaged: bad token count");

    memcpy(b, orig, n);
    put_u64(h + OFF_KV_BYTES, UINT64_MAX - 100);
    reseal_header(h);
    store(path, b, n);
    read_fails(f->dir, "evil", NULL, NULL, "is damaged: section lengths overflow");

    memcpy(b, orig, n);
    put_u64(h + OFF_MESSAGES_LEN, (uint64_t)1 << 40);
    reseal_header(h);
    store(path, b, n);
    read_fails(f->dir, "evil", NULL, NULL, "is damaged: bad messages length");

    /* lengths and offsets that agree with each other, but not with the file */
    memcpy(b, orig, n);
    uint64_t kv = (uint64_t)1 << 40, kv_at = HDR_BYTES + 40 + 2;
    put_u64(h + OFF_KV_BYTES, kv);
    put_u64(h + OFF_TRAILER_AT, kv_at + kv);
    put_u64(h + OFF_FILE_BYTES, kv_at + kv + 8);
    reseal_header(h);
    store(path, b, n);
    char want[200];
    snprintf(want, sizeof want, "is truncated: %zu bytes, the header says %llu", n,
             (unsigned long long)(kv_at + kv + 8));
    read_fails(f->dir, "evil", NULL, NULL, want);

    /* offsets past the end or out of order */
    memcpy(b, orig, n);
    put_u64(h + OFF_KV_AT, n + 1000);
    reseal_header(h);
    store(path, b, n);
    read_fails(f->dir, "evil", NULL, NULL, "is damaged: section offsets do not match their lengths");
    memcpy(b, orig, n);
    put_u64(h + OFF_FILE_BYTES, n + 1);
    reseal_header(h);
    store(path, b, n);
    read_fails(f->dir, "evil", NULL, NULL, "is damaged: section offsets do not match their lengths");

    /* a name field without its NUL, or with bytes after it */
    memcpy(b, orig, n);
    memset(h + OFF_NAME, 'a', 64);
    reseal_header(h);
    store(path, b, n);
    read_back_equal(f->dir, &s) /* 64 chars is a valid name */;
    memcpy(b, orig, n);
    h[OFF_NAME + 10] = 'x';
    reseal_header(h);
    store(path, b, n);
    read_fails(f->dir, "evil", NULL, NULL, "is damaged: bad name field");
    memcpy(b, orig, n);
    h[OFF_NAME] = '/';
    reseal_header(h);
    store(path, b, n);
    read_fails(f->dir, "evil", NULL, NULL, "is damaged: bad name field");
    /* text that would break a one-line message */
    memcpy(b, orig, n);
    h[OFF_FINGERPRINT + 3] = '\n';
    reseal_header(h);
    store(path, b, n);
    read_fails(f->dir, "evil", NULL, FPRINT, "is damaged: bad model field");
    free(b);
    free(orig);
    free_data(&s);
}

/* ---- foreign snapshots ---- */

static void test_other_model_or_layout(void **state) {
    fixture *f = *state;
    snap_data s = make_data("foreign", 5, NULL, 64);
    write_ok(f->dir, &s, false);
    read_fails(f->dir, "foreign", DIGEST_B, FPRINT,
               "snapshot 'foreign' was saved from model sha256:aaaaaaaaaaaa... (stories:260k), not the loaded "
               "sha256:bbbbbbbbbbbb...");
    read_fails(f->dir, "foreign", DIGEST_A, "llama layers=5 kv_dim=64 kv=f32",
               "snapshot 'foreign' has KV layout 'llama layers=5 kv_dim=64 kv=f16' but the loaded model has "
               "'llama layers=5 kv_dim=64 kv=f32'");
    read_fails(f->dir, "foreign", "", "", "has KV layout");

    /* "" on either side skips the digest; NULL skips either check */
    ns_snapshot_meta m;
    int32_t *t;
    char *msg;
    void *kv;
    char err[512];
    assert_int_equal(ns_snapshot_read(f->dir, "foreign", "", FPRINT, &m, &t, &msg, &kv, err, sizeof err), 0);
    free(t);
    free(kv);
    assert_int_equal(ns_snapshot_read(f->dir, "foreign", NULL, NULL, &m, &t, &msg, &kv, err, sizeof err), 0);
    free(t);
    free(kv);
    snap_data p = make_data("from-path", 5, NULL, 64);
    p.meta.model_digest[0] = '\0';
    write_ok(f->dir, &p, false);
    assert_int_equal(ns_snapshot_read(f->dir, "from-path", DIGEST_B, FPRINT, &m, &t, &msg, &kv, err, sizeof err),
                     0);
    free(t);
    free(kv);
    free_data(&p);
    free_data(&s);
}

/* ---- names ---- */

static void test_names(void **state) {
    fixture *f = *state;
    char n64[65], n65[66];
    memset(n64, 'x', 64);
    n64[64] = '\0';
    memset(n65, 'y', 65);
    n65[65] = '\0';
    assert_true(ns_snapshot_name_ok("a"));
    assert_true(ns_snapshot_name_ok("Chat_2024-01.v2"));
    assert_true(ns_snapshot_name_ok("a.."));
    assert_true(ns_snapshot_name_ok(n64));
    assert_false(ns_snapshot_name_ok(n65));
    assert_false(ns_snapshot_name_ok(""));
    assert_false(ns_snapshot_name_ok(NULL));
    assert_false(ns_snapshot_name_ok(".hidden"));
    assert_false(ns_snapshot_name_ok(".."));
    assert_false(ns_snapshot_name_ok("a/b"));
    assert_false(ns_snapshot_name_ok("../etc"));
    assert_false(ns_snapshot_name_ok("a b"));
    assert_false(ns_snapshot_name_ok("caf\xc3\xa9"));
    assert_false(ns_snapshot_name_ok("tab\t"));

    char err[512];
    ns_snapshot_meta m = make_meta("../escape", 0, 0, 0);
    assert_int_equal(ns_snapshot_write(f->dir, &m, NULL, NULL, NULL, false, err, sizeof err), -1);
    assert_non_null(strstr(err, "invalid snapshot name '../escape'"));
    m = make_meta("ok", 0, 0, 0);
    snprintf(m.session, sizeof m.session, "bad session");
    assert_int_equal(ns_snapshot_write(f->dir, &m, NULL, NULL, NULL, false, err, sizeof err), -1);
    assert_non_null(strstr(err, "invalid session name"));
    m = make_meta("ok", 0, 0, 0);
    snprintf(m.fingerprint, sizeof m.fingerprint, "llama\nlayers=1");
    assert_int_equal(ns_snapshot_write(f->dir, &m, NULL, NULL, NULL, false, err, sizeof err), -1);
    assert_non_null(strstr(err, "control characters"));
    read_fails(f->dir, "../x", NULL, NULL, "invalid snapshot name");
    meta_fails(f->dir, ".x", "invalid snapshot name");
    bool missing = true;
    assert_int_equal(ns_snapshot_delete(f->dir, "a/b", &missing, err, sizeof err), -1);
    assert_false(missing);
    assert_non_null(strstr(err, "invalid snapshot name"));
    assert_int_equal(count_files(f->dir, ""), 0);
}

/* ---- list and delete ---- */

static void test_list(void **state) {
    fixture *f = *state;
    const char *names[] = {"b", "a-2", "c", "a"};
    for (int i = 0; i < 4; i++) {
        snap_data s = make_data(names[i], i * 10, i % 2 ? "[]" : NULL, (size_t)100 * (i + 1));
        write_ok(f->dir, &s, false);
        free_data(&s);
    }
    /* a damaged snapshot, a file that is no snapshot, a left-over temp file,
     * a folder and a bad name: all skipped */
    char path[512], src[512];
    snap_file(path, sizeof path, f->dir, "broken");
    snap_file(src, sizeof src, f->dir, "c");
    size_t n;
    uint8_t *b = load(src, &n);
    store(path, b, n - 3);
    free(b);
    snprintf(path, sizeof path, "%s/notes.txt", f->dir);
    store(path, (const uint8_t *)"hello", 5);
    snap_file(path, sizeof path, f->dir, "junk");
    store(path, (const uint8_t *)"hello", 5);
    snprintf(path, sizeof path, "%s/d.nsnap.tmp", f->dir);
    store(path, (const uint8_t *)"NSTKSNAP", 8);
    snap_file(path, sizeof path, f->dir, "folder");
    assert_int_equal(mkdir(path, 0755), 0);
    snprintf(path, sizeof path, "%s/.hidden.nsnap", f->dir);
    store(path, (const uint8_t *)"x", 1);

    ns_snapshot_meta *list = NULL;
    int count = -1;
    char err[512];
    assert_int_equal(ns_snapshot_list(f->dir, &list, &count, err, sizeof err), 0);
    assert_int_equal(count, 4);
    assert_string_equal(list[0].name, "a");
    assert_string_equal(list[1].name, "a-2");
    assert_string_equal(list[2].name, "b");
    assert_string_equal(list[3].name, "c");
    assert_int_equal(list[0].n_tokens, 30);
    assert_int_equal(list[0].kv_bytes, 400);
    assert_int_equal(list[1].messages_len, 2);
    assert_int_equal(list[3].file_bytes, HDR_BYTES + 80 + 300 + 8);
    assert_string_equal(list[2].fingerprint, FPRINT);
    free(list);

    /* a folder that does not exist yet lists nothing */
    snprintf(path, sizeof path, "%s/none", f->dir);
    list = NULL;
    assert_int_equal(ns_snapshot_list(path, &list, &count, err, sizeof err), 0);
    assert_int_equal(count, 0);
    free(list);
}

static void test_delete(void **state) {
    fixture *f = *state;
    snap_data s = make_data("gone", 4, NULL, 16);
    write_ok(f->dir, &s, false);
    free_data(&s);
    assert_true(ns_snapshot_exists(f->dir, "gone"));
    assert_false(ns_snapshot_exists(f->dir, "other"));
    assert_false(ns_snapshot_exists(f->dir, "../gone"));
    char err[512] = "";
    bool missing = true;
    assert_int_equal(ns_snapshot_delete(f->dir, "gone", &missing, err, sizeof err), 0);
    assert_false(missing);
    assert_false(ns_snapshot_exists(f->dir, "gone"));
    assert_int_equal(count_files(f->dir, ""), 0);
    assert_int_equal(ns_snapshot_delete(f->dir, "gone", &missing, err, sizeof err), -1);
    assert_true(missing);
    assert_string_equal(err, "snapshot 'gone' does not exist");
    read_fails(f->dir, "gone", NULL, NULL, "snapshot 'gone' does not exist");
    meta_fails(f->dir, "gone", "snapshot 'gone' does not exist");
}

/* ---- failed writes ---- */

static void test_write_failures_leave_nothing(void **state) {
    fixture *f = *state;
    snap_data s = make_data("w", 10, "[]", 100);
    char err[512], dir[512];

    snprintf(dir, sizeof dir, "%s/missing/sub", f->dir);
    assert_int_equal(ns_snapshot_write(dir, &s.meta, s.tokens, s.messages, s.kv, false, err, sizeof err), -1);
    assert_non_null(strstr(err, "cannot save snapshot 'w'"));

    snprintf(dir, sizeof dir, "%s/afile", f->dir);
    store(dir, (const uint8_t *)"x", 1);
    assert_int_equal(ns_snapshot_write(dir, &s.meta, s.tokens, s.messages, s.kv, true, err, sizeof err), -1);
    assert_non_null(strstr(err, "cannot save snapshot 'w'"));
    unlink(dir);

    if (geteuid() != 0) { /* root writes anywhere */
        snprintf(dir, sizeof dir, "%s/ro", f->dir);
        assert_int_equal(mkdir(dir, 0555), 0);
        assert_int_equal(ns_snapshot_write(dir, &s.meta, s.tokens, s.messages, s.kv, false, err, sizeof err), -1);
        assert_non_null(strstr(err, "Permission denied"));
        assert_int_equal(count_files(dir, ""), 0);
        rmdir(dir);
    }

    /* sections that claim data they do not have */
    assert_int_equal(ns_snapshot_write(f->dir, &s.meta, s.tokens, s.messages, NULL, false, err, sizeof err), -1);
    assert_non_null(strstr(err, "has no data"));
    ns_snapshot_meta m = s.meta;
    m.n_tokens = -5;
    assert_int_equal(ns_snapshot_write(f->dir, &m, s.tokens, s.messages, s.kv, false, err, sizeof err), -1);
    assert_non_null(strstr(err, "bad sizes"));
    assert_int_equal(count_files(f->dir, ""), 0);
    free_data(&s);
}

/* ---- the directory ---- */

static void save_env(const char *name, char **saved) {
    const char *v = getenv(name);
    *saved = v ? strdup(v) : NULL;
}
static void restore_env(const char *name, char *saved) {
    if (saved)
        setenv(name, saved, 1);
    else
        unsetenv(name);
    free(saved);
}

static void test_snapshot_dir(void **state) {
    fixture *f = *state;
    char *s_snap, *s_xdg, *s_home;
    save_env("NSTACK_SNAPSHOTS", &s_snap);
    save_env("XDG_DATA_HOME", &s_xdg);
    save_env("HOME", &s_home);
    char out[512], want[512], err[512] = "";

    snprintf(want, sizeof want, "%s/x/y", f->dir);
    snprintf(out, sizeof out, "%s/x/y//", f->dir);
    setenv("NSTACK_SNAPSHOTS", out, 1);
    assert_int_equal(ns_snapshot_dir(out, sizeof out, false, err, sizeof err), 0);
    assert_string_equal(out, want);
    struct stat st;
    assert_int_not_equal(stat(want, &st), 0);
    assert_int_equal(ns_snapshot_dir(out, sizeof out, true, err, sizeof err), 0);
    assert_int_equal(stat(want, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    mode_t mask = umask(0);
    umask(mask);
    assert_int_equal(st.st_mode & 0777, 0755 & ~mask);
    assert_int_equal(ns_snapshot_dir(out, sizeof out, true, err, sizeof err), 0); /* exists: fine */

    unsetenv("NSTACK_SNAPSHOTS");
    setenv("XDG_DATA_HOME", f->dir, 1);
    assert_int_equal(ns_snapshot_dir(out, sizeof out, true, err, sizeof err), 0);
    snprintf(want, sizeof want, "%s/nstack/snapshots", f->dir);
    assert_string_equal(out, want);
    assert_int_equal(stat(want, &st), 0);

    setenv("XDG_DATA_HOME", "relative/path", 1); /* ignored, as the XDG spec says */
    setenv("HOME", "/home/someone", 1);
    assert_int_equal(ns_snapshot_dir(out, sizeof out, false, err, sizeof err), 0);
    assert_string_equal(out, "/home/someone/.local/share/nstack/snapshots");

    unsetenv("XDG_DATA_HOME");
    unsetenv("HOME");
    assert_int_equal(ns_snapshot_dir(out, sizeof out, false, err, sizeof err), -1);
    assert_non_null(strstr(err, "NSTACK_SNAPSHOTS"));

    /* a file in the way */
    snprintf(out, sizeof out, "%s/file", f->dir);
    store(out, (const uint8_t *)"x", 1);
    snprintf(want, sizeof want, "%s/file/sub", f->dir);
    setenv("NSTACK_SNAPSHOTS", want, 1);
    assert_int_equal(ns_snapshot_dir(out, sizeof out, true, err, sizeof err), -1);
    assert_non_null(strstr(err, "cannot create"));

    restore_env("NSTACK_SNAPSHOTS", s_snap);
    restore_env("XDG_DATA_HOME", s_xdg);
    restore_env("HOME", s_home);
    snprintf(out, sizeof out, "%s/nstack/snapshots", f->dir);
    rmdir(out);
    snprintf(out, sizeof out, "%s/nstack", f->dir);
    rmdir(out);
    snprintf(out, sizeof out, "%s/x/y", f->dir);
    rmdir(out);
}

/* ---- the fuzz corpus ---- */

/* Every file the fuzzer keeps (tests/fuzz/corpus/snapshot) through the
 * normal build: a clear refusal or a read that matches the file. */
static void test_fuzz_corpus(void **state) {
    fixture *f = *state;
    const char *src = getenv("NSTACK_SOURCE_DIR");
    if (!src || !*src) {
        printf("SKIP: NSTACK_SOURCE_DIR is not set (ctest sets it)\n");
        skip();
    }
    char corpus[4096];
    snprintf(corpus, sizeof corpus, "%s/tests/fuzz/corpus/snapshot", src);
    DIR *d = opendir(corpus);
    if (!d) fail_msg("cannot open %s", corpus);
    char dst[512];
    snap_file(dst, sizeof dst, f->dir, "c");
    int n = 0, ok = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        char p[8192];
        snprintf(p, sizeof p, "%s/%s", corpus, e->d_name);
        size_t len;
        uint8_t *b = load(p, &len);
        store(dst, b, len);
        free(b);
        ns_snapshot_meta m;
        int32_t *t;
        char *msg;
        void *kv;
        char err[512] = "";
        if (ns_snapshot_read(f->dir, "c", NULL, NULL, &m, &t, &msg, &kv, err, sizeof err) == 0) {
            assert_int_equal(m.file_bytes, len);
            if (m.messages_len) assert_int_equal(msg[m.messages_len], 0);
            free(t);
            free(msg);
            free(kv);
            ok++;
        } else {
            if (!strstr(err, "snapshot 'c'")) fail_msg("%s: unclear refusal \"%s\"", e->d_name, err);
        }
        n++;
    }
    closedir(d);
    printf("snapshot corpus: %d files, %d read, %d refused\n", n, ok, n - ok);
    assert_true(ok > 0);
}

int main(void) {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_round_trip_with_messages),
        T(test_pieces),
        T(test_round_trip_without_messages),
        T(test_round_trip_empty),
        T(test_round_trip_large),
        T(test_large_damage_caught),
        T(test_overwrite_replaces),
        T(test_spare_file),
        T(test_stale_temps_swept),
        T(test_flipped_byte_in_each_section),
        T(test_truncated_and_appended),
        T(test_wrong_version_and_magic),
        T(test_hostile_headers),
        T(test_other_model_or_layout),
        T(test_names),
        T(test_list),
        T(test_delete),
        T(test_write_failures_leave_nothing),
        T(test_snapshot_dir),
        T(test_fuzz_corpus),
    };
#undef T
    return cmocka_run_group_tests_name("snapshot", tests, NULL, NULL);
}
