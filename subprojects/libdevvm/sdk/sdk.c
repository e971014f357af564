/*
 * libdevvm SDK core: the PCI view of a device instance, shared by every
 * runtime.  Freestanding (no libc, no allocation): the runtime gives each
 * instance its memory and its transport (struct devvm_rt_ops).
 *
 * Config space layout: the header (type 0), then from 0x40 the MSI
 * capability (16 bytes), the MSI-X capability (16 bytes), each present
 * only when the device has vectors of that kind, then desc->caps in
 * order, each at the next dword boundary, then for a PCI Express device
 * the PCI Express capability (60 bytes).  The extended config space of a
 * PCI Express device holds desc->ext_caps from 0x100 on, each at the next
 * dword boundary.  docs/devvm/sdk.rst.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "sdk-impl.h"
#include "libdevvm/le.h"

/* config space offsets and bits (header type 0) */
#define PCI_VENDOR_ID           0x00
#define PCI_DEVICE_ID           0x02
#define PCI_COMMAND             0x04
#define PCI_STATUS              0x06
#define PCI_REVISION_ID         0x08
#define PCI_CLASS_PROG          0x09
#define PCI_BASE_ADDRESS_0      0x10
#define PCI_SUBSYSTEM_VENDOR_ID 0x2c
#define PCI_SUBSYSTEM_ID        0x2e
#define PCI_ROM_ADDRESS         0x30
#define PCI_CAPABILITY_LIST     0x34
#define PCI_INTERRUPT_PIN       0x3d
#define PCI_CAP_START           0x40
#define PCI_STATUS_CAP_LIST     0x0010
#define PCI_COMMAND_MASTER      0x0004
/* I/O, memory, bus master, parity, SERR, INTx disable */
#define PCI_COMMAND_RW_MASK     0x0547
#define PCI_BAR_IO              0x1
#define PCI_BAR_MEM64           0x4
#define PCI_BAR_PREFETCH        0x8
#define PCI_ROM_ADDRESS_ENABLE  0x1
#define PCI_CAP_ID_MSI          0x05
#define PCI_CAP_ID_MSIX         0x11
#define PCI_CAP_ID_EXP          0x10
#define PCI_MSI_FLAGS_64BIT     0x0080
#define SDK_CAP_SLOT            16      /* bytes for MSI and for MSI-X */
/* the PCI Express capability the SDK builds: version 2, an endpoint */
#define PCI_EXP_SIZE            0x3c
#define PCI_EXP_FLAGS           0x02
#define PCI_EXP_FLAGS_V2        0x0002
#define PCI_EXP_DEVCTL          0x08
#define PCI_EXP_DEVCTL_WMASK    0x7fff  /* all but FLR, which is absent */
#define PCI_EXP_DEVCTL_INIT     0x2810  /* 512-byte reads, RO, no snoop */
#define PCI_EXP_LNKCAP          0x0c
#define PCI_EXP_LNKCTL          0x10
#define PCI_EXP_LNKCTL_WMASK    0x01cb  /* ASPM, RCB, CCC, ES, CLKREQ */
#define PCI_EXP_LNKSTA          0x12
#define PCI_EXP_LNK_X1_2_5GT    0x0011  /* width x1, 2.5 GT/s */
#define PCI_EXP_LNKCAP2         0x2c
#define PCI_EXP_LNKCAP2_2_5GT   0x0002
#define PCI_EXP_LNKCTL2         0x30
#define PCI_EXT_CAP_START       0x100
#define PCI_EXT_CAP_HDR         4

#define SDK_PAGE_SIZE           4096u
#define SDK_MEM32_MAX           (1ull << 31)
#define SDK_MEM64_MAX           (1ull << 47)
#define SDK_LOG_MAX             256

static int is_pow2(uint64_t v)
{
    return v && !(v & (v - 1));
}

static int overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
    return alen && blen && a < b + blen && b < a + alen;
}

static int inside(uint64_t off, uint64_t len, uint64_t size)
{
    return off <= size && len <= size - off;
}

static uint64_t msix_table_size(const struct devvm_device *d)
{
    return 16ull * d->msix_vectors;
}

static uint64_t msix_pba_size(const struct devvm_device *d)
{
    return 8ull * ((d->msix_vectors + 63) / 64);
}

/* Does BAR @bar have bytes that reach desc->read/write? */
static int bar_needs_callbacks(const struct devvm_device *d, unsigned bar)
{
    return d->bars[bar].type != DEVVM_BAR_UNUSED &&
           d->bars[bar].mem_size != d->bars[bar].size;
}

/* ---- description check -------------------------------------------------- */

