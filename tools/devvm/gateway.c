/*
 * devvm-gateway: the host side of one device VM.
 *
 *   devvm-gateway --dir DIR [--channels N] [--timeout-ms MS]
 *                 [--heartbeat-ms MS] [--handshake-ms MS] [--no-ring]
 *                 [--no-client-events] [--no-dma-window] [--verbose]
 *
 * It is the ivshmem server of the device VM (DIR/ivshmem.sock), the
 * vfio-user server that clients connect to (DIR/device.sock), and the
 * device VM's agent on the host: it forwards what clients send on the
 * socket to the device VM over each instance's control channel, hands
 * clients their data channel (RING_ATTACH), performs the device's DMA
 * into client memory and signals the client's interrupt eventfds (or,
 * for a client that asks for them with EVENTS, lets the device send its
 * events to the client's data channel).  Client memory mapped with an
 * fd is also placed in the device VM's DMA window (DIR/dma.sock,
 * gateway-window.c), where the device reaches it without messages.
 * docs/devvm/device-vm.rst is the contract with the runtime,
 * docs/devvm/gateway.rst the user's guide.
 *
 * Threads: the main thread owns the ivshmem socket, accepts clients and
 * watches the device (state, generation, heartbeat).  Each client has a
 * thread that owns its socket, its instance's control channel and the
 * instance's event ring, so a device DMA that needs the client's socket
 * (memory without an fd) is served by the thread that reads that socket.
 * gw->lock covers the device view (state, generation, description) and
 * the instance table.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "libdevvm/desc.h"
#include "libdevvm/irqfds.h"
#include "libdevvm/le.h"
#include "libdevvm/ring.h"
#include "libdevvm/ring-client.h"
#include "libdevvm/runas.h"
#include "libdevvm/server.h"
#include "libdevvm/sock.h"
#include "libdevvm/threads.h"
#include "gateway-window.h"

#define GW_HOST_PEER        0       /* ivshmem id of the host's eventfds */
#define GW_VM_PEER          1       /* ivshmem id given to the device VM */
#define GW_DEFAULT_CHANNELS 16
#define GW_DEPTH            64      /* what the runtime formats */
#define GW_DATA_SIZE        0x10000
#define GW_TICK_MS          50
#define GW_OPEN_RETRY_MS    100     /* a READY instance whose OPEN failed */
#define GW_MAX_INSTANCES    (DEVVM_MAX_CHANNELS / 2)

struct gw;

/* One client: one instance of the device. */
struct gw_client {
    struct gw *gw;
    unsigned idx;               /* instance: channels 2 idx, 2 idx + 1 */
    struct devvm_thread thread; /* on gw->threads */
    int wake_fd;                /* main thread -> client thread */
    struct devvm_server_conn conn;
    struct devvm_irqfds irqs;
    struct devvm_ring_client ctl;   /* gateway end of the control channel */
    bool ctl_open;              /* ctl mapped and the instance OPEN */
    uint32_t ctl_gen;           /* generation it was opened in */
    bool data_attached;
    bool data_events;           /* the instance's events go to the client */
    uint32_t sent_state, sent_gen;  /* last EVENT sent */
    bool open_retry;            /* READY, but OPEN failed: try again */
};

struct gw {
    char *dir;
    const char *run_as;         /* --run-as UID:GID, or NULL */
    uid_t owner_uid;            /* who started it: peers may run as that
                                 * uid, or as its own */
    uid_t uid;
    gid_t gid;
    char *dev_path, *ivs_path, *win_path;
    unsigned channels;
    int timeout_ms;
    int heartbeat_ms;
    int handshake_ms;           /* a new client must negotiate by then */
    bool ring;
    bool client_events;         /* grant EVENTS on data channels */
    bool dma_window;            /* offer DIR/dma.sock */
    struct gw_window *win;      /* NULL: DMA by messages only */
    /* shared memory and doorbells, kept for the gateway's whole life */
    int shm_fd;
    uint8_t *shm;
    uint64_t shm_size;
    int host_fds[DEVVM_MAX_CHANNELS];   /* call doorbells (peer 0) */
    int vm_fds[DEVVM_MAX_CHANNELS];     /* kick doorbells (peer 1) */
    int ivs_lfd, ivs_fd, dev_lfd;
    /* the device, as last seen (lock) */
    pthread_mutex_t lock;
    uint32_t state, generation;
    bool have_desc;
    struct devvm_desc_info desc;
    struct devvm_shm_layout layout;
    uint64_t heartbeat;
    int64_t heartbeat_at;       /* when it last moved, ns */
    bool hang_reported;
    struct gw_client *inst[GW_MAX_INSTANCES];
    struct devvm_threads threads;   /* the clients' */
    /*
     * The tags used on each instance's control channel, which outlive
     * its clients: a request that timed out may be answered after its
     * client left, and the next client must recognise that answer as
     * late (struct devvm_ring_client's first_tag, next_tag).  Only the
     * instance's thread touches its entry; the next client's thread
     * starts after the last one was joined.
     */
    struct {
        uint32_t gen;           /* generation of the window */
        uint32_t first, next;
    } ctl_tags[GW_MAX_INSTANCES];
};

static bool verbose;
static volatile sig_atomic_t stop;

__attribute__((format(printf, 1, 2)))
static void gw_log(const char *fmt, ...)
{
    va_list ap;

    flockfile(stderr);
    fprintf(stderr, "devvm-gateway: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    funlockfile(stderr);
}

#define gw_debug(...) do { \
        if (verbose) { \
            gw_log(__VA_ARGS__); \
        } \
    } while (0)

static int64_t gw_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void gw_notify(int fd)
{
    uint64_t one = 1;

    while (write(fd, &one, sizeof(one)) < 0 && errno == EINTR) {
        continue;
    }
}

static void gw_drain(int fd)
{
    uint64_t v;

    while (read(fd, &v, sizeof(v)) < 0 && errno == EINTR) {
        continue;
    }
}

/* A devvm_err or a peer errno as a negative errno for a reply. */
static int gw_errno(struct gw_client *c, int err)
{
    switch (err) {
    case DEVVM_OK:
        return 0;
    case DEVVM_E_PEER:
        return -c->ctl.peer_status;
    case DEVVM_E_TIMEOUT:
        return -ETIMEDOUT;
    case DEVVM_E_STALE:
    case DEVVM_E_STATE:
        return -ENODEV;
    default:
        return -EIO;
    }
}

