# Sourced, after tap.sh, by the coordinator's shell tests
# (test-coordinator.sh, test-coordinator-hotplug.sh,
# test-crypto-guest.sh).  The caller sets $coordinator, $ctl and $run
# (the run directory of the coordinator it talks to), and for the guest
# helpers $timeout_s.
#
#   start_coordinator DIR ARG...  "$coordinator --run-dir DIR ARG...",
#                                 until it prints "ready DIR/control.sock"
#                                 (its output in $tmp/coord.out, .err)
#   stop_coordinator              SIGTERM, SIGKILL after 10 s; its exit
#                                 status in $coord_rc (also on exit)
#   c ARG...                      devvm-ctl on $run
#   json EXPR                     a Python expression on "status --json"
#                                 as s
#   wait_serial CLIENT PATTERN    until the client's console has a line
#                                 matching PATTERN (grep -E); false when
#                                 the guest powered off or panicked, or
#                                 after $timeout_s
#   guest_results CLIENT PREFIX   the guest's "guest: ok N - ..." lines
#                                 as TAP cases named "PREFIX: ...", its
#                                 notes as comments, then its summary
#
# SPDX-License-Identifier: GPL-2.0-or-later

coord_pid=
coord_rc=

start_coordinator()
{
    local dir=$1 i

    shift
    # not truncated by the redirection below before the loop looks: the
    # previous coordinator's "ready" line must not be seen
    rm -f "$tmp/coord.out"
    "$coordinator" --run-dir "$dir" "$@" >"$tmp/coord.out" \
        2>"$tmp/coord.err" &
    coord_pid=$!
    for ((i = 0; i < 100; i++)); do
        grep -q "^ready $dir/control.sock$" "$tmp/coord.out" && return 0
        kill -0 "$coord_pid" 2>/dev/null || break
        sleep 0.1
    done
    sed 's/^/# coordinator: /' "$tmp/coord.err"
    return 1
}

stop_coordinator()
{
    local i

    [ -n "$coord_pid" ] || return 0
    kill -TERM "$coord_pid" 2>/dev/null
    for ((i = 0; i < 100; i++)); do
        kill -0 "$coord_pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$coord_pid" 2>/dev/null
    wait "$coord_pid" 2>/dev/null
    coord_rc=$?
    coord_pid=
}
trap 'stop_coordinator; rm -rf "$tmp"' EXIT

c()
{
    "$ctl" --run-dir "$run" "$@"
}

json()
{
    c status --json | python3 -c "import json, sys
s = json.load(sys.stdin)
print($1)"
}

wait_serial()
{
    local serial=$run/clients/$1/serial.log i

    for ((i = 0; i < timeout_s * 10; i++)); do
        grep -qaE "$2" "$serial" 2>/dev/null && return 0
        grep -qa 'reboot: Power down\|Kernel panic' "$serial" 2>/dev/null &&
            return 1
        sleep 0.1
    done
    return 1
}

guest_results()
{
    local line

    guest_ok=0 guest_bad=0 guest_summary=
    while IFS= read -r line; do
        guest_line "${line%$'\r'}" "$2" || true
    done < <(tr -d '\0' <"$run/clients/$1/serial.log")
    guest_summary_case "$2"
}
