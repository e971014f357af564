/*
 * Encode/decode of every message against byte vectors written from
 * docs/devvm/protocol.rst (and vfio-user.rst), plus malformed input.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stdlib.h>
#include <string.h>

#include "libdevvm/ring.h"
#include "libdevvm/wire.h"
#include "tap.h"

/* "01 02 0a" -> bytes; returns the length */
static size_t hex(const char *s, uint8_t *out)
{
    size_t n = 0;

    while (*s) {
        if (*s == ' ' || *s == '\n' || *s == '|') {
            s++;
            continue;
        }
        out[n++] = (uint8_t)strtoul((char[]){ s[0], s[1], 0 }, NULL, 16);
        s += 2;
    }
    return n;
}

static uint8_t want[8192], got[8192];

/* encoded @len bytes in got[] must equal the vector */
static void check_bytes(int len, const char *vec, const char *what)
{
    size_t n = hex(vec, want);

    if (!TAP_CHECK(len == (int)n && !memcmp(got, want, n),
                   "%s: encoding matches the spec's bytes", what)) {
        int i;

        printf("#   len %d, want %zu\n#   got ", len, n);
        for (i = 0; i < len && i < 96; i++) {
            printf("%02x", got[i]);
        }
        printf("\n");
    }
}

/* Every proper prefix of a valid message must be refused. */
static void check_prefixes(const uint8_t *msg, size_t len, uint32_t nfds,
                           const char *what)
{
    struct devvm_msg m;
    size_t i;
    int bad = 0;

    for (i = 0; i < len; i++) {
        uint8_t *copy = malloc(i ? i : 1);

        memcpy(copy, msg, i);
        if (devvm_msg_decode(copy, i, nfds, &m) == DEVVM_OK) {
            bad++;
        }
        free(copy);
    }
    TAP_CHECK(!bad, "%s: all %zu truncations refused", what, len);
}

static int decode_vec(const char *vec, uint32_t nfds, struct devvm_msg *m)
{
    size_t n = hex(vec, want);

    return devvm_msg_decode(want, n, nfds, m);
}

static void test_header(void)
{
    struct devvm_hdr h;
    int len;

    len = devvm_encode_hdr_only(got, sizeof(got), 0x1234,
                                DEVVM_CMD_DEVICE_RESET, DEVVM_HDR_F_REPLY |
                                DEVVM_HDR_F_ERROR, 22);
    check_bytes(len, "3412 0d00 10000000 21000000 16000000", "error reply");
    TAP_EQ(devvm_hdr_decode(got, 15, DEVVM_MAX_MSG_SIZE, &h),
           DEVVM_E_TRUNCATED, "15-byte header is truncated");
    hex("0100 0100 08000000 00000000 00000000", want);
    TAP_EQ(devvm_hdr_decode(want, 16, DEVVM_MAX_MSG_SIZE, &h),
           DEVVM_E_TRUNCATED, "size below the header size");
    hex("0100 0900 00100000 00000000 00000000", want);
    TAP_EQ(devvm_hdr_decode(want, 16, 4095, &h), DEVVM_E_TOO_BIG,
           "size above the receiver's limit, before any payload");
    hex("0100 0900 ffffffff 00000000 00000000", want);
    TAP_EQ(devvm_hdr_decode(want, 16, 0xffffffff, &h), DEVVM_E_TOO_BIG,
           "size above DEVVM_MAX_MSG_SIZE");
    hex("0100 0900 10000000 02000000 00000000", want);
    TAP_EQ(devvm_hdr_decode(want, 16, 64, &h), DEVVM_E_BAD_FLAGS,
           "type 2 is no message type");
    hex("0100 0900 10000000 40000000 00000000", want);
    TAP_EQ(devvm_hdr_decode(want, 16, 64, &h), DEVVM_E_BAD_FLAGS,
           "unknown flag bit 6");
    hex("0100 0900 10000000 20000000 00000000", want);
    TAP_EQ(devvm_hdr_decode(want, 16, 64, &h), DEVVM_E_BAD_FLAGS,
           "error bit on a request");
    hex("0100 0900 10000000 11000000 00000000", want);
    TAP_EQ(devvm_hdr_decode(want, 16, 64, &h), DEVVM_E_BAD_FLAGS,
           "no-reply bit on a reply");
}

