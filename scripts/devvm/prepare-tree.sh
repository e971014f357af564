#!/usr/bin/env bash
# Lay devvm over the pinned QEMU base:
#
#   prepare-tree.sh TARBALL SRCDIR
#
# 1. Unpack TARBALL into SRCDIR (outside version control) unless SRCDIR
#    already holds exactly that base with exactly the current patch series.
# 2. Apply subprojects/packagefiles/qemu/series in order.
# 3. Link every file of the overlay (this repository's files at QEMU paths)
#    into SRCDIR, so that editing it in the repository is all the next
#    build needs.  Links to files that left the overlay are removed.
# 4. Link Debian's SeaBIOS and iPXE images into pc-bios/ (the +ds tarball
#    has no firmware).
#
# Idempotent, and quick when nothing changed: "make" runs it every time.
#
# SPDX-License-Identifier: GPL-2.0-or-later

set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../.." && pwd)
tarball=${1:?usage: prepare-tree.sh TARBALL SRCDIR}
src=${2:?usage: prepare-tree.sh TARBALL SRCDIR}
patchdir=$top/subprojects/packagefiles/qemu

# Top-level directories of the overlay.  Everything else in the repository
# (scripts/devvm, subprojects/libdevvm, tools/devvm, ...) is built by the
# repository's own meson.build.
overlay_dirs=(accel contrib/devvm docs hw include pc-bios qapi subprojects/libdevvm
              tests/qtest)

# Where Debian's seabios and ipxe-qemu put the firmware QEMU loads.
firmware_dirs=(/usr/share/seabios /usr/lib/ipxe/qemu)

log() { echo "prepare-tree: $*" >&2; }
die() { log "error: $*"; exit 1; }

series_id()
{
    local p
    echo "base $(basename "$tarball")"
    while read -r p; do
        case "$p" in ''|'#'*) continue ;; esac
        [ -r "$patchdir/$p" ] || die "patch '$p' named in the series is missing"
        echo "$p $(sha256sum <"$patchdir/$p" | cut -d' ' -f1)"
    done <"$patchdir/series"
}

want=$(series_id)
stamp=$src/.devvm-stamp
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    log "unpacking $(basename "$tarball") into $src"
    rm -rf "$src"
    mkdir -p "$src"
    # tar keeps upstream's mtimes, so after a re-unpack only the files a
    # patch touched look new to the build.
    tar -xJf "$tarball" -C "$src" --strip-components=1
    while read -r p; do
        case "$p" in ''|'#'*) continue ;; esac
        log "applying $p"
        patch -d "$src" -p1 -s -N --no-backup-if-mismatch <"$patchdir/$p" ||
            die "$p does not apply to the base"
    done <"$patchdir/series"
    echo "$want" >"$stamp"
fi

# Link the overlay.
cd "$top"
for d in "${overlay_dirs[@]}"; do
    [ -d "$d" ] || continue
    find "$d" -type f ! -name '*~' ! -name '.*.swp' -print
done | while read -r f; do
    dst=$src/$f
    if [ -L "$dst" ]; then
        [ "$(readlink "$dst")" = "$top/$f" ] && continue
        rm -f "$dst"
    elif [ -e "$dst" ]; then
        die "$f exists in the base: change it with a patch in $patchdir"
    fi
    mkdir -p "$(dirname "$dst")"
    ln -s "$top/$f" "$dst"
done

# Firmware: the +ds tarball has none.  Link the blobs upstream's
# pc-bios/meson.build names from Debian's seabios and ipxe-qemu packages,
# so they are found from the build tree (qemu-bundle) and installed with
# QEMU like upstream's prebuilt copies.
blobs=$(sed -n "/^blobs = \[/,/^\]/s/^ *'\([^']*\)',.*/\1/p" "$src/pc-bios/meson.build")
[ -n "$blobs" ] || die "no blob list in $src/pc-bios/meson.build"
for dir in "${firmware_dirs[@]}"; do
    for f in "$dir"/*; do
        name=${f##*/}
        grep -qxF "$name" <<<"$blobs" || continue
        dst=$src/pc-bios/$name
        if [ -L "$dst" ]; then
            [ "$(readlink "$dst")" = "$f" ] && continue
        elif [ -e "$dst" ]; then
            continue        # a prebuilt blob in the tarball wins
        fi
        ln -sfn "$f" "$dst"
    done
done

# Drop links whose overlay file is gone.
find "$src" -type l -lname "$top/*" ! -exec test -e {} \; -print |
    while read -r l; do
        log "removing stale link ${l#"$src"/}"
        rm -f "$l"
    done
exit 0
