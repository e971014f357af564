/*
 * libdevvm: the device description that a device VM publishes in the
 * description area of its shared memory (header bytes 1024..4095), for
 * its gateway.  Freestanding.  docs/devvm/device-vm.rst specifies the
 * layout; the gateway treats it as hostile input and decodes it with
 * devvm_desc_decode(), which checks every field.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef LIBDEVVM_DESC_H
#define LIBDEVVM_DESC_H

#include <stddef.h>
#include <stdint.h>

#include "libdevvm/wire.h"

#define DEVVM_DESC_MAGIC        0x53445644u     /* "DVDS" little-endian */
#define DEVVM_DESC_VERSION      1u
#define DEVVM_DESC_NAME_MAX     32u             /* bytes, NUL-padded */
#define DEVVM_DESC_NR_REGIONS   9u              /* DEVVM_PCI_NUM_REGIONS */
#define DEVVM_DESC_NR_IRQS      5u              /* DEVVM_PCI_NUM_IRQS */
#define DEVVM_DESC_SIZE         248u

/* byte offsets */
enum {
    DEVVM_DESC_OFF_MAGIC = 0,           /* u32 */
    DEVVM_DESC_OFF_VERSION = 4,         /* u16 */
    DEVVM_DESC_OFF_SIZE = 6,            /* u16: DEVVM_DESC_SIZE */
    DEVVM_DESC_OFF_INSTANCES = 8,       /* u32: channel pairs */
    DEVVM_DESC_OFF_FLAGS = 12,          /* u32: 0 */
    DEVVM_DESC_OFF_NAME = 16,           /* char[32] */
    DEVVM_DESC_OFF_DEV_FLAGS = 48,      /* u32: VFIO_DEVICE_F_* */
    DEVVM_DESC_OFF_NUM_REGIONS = 52,    /* u32 */
    DEVVM_DESC_OFF_NUM_IRQS = 56,       /* u32 */
    DEVVM_DESC_OFF_REGIONS = 64,        /* 9 x { u64 size, u32 flags,
                                         *       u32 0 } */
    DEVVM_DESC_OFF_IRQS = 208,          /* 5 x { u32 flags, u32 count } */
};

struct devvm_desc_info {
    uint32_t instances;
    char name[DEVVM_DESC_NAME_MAX + 1];
    struct devvm_device_info dev;
    struct devvm_region_info regions[DEVVM_DESC_NR_REGIONS];
    struct devvm_irq_info irqs[DEVVM_DESC_NR_IRQS];
};

/* Encode @d into @area (@size >= DEVVM_DESC_SIZE): the byte count, or
 * DEVVM_E_TRUNCATED. */
int devvm_desc_encode(uint8_t *area, size_t size,
                      const struct devvm_desc_info *d);

/*
 * Decode and check: magic, version, sizes, region and IRQ counts within
 * their limits, region flags within READ|WRITE, IRQ flags within
 * EVENTFD|MASKABLE|AUTOMASKED|NORESIZE, counts within DEVVM_MAX_IRQS, a name
 * of printable ASCII.  0, DEVVM_E_TRUNCATED, DEVVM_E_VERSION or
 * DEVVM_E_BAD_FIELD.
 */
int devvm_desc_decode(const uint8_t *area, size_t size,
                      struct devvm_desc_info *d);

/*
 * Device side, between devvm_shm_format() and READY: copy @len bytes into
 * the description area and set desc_size.  DEVVM_E_TOO_BIG when @len is
 * above DEVVM_DESC_MAX.
 */
int devvm_shm_set_desc(void *mem, const uint8_t *desc, uint32_t len);

#endif /* LIBDEVVM_DESC_H */
