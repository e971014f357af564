/*
 * devvm-proxy: the connection to the device, the transport under the PCI
 * function.  Connecting (socket=) or taking the chardev's connection
 * (chardev=), negotiating, reading what the device is and attaching a
 * ring channel; the client role's callbacks and the socket's handler;
 * failure and recovery: a failure is reported once from the main loop,
 * and a reconnect thread makes the connection again (on a timer, or
 * with the chardev's next connection) for the main loop to restore.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qapi/qapi-events-devvm.h"
#include "chardev/char-socket.h"
#include "qemu/error-report.h"
#include "qemu/lockable.h"
#include "qemu/main-loop.h"
#include "hw/pci/pci.h"
#include "proxy.h"
#include "trace.h"

/* ---- failure and recovery ---------------------------------------------- */

/*
 * The connection or the device failed: from now on reads return all-ones
 * and writes are dropped.  Called with s->lock held, from any thread;
 * the reporting and the clean-up happen in the main loop (state_bh).
 * Unless the device itself said it is down behind a sound connection
 * (devvm_proxy_device_down_locked()), the connection is closed and made
 * again: after a timeout or a protocol error it is out of step.
 */
void devvm_proxy_fail_locked(DevvmProxyState *s, const char *what, int err)
{
    s->conn.need_close = true;
    qemu_bh_schedule(s->conn.state_bh);
    if (s->conn.link == DEVVM_PROXY_LINK_FAILED) {
        return;     /* reported already; state_bh still closes */
    }
    s->conn.link = DEVVM_PROXY_LINK_FAILED;
    g_free(s->conn.fail_reason);
    s->conn.fail_reason = g_strdup_printf("%s: %s", what, devvm_strerror(err));
    if (err == DEVVM_E_TIMEOUT) {
        stat64_add(&s->stats.timeouts, 1);
    }
    stat64_add(&s->stats.failures, 1);
    trace_devvm_proxy_failed(devvm_proxy_id(s), s->conn.fail_reason);
}

/*
 * The device side reported (EVENT, or the ring header) that it is not
 * READY or restarted, while the socket is fine: wait for it to come back
 * on the same connection.  Called with s->lock held.
 */
void devvm_proxy_device_down_locked(DevvmProxyState *s, const char *what,
                                    int err)
{
    bool need_close = s->conn.need_close;

    devvm_proxy_fail_locked(s, what, err);
    s->conn.need_close = need_close;
}

/* Called with s->lock held. */
static void devvm_proxy_ring_close_locked(DevvmProxyState *s)
{
    if (s->conn.events_open) {
        qemu_set_fd_handler(s->conn.rc.call_fd, NULL, NULL, NULL);
        s->conn.client.aux_fd = -1;
        s->conn.client.aux_ready = NULL;
        s->conn.events_open = false;
    }
    if (s->conn.ring_open) {
        devvm_ring_client_close(&s->conn.rc);
        s->conn.ring_open = false;
    }
}

/* Called with s->lock held. */
static void devvm_proxy_close_locked(DevvmProxyState *s)
{
    devvm_proxy_ring_close_locked(s);
    if (s->conn.fd >= 0) {
        qemu_set_fd_handler(s->conn.fd, NULL, NULL, NULL);
        close(s->conn.fd);
        s->conn.fd = -1;
    }
}

static void devvm_proxy_send_event(DevvmProxyState *s, const char *reason)
{
    char *path = object_get_canonical_path(OBJECT(s));

    qapi_event_send_devvm_proxy_state_changed(
        DEVICE(s)->id, path,
        s->conn.link == DEVVM_PROXY_LINK_CONNECTED ?
        DEVVM_PROXY_LINK_STATE_CONNECTED : DEVVM_PROXY_LINK_STATE_FAILED,
        reason);
    g_free(path);
}

/*
 * chardev=: the connection the proxy used is out of step or unusable.
 * Close the chardev's end too, so that the device sees the session end
 * and the chardev connects again (its reconnect-ms); unless the chardev
 * closed already or has a newer connection.  Main loop.
 */
static void devvm_proxy_chr_drop(DevvmProxyState *s)
{
    if (s->conn.chr_open && s->conn.fd_conn == s->conn.chr_conn) {
        trace_devvm_proxy_chr_drop(devvm_proxy_id(s), s->conn.chr_conn);
        qemu_chr_fe_disconnect(&s->chr);
    }
}

