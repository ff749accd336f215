#!/usr/bin/env bash
# Ollama's /api/generate and /api/chat end to end with curl: greedy output
# equal to `nstack run`, NDJSON streaming, the final line's fields, context,
# Modelfile template/system/params layers, request templates, format, the
# load/unload forms, errors, and a client that goes away mid-generation.
. "$(dirname "$0")/lib_server.bash"
need_shared models/stories260K.gguf
need_shared models/tiny-llama-q4_0.gguf
STORIES="$(cd "$SHARED/models" && pwd)/stories260K.gguf"
TINY="$(cd "$SHARED/models" && pwd)/tiny-llama-q4_0.gguf"

# A model in the Ollama store with Modelfile layers, written as `ollama
# create` would: TEMPLATE, SYSTEM and PARAMETER layers beside the GGUF blob.
ollama_dir="$TMP/ollama-models"
add_blob() { # add_blob FILE -> prints the digest "sha256:<hex>"
    local hex
    hex="$(sha256sum "$1" | awk '{print $1}')"
    mkdir -p "$ollama_dir/blobs"
    cp "$1" "$ollama_dir/blobs/sha256-$hex"
    echo "sha256:$hex"
}
printf '%s' '{{ if .System }}{{ .System }} {{ end }}{{ .Prompt }}' >"$TMP/template.txt"
printf '%s' 'Once upon a time' >"$TMP/system.txt"
printf '%s' '{"num_predict":7,"temperature":0,"stop":["zzz-never"]}' >"$TMP/params.json"
model_digest="$(add_blob "$STORIES")"
template_digest="$(add_blob "$TMP/template.txt")"
system_digest="$(add_blob "$TMP/system.txt")"
params_digest="$(add_blob "$TMP/params.json")"
mkdir -p "$ollama_dir/manifests/registry.ollama.ai/library/storyteller"
cat >"$ollama_dir/manifests/registry.ollama.ai/library/storyteller/latest" <<EOF
{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","layers":[
 {"mediaType":"application/vnd.ollama.image.model","digest":"$model_digest","size":1},
 {"mediaType":"application/vnd.ollama.image.template","digest":"$template_digest","size":1},
 {"mediaType":"application/vnd.ollama.image.system","digest":"$system_digest","size":1},
 {"mediaType":"application/vnd.ollama.image.params","digest":"$params_digest","size":1}]}
EOF

NSTACK_LOG=debug start_server --no-demo || exit 1

# gen BODY: POST /api/generate, status printed, body in $RESP
gen() { req POST /api/generate "$1"; }

# ---- greedy output equals `nstack run` ----
for case in "Once upon a time|32" "Lily and Tom went to the park|16"; do
    prompt="${case%|*}"
    n="${case#*|}"
    want="$("$NSTACK" run "$STORIES" "$prompt" -n "$n" --temp 0)"
    body="$(jq -cn --arg m "$STORIES" --arg p "$prompt" --argjson n "$n" \
        '{model:$m, prompt:$p, raw:true, stream:false, options:{temperature:0, num_predict:$n}}')"
    expect_eq "generate raw, stream false: '$prompt' equals nstack run" 200 "$(gen "$body")"
    expect_eq "  same text" "$want" "$(jq -j .response "$RESP")"
    expect_eq "  eval_count" "$n" "$(jq -r .eval_count "$RESP")"
    # streamed: the pieces joined are the same text
    curl -s -N -d "$(jq -c '.stream = true' <<<"$body")" "$BASE/api/generate" >"$TMP/stream.ndjson"
    expect_eq "  streamed pieces join to the same text" "$want" "$(jq -j 'select(.done == false) | .response' "$TMP/stream.ndjson")"
    # no template in this file: the plain prompt is the raw prompt
    expect_eq "  without raw too" 200 "$(gen "$(jq -c 'del(.raw)' <<<"$body")")"
    expect_eq "  same text without raw" "$want" "$(jq -j .response "$RESP")"
done

# ---- the final object ----
gen "{\"model\":\"$STORIES\",\"prompt\":\"Once upon a time\",\"stream\":false,\"options\":{\"temperature\":0,\"num_predict\":8}}" >/dev/null
expect_json "model echoes the request" .model "$STORIES"
expect_json "done" .done true
expect_json "done_reason length at num_predict" .done_reason length
expect_json "created_at is RFC 3339" '.created_at | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+(Z|[+-][0-9]{2}:[0-9]{2})$")' true
expect_json "prompt_eval_count (BOS + 4 tokens)" .prompt_eval_count 5
expect_json "eval_count" .eval_count 8
expect_json "durations are integer nanoseconds" \
    '[.total_duration, .load_duration, .prompt_eval_duration, .eval_duration] | map(type == "number" and . == floor and . >= 0) | all' true
