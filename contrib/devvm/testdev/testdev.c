/*
 * devvm-testdev: the device of devvm's regression suite, written against
 * the libdevvm SDK (docs/devvm/sdk.rst).  The register map is in
 * testdev.h, the description in docs/devvm/testdev.rst.
 *
 * Only device behaviour lives here: the SDK builds config space, checks
 * and splits accesses, serves BAR2's first half (a memory window) and
 * keeps the MSI-X table away from the device; the runtime (process mode,
 * or the device VM when built with -DDEVVM_RUNTIME_VM) does the rest.
 * No libc: the same source builds freestanding for the device VM image.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "libdevvm/sdk.h"
#include "libdevvm/needs.h"
#include "libdevvm/le.h"
#include "testdev.h"

#define PCI_CAP_ID_VNDR         0x09
#define PCI_EXT_CAP_ID_VNDR     0x000b
#define PCI_EXT_CAP_ID_DVSEC    0x0023

#define TESTDEV_NUM_BARS        6
#define TESTDEV_BAR2_MIN_SIZE   0x2000ull
#define TESTDEV_BAR2_MAX_SIZE   (1ull << 40)
#define TESTDEV_DMA_CHUNK       0x10000     /* bytes per devvm_dma_* call */

/* the DMA_STATUS values of testdev.h are the SDK's errno values */
_Static_assert(TESTDEV_DMA_EIO == DEVVM_EIO &&
               TESTDEV_DMA_EFAULT == DEVVM_EFAULT &&
               TESTDEV_DMA_EINVAL == DEVVM_EINVAL, "errno values");
_Static_assert(TESTDEV_DMA_CHUNK % 4 == 0, "FILL keeps the pattern's phase");

/* The state of one instance (the SDK zeroes it). */
struct testdev {
    uint8_t bar0[TESTDEV_BAR0_SIZE];    /* registers as they read */
    uint8_t bar2_store[TESTDEV_BAR2_STORE_SIZE];    /* BAR2's second half */
    uint8_t dma_buf[TESTDEV_DMA_CHUNK];
    uint8_t fill_buf[TESTDEV_DMA_CHUNK];    /* fill_pattern repeated */
    uint32_t fill_pattern;
    int fill_valid;                     /* fill_buf holds fill_pattern */
    uint32_t reset_count;
    uint32_t vendor_scratch;            /* config space 0x64 */
    uint32_t dvsec_scratch;             /* config space 0x10c (pcie=on) */
    int stall_armed;
    uint32_t stall_ms;
};

/* The device type's data, made once (type_init) for every instance. */
struct testdev_type {
    uint32_t crc_table[256];        /* CRC-32, IEEE 802.3, reflected */
};

static int testdev_overlaps(uint64_t off, uint64_t count, uint64_t start,
                            uint64_t len)
{
    return off < start + len && start < off + count;
}

/* Registers at power-on and after DEVICE_RESET. */
static void testdev_regs_reset(struct testdev *td)
{
    __builtin_memset(td->bar0, 0, sizeof(td->bar0));
    devvm_st32(td->bar0 + TESTDEV_REG_ID, TESTDEV_ID);
    devvm_st32(td->bar0 + TESTDEV_REG_VERSION, TESTDEV_VERSION);
    devvm_st32(td->bar0 + TESTDEV_REG_RESET_COUNT, td->reset_count);
    td->stall_armed = 0;
}

static int testdev_type_init(const struct devvm_device *desc,
                             void *type_data)
{
    struct testdev_type *t = type_data;
    uint32_t i, j, c;

    for (i = 0; i < 256; i++) {
        for (c = i, j = 0; j < 8; j++) {
            c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
        }
        t->crc_table[i] = c;
    }
    return 0;
}

static int testdev_init(struct devvm_dev *dev)
{
    testdev_regs_reset(devvm_priv(dev));
    return 0;
}

static void testdev_reset(struct devvm_dev *dev)
{
    struct testdev *td = devvm_priv(dev);

    td->reset_count++;
    testdev_regs_reset(td);
    devvm_intx_set(dev, 0);
}

/* ---- DMA ---------------------------------------------------------------- */

