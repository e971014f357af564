/*
 * devvm-test-server: a process-mode vfio-user server built on libdevvm's
 * server role, for interoperability tests with other vfio-user clients
 * (QEMU's vfio-user-pci, libvfio-user's sample client, devvm-test-client).
 *
 *   devvm-test-server [--verbose] SOCKET_PATH
 *
 * Listens on SOCKET_PATH, prints "ready" on stdout once it does, and
 * serves one client at a time until it goes away, then the next one.
 * SIGTERM or SIGINT: close everything, remove the socket, exit 0.
 *
 * The device, a conventional PCI function:
 *   config space (region 7, 256 bytes)
 *       vendor:device 1af4:10f0 (the 1af4:10f0-10ff range that QEMU's
 *       docs/specs/pci-ids.rst leaves for experimental use), class ff0000,
 *       header type 0, interrupt pin A, no capabilities.  BAR registers
 *       read 0 (a 32-bit memory BAR): the client sizes and places BARs
 *       from the region info, as QEMU does.  Only the command register
 *       and the interrupt line keep what is written; other writes are
 *       ignored.
 *   BAR0 (region 0, 4 KiB, read/write, not mappable)
 *       0x000  ID, read-only: 0x1de5c0de
 *       0x004  read-only: DEVICE_RESETs since the client connected
 *       0x008  scratch registers up to the end, any width; cleared by
 *              DEVICE_RESET
 *   every other region has size 0
 *   IRQs: INTx 1, MSI 1, MSI-X 0, ERR 1, REQ 1; SET_IRQS keeps the
 *   eventfds (the device never signals them).  (With ERR and REQ QEMU
 *   sets up its error and request notifiers, without them it warns.)
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "libdevvm/le.h"
#include "libdevvm/server.h"

#define TS_VENDOR_ID        0x1af4
#define TS_DEVICE_ID        0x10f0
#define TS_CLASS            0xff0000u
#define TS_BAR0_SIZE        0x1000u
#define TS_CONFIG_SIZE      256u
#define TS_REG_ID           0x000
#define TS_REG_RESETS       0x004
#define TS_REG_SCRATCH      0x008
#define TS_ID               0x1de5c0deu

/* config space offsets (PCI header type 0) */
#define PCI_VENDOR_ID       0x00
#define PCI_DEVICE_ID       0x02
#define PCI_COMMAND         0x04
#define PCI_REVISION_ID     0x08
#define PCI_CLASS_PROG      0x09
#define PCI_HEADER_TYPE     0x0e
#define PCI_SUBSYSTEM_VENDOR_ID 0x2c
#define PCI_SUBSYSTEM_ID    0x2e
#define PCI_INTERRUPT_LINE  0x3c
#define PCI_INTERRUPT_PIN   0x3d
/* I/O, memory, bus master, INTx disable */
#define PCI_COMMAND_RW_MASK 0x0407u

/* how often the loops look at the stop flag */
#define POLL_MS             200

static volatile sig_atomic_t stop;
static int verbose;

struct tsdev {
    struct devvm_server_conn conn;
    uint8_t config[TS_CONFIG_SIZE];
    uint8_t bar0[TS_BAR0_SIZE];
    uint32_t resets;
    int irq_fds[VFIO_PCI_NUM_IRQS];     /* one vector at most per index */
};

__attribute__((format(printf, 1, 2)))
static void ts_log(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "devvm-test-server: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
}

#define ts_debug(...) do { \
        if (verbose) { \
            ts_log(__VA_ARGS__); \
        } \
    } while (0)

/* ---- device state ------------------------------------------------------- */

static void ts_irqs_release(struct tsdev *d, uint32_t index)
{
    if (d->irq_fds[index] >= 0) {
        close(d->irq_fds[index]);
        d->irq_fds[index] = -1;
    }
}

/* Power-on state for a new client. */
static void ts_init(struct tsdev *d)
{
    uint32_t i;

    memset(d->config, 0, sizeof(d->config));
    devvm_st16(d->config + PCI_VENDOR_ID, TS_VENDOR_ID);
    devvm_st16(d->config + PCI_DEVICE_ID, TS_DEVICE_ID);
    d->config[PCI_REVISION_ID] = 1;
    d->config[PCI_CLASS_PROG] = TS_CLASS & 0xff;
    devvm_st16(d->config + PCI_CLASS_PROG + 1, TS_CLASS >> 8);
    d->config[PCI_HEADER_TYPE] = 0;
    devvm_st16(d->config + PCI_SUBSYSTEM_VENDOR_ID, TS_VENDOR_ID);
    devvm_st16(d->config + PCI_SUBSYSTEM_ID, TS_DEVICE_ID);
    d->config[PCI_INTERRUPT_PIN] = 1;

    memset(d->bar0, 0, sizeof(d->bar0));
    devvm_st32(d->bar0 + TS_REG_ID, TS_ID);
    d->resets = 0;
    for (i = 0; i < VFIO_PCI_NUM_IRQS; i++) {
        d->irq_fds[i] = -1;
    }
}

