/*
 * libdevvm: the vfio-user wire format and devvm's extensions to it.
 *
 * Freestanding: needs only <stdint.h> and <stddef.h>, never allocates.
 * Every field on the wire is a little-endian fixed-width integer; the
 * structures below are the *decoded* host view and are never copied to
 * or from the wire as a whole.  docs/devvm/protocol.rst is the
 * specification this file implements.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef LIBDEVVM_WIRE_H
#define LIBDEVVM_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "libdevvm/errno.h"

/*
 * Errors: every libdevvm function that can fail returns 0 or a negative
 * value, a negative errno or a negative enum devvm_err (libdevvm/errno.h
 * has the rule); devvm_strerror() names both.
 */
/*
 * The library's own failures, below -DEVVM_ERR_BASE so that they never
 * equal a negative errno (libdevvm/errno.h has the rule).  What errno
 * already names (a bad argument, out of memory) is -DEVVM_EINVAL,
 * -DEVVM_ENOMEM.
 */
enum devvm_err {
    DEVVM_OK = 0,
    DEVVM_E_TRUNCATED = -DEVVM_ERR_BASE - 1, /* shorter than its fixed part */
    DEVVM_E_TOO_BIG = -DEVVM_ERR_BASE - 2,  /* size above a declared limit */
    DEVVM_E_BAD_FLAGS = -DEVVM_ERR_BASE - 3, /* reserved or contradictory
                                              * flag bits */
    DEVVM_E_UNKNOWN_CMD = -DEVVM_ERR_BASE - 4, /* command not implemented */
    DEVVM_E_BAD_FDS = -DEVVM_ERR_BASE - 5,  /* wrong number of fds */
    DEVVM_E_BAD_FIELD = -DEVVM_ERR_BASE - 6, /* a field out of its range */
    DEVVM_E_UNKNOWN_ID = -DEVVM_ERR_BASE - 7, /* a reply nobody waits for */
    DEVVM_E_RING_INDEX = -DEVVM_ERR_BASE - 8, /* ring index outside the
                                               * valid window */
    DEVVM_E_RING_SEQ = -DEVVM_ERR_BASE - 9, /* slot sequence != its index */
    DEVVM_E_LIMIT = -DEVVM_ERR_BASE - 10,   /* a table (maps, regions,
                                             * irqs) is full */
    DEVVM_E_VERSION = -DEVVM_ERR_BASE - 11, /* incompatible version or
                                             * capabilities */
    DEVVM_E_JSON = -DEVVM_ERR_BASE - 12,    /* malformed capability JSON */
    DEVVM_E_IO = -DEVVM_ERR_BASE - 13,      /* socket or system call
                                             * failure */
    DEVVM_E_CLOSED = -DEVVM_ERR_BASE - 14,  /* peer closed the connection */
    DEVVM_E_TIMEOUT = -DEVVM_ERR_BASE - 15, /* peer did not answer in time */
    DEVVM_E_AGAIN = -DEVVM_ERR_BASE - 16,   /* ring empty or full: again */
    DEVVM_E_STALE = -DEVVM_ERR_BASE - 17,   /* device side restarted */
    DEVVM_E_STATE = -DEVVM_ERR_BASE - 18,   /* device not READY */
    DEVVM_E_PEER = -DEVVM_ERR_BASE - 19,    /* peer answered with an error
                                             * reply */
};

/* Is @ret a negative errno (and not a devvm_err)? */
static inline int devvm_is_errno(int ret)
{
    return ret < 0 && ret > -DEVVM_ERR_BASE;
}

const char *devvm_strerror(int err);

/* ---- vfio-user: header ------------------------------------------------ */

#define DEVVM_HDR_SIZE          16u

enum devvm_cmd {
    DEVVM_CMD_VERSION = 1,
    DEVVM_CMD_DMA_MAP = 2,
    DEVVM_CMD_DMA_UNMAP = 3,
    DEVVM_CMD_DEVICE_GET_INFO = 4,
    DEVVM_CMD_DEVICE_GET_REGION_INFO = 5,
    DEVVM_CMD_DEVICE_GET_REGION_IO_FDS = 6,
    DEVVM_CMD_DEVICE_GET_IRQ_INFO = 7,
    DEVVM_CMD_DEVICE_SET_IRQS = 8,
    DEVVM_CMD_REGION_READ = 9,
    DEVVM_CMD_REGION_WRITE = 10,
    DEVVM_CMD_DMA_READ = 11,
    DEVVM_CMD_DMA_WRITE = 12,
    DEVVM_CMD_DEVICE_RESET = 13,
    DEVVM_CMD_DIRTY_PAGES = 14,
    DEVVM_CMD_REGION_WRITE_MULTI = 15,
    DEVVM_CMD_DEVICE_FEATURE = 16,
    DEVVM_CMD_MIG_DATA_READ = 17,
    DEVVM_CMD_MIG_DATA_WRITE = 18,
    /* devvm extension, only after both sides advertised "devvm" */
    DEVVM_CMD_RING_ATTACH = 0x4401,
    DEVVM_CMD_RING_DETACH = 0x4402,
    DEVVM_CMD_EVENT = 0x4403,
};