static void test_version(void)
{
    struct devvm_version v = { 0, 0, "{}", 2 };
    struct devvm_msg m;
    int len;

    len = devvm_encode_version(got, sizeof(got), 1, 0, &v);
    check_bytes(len, "0100 0100 17000000 00000000 00000000 | 0000 0000 "
                "7b7d00", "VERSION with capabilities");
    TAP_EQ(devvm_msg_decode(got, len, 0, &m), DEVVM_OK, "VERSION decodes");
    TAP_CHECK(m.u.version.caps_len == 2 &&
              !memcmp(m.u.version.caps, "{}", 3), "VERSION capabilities");
    check_prefixes(got, len, 0, "VERSION");
    TAP_EQ(devvm_msg_decode(got, len, 1, &m), DEVVM_E_BAD_FDS,
           "VERSION with an fd");
    TAP_EQ(decode_vec("0100 0100 17000000 00000000 00000000 0000 0000 "
                      "7b7d41", 0, &m), DEVVM_E_BAD_FIELD,
           "VERSION JSON not NUL-terminated");
    TAP_EQ(decode_vec("0100 0100 17000000 00000000 00000000 0000 0000 "
                      "7b007d00", 0, &m), DEVVM_E_BAD_FIELD,
           "VERSION JSON with an embedded NUL");
    v.caps = NULL;
    v.caps_len = 0;
    v.minor = 3;
    len = devvm_encode_version(got, sizeof(got), 2, DEVVM_HDR_F_REPLY, &v);
    check_bytes(len, "0200 0100 14000000 01000000 00000000 0000 0300",
                "VERSION reply without JSON");
    TAP_CHECK(devvm_msg_decode(got, len, 0, &m) == DEVVM_OK &&
              !m.u.version.caps && m.u.version.minor == 3,
              "VERSION without JSON decodes");
}

static void test_dma(void)
{
    struct devvm_dma_map map = { 32, 3, 0x1000, 0x80000000, 0x10000 };
    struct devvm_dma_unmap unmap = { 24, 0, 0x80000000, 0x10000 };
    struct devvm_msg m;
    int len;

    len = devvm_encode_dma_map(got, sizeof(got), 5, 0, &map);
    check_bytes(len, "0500 0200 30000000 00000000 00000000 | 20000000 "
                "03000000 0010000000000000 0000008000000000 "
                "0000010000000000", "DMA_MAP");
    TAP_CHECK(devvm_msg_decode(got, len, 1, &m) == DEVVM_OK &&
              m.u.dma_map.offset == 0x1000 &&
              m.u.dma_map.addr == 0x80000000 &&
              m.u.dma_map.size == 0x10000 && m.u.dma_map.flags == 3,
              "DMA_MAP with an fd decodes");
    TAP_EQ(devvm_msg_decode(got, len, 0, &m), DEVVM_OK,
           "DMA_MAP without an fd (DMA_READ/WRITE only)");
    TAP_EQ(devvm_msg_decode(got, len, 2, &m), DEVVM_E_BAD_FDS,
           "DMA_MAP with two fds");
    check_prefixes(got, len, 1, "DMA_MAP");
    map.flags = 4;
    len = devvm_encode_dma_map(got, sizeof(got), 5, 0, &map);
    TAP_EQ(devvm_msg_decode(got, len, 0, &m), DEVVM_E_BAD_FLAGS,
           "DMA_MAP with unknown flags");
    map.flags = 1;
    map.addr = ~0ull - 0xfff;
    len = devvm_encode_dma_map(got, sizeof(got), 5, 0, &map);
    TAP_EQ(devvm_msg_decode(got, len, 0, &m), DEVVM_E_BAD_FIELD,
           "DMA_MAP wrapping around the address space");
    map.addr = 0;
    map.size = 0;
    len = devvm_encode_dma_map(got, sizeof(got), 5, 0, &map);
    TAP_EQ(devvm_msg_decode(got, len, 0, &m), DEVVM_E_BAD_FIELD,
           "DMA_MAP of size 0");

    len = devvm_encode_dma_unmap(got, sizeof(got), 6, 0, &unmap);
    check_bytes(len, "0600 0300 28000000 00000000 00000000 | 18000000 "
                "00000000 0000008000000000 0000010000000000", "DMA_UNMAP");
    TAP_CHECK(devvm_msg_decode(got, len, 0, &m) == DEVVM_OK &&
              m.u.dma_unmap.addr == 0x80000000, "DMA_UNMAP decodes");
    check_prefixes(got, len, 0, "DMA_UNMAP");
    unmap.flags = DEVVM_DMA_UNMAP_F_ALL;
    len = devvm_encode_dma_unmap(got, sizeof(got), 6, 0, &unmap);
    TAP_EQ(devvm_msg_decode(got, len, 0, &m), DEVVM_E_BAD_FIELD,
           "DMA_UNMAP all with an address");
    unmap.addr = unmap.size = 0;
    len = devvm_encode_dma_unmap(got, sizeof(got), 6, 0, &unmap);
    TAP_EQ(devvm_msg_decode(got, len, 0, &m), DEVVM_OK, "DMA_UNMAP all");
    unmap.flags = 1;    /* dirty bitmap: not supported */
    len = devvm_encode_dma_unmap(got, sizeof(got), 6, 0, &unmap);
    TAP_EQ(devvm_msg_decode(got, len, 0, &m), DEVVM_E_BAD_FLAGS,
           "DMA_UNMAP with GET_DIRTY_BITMAP");
}

