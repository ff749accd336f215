#!/usr/bin/env bash
# Issue #9, detection and the Ollama-API integrations, with real processes
# on loopback: our server; a stand-in `ollama` (a copy of the nstack binary
# named ollama, so /proc says "ollama" and it speaks the Ollama API); a
# stand-in `llama-server` (a python3 script serving /health, /v1/models and
# /props). `nstack ai detect` must find each with its pid and port and
# confirm it through its API; `ai models`, `ai unload`, `ai preload`,
# `vram clear` and `vram status` then work against our server. Commands
# that change state are pointed at our own server with --runtime so other
# servers on this host (other tests running in parallel) are left alone.
. "$(dirname "$0")/lib_server.bash"

PY="$(command -v python3 || true)"
if [ -z "$PY" ]; then
    echo "SKIP: python3 is not installed (needed for the llama-server stand-in)"
    exit 77
fi
PY="$(realpath "$PY")"

OTHER_PIDS=()
cleanup_detect_test() {
    for p in "${OTHER_PIDS[@]}"; do
        [ -n "$p" ] && kill -KILL "$p" 2>/dev/null && wait "$p" 2>/dev/null
    done
    _server_cleanup
}
trap cleanup_detect_test EXIT

cli() { env -u NSTACK_HOST "$NSTACK" "$@"; }

# rt_field PID JQ_EXPR: from $TMP/detect.json, the runtime with that pid
rt_field() { jq -r --argjson pid "$1" ".runtimes[] | select(.pid == \$pid) | $2" "$TMP/detect.json"; }

mkdir -p "$TMP/bin"

# ---- the stand-in ollama: our binary under another name ----
cp "$NSTACK" "$TMP/bin/ollama"
REAL_NSTACK="$NSTACK"
NSTACK="$TMP/bin/ollama" SERVER_MODELS="$TMP/models-ollama" SERVER_DB="$TMP/ollama.db" \
    SERVER_MODE_FILE="$TMP/mode-ollama.json" start_server --no-demo --sample-interval off || exit 1
NSTACK="$REAL_NSTACK"
OLLAMA_PID="$SERVER_PID" OLLAMA_PORT="$PORT"
OTHER_PIDS+=("$OLLAMA_PID")
SERVER_PID=""

# ---- the stand-in llama-server: comm is the script's name when the kernel
# runs it through its shebang (an absolute interpreter path, not env) ----
cat >"$TMP/bin/llama-server" <<EOF
#!$PY
import json, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ANSWERS = {
    "/health": {"status": "ok"},
    "/v1/models": {"object": "list", "data": [{"id": "stand-in.gguf", "object": "model", "owned_by": "llamacpp"}]},
    "/props": {"build_info": "b0-standin", "total_slots": 1},
}

class H(BaseHTTPRequestHandler):
    def do_GET(self):
        body = ANSWERS.get(self.path)
        code = 200 if body is not None else 404
        data = json.dumps(body if body is not None else {"error": {"code": 404, "message": "File Not Found"}}).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def log_message(self, *args):
        pass

srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
with open(sys.argv[2], "w") as f:
    f.write(str(srv.server_address[1]))
srv.serve_forever()
EOF
chmod +x "$TMP/bin/llama-server"
"$TMP/bin/llama-server" --port-file "$TMP/llama.port" &
LLAMA_PID=$!
OTHER_PIDS+=("$LLAMA_PID")
for ((i = 0; i < 200; i++)); do
    [ -s "$TMP/llama.port" ] && break
    sleep 0.05
done
LLAMA_PORT="$(cat "$TMP/llama.port" 2>/dev/null)"
if [ -z "$LLAMA_PORT" ]; then
    not_ok "the llama-server stand-in starts"
    exit 1
fi

# ---- our server, last: stop_server checks its clean exit ----
start_server --keep-alive 5m --sample-interval off || exit 1
NS_PID="$SERVER_PID" NS_BASE="$BASE" NS_PORT="$PORT"
NS_VERSION="$(curl -s "$BASE/api/version" | jq -r .version)"

