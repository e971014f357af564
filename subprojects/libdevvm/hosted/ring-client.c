/*
 * libdevvm (hosted): the client end of a ring channel.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "libdevvm/ring-client.h"

#define DEFAULT_SPIN_US 50

static int64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int devvm_ring_client_open(struct devvm_ring_client *rc,
                           const struct devvm_ring_attach *a,
                           int fds[DEVVM_ATTACH_FDS])
{
    struct devvm_shm_layout l;
    void *shm;
    int ret;

    memset(rc, 0, sizeof(*rc));
    rc->kick_fd = rc->call_fd = rc->aux_fd = -1;
    if (a->shm_size > SIZE_MAX) {
        ret = DEVVM_E_TOO_BIG;
        goto fail;
    }
    shm = mmap(NULL, a->shm_size, PROT_READ | PROT_WRITE, MAP_SHARED,
               fds[0], 0);
    if (shm == MAP_FAILED) {
        ret = DEVVM_E_IO;
        goto fail;
    }
    rc->shm = shm;
    rc->shm_size = a->shm_size;
    ret = devvm_shm_validate(shm, a->shm_size, &l);
    if (!ret && (a->channel >= l.nr_channels || a->depth != l.depth)) {
        ret = DEVVM_E_BAD_FIELD;
    }
    if (!ret) {
        ret = devvm_channel_attach(&rc->ch, shm, &l, a->channel,
                                   DEVVM_SIDE_CLIENT);
    }
    if (!ret && rc->ch.generation != a->generation) {
        ret = DEVVM_E_STALE;
    }
    if (ret) {
        munmap(shm, a->shm_size);
        rc->shm = NULL;
        goto fail;
    }
    close(fds[0]);
    rc->kick_fd = fds[1];
    rc->call_fd = fds[2];
    rc->next_tag = rc->first_tag = 1;
    rc->spin_us = DEFAULT_SPIN_US;
    /* we sleep on completions only after announcing it */
    devvm_ring_poll_mode(&rc->ch.ring[DEVVM_RING_CPL]);
    return DEVVM_OK;

fail:
    close(fds[0]);
    close(fds[1]);
    close(fds[2]);
    return ret;
}

void devvm_ring_client_close(struct devvm_ring_client *rc)
{
    if (rc->shm) {
        munmap(rc->shm, rc->shm_size);
        rc->shm = NULL;
    }
    if (rc->kick_fd >= 0) {
        close(rc->kick_fd);
    }
    if (rc->call_fd >= 0) {
        close(rc->call_fd);
    }
    rc->kick_fd = rc->call_fd = -1;
}

static int fail(struct devvm_ring_client *rc, int err)
{
    if (!rc->broken) {
        rc->broken = err;
    }
    return err;
}

/* Ring the kick doorbell if the device sleeps on @r. */
static void kick(struct devvm_ring_client *rc, struct devvm_ring *r)
{
    uint64_t one = 1;

    if (devvm_ring_kick_needed(r)) {
        while (write(rc->kick_fd, &one, sizeof(one)) < 0 && errno == EINTR) {
            continue;
        }
    }
}

/* Drain the call doorbell, waiting up to @deadline (ns); serve the
 * auxiliary fd if it becomes readable meanwhile (its error ends the
 * wait). */
static int wait_call(struct devvm_ring_client *rc, int64_t deadline)
{
    struct pollfd pfd[2] = {
        { .fd = rc->call_fd, .events = POLLIN },
        { .fd = rc->aux_ready ? rc->aux_fd : -1, .events = POLLIN },
    };
    int64_t left = deadline - now_ns();
    uint64_t v;

    if (left <= 0) {
        return DEVVM_OK;
    }
    if (poll(pfd, 2, (int)(left / 1000000) + 1) > 0) {
        if (pfd[0].revents) {
            while (read(rc->call_fd, &v, sizeof(v)) < 0 && errno == EINTR) {
                continue;
            }
        }
        if (pfd[1].revents) {
            return rc->aux_ready(rc->aux_opaque);
        }
    }
    return DEVVM_OK;
}