/* ---- the device view ---------------------------------------------------- */

/* The device's description, as the server role asks for it (lock held by
 * the caller or the description is stable: it only changes at READY). */
static int gw_device_info(void *opaque, struct devvm_device_info *info)
{
    struct gw_client *c = opaque;

    *info = c->gw->desc.dev;
    return 0;
}

static int gw_region_info(void *opaque, uint32_t index,
                          struct devvm_region_info *info, int *fd)
{
    struct gw_client *c = opaque;

    if (index >= DEVVM_DESC_NR_REGIONS) {
        return -EINVAL;
    }
    *info = c->gw->desc.regions[index];
    return 0;
}

static int gw_irq_info(void *opaque, uint32_t index,
                       struct devvm_irq_info *info)
{
    struct gw_client *c = opaque;

    if (index >= DEVVM_DESC_NR_IRQS) {
        return -EINVAL;
    }
    *info = c->gw->desc.irqs[index];
    return 0;
}

/* ---- events: the device's DMA, interrupts and logs ---------------------- */

static void gw_evt_log(void *opaque, const char *msg)
{
    struct gw_client *c = opaque;

    gw_log("instance %u: %s", c->idx, msg);
}

static void gw_evt_irq(void *opaque, uint32_t index, uint64_t vector,
                       uint64_t action)
{
    struct gw_client *c = opaque;

    if (index >= DEVVM_DESC_NR_IRQS ||
        vector >= c->gw->desc.irqs[index].count ||
        action > DEVVM_IRQ_PULSE) {
        gw_log("instance %u: IRQ %u vector 0x%" PRIx64 " action %" PRIu64
               " does not exist, ignored", c->idx, index, vector, action);
        return;
    }
    gw_debug("instance %u: IRQ %u vector %" PRIu64 " action %" PRIu64,
             c->idx, index, vector, action);
    devvm_irqfds_action(&c->irqs, index, vector, action);
}

/* DMA_READ or DMA_WRITE through the client's DMA maps or messages. */
static int gw_evt_dma(void *opaque, int write, uint64_t addr, void *buf,
                      uint64_t len)
{
    struct gw_client *c = opaque;
    int ret;

    ret = write ? devvm_server_conn_dma_write(&c->conn, addr, buf, len)
                : devvm_server_conn_dma_read(&c->conn, addr, buf, len);
    if (devvm_is_errno(ret)) {
        /* outside the client's DMA maps, or refused: the role logged it */
        return ret;
    }
    if (ret) {
        gw_log("instance %u: DMA %s of 0x%" PRIx64 "+0x%" PRIx64 ": %s",
               c->idx, write ? "write" : "read", addr, len,
               devvm_strerror(ret));
        return -EIO;
    }
    gw_debug("instance %u: DMA %s 0x%" PRIx64 "+0x%" PRIx64, c->idx,
             write ? "write" : "read", addr, len);
    return 0;
}

static void gw_evt_bad(void *opaque, const struct devvm_slot *s)
{
    struct gw_client *c = opaque;

    if (s->op == DEVVM_OP_DMA_READ || s->op == DEVVM_OP_DMA_WRITE) {
        gw_log("instance %u: DMA with a bad data-area range 0x%" PRIx64
               "+0x%" PRIx64 ", refused", c->idx, s->aux, s->len);
    } else {
        gw_log("instance %u: op %u on the event ring: corrupt", c->idx,
               s->op);
    }
}

static const struct devvm_ring_event_ops gw_event_ops = {
    .dma = gw_evt_dma,
    .irq = gw_evt_irq,
    .log = gw_evt_log,
    .bad_slot = gw_evt_bad,
};

/*
 * Consume the control channel's EVT ring (ctl.events hook, and after
 * every doorbell).  Ring errors are returned: the channel is corrupt.
 */
static int gw_events(void *opaque)
{
    struct gw_client *c = opaque;
    int ret;

    if (!c->ctl_open) {
        return DEVVM_OK;
    }
    ret = devvm_ring_client_events(&c->ctl, &gw_event_ops, c);
    if (ret) {
        gw_log("instance %u: event ring: %s", c->idx, devvm_strerror(ret));
    }
    return ret;
}

/* ---- the instance's control channel ------------------------------------- */

static void gw_ctl_close(struct gw_client *c)
{
    if (c->ctl.shm) {
        /* where the next client on this instance carries on */
        c->gw->ctl_tags[c->idx].next = c->ctl.next_tag;
        devvm_ring_client_close(&c->ctl);
    }
    c->ctl_open = false;
    c->data_attached = false;
    c->data_events = false;
}

/*
 * A device that took longer than --timeout-ms: the channel stays open,
 * the late answer will be dropped when it comes.
 */
static void gw_ctl_timed_out(struct gw_client *c)
{
    gw_log("instance %u: control channel: the device did not answer within "
           "%d ms (the channel stays, its late answer will be dropped)",
           c->idx, c->gw->timeout_ms);
}

/*
 * A control request.  A timeout leaves the channel open; on a broken
 * channel the device is treated as failed until the next generation.
 */
static int gw_ctl_call(struct gw_client *c, const struct devvm_slot *s,
                       uint64_t *value)
{
    uint64_t late = c->ctl.late;
    int ret;

    if (!c->ctl_open) {
        return DEVVM_E_STATE;
    }
    ret = devvm_ring_client_call(&c->ctl, s, value, c->gw->timeout_ms);
    if (c->ctl.late != late) {
        gw_log("instance %u: control channel: the device answered again "
               "(%" PRIu64 " late answers dropped)", c->idx,
               c->ctl.late - late);
    }
    if (ret == DEVVM_E_TIMEOUT) {
        gw_ctl_timed_out(c);
    } else if (ret && ret != DEVVM_E_PEER) {
        gw_log("instance %u: control channel: %s", c->idx,
               devvm_strerror(ret));
        gw_ctl_close(c);
    }
    return ret;
}

/*
 * Map the control channel of generation @gen and OPEN the instance.  The
 * description must be current (READY seen in @gen).
 */