static int check_bar(const struct devvm_device *d, unsigned i,
                     const char **why)
{
    const struct devvm_bar *b = &d->bars[i];

    switch (b->type) {
    case DEVVM_BAR_UNUSED:
        if (b->size || b->flags || b->mem_size) {
            *why = "an unused BAR has a size, flags or a memory window";
            return -DEVVM_EINVAL;
        }
        return 0;
    case DEVVM_BAR_MEM32:
        if (b->size < 16 || b->size > SDK_MEM32_MAX) {
            *why = "a 32-bit memory BAR is 16 bytes to 2 GiB";
            return -DEVVM_EINVAL;
        }
        break;
    case DEVVM_BAR_MEM64:
        if (i == DEVVM_NUM_BARS - 1) {
            *why = "a 64-bit BAR takes two slots: not in BAR5";
            return -DEVVM_EINVAL;
        }
        if (d->bars[i + 1].type != DEVVM_BAR_UNUSED) {
            *why = "the slot after a 64-bit BAR must be unused";
            return -DEVVM_EINVAL;
        }
        if (b->size < 16 || b->size > SDK_MEM64_MAX) {
            *why = "a 64-bit memory BAR is 16 bytes to 128 TiB";
            return -DEVVM_EINVAL;
        }
        break;
    case DEVVM_BAR_IO:
        if (b->size < 4 || b->size > 256) {
            *why = "an I/O BAR is 4 to 256 bytes";
            return -DEVVM_EINVAL;
        }
        if (b->flags & DEVVM_BAR_F_PREFETCH) {
            *why = "an I/O BAR cannot be prefetchable";
            return -DEVVM_EINVAL;
        }
        if (b->mem_size) {
            *why = "an I/O BAR cannot have a memory window";
            return -DEVVM_EINVAL;
        }
        break;
    default:
        *why = "unknown BAR type";
        return -DEVVM_EINVAL;
    }
    if (!is_pow2(b->size)) {
        *why = "a BAR size is not a power of two";
        return -DEVVM_EINVAL;
    }
    if (b->flags & ~DEVVM_BAR_F_PREFETCH) {
        *why = "unknown BAR flags";
        return -DEVVM_EINVAL;
    }
    if (b->mem_size &&
        ((b->mem_offset | b->mem_size) & (SDK_PAGE_SIZE - 1) ||
         !inside(b->mem_offset, b->mem_size, b->size))) {
        *why = "a memory window is not page-aligned inside its BAR";
        return -DEVVM_EINVAL;
    }
    return 0;
}

static int check_msix(const struct devvm_device *d, const char **why)
{
    const struct devvm_bar *b;
    uint64_t tsize = msix_table_size(d), psize = msix_pba_size(d);

    if (!d->msix_vectors) {
        return 0;
    }
    if (d->msix_vectors > DEVVM_MAX_MSIX) {
        *why = "more than 2048 MSI-X vectors";
        return -DEVVM_EINVAL;
    }
    if (d->msix_bar >= DEVVM_NUM_BARS ||
        (d->bars[d->msix_bar].type != DEVVM_BAR_MEM32 &&
         d->bars[d->msix_bar].type != DEVVM_BAR_MEM64)) {
        *why = "the MSI-X BAR is not a memory BAR";
        return -DEVVM_EINVAL;
    }
    b = &d->bars[d->msix_bar];
    if ((d->msix_table_offset | d->msix_pba_offset) & 7) {
        *why = "MSI-X table and PBA offsets must be multiples of 8";
        return -DEVVM_EINVAL;
    }
    if (!inside(d->msix_table_offset, tsize, b->size) ||
        !inside(d->msix_pba_offset, psize, b->size)) {
        *why = "the MSI-X table or PBA is not inside its BAR";
        return -DEVVM_EINVAL;
    }
    if (overlaps(d->msix_table_offset, tsize, d->msix_pba_offset, psize)) {
        *why = "the MSI-X table and PBA overlap";
        return -DEVVM_EINVAL;
    }
    if (overlaps(d->msix_table_offset, tsize, b->mem_offset, b->mem_size) ||
        overlaps(d->msix_pba_offset, psize, b->mem_offset, b->mem_size)) {
        *why = "the MSI-X table or PBA overlaps a memory window";
        return -DEVVM_EINVAL;
    }
    return 0;
}

static uint32_t config_size(const struct devvm_device *d)
{
    return d->pcie ? DEVVM_PCIE_CONFIG_SIZE : DEVVM_CONFIG_SIZE;
}

/*
 * Where the capabilities go (into @dev when it is not NULL); the end of
 * the standard list, or 0 if something does not fit.
 */
