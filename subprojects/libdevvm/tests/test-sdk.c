/*
 * Unit tests of the SDK core (sdk/sdk.c, sdk/fmt.c), against a recording
 * runtime: description checks, config space bytes and emulation, region
 * and IRQ info, access splitting, memory windows, MSI-X table
 * protection, the helpers, the device type's data, DMA in pieces, and
 * devvm_vsnprintf.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "../sdk/sdk-impl.h"
#include "libdevvm/le.h"
#include "tap.h"

/* ---- a recording device and runtime ------------------------------------- */

struct call {
    char what;              /* 'r' read, 'w' write, 'c' config_read, ... */
    unsigned bar;
    uint64_t off;
    unsigned size;
    uint64_t value;
};

static struct call calls[64];
static unsigned ncalls;
static unsigned resets, polls;
static char last_log[300];
static struct { unsigned index, vector, action, n; } last_irq;
static struct { int write; uint64_t addr; size_t len; unsigned n; } last_dma;

static void record(char what, unsigned bar, uint64_t off, unsigned size,
                   uint64_t value)
{
    if (ncalls < sizeof(calls) / sizeof(calls[0])) {
        calls[ncalls++] = (struct call){ what, bar, off, size, value };
    }
}

/* what a read of @size at @off returns: byte i is (off + i) ^ 0xa0 */
static uint64_t pattern(uint64_t off, unsigned size)
{
    uint64_t v = 0;
    unsigned i;

    for (i = 0; i < size; i++) {
        v |= (uint64_t)(((off + i) ^ 0xa0) & 0xff) << (8 * i);
    }
    return v;
}

static uint64_t dev_read(struct devvm_dev *dev, unsigned bar, uint64_t off,
                         unsigned size)
{
    record('r', bar, off, size, 0);
    return pattern(off, size);
}

static void dev_write(struct devvm_dev *dev, unsigned bar, uint64_t off,
                      unsigned size, uint64_t value)
{
    record('w', bar, off, size, value);
}

static uint32_t dev_config_read(struct devvm_dev *dev, uint32_t off,
                                unsigned size)
{
    record('c', 7, off, size, 0);
    return (uint32_t)pattern(off, size);
}

static void dev_config_write(struct devvm_dev *dev, uint32_t off,
                             unsigned size, uint32_t value)
{
    record('C', 7, off, size, value);
}

static void dev_reset(struct devvm_dev *dev)
{
    resets++;
}

static void dev_poll(struct devvm_dev *dev)
{
    polls++;
}

/*
 * Client memory: CLIENT_SIZE bytes at bus address CLIENT_ADDR.  The
 * runtime's DMA takes pieces of at most PIECE bytes and fails the one at
 * failing_addr; its dma_map (rt_mapped) maps [CLIENT_ADDR, mapped_end).
 */
#define CLIENT_ADDR 0x100000000ull
#define CLIENT_SIZE (4u << 20)
#define PIECE       (1u << 20)

static uint8_t *client;
static uint64_t failing_addr, mapped_end;
static unsigned maps;

static int client_has(uint64_t addr, size_t len, uint64_t end)
{
    return addr >= CLIENT_ADDR && addr < end && len <= end - addr;
}

static int rt_dma(struct devvm_dev *dev, int write, uint64_t addr, void *buf,
                  size_t len)
{
    uint8_t *p = client + (addr - CLIENT_ADDR);

    last_dma.write = write;
    last_dma.addr = addr;
    last_dma.len = len;
    last_dma.n++;
    if (len > PIECE || addr == failing_addr) {
        return -DEVVM_EIO;
    }
    if (!client_has(addr, len, CLIENT_ADDR + CLIENT_SIZE)) {
        return -DEVVM_EFAULT;
    }
    memcpy(write ? p : buf, write ? buf : p, len);
    return 0;
}

static void *rt_dma_map(struct devvm_dev *dev, uint64_t addr, size_t len,
                        int write)
{
    maps++;
    return client_has(addr, len, mapped_end) ?
           client + (addr - CLIENT_ADDR) : NULL;
}

static void rt_irq(struct devvm_dev *dev, unsigned index, unsigned vector,
                   unsigned action)
{
    last_irq.index = index;
    last_irq.vector = vector;
    last_irq.action = action;
    last_irq.n++;
}

static void rt_log(struct devvm_dev *dev, const char *line, size_t len)
{
    memcpy(last_log, line, len);
    last_log[len] = 0;
}

static const struct devvm_rt_ops rt = {
    .dma = rt_dma,
    .dma_max = PIECE,
    .irq = rt_irq,
    .log = rt_log,
};

static const struct devvm_rt_ops rt_mapped = {
    .dma = rt_dma,
    .dma_max = PIECE,
    .dma_map = rt_dma_map,
    .irq = rt_irq,
    .log = rt_log,
};

static const uint8_t vendor_body[6] = { 0, 0, 6, 0x11, 0x22, 0x33 };
static const uint8_t other_body[8] = { 0, 0, 1, 2, 3, 4, 5, 6 };
static const struct devvm_capability sample_caps[] = {
    { 0x09, 6, vendor_body },
    { 0x13, 8, other_body },
};

/*
 * BAR0 32-bit 4 KiB, BAR1 I/O 32 bytes, BAR2/3 64-bit prefetchable
 * 16 KiB with a window at 4 KiB..8 KiB, BAR4 32-bit 8 KiB with MSI-X
 * (4 vectors, table at 0, PBA at 0x1000), a 2 KiB ROM, INTB, 4 MSI
 * vectors, a vendor capability of 6 bytes and one of 8.
 */
