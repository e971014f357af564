/*
 * devvm runtime: find the ivshmem-doorbell function on PCI bus 0
 * (configuration mechanism 1, ports 0xcf8/0xcfc, as on -M pc and q35),
 * place its BARs if the firmware left them unassigned, and route every
 * MSI-X vector to RT_VEC_WAKE on this CPU.
 *
 * ivshmem-doorbell (docs/specs/ivshmem-spec.rst in the QEMU tree):
 * BAR0 registers (IVPosition at 8, Doorbell at 12), BAR1 the MSI-X table
 * and PBA, BAR2 the shared memory (64-bit, prefetchable).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "libdevvm/window.h"
#include "rt.h"
#include "sdk-impl.h"

#define PCI_CONF_ADDR       0xcf8
#define PCI_CONF_DATA       0xcfc

#define PCI_VENDOR_ID       0x00
#define PCI_COMMAND         0x04
#define PCI_STATUS          0x06
#define PCI_HEADER_TYPE     0x0e
#define PCI_BAR0            0x10
#define PCI_CAP_PTR         0x34
#define CMD_MEM             0x2
#define CMD_MASTER          0x4
#define STATUS_CAPS         0x10
#define HEADER_MULTI        0x80
#define BAR_IO              0x1
#define BAR_MEM64           0x4
#define BAR_MEM_MASK        0xfffffff0u
#define CAP_ID_MSIX         0x11
#define MSIX_CTRL_SIZE      0x07ff
#define MSIX_CTRL_MASKALL   0x4000
#define MSIX_CTRL_ENABLE    0x8000
#define MSIX_BIR_MASK       0x7

#define IVSHMEM_VENDOR      0x1af4
#define IVSHMEM_DEVICE      0x1110
#define IVSHMEM_IVPOSITION  8
#define IVSHMEM_DOORBELL    12

#define MSI_ADDR_BASE       0xfee00000u

/*
 * Unassigned memory BARs go top-down below the IOAPIC, under every BAR
 * the firmware placed in the 32-bit PCI hole of -M pc and q35.
 */
#define HOLE_START          0xe0000000u
#define HOLE_END            0xfec00000u

static uint32_t cfg_addr(uint8_t devfn, uint8_t off)
{
    return 0x80000000u | (uint32_t)devfn << 8 | (off & 0xfc);
}

static uint32_t cfg_rd32(uint8_t devfn, uint8_t off)
{
    outl(PCI_CONF_ADDR, cfg_addr(devfn, off));
    return inl(PCI_CONF_DATA);
}

static void cfg_wr32(uint8_t devfn, uint8_t off, uint32_t v)
{
    outl(PCI_CONF_ADDR, cfg_addr(devfn, off));
    outl(PCI_CONF_DATA, v);
}

static uint16_t cfg_rd16(uint8_t devfn, uint8_t off)
{
    return cfg_rd32(devfn, off) >> (8 * (off & 2));
}

/* 16-bit write as a read-modify-write of the dword */
static void cfg_wr16(uint8_t devfn, uint8_t off, uint16_t v)
{
    uint32_t d = cfg_rd32(devfn, off), shift = 8 * (off & 2);

    d = (d & ~(0xffffu << shift)) | (uint32_t)v << shift;
    /* do not clear write-1-to-clear status bits next to the command */
    if (off == PCI_COMMAND) {
        d &= 0xffff;
    }
    cfg_wr32(devfn, off, d);
}

static uint8_t cfg_rd8(uint8_t devfn, uint8_t off)
{
    return cfg_rd32(devfn, off) >> (8 * (off & 3));
}

/* ---- BARs ---------------------------------------------------------------- */

static uint32_t hole_top = HOLE_END;

/* Lower hole_top under a BAR the firmware placed in the hole. */
static void note_bar(uint64_t addr)
{
    if (addr >= HOLE_START && addr < hole_top) {
        hole_top = addr;
    }
}

/* Every memory BAR of every function on bus 0, before we place any. */
static void scan_assigned(void)
{
    unsigned devfn, bar;

    for (devfn = 0; devfn < 256; devfn++) {
        if ((cfg_rd32(devfn, PCI_VENDOR_ID) & 0xffff) == 0xffff ||
            (cfg_rd8(devfn, PCI_HEADER_TYPE) & 0x7f) != 0) {
            continue;
        }
        for (bar = 0; bar < 6; bar++) {
            uint32_t v = cfg_rd32(devfn, PCI_BAR0 + 4 * bar);
            uint64_t addr = v & BAR_MEM_MASK;

            if (v & BAR_IO) {
                continue;
            }
            if (v & BAR_MEM64) {
                addr |= (uint64_t)cfg_rd32(devfn, PCI_BAR0 + 4 * ++bar) << 32;
            }
            note_bar(addr);
        }
    }
}

