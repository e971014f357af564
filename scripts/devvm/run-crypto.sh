#!/usr/bin/env bash
# The main job ("make run"): an accelerator that does not exist yet,
# driven by an unmodified Linux guest through its own kernel driver.
#
# 1. The guest: Debian's kernel (fetched and cached by fetch-guest.sh)
#    and an initramfs with busybox, lspci, the devvm_crypto driver
#    (contrib/devvm/crypto/linux, built against the matching
#    linux-headers package) and crypto-check.
# 2. devvm-coordinator, its catalog the devvm-crypto device VM image and
#    process-mode binary; "devvm-ctl up" of a q35 client with one crypto
#    device: the coordinator reserves a host core, starts the device VM
#    (or the process, --device=process) and its gateway, waits until it
#    is READY, then boots the client.
# 3. The guest loads the driver (the kernel's crypto manager self-tests
#    sha256-devvm as it registers), then crypto-check: /proc/crypto,
#    lspci -vv, AF_ALG SHA-256 of 0 B to 16 MiB against sha256-generic
#    and sha256sum, threads, the driver unbound and bound again under
#    load, rmmod and modprobe, a hostile driver's malformed descriptors,
#    and the throughput of the accelerator next to sha256-generic.  Its
#    lines are shown as they come.
# 4. A report: what ran where, the results, the throughput, the times;
#    then down, the coordinator stopped, nothing left.
#
# The last line is "devvm: PASS: ..." or "devvm: FAIL: why".  Exit
# status: 0 when every check in the guest passed; 1 when one did not
# (or no verdict came within the timeout, or the coordinator refused); 2
# for bad usage or a missing build.
#
#   run-crypto.sh [--device=vm|process] [--timeout=SECONDS] [--qemu=PATH]
#                 [--gateway=PATH] [--kvm-probe=PATH] [--coordinator=PATH]
#                 [--ctl=PATH] [--crypto=PATH] [--crypto-image=PATH]
#
# The paths default to the build tree (build/qemu, build/devvm).
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
crypto=$build/devvm/contrib/devvm/crypto/devvm-crypto
crypto_image=$build/devvm/contrib/devvm/crypto/devvm-crypto-vm.elf
device=vm
timeout_s=300

die()
{
    echo "run: $*" >&2
    exit 2
}

usage()
{
    sed -n '/^#   run-crypto.sh/,/^#$/s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
}

for arg in "$@"; do
    case $arg in
    --device=vm|--device=process) device=${arg#--device=} ;;
    --timeout=*)        timeout_s=${arg#--timeout=}
                        [[ $timeout_s =~ ^[1-9][0-9]*$ ]] ||
                            die "bad --timeout '$timeout_s'" ;;
    --qemu=?*)          qemu=${arg#--qemu=} ;;
    --gateway=?*)       gateway=${arg#--gateway=} ;;
    --kvm-probe=?*)     probe=${arg#--kvm-probe=} ;;
    --coordinator=?*)   coordinator=${arg#--coordinator=} ;;
    --ctl=?*)           ctl=${arg#--ctl=} ;;
    --crypto=?*)        crypto=${arg#--crypto=} ;;
    --crypto-image=?*)  crypto_image=${arg#--crypto-image=} ;;
    -h|--help)          usage; exit 0 ;;
    *)                  echo "run: bad argument '$arg'" >&2; usage >&2
                        exit 2 ;;
    esac
done
for f in "$qemu" "$gateway" "$probe" "$coordinator" "$ctl" "$crypto"; do
    [ -x "$f" ] || die "$f is missing: build first (make build-run)"
done
[ -f "$crypto_image" ] || die "$crypto_image is missing: build first"
qemu=$(realpath "$qemu") gateway=$(realpath "$gateway")
probe=$(realpath "$probe") crypto=$(realpath "$crypto")
crypto_image=$(realpath "$crypto_image")

. "$top/scripts/devvm/stop-proc.sh"
. "$top/scripts/devvm/coord-run.sh"
# a private run directory below build/run
coord_workdir crypto
serial=$work/serial.log
verdict_line=
t0=$(date +%s%N)

cleanup()
{
    set +e
    coord_teardown
    [ -n "$verdict_line" ] || log "whole run $(ms_since "$t0") s"
    # the verdict is the last line
    [ -z "$verdict_line" ] || echo "$verdict_line"
}
trap cleanup EXIT
trap 'echo "devvm: interrupted" >&2; exit 1' INT TERM HUP
trap '' PIPE

