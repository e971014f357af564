#!/usr/bin/env bash
# TAP test of scripts/devvm/fetch-qemu.sh: a tarball whose hash or size
# differs from the pin is refused, one that matches is accepted and cached,
# and a bad cached copy is not used.  Uses a throw-away pin and tarball, so
# it runs offline and never touches the real cache.
#
# SPDX-License-Identifier: GPL-2.0-or-later

set -u

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
fetch=$top/scripts/devvm/fetch-qemu.sh
. "$(dirname "${BASH_SOURCE[0]}")/tap.sh"

echo "1..7"

head -c 4096 /dev/urandom >"$tmp/base.tar.xz"
size=$(stat -c %s "$tmp/base.tar.xz")
sum=$(sha256sum "$tmp/base.tar.xz" | cut -d' ' -f1)
wrong=$(printf '%s' "$sum" | tr '0-9a-f' '1-9a-f0')

write_pin()
{
    cat >"$tmp/pin" <<EOF
QEMU_BASE_DEBIAN_VERSION=1:0.0+ds-1
QEMU_BASE_SOURCE_PACKAGE=qemu
QEMU_BASE_FILE=qemu_0.0+ds.orig.tar.xz
QEMU_BASE_POOL_PATH=pool/main/q/qemu
QEMU_BASE_SIZE=$1
QEMU_BASE_SHA256=$2
EOF
}

run()
{
    "$fetch" --pin="$tmp/pin" --cache-dir="$tmp/cache" "$@" \
        >"$tmp/out" 2>"$tmp/err"
}

# 1-2: wrong hash refused, with a message naming both hashes; nothing cached
write_pin "$size" "$wrong"
run --qemu-tarball="$tmp/base.tar.xz"
rc=$?
[ $rc -ne 0 ] && grep -q "sha256 mismatch" "$tmp/err" &&
    grep -q "expected $wrong" "$tmp/err" && grep -q "got      $sum" "$tmp/err"
ok $? "a wrong sha256 is refused with both hashes named (exit $rc)"
[ ! -e "$tmp/cache/qemu_0.0+ds.orig.tar.xz" ]
ok $? "a refused tarball is not cached"

# 3: wrong size refused
write_pin $((size + 1)) "$sum"
run --qemu-tarball="$tmp/base.tar.xz"
rc=$?
[ $rc -ne 0 ] && grep -q "the pin says $((size + 1))" "$tmp/err"
ok $? "a wrong size is refused (exit $rc)"

# 4-5: the right tarball is accepted and cached; its path is printed
write_pin "$size" "$sum"
run --qemu-tarball="$tmp/base.tar.xz"
rc=$?
[ $rc -eq 0 ] && [ "$(cat "$tmp/out")" = "$tmp/cache/qemu_0.0+ds.orig.tar.xz" ]
ok $? "a matching tarball is accepted (exit $rc)"
cmp -s "$tmp/base.tar.xz" "$tmp/cache/qemu_0.0+ds.orig.tar.xz"
ok $? "the accepted tarball is cached"

# 6: the cache is used without fetching
run --offline
rc=$?
[ $rc -eq 0 ] && grep -q "using cached" "$tmp/err"
ok $? "a second run uses the cache (exit $rc)"

# 7: a corrupted cached copy is removed, not used (byte 100 complemented,
# so it always changes: the tarball is random)
byte=$(od -An -tu1 -j100 -N1 "$tmp/cache/qemu_0.0+ds.orig.tar.xz")
printf "\\$(printf '%03o' $((255 - byte)))" |
    dd of="$tmp/cache/qemu_0.0+ds.orig.tar.xz" bs=1 seek=100 conv=notrunc \
       2>/dev/null
run --offline
rc=$?
[ $rc -ne 0 ] && grep -q "removing bad cached copy" "$tmp/err" &&
    [ ! -e "$tmp/cache/qemu_0.0+ds.orig.tar.xz" ]
ok $? "a corrupted cache entry is refused (exit $rc)"

tap_exit
