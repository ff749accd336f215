/* The model store, reading side: opening, name resolution and listing over
 * our store and Ollama's, which share one layout (see store.h). */
#include "runtime/store_internal.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/log.h"
#include "util/paths.h"

#define MAX_MANIFEST_BYTES (1 << 20)
#define MAX_TEXT_LAYER_BYTES (4 << 20)

void ns_model_ref_clear(ns_model_ref *r)
{
    if (!r)
        return;
    free(r->template_text);
    free(r->system_text);
    free(r->params_json);
    r->template_text = r->system_text = r->params_json = NULL;
}

/* ---- opening ---------------------------------------------------------- */


static int default_models_dir(char *buf, size_t buflen, char *err, size_t errlen)
{
    return ns_data_path("NSTACK_MODELS", "models", "models directory", buf, buflen, err, errlen);
}

static void default_ollama_dir(char *buf, size_t buflen)
{
    const char *env = getenv("OLLAMA_MODELS");
    const char *home = getenv("HOME");
    if (env && *env)
        snprintf(buf, buflen, "%s", env);
    else if (home && *home)
        snprintf(buf, buflen, "%s/.ollama/models", home);
    else
        buf[0] = '\0';
}

static void strip_trailing_slashes(char *p)
{
    size_t n = strlen(p);
    while (n > 1 && p[n - 1] == '/')
        p[--n] = '\0';
}

ns_store *ns_store_open(const char *models_dir, const char *ollama_dir, char *err, size_t errlen)
{
    ns_store *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (models_dir && *models_dir) {
        if (snprintf(s->dir, sizeof s->dir, "%s", models_dir) >= (int)sizeof s->dir) {
            snprintf(err, errlen, "models directory path too long");
            goto fail;
        }
    } else if (default_models_dir(s->dir, sizeof s->dir, err, errlen) != 0) {
        if (!err[0])
            snprintf(err, errlen, "models directory path too long");
        goto fail;
    }
    if (ollama_dir && *ollama_dir)
        snprintf(s->ollama, sizeof s->ollama, "%s", ollama_dir);
    else
        default_ollama_dir(s->ollama, sizeof s->ollama);
    strip_trailing_slashes(s->dir);
    strip_trailing_slashes(s->ollama);

    char sub[4200];
    snprintf(sub, sizeof sub, "%s/manifests", s->dir);
    if (ns_mkdir_p(sub, err, errlen) != 0)
        goto fail;
    snprintf(sub, sizeof sub, "%s/blobs", s->dir);
    if (ns_mkdir_p(sub, err, errlen) != 0)
        goto fail;
    /* Absolute paths in references stay right whatever the working directory. */
    char real[PATH_MAX];
    if (realpath(s->dir, real) && strlen(real) < sizeof s->dir)
        strcpy(s->dir, real);
    if (s->ollama[0] && realpath(s->ollama, real) && strlen(real) < sizeof s->ollama)
        strcpy(s->ollama, real);
    pthread_mutex_init(&s->write_lock, NULL);
    return s;
fail:
    free(s);
    return NULL;
}

void ns_store_close(ns_store *s)
{
    if (!s)
        return;
    pthread_mutex_destroy(&s->write_lock);
    free(s);
}

const char *ns_store_dir(const ns_store *s)
{
    return s->dir;
}

/* ---- manifests -------------------------------------------------------- */

void ns_manifest_free(ns_manifest *m)
{
    free(m->layers);
    memset(m, 0, sizeof *m);
}

