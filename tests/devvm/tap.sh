# TAP helpers for devvm's shell tests; source it, then call
#   ok STATUS DESCRIPTION   once per case ("ok"/"not ok" by STATUS == 0)
#   tap_exit                at the end: non-zero if any case failed
#   running PID             the process exists and has not exited
# It also makes a scratch directory $tmp, removed on exit.
#
# SPDX-License-Identifier: GPL-2.0-or-later

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

tap_n=0
tap_fails=0

ok()
{
    tap_n=$((tap_n + 1))
    if [ "$1" = 0 ]; then
        echo "ok $tap_n - $2"
    else
        echo "not ok $tap_n - $2"
        tap_fails=$((tap_fails + 1))
    fi
}

tap_exit()
{
    exit $((tap_fails > 0))
}

# running PID: the process exists and has not exited (a zombie whose new
# parent has not reaped it yet has)
running()
{
    local state

    state=$(sed 's/^.*) \(.\).*/\1/' "/proc/$1/stat" 2>/dev/null) &&
        [ "$state" != Z ] && [ "$state" != X ]
}
