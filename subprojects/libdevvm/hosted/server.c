/*
 * libdevvm (hosted): the server role.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "libdevvm/ring.h"
#include "libdevvm/ring-device.h"
#include "libdevvm/server.h"
#include "libdevvm/le.h"

#define SMALL_MSG (DEVVM_HDR_SIZE + 64)

__attribute__((format(printf, 2, 3)))
static void slog(struct devvm_server_conn *s, const char *fmt, ...)
{
    char msg[256];
    va_list ap;

    if (!s->ops->log) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    s->ops->log(s->opaque, msg);
}

/*
 * One line through ops->log about a message going @dir ("in" or "out"):
 * command, kind, id and size, with DMA_READ/DMA_WRITE's range or an
 * error reply's errno.
 */
static void trace(struct devvm_server_conn *s, const char *dir,
                  const uint8_t *msg, size_t len)
{
    uint16_t cmd = devvm_ld16(msg + 2);
    uint32_t flags = devvm_ld32(msg + 8);
    int reply = (flags & DEVVM_HDR_F_TYPE_MASK) == DEVVM_HDR_F_REPLY;
    char more[48] = "";

    if (reply && (flags & DEVVM_HDR_F_ERROR)) {
        snprintf(more, sizeof(more), ", errno %u", devvm_ld32(msg + 12));
    } else if ((cmd == DEVVM_CMD_DMA_READ || cmd == DEVVM_CMD_DMA_WRITE) &&
               len >= DEVVM_HDR_SIZE + 16) {
        snprintf(more, sizeof(more), ", 0x%llx+0x%llx",
                 (unsigned long long)devvm_ld64(msg + DEVVM_HDR_SIZE),
                 (unsigned long long)devvm_ld64(msg + DEVVM_HDR_SIZE + 8));
    }
    slog(s, "%s: %s%s id %u, %u bytes%s", dir, devvm_cmd_name(cmd),
         !reply ? "" : flags & DEVVM_HDR_F_ERROR ? " error reply" : " reply",
         devvm_ld16(msg), devvm_ld32(msg + 4), more);
}

/* Every message the role sends goes out here. */
static int conn_send(struct devvm_server_conn *s, const uint8_t *msg,
                     size_t len, const int *fds, uint32_t nfds)
{
    if (s->verbose) {
        trace(s, "out", msg, len);
    }
    return devvm_sock_send(s->fd, msg, len, fds, nfds);
}

/* Every message the role receives comes in here. */
static int conn_recv(struct devvm_server_conn *s, int timeout_ms,
                     struct devvm_rx *rx)
{
    int ret = devvm_sock_recv(s->fd, timeout_ms, DEVVM_MAX_MSG_SIZE, rx);

    if (!ret && s->verbose) {
        trace(s, "in", rx->buf, rx->hdr.size);
    }
    return ret;
}

/* A fatal error: remember it and let the client see EOF at once. */
static int fail(struct devvm_server_conn *s, int err)
{
    if (!s->broken) {
        s->broken = err;
        shutdown(s->fd, SHUT_RDWR);
    }
    return err;
}

int devvm_server_conn_init(struct devvm_server_conn *s, int fd,
                           const struct devvm_server_ops *ops, void *opaque,
                           const struct devvm_caps *mine)
{
    uint32_t i;
    int ret;

    memset(s, 0, sizeof(*s));
    s->fd = fd;
    s->timeout_ms = 5000;
    s->next_id = 1;
    s->ops = ops;
    s->opaque = opaque;
    devvm_dma_init(&s->dma, DEVVM_MAX_DMA_MAPS);
    if (mine) {
        s->mine = *mine;
    } else {
        devvm_caps_default(&s->mine);
        s->mine.max_msg_fds = DEVVM_MAX_FDS;
        s->mine.max_data_xfer_size = DEVVM_MAX_XFER;
        s->mine.max_dma_maps = DEVVM_MAX_DMA_MAPS;
        s->mine.write_multiple = 1;
        s->mine.devvm = 1;
        s->mine.devvm_version = DEVVM_EXT_VERSION;
        s->mine.devvm_ring = ops->ring_attach != NULL;
    }
    devvm_caps_default(&s->caps);

    /* the device's description is checked once, before any client */
    if (!ops->device_info || !ops->region_info || !ops->irq_info ||
        !ops->region_read || !ops->region_write) {
        return -DEVVM_EINVAL;
    }
    ret = ops->device_info(opaque, &s->info);
    if (ret < 0) {
        return -DEVVM_EINVAL;
    }
    if (s->info.num_regions > DEVVM_MAX_REGIONS ||
        s->info.num_irqs > DEVVM_MAX_IRQ_TYPES) {
        return DEVVM_E_TOO_BIG;
    }
    for (i = 0; i < s->info.num_regions; i++) {
        struct devvm_region_info *r = &s->regions[i];
        int rfd = -1;
        uint32_t a;

        if (ops->region_info(opaque, i, r, &rfd) < 0 ||
            r->nr_areas > DEVVM_MAX_SPARSE_AREAS) {
            return -DEVVM_EINVAL;
        }
        for (a = 0; a < r->nr_areas; a++) {
            if (r->areas[a].offset > r->size ||
                r->areas[a].size > r->size - r->areas[a].offset) {
                return DEVVM_E_BAD_FIELD;
            }
        }
        r->index = i;
    }
    for (i = 0; i < s->info.num_irqs; i++) {
        if (ops->irq_info(opaque, i, &s->irqs[i]) < 0 ||
            s->irqs[i].count > DEVVM_MAX_IRQS) {
            return -DEVVM_EINVAL;
        }
        s->irqs[i].index = i;
    }
    return DEVVM_OK;
}

