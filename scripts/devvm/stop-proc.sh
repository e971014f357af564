# Sourced by run.sh and run-coordinator.sh.
#
# stop_proc NAME PID [SECONDS]: SIGTERM to PID (a child of this shell),
# SIGKILL after SECONDS (default 5); wait for it and report its status as
# "devvm: NAME PID stopped (exit status N)".  Nothing when PID is empty.
#
# SPDX-License-Identifier: GPL-2.0-or-later

stop_proc()
{
    local name=$1 pid=$2 secs=${3:-5} i st

    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null
    for ((i = 0; i < secs * 50; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.02
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    wait "$pid"
    st=$?
    echo "devvm: $name $pid stopped (exit status $st)"
}
