/* Model names as Ollama spells them: [host/][namespace/]model[:tag].
 *
 * The part rules follow Ollama's: a part starts with a letter, digit or '_'
 * and goes on with those, '-' and '.'; a namespace has no '.', only a host
 * may hold ':' (a port). Since no part can contain '/' or start with '.',
 * a parsed name used as a path under manifests/ can never leave it. */
#include "runtime/store.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define DEFAULT_HOST "registry.ollama.ai"
#define DEFAULT_NAMESPACE "library"
#define DEFAULT_TAG "latest"
#define MAX_PART 80 /* Ollama's limit for every part but the host */

typedef enum { PART_HOST, PART_NAMESPACE, PART_MODEL, PART_TAG } part_kind;

static const char *part_label(part_kind kind)
{
    switch (kind) {
    case PART_HOST: return "host";
    case PART_NAMESPACE: return "namespace";
    case PART_MODEL: return "model";
    default: return "tag";
    }
}

static int starts_well(char c)
{
    return isalnum((unsigned char)c) || c == '_';
}

/* Copies [s, s+len) into dst after checking it against the rules of kind. */
static int take_part(part_kind kind, const char *s, size_t len, char *dst, size_t dstlen, const char *whole,
                     char *err, size_t errlen)
{
    size_t max = kind == PART_HOST ? dstlen - 1 : MAX_PART;
    if (len == 0) {
        snprintf(err, errlen, "invalid model name '%s': empty %s", whole, part_label(kind));
        return -1;
    }
    if (len > max || len >= dstlen) {
        snprintf(err, errlen, "invalid model name '%s': %s longer than %zu characters", whole, part_label(kind), max);
        return -1;
    }
    if (!starts_well(s[0])) {
        snprintf(err, errlen, "invalid model name '%s': %s must start with a letter, digit or '_'", whole,
                 part_label(kind));
        return -1;
    }
    for (size_t i = 1; i < len; i++) {
        char c = s[i];
        int ok = starts_well(c) || c == '-' || (c == '.' && kind != PART_NAMESPACE) || (c == ':' && kind == PART_HOST);
        if (!ok) {
            if (isprint((unsigned char)c))
                snprintf(err, errlen, "invalid model name '%s': character '%c' not allowed in the %s", whole, c,
                         part_label(kind));
            else
                snprintf(err, errlen, "invalid model name '%s': byte 0x%02x not allowed in the %s", whole,
                         (unsigned char)c, part_label(kind));
            return -1;
        }
    }
    memcpy(dst, s, len);
    dst[len] = '\0';
    return 0;
}

int ns_model_name_parse(const char *s, ns_model_name *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (!s || !*s) {
        snprintf(err, errlen, "invalid model name '': empty");
        return -1;
    }
    size_t len = strlen(s);
    if (len > 600) {
        snprintf(err, errlen, "invalid model name: longer than 600 characters");
        return -1;
    }
    const char *end = s + len;

    /* The tag is after the last ':' only when that ':' follows the last '/',
     * because a host may carry a port ("localhost:5000/me/tiny"). */
    const char *last_slash = strrchr(s, '/');
    const char *last_colon = strrchr(s, ':');
    if (last_colon && (!last_slash || last_colon > last_slash)) {
        if (take_part(PART_TAG, last_colon + 1, (size_t)(end - last_colon - 1), out->tag, sizeof out->tag, s, err,
                      errlen))
            return -1;
        end = last_colon;
    } else {
        strcpy(out->tag, DEFAULT_TAG);
    }

    const char *model_start = s;
    for (const char *p = end; p > s; p--)
        if (p[-1] == '/') {
            model_start = p;
            break;
        }
    if (take_part(PART_MODEL, model_start, (size_t)(end - model_start), out->model, sizeof out->model, s, err,
                  errlen))
        return -1;
    if (model_start == s) {
        strcpy(out->host, DEFAULT_HOST);
        strcpy(out->ns, DEFAULT_NAMESPACE);
        return 0;
    }

    end = model_start - 1; /* the '/' */
    const char *ns_start = s;
    for (const char *p = end; p > s; p--)
        if (p[-1] == '/') {
            ns_start = p;
            break;
        }
    if (take_part(PART_NAMESPACE, ns_start, (size_t)(end - ns_start), out->ns, sizeof out->ns, s, err, errlen))
        return -1;
    if (ns_start == s) {
        strcpy(out->host, DEFAULT_HOST);
        return 0;
    }

    /* What is left is the host, optionally written as a URL ("https://host"). */
    const char *host = s;
    end = ns_start - 1;
    const char *scheme_end = strstr(s, "://");
    if (scheme_end && scheme_end < end)
        host = scheme_end + 3;
    return take_part(PART_HOST, host, (size_t)(end - host), out->host, sizeof out->host, s, err, errlen);
}

void ns_model_name_display(const ns_model_name *n, char *buf, size_t buflen)
{
    if (strcasecmp(n->host, DEFAULT_HOST) != 0)
        snprintf(buf, buflen, "%s/%s/%s:%s", n->host, n->ns, n->model, n->tag);
    else if (strcasecmp(n->ns, DEFAULT_NAMESPACE) != 0)
        snprintf(buf, buflen, "%s/%s:%s", n->ns, n->model, n->tag);
    else
        snprintf(buf, buflen, "%s:%s", n->model, n->tag);
}
