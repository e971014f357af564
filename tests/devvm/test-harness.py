#!/usr/bin/env python3
"""TAP test of the device test harness (subprojects/libdevvm/harness,
docs/devvm/harness.rst).

One short script, device_checks(), drives devvm-testdev through
devvm-proxy with the harness: the IDs and the ID and VERSION registers,
the scratch registers with accesses of 1, 2, 4 and 8 bytes, the 64-bit
BAR2, a DMA FILL into guest memory between guard bytes, an MSI-X vector,
and query-devvm-proxy.  It runs against the device as a host process, in
a device VM behind devvm-gateway, and as a host process again with the
socket instead of the ring, guest RAM the device cannot map and the
64-bit BARs above 4 GiB.  After each run the client and the device must
have exited cleanly, and nothing the harness started may be left: no
process, no temporary directory.  Last, a device that fails before
"ready" and one that never says it must give an error naming the command
and showing its stderr.

    test-harness.py QEMU TESTDEV GATEWAY TESTDEV_VM_ELF QEMU_PYTHON

QEMU_PYTHON is the QEMU base's python directory (build/src/python).  The
register map comes from contrib/devvm/testdev/testdev.h.  Accesses use
random values; the seed is printed, and DEVVM_HARNESS_SEED sets it.

SPDX-License-Identifier: GPL-2.0-or-later
"""

import os
import random
import shutil
import signal
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.join(HERE, "..", "..")
sys.path.insert(0, os.path.join(TOP, "subprojects", "libdevvm", "harness"))
sys.dont_write_bytecode = True      # no __pycache__ in the source tree

import devvm_harness as harness     # noqa: E402  pylint: disable=C0413
from taplib import Tap, header_constants  # noqa: E402  pylint: disable=C0413


T = header_constants(
    os.path.join(TOP, "contrib", "devvm", "testdev", "testdev.h"), "TESTDEV")


