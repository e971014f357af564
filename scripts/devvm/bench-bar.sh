#!/usr/bin/env bash
# Benchmark: what one register access of a devvm device costs a guest,
# side by side with an in-process QEMU device in the same client VM.
#
# Runs the main job (run.sh --with-edu) in each configuration: the device
# in a device VM behind devvm-gateway and as a host process, each with
# the ring transport and over the vfio-user socket.  The client's guest
# (devvm-demo) times 255 accesses of each kind with rdtsc and reports
# the medians; QEMU's edu device is the in-process reference.  Numbers
# are host TSC cycles (under TCG, the guest's rdtsc reads the host's).
#
#   bench-bar.sh [run.sh options, e.g. --qemu=PATH]
#
# SPDX-License-Identifier: GPL-2.0-or-later

set -uo pipefail

here=$(dirname "${BASH_SOURCE[0]}")
out=$(mktemp)
trap 'rm -f "$out"' EXIT

tsc_mhz=$(sed -n 's/^cpu MHz[[:space:]]*: \([0-9]*\).*/\1/p' /proc/cpuinfo |
          head -n 1)
echo "bench-bar: $(nproc) CPUs, ${tsc_mhz:-unknown} MHz; TCG guests"
printf '%-30s %12s %12s %12s\n' "device (client: devvm-proxy)" \
    "MMIO read" "port read" "MMIO write"
edu_lines=()
rc=0
for device in vm process; do
    for ring in on off; do
        if ! "$here/run.sh" --device=$device --ring=$ring --with-edu "$@" \
                </dev/null >"$out" 2>&1; then
            echo "bench-bar: run.sh --device=$device --ring=$ring failed:" >&2
            tail -n 20 "$out" >&2
            rc=1
            continue
        fi
        line=$(grep '^demo: timing: devvm-testdev' "$out")
        read -r mmio port write < <(echo "$line" |
            sed 's/.*MMIO read \([0-9]*\), port read \([0-9]*\), MMIO write \([0-9]*\).*/\1 \2 \3/')
        printf '%-30s %12s %12s %12s\n' "$device, ring=$ring" "$mmio" \
            "$port" "$write"
        edu_lines+=("$(grep '^demo: timing: edu' "$out" |
            sed 's/.*MMIO read \([0-9]*\), MMIO write \([0-9]*\).*/\1 \2/')")
    done
done
# the reference ran in each of those VMs: its range
if [ ${#edu_lines[@]} -gt 0 ]; then
    read -r rmin rmax wmin wmax < <(printf '%s\n' "${edu_lines[@]}" |
        awk 'NR == 1 { a = b = $1; c = d = $2 }
             { if ($1 < a) a = $1; if ($1 > b) b = $1;
               if ($2 < c) c = $2; if ($2 > d) d = $2 }
             END { print a, b, c, d }')
    printf '%-30s %12s %12s %12s\n' "edu (in-process), same VMs" \
        "$rmin-$rmax" "-" "$wmin-$wmax"
fi
echo "(TSC cycles, median of 255 accesses each)"
exit $rc
