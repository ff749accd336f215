#!/usr/bin/env bash
# The commands that talk to a running server (ps, list, show, load, stop,
# pull, rm, run --host): their usage errors, what they say when no server
# answers, and each one's happy path against a real `nstack serve` with the
# demo model and stories260K. Greedy `run --host` prints what the local run
# prints.
. "$(dirname "$0")/../integration/lib_server.bash"
need_shared models/stories260K.gguf
MODEL="$SHARED/models/stories260K.gguf"
PROMPT="Once upon a time"
# local runs stay local whatever the caller's environment says
local_nstack() { env -u NSTACK_HOST "$NSTACK" "$@"; }

# ---- usage ----
for cmd in ps list ls show load stop pull rm; do
    out="$(local_nstack "$cmd" --help)"; rc=$?
    if [ "$rc" -eq 0 ] && [[ "$out" == usage:* ]] && [[ "$out" == *--host* ]]; then ok "$cmd --help"; else
        not_ok "$cmd --help: exit $rc: $out"; fi
done
expect_fail "show needs a model" 2 "which model?" -- local_nstack show
expect_fail "load needs a model" 2 "which model?" -- local_nstack load
expect_fail "stop needs a model or --all" 2 "which model?" -- local_nstack stop
expect_fail "stop: not a model and --all" 2 "not both" -- local_nstack stop demo --all
expect_fail "pull needs a URL" 2 "what to pull?" -- local_nstack pull
expect_fail "rm needs a name" 2 "which model?" -- local_nstack rm
expect_fail "ps takes no argument" 2 "unexpected argument 'x'" -- local_nstack ps x
expect_fail "list: unknown option" 2 "unknown option '--bogus'" -- local_nstack list --bogus
expect_fail "show: one view" 2 "choose one of the views" -- local_nstack show demo --json --template
expect_fail "load: bad --keep-alive" 2 "invalid value for --keep-alive" -- local_nstack load demo --keep-alive soon
expect_fail "load: bad --ctx" 2 "invalid value for --ctx" -- local_nstack load demo --ctx 0
expect_fail "--host needs a value" 2 "needs a value" -- local_nstack ps --host
expect_fail "--host: bad scheme" 2 "unsupported scheme 'ftp'" -- local_nstack ps --host ftp://localhost
expect_fail "--host: bad port" 2 "invalid port '99999'" -- local_nstack list --host localhost:99999
expect_fail "NSTACK_HOST: bad port" 2 "invalid port 'x'" -- env NSTACK_HOST=localhost:x "$NSTACK" ps
expect_fail "run --host: a local-only option" 2 "--logit-bias is not available on a server" -- \
    local_nstack run --host 127.0.0.1:1 "$MODEL" hi --logit-bias 1=-inf
expect_fail "run --host: bad host" 2 "unsupported scheme" -- local_nstack run --host ftp://x "$MODEL" hi

# ---- no server ----
# port 1 (tcpmux) has no listener on a normal machine: the connection is refused
NOBODY="127.0.0.1:1"
UNREACHABLE="cannot reach the server at http://127.0.0.1:1: connection refused (is \`nstack serve\` running?)"
expect_fail "ps: no server" 1 "$UNREACHABLE" -- local_nstack ps --host "$NOBODY"
expect_fail "list: no server" 1 "$UNREACHABLE" -- local_nstack list --host "$NOBODY"
expect_fail "show: no server" 1 "$UNREACHABLE" -- local_nstack show demo --host "$NOBODY"
expect_fail "load: no server" 1 "$UNREACHABLE" -- local_nstack load demo --host "$NOBODY"
expect_fail "stop: no server" 1 "$UNREACHABLE" -- local_nstack stop demo --host "$NOBODY"
expect_fail "stop --all: no server" 1 "$UNREACHABLE" -- local_nstack stop --all --host "$NOBODY"
expect_fail "pull: no server" 1 "$UNREACHABLE" -- local_nstack pull file:///x.gguf --host "$NOBODY"
expect_fail "rm: no server" 1 "$UNREACHABLE" -- local_nstack rm a b --host "$NOBODY"
expect_fail "run --host: no server" 1 "$UNREACHABLE" -- local_nstack run --host "$NOBODY" demo hi
expect_fail "NSTACK_HOST is the default" 1 "$UNREACHABLE" -- env NSTACK_HOST="http://$NOBODY" "$NSTACK" list
expect_fail "NSTACK_HOST makes run a client" 1 "$UNREACHABLE" -- \
    env NSTACK_HOST="$NOBODY" "$NSTACK" run "$MODEL" hi -n 1
expect_fail "--host=URL form" 1 "cannot reach the server at http://[::1]:1:" -- local_nstack ps "--host=[::1]:1"