static void gw_ctl_open(struct gw_client *c, uint32_t gen)
{
    struct gw *gw = c->gw;
    unsigned ch = 2 * c->idx;
    struct devvm_ring_attach a = {
        .channel = ch, .shm_size = gw->shm_size, .generation = gen,
    };
    int fds[DEVVM_ATTACH_FDS] = {
        dup(gw->shm_fd), dup(gw->vm_fds[ch]), dup(gw->host_fds[ch]),
    };
    struct devvm_slot s = { .op = DEVVM_OP_OPEN };
    unsigned i;
    int ret;

    pthread_mutex_lock(&gw->lock);
    a.depth = gw->layout.depth;     /* the layout changes at READY */
    pthread_mutex_unlock(&gw->lock);
    gw_ctl_close(c);
    for (i = 0; i < DEVVM_ATTACH_FDS; i++) {
        if (fds[i] < 0) {
            gw_log("instance %u: dup: %s", c->idx, strerror(errno));
            for (i = 0; i < DEVVM_ATTACH_FDS; i++) {
                if (fds[i] >= 0) {
                    close(fds[i]);
                }
            }
            return;
        }
    }
    ret = devvm_ring_client_open(&c->ctl, &a, fds);
    if (ret) {
        gw_log("instance %u: control channel %u: %s", c->idx, ch,
               devvm_strerror(ret));
        return;
    }
    c->ctl.aux_opaque = c;
    c->ctl.events = gw_events;
    if (gw->ctl_tags[c->idx].gen != gen || !gw->ctl_tags[c->idx].next) {
        /* fresh rings: no answer from before can come */
        gw->ctl_tags[c->idx].gen = gen;
        gw->ctl_tags[c->idx].first = gw->ctl_tags[c->idx].next ?: 1;
        gw->ctl_tags[c->idx].next = gw->ctl_tags[c->idx].first;
    }
    c->ctl.first_tag = gw->ctl_tags[c->idx].first;
    c->ctl.next_tag = gw->ctl_tags[c->idx].next;
    c->ctl_open = true;
    c->ctl_gen = gen;
    ret = gw_ctl_call(c, &s, NULL);
    if (ret == DEVVM_E_PEER && c->ctl.peer_status == EBUSY) {
        /* left open by a gateway that died: start it afresh */
        struct devvm_slot cl = { .op = DEVVM_OP_CLOSE };

        ret = gw_ctl_call(c, &cl, NULL);
        ret = ret ? ret : gw_ctl_call(c, &s, NULL);
    }
    if (ret) {
        gw_log("instance %u: OPEN in generation %u: %s", c->idx, gen,
               ret == DEVVM_E_PEER ? strerror(c->ctl.peer_status) :
                                     devvm_strerror(ret));
        gw_ctl_close(c);
        return;
    }
    gw_debug("instance %u open in generation %u", c->idx, gen);
}

/* ---- the client's requests ---------------------------------------------- */

/* Split [off, off + count) into naturally aligned pieces of 8 at most. */
static unsigned gw_piece(uint64_t off, uint32_t count)
{
    unsigned size = 8;

    while (size > count || (off & (size - 1))) {
        size >>= 1;
    }
    return size;
}

static int gw_region_read(void *opaque, uint32_t region, uint64_t off,
                          void *buf, uint32_t count)
{
    struct gw_client *c = opaque;
    uint8_t *p = buf;
    int ret;

    while (count) {
        unsigned size = gw_piece(off, count);
        struct devvm_slot s = {
            .op = DEVVM_OP_READ, .region = region, .size = size, .addr = off,
        };
        uint64_t v;

        ret = gw_ctl_call(c, &s, &v);
        if (ret) {
            return gw_errno(c, ret);
        }
        devvm_st64(&v, v);
        memcpy(p, &v, size);
        p += size;
        off += size;
        count -= size;
    }
    return 0;
}

static int gw_region_write(void *opaque, uint32_t region, uint64_t off,
                           const void *buf, uint32_t count)
{
    struct gw_client *c = opaque;
    const uint8_t *p = buf;
    int ret;

    if (!c->ctl_open) {
        return -ENODEV;
    }
    while (count) {
        unsigned size = gw_piece(off, count);
        uint64_t v = 0;

        memcpy(&v, p, size);
        ret = devvm_ring_client_write(&c->ctl, region, off, size,
                                      devvm_ld64(&v), c->gw->timeout_ms);
        if (ret == DEVVM_E_TIMEOUT) {
            /* the ring stayed full: the write was not queued */
            gw_ctl_timed_out(c);
            return gw_errno(c, ret);
        }
        if (ret) {
            gw_log("instance %u: control channel: %s", c->idx,
                   devvm_strerror(ret));
            gw_ctl_close(c);
            return gw_errno(c, ret);
        }
        p += size;
        off += size;
        count -= size;
    }
    return 0;
}

static int gw_reset(void *opaque)
{
    struct gw_client *c = opaque;
    struct devvm_slot s = { .op = DEVVM_OP_RESET };

    return gw_errno(c, gw_ctl_call(c, &s, NULL));
}

static int gw_set_irqs(void *opaque, const struct devvm_irq_set *set,
                       int *fds, uint32_t nfds)
{
    struct gw_client *c = opaque;

    gw_debug("instance %u: SET_IRQS index %u start %u count %u flags 0x%x",
             c->idx, set->index, set->start, set->count, set->flags);
    /*
     * The client unmasks INTx after the access that ended the interrupt,
     * which may have lowered the line.  That access may still be posted
     * on the control channel: a read there executes it, and the device's
     * IRQ events of it are consumed before the unmask looks at the line.
     * An access on the data channel was completed by a read the client
     * waited for, so its events are in the ring already.
     */
    if (c->ctl_open && set->index == DEVVM_PCI_INTX_IRQ) {
        struct devvm_slot fence = {
            .op = DEVVM_OP_READ, .region = DEVVM_PCI_CONFIG_REGION, .size = 4,
        };

        gw_ctl_call(c, &fence, NULL);
    }
    if (c->ctl_open && gw_events(c)) {
        gw_ctl_close(c);
    }
    return devvm_irqfds_set(&c->irqs, set, fds, nfds);
}

