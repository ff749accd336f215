#!/usr/bin/env bash
# The CPU table of issue #4: `nstack bench` on random-weight models of the
# reference shapes, made with `nstack mkmodel` (and `nstack quantize` for
# the K-quant mix). Results go to stdout as llama-bench style rows.
#
#   bench/table.sh [THREADS] [REPS]
#
# Models are cached in bench/models/ (git-ignored; about 6 GB in all).
# They are read into fresh memory (-mmp 0): on a virtual machine a cached
# file's old page-cache pages can sit behind host faults, and mapping them
# measured the host, not the engine (Phi-3 decode 8.9 mapped vs 16.1 read).
set -euo pipefail
cd "$(dirname "$0")/.."
threads="${1:-2}"
reps="${2:-3}"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" --target nstack >/dev/null
nstack=build/nstack
mkdir -p bench/models

llama="--arch llama --dim 2048 --layers 16 --heads 32 --kv-heads 8 --ff 8192 --vocab 32000 --seed 1"
phi3="--arch phi3 --dim 3072 --layers 32 --heads 32 --kv-heads 32 --ff 8192 --vocab 32064 --seed 1"
make_model() { # NAME TYPE SHAPE...
    local f="bench/models/$1.gguf" t="$2"
    [ -f "$f" ] && return
    case "$t" in
    q4_k_m) make_model "${1%-q4_k_m}-f16" f16 "${@:3}"
            $nstack quantize "bench/models/${1%-q4_k_m}-f16.gguf" "$f" q4_k_m >/dev/null 2>&1
            return ;;
    esac
    shift 2
    $nstack mkmodel "$f" --type "$t" "$@" >/dev/null
}

echo "# $(git rev-parse --short HEAD) $(date -u +%FT%TZ), $(nproc) CPUs, $threads threads, $reps reps"
echo "# $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
for t in q4_0 q4_k_m q8_0; do
    make_model "llama-1.1b-$t" "$t" $llama
    $nstack bench "bench/models/llama-1.1b-$t.gguf" -p 512 -n 128 -t "$threads" -r "$reps" -mmp 0 | sed -n '3,$p' |
        sed "s/^| llama /| llama $t /"
done
make_model phi3-3.8b-q4_0 q4_0 $phi3
$nstack bench bench/models/phi3-3.8b-q4_0.gguf -p 128 -n 128 -t "$threads" -r "$reps" -mmp 0 | sed -n '3,$p' |
    sed "s/^| phi3 /| phi3 q4_0 /"
