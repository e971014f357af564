#!/usr/bin/env bash
# TAP test: libdevvm interoperates with other vfio-user implementations.
#
#   (a) libdevvm's client (devvm-test-client) against libvfio-user's
#       gpio-pci-idio-16 sample server: plain vfio-user, every region and
#       IRQ index, config space, the sample's BAR2 counter, SET_IRQS,
#       DMA_MAP/UNMAP, DEVICE_RESET
#   (b) libvfio-user's sample client against devvm-testdev: only its
#       first steps, since the rest of it is written for samples/server.c
#       (its exact region count, IDs, dirty page logging and migration)
#   (c) QEMU's stock vfio-user-pci against devvm-testdev, driven over
#       qtest: the device shows up on bus 0, BAR0 sizes, maps and answers
#   (d) devvm-test-client against devvm-testdev: devvm negotiated
#   (e) (c) and (d) again against devvm-testdev in a device VM, behind
#       devvm-gateway
#
# One devvm-testdev serves (b), (c) and (d) one after the other; it
# must then exit cleanly on SIGTERM.
#
#   test-vfio-user-compat.sh QEMU_BUILDDIR LIBVFIO_USER_BUILDDIR \
#       DEVVM_TEST_SERVER DEVVM_TEST_CLIENT [GATEWAY TESTDEV_VM_ELF]
#
# SPDX-License-Identifier: GPL-2.0-or-later

set -euo pipefail

usage="usage: test-vfio-user-compat.sh QEMU_BUILDDIR LIBVFIO_USER_BUILDDIR"
usage+=" DEVVM_TESTDEV DEVVM_TEST_CLIENT"
qemu_build=${1:?$usage}
vfu_build=${2:?$usage}
server=${3:?$usage}
client=${4:?$usage}
gateway=${5:-}
image=${6:-}
. "$(dirname "${BASH_SOURCE[0]}")/tap.sh"

qemu=$qemu_build/qemu-system-x86_64
gpio=$vfu_build/samples/gpio-pci-idio-16
vfu_client=$vfu_build/samples/client

