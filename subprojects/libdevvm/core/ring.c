/*
 * libdevvm: the shared-memory ring transport.
 *
 * Freestanding: compiled with -ffreestanding -nostdinc; no libc header and
 * no libc call beyond what the compiler emits for __builtin_memcpy and
 * __builtin_memset.
 *
 * Layout (all fields little-endian):
 *
 *   [0, DEVVM_SHM_HEADER_SIZE)      header page (ring.h, DEVVM_SHM_OFF_*)
 *   channel_offset = HEADER_SIZE    channel 0, then channel 1, ...
 *
 * each channel channel_size bytes (a multiple of 4096) holding four rings
 * of devvm_ring_bytes(depth) = 128 + depth * 64 bytes, in the order REQ,
 * CPL, EVT, EVT_CPL, followed by the data area (data_size bytes, a
 * multiple of 64), the whole rounded up to 4096.  A ring is a control
 * block of two cache lines (prod in the first, written by the producer;
 * cons and need_wakeup in the second, written by the consumer) and then
 * depth slots of 64 bytes.
 *
 * Memory ordering:
 *
 *   producer: writes the slot bytes, then store-release of prod.
 *   consumer: load-acquire of prod, copies the slot out to private
 *             memory, checks its seq against its own cons index, then
 *             store-release of cons (the slot may be reused from then on).
 *   producer: load-acquire of cons before it computes the free space, so
 *             that the consumer's copy-out happens before the slot is
 *             overwritten.
 *
 * Each end keeps the index it owns in struct devvm_ring.local and never
 * reads its own index back from the shared memory (the peer could have
 * scribbled on it).  The peer's index is validated every time it is read:
 * prod - cons, in free-running u32 arithmetic, must be in [0, depth].  An
 * index outside that window is DEVVM_E_RING_INDEX and the ring is not
 * advanced.
 *
 * Doorbell suppression (a Dekker-style handshake; both sides need a full
 * fence between their store and their load):
 *
 *   consumer (prepare_sleep): need_wakeup = 1; seq_cst fence; re-read
 *             prod; sleep only if still empty.
 *   producer (kick_needed):   store-release prod (push); seq_cst fence;
 *             read need_wakeup; kick if set.
 *
 * Either the consumer sees the new prod, or the producer sees
 * need_wakeup = 1 and kicks: a wakeup can not be lost.
 *
 * Device status: set_state writes fail_code and the reason text first and
 * then store-releases state; readers load-acquire state.  The heartbeat is
 * a u64 written only by the device side (relaxed).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "libdevvm/ring.h"

/*
 * GCC warns that ThreadSanitizer does not model atomic_thread_fence.  The
 * two seq_cst fences here (doorbell handshake) only order atomic accesses
 * to need_wakeup and prod, never plain data, so TSan's race detection is
 * not weakened by that; the fence itself is still executed.
 */
#if defined(__SANITIZE_THREAD__) && !defined(__clang__) && __GNUC__ >= 12
#pragma GCC diagnostic ignored "-Wtsan"
#endif

#include "libdevvm/le.h"

#define DEVVM_PAGE_SIZE         4096u

/* ---- small helpers ----------------------------------------------------- */

static int devvm_is_pow2(uint32_t v)
{
    return v != 0 && (v & (v - 1)) == 0;
}

static int devvm_depth_ok(uint32_t depth)
{
    return devvm_is_pow2(depth) && depth >= DEVVM_MIN_DEPTH &&
           depth <= DEVVM_MAX_DEPTH;
}

/* Atomic accesses need natural alignment: the heartbeat is a u64. */
static int devvm_mem_aligned(const void *mem)
{
    return ((uintptr_t)mem & 7u) == 0;
}

static uint64_t devvm_align_up(uint64_t v, uint64_t align)
{
    return (v + align - 1) & ~(align - 1);
}

/*
 * Bytes of one channel, or 0 when a parameter is out of range.  With the
 * limits in ring.h the largest value is about 5.2 MiB, so nothing here
 * can overflow a u64.
 */
