/*
 * libdevvm: vfio-user message encoding and decoding.
 *
 * Freestanding (see meson.build).  A decoder sees bytes from a peer that
 * may be buggy or hostile: every length is checked against the bytes
 * actually present and against the limits in wire.h before it is used,
 * and every arithmetic on a peer's value is overflow-checked.  Rules per
 * command are those of docs/devvm/protocol.rst.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "libdevvm/wire.h"
#include "libdevvm/ring.h"
#include "libdevvm/le.h"

const char *devvm_strerror(int err)
{
    switch (err) {
    case DEVVM_OK: return "success";
    case DEVVM_E_TRUNCATED: return "message truncated";
    case DEVVM_E_TOO_BIG: return "size above the protocol limit";
    case DEVVM_E_BAD_FLAGS: return "invalid flags";
    case DEVVM_E_UNKNOWN_CMD: return "unknown or unsupported command";
    case DEVVM_E_BAD_FDS: return "wrong number of file descriptors";
    case DEVVM_E_BAD_FIELD: return "field out of range";
    case DEVVM_E_UNKNOWN_ID: return "reply to no outstanding request";
    case DEVVM_E_RING_INDEX: return "ring index out of range";
    case DEVVM_E_RING_SEQ: return "ring slot sequence mismatch";
    case DEVVM_E_LIMIT: return "table limit reached";
    case DEVVM_E_VERSION: return "incompatible version or capabilities";
    case DEVVM_E_JSON: return "malformed capability JSON";
    case DEVVM_E_IO: return "I/O error";
    case DEVVM_E_CLOSED: return "connection closed by peer";
    case DEVVM_E_TIMEOUT: return "peer did not answer in time";
    case DEVVM_E_AGAIN: return "try again";
    case DEVVM_E_STALE: return "device restarted (generation changed)";
    case DEVVM_E_STATE: return "device is not ready";
    case DEVVM_E_PEER: return "peer reported an error";
    /* the errno values the library itself returns */
    case -DEVVM_EPERM: return "operation not permitted";
    case -DEVVM_ENOENT: return "no such mapping";
    case -DEVVM_EIO: return "I/O error";
    case -DEVVM_E2BIG: return "argument list too long";
    case -DEVVM_EAGAIN: return "resource temporarily unavailable";
    case -DEVVM_ENOMEM: return "out of memory";
    case -DEVVM_EFAULT: return "bad address";
    case -DEVVM_EBUSY: return "device or resource busy";
    case -DEVVM_EEXIST: return "already exists";
    case -DEVVM_ENODEV: return "no such device";
    case -DEVVM_EINVAL: return "invalid argument";
    case -DEVVM_ENOSPC: return "no space left";
    case -DEVVM_ERANGE: return "out of range";
    case -DEVVM_EUSERS: return "too many users";
    case -DEVVM_ENOTSUP: return "not supported";
    case -DEVVM_ETIMEDOUT: return "timed out";
    }
    return devvm_is_errno(err) ? "error (an errno value)" : "unknown error";
}

int devvm_region_access_check(const struct devvm_region_info *regions,
                              uint32_t nr_regions, uint32_t region,
                              uint64_t offset, uint64_t count, int write)
{
    const struct devvm_region_info *r;

    if (region >= nr_regions) {
        return -DEVVM_EINVAL;
    }
    r = &regions[region];
    if (!(r->flags & (write ? DEVVM_REGION_F_WRITE : DEVVM_REGION_F_READ))) {
        return -DEVVM_EPERM;
    }
    if (offset > r->size || count > r->size - offset) {
        return -DEVVM_EINVAL;
    }
    return 0;
}

const char *devvm_cmd_name(uint16_t cmd)
{
    switch (cmd) {
    case DEVVM_CMD_VERSION: return "VERSION";
    case DEVVM_CMD_DMA_MAP: return "DMA_MAP";
    case DEVVM_CMD_DMA_UNMAP: return "DMA_UNMAP";
    case DEVVM_CMD_DEVICE_GET_INFO: return "DEVICE_GET_INFO";
    case DEVVM_CMD_DEVICE_GET_REGION_INFO: return "DEVICE_GET_REGION_INFO";
    case DEVVM_CMD_DEVICE_GET_REGION_IO_FDS:
        return "DEVICE_GET_REGION_IO_FDS";
    case DEVVM_CMD_DEVICE_GET_IRQ_INFO: return "DEVICE_GET_IRQ_INFO";
    case DEVVM_CMD_DEVICE_SET_IRQS: return "DEVICE_SET_IRQS";
    case DEVVM_CMD_REGION_READ: return "REGION_READ";
    case DEVVM_CMD_REGION_WRITE: return "REGION_WRITE";
    case DEVVM_CMD_DMA_READ: return "DMA_READ";
    case DEVVM_CMD_DMA_WRITE: return "DMA_WRITE";
    case DEVVM_CMD_DEVICE_RESET: return "DEVICE_RESET";
    case DEVVM_CMD_DIRTY_PAGES: return "DIRTY_PAGES";
    case DEVVM_CMD_REGION_WRITE_MULTI: return "REGION_WRITE_MULTI";
    case DEVVM_CMD_DEVICE_FEATURE: return "DEVICE_FEATURE";
    case DEVVM_CMD_MIG_DATA_READ: return "MIG_DATA_READ";
    case DEVVM_CMD_MIG_DATA_WRITE: return "MIG_DATA_WRITE";
    case DEVVM_CMD_RING_ATTACH: return "DEVVM_RING_ATTACH";
    case DEVVM_CMD_RING_DETACH: return "DEVVM_RING_DETACH";
    case DEVVM_CMD_EVENT: return "DEVVM_EVENT";
    }
    return "unknown";
}

