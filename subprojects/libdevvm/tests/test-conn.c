/*
 * The client and server roles against each other over a real UNIX
 * socket pair, and each against a hostile peer written here byte by byte.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <poll.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "libdevvm/client.h"
#include "libdevvm/ring.h"
#include "libdevvm/ring-client.h"
#include "libdevvm/server.h"
#include "sealed-memfd.h"
#include "tap.h"

/* ---- a small device behind the server role ------------------------------ */

#define BAR0_SIZE 0x1000
#define BAR2_SIZE 0x2000
#define REG_MSIX 0x100      /* write n: signal MSI-X vector n */
#define REG_DMA_ADDR 0x200
#define REG_DMA_LEN 0x208
#define REG_DMA_CMD 0x210   /* 1: fill with 0xa5, 2: sum into REG_DMA_SUM */
#define REG_DMA_SUM 0x218
#define REG_DMA_STATUS 0x220

struct testdev {
    struct devvm_server_conn conn;
    pthread_mutex_t lock;       /* socket and ring paths both access */
    uint8_t bar0[BAR0_SIZE];
    /* the device end of a ring channel, served by its own thread */
    uint8_t *shm;
    uint64_t shm_size;
    int shm_fd;
    struct devvm_channel ch;
    int kick_fd, call_fd;
    pthread_t ring_tid;
    int ring_running;
    int ring_stop;
    int ring_result;
    int bar2_fd;
    int msix[4];
    int resets;
    int dma_changes;
    unsigned read_delay_us;     /* each REGION_READ answers this late */
    char last_log[256];
    char log[4096];         /* every line, with a newline after each */
    size_t log_len;
};

static int td_device_info(void *opaque, struct devvm_device_info *info)
{
    info->flags = DEVVM_DEVICE_F_PCI | DEVVM_DEVICE_F_RESET;
    info->num_regions = DEVVM_PCI_NUM_REGIONS;
    info->num_irqs = DEVVM_PCI_NUM_IRQS;
    return 0;
}

static int td_region_info(void *opaque, uint32_t index,
                          struct devvm_region_info *r, int *fd)
{
    struct testdev *td = opaque;

    memset(r, 0, sizeof(*r));
    switch (index) {
    case 0:
        r->size = BAR0_SIZE;
        r->flags = DEVVM_REGION_F_READ | DEVVM_REGION_F_WRITE;
        break;
    case 2:
        r->size = BAR2_SIZE;
        r->flags = DEVVM_REGION_F_READ | DEVVM_REGION_F_WRITE |
                   DEVVM_REGION_F_MMAP;
        r->nr_areas = 1;
        r->areas[0].offset = 0;
        r->areas[0].size = 0x1000;
        *fd = td->bar2_fd;
        break;
    case DEVVM_PCI_CONFIG_REGION:
        r->size = 256;
        r->flags = DEVVM_REGION_F_READ | DEVVM_REGION_F_WRITE;
        break;
    }
    return 0;
}

static int td_irq_info(void *opaque, uint32_t index,
                       struct devvm_irq_info *q)
{
    q->flags = DEVVM_IRQ_INFO_F_EVENTFD;
    q->count = index == DEVVM_PCI_MSIX_IRQ ? 4 :
               index <= DEVVM_PCI_MSI_IRQ ? 1 : 0;
    return 0;
}

static int td_set_irqs(void *opaque, const struct devvm_irq_set *set,
                       int *fds, uint32_t nfds)
{
    struct testdev *td = opaque;
    uint32_t i;

    if (set->index != DEVVM_PCI_MSIX_IRQ) {
        return 0;
    }
    for (i = 0; i < set->count; i++) {
        if (td->msix[set->start + i] >= 0) {
            close(td->msix[set->start + i]);
        }
        td->msix[set->start + i] = i < nfds ? fds[i] : -1;
        if (i < nfds) {
            fds[i] = -1;
        }
    }
    return 0;
}

static int td_read(void *opaque, uint32_t region, uint64_t off, void *buf,
                   uint32_t count)
{
    struct testdev *td = opaque;
    unsigned delay = __atomic_load_n(&td->read_delay_us, __ATOMIC_RELAXED);

    if (delay) {
        usleep(delay);
    }
    pthread_mutex_lock(&td->lock);
    if (region == 0) {
        memcpy(buf, td->bar0 + off, count);
    } else {
        memset(buf, 0x5a, count);
    }
    pthread_mutex_unlock(&td->lock);
    return 0;
}

static int td_write(void *opaque, uint32_t region, uint64_t off,
                    const void *buf, uint32_t count)
{
    struct testdev *td = opaque;
    uint64_t addr, len;

    if (region != 0) {
        return -EROFS;
    }
    pthread_mutex_lock(&td->lock);
    memcpy(td->bar0 + off, buf, count);
    if (off == REG_MSIX) {
        uint64_t one = 1;

        if (td->bar0[off] < 4 && td->msix[td->bar0[off]] >= 0) {
            write(td->msix[td->bar0[off]], &one, 8);
        }
    }
    if (off == REG_DMA_CMD) {
        uint8_t *p;
        uint64_t sum = 0, i;
        int ret;

        memcpy(&addr, td->bar0 + REG_DMA_ADDR, 8);
        memcpy(&len, td->bar0 + REG_DMA_LEN, 8);
        p = malloc(len ? len : 1);
        if (td->bar0[off] == 1) {
            memset(p, 0xa5, len);
            ret = devvm_server_conn_dma_write(&td->conn, addr, p, len);
        } else {
            ret = devvm_server_conn_dma_read(&td->conn, addr, p, len);
            for (i = 0; i < len; i++) {
                sum += p[i];
            }
            memcpy(td->bar0 + REG_DMA_SUM, &sum, 8);
        }
        free(p);
        memcpy(td->bar0 + REG_DMA_STATUS, &ret, 4);
    }
    pthread_mutex_unlock(&td->lock);
    return 0;
}

static int td_reset(void *opaque)
{
    struct testdev *td = opaque;

    td->resets++;
    memset(td->bar0, 0, sizeof(td->bar0));
    return 0;
}

static void td_dma_changed(void *opaque)
{
    ((struct testdev *)opaque)->dma_changes++;
}

/* The device end of the ring: serve REQ, sleep on the kick doorbell. */
static void *ring_main(void *arg)
{
    struct testdev *td = arg;
    struct devvm_ring *req = &td->ch.ring[DEVVM_RING_REQ];
    int ret = 0;

    while (!__atomic_load_n(&td->ring_stop, __ATOMIC_ACQUIRE)) {
        struct pollfd pfd = { .fd = td->kick_fd, .events = POLLIN };
        uint64_t v;

        ret = devvm_server_ring_serve(&td->conn, &td->ch, td->call_fd, 64);
        if (ret < 0) {
            break;
        }
        if (ret == 0 && devvm_ring_prepare_sleep(req) == DEVVM_E_AGAIN) {
            if (poll(&pfd, 1, 20) > 0) {
                read(td->kick_fd, &v, sizeof(v));
            }
            devvm_ring_poll_mode(req);
        }
        ret = 0;
    }
    td->ring_result = ret;
    return NULL;
}

static void ring_stop(struct testdev *td)
{
    if (td->ring_running) {
        __atomic_store_n(&td->ring_stop, 1, __ATOMIC_RELEASE);
        pthread_join(td->ring_tid, NULL);
        td->ring_running = 0;
    }
    if (td->shm) {
        munmap(td->shm, td->shm_size);
        td->shm = NULL;
        close(td->shm_fd);
        close(td->kick_fd);
        close(td->call_fd);
    }
}

