/*
 * rt-host: the host side of a device VM running rt-sample.elf, for
 * test-rt.sh.  A minimal ivshmem server (docs/specs/ivshmem-spec.rst in
 * the QEMU tree) with the peers of docs/devvm/device-vm.rst (host 0,
 * device VM 1, an eventfd per vector), then a TAP test of the runtime
 * through its rings:
 *
 *   rt-host SOCKET LAUNCH_FILE
 *
 * The test script starts QEMU once SOCKET exists and writes
 * "LAUNCH_NS PID" (CLOCK_REALTIME) to LAUNCH_FILE; rt-host reports the
 * boot-to-READY time and QEMU's RSS from it.  The device VM is booted
 * three times on the same shared memory: rt-host kills each QEMU after
 * its tests and the script starts the next one.  The first boot is
 * tested until a crash, the second (generation 2) until a hang; the
 * third, with id=0x0, must fail in rt-sample's type_init.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "libdevvm/desc.h"
#include "libdevvm/le.h"
#include "libdevvm/ring.h"
#include "libdevvm/ring-client.h"
#include "libdevvm/sdk.h"
#include "libdevvm/sock.h"
#include "../../tests/tap.h"

#define VECTORS         8       /* -device ivshmem-doorbell,vectors=8 */
#define HOST_PEER       0
#define VM_PEER         1
#define TIMEOUT_MS      5000
#define BOOT_TIMEOUT_MS 30000

/* rt-sample.c */
#define SAMPLE_VENDOR   0x1af4
#define SAMPLE_DEVICE   0x10fe
#define SAMPLE_ID_PARAM 0x5a5a0001u     /* test-rt.sh passes id=0x5a5a0001 */
#define REG_ID          0x00
#define REG_SCRATCH     0x08
#define REG_MSIX        0x10
#define REG_DMA_ADDR    0x18
#define REG_DMA_LEN     0x20
#define REG_DMA_CMD     0x24
#define REG_DMA_STATUS  0x28
#define REG_LOG         0x2c
#define REG_FAULT       0x30
#define REG_OPENS       0x34
#define REG_TYPE        0x38
#define REG_BUF         0x40
#define DMA_TO_BUF      1
#define DMA_FROM_BUF    2
#define DMA_TO_BULK     3
#define DMA_FROM_BULK   4

#define REGION_CONFIG   7
#define PCI_COMMAND     4
#define CMD_MEM_MASTER  0x6

/* "client memory" the device reaches with DMA */
#define MEM_BASE        0x100000ull
#define MEM_SIZE        0x80000

struct host {
    const char *launch_file;
    int lfd;
    int shm_fd;
    uint8_t *shm;
    uint64_t shm_size;
    int host_fds[VECTORS];      /* the device VM signals these (calls) */
    int vm_fds[VECTORS];        /* we signal these: MSI-X of the VM */
    pid_t qemu_pid;
    struct devvm_ring_client ctl;   /* instance 0, control channel 0 */
    struct devvm_ring_client data;  /* instance 0, data channel 1 */
    uint8_t mem[MEM_SIZE];
    /* what the EVT ring brought */
    unsigned dma_ops, irqs, logs;
    struct devvm_slot last_irq;
    char log[256];
    size_t log_len;
    int evt_error;
};