/* A copy in chunks, backwards when the ranges overlap that way. */
static int testdev_dma_copy(struct devvm_dev *dev, struct testdev *td,
                            uint64_t src, uint64_t dst, uint32_t len)
{
    int backwards = dst > src && dst - src < len;
    uint32_t done, n;
    int err;

    for (done = 0; done < len; done += n) {
        uint64_t at;

        n = len - done < TESTDEV_DMA_CHUNK ? len - done : TESTDEV_DMA_CHUNK;
        at = backwards ? len - done - n : done;
        err = devvm_dma_read(dev, src + at, td->dma_buf, n);
        if (!err) {
            err = devvm_dma_write(dev, dst + at, td->dma_buf, n);
        }
        if (err) {
            return err;
        }
    }
    return 0;
}

static int testdev_dma_fill(struct devvm_dev *dev, struct testdev *td,
                            uint64_t dst, uint32_t len, uint32_t pattern)
{
    uint32_t done, n, i;
    int err;

    /*
     * The pattern repeated over a chunk, kept for the next FILL with it:
     * built 8 bytes a step, since in a device VM this code runs under TCG
     * and a byte a step cost more than the transfer itself.
     */
    if (!td->fill_valid || td->fill_pattern != pattern) {
        uint64_t v = pattern | (uint64_t)pattern << 32;

        for (i = 0; i < TESTDEV_DMA_CHUNK; i += 8) {
            devvm_st64(td->fill_buf + i, v);
        }
        td->fill_pattern = pattern;
        td->fill_valid = 1;
    }
    for (done = 0; done < len; done += n) {
        n = len - done < TESTDEV_DMA_CHUNK ? len - done : TESTDEV_DMA_CHUNK;
        err = devvm_dma_write(dev, dst + done, td->fill_buf, n);
        if (err) {
            return err;
        }
    }
    return 0;
}

/*
 * The sum of @n bytes at @p, 8 a step: the bytes of each 8-byte word are
 * added in four 16-bit lanes, folded before a lane can overflow.
 */
static uint64_t testdev_byte_sum(const uint8_t *p, uint32_t n)
{
    typedef uint64_t __attribute__((may_alias, aligned(1))) u64_any;
    const uint64_t m = 0x00ff00ff00ff00ffull;
    uint64_t acc = 0;
    uint32_t i = 0;

    while (i + 8 <= n) {
        uint64_t lanes = 0;
        uint32_t end = n - i >= 128 * 8 ? i + 128 * 8 : n & ~7u;

        for (; i < end; i += 8) {   /* 128 steps: 128 * 2 * 255 < 65536 */
            uint64_t w = *(const u64_any *)(p + i);

            lanes += (w & m) + ((w >> 8) & m);
        }
        acc += (lanes & 0xffff) + ((lanes >> 16) & 0xffff) +
               ((lanes >> 32) & 0xffff) + (lanes >> 48);
    }
    for (; i < n; i++) {
        acc += p[i];
    }
    return acc;
}

/*
 * CHECKSUM (the byte sum) or CRC32 of [src, +len), straight from client
 * memory when the runtime can map it.
 */
static int testdev_dma_digest(struct devvm_dev *dev, struct testdev *td,
                              uint32_t cmd, uint64_t src, uint32_t len,
                              uint64_t *result)
{
    const struct testdev_type *t = devvm_type_data(dev);
    uint64_t acc = cmd == TESTDEV_DMA_CRC32 ? 0xffffffffu : 0;
    uint32_t done, n, i;
    int err;

    *result = 0;
    for (done = 0; done < len; done += n) {
        const uint8_t *p;

        n = len - done < TESTDEV_DMA_CHUNK ? len - done : TESTDEV_DMA_CHUNK;
        p = devvm_dma_map(dev, src + done, n, 0);
        if (!p) {
            err = devvm_dma_read(dev, src + done, td->dma_buf, n);
            if (err) {
                return err;
            }
            p = td->dma_buf;
        }
        if (cmd == TESTDEV_DMA_CRC32) {
            for (i = 0; i < n; i++) {
                acc = t->crc_table[(acc ^ p[i]) & 0xff] ^ (acc >> 8);
            }
        } else {
            acc += testdev_byte_sum(p, n);
        }
    }
    *result = cmd == TESTDEV_DMA_CRC32 ? acc ^ 0xffffffffu : acc;
    return 0;
}

