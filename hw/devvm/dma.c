/*
 * devvm-proxy: DMA.  The device's DMA requests (DMA_READ/WRITE on the
 * socket, DMA slots among its events on the ring) are served only into
 * guest RAM of the function's bus-master address space.  The guest
 * memory the device may use is told to it with DMA_MAP and DMA_UNMAP,
 * by a memory listener on that address space and by the notifiers of
 * the vIOMMUs in it, and told again on a new connection.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/error-report.h"
#include "qemu/log.h"
#include "qemu/lockable.h"
#include "hw/pci/pci.h"
#include "system/dma.h"
#include "proxy.h"
#include "trace.h"

/* ---- the device's DMA requests ------------------------------------------ */

/*
 * Is [addr, addr + len) guest RAM in the function's bus-master address
 * space?  Device DMA is served only there: peer-to-peer DMA into another
 * device's MMIO would take the BQL from a thread that holds s->lock,
 * while the main loop (holding the BQL) may wait for s->lock.  With bus
 * mastering off the address space is empty and nothing is RAM.
 */
static bool devvm_proxy_dma_is_ram(DevvmProxyState *s, uint64_t addr,
                                   uint64_t len, bool is_write)
{
    AddressSpace *as = pci_get_address_space(PCI_DEVICE(s));

    RCU_READ_LOCK_GUARD();
    while (len) {
        hwaddr xlat, l = len;
        MemoryRegion *mr;

        mr = address_space_translate(as, addr, &xlat, &l, is_write,
                                     MEMTXATTRS_UNSPECIFIED);
        if (!memory_region_is_ram(mr) || memory_region_is_ram_device(mr) ||
            (is_write && mr->readonly) || !l) {
            return false;
        }
        addr += l;
        len -= MIN(l, len);
    }
    return true;
}

int devvm_proxy_dma_rw(DevvmProxyState *s, uint64_t addr, void *buf,
                       uint64_t len, DMADirection dir)
{
    bool is_write = dir == DMA_DIRECTION_FROM_DEVICE;
    MemTxResult r = MEMTX_DECODE_ERROR;

    if (devvm_proxy_dma_is_ram(s, addr, len, is_write)) {
        r = pci_dma_rw(PCI_DEVICE(s), addr, buf, len, dir,
                       MEMTXATTRS_UNSPECIFIED);
    }
    trace_devvm_proxy_dma(devvm_proxy_id(s), is_write ? "write" : "read",
                          addr, len, r);
    if (r != MEMTX_OK) {
        qemu_log_mask(LOG_GUEST_ERROR, "devvm-proxy %s: device DMA %s of "
                      "0x%" PRIx64 "+0x%" PRIx64 " refused: not guest RAM "
                      "the device may use\n", devvm_proxy_id(s),
                      is_write ? "write" : "read", addr, len);
        return -EFAULT;
    }
    stat64_add(&s->stats.dma_bytes, len);
    return 0;
}

/* ---- DMA_MAP: what guest memory the device may use ---------------------- */

static int devvm_proxy_dma_map_locked(DevvmProxyState *s,
                                      DevvmProxyDmaMap *m)
{
    struct devvm_dma_map map = {
        .argsz = 32,
        .flags = DEVVM_DMA_F_READ |
                 (m->readonly ? 0 : DEVVM_DMA_F_WRITE),
        .offset = m->has_fd ? m->fd_offset : 0,
        .addr = m->iova,
        .size = m->size,
    };
    int fd = m->has_fd ? memory_region_get_fd(m->mr) : -1;

    trace_devvm_proxy_dma_map(devvm_proxy_id(s), m->iova, m->size, fd);
    return devvm_client_dma_map(&s->conn.client, &map, fd);
}

/*
 * Tell the device it may use [iova, iova + size), which is @mr from
 * @offset on.  Called from the main loop with the BQL.  Returns false
 * when the device refused the range (it stays unusable); a broken
 * connection marks the device failed, and the map is kept for the replay.
 */