static void test_info(void)
{
    struct devvm_device_info di = { 16, DEVVM_DEVICE_F_PCI |
                                    DEVVM_DEVICE_F_RESET, 9, 5 };
    struct devvm_region_info ri = {
        .argsz = 1024, .flags = 7, .index = 2, .size = 0x4000,
        .offset = 0x20000, .nr_areas = 2,
        .areas = { { 0, 0x1000 }, { 0x2000, 0x2000 } },
    };
    struct devvm_irq_info qi = { 16, 9, 2, 64 };
    struct devvm_msg m;
    int len;

    len = devvm_encode_device_info(got, sizeof(got), 7, DEVVM_HDR_F_REPLY,
                                   &di);
    check_bytes(len, "0700 0400 20000000 01000000 00000000 | 10000000 "
                "03000000 09000000 05000000", "DEVICE_GET_INFO reply");
    TAP_CHECK(devvm_msg_decode(got, len, 0, &m) == DEVVM_OK &&
              m.u.dev_info.num_regions == 9 && m.u.dev_info.num_irqs == 5,
              "DEVICE_GET_INFO decodes");
    check_prefixes(got, len, 0, "DEVICE_GET_INFO");
    di.num_regions = DEVVM_MAX_REGIONS + 1;
    len = devvm_encode_device_info(got, sizeof(got), 7, DEVVM_HDR_F_REPLY,
                                   &di);
    TAP_EQ(devvm_msg_decode(got, len, 0, &m), DEVVM_E_TOO_BIG,
           "DEVICE_GET_INFO with too many regions");

    len = devvm_encode_region_info(got, sizeof(got), 8, DEVVM_HDR_F_REPLY,
                                   &ri);
    check_bytes(len, "0800 0500 60000000 01000000 00000000 | 50000000 "
                "0f000000 02000000 20000000 0040000000000000 "
                "0000020000000000 | 0100 0100 00000000 02000000 00000000 "
                "0000000000000000 0010000000000000 "
                "0020000000000000 0020000000000000",
                "GET_REGION_INFO reply with sparse mmap areas");
    TAP_CHECK(devvm_msg_decode(got, len, 1, &m) == DEVVM_OK &&
              m.u.region_info.nr_areas == 2 &&
              m.u.region_info.areas[1].offset == 0x2000 &&
              m.u.region_info.areas[1].size == 0x2000 &&
              m.u.region_info.offset == 0x20000,
              "GET_REGION_INFO decodes with its areas and fd");
    check_prefixes(got, len, 1, "GET_REGION_INFO reply");
    TAP_EQ(devvm_msg_decode(got, len, 2, &m), DEVVM_E_BAD_FDS,
           "GET_REGION_INFO reply with two fds");
    /* area beyond the region */
    got[DEVVM_HDR_SIZE + 32 + 16 + 16 + 8] = 0x30;  /* size of area 1 */
    TAP_EQ(devvm_msg_decode(got, len, 0, &m), DEVVM_E_BAD_FIELD,
           "sparse area past the end of the region");
    /* a capability chain that points backwards */
    len = devvm_encode_region_info(got, sizeof(got), 8, DEVVM_HDR_F_REPLY,
                                   &ri);
    got[DEVVM_HDR_SIZE + 32 + 4] = 0x20;
    TAP_EQ(devvm_msg_decode(got, len, 0, &m), DEVVM_E_BAD_FIELD,
           "capability chain pointing backwards");
    ri.argsz = 32;      /* the client left no room for capabilities */
    len = devvm_encode_region_info(got, sizeof(got), 8, DEVVM_HDR_F_REPLY,
                                   &ri);
    check_bytes(len, "0800 0500 30000000 01000000 00000000 | 50000000 "
                "07000000 02000000 00000000 0040000000000000 "
                "0000020000000000", "GET_REGION_INFO reply cut to argsz");
    TAP_CHECK(devvm_msg_decode(got, len, 0, &m) == DEVVM_OK &&
              m.u.region_info.argsz == 0x50 && !m.u.region_info.nr_areas,
              "cut reply decodes and asks for 80 bytes");
    ri.argsz = 1024;
    len = devvm_encode_region_info(got, sizeof(got), 8, 0, &ri);
    check_bytes(len, "0800 0500 30000000 00000000 00000000 | 00040000 "
                "07000000 02000000 00000000 0040000000000000 "
                "0000020000000000", "GET_REGION_INFO request");
    TAP_EQ(devvm_msg_decode(got, len, 1, &m), DEVVM_E_BAD_FDS,
           "GET_REGION_INFO request with an fd");

    len = devvm_encode_irq_info(got, sizeof(got), 9, DEVVM_HDR_F_REPLY, &qi);
    check_bytes(len, "0900 0700 20000000 01000000 00000000 | 10000000 "
                "09000000 02000000 40000000", "GET_IRQ_INFO reply");
    TAP_CHECK(devvm_msg_decode(got, len, 0, &m) == DEVVM_OK &&
              m.u.irq_info.count == 64, "GET_IRQ_INFO decodes");
    qi.count = DEVVM_MAX_IRQS + 1;
    len = devvm_encode_irq_info(got, sizeof(got), 9, DEVVM_HDR_F_REPLY, &qi);
    TAP_EQ(devvm_msg_decode(got, len, 0, &m), DEVVM_E_TOO_BIG,
           "GET_IRQ_INFO with too many vectors");
}

