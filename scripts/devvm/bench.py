#!/usr/bin/env python3
"""make bench: every devvm path against its reference, in one invocation.

Runs, one after the other on an otherwise idle machine:

* the physical floors and the bare transports on the host
  (devvm-ring-bench: a cache-line round trip, a thread wakeup, the ring
  and the socket, bare and through libdevvm);
* the client VM's guest (devvm-demo with "bench" on its command line)
  timing devvm-testdev through devvm-proxy in each configuration (device
  VM or host process; ring or socket; a device VM's events taken by the
  proxy or relayed by the gateway; its DMA window or messages), with
  QEMU's in-process edu and pci-testdev in the same VM as references,
  through scripts/devvm/run.sh --bench (the device on the last CPU, the
  rest on CPU 0), and with 2 and 4 devvm-proxy functions served by the
  one device VM or process (run.sh --devices), timing accesses that go
  round them;
* the same guest against libvfio-user's gpio-pci-idio-16 sample, through
  QEMU's stock vfio-user-pci and through devvm-proxy;
* through devvm-coordinator: one client, then two clients sharing one
  device VM;
* the device VM configuration once more with its MSI-X traced hop by hop
  (bench_hops.py: ftrace, so only as root; skipped otherwise).

It writes OUT/bench.json and OUT/bench.csv (one row per measure: median
and p99 in TSC cycles, samples), PNG plots made with gnuplot, and OUT/
results.rst, the tables and plots in reStructuredText; --docs copies
results.rst into docs/devvm/benchmarks.rst (between its
bench-results markers) and the plots next to it.

  bench.py [--out DIR] [--docs] [--only LABEL...] [--from JSON]

Numbers are reported, never judged: nothing here fails because of them.

SPDX-License-Identifier: GPL-2.0-or-later
"""

import argparse
import csv
import datetime
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time

import bench_hops

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.path.join(TOP, "build")
QEMU = os.path.join(BUILD, "qemu", "qemu-system-x86_64")
RING_BENCH = os.path.join(BUILD, "devvm", "subprojects", "libdevvm", "bench",
                          "devvm-ring-bench")
DEMO = os.path.join(BUILD, "devvm", "contrib", "devvm", "demo-guest",
                    "devvm-demo.elf")
IDIO16 = os.path.join(BUILD, "libvfio-user", "samples", "gpio-pci-idio-16")
TOOLS = os.path.join(BUILD, "devvm", "tools", "devvm")
COORDINATOR = os.path.join(TOOLS, "devvm-coordinator")
CTL = os.path.join(TOOLS, "devvm-ctl")
TESTDEV_VM = os.path.join(BUILD, "devvm", "contrib", "devvm", "testdev",
                          "devvm-testdev-vm.elf")
RUN = os.path.join(TOP, "scripts", "devvm", "run.sh")

# label, run.sh options
CONFIGS = [
    ("vm ring", ["--device=vm", "--ring=on"]),
    ("vm ring, gateway events", ["--device=vm", "--ring=on", "--events=off"]),
    ("vm ring, no DMA window", ["--device=vm", "--ring=on",
                                "--dma-window=off"]),
    ("vm socket", ["--device=vm", "--ring=off", "--events=off"]),
    ("process ring", ["--device=process", "--ring=on"]),
    ("process socket", ["--device=process", "--ring=off"]),
    ("vm ring, 2 devices", ["--device=vm", "--ring=on", "--devices=2"]),
    ("vm ring, 4 devices", ["--device=vm", "--ring=on", "--devices=4"]),
    ("process ring, 2 devices", ["--device=process", "--ring=on",
                                 "--devices=2"]),
    ("process ring, 4 devices", ["--device=process", "--ring=on",
                                 "--devices=4"]),
]
# the rows of the devices table: (label, devices) per mode
DEVICE_COUNTS = [
    [("vm ring", 1), ("vm ring, 2 devices", 2), ("vm ring, 4 devices", 4)],
    [("process ring", 1), ("process ring, 2 devices", 2),
     ("process ring, 4 devices", 4)],
]
BENCH_RE = re.compile(r"^demo: bench (\S+) (\S+) median (\d+) p99 (\d+) "
                      r"samples (\d+)$")