/*
 * The address of memory BAR @bar (and @bar + 1 for a 64-bit one),
 * placing it when it is unassigned.  0 when it cannot be placed.
 */
static uint64_t bar_addr(uint8_t devfn, unsigned bar, uint64_t *size)
{
    uint8_t off = PCI_BAR0 + 4 * bar;
    uint32_t lo = cfg_rd32(devfn, off), hi = 0, szlo, szhi = 0xffffffffu;
    int is64 = lo & BAR_MEM64;
    uint64_t addr, mask;

    if (is64) {
        hi = cfg_rd32(devfn, off + 4);
    }
    /* size it: memory decoding is off (rt_pci_init) */
    cfg_wr32(devfn, off, 0xffffffffu);
    szlo = cfg_rd32(devfn, off) & BAR_MEM_MASK;
    cfg_wr32(devfn, off, lo);
    if (is64) {
        cfg_wr32(devfn, off + 4, 0xffffffffu);
        szhi = cfg_rd32(devfn, off + 4);
        cfg_wr32(devfn, off + 4, hi);
    }
    mask = (uint64_t)szhi << 32 | szlo;
    *size = ~mask + 1;
    addr = ((uint64_t)hi << 32 | lo) & ~0xfull;
    if (addr || !szlo) {
        return addr;
    }

    /* unassigned: naturally aligned, below everything else in the hole */
    if (*size > hole_top - HOLE_START) {
        return 0;
    }
    addr = (hole_top - *size) & mask;
    if (addr < HOLE_START) {
        return 0;
    }
    hole_top = addr;
    cfg_wr32(devfn, off, addr | (lo & 0xf));
    if (is64) {
        cfg_wr32(devfn, off + 4, 0);
    }
    rt_log("placed BAR%u of %02x.%x at 0x%lx (%lu KiB)", bar, devfn >> 3,
           devfn & 7, (unsigned long)addr, (unsigned long)(*size >> 10));
    return addr;
}

/* ---- MSI-X --------------------------------------------------------------- */

static uint8_t find_cap(uint8_t devfn, uint8_t id)
{
    uint8_t pos;
    unsigned n;

    if (!(cfg_rd16(devfn, PCI_STATUS) & STATUS_CAPS)) {
        return 0;
    }
    pos = cfg_rd8(devfn, PCI_CAP_PTR) & 0xfc;
    /* at most 48 capabilities fit: a loop in the list ends here too */
    for (n = 0; pos && n < 48; n++) {
        if (cfg_rd8(devfn, pos) == id) {
            return pos;
        }
        pos = cfg_rd8(devfn, pos + 1) & 0xfc;
    }
    return 0;
}

/* Every vector to RT_VEC_WAKE on this CPU, unmasked; the table size. */
static uint32_t msix_init(uint8_t devfn, const uint64_t bars[6])
{
    uint8_t cap = find_cap(devfn, CAP_ID_MSIX);
    uint32_t table, i, n;
    uint16_t ctrl;
    uint64_t t;

    if (!cap) {
        return 0;
    }
    ctrl = cfg_rd16(devfn, cap + 2);
    n = (ctrl & MSIX_CTRL_SIZE) + 1;
    table = cfg_rd32(devfn, cap + 4);
    if (!bars[table & MSIX_BIR_MASK]) {
        return 0;
    }
    t = bars[table & MSIX_BIR_MASK] + (table & ~MSIX_BIR_MASK);
    for (i = 0; i < n; i++) {
        mmio_wr32(t + 16 * i, MSI_ADDR_BASE | rt_lapic_id() << 12);
        mmio_wr32(t + 16 * i + 4, 0);
        mmio_wr32(t + 16 * i + 8, RT_VEC_WAKE);     /* fixed, edge */
        mmio_wr32(t + 16 * i + 12, 0);              /* unmasked */
    }
    cfg_wr16(devfn, cap + 2,
             (ctrl & ~MSIX_CTRL_MASKALL) | MSIX_CTRL_ENABLE);
    return n;
}

/* ---- the ivshmem and DMA window functions ------------------------------- */

/* The first function @vendor:@device on bus 0, or -1. */
static int find_function(uint16_t vendor, uint16_t device)
{
    unsigned devfn;

    for (devfn = 0; devfn < 256; devfn++) {
        uint32_t id = cfg_rd32(devfn, PCI_VENDOR_ID);

        if ((id & 0xffff) == 0xffff) {
            /* no function 0: no other function either */
            if (!(devfn & 7)) {
                devfn += 7;
            }
            continue;
        }
        if (id == ((uint32_t)device << 16 | vendor)) {
            return devfn;
        }
        if (!(devfn & 7) && !(cfg_rd8(devfn, PCI_HEADER_TYPE) & HEADER_MULTI)) {
            devfn += 7;
        }
    }
    return -1;
}