/* DMA_CMD: runs the command to its end before the write completes. */
static void testdev_dma(struct devvm_dev *dev, struct testdev *td,
                        uint32_t cmd)
{
    uint64_t src = devvm_ld64(td->bar0 + TESTDEV_REG_DMA_SRC);
    uint64_t dst = devvm_ld64(td->bar0 + TESTDEV_REG_DMA_DST);
    uint32_t len = devvm_ld32(td->bar0 + TESTDEV_REG_DMA_LEN);
    uint32_t pattern = devvm_ld32(td->bar0 + TESTDEV_REG_DMA_PATTERN);
    uint32_t irq = devvm_ld32(td->bar0 + TESTDEV_REG_DMA_IRQ);
    uint64_t result;
    int err = -DEVVM_EINVAL;

    if (len <= TESTDEV_DMA_MAX_LEN) {
        switch (cmd) {
        case TESTDEV_DMA_COPY:
            err = testdev_dma_copy(dev, td, src, dst, len);
            break;
        case TESTDEV_DMA_FILL:
            err = testdev_dma_fill(dev, td, dst, len, pattern);
            break;
        case TESTDEV_DMA_CHECKSUM:
        case TESTDEV_DMA_CRC32:
            err = testdev_dma_digest(dev, td, cmd, src, len, &result);
            devvm_st64(td->bar0 + TESTDEV_REG_DMA_RESULT, result);
            break;
        }
    }
    devvm_st32(td->bar0 + TESTDEV_REG_DMA_STATUS, -err);
    if (irq && irq - 1 < TESTDEV_MSIX_VECTORS) {
        devvm_msix_notify(dev, irq - 1);
    }
}

/* ---- faults ------------------------------------------------------------- */

static void testdev_fault(struct devvm_dev *dev, struct testdev *td,
                          uint32_t fault)
{
    /* testdev's FAULT values 2 to 9 and the SDK's faults */
    static const enum devvm_fault sdk_fault[] = {
        [TESTDEV_FAULT_HANG] = DEVVM_FAULT_HANG,
        [TESTDEV_FAULT_CRASH] = DEVVM_FAULT_CRASH,
        [TESTDEV_FAULT_GARBAGE] = DEVVM_FAULT_GARBAGE,
        [TESTDEV_FAULT_HUGE_SIZE] = DEVVM_FAULT_HUGE_SIZE,
        [TESTDEV_FAULT_WRONG_ID] = DEVVM_FAULT_WRONG_ID,
        [TESTDEV_FAULT_UNEXPECTED_FD] = DEVVM_FAULT_UNEXPECTED_FD,
        [TESTDEV_FAULT_CLOSE] = DEVVM_FAULT_CLOSE,
        [TESTDEV_FAULT_DMA_NO_MASTER] = DEVVM_FAULT_DMA_NO_MASTER,
    };

    switch (fault) {
    case TESTDEV_FAULT_NONE:
        td->stall_armed = 0;
        devvm_fault(dev, DEVVM_FAULT_NONE);
        break;
    case TESTDEV_FAULT_STALL:
        td->stall_armed = 1;
        td->stall_ms = devvm_ld32(td->bar0 + TESTDEV_REG_FAULT_ARG);
        break;
    case TESTDEV_FAULT_HANG ... TESTDEV_FAULT_DMA_NO_MASTER:
        devvm_fault(dev, sdk_fault[fault]);
        break;
    default:
        devvm_log(dev, "fault %u does not exist, ignored", fault);
        break;
    }
}

/* Each BAR access that reaches the device: an armed STALL waits here. */
static void testdev_bar_access(struct devvm_dev *dev, struct testdev *td)
{
    if (td->stall_armed) {
        td->stall_armed = 0;
        devvm_log(dev, "stalling %u ms", td->stall_ms);
        devvm_sleep_ns(td->stall_ms * 1000000ull);
    }
}

/* ---- BAR0 and BAR1 registers -------------------------------------------- */

/* Bytes of BAR0 that keep what is written. */
static int testdev_reg_writable(uint64_t off)
{
    return testdev_overlaps(off, 1, TESTDEV_REG_SCRATCH32, 4) ||
           testdev_overlaps(off, 1, TESTDEV_REG_SCRATCH64, 8) ||
           testdev_overlaps(off, 1, TESTDEV_REG_SCRATCH_BYTES,
                            TESTDEV_SCRATCH_BYTES_SIZE) ||
           testdev_overlaps(off, 1, TESTDEV_REG_DMA_SRC,
                            TESTDEV_REG_DMA_CMD - TESTDEV_REG_DMA_SRC) ||
           testdev_overlaps(off, 1, TESTDEV_REG_DMA_PATTERN, 4) ||
           testdev_overlaps(off, 1, TESTDEV_REG_DMA_IRQ, 4) ||
           testdev_overlaps(off, 1, TESTDEV_REG_FAULT_ARG, 4) ||
           off >= TESTDEV_REG_MEM;
}

