/*
 * libdevvm: the device description area (desc.h).  What a device VM
 * publishes is hostile input for the gateway: every field out of range
 * must be refused, and a valid description must survive the round trip.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "libdevvm/desc.h"
#include "libdevvm/le.h"
#include "libdevvm/ring.h"
#include "tap.h"

static void sample(struct devvm_desc_info *d)
{
    memset(d, 0, sizeof(*d));
    d->instances = 4;
    strcpy(d->name, "devvm-testdev");
    d->dev.flags = DEVVM_DEVICE_F_PCI | DEVVM_DEVICE_F_RESET;
    d->dev.num_regions = DEVVM_PCI_NUM_REGIONS;
    d->dev.num_irqs = DEVVM_PCI_NUM_IRQS;
    d->regions[0].size = 0x1000;
    d->regions[0].flags = DEVVM_REGION_F_READ | DEVVM_REGION_F_WRITE;
    d->regions[2].size = 1ull << 40;
    d->regions[2].flags = DEVVM_REGION_F_READ | DEVVM_REGION_F_WRITE;
    d->regions[DEVVM_PCI_ROM_REGION].size = 0x10000;
    d->regions[DEVVM_PCI_ROM_REGION].flags = DEVVM_REGION_F_READ;
    d->regions[DEVVM_PCI_CONFIG_REGION].size = 256;
    d->regions[DEVVM_PCI_CONFIG_REGION].flags = DEVVM_REGION_F_READ |
                                               DEVVM_REGION_F_WRITE;
    d->irqs[DEVVM_PCI_INTX_IRQ].flags = DEVVM_IRQ_INFO_F_EVENTFD |
                                       DEVVM_IRQ_INFO_F_MASKABLE |
                                       DEVVM_IRQ_INFO_F_AUTOMASKED;
    d->irqs[DEVVM_PCI_INTX_IRQ].count = 1;
    d->irqs[DEVVM_PCI_MSIX_IRQ].flags = DEVVM_IRQ_INFO_F_EVENTFD |
                                       DEVVM_IRQ_INFO_F_NORESIZE;
    d->irqs[DEVVM_PCI_MSIX_IRQ].count = DEVVM_MAX_IRQS;
}

/* Encode the sample, apply @poke to the bytes, expect @want from decode. */
static void check_poke(const char *what, size_t off, unsigned width,
                       uint64_t val, int want)
{
    uint8_t area[DEVVM_DESC_SIZE];
    struct devvm_desc_info d, out;

    sample(&d);
    devvm_desc_encode(area, sizeof(area), &d);
    switch (width) {
    case 1:
        area[off] = val;
        break;
    case 2:
        devvm_st16(area + off, val);
        break;
    case 4:
        devvm_st32(area + off, val);
        break;
    default:
        devvm_st64(area + off, val);
        break;
    }
    TAP_EQ(devvm_desc_decode(area, sizeof(area), &out), want,
           "decode refuses %s", what);
}