void devvm_server_conn_fini(struct devvm_server_conn *s)
{
    uint32_t i;

    for (i = 0; i < s->npending; i++) {
        devvm_rx_release(&s->pending[i]);
    }
    s->npending = 0;
    devvm_dma_fini(&s->dma);
    if (s->fd >= 0) {
        close(s->fd);
        s->fd = -1;
    }
}

/* ---- replies ------------------------------------------------------------ */

/* error reply with positive errno @err */
static int send_error(struct devvm_server_conn *s, const struct devvm_hdr *h,
                      int err)
{
    uint8_t buf[DEVVM_HDR_SIZE];

    if (h->flags & DEVVM_HDR_F_NO_REPLY) {
        return DEVVM_OK;
    }
    devvm_encode_hdr_only(buf, sizeof(buf), h->id, h->cmd,
                          DEVVM_HDR_F_REPLY | DEVVM_HDR_F_ERROR, err);
    return conn_send(s, buf, sizeof(buf), NULL, 0);
}

static int send_reply(struct devvm_server_conn *s, const struct devvm_hdr *h,
                      const void *buf, int len, const int *fds, uint32_t nfds)
{
    if (len < 0) {
        return len;
    }
    if (h->flags & DEVVM_HDR_F_NO_REPLY) {
        return DEVVM_OK;
    }
    return conn_send(s, buf, len, fds, nfds);
}

static int send_empty_reply(struct devvm_server_conn *s,
                            const struct devvm_hdr *h)
{
    uint8_t buf[DEVVM_HDR_SIZE];

    return send_reply(s, h, buf,
                      devvm_encode_hdr_only(buf, sizeof(buf), h->id, h->cmd,
                                            DEVVM_HDR_F_REPLY, 0),
                      NULL, 0);
}

/* errno for the error reply to a malformed request */
static int err_to_errno(int err)
{
    switch (err) {
    case DEVVM_E_TOO_BIG: return E2BIG;
    case DEVVM_E_BAD_FDS: return EBADF;
    case DEVVM_E_UNKNOWN_CMD: return ENOSYS;
    case DEVVM_E_JSON:
    case DEVVM_E_VERSION: return ENOTSUP;
    }
    return EINVAL;
}

/*
 * ---- request handlers ----
 * Return 0 when the reply is sent, a negative errno for an error reply,
 * or a negative devvm_err when the connection is lost.  Device callbacks
 * return 0 or a negative errno; OPS_ERR() makes anything else -EIO, so
 * that a callback cannot end the connection by mistake.
 */
#define OPS_ERR(r) ((r) >= 0 ? 0 : devvm_is_errno(r) ? (r) : -EIO)

static int handle_version(struct devvm_server_conn *s,
                          const struct devvm_msg *m)
{
    char json[DEVVM_MAX_CAPS_JSON + 1];
    uint8_t buf[DEVVM_HDR_SIZE + 4 + sizeof(json)];
    struct devvm_version v = {
        DEVVM_VFIO_USER_MAJOR, DEVVM_VFIO_USER_MINOR, json, 0
    };
    struct devvm_caps peer;
    int len, ret;

    if (m->u.version.major != DEVVM_VFIO_USER_MAJOR) {
        slog(s, "client speaks vfio-user %u.%u, not %u.x",
             m->u.version.major, m->u.version.minor, DEVVM_VFIO_USER_MAJOR);
        return -ENOTSUP;
    }
    devvm_caps_default(&peer);
    if (m->u.version.caps) {
        ret = devvm_caps_parse(m->u.version.caps, m->u.version.caps_len,
                               &peer);
        if (ret) {
            slog(s, "client capabilities: %s", devvm_strerror(ret));
            return -EINVAL;
        }
    }
    devvm_caps_negotiate(&s->mine, &peer, &s->caps);
    /* what we send is bounded by what the client can take */
    s->peer_max_xfer = peer.max_data_xfer_size;
    len = devvm_caps_format(json, sizeof(json), &s->caps);
    if (len < 0) {
        return -EINVAL;
    }
    v.caps_len = len;
    ret = send_reply(s, &m->hdr, buf,
                     devvm_encode_version(buf, sizeof(buf), m->hdr.id,
                                          DEVVM_HDR_F_REPLY, &v),
                     NULL, 0);
    if (ret) {
        return ret;
    }
    s->negotiated = 1;
    return DEVVM_OK;
}

