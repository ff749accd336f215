/* The model store, writing side: import, copy, delete. Every change ends
 * with an atomic rename, so a reader sees a manifest whole or not at all,
 * and the store's mutex keeps two writers from collecting each other's
 * blobs. */
#include "runtime/store_internal.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/quantize.h"
#include "nstack/gguf.h"
#include "util/log.h"
#include "util/paths.h"

#define MAX_MANIFEST_BYTES (1 << 20)

/* ---- small file helpers ----------------------------------------------- */

static int write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Copies src to dst (which must not exist) through a temporary file. */
static int copy_file(const char *src, const char *dst, char *err, size_t errlen)
{
    char tmp[4400];
    const char *slash = strrchr(dst, '/');
    snprintf(tmp, sizeof tmp, "%.*s/.tmp-XXXXXX", slash ? (int)(slash - dst) : 1, slash ? dst : ".");
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0) {
        snprintf(err, errlen, "cannot open %s: %s", src, strerror(errno));
        return -1;
    }
    int out = mkstemp(tmp);
    if (out < 0) {
        snprintf(err, errlen, "cannot create a file next to %s: %s", dst, strerror(errno));
        close(in);
        return -1;
    }
    enum { CHUNK = 1 << 20 };
    char *buf = malloc(CHUNK);
    int rc = buf && fchmod(out, 0644) == 0 ? 0 : -1;
    while (rc == 0) {
        ssize_t got = read(in, buf, CHUNK);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            rc = -1;
        if (got <= 0)
            break;
        if (write_all(out, buf, (size_t)got) != 0)
            rc = -1;
    }
    int saved = errno;
    free(buf);
    close(in);
    if (rc == 0 && fsync(out) != 0)
        rc = -1, saved = errno;
    if (close(out) != 0 && rc == 0)
        rc = -1, saved = errno;
    if (rc == 0 && rename(tmp, dst) != 0)
        rc = -1, saved = errno;
    if (rc != 0) {
        snprintf(err, errlen, "cannot copy %s to %s: %s", src, dst, strerror(saved));
        unlink(tmp);
    }
    return rc;
}

static bool is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static char *read_manifest_text(const char *path, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = malloc(MAX_MANIFEST_BYTES + 1);
    size_t got = buf ? fread(buf, 1, MAX_MANIFEST_BYTES + 1, f) : 0;
    fclose(f);
    if (!buf || got > MAX_MANIFEST_BYTES) {
        snprintf(err, errlen, "cannot read %s: %s", path, buf ? "too large" : "out of memory");
        free(buf);
        return NULL;
    }
    buf[got] = '\0';
    *len = got;
    return buf;
}

/* ---- blobs ------------------------------------------------------------ */

/* Stores data as a blob (skipped when already there); digest gets
 * "sha256:<hex>". */
static int put_blob_bytes(const char *root, const void *data, size_t len, char digest[NS_DIGEST_LEN + 1], char *err,
                          size_t errlen)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32) {
        snprintf(err, errlen, "cannot hash a layer");
        return -1;
    }
    strcpy(digest, "sha256:");
    for (unsigned i = 0; i < 32; i++)
        snprintf(digest + 7 + 2 * i, 3, "%02x", md[i]);
    char path[4400];
    ns_blob_path(root, digest, path, sizeof path);
    if (is_file(path))
        return 0;
    return ns_write_file_durably(path, data, len, "blob", err, errlen);
}

/* Digests referenced by any manifest of root, gathered for collection. */
typedef struct {
    char (*digests)[NS_DIGEST_LEN + 1];
    int n, cap;
    int failed;
} digest_set;

static int digest_set_add(digest_set *set, const char *d)
{
    for (int i = 0; i < set->n; i++)
        if (strcmp(set->digests[i], d) == 0)
            return 0;
    if (set->n == set->cap) {
        int cap = set->cap ? set->cap * 2 : 32;
        void *grown = realloc(set->digests, (size_t)cap * sizeof *set->digests);
        if (!grown)
            return -1;
        set->digests = grown;
        set->cap = cap;
    }
    snprintf(set->digests[set->n++], NS_DIGEST_LEN + 1, "%s", d);
    return 0;
}

