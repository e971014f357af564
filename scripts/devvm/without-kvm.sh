#!/usr/bin/env bash
# Run a test with /dev/kvm hidden and in its quick mode:
#
#   without-kvm.sh PROGRAM [ARGS...]
#
# Used as the meson test wrapper for upstream's qtests on a host whose KVM
# is unusable (scripts/devvm/probe-kvm.sh).  Upstream picks KVM whenever
# /dev/kvm can be opened and, when /dev/kvm existed at configure time,
# runs migration-test with --full; on such a host both make tests fail or
# crawl.  This wrapper
#   1. runs PROGRAM in a private mount namespace whose /dev is a copy of
#      the real one without kvm (bind mounts, so everything else is the
#      same device), and
#   2. drops a "--full" argument, so the test runs its quick set.
#
# SPDX-License-Identifier: GPL-2.0-or-later

set -euo pipefail

if [ "${1:-}" != --inside ]; then
    [ $# -gt 0 ] || { echo "usage: without-kvm.sh PROGRAM [ARGS...]" >&2; exit 2; }
    args=()
    for a in "$@"; do
        [ "$a" = --full ] || args+=("$a")
    done
    if [ ! -e /dev/kvm ]; then
        exec "${args[@]}"
    fi
    userns=()
    [ "$(id -u)" = 0 ] || userns=(--map-root-user)
    exec unshare "${userns[@]}" --mount --propagation private -- \
        "$0" --inside "${args[@]}"
fi
shift

dev=$(mktemp -d)
mount -t tmpfs -o mode=0755,nosuid devvm-dev "$dev"
for e in /dev/* /dev/.[!.]*; do
    [ -e "$e" ] || [ -L "$e" ] || continue
    n=${e#/dev/}
    [ "$n" = kvm ] && continue
    if [ -L "$e" ]; then
        cp -P "$e" "$dev/$n"
    elif [ -d "$e" ]; then
        mkdir "$dev/$n"
        mount --rbind "$e" "$dev/$n"
    else
        : >"$dev/$n"
        mount --bind "$e" "$dev/$n"
    fi
done
mount --move "$dev" /dev
rmdir "$dev"
exec "$@"
