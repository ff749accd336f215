#!/usr/bin/env bash
# One command from a fresh clone: install dependencies, build, and run the
# main job with an embedded default: generate text with the real
# stories260K model from the shared folder, or, when that is absent, with a
# small random-weight model made by `nstack mkmodel`.
# Extra arguments replace the default `run` arguments, e.g.
#   scripts/start.sh run model.gguf "Why is the sky blue?" --temp 0
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" >/dev/null

if [ $# -gt 0 ]; then
    exec build/nstack "$@"
fi
shared="${NSTACK_SHARED:-../shared}"
model="$shared/models/stories260K.gguf"
if [ ! -f "$model" ]; then
    model=build/default-model.gguf
    [ -f "$model" ] || build/nstack mkmodel "$model" --dim 128 --layers 2 --heads 4 --vocab 512
    echo "(shared models not found: running a random-weight model, its text is noise)" >&2
fi
exec build/nstack run "$model" "Once upon a time" -n 128 --temp 0 --verbose
