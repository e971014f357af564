#!/usr/bin/env python3
# The load of test-coordinator.sh's recovery test: through the client's
# QMP, read the devvm-testdev ID register in BAR 0 of the devvm-proxy
# "dev0" (HMP xp: a guest-physical read that goes through devvm-proxy to
# the device VM) as fast as it answers; after 200 good reads SIGKILL PID:
# the device VM (or SIGSTOP it: it hangs, its heartbeat stops, the
# gateway reports it failed), or its gateway.  The reads fail (all ones)
# while it is gone; the coordinator restarts it; the reads must return
# the ID again and devvm-proxy be "connected" again (one failure more),
# in the same client, with no reboot.  30 s at most.
#
#   coordinator-load.py QMP_SOCKET PID [KILL|STOP]
#
# SPDX-License-Identifier: GPL-2.0-or-later

import json
import os
import re
import signal
import socket
import sys
import time

TESTDEV_ID = 0x7e570001


def main():
    qmp = socket.socket(socket.AF_UNIX)
    qmp.settimeout(10)
    qmp.connect(sys.argv[1])
    f = qmp.makefile("rw")

    def cmd(name, **args):
        f.write(json.dumps({"execute": name, "arguments": args}) + "\n")
        f.flush()
        while True:
            r = json.loads(f.readline())
            if "error" in r:
                raise RuntimeError("%s: %s" % (name, r["error"]["desc"]))
            if "return" in r:
                return r["return"]

    def hmp(line):
        return cmd("human-monitor-command", **{"command-line": line})

    def proxy():
        return cmd("query-devvm-proxy")[0]

    f.readline()
    cmd("qmp_capabilities")
    p0 = proxy()
    m = re.search(r'BAR0: 32 bit memory at (0x[0-9a-f]+)[^"]*id "dev0"',
                  hmp("info pci"))
    read_id = "xp /1wx " + m.group(1)
    ok = bad = after = 0
    killed = lost = back = None
    t0 = now = time.monotonic()
    sig = signal.SIGSTOP if sys.argv[3:] == ["STOP"] else signal.SIGKILL
    while now - t0 < 30:
        v = int(hmp(read_id).split()[1], 16)
        now = time.monotonic()
        if v == TESTDEV_ID:
            if lost is None:
                ok += 1
            else:
                back = back or now
                after += 1
                if after >= 100 and proxy()["state"] == "connected":
                    break
        else:
            bad += 1
            if killed is not None and lost is None:
                lost = now
        if killed is None and ok >= 200:
            os.kill(int(sys.argv[2]), sig)
            killed = now
    p = proxy()
    print("reads: %d before the signal, %d failed, %d after; the reads failed "
          "for %.3f s; devvm-proxy %s, generation %d -> %d, failures %d" %
          (ok, bad, after, (back or now) - (lost or now), p["state"],
           p0["generation"], p["generation"], p["failures"]))
    # a new gateway starts again at generation 1: the failure is counted
    return 0 if (ok >= 200 and after >= 100 and p["state"] == "connected"
                 and p["failures"] == p0["failures"] + 1) else 1


if __name__ == "__main__":
    sys.exit(main())
