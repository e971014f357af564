# TAP helpers for devvm's shell tests; source it, then call
#   ok STATUS DESCRIPTION   once per case ("ok"/"not ok" by STATUS == 0)
#   tap_exit                at the end: non-zero if any case failed
#   running PID             the process exists and has not exited
#   fetch_guest WHAT [OPTION...]
#                           Debian's kernel and an initramfs in $tmp/guest
#                           (scripts/devvm/fetch-guest.sh OPTION...): sets
#                           $kernel, $initrd and $package, and one case
#                           "kernel $package WHAT"; the whole test is
#                           skipped when no kernel is cached and the
#                           archive is out of reach, and ends if it failed
# It also makes a scratch directory $tmp, removed on exit.
#
# SPDX-License-Identifier: GPL-2.0-or-later

tap_top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
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

fetch_guest()
{
    local what=$1 rc=0

    shift
    "$tap_top/scripts/devvm/fetch-guest.sh" --output="$tmp/guest" "$@" \
        >"$tmp/fetch.out" 2>"$tmp/fetch.err" || rc=$?
    if [ $rc -eq 77 ]; then
        echo "1..0 # SKIP $(tail -n 1 "$tmp/fetch.err")"
        exit 0
    fi
    kernel=$(sed -n 's/^kernel=//p' "$tmp/fetch.out")
    initrd=$(sed -n 's/^initrd=//p' "$tmp/fetch.out")
    package=$(sed -n 's/^package=//p' "$tmp/fetch.out")
    [ $rc -eq 0 ] && [ -r "$kernel" ] && [ -r "$initrd" ] || rc=1
    [ $rc -eq 0 ] || sed 's/^/#   /' "$tmp/fetch.err"
    ok $rc "kernel $package $what"
    if [ $rc -ne 0 ]; then
        echo "1..$tap_n"
        tap_exit
    fi
    # what it had to do: download, build, install
    grep -E 'downloading|using the cached|extracting|module|installing' \
        "$tmp/fetch.err" | sed 's/^/# /' || true
}