static uint64_t devvm_channel_bytes(uint32_t depth, uint32_t data_size)
{
    if (!devvm_depth_ok(depth) || data_size > DEVVM_MAX_DATA_SIZE ||
        data_size % DEVVM_CACHELINE != 0) {
        return 0;
    }
    return devvm_align_up(DEVVM_RINGS_PER_CHANNEL * devvm_ring_bytes(depth) +
                          data_size, DEVVM_PAGE_SIZE);
}

static uint8_t *devvm_ring_prod_ptr(const struct devvm_ring *r)
{
    return r->base + DEVVM_RING_OFF_PROD;
}

static uint8_t *devvm_ring_cons_ptr(const struct devvm_ring *r)
{
    return r->base + DEVVM_RING_OFF_CONS;
}

static uint8_t *devvm_ring_wakeup_ptr(const struct devvm_ring *r)
{
    return r->base + DEVVM_RING_OFF_NEED_WAKEUP;
}

static uint8_t *devvm_ring_slot_ptr(const struct devvm_ring *r,
                                    uint32_t index)
{
    return r->base + DEVVM_RING_OFF_SLOTS +
           (uint64_t)(index & r->mask) * DEVVM_SLOT_SIZE;
}

/* The u64 heartbeat, naturally aligned (mem is 8-byte aligned). */
static uint64_t *devvm_heartbeat_ptr(const void *mem)
{
    return (uint64_t *)((uintptr_t)mem + DEVVM_SHM_OFF_HEARTBEAT);
}

/*
 * The reason text and fail code may be rewritten by the device side while
 * a client reads them: byte-wise relaxed atomics keep that well defined
 * (the acquire load of state orders them for a reader that cares).
 */
static void devvm_store_bytes_relaxed(uint8_t *dst, uint8_t v, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        __atomic_store_n(&dst[i], v, __ATOMIC_RELAXED);
    }
}

/* ---- header ------------------------------------------------------------ */

const char *devvm_state_name(uint32_t state)
{
    switch (state) {
    case DEVVM_STATE_EMPTY:
        return "empty";
    case DEVVM_STATE_BOOTING:
        return "booting";
    case DEVVM_STATE_READY:
        return "ready";
    case DEVVM_STATE_FAILED:
        return "failed";
    case DEVVM_STATE_STOPPED:
        return "stopped";
    default:
        return "unknown";
    }
}

uint64_t devvm_shm_size(uint32_t nr_channels, uint32_t depth,
                        uint32_t data_size)
{
    uint64_t ch;

    if (nr_channels < 1 || nr_channels > DEVVM_MAX_CHANNELS) {
        return 0;
    }
    ch = devvm_channel_bytes(depth, data_size);
    if (ch == 0) {
        return 0;
    }
    /* at most 64 * ~5.2 MiB: no overflow */
    return DEVVM_SHM_HEADER_SIZE + (uint64_t)nr_channels * ch;
}

/* Zero one ring: the indices with atomic stores (a peer may be polling
 * them), the rest of the control block and the slots with memset. */
static void devvm_ring_zero(uint8_t *base, uint32_t depth)
{
    devvm_store_relaxed32(base + DEVVM_RING_OFF_PROD, 0);
    __builtin_memset(base + 4, 0, DEVVM_RING_OFF_CONS - 4);
    devvm_store_relaxed32(base + DEVVM_RING_OFF_CONS, 0);
    devvm_store_relaxed32(base + DEVVM_RING_OFF_NEED_WAKEUP, 0);
    __builtin_memset(base + DEVVM_RING_OFF_NEED_WAKEUP + 4, 0,
                     DEVVM_RING_OFF_SLOTS - DEVVM_RING_OFF_NEED_WAKEUP - 4);
    __builtin_memset(base + DEVVM_RING_OFF_SLOTS, 0,
                     (size_t)depth * DEVVM_SLOT_SIZE);
}

