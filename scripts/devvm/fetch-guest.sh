#!/usr/bin/env bash
# Fetch and cache a Debian amd64 kernel for tests/devvm/test-linux-guest.sh
# and build the guest's initramfs: busybox-static, the kernel modules the
# guest check loads (and AF_ALG's), tests/devvm/linux-guest/init and
# devvm-guest-check (compiled here with "cc -static").
#
#   fetch-guest.sh [--output=DIR] [--cache-dir=DIR] [--package=PKG]
#                  [--deb=PATH] [--offline] [--init=FILE]
#                  [--program=SRC.c]... [--module-src=DIR]...
#                  [--host-program=PATH]...
#
# --init replaces the initramfs's /init; --program (repeatable) replaces
# devvm-guest-check with the static programs built from SRC.c (into /bin,
# named after the file, with SRC's directory and its parent on the
# include path); --module-src (repeatable) builds the out-of-tree kernel
# module in DIR (a Kbuild file) against the headers of the fetched kernel
# (Debian's linux-headers-VERSION, installed with apt when missing and
# this runs as root) and adds it under /lib/modules/VERSION/extra, where
# modprobe finds it; --host-program (repeatable) copies a program of this
# machine with the shared libraries it needs (by ldd) into /usr/bin.
# This is how a device's Linux driver, its test program and lspci get
# into the guest (contrib/devvm/crypto).
#
# The kernel package is the one Debian's linux-image-amd64 metapackage
# depends on, as this machine's apt sees it, unless --package (or
# $DEVVM_GUEST_KERNEL_PKG) names another or --deb gives a local .deb.  It
# is fetched with "apt-get download" into the cache, $DEVVM_CACHE_DIR/guest
# (default ~/.cache/devvm/guest), which keeps the .deb, vmlinuz, the
# modules and, when the kernel has a PVH entry point, vmlinux (the kernel
# decompressed, which QEMU boots much faster), and is reused while apt
# offers the same version.  When the archive cannot be reached a cached
# kernel is used.  With --output the initramfs is written to
# DIR/initrd.img.  Prints on stdout:
#   kernel=PATH  initrd=PATH (with --output)  package=PKG VERSION
# Exit status 77 when no kernel is cached and none can be fetched.
#
# SPDX-License-Identifier: GPL-2.0-or-later

set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../.." && pwd)
guest_src=$top/tests/devvm/linux-guest

cache=${DEVVM_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/devvm}/guest
pkg=${DEVVM_GUEST_KERNEL_PKG:-}
deb=
output=
offline=false
# What /init loads (dependencies are found in the modules themselves).
modules=(vfio vfio_iommu_type1 vfio-pci uio_pci_generic af_alg algif_hash)
init=$guest_src/init
programs=()
module_srcs=()
host_programs=()

usage()
{
    sed -n '2,/^# SPDX/{/^# SPDX/d;s/^# \{0,1\}//p}' "$0" | sed '$d'
}

for arg in "$@"; do
    case "$arg" in
    --output=*) output=${arg#*=} ;;
    --cache-dir=*) cache=${arg#*=}/guest ;;
    --package=*) pkg=${arg#*=} ;;
    --deb=*) deb=${arg#*=} ;;
    --offline) offline=true ;;
    --init=*) init=${arg#*=} ;;
    --program=*) programs+=("${arg#*=}") ;;
    --module-src=*) module_srcs+=("${arg#*=}") ;;
    --host-program=*) host_programs+=("${arg#*=}") ;;
    -h|--help) usage; exit 0 ;;
    *) echo "fetch-guest: unknown option '$arg'" >&2; usage >&2; exit 2 ;;
    esac
done

log() { echo "fetch-guest: $*" >&2; }
die() { log "error: $*"; exit 1; }
unavailable() { log "$*"; exit 77; }

[ "$(uname -m)" = x86_64 ] ||
    die "the guest check is compiled with the host's cc: needs an x86_64 host"
mkdir -p "$cache"
# one run at a time per cache; scratch directories go when we do
exec 9>"$cache/.lock"
flock -w 900 9 || die "$cache is locked by another fetch-guest.sh"
scratch=()
trap 'rm -rf "${scratch[@]}"' EXIT
# what a complete cache entry holds (bump "layout" when that changes)
marker="layout=2 modules=${modules[*]}"

# The candidate version apt offers for package $1, or nothing.
candidate()
{
    apt-cache policy "$1" 2>/dev/null |
        awk '$1 == "Candidate:" && $2 != "(none)" { print $2 }'
}