READY_RE = re.compile(r"device VM (\d+) is READY (\d+\.\d+) s after its QEMU "
                      r"started \(QEMU resident memory ([^)]*)\)")


def log(msg):
    print("bench: " + msg, flush=True)


def log_failed(label, why, text):
    log("%s: %s; its last lines:" % (label, why))
    print("\n".join(text.splitlines()[-15:]), file=sys.stderr)


def stop(proc, secs):
    """SIGTERM @proc, SIGKILL it if it is still there after @secs."""
    proc.terminate()
    try:
        proc.wait(timeout=secs)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def machine():
    cpu = mhz = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name") and cpu == "?":
                cpu = line.split(":", 1)[1].strip()
            if line.startswith("cpu MHz") and mhz == "?":
                mhz = line.split(":", 1)[1].strip()
    rev = subprocess.run(["git", "-C", TOP, "describe", "--always",
                          "--dirty"], capture_output=True, text=True)
    return {
        "date": datetime.datetime.now(datetime.timezone.utc)
                .strftime("%Y-%m-%d %H:%M UTC"),
        "cpus": os.cpu_count(), "cpu": cpu, "tsc_mhz": float(mhz),
        "kernel": platform.release(),
        "load_average": os.getloadavg()[0],
        "revision": rev.stdout.strip() or "?",
        "command": "make bench",
    }


def floors():
    """devvm-ring-bench's table: method -> its numbers (ns)."""
    log("host floors and transports: " + os.path.relpath(RING_BENCH, TOP))
    out = subprocess.run([RING_BENCH], capture_output=True, text=True,
                         check=True).stdout
    rows = {}
    head = None
    for line in out.splitlines():
        f = line.split()
        if f[:1] == ["method"]:
            head = f[1:]
        elif head and len(f) == len(head) + 1 and f[1].isdigit():
            rows[f[0]] = dict(zip(head, map(int, f[1:])))
    return rows


def parse_guest(text):
    rows = []
    for line in text.splitlines():
        m = BENCH_RE.match(line.strip())
        if m:
            rows.append({"device": m.group(1), "measure": m.group(2),
                         "median": int(m.group(3)), "p99": int(m.group(4)),
                         "samples": int(m.group(5))})
    return rows


def run_config(label, opts):
    log("%s: run.sh --bench %s" % (label, " ".join(opts)))
    t0 = time.monotonic()
    p = subprocess.run([RUN, "--bench", "--timeout=300"] + opts,
                       stdin=subprocess.DEVNULL, capture_output=True,
                       text=True)
    res = {"label": label, "options": opts, "ok": p.returncode == 0,
           "seconds": round(time.monotonic() - t0, 1),
           "rows": parse_guest(p.stdout)}
    m = READY_RE.search(p.stdout)
    if m:
        res["ready_s"] = float(m.group(2))
        res["rss"] = m.group(3)
    if not res["ok"]:
        log_failed(label, "run.sh failed (status %d)" % p.returncode,
                   p.stdout + p.stderr)
    return res


