/* The dashboard (docs/dashboard.md): GET / answers web/index.html and GET
 * /ui/{file} the other files of web/, all embedded in the binary
 * (web_assets.h). Each answer carries a strong ETag, Cache-Control: no-cache
 * (the browser revalidates, If-None-Match gets 304) and a strict
 * Content-Security-Policy: the page has no inline script or style, and talks
 * only to this server. HEAD works as for every GET route (http.c). */
#include <stdbool.h>
#include <string.h>

#include "routes.h"
#include "server/web_assets.h"

#define WEB_CSP \
    "default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'"

static const ns_web_asset *find_asset(const char *name) {
    for (size_t i = 0; i < ns_web_assets_count; i++)
        if (strcmp(ns_web_assets[i].path, name) == 0) return &ns_web_assets[i];
    return NULL;
}

/* Whether an If-None-Match header ("*", or a list of tags, weak or strong:
 * the weak comparison RFC 9110 asks for here) names etag. */
static bool etag_matches(const char *header, const char *etag) {
    size_t n = strlen(etag);
    const char *p = header;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',') p++;
        if (!*p) break;
        if (*p == '*') return true;
        if (p[0] == 'W' && p[1] == '/') p += 2;
        const char *end = p;
        if (*p == '"') {
            end = strchr(p + 1, '"');
            end = end ? end + 1 : p + strlen(p);
        } else {
            while (*end && *end != ',') end++;
        }
        if ((size_t)(end - p) == n && memcmp(p, etag, n) == 0) return true;
        p = end;
    }
    return false;
}

void ns_route_web(ns_server *s, ns_http_req *r) {
    (void)s;
    const char *path = ns_http_path(r), *name;
    if (strcmp(path, "/") == 0) name = "index.html";
    else if (strncmp(path, "/ui/", 4) == 0) name = path + 4;
    else name = "";
    /* names are looked up, never opened: a ".." cannot reach any file */
    const ns_web_asset *a = *name ? find_asset(name) : NULL;
    if (!a) {
        ns_http_respond_error(r, 404, "not found: %s %s", ns_http_method(r), path);
        return;
    }
    ns_http_add_header(r, "ETag", a->etag);
    ns_http_add_header(r, "Cache-Control", "no-cache");
    ns_http_add_header(r, "Content-Security-Policy", WEB_CSP);
    ns_http_add_header(r, "X-Content-Type-Options", "nosniff");
    ns_http_add_header(r, "X-Frame-Options", "DENY");
    ns_http_add_header(r, "Referrer-Policy", "no-referrer");
    const char *inm = ns_http_header(r, "If-None-Match");
    if (inm && etag_matches(inm, a->etag)) {
        ns_http_respond(r, 304, NULL, "", 0);
        return;
    }
    ns_http_respond(r, 200, a->content_type, (const char *)a->data, a->len);
}
