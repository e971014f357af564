/*
 * libdevvm (hosted): the client role.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "libdevvm/client.h"
#include "libdevvm/ring.h"
#include "libdevvm/le.h"

#define DEVVM_CLIENT_SPIN_US 50

static int64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/*
 * Busy-poll the socket and the auxiliary fd for the reply a little before
 * sleeping: one that comes within microseconds is read without the wakeup
 * a sleep costs (tens of microseconds across cores, docs/devvm/
 * benchmarks.rst).  That pays only when the server runs on another core:
 * on ours the spin keeps it from running.  So the budget adapts: halved
 * by each spin that missed (down to none), whole again after one that
 * caught the reply, and tried whole again every DEVVM_CLIENT_SPIN_RETRY
 * calls.
 */
#define DEVVM_CLIENT_SPIN_RETRY 256

static void spin_socket(struct devvm_client *c)
{
    struct pollfd pfd[2] = {
        { .fd = c->fd, .events = POLLIN },
        { .fd = c->aux_fd, .events = POLLIN },
    };
    int64_t end;
    int ready;

    if (++c->spin_calls >= DEVVM_CLIENT_SPIN_RETRY) {
        c->spin_cur_us = c->spin_us;
    }
    if (c->spin_cur_us == c->spin_us) {
        c->spin_calls = 0;
    }
    if (!c->spin_cur_us) {
        return;
    }
    end = now_ns() + (int64_t)c->spin_cur_us * 1000;
    while (!(ready = poll(pfd, 2, 0) > 0) && now_ns() < end) {
        ;
    }
    c->spin_cur_us = ready ? c->spin_us : c->spin_cur_us / 2;
}

static int64_t now_ms(void)
{
    return now_ns() / 1000000;
}

/* Requests we encode here are small except REGION_WRITE. */
#define SMALL_MSG (DEVVM_HDR_SIZE + 64)

void devvm_client_init(struct devvm_client *c, int fd, int timeout_ms,
                       const struct devvm_client_ops *ops, void *opaque)
{
    memset(c, 0, sizeof(*c));
    c->fd = fd;
    c->timeout_ms = timeout_ms;
    c->spin_us = DEVVM_CLIENT_SPIN_US;
    c->spin_cur_us = DEVVM_CLIENT_SPIN_US;
    c->next_id = 1;
    c->ops = ops;
    c->opaque = opaque;
    c->aux_fd = -1;
    devvm_caps_default(&c->caps);
}

/*
 * Wait at most @timeout_ms (-1: forever) for the socket, serving the
 * auxiliary fd meanwhile: DEVVM_OK once the socket is readable,
 * DEVVM_E_AGAIN when the time ran out, or aux_ready's error.
 */
static int wait_socket(struct devvm_client *c, int timeout_ms)
{
    int64_t deadline = now_ms() + (timeout_ms > 0 ? timeout_ms : 0);

    for (;;) {
        struct pollfd pfd[2] = {
            { .fd = c->fd, .events = POLLIN },
            { .fd = c->aux_fd, .events = POLLIN },
        };
        int left = -1, n, ret;

        if (timeout_ms >= 0) {
            int64_t ms = deadline - now_ms();

            left = ms > 0 ? (int)ms : 0;
        }
        n = poll(pfd, 2, left);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return DEVVM_E_IO;
        }
        if (pfd[1].revents) {
            ret = c->aux_ready(c->opaque);
            if (ret) {
                return ret;
            }
        }
        if (pfd[0].revents) {
            return DEVVM_OK;
        }
        if (!n) {
            return DEVVM_E_AGAIN;
        }
    }
}

/* A fatal error: remember it and let the server see EOF at once. */
static int fail(struct devvm_client *c, int err)
{
    if (!c->broken) {
        c->broken = err;
        shutdown(c->fd, SHUT_RDWR);
    }
    return err;
}