int devvm_cmd_known(uint16_t cmd)
{
    return cmd >= DEVVM_CMD_VERSION && cmd <= DEVVM_CMD_MIG_DATA_WRITE ?
           1 : (cmd >= DEVVM_CMD_RING_ATTACH && cmd <= DEVVM_CMD_EVENT);
}

/* ---- header ------------------------------------------------------------ */

#define HDR_KNOWN_FLAGS (DEVVM_HDR_F_TYPE_MASK | DEVVM_HDR_F_NO_REPLY | \
                         DEVVM_HDR_F_ERROR)

int devvm_hdr_decode(const void *buf, size_t len, uint32_t max_size,
                     struct devvm_hdr *h)
{
    const uint8_t *b = buf;
    uint32_t type;

    if (len < DEVVM_HDR_SIZE) {
        return DEVVM_E_TRUNCATED;
    }
    h->id = devvm_ld16(b);
    h->cmd = devvm_ld16(b + 2);
    h->size = devvm_ld32(b + 4);
    h->flags = devvm_ld32(b + 8);
    h->error = devvm_ld32(b + 12);

    if (h->size < DEVVM_HDR_SIZE) {
        return DEVVM_E_TRUNCATED;
    }
    if (h->size > max_size || h->size > DEVVM_MAX_MSG_SIZE) {
        return DEVVM_E_TOO_BIG;
    }
    type = h->flags & DEVVM_HDR_F_TYPE_MASK;
    if ((h->flags & ~HDR_KNOWN_FLAGS) ||
        (type != DEVVM_HDR_F_REQUEST && type != DEVVM_HDR_F_REPLY)) {
        return DEVVM_E_BAD_FLAGS;
    }
    if (type == DEVVM_HDR_F_REQUEST && (h->flags & DEVVM_HDR_F_ERROR)) {
        return DEVVM_E_BAD_FLAGS;
    }
    if (type == DEVVM_HDR_F_REPLY && (h->flags & DEVVM_HDR_F_NO_REPLY)) {
        return DEVVM_E_BAD_FLAGS;
    }
    return DEVVM_OK;
}

static void hdr_encode(uint8_t *b, uint16_t id, uint16_t cmd, uint32_t size,
                       uint32_t flags, uint32_t error)
{
    devvm_st16(b, id);
    devvm_st16(b + 2, cmd);
    devvm_st32(b + 4, size);
    devvm_st32(b + 8, flags);
    devvm_st32(b + 12, error);
}

/* ---- payload decoders ---------------------------------------------------- */

static int is_pow2(uint32_t v)
{
    return v && !(v & (v - 1));
}

/* [a, a + b) does not wrap around */
static int range_ok(uint64_t a, uint64_t b)
{
    return a + b >= a;
}

static int decode_version(const uint8_t *p, uint32_t plen, uint32_t nfds,
                          struct devvm_version *v)
{
    uint32_t i, jlen;

    if (plen < 4) {
        return DEVVM_E_TRUNCATED;
    }
    if (nfds) {
        return DEVVM_E_BAD_FDS;     /* no twin-socket mode */
    }
    v->major = devvm_ld16(p);
    v->minor = devvm_ld16(p + 2);
    v->caps = 0;
    v->caps_len = 0;
    jlen = plen - 4;
    if (!jlen) {
        return DEVVM_OK;
    }
    if (jlen - 1 > DEVVM_MAX_CAPS_JSON) {
        return DEVVM_E_TOO_BIG;
    }
    /* NUL-terminated, and the only NUL is the last byte */
    if (p[plen - 1] != 0) {
        return DEVVM_E_BAD_FIELD;
    }
    for (i = 4; i < plen - 1; i++) {
        if (p[i] == 0) {
            return DEVVM_E_BAD_FIELD;
        }
    }
    v->caps = (const char *)p + 4;
    v->caps_len = jlen - 1;
    return DEVVM_OK;
}

static int decode_dma_map(const uint8_t *p, uint32_t plen, uint32_t nfds,
                          struct devvm_dma_map *m)
{
    if (plen < 32) {
        return DEVVM_E_TRUNCATED;
    }
    if (plen > 32) {
        return DEVVM_E_BAD_FIELD;
    }
    if (nfds > 1) {
        return DEVVM_E_BAD_FDS;
    }
    m->argsz = devvm_ld32(p);
    m->flags = devvm_ld32(p + 4);
    m->offset = devvm_ld64(p + 8);
    m->addr = devvm_ld64(p + 16);
    m->size = devvm_ld64(p + 24);
    if (m->flags & ~(DEVVM_DMA_F_READ | DEVVM_DMA_F_WRITE)) {
        return DEVVM_E_BAD_FLAGS;
    }
    if (!m->size || !range_ok(m->addr, m->size - 1) ||
        !range_ok(m->offset, m->size - 1)) {
        return DEVVM_E_BAD_FIELD;
    }
    return DEVVM_OK;
}

static int decode_dma_unmap(const uint8_t *p, uint32_t plen,
                            struct devvm_dma_unmap *u)
{
    if (plen < 24) {
        return DEVVM_E_TRUNCATED;
    }
    if (plen > 24) {
        return DEVVM_E_BAD_FIELD;   /* no dirty bitmap support */
    }
    u->argsz = devvm_ld32(p);
    u->flags = devvm_ld32(p + 4);
    u->addr = devvm_ld64(p + 8);
    u->size = devvm_ld64(p + 16);
    if (u->flags & ~DEVVM_DMA_UNMAP_F_ALL) {
        return DEVVM_E_BAD_FLAGS;
    }
    if (u->flags & DEVVM_DMA_UNMAP_F_ALL) {
        if (u->addr || u->size) {
            return DEVVM_E_BAD_FIELD;
        }
    } else if (!u->size || !range_ok(u->addr, u->size - 1)) {
        return DEVVM_E_BAD_FIELD;
    }
    return DEVVM_OK;
}