int devvm_shm_format(void *mem, uint64_t size, uint32_t nr_channels,
                     uint32_t depth, uint32_t data_size,
                     uint32_t generation)
{
    uint8_t *p = mem;
    uint64_t need = devvm_shm_size(nr_channels, depth, data_size);
    uint64_t ch_size;
    uint32_t i, j;

    if (!mem || !devvm_mem_aligned(mem) || need == 0 || size < need) {
        return -DEVVM_EINVAL;
    }
    ch_size = devvm_channel_bytes(depth, data_size);

    /*
     * A client may still be attached to the previous generation: make it
     * stop first (state, then magic so that a concurrent validate fails),
     * rewrite everything, and publish generation and magic last.
     */
    devvm_store_release32(p + DEVVM_SHM_OFF_STATE, DEVVM_STATE_BOOTING);
    devvm_store_release32(p + DEVVM_SHM_OFF_MAGIC, 0);

    /* first cache line: geometry (bytes 56..63 reserved, zero) */
    __builtin_memset(p + 4, 0, DEVVM_SHM_OFF_STATE - 4);
    devvm_st16(p + DEVVM_SHM_OFF_LAYOUT_MAJOR, DEVVM_SHM_LAYOUT_MAJOR);
    devvm_st16(p + DEVVM_SHM_OFF_LAYOUT_MINOR, DEVVM_SHM_LAYOUT_MINOR);
    devvm_st32(p + DEVVM_SHM_OFF_HEADER_SIZE, DEVVM_SHM_HEADER_SIZE);
    devvm_st32(p + DEVVM_SHM_OFF_NR_CHANNELS, nr_channels);
    devvm_st64(p + DEVVM_SHM_OFF_SHM_SIZE, need);
    devvm_st32(p + DEVVM_SHM_OFF_DEPTH, depth);
    devvm_st32(p + DEVVM_SHM_OFF_SLOT_SIZE, DEVVM_SLOT_SIZE);
    devvm_st64(p + DEVVM_SHM_OFF_CHANNEL_OFFSET, DEVVM_SHM_HEADER_SIZE);
    devvm_st64(p + DEVVM_SHM_OFF_CHANNEL_SIZE, ch_size);
    devvm_st32(p + DEVVM_SHM_OFF_DATA_SIZE, data_size);
    devvm_st32(p + DEVVM_SHM_OFF_DESC_SIZE, 0);

    /* status line: readers use atomics on these, so do we */
    __atomic_store_n(devvm_heartbeat_ptr(p), 0, __ATOMIC_RELAXED);
    devvm_store_relaxed32(p + DEVVM_SHM_OFF_FAIL_CODE, 0);
    devvm_store_bytes_relaxed(p + DEVVM_SHM_OFF_FAIL_CODE + 4, 0,
                              DEVVM_SHM_OFF_REASON -
                              DEVVM_SHM_OFF_FAIL_CODE - 4);
    devvm_store_bytes_relaxed(p + DEVVM_SHM_OFF_REASON, 0, DEVVM_MAX_REASON);
    /* rest of the header, description area included */
    __builtin_memset(p + DEVVM_SHM_OFF_REASON + DEVVM_MAX_REASON, 0,
                     DEVVM_SHM_HEADER_SIZE - DEVVM_SHM_OFF_REASON -
                     DEVVM_MAX_REASON);

    for (i = 0; i < nr_channels; i++) {
        uint8_t *ch = p + DEVVM_SHM_HEADER_SIZE + (uint64_t)i * ch_size;

        for (j = 0; j < DEVVM_RINGS_PER_CHANNEL; j++) {
            devvm_ring_zero(ch + (uint64_t)j * devvm_ring_bytes(depth),
                            depth);
        }
    }

    devvm_store_release32(p + DEVVM_SHM_OFF_GENERATION, generation);
    devvm_store_release32(p + DEVVM_SHM_OFF_MAGIC, DEVVM_SHM_MAGIC);
    return 0;
}

int devvm_shm_validate(const void *mem, uint64_t size,
                       struct devvm_shm_layout *out)
{
    uint8_t h[DEVVM_CACHELINE];
    uint32_t magic, header_size, nr, depth, slot_size, data_size, desc_size;
    uint64_t shm_size, ch_off, ch_size, need;

