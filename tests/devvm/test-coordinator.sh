#!/usr/bin/env bash
# TAP test: devvm-coordinator and devvm-ctl with real processes
# (docs/devvm/coordinator.rst).
#
# * Figure 2 end to end: a client whose devvm-demo guest drives
#   devvm-testdev in a device VM on an exclusive core; the vCPU thread of
#   the device VM is alone on that core (/proc/PID/task/*/status), every
#   other thread the coordinator started is off it; down releases all.
# * Figure 3: testdev-shared declares 20% of a core and gets a cgroup CPU
#   quota of 20000/100000 us, read back from the cgroup files.
# * Process mode: testdev as a host process (devvm-testdev, from the
#   catalog's --process entry) on an exclusive core: all its threads on
#   that core, the client's off it, the demo guest drives it, a SIGKILL
#   under reads is followed by a restart on the same core and socket.
# * All or nothing: a good device with an unknown type, with one core too
#   many, and with a device VM that fails after it started; each reason
#   reported, and no process, socket, run directory or cgroup of that
#   request left.
# * Sharing: two clients on one shareable testdev device VM (the second
#   up reuses it, USERS 2/4), both guests drive it at once; through each
#   client's qtest socket (coordinator-share.py) one guest-physical
#   buffer holds each client's own DMA data, and B's DMA at an address
#   only A has is EFAULT with A's guard intact; the device VM killed
#   under A's reads is restarted once for both, and all that holds
#   again; down of one leaves the other working (1/4), down of the last
#   releases the device VM.  Two ups at once end on one device VM too.
# * Recovery: the device VM is killed with SIGKILL while the client reads
#   its register (coordinator-load.py); the coordinator restarts it behind
#   the same gateway on the same core, the client's reads resume and
#   status reports the restart, the reason and the loss window; then the
#   same with a device VM that hangs (SIGSTOP), reported failed by the
#   gateway's heartbeat watchdog, and with the gateway killed (both are
#   restarted; the proxy reconnects).
# * SIGKILL of the coordinator: the next one finds and reports what it
#   left (a process, cgroups, directories) and cleanup removes all of it.
# * The READY wait: a device VM held at its first instruction fails up
#   after --ready-timeout with the reason; one let go after the
#   coordinator was stopped for longer than the timeout still gets READY
#   (the wait counts seconds the coordinator ran, not wall time).
# * --device-uids (root only): the gateway and the device VM's QEMU run
#   as one uid, a process-mode device as another; neither reaches the
#   other's socket; a SIGKILLed coordinator takes them all with it.
# * A bad description through up; a stranger uid on the control socket
#   (root only); --cgroups=none says "affinity only"; SIGTERM stops all.
#
#   test-coordinator.sh QEMU_BUILDDIR COORDINATOR CTL GATEWAY KVM_PROBE
#                       TESTDEV_VM TESTDEV_SHARED_VM BROKEN_VM DEMO_ELF
#                       TESTDEV
#
# SPDX-License-Identifier: GPL-2.0-or-later

set -u

usage="usage: test-coordinator.sh QEMU_BUILDDIR COORDINATOR CTL GATEWAY KVM_PROBE TESTDEV_VM TESTDEV_SHARED_VM BROKEN_VM DEMO_ELF TESTDEV"
qemu=${1:?$usage}/qemu-system-x86_64
coordinator=${2:?$usage}
ctl=${3:?$usage}
gateway=${4:?$usage}
probe=${5:?$usage}
testdev_vm=${6:?$usage}
shared_vm=${7:?$usage}
broken_vm=${8:?$usage}
demo=$(realpath "${9:?$usage}")
testdev=$(realpath "${10:?$usage}")
here=$(dirname "${BASH_SOURCE[0]}")
. "$here/tap.sh"

run=$tmp/run
. "$here/coord-test.sh"
catalog=(--qemu "$qemu" --gateway "$gateway" --kvm-probe "$probe"
         --image "$testdev_vm" --image "$shared_vm" --image "$broken_vm"
         --process "$testdev")

# describe NAME DEVICE-GROUPS...: a client description in $tmp/NAME.ini
describe()
{
    local name=$1

    shift
    {
        printf '[client]\nname = %s\nmemory = 128M\nkernel = %s\n' \
            "$name" "$demo"
        printf '%s\n' "$@"
    } >"$tmp/$name.ini"
}

# cpus PID TID: Cpus_allowed_list of a thread
cpus()
{
    sed -n 's/^Cpus_allowed_list:[[:space:]]*//p' "/proc/$1/task/$2/status"
}

# our_procs: processes whose command line names the run directory
our_procs()
{
    local f

    for f in /proc/[0-9]*/cmdline; do
        [ "${f%/cmdline}" = "/proc/$coord_pid" ] && continue
        tr '\0' ' ' <"$f" 2>/dev/null | grep -qF "$run/" &&
            echo "${f#/proc/}"
    done | sed 's|/cmdline||'
}

# nothing_left WHAT: no client or device directory, no process started
# by the coordinator, no cgroup below the coordinator's own
nothing_left()
{
    local left procs cg

    left=$(find "$run/clients" "$run/devices" -mindepth 1 2>/dev/null)
    procs=$(our_procs)
    cg=$(for d in $cg_dirs; do find "$d" -mindepth 1 -type d; done)
    if [ -n "$left$procs$cg" ]; then
        echo "# left after $1: files: $left processes: $procs cgroups: $cg"
        return 1
    fi
    return 0
}

ncpus=$(python3 -c 'import os; print(len(os.sched_getaffinity(0)))')
last_cpu=$(python3 -c 'import os; print(max(os.sched_getaffinity(0)))')

# ---- start ------------------------------------------------------------------

start_coordinator "$run" "${catalog[@]}"
ok $? "the coordinator starts and listens on $run/control.sock"
[ "$(stat -c %a "$run/control.sock")" = 600 ] &&
    [ "$(stat -c %a "$run")" = 700 ]
ok $? "the control socket has mode 0600 in a 0700 run directory"
types=$(json '" ".join(e["type"] + ("(process)" if e["mode"] == "process" else "") for e in s["catalog"])')
[ "$types" = "testdev testdev-shared broken testdev(process)" ]
ok $? "the catalog is the images' needs notes ($types)"
cg_desc=$(json 's["cgroups"]')
cg_dirs=
case $cg_desc in
v1:*) cg_dirs=$(json '" ".join(s["cgroups"].split()[2::2])') ;;
esac
echo "# cgroups: $cg_desc"

# ---- Figure 2 end to end ----------------------------------------------------