static int decode_device_info(const uint8_t *p, uint32_t plen, int reply,
                              struct devvm_device_info *d)
{
    if (plen != 16) {
        return plen < 16 ? DEVVM_E_TRUNCATED : DEVVM_E_BAD_FIELD;
    }
    d->argsz = devvm_ld32(p);
    d->flags = devvm_ld32(p + 4);
    d->num_regions = devvm_ld32(p + 8);
    d->num_irqs = devvm_ld32(p + 12);
    if (reply && (d->num_regions > DEVVM_MAX_REGIONS ||
                  d->num_irqs > DEVVM_MAX_IRQ_TYPES)) {
        return DEVVM_E_TOO_BIG;
    }
    return DEVVM_OK;
}

/* The sparse mmap capability of a region info reply, if it is there. */
static int decode_region_caps(const uint8_t *p, uint32_t plen,
                              struct devvm_region_info *r)
{
    uint32_t off = r->cap_offset;
    unsigned hops;

    for (hops = 0; off; hops++) {
        uint16_t id, version;
        uint32_t next, nr, i;

        /* a cap lies after the fixed part, inside the payload, aligned;
         * "next" strictly increases, so the chain ends */
        if (hops >= 16 || off < DEVVM_REGION_INFO_SIZE || (off & 3) ||
            off > plen || plen - off < 8) {
            return DEVVM_E_BAD_FIELD;
        }
        id = devvm_ld16(p + off);
        version = devvm_ld16(p + off + 2);
        next = devvm_ld32(p + off + 4);
        if (next && next <= off) {
            return DEVVM_E_BAD_FIELD;
        }
        if (id == DEVVM_REGION_CAP_SPARSE_MMAP) {
            if (version != 1 || plen - off < 16) {
                return DEVVM_E_BAD_FIELD;
            }
            nr = devvm_ld32(p + off + 8);
            if (nr > DEVVM_MAX_SPARSE_AREAS) {
                return DEVVM_E_TOO_BIG;
            }
            if ((plen - off - 16) / 16 < nr) {
                return DEVVM_E_TRUNCATED;
            }
            for (i = 0; i < nr; i++) {
                const uint8_t *a = p + off + 16 + 16 * i;
                uint64_t aoff = devvm_ld64(a), asz = devvm_ld64(a + 8);

                if (!asz || !range_ok(aoff, asz) || aoff + asz > r->size) {
                    return DEVVM_E_BAD_FIELD;
                }
                r->areas[i].offset = aoff;
                r->areas[i].size = asz;
            }
            r->nr_areas = nr;
        }
        off = next;
    }
    return DEVVM_OK;
}

static int decode_region_info(const uint8_t *p, uint32_t plen, int reply,
                              uint32_t nfds, struct devvm_region_info *r)
{
    if (plen < DEVVM_REGION_INFO_SIZE) {
        return DEVVM_E_TRUNCATED;
    }
    r->argsz = devvm_ld32(p);
    r->flags = devvm_ld32(p + 4);
    r->index = devvm_ld32(p + 8);
    r->cap_offset = devvm_ld32(p + 12);
    r->size = devvm_ld64(p + 16);
    r->offset = devvm_ld64(p + 24);
    r->nr_areas = 0;
    if (!reply) {
        if (nfds) {
            return DEVVM_E_BAD_FDS;
        }
        if (plen != DEVVM_REGION_INFO_SIZE) {
            return DEVVM_E_BAD_FIELD;
        }
        if (r->argsz < DEVVM_REGION_INFO_SIZE) {
            return DEVVM_E_BAD_FIELD;
        }
        return DEVVM_OK;
    }
    if (nfds > 1) {
        return DEVVM_E_BAD_FDS;
    }
    if (r->argsz < DEVVM_REGION_INFO_SIZE || plen > r->argsz) {
        return DEVVM_E_BAD_FIELD;
    }
    /* Capabilities are present only when the whole reply fitted. */
    if ((r->flags & DEVVM_REGION_F_CAPS) && plen == r->argsz) {
        return decode_region_caps(p, plen, r);
    }
    return DEVVM_OK;
}

static int decode_irq_info(const uint8_t *p, uint32_t plen, int reply,
                           struct devvm_irq_info *q)
{
    if (plen != 16) {
        return plen < 16 ? DEVVM_E_TRUNCATED : DEVVM_E_BAD_FIELD;
    }
    q->argsz = devvm_ld32(p);
    q->flags = devvm_ld32(p + 4);
    q->index = devvm_ld32(p + 8);
    q->count = devvm_ld32(p + 12);
    if (q->index >= DEVVM_MAX_IRQ_TYPES) {
        return DEVVM_E_BAD_FIELD;
    }
    if (reply && q->count > DEVVM_MAX_IRQS) {
        return DEVVM_E_TOO_BIG;
    }
    return DEVVM_OK;
}

static int one_bit(uint32_t v)
{
    return v && !(v & (v - 1));
}

static int decode_irq_set(const uint8_t *p, uint32_t plen, uint32_t nfds,
                          struct devvm_irq_set *s)
{
    uint32_t data;

    if (plen < 20) {
        return DEVVM_E_TRUNCATED;
    }
    s->argsz = devvm_ld32(p);
    s->flags = devvm_ld32(p + 4);
    s->index = devvm_ld32(p + 8);
    s->start = devvm_ld32(p + 12);
    s->count = devvm_ld32(p + 16);
    s->bools = 0;