static void test_set_irqs(void)
{
    uint8_t bools[3] = { 1, 0, 1 };
    struct devvm_irq_set set = {
        .flags = DEVVM_IRQ_SET_DATA_EVENTFD | DEVVM_IRQ_SET_ACTION_TRIGGER,
        .index = DEVVM_PCI_MSIX_IRQ, .start = 1, .count = 2,
    };
    struct devvm_msg m;
    int len;

    len = devvm_encode_irq_set(got, sizeof(got), 10, 0, &set);
    check_bytes(len, "0a00 0800 24000000 00000000 00000000 | 14000000 "
                "24000000 02000000 01000000 02000000",
                "SET_IRQS eventfd trigger");
    TAP_EQ(devvm_msg_decode(got, len, 2, &m), DEVVM_OK,
           "SET_IRQS with one fd per vector");
    TAP_EQ(devvm_msg_decode(got, len, 0, &m), DEVVM_OK,
           "SET_IRQS without fds de-assigns");
    TAP_EQ(devvm_msg_decode(got, len, 1, &m), DEVVM_E_BAD_FDS,
           "SET_IRQS with the wrong fd count");
    check_prefixes(got, len, 2, "SET_IRQS");

    /* found by fuzz-wire: a reply with a payload it cannot have */
    TAP_EQ(decode_vec("0700 0800 27000000 01000000 00000000 17000000 "
                      "0a000000 42000000 00000000 03000000 050201", 0, &m),
           DEVVM_E_BAD_FIELD, "SET_IRQS reply with a payload");
    TAP_EQ(decode_vec("0700 0200 14000000 01000000 00000000 00000000", 0,
                      &m), DEVVM_E_BAD_FIELD, "DMA_MAP reply with a payload");

    set.flags = DEVVM_IRQ_SET_DATA_BOOL | DEVVM_IRQ_SET_ACTION_MASK;
    set.count = 3;
    set.bools = bools;
    len = devvm_encode_irq_set(got, sizeof(got), 11, 0, &set);
    check_bytes(len, "0b00 0800 27000000 00000000 00000000 | 17000000 "
                "0a000000 02000000 01000000 03000000 010001",
                "SET_IRQS bool mask");
    TAP_CHECK(devvm_msg_decode(got, len, 0, &m) == DEVVM_OK &&
              m.u.irq_set.bools && m.u.irq_set.bools[2] == 1,
              "SET_IRQS bools decode");
    TAP_EQ(devvm_msg_decode(got, len, 1, &m), DEVVM_E_BAD_FDS,
           "SET_IRQS bools with an fd");
    set.flags = DEVVM_IRQ_SET_DATA_NONE | DEVVM_IRQ_SET_DATA_BOOL |
                DEVVM_IRQ_SET_ACTION_MASK;
    len = devvm_encode_irq_set(got, sizeof(got), 11, 0, &set);
    TAP_EQ(devvm_msg_decode(got, len, 0, &m), DEVVM_E_BAD_FLAGS,
           "SET_IRQS with two data kinds");
    set.flags = DEVVM_IRQ_SET_DATA_NONE;
    len = devvm_encode_irq_set(got, sizeof(got), 11, 0, &set);
    TAP_EQ(devvm_msg_decode(got, len, 0, &m), DEVVM_E_BAD_FLAGS,
           "SET_IRQS without an action");
    set.flags = DEVVM_IRQ_SET_DATA_NONE | DEVVM_IRQ_SET_ACTION_TRIGGER;
    set.start = DEVVM_MAX_IRQS;
    len = devvm_encode_irq_set(got, sizeof(got), 11, 0, &set);
    TAP_EQ(devvm_msg_decode(got, len, 0, &m), DEVVM_E_BAD_FIELD,
           "SET_IRQS past the vector limit");
}