static int handle_dma_map(struct devvm_server_conn *s, struct devvm_msg *m,
                          struct devvm_rx *rx)
{
    int fd = -1, keep = -1, ret;
    const struct devvm_dma_region *r;

    if (rx->nfds) {
        fd = rx->fds[0];
        rx->fds[0] = -1;
        if (s->ops->dma_mapped) {
            keep = fcntl(fd, F_DUPFD_CLOEXEC, 0);
        }
    }
    ret = devvm_dma_add(&s->dma, &m->u.dma_map, fd);
    if (keep >= 0) {
        /* only what the role itself could map (a sealed fd) goes on */
        r = ret == DEVVM_OK ? devvm_dma_find(&s->dma, m->u.dma_map.addr)
                            : NULL;
        if (r && r->host) {
            s->ops->dma_mapped(s->opaque, &m->u.dma_map, keep);
        } else {
            close(keep);
        }
    }
    switch (ret) {
    case DEVVM_OK:
        break;
    case DEVVM_E_BAD_FIELD:
        return -EEXIST;
    case DEVVM_E_LIMIT:
        return -ENOSPC;
    case -DEVVM_ENOMEM:
        return -ENOMEM;
    case -DEVVM_EINVAL:
        slog(s, "DMA_MAP of 0x%llx+0x%llx refused: its fd is shorter than "
             "offset 0x%llx + size", (unsigned long long)m->u.dma_map.addr,
             (unsigned long long)m->u.dma_map.size,
             (unsigned long long)m->u.dma_map.offset);
        return -EINVAL;
    default:
        slog(s, "DMA_MAP of 0x%llx+0x%llx refused: %s",
             (unsigned long long)m->u.dma_map.addr,
             (unsigned long long)m->u.dma_map.size, devvm_strerror(ret));
        return -EINVAL;
    }
    if (s->ops->dma_changed) {
        s->ops->dma_changed(s->opaque);
    }
    return send_empty_reply(s, &m->hdr);
}

static int handle_dma_unmap(struct devvm_server_conn *s,
                            const struct devvm_msg *m)
{
    const struct devvm_dma_unmap *u = &m->u.dma_unmap;
    uint8_t buf[SMALL_MSG];

    if (u->flags & DEVVM_DMA_UNMAP_F_ALL) {
        uint32_t i;

        for (i = 0; s->ops->dma_unmapping && i < s->dma.nr; i++) {
            s->ops->dma_unmapping(s->opaque, s->dma.regions[i].addr,
                                  s->dma.regions[i].size);
        }
        devvm_dma_remove_all(&s->dma);
    } else {
        const struct devvm_dma_region *r = devvm_dma_find(&s->dma, u->addr);

        if (!r || r->addr != u->addr || r->size != u->size) {
            return -ENOENT;
        }
        if (s->ops->dma_unmapping) {
            s->ops->dma_unmapping(s->opaque, u->addr, u->size);
        }
        devvm_dma_remove(&s->dma, u->addr, u->size);
    }
    if (s->ops->dma_changed) {
        s->ops->dma_changed(s->opaque);
    }
    return send_reply(s, &m->hdr, buf,
                      devvm_encode_dma_unmap(buf, sizeof(buf), m->hdr.id,
                                             DEVVM_HDR_F_REPLY, u),
                      NULL, 0);
}

static int handle_region_info(struct devvm_server_conn *s,
                              const struct devvm_msg *m)
{
    uint8_t buf[DEVVM_HDR_SIZE + DEVVM_REGION_INFO_SIZE + 16 +
                16 * DEVVM_MAX_SPARSE_AREAS];
    uint32_t index = m->u.region_info.index;
    struct devvm_region_info r;
    int fd = -1, ret;

    if (index >= s->info.num_regions) {
        return -EINVAL;
    }
    memset(&r, 0, sizeof(r));
    ret = s->ops->region_info(s->opaque, index, &r, &fd);
    if (ret < 0) {
        return OPS_ERR(ret);
    }
    if (r.size != s->regions[index].size ||
        r.nr_areas > DEVVM_MAX_SPARSE_AREAS) {
        return -EIO;            /* the device changed its description */
    }
    r.index = index;
    r.argsz = m->u.region_info.argsz;   /* room the client gave us */
    return send_reply(s, &m->hdr, buf,
                      devvm_encode_region_info(buf, sizeof(buf), m->hdr.id,
                                               DEVVM_HDR_F_REPLY, &r),
                      &fd, fd >= 0);
}