# ---- 1. ai detect --json ----
cli ai detect --json >"$TMP/detect.json" 2>"$TMP/err"
expect_eq "ai detect --json exits 0" 0 "$?"
expect_eq "nothing on stderr" "" "$(cat "$TMP/err")"
expect_eq "nstack: kind" nstack "$(rt_field "$NS_PID" .kind)"
expect_eq "nstack: its port" "$NS_PORT" "$(rt_field "$NS_PID" '.ports | map(tostring) | join(",")')"
expect_eq "nstack: confirmed" true "$(rt_field "$NS_PID" .confirmed)"
expect_eq "nstack: version" "$NS_VERSION" "$(rt_field "$NS_PID" .version)"
expect_eq "nstack: api" "$NS_BASE" "$(rt_field "$NS_PID" .api)"
expect_eq "nstack: user" "$(id -un)" "$(rt_field "$NS_PID" .user)"
expect_eq "nstack: rss known" true "$(rt_field "$NS_PID" '.rss > 0')"
expect_eq "nstack: why" true "$(rt_field "$NS_PID" '.why | test("name nstack.*/api/version")')"
expect_eq "ollama stand-in: kind" ollama "$(rt_field "$OLLAMA_PID" .kind)"
expect_eq "ollama stand-in: port" "$OLLAMA_PORT" "$(rt_field "$OLLAMA_PID" '.ports | map(tostring) | join(",")')"
expect_eq "ollama stand-in: confirmed" true "$(rt_field "$OLLAMA_PID" .confirmed)"
expect_eq "ollama stand-in: confirmed by /api/version" true \
    "$(rt_field "$OLLAMA_PID" '.why | test("port [0-9]+ /api/version")')"
expect_eq "ollama stand-in: no models" 0 "$(rt_field "$OLLAMA_PID" '.models | length')"
expect_eq "llama-server stand-in: kind" llama.cpp "$(rt_field "$LLAMA_PID" .kind)"
expect_eq "llama-server stand-in: port" "$LLAMA_PORT" "$(rt_field "$LLAMA_PID" '.ports | map(tostring) | join(",")')"
expect_eq "llama-server stand-in: confirmed" true "$(rt_field "$LLAMA_PID" .confirmed)"
expect_eq "llama-server stand-in: its model" stand-in.gguf "$(rt_field "$LLAMA_PID" '.models[0].name')"
expect_eq "llama-server stand-in: build" b0-standin "$(rt_field "$LLAMA_PID" .version)"
expect_eq "ai detect leaves itself out" 0 \
    "$(jq --argjson me "$$" '[.runtimes[] | select(.pid == $me)] | length' "$TMP/detect.json")"

out="$(cli ai detect)"
if grep -q "^KIND  *PID  *USER  *PORTS  *CONFIRMED  *VERSION  *RSS  *VRAM  *WHY" <<<"$out" &&
    grep -Eq "^nstack +$NS_PID +.* $NS_PORT +yes +$NS_VERSION " <<<"$out"; then
    ok "ai detect: the table"
else
    not_ok "ai detect: the table"
    echo "$out"
fi

cli ai detect --no-probe --json >"$TMP/detect.json"
expect_eq "--no-probe: found, not confirmed" "nstack false" \
    "$(rt_field "$NS_PID" '.kind + " " + (.confirmed | tostring)')"
expect_eq "--no-probe: llama-server still found by name" llama.cpp "$(rt_field "$LLAMA_PID" .kind)"
expect_fail "ai detect: unknown option" 2 "unknown option '--frobnicate'" -- cli ai detect --frobnicate

# ---- 2. ai models after a generate ----
expect_status "generate on demo" 200 POST /api/generate \
    '{"model":"demo","prompt":"Hello","stream":false,"options":{"temperature":0,"num_predict":1}}'
cli ai models --json >"$TMP/models.json"
expect_eq "ai models --json exits 0" 0 "$?"
expect_eq "ai models lists demo in our server" true \
    "$(jq --argjson pid "$NS_PID" '[.models[] | select(.pid == $pid and (.name | startswith("demo")))] | length == 1' \
        "$TMP/models.json")"
expect_eq "ai models: its size" true \
    "$(jq --argjson pid "$NS_PID" '.models[] | select(.pid == $pid) | .size > 0' "$TMP/models.json")"
expect_eq "ai models: the runtime" nstack \
    "$(jq -r --argjson pid "$NS_PID" '.models[] | select(.pid == $pid) | .runtime' "$TMP/models.json")"
out="$(cli ai models)"
if grep -Eq "^nstack +$NS_BASE +demo" <<<"$out"; then ok "ai models: the table"; else
    not_ok "ai models: the table"
    echo "$out"
fi

# ---- 3. unload and preload ----
out="$(cli ai unload demo --runtime "$NS_BASE")"
expect_eq "ai unload exits 0" 0 "$?"
expect_eq "ai unload says so" true "$(grep -q "unloaded demo.* from nstack\|unloaded demo.* at $NS_BASE" <<<"$out" && echo true)"
expect_status "GET /api/ps" 200 GET /api/ps
expect_json "nothing loaded after ai unload" '.models | length' 0
expect_fail "ai unload of a model no runtime has" 1 "no runtime has demo loaded (asked: $NS_BASE)" -- \
    cli ai unload demo --runtime "$NS_BASE"
