#!/usr/bin/env bash
# `nstack serve` end to end with curl: the HTTP layer (routing, errors, body
# limit, CORS, request ids), the model-management routes (tags, show, copy,
# delete, pull, load/unload, ps), the demo model, and a clean SIGTERM stop.
. "$(dirname "$0")/lib_server.bash"
need_shared models/stories260K.gguf
STORIES="$(cd "$SHARED/models" && pwd)/stories260K.gguf"

start_server --max-body 65536 || exit 1

# ---- basics ----
expect_status "GET /" 200 GET /
if grep -q "neurostack is running" "$RESP"; then ok "GET / (the dashboard) says it is running"; else
    not_ok "GET / does not say it is running: $(head -c 300 "$RESP")"
fi
expect_eq "HEAD / answers 200" "200" "$(curl -s -o /dev/null -w '%{http_code}' -I "$BASE/")"
expect_status "GET /api/version" 200 GET /api/version
expect_json "version is nstack's" .version "$("$NSTACK" version | awk '{print $2}')"
expect_status "GET /health" 200 GET /health
expect_json "health status" .status ok
expect_json "health: nothing loaded" .models_loaded 0
id="$(curl -s -D - -o /dev/null "$BASE/api/version" | tr -d '\r' | awk -F': ' 'tolower($1)=="x-request-id"{print $2}')"
if [[ "$id" =~ ^req-[0-9a-f]{16}$ ]]; then ok "X-Request-Id $id"; else not_ok "X-Request-Id is '$id'"; fi

# ---- the demo model, /api/tags, /api/show ----
expect_status "GET /api/tags" 200 GET /api/tags
expect_json "tags lists the demo model" '[.models[].name] | index("demo:latest") != null' true
expect_json "demo details" '.models[] | select(.name=="demo:latest") | [.details.format, .details.family, .details.quantization_level] | join(" ")' "gguf llama Q8_0"
expect_json "demo digest is bare hex" '.models[] | select(.name=="demo:latest") | .digest | test("^[0-9a-f]{64}$")' true
expect_json "demo modified_at is RFC 3339" '.models[] | select(.name=="demo:latest") | .modified_at | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+(Z|[+-][0-9]{2}:[0-9]{2})$")' true
expect_status "show demo" 200 POST /api/show '{"model":"demo"}'
expect_json "show: model_info architecture" '.model_info["general.architecture"]' llama
expect_json "show: parameter count" '.model_info["general.parameter_count"] > 0' true
expect_json "show: capabilities" '.capabilities | index("completion") != null' true
expect_json "show: template" .template '{{ .Prompt }}'
expect_status "show with the older \"name\" field" 200 POST /api/show '{"name":"demo:latest"}'
expect_status "show stories260K by path" 200 POST /api/show "{\"model\":\"$STORIES\"}"
expect_json "show by path: quantization" '.details.family' llama
expect_json "show: big arrays are null unless verbose" '.model_info["tokenizer.ggml.tokens"] | type' array
expect_status "show unknown model" 404 POST /api/show '{"model":"no-such-model"}'
expect_json "show unknown model: error" '.error | test("not found")' true
expect_status "show without a model" 400 POST /api/show '{}'

# ---- copy, delete ----
expect_status "copy demo" 200 POST /api/copy '{"source":"demo","destination":"my-demo:v1"}'
expect_status "tags after copy" 200 GET /api/tags
expect_json "the copy is listed" '[.models[].name] | index("my-demo:v1") != null' true
expect_status "copy of an unknown model" 404 POST /api/copy '{"source":"nope","destination":"x:y"}'
expect_status "copy to a bad name" 400 POST /api/copy '{"source":"demo","destination":"bad name!"}'
expect_status "copy without destination" 400 POST /api/copy '{"source":"demo"}'
expect_status "delete the copy" 200 DELETE /api/delete '{"model":"my-demo:v1"}'
expect_status "delete it again" 404 DELETE /api/delete '{"model":"my-demo:v1"}'
expect_status "tags after delete" 200 GET /api/tags
expect_json "the copy is gone, demo stays" '[.models[].name] | (index("my-demo:v1") == null) and (index("demo:latest") != null)' true
expect_status "delete with POST" 405 POST /api/delete '{"model":"demo"}'

