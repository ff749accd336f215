# Shared by the integration tests: start a real `nstack serve` on a free
# port, talk to it with curl, stop it and check that it exits cleanly.
#
#   . "$(dirname "$0")/lib_server.bash"
#   start_server [serve options...] || exit 1   # sets BASE, PORT, SERVER_PID, SERVER_LOG
#   st="$(req POST /api/show '{"model":"demo"}')"; jq -r .details.family "$RESP"
#   expect_status "show demo" 200 POST /api/show '{"model":"demo"}'
#   stop_server                                 # SIGTERM; an ok/not_ok check of exit 0
#   finish
#
# The server gets its own empty model store ($TMP/models, or $SERVER_MODELS),
# metrics database ($TMP/nstack.db, or $SERVER_DB), mode file ($TMP/mode.json,
# or $SERVER_MODE_FILE), profile file and profiles directory ($TMP/profile.json,
# $TMP/profiles, or $SERVER_PROFILE_FILE, $SERVER_PROFILES) and an empty Ollama store ($SERVER_OLLAMA_MODELS), so
# a developer's models, history and mode never leak into a test; the demo
# model is created there unless --no-demo.
# Call start_server and stop_server in the test's own shell (not in $(...)):
# they keep the server's pid. A server still running when the test exits is
# killed. Tests need curl and jq (skip, exit 77, without them).
. "$(dirname "${BASH_SOURCE[0]}")/../cli/lib.bash"

for tool in curl jq; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "SKIP: $tool is not installed"
        exit 77
    fi
done

SERVER_PID=""
SERVER_LOG=""
BASE=""
PORT=""
RESP="$TMP/resp"
_server_count=0

_server_cleanup() {
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -KILL "$SERVER_PID" 2>/dev/null
        wait "$SERVER_PID" 2>/dev/null
    fi
    rm -rf "$TMP"
}
trap _server_cleanup EXIT

# server_log: the running (or last) server's log, for failure reports.
server_log() {
    echo "---- server log ($SERVER_LOG) ----"
    [ -n "$SERVER_LOG" ] && tail -n 60 "$SERVER_LOG"
    echo "---- end of server log ----"
}

# start_server [serve options...]: starts `nstack serve --host 127.0.0.1:0`,
# waits (polling briefly) until /api/version answers, and sets PORT and BASE.
# Returns 1 with the log shown when the server does not come up.
start_server() {
    _server_count=$((_server_count + 1))
    SERVER_LOG="$TMP/server.$_server_count.log"
    local models="${SERVER_MODELS:-$TMP/models}" ollama="${SERVER_OLLAMA_MODELS:-$TMP/ollama-models}"
    mkdir -p "$models" "$ollama"
    env -u NSTACK_HOST NSTACK_MODELS="$models" OLLAMA_MODELS="$ollama" NSTACK_DB="${SERVER_DB:-$TMP/nstack.db}" \
        NSTACK_MODE_FILE="${SERVER_MODE_FILE:-$TMP/mode.json}" NSTACK_SNAPSHOTS="${SERVER_SNAPSHOTS:-$TMP/snapshots}" \
        NSTACK_ROUTE_LOG="$TMP/route.jsonl" \
        NSTACK_PROFILE_FILE="${SERVER_PROFILE_FILE:-$TMP/profile.json}" NSTACK_PROFILES="${SERVER_PROFILES:-$TMP/profiles}" \
        "$NSTACK" serve --host 127.0.0.1:0 --models "$models" "$@" 2>"$SERVER_LOG" &
    SERVER_PID=$!
    local i line=""
    # up to ~60 s: an ASan build creating the demo model on a busy machine is slow
    for ((i = 0; i < 1200; i++)); do
        line="$(grep -o 'listening on http://[^" ]*' "$SERVER_LOG" 2>/dev/null | head -n 1)"
        [ -n "$line" ] && break
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            wait "$SERVER_PID"
            echo "FAIL: the server exited (status $?) before listening"
            server_log
            SERVER_PID=""
            return 1
        fi
        sleep 0.05
    done
    if [ -z "$line" ]; then
        echo "FAIL: the server did not start listening"
        server_log
        return 1
    fi
    PORT="${line##*:}"
    BASE="http://127.0.0.1:$PORT"
    for ((i = 0; i < 200; i++)); do
        curl -sf -o /dev/null "$BASE/api/version" && return 0
        sleep 0.05
    done
    echo "FAIL: $BASE/api/version does not answer"
    server_log
    return 1
}

# stop_server [expected exit code, default 0]: SIGTERM, then an ok/not_ok
# check of the exit code; a server still running after 30 s is killed (FAIL).
stop_server() {
    local want="${1:-0}" i rc
    if [ -z "$SERVER_PID" ]; then
        not_ok "stop_server: no server running"
        return
    fi
    kill -TERM "$SERVER_PID" 2>/dev/null
    for ((i = 0; i < 600; i++)); do
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.05
    done
    if kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -KILL "$SERVER_PID" 2>/dev/null
        wait "$SERVER_PID" 2>/dev/null
        not_ok "server did not stop within 30 s of SIGTERM"
        server_log
        SERVER_PID=""
        return
    fi
    wait "$SERVER_PID"
    rc=$?
    SERVER_PID=""
    if [ "$rc" -eq "$want" ]; then ok "server exits $want on SIGTERM"; else
        not_ok "server exited $rc on SIGTERM, expected $want"
        server_log
    fi
}

# req METHOD PATH [BODY]: prints the HTTP status; the body is in $RESP.
# A BODY starting with @ names a file (curl's rule).
req() {
    local method="$1" path="$2"
    if [ $# -ge 3 ]; then
        curl -s -o "$RESP" -w '%{http_code}' -X "$method" -H 'Content-Type: application/json' \
            --data-binary "$3" "$BASE$path"
    else
        curl -s -o "$RESP" -w '%{http_code}' -X "$method" "$BASE$path"
    fi
}

# expect_status WHAT CODE METHOD PATH [BODY]: one check of the status; the
# body stays in $RESP for further checks.
expect_status() {
    local what="$1" code="$2"
    shift 2
    local got
    got="$(req "$@")"
    if [ "$got" == "$code" ]; then ok "$what"; else
        not_ok "$what: status $got, expected $code"
        echo "  body: $(head -c 500 "$RESP")"
    fi
}

# expect_json WHAT JQ_FILTER EXPECTED: checks jq -r FILTER of $RESP.
expect_json() {
    expect_eq "$1" "$3" "$(jq -r "$2" "$RESP" 2>&1)"
}

# server_alive WHAT: /api/version still answers (after a bad request).
server_alive() {
    if [ "$(req GET /api/version)" == "200" ]; then ok "$1: server still serving"; else
        not_ok "$1: server stopped answering"
        server_log
    fi
}
