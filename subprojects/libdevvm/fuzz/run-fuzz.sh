#!/usr/bin/env bash
# Run one libFuzzer target for a bounded time.
#
#   run-fuzz.sh FUZZER SEED_DIR WORK_DIR SECONDS
#
# New inputs go to WORK_DIR/corpus (never into the source tree); a crash
# is saved as WORK_DIR/crash-* and makes this script fail with status 1:
# copy it into the seed corpus and add a regression case to the unit
# tests.  (libFuzzer's own status for a crash is 77, which meson reads
# as a skip; test-run-fuzz.sh checks that a crash fails.)
#
# SPDX-License-Identifier: GPL-2.0-or-later
set -euo pipefail
fuzzer=$1 seeds=$2 work=$3 seconds=$4
mkdir -p "$work/corpus"
status=0
"$fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -max_len=8192 -print_final_stats=1 -error_exitcode=1 \
    -timeout_exitcode=1 \
    -artifact_prefix="$work/" "$work/corpus" "$seeds" || status=$?
if [ "$status" -ne 0 ]; then
    echo "run-fuzz: $(basename "$fuzzer") failed (exit status $status);" \
         "inputs: $work/crash-* $work/timeout-* $work/oom-*" >&2
    exit 1
fi