static unsigned cap_layout(const struct devvm_device *d, struct devvm_dev *dev)
{
    unsigned off = PCI_CAP_START, i, msi = 0, msix = 0, pcie = 0;
    unsigned ext = PCI_EXT_CAP_START;

    if (d->msi_vectors) {
        msi = off;
        off += SDK_CAP_SLOT;
    }
    if (d->msix_vectors) {
        msix = off;
        off += SDK_CAP_SLOT;
    }
    for (i = 0; i < d->nr_caps && i < DEVVM_MAX_CAPS; i++) {
        if (off + d->caps[i].len > DEVVM_CONFIG_SIZE) {
            return 0;
        }
        if (dev) {
            dev->cap_at[i] = off;
        }
        off += (d->caps[i].len + 3u) & ~3u;
    }
    if (d->pcie) {
        if (off + PCI_EXP_SIZE > DEVVM_CONFIG_SIZE) {
            return 0;
        }
        pcie = off;
        off += PCI_EXP_SIZE;
    }
    for (i = 0; i < d->nr_ext_caps && i < DEVVM_MAX_EXT_CAPS; i++) {
        if (ext + d->ext_caps[i].len > DEVVM_PCIE_CONFIG_SIZE) {
            return 0;
        }
        if (dev) {
            dev->ext_at[i] = ext;
        }
        ext += (d->ext_caps[i].len + 3u) & ~3u;
    }
    if (dev) {
        dev->msi_at = msi;
        dev->msix_at = msix;
        dev->pcie_at = pcie;
    }
    return off;
}

static int check_ext_caps(const struct devvm_device *d, const char **why)
{
    unsigned i;

    if (d->pcie > 1) {
        *why = "pcie is 0 or 1";
        return -DEVVM_EINVAL;
    }
    if (d->nr_ext_caps && !d->pcie) {
        *why = "extended capabilities need a PCI Express device (pcie)";
        return -DEVVM_EINVAL;
    }
    if (d->nr_ext_caps > DEVVM_MAX_EXT_CAPS ||
        (d->nr_ext_caps && !d->ext_caps)) {
        *why = "too many extended capabilities";
        return -DEVVM_EINVAL;
    }
    for (i = 0; i < d->nr_ext_caps; i++) {
        const struct devvm_ext_capability *c = &d->ext_caps[i];

        if (!c->id || c->version > 15 || c->len < PCI_EXT_CAP_HDR ||
            (c->len > PCI_EXT_CAP_HDR && !c->body)) {
            *why = "an extended capability has ID 0, a version above 15, "
                   "fewer than 4 bytes or no body";
            return -DEVVM_EINVAL;
        }
    }
    return 0;
}

int devvm_desc_check(const struct devvm_device *d, const char **why)
{
    unsigned i;
    int ret;

    *why = "";
    if (!d->name || !d->name[0]) {
        *why = "the device has no name";
        return -DEVVM_EINVAL;
    }
    for (i = 0; i < DEVVM_NUM_BARS; i++) {
        ret = check_bar(d, i, why);
        if (ret) {
            return ret;
        }
        if (bar_needs_callbacks(d, i) && (!d->read || !d->write)) {
            *why = "a BAR reaches the device, which has no read or write";
            return -DEVVM_EINVAL;
        }
    }
    if (d->rom_size &&
        (!is_pow2(d->rom_size) || d->rom_size < 2048 || !d->read)) {
        *why = d->read ? "the ROM size is not a power of two from 2 KiB" :
                         "a ROM needs the read callback";
        return -DEVVM_EINVAL;
    }
    if (d->intx_pin > 4) {
        *why = "the interrupt pin is not 0 to 4 (none, INTA to INTD)";
        return -DEVVM_EINVAL;
    }
    if (d->msi_vectors > 32 || (d->msi_vectors && !is_pow2(d->msi_vectors))) {
        *why = "MSI vectors are 0, 1, 2, 4, 8, 16 or 32";
        return -DEVVM_EINVAL;
    }
    ret = check_msix(d, why);
    if (ret) {
        return ret;
    }
    if (d->nr_caps > DEVVM_MAX_CAPS || (d->nr_caps && !d->caps)) {
        *why = "too many capabilities";
        return -DEVVM_EINVAL;
    }
    for (i = 0; i < d->nr_caps; i++) {
        if (d->caps[i].len < 2 || (d->caps[i].len > 2 && !d->caps[i].body)) {
            *why = "a capability is shorter than 2 bytes or has no body";
            return -DEVVM_EINVAL;
        }
        if (d->caps[i].id == PCI_CAP_ID_MSI ||
            d->caps[i].id == PCI_CAP_ID_MSIX ||
            d->caps[i].id == PCI_CAP_ID_EXP) {
            *why = "MSI, MSI-X and PCI Express capabilities come from "
                   "msi_vectors, msix_vectors and pcie";
            return -DEVVM_EINVAL;
        }
    }
    ret = check_ext_caps(d, why);
    if (ret) {
        return ret;
    }
    if (!cap_layout(d, NULL)) {
        *why = "the capabilities do not fit in config space 0x40..0xff, "
               "or the extended ones in 0x100..0xfff";
        return -DEVVM_EINVAL;
    }
    return 0;
}

/* ---- config space ------------------------------------------------------- */