static int td_ring_attach(void *opaque, struct devvm_ring_attach *a,
                          int fds[DEVVM_ATTACH_FDS])
{
    struct testdev *td = opaque;
    uint64_t size = devvm_shm_size(1, 8, 4096);
    struct devvm_shm_layout l;
    int fd = memfd_create("ring", MFD_CLOEXEC);

    if (fd < 0 || ftruncate(fd, size) < 0) {
        return -errno;
    }
    ring_stop(td);
    td->shm = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    td->shm_size = size;
    td->shm_fd = dup(fd);
    td->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    td->call_fd = eventfd(0, EFD_CLOEXEC);
    devvm_shm_format(td->shm, size, 1, 8, 4096, 1);
    devvm_shm_validate(td->shm, size, &l);
    devvm_channel_attach(&td->ch, td->shm, &l, 0, DEVVM_SIDE_DEVICE);
    devvm_shm_set_state(td->shm, DEVVM_STATE_READY, 0, "");
    td->ring_stop = 0;
    td->ring_running = !pthread_create(&td->ring_tid, NULL, ring_main, td);

    a->channel = 0;
    a->depth = 8;
    a->shm_size = size;
    a->generation = 1;
    fds[0] = fd;
    fds[1] = dup(td->kick_fd);
    fds[2] = dup(td->call_fd);
    return 0;
}

static int td_ring_detach(void *opaque, uint32_t channel)
{
    if (channel != 0) {
        return -EINVAL;
    }
    ring_stop(opaque);
    return 0;
}

static void td_log(void *opaque, const char *msg)
{
    struct testdev *td = opaque;

    snprintf(td->last_log, sizeof(td->last_log), "%s", msg);
    td->log_len += snprintf(td->log + td->log_len,
                            sizeof(td->log) - td->log_len, "%s\n", msg);
    if (td->log_len >= sizeof(td->log)) {
        td->log_len = sizeof(td->log) - 1;
    }
    printf("# server: %s\n", msg);
}

static const struct devvm_server_ops td_ops = {
    .device_info = td_device_info,
    .region_info = td_region_info,
    .irq_info = td_irq_info,
    .set_irqs = td_set_irqs,
    .region_read = td_read,
    .region_write = td_write,
    .reset = td_reset,
    .dma_changed = td_dma_changed,
    .ring_attach = td_ring_attach,
    .ring_detach = td_ring_detach,
    .log = td_log,
};

struct server_thread {
    pthread_t tid;
    struct testdev td;
    int result;             /* dispatch's final error */
};

static void *server_main(void *arg)
{
    struct server_thread *st = arg;
    int ret;

    do {
        ret = devvm_server_conn_dispatch(&st->td.conn, 10000);
    } while (ret == DEVVM_OK);
    st->result = ret;
    return NULL;
}

/*
 * Start a server thread on one end of a socket pair; return the other.
 * With @verbose, the role logs every message.
 */
static int start_server(struct server_thread *st, const struct devvm_caps *mine,
                        int with_ring, int verbose)
{
    static struct devvm_server_ops no_ring;
    int sv[2], i, ret;

    no_ring = td_ops;
    no_ring.ring_attach = NULL;
    memset(st, 0, sizeof(*st));
    pthread_mutex_init(&st->td.lock, NULL);
    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv);
    st->td.bar2_fd = memfd_create("bar2", MFD_CLOEXEC);
    ftruncate(st->td.bar2_fd, BAR2_SIZE);
    for (i = 0; i < 4; i++) {
        st->td.msix[i] = -1;
    }
    ret = devvm_server_conn_init(&st->td.conn, sv[0],
                                 with_ring ? &td_ops : &no_ring, &st->td,
                                 mine);
    TAP_EQ(ret, DEVVM_OK, "server role accepts the device description");
    st->td.conn.verbose = verbose;
    pthread_create(&st->tid, NULL, server_main, st);
    return sv[1];
}

static void stop_server(struct server_thread *st)
{
    int i;

    pthread_join(st->tid, NULL);
    ring_stop(&st->td);
    devvm_server_conn_fini(&st->td.conn);
    close(st->td.bar2_fd);
    for (i = 0; i < 4; i++) {
        if (st->td.msix[i] >= 0) {
            close(st->td.msix[i]);
        }
    }
}

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;

    while (readdir(d)) {
        n++;
    }
    closedir(d);
    return n;
}

/* ---- client side memory for DMA ----------------------------------------- */

static uint8_t dma_mem[0x2000];

static int cl_dma_read(void *opaque, uint64_t addr, void *buf, uint64_t len)
{
    if (addr < 0x100000 || addr + len > 0x100000 + sizeof(dma_mem)) {
        return -EFAULT;
    }
    memcpy(buf, dma_mem + (addr - 0x100000), len);
    return 0;
}

static int cl_dma_write(void *opaque, uint64_t addr, const void *buf,
                        uint64_t len)
{
    if (addr < 0x100000 || addr + len > 0x100000 + sizeof(dma_mem)) {
        return -EFAULT;
    }
    memcpy(dma_mem + (addr - 0x100000), buf, len);
    return 0;
}

static struct devvm_event last_event;
static char last_reason[DEVVM_MAX_REASON];

static void cl_event(void *opaque, const struct devvm_event *ev)
{
    last_event = *ev;
    snprintf(last_reason, sizeof(last_reason), "%s", ev->reason);
}

static const struct devvm_client_ops cl_ops = {
    .dma_read = cl_dma_read,
    .dma_write = cl_dma_write,
    .event = cl_event,
};

static void want_caps(struct devvm_caps *c, int devvm)
{
    devvm_caps_default(c);
    c->max_msg_fds = DEVVM_MAX_FDS;
    c->max_data_xfer_size = DEVVM_MAX_XFER;
    c->write_multiple = 1;
    c->devvm = devvm;
    c->devvm_version = devvm ? DEVVM_EXT_VERSION : 0;
    c->devvm_ring = devvm;
}

static uint64_t reg_read(struct devvm_client *c, uint64_t off, uint32_t n)
{
    uint64_t v = 0;

    if (devvm_client_region_read(c, 0, off, &v, n)) {
        return ~0ull;
    }
    return v;
}

static void reg_write(struct devvm_client *c, uint64_t off, uint64_t v,
                      uint32_t n)
{
    devvm_client_region_write(c, 0, off, &v, n, 0);
}

/* ---- BAR access over the ring ------------------------------------------ */

