#!/usr/bin/env bash
# `nstack run` sampling options on the real stories260K model: stop
# sequences, logit bias, Mirostat, penalties, and the range checks of every
# new option (exit 2, naming the option).
. "$(dirname "$0")/lib.bash"
need_shared models/stories260K.gguf
need_shared models/refs/stories260K-once-upon-a-time-200.txt
M="$SHARED/models/stories260K.gguf"
ref="$(cat "$SHARED/models/refs/stories260K-once-upon-a-time-200.txt")"
expected="${ref#<s> Once upon a time}"
run() { "$NSTACK" run "$M" "Once upon a time" "$@"; }

# stop sequences: the text before the first one to complete, never the stop itself
expect_eq "--stop cuts before the stop text" ", there was a little girl named " "$(run -n 200 --temp 0 --stop Lily)"
expect_eq "several --stop: the first to complete wins" ", there was a little " \
    "$(run -n 200 --temp 0 --stop Lily --stop "girl named" --stop "zzz")"
expect_eq "a stop across tokens" ", there was a little girl named Lily. She loved to play" \
    "$(run -n 200 --temp 0 --stop " outside in the park")"
expect_eq "a stop that never comes changes nothing" "$expected" "$(run -n 200 --temp 0 --stop "#never#")"

# logit bias: -inf bans, a large bias forces
out="$(run -n 60 --temp 0 --logit-bias 317=-inf)"
case "$out" in
*Lily*) not_ok "banned token 317 (Lily) still appears: $out" ;;
*) ok "--logit-bias 317=-inf bans the token" ;;
esac
expect_eq "--logit-bias 317=20 forces the token" " Lily Lily Lily" "$(run -n 3 --temp 0 --logit-bias 317=20)"

# every sampling mode is reproducible under a seed
for opts in "--mirostat 1" "--mirostat 2 --mirostat-tau 3 --mirostat-eta 0.2" \
            "--min-p 0.1 --typical-p 0.9" \
            "--repeat-penalty 1.5 --repeat-last-n -1 --presence-penalty 0.5 --frequency-penalty 0.5"; do
    # shellcheck disable=SC2086
    a="$(run -n 40 --temp 0.9 --seed 7 $opts)"
    # shellcheck disable=SC2086
    b="$(run -n 40 --temp 0.9 --seed 7 $opts)"
    if [ -n "$a" ] && [ "$a" == "$b" ]; then ok "reproducible: $opts"; else not_ok "not reproducible: $opts"; fi
done

# range checks name the option
expect_fail "top-p above 1" 2 "--top-p" -- "$NSTACK" run "$M" hi --top-p 1.5
expect_fail "min-p above 1" 2 "--min-p: min_p must be in [0, 1], got 2" -- "$NSTACK" run "$M" hi --min-p 2
expect_fail "typical-p below 0" 2 "--typical-p" -- "$NSTACK" run "$M" hi --typical-p -1
expect_fail "repeat-penalty 0" 2 "--repeat-penalty" -- "$NSTACK" run "$M" hi --repeat-penalty 0
expect_fail "repeat-last-n -2" 2 "--repeat-last-n" -- "$NSTACK" run "$M" hi --repeat-last-n -2
expect_fail "presence-penalty 3" 2 "--presence-penalty" -- "$NSTACK" run "$M" hi --presence-penalty 3
expect_fail "frequency-penalty not a number" 2 "--frequency-penalty" -- "$NSTACK" run "$M" hi --frequency-penalty x
expect_fail "mirostat 3" 2 "--mirostat: mirostat must be 0, 1 or 2, got 3" -- "$NSTACK" run "$M" hi --mirostat 3
expect_fail "mirostat-tau negative" 2 "--mirostat-tau" -- "$NSTACK" run "$M" hi --mirostat-tau -1
expect_fail "mirostat-eta 2" 2 "--mirostat-eta" -- "$NSTACK" run "$M" hi --mirostat-eta 2
expect_fail "logit-bias without =" 2 "--logit-bias" -- "$NSTACK" run "$M" hi --logit-bias 5
expect_fail "logit-bias +inf" 2 "--logit-bias" -- "$NSTACK" run "$M" hi --logit-bias 3=inf
expect_fail "logit-bias outside the vocabulary" 2 "--logit-bias: logit_bias token 512 is outside the vocabulary" \
    -- "$NSTACK" run "$M" hi --logit-bias 512=1
expect_fail "empty stop" 2 "--stop" -- "$NSTACK" run "$M" hi --stop ""
expect_fail "stop without a value" 2 "needs a value" -- "$NSTACK" run "$M" hi --stop
finish
