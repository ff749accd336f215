# Shared by the CLI tests: the binary, the shared folder, a scratch dir,
# and small assertion helpers. Tests exit 77 (ctest: skipped) when they
# need the shared folder and it is absent.
set -u
NSTACK="${NSTACK_BIN:?NSTACK_BIN must point at the nstack binary}"
SHARED="${NSTACK_SHARED:-../shared}"
TMP="$(mktemp -d "${NSTACK_TMP:-/tmp}/nstack-cli.XXXXXX" 2>/dev/null || mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
failures=0
checks=0

need_shared() {
    if [ ! -d "$SHARED/$1" ] && [ ! -f "$SHARED/$1" ]; then
        echo "SKIP: $SHARED/$1 not found (set NSTACK_SHARED to the shared folder)"
        exit 77
    fi
}

ok() { checks=$((checks + 1)); echo "ok: $1"; }
not_ok() { checks=$((checks + 1)); failures=$((failures + 1)); echo "FAIL: $1"; }

# expect_eq WHAT EXPECTED ACTUAL
expect_eq() {
    if [ "$2" == "$3" ]; then ok "$1"; else
        not_ok "$1"; echo "  expected: $2"; echo "  actual:   $3"
    fi
}

# expect_fail WHAT EXIT_CODE STDERR_SUBSTRING -- command...
# The command must exit with EXIT_CODE (not a signal), print nothing to
# stdout, and say STDERR_SUBSTRING on stderr.
expect_fail() {
    local what="$1" code="$2" msg="$3"
    shift 4
    local out err rc
    out="$("$@" 2>"$TMP/err")"; rc=$?
    err="$(cat "$TMP/err")"
    if [ "$rc" -ne "$code" ]; then
        not_ok "$what: exit $rc, expected $code"; echo "  stderr: $err"; return
    fi
    if [ -n "$out" ]; then not_ok "$what: printed to stdout: $out"; return; fi
    case "$err" in
    *"$msg"*) ok "$what" ;;
    *) not_ok "$what: stderr lacks '$msg'"; echo "  stderr: $err" ;;
    esac
}

finish() {
    echo "$((checks - failures)) passed, $failures failed"
    [ "$failures" -eq 0 ]
}
