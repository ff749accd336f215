/* The dashboard's files (web/), embedded at build time: cmake/embed_web.cmake
 * generates ${CMAKE_BINARY_DIR}/web_assets.c from every file of web/. */
#ifndef NS_SERVER_WEB_ASSETS_H
#define NS_SERVER_WEB_ASSETS_H

#include <stddef.h>

typedef struct {
    const char *path;         /* under web/: "index.html", "app.js" */
    const char *content_type; /* "text/javascript; charset=utf-8" */
    const unsigned char *data;
    size_t len;
    const char *etag; /* strong, quoted: "\"<32 hex digits of the SHA-256>\"" */
} ns_web_asset;

/* ns_web_assets_count entries, then one of zeros. */
extern const ns_web_asset ns_web_assets[];
extern const size_t ns_web_assets_count;

#endif
