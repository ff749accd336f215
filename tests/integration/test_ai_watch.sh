#!/usr/bin/env bash
# `nstack ai watch` in a real terminal (tmux) against a real server: the
# header, RAM line and a model after a generate; a resize redraws the frame
# for the new width; q, Ctrl-C and SIGTERM end it with the terminal
# restored (alternate screen left, cursor shown). Also its snapshot forms:
# not a terminal, --once, --json, an unreachable server.
. "$(dirname "$0")/lib_server.bash"

if ! command -v tmux >/dev/null 2>&1; then
    echo "SKIP: tmux is not installed (scripts/deps.sh installs it)"
    exit 77
fi

# a tmux server of our own, on its own socket, killed at exit
SOCK="$TMP/tmux.sock"
printf 'set -g remain-on-exit on\nset -g status off\n' >"$TMP/tmux.conf"
tm() { tmux -S "$SOCK" -f "$TMP/tmux.conf" "$@"; }
_watch_cleanup() {
    tmux -S "$SOCK" kill-server 2>/dev/null
    _server_cleanup
}
trap _watch_cleanup EXIT

start_server || exit 1
expect_status "a generate to have a model and a record" 200 POST /api/generate \
    '{"model":"demo","prompt":"hello","stream":false,"options":{"num_predict":4}}'

# wait_screen SESSION REGEX [TRIES]: until the pane (wrapped lines joined)
# matches; the capture stays in $SCREEN
SCREEN=""
wait_screen() {
    local i
    for ((i = 0; i < ${3:-100}; i++)); do
        SCREEN="$(tm capture-pane -p -J -t "$1" 2>/dev/null)"
        grep -Eq -- "$2" <<<"$SCREEN" && return 0
        sleep 0.1
    done
    return 1
}

# wait_dead SESSION: until the pane's process has ended
wait_dead() {
    local i
    for ((i = 0; i < 100; i++)); do
        [ "$(tm display-message -p -t "$1" '#{pane_dead}' 2>/dev/null)" == 1 ] && return 0
        sleep 0.1
    done
    return 1
}

# exit_status NAME: the status that the command run by watch_cmd NAME
# wrote (tmux's own #{pane_dead_status} is sometimes empty for a pane that
# exited normally, a race inside tmux 3.3)
watch_cmd() { echo "$WATCH; echo \$? >$TMP/$1.status"; }
exit_status() {
    local i
    for ((i = 0; i < 30; i++)); do
        [ -s "$TMP/$1.status" ] && break
        sleep 0.1
    done
    cat "$TMP/$1.status" 2>/dev/null
}

# max_width: the widest line of $SCREEN
max_width() { awk '{ if (length($0) > m) m = length($0) } END { print m + 0 }' <<<"$SCREEN"; }

WATCH="env TERM=xterm-256color LANG=C.UTF-8 $NSTACK ai watch --host $BASE --interval 200ms"

# ---- 1. the live view ----
tm new-session -d -s w -x 100 -y 30 "$(watch_cmd w)"
# the raw output, to see the sequences that give the terminal back (a dead
# pane's own flags say nothing about them)
tm pipe-pane -t w "cat >$TMP/w.out"
if wait_screen w 'demo:latest'; then ok "the model shows"; else
    not_ok "no model on the screen"
    echo "$SCREEN"
fi
grep -q "nstack ai watch  $BASE" <<<"$SCREEN" && ok "the header names the server" || not_ok "no header: $SCREEN"
grep -Eq '^RAM .*GiB' <<<"$SCREEN" && ok "a RAM line" || not_ok "no RAM line"
grep -q 'RECENT GENERATIONS' <<<"$SCREEN" && ok "the generations section" || not_ok "no generations section"
grep -q 'q quits' <<<"$SCREEN" && ok "the key hint at the right" || not_ok "no key hint"
w="$(max_width)"
[ "$w" -le 100 ] && ok "fits 100 columns ($w)" || not_ok "a line of $w columns in 100"
expect_eq "in the alternate screen" 1 "$(tm display-message -p -t w '#{alternate_on}')"

# ---- 2. a resize redraws for the new width ----
tm resize-window -t w -x 60 -y 30
# the RAM line's tail (its percentage) and the key hint only survive a
# redraw: the old 100-column frame, cut at 60, loses both
if wait_screen w '^RAM .*%$' 50 && grep -q 'q quits' <<<"$SCREEN"; then ok "redrawn at 60 columns"; else
    not_ok "not redrawn for 60 columns"
    echo "$SCREEN"