static int reply_error(struct devvm_client *c, const struct devvm_hdr *h,
                       int err)
{
    uint8_t buf[DEVVM_HDR_SIZE];

    devvm_encode_hdr_only(buf, sizeof(buf), h->id, h->cmd,
                          DEVVM_HDR_F_REPLY | DEVVM_HDR_F_ERROR, -err);
    return devvm_sock_send(c->fd, buf, sizeof(buf), NULL, 0);
}

/* A request from the server: DMA_READ/WRITE or a devvm EVENT. */
static int serve_request(struct devvm_client *c, const struct devvm_msg *m)
{
    const struct devvm_dma_rw *rw = &m->u.dma_rw;
    int no_reply = !!(m->hdr.flags & DEVVM_HDR_F_NO_REPLY);
    int ret;

    switch (m->hdr.cmd) {
    case DEVVM_CMD_EVENT:
        if (!c->caps.devvm) {
            return DEVVM_E_UNKNOWN_CMD;
        }
        if (c->ops && c->ops->event) {
            c->ops->event(c->opaque, &m->u.event);
        }
        return DEVVM_OK;
    case DEVVM_CMD_DMA_READ: {
        size_t size = DEVVM_HDR_SIZE + 16 + rw->count;
        uint8_t *data = malloc(rw->count), *msg = malloc(size);
        struct devvm_dma_rw out = { rw->addr, rw->count, data };

        if (!data || !msg) {
            ret = -ENOMEM;
        } else if (c->ops && c->ops->dma_read) {
            ret = c->ops->dma_read(c->opaque, rw->addr, data, rw->count);
        } else {
            ret = -ENOTSUP;
        }
        if (no_reply) {
            ret = DEVVM_OK;
        } else if (ret < 0) {
            ret = reply_error(c, &m->hdr, ret);
        } else {
            ret = devvm_encode_dma_rw(msg, size, m->hdr.id,
                                      DEVVM_CMD_DMA_READ, DEVVM_HDR_F_REPLY,
                                      &out);
            ret = devvm_sock_send(c->fd, msg, ret, NULL, 0);
        }
        free(data);
        free(msg);
        return ret;
    }
    case DEVVM_CMD_DMA_WRITE: {
        uint8_t buf[DEVVM_HDR_SIZE + 16];
        struct devvm_dma_rw out = { rw->addr, rw->count, NULL };
        int size;

        ret = c->ops && c->ops->dma_write ?
              c->ops->dma_write(c->opaque, rw->addr, rw->data, rw->count) :
              -ENOTSUP;
        if (no_reply) {
            return DEVVM_OK;
        }
        if (ret < 0) {
            return reply_error(c, &m->hdr, ret);
        }
        size = devvm_encode_dma_rw(buf, sizeof(buf), m->hdr.id,
                                   DEVVM_CMD_DMA_WRITE, DEVVM_HDR_F_REPLY,
                                   &out);
        return devvm_sock_send(c->fd, buf, size, NULL, 0);
    }
    }
    /* a defined command the server may not send: refuse, keep going */
    if (devvm_cmd_known(m->hdr.cmd)) {
        return no_reply ? DEVVM_OK : reply_error(c, &m->hdr, -ENOTSUP);
    }
    return DEVVM_E_UNKNOWN_CMD;
}

/*
 * Receive one message.  A server request is served and *is_reply stays
 * 0; a reply must be the one to request @id/@cmd (@id < 0: none is
 * outstanding) and is returned decoded in @m, its buffer in @rx.
 */