# The kernel package linux-image-amd64 depends on, or nothing.
metapackage_dep()
{
    apt-cache depends linux-image-amd64 2>/dev/null |
        awk '$1 ~ /Depends:$/ && $2 ~ /^linux-image-/ { print $2; exit }'
}

# The cached .deb of package $1 version $2, if any.
cached_deb()
{
    local f
    for f in "$cache"/"$1"_*.deb; do
        [ -e "$f" ] || continue
        if [ "$(dpkg-deb -f "$f" Version)" = "$2" ]; then
            echo "$f"
            return 0
        fi
    done
    return 1
}

# Download package $1 version $2 into the cache; prints the .deb's path.
download()
{
    local work f
    local -a opts=()
    work=$(mktemp -d "$cache/.download.XXXXXX")
    scratch+=("$work")
    # as root apt would fetch as _apt, which cannot write to the cache
    [ "$(id -u)" != 0 ] || opts=(-o APT::Sandbox::User=root)
    if ! (cd "$work" && apt-get download -q "${opts[@]}" "$1=$2" >&2); then
        rm -rf "$work"
        return 1
    fi
    for f in "$work"/*.deb; do
        mv -f "$f" "$cache/"
        echo "$cache/${f##*/}"
    done
    rm -rf "$work"
}

# Does directory $1 hold a complete extraction for the current module list?
complete()
{
    [ -r "$1/.complete" ] && [ "$(cat "$1/.complete")" = "$marker" ]
}

# tar -x members matching the patterns $3... of .deb $1 into directory $2.
deb_extract()
{
    local d=$1 to=$2
    shift 2
    dpkg-deb --fsys-tarfile "$d" | tar -x -C "$to" --wildcards "$@"
}

# Module names a .ko depends on (its .modinfo "depends=").
ko_depends()
{
    objcopy -O binary -j .modinfo "$1" /dev/stdout 2>/dev/null |
        tr '\0' '\n' | sed -n 's/^depends=//p' | tr ',' '\n' | sed '/^$/d'
}