    data = s->flags & DEVVM_IRQ_SET_DATA_MASK;
    if ((s->flags & ~(DEVVM_IRQ_SET_DATA_MASK |
                      DEVVM_IRQ_SET_ACTION_MASK_ALL)) ||
        !one_bit(data) ||
        !one_bit(s->flags & DEVVM_IRQ_SET_ACTION_MASK_ALL)) {
        return DEVVM_E_BAD_FLAGS;
    }
    if (s->index >= DEVVM_MAX_IRQ_TYPES || s->count > DEVVM_MAX_IRQS ||
        s->start > DEVVM_MAX_IRQS - s->count) {
        return DEVVM_E_BAD_FIELD;
    }
    switch (data) {
    case DEVVM_IRQ_SET_DATA_NONE:
        if (plen != 20) {
            return DEVVM_E_BAD_FIELD;
        }
        if (nfds) {
            return DEVVM_E_BAD_FDS;
        }
        break;
    case DEVVM_IRQ_SET_DATA_BOOL:
        if (plen - 20 != s->count) {
            return plen - 20 < s->count ? DEVVM_E_TRUNCATED :
                                          DEVVM_E_BAD_FIELD;
        }
        if (nfds) {
            return DEVVM_E_BAD_FDS;
        }
        s->bools = p + 20;
        break;
    default: /* DEVVM_IRQ_SET_DATA_EVENTFD */
        if (plen != 20) {
            return DEVVM_E_BAD_FIELD;
        }
        /* one fd per vector, or none to de-assign */
        if (nfds && nfds != s->count) {
            return DEVVM_E_BAD_FDS;
        }
        break;
    }
    return DEVVM_OK;
}

/*
 * The part REGION_READ/WRITE and DMA_READ/WRITE share: a transfer of
 * @count bytes at @addr, described by a 16-byte fixed part and followed
 * by the data when @with_data.  Sets *data.
 */
static int decode_xfer(const uint8_t *p, uint32_t plen, uint64_t addr,
                       uint64_t count, int with_data, const void **data)
{
    *data = 0;
    if (count > DEVVM_MAX_XFER) {
        return DEVVM_E_TOO_BIG;
    }
    if (!count || !range_ok(addr, count - 1)) {
        return DEVVM_E_BAD_FIELD;
    }
    if (with_data) {
        if (plen - 16 != count) {
            return plen - 16 < count ? DEVVM_E_TRUNCATED : DEVVM_E_BAD_FIELD;
        }
        *data = p + 16;
    } else if (plen != 16) {
        return DEVVM_E_BAD_FIELD;
    }
    return DEVVM_OK;
}

/* REGION_READ/WRITE: data present when @with_data. */
static int decode_region_rw(const uint8_t *p, uint32_t plen, int with_data,
                            struct devvm_region_rw *rw)
{
    if (plen < 16) {
        return DEVVM_E_TRUNCATED;
    }
    rw->offset = devvm_ld64(p);
    rw->region = devvm_ld32(p + 8);
    rw->count = devvm_ld32(p + 12);
    return decode_xfer(p, plen, rw->offset, rw->count, with_data, &rw->data);
}

static int decode_dma_rw(const uint8_t *p, uint32_t plen, int with_data,
                         int short_reply, struct devvm_dma_rw *rw)
{
    /* The DMA_WRITE reply is 12 bytes in the vfio-user spec (a 4-byte
     * count), 16 in libvfio-user, empty from QEMU 10.2: accept all. */
    if (short_reply && plen == 0) {
        /* QEMU 10.2's vfio-user client answers with the header alone */
        rw->addr = 0;
        rw->count = 0;
        rw->data = 0;
        return DEVVM_OK;
    }
    if (short_reply && plen == 12) {
        rw->addr = devvm_ld64(p);
        rw->count = devvm_ld32(p + 8);
        rw->data = 0;
        return rw->count <= DEVVM_MAX_XFER ? DEVVM_OK : DEVVM_E_TOO_BIG;
    }
    if (plen < 16) {
        return DEVVM_E_TRUNCATED;
    }
    rw->addr = devvm_ld64(p);
    rw->count = devvm_ld64(p + 8);
    return decode_xfer(p, plen, rw->addr, rw->count, with_data, &rw->data);
}

void devvm_write_multi_get(const struct devvm_write_multi *wm, uint32_t i,
                           struct devvm_write_one *out)
{
    const uint8_t *e = (const uint8_t *)wm->wrs + DEVVM_WRITE_ONE_SIZE * i;

    out->offset = devvm_ld64(e);
    out->region = devvm_ld32(e + 8);
    out->count = devvm_ld32(e + 12);
    __builtin_memcpy(out->data, e + 16, 8);
}

static int decode_write_multi(const uint8_t *p, uint32_t plen,
                              struct devvm_write_multi *wm)
{
    uint32_t i;

    if (plen < 8) {
        return DEVVM_E_TRUNCATED;
    }
    wm->wr_cnt = devvm_ld64(p);
    wm->wrs = p + 8;
    if (wm->wr_cnt > DEVVM_MAX_WRITE_MULTI) {
        return DEVVM_E_TOO_BIG;
    }
    if (!wm->wr_cnt) {
        return DEVVM_E_BAD_FIELD;
    }
    if (plen - 8 != wm->wr_cnt * DEVVM_WRITE_ONE_SIZE) {
        return plen - 8 < wm->wr_cnt * DEVVM_WRITE_ONE_SIZE ?
               DEVVM_E_TRUNCATED : DEVVM_E_BAD_FIELD;
    }
    for (i = 0; i < wm->wr_cnt; i++) {
        struct devvm_write_one one;

        devvm_write_multi_get(wm, i, &one);
        if (!one.count || one.count > 8 || !range_ok(one.offset, one.count)) {
            return DEVVM_E_BAD_FIELD;
        }
    }
    return DEVVM_OK;
}