describe demo '[device dev0]' 'type = testdev' 'reservation = exclusive'
start=$(date +%s%N)
c up "$tmp/demo.ini" >"$tmp/up.out" 2>&1
rc=$?
sed 's/^/#   /' "$tmp/up.out"
ok $rc "up: the client comes up with its device VM"
client_pid=$(json 's["clients"][0]["qemu"]["pid"]')
vm_pid=$(json 's["device-vms"][0]["vm"]["pid"]')
gw_pid=$(json 's["device-vms"][0]["gateway"]["pid"]')
core=$(json 's["device-vms"][0]["core"]')
[ "$core" = "$last_cpu" ] &&
    grep -q "device dev0: new device VM testdev-.* on exclusive core $core" \
        "$tmp/up.out"
ok $? "dev0 has exclusive core $core"

serial=$run/clients/demo/serial.log
for ((i = 0; i < 300; i++)); do
    grep -qE '^demo: [0-9]+ checks passed$' "$serial" 2>/dev/null && break
    grep -q '^demo: FAIL' "$serial" 2>/dev/null && break
    sleep 0.1
done
end=$(date +%s%N)
grep -qE '^demo: [0-9]+ checks passed$' "$serial" &&
    ! grep -q '^demo: FAIL' "$serial"
ok $? "the client's guest drove the device: $(grep -E '^demo: [0-9]+ checks' "$serial")"
echo "# up to the guest's last check: $(((end - start) / 1000000)) ms"

# the split, from /proc: the whole device VM (its vCPU, main loop and
# other threads) on its core, and one vCPU thread
on_core=1 nvcpu=0
for t in /proc/$vm_pid/task/*; do
    name=$(cat "$t/comm" 2>/dev/null) || continue
    list=$(cpus "$vm_pid" "${t##*/}")
    [[ $name == "CPU "*"/TCG" || $name == "CPU "*"/KVM" ]] &&
        nvcpu=$((nvcpu + 1))
    if [ "$list" != "$core" ]; then
        on_core=0
        echo "#   device VM thread ${t##*/} ($name) may run on $list"
    fi
done
[ $nvcpu = 1 ] && [ $on_core = 1 ]
ok $? "every thread of the device VM (1 vCPU, $(ls /proc/$vm_pid/task | wc -l) in all) runs on core $core only"
off_core=0
for pid in "$client_pid" "$gw_pid" "$coord_pid"; do
    for t in /proc/$pid/task/*; do
        list=$(cpus "$pid" "${t##*/}")
        if python3 -c "import sys
cpus = set()
for part in '$list'.split(','):
    a, _, b = part.partition('-')
    cpus.update(range(int(a), int(b or a) + 1))
sys.exit($core not in cpus)"; then
            off_core=1
            echo "#   thread ${t##*/} of $pid ($(cat "$t/comm")) may run on $list"
        fi
    done
done
[ $off_core = 0 ]
ok $? "no thread of the client ($client_pid), the gateway ($gw_pid) or the coordinator ($coord_pid) may run on core $core"

if [ -n "$cg_dirs" ]; then
    in_cg=0
    for d in $cg_dirs; do
        grep -qx "$vm_pid" "$d/testdev-"*/cgroup.procs || in_cg=1
    done
    limit=$(cat "$(echo $cg_dirs | tr ' ' '\n' | grep memory)"/testdev-*/memory.limit_in_bytes)
    [ $in_cg = 0 ] && [ "$limit" = $(((64 + 256) << 20)) ]
    ok $? "the device VM is in its cgroups; memory limit $limit (64 MiB + 256 MiB for QEMU)"
else
    ok 0 "# SKIP no writable cgroup ($cg_desc)"
fi

c status >"$tmp/status.out"
ok $? "status"
sed 's/^/#   /' "$tmp/status.out"
grep -qE "^demo +running +$client_pid " "$tmp/status.out" &&
    grep -qE "^testdev-[0-9]+ +vm +ready +1/4 +$vm_pid +$gw_pid .* $core/[0-9,-]+ +exclusive core $core$" \
        "$tmp/status.out"
ok $? "status shows the client running and the device VM on core $core"

c up "$tmp/demo.ini" >"$tmp/out" 2>&1
[ $? = 1 ] && grep -q "client demo is already up" "$tmp/out"
ok $? "a second up of the same client is refused"

# ---- recovery: SIGKILL the device VM under traffic --------------------------

# under_load PID KILL|STOP [CLIENT]: coordinator-load.py reads the
# device's ID register through the devvm-proxy of CLIENT (default demo;
# QMP, HMP xp) and signals the device VM PID after 200 reads; then wait
# (5 s at most) until the coordinator has it ready again
under_load()
{
    local rc i

    "$here/coordinator-load.py" "$run/clients/${3:-demo}/qmp.sock" "$1" "$2" \
        >"$tmp/load.out" 2>&1
    rc=$?
    sed 's/^/#   /' "$tmp/load.out"
    for ((i = 0; i < 50; i++)); do
        [ "$(json 's["device-vms"][0]["state"]')" = ready ] && break
        sleep 0.1
    done
    if [ $rc != 0 ]; then
        # what the coordinator, the gateway and the device VM saw
        tail -n 25 "$run/coordinator.log" | sed 's/^/#   coordinator.log: /'
        for f in "$run"/devices/*/gateway.log "$run"/devices/*/vm.log; do
            [ -f "$f" ] && tail -n 25 "$f" | sed "s|^|#   ${f#"$run"/devices/}: |"
        done
    fi
    return $rc
}

under_load "$vm_pid" KILL
ok $? "SIGKILL of the device VM ($vm_pid) under reads: the client's reads resume, devvm-proxy connected to the next generation"
c status >"$tmp/status.out"
sed 's/^/#   /' "$tmp/status.out"
new_vm=$(json 's["device-vms"][0]["vm"]["pid"]')
[ "$(json 's["device-vms"][0]["restarts"]')" = 1 ] &&
    [ "$(json 's["device-vms"][0]["core"]')" = "$core" ] &&
    [ "$(json 's["device-vms"][0]["gateway"]["pid"]')" = "$gw_pid" ] &&
    [ "$new_vm" != "$vm_pid" ] && kill -0 "$new_vm" &&
    json 's["device-vms"][0]["last-failure"]["reason"]' |
        grep -q "its QEMU killed by signal 9" &&
    grep -qE "^ +restarts 1/5, generation 2, last loss window [0-9.]+ s$" \
        "$tmp/status.out"