static int handle_irq_info(struct devvm_server_conn *s,
                           const struct devvm_msg *m)
{
    uint8_t buf[SMALL_MSG];
    struct devvm_irq_info q;

    if (m->u.irq_info.index >= s->info.num_irqs) {
        return -EINVAL;
    }
    q = s->irqs[m->u.irq_info.index];
    q.argsz = 16;
    return send_reply(s, &m->hdr, buf,
                      devvm_encode_irq_info(buf, sizeof(buf), m->hdr.id,
                                            DEVVM_HDR_F_REPLY, &q),
                      NULL, 0);
}

static int handle_set_irqs(struct devvm_server_conn *s,
                           const struct devvm_msg *m, struct devvm_rx *rx)
{
    const struct devvm_irq_set *set = &m->u.irq_set;
    int ret;

    if (set->index >= s->info.num_irqs) {
        return -EINVAL;
    }
    /* count 0 with DATA_NONE is "all of them"; otherwise in range */
    if (set->start + set->count > s->irqs[set->index].count) {
        return -EINVAL;
    }
    if (!s->ops->set_irqs) {
        return -ENOTSUP;
    }
    ret = s->ops->set_irqs(s->opaque, set, rx->fds, rx->nfds);
    if (ret < 0) {
        return OPS_ERR(ret);
    }
    return send_empty_reply(s, &m->hdr);
}

/* Region access allowed?  Returns 0 or a negative errno. */
static int check_access(struct devvm_server_conn *s, uint32_t region,
                        uint64_t offset, uint32_t count, int write)
{
    return devvm_region_access_check(s->regions, s->info.num_regions,
                                     region, offset, count, write);
}

static int handle_region_read(struct devvm_server_conn *s,
                              const struct devvm_msg *m)
{
    const struct devvm_region_rw *rw = &m->u.region_rw;
    size_t size = DEVVM_HDR_SIZE + 16 + rw->count;
    uint8_t *data, *msg;
    int ret;

    ret = check_access(s, rw->region, rw->offset, rw->count, 0);
    if (ret) {
        return ret;
    }
    data = malloc(rw->count);
    msg = malloc(size);
    if (!data || !msg) {
        ret = -ENOMEM;
    } else {
        ret = OPS_ERR(s->ops->region_read(s->opaque, rw->region, rw->offset,
                                          data, rw->count));
    }
    if (!ret) {
        struct devvm_region_rw out = *rw;

        out.data = data;
        ret = send_reply(s, &m->hdr, msg,
                         devvm_encode_region_rw(msg, size, m->hdr.id,
                                                DEVVM_CMD_REGION_READ,
                                                DEVVM_HDR_F_REPLY, &out),
                         NULL, 0);
    }
    free(data);
    free(msg);
    return ret;
}

static int handle_region_write(struct devvm_server_conn *s,
                               const struct devvm_msg *m)
{
    struct devvm_region_rw out = m->u.region_rw;
    uint8_t buf[SMALL_MSG];
    int ret;

    ret = check_access(s, out.region, out.offset, out.count, 1);
    if (!ret) {
        ret = OPS_ERR(s->ops->region_write(s->opaque, out.region,
                                           out.offset, out.data, out.count));
    }
    if (ret) {
        return ret;
    }
    out.data = NULL;
    return send_reply(s, &m->hdr, buf,
                      devvm_encode_region_rw(buf, sizeof(buf), m->hdr.id,
                                             DEVVM_CMD_REGION_WRITE,
                                             DEVVM_HDR_F_REPLY, &out),
                      NULL, 0);
}

static int handle_write_multi(struct devvm_server_conn *s,
                              const struct devvm_msg *m)
{
    uint8_t buf[SMALL_MSG];
    uint32_t i;
    int ret;

    if (!s->caps.write_multiple) {
        return -ENOTSUP;
    }
    for (i = 0; i < m->u.write_multi.wr_cnt; i++) {
        struct devvm_write_one one;

        devvm_write_multi_get(&m->u.write_multi, i, &one);
        ret = check_access(s, one.region, one.offset, one.count, 1);
        if (!ret) {
            ret = OPS_ERR(s->ops->region_write(s->opaque, one.region,
                                               one.offset, one.data,
                                               one.count));
        }
        if (ret) {
            return ret;
        }
    }
    return send_reply(s, &m->hdr, buf,
                      devvm_encode_write_multi_reply(buf, sizeof(buf),
                                                     m->hdr.id, i),
                      NULL, 0);
}

