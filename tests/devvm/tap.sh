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
#   guest_line LINE PREFIX  a Linux guest's console line: "guest: ok N -
#                           WHAT" (or "not ok") becomes the case "PREFIX:
#                           WHAT", "guest: # ..." a comment, "guest: N
#                           passed, N failed" its summary; counted in
#                           $guest_ok, $guest_bad, $guest_summary; true
#                           for a case or the summary
#   guest_summary_case [PREFIX]
#                           one case: the guest's summary agrees with what
#                           was counted here, and nothing failed
# It also makes a scratch directory $tmp, removed on exit.
#
# SPDX-License-Identifier: GPL-2.0-or-later

tap_top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

tap_n=0
tap_fails=0
guest_ok=0
guest_bad=0
guest_summary=

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

guest_line()
{
    local status desc

    case "$1" in
    "guest: ok "*|"guest: not ok "*)
        status=${1#guest: }
        status=${status%% [0-9]*}
        desc=${1#guest: "$status" }
        desc="$2: ${desc#* - }"
        if [ "$status" = ok ]; then
            ok 0 "$desc"
            guest_ok=$((guest_ok + 1))
        else
            ok 1 "$desc"
            guest_bad=$((guest_bad + 1))
        fi ;;
    "guest: # "*)
        echo "# ${1#guest: # }"
        return 1 ;;
    "guest: "*" passed, "*" failed")
        guest_summary=${1#guest: } ;;
    *)
        return 1 ;;
    esac
}

guest_summary_case()
{
    local counted="$guest_ok passed, $guest_bad failed"

    [ "$guest_summary" = "$counted" ] && [ $guest_bad -eq 0 ] &&
        [ $guest_ok -gt 0 ]
    ok $? "${1:+$1: }guest summary: ${guest_summary:-none} (counted here: $counted)"
}