static bool devvm_proxy_dma_add(DevvmProxyState *s, DevvmProxyIommu *iommu,
                                hwaddr iova, uint64_t size,
                                MemoryRegion *mr, hwaddr offset,
                                bool readonly)
{
    DevvmProxyDmaMap *m = g_new0(DevvmProxyDmaMap, 1);
    int ret = 0;

    m->iova = iova;
    m->size = size;
    m->mr = mr;
    m->readonly = readonly || mr->readonly || memory_region_is_rom(mr);
    m->iommu = iommu;
    if (memory_region_get_fd(mr) >= 0) {
        m->has_fd = true;
        m->fd_offset = qemu_ram_block_host_offset(mr->ram_block,
                           memory_region_get_ram_ptr(mr) + offset);
    }
    WITH_QEMU_LOCK_GUARD(&s->lock) {
        if (s->conn.link == DEVVM_PROXY_LINK_CONNECTED) {
            ret = devvm_proxy_dma_map_locked(s, m);
            if (ret && ret != DEVVM_E_PEER) {
                devvm_proxy_fail_locked(s, "DMA_MAP", ret);
                ret = 0;
            }
        }
    }
    if (ret) {
        trace_devvm_proxy_dma_refused(devvm_proxy_id(s), iova, size,
                                      s->conn.client.peer_errno);
        if (!s->dma.refused_reported) {
            s->dma.refused_reported = true;
            warn_report("devvm-proxy %s: the device refused DMA to 0x%"
                        HWADDR_PRIx "+0x%" PRIx64 " (errno %d); its DMA "
                        "there fails", devvm_proxy_id(s), iova, size,
                        s->conn.client.peer_errno);
        }
        g_free(m);
        return false;
    }
    memory_region_ref(mr);
    QTAILQ_INSERT_TAIL(&s->dma.maps, m, next);
    return true;
}

/* Take @m back from the device and forget it. */
static void devvm_proxy_dma_remove(DevvmProxyState *s, DevvmProxyDmaMap *m)
{
    int ret;

    QTAILQ_REMOVE(&s->dma.maps, m, next);
    WITH_QEMU_LOCK_GUARD(&s->lock) {
        if (s->conn.link == DEVVM_PROXY_LINK_CONNECTED) {
            trace_devvm_proxy_dma_unmap(devvm_proxy_id(s), m->iova, m->size);
            ret = devvm_client_dma_unmap(&s->conn.client, m->iova, m->size, 0);
            if (ret && ret != DEVVM_E_PEER) {
                devvm_proxy_fail_locked(s, "DMA_UNMAP", ret);
            }
        }
    }
    memory_region_unref(m->mr);
    g_free(m);
}

/*
 * The guest changed a vIOMMU mapping of the function (with intel-iommu
 * this needs caching-mode=on, as for vfio-pci): map the RAM behind it
 * at its IOVA, or take every mapping in the range back.
 */
static void devvm_proxy_iommu_notify(IOMMUNotifier *n, IOMMUTLBEntry *iotlb)
{
    DevvmProxyIommu *iommu = container_of(n, DevvmProxyIommu, n);
    DevvmProxyState *s = iommu->proxy;
    hwaddr iova = iotlb->iova + iommu->offset;
    uint64_t size = iotlb->addr_mask + 1;
    DevvmProxyDmaMap *m, *tmp;
    Error *err = NULL;
    MemoryRegion *mr;
    hwaddr xlat;

    trace_devvm_proxy_iommu_notify(devvm_proxy_id(s),
                                   iotlb->perm == IOMMU_NONE ? "unmap" : "map",
                                   iova, size);
    if (iotlb->perm == IOMMU_NONE) {
        QTAILQ_FOREACH_SAFE(m, &s->dma.maps, next, tmp) {
            if (m->iommu == iommu && m->iova <= iova + iotlb->addr_mask &&
                iova <= m->iova + m->size - 1) {
                devvm_proxy_dma_remove(s, m);
            }
        }
        return;
    }
    if (iotlb->target_as != &address_space_memory) {
        qemu_log_mask(LOG_GUEST_ERROR, "devvm-proxy %s: vIOMMU mapping of "
                      "0x%" HWADDR_PRIx " into address space '%s' ignored: "
                      "only system memory can be mapped\n",
                      devvm_proxy_id(s), iova,
                      iotlb->target_as->name ?: "unnamed");
        return;
    }
    RCU_READ_LOCK_GUARD();
    mr = memory_translate_iotlb(iotlb, &xlat, &err);
    if (!mr || memory_region_is_ram_device(mr)) {
        qemu_log_mask(LOG_GUEST_ERROR, "devvm-proxy %s: vIOMMU mapping of "
                      "0x%" HWADDR_PRIx "+0x%" PRIx64 " ignored: %s\n",
                      devvm_proxy_id(s), iova, size,
                      err ? error_get_pretty(err) : "not guest RAM");
        error_free(err);
        return;
    }
    devvm_proxy_dma_add(s, iommu, iova, size, mr, xlat,
                        !(iotlb->perm & IOMMU_WO));
}

