/*
 * devvm-test-client: libdevvm's client role against any vfio-user server,
 * for interoperability tests.  Prints TAP.
 *
 *   devvm-test-client SOCKET_PATH [--expect-devvm|--expect-plain]
 *
 * Proposes the devvm extension (with the ring transport) and checks that
 * the server negotiated it (--expect-devvm) or fell back to plain
 * vfio-user (--expect-plain).  Then, on any PCI device: DEVICE_GET_INFO,
 * GET_REGION_INFO of every region, GET_IRQ_INFO of every IRQ index,
 * config space (vendor and device ID), an out-of-range access that must
 * fail without breaking the connection, SET_IRQS (an eventfd for INTx
 * and back), DMA_MAP of a memfd and DMA_UNMAP, DEVICE_RESET when the
 * device supports it.  Devices it recognises by their IDs get more:
 *
 *   494f:0dc8  libvfio-user's samples/gpio-pci-idio-16.c: BAR2 offset 0
 *              reads pin++ / 3 in its first byte, a fresh server counts
 *              0, 0, 0, 1, 1, 1, 2, ...
 *   1af4:10f0  devvm-testdev: BAR0 ID register, scratch registers of
 *              every width, posted writes, the reset counter
 *
 * Exit status 0 only if every check passed.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "libdevvm/client.h"
#include "sealed-memfd.h"
#include "tap.h"

#define TIMEOUT_MS          5000

#define GPIO_VENDOR_ID      0x494f
#define GPIO_DEVICE_ID      0x0dc8
#define GPIO_BAR            2
#define GPIO_READS          7

#define TS_VENDOR_ID        0x1af4
#define TS_DEVICE_ID        0x10f1
#define TS_REG_ID           0x000
#define TS_REG_SCRATCH64    0x010
#define TS_REG_SCRATCH      0x020
#define TS_REG_RESETS       0x0d0
#define TS_ID               0x7e570001u

#define DMA_ADDR            0x10000000ull
#define DMA_SIZE            0x4000ull

static const char *const region_names[DEVVM_PCI_NUM_REGIONS] = {
    "BAR0", "BAR1", "BAR2", "BAR3", "BAR4", "BAR5", "ROM", "config", "VGA",
};
static const char *const irq_names[DEVVM_PCI_NUM_IRQS] = {
    "INTx", "MSI", "MSI-X", "ERR", "REQ",
};

struct probe {
    struct devvm_client c;
    struct devvm_device_info di;
    struct devvm_region_info regions[DEVVM_MAX_REGIONS];
    struct devvm_irq_info irqs[DEVVM_MAX_IRQ_TYPES];
    uint16_t vendor, device;
};

static const char *region_name(uint32_t i)
{
    return i < DEVVM_PCI_NUM_REGIONS ? region_names[i] : "device-specific";
}

static const char *irq_name(uint32_t i)
{
    return i < DEVVM_PCI_NUM_IRQS ? irq_names[i] : "device-specific";
}

/* The error of a failed call, for a diagnostic line. */
static void why(struct probe *p, int ret)
{
    if (ret == DEVVM_E_PEER) {
        printf("#   server answered errno %d (%s)\n", p->c.peer_errno,
               strerror(p->c.peer_errno));
    } else if (ret) {
        printf("#   %s\n", devvm_strerror(ret));
    }
}

static void negotiate(struct probe *p, const char *expect)
{
    struct devvm_caps want, *got = &p->c.caps;
    int ret;

    devvm_caps_default(&want);
    want.max_msg_fds = DEVVM_MAX_FDS;
    want.max_data_xfer_size = DEVVM_MAX_XFER;
    want.max_dma_maps = DEVVM_MAX_DMA_MAPS;
    want.write_multiple = 1;
    want.devvm = 1;
    want.devvm_version = DEVVM_EXT_VERSION;
    want.devvm_ring = 1;
    ret = devvm_client_negotiate(&p->c, &want);
    if (!TAP_CHECK(ret == DEVVM_OK, "VERSION: negotiated vfio-user 0.%u",
                   p->c.minor)) {
        why(p, ret);
        return;
    }
    printf("# server: max_msg_fds %u, max_data_xfer_size %u, "
           "max_dma_maps %u, pgsizes 0x%llx, write_multiple %u\n",
           got->max_msg_fds, got->max_data_xfer_size, got->max_dma_maps,
           (unsigned long long)got->pgsizes, got->write_multiple);
    printf("# server: devvm %u (version %u, ring %u)\n", got->devvm,
           got->devvm_version, got->devvm_ring);
    if (!strcmp(expect, "devvm")) {
        TAP_CHECK(got->devvm && got->devvm_version == DEVVM_EXT_VERSION,
                  "VERSION: the devvm extension is negotiated");
    } else if (!strcmp(expect, "plain")) {
        TAP_CHECK(!got->devvm && !got->devvm_ring,
                  "VERSION: plain vfio-user, no devvm extension");
    }
}

