"""An MSI-X from a device VM, hop by hop (bench.py, "make bench").

The guest's MSI-X measure (devvm-demo "bench") runs from its write of
devvm-testdev's MSIX register to its interrupt handler.  Here the same
run (run.sh --bench, a device VM on the ring) is traced with the
kernel's ftrace, timestamped with the TSC (trace_clock x86-tsc), only
while the guest times MSI-X: uprobes on the entry (with the register
offset) and the return of devvm_ring_client_write() in the QEMU binary,
the scheduler's wakeups and switches, and the read and write system
calls.  Each interrupt gives one row of timestamps:

  A  client vCPU thread: devvm_ring_client_write() returns, the guest's
     write of the MSIX register posted on the ring
  B  device VM: write() to an eventfd: its guest (the devvm runtime,
     after devvm-testdev raised the interrupt and put the event on the
     ring) rang the call doorbell, an ivshmem ioeventfd, and its QEMU
     signals the client's eventfd
  C  the client's main thread woken (sched_wakeup)
  D  the client's main thread on its CPU (sched_switch)
  E  client main thread: read() of the call doorbell, in the handler
     that takes the event off the ring and injects the MSI-X
  G  the client's main thread back in poll, its vCPU thread on the CPU
     again with the interrupt pending (sched_switch)

and G to the next A is the vCPU taking the interrupt, the guest's
handler and the start of its next sample (with both uprobes' traps).
Some interrupts find the vCPU thread holding the BQL when the main
thread gets the CPU: the main thread then sleeps until the vCPU thread
lets it go, within D to E; how many is counted.

A uprobe is a breakpoint trap on the vCPU's path, and every event
recorded costs time too, so the traced interrupt is slower than the
untraced one; the guest's own median is reported for the traced run,
for comparison with the untraced ones.  Needs root and tracefs;
otherwise hops() says why and returns None.

SPDX-License-Identifier: GPL-2.0-or-later
"""

import os
import re
import statistics
import subprocess

TRACING = "/sys/kernel/debug/tracing"
GROUP = "devvm_hops"
INSTANCE = "devvm-hops"
TESTDEV_REG_MSIX = 0x48
SYS_READ, SYS_WRITE = 0, 1            # x86-64

HOPS = [
    ("A", "B", "the write posted, to the device VM's eventfd write: the "
               "ring, the device VM's poll, devvm-testdev and the runtime "
               "under TCG, the ivshmem ioeventfd"),
    ("B", "C", "eventfd written, to the client's main thread woken"),
    ("C", "D", "woken, to running on its CPU (the vCPU thread had it)"),
    ("D", "E", "back from poll, to the call-doorbell read (the BQL)"),
    ("E", "G", "the event taken off the ring, MSI-X injected, main loop "
               "back to poll, the vCPU thread on the CPU"),
    ("G", "next A", "the vCPU takes the interrupt, the guest's handler, "
                    "its next sample starts (the uprobes' traps)"),
]
READY_RE = re.compile(r"^devvm: device VM (\d+) is READY ")
LINE_RE = re.compile(r"^\s*(.+?)-(\d+)\s+\(\s*([-\d]+)\)\s+\[\d+\]\s+\S+\s+"
                     r"(\d+): (\w+): (.*)$")


def _write(path, text, append=False):
    fd = os.open(os.path.join(TRACING, path),
                 os.O_WRONLY | (os.O_APPEND if append else os.O_TRUNC))
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _offset(binary, name):
    """The file offset of function @name in the ELF @binary."""
    addr = None
    out = subprocess.run(["nm", binary], capture_output=True, text=True,
                         check=True).stdout
    for line in out.splitlines():
        f = line.split()
        if len(f) == 3 and f[2] == name and f[1] in "tT":
            addr = int(f[0], 16)
    if addr is None:
        raise RuntimeError("no symbol %s in %s" % (name, binary))
    segs = []
    out = subprocess.run(["readelf", "-lW", binary], capture_output=True,
                         text=True, check=True).stdout
    for line in out.splitlines():
        f = line.split()
        if f[:1] == ["LOAD"]:
            segs.append((int(f[1], 16), int(f[2], 16), int(f[4], 16)))
    for off, vaddr, size in segs:
        if vaddr <= addr < vaddr + size:
            return addr - vaddr + off
    raise RuntimeError("%s of %s is in no LOAD segment" % (name, binary))