static struct devvm_device sample(void)
{
    struct devvm_device d = {
        .name = "sample",
        .vendor_id = 0x1234,
        .device_id = 0x5678,
        .subsystem_vendor_id = 0x9abc,
        .subsystem_id = 0xdef0,
        .revision = 0x42,
        .class_code = 0x123456,
        .bars = {
            [0] = { DEVVM_BAR_MEM32, 0, 0x1000, 0, 0 },
            [1] = { DEVVM_BAR_IO, 0, 32, 0, 0 },
            [2] = { DEVVM_BAR_MEM64, DEVVM_BAR_F_PREFETCH, 0x4000, 0x1000,
                    0x1000 },
            [4] = { DEVVM_BAR_MEM32, 0, 0x2000, 0, 0 },
        },
        .rom_size = 2048,
        .intx_pin = 2,
        .msi_vectors = 4,
        .msix_vectors = 4,
        .msix_bar = 4,
        .msix_table_offset = 0,
        .msix_pba_offset = 0x1000,
        .caps = sample_caps,
        .nr_caps = 2,
        .read = dev_read,
        .write = dev_write,
        .reset = dev_reset,
        .poll = dev_poll,
    };
    return d;
}

static uint8_t window[0x1000];

static void instance(struct devvm_dev *dev, const struct devvm_device *d)
{
    void *mem[DEVVM_NUM_BARS] = { [2] = window };

    TAP_EQ(devvm_dev_init(dev, d, NULL, NULL, mem, &rt, NULL), 0,
           "an instance of %s", d->name);
    ncalls = 0;
}

/* ---- description checks ------------------------------------------------- */

static void refused(struct devvm_device d, const char *what)
{
    const char *why = NULL;
    int ret = devvm_desc_check(&d, &why);

    TAP_CHECK(ret == -DEVVM_EINVAL && why && *why, "refused: %s (%s)", what,
              why ? why : "no reason");
}

static void test_desc_check(void)
{
    static const struct devvm_capability nine[9] = {
        { 0x09, 2, NULL }, { 0x09, 2, NULL }, { 0x09, 2, NULL },
        { 0x09, 2, NULL }, { 0x09, 2, NULL }, { 0x09, 2, NULL },
        { 0x09, 2, NULL }, { 0x09, 2, NULL }, { 0x09, 2, NULL },
    };
    static const uint8_t big[200];
    static const struct devvm_capability too_long[] = {
        { 0x09, 200, big },
    };
    static const struct devvm_capability msi_cap[] = { { 0x05, 2, NULL } };
    struct devvm_device d = sample();
    const char *why;

    TAP_EQ(devvm_desc_check(&d, &why), 0, "the sample description is fine");

    d = sample(); d.name = NULL;
    refused(d, "no name");
    d = sample(); d.bars[0].size = 0x1800;
    refused(d, "BAR size not a power of two");
    d = sample(); d.bars[0].size = 8;
    refused(d, "32-bit BAR under 16 bytes");
    d = sample(); d.bars[0].size = 1ull << 32;
    refused(d, "32-bit BAR of 4 GiB");
    d = sample(); d.bars[1].size = 512;
    refused(d, "I/O BAR of 512 bytes");
    d = sample(); d.bars[1].size = 2;
    refused(d, "I/O BAR of 2 bytes");
    d = sample(); d.bars[1].flags = DEVVM_BAR_F_PREFETCH;
    refused(d, "prefetchable I/O BAR");
    d = sample(); d.bars[5] = d.bars[2];
    d.bars[2] = (struct devvm_bar){ 0 };
    refused(d, "64-bit BAR in slot 5");
    d = sample(); d.bars[3] = (struct devvm_bar){ DEVVM_BAR_MEM32, 0, 16 };
    refused(d, "64-bit BAR whose upper slot is used");
    d = sample(); d.bars[2].mem_offset = 0x800;
    refused(d, "memory window not page-aligned");
    d = sample(); d.bars[2].mem_offset = 0x3000; d.bars[2].mem_size = 0x2000;
    refused(d, "memory window past the end of its BAR");
    d = sample(); d.bars[1].mem_size = 0x1000;
    refused(d, "memory window in an I/O BAR");
    d = sample(); d.bars[0].type = 9;
    refused(d, "unknown BAR type");
    d = sample(); d.bars[5].size = 16;
    refused(d, "an unused BAR with a size");
    d = sample(); d.msi_vectors = 3;
    refused(d, "3 MSI vectors");
    d = sample(); d.msi_vectors = 64;
    refused(d, "64 MSI vectors");
    d = sample(); d.msix_vectors = 2049;
    refused(d, "2049 MSI-X vectors");
    d = sample(); d.msix_table_offset = 0x1ff0;
    refused(d, "MSI-X table past the end of its BAR");
    d = sample(); d.msix_pba_offset = 0x2000;
    refused(d, "MSI-X PBA past the end of its BAR");
    d = sample(); d.msix_pba_offset = 0x20;
    refused(d, "MSI-X PBA inside the table");
    d = sample(); d.msix_pba_offset = 0x1004;
    refused(d, "MSI-X PBA not 8-byte aligned");
    d = sample(); d.msix_bar = 1;
    refused(d, "MSI-X in an I/O BAR");
    d = sample(); d.msix_bar = 3;
    refused(d, "MSI-X in the upper half of a 64-bit BAR");
    d = sample(); d.msix_bar = 2; d.msix_table_offset = 0x1800;
    d.msix_pba_offset = 0;
    refused(d, "MSI-X table inside a memory window");
    d = sample(); d.caps = nine; d.nr_caps = 9;
    refused(d, "9 capabilities");
    d = sample(); d.caps = too_long; d.nr_caps = 1;
    refused(d, "a capability too long for config space");
    d = sample(); d.caps = msi_cap; d.nr_caps = 1;
    refused(d, "an MSI capability in caps");
    d = sample(); d.rom_size = 1024;
    refused(d, "a 1 KiB ROM");
    d = sample(); d.rom_size = 3072;
    refused(d, "a ROM size not a power of two");
    d = sample(); d.read = NULL; d.rom_size = 0;
    refused(d, "BARs that need read, without it");
    d = sample(); d.write = NULL;
    refused(d, "BARs that need write, without it");
    d = sample(); d.intx_pin = 5;
    refused(d, "interrupt pin 5");

    /* a device whose only BAR is all memory needs no callbacks */
    d = (struct devvm_device){ .name = "mem" };
    d.bars[0] = (struct devvm_bar){ DEVVM_BAR_MEM32, 0, 0x2000, 0, 0x2000 };
    TAP_EQ(devvm_desc_check(&d, &why), 0,
           "a BAR that is all memory window needs no read or write");
}

