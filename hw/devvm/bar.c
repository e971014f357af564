/*
 * devvm-proxy: the BARs and the expansion ROM.  They are made from the
 * device's regions, with the parts it offers as sparse mmap areas mapped
 * straight into the guest; other accesses are forwarded, on the devvm
 * ring when both sides have it, else as REGION_READ/WRITE on the socket.
 * BAR regions are lockless: an access takes s->lock, never the BQL, and
 * every wait under it is bounded by timeout-ms.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/log.h"
#include "qemu/lockable.h"
#include "qemu/units.h"
#include "hw/pci/pci.h"
#include "proxy.h"
#include "trace.h"

/* ---- BAR accesses (no BQL) ---------------------------------------------- */

/*
 * A device access failed.  An error reply or a failed completion is the
 * device refusing this one access (a guest error); a ring header saying
 * the device is down is waited out; anything else means the connection
 * can no longer be trusted.
 */
static void devvm_proxy_access_error(DevvmProxyState *s, const char *what,
                                     DevvmProxyBar *bar, hwaddr addr,
                                     unsigned size, int ret)
{
    if (ret == DEVVM_E_PEER) {
        qemu_log_mask(LOG_GUEST_ERROR, "devvm-proxy %s: %u-byte %s at BAR%u "
                      "+ 0x%" HWADDR_PRIx " refused by the device\n",
                      devvm_proxy_id(s), size, what, bar->nr, addr);
        return;
    }
    if (ret == DEVVM_E_STALE || ret == DEVVM_E_STATE) {
        /*
         * The ring's header says the device is down or restarted: wait
         * for it on the same connection, then attach a new channel.
         */
        s->conn.ring_stale |= ret == DEVVM_E_STALE;
        devvm_proxy_device_down_locked(s, what, ret);
        return;
    }
    devvm_proxy_fail_locked(s, what, ret);
}

static uint64_t devvm_proxy_bar_read(void *opaque, hwaddr addr,
                                     unsigned size)
{
    DevvmProxyBar *bar = opaque;
    DevvmProxyState *s = bar->proxy;
    uint64_t val = MAKE_64BIT_MASK(0, size * 8);
    uint8_t buf[8];
    int ret;

    QEMU_LOCK_GUARD(&s->lock);
    /* under the lock: the unmask goes after this access (see the bh) */
    devvm_proxy_intx_eoi(s);
    if (s->conn.link != DEVVM_PROXY_LINK_CONNECTED) {
        trace_devvm_proxy_bar_read(devvm_proxy_id(s), bar->nr, addr, size,
                                   val, "failed");
        return val;
    }
    stat64_add(&s->stats.reads, 1);
    if (s->conn.ring_open) {
        ret = devvm_ring_client_read(&s->conn.rc, bar->nr, addr, size, &val,
                                     s->timeout_ms);
    } else {
        ret = devvm_client_region_read(&s->conn.client, bar->nr, addr, buf,
                                       size);
        if (!ret) {
            val = ldn_le_p(buf, size);
        }
    }
    if (ret) {
        devvm_proxy_access_error(s, "read", bar, addr, size, ret);
        val = MAKE_64BIT_MASK(0, size * 8);
    }
    trace_devvm_proxy_bar_read(devvm_proxy_id(s), bar->nr, addr, size, val,
                               ret ? devvm_strerror(ret) : "ok");
    return val;
}

static void devvm_proxy_bar_write(void *opaque, hwaddr addr, uint64_t val,
                                  unsigned size)
{
    DevvmProxyBar *bar = opaque;
    DevvmProxyState *s = bar->proxy;
    uint8_t buf[8];
    int ret;

    QEMU_LOCK_GUARD(&s->lock);
    /* under the lock: the unmask goes after this access (see the bh) */
    devvm_proxy_intx_eoi(s);
    if (s->conn.link != DEVVM_PROXY_LINK_CONNECTED) {
        trace_devvm_proxy_bar_write(devvm_proxy_id(s), bar->nr, addr, size,
                                    val, "dropped");
        return;
    }
    stat64_add(&s->stats.writes, 1);
    if (s->conn.ring_open) {
        ret = devvm_ring_client_write(&s->conn.rc, bar->nr, addr, size, val,
                                      s->timeout_ms);
    } else {
        /* posted: the device handles requests in order */
        stn_le_p(buf, size, val);
        ret = devvm_client_region_write(&s->conn.client, bar->nr, addr, buf,
                                        size, true);
    }
    if (ret) {
        devvm_proxy_access_error(s, "write", bar, addr, size, ret);
    }
    trace_devvm_proxy_bar_write(devvm_proxy_id(s), bar->nr, addr, size, val,
                                ret ? devvm_strerror(ret) : "ok");
}

