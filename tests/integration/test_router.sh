#!/usr/bin/env bash
# Issue #8 with real processes on loopback: two `nstack serve` upstreams (a
# small node serving tiny-llama through its OpenAI API, `kind = "openai"`,
# so Ollama-API requests are translated; a big node serving tiny-qwen2 as
# `kind = "nstack"`) and `nstack route` in front. Every rule of the policy
# is exercised and checked in the X-Route-* headers and the audit log: each
# force signal, the threshold on both sides, the regex, GAMING vs NORMAL, a
# mode endpoint that is down, the big node killed (fail-soft before the
# first byte) and killed mid-stream (a clear error ends the stream).
. "$(dirname "$0")/lib_server.bash"
need_shared models/tiny-llama-q4_0.gguf
need_shared models/tiny-qwen2-q8_0.gguf
SMALL_MODEL="$(realpath "$SHARED/models/tiny-llama-q4_0.gguf")"
BIG_MODEL="$(realpath "$SHARED/models/tiny-qwen2-q8_0.gguf")"
AUDIT="$TMP/route.jsonl"
ROUTER_PID=""
OTHER_PIDS=()
cleanup_router_test() {
    for p in "$ROUTER_PID" "${OTHER_PIDS[@]}"; do
        [ -n "$p" ] && kill -KILL "$p" 2>/dev/null
    done
    _server_cleanup
}
trap cleanup_router_test EXIT

# start_node NAME: a `nstack serve` of its own; sets NODE_PID and NODE_URL
start_node() {
    SERVER_MODELS="$TMP/models-$1" SERVER_MODE_FILE="$TMP/mode-$1.json" SERVER_DB="$TMP/$1.db" \
        start_server --no-demo --keep-alive -1 --sample-interval off || exit 1
    NODE_PID="$SERVER_PID" NODE_URL="$BASE"
    OTHER_PIDS+=("$SERVER_PID")
    SERVER_PID="" # the router test stops its nodes itself
}

# write_config FILE MODE_URL
write_config() {
    cat >"$1" <<EOF
[router]
listen = "127.0.0.1:0"
token_threshold = 60
mode_url = "$2"
mode_poll = "100ms"
mode_timeout = "200ms"
health_interval = "200ms"
health_backoff_max = "1s"
audit_log = "$AUDIT"

[router.force]
header = "X-Force-Big"
model = "big"
tag = "#force_big"
regex = '(?i)\btheorem\b'  # a literal string: TOML would read "\b" as a backspace

[[router.upstream]]
name = "small"
url = "$SMALL_URL"
kind = "openai"
role = "small"
model = "$SMALL_MODEL"
first_byte_timeout = "20s"

[[router.upstream]]
name = "big"
url = "$BIG_URL"
kind = "nstack"
role = "big"
model = "$BIG_MODEL"
connect_timeout = "1s"
first_byte_timeout = "20s"
EOF
}

# start_router CONFIG: sets ROUTER_PID and ROUTER
start_router() {
    "$NSTACK" route --config "$1" 2>"$TMP/router.log" &
    ROUTER_PID=$!
    local i port=""
    for ((i = 0; i < 200; i++)); do
        port="$(sed -n 's|.*msg="listening" url=http://[^ ]*:\([0-9][0-9]*\) .*|\1|p' "$TMP/router.log" | head -n1)"
        [ -n "$port" ] && break
        kill -0 "$ROUTER_PID" 2>/dev/null || break
        sleep 0.05
    done
    if [ -z "$port" ]; then
        not_ok "the router starts"; cat "$TMP/router.log"; exit 1
    fi
    ROUTER="http://127.0.0.1:$port"
}

stop_router() {
    kill -TERM "$ROUTER_PID" 2>/dev/null
    wait "$ROUTER_PID"
    local rc=$?
    ROUTER_PID=""
    expect_eq "the router exits 0 on SIGTERM" "0" "$rc"
}

