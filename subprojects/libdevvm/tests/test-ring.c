/*
 * libdevvm: unit tests of the shared-memory ring transport (ring.h).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "libdevvm/ring.h"
#include "tap.h"

#define SHM_MAX (1024u * 1024u)

static uint8_t *shm;

/* little-endian writers for corrupting a header by hand */
static void put16(uint8_t *p, uint16_t v)
{
    p[0] = v & 0xff;
    p[1] = v >> 8;
}

static void put32(uint8_t *p, uint32_t v)
{
    put16(p, v & 0xffff);
    put16(p + 2, v >> 16);
}

static void put64(uint8_t *p, uint64_t v)
{
    put32(p, v & 0xffffffffu);
    put32(p + 4, v >> 32);
}

static uint32_t get32(const uint8_t *p)
{
    return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

/* A ring's control block inside channel @ch of a formatted shm. */
static uint8_t *ring_base(uint8_t *mem, const struct devvm_shm_layout *l,
                          uint32_t ch, uint32_t ring)
{
    return mem + l->channel_offset + ch * l->channel_size +
           ring * devvm_ring_bytes(l->depth);
}

static void test_sizes(void)
{
    uint64_t want;

    TAP_CHECK(strcmp(devvm_state_name(DEVVM_STATE_READY), "ready") == 0,
              "state name ready");
    TAP_CHECK(strcmp(devvm_state_name(DEVVM_STATE_FAILED), "failed") == 0,
              "state name failed");
    TAP_CHECK(strcmp(devvm_state_name(99), "unknown") == 0,
              "state name of an unknown state");
    TAP_EQ(devvm_ring_bytes(64), 128 + 64 * 64, "ring bytes, depth 64");

    /* 4 * (128 + 8 * 64) + 256 = 2816 -> 4096 per channel */
    TAP_EQ(devvm_shm_size(1, 8, 256), 4096 + 4096, "shm size 1x8x256");
    /* 4 * (128 + 256 * 64) = 66048, + 8192 = 74240 -> 77824 */
    TAP_EQ(devvm_shm_size(3, 256, 8192), 4096 + 3 * 77824,
           "shm size 3x256x8192");
    TAP_EQ(devvm_shm_size(1, 2, 0), 8192, "shm size, smallest");
    want = DEVVM_RINGS_PER_CHANNEL * (128 + DEVVM_MAX_DEPTH * 64ull) +
           DEVVM_MAX_DATA_SIZE;
    want = (want + 4095) & ~4095ull;
    TAP_EQ(devvm_shm_size(DEVVM_MAX_CHANNELS, DEVVM_MAX_DEPTH,
                          DEVVM_MAX_DATA_SIZE),
           4096 + DEVVM_MAX_CHANNELS * want, "shm size, largest");

    TAP_EQ(devvm_shm_size(0, 8, 0), 0, "0 channels rejected");
    TAP_EQ(devvm_shm_size(DEVVM_MAX_CHANNELS + 1, 8, 0), 0,
           "too many channels rejected");
    TAP_EQ(devvm_shm_size(1, 0, 0), 0, "depth 0 rejected");
    TAP_EQ(devvm_shm_size(1, 1, 0), 0, "depth 1 rejected");
    TAP_EQ(devvm_shm_size(1, 12, 0), 0, "depth 12 rejected");
    TAP_EQ(devvm_shm_size(1, DEVVM_MAX_DEPTH * 2, 0), 0,
           "depth above max rejected");
    TAP_EQ(devvm_shm_size(1, 0x80000000u, 0), 0, "depth 2^31 rejected");
    TAP_EQ(devvm_shm_size(1, 8, DEVVM_MAX_DATA_SIZE + 64), 0,
           "data size above max rejected");
    TAP_EQ(devvm_shm_size(1, 8, UINT32_MAX), 0,
           "data size UINT32_MAX rejected");
    TAP_EQ(devvm_shm_size(1, 8, 100), 0,
           "data size not a multiple of 64 rejected");
}

static void test_format_validate(void)
{
    struct devvm_shm_layout l;
    uint64_t size = devvm_shm_size(2, 16, 4096);
    char buf[16];

    memset(shm, 0xa5, SHM_MAX);
    TAP_EQ(devvm_shm_format(shm, size - 1, 2, 16, 4096, 7), -DEVVM_EINVAL,
           "format refuses a too small memory");
    TAP_EQ(devvm_shm_format(shm, SHM_MAX, 2, 15, 4096, 7), -DEVVM_EINVAL,
           "format refuses depth 15");
    TAP_EQ(devvm_shm_format(shm + 4, SHM_MAX - 4, 2, 16, 4096, 7),
           -DEVVM_EINVAL, "format refuses unaligned memory");
    TAP_EQ(devvm_shm_format(shm, size, 2, 16, 4096, 7), 0, "format");

    TAP_EQ(get32(shm), 0x4d565644, "magic bytes");
    TAP_CHECK(memcmp(shm, "DVVM", 4) == 0, "magic reads DVVM");
    TAP_EQ(devvm_shm_state(shm), DEVVM_STATE_BOOTING, "state is BOOTING");
    TAP_EQ(devvm_shm_generation(shm), 7, "generation");
    TAP_EQ(devvm_shm_heartbeat_count(shm), 0, "heartbeat zeroed");
    devvm_shm_reason(shm, buf, sizeof(buf));
    TAP_EQ(buf[0], 0, "reason empty");

    memset(&l, 0, sizeof(l));
    TAP_EQ(devvm_shm_validate(shm, size, &l), 0, "validate");
    TAP_EQ(l.shm_size, size, "layout shm_size");
    TAP_EQ(l.nr_channels, 2, "layout nr_channels");
    TAP_EQ(l.depth, 16, "layout depth");
    TAP_EQ(l.channel_offset, DEVVM_SHM_HEADER_SIZE, "layout channel_offset");
    /* 4 * (128 + 16 * 64) + 4096 = 8704 -> 12288 */
    TAP_EQ(l.channel_size, 12288, "layout channel_size");
    TAP_EQ(l.data_size, 4096, "layout data_size");
    TAP_EQ(l.desc_size, 0, "layout desc_size");
    TAP_EQ(devvm_shm_validate(shm, SHM_MAX, &l), 0,
           "validate with a larger mapping");

    /* the rings are zero even though the memory was not */
    TAP_EQ(get32(ring_base(shm, &l, 1, DEVVM_RING_EVT_CPL)), 0,
           "last ring's prod zeroed");
    TAP_EQ(ring_base(shm, &l, 1, DEVVM_RING_EVT_CPL)[128 + 15 * 64 + 63], 0,
           "last slot zeroed");
}

/* Format a fresh shm, corrupt it with @fn, check validate's answer. */
static void check_corrupt(uint64_t mapped, int want, const char *what,
                          void (*fn)(uint8_t *mem))
{
    struct devvm_shm_layout l;

    devvm_shm_format(shm, SHM_MAX, 2, 16, 4096, 1);
    fn(shm);
    TAP_EQ(devvm_shm_validate(shm, mapped, &l), want, "validate: %s", what);
}

static void c_magic(uint8_t *m)
{
    m[DEVVM_SHM_OFF_MAGIC] ^= 1;
}

static void c_major(uint8_t *m)
{
    put16(m + DEVVM_SHM_OFF_LAYOUT_MAJOR, 2);
}

static void c_major0(uint8_t *m)
{
    put16(m + DEVVM_SHM_OFF_LAYOUT_MAJOR, 0);
}

static void c_minor(uint8_t *m)
{
    put16(m + DEVVM_SHM_OFF_LAYOUT_MINOR, 9);
}

static void c_header_size(uint8_t *m)
{
    put32(m + DEVVM_SHM_OFF_HEADER_SIZE, 8192);
}

static void c_slot_size(uint8_t *m)
{
    put32(m + DEVVM_SHM_OFF_SLOT_SIZE, 128);
}

static void c_depth_npot(uint8_t *m)
{
    put32(m + DEVVM_SHM_OFF_DEPTH, 24);
}

static void c_depth_big(uint8_t *m)
{
    put32(m + DEVVM_SHM_OFF_DEPTH, DEVVM_MAX_DEPTH * 2);
}

static void c_depth_1(uint8_t *m)
{
    put32(m + DEVVM_SHM_OFF_DEPTH, 1);
}

static void c_channels_many(uint8_t *m)
{
    put32(m + DEVVM_SHM_OFF_NR_CHANNELS, DEVVM_MAX_CHANNELS + 1);
}

static void c_channels_0(uint8_t *m)
{
    put32(m + DEVVM_SHM_OFF_NR_CHANNELS, 0);
}

static void c_channels_more(uint8_t *m)
{
    /* 3 channels would not fit in the shm_size written for 2 */
    put32(m + DEVVM_SHM_OFF_NR_CHANNELS, 3);
}

static void c_shm_size_huge(uint8_t *m)
{
    put64(m + DEVVM_SHM_OFF_SHM_SIZE, UINT64_MAX);
}

static void c_shm_size_small(uint8_t *m)
{
    put64(m + DEVVM_SHM_OFF_SHM_SIZE, DEVVM_SHM_HEADER_SIZE);
}

static void c_ch_offset(uint8_t *m)
{
    put64(m + DEVVM_SHM_OFF_CHANNEL_OFFSET, DEVVM_SHM_HEADER_SIZE + 64);
}

static void c_ch_offset_wrap(uint8_t *m)
{
    put64(m + DEVVM_SHM_OFF_CHANNEL_OFFSET, UINT64_MAX - 4095);
}

static void c_ch_size(uint8_t *m)
{
    put64(m + DEVVM_SHM_OFF_CHANNEL_SIZE, 4096);
}

static void c_ch_size_big(uint8_t *m)
{
    put64(m + DEVVM_SHM_OFF_CHANNEL_SIZE, 1ull << 62);
}

static void c_data_size(uint8_t *m)
{
    put32(m + DEVVM_SHM_OFF_DATA_SIZE, 4096 + 32);
}

static void c_data_size_big(uint8_t *m)
{
    put32(m + DEVVM_SHM_OFF_DATA_SIZE, DEVVM_MAX_DATA_SIZE + 4096);
}

static void c_desc_size(uint8_t *m)
{
    put32(m + DEVVM_SHM_OFF_DESC_SIZE, DEVVM_DESC_MAX + 1);
}

static void c_desc_size_max(uint8_t *m)
{
    put32(m + DEVVM_SHM_OFF_DESC_SIZE, DEVVM_DESC_MAX);
}

static void c_none(uint8_t *m)
{
    (void)m;
}

static void test_validate_corrupt(void)
{
    uint64_t size = devvm_shm_size(2, 16, 4096);
    struct devvm_shm_layout l;

    check_corrupt(size, 0, "untouched", c_none);
    check_corrupt(size, DEVVM_E_VERSION, "bad magic", c_magic);
    check_corrupt(size, DEVVM_E_VERSION, "layout major 2", c_major);
    check_corrupt(size, DEVVM_E_VERSION, "layout major 0", c_major0);
    check_corrupt(size, 0, "other layout minor accepted", c_minor);
    check_corrupt(size, DEVVM_E_BAD_FIELD, "header size", c_header_size);
    check_corrupt(size, DEVVM_E_BAD_FIELD, "slot size 128", c_slot_size);
    check_corrupt(size, DEVVM_E_BAD_FIELD, "depth 24 (not a power of 2)",
                  c_depth_npot);
    check_corrupt(size, DEVVM_E_BAD_FIELD, "depth above max", c_depth_big);
    check_corrupt(size, DEVVM_E_BAD_FIELD, "depth 1", c_depth_1);
    check_corrupt(size, DEVVM_E_BAD_FIELD, "too many channels",
                  c_channels_many);
    check_corrupt(size, DEVVM_E_BAD_FIELD, "0 channels", c_channels_0);
    check_corrupt(SHM_MAX, DEVVM_E_BAD_FIELD,
                  "more channels than shm_size holds", c_channels_more);
    check_corrupt(size, DEVVM_E_BAD_FIELD, "shm_size above the mapping",
                  c_shm_size_huge);
    check_corrupt(size, DEVVM_E_BAD_FIELD, "shm_size below the channels",
                  c_shm_size_small);
    check_corrupt(size - 4096, DEVVM_E_BAD_FIELD,
                  "mapping smaller than shm_size", c_none);
    check_corrupt(100, DEVVM_E_TRUNCATED, "mapping smaller than the header",
                  c_none);
    check_corrupt(size, DEVVM_E_BAD_FIELD, "channel offset moved",
                  c_ch_offset);
    check_corrupt(size, DEVVM_E_BAD_FIELD, "channel offset near 2^64",
                  c_ch_offset_wrap);
    check_corrupt(size, DEVVM_E_BAD_FIELD, "channel size too small",
                  c_ch_size);
    check_corrupt(size, DEVVM_E_BAD_FIELD, "channel size 2^62",
                  c_ch_size_big);
    check_corrupt(size, DEVVM_E_BAD_FIELD, "data size not a multiple of 64",
                  c_data_size);
    check_corrupt(size, DEVVM_E_BAD_FIELD, "data size above max",
                  c_data_size_big);
    check_corrupt(size, DEVVM_E_BAD_FIELD, "desc size above max",
                  c_desc_size);
    check_corrupt(size, 0, "desc size at max", c_desc_size_max);

    memset(shm, 0, DEVVM_SHM_HEADER_SIZE);
    TAP_EQ(devvm_shm_validate(shm, SHM_MAX, &l), DEVVM_E_VERSION,
           "validate: all-zero memory");
    TAP_EQ(devvm_shm_validate(shm + 4, SHM_MAX - 4, &l), -DEVVM_EINVAL,
           "validate: unaligned memory");
}

/* A standalone ring at the start of the buffer. */
static void fresh_ring(uint32_t depth, struct devvm_ring *prod,
                       struct devvm_ring *cons)
{
    memset(shm, 0, devvm_ring_bytes(depth));
    devvm_ring_attach(prod, shm, depth);
    devvm_ring_attach(cons, shm, depth);
}

static void test_ring_basic(void)
{
    struct devvm_ring p, c;
    struct devvm_slot s, o;
    uint32_t next_push = 0, next_pop = 0, round;
    int ok = 1, ret;

    TAP_EQ(devvm_ring_attach(&p, shm, 3), -DEVVM_EINVAL,
           "ring attach refuses depth 3");
    TAP_EQ(devvm_ring_attach(&p, shm, 8192), -DEVVM_EINVAL,
           "ring attach refuses depth 8192");
    memset(shm, 0, 4096);
    put32(shm + DEVVM_RING_OFF_PROD, 3);
    TAP_EQ(devvm_ring_attach(&p, shm, 8), -DEVVM_EINVAL,
           "role-less attach refuses a non-empty ring");
    put32(shm + DEVVM_RING_OFF_PROD, 9);
    TAP_EQ(devvm_ring_attach(&p, shm, 8), DEVVM_E_RING_INDEX,
           "attach refuses prod more than depth ahead");

    fresh_ring(8, &p, &c);
    TAP_EQ(devvm_ring_space(&p), 8, "empty ring: space 8");
    TAP_EQ(devvm_ring_pop(&c, &o), DEVVM_E_AGAIN, "empty ring: pop AGAIN");

    memset(&s, 0, sizeof(s));
    s.op = DEVVM_OP_READ;
    for (int i = 0; i < 8; i++) {
        s.tag = i;
        ret = devvm_ring_push(&p, &s);
        ok &= ret == 0;
    }
    TAP_CHECK(ok, "8 pushes into a depth-8 ring");
    TAP_EQ(devvm_ring_space(&p), 0, "full ring: space 0");
    s.tag = 8;
    TAP_EQ(devvm_ring_push(&p, &s), DEVVM_E_AGAIN, "full ring: push AGAIN");
    TAP_EQ(devvm_ring_pop(&c, &o), 0, "pop from full ring");
    TAP_EQ(o.tag, 0, "first popped tag");
    TAP_EQ(o.seq, 0, "first popped seq");
    TAP_EQ(devvm_ring_space(&p), 1, "space 1 after one pop");
    TAP_EQ(devvm_ring_push(&p, &s), 0, "push after one pop");
    TAP_EQ(devvm_ring_push(&p, &s), DEVVM_E_AGAIN, "full again");
    ok = 1;
    for (int i = 1; i <= 8; i++) {
        ok &= devvm_ring_pop(&c, &o) == 0 && o.tag == (uint32_t)i &&
              o.seq == (uint32_t)i;
    }
    TAP_CHECK(ok, "pop the remaining 8 in order");
    TAP_EQ(devvm_ring_pop(&c, &o), DEVVM_E_AGAIN, "drained: pop AGAIN");

    /* wrap past depth many times with batches of varying sizes */
    fresh_ring(4, &p, &c);
    ok = 1;
    for (round = 0; round < 5000 && ok; round++) {
        uint32_t n = round % 5, i;

        for (i = 0; i < n; i++) {
            memset(&s, 0, sizeof(s));
            s.op = DEVVM_OP_WRITE;
            s.tag = next_push;
            s.addr = (uint64_t)next_push * 0x100000001ull;
            s.data = ~(uint64_t)next_push;
            s.inline_data[next_push % 16] = (uint8_t)next_push;
            ret = devvm_ring_push(&p, &s);
            if (ret == DEVVM_E_AGAIN) {
                ok &= next_push - next_pop == 4;
                break;
            }
            ok &= ret == 0;
            next_push++;
        }
        for (i = 0; i < (round * 7) % 4 + 1; i++) {
            ret = devvm_ring_pop(&c, &o);
            if (ret == DEVVM_E_AGAIN) {
                ok &= next_push == next_pop;
                break;
            }
            ok &= ret == 0 && o.seq == next_pop && o.tag == next_pop &&
                  o.op == DEVVM_OP_WRITE &&
                  o.addr == (uint64_t)next_pop * 0x100000001ull &&
                  o.data == ~(uint64_t)next_pop &&
                  o.inline_data[next_pop % 16] == (uint8_t)next_pop;
            next_pop++;
        }
    }
    TAP_CHECK(ok, "5000 rounds of push/pop on a depth-4 ring");
    TAP_CHECK(next_pop > 1000, "wrapped %u times", next_pop / 4);
    TAP_EQ(get32(shm + DEVVM_RING_OFF_PROD), next_push, "shared prod");
    TAP_EQ(get32(shm + DEVVM_RING_OFF_CONS), next_pop, "shared cons");
}

static void test_slot_layout(void)
{
    static const uint8_t want[64] = {
        /* 0: seq 0 */
        0x00, 0x00, 0x00, 0x00,
        /* 4: op READ (0x0001) */
        0x01, 0x00,
        /* 6: flags 0xa55a */
        0x5a, 0xa5,
        /* 8: tag 0x11223344 */
        0x44, 0x33, 0x22, 0x11,
        /* 12: status 0x0102 */
        0x02, 0x01,
        /* 14: region 5, 15: size 4 */
        0x05, 0x04,
        /* 16: addr 0x0807060504030201 */
        0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
        /* 24: data 0xdeadbeefcafef00d */
        0x0d, 0xf0, 0xfe, 0xca, 0xef, 0xbe, 0xad, 0xde,
        /* 32: len 0x1000 */
        0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        /* 40: aux 0x8000000000000001 */
        0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80,
        /* 48: inline bytes 0xf0..0xff */
        0xf0, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7,
        0xf8, 0xf9, 0xfa, 0xfb, 0xfc, 0xfd, 0xfe, 0xff,
    };
    static const uint8_t want_log[64] = {
        /* seq 1 */
        0x01, 0x00, 0x00, 0x00,
        /* op LOG (19), flags MORE */
        0x13, 0x00, 0x01, 0x00,
        /* tag 0, status 0, region 0, size 12 */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0c,
        /* text, then zeros */
        'h', 'e', 'l', 'l', 'o', ',', ' ', 'w', 'o', 'r', 'l', 'd',
    };
    struct devvm_ring p, c;
    struct devvm_slot s, o;
    uint8_t *slot0 = shm + DEVVM_RING_OFF_SLOTS;
    uint8_t *slot1 = slot0 + DEVVM_SLOT_SIZE;

    /* check the offsets the vectors above were written from */
    TAP_CHECK(DEVVM_SLOT_OFF_OP == 4 && DEVVM_SLOT_OFF_TAG == 8 &&
              DEVVM_SLOT_OFF_STATUS == 12 && DEVVM_SLOT_OFF_REGION == 14 &&
              DEVVM_SLOT_OFF_SIZE == 15 && DEVVM_SLOT_OFF_ADDR == 16 &&
              DEVVM_SLOT_OFF_DATA == 24 && DEVVM_SLOT_OFF_LEN == 32 &&
              DEVVM_SLOT_OFF_AUX == 40 && DEVVM_SLOT_OFF_INLINE == 48,
              "slot offsets as documented");

    fresh_ring(8, &p, &c);
    memset(slot0, 0xee, 2 * DEVVM_SLOT_SIZE);
    memset(&s, 0, sizeof(s));
    s.seq = 0x77777777;          /* ignored: the ring stamps it */
    s.op = DEVVM_OP_READ;
    s.flags = 0xa55a;
    s.tag = 0x11223344;
    s.status = 0x0102;
    s.region = 5;
    s.size = 4;
    s.addr = 0x0807060504030201ull;
    s.data = 0xdeadbeefcafef00dull;
    s.len = 0x1000;
    s.aux = 0x8000000000000001ull;
    for (int i = 0; i < 16; i++) {
        s.inline_data[i] = 0xf0 + i;
    }
    TAP_EQ(devvm_ring_push(&p, &s), 0, "push READ");
    TAP_CHECK(memcmp(slot0, want, 64) == 0, "READ slot bytes");
    TAP_EQ(get32(shm + DEVVM_RING_OFF_PROD), 1, "prod is 1 (LE u32 at 0)");

    /* a LOG slot: raw text at 16..63, unused text bytes zeroed */
    memset(&s, 0x99, sizeof(s));
    s.op = DEVVM_OP_LOG;
    s.flags = DEVVM_SLOT_F_MORE;
    s.tag = 0;
    s.status = 0;
    s.region = 0;
    s.size = 12;
    memcpy(s.text, "hello, world", 12);
    TAP_EQ(devvm_ring_push(&p, &s), 0, "push LOG");
    TAP_CHECK(memcmp(slot1, want_log, 64) == 0, "LOG slot bytes");
    s.size = DEVVM_LOG_TEXT_MAX + 1;
    TAP_EQ(devvm_ring_push(&p, &s), -DEVVM_EINVAL,
           "LOG with 49 text bytes refused");

    TAP_EQ(devvm_ring_pop(&c, &o), 0, "pop READ");
    TAP_CHECK(o.seq == 0 && o.op == DEVVM_OP_READ && o.flags == 0xa55a &&
              o.tag == 0x11223344 && o.status == 0x0102 && o.region == 5 &&
              o.size == 4 && o.addr == 0x0807060504030201ull &&
              o.data == 0xdeadbeefcafef00dull && o.len == 0x1000 &&
              o.aux == 0x8000000000000001ull &&
              memcmp(o.inline_data, want + 48, 16) == 0,
              "READ decodes to what was pushed");
    TAP_EQ(devvm_ring_pop(&c, &o), 0, "pop LOG");
    TAP_CHECK(o.seq == 1 && o.op == DEVVM_OP_LOG &&
              o.flags == DEVVM_SLOT_F_MORE && o.size == 12 &&
              memcmp(o.text, "hello, world", 12) == 0 && o.text[12] == 0 &&
              o.text[47] == 0, "LOG decodes to its text");

    /* a full 48-byte LOG */
    memset(&s, 0, sizeof(s));
    s.op = DEVVM_OP_LOG;
    s.size = DEVVM_LOG_TEXT_MAX;
    memset(s.text, 'x', DEVVM_LOG_TEXT_MAX);
    TAP_EQ(devvm_ring_push(&p, &s), 0, "push 48-byte LOG");
    TAP_EQ(devvm_ring_pop(&c, &o), 0, "pop 48-byte LOG");
    TAP_CHECK(o.size == 48 && memcmp(o.text, s.text, 48) == 0,
              "48-byte LOG text intact");

    /* a peer's LOG size above 48 is clamped to 48 */
    s.size = 5;
    TAP_EQ(devvm_ring_push(&p, &s), 0, "push 5-byte LOG");
    slot0[3 * DEVVM_SLOT_SIZE + DEVVM_SLOT_OFF_SIZE] = 200;
    TAP_EQ(devvm_ring_pop(&c, &o), 0, "pop LOG claiming 200 bytes");
    TAP_EQ(o.size, DEVVM_LOG_TEXT_MAX, "LOG size clamped to 48");
}

static void test_doorbell(void)
{
    struct devvm_ring p, c;
    struct devvm_slot s, o;
    uint8_t *nw = shm + DEVVM_RING_OFF_NEED_WAKEUP;

    memset(&s, 0, sizeof(s));
    s.op = DEVVM_OP_READ;
    fresh_ring(8, &p, &c);

    devvm_ring_poll_mode(&c);
    TAP_EQ(devvm_ring_push(&p, &s), 0, "push (polling consumer)");
    TAP_EQ(devvm_ring_kick_needed(&p), 0, "poll mode: no kick needed");
    TAP_EQ(devvm_ring_pop(&c, &o), 0, "pop");

    TAP_EQ(devvm_ring_prepare_sleep(&c), DEVVM_E_AGAIN,
           "prepare_sleep on an empty ring: AGAIN");
    TAP_EQ(get32(nw), 1, "need_wakeup set");
    TAP_EQ(devvm_ring_push(&p, &s), 0, "push (sleeping consumer)");
    TAP_EQ(devvm_ring_kick_needed(&p), 1, "sleeping consumer: kick needed");
    TAP_EQ(devvm_ring_prepare_sleep(&c), 0,
           "prepare_sleep with work pending: 0");
    TAP_EQ(get32(nw), 0, "need_wakeup cleared again");
    TAP_EQ(devvm_ring_kick_needed(&p), 0, "no kick after that");
    TAP_EQ(devvm_ring_pop(&c, &o), 0, "pop the work");

    /* the slot was seen by a pop attempt but not consumed yet */
    TAP_EQ(devvm_ring_push(&p, &s), 0, "push two");
    TAP_EQ(devvm_ring_push(&p, &s), 0, "push two (2)");
    TAP_EQ(devvm_ring_pop(&c, &o), 0, "pop one of two");
    TAP_EQ(devvm_ring_prepare_sleep(&c), 0,
           "prepare_sleep with a cached slot: 0");
    TAP_EQ(get32(nw), 0, "need_wakeup clear");
    TAP_EQ(devvm_ring_pop(&c, &o), 0, "pop the second");

    TAP_EQ(devvm_ring_prepare_sleep(&c), DEVVM_E_AGAIN, "sleep again");
    devvm_ring_poll_mode(&c);
    TAP_EQ(get32(nw), 0, "poll_mode clears need_wakeup");
    TAP_EQ(devvm_ring_push(&p, &s), 0, "push after poll_mode");
    TAP_EQ(devvm_ring_kick_needed(&p), 0, "no kick in poll mode");
}

static void test_channel(void)
{
    uint64_t size = devvm_shm_size(2, 8, 1024);
    struct devvm_shm_layout l;
    struct devvm_channel cli, dev, cli1;
    struct devvm_slot s, o;
    char reason[DEVVM_MAX_REASON + 16], small[6], longr[300];

    devvm_shm_format(shm, size, 2, 8, 1024, 41);
    TAP_EQ(devvm_shm_validate(shm, size, &l), 0, "validate");
    TAP_EQ(devvm_channel_attach(&cli, shm, &l, 2, DEVVM_SIDE_CLIENT),
           -DEVVM_EINVAL, "attach channel 2 of 2 refused");
    TAP_EQ(devvm_channel_attach(&cli, shm, &l, 0, 7), -DEVVM_EINVAL,
           "attach with a bad side refused");
    TAP_EQ(devvm_channel_attach(&cli, shm, &l, 0, DEVVM_SIDE_CLIENT), 0,
           "client attach");
    TAP_EQ(devvm_channel_attach(&dev, shm, &l, 0, DEVVM_SIDE_DEVICE), 0,
           "device attach");
    TAP_EQ(devvm_channel_attach(&cli1, shm, &l, 1, DEVVM_SIDE_CLIENT), 0,
           "client attach channel 1");
    TAP_EQ(cli.generation, 41, "attached generation");
    TAP_CHECK(cli.ring[DEVVM_RING_REQ].base == shm + 4096 &&
              cli.ring[DEVVM_RING_CPL].base == shm + 4096 + 640 &&
              cli.ring[DEVVM_RING_EVT].base == shm + 4096 + 2 * 640 &&
              cli.ring[DEVVM_RING_EVT_CPL].base == shm + 4096 + 3 * 640,
              "ring addresses");
    TAP_CHECK(cli.data == shm + 4096 + 4 * 640 && cli.data_size == 1024,
              "data area address and size");
    TAP_CHECK(cli1.ring[DEVVM_RING_REQ].base == shm + 4096 + l.channel_size,
              "channel 1 address");

    TAP_EQ(devvm_channel_check(&cli), DEVVM_E_STATE, "BOOTING: E_STATE");
    devvm_shm_set_state(shm, DEVVM_STATE_READY, 0, NULL);
    TAP_EQ(devvm_channel_check(&cli), 0, "READY: 0");
    devvm_shm_heartbeat(shm);
    devvm_shm_heartbeat(shm);
    TAP_EQ(devvm_shm_heartbeat_count(shm), 2, "heartbeat counts");

    /* one round trip on each ring pair */
    memset(&s, 0, sizeof(s));
    s.op = DEVVM_OP_READ;
    s.tag = 5;
    TAP_EQ(devvm_ring_push(&cli.ring[DEVVM_RING_REQ], &s), 0, "client REQ");
    TAP_EQ(devvm_ring_pop(&dev.ring[DEVVM_RING_REQ], &o), 0, "device REQ");
    TAP_EQ(o.tag, 5, "REQ tag");
    s.op = DEVVM_OP_READ_DONE;
    s.data = 0x1234;
    TAP_EQ(devvm_ring_push(&dev.ring[DEVVM_RING_CPL], &s), 0, "device CPL");
    TAP_EQ(devvm_ring_pop(&cli.ring[DEVVM_RING_CPL], &o), 0, "client CPL");
    TAP_CHECK(o.op == DEVVM_OP_READ_DONE && o.tag == 5 && o.data == 0x1234,
              "CPL contents");
    s.op = DEVVM_OP_DMA_READ;
    s.tag = 9;
    TAP_EQ(devvm_ring_push(&dev.ring[DEVVM_RING_EVT], &s), 0, "device EVT");
    TAP_EQ(devvm_ring_pop(&cli.ring[DEVVM_RING_EVT], &o), 0, "client EVT");
    s.op = DEVVM_OP_DMA_DONE;
    TAP_EQ(devvm_ring_push(&cli.ring[DEVVM_RING_EVT_CPL], &s), 0,
           "client EVT_CPL");
    TAP_EQ(devvm_ring_pop(&dev.ring[DEVVM_RING_EVT_CPL], &o), 0,
           "device EVT_CPL");
    TAP_CHECK(o.op == DEVVM_OP_DMA_DONE && o.tag == 9, "EVT_CPL contents");
    TAP_EQ(devvm_ring_pop(&cli1.ring[DEVVM_RING_CPL], &o), DEVVM_E_AGAIN,
           "channel 1 unaffected");

    /* re-attaching a ring in use continues where each end is */
    TAP_EQ(devvm_ring_push(&cli.ring[DEVVM_RING_REQ], &s), 0, "REQ again");
    TAP_EQ(devvm_channel_attach(&dev, shm, &l, 0, DEVVM_SIDE_DEVICE), 0,
           "device re-attach with a pending request");
    TAP_EQ(devvm_ring_pop(&dev.ring[DEVVM_RING_REQ], &o), 0,
           "pending request popped after re-attach");
    TAP_EQ(o.seq, 1, "pending request's seq");

    /* failure with a reason */
    devvm_shm_set_state(shm, DEVVM_STATE_FAILED, 22,
                        "device model crashed");
    TAP_EQ(devvm_channel_check(&cli), DEVVM_E_STATE, "FAILED: E_STATE");
    TAP_EQ(devvm_shm_state(shm), DEVVM_STATE_FAILED, "state FAILED");
    devvm_shm_reason(shm, reason, sizeof(reason));
    TAP_CHECK(strcmp(reason, "device model crashed") == 0, "reason '%s'",
              reason);
    TAP_EQ(get32(shm + DEVVM_SHM_OFF_FAIL_CODE), 22, "fail code");
    devvm_shm_reason(shm, small, sizeof(small));
    TAP_CHECK(strcmp(small, "devic") == 0, "reason truncated to buffer");

    memset(longr, 'r', sizeof(longr) - 1);
    longr[sizeof(longr) - 1] = 0;
    devvm_shm_set_state(shm, DEVVM_STATE_FAILED, 5, longr);
    devvm_shm_reason(shm, reason, sizeof(reason));
    TAP_EQ(strlen(reason), DEVVM_MAX_REASON - 1, "long reason truncated");
    TAP_EQ(shm[DEVVM_SHM_OFF_REASON + DEVVM_MAX_REASON - 1], 0,
           "shared reason NUL-terminated");
    devvm_shm_set_state(shm, DEVVM_STATE_STOPPED, 0, "bye");
    devvm_shm_reason(shm, reason, sizeof(reason));
    TAP_CHECK(strcmp(reason, "bye") == 0, "shorter reason replaces longer");
    TAP_EQ(shm[DEVVM_SHM_OFF_REASON + 5], 0, "old reason tail cleared");

    /* unterminated hostile reason */
    memset(shm + DEVVM_SHM_OFF_REASON, 'z', DEVVM_MAX_REASON);
    devvm_shm_reason(shm, reason, sizeof(reason));
    TAP_EQ(strlen(reason), DEVVM_MAX_REASON - 1,
           "unterminated shared reason bounded");

    /* a device restart: new generation */
    devvm_shm_set_state(shm, DEVVM_STATE_READY, 0, NULL);
    TAP_EQ(devvm_channel_check(&cli), 0, "READY again: 0");
    TAP_EQ(devvm_shm_format(shm, size, 2, 8, 1024,
                            devvm_shm_generation(shm) + 1), 0,
           "re-format with generation + 1");
    devvm_shm_set_state(shm, DEVVM_STATE_READY, 0, NULL);
    TAP_EQ(devvm_shm_generation(shm), 42, "generation 42");
    TAP_EQ(devvm_channel_check(&cli), DEVVM_E_STALE,
           "old attachment: E_STALE");
    TAP_EQ(devvm_channel_attach(&cli, shm, &l, 0, DEVVM_SIDE_CLIENT), 0,
           "re-attach");
    TAP_EQ(devvm_channel_check(&cli), 0, "new attachment: 0");
    TAP_EQ(devvm_ring_pop(&cli.ring[DEVVM_RING_CPL], &o), DEVVM_E_AGAIN,
           "rings empty after re-format");
    devvm_shm_set_state(shm, DEVVM_STATE_FAILED, 1, "oops");
    TAP_EQ(devvm_channel_check(&cli), DEVVM_E_STATE,
           "FAILED in the same generation: E_STATE");
}

static void test_corrupt_index(void)
{
    struct devvm_ring p, c;
    struct devvm_slot s, o;
    uint8_t *slot;

    memset(&s, 0, sizeof(s));
    s.op = DEVVM_OP_READ;

    /* prod far ahead */
    fresh_ring(8, &p, &c);
    put32(shm + DEVVM_RING_OFF_PROD, 1000);
    TAP_EQ(devvm_ring_pop(&c, &o), DEVVM_E_RING_INDEX,
           "prod far ahead: pop E_RING_INDEX");
    TAP_EQ(devvm_ring_pop(&c, &o), DEVVM_E_RING_INDEX, "and it sticks");
    TAP_EQ(get32(shm + DEVVM_RING_OFF_CONS), 0, "cons not advanced");
    put32(shm + DEVVM_RING_OFF_PROD, 9);
    TAP_EQ(devvm_ring_pop(&c, &o), DEVVM_E_RING_INDEX,
           "prod depth + 1 ahead: E_RING_INDEX");
    put32(shm + DEVVM_RING_OFF_PROD, UINT32_MAX);
    TAP_EQ(devvm_ring_pop(&c, &o), DEVVM_E_RING_INDEX,
           "prod behind cons: E_RING_INDEX");
    put32(shm + DEVVM_RING_OFF_PROD, 0);
    TAP_EQ(devvm_ring_pop(&c, &o), DEVVM_E_AGAIN, "restored: AGAIN");

    /* cons ahead of prod (seen when the producer fills the ring) */
    fresh_ring(8, &p, &c);
    for (int i = 0; i < 8; i++) {
        devvm_ring_push(&p, &s);
    }
    put32(shm + DEVVM_RING_OFF_CONS, 9);
    TAP_EQ(devvm_ring_push(&p, &s), DEVVM_E_RING_INDEX,
           "cons ahead of prod: push E_RING_INDEX");
    TAP_EQ(get32(shm + DEVVM_RING_OFF_PROD), 8, "prod not advanced");
    TAP_EQ(devvm_ring_space(&p), 0, "space 0 with a bad cons");
    put32(shm + DEVVM_RING_OFF_CONS, UINT32_MAX - 5);
    TAP_EQ(devvm_ring_push(&p, &s), DEVVM_E_RING_INDEX,
           "cons more than depth behind: E_RING_INDEX");
    put32(shm + DEVVM_RING_OFF_CONS, 3);
    TAP_EQ(devvm_ring_push(&p, &s), 0, "valid cons: push works");

    /* our own shared index is never read back */
    fresh_ring(8, &p, &c);
    put32(shm + DEVVM_RING_OFF_CONS, 5);
    put32(shm + DEVVM_RING_OFF_PROD, 1);
    TAP_EQ(devvm_ring_push(&p, &s), 0, "push ignores shared prod");
    TAP_EQ(get32(shm + DEVVM_RING_OFF_PROD), 1, "prod rewritten to 1");
    TAP_EQ(devvm_ring_pop(&c, &o), 0, "pop ignores shared cons");
    TAP_EQ(get32(shm + DEVVM_RING_OFF_CONS), 1, "cons rewritten to 1");

    /* wrong sequence number */
    fresh_ring(8, &p, &c);
    devvm_ring_push(&p, &s);
    devvm_ring_push(&p, &s);
    slot = shm + DEVVM_RING_OFF_SLOTS + DEVVM_SLOT_SIZE;
    put32(slot, 9);
    TAP_EQ(devvm_ring_pop(&c, &o), 0, "slot 0 fine");
    TAP_EQ(devvm_ring_pop(&c, &o), DEVVM_E_RING_SEQ, "slot 1: E_RING_SEQ");
    TAP_EQ(devvm_ring_pop(&c, &o), DEVVM_E_RING_SEQ, "and it sticks");
    TAP_EQ(get32(shm + DEVVM_RING_OFF_CONS), 1, "cons stays at 1");
    put32(slot, 1);
    TAP_EQ(devvm_ring_pop(&c, &o), 0, "fixed seq: pop works");
    TAP_EQ(o.seq, 1, "seq 1");

    /* a channel attach refuses rings whose indices are out of window */
    {
        uint64_t size = devvm_shm_size(1, 8, 0);
        struct devvm_shm_layout l;
        struct devvm_channel ch;

        devvm_shm_format(shm, size, 1, 8, 0, 1);
        devvm_shm_validate(shm, size, &l);
        put32(ring_base(shm, &l, 0, DEVVM_RING_EVT) + DEVVM_RING_OFF_PROD,
              100);
        TAP_EQ(devvm_channel_attach(&ch, shm, &l, 0, DEVVM_SIDE_CLIENT),
               DEVVM_E_RING_INDEX, "channel attach: bad EVT prod refused");
    }
}

static void test_data_range(void)
{
    uint64_t size = devvm_shm_size(1, 8, 4096);
    struct devvm_shm_layout l;
    struct devvm_channel ch;

    devvm_shm_format(shm, size, 1, 8, 4096, 1);
    devvm_shm_validate(shm, size, &l);
    devvm_channel_attach(&ch, shm, &l, 0, DEVVM_SIDE_DEVICE);
    TAP_EQ(devvm_channel_data_range(&ch, 0, 4096), 0, "whole data area");
    TAP_EQ(devvm_channel_data_range(&ch, 4096, 0), 0, "empty at the end");
    TAP_EQ(devvm_channel_data_range(&ch, 0, 0), 0, "empty at the start");
    TAP_EQ(devvm_channel_data_range(&ch, 4095, 1), 0, "last byte");
    TAP_EQ(devvm_channel_data_range(&ch, 4095, 2), DEVVM_E_BAD_FIELD,
           "one byte past the end");
    TAP_EQ(devvm_channel_data_range(&ch, 0, 4097), DEVVM_E_BAD_FIELD,
           "too long");
    TAP_EQ(devvm_channel_data_range(&ch, 4097, 0), DEVVM_E_BAD_FIELD,
           "empty past the end");
    TAP_EQ(devvm_channel_data_range(&ch, 1, UINT64_MAX), DEVVM_E_BAD_FIELD,
           "off + len wraps to 0");
    TAP_EQ(devvm_channel_data_range(&ch, UINT64_MAX, 2), DEVVM_E_BAD_FIELD,
           "off near 2^64, len wraps");
    TAP_EQ(devvm_channel_data_range(&ch, UINT64_MAX, 0), DEVVM_E_BAD_FIELD,
           "off 2^64 - 1, len 0");
    TAP_EQ(devvm_channel_data_range(&ch, 1ull << 32, 16), DEVVM_E_BAD_FIELD,
           "off 2^32");

    devvm_shm_format(shm, devvm_shm_size(1, 8, 0), 1, 8, 0, 1);
    devvm_shm_validate(shm, devvm_shm_size(1, 8, 0), &l);
    devvm_channel_attach(&ch, shm, &l, 0, DEVVM_SIDE_DEVICE);
    TAP_EQ(devvm_channel_data_range(&ch, 0, 0), 0, "no data area: 0, 0");
    TAP_EQ(devvm_channel_data_range(&ch, 0, 1), DEVVM_E_BAD_FIELD,
           "no data area: 0, 1");
}

int main(void)
{
    shm = aligned_alloc(4096, SHM_MAX);
    if (!shm) {
        printf("Bail out! no memory\n");
        return 1;
    }
    test_sizes();
    test_format_validate();
    test_validate_corrupt();
    test_ring_basic();
    test_slot_layout();
    test_doorbell();
    test_channel();
    test_corrupt_index();
    test_data_range();
    free(shm);
    return tap_done();
}
