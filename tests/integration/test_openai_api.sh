#!/usr/bin/env bash
# The OpenAI-compatible API end to end with curl: /v1/models,
# /v1/chat/completions and /v1/completions (whole and streamed, n > 1,
# logprobs, stop, seed, logit_bias, JSON mode), and errors in OpenAI's
# shape. Greedy requests (temperature 0) on stories260K, a real trained
# model, give the same text every time; sampled ones are compared with
# themselves (same seed, same text), never with fixed strings.
. "$(dirname "$0")/lib_server.bash"
need_shared models/stories260K.gguf
STORIES="$(cd "$SHARED/models" && pwd)/stories260K.gguf"
QWEN2="$(cd "$SHARED/models" && pwd)/tiny-qwen2-q8_0.gguf"
PHI3="$(cd "$SHARED/models" && pwd)/tiny-phi3-q4_0.gguf"

start_server || exit 1

# chat BODY_FIELDS: a /v1/chat/completions body for stories260K with one
# user message and the extra fields given (a JSON object's inside).
chat() {
    printf '{"model":"%s","messages":[{"role":"user","content":"Once upon a time"}]%s}' "$STORIES" "${1:+,$1}"
}
completion() {
    printf '{"model":"%s","prompt":"Once upon a time"%s}' "$STORIES" "${1:+,$1}"
}
# sse PATH BODY: the streamed response's data lines (without "data: ") in $TMP/sse
sse() {
    curl -s -N -H 'Content-Type: application/json' --data-binary "$2" "$BASE$1" >"$TMP/sse.raw"
    sed -n 's/^data: //p' "$TMP/sse.raw" >"$TMP/sse"
}

# ---- /v1/models ----
expect_status "GET /v1/models" 200 GET /v1/models
expect_json "models: a list" .object list
expect_json "models: demo is listed" '.data[] | select(.id=="demo:latest") | [.object, .owned_by, (.created > 0)] | map(tostring) | join(" ")' "model nstack true"
expect_status "GET /v1/models/demo:latest" 200 GET /v1/models/demo:latest
expect_json "one model" '[.id, .object] | join(" ")' "demo:latest model"
expect_status "GET /v1/models/demo (default tag)" 200 GET /v1/models/demo
expect_status "GET /v1/models/unknown" 404 GET /v1/models/no-such-model
expect_json "unknown model: OpenAI's error shape" '.error | [.type, .code, .param, (.message | length > 0)] | map(tostring) | join(" ")' "not_found_error model_not_found model true"

# ---- chat, whole ----
expect_status "chat greedy" 200 POST /v1/chat/completions "$(chat '"max_tokens":12,"temperature":0')"
expect_json "chat: object" .object chat.completion
expect_json "chat: id" '.id | startswith("chatcmpl-")' true
expect_json "chat: created, model, fingerprint" '(.created > 0) and (.model == "'"$STORIES"'") and (.system_fingerprint | startswith("fp_"))' true
expect_json "chat: one choice" '.choices | length' 1
expect_json "chat: the message" '.choices[0] | [.index, .message.role, (.message.content | length > 0), .logprobs, .finish_reason] | map(tostring) | join(" ")' "0 assistant true null length"
expect_json "chat: usage" '.usage | (.prompt_tokens > 0) and (.completion_tokens == 12) and (.total_tokens == .prompt_tokens + .completion_tokens)' true
greedy="$(jq -r '.choices[0].message.content' "$RESP")"
expect_status "chat greedy again" 200 POST /v1/chat/completions "$(chat '"max_tokens":12,"temperature":0')"
expect_json "greedy output repeats" '.choices[0].message.content' "$greedy"
expect_status "max_completion_tokens" 200 POST /v1/chat/completions "$(chat '"max_completion_tokens":3,"temperature":0')"
expect_json "max_completion_tokens limits the output" .usage.completion_tokens 3
expect_status "content as text parts" 200 POST /v1/chat/completions \
    "{\"model\":\"$STORIES\",\"max_tokens\":12,\"temperature\":0,\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Once upon \"},{\"type\":\"text\",\"text\":\"a time\"}]}]}"