static bool valid_digest(const char *d)
{
    if (strncmp(d, "sha256:", 7) != 0 || strlen(d) != NS_DIGEST_LEN)
        return false;
    for (const char *p = d + 7; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return false;
    return true;
}

int ns_blob_path(const char *root, const char *digest, char *buf, size_t buflen)
{
    if (!valid_digest(digest))
        return -1;
    return snprintf(buf, buflen, "%s/blobs/sha256-%s", root, digest + 7) < (int)buflen ? 0 : -1;
}

static int parse_layer(const cJSON *j, ns_manifest_layer *out, const char *path, char *err, size_t errlen)
{
    const cJSON *media = cJSON_GetObjectItemCaseSensitive(j, "mediaType");
    const cJSON *digest = cJSON_GetObjectItemCaseSensitive(j, "digest");
    const cJSON *size = cJSON_GetObjectItemCaseSensitive(j, "size");
    if (!cJSON_IsObject(j) || !cJSON_IsString(media) || !cJSON_IsString(digest)) {
        snprintf(err, errlen, "bad manifest %s: a layer lacks mediaType or digest", path);
        return -1;
    }
    if (!valid_digest(digest->valuestring)) {
        snprintf(err, errlen, "bad manifest %s: invalid digest '%.80s'", path, digest->valuestring);
        return -1;
    }
    snprintf(out->media, sizeof out->media, "%s", media->valuestring);
    snprintf(out->digest, sizeof out->digest, "%s", digest->valuestring);
    out->size = cJSON_IsNumber(size) && size->valuedouble >= 0 ? (int64_t)size->valuedouble : -1;
    return 0;
}

static char *read_small_file(const char *path, size_t limit, size_t *len, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s is not a regular file", path);
        close(fd);
        return NULL;
    }
    if ((size_t)st.st_size > limit) {
        snprintf(err, errlen, "%s is too large (%lld bytes, limit %zu)", path, (long long)st.st_size, limit);
        close(fd);
        return NULL;
    }
    char *buf = malloc((size_t)st.st_size + 1);
    size_t got = 0;
    while (buf && got < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    if (!buf || got != (size_t)st.st_size) {
        snprintf(err, errlen, "cannot read %s", path);
        free(buf);
        return NULL;
    }
    buf[got] = '\0';
    *len = got;
    return buf;
}

int ns_manifest_read(const char *path, ns_manifest *m, char *err, size_t errlen)
{
    memset(m, 0, sizeof *m);
    size_t len = 0;
    char *text = read_small_file(path, MAX_MANIFEST_BYTES, &len, err, errlen);
    if (!text)
        return -1;
    cJSON *j = cJSON_ParseWithLength(text, len);
    free(text);
    int rc = -1;
    const cJSON *layers = cJSON_GetObjectItemCaseSensitive(j, "layers");
    const cJSON *config = cJSON_GetObjectItemCaseSensitive(j, "config");
    if (!j) {
        snprintf(err, errlen, "bad manifest %s: invalid JSON", path);
        goto out;
    }
    if (!cJSON_IsObject(j)) {
        snprintf(err, errlen, "bad manifest %s: not a JSON object", path);
        goto out;
    }
    if (!cJSON_IsArray(layers)) {
        snprintf(err, errlen, "bad manifest %s: no layers array", path);
        goto out;
    }
    if (config && !cJSON_IsNull(config)) {
        if (parse_layer(config, &m->config, path, err, errlen) != 0)
            goto out;
        m->has_config = true;
    }
    int n = cJSON_GetArraySize(layers);
    m->layers = calloc(n > 0 ? (size_t)n : 1, sizeof *m->layers);
    if (!m->layers) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    const cJSON *l;
    cJSON_ArrayForEach(l, layers)
    {
        if (parse_layer(l, &m->layers[m->n_layers], path, err, errlen) != 0)
            goto out;
        m->n_layers++;
    }
    rc = 0;
out:
    cJSON_Delete(j);
    if (rc != 0)
        ns_manifest_free(m);
    return rc;
}

const ns_manifest_layer *ns_manifest_find(const ns_manifest *m, const char *media)
{
    for (int i = 0; i < m->n_layers; i++)
        if (strcmp(m->layers[i].media, media) == 0)
            return &m->layers[i];
    return NULL;
}

/* ---- locating a name on disk ------------------------------------------ */

/* Finds the entry of dir named like want (exact spelling first, then any
 * case). Returns 1 with the spelling in got, 0 when absent, -1 on error. */
static int find_entry(const char *dir, const char *want, char *got, size_t gotlen)
{
    char path[4400];
    struct stat st;
    int w = snprintf(path, sizeof path, "%s/%s", dir, want);
    if (w < 0 || (size_t)w >= sizeof path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    if (stat(path, &st) == 0) {
        snprintf(got, gotlen, "%s", want);
        return 1;
    }
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT || errno == ENOTDIR ? 0 : -1;
    int found = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] != '.' && strcasecmp(e->d_name, want) == 0 && strlen(e->d_name) < gotlen) {
            memcpy(got, e->d_name, strlen(e->d_name) + 1);
            found = 1;
            break;
        }
    }
    closedir(d);
    return found;
}