# Decompress the kernel inside bzImage $1 into ELF $2 if it has a PVH entry
# point: QEMU boots that directly with -kernel, which under TCG saves the
# seconds the guest would spend decompressing itself.
pvh_vmlinux()
{
    local in=$1 out=$2 entry tool magic off
    for entry in 'xz:\xfd7zXZ\x00' 'zstd:\x28\xb5\x2f\xfd' \
                 'gzip:\x1f\x8b\x08'; do
        tool=${entry%%:*}
        magic=${entry#*:}
        command -v "$tool" >/dev/null || continue
        off=$(LC_ALL=C grep -m1 -obUaP "$magic" "$in" |
              LC_ALL=C sed -n '1s/:.*//p')
        [ -n "$off" ] || continue
        # the payload is followed by more of bzImage: ignore the complaint
        tail -c +$((off + 1)) "$in" | "$tool" -dc >"$out" 2>/dev/null || true
        # XEN_ELFNOTE_PHYS32_ENTRY (18)
        if readelf -n "$out" 2>/dev/null |
               grep -qE 'Xen.*(\(0x0+12\)|PHYS32_ENTRY)'; then
            return 0
        fi
    done
    rm -f "$out"
    return 1
}

# Extract vmlinuz and the modules (with what they depend on) from .deb $1
# into directory $2, and vmlinux where pvh_vmlinux can make it.
extract()
{
    local d=$1 dir=$2 work kver order name path
    local -a want paths
    local -A seen=()

    log "extracting vmlinuz and modules from ${d##*/}"
    work=$(mktemp -d "$cache/.extract.XXXXXX")
    scratch+=("$work")
    deb_extract "$d" "$work" './boot/vmlinuz-*' './boot/config-*' \
        './lib/modules/*/modules.order' './lib/modules/*/modules.builtin'
    kver=$(cd "$work/lib/modules" && ls)
    if [ -z "$kver" ] || [ "$(echo "$kver" | wc -l)" != 1 ]; then
        die "${d##*/} does not hold exactly one kernel"
    fi
    order=$work/lib/modules/$kver/modules.order

    want=("${modules[@]}")
    while [ ${#want[@]} -gt 0 ]; do
        paths=()
        for name in "${want[@]}"; do
            name=${name//-/_}
            [ -z "${seen[$name]:-}" ] || continue
            seen[$name]=1
            path=$(awk -v n="$name" '{
                    f = $0; sub(/.*\//, "", f); sub(/\.ko(\..*)?$/, "", f)
                    gsub(/-/, "_", f)
                    if (f == n) { print; exit }
                }' "$order")
            if [ -z "$path" ]; then
                # built in: nothing to load
                grep -q "/${name//_/[-_]}\.ko\$" \
                    "$work/lib/modules/$kver/modules.builtin" ||
                    die "module $name is not in ${d##*/}"
                continue
            fi
            paths+=("./lib/modules/$kver/$path")
        done
        [ ${#paths[@]} -gt 0 ] || break
        deb_extract "$d" "$work" "${paths[@]}"
        want=()
        for path in "${paths[@]}"; do
            path=$work/${path#./}
            case "$path" in
            *.ko.xz) xz -d "$path"; path=${path%.xz} ;;
            *.ko.zst) zstd -q --rm -d "$path"; path=${path%.zst} ;;
            *.ko.gz) gzip -d "$path"; path=${path%.gz} ;;
            esac
            mapfile -t -O ${#want[@]} want < <(ko_depends "$path")
        done
    done
    busybox depmod -b "$work" "$kver"

    rm -rf "$dir"
    mkdir -p "$dir"
    mv "$work/boot/vmlinuz-$kver" "$dir/vmlinuz"
    pvh_vmlinux "$dir/vmlinuz" "$dir/vmlinux" ||
        log "no PVH entry in the kernel: booting bzImage (slower)"
    mv "$work"/boot/config-* "$dir/config" 2>/dev/null || true
    mkdir -p "$dir/lib"
    mv "$work/lib/modules" "$dir/lib/"
    rm -f "$dir/lib/modules/$kver/modules.builtin" \
          "$dir/lib/modules/$kver/modules.order"
    echo "$kver" >"$dir/kver"
    echo "$marker" >"$dir/.complete"
    rm -rf "$work"
}

# Drop every cached kernel but directory $1 and .deb $2.
prune()
{
    local f
    for f in "$cache"/linux-image-*; do
        [ -e "$f" ] || continue
        [ "$f" = "$1" ] || [ "$f" = "$2" ] || rm -rf "$f"
    done
}

command -v busybox >/dev/null ||
    die "busybox is not installed (Debian package busybox-static)"
busybox=$(command -v busybox)
if readelf -l "$busybox" 2>/dev/null | grep -q 'program interpreter'; then
    die "$busybox is dynamically linked: install busybox-static"
fi
command -v cpio >/dev/null || die "cpio is not installed"
command -v objcopy >/dev/null || die "objcopy (binutils) is not installed"

dir=
version=
if [ -n "$deb" ]; then
    [ -r "$deb" ] || die "--deb '$deb' not readable"
    pkg=$(dpkg-deb -f "$deb" Package)
    version=$(dpkg-deb -f "$deb" Version)
    dir=$cache/${pkg}_${version//:/%3a}
    complete "$dir" || extract "$deb" "$dir"
else
    if [ -z "$pkg" ]; then
        pkg=$(metapackage_dep) || true
    fi
    if [ -z "$pkg" ] && [ "$(id -u)" = 0 ] && ! $offline; then
        log "apt knows no linux-image-amd64; running apt-get update"
        apt-get update -qq >&2 || true
        pkg=$(metapackage_dep) || true
    fi
    if [ -n "$pkg" ]; then
        version=$(candidate "$pkg") || true
    fi
    if [ -n "$pkg" ] && [ -n "$version" ]; then
        dir=$cache/${pkg}_${version//:/%3a}
        if ! complete "$dir"; then
            d=$(cached_deb "$pkg" "$version") || d=
            if [ -z "$d" ] && ! $offline; then
                log "downloading $pkg $version with apt-get download"
                d=$(download "$pkg" "$version") || d=
                if [ -z "$d" ] && [ "$(id -u)" = 0 ]; then
                    log "download failed; running apt-get update and retrying"
                    apt-get update -qq >&2 || true
                    version=$(candidate "$pkg") || true
                    dir=$cache/${pkg}_${version//:/%3a}
                    d=$(download "$pkg" "$version") || d=
                fi
            fi
            if [ -n "$d" ]; then
                extract "$d" "$dir"
                prune "$dir" "$d"
            fi
        fi
    fi
    if ! complete "${dir:-/nonexistent}"; then
        # the archive is out of reach: fall back on the newest cached kernel
        dir=$(ls -td "$cache"/linux-image-*/ 2>/dev/null | while read -r c; do
                  complete "$c" && { echo "${c%/}"; break; }
              done) || true
        [ -n "$dir" ] ||
            unavailable "no kernel in $cache and none could be fetched" \
                        "(no Debian archive reachable through apt)"
        log "using the cached ${dir##*/} (${pkg:-linux-image-amd64}" \
            "${version:-?} could not be fetched)"
        pkg=${dir##*/}
        version=${pkg#*_}
        pkg=${pkg%%_*}
    else
        log "kernel $pkg $version ($dir)"
    fi
fi

# Build the module in directory $1 for kernel $2 (package version $3)
# into directory $4; prints the .ko's path.
build_module()
{
    local src=$1 kver=$2 version=$3 out=$4 build=/lib/modules/$2/build work
    local hdr=linux-headers-$2
    [ -r "$src/Kbuild" ] || die "--module-src $src: no Kbuild file there"
    if [ ! -r "$build/Makefile" ]; then
        [ "$(id -u)" = 0 ] && ! $offline ||
            die "no headers for $kver: install $hdr (version $version)"
        log "installing $hdr $version (for --module-src)"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
            "$hdr=$version" >&2 ||
            die "cannot install $hdr $version"
    fi
    work=$(mktemp -d)
    scratch+=("$work")
    cp -r "$src/." "$work/"
    # the module's own directory stays on the include path, so it may
    # include headers next to it or above it by relative name
    make -s -C "$build" M="$work" KCPPFLAGS="-I$(realpath "$src")" \
        modules >&2 || die "--module-src $src: the build failed"
    for ko in "$work"/*.ko; do
        [ -e "$ko" ] || die "--module-src $src: no .ko was built"
        cp "$ko" "$out/"
        echo "$out/${ko##*/}"
    done
}

if [ -n "$output" ]; then
    stage=$(mktemp -d)
    scratch+=("$stage")
    mkdir -p "$output" "$stage"/{bin,dev,proc,sys,tmp}
    cp "$busybox" "$stage/bin/busybox"
    cp -r "$dir/lib" "$stage/"
    install -m 0755 "$init" "$stage/init"
    if [ ${#programs[@]} -eq 0 ]; then
        programs=("$guest_src/devvm-guest-check.c")
    fi
    for prog in "${programs[@]}"; do
        name=${prog##*/}
        # shellcheck disable=SC2086 # CFLAGS is a list of flags
        ${CC:-cc} -static -O2 -Wall -Wextra -std=gnu11 -pthread ${CFLAGS:-} \
            -I"$(dirname "$prog")" -I"$(dirname "$prog")/.." \
            -I"$top/contrib/devvm/testdev" \
            -o "$stage/bin/${name%.c}" "$prog" ||
            die "--program $prog: the build failed"
    done
    for prog in "${host_programs[@]}"; do
        path=$(command -v "$prog") || die "--host-program $prog: not found"
        mkdir -p "$stage/usr/bin"
        cp "$path" "$stage/usr/bin/"
        # "NAME => PATH (ADDR)" and the loader's "PATH (ADDR)"
        for lib in $(ldd "$path" | awk '$2 == "=>" && $3 ~ /^\// { print $3 }
                                        $1 ~ /^\// { print $1 }'); do
            mkdir -p "$stage$(dirname "$lib")"
            cp -L "$lib" "$stage$lib"
        done
    done
    if [ ${#module_srcs[@]} -gt 0 ]; then
        kver=$(cat "$dir/kver")
        mkdir -p "$stage/lib/modules/$kver/extra"
        for src in "${module_srcs[@]}"; do
            for ko in $(build_module "$src" "$kver" "$version" \
                            "$stage/lib/modules/$kver/extra"); do
                log "module ${ko##*/} built for $kver"
            done
        done
        busybox depmod -b "$stage" "$kver"
    fi
    (cd "$stage" && find . -print0 | LC_ALL=C sort -z |
         cpio --null -o -H newc -R 0:0 --quiet) | gzip -n -6 \
        >"$output/initrd.img"
    log "initramfs $output/initrd.img" \
        "($(stat -c %s "$output/initrd.img") bytes)"
fi

if [ -e "$dir/vmlinux" ]; then
    echo "kernel=$dir/vmlinux"
else
    echo "kernel=$dir/vmlinuz"
fi
[ -z "$output" ] || echo "initrd=$output/initrd.img"
echo "package=$pkg $version"