expect_json "text parts are joined" '.choices[0].message.content' "$greedy"
expect_status "a conversation with system, developer and assistant turns" 200 POST /v1/chat/completions \
    "{\"model\":\"$STORIES\",\"max_tokens\":4,\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},{\"role\":\"developer\",\"content\":\"Tell stories.\"},{\"role\":\"user\",\"content\":\"Hi\"},{\"role\":\"assistant\",\"content\":\"Hello\"},{\"role\":\"user\",\"content\":\"A story\"}]}"
expect_status "user, penalties and seed are accepted" 200 POST /v1/chat/completions \
    "$(chat '"max_tokens":8,"user":"alice","presence_penalty":1.5,"frequency_penalty":-0.5,"seed":7,"top_p":0.9,"temperature":1.2')"

# ---- seed and n ----
expect_status "n=2 with a seed" 200 POST /v1/chat/completions "$(chat '"max_tokens":10,"n":2,"seed":42')"
expect_json "n=2: two choices indexed 0 and 1" '[.choices[].index] | map(tostring) | join(",")' "0,1"
expect_json "n=2: usage counts the prompt once, both completions" '.usage.completion_tokens' 20
cp "$RESP" "$TMP/n2.json"
expect_status "n=2 with the same seed again" 200 POST /v1/chat/completions "$(chat '"max_tokens":10,"n":2,"seed":42')"
expect_eq "the same seed gives the same choices" "$(jq -c '[.choices[].message.content]' "$TMP/n2.json")" "$(jq -c '[.choices[].message.content]' "$RESP")"
expect_status "seed 43" 200 POST /v1/chat/completions "$(chat '"max_tokens":10,"seed":43')"
expect_eq "choice i is seeded seed+i" "$(jq -r '.choices[1].message.content' "$TMP/n2.json")" "$(jq -r '.choices[0].message.content' "$RESP")"

# ---- chat, streamed ----
sse /v1/chat/completions "$(chat '"max_tokens":12,"temperature":0,"stream":true')"
expect_eq "stream ends with [DONE]" "[DONE]" "$(tail -n 1 "$TMP/sse")"
sed '$d' "$TMP/sse" >"$TMP/chunks"
if jq -e . "$TMP/chunks" >/dev/null 2>&1; then ok "every chunk is JSON"; else not_ok "chunks: $(head -c 300 "$TMP/chunks")"; fi
expect_eq "events are separated by blank lines" "$(grep -c '^data: ' "$TMP/sse.raw")" "$(grep -c '^$' "$TMP/sse.raw")"
expect_eq "chunk objects" "chat.completion.chunk" "$(jq -r .object "$TMP/chunks" | sort -u)"
expect_eq "one id for all chunks" 1 "$(jq -r .id "$TMP/chunks" | sort -u | wc -l)"
expect_eq "the first delta is the role with empty content" '{"role":"assistant","content":""}' "$(head -n 1 "$TMP/chunks" | jq -c '.choices[0].delta')"
expect_eq "the last chunk: empty delta and the finish reason" '{} length' "$(tail -n 1 "$TMP/chunks" | jq -r '.choices[0] | "\(.delta | tojson) \(.finish_reason)"')"
expect_eq "the deltas add up to the whole answer" "$greedy" "$(jq -j '.choices[0].delta.content // ""' "$TMP/chunks")"
expect_eq "no usage without include_usage" null "$(jq -s 'map(.usage) | unique | .[0]' "$TMP/chunks")"

sse /v1/chat/completions "$(chat '"max_tokens":5,"temperature":0,"stream":true,"stream_options":{"include_usage":true}')"
sed '$d' "$TMP/sse" >"$TMP/chunks"
expect_eq "include_usage: a last chunk with no choices and the usage" "0 5" "$(tail -n 1 "$TMP/chunks" | jq -r '"\(.choices | length) \(.usage.completion_tokens)"')"
expect_eq "include_usage: usage null on the other chunks" true "$(sed '$d' "$TMP/chunks" | jq -s 'all(has("usage") and .usage == null)')"