static int decode_ring_attach(const uint8_t *p, uint32_t plen, int reply,
                              uint32_t nfds, struct devvm_ring_attach *a)
{
    if (plen < 32) {
        return DEVVM_E_TRUNCATED;
    }
    if (plen > 32) {
        return DEVVM_E_BAD_FIELD;
    }
    a->argsz = devvm_ld32(p);
    a->flags = devvm_ld32(p + 4);
    a->channel = devvm_ld32(p + 8);
    a->depth = devvm_ld32(p + 12);
    a->shm_size = devvm_ld64(p + 16);
    a->generation = devvm_ld32(p + 24);
    a->reserved = devvm_ld32(p + 28);
    if (a->flags & ~DEVVM_ATTACH_F_EVENTS) {
        return DEVVM_E_BAD_FLAGS;
    }
    if (!reply) {
        /* the request only says what it wants in flags */
        if (a->channel || a->depth || a->shm_size || a->generation ||
            a->reserved) {
            return DEVVM_E_BAD_FIELD;
        }
        return nfds ? DEVVM_E_BAD_FDS : DEVVM_OK;
    }
    if (nfds != DEVVM_ATTACH_FDS) {
        return DEVVM_E_BAD_FDS;
    }
    if (a->channel >= DEVVM_MAX_CHANNELS || !is_pow2(a->depth) ||
        a->depth < DEVVM_MIN_DEPTH || a->depth > DEVVM_MAX_DEPTH ||
        a->shm_size < DEVVM_SHM_HEADER_SIZE) {
        return DEVVM_E_BAD_FIELD;
    }
    return DEVVM_OK;
}

static int decode_event(const uint8_t *p, uint32_t plen,
                        struct devvm_event *ev)
{
    uint32_t i, rlen;

    if (plen < 17) {
        return DEVVM_E_TRUNCATED;
    }
    ev->type = devvm_ld32(p);
    ev->state = devvm_ld32(p + 4);
    ev->generation = devvm_ld32(p + 8);
    ev->reserved = devvm_ld32(p + 12);
    rlen = plen - 16;
    if (rlen > DEVVM_MAX_REASON) {
        return DEVVM_E_TOO_BIG;
    }
    if (ev->type != DEVVM_EVENT_STATE || ev->state > DEVVM_STATE_STOPPED ||
        ev->reserved || p[plen - 1] != 0) {
        return DEVVM_E_BAD_FIELD;
    }
    for (i = 16; i < plen - 1; i++) {
        if (p[i] == 0) {
            return DEVVM_E_BAD_FIELD;
        }
    }
    ev->reason = (const char *)p + 16;
    ev->reason_len = rlen - 1;
    return DEVVM_OK;
}

int devvm_msg_decode(const void *buf, size_t len, uint32_t nfds,
                     struct devvm_msg *m)
{
    const uint8_t *p = (const uint8_t *)buf + DEVVM_HDR_SIZE;
    uint32_t plen;
    int reply, ret;

    ret = devvm_hdr_decode(buf, len, DEVVM_MAX_MSG_SIZE, &m->hdr);
    if (ret) {
        return ret;
    }
    if (len < m->hdr.size) {
        return DEVVM_E_TRUNCATED;
    }
    if (len > m->hdr.size) {
        return DEVVM_E_BAD_FIELD;
    }
    if (nfds > DEVVM_MAX_FDS) {
        return DEVVM_E_BAD_FDS;
    }
    m->nfds = nfds;
    plen = m->hdr.size - DEVVM_HDR_SIZE;
    reply = (m->hdr.flags & DEVVM_HDR_F_TYPE_MASK) == DEVVM_HDR_F_REPLY;

    if (reply && (m->hdr.flags & DEVVM_HDR_F_ERROR)) {
        /* an error reply is the header alone: nothing else is looked at */
        return nfds ? DEVVM_E_BAD_FDS : DEVVM_OK;
    }