static void config_build(struct devvm_dev *dev)
{
    const struct devvm_device *d = dev->desc;
    uint8_t *c = dev->config;
    uint8_t *prev = c + PCI_CAPABILITY_LIST;
    unsigned i;

    __builtin_memset(c, 0, DEVVM_PCIE_CONFIG_SIZE);
    devvm_st16(c + PCI_VENDOR_ID, d->vendor_id);
    devvm_st16(c + PCI_DEVICE_ID, d->device_id);
    c[PCI_REVISION_ID] = d->revision;
    c[PCI_CLASS_PROG] = d->class_code & 0xff;
    devvm_st16(c + PCI_CLASS_PROG + 1, (d->class_code >> 8) & 0xffff);
    for (i = 0; i < DEVVM_NUM_BARS; i++) {
        const struct devvm_bar *b = &d->bars[i];
        uint32_t type = 0;

        if (b->type == DEVVM_BAR_IO) {
            type = PCI_BAR_IO;
        } else if (b->type != DEVVM_BAR_UNUSED) {
            type = (b->type == DEVVM_BAR_MEM64 ? PCI_BAR_MEM64 : 0) |
                   (b->flags & DEVVM_BAR_F_PREFETCH ? PCI_BAR_PREFETCH : 0);
        }
        devvm_st32(c + PCI_BASE_ADDRESS_0 + 4 * i, type);
    }
    devvm_st16(c + PCI_SUBSYSTEM_VENDOR_ID, d->subsystem_vendor_id);
    devvm_st16(c + PCI_SUBSYSTEM_ID, d->subsystem_id);
    c[PCI_INTERRUPT_PIN] = d->intx_pin;

    if (dev->msi_at) {
        *prev = dev->msi_at;
        prev = c + dev->msi_at + 1;
        c[dev->msi_at] = PCI_CAP_ID_MSI;
        devvm_st16(c + dev->msi_at + 2,
                   PCI_MSI_FLAGS_64BIT |
                   (__builtin_ctz(d->msi_vectors) << 1));
    }
    if (dev->msix_at) {
        *prev = dev->msix_at;
        prev = c + dev->msix_at + 1;
        c[dev->msix_at] = PCI_CAP_ID_MSIX;
        devvm_st16(c + dev->msix_at + 2, d->msix_vectors - 1);
        devvm_st32(c + dev->msix_at + 4, d->msix_table_offset | d->msix_bar);
        devvm_st32(c + dev->msix_at + 8, d->msix_pba_offset | d->msix_bar);
    }
    for (i = 0; i < d->nr_caps; i++) {
        uint8_t *p = c + dev->cap_at[i];

        *prev = dev->cap_at[i];
        prev = p + 1;
        p[0] = d->caps[i].id;
        if (d->caps[i].len > 2) {
            __builtin_memcpy(p + 2, d->caps[i].body + 2, d->caps[i].len - 2);
        }
    }
    if (dev->pcie_at) {
        uint8_t *p = c + dev->pcie_at;

        *prev = dev->pcie_at;
        p[0] = PCI_CAP_ID_EXP;
        devvm_st16(p + PCI_EXP_FLAGS, PCI_EXP_FLAGS_V2);
        devvm_st16(p + PCI_EXP_DEVCTL, PCI_EXP_DEVCTL_INIT);
        devvm_st32(p + PCI_EXP_LNKCAP, PCI_EXP_LNK_X1_2_5GT);
        devvm_st16(p + PCI_EXP_LNKSTA, PCI_EXP_LNK_X1_2_5GT);
        devvm_st32(p + PCI_EXP_LNKCAP2, PCI_EXP_LNKCAP2_2_5GT);
        devvm_st16(p + PCI_EXP_LNKCTL2, 1);     /* target 2.5 GT/s */
    }
    for (i = 0; i < d->nr_ext_caps; i++) {
        const struct devvm_ext_capability *e = &d->ext_caps[i];
        uint16_t next = i + 1 < d->nr_ext_caps ? dev->ext_at[i + 1] : 0;
        uint8_t *p = c + dev->ext_at[i];

        devvm_st32(p, e->id | (uint32_t)e->version << 16 |
                      (uint32_t)next << 20);
        if (e->len > PCI_EXT_CAP_HDR) {
            __builtin_memcpy(p + PCI_EXT_CAP_HDR, e->body + PCI_EXT_CAP_HDR,
                             e->len - PCI_EXT_CAP_HDR);
        }
    }
    if (c[PCI_CAPABILITY_LIST]) {
        devvm_st16(c + PCI_STATUS, PCI_STATUS_CAP_LIST);
    }
}

/*
 * Who serves config byte @off: 1 the device (config_read/config_write:
 * bodies of desc->caps and the free space from 0x40), 0 the SDK.
 */
