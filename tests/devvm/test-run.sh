#!/usr/bin/env bash
# TAP test: the main job (scripts/devvm/run.sh, "make run") boots the
# client VM with devvm-testdev behind devvm-proxy: in a device VM behind
# devvm-gateway (the default), with the ring transport and without it,
# and as a host process.  The devvm-demo guest must report every check
# passed, run.sh must exit 0 and leave no process or socket behind.  A
# guest that does not report success (pvh-exit) must make run.sh fail.
#
#   test-run.sh QEMU_BUILDDIR TESTDEV DEMO_ELF KVM_PROBE PVH_EXIT_ELF
#               GATEWAY TESTDEV_VM_ELF
#
# SPDX-License-Identifier: GPL-2.0-or-later

set -u

usage="usage: test-run.sh QEMU_BUILDDIR TESTDEV DEMO_ELF KVM_PROBE PVH_EXIT_ELF GATEWAY TESTDEV_VM_ELF"
qemu_build=${1:?$usage}
testdev=${2:?$usage}
demo=${3:?$usage}
probe=${4:?$usage}
pvh_exit=${5:?$usage}
gateway=${6:?$usage}
image=${7:?$usage}
here=$(dirname "${BASH_SOURCE[0]}")
run=$here/../../scripts/devvm/run.sh
. "$here/tap.sh"

paths=(--qemu="$qemu_build/qemu-system-x86_64" --testdev="$testdev"
       --kvm-probe="$probe" --gateway="$gateway" --device-image="$image")

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

echo "1..5"

run_ok vm on
ok $? "run.sh --device=vm --ring=on: the demo guest passes every check"
run_ok vm on --events=off
ok $? "run.sh --device=vm --events=off: the demo guest passes every check"
run_ok vm off
ok $? "run.sh --device=vm --ring=off: the demo guest passes every check"
run_ok process on
ok $? "run.sh --device=process --ring=on: the demo guest passes every check"

"$run" --device=process "${paths[@]}" --guest="$pvh_exit" </dev/null \
    >"$tmp/out" 2>&1
rc=$?
[ $rc -eq 1 ] && grep -q '^devvm: FAILED' "$tmp/out"
r=$?
[ $r -eq 0 ] || { echo "# run.sh exited with $rc"; show_log; }
ok $r "run.sh fails when the guest does not report success"

tap_exit
