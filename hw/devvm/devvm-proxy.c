/*
 * devvm-proxy: a PCI function whose device model runs elsewhere
 *
 * The proxy connects to a vfio-user socket (a process-mode device, a devvm
 * gateway in front of a device VM, or any vfio-user server), by its path
 * or through a socket chardev, builds a PCI function from what the device
 * describes, and forwards:
 *
 *  - BAR accesses: on the devvm ring transport when both sides offer it
 *    (posted writes, reads that poll briefly and then sleep on a
 *    doorbell), else as vfio-user REGION_READ/WRITE on the socket; parts
 *    of BARs the device offers as sparse mmap areas are mapped straight
 *    into the guest.  BAR regions are lockless: a vCPU never holds the
 *    BQL while it waits, and every wait is bounded by timeout-ms.
 *  - config space: the standard header, BARs, MSI and MSI-X are emulated
 *    here; the bodies of other capabilities are forwarded, and for a PCI
 *    Express function all of extended config space (0x100-0xfff).
 *  - interrupts: eventfds given to the device with SET_IRQS, handled in
 *    the main loop (INTx with vfio's automasked level model); under KVM
 *    an unmasked MSI or MSI-X vector's eventfd is a KVM irqfd instead.
 *    A device VM's interrupts may come as events on the ring.
 *  - DMA: a memory listener (and a vIOMMU's notifiers) tells the device
 *    which guest memory it may use (DMA_MAP, with an fd when the RAM has
 *    one); the device's DMA_READ/WRITE requests are served through the
 *    bus-master address space, so bus-master disable stops them.
 *
 * When the device goes away, reads return all-ones and writes are
 * dropped; the failure is reported once (error_report, trace, QMP event)
 * and the proxy reconnects every reconnect-ms (or takes the chardev's
 * next connection), replaying DMA maps, interrupt eventfds and the
 * command register.  docs/devvm/proxy.rst describes the device.
 *
 * As in hw/vfio/, the device is in several files, with its state and
 * what they call across each other in hw/devvm/proxy.h: this one is the
 * QOM device (properties, realize, reset, unrealize, query-devvm-proxy);
 * conn.c the connection, its failure and recovery; bar.c the BARs;
 * config.c config space; irq.c interrupts; dma.c DMA; events.c the
 * device's events on the ring.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qapi/qapi-commands-devvm.h"
#include "qemu/lockable.h"
#include "qemu/module.h"
#include "hw/pci/msi.h"
#include "hw/pci/msix.h"
#include "hw/pci/pci.h"
#include "hw/qdev-properties.h"
#include "hw/qdev-properties-system.h"
#include "migration/blocker.h"
#include "proxy.h"
#include "trace.h"

#define DEVVM_PROXY_DEFAULT_TIMEOUT_MS 5000
#define DEVVM_PROXY_DEFAULT_RECONNECT_MS 1000

/* ---- realize, reset, unrealize ----------------------------------------- */

static void devvm_proxy_teardown(DevvmProxyState *s)
{
    PCIDevice *pdev = PCI_DEVICE(s);

    devvm_proxy_free_dma(s);
    devvm_proxy_free_conn(s);
    devvm_proxy_free_irqs(s);
    if (s->msi.msix_cap) {
        msix_uninit(pdev, &s->bars[s->msi.msix_table_bar].mr,
                    &s->bars[s->msi.msix_pba_bar].mr);
        s->msi.msix_cap = 0;
    }
    if (s->msi.msi_cap) {
        msi_uninit(pdev);
        s->msi.msi_cap = 0;
    }
    devvm_proxy_free_bars(s);
    migrate_del_blocker(&s->migration_blocker);
    g_free(s->conn.fail_reason);
    s->conn.fail_reason = NULL;
    g_free(s->conn.peer);
    s->conn.peer = NULL;
}