static void test_ring_channel(struct devvm_client *c, struct server_thread *st,
                              const struct devvm_ring_attach *ra,
                              int fds[DEVVM_ATTACH_FDS])
{
    struct devvm_ring_client rc;
    uint64_t v = 0;
    int i, ok;

    TAP_EQ(devvm_ring_client_open(&rc, ra, fds), DEVVM_OK,
           "the client maps and checks the ring channel");
    ok = 1;
    for (i = 1; i <= 8; i *= 2) {
        uint64_t pat = 0x8877665544332211ull & (~0ull >> (64 - 8 * i));

        ok &= devvm_ring_client_write(&rc, 0, 0x300 + 8 * i, i, pat,
                                      1000) == DEVVM_OK;
        ok &= devvm_ring_client_read(&rc, 0, 0x300 + 8 * i, i, &v,
                                     1000) == DEVVM_OK && v == pat;
    }
    TAP_CHECK(ok, "ring: write and read back 1, 2, 4 and 8 bytes");
    TAP_EQ(reg_read(c, 0x340, 8), 0x8877665544332211ull,
           "... and the socket path sees the same register");

    /* posted writes, more than the ring holds, then one read */
    ok = 1;
    for (i = 0; i < 100; i++) {
        ok &= devvm_ring_client_write(&rc, 0, 0x400, 4, i, 1000) == 0;
    }
    TAP_CHECK(ok && devvm_ring_client_read(&rc, 0, 0x400, 4, &v, 1000) == 0
              && v == 99, "ring: a read sees the last of 100 posted writes");

    /* sleeping on the doorbell: no busy-poll budget */
    rc.spin_us = 0;
    ok = 1;
    for (i = 0; i < 200; i++) {
        ok &= devvm_ring_client_write(&rc, 0, 0x408, 8, i * 3, 1000) == 0 &&
              devvm_ring_client_read(&rc, 0, 0x408, 8, &v, 1000) == 0 &&
              v == (uint64_t)i * 3;
    }
    TAP_CHECK(ok, "ring: 200 round trips sleeping on the call doorbell");

    TAP_EQ(devvm_ring_client_read(&rc, 0, BAR0_SIZE - 2, 4, &v, 1000),
           DEVVM_E_PEER, "ring: a read across the end of the region");
    TAP_CHECK(rc.peer_status == EINVAL && !rc.broken,
              "... completes with EINVAL and the channel stays usable");
    TAP_EQ(devvm_ring_client_read(&rc, 1, 0, 4, &v, 1000), DEVVM_E_PEER,
           "ring: a read of a region without READ");
    TAP_EQ(devvm_ring_client_read(&rc, 0, 0, 3, &v, 1000), -DEVVM_EINVAL,
           "ring: a 3-byte access is refused before it is sent");

    /* the device fails, then comes back as a new generation */
    devvm_shm_set_state(st->td.shm, DEVVM_STATE_FAILED, 5, "test fault");
    TAP_EQ(devvm_ring_client_read(&rc, 0, 0x400, 4, &v, 1000),
           DEVVM_E_STATE, "ring: a FAILED device is not accessed");
    devvm_shm_set_state(st->td.shm, DEVVM_STATE_READY, 0, "");
    TAP_EQ(devvm_ring_client_read(&rc, 0, 0x400, 4, &v, 1000), DEVVM_OK,
           "ring: READY again in the same generation");
    __atomic_store_n(&st->td.ring_stop, 1, __ATOMIC_RELEASE);
    pthread_join(st->td.ring_tid, NULL);
    st->td.ring_running = 0;
    devvm_shm_format(st->td.shm, st->td.shm_size, 1, 8, 4096, 2);
    devvm_shm_set_state(st->td.shm, DEVVM_STATE_READY, 0, "");
    TAP_EQ(devvm_ring_client_write(&rc, 0, 0x400, 4, 1, 1000),
           DEVVM_E_STALE, "ring: after a restart the channel is stale");

    /* a device that stops answering: bounded wait */
    devvm_shm_format(st->td.shm, st->td.shm_size, 1, 8, 4096, 1);
    devvm_shm_set_state(st->td.shm, DEVVM_STATE_READY, 0, "");
    devvm_ring_client_close(&rc);
    {
        int fds2[DEVVM_ATTACH_FDS] = {
            dup(st->td.shm_fd), dup(st->td.kick_fd), dup(st->td.call_fd),
        };
        struct timespec t0, t1;
        double ms;

        TAP_EQ(devvm_ring_client_open(&rc, ra, fds2), DEVVM_OK,
               "re-attach to the restarted device");
        clock_gettime(CLOCK_MONOTONIC, &t0);
        TAP_EQ(devvm_ring_client_read(&rc, 0, 0x400, 4, &v, 300),
               DEVVM_E_TIMEOUT, "ring: a device that never answers");
        clock_gettime(CLOCK_MONOTONIC, &t1);
        ms = (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6;
        TAP_CHECK(ms >= 290 && ms < 3000,
                  "... gives up after the 300 ms timeout (%.0f ms)", ms);
        TAP_EQ(devvm_ring_client_write(&rc, 0, 0x400, 4, 1, 300),
               DEVVM_OK, "... the channel stays usable: a write is queued "
               "behind the read");
        /*
         * The device answers late: the timed-out read's completion
         * (tag 1) comes before the next read's (tag 2), and is dropped.
         */
        {
            struct devvm_shm_layout l;
            struct devvm_channel dev;
            struct devvm_slot r, d = { .op = DEVVM_OP_READ_DONE };

            devvm_shm_validate(st->td.shm, st->td.shm_size, &l);
            devvm_channel_attach(&dev, st->td.shm, &l, 0, DEVVM_SIDE_DEVICE);
            TAP_CHECK(!devvm_ring_pop(&dev.ring[DEVVM_RING_REQ], &r) &&
                      r.op == DEVVM_OP_READ && r.tag == 1 &&
                      !devvm_ring_pop(&dev.ring[DEVVM_RING_REQ], &r) &&
                      r.op == DEVVM_OP_WRITE,
                      "the device finds the read (tag 1), then the write");
            d.tag = 1;
            d.data = 0xdead;
            devvm_ring_push(&dev.ring[DEVVM_RING_CPL], &d);
            d.tag = 2;
            d.data = 0x600d;
            devvm_ring_push(&dev.ring[DEVVM_RING_CPL], &d);
            TAP_EQ(devvm_ring_client_read(&rc, 0, 0x400, 4, &v, 300),
                   DEVVM_OK, "the next read (tag 2) succeeds");
            TAP_CHECK(v == 0x600d && rc.late == 1,
                      "... with its own data, after dropping tag 1's");
            d.tag = 99;
            devvm_ring_push(&dev.ring[DEVVM_RING_CPL], &d);
            TAP_EQ(devvm_ring_client_read(&rc, 0, 0x400, 4, &v, 300),
                   DEVVM_E_BAD_FIELD, "a completion with a tag never used "
                   "yet is still a protocol error");
        }
        devvm_ring_client_close(&rc);
    }
}

/* ---- the two roles against each other ------------------------------------ */

static void test_full_session(void)
{
    struct server_thread st;
    struct devvm_client c;
    struct devvm_caps want;
    struct devvm_device_info di;
    struct devvm_region_info ri;
    struct devvm_irq_info qi;
    struct devvm_ring_attach ra;
    int fd, rfd, efd[4], rfds[DEVVM_ATTACH_FDS], i, ok;
    uint8_t *bar2;
    uint64_t v;

    fd = start_server(&st, NULL, 1, 0);
    devvm_client_init(&c, fd, 5000, &cl_ops, NULL);
    want_caps(&want, 1);
    TAP_EQ(devvm_client_negotiate(&c, &want), DEVVM_OK, "negotiate");
    TAP_CHECK(c.caps.devvm && c.caps.devvm_ring &&
              c.caps.devvm_version == DEVVM_EXT_VERSION,
              "devvm and its ring transport are negotiated");

    TAP_CHECK(devvm_client_device_info(&c, &di) == DEVVM_OK &&
              di.num_regions == 9 && di.num_irqs == 5 &&
              (di.flags & DEVVM_DEVICE_F_PCI), "DEVICE_GET_INFO");
    TAP_CHECK(devvm_client_region_info(&c, 2, &ri, &rfd) == DEVVM_OK &&
              ri.size == BAR2_SIZE && ri.nr_areas == 1 && rfd >= 0,
              "GET_REGION_INFO with a sparse area and an fd");
    bar2 = mmap(NULL, ri.areas[0].size, PROT_READ | PROT_WRITE, MAP_SHARED,
                rfd, ri.offset + ri.areas[0].offset);
    TAP_CHECK(bar2 != MAP_FAILED, "the sparse area maps");
    bar2[0] = 0x42;
    TAP_CHECK(pread(st.td.bar2_fd, &v, 1, 0) == 1 && (v & 0xff) == 0x42,
              "a store to the mapped area reaches the device's memory");
    munmap(bar2, ri.areas[0].size);
    close(rfd);
    TAP_EQ(devvm_client_region_info(&c, 12, &ri, &rfd), DEVVM_E_PEER,
           "GET_REGION_INFO of a region that does not exist");
    TAP_EQ(c.peer_errno, EINVAL, "... is refused with EINVAL");
    TAP_CHECK(devvm_client_irq_info(&c, DEVVM_PCI_MSIX_IRQ, &qi) == DEVVM_OK
              && qi.count == 4, "GET_IRQ_INFO");

    /* every access width, read back */
    ok = 1;
    for (i = 1; i <= 8; i *= 2) {
        uint64_t pat = 0x1122334455667788ull & (~0ull >> (64 - 8 * i));

        reg_write(&c, 8 * i, pat, i);
        ok &= reg_read(&c, 8 * i, i) == pat;
    }
    TAP_CHECK(ok, "REGION_WRITE then REGION_READ of 1, 2, 4 and 8 bytes");
    devvm_client_region_write(&c, 0, 0x40, &(uint32_t){ 0xcafe }, 4, 1);
    TAP_EQ(reg_read(&c, 0x40, 4), 0xcafe,
           "a read after a posted write sees the write");
    TAP_EQ(devvm_client_region_read(&c, 0, BAR0_SIZE - 2, &v, 4),
           DEVVM_E_PEER, "a read across the end of the region");
    TAP_EQ(devvm_client_region_write(&c, 1, 0, &v, 4, 0), DEVVM_E_PEER,
           "a write to a region without WRITE");
    TAP_EQ(c.peer_errno, EPERM, "... is refused with EPERM");

    /* MSI-X through eventfds */
    for (i = 0; i < 4; i++) {
        efd[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    }
    TAP_EQ(devvm_client_set_irqs(&c, DEVVM_IRQ_SET_DATA_EVENTFD |
                                 DEVVM_IRQ_SET_ACTION_TRIGGER,
                                 DEVVM_PCI_MSIX_IRQ, 0, 4, efd, NULL),
           DEVVM_OK, "SET_IRQS with 4 eventfds");
    reg_write(&c, REG_MSIX, 2, 1);
    TAP_CHECK(read(efd[2], &v, 8) == 8 && v == 1 &&
              read(efd[1], &v, 8) < 0, "the device signals MSI-X vector 2");
    /* a server taking one fd per message gets four messages */
    c.caps.max_msg_fds = 1;
    TAP_EQ(devvm_client_set_irqs(&c, DEVVM_IRQ_SET_DATA_EVENTFD |
                                 DEVVM_IRQ_SET_ACTION_TRIGGER,
                                 DEVVM_PCI_MSIX_IRQ, 0, 4, efd, NULL),
           DEVVM_OK, "SET_IRQS split to the server's max_msg_fds");
    c.caps.max_msg_fds = DEVVM_MAX_FDS;
    reg_write(&c, REG_MSIX, 3, 1);
    TAP_CHECK(read(efd[3], &v, 8) == 8 && v == 1,
              "... and the last vector is wired");
    TAP_EQ(devvm_client_set_irqs(&c, DEVVM_IRQ_SET_DATA_EVENTFD |
                                 DEVVM_IRQ_SET_ACTION_TRIGGER,
                                 DEVVM_PCI_MSIX_IRQ, 2, 3, efd, NULL),
           DEVVM_E_PEER, "SET_IRQS past the index's vectors");
    for (i = 0; i < 4; i++) {
        close(efd[i]);
    }

    /* DMA through a shared mapping */
    {
        int mfd = sealed_memfd("ram", 0x4000);
        struct devvm_dma_map map = { 32, 3, 0, 0x40000000, 0x4000 };
        uint8_t *ram;

        ram = mmap(NULL, 0x4000, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
        memset(ram, 0x11, 0x4000);
        TAP_EQ(devvm_client_dma_map(&c, &map, mfd), DEVVM_OK,
               "DMA_MAP with an fd");
        close(mfd);
        TAP_EQ(devvm_client_dma_map(&c, &map, -1), DEVVM_E_PEER,
               "DMA_MAP over an existing mapping");
        TAP_EQ(c.peer_errno, EEXIST, "... is refused with EEXIST");
        reg_write(&c, REG_DMA_ADDR, 0x40001000, 8);
        reg_write(&c, REG_DMA_LEN, 0x100, 8);
        reg_write(&c, REG_DMA_CMD, 1, 1);
        TAP_CHECK(reg_read(&c, REG_DMA_STATUS, 4) == 0 &&
                  ram[0x1000] == 0xa5 && ram[0x10ff] == 0xa5 &&
                  ram[0xfff] == 0x11 && ram[0x1100] == 0x11,
                  "device DMA write lands exactly in mapped memory");
        reg_write(&c, REG_DMA_ADDR, 0x40003f00, 8);
        reg_write(&c, REG_DMA_LEN, 0x200, 8);
        reg_write(&c, REG_DMA_CMD, 1, 1);
        TAP_CHECK((int)reg_read(&c, REG_DMA_STATUS, 4) == -EFAULT
                  && ram[0x3f00] == 0x11,
                  "device DMA running past the mapping is refused whole");
        TAP_EQ(devvm_client_dma_unmap(&c, 0x40000000, 0x4000, 0), DEVVM_OK,
               "DMA_UNMAP");
        reg_write(&c, REG_DMA_ADDR, 0x40001000, 8);
        reg_write(&c, REG_DMA_LEN, 0x10, 8);
        ram[0x1000] = 0x11;
        reg_write(&c, REG_DMA_CMD, 1, 1);
        TAP_CHECK((int)reg_read(&c, REG_DMA_STATUS, 4) == -EFAULT
                  && ram[0x1000] == 0x11,
                  "no DMA after DMA_UNMAP");
        munmap(ram, 0x4000);
    }

    /* DMA through DMA_READ/DMA_WRITE messages */
    {
        struct devvm_dma_map map = { 32, 3, 0, 0x100000, sizeof(dma_mem) };

        for (i = 0; i < (int)sizeof(dma_mem); i++) {
            dma_mem[i] = i;
        }
        TAP_EQ(devvm_client_dma_map(&c, &map, -1), DEVVM_OK,
               "DMA_MAP without an fd");
        reg_write(&c, REG_DMA_ADDR, 0x100010, 8);
        reg_write(&c, REG_DMA_LEN, 0x100, 8);
        reg_write(&c, REG_DMA_CMD, 2, 1);
        v = 0;
        for (i = 0x10; i < 0x110; i++) {
            v += (uint8_t)i;
        }
        TAP_EQ(reg_read(&c, REG_DMA_SUM, 8), v,
               "device DMA read through DMA_READ messages");
        reg_write(&c, REG_DMA_CMD, 1, 1);
        TAP_CHECK(dma_mem[0x10] == 0xa5 && dma_mem[0x10f] == 0xa5 &&
                  dma_mem[0xf] == 0xf && dma_mem[0x110] == 0x10,
                  "device DMA write through DMA_WRITE messages");
        /* one DMA across an fd-backed mapping and the message-only one
         * right after it */
        {
            int mfd = sealed_memfd("ram2", 0x1000);
            struct devvm_dma_map map2 = { 32, 3, 0, 0x100000 - 0x1000,
                                          0x1000 };
            uint8_t *ram;

            ram = mmap(NULL, 0x1000, PROT_READ | PROT_WRITE, MAP_SHARED,
                       mfd, 0);
            memset(ram, 0x11, 0x1000);
            memset(dma_mem, 0x22, sizeof(dma_mem));
            TAP_EQ(devvm_client_dma_map(&c, &map2, mfd), DEVVM_OK,
                   "DMA_MAP of an fd-backed range next to the other");
            close(mfd);
            reg_write(&c, REG_DMA_ADDR, 0x100000 - 0x10, 8);
            reg_write(&c, REG_DMA_LEN, 0x20, 8);
            reg_write(&c, REG_DMA_CMD, 1, 1);
            TAP_CHECK(reg_read(&c, REG_DMA_STATUS, 4) == 0 &&
                      ram[0xff0] == 0xa5 && ram[0xfef] == 0x11 &&
                      dma_mem[0xf] == 0xa5 && dma_mem[0x10] == 0x22,
                      "a DMA write spanning both lands in both");
            reg_write(&c, REG_DMA_CMD, 2, 1);
            TAP_EQ(reg_read(&c, REG_DMA_SUM, 8), 0x20 * 0xa5,
                   "a DMA read spanning both reads both");
            munmap(ram, 0x1000);
        }
        TAP_EQ(devvm_client_dma_unmap(&c, 0, 0, DEVVM_DMA_UNMAP_F_ALL),
               DEVVM_OK, "DMA_UNMAP of everything");
        TAP_CHECK(st.td.dma_changes == 5, "the device saw every map change");
    }

    {
        struct devvm_write_one wrs[2] = {
            { 0x80, 0, 4, { 1, 2, 3, 4 } },
            { 0x88, 0, 2, { 5, 6 } },
        };
        uint8_t buf[DEVVM_HDR_SIZE + 8 + 2 * DEVVM_WRITE_ONE_SIZE];
        struct devvm_rx rx;
        struct devvm_msg m;
        int len;

        len = devvm_encode_write_multi(buf, sizeof(buf), 0, 0, wrs, 2);
        TAP_CHECK(devvm_client_call(&c, buf, len, NULL, 0, &rx, &m) ==
                  DEVVM_OK && m.u.write_multi.wr_cnt == 2,
                  "REGION_WRITE_MULTI");
        devvm_rx_release(&rx);
        TAP_CHECK(reg_read(&c, 0x80, 4) == 0x04030201 &&
                  reg_read(&c, 0x88, 2) == 0x0605, "... wrote both");
    }

    TAP_CHECK(devvm_client_reset(&c) == DEVVM_OK && st.td.resets == 1 &&
              reg_read(&c, 0x80, 4) == 0, "DEVICE_RESET");

    TAP_EQ(devvm_client_ring_attach(&c, 0, &ra, rfds), DEVVM_OK,
           "RING_ATTACH");
    TAP_CHECK(rfds[0] >= 0 && rfds[1] >= 0 && rfds[2] >= 0 &&
              ra.depth == 8 && ra.generation == 1,
              "RING_ATTACH hands over the shared memory and two doorbells");
    test_ring_channel(&c, &st, &ra, rfds);
    TAP_EQ(devvm_client_ring_detach(&c, 0), DEVVM_OK, "RING_DETACH");

    /* a server-initiated EVENT is served while the client waits */
    devvm_server_conn_event(&st.td.conn, DEVVM_STATE_FAILED, 2, "hung");
    TAP_EQ(devvm_client_poll(&c, 5000), DEVVM_OK, "an EVENT arrives");
    TAP_CHECK(last_event.state == DEVVM_STATE_FAILED &&
              last_event.generation == 2 && !strcmp(last_reason, "hung"),
              "... with state, generation and reason");

    close(fd);
    stop_server(&st);
    TAP_EQ(st.result, DEVVM_E_CLOSED, "the server sees the client go away");
}

/* A plain vfio-user peer on either side: devvm stays off. */
static void test_downgrade(void)
{
    struct server_thread st;
    struct devvm_client c;
    struct devvm_caps want, plain;
    struct devvm_ring_attach ra;
    int fd, rfds[3];
    uint8_t buf[DEVVM_HDR_SIZE + 32];
    struct devvm_rx rx;
    struct devvm_msg m;
    int len;

    /* plain client, devvm server */
    fd = start_server(&st, NULL, 1, 0);
    devvm_client_init(&c, fd, 5000, &cl_ops, NULL);
    want_caps(&want, 0);
    TAP_EQ(devvm_client_negotiate(&c, &want), DEVVM_OK,
           "a plain vfio-user client negotiates with a devvm server");
    TAP_CHECK(!c.caps.devvm && !c.caps.devvm_ring,
              "... and the server's reply names no devvm capability");
    len = devvm_encode_ring_attach(buf, sizeof(buf), 0, 0,
                                   &(struct devvm_ring_attach){ .argsz = 32 });
    TAP_EQ(devvm_client_call(&c, buf, len, NULL, 0, &rx, &m), DEVVM_E_PEER,
           "a devvm command without negotiation");
    TAP_EQ(c.peer_errno, ENOTSUP, "... is refused with ENOTSUP");
    TAP_EQ(reg_read(&c, 0, 4), 0, "... and the connection carries on");
    close(fd);
    stop_server(&st);

    /* devvm client, plain server */
    devvm_caps_default(&plain);
    plain.max_msg_fds = DEVVM_MAX_FDS;
    fd = start_server(&st, &plain, 1, 0);
    devvm_client_init(&c, fd, 5000, &cl_ops, NULL);
    want_caps(&want, 1);
    TAP_EQ(devvm_client_negotiate(&c, &want), DEVVM_OK,
           "a devvm client negotiates with a plain vfio-user server");
    TAP_CHECK(!c.caps.devvm, "... and falls back to plain vfio-user");
    TAP_EQ(devvm_client_ring_attach(&c, 0, &ra, rfds), DEVVM_E_VERSION,
           "... so it does not ask for a ring");
    TAP_EQ(reg_read(&c, 0, 4), 0, "... and BAR access works on the socket");
    close(fd);
    stop_server(&st);

    /* devvm on both sides, but the server has no ring */
    fd = start_server(&st, NULL, 0, 0);
    devvm_client_init(&c, fd, 5000, &cl_ops, NULL);
    TAP_EQ(devvm_client_negotiate(&c, &want), DEVVM_OK,
           "negotiate with a server without ring transport");
    TAP_CHECK(c.caps.devvm && !c.caps.devvm_ring,
              "... devvm is on, the ring is off");
    close(fd);
    stop_server(&st);
}

/*
 * A verbose server role logs each message it receives and sends: its
 * requests, its replies, the DMA_READ it sends for the device and the
 * reply to it, an error reply.
 */
static void test_verbose(void)
{
    struct devvm_dma_map map = { 32, 3, 0, 0x100000, sizeof(dma_mem) };
    struct server_thread st;
    struct devvm_client c;
    struct devvm_caps want;
    int fd = start_server(&st, NULL, 0, 1);

    devvm_client_init(&c, fd, 5000, &cl_ops, NULL);
    want_caps(&want, 1);
    TAP_EQ(devvm_client_negotiate(&c, &want), DEVVM_OK,
           "verbose: negotiate");
    TAP_EQ(devvm_client_dma_map(&c, &map, -1), DEVVM_OK,
           "verbose: DMA_MAP without an fd");
    reg_write(&c, REG_DMA_ADDR, 0x100010, 8);
    reg_write(&c, REG_DMA_LEN, 0x100, 8);
    reg_write(&c, REG_DMA_CMD, 2, 1);
    TAP_EQ(reg_read(&c, BAR0_SIZE, 4), ~0ull, "verbose: a read past BAR0");
    close(fd);
    stop_server(&st);
    TAP_CHECK(strstr(st.td.log, "in: VERSION id 1, ") &&
              strstr(st.td.log, "out: VERSION reply id 1, "),
              "verbose: VERSION and its reply are logged");
    TAP_CHECK(strstr(st.td.log, "in: REGION_WRITE id 5, 33 bytes\n") &&
              strstr(st.td.log, "out: REGION_WRITE reply id 5, 32 bytes\n"),
              "verbose: a REGION_WRITE and its reply, with id and size");
    TAP_CHECK(strstr(st.td.log, "out: DMA_READ id 1, 32 bytes, "
                     "0x100010+0x100\n") &&
              strstr(st.td.log, "in: DMA_READ reply id 1, 288 bytes, "
                     "0x100010+0x100\n"),
              "verbose: the device's DMA_READ and its reply, with the range");
    TAP_CHECK(strstr(st.td.log, "out: REGION_READ error reply id 6, 16 bytes, "
                     "errno 22\n"), "verbose: an error reply, with errno");
}

/* ---- a hostile client against the server role -------------------------- */

static void raw_send(int fd, const char *what, const void *buf, size_t len,
                     const int *fds, uint32_t nfds)
{
    if (devvm_sock_send(fd, buf, len, fds, nfds)) {
        printf("# sending %s failed\n", what);
    }
}

/* Receive the server's answer: an error reply with @err, then EOF if
 * @closes. */
static void expect_error(int fd, int err, int closes, const char *what)
{
    struct devvm_rx rx;
    int ret;

    ret = devvm_sock_recv(fd, 5000, DEVVM_MAX_MSG_SIZE, &rx);
    TAP_CHECK(ret == DEVVM_OK && (rx.hdr.flags & DEVVM_HDR_F_ERROR) &&
              (int)rx.hdr.error == err, "%s: error reply %d", what, err);
    if (!ret) {
        devvm_rx_release(&rx);
    }
    if (closes) {
        ret = devvm_sock_recv(fd, 5000, DEVVM_MAX_MSG_SIZE, &rx);
        TAP_EQ(ret, DEVVM_E_CLOSED, "%s: then the connection is closed",
               what);
    }
}

static int hostile_start(struct server_thread *st, int negotiate)
{
    int fd = start_server(st, NULL, 1, 0);

    if (negotiate) {
        struct devvm_client c;
        struct devvm_caps want;

        devvm_client_init(&c, fd, 5000, &cl_ops, NULL);
        want_caps(&want, 1);
        devvm_client_negotiate(&c, &want);
    }
    return fd;
}

/* after a fatal error the server thread ended: check, then clean up */
static void hostile_end(struct server_thread *st, int fd, int want,
                        const char *what)
{
    close(fd);
    stop_server(st);
    TAP_EQ(st->result, want, "%s: server gives up with \"%s\"", what,
           devvm_strerror(want));
}

static void test_hostile_client(void)
{
    struct server_thread st;
    uint8_t buf[256];
    int fd, len, fds[DEVVM_MAX_FDS + 1], i, before;

    before = count_fds();

    fd = hostile_start(&st, 0);
    len = devvm_encode_hdr_only(buf, sizeof(buf), 1, DEVVM_CMD_DEVICE_RESET,
                                0, 0);
    raw_send(fd, "reset", buf, len, NULL, 0);
    expect_error(fd, EINVAL, 1, "request before VERSION");
    hostile_end(&st, fd, DEVVM_E_VERSION, "request before VERSION");

    fd = hostile_start(&st, 1);
    raw_send(fd, "short", buf, 10, NULL, 0);
    hostile_end(&st, fd, DEVVM_E_CLOSED, "short header then EOF");

    fd = hostile_start(&st, 1);
    len = devvm_encode_hdr_only(buf, sizeof(buf), 1, DEVVM_CMD_REGION_WRITE,
                                0, 0);
    buf[4] = 0xff, buf[5] = 0xff, buf[6] = 0xff, buf[7] = 0x7f;
    raw_send(fd, "huge", buf, len, NULL, 0);
    expect_error(fd, E2BIG, 1, "size above the limit");
    hostile_end(&st, fd, DEVVM_E_TOO_BIG, "size above the limit");

    fd = hostile_start(&st, 1);
    len = devvm_encode_hdr_only(buf, sizeof(buf), 1, DEVVM_CMD_DEVICE_RESET,
                                0, 0);
    buf[4] = 8;
    raw_send(fd, "size 8", buf, len, NULL, 0);
    expect_error(fd, EINVAL, 1, "size below the header's");
    hostile_end(&st, fd, DEVVM_E_TRUNCATED, "size below the header's");

    fd = hostile_start(&st, 1);
    len = devvm_encode_hdr_only(buf, sizeof(buf), 1, DEVVM_CMD_DEVICE_RESET,
                                DEVVM_HDR_F_ERROR, 0);
    raw_send(fd, "error flag", buf, len, NULL, 0);
    expect_error(fd, EINVAL, 1, "request with the error flag");
    hostile_end(&st, fd, DEVVM_E_BAD_FLAGS, "request with the error flag");

    fd = hostile_start(&st, 1);
    len = devvm_encode_hdr_only(buf, sizeof(buf), 1, 99, 0, 0);
    raw_send(fd, "cmd 99", buf, len, NULL, 0);
    expect_error(fd, ENOSYS, 1, "unknown command");
    hostile_end(&st, fd, DEVVM_E_UNKNOWN_CMD, "unknown command");

    fd = hostile_start(&st, 1);
    len = devvm_encode_hdr_only(buf, sizeof(buf), 1, DEVVM_CMD_DIRTY_PAGES,
                                0, 0);
    raw_send(fd, "dirty pages", buf, len, NULL, 0);
    expect_error(fd, ENOTSUP, 0, "unimplemented DIRTY_PAGES");
    len = devvm_encode_hdr_only(buf, sizeof(buf), 2, DEVVM_CMD_DEVICE_RESET,
                                0, 0);
    raw_send(fd, "reset", buf, len, NULL, 0);
    {
        struct devvm_rx rx;

        TAP_CHECK(devvm_sock_recv(fd, 5000, DEVVM_MAX_MSG_SIZE, &rx) == 0 &&
                  rx.hdr.id == 2 && !(rx.hdr.flags & DEVVM_HDR_F_ERROR),
                  "... and the connection carries on");
        devvm_rx_release(&rx);
    }
    hostile_end(&st, fd, DEVVM_E_CLOSED, "unimplemented command");

    fd = hostile_start(&st, 1);
    len = devvm_encode_dma_map(buf, sizeof(buf), 1, 0,
                               &(struct devvm_dma_map){ 32, 3, 0, 0, 4096 });
    fds[0] = eventfd(0, EFD_CLOEXEC);
    fds[1] = eventfd(0, EFD_CLOEXEC);
    raw_send(fd, "dma map + 2 fds", buf, len, fds, 2);
    close(fds[0]);
    close(fds[1]);
    expect_error(fd, EBADF, 1, "DMA_MAP with two fds");
    hostile_end(&st, fd, DEVVM_E_BAD_FDS, "wrong fd count");

    fd = hostile_start(&st, 1);
    len = devvm_encode_hdr_only(buf, sizeof(buf), 1, DEVVM_CMD_DEVICE_RESET,
                                0, 0);
    for (i = 0; i <= (int)DEVVM_MAX_FDS; i++) {
        fds[i] = eventfd(0, EFD_CLOEXEC);
    }
    /* the kernel may cut the control data short: either way it fails */
    {
        union {
            char b[CMSG_SPACE(sizeof(int) * (DEVVM_MAX_FDS + 1))];
            struct cmsghdr align;
        } control;
        struct iovec iov = { buf, len };
        struct msghdr mh = {
            .msg_iov = &iov, .msg_iovlen = 1,
            .msg_control = control.b, .msg_controllen = sizeof(control.b),
        };
        struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);

        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int) * (DEVVM_MAX_FDS + 1));
        memcpy(CMSG_DATA(cm), fds, sizeof(int) * (DEVVM_MAX_FDS + 1));
        sendmsg(fd, &mh, 0);
    }
    for (i = 0; i <= (int)DEVVM_MAX_FDS; i++) {
        close(fds[i]);
    }
    hostile_end(&st, fd, DEVVM_E_BAD_FDS, "17 fds with one message");

    fd = hostile_start(&st, 1);
    len = devvm_encode_hdr_only(buf, sizeof(buf), 77, DEVVM_CMD_DMA_READ,
                                DEVVM_HDR_F_REPLY, 0);
    raw_send(fd, "stray reply", buf, len, NULL, 0);
    hostile_end(&st, fd, DEVVM_E_UNKNOWN_ID, "reply to nothing");

    fd = hostile_start(&st, 1);
    len = devvm_encode_irq_set(buf, sizeof(buf), 1, 0,
                               &(struct devvm_irq_set){
                                   .flags = DEVVM_IRQ_SET_DATA_NONE |
                                            DEVVM_IRQ_SET_DATA_BOOL |
                                            DEVVM_IRQ_SET_ACTION_TRIGGER,
                                   .index = 2, .count = 0 });
    raw_send(fd, "bad set irqs", buf, len, NULL, 0);
    expect_error(fd, EINVAL, 1, "SET_IRQS with contradictory flags");
    hostile_end(&st, fd, DEVVM_E_BAD_FLAGS, "malformed payload");

    TAP_EQ(count_fds(), before, "no fd leaked through all of the above");
}

