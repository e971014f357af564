#!/usr/bin/env bash
# Run every devvm test suite on an already built tree ("make check" builds
# first) and end with one line the CI reads:
#
#   N passed, N failed[, N skipped]
#
#   check.sh [--devvm-only]
#
# Suites, in order:
#   devvm          devvm's own tests (build/devvm: scripts, tools, libdevvm)
#   libdevvm-asan  libdevvm's tests built with ASan+UBSan
#   libdevvm-tsan  libdevvm's tests built with ThreadSanitizer
#   libdevvm-fuzz  libdevvm's libFuzzer targets, a short smoke run each
#   devvm-qtest    devvm's qtests in the QEMU build (devvm-proxy-test, ...)
#   qtest-x86_64   the rest of upstream's x86_64 qtests; when KVM is not
#                  usable here (devvm-kvm-probe) they run with /dev/kvm
#                  hidden, through qtest-wrapper.sh.  Tests and subtests
#                  listed in tests/devvm/upstream-qtest-exclusions are not
#                  run and are counted as skipped, each printed with its
#                  reason.
#
# SPDX-License-Identifier: GPL-2.0-or-later

set -uo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=$top/build
devvm_only=false
case "${1:-}" in
--devvm-only) devvm_only=true ;;
"") ;;
*) echo "usage: check.sh [--devvm-only]" >&2; exit 2 ;;
esac

for d in "$build/qemu" "$build/devvm" "$build/libdevvm-asan" \
         "$build/libdevvm-tsan" "$build/libdevvm-fuzz"; do
    [ -f "$d/build.ninja" ] || { echo "check: $d is not configured; run make" >&2; exit 2; }
done

total_pass=0 total_fail=0 total_skip=0
failed_tests=()

# count SUITE LOGFILE: add a meson testlog's results to the totals.
count()
{
    local suite=$1 log=$2 p f s line
    local -a lines
    mapfile -t lines < <(/usr/bin/python3 - "$log" <<'EOF'
import json, sys
p = f = s = 0
failed = []
for line in open(sys.argv[1]):
    t = json.loads(line)
    if t["result"] in ("OK", "EXPECTEDFAIL"):
        p += 1
    elif t["result"] == "SKIP":
        s += 1
    else:
        f += 1
        failed.append("%s (%s)" % (t["name"], t["result"]))
        # what the CI's short tail should show: each "not ok" line with
        # the first diagnostics after it, or else the output's last lines
        out = (t.get("stdout") or "").splitlines()
        why = []
        for i, l in enumerate(out):
            if l.startswith("not ok"):
                why.append(l)
                why += [d for d in out[i + 1:i + 3] if d.startswith("#")]
        if not why:
            why = out[-3:]
        failed += ["    " + l[:200] for l in why[:6]]
print(p, f, s)
for name in failed:
    print(name)
EOF
)
    read -r p f s <<<"${lines[0]}"
    for line in "${lines[@]:1}"; do
        failed_tests+=("$line")
    done
    echo "== $suite: passed $p, failed $f, skipped $s"
    total_pass=$((total_pass + p))
    total_fail=$((total_fail + f))
    total_skip=$((total_skip + s))
}

# run_meson SUITE BUILDDIR [meson test args...]
run_meson()
{
    local suite=$1 dir=$2
    shift 2
    local log
    echo "== $suite: meson test in ${dir#"$top"/}"
    rm -f "$dir/meson-logs/testlog-$suite"*.json
    meson test -C "$dir" --no-rebuild --print-errorlogs \
        --logbase "testlog-$suite" "$@"
    # meson appends the wrapper's name to the log's name
    log=$(ls "$dir/meson-logs/testlog-$suite"*.json 2>/dev/null | head -n 1)
    if [ -n "$log" ]; then
        count "$suite" "$log"
    else
        echo "== $suite: meson wrote no test log"
        total_fail=$((total_fail + 1))
        failed_tests+=("$suite (no test log)")
    fi
}

start=$(date +%s)

probe=$build/devvm/tools/devvm/devvm-kvm-probe
kvm_msg=$("$probe")
kvm_usable=$?
echo "== host: $kvm_msg"