ok $? "the coordinator restarted it (pid $new_vm) on core $core behind the same gateway; status: 1 restart, the reason, loss window $(json 's["device-vms"][0]["loss-window"]') s"
vcpu_tid=$(grep -l '^CPU 0/' /proc/"$new_vm"/task/*/comm | cut -d/ -f5)
[ "$(cpus "$new_vm" "$vcpu_tid")" = "$core" ]
ok $? "the restarted device VM's vCPU thread is on core $core again"

# a hung device VM (SIGSTOP): the gateway's heartbeat watchdog reports it
# failed (3 s), the coordinator stops that QEMU and restarts it
under_load "$new_vm" STOP
ok $? "SIGSTOP of the device VM ($new_vm) under reads: the client's reads resume, devvm-proxy connected to the next generation"
vm3=$(json 's["device-vms"][0]["vm"]["pid"]')
reason=$(json 's["device-vms"][0]["last-failure"]["reason"]')
echo "#   last failure: $reason"
[ "$(json 's["device-vms"][0]["restarts"]')" = 2 ] &&
    [ "$(json 's["device-vms"][0]["gateway"]["pid"]')" = "$gw_pid" ] &&
    [ "$vm3" != "$new_vm" ] && ! kill -0 "$new_vm" 2>/dev/null &&
    [[ $reason == "the gateway reported failed: heartbeat stopped for "*" ms; its QEMU "* ]]
ok $? "the gateway reported it failed; the coordinator stopped it and restarted it (pid $vm3): 2 restarts"

# the gateway killed: the device memory is gone with it; the coordinator
# stops the device VM, starts a new gateway in the same directory and a
# new device VM, and the client's devvm-proxy reconnects (reconnect-ms)
under_load "$gw_pid" KILL
ok $? "SIGKILL of the gateway ($gw_pid) under reads: the client's reads resume, devvm-proxy reconnected"
gw2=$(json 's["device-vms"][0]["gateway"]["pid"]')
vm4=$(json 's["device-vms"][0]["vm"]["pid"]')
reason=$(json 's["device-vms"][0]["last-failure"]["reason"]')
echo "#   last failure: $reason"
[ "$(json 's["device-vms"][0]["restarts"]')" = 3 ] &&
    [ "$gw2" != "$gw_pid" ] && kill -0 "$gw2" && [ "$vm4" != "$vm3" ] &&
    [ "$(json 's["device-vms"][0]["core"]')" = "$core" ] &&
    [[ $reason == "its gateway killed by signal 9; its QEMU "* ]]
ok $? "the coordinator restarted the gateway ($gw2) and the device VM ($vm4) on core $core: 3 restarts"

c down demo >"$tmp/out" 2>&1
ok $? "down demo"
gone=0
for pid in "$client_pid" "$vm_pid" "$new_vm" "$vm3" "$vm4" "$gw_pid" "$gw2"; do
    kill -0 "$pid" 2>/dev/null && gone=1
done
[ $gone = 0 ] && nothing_left "down" && [ ! -e "$run/devices/testdev-1" ]
ok $? "after down: no process, directory, socket or cgroup of it"

# ---- sharing: two clients on one device VM (Figure 2, 204) -----------------

# testdev is shareable (4 clients): the second client's up reuses the
# running device VM.  Both demo guests drive it at once; then each
# client's qtest socket (extra-args: a client the coordinator starts is
# not otherwise under qtest) drives its own instance's DMA registers
# (coordinator-share.py): the same guest-physical buffer holds each
# client's own data, and B (128M) gets EFAULT for a FILL, COPY or
# CHECKSUM at 144M, inside A's RAM (256M) only, while A's guard there
# stays; the same again after the device VM is killed and restarted.
# down of A leaves B working on the device VM (1/4); down of B releases
# it.

# shown OUT COMMAND...: run it into OUT, show OUT, its status
shown()
{
    local out=$1 rc

    shift
    "$@" >"$out" 2>&1
    rc=$?
    sed 's/^/#   /' "$out"
    return $rc
}

share_desc()
{
    {
        printf '[client]\nname = %s\nmemory = %s\nkernel = %s\n' "$1" "$2" "$demo"
        printf 'extra-args = -qtest;unix:%s,server=on,wait=off\n' "$tmp/$1.qtest"
        printf '[device dev0]\ntype = testdev\n'
    } >"$tmp/$1.ini"
}
share_desc share-a 256M
share_desc share-b 128M
start=$(date +%s%N)
rm -f "$tmp/out-b"
c up "$tmp/share-a.ini" >"$tmp/out" 2>&1 && c up "$tmp/share-b.ini" >"$tmp/out-b" 2>&1
rc=$?
sed 's/^/#   /' "$tmp/out" "$tmp/out-b" 2>/dev/null
share_vm=$(json 's["device-vms"][0]["id"]')
[ $rc = 0 ] && [ "$(json 'len(s["device-vms"])')" = 1 ] &&
    grep -q "device dev0: new device VM $share_vm on exclusive core" "$tmp/out" &&
    grep -q "device dev0: reused device VM $share_vm on exclusive core" "$tmp/out-b"
ok $? "up share-a, up share-b: share-b reuses share-a's device VM $share_vm"
for ((i = 0; i < 300; i++)); do
    n=0
    for cl in share-a share-b; do
        grep -qE '^demo: [0-9]+ checks passed' "$run/clients/$cl/serial.log" 2>/dev/null &&
            n=$((n + 1))
    done
    [ $n = 2 ] && break
    sleep 0.1
done
for cl in share-a share-b; do
    echo "#   $cl: $(grep -E '^demo: [0-9]+ checks' "$run/clients/$cl/serial.log")"
done
grep -qE '^demo: [0-9]+ checks passed$' "$run/clients/share-a/serial.log" &&
    grep -qE '^demo: [0-9]+ checks passed$' "$run/clients/share-b/serial.log"
ok $? "both clients' guests drove the shared device at once"
c status >"$tmp/status.out"
sed -n '/^CLIENT/,$s/^/#   /p' "$tmp/status.out"
share_pid=$(json 's["device-vms"][0]["vm"]["pid"]')
grep -qE "^share-a +running +[0-9]+ .* dev0=$share_vm$" "$tmp/status.out" &&
    grep -qE "^share-b +running +[0-9]+ .* dev0=$share_vm$" "$tmp/status.out" &&
    grep -qE "^$share_vm +vm +ready +2/4 +$share_pid " "$tmp/status.out"
ok $? "status: $share_vm has USERS 2/4; both clients list it"
shown "$tmp/share.out" "$here/coordinator-share.py" both \
    "$tmp/share-a.qtest" "$tmp/share-b.qtest"
ok $? "isolation: one guest-physical buffer, each client its own data; B's DMA into A-only memory is EFAULT, A's guard intact"
# a restart of the shared device VM: SIGKILL under share-a's reads
# (coordinator-load.py); then both clients' DMA works again, isolated
shown "$tmp/load.out" "$here/coordinator-load.py" \
    "$run/clients/share-a/qmp.sock" "$share_pid" KILL
rc=$?
for ((i = 0; i < 50; i++)); do
    [ "$(json 's["device-vms"][0]["state"]')" = ready ] && break
    sleep 0.1
done
new_share=$(json 's["device-vms"][0]["vm"]["pid"]')
[ $rc = 0 ] && [ "$new_share" != "$share_pid" ] &&
    [ "$(json 's["device-vms"][0]["users"]')" = 2 ] &&
    [ "$(json 's["device-vms"][0]["restarts"]')" = 1 ] &&
    shown "$tmp/share.out" "$here/coordinator-share.py" both \
        "$tmp/share-a.qtest" "$tmp/share-b.qtest"
ok $? "SIGKILL of the shared device VM ($share_pid) under share-a's reads: restarted once ($new_share) for both; both clients' DMA works again, isolated"
share_pid=$new_share
shown "$tmp/out" c down share-a
rc=$?
c status >"$tmp/status.out"
sed -n '/^CLIENT/,$s/^/#   /p' "$tmp/status.out"
[ $rc = 0 ] && ! grep -q released "$tmp/out" &&
    grep -qE "^$share_vm +vm +ready +1/4 +$share_pid " "$tmp/status.out" &&
    ! grep -q "^share-a " "$tmp/status.out" &&
    shown "$tmp/share.out" "$here/coordinator-share.py" one \
        "$tmp/share-b.qtest"
ok $? "down share-a: $share_vm stays up (USERS 1/4, same VM pid $share_pid), share-b still does DMA"
shown "$tmp/out" c down share-b &&
    grep -q "device VM $share_vm released" "$tmp/out" &&
    ! kill -0 "$share_pid" 2>/dev/null && nothing_left "down share-b" &&
    [ "$(json 's["cores"]["exclusive"]')" = "" ]
ok $? "down share-b, the last client: the device VM is released, nothing left"

# two ups at once: the one that comes second finds the device VM the
# first started not READY yet, waits for it and shares it, rather than
# start a second one (for which no core is left)
c up "$tmp/share-a.ini" >"$tmp/out" 2>&1 &
up_a=$!
c up "$tmp/share-b.ini" >"$tmp/out-b" 2>&1
rc_b=$?
wait $up_a
rc_a=$?
sed 's/^/#   /' "$tmp/out" "$tmp/out-b"
grep -h "waits for device VM" "$run/coordinator.log" | sed 's/^/#   /'
[ $rc_a = 0 ] && [ $rc_b = 0 ] && [ "$(json 'len(s["device-vms"])')" = 1 ] &&
    [ "$(cat "$tmp/out" "$tmp/out-b" | grep -c "device dev0: new device VM")" = 1 ] &&
    [ "$(cat "$tmp/out" "$tmp/out-b" | grep -c "device dev0: reused device VM")" = 1 ]
ok $? "up share-a and up share-b at once: both up, on one device VM"
shown "$tmp/out" c down share-a && shown "$tmp/out" c down share-b &&
    nothing_left "down share-a, share-b" &&
    [ "$(json 's["cores"]["exclusive"]')" = "" ]
ok $? "down both: nothing left"
echo "# sharing: $((($(date +%s%N) - start) / 1000000)) ms"

# ---- Figure 3: a time slice --------------------------------------------------

describe slice '[device d]' 'type = testdev-shared'
c up "$tmp/slice.ini" >"$tmp/out" 2>&1
rc=$?
sed 's/^/#   /' "$tmp/out"
ok $rc "up: testdev-shared (its image declares 20% of a core)"
res=$(json 's["device-vms"][0]["reservation"]')
if [ -n "$cg_dirs" ]; then
    cpu_dir=$(echo $cg_dirs | tr ' ' '\n' | grep '/cpu/')
    quota=$(cat "$cpu_dir"/testdev-shared-*/cpu.cfs_quota_us)
    period=$(cat "$cpu_dir"/testdev-shared-*/cpu.cfs_period_us)
    [ "$quota" = 20000 ] && [ "$period" = 100000 ] &&
        [ "$res" = "shared, 20% of a core (cgroup CPU quota)" ]
    ok $? "its cgroup quota is $quota/$period us ($res)"
