#!/usr/bin/env bash
# `nstack mkmodel` writes models of every architecture and weight type that
# the engine loads and runs; --vocab-from carries a real tokenizer over.
. "$(dirname "$0")/lib.bash"

for arch in llama qwen2 phi3; do
    for type in f32 f16 q8_0 q4_0; do
        f="$TMP/$arch-$type.gguf"
        if ! "$NSTACK" mkmodel "$f" --arch "$arch" --type "$type" --dim 128 --layers 2 --heads 4 --kv-heads 2 \
            --ff 256 --vocab 512 --seed 7 2>"$TMP/err"; then
            not_ok "mkmodel $arch $type: $(cat "$TMP/err")"; continue
        fi
        a="$("$NSTACK" run "$f" "hello world" -n 12 --temp 0 2>"$TMP/err")"; rc=$?
        b="$("$NSTACK" run "$f" "hello world" -n 12 --temp 0 --threads 1 2>>"$TMP/err")"
        if [ $rc -eq 0 ] && [ -n "$a" ] && [ "$a" == "$b" ]; then ok "$arch $type runs, same text on 1 and N threads"; else
            not_ok "$arch $type: rc=$rc '$a' vs '$b' $(cat "$TMP/err")"; fi
        lines="$("$NSTACK" logits "$f" --tokens 1,300,301,302 --top 3 | grep -c '^{"pos":[0-9]*,"token":[0-9]*,"top":\[\[')"
        expect_eq "$arch $type logits lines" 4 "$lines"
    done
done

# the same seed writes the same file
"$NSTACK" mkmodel "$TMP/s1.gguf" --dim 64 --layers 1 --heads 2 --vocab 300 --seed 3
"$NSTACK" mkmodel "$TMP/s2.gguf" --dim 64 --layers 1 --heads 2 --vocab 300 --seed 3
if cmp -s "$TMP/s1.gguf" "$TMP/s2.gguf"; then ok "mkmodel is deterministic"; else not_ok "mkmodel differs between runs"; fi

# tied embeddings: no output.weight, still runs
"$NSTACK" mkmodel "$TMP/tied.gguf" --dim 64 --layers 1 --heads 2 --vocab 300 --tied
if "$NSTACK" run "$TMP/tied.gguf" "x" -n 4 --temp 0 >/dev/null; then ok "tied model runs"; else not_ok "tied model"; fi

if [ -f "$SHARED/models/tiny-llama-f16.gguf" ]; then
    src="$SHARED/models/tiny-llama-f16.gguf"
    "$NSTACK" mkmodel "$TMP/v.gguf" --vocab-from "$src" --dim 64 --layers 1 --heads 2 --type f16
    text="Hello world, this is a test of [INST] tokens <s> and ünïcödé"
    expect_eq "--vocab-from tokenizes like its source" "$("$NSTACK" tokenize "$src" "$text")" "$("$NSTACK" tokenize "$TMP/v.gguf" "$text")"
else
    echo "SKIP (part): shared models not found"
fi
finish
