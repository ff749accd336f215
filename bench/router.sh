#!/usr/bin/env bash
# What the router adds (issue #8): the same request, POST /api/generate with
# num_predict 1 on stories260K (a fast upstream: the time is mostly HTTP),
# sent straight to `nstack serve` and through `nstack route` in front of it,
# measured with wrk (installed when possible). Prints req/s and latency per
# path and the router's added p50 / p99.
#
#   bench/router.sh [SECONDS] [CONNECTIONS...]     (default: 10 s; 1 4)
#
# Env: MODEL (default $NSTACK_SHARED/models/stories260K.gguf), BUILD_DIR
# (default build-bench).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

duration="${1:-10}"
shift || true
conns=("$@")
[ "${#conns[@]}" -gt 0 ] || conns=(1 4)
shared="${NSTACK_SHARED:-../shared}"
model="$(realpath "${MODEL:-$shared/models/stories260K.gguf}")"
build="${BUILD_DIR:-build-bench}"

echo "== release build in $build" >&2
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DNSTACK_TESTS=OFF >/dev/null
cmake --build "$build" -j"$(nproc)" --target nstack >/dev/null
if ! command -v wrk >/dev/null && [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    echo "== installing wrk" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null 2>&1 || true
fi
command -v wrk >/dev/null || { echo "bench/router.sh: needs wrk (apt-get install wrk)" >&2; exit 1; }

server_scratch
export NSTACK_MODE_FILE="$tmp/mode.json" NSTACK_ROUTE_LOG="$tmp/route.jsonl"
"$build/nstack" serve --host 127.0.0.1:0 --no-demo --models "$tmp/models" --keep-alive -1 --threads 1 \
    2>"$tmp/server.log" &
server_pid=$!
wait_for_server "$tmp/server.log" "$server_pid" 100
upstream="$url"

printf '%s\n' '[router]' 'listen = "127.0.0.1:0"' >"$tmp/router.toml"
for role in small big; do
    printf '%s\n' '[[router.upstream]]' "name = \"$role\"" "url = \"$upstream\"" 'kind = "nstack"' \
        "role = \"$role\"" "model = \"$model\"" >>"$tmp/router.toml"
done
"$build/nstack" route --config "$tmp/router.toml" 2>"$tmp/router.log" &
router_pid=$!
trap 'kill -TERM "$router_pid" 2>/dev/null || true; wait "$router_pid" 2>/dev/null || true
if [ -n "$server_pid" ]; then kill -TERM "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null || true; fi
rm -rf "$tmp"' EXIT
router=""
for _ in $(seq 100); do
    port="$(sed -n 's|.*msg="listening" url=http://[^ ]*:\([0-9][0-9]*\) .*|\1|p' "$tmp/router.log" | head -n1)"
    [ -n "$port" ] && router="http://127.0.0.1:$port" && break
    sleep 0.1
done
[ -n "$router" ] || { echo "the router did not start:" >&2; cat "$tmp/router.log" >&2; exit 1; }

body="{\"model\":\"$model\",\"prompt\":\"Once upon a time\",\"stream\":false,\"keep_alive\":-1,\"options\":{\"temperature\":0,\"num_predict\":1}}"
curl -sf "$upstream/api/generate" -d "$body" | grep -q '"done":true' || { echo "the upstream does not answer" >&2; exit 1; }
curl -sf "$router/api/generate" -d "$body" | grep -q '"done":true' || { echo "the router does not answer" >&2; exit 1; }
printf '%s\n' 'wrk.method = "POST"' 'wrk.headers["Content-Type"] = "application/json"' "wrk.body = '$body'" >"$tmp/post.lua"

# run BASE CONNECTIONS: "req_s p50_us p99_us errors"
run() {
    wrk -t"$(($2 < 2 ? $2 : 2))" -c"$2" -d"${duration}s" --latency -s "$tmp/post.lua" "$1/api/generate" |
        awk 'function us(v) { if (v ~ /us$/) return v + 0; if (v ~ /ms$/) return v * 1000; if (v ~ /s$/) return v * 1e6; return v }
             $1 == "50%" { p50 = us($2) } $1 == "99%" { p99 = us($2) } $1 == "Requests/sec:" { rps = $2 }
             /Non-2xx|Socket errors/ { err = 1 }
             END { printf "%s %.1f %.1f %d\n", rps, p50, p99, err + 0 }'
}
echo "## $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD) — \`bench/router.sh $duration ${conns[*]}\`"
echo
echo "POST /api/generate, num_predict 1, $(basename "$model"), wrk, ${duration} s per row, direct and through the router in turn; $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')."
echo
echo "| connections | direct req/s | direct p50 µs | direct p99 µs | router req/s | router p50 µs | router p99 µs | added p50 µs | added p99 µs |"
echo "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
for c in "${conns[@]}"; do
    echo "== $c connection(s)" >&2
    read -r drps dp50 dp99 derr < <(run "$upstream" "$c")
    read -r rrps rp50 rp99 rerr < <(run "$router" "$c")
    [ "$derr$rerr" = "00" ] || { echo "errors in the load run with $c connections" >&2; exit 1; }
    awk -v c="$c" -v a="$drps" -v b="$dp50" -v d="$dp99" -v e="$rrps" -v f="$rp50" -v g="$rp99" \
        'BEGIN { printf "| %s | %s | %.1f | %.1f | %s | %.1f | %.1f | %.1f | %.1f |\n", c, a, b, d, e, f, g, f - b, g - d }'
done
echo
# The router's own share of each request, from its audit log: from the
# request's arrival to its answer, minus the time the upstream took as the
# router saw it (connect, send, wait, receive) — parsing, classifying,
# writing, and its thread's scheduling.
jq -r 'select(.upstream_ms != null) | .latency_ms - .upstream_ms' "$tmp/route.jsonl" | sort -g |
    awk '{ v[NR] = $1 } END { if (NR) printf "Router-side time per request from the audit log (%d requests): p50 %.1f µs, p99 %.1f µs, p99.9 %.1f µs.\n", NR, v[int(NR * 0.5) + 1] * 1000, v[int(NR * 0.99) + 1] * 1000, v[int(NR * 0.999) + 1] * 1000 }'