    if (!mem || !out || !devvm_mem_aligned(mem)) {
        return -DEVVM_EINVAL;
    }
    if (size < DEVVM_SHM_HEADER_SIZE) {
        return DEVVM_E_TRUNCATED;
    }
    /* pairs with the release store of magic at the end of format */
    magic = devvm_load_acquire32(mem);
    if (magic != DEVVM_SHM_MAGIC) {
        return DEVVM_E_VERSION;
    }
    /* one private copy: every check and the result use the same bytes */
    __builtin_memcpy(h, mem, sizeof(h));
    if (devvm_ld16(h + DEVVM_SHM_OFF_LAYOUT_MAJOR) !=
        DEVVM_SHM_LAYOUT_MAJOR) {
        return DEVVM_E_VERSION;
    }
    /* any minor is accepted: minors only add to reserved space */
    header_size = devvm_ld32(h + DEVVM_SHM_OFF_HEADER_SIZE);
    nr = devvm_ld32(h + DEVVM_SHM_OFF_NR_CHANNELS);
    shm_size = devvm_ld64(h + DEVVM_SHM_OFF_SHM_SIZE);
    depth = devvm_ld32(h + DEVVM_SHM_OFF_DEPTH);
    slot_size = devvm_ld32(h + DEVVM_SHM_OFF_SLOT_SIZE);
    ch_off = devvm_ld64(h + DEVVM_SHM_OFF_CHANNEL_OFFSET);
    ch_size = devvm_ld64(h + DEVVM_SHM_OFF_CHANNEL_SIZE);
    data_size = devvm_ld32(h + DEVVM_SHM_OFF_DATA_SIZE);
    desc_size = devvm_ld32(h + DEVVM_SHM_OFF_DESC_SIZE);

    if (header_size != DEVVM_SHM_HEADER_SIZE ||
        slot_size != DEVVM_SLOT_SIZE ||
        !devvm_depth_ok(depth) ||
        nr < 1 || nr > DEVVM_MAX_CHANNELS ||
        data_size > DEVVM_MAX_DATA_SIZE ||
        data_size % DEVVM_CACHELINE != 0 ||
        desc_size > DEVVM_DESC_MAX) {
        return DEVVM_E_BAD_FIELD;
    }
    need = devvm_shm_size(nr, depth, data_size);
    if (need == 0 || ch_off != DEVVM_SHM_HEADER_SIZE ||
        ch_size != devvm_channel_bytes(depth, data_size)) {
        return DEVVM_E_BAD_FIELD;
    }
    /* the channels must lie inside shm_size, and shm_size in the map */
    if (shm_size < need || shm_size > size) {
        return DEVVM_E_BAD_FIELD;
    }

    out->shm_size = shm_size;
    out->nr_channels = nr;
    out->depth = depth;
    out->channel_offset = ch_off;
    out->channel_size = ch_size;
    out->data_size = data_size;
    out->desc_size = desc_size;
    return 0;
}

void devvm_shm_set_state(void *mem, uint32_t state, uint32_t fail_code,
                         const char *reason)
{
    uint8_t *p = mem;
    uint8_t *dst = p + DEVVM_SHM_OFF_REASON;
    size_t i = 0;

    if (reason) {
        for (; i < DEVVM_MAX_REASON - 1 && reason[i] != '\0'; i++) {
            __atomic_store_n(&dst[i], (uint8_t)reason[i], __ATOMIC_RELAXED);
        }
    }
    /* NUL-terminate and clear the tail of a longer previous reason */
    devvm_store_bytes_relaxed(dst + i, 0, DEVVM_MAX_REASON - i);
    devvm_store_relaxed32(p + DEVVM_SHM_OFF_FAIL_CODE, fail_code);
    devvm_store_release32(p + DEVVM_SHM_OFF_STATE, state);
}

void devvm_shm_heartbeat(void *mem)
{
    uint64_t *hb = devvm_heartbeat_ptr(mem);
    uint64_t v;

    /* single writer (the device side): load + store is enough */
    v = DEVVM_LE64(__atomic_load_n(hb, __ATOMIC_RELAXED));
    __atomic_store_n(hb, DEVVM_LE64(v + 1), __ATOMIC_RELAXED);
}

uint32_t devvm_shm_state(const void *mem)
{
    return devvm_load_acquire32((const uint8_t *)mem + DEVVM_SHM_OFF_STATE);
}

uint32_t devvm_shm_generation(const void *mem)
{
    return devvm_load_acquire32((const uint8_t *)mem +
                                DEVVM_SHM_OFF_GENERATION);
}

uint64_t devvm_shm_heartbeat_count(const void *mem)
{
    return DEVVM_LE64(__atomic_load_n(devvm_heartbeat_ptr(mem),
                                      __ATOMIC_ACQUIRE));
}