/* BAR1 offsets that show BAR0's register at the same offset. */
static int testdev_bar1_shared(uint64_t off)
{
    return off < 4 || testdev_overlaps(off, 1, 0x08, 8) ||
           testdev_overlaps(off, 1, TESTDEV_REG_SCRATCH_BYTES,
                            TESTDEV_SCRATCH_BYTES_SIZE);
}

/* 32-bit registers whose writes act; they read 0 (INTX: the level). */
static const uint32_t testdev_triggers[] = {
    TESTDEV_REG_INTX, TESTDEV_REG_MSI, TESTDEV_REG_MSIX,
    TESTDEV_REG_MSI_VECTOR, TESTDEV_REG_DMA_CMD, TESTDEV_REG_FAULT,
};

static void testdev_trigger(struct devvm_dev *dev, struct testdev *td,
                            uint32_t reg, uint32_t val)
{
    switch (reg) {
    case TESTDEV_REG_INTX:
        devvm_st32(td->bar0 + TESTDEV_REG_INTX, val & 1);
        devvm_intx_set(dev, val & 1);
        break;
    case TESTDEV_REG_MSI:
        devvm_msi_notify(dev, 0);
        break;
    case TESTDEV_REG_MSI_VECTOR:
        /* any vector declared, whatever the guest enabled: the proxy checks */
        devvm_msi_notify(dev, val);
        break;
    case TESTDEV_REG_MSIX:
        if (val < TESTDEV_MSIX_VECTORS) {
            devvm_msix_notify(dev, val);
        }
        break;
    case TESTDEV_REG_DMA_CMD:
        testdev_dma(dev, td, val);
        break;
    case TESTDEV_REG_FAULT:
        testdev_fault(dev, td, val);
        break;
    }
}

static void testdev_bar0_write(struct devvm_dev *dev, struct testdev *td,
                               uint64_t off, const uint8_t *buf,
                               unsigned size)
{
    uint32_t i, t;

    for (i = 0; i < size; i++) {
        if (testdev_reg_writable(off + i)) {
            td->bar0[off + i] = buf[i];
        }
    }
    /*
     * then the actions, in register order: an 8-byte write may set
     * DMA_LEN and DMA_CMD at once
     */
    for (t = 0; t < sizeof(testdev_triggers) / sizeof(*testdev_triggers);
         t++) {
        uint32_t reg = testdev_triggers[t];
        uint8_t val[4];

        if (!testdev_overlaps(off, size, reg, 4)) {
            continue;
        }
        __builtin_memcpy(val, td->bar0 + reg, 4);
        for (i = 0; i < 4; i++) {
            if (testdev_overlaps(off, size, reg + i, 1)) {
                val[i] = buf[reg + i - off];
            }
        }
        testdev_trigger(dev, td, reg, devvm_ld32(val));
    }
}

/* ---- the SDK's callbacks ------------------------------------------------ */

static uint64_t testdev_read(struct devvm_dev *dev, unsigned bar,
                             uint64_t off, unsigned size)
{
    struct testdev *td = devvm_priv(dev);
    uint8_t b[8] = { 0 };
    unsigned i;

    if (bar < TESTDEV_NUM_BARS) {
        testdev_bar_access(dev, td);
    }
    switch (bar) {
    case 0:
        devvm_st32(td->bar0 + TESTDEV_REG_IRQ_COUNT,
                   (uint32_t)devvm_irq_signals(dev));
        __builtin_memcpy(b, td->bar0 + off, size);
        break;
    case 1:
        for (i = 0; i < size; i++) {
            b[i] = testdev_bar1_shared(off + i) ? td->bar0[off + i] : 0;
        }
        break;
    case 2:
        /* the first half is the SDK's memory window */
        __builtin_memcpy(b, td->bar2_store +
                         (off & (TESTDEV_BAR2_STORE_SIZE - 1)), size);
        break;
    case DEVVM_ROM_BAR:
        for (i = 0; i < size; i++) {
            uint64_t at = off + i;

            b[i] = at == 0 ? 0x55 : at == 1 ? 0xaa : at & 0xff;
        }
        break;
    }
    /* BAR4 outside the MSI-X table and PBA reads 0 */
    return devvm_ld64(b);
}

