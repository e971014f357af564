/*
 * libdevvm (hosted): the server role of a vfio-user connection with the
 * devvm extension.  One struct devvm_server_conn per connected client;
 * the owner runs devvm_server_conn_dispatch() whenever the socket is
 * readable.  The role enforces the protocol (VERSION first, limits,
 * region bounds, DMA map table) so that a device's callbacks only see
 * valid requests.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef LIBDEVVM_SERVER_H
#define LIBDEVVM_SERVER_H

#include <stdint.h>

#include "libdevvm/caps.h"
#include "libdevvm/dma.h"
#include "libdevvm/ring.h"
#include "libdevvm/sock.h"
#include "libdevvm/wire.h"

/*
 * Device callbacks.  They return 0 or a negative errno, which becomes the
 * error reply.  Region accesses arrive already bounds-checked against
 * the region's size and flags.
 */
struct devvm_server_ops {
    int (*device_info)(void *opaque, struct devvm_device_info *info);
    /* Fill @info for @index (< num_regions); set *fd to a mappable fd the
     * role sends (not closes) or leave it -1. */
    int (*region_info)(void *opaque, uint32_t index,
                       struct devvm_region_info *info, int *fd);
    int (*irq_info)(void *opaque, uint32_t index,
                    struct devvm_irq_info *info);
    /* SET_IRQS, index and range already checked against irq_info.  The
     * callee keeps an fd by setting its slot to -1; the rest are closed. */
    int (*set_irqs)(void *opaque, const struct devvm_irq_set *set,
                    int *fds, uint32_t nfds);
    int (*region_read)(void *opaque, uint32_t region, uint64_t offset,
                       void *buf, uint32_t count);
    int (*region_write)(void *opaque, uint32_t region, uint64_t offset,
                        const void *buf, uint32_t count);
    int (*reset)(void *opaque);
    /* Optional: told after the role updated its DMA table. */
    void (*dma_changed)(void *opaque);
    /* Optional: a range the client mapped with an fd the role could map
     * too, and a dup of that fd, which the callee owns. */
    void (*dma_mapped)(void *opaque, const struct devvm_dma_map *m, int fd);
    /* Optional: [addr, addr + size) is about to be unmapped (DMA_UNMAP,
     * one call per range of an unmap-all); when it returns, the role
     * takes it out of its table and answers the client. */
    void (*dma_unmapping)(void *opaque, uint64_t addr, uint64_t size);
    /* Optional (devvm ring transport): NULL means "ring" is not offered.
     * Fill a->channel, depth, shm_size, generation and fds[0..2] (the
     * role sends them and then closes them). */
    int (*ring_attach)(void *opaque, struct devvm_ring_attach *a,
                       int fds[DEVVM_ATTACH_FDS]);
    int (*ring_detach)(void *opaque, uint32_t channel);
    /* Optional: one line about a protocol error, before the role gives
     * up on the connection; with verbose, also one per message. */
    void (*log)(void *opaque, const char *msg);
};

#define DEVVM_SERVER_MAX_PENDING 64u

struct devvm_server_conn {
    int fd;
    int timeout_ms;             /* for server-initiated requests */
    /*
     * Set by the owner: one ops->log line for every message sent or
     * received ("in:"/"out:", command, reply or error reply, id, size;
     * DMA_READ/DMA_WRITE with their range, error replies with the errno)
     */
    int verbose;
    int negotiated;
    int broken;
    int peer_errno;             /* errno of the client's last error reply */
    uint16_t next_id;
    struct devvm_caps mine;     /* what this server offers */
    struct devvm_caps caps;     /* negotiated (what the reply said) */
    uint32_t peer_max_xfer;     /* client's max_data_xfer_size */
    struct devvm_device_info info;
    struct devvm_region_info regions[DEVVM_MAX_REGIONS];
    struct devvm_irq_info irqs[DEVVM_MAX_IRQ_TYPES];
    struct devvm_dma_table dma;
    /* requests that arrived while we waited for a DMA reply */
    struct devvm_rx pending[DEVVM_SERVER_MAX_PENDING];
    uint32_t npending;
    const struct devvm_server_ops *ops;
    void *opaque;
};