void devvm_shm_reason(const void *mem, char *buf, size_t len)
{
    const uint8_t *src = (const uint8_t *)mem + DEVVM_SHM_OFF_REASON;
    size_t i;

    if (!buf || len == 0) {
        return;
    }
    /* the shared text need not be terminated: stop at MAX_REASON - 1 */
    for (i = 0; i + 1 < len && i < DEVVM_MAX_REASON - 1; i++) {
        uint8_t c = __atomic_load_n(&src[i], __ATOMIC_RELAXED);

        if (c == 0) {
            break;
        }
        buf[i] = (char)c;
    }
    buf[i] = '\0';
}

/* ---- rings ------------------------------------------------------------- */

uint64_t devvm_ring_bytes(uint32_t depth)
{
    return DEVVM_RING_OFF_SLOTS + (uint64_t)depth * DEVVM_SLOT_SIZE;
}

/*
 * Attach one end.  The shared indices are trusted once, here, after the
 * window check: a producer continues from prod, a consumer from cons
 * (with everything up to prod already published to it).
 */
static int devvm_ring_attach_end(struct devvm_ring *r, void *mem,
                                 uint32_t depth, int producer)
{
    uint32_t prod, cons;

    if (!r || !mem || !devvm_depth_ok(depth) ||
        ((uintptr_t)mem & 3u) != 0) {
        return -DEVVM_EINVAL;
    }
    prod = devvm_load_acquire32((uint8_t *)mem + DEVVM_RING_OFF_PROD);
    cons = devvm_load_acquire32((uint8_t *)mem + DEVVM_RING_OFF_CONS);
    if (prod - cons > depth) {
        return DEVVM_E_RING_INDEX;     /* @r untouched */
    }
    r->base = mem;
    r->depth = depth;
    r->mask = depth - 1;
    if (producer) {
        r->local = prod;
        r->peer = cons;
    } else {
        r->local = cons;
        r->peer = prod;
    }
    return 0;
}

int devvm_ring_attach(struct devvm_ring *r, void *mem, uint32_t depth)
{
    struct devvm_ring tmp;
    int ret = devvm_ring_attach_end(&tmp, mem, depth, 1);

    if (ret < 0) {
        return ret;
    }
    /*
     * Without knowing which end we are, only an empty ring (prod == cons,
     * as devvm_shm_format() leaves it) gives both ends the same start;
     * devvm_channel_attach() knows the role and handles a ring in use.
     */
    if (tmp.local != tmp.peer) {
        return -DEVVM_EINVAL;
    }
    *r = tmp;
    return 0;
}

static void devvm_slot_encode(uint8_t *d, const struct devvm_slot *s,
                              uint32_t seq)
{
    devvm_st32(d + DEVVM_SLOT_OFF_SEQ, seq);
    devvm_st16(d + DEVVM_SLOT_OFF_OP, s->op);
    devvm_st16(d + DEVVM_SLOT_OFF_FLAGS, s->flags);
    devvm_st32(d + DEVVM_SLOT_OFF_TAG, s->tag);
    devvm_st16(d + DEVVM_SLOT_OFF_STATUS, s->status);
    d[DEVVM_SLOT_OFF_REGION] = s->region;
    d[DEVVM_SLOT_OFF_SIZE] = s->size;
    if (s->op == DEVVM_OP_LOG) {
        /* size text bytes, the rest zero (never leak caller memory) */
        __builtin_memcpy(d + DEVVM_SLOT_OFF_ADDR, s->text, s->size);
        __builtin_memset(d + DEVVM_SLOT_OFF_ADDR + s->size, 0,
                         DEVVM_LOG_TEXT_MAX - s->size);
    } else {
        devvm_st64(d + DEVVM_SLOT_OFF_ADDR, s->addr);
        devvm_st64(d + DEVVM_SLOT_OFF_DATA, s->data);
        devvm_st64(d + DEVVM_SLOT_OFF_LEN, s->len);
        devvm_st64(d + DEVVM_SLOT_OFF_AUX, s->aux);
        __builtin_memcpy(d + DEVVM_SLOT_OFF_INLINE, s->inline_data,
                         DEVVM_INLINE_SIZE);
    }
}

