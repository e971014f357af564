#!/usr/bin/env bash
# Benchmark: what a register access, an interrupt and a DMA of a devvm
# device cost a guest, side by side with an in-process QEMU device in the
# same client VM.
#
# Runs the main job (run.sh --with-edu) in each configuration: the device
# in a device VM behind devvm-gateway (with its events taken by
# devvm-proxy on the ring, or relayed by the gateway; with its DMA
# window, and without it) and as a host process, each with the ring
# transport and over the vfio-user socket.
# The client's guest (devvm-demo) times 255 of each with rdtsc and
# reports the medians; QEMU's edu device is the in-process reference.
# Numbers are host TSC cycles (under TCG, the guest's rdtsc reads the
# host's).
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
table=()
edu_lines=()
edu_msi=()
rc=0
# device, ring, events (events: a device VM's, taken by devvm-proxy),
# DMA window (a device VM's)
for conf in "vm on on on" "vm on off on" "vm on on off" "vm off off on" \
            "process on off on" "process off off on"; do
    read -r device ring events window <<<"$conf"
    label="$device, ring=$ring"
    [ "$device,$ring" = vm,on ] && label="$label, events=$events"
    [ "$window" = on ] || label="$label, no window"
    if ! "$here/run.sh" --device=$device --ring=$ring --events=$events \
            --dma-window=$window --with-edu "$@" </dev/null >"$out" 2>&1; then
        echo "bench-bar: run.sh --device=$device --ring=$ring" \
             "--events=$events --dma-window=$window failed:" >&2
        tail -n 20 "$out" >&2
        rc=1
        continue
    fi
    read -r mmio port write < <(grep '^demo: timing: devvm-testdev MMIO' \
        "$out" | sed 's/.*MMIO read \([0-9]*\), port read \([0-9]*\), MMIO write \([0-9]*\).*/\1 \2 \3/')
    read -r msix dma < <(grep '^demo: timing: devvm-testdev MSI-X' "$out" |
        sed 's/.*MSI-X \([0-9]*\), DMA fill 4 KiB \([0-9]*\).*/\1 \2/')
    read -r fill copy < <(grep '^demo: timing: devvm-testdev DMA 1 MiB' \
        "$out" | sed 's/.*fill \([0-9]*\), copy \([0-9]*\).*/\1 \2/')
    table+=("$(printf '%-34s %10s %10s %10s %10s %12s %12s %12s' "$label" \
               "$mmio" "$port" "$write" "$msix" "$dma" "$fill" "$copy")")
    edu_lines+=("$(grep '^demo: timing: edu (in-process QEMU device) MMIO' \
        "$out" | sed 's/.*MMIO read \([0-9]*\), MMIO write \([0-9]*\).*/\1 \2/')")
    edu_msi+=("$(grep '^demo: timing: edu (in-process QEMU device) MSI' \
        "$out" | sed 's/.*MSI \([0-9]*\).*/\1/')")
done
printf '%-34s %10s %10s %10s %10s %12s %12s %12s\n' \
    "device (client: devvm-proxy)" "MMIO read" "port read" "MMIO write" \
    "MSI-X" "DMA 4 KiB" "fill 1 MiB" "copy 1 MiB"
printf '%s\n' "${table[@]}"
# the reference ran in each of those VMs: its range
range()
{
    printf '%s\n' "$@" | awk 'NR == 1 { a = b = $1 }
        { if ($1 < a) a = $1; if ($1 > b) b = $1 } END { print a "-" b }'
}
if [ ${#edu_lines[@]} -gt 0 ]; then
    printf '%-34s %10s %10s %10s %10s %12s %12s %12s\n' \
        "edu (in-process), same VMs" "$(range "${edu_lines[@]%% *}")" "-" \
        "$(range "${edu_lines[@]##* }")" "$(range "${edu_msi[@]}")" "-" \
        "-" "-"
fi
echo "(TSC cycles, medians of 255 each: an access; an MSI-X from the"
echo " write that asks for it to the guest's handler (edu: its MSI); a"
echo " DMA fill of 4 KiB, of 1 MiB, and a copy of 1 MiB (read and write"
echo " back), from the command to the status read; \"no window\": the"
echo " device VM's DMA by messages, docs/devvm/dma-window.rst)"
exit $rc
