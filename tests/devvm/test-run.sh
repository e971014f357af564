#!/usr/bin/env bash
# TAP test: the main job (scripts/devvm/run.sh, "make run") boots the
# client VM with devvm-testdev behind devvm-proxy, with the ring transport
# and without it; the devvm-demo guest must report every check passed,
# run.sh must exit 0 and leave no device process or socket behind.  A
# guest that does not report success (pvh-exit) must make run.sh fail.
#
#   test-run.sh QEMU_BUILDDIR TESTDEV DEMO_ELF KVM_PROBE PVH_EXIT_ELF
#
# SPDX-License-Identifier: GPL-2.0-or-later

set -u

usage="usage: test-run.sh QEMU_BUILDDIR TESTDEV DEMO_ELF KVM_PROBE PVH_EXIT_ELF"
qemu_build=${1:?$usage}
testdev=${2:?$usage}
demo=${3:?$usage}
probe=${4:?$usage}
pvh_exit=${5:?$usage}
here=$(dirname "${BASH_SOURCE[0]}")
run=$here/../../scripts/devvm/run.sh
. "$here/tap.sh"

paths=(--qemu="$qemu_build/qemu-system-x86_64" --testdev="$testdev"
       --kvm-probe="$probe")

# show_log: run.sh's output as TAP comments
show_log()
{
    sed 's/^/#   /' "$tmp/out"
}

# run_ok RING: run.sh with the demo must succeed and clean up
run_ok()
{
    local ring=$1 rc pid sock

    "$run" --ring="$ring" --timeout=120 "${paths[@]}" --guest="$demo" \
        </dev/null >"$tmp/out" 2>&1
    rc=$?
    pid=$(sed -n 's/^devvm: device process \([0-9]*\) is ready$/\1/p' \
          "$tmp/out")
    sock=$(sed -n 's/^ \$ .*devvm-testdev --socket \([^ ]*\)$/\1/p' \
           "$tmp/out")
    if [ $rc -ne 0 ]; then
        echo "# run.sh --ring=$ring exited with $rc"
    elif ! grep -q '^demo: ok ' "$tmp/out"; then
        echo "# no 'demo: ok' line"
        rc=1
    elif grep -q '^demo: FAIL' "$tmp/out"; then
        echo "# a check failed"
        rc=1
    elif ! grep -qE '^demo: [0-9]+ checks passed$' "$tmp/out"; then
        echo "# no final 'demo: N checks passed' line"
        rc=1
    elif [ -z "$pid" ] || kill -0 "$pid" 2>/dev/null; then
        echo "# device process '$pid' unknown or still running"
        rc=1
    elif [ -z "$sock" ] || [ -e "$sock" ]; then
        echo "# socket '$sock' unknown or left behind"
        rc=1
    fi
    if [ $rc -ne 0 ]; then
        show_log
    else
        echo "# $(grep -E '^demo: [0-9]+ checks passed$' "$tmp/out")," \
             "$(sed -n 's/^devvm: client VM ran \([0-9.]* s\).*/\1/p' "$tmp/out")"
    fi
    return $rc
}

echo "1..3"

run_ok on
ok $? "run.sh --ring=on: the demo guest passes every check"
run_ok off
ok $? "run.sh --ring=off: the demo guest passes every check"

"$run" "${paths[@]}" --guest="$pvh_exit" </dev/null >"$tmp/out" 2>&1
rc=$?
[ $rc -eq 1 ] && grep -q '^devvm: FAILED' "$tmp/out"
r=$?
[ $r -eq 0 ] || { echo "# run.sh exited with $rc"; show_log; }
ok $r "run.sh fails when the guest does not report success"

tap_exit