static int64_t now_ns(clockid_t clk)
{
    struct timespec ts;

    clock_gettime(clk, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void die(const char *what)
{
    printf("Bail out! %s: %s\n", what, strerror(errno));
    exit(1);
}

/* ---- ivshmem server ------------------------------------------------------ */

static int ivs_send(int fd, int64_t v, int pass_fd)
{
    uint8_t b[8];

    devvm_st64(b, (uint64_t)v);
    return devvm_sock_send(fd, b, sizeof(b), &pass_fd, pass_fd >= 0);
}

/* Accept a device VM's QEMU and send it the setup; the connection fd. */
static int ivs_accept(struct host *h)
{
    int fd = accept4(h->lfd, NULL, NULL, SOCK_CLOEXEC);
    int ret;
    unsigned v;

    if (fd < 0) {
        die("accept");
    }
    ret = ivs_send(fd, 0, -1);                      /* protocol version */
    ret = ret ? ret : ivs_send(fd, VM_PEER, -1);    /* its id */
    ret = ret ? ret : ivs_send(fd, -1, h->shm_fd);  /* the memory */
    for (v = 0; !ret && v < VECTORS; v++) {
        ret = ivs_send(fd, HOST_PEER, h->host_fds[v]);
    }
    for (v = 0; !ret && v < VECTORS; v++) {
        ret = ivs_send(fd, VM_PEER, h->vm_fds[v]);
    }
    TAP_CHECK(!ret, "ivshmem setup sent to QEMU");
    return fd;
}

static void host_init(struct host *h, const char *sock)
{
    uint64_t need = devvm_shm_size(VECTORS, 64, 0x10000);
    unsigned v;

    h->shm_size = 4096;
    while (h->shm_size < need) {
        h->shm_size <<= 1;      /* a PCI BAR in the device VM */
    }
    h->shm_fd = memfd_create("rt-host-shm", MFD_CLOEXEC);
    if (h->shm_fd < 0 || ftruncate(h->shm_fd, h->shm_size) < 0) {
        die("memfd");
    }
    h->shm = mmap(NULL, h->shm_size, PROT_READ | PROT_WRITE, MAP_SHARED,
                  h->shm_fd, 0);
    if (h->shm == MAP_FAILED) {
        die("mmap");
    }
    for (v = 0; v < VECTORS; v++) {
        h->host_fds[v] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        h->vm_fds[v] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (h->host_fds[v] < 0 || h->vm_fds[v] < 0) {
            die("eventfd");
        }
    }
    h->lfd = devvm_sock_listen(sock);
    if (h->lfd < 0) {
        die("listen");
    }
}

/* ---- the events side of instance 0 --------------------------------------- */

static void drain(int fd)
{
    uint64_t v;

    while (read(fd, &v, sizeof(v)) == sizeof(v)) {
        continue;
    }
}

/* DMA against h->mem at MEM_BASE: the DMA_DONE status, a positive errno. */
static int do_dma(struct host *h, const struct devvm_slot *s)
{
    struct devvm_channel *ch = &h->ctl.ch;

    if (!s->len || devvm_channel_data_range(ch, s->aux, s->len)) {
        return EINVAL;
    }
    if (s->addr < MEM_BASE || s->len > MEM_SIZE ||
        s->addr - MEM_BASE > MEM_SIZE - s->len) {
        return EFAULT;
    }
    if (s->op == DEVVM_OP_DMA_READ) {
        memcpy(ch->data + s->aux, h->mem + (s->addr - MEM_BASE), s->len);
    } else {
        memcpy(h->mem + (s->addr - MEM_BASE), ch->data + s->aux, s->len);
    }
    return 0;
}

/* Consume the control channel's EVT ring (the ring client's events hook). */
static int serve_events(void *opaque)
{
    struct host *h = opaque;
    struct devvm_channel *ch = &h->ctl.ch;
    struct devvm_ring *evt = &ch->ring[DEVVM_RING_EVT];
    struct devvm_ring *done = &ch->ring[DEVVM_RING_EVT_CPL];
    struct devvm_slot s;
    int ret, kick = 0;

    drain(h->host_fds[0]);
    while ((ret = devvm_ring_pop(evt, &s)) == 0) {
        struct devvm_slot c = { .op = DEVVM_OP_DMA_DONE, .tag = s.tag };

        switch (s.op) {
        case DEVVM_OP_DMA_READ:
        case DEVVM_OP_DMA_WRITE:
            h->dma_ops++;
            c.status = do_dma(h, &s);
            if (devvm_ring_push(done, &c)) {
                return h->evt_error = DEVVM_E_RING_INDEX;
            }
            kick = 1;
            break;
        case DEVVM_OP_IRQ:
            h->irqs++;
            h->last_irq = s;
            break;
        case DEVVM_OP_LOG:
            if (s.size > DEVVM_LOG_TEXT_MAX ||
                h->log_len + s.size >= sizeof(h->log)) {
                return h->evt_error = DEVVM_E_BAD_FIELD;
            }
            memcpy(h->log + h->log_len, s.text, s.size);
            h->log_len += s.size;
            if (!(s.flags & DEVVM_SLOT_F_MORE)) {
                h->log[h->log_len] = '\0';
                h->log_len = 0;
                h->logs++;
            }
            break;
        default:
            return h->evt_error = DEVVM_E_BAD_FIELD;
        }
    }
    if (kick && devvm_ring_kick_needed(done)) {
        uint64_t one = 1;

        if (write(h->vm_fds[0], &one, sizeof(one)) != sizeof(one)) {
            return h->evt_error = DEVVM_E_IO;
        }
    }
    return ret == DEVVM_E_AGAIN ? 0 : (h->evt_error = ret);
}

/* ---- ring clients ------------------------------------------------------- */

static int client_open(struct host *h, struct devvm_ring_client *rc,
                       unsigned ch)
{
    struct devvm_ring_attach a = {
        .channel = ch, .depth = 64, .shm_size = h->shm_size,
        .generation = devvm_shm_generation(h->shm),
    };
    int fds[DEVVM_ATTACH_FDS] = {
        dup(h->shm_fd), dup(h->vm_fds[ch]), dup(h->host_fds[ch]),
    };
    int ret = devvm_ring_client_open(rc, &a, fds);

    if (ret) {
        return ret;
    }
    /* a read on either channel serves the events meanwhile */
    rc->aux_opaque = h;
    rc->events = serve_events;
    if (ch != 0) {
        rc->aux_fd = h->host_fds[0];
        rc->aux_ready = serve_events;
    }
    return 0;
}

static int op(struct host *h, uint16_t opcode)
{
    struct devvm_slot s = { .op = opcode };
    int ret = devvm_ring_client_call(&h->ctl, &s, NULL, TIMEOUT_MS);

    return ret == DEVVM_E_PEER ? h->ctl.peer_status : ret;
}

/*
 * A read: the value, or ~0 with *err set (a positive errno, or a
 * negative devvm_err).
 */
static uint64_t rd(struct devvm_ring_client *rc, uint8_t region,
                   uint64_t off, uint8_t size, int *err)
{
    uint64_t v = ~0ull;
    int ret = devvm_ring_client_read(rc, region, off, size, &v, TIMEOUT_MS);

    *err = ret == DEVVM_E_PEER ? rc->peer_status : ret;
    return ret ? ~0ull : v;
}

static uint64_t rd_ok(struct devvm_ring_client *rc, uint8_t region,
                      uint64_t off, uint8_t size)
{
    int err;
    uint64_t v = rd(rc, region, off, size, &err);

    if (err) {
        printf("# read of region %u + 0x%llx: %d\n", region,
               (unsigned long long)off, err);
    }
    return v;
}

static int wr(struct devvm_ring_client *rc, uint8_t region, uint64_t off,
              uint8_t size, uint64_t v)
{
    return devvm_ring_client_write(rc, region, off, size, v, TIMEOUT_MS);
}

/* ---- the tests ---------------------------------------------------------- */

/* Wait for @state in generation @gen: 0, or -1 on timeout. */
static int wait_state(struct host *h, uint32_t state, uint32_t gen, int ms)
{
    int64_t end = now_ns(CLOCK_MONOTONIC) + (int64_t)ms * 1000000;

    while (now_ns(CLOCK_MONOTONIC) < end) {
        if (devvm_shm_state(h->shm) == state &&
            devvm_shm_generation(h->shm) == gen) {
            return 0;
        }
        usleep(1000);
    }
    return -1;
}

/*
 * The launch file of test-rt.sh: QEMU's pid into h->qemu_pid and its
 * launch time (ns, CLOCK_REALTIME), or 0.
 */
static long long read_launch(struct host *h)
{
    FILE *f = fopen(h->launch_file, "r");
    long long launch = 0;
    int pid = 0;

    if (!f || fscanf(f, "%lld %d", &launch, &pid) != 2) {
        printf("# no launch file\n");
        launch = 0;
    }
    if (f) {
        fclose(f);
    }
    h->qemu_pid = pid;
    return launch;
}

/* Boot-to-READY and RSS from the launch file of test-rt.sh. */
static void report_launch(struct host *h, int64_t ready_ns)
{
    long long launch = read_launch(h);
    char path[64], line[128];
    FILE *f;

    if (!launch) {
        return;
    }
    printf("# boot-to-READY: %.1f ms (QEMU launch to READY seen)\n",
           (ready_ns - launch) / 1e6);
    snprintf(path, sizeof(path), "/proc/%d/status", h->qemu_pid);
    f = fopen(path, "r");
    while (f && fgets(line, sizeof(line), f)) {
        if (!strncmp(line, "VmRSS:", 6)) {
            printf("# QEMU %s", line);
        }
    }
    if (f) {
        fclose(f);
    }
}

static void test_boot(struct host *h, uint32_t gen)
{
    struct devvm_shm_layout l;
    struct devvm_desc_info d;
    int ret;

    ret = wait_state(h, DEVVM_STATE_READY, gen, BOOT_TIMEOUT_MS);
    if (!TAP_CHECK(!ret, "READY in generation %u", gen)) {
        char reason[DEVVM_MAX_REASON];

        devvm_shm_reason(h->shm, reason, sizeof(reason));
        printf("Bail out! state %s, generation %u: %s\n",
               devvm_state_name(devvm_shm_state(h->shm)),
               devvm_shm_generation(h->shm), reason);
        exit(1);
    }
    report_launch(h, now_ns(CLOCK_REALTIME));
    ret = devvm_shm_validate(h->shm, h->shm_size, &l);
    TAP_EQ(ret, 0, "header validates");
    TAP_EQ(l.nr_channels, VECTORS, "one channel per MSI-X vector");
    TAP_CHECK(l.depth == 64 && l.data_size == 0x10000,
              "depth 64, data area 64 KiB");
    ret = devvm_desc_decode(h->shm + DEVVM_DESC_OFFSET, l.desc_size, &d);
    TAP_EQ(ret, 0, "description decodes");
    TAP_EQ(d.instances, VECTORS / 2, "an instance per channel pair");
    TAP_CHECK(!strcmp(d.name, "rt-sample"), "name \"%s\"", d.name);
    TAP_CHECK(d.regions[0].size == 0x1000 && d.regions[0].flags ==
              (DEVVM_REGION_F_READ | DEVVM_REGION_F_WRITE),
              "BAR0: 4 KiB, read/write");
    TAP_EQ(d.regions[REGION_CONFIG].size, 256, "config space: 256 bytes");
    TAP_EQ(d.irqs[DEVVM_PCI_MSIX_IRQ].count, 4, "4 MSI-X vectors");
}

static void test_heartbeat(struct host *h)
{
    uint64_t a = devvm_shm_heartbeat_count(h->shm), b;

    /* nothing to do for the device: it sleeps, the tick keeps it alive */
    usleep(300000);
    b = devvm_shm_heartbeat_count(h->shm);
    TAP_CHECK(b > a, "heartbeat moves while idle (%llu -> %llu)",
              (unsigned long long)a, (unsigned long long)b);
}

static void test_control(struct host *h)
{
    struct devvm_ring_client other;
    int err;

    TAP_EQ(client_open(h, &h->ctl, 0), 0, "control channel 0 attached");
    /* every event rings the doorbell: the EVT ring is never polled */
    devvm_ring_prepare_sleep(&h->ctl.ch.ring[DEVVM_RING_EVT]);
    TAP_EQ(rd(&h->ctl, 0, REG_ID, 4, &err), ~0ull, "closed instance: read");
    TAP_EQ(err, ENODEV, "closed instance: ENODEV");
    TAP_EQ(op(h, DEVVM_OP_OPEN), 0, "OPEN");
    TAP_EQ(op(h, DEVVM_OP_OPEN), EBUSY, "OPEN again: EBUSY");
    TAP_EQ(rd_ok(&h->ctl, REGION_CONFIG, 0, 4),
           SAMPLE_DEVICE << 16 | SAMPLE_VENDOR, "config: vendor and device");
    TAP_EQ(rd_ok(&h->ctl, REGION_CONFIG, 0x2c, 2), SAMPLE_VENDOR,
           "config: subsystem vendor");
    TAP_EQ(rd_ok(&h->ctl, 0, REG_ID, 4), SAMPLE_ID_PARAM,
           "ID register, set by the id= parameter");
    TAP_EQ(rd_ok(&h->ctl, 0, REG_TYPE, 4), (uint32_t)~SAMPLE_ID_PARAM,
           "TYPE register: the type's data, made from the ID at boot");
    TAP_EQ(wr(&h->ctl, 0, REG_SCRATCH, 8, 0x0123456789abcdefull), 0,
           "write scratch");
    TAP_EQ(rd_ok(&h->ctl, 0, REG_SCRATCH, 8), 0x0123456789abcdefull,
           "scratch reads back (64-bit)");
    TAP_EQ(rd_ok(&h->ctl, 0, REG_SCRATCH, 4), 0x89abcdef,
           "scratch, low 4 bytes");
    TAP_EQ(rd(&h->ctl, 0, 0x1000, 4, &err), ~0ull, "read past BAR0");
    TAP_EQ(err, EINVAL, "read past BAR0: EINVAL");
    TAP_EQ(rd(&h->ctl, 3, 0, 4, &err), ~0ull, "read of an unused BAR");
    TAP_EQ(err, EPERM, "read of an unused BAR: EPERM (not readable)");
    TAP_EQ(wr(&h->ctl, REGION_CONFIG, PCI_COMMAND, 2, CMD_MEM_MASTER), 0,
           "config: memory and bus master on");
    TAP_EQ(rd_ok(&h->ctl, REGION_CONFIG, PCI_COMMAND, 2), CMD_MEM_MASTER,
           "config: command register reads back");

    /* instance 1 stays closed */
    TAP_EQ(client_open(h, &other, 2), 0, "control channel 2 attached");
    TAP_EQ(rd(&other, REGION_CONFIG, 0, 4, &err), ~0ull,
           "instance 1: config read");
    TAP_EQ(err, ENODEV, "instance 1 is not open: ENODEV");
    devvm_ring_client_close(&other);
}

static void test_data(struct host *h)
{
    int err;

    TAP_EQ(client_open(h, &h->data, 1), 0, "data channel 1 attached");
    TAP_EQ(rd_ok(&h->data, 0, REG_ID, 4), SAMPLE_ID_PARAM,
           "data channel: ID register");
    TAP_EQ(rd_ok(&h->data, 0, REG_SCRATCH, 8), 0x0123456789abcdefull,
           "data channel: scratch written on the control channel");
    TAP_EQ(wr(&h->data, 0, REG_SCRATCH, 4, 0xcafef00d), 0,
           "data channel: write scratch");
    /* channels are not ordered: a read on the data channel is */
    TAP_EQ(rd_ok(&h->data, 0, REG_SCRATCH, 4), 0xcafef00d,
           "data channel: scratch reads back");
    TAP_EQ(rd_ok(&h->ctl, 0, REG_SCRATCH, 4), 0xcafef00d,
           "control channel sees it");
    TAP_EQ(rd(&h->data, REGION_CONFIG, 0, 4, &err), ~0ull,
           "data channel: config read");
    TAP_EQ(err, EINVAL, "data channel: config is not a BAR: EINVAL");
    TAP_EQ(wr(&h->data, 2, 8, 8, 0x1122334455667788ull), 0,
           "BAR2 memory window: write");
    TAP_EQ(rd_ok(&h->data, 2, 8, 8), 0x1122334455667788ull,
           "BAR2 memory window: read back");
    TAP_EQ(rd_ok(&h->ctl, 2, 12, 4), 0x11223344,
           "BAR2 memory window: control channel, 4 bytes at +12");
}

/* DMA_CMD @cmd for [addr, addr + len): DMA_STATUS. */
static uint64_t dma(struct host *h, unsigned cmd, uint64_t addr, uint32_t len)
{
    wr(&h->data, 0, REG_DMA_ADDR, 8, addr);
    wr(&h->data, 0, REG_DMA_LEN, 4, len);
    wr(&h->data, 0, REG_DMA_CMD, 4, cmd);
    return rd_ok(&h->data, 0, REG_DMA_STATUS, 4);
}

static void test_events(struct host *h)
{
    unsigned i, irqs, logs;
    uint64_t v;

    /* DMA write: BUF -> client memory */
    for (i = 0; i < 16; i += 8) {
        wr(&h->data, 0, REG_BUF + i, 8, 0x0807060504030201ull +
           i / 8 * 0x0808080808080808ull);
    }
    TAP_EQ(dma(h, DMA_FROM_BUF, MEM_BASE + 100, 13), 0, "DMA write: status 0");
    for (i = 0; i < 13 && h->mem[100 + i] == i + 1; i++) {
        continue;
    }
    TAP_CHECK(i == 13 && h->mem[113] == 0,
              "DMA write: 13 bytes in client memory");

    /* DMA read: client memory -> BUF */
    for (i = 0; i < 64; i++) {
        h->mem[2000 + i] = 0xa0 ^ i;
    }
    TAP_EQ(dma(h, DMA_TO_BUF, MEM_BASE + 2000, 64), 0, "DMA read: status 0");
    v = rd_ok(&h->data, 0, REG_BUF + 56, 8);
    TAP_EQ(v, 0xa0a0a0a0a0a0a0a0ull ^ 0x3f3e3d3c3b3a3938ull,
           "DMA read: the bytes arrived in BUF");

    /* outside client memory */
    TAP_EQ(dma(h, DMA_TO_BUF, MEM_BASE + MEM_SIZE - 4, 8), EFAULT,
           "DMA outside client memory: EFAULT");
    TAP_EQ(h->dma_ops, 3, "three DMA slots served");

    /* MSI-X */
    irqs = h->irqs;
    wr(&h->data, 0, REG_MSIX, 4, 2);
    rd_ok(&h->data, 0, REG_ID, 4);
    serve_events(h);
    TAP_EQ(h->irqs, irqs + 1, "MSI-X: one IRQ event");
    TAP_CHECK(h->last_irq.region == DEVVM_PCI_MSIX_IRQ &&
              h->last_irq.addr == 2 && h->last_irq.data == DEVVM_IRQ_PULSE,
              "MSI-X: index 2, vector 2, PULSE");

    /* LOG, chained over two slots */
    logs = h->logs;
    wr(&h->data, 0, REG_LOG, 4, 0x1234);
    rd_ok(&h->data, 0, REG_ID, 4);
    serve_events(h);
    TAP_EQ(h->logs, logs + 1, "LOG: one message");
    TAP_CHECK(!strcmp(h->log, "log register: 0x1234, a line that needs two "
                      "LOG slots"), "LOG: \"%s\"", h->log);
    TAP_EQ(h->evt_error, 0, "EVT ring served without errors");
}

/*
 * DMA longer than the data area: the SDK moves it in 64 KiB pieces, one
 * DMA slot each, and stops at the first that fails.
 */
static void test_bulk_dma(struct host *h)
{
    const uint32_t len = 0x25800, out = 0x40000, end = MEM_SIZE - 0x18000;
    unsigned ops = h->dma_ops;
    uint32_t i;

    for (i = 0; i < len; i++) {
        h->mem[1 + i] = i * 7 + (i >> 16);
    }
    memset(h->mem + out, 0, MEM_SIZE - out);
    TAP_EQ(dma(h, DMA_TO_BULK, MEM_BASE + 1, len), 0, "150 KiB DMA read");
    TAP_EQ(h->dma_ops - ops, 3, "... in three DMA slots");
    TAP_EQ(dma(h, DMA_FROM_BULK, MEM_BASE + out, len), 0,
           "150 KiB DMA write");
    TAP_CHECK(!memcmp(h->mem + out, h->mem + 1, len) &&
              h->mem[out + len] == 0, "... the bytes arrived");
    TAP_EQ(h->dma_ops - ops, 6, "... in three DMA slots");

    /* the second piece leaves client memory */
    TAP_EQ(dma(h, DMA_FROM_BULK, MEM_BASE + end, len), EFAULT,
           "a DMA write whose second piece is outside: EFAULT");
    TAP_EQ(h->dma_ops - ops, 8, "... the third piece not tried");
    TAP_CHECK(!memcmp(h->mem + end, h->mem + 1, 0x10000) &&
              h->mem[end + 0x10000] == 0,
              "... the first piece written, the second not");
}

static void test_lifecycle(struct host *h)
{
    int err;

    /* WRONG_ID: the next completion carries a wrong tag */
    wr(&h->data, 0, REG_FAULT, 4, DEVVM_FAULT_WRONG_ID);
    TAP_EQ(rd(&h->data, 0, REG_ID, 4, &err), ~0ull, "WRONG_ID: read fails");
    TAP_EQ(err, DEVVM_E_BAD_FIELD, "WRONG_ID: the client sees a bad tag");
    devvm_ring_client_close(&h->data);
    TAP_EQ(client_open(h, &h->data, 1), 0, "data channel attached again");
    /* GARBAGE: the next completion slot has a bad sequence number */
    wr(&h->data, 0, REG_FAULT, 4, DEVVM_FAULT_GARBAGE);
    TAP_EQ(rd(&h->data, 0, REG_ID, 4, &err), ~0ull, "GARBAGE: read fails");
    TAP_EQ(err, DEVVM_E_RING_SEQ, "GARBAGE: the client sees a bad seq");
    devvm_ring_client_close(&h->data);

    /* RESET: config space back to its initial state */
    TAP_EQ(op(h, DEVVM_OP_RESET), 0, "RESET");
    TAP_EQ(rd_ok(&h->ctl, REGION_CONFIG, PCI_COMMAND, 2), 0,
           "RESET: command register cleared");
    /* CLOSE resets the data channel's rings, OPEN starts afresh */
    TAP_EQ(op(h, DEVVM_OP_CLOSE), 0, "CLOSE");
    TAP_EQ(rd(&h->ctl, 0, REG_ID, 4, &err), ~0ull, "closed again: read");
    TAP_EQ(err, ENODEV, "closed again: ENODEV");
    TAP_EQ(op(h, DEVVM_OP_OPEN), 0, "OPEN after CLOSE");
    TAP_EQ(client_open(h, &h->data, 1), 0, "data channel attached after "
           "CLOSE (empty rings)");
    TAP_EQ(rd_ok(&h->data, 0, REG_SCRATCH, 8), 0, "new instance: scratch 0");
    TAP_EQ(rd_ok(&h->data, 0, REG_OPENS, 4), 2, "init ran twice");
}

static void test_crash(struct host *h)
{
    char reason[DEVVM_MAX_REASON];
    int ret;

    wr(&h->data, 0, REG_FAULT, 4, DEVVM_FAULT_CRASH);
    ret = wait_state(h, DEVVM_STATE_FAILED, devvm_shm_generation(h->shm),
                     TIMEOUT_MS);
    TAP_EQ(ret, 0, "CRASH: FAILED");
    devvm_shm_reason(h->shm, reason, sizeof(reason));
    TAP_CHECK(!strncmp(reason, "exception 6 at rip 0x", 21),
              "CRASH: reason \"%s\"", reason);
    TAP_EQ(devvm_ld32(h->shm + DEVVM_SHM_OFF_FAIL_CODE), 6,
           "CRASH: fail_code 6 (#UD)");
    devvm_ring_client_close(&h->data);
    devvm_ring_client_close(&h->ctl);
}

/* Second boot, same memory: generation 2, then a HANG stops everything. */
static void test_restart_hang(struct host *h)
{
    uint64_t a, b;

    test_boot(h, 2);
    TAP_EQ(client_open(h, &h->ctl, 0), 0, "generation 2: control channel");
    devvm_ring_prepare_sleep(&h->ctl.ch.ring[DEVVM_RING_EVT]);
    TAP_EQ(op(h, DEVVM_OP_OPEN), 0, "generation 2: OPEN");
    TAP_EQ(rd_ok(&h->ctl, 0, REG_OPENS, 4), 1, "generation 2: fresh device");
    wr(&h->ctl, 0, REG_FAULT, 4, DEVVM_FAULT_HANG);
    usleep(200000);
    a = devvm_shm_heartbeat_count(h->shm);
    usleep(500000);
    b = devvm_shm_heartbeat_count(h->shm);
    TAP_CHECK(a == b && devvm_shm_state(h->shm) == DEVVM_STATE_READY,
              "HANG: heartbeat stopped, state still READY");
    devvm_ring_client_close(&h->ctl);
}

/* Third boot, with id=0x0: rt-sample's type_init refuses it, FAILED. */
static void test_type_init_fails(struct host *h)
{
    char reason[DEVVM_MAX_REASON];
    int ret;

    ret = wait_state(h, DEVVM_STATE_FAILED, 3, BOOT_TIMEOUT_MS);
    read_launch(h);
    TAP_EQ(ret, 0, "type_init fails: FAILED in generation 3");
    devvm_shm_reason(h->shm, reason, sizeof(reason));
    TAP_CHECK(!strcmp(reason, "the device's type_init failed: out of range "
                      "(-34)"), "type_init fails: reason \"%s\"", reason);
    TAP_EQ(devvm_ld32(h->shm + DEVVM_SHM_OFF_FAIL_CODE), ERANGE,
           "type_init fails: fail_code ERANGE");
}

int main(int argc, char **argv)
{
    static struct host h;
    int fd;

    if (argc != 3) {
        fprintf(stderr, "usage: %s SOCKET LAUNCH_FILE\n", argv[0]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    h.launch_file = argv[2];
    host_init(&h, argv[1]);

    fd = ivs_accept(&h);
    test_boot(&h, 1);
    test_heartbeat(&h);
    test_control(&h);
    test_data(&h);
    test_events(&h);
    test_bulk_dma(&h);
    test_lifecycle(&h);
    test_crash(&h);
    /* the script starts the next QEMU once this one is gone */
    kill(h.qemu_pid, SIGTERM);
    close(fd);
    fd = ivs_accept(&h);
    test_restart_hang(&h);
    kill(h.qemu_pid, SIGTERM);
    close(fd);
    fd = ivs_accept(&h);
    test_type_init_fails(&h);
    kill(h.qemu_pid, SIGTERM);
    close(fd);
    unlink(argv[1]);
    return tap_done();
}