static void devvm_slot_decode(const uint8_t *d, struct devvm_slot *s)
{
    s->seq = devvm_ld32(d + DEVVM_SLOT_OFF_SEQ);
    s->op = devvm_ld16(d + DEVVM_SLOT_OFF_OP);
    s->flags = devvm_ld16(d + DEVVM_SLOT_OFF_FLAGS);
    s->tag = devvm_ld32(d + DEVVM_SLOT_OFF_TAG);
    s->status = devvm_ld16(d + DEVVM_SLOT_OFF_STATUS);
    s->region = d[DEVVM_SLOT_OFF_REGION];
    s->size = d[DEVVM_SLOT_OFF_SIZE];
    if (s->op == DEVVM_OP_LOG) {
        /* raw text; a peer's size above 48 is clamped (protocol.rst) */
        if (s->size > DEVVM_LOG_TEXT_MAX) {
            s->size = DEVVM_LOG_TEXT_MAX;
        }
        __builtin_memcpy(s->text, d + DEVVM_SLOT_OFF_ADDR,
                         DEVVM_LOG_TEXT_MAX);
    } else {
        s->addr = devvm_ld64(d + DEVVM_SLOT_OFF_ADDR);
        s->data = devvm_ld64(d + DEVVM_SLOT_OFF_DATA);
        s->len = devvm_ld64(d + DEVVM_SLOT_OFF_LEN);
        s->aux = devvm_ld64(d + DEVVM_SLOT_OFF_AUX);
        __builtin_memcpy(s->inline_data, d + DEVVM_SLOT_OFF_INLINE,
                         DEVVM_INLINE_SIZE);
    }
}

/* Producer: re-read cons and accept it if prod - cons is in [0, depth]. */
static int devvm_ring_refresh_cons(struct devvm_ring *r)
{
    uint32_t cons = devvm_load_acquire32(devvm_ring_cons_ptr(r));

    if (r->local - cons > r->depth) {
        return DEVVM_E_RING_INDEX;
    }
    r->peer = cons;
    return 0;
}

int devvm_ring_push(struct devvm_ring *r, const struct devvm_slot *s)
{
    int ret;

    if (s->op == DEVVM_OP_LOG && s->size > DEVVM_LOG_TEXT_MAX) {
        return -DEVVM_EINVAL;
    }
    /*
     * The cached cons is only re-read when the ring looks full, which
     * keeps the consumer's cache line from bouncing on every push.
     */
    if (r->local - r->peer >= r->depth) {
        ret = devvm_ring_refresh_cons(r);
        if (ret < 0) {
            return ret;
        }
        if (r->local - r->peer >= r->depth) {
            return DEVVM_E_AGAIN;
        }
    }
    devvm_slot_encode(devvm_ring_slot_ptr(r, r->local), s, r->local);
    r->local++;
    devvm_store_release32(devvm_ring_prod_ptr(r), r->local);
    return 0;
}

int devvm_ring_kick_needed(struct devvm_ring *r)
{
    /* order our prod store before the need_wakeup load (see top) */
    devvm_fence_full();
    return devvm_load_relaxed32(devvm_ring_wakeup_ptr(r)) != 0;
}

uint32_t devvm_ring_space(struct devvm_ring *r)
{
    if (devvm_ring_refresh_cons(r) < 0) {
        return 0;
    }
    return r->depth - (r->local - r->peer);
}

int devvm_ring_pop(struct devvm_ring *r, struct devvm_slot *out)
{
    uint8_t slot[DEVVM_SLOT_SIZE];
    uint32_t prod;

    if (r->local == r->peer) {
        prod = devvm_load_acquire32(devvm_ring_prod_ptr(r));
        if (prod - r->local > r->depth) {
            return DEVVM_E_RING_INDEX;
        }
        r->peer = prod;
        if (prod == r->local) {
            return DEVVM_E_AGAIN;
        }
    }
    /* copy once: the producer may rewrite the shared bytes at any time */
    __builtin_memcpy(slot, devvm_ring_slot_ptr(r, r->local), sizeof(slot));
    if (devvm_ld32(slot + DEVVM_SLOT_OFF_SEQ) != r->local) {
        return DEVVM_E_RING_SEQ;
    }
    devvm_slot_decode(slot, out);
    r->local++;
    devvm_store_release32(devvm_ring_cons_ptr(r), r->local);
    return 0;
}