expect_json "total_duration covers evaluation" '.total_duration >= .prompt_eval_duration + .eval_duration' true
expect_json "context: prompt and reply tokens" '.context | length' 13
expect_json "context starts with BOS" '.context[0]' 1
context="$(jq -c .context "$RESP")"
first="$(jq -r .response "$RESP")"

# streaming lines: every line JSON, done:false until the last, which has the stats
curl -s -N -D "$TMP/headers" -d "{\"model\":\"$STORIES\",\"prompt\":\"Once upon a time\",\"options\":{\"temperature\":0,\"num_predict\":8}}" \
    "$BASE/api/generate" >"$TMP/stream.ndjson"
if grep -qi '^content-type: application/x-ndjson' "$TMP/headers"; then ok "stream content type is NDJSON"; else
    not_ok "stream content type: $(grep -i content-type "$TMP/headers")"; fi
if jq -e . "$TMP/stream.ndjson" >/dev/null 2>&1; then ok "every stream line is JSON"; else not_ok "stream: $(head -c 300 "$TMP/stream.ndjson")"; fi
expect_eq "only the last line is done" "true" "$(jq -s '(.[:-1] | map(.done == false) | all) and (.[-1].done == true)' "$TMP/stream.ndjson")"
expect_eq "token lines have model, created_at, response" "true" \
    "$(jq -s '.[:-1] | map(has("model") and has("created_at") and (.response | type == "string")) | all' "$TMP/stream.ndjson")"
expect_eq "the last line: empty response, stats, context" '"" 8 13 "length"' \
    "$(tail -n 1 "$TMP/stream.ndjson" | jq -r '[(.response | tojson), .eval_count, (.context | length), (.done_reason | tojson)] | join(" ")')"

# ---- context continues a conversation ----
gen "{\"model\":\"$STORIES\",\"prompt\":\" Then\",\"context\":$context,\"stream\":false,\"options\":{\"temperature\":0,\"num_predict\":5}}" >/dev/null
expect_json "context: the old tokens come first" "(.context[:13] | tojson) == \"$context\"" true
expect_json "context: then the new prompt, no second BOS" '.prompt_eval_count > 13 and .context[13] != 1' true
expect_json "context: the new context is prompt and reply" '(.context | length) == .prompt_eval_count + .eval_count' true
expect_status "context with a token outside the vocabulary" 400 POST /api/generate \
    "{\"model\":\"$STORIES\",\"prompt\":\"x\",\"context\":[1,99999],\"stream\":false}"
expect_json "  names the entry" '.error | test("context\\[1\\]")' true
expect_status "context that is not an array" 400 POST /api/generate "{\"model\":\"$STORIES\",\"prompt\":\"x\",\"context\":\"1 2\"}"

# ---- Modelfile layers: template, system and params from the store ----
want="$("$NSTACK" run "$STORIES" "Once upon a time there was" -n 7 --temp 0)"
expect_status "store model with Modelfile layers" 200 POST /api/generate '{"model":"storyteller","prompt":"there was","stream":false}'
expect_json "  params layer: num_predict 7" .eval_count 7
expect_eq "  template + system + greedy params give nstack run's text" "$want" "$(jq -j .response "$RESP")"
expect_json "  the model name is echoed" .model storyteller
want="$("$NSTACK" run "$STORIES" "One day there was" -n 3 --temp 0)"
expect_status "request system and options over the layers" 200 POST /api/generate \
    '{"model":"storyteller:latest","prompt":"there was","system":"One day","stream":false,"options":{"num_predict":3}}'
expect_json "  request num_predict wins" .eval_count 3
expect_eq "  request system wins" "$want" "$(jq -j .response "$RESP")"
want="$("$NSTACK" run "$STORIES" "there was" -n 4 --temp 0)"
expect_status "raw skips template and system" 200 POST /api/generate \
    '{"model":"storyteller","prompt":"there was","raw":true,"stream":false,"options":{"num_predict":4}}'
expect_eq "  raw text" "$want" "$(jq -j .response "$RESP")"
expect_json "  raw: no context" 'has("context")' false

