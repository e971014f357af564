#!/usr/bin/env bash
# meson test wrapper for upstream's qtests ("check.sh" passes it):
#
#   qtest-wrapper.sh PROGRAM [ARGS...]
#
# 1. Subtests listed for PROGRAM in tests/devvm/upstream-qtest-exclusions
#    ("NAME:/gtest/path  reason") are skipped with GTest's "-s PATH".
# 2. With DEVVM_QTEST_HIDE_KVM=1 (a host whose KVM is unusable, see
#    devvm-kvm-probe) PROGRAM runs in a private mount namespace whose /dev
#    is the real one without kvm (bind mounts, so every other entry is the
#    same device), and a "--full" argument is dropped.  Upstream picks KVM
#    whenever /dev/kvm opens, and meson passes --full to migration-test
#    when /dev/kvm existed at configure time; on such a host both make
#    tests fail or crawl.
#
# SPDX-License-Identifier: GPL-2.0-or-later

set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
exclusions=$here/../../tests/devvm/upstream-qtest-exclusions

if [ "${1:-}" != --inside ]; then
    [ $# -gt 0 ] || { echo "usage: qtest-wrapper.sh PROGRAM [ARGS...]" >&2; exit 2; }
    prog=${1##*/}
    args=()
    for a in "$@"; do
        if [ "$a" = --full ] && [ "${DEVVM_QTEST_HIDE_KVM:-0}" = 1 ]; then
            continue
        fi
        args+=("$a")
    done
    while read -r name reason; do
        case "$name" in "$prog":/*) args+=(-s "${name#*:}") ;; esac
    done < <(grep -v '^#' "$exclusions")
    if [ "${DEVVM_QTEST_HIDE_KVM:-0}" != 1 ] || [ ! -e /dev/kvm ]; then
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
