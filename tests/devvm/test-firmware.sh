#!/usr/bin/env bash
# TAP test: the built qemu-system-x86_64 finds SeaBIOS, the iPXE and VGA
# ROMs and the x86 option ROMs with no -L, both from the build tree and
# after "meson install" into a scratch DESTDIR.  A PVH guest booted with
# -kernel (through pvh.bin) must print its marker and exit with 67, and
# the firmware must be the SeaBIOS built from subprojects/seabios.pin
# (its version on the debug console).
#
#   test-firmware.sh QEMU_BUILDDIR PVH_ELF
#
# SPDX-License-Identifier: GPL-2.0-or-later

set -u

qemu_build=${1:?usage: test-firmware.sh QEMU_BUILDDIR PVH_ELF}
elf=${2:?usage: test-firmware.sh QEMU_BUILDDIR PVH_ELF}
. "$(dirname "${BASH_SOURCE[0]}")/tap.sh"
. "$(dirname "${BASH_SOURCE[0]}")/../../subprojects/seabios.pin"
seabios="SeaBIOS (version $VERSION$SEABIOS_EXTRAVERSION)"

# boot QEMU MACHINE-ARGS...: boot the PVH guest, expect exit 67 + marker
# and the pinned SeaBIOS's banner on the debug console
boot()
{
    local qemu=$1 rc
    shift
    rm -f "$tmp/serial" "$tmp/firmware"
    timeout 120 "$qemu" "$@" -display none -accel tcg -no-reboot \
        -device isa-debug-exit,iobase=0xf4,iosize=0x04 \
        -serial "file:$tmp/serial" \
        -chardev "file,id=fw,path=$tmp/firmware" \
        -device isa-debugcon,iobase=0x402,chardev=fw \
        -kernel "$elf" </dev/null >"$tmp/out" 2>&1
    rc=$?
    if [ $rc -ne 67 ] || ! grep -q devvm-pvh-ok "$tmp/serial"; then
        echo "# exit $rc; QEMU said:"
        sed 's/^/#   /' "$tmp/out"
        return 1
    fi
    if ! grep -qxF "$seabios" "$tmp/firmware"; then
        echo "# not '$seabios'; the firmware said:"
        head -n 3 "$tmp/firmware" | sed 's/^/#   /'
        return 1
    fi
}

echo "1..8"

built=$qemu_build/qemu-system-x86_64
boot "$built" -M isapc -nodefaults
ok $? "build tree: -M isapc -nodefaults -kernel PVH (bios.bin, pvh.bin)"
boot "$built" -M pc -nodefaults
ok $? "build tree: -M pc -nodefaults -kernel PVH (bios-256k.bin, pvh.bin)"
boot "$built" -M microvm
ok $? "build tree: -M microvm -kernel PVH (bios-microvm.bin)"
boot "$built" -M pc -vga std -nic user,model=e1000
ok $? "build tree: -M pc with VGA and e1000 (vgabios-stdvga.bin, efi-e1000.rom)"
boot "$built" -M q35 -nodefaults -device virtio-net-pci,netdev=n0 \
    -netdev user,id=n0
ok $? "build tree: -M q35 with virtio-net (bios-256k.bin, efi-virtio.rom)"

prefix=$(python3 -c 'import json,sys
for o in json.load(open(sys.argv[1])):
    if o["name"] == "prefix": print(o["value"])' \
    "$qemu_build/meson-info/intro-buildoptions.json")
meson install -C "$qemu_build" --no-rebuild --quiet --destdir "$tmp/root" \
    >"$tmp/install.log" 2>&1
rc=$?
[ $rc -eq 0 ] || sed 's/^/#   /' "$tmp/install.log"
ok $rc "meson install into a scratch DESTDIR"

installed=$tmp/root$prefix/bin/qemu-system-x86_64
"$installed" -L help >"$tmp/dirs" 2>&1
while read -r d; do realpath -m "$d"; done <"$tmp/dirs" >"$tmp/realdirs"
grep -qxF "$tmp/root$prefix/share/qemu" "$tmp/realdirs" &&
    ! grep -q "$qemu_build" "$tmp/realdirs"
rc=$?
[ $rc -eq 0 ] || sed 's/^/#   /' "$tmp/dirs"
ok $rc "installed binary searches its own share/qemu, not the build tree"

boot "$installed" -M pc -vga std -nic user,model=e1000
ok $? "installed: -M pc with VGA and e1000, -kernel PVH"

tap_exit