/* ---- a hostile server against the client role --------------------------- */

struct evil {
    pthread_t tid;
    int fd;
    int mode;
};

enum {
    EVIL_WRONG_ID, EVIL_SILENT, EVIL_HUGE, EVIL_FDS, EVIL_BAD_JSON,
    EVIL_UNASKED_DEVVM, EVIL_SHORT_READ,
};

static void *evil_main(void *arg)
{
    struct evil *e = arg;
    struct devvm_rx rx;
    uint8_t buf[256];
    int len, efd;

    while (devvm_sock_recv(e->fd, 10000, DEVVM_MAX_MSG_SIZE, &rx) == 0) {
        uint16_t id = rx.hdr.id, cmd = rx.hdr.cmd;

        devvm_rx_release(&rx);
        switch (e->mode) {
        case EVIL_WRONG_ID:
            len = devvm_encode_hdr_only(buf, sizeof(buf), id + 1, cmd,
                                        DEVVM_HDR_F_REPLY, 0);
            devvm_sock_send(e->fd, buf, len, NULL, 0);
            break;
        case EVIL_SILENT:
            break;
        case EVIL_HUGE:
            len = devvm_encode_hdr_only(buf, sizeof(buf), id, cmd,
                                        DEVVM_HDR_F_REPLY, 0);
            buf[7] = 0x40;
            devvm_sock_send(e->fd, buf, len, NULL, 0);
            break;
        case EVIL_FDS:
            efd = eventfd(0, EFD_CLOEXEC);
            len = devvm_encode_device_info(buf, sizeof(buf), id,
                                           DEVVM_HDR_F_REPLY,
                                           &(struct devvm_device_info){
                                               16, 2, 9, 5 });
            devvm_sock_send(e->fd, buf, len, &efd, 1);
            close(efd);
            break;
        case EVIL_BAD_JSON:
        case EVIL_UNASKED_DEVVM: {
            const char *j = e->mode == EVIL_BAD_JSON ?
                "{\"capabilities\":{\"max_msg_fds\":" :
                "{\"capabilities\":{\"devvm\":{\"version\":1}}}";
            struct devvm_version v = { 0, 0, j, strlen(j) };

            len = devvm_encode_version(buf, sizeof(buf), id,
                                       DEVVM_HDR_F_REPLY, &v);
            devvm_sock_send(e->fd, buf, len, NULL, 0);
            break;
        }
        case EVIL_SHORT_READ: {
            struct devvm_region_rw rw = { 0, 0, 2, "ab" };

            len = devvm_encode_region_rw(buf, sizeof(buf), id,
                                         DEVVM_CMD_REGION_READ,
                                         DEVVM_HDR_F_REPLY, &rw);
            devvm_sock_send(e->fd, buf, len, NULL, 0);
            break;
        }
        }
    }
    return NULL;
}

