/*
 * libdevvm: the shared-memory ring transport (devvm extension).
 *
 * Freestanding: needs only <stdint.h>, <stddef.h> and the compiler's
 * __atomic builtins; never allocates.  The layout and the memory-ordering
 * rules are specified in docs/devvm/protocol.rst, "Ring transport".
 *
 * Everything in the shared memory is little-endian and may be written by
 * a buggy or hostile peer at any moment: each end keeps its own index in
 * private memory, copies a slot out before looking at it, and checks
 * every index and offset it reads from the shared memory.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef LIBDEVVM_RING_H
#define LIBDEVVM_RING_H

#include <stddef.h>
#include <stdint.h>

#include "libdevvm/wire.h"

/* ---- shared memory header (offset 0, DEVVM_SHM_HEADER_SIZE bytes) ----- */

#define DEVVM_SHM_MAGIC         0x4d565644u     /* "DVVM" little-endian */
#define DEVVM_SHM_LAYOUT_MAJOR  1u
#define DEVVM_SHM_LAYOUT_MINOR  0u
#define DEVVM_SHM_HEADER_SIZE   4096u
#define DEVVM_SLOT_SIZE         64u
#define DEVVM_CACHELINE         64u

/* limits a consumer of a header enforces */
#define DEVVM_MAX_CHANNELS      64u
#define DEVVM_MIN_DEPTH         2u
#define DEVVM_MAX_DEPTH         4096u
#define DEVVM_MAX_DATA_SIZE     (4u * 1024u * 1024u)
#define DEVVM_DESC_OFFSET       1024u   /* device description area */
#define DEVVM_DESC_MAX          (DEVVM_SHM_HEADER_SIZE - DEVVM_DESC_OFFSET)

/* byte offsets of the header fields */
enum {
    DEVVM_SHM_OFF_MAGIC = 0,            /* u32 */
    DEVVM_SHM_OFF_LAYOUT_MAJOR = 4,     /* u16 */
    DEVVM_SHM_OFF_LAYOUT_MINOR = 6,     /* u16 */
    DEVVM_SHM_OFF_HEADER_SIZE = 8,      /* u32 */
    DEVVM_SHM_OFF_NR_CHANNELS = 12,     /* u32 */
    DEVVM_SHM_OFF_SHM_SIZE = 16,        /* u64 */
    DEVVM_SHM_OFF_DEPTH = 24,           /* u32 */
    DEVVM_SHM_OFF_SLOT_SIZE = 28,       /* u32 */
    DEVVM_SHM_OFF_CHANNEL_OFFSET = 32,  /* u64 */
    DEVVM_SHM_OFF_CHANNEL_SIZE = 40,    /* u64 */
    DEVVM_SHM_OFF_DATA_SIZE = 48,       /* u32 */
    DEVVM_SHM_OFF_DESC_SIZE = 52,       /* u32 */
    /* second cache line: written by the device side only */
    DEVVM_SHM_OFF_STATE = 64,           /* u32 */
    DEVVM_SHM_OFF_GENERATION = 68,      /* u32 */
    DEVVM_SHM_OFF_HEARTBEAT = 72,       /* u64 */
    DEVVM_SHM_OFF_FAIL_CODE = 80,       /* u32 */
    DEVVM_SHM_OFF_REASON = 128,         /* char[DEVVM_MAX_REASON] */
};

enum devvm_dev_state {
    DEVVM_STATE_EMPTY = 0,      /* never formatted */
    DEVVM_STATE_BOOTING = 1,
    DEVVM_STATE_READY = 2,
    DEVVM_STATE_FAILED = 3,
    DEVVM_STATE_STOPPED = 4,
};

/* "BOOTING", "READY", ... ("unknown" for anything else). */
const char *devvm_state_name(uint32_t state);

/* The geometry of a formatted shared memory, as read and checked. */
struct devvm_shm_layout {
    uint64_t shm_size;
    uint32_t nr_channels;
    uint32_t depth;
    uint64_t channel_offset;
    uint64_t channel_size;
    uint32_t data_size;
    uint32_t desc_size;
};

/* Bytes needed for @nr_channels channels of @depth-slot rings with a
 * @data_size data area each, or 0 when a parameter is out of range. */
uint64_t devvm_shm_size(uint32_t nr_channels, uint32_t depth,
                        uint32_t data_size);

/*
 * Device side: lay out @mem (size bytes) and zero every ring.  State
 * becomes BOOTING and generation @generation (use the previous value
 * plus one on a restart: devvm_shm_generation() of the old contents).
 */
int devvm_shm_format(void *mem, uint64_t size, uint32_t nr_channels,
                     uint32_t depth, uint32_t data_size,
                     uint32_t generation);

