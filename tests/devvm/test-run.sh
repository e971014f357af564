#!/usr/bin/env bash
# TAP test: the main job (scripts/devvm/run.sh, "make run") boots the
# client VM with devvm-testdev behind devvm-proxy.  Through the coordinator
# (the default, run-coordinator.sh): a device VM on a reserved core; and
# on the direct path: in a device VM behind devvm-gateway, with the ring
# transport and without it, with its DMA window (zero-copy) and without
# it, and as a host process (with --bench, serving two functions).  The
# devvm-demo guest must report every check passed, run.sh must exit 0 and
# leave no process, socket or run directory behind.  A guest that does not report success
# (pvh-exit) must make run.sh fail, on both paths, and so must a client
# that exits before its guest reported.
#
#   test-run.sh QEMU_BUILDDIR TESTDEV DEMO_ELF KVM_PROBE PVH_EXIT_ELF
#               GATEWAY TESTDEV_VM_ELF COORDINATOR CTL DEMO_INI
#
# SPDX-License-Identifier: GPL-2.0-or-later

set -u

usage="usage: test-run.sh QEMU_BUILDDIR TESTDEV DEMO_ELF KVM_PROBE PVH_EXIT_ELF GATEWAY TESTDEV_VM_ELF COORDINATOR CTL DEMO_INI"
qemu_build=${1:?$usage}
testdev=${2:?$usage}
demo=${3:?$usage}
probe=${4:?$usage}
pvh_exit=${5:?$usage}
gateway=${6:?$usage}
image=${7:?$usage}
coordinator=${8:?$usage}
ctl=${9:?$usage}
demo_ini=${10:?$usage}
here=$(dirname "${BASH_SOURCE[0]}")
run=$here/../../scripts/devvm/run.sh
. "$here/tap.sh"

paths=(--qemu="$qemu_build/qemu-system-x86_64" --testdev="$testdev"
       --kvm-probe="$probe" --gateway="$gateway" --device-image="$image"
       --coordinator="$coordinator" --ctl="$ctl")

# show_log: run.sh's output as TAP comments
show_log()
{
    sed 's/^/#   /' "$tmp/out"
}

# run_ok DEVICE RING [RUN.SH OPTION...]: run.sh with the demo must
# succeed and clean up
run_ok()
{
    local device=$1 ring=$2 rc pids pid sock

    shift 2
    "$run" --device="$device" --ring="$ring" --timeout=180 "${paths[@]}" \
        --guest="$demo" "$@" </dev/null >"$tmp/out" 2>&1
    rc=$?
    pids=$(sed -n 's/^devvm: .* \([0-9][0-9]*\) stopped (exit status.*/\1/p' \
           "$tmp/out")
    sock=$(sed -n -e 's/^ \$ .*devvm-testdev --socket \([^ ]*\)$/\1/p' \
           -e 's/^ \$ .*devvm-gateway --dir \([^ ]*\) .*/\1/p' "$tmp/out")
    if [ $rc -ne 0 ]; then
        echo "# run.sh --device=$device --ring=$ring exited with $rc"
    elif ! grep -q '^demo: ok ' "$tmp/out"; then
        echo "# no 'demo: ok' line"
        rc=1
    elif grep -q '^demo: FAIL' "$tmp/out"; then
        echo "# a check failed"
        rc=1
    elif ! grep -qE '^demo: [0-9]+ checks passed$' "$tmp/out"; then
        echo "# no final 'demo: N checks passed' line"
        rc=1
    elif [ -z "$pids" ]; then
        echo "# no device process reported stopped"
        rc=1
    elif [ -z "$sock" ] || [ -e "$sock" ]; then
        echo "# socket or directory '$sock' unknown or left behind"
        rc=1
    fi
    for pid in $pids; do
        if kill -0 "$pid" 2>/dev/null; then
            echo "# process $pid still running"
            rc=1
        fi
    done
    if [ $rc -ne 0 ]; then
        show_log
    else
        echo "# $(grep -E '^demo: [0-9]+ checks passed$' "$tmp/out")," \
             "$(sed -n 's/^devvm: client VM ran \([0-9.]* s\).*/\1/p' "$tmp/out")"
        grep '^devvm: device VM .* is READY' "$tmp/out" | sed 's/^/# /'
    fi
    return $rc
}

# coord_left: after a coordinator run ($tmp/out), the coordinator and every
# process it reported (client, device VM, gateway) gone, its run
# directory removed
coord_left()
{
    local pid dir rc=0

    for pid in $(sed -n -e 's/^devvm: coordinator \([0-9]*\) stopped.*/\1/p' \
                        -e 's/.*QEMU pid \([0-9]*\).*/\1/p' \
                        -e 's/.*gateway pid \([0-9]*\).*/\1/p' "$tmp/out"); do
        if kill -0 "$pid" 2>/dev/null; then
            echo "# process $pid still running"
            rc=1
        fi
    done
    dir=$(sed -n 's/^ \$ .*devvm-coordinator --run-dir \([^ ]*\)\/run .*/\1/p' \
          "$tmp/out")
    if [ -z "$dir" ] || [ -e "$dir" ]; then
        echo "# run directory '$dir' unknown or left behind"
        rc=1
    fi
    grep -q '^devvm: coordinator [0-9]* stopped (exit status 0)$' "$tmp/out" ||
        { echo "# the coordinator did not stop cleanly"; rc=1; }
    return $rc
}

echo "1..10"

# the main job through the coordinator: one device VM on a reserved core
"$run" --timeout=180 "${paths[@]}" --guest="$demo" </dev/null \
    >"$tmp/out" 2>&1