def _setup(qemu):
    off = _offset(qemu, "devvm_ring_client_write")
    _teardown()
    _write("uprobe_events", "p:%s/ring_write %s:0x%x off=%%dx:u64\n" %
           (GROUP, qemu, off), True)
    _write("uprobe_events", "r:%s/ring_written %s:0x%x\n" %
           (GROUP, qemu, off), True)
    inst = os.path.join("instances", INSTANCE)
    os.mkdir(os.path.join(TRACING, inst))
    _write(inst + "/trace_clock", "x86-tsc")
    _write(inst + "/buffer_size_kb", "32768")
    _write(inst + "/options/record-tgid", "1")
    _write(inst + "/tracing_on", "0")
    _write(inst + "/events/raw_syscalls/sys_enter/filter",
           "id == %d || id == %d" % (SYS_READ, SYS_WRITE))
    for ev in ("sched/sched_wakeup", "sched/sched_switch",
               "raw_syscalls/sys_enter", GROUP):
        _write(inst + "/events/%s/enable" % ev, "1")
    return inst


def _teardown():
    inst = os.path.join(TRACING, "instances", INSTANCE)
    if os.path.isdir(inst):
        os.rmdir(inst)
    if os.path.isdir(os.path.join(TRACING, "events", GROUP)):
        for ev in ("ring_write", "ring_written"):
            _write("uprobe_events", "-:%s/%s\n" % (GROUP, ev), True)


def _episodes(lines, vm):
    """The A..G timestamps of each traced interrupt; @vm: its pid."""
    eps, ep = [], None
    client = msix_tid = None
    main = vcpu = 0
    for line in lines:
        m = LINE_RE.match(line)
        if not m:
            continue
        tid, tgid, ts, ev, rest = (int(m.group(2)), m.group(3),
                                   int(m.group(4)), m.group(5), m.group(6))
        if ev == "ring_write":
            om = re.search(r"off=(\d+)", rest)
            msix_tid = tid if om and int(om.group(1)) == \
                TESTDEV_REG_MSIX else None
            continue
        if ev == "ring_written":
            if tid == msix_tid:
                if ep and "G" in ep:
                    ep["next A"] = ts
                    eps.append(ep)
                client, main, vcpu = tgid, int(tgid), tid
                ep = {"A": ts}
            msix_tid = None
            continue
        if ep is None:
            continue
        nr = re.match(r"NR (\d+) ", rest) if ev == "sys_enter" else None
        nr = int(nr.group(1)) if nr else None
        if "B" not in ep:
            if nr == SYS_WRITE and tgid == vm:
                ep["B"] = ts
        elif "C" not in ep:
            if ev == "sched_wakeup" and re.search(r"\bpid=%d\b" % main,
                                                  rest):
                ep["C"] = ts
        elif "D" not in ep:
            if ev == "sched_switch" and "next_pid=%d " % main in rest:
                ep["D"] = ts
        elif "E" not in ep:
            if nr == SYS_READ and tid == main:
                ep["E"] = ts
            elif ev == "sched_switch" and tid == main and \
                    "prev_state=S " in rest:
                ep["blocked"] = True
        elif "G" not in ep:
            if ev == "sched_switch" and tid == main and \
                    "next_pid=%d " % vcpu in rest:
                ep["G"] = ts
    return eps


def hops(run, qemu, opts, log):
    """
    run.sh --bench @opts (a device VM on the ring) traced: a dict with
    the guest's MSI-X median, the interrupts traced, and the median of
    each hop (TSC cycles); None when tracing cannot be used here.
    """
    if os.geteuid() != 0 or not os.path.isdir(os.path.join(TRACING,
                                                            "instances")):
        log("MSI-X hop by hop: skipped, it needs root and tracefs at " +
            TRACING)
        return None
    try:
        inst = _setup(qemu)
    except (OSError, RuntimeError, subprocess.CalledProcessError) as e:
        log("MSI-X hop by hop: skipped, cannot set up the trace: %s" % e)
        _teardown()
        return None
    log("MSI-X hop by hop: run.sh --bench %s, traced" % " ".join(opts))
    guest = vm = None
    try:
        p = subprocess.Popen([run, "--bench", "--timeout=300"] + opts,
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
        for line in p.stdout:
            m = READY_RE.match(line)
            if m:
                vm = m.group(1)
            elif line.startswith("demo: bench devvm-testdev mmio-write "):
                _write(inst + "/tracing_on", "1")
            elif line.startswith("demo: bench devvm-testdev msix "):
                _write(inst + "/tracing_on", "0")
                guest = int(line.split()[5])
        p.wait()
        with open(os.path.join(TRACING, inst, "trace")) as f:
            eps = _episodes(f, vm)
    finally:
        _teardown()
    if p.returncode != 0 or guest is None:
        log("MSI-X hop by hop: the traced run failed (status %d)" %
            p.returncode)
        return None
    if not eps:
        log("MSI-X hop by hop: no complete interrupt in the trace")
        return None
    return {
        "options": opts, "guest_median": guest, "interrupts": len(eps),
        "blocked": sum(1 for e in eps if e.get("blocked")),
        "total": statistics.median(e["next A"] - e["A"] for e in eps),
        "hops": [{"from": a, "to": b, "what": what,
                  "median": statistics.median(e[b] - e[a] for e in eps)}
                 for a, b, what in HOPS],
    }