# the device VM runtime's own test boots its images in the fork's QEMU
DEVVM_QEMU=$build/qemu/qemu-system-x86_64 run_meson devvm "$build/devvm"
# libdevvm's tests again under ASan+UBSan and under TSan; its fuzzers
# for a short smoke run each (make fuzz runs them longer)
# (any sanitizer report fails the test)
export ASAN_OPTIONS=halt_on_error=1:abort_on_error=1:detect_leaks=1
export UBSAN_OPTIONS=halt_on_error=1:abort_on_error=1:print_stacktrace=1
export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1
run_meson libdevvm-asan "$build/libdevvm-asan"
run_meson libdevvm-tsan "$build/libdevvm-tsan"
run_meson libdevvm-fuzz "$build/libdevvm-fuzz"
unset ASAN_OPTIONS UBSAN_OPTIONS TSAN_OPTIONS

mapfile -t qtests < <(meson test -C "$build/qemu" --no-rebuild --list \
                          --suite qtest-x86_64 2>/dev/null |
                      sed -n 's|^.* / \(qtest-x86_64/.*\)$|\1|p')
devvm_qtests=()
upstream_qtests=()
for t in "${qtests[@]}"; do
    case "${t#qtest-x86_64/}" in
    devvm-*|vcpu-affinity-test) devvm_qtests+=("$t") ;;
    *) upstream_qtests+=("$t") ;;
    esac
done
if [ ${#devvm_qtests[@]} -eq 0 ]; then
    echo "== devvm-qtest: no devvm qtests in the QEMU build"
    total_fail=$((total_fail + 1))
    failed_tests+=("devvm-qtest (none registered)")
else
    # devvm-proxy-test's device VM cases: the gateway and the device VM
    # image come from devvm's own build
    QTEST_DEVVM_GATEWAY=$build/devvm/tools/devvm/devvm-gateway \
    QTEST_DEVVM_TESTDEV_VM=$build/devvm/contrib/devvm/testdev/devvm-testdev-vm.elf \
        run_meson devvm-qtest "$build/qemu" "${devvm_qtests[@]}"
fi

if ! $devvm_only; then
    declare -A excluded=()
    while read -r name reason; do
        case "$name" in
        ''|'#'*) continue ;;
        *:/*)
            # a subtest: qtest-wrapper.sh skips it with -s
            echo "== qtest-x86_64: subtest not run: ${name%%:*} ${name#*:}: $reason"
            total_skip=$((total_skip + 1))
            ;;
        *) excluded[qtest-x86_64/$name]=$reason ;;
        esac
    done <"$top/tests/devvm/upstream-qtest-exclusions"
    run=()
    timeouts=()
    for t in "${upstream_qtests[@]}"; do
        if [ -n "${excluded[$t]:-}" ]; then
            echo "== qtest-x86_64: not run: $t: ${excluded[$t]}"
            total_skip=$((total_skip + 1))
        else
            run+=("$t")
        fi
    done
    if [ "$kvm_usable" != 0 ]; then
        echo "== qtest-x86_64: KVM is not usable here: /dev/kvm hidden," \
             "quick mode (scripts/devvm/qtest-wrapper.sh)"
        export DEVVM_QTEST_HIDE_KVM=1
        # Under TCG on 2 cores migration-test's quick set (559 s) runs
        # past its 480 s budget (docs/devvm/testing.rst).
        timeouts=(--timeout-multiplier 2)
    fi
    if [ ${#run[@]} -eq 0 ]; then
        echo "== qtest-x86_64: no upstream qtests found in the QEMU build"
        total_fail=$((total_fail + 1))
        failed_tests+=("qtest-x86_64 (none registered)")
    else
        run_meson qtest-x86_64 "$build/qemu" \
            --wrapper "$top/scripts/devvm/qtest-wrapper.sh" "${timeouts[@]}" \
            "${run[@]}"
    fi
fi

echo
echo "== took $(( $(date +%s) - start )) s"
for t in "${failed_tests[@]}"; do
    case "$t" in
    "") ;;
    " "*) echo "$t" ;;
    *) echo "== FAILED: $t" ;;
    esac
done
summary="$total_pass passed, $total_fail failed"
[ "$total_skip" -gt 0 ] && summary="$summary, $total_skip skipped"
echo "$summary"
[ "$total_fail" -eq 0 ]