static void testdev_write(struct devvm_dev *dev, unsigned bar, uint64_t off,
                          unsigned size, uint64_t value)
{
    struct testdev *td = devvm_priv(dev);
    uint8_t b[8];
    unsigned i;

    devvm_st64(b, value);
    if (bar < TESTDEV_NUM_BARS) {
        testdev_bar_access(dev, td);
    }
    switch (bar) {
    case 0:
        testdev_bar0_write(dev, td, off, b, size);
        break;
    case 1:
        for (i = 0; i < size; i++) {
            if (testdev_bar1_shared(off + i) &&
                testdev_reg_writable(off + i)) {
                td->bar0[off + i] = b[i];
            }
        }
        break;
    case 2:
        __builtin_memcpy(td->bar2_store +
                         (off & (TESTDEV_BAR2_STORE_SIZE - 1)), b, size);
        break;
    }
}

/* initial contents; config_read/config_write serve the bodies */
static const uint8_t testdev_vendor_cap[TESTDEV_CAP_VENDOR_LEN] = {
    [2] = TESTDEV_CAP_VENDOR_LEN,
    [TESTDEV_CFG_VENDOR_MAGIC - TESTDEV_CAP_VENDOR] =
        TESTDEV_VENDOR_MAGIC & 0xff,
    (TESTDEV_VENDOR_MAGIC >> 8) & 0xff,
    (TESTDEV_VENDOR_MAGIC >> 16) & 0xff,
    TESTDEV_VENDOR_MAGIC >> 24,
};

/* DVSEC header 1: vendor 0x1af4, revision 0, length 16; header 2: ID */
static const uint8_t testdev_dvsec[TESTDEV_EXT_DVSEC_LEN] = {
    [4] = TESTDEV_VENDOR_ID & 0xff, TESTDEV_VENDOR_ID >> 8,
    0x00, TESTDEV_EXT_DVSEC_LEN >> 4,
    TESTDEV_DVSEC_ID & 0xff, TESTDEV_DVSEC_ID >> 8,
};

/* VSEC header: ID 1, revision 1, length 12; then the magic */
static const uint8_t testdev_vsec[TESTDEV_EXT_VSEC_LEN] = {
    [4] = 0x01, 0x00, 0x01 | (TESTDEV_EXT_VSEC_LEN & 0xf) << 4,
    TESTDEV_EXT_VSEC_LEN >> 4,
    TESTDEV_VSEC_MAGIC & 0xff, (TESTDEV_VSEC_MAGIC >> 8) & 0xff,
    (TESTDEV_VSEC_MAGIC >> 16) & 0xff, TESTDEV_VSEC_MAGIC >> 24,
};

/*
 * The bodies of the capabilities: the vendor one's scratch and the
 * DVSEC's are read/write, the rest reads as its initial contents.
 */
static uint8_t testdev_config_byte(struct testdev *td, uint32_t off)
{
    if (off - TESTDEV_CFG_VENDOR_SCRATCH < 4) {
        return td->vendor_scratch >> (8 * (off - TESTDEV_CFG_VENDOR_SCRATCH));
    }
    if (off - TESTDEV_CFG_DVSEC_SCRATCH < 4) {
        return td->dvsec_scratch >> (8 * (off - TESTDEV_CFG_DVSEC_SCRATCH));
    }
    if (off - TESTDEV_CAP_VENDOR < TESTDEV_CAP_VENDOR_LEN) {
        return testdev_vendor_cap[off - TESTDEV_CAP_VENDOR];
    }
    if (off - TESTDEV_EXT_DVSEC < TESTDEV_EXT_DVSEC_LEN) {
        return testdev_dvsec[off - TESTDEV_EXT_DVSEC];
    }
    if (off - TESTDEV_EXT_VSEC < TESTDEV_EXT_VSEC_LEN) {
        return testdev_vsec[off - TESTDEV_EXT_VSEC];
    }
    return 0;       /* free space */
}

static void testdev_scratch_byte(uint32_t *reg, uint32_t at, uint32_t byte)
{
    *reg &= ~(0xffu << (8 * at));
    *reg |= (byte & 0xff) << (8 * at);
}

