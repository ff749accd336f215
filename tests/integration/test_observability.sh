#!/usr/bin/env bash
# Issue #7 against a real server: generation metrics that agree with the
# responses' own timing fields, /metrics in the Prometheus text format
# (promtool when installed, and tests/integration/js/prom_check.mjs), the
# event stream over SSE in order with replay, the resource monitor, an alert
# that fires and clears, and the SQLite history surviving a restart.
. "$(dirname "$0")/lib_server.bash"

command -v node >/dev/null || { echo "SKIP: node is not installed"; exit 77; }
PROM_CHECK="$(dirname "$0")/js/prom_check.mjs"

# within PCT A B: |A - B| <= PCT % of the larger
within() {
    awk -v p="$1" -v a="$2" -v b="$3" 'BEGIN { m = a > b ? a : b; d = a - b; if (d < 0) d = -d; exit !(d <= m * p / 100) }'
}

# wait_for_line FILE PATTERN SECONDS
wait_for_line() {
    local i
    for ((i = 0; i < $3 * 20; i++)); do
        grep -q "$2" "$1" 2>/dev/null && return 0
        sleep 0.05
    done
    return 1
}

start_server --sample-interval 50ms || exit 1
DB="$TMP/nstack.db"
SSE="$TMP/events.txt"
curl -sN "$BASE/api/events?replay=0" >"$SSE" &
SSE_PID=$!
wait_for_line "$SSE" "neurostack events" 5 || not_ok "the event stream opened"

# ---- generations: the profiler's records agree with the responses ----
N=3
ids=()
evals=0
for ((k = 0; k < N; k++)); do
    body="{\"model\":\"demo\",\"prompt\":\"count $k\",\"stream\":false,\"options\":{\"num_predict\":1000,\"temperature\":0}}"
    curl -s -D "$TMP/h.$k" -o "$TMP/g.$k" -H 'Content-Type: application/json' --data-binary "$body" "$BASE/api/generate"
    ids+=("$(tr -d '\r' <"$TMP/h.$k" | awk -F': ' 'tolower($1) == "x-request-id" { print $2 }')")
    evals=$((evals + $(jq .eval_count "$TMP/g.$k")))
done
expect_status "GET /api/metrics/generations" 200 GET "/api/metrics/generations?limit=10"
expect_eq "records from the database" "database" "$(jq -r .source "$RESP")"
for ((k = 1; k < N; k++)); do # the first request also loaded the model
    g="$TMP/g.$k"
    rec="$(jq -c --arg id "${ids[$k]}" '.generations[] | select(.request_id == $id)' "$RESP")"
    if [ -z "$rec" ]; then not_ok "generation ${ids[$k]} is listed"; continue; fi
    expect_eq "eval tokens of ${ids[$k]}" "$(jq .eval_tokens <<<"$rec")" "$(jq .eval_count "$g")"
    expect_eq "prompt tokens of ${ids[$k]}" "$(jq .prompt_tokens <<<"$rec")" "$(jq .prompt_eval_count "$g")"
    # the same clock readings feed both (ns_job_times): only rounding differs
    for pair in "eval_ms eval_duration" "prompt_ms prompt_eval_duration"; do
        set -- $pair
        a="$(jq ".$1 * 1e6" <<<"$rec")" b="$(jq ".$2" "$g")"
        if within 5 "$a" "$b"; then ok "$1 agrees with $2 ($a vs $b ns)"; else not_ok "$1 $a vs $2 $b ns"; fi
    done
    # the response's total also covers parsing the request and tokenizing
    # before the job is submitted and waking the request's thread after it ends:
    # about a millisecond, under 5 % of a 1000-token generation even on a busy machine
    a="$(jq ".total_ms * 1e6" <<<"$rec")" b="$(jq ".total_duration - .load_duration" "$g")"
    if within 5 "$a" "$b"; then ok "total_ms agrees with total_duration ($a vs $b ns)"; else not_ok "total_ms $a vs total_duration $b ns"; fi
