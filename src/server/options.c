/* Ollama's `options` (and a Modelfile's params layer): every key checked for
 * its type and range, with the key named in the error. */
#include "options.h"

#include <math.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/duration.h"
#include "util/log.h"

#define MAX_STOPS 16
#define MAX_STOP_BYTES 256

/* Ollama's default seed is -1: a new random seed per request. Requests in
 * the same nanosecond still differ through the counter. */
static uint64_t random_seed(void) {
    static atomic_uint_fast64_t counter;
    uint64_t z = (uint64_t)ns_now_wall() + 0x9E3779B97F4A7C15ull * (atomic_fetch_add(&counter, 1) + 1);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void ns_gen_options_init(ns_gen_options *o) {
    memset(o, 0, sizeof *o);
    o->sampling = ns_sampler_defaults();
    o->sampling.seed = random_seed();
    o->load.num_gpu = -1;
    o->n_predict = -1;
    o->n_keep = NS_N_KEEP_UNSET;
}

static void free_stops(ns_gen_options *o) {
    for (int i = 0; i < o->n_stops; i++) free(o->stops[i]);
    free(o->stops);
    o->stops = NULL;
    o->n_stops = 0;
}

void ns_gen_options_free(ns_gen_options *o) {
    if (!o) return;
    free_stops(o);
    free(o->logit_bias);
    o->logit_bias = NULL;
    o->sampling.logit_bias = NULL;
    o->sampling.n_logit_bias = 0;
}

typedef struct {
    const char *what, *key;
    char *err;
    size_t errlen;
} ctx;

static int bad(const ctx *c, const char *fmt, const char *range) {
    char msg[160];
    snprintf(msg, sizeof msg, fmt, range);
    snprintf(c->err, c->errlen, "%s.%s must be %s", c->what, c->key, msg);
    return -1;
}

static int get_number(const ctx *c, const cJSON *v, double lo, double hi, const char *range, double *out) {
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < lo || v->valuedouble > hi)
        return bad(c, "a number%s", range);
    *out = v->valuedouble;
    return 0;
}

/* An integer given as a JSON number with no fractional part. */
static int get_int(const ctx *c, const cJSON *v, double lo, double hi, const char *range, long long *out) {
    double d = v->valuedouble;
    if (!cJSON_IsNumber(v) || !isfinite(d) || d != floor(d) || d < lo || d > hi) return bad(c, "an integer%s", range);
    *out = (long long)d;
    return 0;
}

static int set_stops(ns_gen_options *o, const ctx *c, const cJSON *v) {
    int n = 0;
    if (cJSON_IsString(v)) n = 1;
    else if (cJSON_IsArray(v)) n = cJSON_GetArraySize(v);
    else return bad(c, "a string or an array of strings%s", "");
    if (n > MAX_STOPS) {
        snprintf(c->err, c->errlen, "%s.%s has %d strings; at most %d are allowed", c->what, c->key, n, MAX_STOPS);
        return -1;
    }
    const cJSON *items[MAX_STOPS];
    if (cJSON_IsString(v)) items[0] = v;
    else {
        int i = 0;
        for (const cJSON *it = v->child; it; it = it->next) items[i++] = it;
    }
    for (int i = 0; i < n; i++) {
        if (!cJSON_IsString(items[i])) return bad(c, "a string or an array of strings%s", "");
        if (strlen(items[i]->valuestring) > MAX_STOP_BYTES) {
            snprintf(c->err, c->errlen, "%s.%s: a stop sequence is longer than %d bytes", c->what, c->key,
                     MAX_STOP_BYTES);
            return -1;
        }
    }
    char **stops = calloc((size_t)(n > 0 ? n : 1), sizeof *stops);
    if (!stops) {
        snprintf(c->err, c->errlen, "out of memory");
        return -1;
    }
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (!*items[i]->valuestring) continue; /* an empty stop would match everywhere */
        if (!(stops[k] = strdup(items[i]->valuestring))) {
            for (int j = 0; j < k; j++) free(stops[j]);
            free(stops);
            snprintf(c->err, c->errlen, "out of memory");
            return -1;
        }
        k++;
    }
    free_stops(o);
    o->stops = stops;
    o->n_stops = k;
    return 0;
}

/* Keys Ollama accepts that only matter to its own engine: checked, ignored. */
static const char *const ignored_bools[] = {"penalize_newline", "numa", "low_vram", "vocab_only",
                                            "use_mlock", "f16_kv", "logits_all", "embedding_only", NULL};

