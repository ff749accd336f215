#!/usr/bin/env bash
# `nstack run` on the real stories260K model reproduces the reference
# engine's greedy text (also what the model's authors published) word for word.
. "$(dirname "$0")/lib.bash"
need_shared models/stories260K.gguf
need_shared models/refs/stories260K-once-upon-a-time-200.txt

ref="$(cat "$SHARED/models/refs/stories260K-once-upon-a-time-200.txt")"
# the reference file holds the BOS piece and the prompt before the continuation
expected="${ref#<s> Once upon a time}"
actual="$("$NSTACK" run "$SHARED/models/stories260K.gguf" "Once upon a time" -n 200 --temp 0)"
expect_eq "greedy 200-token continuation matches the reference" "$expected" "$actual"

# the same through standard input, with one thread and an F32 cache
actual="$(echo "Once upon a time" | "$NSTACK" run "$SHARED/models/stories260K.gguf" -n 200 --temp 0 --threads 1 --kv-type f32)"
expect_eq "prompt from stdin, 1 thread, F32 KV" "$expected" "$actual"

# --verbose prints the timing block on stderr, not stdout
"$NSTACK" run "$SHARED/models/stories260K.gguf" "Once upon a time" -n 8 --temp 0 --verbose >"$TMP/out" 2>"$TMP/err"
for field in "total duration:" "load duration:" "prompt eval count:    5 token(s)" "prompt eval duration:" \
             "prompt eval rate:" "eval count:           8 token(s)" "eval duration:" "eval rate:"; do
    if grep -qF "$field" "$TMP/err"; then ok "verbose has '$field'"; else not_ok "verbose lacks '$field'"; fi
done
out="$(cat "$TMP/out")"
if [ -n "$out" ] && [ "${expected#"$out"}" != "$expected" ]; then ok "verbose keeps stdout to the text"; else
    not_ok "verbose stdout is not the start of the reference: $out"; fi

# seeded sampling is reproducible, and a different seed changes the text
a="$("$NSTACK" run "$SHARED/models/stories260K.gguf" "Once upon a time" -n 60 --temp 1.0 --top-k 40 --top-p 0.95 --seed 42)"
b="$("$NSTACK" run "$SHARED/models/stories260K.gguf" "Once upon a time" -n 60 --temp 1.0 --top-k 40 --top-p 0.95 --seed 42)"
c="$("$NSTACK" run "$SHARED/models/stories260K.gguf" "Once upon a time" -n 60 --temp 1.0 --top-k 40 --top-p 0.95 --seed 43)"
expect_eq "same seed, same text" "$a" "$b"
if [ "$a" != "$c" ]; then ok "another seed, another text"; else not_ok "seeds 42 and 43 gave the same text"; fi

# -n 0 generates nothing
expect_eq "-n 0 prints nothing" "" "$("$NSTACK" run "$SHARED/models/stories260K.gguf" "Once upon a time" -n 0)"
finish