# route WHAT PATH BODY RULE UPSTREAM [curl args...]: one routed request;
# checks the status, the headers and the last audit line.
route() {
    local what="$1" path="$2" body="$3" rule="$4" upstream="$5"
    shift 5
    local before got
    before="$(wc -l <"$AUDIT" 2>/dev/null || echo 0)"
    got="$(curl -s -D "$TMP/h" -o "$RESP" -w '%{http_code}' -H 'Content-Type: application/json' "$@" \
        --data-binary "$body" "$ROUTER$path")"
    local hrule hup
    hrule="$(tr -d '\r' <"$TMP/h" | awk -F': ' 'tolower($1) == "x-route-rule" { print $2 }')"
    hup="$(tr -d '\r' <"$TMP/h" | awk -F': ' 'tolower($1) == "x-route-upstream" { print $2 }')"
    if [ "$got" = 200 ] && [ "$hrule" = "$rule" ] && [ "$hup" = "$upstream" ]; then
        ok "$what: 200, $upstream by $rule"
    else
        not_ok "$what: status $got, upstream '$hup' by '$hrule' (expected $upstream by $rule)"
        head -c 400 "$RESP"; echo
    fi
    local i
    for ((i = 0; i < 40; i++)); do [ "$(wc -l <"$AUDIT" 2>/dev/null || echo 0)" -gt "$before" ] && break; sleep 0.05; done
    LAST_AUDIT="$(tail -n 1 "$AUDIT")"
    if [ "$(jq -r '.rule + " " + .upstream' <<<"$LAST_AUDIT")" = "$rule $upstream" ]; then ok "$what: audit line"
    else not_ok "$what: audit line $LAST_AUDIT"; fi
}

chat() { printf '{"model":"%s","messages":[{"role":"user","content":"%s"}],"max_tokens":4,"temperature":0}' "$1" "$2"; }
gen() { printf '{"model":"%s","prompt":"%s","stream":false,"options":{"num_predict":4,"temperature":0}}' "$1" "$2"; }
LONG="$(printf 'word %.0s' $(seq 1 120))" # 600 bytes: ~150 tokens by bytes/4, over the threshold of 60

start_node small; SMALL_PID="$NODE_PID" SMALL_URL="$NODE_URL"
start_node big; BIG_PID="$NODE_PID" BIG_URL="$NODE_URL"
# The mode is served by the small node here (any node may serve it), so
# that killing the big node below tests health and fail-soft, not the mode.
MODE_URL="$SMALL_URL/mode"
write_config "$TMP/router.toml" "$MODE_URL"
start_router "$TMP/router.toml"

# ---- NORMAL mode ----
route "a short chat" /v1/chat/completions "$(chat any hello)" below_threshold small
expect_eq "the small node's model answered" "$SMALL_MODEL" "$(jq -r .model "$RESP")"
route "a long prompt" /v1/chat/completions "$(chat any "$LONG")" threshold big
expect_eq "the big node's model answered" "$BIG_MODEL" "$(jq -r .model "$RESP")"
expect_eq "the audit line has the estimate" "true" "$(jq '.estimate >= 60 and .threshold == 60' <<<"$LAST_AUDIT")"
route "the force header" /v1/chat/completions "$(chat any hi)" force_big big -H 'X-Force-Big: true'
expect_eq "signals.header" "true" "$(jq .signals.header <<<"$LAST_AUDIT")"
route "the force model alias" /v1/chat/completions "$(chat big hi)" force_big big
expect_eq "signals.model" "true" "$(jq .signals.model <<<"$LAST_AUDIT")"
route "the force tag" /v1/chat/completions "$(chat any 'hi #force_big')" force_big big
expect_eq "signals.tag" "true" "$(jq .signals.tag <<<"$LAST_AUDIT")"
route "the force regex" /v1/chat/completions "$(chat any 'a Theorem please')" force_regex big
route "Ollama generate to the small (openai) node: translated" /api/generate "$(gen any hello)" below_threshold small
expect_eq "an Ollama answer" "true" "$(jq '.done == true and (.response | type) == "string" and .eval_count > 0' "$RESP")"
route "Ollama chat to the big (nstack) node: passed through" /api/chat \
    '{"model":"big","messages":[{"role":"user","content":"hi"}],"stream":false,"options":{"num_predict":3}}' force_big big
expect_eq "an Ollama chat answer" "true" "$(jq '.done == true and .message.role == "assistant"' "$RESP")"