/*
 * A device that restarted, or a new connection, starts with its command
 * register clear: tell it what the guest set (memory, I/O, bus master,
 * INTx disable), as a config write would.  Called with s->lock held.
 */
static int devvm_proxy_replay_command_locked(DevvmProxyState *s)
{
    uint8_t buf[2];

    stw_le_p(buf, pci_get_word(PCI_DEVICE(s)->config + PCI_COMMAND));
    return devvm_client_region_write(&s->conn.client, DEVVM_PCI_CONFIG_REGION,
                                     PCI_COMMAND, buf, sizeof(buf), false);
}

/* Main loop: report a failure once, tidy up, schedule the reconnect. */
static void devvm_proxy_state_bh(void *opaque)
{
    DevvmProxyState *s = opaque;
    g_autofree char *reason = NULL;
    bool failed, stale, closed = false;

    WITH_QEMU_LOCK_GUARD(&s->lock) {
        failed = s->conn.link == DEVVM_PROXY_LINK_FAILED;
        stale = s->conn.ring_stale;
        reason = g_strdup(s->conn.fail_reason);
        if (failed && (s->conn.need_close || s->conn.client.broken)) {
            /* the connection is out of step: start over */
            closed = s->conn.fd >= 0;
            devvm_proxy_close_locked(s);
            s->conn.need_close = false;
        }
    }
    if (closed && qemu_chr_fe_backend_connected(&s->chr) &&
        !s->conn.reconnecting) {
        devvm_proxy_chr_drop(s);
    }

    if (failed && !s->conn.failure_reported) {
        s->conn.failure_reported = true;
        error_report("devvm-proxy %s: device at '%s' failed (%s); reads "
                     "return all-ones until it is back", devvm_proxy_id(s),
                     s->conn.peer, reason);
        devvm_proxy_send_event(s, reason);
        if (qatomic_xchg(&s->intx.asserted, false)) {
            pci_set_irq(PCI_DEVICE(s), 0);
        }
    }
    /* with a chardev, the chardev reconnects */
    if (failed && s->conn.fd < 0 && s->reconnect_ms && !s->conn.reconnecting &&
        !qemu_chr_fe_backend_connected(&s->chr) &&
        !timer_pending(s->conn.reconnect_timer)) {
        timer_mod(s->conn.reconnect_timer,
                  qemu_clock_get_ms(QEMU_CLOCK_REALTIME) + s->reconnect_ms);
    }
    if (stale && s->conn.fd >= 0) {
        /* the device restarted behind a live socket: new ring channel */
        Error *err = NULL;

        if (devvm_proxy_attach_ring(s, &err)) {
            WITH_QEMU_LOCK_GUARD(&s->lock) {
                /* the device restarted: its command register is clear */
                devvm_proxy_replay_command_locked(s);
                s->conn.ring_stale = false;
                if (s->conn.link == DEVVM_PROXY_LINK_FAILED &&
                    !s->conn.client.broken) {
                    s->conn.link = DEVVM_PROXY_LINK_CONNECTED;
                }
            }
            if (s->conn.failure_reported) {
                s->conn.failure_reported = false;
                info_report("devvm-proxy %s: device is back (generation "
                             "%u)", devvm_proxy_id(s), s->conn.generation);
                devvm_proxy_send_event(s, "device restarted");
            }
        } else {
            trace_devvm_proxy_reconnect_failed(devvm_proxy_id(s),
                                               error_get_pretty(err));
            error_free(err);
            /* nothing else would try again: the timer does */
            if (s->reconnect_ms) {
                timer_mod(s->conn.reconnect_timer,
                          qemu_clock_get_ms(QEMU_CLOCK_REALTIME) +
                          s->reconnect_ms);
            }
        }
    }
}

/* ---- the client role's callbacks (called with s->lock held) ------------ */

static int devvm_proxy_dma_read(void *opaque, uint64_t addr, void *buf,
                                uint64_t len)
{
    return devvm_proxy_dma_rw(opaque, addr, buf, len,
                              DMA_DIRECTION_TO_DEVICE);
}

