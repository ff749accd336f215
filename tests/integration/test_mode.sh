#!/usr/bin/env bash
# The server's mode (GET/PUT/POST /mode, docs/api.md), on a real server:
# NORMAL by default; setting GAMING (any case, PUT or POST) moves `since`,
# setting it again keeps it; bad bodies are 400s; the state file carries the
# mode across a restart; a corrupt file starts GAMING with a note; a file
# that cannot be written is a 500 that changes nothing; `nstack mode`; the
# mode_changed event.
. "$(dirname "$0")/lib_server.bash"

MODE_FILE="$TMP/state/mode.json"
export SERVER_MODE_FILE="$MODE_FILE"
BAD_MODE='mode must be "NORMAL" or "GAMING"'
# local runs stay local whatever the caller's environment says
cli() { env -u NSTACK_HOST "$NSTACK" "$@"; }

start_server --no-demo || exit 1
H="127.0.0.1:$PORT"

# ---- 1. the default ----
expect_status "GET /mode" 200 GET /mode
expect_json "NORMAL by default" .mode NORMAL
expect_json "changed by startup" .changed_by startup
expect_json "since is RFC 3339" '.since | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}")' true
expect_json "no note" .note null
expect_json "exactly mode, since, changed_by" 'keys | join(",")' "changed_by,mode,since"
since0="$(jq -r .since "$RESP")"
if [ -e "$MODE_FILE" ]; then not_ok "a GET wrote the mode file"; else ok "no mode file until the mode is set"; fi

# ---- 2. setting it ----
expect_status "PUT gaming" 200 PUT /mode '{"mode":"GAMING"}'
expect_json "GAMING" .mode GAMING
expect_json "changed by this client" '.changed_by | test("^127\\.0\\.0\\.1:[0-9]+$")' true
since1="$(jq -r .since "$RESP")"
if [ "$since1" != "$since0" ]; then ok "since moved"; else not_ok "since did not move: $since1"; fi
expect_status "GET after PUT" 200 GET /mode
expect_json "GET says GAMING" .mode GAMING
expect_json "GET has the same since" .since "$since1"
expect_eq "the state file has it" GAMING "$(jq -r .mode "$MODE_FILE" 2>&1)"
expect_eq "the state file has since" "$since1" "$(jq -r .since "$MODE_FILE" 2>&1)"
if ls "$TMP/state" | grep -q tmp; then not_ok "a temp file was left: $(ls "$TMP/state")"; else ok "no temp file left"; fi

expect_status "PUT gaming again" 200 PUT /mode '{"mode":"GAMING"}'
expect_json "still GAMING" .mode GAMING
expect_json "the same mode again keeps since" .since "$since1"

expect_status "lower case" 200 PUT /mode '{"mode":"normal"}'
expect_json "NORMAL" .mode NORMAL
since2="$(jq -r .since "$RESP")"
if [ "$since2" != "$since1" ]; then ok "since moved again"; else not_ok "since did not move: $since2"; fi
expect_status "mixed case" 200 PUT /mode '{"mode":"GaMiNg"}'
expect_json "GAMING from mixed case" .mode GAMING
expect_status "POST works too" 200 POST /mode '{"mode":"Normal"}'
expect_json "NORMAL from POST" .mode NORMAL
since2="$(jq -r .since "$RESP")"

# ---- 3. bad bodies change nothing ----
for body in '{"mode":"turbo"}' '{}' '{"mode":1}' '{"mode":null}' '{"mode":["GAMING"]}' '{"mode":""}'; do
    expect_status "400 for $body" 400 PUT /mode "$body"
    expect_json "the message for $body" ".error | startswith(\"$(printf '%s' "$BAD_MODE" | sed 's/"/\\"/g')\")" true
