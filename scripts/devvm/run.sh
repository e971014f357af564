#!/usr/bin/env bash
# The main job ("make run"): a client VM with a devvm-proxy device.
#
# Until the gateway, the device VM runtime and the coordinator exist, this
# boots the client QEMU with -device devvm-proxy pointed at the socket a
# gateway would serve and shows the error devvm-proxy gives, then exits
# with status 1.  The accelerator is probed: KVM when it is usable here
# (devvm-kvm-probe), TCG otherwise.
#
# SPDX-License-Identifier: GPL-2.0-or-later

set -uo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=$top/build
qemu=$build/qemu/qemu-system-x86_64
probe=$build/devvm/tools/devvm/devvm-kvm-probe

[ -x "$qemu" ] && [ -x "$probe" ] || { echo "run: build first (make)" >&2; exit 2; }

if kvm_msg=$("$probe"); then
    accel=kvm
else
    accel=tcg
fi
echo "devvm: $kvm_msg; client VM uses $accel"

rundir=$build/run
mkdir -p -m 0700 "$rundir"
sock=$rundir/testdev.sock

cmd=("$qemu" -M pc -nodefaults -display none -serial none -accel "$accel"
     -device "devvm-proxy,id=dev0,socket=$sock")
echo "devvm: ${cmd[*]}"
err=$("${cmd[@]}" 2>&1 </dev/null)
rc=$?
echo "$err"
if [ $rc -ne 0 ] && grep -q "devvm-proxy" <<<"$err"; then
    echo "devvm: the client QEMU refused devvm-proxy as shown above: no" \
         "device VM serves $sock yet (the gateway and device VM runtime are" \
         "not built); see docs/devvm/index.rst for what exists today."
fi
exit 1
