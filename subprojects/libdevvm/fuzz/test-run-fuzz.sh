#!/usr/bin/env bash
# run-fuzz.sh must fail when its fuzzer crashes: libFuzzer's own exit
# status for a crash is 77, which meson would count as a skip.  Runs the
# fuzz-canary target (a planted trap) through run-fuzz.sh and
# checks the status and the saved crash input.  TAP output.
#
#   test-run-fuzz.sh RUN_FUZZ CANARY WORK_DIR
#
# SPDX-License-Identifier: GPL-2.0-or-later
set -uo pipefail
run_fuzz=$1 canary=$2 work=$3

rm -rf "$work"
mkdir -p "$work/seeds"
printf 'seed' >"$work/seeds/one"

echo "1..3"
"$run_fuzz" "$canary" "$work/seeds" "$work" 20 >"$work/log" 2>&1
status=$?
if [ "$status" -ne 0 ] && [ "$status" -ne 77 ]; then
    echo "ok 1 - a crashing fuzzer fails (exit status $status)"
else
    echo "not ok 1 - a crashing fuzzer exited $status (0 passes, 77 skips)"
    sed 's/^/# /' "$work/log"
fi
if grep -q 'ERROR: libFuzzer: deadly signal' "$work/log"; then
    echo "ok 2 - the crash is the planted trap (a deadly signal)"
else
    echo "not ok 2 - no deadly signal in the fuzzer's output"
    sed 's/^/# /' "$work/log"
fi
if compgen -G "$work/crash-*" >/dev/null; then
    echo "ok 3 - the crashing input is saved as $(basename "$(compgen -G "$work/crash-*" | head -n 1)")"
else
    echo "not ok 3 - no crash-* file in $work"
fi