void devvm_ring_poll_mode(struct devvm_ring *r)
{
    devvm_store_relaxed32(devvm_ring_wakeup_ptr(r), 0);
}

int devvm_ring_prepare_sleep(struct devvm_ring *r)
{
    uint32_t prod;

    if (r->local != r->peer) {
        /* slots already seen and not yet consumed */
        devvm_store_relaxed32(devvm_ring_wakeup_ptr(r), 0);
        return 0;
    }
    devvm_store_relaxed32(devvm_ring_wakeup_ptr(r), 1);
    /* order the need_wakeup store before the prod load (see top) */
    devvm_fence_full();
    prod = devvm_load_acquire32(devvm_ring_prod_ptr(r));
    if (prod != r->local) {
        /* work arrived (or a bad index, which pop will report) */
        devvm_store_relaxed32(devvm_ring_wakeup_ptr(r), 0);
        return 0;
    }
    return DEVVM_E_AGAIN;
}

/* ---- channels ---------------------------------------------------------- */

/* The layout comes from devvm_shm_validate(), but may have been built by
 * hand: check it is one format could have produced. */
static int devvm_layout_ok(const struct devvm_shm_layout *l)
{
    uint64_t need = devvm_shm_size(l->nr_channels, l->depth, l->data_size);

    return need != 0 && l->shm_size >= need &&
           l->channel_offset == DEVVM_SHM_HEADER_SIZE &&
           l->channel_size == devvm_channel_bytes(l->depth, l->data_size);
}

int devvm_channel_attach(struct devvm_channel *ch, void *shm,
                         const struct devvm_shm_layout *l, uint32_t index,
                         enum devvm_side side)
{
    /* which rings this side produces: REQ and EVT_CPL for the client */
    static const uint8_t client_produces[DEVVM_RINGS_PER_CHANNEL] = {
        [DEVVM_RING_REQ] = 1,
        [DEVVM_RING_CPL] = 0,
        [DEVVM_RING_EVT] = 0,
        [DEVVM_RING_EVT_CPL] = 1,
    };
    struct devvm_channel tmp;
    uint8_t *base;
    uint64_t rb;
    uint32_t i;
    int ret;

    if (!ch || !shm || !l || !devvm_mem_aligned(shm) ||
        (side != DEVVM_SIDE_CLIENT && side != DEVVM_SIDE_DEVICE) ||
        !devvm_layout_ok(l) || index >= l->nr_channels) {
        return -DEVVM_EINVAL;
    }
    rb = devvm_ring_bytes(l->depth);
    base = (uint8_t *)shm + l->channel_offset +
           (uint64_t)index * l->channel_size;

    /* built aside: on failure @ch keeps its previous, consistent state */
    tmp.shm = shm;
    tmp.index = index;
    tmp.generation = devvm_shm_generation(shm);
    for (i = 0; i < DEVVM_RINGS_PER_CHANNEL; i++) {
        int producer = client_produces[i] ^ (side == DEVVM_SIDE_DEVICE);

        ret = devvm_ring_attach_end(&tmp.ring[i], base + i * rb, l->depth,
                                    producer);
        if (ret < 0) {
            return ret;
        }
    }
    tmp.data = base + DEVVM_RINGS_PER_CHANNEL * rb;
    tmp.data_size = l->data_size;
    *ch = tmp;
    return 0;
}

int devvm_channel_check(const struct devvm_channel *ch)
{
    if (devvm_shm_generation(ch->shm) != ch->generation) {
        return DEVVM_E_STALE;
    }
    if (devvm_shm_state(ch->shm) != DEVVM_STATE_READY) {
        return DEVVM_E_STATE;
    }
    return 0;
}

int devvm_channel_data_range(const struct devvm_channel *ch, uint64_t off,
                             uint64_t len)
{
    /* off + len could wrap: compare len against what is left instead */
    if (off > ch->data_size || len > ch->data_size - off) {
        return DEVVM_E_BAD_FIELD;
    }
    return 0;
}
