#!/usr/bin/env bash
# `nstack tokenize` against the reference tokenizer: every prompt of the
# SentencePiece models' reference files, and every test vector of the
# Llama 2 vocabulary (vocabulary-only GGUF).
. "$(dirname "$0")/lib.bash"
need_shared models/refs
need_shared vocab/ggml-vocab-llama-spm.gguf

for model in stories260K tiny-llama-q4_0 tiny-phi3-q4_0; do
    while IFS= read -r line; do
        prompt="$(printf '%s' "$line" | sed -n 's/^{"prompt":"\(\([^"\\]\|\\.\)*\)".*/\1/p')"
        want="$(printf '%s' "$line" | sed -n 's/.*"prompt_tokens":\(\[[0-9,]*\]\).*/\1/p')"
        # the prompts hold JSON escapes such as \n and \"
        prompt="$(printf '%b' "${prompt//\\\"/\"}")"
        got="$("$NSTACK" tokenize "$SHARED/models/$model.gguf" "$prompt")"
        expect_eq "$model: $(printf '%q' "$prompt" | cut -c1-50)" "$want" "$got"
    done <"$SHARED/models/refs/$model.jsonl"
done

vocab="$SHARED/vocab/ggml-vocab-llama-spm.gguf"
i=0
while IFS= read -r -d $'\x1e' input; do
    i=$((i + 1))
    want="[$(sed -n "${i}p" "$vocab.out" | sed 's/^ *//; s/ *$//; s/  */,/g')]"
    got="$("$NSTACK" tokenize "$vocab" "$input" --no-bos --no-special)"
    expect_eq "llama-spm vector $i" "$want" "$got"
done < <(awk 'BEGIN{RS="\n__ggml_vocab_test__\n"; ORS="\x1e"} {print}' "$vocab.inp")
[ "$i" -eq "$(wc -l <"$vocab.out")" ] && ok "all $i vectors compared" || not_ok "compared $i vectors, .out has $(wc -l <"$vocab.out")"
finish