sse /v1/chat/completions "$(chat '"max_tokens":10,"n":2,"seed":42,"stream":true')"
sed '$d' "$TMP/sse" >"$TMP/chunks"
expect_eq "n=2 stream: one role chunk per choice" "0,1" "$(jq -s -r '[.[] | select(.choices[0].delta.role) | .choices[0].index] | sort | map(tostring) | join(",")' "$TMP/chunks")"
expect_eq "n=2 stream: one finish per choice" "0,1" "$(jq -s -r '[.[] | select(.choices[0].finish_reason) | .choices[0].index] | sort | map(tostring) | join(",")' "$TMP/chunks")"
expect_eq "n=2 stream: each choice's deltas make its text" "$(jq -c '[.choices[].message.content]' "$TMP/n2.json")" \
    "$(jq -s -c '[0,1] as $i | [$i[] as $k | map(select(.choices[0].index == $k) | .choices[0].delta.content // "") | join("")]' "$TMP/chunks")"

# ---- logprobs ----
expect_status "chat logprobs" 200 POST /v1/chat/completions "$(chat '"max_tokens":5,"temperature":0,"logprobs":true,"top_logprobs":3')"
expect_json "logprobs: one entry per token" '.choices[0].logprobs.content | length' 5
expect_json "logprobs: entry shape" '.choices[0].logprobs.content | all((.token | type) == "string" and .logprob <= 0 and (.bytes | type) == "array" and (.top_logprobs | length) == 3)' true
expect_json "logprobs: the tokens spell the content" '[.choices[0].logprobs.content[].token] | join("") | ltrimstr(" ")' "$(jq -r '.choices[0].message.content | ltrimstr(" ")' "$RESP")"
expect_json "logprobs: greedy picks the best alternative" '.choices[0].logprobs.content | all(.logprob == .top_logprobs[0].logprob)' true
expect_json "logprobs: alternatives best first" '.choices[0].logprobs.content | all(.top_logprobs | . == (sort_by(-.logprob)))' true
expect_json "logprobs: bytes are the token's UTF-8" '.choices[0].logprobs.content | all((.bytes | implode) == .token)' true
sse /v1/chat/completions "$(chat '"max_tokens":4,"temperature":0,"logprobs":true,"stream":true')"
sed '$d' "$TMP/sse" >"$TMP/chunks"
expect_eq "streamed logprobs: one entry per token" 4 "$(jq -s '[.[].choices[0].logprobs.content // [] | length] | add' "$TMP/chunks")"

# ---- logit_bias ----
# stories260K has 512 tokens: ban all but two (and the end), so only those two can appear
bias="$(jq -nc '[range(3; 512) | select(. != 300 and . != 301) | {key: tostring, value: -100}] | from_entries')"
expect_status "logit_bias -100 bans tokens" 200 POST /v1/chat/completions "$(chat "\"max_tokens\":8,\"logprobs\":true,\"seed\":3,\"logit_bias\":$bias")"
expect_json "only the unbanned tokens come" '[.choices[0].logprobs.content[].token] | unique | length <= 2' true
expect_status "a positive bias" 200 POST /v1/chat/completions "$(chat '"max_tokens":4,"temperature":0,"logprobs":true,"logit_bias":{"300":100}')"
expect_json "a +100 bias wins the greedy pick" '[.choices[0].logprobs.content[].token] | unique | length' 1

# ---- stop ----
word="$(awk '{print $4}' <<<"$greedy")"
expect_status "stop" 200 POST /v1/chat/completions "$(chat "\"max_tokens\":12,\"temperature\":0,\"stop\":[\"$word\"]")"
expect_json "stop: the text ends before the stop string" '.choices[0].message.content' "${greedy%%"$word"*}"
expect_json "stop: finish_reason stop" '.choices[0].finish_reason' stop
expect_status "stop as a string" 200 POST /v1/chat/completions "$(chat "\"max_tokens\":12,\"temperature\":0,\"stop\":\"$word\"")"
expect_json "stop string: same text" '.choices[0].message.content' "${greedy%%"$word"*}"
sse /v1/chat/completions "$(chat "\"max_tokens\":12,\"temperature\":0,\"stop\":[\"$word\"],\"stream\":true")"
sed '$d' "$TMP/sse" >"$TMP/chunks"
expect_eq "stop, streamed: the same text" "${greedy%%"$word"*}" "$(jq -j '.choices[0].delta.content // ""' "$TMP/chunks")"
expect_eq "stop, streamed: finish_reason stop" stop "$(tail -n 1 "$TMP/chunks" | jq -r '.choices[0].finish_reason')"

