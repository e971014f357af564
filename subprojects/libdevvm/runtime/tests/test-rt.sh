#!/usr/bin/env bash
# The device VM runtime end to end: rt-sample.elf boots in QEMU (TCG)
# with an ivshmem-doorbell whose server is rt-host, which tests the
# runtime through its rings and prints TAP.  rt-host kills QEMU after its
# crash test; a second QEMU then boots on the same shared memory, and a
# third with id=0x0, which the device's type_init refuses.
#
#   test-rt.sh RT_HOST IMAGE        (QEMU: $DEVVM_QEMU)
#
# SPDX-License-Identifier: GPL-2.0-or-later
set -u
host=$1
image=$2
qemu=${DEVVM_QEMU:-}
if [ -z "$qemu" ] || [ ! -x "$qemu" ]; then
    echo "1..0 # SKIP set DEVVM_QEMU to a qemu-system-x86_64"
    exit 0
fi

dir=$(mktemp -d)
host_pid=
qemu_pid=
cleanup() {
    [ -n "$qemu_pid" ] && kill "$qemu_pid" 2>/dev/null
    [ -n "$host_pid" ] && kill "$host_pid" 2>/dev/null
    rm -rf "$dir"
}
trap cleanup EXIT

"$host" "$dir/ivshmem.sock" "$dir/launch" &
host_pid=$!
for _ in $(seq 100); do
    [ -S "$dir/ivshmem.sock" ] && break
    sleep 0.05
done

# Never KVM here: TCG is the tested configuration (docs/devvm/runtime.rst).
boot=0
while kill -0 "$host_pid" 2>/dev/null && [ $boot -lt 3 ]; do
    boot=$((boot + 1))
    id=0x5a5a0001
    [ $boot -eq 3 ] && id=0x0
    t0=$(date +%s%N)
    "$qemu" -M pc -nodefaults -display none -cpu max -m 64M -accel tcg \
        -kernel "$image" -append "id=$id devvm.verbose=1" \
        -chardev socket,path="$dir/ivshmem.sock",id=ivs \
        -device ivshmem-doorbell,chardev=ivs,vectors=8 \
        -device isa-debug-exit,iobase=0xf4,iosize=0x04 \
        -serial file:"$dir/serial-$boot.log" 2>"$dir/qemu-$boot.err" &
    qemu_pid=$!
    echo "$t0 $qemu_pid" > "$dir/launch.tmp"
    mv "$dir/launch.tmp" "$dir/launch"
    wait "$qemu_pid"
    status=$?
    qemu_pid=
    # rt-host ends each boot with SIGTERM, after which QEMU exits with 0
    if [ $status -ne 0 ]; then
        echo "# QEMU boot $boot exited with status $status:"
        sed 's/^/#   /' "$dir/qemu-$boot.err"
    fi
done
wait "$host_pid"
ret=$?
host_pid=
for log in "$dir"/serial-*.log; do
    echo "# --- $(basename "$log")"
    sed 's/^/# /' "$log"
done
exit $ret