static int devvm_proxy_dma_write(void *opaque, uint64_t addr,
                                 const void *buf, uint64_t len)
{
    return devvm_proxy_dma_rw(opaque, addr, (void *)buf, len,
                              DMA_DIRECTION_FROM_DEVICE);
}

static void devvm_proxy_event(void *opaque, const struct devvm_event *ev)
{
    DevvmProxyState *s = opaque;

    trace_devvm_proxy_event(devvm_proxy_id(s), devvm_state_name(ev->state),
                            ev->generation, ev->reason);
    if (ev->state != DEVVM_STATE_READY) {
        g_autofree char *what =
            g_strdup_printf("device %s (%s)", devvm_state_name(ev->state),
                            ev->reason_len ? ev->reason : "no reason given");

        devvm_proxy_device_down_locked(s, what, DEVVM_E_STATE);
        return;
    }
    /*
     * READY in a new generation, or again after it said it was down:
     * state_bh attaches a fresh ring channel and resumes forwarding.
     */
    if (ev->generation != s->conn.generation ||
        s->conn.link == DEVVM_PROXY_LINK_FAILED) {
        s->conn.generation = ev->generation;
        s->conn.ring_stale = true;
        qemu_bh_schedule(s->conn.state_bh);
    }
}

static const struct devvm_client_ops devvm_proxy_client_ops = {
    .dma_read = devvm_proxy_dma_read,
    .dma_write = devvm_proxy_dma_write,
    .event = devvm_proxy_event,
};

/*
 * Serve what the device sent on the socket without waiting: its requests
 * (DMA_READ/WRITE, EVENT) arrive while no call of ours is reading.
 * Called with s->lock held; returns DEVVM_E_CLOSED once the socket is
 * dead.
 */
static int devvm_proxy_poll_socket_locked(DevvmProxyState *s)
{
    int ret;

    if (s->conn.fd >= 0 && !s->conn.client.broken) {
        ret = devvm_client_poll(&s->conn.client, 0);
        if (ret && ret != DEVVM_E_AGAIN) {
            devvm_proxy_fail_locked(s, "socket", ret);
        }
    }
    return s->conn.client.broken ? DEVVM_E_CLOSED : 0;
}

/* Main loop: the socket is readable. */
static void devvm_proxy_sock_readable(void *opaque)
{
    DevvmProxyState *s = opaque;

    if (qemu_mutex_trylock(&s->lock)) {
        return;     /* a caller holds the socket and serves it itself */
    }
    devvm_proxy_poll_socket_locked(s);
    qemu_mutex_unlock(&s->lock);
    if (s->conn.client.broken) {
        /* stop polling a dead socket; state_bh closes it */
        qemu_set_fd_handler(s->conn.fd, NULL, NULL, NULL);
    }
}

/* ---- the connection ------------------------------------------------------ */

/*
 * A ring read sleeps (holding s->lock): serve the socket meanwhile, and
 * stop waiting once the device is gone with it.
 */
static int devvm_proxy_aux_ready(void *opaque)
{
    return devvm_proxy_poll_socket_locked(opaque);
}

/*
 * Connect (socket=) or take the connected socket @fd (chardev=, else -1)
 * and negotiate on a new client @c; returns its fd or -1 (@fd closed).
 * @c answers the device's requests with @ops (NULL while a reconnect only
 * probes the device from its own thread).
 */
static int devvm_proxy_open(DevvmProxyState *s, int fd,
                            struct devvm_client *c,
                            const struct devvm_client_ops *ops, Error **errp)
{
    struct devvm_caps want;
    int ret;

    if (fd < 0) {
        fd = devvm_sock_connect(s->socket_path);
        if (fd < 0) {
            error_setg_errno(errp, -fd, "cannot connect to '%s'",
                             s->socket_path);
            return -1;
        }
    }
    devvm_client_init(c, fd, s->timeout_ms, ops, s);
    devvm_caps_default(&want);
    want.max_msg_fds = DEVVM_MAX_FDS;
    want.max_data_xfer_size = DEVVM_MAX_XFER;
    want.max_dma_maps = DEVVM_MAX_DMA_MAPS;
    want.devvm = 1;
    want.devvm_version = DEVVM_EXT_VERSION;
    want.devvm_ring = s->use_ring;
    ret = devvm_client_negotiate(c, &want);
    if (ret == DEVVM_E_PEER && c->peer_errno == EUSERS) {
        error_setg(errp, "'%s': the device serves no more clients: every "
                   "instance of it is in use", s->conn.peer);
        close(fd);
        return -1;
    }
    if (ret) {
        error_setg(errp, "'%s': version negotiation failed: %s%s%s%s",
                   s->conn.peer, devvm_strerror(ret),
                   ret == DEVVM_E_PEER ? " (the device refused: " : "",
                   ret == DEVVM_E_PEER ? strerror(c->peer_errno) : "",
                   ret == DEVVM_E_PEER ? ")" : "");
        close(fd);
        return -1;
    }
    trace_devvm_proxy_connected(devvm_proxy_id(s), s->conn.peer,
                                c->caps.devvm, c->caps.devvm_ring);
    return fd;
}

