#!/usr/bin/env bash
# `nstack ai benchmark` against a real server: per-run and median numbers
# (TTFT, tokens/s from the server's eval_count / eval_duration and from the
# client's clock), the default model, --runtime, and the errors: an unknown
# model gets the server's message, an unreachable runtime the client's.
. "$(dirname "$0")/lib_server.bash"

start_server || exit 1

# ---- 1. --json: two runs of 16 tokens ----
"$NSTACK" ai benchmark --host "$BASE" --model demo --tokens 16 --runs 2 --json >"$RESP" 2>"$TMP/err"
expect_eq "exit 0" 0 "$?"
expect_json "two runs" '.runs | length' 2
expect_json "the model" .model demo
expect_json "the runtime" .runtime "$BASE"
expect_json "16 tokens a run" '[.runs[].tokens] | unique | tostring' "[16]"
expect_json "TTFT > 0 in each run" '[.runs[].ttft_ms > 0] | all' true
expect_json "tokens/s > 0 in each run" '[.runs[].tokens_per_s > 0] | all' true
expect_json "client tokens/s > 0 in each run" '[.runs[].client_tokens_per_s > 0] | all' true
expect_json "median TTFT > 0" '.median.ttft_ms > 0' true
expect_json "median tokens/s > 0" '.median.tokens_per_s > 0' true
expect_json "median client tokens/s > 0" '.median.client_tokens_per_s > 0' true

# ---- 2. the table, with the default model (the loaded one) and --runtime ----
out="$("$NSTACK" ai benchmark --runtime "$BASE" --tokens 8 --runs 3 2>&1)"
expect_eq "--runtime: exit 0" 0 "$?"
grep -q "^benchmark demo:latest at $BASE: 8 tokens, 3 runs, temperature 0" <<<"$out" && ok "the title" ||
    not_ok "no title: $out"
expect_eq "three runs and the median" "1 2 3 MED" "$(awk '/^([0-9]+|MED) /{print $1}' <<<"$out" | xargs)"

# ---- 3. errors ----
expect_fail "an unknown model: the server's message" 1 'model "nope" not found' -- \
    "$NSTACK" ai benchmark --host "$BASE" --model nope --runs 1
expect_fail "unreachable" 1 "cannot reach the server at http://127.0.0.1:1" -- \
    "$NSTACK" ai benchmark --runtime 127.0.0.1:1 --model demo
expect_fail "bad --runs" 2 "--runs must be a whole number" -- "$NSTACK" ai benchmark --runs 0
expect_fail "bad --tokens" 2 "--tokens must be a whole number" -- "$NSTACK" ai benchmark --tokens x
expect_fail "an unknown option" 2 "unknown option '--bogus'" -- "$NSTACK" ai benchmark --bogus

stop_server
finish
