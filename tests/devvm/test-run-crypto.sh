#!/usr/bin/env bash
# TAP test: the main job, scripts/devvm/run-crypto.sh ("make run"), with
# the device in a device VM and as a process: it must end with OK and
# exit 0, its report must say what ran where, that the driver's
# self-tests passed and every guest check passed, with the throughput of
# both hashes; and nothing it started may be left (no process, no run
# directory).
#
#   test-run-crypto.sh QEMU_BUILDDIR COORDINATOR CTL GATEWAY KVM_PROBE
#                      CRYPTO CRYPTO_VM
#
# SPDX-License-Identifier: GPL-2.0-or-later

set -u

usage="usage: test-run-crypto.sh QEMU_BUILDDIR COORDINATOR CTL GATEWAY KVM_PROBE CRYPTO CRYPTO_VM"
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../.." && pwd)
. "$here/tap.sh"
paths=(--qemu="${1:?$usage}/qemu-system-x86_64" --coordinator="${2:?$usage}"
       --ctl="${3:?$usage}" --gateway="${4:?$usage}" --kvm-probe="${5:?$usage}"
       --crypto="${6:?$usage}" --crypto-image="${7:?$usage}")

for device in vm process; do
    "$top/scripts/devvm/run-crypto.sh" --device="$device" "${paths[@]}" \
        </dev/null >"$tmp/out" 2>&1
    rc=$?
    if grep -q '^devvm: guest: ' "$tmp/out" &&
       grep -q 'fetch-guest.sh exited with 77' "$tmp/out"; then
        ok 0 "# SKIP no guest kernel can be had here"
        continue
    fi
    coord=$(sed -n 's/^devvm: coordinator \([0-9]*\) stopped (exit status 0)$/\1/p' "$tmp/out")
    [ $rc = 0 ] && [ "$(tail -n 1 "$tmp/out")" = "devvm: PASS: the coordinator placed the crypto accelerator and the client; Linux drove it through its own driver, and every check passed" ]
    ok $? "$device: run-crypto.sh ends with PASS and exits 0 ($rc)"
    [ $rc = 0 ] || sed 's/^/#   /' "$tmp/out"
    grep -qE '^  guest checks: [0-9]+ passed, 0 failed \('"$device"' mode\)$' "$tmp/out" &&
        grep -qE "^  guest: linux-image-.*; the driver's self-tests: passed$" "$tmp/out" &&
        grep -qE '^  throughput: sha256-devvm [0-9.]+ MB/s, sha256-generic [0-9.]+ MB/s' "$tmp/out" &&
        grep -qE '^  (device VM crypto-[0-9]+ \(crypto\): QEMU pid [0-9]+ \(RSS [0-9]+ MiB\), vCPU on core|device crypto-[0-9]+ \(crypto\) as a host process)' "$tmp/out"
    ok $? "$device: the report: placement, self-tests passed, every check passed, throughput"
    grep -E '^  (guest checks|throughput|times):' "$tmp/out" | sed 's/^ */# /'
    left=$(ls "$top/build/run" 2>/dev/null | grep '^crypto-' || true)
    procs=$(pgrep -f "$top/build/run/crypto-" || true)
    [ -n "$coord" ] && [ -z "$left$procs" ]
    ok $? "$device: the coordinator stopped, nothing left (${left:-no directory}, ${procs:-no process})"
done
echo "1..$tap_n"
tap_exit
