#!/usr/bin/env bash
# What the HTTP server adds to a generation: POST /api/generate with
# num_predict 1 on stories260K, measured with wrk (a node driver when wrk is
# absent), against the same 1-token generation done in-process through the
# runtime API (bench/engine_1tok.c). Prints a markdown table.
#
#   bench/server.sh [SECONDS] [CONNECTIONS...]     (default: 10 s; 1 4 16)
#
# Env: MODEL (default $NSTACK_SHARED/models/stories260K.gguf), BUILD_DIR
# (default build-bench), THREADS (the model's threads, default 1: stories260K
# is too small for a second thread to help, and on a shared 2-core machine the
# per-layer barriers of 2 threads measure the neighbours, not the server),
# ITERS (in-process iterations, default 5000).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

duration="${1:-10}"
shift || true
conns=("$@")
[ "${#conns[@]}" -gt 0 ] || conns=(1 4 16)
shared="${NSTACK_SHARED:-../shared}"
model="$(realpath "${MODEL:-$shared/models/stories260K.gguf}")"
build="${BUILD_DIR:-build-bench}"
iters="${ITERS:-5000}"
threads="${THREADS:-1}"
prompt="Once upon a time"

echo "== release build in $build" >&2
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DNSTACK_TESTS=OFF >/dev/null
cmake --build "$build" -j"$(nproc)" --target nstack bench_engine_1tok >/dev/null

