# Shared by the bench scripts that drive a running `nstack serve`.

# server_scratch: makes a temporary directory (tmp), points the metrics
# database there (NSTACK_DB), and, on exit, stops the server whose pid the
# caller puts in server_pid and removes the directory.
server_scratch() {
    tmp="$(mktemp -d)"
    export NSTACK_DB="$tmp/nstack.db"
    server_pid=""
    trap 'if [ -n "$server_pid" ]; then kill -TERM "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null || true; fi
rm -rf "$tmp"' EXIT
}

# wait_for_server LOG PID TRIES: waits (0.1 s a try) until the server that
# writes LOG answers /api/version, and sets url; exits 1, showing the log,
# when it does not start.
wait_for_server() {
    local log="$1" pid="$2" tries="$3" port
    url=""
    for _ in $(seq "$tries"); do
        port="$(sed -n 's|.*listening on http://[^ ]*:\([0-9][0-9]*\).*|\1|p' "$log" | head -n1)"
        if [ -n "$port" ] && curl -sf "http://127.0.0.1:$port/api/version" >/dev/null; then
            url="http://127.0.0.1:$port"
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    echo "the server did not start:" >&2
    cat "$log" >&2
    exit 1
}