done
expect_status "400 for invalid JSON" 400 PUT /mode '{"mode":'
expect_json "says invalid JSON" '.error | startswith("invalid JSON")' true
expect_status "400 for a JSON array" 400 PUT /mode '["GAMING"]'
expect_status "400 for no body" 400 PUT /mode
expect_status "405 for DELETE" 405 DELETE /mode
expect_status "GET after the bad bodies" 200 GET /mode
expect_json "still NORMAL" .mode NORMAL
expect_json "since unchanged" .since "$since2"

# ---- 4. concurrent sets: the file ends as the server says ----
pids=()
for i in $(seq 1 20); do
    if ((i % 2)); then m=gaming; else m=normal; fi
    curl -s -o /dev/null -X PUT -d "{\"mode\":\"$m\"}" "$BASE/mode" &
    pids+=($!)
done
wait "${pids[@]}" # not a plain wait: the server is a background job too
expect_status "GET after concurrent sets" 200 GET /mode
expect_eq "the file matches the server" "$(jq -c '{mode, since, changed_by}' "$RESP")" \
    "$(jq -c '{mode, since, changed_by}' "$MODE_FILE" 2>&1)"

# ---- 5. the events ----
expect_status "set GAMING for the events" 200 PUT /mode '{"mode":"GAMING"}'
timeout 2 curl -sN "$BASE/api/events?replay=10" >"$TMP/events.txt"
last="$(sed -n 's/^data: //p' "$TMP/events.txt" | jq -c 'select(.kind == "mode_changed")' | tail -n 1)"
expect_eq "a mode_changed event" mode_changed "$(echo "$last" | jq -r .kind)"
expect_eq "its detail: mode" GAMING "$(echo "$last" | jq -r .detail.mode)"
expect_eq "its detail: previous" NORMAL "$(echo "$last" | jq -r .detail.previous)"
expect_eq "its detail: by" true "$(echo "$last" | jq -r '.detail.by | test("^127\\.0\\.0\\.1:[0-9]+$")')"
expect_eq "its request id" true "$(echo "$last" | jq -r '.request_id | length > 0')"
grep -q '^event: mode_changed$' "$TMP/events.txt" && ok "SSE event name mode_changed" || not_ok "no 'event: mode_changed' line"
n_before="$(sed -n 's/^data: //p' "$TMP/events.txt" | jq -c 'select(.kind == "mode_changed")' | wc -l)"
expect_status "GAMING again" 200 PUT /mode '{"mode":"gaming"}'
timeout 2 curl -sN "$BASE/api/events?replay=10" >"$TMP/events2.txt"
n_after="$(sed -n 's/^data: //p' "$TMP/events2.txt" | jq -c 'select(.kind == "mode_changed")' | wc -l)"
expect_eq "no event when the mode stays" "$n_before" "$n_after"

# ---- 6. the CLI ----
out="$(cli mode --host "$H")"
expect_eq "nstack mode" true "$([[ "$out" =~ ^GAMING\ \(since\ [0-9]{4}-.+\)$ ]] && echo true || echo "$out")"
out="$(cli mode normal --host "$H")"
expect_eq "nstack mode normal" true "$([[ "$out" =~ ^NORMAL\ \(since\ [0-9]{4}-.+\)$ ]] && echo true || echo "$out")"
expect_eq "nstack mode GAMING --json" GAMING "$(cli mode GAMING --json --host "$H" | jq -r .mode)"
expect_eq "nstack mode --json" true "$(cli mode --json --host "$H" | jq -r '.mode == "GAMING" and (.since | length > 0)')"
expect_eq "NSTACK_HOST" GAMING "$(NSTACK_HOST="$H" "$NSTACK" mode --json | jq -r .mode)"
out="$(cli mode --help)"
[[ "$out" == usage:* && "$out" == *--host* ]] && ok "nstack mode --help" || not_ok "nstack mode --help: $out"
expect_fail "nstack mode: unknown mode" 2 "unknown mode 'turbo'" -- cli mode turbo --host "$H"
expect_fail "nstack mode: two modes" 2 "unexpected argument 'gaming'" -- cli mode normal gaming --host "$H"
expect_fail "nstack mode: unknown option" 2 "unknown option '--bogus'" -- cli mode --bogus
expect_fail "nstack mode: no server" 1 "nstack mode: cannot reach the server at http://127.0.0.1:1" -- \
    cli mode --host 127.0.0.1:1