int ns_manifest_locate(const char *root, const ns_model_name *n, bool create, char *path, size_t pathlen,
                       ns_model_name *found, char *err, size_t errlen)
{
    const char *want[4] = {n->host, n->ns, n->model, n->tag};
    ns_model_name spelled = *n;
    char *got[4] = {spelled.host, spelled.ns, spelled.model, spelled.tag};
    char cur[4400];
    snprintf(cur, sizeof cur, "%s/manifests", root);
    int exists = 1;
    for (int i = 0; i < 4; i++) {
        int r = exists ? find_entry(cur, want[i], got[i], sizeof spelled.host) : 0;
        if (r < 0) {
            snprintf(err, errlen, "cannot read %s: %s", cur, strerror(errno));
            return -1;
        }
        if (r == 0) {
            exists = 0;
            snprintf(got[i], sizeof spelled.host, "%s", want[i]);
        }
        size_t used = strlen(cur);
        if (snprintf(cur + used, sizeof cur - used, "/%s", got[i]) >= (int)(sizeof cur - used)) {
            snprintf(err, errlen, "manifest path too long");
            return -1;
        }
        if (i < 3 && !exists && create && mkdir(cur, 0755) != 0 && errno != EEXIST) {
            snprintf(err, errlen, "cannot create %s: %s", cur, strerror(errno));
            return -1;
        }
    }
    if (exists) {
        struct stat st;
        if (stat(cur, &st) != 0 || !S_ISREG(st.st_mode))
            exists = 0;
    }
    if (snprintf(path, pathlen, "%s", cur) >= (int)pathlen) {
        snprintf(err, errlen, "manifest path too long");
        return -1;
    }
    if (found)
        *found = spelled;
    return exists;
}

/* ---- references ------------------------------------------------------- */

static int read_text_layer(const char *root, const ns_manifest *m, const char *media, char **out, char *err,
                           size_t errlen)
{
    const ns_manifest_layer *l = ns_manifest_find(m, media);
    if (!l)
        return 0;
    char path[4400];
    size_t len = 0;
    if (ns_blob_path(root, l->digest, path, sizeof path) != 0) {
        snprintf(err, errlen, "blob path too long");
        return -1;
    }
    *out = read_small_file(path, MAX_TEXT_LAYER_BYTES, &len, err, errlen);
    return *out ? 0 : -1;
}

int ns_ref_from_manifest(const char *root, const char *mpath, const ns_model_name *n, ns_model_source source,
                         ns_model_ref *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    ns_manifest m;
    if (ns_manifest_read(mpath, &m, err, errlen) != 0)
        return -1;
    int rc = -1;
    const ns_manifest_layer *model = ns_manifest_find(&m, NS_MEDIA_MODEL);
    if (!model) {
        snprintf(err, errlen, "bad manifest %s: no model layer (%s)", mpath, NS_MEDIA_MODEL);
        goto out;
    }
    if (ns_blob_path(root, model->digest, out->path, sizeof out->path) != 0) {
        snprintf(err, errlen, "blob path too long in %s", root);
        goto out;
    }
    struct stat st;
    if (stat(out->path, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "model blob %s of manifest %s is missing", out->path, mpath);
        goto out;
    }
    struct stat mst;
    if (stat(mpath, &mst) != 0) {
        snprintf(err, errlen, "cannot stat %s: %s", mpath, strerror(errno));
        goto out;
    }
    ns_model_name_display(n, out->name, sizeof out->name);
    snprintf(out->digest, sizeof out->digest, "%s", model->digest);
    out->size = (int64_t)st.st_size;
    out->modified = (int64_t)mst.st_mtim.tv_sec * 1000000000 + mst.st_mtim.tv_nsec;
    out->source = source;
    if (read_text_layer(root, &m, NS_MEDIA_TEMPLATE, &out->template_text, err, errlen) != 0 ||
        read_text_layer(root, &m, NS_MEDIA_SYSTEM, &out->system_text, err, errlen) != 0 ||
        read_text_layer(root, &m, NS_MEDIA_PARAMS, &out->params_json, err, errlen) != 0) {
        ns_model_ref_clear(out);
        goto out;
    }
    rc = 0;
out:
    ns_manifest_free(&m);
    return rc;
}