else
    ok 0 "# SKIP no writable cgroup ($cg_desc)"
fi
c down slice >/dev/null 2>&1 && nothing_left "down slice"
ok $? "down slice releases it"

# ---- reuse only with the same options ---------------------------------------

# Figure 2, 204: a running device VM is reused only for the same type,
# reservation and options; other options get a device VM of their own,
# started with them (-append); a third client with the first one's
# options shares the first one
describe o1 '[device d]' 'type = testdev-shared'
describe o2 '[device d]' 'type = testdev-shared' 'options = msi-vectors=4'
describe o3 '[device d]' 'type = testdev-shared'
c up "$tmp/o1.ini" >/dev/null 2>&1 && c up "$tmp/o2.ini" >/dev/null 2>&1 &&
    c up "$tmp/o3.ini" >"$tmp/out" 2>&1
rc=$?
sed 's/^/#   /' "$tmp/out"
ok $rc "up: three clients of testdev-shared, the second with options msi-vectors=4"
o_vms=$(json '" ".join(c["devices"][0]["device-vm"] for c in s["clients"])')
set -- $o_vms
o2_pid=$(json '[d["vm"]["pid"] for d in s["device-vms"] if d["id"] == "'"$2"'"][0]')
[ "$1" != "$2" ] && [ "$1" = "$3" ] &&
    [ "$(json 'len(s["device-vms"])')" = 2 ] &&
    [ "$(json '[d["users"] for d in s["device-vms"]]')" = "[2, 1]" ] &&
    tr '\0' '\n' <"/proc/$o2_pid/cmdline" | grep -qx 'msi-vectors=4' &&
    grep -q "device d: reused device VM $1" "$tmp/out"
ok $? "other options, another device VM ($2, started with -append msi-vectors=4); the same options reuse the first ($1, 2 users)"
c down o1 >/dev/null 2>&1 && c down o2 >/dev/null 2>&1 &&
    c down o3 >/dev/null 2>&1 && nothing_left "down o1 o2 o3"
ok $? "down of the three releases both device VMs"

# a full device VM: max_clients (4) users, the fifth client gets another
for n in 1 2 3 4 5; do
    describe "f$n" '[device d]' 'type = testdev-shared'
done
rc=0
for n in 1 2 3 4 5; do
    c up "$tmp/f$n.ini" >"$tmp/out" 2>&1 || { rc=1; sed 's/^/#   /' "$tmp/out"; }
done
ok $rc "up: five clients of testdev-shared (4 clients per device VM)"
f_vms=$(json '" ".join(c["devices"][0]["device-vm"] for c in s["clients"])')
set -- $f_vms
[ "$1" = "$2" ] && [ "$1" = "$3" ] && [ "$1" = "$4" ] && [ "$5" != "$1" ] &&
    [ "$(json '[d["users"] for d in s["device-vms"]]')" = "[4, 1]" ]
ok $? "the first four share $1 (users 4/4), the fifth gets $5 of its own"
rc=0
for n in 1 2 3 4 5; do
    c down "f$n" >/dev/null 2>&1 || rc=1
done
[ $rc = 0 ] && nothing_left "down f1 to f5"
ok $? "down of the five releases both device VMs"

# ---- a client that exits by itself ------------------------------------------

