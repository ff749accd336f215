#!/usr/bin/env bash
# `nstack tokenize` with byte-level BPE vocabularies against the reference
# tokenizer: every test vector of the GPT-2 and Falcon vocabularies
# (--no-bos --no-special), every prompt of tiny-qwen2's reference file (the
# file's BOS rule, special tokens parsed), and the errors.
. "$(dirname "$0")/lib.bash"
need_shared vocab/ggml-vocab-gpt-2.gguf
need_shared vocab/ggml-vocab-falcon.gguf
need_shared models/refs/tiny-qwen2-q8_0.jsonl

for name in gpt-2 falcon; do
    vocab="$SHARED/vocab/ggml-vocab-$name.gguf"
    i=0
    while IFS= read -r -d $'\x1e' input; do
        i=$((i + 1))
        want="[$(sed -n "${i}p" "$vocab.out" | sed 's/^ *//; s/ *$//; s/  */,/g')]"
        got="$("$NSTACK" tokenize "$vocab" "$input" --no-bos --no-special)"
        expect_eq "$name vector $i" "$want" "$got"
    done < <(awk 'BEGIN{RS="\n__ggml_vocab_test__\n"; ORS="\x1e"} {print}' "$vocab.inp")
    n="$(wc -l <"$vocab.out")"
    [ "$i" -eq "$n" ] && ok "$name: all $i vectors compared" || not_ok "$name: compared $i vectors, .out has $n"
done

model="$SHARED/models/tiny-qwen2-q8_0.gguf"
k=0
while IFS= read -r line; do
    prompt="$(printf '%s' "$line" | sed -n 's/^{"prompt":"\(\([^"\\]\|\\.\)*\)".*/\1/p')"
    want="$(printf '%s' "$line" | sed -n 's/.*"prompt_tokens":\(\[[0-9,]*\]\).*/\1/p')"
    prompt="$(printf '%b' "${prompt//\\\"/\"}")"
    got="$("$NSTACK" tokenize "$model" "$prompt")"
    expect_eq "tiny-qwen2: $(printf '%q' "$prompt" | cut -c1-50)" "$want" "$got"
    k=$((k + 1))
done <"$SHARED/models/refs/tiny-qwen2-q8_0.jsonl"
[ "$k" -ge 3 ] && ok "tiny-qwen2: $k prompts compared" || not_ok "tiny-qwen2: only $k prompts"

# special tokens: parsed by default, plain text with --no-special
expect_eq "gpt-2 <|endoftext|> parsed" "[15496,50256]" \
    "$("$NSTACK" tokenize "$SHARED/vocab/ggml-vocab-gpt-2.gguf" 'Hello<|endoftext|>')"
got="$("$NSTACK" tokenize "$SHARED/vocab/ggml-vocab-gpt-2.gguf" 'Hello<|endoftext|>' --no-special)"
case "$got" in *50256*) not_ok "gpt-2 <|endoftext|> not parsed: $got" ;; *) ok "gpt-2 <|endoftext|> not parsed" ;; esac

# an unknown pre-tokenizer is refused by name: a copy of the GPT-2
# vocabulary whose tokenizer.ggml.pre says something else (same length, so
# only the bytes of the value change)
patch_pre() {  # the key, its type (4 bytes) and length (8 bytes), the value
    local src="$1" dst="$2" from="$3" to="$4"
    LC_ALL=C sed "s/tokenizer\.ggml\.pre\(............\)$from/tokenizer.ggml.pre\1$to/" "$src" >"$dst"
}
patch_pre "$SHARED/vocab/ggml-vocab-gpt-2.gguf" "$TMP/bad-pre.gguf" "gpt-2" "zzz-9"
if cmp -s "$SHARED/vocab/ggml-vocab-gpt-2.gguf" "$TMP/bad-pre.gguf"; then
    not_ok "could not make a vocabulary with an unknown pre-tokenizer"
else
    expect_fail "unknown pre-tokenizer" 1 'tokenizer.ggml.pre = "zzz-9"' -- "$NSTACK" tokenize "$TMP/bad-pre.gguf" hi
fi
finish