static int handle_ring_attach(struct devvm_server_conn *s,
                              const struct devvm_msg *m)
{
    struct devvm_ring_attach a = m->u.ring_attach;
    int fds[DEVVM_ATTACH_FDS] = { -1, -1, -1 };
    uint8_t buf[SMALL_MSG];
    int i, ret;

    if (!s->caps.devvm_ring || !s->ops->ring_attach) {
        return -ENOTSUP;
    }
    ret = OPS_ERR(s->ops->ring_attach(s->opaque, &a, fds));
    for (i = 0; !ret && i < (int)DEVVM_ATTACH_FDS; i++) {
        if (fds[i] < 0) {
            ret = -EIO;
        }
    }
    if (!ret) {
        a.argsz = 32;
        ret = send_reply(s, &m->hdr, buf,
                         devvm_encode_ring_attach(buf, sizeof(buf),
                                                  m->hdr.id,
                                                  DEVVM_HDR_F_REPLY, &a),
                         fds, DEVVM_ATTACH_FDS);
    }
    for (i = 0; i < (int)DEVVM_ATTACH_FDS; i++) {
        if (fds[i] >= 0) {
            close(fds[i]);
        }
    }
    return ret;
}

static int handle_request(struct devvm_server_conn *s, struct devvm_msg *m,
                          struct devvm_rx *rx)
{
    int ret;

    switch (m->hdr.cmd) {
    case DEVVM_CMD_DMA_MAP:
        return handle_dma_map(s, m, rx);
    case DEVVM_CMD_DMA_UNMAP:
        return handle_dma_unmap(s, m);
    case DEVVM_CMD_DEVICE_GET_INFO: {
        uint8_t buf[SMALL_MSG];
        struct devvm_device_info info = s->info;

        info.argsz = 16;
        return send_reply(s, &m->hdr, buf,
                          devvm_encode_device_info(buf, sizeof(buf),
                                                   m->hdr.id,
                                                   DEVVM_HDR_F_REPLY, &info),
                          NULL, 0);
    }
    case DEVVM_CMD_DEVICE_GET_REGION_INFO:
        return handle_region_info(s, m);
    case DEVVM_CMD_DEVICE_GET_IRQ_INFO:
        return handle_irq_info(s, m);
    case DEVVM_CMD_DEVICE_SET_IRQS:
        return handle_set_irqs(s, m, rx);
    case DEVVM_CMD_REGION_READ:
        return handle_region_read(s, m);
    case DEVVM_CMD_REGION_WRITE:
        return handle_region_write(s, m);
    case DEVVM_CMD_REGION_WRITE_MULTI:
        return handle_write_multi(s, m);
    case DEVVM_CMD_DEVICE_RESET:
        ret = s->ops->reset ? OPS_ERR(s->ops->reset(s->opaque)) : 0;
        return ret ? ret : send_empty_reply(s, &m->hdr);
    case DEVVM_CMD_RING_ATTACH:
        return handle_ring_attach(s, m);
    case DEVVM_CMD_RING_DETACH:
        if (!s->caps.devvm || !s->ops->ring_detach) {
            return -ENOTSUP;
        }
        ret = OPS_ERR(s->ops->ring_detach(s->opaque,
                                          m->u.ring_detach.channel));
        return ret ? ret : send_empty_reply(s, &m->hdr);
    }
    /* DMA_READ/WRITE and EVENT travel the other way */
    return -ENOTSUP;
}

/* Handle one received message; consumes @rx.  0 or a fatal error. */
static int handle_message(struct devvm_server_conn *s, struct devvm_rx *rx)
{
    struct devvm_msg m;
    int ret;

    ret = devvm_msg_decode(rx->buf, rx->hdr.size, rx->nfds, &m);
    if ((rx->hdr.flags & DEVVM_HDR_F_TYPE_MASK) == DEVVM_HDR_F_REPLY) {
        slog(s, "unexpected %s reply with id %u",
             devvm_cmd_name(rx->hdr.cmd), rx->hdr.id);
        ret = DEVVM_E_UNKNOWN_ID;
        goto out;
    }
    if (ret == DEVVM_E_UNKNOWN_CMD && devvm_cmd_known(rx->hdr.cmd) &&
        !rx->nfds) {
        /* a vfio-user command we do not implement: refuse, carry on */
        ret = send_error(s, &rx->hdr, ENOTSUP);
        goto out;
    }
    if (ret == DEVVM_E_UNKNOWN_CMD) {
        /* a command nobody defined, or a defined one carrying fds */
        slog(s, "unknown command %u (%u fds)", rx->hdr.cmd, rx->nfds);
        send_error(s, &rx->hdr, rx->nfds ? EBADF : ENOSYS);
        goto out;
    }
    if (ret) {
        slog(s, "malformed %s request (command %u, %u bytes, %u fds): %s",
             devvm_cmd_name(rx->hdr.cmd), rx->hdr.cmd, rx->hdr.size,
             rx->nfds, devvm_strerror(ret));
        send_error(s, &rx->hdr, err_to_errno(ret));
        goto out;
    }
    if (!s->negotiated || m.hdr.cmd == DEVVM_CMD_VERSION) {
        if (s->negotiated || m.hdr.cmd != DEVVM_CMD_VERSION) {
            slog(s, "%s: VERSION must come first, and only once",
                 devvm_cmd_name(m.hdr.cmd));
            send_error(s, &m.hdr, EINVAL);
            ret = DEVVM_E_VERSION;
            goto out;
        }
        ret = handle_version(s, &m);
        if (devvm_is_errno(ret)) {
            /* no common version: say why, then give up */
            send_error(s, &m.hdr, -ret);
            ret = DEVVM_E_VERSION;
        }
        goto out;
    }
    if (m.hdr.cmd >= DEVVM_CMD_RING_ATTACH && !s->caps.devvm) {
        /* the devvm extension was not negotiated */
        ret = send_error(s, &m.hdr, ENOTSUP);
        goto out;
    }
    ret = handle_request(s, &m, rx);
    if (devvm_is_errno(ret)) {
        ret = send_error(s, &m.hdr, -ret);
    }
out:
    devvm_rx_release(rx);
    return ret ? fail(s, ret) : DEVVM_OK;
}

