#!/usr/bin/env bash
# 64 concurrent streaming clients on one model (stories260K, greedy, 32
# tokens), half on /api/generate (NDJSON) and half on /v1/chat/completions
# (SSE): every stream complete and equal to the text one client alone gets.
# Then clients that hang up mid-stream: the server keeps serving, no job is
# left behind, and it exits 0 on SIGTERM. In the ASan build, LeakSanitizer
# runs at that exit, so a leak under load fails the exit-code check.
. "$(dirname "$0")/lib_server.bash"
need_shared models/stories260K.gguf
if ! command -v node >/dev/null 2>&1; then
    echo "SKIP: node is not installed"
    exit 77
fi
STORIES="$(cd "$SHARED/models" && pwd)/stories260K.gguf"
driver="$(dirname "$0")/js/stream_load.mjs"

# One thread: stories260K is too small for two to help, and on a busy
# 2-core machine the per-layer barriers of two threads only slow it down.
export NSTACK_LOG=debug # the runner logs each job's end (checked below)
start_server --no-demo --threads 1 || exit 1

if node "$driver" "$BASE" "$STORIES" check 64 32; then ok "64 concurrent streams, each complete and equal to its single-client text"
else not_ok "64 concurrent streams"; server_log; fi

if node "$driver" "$BASE" "$STORIES" disconnect 16; then ok "16 clients hang up mid-stream; the server still answers the same"
else not_ok "clients hanging up mid-stream"; server_log; fi

# No job is left behind: with keep_alive 0 the model unloads once idle, so
# /api/ps can only empty when every job has ended.
expect_status "generate with keep_alive 0" 200 POST /api/generate \
    "{\"model\":\"$STORIES\",\"prompt\":\"Hi\",\"stream\":false,\"keep_alive\":0,\"options\":{\"num_predict\":1}}"
for ((i = 0; i < 200; i++)); do
    [ "$(req GET /api/ps)" == 200 ] && [ "$(jq '.models | length' "$RESP")" == 0 ] && break
    sleep 0.05
done
expect_json "ps is empty once the model is idle" '.models | length' 0
# The runner's debug log has one "generation done" line per job, with its
# finish reason: every job that started ended, and hanging up cancelled the
# generations (each could run to the end of the context otherwise; how many
# were cancelled before they ended on their own depends on timing, so the
# check is only that the cancel path ran).
started="$(grep -c 'msg="generation started"' "$SERVER_LOG")"
ended="$(grep -c 'msg="generation done"' "$SERVER_LOG")"
cancelled="$(grep 'msg="generation done"' "$SERVER_LOG" | grep -c 'finish=cancelled')"
echo "jobs: $started started, $ended ended, $cancelled cancelled"
expect_eq "every job that started ended" "$started" "$ended"
if [ "$cancelled" -ge 1 ]; then ok "clients hanging up cancel their generations"; else
    not_ok "no generation was cancelled by a client hanging up"; fi

stop_server
finish