static int receive(struct devvm_client *c, int timeout_ms, int id,
                   uint16_t cmd, struct devvm_rx *rx, struct devvm_msg *m,
                   int *is_reply)
{
    int ret;

    *is_reply = 0;
    ret = devvm_sock_recv(c->fd, timeout_ms, DEVVM_MAX_MSG_SIZE, rx);
    if (ret) {
        return ret;
    }
    if ((rx->hdr.flags & DEVVM_HDR_F_TYPE_MASK) == DEVVM_HDR_F_REPLY &&
        (rx->hdr.id != id || rx->hdr.cmd != cmd)) {
        /* replies come in order: anything else is out of step */
        devvm_rx_release(rx);
        return DEVVM_E_UNKNOWN_ID;
    }
    ret = devvm_msg_decode(rx->buf, rx->hdr.size, rx->nfds, m);
    if (ret == DEVVM_E_UNKNOWN_CMD &&
        (rx->hdr.flags & DEVVM_HDR_F_TYPE_MASK) == DEVVM_HDR_F_REQUEST) {
        /* let serve_request() answer ENOTSUP or give up */
        m->hdr = rx->hdr;
        m->nfds = rx->nfds;
        ret = rx->nfds ? DEVVM_E_BAD_FDS : DEVVM_OK;
    }
    if (ret) {
        devvm_rx_release(rx);
        return ret;
    }
    if ((m->hdr.flags & DEVVM_HDR_F_TYPE_MASK) == DEVVM_HDR_F_REPLY) {
        *is_reply = 1;
        return DEVVM_OK;
    }
    ret = serve_request(c, m);
    devvm_rx_release(rx);
    return ret;
}

int devvm_client_call(struct devvm_client *c, void *req, size_t len,
                      const int *fds, uint32_t nfds, struct devvm_rx *rx,
                      struct devvm_msg *reply)
{
    uint8_t *b = req;
    uint16_t id, cmd;
    int64_t deadline;
    int ret, is_reply;

    memset(rx, 0, sizeof(*rx));
    if (c->broken) {
        return c->broken;
    }
    deadline = now_ms() + (c->timeout_ms > 0 ? c->timeout_ms : 0);
    id = c->next_id++;
    cmd = devvm_ld16(b + 2);
    devvm_st16(b, id);
    ret = devvm_sock_send(c->fd, req, len, fds, nfds);
    if (ret) {
        return fail(c, ret);
    }
    if (devvm_ld32(b + 8) & DEVVM_HDR_F_NO_REPLY) {
        return DEVVM_OK;
    }
    spin_socket(c);
    for (;;) {
        /* one deadline for the call, however many server requests
         * arrive meanwhile */
        int left = -1;

        if (c->timeout_ms >= 0) {
            int64_t ms = deadline - now_ms();

            left = ms > 0 ? (int)ms : 0;
        }
        ret = c->aux_ready && c->aux_fd >= 0 ? wait_socket(c, left) :
                                               DEVVM_OK;
        if (!ret) {
            ret = receive(c, left, id, cmd, rx, reply, &is_reply);
        }
        if (ret == DEVVM_E_AGAIN) {
            ret = DEVVM_E_TIMEOUT;
        }
        if (ret) {
            return fail(c, ret);
        }
        if (!is_reply) {
            continue;
        }
        if (reply->hdr.flags & DEVVM_HDR_F_ERROR) {
            c->peer_errno = reply->hdr.error ? (int)reply->hdr.error : EIO;
            devvm_rx_release(rx);
            return DEVVM_E_PEER;
        }
        return DEVVM_OK;
    }
}

int devvm_client_poll(struct devvm_client *c, int timeout_ms)
{
    struct devvm_rx rx;
    struct devvm_msg m;
    int ret, is_reply;

    if (c->broken) {
        return c->broken;
    }
    /* nothing is outstanding: any reply is out of step */
    ret = receive(c, timeout_ms, -1, 0, &rx, &m, &is_reply);
    if (ret == DEVVM_E_AGAIN) {
        return ret;
    }
    return ret ? fail(c, ret) : DEVVM_OK;
}