static int push(struct devvm_ring_client *rc, const struct devvm_slot *s,
                int timeout_ms)
{
    struct devvm_ring *req = &rc->ch.ring[DEVVM_RING_REQ];
    int64_t deadline = now_ns() + (int64_t)timeout_ms * 1000000;
    int ret;

    if (rc->broken) {
        return rc->broken;
    }
    ret = devvm_channel_check(&rc->ch);
    if (ret) {
        return ret;
    }
    /* a full ring drains as the device works: poll, then back off */
    while ((ret = devvm_ring_push(req, s)) == DEVVM_E_AGAIN) {
        int64_t now = now_ns();
        struct timespec pause = { 0, 20000 };

        if (now >= deadline) {
            /* nothing was pushed: the channel is as it was */
            return DEVVM_E_TIMEOUT;
        }
        kick(rc, req);
        ret = devvm_channel_check(&rc->ch);
        if (ret) {
            return ret;
        }
        nanosleep(&pause, NULL);
    }
    if (ret) {
        return fail(rc, ret);
    }
    kick(rc, req);
    return DEVVM_OK;
}

int devvm_ring_client_write(struct devvm_ring_client *rc, uint8_t region,
                            uint64_t offset, uint8_t size, uint64_t value,
                            int timeout_ms)
{
    struct devvm_slot s = {
        .op = DEVVM_OP_WRITE, .region = region, .size = size,
    };

    if (size != 1 && size != 2 && size != 4 && size != 8) {
        return -DEVVM_EINVAL;
    }
    s.addr = offset;
    s.data = size == 8 ? value : value & ((1ull << (8 * size)) - 1);
    return push(rc, &s, timeout_ms);
}

int devvm_ring_client_call(struct devvm_ring_client *rc,
                           const struct devvm_slot *req, uint64_t *value,
                           int timeout_ms)
{
    struct devvm_ring *cpl = &rc->ch.ring[DEVVM_RING_CPL];
    struct devvm_slot s = *req;
    int64_t start = now_ns();
    int64_t spin_end = start + (int64_t)rc->spin_us * 1000;
    int64_t deadline = start + (int64_t)timeout_ms * 1000000;
    int ret;

    s.tag = rc->next_tag++;
    ret = push(rc, &s, timeout_ms);
    if (ret) {
        return ret;
    }
    for (;;) {
        struct devvm_slot c;
        int64_t now;

        if (rc->events) {
            ret = rc->events(rc->aux_opaque);
            if (ret) {
                devvm_ring_poll_mode(cpl);
                return fail(rc, ret);
            }
        }
        ret = devvm_ring_pop(cpl, &c);
        if (ret == DEVVM_OK && c.op == DEVVM_OP_READ_DONE &&
            c.tag != s.tag && c.tag - rc->first_tag < s.tag - rc->first_tag) {
            /*
             * The completion of an earlier request, which timed out: the
             * device answered late.  Requests are served in order, so
             * ours comes after it.
             */
            rc->late++;
            ret = DEVVM_E_AGAIN;
        } else if (ret == DEVVM_OK) {
            devvm_ring_poll_mode(cpl);
            /* requests are synchronous: the next completion is ours */
            if (c.op != DEVVM_OP_READ_DONE || c.tag != s.tag) {
                return fail(rc, DEVVM_E_BAD_FIELD);
            }
            /* events published before it do not pass it */
            ret = rc->events ? rc->events(rc->aux_opaque) : DEVVM_OK;
            if (ret) {
                return fail(rc, ret);
            }
            if (c.status) {
                rc->peer_status = c.status;
                return DEVVM_E_PEER;
            }
            if (value) {
                *value = c.data;
            }
            return DEVVM_OK;
        }
        if (ret != DEVVM_E_AGAIN) {
            return fail(rc, ret);
        }
        ret = devvm_channel_check(&rc->ch);
        if (ret) {
            return ret;
        }
        now = now_ns();
        if (now >= deadline) {
            /*
             * The request stays in the ring: its completion, when it
             * comes, is recognised by its tag and dropped, so the channel
             * stays usable.
             */
            devvm_ring_poll_mode(cpl);
            return DEVVM_E_TIMEOUT;
        }
        if (now < spin_end) {
#if defined(__x86_64__) || defined(__i386__)
            __builtin_ia32_pause();
#endif
            continue;
        }
        /* ask for the doorbell, then sleep unless work came meanwhile */
        if (devvm_ring_prepare_sleep(cpl) == DEVVM_E_AGAIN) {
            ret = wait_call(rc, deadline < now + 100000000 ? deadline :
                                                             now + 100000000);
            if (ret) {
                devvm_ring_poll_mode(cpl);
                return fail(rc, ret);
            }
        }
    }
}