    switch (m->hdr.cmd) {
    case DEVVM_CMD_VERSION:
        return decode_version(p, plen, nfds, &m->u.version);
    case DEVVM_CMD_DMA_MAP:
        if (reply) {
            return nfds ? DEVVM_E_BAD_FDS : plen ? DEVVM_E_BAD_FIELD :
                                                  DEVVM_OK;
        }
        return decode_dma_map(p, plen, nfds, &m->u.dma_map);
    case DEVVM_CMD_DMA_UNMAP:
        if (nfds) {
            return DEVVM_E_BAD_FDS;
        }
        if (reply && plen == 0) {
            return DEVVM_OK;
        }
        return decode_dma_unmap(p, plen, &m->u.dma_unmap);
    case DEVVM_CMD_DEVICE_GET_INFO:
        if (nfds) {
            return DEVVM_E_BAD_FDS;
        }
        return decode_device_info(p, plen, reply, &m->u.dev_info);
    case DEVVM_CMD_DEVICE_GET_REGION_INFO:
        return decode_region_info(p, plen, reply, nfds, &m->u.region_info);
    case DEVVM_CMD_DEVICE_GET_IRQ_INFO:
        if (nfds) {
            return DEVVM_E_BAD_FDS;
        }
        return decode_irq_info(p, plen, reply, &m->u.irq_info);
    case DEVVM_CMD_DEVICE_SET_IRQS:
        if (reply) {
            return nfds ? DEVVM_E_BAD_FDS : plen ? DEVVM_E_BAD_FIELD :
                                                  DEVVM_OK;
        }
        return decode_irq_set(p, plen, nfds, &m->u.irq_set);
    case DEVVM_CMD_REGION_READ:
    case DEVVM_CMD_REGION_WRITE:
        if (nfds) {
            return DEVVM_E_BAD_FDS;
        }
        /* data travels in the READ reply and the WRITE request */
        return decode_region_rw(p, plen,
                                reply == (m->hdr.cmd == DEVVM_CMD_REGION_READ),
                                &m->u.region_rw);
    case DEVVM_CMD_DMA_READ:
    case DEVVM_CMD_DMA_WRITE:
        if (nfds) {
            return DEVVM_E_BAD_FDS;
        }
        return decode_dma_rw(p, plen,
                             reply == (m->hdr.cmd == DEVVM_CMD_DMA_READ),
                             reply && m->hdr.cmd == DEVVM_CMD_DMA_WRITE,
                             &m->u.dma_rw);
    case DEVVM_CMD_DEVICE_RESET:
        if (nfds) {
            return DEVVM_E_BAD_FDS;
        }
        return plen ? DEVVM_E_BAD_FIELD : DEVVM_OK;
    case DEVVM_CMD_REGION_WRITE_MULTI:
        if (nfds) {
            return DEVVM_E_BAD_FDS;
        }
        if (reply) {
            if (plen != 8) {
                return plen < 8 ? DEVVM_E_TRUNCATED : DEVVM_E_BAD_FIELD;
            }
            m->u.write_multi.wr_cnt = devvm_ld64(p);
            m->u.write_multi.wrs = 0;
            return DEVVM_OK;
        }
        return decode_write_multi(p, plen, &m->u.write_multi);
    case DEVVM_CMD_RING_ATTACH:
        return decode_ring_attach(p, plen, reply, nfds, &m->u.ring_attach);
    case DEVVM_CMD_RING_DETACH:
        if (nfds) {
            return DEVVM_E_BAD_FDS;
        }
        if (reply && plen == 0) {
            return DEVVM_OK;
        }
        if (plen != 8) {
            return plen < 8 ? DEVVM_E_TRUNCATED : DEVVM_E_BAD_FIELD;
        }
        m->u.ring_detach.channel = devvm_ld32(p);
        m->u.ring_detach.reserved = devvm_ld32(p + 4);
        return m->u.ring_detach.channel < DEVVM_MAX_CHANNELS &&
               !m->u.ring_detach.reserved ? DEVVM_OK : DEVVM_E_BAD_FIELD;
    case DEVVM_CMD_EVENT:
        /* a notification: never replied to */
        if (reply || !(m->hdr.flags & DEVVM_HDR_F_NO_REPLY)) {
            return DEVVM_E_BAD_FLAGS;
        }
        if (nfds) {
            return DEVVM_E_BAD_FDS;
        }
        return decode_event(p, plen, &m->u.event);
    }
    return DEVVM_E_UNKNOWN_CMD;
}

/* ---- encoders ------------------------------------------------------------ */

/* Header for a message of @size bytes, after checking it fits. */
static int begin(void *buf, size_t buf_size, uint64_t size, uint16_t id,
                 uint16_t cmd, uint32_t flags)
{
    if (size > DEVVM_MAX_MSG_SIZE || size > buf_size) {
        return DEVVM_E_TOO_BIG;
    }
    hdr_encode(buf, id, cmd, (uint32_t)size, flags, 0);
    return (int)size;
}

int devvm_encode_hdr_only(void *buf, size_t buf_size, uint16_t id,
                          uint16_t cmd, uint32_t flags, uint32_t error)
{
    if (buf_size < DEVVM_HDR_SIZE) {
        return DEVVM_E_TOO_BIG;
    }
    hdr_encode(buf, id, cmd, DEVVM_HDR_SIZE, flags, error);
    return DEVVM_HDR_SIZE;
}

int devvm_encode_version(void *buf, size_t buf_size, uint16_t id,
                         uint32_t flags, const struct devvm_version *v)
{
    uint8_t *p = (uint8_t *)buf + DEVVM_HDR_SIZE;
    uint64_t jlen = v->caps ? (uint64_t)v->caps_len + 1 : 0;
    int size;

    if (v->caps_len > DEVVM_MAX_CAPS_JSON) {
        return DEVVM_E_TOO_BIG;
    }
    size = begin(buf, buf_size, DEVVM_HDR_SIZE + 4 + jlen, id,
                 DEVVM_CMD_VERSION, flags);
    if (size < 0) {
        return size;
    }
    devvm_st16(p, v->major);
    devvm_st16(p + 2, v->minor);
    if (jlen) {
        __builtin_memcpy(p + 4, v->caps, v->caps_len);
        p[4 + v->caps_len] = 0;
    }
    return size;
}

int devvm_encode_dma_map(void *buf, size_t buf_size, uint16_t id,
                         uint32_t flags, const struct devvm_dma_map *m)
{
    uint8_t *p = (uint8_t *)buf + DEVVM_HDR_SIZE;
    int size = begin(buf, buf_size, DEVVM_HDR_SIZE + 32, id,
                     DEVVM_CMD_DMA_MAP, flags);

    if (size < 0) {
        return size;
    }
    devvm_st32(p, m->argsz);
    devvm_st32(p + 4, m->flags);
    devvm_st64(p + 8, m->offset);
    devvm_st64(p + 16, m->addr);
    devvm_st64(p + 24, m->size);
    return size;
}

int devvm_encode_dma_unmap(void *buf, size_t buf_size, uint16_t id,
                           uint32_t flags, const struct devvm_dma_unmap *u)
{
    uint8_t *p = (uint8_t *)buf + DEVVM_HDR_SIZE;
    int size = begin(buf, buf_size, DEVVM_HDR_SIZE + 24, id,
                     DEVVM_CMD_DMA_UNMAP, flags);

    if (size < 0) {
        return size;
    }
    devvm_st32(p, u->argsz);
    devvm_st32(p + 4, u->flags);
    devvm_st64(p + 8, u->addr);
    devvm_st64(p + 16, u->size);
    return size;
}

