#!/usr/bin/env bash
# The resource monitor's CPU cost (issue #7): an idle `nstack serve` with one
# model loaded (the demo model, so the sampler's mapped-bytes callback has a
# model to count) runs SECONDS per sampling period; the ns-sampler thread's
# CPU time, the ns-db-writer thread's (it stores every sample), and the whole
# process's are read from /proc before and after. Prints a markdown table of
# percent of one core.
#
#   bench/sampler_cost.sh [SECONDS] [PERIOD...]     (default: 60 100ms 10ms)
#
# Env: BUILD_DIR (default build).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

seconds="${1:-60}"
shift || true
periods=("$@")
[ "${#periods[@]}" -gt 0 ] || periods=(100ms 10ms)
build="${BUILD_DIR:-build}"
echo "== release build in $build" >&2
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j"$(nproc)" --target nstack >/dev/null
nstack="$build/nstack"
server_scratch
hz="$(getconf CLK_TCK)"

# ticks PID [COMM]: utime + stime of the thread named COMM, or of the process
ticks() {
    local f
    if [ -z "${2:-}" ]; then f="/proc/$1/stat"; else
        f=""
        for t in /proc/"$1"/task/*; do
            [ "$(cat "$t/comm" 2>/dev/null)" = "$2" ] && f="$t/stat" && break
        done
        [ -n "$f" ] || { echo 0; return; }
    fi
    # fields after the last ')': state is field 3, utime 14, stime 15
    sed 's/.*) //' "$f" | awk '{ print $12 + $13 }'
}

echo "## $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD) — \`bench/sampler_cost.sh $seconds ${periods[*]}\`"
echo
echo "Idle server, demo model loaded, $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), ${seconds} s per period, clock ticks of $((1000 / hz)) ms."
echo
echo "| period | samples | ns-sampler % of one core | µs per sample | ns-db-writer % | whole process % |"
echo "| --- | ---: | ---: | ---: | ---: | ---: |"
for p in "${periods[@]}"; do
    log="$tmp/serve.$p.log"
    "$nstack" serve --host 127.0.0.1:0 --models "$tmp/models" --sample-interval "$p" --keep-alive -1 \
        --preload demo 2>"$log" &
    server_pid=$!
    wait_for_server "$log" "$server_pid" 300
    sleep 1 # past the start
    s0="$(ticks "$server_pid" ns-sampler)" w0="$(ticks "$server_pid" ns-db-writer)" p0="$(ticks "$server_pid")"
    n0="$(curl -s "$url/metrics" >/dev/null; date +%s%N)"
    sleep "$seconds"
    s1="$(ticks "$server_pid" ns-sampler)" w1="$(ticks "$server_pid" ns-db-writer)" p1="$(ticks "$server_pid")"
    n1="$(date +%s%N)"
    kill -TERM "$server_pid"
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
    awk -v s="$((s1 - s0))" -v w="$((w1 - w0))" -v pr="$((p1 - p0))" -v hz="$hz" -v ns="$((n1 - n0))" -v p="$p" '
        function period_s(p) { if (p ~ /ms$/) return substr(p, 1, length(p) - 2) / 1000; if (p ~ /s$/) return substr(p, 1, length(p) - 1); return p }
        BEGIN {
            wall = ns / 1e9; n = wall / period_s(p)
            printf "| %s | %d | %.2f | %.1f | %.2f | %.2f |\n", p, n, 100 * s / hz / wall, 1e6 * s / hz / n, 100 * w / hz / wall, 100 * pr / hz / wall
        }'
done
echo
echo "CPU time is counted in clock ticks, so a thread under one tick over the run shows 0."
