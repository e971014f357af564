/*
 * libdevvm (hosted): the server's table of client memory mapped for DMA
 * (DEVVM_CMD_DMA_MAP with an fd), and bounds-checked access to it.
 *
 * Not thread-safe: the owner serialises map, unmap and access.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef LIBDEVVM_DMA_H
#define LIBDEVVM_DMA_H

#include <stddef.h>
#include <stdint.h>

#include "libdevvm/wire.h"

struct devvm_dma_region {
    uint64_t addr;              /* client DMA address */
    uint64_t size;
    uint32_t prot;              /* DEVVM_DMA_F_READ | _WRITE */
    uint8_t *host;              /* addr's host address, NULL: no fd */
    void *map_base;             /* what munmap() takes */
    size_t map_len;
};

struct devvm_dma_table {
    struct devvm_dma_region *regions;   /* sorted by addr, disjoint */
    uint32_t nr;
    uint32_t max;               /* limit: at most DEVVM_MAX_DMA_MAPS */
};

/* An empty table of at most @max mappings (0: DEVVM_MAX_DMA_MAPS). */
void devvm_dma_init(struct devvm_dma_table *t, uint32_t max);
/* Unmap everything and free the table. */
void devvm_dma_fini(struct devvm_dma_table *t);

/*
 * Add a mapping.  With @fd >= 0 the range is mmap()ed from it (at
 * m->offset) with the protection of m->flags, but only when the fd is a
 * file sealed against shrinking (F_SEAL_SHRINK): any other fd could be
 * made shorter by the client later, and an access past its end would
 * raise SIGBUS here.  Such a range is kept without a host address (DMA
 * to it goes by message).  The fd is always consumed.
 * Returns 0, DEVVM_E_BAD_FIELD on overlap with an existing mapping,
 * -DEVVM_EINVAL when the file is shorter than m->offset + m->size,
 * DEVVM_E_LIMIT when the table is full, DEVVM_E_IO when fstat or mmap
 * fails.
 */
int devvm_dma_add(struct devvm_dma_table *t, const struct devvm_dma_map *m,
                  int fd);
/* Remove the mapping that exactly matches [addr, addr + size). */
int devvm_dma_remove(struct devvm_dma_table *t, uint64_t addr,
                     uint64_t size);
/* Remove every mapping (DMA_UNMAP with UNMAP_ALL); the table stays. */
void devvm_dma_remove_all(struct devvm_dma_table *t);

/*
 * Host pointer for [addr, addr + len) when it lies entirely inside one
 * fd-backed mapping that allows the access (@write: needs WRITE, else
 * READ); NULL otherwise.  Checked on every call.
 */
void *devvm_dma_ptr(struct devvm_dma_table *t, uint64_t addr, uint64_t len,
                    int write);
/* The mapping containing @addr, or NULL. */
const struct devvm_dma_region *devvm_dma_find(struct devvm_dma_table *t,
                                              uint64_t addr);
/* Is [addr, addr + len) covered by mappings (fd-backed or not) allowing
 * the access?  (For DMA through DEVVM_CMD_DMA_READ/WRITE.) */
int devvm_dma_covered(struct devvm_dma_table *t, uint64_t addr,
                      uint64_t len, int write);

#endif /* LIBDEVVM_DMA_H */
