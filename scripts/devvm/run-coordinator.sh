#!/usr/bin/env bash
# The main job ("make run") through the coordinator: devvm-coordinator
# brings up a client VM with one device VM on a reserved core.
#
# It starts devvm-coordinator with a private run directory
# (build/run/coord-PID, mode 0700) and the devvm-testdev device image as
# its catalog, then runs "devvm-ctl up" on a client description
# (contrib/devvm/demo-guest/demo.ini, which the build copies next to
# devvm-demo.elf): the coordinator reserves a host core for a device VM
# serving devvm-testdev, starts it and its devvm-gateway, waits until it is
# READY, then starts the client QEMU with -device devvm-proxy.  The
# client's guest, devvm-demo, checks the device and prints one "demo: ok
# ..." line per check on its serial port (RUN/clients/NAME/serial.log,
# shown here); the description has no isa-debug-exit, so after its last
# line ("demo: N checks passed") the guest halts and the client stays up
# for "devvm-ctl status".  Then it prints what ran where, takes the client
# down and stops the coordinator; nothing it started is left.
#
# Exit status: 0 when the guest reported that every check passed; 1 when
# it did not (a failed check, a client that exited or a coordinator that
# refused, or no verdict within the timeout); 2 for bad usage or a missing
# build.
#
#   run-coordinator.sh [--desc=FILE] [--guest=PATH] [--timeout=SECONDS]
#                      [--qemu=PATH] [--gateway=PATH] [--device-image=PATH]
#                      [--kvm-probe=PATH] [--coordinator=PATH] [--ctl=PATH]
#
# --desc is the client description (default: the build's copy of
# demo.ini); --guest replaces its kernel (the description is then
# rewritten into the run directory).  The paths default to the build tree
# (build/qemu, build/devvm); the test suite passes the ones meson built.
#
# SPDX-License-Identifier: GPL-2.0-or-later

set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=$top/build
qemu=$build/qemu/qemu-system-x86_64
gateway=$build/devvm/tools/devvm/devvm-gateway
probe=$build/devvm/tools/devvm/devvm-kvm-probe
coordinator=$build/devvm/tools/devvm/devvm-coordinator
ctl=$build/devvm/tools/devvm/devvm-ctl
image=$build/devvm/contrib/devvm/testdev/devvm-testdev-vm.elf
desc=$build/devvm/contrib/devvm/demo-guest/demo.ini
guest=
timeout_s=120

die()
{
    echo "run: $*" >&2
    exit 2
}

usage()
{
    sed -n '/^#   run-coordinator.sh/,/^#$/s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
}

for arg in "$@"; do
    case $arg in
    --desc=?*)          desc=${arg#--desc=} ;;
    --guest=?*)         guest=${arg#--guest=} ;;
    --timeout=*)        timeout_s=${arg#--timeout=}
                        [[ $timeout_s =~ ^[1-9][0-9]*$ ]] ||
                            die "bad --timeout '$timeout_s'" ;;
    --qemu=?*)          qemu=${arg#--qemu=} ;;
    --gateway=?*)       gateway=${arg#--gateway=} ;;
    --device-image=?*)  image=${arg#--device-image=} ;;
    --kvm-probe=?*)     probe=${arg#--kvm-probe=} ;;
    --coordinator=?*)   coordinator=${arg#--coordinator=} ;;
    --ctl=?*)           ctl=${arg#--ctl=} ;;
    -h|--help)          usage; exit 0 ;;
    *)                  echo "run: bad argument '$arg'" >&2; usage >&2
                        exit 2 ;;
    esac
done
for f in "$qemu" "$gateway" "$probe" "$coordinator" "$ctl"; do
    [ -x "$f" ] || die "$f is missing: build first (make build-run)"
done
for f in "$image" "$desc" ${guest:+"$guest"}; do
    [ -f "$f" ] || die "$f is missing: build first (make build-run)"
done
qemu=$(realpath "$qemu") gateway=$(realpath "$gateway")
probe=$(realpath "$probe") image=$(realpath "$image")
desc=$(realpath "$desc")
[ -z "$guest" ] || guest=$(realpath "$guest")

. "$top/scripts/devvm/stop-proc.sh"
. "$top/scripts/devvm/coord-run.sh"
# a private run directory below build/run
coord_workdir coord
serial_copy=$work/serial.log
t0=$(date +%s%N)

cleanup()
{
    set +e
    coord_teardown
    log "whole run $(ms_since "$t0") s"
}
trap cleanup EXIT
trap 'echo "devvm: interrupted" >&2; exit 1' INT TERM HUP
trap '' PIPE

# 1. The coordinator, its catalog the one device image.
coord_start --qemu "$qemu" --gateway "$gateway" --kvm-probe "$probe" \
    --image "$image" || exit 1

# 2. The client, with its device VM.
if [ -n "$guest" ]; then
    sed "s|^kernel[[:space:]]*=.*|kernel = $guest|" "$desc" >"$work/client.ini"
    desc=$work/client.ini
fi
coord_up "$desc" || exit 1

# 3. The guest's verdict, from its serial port.  tail follows the file
# even once the coordinator removed it (a client that exited).
tail -n +1 -s 0.1 -f --pid="$client_pid" "$run/clients/$client/serial.log" \
    >"$serial_copy" 2>/dev/null &
tail_pid=$!
coord_wait_guest '^demo: [0-9]+ checks passed' "$serial_copy"
if [ "$verdict" = exited ]; then
    wait "$tail_pid" 2>/dev/null || true
else
    kill -TERM "$tail_pid" 2>/dev/null || true
    wait "$tail_pid" 2>/dev/null || true
fi
tail_pid=
log "guest serial output ($run/clients/$client/serial.log):"
cat "$serial_copy"

# 4. What ran where.
if [ "$verdict" = found ]; then
    log "status:"
    c status | sed 's/^/ /'
    coord_report "$client"
fi

summary=$(grep -E '^demo: [0-9]+ checks passed' "$serial_copy" | tail -n 1) ||
    true
log "result: ${summary:-no verdict from the guest}, $t_verdict s after up"

# 5. Down, then judge (the coordinator is stopped on exit).
if [ "$verdict" = exited ]; then
    # the coordinator logs the exit once it has reaped the client
    for ((i = 0; i < 20; i++)); do
        how=$(sed -n "s/.*(pid $client_pid) \(.*\)/\1/p" \
              "$run/coordinator.log" 2>/dev/null | tail -n 1)
        [ -z "$how" ] || break
        sleep 0.1
    done
    client=
    log "FAILED: the client's QEMU ${how:-exited} before the guest" \
        "reported its checks"
    exit 1
fi
if [ -z "$verdict" ]; then
    log "FAILED: no verdict from the guest within ${timeout_s} s"
    exit 1
fi
log "down:"
c down "$client" | sed 's/^/ /'
client=
if [[ $summary =~ ^demo:\ [0-9]+\ checks\ passed$ ]] &&
    ! grep -q '^demo: FAIL' "$serial_copy"; then
    log "OK: the coordinator placed the device VM and the client, and the" \
        "guest passed every check through devvm-proxy"
    exit 0
fi
log "FAILED: the guest reported failed checks ($summary)"
exit 1