static void devvm_proxy_realize(PCIDevice *pdev, Error **errp)
{
    ERRP_GUARD();
    DevvmProxyState *s = DEVVM_PROXY(pdev);
    const char *id = devvm_proxy_id(s);
    bool has_socket = s->socket_path && *s->socket_path;
    bool has_chr = qemu_chr_fe_backend_connected(&s->chr);
    int ret;

    trace_devvm_proxy_realize(id, s->socket_path ?: "",
                              has_chr ? qemu_chr_fe_get_driver(&s->chr)->label
                                      : "");

    if (!has_socket && !has_chr) {
        error_setg(errp, "'socket' or 'chardev' property is required: "
                   "the device's vfio-user socket, by its path or as a "
                   "socket chardev");
        trace_devvm_proxy_realize_failed(id, "no socket");
        return;
    }
    if (has_socket && has_chr) {
        error_setg(errp, "'socket' and 'chardev' exclude each other: "
                   "give one of them");
        trace_devvm_proxy_realize_failed(id, "socket and chardev");
        return;
    }
    if (!s->timeout_ms) {
        error_setg(errp, "'timeout-ms' must be at least 1");
        return;
    }
    s->conn.fd = -1;
    QTAILQ_INIT(&s->dma.maps);
    QLIST_INIT(&s->dma.iommus);
    devvm_proxy_init_conn(s);

    if (!devvm_proxy_connect(s, errp)) {
        goto fail;
    }
    devvm_proxy_init_config(s);
    if (!devvm_proxy_init_bars(s, errp) || !devvm_proxy_add_caps(s, errp) ||
        !devvm_proxy_init_irqs(s, errp)) {
        goto fail;
    }
    WITH_QEMU_LOCK_GUARD(&s->lock) {
        ret = devvm_proxy_set_irqs_locked(s);
    }
    if (ret) {
        error_setg(errp, "SET_IRQS: %s", devvm_strerror(ret));
        goto fail;
    }
    if (!devvm_proxy_attach_ring(s, errp)) {
        goto fail;
    }

    s->conn.link = DEVVM_PROXY_LINK_CONNECTED;
    devvm_proxy_init_dma(s);
    if (s->conn.link != DEVVM_PROXY_LINK_CONNECTED) {
        error_setg(errp, "the device failed while its DMA maps were set up: "
                   "%s", s->conn.fail_reason);
        goto fail;
    }

    error_setg(&s->migration_blocker, "devvm-proxy %s: the device's state "
               "lives in another process and cannot be migrated", id);
    if (migrate_add_blocker(&s->migration_blocker, errp) < 0) {
        goto fail;
    }
    devvm_proxy_start_conn(s);
    trace_devvm_proxy_realized(id, s->conn.ring_open);
    return;

fail:
    error_prepend(errp, "devvm-proxy %s: ", id);
    trace_devvm_proxy_realize_failed(id, error_get_pretty(*errp));
    s->conn.link = DEVVM_PROXY_LINK_FAILED;
    devvm_proxy_teardown(s);
}

static void devvm_proxy_exit(PCIDevice *pdev)
{
    DevvmProxyState *s = DEVVM_PROXY(pdev);

    trace_devvm_proxy_exit(devvm_proxy_id(s));
    s->conn.link = DEVVM_PROXY_LINK_FAILED;
    devvm_proxy_teardown(s);
}

static void devvm_proxy_reset_hold(Object *obj, ResetType type)
{
    DevvmProxyState *s = DEVVM_PROXY(obj);
    PCIDevice *pdev = PCI_DEVICE(obj);
    int ret;

    if (qatomic_xchg(&s->intx.asserted, false)) {
        pci_set_irq(pdev, 0);
    }
    /* msi_reset() turns MSI off without a config write: take them back */
    devvm_proxy_kvm_detach_all(s);
    if (s->msi.msix_cap) {
        msix_reset(pdev);
    }
    if (s->msi.msi_cap) {
        msi_reset(pdev);
    }
    QEMU_LOCK_GUARD(&s->lock);
    if (s->conn.link != DEVVM_PROXY_LINK_CONNECTED ||
        !(s->desc.info.flags & DEVVM_DEVICE_F_RESET)) {
        return;
    }
    trace_devvm_proxy_reset(devvm_proxy_id(s));
    ret = devvm_client_reset(&s->conn.client);
    if (ret && ret != DEVVM_E_PEER) {
        devvm_proxy_fail_locked(s, "DEVICE_RESET", ret);
    } else if (!ret && s->intx.present) {
        /* the device starts with INTx unmasked */
        ret = devvm_client_set_irqs(&s->conn.client, DEVVM_IRQ_SET_DATA_NONE |
                                    DEVVM_IRQ_SET_ACTION_UNMASK,
                                    DEVVM_PCI_INTX_IRQ, 0, 1, NULL, NULL);
        if (ret && ret != DEVVM_E_PEER) {
            devvm_proxy_fail_locked(s, "INTx unmask", ret);
        }
    }
}

static void devvm_proxy_instance_init(Object *obj)
{
    DevvmProxyState *s = DEVVM_PROXY(obj);

    qemu_mutex_init(&s->lock);
    s->conn.fd = -1;
    s->conn.thread_fd = -1;
    s->conn.pending_fd = -1;
    s->conn.link = DEVVM_PROXY_LINK_FAILED;
    /*
     * 4 KiB of config space, as for any PCI Express device; realize makes
     * the function conventional again unless the device is PCI Express.
     */
    PCI_DEVICE(obj)->cap_present |= QEMU_PCI_CAP_EXPRESS;
}

static void devvm_proxy_instance_finalize(Object *obj)
{
    DevvmProxyState *s = DEVVM_PROXY(obj);

    qemu_mutex_destroy(&s->lock);
}

