/*
 * mydev: a device to start from (contrib/devvm/template, or
 * share/devvm/template where the SDK is installed).  One BAR of
 * registers and one MSI-X vector; a write to GO DMAs VALUE to client
 * memory at DMA_ADDR and signals the vector.  The same source builds
 * into a host program (process mode) and a device VM image.
 *
 *   0x00  ID        RO 32   MYDEV_ID
 *   0x08  VALUE     RW 64
 *   0x10  DMA_ADDR  RW 64   client bus address
 *   0x18  GO        WO 32   any value: DMA VALUE (8 bytes) to DMA_ADDR,
 *                           then MSI-X vector 0
 *   0x1c  STATUS    RO 32   0, or the errno of the last GO's DMA
 *
 * docs/devvm/sdk.rst is the guide.
 */
#include "libdevvm/sdk.h"
#include "libdevvm/le.h"

#define MYDEV_ID            0x4d594456u     /* "VDYM" */
#define REG_ID              0x00
#define REG_VALUE           0x08
#define REG_DMA_ADDR        0x10
#define REG_GO              0x18
#define REG_STATUS          0x1c
#define REGS_SIZE           0x20

struct mydev {
    uint64_t value;
    uint64_t dma_addr;
    uint32_t status;
};

static uint64_t mydev_read(struct devvm_dev *dev, unsigned bar, uint64_t off,
                           unsigned size)
{
    struct mydev *m = devvm_priv(dev);
    uint8_t regs[REGS_SIZE] = { 0 };

    (void)bar;
    devvm_st32(regs + REG_ID, MYDEV_ID);
    devvm_st64(regs + REG_VALUE, m->value);
    devvm_st64(regs + REG_DMA_ADDR, m->dma_addr);
    devvm_st32(regs + REG_STATUS, m->status);
    if (off + size > sizeof(regs)) {
        return 0;
    }
    return size == 8 ? devvm_ld64(regs + off) :
           size == 4 ? devvm_ld32(regs + off) :
           size == 2 ? devvm_ld16(regs + off) : regs[off];
}

static void mydev_write(struct devvm_dev *dev, unsigned bar, uint64_t off,
                        unsigned size, uint64_t value)
{
    struct mydev *m = devvm_priv(dev);
    uint8_t le[8];
    int err;

    (void)bar;
    if (off == REG_VALUE && size == 8) {
        m->value = value;
    } else if (off == REG_DMA_ADDR && size == 8) {
        m->dma_addr = value;
    } else if (off == REG_GO && size == 4) {
        devvm_st64(le, m->value);
        err = devvm_dma_write(dev, m->dma_addr, le, sizeof(le));
        m->status = -err;
        if (err) {
            devvm_log(dev, "DMA to 0x%llx failed: %d",
                      (unsigned long long)m->dma_addr, err);
        }
        devvm_msix_notify(dev, 0);
    }
}

static void mydev_reset(struct devvm_dev *dev)
{
    struct mydev *m = devvm_priv(dev);

    m->value = m->dma_addr = 0;
    m->status = 0;
}

static struct devvm_device mydev_desc = {
    .name = "mydev",
    .vendor_id = 0x1af4,
    .device_id = 0x10f3,
    .class_code = 0xff0000,
    .bars = {
        [0] = { .type = DEVVM_BAR_MEM32, .size = 0x1000 },
    },
    .msix_vectors = 1,
    .msix_bar = 0,
    .msix_table_offset = 0x800,
    .msix_pba_offset = 0xc00,
    .priv_size = sizeof(struct mydev),
    .read = mydev_read,
    .write = mydev_write,
    .reset = mydev_reset,
};

DEVVM_DEVICE(mydev_desc)
