/*
 * devvm-proxy: interrupts.  The device signals eventfds it is given with
 * SET_IRQS (with EVENTS, the proxy signals them for it).  INTx is handled
 * in the main loop with vfio's automasked level model; MSI and MSI-X in
 * the main loop, or by KVM through KVM irqfds on MSI routes.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/lockable.h"
#include "qemu/main-loop.h"
#include "hw/pci/msi.h"
#include "hw/pci/msix.h"
#include "hw/pci/pci.h"
#include "system/kvm.h"
#include "proxy.h"
#include "trace.h"

/* ---- INTx ---------------------------------------------------------------- */

static void devvm_proxy_intx_handler(EventNotifier *e)
{
    DevvmProxyState *s = container_of(e, DevvmProxyState, intx.e);

    if (!event_notifier_test_and_clear(e)) {
        return;
    }
    stat64_add(&s->stats.irqs, 1);
    trace_devvm_proxy_irq(devvm_proxy_id(s), "intx", 0);
    /* automasked: the device signals again only after an unmask */
    qatomic_set(&s->intx.asserted, true);
    pci_set_irq(PCI_DEVICE(s), 1);
}

/*
 * vfio's model of a level interrupt without an EOI notification: the
 * guest's next access to a BAR is taken as the end of the interrupt.
 * Lower the line and unmask; the device signals again if it still wants
 * service.  The BAR access (no BQL) only marks the end as due and
 * schedules this; a config access, which may read the status register's
 * interrupt bit, runs a due end first.  Main loop, BQL held.
 */
void devvm_proxy_intx_eoi_run(DevvmProxyState *s)
{
    int ret;

    if (!qatomic_xchg(&s->intx.eoi_due, false) ||
        !qatomic_xchg(&s->intx.asserted, false)) {
        return;
    }
    pci_set_irq(PCI_DEVICE(s), 0);
    QEMU_LOCK_GUARD(&s->lock);
    if (s->conn.link == DEVVM_PROXY_LINK_CONNECTED) {
        if (s->conn.ring_open) {
            /*
             * A posted ring write that clears the cause may not have
             * reached the device yet, and the unmask travels on the
             * socket: a read on the ring is ordered after the writes (as
             * a non-posted request after posted writes on PCIe).  Best
             * effort: a failure shows at the next BAR access.
             */
            uint64_t v;

            devvm_ring_client_read(&s->conn.rc, DEVVM_PCI_CONFIG_REGION,
                                   PCI_VENDOR_ID, 2, &v, s->timeout_ms);
        }
        if (s->conn.events_open) {
            /*
             * The device tells its line itself: the read took its events
             * up to the access.  Still high: it wants service again.
             */
            if (s->intx.level) {
                event_notifier_set(&s->intx.e);
            }
            return;
        }
        ret = devvm_client_set_irqs(&s->conn.client,
                                    DEVVM_IRQ_SET_DATA_NONE |
                                    DEVVM_IRQ_SET_ACTION_UNMASK,
                                    DEVVM_PCI_INTX_IRQ, 0, 1, NULL, NULL);
        if (ret && ret != DEVVM_E_PEER) {
            devvm_proxy_fail_locked(s, "INTx unmask", ret);
        }
    }
}

static void devvm_proxy_intx_eoi_bh(void *opaque)
{
    devvm_proxy_intx_eoi_run(opaque);
}

/* Called with s->lock held, so the unmask follows the access. */
void devvm_proxy_intx_eoi(DevvmProxyState *s)
{
    if (qatomic_read(&s->intx.asserted) &&
        !qatomic_xchg(&s->intx.eoi_due, true)) {
        aio_bh_schedule_oneshot(qemu_get_aio_context(),
                                devvm_proxy_intx_eoi_bh, s);
    }
}

/* ---- MSI and MSI-X ------------------------------------------------------- */

/*
 * MSI vectors the guest enabled, 0 if MSI is off: despite its name,
 * msi_nr_vectors_allocated() reads Multiple Message Enable.
 */
static unsigned devvm_proxy_msi_enabled_vectors(DevvmProxyState *s)
{
    PCIDevice *pdev = PCI_DEVICE(s);

    if (!s->msi.msi_cap || !msi_enabled(pdev)) {
        return 0;
    }
    return MIN(msi_nr_vectors_allocated(pdev), s->msi.msi_vectors);
}