static void ts_fini(struct tsdev *d)
{
    uint32_t i;

    for (i = 0; i < VFIO_PCI_NUM_IRQS; i++) {
        ts_irqs_release(d, i);
    }
}

/* ---- server role callbacks ---------------------------------------------- */

static int ts_device_info(void *opaque, struct devvm_device_info *info)
{
    info->flags = VFIO_DEVICE_F_PCI | VFIO_DEVICE_F_RESET;
    info->num_regions = VFIO_PCI_NUM_REGIONS;
    info->num_irqs = VFIO_PCI_NUM_IRQS;
    return 0;
}

static int ts_region_info(void *opaque, uint32_t index,
                          struct devvm_region_info *r, int *fd)
{
    memset(r, 0, sizeof(*r));
    switch (index) {
    case VFIO_PCI_BAR0_REGION:
        r->size = TS_BAR0_SIZE;
        r->flags = VFIO_REGION_F_READ | VFIO_REGION_F_WRITE;
        break;
    case VFIO_PCI_CONFIG_REGION:
        r->size = TS_CONFIG_SIZE;
        r->flags = VFIO_REGION_F_READ | VFIO_REGION_F_WRITE;
        break;
    }
    return 0;
}

static int ts_irq_info(void *opaque, uint32_t index,
                       struct devvm_irq_info *q)
{
    switch (index) {
    case VFIO_PCI_INTX_IRQ:
        q->flags = VFIO_IRQ_INFO_F_EVENTFD | VFIO_IRQ_INFO_F_MASKABLE |
                   VFIO_IRQ_INFO_F_AUTOMASKED;
        q->count = 1;
        break;
    case VFIO_PCI_MSI_IRQ:
        q->flags = VFIO_IRQ_INFO_F_EVENTFD | VFIO_IRQ_INFO_F_NORESIZE;
        q->count = 1;
        break;
    case VFIO_PCI_MSIX_IRQ:
        q->flags = VFIO_IRQ_INFO_F_EVENTFD;
        q->count = 0;
        break;
    default:
        q->flags = VFIO_IRQ_INFO_F_EVENTFD;
        q->count = 1;
        break;
    }
    return 0;
}

/* The role checked index, start and count against ts_irq_info(). */
static int ts_set_irqs(void *opaque, const struct devvm_irq_set *set,
                       int *fds, uint32_t nfds)
{
    struct tsdev *d = opaque;
    uint32_t data = set->flags & VFIO_IRQ_SET_DATA_MASK;
    uint32_t action = set->flags & VFIO_IRQ_SET_ACTION_MASK_ALL;

    ts_debug("SET_IRQS index %u start %u count %u flags 0x%x, %u fds",
             set->index, set->start, set->count, set->flags, nfds);
    if (action != VFIO_IRQ_SET_ACTION_TRIGGER) {
        /* mask/unmask: nothing to do, the device never signals */
        return 0;
    }
    if (data == VFIO_IRQ_SET_DATA_EVENTFD) {
        if (nfds > set->count) {
            return -EINVAL;
        }
        if (set->count) {
            ts_irqs_release(d, set->index);
            if (nfds) {
                d->irq_fds[set->index] = fds[0];
                fds[0] = -1;
            }
        }
        return 0;
    }
    if (data == VFIO_IRQ_SET_DATA_NONE && set->count == 0) {
        ts_irqs_release(d, set->index);     /* disable the index */
    }
    return 0;
}

static int ts_region_read(void *opaque, uint32_t region, uint64_t offset,
                          void *buf, uint32_t count)
{
    struct tsdev *d = opaque;

    switch (region) {
    case VFIO_PCI_BAR0_REGION:
        devvm_st32(d->bar0 + TS_REG_RESETS, d->resets);
        memcpy(buf, d->bar0 + offset, count);
        break;
    case VFIO_PCI_CONFIG_REGION:
        memcpy(buf, d->config + offset, count);
        break;
    default:
        return -EINVAL;
    }
    ts_debug("read region %u offset 0x%llx count %u", region,
             (unsigned long long)offset, count);
    return 0;
}

static void ts_config_write(struct tsdev *d, uint64_t offset,
                            const uint8_t *buf, uint32_t count)
{
    uint8_t shadow[TS_CONFIG_SIZE];
    uint16_t cmd;

    /* apply to a copy, keep what is writable */
    memcpy(shadow, d->config, sizeof(shadow));
    memcpy(shadow + offset, buf, count);
    cmd = devvm_ld16(shadow + PCI_COMMAND) & PCI_COMMAND_RW_MASK;
    devvm_st16(d->config + PCI_COMMAND, cmd);
    d->config[PCI_INTERRUPT_LINE] = shadow[PCI_INTERRUPT_LINE];
}

