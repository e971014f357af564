/*
 * A fuzz target with a planted crash: a trap (SIGILL) on the first input,
 * which libFuzzer reports as a "deadly signal" and, by default, ends with
 * exit status 77.  test-run-fuzz.sh runs it through run-fuzz.sh to show
 * that a fuzzer that crashes fails its test instead of being counted as
 * skipped.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    (void)data;
    (void)size;
    __builtin_trap();
}