/* Read what the device is, through @c. */
static bool devvm_proxy_describe(struct devvm_client *c,
                                 struct devvm_device_info *info,
                                 struct devvm_region_info *regions,
                                 struct devvm_irq_info *irqs,
                                 uint8_t *config, Error **errp)
{
    unsigned i;
    int ret, fd;

    ret = devvm_client_device_info(c, info);
    if (ret) {
        error_setg(errp, "DEVICE_GET_INFO: %s", devvm_strerror(ret));
        return false;
    }
    if (!(info->flags & DEVVM_DEVICE_F_PCI)) {
        error_setg(errp, "the device is not a PCI device");
        return false;
    }
    if (info->num_regions <= DEVVM_PCI_CONFIG_REGION) {
        error_setg(errp, "the device has %u regions, so no config space "
                   "(region %u)", info->num_regions, DEVVM_PCI_CONFIG_REGION);
        return false;
    }
    memset(regions, 0, sizeof(*regions) * DEVVM_PCI_NUM_REGIONS);
    for (i = 0; i < MIN(info->num_regions, DEVVM_PCI_NUM_REGIONS); i++) {
        ret = devvm_client_region_info(c, i, &regions[i], &fd);
        if (ret) {
            error_setg(errp, "GET_REGION_INFO %u: %s", i,
                       devvm_strerror(ret));
            return false;
        }
        if (fd >= 0) {
            close(fd);      /* taken again when BARs are mapped */
        }
    }
    if (regions[DEVVM_PCI_CONFIG_REGION].size < PCI_CONFIG_SPACE_SIZE) {
        error_setg(errp, "config space is %" PRIu64 " bytes, less than %d",
                   regions[DEVVM_PCI_CONFIG_REGION].size,
                   PCI_CONFIG_SPACE_SIZE);
        return false;
    }
    memset(irqs, 0, sizeof(*irqs) * DEVVM_PCI_NUM_IRQS);
    for (i = 0; i < MIN(info->num_irqs, DEVVM_PCI_NUM_IRQS); i++) {
        ret = devvm_client_irq_info(c, i, &irqs[i]);
        if (ret) {
            error_setg(errp, "GET_IRQ_INFO %u: %s", i, devvm_strerror(ret));
            return false;
        }
    }
    ret = devvm_client_region_read(c, DEVVM_PCI_CONFIG_REGION, 0,
                                   config, PCI_CONFIG_SPACE_SIZE);
    if (ret) {
        error_setg(errp, "reading config space: %s", devvm_strerror(ret));
        return false;
    }
    return true;
}

/* Ask for a ring channel if both sides have it.  Main loop. */
bool devvm_proxy_attach_ring(DevvmProxyState *s, Error **errp)
{
    struct devvm_ring_attach a;
    int fds[DEVVM_ATTACH_FDS], ret;

    QEMU_LOCK_GUARD(&s->lock);
    devvm_proxy_ring_close_locked(s);
    if (!s->use_ring || !s->conn.client.caps.devvm_ring) {
        return true;
    }
    ret = devvm_client_ring_attach(&s->conn.client, s->use_events ?
                                   DEVVM_ATTACH_F_EVENTS : 0, &a, fds);
    if (ret) {
        error_setg(errp, "RING_ATTACH: %s", devvm_strerror(ret));
        return false;
    }
    ret = devvm_ring_client_open(&s->conn.rc, &a, fds);
    if (ret) {
        error_setg(errp, "the ring channel the device gave is unusable: %s",
                   devvm_strerror(ret));
        return false;
    }
    s->conn.rc.aux_fd = s->conn.fd;
    s->conn.rc.aux_ready = devvm_proxy_aux_ready;
    s->conn.rc.aux_opaque = s;
    s->conn.generation = a.generation;
    s->conn.ring_open = true;
    if (a.flags & DEVVM_ATTACH_F_EVENTS) {
        devvm_proxy_events_open_locked(s);
    }
    trace_devvm_proxy_ring(devvm_proxy_id(s), a.channel, a.depth,
                           a.generation, s->conn.events_open);
    return true;
}