static void test_hostile_server(void)
{
    static const char *names[] = {
        "reply with the wrong id", "server that never answers",
        "reply larger than the limit", "reply with an unexpected fd",
        "malformed capability JSON", "reply with an unasked-for devvm",
        "read reply of the wrong size",
    };
    static const int want[] = {
        DEVVM_E_UNKNOWN_ID, DEVVM_E_TIMEOUT, DEVVM_E_TOO_BIG,
        DEVVM_E_BAD_FDS, DEVVM_E_JSON, DEVVM_E_VERSION, DEVVM_E_BAD_FIELD,
    };
    int before = count_fds(), mode;

    for (mode = EVIL_WRONG_ID; mode <= EVIL_SHORT_READ; mode++) {
        struct evil e = { .mode = mode };
        struct devvm_client c;
        struct devvm_device_info di;
        struct devvm_caps caps;
        int sv[2], ret;
        uint32_t v;
        struct timespec t0, t1;

        socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv);
        e.fd = sv[0];
        pthread_create(&e.tid, NULL, evil_main, &e);
        devvm_client_init(&c, sv[1], 300, &cl_ops, NULL);
        want_caps(&caps, 0);
        clock_gettime(CLOCK_MONOTONIC, &t0);
        if (mode == EVIL_BAD_JSON || mode == EVIL_UNASKED_DEVVM) {
            ret = devvm_client_negotiate(&c, &caps);
        } else if (mode == EVIL_SHORT_READ) {
            ret = devvm_client_region_read(&c, 0, 0, &v, 4);
        } else {
            ret = devvm_client_device_info(&c, &di);
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        TAP_EQ(ret, want[mode], "%s: \"%s\"", names[mode],
               devvm_strerror(want[mode]));
        if (mode == EVIL_SILENT) {
            double ms = (t1.tv_sec - t0.tv_sec) * 1e3 +
                        (t1.tv_nsec - t0.tv_nsec) / 1e6;

            TAP_CHECK(ms >= 250 && ms < 5000,
                      "... after the 300 ms timeout (%.0f ms)", ms);
        }
        TAP_EQ(devvm_client_reset(&c), want[mode],
               "%s: the connection stays failed", names[mode]);
        close(sv[1]);
        pthread_join(e.tid, NULL);
        close(sv[0]);
    }
    TAP_EQ(count_fds(), before, "no fd leaked to a hostile server");
}

