#!/usr/bin/env bash
# TAP test: the installed device SDK is all an out-of-tree device needs.
# devvm's build is installed into a scratch DESTDIR; the device template
# from there is copied to a scratch directory, built (process mode and
# device VM image) with pkg-config pointed at the install only, checked
# for any path of this source tree, and its harness test run in both
# modes with the installed devvm-gateway and harness.
#
#   test-sdk-install.sh BUILD_DEVVM QEMU
#
# SPDX-License-Identifier: GPL-2.0-or-later

set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../.." && pwd)
build=$1 qemu=$2
tmp=$(mktemp -d /tmp/devvm-sdk-install-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
n=0 failed=0

tap() { n=$((n + 1)); echo "$1 $n - $2"; [ "$1" = ok ] || failed=1; }
# run WHAT CMD...: one TAP line; the command's output as comments
run()
{
    local what=$1 out
    shift
    if out=$("$@" 2>&1); then
        tap ok "$what"
    else
        tap "not ok" "$what"
        sed 's/^/# /' <<<"$out" | tail -n 30
        return 1
    fi
}

echo "1..5"
run "DESTDIR install of build/devvm" \
    env DESTDIR="$tmp/dest" meson install -C "$build" --no-rebuild --quiet
pc=$(dirname "$(find "$tmp/dest" -name libdevvm.pc | head -n 1)")
share=$(find "$tmp/dest" -type d -path '*/share/devvm' | head -n 1)
bindir=$(dirname "$(find "$tmp/dest" -name devvm-gateway | head -n 1)")
if [ -f "$pc/libdevvm-vm.pc" ] && [ -f "$share/template/meson.build" ] &&
   [ -f "$share/python/devvm_harness.py" ] && [ -x "$bindir/devvm-gateway" ]
then
    tap ok "installed: pkg-config files, template, harness, devvm-gateway"
else
    tap "not ok" "installed: pkg-config files, template, harness, devvm-gateway"
fi
cp -r "$share/template" "$tmp/mydev"
# pkg-config sees the install and nothing else
run "the template builds against the installed SDK alone" \
    env PKG_CONFIG_LIBDIR="$pc" PKG_CONFIG_PATH= \
    sh -c "meson setup '$tmp/b' '$tmp/mydev' && ninja -C '$tmp/b'"
if [ -x "$tmp/b/mydev" ] && [ -f "$tmp/b/mydev-vm.elf" ] &&
   ! grep -rqF "$top" "$tmp/b/build.ninja" "$tmp/b/compile_commands.json"
then
    tap ok "both outputs, and no path of the source tree in the build"
else
    tap "not ok" "both outputs, and no path of the source tree in the build"
    grep -rnF "$top" "$tmp/b/build.ninja" | head -n 3 | sed 's/^/# /'
fi
run "its harness test passes in both modes" \
    env PYTHONPATH="$share/python" DEVVM_QEMU_PYTHON= \
    /usr/bin/python3 "$tmp/mydev/test_mydev.py" "$tmp/b" "$qemu" \
    "$bindir/devvm-gateway"
exit $failed
