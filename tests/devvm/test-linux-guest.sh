#!/usr/bin/env bash
# TAP test: a real Linux guest (Debian's amd64 kernel) sees devvm-testdev,
# served by its own process, as a PCI function behind -device devvm-proxy,
# and drives it with the kernel's own means: sysfs, /dev/mem, uio_pci_generic
# and vfio-pci (with an emulated VT-d).  scripts/devvm/fetch-guest.sh
# provides the kernel (cached) and builds the initramfs; the guest's
# devvm-guest-check prints "guest: ok N - ..." lines on the serial console,
# which become this test's cases.  docs/devvm/linux-guest.rst.
#
#   test-linux-guest.sh QEMU_BUILDDIR DEVVM_TESTDEV
#
# $DEVVM_GUEST_TIMEOUT (default 300) bounds the boot in seconds.  The test
# is skipped only when no kernel is cached and the archive is out of reach.
#
# SPDX-License-Identifier: GPL-2.0-or-later

set -euo pipefail
export LC_ALL=C

qemu_build=${1:?usage: test-linux-guest.sh QEMU_BUILDDIR DEVVM_TESTDEV}
testdev=${2:?usage: test-linux-guest.sh QEMU_BUILDDIR DEVVM_TESTDEV}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=SCRIPTDIR/tap.sh
. "$here/tap.sh"

qemu=$qemu_build/qemu-system-x86_64
timeout_s=${DEVVM_GUEST_TIMEOUT:-300}
append="console=ttyS0 quiet panic=-1 intel_iommu=on iommu=pt"

td_pid=
cleanup()
{
    if [ -n "$td_pid" ]; then
        kill "$td_pid" 2>/dev/null || true
        wait "$td_pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT

# comment FILE: FILE's lines as TAP comments
comment()
{
    sed 's/^/#   /' "$1"
}

# Seconds since $start_us (from $EPOCHREALTIME), two decimals.
elapsed()
{
    local d=$(( ${EPOCHREALTIME/./} - start_us ))
    printf '%d.%02d' $((d / 1000000)) $((d % 1000000 / 10000))
}

# Prefix each line of stdin with the time since QEMU started.
stamp()
{
    local line
    while IFS= read -r line || [ -n "$line" ]; do
        printf '%s %s\n' "$(elapsed)" "${line%$'\r'}"
    done
}

# ---- kernel and initramfs --------------------------------------------------

fetch_guest "and the initramfs are ready"

# ---- the device -----------------------------------------------------------

"$testdev" --socket "$tmp/td.sock" >"$tmp/td.out" 2>"$tmp/td.err" &
td_pid=$!
for _ in $(seq 100); do
    grep -qx ready "$tmp/td.out" && break
    kill -0 "$td_pid" 2>/dev/null || break
    sleep 0.1
done
rc=0
grep -qx ready "$tmp/td.out" || rc=1
[ $rc -eq 0 ] || comment "$tmp/td.err"
ok $rc "devvm-testdev listens on its socket"
if [ $rc -ne 0 ]; then
    echo "1..$tap_n"
    tap_exit
fi

# ---- the guest ------------------------------------------------------------

start_us=${EPOCHREALTIME/./}
set +e
timeout -k 5 "$timeout_s" "$qemu" \
    -M q35 -nodefaults -accel tcg -display none -no-reboot \
    -object memory-backend-memfd,id=ram,size=512M,share=on \
    -machine memory-backend=ram -m 512M \
    -device intel-iommu,caching-mode=on \
    -device devvm-proxy,id=dev0,socket="$tmp/td.sock" \
    -kernel "$kernel" -initrd "$initrd" -append "$append" \
    -serial stdio </dev/null 2>"$tmp/qemu.err" | stamp >"$tmp/serial"
qemu_rc=${PIPESTATUS[0]}
set -e
qemu_end=$(elapsed)

init_at='' last_at=''
while read -r at line; do
    case "$line" in
    "guest: # /init at "*)
        init_at=$at ;;
    esac
    if guest_line "$line" guest; then
        last_at=$at
    fi
done <"$tmp/serial"

rc=0
[ -n "$init_at" ] || rc=1
ok $rc "the guest kernel booted to /init"

guest_summary_case

# -no-reboot: a panic ends QEMU with status 0 too, so look for the kernel's
# last words
rc=0
if [ "$qemu_rc" -eq 124 ] || [ "$qemu_rc" -eq 137 ]; then
    why="timed out after ${timeout_s} s"
    rc=1
elif [ "$qemu_rc" -ne 0 ]; then
    why="exit status $qemu_rc"
    rc=1
elif grep -q 'reboot: Power down' "$tmp/serial"; then
    why="exit status 0"
else
    why="but the kernel did not say 'Power down'"
    rc=1
fi
ok $rc "QEMU ended when the guest powered off ($why)"

kill -TERM "$td_pid" 2>/dev/null || true
rc=0
wait "$td_pid" || rc=$?
td_pid=
ok $rc "devvm-testdev exits 0 on SIGTERM (status $rc)"

echo "# timing (host wall clock from QEMU start):" \
     "/init at ${init_at:-never} s, last guest line at ${last_at:-never} s," \
     "QEMU exited at $qemu_end s"
if [ -s "$tmp/td.err" ]; then
    echo "# devvm-testdev said:"
    comment "$tmp/td.err"
fi
if [ "$tap_fails" -ne 0 ]; then
    echo "# QEMU said:"
    comment "$tmp/qemu.err"
    echo "# serial console (seconds since QEMU start):"
    comment "$tmp/serial"
elif [ -s "$tmp/qemu.err" ]; then
    echo "# QEMU said:"
    comment "$tmp/qemu.err"
fi
echo "1..$tap_n"
tap_exit