# ---- pull ----
curl -s -N -d "{\"model\":\"file://$STORIES\"}" "$BASE/api/pull" >"$TMP/pull.ndjson"
expect_eq "pull file:// streams NDJSON ending in success" success "$(tail -n 1 "$TMP/pull.ndjson" | jq -r .status)"
if jq -e . "$TMP/pull.ndjson" >/dev/null 2>&1; then ok "every pull line is JSON"; else not_ok "pull lines: $(head -c 300 "$TMP/pull.ndjson")"; fi
expect_status "pull with url and name, stream false" 200 POST /api/pull "{\"model\":\"tiny:v1\",\"url\":\"file://$STORIES\",\"stream\":false}"
expect_json "pull stream false: one object" .status success
expect_status "tags after pull" 200 GET /api/tags
expect_json "pulled models are listed" '[.models[].name] | (index("stories260k:latest") != null) and (index("tiny:v1") != null)' true
expect_json "pulled model size" '.models[] | select(.name=="tiny:v1") | .size' "$(stat -c %s "$STORIES")"
printf 'not a gguf file\n' >"$TMP/bad.gguf"
curl -s -N -d "{\"model\":\"bad:v1\",\"url\":\"file://$TMP/bad.gguf\"}" "$BASE/api/pull" >"$TMP/pull.ndjson"
expect_eq "pull of a non-GGUF file ends in an error line" true "$(tail -n 1 "$TMP/pull.ndjson" | jq 'has("error")')"
expect_status "pull of a missing file, stream false" 500 POST /api/pull "{\"model\":\"gone:v1\",\"url\":\"file://$TMP/missing.gguf\",\"stream\":false}"
expect_status "pull of a name with no URL" 400 POST /api/pull '{"model":"llama3"}'
expect_status "pull of a name already here" 200 POST /api/pull '{"model":"demo","stream":false}'
if command -v python3 >/dev/null 2>&1; then
    mkdir -p "$TMP/www" && cp "$STORIES" "$TMP/www/stories.gguf"
    (cd "$TMP/www" && exec python3 -u -m http.server --bind 127.0.0.1 0 >"$TMP/www.log" 2>&1) &
    www_pid=$!
    for ((i = 0; i < 200; i++)); do grep -q 'port [0-9]' "$TMP/www.log" 2>/dev/null && break; sleep 0.05; done
    www_port="$(grep -o 'port [0-9]*' "$TMP/www.log" | head -n 1 | awk '{print $2}')"
    curl -s -N -d "{\"model\":\"web:v1\",\"url\":\"http://127.0.0.1:$www_port/stories.gguf\"}" "$BASE/api/pull" >"$TMP/pull.ndjson"
    expect_eq "pull over http ends in success" success "$(tail -n 1 "$TMP/pull.ndjson" | jq -r .status)"
    expect_eq "pull over http reports download progress" true \
        "$(jq -s 'map(select(.status=="downloading")) | length > 0 and (last.completed == last.total)' "$TMP/pull.ndjson")"
    curl -s -N -d "{\"model\":\"web:v2\",\"url\":\"http://127.0.0.1:$www_port/missing.gguf\"}" "$BASE/api/pull" >"$TMP/pull.ndjson"
    expect_eq "pull of an http 404 ends in an error line naming it" true "$(tail -n 1 "$TMP/pull.ndjson" | jq '.error | test("404")')"
    kill "$www_pid" 2>/dev/null
    wait "$www_pid" 2>/dev/null
else
    echo "SKIP (part): python3 not found, no pull over http"
fi

