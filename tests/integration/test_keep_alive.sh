#!/usr/bin/env bash
# The keep_alive lifecycle, measured: a ~160 MB model (made here with
# `nstack mkmodel`, so the change in resident memory is clear) is loaded by a
# generation, then unloaded by keep_alive 0 and, loaded again, by the expiry
# of keep_alive "1s". Each time /api/ps must empty and the server's resident
# memory (from /proc/PID/smaps) must fall back near its value before the load.
. "$(dirname "$0")/lib_server.bash"

MODEL="$TMP/keepalive-160mb.gguf"
# f16, dim 1024, 6 layers: ~160 MB of weights. A training context of 256
# keeps the KV cache (256 tokens x 4 slots x 6 layers x 2 x 1024 x 2 bytes =
# 24 MiB) small next to the weights.
if ! "$NSTACK" mkmodel "$MODEL" --dim 1024 --layers 6 --type f16 --ctx 256 >/dev/null; then
    not_ok "mkmodel the test model"
    finish
    exit 1
fi
model_kib=$(($(stat -c %s "$MODEL") / 1024))

# Under AddressSanitizer freed memory waits in a quarantine (256 MB by
# default) before it goes back to the system; with none, the KV cache's
# pages are returned at unload as in a normal build. A no-op elsewhere.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=0"

# The server's resident memory in KiB: VmRSS, less what sits in mappings of
# 1 TiB or more. Only AddressSanitizer's shadow is that big, and it fills
# when munmap of the weights clears their shadow (1/8 of the model); that is
# the sanitizer's memory, not the server's. In a normal build this is VmRSS.
rss_kib() {
    awk '$1 == "Size:" { size = $2 } $1 == "Rss:" { all += $2; if (size >= 1073741824) shadow += $2 }
         END { print all - shadow }' "/proc/$SERVER_PID/smaps"
}

# wait_ps_empty: polls /api/ps (every 50 ms, for at most 30 s) until no model
# is loaded; the unload happens on the runtime's own thread once the model is
# idle (keep_alive 0) or its keep_alive has passed.
wait_ps_empty() {
    local i
    for ((i = 0; i < 600; i++)); do
        [ "$(req GET /api/ps)" == 200 ] && [ "$(jq '.models | length' "$RESP")" == 0 ] && return 0
        sleep 0.05
    done
    return 1
}

generate() { # generate KEEP_ALIVE_JSON: one greedy token on the model
    expect_status "generate, keep_alive $1" 200 POST /api/generate \
        "{\"model\":\"$MODEL\",\"prompt\":\"Hello\",\"stream\":false,\"keep_alive\":$1,\"options\":{\"temperature\":0,\"num_predict\":1}}"
}

# The margin: after an unload the process still holds what does not belong
# to the model and is not given back at once: glibc's per-thread malloc
# arenas used by the runner and connection threads, the log and HTTP
# buffers, libraries' pages touched while loading (measured: ~1 MiB in a
# release build, ~2 MiB under ASan). 16 MiB covers that with room; the
# weights are ~150 MiB, so keeping them mapped after an unload would exceed
# it ten times over, and keeping the KV cache (24 MiB) would too.
margin_kib=$((16 * 1024))

start_server --no-demo --threads 1 || exit 1
# Serve one request first so the baseline includes the HTTP layer's own
# warm-up (a connection thread, curl's first request buffers).
req GET /api/ps >/dev/null
base=$(rss_kib)

generate '"5m"'
expect_status "ps after load" 200 GET /api/ps
expect_json "ps lists the model" '.models | length' 1
loaded=$(rss_kib)

generate 0
if wait_ps_empty; then ok "keep_alive 0: ps is empty"; else not_ok "keep_alive 0: ps still lists $(jq -c '[.models[].name]' "$RESP")"; fi
after_zero=$(rss_kib)

generate '"1s"'
reloaded=$(rss_kib)
if wait_ps_empty; then ok "keep_alive 1s: ps is empty after the expiry"; else not_ok "keep_alive 1s: ps still lists $(jq -c '[.models[].name]' "$RESP")"; fi
after_expiry=$(rss_kib)

echo "model file:           $model_kib KiB"
echo "RSS before load:      $base KiB"
echo "RSS loaded:           $loaded KiB (+$((loaded - base)))"
echo "after keep_alive 0:   $after_zero KiB (+$((after_zero - base)))"
echo "loaded again:         $reloaded KiB (+$((reloaded - base)))"
echo "after 1s expiry:      $after_expiry KiB (+$((after_expiry - base)))"
echo "margin:               $margin_kib KiB"

# The measurement means something only if loading showed: a generation
# reads every weight, so the mapped file is resident.
if [ $((loaded - base)) -ge $((model_kib * 8 / 10)) ]; then ok "loading adds at least 80% of the model to RSS"; else
    not_ok "loading added only $((loaded - base)) KiB for a $model_kib KiB model"; fi
if [ $((after_zero - base)) -le "$margin_kib" ]; then ok "RSS falls back after keep_alive 0"; else
    not_ok "RSS after keep_alive 0 is $((after_zero - base)) KiB above the pre-load value"; fi
if [ $((after_expiry - base)) -le "$margin_kib" ]; then ok "RSS falls back after the keep_alive expiry"; else
    not_ok "RSS after the keep_alive expiry is $((after_expiry - base)) KiB above the pre-load value"; fi

stop_server
finish