int devvm_server_conn_dispatch(struct devvm_server_conn *s, int timeout_ms)
{
    struct devvm_rx rx;
    int ret;

    if (s->broken) {
        return s->broken;
    }
    if (s->npending) {
        rx = s->pending[0];
        memmove(&s->pending[0], &s->pending[1],
                --s->npending * sizeof(s->pending[0]));
        return handle_message(s, &rx);
    }
    ret = conn_recv(s, timeout_ms, &rx);
    if (ret == DEVVM_E_AGAIN) {
        return ret;
    }
    if (ret) {
        if (ret != DEVVM_E_CLOSED) {
            slog(s, "receive: %s", devvm_strerror(ret));
        }
        /*
         * A header that was read but refused (size, flags, fds) still gets
         * an answer when it claims to be a request; rx.hdr is all zero
         * when the header itself did not arrive.
         */
        if ((ret == DEVVM_E_TOO_BIG || ret == DEVVM_E_BAD_FDS ||
             ret == DEVVM_E_BAD_FLAGS || ret == DEVVM_E_TRUNCATED) &&
            rx.hdr.size &&
            (rx.hdr.flags & DEVVM_HDR_F_TYPE_MASK) == DEVVM_HDR_F_REQUEST) {
            send_error(s, &rx.hdr, err_to_errno(ret));
        }
        return fail(s, ret);
    }
    return handle_message(s, &rx);
}

/* ---- server-initiated requests ------------------------------------------ */

/*
 * Send @req and wait for its reply, queueing client requests that
 * arrive meanwhile (they are served by the next dispatch calls).
 */
static int call(struct devvm_server_conn *s, uint8_t *req, size_t len,
                struct devvm_rx *rx, struct devvm_msg *m)
{
    uint16_t id = s->next_id++, cmd = devvm_ld16(req + 2);
    int ret;

    if (s->broken) {
        return s->broken;
    }
    devvm_st16(req, id);
    ret = conn_send(s, req, len, NULL, 0);
    if (ret) {
        return fail(s, ret);
    }
    for (;;) {
        ret = conn_recv(s, s->timeout_ms, rx);
        if (ret) {
            return fail(s, ret == DEVVM_E_AGAIN ? DEVVM_E_TIMEOUT : ret);
        }
        if ((rx->hdr.flags & DEVVM_HDR_F_TYPE_MASK) == DEVVM_HDR_F_REQUEST) {
            if (s->npending >= DEVVM_SERVER_MAX_PENDING) {
                devvm_rx_release(rx);
                slog(s, "client sent more than %u requests during a DMA",
                     DEVVM_SERVER_MAX_PENDING);
                return fail(s, DEVVM_E_LIMIT);
            }
            s->pending[s->npending++] = *rx;
            continue;
        }
        ret = devvm_msg_decode(rx->buf, rx->hdr.size, rx->nfds, m);
        if (!ret && (m->hdr.id != id || m->hdr.cmd != cmd)) {
            ret = DEVVM_E_UNKNOWN_ID;
        }
        if (ret) {
            slog(s, "bad %s reply: %s", devvm_cmd_name(rx->hdr.cmd),
                 devvm_strerror(ret));
            devvm_rx_release(rx);
            return fail(s, ret);
        }
        if (m->hdr.flags & DEVVM_HDR_F_ERROR) {
            s->peer_errno = m->hdr.error;
            devvm_rx_release(rx);
            return DEVVM_E_PEER;
        }
        return DEVVM_OK;
    }
}

