/* The session table (server/sessions.h): ids, holding (busy, model
 * binding), commit and rollback, put/replace, delete, the size limit, the
 * info object and the events. No model is needed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/options.h"
#include "server/sessions.h"

static void test_ids(void **state) {
    (void)state;
    assert_true(ns_session_id_ok("chat-1"));
    assert_true(ns_session_id_ok("a.b_c-D9"));
    assert_false(ns_session_id_ok(""));
    assert_false(ns_session_id_ok(".hidden"));
    assert_false(ns_session_id_ok("has space"));
    assert_false(ns_session_id_ok("a/b"));
    assert_false(ns_session_id_ok("snapshots"));
    char long_id[80];
    memset(long_id, 'x', 65);
    long_id[65] = '\0';
    assert_false(ns_session_id_ok(long_id));
    char id[32];
    ns_session_new_id(id, sizeof id);
    assert_true(ns_session_id_ok(id));
    assert_int_equal(strncmp(id, "s-", 2), 0);
}

static void test_hold_commit_rollback(void **state) {
    (void)state;
    ns_events *ev = ns_events_new();
    ns_sessions *t = ns_sessions_new(ev, 0);
    char err[256];
    ns_session_state st;
    bool created = false;

    assert_int_equal(ns_sessions_hold(t, "a", NULL, false, NULL, &st, NULL, err, sizeof err), 404);
    assert_int_equal(ns_sessions_hold(t, "a", "m1", true, "req-1", &st, &created, err, sizeof err), 0);
    assert_true(created);
    assert_string_equal(st.model, "m1");
    assert_int_equal(st.n_keep, NS_N_KEEP_UNSET);

    /* busy: a second hold and a delete are refused */
    ns_session_state other;
    assert_int_equal(ns_sessions_hold(t, "a", "m1", true, NULL, &other, NULL, err, sizeof err), 409);
    assert_non_null(strstr(err, "busy"));
    assert_int_equal(ns_sessions_delete(t, "a", err, sizeof err), 409);

    /* commit a turn */
    int32_t toks[] = {1, 5, 7};
    st.tokens = malloc(sizeof toks);
    memcpy(st.tokens, toks, sizeof toks);
    st.n_tokens = 3;
    st.kind = NS_SESSION_GENERATE;
    st.requests = 1;
    ns_sessions_unhold(t, "a", &st);
    ns_session_state_clear(&st);

    /* another model */
    assert_int_equal(ns_sessions_hold(t, "a", "m2", true, NULL, &st, NULL, err, sizeof err), 409);
    assert_non_null(strstr(err, "belongs to model 'm1', not 'm2'"));

    /* a rolled-back turn leaves it as it was */
    assert_int_equal(ns_sessions_hold(t, "a", "m1", true, NULL, &st, &created, err, sizeof err), 0);
    assert_false(created);
    assert_int_equal(st.n_tokens, 3);
    assert_int_equal(st.tokens[2], 7);
    st.n_tokens = 1;
    ns_sessions_unhold(t, "a", NULL);
    ns_session_state_clear(&st);
    assert_int_equal(ns_sessions_get(t, "a", &st, err, sizeof err), 0);
    assert_int_equal(st.n_tokens, 3);
    assert_false(st.busy);
    assert_int_equal(st.requests, 1);

    cJSON *info = ns_session_info_json(&st, false, 0, true);
    assert_string_equal(cJSON_GetObjectItem(info, "id")->valuestring, "a");
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(info, "max_tokens")));
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(info, "kv_bytes")));
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(info, "context")), 3);
    assert_string_equal(cJSON_GetObjectItem(info, "kind")->valuestring, "generate");
    cJSON_Delete(info);
    st.kv_per_token = 100;
    info = ns_session_info_json(&st, true, 512, false);
    assert_int_equal(cJSON_GetObjectItem(info, "max_tokens")->valueint, 512);
    assert_int_equal(cJSON_GetObjectItem(info, "kv_bytes")->valueint, 300);
    assert_null(cJSON_GetObjectItem(info, "context"));
    cJSON_Delete(info);
    ns_session_state_clear(&st);

    assert_int_equal(ns_sessions_delete(t, "a", err, sizeof err), 0);
    assert_int_equal(ns_sessions_delete(t, "a", err, sizeof err), 404);

    ns_event e[8];
    int n = ns_events_recent(ev, 0, e, 8);
    assert_int_equal(n, 1);
    assert_int_equal(e[0].kind, NS_EV_SESSION_CREATED);
    assert_string_equal(e[0].request_id, "req-1");
    ns_sessions_free(t);
    ns_events_free(ev);
}