done
expect_eq "per-model requests" "$N" "$(jq '.models[] | select(.model == "demo:latest") | .requests' "$RESP")"
expect_eq "per-model generated tokens" "$evals" "$(jq '.models[] | select(.model == "demo:latest") | .eval_tokens' "$RESP")"
peak="$(jq '.models[0].peak_tokens_per_s' "$RESP")" avg="$(jq '.models[0].avg_tokens_per_s' "$RESP")"
if awk -v p="$peak" -v a="$avg" 'BEGIN { exit !(p > 0 && a > 0 && p >= a * 0.999) }'; then ok "peak ($peak) >= average ($avg) tok/s"; else not_ok "peak $peak, average $avg tok/s"; fi
expect_status "generations of an unknown model: an empty list" 200 GET "/api/metrics/generations?model=nope"
expect_eq "no records for it" "0" "$(jq '.generations | length' "$RESP")"

# ---- /metrics ----
expect_status "GET /metrics" 200 GET /metrics
cp "$RESP" "$TMP/metrics.txt"
if node "$PROM_CHECK" <"$TMP/metrics.txt" >"$TMP/samples.jsonl"; then ok "/metrics passes the strict format check"; else not_ok "/metrics format"; fi
if command -v promtool >/dev/null; then
    if promtool check metrics <"$TMP/metrics.txt" >"$TMP/promtool.out" 2>&1; then ok "promtool check metrics accepts /metrics"
    else not_ok "promtool check metrics: $(head -5 "$TMP/promtool.out")"; fi
else
    echo "SKIP: promtool is not installed (Debian package prometheus); the strict JS check ran"
fi
sample() { jq -s --arg n "$1" --argjson l "$2" '[.[] | select(.name == $n and (.labels | contains($l)))] | map(.value) | add // 0' "$TMP/samples.jsonl"; }
expect_eq "nstack_generations_total" "$N" "$(sample nstack_generations_total '{"model":"demo:latest"}')"
expect_eq "nstack_generated_tokens_total" "$evals" "$(sample nstack_generated_tokens_total '{"model":"demo:latest"}')"
expect_eq "nstack_http_requests_total of /api/generate 200" \
    "$(sample nstack_http_requests_total '{"route":"/api/generate","status":"200"}')" "$N"
expect_eq "generation latency histogram count" \
    "$(sample nstack_generation_duration_seconds_count '{"model":"demo:latest"}')" "$N"
expect_eq "one model loaded" "1" "$(sample nstack_models_loaded '{}')"
ram="$(sample nstack_ram_total_bytes '{}')"
if [ "${ram%.*}" -gt 0 ] 2>/dev/null; then ok "RAM total gauge ($ram)"; else not_ok "RAM total gauge: $ram"; fi

# ---- resources ----
expect_status "GET /api/resources" 200 GET /api/resources
expect_eq "the sampler's period" "50" "$(jq .interval_ms "$RESP")"
if jq -e '.ram.total > 0 and .ram.available > 0 and .ram.process_rss > 0 and .cpu.cores > 0 and (.gpus | type) == "array"' "$RESP" >/dev/null; then
    ok "resources: RAM, RSS, CPU and a GPU list"; else not_ok "resources: $(cat "$RESP")"; fi
expect_eq "the loaded model is listed" "demo:latest" "$(jq -r '.models[0].name' "$RESP")"
expect_status "resource history" 200 GET "/api/resources/history?period=1m&step=100ms"
if jq -e '(.points | length) >= 2 and .source == "database"' "$RESP" >/dev/null; then ok "history has points ($(jq '.points | length' "$RESP"))"
else not_ok "history: $(head -c 300 "$RESP")"; fi
expect_status "history: a bad period" 400 GET "/api/resources/history?period=soon"
expect_status "history: too many points" 400 GET "/api/resources/history?period=24h&step=1ms"
expect_status "generations: a bad limit" 400 GET "/api/metrics/generations?limit=0"
expect_status "events: a bad replay count" 400 GET "/api/events?replay=-3"

# ---- an alert that fires and clears ----
used_pct="$(jq '.ram.used * 100 / .ram.total | floor' <(curl -s "$BASE/api/resources"))"
expect_status "lower the RAM threshold to 1 %" 200 POST /api/alerts '{"ram_pct": 1}'
if wait_for_line "$SSE" "event: alert_fired" 5; then ok "alert_fired arrives over SSE"; else not_ok "no alert_fired event"; fi
expect_status "GET /api/alerts" 200 GET /api/alerts
expect_eq "the RAM alert is active" "ram_pct" "$(jq -r '.active[0].metric' "$RESP")"
if [ "$used_pct" -lt 90 ]; then
    expect_status "raise it to 100 %" 200 POST /api/alerts '{"ram_pct": 100}'
    if wait_for_line "$SSE" "event: alert_cleared" 5; then ok "alert_cleared arrives over SSE"; else not_ok "no alert_cleared event"; fi
    expect_status "GET /api/alerts" 200 GET /api/alerts
    expect_eq "no alert active" "0" "$(jq '.active | length' "$RESP")"