# ---- a template in the request ----
want="$("$NSTACK" run "$STORIES" "Once upon a time, a cat" -n 6 --temp 0)"
body="$(jq -cn --arg m "$STORIES" '{model:$m, prompt:"a cat", system:"Once upon a time", stream:false,
    template:"{{- if .System }}{{ .System }}, {{ end }}{{ .Prompt }}", options:{temperature:0, num_predict:6}}')"
expect_eq "request template (Go)" 200 "$(gen "$body")"
expect_eq "  renders system and prompt" "$want" "$(jq -j .response "$RESP")"
expect_status "a broken request template is a 400" 400 POST /api/generate \
    "{\"model\":\"$STORIES\",\"prompt\":\"x\",\"template\":\"{{ if .Prompt }}\"}"
expect_json "  with the line" '.error | test("template error at line 1")' true
expect_status "suffix needs a template with .Suffix" 400 POST /api/generate "{\"model\":\"$STORIES\",\"prompt\":\"x\",\"suffix\":\"y\"}"
expect_json "  says insert is unsupported" '.error | test("does not support insert")' true
expect_status "suffix with a fill-in-the-middle template" 200 POST /api/generate \
    "{\"model\":\"$STORIES\",\"prompt\":\"x\",\"suffix\":\"y\",\"template\":\"{{ .Prompt }} and {{ .Suffix }}\",\"stream\":false,\"options\":{\"num_predict\":2}}"

# ---- /api/chat ----
expect_status "chat, stream false" 200 POST /api/chat \
    "{\"model\":\"$STORIES\",\"messages\":[{\"role\":\"user\",\"content\":\"Once upon a time\"}],\"stream\":false,\"options\":{\"temperature\":0,\"num_predict\":10}}"
expect_json "  message role" .message.role assistant
want="$("$NSTACK" run "$STORIES" "Once upon a time" -n 10 --temp 0)"
expect_eq "  no chat template: the message is the prompt" "$want" "$(jq -j .message.content "$RESP")"
expect_json "  stats" '[.done, .done_reason, .eval_count, .prompt_eval_count] | map(tostring) | join(" ")' "true length 10 5"
expect_json "  no context in chat" 'has("context")' false
curl -s -N -d "{\"model\":\"$STORIES\",\"messages\":[{\"role\":\"user\",\"content\":\"Once upon a time\"}],\"options\":{\"temperature\":0,\"num_predict\":10}}" \
    "$BASE/api/chat" >"$TMP/chat.ndjson"
expect_eq "chat stream: pieces join to the same text" "$want" "$(jq -j 'select(.done == false) | .message.content' "$TMP/chat.ndjson")"
expect_eq "chat stream: lines are assistant messages" true "$(jq -s 'map(.message.role == "assistant") | all' "$TMP/chat.ndjson")"
expect_eq "chat stream: last line" "true length" "$(tail -n 1 "$TMP/chat.ndjson" | jq -r '[.done, .done_reason] | map(tostring) | join(" ")')"
# a request template sees .Messages; system messages and tools reach it
body="$(jq -cn --arg m "$STORIES" '{model:$m, stream:false, options:{temperature:0, num_predict:5},
    template:"{{ range .Messages }}{{ if eq .Role \"system\" }}{{ .Content }}{{ else }} {{ .Content }}{{ end }}{{ end }}",
    messages:[{role:"system", content:"Once upon a time"}, {role:"user", content:"there was"}]}')"
