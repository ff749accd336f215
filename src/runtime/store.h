/* Where models come from: a GGUF path, our own store, or Ollama's.
 *
 * Names follow Ollama's rules: [host/][namespace/]model[:tag], defaults
 * registry.ollama.ai, library and latest; case-insensitive matching; the
 * short display form drops the default host and namespace
 * ("phi3:mini", "me/tiny:q4", "example.com/me/tiny:latest").
 *
 * Our store ($NSTACK_MODELS, default $XDG_DATA_HOME/nstack/models or
 * ~/.local/share/nstack/models) uses Ollama's layout, so one reader serves
 * both: manifests/<host>/<namespace>/<model>/<tag> is a JSON manifest
 * (schemaVersion 2) whose layer with mediaType
 * "application/vnd.ollama.image.model" names blobs/sha256-<hex>, the GGUF
 * file. Optional layers "application/vnd.ollama.image.template", ".system"
 * and ".params" hold the Modelfile's template, system prompt and parameters.
 * Ollama's store is $OLLAMA_MODELS or ~/.ollama/models; we only read it.
 *
 * Resolution order for a name: an existing file path (absolute, or
 * containing '/' and ending in .gguf, or starting with ./ or ../), then our
 * store, then Ollama's. Thread-safe: every call reads the disk afresh and a
 * store-wide mutex orders writers. */
#ifndef NS_RUNTIME_STORE_H
#define NS_RUNTIME_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum { NS_SRC_PATH, NS_SRC_NSTACK, NS_SRC_OLLAMA } ns_model_source;

typedef struct {
    char name[256];    /* display name: "demo:latest", or the path as given */
    char path[4096];   /* the GGUF file */
    char digest[80];   /* "sha256:<hex>" of the GGUF blob; "" for a plain path */
    int64_t size;      /* bytes of the GGUF file */
    int64_t modified;  /* manifest (or file) mtime, Unix ns */
    ns_model_source source;
    char *template_text; /* malloc'd Modelfile template layer, or NULL */
    char *system_text;   /* malloc'd system layer, or NULL */
    char *params_json;   /* malloc'd params layer (JSON object), or NULL */
} ns_model_ref;

void ns_model_ref_clear(ns_model_ref *r); /* frees the three texts */

typedef struct {
    char host[128], ns[128], model[128], tag[128];
} ns_model_name;

/* Splits and validates a name (allowed: letters, digits, '_', '-', '.';
 * tag also; no empty parts). Returns 0, or -1 with the reason in err. */
int ns_model_name_parse(const char *s, ns_model_name *out, char *err, size_t errlen);
/* The short display form (see above). */
void ns_model_name_display(const ns_model_name *n, char *buf, size_t buflen);

typedef struct ns_store ns_store;

/* models_dir NULL: $NSTACK_MODELS or the default; ollama_dir NULL:
 * $OLLAMA_MODELS or ~/.ollama/models (a missing directory is fine).
 * Creates models_dir/{manifests,blobs} when missing. */
ns_store *ns_store_open(const char *models_dir, const char *ollama_dir, char *err, size_t errlen);
void ns_store_close(ns_store *s);
const char *ns_store_dir(const ns_store *s);

/* 0 and *out filled, or -1: err says "model 'x' not found" (or why the
 * name or manifest is bad). */
int ns_store_resolve(ns_store *s, const char *name, ns_model_ref *out, char *err, size_t errlen);

/* Every model in our store and in Ollama's (ours first; an Ollama model
 * with the same name as one of ours is left out). *out is malloc'd; free
 * each with ns_model_ref_clear and the array with free. */
int ns_store_list(ns_store *s, ns_model_ref **out, int *n, char *err, size_t errlen);

/* Adds the GGUF file at src_path to our store under name: the file is
 * hashed (SHA-256) and moved (rename, or copied when on another file system,
 * or when keep_src) to blobs/, then the manifest is written atomically.
 * Optional texts become template/system/params layers. */
int ns_store_import(ns_store *s, const char *name, const char *src_path, bool keep_src, const char *template_text,
                    const char *system_text, const char *params_json, char *err, size_t errlen);

/* A new name for an existing model (from either store; the copy is in ours,
 * blobs shared by hard link or copy when it comes from Ollama's). */
int ns_store_copy(ns_store *s, const char *src, const char *dst, char *err, size_t errlen);

/* Removes the name from our store and any blob no other manifest uses.
 * Models in Ollama's store are refused ("delete it with ollama rm"). */
int ns_store_delete(ns_store *s, const char *name, char *err, size_t errlen);

/* Where a download in progress writes: blobs/partial-<random>. */
int ns_store_temp_path(ns_store *s, char *buf, size_t buflen);

/* SHA-256 of a file as 64 hex digits. */
int ns_sha256_file(const char *path, char hex[65], char *err, size_t errlen);

#endif
