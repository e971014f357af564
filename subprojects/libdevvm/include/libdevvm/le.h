/*
 * libdevvm: little-endian loads and stores at any alignment, and the
 * atomic accesses the rings use.  Freestanding.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef LIBDEVVM_LE_H
#define LIBDEVVM_LE_H

#include <stdint.h>

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define DEVVM_LE16(x) ((uint16_t)(x))
#define DEVVM_LE32(x) ((uint32_t)(x))
#define DEVVM_LE64(x) ((uint64_t)(x))
#else
#define DEVVM_LE16(x) __builtin_bswap16(x)
#define DEVVM_LE32(x) __builtin_bswap32(x)
#define DEVVM_LE64(x) __builtin_bswap64(x)
#endif

static inline uint16_t devvm_ld16(const void *p)
{
    uint16_t v;

    __builtin_memcpy(&v, p, sizeof(v));
    return DEVVM_LE16(v);
}

static inline uint32_t devvm_ld32(const void *p)
{
    uint32_t v;

    __builtin_memcpy(&v, p, sizeof(v));
    return DEVVM_LE32(v);
}

static inline uint64_t devvm_ld64(const void *p)
{
    uint64_t v;

    __builtin_memcpy(&v, p, sizeof(v));
    return DEVVM_LE64(v);
}

/* Little-endian stores at any alignment. */
static inline void devvm_st16(void *p, uint16_t v)
{
    v = DEVVM_LE16(v);
    __builtin_memcpy(p, &v, sizeof(v));
}

static inline void devvm_st32(void *p, uint32_t v)
{
    v = DEVVM_LE32(v);
    __builtin_memcpy(p, &v, sizeof(v));
}

static inline void devvm_st64(void *p, uint64_t v)
{
    v = DEVVM_LE64(v);
    __builtin_memcpy(p, &v, sizeof(v));
}

/* Shared-memory indices: naturally aligned u32 accessed atomically. */
static inline uint32_t devvm_load_acquire32(const void *p)
{
    return DEVVM_LE32(__atomic_load_n((const uint32_t *)p, __ATOMIC_ACQUIRE));
}

static inline uint32_t devvm_load_relaxed32(const void *p)
{
    return DEVVM_LE32(__atomic_load_n((const uint32_t *)p, __ATOMIC_RELAXED));
}

static inline void devvm_store_release32(void *p, uint32_t v)
{
    __atomic_store_n((uint32_t *)p, DEVVM_LE32(v), __ATOMIC_RELEASE);
}

static inline void devvm_store_relaxed32(void *p, uint32_t v)
{
    __atomic_store_n((uint32_t *)p, DEVVM_LE32(v), __ATOMIC_RELAXED);
}

/* A full fence (the need_wakeup protocol of ring.h needs one). */
static inline void devvm_fence_full(void)
{
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
}

#endif /* LIBDEVVM_LE_H */
