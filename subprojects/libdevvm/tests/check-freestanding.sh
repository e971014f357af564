#!/usr/bin/env bash
# The freestanding core (libdevvm-core.a) may only depend on what a
# compiler can emit by itself: memcpy, memmove, memset, memcmp; and on
# the two hooks every SDK runtime defines, devvm_rt_now_ns and
# devvm_rt_sleep_ns (sdk/sdk-impl.h).
#
#   check-freestanding.sh LIBDEVVM_CORE_A
#
# SPDX-License-Identifier: GPL-2.0-or-later
set -uo pipefail
lib=$1
allowed=' memcpy memmove memset memcmp devvm_rt_now_ns devvm_rt_sleep_ns '
echo "1..2"
# (what one member of the archive needs and another defines is fine)
defs=$(nm --defined-only --format=posix "$lib" 2>/dev/null |
       awk 'NF >= 2 && $2 ~ /^[A-Z]$/ {print $1}' | sort -u)
undef=$(nm -u --format=posix "$lib" 2>/dev/null |
        awk '$2 == "U" {print $1}' | sort -u | comm -23 - <(echo "$defs"))
bad=
for s in $undef; do
    case "$allowed" in *" $s "*) ;; *) bad="$bad $s" ;; esac
done
if [ -z "$bad" ]; then
    echo "ok 1 - core needs nothing beyond mem* calls and the runtime hooks"
else
    echo "not ok 1 - core calls outside the freestanding set:$bad"
fi
# Every core object must define something (an empty archive passes 1).
defined=$(nm --defined-only --format=posix "$lib" 2>/dev/null |
          awk '$2 ~ /^[TtDdRrBb]$/ && $1 ~ /^devvm_/ {print $1}' | wc -l)
if [ "$defined" -gt 10 ]; then
    echo "ok 2 - core defines $defined devvm_ symbols"
else
    echo "not ok 2 - core defines only $defined devvm_ symbols"
fi
