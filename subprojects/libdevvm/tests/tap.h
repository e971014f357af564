/*
 * A minimal TAP producer for libdevvm's tests (meson protocol: 'tap').
 *
 *   TAP_CHECK(cond, "what")    one "ok"/"not ok" line per check
 *   tap_done()                 prints the plan, returns the exit status
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef LIBDEVVM_TAP_H
#define LIBDEVVM_TAP_H

#include <stdarg.h>
#include <stdio.h>

static unsigned tap_count;
static unsigned tap_failed;

__attribute__((format(printf, 4, 5), unused))
static int tap_check(int ok, const char *file, int line, const char *fmt, ...)
{
    va_list ap;

    tap_count++;
    printf("%s %u - ", ok ? "ok" : "not ok", tap_count);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    if (!ok) {
        tap_failed++;
        printf("# failed at %s:%d\n", file, line);
    }
    fflush(stdout);
    return ok;
}

#define TAP_CHECK(cond, ...) \
    tap_check(!!(cond), __FILE__, __LINE__, __VA_ARGS__)

/* Compare two integers and show both on failure. */
#define TAP_EQ(a, b, ...) do { \
        long long tap_a_ = (long long)(a), tap_b_ = (long long)(b); \
        if (!TAP_CHECK(tap_a_ == tap_b_, __VA_ARGS__)) { \
            printf("#   got %lld (0x%llx), want %lld (0x%llx)\n", \
                   tap_a_, (unsigned long long)tap_a_, \
                   tap_b_, (unsigned long long)tap_b_); \
        } \
    } while (0)

__attribute__((unused))
static int tap_done(void)
{
    printf("1..%u\n", tap_count);
    return tap_failed ? 1 : 0;
}

#endif /* LIBDEVVM_TAP_H */
