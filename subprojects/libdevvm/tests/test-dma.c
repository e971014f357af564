/*
 * The server's DMA map table: ordering, overlap, exact unmap, the map
 * limit, the bounds check of every access, and which fds it maps.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "libdevvm/dma.h"
#include "sealed-memfd.h"
#include "tap.h"

static int memfd_of(size_t size, uint8_t fill)
{
    int fd = sealed_memfd("dma", size);
    uint8_t *p;

    if (fd < 0) {
        return -1;
    }
    p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    memset(p, fill, size);
    munmap(p, size);
    return fd;
}

static struct devvm_dma_map map_of(uint64_t addr, uint64_t size,
                                   uint32_t flags, uint64_t offset)
{
    struct devvm_dma_map m = { 32, flags, offset, addr, size };

    return m;
}

int main(void)
{
    struct devvm_dma_table t;
    struct devvm_dma_map m;
    uint8_t *p;
    uint32_t i;
    int ret;

    devvm_dma_init(&t, 4);
    m = map_of(0x10000, 0x2000, DEVVM_DMA_F_READ | DEVVM_DMA_F_WRITE,
               0x1000);
    TAP_EQ(devvm_dma_add(&t, &m, memfd_of(0x3000, 0x11)), DEVVM_OK,
           "map 0x10000+0x2000 at fd offset 0x1000");
    p = devvm_dma_ptr(&t, 0x10000, 0x2000, 1);
    TAP_CHECK(p && p[0] == 0x11 && p[0x1fff] == 0x11,
              "the whole mapping is reachable and backed by the fd");
    TAP_CHECK(!devvm_dma_ptr(&t, 0xffff, 2, 0) &&
              !devvm_dma_ptr(&t, 0x11fff, 2, 0) &&
              !devvm_dma_ptr(&t, 0x12000, 1, 0),
              "one byte outside on either side is refused");
    TAP_CHECK(!devvm_dma_ptr(&t, 0x10000, 0, 0) &&
              !devvm_dma_ptr(&t, ~0ull, 2, 0),
              "empty and wrapping ranges are refused");

    m = map_of(0x20000, 0x1000, DEVVM_DMA_F_READ, 0);
    TAP_EQ(devvm_dma_add(&t, &m, memfd_of(0x1000, 0x22)), DEVVM_OK,
           "a read-only mapping");
    TAP_CHECK(devvm_dma_ptr(&t, 0x20000, 0x1000, 0) &&
              !devvm_dma_ptr(&t, 0x20000, 1, 1),
              "it reads, it does not write");
    m = map_of(0x12000, 0x1000, DEVVM_DMA_F_READ | DEVVM_DMA_F_WRITE,
               0);
    TAP_EQ(devvm_dma_add(&t, &m, -1), DEVVM_OK,
           "a mapping without fd right after the first");
    TAP_CHECK(devvm_dma_covered(&t, 0x11000, 0x2000, 1) &&
              !devvm_dma_ptr(&t, 0x11000, 0x2000, 1),
              "a range across both is covered, but not one host pointer");
    TAP_CHECK(!devvm_dma_covered(&t, 0x12000, 0x2000, 0),
              "a range running into the hole after them is not covered");
    TAP_CHECK(!devvm_dma_covered(&t, 0x1f000, 0x2000, 0),
              "a range starting in a hole is not covered");
    TAP_CHECK(!devvm_dma_covered(&t, 0x12000, 0x1000 + 0xe000 + 1, 0),
              "... nor one spanning a gap");

    m = map_of(0x11000, 0x2000, DEVVM_DMA_F_READ, 0);
    TAP_EQ(devvm_dma_add(&t, &m, memfd_of(0x2000, 0)), DEVVM_E_BAD_FIELD,
           "an overlapping mapping is refused (and its fd closed)");
    m = map_of(0xf000, 0x1001, DEVVM_DMA_F_READ, 0);
    TAP_EQ(devvm_dma_add(&t, &m, -1), DEVVM_E_BAD_FIELD,
           "one overlapping by a byte at the start too");
    m = map_of(0x30000, 0x1000, DEVVM_DMA_F_READ, 0);
    TAP_EQ(devvm_dma_add(&t, &m, -1), DEVVM_OK, "a fourth mapping");
    m = map_of(0x40000, 0x1000, DEVVM_DMA_F_READ, 0);
    TAP_EQ(devvm_dma_add(&t, &m, memfd_of(0x1000, 0)), DEVVM_E_LIMIT,
           "a fifth is over the table's limit of 4");

    TAP_EQ(devvm_dma_remove(&t, 0x10000, 0x1000), DEVVM_E_BAD_FIELD,
           "unmap must match a mapping exactly");
    TAP_EQ(devvm_dma_remove(&t, 0x10000, 0x2000), DEVVM_OK, "exact unmap");
    TAP_CHECK(!devvm_dma_ptr(&t, 0x10000, 1, 0) &&
              !devvm_dma_covered(&t, 0x10000, 1, 0),
              "the unmapped range is gone");
    TAP_EQ(devvm_dma_add(&t, &m, -1), DEVVM_OK, "room for one more again");
    devvm_dma_remove_all(&t);
    TAP_CHECK(t.nr == 0 && !devvm_dma_covered(&t, 0x20000, 1, 0),
              "unmap all");

    /* many mappings stay sorted and found */
    devvm_dma_fini(&t);
    devvm_dma_init(&t, DEVVM_MAX_DMA_MAPS);
    ret = 0;
    for (i = 0; i < DEVVM_MAX_DMA_MAPS; i++) {
        /* inserted out of order */
        uint64_t slot = (i * 7919u) % DEVVM_MAX_DMA_MAPS;

        m = map_of(slot * 0x2000, 0x1000, DEVVM_DMA_F_READ, 0);
        ret |= devvm_dma_add(&t, &m, -1);
    }
    TAP_EQ(ret, DEVVM_OK, "%u mappings added out of order",
           DEVVM_MAX_DMA_MAPS);
    ret = 1;
    for (i = 1; i < t.nr; i++) {
        ret &= t.regions[i - 1].addr < t.regions[i].addr;
    }
    TAP_CHECK(ret && devvm_dma_covered(&t, 0x2000 * 777, 0x1000, 0) &&
              !devvm_dma_covered(&t, 0x2000 * 777 + 0x1000, 1, 0),
              "kept sorted; lookups hit mappings and miss the gaps");
    m = map_of(0x10000000, 0x1000, DEVVM_DMA_F_READ, 0);
    TAP_EQ(devvm_dma_add(&t, &m, -1), DEVVM_E_LIMIT,
           "DEVVM_MAX_DMA_MAPS is the hard limit");
    devvm_dma_fini(&t);

    /*
     * Only an fd that cannot shrink is mapped: a mapping past the end of
     * its file raises SIGBUS at the first access, in the server.
     */
    devvm_dma_init(&t, 8);
    {
        int fd = memfd_create("unsealed", MFD_CLOEXEC);

        ftruncate(fd, 0x1000);
        m = map_of(0x100000, 0x100000,
                   DEVVM_DMA_F_READ | DEVVM_DMA_F_WRITE, 0);
        TAP_EQ(devvm_dma_add(&t, &m, fd), -DEVVM_EINVAL,
               "a 4 KiB memfd offered as 1 MiB is refused");
        fd = memfd_create("unsealed", MFD_CLOEXEC);
        ftruncate(fd, 0x100000);
        TAP_EQ(devvm_dma_add(&t, &m, fd), DEVVM_OK,
               "an unsealed memfd that covers the range is taken...");
        TAP_CHECK(devvm_dma_covered(&t, 0x110000, 0x1000, 1) &&
                  !devvm_dma_ptr(&t, 0x110000, 0x1000, 1),
                  "... without a mapping: DMA to it goes by message");
        m = map_of(0x300000, 0x1000, DEVVM_DMA_F_READ, 0x1000);
        fd = sealed_memfd("sealed", 0x1800);
        TAP_EQ(devvm_dma_add(&t, &m, fd), -DEVVM_EINVAL,
               "a sealed memfd shorter than offset + size is refused");
        fd = sealed_memfd("sealed", 0x2000);
        TAP_EQ(devvm_dma_add(&t, &m, fd), DEVVM_OK,
               "a sealed one that covers offset + size...");
        TAP_CHECK(devvm_dma_ptr(&t, 0x300000, 0x1000, 0) != NULL,
                  "... is mapped");
        m = map_of(0x400000, 0x1000, DEVVM_DMA_F_READ, 0);
        fd = open("/dev/null", O_RDWR | O_CLOEXEC);
        TAP_EQ(devvm_dma_add(&t, &m, fd), DEVVM_OK,
               "an fd that is not a file (/dev/null) is taken...");
        TAP_CHECK(devvm_dma_covered(&t, 0x400000, 0x1000, 0) &&
                  !devvm_dma_ptr(&t, 0x400000, 0x1000, 0),
                  "... without a mapping");
        TAP_CHECK(t.nr == 3, "three ranges in the table");
    }
    devvm_dma_fini(&t);
    return tap_done();
}