/* The data channel: the client's fast path straight to the device VM. */
static int gw_ring_attach(void *opaque, struct devvm_ring_attach *a,
                          int fds[DEVVM_ATTACH_FDS])
{
    struct gw_client *c = opaque;
    struct gw *gw = c->gw;
    unsigned ch = 2 * c->idx + 1;
    unsigned i;
    int err;

    if (!c->ctl_open || c->data_attached) {
        return c->ctl_open ? -EBUSY : -ENODEV;
    }
    /*
     * EVENTS: the device sends this instance's events to the data
     * channel, whose client consumes them; otherwise they stay with us.
     */
    c->data_events = false;
    if ((a->flags & DEVVM_ATTACH_F_EVENTS) && gw->client_events) {
        struct devvm_slot ev = { .op = DEVVM_OP_EVENTS, .data = 1 };

        c->data_events = !gw_ctl_call(c, &ev, NULL);
        if (!c->data_events) {
            gw_log("instance %u: the device keeps its events on the "
                   "control channel", c->idx);
        }
    }
    if (!c->data_events) {
        a->flags &= ~DEVVM_ATTACH_F_EVENTS;
    }
    a->channel = ch;
    a->depth = c->ctl.ch.ring[DEVVM_RING_REQ].depth;  /* this generation */
    a->shm_size = gw->shm_size;
    a->generation = c->ctl_gen;
    fds[0] = dup(gw->shm_fd);
    fds[1] = dup(gw->vm_fds[ch]);
    fds[2] = dup(gw->host_fds[ch]);
    for (i = 0; i < DEVVM_ATTACH_FDS; i++) {
        if (fds[i] < 0) {
            err = errno;
            for (i = 0; i < DEVVM_ATTACH_FDS; i++) {
                if (fds[i] >= 0) {
                    close(fds[i]);
                }
                fds[i] = -1;
            }
            return -err;
        }
    }
    c->data_attached = true;
    gw_debug("instance %u: data channel %u attached", c->idx, ch);
    return 0;
}

/*
 * Before the detach reply, the device has executed every request the
 * client published on the data channel (docs/devvm/protocol.rst).
 */
static int gw_ring_detach(void *opaque, uint32_t channel)
{
    struct gw_client *c = opaque;
    struct gw *gw = c->gw;
    uint8_t *req;
    int64_t deadline = gw_now_ns() + (int64_t)gw->timeout_ms * 1000000;

    if (!c->data_attached || channel != 2 * c->idx + 1) {
        return -EINVAL;
    }
    c->data_attached = false;
    req = gw->shm + gw->layout.channel_offset +
          channel * gw->layout.channel_size;
    while (__atomic_load_n((uint32_t *)(req + DEVVM_RING_OFF_CONS),
                           __ATOMIC_ACQUIRE) !=
           __atomic_load_n((uint32_t *)(req + DEVVM_RING_OFF_PROD),
                           __ATOMIC_ACQUIRE)) {
        struct timespec pause = { 0, 100000 };

        if (devvm_shm_state(gw->shm) != DEVVM_STATE_READY ||
            gw_now_ns() > deadline) {
            break;      /* the device state it was aimed at is gone */
        }
        gw_events(c);
        nanosleep(&pause, NULL);
    }
    if (c->data_events) {
        struct devvm_slot ev = { .op = DEVVM_OP_EVENTS, .data = 0 };

        c->data_events = false;
        gw_ctl_call(c, &ev, NULL);
    }
    gw_debug("instance %u: data channel detached", c->idx);
    return 0;
}

static void gw_conn_log(void *opaque, const char *msg)
{
    struct gw_client *c = opaque;

    gw_log("instance %u: %s", c->idx, msg);
}

/* A range the client mapped with an fd: into the device VM's window. */
static void gw_dma_mapped(void *opaque, const struct devvm_dma_map *m,
                          int fd)
{
    struct gw_client *c = opaque;

    if (!c->gw->win) {
        close(fd);
        return;
    }
    if (gw_window_map(c->gw->win, c->idx, m->addr, m->size,
                      m->flags & DEVVM_DMA_F_WRITE, fd, m->offset)) {
        gw_debug("instance %u: 0x%llx+0x%llx in the DMA window", c->idx,
                 (unsigned long long)m->addr, (unsigned long long)m->size);
    }
}

/* Out of the window before the client's DMA_UNMAP is answered. */
static void gw_dma_unmapping(void *opaque, uint64_t addr, uint64_t size)
{
    struct gw_client *c = opaque;

    if (c->gw->win) {
        gw_window_unmap(c->gw->win, c->idx, addr, size);
    }
}

static const struct devvm_server_ops gw_ops = {
    .device_info = gw_device_info,
    .region_info = gw_region_info,
    .irq_info = gw_irq_info,
    .set_irqs = gw_set_irqs,
    .region_read = gw_region_read,
    .region_write = gw_region_write,
    .reset = gw_reset,
    .ring_attach = gw_ring_attach,
    .ring_detach = gw_ring_detach,
    .dma_mapped = gw_dma_mapped,
    .dma_unmapping = gw_dma_unmapping,
    .log = gw_conn_log,
};

static struct devvm_server_ops gw_ops_no_ring;

/* ---- a client's thread -------------------------------------------------- */

/* Follow the device: EVENT to the client, reopen in a new generation. */
static void gw_client_follow(struct gw_client *c)
{
    struct gw *gw = c->gw;
    uint32_t state, gen;
    char reason[DEVVM_MAX_REASON];

    pthread_mutex_lock(&gw->lock);
    state = gw->state;
    gen = gw->generation;
    pthread_mutex_unlock(&gw->lock);
    if (state == c->sent_state && gen == c->sent_gen && !c->open_retry) {
        return;
    }
    if (c->ctl_open && (gen != c->ctl_gen || state != DEVVM_STATE_READY)) {
        gw_ctl_close(c);
    }
    c->open_retry = false;
    if (state == DEVVM_STATE_READY && !c->ctl_open) {
        gw_ctl_open(c, gen);
        if (!c->ctl_open) {
            /*
             * A device VM slow to answer its first OPEN (a loaded host)
             * must not leave the instance closed for the whole
             * generation: the client is not told READY, and the loop
             * tries again every GW_OPEN_RETRY_MS.
             */
            c->open_retry = true;
            return;
        }
    }
    if (state == c->sent_state && gen == c->sent_gen) {
        return;         /* opened on a retry: the client knew already */
    }
    c->sent_state = state;
    c->sent_gen = gen;
    if (c->conn.caps.devvm) {
        devvm_shm_reason(gw->shm, reason, sizeof(reason));
        devvm_server_conn_event(&c->conn, state, gen,
                                state == DEVVM_STATE_READY ? "" : reason);
    }
}