int rt_pci_init(struct rt_ivshmem *iv)
{
    int devfn = find_function(IVSHMEM_VENDOR, IVSHMEM_DEVICE);
    uint64_t bars[6] = { 0 }, size;
    uint16_t cmd;

    if (devfn < 0) {
        rt_log("no ivshmem-doorbell (%04x:%04x) on PCI bus 0",
               IVSHMEM_VENDOR, IVSHMEM_DEVICE);
        return -DEVVM_ENODEV;
    }
    iv->dev = devfn;
    scan_assigned();
    cmd = cfg_rd16(devfn, PCI_COMMAND);
    cfg_wr16(devfn, PCI_COMMAND, cmd & ~(CMD_MEM | CMD_MASTER));
    bars[0] = bar_addr(devfn, 0, &size);
    bars[1] = bar_addr(devfn, 1, &size);
    bars[2] = bar_addr(devfn, 2, &iv->shm_size);
    /* bus mastering: MSI-X messages are memory writes of the function */
    cfg_wr16(devfn, PCI_COMMAND, cmd | CMD_MEM | CMD_MASTER);
    if (!bars[0] || !bars[1] || !bars[2]) {
        rt_log("ivshmem at %02x.%x: a BAR could not be placed", devfn >> 3,
               devfn & 7);
        return -DEVVM_ENODEV;
    }
    iv->regs = bars[0];
    iv->shm = bars[2];
    if (iv->shm + iv->shm_size > 0x100000000ull &&
        rt_map_high(iv->shm, iv->shm_size)) {
        rt_log("ivshmem BAR2 at 0x%lx: out of page tables",
               (unsigned long)iv->shm);
        return -DEVVM_ENODEV;
    }
    iv->vectors = msix_init(devfn, bars);
    iv->peer_id = mmio_rd32(iv->regs + IVSHMEM_IVPOSITION);
    rt_log("ivshmem at %02x.%x: regs 0x%lx, shm 0x%lx (%lu KiB), "
           "%u MSI-X vectors, peer id %u", devfn >> 3, devfn & 7,
           (unsigned long)iv->regs, (unsigned long)iv->shm,
           (unsigned long)(iv->shm_size >> 10), iv->vectors, iv->peer_id);
    return 0;
}

void rt_doorbell(const struct rt_ivshmem *iv, uint16_t peer,
                 uint16_t vector)
{
    mmio_wr32(iv->regs + IVSHMEM_DOORBELL, (uint32_t)peer << 16 | vector);
}

int rt_pci_window(struct rt_window *w)
{
    int devfn = find_function(DEVVM_WIN_VENDOR_ID, DEVVM_WIN_DEVICE_ID);
    uint64_t size;
    uint16_t cmd;

    if (devfn < 0) {
        return -DEVVM_ENODEV;
    }
    cmd = cfg_rd16(devfn, PCI_COMMAND);
    cfg_wr16(devfn, PCI_COMMAND, cmd & ~CMD_MEM);
    w->table = bar_addr(devfn, DEVVM_WIN_TABLE_BAR, &size);
    w->base = bar_addr(devfn, DEVVM_WIN_BAR, &w->size);
    cfg_wr16(devfn, PCI_COMMAND, cmd | CMD_MEM);
    if (!w->table || !w->base ||
        mmio_rd32(w->table + DEVVM_WIN_REG_MAGIC) != DEVVM_WIN_MAGIC ||
        mmio_rd32(w->table + DEVVM_WIN_REG_VERSION) != DEVVM_WIN_VERSION) {
        rt_log("DMA window at %02x.%x: not placed, or not version %u: DMA "
               "by messages", devfn >> 3, devfn & 7, DEVVM_WIN_VERSION);
        return -DEVVM_ENODEV;
    }
    if (w->base + w->size > 0x100000000ull &&
        rt_map_high(w->base, w->size)) {
        rt_log("DMA window at 0x%lx: out of page tables: DMA by messages",
               (unsigned long)w->base);
        return -DEVVM_ENODEV;
    }
    rt_log("DMA window at %02x.%x: table 0x%lx, window 0x%lx (%lu GiB)",
           devfn >> 3, devfn & 7, (unsigned long)w->table,
           (unsigned long)w->base, (unsigned long)(w->size >> 30));
    return 0;
}
