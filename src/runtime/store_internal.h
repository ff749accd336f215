/* What store.c (reading) and store_write.c (import, copy, delete) share. */
#ifndef NS_RUNTIME_STORE_INTERNAL_H
#define NS_RUNTIME_STORE_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/store.h"

#define NS_MEDIA_MODEL "application/vnd.ollama.image.model"
#define NS_MEDIA_TEMPLATE "application/vnd.ollama.image.template"
#define NS_MEDIA_SYSTEM "application/vnd.ollama.image.system"
#define NS_MEDIA_PARAMS "application/vnd.ollama.image.params"
#define NS_MEDIA_CONFIG "application/vnd.docker.container.image.v1+json"
#define NS_MEDIA_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"

#define NS_DIGEST_LEN 71 /* "sha256:" + 64 hex digits */

struct ns_store {
    char dir[4096];    /* our models directory */
    char ollama[4096]; /* Ollama's models directory (may not exist) */
    pthread_mutex_t write_lock; /* orders import, copy and delete */
};

typedef struct {
    char media[128];
    char digest[NS_DIGEST_LEN + 1];
    int64_t size;
} ns_manifest_layer;

/* A manifest's blobs: the config (when there is one) and the layers. */
typedef struct {
    ns_manifest_layer config;
    bool has_config;
    ns_manifest_layer *layers;
    int n_layers;
} ns_manifest;

void ns_manifest_free(ns_manifest *m);

/* Reads and validates the manifest at path; every digest is checked to be
 * "sha256:" and 64 lower-case hex digits. Errors name the file. */
int ns_manifest_read(const char *path, ns_manifest *m, char *err, size_t errlen);

/* The layer with the given media type, or NULL. */
const ns_manifest_layer *ns_manifest_find(const ns_manifest *m, const char *media);

/* root/blobs/sha256-<hex> for a valid "sha256:<hex>" digest. */
int ns_blob_path(const char *root, const char *digest, char *buf, size_t buflen);

/* Finds root/manifests/<host>/<ns>/<model>/<tag>, each part matched without
 * regard to case (exact spelling first). Returns 1 and fills path (and
 * found, the parts as spelled on disk, when not NULL) when the manifest
 * exists; 0 when not; -1 on an I/O error. With create, missing directories
 * are made with n's spelling and path is where the manifest belongs. */
int ns_manifest_locate(const char *root, const ns_model_name *n, bool create, char *path, size_t pathlen,
                       ns_model_name *found, char *err, size_t errlen);

/* Fills a model reference from the manifest at mpath in root. */
int ns_ref_from_manifest(const char *root, const char *mpath, const ns_model_name *n, ns_model_source source,
                         ns_model_ref *out, char *err, size_t errlen);

/* Calls fn for each manifest file under root/manifests (four levels deep,
 * dot files skipped). A nonzero return from fn stops the walk. */
typedef int (*ns_manifest_visit_fn)(void *user, const char *mpath, const ns_model_name *n);
int ns_manifest_walk(const char *root, ns_manifest_visit_fn fn, void *user);

#endif
