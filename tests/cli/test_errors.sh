#!/usr/bin/env bash
# Bad input gets one clear message on stderr, the right exit code (1: the
# input is bad, 2: the command line is) and nothing on stdout; never a crash.
. "$(dirname "$0")/lib.bash"

"$NSTACK" mkmodel "$TMP/m.gguf" --dim 64 --layers 1 --heads 4 --vocab 300 >/dev/null || { echo "mkmodel failed"; exit 1; }

expect_fail "missing file" 1 "$TMP/nope.gguf" -- "$NSTACK" run "$TMP/nope.gguf" hi
echo "hello, I am not a model" >"$TMP/text.gguf"
expect_fail "not a GGUF file" 1 "magic" -- "$NSTACK" run "$TMP/text.gguf" hi
head -c 2000 "$TMP/m.gguf" >"$TMP/trunc.gguf"
expect_fail "truncated model" 1 "trunc.gguf" -- "$NSTACK" run "$TMP/trunc.gguf" hi
: >"$TMP/empty.gguf"
expect_fail "empty file" 1 "empty.gguf" -- "$NSTACK" tokenize "$TMP/empty.gguf" hi
expect_fail "directory as model" 1 "$TMP" -- "$NSTACK" run "$TMP" hi

expect_fail "unknown command" 2 "unknown command" -- "$NSTACK" frobnicate
expect_fail "unknown option" 2 "unknown option" -- "$NSTACK" run "$TMP/m.gguf" hi --bogus
expect_fail "bad temperature" 2 "--temp" -- "$NSTACK" run "$TMP/m.gguf" hi --temp warm
expect_fail "negative threads" 2 "--threads" -- "$NSTACK" run "$TMP/m.gguf" hi --threads -3
expect_fail "missing option value" 2 "needs a value" -- "$NSTACK" run "$TMP/m.gguf" hi -n
expect_fail "bad kv type" 2 "--kv-type" -- "$NSTACK" run "$TMP/m.gguf" hi --kv-type q3

expect_fail "token id outside the vocabulary" 1 "outside the vocabulary" -- "$NSTACK" logits "$TMP/m.gguf" --tokens 1,299,300
expect_fail "malformed token list" 2 "comma-separated" -- "$NSTACK" logits "$TMP/m.gguf" --tokens 1,,2
expect_fail "negative token id" 2 "comma-separated" -- "$NSTACK" logits "$TMP/m.gguf" --tokens 1,-5
expect_fail "logits past the context" 1 "context is full" -- "$NSTACK" logits "$TMP/m.gguf" --tokens 1,2,3,4,5 --ctx 4
expect_fail "prompt longer than the context" 1 "context" -- "$NSTACK" run "$TMP/m.gguf" "a b c d e f g h" --ctx 4

expect_fail "mkmodel into a missing directory" 1 "$TMP/no/such/dir" -- "$NSTACK" mkmodel "$TMP/no/such/dir/x.gguf" --dim 64 --layers 1 --heads 4 --vocab 300
expect_fail "mkmodel with heads not dividing dim" 2 "head" -- "$NSTACK" mkmodel "$TMP/x.gguf" --dim 64 --heads 5

if [ -f "$SHARED/models/tiny-qwen2-q8_0.gguf" ]; then
    # a token id past the vocabulary of a BPE model, through logits
    expect_fail "BPE model, token outside the vocabulary" 1 "outside the vocabulary" -- \
        "$NSTACK" logits "$SHARED/models/tiny-qwen2-q8_0.gguf" --tokens 7454,999999
    # a vocabulary-only file has no weights to run
    expect_fail "vocabulary-only file as a model" 1 "not supported" -- \
        "$NSTACK" run "$SHARED/vocab/ggml-vocab-gpt-2.gguf" hi
else
    echo "SKIP (part): shared models not found"
fi
finish