static void *gw_client_main(void *opaque)
{
    struct gw_client *c = opaque;
    struct gw *gw = c->gw;
    int64_t handshake_end = gw_now_ns() +
                            (int64_t)gw->handshake_ms * 1000000;
    int ret = DEVVM_OK;

    pthread_mutex_lock(&gw->lock);
    c->sent_state = gw->state;
    c->sent_gen = gw->generation;
    pthread_mutex_unlock(&gw->lock);
    if (c->sent_state == DEVVM_STATE_READY) {
        gw_ctl_open(c, c->sent_gen);
        c->open_retry = !c->ctl_open;
    }
    while (!stop) {
        struct pollfd pfd[3] = {
            { .fd = c->conn.fd, .events = POLLIN },
            { .fd = c->wake_fd, .events = POLLIN },
            { .fd = c->ctl_open ? c->ctl.call_fd : -1, .events = POLLIN },
        };
        int timeout = -1;

        if (c->ctl_open && gw_events(c)) {
            gw_ctl_close(c);
        }
        if (!c->conn.negotiated) {
            /* an idle connection must not hold the instance */
            int64_t left = handshake_end - gw_now_ns();

            if (left <= 0) {
                gw_log("instance %u: the client did not negotiate within "
                       "%d ms: dropped", c->idx, gw->handshake_ms);
                ret = DEVVM_E_TIMEOUT;
                break;
            }
            timeout = (int)(left / 1000000) + 1;
        }
        if (c->open_retry && (timeout < 0 || timeout > GW_OPEN_RETRY_MS)) {
            timeout = GW_OPEN_RETRY_MS;
        }
        if (c->conn.npending) {
            pfd[0].revents = POLLIN;
        } else if (poll(pfd, 3, timeout) < 0 && errno != EINTR) {
            gw_log("instance %u: poll: %s", c->idx, strerror(errno));
            break;
        }
        if (pfd[2].revents) {
            gw_drain(c->ctl.call_fd);
        }
        if (pfd[1].revents || c->open_retry) {
            if (pfd[1].revents) {
                gw_drain(c->wake_fd);
            }
            gw_client_follow(c);
        }
        if (pfd[0].revents) {
            ret = devvm_server_conn_dispatch(&c->conn, gw->timeout_ms);
            if (ret != DEVVM_OK && ret != DEVVM_E_AGAIN) {
                break;
            }
        }
    }
    if (ret == DEVVM_E_CLOSED || stop) {
        gw_debug("instance %u: client went away", c->idx);
    } else {
        gw_log("instance %u: connection closed: %s", c->idx,
               devvm_strerror(ret));
    }
    if (c->ctl_open) {
        struct devvm_slot s = { .op = DEVVM_OP_CLOSE };

        gw_ctl_call(c, &s, NULL);
    }
    gw_ctl_close(c);
    if (gw->win) {
        /* the next client of this instance must not find these */
        gw_window_unmap_all(gw->win, c->idx);
    }
    devvm_server_conn_fini(&c->conn);
    devvm_irqfds_fini(&c->irqs);
    devvm_thread_finished(&c->thread);
    return NULL;
}

/* A client's thread was joined: free its instance. */
static void gw_reaped(struct devvm_thread *th, void *opaque)
{
    struct gw_client *c = devvm_thread_owner(th, struct gw_client, thread);
    struct gw *gw = opaque;

    pthread_mutex_lock(&gw->lock);
    gw->inst[c->idx] = NULL;
    pthread_mutex_unlock(&gw->lock);
    close(c->wake_fd);
    free(c);
}

/* Join and free clients whose thread ended. */
static void gw_reap(struct gw *gw)
{
    devvm_threads_reap(&gw->threads, 0, gw_reaped, gw);
}

static void gw_accept_client(struct gw *gw)
{
    struct gw_client *c;
    unsigned i, n;
    int fd, ret;

    fd = accept4(gw->dev_lfd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) {
        return;
    }
    if (!devvm_peer_allowed(fd, gw->owner_uid)) {
        gw_log("client refused: it does not run as uid %u", gw->owner_uid);
        close(fd);
        return;
    }
    gw_reap(gw);
    pthread_mutex_lock(&gw->lock);
    n = gw->desc.instances;
    for (i = 0; i < n && gw->inst[i]; i++) {
        continue;
    }
    pthread_mutex_unlock(&gw->lock);
    if (i == n) {
        /* it is told why: an EUSERS reply to its VERSION */
        gw_log("client refused: all %u instances of the device are in use",
               n);
        devvm_server_refuse(fd, EUSERS, gw->handshake_ms);
        return;
    }
    c = calloc(1, sizeof(*c));
    if (!c) {
        close(fd);
        return;
    }
    c->gw = gw;
    c->idx = i;
    c->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    ret = devvm_irqfds_init(&c->irqs, gw->desc.irqs, DEVVM_DESC_NR_IRQS);
    if (c->wake_fd < 0 || ret) {
        gw_log("client refused: out of resources");
        goto fail;
    }
    ret = devvm_server_conn_init(&c->conn, fd,
                                 gw->ring ? &gw_ops : &gw_ops_no_ring, c,
                                 NULL);
    if (ret) {
        gw_log("client refused: %s", devvm_strerror(ret));
        devvm_irqfds_fini(&c->irqs);
        goto fail;
    }
    fd = -1;            /* the role owns it now */
    c->conn.timeout_ms = gw->timeout_ms;
    c->conn.verbose = verbose;    /* every message, both ways */
    pthread_mutex_lock(&gw->lock);
    gw->inst[i] = c;
    pthread_mutex_unlock(&gw->lock);
    ret = devvm_threads_start(&gw->threads, &c->thread, gw_client_main, c);
    if (ret) {
        gw_log("client thread: %s", strerror(-ret));
        pthread_mutex_lock(&gw->lock);
        gw->inst[i] = NULL;
        pthread_mutex_unlock(&gw->lock);
        devvm_server_conn_fini(&c->conn);
        devvm_irqfds_fini(&c->irqs);
        goto fail;
    }
    gw_debug("client connected: instance %u", i);
    return;

fail:
    if (fd >= 0) {
        close(fd);
    }
    if (c->wake_fd >= 0) {
        close(c->wake_fd);
    }
    free(c);
}