/* ---- config space ------------------------------------------------------- */

static uint32_t cfg_read(struct devvm_dev *dev, uint32_t off, unsigned size)
{
    uint8_t b[4] = { 0 };

    devvm_dev_region_read(dev, DEVVM_PCI_CONFIG_REGION, off, b, size);
    return devvm_ld32(b);
}

static void cfg_write(struct devvm_dev *dev, uint32_t off, unsigned size,
                      uint32_t v)
{
    uint8_t b[4];

    devvm_st32(b, v);
    devvm_dev_region_write(dev, DEVVM_PCI_CONFIG_REGION, off, b, size);
}

static void test_config(void)
{
    static const uint8_t want[0x70] = {
        /* 0x00: IDs, command, status (capabilities), revision, class */
        0x34, 0x12, 0x78, 0x56, 0x00, 0x00, 0x10, 0x00,
        0x42, 0x56, 0x34, 0x12, 0x00, 0x00, 0x00, 0x00,
        /* 0x10: BAR0 mem32, BAR1 I/O, BAR2 mem64 prefetchable, BAR3 */
        0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
        0x0c, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        /* 0x20: BAR4 mem32, BAR5, cardbus, subsystem */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0xbc, 0x9a, 0xf0, 0xde,
        /* 0x30: ROM BAR, capabilities at 0x40, INTB */
        0x00, 0x00, 0x00, 0x00, 0x40, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00,
        /* 0x40: MSI, next 0x50, 64-bit, 4 vectors capable */
        0x05, 0x50, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        /* 0x50: MSI-X, next 0x60, 4 vectors, table BIR 4 at 0, PBA 0x1000 */
        0x11, 0x60, 0x03, 0x00, 0x04, 0x00, 0x00, 0x00,
        0x04, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        /* 0x60: vendor (6 bytes, next at 0x68), then id 0x13 (8 bytes) */
        0x09, 0x68, 0x06, 0x11, 0x22, 0x33, 0x00, 0x00,
        0x13, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06,
    };
    struct devvm_device d = sample();
    struct devvm_dev dev;
    uint8_t cfg[256];
    unsigned i, bad = 0;

    instance(&dev, &d);
    TAP_EQ(devvm_dev_region_read(&dev, DEVVM_PCI_CONFIG_REGION, 0, cfg, 256),
           0, "config space reads as a whole");
    for (i = 0; i < sizeof(cfg); i++) {
        uint8_t w = i < sizeof(want) ? want[i] : 0;

        if (cfg[i] != w) {
            printf("#   config 0x%02x: 0x%02x, want 0x%02x\n", i, cfg[i], w);
            bad++;
        }
    }
    TAP_EQ(bad, 0, "config space bytes of the sample description");
    TAP_EQ(ncalls, 0, "without config callbacks the device is not called");

    cfg_write(&dev, 0x04, 2, 0xffff);
    TAP_EQ(cfg_read(&dev, 0x04, 2), 0x0547,
           "command keeps I/O, memory, master, parity, SERR, INTx disable");
    TAP_EQ(devvm_bus_master(&dev), 1, "bus master on");
    cfg_write(&dev, 0x04, 1, 0x03);
    TAP_EQ(cfg_read(&dev, 0x04, 2), 0x0503, "a byte write of command");
    TAP_EQ(devvm_bus_master(&dev), 0, "bus master off");
    cfg_write(&dev, 0x06, 2, 0xffff);
    TAP_EQ(cfg_read(&dev, 0x06, 2), 0x0010, "status is read-only");
    cfg_write(&dev, 0x10, 4, 0xffffffff);
    cfg_write(&dev, 0x18, 4, 0xffffffff);
    TAP_EQ(cfg_read(&dev, 0x10, 4), 0, "BAR0 reads its type bits only");
    TAP_EQ(cfg_read(&dev, 0x18, 4), 0xc, "BAR2 reads its type bits only");
    cfg_write(&dev, 0x30, 4, 0xffffffff);
    TAP_EQ(cfg_read(&dev, 0x30, 4), 0xfffff801, "the ROM BAR sizes (2 KiB)");
    cfg_write(&dev, 0x30, 4, 0x12345001);
    TAP_EQ(cfg_read(&dev, 0x30, 4), 0x12345001, "the ROM BAR takes an address");
    cfg_write(&dev, 0x00, 4, 0);
    cfg_write(&dev, 0x42, 2, 0xffff);
    cfg_write(&dev, 0x60, 4, 0xffffffff);
    TAP_EQ(cfg_read(&dev, 0x00, 4), 0x56781234, "IDs are read-only");
    TAP_EQ(cfg_read(&dev, 0x42, 2), 0x84, "MSI is the client's to emulate");
    TAP_EQ(cfg_read(&dev, 0x60, 4), 0x11066809,
           "a capability without config_write keeps its contents");

    devvm_dev_reset(&dev);
    TAP_EQ(cfg_read(&dev, 0x04, 2), 0, "reset clears command");
    TAP_EQ(cfg_read(&dev, 0x30, 4), 0, "reset clears the ROM BAR");
    TAP_EQ(resets, 1, "reset calls the device");
}

