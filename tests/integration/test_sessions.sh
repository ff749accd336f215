#!/usr/bin/env bash
# Sessions and snapshots over HTTP (docs/sessions.md), on a real server:
# a session's turns equal plain requests given the same context; truncation;
# a snapshot restored in a fresh server process continues with the same
# text; corrupted and foreign snapshots are refused; one request at a time;
# the context shifting (or being cut) past a small num_ctx; X-Session-Id
# with /v1/chat/completions. Greedy (temperature 0) everywhere.
. "$(dirname "$0")/lib_server.bash"
need_shared models/stories260K.gguf
need_shared models/tiny-qwen2-q8_0.gguf
STORIES="$(cd "$SHARED/models" && pwd)/stories260K.gguf"
QWEN="$(cd "$SHARED/models" && pwd)/tiny-qwen2-q8_0.gguf"
SNAPS="$TMP/snapshots"

# gen BODY_EXTRA PROMPT: /api/generate on stories, greedy, 16 tokens; status printed, body in $RESP.
gen() {
    req POST /api/generate "{\"model\":\"$STORIES\",\"prompt\":$(jq -Rn --arg p "$2" '$p'),\"stream\":false,\
\"options\":{\"temperature\":0,\"num_predict\":16}$1}"
}
# expect_gen WHAT BODY_EXTRA PROMPT: a 200; the text is in $TEXT.
expect_gen() {
    local st
    st="$(gen "$2" "$3")"
    TEXT="$(jq -r .response "$RESP" 2>/dev/null)"
    if [ "$st" == 200 ]; then ok "$1"; else
        not_ok "$1: status $st"
        echo "  body: $(head -c 500 "$RESP")"
    fi
}
sessions_table() { curl -s "$BASE/api/sessions" | jq -c '[.sessions[] | {id, model, tokens, messages, requests}]'; }

start_server --no-demo --threads 1 --snapshots "$SNAPS" || exit 1

# ---- 1. a generate session: two turns, the second equals a plain request with context ----
expect_gen "session turn 1" ',"session":"g1"' "Once upon a time"
ctx1="$(jq -c .context "$RESP")"
expect_gen "session turn 2" ',"session":"g1"' " Then the cat"
turn2="$TEXT"
ctx2="$(jq -c .context "$RESP")"
expect_gen "plain request with turn 1's context" ",\"context\":$ctx1" " Then the cat"
expect_eq "turn 2 equals the plain request with context" "$TEXT" "$turn2"
expect_json "and the same context" '.context | tostring' "$ctx2"
expect_status "GET the session" 200 GET /api/sessions/g1
expect_json "its tokens are the last context" '.context | tostring' "$ctx2"
expect_json "two requests" .requests 2
expect_json "bound to the model" .model "$STORIES"
expect_json "n_keep: BOS" .n_keep 1
expect_json "max_tokens while loaded" '.max_tokens > 0' true
expect_json "kv_bytes while loaded" '.kv_bytes > 0' true
# streaming keeps the session too
curl -s -N -o "$TMP/stream" "$BASE/api/generate" -d "{\"model\":\"$STORIES\",\"prompt\":\" Later\",\"session\":\"g1\",\
\"options\":{\"temperature\":0,\"num_predict\":8}}"
expect_eq "a streamed turn ends done" true "$(tail -n 1 "$TMP/stream" | jq -r .done)"
expect_status "GET after the streamed turn" 200 GET /api/sessions/g1
expect_json "its tokens are the streamed context" '.context | tostring' "$(tail -n 1 "$TMP/stream" | jq -c .context)"
expect_status "context and session together" 400 POST /api/generate \
    "{\"model\":\"$STORIES\",\"prompt\":\"x\",\"session\":\"g1\",\"context\":[1,2]}"

# ---- 2. truncate, then continue: equals a plain request with the truncated tokens ----
expect_status "truncate below n_keep" 400 POST /api/sessions/g1/truncate '{"tokens":0}'
expect_status "truncate to 20 tokens" 200 POST /api/sessions/g1/truncate '{"tokens":20}'
expect_json "20 tokens left" .tokens 20
expect_json "one truncation" .truncations 1
expect_status "GET the truncated session" 200 GET /api/sessions/g1
cut="$(jq -c .context "$RESP")"
old_first="$(echo "$ctx1" | jq -c '.[0:1]')"
expect_eq "the first n_keep tokens stay" "$old_first" "$(echo "$cut" | jq -c '.[0:1]')"
expect_gen "continue after truncation" ',"session":"g1"' " The end"
after_cut="$TEXT"
expect_gen "plain request with the truncated tokens" ",\"context\":$cut" " The end"
expect_eq "continuing after truncation equals the plain request" "$TEXT" "$after_cut"

