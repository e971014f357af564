/*
 * devvm-testdev: the device of devvm's regression suite, as a
 * process-mode vfio-user server (libdevvm's server role) with the devvm
 * ring transport.  The register map is in testdev.h, the description in
 * docs/devvm/testdev.rst.
 *
 *   devvm-testdev --socket PATH [--no-ring] [--bar2-size N[KMG]] [--once]
 *                 [--verbose]
 *   devvm-testdev --fd N [...]
 *
 * Threads: the main thread accepts clients and dispatches their socket
 * messages; while a client holds a ring channel, a ring thread serves
 * its request ring.  One mutex covers the device and the connection:
 * the main thread holds it while it dispatches a message, the ring
 * thread while it serves ring requests.  So a device-initiated DMA that
 * goes through DMA_READ/WRITE messages, which a ring access can start,
 * never meets a concurrent read of the socket.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "libdevvm/ring.h"
#include "libdevvm/le.h"
#include "libdevvm/server.h"
#include "testdev.h"

/* config space offsets: header type 0 (byte 0x0e stays 0) */
#define PCI_VENDOR_ID           0x00
#define PCI_DEVICE_ID           0x02
#define PCI_COMMAND             0x04
#define PCI_STATUS              0x06
#define PCI_REVISION_ID         0x08
#define PCI_CLASS_PROG          0x09
#define PCI_BASE_ADDRESS_0      0x10
#define PCI_SUBSYSTEM_VENDOR_ID 0x2c
#define PCI_SUBSYSTEM_ID        0x2e
#define PCI_ROM_ADDRESS         0x30
#define PCI_CAPABILITY_LIST     0x34
#define PCI_INTERRUPT_PIN       0x3d
#define PCI_STATUS_CAP_LIST     0x0010
#define PCI_COMMAND_MASTER      0x0004
/* I/O, memory, bus master, parity, SERR, INTx disable */
#define PCI_COMMAND_RW_MASK     0x0547
#define PCI_ROM_ADDRESS_ENABLE  0x1
#define PCI_CAP_ID_MSI          0x05
#define PCI_CAP_ID_VNDR         0x09
#define PCI_CAP_ID_MSIX         0x11
#define PCI_MSI_FLAGS_64BIT     0x0080

#define TESTDEV_NUM_BARS        6
#define TESTDEV_MSG_TIMEOUT_MS  5000    /* rest of a message, DMA replies */
#define TESTDEV_RING_BUDGET     64      /* ring requests per lock hold */
#define TESTDEV_RING_SPIN_NS    50000   /* busy-poll before sleeping */
#define TESTDEV_BAR2_MIN_SIZE   0x2000ull
#define TESTDEV_BAR2_MAX_SIZE   (1ull << 40)

/* the DMA_STATUS values of testdev.h are Linux errno numbers */
_Static_assert(TESTDEV_DMA_EIO == EIO && TESTDEV_DMA_EFAULT == EFAULT &&
               TESTDEV_DMA_EINVAL == EINVAL, "errno values");

/* what FAULT_GARBAGE writes: 32 bytes, no valid header */
static const char testdev_garbage[32] = "devvm-testdev: garbage, no msg!";

struct testdev {
    pthread_mutex_t lock;       /* everything below */
    struct devvm_server_conn conn;
    uint8_t config[TESTDEV_CONFIG_SIZE];
    uint8_t bar0[TESTDEV_BAR0_SIZE];    /* registers as they read */
    int bar2_fd;
    uint64_t bar2_size;
    int irq_fds[VFIO_PCI_NUM_IRQS][TESTDEV_MSIX_VECTORS];
    bool intx_level;
    bool intx_masked;
    uint32_t irq_count;
    uint32_t reset_count;
    /* faults */
    bool stall_armed;
    uint32_t stall_ms;
    uint32_t sock_fault;        /* armed for the next socket REGION_READ */
    bool close_conn;
    bool hung;                  /* atomic: read without the lock */
    /* the socket request being dispatched, from a peek at its header */
    struct devvm_hdr req;
    bool in_ring;               /* the ring thread is in a callback */
    int wake_fd;                /* ring thread -> main thread */
    /* the device end of the ring channel */
    int shm_fd;
    uint8_t *shm;
    uint64_t shm_size;
    struct devvm_channel ch;
    int kick_fd;
    int call_fd;
    pthread_t ring_tid;
    bool ring_running;
    bool ring_stop;             /* atomic */
};

static bool verbose;
static volatile sig_atomic_t stop;
static sigset_t wait_sigmask;   /* the signal mask while waiting */

__attribute__((format(printf, 1, 2)))
static void testdev_log(const char *fmt, ...)
{
    va_list ap;

    flockfile(stderr);
    fprintf(stderr, "devvm-testdev: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    funlockfile(stderr);
}

#define testdev_debug(...) do { \
        if (verbose) { \
            testdev_log(__VA_ARGS__); \
        } \
    } while (0)

static bool testdev_overlaps(uint64_t off, uint32_t count, uint64_t start,
                             uint64_t len)
{
    return off < start + len && start < off + count;
}

static int64_t testdev_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void testdev_sleep_ms(uint32_t ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
        continue;
    }
}

/* Add one to an eventfd (a doorbell, an interrupt). */
static bool testdev_notify(int fd)
{
    uint64_t one = 1;

    while (write(fd, &one, sizeof(one)) < 0) {
        if (errno != EINTR) {
            return false;
        }
    }
    return true;
}

/* Consume an eventfd's count, if any (fd is non-blocking). */
static void testdev_drain(int fd)
{
    uint64_t v;

    while (read(fd, &v, sizeof(v)) < 0 && errno == EINTR) {
        continue;
    }
}

/* ---- device state ------------------------------------------------------- */