/*
 * Reconnection.  The timer (socket=), or the chardev's next connection
 * (chardev=), starts a thread that connects or takes that connection,
 * negotiates and checks that the same device answers (all waits on the
 * device happen there, so the main loop and the BQL never wait for it);
 * the thread hands the connection over with reconnect_bh, which restores
 * interrupts, DMA maps and the ring and resumes forwarding.
 */
static void *devvm_proxy_reconnect_thread(void *opaque)
{
    DevvmProxyState *s = opaque;
    struct devvm_client c;
    struct devvm_device_info info;
    struct devvm_region_info regions[DEVVM_PCI_NUM_REGIONS];
    struct devvm_irq_info irqs[DEVVM_PCI_NUM_IRQS];
    uint8_t config[PCI_CONFIG_SPACE_SIZE];
    Error *err = NULL;
    unsigned i;
    int fd;

    memset(&c, 0, sizeof(c));
    fd = devvm_proxy_open(s, s->conn.thread_fd, &c, NULL, &err);
    if (fd < 0) {
        goto out;
    }
    if (!devvm_proxy_describe(&c, &info, regions, irqs, config, &err)) {
        goto fail;
    }
    /* the same device, or nothing (s->desc is set at realize) */
    for (i = 0; i < DEVVM_PCI_NUM_REGIONS; i++) {
        if (regions[i].size != s->desc.regions[i].size) {
            error_setg(&err, "region %u is now %" PRIu64 " bytes, was %"
                       PRIu64, i, regions[i].size, s->desc.regions[i].size);
            goto fail;
        }
    }
    /* identity only: command and status are state, not identity */
    if (memcmp(config, s->desc.config, PCI_COMMAND) ||
        memcmp(config + PCI_REVISION_ID, s->desc.config + PCI_REVISION_ID,
               PCI_CLASS_PROG + 3 - PCI_REVISION_ID) ||
        info.num_irqs != s->desc.info.num_irqs) {
        error_setg(&err, "a different device answers at '%s'", s->conn.peer);
        goto fail;
    }
    goto out;

fail:
    close(fd);
    fd = -1;
out:
    WITH_QEMU_LOCK_GUARD(&s->lock) {
        s->conn.pending_fd = fd;
        s->conn.pending_client = c;
        s->conn.pending_err = err;
    }
    qemu_bh_schedule(s->conn.reconnect_bh);
    return NULL;
}

/* Start the thread on the chardev's socket @fd, or to connect (-1). */
static void devvm_proxy_start_reconnect(DevvmProxyState *s, int fd)
{
    s->conn.reconnecting = true;
    s->conn.thread_fd = fd;
    qemu_thread_create(&s->conn.reconnect_thread, "devvm-reconnect",
                       devvm_proxy_reconnect_thread, s,
                       QEMU_THREAD_JOINABLE);
}

static void devvm_proxy_reconnect_timer(void *opaque)
{
    DevvmProxyState *s = opaque;

    if (s->conn.fd >= 0 && s->conn.ring_stale) {
        /* a new generation's ring channel could not be attached */
        qemu_bh_schedule(s->conn.state_bh);
        return;
    }
    if (s->conn.reconnecting || s->conn.fd >= 0) {
        return;
    }
    devvm_proxy_start_reconnect(s, -1);
}

/*
 * chardev=: the proxy's own end of the chardev's connection.  The chardev
 * never reads from it (devvm_proxy_chr_can_read()); it only watches for
 * the device closing it.  Main loop.
 */
