/*
 * libdevvm (core): the device end of a ring channel, the one loop every
 * server with rings runs (process mode, the device VM runtime): take the
 * requests of the REQ ring in order, check each access as a socket
 * access is checked, run it, and complete reads with a READ_DONE on the
 * CPL ring.  Freestanding: no libc, no allocation.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef LIBDEVVM_RING_DEVICE_H
#define LIBDEVVM_RING_DEVICE_H

#include <stdint.h>

#include "libdevvm/ring.h"
#include "libdevvm/wire.h"

struct devvm_ring_device_ops {
    /*
     * A READ or WRITE that passed every check (size 1, 2, 4 or 8, a
     * region the channel serves, its READ/WRITE flag, inside its size):
     * 0 or a negative errno.  A failed read completes with that errno
     * and all-ones data; a failed write is dropped.  A negative
     * devvm_err stops serving: devvm_ring_device_serve() returns it
     * (the owner found the channel unusable meanwhile).
     */
    int (*read)(void *opaque, uint32_t region, uint64_t offset,
                uint32_t size, uint64_t *value);
    int (*write)(void *opaque, uint32_t region, uint64_t offset,
                 uint32_t size, uint64_t value);
    /*
     * Optional: any other op (a device VM's control channel has OPEN,
     * CLOSE, RESET, EVENTS).  0 or a negative errno: completed with a
     * READ_DONE of that status.  A negative devvm_err: the op has no
     * place on this channel, which is then unusable (the callback logs
     * it).  Without the callback every other op is DEVVM_E_BAD_FIELD.
     */
    int (*other)(void *opaque, const struct devvm_slot *req);
    /* Optional, for the log: a WRITE was dropped with @err. */
    void (*write_dropped)(void *opaque, const struct devvm_slot *req,
                          int err);
    /*
     * Optional: push the READ_DONE @c on @cpl in place of
     * devvm_ring_push(), to inject faults.  0 or a ring error.
     */
    int (*push_done)(void *opaque, struct devvm_ring *cpl,
                     const struct devvm_slot *c);
};

struct devvm_ring_device {
    struct devvm_channel *ch;
    const struct devvm_region_info *regions;
    uint32_t nr_regions;            /* the device's regions */
    uint32_t max_region;            /* the highest this channel serves */
    const struct devvm_ring_device_ops *ops;
    void *opaque;
};

/*
 * Serve up to @budget requests of d->ch's REQ ring.  Returns the number
 * taken, or a negative devvm_err after which the channel is unusable: a
 * ring error (indices or slot corrupt, no room for a completion), or
 * DEVVM_E_BAD_FIELD (an op with no place on the ring).  *@completed is
 * set when a READ_DONE was pushed: ring the call doorbell then if
 * devvm_ring_kick_needed() on the CPL ring.
 */
int devvm_ring_device_serve(const struct devvm_ring_device *d,
                            unsigned budget, int *completed);

#endif /* LIBDEVVM_RING_DEVICE_H */
