/*
 * libdevvm: libFuzzer target for the ring transport (ring.h).
 *
 * The shared memory is the one place where libdevvm reads data that a
 * hostile peer can change at any time, so every input is treated as
 * shared memory contents, or as a peer scribbling over a well-formed one:
 *
 *   input[0] & 1 == 0: "raw".  input[1] gives the mapped size (1..16
 *       pages); input[2..] is the memory from offset 0, zero-padded.  If
 *       devvm_shm_validate() accepts it, channel 0 and the last channel
 *       are attached as both sides; every consumer ring is drained, a few
 *       slots are pushed on every producer ring, and drained again.
 *
 *   input[0] & 1 == 1: "script".  input[1..3] choose a geometry that is
 *       formatted into a buffer of exactly shm_size bytes; the rest is a
 *       list of operations: push or pop on any ring from its own side,
 *       overwrite ring control words, slots or header bytes at fuzz-chosen
 *       offsets, doorbell calls, re-validate and re-attach.
 *
 * The buffers are heap allocations of exactly the mapped size, so ASan
 * sees any access past the end.  Internal invariants (a popped slot's
 * seq is the index it was popped at, an accepted index stays in its
 * window, data_range never accepts a range outside the data area) abort
 * when violated.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "libdevvm/ring.h"

#define MAX_PAGES       16u
#define MAX_POPS        (2 * DEVVM_MAX_DEPTH + 4)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A cursor over the fuzz input; reads past its end return zeros. */
struct input {
    const uint8_t *p;
    size_t len;
    size_t pos;
};

static int in_more(const struct input *in)
{
    return in->pos < in->len;
}

static uint8_t in_u8(struct input *in)
{
    return in->pos < in->len ? in->p[in->pos++] : 0;
}

static uint32_t in_u32(struct input *in)
{
    uint32_t v = in_u8(in);

    v |= (uint32_t)in_u8(in) << 8;
    v |= (uint32_t)in_u8(in) << 16;
    return v | (uint32_t)in_u8(in) << 24;
}

static uint64_t in_u64(struct input *in)
{
    uint64_t lo = in_u32(in);

    return lo | (uint64_t)in_u32(in) << 32;
}

static void check(int cond)
{
    if (!cond) {
        __builtin_trap();
    }
}

/* Look at a popped slot the way a device or client would. */
static void consume(const struct devvm_channel *ch, const struct devvm_slot *s)
{
    volatile uint8_t sink = 0;
    uint64_t i;

    if (s->op == DEVVM_OP_LOG) {
        /* pop clamps a LOG's size: text[size - 1] is always in bounds */
        check(s->size <= DEVVM_LOG_TEXT_MAX);
        for (i = 0; i < s->size; i++) {
            sink ^= s->text[i];
        }
        return;
    }
    /* data area references: aux/len (DMA), addr/len, addr/size */
    if (devvm_channel_data_range(ch, s->aux, s->len) == 0) {
        check(s->aux <= ch->data_size && s->len <= ch->data_size - s->aux);
        /* touch the first and last byte: ASan checks the bounds */
        if (s->len) {
            sink ^= ch->data[s->aux];
            sink ^= ch->data[s->aux + s->len - 1];
        }
    }
    if (devvm_channel_data_range(ch, s->addr, s->size) == 0 && s->size) {
        sink ^= ch->data[s->addr + s->size - 1];
    }
    (void)sink;
}

/* Pop one slot and check what the ring promises about it. */
static int pop_one(const struct devvm_channel *ch, struct devvm_ring *r)
{
    struct devvm_slot s;
    uint32_t before = r->local;
    int ret = devvm_ring_pop(r, &s);

    if (ret == 0) {
        check(s.seq == before && r->local == before + 1);
        consume(ch, &s);
    } else {
        check(ret == DEVVM_E_AGAIN || ret == DEVVM_E_RING_INDEX ||
              ret == DEVVM_E_RING_SEQ);
        check(r->local == before);
    }
    check(r->peer - r->local <= r->depth);
    return ret;
}

static void drain(const struct devvm_channel *ch, struct devvm_ring *r)
{
    for (uint32_t i = 0; i < MAX_POPS; i++) {
        if (pop_one(ch, r) != 0) {
            break;
        }
    }
}

static int push_one(struct devvm_ring *r, const struct devvm_slot *s)
{
    uint32_t before = r->local;
    int ret = devvm_ring_push(r, s);

    if (ret == 0) {
        check(r->local == before + 1);
    } else {
        check(r->local == before);
    }
    check(r->local - r->peer <= r->depth);
    check(devvm_ring_space(r) <= r->depth);
    return ret;
}

