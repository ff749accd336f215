#!/usr/bin/env bash
# One command from a fresh clone: install dependencies, build, and start the
# main job, `nstack serve`, on 127.0.0.1:11434 (NSTACK_HOST changes it).
# With no model of your own, the server creates a small random-weight model
# named `demo` (its text is noise, it is there so a first request works);
# real models come by path, from the store (`nstack pull URL`), or from
# Ollama's store (~/.ollama/models).
# Arguments replace the default: `scripts/start.sh serve --host 0.0.0.0:8080`,
# `scripts/start.sh run model.gguf "Why is the sky blue?" --temp 0`.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" >/dev/null

if [ $# -gt 0 ]; then
    exec build/nstack "$@"
fi
cat >&2 <<'MSG'
Starting nstack serve. Try, from another terminal:
  curl http://127.0.0.1:11434/api/generate -d '{"model": "demo", "prompt": "Hello", "stream": false}'
  curl http://127.0.0.1:11434/v1/chat/completions -d '{"model": "demo", "messages": [{"role": "user", "content": "Hi"}]}'
  build/nstack run --host 127.0.0.1:11434 demo "Once upon a time" -n 32
MSG
exec build/nstack serve
