#!/usr/bin/env bash
# CPU decode and prompt-processing speed of `nstack run --verbose` on a
# llama-shaped ~1.1B random-weight model made by `nstack mkmodel`
# (dim 2048, 16 layers, FFN 8192, 32 heads, 8 KV heads, vocab 32000: the
# shape of issue #4's table). Prints one line per weight type.
#
#   bench/cpu_baseline.sh [TYPES] [PROMPT_TOKENS] [DECODE_TOKENS] [THREADS]
#   e.g. bench/cpu_baseline.sh "f16 q8_0 q4_0" 64 32 2
#
# Models are cached in bench/models/ (git-ignored, ~2.5 GB for f16).
set -euo pipefail
cd "$(dirname "$0")/.."
types="${1:-f16 q8_0 q4_0}"
n_prompt="${2:-64}"
n_decode="${3:-32}"
threads="${4:-2}"

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" --target nstack >/dev/null
mkdir -p bench/models

# a prompt of exactly n_prompt tokens with the made-up vocabulary: BOS,
# then words "wNNN", each one token
prompt=""
for ((i = 1; i < n_prompt; i++)); do prompt+="w$(printf %03d $((i % 1000))) "; done
prompt="${prompt% }"

echo "commit $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $(nproc) CPUs, $threads threads, $(date -u +%FT%TZ)"
printf "%-6s %10s %14s %12s\n" type "size MB" "prompt tok/s" "decode tok/s"
for t in $types; do
    m="bench/models/llama-1.1b-$t.gguf"
    [ -f "$m" ] || build/nstack mkmodel "$m" --type "$t" --dim 2048 --layers 16 --heads 32 --kv-heads 8 \
        --ff 8192 --vocab 32000 --seed 1
    build/nstack run "$m" "$prompt" -n "$n_decode" --temp 0 --threads "$threads" --ctx 1024 --verbose \
        >/dev/null 2>bench/models/last.err
    pe=$(sed -n 's/^prompt eval rate: *\([0-9.]*\).*/\1/p' bench/models/last.err)
    pc=$(sed -n 's/^prompt eval count: *\([0-9]*\).*/\1/p' bench/models/last.err)
    ev=$(sed -n 's/^eval rate: *\([0-9.]*\).*/\1/p' bench/models/last.err)
    printf "%-6s %10d %14s %12s   (%s prompt tokens)\n" "$t" $(($(stat -c %s "$m") / 1000000)) "$pe" "$ev" "$pc"
done
