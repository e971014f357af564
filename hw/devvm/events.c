/*
 * devvm-proxy: the device's events on the ring (EVENTS).
 *
 * With EVENTS the device sends its DMA requests, interrupts and logs on
 * the ring channel's EVT ring, and rings the call doorbell for them (we
 * keep its need_wakeup set).  Whoever holds s->lock and waits for the
 * device consumes them: a ring read (rc.events), a socket call
 * (client.aux_*: the device may need its DMA done before it answers);
 * otherwise the main loop does, on the call doorbell.  Interrupts are
 * handed to the eventfd handlers, which inject them from the main loop.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/error-report.h"
#include "qemu/lockable.h"
#include "qemu/main-loop.h"
#include "proxy.h"
#include "trace.h"

static void devvm_proxy_event_error(DevvmProxyState *s, const char *what)
{
    trace_devvm_proxy_event_bad(devvm_proxy_id(s), what);
    if (!s->conn.event_error_reported) {
        s->conn.event_error_reported = true;
        warn_report("devvm-proxy %s: the device sent a bad event (%s); "
                    "ignored", devvm_proxy_id(s), what);
    }
}

static int devvm_proxy_event_dma(void *opaque, int write, uint64_t addr,
                                 void *buf, uint64_t len)
{
    DevvmProxyState *s = opaque;

    return devvm_proxy_dma_rw(s, addr, buf, len,
                              write ? DMA_DIRECTION_FROM_DEVICE :
                                      DMA_DIRECTION_TO_DEVICE);
}

static void devvm_proxy_event_irq(void *opaque, uint32_t index,
                                  uint64_t vector, uint64_t action)
{
    DevvmProxyState *s = opaque;
    DevvmProxyVector *v = NULL;

    trace_devvm_proxy_event_irq(devvm_proxy_id(s), index, vector, action);
    if (action > DEVVM_IRQ_PULSE) {
        devvm_proxy_event_error(s, "interrupt action");
        return;
    }
    switch (index) {
    case DEVVM_PCI_INTX_IRQ:
        if (!s->intx.present || vector) {
            break;
        }
        /* automasked as with the eventfd: ended at the guest's access */
        s->intx.level = action == DEVVM_IRQ_RAISE;
        if (action != DEVVM_IRQ_LOWER && !qatomic_read(&s->intx.asserted)) {
            event_notifier_set(&s->intx.e);
        }
        return;
    case DEVVM_PCI_MSI_IRQ:
        v = vector < s->msi.msi_vectors ? &s->msi.msi[vector] : NULL;
        break;
    case DEVVM_PCI_MSIX_IRQ:
        v = vector < s->msi.msix_vectors ? &s->msi.msix[vector] : NULL;
        break;
    }
    if (!v) {
        devvm_proxy_event_error(s, "no such interrupt vector");
    } else if (action != DEVVM_IRQ_LOWER) {
        devvm_proxy_signal_vector_locked(s, v);
    }
}

static void devvm_proxy_event_log(void *opaque, const char *msg)
{
    trace_devvm_proxy_device_log(devvm_proxy_id(opaque), msg);
}

static void devvm_proxy_event_bad(void *opaque, const struct devvm_slot *sl)
{
    devvm_proxy_event_error(opaque, sl->op == DEVVM_OP_DMA_READ ||
                                    sl->op == DEVVM_OP_DMA_WRITE ?
                                    "DMA outside the ring's data area" :
                                    "an operation that is no event");
}

static const struct devvm_ring_event_ops devvm_proxy_event_ops = {
    .dma = devvm_proxy_event_dma,
    .irq = devvm_proxy_event_irq,
    .log = devvm_proxy_event_log,
    .bad_slot = devvm_proxy_event_bad,
};

/* rc.events: a ring read consumes the events while it waits. */
static int devvm_proxy_ring_events(void *opaque)
{
    DevvmProxyState *s = opaque;

    return devvm_ring_client_events(&s->conn.rc, &devvm_proxy_event_ops, s);
}

/* client.aux_ready: so does a socket call, on the call doorbell. */
static int devvm_proxy_call_ready(void *opaque)
{
    DevvmProxyState *s = opaque;

    return devvm_ring_client_service(&s->conn.rc);
}

/*
 * The call doorbell, while nobody waits: the main loop consumes, and
 * injects the interrupts itself once s->lock is dropped.
 */
static void devvm_proxy_call_readable(void *opaque)
{
    DevvmProxyState *s = opaque;
    int ret;

    WITH_QEMU_LOCK_GUARD(&s->lock) {
        if (s->conn.events_open &&
            s->conn.link == DEVVM_PROXY_LINK_CONNECTED) {
            s->conn.events_main_loop = true;
            ret = devvm_ring_client_service(&s->conn.rc);
            s->conn.events_main_loop = false;
            if (ret) {
                devvm_proxy_fail_locked(s, "event ring", ret);
            }
        }
    }
    devvm_proxy_inject_pending(s);
}

/* The ring we attached grants EVENTS.  Called with s->lock held. */
void devvm_proxy_events_open_locked(DevvmProxyState *s)
{
    int ret;

    s->conn.events_open = true;
    /* a new channel belongs to a fresh device instance: its line is low */
    s->intx.level = false;
    s->conn.rc.events = devvm_proxy_ring_events;
    s->conn.client.aux_fd = s->conn.rc.call_fd;
    s->conn.client.aux_ready = devvm_proxy_call_ready;
    qemu_set_fd_handler(s->conn.rc.call_fd, devvm_proxy_call_readable, NULL, s);
    /* asks for the doorbell, and takes what came before it did */
    ret = devvm_proxy_ring_events(s);
    if (ret) {
        devvm_proxy_fail_locked(s, "event ring", ret);
    }
}