static int config_is_device(const struct devvm_dev *dev, uint32_t off)
{
    const struct devvm_device *d = dev->desc;
    unsigned i;

    if (off < PCI_CAP_START) {
        return 0;
    }
    if ((dev->msi_at && off - dev->msi_at < SDK_CAP_SLOT) ||
        (dev->msix_at && off - dev->msix_at < SDK_CAP_SLOT) ||
        (dev->pcie_at && off - dev->pcie_at < PCI_EXP_SIZE)) {
        return 0;
    }
    for (i = 0; i < d->nr_caps; i++) {
        if (off - dev->cap_at[i] < 2) {
            return 0;       /* ID and next pointer */
        }
    }
    for (i = 0; i < d->nr_ext_caps; i++) {
        if (off - dev->ext_at[i] < PCI_EXT_CAP_HDR) {
            return 0;       /* ID, version and next offset */
        }
    }
    return 1;
}

/* The mask of the bits that keep what the client writes, per byte. */
static uint8_t config_wmask(const struct devvm_dev *dev, uint32_t off)
{
    uint32_t rom = dev->desc->rom_size;

    if (off - PCI_COMMAND < 2) {
        return PCI_COMMAND_RW_MASK >> (8 * (off - PCI_COMMAND));
    }
    if (rom && off - PCI_ROM_ADDRESS < 4) {
        return (~(rom - 1u) | PCI_ROM_ADDRESS_ENABLE) >>
               (8 * (off - PCI_ROM_ADDRESS));
    }
    if (dev->pcie_at && off - (dev->pcie_at + PCI_EXP_DEVCTL) < 2) {
        return PCI_EXP_DEVCTL_WMASK >>
               (8 * (off - dev->pcie_at - PCI_EXP_DEVCTL));
    }
    if (dev->pcie_at && off - (dev->pcie_at + PCI_EXP_LNKCTL) < 2) {
        return PCI_EXP_LNKCTL_WMASK >>
               (8 * (off - dev->pcie_at - PCI_EXP_LNKCTL));
    }
    return 0;
}

/* Is [off, off + size) served by one party?  1 device, 0 SDK, -1 mixed. */
static int config_owner(const struct devvm_dev *dev, uint32_t off,
                        unsigned size)
{
    int who = config_is_device(dev, off);
    unsigned i;

    for (i = 1; i < size; i++) {
        if (config_is_device(dev, off + i) != who) {
            return -1;
        }
    }
    return who;
}

/* Largest naturally aligned piece at @off, at most @max and @left. */
static unsigned piece_size(uint64_t off, uint64_t left, unsigned max)
{
    unsigned size = max;

    while (size > 1 && ((off & (size - 1)) || size > left)) {
        size >>= 1;
    }
    return size;
}

static void config_rw(struct devvm_dev *dev, int write, uint32_t off,
                      uint8_t *buf, uint32_t count)
{
    const struct devvm_device *d = dev->desc;
    uint32_t done = 0;

    while (done < count) {
        uint32_t at = off + done;
        unsigned size = piece_size(at, count - done, 4), i;
        int who = config_owner(dev, at, size);

        if (who < 0) {
            size = 1;
            who = config_is_device(dev, at);
        }
        if (who && write && d->config_write) {
            d->config_write(dev, at, size,
                            size == 4 ? devvm_ld32(buf + done) :
                            size == 2 ? devvm_ld16(buf + done) : buf[done]);
        } else if (who && !write && d->config_read) {
            uint32_t v = d->config_read(dev, at, size);

            for (i = 0; i < size; i++) {
                buf[done + i] = v >> (8 * i);
            }
        } else if (write) {
            /* the SDK's bytes, or a device without config_write */
            for (i = 0; i < size; i++) {
                uint8_t m = who ? 0 : config_wmask(dev, at + i);

                dev->config[at + i] = (dev->config[at + i] & ~m) |
                                      (buf[done + i] & m);
            }
        } else {
            __builtin_memcpy(buf + done, dev->config + at, size);
        }
        done += size;
    }
}

/* ---- instances ---------------------------------------------------------- */

int devvm_type_init(const struct devvm_device *desc, void *type_data)
{
    return desc->type_init ? desc->type_init(desc, type_data) : 0;
}

int devvm_dev_init(struct devvm_dev *dev, const struct devvm_device *desc,
                   const void *type_data, void *priv,
                   void *const bar_mem[DEVVM_NUM_BARS],
                   const struct devvm_rt_ops *rt, void *rt_opaque)
{
    unsigned i;

    __builtin_memset(dev, 0, sizeof(*dev));
    dev->desc = desc;
    dev->type_data = type_data;
    dev->priv = priv;
    dev->rt = rt;
    dev->rt_opaque = rt_opaque;
    for (i = 0; i < DEVVM_NUM_BARS; i++) {
        dev->bar_mem[i] = desc->bars[i].mem_size ? bar_mem[i] : 0;
    }
    cap_layout(desc, dev);
    config_build(dev);
    dev->next_poll_ns = desc->poll_interval_ns ?
                        devvm_rt_now_ns() + desc->poll_interval_ns : 0;
    return desc->init ? desc->init(dev) : 0;
}