static void gw_wake_clients(struct gw *gw)
{
    unsigned i;

    pthread_mutex_lock(&gw->lock);
    for (i = 0; i < GW_MAX_INSTANCES; i++) {
        struct gw_client *c = gw->inst[i];

        if (c && !devvm_thread_is_finished(&c->thread)) {
            gw_notify(c->wake_fd);
        }
    }
    pthread_mutex_unlock(&gw->lock);
}

/* ---- the device VM: ivshmem server and monitor --------------------------- */

/* One ivshmem server message: a little-endian int64, maybe an fd. */
static int gw_ivs_send(int fd, int64_t v, int attach)
{
    uint8_t b[8];

    devvm_st64(b, (uint64_t)v);
    return devvm_sock_send(fd, b, sizeof(b), &attach, attach >= 0);
}

/* docs/specs/ivshmem-spec.rst: version, id, memory, peers, own vectors. */
static void gw_ivs_accept(struct gw *gw)
{
    int fd = accept4(gw->ivs_lfd, NULL, NULL, SOCK_CLOEXEC);
    unsigned v;
    int ret;

    if (fd < 0) {
        return;
    }
    if (!devvm_peer_allowed(fd, gw->owner_uid)) {
        gw_log("device VM refused: it does not run as uid %u",
               gw->owner_uid);
        close(fd);
        return;
    }
    if (gw->ivs_fd >= 0) {
        gw_log("device VM refused: one is already connected");
        close(fd);
        return;
    }
    ret = gw_ivs_send(fd, 0, -1);
    ret = ret ? ret : gw_ivs_send(fd, GW_VM_PEER, -1);
    ret = ret ? ret : gw_ivs_send(fd, -1, gw->shm_fd);
    for (v = 0; !ret && v < gw->channels; v++) {
        ret = gw_ivs_send(fd, GW_HOST_PEER, gw->host_fds[v]);
    }
    for (v = 0; !ret && v < gw->channels; v++) {
        ret = gw_ivs_send(fd, GW_VM_PEER, gw->vm_fds[v]);
    }
    if (ret) {
        gw_log("device VM setup: %s", devvm_strerror(ret));
        close(fd);
        return;
    }
    gw->ivs_fd = fd;
    pthread_mutex_lock(&gw->lock);
    gw->heartbeat_at = gw_now_ns();
    gw->hang_reported = false;
    pthread_mutex_unlock(&gw->lock);
    gw_log("device VM connected");
}

/* The device VM cannot say it died: say it for it. */
static void gw_device_failed(struct gw *gw, uint32_t code, const char *why)
{
    uint32_t state = devvm_shm_state(gw->shm);

    if (state == DEVVM_STATE_BOOTING || state == DEVVM_STATE_READY) {
        devvm_shm_set_state(gw->shm, DEVVM_STATE_FAILED, code, why);
    }
    gw_log("device failed: %s", why);
}

/*
 * Take a READY device's geometry and description; both come from the
 * device VM and are checked.  False when they are unusable.
 */
static bool gw_take_desc(struct gw *gw)
{
    struct devvm_shm_layout l;
    struct devvm_desc_info d;
    int ret;

    ret = devvm_shm_validate(gw->shm, gw->shm_size, &l);
    if (!ret && (l.nr_channels > gw->channels || l.desc_size <
                 DEVVM_DESC_SIZE)) {
        ret = DEVVM_E_BAD_FIELD;
    }
    if (!ret) {
        ret = devvm_desc_decode(gw->shm + DEVVM_DESC_OFFSET, l.desc_size, &d);
    }
    if (!ret && 2 * d.instances > l.nr_channels) {
        ret = DEVVM_E_BAD_FIELD;
    }
    if (!ret && gw->have_desc &&
        (memcmp(&d.dev, &gw->desc.dev, sizeof(d.dev)) ||
         memcmp(d.regions, gw->desc.regions, sizeof(d.regions)) ||
         memcmp(d.irqs, gw->desc.irqs, sizeof(d.irqs)))) {
        /* clients built their PCI function from the first one */
        gw_log("the restarted device describes a different device");
        ret = DEVVM_E_BAD_FIELD;
    }
    if (ret) {
        gw_device_failed(gw, EINVAL, "unusable shared memory or "
                         "device description");
        gw_log("shared memory or description: %s", devvm_strerror(ret));
        return false;
    }
    pthread_mutex_lock(&gw->lock);
    gw->layout = l;
    if (gw->have_desc && d.instances < gw->desc.instances) {
        gw_log("the restarted device offers %u instances, not %u",
               d.instances, gw->desc.instances);
    }
    gw->desc = d;
    gw->have_desc = true;
    pthread_mutex_unlock(&gw->lock);
    return true;
}

/* Once per tick and on ivshmem events: the device's state. */
static void gw_watch(struct gw *gw)
{
    uint32_t state = devvm_shm_state(gw->shm);
    uint32_t gen = devvm_shm_generation(gw->shm);
    uint64_t hb = devvm_shm_heartbeat_count(gw->shm);
    int64_t now = gw_now_ns();
    bool changed;

    pthread_mutex_lock(&gw->lock);
    changed = state != gw->state || gen != gw->generation;
    if (hb != gw->heartbeat || state != DEVVM_STATE_READY) {
        gw->heartbeat = hb;
        gw->heartbeat_at = now;
        gw->hang_reported = false;
    }
    pthread_mutex_unlock(&gw->lock);
    if (state == DEVVM_STATE_READY && !gw->hang_reported &&
        now - gw->heartbeat_at > (int64_t)gw->heartbeat_ms * 1000000) {
        char why[96];

        snprintf(why, sizeof(why), "heartbeat stopped for %d ms",
                 gw->heartbeat_ms);
        gw->hang_reported = true;
        gw_device_failed(gw, ETIMEDOUT, why);
        state = devvm_shm_state(gw->shm);
        changed = true;
    }
    if (!changed) {
        return;
    }
    if (state == DEVVM_STATE_READY && !gw_take_desc(gw)) {
        state = devvm_shm_state(gw->shm);
    }
    if (state != DEVVM_STATE_READY) {
        char reason[DEVVM_MAX_REASON];

        devvm_shm_reason(gw->shm, reason, sizeof(reason));
        gw_log("device generation %u: %s%s%s", gen, devvm_state_name(state),
               reason[0] ? ": " : "", reason);
    } else {
        gw_log("device generation %u: READY, \"%s\", %u instances", gen,
               gw->desc.name, gw->desc.instances);
    }
    pthread_mutex_lock(&gw->lock);
    gw->state = state;
    gw->generation = gen;
    pthread_mutex_unlock(&gw->lock);
    gw_wake_clients(gw);
}