static int ts_region_write(void *opaque, uint32_t region, uint64_t offset,
                           const void *buf, uint32_t count)
{
    struct tsdev *d = opaque;

    ts_debug("write region %u offset 0x%llx count %u", region,
             (unsigned long long)offset, count);
    switch (region) {
    case VFIO_PCI_BAR0_REGION:
        /* the ID and reset count registers are read-only */
        if (offset + count > TS_REG_SCRATCH) {
            uint64_t skip = offset < TS_REG_SCRATCH ?
                            TS_REG_SCRATCH - offset : 0;

            memcpy(d->bar0 + offset + skip, (const uint8_t *)buf + skip,
                   count - skip);
        }
        return 0;
    case VFIO_PCI_CONFIG_REGION:
        ts_config_write(d, offset, buf, count);
        return 0;
    }
    return -EINVAL;
}

static int ts_reset(void *opaque)
{
    struct tsdev *d = opaque;

    d->resets++;
    memset(d->bar0 + TS_REG_SCRATCH, 0, TS_BAR0_SIZE - TS_REG_SCRATCH);
    devvm_st16(d->config + PCI_COMMAND, 0);
    ts_log("DEVICE_RESET (%u since the client connected)", d->resets);
    return 0;
}

static void ts_dma_changed(void *opaque)
{
    struct tsdev *d = opaque;

    ts_debug("DMA table changed: %u maps", d->conn.dma.nr);
}

static void ts_conn_log(void *opaque, const char *msg)
{
    ts_log("%s", msg);
}

static const struct devvm_server_ops ts_ops = {
    .device_info = ts_device_info,
    .region_info = ts_region_info,
    .irq_info = ts_irq_info,
    .set_irqs = ts_set_irqs,
    .region_read = ts_region_read,
    .region_write = ts_region_write,
    .reset = ts_reset,
    .dma_changed = ts_dma_changed,
    .log = ts_conn_log,
};

/* ---- main loop ----------------------------------------------------------- */

static void on_signal(int sig)
{
    stop = 1;
}

/* Wait for a client; -1 when told to stop. */
static int wait_client(int lfd)
{
    struct pollfd pfd = { .fd = lfd, .events = POLLIN };
    int fd;

    while (!stop) {
        if (poll(&pfd, 1, POLL_MS) <= 0) {
            continue;
        }
        fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd >= 0) {
            return fd;
        }
        if (errno != EINTR && errno != ECONNABORTED) {
            ts_log("accept: %s", strerror(errno));
            return -1;
        }
    }
    return -1;
}

/* Serve one client until it goes away (or we are told to stop). */
static void serve(struct tsdev *d, int fd, unsigned n)
{
    uid_t uid;
    int ret;

    if (devvm_sock_peer_uid(fd, &uid) || uid != getuid()) {
        ts_log("client %u: not our uid, refused", n);
        close(fd);
        return;
    }
    ts_init(d);
    ret = devvm_server_conn_init(&d->conn, fd, &ts_ops, d, NULL);
    if (ret) {
        ts_log("device description refused: %s", devvm_strerror(ret));
        close(fd);
        return;
    }
    ts_log("client %u connected", n);
    do {
        ret = devvm_server_conn_dispatch(&d->conn, POLL_MS);
    } while (!stop && (ret == DEVVM_OK || ret == DEVVM_E_AGAIN));
    if (stop) {
        ts_log("client %u: stopping", n);
    } else if (ret == DEVVM_E_CLOSED) {
        ts_log("client %u went away", n);
    } else {
        ts_log("client %u: connection closed: %s", n, devvm_strerror(ret));
    }
    devvm_server_conn_fini(&d->conn);
    ts_fini(d);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: devvm-test-server [--verbose] SOCKET_PATH\n");
}

int main(int argc, char **argv)
{
    struct sigaction sa = { .sa_handler = on_signal };
    static struct tsdev dev;
    const char *path = NULL;
    unsigned n = 0;
    int i, lfd, fd;

    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--verbose") || !strcmp(argv[i], "-v")) {
            verbose = 1;
        } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else if (argv[i][0] != '-' && !path) {
            path = argv[i];
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (!path) {
        usage(stderr);
        return 2;
    }

    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    lfd = devvm_sock_listen(path);
    if (lfd < 0) {
        ts_log("cannot listen on %s: %s", path, devvm_strerror(lfd));
        return 1;
    }
    ts_log("listening on %s", path);
    printf("ready\n");
    fflush(stdout);

    while ((fd = wait_client(lfd)) >= 0) {
        serve(&dev, fd, ++n);
    }

    close(lfd);
    unlink(path);
    ts_log("exiting after %u clients", n);
    return stop ? 0 : 1;
}