int devvm_encode_device_info(void *buf, size_t buf_size, uint16_t id,
                             uint32_t flags,
                             const struct devvm_device_info *d)
{
    uint8_t *p = (uint8_t *)buf + DEVVM_HDR_SIZE;
    int size = begin(buf, buf_size, DEVVM_HDR_SIZE + 16, id,
                     DEVVM_CMD_DEVICE_GET_INFO, flags);

    if (size < 0) {
        return size;
    }
    devvm_st32(p, d->argsz);
    devvm_st32(p + 4, d->flags);
    devvm_st32(p + 8, d->num_regions);
    devvm_st32(p + 12, d->num_irqs);
    return size;
}

int devvm_encode_region_info(void *buf, size_t buf_size, uint16_t id,
                             uint32_t flags,
                             const struct devvm_region_info *r)
{
    uint8_t *p = (uint8_t *)buf + DEVVM_HDR_SIZE;
    int reply = (flags & DEVVM_HDR_F_TYPE_MASK) == DEVVM_HDR_F_REPLY;
    uint32_t full = DEVVM_REGION_INFO_SIZE, rflags = r->flags;
    uint32_t cap_offset = r->cap_offset, plen, i;
    int size;

    if (r->nr_areas > DEVVM_MAX_SPARSE_AREAS) {
        return DEVVM_E_TOO_BIG;
    }
    if (reply && r->nr_areas) {
        full += 16 + 16 * r->nr_areas;
    }
    /*
     * A reply carries its capabilities only if the request's argsz
     * (r->argsz) leaves room for them, and says CAPS only then (QEMU's
     * client refuses CAPS without a capability, as libvfio-user never
     * sends it); argsz always says the full size.
     */
    plen = !reply ? DEVVM_REGION_INFO_SIZE :
           r->argsz >= full ? full : DEVVM_REGION_INFO_SIZE;
    if (plen > DEVVM_REGION_INFO_SIZE) {
        rflags |= DEVVM_REGION_F_CAPS;
    }
    if (reply) {
        cap_offset = plen > DEVVM_REGION_INFO_SIZE ?
                     DEVVM_REGION_INFO_SIZE : 0;
    }
    size = begin(buf, buf_size, DEVVM_HDR_SIZE + plen, id,
                 DEVVM_CMD_DEVICE_GET_REGION_INFO, flags);
    if (size < 0) {
        return size;
    }
    devvm_st32(p, reply ? full : r->argsz);
    devvm_st32(p + 4, rflags);
    devvm_st32(p + 8, r->index);
    devvm_st32(p + 12, cap_offset);
    devvm_st64(p + 16, r->size);
    devvm_st64(p + 24, r->offset);
    if (plen > DEVVM_REGION_INFO_SIZE) {
        uint8_t *c = p + DEVVM_REGION_INFO_SIZE;

        devvm_st16(c, DEVVM_REGION_CAP_SPARSE_MMAP);
        devvm_st16(c + 2, 1);
        devvm_st32(c + 4, 0);
        devvm_st32(c + 8, r->nr_areas);
        devvm_st32(c + 12, 0);
        for (i = 0; i < r->nr_areas; i++) {
            devvm_st64(c + 16 + 16 * i, r->areas[i].offset);
            devvm_st64(c + 24 + 16 * i, r->areas[i].size);
        }
    }
    return size;
}

int devvm_encode_irq_info(void *buf, size_t buf_size, uint16_t id,
                          uint32_t flags, const struct devvm_irq_info *q)
{
    uint8_t *p = (uint8_t *)buf + DEVVM_HDR_SIZE;
    int size = begin(buf, buf_size, DEVVM_HDR_SIZE + 16, id,
                     DEVVM_CMD_DEVICE_GET_IRQ_INFO, flags);

    if (size < 0) {
        return size;
    }
    devvm_st32(p, q->argsz);
    devvm_st32(p + 4, q->flags);
    devvm_st32(p + 8, q->index);
    devvm_st32(p + 12, q->count);
    return size;
}

int devvm_encode_irq_set(void *buf, size_t buf_size, uint16_t id,
                         uint32_t flags, const struct devvm_irq_set *s)
{
    uint8_t *p = (uint8_t *)buf + DEVVM_HDR_SIZE;
    uint32_t nbools = (s->flags & DEVVM_IRQ_SET_DATA_BOOL) ? s->count : 0;
    int size;

    if (nbools && !s->bools) {
        return -DEVVM_EINVAL;
    }
    size = begin(buf, buf_size, (uint64_t)DEVVM_HDR_SIZE + 20 + nbools, id,
                 DEVVM_CMD_DEVICE_SET_IRQS, flags);
    if (size < 0) {
        return size;
    }
    /* argsz is the request's own payload size here */
    devvm_st32(p, 20 + nbools);
    devvm_st32(p + 4, s->flags);
    devvm_st32(p + 8, s->index);
    devvm_st32(p + 12, s->start);
    devvm_st32(p + 16, s->count);
    if (nbools) {
        __builtin_memcpy(p + 20, s->bools, nbools);
    }
    return size;
}

int devvm_encode_region_rw(void *buf, size_t buf_size, uint16_t id,
                           uint16_t cmd, uint32_t flags,
                           const struct devvm_region_rw *rw)
{
    uint8_t *p = (uint8_t *)buf + DEVVM_HDR_SIZE;
    uint32_t dlen = rw->data ? rw->count : 0;
    int size;

    if (cmd != DEVVM_CMD_REGION_READ && cmd != DEVVM_CMD_REGION_WRITE) {
        return -DEVVM_EINVAL;
    }
    size = begin(buf, buf_size, (uint64_t)DEVVM_HDR_SIZE + 16 + dlen, id,
                 cmd, flags);
    if (size < 0) {
        return size;
    }
    devvm_st64(p, rw->offset);
    devvm_st32(p + 8, rw->region);
    devvm_st32(p + 12, rw->count);
    if (dlen) {
        __builtin_memcpy(p + 16, rw->data, dlen);
    }
    return size;
}