/* ---- set-up ------------------------------------------------------------- */

/* DIR must be ours and private: create it 0700, or check an existing one. */
static bool gw_private_dir(const char *dir)
{
    struct stat st;

    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        gw_log("%s: %s", dir, strerror(errno));
        return false;
    }
    /* lstat: a symlink could point the sockets anywhere */
    if (lstat(dir, &st) < 0) {
        gw_log("%s: %s", dir, strerror(errno));
        return false;
    }
    if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() ||
        (st.st_mode & 0077)) {
        gw_log("%s: must be a directory (not a symlink) owned by uid %u "
               "with mode 0700", dir, geteuid());
        return false;
    }
    return true;
}

/* Wake the device VM's runtime: instance @inst's control doorbell. */
static void gw_win_kick(void *opaque, unsigned inst)
{
    struct gw *gw = opaque;

    if (2 * inst < gw->channels) {
        gw_notify(gw->vm_fds[2 * inst]);
    }
}

static bool gw_setup(struct gw *gw)
{
    uint64_t need = devvm_shm_size(gw->channels, GW_DEPTH, GW_DATA_SIZE);
    unsigned v;

    gw->shm_size = 4096;
    while (gw->shm_size < need) {
        gw->shm_size <<= 1;     /* a PCI BAR in the device VM */
    }
    gw->shm_fd = memfd_create("devvm-gateway-shm", MFD_CLOEXEC);
    if (gw->shm_fd < 0 || ftruncate(gw->shm_fd, gw->shm_size) < 0) {
        gw_log("shared memory: %s", strerror(errno));
        return false;
    }
    gw->shm = mmap(NULL, gw->shm_size, PROT_READ | PROT_WRITE, MAP_SHARED,
                   gw->shm_fd, 0);
    if (gw->shm == MAP_FAILED) {
        gw_log("shared memory: mmap: %s", strerror(errno));
        return false;
    }
    for (v = 0; v < gw->channels; v++) {
        gw->host_fds[v] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        gw->vm_fds[v] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (gw->host_fds[v] < 0 || gw->vm_fds[v] < 0) {
            gw_log("eventfd: %s", strerror(errno));
            return false;
        }
    }
    if (!gw_private_dir(gw->dir) ||
        asprintf(&gw->ivs_path, "%s/ivshmem.sock", gw->dir) < 0 ||
        asprintf(&gw->dev_path, "%s/device.sock", gw->dir) < 0) {
        return false;
    }
    /* before ivshmem.sock, whose existence says the gateway is ready */
    if (gw->dma_window) {
        if (asprintf(&gw->win_path, "%s/dma.sock", gw->dir) < 0) {
            return false;
        }
        gw->win = gw_window_new(gw->win_path, gw->owner_uid, gw_win_kick, gw,
                                gw_log);
        if (!gw->win) {
            return false;
        }
    }
    gw->ivs_lfd = devvm_sock_listen(gw->ivs_path);
    if (gw->ivs_lfd < 0) {
        gw_log("cannot listen on %s: %s", gw->ivs_path,
               strerror(-gw->ivs_lfd));
        return false;
    }
    if (gw->run_as) {
        const char *what;
        int ret;

        /* the directory becomes the new uid's: device.sock comes later */
        if (chown(gw->dir, gw->uid, gw->gid) < 0) {
            gw_log("--run-as %s: chown %s: %s", gw->run_as, gw->dir,
                   strerror(errno));
            return false;
        }
        ret = devvm_run_as(gw->uid, gw->gid, &what);
        if (ret) {
            gw_log("--run-as %s: %s: %s", gw->run_as, what, strerror(-ret));
            return false;
        }
    }
    return true;
}

/* The clients' socket exists only once the device was READY once. */
static bool gw_listen_clients(struct gw *gw)
{
    gw->dev_lfd = devvm_sock_listen(gw->dev_path);
    if (gw->dev_lfd < 0) {
        gw_log("cannot listen on %s: %s", gw->dev_path,
               strerror(-gw->dev_lfd));
        return false;
    }
    printf("ready %s\n", gw->dev_path);
    fflush(stdout);
    return true;
}

static int gw_run(struct gw *gw)
{
    while (!stop) {
        struct pollfd pfd[4] = {
            { .fd = gw->ivs_lfd, .events = POLLIN },
            { .fd = gw->ivs_fd, .events = POLLIN },
            { .fd = gw->dev_lfd, .events = POLLIN },
            { .fd = gw->win ? gw_window_listen_fd(gw->win) : -1,
              .events = POLLIN },
        };

        if (poll(pfd, 4, GW_TICK_MS) < 0 && errno != EINTR) {
            gw_log("poll: %s", strerror(errno));
            return 1;
        }
        if (pfd[0].revents) {
            gw_ivs_accept(gw);
        }
        if (pfd[3].revents) {
            gw_window_accept(gw->win);
        }
        if (pfd[1].revents) {
            /* QEMU never writes: readable means it went away */
            close(gw->ivs_fd);
            gw->ivs_fd = -1;
            gw_device_failed(gw, EPIPE, "device VM exited");
        }
        gw_watch(gw);
        if (gw->dev_lfd < 0 && gw->have_desc && !gw_listen_clients(gw)) {
            return 1;
        }
        if (pfd[2].revents) {
            gw_accept_client(gw);
        }
        gw_reap(gw);
    }
    return 0;
}

/* ---- main --------------------------------------------------------------- */

static void gw_on_signal(int sig)
{
    stop = 1;
}

