#!/usr/bin/env bash
# Install what building and testing devvm needs on a Debian 12 machine.
# meson >= 1.5 and python3-pycotap come from bookworm-backports, enabled
# with the archive URI of this machine's own apt sources.
#
#   install-deps.sh            install if anything is missing
#   install-deps.sh --check    only report what is missing (exit 1 if any)
#
# SPDX-License-Identifier: GPL-2.0-or-later

set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/apt-sources.sh"

# Packages from the release itself.
pkgs=(
    build-essential gcc-multilib pkg-config ninja-build python3 python3-venv
    libglib2.0-dev libpixman-1-dev libslirp-dev zlib1g-dev libfdt-dev
    libjson-glib-dev            # devvm-coordinator's control protocol
    flex bison device-tree-compiler
    seabios ipxe-qemu           # VGA BIOSes, iPXE (bios*.bin are built)
    curl xz-utils patch ccache
    xorriso swtpm swtpm-tools   # cdrom-test, tpm-*-swtpm-test
    clang llvm libclang-rt-14-dev
    libjson-c-dev libcmocka-dev # libvfio-user (vfio-user interop test)
    busybox-static cpio         # initramfs of the Linux guest test
    pciutils                    # lspci -vv in the devvm-crypto guest
    gnuplot-nox                 # make bench's plots
)
# Packages taken from bookworm-backports.
bpo_pkgs=(meson python3-pycotap)
MESON_MIN=1.5.0

check_only=false
case "${1:-}" in
--check) check_only=true ;;
"") ;;
*) echo "install-deps: unknown option '$1'" >&2; exit 2 ;;
esac

missing=()
for p in "${pkgs[@]}" "${bpo_pkgs[@]}"; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null |
        grep -q '^install ok installed$' || missing+=("$p")
done
meson_ok()
{
    local v
    v=$(/usr/bin/meson --version 2>/dev/null) || return 1
    dpkg --compare-versions "$v" ge "$MESON_MIN"
}
meson_ok || missing+=("meson>=$MESON_MIN")

if [ ${#missing[@]} -eq 0 ]; then
    echo "install-deps: everything is installed"
    exit 0
fi
if $check_only; then
    echo "install-deps: missing: ${missing[*]}"
    exit 1
fi
if [ "$(id -u)" != 0 ]; then
    echo "install-deps: missing ${missing[*]}; run this script as root" >&2
    exit 1
fi

codename=$(devvm_codename)
uri=$(devvm_require_debian_uri)
uri=${uri%/}
devvm_write_apt_entry "$DEVVM_APT_LIST_DIR/devvm-backports.sources" deb \
    "$uri" "$codename-backports" >/dev/null

export DEBIAN_FRONTEND=noninteractive
echo "install-deps: installing ${missing[*]}"
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
apt-get install -y -qq --no-install-recommends -t "$codename-backports" \
    "${bpo_pkgs[@]}" >/dev/null
meson_ok || { echo "install-deps: meson >= $MESON_MIN not available" >&2; exit 1; }
echo "install-deps: done (meson $(/usr/bin/meson --version))"
