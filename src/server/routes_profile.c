/* /api/profile: the active profile (GET) and applying one (PUT or POST
 * {"name": "batch_inference"}). The state and its file are in
 * profile_state.c, the profiles in runtime/profile.c. */
#include <string.h>

#include "profile_state.h"
#include "routes.h"

static void set_profile(ns_server *s, ns_http_req *r) {
    cJSON *body = ns_route_parse_body(r);
    if (!body) return;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, "name");
    if (!cJSON_IsString(v) || !v->valuestring[0]) {
        ns_http_respond_error(r, 400, "name must be a profile name such as \"batch_inference\"");
    } else {
        cJSON *answer = NULL;
        char err[4096];
        int st = ns_profile_state_set(s->profile, s->rt, v->valuestring, ns_http_peer(r), ns_http_request_id(r),
                                      &answer, err, sizeof err);
        if (st == 0) ns_http_respond_json(r, 200, answer);
        else ns_http_respond_error(r, st, "%s", err);
    }
    cJSON_Delete(body);
}

void ns_route_api_profile(ns_server *s, ns_http_req *r) {
    const char *method = ns_http_method(r);
    if (strcmp(method, "PUT") == 0 || strcmp(method, "POST") == 0) {
        set_profile(s, r);
        return;
    }
    cJSON *o = ns_profile_state_json(s->profile, s->rt);
    if (!o) ns_http_respond_error(r, 500, "out of memory");
    else ns_http_respond_json(r, 200, o);
}