# ---- a real server ----
start_server --keep-alive 5m || exit 1
H="127.0.0.1:$PORT"

# ps with nothing loaded: the header alone
out="$(local_nstack ps --host "$H")"
expect_eq "ps: empty" "NAME    ID    SIZE    PROCESSOR    UNTIL" "$out"

out="$(local_nstack list --host "$H")"; rc=$?
expect_eq "list: exit 0" 0 "$rc"
if [[ "$(head -n 1 <<<"$out")" == "NAME"*"ID"*"SIZE"*"MODIFIED" ]]; then ok "list: header"; else not_ok "list: header: $out"; fi
if grep -Eq '^demo:latest +[0-9a-f]{12} +[0-9.]+ [KMG]?B +(Less than a second|[0-9]+ seconds|About a minute|[0-9]+ minutes) ago$' <<<"$out"; then
    ok "list: the demo model's row"; else not_ok "list: no demo row in: $out"; fi

out="$(local_nstack show demo --host "$H")"; rc=$?
expect_eq "show: exit 0" 0 "$rc"
if grep -Eq '^    architecture +llama$' <<<"$out" && grep -q '^  Model$' <<<"$out"; then ok "show: the Model section"; else
    not_ok "show: no architecture row in: $out"; fi
local_nstack show demo --json --host "$H" >"$TMP/show.json"
expect_eq "show --json: the server's JSON" "llama" "$(jq -r '.model_info."general.architecture"' "$TMP/show.json")"
for view in --modelfile --template --parameters --license --system; do
    local_nstack show demo "$view" --host "$H" >/dev/null; rc=$?
    expect_eq "show $view: exit 0" 0 "$rc"
done
expect_fail "show: unknown model" 1 "not found" -- local_nstack show no-such-model --host "$H"

out="$(local_nstack load demo --keep-alive 10m --host "$H")"; rc=$?
if [ "$rc" -eq 0 ] && [[ "$out" == "loaded demo:latest in "*s ]]; then ok "load demo"; else not_ok "load demo: exit $rc: $out"; fi
out="$(local_nstack ps --host "$H")"
if grep -Eq '^demo:latest +[0-9a-f]{12} +[0-9.]+ [KMG]?B +100% CPU +(9|10) minutes from now$' <<<"$out"; then
    ok "ps: demo loaded for 10 minutes"; else not_ok "ps after load: $out"; fi
expect_fail "load: unknown model" 1 "not found" -- local_nstack load no-such-model --host "$H"

# waits (briefly) until ps no longer lists $1
wait_unloaded() {
    local i
    for ((i = 0; i < 100; i++)); do
        local_nstack ps --host "$H" | grep -q "^$1 " || return 0
        sleep 0.05
    done
    return 1
}
out="$(local_nstack stop demo --host "$H" 2>&1)"; rc=$?
expect_eq "stop demo: exit 0, silent" "0:" "$rc:$out"
if wait_unloaded demo:latest; then ok "ps: demo gone after stop"; else not_ok "demo still loaded after stop"; fi
expect_fail "stop: unknown model" 1 "couldn't find model \"no-such-model\" to stop" -- \
    local_nstack stop no-such-model --host "$H"

local_nstack load demo --host "$H" >/dev/null && local_nstack load "$MODEL" --ctx 256 --host "$H" >/dev/null
expect_eq "ps: two models" 3 "$(local_nstack ps --host "$H" | wc -l)"
local_nstack stop --all --host "$H"; rc=$?
expect_eq "stop --all: exit 0" 0 "$rc"
if wait_unloaded demo:latest && wait_unloaded "$MODEL"; then ok "ps: empty after stop --all"; else
    not_ok "models still loaded after stop --all: $(local_nstack ps --host "$H")"; fi

# ---- pull and rm ----
local_nstack pull "file://$MODEL" stories --host "$H" 2>"$TMP/pull.err" >"$TMP/pull.out"; rc=$?
expect_eq "pull: exit 0" 0 "$rc"
if grep -q '^success$' "$TMP/pull.err" && grep -Eq '^(pulling [0-9a-f]{12}|downloading): 100% \(' "$TMP/pull.err"; then
    ok "pull: percentage lines and success on stderr"; else not_ok "pull stderr: $(cat "$TMP/pull.err")"; fi
expect_eq "pull: nothing on stdout" "" "$(cat "$TMP/pull.out")"
if local_nstack list --host "$H" | grep -q '^stories:latest '; then ok "list: the pulled model"; else
    not_ok "list lacks stories:latest: $(local_nstack list --host "$H")"; fi
