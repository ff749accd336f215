#!/usr/bin/env bash
# `nstack quantize` converts models to every file type the engine runs, with
# the reference quantize tool's per-tensor types and bytes; bad input gets a
# clear message and exit code 1 (bad file) or 2 (bad command line).
. "$(dirname "$0")/lib.bash"

"$NSTACK" mkmodel "$TMP/m.gguf" --dim 256 --layers 2 --heads 4 --kv-heads 2 --ff 512 --vocab 300 --seed 5 \
    >/dev/null || { echo "mkmodel failed"; exit 1; }

# ---- errors
expect_fail "no arguments" 2 "usage" -- "$NSTACK" quantize
expect_fail "two arguments without --dry-run" 2 "usage" -- "$NSTACK" quantize "$TMP/m.gguf" q4_0
expect_fail "unknown type" 2 "unknown type 'q4_k_x'" -- "$NSTACK" quantize "$TMP/m.gguf" "$TMP/o.gguf" q4_k_x
expect_fail "bad thread count" 2 "--threads" -- "$NSTACK" quantize "$TMP/m.gguf" "$TMP/o.gguf" q4_0 --threads 0
expect_fail "missing thread count" 2 "needs a value" -- "$NSTACK" quantize "$TMP/m.gguf" "$TMP/o.gguf" q4_0 --threads
expect_fail "unknown option" 2 "unknown option" -- "$NSTACK" quantize "$TMP/m.gguf" "$TMP/o.gguf" q4_0 --bogus
expect_fail "missing input" 1 "$TMP/nope.gguf" -- "$NSTACK" quantize "$TMP/nope.gguf" "$TMP/o.gguf" q4_0
echo "not a model" >"$TMP/text.gguf"
expect_fail "input not GGUF" 1 "magic" -- "$NSTACK" quantize "$TMP/text.gguf" "$TMP/o.gguf" q4_0
expect_fail "unwritable output" 1 "cannot create" -- "$NSTACK" quantize "$TMP/m.gguf" "$TMP/no/such/dir/o.gguf" q4_0
if [ -e "$TMP/o.gguf" ]; then not_ok "a failed run left $TMP/o.gguf"; else ok "failed runs leave no output"; fi

# ---- every type converts and runs
for t in f32 f16 bf16 q8_0 q4_0 q4_1 q5_0 q5_1 q2_k q3_k_s q3_k_m q3_k_l q4_k_s q4_k_m q5_k_s q5_k_m q6_k; do
    if ! "$NSTACK" quantize "$TMP/m.gguf" "$TMP/$t.gguf" "$t" --quiet 2>"$TMP/err"; then
        not_ok "quantize $t: $(cat "$TMP/err")"; continue
    fi
    text="$("$NSTACK" run "$TMP/$t.gguf" "w1 w2 w3" -n 8 --temp 0 2>"$TMP/err")"
    if [ $? -eq 0 ] && [ -n "$text" ]; then ok "$t converts and runs"; else not_ok "$t runs: $(cat "$TMP/err")"; fi
done

# names as llama-quantize takes them: any case, the short aliases, the numbers
"$NSTACK" quantize "$TMP/m.gguf" "$TMP/a1.gguf" Q4_K_M --quiet
"$NSTACK" quantize "$TMP/m.gguf" "$TMP/a2.gguf" q4_k --quiet --threads 1
"$NSTACK" quantize "$TMP/m.gguf" "$TMP/a3.gguf" 15 --quiet --threads 3
if cmp -s "$TMP/a1.gguf" "$TMP/q4_k_m.gguf" && cmp -s "$TMP/a2.gguf" "$TMP/q4_k_m.gguf" &&
    cmp -s "$TMP/a3.gguf" "$TMP/q4_k_m.gguf"; then
    ok "Q4_K_M, q4_k and 15 write the same file, on any thread count"
else not_ok "Q4_K_M / q4_k / 15 / thread counts differ"; fi

# progress on stderr, nothing on stdout
out="$("$NSTACK" quantize "$TMP/m.gguf" "$TMP/p.gguf" q8_0 2>"$TMP/err")"
expect_eq "quantize prints nothing on stdout" "" "$out"
if grep -q "blk.1.ffn_down.weight" "$TMP/err" && grep -q "Q8_0" "$TMP/err"; then ok "progress lines on stderr"; else
    not_ok "progress lines: $(cat "$TMP/err")"; fi