int devvm_client_negotiate(struct devvm_client *c,
                           const struct devvm_caps *want)
{
    char json[DEVVM_MAX_CAPS_JSON + 1];
    uint8_t req[DEVVM_HDR_SIZE + 4 + sizeof(json)];
    struct devvm_version v = {
        DEVVM_VFIO_USER_MAJOR, DEVVM_VFIO_USER_MINOR, json, 0
    };
    struct devvm_caps reply_caps;
    struct devvm_rx rx;
    struct devvm_msg m;
    int ret, len;

    len = devvm_caps_format(json, sizeof(json), want);
    if (len < 0) {
        return len;
    }
    v.caps_len = len;
    len = devvm_encode_version(req, sizeof(req), 0, DEVVM_HDR_F_REQUEST, &v);
    if (len < 0) {
        return len;
    }
    ret = devvm_client_call(c, req, len, NULL, 0, &rx, &m);
    if (ret) {
        return ret;
    }
    devvm_caps_default(&reply_caps);
    if (m.u.version.major != DEVVM_VFIO_USER_MAJOR ||
        m.u.version.minor > DEVVM_VFIO_USER_MINOR) {
        ret = DEVVM_E_VERSION;
    } else if (m.u.version.caps) {
        ret = devvm_caps_parse(m.u.version.caps, m.u.version.caps_len,
                               &reply_caps);
    }
    if (!ret) {
        ret = devvm_caps_check_reply(want, &reply_caps);
    }
    devvm_rx_release(&rx);
    if (ret) {
        return fail(c, ret);
    }
    c->caps = reply_caps;
    c->minor = m.u.version.minor;
    return DEVVM_OK;
}

/* Call with a request encoded by @len-returning encoder into @buf. */
static int simple_call(struct devvm_client *c, uint8_t *buf, int len,
                       const int *fds, uint32_t nfds, struct devvm_rx *rx,
                       struct devvm_msg *m)
{
    if (len < 0) {
        return len;
    }
    return devvm_client_call(c, buf, len, fds, nfds, rx, m);
}

int devvm_client_device_info(struct devvm_client *c,
                             struct devvm_device_info *out)
{
    uint8_t buf[SMALL_MSG];
    struct devvm_device_info req = { .argsz = 16 };
    struct devvm_rx rx;
    struct devvm_msg m;
    int ret;

    ret = simple_call(c, buf,
                      devvm_encode_device_info(buf, sizeof(buf), 0, 0, &req),
                      NULL, 0, &rx, &m);
    if (ret) {
        return ret;
    }
    *out = m.u.dev_info;
    devvm_rx_release(&rx);
    return DEVVM_OK;
}

int devvm_client_region_info(struct devvm_client *c, uint32_t index,
                             struct devvm_region_info *out, int *fd)
{
    uint32_t argsz = DEVVM_REGION_INFO_SIZE + 16 +
                     16 * DEVVM_MAX_SPARSE_AREAS;
    uint8_t buf[SMALL_MSG];
    struct devvm_region_info req = { .argsz = argsz, .index = index };
    struct devvm_rx rx;
    struct devvm_msg m;
    int ret;

    *fd = -1;
    ret = simple_call(c, buf,
                      devvm_encode_region_info(buf, sizeof(buf), 0, 0, &req),
                      NULL, 0, &rx, &m);
    if (ret) {
        return ret;
    }
    /*
     * We asked for room for the most areas we accept; a server needing
     * more describes something we refuse anyway.
     */
    if (m.u.region_info.index != index ||
        m.u.region_info.argsz > argsz) {
        devvm_rx_release(&rx);
        return DEVVM_E_BAD_FIELD;
    }
    *out = m.u.region_info;
    if (rx.nfds) {
        *fd = rx.fds[0];
        rx.fds[0] = -1;
    }
    devvm_rx_release(&rx);
    return DEVVM_OK;
}

int devvm_client_irq_info(struct devvm_client *c, uint32_t index,
                          struct devvm_irq_info *out)
{
    uint8_t buf[SMALL_MSG];
    struct devvm_irq_info req = { .argsz = 16, .index = index };
    struct devvm_rx rx;
    struct devvm_msg m;
    int ret;