static bool digest_set_has(const digest_set *set, const char *d)
{
    for (int i = 0; i < set->n; i++)
        if (strcmp(set->digests[i], d) == 0)
            return true;
    return false;
}

static int add_manifest_digests(digest_set *set, const ns_manifest *m)
{
    if (m->has_config && digest_set_add(set, m->config.digest) != 0)
        return -1;
    for (int i = 0; i < m->n_layers; i++)
        if (digest_set_add(set, m->layers[i].digest) != 0)
            return -1;
    return 0;
}

static int collect_visit(void *user, const char *mpath, const ns_model_name *n)
{
    (void)n;
    digest_set *set = user;
    ns_manifest m;
    char err[512];
    /* A manifest we cannot read protects nothing: it cannot be resolved. */
    if (ns_manifest_read(mpath, &m, err, sizeof err) != 0)
        return 0;
    if (add_manifest_digests(set, &m) != 0)
        set->failed = 1;
    ns_manifest_free(&m);
    return set->failed;
}

/* Removes each blob of candidates that no manifest of our store uses. */
static void collect_garbage(ns_store *s, const digest_set *candidates)
{
    if (candidates->n == 0)
        return;
    digest_set used = {0};
    ns_manifest_walk(s->dir, collect_visit, &used);
    if (used.failed) { /* unsure what is used: keep everything */
        free(used.digests);
        return;
    }
    for (int i = 0; i < candidates->n; i++) {
        if (digest_set_has(&used, candidates->digests[i]))
            continue;
        char path[4400];
        if (ns_blob_path(s->dir, candidates->digests[i], path, sizeof path) == 0 && unlink(path) == 0)
            ns_log_debug("store", "blob removed", "digest=%s", candidates->digests[i]);
    }
    free(used.digests);
}

/* ---- manifests -------------------------------------------------------- */

/* Writes text as the manifest of n, replacing any earlier one (whose blobs
 * no longer used are then removed). Caller holds the write lock. */
static int put_manifest(ns_store *s, const ns_model_name *n, const char *text, char *err, size_t errlen)
{
    char mpath[4400];
    int exists = ns_manifest_locate(s->dir, n, true, mpath, sizeof mpath, NULL, err, errlen);
    if (exists < 0)
        return -1;
    digest_set old = {0};
    if (exists) {
        ns_manifest m;
        char ignored[512];
        if (ns_manifest_read(mpath, &m, ignored, sizeof ignored) == 0) {
            add_manifest_digests(&old, &m);
            ns_manifest_free(&m);
        }
    }
    int rc = ns_write_file_durably(mpath, text, strlen(text), "manifest", err, errlen);
    if (rc == 0)
        collect_garbage(s, &old);
    free(old.digests);
    return rc;
}

static cJSON *layer_json(const char *media, const char *digest, int64_t size)
{
    cJSON *l = cJSON_CreateObject();
    cJSON_AddStringToObject(l, "mediaType", media);
    cJSON_AddStringToObject(l, "digest", digest);
    cJSON_AddNumberToObject(l, "size", (double)size);
    return l;
}

/* ---- import ----------------------------------------------------------- */

/* "7.2B", "260K": the parameter count as Ollama shows it. */
static void human_count(uint64_t n, char *buf, size_t buflen)
{
    const struct { double scale; const char *unit; } units[] = {{1e9, "B"}, {1e6, "M"}, {1e3, "K"}};
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if ((double)n < units[i].scale)
            continue;
        double v = (double)n / units[i].scale;
        if (v >= 100 || i == 2 || fabs(v - round(v)) < 0.05)
            snprintf(buf, buflen, "%.0f%s", v, units[i].unit);
        else
            snprintf(buf, buflen, "%.1f%s", v, units[i].unit);
        return;
    }
    snprintf(buf, buflen, "%llu", (unsigned long long)n);
}