int main(void)
{
    uint8_t area[DEVVM_DESC_SIZE], shm[DEVVM_SHM_HEADER_SIZE];
    struct devvm_desc_info d, out;
    unsigned i;
    size_t n;

    sample(&d);
    TAP_EQ(devvm_desc_encode(area, sizeof(area), &d), DEVVM_DESC_SIZE,
           "encode writes %u bytes", DEVVM_DESC_SIZE);
    TAP_EQ(devvm_desc_encode(area, DEVVM_DESC_SIZE - 1, &d),
           DEVVM_E_TRUNCATED, "encode into a short area");
    TAP_EQ(devvm_ld32(area), DEVVM_DESC_MAGIC, "magic at 0");
    TAP_EQ(devvm_ld64(area + DEVVM_DESC_OFF_REGIONS + 2 * 16), 1ull << 40,
           "region 2 size at 96");
    TAP_EQ(devvm_ld32(area + DEVVM_DESC_OFF_IRQS + 2 * 8 + 4),
           DEVVM_MAX_IRQS, "MSI-X count at 228");

    TAP_EQ(devvm_desc_decode(area, sizeof(area), &out), 0, "decode");
    TAP_CHECK(!strcmp(out.name, d.name), "name survives");
    TAP_EQ(out.instances, 4, "instances survive");
    TAP_CHECK(!memcmp(&out.dev.flags, &d.dev.flags, 12), "device info");
    for (i = 0; i < DEVVM_DESC_NR_REGIONS; i++) {
        TAP_CHECK(out.regions[i].size == d.regions[i].size &&
                  out.regions[i].flags == d.regions[i].flags &&
                  out.regions[i].index == i, "region %u survives", i);
    }
    for (i = 0; i < DEVVM_DESC_NR_IRQS; i++) {
        TAP_CHECK(out.irqs[i].count == d.irqs[i].count &&
                  out.irqs[i].flags == d.irqs[i].flags &&
                  out.irqs[i].index == i, "irq %u survives", i);
    }
    for (n = 0; n < DEVVM_DESC_SIZE; n++) {
        if (devvm_desc_decode(area, n, &out) != DEVVM_E_TRUNCATED) {
            break;
        }
    }
    TAP_EQ(n, DEVVM_DESC_SIZE, "every shorter area is truncated");

    check_poke("a bad magic", DEVVM_DESC_OFF_MAGIC, 4, 0x12345678,
               DEVVM_E_VERSION);
    check_poke("version 2", DEVVM_DESC_OFF_VERSION, 2, 2, DEVVM_E_VERSION);
    check_poke("a wrong size", DEVVM_DESC_OFF_SIZE, 2, 247,
               DEVVM_E_BAD_FIELD);
    check_poke("flags", DEVVM_DESC_OFF_FLAGS, 4, 1, DEVVM_E_BAD_FIELD);
    check_poke("0 instances", DEVVM_DESC_OFF_INSTANCES, 4, 0,
               DEVVM_E_BAD_FIELD);
    check_poke("33 instances", DEVVM_DESC_OFF_INSTANCES, 4, 33,
               DEVVM_E_BAD_FIELD);
    check_poke("a control character in the name", DEVVM_DESC_OFF_NAME + 3,
               1, '\n', DEVVM_E_BAD_FIELD);
    check_poke("a non-ASCII name", DEVVM_DESC_OFF_NAME, 1, 0xc3,
               DEVVM_E_BAD_FIELD);
    check_poke("10 regions", DEVVM_DESC_OFF_NUM_REGIONS, 4, 10,
               DEVVM_E_BAD_FIELD);
    check_poke("6 irq indexes", DEVVM_DESC_OFF_NUM_IRQS, 4, 6,
               DEVVM_E_BAD_FIELD);
    check_poke("mmap flag on a region", DEVVM_DESC_OFF_REGIONS + 8, 4,
               DEVVM_REGION_F_READ | DEVVM_REGION_F_MMAP, DEVVM_E_BAD_FIELD);
    check_poke("a region's reserved word", DEVVM_DESC_OFF_REGIONS + 12, 4, 1,
               DEVVM_E_BAD_FIELD);
    check_poke("a region of 2^48 bytes", DEVVM_DESC_OFF_REGIONS, 8,
               1ull << 48, DEVVM_E_BAD_FIELD);
    check_poke("an unknown irq flag", DEVVM_DESC_OFF_IRQS, 4, 0x100,
               DEVVM_E_BAD_FIELD);
    check_poke("2049 MSI-X vectors", DEVVM_DESC_OFF_IRQS + 2 * 8 + 4, 4,
               DEVVM_MAX_IRQS + 1, DEVVM_E_BAD_FIELD);
    /* counts beyond num_regions/num_irqs */
    sample(&d);
    d.dev.num_regions = 3;
    devvm_desc_encode(area, sizeof(area), &d);
    TAP_EQ(devvm_desc_decode(area, sizeof(area), &out), DEVVM_E_BAD_FIELD,
           "a sized region beyond num_regions");
    sample(&d);
    d.dev.num_irqs = 2;
    devvm_desc_encode(area, sizeof(area), &d);
    TAP_EQ(devvm_desc_decode(area, sizeof(area), &out), DEVVM_E_BAD_FIELD,
           "vectors beyond num_irqs");
    /* a name of exactly 32 bytes has no NUL: still decoded, terminated */
    sample(&d);
    memset(d.name, 'x', DEVVM_DESC_NAME_MAX);
    devvm_desc_encode(area, sizeof(area), &d);
    TAP_EQ(devvm_desc_decode(area, sizeof(area), &out), 0, "32-byte name");
    TAP_EQ(strlen(out.name), DEVVM_DESC_NAME_MAX, "terminated at 32");

    /* publishing into a header */
    memset(shm, 0, sizeof(shm));
    TAP_EQ(devvm_shm_set_desc(shm, area, DEVVM_DESC_SIZE), 0, "set_desc");
    TAP_EQ(devvm_ld32(shm + DEVVM_SHM_OFF_DESC_SIZE), DEVVM_DESC_SIZE,
           "desc_size set");
    TAP_CHECK(!memcmp(shm + DEVVM_DESC_OFFSET, area, DEVVM_DESC_SIZE),
              "copied at 1024");
    TAP_EQ(devvm_shm_set_desc(shm, area, DEVVM_DESC_MAX + 1),
           DEVVM_E_TOO_BIG, "more than 3072 bytes refused");
    return tap_done();
}
