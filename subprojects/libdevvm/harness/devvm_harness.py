"""A test harness for devvm devices.

It starts a device written against the devvm SDK, as a host process
(:class:`ProcessDevice`) or in a device VM behind ``devvm-gateway``
(:class:`DeviceVM`), and a client QEMU under qtest with ``-device
devvm-proxy`` on the device's socket (:class:`Client`).  The client
finds the PCI function (:class:`PciFunction`), places its BARs and gives
the test config space, BAR, guest memory, MSI, MSI-X and QMP access.
Everything it starts is stopped, and every temporary directory removed,
when the ``with`` block ends, also on an exception::

    from devvm_harness import ProcessDevice, Client

    with ProcessDevice("devvm-testdev") as dev, Client(dev.socket) as vm:
        fn = vm.function()
        fn.enable()
        assert fn.bar_read(0, 0x00, 4) == 0x7e570001

Python 3.11 standard library only, plus the QEMU base's ``qemu.machine``
package, imported from ``python_path`` (default: ``$DEVVM_QEMU_PYTHON``,
else the build tree's ``build/src/python`` next to this file, else
whatever ``sys.path`` holds).  The guide is docs/devvm/harness.rst.

SPDX-License-Identifier: GPL-2.0-or-later
"""

import dataclasses
import importlib
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time

__all__ = [
    "HarnessError", "HarnessTimeout", "ProcessDevice", "DeviceVM",
    "Client", "PciFunction", "Bar", "qtest_machine_class", "default_qemu",
]

QEMU_ENV = "DEVVM_QEMU"
"""Environment variable naming the default QEMU binary."""

PYTHON_ENV = "DEVVM_QEMU_PYTHON"
"""Environment variable naming the directory that holds the qemu package."""

# the repository's top when this file is still in its source tree
_TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..",
                                    ".."))

# Every process is started through this: it asks the kernel to SIGKILL
# it when the harness dies (PR_SET_PDEATHSIG), then execs the command,
# so that not even a killed harness leaves one behind.
_EXEC_WITH_PARENT = (
    "import os, signal, sys\n"
    "try:\n"
    "    import ctypes\n"
    "    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)\n"
    "except (ImportError, OSError, AttributeError):\n"
    "    pass\n"
    "if os.getppid() != int(sys.argv[1]):\n"
    "    sys.exit(125)\n"
    "os.execvp(sys.argv[2], sys.argv[2:])\n")


def _wrapper():
    return [sys.executable, "-c", _EXEC_WITH_PARENT, str(os.getpid())]


class HarnessError(Exception):
    """Something the harness started failed, or a check it made did."""


class HarnessTimeout(HarnessError, TimeoutError):
    """A bounded wait of the harness ran out."""


def _tail(path, lines=20):
    """The last @lines lines of the file at @path, '' if it is missing."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 64 * 1024))
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _section(title, text):
    """@text under the heading @title, indented, for an error message."""
    if not text.strip():
        return f"\n  {title}: none"
    return f"\n  {title}:\n" + "\n".join("    " + line
                                          for line in text.splitlines())


def _qemu_opt(value):
    """@value as a QEMU option value: commas doubled."""
    return str(value).replace(",", ",,")


def _check_socket_path(path):
    if len(os.fsencode(path)) > 107:
        raise HarnessError(f"socket path {path!r} is longer than a UNIX "
                           "socket allows (107 bytes): use a shorter tmpdir")


def default_qemu(qemu=None):
    """The QEMU binary to use.

    @qemu if given, else ``$DEVVM_QEMU``, else the build tree's
    ``build/qemu/qemu-system-x86_64`` next to this file.  Raises
    HarnessError when there is none.
    """
    qemu = qemu or os.environ.get(QEMU_ENV)
    if not qemu:
        built = os.path.join(_TOP, "build", "qemu", "qemu-system-x86_64")
        if os.access(built, os.X_OK):
            qemu = built
    if not qemu:
        raise HarnessError(f"no QEMU binary: pass qemu= or set {QEMU_ENV}")
    found = shutil.which(qemu)
    if found is None:
        raise HarnessError(f"QEMU binary {qemu!r} is not an executable")
    return found


_machine_classes = {}


def qtest_machine_class(python_path=None):
    """Import the QEMU base's ``qemu.machine`` and return the harness's
    subclass of its ``QEMUQtestMachine``.

    @python_path is the directory holding the ``qemu`` package (QEMU's
    ``python/``); default ``$DEVVM_QEMU_PYTHON``, else ``build/src/python``
    of the tree this file is in, else ``sys.path`` as it is.
    """
    path = python_path or os.environ.get(PYTHON_ENV)
    if not path:
        built = os.path.join(_TOP, "build", "src", "python")
        if os.path.isdir(os.path.join(built, "qemu", "machine")):
            path = built
    if path:
        path = os.path.abspath(path)
        if not os.path.isdir(os.path.join(path, "qemu", "machine")):
            raise HarnessError(f"{path} holds no qemu/machine package: pass "
                               f"python_path= or set {PYTHON_ENV} to QEMU's "
                               "python directory")
        if path not in sys.path:
            sys.path.insert(0, path)
    if path in _machine_classes:
        return _machine_classes[path]
    try:
        qtest = importlib.import_module("qemu.machine.qtest")
    except ImportError as exc:
        raise HarnessError(f"cannot import qemu.machine ({exc}): pass "
                           f"python_path= or set {PYTHON_ENV}") from exc
    where = os.path.abspath(qtest.__file__)
    if path and not where.startswith(path + os.sep):
        raise HarnessError(f"qemu.machine is already imported from {where}, "
                           f"not from {path}")
    _machine_classes[path] = _make_machine_class(qtest.QEMUQtestMachine)
    return _machine_classes[path]


def _make_machine_class(base):
    class ClientMachine(base):
        """QEMUQtestMachine with bounded waits: the launch (QMP greeting)
        within @launch_timeout, every qtest and QMP command within
        @cmd_timeout seconds."""

        def __init__(self, *args, launch_timeout, cmd_timeout, **kwargs):
            super().__init__(*args, **kwargs)
            self.launch_timeout = launch_timeout
            self.cmd_timeout = cmd_timeout
            self.launch_expired = False

        def _expire(self):
            self.launch_expired = True
            self._user_killed = True    # no warning: the harness killed it
            self._subp.kill()

        def _post_launch(self):
            timer = threading.Timer(self.launch_timeout, self._expire)
            timer.daemon = True
            timer.start()
            try:
                super()._post_launch()
            finally:
                timer.cancel()
            self._qtest.settimeout(self.cmd_timeout)
            self._qmp.settimeout(self.cmd_timeout)

        @property
        def log_path(self):
            """QEMU's stdout and stderr while it runs, else None."""
            return self._qemu_log_path

    return ClientMachine