# 1. The guest's kernel and initramfs.
log "guest: Debian's kernel, and an initramfs with the devvm_crypto" \
    "driver built against its headers"
t=$(date +%s%N)
rc=0
"$top/scripts/devvm/fetch-guest.sh" --output="$work/guest" \
    --init="$top/contrib/devvm/crypto/guest/init" \
    --program="$top/contrib/devvm/crypto/guest/crypto-check.c" \
    --module-src="$top/contrib/devvm/crypto/linux" \
    --host-program=lspci >"$work/fetch.out" 2>"$work/fetch.err" || rc=$?
sed 's/^fetch-guest: / /' "$work/fetch.err" | grep -v '^Skipping BTF' || true
if [ $rc -ne 0 ]; then
    log "FAILED: no guest kernel (fetch-guest.sh exited with $rc)"
    exit 1
fi
kernel=$(sed -n 's/^kernel=//p' "$work/fetch.out")
initrd=$(sed -n 's/^initrd=//p' "$work/fetch.out")
package=$(sed -n 's/^package=//p' "$work/fetch.out")
log "guest ready in $(ms_since "$t") s: $package"

# 2. The coordinator and the client.
coord_start --qemu "$qemu" --gateway "$gateway" --kvm-probe "$probe" \
    --image "$crypto_image" --process "$crypto" || exit 1
desc=$work/crypto.ini
cat >"$desc" <<EOF
# the main job's client: Debian's kernel, one devvm-crypto accelerator
[client]
name = crypto
machine = q35
memory = 512M
kernel = $kernel
initrd = $initrd
# devvm.hold: the guest waits, once done, for this script to take it down
append = console=ttyS0 quiet panic=-1 devvm.hold

[device crypto0]
type = crypto
mode = $device
EOF
coord_up "$desc" || exit 1
t_running=$(ms_since "$t_up")

# 3. The guest's lines, as they come.  tail follows the console file (it
# lives in the coordinator's run directory); the lines are shown from a
# cleaned copy (no CR, no NUL).
log "guest (console of client $client):"
raw=$work/console.raw
: >"$raw"
tail -n +1 -s 0.1 -f --pid="$client_pid" "$run/clients/$client/serial.log" \
    >>"$raw" 2>/dev/null &
tail_pid=$!
shown=0
show_new()
{
    local n

    tr -d '\r\0' <"$raw" >"$serial"
    n=$(wc -l <"$serial")
    if [ "$n" -gt "$shown" ]; then
        sed -n "$((shown + 1)),${n}s/^guest: / /p" "$serial"
        shown=$n
    fi
}
coord_wait_guest '^guest: # done' "$serial" show_new
kill -TERM "$tail_pid" 2>/dev/null || true
wait "$tail_pid" 2>/dev/null || true
tail_pid=
show_new

# 4. The report.
summary=$(sed -n 's/^guest: \([0-9]* passed, [0-9]* failed\)$/\1/p' \
          "$serial" | tail -n 1)
if [ "$verdict" = found ]; then
    log "status:"
    c status | sed 's/^/ /'
    coord_report "$client"
fi
log "results:"
echo "  guest: $package; the driver's self-tests:" \
     "$(grep -q 'ok [0-9]* - sha256-devvm: .*selftest passed' "$serial" &&
        echo passed || echo 'not passed')"
echo "  guest checks: ${summary:-no verdict} ($device mode)"
sed -n 's/^guest: # throughput: /  throughput: /p' "$serial"
echo "  times: guest ready $t_running s after up, its checks done" \
     "$t_verdict s after up"
log "down:"
c down "$client" | sed 's/^/ /'
client=
stop_proc coordinator "$coord_pid" 10
coord_pid=
log "whole run $(ms_since "$t0") s"
if [ "$verdict" != found ]; then
    verdict_line="devvm: FAIL: ${verdict:+the client exited before the guest was done}${verdict:-no verdict from the guest within ${timeout_s} s}"
    exit 1
fi
if [[ $summary =~ ^[0-9]+\ passed,\ 0\ failed$ ]]; then
    verdict_line="devvm: PASS: the coordinator placed the crypto accelerator and the client; Linux drove it through its own driver, and every check passed"
    exit 0
fi
grep '^guest: not ok' "$serial" | sed 's/^guest: /  /'
verdict_line="devvm: FAIL: the guest reported failed checks ($summary)"
exit 1