static void test_put_and_limit(void **state) {
    (void)state;
    ns_sessions *t = ns_sessions_new(NULL, 2);
    char err[256];
    ns_session_state st = {0};
    snprintf(st.id, sizeof st.id, "x");
    snprintf(st.model, sizeof st.model, "m");
    st.messages = cJSON_CreateArray();
    assert_int_equal(ns_sessions_put(t, &st, false, err, sizeof err), 0);
    assert_null(st.messages); /* taken */

    snprintf(st.id, sizeof st.id, "x");
    snprintf(st.model, sizeof st.model, "m");
    st.n_tokens = 0;
    assert_int_equal(ns_sessions_put(t, &st, false, err, sizeof err), 409);
    st.requests = 9;
    assert_int_equal(ns_sessions_put(t, &st, true, err, sizeof err), 0);

    ns_session_state held;
    assert_int_equal(ns_sessions_hold(t, "x", NULL, false, NULL, &held, NULL, err, sizeof err), 0);
    assert_int_equal(held.requests, 9);
    snprintf(st.id, sizeof st.id, "x");
    assert_int_equal(ns_sessions_put(t, &st, true, err, sizeof err), 409); /* busy */
    ns_sessions_unhold(t, "x", NULL);
    ns_session_state_clear(&held);

    assert_int_equal(ns_sessions_hold(t, "y", "m", true, NULL, &held, NULL, err, sizeof err), 0);
    ns_sessions_unhold(t, "y", NULL);
    ns_session_state_clear(&held);
    assert_int_equal(ns_sessions_hold(t, "z", "m", true, NULL, &held, NULL, err, sizeof err), 503);
    assert_non_null(strstr(err, "too many sessions"));

    ns_session_state *all;
    int n;
    assert_int_equal(ns_sessions_list(t, &all, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(all[0].id, "x");
    assert_string_equal(all[1].id, "y");
    for (int i = 0; i < n; i++) ns_session_state_clear(&all[i]);
    free(all);
    ns_session_state_clear(&st);
    ns_sessions_free(t);
}

static void test_messages(void **state) {
    (void)state;
    ns_chat_msg m = {.role = "assistant", .content = "hi", .tool_calls_json = "[{\"function\":{\"name\":\"f\"}}]"};
    cJSON *arr = cJSON_CreateArray();
    cJSON_AddItemToArray(arr, ns_session_msg_json(&m));
    ns_chat_msg *view = NULL;
    int n = ns_session_msgs_view(arr, &view, 1);
    assert_int_equal(n, 1);
    assert_string_equal(view[0].role, "assistant");
    assert_string_equal(view[0].content, "hi");
    assert_string_equal(view[0].tool_calls_json, m.tool_calls_json);
    free(view);

    ns_session_state st = {0};
    snprintf(st.id, sizeof st.id, "c");
    st.kind = NS_SESSION_CHAT;
    st.messages = arr;
    st.n_keep = NS_N_KEEP_UNSET;
    cJSON *info = ns_session_info_json(&st, false, 0, true);
    cJSON *list = cJSON_GetObjectItem(info, "messages_list");
    assert_int_equal(cJSON_GetArraySize(list), 1);
    /* tool calls shown as JSON, not as the stored text */
    assert_true(cJSON_IsArray(cJSON_GetObjectItem(cJSON_GetArrayItem(list, 0), "tool_calls")));
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(info, "n_keep")));
    assert_int_equal(cJSON_GetObjectItem(info, "messages")->valueint, 1);
    cJSON_Delete(info);
    ns_session_state_clear(&st);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ids),
        cmocka_unit_test(test_hold_commit_rollback),
        cmocka_unit_test(test_put_and_limit),
        cmocka_unit_test(test_messages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
