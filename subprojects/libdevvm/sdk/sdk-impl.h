/*
 * libdevvm SDK internals: the contract between the SDK core (sdk.c,
 * freestanding, shared by every runtime) and a runtime (process mode in
 * sdk/process.c, the device VM in runtime/).
 *
 * The core owns the PCI view of an instance: it validates the
 * description, builds the config space, answers region/IRQ info, emulates
 * config space, splits region accesses into aligned 1/2/4/8-byte calls,
 * serves BAR memory windows and keeps MSI-X table/PBA accesses away from
 * the device.  The runtime owns transport: sockets or rings, DMA,
 * interrupts, logs, time, faults.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef LIBDEVVM_SDK_IMPL_H
#define LIBDEVVM_SDK_IMPL_H

#include <stdarg.h>

#include "libdevvm/sdk.h"
#include "libdevvm/ring.h"
#include "libdevvm/wire.h"

#define DEVVM_CONFIG_SIZE   256u     /* conventional PCI */
#define DEVVM_PCIE_CONFIG_SIZE 4096u /* PCI Express */

/* What a runtime provides for its instances. */
struct devvm_rt_ops {
    /*
     * DMA of 1 to @dma_max bytes, whose range does not wrap: 0,
     * -DEVVM_EFAULT (outside the client's maps; nothing copied),
     * -DEVVM_EIO.  devvm_dma_read/write split longer ranges.
     */
    int (*dma)(struct devvm_dev *dev, int write, uint64_t addr, void *buf,
               size_t len);
    size_t dma_max;                     /* not 0 */
    /* Optional: direct pointer into client memory, or NULL. */
    void *(*dma_map)(struct devvm_dev *dev, uint64_t addr, size_t len,
                     int write);
    /* @index VFIO_PCI_*_IRQ, @action DEVVM_IRQ_LOWER, RAISE or PULSE. */
    void (*irq)(struct devvm_dev *dev, unsigned index, unsigned vector,
                unsigned action);
    /* One formatted line, without newline. */
    void (*log)(struct devvm_dev *dev, const char *line, size_t len);
    /* Also DEVVM_FAULT_NONE: disarm a reply fault that has not fired. */
    void (*fault)(struct devvm_dev *dev, enum devvm_fault fault);
};

/* Every runtime defines these two (process: CLOCK_MONOTONIC/nanosleep;
 * device VM: TSC, heartbeat kept while sleeping). */
uint64_t devvm_rt_now_ns(void);
void devvm_rt_sleep_ns(uint64_t ns);

/* One instance: one client of one device. */
struct devvm_dev {
    const struct devvm_device *desc;
    const void *type_data;              /* devvm_type_init()'s, shared */
    void *priv;
    const struct devvm_rt_ops *rt;
    void *rt_opaque;                    /* the runtime's per-client state */
    void *bar_mem[DEVVM_NUM_BARS];      /* memory windows, from the runtime */
    uint8_t config[DEVVM_PCIE_CONFIG_SIZE]; /* emulated config space */
    uint8_t cap_at[DEVVM_MAX_CAPS];     /* offset of each desc->caps[] */
    uint8_t msi_at, msix_at, pcie_at;   /* 0 when absent */
    uint16_t ext_at[DEVVM_MAX_EXT_CAPS]; /* offset of each desc->ext_caps[] */
    uint64_t next_poll_ns;
    /* interrupt signals delivered (devvm_irq_signals()): the runtime adds
     * one for each, including INTx signals it repeats after an unmask */
    uint64_t irq_signals;
    /* DEVVM_FAULT_DMA_NO_MASTER armed: DMA skips the bus master check */
    int dma_ignores_master;
};

/* A fault's name for log lines: "garbage", "close", ... */
const char *devvm_fault_name(enum devvm_fault fault);

/*
 * Check a description; 0, or -DEVVM_EINVAL with a reason in @why (a
 * static string).  Runtimes call it once, before any instance.
 */
int devvm_desc_check(const struct devvm_device *desc, const char **why);

/*
 * Once per device, after devvm_desc_check() and before any instance:
 * desc->type_init, when there is one, on @type_data (desc->type_data_size
 * zeroed bytes from the runtime, NULL when that is 0).  0 or its error.
 */
int devvm_type_init(const struct devvm_device *desc, void *type_data);

/*
 * Set up an instance: @type_data is what devvm_type_init() filled in,
 * @priv desc->priv_size zeroed bytes, @bar_mem[i] the window of BAR i
 * (NULL when mem_size is 0).  Calls desc->init.
 */
int devvm_dev_init(struct devvm_dev *dev, const struct devvm_device *desc,
                   const void *type_data, void *priv,
                   void *const bar_mem[DEVVM_NUM_BARS],
                   const struct devvm_rt_ops *rt, void *rt_opaque);
/* Calls desc->fini. */
void devvm_dev_fini(struct devvm_dev *dev);

/*
 * vfio-user views of the description (region 0..8, irq 0..4).  A BAR with
 * a memory window gets DEVVM_REGION_F_MMAP and one sparse area, the
 * window; the runtime adds the fd (process mode) or clears both when it
 * cannot share the window with the client (device VM).  ERR and REQ have
 * no vectors.  0, or -DEVVM_EINVAL for an index out of range.
 */
void devvm_dev_device_info(const struct devvm_device *desc,
                           struct devvm_device_info *info);
int devvm_dev_region_info(const struct devvm_device *desc, uint32_t index,
                          struct devvm_region_info *info);
int devvm_dev_irq_info(const struct devvm_device *desc, uint32_t index,
                       struct devvm_irq_info *info);

/*
 * A client access of @count bytes to region @region (BARs, ROM, config),
 * already bounds-checked by the caller against region_info.  Returns 0 or
 * -DEVVM_Exxx.  Memory windows and the MSI-X table/PBA are handled here;
 * the rest is split into aligned pieces for desc->read/write.
 */
int devvm_dev_region_read(struct devvm_dev *dev, uint32_t region,
                          uint64_t offset, void *buf, uint32_t count);
int devvm_dev_region_write(struct devvm_dev *dev, uint32_t region,
                           uint64_t offset, const void *buf, uint32_t count);

/* DEVICE_RESET: config space back to its initial state, desc->reset. */
void devvm_dev_reset(struct devvm_dev *dev);

/* Run desc->poll if due (@after_access: a batch of accesses just ran). */
void devvm_dev_poll(struct devvm_dev *dev, int after_access);

/* vsnprintf subset of devvm_log(), freestanding. */
int devvm_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);

#endif /* LIBDEVVM_SDK_IMPL_H */