/* header flags */
#define DEVVM_HDR_F_TYPE_MASK   0x0fu
#define DEVVM_HDR_F_REQUEST     0x00u
#define DEVVM_HDR_F_REPLY       0x01u
#define DEVVM_HDR_F_NO_REPLY    0x10u
#define DEVVM_HDR_F_ERROR       0x20u

struct devvm_hdr {
    uint16_t id;
    uint16_t cmd;
    uint32_t size;              /* whole message, header included */
    uint32_t flags;
    uint32_t error;             /* errno value in an error reply */
};

/* ---- limits (docs/devvm/protocol.rst, "Limits") ------------------------ */

#define DEVVM_MAX_MSG_SIZE      (DEVVM_HDR_SIZE + 64u + DEVVM_MAX_XFER)
#define DEVVM_MAX_XFER          (1024u * 1024u)  /* max_data_xfer_size */
#define DEVVM_MAX_FDS           16u     /* max_msg_fds, either direction */
#define DEVVM_MAX_DMA_MAPS      1024u   /* max_dma_maps we advertise */
#define DEVVM_MAX_REGIONS       16u     /* num_regions accepted */
#define DEVVM_MAX_IRQ_TYPES     8u      /* num_irqs accepted */
#define DEVVM_MAX_IRQS          2048u   /* count in one IRQ index (MSI-X) */
#define DEVVM_MAX_SPARSE_AREAS  8u      /* sparse mmap areas per region */
#define DEVVM_MAX_CAPS_JSON     4096u   /* VERSION capability string */
#define DEVVM_MAX_WRITE_MULTI   200u    /* wr_cnt in REGION_WRITE_MULTI */

/* ---- vfio-user: message payloads (host view) --------------------------- */

#define DEVVM_VFIO_USER_MAJOR         0u
#define DEVVM_VFIO_USER_MINOR         0u

struct devvm_version {
    uint16_t major;
    uint16_t minor;
    const char *caps;           /* NUL-terminated JSON inside the buffer,
                                 * or NULL when absent */
    uint32_t caps_len;          /* strlen(caps) */
};

#define DEVVM_DMA_F_READ    0x1u
#define DEVVM_DMA_F_WRITE   0x2u

struct devvm_dma_map {
    uint32_t argsz;
    uint32_t flags;
    uint64_t offset;            /* into the fd, when one is passed */
    uint64_t addr;
    uint64_t size;
};

#define DEVVM_DMA_UNMAP_F_ALL   0x2u

struct devvm_dma_unmap {
    uint32_t argsz;
    uint32_t flags;
    uint64_t addr;
    uint64_t size;
};

#define DEVVM_DEVICE_F_RESET     0x1u
#define DEVVM_DEVICE_F_PCI       0x2u

struct devvm_device_info {
    uint32_t argsz;
    uint32_t flags;
    uint32_t num_regions;
    uint32_t num_irqs;
};

/* PCI region and IRQ indexes (vfio's VFIO_PCI_*_INDEX) */
enum {
    DEVVM_PCI_BAR0_REGION = 0,
    DEVVM_PCI_BAR5_REGION = 5,
    DEVVM_PCI_ROM_REGION = 6,
    DEVVM_PCI_CONFIG_REGION = 7,
    DEVVM_PCI_VGA_REGION = 8,
    DEVVM_PCI_NUM_REGIONS = 9,
};
enum {
    DEVVM_PCI_INTX_IRQ = 0,
    DEVVM_PCI_MSI_IRQ = 1,
    DEVVM_PCI_MSIX_IRQ = 2,
    DEVVM_PCI_ERR_IRQ = 3,
    DEVVM_PCI_REQ_IRQ = 4,
    DEVVM_PCI_NUM_IRQS = 5,
};

#define DEVVM_REGION_F_READ      0x1u
#define DEVVM_REGION_F_WRITE     0x2u
#define DEVVM_REGION_F_MMAP      0x4u
#define DEVVM_REGION_F_CAPS      0x8u
#define DEVVM_REGION_CAP_SPARSE_MMAP 1u

#define DEVVM_REGION_INFO_SIZE  32u     /* fixed part of the payload */