class _Proc:
    """One process started by the harness: stdout and stderr in files of
    @tmpdir named after @name."""

    def __init__(self, name, cmd, tmpdir, logs=()):
        self.name = name
        self.cmd = [str(c) for c in cmd]
        base = os.path.join(tmpdir, name.replace(" ", "-"))
        self.out_path = base + ".out"
        self.err_path = base + ".err"
        self.logs = list(logs)          # (label, path): more to show
        if shutil.which(self.cmd[0]) is None:
            raise HarnessError(f"cannot start the {name}: no program "
                               f"{self.cmd[0]!r}")
        with open(self.out_path, "wb") as out, \
                open(self.err_path, "wb") as err:
            try:
                self.popen = subprocess.Popen(_wrapper() + self.cmd,
                                              stdin=subprocess.DEVNULL,
                                              stdout=out, stderr=err)
            except OSError as exc:
                raise HarnessError(f"cannot start the {name}: {exc}"
                                   f"\n  command: {shlex.join(self.cmd)}"
                                   ) from exc

    @property
    def pid(self):
        return self.popen.pid

    def running(self):
        return self.popen.poll() is None

    def describe(self, lines=20):
        """The command and the tails of its stderr and other logs."""
        text = f"\n  {self.name} command: {shlex.join(self.cmd)}"
        for label, path in [("stderr", self.err_path)] + self.logs:
            text += _section(f"{self.name} {label}", _tail(path, lines))
        return text

    def wait_line(self, line, timeout, also=()):
        """Wait until stdout has the line @line; fail early when this
        process, or one of @also, exits."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                with open(self.out_path, "rb") as f:
                    out = f.read().decode("utf-8", "replace")
            except OSError:
                out = ""
            if line in out.splitlines():
                return
            for proc in (self,) + tuple(also):
                status = proc.popen.poll()
                if status is not None:
                    who = "it" if proc is self else f"the {self.name}"
                    raise HarnessError(
                        f"the {proc.name} exited with status {status} before "
                        f"{who} printed {line!r}"
                        + "".join(p.describe() for p in (self,) + tuple(also)))
            if time.monotonic() > deadline:
                raise HarnessTimeout(
                    f"the {self.name} did not print {line!r} within "
                    f"{timeout} s"
                    + "".join(p.describe() for p in (self,) + tuple(also)))
            time.sleep(0.02)

    def stop(self, timeout=5.0):
        """SIGTERM, then SIGKILL after @timeout s; returns the exit status
        (negative: the signal that ended it)."""
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(10)
        return self.popen.returncode


class _Managed:
    """start() on entering a ``with`` block, stop() on leaving it."""

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()


class _Device(_Managed):
    """What both modes share: a temporary directory, processes, the
    socket a client connects to, and the context manager."""

    mode = None

    def __init__(self, ready_timeout, tmpdir):
        self.ready_timeout = ready_timeout
        self.tmpdir = tmpdir
        self.dir = None
        self.socket = None
        self.exit_status = {}
        self._procs = []

    def _mkdir(self):
        if self.dir is not None:
            raise HarnessError(f"the {self.mode} device is already started")
        self.dir = tempfile.mkdtemp(prefix="devvm-harness-", dir=self.tmpdir)
        self.exit_status = {}

    def start(self):
        """Start the device and wait until clients can connect to
        ``socket``.  On any failure everything is stopped again and
        HarnessError (HarnessTimeout for a wait) names the command and
        shows its stderr."""
        self._mkdir()
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self):
        """Stop every process (SIGTERM, SIGKILL after 5 s), newest first,
        and remove the temporary directory.  Returns, and keeps in
        ``exit_status``, {name: exit status} (0: a clean exit on SIGTERM;
        negative: the signal that ended it)."""
        while self._procs:
            proc = self._procs.pop()
            self.exit_status[proc.name] = proc.stop()
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None
        return self.exit_status

    def alive(self):
        """True while every process of the device runs."""
        return bool(self._procs) and all(p.running() for p in self._procs)

    def pids(self):
        """The pids of the device's processes, until stop()."""
        return [p.pid for p in self._procs]

    def log(self, lines=20):
        """Commands and the tails of their stderr and logs, for a report."""
        return "".join(p.describe(lines) for p in self._procs).lstrip("\n")


