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

void *memcpy(void *dst, const void *src, size_t n)
{
    void *ret = dst;

    asm volatile("rep movsb"
                 : "+D"(dst), "+S"(src), "+c"(n) : : "memory");
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

    asm volatile("rep stosb"
                 : "+D"(dst), "+c"(n) : "a"(c) : "memory");
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