# requantizing warns and works; the output may be the input
cp "$TMP/q8_0.gguf" "$TMP/inplace.gguf"
if "$NSTACK" quantize "$TMP/inplace.gguf" "$TMP/inplace.gguf" q4_0 --quiet 2>"$TMP/err" &&
    grep -q "requantizing" "$TMP/err" && "$NSTACK" run "$TMP/inplace.gguf" "w1" -n 4 --temp 0 >/dev/null 2>&1; then
    ok "requantize warns; converting a file onto itself works"
else not_ok "requantize in place: $(cat "$TMP/err")"; fi

# --dry-run lists the types and writes nothing
lines="$("$NSTACK" quantize "$TMP/m.gguf" q4_k_m --dry-run | grep -c ' -> ')"
expect_eq "--dry-run lists every tensor" 21 "$lines"
expect_eq "--dry-run: attn_v of the last layer gets Q6_K" "blk.1.attn_v.weight F32 -> Q6_K" \
    "$("$NSTACK" quantize "$TMP/m.gguf" q4_k_m --dry-run | grep attn_v | tail -1)"

# ---- mkmodel writes every K type directly (rows a K block does not divide
# fall back as the quantize tool does)
for t in q2_k q3_k q4_k Q5_K q6_k; do
    for dim in 256 64; do
        f="$TMP/mk-$t-$dim.gguf"
        if "$NSTACK" mkmodel "$f" --type "$t" --dim $dim --layers 1 --heads 4 --ff 512 --vocab 300 2>"$TMP/err" &&
            "$NSTACK" run "$f" "w1 w2" -n 4 --temp 0 >/dev/null 2>>"$TMP/err"; then
            ok "mkmodel --type $t --dim $dim runs"
        else not_ok "mkmodel --type $t --dim $dim: $(cat "$TMP/err")"; fi
    done
done
expect_eq "mkmodel --type q4_k: blk.0.attn_q is Q4_K" "blk.0.attn_q.weight Q4_K -> Q4_K" \
    "$("$NSTACK" quantize "$TMP/mk-q4_k-256.gguf" q4_k_s --dry-run | grep attn_q)"
expect_eq "mkmodel --type q4_k --dim 64: Q5_0 fallback" "blk.0.attn_q.weight Q5_0 -> Q5_0" \
    "$("$NSTACK" quantize "$TMP/mk-q4_k-64.gguf" q4_k_s --dry-run | grep attn_q | sed 's/ (fallback)//')"

# ---- against the reference quantize tool's files
if [ -f "$SHARED/models/tiny-llama-f16.gguf" ]; then
    src="$SHARED/models/tiny-llama-f16.gguf"
    for t in q8_0 q4_0 q4_1 q5_0 q5_1 q2_k q3_k_m q4_k_m q5_k_m q6_k; do
        ref="$SHARED/models/tiny-llama-$t.gguf"
        ours="$("$NSTACK" quantize "$src" "$t" --dry-run | awk '{print $1, $4}')"
        theirs="$("$NSTACK" quantize "$ref" "$t" --dry-run | awk '{print $1, $2}')"
        expect_eq "$t: tensor order and types as the reference tool's" "$theirs" "$ours"
    done
    for t in q4_k_m q2_k q5_0; do
        "$NSTACK" quantize "$src" "$TMP/ref-$t.gguf" "$t" --quiet
        if cmp -s "$TMP/ref-$t.gguf" "$SHARED/models/tiny-llama-$t.gguf"; then
            ok "$t: the file is byte-identical to the reference tool's"
        else not_ok "$t: differs from the reference tool's file"; fi
    done
    toks=1,9038,2501,263,931,29892
    expect_eq "q4_k_m: logits as on the reference tool's file" \
        "$("$NSTACK" logits "$SHARED/models/tiny-llama-q4_k_m.gguf" --tokens $toks --top 5)" \
        "$("$NSTACK" logits "$TMP/ref-q4_k_m.gguf" --tokens $toks --top 5)"
else
    echo "SKIP (part): shared models not found"
fi
finish
