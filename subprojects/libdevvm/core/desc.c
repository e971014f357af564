/*
 * libdevvm: the device description area of a device VM's shared memory.
 * Freestanding.  docs/devvm/device-vm.rst has the layout.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "libdevvm/desc.h"
#include "libdevvm/le.h"
#include "libdevvm/ring.h"

#define DEVVM_DESC_REGION_FLAGS (DEVVM_REGION_F_READ | DEVVM_REGION_F_WRITE)
#define DEVVM_DESC_IRQ_FLAGS    (DEVVM_IRQ_INFO_F_EVENTFD | \
                                 DEVVM_IRQ_INFO_F_MASKABLE | \
                                 DEVVM_IRQ_INFO_F_AUTOMASKED | \
                                 DEVVM_IRQ_INFO_F_NORESIZE)

int devvm_desc_encode(uint8_t *area, size_t size,
                      const struct devvm_desc_info *d)
{
    uint32_t i;

    if (size < DEVVM_DESC_SIZE) {
        return DEVVM_E_TRUNCATED;
    }
    __builtin_memset(area, 0, DEVVM_DESC_SIZE);
    devvm_st32(area + DEVVM_DESC_OFF_MAGIC, DEVVM_DESC_MAGIC);
    devvm_st16(area + DEVVM_DESC_OFF_VERSION, DEVVM_DESC_VERSION);
    devvm_st16(area + DEVVM_DESC_OFF_SIZE, DEVVM_DESC_SIZE);
    devvm_st32(area + DEVVM_DESC_OFF_INSTANCES, d->instances);
    for (i = 0; i < DEVVM_DESC_NAME_MAX && d->name[i]; i++) {
        area[DEVVM_DESC_OFF_NAME + i] = (uint8_t)d->name[i];
    }
    devvm_st32(area + DEVVM_DESC_OFF_DEV_FLAGS, d->dev.flags);
    devvm_st32(area + DEVVM_DESC_OFF_NUM_REGIONS, d->dev.num_regions);
    devvm_st32(area + DEVVM_DESC_OFF_NUM_IRQS, d->dev.num_irqs);
    for (i = 0; i < DEVVM_DESC_NR_REGIONS; i++) {
        uint8_t *r = area + DEVVM_DESC_OFF_REGIONS + 16 * i;

        devvm_st64(r, d->regions[i].size);
        devvm_st32(r + 8, d->regions[i].flags);
    }
    for (i = 0; i < DEVVM_DESC_NR_IRQS; i++) {
        uint8_t *q = area + DEVVM_DESC_OFF_IRQS + 8 * i;

        devvm_st32(q, d->irqs[i].flags);
        devvm_st32(q + 4, d->irqs[i].count);
    }
    return DEVVM_DESC_SIZE;
}

int devvm_desc_decode(const uint8_t *area, size_t size,
                      struct devvm_desc_info *d)
{
    uint8_t b[DEVVM_DESC_SIZE];
    uint32_t i;

    if (size < DEVVM_DESC_SIZE) {
        return DEVVM_E_TRUNCATED;
    }
    /* one private copy: every check and its use see the same bytes */
    __builtin_memcpy(b, area, sizeof(b));
    __builtin_memset(d, 0, sizeof(*d));
    if (devvm_ld32(b + DEVVM_DESC_OFF_MAGIC) != DEVVM_DESC_MAGIC ||
        devvm_ld16(b + DEVVM_DESC_OFF_VERSION) != DEVVM_DESC_VERSION) {
        return DEVVM_E_VERSION;
    }
    if (devvm_ld16(b + DEVVM_DESC_OFF_SIZE) != DEVVM_DESC_SIZE ||
        devvm_ld32(b + DEVVM_DESC_OFF_FLAGS) != 0) {
        return DEVVM_E_BAD_FIELD;
    }
    d->instances = devvm_ld32(b + DEVVM_DESC_OFF_INSTANCES);
    if (d->instances < 1 || d->instances > DEVVM_MAX_CHANNELS / 2) {
        return DEVVM_E_BAD_FIELD;
    }
    for (i = 0; i < DEVVM_DESC_NAME_MAX; i++) {
        uint8_t c = b[DEVVM_DESC_OFF_NAME + i];

        if (!c) {
            break;
        }
        if (c < 0x20 || c > 0x7e) {
            return DEVVM_E_BAD_FIELD;
        }
        d->name[i] = (char)c;
    }
    d->dev.argsz = 16;
    d->dev.flags = devvm_ld32(b + DEVVM_DESC_OFF_DEV_FLAGS);
    d->dev.num_regions = devvm_ld32(b + DEVVM_DESC_OFF_NUM_REGIONS);
    d->dev.num_irqs = devvm_ld32(b + DEVVM_DESC_OFF_NUM_IRQS);
    if (d->dev.num_regions > DEVVM_DESC_NR_REGIONS ||
        d->dev.num_irqs > DEVVM_DESC_NR_IRQS) {
        return DEVVM_E_BAD_FIELD;
    }
    for (i = 0; i < DEVVM_DESC_NR_REGIONS; i++) {
        const uint8_t *r = b + DEVVM_DESC_OFF_REGIONS + 16 * i;
        struct devvm_region_info *ri = &d->regions[i];

        ri->argsz = DEVVM_REGION_INFO_SIZE;
        ri->index = i;
        ri->size = devvm_ld64(r);
        ri->flags = devvm_ld32(r + 8);
        if ((ri->flags & ~DEVVM_DESC_REGION_FLAGS) || devvm_ld32(r + 12) ||
            (ri->size >> 48) || (i >= d->dev.num_regions && ri->size)) {
            return DEVVM_E_BAD_FIELD;
        }
    }
    for (i = 0; i < DEVVM_DESC_NR_IRQS; i++) {
        const uint8_t *q = b + DEVVM_DESC_OFF_IRQS + 8 * i;
        struct devvm_irq_info *qi = &d->irqs[i];

        qi->argsz = 16;
        qi->index = i;
        qi->flags = devvm_ld32(q);
        qi->count = devvm_ld32(q + 4);
        if ((qi->flags & ~DEVVM_DESC_IRQ_FLAGS) ||
            qi->count > DEVVM_MAX_IRQS ||
            (i >= d->dev.num_irqs && qi->count)) {
            return DEVVM_E_BAD_FIELD;
        }
    }
    return 0;
}

int devvm_shm_set_desc(void *mem, const uint8_t *desc, uint32_t len)
{
    uint8_t *h = mem;

    if (len > DEVVM_DESC_MAX) {
        return DEVVM_E_TOO_BIG;
    }
    __builtin_memcpy(h + DEVVM_DESC_OFFSET, desc, len);
    __atomic_thread_fence(__ATOMIC_RELEASE);
    devvm_st32(h + DEVVM_SHM_OFF_DESC_SIZE, len);
    return 0;
}