/* ---- QMP ----------------------------------------------------------------- */

static int devvm_proxy_query_one(Object *obj, void *opaque)
{
    DevvmProxyInfoList ***tail = opaque;
    DevvmProxyState *s;
    DevvmProxyInfo *info;
    unsigned i;

    s = (DevvmProxyState *)object_dynamic_cast(obj, TYPE_DEVVM_PROXY);
    if (!s || !DEVICE(s)->realized) {
        return 0;
    }
    info = g_new0(DevvmProxyInfo, 1);
    info->id = g_strdup(DEVICE(s)->id);
    info->qom_path = object_get_canonical_path(obj);
    info->socket = g_strdup(s->conn.peer);
    WITH_QEMU_LOCK_GUARD(&s->lock) {
        info->state = s->conn.link == DEVVM_PROXY_LINK_CONNECTED ?
                      DEVVM_PROXY_LINK_STATE_CONNECTED :
                      DEVVM_PROXY_LINK_STATE_FAILED;
        info->reason = g_strdup(s->conn.link == DEVVM_PROXY_LINK_FAILED ?
                                s->conn.fail_reason : NULL);
        info->ring = s->conn.ring_open;
        info->events = s->conn.events_open;
        info->generation = s->conn.generation;
    }
    info->reads = stat64_get(&s->stats.reads);
    info->writes = stat64_get(&s->stats.writes);
    info->dma_bytes = stat64_get(&s->stats.dma_bytes);
    info->irqs = stat64_get(&s->stats.irqs);
    info->timeouts = stat64_get(&s->stats.timeouts);
    info->failures = stat64_get(&s->stats.failures);
    for (i = 0; i < s->msi.msi_vectors; i++) {
        info->kvm_irqfds += s->msi.msi[i].irqfd;
    }
    for (i = 0; i < s->msi.msix_vectors; i++) {
        info->kvm_irqfds += s->msi.msix[i].irqfd;
    }
    QAPI_LIST_APPEND(*tail, info);
    return 0;
}

DevvmProxyInfoList *qmp_query_devvm_proxy(Error **errp)
{
    DevvmProxyInfoList *head = NULL, **tail = &head;

    object_child_foreach_recursive(object_get_root(), devvm_proxy_query_one,
                                   &tail);
    return head;
}

/* ---- type ---------------------------------------------------------------- */

static const Property devvm_proxy_properties[] = {
    DEFINE_PROP_STRING("socket", DevvmProxyState, socket_path),
    DEFINE_PROP_CHR("chardev", DevvmProxyState, chr),
    DEFINE_PROP_UINT32("timeout-ms", DevvmProxyState, timeout_ms,
                       DEVVM_PROXY_DEFAULT_TIMEOUT_MS),
    DEFINE_PROP_UINT32("reconnect-ms", DevvmProxyState, reconnect_ms,
                       DEVVM_PROXY_DEFAULT_RECONNECT_MS),
    DEFINE_PROP_BOOL("ring", DevvmProxyState, use_ring, true),
    DEFINE_PROP_BOOL("events", DevvmProxyState, use_events, true),
    DEFINE_PROP_BOOL("kvm-irqfd", DevvmProxyState, use_kvm_irqfd, true),
};

static void devvm_proxy_class_init(ObjectClass *klass, const void *data)
{
    DeviceClass *dc = DEVICE_CLASS(klass);
    PCIDeviceClass *k = PCI_DEVICE_CLASS(klass);
    ResettableClass *rc = RESETTABLE_CLASS(klass);

    k->realize = devvm_proxy_realize;
    k->exit = devvm_proxy_exit;
    k->config_read = devvm_proxy_config_read;
    k->config_write = devvm_proxy_config_write;
    rc->phases.hold = devvm_proxy_reset_hold;
    device_class_set_props(dc, devvm_proxy_properties);
    dc->desc = "PCI function emulated by a devvm device VM or process";
    dc->hotpluggable = true;
    set_bit(DEVICE_CATEGORY_MISC, dc->categories);
}

static const TypeInfo devvm_proxy_types[] = {
    {
        .name          = TYPE_DEVVM_PROXY,
        .parent        = TYPE_PCI_DEVICE,
        .instance_size = sizeof(DevvmProxyState),
        .instance_init = devvm_proxy_instance_init,
        .instance_finalize = devvm_proxy_instance_finalize,
        .class_init    = devvm_proxy_class_init,
        .interfaces    = (const InterfaceInfo[]) {
            { INTERFACE_PCIE_DEVICE },
            { INTERFACE_CONVENTIONAL_PCI_DEVICE },
            { }
        },
    },
};

DEFINE_TYPES(devvm_proxy_types)
