/*
 * Client memory for the tests' DMA_MAP, made as QEMU's
 * memory-backend-memfd makes guest RAM: a memfd sealed against growing
 * and shrinking.  A server maps only such an fd (libdevvm/dma.h); any
 * other fd's range is reached by DMA_READ/DMA_WRITE messages.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef LIBDEVVM_TESTS_SEALED_MEMFD_H
#define LIBDEVVM_TESTS_SEALED_MEMFD_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

/* A memfd of @size bytes that can no longer change size; -1 on error. */
__attribute__((unused))
static int sealed_memfd(const char *name, size_t size)
{
    int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);

    if (fd < 0) {
        return -1;
    }
    if (ftruncate(fd, size) < 0 ||
        fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

#endif /* LIBDEVVM_TESTS_SEALED_MEMFD_H */