static void gw_usage(FILE *f, unsigned channels)
{
    fprintf(f,
"usage: devvm-gateway --dir DIR [OPTION...]\n"
"The host side of one device VM: its ivshmem server and the vfio-user\n"
"server its clients (-device devvm-proxy, vfio-user-pci) connect to.\n"
"\n"
"  -d, --dir DIR           private directory (created 0700) for the\n"
"                          sockets DIR/ivshmem.sock and DIR/device.sock\n"
"  -c, --channels N        ring channels, 2 per client (default %u,\n"
"                          even, 2 to %u)\n"
"  -t, --timeout-ms MS     wait for the device VM at most MS (default 2000)\n"
"  -b, --heartbeat-ms MS   declare the device hung when its heartbeat\n"
"                          stops for MS (default 3000)\n"
"  -H, --handshake-ms MS   drop a client that has not negotiated (sent\n"
"                          VERSION) MS after it connected (default %u)\n"
"  -n, --no-ring           do not hand clients the ring (socket only)\n"
"  -E, --no-client-events  keep the device's events (DMA, interrupts, logs)\n"
"                          here instead of giving them to clients that ask\n"
"  -W, --no-dma-window     no DIR/dma.sock: the device VM reaches client\n"
"                          memory by DMA messages only\n"
"  -u, --run-as UID:GID    once listening, give DIR to UID:GID, drop root\n"
"                          and run as UID:GID\n"
"  -v, --verbose           log every event\n"
"  -h, --help              this text\n"
"\n"
"Once the device VM published READY, prints \"ready DIR/device.sock\".\n"
"The device VM's QEMU needs (with this --channels):\n"
"  -chardev socket,path=DIR/ivshmem.sock,id=ivs\n"
"  -device ivshmem-doorbell,chardev=ivs,vectors=%u\n"
"and, for zero-copy DMA (docs/devvm/dma-window.rst):\n"
"  -chardev socket,path=DIR/dma.sock,id=dmaw\n"
"  -device devvm-dma-window,chardev=dmaw\n"
"Each client takes one instance of the device (2 channels); one more\n"
"is refused with an EUSERS reply to its VERSION.\n"
"SIGTERM or SIGINT: exit 0.\n", GW_DEFAULT_CHANNELS, DEVVM_MAX_CHANNELS,
            DEVVM_SERVER_HANDSHAKE_MS, channels);
}

static bool gw_parse_uint(const char *s, unsigned min, unsigned max,
                          unsigned *out)
{
    char *end;
    unsigned long v;

    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno || end == s || *end || *s == '-' || v < min || v > max) {
        return false;
    }
    *out = v;
    return true;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "dir", required_argument, NULL, 'd' },
        { "channels", required_argument, NULL, 'c' },
        { "timeout-ms", required_argument, NULL, 't' },
        { "heartbeat-ms", required_argument, NULL, 'b' },
        { "handshake-ms", required_argument, NULL, 'H' },
        { "no-ring", no_argument, NULL, 'n' },
        { "no-client-events", no_argument, NULL, 'E' },
        { "no-dma-window", no_argument, NULL, 'W' },
        { "run-as", required_argument, NULL, 'u' },
        { "verbose", no_argument, NULL, 'v' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    static struct gw gw = {
        .channels = GW_DEFAULT_CHANNELS, .timeout_ms = 2000,
        .heartbeat_ms = 3000, .handshake_ms = DEVVM_SERVER_HANDSHAKE_MS,
        .ring = true, .client_events = true, .dma_window = true,
        .shm_fd = -1, .ivs_lfd = -1, .ivs_fd = -1, .dev_lfd = -1,
        .lock = PTHREAD_MUTEX_INITIALIZER,
        .threads = DEVVM_THREADS_INITIALIZER,
    };
    struct sigaction sa = { .sa_handler = gw_on_signal };
    unsigned n;
    int opt, ret;

    while ((opt = getopt_long(argc, argv, "d:c:t:b:H:nEWu:vh", longopts,
                              NULL)) != -1) {
        switch (opt) {
        case 'd':
            gw.dir = optarg;
            break;
        case 'c':
            if (!gw_parse_uint(optarg, 2, DEVVM_MAX_CHANNELS, &n) || n & 1) {
                gw_log("--channels %s: an even number from 2 to %u", optarg,
                       DEVVM_MAX_CHANNELS);
                return 2;
            }
            gw.channels = n;
            break;
        case 't':
        case 'b':
        case 'H':
            if (!gw_parse_uint(optarg, 10, 3600000, &n)) {
                gw_log("--%s %s: milliseconds from 10 to 3600000",
                       opt == 't' ? "timeout-ms" :
                       opt == 'b' ? "heartbeat-ms" : "handshake-ms", optarg);
                return 2;
            }
            *(opt == 't' ? &gw.timeout_ms :
              opt == 'b' ? &gw.heartbeat_ms : &gw.handshake_ms) = n;
            break;
        case 'n':
            gw.ring = false;
            break;
        case 'E':
            gw.client_events = false;
            break;
        case 'W':
            gw.dma_window = false;
            break;
        case 'u':
            if (devvm_run_as_parse(optarg, &gw.uid, &gw.gid)) {
                gw_log("--run-as %s: expected UID:GID, neither 0", optarg);
                return 2;
            }
            gw.run_as = optarg;
            break;
        case 'v':
            verbose = true;
            break;
        case 'h':
            gw_usage(stdout, gw.channels);
            return 0;
        default:
            gw_usage(stderr, gw.channels);
            return 2;
        }
    }
    gw.owner_uid = geteuid();
    if (optind < argc || !gw.dir) {
        gw_log("--dir is needed");
        gw_usage(stderr, gw.channels);
        return 2;
    }
    gw_ops_no_ring = gw_ops;
    gw_ops_no_ring.ring_attach = NULL;
    gw_ops_no_ring.ring_detach = NULL;

    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (!gw_setup(&gw)) {
        return 1;
    }
    gw_log("waiting for the device VM on %s (ivshmem-doorbell vectors=%u)",
           gw.ivs_path, gw.channels);
    ret = gw_run(&gw);
    unlink(gw.ivs_path);
    if (gw.win_path) {
        unlink(gw.win_path);
    }
    if (gw.dev_lfd >= 0) {
        unlink(gw.dev_path);
    }
    /* client threads end with the process; their sockets close */
    return ret;
}
