#!/usr/bin/env bash
# Batching, prefix reuse and snapshots on `nstack serve` (issue #6), with the
# 1.1B Q4_0 model of bench/table.sh. Prints markdown tables:
#   1. aggregate decode tok/s with N concurrent streams (POST /api/generate,
#      raw, greedy, NUM_PREDICT tokens each, one warm-up round first);
#   2. time to first token of a ~1000-token prompt sharing its prefix with a
#      cached one, against a cold prompt of the same length;
#   3. snapshot save and restore MB/s of a ~2000-token session (skipped with
#      "snapshot API not available" when the server has no /api/sessions).
#
#   bench/batch.sh [STREAMS...]     (default: 1 4 8 16)
#
# Env: BUILD_DIR (default build), THREADS (the model's threads, default 2),
# PARALLEL (--num-parallel, default 16), CTX (--ctx per slot, default 2048),
# NUM_PREDICT (default 64), ROUNDS (decode rounds, interleaved, the median
# reported; default 3), SEED (default 42), PREFIX_TOKENS (default 1000),
# SNAPSHOT_TOKENS (default 1900: the session must stay under CTX), PARTS
# (default "decode prefix snapshot").
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

streams=("$@")
[ "${#streams[@]}" -gt 0 ] || streams=(1 4 8 16)
build="${BUILD_DIR:-build}"
threads="${THREADS:-2}"
parallel="${PARALLEL:-16}"
ctx="${CTX:-2048}"
parts="${PARTS:-decode prefix snapshot}"
export NUM_PREDICT="${NUM_PREDICT:-64}" SEED="${SEED:-42}"
export PREFIX_TOKENS="${PREFIX_TOKENS:-1000}" SNAPSHOT_TOKENS="${SNAPSHOT_TOKENS:-1900}"
for n in "${streams[@]}"; do
    if ! [[ "$n" =~ ^[1-9][0-9]*$ ]] || [ "$n" -gt "$parallel" ]; then
        echo "bench/batch.sh: stream count '$n' is not a number from 1 to PARALLEL ($parallel)" >&2
        exit 2
    fi
done
command -v node >/dev/null || { echo "bench/batch.sh: needs node (20 or later)" >&2; exit 1; }

echo "== release build in $build" >&2
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j"$(nproc)" --target nstack >/dev/null
nstack="$build/nstack"

# The model of bench/table.sh (same shape, type and seed), reused when present.
model="bench/models/llama-1.1b-q4_0.gguf"
if [ ! -f "$model" ]; then
    echo "== making $model" >&2
    mkdir -p bench/models
    $nstack mkmodel "$model" --type q4_0 \
        --arch llama --dim 2048 --layers 16 --heads 32 --kv-heads 8 --ff 8192 --vocab 32000 --seed 1 >/dev/null
fi
model="$(realpath "$model")"

server_scratch # sets tmp; stops the server in server_pid on exit

echo "== starting the server ($parallel slots of $ctx tokens, $threads threads)" >&2
# Debug logging adds two lines per generation; they carry each request's
# cached prompt tokens, which the prefix table reads by request id.
serve_args=(serve --host 127.0.0.1:0 --no-demo --models "$tmp/models" --keep-alive -1 --no-mmap
            --num-parallel "$parallel" --ctx "$ctx" --threads "$threads" --preload "$model"
            --snapshots "$tmp/snapshots")
NSTACK_LOG=debug "$nstack" "${serve_args[@]}" 2>"$tmp/server.log" &
server_pid=$!
wait_for_server "$tmp/server.log" "$server_pid" 1200 # up to 2 minutes: --preload reads the model first
# Loaded already by --preload; this checks it, with keep_alive -1.
if ! curl -sf "$url/api/generate" -d "{\"model\":\"$model\",\"keep_alive\":-1}" | grep -q '"done":true'; then
    echo "loading the model failed:" >&2
    curl -s "$url/api/generate" -d "{\"model\":\"$model\",\"keep_alive\":-1}" >&2
    exit 1
fi

driver() { NSTACK_BIN="$nstack" SERVER_LOG="$tmp/server.log" node bench/batch_driver.mjs "$url" "$model" "$@"; }
out="$tmp/tables.md"
status=0
for part in $parts; do
    case "$part" in
    decode) driver decode "${streams[@]}" >>"$out" ;;
    prefix) driver prefix >>"$out" ;;
    # The sessions API is newer than the rest: a failure there is reported
    # and the tables of the other parts are still printed.
    snapshot) if ! driver snapshot >>"$out"; then
                  echo "snapshot part failed (see above)" >>"$out"
                  status=1
              fi ;;
    *) echo "bench/batch.sh: unknown part '$part' (decode, prefix, snapshot)" >&2; exit 2 ;;
    esac
    echo >>"$out"
done

commit="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
[ -z "$(git status --porcelain --untracked-files=no 2>/dev/null)" ] || commit="$commit (with uncommitted changes)"
echo
echo "## $(date -u '+%F %H:%M UTC'), commit $commit — \`bench/batch.sh ${streams[*]}\`"
echo
echo "$(basename "$model") ($(($(stat -c %s "$model") / 1000000)) MB), \`nstack serve --num-parallel $parallel --ctx $ctx" \
     "--threads $threads --no-mmap\`, release build; $(nproc) CPUs," \
     "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), load average $(cut -d' ' -f1-3 /proc/loadavg)."
echo
cat "$out"
exit "$status"