/* ---- resolution ------------------------------------------------------- */

static bool ends_with_ci(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcasecmp(s + n - k, suffix) == 0;
}

/* A name that can only mean a file: absolute, ./ ../ ~/, or a/b.gguf. */
static bool looks_like_path(const char *name)
{
    return name[0] == '/' || strncmp(name, "./", 2) == 0 || strncmp(name, "../", 3) == 0 ||
           strncmp(name, "~/", 2) == 0 || (strchr(name, '/') && ends_with_ci(name, ".gguf"));
}

static int resolve_path(const char *name, ns_model_ref *out, char *err, size_t errlen)
{
    char expanded[4096];
    const char *home = getenv("HOME");
    if (strncmp(name, "~/", 2) == 0 && home)
        snprintf(expanded, sizeof expanded, "%s/%s", home, name + 2);
    else
        snprintf(expanded, sizeof expanded, "%s", name);
    struct stat st;
    if (stat(expanded, &st) != 0) {
        snprintf(err, errlen, "model file '%s' not found: %s", name, strerror(errno));
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "model file '%s' is not a regular file", name);
        return -1;
    }
    char real[PATH_MAX];
    if (!realpath(expanded, real)) {
        snprintf(err, errlen, "model file '%s': %s", name, strerror(errno));
        return -1;
    }
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "%s", name);
    snprintf(out->path, sizeof out->path, "%s", real);
    out->size = (int64_t)st.st_size;
    out->modified = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    out->source = NS_SRC_PATH;
    return 0;
}

/* 1 found (out filled), 0 absent, -1 error (a manifest that exists but is
 * bad is an error, not a reason to look elsewhere). */
static int resolve_in(const char *root, const ns_model_name *n, ns_model_source source, ns_model_ref *out,
                      char *err, size_t errlen)
{
    if (!root[0])
        return 0;
    char mpath[4400];
    ns_model_name spelled;
    int r = ns_manifest_locate(root, n, false, mpath, sizeof mpath, &spelled, err, errlen);
    if (r <= 0)
        return r;
    return ns_ref_from_manifest(root, mpath, &spelled, source, out, err, errlen) == 0 ? 1 : -1;
}

int ns_store_resolve(ns_store *s, const char *name, ns_model_ref *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (!name || !*name) {
        snprintf(err, errlen, "no model name given");
        return -1;
    }
    if (looks_like_path(name))
        return resolve_path(name, out, err, errlen);
    struct stat st;
    if (ends_with_ci(name, ".gguf") && stat(name, &st) == 0 && S_ISREG(st.st_mode))
        return resolve_path(name, out, err, errlen);

    ns_model_name n;
    if (ns_model_name_parse(name, &n, err, errlen) != 0)
        return -1;
    int r = resolve_in(s->dir, &n, NS_SRC_NSTACK, out, err, errlen);
    if (r == 0)
        r = resolve_in(s->ollama, &n, NS_SRC_OLLAMA, out, err, errlen);
    if (r == 0) {
        snprintf(err, errlen, "model '%s' not found", name);
        return -1;
    }
    return r > 0 ? 0 : -1;
}

/* ---- listing ---------------------------------------------------------- */