struct devvm_sparse_area {
    uint64_t offset;
    uint64_t size;
};

struct devvm_region_info {
    uint32_t argsz;
    uint32_t flags;
    uint32_t index;
    uint32_t cap_offset;
    uint64_t size;
    uint64_t offset;
    /* decoded from the sparse mmap capability, if present */
    uint32_t nr_areas;
    struct devvm_sparse_area areas[DEVVM_MAX_SPARSE_AREAS];
};

/*
 * The checks of an access to @region of a device with @nr_regions
 * @regions: the region exists, has the READ (@write: WRITE) flag, and
 * [@offset, @offset + @count) lies inside it.  0, -DEVVM_EINVAL or
 * -DEVVM_EPERM.  Every server (socket and ring) applies them.
 */
int devvm_region_access_check(const struct devvm_region_info *regions,
                              uint32_t nr_regions, uint32_t region,
                              uint64_t offset, uint64_t count, int write);

#define DEVVM_IRQ_INFO_F_EVENTFD     0x1u
#define DEVVM_IRQ_INFO_F_MASKABLE    0x2u
#define DEVVM_IRQ_INFO_F_AUTOMASKED  0x4u
#define DEVVM_IRQ_INFO_F_NORESIZE    0x8u

struct devvm_irq_info {
    uint32_t argsz;
    uint32_t flags;
    uint32_t index;
    uint32_t count;
};

#define DEVVM_IRQ_SET_DATA_NONE      0x01u
#define DEVVM_IRQ_SET_DATA_BOOL      0x02u
#define DEVVM_IRQ_SET_DATA_EVENTFD   0x04u
#define DEVVM_IRQ_SET_DATA_MASK      0x07u
#define DEVVM_IRQ_SET_ACTION_MASK    0x08u
#define DEVVM_IRQ_SET_ACTION_UNMASK  0x10u
#define DEVVM_IRQ_SET_ACTION_TRIGGER 0x20u
#define DEVVM_IRQ_SET_ACTION_MASK_ALL 0x38u

struct devvm_irq_set {
    uint32_t argsz;
    uint32_t flags;
    uint32_t index;
    uint32_t start;
    uint32_t count;
    const uint8_t *bools;       /* count bytes when DATA_BOOL, else NULL */
};

struct devvm_region_rw {
    uint64_t offset;
    uint32_t region;
    uint32_t count;
    const void *data;           /* count bytes, or NULL when none carried */
};

struct devvm_dma_rw {
    uint64_t addr;
    uint64_t count;
    const void *data;           /* count bytes, or NULL when none carried */
};

#define DEVVM_WRITE_ONE_SIZE    24u

struct devvm_write_one {
    uint64_t offset;
    uint32_t region;
    uint32_t count;             /* 1..8 */
    uint8_t data[8];
};

struct devvm_write_multi {
    uint64_t wr_cnt;
    const void *wrs;            /* wr_cnt encoded entries; read them with
                                 * devvm_write_multi_get() */
};

/* ---- devvm extension payloads ------------------------------------------ */

/*
 * RING_ATTACH request: the client asks for a ring channel.
 * Reply: where the channel lives in the shared memory; fds, in order:
 * [0] shared memory, [1] kick (client signals the device),
 * [2] call (device signals the client).
 */
#define DEVVM_ATTACH_FDS        3u
#define DEVVM_ATTACH_F_EVENTS   0x1u    /* client consumes the device-
                                         * initiated ring pair */

struct devvm_ring_attach {
    uint32_t argsz;
    uint32_t flags;
    uint32_t channel;           /* reply: channel index in the header */
    uint32_t depth;             /* reply: slots per ring */
    uint64_t shm_size;          /* reply: size to mmap */
    uint32_t generation;        /* reply: device generation attached to */
    uint32_t reserved;
};

struct devvm_ring_detach {
    uint32_t channel;
    uint32_t reserved;
};

/* EVENT (server to client, NO_REPLY): a lifecycle change. */
enum devvm_event_type {
    DEVVM_EVENT_STATE = 1,      /* state/generation changed */
};

struct devvm_event {
    uint32_t type;
    uint32_t state;             /* enum devvm_dev_state (ring.h) */
    uint32_t generation;
    uint32_t reserved;
    const char *reason;         /* NUL-terminated text, maybe empty */
    uint32_t reason_len;
};

#define DEVVM_MAX_REASON        128u

/* ---- decoded message --------------------------------------------------- */