fi
w="$(max_width)"
[ "$w" -le 60 ] && ok "fits 60 columns ($w)" || not_ok "a line of $w columns in 60"
grep -q 'demo:latest' <<<"$SCREEN" && ok "the model still shows at 60" || not_ok "the model is gone at 60"

# ---- 3. q quits and restores the terminal ----
tm send-keys -t w q
if wait_dead w; then ok "q ends it"; else not_ok "still running after q"; fi
expect_eq "exit status 0 after q" 0 "$(exit_status w)"
expect_eq "alternate screen left after q" 0 "$(tm display-message -p -t w '#{alternate_on}')"
# restored_in FILE: the last bytes show the cursor and leave the alternate
# screen
restored_in() {
    local i
    for ((i = 0; i < 20; i++)); do
        tail -c 64 "$1" 2>/dev/null | grep -q $'\x1b\[?25h\x1b\[?1049l' && return 0
        sleep 0.1
    done
    return 1
}
restored_in "$TMP/w.out" && ok "q: cursor shown and alternate screen left in the output" ||
    not_ok "q: no restore sequence at the end: $(tail -c 64 "$TMP/w.out" | od -c | tail -n 5)"

# ---- 4. Ctrl-C quits the same way ----
tm new-session -d -s c -x 80 -y 24 "$(watch_cmd c)"
wait_screen c 'RAM ' >/dev/null
tm send-keys -t c C-c
if wait_dead c; then ok "Ctrl-C ends it"; else not_ok "still running after Ctrl-C"; fi
expect_eq "exit status 0 after Ctrl-C" 0 "$(exit_status c)"
expect_eq "alternate screen left after Ctrl-C" 0 "$(tm display-message -p -t c '#{alternate_on}')"

# ---- 5. SIGTERM: the terminal is restored before it dies ----
tm new-session -d -s t -x 80 -y 24 "exec $WATCH"
tm pipe-pane -t t "cat >$TMP/t.out"
wait_screen t 'RAM ' >/dev/null
pid="$(tm display-message -p -t t '#{pane_pid}')"
# the pane runs env, which execs nstack: the same pid
kill -TERM "$pid"
if wait_dead t; then ok "SIGTERM ends it"; else not_ok "still running after SIGTERM"; fi
expect_eq "alternate screen left after SIGTERM" 0 "$(tm display-message -p -t t '#{alternate_on}')"
restored_in "$TMP/t.out" && ok "SIGTERM: cursor shown and alternate screen left in the output" ||
    not_ok "SIGTERM: no restore sequence at the end: $(tail -c 64 "$TMP/t.out" | od -c | tail -n 5)"

# ---- 6. snapshots ----
out="$(COLUMNS=70 "$NSTACK" ai watch --host "$BASE" | cat)"
rc=$?
expect_eq "a pipe gets one snapshot, exit 0" 0 "$rc"
grep -q 'demo:latest' <<<"$out" && ok "the snapshot has the model" || not_ok "snapshot: $out"
if grep -q $'\x1b' <<<"$out"; then not_ok "escape sequences in the snapshot"; else ok "no escape sequences in a snapshot"; fi
SCREEN="$out"
w="$(max_width)"
[ "$w" -le 70 ] && ok "the snapshot follows COLUMNS ($w)" || not_ok "a snapshot line of $w columns in 70"
"$NSTACK" ai watch --host "$BASE" --json >"$RESP"
expect_json "--json: reachable" .reachable true
expect_json "--json: the model from /api/ps" '.ps.models[0].name' demo:latest
expect_json "--json: a generation" '.generations.generations | length > 0' true
out="$("$NSTACK" ai watch --host 127.0.0.1:1 --once 2>&1)"
rc=$?
expect_eq "unreachable: exit 1" 1 "$rc"
grep -q 'server: unreachable (http://127.0.0.1:1)' <<<"$out" && ok "unreachable: says so" || not_ok "unreachable: $out"
grep -Eq '^RAM ' <<<"$out" && ok "unreachable: the machine read here" || not_ok "unreachable: no RAM line: $out"
expect_fail "a bad interval" 2 "--interval must be a duration" -- "$NSTACK" ai watch --interval 1ms

stop_server
finish
