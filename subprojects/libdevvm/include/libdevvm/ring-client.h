/*
 * libdevvm (hosted): BAR accesses over a ring channel.
 *
 * The client end (struct devvm_ring_client) maps the shared memory that
 * DEVVM_RING_ATTACH handed over, posts writes and waits for read
 * completions: it polls for a bounded time, then sleeps on the call
 * doorbell, never longer than the caller's timeout.  The device end of a
 * process-mode server serves the request ring with
 * devvm_server_ring_serve() (server.h).
 *
 * One thread at a time per devvm_ring_client.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef LIBDEVVM_RING_CLIENT_H
#define LIBDEVVM_RING_CLIENT_H

#include <stdint.h>

#include "libdevvm/ring.h"
#include "libdevvm/wire.h"

#define DEVVM_RING_LOG_MAX  1024    /* one LOG message; longer ones are cut */

struct devvm_ring_client {
    uint8_t *shm;
    uint64_t shm_size;
    int kick_fd;                /* client -> device doorbell */
    int call_fd;                /* device -> client doorbell */
    struct devvm_channel ch;
    /*
     * Tags of READ_DONE requests: 1, 2, ... from devvm_ring_client_open().
     * A completion whose tag is in [first_tag, the current request's) is
     * the late answer to a request that timed out, and is dropped.  An
     * owner that opens the same channel again while such answers may
     * still come (a gateway's control channel, from one client to the
     * next) sets both after the open to carry on from the tags it used.
     */
    uint32_t first_tag;
    uint32_t next_tag;
    uint64_t late;              /* late completions dropped */
    uint32_t spin_us;           /* busy-poll this long before sleeping */
    int broken;                 /* sticky: re-attach to recover */
    int peer_status;            /* status of the last failed completion */
    /*
     * Optional: while a read sleeps, @aux_fd (the connection's socket)
     * is watched too and @aux_ready called when it is readable, so that
     * requests the device sends on the socket meanwhile (DMA_READ/WRITE
     * for memory without an fd) are served and cannot deadlock the read.
     * A negative devvm_err from it (the socket died) ends the wait with
     * that error.
     */
    int aux_fd;
    int (*aux_ready)(void *opaque);
    void *aux_opaque;
    /*
     * Optional, for an end that is also the channel's events side (a
     * device VM gateway on its control channel, a client granted
     * EVENTS): called with aux_opaque on every turn of a wait, to
     * consume the EVT ring, which shares the call doorbell, and once more
     * after the completion came, so that the events the device published
     * before it are taken before the call returns.  A negative devvm_err
     * ends the wait with that error.
     */
    int (*events)(void *opaque);
    /* devvm_ring_client_events(): a LOG message being put together */
    char log[DEVVM_RING_LOG_MAX + 1];
    uint32_t log_len;
};

/*
 * What the events side does with the device's events
 * (devvm_ring_client_events()).
 */
struct devvm_ring_event_ops {
    /*
     * DMA_READ (@write 0: client memory at @addr to @buf) or DMA_WRITE
     * (@buf to client memory); @buf is inside the channel's data area.
     * Returns 0 or a negative errno, the DMA_DONE status: -EFAULT (not
     * memory the device may reach) or -EIO.
     */
    int (*dma)(void *opaque, int write, uint64_t addr, void *buf,
               uint64_t len);
    /* IRQ: @index VFIO_PCI_*_IRQ, @vector, @action DEVVM_IRQ_*, unchecked */
    void (*irq)(void *opaque, uint32_t index, uint64_t vector,
                uint64_t action);
    /* A LOG message, NUL-terminated, unprintable bytes replaced by '?' */
    void (*log)(void *opaque, const char *msg);
    /*
     * Optional, for the log: a DMA slot whose data-area range is outside
     * the channel's (it completes with EINVAL), or an operation that has
     * no place on the EVT ring (the channel is then corrupt).
     */
    void (*bad_slot)(void *opaque, const struct devvm_slot *s);
};

/*
 * Map and check the shared memory of a RING_ATTACH reply @a, whose three
 * fds (shared memory, kick, call) are consumed whatever the outcome.
 * Fails with DEVVM_E_STALE when the device restarted since the reply.
 */
int devvm_ring_client_open(struct devvm_ring_client *rc,
                           const struct devvm_ring_attach *a,
                           int fds[DEVVM_ATTACH_FDS]);
void devvm_ring_client_close(struct devvm_ring_client *rc);

/*
 * A posted write of @size (1, 2, 4, 8) bytes: returns once it is in the
 * ring, waiting at most @timeout_ms for room.
 */
int devvm_ring_client_write(struct devvm_ring_client *rc, uint8_t region,
                            uint64_t offset, uint8_t size, uint64_t value,
                            int timeout_ms);
/*
 * A read, ordered after every write posted before it.  Errors:
 * DEVVM_E_TIMEOUT (no completion within @timeout_ms: the request stays
 * queued, and its late completion will be dropped; the channel stays
 * usable), DEVVM_E_STALE / DEVVM_E_STATE (device restarted or not
 * READY), DEVVM_E_PEER (the device failed the access: rc->peer_status),
 * ring errors when the shared memory is corrupt.
 */
int devvm_ring_client_read(struct devvm_ring_client *rc, uint8_t region,
                           uint64_t offset, uint8_t size, uint64_t *value,
                           int timeout_ms);

/*
 * Any request that completes with a READ_DONE (READ, or the control ops
 * of a device VM's control channel): @s->op and its fields are the
 * caller's, the tag is chosen here.  The completion's data goes to
 * *@value when it is not NULL.  Errors as for devvm_ring_client_read().
 */
int devvm_ring_client_call(struct devvm_ring_client *rc,
                           const struct devvm_slot *s, uint64_t *value,
                           int timeout_ms);

/*
 * For the events side of the channel (a client granted EVENTS, or a
 * device VM gateway on a control channel): execute every slot on the EVT
 * ring, in order, through @ops, completing each DMA with a DMA_DONE and
 * ringing the kick doorbell when the device sleeps.  A DMA whose
 * data-area range is outside the channel's completes with EINVAL.
 * DEVVM_OK when the ring is empty, else a ring error or
 * DEVVM_E_BAD_FIELD (an operation that has no place there): the channel
 * is corrupt.
 */
int devvm_ring_client_events(struct devvm_ring_client *rc,
                             const struct devvm_ring_event_ops *ops,
                             void *opaque);

/*
 * For a client granted EVENTS, outside any wait: take the call
 * doorbell's signal if there is one (without blocking), then call
 * rc->events.  Errors as for devvm_ring_client_events().
 */
int devvm_ring_client_service(struct devvm_ring_client *rc);

#endif /* LIBDEVVM_RING_CLIENT_H */