class ProcessDevice(_Device):
    """A device in process mode: its host binary serving a vfio-user
    socket.

    Runs ``BINARY ARGS... --socket DIR/device.sock`` in a fresh
    temporary directory and waits, at most @ready_timeout seconds, for
    the line ``ready`` on its stdout.  ``socket`` is the path to give the
    client.
    """

    mode = "process"

    def __init__(self, binary, args=(), *, ready_timeout=10.0, tmpdir=None):
        super().__init__(ready_timeout, tmpdir)
        self.binary = binary
        self.args = list(args)

    def _start(self):
        self.socket = os.path.join(self.dir, "device.sock")
        _check_socket_path(self.socket)
        proc = _Proc("device", [self.binary, *self.args,
                                "--socket", self.socket], self.dir)
        self._procs.append(proc)
        proc.wait_line("ready", self.ready_timeout)


class DeviceVM(_Device):
    """A device in a device VM: ``devvm-gateway`` and a QEMU booting the
    device's image.

    Runs ``GATEWAY --dir DIR/gw --channels N [GATEWAY_ARGS]``, waits for
    its ``ivshmem.sock``, then the device VM (``-M pc -nodefaults -accel
    tcg -cpu max -m 64M``, ``-kernel IMAGE``, ``ivshmem-doorbell`` with
    ``vectors=N`` on the gateway, ``devvm-dma-window`` on the gateway's
    ``dma.sock`` unless @dma_window is false, ``isa-debug-exit`` at 0xf4,
    the serial port in ``DIR/vm-serial.log``), and waits at most
    @ready_timeout
    seconds for the gateway's ``ready DIR/gw/device.sock``.  @append is
    the kernel command line (device parameters ``KEY=VALUE``,
    ``devvm.verbose=1``).
    """

    mode = "vm"

    def __init__(self, image, *, gateway, qemu=None, channels=8,
                 append=None, gateway_args=(), memory="64M", accel="tcg",
                 dma_window=True, ready_timeout=60.0, tmpdir=None):
        super().__init__(ready_timeout, tmpdir)
        self.image = image
        self.gateway = gateway
        self.qemu = qemu
        self.channels = channels
        self.append = append
        self.gateway_args = list(gateway_args)
        self.memory = memory
        self.accel = accel
        self.dma_window = dma_window

    def _start(self):
        qemu = default_qemu(self.qemu)
        gwdir = os.path.join(self.dir, "gw")
        ivshmem = os.path.join(gwdir, "ivshmem.sock")
        self.socket = os.path.join(gwdir, "device.sock")
        _check_socket_path(self.socket)
        window = [] if self.dma_window else ["--no-dma-window"]
        gateway = _Proc("gateway", [self.gateway, "--dir", gwdir,
                                    "--channels", self.channels, *window,
                                    *self.gateway_args], self.dir)
        self._procs.append(gateway)
        deadline = time.monotonic() + min(self.ready_timeout, 10.0)
        while not os.path.exists(ivshmem):
            if not gateway.running():
                raise HarnessError(f"the gateway exited with status "
                                   f"{gateway.popen.returncode}"
                                   + gateway.describe())
            if time.monotonic() > deadline:
                raise HarnessTimeout(f"the gateway made no {ivshmem}"
                                     + gateway.describe())
            time.sleep(0.01)
        serial = os.path.join(self.dir, "vm-serial.log")
        cmd = [qemu, "-M", "pc", "-nodefaults", "-display", "none",
               "-no-reboot", "-accel", self.accel, "-cpu", "max",
               "-m", self.memory,
               "-chardev", f"socket,path={_qemu_opt(ivshmem)},id=ivs",
               "-device", f"ivshmem-doorbell,chardev=ivs,"
                          f"vectors={self.channels}",
               "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
               "-chardev", f"file,path={_qemu_opt(serial)},id=ser0",
               "-serial", "chardev:ser0", "-kernel", self.image]
        if self.dma_window:
            # zero-copy DMA (docs/devvm/dma-window.rst)
            dma = os.path.join(gwdir, "dma.sock")
            cmd += ["-chardev", f"socket,path={_qemu_opt(dma)},id=dmaw",
                    "-device", "devvm-dma-window,chardev=dmaw"]
        if self.append:
            cmd += ["-append", self.append]
        vm = _Proc("device VM", cmd, self.dir, logs=[("serial", serial)])
        self._procs.append(vm)
        gateway.wait_line(f"ready {self.socket}", self.ready_timeout,
                          also=(vm,))


@dataclasses.dataclass
class Bar:
    """One BAR of a function, as sized and placed by the harness."""
    index: int          # 0-5
    io: bool            # I/O space, else memory
    is64: bool          # a 64-bit memory BAR (the next register is its top)
    prefetchable: bool
    size: int
    address: int = 0    # where the harness placed it

    def __str__(self):
        kind = ("I/O" if self.io else
                ("64-bit " if self.is64 else "32-bit ")
                + ("prefetchable " if self.prefetchable else "") + "memory")
        return (f"BAR{self.index}: {kind}, 0x{self.size:x} bytes at "
                f"0x{self.address:x}")


# config space (PCI Local Bus 3.0)
PCI_COMMAND = 0x04
PCI_COMMAND_IO = 0x1
PCI_COMMAND_MEMORY = 0x2
PCI_COMMAND_MASTER = 0x4
PCI_STATUS = 0x06
PCI_STATUS_CAP_LIST = 0x10
PCI_CAPABILITY_LIST = 0x34
PCI_CAP_ID_MSI = 0x05
PCI_CAP_ID_MSIX = 0x11


