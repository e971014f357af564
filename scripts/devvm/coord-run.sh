# Sourced by run-coordinator.sh and run-crypto.sh: a private coordinator
# for one run of an example, and what such a run reports.  The caller
# sets $build, $coordinator and $ctl, and sources stop-proc.sh.
#
#   coord_workdir NAME    make $work, build/run/NAME-PID (0700, below a
#                         build/run of this user's), and set $run, the
#                         coordinator's --run-dir in it
#   coord_start ARG...    start "$coordinator --run-dir $run ARG...",
#                         wait for its "ready" line; sets $coord_pid
#   c ARG...              devvm-ctl on it
#   coord_up DESC         "devvm-ctl up DESC", shown; sets $t_up (when
#                         it began), $client and $client_pid
#   coord_wait_guest PATTERN FILE [HOOK]
#                         every 0.1 s (after HOOK, if given) until FILE
#                         has a line matching PATTERN (grep -E): then
#                         $verdict is "found"; "exited" when the client
#                         did first; empty after $timeout_s.  $t_verdict:
#                         seconds after $t_up
#   coord_teardown        stop $tail_pid (a console follower), take
#                         $client down, stop the coordinator, remove
#                         $work: for the caller's EXIT trap
#   ms_since T            seconds since T (date +%s%N), as "S.mmm"
#   coord_report CLIENT   what ran where, from "devvm-ctl status --json"
#
# SPDX-License-Identifier: GPL-2.0-or-later

coord_pid=
client=
tail_pid=

coord_workdir()
{
    mkdir -p -m 0700 "$build/run"
    if [ -L "$build/run" ] || [ ! -O "$build/run" ]; then
        echo "run: $build/run is not a directory of this user" >&2
        exit 1
    fi
    chmod 0700 "$build/run"
    work=$build/run/$1-$$
    rm -rf "$work"
    mkdir -m 0700 "$work"
    run=$work/run
}

log()
{
    echo "devvm: $*"
}

ms_since()
{
    local ms=$((($(date +%s%N) - $1) / 1000000))

    printf '%d.%03d' $((ms / 1000)) $((ms % 1000))
}

c()
{
    "$ctl" --run-dir "$run" "$@"
}

coord_start()
{
    local cmd=("$coordinator" --run-dir "$run" "$@") i

    log "coordinator:"
    echo " \$ ${cmd[*]}"
    "${cmd[@]}" >"$work/coordinator.out" 2>&1 </dev/null &
    coord_pid=$!
    for ((i = 0; i < 100; i++)); do
        grep -qx "ready $run/control.sock" "$work/coordinator.out" && break
        kill -0 "$coord_pid" 2>/dev/null || break
        sleep 0.1
    done
    if ! grep -qx "ready $run/control.sock" "$work/coordinator.out"; then
        sed 's/^/devvm: coordinator: /' "$work/coordinator.out" >&2
        echo "run: the coordinator did not start" >&2
        return 1
    fi
    log "coordinator $coord_pid is ready on $run/control.sock"
}

coord_up()
{
    log "client:"
    echo " \$ devvm-ctl up $1"
    t_up=$(date +%s%N)
    if ! c up "$1" >"$work/up.out" 2>&1; then
        sed 's/^/ /' "$work/up.out"
        log "FAILED: the coordinator could not bring the client up"
        return 1
    fi
    sed 's/^/ /' "$work/up.out"
    read -r client client_pid < <(sed -n \
        's/^devvm-ctl: client \([^ ]*\) is up (QEMU pid \([0-9]*\)).*/\1 \2/p' \
        "$work/up.out") || true
    if [ -z "$client_pid" ]; then
        log "FAILED: no client in devvm-ctl's reply"
        return 1
    fi
}

coord_wait_guest()
{
    local i

    verdict=
    for ((i = 0; i < timeout_s * 10; i++)); do
        [ -z "${3:-}" ] || "$3"
        if grep -qE "$1" "$2"; then
            verdict=found
            break
        fi
        if ! kill -0 "$client_pid" 2>/dev/null; then
            verdict=exited
            break
        fi
        sleep 0.1
    done
    t_verdict=$(ms_since "$t_up")
}

coord_teardown()
{
    if [ -n "$tail_pid" ]; then
        kill -TERM "$tail_pid" 2>/dev/null
        wait "$tail_pid" 2>/dev/null
    fi
    if [ -n "$client" ]; then
        log "down:"
        c down "$client" | sed 's/^/ /'
    fi
    # it stops what it started, with SIGKILL after 3 s
    stop_proc coordinator "$coord_pid" 10
    rm -rf "$work"
}

coord_report()
{
    c status --json >"$work/status.json" || return 1
    python3 - "$work/status.json" "$1" <<'EOF'
import json, sys
s = json.load(open(sys.argv[1]))
cl = [c for c in s["clients"] if c["name"] == sys.argv[2]][0]
print("devvm: report:")
def cpus(threads, pick):
    return ",".join(sorted({t["cpus"] for t in threads if pick(t)})) or "?"
vcpu = lambda t: t["name"].startswith("CPU ")
def rss(p):
    kib = p.get("rss-kib", -1)
    return "RSS %.0f MiB" % (kib / 1024) if kib >= 0 else "RSS ?"
print("  host cores %s: %s for clients and gateways, %s exclusive" %
      (s["cores"]["host"], s["cores"]["shared"],
       s["cores"]["exclusive"] or "none"))
for d in s["device-vms"]:
    t = d["vm"].get("threads", [])
    if d.get("mode") == "process":
        print("  device %s (%s) as a host process: pid %d (%s), threads on "
              "core(s) %s; %s" % (d["id"], d["type"], d["vm"]["pid"],
                                  rss(d["vm"]), cpus(t, lambda x: True),
                                  d["reservation"]))
        continue
    print("  device VM %s (%s): QEMU pid %d (%s), vCPU on core %s, its "
          "other threads on %s; %s; READY %.3f s after its QEMU started; "
          "gateway pid %d (%s)" %
          (d["id"], d["type"], d["vm"]["pid"], rss(d["vm"]), cpus(t, vcpu),
           cpus(t, lambda x: not vcpu(x)), d["reservation"],
           d.get("ready-seconds", 0), d["gateway"]["pid"], rss(d["gateway"])))
t = cl["qemu"].get("threads", [])
print("  client %s: QEMU pid %d (%s, %s), threads on core(s) %s" %
      (cl["name"], cl["qemu"]["pid"], s["accel"], rss(cl["qemu"]),
       cpus(t, lambda x: True)))
for d in cl["devices"]:
    p = d.get("proxy")
    if p:
        print("  its device %s: devvm-proxy %s, %d reads, %d writes, %d DMA "
              "bytes, %d interrupts" % (d["name"], p["state"], p["reads"],
                                        p["writes"], p["dma-bytes"],
                                        p["irqs"]))
EOF
}