/* The main loop, BQL held. */
static void devvm_proxy_vector_inject(DevvmProxyState *s, DevvmProxyVector *v)
{
    PCIDevice *pdev = PCI_DEVICE(s);

    stat64_add(&s->stats.irqs, 1);
    trace_devvm_proxy_irq(devvm_proxy_id(s), v->msix ? "msix" : "msi",
                          v->nr);
    /*
     * Masking and pending bits are msix_notify()'s and msi_notify()'s.
     * A device may signal an MSI vector the guest did not enable (it
     * declared more than the guest took): dropped, as the hardware would.
     */
    if (v->msix) {
        msix_notify(pdev, v->nr);
    } else if (v->nr < devvm_proxy_msi_enabled_vectors(s)) {
        msi_notify(pdev, v->nr);
    }
}

static void devvm_proxy_vector_handler(EventNotifier *e)
{
    DevvmProxyVector *v = container_of(e, DevvmProxyVector, e);

    if (event_notifier_test_and_clear(e)) {
        devvm_proxy_vector_inject(v->proxy, v);
    }
}

/*
 * An interrupt the device sent as an event on the ring (events.c).  Its
 * vector's eventfd is signalled, for KVM or the handler above; but when
 * the main loop is the one taking the events, a vector that the main
 * loop delivers is only marked, and devvm_proxy_inject_pending() injects
 * it once s->lock is dropped (msix_notify() may write to a BAR of ours,
 * which takes s->lock).  That saves the eventfd's write, the main loop's
 * next pass, and the read.  The order holds: a DMA the device asked for
 * before the interrupt has been done by then.
 */
void devvm_proxy_signal_vector_locked(DevvmProxyState *s, DevvmProxyVector *v)
{
    if (s->conn.events_main_loop && !v->irqfd) {
        if (!v->pending) {
            v->pending = true;
            s->msi.pending++;
        }
        return;
    }
    event_notifier_set(&v->e);
}

void devvm_proxy_inject_pending(DevvmProxyState *s)
{
    DevvmProxyVector *kinds[] = { s->msi.msi, s->msi.msix };
    uint32_t counts[] = { s->msi.msi_vectors, s->msi.msix_vectors };
    unsigned k, i;

    for (k = 0; k < ARRAY_SIZE(kinds) && s->msi.pending; k++) {
        for (i = 0; i < counts[k] && s->msi.pending; i++) {
            if (kinds[k][i].pending) {
                kinds[k][i].pending = false;
                s->msi.pending--;
                devvm_proxy_vector_inject(s, &kinds[k][i]);
            }
        }
    }
}

/* ---- MSI and MSI-X through KVM irqfds ------------------------------------ */

/* Back to the main loop; the route is kept for the next unmask. */
static void devvm_proxy_kvm_detach(DevvmProxyState *s, DevvmProxyVector *v)
{
    if (!v->irqfd) {
        return;
    }
    kvm_irqchip_remove_irqfd_notifier_gsi(kvm_state, &v->e, v->virq);
    v->irqfd = false;
    event_notifier_set_handler(&v->e, devvm_proxy_vector_handler);
    trace_devvm_proxy_kvm_irqfd(devvm_proxy_id(s), v->msix ? "msix" : "msi",
                                v->nr, v->virq, "main loop");
}

/*
 * Under KVM with an in-kernel irqchip an unmasked MSI or MSI-X vector is
 * delivered by the kernel: its eventfd, the one the device was given with
 * SET_IRQS, becomes a KVM irqfd on an MSI route, and a signal interrupts
 * the guest without waking QEMU.  A masked or disabled vector goes back
 * to the main-loop handler above, so that msix_notify() and msi_notify()
 * keep its pending bit; an eventfd signalled in between keeps its count,
 * so no signal is lost either way.  Unlike vfio, which switches the
 * device to a second eventfd, the device never hears of it: a mask sends
 * no message and a reconnect has nothing more to replay.  BQL held.
 */
static void devvm_proxy_kvm_attach(DevvmProxyState *s, DevvmProxyVector *v,
                                   MSIMessage msg)
{
    PCIDevice *pdev = PCI_DEVICE(s);
    const char *kind = v->msix ? "msix" : "msi";
    KVMRouteChange c;
    int ret;

    if (v->virq < 0) {
        c = kvm_irqchip_begin_route_changes(kvm_state);
        v->virq = kvm_irqchip_add_msi_route(&c, v->nr, pdev);
        if (v->virq < 0) {
            trace_devvm_proxy_kvm_irqfd_failed(devvm_proxy_id(s), kind, v->nr,
                                               "no MSI route", -v->virq);
            return;
        }
        kvm_irqchip_commit_route_changes(&c);
        v->msg = msg;
    } else if (v->msg.address != msg.address || v->msg.data != msg.data) {
        if (kvm_irqchip_update_msi_route(kvm_state, v->virq, msg, pdev) < 0) {
            devvm_proxy_kvm_detach(s, v);
            return;
        }
        kvm_irqchip_commit_routes(kvm_state);
        v->msg = msg;
    }
    if (v->irqfd) {
        return;
    }
    event_notifier_set_handler(&v->e, NULL);
    ret = kvm_irqchip_add_irqfd_notifier_gsi(kvm_state, &v->e, NULL, v->virq);
    if (ret < 0) {
        trace_devvm_proxy_kvm_irqfd_failed(devvm_proxy_id(s), kind, v->nr,
                                           "no irqfd", -ret);
        event_notifier_set_handler(&v->e, devvm_proxy_vector_handler);
        return;
    }
    v->irqfd = true;
    trace_devvm_proxy_kvm_irqfd(devvm_proxy_id(s), kind, v->nr, v->virq,
                                "kernel");
}