# ---- 3. snapshot, then restore in a fresh server ----
expect_status "snapshot of an unknown session" 404 POST /api/sessions/nope/snapshot '{}'
expect_status "snapshot g1" 201 POST /api/sessions/g1/snapshot '{"name":"snap1"}'
expect_json "snapshot meta: tokens" '.tokens > 0' true
expect_json "snapshot meta: save_ms" '.save_ms >= 0' true
expect_json "snapshot meta: mb_per_s" '.mb_per_s >= 0' true
expect_status "the same name again" 409 POST /api/sessions/g1/snapshot '{"name":"snap1"}'
expect_status "overwrite" 201 POST /api/sessions/g1/snapshot '{"name":"snap1","overwrite":true}'
expect_status "list snapshots" 200 GET /api/sessions/snapshots
expect_json "snap1 is listed" '[.snapshots[].name] | index("snap1") != null' true
expect_status "GET snap1" 200 GET /api/sessions/snapshots/snap1
expect_json "snap1's session" .session g1
expect_status "GET a missing snapshot" 404 GET /api/sessions/snapshots/nosuch
expect_gen "continue in server A" ',"session":"g1"' " Next"
in_a="$TEXT"
stop_server

start_server --no-demo --threads 1 --snapshots "$SNAPS" || exit 1
expect_status "no sessions in server B" 200 GET /api/sessions
expect_json "the table is empty" '.sessions | length' 0
expect_status "restore snap1 in server B" 201 POST /api/sessions/snapshots/snap1/restore '{}'
expect_json "restored session id" .id g1
expect_json "restore_ms" '.restore_ms >= 0' true
expect_json "mb_per_s" '.mb_per_s >= 0' true
expect_status "restore again without replace" 409 POST /api/sessions/snapshots/snap1/restore '{}'
expect_gen "continue in server B" ',"session":"g1"' " Next"
expect_eq "server B continues as server A did" "$in_a" "$TEXT"

# ---- 4. corrupted and foreign snapshots ----
expect_status "snapshot snap2" 201 POST /api/sessions/g1/snapshot '{"name":"snap2"}'
before="$(sessions_table)"
file="$SNAPS/snap2.nsnap"
size="$(stat -c %s "$file")"
byte="$(od -An -tu1 -j $((size / 2)) -N1 "$file" | tr -d ' ')"
printf "$(printf '\\%03o' $(((byte + 1) % 256)))" | dd of="$file" bs=1 seek=$((size / 2)) conv=notrunc 2>/dev/null
expect_status "a corrupted snapshot is refused" 400 POST /api/sessions/snapshots/snap2/restore '{"session":"c1"}'
expect_json "it says damaged" '.error | test("damaged")' true
expect_eq "the session table is unchanged" "$before" "$(sessions_table)"
expect_status "a foreign model is refused" 400 POST /api/sessions/snapshots/snap1/restore \
    "{\"session\":\"f1\",\"model\":\"$QWEN\"}"
expect_json "naming the saved model" ".error | contains(\"$STORIES\")" true
expect_json "and the other" ".error | contains(\"$QWEN\")" true
expect_eq "the session table is unchanged" "$before" "$(sessions_table)"
expect_status "delete snap2" 200 DELETE /api/sessions/snapshots/snap2
expect_status "delete it again" 404 DELETE /api/sessions/snapshots/snap2

# ---- 5. one request at a time; unknown and bad ids ----
# A generation that cannot end by itself (end-of-text banned, no length
# limit worth the name, the context shifting) holds the session until its
# client hangs up.
eos="$(curl -s "$BASE/api/show" -d "{\"model\":\"$STORIES\"}" | jq -r '.model_info["tokenizer.ggml.eos_token_id"] // 2')"
curl -s -N -o "$TMP/long" "$BASE/v1/completions" -d "{\"model\":\"$STORIES\",\"prompt\":\"Once\",\"session\":\"busy1\",\
\"stream\":true,\"temperature\":0,\"max_tokens\":100000000,\"logit_bias\":{\"$eos\":-100}}" &
long_pid=$!
for ((i = 0; i < 600; i++)); do
    [ -s "$TMP/long" ] && break
    sleep 0.05
done
codes=""
for p in A B; do
    codes="$codes $(req POST /v1/completions "{\"model\":\"$STORIES\",\"prompt\":\"$p\",\"session\":\"busy1\",\"max_tokens\":2}")"
done
expect_eq "a second request on a busy session gets 409 (twice)" " 409 409" "$codes"
expect_json "saying busy" '.error.message | test("busy")' true
expect_status "deleting a busy session" 409 DELETE /api/sessions/busy1
kill "$long_pid" 2>/dev/null
wait "$long_pid" 2>/dev/null
for ((i = 0; i < 200; i++)); do
    [ "$(req GET /api/sessions/busy1)" == 200 ] && [ "$(jq -r .busy "$RESP")" == false ] && break
    sleep 0.05