static void testdev_config_init(struct testdev *td)
{
    uint8_t *c = td->config;

    memset(c, 0, TESTDEV_CONFIG_SIZE);
    devvm_st16(c + PCI_VENDOR_ID, TESTDEV_VENDOR_ID);
    devvm_st16(c + PCI_DEVICE_ID, TESTDEV_DEVICE_ID);
    devvm_st16(c + PCI_STATUS, PCI_STATUS_CAP_LIST);
    c[PCI_REVISION_ID] = TESTDEV_REVISION;
    c[PCI_CLASS_PROG] = TESTDEV_CLASS_CODE & 0xff;
    devvm_st16(c + PCI_CLASS_PROG + 1, TESTDEV_CLASS_CODE >> 8);
    devvm_st32(c + PCI_BASE_ADDRESS_0, TESTDEV_BAR0_TYPE);
    devvm_st32(c + PCI_BASE_ADDRESS_0 + 4, TESTDEV_BAR1_TYPE);
    devvm_st32(c + PCI_BASE_ADDRESS_0 + 8, TESTDEV_BAR2_TYPE);
    devvm_st32(c + PCI_BASE_ADDRESS_0 + 16, TESTDEV_BAR4_TYPE);
    devvm_st16(c + PCI_SUBSYSTEM_VENDOR_ID, TESTDEV_SUBSYS_VENDOR_ID);
    devvm_st16(c + PCI_SUBSYSTEM_ID, TESTDEV_SUBSYS_ID);
    c[PCI_CAPABILITY_LIST] = TESTDEV_CAP_MSI;
    c[PCI_INTERRUPT_PIN] = TESTDEV_INTERRUPT_PIN;

    c[TESTDEV_CAP_MSI] = PCI_CAP_ID_MSI;
    c[TESTDEV_CAP_MSI + 1] = TESTDEV_CAP_MSIX;
    devvm_st16(c + TESTDEV_CAP_MSI + 2, PCI_MSI_FLAGS_64BIT);

    c[TESTDEV_CAP_MSIX] = PCI_CAP_ID_MSIX;
    c[TESTDEV_CAP_MSIX + 1] = TESTDEV_CAP_VENDOR;
    devvm_st16(c + TESTDEV_CAP_MSIX + 2, TESTDEV_MSIX_VECTORS - 1);
    devvm_st32(c + TESTDEV_CAP_MSIX + 4,
         TESTDEV_MSIX_TABLE_OFFSET | TESTDEV_MSIX_BAR);
    devvm_st32(c + TESTDEV_CAP_MSIX + 8, TESTDEV_MSIX_PBA_OFFSET | TESTDEV_MSIX_BAR);

    c[TESTDEV_CAP_VENDOR] = PCI_CAP_ID_VNDR;
    c[TESTDEV_CAP_VENDOR + 2] = TESTDEV_CAP_VENDOR_LEN;
    devvm_st32(c + TESTDEV_CFG_VENDOR_MAGIC, TESTDEV_VENDOR_MAGIC);
}

/* Registers at power-on and after DEVICE_RESET. */
static void testdev_regs_reset(struct testdev *td)
{
    memset(td->bar0, 0, sizeof(td->bar0));
    devvm_st32(td->bar0 + TESTDEV_REG_ID, TESTDEV_ID);
    devvm_st32(td->bar0 + TESTDEV_REG_VERSION, TESTDEV_VERSION);
    devvm_st32(td->bar0 + TESTDEV_REG_IRQ_COUNT, td->irq_count);
    devvm_st32(td->bar0 + TESTDEV_REG_RESET_COUNT, td->reset_count);
    td->intx_level = false;
    td->intx_masked = false;
    td->stall_armed = false;
    td->sock_fault = TESTDEV_FAULT_NONE;
}

static uint32_t testdev_irq_vectors(uint32_t index)
{
    return index == VFIO_PCI_MSIX_IRQ ? TESTDEV_MSIX_VECTORS : 1;
}

static void testdev_irqs_close(struct testdev *td, uint32_t index)
{
    uint32_t i;

    for (i = 0; i < testdev_irq_vectors(index); i++) {
        if (td->irq_fds[index][i] >= 0) {
            close(td->irq_fds[index][i]);
            td->irq_fds[index][i] = -1;
        }
    }
    if (index == VFIO_PCI_INTX_IRQ) {
        td->intx_masked = false;
    }
}

/* Signal one vector's eventfd; counted in IRQ_COUNT when there is one. */
static void testdev_signal(struct testdev *td, uint32_t index,
                           uint32_t vector)
{
    int fd = td->irq_fds[index][vector];

    if (fd < 0) {
        testdev_debug("IRQ %u vector %u: no eventfd, not signalled", index,
                      vector);
        return;
    }
    if (!testdev_notify(fd)) {
        testdev_log("IRQ %u vector %u: eventfd write: %s", index, vector,
                    strerror(errno));
        return;
    }
    td->irq_count++;
    devvm_st32(td->bar0 + TESTDEV_REG_IRQ_COUNT, td->irq_count);
    testdev_debug("IRQ %u vector %u signalled (%u signals)", index, vector,
                  td->irq_count);
}

/*
 * vfio's automasked level-triggered INTx: a high line that is not masked
 * is signalled once, and then masked until the client unmasks it.
 */
static void testdev_intx_update(struct testdev *td)
{
    if (td->intx_level && !td->intx_masked &&
        td->irq_fds[VFIO_PCI_INTX_IRQ][0] >= 0) {
        testdev_signal(td, VFIO_PCI_INTX_IRQ, 0);
        td->intx_masked = true;
    }
}

static void testdev_intx_set(struct testdev *td, bool level)
{
    td->intx_level = level;
    devvm_st32(td->bar0 + TESTDEV_REG_INTX, level);
    testdev_intx_update(td);
}

/* ---- DMA ---------------------------------------------------------------- */

/* One transfer to or from client memory: 0, -EFAULT or -EIO. */
static int testdev_dma_xfer(struct testdev *td, bool write, uint64_t addr,
                            uint8_t *buf, uint32_t len)
{
    int ret;

    if (!len) {
        return 0;
    }
    if (!devvm_dma_covered(&td->conn.dma, addr, len, write)) {
        return -EFAULT;
    }
    ret = write ? devvm_server_conn_dma_write(&td->conn, addr, buf, len) :
                  devvm_server_conn_dma_read(&td->conn, addr, buf, len);
    if (ret) {
        testdev_log("DMA %s of 0x%" PRIx64 "+0x%x: %s",
                    write ? "write" : "read", addr, len,
                    devvm_strerror(ret));
        return -EIO;
    }
    return 0;
}