# ---- JSON mode ----
# a strong bias towards closing quotes and braces makes every string end at
# once: the shortest object, whatever the sampler draws
strong='"logit_bias":{"436":100,"128":100}'
expect_status "json_object" 200 POST /v1/chat/completions "$(chat "\"max_tokens\":100,\"seed\":1,$strong,\"response_format\":{\"type\":\"json_object\"}")"
expect_json "json_object: finished by the end token" '.choices[0].finish_reason' stop
expect_json "json_object: the content is a JSON object" '.choices[0].message.content | fromjson | type' object
# the model's own choices, nudged towards quotes and braces, with newlines
# and spaces banned: every answer starts as an object, and any that ends
# parses as one
expect_status "json_object, n=4" 200 POST /v1/chat/completions \
    "$(chat '"max_tokens":40,"n":4,"seed":1,"logit_bias":{"436":6,"128":12,"13":-100,"410":-100},"response_format":{"type":"json_object"}')"
expect_json "json_object: every answer that ends parses as an object" '[.choices[] | select(.finish_reason == "stop") | .message.content | fromjson | type] | all(. == "object")' true
expect_json "json_object: every answer starts as an object" '[.choices[].message.content | test("^[ \t\r\n]*\\{")] | all' true
expect_status "json_schema (held to an object)" 200 POST /v1/chat/completions \
    "$(chat "\"max_tokens\":100,\"seed\":2,$strong,\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"x\",\"schema\":{\"type\":\"object\"}}}")"
expect_json "json_schema: an object" '.choices[0].message.content | fromjson | type' object
expect_status "json_object on a byte-level BPE model" 200 POST /v1/chat/completions \
    "{\"model\":\"$QWEN2\",\"messages\":[{\"role\":\"user\",\"content\":\"JSON\"}],\"max_tokens\":100,\"seed\":1,\"logit_bias\":{\"1\":100,\"92\":100},\"response_format\":{\"type\":\"json_object\"}}"
expect_json "BPE json_object: an object" '.choices[0].message.content | fromjson | type' object
sse /v1/chat/completions "$(chat "\"max_tokens\":100,\"seed\":1,$strong,\"stream\":true,\"response_format\":{\"type\":\"json_object\"}")"
sed '$d' "$TMP/sse" >"$TMP/chunks"
expect_eq "json_object streamed: the deltas make an object" object "$(jq -j '.choices[0].delta.content // ""' "$TMP/chunks" | jq -r type)"
expect_status "response_format text" 200 POST /v1/chat/completions "$(chat '"max_tokens":12,"temperature":0,"response_format":{"type":"text"}')"
expect_json "response_format text: plain output" '.choices[0].message.content' "$greedy"

# ---- a chat template (tiny-phi3 carries one) ----
expect_status "chat with the file's template" 200 POST /v1/chat/completions \
    "{\"model\":\"$PHI3\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],\"max_tokens\":4,\"temperature\":0}"
expect_json "template: the prompt has the template's markers (plain text would be BOS + Hi)" '.usage.prompt_tokens > 3' true

# ---- /v1/completions ----
expect_status "completion greedy" 200 POST /v1/completions "$(completion '"max_tokens":12,"temperature":0')"
expect_json "completion: object and id" '[.object, (.id | startswith("cmpl-"))] | map(tostring) | join(" ")' "text_completion true"
expect_json "completion: the choice" '.choices[0] | [.index, (.text | length > 0), .logprobs, .finish_reason] | map(tostring) | join(" ")' "0 true null length"
expect_json "completion: usage" '.usage | (.completion_tokens == 12) and (.total_tokens == .prompt_tokens + .completion_tokens)' true
ctext="$(jq -r '.choices[0].text' "$RESP")"
expect_status "completion: default max_tokens is 16" 200 POST /v1/completions "$(completion '"temperature":0')"
expect_json "16 tokens" .usage.completion_tokens 16
expect_status "completion: two prompts, n=2" 200 POST /v1/completions \
    "{\"model\":\"$STORIES\",\"prompt\":[\"Once upon a time\",\"The cat\"],\"n\":2,\"max_tokens\":6,\"temperature\":0}"