static void test_region_rw(void)
{
    struct devvm_region_rw rw = { 0x10, 0, 4, NULL };
    uint32_t data = 0xdeadbeef;
    struct devvm_msg m;
    int len;

    len = devvm_encode_region_rw(got, sizeof(got), 12,
                                 DEVVM_CMD_REGION_READ, 0, &rw);
    check_bytes(len, "0c00 0900 20000000 00000000 00000000 | "
                "1000000000000000 00000000 04000000", "REGION_READ");
    TAP_EQ(devvm_msg_decode(got, len, 0, &m), DEVVM_OK,
           "REGION_READ decodes");
    rw.data = &data;
    len = devvm_encode_region_rw(got, sizeof(got), 12,
                                 DEVVM_CMD_REGION_READ, DEVVM_HDR_F_REPLY,
                                 &rw);
    check_bytes(len, "0c00 0900 24000000 01000000 00000000 | "
                "1000000000000000 00000000 04000000 efbeadde",
                "REGION_READ reply");
    TAP_CHECK(devvm_msg_decode(got, len, 0, &m) == DEVVM_OK &&
              !memcmp(m.u.region_rw.data, &data, 4),
              "REGION_READ reply carries the data");
    check_prefixes(got, len, 0, "REGION_READ reply");
    len = devvm_encode_region_rw(got, sizeof(got), 13,
                                 DEVVM_CMD_REGION_WRITE,
                                 DEVVM_HDR_F_NO_REPLY, &rw);
    check_bytes(len, "0d00 0a00 24000000 10000000 00000000 | "
                "1000000000000000 00000000 04000000 efbeadde",
                "posted REGION_WRITE");
    TAP_EQ(devvm_msg_decode(got, len, 0, &m), DEVVM_OK,
           "REGION_WRITE decodes");
    TAP_EQ(devvm_msg_decode(got, len, 1, &m), DEVVM_E_BAD_FDS,
           "REGION_WRITE with an fd");
    /* count says 8, only 4 bytes follow */
    got[DEVVM_HDR_SIZE + 12] = 8;
    TAP_EQ(devvm_msg_decode(got, len, 0, &m), DEVVM_E_TRUNCATED,
           "REGION_WRITE count larger than its data");
    got[DEVVM_HDR_SIZE + 12] = 0;
    TAP_EQ(devvm_msg_decode(got, len, 0, &m), DEVVM_E_BAD_FIELD,
           "REGION_WRITE of 0 bytes");
    hex("0d00 0a00 20000000 00000000 00000000 1000000000000000 00000000 "
        "01001000", want);
    TAP_EQ(devvm_msg_decode(want, 32, 0, &m), DEVVM_E_TOO_BIG,
           "REGION_WRITE count above max_data_xfer_size");
}

