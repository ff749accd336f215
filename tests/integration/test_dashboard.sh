#!/usr/bin/env bash
# The dashboard (web/, docs/dashboard.md) end to end in headless Chromium:
# tests/integration/js/dashboard.test.mjs drives the system's chromium with
# playwright-core. Needs chromium (scripts/deps.sh installs it) and
# `npm ci --prefix tests/integration/js` (scripts/test.sh runs it); skips
# without them. Screenshots go to $NSTACK_ARTIFACTS, else
# ${TMPDIR:-/tmp}/nstack-artifacts.
. "$(dirname "$0")/lib_server.bash"
js="$(cd "$(dirname "$0")/js" && pwd)"
if ! command -v node >/dev/null 2>&1; then
    echo "SKIP: node is not installed"
    exit 77
fi
chromium="${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}"
if [ -z "$chromium" ] || [ ! -x "$chromium" ]; then
    echo "SKIP: chromium is not installed (scripts/deps.sh installs it)"
    exit 77
fi
if [ ! -d "$js/node_modules/playwright-core" ]; then
    echo "SKIP: run npm ci in tests/integration/js (playwright-core)"
    exit 77
fi

# The page's own files, as curl sees them: the CSP, ETag and 304.
# its own snapshot directory: the test saves one
start_server --threads 1 --snapshots "$TMP/snapshots" || exit 1
expect_status "GET / is the page" 200 GET /
if grep -q '<script src="/ui/app.js"' "$RESP"; then ok "the page loads /ui/app.js"; else not_ok "the page loads /ui/app.js"; fi
hdr="$(curl -s -D - -o /dev/null "$BASE/ui/app.js" | tr -d '\r')"
expect_eq "app.js Content-Type" "text/javascript; charset=utf-8" "$(awk -F': ' 'tolower($1)=="content-type"{print $2}' <<<"$hdr")"
expect_eq "app.js Cache-Control" "no-cache" "$(awk -F': ' 'tolower($1)=="cache-control"{print $2}' <<<"$hdr")"
expect_eq "app.js CSP" "default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'" \
    "$(awk -F': ' 'tolower($1)=="content-security-policy"{print $2}' <<<"$hdr")"
etag="$(awk -F': ' 'tolower($1)=="etag"{print $2}' <<<"$hdr")"
if [[ "$etag" =~ ^\"[0-9a-f]{32}\"$ ]]; then ok "strong ETag $etag"; else not_ok "ETag is '$etag'"; fi
expect_eq "If-None-Match gets 304" 304 "$(curl -s -o /dev/null -w '%{http_code}' -H "If-None-Match: $etag" "$BASE/ui/app.js")"
expect_eq "another ETag gets 200" 200 "$(curl -s -o /dev/null -w '%{http_code}' -H 'If-None-Match: "0"' "$BASE/ui/app.js")"
expect_eq "HEAD /ui/app.css" 200 "$(curl -s -o /dev/null -w '%{http_code}' -I "$BASE/ui/app.css")"
expect_status "an unknown file is 404" 404 GET /ui/nothing.js
expect_status "no path escapes web/" 404 GET /ui/..%2f..%2fCMakeLists.txt

if NSTACK_URL="$BASE" CHROMIUM="$chromium" node --test --test-reporter=spec "$js/dashboard.test.mjs"; then
    ok "dashboard in headless Chromium"
else
    not_ok "dashboard in headless Chromium"
    server_log
fi
stop_server
finish
