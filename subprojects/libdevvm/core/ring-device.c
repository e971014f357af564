/*
 * libdevvm (core): the device end of a ring channel.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "libdevvm/ring-device.h"

/* The checks of a ring access: 0, -DEVVM_EINVAL or -DEVVM_EPERM. */
static int ring_access_check(const struct devvm_ring_device *d,
                             const struct devvm_slot *r, int write)
{
    if (r->size != 1 && r->size != 2 && r->size != 4 && r->size != 8) {
        return -DEVVM_EINVAL;
    }
    if (r->region > d->max_region) {
        return -DEVVM_EINVAL;
    }
    return devvm_region_access_check(d->regions, d->nr_regions, r->region,
                                     r->addr, r->size, write);
}

static int ring_complete(const struct devvm_ring_device *d,
                         const struct devvm_slot *r, int err, uint64_t value)
{
    struct devvm_ring *cpl = &d->ch->ring[DEVVM_RING_CPL];
    struct devvm_slot c = {
        .op = DEVVM_OP_READ_DONE,
        .tag = r->tag,
        .status = (uint16_t)-err,
        .size = r->size,
        .data = err ? ~0ull : value,
    };
    int ret;

    if (d->ops->push_done) {
        return d->ops->push_done(d->opaque, cpl, &c);
    }
    /* the client waits for each completion, so there is always room */
    ret = devvm_ring_push(cpl, &c);
    return ret == DEVVM_E_AGAIN ? DEVVM_E_RING_INDEX : ret;
}

int devvm_ring_device_serve(const struct devvm_ring_device *d,
                            unsigned budget, int *completed)
{
    struct devvm_ring *req = &d->ch->ring[DEVVM_RING_REQ];
    unsigned served = 0;

    while (served < budget) {
        struct devvm_slot r;
        uint64_t value = 0;
        int ret, err;

        ret = devvm_ring_pop(req, &r);
        if (ret == DEVVM_E_AGAIN) {
            break;
        }
        if (ret) {
            return ret;
        }
        served++;
        switch (r.op) {
        case DEVVM_OP_WRITE:
            err = ring_access_check(d, &r, 1);
            if (!err) {
                err = d->ops->write(d->opaque, r.region, r.addr, r.size,
                                    r.data);
            }
            if (err && !devvm_is_errno(err)) {
                return err;
            }
            if (err && d->ops->write_dropped) {
                d->ops->write_dropped(d->opaque, &r, err);
            }
            continue;
        case DEVVM_OP_READ:
            err = ring_access_check(d, &r, 0);
            if (!err) {
                err = d->ops->read(d->opaque, r.region, r.addr, r.size,
                                   &value);
            }
            if (err && !devvm_is_errno(err)) {
                return err;
            }
            break;
        default:
            err = d->ops->other ? d->ops->other(d->opaque, &r) :
                                  DEVVM_E_BAD_FIELD;
            if (!devvm_is_errno(err) && err) {
                return err;
            }
            break;
        }
        ret = ring_complete(d, &r, err, value);
        if (ret) {
            return ret;
        }
        *completed = 1;
    }
    return (int)served;
}