static int devvm_proxy_msix_use(PCIDevice *pdev, unsigned nr,
                                MSIMessage msg)
{
    DevvmProxyState *s = DEVVM_PROXY(pdev);

    /* without a route the main loop delivers it: not an error */
    devvm_proxy_kvm_attach(s, &s->msi.msix[nr], msg);
    return 0;
}

static void devvm_proxy_msix_release(PCIDevice *pdev, unsigned nr)
{
    DevvmProxyState *s = DEVVM_PROXY(pdev);

    devvm_proxy_kvm_detach(s, &s->msi.msix[nr]);
}

/*
 * After each config write.  MSI has no vector notifiers: route its
 * enabled and unmasked vectors through KVM and the others through the
 * main loop.  MSI-X's notifiers are not told when MSI-X is turned off
 * (msix_write_config() returns early): take its vectors back then.
 */
void devvm_proxy_kvm_config_update(DevvmProxyState *s)
{
    PCIDevice *pdev = PCI_DEVICE(s);
    unsigned n = msix_enabled(pdev) ? 0 : devvm_proxy_msi_enabled_vectors(s);
    unsigned i;

    if (!msix_enabled(pdev)) {
        for (i = 0; i < s->msi.msix_vectors; i++) {
            devvm_proxy_kvm_detach(s, &s->msi.msix[i]);
        }
    }
    for (i = 0; i < s->msi.msi_vectors; i++) {
        if (i < n && !msi_is_masked(pdev, i)) {
            devvm_proxy_kvm_attach(s, &s->msi.msi[i], msi_get_message(pdev, i));
        } else {
            devvm_proxy_kvm_detach(s, &s->msi.msi[i]);
        }
    }
}

/* Every vector back to the main loop, before a reset. */
void devvm_proxy_kvm_detach_all(DevvmProxyState *s)
{
    unsigned i;

    for (i = 0; i < s->msi.msi_vectors; i++) {
        devvm_proxy_kvm_detach(s, &s->msi.msi[i]);
    }
    for (i = 0; i < s->msi.msix_vectors; i++) {
        devvm_proxy_kvm_detach(s, &s->msi.msix[i]);
    }
}

/* ---- eventfds, and the device told of them (SET_IRQS) -------------------- */

/*
 * Give the device our eventfds: one SET_IRQS per IRQ index.  Called at
 * realize and again after a reconnect.  Called with s->lock held.
 */
int devvm_proxy_set_irqs_locked(DevvmProxyState *s)
{
    uint32_t flags = DEVVM_IRQ_SET_DATA_EVENTFD | DEVVM_IRQ_SET_ACTION_TRIGGER;
    g_autofree int *fds = NULL;
    unsigned i;
    int fd, ret;

    if (s->intx.present) {
        fd = event_notifier_get_fd(&s->intx.e);
        ret = devvm_client_set_irqs(&s->conn.client, flags, DEVVM_PCI_INTX_IRQ,
                                    0, 1, &fd, NULL);
        if (ret) {
            return ret;
        }
    }
    if (s->msi.msi_vectors) {
        fds = g_new(int, s->msi.msi_vectors);
        for (i = 0; i < s->msi.msi_vectors; i++) {
            fds[i] = event_notifier_get_fd(&s->msi.msi[i].e);
        }
        ret = devvm_client_set_irqs(&s->conn.client, flags, DEVVM_PCI_MSI_IRQ,
                                    0, s->msi.msi_vectors, fds, NULL);
        g_free(g_steal_pointer(&fds));
        if (ret) {
            return ret;
        }
    }
    if (s->msi.msix_vectors) {
        fds = g_new(int, s->msi.msix_vectors);
        for (i = 0; i < s->msi.msix_vectors; i++) {
            fds[i] = event_notifier_get_fd(&s->msi.msix[i].e);
        }
        ret = devvm_client_set_irqs(&s->conn.client, flags, DEVVM_PCI_MSIX_IRQ,
                                    0, s->msi.msix_vectors, fds, NULL);
        if (ret) {
            return ret;
        }
    }
    return 0;
}