/*
 * Ask the device for its info, regions and IRQs (so malformed device
 * descriptions fail here, not in front of a client).  @mine may be NULL
 * for the defaults: devvm advertised, ring only if ops->ring_attach.
 */
int devvm_server_conn_init(struct devvm_server_conn *s, int fd,
                           const struct devvm_server_ops *ops, void *opaque,
                           const struct devvm_caps *mine);
/* Close the socket, unmap client memory, free everything. */
void devvm_server_conn_fini(struct devvm_server_conn *s);

/*
 * Read and handle one message, waiting at most @timeout_ms for it.
 * Returns 0, DEVVM_E_AGAIN when nothing arrived, or a fatal error after
 * which the owner must call devvm_server_conn_fini().
 */
int devvm_server_conn_dispatch(struct devvm_server_conn *s, int timeout_ms);

/*
 * Device-initiated DMA to client memory: through the mapping when the
 * client gave an fd for it, otherwise with DMA_READ/WRITE messages (in
 * chunks of the client's max_data_xfer_size).  Only ranges inside the
 * client's DMA maps are touched: anything else is -EFAULT.  A message
 * the client refuses is its errno, negative (-EFAULT when the memory is
 * not the device's to reach); both are logged.  A negative devvm_err:
 * the connection failed.
 */
int devvm_server_conn_dma_read(struct devvm_server_conn *s, uint64_t addr,
                               void *buf, uint64_t len);
int devvm_server_conn_dma_write(struct devvm_server_conn *s, uint64_t addr,
                                const void *buf, uint64_t len);
/*
 * For fault injection only (DEVVM_FAULT_DMA_NO_MASTER): DMA_READ (@write
 * 0) or DMA_WRITE messages for [addr, addr + len) whatever the client's
 * maps say, as a broken device would send them, so that a test can see
 * the client refuse them.  Its errno, negative, when it does.
 */
int devvm_server_conn_dma_unchecked(struct devvm_server_conn *s, int write,
                                    uint64_t addr, void *buf, uint64_t len);

/*
 * Device end of a ring channel in a process-mode server: execute up to
 * @budget requests from the channel's REQ ring with the device's
 * region_read/region_write callbacks (bounds-checked like socket
 * accesses; a refused READ completes with a status, a refused WRITE is
 * dropped and logged), push READ completions and signal @call_fd when the
 * client asked for it.  Returns the number of requests served, or a ring
 * error (corrupt ring, unknown op) after which the channel is unusable.
 * The owner sleeps on the kick doorbell after devvm_ring_prepare_sleep()
 * on the REQ ring.
 */
int devvm_server_ring_serve(struct devvm_server_conn *s,
                            struct devvm_channel *ch, int call_fd,
                            unsigned budget);

/* devvm EVENT to the client (only when devvm was negotiated). */
int devvm_server_conn_event(struct devvm_server_conn *s, uint32_t state,
                            uint32_t generation, const char *reason);

/*
 * How long a new connection may take to negotiate, by default: a client
 * that has not sent VERSION by then is dropped, so that idle connections
 * cannot hold a server's instances.  Servers take --handshake-ms.
 */
#define DEVVM_SERVER_HANDSHAKE_MS   5000

/* At most this many refusals (devvm_server_refuse()) wait at once. */
#define DEVVM_SERVER_MAX_REFUSING   16u

/*
 * Refuse a connection the server cannot take, without blocking the
 * caller: a detached thread waits at most @timeout_ms for the client's
 * first request (its VERSION), answers it with an error reply carrying
 * @err (EUSERS: every instance of the device is in use), and closes @fd.
 * Beyond DEVVM_SERVER_MAX_REFUSING at once, @fd is closed at once.
 */
void devvm_server_refuse(int fd, int err, int timeout_ms);

#endif /* LIBDEVVM_SERVER_H */