static int apply_one(ns_gen_options *o, const ctx *c, const cJSON *v) {
    const char *k = c->key;
    ns_sampler_params *sp = &o->sampling;
    double d;
    long long i;
    if (strcmp(k, "temperature") == 0) {
        if (get_number(c, v, -INFINITY, INFINITY, "", &d)) return -1;
        sp->temperature = (float)d;
    } else if (strcmp(k, "top_k") == 0) {
        if (get_int(c, v, 0, 1 << 30, " >= 0", &i)) return -1;
        sp->top_k = (int)i;
    } else if (strcmp(k, "top_p") == 0 || strcmp(k, "min_p") == 0 || strcmp(k, "typical_p") == 0) {
        if (get_number(c, v, 0, 1, " in [0, 1]", &d)) return -1;
        *(k[0] == 't' && k[1] == 'o' ? &sp->top_p : k[0] == 'm' ? &sp->min_p : &sp->typical_p) = (float)d;
    } else if (strcmp(k, "repeat_last_n") == 0) {
        if (get_int(c, v, -1, 1 << 30, " >= -1", &i)) return -1;
        sp->repeat_last_n = (int)i;
    } else if (strcmp(k, "repeat_penalty") == 0) {
        if (get_number(c, v, 0, INFINITY, " > 0", &d) || d == 0) return bad(c, "a number%s", " > 0");
        sp->repeat_penalty = (float)d;
    } else if (strcmp(k, "frequency_penalty") == 0 || strcmp(k, "presence_penalty") == 0) {
        if (get_number(c, v, -2, 2, " in [-2, 2]", &d)) return -1;
        *(k[0] == 'f' ? &sp->frequency_penalty : &sp->presence_penalty) = (float)d;
    } else if (strcmp(k, "mirostat") == 0) {
        if (get_int(c, v, 0, 2, " in [0, 2]", &i)) return -1;
        sp->mirostat = (int)i;
    } else if (strcmp(k, "mirostat_tau") == 0) {
        if (get_number(c, v, 0, 100, " in [0, 100]", &d)) return -1;
        sp->mirostat_tau = (float)d;
    } else if (strcmp(k, "mirostat_eta") == 0) {
        if (get_number(c, v, 0, 1, " in [0, 1]", &d)) return -1;
        sp->mirostat_eta = (float)d;
    } else if (strcmp(k, "seed") == 0) {
        /* any integer; -1 is Ollama's "random"; others are used as uint64 bits */
        if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < -9.2e18 ||
            v->valuedouble >= 1.8e19)
            return bad(c, "an integer%s", "");
        d = v->valuedouble;
        if (d == -1) sp->seed = random_seed();
        else if (d >= 9.2e18) sp->seed = (uint64_t)d;
        else sp->seed = (uint64_t)(int64_t)d;
    } else if (strcmp(k, "stop") == 0) {
        return set_stops(o, c, v);
    } else if (strcmp(k, "num_predict") == 0) {
        if (get_int(c, v, -2, 1e15, " >= -2 (-1: no limit)", &i)) return -1;
        o->n_predict = i < 0 ? -1 : i;
    } else if (strcmp(k, "num_ctx") == 0) {
        if (get_int(c, v, 0, 1 << 20, " in [0, 1048576]", &i)) return -1;
        o->load.n_ctx = (int)i;
    } else if (strcmp(k, "num_batch") == 0) {
        if (get_int(c, v, 0, 1 << 20, " in [0, 1048576]", &i)) return -1;
        o->load.n_batch = (int)i;
    } else if (strcmp(k, "num_thread") == 0) {
        if (get_int(c, v, 0, 1024, " in [0, 1024]", &i)) return -1;
        o->load.n_thread = (int)i;
    } else if (strcmp(k, "num_gpu") == 0) {
        if (get_int(c, v, -1, 1 << 20, " >= -1 (-1: automatic)", &i)) return -1;
        o->load.num_gpu = (int)i;
    } else if (strcmp(k, "main_gpu") == 0) {
        if (get_int(c, v, 0, 1024, " in [0, 1024]", &i)) return -1;
        o->load.main_gpu = (int)i;
    } else if (strcmp(k, "use_mmap") == 0) {
        if (!cJSON_IsBool(v)) return bad(c, "true or false%s", "");
        o->load.use_mmap = cJSON_IsTrue(v) ? 1 : -1;
    } else if (strcmp(k, "num_keep") == 0) {
        if (get_int(c, v, -1, 1 << 30, " >= -1", &i)) return -1;
        o->n_keep = (int)i;
    } else {
        for (int j = 0; ignored_bools[j]; j++)
            if (strcmp(k, ignored_bools[j]) == 0) {
                if (!cJSON_IsBool(v)) return bad(c, "true or false%s", "");
                return 0;
            }
        ns_log_debug("server", "ignoring an unknown option", "key=\"%.64s\"", k);
    }
    return 0;
}

int ns_gen_options_apply(ns_gen_options *o, const cJSON *obj, const char *what, char *err, size_t errlen) {
    if (!what) what = "options";
    if (!obj || cJSON_IsNull(obj)) return 0;
    if (!cJSON_IsObject(obj)) {
        snprintf(err, errlen, "%s must be an object", what);
        return -1;
    }
    for (const cJSON *v = obj->child; v; v = v->next) {
        if (!v->string || cJSON_IsNull(v)) continue; /* null: keep the default */
        ctx c = {.what = what, .key = v->string, .err = err, .errlen = errlen};
        if (apply_one(o, &c, v)) return -1;
    }
    /* the sampler's own check, with its wording, for anything left */
    char why[200];
    if (ns_sampler_params_check(&o->sampling, why, sizeof why) != 0) {
        snprintf(err, errlen, "%s: %s", what, why);
        return -1;
    }
    return 0;
}

int ns_parse_keep_alive(const cJSON *v, int64_t *out_ns, char *err, size_t errlen) {
    *out_ns = NS_KEEP_ALIVE_DEFAULT;
    if (!v || cJSON_IsNull(v)) return 0;
    if (cJSON_IsNumber(v)) {
        double s = v->valuedouble;
        if (!isfinite(s)) goto bad;
        if (s < 0) *out_ns = -1; /* negative: forever */
        else if (s * 1e9 >= 9.2e18) *out_ns = INT64_MAX - 1;
        else *out_ns = (int64_t)(s * 1e9);
        return 0;
    }
    if (cJSON_IsString(v)) {
        if (!*v->valuestring) return 0; /* some clients send "" for "not set" */
        char why[200];
        int64_t ns;
        if (ns_duration_parse(v->valuestring, &ns, why, sizeof why) != 0) {
            snprintf(err, errlen, "keep_alive: %s", why);
            return -1;
        }
        *out_ns = ns < 0 ? -1 : ns;
        return 0;
    }
bad:
    snprintf(err, errlen, "keep_alive must be a duration such as \"5m\" or a number of seconds");
    return -1;
}