struct devvm_msg {
    struct devvm_hdr hdr;
    uint32_t nfds;              /* fds received with the message */
    union {
        struct devvm_version version;
        struct devvm_dma_map dma_map;
        struct devvm_dma_unmap dma_unmap;
        struct devvm_device_info dev_info;
        struct devvm_region_info region_info;
        struct devvm_irq_info irq_info;
        struct devvm_irq_set irq_set;
        struct devvm_region_rw region_rw;
        struct devvm_dma_rw dma_rw;
        struct devvm_write_multi write_multi;
        struct devvm_ring_attach ring_attach;
        struct devvm_ring_detach ring_detach;
        struct devvm_event event;
    } u;
};

/*
 * Decoding.  devvm_hdr_decode() checks a 16-byte header on its own (size
 * within [16, max_size], known type bits): call it before reading the
 * payload so that nothing is read or allocated for an oversized message.
 * devvm_msg_decode() checks a whole message (len == hdr.size) with nfds
 * file descriptors attached and fills @m; pointers in @m point into @buf.
 * A reply with the error flag has no payload and decodes to the header
 * only.
 */
int devvm_hdr_decode(const void *buf, size_t len, uint32_t max_size,
                     struct devvm_hdr *h);
int devvm_msg_decode(const void *buf, size_t len, uint32_t nfds,
                     struct devvm_msg *m);
/* Entry i (0 <= i < wr_cnt) of a decoded REGION_WRITE_MULTI. */
void devvm_write_multi_get(const struct devvm_write_multi *wm, uint32_t i,
                           struct devvm_write_one *out);

/*
 * Encoding.  Each encoder writes a complete message (header included)
 * into buf and returns its size, or DEVVM_E_TOO_BIG when buf_size is too
 * small or the result would exceed DEVVM_MAX_MSG_SIZE.  @flags is the
 * header's flags; a reply echoes the request's id.
 */
int devvm_encode_hdr_only(void *buf, size_t buf_size, uint16_t id,
                          uint16_t cmd, uint32_t flags, uint32_t error);
int devvm_encode_version(void *buf, size_t buf_size, uint16_t id,
                         uint32_t flags, const struct devvm_version *v);
int devvm_encode_dma_map(void *buf, size_t buf_size, uint16_t id,
                         uint32_t flags, const struct devvm_dma_map *p);
int devvm_encode_dma_unmap(void *buf, size_t buf_size, uint16_t id,
                           uint32_t flags, const struct devvm_dma_unmap *p);
int devvm_encode_device_info(void *buf, size_t buf_size, uint16_t id,
                             uint32_t flags,
                             const struct devvm_device_info *p);
/* A reply carries the sparse areas of @p when nr_areas > 0, limited by
 * @p->argsz from the request (argsz in the reply is the full size). */
int devvm_encode_region_info(void *buf, size_t buf_size, uint16_t id,
                             uint32_t flags,
                             const struct devvm_region_info *p);
int devvm_encode_irq_info(void *buf, size_t buf_size, uint16_t id,
                          uint32_t flags, const struct devvm_irq_info *p);
int devvm_encode_irq_set(void *buf, size_t buf_size, uint16_t id,
                         uint32_t flags, const struct devvm_irq_set *p);
/* REGION_READ/WRITE: data is included when p->data is not NULL. */
int devvm_encode_region_rw(void *buf, size_t buf_size, uint16_t id,
                           uint16_t cmd, uint32_t flags,
                           const struct devvm_region_rw *p);
int devvm_encode_dma_rw(void *buf, size_t buf_size, uint16_t id,
                        uint16_t cmd, uint32_t flags,
                        const struct devvm_dma_rw *p);
int devvm_encode_write_multi(void *buf, size_t buf_size, uint16_t id,
                             uint32_t flags,
                             const struct devvm_write_one *wrs,
                             uint32_t wr_cnt);
/* REGION_WRITE_MULTI reply */
int devvm_encode_write_multi_reply(void *buf, size_t buf_size, uint16_t id,
                                   uint64_t wr_cnt);
int devvm_encode_ring_attach(void *buf, size_t buf_size, uint16_t id,
                             uint32_t flags,
                             const struct devvm_ring_attach *p);
int devvm_encode_ring_detach(void *buf, size_t buf_size, uint16_t id,
                             uint32_t flags,
                             const struct devvm_ring_detach *p);
int devvm_encode_event(void *buf, size_t buf_size, uint16_t id,
                       const struct devvm_event *p);

/* Name of a command for messages, "unknown" if none. */
const char *devvm_cmd_name(uint16_t cmd);
/* 1 for a command of vfio-user or of the devvm extension, even one this
 * library does not implement (devvm_msg_decode() -> DEVVM_E_UNKNOWN_CMD):
 * a server answers those with ENOTSUP and keeps the connection, and
 * closes it on a command number nobody defined. */
int devvm_cmd_known(uint16_t cmd);

#endif /* LIBDEVVM_WIRE_H */