int ns_manifest_walk(const char *root, ns_manifest_visit_fn fn, void *user)
{
    /* One path buffer; level i's directory is its first len[i] bytes. */
    char path[4400];
    size_t len[5];
    int w = snprintf(path, sizeof path, "%s/manifests", root);
    if (w < 0 || (size_t)w >= sizeof path)
        return 0;
    len[0] = (size_t)w;
    DIR *dirs[4] = {0};
    ns_model_name n;
    char *parts[4] = {n.host, n.ns, n.model, n.tag};
    int depth = 0, stop = 0;
    memset(&n, 0, sizeof n);
    dirs[0] = opendir(path);
    if (!dirs[0])
        return 0;
    while (depth >= 0 && !stop) {
        struct dirent *e = readdir(dirs[depth]);
        if (!e) {
            closedir(dirs[depth]);
            dirs[depth--] = NULL;
            continue;
        }
        size_t name_len = strlen(e->d_name);
        if (e->d_name[0] == '.' || name_len >= sizeof n.host || len[depth] + 1 + name_len >= sizeof path)
            continue;
        memcpy(parts[depth], e->d_name, name_len + 1);
        path[len[depth]] = '/';
        memcpy(path + len[depth] + 1, e->d_name, name_len + 1);
        len[depth + 1] = len[depth] + 1 + name_len;
        struct stat st;
        if (stat(path, &st) != 0)
            continue;
        if (depth == 3) {
            if (S_ISREG(st.st_mode))
                stop = fn(user, path, &n);
        } else if (S_ISDIR(st.st_mode)) {
            DIR *d = opendir(path);
            if (d)
                dirs[++depth] = d;
        }
    }
    for (int i = 0; i <= depth; i++)
        if (dirs[i])
            closedir(dirs[i]);
    return stop;
}

typedef struct {
    const char *root;
    ns_model_source source;
    ns_model_ref *refs;
    int n, cap, n_ours; /* n_ours: refs before the Ollama ones, for dedup */
    int failed;
} list_ctx;

static bool valid_parts(const ns_model_name *n)
{
    char full[600], err[256];
    ns_model_name check;
    snprintf(full, sizeof full, "%s/%s/%s:%s", n->host, n->ns, n->model, n->tag);
    return ns_model_name_parse(full, &check, err, sizeof err) == 0 && strcmp(check.host, n->host) == 0;
}

static int list_visit(void *user, const char *mpath, const ns_model_name *n)
{
    list_ctx *c = user;
    if (!valid_parts(n))
        return 0;
    ns_model_ref ref;
    char err[512];
    if (ns_ref_from_manifest(c->root, mpath, n, c->source, &ref, err, sizeof err) != 0) {
        /* Listing runs on every /api/tags poll: Ollama's half-pulled models
         * would repeat the same line forever, so those are debug only. */
        ns_log(c->source == NS_SRC_OLLAMA ? NS_LOG_DEBUG : NS_LOG_WARN, "store", "model skipped", "error=\"%s\"",
               err);
        return 0;
    }
    for (int i = 0; i < c->n_ours; i++)
        if (strcasecmp(c->refs[i].name, ref.name) == 0) {
            ns_model_ref_clear(&ref);
            return 0;
        }
    if (c->n == c->cap) {
        int cap = c->cap ? c->cap * 2 : 16;
        ns_model_ref *grown = realloc(c->refs, (size_t)cap * sizeof *grown);
        if (!grown) {
            ns_model_ref_clear(&ref);
            c->failed = 1;
            return 1;
        }
        c->refs = grown;
        c->cap = cap;
    }
    c->refs[c->n++] = ref;
    return 0;
}

static int by_name(const void *a, const void *b)
{
    return strcasecmp(((const ns_model_ref *)a)->name, ((const ns_model_ref *)b)->name);
}

int ns_store_list(ns_store *s, ns_model_ref **out, int *n, char *err, size_t errlen)
{
    list_ctx c = {.root = s->dir, .source = NS_SRC_NSTACK};
    *out = NULL;
    *n = 0;
    ns_manifest_walk(s->dir, list_visit, &c);
    if (!c.failed && c.n > 1)
        qsort(c.refs, (size_t)c.n, sizeof *c.refs, by_name);
    c.n_ours = c.n;
    if (!c.failed && s->ollama[0] && strcmp(s->ollama, s->dir) != 0) {
        c.root = s->ollama;
        c.source = NS_SRC_OLLAMA;
        ns_manifest_walk(s->ollama, list_visit, &c);
        if (!c.failed && c.n - c.n_ours > 1)
            qsort(c.refs + c.n_ours, (size_t)(c.n - c.n_ours), sizeof *c.refs, by_name);
    }
    if (c.failed) {
        for (int i = 0; i < c.n; i++)
            ns_model_ref_clear(&c.refs[i]);
        free(c.refs);
        snprintf(err, errlen, "out of memory listing models");
        return -1;
    }
    *out = c.refs;
    *n = c.n;
    return 0;
}