static void test_config_callbacks(void)
{
    struct devvm_device d = sample();
    struct devvm_dev dev;
    uint32_t v;

    d.config_read = dev_config_read;
    d.config_write = dev_config_write;
    instance(&dev, &d);

    v = cfg_read(&dev, 0x60, 4);
    TAP_EQ(v, 0x0000 | (pattern(0x62, 1) << 16) | (pattern(0x63, 1) << 24) |
              0x6809, "ID and next from the SDK, the body from the device");
    TAP_CHECK(ncalls == 1 && calls[0].off == 0x62 && calls[0].size == 2,
              "a mixed dword: the device's aligned part to config_read");
    ncalls = 0;
    v = cfg_read(&dev, 0x80, 4);
    TAP_CHECK(ncalls == 1 && calls[0].what == 'c' && calls[0].off == 0x80 &&
              calls[0].size == 4 && v == (uint32_t)pattern(0x80, 4),
              "free space goes to config_read as one dword");
    ncalls = 0;
    cfg_read(&dev, 0x40, 4);
    cfg_read(&dev, 0x54, 4);
    TAP_EQ(ncalls, 0, "MSI and MSI-X are not the device's");
    cfg_write(&dev, 0x64, 2, 0xbeef);
    TAP_CHECK(ncalls == 1 && calls[0].what == 'C' && calls[0].off == 0x64 &&
              calls[0].size == 2 && calls[0].value == 0xbeef,
              "a body write goes to config_write");
    ncalls = 0;
    cfg_write(&dev, 0x68, 1, 0x55);
    TAP_EQ(ncalls, 0, "the capability ID is not written to the device");
    TAP_EQ(cfg_read(&dev, 0x68, 1), 0x13, "and keeps its value");
}

/* ---- PCI Express -------------------------------------------------------- */

static const uint8_t dvsec_body[12] = { [4] = 0x34, 0x12, 0x00, 0x00 };
static const struct devvm_ext_capability sample_ext_caps[] = {
    { 0x0023, 1, 12, dvsec_body },
    { 0x000b, 1, 4, NULL },
};

static void test_pcie(void)
{
    static const struct devvm_capability exp_cap[] = { { 0x10, 2, NULL } };
    static const uint8_t big[4000];
    static const struct devvm_ext_capability too_long[] = {
        { 0x000b, 1, 4000, big },
    };
    struct devvm_device d = sample();
    struct devvm_region_info r;
    struct devvm_dev dev;
    const char *why;

    d.pcie = 1;
    d.ext_caps = sample_ext_caps;
    d.nr_ext_caps = 2;
    d.config_read = dev_config_read;
    d.config_write = dev_config_write;
    TAP_EQ(devvm_desc_check(&d, &why), 0, "a PCI Express description");
    devvm_dev_region_info(&d, DEVVM_PCI_CONFIG_REGION, &r);
    TAP_EQ(r.size, 4096, "... has 4 KiB of config space");
    instance(&dev, &d);
    TAP_EQ(cfg_read(&dev, 0x69, 1), 0x70, "the last capability points on");
    TAP_EQ(cfg_read(&dev, 0x70, 4), 0x00020010,
           "to the PCI Express capability (version 2, endpoint, last)");
    TAP_EQ(cfg_read(&dev, 0x70 + 0x0c, 4), 0x11, "x1 at 2.5 GT/s");
    TAP_EQ(ncalls, 0, "the SDK serves the PCI Express capability");
    cfg_write(&dev, 0x70 + 0x08, 2, 0xffff);
    TAP_EQ(cfg_read(&dev, 0x70 + 0x08, 2), 0x7fff,
           "Device Control is writable but for Initiate FLR");
    cfg_write(&dev, 0x70 + 0x04, 4, 0xffffffff);
    TAP_EQ(cfg_read(&dev, 0x70 + 0x04, 4), 0, "Device Capabilities are not");
    TAP_EQ(cfg_read(&dev, 0x100, 4), 0x0023 | 1 << 16 | 0x10c << 20,
           "the first extended capability, next at 0x10c");
    TAP_EQ(cfg_read(&dev, 0x10c, 4), 0x000b | 1 << 16,
           "the second, the last");
    TAP_EQ(ncalls, 0, "headers are the SDK's");
    cfg_read(&dev, 0x104, 4);
    TAP_CHECK(ncalls == 1 && calls[0].what == 'c' && calls[0].off == 0x104,
              "an extended body goes to config_read");
    ncalls = 0;
    cfg_write(&dev, 0xffc, 4, 1);
    TAP_CHECK(ncalls == 1 && calls[0].what == 'C' && calls[0].off == 0xffc,
              "so does the rest of the extended space, up to 0xfff");
    cfg_write(&dev, 0x70 + 0x08, 2, 0);
    devvm_dev_reset(&dev);
    TAP_EQ(cfg_read(&dev, 0x70 + 0x08, 2), 0x2810,
           "reset: Device Control back to its initial value");

    d = sample();
    devvm_dev_region_info(&d, DEVVM_PCI_CONFIG_REGION, &r);
    TAP_EQ(r.size, 256, "without pcie, 256 bytes");
    instance(&dev, &d);
    TAP_EQ(devvm_dev_region_read(&dev, DEVVM_PCI_CONFIG_REGION, 0x100,
                                 &r, 4), -DEVVM_EINVAL,
           "and nothing past them");
    d.ext_caps = sample_ext_caps;
    d.nr_ext_caps = 1;
    refused(d, "extended capabilities without pcie");
    d = sample(); d.pcie = 2;
    refused(d, "pcie = 2");
    d = sample(); d.caps = exp_cap; d.nr_caps = 1;
    refused(d, "a PCI Express capability in caps");
    d = sample(); d.pcie = 1; d.ext_caps = too_long; d.nr_ext_caps = 1;
    refused(d, "an extended capability past 0xfff");
    d = sample(); d.pcie = 1; d.ext_caps = sample_ext_caps + 1;
    d.nr_ext_caps = 9;
    refused(d, "9 extended capabilities");
}