# Background processes still running at exit are stopped.
bg_pids=()
cleanup()
{
    local pid
    for pid in "${bg_pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT

# diag FILE: show a file as TAP diagnostics
diag()
{
    sed 's/^/#   /' "$1"
}

# wait_until SECONDS COMMAND...: poll every 0.1 s until COMMAND succeeds
wait_until()
{
    local n=$(($1 * 10))
    shift
    while ! "$@"; do
        n=$((n - 1))
        [ $n -gt 0 ] || return 1
        sleep 0.1
    done
}

# need FILE BUILDDIR WHAT: a prerequisite; a failed case when it is missing
need()
{
    [ -x "$1" ] && return 0
    ok 1 "$3: $1 is missing (build it: ninja -C $2, or make)"
    return 1
}

# check DESCRIPTION COMMAND...: one case, passed when COMMAND succeeds
check()
{
    local desc=$1 rc=0
    shift
    "$@" || rc=$?
    ok $rc "$desc"
}

# tap_import PREFIX FILE: a TAP stream's results become cases of this
# test, its comments stay comments.  Sets $imported to the number of
# results and $import_fails to the failed ones.
tap_import()
{
    local prefix=$1 line re='^(not )?ok( +[0-9]+)?( +-)? *(.*)$'
    imported=0
    import_fails=0
    while IFS= read -r line; do
        if [[ $line =~ $re ]]; then
            imported=$((imported + 1))
            if [ -n "${BASH_REMATCH[1]}" ]; then
                import_fails=$((import_fails + 1))
                ok 1 "$prefix${BASH_REMATCH[4]}"
            else
                ok 0 "$prefix${BASH_REMATCH[4]}"
            fi
        elif [[ $line == "#"* ]]; then
            echo "$line"
        elif ! [[ $line =~ ^1\.\.[0-9]+$ ]]; then
            echo "#   $line"
        fi
    done <"$2"
}

# ---- (a) devvm-test-client vs libvfio-user's gpio-pci-idio-16 -----------

case_a()
{
    local sock=$tmp/gpio.sock pid rc=0
    local what="libdevvm client vs libvfio-user gpio server"

    need "$gpio" "$vfu_build" "$what" || return 0
    timeout 120 "$gpio" "$sock" >"$tmp/gpio.log" 2>&1 &
    pid=$!
    bg_pids+=("$pid")
    if ! wait_until 10 test -S "$sock"; then
        ok 1 "libvfio-user gpio-pci-idio-16 listens on its socket"
        diag "$tmp/gpio.log"
        return 0
    fi
    timeout 60 "$client" "$sock" --expect-plain >"$tmp/a.tap" 2>&1 || rc=$?
    tap_import "libvfio-user gpio server: " "$tmp/a.tap"
    if [ $rc -ne 0 ] || [ $imported -eq 0 ]; then
        ok 1 "libvfio-user gpio server: devvm-test-client exits 0"
        echo "#   exit status $rc, $imported results; the server said:"
        diag "$tmp/gpio.log"
    fi
    # the sample ignores SIGINT (it restarts its loop)
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# ---- (b) libvfio-user's sample client vs devvm-testdev -------------

case_b()
{
    local sock=$1 rc=0 what="libvfio-user sample client vs devvm-testdev"

    need "$vfu_client" "$vfu_build" "$what" || return 0
    timeout 60 "$vfu_client" "$sock" >"$tmp/b.log" 2>&1 || rc=$?
    # It checks VERSION, then that a read of region 0xdeadbeef fails with
    # EINVAL, then DEVICE_GET_INFO, whose reply must say 10 regions:
    # samples/server.c's 9 PCI regions plus a migration region.
    check "$what: VERSION, EINVAL for a bogus region and DEVICE_GET_INFO" \
        grep -q 'bad number of device regions 9$' "$tmp/b.log"
    [ $rc -ne 124 ] || echo "#   it timed out"
    diag "$tmp/b.log"
    ok 0 "$what: the rest of samples/client.c # SKIP written for\
 samples/server.c's device: 10 regions (one for migration), config IDs\
 dead:beef, DIRTY_PAGES, migration to a second server"
}

# ---- (c) QEMU's vfio-user-pci vs devvm-testdev ---------------------

# qtest driver (python3 -c; args: QEMU SOCKET QTEST_LOG): prints
# TAP results without numbers.
qtest_driver=$(cat <<'EOF'
import os
import select
import subprocess
import sys
import time

qemu, sock, qtest_log = sys.argv[1:4]
BAR0_ADDR = 0xfe000000
BAR0_SIZE = 0x1000
VENDOR_DEVICE = 0x10f11af4
TS_ID = 0x7e570001
TS_RESETS = 0xd0


def ok(cond, desc, *diags):
    print(("ok - " if cond else "not ok - ") + desc)
    for d in diags:
        print("#   " + d)
    sys.stdout.flush()
    return cond


class QTestError(Exception):
    pass


class QTest:
    def __init__(self):
        dev = ('{"driver":"vfio-user-pci","socket":{"path":"%s",'
               '"type":"unix"}}' % sock)
        argv = [qemu, "-M", "pc", "-nodefaults", "-display", "none",
                "-accel", "tcg", "-S", "-qtest", "stdio",
                "-qtest-log", qtest_log, "-device", dev]
        print("# " + " ".join(argv))
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE)
        self.buf = b""

    def cmd(self, line, timeout=10):
        try:
            self.p.stdin.write((line + "\n").encode())
            self.p.stdin.flush()
        except BrokenPipeError:
            raise QTestError("%s: QEMU is gone" % line)
        deadline = time.monotonic() + timeout
        while True:
            while b"\n" not in self.buf:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise QTestError("%s: no answer in %d s" % (line, timeout))
                r, _, _ = select.select([self.p.stdout], [], [], left)
                if r:
                    chunk = os.read(self.p.stdout.fileno(), 4096)
                    if not chunk:
                        raise QTestError("%s: QEMU is gone" % line)
                    self.buf += chunk
            reply, self.buf = self.buf.split(b"\n", 1)
            words = reply.decode(errors="replace").split()
            if words and words[0] == "IRQ":
                continue
            if not words or words[0] != "OK":
                raise QTestError("%s: %s" % (line, " ".join(words)))
            return int(words[1], 16) if len(words) > 1 else None

    def stop(self):
        self.p.terminate()
        try:
            return self.p.wait(10)
        except subprocess.TimeoutExpired:
            self.p.kill()
            return self.p.wait()

    # PCI configuration mechanism #1, bus 0
    def cfg_select(self, slot, off):
        self.cmd("outl 0xcf8 0x%x" % (0x80000000 | slot << 11 | off & 0xfc))

    def cfg_readl(self, slot, off):
        self.cfg_select(slot, off)
        return self.cmd("inl 0xcfc")

    def cfg_writel(self, slot, off, val):
        self.cfg_select(slot, off)
        self.cmd("outl 0xcfc 0x%x" % val)

    def cfg_readw(self, slot, off):
        self.cfg_select(slot, off)
        return self.cmd("inw 0x%x" % (0xcfc + (off & 2)))

    def cfg_writew(self, slot, off, val):
        self.cfg_select(slot, off)
        self.cmd("outw 0x%x 0x%x" % (0xcfc + (off & 2), val))


def run(q):
    # the first answer: QEMU realized the device and runs qtest
    q.cfg_readl(0, 0)
    ok(True, "QEMU starts with the device and answers qtest")

    found = [s for s in range(32) if q.cfg_readl(s, 0) == VENDOR_DEVICE]
    if not ok(len(found) == 1, "vendor:device 1af4:10f1 on bus 0",
              "found at slots %s" % found):
        return
    slot = found[0]
    print("# the device is at 00:%02x.0" % slot)

    v = q.cfg_readl(slot, 0x08)
    ok(v >> 8 == 0xff0000, "config space: class ff0000",
       "class/revision 0x%08x" % v)
    v = q.cfg_readl(slot, 0x0c) >> 16 & 0x7f
    ok(v == 0, "config space: header type 0", "header type 0x%02x" % v)

    q.cfg_writel(slot, 0x10, 0xffffffff)
    v = q.cfg_readl(slot, 0x10)
    ok(v == (~(BAR0_SIZE - 1) & 0xffffffff),
       "BAR0 sizes as 4 KiB of 32-bit memory (from the region info)",
       "BAR0 after writing ~0: 0x%08x" % v)
    q.cfg_writel(slot, 0x14, 0xffffffff)
    v = q.cfg_readl(slot, 0x14)
    ok(v == 0xffffff01, "BAR1 sizes as 256 bytes of I/O",
       "BAR1 after writing ~0: 0x%08x" % v)

    q.cfg_writel(slot, 0x10, BAR0_ADDR)
    v = q.cfg_readl(slot, 0x10)
    ok(v == BAR0_ADDR, "BAR0 programmed to 0x%x" % BAR0_ADDR,
       "BAR0 reads 0x%08x" % v)
    cmd = q.cfg_readw(slot, 0x04)
    q.cfg_writew(slot, 0x04, cmd | 0x2)
    v = q.cfg_readw(slot, 0x04)
    ok(v & 0x2, "memory space enabled in the command register",
       "command 0x%04x, was 0x%04x" % (v, cmd))

    v = q.cmd("readl 0x%x" % BAR0_ADDR)
    ok(v == TS_ID, "readl of BAR0 offset 0: ID register 0x%08x" % TS_ID,
       "got 0x%08x" % v)
    v = q.cmd("readl 0x%x" % (BAR0_ADDR + TS_RESETS))
    ok(v >= 1, "QEMU reset the device when the machine was reset",
       "DEVICE_RESETs seen by the device: %d" % v)

    checks = [("b", 0x20, 0x5a), ("w", 0x22, 0xbeef),
              ("l", 0x24, 0x12345678), ("q", 0x10, 0x1122334455667788)]
    for width, off, val in checks:
        q.cmd("write%s 0x%x 0x%x" % (width, BAR0_ADDR + off, val))
        v = q.cmd("read%s 0x%x" % (width, BAR0_ADDR + off))
        ok(v == val, "write%s/read%s round trip at BAR0 offset 0x%x"
           % (width, width, off), "wrote 0x%x, read 0x%x" % (val, v))
    q.cmd("writel 0x%x 0" % BAR0_ADDR)
    v = q.cmd("readl 0x%x" % BAR0_ADDR)
    ok(v == TS_ID, "the ID register ignores a write", "got 0x%08x" % v)


q = QTest()
try:
    run(q)
except QTestError as e:
    ok(False, "qtest: %s" % e)
status = q.stop()
ok(status in (0, -15), "QEMU exits cleanly on SIGTERM",
   "exit status %d" % status)
EOF
)

case_c()
{
    local sock=$1 rc=0 what="QEMU vfio-user-pci vs ${2:-devvm-testdev}"

    need "$qemu" "$qemu_build" "$what" || return 0
    timeout 120 python3 -c "$qtest_driver" "$qemu" "$sock" "$tmp/qtest.log" \
        >"$tmp/c.tap" 2>"$tmp/qemu.err" || rc=$?
    tap_import "QEMU vfio-user-pci${2:+ vs $2}: " "$tmp/c.tap"
    if [ $rc -ne 0 ] || [ $import_fails -ne 0 ] || [ $imported -eq 0 ]; then
        ok 1 "$what: the qtest driver finished"
        echo "#   exit status $rc; QEMU's stderr:"
        diag "$tmp/qemu.err"
        echo "#   the end of the qtest log:"
        tail -n 20 "$tmp/qtest.log" | diag /dev/stdin
    elif [ -s "$tmp/qemu.err" ]; then
        echo "# QEMU's stderr:"
        diag "$tmp/qemu.err"
    fi
}

# ---- (d) devvm-test-client vs devvm-testdev ------------------------

case_d()
{
    local sock=$1 rc=0 what=${2:-devvm-testdev}

    timeout 60 "$client" "$sock" --expect-devvm >"$tmp/d.tap" 2>&1 || rc=$?
    tap_import "devvm client vs $what: " "$tmp/d.tap"
    if [ $rc -ne 0 ] || [ $imported -eq 0 ]; then
        ok 1 "devvm client vs $what: devvm-test-client exits 0"
        echo "#   exit status $rc"
    fi
}

# ---- (e) the same device in a device VM, behind devvm-gateway ------

case_e()
{
    local gwdir=$tmp/gw what="a device VM"
    local gw_pid vm_pid

    if [ -z "$gateway" ] || [ -z "$image" ]; then
        ok 0 "$what # SKIP no devvm-gateway or device VM image given"
        return 0
    fi
    need "$qemu" "$qemu_build" "$what" || return 0
    "$gateway" --dir "$gwdir" --channels 8 >"$tmp/gw.out" \
        2>"$tmp/gw.log" &
    gw_pid=$!
    bg_pids+=("$gw_pid")
    wait_until 10 test -S "$gwdir/ivshmem.sock" || true
    "$qemu" -M pc -nodefaults -display none -accel tcg -cpu max -m 64M \
        -chardev "socket,path=$gwdir/ivshmem.sock,id=ivs" \
        -device ivshmem-doorbell,chardev=ivs,vectors=8 \
        -device isa-debug-exit,iobase=0xf4,iosize=0x04 \
        -serial "file:$tmp/vm.log" -kernel "$image" </dev/null \
        >"$tmp/vm.err" 2>&1 &
    vm_pid=$!
    bg_pids+=("$vm_pid")
    if ! wait_until 60 grep -qx "ready $gwdir/device.sock" "$tmp/gw.out"; then
        ok 1 "devvm-gateway: the device VM is ready"
        diag "$tmp/gw.log"
        diag "$tmp/vm.log"
        return 0
    fi
    ok 0 "devvm-gateway: the device VM is ready"
    case_c "$gwdir/device.sock" "$what"
    case_d "$gwdir/device.sock" "$what"
    kill -TERM "$vm_pid"
    wait "$vm_pid" || true
    rc=0
    kill -TERM "$gw_pid"
    wait "$gw_pid" || rc=$?
    ok $rc "devvm-gateway exits 0 on SIGTERM"
    check "... and removes its sockets" test ! -e "$gwdir/device.sock" \
        -a ! -e "$gwdir/ivshmem.sock"
    diag "$tmp/gw.log"
}

case_a

sock=$tmp/devvm.sock
timeout 300 "$server" --socket "$sock" --verbose >"$tmp/server.out" \
    2>"$tmp/server.log" &
server_pid=$!
bg_pids+=("$server_pid")
if wait_until 10 grep -qx ready "$tmp/server.out"; then
    ok 0 "devvm-testdev says it is ready"
    case_b "$sock"
    case_c "$sock"
    case_d "$sock"

    rc=0
    kill -TERM "$server_pid"
    wait "$server_pid" || rc=$?
    ok $rc "devvm-testdev exits 0 on SIGTERM"
    check "... and removes its socket" test ! -e "$sock"
    clients=$(grep -c ': client connected$' "$tmp/server.log" || true)
    left=$(grep -c ': client went away$' "$tmp/server.log" || true)
    check "devvm-testdev: all $clients clients left without a protocol\
 error" test "$clients" -ge 1 -a "$clients" = "$left"
    diag "$tmp/server.log"
else
    ok 1 "devvm-testdev says it is ready"
    diag "$tmp/server.log"
fi

case_e

echo "1..$tap_n"
tap_exit