def run_idio16(label, dev_json):
    """The demo against gpio-pci-idio-16, through @dev_json's device."""
    log("%s: gpio-pci-idio-16 (libvfio-user) and the demo guest" % label)
    tmp = tempfile.mkdtemp(prefix="devvm-bench-")
    sock = os.path.join(tmp, "idio16.sock")
    ncpu = os.cpu_count() or 1
    pin_dev = ["taskset", "-c", str(ncpu - 1)] if ncpu >= 2 else []
    pin_rest = ["taskset", "-c", "0"] if ncpu >= 2 else []
    server = subprocess.Popen(pin_dev + [IDIO16, sock],
                              stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    res = {"label": label, "ok": False, "rows": []}
    try:
        for _ in range(100):
            if os.path.exists(sock):
                break
            time.sleep(0.05)
        dev = dev_json.replace("SOCK", sock)
        t0 = time.monotonic()
        p = subprocess.run(
            pin_rest + [QEMU, "-M", "pc,memory-backend=ram0", "-m", "128M",
                        "-object",
                        "memory-backend-memfd,id=ram0,size=128M,share=on",
                        "-nodefaults", "-display", "none", "-no-reboot",
                        "-accel", "tcg", "-serial", "stdio",
                        "-device", dev, "-device", "edu",
                        "-device", "pci-testdev",
                        "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
                        "-kernel", DEMO, "-append", "bench"],
            stdin=subprocess.DEVNULL, capture_output=True, text=True,
            timeout=300)
        res["seconds"] = round(time.monotonic() - t0, 1)
        res["rows"] = parse_guest(p.stdout)
        # isa-debug-exit: the demo's 0 (all passed) gives status 1
        res["ok"] = p.returncode == 1 and any(
            r["device"] == "gpio-pci-idio-16" for r in res["rows"])
        if not res["ok"]:
            log_failed(label, "QEMU exited with status %d" % p.returncode,
                       p.stdout + p.stderr)
    finally:
        stop(server, 5)
        shutil.rmtree(tmp, ignore_errors=True)
    return res


def run_coordinator(groups):
    """
    Through devvm-coordinator, as "make run" places things: for each
    group of client names, "devvm-ctl up" each in turn (the demo with
    "bench", one testdev device; the clients of a group must share one
    device VM), wait for their guests, and take them down.  One result
    per client.
    """
    tmp = tempfile.mkdtemp(prefix="devvm-bench-coord-")
    run = os.path.join(tmp, "run")
    out = open(os.path.join(tmp, "coordinator.out"), "w+")
    coord = subprocess.Popen(
        [COORDINATOR, "--run-dir", run, "--qemu", QEMU, "--gateway",
         os.path.join(TOOLS, "devvm-gateway"), "--kvm-probe",
         os.path.join(TOOLS, "devvm-kvm-probe"), "--image", TESTDEV_VM],
        stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    results = []
    try:
        ready = "ready %s/control.sock" % run
        for _ in range(100):
            out.seek(0)
            if ready in out.read().splitlines():
                break
            if coord.poll() is not None:
                raise RuntimeError("the coordinator exited")
            time.sleep(0.1)
        else:
            raise RuntimeError("the coordinator did not start")

        def ctl(*args):
            return subprocess.run([CTL, "--run-dir", run] + list(args),
                                  stdin=subprocess.DEVNULL,
                                  capture_output=True, text=True)

        for label, names in groups:
            log("%s: through devvm-coordinator: %s" %
                (label, ", ".join(names)))
            for n in names:
                with open(os.path.join(tmp, n + ".ini"), "w") as f:
                    f.write("[client]\nname = %s\nmemory = 128M\n"
                            "kernel = %s\nappend = bench\n"
                            "extra-args = -device;edu;-device;pci-testdev\n"
                            "[device dev0]\ntype = testdev\n" % (n, DEMO))
            # one after the other: a second client shares the first's
            # device VM once that is READY ("up" returns then)
            ups = [ctl("up", os.path.join(tmp, n + ".ini")) for n in names]
            oks = [u.returncode == 0 for u in ups]
            texts = {}
            end = time.monotonic() + 300
            while time.monotonic() < end and len(texts) < len(names):
                for n in names:
                    try:
                        with open(os.path.join(run, "clients", n,
                                               "serial.log")) as f:
                            t = f.read()
                    except OSError:
                        continue
                    if re.search(r"^demo: \d+ checks passed", t, re.M):
                        texts[n] = t
                time.sleep(0.2)
            try:
                vms = len(json.loads(ctl("status", "--json").stdout)
                          ["device-vms"])
            except (ValueError, KeyError):
                vms = None
            for n, ok in zip(names, oks):
                t = texts.get(n, "")
                res = {"label": "%s: %s" % (label, n), "device_vms": vms,
                       "ok": ok and bool(t) and "FAILED" not in t and
                       vms == 1, "rows": parse_guest(t)}
                results.append(res)
                if not res["ok"]:
                    log_failed("%s: %s" % (label, n),
                               "did not pass (%s device VMs)" % vms,
                               "".join(u.stdout + u.stderr for u in ups) + t)
            for n in names:
                ctl("down", n)
    finally:
        stop(coord, 15)
        out.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return results


def pick(res, device, measure, key="median"):
    for r in res["rows"]:
        if r["device"] == device and r["measure"] == measure:
            return r[key]
    return None


def ratio(a, b):
    return "%.1f" % (a / b) if a and b else "-"


def fmt(v):
    return "-" if v is None else str(v)


def rst_table(head, rows):
    cols = [head] + rows
    w = [max(len(str(r[i])) for r in cols) for i in range(len(head))]
    bar = "  ".join("=" * n for n in w)
    out = [bar, "  ".join(str(h).ljust(n) for h, n in zip(head, w)), bar]
    for r in rows:
        out.append("  ".join(str(c).ljust(n) for c, n in zip(r, w)))
    out.append(bar)
    return "\n".join(out)


def plot(out, name, title, ylabel, labels, series, log_y=True):
    """A clustered bar chart: @series is [(name, [value per label])]."""
    series = [x for x in series if any(v is not None for v in x[1])]
    dat = os.path.join(out, name + ".dat")
    with open(dat, "w") as f:
        f.write("label " + " ".join('"%s"' % s[0] for s in series) + "\n")
        for i, lab in enumerate(labels):
            vals = [s[1][i] for s in series]
            f.write('"%s" %s\n' % (lab, " ".join(
                "NaN" if v is None else str(v) for v in vals)))
    def q(text):
        return '"%s"' % text.replace("\\", "\\\\").replace('"', '\\"')

    gp = ["set terminal pngcairo size 1100,520 font 'sans,9'"
          if "pngcairo" in terminals() else
          "set terminal png size 1100,520",
          "set output %s" % q(os.path.join(out, name + ".png")),
          "set title %s" % q(title), "set ylabel %s" % q(ylabel),
          "set style data histograms", "set style histogram clustered",
          "set style fill solid 0.8 border -1", "set boxwidth 0.9",
          "set xtics rotate by -25 left", "set key top left",
          "set grid ytics", "set bmargin 6"]
    if log_y:
        gp.append("set logscale y")
    cols = ", ".join("%s using %d:xtic(1) title columnhead" % (q(dat), i + 2)
                     for i in range(len(series)))
    gp.append("plot " + cols)
    subprocess.run(["gnuplot"], input="\n".join(gp) + "\n", text=True,
                   check=True)
    os.unlink(dat)
    return name + ".png"


_terms = None


def terminals():
    global _terms
    if _terms is None:
        p = subprocess.run(["gnuplot", "-e", "set terminal"],
                           capture_output=True, text=True)
        _terms = p.stdout + p.stderr
    return _terms


def report(m, fl, guests, hops, out):
    tsc = m["tsc_mhz"]
    lines = []
    w = lines.append
    w(textwrap.fill(
        "Results of ``make bench`` (``scripts/devvm/bench.py``), made on "
        "%s at revision %s: %d CPUs (%s), TSC %.0f MHz, Linux %s, load "
        "average %.2f at the start.  Cycles are host TSC cycles (the "
        "guests run under TCG, where the guest's ``rdtsc`` reads the "
        "host's).  The machine-readable numbers are in ``build/bench/"
        "bench.json`` and ``bench.csv``." %
        (m["date"], m["revision"], m["cpus"], m["cpu"], tsc, m["kernel"],
         m["load_average"]), 72))
    w("")
    w("Floors and transports (host threads on CPUs 0 and 1, ns)")
    w("-" * 57)
    w("")
    rows = [[k, v.get("median_ns"), v.get("p99_ns"),
             round(v.get("median_ns", 0) * tsc / 1000)]
            for k, v in fl.items()]
    w(rst_table(["method", "median ns", "p99 ns", "median cycles"], rows))
    w("")

    devs = [g for g in guests if any(r["device"] == "devvm-testdev"
                                     for r in g["rows"])]
    w("devvm-testdev from the guest, against the references in the same VM")
    w("-" * 70)
    w("")
    w("Medians (p99 in brackets) in TSC cycles; \"× ref\" divides the "
      "median by\nthe reference's median in the same VM: edu's register "
      "read for MMIO\nreads, pci-testdev's port read for port reads, "
      "edu's register write\nfor writes, edu's MSI for MSI-X.")
    w("")
    rows = []
    for g in devs:
        def cell(meas, ref_dev, ref_meas):
            v = pick(g, "devvm-testdev", meas)
            p = pick(g, "devvm-testdev", meas, "p99")
            r = pick(g, ref_dev, ref_meas)
            return ["%s (%s)" % (fmt(v), fmt(p)), ratio(v, r)]
        rows.append([g["label"]] +
                    cell("mmio-read", "edu", "mmio-read") +
                    cell("port-read", "pci-testdev", "port-read") +
                    cell("mmio-write", "edu", "mmio-write") +
                    cell("msix", "edu", "msi"))
    w(rst_table(["configuration", "MMIO read", "× ref", "port read",
                 "× ref", "MMIO write", "× ref", "MSI-X", "× ref"], rows))
    w("")
    rows = []
    for g in devs:
        rows.append([g["label"],
                     fmt(pick(g, "edu", "mmio-read")),
                     fmt(pick(g, "pci-testdev", "port-read")),
                     fmt(pick(g, "edu", "mmio-write")),
                     fmt(pick(g, "edu", "msi")),
                     "%.3f s" % g["ready_s"] if "ready_s" in g else "-",
                     g.get("rss", "-")])
    w("The references in each of those VMs, and the device VM's "
      "boot-to-READY\nand resident memory:")
    w("")
    w(rst_table(["configuration", "edu read", "pci-testdev port",
                 "edu write", "edu MSI", "READY after", "device VM RSS"],
                rows))
    w("")
    sizes = [("4k", 4096), ("64k", 65536), ("1m", 1 << 20)]
    rows = []
    for g in devs:
        row = [g["label"]]
        for d in ("to", "from"):
            for s, n in sizes:
                v = pick(g, "devvm-testdev", "dma-%s-guest-%s" % (d, s))
                row.append("%s (%.0f MB/s)" % (v, n * tsc / v)
                           if v else "-")
        rows.append(row)
    w("DMA, from the command write to the status read (median cycles and "
      "what\nthat is in MB/s): \"to guest\" is a FILL the device writes "
      "into guest\nRAM, \"from guest\" a CHECKSUM of guest RAM the device "
      "reads; both include\nthe device's own work on the bytes.")
    w("")
    w(rst_table(["configuration"] +
                ["to guest %s" % s for s, _ in sizes] +
                ["from guest %s" % s for s, _ in sizes], rows))
    w("")
    by_label = {g["label"]: g for g in devs}
    rows = []
    for label, n in [c for counts in DEVICE_COUNTS for c in counts]:
        g = by_label.get(label)
        if not g:
            continue
        suffix = "-%ddev" % n if n > 1 else ""
        first = pick(g, "devvm-testdev", "mmio-read")
        rd = pick(g, "devvm-testdev", "mmio-read" + suffix)
        wr = pick(g, "devvm-testdev", "mmio-write" + suffix)
        edu_rd, edu_wr = pick(g, "edu", "mmio-read"), pick(g, "edu",
                                                            "mmio-write")
        rows.append([label, n, "%s (%s)" % (fmt(first), ratio(first, edu_rd)),
                     "%s (%s)" % (fmt(rd), ratio(rd, edu_rd)),
                     fmt(pick(g, "devvm-testdev", "mmio-read" + suffix,
                              "p99")),
                     "%s (%s)" % (fmt(wr), ratio(wr, edu_wr))])
    if rows:
        w("1, 2 and 4 devices: one client with N devvm-proxy functions, "
          "all served\nby one device VM (its one vCPU polls every ring) or "
          "one device process\n(a thread per connection), each its own "
          "instance.  The guest times a\nregister read of the first "
          "function while the others sit idle, and a\nread and a posted "
          "write that go round all N, one function a sample\n(median "
          "cycles, × edu's in brackets; p99 of the read round all N):")
        w("")
        w(rst_table(["configuration", "devices", "read, first",
                     "read, round all", "p99", "write, round all"], rows))
        w("")
    if hops:
        w("An MSI-X from the device VM, hop by hop")
        w("-" * 39)
        w("")
        w(textwrap.fill(
            "The first configuration (%s) run once more with ftrace "
            "(scripts/devvm/bench_hops.py): uprobes where the guest's "
            "write is posted on the ring (entry and return), the "
            "scheduler's wakeups and switches, and the read and write "
            "system calls, timestamped with the TSC, while the guest "
            "times MSI-X.  Medians over "
            "%d interrupts (in %d of them the main thread first waited "
            "for the BQL); A to the next A is %s cycles, and the guest "
            "measured %s in this traced run (tracing costs: compare the "
            "untraced runs above).  bench_hops.py says what each letter "
            "is." % (CONFIGS[0][0], hops["interrupts"], hops["blocked"],
                     round(hops["total"]), hops["guest_median"]), 72))
        w("")
        w(rst_table(["hop", "cycles", "what"],
                    [["%s-%s" % (h["from"], h["to"]), round(h["median"]),
                      h["what"]] for h in hops["hops"]]))
        w("")
    vfu = [g for g in guests if g not in devs]
    if vfu:
        w("libvfio-user's gpio-pci-idio-16 sample (a port read of its "
          "BAR2)")
        w("-" * 63)
        w("")
        rows = [[g["label"],
                 fmt(pick(g, "gpio-pci-idio-16", "port-read")),
                 fmt(pick(g, "gpio-pci-idio-16", "port-read", "p99")),
                 fmt(pick(g, "pci-testdev", "port-read")),
                 ratio(pick(g, "gpio-pci-idio-16", "port-read"),
                       pick(g, "pci-testdev", "port-read"))]
                for g in vfu]
        w(rst_table(["client device", "median", "p99",
                     "pci-testdev port read", "× ref"], rows))
        w("")
    # plots
    labels = [g["label"] for g in devs]
    pngs = []
    if shutil.which("gnuplot") and labels:
        pngs.append(("Register reads and writes", plot(
            out, "bench-access", "A 4-byte access from the guest (median "
            "TSC cycles, log scale)", "cycles", labels,
            [("devvm MMIO read", [pick(g, "devvm-testdev", "mmio-read")
                                  for g in devs]),
             ("edu MMIO read", [pick(g, "edu", "mmio-read") for g in devs]),
             ("devvm port read", [pick(g, "devvm-testdev", "port-read")
                                  for g in devs]),
             ("pci-testdev port read", [pick(g, "pci-testdev", "port-read")
                                        for g in devs]),
             ("devvm MMIO write", [pick(g, "devvm-testdev", "mmio-write")
                                   for g in devs]),
             ("edu MMIO write", [pick(g, "edu", "mmio-write")
                                 for g in devs])])))
        pngs.append(("Interrupts", plot(
            out, "bench-irq", "An interrupt, from the write that asks for "
            "it to the guest's handler (median TSC cycles, log scale)",
            "cycles", labels,
            [("devvm-testdev MSI-X", [pick(g, "devvm-testdev", "msix")
                                      for g in devs]),
             ("edu MSI", [pick(g, "edu", "msi") for g in devs])])))
        pngs.append(("DMA", plot(
            out, "bench-dma", "DMA throughput seen by the guest (MB/s, "
            "log scale)", "MB/s", labels,
            [("%s guest %s" % (d, s), [
                round(n * tsc / v) if v else None
                for v in (pick(g, "devvm-testdev",
                               "dma-%s-guest-%s" % (d, s))
                          for g in devs)])
             for d in ("to", "from") for s, n in sizes])))
    for title, png in pngs:
        w(".. figure:: %s" % png)
        w("   :alt: %s" % title)
        w("")
        w("   %s" % title)
        w("")
    return "\n".join(lines) + "\n", [p for _, p in pngs]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(BUILD, "bench"))
    ap.add_argument("--docs", action="store_true",
                    help="put the results and plots in docs/devvm")
    ap.add_argument("--only", nargs="*", metavar="LABEL",
                    help="only these guest configurations (their "
                    "labels; \"hops\": the traced MSI-X)")
    ap.add_argument("--from", dest="from_json", metavar="JSON",
                    help="no runs: the report of an earlier bench.json")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    if a.from_json:
        with open(a.from_json) as f:
            r = json.load(f)
        text, pngs = report(r["machine"], r["floors"], r["guests"],
                            r.get("hops"), a.out)
        print(text)
        return publish(a, text, pngs)
    for f in (QEMU, RING_BENCH, DEMO, IDIO16, COORDINATOR, CTL, TESTDEV_VM):
        if not os.path.exists(f):
            sys.exit("bench: %s is missing: build first (make)" % f)
    m = machine()
    log("%d CPUs, %s, TSC %.0f MHz, load average %.2f" %
        (m["cpus"], m["cpu"], m["tsc_mhz"], m["load_average"]))
    if m["load_average"] > 0.5:
        log("warning: the machine is not idle; the numbers will show it")
    t0 = time.monotonic()
    fl = floors()
    guests = []
    for label, opts in CONFIGS:
        if a.only is None or label in a.only:
            guests.append(run_config(label, opts))
    for label, dev in (
            ("stock vfio-user-pci", '{"driver":"vfio-user-pci","socket":'
                                    '{"path":"SOCK","type":"unix"}}'),
            ("devvm-proxy socket", "devvm-proxy,socket=SOCK,ring=off")):
        if a.only is None or label in a.only:
            guests.append(run_idio16(label, dev))
    groups = [(label, names) for label, names in (
        ("coordinator, one client", ["solo"]),
        ("coordinator, two clients sharing", ["share-a", "share-b"]))
        if a.only is None or label in a.only]
    if groups:
        guests += run_coordinator(groups)
    hops = None
    if a.only is None or "hops" in a.only:
        hops = bench_hops.hops(RUN, QEMU, CONFIGS[0][1], log)
    m["seconds"] = round(time.monotonic() - t0)
    with open(os.path.join(a.out, "bench.json"), "w") as f:
        json.dump({"machine": m, "floors": fl, "guests": guests,
                   "hops": hops}, f, indent=1)
    with open(os.path.join(a.out, "bench.csv"), "w", newline="") as f:
        c = csv.writer(f)
        c.writerow(["configuration", "device", "measure", "median_cycles",
                    "p99_cycles", "samples"])
        for k, v in fl.items():
            c.writerow(["host", "ring-bench", k,
                        round(v["median_ns"] * m["tsc_mhz"] / 1000),
                        round(v["p99_ns"] * m["tsc_mhz"] / 1000),
                        v["iterations"]])
        for g in guests:
            for r in g["rows"]:
                c.writerow([g["label"], r["device"], r["measure"],
                            r["median"], r["p99"], r["samples"]])
    text, pngs = report(m, fl, guests, hops, a.out)
    print(text)
    log("%s/bench.json, bench.csv, results.rst and %d plots, in %d s" %
        (os.path.relpath(a.out, TOP), len(pngs), m["seconds"]))
    rc = publish(a, text, pngs)
    failed = [g["label"] for g in guests if not g["ok"]]
    if failed:
        log("these configurations failed: " + ", ".join(failed))
        return 1
    return rc


def publish(a, text, pngs):
    with open(os.path.join(a.out, "results.rst"), "w") as f:
        f.write(text)
    if a.docs:
        docs = os.path.join(TOP, "docs", "devvm")
        rst = os.path.join(docs, "benchmarks.rst")
        with open(rst) as f:
            doc = f.read()
        begin, end = ".. bench-results-begin\n", ".. bench-results-end\n"
        i, j = doc.index(begin) + len(begin), doc.index(end)
        with open(rst, "w") as f:
            f.write(doc[:i] + "\n" + text + "\n" + doc[j:])
        for p in pngs:
            shutil.copy(os.path.join(a.out, p), os.path.join(docs, p))
        log("docs/devvm/benchmarks.rst and its plots updated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