def device_checks(dev, check, rnd, mmio64=False, **client_options):
    """What a device's test looks like with the harness; with @mmio64 the
    64-bit BARs go above 4 GiB."""
    vm = harness.Client(dev.socket, **client_options)
    with vm:
        fn = vm.function()
        fn.enable(mmio64=mmio64)
        check(fn.vendor_id == T.VENDOR_ID and fn.device_id == T.DEVICE_ID,
              f"the function is {fn.vendor_id:04x}:{fn.device_id:04x}")
        check(fn.bar_read(0, T.REG_ID, 4) == T.ID, "ID register")
        check(fn.bar_read(0, T.REG_VERSION, 4) == T.VERSION,
              "VERSION register")
        check(fn.bar_read(1, T.REG_ID, 4) == T.ID, "ID through I/O BAR1")

        # scratch registers: 8-byte write, reads of every width and place
        value = rnd.getrandbits(64)
        fn.bar_write(0, T.REG_SCRATCH64, 8, value)
        wrong = [(size, off) for size in (1, 2, 4, 8)
                 for off in range(0, 8, size)
                 if fn.bar_read(0, T.REG_SCRATCH64 + off, size)
                 != value >> 8 * off & (1 << 8 * size) - 1]
        check(not wrong, f"SCRATCH64 0x{value:016x} reads back at 1, 2, 4, "
              "8 bytes", f"wrong (size, offset): {wrong}")
        # narrower writes change only their bytes
        for size in (1, 2, 4):
            off = rnd.randrange(0, 8, size)
            part = rnd.getrandbits(8 * size)
            fn.bar_write(0, T.REG_SCRATCH64 + off, size, part)
            mask = ((1 << 8 * size) - 1) << 8 * off
            value = value & ~mask | part << 8 * off
            got = fn.bar_read(0, T.REG_SCRATCH64, 8)
            check(got == value, f"a {size}-byte write at +{off} of SCRATCH64",
                  f"read 0x{got:016x}, want 0x{value:016x}")
        word = rnd.getrandbits(32)
        fn.bar_write(0, T.REG_SCRATCH32, 4, word)
        check(fn.bar_read(0, T.REG_SCRATCH32, 4) == word,
              f"SCRATCH32 0x{word:08x}")

        # the 64-bit BAR2: its mapped half and the device's half
        bar2 = fn.bars[2]
        check(bar2.is64 and bar2.prefetchable
              and (bar2.address >= 1 << 32) == mmio64, str(bar2))
        for off in (0x10, bar2.size // 2 + 0x10):
            qword = rnd.getrandbits(64)
            fn.bar_write(2, off, 8, qword)
            got = fn.bar_read(2, off, 8)
            check(got == qword, f"BAR2 +0x{off:x}: 8 bytes",
                  f"read 0x{got:016x}, want 0x{qword:016x}")

        # DMA FILL between guard bytes (a length that is not a multiple
        # of the pattern)
        length, guard, fill = 1002, 16, 0x5a
        buf = vm.alloc(length + 2 * guard, 4096)
        vm.mem_fill(buf, length + 2 * guard, fill)
        pattern = rnd.getrandbits(32)
        fn.bar_write(0, T.REG_DMA_DST, 8, buf + guard)
        fn.bar_write(0, T.REG_DMA_LEN, 4, length)
        fn.bar_write(0, T.REG_DMA_PATTERN, 4, pattern)
        fn.bar_write(0, T.REG_DMA_CMD, 4, T.DMA_FILL)
        status = fn.bar_read(0, T.REG_DMA_STATUS, 4)
        got = vm.mem_read(buf, length + 2 * guard)
        want = (bytes([fill]) * guard
                + (pattern.to_bytes(4, "little") * (length // 4 + 1))[:length]
                + bytes([fill]) * guard)
        bad = [i - guard for i in range(len(want)) if got[i] != want[i]]
        check(status == 0 and not bad,
              f"DMA FILL of {length} bytes of 0x{pattern:08x}, guards kept",
              f"DMA_STATUS {status}; wrong bytes at (from the start) "
              f"{bad[:16]}")

        # an MSI-X vector
        vectors = fn.msix_setup()
        check(vectors == T.MSIX_VECTORS, f"{vectors} MSI-X vectors")
        before = fn.bar_read(0, T.REG_IRQ_COUNT, 4)
        vector = rnd.randrange(vectors)
        fn.bar_write(0, T.REG_MSIX, 4, vector)
        fn.wait_msix(vector, timeout=5)
        check(fn.bar_read(0, T.REG_IRQ_COUNT, 4) == before + 1,
              f"MSI-X vector {vector} delivered")

        info = vm.proxy_info()
        check(info["state"] == "connected" and info["failures"] == 0
              and info["irqs"] >= 1 and info["ring"] == vm.ring,
              "query-devvm-proxy: connected, the interrupt counted",
              str(info))
        check(dev.alive(), "the device still runs", dev.log())
    check(vm.exit_status == 0, "the client QEMU quit cleanly",
          f"exit status {vm.exit_status}\n{vm.log()}")


def left_behind(tmpdir):
    """This process's children and what is in @tmpdir."""
    me = os.getpid()
    left = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8") as f:
                # pid (comm) state ppid ...
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == me:
            left.append(f"process {entry}")
    return left + os.listdir(tmpdir)


def run(tap, name, make_device, rnd, tmpdir, **client_options):
    """device_checks() on the device make_device() gives; nothing left
    after it."""
    def check(passed, description, diagnostics=""):
        return tap.ok(passed, f"{name}: {description}", diagnostics)

    start = time.monotonic()
    dev = make_device()
    try:
        with dev:
            device_checks(dev, check, rnd, tmpdir=tmpdir, **client_options)
    except Exception as exc:        # pylint: disable=broad-except
        check(False, f"{type(exc).__name__}",
              f"{traceback.format_exc()}{dev.log()}")
    check(dev.exit_status and not any(dev.exit_status.values()),
          "the device exited cleanly on SIGTERM", str(dev.exit_status))
    left = left_behind(tmpdir)
    check(not left, "nothing left behind", ", ".join(left))
    tap.diag(f"{name}: {time.monotonic() - start:.1f} s")


def check_errors(tap, testdev, tmpdir):
    """A device that fails before "ready", and one that never says it."""
    try:
        harness.ProcessDevice(testdev, ["--no-such-option"],
                              tmpdir=tmpdir).start()
        tap.ok(False, "a failing device: an error")
    except harness.HarnessError as exc:
        msg = str(exc)
        tap.ok("exited with status 2" in msg and testdev in msg
               and "--no-such-option" in msg and "usage:" in msg,
               "a failing device: the error names the command and shows "
               "its stderr", msg)
    script = ("import sys, time\n"
              "print('still starting', file=sys.stderr, flush=True)\n"
              "time.sleep(60)\n")
    dev = harness.ProcessDevice(sys.executable, ["-c", script],
                                ready_timeout=1, tmpdir=tmpdir)
    start = time.monotonic()
    try:
        dev.start()
        tap.ok(False, "a silent device: a timeout")
    except harness.HarnessTimeout as exc:
        took = time.monotonic() - start
        msg = str(exc)
        tap.ok(took < 5 and "within 1 s" in msg and "still starting" in msg
               and "--socket" in msg and not left_behind(tmpdir),
               f"a silent device: HarnessTimeout after {took:.1f} s with "
               "its command and stderr, nothing left", msg)


def main(argv):
    if len(argv) != 6:
        print(f"usage: {argv[0]} QEMU TESTDEV GATEWAY TESTDEV_VM_ELF "
              "QEMU_PYTHON", file=sys.stderr)
        return 2
    qemu, testdev, gateway, image, python_path = argv[1:]
    # a test runner's SIGTERM stops everything through the with blocks
    signal.signal(signal.SIGTERM, lambda sig, frame: sys.exit(128 + sig))
    seed = int(os.environ.get("DEVVM_HARNESS_SEED", time.time_ns() % 10**6))
    rnd = random.Random(seed)
    tap = Tap()
    tap.diag(f"seed {seed} (DEVVM_HARNESS_SEED)")
    client = {"qemu": qemu, "python_path": python_path}
    # everything the harness makes goes here, to see that it is removed
    tmpdir = tempfile.mkdtemp(prefix="test-harness-")
    try:
        run(tap, "process",
            lambda: harness.ProcessDevice(testdev, tmpdir=tmpdir), rnd,
            tmpdir, **client)
        run(tap, "device VM",
            lambda: harness.DeviceVM(image, gateway=gateway, qemu=qemu,
                                     tmpdir=tmpdir), rnd, tmpdir, **client)
        run(tap, "process, socket, private RAM, BARs above 4 GiB",
            lambda: harness.ProcessDevice(testdev, tmpdir=tmpdir), rnd,
            tmpdir, ring=False, memfd=False, mmio64=True, **client)
        check_errors(tap, testdev, tmpdir)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    return tap.finish()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