# ---- load, ps, unload ----
expect_status "ps before any load" 200 GET /api/ps
expect_json "ps is empty" '.models | length' 0
expect_status "load demo" 200 POST /api/load '{"model":"demo","keep_alive":-1}'
expect_json "load answers the model" .model demo:latest
expect_status "ps after load" 200 GET /api/ps
expect_json "ps lists demo" '.models[0].name' demo:latest
expect_json "ps fields" '.models[0] | (.size > 0) and (.digest | test("^[0-9a-f]{64}$")) and (.details.family == "llama") and has("expires_at") and has("size_vram")' true
expect_json "ps slots and requests" '.models[0] | (.num_parallel >= 1) and (.active_requests == 0) and (.queued_requests == 0)' true
expect_status "health counts it" 200 GET /health
expect_json "health: one model loaded" .models_loaded 1
expect_status "load an unknown model" 404 POST /api/load '{"model":"no-such-model"}'
expect_status "unload demo" 200 POST /api/unload '{"model":"demo"}'
for ((i = 0; i < 100; i++)); do
    [ "$(req GET /api/ps)" == 200 ] && [ "$(jq '.models | length' "$RESP")" == 0 ] && break
    sleep 0.05
done
expect_json "ps empty after unload" '.models | length' 0
expect_status "unload a model that is not loaded" 404 POST /api/unload '{"model":"demo"}'
expect_status "unload all" 200 POST /api/unload '{"all":true}'

# ---- bad requests leave the server serving ----
expect_status "unknown route" 404 GET /api/nope
expect_json "404 body is JSON" '.error | length > 0' true
server_alive "after 404"
expect_status "wrong method" 405 GET /api/show
allow="$(curl -s -D - -o /dev/null "$BASE/api/show" | tr -d '\r' | awk -F': ' 'tolower($1)=="allow"{print $2}')"
expect_eq "405 names the allowed methods" "POST, OPTIONS" "$allow"
server_alive "after 405"
expect_status "malformed JSON" 400 POST /api/show '{"model": "demo",'
expect_json "malformed JSON: the error says where" '.error | test("invalid JSON at byte [0-9]+")' true
expect_status "a JSON array body" 400 POST /api/show '[1,2]'
expect_status "an empty body" 400 POST /api/show ''
expect_status "model of the wrong type" 400 POST /api/show '{"model":42}'
server_alive "after malformed JSON"
head -c 200000 /dev/zero | tr '\0' 'x' >"$TMP/big.json"
expect_status "oversized body" 413 POST /api/show "@$TMP/big.json"
expect_json "413 names the limit" .error "request body is larger than the limit of 65536 bytes"
server_alive "after an oversized body"

# ---- CORS ----
hdrs="$(curl -s -D - -o /dev/null -X OPTIONS -H 'Origin: http://localhost:3000' \
    -H 'Access-Control-Request-Method: POST' -H 'Access-Control-Request-Headers: content-type' "$BASE/api/chat" | tr -d '\r')"
expect_eq "preflight from localhost allowed" "http://localhost:3000" "$(awk -F': ' 'tolower($1)=="access-control-allow-origin"{print $2}' <<<"$hdrs")"
expect_eq "preflight answers 204" 204 "$(head -n 1 <<<"$hdrs" | awk '{print $2}')"
expect_eq "a request from an unknown origin is refused" 403 \
    "$(curl -s -o /dev/null -w '%{http_code}' -H 'Origin: https://evil.example.com' "$BASE/api/tags")"

# ---- a second server on the same port fails clearly ----
expect_fail "a taken port" 1 "address in use" -- \
    env NSTACK_MODELS="$TMP/models2" OLLAMA_MODELS="$TMP/ollama-models" "$NSTACK" serve --host "127.0.0.1:$PORT" --no-demo
expect_fail "a bad --keep-alive" 2 "keep-alive" -- "$NSTACK" serve --keep-alive soon
expect_fail "a bad --host" 1 "port" -- env NSTACK_MODELS="$TMP/models2" "$NSTACK" serve --host 127.0.0.1:99999 --no-demo

stop_server

# ---- --no-demo on an empty store, and the demo model is deterministic ----
SERVER_MODELS="$TMP/models3" start_server --no-demo || exit 1
expect_status "tags with --no-demo" 200 GET /api/tags
expect_json "no models" '.models | length' 0
stop_server
SERVER_MODELS="$TMP/models4" start_server || exit 1
req GET /api/tags >/dev/null
demo1="$(jq -r '.models[] | select(.name=="demo:latest") | .digest' "$RESP")"
stop_server
expect_eq "the demo model is the same file every time" \
    "$(find "$TMP/models/blobs" -name 'sha256-*' | sed 's/.*sha256-//' | grep -c "^$demo1$")" 1

finish