if ! command -v wrk >/dev/null && [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    echo "== installing wrk" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null 2>&1 || true
fi

server_scratch # sets tmp; stops the server in server_pid on exit

echo "== in-process: $iters generations" >&2
engine_line="$("$build/bench_engine_1tok" -n "$iters" -t "$threads" -p "$prompt" "$model" | grep '^engine_1tok ')"
kv() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p" <<<"$2"; }
e_mean="$(kv mean_us "$engine_line")"
e_p50="$(kv p50_us "$engine_line")"
e_p99="$(kv p99_us "$engine_line")"

echo "== starting the server" >&2
# At the default log level, as users run it: one access-log line per request
# is part of what the server costs.
serve_args=(serve --host 127.0.0.1:0 --no-demo --models "$tmp/models" --keep-alive -1)
[ "$threads" -gt 0 ] && serve_args+=(--threads "$threads")
"$build/nstack" "${serve_args[@]}" 2>"$tmp/server.log" &
server_pid=$!
wait_for_server "$tmp/server.log" "$server_pid" 100

body="{\"model\":\"$model\",\"prompt\":\"$prompt\",\"stream\":false,\"keep_alive\":-1,\"options\":{\"temperature\":0,\"num_predict\":1}}"
# Loads the model, and checks that a request works at all.
if ! curl -sf "$url/api/generate" -d "$body" | grep -q '"done":true'; then
    echo "POST /api/generate failed:" >&2
    curl -s "$url/api/generate" -d "$body" >&2
    exit 1
fi

# load_run CONNECTIONS [GET_PATH]: one load run of POST /api/generate with
# $body (or of GET GET_PATH); prints "req_s mean_us p50_us p99_us errors".
if command -v wrk >/dev/null; then
    tool="wrk $({ wrk --version 2>&1 || true; } | awk 'NR == 1 {print $2}')" # --version exits 1
    cat >"$tmp/post.lua" <<EOF
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '$body'
EOF
    load_run() {
        # wrk prints times as 512.00us, 1.20ms or 1.01s.
        local target=(-s "$tmp/post.lua" "$url/api/generate")
        [ $# -ge 2 ] && target=("$url$2")
        wrk -t"$(($1 < 2 ? $1 : 2))" -c"$1" -d"${duration}s" --latency "${target[@]}" |
            awk 'function us(v) {
                    if (v ~ /us$/) return v + 0; if (v ~ /ms$/) return v * 1000; if (v ~ /s$/) return v * 1e6; return v }
                $1 == "Latency" && mean == "" { mean = us($2) }
                $1 == "50%" { p50 = us($2) }
                $1 == "99%" { p99 = us($2) }
                $1 == "Requests/sec:" { rps = $2 }
                /Non-2xx|Socket errors/ { err = 1 }
                END { printf "%s %.1f %.1f %.1f %d\n", rps, mean, p50, p99, err + 0 }'
    }
else
    tool="node (wrk not installed)"
    load_run() {
        local target=("$url/api/generate" "$body")
        [ $# -ge 2 ] && target=("$url$2" "")
        node --input-type=module - "${target[@]}" "$1" "$duration" <<'EOF'
import http from 'node:http';
const [url, body, conns, secs] = process.argv.slice(2);
const method = body ? 'POST' : 'GET';
const agent = new http.Agent({ keepAlive: true, maxSockets: Number(conns) });
const lat = []; let errors = 0; const end = Date.now() + Number(secs) * 1000;
const one = () => new Promise((resolve) => {
  const t0 = process.hrtime.bigint();
  const req = http.request(url, { method, agent, headers: { 'Content-Type': 'application/json' } }, (res) => {
    res.resume();
    res.on('end', () => { if (res.statusCode !== 200) errors++; lat.push(Number(process.hrtime.bigint() - t0) / 1e3); resolve(); });
  });
  req.on('error', () => { errors++; resolve(); });
  req.end(body || undefined);
});
const t0 = Date.now();
await Promise.all(Array.from({ length: Number(conns) }, async () => { while (Date.now() < end) await one(); }));
const wall = (Date.now() - t0) / 1000;
lat.sort((a, b) => a - b);
const mean = lat.reduce((a, b) => a + b, 0) / lat.length;
console.log(`${(lat.length / wall).toFixed(2)} ${mean.toFixed(1)} ${lat[Math.floor((lat.length - 1) / 2)].toFixed(1)} ${lat[Math.floor((lat.length - 1) * 0.99)].toFixed(1)} ${errors ? 1 : 0}`);
agent.destroy();
EOF
    }
fi

rows=()
s_mean1="" s_p501="" s_p991=""
for c in "${conns[@]}"; do
    echo "== server: $c connection(s), ${duration} s" >&2
    read -r rps mean p50 p99 err < <(load_run "$c")
    if [ "$err" != 0 ]; then echo "the load run with $c connections saw errors" >&2; exit 1; fi
    rows+=("| server, $c connection(s) | $rps | $mean | $p50 | $p99 |")
    if [ "$c" = 1 ]; then s_mean1="$mean" s_p501="$p50" s_p991="$p99"; fi
done
# The HTTP layer alone, for scale: its tail is the machine's scheduling.
echo "== server: GET /api/version, 1 connection, ${duration} s" >&2
read -r rps mean p50 p99 err < <(load_run 1 /api/version)
version_row="| server, GET /api/version (no model), 1 connection | $rps | $mean | $p50 | $p99 |"

echo
echo "POST /api/generate, num_predict 1, stream false, $(basename "$model"), $tool, ${duration} s per row;"
echo "in-process: bench_engine_1tok, $iters iterations; $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')."
echo
echo "| path | req/s | mean µs | p50 µs | p99 µs |"
echo "| --- | ---: | ---: | ---: | ---: |"
awk -v m="$e_mean" -v a="$e_p50" -v b="$e_p99" 'BEGIN { printf "| in-process runtime, 1 at a time | %.0f | %.1f | %.1f | %.1f |\n", 1e6 / m, m, a, b }'
printf '%s\n' "${rows[@]}"
echo "$version_row"
if [ -n "$s_mean1" ]; then
    awk -v sm="$s_mean1" -v s5="$s_p501" -v s9="$s_p991" -v m="$e_mean" -v a="$e_p50" -v b="$e_p99" \
        'BEGIN { printf "| **added by the server** (1 connection minus in-process) | | %+.1f | %+.1f | %+.1f |\n", sm - m, s5 - a, s9 - b }'
fi
