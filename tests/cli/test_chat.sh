#!/usr/bin/env bash
# The interactive chat of `nstack run` (driven through --chat with piped
# input): the model's chat template, the KV cache kept between turns, and
# the /set, /clear, /bye commands. Each greedy reply must equal a one-shot
# `nstack run` of the same conversation rendered by hand, which checks the
# template, the tokenization and the reuse of the cached prefix together.
. "$(dirname "$0")/lib.bash"
need_shared models/tiny-phi3-q4_0.gguf
need_shared models/stories260K.gguf
phi3="$SHARED/models/tiny-phi3-q4_0.gguf"

out="$(printf 'Hello there\nHow are you?\n/bye\nnot read\n' | "$NSTACK" run "$phi3" --chat -n 6 --temp 0 2>"$TMP/err")"
rc=$?
expect_eq "chat exits 0" 0 "$rc"
r1="$(sed -n 1p <<<"$out")"
r2="$(sed -n 3p <<<"$out")"
# the phi3 template: <s><|user|>\nU<|end|>\n<|assistant|>\n, replies end in <|end|>\n
one1="$("$NSTACK" run "$phi3" $'<|user|>\nHello there<|end|>\n<|assistant|>\n' -n 6 --temp 0)"
expect_eq "first reply equals a one-shot run of the rendered prompt" "$one1" "$r1"
one2="$("$NSTACK" run "$phi3" $'<|user|>\nHello there<|end|>\n<|assistant|>\n'"$r1"$'<|end|>\n<|user|>\nHow are you?<|end|>\n<|assistant|>\n' -n 6 --temp 0)"
expect_eq "second reply (cached prefix reused) equals a one-shot run" "$one2" "$r2"

# /clear forgets the conversation: the same first message gives the first reply again
out="$(printf 'Hello there\n/clear\nHello there\n/set parameter num_predict 3\n/set parameter top_p 7\n/nope\n' |
    "$NSTACK" run "$phi3" --chat -n 6 --temp 0 2>"$TMP/err")"
expect_eq "after /clear the reply repeats" "$r1" "$(sed -n 4p <<<"$out")"
if grep -q "Cleared session context" <<<"$out"; then ok "/clear acknowledged"; else not_ok "/clear: $out"; fi
if grep -q "Set parameter 'num_predict' to '3'" <<<"$out"; then ok "/set parameter"; else not_ok "/set: $out"; fi
if grep -q "top_p" "$TMP/err"; then ok "/set parameter out of range refused"; else not_ok "range: $(cat "$TMP/err")"; fi
if grep -q "Unknown command '/nope'" <<<"$out"; then ok "unknown command"; else not_ok "unknown command: $out"; fi

# multi-line message between """ lines
out="$(printf '"""Hello\nthere\n"""\n' | "$NSTACK" run "$phi3" --chat -n 6 --temp 0 2>/dev/null)"
multi="$("$NSTACK" run "$phi3" $'<|user|>\nHello\nthere<|end|>\n<|assistant|>\n' -n 6 --temp 0)"
expect_eq "multi-line message" "$multi" "$(sed -n 1p <<<"$out")"

# a built-in format by name, and a bad name
out="$(printf 'Hi\n' | "$NSTACK" run "$phi3" --chat --template chatml -n 4 --temp 0 2>/dev/null)"
one="$("$NSTACK" run "$phi3" $'<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n' -n 4 --temp 0)"
expect_eq "--template chatml" "$one" "$(sed -n 1p <<<"$out")"
expect_fail "unknown --template" 2 "unknown --template" -- "$NSTACK" run "$phi3" --chat --template nope

# a model without a template: the chat continues one text
out="$(printf 'Once upon a time\n/bye\n' | "$NSTACK" run "$SHARED/models/stories260K.gguf" --chat -n 8 --temp 0 2>"$TMP/err")"
expect_eq "no template: plain continuation" "$("$NSTACK" run "$SHARED/models/stories260K.gguf" "Once upon a time" -n 8 --temp 0)" "$(sed -n 1p <<<"$out")"
if grep -q "no chat template" "$TMP/err"; then ok "says the model has no template"; else not_ok "no-template notice"; fi
finish