static int testdev_dma_run(struct testdev *td, uint32_t cmd, uint8_t *buf,
                           uint32_t len)
{
    uint64_t src = devvm_ld64(td->bar0 + TESTDEV_REG_DMA_SRC);
    uint64_t dst = devvm_ld64(td->bar0 + TESTDEV_REG_DMA_DST);
    uint32_t pattern = devvm_ld32(td->bar0 + TESTDEV_REG_DMA_PATTERN);
    uint64_t sum = 0;
    uint32_t i;
    int err;

    switch (cmd) {
    case TESTDEV_DMA_COPY:
        err = testdev_dma_xfer(td, false, src, buf, len);
        return err ? err : testdev_dma_xfer(td, true, dst, buf, len);
    case TESTDEV_DMA_FILL:
        for (i = 0; i < len; i++) {
            buf[i] = pattern >> (8 * (i & 3));
        }
        return testdev_dma_xfer(td, true, dst, buf, len);
    case TESTDEV_DMA_CHECKSUM:
        err = testdev_dma_xfer(td, false, src, buf, len);
        for (i = 0; !err && i < len; i++) {
            sum += buf[i];
        }
        devvm_st64(td->bar0 + TESTDEV_REG_DMA_RESULT, sum);
        return err;
    }
    return -EINVAL;
}

/* DMA_CMD: runs the command to its end before the write completes. */
static void testdev_dma(struct testdev *td, uint32_t cmd)
{
    uint32_t len = devvm_ld32(td->bar0 + TESTDEV_REG_DMA_LEN);
    uint32_t irq = devvm_ld32(td->bar0 + TESTDEV_REG_DMA_IRQ);
    uint8_t *buf;
    int err;

    if (len > TESTDEV_DMA_MAX_LEN) {
        err = -EINVAL;
    } else {
        buf = malloc(len ? len : 1);
        err = buf ? testdev_dma_run(td, cmd, buf, len) : -ENOMEM;
        free(buf);
    }
    devvm_st32(td->bar0 + TESTDEV_REG_DMA_STATUS, -err);
    testdev_debug("DMA command %u, %u bytes: %s", cmd, len,
                  err ? strerror(-err) : "done");
    if (irq && irq - 1 < TESTDEV_MSIX_VECTORS) {
        testdev_signal(td, VFIO_PCI_MSIX_IRQ, irq - 1);
    }
}

/* ---- faults ------------------------------------------------------------- */

static void testdev_fault(struct testdev *td, uint32_t fault)
{
    switch (fault) {
    case TESTDEV_FAULT_NONE:
        td->stall_armed = false;
        td->sock_fault = TESTDEV_FAULT_NONE;
        break;
    case TESTDEV_FAULT_STALL:
        td->stall_armed = true;
        td->stall_ms = devvm_ld32(td->bar0 + TESTDEV_REG_FAULT_ARG);
        break;
    case TESTDEV_FAULT_HANG:
        testdev_log("fault: hanging (the connection stays open)");
        __atomic_store_n(&td->hung, true, __ATOMIC_RELEASE);
        break;
    case TESTDEV_FAULT_CRASH:
        testdev_log("fault: crashing");
        abort();
    case TESTDEV_FAULT_GARBAGE:
    case TESTDEV_FAULT_HUGE_SIZE:
    case TESTDEV_FAULT_WRONG_ID:
    case TESTDEV_FAULT_UNEXPECTED_FD:
        td->sock_fault = fault;
        break;
    case TESTDEV_FAULT_CLOSE:
        testdev_log("fault: closing the connection");
        td->close_conn = true;
        testdev_notify(td->wake_fd);
        return;
    default:
        testdev_log("fault %u does not exist, ignored", fault);
        return;
    }
    testdev_debug("fault %u armed", fault);
}

/* Each BAR access: a stall armed by FAULT_STALL happens here, once. */
static void testdev_bar_access(struct testdev *td)
{
    if (td->stall_armed) {
        td->stall_armed = false;
        testdev_debug("stalling %u ms", td->stall_ms);
        testdev_sleep_ms(td->stall_ms);
    }
}

/*
 * A socket REGION_READ is about to be answered: put what an armed fault
 * asks for in front of the reply.  @data is what the reply will carry.
 */
static void testdev_sock_fault(struct testdev *td, uint32_t region,
                               uint64_t offset, const void *data,
                               uint32_t count)
{
    struct devvm_region_rw rw = { offset, region, count, data };
    size_t size = DEVVM_HDR_SIZE + 16 + count;
    uint32_t fault = td->sock_fault;
    uint16_t id = td->req.id;
    uint8_t *msg;
    int len, fd = -1;

    td->sock_fault = TESTDEV_FAULT_NONE;
    testdev_log("fault %u: before the reply to request %u", fault, id);
    if (fault == TESTDEV_FAULT_GARBAGE) {
        if (send(td->conn.fd, testdev_garbage, sizeof(testdev_garbage),
                 MSG_NOSIGNAL) < 0) {
            testdev_log("sending garbage: %s", strerror(errno));
        }
        return;
    }
    msg = malloc(size);
    if (!msg) {
        testdev_log("fault %u: out of memory", fault);
        return;
    }
    if (fault == TESTDEV_FAULT_HUGE_SIZE) {
        len = devvm_encode_hdr_only(msg, size, id, VFIO_USER_REGION_READ,
                                    VFIO_USER_F_REPLY, 0);
        devvm_st32(msg + 4, 0x7fffffff);
    } else {
        if (fault == TESTDEV_FAULT_WRONG_ID) {
            id += 0x8000;
        } else {
            fd = eventfd(0, EFD_CLOEXEC);
        }
        len = devvm_encode_region_rw(msg, size, id, VFIO_USER_REGION_READ,
                                     VFIO_USER_F_REPLY, &rw);
    }
    if (len > 0 && devvm_sock_send(td->conn.fd, msg, len, &fd, fd >= 0)) {
        testdev_log("fault %u: send failed", fault);
    }
    if (fd >= 0) {
        close(fd);
    }
    free(msg);
}

/* ---- BAR0 and BAR1 registers -------------------------------------------- */

/* Bytes of BAR0 that keep what is written. */
static bool testdev_reg_writable(uint64_t off)
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
static bool testdev_bar1_shared(uint64_t off)
{
    return off < 4 || testdev_overlaps(off, 1, 0x08, 8) ||
           testdev_overlaps(off, 1, TESTDEV_REG_SCRATCH_BYTES,
                            TESTDEV_SCRATCH_BYTES_SIZE);
}

/* 32-bit registers whose writes act; they read 0 (INTX: the level). */
static const uint32_t testdev_triggers[] = {
    TESTDEV_REG_INTX, TESTDEV_REG_MSI, TESTDEV_REG_MSIX,
    TESTDEV_REG_DMA_CMD, TESTDEV_REG_FAULT,
};