/* ---- region and IRQ info ------------------------------------------------ */

static void test_info(void)
{
    struct devvm_device d = sample();
    struct devvm_device_info di;
    struct devvm_region_info r;
    struct devvm_irq_info q;

    devvm_dev_device_info(&d, &di);
    TAP_CHECK(di.num_regions == 9 && di.num_irqs == 5 &&
              di.flags == (DEVVM_DEVICE_F_PCI | DEVVM_DEVICE_F_RESET),
              "device info: PCI, reset, 9 regions, 5 IRQ indexes");
    devvm_dev_region_info(&d, 0, &r);
    TAP_CHECK(r.size == 0x1000 && r.flags == 3 && !r.nr_areas,
              "BAR0: 4 KiB read/write");
    devvm_dev_region_info(&d, 2, &r);
    TAP_CHECK(r.size == 0x4000 && r.flags == 7 && r.nr_areas == 1 &&
              r.areas[0].offset == 0x1000 && r.areas[0].size == 0x1000,
              "BAR2: mmap, one sparse area, the window");
    devvm_dev_region_info(&d, 3, &r);
    TAP_CHECK(r.size == 0 && r.flags == 0, "BAR3 (upper half): empty");
    devvm_dev_region_info(&d, 6, &r);
    TAP_CHECK(r.size == 2048 && r.flags == DEVVM_REGION_F_READ,
              "ROM: 2 KiB read-only");
    devvm_dev_region_info(&d, 7, &r);
    TAP_CHECK(r.size == 256 && r.flags == 3, "config: 256 bytes read/write");
    TAP_EQ(devvm_dev_region_info(&d, 9, &r), -DEVVM_EINVAL, "region 9");
    devvm_dev_irq_info(&d, DEVVM_PCI_INTX_IRQ, &q);
    TAP_CHECK(q.count == 1 && q.flags == 7, "INTx: 1, eventfd maskable "
              "automasked");
    devvm_dev_irq_info(&d, DEVVM_PCI_MSI_IRQ, &q);
    TAP_CHECK(q.count == 4 && q.flags == 1, "MSI: 4");
    devvm_dev_irq_info(&d, DEVVM_PCI_MSIX_IRQ, &q);
    TAP_CHECK(q.count == 4 && q.flags == 1, "MSI-X: 4");
    devvm_dev_irq_info(&d, DEVVM_PCI_ERR_IRQ, &q);
    TAP_EQ(q.count, 0, "ERR: none");
    d.intx_pin = 0;
    devvm_dev_irq_info(&d, DEVVM_PCI_INTX_IRQ, &q);
    TAP_EQ(q.count, 0, "no pin, no INTx");
}

/* ---- accesses ----------------------------------------------------------- */

static int call_is(unsigned i, char what, unsigned bar, uint64_t off,
                   unsigned size)
{
    return i < ncalls && calls[i].what == what && calls[i].bar == bar &&
           calls[i].off == off && calls[i].size == size;
}