/* Eventfds for @n vectors of one kind. */
static DevvmProxyVector *devvm_proxy_new_vectors(DevvmProxyState *s,
                                                unsigned n, bool msix,
                                                Error **errp)
{
    DevvmProxyVector *v = g_new0(DevvmProxyVector, n);
    unsigned i;

    for (i = 0; i < n; i++) {
        v[i].proxy = s;
        v[i].nr = i;
        v[i].msix = msix;
        v[i].virq = -1;
        if (event_notifier_init(&v[i].e, 0) < 0) {
            error_setg_errno(errp, errno, "cannot create %s eventfds",
                             msix ? "MSI-X" : "MSI");
            while (i--) {
                event_notifier_cleanup(&v[i].e);
            }
            g_free(v);
            return NULL;
        }
        event_notifier_set_handler(&v[i].e, devvm_proxy_vector_handler);
        if (msix) {
            msix_vector_use(PCI_DEVICE(s), i);
        }
    }
    return v;
}

static void devvm_proxy_free_vectors(DevvmProxyVector **v, uint32_t *n)
{
    unsigned i;

    for (i = 0; i < *n; i++) {
        if ((*v)[i].irqfd) {
            kvm_irqchip_remove_irqfd_notifier_gsi(kvm_state, &(*v)[i].e,
                                                  (*v)[i].virq);
        }
        if ((*v)[i].virq >= 0) {
            kvm_irqchip_release_virq(kvm_state, (*v)[i].virq);
        }
        event_notifier_set_handler(&(*v)[i].e, NULL);
        event_notifier_cleanup(&(*v)[i].e);
    }
    g_free(*v);
    *v = NULL;
    *n = 0;
}

bool devvm_proxy_init_irqs(DevvmProxyState *s, Error **errp)
{
    PCIDevice *pdev = PCI_DEVICE(s);
    /* what the device can do: Multiple Message Capable, the table size */
    uint16_t msi_flags = s->msi.msi_cap ?
        pci_get_word(pdev->config + s->msi.msi_cap + PCI_MSI_FLAGS) : 0;
    unsigned msi = s->msi.msi_cap ?
        1u << ((msi_flags & PCI_MSI_FLAGS_QMASK) >> 1) : 0;
    unsigned msix = s->msi.msix_cap ? pdev->msix_entries_nr : 0;

    s->intx.present = pdev->config[PCI_INTERRUPT_PIN] &&
                      s->desc.info.num_irqs > DEVVM_PCI_INTX_IRQ &&
                      s->desc.irqs[DEVVM_PCI_INTX_IRQ].count;
    if (s->intx.present) {
        if (event_notifier_init(&s->intx.e, 0) < 0) {
            error_setg_errno(errp, errno, "cannot create the INTx eventfd");
            s->intx.present = false;
            return false;
        }
        event_notifier_set_handler(&s->intx.e, devvm_proxy_intx_handler);
    }
    if (msi) {
        s->msi.msi = devvm_proxy_new_vectors(s, msi, false, errp);
        if (!s->msi.msi) {
            return false;
        }
        s->msi.msi_vectors = msi;
    }
    if (msix) {
        s->msi.msix = devvm_proxy_new_vectors(s, msix, true, errp);
        if (!s->msi.msix) {
            return false;
        }
        s->msi.msix_vectors = msix;
    }
    s->msi.kvm_irqfd = s->use_kvm_irqfd && kvm_enabled() &&
                       kvm_irqfds_enabled() && kvm_msi_via_irqfd_enabled() &&
                       kvm_gsi_routing_enabled() && (msi || msix);
    if (s->msi.kvm_irqfd && msix) {
        /* MSI-X is not enabled yet: no vector is used before this */
        msix_set_vector_notifiers(pdev, devvm_proxy_msix_use,
                                  devvm_proxy_msix_release, NULL);
        s->msi.msix_notifiers = true;
    }
    return true;
}

void devvm_proxy_free_irqs(DevvmProxyState *s)
{
    if (s->msi.msix_notifiers) {
        msix_unset_vector_notifiers(PCI_DEVICE(s));
        s->msi.msix_notifiers = false;
    }
    if (s->intx.present) {
        event_notifier_set_handler(&s->intx.e, NULL);
        event_notifier_cleanup(&s->intx.e);
        s->intx.present = false;
    }
    devvm_proxy_free_vectors(&s->msi.msi, &s->msi.msi_vectors);
    devvm_proxy_free_vectors(&s->msi.msix, &s->msi.msix_vectors);
}