local_nstack pull stories2 --url "file://$MODEL" --host "$H" 2>/dev/null; rc=$?
expect_eq "pull NAME --url URL: exit 0" 0 "$rc"
expect_fail "pull: a missing file" 1 "nstack: " -- local_nstack pull "file://$TMP/none.gguf" --host "$H"
echo "not a model" >"$TMP/bad.gguf"
expect_fail "pull: not a GGUF file" 1 "GGUF" -- local_nstack pull "file://$TMP/bad.gguf" bad --host "$H"

# ---- run --host ----
expected="$(local_nstack run "$MODEL" "$PROMPT" --temp 0 -n 20)"
if [ -n "$expected" ]; then ok "local greedy run prints text"; else not_ok "local greedy run printed nothing"; fi
expect_eq "run --host (path) = local run" "$expected" \
    "$(local_nstack run --host "$H" "$MODEL" "$PROMPT" --temp 0 -n 20)"
expect_eq "run --host (pulled name) = local run" "$expected" \
    "$(local_nstack run --host "$H" stories "$PROMPT" --temp 0 -n 20)"
expect_eq "NSTACK_HOST run = local run" "$expected" \
    "$(NSTACK_HOST="http://$H" "$NSTACK" run "$MODEL" "$PROMPT" --temp 0 -n 20)"
expect_eq "run --host, prompt on stdin = local run" "$expected" \
    "$(echo "$PROMPT" | local_nstack run --host "$H" "$MODEL" --temp 0 -n 20)"
# a relative path is the caller's, not the server's
expect_eq "run --host with a relative path" "$expected" \
    "$(cd "$SHARED/models" && local_nstack run --host "$H" ./stories260K.gguf "$PROMPT" --temp 0 -n 20)"
# sampling options travel as Ollama options: the same seed gives the same text
a="$(local_nstack run "$MODEL" "$PROMPT" -n 30 --temp 1 --top-k 20 --top-p 0.9 --repeat-penalty 1.2 --seed 7)"
b="$(local_nstack run --host "$H" "$MODEL" "$PROMPT" -n 30 --temp 1 --top-k 20 --top-p 0.9 --repeat-penalty 1.2 --seed 7)"
expect_eq "seeded sampling on the server = local" "$a" "$b"
# a stop sequence: cut where the local run cuts it
word="$(awk '{print $3}' <<<"$expected")"
a="$(local_nstack run "$MODEL" "$PROMPT" --temp 0 -n 20 --stop "$word")"
b="$(local_nstack run --host "$H" "$MODEL" "$PROMPT" --temp 0 -n 20 --stop "$word")"
expect_eq "--stop on the server = local" "$a" "$b"
if [ "${#a}" -lt "${#expected}" ]; then ok "--stop cut the text"; else not_ok "--stop '$word' did not cut: $a"; fi
# --verbose: the timing block from the server's numbers, on stderr
local_nstack run --host "$H" "$MODEL" "$PROMPT" --temp 0 -n 8 --verbose >"$TMP/out" 2>"$TMP/err"
for field in "total duration:" "load duration:" "prompt eval count:    5 token(s)" "prompt eval duration:" \
             "eval count:           8 token(s)" "eval duration:" "eval rate:"; do
    if grep -qF "$field" "$TMP/err"; then ok "run --host --verbose has '$field'"; else
        not_ok "run --host --verbose lacks '$field': $(cat "$TMP/err")"; fi
done
expect_eq "run --host --verbose: stdout is the text" "$(local_nstack run "$MODEL" "$PROMPT" --temp 0 -n 8)" "$(cat "$TMP/out")"
expect_fail "run --host: unknown model" 1 "not found" -- local_nstack run --host "$H" no-such-model hi

# the chat: the conversation goes to /api/chat; /bye ends it
out="$(printf 'Once upon a time\n/set parameter num_predict 5\nThere was\n/bye\n' |
    local_nstack run --host "$H" demo --chat --temp 0 -n 10)"; rc=$?
expect_eq "run --host --chat: exit 0" 0 "$rc"
if grep -q "^Set parameter 'num_predict' to '5'$" <<<"$out"; then ok "chat: /set parameter"; else not_ok "chat output: $out"; fi
expect_fail "run --host --chat: unknown model" 1 "not found" -- \
    sh -c 'echo hi | "$0" run --host "$1" no-such-model --chat' "$NSTACK" "$H"

# rm, last: the pulled models go, an unknown name is an error
out="$(local_nstack rm stories stories2 --host "$H")"; rc=$?
expect_eq "rm: exit 0" 0 "$rc"
expect_eq "rm: Ollama's words" "deleted 'stories'
deleted 'stories2'" "$out"
if local_nstack list --host "$H" | grep -q '^stories'; then not_ok "list still has the removed models"; else
    ok "list: removed models gone"; fi
expect_fail "rm: unknown model" 1 "not found" -- local_nstack rm stories --host "$H"

stop_server
finish
