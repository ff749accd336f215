#!/usr/bin/env bash
# The official `openai` and `ollama` npm client libraries against a real
# server (tests/integration/js/*.test.mjs, node's test runner): streaming and
# not, models, n, stop, seed, usage, errors, list/ps/show/copy/delete and
# keep_alive 0. Needs `npm ci --prefix tests/integration/js` (scripts/test.sh
# runs it); skips without it.
. "$(dirname "$0")/lib_server.bash"
need_shared models/stories260K.gguf
js="$(cd "$(dirname "$0")/js" && pwd)"
if ! command -v node >/dev/null 2>&1; then
    echo "SKIP: node is not installed"
    exit 77
fi
if [ ! -d "$js/node_modules/openai" ] || [ ! -d "$js/node_modules/ollama" ]; then
    echo "SKIP: run npm ci in tests/integration/js"
    exit 77
fi

# One thread: the models are tiny, and on a busy 2-core machine the per-layer
# barriers of two threads only slow them down.
start_server --threads 1 || exit 1
# One test file at a time: the keep_alive test expects /api/ps to empty.
if NSTACK_URL="$BASE" NSTACK_SHARED="$(cd "$SHARED" && pwd)" \
    node --test --test-concurrency=1 --test-reporter=spec "$js/openai.test.mjs" "$js/ollama.test.mjs"; then
    ok "openai and ollama clients"
else
    not_ok "openai and ollama clients"
    server_log
fi
stop_server
finish