/* The side that consumes ring @ring; the other one produces it. */
static int consumer_of(int ring)
{
    return ring == DEVVM_RING_REQ || ring == DEVVM_RING_EVT_CPL ?
           DEVVM_SIDE_DEVICE : DEVVM_SIDE_CLIENT;
}

/* The rings @side consumes, and the ones it produces. */
static const int consumed[2][2] = {
    [DEVVM_SIDE_CLIENT] = { DEVVM_RING_CPL, DEVVM_RING_EVT },
    [DEVVM_SIDE_DEVICE] = { DEVVM_RING_REQ, DEVVM_RING_EVT_CPL },
};
static const int produced[2][2] = {
    [DEVVM_SIDE_CLIENT] = { DEVVM_RING_REQ, DEVVM_RING_EVT_CPL },
    [DEVVM_SIDE_DEVICE] = { DEVVM_RING_CPL, DEVVM_RING_EVT },
};

static void exercise_channel(struct devvm_channel ch[2])
{
    struct devvm_slot s;
    int side, k, i;
    char reason[DEVVM_MAX_REASON];

    devvm_shm_reason(ch[0].shm, reason, sizeof(reason));
    check(strlen(reason) < DEVVM_MAX_REASON);
    (void)devvm_state_name(devvm_shm_state(ch[0].shm));
    (void)devvm_shm_heartbeat_count(ch[0].shm);
    (void)devvm_channel_check(&ch[0]);

    for (side = 0; side < 2; side++) {
        for (k = 0; k < 2; k++) {
            struct devvm_ring *r = &ch[side].ring[consumed[side][k]];

            drain(&ch[side], r);
            (void)devvm_ring_prepare_sleep(r);
            devvm_ring_poll_mode(r);
        }
    }
    memset(&s, 0, sizeof(s));
    for (side = 0; side < 2; side++) {
        for (k = 0; k < 2; k++) {
            struct devvm_ring *r = &ch[side].ring[produced[side][k]];

            for (i = 0; i < 3; i++) {
                s.op = i == 2 ? DEVVM_OP_LOG : DEVVM_OP_READ;
                s.size = i == 2 ? 5 : 4;
                s.tag = i;
                push_one(r, &s);
            }
            (void)devvm_ring_kick_needed(r);
        }
    }
    for (side = 0; side < 2; side++) {
        for (k = 0; k < 2; k++) {
            drain(&ch[side], &ch[side].ring[consumed[side][k]]);
        }
    }
}

static int attach_both(struct devvm_channel ch[2], uint8_t *mem,
                       const struct devvm_shm_layout *l, uint32_t index)
{
    if (devvm_channel_attach(&ch[0], mem, l, index, DEVVM_SIDE_CLIENT) ||
        devvm_channel_attach(&ch[1], mem, l, index, DEVVM_SIDE_DEVICE)) {
        return -1;
    }
    check(ch[0].data + ch[0].data_size <= mem + l->shm_size);
    return 0;
}

static void run_raw(struct input *in)
{
    struct devvm_shm_layout l;
    struct devvm_channel ch[2];
    uint32_t pages = 1 + in_u8(in) % MAX_PAGES;
    size_t mapped = (size_t)pages * 4096, n;
    uint8_t *mem = aligned_alloc(4096, mapped);

    if (!mem) {
        return;
    }
    n = in->len - in->pos < mapped ? in->len - in->pos : mapped;
    memcpy(mem, in->p + in->pos, n);
    memset(mem + n, 0, mapped - n);

    if (devvm_shm_validate(mem, mapped, &l) == 0) {
        check(l.shm_size <= mapped && l.nr_channels >= 1);
        check(l.channel_offset + l.nr_channels * l.channel_size <=
              l.shm_size);
        if (attach_both(ch, mem, &l, 0) == 0) {
            exercise_channel(ch);
        }
        if (l.nr_channels > 1 &&
            attach_both(ch, mem, &l, l.nr_channels - 1) == 0) {
            exercise_channel(ch);
        }
    }
    free(mem);
}

static void fill_slot(struct input *in, struct devvm_slot *s)
{
    memset(s, 0, sizeof(*s));
    s->op = in_u8(in) % 24;
    s->flags = in_u8(in);
    s->tag = in_u32(in);
    s->status = in_u8(in);
    s->region = in_u8(in);
    s->size = in_u8(in);
    if (s->op == DEVVM_OP_LOG) {
        s->size %= DEVVM_LOG_TEXT_MAX + 2;      /* 49 is refused */
        for (uint32_t i = 0; i < s->size && i < DEVVM_LOG_TEXT_MAX; i++) {
            s->text[i] = in_u8(in);
        }
    } else {
        s->addr = in_u64(in);
        s->len = in_u64(in);
        s->aux = in_u64(in);
    }
}