# its device VM is released at once; the client's record and logs stay
# until down, and up of the same name says so
describe selfexit 'extra-args = -device;isa-debug-exit,iobase=0xf4,iosize=0x04' \
    '[device d]' 'type = testdev'
c up "$tmp/selfexit.ini" >/dev/null 2>&1
ok $? "up: a client whose guest exits (isa-debug-exit) after its checks"
for ((i = 0; i < 300; i++)); do
    [ "$(json 's["clients"][0]["state"]')" = exited ] &&
        [ "$(json 'len(s["device-vms"])')" = 0 ] && break
    sleep 0.1
done
how=$(json 's["clients"][0]["qemu"].get("exit", "")')
[ "$(json 's["clients"][0]["state"]')" = exited ] && [ -n "$how" ] &&
    [ "$(json 'len(s["device-vms"])')" = 0 ]
ok $? "it exited by itself ($how): status shows it exited, its device VM is released"
c logs selfexit >"$tmp/out" 2>&1 &&
    grep -qE '^demo: [0-9]+ checks passed$' "$tmp/out"
rc=$?
ok $rc "its logs stay: devvm-ctl logs selfexit shows the guest's last words ($(grep -E '^demo: [0-9]+ checks' "$tmp/out"))"
[ $rc = 0 ] || grep '^demo: FAIL' "$tmp/out" | sed 's/^/#   /'
c up "$tmp/selfexit.ini" >"$tmp/out" 2>&1
[ $? = 1 ] && grep -qF "devvm-ctl: client selfexit $how; its logs are in $run/clients/selfexit (devvm-ctl logs selfexit); devvm-ctl down selfexit removes it" "$tmp/out"
ok $? "up of the same name is refused: $(cat "$tmp/out")"
c down selfexit >/dev/null 2>&1 && nothing_left "down selfexit"
ok $? "down removes it, nothing left"

# ---- process mode -------------------------------------------------------------

describe proc '[device dev0]' 'type = testdev' 'mode = process' \
    'reservation = exclusive'
c up "$tmp/proc.ini" >"$tmp/out" 2>&1
rc=$?
sed 's/^/#   /' "$tmp/out"
ok $rc "up: dev0 as a process-mode device on an exclusive core"
dev_pid=$(json 's["device-vms"][0]["vm"]["pid"]')
client_pid=$(json 's["clients"][0]["qemu"]["pid"]')
[ "$(json 's["device-vms"][0]["mode"]')" = process ] &&
    [ "$(json 's["device-vms"][0]["core"]')" = "$last_cpu" ] &&
    [ "$(json 's["device-vms"][0]["gateway"]["pid"]')" = 0 ] &&
    [ "$(tr '\0' ' ' <"/proc/$dev_pid/cmdline")" = "$testdev --socket $run/devices/$(json 's["device-vms"][0]["id"]')/device.sock --max-clients 4 " ]
ok $? "status: mode process, core $last_cpu, no gateway; the process is $testdev --socket RUN/devices/ID/device.sock"
dev_ok=0 client_ok=0
for t in /proc/$dev_pid/task/*; do
    [ "$(cpus "$dev_pid" "${t##*/}")" = "$last_cpu" ] || dev_ok=1
done
for t in /proc/$client_pid/task/*; do
    [ "$(cpus "$client_pid" "${t##*/}")" != "$last_cpu" ] || client_ok=1
done
[ $dev_ok = 0 ] && [ $client_ok = 0 ]
ok $? "every thread of the device process is on core $last_cpu alone, every client thread off it"
# the cpuset holds it there even against its own sched_setaffinity()
cpuset_dir=$(echo $cg_dirs | tr ' ' '\n' | grep '/cpuset/')
if [ -n "$cpuset_dir" ]; then
    [ "$(cat "$cpuset_dir"/testdev-*/cpuset.cpus)" = "$last_cpu" ] &&
        ! taskset -a -p -c 0 "$dev_pid" >/dev/null 2>&1 &&
        [ "$(cpus "$dev_pid" "$dev_pid")" = "$last_cpu" ]
    ok $? "its cpuset is core $last_cpu ($cpuset_dir/testdev-*/cpuset.cpus): moving it to core 0 is refused"
else
    ok 0 "# SKIP no cpuset hierarchy ($cg_desc)"
fi
serial=$run/clients/proc/serial.log
for ((i = 0; i < 300; i++)); do
    grep -qE '^demo: [0-9]+ checks passed$|^demo: FAIL' "$serial" 2>/dev/null &&
        break
    sleep 0.1
done
grep -qE '^demo: [0-9]+ checks passed$' "$serial" && ! grep -q '^demo: FAIL' "$serial"
ok $? "the client's guest drove the process-mode device: $(grep -E '^demo: [0-9]+ checks' "$serial")"
under_load "$dev_pid" KILL proc
ok $? "SIGKILL of the device process ($dev_pid) under reads: the client's reads resume, devvm-proxy reconnected"
new_dev=$(json 's["device-vms"][0]["vm"]["pid"]')
[ "$(json 's["device-vms"][0]["restarts"]')" = 1 ] && [ "$new_dev" != "$dev_pid" ] &&
    running "$new_dev" && [ "$(cpus "$new_dev" "$new_dev")" = "$last_cpu" ] &&
    json 's["device-vms"][0]["last-failure"]["reason"]' |
        grep -q "^its process killed by signal 9$"
ok $? "the coordinator restarted it (pid $new_dev) on core $last_cpu: 1 restart, the reason, loss window $(json 's["device-vms"][0]["loss-window"]') s"
c down proc >/dev/null 2>&1 && nothing_left "down proc"
ok $? "down proc releases it"
describe proc2 '[device dev0]' 'type = testdev-shared' 'mode = process'
c up "$tmp/proc2.ini" >"$tmp/out" 2>&1
[ $? = 1 ] && grep -qF "device dev0: type 'testdev-shared' has no process-mode binary in the catalog (give the coordinator --process)" "$tmp/out" &&
    nothing_left "a refused process mode"
ok $? "a type without a process-mode binary: $(cat "$tmp/out")"

# ---- all or nothing ---------------------------------------------------------

describe unknown '[device good]' 'type = testdev' \
    '[device crypto0]' 'type = crypto'
c up "$tmp/unknown.ini" >"$tmp/out" 2>&1
rc=$?
sed 's/^/#   /' "$tmp/out"
[ $rc = 1 ] && grep -qF "devvm-ctl: cannot bring up client unknown: device crypto0: unknown type 'crypto' (the catalog has: testdev, testdev-shared, broken, testdev (process))" "$tmp/out"
ok $? "a good device and an unknown type: refused with the reason"
nothing_left "the unknown type"
ok $? "... and nothing of that request is left"

# one exclusive device more than there are cores to give
groups=()
for ((i = 0; i < ncpus; i++)); do
    groups+=("[device d$i]" 'type = testdev' 'reservation = exclusive')