static void devvm_proxy_iommu_add(DevvmProxyState *s,
                                  MemoryRegionSection *section)
{
    IOMMUMemoryRegion *iommu_mr = IOMMU_MEMORY_REGION(section->mr);
    DevvmProxyIommu *iommu = g_new0(DevvmProxyIommu, 1);
    Int128 end = int128_add(int128_make64(section->offset_within_region),
                            section->size);
    Error *err = NULL;

    iommu->proxy = s;
    iommu->iommu_mr = iommu_mr;
    iommu->offset = section->offset_within_address_space -
                    section->offset_within_region;
    iommu_notifier_init(&iommu->n, devvm_proxy_iommu_notify,
                        IOMMU_NOTIFIER_IOTLB_EVENTS,
                        section->offset_within_region,
                        int128_get64(int128_sub(end, int128_one())),
                        memory_region_iommu_attrs_to_index(iommu_mr,
                            MEMTXATTRS_UNSPECIFIED));
    if (memory_region_register_iommu_notifier(section->mr, &iommu->n,
                                              &err)) {
        error_prepend(&err, "devvm-proxy %s: the device cannot DMA through "
                      "the vIOMMU: ", devvm_proxy_id(s));
        warn_report_err(err);
        g_free(iommu);
        return;
    }
    trace_devvm_proxy_iommu_add(devvm_proxy_id(s), section->mr->name,
                                section->offset_within_address_space);
    QLIST_INSERT_HEAD(&s->dma.iommus, iommu, next);
    memory_region_iommu_replay(iommu_mr, &iommu->n);
}

static void devvm_proxy_iommu_del(DevvmProxyState *s,
                                  MemoryRegionSection *section)
{
    DevvmProxyDmaMap *m, *tmp;
    DevvmProxyIommu *iommu;

    QLIST_FOREACH(iommu, &s->dma.iommus, next) {
        if (MEMORY_REGION(iommu->iommu_mr) == section->mr &&
            iommu->n.start == section->offset_within_region) {
            break;
        }
    }
    if (!iommu) {
        return;
    }
    memory_region_unregister_iommu_notifier(section->mr, &iommu->n);
    QTAILQ_FOREACH_SAFE(m, &s->dma.maps, next, tmp) {
        if (m->iommu == iommu) {
            devvm_proxy_dma_remove(s, m);
        }
    }
    QLIST_REMOVE(iommu, next);
    g_free(iommu);
}

static bool devvm_proxy_dma_section_ok(MemoryRegionSection *section)
{
    return memory_region_is_ram(section->mr) &&
           !memory_region_is_ram_device(section->mr) &&
           !memory_region_is_protected(section->mr) &&
           int128_get64(section->size);
}

static void devvm_proxy_region_add(MemoryListener *listener,
                                   MemoryRegionSection *section)
{
    DevvmProxyState *s = container_of(listener, DevvmProxyState,
                                      dma.listener);

    if (memory_region_is_iommu(section->mr)) {
        devvm_proxy_iommu_add(s, section);
    } else if (devvm_proxy_dma_section_ok(section)) {
        devvm_proxy_dma_add(s, NULL, section->offset_within_address_space,
                            int128_get64(section->size), section->mr,
                            section->offset_within_region,
                            section->readonly);
    }
}

static void devvm_proxy_region_del(MemoryListener *listener,
                                   MemoryRegionSection *section)
{
    DevvmProxyState *s = container_of(listener, DevvmProxyState,
                                      dma.listener);
    hwaddr iova = section->offset_within_address_space;
    DevvmProxyDmaMap *m;

    if (memory_region_is_iommu(section->mr)) {
        devvm_proxy_iommu_del(s, section);
        return;
    }
    QTAILQ_FOREACH(m, &s->dma.maps, next) {
        if (!m->iommu && m->iova == iova &&
            m->size == int128_get64(section->size)) {
            devvm_proxy_dma_remove(s, m);
            return;
        }
    }
}

/* Called with s->lock held. */
int devvm_proxy_replay_dma_locked(DevvmProxyState *s)
{
    DevvmProxyDmaMap *m;
    int ret;

    QTAILQ_FOREACH(m, &s->dma.maps, next) {
        ret = devvm_proxy_dma_map_locked(s, m);
        if (ret) {
            return ret;
        }
    }
    return 0;
}

/*
 * Tell the device the guest memory it may use: the listener's
 * region_add maps what there is now, and the rest as it comes.
 */
void devvm_proxy_init_dma(DevvmProxyState *s)
{
    s->dma.listener = (MemoryListener) {
        .name = "devvm-proxy-dma",
        .region_add = devvm_proxy_region_add,
        .region_del = devvm_proxy_region_del,
        .priority = MEMORY_LISTENER_PRIORITY_DEV_BACKEND,
    };
    memory_listener_register(&s->dma.listener,
                             pci_get_address_space(PCI_DEVICE(s)));
    s->dma.listener_on = true;
}

/* Stop listening and forget the maps; the device is not told. */
void devvm_proxy_free_dma(DevvmProxyState *s)
{
    DevvmProxyDmaMap *m, *tmp;

    if (s->dma.listener_on) {
        memory_listener_unregister(&s->dma.listener);
        s->dma.listener_on = false;
    }
    QTAILQ_FOREACH_SAFE(m, &s->dma.maps, next, tmp) {
        QTAILQ_REMOVE(&s->dma.maps, m, next);
        memory_region_unref(m->mr);
        g_free(m);
    }
}
