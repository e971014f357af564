/*
 * libdevvm (hosted): client memory mapped for device DMA.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "libdevvm/dma.h"

void devvm_dma_init(struct devvm_dma_table *t, uint32_t max)
{
    memset(t, 0, sizeof(*t));
    t->max = max && max < DEVVM_MAX_DMA_MAPS ? max : DEVVM_MAX_DMA_MAPS;
}

static void region_unmap(struct devvm_dma_region *r)
{
    if (r->map_base) {
        munmap(r->map_base, r->map_len);
    }
}

void devvm_dma_remove_all(struct devvm_dma_table *t)
{
    uint32_t i;

    for (i = 0; i < t->nr; i++) {
        region_unmap(&t->regions[i]);
    }
    t->nr = 0;
}

void devvm_dma_fini(struct devvm_dma_table *t)
{
    devvm_dma_remove_all(t);
    free(t->regions);
    t->regions = NULL;
}

/* Index of the first region ending after @addr. */
static uint32_t lookup(const struct devvm_dma_table *t, uint64_t addr)
{
    uint32_t lo = 0, hi = t->nr;

    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        const struct devvm_dma_region *r = &t->regions[mid];

        if (r->addr + (r->size - 1) < addr) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

/*
 * May [offset, offset + size) of @fd be mapped?  A shared mapping of a
 * file that later becomes shorter raises SIGBUS at the next access, in
 * whichever process makes it, so only a file that cannot shrink is
 * mapped: one sealed with F_SEAL_SHRINK (QEMU's memory-backend-memfd
 * seals by default) that covers the range now.  Any other fd keeps its
 * range in the table without a mapping, and DMA to it goes by message.
 * DEVVM_OK: map it; DEVVM_E_AGAIN: do not map it; -DEVVM_EINVAL: a file
 * that is already too short.
 */
static int dma_fd_check(int fd, uint64_t offset, uint64_t size)
{
    struct stat st;
    int seals;

    if (fstat(fd, &st) < 0) {
        return DEVVM_E_IO;
    }
    if (!S_ISREG(st.st_mode)) {
        return DEVVM_E_AGAIN;
    }
    if (offset > (uint64_t)st.st_size ||
        size > (uint64_t)st.st_size - offset) {
        return -DEVVM_EINVAL;
    }
    seals = fcntl(fd, F_GET_SEALS);
    return seals >= 0 && (seals & F_SEAL_SHRINK) ? DEVVM_OK : DEVVM_E_AGAIN;
}

int devvm_dma_add(struct devvm_dma_table *t, const struct devvm_dma_map *m,
                  int fd)
{
    struct devvm_dma_region r = {
        .addr = m->addr,
        .size = m->size,
        .prot = m->flags & (DEVVM_DMA_F_READ | DEVVM_DMA_F_WRITE),
    };
    uint64_t last = m->addr + (m->size - 1);
    uint32_t i;

    if (!m->size || last < m->addr) {
        goto bad_field;
    }
    i = lookup(t, m->addr);
    if (i < t->nr && t->regions[i].addr <= last) {
        goto bad_field;         /* overlaps region i */
    }
    if (t->nr >= t->max) {
        if (fd >= 0) {
            close(fd);
        }
        return DEVVM_E_LIMIT;
    }
    if (!t->regions) {
        t->regions = calloc(t->max, sizeof(*t->regions));
        if (!t->regions) {
            if (fd >= 0) {
                close(fd);
            }
            return -DEVVM_ENOMEM;
        }
    }
    if (fd >= 0) {
        int ret = dma_fd_check(fd, m->offset, m->size);

        if (ret == DEVVM_E_AGAIN) {
            close(fd);
            fd = -1;
        } else if (ret) {
            close(fd);
            return ret;
        }
    }
    if (fd >= 0) {
        long page = sysconf(_SC_PAGESIZE);
        uint64_t skew = m->offset % page;
        int prot = 0;
        void *p;

        if (r.prot & DEVVM_DMA_F_READ) {
            prot |= PROT_READ;
        }
        if (r.prot & DEVVM_DMA_F_WRITE) {
            prot |= PROT_WRITE;
        }
        if (m->size > SIZE_MAX - skew) {
            close(fd);
            return DEVVM_E_BAD_FIELD;
        }
        r.map_len = m->size + skew;
        p = mmap(NULL, r.map_len, prot ? prot : PROT_NONE, MAP_SHARED, fd,
                 m->offset - skew);
        close(fd);
        if (p == MAP_FAILED) {
            return DEVVM_E_IO;
        }
        r.map_base = p;
        r.host = (uint8_t *)p + skew;
    }
    memmove(&t->regions[i + 1], &t->regions[i],
            (t->nr - i) * sizeof(*t->regions));
    t->regions[i] = r;
    t->nr++;
    return DEVVM_OK;

bad_field:
    if (fd >= 0) {
        close(fd);
    }
    return DEVVM_E_BAD_FIELD;
}

int devvm_dma_remove(struct devvm_dma_table *t, uint64_t addr,
                     uint64_t size)
{
    uint32_t i = lookup(t, addr);

    if (i >= t->nr || t->regions[i].addr != addr ||
        t->regions[i].size != size) {
        return DEVVM_E_BAD_FIELD;
    }
    region_unmap(&t->regions[i]);
    memmove(&t->regions[i], &t->regions[i + 1],
            (t->nr - i - 1) * sizeof(*t->regions));
    t->nr--;
    return DEVVM_OK;
}

const struct devvm_dma_region *devvm_dma_find(struct devvm_dma_table *t,
                                              uint64_t addr)
{
    uint32_t i = lookup(t, addr);

    return i < t->nr && t->regions[i].addr <= addr ? &t->regions[i] : NULL;
}

static int allows(const struct devvm_dma_region *r, int write)
{
    return r->prot & (write ? DEVVM_DMA_F_WRITE : DEVVM_DMA_F_READ);
}

void *devvm_dma_ptr(struct devvm_dma_table *t, uint64_t addr, uint64_t len,
                    int write)
{
    const struct devvm_dma_region *r;
    uint32_t i;

    if (!len || addr + (len - 1) < addr) {
        return NULL;
    }
    i = lookup(t, addr);
    if (i >= t->nr) {
        return NULL;
    }
    r = &t->regions[i];
    if (!r->host || addr < r->addr || !allows(r, write) ||
        addr + (len - 1) > r->addr + (r->size - 1)) {
        return NULL;
    }
    return r->host + (addr - r->addr);
}

int devvm_dma_covered(struct devvm_dma_table *t, uint64_t addr,
                      uint64_t len, int write)
{
    uint64_t last;
    uint32_t i;

    if (!len || addr + (len - 1) < addr) {
        return 0;
    }
    last = addr + (len - 1);
    /* walk adjacent regions until the range is covered */
    for (i = lookup(t, addr); i < t->nr; i++) {
        const struct devvm_dma_region *r = &t->regions[i];
        uint64_t rlast = r->addr + (r->size - 1);

        if (r->addr > addr || !allows(r, write)) {
            return 0;
        }
        if (rlast >= last) {
            return 1;
        }
        addr = rlast + 1;
    }
    return 0;
}