done
describe cores "${groups[@]}"
c up "$tmp/cores.ini" >"$tmp/out" 2>&1
rc=$?
sed 's/^/#   /' "$tmp/out"
[ $rc = 1 ] && grep -qF "devvm-ctl: cannot bring up client cores: device d$((ncpus - 1)) needs an exclusive core; 1 of $ncpus cores is free and 1 is kept for clients" "$tmp/out"
ok $? "$ncpus exclusive devices on $ncpus cores: refused with the numbers"
nothing_left "too many cores" &&
    [ "$(json 's["cores"]["exclusive"]')" = "" ]
ok $? "... and nothing of that request is left, no core reserved"

describe failing '[device good]' 'type = testdev' \
    '[device bad]' 'type = broken'
c up "$tmp/failing.ini" >"$tmp/out" 2>&1
rc=$?
sed 's/^/#   /' "$tmp/out"
[ $rc = 1 ] && grep -qE "devvm-ctl: cannot bring up client failing: device VM broken-[0-9]+: its QEMU exited with status 67" "$tmp/out"
ok $? "a device VM that fails after it started: refused with the reason"
nothing_left "the failing device VM" &&
    [ "$(json 's["cores"]["exclusive"]')" = "" ] &&
    [ "$(json 's["cores"]["shared-quota-percent"]')" = 0 ]
ok $? "... and the good device VM started with it is gone too, its core and quota free"

# ---- bad descriptions through up ---------------------------------------------

printf '[client]\nmemory = 128M\nkernel = %s\n[device d]\ntype = testdev\nreservation = shared:0\n' \
    "$demo" >"$tmp/bad.ini"
c up "$tmp/bad.ini" >"$tmp/out" 2>&1
rc=$?
[ $rc = 1 ] && grep -qF "devvm-ctl: $tmp/bad.ini:6: [device d] reservation: 'shared:0'; expected exclusive, shared:PERCENT (1 to 100: the share of one core) or auto (what the device image declares)" "$tmp/out"
ok $? "a bad description: file, line, group, key and what was expected"
describe excl-shared '[device d]' 'type = testdev' 'reservation = shared:50'
c up "$tmp/excl-shared.ini" >"$tmp/out" 2>&1
[ $? = 1 ] && grep -qF "device d: reservation shared:50, but its image $(realpath "$testdev_vm") declares that it needs an exclusive core" "$tmp/out"
ok $? "a share for an image that needs an exclusive core is refused"
nothing_left "bad descriptions"
ok $? "... and nothing is left"

# ---- a stranger on the control socket ------------------------------------------

if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null &&
   [ -x /usr/bin/python3 ]; then
    stranger=(setpriv --reuid=65534 --regid=65534 --clear-groups)
    "${stranger[@]}" "$ctl" --run-dir "$run" status >"$tmp/out" 2>&1
    [ $? = 2 ] && grep -q "Permission denied" "$tmp/out"
    ok $? "uid 65534 cannot reach the socket (0600 in a 0700 directory)"
    # open the file modes to reach the SO_PEERCRED check
    chmod 0711 "$tmp" "$run" && chmod 0666 "$run/control.sock"
    "${stranger[@]}" "$ctl" --run-dir "$run" status >"$tmp/out" 2>&1
    rc=$?
    chmod 0700 "$tmp" "$run" && chmod 0600 "$run/control.sock"
    [ $rc = 2 ] && grep -qF "uid 65534 may not use this coordinator: it serves uid 0 only" "$tmp/out" &&
        grep -q "control connection refused: uid 65534 is not uid 0" \
            "$run/coordinator.log"
    ok $? "uid 65534 on the socket itself is refused by its SO_PEERCRED uid"
else
    ok 0 "# SKIP a stranger uid needs root and setpriv"
    ok 0 "# SKIP a stranger uid needs root and setpriv"
fi

# ---- SIGTERM with a client up -------------------------------------------------

c up "$tmp/demo.ini" >/dev/null 2>&1
pids=$(json '" ".join(str(p) for p in [s["clients"][0]["qemu"]["pid"], s["device-vms"][0]["vm"]["pid"], s["device-vms"][0]["gateway"]["pid"]])')
base_cg=$(for d in $cg_dirs; do echo "$d"; done)
stop_coordinator
alive=
for pid in $pids; do
    kill -0 "$pid" 2>/dev/null && alive+=" $pid"
done
left=
for d in $base_cg; do
    [ -e "$d" ] && left+=" $d"
done
[ "$coord_rc" = 0 ] && [ -z "$alive" ] && [ -z "$left" ] &&
    [ ! -e "$run/control.sock" ] && [ ! -e "$run/clients/demo" ]
ok $? "SIGTERM: the coordinator stops the client and the device VM ($pids) and removes its cgroups and socket${alive:+; alive:$alive}${left:+; left:$left}"

# ---- SIGKILL of the coordinator -------------------------------------------------