static void test_dma_rw(void)
{
    uint8_t data[3] = { 1, 2, 3 };
    struct devvm_dma_rw rw = { 0x1000, 3, NULL };
    struct devvm_msg m;
    int len;

    len = devvm_encode_dma_rw(got, sizeof(got), 14, DEVVM_CMD_DMA_READ, 0,
                              &rw);
    check_bytes(len, "0e00 0b00 20000000 00000000 00000000 | "
                "0010000000000000 0300000000000000", "DMA_READ");
    TAP_EQ(devvm_msg_decode(got, len, 0, &m), DEVVM_OK, "DMA_READ decodes");
    rw.data = data;
    len = devvm_encode_dma_rw(got, sizeof(got), 14, DEVVM_CMD_DMA_READ,
                              DEVVM_HDR_F_REPLY, &rw);
    check_bytes(len, "0e00 0b00 23000000 01000000 00000000 | "
                "0010000000000000 0300000000000000 010203",
                "DMA_READ reply");
    TAP_CHECK(devvm_msg_decode(got, len, 0, &m) == DEVVM_OK &&
              m.u.dma_rw.count == 3 && m.u.dma_rw.data,
              "DMA_READ reply decodes");
    check_prefixes(got, len, 0, "DMA_READ reply");
    len = devvm_encode_dma_rw(got, sizeof(got), 15, DEVVM_CMD_DMA_WRITE, 0,
                              &rw);
    check_bytes(len, "0f00 0c00 23000000 00000000 00000000 | "
                "0010000000000000 0300000000000000 010203", "DMA_WRITE");
    TAP_EQ(devvm_msg_decode(got, len, 0, &m), DEVVM_OK, "DMA_WRITE decodes");
    TAP_CHECK(decode_vec("0f00 0c00 1c000000 01000000 00000000 "
                         "0010000000000000 03000000", 0, &m) == DEVVM_OK &&
              m.u.dma_rw.count == 3,
              "DMA_WRITE reply in the spec's 12-byte form");
    TAP_CHECK(decode_vec("0f00 0c00 20000000 01000000 00000000 "
                         "0010000000000000 0300000000000000", 0, &m) ==
              DEVVM_OK && m.u.dma_rw.count == 3,
              "DMA_WRITE reply in libvfio-user's 16-byte form");
    TAP_EQ(decode_vec("0f00 0c00 10000000 01000000 00000000", 0, &m),
           DEVVM_OK, "DMA_WRITE reply without payload (QEMU 10.2)");
    TAP_EQ(decode_vec("0f00 0b00 10000000 01000000 00000000", 0, &m),
           DEVVM_E_TRUNCATED, "a DMA_READ reply needs its payload");
}