static void test_split(void)
{
    struct devvm_device d = sample();
    struct devvm_dev dev;
    uint8_t buf[16], want[16];
    unsigned i;

    instance(&dev, &d);
    TAP_EQ(devvm_dev_region_read(&dev, 0, 3, buf, 8), 0, "read 8 at 3");
    TAP_CHECK(ncalls == 4 && call_is(0, 'r', 0, 3, 1) &&
              call_is(1, 'r', 0, 4, 4) && call_is(2, 'r', 0, 8, 2) &&
              call_is(3, 'r', 0, 10, 1),
              "an unaligned 8-byte read is 1@3, 4@4, 2@8, 1@10");
    for (i = 0; i < 8; i++) {
        want[i] = (3 + i) ^ 0xa0;
    }
    TAP_CHECK(!memcmp(buf, want, 8), "... and its bytes are in order");

    ncalls = 0;
    for (i = 0; i < 8; i++) {
        buf[i] = 0x10 + i;
    }
    devvm_dev_region_write(&dev, 0, 3, buf, 8);
    TAP_CHECK(ncalls == 4 && call_is(0, 'w', 0, 3, 1) &&
              calls[0].value == 0x10 && call_is(1, 'w', 0, 4, 4) &&
              calls[1].value == 0x14131211 && call_is(2, 'w', 0, 8, 2) &&
              calls[2].value == 0x1615 && call_is(3, 'w', 0, 10, 1) &&
              calls[3].value == 0x17,
              "an unaligned 8-byte write is split the same way");

    ncalls = 0;
    devvm_dev_region_read(&dev, 0, 0x10, buf, 16);
    TAP_CHECK(ncalls == 2 && call_is(0, 'r', 0, 0x10, 8) &&
              call_is(1, 'r', 0, 0x18, 8), "16 aligned bytes: two of 8");
    ncalls = 0;
    devvm_dev_region_read(&dev, 1, 0x1e, buf, 2);
    TAP_CHECK(ncalls == 1 && call_is(0, 'r', 1, 0x1e, 2), "I/O BAR");
    TAP_EQ(devvm_dev_region_read(&dev, 0, 0xffc, buf, 8), -DEVVM_EINVAL,
           "past the end of a BAR: EINVAL");
    TAP_EQ(devvm_dev_region_read(&dev, 3, 0, buf, 4), -DEVVM_EINVAL,
           "an empty BAR: EINVAL");

    ncalls = 0;
    TAP_EQ(devvm_dev_region_read(&dev, DEVVM_PCI_ROM_REGION, 0x7fe, buf, 2),
           0, "ROM read");
    TAP_CHECK(ncalls == 1 && call_is(0, 'r', DEVVM_ROM_BAR, 0x7fe, 2),
              "the ROM goes to read with DEVVM_ROM_BAR");
    TAP_EQ(devvm_dev_region_write(&dev, DEVVM_PCI_ROM_REGION, 0, buf, 2),
           -DEVVM_EINVAL, "the ROM is read-only");
}

static void test_msix_and_window(void)
{
    struct devvm_device d = sample();
    struct devvm_dev dev;
    uint8_t buf[16];
    unsigned i;

    instance(&dev, &d);
    memset(buf, 0xff, sizeof(buf));
    devvm_dev_region_read(&dev, 4, 0, buf, 16);
    TAP_CHECK(ncalls == 0 && !buf[0] && !buf[15],
              "the MSI-X table reads 0, without the device");
    devvm_dev_region_write(&dev, 4, 0x1000, buf, 8);
    TAP_EQ(ncalls, 0, "PBA writes are dropped");
    memset(buf, 0xff, sizeof(buf));
    devvm_dev_region_read(&dev, 4, 0x38, buf, 16);
    TAP_CHECK(ncalls == 1 && call_is(0, 'r', 4, 0x40, 8) && !buf[7] &&
              buf[8] == (0x40 ^ 0xa0),
              "across the table's end: 8 bytes of 0, then the device");
    ncalls = 0;
    devvm_dev_region_read(&dev, 4, 0x1008, buf, 4);
    TAP_CHECK(ncalls == 1 && call_is(0, 'r', 4, 0x1008, 4),
              "after the PBA: the device");

    ncalls = 0;
    for (i = 0; i < 8; i++) {
        buf[i] = 0x30 + i;
    }
    devvm_dev_region_write(&dev, 2, 0x1000, buf, 8);
    TAP_CHECK(ncalls == 0 && !memcmp(window, buf, 8),
              "a window write lands in the window's memory");
    window[0xfff] = 0x77;
    memset(buf, 0, sizeof(buf));
    devvm_dev_region_read(&dev, 2, 0x1ffc, buf, 8);
    TAP_CHECK(ncalls == 1 && call_is(0, 'r', 2, 0x2000, 4) &&
              buf[3] == 0x77 && buf[4] == (0x2000 ^ 0xa0) % 256,
              "across the window's end: memory, then the device");
    TAP_CHECK(devvm_bar_mem(&dev, 2) == window && !devvm_bar_mem(&dev, 0) &&
              !devvm_bar_mem(&dev, 9), "devvm_bar_mem");
}

/* ---- helpers ------------------------------------------------------------ */

static void test_helpers(void)
{
    struct devvm_device d = sample();
    struct devvm_dev dev;

    instance(&dev, &d);
    devvm_msi_notify(&dev, 3);
    TAP_CHECK(last_irq.n == 1 && last_irq.index == DEVVM_PCI_MSI_IRQ &&
              last_irq.vector == 3 && last_irq.action == 2, "MSI 3 pulses");
    devvm_msi_notify(&dev, 4);
    TAP_CHECK(last_irq.n == 1 && strstr(last_log, "MSI vector 4"),
              "MSI 4 does not exist: logged, not sent");
    devvm_msix_notify(&dev, 4);
    TAP_EQ(last_irq.n, 1, "MSI-X 4 does not exist");
    devvm_msix_notify(&dev, 0);
    TAP_CHECK(last_irq.n == 2 && last_irq.index == DEVVM_PCI_MSIX_IRQ,
              "MSI-X 0 pulses");
    devvm_intx_set(&dev, 5);
    TAP_CHECK(last_irq.n == 3 && last_irq.index == DEVVM_PCI_INTX_IRQ &&
              last_irq.action == 1, "INTx raised");
    devvm_intx_set(&dev, 0);
    TAP_CHECK(last_irq.n == 4 && last_irq.action == 0, "INTx lowered");
    dev.irq_signals = 7;
    TAP_EQ(devvm_irq_signals(&dev), 7, "devvm_irq_signals");

    devvm_log(&dev, "%s %d 0x%04x", "hello", -3, 0xab);
    TAP_CHECK(!strcmp(last_log, "hello -3 0x00ab"), "devvm_log: '%s'",
              last_log);
    TAP_CHECK(devvm_desc(&dev) == &d && devvm_priv(&dev) == NULL &&
              devvm_type_data(&dev) == NULL,
              "devvm_desc, devvm_priv, devvm_type_data");

    polls = 0;
    devvm_dev_poll(&dev, 0);
    devvm_dev_poll(&dev, 1);
    TAP_EQ(polls, 1, "poll without an interval: after accesses only");
}

