#!/usr/bin/env bash
# `nstack doctor`: on this machine (--json parses, exit 0 whatever it
# finds, a GPU verdict, the server check against a real server), and on
# fake machines built under NSTACK_DOCTOR_ROOT: WSL2 without the Windows
# driver's libcuda (the "restart WSL" hint, --strict exits 1), WSL2 with it,
# a Linux driver's version file, a machine with no NVIDIA GPU at all.
. "$(dirname "$0")/lib_server.bash"

start_server || exit 1

# ---- 1. this machine ----
"$NSTACK" doctor --json --host "$BASE" >"$RESP"
expect_eq "exit 0" 0 "$?"
expect_json "checks, each with a known status" '[.checks[].status | IN("ok","warn","fail","info")] | all' true
expect_json "the checks" '[.checks[].id] | join(",")' "wsl,driver,nvml,cuda,devices,cpu,server"
expect_json "a GPU verdict" '.gpu.summary | length > 0' true
expect_json "the server check finds ours" '.checks[] | select(.id == "server") | .status' ok
expect_json "a hint is a string or null" '[.checks[].hint | type | IN("string","null")] | all' true
if [ "$(jq -r .gpu.usable "$RESP")" == false ]; then
    expect_json "no GPU: it says why" '.gpu.summary | startswith("no GPU will be used: ")' true
fi
out="$("$NSTACK" doctor --host 127.0.0.1:1)"
expect_eq "text: exit 0" 0 "$?"
grep -q '^GPU: ' <<<"$out" && ok "text: the GPU line" || not_ok "text: no GPU line: $out"
grep -Eq '^\[info\] nstack server +not reachable' <<<"$out" && ok "text: no server is info" ||
    not_ok "text: the server line: $out"
grep -Eq '^\[(ok  |warn)\] CPU features +features:' <<<"$out" && ok "text: the CPU line" ||
    not_ok "text: the CPU line: $out"

# ---- 2. fake machines ----
doctor_in() { NSTACK_DOCTOR_ROOT="$1" "$NSTACK" doctor --host 127.0.0.1:1 "${@:2}"; }
check_field() { jq -r ".checks[] | select(.id == \"$1\") | .$2" "$RESP"; }

# WSL2 without libcuda
W="$TMP/wsl"
mkdir -p "$W/proc" "$W/dev" "$W/usr/lib/wsl/lib"
echo "Linux version 5.15.153.1-microsoft-standard-WSL2 (root@buildhost) (gcc) #1 SMP" >"$W/proc/version"
touch "$W/dev/dxg"
doctor_in "$W" --json >"$RESP"
expect_eq "WSL without libcuda: exit 0" 0 "$?"
expect_eq "WSL without libcuda: fail" fail "$(check_field wsl status)"
case "$(check_field wsl hint)" in
*"restart WSL after installing the Windows driver"*) ok "WSL without libcuda: the restart hint" ;;
*) not_ok "WSL without libcuda: hint: $(check_field wsl hint)" ;;
esac
expect_json "WSL without libcuda: no GPU, and why" '.gpu.summary | test("WSL2 without the Windows driver.s libcuda")' true
expect_eq "WSL: device nodes are not expected" info "$(check_field devices status)"
doctor_in "$W" --strict >/dev/null
expect_eq "--strict with a failed check exits 1" 1 "$?"
out="$(doctor_in "$W")"
grep -q "fix: .*restart WSL after installing the Windows driver" <<<"$out" && ok "text: the hint" ||
    not_ok "text: no hint: $out"

# WSL2 with the Windows driver's libcuda
touch "$W/usr/lib/wsl/lib/libcuda.so"
doctor_in "$W" --json >"$RESP"
expect_eq "WSL with libcuda: ok" ok "$(check_field wsl status)"

# WSL 1: Microsoft kernel, no /dev/dxg
W1="$TMP/wsl1"
mkdir -p "$W1/proc"
echo "Linux version 4.4.0-19041-Microsoft (Microsoft@Microsoft.com)" >"$W1/proc/version"
doctor_in "$W1" --json >"$RESP"
expect_eq "WSL 1: warn" warn "$(check_field wsl status)"

# a Linux driver (no NVML library in the tree: it says so)
D="$TMP/driver"
mkdir -p "$D/proc/driver/nvidia" "$D/dev" "$D/usr/bin"
echo "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.14  Thu Feb 22 01:44:30 UTC 2024" \
    >"$D/proc/driver/nvidia/version"
echo "Linux version 6.1.0-18-amd64 (debian-kernel@lists.debian.org)" >"$D/proc/version"
printf '#!/bin/sh\nexit 0\n' >"$D/usr/bin/nvidia-smi"
chmod +x "$D/usr/bin/nvidia-smi"
touch "$D/dev/nvidiactl" "$D/dev/nvidia0"
chmod 666 "$D/dev/nvidiactl" "$D/dev/nvidia0"
doctor_in "$D" --json >"$RESP"
expect_eq "driver: ok" ok "$(check_field driver status)"
case "$(check_field driver detail)" in
*"kernel module 550.54.14 loaded"*"nvidia-smi at /usr/bin/nvidia-smi"*) ok "driver: the version and nvidia-smi" ;;
*) not_ok "driver: detail: $(check_field driver detail)" ;;
esac
expect_eq "driver: not WSL" info "$(check_field wsl status)"
expect_eq "driver without NVML: fail" fail "$(check_field nvml status)"
expect_eq "driver: the device nodes" ok "$(check_field devices status)"
expect_json "driver without NVML: no GPU, and why" '.gpu.summary | test("libnvidia-ml.so.1 cannot be loaded")' true
rm "$D/usr/bin/nvidia-smi"
doctor_in "$D" --json >"$RESP"
expect_eq "driver without nvidia-smi: warn" warn "$(check_field driver status)"

# no NVIDIA GPU on the PCI bus, no driver
N="$TMP/none"
mkdir -p "$N/proc" "$N/sys/bus/pci/devices/0000:00:02.0"
echo "Linux version 6.1.0" >"$N/proc/version"
echo 0x8086 >"$N/sys/bus/pci/devices/0000:00:02.0/vendor"
echo 0x030000 >"$N/sys/bus/pci/devices/0000:00:02.0/class"
doctor_in "$N" --json >"$RESP"
expect_eq "no NVIDIA GPU: driver info" info "$(check_field driver status)"
expect_json "no NVIDIA GPU: the verdict" '.gpu.summary | test("this machine has no NVIDIA GPU")' true
doctor_in "$N" --strict >/dev/null
expect_eq "no NVIDIA GPU: --strict still exits 0" 0 "$?"

# an NVIDIA GPU on the bus without its driver
mkdir -p "$N/sys/bus/pci/devices/0000:01:00.0"
echo 0x10de >"$N/sys/bus/pci/devices/0000:01:00.0/vendor"
echo 0x030200 >"$N/sys/bus/pci/devices/0000:01:00.0/class"
doctor_in "$N" --json >"$RESP"
expect_eq "a GPU without a driver: fail" fail "$(check_field driver status)"
case "$(check_field driver hint)" in
*"install the NVIDIA driver"*) ok "a GPU without a driver: the hint" ;;
*) not_ok "a GPU without a driver: hint: $(check_field driver hint)" ;;
esac

expect_fail "an unknown option" 2 "unknown option '--bogus'" -- "$NSTACK" doctor --bogus

stop_server
finish
