#!/usr/bin/env python3
"""test_mydev.py: mydev in both modes, through devvm-proxy.

   PYTHONPATH=PREFIX/share/devvm/python python3 test_mydev.py \\
       BUILD_DIR [QEMU [GATEWAY]]

BUILD_DIR has mydev and mydev-vm.elf (this project's meson build).  QEMU
is the devvm fork's qemu-system-x86_64 and GATEWAY devvm-gateway (both
looked up in PATH when not given).  Prints one line per mode; exits 1 on
the first failure.
"""
import os
import shutil
import sys

from devvm_harness import Client, DeviceVM, ProcessDevice

MYDEV_ID = 0x4d594456
REG_ID, REG_VALUE, REG_DMA_ADDR, REG_GO, REG_STATUS = 0x00, 0x08, 0x10, \
    0x18, 0x1c


def check(dev, qemu):
    """The device's registers, its DMA and its MSI-X vector."""
    with dev, Client(dev.socket, qemu=qemu) as vm:
        fn = vm.function()
        fn.enable()
        assert fn.bar_read(0, REG_ID, 4) == MYDEV_ID, "ID"

        fn.bar_write(0, REG_VALUE, 8, 0x0123456789abcdef)
        assert fn.bar_read(0, REG_VALUE, 8) == 0x0123456789abcdef, "VALUE"

        buf = vm.alloc(64)
        vm.mem_fill(buf, 64, 0xee)
        msi = vm.alloc(16)
        fn.msix_setup(msi)
        fn.bar_write(0, REG_DMA_ADDR, 8, buf + 8)
        fn.bar_write(0, REG_GO, 4, 1)
        fn.wait_msix(0, timeout=10)
        assert fn.bar_read(0, REG_STATUS, 4) == 0, "STATUS"
        assert vm.mem_read(buf, 24) == (b"\xee" * 8 +
                                         bytes.fromhex("efcdab8967452301") +
                                         b"\xee" * 8), "DMA"
        assert vm.proxy_info()["state"] == "connected", "proxy state"


def main():
    build = sys.argv[1]
    qemu = sys.argv[2] if len(sys.argv) > 2 else \
        shutil.which("qemu-system-x86_64")
    gateway = sys.argv[3] if len(sys.argv) > 3 else \
        shutil.which("devvm-gateway")
    check(ProcessDevice(os.path.join(build, "mydev")), qemu)
    print("ok process mode")
    check(DeviceVM(os.path.join(build, "mydev-vm.elf"), gateway=gateway,
                   qemu=qemu), qemu)
    print("ok device VM")


if __name__ == "__main__":
    main()