static void testdev_trigger(struct testdev *td, uint32_t reg, uint32_t val)
{
    switch (reg) {
    case TESTDEV_REG_INTX:
        testdev_intx_set(td, val & 1);
        break;
    case TESTDEV_REG_MSI:
        testdev_signal(td, VFIO_PCI_MSI_IRQ, 0);
        break;
    case TESTDEV_REG_MSIX:
        if (val < TESTDEV_MSIX_VECTORS) {
            testdev_signal(td, VFIO_PCI_MSIX_IRQ, val);
        } else {
            testdev_debug("MSI-X vector %u does not exist", val);
        }
        break;
    case TESTDEV_REG_DMA_CMD:
        testdev_dma(td, val);
        break;
    case TESTDEV_REG_FAULT:
        testdev_fault(td, val);
        break;
    }
}

static void testdev_bar0_write(struct testdev *td, uint64_t off,
                               const uint8_t *buf, uint32_t count)
{
    uint32_t i, t;

    for (i = 0; i < count; i++) {
        if (testdev_reg_writable(off + i)) {
            td->bar0[off + i] = buf[i];
        }
    }
    /*
     * then the actions, in register order: a write may set DMA_LEN and
     * DMA_CMD at once
     */
    for (t = 0; t < sizeof(testdev_triggers) / sizeof(*testdev_triggers);
         t++) {
        uint32_t reg = testdev_triggers[t];
        uint8_t val[4];

        if (!testdev_overlaps(off, count, reg, 4)) {
            continue;
        }
        memcpy(val, td->bar0 + reg, 4);
        for (i = 0; i < 4; i++) {
            if (testdev_overlaps(off, count, reg + i, 1)) {
                val[i] = buf[reg + i - off];
            }
        }
        testdev_trigger(td, reg, devvm_ld32(val));
    }
}

static void testdev_bar1_read(struct testdev *td, uint64_t off, uint8_t *buf,
                              uint32_t count)
{
    uint32_t i;

    for (i = 0; i < count; i++) {
        buf[i] = testdev_bar1_shared(off + i) ? td->bar0[off + i] : 0;
    }
}

static void testdev_bar1_write(struct testdev *td, uint64_t off,
                               const uint8_t *buf, uint32_t count)
{
    uint32_t i;

    for (i = 0; i < count; i++) {
        if (testdev_bar1_shared(off + i) && testdev_reg_writable(off + i)) {
            td->bar0[off + i] = buf[i];
        }
    }
}

/* ---- config space ------------------------------------------------------- */

/*
 * Config registers that keep the bits of their mask; writes elsewhere are
 * ignored.  The ROM BAR sizes as kernel vfio-pci and libvfio-user make
 * it, because QEMU's vfio-pci sizes the ROM through config space.
 */
static const struct {
    uint32_t off;
    uint32_t len;
    uint32_t mask;
} testdev_config_rw[] = {
    { PCI_COMMAND, 2, PCI_COMMAND_RW_MASK },
    { PCI_ROM_ADDRESS, 4, ~(TESTDEV_ROM_SIZE - 1u) | PCI_ROM_ADDRESS_ENABLE },
    { TESTDEV_CFG_VENDOR_SCRATCH, 4, 0xffffffffu },
};

static void testdev_config_write(struct testdev *td, uint64_t off,
                                 const uint8_t *buf, uint32_t count)
{
    uint16_t old = devvm_ld16(td->config + PCI_COMMAND), cmd;
    uint32_t i, r;

    for (i = 0; i < count; i++) {
        for (r = 0; r < sizeof(testdev_config_rw) /
                        sizeof(*testdev_config_rw); r++) {
            uint32_t at = testdev_config_rw[r].off;

            if (testdev_overlaps(off + i, 1, at, testdev_config_rw[r].len)) {
                td->config[off + i] = buf[i] & (testdev_config_rw[r].mask >>
                                                (8 * (off + i - at)));
            }
        }
    }
    cmd = devvm_ld16(td->config + PCI_COMMAND);
    if ((cmd ^ old) & PCI_COMMAND_MASTER) {
        testdev_debug("bus master %s",
                      cmd & PCI_COMMAND_MASTER ? "enabled" : "disabled");
    }
}

/* ---- server role callbacks ---------------------------------------------- */

static int testdev_device_info(void *opaque, struct devvm_device_info *info)
{
    info->flags = VFIO_DEVICE_F_PCI | VFIO_DEVICE_F_RESET;
    info->num_regions = VFIO_PCI_NUM_REGIONS;
    info->num_irqs = VFIO_PCI_NUM_IRQS;
    return 0;
}

static int testdev_region_info(void *opaque, uint32_t index,
                               struct devvm_region_info *r, int *fd)
{
    struct testdev *td = opaque;
    const uint32_t rw = VFIO_REGION_F_READ | VFIO_REGION_F_WRITE;

    memset(r, 0, sizeof(*r));
    switch (index) {
    case 0:
        r->size = TESTDEV_BAR0_SIZE;
        r->flags = rw;
        break;
    case 1:
        r->size = TESTDEV_BAR1_SIZE;
        r->flags = rw;
        break;
    case 2:
        /* the first half is mapped, the second only read and written */
        r->size = td->bar2_size;
        r->flags = rw | VFIO_REGION_F_MMAP;
        r->nr_areas = 1;
        r->areas[0].offset = 0;
        r->areas[0].size = td->bar2_size / 2;
        *fd = td->bar2_fd;
        break;
    case 4:
        r->size = TESTDEV_BAR4_SIZE;
        r->flags = rw;
        break;
    case VFIO_PCI_ROM_REGION:
        r->size = TESTDEV_ROM_SIZE;
        r->flags = VFIO_REGION_F_READ;
        break;
    case VFIO_PCI_CONFIG_REGION:
        r->size = TESTDEV_CONFIG_SIZE;
        r->flags = rw;
        break;
    }
    return 0;
}