static void test_misc(void)
{
    struct devvm_write_one wrs[2] = {
        { 0x8, 1, 4, { 0x11, 0x22, 0x33, 0x44 } },
        { 0x10, 1, 1, { 0x55 } },
    };
    struct devvm_write_one one;
    struct devvm_msg m;
    int len;

    len = devvm_encode_hdr_only(got, sizeof(got), 16,
                                DEVVM_CMD_DEVICE_RESET, 0, 0);
    check_bytes(len, "1000 0d00 10000000 00000000 00000000", "DEVICE_RESET");
    TAP_EQ(devvm_msg_decode(got, len, 0, &m), DEVVM_OK, "RESET decodes");
    TAP_EQ(decode_vec("1000 0d00 11000000 00000000 00000000 00", 0, &m),
           DEVVM_E_BAD_FIELD, "RESET with a payload");

    len = devvm_encode_write_multi(got, sizeof(got), 17, 0, wrs, 2);
    check_bytes(len, "1100 0f00 48000000 00000000 00000000 | "
                "0200000000000000 | 0800000000000000 01000000 04000000 "
                "1122334400000000 | 1000000000000000 01000000 01000000 "
                "5500000000000000", "REGION_WRITE_MULTI");
    TAP_EQ(devvm_msg_decode(got, len, 0, &m), DEVVM_OK,
           "REGION_WRITE_MULTI decodes");
    devvm_write_multi_get(&m.u.write_multi, 1, &one);
    TAP_CHECK(one.offset == 0x10 && one.count == 1 && one.data[0] == 0x55,
              "REGION_WRITE_MULTI entry 1");
    check_prefixes(got, len, 0, "REGION_WRITE_MULTI");
    got[DEVVM_HDR_SIZE + 8 + 12] = 9;
    TAP_EQ(devvm_msg_decode(got, len, 0, &m), DEVVM_E_BAD_FIELD,
           "REGION_WRITE_MULTI entry of 9 bytes");
    hex("1100 0f00 18000000 00000000 00000000 c900000000000000", want);
    TAP_EQ(devvm_msg_decode(want, 24, 0, &m), DEVVM_E_TOO_BIG,
           "REGION_WRITE_MULTI with 201 writes");
    len = devvm_encode_write_multi_reply(got, sizeof(got), 17, 2);
    check_bytes(len, "1100 0f00 18000000 01000000 00000000 "
                "0200000000000000", "REGION_WRITE_MULTI reply");
    TAP_CHECK(devvm_msg_decode(got, len, 0, &m) == DEVVM_OK &&
              m.u.write_multi.wr_cnt == 2, "REGION_WRITE_MULTI reply decodes");
}

