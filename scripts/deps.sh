#!/usr/bin/env bash
# Installs what building and testing neurostack needs, from Debian's
# packages. Idempotent: quiet when everything is already there.
set -euo pipefail

# chromium: the dashboard's end-to-end test (tests/integration/test_dashboard.sh).
packages=(build-essential cmake pkg-config clang libclang-rt-14-dev libcmocka-dev libcjson-dev libpcre2-dev
          libmicrohttpd-dev libcurl4-openssl-dev libssl-dev libsqlite3-dev curl jq valgrind tmux
          chromium)

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# The JS client tests need node and npm; a machine that already has them
# (e.g. from NodeSource) keeps its own, since Debian's npm would replace it.
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
[ ${#missing[@]} -eq 0 ] && exit 0

echo "scripts/deps.sh: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
