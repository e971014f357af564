#!/usr/bin/env bash
# TAP test: hot-plug through devvm-coordinator (docs/devvm/coordinator.rst,
# "Hot-plug").  A client whose guest is Debian's kernel (fetched and cached
# by scripts/devvm/fetch-guest.sh, as for test-linux-guest.sh) boots with
# no device; devvm-ctl attach launches a testdev device VM on an exclusive
# core and plugs a devvm-proxy into the running client; the guest sees the
# function appear in sysfs and drives it (BARs, MSI-X table, DMA, INTx
# through uio_pci_generic: devvm-guest-check --hotplug); the proxy's
# counters show in status; devvm-ctl detach unplugs it (the guest lets go
# through ACPI), the device VM, its core and its directory are released,
# and the guest sees the function gone.  Bad attach and detach requests
# are refused with their reasons and leave nothing behind.  Then the same
# attach on a q35 client into a root port of its hotplug-slots.
#
#   test-coordinator-hotplug.sh QEMU_BUILDDIR COORDINATOR CTL GATEWAY
#                               KVM_PROBE TESTDEV_VM
#
# $DEVVM_GUEST_TIMEOUT (default 300) bounds each guest wait in seconds.
# Skipped only when no kernel is cached and the archive is out of reach.
#
# SPDX-License-Identifier: GPL-2.0-or-later

set -u
export LC_ALL=C

usage="usage: test-coordinator-hotplug.sh QEMU_BUILDDIR COORDINATOR CTL GATEWAY KVM_PROBE TESTDEV_VM"
qemu=${1:?$usage}/qemu-system-x86_64
coordinator=${2:?$usage}
ctl=${3:?$usage}
gateway=${4:?$usage}
probe=${5:?$usage}
testdev_vm=${6:?$usage}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/tap.sh"

timeout_s=${DEVVM_GUEST_TIMEOUT:-300}
run=$tmp/run
. "$here/coord-test.sh"

# ---- the guest kernel, the coordinator ------------------------------------

fetch_guest "and the initramfs are ready"

start_coordinator "$run" --qemu "$qemu" --gateway "$gateway" \
    --kvm-probe "$probe" --accel tcg --image "$testdev_vm"
ok $? "the coordinator starts"

# describe NAME MACHINE [KEY = VALUE...]: a client with no device
describe()
{
    local name=$1 machine=$2

    shift 2
    {
        printf '[client]\nname = %s\nmachine = %s\nmemory = 512M\n' \
            "$name" "$machine"
        printf 'kernel = %s\ninitrd = %s\n' "$kernel" "$initrd"
        printf 'append = console=ttyS0 quiet panic=-1 devvm.check=hotplug\n'
        printf '%s\n' "$@"
    } >"$tmp/$name.ini"
}

# boot NAME: up with no device, until the guest waits for the function
boot()
{
    local name=$1 start

    start=$(date +%s%N)
    c up "$tmp/$name.ini" >"$tmp/up.out" 2>&1
    ok $? "$name: up with no device ($(grep -o 'is up.*' "$tmp/up.out"))"
    wait_serial "$name" '^guest: # hotplug: waiting'
    ok $? "$name: the guest booted and waits for the function ($((($(date +%s%N) - start) / 1000000)) ms after up)"
}

