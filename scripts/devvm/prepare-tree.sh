#!/usr/bin/env bash
# Lay devvm over the pinned QEMU base:
#
#   prepare-tree.sh TARBALL SRCDIR SEABIOS_TARBALL SEABIOS_DIR
#
# 1. Unpack TARBALL into SRCDIR (outside version control) unless SRCDIR
#    already holds exactly that base with exactly the current patch series.
# 2. Apply subprojects/packagefiles/qemu/series in order.
# 3. Link every file of the overlay (this repository's files at QEMU paths)
#    into SRCDIR, so that editing it in the repository is all the next
#    build needs.  Links to files that left the overlay are removed.
# 4. Build SeaBIOS from SEABIOS_TARBALL with the base's roms/
#    configurations into SEABIOS_DIR (build-seabios.sh; only when its
#    inputs changed).
# 5. Link the firmware into pc-bios/ (the +ds tarball has none): those
#    SeaBIOS images, then the VGA BIOSes of Debian's seabios and the iPXE
#    ROMs of Debian's ipxe-qemu.
#
# Idempotent, and quick when nothing changed: "make" runs it every time.
#
# SPDX-License-Identifier: GPL-2.0-or-later

set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../.." && pwd)
[ $# -eq 4 ] ||
    { echo "usage: prepare-tree.sh TARBALL SRCDIR SEABIOS_TARBALL SEABIOS_DIR" >&2; exit 2; }
tarball=$1 src=$2 seabios_tarball=$3 seabios_dir=$4
mkdir -p "$seabios_dir"
seabios_dir=$(cd "$seabios_dir" && pwd)     # the links need it absolute
patchdir=$top/subprojects/packagefiles/qemu

# Top-level directories of the overlay.  Everything else in the repository
# (scripts/devvm, subprojects/libdevvm, tools/devvm, ...) is built by the
# repository's own meson.build.
overlay_dirs=(accel contrib/devvm docs hw include pc-bios qapi subprojects/libdevvm
              tests/qtest)

# Where the firmware QEMU loads comes from; the first directory that has
# a file wins: SeaBIOS built here, then Debian's seabios (the VGA BIOSes)
# and ipxe-qemu.
firmware_dirs=("$seabios_dir" /usr/share/seabios /usr/lib/ipxe/qemu)

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

# SeaBIOS as QEMU's roms/ builds it (the expected ACPI tables of
# bios-tables-test were made with those images).
"$here/build-seabios.sh" "$seabios_tarball" "$src/roms" "$seabios_dir"

# Firmware: the +ds tarball has none.  Link the blobs upstream's
# pc-bios/meson.build names, each from the first of firmware_dirs that has
# it, so they are found from the build tree (qemu-bundle) and installed
# with QEMU like upstream's prebuilt copies.
blobs=$(sed -n "/^blobs = \[/,/^\]/s/^ *'\([^']*\)',.*/\1/p" "$src/pc-bios/meson.build")
[ -n "$blobs" ] || die "no blob list in $src/pc-bios/meson.build"
declare -A linked=()
for dir in "${firmware_dirs[@]}"; do
    for f in "$dir"/*; do
        name=${f##*/}
        [ -f "$f" ] && [ -z "${linked[$name]:-}" ] || continue
        grep -qxF "$name" <<<"$blobs" || continue
        linked[$name]=1
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
