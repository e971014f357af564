#!/usr/bin/env bash
# Fetch the source tarball a pin file names (subprojects/*.pin: the QEMU
# base, SeaBIOS) into a cache, verify its size and sha256, and print its
# path on stdout.
#
#   fetch-source.sh --pin=FILE [--tarball=PATH] [--cache-dir=DIR] [--offline]
#
# Order of sources: --tarball, the cache, "apt-get source" through a
# deb-src entry for sid, then the pool path under the same archive URI.
# The archive URI always comes from this machine's apt sources.  With
# --offline nothing is downloaded.
#
# A pin is shell that sets SOURCE_PACKAGE, DEBIAN_VERSION (of Debian's
# source package), FILE, POOL_PATH (under the archive URI), SIZE and
# SHA256; other variables in it are for whoever uses the tarball.
#
# SPDX-License-Identifier: GPL-2.0-or-later

set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/apt-sources.sh"

pin=
cache=${DEVVM_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/devvm}
tarball=
offline=false

usage()
{
    sed -n '2,16s/^# \{0,1\}//p' "$0"
}

for arg in "$@"; do
    case "$arg" in
    --tarball=*) tarball=${arg#*=} ;;
    --cache-dir=*) cache=${arg#*=} ;;
    --pin=*) pin=${arg#*=} ;;
    --offline) offline=true ;;
    -h|--help) usage; exit 0 ;;
    *) echo "fetch-source: unknown option '$arg'" >&2; usage >&2; exit 2 ;;
    esac
done

log() { echo "fetch-source: $*" >&2; }
die() { log "error: $*"; exit 1; }

[ -n "$pin" ] || { usage >&2; die "--pin=FILE is required"; }
[ -r "$pin" ] || die "pin file '$pin' not readable"
pin_keys=(SOURCE_PACKAGE DEBIAN_VERSION FILE POOL_PATH SIZE SHA256)
unset "${pin_keys[@]}"
. "$pin"
for v in "${pin_keys[@]}"; do
    [ -n "${!v:-}" ] || die "pin file '$pin' does not set $v"
done

# verify FILE: size and sha256 against the pin; prints the reason on failure
verify()
{
    local f=$1 size sum
    size=$(stat -c %s "$f")
    if [ "$size" != "$SIZE" ]; then
        log "error: $f is $size bytes, the pin says $SIZE"
        return 1
    fi
    sum=$(sha256sum "$f" | cut -d' ' -f1)
    if [ "$sum" != "$SHA256" ]; then
        log "error: sha256 mismatch for $f"
        log "  expected $SHA256 (from $pin)"
        log "  got      $sum"
        return 1
    fi
}

cached=$cache/$FILE

# Move a verified candidate into the cache; reject anything else.
accept()
{
    local f=$1 how=$2
    if ! verify "$f"; then
        die "refusing $FILE from $how"
    fi
    mkdir -p "$cache"
    if [ "$f" != "$cached" ]; then
        cp -f "$f" "$cached.tmp"
        mv -f "$cached.tmp" "$cached"
    fi
    log "verified $FILE ($how)"
    echo "$cached"
    exit 0
}

if [ -n "$tarball" ]; then
    [ -r "$tarball" ] || die "--tarball '$tarball' not readable"
    accept "$tarball" "--tarball"
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
    die "$FILE is not in $cache and --offline forbids a download;" \
        "pass --tarball=PATH"
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
    log "apt-get source ${SOURCE_PACKAGE}=$DEBIAN_VERSION"
    if apt-get update -qq -o Dir::Etc::sourcelist="$src" \
           -o Dir::Etc::sourceparts=- -o APT::Get::List-Cleanup=0 >&2 &&
       (cd "$work" && apt-get source -qq --download-only \
           "${SOURCE_PACKAGE}=$DEBIAN_VERSION" >&2) &&
       [ -e "$work/$FILE" ]; then
        accept "$work/$FILE" "apt-get source"
    fi
    log "apt-get source did not provide $FILE; trying the pool"
fi

# 2. The pool path under the same archive URI.
url=$uri/$POOL_PATH/$FILE
log "downloading the pool file"
if command -v curl >/dev/null; then
    curl -fsSL --retry 3 -o "$work/$FILE" "$url" ||
        die "download of $url failed"
elif command -v wget >/dev/null; then
    wget -q -O "$work/$FILE" "$url" || die "download of $url failed"
else
    die "neither curl nor wget is installed"
fi
accept "$work/$FILE" "the archive pool"