expect_json "two prompts x n=2: four choices" '[.choices[].index] | map(tostring) | join(",")' "0,1,2,3"
expect_json "greedy: choices 0 and 1 are the same" '.choices[0].text == .choices[1].text and .choices[2].text == .choices[3].text' true
first6="$(jq -r '.choices[0].text' "$RESP")"
if [ -n "$first6" ] && [[ "$ctext" == "$first6"* ]]; then ok "choice 0 continues the first prompt"; else not_ok "choice 0: '$first6' is not a start of '$ctext'"; fi
ids="$("$NSTACK" tokenize "$STORIES" "Once upon a time")"
expect_status "completion: a token-id prompt" 200 POST /v1/completions "{\"model\":\"$STORIES\",\"prompt\":$ids,\"max_tokens\":12,\"temperature\":0}"
expect_json "token ids give the same text" '.choices[0].text' "$ctext"
expect_status "completion: an array of token-id prompts" 200 POST /v1/completions "{\"model\":\"$STORIES\",\"prompt\":[$ids,$ids],\"max_tokens\":12,\"temperature\":0}"
expect_json "both token prompts" '[.choices[].text] | unique | length' 1
expect_status "completion: echo" 200 POST /v1/completions "$(completion '"max_tokens":12,"temperature":0,"echo":true')"
expect_json "echo puts the prompt first" '.choices[0].text' "Once upon a time$ctext"
expect_status "completion: logprobs 2" 200 POST /v1/completions "$(completion '"max_tokens":5,"temperature":0,"logprobs":2')"
expect_json "completion logprobs: the legacy shape" '.choices[0].logprobs | [(.tokens | length), (.token_logprobs | length), (.top_logprobs | length), (.text_offset | length)] | map(tostring) | join(",")' "5,5,5,5"
expect_json "completion logprobs: top_logprobs are token -> logprob objects" '.choices[0].logprobs.top_logprobs | all(type == "object" and length >= 1 and length <= 2)' true
expect_json "completion logprobs: text offsets grow" '.choices[0].logprobs.text_offset | . == sort and .[0] == 0' true
expect_status "completion: stop" 200 POST /v1/completions "$(completion "\"max_tokens\":12,\"temperature\":0,\"stop\":[\"$(awk '{print $4}' <<<"$ctext")\"]")"
expect_json "completion stop: finish_reason" '.choices[0].finish_reason' stop
sse /v1/completions "$(completion '"max_tokens":12,"temperature":0,"stream":true,"stream_options":{"include_usage":true}')"
sed '$d' "$TMP/sse" >"$TMP/chunks"
expect_eq "completion stream ends with [DONE]" "[DONE]" "$(tail -n 1 "$TMP/sse")"
expect_eq "completion chunks are text_completion" text_completion "$(jq -r .object "$TMP/chunks" | sort -u)"
expect_eq "completion chunks add up to the text" "$ctext" "$(jq -j '.choices[0].text // ""' "$TMP/chunks")"
expect_eq "completion stream: finish then usage" "length 12" \
    "$(jq -s -r '"\(map(select(.choices | length > 0))[-1].choices[0].finish_reason) \(.[-1].usage.completion_tokens)"' "$TMP/chunks")"