done
expect_json "the session is free once the client hangs up" .busy false
expect_json "and unchanged (the turn was cancelled)" .tokens 0
expect_status "GET an unknown session" 404 GET /api/sessions/nosuch
expect_status "DELETE an unknown session" 404 DELETE /api/sessions/nosuch
expect_status "a bad id in the path" 400 GET /api/sessions/bad~id
expect_status "a bad id in a request" 400 POST /api/generate "{\"model\":\"$STORIES\",\"prompt\":\"x\",\"session\":\"bad id\"}"
st="$(curl -s -o "$RESP" -w '%{http_code}' -H 'X-Session-Id: other' "$BASE/api/generate" \
    -d "{\"model\":\"$STORIES\",\"prompt\":\"x\",\"session\":\"g1\"}")"
expect_eq "body and header naming different sessions" 400 "$st"
expect_status "another model on a session" 409 POST /api/chat \
    "{\"model\":\"$QWEN\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"session\":\"g1\",\"stream\":false}"
expect_json "naming both" ".error | contains(\"belongs to model\")" true
expect_status "delete busy1" 200 DELETE /api/sessions/busy1
expect_json "deleted" .deleted busy1

# ---- create, clear ----
expect_status "create a session" 201 POST /api/sessions "{\"model\":\"$STORIES\",\"id\":\"made\",\"num_keep\":3}"
expect_json "created empty" .tokens 0
expect_json "with n_keep" .n_keep 3
expect_status "create it again" 409 POST /api/sessions "{\"model\":\"$STORIES\",\"id\":\"made\"}"
expect_status "create with a generated id" 201 POST /api/sessions "{\"model\":\"$STORIES\"}"
expect_json "an id was made" '.id | length > 0' true
expect_status "create for an unknown model" 404 POST /api/sessions '{"model":"no-such-model"}'
expect_gen "a turn on the created session" ',"session":"made"' "Once"
expect_status "clear" 200 POST /api/sessions/made/clear
expect_json "no tokens after clear" .tokens 0
expect_json "settings kept" .n_keep 3

# ---- 6. a small context: turns go on past it ----
for t in 1 2 3 4 5; do
    st="$(req POST /api/generate "{\"model\":\"$STORIES\",\"prompt\":\" and then\",\"session\":\"small\",\"stream\":false,\
\"options\":{\"temperature\":0,\"num_predict\":40,\"num_ctx\":64}}")"
    [ "$st" == 200 ] || break
done
expect_eq "five turns past a 64-token context" 200 "$st"
[ "$st" == 200 ] || echo "  body: $(head -c 500 "$RESP")"
expect_status "GET the small session" 200 GET /api/sessions/small
expect_json "it shifted or was cut" '(.shifts + .truncations) > 0' true
expect_json "five requests" .requests 5

# ---- 7. X-Session-Id with /v1/chat/completions ----
chat() {
    curl -s -o "$RESP" -w '%{http_code}' -H 'X-Session-Id: c7' -H 'Content-Type: application/json' \
        "$BASE/v1/chat/completions" -d "{\"model\":\"$QWEN\",\"temperature\":0,\"max_tokens\":8,\
\"messages\":[{\"role\":\"user\",\"content\":$(jq -Rn --arg p "$1" '$p')}]}"
}
expect_eq "chat turn 1" 200 "$(chat "Hello there")"
p1="$(jq '.usage.prompt_tokens + .usage.completion_tokens' "$RESP")"
expect_eq "chat turn 2" 200 "$(chat "And again")"
p2="$(jq .usage.prompt_tokens "$RESP")"
if [ "$p2" -gt "$p1" ]; then ok "turn 2's prompt holds turn 1 ($p2 > $p1 tokens)"; else not_ok "turn 2's prompt ($p2) does not hold turn 1 ($p1)"; fi
expect_status "GET the chat session" 200 GET /api/sessions/c7
expect_json "four messages" .messages 4
expect_json "the second is the assistant's" '.messages_list[1].role' assistant
expect_json "kind chat" .kind chat
expect_status "a chat session used for completion" 409 POST /api/generate \
    "{\"model\":\"$QWEN\",\"prompt\":\"x\",\"session\":\"c7\",\"stream\":false}"
expect_status "truncate the chat to its last exchange" 200 POST /api/sessions/c7/truncate "{\"tokens\":$((p2 - 1))}"
expect_json "two messages dropped" .messages 2
expect_status "snapshot the chat" 201 POST /api/sessions/c7/snapshot '{"name":"chat1"}'
expect_json "with its messages" '.messages_bytes > 0' true
expect_status "restore it as another session" 201 POST /api/sessions/snapshots/chat1/restore '{"session":"c8"}'
expect_json "two messages restored" .messages 2
expect_status "delete c7" 200 DELETE /api/sessions/c7

stop_server
finish