static int devvm_proxy_chr_dup(DevvmProxyState *s, Error **errp)
{
    Chardev *chr = qemu_chr_fe_get_driver(&s->chr);
    SocketChardev *sc = SOCKET_CHARDEV(chr);
    int fd;

    if (sc->state != TCP_CHARDEV_STATE_CONNECTED || !sc->sioc) {
        error_setg(errp, "chardev '%s' is not connected", chr->label);
        return -1;
    }
    if (sc->sioc->localAddr.ss_family != AF_UNIX) {
        error_setg(errp, "chardev '%s' is not connected to a UNIX socket: "
                   "the device passes file descriptors", chr->label);
        return -1;
    }
    fd = qemu_dup(sc->sioc->fd);
    if (fd < 0) {
        error_setg_errno(errp, errno, "chardev '%s': cannot duplicate its "
                         "socket", chr->label);
        return -1;
    }
    /*
     * libdevvm works on a blocking socket, as devvm_sock_connect() makes
     * it.  O_NONBLOCK belongs to the open socket, so the chardev's end
     * becomes blocking too: harmless, as it neither reads nor writes.
     */
    if (!qemu_set_blocking(fd, true, errp)) {
        close(fd);
        return -1;
    }
    return fd;
}

/*
 * chardev=: the chardev made a new connection (its reconnect-ms): take
 * it as a reconnect takes a new one, in the reconnect thread.  Main loop.
 */
static void devvm_proxy_chr_take(DevvmProxyState *s)
{
    Error *err = NULL;
    int fd;

    if (s->conn.reconnecting) {
        /* reconnect_bh comes back here once the thread is done */
        s->conn.chr_retake = true;
        return;
    }
    WITH_QEMU_LOCK_GUARD(&s->lock) {
        /* the old connection, if state_bh has not closed it yet */
        devvm_proxy_close_locked(s);
        s->conn.need_close = false;
    }
    s->conn.fd_conn = s->conn.chr_conn;
    fd = devvm_proxy_chr_dup(s, &err);
    if (fd < 0) {
        trace_devvm_proxy_reconnect_failed(devvm_proxy_id(s),
                                           error_get_pretty(err));
        error_free(err);
        devvm_proxy_chr_drop(s);
        return;
    }
    devvm_proxy_start_reconnect(s, fd);
}

/* Take the thread's connection, or retry later.  Main loop. */
static void devvm_proxy_reconnect_bh(void *opaque)
{
    DevvmProxyState *s = opaque;
    Error *err = NULL;
    int ret = 0;

    qemu_thread_join(&s->conn.reconnect_thread);
    s->conn.reconnecting = false;
    s->conn.thread_fd = -1;
    if (s->conn.chr_retake) {
        /* the chardev connected again meanwhile: the new one counts */
        s->conn.chr_retake = false;
        WITH_QEMU_LOCK_GUARD(&s->lock) {
            if (s->conn.pending_fd >= 0) {
                close(s->conn.pending_fd);
                s->conn.pending_fd = -1;
            }
            error_free(s->conn.pending_err);
            s->conn.pending_err = NULL;
        }
        if (s->conn.chr_open) {
            devvm_proxy_chr_take(s);
        }
        return;
    }
    WITH_QEMU_LOCK_GUARD(&s->lock) {
        err = s->conn.pending_err;
        s->conn.pending_err = NULL;
        if (!err) {
            s->conn.fd = s->conn.pending_fd;
            s->conn.client = s->conn.pending_client;
            s->conn.client.ops = &devvm_proxy_client_ops;
            s->conn.client.opaque = s;
            ret = devvm_proxy_set_irqs_locked(s);
            if (!ret) {
                ret = devvm_proxy_replay_dma_locked(s);
            }
            if (!ret) {
                ret = devvm_proxy_replay_command_locked(s);
            }
            if (ret) {
                error_setg(&err, "restoring interrupts, DMA maps and the "
                           "command register: %s",
                           devvm_strerror(ret));
                devvm_proxy_close_locked(s);
            }
        }
        s->conn.pending_fd = -1;
    }
    if (!err && !devvm_proxy_attach_ring(s, &err)) {
        WITH_QEMU_LOCK_GUARD(&s->lock) {
            devvm_proxy_close_locked(s);
        }
    }
    if (err) {
        trace_devvm_proxy_reconnect_failed(devvm_proxy_id(s),
                                           error_get_pretty(err));
        error_free(err);
        if (qemu_chr_fe_backend_connected(&s->chr)) {
            /* the chardev connects again (its reconnect-ms) */
            devvm_proxy_chr_drop(s);
        } else {
            timer_mod(s->conn.reconnect_timer,
                      qemu_clock_get_ms(QEMU_CLOCK_REALTIME) +
                      s->reconnect_ms);
        }
        return;
    }
    WITH_QEMU_LOCK_GUARD(&s->lock) {
        s->conn.link = DEVVM_PROXY_LINK_CONNECTED;
        s->conn.ring_stale = false;
        s->conn.need_close = false;
        qemu_set_fd_handler(s->conn.fd, devvm_proxy_sock_readable, NULL, s);
    }
    s->conn.failure_reported = false;
    info_report("devvm-proxy %s: reconnected to '%s'", devvm_proxy_id(s),
                s->conn.peer);
    devvm_proxy_send_event(s, "reconnected");
}