/* The config blob Ollama's readers expect: format, family, size, type. */
static char *config_json(const ns_gguf *g, const char *model_digest)
{
    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "model_format", "gguf");
    char *arch = ns_gguf_get_str(g, "general.architecture");
    if (arch) {
        cJSON_AddStringToObject(c, "model_family", arch);
        cJSON *families = cJSON_AddArrayToObject(c, "model_families");
        cJSON_AddItemToArray(families, cJSON_CreateString(arch));
        free(arch);
    }
    uint64_t params = 0;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        uint64_t count = 1;
        for (uint32_t d = 0; d < g->tensors[i].n_dims; d++)
            count *= (uint64_t)g->tensors[i].ne[d];
        params += count;
    }
    char size[32];
    human_count(params, size, sizeof size);
    cJSON_AddStringToObject(c, "model_type", size);
    uint32_t ftype;
    const char *ftype_name = ns_gguf_get_u32(g, "general.file_type", &ftype) ? ns_ftype_name((ns_ftype)ftype) : NULL;
    if (ftype_name)
        cJSON_AddStringToObject(c, "file_type", ftype_name);
    cJSON *rootfs = cJSON_AddObjectToObject(c, "rootfs");
    cJSON_AddStringToObject(rootfs, "type", "layers");
    cJSON *ids = cJSON_AddArrayToObject(rootfs, "diff_ids");
    cJSON_AddItemToArray(ids, cJSON_CreateString(model_digest));
    char *text = cJSON_PrintUnformatted(c);
    cJSON_Delete(c);
    return text;
}

/* Checks the magic, then parses the header for the config blob. */
static ns_gguf *open_gguf(const char *path, char *err, size_t errlen)
{
    char magic[4] = {0};
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    size_t got = fread(magic, 1, 4, f);
    fclose(f);
    if (got != 4 || memcmp(magic, "GGUF", 4) != 0) {
        snprintf(err, errlen, "%s is not a GGUF file", path);
        return NULL;
    }
    char why[512];
    ns_gguf *g = ns_gguf_open(path, why, sizeof why);
    if (!g)
        snprintf(err, errlen, "not a valid GGUF file: %s", why);
    return g;
}

/* Moves (or copies) src into blobs/ as blob_path. */
static int place_model_blob(const char *src, const char *blob_path, bool keep_src, char *err, size_t errlen)
{
    if (is_file(blob_path)) { /* the same bytes are already stored */
        char a[PATH_MAX], b[PATH_MAX];
        bool same_entry = realpath(src, a) && realpath(blob_path, b) && strcmp(a, b) == 0;
        if (!keep_src && !same_entry)
            unlink(src);
        return 0;
    }
    /* Moving a symbolic link would store the link: copy what it points to. */
    struct stat lst;
    bool is_link = lstat(src, &lst) == 0 && S_ISLNK(lst.st_mode);
    if (!keep_src && !is_link) {
        if (rename(src, blob_path) == 0)
            return 0;
        if (errno != EXDEV) {
            snprintf(err, errlen, "cannot move %s to %s: %s", src, blob_path, strerror(errno));
            return -1;
        }
    }
    if (copy_file(src, blob_path, err, errlen) != 0)
        return -1;
    if (!keep_src)
        unlink(src);
    return 0;
}

static int add_text_layer(const char *root, cJSON *layers, const char *media, const char *text, char *err,
                          size_t errlen)
{
    if (!text || !*text)
        return 0;
    char digest[NS_DIGEST_LEN + 1];
    if (put_blob_bytes(root, text, strlen(text), digest, err, errlen) != 0)
        return -1;
    cJSON_AddItemToArray(layers, layer_json(media, digest, (int64_t)strlen(text)));
    return 0;
}

