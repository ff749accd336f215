/* /mode: the server's mode (NORMAL or GAMING), which the router polls to
 * keep inference off a machine whose owner is gaming. The state and its
 * file are in mode.c. */
#include <string.h>

#include "mode.h"
#include "routes.h"

#define BAD_MODE "mode must be \"NORMAL\" or \"GAMING\""

static void respond_state(ns_http_req *r, const ns_mode_state *st) {
    cJSON *o = ns_mode_state_json(st);
    if (!o) {
        ns_http_respond_error(r, 500, "out of memory");
        return;
    }
    ns_http_respond_json(r, 200, o);
}

static void set_mode(ns_server *s, ns_http_req *r) {
    cJSON *body = ns_route_parse_body(r);
    if (!body) return;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, "mode");
    ns_mode_kind mode;
    if (!v || cJSON_IsNull(v)) {
        ns_http_respond_error(r, 400, BAD_MODE " (the body has no \"mode\")");
    } else if (!cJSON_IsString(v)) {
        ns_http_respond_error(r, 400, BAD_MODE " (got a JSON %s)",
                              cJSON_IsNumber(v) ? "number" : cJSON_IsBool(v) ? "boolean" : cJSON_IsArray(v) ? "array"
                                                                                                             : "object");
    } else if (ns_mode_parse_name(v->valuestring, &mode) != 0) {
        ns_http_respond_error(r, 400, BAD_MODE " (got \"%.40s\")", v->valuestring);
    } else {
        ns_mode_state st;
        char err[1024];
        /* a file that cannot be written is a 500: the change would not
         * survive a restart, so it is not made at all */
        if (ns_mode_set(s->mode, mode, ns_http_peer(r), ns_http_request_id(r), &st, err, sizeof err) != 0)
            ns_http_respond_error(r, 500, "%s", err);
        else respond_state(r, &st);
    }
    cJSON_Delete(body);
}

void ns_route_mode(ns_server *s, ns_http_req *r) {
    const char *method = ns_http_method(r);
    if (strcmp(method, "PUT") == 0 || strcmp(method, "POST") == 0) {
        set_mode(s, r);
        return;
    }
    ns_mode_state st;
    ns_mode_get(s->mode, &st);
    respond_state(r, &st);
}
