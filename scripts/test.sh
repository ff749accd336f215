#!/usr/bin/env bash
# Every test, as CI runs them: a warnings-as-errors release build with the
# whole suite, then the unit and CLI tests again under AddressSanitizer and
# UndefinedBehaviorSanitizer (clang) with the fuzz corpora replayed, then
# 30 s of fresh fuzzing each for the GGUF, snapshot and TOML parsers. Tests
# that need ../shared (or $NSTACK_SHARED) skip, saying so, when it is absent.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh
jobs=$(nproc)
if [ -z "${NSTACK_SHARED:-}" ] && [ -d ../shared ]; then
    NSTACK_SHARED="$(cd ../shared && pwd)"
fi
export NSTACK_SHARED="${NSTACK_SHARED:-}"

# The openai and ollama npm clients for tests/integration/test_js_clients.sh
# and playwright-core for test_dashboard.sh (it drives the system chromium),
# installed from the lock file only when it changed since the last install.
js=tests/integration/js
if command -v npm >/dev/null && ! cmp -s "$js/package-lock.json" "$js/node_modules/.nstack-installed-lock"; then
    echo "== npm ci in $js"
    if npm ci --prefix "$js" --no-audit --no-fund --loglevel=error; then
        cp "$js/package-lock.json" "$js/node_modules/.nstack-installed-lock"
    elif [ -n "${CI:-}" ]; then
        echo "npm ci failed: CI needs the openai and ollama clients and playwright-core"; exit 1
    else
        echo "warning: npm ci failed; the JS client and dashboard tests will be skipped"
    fi
fi

echo "== release build (-Werror) and full suite"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DNSTACK_WERROR=ON >/dev/null
cmake --build build -j"$jobs"
(cd build && ctest --output-on-failure -j"$jobs")

echo "== ASan + UBSan build (clang), unit and CLI tests, fuzz corpus replay"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNSTACK_SANITIZE=ON -DNSTACK_WERROR=ON \
      -DNSTACK_FUZZ=ON -DCMAKE_C_COMPILER=clang >/dev/null
cmake --build build-asan -j"$jobs"
(cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --output-on-failure -j"$jobs")

echo "== 30 s of fresh GGUF fuzzing on a copy of the corpus"
fz="$(mktemp -d)"
trap 'rm -rf "$fz"' EXIT
cp tests/fuzz/corpus/gguf/* "$fz/"
mkdir -p "$fz/artifacts"
build-asan/tests/fuzz/fuzz_gguf -max_total_time=30 -max_len=65536 -timeout=10 -dict=tests/fuzz/gguf.dict \
    -artifact_prefix="$fz/artifacts/" -print_final_stats=1 "$fz" 2>&1 | tail -n 3
if ls "$fz"/artifacts/* >/dev/null 2>&1; then
    echo "fuzzing found a failing input:"; ls "$fz"/artifacts/
    exit 1
fi

echo "== 30 s of fresh snapshot fuzzing on a copy of the corpus"
fs="$(mktemp -d)"
ft="$(mktemp -d)"
trap 'rm -rf "$fz" "$fs" "$ft"' EXIT
cp tests/fuzz/corpus/snapshot/* "$fs/"
mkdir -p "$fs/artifacts"
build-asan/tests/fuzz/fuzz_snapshot -max_total_time=30 -max_len=16384 -timeout=10 \
    -artifact_prefix="$fs/artifacts/" -print_final_stats=1 "$fs" 2>&1 | tail -n 3
if ls "$fs"/artifacts/* >/dev/null 2>&1; then
    echo "fuzzing found a failing input:"; ls "$fs"/artifacts/
    exit 1
fi

echo "== 30 s of fresh TOML fuzzing on a copy of the corpus (router and profile configs)"
cp tests/fuzz/corpus/toml/* "$ft/"
mkdir -p "$ft/artifacts"
build-asan/tests/fuzz/fuzz_toml -max_total_time=30 -max_len=8192 -timeout=10 \
    -artifact_prefix="$ft/artifacts/" -print_final_stats=1 "$ft" 2>&1 | tail -n 3
if ls "$ft"/artifacts/* >/dev/null 2>&1; then
    echo "fuzzing found a failing input:"; ls "$ft"/artifacts/
    exit 1
fi