static uint32_t testdev_config_read(struct devvm_dev *dev, uint32_t off,
                                    unsigned size)
{
    struct testdev *td = devvm_priv(dev);
    uint32_t v = 0;
    unsigned i;

    for (i = 0; i < size; i++) {
        v |= (uint32_t)testdev_config_byte(td, off + i) << (8 * i);
    }
    return v;
}

static void testdev_config_write(struct devvm_dev *dev, uint32_t off,
                                 unsigned size, uint32_t value)
{
    struct testdev *td = devvm_priv(dev);
    unsigned i;

    for (i = 0; i < size; i++) {
        uint32_t at = off + i;

        uint32_t byte = value >> (8 * i);

        if (at - TESTDEV_CFG_VENDOR_SCRATCH < 4) {
            testdev_scratch_byte(&td->vendor_scratch,
                                 at - TESTDEV_CFG_VENDOR_SCRATCH, byte);
        } else if (at - TESTDEV_CFG_DVSEC_SCRATCH < 4) {
            testdev_scratch_byte(&td->dvsec_scratch,
                                 at - TESTDEV_CFG_DVSEC_SCRATCH, byte);
        }
    }
}

/* ---- parameters --------------------------------------------------------- */

static int testdev_streq(const char *a, const char *b)
{
    while (*a && *a == *b) {
        a++;
        b++;
    }
    return *a == *b;
}

/* N[KMG], decimal or 0x hex: a power of two from 8 KiB to 1 TiB. */
static int testdev_parse_size(const char *s, uint64_t *out)
{
    unsigned base = 10, shift = 0, digits = 0;
    uint64_t v = 0;

    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        base = 16;
        s += 2;
    }
    for (;; s++) {
        unsigned c = *s | 0x20, d;

        if (*s >= '0' && *s <= '9') {
            d = *s - '0';
        } else if (base == 16 && c >= 'a' && c <= 'f') {
            d = c - 'a' + 10;
        } else {
            break;
        }
        if (v > TESTDEV_BAR2_MAX_SIZE) {
            return -DEVVM_EINVAL;
        }
        v = v * base + d;
        digits++;
    }
    switch (*s | 0x20) {
    case 'k':
        shift = 10;
        break;
    case 'm':
        shift = 20;
        break;
    case 'g':
        shift = 30;
        break;
    }
    s += shift != 0;
    if (!digits || *s || v > TESTDEV_BAR2_MAX_SIZE >> shift) {
        return -DEVVM_EINVAL;
    }
    v <<= shift;
    if (v < TESTDEV_BAR2_MIN_SIZE || (v & (v - 1))) {
        return -DEVVM_EINVAL;
    }
    *out = v;
    return 0;
}

static const struct devvm_ext_capability testdev_ext_caps[] = {
    { PCI_EXT_CAP_ID_DVSEC, 1, TESTDEV_EXT_DVSEC_LEN, testdev_dvsec },
    { PCI_EXT_CAP_ID_VNDR, 1, TESTDEV_EXT_VSEC_LEN, testdev_vsec },
};

/* Decimal N, a power of two from @min to @max. */
static int testdev_parse_pow2(const char *s, uint64_t min, uint64_t max,
                              uint64_t *out)
{
    uint64_t v = 0;

    if (!*s) {
        return -DEVVM_EINVAL;
    }
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || v > max) {
            return -DEVVM_EINVAL;
        }
        v = v * 10 + (*s - '0');
    }
    if (v < min || v > max || (v & (v - 1))) {
        return -DEVVM_EINVAL;
    }
    *out = v;
    return 0;
}

/*
 * bar0-size=N: BAR0's size, 16 to 4096 bytes; registers past it are gone.
 * bar2-size=N[KMG]: BAR2's size; its first half is the memory window.
 * pcie=on|off: a PCI Express function with extended capabilities.
 * msi-vectors=N: MSI vectors (1, 2, 4, 8, 16 or 32).
 */