int devvm_ring_client_read(struct devvm_ring_client *rc, uint8_t region,
                           uint64_t offset, uint8_t size, uint64_t *value,
                           int timeout_ms)
{
    struct devvm_slot s = {
        .op = DEVVM_OP_READ, .region = region, .size = size,
    };
    uint64_t v;
    int ret;

    if (size != 1 && size != 2 && size != 4 && size != 8) {
        return -DEVVM_EINVAL;
    }
    s.addr = offset;
    ret = devvm_ring_client_call(rc, &s, &v, timeout_ms);
    if (!ret) {
        *value = size == 8 ? v : v & ((1ull << (8 * size)) - 1);
    }
    return ret;
}

static void event_log(struct devvm_ring_client *rc,
                      const struct devvm_ring_event_ops *ops, void *opaque,
                      const struct devvm_slot *s)
{
    size_t n = s->size > DEVVM_LOG_TEXT_MAX ? DEVVM_LOG_TEXT_MAX : s->size;
    size_t i;

    for (i = 0; i < n && rc->log_len < DEVVM_RING_LOG_MAX; i++) {
        uint8_t ch = s->text[i];

        rc->log[rc->log_len++] = ch >= 0x20 && ch < 0x7f ? ch : '?';
    }
    if (!(s->flags & DEVVM_SLOT_F_MORE)) {
        rc->log[rc->log_len] = '\0';
        ops->log(opaque, rc->log);
        rc->log_len = 0;
    }
}

int devvm_ring_client_events(struct devvm_ring_client *rc,
                             const struct devvm_ring_event_ops *ops,
                             void *opaque)
{
    struct devvm_ring *evt = &rc->ch.ring[DEVVM_RING_EVT];
    struct devvm_ring *done = &rc->ch.ring[DEVVM_RING_EVT_CPL];
    struct devvm_slot s, d;
    int completed = 0, ret;

    if (rc->broken) {
        return rc->broken;
    }
    /*
     * The events side never polls: need_wakeup stays set, so that every
     * event rings the call doorbell.  Only events that came while it was
     * being set are taken without one: hence the loop.
     */
again:
    while ((ret = devvm_ring_pop(evt, &s)) == DEVVM_OK) {
        switch (s.op) {
        case DEVVM_OP_DMA_READ:
        case DEVVM_OP_DMA_WRITE:
            memset(&d, 0, sizeof(d));
            d.op = DEVVM_OP_DMA_DONE;
            d.tag = s.tag;
            if (!s.len || s.len > DEVVM_MAX_DATA_SIZE ||
                devvm_channel_data_range(&rc->ch, s.aux, s.len)) {
                if (ops->bad_slot) {
                    ops->bad_slot(opaque, &s);
                }
                d.status = EINVAL;
            } else {
                int err = ops->dma(opaque, s.op == DEVVM_OP_DMA_WRITE,
                                   s.addr, rc->ch.data + s.aux, s.len);

                /* the wire carries the errno itself */
                d.status = !err ? 0 : devvm_is_errno(err) ? -err : EIO;
            }
            /* room is guaranteed: the device has one DMA outstanding
             * per slot it can push, and never more than depth */
            ret = devvm_ring_push(done, &d);
            if (ret) {
                return fail(rc, ret);
            }
            completed = 1;
            break;
        case DEVVM_OP_IRQ:
            ops->irq(opaque, s.region, s.addr, s.data);
            break;
        case DEVVM_OP_LOG:
            event_log(rc, ops, opaque, &s);
            break;
        default:
            if (ops->bad_slot) {
                ops->bad_slot(opaque, &s);
            }
            return fail(rc, DEVVM_E_BAD_FIELD);
        }
    }
    if (ret == DEVVM_E_AGAIN && devvm_ring_prepare_sleep(evt) == DEVVM_OK) {
        goto again;
    }
    if (completed) {
        kick(rc, done);
    }
    return ret == DEVVM_E_AGAIN ? DEVVM_OK : fail(rc, ret);
}

int devvm_ring_client_service(struct devvm_ring_client *rc)
{
    struct pollfd pfd = { .fd = rc->call_fd, .events = POLLIN };
    uint64_t v;

    if (rc->broken) {
        return rc->broken;
    }
    if (poll(&pfd, 1, 0) > 0) {
        while (read(rc->call_fd, &v, sizeof(v)) < 0 && errno == EINTR) {
            continue;
        }
    }
    return rc->events ? rc->events(rc->aux_opaque) : DEVVM_OK;
}