/*
 * chardev=: the chardev never reads the socket; the proxy does, on its
 * own dup() of it.
 */
static int devvm_proxy_chr_can_read(void *opaque)
{
    return 0;
}

/*
 * chardev=: the chardev's connection came or went.  Its HUP watch reports
 * the device closing although it never reads.  A closed connection fails
 * the device as a dead socket does (the chardev, not the proxy, connects
 * again); a new one is taken as a reconnect.  Main loop.
 */
static void devvm_proxy_chr_event(void *opaque, QEMUChrEvent event)
{
    DevvmProxyState *s = opaque;

    switch (event) {
    case CHR_EVENT_OPENED:
        trace_devvm_proxy_chr_event(devvm_proxy_id(s), "opened",
                                    s->conn.chr_conn, s->conn.chr_open);
        if (s->conn.chr_open) {
            return;     /* the connection we have (realize took it) */
        }
        s->conn.chr_open = true;
        s->conn.chr_conn++;
        devvm_proxy_chr_take(s);
        break;
    case CHR_EVENT_CLOSED:
        trace_devvm_proxy_chr_event(devvm_proxy_id(s), "closed",
                                    s->conn.chr_conn, s->conn.chr_open);
        if (!s->conn.chr_open) {
            return;
        }
        s->conn.chr_open = false;
        WITH_QEMU_LOCK_GUARD(&s->lock) {
            devvm_proxy_fail_locked(s, "chardev", DEVVM_E_CLOSED);
        }
        break;
    case CHR_EVENT_BREAK:
    case CHR_EVENT_MUX_IN:
    case CHR_EVENT_MUX_OUT:
        break;
    }
}

/*
 * chardev=: check that it is a plain UNIX socket, wait for its connection
 * (as vhost-user devices do) and return the proxy's end of it.
 */
static int devvm_proxy_chr_connect(DevvmProxyState *s, Error **errp)
{
    Chardev *chr = qemu_chr_fe_get_driver(&s->chr);
    SocketChardev *sc;
    int fd;

    sc = (SocketChardev *)object_dynamic_cast(OBJECT(chr),
                                              TYPE_CHARDEV_SOCKET);
    if (!sc) {
        error_setg(errp, "chardev '%s' is a %s, not a socket chardev: the "
                   "device needs a UNIX socket", chr->label,
                   object_get_typename(OBJECT(chr)));
        return -1;
    }
    if (sc->addr->type != SOCKET_ADDRESS_TYPE_UNIX &&
        sc->addr->type != SOCKET_ADDRESS_TYPE_FD) {
        error_setg(errp, "chardev '%s' is not a UNIX socket: the device "
                   "passes file descriptors, which only a UNIX socket "
                   "carries", chr->label);
        return -1;
    }
    if (sc->is_telnet || sc->is_tn3270 || sc->is_websock || sc->tls_creds) {
        error_setg(errp, "chardev '%s': telnet, websocket and TLS are not "
                   "supported: vfio-user runs on the bare socket",
                   chr->label);
        return -1;
    }
    if (sc->addr->type == SOCKET_ADDRESS_TYPE_UNIX) {
        s->conn.peer = g_strdup(sc->addr->u.q_unix.path);
    } else {
        s->conn.peer = g_strdup_printf("chardev:%s", chr->label);
    }
    if (qemu_chr_fe_wait_connected(&s->chr, errp) < 0) {
        error_prepend(errp, "chardev '%s' cannot connect: ", chr->label);
        return -1;
    }
    fd = devvm_proxy_chr_dup(s, errp);
    if (fd >= 0) {
        s->conn.chr_open = true;
        s->conn.chr_conn = 1;
        s->conn.fd_conn = 1;
    }
    return fd;
}

