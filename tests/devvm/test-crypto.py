#!/usr/bin/env python3
"""TAP test of devvm-crypto (contrib/devvm/crypto, docs/devvm/crypto.rst)
at the register level, through devvm-proxy with the device test harness,
as a host process and in a device VM.

A driver written here from the datasheet's constants (crypto.h) runs the
ring: SHA-256 of 0, 1, 63, 64, 65, 4095, 4096 and 1 MiB bytes and CRC32C
checked against Python's hashlib and a CRC32C written here; sources over
several unaligned SG entries; a hash split over three descriptors with
the state saved and restored (and a state from the device's other
operation refused); 32 descriptors posted with one doorbell, completed in
order; interrupt coalescing (8 completions per interrupt, counted by the
client's devvm-proxy); then every malformed kind (an unknown operation,
bad flags, too many SG entries, too small a digest buffer, an SG list, a
source, a digest and a state outside the client's memory, a state that is
not one, a producer index out of range, a bad ring, an unreadable ring),
each with its status and error log entry, and a good hash after each.

    test-crypto.py QEMU CRYPTO GATEWAY CRYPTO_VM_ELF QEMU_PYTHON

SPDX-License-Identifier: GPL-2.0-or-later
"""

import hashlib
import os
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.join(HERE, "..", "..")
sys.path.insert(0, os.path.join(TOP, "subprojects", "libdevvm", "harness"))
sys.dont_write_bytecode = True      # no __pycache__ in the source tree

import devvm_harness as harness     # noqa: E402  pylint: disable=C0413
from taplib import Tap, header_constants  # noqa: E402  pylint: disable=C0413


C = header_constants(
    os.path.join(TOP, "contrib", "devvm", "crypto", "crypto.h"), "CRYPTO")
C.MAX_SEG_LEN = 16 << 20       # an expression there: (16u << 20)
UNMAPPED = 0x7f0000000000      # far above the client's RAM


def crc32c(data):
    """CRC32C (Castagnoli, reflected), as the kernel's crc32c."""
    crc = 0xffffffff
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82f63b78 if crc & 1 else crc >> 1
    return (~crc & 0xffffffff).to_bytes(4, "little")