static int testdev_irq_info(void *opaque, uint32_t index,
                            struct devvm_irq_info *q)
{
    static const uint32_t flags[VFIO_PCI_NUM_IRQS] = {
        [VFIO_PCI_INTX_IRQ] = VFIO_IRQ_INFO_F_EVENTFD |
                              VFIO_IRQ_INFO_F_MASKABLE |
                              VFIO_IRQ_INFO_F_AUTOMASKED,
        [VFIO_PCI_MSI_IRQ] = VFIO_IRQ_INFO_F_EVENTFD,
        [VFIO_PCI_MSIX_IRQ] = VFIO_IRQ_INFO_F_EVENTFD |
                              VFIO_IRQ_INFO_F_NORESIZE,
        [VFIO_PCI_ERR_IRQ] = VFIO_IRQ_INFO_F_EVENTFD,
        [VFIO_PCI_REQ_IRQ] = VFIO_IRQ_INFO_F_EVENTFD,
    };

    q->flags = flags[index];
    q->count = testdev_irq_vectors(index);
    return 0;
}

/* MASK and UNMASK: INTx only, without eventfds. */
static int testdev_intx_mask(struct testdev *td,
                             const struct devvm_irq_set *set, uint32_t count)
{
    uint32_t data = set->flags & VFIO_IRQ_SET_DATA_MASK;

    if (set->index != VFIO_PCI_INTX_IRQ) {
        return -EINVAL;
    }
    if (data == VFIO_IRQ_SET_DATA_EVENTFD) {
        return -ENOTSUP;
    }
    if (!count || (data == VFIO_IRQ_SET_DATA_BOOL && !set->bools[0])) {
        return 0;
    }
    if (set->flags & VFIO_IRQ_SET_ACTION_MASK) {
        td->intx_masked = true;
    } else {
        td->intx_masked = false;
        testdev_intx_update(td);
    }
    return 0;
}

/* The role checked index, start and count against testdev_irq_info(). */
static int testdev_set_irqs(void *opaque, const struct devvm_irq_set *set,
                            int *fds, uint32_t nfds)
{
    struct testdev *td = opaque;
    uint32_t data = set->flags & VFIO_IRQ_SET_DATA_MASK;
    uint32_t count = set->count, i;

    testdev_debug("SET_IRQS index %u start %u count %u flags 0x%x, %u fds",
                  set->index, set->start, set->count, set->flags, nfds);
    if (data == VFIO_IRQ_SET_DATA_NONE && count == 0) {
        if (set->flags & VFIO_IRQ_SET_ACTION_TRIGGER) {
            testdev_irqs_close(td, set->index);     /* disable the index */
            return 0;
        }
        count = testdev_irq_vectors(set->index);    /* all vectors */
    }
    if (!(set->flags & VFIO_IRQ_SET_ACTION_TRIGGER)) {
        return testdev_intx_mask(td, set, count);
    }
    if (data != VFIO_IRQ_SET_DATA_EVENTFD) {
        return -ENOTSUP;        /* no loopback triggering */
    }
    /* nfds is count (assign) or 0 (de-assign) */
    for (i = 0; i < count; i++) {
        int *slot = &td->irq_fds[set->index][set->start + i];

        if (*slot >= 0) {
            close(*slot);
        }
        *slot = nfds ? fds[i] : -1;
        if (nfds) {
            fds[i] = -1;
        }
    }
    if (set->index == VFIO_PCI_INTX_IRQ && count) {
        td->intx_masked = false;
    }
    return 0;
}

static int testdev_bar2_rw(struct testdev *td, bool write, uint64_t off,
                           void *buf, uint32_t count)
{
    ssize_t n = write ? pwrite(td->bar2_fd, buf, count, off) :
                        pread(td->bar2_fd, buf, count, off);

    if (n != (ssize_t)count) {
        testdev_log("BAR2 %s at 0x%" PRIx64 ": %s", write ? "write" : "read",
                    off, n < 0 ? strerror(errno) : "short");
        return -EIO;
    }
    return 0;
}

static int testdev_region_read(void *opaque, uint32_t region, uint64_t off,
                               void *buf, uint32_t count)
{
    struct testdev *td = opaque;
    uint8_t *p = buf;
    uint32_t i;
    int ret = 0;

    if (region < TESTDEV_NUM_BARS) {
        testdev_bar_access(td);
    }
    switch (region) {
    case 0:
        memcpy(buf, td->bar0 + off, count);
        break;
    case 1:
        testdev_bar1_read(td, off, buf, count);
        break;
    case 2:
        ret = testdev_bar2_rw(td, false, off, buf, count);
        break;
    case VFIO_PCI_ROM_REGION:
        for (i = 0; i < count; i++) {
            p[i] = off + i == 0 ? 0x55 : off + i == 1 ? 0xaa : off + i;
        }
        break;
    case VFIO_PCI_CONFIG_REGION:
        memcpy(buf, td->config + off, count);
        break;
    default:
        memset(buf, 0, count);      /* BAR4: the client emulates MSI-X */
        break;
    }
    if (verbose) {
        uint64_t v = 0;

        memcpy(&v, buf, count < 8 ? count : 8);
        testdev_log("%s read region %u offset 0x%" PRIx64 " count %u: "
                    "0x%" PRIx64 "%s", td->in_ring ? "ring" : "socket",
                    region, off, count, v, count > 8 ? "..." : "");
    }
    if (!ret && !td->in_ring && td->sock_fault) {
        testdev_sock_fault(td, region, off, buf, count);
    }
    return ret;
}

static int testdev_region_write(void *opaque, uint32_t region, uint64_t off,
                                const void *buf, uint32_t count)
{
    struct testdev *td = opaque;

    if (verbose) {
        uint64_t v = 0;

        memcpy(&v, buf, count < 8 ? count : 8);
        testdev_log("%s write region %u offset 0x%" PRIx64 " count %u: "
                    "0x%" PRIx64 "%s", td->in_ring ? "ring" : "socket",
                    region, off, count, v, count > 8 ? "..." : "");
    }
    if (region < TESTDEV_NUM_BARS) {
        testdev_bar_access(td);
    }
    switch (region) {
    case 0:
        testdev_bar0_write(td, off, buf, count);
        break;
    case 1:
        testdev_bar1_write(td, off, buf, count);
        break;
    case 2:
        return testdev_bar2_rw(td, true, off, (void *)buf, count);
    case VFIO_PCI_CONFIG_REGION:
        testdev_config_write(td, off, buf, count);
        break;
    }
    return 0;
}

static int testdev_reset(void *opaque)
{
    struct testdev *td = opaque;

    td->reset_count++;
    testdev_regs_reset(td);
    testdev_debug("DEVICE_RESET (%u so far)", td->reset_count);
    return 0;
}

static void testdev_dma_changed(void *opaque)
{
    struct testdev *td = opaque;

    testdev_debug("DMA maps changed: %u now", td->conn.dma.nr);
}