void devvm_dev_fini(struct devvm_dev *dev)
{
    if (dev->desc->fini) {
        dev->desc->fini(dev);
    }
}

void devvm_dev_reset(struct devvm_dev *dev)
{
    config_build(dev);
    dev->dma_ignores_master = 0;
    if (dev->desc->reset) {
        dev->desc->reset(dev);
    }
}

void devvm_dev_poll(struct devvm_dev *dev, int after_access)
{
    const struct devvm_device *d = dev->desc;
    uint64_t now;

    if (!d->poll) {
        return;
    }
    if (!d->poll_interval_ns) {
        if (after_access) {
            d->poll(dev);
        }
        return;
    }
    now = devvm_rt_now_ns();
    if (after_access || now >= dev->next_poll_ns) {
        d->poll(dev);
        dev->next_poll_ns = now + d->poll_interval_ns;
    }
}

/* ---- vfio-user views ---------------------------------------------------- */

void devvm_dev_device_info(const struct devvm_device *desc,
                           struct devvm_device_info *info)
{
    __builtin_memset(info, 0, sizeof(*info));
    info->argsz = 16;
    info->flags = DEVVM_DEVICE_F_PCI | DEVVM_DEVICE_F_RESET;
    info->num_regions = DEVVM_PCI_NUM_REGIONS;
    info->num_irqs = DEVVM_PCI_NUM_IRQS;
}

int devvm_dev_region_info(const struct devvm_device *desc, uint32_t index,
                          struct devvm_region_info *info)
{
    const uint32_t rw = DEVVM_REGION_F_READ | DEVVM_REGION_F_WRITE;

    if (index >= DEVVM_PCI_NUM_REGIONS) {
        return -DEVVM_EINVAL;
    }
    __builtin_memset(info, 0, sizeof(*info));
    info->argsz = DEVVM_REGION_INFO_SIZE;
    info->index = index;
    if (index < DEVVM_NUM_BARS) {
        const struct devvm_bar *b = &desc->bars[index];

        if (b->type != DEVVM_BAR_UNUSED) {
            info->size = b->size;
            info->flags = rw;
        }
        if (b->mem_size) {
            info->flags |= DEVVM_REGION_F_MMAP;
            info->nr_areas = 1;
            info->areas[0].offset = b->mem_offset;
            info->areas[0].size = b->mem_size;
        }
    } else if (index == DEVVM_PCI_ROM_REGION) {
        info->size = desc->rom_size;
        info->flags = desc->rom_size ? DEVVM_REGION_F_READ : 0;
    } else if (index == DEVVM_PCI_CONFIG_REGION) {
        info->size = config_size(desc);
        info->flags = rw;
    }
    return 0;
}

int devvm_dev_irq_info(const struct devvm_device *desc, uint32_t index,
                       struct devvm_irq_info *info)
{
    if (index >= DEVVM_PCI_NUM_IRQS) {
        return -DEVVM_EINVAL;
    }
    __builtin_memset(info, 0, sizeof(*info));
    info->argsz = 16;
    info->index = index;
    switch (index) {
    case DEVVM_PCI_INTX_IRQ:
        info->count = desc->intx_pin ? 1 : 0;
        info->flags = DEVVM_IRQ_INFO_F_EVENTFD | DEVVM_IRQ_INFO_F_MASKABLE |
                      DEVVM_IRQ_INFO_F_AUTOMASKED;
        break;
    case DEVVM_PCI_MSI_IRQ:
        info->count = desc->msi_vectors;
        info->flags = DEVVM_IRQ_INFO_F_EVENTFD;
        break;
    case DEVVM_PCI_MSIX_IRQ:
        info->count = desc->msix_vectors;
        info->flags = DEVVM_IRQ_INFO_F_EVENTFD;
        break;
    }
    return 0;
}

/* ---- region accesses ---------------------------------------------------- */

/* What serves BAR byte @off, and up to where (exclusive). */
enum { PART_DEVICE, PART_MEM, PART_MSIX };

static int bar_part(const struct devvm_dev *dev, unsigned bar, uint64_t off,
                    uint64_t *end)
{
    const struct devvm_device *d = dev->desc;
    const struct devvm_bar *b = &d->bars[bar];
    uint64_t starts[3], lens[3];
    int kinds[3] = { PART_MEM, PART_MSIX, PART_MSIX };
    unsigned i, n = 0;

    starts[n] = b->mem_offset;
    lens[n++] = b->mem_size;
    if (d->msix_vectors && d->msix_bar == bar) {
        starts[n] = d->msix_table_offset;
        lens[n++] = msix_table_size(d);
        starts[n] = d->msix_pba_offset;
        lens[n++] = msix_pba_size(d);
    }
    *end = b->size;
    for (i = 0; i < n; i++) {
        if (!lens[i]) {
            continue;
        }
        if (off - starts[i] < lens[i]) {
            *end = starts[i] + lens[i];
            return kinds[i];
        }
        if (starts[i] > off && starts[i] < *end) {
            *end = starts[i];
        }
    }
    return PART_DEVICE;
}