static uint64_t chunk_size(struct devvm_server_conn *s)
{
    uint64_t max = s->peer_max_xfer ? s->peer_max_xfer : DEVVM_MAX_XFER;

    return max < DEVVM_MAX_XFER ? max : DEVVM_MAX_XFER;
}

/* DMA_READ or DMA_WRITE messages for [addr, addr + len). */
static int dma_by_message(struct devvm_server_conn *s, int write,
                          uint64_t addr, uint8_t *buf, uint64_t len)
{
    uint64_t done, max = chunk_size(s);
    uint8_t *req;
    int ret = DEVVM_OK;

    req = malloc(DEVVM_HDR_SIZE + 16 + (write ? max : 0));
    if (!req) {
        return -DEVVM_ENOMEM;
    }
    for (done = 0; done < len && !ret; done += max) {
        uint64_t n = len - done < max ? len - done : max;
        struct devvm_dma_rw rw = { addr + done, n,
                                   write ? buf + done : NULL };
        struct devvm_rx rx;
        struct devvm_msg m;

        ret = call(s, req,
                   devvm_encode_dma_rw(req, DEVVM_HDR_SIZE + 16 +
                                       (write ? n : 0), 0,
                                       write ? DEVVM_CMD_DMA_WRITE :
                                               DEVVM_CMD_DMA_READ,
                                       0, &rw),
                   &rx, &m);
        if (ret == DEVVM_E_PEER) {
            /* the client refused it (EFAULT: not memory the device may
             * reach): its errno is the answer */
            slog(s, "DMA %s of 0x%llx+0x%llx refused by the client: %s",
                 write ? "write" : "read", (unsigned long long)rw.addr,
                 (unsigned long long)n, strerror(s->peer_errno));
            ret = s->peer_errno > 0 && s->peer_errno < DEVVM_ERR_BASE ?
                  -s->peer_errno : -EIO;
        }
        if (ret) {
            break;
        }
        /* a DMA_WRITE reply may have no payload (QEMU 10.2) */
        if ((m.u.dma_rw.data || !write) &&
            (m.u.dma_rw.addr != rw.addr || m.u.dma_rw.count != n)) {
            ret = fail(s, DEVVM_E_BAD_FIELD);
        } else if (!write) {
            memcpy(buf + done, m.u.dma_rw.data, n);
        }
        devvm_rx_release(&rx);
    }
    free(req);
    return ret;
}

/*
 * Walk [addr, addr + len) mapping by mapping: memcpy where the client
 * gave an fd, messages elsewhere.  The whole range is checked first, so
 * a refused DMA touches nothing.
 */
static int dma_access(struct devvm_server_conn *s, int write, uint64_t addr,
                      uint8_t *buf, uint64_t len)
{
    uint64_t done = 0;

    if (!devvm_dma_covered(&s->dma, addr, len, write)) {
        slog(s, "DMA %s of 0x%llx+0x%llx outside the client's maps",
             write ? "write" : "read", (unsigned long long)addr,
             (unsigned long long)len);
        return -EFAULT;
    }
    while (done < len) {
        uint64_t at = addr + done, n = len - done;
        const struct devvm_dma_region *r = devvm_dma_find(&s->dma, at);
        uint8_t *p;
        int ret;

        if (n > r->addr + (r->size - 1) - at) {
            n = r->addr + (r->size - 1) - at + 1;
        }
        p = devvm_dma_ptr(&s->dma, at, n, write);
        if (p) {
            if (write) {
                memcpy(p, buf + done, n);
            } else {
                memcpy(buf + done, p, n);
            }
        } else {
            ret = dma_by_message(s, write, at, buf + done, n);
            if (ret) {
                return ret;
            }
        }
        done += n;
    }
    return DEVVM_OK;
}

int devvm_server_conn_dma_read(struct devvm_server_conn *s, uint64_t addr,
                               void *buf, uint64_t len)
{
    return dma_access(s, 0, addr, buf, len);
}

int devvm_server_conn_dma_write(struct devvm_server_conn *s, uint64_t addr,
                                const void *buf, uint64_t len)
{
    return dma_access(s, 1, addr, (uint8_t *)buf, len);
}

int devvm_server_conn_dma_unchecked(struct devvm_server_conn *s, int write,
                                    uint64_t addr, void *buf, uint64_t len)
{
    return dma_by_message(s, write, addr, buf, len);
}

/* ---- the device end of a ring channel ------------------------------- */

static int ring_read(void *opaque, uint32_t region, uint64_t offset,
                     uint32_t size, uint64_t *value)
{
    struct devvm_server_conn *s = opaque;
    uint8_t b[8] = { 0 };
    int ret = OPS_ERR(s->ops->region_read(s->opaque, region, offset, b,
                                          size));

    *value = devvm_ld64(b);
    return ret;
}