static void describe(struct probe *p)
{
    uint32_t i;
    int ret, fd;

    ret = devvm_client_device_info(&p->c, &p->di);
    if (!TAP_CHECK(ret == DEVVM_OK && (p->di.flags & DEVVM_DEVICE_F_PCI) &&
                   p->di.num_regions > DEVVM_PCI_CONFIG_REGION,
                   "DEVICE_GET_INFO: a PCI device with config space")) {
        why(p, ret);
        p->di.num_regions = p->di.num_irqs = 0;
        return;
    }
    printf("# device: flags 0x%x, %u regions, %u IRQ indexes\n",
           p->di.flags, p->di.num_regions, p->di.num_irqs);

    for (i = 0; i < p->di.num_regions; i++) {
        struct devvm_region_info *r = &p->regions[i];
        uint32_t a;

        ret = devvm_client_region_info(&p->c, i, r, &fd);
        if (!TAP_CHECK(ret == DEVVM_OK && r->index == i,
                       "GET_REGION_INFO %u (%s)", i, region_name(i))) {
            why(p, ret);
            memset(r, 0, sizeof(*r));
            continue;
        }
        printf("#   size 0x%llx, offset 0x%llx, flags 0x%x%s%s%s%s, "
               "%u sparse areas, %s\n",
               (unsigned long long)r->size, (unsigned long long)r->offset,
               r->flags, r->flags & DEVVM_REGION_F_READ ? " read" : "",
               r->flags & DEVVM_REGION_F_WRITE ? " write" : "",
               r->flags & DEVVM_REGION_F_MMAP ? " mmap" : "",
               r->flags & DEVVM_REGION_F_CAPS ? " caps" : "",
               r->nr_areas, fd >= 0 ? "with an fd" : "no fd");
        for (a = 0; a < r->nr_areas; a++) {
            printf("#   sparse area 0x%llx+0x%llx\n",
                   (unsigned long long)r->areas[a].offset,
                   (unsigned long long)r->areas[a].size);
        }
        if (fd >= 0) {
            close(fd);
        }
    }

    for (i = 0; i < p->di.num_irqs; i++) {
        struct devvm_irq_info *q = &p->irqs[i];

        ret = devvm_client_irq_info(&p->c, i, q);
        if (!TAP_CHECK(ret == DEVVM_OK, "GET_IRQ_INFO %u (%s)", i,
                       irq_name(i))) {
            why(p, ret);
            memset(q, 0, sizeof(*q));
            continue;
        }
        printf("#   count %u, flags 0x%x\n", q->count, q->flags);
    }
}

static void config_space(struct probe *p)
{
    const struct devvm_region_info *cfg = &p->regions[DEVVM_PCI_CONFIG_REGION];
    uint8_t id[4], hdr[64];
    uint32_t class;
    int ret;

    ret = devvm_client_region_read(&p->c, DEVVM_PCI_CONFIG_REGION, 0, id, 4);
    if (!TAP_CHECK(ret == DEVVM_OK, "REGION_READ config space 0..3")) {
        why(p, ret);
        return;
    }
    p->vendor = id[0] | id[1] << 8;
    p->device = id[2] | id[3] << 8;
    printf("# vendor:device %04x:%04x\n", p->vendor, p->device);
    TAP_CHECK(p->vendor != 0xffff && p->vendor != 0,
              "config space: a valid vendor ID (0x%04x)", p->vendor);

    ret = devvm_client_region_read(&p->c, DEVVM_PCI_CONFIG_REGION, 0, hdr,
                                   sizeof(hdr));
    if (TAP_CHECK(ret == DEVVM_OK && hdr[0] == id[0] && hdr[1] == id[1],
                  "REGION_READ of the 64-byte config header")) {
        class = hdr[9] | hdr[10] << 8 | hdr[11] << 16;
        printf("# class 0x%06x, header type 0x%02x, interrupt pin %u, "
               "subsystem %04x:%04x\n", class, hdr[14], hdr[0x3d],
               hdr[0x2c] | hdr[0x2d] << 8, hdr[0x2e] | hdr[0x2f] << 8);
    } else {
        why(p, ret);
    }

    /* a refused access must leave the connection usable */
    ret = devvm_client_region_read(&p->c, DEVVM_PCI_CONFIG_REGION,
                                   cfg->size, id, 4);
    if (TAP_CHECK(ret == DEVVM_E_PEER,
                  "REGION_READ past the end of config space is refused")) {
        printf("#   errno %d (%s)\n", p->c.peer_errno,
               strerror(p->c.peer_errno));
    } else {
        why(p, ret);
    }
    ret = devvm_client_region_read(&p->c, DEVVM_PCI_CONFIG_REGION, 0, id, 2);
    TAP_CHECK(ret == DEVVM_OK && (id[0] | id[1] << 8) == p->vendor,
              "... and the connection carries on");
}