static const MemoryRegionOps devvm_proxy_bar_ops = {
    .read = devvm_proxy_bar_read,
    .write = devvm_proxy_bar_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    .valid = {
        .min_access_size = 1,
        .max_access_size = 8,
    },
    .impl = {
        .min_access_size = 1,
        .max_access_size = 8,
    },
};

/* The expansion ROM: read-only, through the socket. */
static uint64_t devvm_proxy_rom_read(void *opaque, hwaddr addr, unsigned size)
{
    DevvmProxyState *s = opaque;
    uint8_t buf[8];
    int ret;

    QEMU_LOCK_GUARD(&s->lock);
    if (s->conn.link != DEVVM_PROXY_LINK_CONNECTED) {
        return MAKE_64BIT_MASK(0, size * 8);
    }
    ret = devvm_client_region_read(&s->conn.client, DEVVM_PCI_ROM_REGION, addr,
                                   buf, size);
    if (ret) {
        if (ret != DEVVM_E_PEER) {
            devvm_proxy_fail_locked(s, "ROM read", ret);
        }
        return MAKE_64BIT_MASK(0, size * 8);
    }
    return ldn_le_p(buf, size);
}

static void devvm_proxy_rom_write(void *opaque, hwaddr addr, uint64_t val,
                                  unsigned size)
{
    qemu_log_mask(LOG_GUEST_ERROR, "devvm-proxy: write to the expansion "
                  "ROM at 0x%" HWADDR_PRIx " ignored\n", addr);
}

static const MemoryRegionOps devvm_proxy_rom_ops = {
    .read = devvm_proxy_rom_read,
    .write = devvm_proxy_rom_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    .valid = {
        .min_access_size = 1,
        .max_access_size = 4,
    },
};

/* ---- the BARs of the PCI function ---------------------------------------- */

static bool devvm_proxy_map_sparse(DevvmProxyState *s, DevvmProxyBar *bar,
                                   Error **errp)
{
    struct devvm_region_info r;
    size_t page = qemu_real_host_page_size();
    unsigned i;
    int fd = -1, ret, prot;

    WITH_QEMU_LOCK_GUARD(&s->lock) {
        ret = devvm_client_region_info(&s->conn.client, bar->nr, &r, &fd);
    }
    if (ret) {
        error_setg(errp, "GET_REGION_INFO %u: %s", bar->nr,
                   devvm_strerror(ret));
        return false;
    }
    if (r.size != bar->size) {
        error_setg(errp, "BAR%u changed size from 0x%" PRIx64 " to 0x%"
                   PRIx64 " while it was set up", bar->nr, bar->size, r.size);
        if (fd >= 0) {
            close(fd);
        }
        return false;
    }
    if (fd < 0) {
        return true;
    }
    prot = ((r.flags & DEVVM_REGION_F_READ) ? PROT_READ : 0) |
           ((r.flags & DEVVM_REGION_F_WRITE) ? PROT_WRITE : 0);
    for (i = 0; i < r.nr_areas && bar->nr_mmaps < DEVVM_PROXY_MAX_SPARSE;
         i++) {
        DevvmProxyMmap *m = &bar->mmaps[bar->nr_mmaps];
        uint64_t off = r.areas[i].offset, size = r.areas[i].size;
        g_autofree char *name = NULL;
        void *p;

        /* an area we cannot map stays on the forwarding path */
        if (!QEMU_IS_ALIGNED(off | size | r.offset, page)) {
            trace_devvm_proxy_sparse_skipped(devvm_proxy_id(s), bar->nr, off,
                                             size);
            continue;
        }
        p = mmap(NULL, size, prot, MAP_SHARED, fd, r.offset + off);
        if (p == MAP_FAILED) {
            error_setg_errno(errp, errno, "mmap of BAR%u + 0x%" PRIx64
                             " (0x%" PRIx64 " bytes)", bar->nr, off, size);
            close(fd);
            return false;
        }
        name = g_strdup_printf("devvm-proxy-bar%u-mmap%u", bar->nr, i);
        memory_region_init_ram_device_ptr(&m->mr, OBJECT(s), name, size, p);
        memory_region_add_subregion_overlap(&bar->mr, off, &m->mr, 1);
        m->host = p;
        m->size = size;
        bar->nr_mmaps++;
        trace_devvm_proxy_sparse_mapped(devvm_proxy_id(s), bar->nr, off,
                                        size);
    }
    close(fd);
    return true;
}