expect_fail "ai unload without MODEL" 2 "MODEL" -- cli ai unload
expect_fail "ai preload without --runtime" 2 "--runtime" -- cli ai preload demo

cli ai preload demo --runtime "$NS_PID" --json >"$TMP/preload.json"
expect_eq "ai preload --runtime PID exits 0" 0 "$?"
expect_eq "ai preload names the api" "$NS_BASE" "$(jq -r .loaded.api "$TMP/preload.json")"
expect_status "GET /api/ps" 200 GET /api/ps
expect_json "demo loaded after ai preload" '.models[0].name | startswith("demo")' true
expect_fail "ai preload of a model the runtime lacks" 1 "cannot load nosuch" -- \
    cli ai preload nosuch --runtime "$NS_BASE"
expect_fail "ai preload into a pid that is no runtime" 1 "is not an AI runtime" -- \
    cli ai preload demo --runtime "$$"

# ---- 4. vram clear ----
cli vram clear --runtime "$NS_BASE" --dry-run --json >"$TMP/clear.json"
expect_eq "vram clear --dry-run exits 0" 0 "$?"
expect_eq "dry run: would free one model" 1 "$(jq .freed.models "$TMP/clear.json")"
expect_status "GET /api/ps" 200 GET /api/ps
expect_json "dry run unloads nothing" '.models | length' 1

cli vram clear --runtime "$NS_BASE" --json >"$TMP/clear.json"
expect_eq "vram clear exits 0" 0 "$?"
expect_eq "vram clear: not a dry run" false "$(jq .dry_run "$TMP/clear.json")"
expect_eq "vram clear: unloaded demo" true "$(jq '.unloaded[0].name | startswith("demo")' "$TMP/clear.json")"
expect_eq "vram clear: freed one model" 1 "$(jq .freed.models "$TMP/clear.json")"
expect_eq "vram clear: freed its RAM" true "$(jq '.freed.ram > 0' "$TMP/clear.json")"
expect_eq "vram clear: no errors" 0 "$(jq '.errors | length' "$TMP/clear.json")"
expect_status "GET /api/ps" 200 GET /api/ps
expect_json "nothing loaded after vram clear" '.models | length' 0
out="$(cli vram clear --runtime "$NS_BASE")"
expect_eq "vram clear again: the summary" "freed 0 models, 0 MiB RAM, 0 MiB VRAM" "$(tail -n 1 <<<"$out")"

# ---- 5. vram status, ai status ----
cli vram status --json >"$TMP/vram.json"
expect_eq "vram status --json exits 0" 0 "$?"
expect_eq "vram status: gpus is a list" array "$(jq -r '.gpus | type' "$TMP/vram.json")"
expect_eq "vram status: our server among the runtimes" nstack \
    "$(jq -r --argjson pid "$NS_PID" '.runtimes[] | select(.pid == $pid) | .kind' "$TMP/vram.json")"
if [ "$(jq '.gpus | length' "$TMP/vram.json")" == 0 ]; then
    out="$(cli vram status)"
    if grep -q "No GPUs found" <<<"$out" && grep -Eq "^nstack +$NS_PID " <<<"$out"; then
        ok "vram status without GPUs: says so, shows the runtimes' RAM"
    else
        not_ok "vram status without GPUs"
        echo "$out"
    fi
fi
cli ai status --json >"$TMP/status.json"
expect_eq "ai status --json exits 0" 0 "$?"
expect_eq "ai status: RAM" true "$(jq '.ram.total > 0 and .ram.available > 0' "$TMP/status.json")"
expect_eq "ai status: CPU cores" true "$(jq '.cpu.cores > 0' "$TMP/status.json")"
expect_eq "ai status: our server confirmed" true \
    "$(jq --argjson pid "$NS_PID" '.runtimes[] | select(.pid == $pid) | .confirmed' "$TMP/status.json")"
out="$(cli ai status)"
if grep -q "^RAM " <<<"$out" && grep -Eq "^nstack +$NS_PID +$NS_BASE +yes" <<<"$out"; then ok "ai status: the view"; else
    not_ok "ai status: the view"
    echo "$out"
fi

# ---- 6. a runtime that goes away is gone from the next scan ----
kill -KILL "$LLAMA_PID" 2>/dev/null
wait "$LLAMA_PID" 2>/dev/null
cli ai detect --json >"$TMP/detect.json"
expect_eq "a killed runtime is no longer listed" "" "$(rt_field "$LLAMA_PID" .kind)"

stop_server
finish
