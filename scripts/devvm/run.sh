#!/usr/bin/env bash
# The main job ("make run"): a device VM serving a client VM.
#
# By default it goes through the coordinator: run-coordinator.sh (in this
# directory) has devvm-coordinator bring up the client VM with one device
# VM on a reserved core, and takes it down again.  The options that the
# coordinator cannot do yet (--device=process, --ring=off, --events=off,
# --dma-window=off, --bench, --devices) and --direct take the direct path
# described below, where this script starts every process itself.
# --coordinator and --ctl are used by the coordinator path only, the
# others by both where they apply.
#
# The direct path:
# The device is devvm-testdev (the regression suite's device,
# docs/devvm/testdev.rst), written once against the devvm SDK.  By default
# it runs in a *device VM*: a stock QEMU booting the devvm runtime image
# (devvm-testdev-vm.elf) with -kernel, its shared memory and doorbells
# coming from ivshmem-doorbell.  devvm-gateway (tools/devvm) is that VM's
# ivshmem server and the vfio-user server clients connect to, in a private
# run directory (build/run, mode 0700).  With --device=process the same
# device runs as a host process (devvm-testdev) instead.
#
# The client QEMU (-M pc) reaches the device through -device devvm-proxy
# (docs/devvm/proxy.rst), which makes it a PCI function; guest RAM is a
# shared memfd, so the device's DMA lands in it directly.  The guest is
# devvm-demo (contrib/devvm/demo-guest), a freestanding PVH kernel that
# places the function's BARs and checks its registers, DMA engine, MSI
# and MSI-X, printing one "demo: ok ..." line per check on the serial port
# (shown here), then leaves QEMU through isa-debug-exit.  Everything
# started here is stopped on any exit.
#
# Exit status: 0 when the guest reported that every check passed; 1 when
# it did not (a failed check, QEMU or device failure, or no result within
# the timeout); 2 for bad usage or a missing build.  The accelerator is
# probed: KVM when it is usable here (devvm-kvm-probe), TCG otherwise.
#
#   run.sh [--direct] [--device=vm|process] [--ring=on|off]
#          [--events=on|off] [--dma-window=on|off] [--bench] [--devices=N]
#          [--timeout=SECONDS] [--qemu=PATH] [--gateway=PATH]
#          [--device-image=PATH] [--testdev=PATH] [--guest=PATH]
#          [--kvm-probe=PATH] [--coordinator=PATH] [--ctl=PATH]
#   Through the coordinator (run-coordinator.sh) unless --direct,
#   --device=process, --ring=off, --events=off, --dma-window=off,
#   --bench or --devices=2 to 4 is given:
#   the coordinator cannot do those yet, so this script starts the
#   processes itself.
#
# --ring is devvm-proxy's ring property (default on: BAR accesses over
# the shared-memory ring; off: plain vfio-user messages on the socket).
# --events=off makes a device VM's gateway keep the device's events (DMA,
# interrupts, logs) and relay them, instead of letting devvm-proxy take
# them on the ring (the default; it needs --ring=on).
# --dma-window=off leaves out the device VM's devvm-dma-window (and the
# gateway's dma.sock), so its DMA goes by messages through the gateway
# (docs/devvm/dma-window.rst); on, the default, is zero-copy.
# --bench is for scripts/devvm/bench.py ("make bench"): the client VM
# gets QEMU's in-process edu and pci-testdev devices as references and
# the guest "bench" on its command line, so that it times the device and
# them after its checks; with two CPUs or more the device (its whole
# device VM, or its process) runs on the last CPU and everything else on
# CPU 0, each spinning side on a core of its own.
# --devices=N (1 to 4, default 1) gives the client N devvm-proxy
# functions (dev0 ... devN-1), all served by the one device VM or device
# process, an instance each; the guest checks the first, and with --bench
# also times accesses that go round all N.
# The paths default to the build tree (build/qemu, build/devvm); the test
# suite passes the ones meson built.
#
# SPDX-License-Identifier: GPL-2.0-or-later