else
    echo "SKIP: RAM is ${used_pct}% used, too full to clear a 100% threshold's alert (margin 5)"
fi
expect_status "a threshold that is not a number" 400 POST /api/alerts '{"ram_pct": "high"}'
expect_status "a threshold out of range" 400 POST /api/alerts '{"temp_c": 1000}'

# ---- the event stream: lifecycle events in order ----
expect_status "unload the model" 200 POST /api/unload '{"model":"demo"}'
wait_for_line "$SSE" "event: unloaded" 5 || true
kill "$SSE_PID" 2>/dev/null
wait "$SSE_PID" 2>/dev/null
kinds="$(awk '/^event: / { print $2 }' "$SSE" | grep -v '^alert_' | tr '\n' ' ')"
want="load_started load_completed"
for ((k = 0; k < N; k++)); do want="$want generation_started generation_completed"; done
want="$want unloaded "
expect_eq "SSE lifecycle events in order" "$kinds" "$want"
if awk '/^id: / { if ($2 <= last) bad = 1; last = $2 } END { exit bad }' "$SSE"; then ok "SSE ids increase"; else not_ok "SSE ids out of order"; fi
first_gen="$(awk '/^id: / { id = $2 } /^event: generation_completed/ { print id; exit }' "$SSE")"
timeout 2 curl -sN -H "Last-Event-ID: $first_gen" "$BASE/api/events" >"$TMP/replay.txt"
expect_eq "a reconnect with Last-Event-ID replays from the next event" \
    "$(awk '/^id: / { print $2; exit }' "$TMP/replay.txt")" "$((first_gen + 1))"
timeout 2 curl -sN "$BASE/api/events?replay=2" >"$TMP/replay2.txt"
expect_eq "?replay=2 replays two events" "2" "$(grep -c '^id: ' "$TMP/replay2.txt")"
expect_status "stored events" 200 GET "/api/events/history?kind=load_completed"
expect_eq "the load is stored" "1" "$(jq '.events | length' "$RESP")"

stop_server

# ---- a restart keeps the history ----
restart_at="$(date -u +%s)"
start_server --sample-interval 50ms || exit 1
expect_status "generations after a restart" 200 GET "/api/metrics/generations?limit=100"
for id in "${ids[@]}"; do
    expect_eq "$id survives the restart" "1" "$(jq --arg id "$id" '[.generations[] | select(.request_id == $id)] | length' "$RESP")"
done
expect_status "history after a restart" 200 GET "/api/resources/history?period=10m&step=1s"
before="$(jq --argjson t "$restart_at" '[.points[] | select((.time | sub("\\.[0-9]+Z$"; "Z") | fromdate) < $t)] | length' "$RESP")"
if [ "$before" -gt 0 ]; then ok "resource history from before the restart ($before points)"; else not_ok "no resource history from before the restart"; fi
expect_status "events after a restart" 200 GET "/api/events/history?kind=unloaded"
if [ "$(jq '.events | length' "$RESP")" -ge 1 ]; then ok "the unload event survives the restart"; else not_ok "no stored unload event"; fi
stop_server

# ---- a database file that is not one: a clear refusal, not a crash ----
head -c 4096 /dev/urandom >"$TMP/garbage.db"
timeout 30 env NSTACK_MODELS="$TMP/models" "$NSTACK" serve --host 127.0.0.1:0 --models "$TMP/models" \
    --db "$TMP/garbage.db" >"$TMP/garbage.log" 2>&1
rc=$?
if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && grep -q "cannot open the metrics database .*not an SQLite database" "$TMP/garbage.log"; then
    ok "a garbage database is refused with a clear message (exit $rc)"
else
    not_ok "garbage database: exit $rc, $(tail -2 "$TMP/garbage.log")"
fi
start_server --db off || exit 1
expect_status "generations without a database" 200 GET /api/metrics/generations
expect_eq "from memory" "memory" "$(jq -r .source "$RESP")"
expect_status "no stored events without a database" 404 GET /api/events/history
stop_server
finish