rc=$?
r=1
if [ $rc -ne 0 ]; then
    echo "# run.sh exited with $rc"
elif ! grep -qE '^demo: [0-9]+ checks passed$' "$tmp/out" ||
     grep -q '^demo: FAIL' "$tmp/out"; then
    echo "# the guest did not pass every check"
elif ! grep -q '^ devvm-ctl: device dev0: new device VM testdev-[0-9]* on exclusive core [0-9]*' "$tmp/out" ||
     ! grep -qE '^ +demo +running ' "$tmp/out" ||
     ! grep -qE '^  device VM testdev-[0-9]+ \(testdev\): QEMU pid [0-9]+ \(RSS [0-9]+ MiB\), vCPU on core [0-9]+' "$tmp/out" ||
     ! grep -q '^devvm: OK' "$tmp/out"; then
    echo "# no placement, status, report or OK line"
else
    coord_left && r=0
fi
if [ $r -ne 0 ]; then
    show_log
else
    grep -E '^  device VM|^  client|^devvm: result' "$tmp/out" | sed 's/^/# /'
fi
ok $r "run.sh through the coordinator: a device VM on a reserved core, every check passed, nothing left"

"$run" --timeout=5 "${paths[@]}" --guest="$pvh_exit" </dev/null \
    >"$tmp/out" 2>&1
rc=$?
[ $rc -eq 1 ] &&
    grep -q '^devvm: FAILED: no verdict from the guest within 5 s$' "$tmp/out" &&
    coord_left
r=$?
[ $r -eq 0 ] || { echo "# run.sh exited with $rc"; show_log; }
ok $r "through the coordinator, a guest that does not report makes run.sh fail, nothing left"

sed -e "s|^kernel[[:space:]]*=.*|kernel = $(realpath "$pvh_exit")|" \
    -e '/^\[device/i extra-args = -device;isa-debug-exit,iobase=0xf4,iosize=0x04' \
    "$demo_ini" >"$tmp/exit.ini"
"$here/../../scripts/devvm/run-coordinator.sh" --desc="$tmp/exit.ini" \
    --qemu="$qemu_build/qemu-system-x86_64" --kvm-probe="$probe" \
    --gateway="$gateway" --device-image="$image" \
    --coordinator="$coordinator" --ctl="$ctl" --timeout=60 \
    </dev/null >"$tmp/out" 2>&1
rc=$?
[ $rc -eq 1 ] &&
    grep -q "^devvm: FAILED: the client's QEMU exited with status 67 before" \
        "$tmp/out" && coord_left
r=$?
[ $r -eq 0 ] || { echo "# run-coordinator.sh exited with $rc"; show_log; }
ok $r "through the coordinator, a client that exits before its guest reported makes it fail"

run_ok vm on --direct &&
    grep -qE "^devvm-gateway: DMA window: instance 0: 0x100000\+0x[0-9a-f]+ at window offset 0x[0-9a-f]+$" "$tmp/out"
ok $? "run.sh --direct --device=vm --ring=on: the demo guest passes every check, its RAM in the device VM's DMA window"
run_ok vm on --dma-window=off && ! grep -q "DMA window" "$tmp/out"
ok $? "run.sh --device=vm --dma-window=off: the demo guest passes every check, DMA by messages"
run_ok vm on --events=off
ok $? "run.sh --device=vm --events=off: the demo guest passes every check"
run_ok vm off
ok $? "run.sh --device=vm --ring=off: the demo guest passes every check"
run_ok process on
ok $? "run.sh --device=process --ring=on: the demo guest passes every check"

# --bench ("make bench"): the checks, then one line per measure of the
# device and of the references in the same VM (numbers not judged);
# --devices=2: two functions on the one device process, and the accesses
# that go round both
run_ok process on --bench --devices=2
r=$?
[ "$(grep -c '^demo: pci 00:[0-9a-f][0-9a-f]\.0 1af4:10f1 ' "$tmp/out")" = 2 ] ||
    { echo "# the guest did not see 2 devvm-testdev functions"; r=1; }
want="devvm-testdev:mmio-read devvm-testdev:port-read devvm-testdev:mmio-write
      devvm-testdev:msix devvm-testdev:dma-to-guest-4k
      devvm-testdev:dma-from-guest-4k devvm-testdev:dma-to-guest-64k
      devvm-testdev:dma-from-guest-64k devvm-testdev:dma-to-guest-1m
      devvm-testdev:dma-from-guest-1m edu:mmio-read edu:mmio-write edu:msi
      pci-testdev:port-read devvm-testdev:mmio-read-2dev
      devvm-testdev:mmio-write-2dev"
for m in $want; do
    grep -qE "^demo: bench ${m%%:*} ${m#*:} median [0-9]+ p99 [0-9]+ samples [0-9]+$" \
        "$tmp/out" || { echo "# no bench line for $m"; r=1; }
done
grep -q '^demo: bench .* median 0 ' "$tmp/out" && { echo "# a median of 0"; r=1; }
[ $r -eq 0 ] || show_log
ok $r "run.sh --bench --devices=2: every check passes, then a median and p99 for each of the device's 10 measures, the 2 that go round both functions, and the references' 4"

"$run" --device=process "${paths[@]}" --guest="$pvh_exit" </dev/null \
    >"$tmp/out" 2>&1
rc=$?
[ $rc -eq 1 ] && grep -q '^devvm: FAILED' "$tmp/out"
r=$?
[ $r -eq 0 ] || { echo "# run.sh exited with $rc"; show_log; }
ok $r "run.sh fails when the guest does not report success"

tap_exit