    if (index >= DEVVM_MAX_IRQ_TYPES) {
        return -DEVVM_EINVAL;
    }
    ret = simple_call(c, buf,
                      devvm_encode_irq_info(buf, sizeof(buf), 0, 0, &req),
                      NULL, 0, &rx, &m);
    if (ret) {
        return ret;
    }
    if (m.u.irq_info.index != index) {
        devvm_rx_release(&rx);
        return DEVVM_E_BAD_FIELD;
    }
    *out = m.u.irq_info;
    devvm_rx_release(&rx);
    return DEVVM_OK;
}

/* One SET_IRQS message. */
static int set_irqs_one(struct devvm_client *c, const struct devvm_irq_set *set,
                        const int *fds, uint32_t nfds)
{
    size_t size = DEVVM_HDR_SIZE + 20 + set->count;
    struct devvm_rx rx;
    struct devvm_msg m;
    uint8_t *buf;
    int ret;

    buf = malloc(size);
    if (!buf) {
        return -DEVVM_ENOMEM;
    }
    ret = simple_call(c, buf, devvm_encode_irq_set(buf, size, 0, 0, set),
                      fds, nfds, &rx, &m);
    free(buf);
    if (!ret) {
        devvm_rx_release(&rx);
    }
    return ret;
}

int devvm_client_set_irqs(struct devvm_client *c, uint32_t flags,
                          uint32_t index, uint32_t start, uint32_t count,
                          const int *fds, const uint8_t *bools)
{
    struct devvm_irq_set set = {
        .flags = flags, .index = index, .start = start, .count = count,
        .bools = bools,
    };
    uint32_t max = c->caps.max_msg_fds < DEVVM_MAX_FDS ?
                   c->caps.max_msg_fds : DEVVM_MAX_FDS;
    uint32_t done;
    int ret;

    if (count > DEVVM_MAX_IRQS) {
        return -DEVVM_EINVAL;
    }
    if (!(flags & DEVVM_IRQ_SET_DATA_EVENTFD) || !fds) {
        return set_irqs_one(c, &set, NULL, 0);
    }
    /* no more fds per message than the server takes: split the range */
    for (done = 0; done < count; done += set.count) {
        set.start = start + done;
        set.count = count - done < max ? count - done : max;
        ret = set_irqs_one(c, &set, fds + done, set.count);
        if (ret) {
            return ret;
        }
    }
    return DEVVM_OK;
}

int devvm_client_region_read(struct devvm_client *c, uint32_t region,
                             uint64_t offset, void *out, uint32_t count)
{
    uint8_t buf[SMALL_MSG];
    struct devvm_region_rw req = { offset, region, count, NULL };
    struct devvm_rx rx;
    struct devvm_msg m;
    int ret;

    if (!count || count > c->caps.max_data_xfer_size) {
        return -DEVVM_EINVAL;
    }
    ret = simple_call(c, buf,
                      devvm_encode_region_rw(buf, sizeof(buf), 0,
                                             DEVVM_CMD_REGION_READ, 0, &req),
                      NULL, 0, &rx, &m);
    if (ret) {
        return ret;
    }
    if (m.u.region_rw.region != region || m.u.region_rw.offset != offset ||
        m.u.region_rw.count != count) {
        devvm_rx_release(&rx);
        return fail(c, DEVVM_E_BAD_FIELD);
    }
    memcpy(out, m.u.region_rw.data, count);
    devvm_rx_release(&rx);
    return DEVVM_OK;
}