# streaming, both APIs, through the translation and straight
curl -sN -D "$TMP/h" -H 'Content-Type: application/json' --data-binary \
    '{"model":"x","messages":[{"role":"user","content":"hi"}],"stream":true,"max_tokens":5}' \
    "$ROUTER/v1/chat/completions" >"$TMP/sse.txt"
if grep -q '^data: \[DONE\]' "$TMP/sse.txt" && [ "$(grep -c '^data: {' "$TMP/sse.txt")" -ge 2 ]; then ok "an OpenAI stream passes through"
else not_ok "OpenAI stream: $(head -c 300 "$TMP/sse.txt")"; fi
curl -sN -H 'Content-Type: application/json' --data-binary \
    '{"model":"x","messages":[{"role":"user","content":"hi"}],"options":{"num_predict":5}}' \
    "$ROUTER/api/chat" >"$TMP/nd.txt"
if [ "$(tail -n 1 "$TMP/nd.txt" | jq .done)" = true ] && [ "$(wc -l <"$TMP/nd.txt")" -ge 2 ] &&
    [ "$(head -n 1 "$TMP/nd.txt" | jq -r .message.role)" = assistant ]; then ok "an Ollama stream is translated line by line"
else not_ok "Ollama stream from the openai node: $(head -c 300 "$TMP/nd.txt")"; fi

# ---- GAMING ----
curl -s -X PUT -d '{"mode":"GAMING"}' "$MODE_URL" >/dev/null
sleep 0.4
route "GAMING: a long prompt stays small" /v1/chat/completions "$(chat any "$LONG")" gaming small
expect_eq "the audit line says GAMING" "GAMING" "$(jq -r .mode <<<"$LAST_AUDIT")"
route "GAMING: the regex stays small" /v1/chat/completions "$(chat any 'theorem')" gaming small
route "GAMING: the force header still goes big" /v1/chat/completions "$(chat any hi)" force_big big -H 'X-Force-Big: yes'
curl -s -X PUT -d '{"mode":"NORMAL"}' "$MODE_URL" >/dev/null
sleep 0.4
route "NORMAL again: long goes big" /v1/chat/completions "$(chat any "$LONG")" threshold big

# ---- explain ----
"$NSTACK" route --config "$TMP/router.toml" --explain --body "$(chat any "$LONG")" >"$TMP/explain.json" 2>/dev/null
expect_eq "--explain: threshold, big" "threshold big" "$(jq -r '.rule + " " + .upstream' "$TMP/explain.json")"
"$NSTACK" route --config "$TMP/router.toml" --explain --header 'X-Force-Big: true' --path /api/generate \
    --body "$(gen any hi)" >"$TMP/explain.json" 2>/dev/null
expect_eq "--explain with the force header" "force_big big" "$(jq -r '.rule + " " + .upstream' "$TMP/explain.json")"
# the estimate from the small model's tokenizer instead of bytes / 4
sed "s|^audit_log = .*|&\ntokenizer = \"$SMALL_MODEL\"|" "$TMP/router.toml" >"$TMP/router-tok.toml"
"$NSTACK" route --config "$TMP/router-tok.toml" --explain --body "$(chat any "$LONG")" >"$TMP/explain.json" 2>/dev/null
expect_eq "--explain with a tokenizer counts tokens (120 words)" "tokenizer true" \
    "$(jq -r '.estimator + " " + ((.estimate >= 100 and .estimate <= 260) | tostring)' "$TMP/explain.json")"
expect_status "router /health" 200 GET /health
expect_eq "/health lists both nodes healthy" "true true" "$(curl -s "$ROUTER/health" | jq -r '[.upstreams[].healthy] | map(tostring) | join(" ")')"

# ---- the big node killed: fail soft before the first byte ----
kill -KILL "$BIG_PID"; wait "$BIG_PID" 2>/dev/null
route "big down: a long prompt fails soft to small" /v1/chat/completions "$(chat any "$LONG")" fail_soft small
# either the request found big dead (upstream_error says how) or a health
# probe had already marked it down: the reason names the big node either way
expect_eq "the audit says why" "true" \
    "$(jq '.reason | test("big node")' <<<"$LAST_AUDIT")"