/* ---- realize and unrealize ----------------------------------------------- */

/* The connection's bottom halves and reconnect timer. */
void devvm_proxy_init_conn(DevvmProxyState *s)
{
    s->conn.state_bh = qemu_bh_new_guarded(devvm_proxy_state_bh, s,
                                           &DEVICE(s)->mem_reentrancy_guard);
    s->conn.reconnect_timer = timer_new_ms(QEMU_CLOCK_REALTIME,
                                           devvm_proxy_reconnect_timer, s);
    s->conn.reconnect_bh = qemu_bh_new(devvm_proxy_reconnect_bh, s);
}

/*
 * Connect (socket=) or take the chardev's connection (chardev=),
 * negotiate, and read what the device is into s->desc.
 */
bool devvm_proxy_connect(DevvmProxyState *s, Error **errp)
{
    bool ok;
    int fd = -1;

    if (qemu_chr_fe_backend_connected(&s->chr)) {
        fd = devvm_proxy_chr_connect(s, errp);
        if (fd < 0) {
            return false;
        }
    } else {
        s->conn.peer = g_strdup(s->socket_path);
    }
    WITH_QEMU_LOCK_GUARD(&s->lock) {
        s->conn.fd = devvm_proxy_open(s, fd, &s->conn.client,
                                      &devvm_proxy_client_ops, errp);
        ok = s->conn.fd >= 0 &&
             devvm_proxy_describe(&s->conn.client, &s->desc.info,
                                  s->desc.regions, s->desc.irqs,
                                  s->desc.config, errp);
    }
    return ok;
}

/* The main loop serves the socket, and takes the chardev's connections. */
void devvm_proxy_start_conn(DevvmProxyState *s)
{
    qemu_set_fd_handler(s->conn.fd, devvm_proxy_sock_readable, NULL, s);
    if (qemu_chr_fe_backend_connected(&s->chr)) {
        /* from now on its connections come and go as events */
        qemu_chr_fe_set_handlers(&s->chr, devvm_proxy_chr_can_read, NULL,
                                 devvm_proxy_chr_event, NULL, s, NULL, true);
    }
}

/*
 * The reconnect timer and thread, the bottom halves, the socket and the
 * chardev go.
 */
void devvm_proxy_free_conn(DevvmProxyState *s)
{
    if (s->conn.reconnect_timer) {
        timer_free(s->conn.reconnect_timer);
        s->conn.reconnect_timer = NULL;
    }
    if (s->conn.reconnecting) {
        /* its waits are bounded by timeout-ms */
        qemu_thread_join(&s->conn.reconnect_thread);
        s->conn.reconnecting = false;
        if (s->conn.pending_fd >= 0) {
            close(s->conn.pending_fd);
            s->conn.pending_fd = -1;
        }
        error_free(s->conn.pending_err);
        s->conn.pending_err = NULL;
    }
    if (s->conn.reconnect_bh) {
        qemu_bh_delete(s->conn.reconnect_bh);
        s->conn.reconnect_bh = NULL;
    }
    WITH_QEMU_LOCK_GUARD(&s->lock) {
        devvm_proxy_close_locked(s);
    }
    if (qemu_chr_fe_backend_connected(&s->chr)) {
        /*
         * The vfio-user session ends with the proxy: close the chardev's
         * end too, so that the next user of the chardev starts afresh.
         */
        qemu_chr_fe_set_handlers(&s->chr, NULL, NULL, NULL, NULL, NULL,
                                 NULL, false);
        if (s->conn.chr_open) {
            qemu_chr_fe_disconnect(&s->chr);
            s->conn.chr_open = false;
        }
        qemu_chr_fe_deinit(&s->chr, false);
    }
    if (s->conn.state_bh) {
        qemu_bh_delete(s->conn.state_bh);
        s->conn.state_bh = NULL;
    }
}