static void run_script(struct input *in)
{
    struct devvm_shm_layout l;
    struct devvm_channel ch[2];
    struct devvm_slot s;
    uint32_t nr = 1 + in_u8(in) % 3;
    uint32_t depth = 2u << (in_u8(in) % 6);
    uint32_t data_size = (in_u8(in) % 17) * 64;
    uint64_t need = devvm_shm_size(nr, depth, data_size);
    uint64_t rings;
    uint8_t *mem, *base;
    int steps = 0;

    if (need > MAX_PAGES * 4096u) {
        nr = 1;
        need = devvm_shm_size(nr, depth, data_size);
    }
    check(need != 0 && need % 4096 == 0);
    mem = aligned_alloc(4096, need);
    if (!mem) {
        return;
    }
    memset(mem, 0xcc, need);
    check(devvm_shm_format(mem, need, nr, depth, data_size, 1) == 0);
    devvm_shm_set_state(mem, DEVVM_STATE_READY, 0, "");
    check(devvm_shm_validate(mem, need, &l) == 0);
    check(attach_both(ch, mem, &l, 0) == 0);
    base = mem + l.channel_offset;
    rings = DEVVM_RINGS_PER_CHANNEL * devvm_ring_bytes(l.depth);

    while (in_more(in) && steps++ < 4096) {
        uint8_t op = in_u8(in);
        int ring = (op >> 3) & 3;
        int side = (op >> 5) & 1;
        struct devvm_ring *r = &ch[side].ring[ring];
        struct devvm_ring *cr, *pr;
        uint32_t off, len, i;

        switch (op & 7) {
        case 0:     /* push from whichever side produces this ring */
            fill_slot(in, &s);
            side = !consumer_of(ring);
            push_one(&ch[side].ring[ring], &s);
            (void)devvm_ring_kick_needed(&ch[side].ring[ring]);
            break;
        case 1:     /* pop from whichever side consumes it */
            side = consumer_of(ring);
            for (i = 0, len = 1 + in_u8(in) % 8; i < len; i++) {
                pop_one(&ch[side], &ch[side].ring[ring]);
            }
            break;
        case 2:     /* scribble over the rings of channel 0 */
            off = (in_u8(in) | (uint32_t)in_u8(in) << 8) % rings;
            len = 1 + in_u8(in) % 16;
            for (i = 0; i < len && off + i < rings; i++) {
                base[off + i] = in_u8(in);
            }
            break;
        case 3:     /* set a control word: prod, cons or need_wakeup */
            off = (uint32_t[]){ DEVVM_RING_OFF_PROD, DEVVM_RING_OFF_CONS,
                                DEVVM_RING_OFF_NEED_WAKEUP,
                                DEVVM_RING_OFF_CONS }[(op >> 6) & 3];
            {
                uint32_t v = in_u32(in);

                memcpy(r->base + off, &v, 4);
            }
            break;
        case 4:     /* doorbell calls, each from its own side */
            cr = &ch[consumer_of(ring)].ring[ring];
            pr = &ch[!consumer_of(ring)].ring[ring];
            (void)devvm_ring_prepare_sleep(cr);
            if (op & 0x40) {
                devvm_ring_poll_mode(cr);
            }
            (void)devvm_ring_kick_needed(pr);
            check(devvm_ring_space(pr) <= pr->depth);
            check(cr->peer - cr->local <= cr->depth);
            break;
        case 5:     /* scribble over a header byte, then re-validate */
            off = (in_u8(in) | (uint32_t)in_u8(in) << 8) %
                  DEVVM_SHM_HEADER_SIZE;
            mem[off] = in_u8(in);
            if (devvm_shm_validate(mem, need, &l) == 0) {
                check(l.shm_size <= need);
                if (attach_both(ch, mem, &l, 0) == 0) {
                    base = mem + l.channel_offset;
                    rings = DEVVM_RINGS_PER_CHANNEL *
                            devvm_ring_bytes(l.depth);
                }
            }
            break;
        case 6:     /* status and data range queries */
            (void)devvm_channel_check(&ch[side]);
            {
                uint64_t a = in_u64(in), b = in_u64(in);

                if (devvm_channel_data_range(&ch[side], a, b) == 0) {
                    check(a <= ch[side].data_size &&
                          b <= ch[side].data_size - a);
                }
            }
            break;
        case 7:     /* re-attach to the ring in use, then drain it all */
            if (attach_both(ch, mem, &l, 0) == 0) {
                exercise_channel(ch);
            }
            break;
        }
    }
    exercise_channel(ch);
    free(mem);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct input in = { .p = data, .len = size, .pos = 0 };

    if (size < 1) {
        return 0;
    }
    if (in_u8(&in) & 1) {
        run_script(&in);
    } else {
        run_raw(&in);
    }
    return 0;
}