static void testdev_conn_log(void *opaque, const char *msg)
{
    testdev_log("%s", msg);
}

/* ---- ring transport ----------------------------------------------------- */

/* Sleep on the kick doorbell (the ring is idle, or the device hangs). */
static void testdev_ring_sleep(struct testdev *td)
{
    struct pollfd pfd = { .fd = td->kick_fd, .events = POLLIN };

    if (poll(&pfd, 1, -1) > 0) {
        testdev_drain(td->kick_fd);
    }
}

/*
 * Execute up to TESTDEV_RING_BUDGET requests of the request ring, one at
 * a time so that a hang stops at the request that asked for it.
 * Returns the number served or a ring error.  Called with the lock.
 */
static int testdev_ring_serve(struct testdev *td)
{
    int served = 0, ret;

    td->in_ring = true;
    do {
        ret = devvm_server_ring_serve(&td->conn, &td->ch, td->call_fd, 1);
        served += ret > 0;
    } while (ret > 0 && served < TESTDEV_RING_BUDGET &&
             !__atomic_load_n(&td->hung, __ATOMIC_ACQUIRE));
    td->in_ring = false;
    return ret < 0 ? ret : served;
}

static void *testdev_ring_main(void *opaque)
{
    struct testdev *td = opaque;
    struct devvm_ring *req = &td->ch.ring[DEVVM_RING_REQ];
    int64_t busy_since = testdev_now_ns();
    bool wake;
    int ret;

    for (;;) {
        if (__atomic_load_n(&td->hung, __ATOMIC_ACQUIRE) &&
            !__atomic_load_n(&td->ring_stop, __ATOMIC_ACQUIRE)) {
            testdev_ring_sleep(td);
            continue;
        }
        pthread_mutex_lock(&td->lock);
        if (__atomic_load_n(&td->ring_stop, __ATOMIC_ACQUIRE)) {
            pthread_mutex_unlock(&td->lock);
            break;
        }
        ret = testdev_ring_serve(td);
        devvm_shm_heartbeat(td->shm);
        if (ret < 0) {
            testdev_log("ring: %s: channel failed", devvm_strerror(ret));
            devvm_shm_set_state(td->shm, DEVVM_STATE_FAILED, 1,
                                "corrupt ring");
            devvm_server_conn_event(&td->conn, DEVVM_STATE_FAILED,
                                    td->ch.generation, "corrupt ring");
        }
        /*
         * requests queued during a DMA, or a close, are the main
         * thread's to handle
         */
        wake = td->conn.npending || td->close_conn;
        pthread_mutex_unlock(&td->lock);
        if (wake) {
            testdev_notify(td->wake_fd);
        }
        if (ret < 0) {
            break;
        }
        if (ret > 0) {
            busy_since = testdev_now_ns();
        } else if (testdev_now_ns() - busy_since >= TESTDEV_RING_SPIN_NS) {
            if (devvm_ring_prepare_sleep(req) == DEVVM_E_AGAIN) {
                testdev_ring_sleep(td);
            }
            devvm_ring_poll_mode(req);
            busy_since = testdev_now_ns();
        }
    }
    return NULL;
}

/*
 * Stop the ring thread and drop the doorbells; with @drain, execute what
 * is left in the request ring first.  Called with the lock held, which
 * is dropped while the thread finishes.
 */
static void testdev_ring_stop(struct testdev *td, bool drain)
{
    if (!td->ring_running) {
        return;
    }
    __atomic_store_n(&td->ring_stop, true, __ATOMIC_RELEASE);
    testdev_notify(td->kick_fd);
    pthread_mutex_unlock(&td->lock);
    pthread_join(td->ring_tid, NULL);
    pthread_mutex_lock(&td->lock);
    td->ring_running = false;
    while (drain && testdev_ring_serve(td) > 0) {
        continue;
    }
    close(td->kick_fd);
    close(td->call_fd);
    td->kick_fd = td->call_fd = -1;
}

/*
 * The shared memory, made at the first attach and kept for the next
 * clients (each attach formats it as a new generation).
 */
static int testdev_shm_create(struct testdev *td)
{
    uint64_t size = devvm_shm_size(1, TESTDEV_RING_DEPTH,
                                   TESTDEV_RING_DATA_SIZE);
    int fd = memfd_create("devvm-testdev-ring", MFD_CLOEXEC);
    void *p;

    if (fd < 0 || ftruncate(fd, size) < 0) {
        int err = errno;

        testdev_log("ring memory: %s", strerror(err));
        if (fd >= 0) {
            close(fd);
        }
        return -err;
    }
    p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        int err = errno;

        testdev_log("ring memory: mmap: %s", strerror(err));
        close(fd);
        return -err;
    }
    td->shm_fd = fd;
    td->shm = p;
    td->shm_size = size;
    return 0;
}

static int testdev_ring_attach(void *opaque, struct devvm_ring_attach *a,
                               int fds[DEVVM_ATTACH_FDS])
{
    struct testdev *td = opaque;
    struct devvm_shm_layout l;
    uint32_t generation;
    int ret;

    testdev_ring_stop(td, false);
    if (!td->shm) {
        ret = testdev_shm_create(td);
        if (ret) {
            return ret;
        }
    }
    td->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    td->call_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    generation = devvm_shm_generation(td->shm) + 1;
    if (td->kick_fd < 0 || td->call_fd < 0 ||
        devvm_shm_format(td->shm, td->shm_size, 1, TESTDEV_RING_DEPTH,
                         TESTDEV_RING_DATA_SIZE, generation) ||
        devvm_shm_validate(td->shm, td->shm_size, &l) ||
        devvm_channel_attach(&td->ch, td->shm, &l, 0, DEVVM_SIDE_DEVICE)) {
        testdev_log("ring attach failed");
        ret = -EIO;
        goto fail;
    }
    devvm_shm_set_state(td->shm, DEVVM_STATE_READY, 0, "");
    td->ring_stop = false;
    ret = -pthread_create(&td->ring_tid, NULL, testdev_ring_main, td);
    if (ret) {
        testdev_log("ring thread: %s", strerror(-ret));
        goto fail;
    }
    td->ring_running = true;

    /*
     * the device uses neither event ring: IRQs are eventfds, DMA goes
     * through the socket
     */
    a->flags &= ~DEVVM_ATTACH_F_EVENTS;
    a->channel = 0;
    a->depth = TESTDEV_RING_DEPTH;
    a->shm_size = td->shm_size;
    a->generation = generation;
    fds[0] = dup(td->shm_fd);
    fds[1] = dup(td->kick_fd);
    fds[2] = dup(td->call_fd);
    testdev_debug("ring attached, generation %u", generation);
    return 0;

fail:
    if (td->kick_fd >= 0) {
        close(td->kick_fd);
    }
    if (td->call_fd >= 0) {
        close(td->call_fd);
    }
    td->kick_fd = td->call_fd = -1;
    return ret;
}