/* A message that begins within a poll but arrives in pieces is read. */
struct slow_writer {
    int fd;
    uint8_t *msg;
    size_t len;
};

static void *slow_writer_main(void *arg)
{
    struct slow_writer *w = arg;
    struct timespec pause = { 0, 100 * 1000 * 1000 };

    write(w->fd, w->msg, 100);
    nanosleep(&pause, NULL);
    write(w->fd, w->msg + 100, w->len - 100);
    return NULL;
}

static void test_split_message(void)
{
    static uint8_t data[4096];
    struct devvm_dma_rw rw = { 0x1000, sizeof(data), data };
    struct slow_writer w;
    struct devvm_rx rx;
    struct timespec pause = { 0, 20 * 1000 * 1000 };
    pthread_t tid;
    int sv[2], ret;

    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv);
    w.fd = sv[0];
    w.msg = malloc(DEVVM_HDR_SIZE + 16 + sizeof(data));
    w.len = devvm_encode_dma_rw(w.msg, DEVVM_HDR_SIZE + 16 + sizeof(data), 1,
                                DEVVM_CMD_DMA_WRITE, 0, &rw);
    pthread_create(&tid, NULL, slow_writer_main, &w);
    nanosleep(&pause, NULL);
    ret = devvm_sock_recv(sv[1], 0, DEVVM_MAX_MSG_SIZE, &rx);
    TAP_EQ(ret, DEVVM_OK, "a message whose body comes 100 ms after its "
           "header is read by a 0 ms poll");
    if (!ret) {
        TAP_EQ(rx.hdr.size, w.len, "... whole");
        devvm_rx_release(&rx);
    }
    pthread_join(tid, NULL);
    free(w.msg);
    close(sv[0]);
    close(sv[1]);
}