# ---- errors, in OpenAI's shape, and the server keeps serving ----
# bad WHAT STATUS PATH BODY PARAM: one check of status, type and param
bad() {
    local got
    got="$(req POST "$3" "$4")"
    local shape
    shape="$(jq -r '.error | "\(.type) \(.param) \(.message | length > 0)"' "$RESP" 2>/dev/null)"
    local type=invalid_request_error
    [ "$2" == 404 ] && type=not_found_error
    if [ "$got" == "$2" ] && [ "$shape" == "$type $5 true" ]; then ok "$1"; else
        not_ok "$1: status $got, error '$shape', expected $2 '$type $5 true'"
        echo "  body: $(head -c 300 "$RESP")"
    fi
}
C=/v1/chat/completions
bad "malformed JSON" 400 $C '{"model":' null
expect_json "malformed JSON: says where" '.error.message | test("invalid JSON at byte [0-9]+")' true
bad "a JSON array body" 400 $C '[1]' null
bad "no model" 400 $C '{"messages":[{"role":"user","content":"x"}]}' model
bad "unknown model" 404 $C '{"model":"no-such-model","messages":[{"role":"user","content":"x"}]}' model
expect_json "unknown model: code" .error.code model_not_found
bad "no messages" 400 $C "{\"model\":\"$STORIES\"}" messages
bad "empty messages" 400 $C "{\"model\":\"$STORIES\",\"messages\":[]}" messages
bad "a message without a role" 400 $C "{\"model\":\"$STORIES\",\"messages\":[{\"content\":\"x\"}]}" "messages[0]"
bad "an unknown role" 400 $C "{\"model\":\"$STORIES\",\"messages\":[{\"role\":\"robot\",\"content\":\"x\"}]}" "messages[0]"
bad "an image part" 400 $C "{\"model\":\"$STORIES\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{\"url\":\"http://x/y.png\"}}]}]}" "messages[0].content"
bad "temperature 3" 400 $C "$(chat '"temperature":3')" temperature
bad "temperature a string" 400 $C "$(chat '"temperature":"hot"')" temperature
bad "top_p 1.5" 400 $C "$(chat '"top_p":1.5')" top_p
bad "n 9" 400 $C "$(chat '"n":9')" n
bad "n 0" 400 $C "$(chat '"n":0')" n
bad "max_tokens 0" 400 $C "$(chat '"max_tokens":0')" max_tokens
bad "max_tokens 1.5" 400 $C "$(chat '"max_tokens":1.5')" max_tokens
bad "presence_penalty 3" 400 $C "$(chat '"presence_penalty":3')" presence_penalty
bad "frequency_penalty -2.5" 400 $C "$(chat '"frequency_penalty":-2.5')" frequency_penalty
bad "five stop strings" 400 $C "$(chat '"stop":["a","b","c","d","e"]')" stop
bad "stop of the wrong type" 400 $C "$(chat '"stop":5')" stop
bad "logit_bias 200" 400 $C "$(chat '"logit_bias":{"5":200}')" logit_bias
bad "logit_bias key not an id" 400 $C "$(chat '"logit_bias":{"abc":1}')" logit_bias
bad "logit_bias outside the vocabulary" 400 $C "$(chat '"logit_bias":{"99999":1}')" logit_bias
bad "top_logprobs 21" 400 $C "$(chat '"logprobs":true,"top_logprobs":21')" top_logprobs
bad "top_logprobs without logprobs" 400 $C "$(chat '"top_logprobs":2')" top_logprobs
bad "response_format of an unknown type" 400 $C "$(chat '"response_format":{"type":"yaml"}')" response_format
bad "stream not a boolean" 400 $C "$(chat '"stream":"yes"')" stream
bad "seed not an integer" 400 $C "$(chat '"seed":1.5')" seed
long="$(printf 'Once upon a time %.0s' $(seq 1 400))"
bad "a prompt longer than the context" 400 $C "{\"model\":\"$STORIES\",\"messages\":[{\"role\":\"user\",\"content\":\"$long\"}]}" messages
expect_json "context overflow: code" .error.code context_length_exceeded
P=/v1/completions
bad "completion without a prompt" 400 $P "{\"model\":\"$STORIES\"}" prompt
bad "completion prompt of the wrong type" 400 $P "{\"model\":\"$STORIES\",\"prompt\":{}}" prompt
bad "completion token id outside the vocabulary" 400 $P "{\"model\":\"$STORIES\",\"prompt\":[1,99999]}" prompt
bad "completion echo with logprobs" 400 $P "$(completion '"echo":true,"logprobs":1')" echo
bad "completion suffix" 400 $P "$(completion '"suffix":"end"')" suffix
bad "completion best_of 3" 400 $P "$(completion '"best_of":3')" best_of
bad "completion logprobs 21" 400 $P "$(completion '"logprobs":21')" logprobs
server_alive "after the bad requests"
expect_status "a good request after them" 200 POST /v1/chat/completions "$(chat '"max_tokens":12,"temperature":0')"
expect_json "still the same greedy output" '.choices[0].message.content' "$greedy"

stop_server
finish
