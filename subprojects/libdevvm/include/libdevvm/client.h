/*
 * libdevvm (hosted): the client role of a vfio-user connection with the
 * devvm extension.  Synchronous: each call sends one request and waits
 * (at most timeout_ms) for its reply, serving the server's own requests
 * (DMA_READ/WRITE, devvm EVENT) that arrive meanwhile.
 *
 * Any protocol error (malformed message, reply with an unknown id,
 * timeout, EOF) is fatal for the connection: it is remembered in
 * c->broken, returned by every later call, and the owner should close
 * the socket and reconnect.  An error *reply* is not fatal: the call
 * returns DEVVM_E_PEER with the server's errno in c->peer_errno.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef LIBDEVVM_CLIENT_H
#define LIBDEVVM_CLIENT_H

#include <stdint.h>

#include "libdevvm/caps.h"
#include "libdevvm/sock.h"
#include "libdevvm/wire.h"

struct devvm_client_ops {
    /* Server-initiated DMA to client memory not shared by fd: copy and
     * return 0 or a negative errno (replied to the server). */
    int (*dma_read)(void *opaque, uint64_t addr, void *buf, uint64_t len);
    int (*dma_write)(void *opaque, uint64_t addr, const void *buf,
                     uint64_t len);
    /* devvm EVENT: the device side changed state or generation. */
    void (*event)(void *opaque, const struct devvm_event *ev);
};

struct devvm_client {
    int fd;
    int timeout_ms;             /* per call; -1 waits forever */
    uint32_t spin_us;           /* a call busy-polls for its reply up to
                                 * this long before it sleeps (default
                                 * 50; 0: never) */
    uint32_t spin_cur_us;       /* the budget now: halved by each spin
                                 * that missed, spin_us again after one
                                 * that caught the reply */
    uint32_t spin_calls;        /* calls since spin_cur_us was spin_us */
    uint16_t next_id;
    int broken;                 /* sticky fatal error, 0 while healthy */
    int peer_errno;             /* errno of the last error reply */
    struct devvm_caps caps;     /* what the server replied */
    uint16_t minor;             /* negotiated minor version */
    const struct devvm_client_ops *ops;
    void *opaque;
    /*
     * Optional: while a call waits for its reply, @aux_fd is watched too
     * and @aux_ready(opaque) called when it is readable (a client that
     * consumes the device's ring events serves them meanwhile: the
     * device may need them served before it can answer).  A negative
     * devvm_err from it ends the call with that error.
     */
    int aux_fd;
    int (*aux_ready)(void *opaque);
};

/*
 * Set up @c on the connected socket @fd (the client owns it from now
 * on), each call waiting at most @timeout_ms (-1: forever); @ops (may be
 * NULL) serves the server's DMA requests and events with @opaque.
 */
void devvm_client_init(struct devvm_client *c, int fd, int timeout_ms,
                       const struct devvm_client_ops *ops, void *opaque);

/*
 * VERSION: propose @want (devvm_caps_default() plus what we support) and
 * check the server's reply.  Afterwards c->caps.devvm says whether the
 * devvm extension may be used; a plain vfio-user server leaves it 0.
 */
int devvm_client_negotiate(struct devvm_client *c,
                           const struct devvm_caps *want);

/*
 * Generic call: @req is an encoded request (its id is assigned here).
 * On success the reply is in @rx (release it) and decoded in @reply.
 * With DEVVM_HDR_F_NO_REPLY set in @req nothing is awaited.
 */
int devvm_client_call(struct devvm_client *c, void *req, size_t len,
                      const int *fds, uint32_t nfds, struct devvm_rx *rx,
                      struct devvm_msg *reply);

/* DEVICE_GET_INFO: flags, number of regions and IRQ indexes. */
int devvm_client_device_info(struct devvm_client *c,
                             struct devvm_device_info *out);
/* Fetches sparse areas too (retrying with the argsz the server asks
 * for).  *fd is the region's fd or -1; the caller owns it. */
int devvm_client_region_info(struct devvm_client *c, uint32_t index,
                             struct devvm_region_info *out, int *fd);
/* DEVICE_GET_IRQ_INFO of IRQ index @index: its flags and count. */
int devvm_client_irq_info(struct devvm_client *c, uint32_t index,
                          struct devvm_irq_info *out);
/* @fds (DATA_EVENTFD, count of them or NULL to de-assign) or @bools
 * (DATA_BOOL) as @flags says.  More fds than the server's max_msg_fds
 * are sent in several messages, each for its part of the range. */
int devvm_client_set_irqs(struct devvm_client *c, uint32_t flags,
                          uint32_t index, uint32_t start, uint32_t count,
                          const int *fds, const uint8_t *bools);
/* REGION_READ of @count bytes at @offset of @region into @buf. */
int devvm_client_region_read(struct devvm_client *c, uint32_t region,
                             uint64_t offset, void *buf, uint32_t count);
/* REGION_WRITE of @buf; @posted: send with NO_REPLY and do not wait. */
int devvm_client_region_write(struct devvm_client *c, uint32_t region,
                              uint64_t offset, const void *buf,
                              uint32_t count, int posted);
/*
 * DMA_MAP of @m, with @fd (-1: none, the range is reached by message).
 * @fd stays the caller's: it is sent, not closed.
 */
int devvm_client_dma_map(struct devvm_client *c,
                         const struct devvm_dma_map *m, int fd);
/* DMA_UNMAP of exactly [@addr, @addr + @size), or all with UNMAP_ALL. */
int devvm_client_dma_unmap(struct devvm_client *c, uint64_t addr,
                           uint64_t size, uint32_t flags);
/* DEVICE_RESET. */
int devvm_client_reset(struct devvm_client *c);
/* devvm extension only (DEVVM_E_VERSION if not negotiated).  On success
 * fds[0..2] are the shared memory, kick and call fds; the caller owns
 * them. */
int devvm_client_ring_attach(struct devvm_client *c, uint32_t flags,
                             struct devvm_ring_attach *out,
                             int fds[DEVVM_ATTACH_FDS]);
/* RING_DETACH of @channel (devvm extension only). */
int devvm_client_ring_detach(struct devvm_client *c, uint32_t channel);

/* Serve server-initiated messages for up to @timeout_ms while no call is
 * in progress.  Returns 0 after serving one, DEVVM_E_AGAIN on timeout. */
int devvm_client_poll(struct devvm_client *c, int timeout_ms);

#endif /* LIBDEVVM_CLIENT_H */