set -uo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=$top/build
qemu=$build/qemu/qemu-system-x86_64
testdev=$build/devvm/contrib/devvm/testdev/devvm-testdev
image=$build/devvm/contrib/devvm/testdev/devvm-testdev-vm.elf
gateway=$build/devvm/tools/devvm/devvm-gateway
device=vm
bench=
guest=$build/devvm/contrib/devvm/demo-guest/devvm-demo.elf
probe=$build/devvm/tools/devvm/devvm-kvm-probe
ring=on
events=on
devices=1
window=on
timeout_s=120
direct=
timeout_arg=
coord_args=()

usage()
{
    sed -n '/^#   run.sh/,/^#$/s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
}

for arg in "$@"; do
    case $arg in
    --direct)             direct=1 ;;
    --device=vm|--device=process) device=${arg#--device=} ;;
    --ring=on|--ring=off) ring=${arg#--ring=} ;;
    --events=on|--events=off) events=${arg#--events=} ;;
    --dma-window=on|--dma-window=off) window=${arg#--dma-window=} ;;
    --bench)              bench=1 ;;
    --devices=[1-4])      devices=${arg#--devices=} ;;
    --gateway=?*)         gateway=${arg#--gateway=} ;;
    --device-image=?*)    image=${arg#--device-image=} ;;
    --timeout=[1-9]*)     timeout_s=${arg#--timeout=}; timeout_arg=$arg ;;
    --qemu=?*)            qemu=${arg#--qemu=} ;;
    --testdev=?*)         testdev=${arg#--testdev=} ;;
    --guest=?*)           guest=${arg#--guest=}; coord_args+=("$arg") ;;
    --kvm-probe=?*)       probe=${arg#--kvm-probe=} ;;
    --coordinator=?*|--ctl=?*) coord_args+=("$arg") ;;
    -h|--help)            usage; exit 0 ;;
    *)                    echo "run: bad argument '$arg'" >&2; usage >&2
                          exit 2 ;;
    esac
done
case $timeout_s in
*[!0-9]*) echo "run: bad --timeout '$timeout_s'" >&2; exit 2 ;;
esac
# The coordinator path unless an option asks for what only the direct
# path does.
if [ -z "$direct" ] && [ "$device" = vm ] && [ "$ring" = on ] &&
   [ "$events" = on ] && [ "$window" = on ] && [ -z "$bench" ] &&
   [ "$devices" = 1 ]; then
    exec "$(dirname "${BASH_SOURCE[0]}")/run-coordinator.sh" \
        --qemu="$qemu" --gateway="$gateway" --device-image="$image" \
        --kvm-probe="$probe" ${timeout_arg:+"$timeout_arg"} \
        ${coord_args[@]+"${coord_args[@]}"}
fi
echo "devvm: the direct path: this script starts the device and the client"