/* ---- the device type's data --------------------------------------------- */

static unsigned type_inits;

/* a table of 16 squares, made once */
static int squares_type_init(const struct devvm_device *desc, void *data)
{
    uint32_t *t = data;
    unsigned i;

    type_inits++;
    if (desc->type_data_size != 16 * sizeof(*t)) {
        return -DEVVM_EINVAL;
    }
    for (i = 0; i < 16; i++) {
        t[i] = i * i;
    }
    return 0;
}

/* an instance's init sees the table */
static int squares_init(struct devvm_dev *dev)
{
    const uint32_t *t = devvm_type_data(dev);

    return t && t[3] == 9 ? 0 : -DEVVM_EIO;
}

static void test_type_data(void)
{
    struct devvm_device d = sample();
    void *mem[DEVVM_NUM_BARS] = { [2] = window };
    uint32_t table[16] = { 0 };
    struct devvm_dev a, b;

    TAP_EQ(devvm_type_init(&d, NULL), 0, "no type_init: nothing to do");
    d.type_data_size = sizeof(table);
    d.type_init = squares_type_init;
    d.init = squares_init;
    TAP_EQ(devvm_type_init(&d, table), 0, "type_init");
    TAP_CHECK(type_inits == 1 && table[0] == 0 && table[15] == 225,
              "... filled the type's data");
    TAP_EQ(devvm_dev_init(&a, &d, table, NULL, mem, &rt, NULL), 0,
           "an instance's init reads the type's data");
    TAP_EQ(devvm_dev_init(&b, &d, table, NULL, mem, &rt, NULL), 0,
           "... and another's");
    TAP_CHECK(devvm_type_data(&a) == table && devvm_type_data(&b) == table &&
              type_inits == 1,
              "both instances have the same data, type_init ran once");
    d.type_data_size = 4;
    TAP_EQ(devvm_type_init(&d, table), -DEVVM_EINVAL,
           "a failing type_init: its error");
}

/* ---- DMA ---------------------------------------------------------------- */

/* byte i of the client's memory before a test */
static uint8_t client_byte(uint64_t i)
{
    return (uint8_t)(i * 7 + (i >> 12));
}

static void client_fill(void)
{
    uint64_t i;

    for (i = 0; i < CLIENT_SIZE; i++) {
        client[i] = client_byte(i);
    }
    last_dma.n = maps = 0;
}

/* Does @buf hold the client's bytes from @off on, for @len bytes? */
static int client_is(const uint8_t *buf, uint64_t off, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++) {
        if (buf[i] != client_byte(off + i)) {
            return 0;
        }
    }
    return 1;
}