# hotplug NAME: attach, the guest drives it, detach, it is gone
hotplug()
{
    local name=$1 vm_pid gw_pid vm_dir core reads

    c attach "$name" td0 testdev >"$tmp/attach.out" 2>&1
    rc=$?
    sed 's/^/#   /' "$tmp/attach.out"
    ok $rc "$name: attach td0 testdev"
    grep -q "device td0: new device VM testdev-[0-9]* on exclusive core" \
        "$tmp/attach.out"
    ok $? "$name: td0 got a new device VM on an exclusive core"
    [ "$(json '[d["name"] for d in s["clients"][0]["devices"]]')" = "['td0']" ] &&
        [ "$(json 's["device-vms"][0]["users"]')" = 1 ]
    ok $? "$name: status shows td0 on the client and one user of its device VM"
    vm_pid=$(json 's["device-vms"][0]["vm"]["pid"]')
    gw_pid=$(json 's["device-vms"][0]["gateway"]["pid"]')
    vm_dir=$(json 's["device-vms"][0]["dir"]')
    core=$(json 's["device-vms"][0]["core"]')

    wait_serial "$name" '^guest: # hotplug: unplug now'
    ok $? "$name: the guest found the function and drove it"
    # the proxy's counters, as status reads them from the client's QMP
    reads=$(json '[d.get("proxy", {}).get("reads", 0) for d in s["clients"][0]["devices"]][0]')
    [ "$(json 's["clients"][0]["devices"][0]["proxy"]["state"]')" = connected ] &&
        [ "${reads:-0}" -gt 0 ]
    ok $? "$name: status has td0's proxy counters (connected, $reads reads)"

    c detach "$name" td0 >"$tmp/detach.out" 2>&1
    rc=$?
    sed 's/^/#   /' "$tmp/detach.out"
    ok $rc "$name: detach td0"
    grep -q "device VM testdev-[0-9]* released" "$tmp/detach.out"
    ok $? "$name: detach released td0's device VM"
    ! running "$vm_pid" && ! running "$gw_pid" && [ ! -e "$vm_dir" ] &&
        [ "$(json 'len(s["device-vms"])')" = 0 ] &&
        [ "$(json 's["clients"][0]["devices"]')" = "[]" ] &&
        [ -z "$(json 's["cores"]["exclusive"]')" ]
    ok $? "$name: its processes, its directory and core $core are released"

    wait_serial "$name" '^guest: # hotplug: done'
    ok $? "$name: the guest finished its checks"
    guest_results "$name" "$name guest"
    c down "$name" >/dev/null 2>&1 && [ "$(json 'len(s["clients"])')" = 0 ]
    ok $? "$name: down"
}

# ---- pc: ACPI hot-plug into the root bus ----------------------------------

describe hp pc
boot hp

# refusals first, while the client runs: each says why, nothing is left
c attach nosuch td0 testdev >"$tmp/e.out" 2>&1
[ $? = 1 ] && grep -q "no client nosuch" "$tmp/e.out"
ok $? "attach to an unknown client: $(cat "$tmp/e.out")"
c attach hp td0 nosuchtype >"$tmp/e.out" 2>&1
[ $? = 1 ] && grep -q "cannot attach device td0 to client hp: device td0: unknown type 'nosuchtype' (the catalog has: testdev)" "$tmp/e.out"
ok $? "attach of an unknown type: $(cat "$tmp/e.out")"
c attach -R shared:0 hp td0 testdev >"$tmp/e.out" 2>&1
[ $? = 1 ] && grep -q "reservation 'shared:0'; expected exclusive" "$tmp/e.out"
ok $? "attach with a bad reservation: $(cat "$tmp/e.out")"
c attach -R shared:50 hp td0 testdev >"$tmp/e.out" 2>&1
[ $? = 1 ] && grep -q "declares that it needs an exclusive core" "$tmp/e.out"
ok $? "attach of an exclusive-core type as shared: $(cat "$tmp/e.out")"
c detach hp td9 >"$tmp/e.out" 2>&1
[ $? = 1 ] && grep -q "client hp has no device td9" "$tmp/e.out"
ok $? "detach of a device the client lacks: $(cat "$tmp/e.out")"
[ "$(json 'len(s["device-vms"])')" = 0 ] &&
    [ "$(json 's["clients"][0]["devices"]')" = "[]" ] &&
    [ -z "$(ls "$run/devices" 2>/dev/null)" ]
ok $? "the refused attaches left no device VM, device or directory"

hotplug hp

# ---- q35: into a root port of its hotplug-slots ---------------------------

describe q35 q35 'hotplug-slots = 1'
boot q35
hotplug q35

stop_coordinator
echo "1..$tap_n"
tap_exit