static int testdev_ring_detach(void *opaque, uint32_t channel)
{
    struct testdev *td = opaque;

    if (channel != 0 || !td->ring_running) {
        return -EINVAL;
    }
    /* what was published before the detach is executed before its reply */
    testdev_ring_stop(td, true);
    testdev_debug("ring detached");
    return 0;
}

static struct devvm_server_ops testdev_ops = {
    .device_info = testdev_device_info,
    .region_info = testdev_region_info,
    .irq_info = testdev_irq_info,
    .set_irqs = testdev_set_irqs,
    .region_read = testdev_region_read,
    .region_write = testdev_region_write,
    .reset = testdev_reset,
    .dma_changed = testdev_dma_changed,
    .ring_attach = testdev_ring_attach,
    .ring_detach = testdev_ring_detach,
    .log = testdev_conn_log,
};

/* ---- serving a client --------------------------------------------------- */

/*
 * Wait up to @timeout (NULL: no limit) for one of @pfd (may be none); a
 * pending SIGTERM or SIGINT is taken here.  Returns ppoll()'s count, 0
 * after a signal.
 */
static int testdev_wait(struct pollfd *pfd, nfds_t n,
                        const struct timespec *timeout)
{
    int ret = ppoll(pfd, n, timeout, &wait_sigmask);

    if (ret < 0 && errno != EINTR) {
        testdev_log("ppoll: %s", strerror(errno));
        exit(1);
    }
    return ret < 0 ? 0 : ret;
}

/* Before a dispatch: the header of the request it will handle. */
static void testdev_peek(struct testdev *td)
{
    uint8_t h[DEVVM_HDR_SIZE];

    memset(&td->req, 0, sizeof(td->req));
    if (td->conn.npending) {
        td->req = td->conn.pending[0].hdr;
    } else if (recv(td->conn.fd, h, sizeof(h), MSG_PEEK | MSG_DONTWAIT) ==
               sizeof(h)) {
        td->req.id = devvm_ld16(h);
        td->req.cmd = devvm_ld16(h + 2);
        td->req.size = devvm_ld32(h + 4);
        td->req.flags = devvm_ld32(h + 8);
    }
    testdev_debug("message %u: %s, %u bytes, flags 0x%x", td->req.id,
                  devvm_cmd_name(td->req.cmd), td->req.size, td->req.flags);
}

/* Close the connection's IRQs, ring and DMA maps; the device stays. */
static void testdev_disconnect(struct testdev *td)
{
    uint32_t i;

    testdev_ring_stop(td, false);
    devvm_server_conn_fini(&td->conn);
    for (i = 0; i < VFIO_PCI_NUM_IRQS; i++) {
        testdev_irqs_close(td, i);
    }
    /* faults aimed at this connection's stream end with it */
    td->sock_fault = TESTDEV_FAULT_NONE;
    td->close_conn = false;
    testdev_drain(td->wake_fd);
}

/*
 * Serve a connected client until it goes away, we are told to stop or a
 * fault ends the connection.  Returns 0 when the connection ended in an
 * orderly way, 1 on a protocol error.
 */
static int testdev_serve(struct testdev *td, int fd)
{
    struct pollfd pfd[2] = {
        { .fd = fd, .events = POLLIN },
        { .fd = td->wake_fd, .events = POLLIN },
    };
    const struct timespec no_wait = { 0, 0 };
    int ret;

    pthread_mutex_lock(&td->lock);
    ret = devvm_server_conn_init(&td->conn, fd, &testdev_ops, td, NULL);
    if (ret) {
        pthread_mutex_unlock(&td->lock);
        testdev_log("device description refused: %s", devvm_strerror(ret));
        close(fd);
        return 1;
    }
    td->conn.timeout_ms = TESTDEV_MSG_TIMEOUT_MS;
    testdev_debug("client connected");
    while (!stop) {
        bool ready;

        if (__atomic_load_n(&td->hung, __ATOMIC_ACQUIRE)) {
            pthread_mutex_unlock(&td->lock);
            while (!stop) {
                testdev_wait(NULL, 0, NULL);
            }
            pthread_mutex_lock(&td->lock);
            break;
        }
        if (td->close_conn) {
            shutdown(fd, SHUT_RDWR);
            ret = DEVVM_E_CLOSED;
            break;
        }
        ready = td->conn.npending || testdev_wait(pfd, 1, &no_wait) > 0;
        if (ready) {
            testdev_peek(td);
            ret = devvm_server_conn_dispatch(&td->conn,
                                             TESTDEV_MSG_TIMEOUT_MS);
            if (ret != DEVVM_OK && ret != DEVVM_E_AGAIN) {
                break;
            }
            continue;
        }
        pthread_mutex_unlock(&td->lock);
        testdev_wait(pfd, 2, NULL);
        if (pfd[1].revents) {
            testdev_drain(td->wake_fd);
        }
        pthread_mutex_lock(&td->lock);
    }
    if (stop) {
        testdev_debug("stopping");
    } else if (ret == DEVVM_E_CLOSED) {
        testdev_debug("client went away");
    } else {
        testdev_log("connection closed: %s", devvm_strerror(ret));
    }
    testdev_disconnect(td);
    pthread_mutex_unlock(&td->lock);
    return !stop && ret != DEVVM_E_CLOSED;
}

/* Next client, or -1 when told to stop. */
static int testdev_accept(int lfd)
{
    struct pollfd pfd = { .fd = lfd, .events = POLLIN };
    int fd;

    while (!stop) {
        testdev_wait(&pfd, 1, NULL);
        if (stop || !pfd.revents) {
            continue;
        }
        fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd >= 0) {
            return fd;
        }
        if (errno != EINTR && errno != ECONNABORTED && errno != EAGAIN) {
            testdev_log("accept: %s", strerror(errno));
            return -1;
        }
    }
    return -1;
}