int ns_store_import(ns_store *s, const char *name, const char *src_path, bool keep_src, const char *template_text,
                    const char *system_text, const char *params_json, char *err, size_t errlen)
{
    ns_model_name n;
    if (ns_model_name_parse(name, &n, err, errlen) != 0)
        return -1;
    if (params_json && *params_json) {
        cJSON *p = cJSON_Parse(params_json);
        bool ok = cJSON_IsObject(p);
        cJSON_Delete(p);
        if (!ok) {
            snprintf(err, errlen, "model parameters must be a JSON object");
            return -1;
        }
    }
    struct stat st;
    if (stat(src_path, &st) != 0) {
        snprintf(err, errlen, "cannot import %s: %s", src_path, strerror(errno));
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "cannot import %s: not a regular file", src_path);
        return -1;
    }
    ns_gguf *g = open_gguf(src_path, err, errlen);
    if (!g)
        return -1;
    /* Hashing a large file takes seconds: done before taking the lock. */
    char hex[65];
    char model_digest[NS_DIGEST_LEN + 1];
    if (ns_sha256_file(src_path, hex, err, errlen) != 0) {
        ns_gguf_close(g);
        return -1;
    }
    snprintf(model_digest, sizeof model_digest, "sha256:%s", hex);
    char *config = config_json(g, model_digest);
    ns_gguf_close(g);
    if (!config) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }

    cJSON *manifest = cJSON_CreateObject();
    cJSON_AddNumberToObject(manifest, "schemaVersion", 2);
    cJSON_AddStringToObject(manifest, "mediaType", NS_MEDIA_MANIFEST);
    cJSON *layers = cJSON_CreateArray();
    char *text = NULL;
    int rc = -1;

    pthread_mutex_lock(&s->write_lock);
    char blob[4400], config_digest[NS_DIGEST_LEN + 1];
    ns_blob_path(s->dir, model_digest, blob, sizeof blob);
    if (place_model_blob(src_path, blob, keep_src, err, errlen) != 0)
        goto out;
    if (put_blob_bytes(s->dir, config, strlen(config), config_digest, err, errlen) != 0)
        goto out;
    cJSON_AddItemToObject(manifest, "config", layer_json(NS_MEDIA_CONFIG, config_digest, (int64_t)strlen(config)));
    cJSON_AddItemToArray(layers, layer_json(NS_MEDIA_MODEL, model_digest, (int64_t)st.st_size));
    if (add_text_layer(s->dir, layers, NS_MEDIA_TEMPLATE, template_text, err, errlen) != 0 ||
        add_text_layer(s->dir, layers, NS_MEDIA_SYSTEM, system_text, err, errlen) != 0 ||
        add_text_layer(s->dir, layers, NS_MEDIA_PARAMS, params_json, err, errlen) != 0)
        goto out;
    cJSON_AddItemToObject(manifest, "layers", layers);
    layers = NULL;
    text = cJSON_PrintUnformatted(manifest);
    if (!text) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    rc = put_manifest(s, &n, text, err, errlen);
out:
    pthread_mutex_unlock(&s->write_lock);
    if (rc == 0) {
        char shown[300];
        ns_model_name_display(&n, shown, sizeof shown);
        ns_log_info("store", "model imported", "model=%s digest=%s", shown, model_digest);
    }
    cJSON_Delete(layers);
    cJSON_Delete(manifest);
    free(text);
    free(config);
    return rc;
}

/* ---- copy ------------------------------------------------------------- */

/* Makes the blob of digest in Ollama's store available in ours: a hard
 * link when both are on one file system, else a copy. */
static int adopt_blob(ns_store *s, const char *digest, char *err, size_t errlen)
{
    char from[4400], to[4400];
    ns_blob_path(s->ollama, digest, from, sizeof from);
    ns_blob_path(s->dir, digest, to, sizeof to);
    if (is_file(to))
        return 0;
    if (!is_file(from)) {
        snprintf(err, errlen, "blob %s is missing", from);
        return -1;
    }
    if (linkat(AT_FDCWD, from, AT_FDCWD, to, AT_SYMLINK_FOLLOW) == 0)
        return 0;
    return copy_file(from, to, err, errlen);
}