bool devvm_proxy_init_bars(DevvmProxyState *s, Error **errp)
{
    PCIDevice *pdev = PCI_DEVICE(s);
    unsigned i;

    for (i = 0; i < PCI_ROM_SLOT; i++) {
        DevvmProxyBar *bar = &s->bars[i];
        uint32_t reg = pci_get_long(s->desc.config + PCI_BASE_ADDRESS_0 +
                                    4 * i);
        uint64_t size = s->desc.regions[i].size;
        g_autofree char *name = NULL;

        bar->proxy = s;
        bar->nr = i;
        if (!size) {
            continue;
        }
        if (reg & PCI_BASE_ADDRESS_SPACE_IO) {
            bar->type = PCI_BASE_ADDRESS_SPACE_IO;
            if (size < 4 || size > 256) {
                error_setg(errp, "I/O BAR%u of %" PRIu64 " bytes: I/O BARs "
                           "are 4 to 256 bytes", i, size);
                return false;
            }
        } else {
            bar->type = reg & (PCI_BASE_ADDRESS_MEM_TYPE_MASK |
                               PCI_BASE_ADDRESS_MEM_PREFETCH);
            if (size < 16) {
                error_setg(errp, "memory BAR%u of %" PRIu64 " bytes: the "
                           "minimum is 16", i, size);
                return false;
            }
        }
        if (!is_power_of_2(size)) {
            error_setg(errp, "BAR%u size 0x%" PRIx64 " is not a power of "
                       "two", i, size);
            return false;
        }
        if (bar->type & PCI_BASE_ADDRESS_MEM_TYPE_64) {
            if (i == PCI_ROM_SLOT - 1 || s->desc.regions[i + 1].size) {
                error_setg(errp, "64-bit BAR%u needs BAR%u unused", i, i + 1);
                return false;
            }
        } else if (!(bar->type & PCI_BASE_ADDRESS_SPACE_IO) &&
                   size > 2 * GiB) {
            error_setg(errp, "32-bit BAR%u of %" PRIu64 " bytes: "
                       "larger than 2 GiB needs a 64-bit BAR", i, size);
            return false;
        }
        bar->size = size;
        name = g_strdup_printf("devvm-proxy-bar%u", i);
        memory_region_init_io(&bar->mr, OBJECT(s), &devvm_proxy_bar_ops, bar,
                              name, size);
        /* accesses take s->lock, never the BQL (see the header comment) */
        memory_region_enable_lockless_io(&bar->mr);
        if (!devvm_proxy_map_sparse(s, bar, errp)) {
            return false;
        }
        pci_register_bar(pdev, i, bar->type, &bar->mr);
        trace_devvm_proxy_bar(devvm_proxy_id(s), i, bar->type, size,
                              bar->nr_mmaps);
        if (bar->type & PCI_BASE_ADDRESS_MEM_TYPE_64) {
            i++;
        }
    }
    if (s->desc.regions[DEVVM_PCI_ROM_REGION].size) {
        uint64_t size = s->desc.regions[DEVVM_PCI_ROM_REGION].size;

        if (!is_power_of_2(size) || size < 2 * KiB) {
            error_setg(errp, "expansion ROM of 0x%" PRIx64 " bytes: it must "
                       "be a power of two of at least 2 KiB", size);
            return false;
        }
        memory_region_init_io(&s->rom, OBJECT(s), &devvm_proxy_rom_ops, s,
                              "devvm-proxy-rom", size);
        pci_register_bar(pdev, PCI_ROM_SLOT, PCI_BASE_ADDRESS_SPACE_MEMORY,
                         &s->rom);
        s->has_rom = true;
    }
    return true;
}

/* Unmap the BARs' sparse mmap areas. */
void devvm_proxy_free_bars(DevvmProxyState *s)
{
    unsigned i, j;

    for (i = 0; i < PCI_ROM_SLOT; i++) {
        for (j = 0; j < s->bars[i].nr_mmaps; j++) {
            DevvmProxyMmap *mm = &s->bars[i].mmaps[j];

            memory_region_del_subregion(&s->bars[i].mr, &mm->mr);
            object_unparent(OBJECT(&mm->mr));
            munmap(mm->host, mm->size);
        }
        s->bars[i].nr_mmaps = 0;
    }
}