expect_fail "nstack mode gaming: no server" 1 "nstack mode: cannot reach the server at http://127.0.0.1:1" -- \
    cli mode gaming --host 127.0.0.1:1

# ---- 7. a restart keeps it ----
expect_status "GET before the restart" 200 GET /mode
before="$(jq -c '{mode, since, changed_by}' "$RESP")"
stop_server
start_server --no-demo || exit 1
expect_status "GET after the restart" 200 GET /mode
expect_eq "the mode, since and changed_by survive a restart" "$before" "$(jq -c '{mode, since, changed_by}' "$RESP")"
expect_json "no note after a clean restart" .note null

# ---- 8. a corrupt file: GAMING until set ----
stop_server
echo '{"mode": "NORM' >"$MODE_FILE"
start_server --no-demo || exit 1
expect_status "GET with a corrupt file" 200 GET /mode
expect_json "GAMING with a corrupt file" .mode GAMING
expect_json "a note" '.note | contains("could not be read") and contains("GAMING until set")' true
expect_json "the note names the file" ".note | contains(\"$MODE_FILE\")" true
grep -q 'level=warn comp=mode.*mode.json' "$SERVER_LOG" && ok "a warning naming the file" ||
    not_ok "no warning naming the file in the log"
out="$(cli mode --host "127.0.0.1:$PORT" 2>"$TMP/cli_err")"
expect_eq "nstack mode shows GAMING" true "$([[ "$out" == GAMING* ]] && echo true || echo "$out")"
grep -q "could not be read" "$TMP/cli_err" && ok "nstack mode prints the note" || not_ok "no note from nstack mode"
expect_status "setting GAMING clears the note" 200 PUT /mode '{"mode":"GAMING"}'
expect_json "no note once set" .note null
expect_eq "the file is whole again" GAMING "$(jq -r .mode "$MODE_FILE" 2>&1)"
stop_server
for bad in '' 'not json' '{"mode":"turbo","since":"2026-01-01T00:00:00Z"}' '{"mode":"NORMAL"}' \
    '{"mode":"NORMAL","since":"yesterday"}' '[1,2]'; do
    printf '%s' "$bad" >"$MODE_FILE"
    start_server --no-demo || exit 1
    expect_status "GET with the file '$bad'" 200 GET /mode
    expect_json "GAMING with the file '$bad'" .mode GAMING
    stop_server
done
printf '%s' '{"mode":"normal","since":"2026-01-01T00:00:00Z"}' >"$MODE_FILE"
start_server --no-demo || exit 1
expect_status "GET with a hand-written file" 200 GET /mode
expect_json "a hand-written file in lower case" .mode NORMAL
expect_json "its since" .since 2026-01-01T00:00:00Z
expect_json "no changed_by in it" .changed_by unknown

# ---- 9. a file that cannot be written: 500, nothing changes ----
rm -rf "$TMP/state" && echo "not a directory" >"$TMP/state"
expect_status "PUT when the file cannot be written" 500 PUT /mode '{"mode":"GAMING"}'
expect_json "says why" ".error | contains(\"$MODE_FILE\") and contains(\"not a directory\")" true
expect_status "GET after the failed PUT" 200 GET /mode
expect_json "the mode did not change" .mode NORMAL
expect_json "nor since" .since 2026-01-01T00:00:00Z
expect_fail "nstack mode gaming: the server's 500" 1 "nstack mode: cannot write the mode file" -- \
    cli mode gaming --host "127.0.0.1:$PORT"
stop_server

finish
