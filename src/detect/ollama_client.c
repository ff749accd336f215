/* HTTP to local runtimes and the Ollama API calls (ollama_client.h). A new
 * curl handle per request: detection makes a handful of calls to
 * different ports, where keeping connections buys nothing. */
#include "detect/ollama_client.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_OK;

static void curl_init_once(void) { curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

typedef struct {
    char *data;
    size_t len, cap;
    bool oom;
} body_buf;

/* Answers bigger than this are not from a runtime we understand (a
 * /metrics page is tens of KB). */
#define MAX_BODY ((size_t)8 << 20)

static size_t on_data(char *p, size_t size, size_t nmemb, void *user) {
    body_buf *b = user;
    size_t n = size * nmemb;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1) cap *= 2;
        char *d = cap <= MAX_BODY ? realloc(b->data, cap) : NULL;
        if (!d) {
            b->oom = true;
            return 0;
        }
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

int ns_http_request(const char *method, const char *url, const char *body, int timeout_ms, long *status, char **out,
                    size_t *outlen, char *err, size_t errlen) {
    pthread_once(&curl_once, curl_init_once);
    if (out) *out = NULL;
    if (outlen) *outlen = 0;
    *status = 0;
    CURL *c = curl_init_rc == CURLE_OK ? curl_easy_init() : NULL;
    if (!c) {
        snprintf(err, errlen, "cannot start the HTTP client (libcurl)");
        return -1;
    }
    body_buf b = {0};
    char curl_err[CURL_ERROR_SIZE] = "";
    struct curl_slist *headers = NULL;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)(timeout_ms > 0 ? timeout_ms : 500));
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)(timeout_ms > 0 && timeout_ms < 2000 ? timeout_ms : 2000));
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, curl_err);
    if (body) {
        headers = curl_slist_append(headers, "Content-Type: application/json");
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    }
    CURLcode rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    curl_slist_free_all(headers);
    curl_easy_cleanup(c);
    if (rc != CURLE_OK) {
        free(b.data);
        snprintf(err, errlen, "%s %s: %s", method, url,
                 b.oom ? "the answer is too big" : curl_err[0] ? curl_err : curl_easy_strerror(rc));
        *status = 0;
        return -1;
    }
    if (!b.data && !(b.data = calloc(1, 1))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (outlen) *outlen = b.len;
    if (out) *out = b.data;
    else free(b.data);
    return 0;
}

/* A JSON request whose 2xx answer is a JSON object: 0 with *json, or -1
 * with err naming the runtime's own "error" message when it gave one. */
static int call_json(const char *method, const char *base, const char *path, const char *body, int timeout_ms,
                     cJSON **json, char *err, size_t errlen) {
    char url[1024];
    snprintf(url, sizeof url, "%s%s", base, path);
    long status;
    char *text = NULL;
    size_t len;
    *json = NULL;
    if (ns_http_request(method, url, body, timeout_ms, &status, &text, &len, err, errlen) != 0) return -1;
    cJSON *j = cJSON_ParseWithLength(text, len);
    if (status < 200 || status >= 300) {
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
        if (cJSON_IsString(e)) snprintf(err, errlen, "%s: %s", base, e->valuestring);
        else snprintf(err, errlen, "%s %s: HTTP %ld", method, url, status);
        cJSON_Delete(j);
        free(text);
        return -1;
    }
    free(text);
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        snprintf(err, errlen, "%s %s: the answer is not a JSON object", method, url);
        return -1;
    }
    *json = j;
    return 0;
}

int ns_ollama_version(const char *base, int timeout_ms, char *version, size_t vlen, char *err, size_t errlen) {
    cJSON *j;
    if (call_json("GET", base, "/api/version", NULL, timeout_ms, &j, err, errlen) != 0) return -1;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, "version");
    int rc = -1;
    if (cJSON_IsString(v)) {
        snprintf(version, vlen, "%s", v->valuestring);
        rc = 0;
    } else {
        snprintf(err, errlen, "%s/api/version: no \"version\" in the answer", base);
    }
    cJSON_Delete(j);
    return rc;
}

static int64_t i64_field(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : -1;
}

int ns_ollama_ps(const char *base, int timeout_ms, ns_ai_model *models, int max, int *n, char *err, size_t errlen) {
    *n = 0;
    cJSON *j;
    if (call_json("GET", base, "/api/ps", NULL, timeout_ms, &j, err, errlen) != 0) return -1;
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(j, "models");
    if (!cJSON_IsArray(arr)) {
        cJSON_Delete(j);
        snprintf(err, errlen, "%s/api/ps: no \"models\" list in the answer", base);
        return -1;
    }
    const cJSON *m;
    cJSON_ArrayForEach(m, arr) {
        if (*n >= max) break;
        ns_ai_model *o = &models[*n];
        memset(o, 0, sizeof *o);
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(m, "name");
        if (!cJSON_IsString(name)) name = cJSON_GetObjectItemCaseSensitive(m, "model");
        if (!cJSON_IsString(name)) continue;
        snprintf(o->name, sizeof o->name, "%s", name->valuestring);
        o->size = i64_field(m, "size");
        o->size_vram = i64_field(m, "size_vram");
        const cJSON *exp = cJSON_GetObjectItemCaseSensitive(m, "expires_at");
        if (cJSON_IsString(exp)) snprintf(o->expires_at, sizeof o->expires_at, "%s", exp->valuestring);
        /* Only nstack says what is running; Ollama's /api/ps does not. */
        int64_t act = i64_field(m, "active_requests"), q = i64_field(m, "queued_requests");
        o->active = act < 0 && q < 0 ? -1 : (int)((act > 0 ? act : 0) + (q > 0 ? q : 0));
        (*n)++;
    }
    cJSON_Delete(j);
    return 0;
}

static int generate(const char *base, const char *model, bool unload, int timeout_ms, char *err, size_t errlen) {
    cJSON *b = cJSON_CreateObject();
    if (!b || !cJSON_AddStringToObject(b, "model", model) || (unload && !cJSON_AddNumberToObject(b, "keep_alive", 0)) ||
        !cJSON_AddBoolToObject(b, "stream", false)) {
        cJSON_Delete(b);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    char *body = cJSON_PrintUnformatted(b);
    cJSON_Delete(b);
    if (!body) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    cJSON *j;
    int rc = call_json("POST", base, "/api/generate", body, timeout_ms, &j, err, errlen);
    free(body);
    cJSON_Delete(j);
    return rc;
}

int ns_ollama_unload(const char *base, const char *model, int timeout_ms, char *err, size_t errlen) {
    return generate(base, model, true, timeout_ms, err, errlen);
}

int ns_ollama_preload(const char *base, const char *model, int timeout_ms, char *err, size_t errlen) {
    return generate(base, model, false, timeout_ms, err, errlen);
}