int devvm_client_region_write(struct devvm_client *c, uint32_t region,
                              uint64_t offset, const void *data,
                              uint32_t count, int posted)
{
    struct devvm_region_rw req = { offset, region, count, data };
    size_t size = DEVVM_HDR_SIZE + 16 + (size_t)count;
    struct devvm_rx rx;
    struct devvm_msg m;
    uint8_t *buf;
    int ret;

    if (!count || count > c->caps.max_data_xfer_size) {
        return -DEVVM_EINVAL;
    }
    buf = malloc(size);
    if (!buf) {
        return -DEVVM_ENOMEM;
    }
    ret = simple_call(c, buf,
                      devvm_encode_region_rw(buf, size, 0,
                                             DEVVM_CMD_REGION_WRITE,
                                             posted ? DEVVM_HDR_F_NO_REPLY :
                                                      0,
                                             &req),
                      NULL, 0, &rx, &m);
    free(buf);
    if (ret || posted) {
        return ret;
    }
    if (m.u.region_rw.region != region || m.u.region_rw.offset != offset ||
        m.u.region_rw.count != count) {
        ret = fail(c, DEVVM_E_BAD_FIELD);
    }
    devvm_rx_release(&rx);
    return ret;
}

int devvm_client_dma_map(struct devvm_client *c,
                         const struct devvm_dma_map *map, int fd)
{
    uint8_t buf[SMALL_MSG];
    struct devvm_rx rx;
    struct devvm_msg m;
    int ret;

    ret = simple_call(c, buf,
                      devvm_encode_dma_map(buf, sizeof(buf), 0, 0, map),
                      fd >= 0 ? &fd : NULL, fd >= 0, &rx, &m);
    if (!ret) {
        devvm_rx_release(&rx);
    }
    return ret;
}

int devvm_client_dma_unmap(struct devvm_client *c, uint64_t addr,
                           uint64_t size, uint32_t flags)
{
    uint8_t buf[SMALL_MSG];
    struct devvm_dma_unmap req = { 24, flags, addr, size };
    struct devvm_rx rx;
    struct devvm_msg m;
    int ret;

    ret = simple_call(c, buf,
                      devvm_encode_dma_unmap(buf, sizeof(buf), 0, 0, &req),
                      NULL, 0, &rx, &m);
    if (!ret) {
        devvm_rx_release(&rx);
    }
    return ret;
}

int devvm_client_reset(struct devvm_client *c)
{
    uint8_t buf[DEVVM_HDR_SIZE];
    struct devvm_rx rx;
    struct devvm_msg m;
    int ret;

    ret = simple_call(c, buf,
                      devvm_encode_hdr_only(buf, sizeof(buf), 0,
                                            DEVVM_CMD_DEVICE_RESET, 0, 0),
                      NULL, 0, &rx, &m);
    if (!ret) {
        devvm_rx_release(&rx);
    }
    return ret;
}

int devvm_client_ring_attach(struct devvm_client *c, uint32_t flags,
                             struct devvm_ring_attach *out,
                             int fds[DEVVM_ATTACH_FDS])
{
    uint8_t buf[SMALL_MSG];
    struct devvm_ring_attach req = { .argsz = 32, .flags = flags };
    struct devvm_rx rx;
    struct devvm_msg m;
    uint32_t i;
    int ret;

    if (!c->caps.devvm || !c->caps.devvm_ring) {
        return DEVVM_E_VERSION;
    }
    ret = simple_call(c, buf,
                      devvm_encode_ring_attach(buf, sizeof(buf), 0, 0, &req),
                      NULL, 0, &rx, &m);
    if (ret) {
        return ret;
    }
    *out = m.u.ring_attach;
    for (i = 0; i < DEVVM_ATTACH_FDS; i++) {
        fds[i] = rx.fds[i];
        rx.fds[i] = -1;
    }
    devvm_rx_release(&rx);
    return DEVVM_OK;
}

int devvm_client_ring_detach(struct devvm_client *c, uint32_t channel)
{
    uint8_t buf[SMALL_MSG];
    struct devvm_ring_detach req = { channel, 0 };
    struct devvm_rx rx;
    struct devvm_msg m;
    int ret;

    if (!c->caps.devvm) {
        return DEVVM_E_VERSION;
    }
    ret = simple_call(c, buf,
                      devvm_encode_ring_detach(buf, sizeof(buf), 0, 0, &req),
                      NULL, 0, &rx, &m);
    if (!ret) {
        devvm_rx_release(&rx);
    }
    return ret;
}