static void test_dma(void)
{
    struct devvm_device d = sample();
    const size_t len = 3 * PIECE;
    uint8_t *buf = malloc(len), small[16] = { 0 };
    struct devvm_dev dev;

    client = malloc(CLIENT_SIZE);
    instance(&dev, &d);
    client_fill();
    TAP_EQ(devvm_dma_read(&dev, CLIENT_ADDR, small, 16), -DEVVM_EFAULT,
           "no DMA while bus mastering is off");
    TAP_EQ(last_dma.n, 0, "... and the runtime is not asked");
    cfg_write(&dev, 0x04, 2, 0x4);
    TAP_EQ(devvm_dma_write(&dev, CLIENT_ADDR + 0x2000, small, 16), 0,
           "DMA write");
    TAP_CHECK(last_dma.n == 1 && last_dma.write &&
              last_dma.addr == CLIENT_ADDR + 0x2000 && last_dma.len == 16 &&
              client[0x2000] == 0 && client[0x200f] == 0,
              "... goes to the runtime");
    TAP_EQ(devvm_dma_read(&dev, ~0ull - 4, small, 16), -DEVVM_EFAULT,
           "DMA wrapping around: EFAULT");
    TAP_EQ(devvm_dma_read(&dev, CLIENT_ADDR, small, 0), 0, "an empty DMA");
    TAP_CHECK(devvm_dma_map(&dev, CLIENT_ADDR, 16, 0) == NULL,
              "no dma_map in the runtime: NULL");

    /* 3 MiB through the runtime: three pieces of its dma_max */
    client_fill();
    memset(buf, 0, len);
    TAP_EQ(devvm_dma_read(&dev, CLIENT_ADDR + 1, buf, len), 0,
           "a 3 MiB read");
    TAP_CHECK(last_dma.n == 3 && !last_dma.write &&
              last_dma.addr == CLIENT_ADDR + 1 + 2 * PIECE &&
              last_dma.len == PIECE, "... in three pieces of 1 MiB");
    TAP_CHECK(client_is(buf, 1, len), "... with the client's bytes");
    client_fill();
    TAP_EQ(devvm_dma_write(&dev, CLIENT_ADDR + 3, buf, len - 5), 0,
           "a 3 MiB write");
    TAP_CHECK(last_dma.n == 3 && last_dma.write &&
              last_dma.len == PIECE - 5 && client[3] == client_byte(1) &&
              client[3 + len - 6] == client_byte(len - 5) &&
              client[len - 2] == client_byte(len - 2),
              "... in three pieces, the last one short");

    /* the middle piece fails: the first is done, the last not tried */
    client_fill();
    memset(buf, 0, len);
    failing_addr = CLIENT_ADDR + PIECE;
    TAP_EQ(devvm_dma_read(&dev, CLIENT_ADDR, buf, len), -DEVVM_EIO,
           "the middle piece fails: its error");
    TAP_CHECK(last_dma.n == 2 && client_is(buf, 0, PIECE) &&
              buf[PIECE] == 0 && buf[len - 1] == 0,
              "... the first piece read, the last one not tried");
    failing_addr = 0;
    client_fill();
    TAP_EQ(devvm_dma_read(&dev, CLIENT_ADDR + CLIENT_SIZE - PIECE, buf,
                          2 * PIECE), -DEVVM_EFAULT,
           "past the end of the client's maps: EFAULT");
    TAP_EQ(last_dma.n, 2, "... at the second piece");

    /* mapped pieces are copied by the SDK, the others go to the runtime */
    dev.rt = &rt_mapped;
    mapped_end = CLIENT_ADDR + 2 * PIECE;
    client_fill();
    memset(buf, 0, len);
    TAP_EQ(devvm_dma_read(&dev, CLIENT_ADDR, buf, len), 0,
           "3 MiB, 2 of them mapped");
    TAP_CHECK(maps == 3 && last_dma.n == 1 &&
              last_dma.addr == CLIENT_ADDR + 2 * PIECE &&
              client_is(buf, 0, len),
              "... two pieces copied directly, one through the runtime");
    memset(buf, 0xee, len);
    TAP_EQ(devvm_dma_write(&dev, CLIENT_ADDR + PIECE, buf, 2 * PIECE), 0,
           "a write across the end of the mapping");
    TAP_CHECK(maps == 5 && last_dma.n == 2 && last_dma.write &&
              client[PIECE] == 0xee && client[3 * PIECE - 1] == 0xee &&
              client[3 * PIECE] == client_byte(3 * PIECE),
              "... mapped, then through the runtime");
    TAP_CHECK(devvm_dma_map(&dev, CLIENT_ADDR + 16, 16, 1) ==
              client + 16, "devvm_dma_map: the runtime's pointer");
    cfg_write(&dev, 0x04, 2, 0);
    maps = 0;
    TAP_CHECK(devvm_dma_read(&dev, CLIENT_ADDR, buf, 16) == -DEVVM_EFAULT &&
              !devvm_dma_map(&dev, CLIENT_ADDR, 16, 0) && !maps,
              "bus mastering off: nothing mapped");
    free(buf);
    free(client);
}

/* ---- fmt ---------------------------------------------------------------- */

static int fmt(char *buf, size_t size, const char *f, ...)
{
    va_list ap;
    int ret;

    va_start(ap, f);
    ret = devvm_vsnprintf(buf, size, f, ap);
    va_end(ap);
    return ret;
}

#define FMT_IS(want, ...) do { \
        char b_[128]; \
        int n_ = fmt(b_, sizeof(b_), __VA_ARGS__); \
        TAP_CHECK(!strcmp(b_, want) && n_ == (int)strlen(want), \
                  "fmt %s: '%s' (%d)", #__VA_ARGS__, b_, n_); \
    } while (0)

static void test_fmt(void)
{
    char small[8];
    int n;

    FMT_IS("42 -42 0", "%d %i %u", 42, -42, 0u);
    FMT_IS("ff FF", "%x %X", 255u, 255u);
    FMT_IS("-2147483648", "%d", (int)0x80000000);
    FMT_IS("18446744073709551615", "%llu", ~0ull);
    FMT_IS("-9223372036854775808", "%lld", (long long)(1ull << 63));
    FMT_IS("123456789012", "%ld", 123456789012l);
    FMT_IS("ffffffffffffffff", "%lx", ~0ul);
    FMT_IS("4096", "%zu", (size_t)4096);
    FMT_IS("[   42]", "[%5d]", 42);
    FMT_IS("[42   ]", "[%-5d]", 42);
    FMT_IS("[00042]", "[%05d]", 42);
    FMT_IS("[-0042]", "[%05d]", -42);
    FMT_IS("[0000beef]", "[%08x]", 0xbeefu);
    FMT_IS("[  ab]", "[%*s]", 4, "ab");
    FMT_IS("[x  ]", "[%-3c]", 'x');
    FMT_IS("(null)", "%s", (char *)NULL);
    FMT_IS("0x1000", "%p", (void *)0x1000);
    FMT_IS("100%", "100%%");
    FMT_IS("%q", "%q");
    FMT_IS("end%", "end%");

    n = fmt(small, sizeof(small), "%s", "0123456789");
    TAP_CHECK(n == 10 && !strcmp(small, "0123456"),
              "truncated to the buffer, NUL-terminated, full length back");
    n = fmt(small, 0, "%d", 12345);
    TAP_EQ(n, 5, "size 0: nothing written, the length back");
    n = fmt(small, 1, "abc");
    TAP_CHECK(n == 3 && small[0] == 0, "size 1: just the NUL");
}

int main(void)
{
    test_desc_check();
    test_config();
    test_config_callbacks();
    test_pcie();
    test_info();
    test_split();
    test_msix_and_window();
    test_helpers();
    test_type_data();
    test_dma();
    test_fmt();
    return tap_done();
}