class PciFunction:
    """A PCI function of a :class:`Client`'s guest, on bus 0.

    Config space goes through ports 0xcf8/0xcfc (the first 256 bytes:
    ``-M pc`` has no ECAM).  :meth:`enable` sizes and places the BARs and
    turns decoding and bus mastering on; then :meth:`bar_read` and
    :meth:`bar_write` reach them, and :meth:`msix_setup` or
    :meth:`msi_setup` make interrupts land in guest memory where
    :meth:`wait_msix` and :meth:`wait_msi` see them.
    """

    def __init__(self, client, slot, function=0):
        self.client = client
        self.slot = slot
        self.function = function
        self.devfn = slot << 3 | function
        self.bars = {}          # index -> Bar, after map_bars()
        self._msix = None       # (table BAR, table offset, PBA BAR, PBA
                                #  offset, vector count, addr, data)
        self._msi = None        # (addr, data, vectors)

    def __repr__(self):
        return f"<PciFunction 00:{self.slot:02x}.{self.function}>"

    # ---- config space ----------------------------------------------------

    def config_read(self, offset, size=4):
        """Read @size (1, 2, 4) bytes of config space at @offset."""
        return self.client.pci_config_read(self.devfn, offset, size)

    def config_write(self, offset, size, value):
        """Write @value, @size (1, 2, 4) bytes, to config space at
        @offset."""
        self.client.pci_config_write(self.devfn, offset, size, value)

    @property
    def vendor_id(self):
        return self.config_read(0x00, 2)

    @property
    def device_id(self):
        return self.config_read(0x02, 2)

    def capabilities(self):
        """The capability list: [(id, offset)], in list order."""
        caps = []
        if not self.config_read(PCI_STATUS, 2) & PCI_STATUS_CAP_LIST:
            return caps
        pos = self.config_read(PCI_CAPABILITY_LIST, 1) & 0xfc
        while pos and len(caps) < 48:
            caps.append((self.config_read(pos, 1), pos))
            pos = self.config_read(pos + 1, 1) & 0xfc
        return caps

    def find_capability(self, cap_id):
        """The offset of the first capability @cap_id, or None."""
        for cid, pos in self.capabilities():
            if cid == cap_id:
                return pos
        return None

    # ---- BARs -------------------------------------------------------------

    def _size_bars(self):
        bars = {}
        i = 0
        while i < 6:
            reg = 0x10 + 4 * i
            old = self.config_read(reg)
            self.config_write(reg, 4, 0xffffffff)
            val = self.config_read(reg)
            self.config_write(reg, 4, old)
            index, i = i, i + 1
            if val in (0, 0xffffffff):
                continue
            if val & 1:
                mask = val & 0xfffffffc
                if not mask & 0xffff0000:
                    mask |= 0xffff0000      # a 16-bit decoder
                bar = Bar(index, True, False, False,
                          (~mask + 1) & 0xffffffff)
            else:
                mask = val & 0xfffffff0
                is64 = (val >> 1) & 3 == 2
                if is64:
                    if i > 5:
                        raise HarnessError(f"{self}: 64-bit BAR{index} in "
                                           "slot 5")
                    old = self.config_read(reg + 4)
                    self.config_write(reg + 4, 4, 0xffffffff)
                    mask |= self.config_read(reg + 4) << 32
                    self.config_write(reg + 4, 4, old)
                    i += 1
                    size = (~mask + 1) & (2 ** 64 - 1)
                else:
                    size = (~mask + 1) & 0xffffffff
                bar = Bar(index, False, is64, bool(val & 8), size)
            if bar.size:
                bars[index] = bar
        return bars

    def map_bars(self, mmio64=False):
        """Size every BAR and place it: I/O BARs in port space from
        0xc000, memory BARs in the 32-bit PCI hole (0xe0000000 to
        0xfec00000), or with @mmio64 the 64-bit ones above 4 GiB, past
        guest RAM.  Decoding is off meanwhile.  Returns ``bars``."""
        cmd = self.config_read(PCI_COMMAND, 2)
        self.config_write(PCI_COMMAND, 2,
                          cmd & ~(PCI_COMMAND_IO | PCI_COMMAND_MEMORY))
        bars = self._size_bars()
        for bar in sorted(bars.values(), key=lambda b: -b.size):
            bar.address = self.client.place_bar(bar, mmio64)
            reg = 0x10 + 4 * bar.index
            self.config_write(reg, 4, bar.address & 0xffffffff)
            if bar.is64:
                self.config_write(reg + 4, 4, bar.address >> 32)
        self.config_write(PCI_COMMAND, 2, cmd)
        self.bars = bars
        return bars

    def enable(self, memory=True, io=True, bus_master=True, mmio64=False):
        """Place the BARs (:meth:`map_bars`, unless done already) and turn
        on memory decoding, I/O decoding (when there are I/O BARs) and
        bus mastering as asked."""
        if not self.bars:
            self.map_bars(mmio64)
        cmd = self.config_read(PCI_COMMAND, 2)
        for on, bit in ((memory, PCI_COMMAND_MEMORY),
                        (io and any(b.io for b in self.bars.values()),
                         PCI_COMMAND_IO),
                        (bus_master, PCI_COMMAND_MASTER)):
            cmd = cmd | bit if on else cmd & ~bit
        self.config_write(PCI_COMMAND, 2, cmd)

    def _bar(self, index, offset, size):
        if index not in self.bars:
            raise HarnessError(f"{self}: BAR{index} is not placed (no such "
                               "BAR, or enable() not called)")
        bar = self.bars[index]
        if size not in (1, 2, 4, 8):
            raise HarnessError(f"access size {size}: 1, 2, 4 or 8")
        if offset < 0 or offset + size > bar.size:
            raise HarnessError(f"{self}: {size} bytes at 0x{offset:x} are "
                               f"outside BAR{index} (0x{bar.size:x} bytes)")
        return bar

    def bar_read(self, index, offset, size=4):
        """Read @size (1, 2, 4, 8) bytes at @offset of BAR @index: MMIO
        with qtest readb/w/l/q, PIO with inb/w/l (8 bytes: two inl, low
        dword first)."""
        bar = self._bar(index, offset, size)
        addr = bar.address + offset
        if not bar.io:
            return self.client.read(addr, size)
        if size == 8:
            return (self.client.port_read(addr, 4)
                    | self.client.port_read(addr + 4, 4) << 32)
        return self.client.port_read(addr, size)

    def bar_write(self, index, offset, size, value):
        """Write @value, @size (1, 2, 4, 8) bytes, at @offset of BAR
        @index (PIO of 8 bytes: two outl, low dword first)."""
        bar = self._bar(index, offset, size)
        addr = bar.address + offset
        if not bar.io:
            self.client.write(addr, size, value)
        elif size == 8:
            self.client.port_write(addr, 4, value & 0xffffffff)
            self.client.port_write(addr + 4, 4, value >> 32 & 0xffffffff)
        else:
            self.client.port_write(addr, size, value)

    # ---- MSI and MSI-X ----------------------------------------------------

    def _irq_capability(self, cap_id, name):
        """The capability's offset, with the BARs placed."""
        cap = self.find_capability(cap_id)
        if cap is None:
            raise HarnessError(f"{self} has no {name} capability")
        if not self.bars:
            self.enable()
        return cap

    def _wait_irq(self, what, addr, data, timeout, state=""):
        if self.client.wait_mem(addr, data, timeout):
            return
        raise HarnessTimeout(
            f"{self}: {what} (0x{data:x} to 0x{addr:x}) did not land within "
            f"{timeout} s ({state}word 0x{self.client.read(addr, 4):x}); "
            f"{self.client.proxy_summary()}")

    def msix_setup(self, addr=None, data=0x5a5a0000, vectors=None):
        """Enable MSI-X with vector *v* writing ``data + v`` (32 bits) to
        guest RAM at ``addr + 4 v``, that word cleared; @vectors (default
        all) are unmasked, the others masked.  @addr defaults to memory
        from :meth:`Client.alloc`.  Calls :meth:`enable` first if the BARs
        are not placed.  Returns the vector count."""
        cap = self._irq_capability(PCI_CAP_ID_MSIX, "MSI-X")
        ctrl = self.config_read(cap + 2, 2)
        count = (ctrl & 0x7ff) + 1
        table = self.config_read(cap + 4)
        pba = self.config_read(cap + 8)
        if not (0 < data and data + count - 1 <= 0xffffffff):
            raise HarnessError("MSI-X data must be non-zero 32-bit values")
        if addr is None:
            addr = self.client.alloc(4 * count, 64)
        self._msix = (table & 7, table & ~7, pba & 7, pba & ~7, count,
                      addr, data)
        unmasked = set(range(count) if vectors is None else vectors)
        self.config_write(cap + 2, 2, ctrl | 0xc000)    # enable, mask all
        for v in range(count):
            self.client.write(addr + 4 * v, 4, 0)
            self._msix_entry(v, addr + 4 * v, data + v, v not in unmasked)
        self.config_write(cap + 2, 2, (ctrl | 0x8000) & ~0x4000)
        return count

    def _msix_vector(self, vector):
        if self._msix is None:
            raise HarnessError(f"{self}: msix_setup() was not called")
        if not 0 <= vector < self._msix[4]:
            raise HarnessError(f"{self}: no MSI-X vector {vector}")
        return self._msix

    def _msix_entry(self, vector, addr, data, masked):
        bar, off = self._msix_vector(vector)[:2]
        off += 16 * vector
        self.bar_write(bar, off, 4, addr & 0xffffffff)
        self.bar_write(bar, off + 4, 4, addr >> 32)
        self.bar_write(bar, off + 8, 4, data)
        self.bar_write(bar, off + 12, 4, 1 if masked else 0)

    def msix_mask(self, vector, masked=True):
        """Mask or unmask MSI-X @vector in the table."""
        bar, off = self._msix_vector(vector)[:2]
        self.bar_write(bar, off + 16 * vector + 12, 4, 1 if masked else 0)

    def msix_pending(self, vector):
        """The vector's pending bit in the PBA."""
        _, _, bar, off = self._msix_vector(vector)[:4]
        qword = self.bar_read(bar, off + 8 * (vector // 64), 8)
        return bool(qword >> (vector % 64) & 1)

    def msix_disable(self):
        """Turn MSI-X off in its capability."""
        cap = self.find_capability(PCI_CAP_ID_MSIX)
        if cap is not None:
            self.config_write(cap + 2, 2,
                              self.config_read(cap + 2, 2) & ~0x8000)

    def msix_address(self, vector):
        """(guest address, data) that MSI-X @vector writes."""
        msix = self._msix_vector(vector)
        return msix[5] + 4 * vector, msix[6] + vector

    def wait_msix(self, vector, timeout=5.0):
        """Wait at most @timeout seconds for MSI-X @vector to land, then
        clear its word for the next one.  HarnessTimeout otherwise, with
        the vector's pending bit and the proxy's state."""
        addr, data = self.msix_address(vector)
        self._wait_irq(f"MSI-X vector {vector}", addr, data, timeout,
                       f"pending {self.msix_pending(vector)}, ")

    # ---- MSI --------------------------------------------------------------

    def msi_setup(self, addr=None, data=0x4d50, vectors=1):
        """Enable MSI with @vectors vectors (a power of two the function
        offers) writing ``data | v`` (16 bits, low bits zero) to guest RAM
        at @addr (default memory from :meth:`Client.alloc`), that word
        cleared.  Returns the capability offset."""
        cap = self._irq_capability(PCI_CAP_ID_MSI, "MSI")
        flags = self.config_read(cap + 2, 2)
        offered = 1 << ((flags >> 1) & 7)
        if vectors not in (1, 2, 4, 8, 16, 32) or vectors > offered:
            raise HarnessError(f"{self}: MSI offers {offered} vectors, not "
                               f"{vectors}")
        if not 0 < data <= 0xffff or data & (vectors - 1):
            raise HarnessError(f"MSI data 0x{data:x}: 16 bits, non-zero, "
                               f"its low {vectors.bit_length() - 1} bits 0")
        if addr is None:
            addr = self.client.alloc(4, 4)
        is64 = bool(flags & 0x80)
        if not is64 and addr >> 32:
            raise HarnessError(f"{self}: 32-bit MSI cannot reach 0x{addr:x}")
        self.client.write(addr, 4, 0)
        self.config_write(cap + 4, 4, addr & 0xffffffff)
        if is64:
            self.config_write(cap + 8, 4, addr >> 32)
        self.config_write(cap + (12 if is64 else 8), 2, data)
        mme = vectors.bit_length() - 1
        self.config_write(cap + 2, 2, (flags & ~0x70) | mme << 4 | 1)
        self._msi = (addr, data, vectors)
        return cap

    def wait_msi(self, vector=0, timeout=5.0):
        """Wait at most @timeout seconds for MSI @vector to land, then
        clear the word for the next one."""
        if self._msi is None:
            raise HarnessError(f"{self}: msi_setup() was not called")
        addr, data, vectors = self._msi
        if not 0 <= vector < vectors:
            raise HarnessError(f"{self}: MSI vector {vector} not enabled")
        self._wait_irq(f"MSI vector {vector}", addr, data | vector, timeout)


class Client(_Managed):
    """A client QEMU under qtest with the device behind devvm-proxy.

    ``QEMU -M pc -nodefaults -m RAM_MB [-object memory-backend-memfd,
    id=devvm-ram,size=...,share=on -machine memory-backend=devvm-ram]
    -device devvm-proxy,id=PROXY_ID,addr=SLOT.0,socket=SOCKET,ring=on|off
    [,PROXY_PROPS] EXTRA_ARGS``, started with the QEMU base's
    ``QEMUQtestMachine`` (QMP and qtest on socket pairs, ``-accel
    qtest``).  @memfd shares guest RAM with the device (its DMA lands
    directly); @timeout bounds every qtest and QMP command and the
    launch; @qtest_log is a file for qtest's log of every command
    (default: none).

    It offers guest memory, port and MMIO access, PCI config space
    (:meth:`pci_config_read`), the function (:meth:`function`) and QMP
    (:meth:`qmp`, :meth:`proxy_info`).
    """

    MMIO32_BASE = 0xe0000000
    MMIO32_LIMIT = 0xfec00000
    MMIO64_LIMIT = 1 << 40      # the guest CPU's physical address bits
    PIO_BASE = 0xc000
    PIO_LIMIT = 0x10000
    RAM_BASE = 0x100000         # alloc() hands out guest RAM from here

    def __init__(self, socket, *, qemu=None, python_path=None, ram_mb=256,
                 memfd=True, ring=True, proxy_id="dev0", slot=4,
                 proxy_props=None, extra_args=(), timeout=30.0,
                 qtest_log=None, tmpdir=None):
        if not 1 <= slot <= 31:
            raise HarnessError(f"slot {slot}: 1 to 31")
        self.socket = socket
        self.qemu = qemu
        self.python_path = python_path
        self.ram_mb = ram_mb
        self.memfd = memfd
        self.ring = ring
        self.proxy_id = proxy_id
        self.slot = slot
        self.proxy_props = dict(proxy_props or {})
        self.extra_args = list(extra_args)
        self.timeout = timeout
        self.qtest_log = qtest_log
        self.tmpdir = tmpdir
        self.machine = None
        self.dir = None
        self._function = None
        self._log = ""
        self._hung = False      # a command timed out: kill, do not quit
        self.exit_status = None

    # ---- life cycle -------------------------------------------------------

    def args(self):
        """The client's own QEMU arguments (the machine adds QMP, qtest,
        ``-display none`` and ``-vga none``)."""
        ram = self.ram_mb * 1024 * 1024
        args = ["-M", "pc", "-nodefaults", "-m", f"{self.ram_mb}M",
                "-qtest-log", self.qtest_log or "none"]
        if self.memfd:
            args += ["-object", f"memory-backend-memfd,id=devvm-ram,"
                                f"size={ram},share=on",
                     "-machine", "memory-backend=devvm-ram"]
        props = {"id": self.proxy_id, "addr": f"{self.slot:02x}.0",
                 "socket": self.socket, "ring": "on" if self.ring else "off"}
        props.update(self.proxy_props)
        dev = ",".join(["devvm-proxy"] + [f"{k}={_qemu_opt(v)}"
                                          for k, v in props.items()])
        return args + ["-device", dev] + self.extra_args

    def start(self):
        """Launch QEMU.  HarnessError with the command and QEMU's output
        when it does not come up within ``timeout`` seconds."""
        if self.machine is not None:
            raise HarnessError("the client is already started")
        self._hung = False
        self.exit_status = None
        cls = qtest_machine_class(self.python_path)
        qemu = default_qemu(self.qemu)
        self.dir = tempfile.mkdtemp(prefix="devvm-client-", dir=self.tmpdir)
        self._mmio32 = self.MMIO32_BASE
        self._pio = self.PIO_BASE
        ram = self.ram_mb << 20
        above_4g = ram - 0xc0000000 if ram >= 0xe0000000 else 0
        self._mmio64 = (4 << 30) + -(-above_4g // (1 << 30)) * (1 << 30)
        self._ram_next = self.RAM_BASE
        self._ram_end = min(ram, 0xc0000000 if above_4g else ram)
        args = self.args()
        self.machine = cls(qemu, args, wrapper=_wrapper(), name="client",
                           base_temp_dir=self.dir,
                           launch_timeout=self.timeout,
                           cmd_timeout=self.timeout)
        try:
            self.machine.launch()
        except BaseException as exc:
            expired = self.machine.launch_expired
            output = getattr(exc, "output", None) or ""
            self.machine = None
            self._cleanup_dir()
            if not isinstance(exc, Exception):
                raise
            status = getattr(exc, "exitcode", None)
            what = (f"did not answer within {self.timeout} s" if expired
                    else f"exited with status {status}" if status is not None
                    else f"failed to start ({exc.__cause__ or exc})")
            err = HarnessTimeout if expired else HarnessError
            tail = "\n".join(output.splitlines()[-20:])
            raise err(f"the client QEMU {what}\n  command: "
                      f"{shlex.join([qemu] + args)}"
                      + _section("output", tail)) from exc
        return self

    def stop(self, timeout=10):
        """Quit QEMU (SIGKILL if it does not go within @timeout s, or after
        a command timed out) and remove the temporary directory.  Its
        output stays in :meth:`log`, its exit status in ``exit_status``
        (0: it quit cleanly)."""
        machine, self.machine = self.machine, None
        if machine is not None:
            try:
                machine.shutdown(hard=self._hung, timeout=timeout)
            except Exception:       # pylint: disable=broad-except
                machine.kill()
            self._log = machine.get_log() or ""
            self.exit_status = machine.exitcode()
        self._cleanup_dir()
        self._function = None

    def _cleanup_dir(self):
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def pids(self):
        """The client QEMU's pid in a list, empty when it is not running."""
        pid = self.machine.get_pid() if self.machine else None
        return [pid] if pid else []

    def log(self, lines=20):
        """The tail of QEMU's stdout and stderr, while it runs or after."""
        if self.machine is not None and self.machine.log_path:
            return _tail(self.machine.log_path, lines)
        return "\n".join(self._log.splitlines()[-lines:])

    def _machine(self):
        if self.machine is None:
            raise HarnessError("the client is not running")
        return self.machine

    # ---- qtest --------------------------------------------------------------

    def qtest(self, command):
        """Send one qtest command; return what follows ``OK`` in the reply.
        HarnessError for another reply, HarnessTimeout past ``timeout``."""
        machine = self._machine()
        try:
            reply = machine.qtest(command)
        except (TimeoutError, OSError) as exc:
            self._hung = True
            raise HarnessTimeout(f"qtest {command!r}: no answer within "
                                 f"{self.timeout} s ({exc})"
                                 + _section("QEMU output", self.log())
                                 ) from exc
        if reply == "OK\n" or reply.startswith("OK "):
            return reply[3:].strip()
        if not reply:
            raise HarnessError(f"qtest {command!r}: QEMU closed the "
                               "connection"
                               + _section("QEMU output", self.log()))
        raise HarnessError(f"qtest {command!r}: {reply.strip()}")

    _SUFFIX = {1: "b", 2: "w", 4: "l", 8: "q"}

    def read(self, addr, size=4):
        """Read @size (1, 2, 4, 8) bytes of guest physical memory or MMIO
        at @addr (qtest readb/w/l/q)."""
        return int(self.qtest(f"read{self._SUFFIX[size]} 0x{addr:x}"), 0)

    def write(self, addr, size, value):
        """Write @value, @size (1, 2, 4, 8) bytes, at guest physical
        @addr (qtest writeb/w/l/q)."""
        value &= (1 << 8 * size) - 1
        self.qtest(f"write{self._SUFFIX[size]} 0x{addr:x} 0x{value:x}")

    def port_read(self, port, size=4):
        """Read @size (1, 2, 4) bytes of I/O port @port (qtest in*)."""
        if size not in (1, 2, 4):
            raise HarnessError(f"port access size {size}: 1, 2 or 4")
        return int(self.qtest(f"in{self._SUFFIX[size]} 0x{port:x}"), 0)

    def port_write(self, port, size, value):
        """Write @value, @size (1, 2, 4) bytes, to I/O port @port."""
        if size not in (1, 2, 4):
            raise HarnessError(f"port access size {size}: 1, 2 or 4")
        value &= (1 << 8 * size) - 1
        self.qtest(f"out{self._SUFFIX[size]} 0x{port:x} 0x{value:x}")

    _CHUNK = 0x10000

    def mem_read(self, addr, size):
        """@size bytes of guest memory at @addr (qtest read, hex)."""
        data = bytearray()
        while len(data) < size:
            n = min(self._CHUNK, size - len(data))
            reply = self.qtest(f"read 0x{addr + len(data):x} {n}")
            data += bytes.fromhex(reply[2:])
        return bytes(data)

    def mem_write(self, addr, data):
        """Write the bytes @data to guest memory at @addr (qtest write)."""
        for i in range(0, len(data), self._CHUNK):
            chunk = bytes(data[i:i + self._CHUNK])
            self.qtest(f"write 0x{addr + i:x} {len(chunk)} 0x{chunk.hex()}")

    def mem_fill(self, addr, size, value=0):
        """Set @size bytes of guest memory at @addr to the byte @value
        (qtest memset)."""
        self.qtest(f"memset 0x{addr:x} {size} 0x{value & 0xff:x}")

    def alloc(self, size, align=8):
        """Reserve @size bytes of guest RAM (from 1 MiB up, never freed)
        and return their address: for DMA buffers and interrupt
        targets."""
        addr = -(-self._ram_next // align) * align
        if addr + size > self._ram_end:
            raise HarnessError(f"no room for {size} bytes of guest RAM "
                               f"(RAM {self.ram_mb} MiB): raise ram_mb")
        self._ram_next = addr + size
        return addr

    def wait_mem(self, addr, value, timeout=5.0):
        """Wait at most @timeout seconds for the 32-bit word at @addr to be
        @value; then clear it to 0 and return True.  False on timeout."""
        deadline = time.monotonic() + timeout
        pause = 0.0005
        while self.read(addr, 4) != value:
            if time.monotonic() > deadline:
                return False
            time.sleep(pause)
            pause = min(pause * 2, 0.01)
        self.write(addr, 4, 0)
        return True

    # ---- PCI ----------------------------------------------------------------

    def _config_address(self, devfn, offset, size):
        if size not in (1, 2, 4) or offset % size or not 0 <= offset < 256:
            raise HarnessError(f"config access of {size} bytes at "
                               f"0x{offset:x}: 1, 2 or 4, aligned, below "
                               "0x100")
        return 0x80000000 | devfn << 8 | (offset & 0xfc)

    def pci_config_read(self, devfn, offset, size=4):
        """Read config space of bus 0's function @devfn through
        0xcf8/0xcfc."""
        self.port_write(0xcf8, 4, self._config_address(devfn, offset, size))
        return self.port_read(0xcfc + (offset & 3), size)

    def pci_config_write(self, devfn, offset, size, value):
        """Write config space of bus 0's function @devfn through
        0xcf8/0xcfc."""
        self.port_write(0xcf8, 4, self._config_address(devfn, offset, size))
        self.port_write(0xcfc + (offset & 3), size, value)

    def find_function(self, vendor_id, device_id=None):
        """The first function on bus 0 with these IDs, or None."""
        for slot in range(32):
            if self.pci_config_read(slot << 3, 0, 2) == 0xffff:
                continue
            multi = self.pci_config_read(slot << 3, 0x0e, 1) & 0x80
            for fn in range(8 if multi else 1):
                ids = self.pci_config_read(slot << 3 | fn, 0)
                if (ids & 0xffff == vendor_id
                        and device_id in (None, ids >> 16)):
                    return PciFunction(self, slot, fn)
        return None

    def function(self):
        """The device's function: devvm-proxy at ``slot``.0."""
        if self._function is None:
            fn = PciFunction(self, self.slot)
            if fn.vendor_id == 0xffff:
                raise HarnessError(f"no function at 00:{self.slot:02x}.0; "
                                   f"{self.proxy_summary()}")
            self._function = fn
        return self._function

    def place_bar(self, bar, mmio64=False):
        """An address for @bar (a :class:`Bar`), size-aligned (memory at
        least 4 KiB-aligned), from the client's I/O, 32-bit or (64-bit
        BARs with @mmio64) 64-bit window."""
        if bar.io:
            window, limit = "_pio", self.PIO_LIMIT
            align = bar.size
        elif bar.is64 and mmio64:
            window, limit = "_mmio64", self.MMIO64_LIMIT
            align = max(bar.size, 4096)
        else:
            window, limit = "_mmio32", self.MMIO32_LIMIT
            align = max(bar.size, 4096)
        base = -(-getattr(self, window) // align) * align
        if base + bar.size > limit:
            raise HarnessError(f"no room for BAR{bar.index} (0x{bar.size:x} "
                               f"bytes) in the {window[1:]} window"
                               + ("; try mmio64=True"
                                  if bar.is64 and not mmio64 else ""))
        setattr(self, window, base + bar.size)
        return base

    # ---- QMP ----------------------------------------------------------------

    def qmp(self, command, **arguments):
        """Run a QMP command (arguments by their QMP names, '-' and all:
        pass a dict with **); return its ``return``, HarnessError on an
        error reply."""
        try:
            reply = self._machine().qmp(command, args_dict=arguments)
        except Exception as exc:    # pylint: disable=broad-except
            timed_out = isinstance(exc, TimeoutError)
            self._hung |= timed_out
            err = HarnessTimeout if timed_out else HarnessError
            raise err(f"QMP {command}: {exc or type(exc).__name__}"
                      + _section("QEMU output", self.log())) from exc
        if "error" in reply:
            raise HarnessError(f"QMP {command}: {reply['error'].get('desc')}")
        return reply.get("return")

    def proxy_info(self):
        """This client's entry of ``query-devvm-proxy``: state, reason,
        ring, events, generation and the counters (reads, writes,
        dma-bytes, irqs, timeouts, failures, kvm-irqfds)."""
        for info in self.qmp("query-devvm-proxy"):
            if info.get("id") == self.proxy_id:
                return info
        raise HarnessError(f"query-devvm-proxy lists no {self.proxy_id}")

    def proxy_summary(self):
        """One line on the proxy's state, for error messages."""
        try:
            info = self.proxy_info()
        except HarnessError as exc:
            return f"proxy: {exc}"
        return "proxy: " + ", ".join(f"{k} {v}" for k, v in info.items()
                                     if k not in ("id", "qom-path"))

    def wait_proxy_state(self, state, timeout=10.0):
        """Wait at most @timeout seconds for the proxy's state to be
        @state ('connected' or 'failed'); return its info."""
        deadline = time.monotonic() + timeout
        while True:
            info = self.proxy_info()
            if info["state"] == state:
                return info
            if time.monotonic() > deadline:
                raise HarnessTimeout(f"the proxy is not {state} after "
                                     f"{timeout} s; {self.proxy_summary()}")
            time.sleep(0.02)

    def events(self, name=None):
        """QMP events received so far (and taken off the queue), all or
        those named @name."""
        events = self._machine().get_qmp_events(wait=False)
        return [e for e in events if name is None or e["event"] == name]