/* devvm_sock_read(): fixed-size messages without a header or fds */
static void test_fixed_message(void)
{
    static uint8_t msg[200], got[200];
    struct slow_writer w = { .msg = msg, .len = sizeof(msg) };
    struct timespec pause = { 0, 20 * 1000 * 1000 };
    pthread_t tid;
    int sv[2], fd, ret;

    memset(msg, 0x5a, sizeof(msg));
    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv);
    TAP_EQ(devvm_sock_read(sv[1], got, sizeof(got), 50), DEVVM_E_AGAIN,
           "fixed message: none within 50 ms is DEVVM_E_AGAIN");

    w.fd = sv[0];
    pthread_create(&tid, NULL, slow_writer_main, &w);
    nanosleep(&pause, NULL);
    ret = devvm_sock_read(sv[1], got, sizeof(got), 0);
    pthread_join(tid, NULL);
    TAP_CHECK(ret == DEVVM_OK && !memcmp(got, msg, sizeof(got)),
              "fixed message: its second half 100 ms after the first is "
              "read whole by a 0 ms poll");

    fd = dup(sv[0]);
    TAP_EQ(devvm_sock_send(sv[0], msg, sizeof(msg), &fd, 1), DEVVM_OK,
           "fixed message: sent with an fd");
    close(fd);
    TAP_EQ(devvm_sock_read(sv[1], got, sizeof(got), 1000), DEVVM_E_BAD_FDS,
           "fixed message: one that brings an fd is DEVVM_E_BAD_FDS");

    TAP_EQ(write(sv[0], msg, 10), 10, "fixed message: 10 bytes of 200 sent");
    TAP_EQ(devvm_sock_read(sv[1], got, sizeof(got), 0), DEVVM_E_TIMEOUT,
           "fixed message: the rest not within DEVVM_SOCK_REST_MS is "
           "DEVVM_E_TIMEOUT");

    close(sv[0]);
    TAP_EQ(devvm_sock_read(sv[1], got, sizeof(got), 1000), DEVVM_E_CLOSED,
           "fixed message: the peer gone is DEVVM_E_CLOSED");
    close(sv[1]);
}