int ns_store_copy(ns_store *s, const char *src, const char *dst, char *err, size_t errlen)
{
    ns_model_name dn;
    if (ns_model_name_parse(dst, &dn, err, errlen) != 0)
        return -1;
    ns_model_ref ref;
    if (ns_store_resolve(s, src, &ref, err, errlen) != 0)
        return -1;
    if (ref.source == NS_SRC_PATH) {
        int rc = ns_store_import(s, dst, ref.path, true, NULL, NULL, NULL, err, errlen);
        ns_model_ref_clear(&ref);
        return rc;
    }
    ns_model_ref_clear(&ref);

    ns_model_name sn;
    if (ns_model_name_parse(src, &sn, err, errlen) != 0)
        return -1;
    pthread_mutex_lock(&s->write_lock);
    int rc = -1;
    char *text = NULL;
    ns_manifest m = {0};
    char mpath[4400];
    const char *root = s->dir;
    int found = ns_manifest_locate(s->dir, &sn, false, mpath, sizeof mpath, NULL, err, errlen);
    if (found == 0 && s->ollama[0]) {
        root = s->ollama;
        found = ns_manifest_locate(s->ollama, &sn, false, mpath, sizeof mpath, NULL, err, errlen);
    }
    if (found <= 0) {
        if (found == 0) /* removed since it was resolved */
            snprintf(err, errlen, "model '%s' not found", src);
        goto out;
    }
    size_t len;
    if (!(text = read_manifest_text(mpath, &len, err, errlen)) || ns_manifest_read(mpath, &m, err, errlen) != 0)
        goto out;
    if (root == s->ollama) {
        if (m.has_config && adopt_blob(s, m.config.digest, err, errlen) != 0)
            goto out;
        for (int i = 0; i < m.n_layers; i++)
            if (adopt_blob(s, m.layers[i].digest, err, errlen) != 0)
                goto out;
    }
    rc = put_manifest(s, &dn, text, err, errlen);
out:
    pthread_mutex_unlock(&s->write_lock);
    ns_manifest_free(&m);
    free(text);
    return rc;
}

/* ---- delete ----------------------------------------------------------- */

/* Removes the now empty model, namespace and host directories. */
static void remove_empty_parents(const char *root, const char *mpath)
{
    char dir[4400], stop[4400];
    snprintf(dir, sizeof dir, "%s", mpath);
    snprintf(stop, sizeof stop, "%s/manifests", root);
    for (int i = 0; i < 3; i++) {
        char *slash = strrchr(dir, '/');
        if (!slash)
            return;
        *slash = '\0';
        if (strcmp(dir, stop) == 0 || rmdir(dir) != 0)
            return;
    }
}

int ns_store_delete(ns_store *s, const char *name, char *err, size_t errlen)
{
    ns_model_name n;
    if (ns_model_name_parse(name, &n, err, errlen) != 0)
        return -1;
    pthread_mutex_lock(&s->write_lock);
    int rc = -1;
    char mpath[4400];
    digest_set gone = {0};
    int found = ns_manifest_locate(s->dir, &n, false, mpath, sizeof mpath, NULL, err, errlen);
    if (found == 0) {
        char opath[4400];
        if (s->ollama[0] && strcmp(s->ollama, s->dir) != 0 &&
            ns_manifest_locate(s->ollama, &n, false, opath, sizeof opath, NULL, err, errlen) == 1)
            snprintf(err, errlen, "model '%s' is in Ollama's store; delete it with ollama rm", name);
        else
            snprintf(err, errlen, "model '%s' not found", name);
    }
    if (found <= 0)
        goto out;
    ns_manifest m;
    char ignored[512];
    if (ns_manifest_read(mpath, &m, ignored, sizeof ignored) == 0) {
        add_manifest_digests(&gone, &m);
        ns_manifest_free(&m);
    }
    if (unlink(mpath) != 0) {
        snprintf(err, errlen, "cannot remove %s: %s", mpath, strerror(errno));
        goto out;
    }
    remove_empty_parents(s->dir, mpath);
    collect_garbage(s, &gone);
    ns_log_info("store", "model deleted", "model=%s", name);
    rc = 0;
out:
    pthread_mutex_unlock(&s->write_lock);
    free(gone.digests);
    return rc;
}

/* ---- downloads -------------------------------------------------------- */

int ns_store_temp_path(ns_store *s, char *buf, size_t buflen)
{
    for (int attempt = 0; attempt < 8; attempt++) {
        unsigned char r[8];
        if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r)
            return -1;
        if (snprintf(buf, buflen, "%s/blobs/partial-%02x%02x%02x%02x%02x%02x%02x%02x", s->dir, r[0], r[1], r[2],
                     r[3], r[4], r[5], r[6], r[7]) >= (int)buflen)
            return -1;
        if (access(buf, F_OK) != 0)
            return 0;
    }
    return -1;
}