/* Either side: check magic, layout version and geometry against the
 * @size actually mapped; fill @out. */
int devvm_shm_validate(const void *mem, uint64_t size,
                       struct devvm_shm_layout *out);

/* Device side status, published with release ordering. */
void devvm_shm_set_state(void *mem, uint32_t state, uint32_t fail_code,
                         const char *reason);
/* Device side, while READY: move the heartbeat counter on. */
void devvm_shm_heartbeat(void *mem);
/* Either side, acquire loads. */
uint32_t devvm_shm_state(const void *mem);
uint32_t devvm_shm_generation(const void *mem);
uint64_t devvm_shm_heartbeat_count(const void *mem);
/* Copies the NUL-terminated failure reason (at most len - 1 bytes). */
void devvm_shm_reason(const void *mem, char *buf, size_t len);

/* ---- rings ------------------------------------------------------------- */

/* Slot operations (docs/devvm/protocol.rst, "Ring operations") */
enum devvm_op {
    /* request ring, client -> device */
    DEVVM_OP_READ = 1,          /* region, size, addr: completes with data */
    DEVVM_OP_WRITE = 2,         /* region, size, addr, data: posted */
    /*
     * device VM control channels only (docs/devvm/device-vm.rst): the
     * gateway opens, resets and closes the instance of a channel pair;
     * each completes with a READ_DONE carrying its tag and a status
     */
    DEVVM_OP_OPEN = 4,
    DEVVM_OP_CLOSE = 5,
    DEVVM_OP_RESET = 6,
    /* data 1: the instance's events go to its data channel; 0: back */
    DEVVM_OP_EVENTS = 7,
    /* completion ring, device -> client */
    DEVVM_OP_READ_DONE = 3,     /* tag, status, data */
    /* event ring, device -> client (device-initiated) */
    DEVVM_OP_DMA_READ = 16,     /* client memory [addr, +len) -> data area
                                 * at aux; completes */
    DEVVM_OP_DMA_WRITE = 17,    /* data area at aux -> client memory;
                                 * completes */
    DEVVM_OP_IRQ = 18,          /* region = IRQ index, addr = vector,
                                 * data = DEVVM_IRQ_*: posted */
    DEVVM_OP_LOG = 19,          /* size bytes of text in text[]: posted */
    /* event completion ring, client -> device */
    DEVVM_OP_DMA_DONE = 20,     /* tag, status */
};

enum {
    DEVVM_IRQ_LOWER = 0,
    DEVVM_IRQ_RAISE = 1,
    DEVVM_IRQ_PULSE = 2,        /* edge: MSI, MSI-X, or a raise+lower */
};

/* slot flags */
#define DEVVM_SLOT_F_MORE       0x1u    /* LOG: continued in the next slot */

#define DEVVM_INLINE_SIZE       16u
#define DEVVM_LOG_TEXT_MAX      48u     /* LOG: bytes 16..63 are text */

/*
 * A slot as the host sees it; devvm_ring_push() encodes it.  status is 0
 * or a positive errno value in a completion.  A LOG slot carries len text
 * bytes in text[] instead of the addr..inline fields.
 */
struct devvm_slot {
    uint32_t seq;               /* stamped by the ring */
    uint16_t op;
    uint16_t flags;
    uint32_t tag;
    uint16_t status;
    uint8_t region;
    uint8_t size;               /* access width 1, 2, 4, 8; LOG: length */
    union {
        struct {
            uint64_t addr;
            uint64_t data;
            uint64_t len;
            uint64_t aux;
            uint8_t inline_data[DEVVM_INLINE_SIZE];
        };
        uint8_t text[DEVVM_LOG_TEXT_MAX];
    };
};

/* slot byte offsets */
enum {
    DEVVM_SLOT_OFF_SEQ = 0,     /* u32 */
    DEVVM_SLOT_OFF_OP = 4,      /* u16 */
    DEVVM_SLOT_OFF_FLAGS = 6,   /* u16 */
    DEVVM_SLOT_OFF_TAG = 8,     /* u32 */
    DEVVM_SLOT_OFF_STATUS = 12, /* u16 */
    DEVVM_SLOT_OFF_REGION = 14, /* u8 */
    DEVVM_SLOT_OFF_SIZE = 15,   /* u8 */
    DEVVM_SLOT_OFF_ADDR = 16,   /* u64 */
    DEVVM_SLOT_OFF_DATA = 24,   /* u64 */
    DEVVM_SLOT_OFF_LEN = 32,    /* u64 */
    DEVVM_SLOT_OFF_AUX = 40,    /* u64 */
    DEVVM_SLOT_OFF_INLINE = 48, /* 16 bytes */
};