static int ring_write(void *opaque, uint32_t region, uint64_t offset,
                      uint32_t size, uint64_t value)
{
    struct devvm_server_conn *s = opaque;
    uint8_t b[8];

    devvm_st64(b, value);
    return OPS_ERR(s->ops->region_write(s->opaque, region, offset, b, size));
}

static void ring_write_dropped(void *opaque, const struct devvm_slot *r,
                               int err)
{
    slog(opaque, "ring: write of %u bytes at region %u + 0x%llx dropped: "
         "%s", r->size, r->region, (unsigned long long)r->addr,
         strerror(-err));
}

static const struct devvm_ring_device_ops ring_device_ops = {
    .read = ring_read,
    .write = ring_write,
    .write_dropped = ring_write_dropped,
};

int devvm_server_ring_serve(struct devvm_server_conn *s,
                            struct devvm_channel *ch, int call_fd,
                            unsigned budget)
{
    const struct devvm_ring_device d = {
        .ch = ch,
        .regions = s->regions,
        .nr_regions = s->info.num_regions,
        .max_region = s->info.num_regions - 1,
        .ops = &ring_device_ops,
        .opaque = s,
    };
    uint64_t one = 1;
    int completed = 0;
    int ret = devvm_ring_device_serve(&d, budget, &completed);

    if (ret == DEVVM_E_BAD_FIELD) {
        slog(s, "ring: an op that has no place on the request ring");
    }
    if (completed && devvm_ring_kick_needed(&ch->ring[DEVVM_RING_CPL])) {
        while (write(call_fd, &one, sizeof(one)) < 0 && errno == EINTR) {
            continue;
        }
    }
    return ret;
}

int devvm_server_conn_event(struct devvm_server_conn *s, uint32_t state,
                            uint32_t generation, const char *reason)
{
    uint8_t buf[DEVVM_HDR_SIZE + 16 + DEVVM_MAX_REASON];
    struct devvm_event ev = {
        .type = DEVVM_EVENT_STATE,
        .state = state,
        .generation = generation,
        .reason = reason,
        .reason_len = reason ? (uint32_t)strnlen(reason, DEVVM_MAX_REASON) : 0,
    };
    int len;

    if (!s->caps.devvm) {
        return DEVVM_E_VERSION;
    }
    len = devvm_encode_event(buf, sizeof(buf), s->next_id++, &ev);
    if (len < 0) {
        return len;
    }
    len = conn_send(s, buf, len, NULL, 0);
    return len ? fail(s, len) : DEVVM_OK;
}

/* ---- refusing a connection ------------------------------------------ */

struct refusal {
    int fd;
    int err;
    int timeout_ms;
};

static unsigned refusing;       /* atomic: refusals waiting */

static void *refuse_main(void *opaque)
{
    struct refusal *r = opaque;
    struct devvm_rx rx;

    if (!devvm_sock_recv(r->fd, r->timeout_ms, DEVVM_MAX_MSG_SIZE, &rx)) {
        if ((rx.hdr.flags & DEVVM_HDR_F_TYPE_MASK) == DEVVM_HDR_F_REQUEST &&
            !(rx.hdr.flags & DEVVM_HDR_F_NO_REPLY)) {
            uint8_t buf[DEVVM_HDR_SIZE];

            devvm_encode_hdr_only(buf, sizeof(buf), rx.hdr.id, rx.hdr.cmd,
                                  DEVVM_HDR_F_REPLY | DEVVM_HDR_F_ERROR,
                                  r->err);
            devvm_sock_send(r->fd, buf, sizeof(buf), NULL, 0);
        }
        devvm_rx_release(&rx);
    }
    close(r->fd);
    free(r);
    __atomic_fetch_sub(&refusing, 1, __ATOMIC_RELAXED);
    return NULL;
}

void devvm_server_refuse(int fd, int err, int timeout_ms)
{
    struct refusal *r;
    pthread_attr_t attr;
    pthread_t tid;
    int ret = -1;

    if (__atomic_fetch_add(&refusing, 1, __ATOMIC_RELAXED) >=
        DEVVM_SERVER_MAX_REFUSING) {
        goto fail;
    }
    r = malloc(sizeof(*r));
    if (!r) {
        goto fail;
    }
    *r = (struct refusal){ fd, err, timeout_ms };
    if (!pthread_attr_init(&attr)) {
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        ret = pthread_create(&tid, &attr, refuse_main, r);
        pthread_attr_destroy(&attr);
    }
    if (!ret) {
        return;
    }
    free(r);
fail:
    __atomic_fetch_sub(&refusing, 1, __ATOMIC_RELAXED);
    close(fd);
}