class Driver:
    """The ring, driven the way the datasheet says."""

    def __init__(self, vm, fn, slots=64):
        self.vm, self.fn, self.slots = vm, fn, slots
        self.ring = vm.alloc(slots * C.DESC_SIZE, 4096)
        self.prod = 0
        self.reset()

    def reg(self, off):
        return self.fn.bar_read(0, off, 4)

    def set(self, off, value):
        self.fn.bar_write(0, off, 4, value)

    def reset(self):
        self.set(C.REG_CTRL, C.CTRL_RESET)
        self.prod = 0
        self.set(C.REG_RING_BASE_LO, self.ring & 0xffffffff)
        self.set(C.REG_RING_BASE_HI, self.ring >> 32)
        self.set(C.REG_RING_SIZE, self.slots)
        self.set(C.REG_IRQ_MASK, 0)
        self.set(C.REG_CTRL, C.CTRL_ENABLE)

    def put(self, data):
        """Copy @data into fresh guest memory; its address."""
        addr = self.vm.alloc(max(len(data), 1), 64)
        if data:
            self.vm.mem_write(addr, data)
        return addr

    def sg(self, pieces):
        """An SG list of (address, length); its address."""
        table = b"".join(a.to_bytes(8, "little") + n.to_bytes(4, "little") +
                         bytes(4) for a, n in pieces)
        return self.put(table)

    def post(self, op=C.OP_SHA256, flags=C.F_INIT | C.F_FINAL, sg=0,
             count=0, dst=0, dst_len=32, state=0, cookie=0):
        """Write a descriptor at PROD (the doorbell is separate)."""
        d = bytes([op, flags]) + count.to_bytes(2, "little") + bytes(4)
        d += sg.to_bytes(8, "little") + dst.to_bytes(8, "little")
        d += dst_len.to_bytes(4, "little") + bytes(4)
        d += state.to_bytes(8, "little") + cookie.to_bytes(8, "little")
        d += bytes(16)
        slot = self.prod % self.slots
        self.vm.mem_write(self.ring + slot * C.DESC_SIZE, d)
        self.prod = (self.prod + 1) & 0xffffffff
        return slot

    def ring_doorbell(self):
        self.set(C.REG_RING_PROD, self.prod)

    def wait_cons(self, timeout=60.0):
        deadline = time.monotonic() + timeout
        while self.reg(C.REG_RING_CONS) != self.prod:
            if time.monotonic() > deadline:
                raise harness.HarnessTimeout(
                    f"CONS {self.reg(C.REG_RING_CONS)}, PROD {self.prod}, "
                    f"STATUS 0x{self.reg(C.REG_STATUS):x}")
            time.sleep(0.002)

    def status(self, slot):
        """(status word, RESULT_LEN) written back into @slot."""
        raw = self.vm.mem_read(self.ring + slot * C.DESC_SIZE +
                               C.D_RESULT_LEN, 8)
        return (int.from_bytes(raw[4:], "little"),
                int.from_bytes(raw[:4], "little"))

    def run(self, **desc):
        """Post one descriptor, ring, wait; its (status, result_len)."""
        slot = self.post(**desc)
        self.ring_doorbell()
        self.wait_cons()
        return self.status(slot)

    def digest(self, data, op=C.OP_SHA256, pieces=1, offset=0):
        """Hash @data in @pieces SG entries starting @offset bytes into
        an aligned buffer; (status, digest)."""
        size = C.SHA256_DIGEST if op == C.OP_SHA256 else C.CRC32C_DIGEST
        base = self.put(bytes(offset) + data) + offset if data else 0
        cut = [len(data) * i // pieces for i in range(pieces + 1)]
        sg = self.sg([(base + cut[i], cut[i + 1] - cut[i])
                      for i in range(pieces)]) if data else 0
        dst = self.vm.alloc(64, 64)
        st, _ = self.run(op=op, sg=sg, count=pieces if data else 0, dst=dst,
                         dst_len=size)
        return st, self.vm.mem_read(dst, size)

    def last_error(self):
        """(count, seq, code, index, detail) of the newest log entry."""
        n = self.reg(C.REG_ERR_COUNT)
        off = C.REG_ERR_LOG + (n - 1) % C.ERR_LOG_LEN * 16
        words = [self.reg(off + 4 * i) for i in range(4)]
        return (n, words[0], words[1] & 0xffff, words[1] >> 16,
                words[2] | words[3] << 32)


def device_checks(dev, tap, mode, **client_options):
    """Everything, against one device."""
    check = tap.ok
    vm = harness.Client(dev.socket, ram_mb=64, **client_options)
    with vm:
        fn = vm.function()
        fn.enable()
        check(fn.vendor_id == C.VENDOR_ID and fn.device_id == C.DEVICE_ID,
              f"{mode}: the function is {fn.vendor_id:04x}:"
              f"{fn.device_id:04x}")
        drv = Driver(vm, fn)
        caps = drv.reg(C.REG_CAPS)
        check(drv.reg(C.REG_ID) == C.ID and drv.reg(C.REG_VERSION) == 1 and
              caps & C.CAP_SHA256 and caps & C.CAP_CRC32C and
              caps >> C.CAP_MAX_SG_SHIFT == C.MAX_SG,
              f"{mode}: ID, VERSION 1, CAPS 0x{caps:08x} (SHA-256, CRC32C, "
              f"{C.MAX_SG} SG entries)")
        check(drv.reg(C.REG_STATUS) == C.STATUS_ENABLED,
              f"{mode}: the ring is enabled (STATUS 0x"
              f"{drv.reg(C.REG_STATUS):x})")
        msix = vm.alloc(16, 64)
        fn.msix_setup(msix)

        # known answers, sizes around the block size
        wrong = []
        for n in (0, 1, 63, 64, 65, 4095, 4096):
            data = bytes((i * 7 + n) & 0xff for i in range(n))
            st, got = drv.digest(data)
            if st != C.ST_DONE or got != hashlib.sha256(data).digest():
                wrong.append((n, hex(st), got.hex()))
        check(not wrong, f"{mode}: SHA-256 of 0, 1, 63, 64, 65, 4095, 4096 "
              "bytes matches hashlib", wrong)
        data = os.urandom(1 << 20)
        t0 = time.monotonic()
        st, got = drv.digest(data, pieces=3, offset=5)
        secs = time.monotonic() - t0
        check(st == C.ST_DONE and got == hashlib.sha256(data).digest(),
              f"{mode}: SHA-256 of 1 MiB in 3 unaligned SG entries "
              f"({secs:.2f} s with the harness's copying)")
        data = os.urandom(3001)
        st, got = drv.digest(data, op=C.OP_CRC32C, pieces=2, offset=3)
        check(st == C.ST_DONE and got == crc32c(data),
              f"{mode}: CRC32C of 3001 bytes in 2 SG entries",
              f"{got.hex()} != {crc32c(data).hex()}")
        fn.wait_msix(0, timeout=10)
        check(drv.reg(C.REG_IRQ_STATUS) & C.IRQ_DONE,
              f"{mode}: completions raise MSI-X vector 0 with IRQ_STATUS "
              "DONE")
        drv.set(C.REG_IRQ_STATUS, C.IRQ_DONE | C.IRQ_ERROR)

        # a hash over three descriptors: INIT|STATE_OUT, STATE_IN|
        # STATE_OUT, STATE_IN|FINAL
        data = os.urandom(200)
        parts = (data[:70], data[70:133], data[133:])
        state = drv.vm.alloc(C.STATE_SIZE, 64)
        dst = drv.vm.alloc(64, 64)
        flags = (C.F_INIT | C.F_STATE_OUT, C.F_STATE_IN | C.F_STATE_OUT,
                 C.F_STATE_IN | C.F_FINAL)
        sts = []
        for part, fl in zip(parts, flags):
            sg = drv.sg([(drv.put(part), len(part))])
            sts.append(drv.run(sg=sg, count=1, flags=fl, state=state,
                               dst=dst)[0])
        check(sts == [C.ST_DONE] * 3 and drv.vm.mem_read(dst, 32) ==
              hashlib.sha256(data).digest(),
              f"{mode}: SHA-256 of 200 bytes over 3 descriptors through "
              "the saved state (70 + 63 + 67 bytes)", sts)
        saved = drv.vm.mem_read(state, C.STATE_SIZE)
        check(saved[:4] == C.STATE_MAGIC.to_bytes(4, "little"),
              f"{mode}: the state starts with its magic")

        # 32 in flight, one doorbell; coalescing 8 per interrupt
        irqs0 = vm.proxy_info()["irqs"]
        count0 = drv.reg(C.REG_IRQ_COUNT)
        drv.set(C.REG_COAL_COUNT, 8)
        datas = [os.urandom(100 + i) for i in range(32)]
        dsts = [drv.vm.alloc(32, 64) for _ in datas]
        sgs = [drv.sg([(drv.put(d), len(d))]) for d in datas]
        slots = [drv.post(sg=s, count=1, dst=o, cookie=i)
                 for i, (s, o) in enumerate(zip(sgs, dsts))]
        drv.ring_doorbell()
        drv.wait_cons()
        bad = [i for i, (d, o, s) in enumerate(zip(datas, dsts, slots))
               if drv.status(s) != (C.ST_DONE, len(d)) or
               drv.vm.mem_read(o, 32) != hashlib.sha256(d).digest()]
        check(not bad, f"{mode}: 32 descriptors posted with one doorbell "
              "all complete, each with its digest and RESULT_LEN", bad)
        time.sleep(0.2)
        count = drv.reg(C.REG_IRQ_COUNT) - count0
        irqs = vm.proxy_info()["irqs"] - irqs0
        check(count == 4 and 1 <= irqs <= 4,
              f"{mode}: COAL_COUNT 8: 4 interrupts for 32 completions "
              f"(IRQ_COUNT {count}; devvm-proxy delivered {irqs}: edges "
              "close together may merge on their way)")
        # the coalescing timer: 3 completions, COAL_COUNT 100, 2 ms
        drv.set(C.REG_COAL_COUNT, 100)
        drv.set(C.REG_COAL_USEC, 2000)
        count0 = drv.reg(C.REG_IRQ_COUNT)
        for d, o in zip(datas[:3], dsts[:3]):
            drv.post(sg=drv.sg([(drv.put(d), len(d))]), count=1, dst=o)
        drv.ring_doorbell()
        drv.wait_cons()
        deadline = time.monotonic() + 5
        while drv.reg(C.REG_IRQ_COUNT) == count0 and \
                time.monotonic() < deadline:
            time.sleep(0.001)
        time.sleep(0.05)
        check(drv.reg(C.REG_IRQ_COUNT) - count0 == 1,
              f"{mode}: COAL_COUNT 100, COAL_USEC 2000: one interrupt for "
              "3 completions, from the timer",
              f"IRQ_COUNT +{drv.reg(C.REG_IRQ_COUNT) - count0}")
        drv.set(C.REG_COAL_COUNT, 1)
        drv.set(C.REG_COAL_USEC, 0)

        # malformed descriptors: status, log entry, and a good one after
        good = b"after an error"

        def malformed(what, want, **desc):
            n0 = drv.reg(C.REG_ERR_COUNT)
            slot = drv.post(**desc)
            drv.ring_doorbell()
            drv.wait_cons()
            st, _ = drv.status(slot)
            n, seq, code, index, detail = drv.last_error()
            st2, got = drv.digest(good)
            check(st == C.ST_DONE | want and n == n0 + 1 and seq == n and
                  code == want and index == slot and st2 == C.ST_DONE and
                  got == hashlib.sha256(good).digest(),
                  f"{mode}: {what}: status {want}, logged (slot {index}, "
                  f"detail 0x{detail:x}); the next hash is right",
                  f"status 0x{st:x}, log count {n0} -> {n}, seq {seq}, "
                  f"code {code}, index {index}, then 0x{st2:x}")
            return detail

        src = drv.put(b"x" * 100)
        one = drv.sg([(src, 100)])
        malformed("an unknown operation", C.ST_BAD_OP, op=2, sg=one,
                  count=1, dst=dst)
        malformed("INIT and STATE_IN together", C.ST_BAD_FLAGS,
                  flags=C.F_INIT | C.F_STATE_IN, sg=one, count=1, dst=dst,
                  state=state)
        malformed("an unknown flag", C.ST_BAD_FLAGS,
                  flags=C.F_INIT | 0x80, sg=one, count=1, dst=dst)
        malformed(f"{C.MAX_SG + 1} SG entries", C.ST_BAD_LEN, sg=one,
                  count=C.MAX_SG + 1, dst=dst)
        malformed("a 31-byte digest buffer", C.ST_BAD_LEN, sg=one, count=1,
                  dst=dst, dst_len=31)
        malformed("a segment over 16 MiB", C.ST_BAD_LEN,
                  sg=drv.sg([(src, C.MAX_SEG_LEN + 1)]), count=1, dst=dst)
        detail = malformed("an SG list outside the client's memory",
                           C.ST_DMA_FAULT, sg=UNMAPPED, count=1, dst=dst)
        check(detail == UNMAPPED, f"{mode}: its log entry names 0x{detail:x}")
        malformed("a source outside the client's memory", C.ST_DMA_FAULT,
                  sg=drv.sg([(UNMAPPED + 64, 100)]), count=1, dst=dst)
        malformed("a digest outside the client's memory", C.ST_DMA_FAULT,
                  sg=one, count=1, dst=UNMAPPED)
        malformed("a state outside the client's memory", C.ST_DMA_FAULT,
                  flags=C.F_STATE_IN | C.F_FINAL, sg=one, count=1, dst=dst,
                  state=UNMAPPED)
        junk = drv.put(bytes(C.STATE_SIZE))
        malformed("a state without its magic", C.ST_BAD_STATE,
                  flags=C.F_STATE_IN | C.F_FINAL, sg=one, count=1, dst=dst,
                  state=junk)
        malformed("a SHA-256 state given to CRC32C", C.ST_BAD_STATE,
                  op=C.OP_CRC32C, flags=C.F_STATE_IN | C.F_FINAL, sg=one,
                  count=1, dst=dst, dst_len=4, state=state)

        # a producer index out of range: logged, ignored
        n0 = drv.reg(C.REG_ERR_COUNT)
        wild = drv.prod + drv.slots + 1
        drv.set(C.REG_RING_PROD, wild)
        n, _, code, index, detail = drv.last_error()
        kept = drv.reg(C.REG_RING_PROD) == drv.prod
        st, got = drv.digest(good)
        check(n == n0 + 1 and code == C.ST_RING_INDEX and
              index == C.ERR_NO_INDEX and detail == wild and kept and
              st == C.ST_DONE and got == hashlib.sha256(good).digest(),
              f"{mode}: PROD {wild} (more than the ring ahead): logged, "
              "ignored, the ring goes on",
              f"log {n0} -> {n}, code {code}, PROD "
              f"{drv.reg(C.REG_RING_PROD)}")

        # a ring size that is not a power of two: ENABLE refused
        drv.set(C.REG_CTRL, C.CTRL_RESET)
        drv.set(C.REG_RING_BASE_LO, drv.ring)
        drv.set(C.REG_RING_SIZE, 48)
        drv.set(C.REG_CTRL, C.CTRL_ENABLE)
        n, _, code, _, _ = drv.last_error()
        check(code == C.ST_RING_CONFIG and
              not drv.reg(C.REG_STATUS) & C.STATUS_ENABLED,
              f"{mode}: RING_SIZE 48: ENABLE refused and logged")

        # a ring outside the client's memory: HALTED until reset
        drv.set(C.REG_CTRL, C.CTRL_RESET)
        drv.set(C.REG_RING_BASE_LO, UNMAPPED & 0xffffffff)
        drv.set(C.REG_RING_BASE_HI, UNMAPPED >> 32)
        drv.set(C.REG_RING_SIZE, 8)
        drv.set(C.REG_IRQ_MASK, 0)
        drv.set(C.REG_CTRL, C.CTRL_ENABLE)
        drv.set(C.REG_RING_PROD, 1)
        deadline = time.monotonic() + 10
        while not drv.reg(C.REG_STATUS) & C.STATUS_HALTED and \
                time.monotonic() < deadline:
            time.sleep(0.01)
        n, _, code, _, detail = drv.last_error()
        check(drv.reg(C.REG_STATUS) & C.STATUS_HALTED and
              code == C.ST_RING_FETCH and detail == UNMAPPED and
              drv.reg(C.REG_IRQ_STATUS) & C.IRQ_ERROR,
              f"{mode}: a ring outside the client's memory: HALTED, "
              f"logged (0x{detail:x}), IRQ_STATUS ERROR")
        drv.reset()
        st, got = drv.digest(good)
        check(st == C.ST_DONE and got == hashlib.sha256(good).digest(),
              f"{mode}: after a reset the engine serves again")
        check(vm.proxy_info()["state"] == "connected",
              f"{mode}: devvm-proxy is still connected")
    check(vm.exit_status == 0, f"{mode}: the client exited cleanly "
          f"({vm.exit_status})")


def main():
    qemu, crypto, gateway, crypto_vm, qemu_python = sys.argv[1:6]
    tap = Tap()
    options = {"qemu": qemu, "python_path": qemu_python}
    for mode, dev in (
            ("process", harness.ProcessDevice(crypto)),
            ("device VM", harness.DeviceVM(crypto_vm, gateway=gateway,
                                           qemu=qemu))):
        try:
            with dev:
                device_checks(dev, tap, mode, **options)
        except Exception:       # pylint: disable=broad-except
            tap.ok(False, f"{mode}: the checks ran to the end",
                   traceback.format_exc())
    return tap.finish()


if __name__ == "__main__":
    sys.exit(main())