static int testdev_param(struct devvm_device *desc, const char *key,
                         const char *value)
{
    uint64_t size;

    if (testdev_streq(key, "pcie")) {
        desc->pcie = testdev_streq(value, "on");
        if (!desc->pcie && !testdev_streq(value, "off")) {
            return -DEVVM_EINVAL;
        }
        desc->ext_caps = desc->pcie ? testdev_ext_caps : 0;
        desc->nr_ext_caps = desc->pcie ? sizeof(testdev_ext_caps) /
                                         sizeof(testdev_ext_caps[0]) : 0;
        return 0;
    }
    if (testdev_streq(key, "msi-vectors")) {
        if (testdev_parse_pow2(value, 1, 32, &size)) {
            return -DEVVM_EINVAL;
        }
        desc->msi_vectors = size;
        return 0;
    }
    if (testdev_streq(key, "bar0-size")) {
        if (testdev_parse_pow2(value, 16, TESTDEV_BAR0_SIZE, &size)) {
            return -DEVVM_EINVAL;
        }
        desc->bars[0].size = size;
        return 0;
    }
    if (!testdev_streq(key, "bar2-size") ||
        testdev_parse_size(value, &size)) {
        return -DEVVM_EINVAL;
    }
    desc->bars[2].size = size;
    desc->bars[2].mem_size = size / 2;
    return 0;
}

/* ---- the description ---------------------------------------------------- */

static const struct devvm_capability testdev_caps[] = {
    { PCI_CAP_ID_VNDR, TESTDEV_CAP_VENDOR_LEN, testdev_vendor_cap },
};

static struct devvm_device testdev_desc = {
    .name = "devvm-testdev",
    .vendor_id = TESTDEV_VENDOR_ID,
    .device_id = TESTDEV_DEVICE_ID,
    .subsystem_vendor_id = TESTDEV_SUBSYS_VENDOR_ID,
    .subsystem_id = TESTDEV_SUBSYS_ID,
    .revision = TESTDEV_REVISION,
    .class_code = TESTDEV_CLASS_CODE,
    .bars = {
        [0] = { .type = DEVVM_BAR_MEM32, .size = TESTDEV_BAR0_SIZE },
        [1] = { .type = DEVVM_BAR_IO, .size = TESTDEV_BAR1_SIZE },
        [2] = {
            .type = DEVVM_BAR_MEM64,
            .flags = DEVVM_BAR_F_PREFETCH,
            .size = TESTDEV_BAR2_DEFAULT_SIZE,
            .mem_offset = 0,
            .mem_size = TESTDEV_BAR2_DEFAULT_SIZE / 2,
        },
        [4] = { .type = DEVVM_BAR_MEM64, .size = TESTDEV_BAR4_SIZE },
    },
    .rom_size = TESTDEV_ROM_SIZE,
    .intx_pin = TESTDEV_INTERRUPT_PIN,
    .msi_vectors = TESTDEV_MSI_VECTORS,
    .msix_vectors = TESTDEV_MSIX_VECTORS,
    .msix_bar = TESTDEV_MSIX_BAR,
    .msix_table_offset = TESTDEV_MSIX_TABLE_OFFSET,
    .msix_pba_offset = TESTDEV_MSIX_PBA_OFFSET,
    .caps = testdev_caps,
    .nr_caps = sizeof(testdev_caps) / sizeof(testdev_caps[0]),
    .priv_size = sizeof(struct testdev),
    .param = testdev_param,
    .type_data_size = sizeof(struct testdev_type),
    .type_init = testdev_type_init,
    .init = testdev_init,
    .read = testdev_read,
    .write = testdev_write,
    .config_read = testdev_config_read,
    .config_write = testdev_config_write,
    .reset = testdev_reset,
};

DEVVM_DEVICE(testdev_desc)

/*
 * What it needs from the host (docs/devvm/coordinator.rst): it polls, so
 * a core of its own; 64 MiB of guest RAM (the runtime's default); up to
 * four clients of one device VM (eight ring channels).  Built with
 * TESTDEV_NEEDS_SHARED, it is "testdev-shared", which makes do with 20%
 * of a core: the coordinator's test of time-slice reservations.
 */
#ifdef TESTDEV_NEEDS_SHARED
DEVVM_NEEDS(.name = "testdev-shared",
            .vendor_id = TESTDEV_VENDOR_ID, .device_id = TESTDEV_DEVICE_ID,
            .cores = DEVVM_NEEDS_CORE_SHARED, .percent = 20,
            .memory_mib = 64, .max_clients = 4,
            .flags = DEVVM_NEEDS_F_SHAREABLE);
#else
DEVVM_NEEDS(.name = "testdev",
            .vendor_id = TESTDEV_VENDOR_ID, .device_id = TESTDEV_DEVICE_ID,
            .cores = DEVVM_NEEDS_CORE_EXCLUSIVE, .percent = 100,
            .memory_mib = 64, .max_clients = 4,
            .flags = DEVVM_NEEDS_F_SHAREABLE);
#endif
