#!/usr/bin/env bash
# Build QEMU's SeaBIOS images from the pinned SeaBIOS source
# (subprojects/seabios.pin) the way upstream's roms/Makefile does for its
# prebuilt copies:
#
#   build-seabios.sh TARBALL ROMSDIR OUTDIR
#
# ROMSDIR is the base's roms/: its Makefile's "bios" target names each
# image and the configuration it is built with (config.seabios-128k for
# bios.bin, config.seabios-256k for bios-256k.bin, config.seabios-microvm
# for bios-microvm.bin in QEMU 10.2).  The images are written to OUTDIR;
# the unpacked source and the build directories stay below it.  A stamp
# (the tarball's and every configuration's sha256, the version string and
# this script's sha256) makes a second run a no-op until one of them
# changes.
#
# SPDX-License-Identifier: GPL-2.0-or-later

set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../.." && pwd)
pin=$top/subprojects/seabios.pin

log() { echo "build-seabios: $*" >&2; }
die() { log "error: $*"; exit 1; }

[ $# -eq 3 ] || { echo "usage: build-seabios.sh TARBALL ROMSDIR OUTDIR" >&2; exit 2; }
tarball=$1 roms=$2 out=$3

[ -r "$tarball" ] || die "'$tarball' not readable"
[ -r "$roms/Makefile" ] || die "no $roms/Makefile"
. "$pin"
version=$VERSION$SEABIOS_EXTRAVERSION
[ ${#version} -eq ${#SEABIOS_QEMU_PREBUILT_VERSION} ] ||
    die "version '$version' has ${#version} characters, QEMU's" \
        "'$SEABIOS_QEMU_PREBUILT_VERSION' ${#SEABIOS_QEMU_PREBUILT_VERSION}" \
        "(see $pin)"

# "CONFIG IMAGE" pairs from upstream's "bios" target, e.g.
#   cp seabios/builds/seabios-256k/bios.bin ../pc-bios/bios-256k.bin
mapfile -t images < <(sed -n '/^bios:/,/^$/s|^\t*cp seabios/builds/\([^/]*\)/bios\.bin \.\./pc-bios/\([^ ]*\)$|\1 \2|p' \
                          "$roms/Makefile")
[ ${#images[@]} -gt 0 ] || die "no images in the bios target of $roms/Makefile"

stamp_id()
{
    local pair
    echo "source $(sha256sum <"$tarball" | cut -d' ' -f1)"
    echo "version $version"
    echo "recipe $(sha256sum <"$0" | cut -d' ' -f1)"
    for pair in "${images[@]}"; do
        [ -r "$roms/config.${pair% *}" ] || die "no $roms/config.${pair% *}"
        echo "$pair $(sha256sum <"$roms/config.${pair% *}" | cut -d' ' -f1)"
    done
}

want=$(stamp_id)
stamp=$out/.devvm-stamp
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    missing=
    for pair in "${images[@]}"; do
        [ -f "$out/${pair#* }" ] || missing=1
    done
    [ -n "$missing" ] || exit 0
fi

start=$(date +%s)
log "building SeaBIOS $version: ${images[*]#* }"
# The images of the last build stay until each new one replaces its own
# (a QEMU running meanwhile still finds them); without the stamp a build
# that fails here is tried again by the next run.
rm -rf "$stamp" "$out/src" "$out/builds"
mkdir -p "$out/src" "$out/builds"
tar -xzf "$tarball" -C "$out/src" --strip-components=1

# A clean environment for SeaBIOS's make: not the calling make's flags
# (its jobserver is not ours), python3 (Debian has no "python").
unset MAKEFLAGS MFLAGS MAKELEVEL

# build_one CONFIG IMAGE: build one image in builds/CONFIG (log: build.log)
build_one()
{
    local config=$1 image=$2 b=$out/builds/$1
    local vars=(KCONFIG_CONFIG="$b/.config" OUT="$b/" PYTHON=python3
                EXTRAVERSION="$SEABIOS_EXTRAVERSION")
    mkdir -p "$b"
    cp "$roms/config.$config" "$b/.config"
    make -C "$out/src" "${vars[@]}" oldnoconfig && make -C "$out/src" "${vars[@]}" all ||
        return 1
    # buildversion.py appends the date and host name when it cannot tell
    # the compiler's version: the string would differ in length.
    grep -qxF "#define BUILD_VERSION \"$version\"" "$b/autoversion.h" || {
        echo "version is not '$version': $(grep BUILD_VERSION "$b/autoversion.h")"
        return 1
    }
    cp "$b/bios.bin" "$out/$image.tmp" && mv -f "$out/$image.tmp" "$out/$image"
}

# SeaBIOS compiles each of its parts as one unit, so the images are built
# side by side rather than each with -j.
pids=()
for pair in "${images[@]}"; do
    mkdir -p "$out/builds/${pair% *}"
    build_one ${pair} >"$out/builds/${pair% *}/build.log" 2>&1 &
    pids+=($!)
done
failed=
for i in "${!images[@]}"; do
    wait "${pids[$i]}" && continue
    config=${images[$i]% *}
    tail -n 20 "$out/builds/$config/build.log" >&2
    log "error: $config failed; see $out/builds/$config/build.log"
    failed=1
done
[ -z "$failed" ] || exit 1
echo "$want" >"$stamp"
log "done in $(( $(date +%s) - start )) s"