# Its children have PR_SET_PDEATHSIG and exit-with-parent, so they go
# with it; the gateway is stopped (SIGSTOP) first to play one that is
# stuck and outlives it.  The next coordinator on the run directory
# finds what is left (state.json, the process, the cgroups, the
# directories), reports it, refuses up, and cleanup removes all of it.
start_coordinator "$run" "${catalog[@]}"
c up "$tmp/demo.ini" >"$tmp/out" 2>&1 || sed 's/^/#   /' "$tmp/out"
pids=$(json '" ".join(str(p) for p in [s["clients"][0]["qemu"]["pid"], s["device-vms"][0]["vm"]["pid"], s["device-vms"][0]["gateway"]["pid"]])')
gw_pid=${pids##* }
old_cg=$(json '" ".join(s["cgroups"].split()[2::2]) if s["cgroups"].startswith("v1") else ""')
old_pid=$coord_pid
kill -STOP "$gw_pid"
kill -KILL "$coord_pid"
wait "$coord_pid" 2>/dev/null
coord_pid=
start_coordinator "$run" "${catalog[@]}"
rc=$?
sed 's/^/#   /' "$tmp/coord.err"
[ $rc = 0 ] && grep -qF "coordinator $old_pid did not stop cleanly" "$tmp/coord.err" &&
    grep -qF "devvm-ctl cleanup removes it" "$tmp/coord.err"
ok $? "SIGKILL of the coordinator ($old_pid): the next one starts and says what it found"
c status >"$tmp/out"
sed -n '/did not stop cleanly/,$s/^/#   /p' "$tmp/out"
found=0
grep -qE "^  process $gw_pid \(gateway of testdev-[0-9]+\)$" "$tmp/out" || found=1
grep -qE "^  directory $run/clients/demo$" "$tmp/out" || found=1
grep -qE "^  directory $run/devices/testdev-[0-9]+$" "$tmp/out" || found=1
for d in $old_cg; do
    grep -qE "^  cgroup $d$" "$tmp/out" || found=1
done
[ $found = 0 ]
ok $? "status lists the process left ($gw_pid), its cgroups and directories"
c up "$tmp/demo.ini" >"$tmp/out" 2>&1
[ $? = 1 ] && grep -qF "did not stop cleanly" "$tmp/out" &&
    grep -qF "remove that first (devvm-ctl cleanup)" "$tmp/out"
ok $? "up is refused until cleanup"
c cleanup >"$tmp/out" 2>&1
rc=$?
sed 's/^/#   /' "$tmp/out"
cg_dirs=$(json '" ".join(s["cgroups"].split()[2::2]) if s["cgroups"].startswith("v1") else ""')
alive= left=
for pid in $pids; do
    running "$pid" && alive+=" $pid"
done
for d in $old_cg; do
    [ -e "$d" ] && left+=" $d"
done
[ $rc = 0 ] && [ -z "$alive$left" ] && nothing_left "cleanup" &&
    [ "$(json '"leftovers" in s')" = False ] &&
    ! grep -q leftovers "$run/state.json"
ok $? "cleanup: no process ($pids), cgroup, directory or socket of the killed coordinator is left${alive:+; alive:$alive}${left:+; left:$left}"
c up "$tmp/demo.ini" >/dev/null 2>&1 && c down demo >/dev/null 2>&1 &&
    nothing_left "up and down after cleanup"
ok $? "then up and down work again"
stop_coordinator

# ---- no cgroups ---------------------------------------------------------------

run=$tmp/run2
cg_dirs=
start_coordinator "$run" "${catalog[@]}" --cgroups none --max-restarts 1 --restart-window 1
describe slice2 '[device d]' 'type = testdev-shared'
c up "$tmp/slice2.ini" >/dev/null 2>&1
rc=$?
c status >"$tmp/out"
sed 's/^/#   /' "$tmp/out"
[ $rc = 0 ] &&
    grep -qF "cgroups: none (--cgroups=none): affinity only, no CPU quota or memory limit" "$tmp/out" &&
    grep -qF "shared, 20% of a core (affinity only: no cgroup quota)" "$tmp/out"
ok $? "--cgroups=none: status says plainly that a share is affinity only"

# --restart-window 1: READY for a second, its restarts count from 0
# again, so with --max-restarts 1 it is restarted once per death
for round in 1 2; do
    sleep 1.5
    vm0=$(json 's["device-vms"][0]["vm"]["pid"]')
    kill -KILL "$vm0"
    for ((i = 0; i < 50; i++)); do
        vmn=$(json 's["device-vms"][0]["vm"]["pid"]')
        [ "$vmn" != "$vm0" ] && [ "$(json 's["device-vms"][0]["state"]')" = ready ] && break
        sleep 0.1
    done
done
[ "$(json 's["device-vms"][0]["state"]')" = ready ] &&
    [ "$(json 's["device-vms"][0]["restarts"]')" = 2 ] &&
    [ "$(json 's["device-vms"][0]["recent-restarts"]')" = 1 ] &&
    c status | grep -qE "^ +restarts 1/1 \(2 in all\), generation "
ok $? "--restart-window 1: killed twice 1.5 s apart with --max-restarts 1, restarted both times (2 in all, 1 recently)"

# the maximum: with --max-restarts 1, a second death within the window
# leaves it failed, its reservation kept until down
sleep 1.5
vm1=$(json 's["device-vms"][0]["vm"]["pid"]')
kill -KILL "$vm1"
for ((i = 0; i < 50; i++)); do
    vm2=$(json 's["device-vms"][0]["vm"]["pid"]')
    [ "$vm2" != "$vm1" ] && [ "$(json 's["device-vms"][0]["state"]')" = ready ] && break
    sleep 0.1
done
kill -KILL "$vm2"
for ((i = 0; i < 50; i++)); do
    [ "$(json 's["device-vms"][0]["state"]')" = failed ] && break
    sleep 0.1
done
c status >"$tmp/out"
sed 's/^/#   /' "$tmp/out"
grep -qE "^slice2 +running .* d=testdev-shared-[0-9]+ \(failed\)$" "$tmp/out" &&
    grep -qE "failed: gave up after 1 restart; last failure: (.*; )?its QEMU killed by signal 9$" "$tmp/out" &&
    [ "$(json 's["cores"]["shared-quota-percent"]')" = 20 ]
ok $? "--max-restarts 1: killed twice, the device VM is failed, its client told (status), its share kept"
c down slice2 >/dev/null 2>&1 && [ "$(json 's["cores"]["shared-quota-percent"]')" = 0 ] &&
    nothing_left "down of a failed device VM"
ok $? "down releases the failed device VM"
stop_coordinator
[ "$coord_rc" = 0 ] && nothing_left "SIGTERM"
ok $? "SIGTERM again: nothing left"

# ---- the READY wait (--ready-timeout) ----------------------------------------

# A QEMU that holds a device VM at its first instruction (-S), with a QMP
# socket of its own for the test; clients run as usual.
held=$tmp/qemu-held
cat >"$held" <<EOF
#!/bin/sh
case " \$* " in
*ivshmem-doorbell*)
    exec "$qemu" "\$@" -S -qmp unix:$tmp/held-\$\$.qmp,server=on,wait=off ;;
esac
exec "$qemu" "\$@"
EOF
chmod +x "$held"