# absolute paths, so that the commands shown can be pasted anywhere
abs()
{
    case $1 in
    /*) echo "$1" ;;
    *)  echo "$PWD/$1" ;;
    esac
}
qemu=$(abs "$qemu") testdev=$(abs "$testdev") guest=$(abs "$guest")
probe=$(abs "$probe") gateway=$(abs "$gateway") image=$(abs "$image")

if [ "$device" = vm ]; then
    needed=("$qemu" "$gateway" "$probe")
    files=("$guest" "$image")
else
    needed=("$qemu" "$testdev" "$probe")
    files=("$guest")
fi
for f in "${needed[@]}"; do
    [ -x "$f" ] || { echo "run: $f is missing: build first (make)" >&2; exit 2; }
done
for f in "${files[@]}"; do
    [ -f "$f" ] || { echo "run: $f is missing: build first (make)" >&2
                     exit 2; }
done

# --bench: the device on the last CPU, the rest on CPU 0
pin_dev=() pin_rest=()
ncpu=$(nproc)
if [ -n "$bench" ] && [ "$ncpu" -ge 2 ]; then
    pin_dev=(taskset -c $((ncpu - 1)))
    pin_rest=(taskset -c 0)
fi

if kvm_msg=$("$probe"); then
    accel=kvm
else
    accel=tcg
fi
echo "devvm: $kvm_msg; the VMs use $accel"

# A private run directory: ours, 0700, not a symlink.
rundir=$build/run
mkdir -p -m 0700 "$rundir" || exit 1
if [ -L "$rundir" ] || [ ! -O "$rundir" ]; then
    echo "run: $rundir is not a directory of this user" >&2
    exit 1
fi
chmod 0700 "$rundir" || exit 1
sock=$rundir/testdev-$$.sock
ready=$rundir/testdev-$$.out
serial=$rundir/serial-$$.log
gwdir=$rundir/gateway-$$
vmlog=$rundir/device-vm-$$.log

# show WHAT CMD...: print what a command is, then the command as a shell
# line (arguments quoted only when they need it)
show()
{
    local what=$1 a line=
    shift
    for a in "$@"; do
        if [[ $a =~ ^[A-Za-z0-9_,./:=@%+-]+$ ]]; then
            line+=" $a"
        else
            line+=" '${a//\'/\'\\\'\'}'"
        fi
    done
    echo "devvm: $what:"
    echo " \$$line"
}

td_pid=
gw_pid=
vm_pid=
qemu_pid=

. "$top/scripts/devvm/stop-proc.sh"

stop_device()
{
    stop_proc "device process" "$td_pid"
    td_pid=
    stop_proc "device VM" "$vm_pid"
    vm_pid=
    stop_proc "gateway" "$gw_pid"
    gw_pid=
}

cleanup()
{
    if [ -n "$qemu_pid" ]; then
        kill -TERM "$qemu_pid" 2>/dev/null
        wait "$qemu_pid" 2>/dev/null
        qemu_pid=
    fi
    stop_device
    rm -f "$sock" "$ready" "$serial" "$vmlog"
    rm -rf "$gwdir"
}
trap cleanup EXIT
trap 'echo "devvm: interrupted" >&2; exit 1' INT TERM HUP
# a reader that went away ("make run | head") must not kill us before the
# cleanup: carry on, writes just fail
trap '' PIPE

# wait_ready PID FILE LINE WHAT SECONDS: until FILE has LINE, or PID dies
wait_ready()
{
    local pid=$1 file=$2 line=$3 what=$4 secs=$5 i

    for ((i = 0; i < secs * 10; i++)); do
        grep -qx "$line" "$file" 2>/dev/null && return 0
        if ! kill -0 "$pid" 2>/dev/null; then
            wait "$pid"
            echo "run: the $what exited with status $? before it was" \
                 "ready" >&2
            return 1
        fi
        sleep 0.1
    done
    echo "run: the $what was not ready within $secs s" >&2
    return 1
}

# 1. The device.
if [ "$device" = vm ]; then
    channels=8
    gw_cmd=("$gateway" --dir "$gwdir" --channels "$channels")
    [ "$events" = on ] || gw_cmd+=(--no-client-events)
    [ "$window" = on ] || gw_cmd+=(--no-dma-window)
    show "gateway: the device VM's ivshmem server and the vfio-user server
  on $gwdir/device.sock that the client connects to" "${gw_cmd[@]}"
    ${pin_rest[@]+"${pin_rest[@]}"} "${gw_cmd[@]}" >"$ready" </dev/null &
    gw_pid=$!
    for ((i = 0; i < 100; i++)); do
        [ -S "$gwdir/ivshmem.sock" ] && break
        kill -0 "$gw_pid" 2>/dev/null || break
        sleep 0.1
    done
    [ -S "$gwdir/ivshmem.sock" ] || { echo "run: no gateway" >&2; exit 1; }

    vm_cmd=("$qemu" -M pc -nodefaults -display none -no-reboot -cpu max
            -accel "$accel" -m 64M
            -chardev "socket,path=$gwdir/ivshmem.sock,id=ivs"
            -device "ivshmem-doorbell,chardev=ivs,vectors=$channels"
            -device isa-debug-exit,iobase=0xf4,iosize=0x04
            -chardev "file,path=$vmlog,id=ser0" -serial chardev:ser0
            -kernel "$image")
    [ "$window" = on ] &&
        vm_cmd+=(-chardev "socket,path=$gwdir/dma.sock,id=dmaw"
                 -device devvm-dma-window,chardev=dmaw)
    show "device VM: QEMU ($accel) with ivshmem-doorbell and (unless
  --dma-window=off) devvm-dma-window, booting the devvm runtime with
  devvm-testdev linked in; its log is $vmlog" \
        "${vm_cmd[@]}"
    start=$(date +%s%N)
    ${pin_dev[@]+"${pin_dev[@]}"} "${vm_cmd[@]}" </dev/null &
    vm_pid=$!
    wait_ready "$gw_pid" "$ready" "ready $gwdir/device.sock" gateway 60 ||
        { sed 's/^/devvm: device VM: /' "$vmlog" >&2; exit 1; }
    end=$(date +%s%N)
    ms=$(((end - start) / 1000000))
    rss=$(sed -n 's/^VmRSS:[[:space:]]*//p' "/proc/$vm_pid/status" 2>/dev/null)
    printf 'devvm: device VM %d is READY %d.%03d s after its QEMU started' \
        "$vm_pid" $((ms / 1000)) $((ms % 1000))
    echo " (QEMU resident memory ${rss:-unknown})"
    sock=$gwdir/device.sock
else
    dev_cmd=("$testdev" --socket "$sock")
    show "device: devvm-testdev, a PCI function served by a host process over
  vfio-user on $sock (process mode)" "${dev_cmd[@]}"
    ${pin_dev[@]+"${pin_dev[@]}"} "${dev_cmd[@]}" >"$ready" </dev/null &
    td_pid=$!
    wait_ready "$td_pid" "$ready" ready "device process" 10 || { td_pid=
                                                                  exit 1; }
    echo "devvm: device process $td_pid is ready"
fi

# 2. The client VM: the device through devvm-proxy, the demo as its kernel.
proxies=()
for ((i = 0; i < devices; i++)); do
    proxies+=(-device "devvm-proxy,id=dev$i,socket=$sock,ring=$ring")
done
qemu_cmd=("$qemu" -M pc,memory-backend=ram0 -m 128M -nodefaults
          -display none -no-reboot -accel "$accel"
          -object memory-backend-memfd,id=ram0,size=128M,share=on
          -chardev "stdio,id=ser0,signal=off,logfile=$serial"
          -serial chardev:ser0
          "${proxies[@]}"
          ${bench:+-device edu -device pci-testdev -append bench}
          -device isa-debug-exit,iobase=0xf4,iosize=0x04
          -kernel "$guest")
show "client VM: QEMU ($accel) with the device as PCI function 1af4:10f1
  through devvm-proxy (ring=$ring; $devices of them), guest RAM in a shared
  memfd the device DMAs into, the devvm-demo guest as its kernel" "${qemu_cmd[@]}"
if [ "$device" = vm ]; then
    echo "devvm: (the gateway and the device VM log on stderr and $vmlog)"
fi
echo "devvm: guest serial output (timeout ${timeout_s} s):"
start=$(date +%s%N)
timeout -k 5 "$timeout_s" ${pin_rest[@]+"${pin_rest[@]}"} "${qemu_cmd[@]}" \
    </dev/null &
qemu_pid=$!
wait "$qemu_pid"
rc=$?
qemu_pid=
end=$(date +%s%N)
ms=$(((end - start) / 1000000))
printf 'devvm: client VM ran %d.%03d s (QEMU start to exit), exit status %d\n' \
    $((ms / 1000)) $((ms % 1000)) "$rc"

# 3. Stop the device, then judge.
stop_device

summary=$(grep -E '^demo: [0-9]+ checks passed' "$serial" 2>/dev/null | tail -n 1)
if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    echo "devvm: FAILED: the client VM did not finish within ${timeout_s} s"
    exit 1
fi
# isa-debug-exit: value 0 gives status 1, value 1 gives 3
if [ "$rc" -eq 1 ] && [[ $summary =~ ^demo:\ [0-9]+\ checks\ passed$ ]]; then
    echo "devvm: OK: the guest drove the device through devvm-proxy and" \
         "every check passed"
    exit 0
fi
if [ "$rc" -eq 3 ]; then
    echo "devvm: FAILED: the guest reported failed checks (${summary:-no summary})"
else
    echo "devvm: FAILED: QEMU exited with status $rc before the guest" \
         "reported success"
fi
exit 1
