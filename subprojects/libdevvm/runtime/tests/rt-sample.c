/*
 * rt-sample: a tiny device for bringing up and testing the device VM
 * runtime (rt-host.c drives it).  Written against the SDK only, so it
 * also builds in process mode.
 *
 * BAR0 (4 KiB registers):
 *   0x00  ID          RO  RT_SAMPLE_ID, or the "id" parameter
 *   0x08  SCRATCH     RW  64 bits
 *   0x10  MSIX        WO  signal MSI-X vector <value>
 *   0x18  DMA_ADDR    RW  64 bits, client bus address
 *   0x20  DMA_LEN     RW  1 to 64 (BUF), 1 to 192 KiB (BULK)
 *   0x24  DMA_CMD     WO  1: client memory -> BUF, 2: BUF -> client memory,
 *                         3: client memory -> BULK, 4: BULK -> client memory
 *   0x28  DMA_STATUS  RO  0, or the errno of the last DMA_CMD
 *   0x2c  LOG         WO  log a line with the value
 *   0x30  FAULT       WO  devvm_fault(<value>)
 *   0x34  OPENS       RO  instances opened since boot (all instances)
 *   0x38  TYPE        RO  the device type's data: ~ID, made by type_init,
 *                         which refuses an ID of 0 (ERANGE)
 *   0x40  BUF         RW  64 bytes
 * BULK: 192 KiB of device memory, reached by DMA only.
 * BAR1: MSI-X table (4 vectors) and PBA.
 * BAR2: 4 KiB of plain memory (a memory window).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "libdevvm/sdk.h"

#define RT_SAMPLE_ID        0x52545331u     /* "RTS1" */

enum {
    REG_ID = 0x00,
    REG_SCRATCH = 0x08,
    REG_MSIX = 0x10,
    REG_DMA_ADDR = 0x18,
    REG_DMA_LEN = 0x20,
    REG_DMA_CMD = 0x24,
    REG_DMA_STATUS = 0x28,
    REG_LOG = 0x2c,
    REG_FAULT = 0x30,
    REG_OPENS = 0x34,
    REG_TYPE = 0x38,
    REG_BUF = 0x40,
    BUF_SIZE = 64,
    BULK_SIZE = 0x30000,
};

struct sample {
    uint64_t scratch;
    uint64_t dma_addr;
    uint32_t dma_len;
    uint32_t dma_status;
    uint8_t buf[BUF_SIZE];
    uint8_t bulk[BULK_SIZE];
};

/* The device type's data, shared by every instance. */
struct sample_type {
    uint32_t not_id;
};

static uint32_t sample_id = RT_SAMPLE_ID;
static uint32_t opens;

static int sample_param(struct devvm_device *desc, const char *key,
                        const char *value)
{
    uint32_t v = 0;
    const char *p = value;

    if (key[0] != 'i' || key[1] != 'd' || key[2] || p[0] != '0' ||
        p[1] != 'x' || !p[2]) {
        return -DEVVM_EINVAL;
    }
    for (p += 2; *p; p++) {
        unsigned d = *p >= '0' && *p <= '9' ? *p - '0' :
                     *p >= 'a' && *p <= 'f' ? *p - 'a' + 10 : 16;

        if (d > 15 || v >> 28) {
            return -DEVVM_EINVAL;
        }
        v = v << 4 | d;
    }
    sample_id = v;
    return 0;
}

static int sample_type_init(const struct devvm_device *desc, void *data)
{
    struct sample_type *t = data;

    if (!sample_id) {
        return -DEVVM_ERANGE;
    }
    t->not_id = ~sample_id;
    return 0;
}

static int sample_init(struct devvm_dev *dev)
{
    opens++;
    return 0;
}

static uint64_t sample_read(struct devvm_dev *dev, unsigned bar,
                            uint64_t off, unsigned size)
{
    struct sample *s = devvm_priv(dev);
    uint64_t v = 0;
    unsigned i;

    if (off >= REG_BUF && off < REG_BUF + BUF_SIZE) {
        for (i = 0; i < size; i++) {
            v |= (uint64_t)s->buf[off - REG_BUF + i] << (8 * i);
        }
        return v;
    }
    switch (off) {
    case REG_ID:
        return sample_id;
    case REG_SCRATCH:
        return s->scratch;
    case REG_DMA_ADDR:
        return s->dma_addr;
    case REG_DMA_LEN:
        return s->dma_len;
    case REG_DMA_STATUS:
        return s->dma_status;
    case REG_OPENS:
        return opens;
    case REG_TYPE:
        return ((const struct sample_type *)devvm_type_data(dev))->not_id;
    default:
        return 0;
    }
}

static void sample_dma(struct devvm_dev *dev, struct sample *s, unsigned cmd)
{
    uint8_t *buf = cmd <= 2 ? s->buf : s->bulk;
    uint32_t max = cmd <= 2 ? BUF_SIZE : BULK_SIZE;
    int ret;

    if (s->dma_len < 1 || s->dma_len > max || cmd < 1 || cmd > 4) {
        s->dma_status = DEVVM_EINVAL;
        return;
    }
    ret = cmd & 1 ? devvm_dma_read(dev, s->dma_addr, buf, s->dma_len) :
                    devvm_dma_write(dev, s->dma_addr, buf, s->dma_len);
    s->dma_status = -ret;
}

static void sample_write(struct devvm_dev *dev, unsigned bar, uint64_t off,
                         unsigned size, uint64_t value)
{
    struct sample *s = devvm_priv(dev);
    unsigned i;

    if (off >= REG_BUF && off < REG_BUF + BUF_SIZE) {
        for (i = 0; i < size; i++) {
            s->buf[off - REG_BUF + i] = value >> (8 * i);
        }
        return;
    }
    switch (off) {
    case REG_SCRATCH:
        s->scratch = value;
        break;
    case REG_MSIX:
        devvm_msix_notify(dev, value);
        break;
    case REG_DMA_ADDR:
        s->dma_addr = value;
        break;
    case REG_DMA_LEN:
        s->dma_len = value;
        break;
    case REG_DMA_CMD:
        sample_dma(dev, s, value);
        break;
    case REG_LOG:
        /* longer than one LOG slot: the runtime chains two */
        devvm_log(dev, "log register: 0x%x, a line that needs two LOG "
                  "slots", (unsigned)value);
        break;
    case REG_FAULT:
        devvm_fault(dev, value);
        break;
    }
}

static struct devvm_device sample = {
    .name = "rt-sample",
    .vendor_id = 0x1af4,
    .device_id = 0x10fe,
    .subsystem_vendor_id = 0x1af4,
    .subsystem_id = 0x0001,
    .revision = 1,
    .class_code = 0xff0000,
    .bars = {
        [0] = { .type = DEVVM_BAR_MEM32, .size = 0x1000 },
        [1] = { .type = DEVVM_BAR_MEM32, .size = 0x1000 },
        [2] = { .type = DEVVM_BAR_MEM32, .size = 0x1000, .mem_size = 0x1000 },
    },
    .msix_vectors = 4,
    .msix_bar = 1,
    .msix_table_offset = 0,
    .msix_pba_offset = 0x800,
    .priv_size = sizeof(struct sample),
    .param = sample_param,
    .type_data_size = sizeof(struct sample_type),
    .type_init = sample_type_init,
    .init = sample_init,
    .read = sample_read,
    .write = sample_write,
};

DEVVM_DEVICE(sample)
