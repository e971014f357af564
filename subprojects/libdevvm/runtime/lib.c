/*
 * devvm runtime: the four functions a compiler may call by itself
 * (memcpy, memmove, memset, memcmp), for the runtime, libdevvm's core
 * and the device.  No other libc function exists in the image.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "rt.h"

/*
 * gcc recognises the byte loops below as memcpy/memset and would turn
 * them into calls to themselves.
 */
#pragma GCC optimize("no-tree-loop-distribute-patterns")

/*
 * Eight bytes a step, then the rest: under TCG each step of a rep string
 * instruction costs about the same whatever its size, so this copies a
 * DMA window or a ring's data area several times faster than byte steps.
 */
void *memcpy(void *dst, const void *src, size_t n)
{
    void *ret = dst;
    size_t q = n / 8;

    n %= 8;
    asm volatile("rep movsq; mov %3, %%rcx; rep movsb"
                 : "+D"(dst), "+S"(src), "+c"(q) : "r"(n) : "memory");
    return ret;
}

void *memmove(void *dst, const void *src, size_t n)
{
    uint8_t *d = dst;
    const uint8_t *s = src;

    if (d <= s || d >= s + n) {
        return memcpy(dst, src, n);
    }
    /* overlapping with dst above src: copy from the end */
    while (n--) {
        d[n] = s[n];
    }
    return dst;
}

void *memset(void *dst, int c, size_t n)
{
    void *ret = dst;
    uint64_t v = 0x0101010101010101ull * (uint8_t)c;
    size_t q = n / 8;

    n %= 8;
    asm volatile("rep stosq; mov %3, %%rcx; rep stosb"
                 : "+D"(dst), "+c"(q) : "a"(v), "r"(n) : "memory");
    return ret;
}

int memcmp(const void *a, const void *b, size_t n)
{
    const uint8_t *p = a, *q = b;

    for (; n; n--, p++, q++) {
        if (*p != *q) {
            return *p - *q;
        }
    }
    return 0;
}