want="$("$NSTACK" run "$STORIES" "Once upon a time there was" -n 5 --temp 0)"
expect_eq "chat with a request template over .Messages" 200 "$(req POST /api/chat "$body")"
expect_eq "  renders the conversation" "$want" "$(jq -j .message.content "$RESP")"
expect_status "chat with tools and tool calls" 200 POST /api/chat \
    "{\"model\":\"$STORIES\",\"stream\":false,\"options\":{\"num_predict\":2},\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}],\"messages\":[{\"role\":\"user\",\"content\":\"x\"},{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":[{\"function\":{\"name\":\"f\",\"arguments\":{}}}]},{\"role\":\"tool\",\"content\":\"1\"}]}"
expect_status "chat: a message without role" 400 POST /api/chat "{\"model\":\"$STORIES\",\"messages\":[{\"content\":\"x\"}]}"
expect_json "  names the field" .error 'messages[0].role must be a string such as "user"'
expect_status "chat: content of the wrong type" 400 POST /api/chat "{\"model\":\"$STORIES\",\"messages\":[{\"role\":\"user\",\"content\":5}]}"
expect_status "chat: images" 400 POST /api/chat "{\"model\":\"$STORIES\",\"messages\":[{\"role\":\"user\",\"content\":\"x\",\"images\":[\"aGk=\"]}]}"
expect_status "chat: messages not an array" 400 POST /api/chat "{\"model\":\"$STORIES\",\"messages\":{}}"

# ---- format ----
expect_status "format json" 200 POST /api/generate \
    "{\"model\":\"$STORIES\",\"prompt\":\"Once upon a time\",\"format\":\"json\",\"stream\":false,\"options\":{\"num_predict\":12,\"seed\":1}}"
expect_json "  the text starts a JSON value" '.response | test("^\\s*[\\[{\"0-9tfn-]")' true
expect_status "format as a JSON schema: an object" 200 POST /api/generate \
    "{\"model\":\"$STORIES\",\"prompt\":\"Once upon a time\",\"format\":{\"type\":\"object\"},\"stream\":false,\"options\":{\"num_predict\":40,\"seed\":1}}"
expect_json "  the text starts an object (after at most 16 blanks)" '.response | test("^\\s{0,16}[{]")' true
expect_status "format of another kind" 400 POST /api/generate "{\"model\":\"$STORIES\",\"prompt\":\"x\",\"format\":\"yaml\"}"

# ---- seeds ----
body="{\"model\":\"$STORIES\",\"prompt\":\"Once upon a time\",\"stream\":false,\"options\":{\"temperature\":1,\"seed\":42,\"num_predict\":30}}"
gen "$body" >/dev/null
a="$(jq -r .response "$RESP")"
gen "$body" >/dev/null
expect_eq "the same seed gives the same text" "$a" "$(jq -r .response "$RESP")"
want="$("$NSTACK" run "$STORIES" "Once upon a time" -n 30 --temp 1 --seed 42)"
expect_eq "  and the text nstack run gives with that seed" "$want" "$a"

# ---- stop sequences ----
full="$("$NSTACK" run "$STORIES" "Once upon a time" -n 40 --temp 0)"
gen "{\"model\":\"$STORIES\",\"prompt\":\"Once upon a time\",\"stream\":false,\"options\":{\"temperature\":0,\"num_predict\":40,\"stop\":[\"Lily\"]}}" >/dev/null
expect_eq "stop: the text ends before the stop sequence" "${full%%Lily*}" "$(jq -j .response "$RESP")"
expect_json "stop: done_reason stop" .done_reason stop

# ---- load, unload, keep_alive ----
expect_status "empty prompt loads the model" 200 POST /api/generate "{\"model\":\"$TINY\"}"
expect_json "  done_reason load" '[.done, .done_reason, .response] | map(tostring) | join(" ")' "true load "
expect_status "ps lists it" 200 GET /api/ps
expect_json "  loaded" "[.models[].model] | index(\"$TINY\") != null" true
expect_status "empty prompt with keep_alive 0 unloads" 200 POST /api/generate "{\"model\":\"$TINY\",\"keep_alive\":0}"
expect_json "  done_reason unload" .done_reason unload
expect_status "ps after unload" 200 GET /api/ps
expect_json "  gone" "[.models[].model] | index(\"$TINY\") == null" true
expect_status "chat without messages loads" 200 POST /api/chat "{\"model\":\"$TINY\",\"keep_alive\":\"10m\"}"
expect_json "  chat load shape" '[.done_reason, .message.role] | join(" ")' "load assistant"
expect_status "chat without messages, keep_alive \"0s\", unloads" 200 POST /api/chat "{\"model\":\"$TINY\",\"keep_alive\":\"0s\"}"
expect_json "  chat unload" .done_reason unload
expect_status "generate with keep_alive 0" 200 POST /api/generate \
    "{\"model\":\"$STORIES\",\"prompt\":\"x\",\"keep_alive\":0,\"stream\":false,\"options\":{\"num_predict\":2}}"
gone=false
for ((i = 0; i < 100; i++)); do
    req GET /api/ps >/dev/null
    if jq -e "[.models[].model] | index(\"$STORIES\") == null" "$RESP" >/dev/null; then gone=true; break; fi
    sleep 0.05
done
expect_eq "  unloaded once the generation ended" true "$gone"

# ---- errors: clear JSON, right status, the server keeps serving ----
check_error() { # WHAT STATUS ROUTE BODY ERROR_REGEX
    expect_status "$1" "$2" POST "$3" "$4"
    expect_json "  error text" ".error | test(\"$5\")" true
}
check_error "no model" 400 /api/generate '{"prompt":"x"}' '^model is required$'
check_error "model of the wrong type" 400 /api/generate '{"model":5,"prompt":"x"}' 'model must be a string'
check_error "unknown model" 404 /api/generate '{"model":"no-such-model","prompt":"x"}' 'not found, try pulling it first$'
expect_json "  Ollama's words" .error 'model "no-such-model" not found, try pulling it first'
check_error "unknown model (chat)" 404 /api/chat '{"model":"no-such-model","messages":[{"role":"user","content":"x"}]}' 'not found'
check_error "prompt of the wrong type" 400 /api/generate "{\"model\":\"$STORIES\",\"prompt\":[1]}" '^prompt must be a string$'
check_error "raw of the wrong type" 400 /api/generate "{\"model\":\"$STORIES\",\"prompt\":\"x\",\"raw\":\"yes\"}" '^raw must be true or false$'
check_error "stream of the wrong type" 400 /api/generate "{\"model\":\"$STORIES\",\"prompt\":\"x\",\"stream\":1}" '^stream must be true or false$'
check_error "system of the wrong type" 400 /api/generate "{\"model\":\"$STORIES\",\"prompt\":\"x\",\"system\":{}}" '^system must be a string$'
check_error "images" 400 /api/generate "{\"model\":\"$STORIES\",\"prompt\":\"x\",\"images\":[\"aGk=\"]}" 'not supported'
check_error "options not an object" 400 /api/generate "{\"model\":\"$STORIES\",\"prompt\":\"x\",\"options\":[]}" '^options must be an object$'
check_error "bad option value" 400 /api/generate "{\"model\":\"$STORIES\",\"prompt\":\"x\",\"options\":{\"top_p\":2}}" 'options.top_p must be a number in \\[0, 1\\]'
check_error "option of the wrong type" 400 /api/chat "{\"model\":\"$STORIES\",\"messages\":[],\"options\":{\"num_ctx\":\"big\"}}" 'options.num_ctx must be an integer'
check_error "non-integral integer option" 400 /api/generate "{\"model\":\"$STORIES\",\"prompt\":\"x\",\"options\":{\"num_predict\":2.5}}" 'options.num_predict must be an integer'
check_error "too many stop sequences" 400 /api/generate "{\"model\":\"$STORIES\",\"prompt\":\"x\",\"options\":{\"stop\":[$(seq -s, 1 17 | sed 's/[0-9]*/"&"/g')]}}" 'at most 16'
check_error "bad keep_alive" 400 /api/generate "{\"model\":\"$STORIES\",\"prompt\":\"x\",\"keep_alive\":\"later\"}" 'keep_alive'
check_error "keep_alive of the wrong type" 400 /api/generate "{\"model\":\"$STORIES\",\"prompt\":\"x\",\"keep_alive\":true}" 'keep_alive'
long="$(printf 'Once upon a time %.0s' $(seq 1 200))"
check_error "prompt longer than the context" 400 /api/generate "{\"model\":\"$STORIES\",\"prompt\":\"$long\",\"stream\":false}" 'context'
check_error "malformed JSON" 400 /api/generate '{"model":' 'invalid JSON'
check_error "a body that is not an object" 400 /api/chat '[1,2]' 'JSON object'
server_alive "after the errors"

# ---- a client that goes away stops its generation ----
# (greedy, this random-weight model never ends "hello" by itself: it runs
# to its context, seconds even in a release build; sampled, it once ended
# after 120 tokens, before the client left)
body="{\"model\":\"$TINY\",\"prompt\":\"hello\",\"options\":{\"num_ctx\":4096,\"num_predict\":-1,\"temperature\":0}}"
curl -s -N -d "$body" "$BASE/api/generate" | head -n 2 >"$TMP/two_lines"
expect_eq "streaming client reads two lines and leaves" 2 "$(wc -l <"$TMP/two_lines" | tr -d ' ')"
seen=false
for ((i = 0; i < 200; i++)); do
    if grep -q "client went away; generation cancelled" "$SERVER_LOG"; then seen=true; break; fi
    sleep 0.05
done
expect_eq "  the server cancels that generation" true "$seen"
curl -s --max-time 1 -d "$(jq -c '.stream = false' <<<"$body")" "$BASE/api/generate" >/dev/null
seen=false
for ((i = 0; i < 600; i++)); do # up to 30 s: a loaded CI machine
    if grep -q 'path=/api/generate status=499' "$SERVER_LOG"; then seen=true; break; fi
    sleep 0.05
done
expect_eq "  a non-streaming client that leaves is noticed too" true "$seen"
[ "$seen" == true ] || server_log
server_alive "after clients left"

stop_server
finish