/* Serve clients on @path one after the other. */
static int testdev_listen(struct testdev *td, const char *path, bool once)
{
    int lfd, fd, ret = 0;
    uid_t uid;

    lfd = devvm_sock_listen(path);
    if (lfd < 0) {
        testdev_log("cannot listen on %s: %s", path, devvm_strerror(lfd));
        return 1;
    }
    printf("ready\n");
    fflush(stdout);
    while ((fd = testdev_accept(lfd)) >= 0) {
        if (devvm_sock_peer_uid(fd, &uid) || uid != geteuid()) {
            testdev_log("client refused: not our uid");
            close(fd);
            continue;
        }
        ret = testdev_serve(td, fd);
        if (once) {
            break;
        }
    }
    if (fd < 0 && !stop) {
        ret = 1;
    }
    close(lfd);
    unlink(path);
    return stop ? 0 : ret;
}

/* ---- main --------------------------------------------------------------- */

static void testdev_on_signal(int sig)
{
    stop = 1;
}

static int testdev_init(struct testdev *td, uint64_t bar2_size)
{
    uint32_t i, j;

    memset(td, 0, sizeof(*td));
    pthread_mutex_init(&td->lock, NULL);
    td->shm_fd = td->kick_fd = td->call_fd = -1;
    for (i = 0; i < VFIO_PCI_NUM_IRQS; i++) {
        for (j = 0; j < TESTDEV_MSIX_VECTORS; j++) {
            td->irq_fds[i][j] = -1;
        }
    }
    testdev_config_init(td);
    testdev_regs_reset(td);
    td->bar2_size = bar2_size;
    td->bar2_fd = memfd_create("devvm-testdev-bar2", MFD_CLOEXEC);
    if (td->bar2_fd < 0 || ftruncate(td->bar2_fd, bar2_size) < 0) {
        testdev_log("BAR2 memory of 0x%" PRIx64 " bytes: %s", bar2_size,
                    strerror(errno));
        return -1;
    }
    td->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (td->wake_fd < 0) {
        testdev_log("eventfd: %s", strerror(errno));
        return -1;
    }
    return 0;
}

/* N[KMG]: a power of two from 8 KiB to 1 TiB. */
static bool testdev_parse_size(const char *s, uint64_t *out)
{
    char *end;
    unsigned long long v;
    int shift = 0;

    errno = 0;
    v = strtoull(s, &end, 0);
    if (errno || end == s || *s == '-') {
        return false;
    }
    switch (*end) {
    case 'K':
    case 'k':
        shift = 10;
        break;
    case 'M':
    case 'm':
        shift = 20;
        break;
    case 'G':
    case 'g':
        shift = 30;
        break;
    case '\0':
        break;
    default:
        return false;
    }
    if (shift && end[1]) {
        return false;
    }
    if (v > TESTDEV_BAR2_MAX_SIZE >> shift) {
        return false;
    }
    v <<= shift;
    if (v < TESTDEV_BAR2_MIN_SIZE || (v & (v - 1))) {
        return false;
    }
    *out = v;
    return true;
}

static void testdev_usage(FILE *f)
{
    fprintf(f,
"usage: devvm-testdev --socket PATH [OPTION...]\n"
"       devvm-testdev --fd N [OPTION...]\n"
"devvm's regression-suite test device as a vfio-user server.\n"
"\n"
"  -s, --socket PATH     listen on PATH (mode 0600) and serve one client at\n"
"                        a time; prints \"ready\" once listening\n"
"  -f, --fd N            serve the connected socket N, exit when it closes\n"
"  -n, --no-ring         do not offer the devvm ring transport\n"
"  -b, --bar2-size N     BAR2 size, a power of two from 8K to 1024G with an\n"
"                        optional K, M or G suffix (default 16M)\n"
"  -1, --once            exit after the first client (with --socket)\n"
"  -v, --verbose         log every request on stderr\n"
"  -h, --help            show this help\n"
"\n"
"SIGTERM or SIGINT: exit 0 (and remove the socket).\n");
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "socket", required_argument, NULL, 's' },
        { "fd", required_argument, NULL, 'f' },
        { "no-ring", no_argument, NULL, 'n' },
        { "bar2-size", required_argument, NULL, 'b' },
        { "once", no_argument, NULL, '1' },
        { "verbose", no_argument, NULL, 'v' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct sigaction sa = { .sa_handler = testdev_on_signal };
    static struct testdev td;
    uint64_t bar2_size = TESTDEV_BAR2_DEFAULT_SIZE;
    const char *path = NULL;
    bool once = false;
    sigset_t block;
    int opt, fd = -1, ret;
    char *end;

    while ((opt = getopt_long(argc, argv, "s:f:nb:1vh", longopts,
                              NULL)) != -1) {
        switch (opt) {
        case 's':
            path = optarg;
            break;
        case 'f':
            errno = 0;
            fd = strtol(optarg, &end, 10);
            if (errno || end == optarg || *end || fd < 0 ||
                fcntl(fd, F_GETFD) < 0) {
                testdev_log("--fd %s: not an open file descriptor", optarg);
                return 2;
            }
            break;
        case 'n':
            testdev_ops.ring_attach = NULL;
            testdev_ops.ring_detach = NULL;
            break;
        case 'b':
            if (!testdev_parse_size(optarg, &bar2_size)) {
                testdev_log("--bar2-size %s: not a power of two from 8K "
                            "to 1024G", optarg);
                return 2;
            }
            break;
        case '1':
            once = true;
            break;
        case 'v':
            verbose = true;
            break;
        case 'h':
            testdev_usage(stdout);
            return 0;
        default:
            testdev_usage(stderr);
            return 2;
        }
    }
    if (optind < argc || (path != NULL) == (fd >= 0)) {
        testdev_log("exactly one of --socket and --fd is needed");
        testdev_usage(stderr);
        return 2;
    }

    /* SIGTERM and SIGINT arrive only while the main thread waits */
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    pthread_sigmask(SIG_BLOCK, &block, &wait_sigmask);
    sigdelset(&wait_sigmask, SIGTERM);
    sigdelset(&wait_sigmask, SIGINT);
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (testdev_init(&td, bar2_size)) {
        return 1;
    }
    if (path) {
        return testdev_listen(&td, path, once);
    }
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    printf("ready\n");
    fflush(stdout);
    ret = testdev_serve(&td, fd);
    return stop ? 0 : ret;
}