static void irqs(struct probe *p)
{
    const uint32_t set = DEVVM_IRQ_SET_DATA_EVENTFD |
                         DEVVM_IRQ_SET_ACTION_TRIGGER;
    int efd, ret;

    if (p->di.num_irqs <= DEVVM_PCI_INTX_IRQ ||
        !p->irqs[DEVVM_PCI_INTX_IRQ].count ||
        !(p->irqs[DEVVM_PCI_INTX_IRQ].flags & DEVVM_IRQ_INFO_F_EVENTFD)) {
        printf("# no INTx with eventfds: SET_IRQS not tried\n");
        return;
    }
    efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    ret = devvm_client_set_irqs(&p->c, set, DEVVM_PCI_INTX_IRQ, 0, 1, &efd,
                                NULL);
    if (!TAP_CHECK(ret == DEVVM_OK, "SET_IRQS: an eventfd for INTx")) {
        why(p, ret);
    }
    close(efd);
    ret = devvm_client_set_irqs(&p->c, DEVVM_IRQ_SET_DATA_NONE |
                                DEVVM_IRQ_SET_ACTION_TRIGGER,
                                DEVVM_PCI_INTX_IRQ, 0, 0, NULL, NULL);
    if (!TAP_CHECK(ret == DEVVM_OK, "SET_IRQS: INTx disabled again")) {
        why(p, ret);
    }
}

static void dma(struct probe *p)
{
    struct devvm_dma_map map = {
        .argsz = 32,
        .flags = DEVVM_DMA_F_READ | DEVVM_DMA_F_WRITE,
        .offset = 0,
        .addr = DMA_ADDR,
        .size = DMA_SIZE,
    };
    int fd, ret;

    fd = sealed_memfd("devvm-test-client-dma", DMA_SIZE);
    if (fd < 0) {
        TAP_CHECK(0, "memfd for DMA_MAP: %s", strerror(errno));
        return;
    }
    ret = devvm_client_dma_map(&p->c, &map, fd);
    close(fd);
    if (!TAP_CHECK(ret == DEVVM_OK, "DMA_MAP of a memfd at 0x%llx+0x%llx",
                   DMA_ADDR, DMA_SIZE)) {
        why(p, ret);
        return;
    }
    ret = devvm_client_dma_unmap(&p->c, DMA_ADDR, DMA_SIZE, 0);
    if (!TAP_CHECK(ret == DEVVM_OK, "DMA_UNMAP of the same range")) {
        why(p, ret);
    }
}

static void reset(struct probe *p)
{
    int ret;

    if (!(p->di.flags & DEVVM_DEVICE_F_RESET)) {
        printf("# the device does not support DEVICE_RESET\n");
        return;
    }
    ret = devvm_client_reset(&p->c);
    if (!TAP_CHECK(ret == DEVVM_OK, "DEVICE_RESET")) {
        why(p, ret);
    }
}

/* libvfio-user's gpio-pci-idio-16 sample */
static void gpio(struct probe *p)
{
    const struct devvm_region_info *bar = &p->regions[GPIO_BAR];
    uint8_t v[GPIO_READS];
    int i, j, ok = 1, ret = DEVVM_OK;

    TAP_CHECK(bar->size == 0x100 &&
              (bar->flags & (DEVVM_REGION_F_READ | DEVVM_REGION_F_WRITE)) ==
              (DEVVM_REGION_F_READ | DEVVM_REGION_F_WRITE),
              "BAR2 is a 256-byte read/write region");
    for (i = 0; i < GPIO_READS && !ret; i++) {
        ret = devvm_client_region_read(&p->c, GPIO_BAR, 0, &v[i], 1);
        ok &= !ret && v[i] == i / 3;
    }
    if (!TAP_CHECK(ok, "BAR2 offset 0 reads 0, 0, 0, 1, 1, 1, 2")) {
        why(p, ret);
        printf("#   got");
        for (j = 0; j < i; j++) {
            printf(" %u", v[j]);
        }
        printf("\n");
    }
    ret = devvm_client_region_write(&p->c, GPIO_BAR, 0, &v[0], 1, 0);
    if (!TAP_CHECK(ret == DEVVM_OK, "REGION_WRITE to BAR2")) {
        why(p, ret);
    }
}

