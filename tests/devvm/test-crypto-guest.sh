#!/usr/bin/env bash
# TAP test: devvm-crypto driven by an unmodified Linux guest through its
# own kernel driver (docs/devvm/crypto.rst, "The Linux driver"), with the
# device provided by devvm-coordinator: in a device VM on a reserved
# core, and again as a process-mode device.
#
# scripts/devvm/fetch-guest.sh gives Debian's kernel and an initramfs
# with busybox, lspci, the devvm_crypto module (built out of tree against
# the matching linux-headers package) and crypto-check; the guest loads
# the driver (the crypto manager self-tests sha256-devvm), then
# crypto-check checks /proc/crypto, lspci -vv, AF_ALG hashes of every
# size against sha256-generic and sha256sum, threads, and measures the
# throughput of both.  Then the fault: the device VM is killed with
# SIGKILL while the guest hashes; a hash must fail with an error (no
# crash, no hang), the coordinator restarts the device VM, and a later
# hash must succeed.
#
#   test-crypto-guest.sh QEMU_BUILDDIR COORDINATOR CTL GATEWAY KVM_PROBE
#                        CRYPTO CRYPTO_VM
#
# $DEVVM_GUEST_TIMEOUT (default 300) bounds each guest wait in seconds.
# Skipped only when no kernel is cached and the archive is out of reach.
#
# SPDX-License-Identifier: GPL-2.0-or-later

set -u
export LC_ALL=C

usage="usage: test-crypto-guest.sh QEMU_BUILDDIR COORDINATOR CTL GATEWAY KVM_PROBE CRYPTO CRYPTO_VM"
qemu=${1:?$usage}/qemu-system-x86_64
coordinator=${2:?$usage}
ctl=${3:?$usage}
gateway=${4:?$usage}
probe=${5:?$usage}
crypto=$(realpath "${6:?$usage}")
crypto_vm=$(realpath "${7:?$usage}")
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../.." && pwd)
. "$here/tap.sh"

timeout_s=${DEVVM_GUEST_TIMEOUT:-300}
run=$tmp/run
. "$here/coord-test.sh"

# ---- the guest kernel and initramfs, the coordinator -----------------------

fetch_guest "and the initramfs, with the devvm_crypto module built against its headers" \
    --init="$top/contrib/devvm/crypto/guest/init" \
    --program="$top/contrib/devvm/crypto/guest/crypto-check.c" \
    --module-src="$top/contrib/devvm/crypto/linux" --host-program=lspci

start_coordinator "$run" --qemu "$qemu" --gateway "$gateway" \
    --kvm-probe "$probe" --accel tcg --image "$crypto_vm" \
    --process "$crypto"
ok $? "the coordinator starts with crypto as a device VM image and a process"

# describe NAME MODE [APPEND]: a q35 client with one crypto device
describe()
{
    {
        printf '[client]\nname = %s\nmachine = q35\nmemory = 512M\n' "$1"
        printf 'kernel = %s\ninitrd = %s\n' "$kernel" "$initrd"
        printf 'append = console=ttyS0 quiet panic=-1 devvm.hold %s\n' "${3:-}"
        printf '[device crypto0]\ntype = crypto\nmode = %s\n' "$2"
    } >"$tmp/$1.ini"
}

# ---- the whole flow, in a device VM and as a process -------------------------

for mode in vm process; do
    name=crypto-$mode
    describe "$name" "$mode"
    start=$(date +%s%N)
    c up "$tmp/$name.ini" >"$tmp/up.out" 2>&1
    rc=$?
    sed 's/^/#   /' "$tmp/up.out"
    ok $rc "$mode: up: the client with crypto0 ($(json '[d["mode"] + ", " + d["reservation"] for d in s["device-vms"]][0]' 2>/dev/null))"
    wait_serial "$name" '^guest: # done'
    ok $? "$mode: the guest ran its checks ($((($(date +%s%N) - start) / 1000000)) ms after up)"
    guest_results "$name" "$mode"
    c status >"$tmp/status.out" 2>&1
    sed -n '/^CLIENT  *DEVICE/,/^$/s/^/#   /p' "$tmp/status.out"
    c down "$name" >/dev/null 2>&1 && [ "$(json 'len(s["device-vms"])')" = 0 ]
    ok $? "$mode: down releases the client and the device"
done

# ---- the device VM killed while the guest hashes ---------------------------

describe crypto-fault vm devvm.fault
c up "$tmp/crypto-fault.ini" >/dev/null 2>&1
ok $? "fault: up (the guest will hash while its device VM is killed)"
wait_serial crypto-fault '^guest: # fault: hashing'
rc=$?
vm_pid=$(json 's["device-vms"][0]["vm"]["pid"]')
[ $rc = 0 ] && sleep 0.5 && kill -KILL "$vm_pid"
ok $? "fault: SIGKILL of the device VM ($vm_pid) while the guest hashes"
wait_serial crypto-fault '^guest: # done'
ok $? "fault: the guest went on to the end (no crash, no hang)"
guest_results crypto-fault fault
[ "$(json 's["device-vms"][0]["restarts"]')" = 1 ] &&
    [ "$(json 's["device-vms"][0]["state"]')" = ready ]
rc=$?
ok $rc "fault: the coordinator restarted the device VM (1 restart, loss window $(json 's["device-vms"][0].get("loss-window", "?")') s)"
if [ $rc != 0 ]; then
    # what the coordinator and the gateway saw, for the next reader
    c status 2>&1 | sed 's/^/#   status: /'
    tail -n 60 "$run/coordinator.log" | sed 's/^/#   coordinator.log: /'
    for f in "$run"/devices/*/gateway.log; do
        sed 's/^/#   gateway.log: /' "$f"
    done
    for f in "$run"/devices/*/serial.log; do
        tr -d '\0' <"$f" | tail -n 30 | sed 's/^/#   device serial.log: /'
    done
fi
tr -d '\0' <"$run/clients/crypto-fault/serial.log" | grep -a 'dmesg:.*devvm_crypto' | sed 's/^guest: /# /'
c down crypto-fault >/dev/null 2>&1
ok $? "fault: down"

stop_coordinator
echo "1..$tap_n"
tap_exit