/* Ring control block: two cache lines ahead of the slots. */
enum {
    DEVVM_RING_OFF_PROD = 0,            /* u32, written by the producer */
    DEVVM_RING_OFF_CONS = 64,           /* u32, written by the consumer */
    DEVVM_RING_OFF_NEED_WAKEUP = 68,    /* u32, written by the consumer */
    DEVVM_RING_OFF_SLOTS = 128,
};

/* One end of one ring, in private memory. */
struct devvm_ring {
    uint8_t *base;              /* control block in shared memory */
    uint32_t depth;
    uint32_t mask;
    uint32_t local;             /* our index: prod or cons, free-running */
    uint32_t peer;              /* last peer index we read and accepted */
};

/* Bytes one ring takes in the shared memory. */
uint64_t devvm_ring_bytes(uint32_t depth);

/*
 * Attach to an empty ring at @mem (prod == cons, as devvm_shm_format()
 * leaves it): -DEVVM_EINVAL otherwise, since one end cannot tell which
 * index is its own.  devvm_channel_attach() knows the side and also
 * attaches to rings in use.
 */
int devvm_ring_attach(struct devvm_ring *r, void *mem, uint32_t depth);

/*
 * Producer.  devvm_ring_push() copies @s into the next slot, stamps its
 * sequence number and publishes it (store-release of prod).  Returns 0,
 * DEVVM_E_AGAIN when the ring is full, or DEVVM_E_RING_INDEX when the
 * consumer's index is outside [prod - depth, prod].  After one or more
 * pushes, devvm_ring_kick_needed() says whether the consumer asked for a
 * doorbell (full fence, then need_wakeup).
 */
int devvm_ring_push(struct devvm_ring *r, const struct devvm_slot *s);
int devvm_ring_kick_needed(struct devvm_ring *r);
/* Free slots: re-reads and checks cons; 0 when it is out of range.
 * May be too low by the time it returns, never too high. */
uint32_t devvm_ring_space(struct devvm_ring *r);

/*
 * Consumer.  devvm_ring_pop() copies the next slot into @out, checks its
 * sequence number and releases it (store-release of cons).  Returns 0,
 * DEVVM_E_AGAIN when empty, DEVVM_E_RING_INDEX when the producer's index
 * is more than depth ahead (or behind), DEVVM_E_RING_SEQ when the slot's
 * sequence is not the expected index.  Errors are sticky for the caller
 * to act on: the ring is not advanced.
 */
int devvm_ring_pop(struct devvm_ring *r, struct devvm_slot *out);

/*
 * Doorbell suppression.  A polling consumer calls devvm_ring_poll_mode()
 * (need_wakeup = 0, producers do not kick).  Before sleeping on the
 * doorbell it calls devvm_ring_prepare_sleep(): need_wakeup = 1, full
 * fence, re-check.  It returns DEVVM_E_AGAIN when the ring is still empty
 * (sleep now: any later push kicks) or 0 when work arrived meanwhile
 * (need_wakeup is cleared again; keep polling).
 */
void devvm_ring_poll_mode(struct devvm_ring *r);
int devvm_ring_prepare_sleep(struct devvm_ring *r);

/* ---- channels ---------------------------------------------------------- */

enum {
    DEVVM_RING_REQ = 0,         /* client -> device */
    DEVVM_RING_CPL = 1,         /* device -> client */
    DEVVM_RING_EVT = 2,         /* device -> client, device-initiated */
    DEVVM_RING_EVT_CPL = 3,     /* client -> device */
    DEVVM_RINGS_PER_CHANNEL = 4,
};

enum devvm_side {
    DEVVM_SIDE_CLIENT = 0,
    DEVVM_SIDE_DEVICE = 1,
};

struct devvm_channel {
    uint8_t *shm;               /* start of the shared memory */
    uint32_t index;
    uint32_t generation;        /* generation attached to */
    struct devvm_ring ring[DEVVM_RINGS_PER_CHANNEL];
    uint8_t *data;              /* data area */
    uint32_t data_size;
};

/* Set up @ch for @side on channel @index of a validated layout. */
int devvm_channel_attach(struct devvm_channel *ch, void *shm,
                         const struct devvm_shm_layout *l, uint32_t index,
                         enum devvm_side side);
/* 0 while the device is READY in the generation attached to,
 * DEVVM_E_STALE after a restart, DEVVM_E_STATE otherwise. */
int devvm_channel_check(const struct devvm_channel *ch);
/* Check [off, off + len) lies inside the data area. */
int devvm_channel_data_range(const struct devvm_channel *ch, uint64_t off,
                             uint64_t len);

#endif /* LIBDEVVM_RING_H */
