#!/usr/bin/env bash
# `nstack bench` prints llama-bench style rows (and JSON) for a model.
. "$(dirname "$0")/lib.bash"
"$NSTACK" mkmodel "$TMP/m.gguf" --dim 128 --layers 2 --heads 4 --vocab 512 --type q4_0 >/dev/null
out="$("$NSTACK" bench "$TMP/m.gguf" -p 16 -n 8 -t 2 -r 2)"
echo "$out"
if grep -qE '^\| llama .* \| 2 \| pp16 \| [0-9.]+ ± [0-9.]+ \| \|$' <<<"$out"; then ok "pp row"; else not_ok "pp row"; fi
if grep -qE '^\| llama .* \| 2 \| tg8 \| [0-9.]+ ± [0-9.]+ \| [0-9.]+ \|$' <<<"$out"; then ok "tg row with bandwidth"; else not_ok "tg row"; fi
json="$("$NSTACK" bench "$TMP/m.gguf" -p 0 -n 4 -r 1 --json)"
if grep -qE '^\[\{"model":.*"test":"tg4".*"avg_ts":[0-9.]+.*"bandwidth_gbs":[0-9.]+\}\]$' <<<"$json"; then ok "json"; else
    not_ok "json: $json"; fi
json="$("$NSTACK" bench "$TMP/m.gguf" -p 4 -n 4 -r 1 -mmp 0 --json)"
if grep -qE '"test":"tg4"' <<<"$json"; then ok "-mmp 0 reads the model into memory"; else not_ok "-mmp 0: $json"; fi
json="$("$NSTACK" bench "$TMP/m.gguf" -p 0 -n 4 -r 1 -np 3 --json)"
if grep -qE '"test":"tg4x3","n_tokens":4,"n_seq":3' <<<"$json"; then ok "-np 3 decodes three sequences a step"; else
    not_ok "-np 3: $json"; fi
expect_fail "bench with a bad -np" 2 "-np" -- "$NSTACK" bench "$TMP/m.gguf" -np 0
expect_fail "bench with a bad -mmp" 2 "-mmp" -- "$NSTACK" bench "$TMP/m.gguf" -mmp 2
expect_fail "bench with a bad -r" 2 "-r" -- "$NSTACK" bench "$TMP/m.gguf" -r 0
finish
