#!/usr/bin/env bash
# TAP test of scripts/devvm/fetch-source.sh: a tarball whose hash or size
# differs from the pin is refused, one that matches is accepted and cached,
# and a bad cached copy is not used.  Uses a throw-away pin and tarball, so
# it runs offline and never touches the real cache.  Then the project's
# own pins (subprojects/*.pin) must each name everything the fetcher needs.
#
# SPDX-License-Identifier: GPL-2.0-or-later

set -u

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
fetch=$top/scripts/devvm/fetch-source.sh
. "$(dirname "${BASH_SOURCE[0]}")/tap.sh"

pins=("$top"/subprojects/*.pin)
echo "1..$((7 + ${#pins[@]}))"

head -c 4096 /dev/urandom >"$tmp/base.tar.xz"
size=$(stat -c %s "$tmp/base.tar.xz")
sum=$(sha256sum "$tmp/base.tar.xz" | cut -d' ' -f1)
wrong=$(printf '%s' "$sum" | tr '0-9a-f' '1-9a-f0')

write_pin()
{
    cat >"$tmp/pin" <<EOF
DEBIAN_VERSION=1:0.0+ds-1
SOURCE_PACKAGE=qemu
FILE=qemu_0.0+ds.orig.tar.xz
POOL_PATH=pool/main/q/qemu
SIZE=$1
SHA256=$2
EOF
}

run()
{
    "$fetch" --pin="$tmp/pin" --cache-dir="$tmp/cache" "$@" \
        >"$tmp/out" 2>"$tmp/err"
}

# 1-2: wrong hash refused, with a message naming both hashes; nothing cached
write_pin "$size" "$wrong"
run --tarball="$tmp/base.tar.xz"
rc=$?
[ $rc -ne 0 ] && grep -q "sha256 mismatch" "$tmp/err" &&
    grep -q "expected $wrong" "$tmp/err" && grep -q "got      $sum" "$tmp/err"
ok $? "a wrong sha256 is refused with both hashes named (exit $rc)"
[ ! -e "$tmp/cache/qemu_0.0+ds.orig.tar.xz" ]
ok $? "a refused tarball is not cached"

# 3: wrong size refused
write_pin $((size + 1)) "$sum"
run --tarball="$tmp/base.tar.xz"
rc=$?
[ $rc -ne 0 ] && grep -q "the pin says $((size + 1))" "$tmp/err"
ok $? "a wrong size is refused (exit $rc)"

# 4-5: the right tarball is accepted and cached; its path is printed
write_pin "$size" "$sum"
run --tarball="$tmp/base.tar.xz"
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

# 8...: each real pin is complete (offline with an empty cache the fetcher
# gets as far as the download it may not make)
for p in "${pins[@]}"; do
    "$fetch" --pin="$p" --cache-dir="$tmp/empty" --offline \
        >"$tmp/out" 2>"$tmp/err"
    rc=$?
    [ $rc -ne 0 ] && grep -q "forbids a download" "$tmp/err"
    rc2=$?
    [ $rc2 -eq 0 ] || sed 's/^/#   /' "$tmp/err"
    ok $rc2 "subprojects/${p##*/} names every key the fetcher reads"
done

tap_exit
