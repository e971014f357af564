#!/usr/bin/env python3
# test-coordinator.sh's sharing test: two clients on one devvm-testdev
# device VM, driven through each client QEMU's qtest socket (the client
# descriptions add "-qtest unix:...,server=on,wait=off" with extra-args;
# a client the coordinator starts is not otherwise under qtest).
#
#   coordinator-share.py both QTEST_A QTEST_B
#       A (256M) and B (128M) use the same guest-physical buffer SAME
#       (96M): each fills it through its own device instance with its own
#       pattern and sees only that, its checksum too.  A writes a guard at
#       ONLY_A (144M, inside A's RAM, outside B's): B's FILL, COPY and
#       CHECKSUM there get EFAULT and A's guard is unchanged.
#   coordinator-share.py one QTEST
#       the client still does DMA (after the other client's down).
#
# SPDX-License-Identifier: GPL-2.0-or-later

import socket
import sys

VENDOR, DEVICE = 0x1af4, 0x10f1
REG_ID, DMA_SRC, DMA_DST, DMA_LEN = 0x00, 0x80, 0x88, 0x90
DMA_CMD, DMA_PATTERN, DMA_RESULT, DMA_STATUS = 0x94, 0x98, 0xa0, 0xa8
COPY, FILL, CHECKSUM = 1, 2, 3
EFAULT = 14
TESTDEV_ID = 0x7e570001
SAME, ONLY_A, LEN = 0x6000000, 0x9000000, 0x1000


class Client:
    def __init__(self, name, path):
        self.name = name
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(10)
        s.connect(path)
        self.f = s.makefile("rw")
        self.bar0 = self.find()

    def cmd(self, line):
        self.f.write(line + "\n")
        self.f.flush()
        while True:
            r = self.f.readline().split()
            if not r:
                raise RuntimeError("%s: qtest closed at %r" % (self.name, line))
            if r[0] == "OK":
                return r[1] if len(r) > 1 else None
            if r[0] == "FAIL":
                raise RuntimeError("%s: %r: %s" % (self.name, line, r))

    def cfg(self, dev, off, size=4, val=None):
        self.cmd("outl 0xcf8 0x%x" % (0x80000000 | dev << 11 | off & ~3))
        port = 0xcfc + (off & 3)
        op = {4: "l", 2: "w"}[size]
        if val is None:
            return int(self.cmd("in%s 0x%x" % (op, port)), 16)
        self.cmd("out%s 0x%x 0x%x" % (op, port, val))

    def find(self):
        for dev in range(32):
            if self.cfg(dev, 0) == DEVICE << 16 | VENDOR:
                self.cfg(dev, 4, 2, 0x7)     # I/O, memory, bus master
                return self.cfg(dev, 0x10) & ~0xf
        raise RuntimeError("%s: no devvm-testdev on bus 0" % self.name)

    def rd(self, reg, q=False):
        return int(self.cmd("read%s 0x%x" % ("q" if q else "l",
                                             self.bar0 + reg)), 16)

    def wr(self, reg, val, q=False):
        self.cmd("write%s 0x%x 0x%x" % ("q" if q else "l",
                                        self.bar0 + reg, val))

    def dma(self, op, src=0, dst=0, pattern=0):
        self.wr(DMA_SRC, src, True)
        self.wr(DMA_DST, dst, True)
        self.wr(DMA_LEN, LEN)
        self.wr(DMA_PATTERN, pattern)
        self.wr(DMA_CMD, op)
        return self.rd(DMA_STATUS), self.rd(DMA_RESULT, True)

    def mem(self, addr):
        # the first 16 and the last 16 bytes of the buffer, from guest RAM
        return (self.cmd("read 0x%x 16" % addr) +
                self.cmd("read 0x%x 16" % (addr + LEN - 16))[2:])


fails = 0


def check(what, cond):
    global fails
    print("%s: %s" % ("ok" if cond else "FAIL", what))
    fails += not cond


def works(c, pattern):
    """c fills SAME with pattern by DMA; guest RAM and the checksum agree"""
    b = pattern & 0xff
    st, _ = c.dma(FILL, dst=SAME, pattern=pattern)
    mem = c.mem(SAME)
    st2, sum_ = c.dma(CHECKSUM, src=SAME)
    check("%s: ID 0x%x, FILL 0x%08x at 0x%x: status %d, RAM %s, checksum "
          "0x%x" % (c.name, c.rd(REG_ID), pattern, SAME, st, mem[:20], sum_),
          c.rd(REG_ID) == TESTDEV_ID and st == 0 and st2 == 0 and
          mem == "0x" + ("%02x" % b) * 16 + ("%02x" % b) * 16 and
          sum_ == b * LEN)


def main():
    if sys.argv[1] == "one":
        works(Client("client", sys.argv[2]), 0x3c3c3c3c)
        return fails != 0
    a = Client("A", sys.argv[2])
    b = Client("B", sys.argv[3])
    # the same guest-physical buffer, two instances: each its own data
    works(a, 0xa5a5a5a5)
    works(b, 0x5b5b5b5b)
    works(a, 0xa5a5a5a5)
    # A's guard where only A has RAM; B cannot reach it
    a.dma(FILL, dst=ONLY_A, pattern=0xfeedf00d)
    guard = a.mem(ONLY_A)
    check("A: guard at 0x%x: %s" % (ONLY_A, guard[:20]),
          guard == "0x" + "0df0edfe" * 8)
    for name, op, kw in (("FILL", FILL, {"dst": ONLY_A,
                                          "pattern": 0x0badbad0}),
                         ("COPY from", COPY, {"src": ONLY_A, "dst": SAME}),
                         ("CHECKSUM of", CHECKSUM, {"src": ONLY_A})):
        st, res = b.dma(op, **kw)
        check("B: %s 0x%x (outside B's maps, inside A's): status %d "
              "(EFAULT %d), result 0x%x" % (name, ONLY_A, st, EFAULT, res),
              st == EFAULT and (op != CHECKSUM or res == 0))
    check("A's guard unchanged: %s; B's buffer still its own: %s" %
          (a.mem(ONLY_A)[:20], b.mem(SAME)[:20]),
          a.mem(ONLY_A) == guard and b.mem(SAME) == "0x" + "5b" * 32)
    st, sum_ = a.dma(CHECKSUM, src=ONLY_A)
    check("A: checksum of its guard 0x%x" % sum_,
          st == 0 and sum_ == (0x0d + 0xf0 + 0xed + 0xfe) * LEN // 4)
    return fails != 0


if __name__ == "__main__":
    sys.exit(main())
