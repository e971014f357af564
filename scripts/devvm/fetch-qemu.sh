#!/usr/bin/env bash
# Fetch the pinned upstream QEMU tarball (subprojects/qemu-base.pin) into a
# cache, verify its size and sha256, and print its path on stdout.
#
#   fetch-qemu.sh [--qemu-tarball=PATH] [--cache-dir=DIR] [--pin=FILE]
#                 [--offline]
#
# Order of sources: --qemu-tarball, the cache, "apt-get source" through a
# deb-src entry for sid, then the pool path under the same archive URI.
# The archive URI always comes from this machine's apt sources.  With
# --offline nothing is downloaded.
#
# SPDX-License-Identifier: GPL-2.0-or-later

set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../.." && pwd)
. "$here/apt-sources.sh"

pin=${DEVVM_QEMU_PIN:-$top/subprojects/qemu-base.pin}
cache=${DEVVM_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/devvm}
tarball=
offline=false

usage()
{
    sed -n '2,12s/^# \{0,1\}//p' "$0"
}

for arg in "$@"; do
    case "$arg" in
    --qemu-tarball=*) tarball=${arg#*=} ;;
    --cache-dir=*) cache=${arg#*=} ;;
    --pin=*) pin=${arg#*=} ;;
    --offline) offline=true ;;
    -h|--help) usage; exit 0 ;;
    *) echo "fetch-qemu: unknown option '$arg'" >&2; usage >&2; exit 2 ;;
    esac
done

log() { echo "fetch-qemu: $*" >&2; }
die() { log "error: $*"; exit 1; }

[ -r "$pin" ] || die "pin file '$pin' not readable"
. "$pin"
for v in QEMU_BASE_DEBIAN_VERSION QEMU_BASE_SOURCE_PACKAGE QEMU_BASE_FILE \
         QEMU_BASE_POOL_PATH QEMU_BASE_SIZE QEMU_BASE_SHA256; do
    [ -n "${!v:-}" ] || die "pin file '$pin' does not set $v"
done

# verify FILE: size and sha256 against the pin; prints the reason on failure
verify()
{
    local f=$1 size sum
    size=$(stat -c %s "$f")
    if [ "$size" != "$QEMU_BASE_SIZE" ]; then
        log "error: $f is $size bytes, the pin says $QEMU_BASE_SIZE"
        return 1
    fi
    sum=$(sha256sum "$f" | cut -d' ' -f1)
    if [ "$sum" != "$QEMU_BASE_SHA256" ]; then
        log "error: sha256 mismatch for $f"
        log "  expected $QEMU_BASE_SHA256 (from $pin)"
        log "  got      $sum"
        return 1
    fi
}

cached=$cache/$QEMU_BASE_FILE

# Move a verified candidate into the cache; reject anything else.
accept()
{
    local f=$1 how=$2
    if ! verify "$f"; then
        die "refusing $QEMU_BASE_FILE from $how"
    fi
    mkdir -p "$cache"
    if [ "$f" != "$cached" ]; then
        cp -f "$f" "$cached.tmp"
        mv -f "$cached.tmp" "$cached"
    fi
    log "verified $QEMU_BASE_FILE ($how)"
    echo "$cached"
    exit 0
}

if [ -n "$tarball" ]; then
    [ -r "$tarball" ] || die "--qemu-tarball '$tarball' not readable"
    accept "$tarball" "--qemu-tarball"
fi

if [ -e "$cached" ]; then
    if verify "$cached"; then
        log "using cached $cached"
        echo "$cached"
        exit 0
    fi
    log "removing bad cached copy $cached"
    rm -f "$cached"
fi

if $offline; then
    die "$QEMU_BASE_FILE is not in $cache and --offline forbids a download;" \
        "pass --qemu-tarball=PATH"
fi
uri=$(devvm_require_debian_uri) || exit 1
work=$(mktemp -d)
chmod 0755 "$work"      # apt's _apt user writes the download here
trap 'rm -rf "$work"' EXIT

# 1. apt-get source through a deb-src entry for sid (root only: it needs
#    to write an apt entry and update the index).
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    src=$DEVVM_APT_LIST_DIR/devvm-sid-src.sources
    devvm_write_apt_entry "$src" deb-src "$uri" sid >/dev/null
    log "apt-get source ${QEMU_BASE_SOURCE_PACKAGE}=$QEMU_BASE_DEBIAN_VERSION"
    if apt-get update -qq -o Dir::Etc::sourcelist="$src" \
           -o Dir::Etc::sourceparts=- -o APT::Get::List-Cleanup=0 >&2 &&
       (cd "$work" && apt-get source -qq --download-only \
           "${QEMU_BASE_SOURCE_PACKAGE}=$QEMU_BASE_DEBIAN_VERSION" >&2) &&
       [ -e "$work/$QEMU_BASE_FILE" ]; then
        accept "$work/$QEMU_BASE_FILE" "apt-get source"
    fi
    log "apt-get source did not provide $QEMU_BASE_FILE; trying the pool"
fi

# 2. The pool path under the same archive URI.
url=$uri/$QEMU_BASE_POOL_PATH/$QEMU_BASE_FILE
log "downloading the pool file"
if command -v curl >/dev/null; then
    curl -fsSL --retry 3 -o "$work/$QEMU_BASE_FILE" "$url" ||
        die "download of $url failed"
elif command -v wget >/dev/null; then
    wget -q -O "$work/$QEMU_BASE_FILE" "$url" || die "download of $url failed"
else
    die "neither curl nor wget is installed"
fi
accept "$work/$QEMU_BASE_FILE" "the archive pool"