route "big down: the force header fails soft" /v1/chat/completions "$(chat any hi)" fail_soft small -H 'X-Force-Big: 1'
expect_eq "/health shows big unhealthy" "false" "$(curl -s "$ROUTER/health" | jq '.upstreams[] | select(.name == "big") | .healthy')"

# ---- killed mid-stream ----
start_node big; BIG_PID="$NODE_PID"
BIG_URL="$NODE_URL"
stop_router
write_config "$TMP/router.toml" "$MODE_URL"
start_router "$TMP/router.toml"
curl -sN -H 'Content-Type: application/json' -H 'X-Force-Big: true' --data-binary \
    '{"model":"x","prompt":"Once upon a time","options":{"num_predict":100000,"temperature":0}}' \
    "$ROUTER/api/generate" >"$TMP/mid.txt" &
CURL_PID=$!
for ((i = 0; i < 600; i++)); do [ -s "$TMP/mid.txt" ] && break; sleep 0.05; done # up to 30 s on a loaded machine
kill -KILL "$BIG_PID"; wait "$BIG_PID" 2>/dev/null
wait "$CURL_PID"
last="$(tail -n 1 "$TMP/mid.txt")"
if [ "$(wc -l <"$TMP/mid.txt")" -ge 2 ] && jq -e '.error | test("failed mid-stream")' <<<"$last" >/dev/null 2>&1; then
    ok "killed mid-stream: the stream ends with a clear error line"
else
    not_ok "mid-stream: $(tail -c 300 "$TMP/mid.txt")"
fi
sleep 0.2
expect_eq "the audit line of the broken stream" "true" \
    "$(tail -n 1 "$AUDIT" | jq '.upstream == "big" and (.error | test("mid-stream"))')"
stop_router

# ---- the mode endpoint down: taken as GAMING ----
write_config "$TMP/router-nomode.toml" "http://127.0.0.1:9/mode"
sed -i "s|url = \"$BIG_URL\"|url = \"$SMALL_URL\"|" "$TMP/router-nomode.toml" # a live big node
start_router "$TMP/router-nomode.toml"
route "mode endpoint down: long stays small" /v1/chat/completions "$(chat any "$LONG")" mode_unreachable small
expect_eq "the audit line says UNREACHABLE with a reason" "true" \
    "$(jq '.mode == "UNREACHABLE" and (.mode_error | length) > 0' <<<"$LAST_AUDIT")"
route "mode endpoint down: the force tag goes big" /v1/chat/completions "$(chat any '#force_big hi')" force_big big
stop_router

# ---- the router inside `nstack serve --config` ----
NSTACK_DB="$TMP/serve-router.db" NSTACK_MODE_FILE="$TMP/mode-serve.json" "$NSTACK" serve --host 127.0.0.1:0 \
    --models "$TMP/models-serve" --no-demo --sample-interval off --config "$TMP/router.toml" 2>"$TMP/router.log" &
ROUTER_PID=$!
port=""
for ((i = 0; i < 200; i++)); do
    port="$(sed -n 's|.*comp=router msg="listening" url=http://[^ ]*:\([0-9][0-9]*\) .*|\1|p' "$TMP/router.log" | head -n1)"
    [ -n "$port" ] && break
    sleep 0.05
done
ROUTER="http://127.0.0.1:$port"
if [ -n "$port" ]; then
    route "serve --config runs the router" /v1/chat/completions "$(chat any hello)" below_threshold small
else
    not_ok "serve --config starts the router"; cat "$TMP/router.log"
fi
stop_router

# ---- config errors name the file, line and key ----
printf '[router]\n[[router.upstream]]\nname = "a"\nkind = "tpu"\n' >"$TMP/bad.toml"
expect_fail "a bad upstream kind" 1 "bad.toml:4: router.upstream.kind" -- "$NSTACK" route --config "$TMP/bad.toml"
printf '[router]\ntoken_treshold = 5\n' >"$TMP/typo.toml"
expect_fail "an unknown key" 1 "typo.toml:2: router.token_treshold" -- "$NSTACK" route --config "$TMP/typo.toml"

kill -TERM "$SMALL_PID"; wait "$SMALL_PID" 2>/dev/null
finish