int devvm_encode_dma_rw(void *buf, size_t buf_size, uint16_t id,
                        uint16_t cmd, uint32_t flags,
                        const struct devvm_dma_rw *rw)
{
    uint8_t *p = (uint8_t *)buf + DEVVM_HDR_SIZE;
    uint64_t dlen = rw->data ? rw->count : 0;
    int size;

    if (cmd != DEVVM_CMD_DMA_READ && cmd != DEVVM_CMD_DMA_WRITE) {
        return -DEVVM_EINVAL;
    }
    if (dlen > DEVVM_MAX_XFER) {
        return DEVVM_E_TOO_BIG;
    }
    size = begin(buf, buf_size, DEVVM_HDR_SIZE + 16 + dlen, id, cmd, flags);
    if (size < 0) {
        return size;
    }
    devvm_st64(p, rw->addr);
    devvm_st64(p + 8, rw->count);
    if (dlen) {
        __builtin_memcpy(p + 16, rw->data, dlen);
    }
    return size;
}

int devvm_encode_write_multi(void *buf, size_t buf_size, uint16_t id,
                             uint32_t flags,
                             const struct devvm_write_one *wrs,
                             uint32_t wr_cnt)
{
    uint8_t *p = (uint8_t *)buf + DEVVM_HDR_SIZE;
    uint32_t i;
    int size;

    if (!wr_cnt || wr_cnt > DEVVM_MAX_WRITE_MULTI) {
        return -DEVVM_EINVAL;
    }
    size = begin(buf, buf_size,
                 DEVVM_HDR_SIZE + 8 + (uint64_t)wr_cnt * DEVVM_WRITE_ONE_SIZE,
                 id, DEVVM_CMD_REGION_WRITE_MULTI, flags);
    if (size < 0) {
        return size;
    }
    devvm_st64(p, wr_cnt);
    for (i = 0; i < wr_cnt; i++) {
        uint8_t *e = p + 8 + DEVVM_WRITE_ONE_SIZE * i;

        devvm_st64(e, wrs[i].offset);
        devvm_st32(e + 8, wrs[i].region);
        devvm_st32(e + 12, wrs[i].count);
        __builtin_memcpy(e + 16, wrs[i].data, 8);
    }
    return size;
}

int devvm_encode_write_multi_reply(void *buf, size_t buf_size, uint16_t id,
                                   uint64_t wr_cnt)
{
    int size = begin(buf, buf_size, DEVVM_HDR_SIZE + 8, id,
                     DEVVM_CMD_REGION_WRITE_MULTI, DEVVM_HDR_F_REPLY);

    if (size < 0) {
        return size;
    }
    devvm_st64((uint8_t *)buf + DEVVM_HDR_SIZE, wr_cnt);
    return size;
}

int devvm_encode_ring_attach(void *buf, size_t buf_size, uint16_t id,
                             uint32_t flags,
                             const struct devvm_ring_attach *a)
{
    uint8_t *p = (uint8_t *)buf + DEVVM_HDR_SIZE;
    int size = begin(buf, buf_size, DEVVM_HDR_SIZE + 32, id,
                     DEVVM_CMD_RING_ATTACH, flags);

    if (size < 0) {
        return size;
    }
    devvm_st32(p, a->argsz);
    devvm_st32(p + 4, a->flags);
    devvm_st32(p + 8, a->channel);
    devvm_st32(p + 12, a->depth);
    devvm_st64(p + 16, a->shm_size);
    devvm_st32(p + 24, a->generation);
    devvm_st32(p + 28, 0);
    return size;
}

int devvm_encode_ring_detach(void *buf, size_t buf_size, uint16_t id,
                             uint32_t flags,
                             const struct devvm_ring_detach *d)
{
    uint8_t *p = (uint8_t *)buf + DEVVM_HDR_SIZE;
    int size = begin(buf, buf_size, DEVVM_HDR_SIZE + 8, id,
                     DEVVM_CMD_RING_DETACH, flags);

    if (size < 0) {
        return size;
    }
    devvm_st32(p, d->channel);
    devvm_st32(p + 4, 0);
    return size;
}

int devvm_encode_event(void *buf, size_t buf_size, uint16_t id,
                       const struct devvm_event *ev)
{
    uint8_t *p = (uint8_t *)buf + DEVVM_HDR_SIZE;
    uint32_t rlen = 0;
    int size;

    /* the reason is cut to DEVVM_MAX_REASON - 1 bytes, at a NUL if any */
    if (ev->reason) {
        while (rlen < ev->reason_len && rlen < DEVVM_MAX_REASON - 1 &&
               ev->reason[rlen]) {
            rlen++;
        }
    }
    size = begin(buf, buf_size, DEVVM_HDR_SIZE + 16 + rlen + 1, id,
                 DEVVM_CMD_EVENT, DEVVM_HDR_F_REQUEST | DEVVM_HDR_F_NO_REPLY);
    if (size < 0) {
        return size;
    }
    devvm_st32(p, ev->type);
    devvm_st32(p + 4, ev->state);
    devvm_st32(p + 8, ev->generation);
    devvm_st32(p + 12, 0);
    if (rlen) {
        __builtin_memcpy(p + 16, ev->reason, rlen);
    }
    p[16 + rlen] = 0;
    return size;
}
