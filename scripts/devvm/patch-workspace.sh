#!/usr/bin/env bash
# Edit devvm's patch series against upstream files with git.
#
#   patch-workspace.sh start DIR    unpack the pinned base into DIR as a git
#                                   repository: commit "base", then one
#                                   commit per patch of the series
#   patch-workspace.sh export DIR   rewrite subprojects/packagefiles/qemu/
#                                   (patches and series) from the commits
#                                   on top of "base" in DIR
#
# In between, change the commits in DIR as usual (commit --fixup, rebase
# -i --autosquash, new commits).  "make" then notices the new series and
# re-creates build/src.
#
# SPDX-License-Identifier: GPL-2.0-or-later

set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../.." && pwd)
patchdir=$top/subprojects/packagefiles/qemu
git=(git -c user.name=devvm -c user.email=devvm@localhost
     -c core.autocrlf=false -c safe.directory='*')

cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] ||
    { sed -n '2,14s/^# \{0,1\}//p' "$0" >&2; exit 2; }

case "$cmd" in
start)
    [ ! -e "$dir" ] || { echo "patch-workspace: $dir exists" >&2; exit 1; }
    tarball=$("$here/fetch-source.sh" --pin="$top/subprojects/qemu-base.pin")
    mkdir -p "$dir"
    tar -xJf "$tarball" -C "$dir" --strip-components=1
    cd "$dir"
    "${git[@]}" init -q
    # upstream's .gitignore would hide files the series may touch
    "${git[@]}" add -A -f .
    "${git[@]}" commit -q -m base
    "${git[@]}" tag devvm-base
    while read -r p; do
        case "$p" in ''|'#'*) continue ;; esac
        "${git[@]}" am -q "$patchdir/$p"
    done <"$patchdir/series"
    "${git[@]}" log --oneline devvm-base..HEAD
    ;;
export)
    cd "$dir"
    rm -f "$patchdir"/*.patch
    "${git[@]}" format-patch -q --zero-commit --no-signature --no-numbered \
        -o "$patchdir" devvm-base..HEAD
    (cd "$patchdir" && ls -1 ./*.patch | sed 's|^\./||') >"$patchdir/series"
    cat "$patchdir/series"
    ;;
*)
    echo "patch-workspace: unknown command '$cmd'" >&2
    exit 2
    ;;
esac