/* Aligned pieces of [off, off + count) of @bar for desc->read/write. */
static void device_rw(struct devvm_dev *dev, int write, unsigned bar,
                      uint64_t off, uint8_t *buf, uint64_t count)
{
    const struct devvm_device *d = dev->desc;
    uint64_t done = 0;

    while (done < count) {
        unsigned size = piece_size(off + done, count - done, 8), i;
        uint64_t v = 0;

        if (write) {
            for (i = 0; i < size; i++) {
                v |= (uint64_t)buf[done + i] << (8 * i);
            }
            d->write(dev, bar, off + done, size, v);
        } else {
            v = d->read(dev, bar, off + done, size);
            for (i = 0; i < size; i++) {
                buf[done + i] = v >> (8 * i);
            }
        }
        done += size;
    }
}

static int region_rw(struct devvm_dev *dev, int write, uint32_t region,
                     uint64_t offset, uint8_t *buf, uint32_t count)
{
    const struct devvm_device *d = dev->desc;
    uint64_t done = 0;

    if (region == DEVVM_PCI_CONFIG_REGION) {
        if (!inside(offset, count, config_size(d))) {
            return -DEVVM_EINVAL;
        }
        config_rw(dev, write, (uint32_t)offset, buf, count);
        return 0;
    }
    if (region == DEVVM_PCI_ROM_REGION) {
        if (write || !inside(offset, count, d->rom_size)) {
            return -DEVVM_EINVAL;
        }
        device_rw(dev, 0, DEVVM_ROM_BAR, offset, buf, count);
        return 0;
    }
    if (region >= DEVVM_NUM_BARS || d->bars[region].type == DEVVM_BAR_UNUSED ||
        !inside(offset, count, d->bars[region].size)) {
        return -DEVVM_EINVAL;
    }
    while (done < count) {
        uint64_t at = offset + done, end, n;
        int part = bar_part(dev, region, at, &end);
        const struct devvm_bar *b = &d->bars[region];
        uint8_t *mem;

        n = end - at < count - done ? end - at : count - done;
        switch (part) {
        case PART_MEM:
            if (!dev->bar_mem[region]) {
                return -DEVVM_EIO;      /* the runtime gave no memory */
            }
            mem = (uint8_t *)dev->bar_mem[region] + (at - b->mem_offset);
            if (write) {
                __builtin_memcpy(mem, buf + done, n);
            } else {
                __builtin_memcpy(buf + done, mem, n);
            }
            break;
        case PART_MSIX:
            /* the client emulates the table and the PBA */
            if (!write) {
                __builtin_memset(buf + done, 0, n);
            }
            break;
        default:
            device_rw(dev, write, region, at, buf + done, n);
            break;
        }
        done += n;
    }
    return 0;
}

int devvm_dev_region_read(struct devvm_dev *dev, uint32_t region,
                          uint64_t offset, void *buf, uint32_t count)
{
    return region_rw(dev, 0, region, offset, buf, count);
}

int devvm_dev_region_write(struct devvm_dev *dev, uint32_t region,
                           uint64_t offset, const void *buf, uint32_t count)
{
    return region_rw(dev, 1, region, offset, (uint8_t *)buf, count);
}

/* ---- helpers for callbacks ---------------------------------------------- */

void *devvm_priv(struct devvm_dev *dev)
{
    return dev->priv;
}

const struct devvm_device *devvm_desc(struct devvm_dev *dev)
{
    return dev->desc;
}

const void *devvm_type_data(struct devvm_dev *dev)
{
    return dev->type_data;
}

void *devvm_bar_mem(struct devvm_dev *dev, unsigned bar)
{
    return bar < DEVVM_NUM_BARS ? dev->bar_mem[bar] : 0;
}

int devvm_bus_master(struct devvm_dev *dev)
{
    return !!(devvm_ld16(dev->config + PCI_COMMAND) & PCI_COMMAND_MASTER);
}

/* 0 when a DMA of @len at @addr may go to the runtime. */
static int dma_allowed(struct devvm_dev *dev, uint64_t addr, size_t len)
{
    /*
     * with bus mastering off, no client memory is reachable; the
     * DMA_NO_MASTER fault lets a test device try anyway, so that the
     * client's own check is exercised
     */
    if (addr + len < addr ||
        (!devvm_bus_master(dev) && !dev->dma_ignores_master)) {
        return -DEVVM_EFAULT;
    }
    return 0;
}