static void test_devvm(void)
{
    struct devvm_ring_attach a = {
        .argsz = 32, .flags = DEVVM_ATTACH_F_EVENTS, .channel = 3,
        .depth = 256, .shm_size = 0x100000, .generation = 7,
    };
    struct devvm_ring_detach d = { 3, 0 };
    struct devvm_event ev = {
        .type = DEVVM_EVENT_STATE, .state = DEVVM_STATE_FAILED,
        .generation = 7, .reason = "boom", .reason_len = 4,
    };
    struct devvm_msg m;
    int len;

    len = devvm_encode_ring_attach(got, sizeof(got), 18, DEVVM_HDR_F_REPLY,
                                   &a);
    check_bytes(len, "1200 0144 30000000 01000000 00000000 | 20000000 "
                "01000000 03000000 00010000 0000100000000000 07000000 "
                "00000000", "RING_ATTACH reply");
    TAP_CHECK(devvm_msg_decode(got, len, 3, &m) == DEVVM_OK &&
              m.u.ring_attach.depth == 256 &&
              m.u.ring_attach.shm_size == 0x100000 &&
              m.u.ring_attach.generation == 7,
              "RING_ATTACH reply with three fds decodes");
    TAP_EQ(devvm_msg_decode(got, len, 2, &m), DEVVM_E_BAD_FDS,
           "RING_ATTACH reply with two fds");
    check_prefixes(got, len, 3, "RING_ATTACH reply");
    a.depth = 100;
    len = devvm_encode_ring_attach(got, sizeof(got), 18, DEVVM_HDR_F_REPLY,
                                   &a);
    TAP_EQ(devvm_msg_decode(got, len, 3, &m), DEVVM_E_BAD_FIELD,
           "RING_ATTACH depth not a power of two");
    len = devvm_encode_ring_attach(got, sizeof(got), 18, 0, &a);
    TAP_EQ(devvm_msg_decode(got, len, 0, &m), DEVVM_E_BAD_FIELD,
           "RING_ATTACH request with reply fields set");
    len = devvm_encode_ring_attach(got, sizeof(got), 18, 0,
                                   &(struct devvm_ring_attach){
                                       .argsz = 32,
                                       .flags = DEVVM_ATTACH_F_EVENTS });
    check_bytes(len, "1200 0144 30000000 00000000 00000000 | 20000000 "
                "01000000 00000000 00000000 0000000000000000 00000000 "
                "00000000", "RING_ATTACH request");
    TAP_EQ(devvm_msg_decode(got, len, 0, &m), DEVVM_OK,
           "RING_ATTACH request decodes");
    TAP_EQ(devvm_msg_decode(got, len, 1, &m), DEVVM_E_BAD_FDS,
           "RING_ATTACH request with an fd");

    len = devvm_encode_ring_detach(got, sizeof(got), 19, 0, &d);
    check_bytes(len, "1300 0244 18000000 00000000 00000000 | 03000000 "
                "00000000", "RING_DETACH");
    TAP_EQ(devvm_msg_decode(got, len, 0, &m), DEVVM_OK,
           "RING_DETACH decodes");

    len = devvm_encode_event(got, sizeof(got), 20, &ev);
    check_bytes(len, "1400 0344 25000000 10000000 00000000 | 01000000 "
                "03000000 07000000 00000000 626f6f6d00", "EVENT");
    TAP_CHECK(devvm_msg_decode(got, len, 0, &m) == DEVVM_OK &&
              m.u.event.state == DEVVM_STATE_FAILED &&
              !strcmp(m.u.event.reason, "boom"), "EVENT decodes");
    check_prefixes(got, len, 0, "EVENT");
    got[8] = 0;     /* without NO_REPLY */
    TAP_EQ(devvm_msg_decode(got, len, 0, &m), DEVVM_E_BAD_FLAGS,
           "EVENT expecting a reply");
}

static void test_malformed(void)
{
    struct devvm_msg m;

    TAP_EQ(decode_vec("0100 6300 10000000 00000000 00000000", 0, &m),
           DEVVM_E_UNKNOWN_CMD, "command 99 is unknown");
    TAP_CHECK(!devvm_cmd_known(99) && devvm_cmd_known(DEVVM_CMD_DIRTY_PAGES)
              && devvm_cmd_known(DEVVM_CMD_EVENT),
              "devvm_cmd_known tells defined from undefined commands");
    TAP_EQ(decode_vec("0100 0e00 10000000 00000000 00000000", 0, &m),
           DEVVM_E_UNKNOWN_CMD, "DIRTY_PAGES is not implemented");
    TAP_EQ(decode_vec("0100 0900 20000000 00000000 00000000", 0, &m),
           DEVVM_E_TRUNCATED, "size larger than the bytes given");
    TAP_EQ(decode_vec("0100 0d00 10000000 00000000 00000000 00", 0, &m),
           DEVVM_E_BAD_FIELD, "more bytes than the size says");
    TAP_EQ(decode_vec("0100 0900 10000000 21000000 05000000", 0, &m),
           DEVVM_OK, "an error reply is the header alone");
    TAP_EQ(decode_vec("0100 0900 10000000 21000000 05000000", 1, &m),
           DEVVM_E_BAD_FDS, "an error reply with an fd");
    TAP_EQ(decode_vec("0100 0d00 10000000 00000000 00000000",
                      DEVVM_MAX_FDS + 1, &m),
           DEVVM_E_BAD_FDS, "more fds than max_msg_fds");
    TAP_CHECK(strcmp(devvm_strerror(DEVVM_E_RING_INDEX), "unknown error") &&
              !strcmp(devvm_strerror(12345), "unknown error"),
              "every error has a name");
}

int main(void)
{
    test_header();
    test_version();
    test_dma();
    test_info();
    test_set_irqs();
    test_region_rw();
    test_dma_rw();
    test_misc();
    test_devvm();
    test_malformed();
    return tap_done();
}