/*
 * A call busy-polls for its reply before it sleeps, with a budget that
 * adapts: halved by each spin that missed the reply (a server slower than
 * the budget, or one that needs the core the client spins on), whole
 * again after a spin that caught it or after DEVVM_CLIENT_SPIN_RETRY
 * calls.
 */
static void test_spin(void)
{
    struct server_thread st;
    struct devvm_client c;
    struct devvm_caps want;
    uint32_t v, steps[8];
    int fd, i, whole;

    fd = start_server(&st, NULL, 0, 0);
    devvm_client_init(&c, fd, 5000, &cl_ops, NULL);
    TAP_EQ(c.spin_us, 50, "a call spins up to 50 us for its reply by default");
    want_caps(&want, 0);
    TAP_EQ(devvm_client_negotiate(&c, &want), DEVVM_OK, "negotiate");

    /* a server that answers 2 ms late: every spin misses */
    __atomic_store_n(&st.td.read_delay_us, 2000, __ATOMIC_RELAXED);
    c.spin_cur_us = c.spin_us;
    c.spin_calls = 0;
    for (i = 0; i < 8; i++) {
        devvm_client_region_read(&c, 0, 0, &v, 4);
        steps[i] = c.spin_cur_us;
    }
    TAP_CHECK(steps[0] == 25 && steps[1] == 12 && steps[2] == 6 &&
              steps[3] == 3 && steps[4] == 1 && steps[5] == 0 &&
              steps[7] == 0,
              "a slow server halves the budget at each miss, down to none "
              "(%u %u %u %u %u %u %u %u)", steps[0], steps[1], steps[2],
              steps[3], steps[4], steps[5], steps[6], steps[7]);
    for (i = 8; i < 255; i++) {
        devvm_client_region_read(&c, 0, 0, &v, 4);
    }
    TAP_EQ(c.spin_cur_us, 0, "... and it stays none for 255 calls");
    __atomic_store_n(&st.td.read_delay_us, 0, __ATOMIC_RELAXED);
    devvm_client_region_read(&c, 0, 0, &v, 4);
    whole = c.spin_cur_us == c.spin_us;
    for (i = 0; i < 100 && !whole; i++) {
        devvm_client_region_read(&c, 0, 0, &v, 4);
        whole = c.spin_cur_us == c.spin_us;
    }
    TAP_CHECK(whole, "after 256 calls it spins again, and a reply caught in "
              "a spin keeps the whole budget (%u us)", c.spin_cur_us);

    c.spin_us = c.spin_cur_us = 0;
    TAP_EQ(devvm_client_region_read(&c, 0, 0, &v, 4), DEVVM_OK,
           "spin_us 0: a call sleeps at once and still gets its reply");
    TAP_EQ(c.spin_cur_us, 0, "... and never spins");
    close(fd);
    stop_server(&st);
}

int main(void)
{
    test_full_session();
    test_downgrade();
    test_verbose();
    test_hostile_client();
    test_hostile_server();
    test_split_message();
    test_fixed_message();
    test_spin();
    return tap_done();
}