static uint64_t bar0_read(struct probe *p, uint64_t off, uint32_t n,
                          int *err)
{
    uint64_t v = 0;
    int ret = devvm_client_region_read(&p->c, DEVVM_PCI_BAR0_REGION, off, &v,
                                       n);

    if (ret && !*err) {
        *err = ret;
    }
    return v;
}

/* devvm-testdev (contrib/devvm/testdev/testdev.h) */
static void testdev_device(struct probe *p)
{
    uint64_t pat, v, resets;
    uint32_t n;
    int err = 0, ok = 1, ret;

    v = bar0_read(p, TS_REG_ID, 4, &err);
    if (!TAP_CHECK(!err && v == TS_ID, "BAR0 ID register "
                   "reads 0x%08x", TS_ID)) {
        why(p, err);
        printf("#   got 0x%llx\n", (unsigned long long)v);
    }
    for (n = 1; n <= 8; n *= 2) {
        pat = 0x8877665544332211ull & (~0ull >> (64 - 8 * n));
        uint32_t off = n == 8 ? TS_REG_SCRATCH64 : TS_REG_SCRATCH + 2 * n;

        ret = devvm_client_region_write(&p->c, DEVVM_PCI_BAR0_REGION, off,
                                        &pat, n, 0);
        v = bar0_read(p, off, n, &err);
        ok &= !ret && v == pat;
        err = err ? err : ret;
    }
    if (!TAP_CHECK(ok, "scratch registers of 1, 2, 4 "
                   "and 8 bytes read back")) {
        why(p, err);
    }
    pat = 0xcafe;
    ret = devvm_client_region_write(&p->c, DEVVM_PCI_BAR0_REGION, 0x100, &pat,
                                    4, 1);
    v = bar0_read(p, 0x100, 4, &err);
    TAP_CHECK(!ret && !err && v == pat,
              "a read after a posted write sees it");
    pat = 0;
    devvm_client_region_write(&p->c, DEVVM_PCI_BAR0_REGION, TS_REG_ID, &pat,
                              4, 0);
    v = bar0_read(p, TS_REG_ID, 4, &err);
    TAP_CHECK(v == TS_ID, "the ID register is read-only");

    resets = bar0_read(p, TS_REG_RESETS, 4, &err);
    ret = devvm_client_reset(&p->c);
    v = bar0_read(p, TS_REG_RESETS, 4, &err);
    TAP_CHECK(!ret && !err && v == resets + 1 &&
              bar0_read(p, 0x100, 4, &err) == 0,
              "DEVICE_RESET counts and clears scratch");
}

static void usage(FILE *f)
{
    fprintf(f, "usage: devvm-test-client SOCKET_PATH "
            "[--expect-devvm|--expect-plain]\n");
}

int main(int argc, char **argv)
{
    static struct probe p;
    const char *path = NULL, *expect = "";
    int i, fd;

    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--expect-devvm")) {
            expect = "devvm";
        } else if (!strcmp(argv[i], "--expect-plain")) {
            expect = "plain";
        } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else if (argv[i][0] != '-' && !path) {
            path = argv[i];
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (!path) {
        usage(stderr);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);

    fd = devvm_sock_connect(path);
    if (!TAP_CHECK(fd >= 0, "connect to %s", path)) {
        printf("#   %s\n", devvm_strerror(fd));
        return tap_done();
    }
    devvm_client_init(&p.c, fd, TIMEOUT_MS, NULL, NULL);
    negotiate(&p, expect);
    if (p.c.broken) {
        close(fd);
        return tap_done();
    }
    describe(&p);
    config_space(&p);
    if (p.vendor == GPIO_VENDOR_ID && p.device == GPIO_DEVICE_ID) {
        printf("# libvfio-user's gpio-pci-idio-16 sample\n");
        gpio(&p);
    } else if (p.vendor == TS_VENDOR_ID && p.device == TS_DEVICE_ID) {
        printf("# devvm-testdev's device\n");
        testdev_device(&p);
    }
    irqs(&p);
    dma(&p);
    reset(&p);
    TAP_CHECK(!p.c.broken, "the connection is intact at the end");
    if (p.c.broken) {
        printf("#   %s\n", devvm_strerror(p.c.broken));
    }
    close(fd);
    return tap_done();
}