/*
 * Any length, in pieces of at most the runtime's dma_max: each one
 * copied straight where the runtime maps it, else the runtime's DMA.
 * The first piece that fails ends the transfer.
 */
static int dma_rw(struct devvm_dev *dev, int write, uint64_t addr,
                  uint8_t *buf, size_t len)
{
    const struct devvm_rt_ops *rt = dev->rt;
    int ret = dma_allowed(dev, addr, len);

    while (!ret && len) {
        size_t n = len < rt->dma_max ? len : rt->dma_max;
        uint8_t *p = rt->dma_map ? rt->dma_map(dev, addr, n, write) : 0;

        if (!p) {
            ret = rt->dma(dev, write, addr, buf, n);
        } else if (write) {
            __builtin_memcpy(p, buf, n);
        } else {
            __builtin_memcpy(buf, p, n);
        }
        addr += n;
        buf += n;
        len -= n;
    }
    return ret;
}

int devvm_dma_read(struct devvm_dev *dev, uint64_t addr, void *buf,
                   size_t len)
{
    return dma_rw(dev, 0, addr, buf, len);
}

int devvm_dma_write(struct devvm_dev *dev, uint64_t addr, const void *buf,
                    size_t len)
{
    return dma_rw(dev, 1, addr, (uint8_t *)buf, len);
}

void *devvm_dma_map(struct devvm_dev *dev, uint64_t addr, size_t len,
                    int write)
{
    if (!len || dma_allowed(dev, addr, len) || !dev->rt->dma_map) {
        return 0;
    }
    return dev->rt->dma_map(dev, addr, len, write);
}

void devvm_intx_set(struct devvm_dev *dev, int level)
{
    if (!dev->desc->intx_pin) {
        devvm_log(dev, "INTx raised or lowered, but the device has no pin");
        return;
    }
    dev->rt->irq(dev, DEVVM_PCI_INTX_IRQ, 0,
                 level ? DEVVM_IRQ_RAISE : DEVVM_IRQ_LOWER);
}

void devvm_msi_notify(struct devvm_dev *dev, unsigned vector)
{
    if (vector >= dev->desc->msi_vectors) {
        devvm_log(dev, "MSI vector %u does not exist", vector);
        return;
    }
    dev->rt->irq(dev, DEVVM_PCI_MSI_IRQ, vector, DEVVM_IRQ_PULSE);
}

void devvm_msix_notify(struct devvm_dev *dev, unsigned vector)
{
    if (vector >= dev->desc->msix_vectors) {
        devvm_log(dev, "MSI-X vector %u does not exist", vector);
        return;
    }
    dev->rt->irq(dev, DEVVM_PCI_MSIX_IRQ, vector, DEVVM_IRQ_PULSE);
}

uint64_t devvm_irq_signals(struct devvm_dev *dev)
{
    return dev->irq_signals;
}

void devvm_log(struct devvm_dev *dev, const char *fmt, ...)
{
    char line[SDK_LOG_MAX];
    va_list ap;
    int len;

    va_start(ap, fmt);
    len = devvm_vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (len >= (int)sizeof(line)) {
        len = sizeof(line) - 1;
    }
    dev->rt->log(dev, line, len < 0 ? 0 : (size_t)len);
}

uint64_t devvm_now_ns(void)
{
    return devvm_rt_now_ns();
}

void devvm_sleep_ns(uint64_t ns)
{
    devvm_rt_sleep_ns(ns);
}

const char *devvm_fault_name(enum devvm_fault fault)
{
    static const char *const names[] = {
        [DEVVM_FAULT_NONE] = "none",
        [DEVVM_FAULT_HANG] = "hang",
        [DEVVM_FAULT_CRASH] = "crash",
        [DEVVM_FAULT_GARBAGE] = "garbage",
        [DEVVM_FAULT_HUGE_SIZE] = "huge-size",
        [DEVVM_FAULT_WRONG_ID] = "wrong-id",
        [DEVVM_FAULT_UNEXPECTED_FD] = "unexpected-fd",
        [DEVVM_FAULT_CLOSE] = "close",
        [DEVVM_FAULT_DMA_NO_MASTER] = "dma-no-master",
    };

    if ((unsigned)fault < sizeof(names) / sizeof(*names)) {
        return names[fault];
    }
    return "unknown";
}

void devvm_fault(struct devvm_dev *dev, enum devvm_fault fault)
{
    /* the SDK's own fault; NONE disarms it and goes on to the runtime */
    if (fault == DEVVM_FAULT_DMA_NO_MASTER) {
        dev->dma_ignores_master = 1;
        devvm_log(dev, "fault dma-no-master: DMA ignores bus mastering");
        return;
    }
    if (fault == DEVVM_FAULT_NONE) {
        dev->dma_ignores_master = 0;
    }
    if (dev->rt->fault) {
        dev->rt->fault(dev, fault);
    }
}