# held_vm: the pid of the one held device VM, once its QMP socket exists
held_vm()
{
    local i f

    for ((i = 0; i < 100; i++)); do
        for f in "$tmp"/held-*.qmp; do
            [ -S "$f" ] && { f=${f##*/held-}; echo "${f%.qmp}"; return 0; }
        done
        sleep 0.1
    done
    return 1
}

run=$tmp/run3
start_coordinator "$run" --qemu "$held" --gateway "$gateway" \
    --kvm-probe "$probe" --image "$testdev_vm" --ready-timeout 2
describe held '[device dev0]' 'type = testdev'
c up "$tmp/held.ini" >"$tmp/out" 2>&1
rc=$?
sed 's/^/#   /' "$tmp/out"
[ $rc = 1 ] && grep -qE "not READY within 2 s \(raise --ready-timeout\?\)" "$tmp/out" &&
    [ "$(json 'len(s["device-vms"]) + len(s["clients"])')" = 0 ]
ok $? "a device VM that never gets READY: up fails after --ready-timeout 2 with the reason, nothing kept"
stop_coordinator
rm -f "$tmp"/held-*.qmp

# A paused host (here: the coordinator stopped for 5 s) is not the device
# VM's fault: the wait counts seconds the coordinator ran, so a device VM
# let go after the pause still becomes READY within --ready-timeout 3.
start_coordinator "$run" --qemu "$held" --gateway "$gateway" \
    --kvm-probe "$probe" --image "$testdev_vm" --ready-timeout 3
c up "$tmp/held.ini" >"$tmp/out" 2>&1 &
up_pid=$!
vm=$(held_vm)
rc=$?
if [ $rc = 0 ]; then
    kill -STOP "$coord_pid"
    sleep 5
    kill -CONT "$coord_pid"
    sleep 0.3
    python3 - "$tmp/held-$vm.qmp" <<'PY'
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
f = s.makefile("rw")
f.readline()
for cmd in ("qmp_capabilities", "cont"):
    f.write(json.dumps({"execute": cmd}) + "\n")
    f.flush()
    while "return" not in json.loads(f.readline()):
        pass
PY
    rc=$?
fi
wait "$up_pid" || rc=1
sed 's/^/#   /' "$tmp/out"
[ $rc = 0 ] && [ "$(json 's["device-vms"][0]["state"]')" = ready ] &&
    [ "$(json 's["device-vms"][0]["restarts"]')" = 0 ]
ok $? "the coordinator paused 5 s while a device VM starts: READY once let go, within --ready-timeout 3, no restart"
c down held >/dev/null 2>&1
stop_coordinator
run=$tmp/run2

# ---- device code as uids of its own (--device-uids) -------------------------

# root only: a device VM (gateway and QEMU) and a process-mode device,
# each as a uid of its own; a device's uid cannot reach another device's
# socket; SIGKILL of the coordinator takes the dropped QEMU with it
# (patch 0008: exit-with-parent kept across -run-with user=)
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null &&
   [ -x /usr/bin/python3 ]; then
    run=$tmp/run3
    cg_dirs=
    start_coordinator "$run" "${catalog[@]}" --device-uids 61000-61009
    [ $? = 1 ] && grep -qF "devvm-coordinator: --device-uids: the device uids must reach the run directory $run, but $tmp (mode 0700) does not let others through" "$tmp/coord.err"
    ok $? "--device-uids with a run directory under a private one: $(cat "$tmp/coord.err")"
    coord_pid=
    chmod 0711 "$tmp"
    start_coordinator "$run" "${catalog[@]}" --device-uids 61000-61009
    describe uids '[device a]' 'type = testdev-shared' \
        '[device b]' 'type = testdev' 'mode = process'
    c up "$tmp/uids.ini" >"$tmp/out" 2>&1
    rc=$?
    sed 's/^/#   /' "$tmp/out"
    ok $rc "--device-uids 61000-61009: up with a device VM and a process-mode device"
    vm=$(json 's["device-vms"][0]["vm"]["pid"]')
    gw=$(json 's["device-vms"][0]["gateway"]["pid"]')
    pm=$(json 's["device-vms"][1]["vm"]["pid"]')
    vm_sock=$(json 's["device-vms"][0]["socket"]')
    pm_sock=$(json 's["device-vms"][1]["socket"]')
    uid_of() { awk '$1 == "Uid:" { print $2 " " $3 " " $4 " " $5 }' "/proc/$1/status"; }
    [ "$(uid_of "$vm")" = "61000 61000 61000 61000" ] &&
        [ "$(uid_of "$gw")" = "61000 61000 61000 61000" ] &&
        [ "$(uid_of "$pm")" = "61001 61001 61001 61001" ] &&
        [ "$(json '[d["uid"] for d in s["device-vms"]]')" = "[61000, 61001]" ] &&
        c status | grep -qF "device code runs as: a uid of its own from 61000-61009"
    ok $? "the device VM's QEMU and gateway run as uid 61000, the process-mode device as 61001 (real, effective, saved, fs)"
    [ "$(stat -c %a "$run")" = 711 ] && [ "$(stat -c %a "$run/devices")" = 711 ] &&
        [ "$(stat -c '%a %u' "$(dirname "$vm_sock")")" = "700 61000" ] &&
        [ "$(stat -c '%a %u' "$(dirname "$pm_sock")")" = "711 0" ] &&
        [ "$(stat -c '%a %u' "$pm_sock")" = "600 0" ] &&
        [ "$(stat -c %a "$run/coordinator.log")" = 600 ]
    ok $? "directories: RUN and RUN/devices 0711, the gateway's own 0700 of uid 61000, the process's socket 0600 of root, the log 0600"
    # the shared device VM's cpuset lacks the process's exclusive core
    limits=$(json 's["device-vms"][0].get("limits", "")')
    case $limits in
    *", cpuset.cpus "*)
        [ "${limits##*, cpuset.cpus }" = 0 ] &&
            ! taskset -p -c "$last_cpu" "$vm" >/dev/null 2>&1
        ok $? "the shared device VM's cpuset is core 0 (core $last_cpu is the process's): moving it there is refused" ;;
    *)
        ok 0 "# SKIP no cpuset hierarchy ($limits)" ;;
    esac
    connect='import socket, sys
s = socket.socket(socket.AF_UNIX)
try:
    s.connect(sys.argv[1])
except OSError as e:
    print(e.strerror)
    sys.exit(1)'
    e1=$(setpriv --reuid=61001 --regid=61001 --clear-groups /usr/bin/python3 -c "$connect" "$vm_sock")
    r1=$?
    e2=$(setpriv --reuid=61000 --regid=61000 --clear-groups /usr/bin/python3 -c "$connect" "$pm_sock")
    r2=$?
    [ $r1 = 1 ] && [ $r2 = 1 ] && [ "$e1" = "Permission denied" ] &&
        [ "$e2" = "Permission denied" ]
    ok $? "uid 61001 cannot reach the device VM's socket ($e1), uid 61000 not the process's ($e2)"
    serial=$run/clients/uids/serial.log
    for ((i = 0; i < 300; i++)); do
        grep -qE '^demo: [0-9]+ checks passed$|^demo: FAIL' "$serial" 2>/dev/null && break
        sleep 0.1
    done
    grep -qE '^demo: [0-9]+ checks passed$' "$serial" && ! grep -q '^demo: FAIL' "$serial"
    ok $? "the client's guest drives both: $(grep -E '^demo: [0-9]+ checks' "$serial")"
    kill -KILL "$coord_pid"
    wait "$coord_pid" 2>/dev/null
    coord_pid=
    for ((i = 0; i < 50; i++)); do
        running "$vm" || running "$gw" || running "$pm" || break
        sleep 0.1
    done
    ! running "$vm" && ! running "$gw" && ! running "$pm"
    ok $? "SIGKILL of the coordinator: the dropped QEMU ($vm), gateway ($gw) and process ($pm) go with it"
    start_coordinator "$run" "${catalog[@]}" --device-uids 61000-61009 &&
        c cleanup >/dev/null 2>&1 && nothing_left "cleanup with --device-uids"
    ok $? "the next coordinator cleans up what was left"
    stop_coordinator
else
    ok 0 "# SKIP --device-uids needs root and setpriv"
fi

echo "1..$tap_n"
tap_exit
