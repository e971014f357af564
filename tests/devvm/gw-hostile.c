/*
 * TAP test: devvm-gateway against a hostile device VM.
 *
 * This program plays the device VM's side by hand: it connects to the
 * gateway's ivshmem socket like QEMU's ivshmem-doorbell, maps the shared
 * memory and writes into it what a broken or malicious device VM could:
 * a garbage header, an impossible description, bad event ring slots, a
 * completion with a wrong tag, an op that does not exist, an OPEN left
 * unanswered past the gateway's timeout.  It also plays
 * a client on DIR/device.sock.  The gateway must refuse each with a log
 * line, keep running, keep its clients' memory safe outside their DMA
 * maps, and take a sound device back in the next generation.
 *
 *   gw-hostile GATEWAY
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "libdevvm/client.h"
#include "libdevvm/desc.h"
#include "libdevvm/le.h"
#include "libdevvm/ring.h"
#include "sealed-memfd.h"
#include "tap.h"

#define NCH             4           /* --channels */
#define DEPTH           64
#define DATA_SIZE       0x10000
#define CLIENT_RAM      0x10000     /* client bus address of its RAM */
#define RAM_SIZE        0x10000
#define DEV_ID          0x7e570001u
#define HANDSHAKE_MS    500         /* --handshake-ms */
#define HANDSHAKE_MS_STR "500"

static char dir[64], gwdir[96], ivs_path[128], dev_path[128];
static pid_t gw_pid;
static int ivs_fd = -1;
static uint8_t *shm;
static uint64_t shm_size;
static int host_fds[NCH], vm_fds[NCH];

/*
 * The device side's control channels of instances 0 and 1 (channels 0
 * and 2), for the device thread
 */
static struct devvm_channel ch, ch2;
static pthread_t dev_tid;
static volatile int dev_stop;
static volatile int wrong_tag;      /* the next READ_DONE gets a bad tag */
static volatile unsigned opens;
static volatile unsigned opens_ignored;     /* OPENs left unanswered */

static void stop_gateway(void)
{
    if (gw_pid > 0) {
        kill(gw_pid, SIGKILL);
        waitpid(gw_pid, NULL, 0);
        gw_pid = 0;
    }
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

    nanosleep(&ts, NULL);
}

static bool gateway_alive(void)
{
    return gw_pid > 0 && waitpid(gw_pid, NULL, WNOHANG) == 0;
}

/* One ivshmem server message: an LE int64, maybe with an fd. */
static int ivs_recv(int fd, int64_t *v, int *rfd)
{
    uint8_t b[8];
    char ctl[CMSG_SPACE(sizeof(int))];
    struct iovec iov = { b, sizeof(b) };
    struct msghdr m = {
        .msg_iov = &iov, .msg_iovlen = 1,
        .msg_control = ctl, .msg_controllen = sizeof(ctl),
    };
    struct cmsghdr *c;
    struct pollfd pfd = { .fd = fd, .events = POLLIN };

    *rfd = -1;
    if (poll(&pfd, 1, 2000) != 1 || recvmsg(fd, &m, MSG_CMSG_CLOEXEC) != 8) {
        return -1;
    }
    for (c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            memcpy(rfd, CMSG_DATA(c), sizeof(int));
        }
    }
    *v = (int64_t)devvm_ld64(b);
    return 0;
}

/* Connect like ivshmem-doorbell and take what the server hands out. */
static void ivs_setup(void)
{
    int64_t v;
    int fd, i, ok = 1;
    struct stat st;

    ivs_fd = devvm_sock_connect(ivs_path);
    TAP_CHECK(ivs_fd >= 0, "ivshmem: connected to %s", ivs_path);
    TAP_CHECK(!ivs_recv(ivs_fd, &v, &fd) && v == 0 && fd < 0,
              "ivshmem: protocol version 0");
    TAP_CHECK(!ivs_recv(ivs_fd, &v, &fd) && v == 1 && fd < 0,
              "ivshmem: the device VM is peer 1");
    TAP_CHECK(!ivs_recv(ivs_fd, &v, &fd) && v == -1 && fd >= 0,
              "ivshmem: the shared memory comes with id -1");
    fstat(fd, &st);
    shm_size = st.st_size;
    TAP_CHECK(shm_size >= devvm_shm_size(NCH, DEPTH, DATA_SIZE) &&
              !(shm_size & (shm_size - 1)),
              "ivshmem: %llu bytes, a power of two that fits %u channels",
              (unsigned long long)shm_size, NCH);
    shm = mmap(NULL, shm_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    for (i = 0; i < NCH; i++) {
        ok &= !ivs_recv(ivs_fd, &v, &host_fds[i]) && v == 0 &&
              host_fds[i] >= 0;
    }
    TAP_CHECK(ok, "ivshmem: peer 0 (host) with %u vector eventfds", NCH);
    ok = 1;
    for (i = 0; i < NCH; i++) {
        ok &= !ivs_recv(ivs_fd, &v, &vm_fds[i]) && v == 1 && vm_fds[i] >= 0;
    }
    TAP_CHECK(ok, "ivshmem: own vectors (peer 1), %u eventfds", NCH);
}

static void desc_publish(uint32_t instances)
{
    struct devvm_desc_info d;
    uint8_t area[DEVVM_DESC_SIZE];

    memset(&d, 0, sizeof(d));
    d.instances = instances;
    strcpy(d.name, "hostile");
    d.dev.flags = DEVVM_DEVICE_F_PCI | DEVVM_DEVICE_F_RESET;
    d.dev.num_regions = DEVVM_PCI_NUM_REGIONS;
    d.dev.num_irqs = DEVVM_PCI_NUM_IRQS;
    d.regions[0].size = 0x1000;
    d.regions[0].flags = DEVVM_REGION_F_READ | DEVVM_REGION_F_WRITE;
    d.regions[DEVVM_PCI_CONFIG_REGION].size = 256;
    d.regions[DEVVM_PCI_CONFIG_REGION].flags = DEVVM_REGION_F_READ |
                                              DEVVM_REGION_F_WRITE;
    d.irqs[DEVVM_PCI_MSIX_IRQ].flags = DEVVM_IRQ_INFO_F_EVENTFD;
    d.irqs[DEVVM_PCI_MSIX_IRQ].count = 4;
    devvm_desc_encode(area, sizeof(area), &d);
    devvm_shm_set_desc(shm, area, sizeof(area));
}

/* A new generation with @instances in the description, then READY. */
static void generation(uint32_t instances)
{
    struct devvm_shm_layout l;

    devvm_shm_format(shm, shm_size, NCH, DEPTH, DATA_SIZE,
                     devvm_shm_generation(shm) + 1);
    desc_publish(instances);
    devvm_shm_validate(shm, shm_size, &l);
    devvm_channel_attach(&ch, shm, &l, 0, DEVVM_SIDE_DEVICE);
    devvm_channel_attach(&ch2, shm, &l, 2, DEVVM_SIDE_DEVICE);
    devvm_shm_set_state(shm, DEVVM_STATE_READY, 0, "");
}

/* Wait at most @ms for the header's state to become @state. */
static bool wait_state(uint32_t state, unsigned ms)
{
    unsigned i;

    for (i = 0; i < ms / 10; i++) {
        if (devvm_shm_state(shm) == state) {
            return true;
        }
        sleep_ms(10);
    }
    return devvm_shm_state(shm) == state;
}

static void signal_fd(int fd)
{
    uint64_t one = 1;

    if (write(fd, &one, sizeof(one)) < 0) {
        perror("eventfd");
    }
}

/*
 * One request of a control channel, if there is one: control ops and
 * BAR0 reads.
 */
static bool dev_serve(struct devvm_channel *c, int call_fd)
{
    struct devvm_ring *req = &c->ring[DEVVM_RING_REQ];
    struct devvm_ring *cpl = &c->ring[DEVVM_RING_CPL];
    struct devvm_slot s, d;

    if (devvm_ring_pop(req, &s)) {
        return false;
    }
    memset(&d, 0, sizeof(d));
    d.op = DEVVM_OP_READ_DONE;
    d.tag = s.tag;
    switch (s.op) {
    case DEVVM_OP_OPEN:
        opens++;
        if (opens_ignored) {
            /* a device VM too slow for the gateway's --timeout-ms */
            opens_ignored--;
            return true;
        }
        break;
    case DEVVM_OP_READ:
        d.data = s.region == 0 && s.addr == 0 ? DEV_ID : 0;
        if (wrong_tag) {
            d.tag += 1000;
        }
        break;
    case DEVVM_OP_WRITE:
        return true;
    default:
        break;
    }
    devvm_ring_push(cpl, &d);
    if (devvm_ring_kick_needed(cpl)) {
        signal_fd(call_fd);
    }
    return true;
}

/* The device side of channels 0 and 2. */
static void *dev_main(void *opaque)
{
    while (!dev_stop) {
        struct devvm_ring *req = &ch.ring[DEVVM_RING_REQ];
        struct devvm_ring *req2 = &ch2.ring[DEVVM_RING_REQ];
        struct pollfd pfd[2] = {
            { .fd = vm_fds[0], .events = POLLIN },
            { .fd = vm_fds[2], .events = POLLIN },
        };
        uint64_t v;
        int i;

        devvm_shm_heartbeat(shm);
        if (dev_serve(&ch, host_fds[0]) | dev_serve(&ch2, host_fds[2])) {
            continue;
        }
        if (devvm_ring_prepare_sleep(req) == DEVVM_E_AGAIN &&
            devvm_ring_prepare_sleep(req2) == DEVVM_E_AGAIN &&
            poll(pfd, 2, 5) > 0) {
            for (i = 0; i < 2; i++) {
                if (pfd[i].revents && read(pfd[i].fd, &v, sizeof(v)) < 0) {
                    perror("kick");
                }
            }
        }
    }
    return NULL;
}

/*
 * Push an event slot on channel @c (call doorbell @call_fd) and wait
 * (bounded) for its DMA_DONE, if it has one.
 */
static int event_on(struct devvm_channel *c, int call_fd,
                    struct devvm_slot *s, bool completes)
{
    struct devvm_ring *evt = &c->ring[DEVVM_RING_EVT];
    struct devvm_ring *done = &c->ring[DEVVM_RING_EVT_CPL];
    struct devvm_slot d;
    int i;

    devvm_ring_push(evt, s);
    if (devvm_ring_kick_needed(evt)) {
        signal_fd(call_fd);
    }
    if (!completes) {
        return 0;
    }
    for (i = 0; i < 200; i++) {
        if (!devvm_ring_pop(done, &d)) {
            return d.tag == s->tag ? d.status : -1;
        }
        sleep_ms(5);
    }
    return -2;
}

/* An event on instance 0's control channel. */
static int event(struct devvm_slot *s, bool completes)
{
    return event_on(&ch, host_fds[0], s, completes);
}

static int client_connect_ops(struct devvm_client *c,
                              const struct devvm_client_ops *ops,
                              void *opaque)
{
    struct devvm_caps want;
    int fd = devvm_sock_connect(dev_path);

    if (fd < 0) {
        return fd;
    }
    devvm_client_init(c, fd, 2000, ops, opaque);
    devvm_caps_default(&want);
    want.max_msg_fds = DEVVM_MAX_FDS;
    want.max_data_xfer_size = DEVVM_MAX_XFER;
    want.max_dma_maps = DEVVM_MAX_DMA_MAPS;
    want.devvm = 1;
    want.devvm_version = DEVVM_EXT_VERSION;
    want.devvm_ring = 1;
    return devvm_client_negotiate(c, &want);
}

static int client_connect(struct devvm_client *c)
{
    return client_connect_ops(c, NULL, NULL);
}

static uint32_t client_read_id(struct devvm_client *c, int *ret)
{
    uint8_t b[4] = { 0 };

    *ret = devvm_client_region_read(c, 0, 0, b, 4);
    return devvm_ld32(b);
}

/*
 * A client whose DMA_READ/WRITE messages are served by a thread, which
 * refuses them: its memory may have been shrunk under its own mapping.
 */
struct refusing_client {
    struct devvm_client c;
    pthread_t tid;
    volatile int stop;
    volatile unsigned refused;
};

static int refuse_dma_read(void *opaque, uint64_t addr, void *buf,
                           uint64_t len)
{
    ((struct refusing_client *)opaque)->refused++;
    return -EFAULT;
}

static int refuse_dma_write(void *opaque, uint64_t addr, const void *buf,
                            uint64_t len)
{
    ((struct refusing_client *)opaque)->refused++;
    return -EFAULT;
}

static const struct devvm_client_ops refusing_ops = {
    .dma_read = refuse_dma_read,
    .dma_write = refuse_dma_write,
};

static void *refusing_main(void *opaque)
{
    struct refusing_client *rc = opaque;

    while (!rc->stop) {
        devvm_client_poll(&rc->c, 20);
    }
    return NULL;
}

/* A DMA event of 16 bytes at @addr on instance 1's channel: its status. */
static int dma_event2(int write, uint32_t tag, uint64_t addr)
{
    struct devvm_slot s;

    memset(&s, 0, sizeof(s));
    s.op = write ? DEVVM_OP_DMA_WRITE : DEVVM_OP_DMA_READ;
    s.tag = tag;
    s.addr = addr;
    s.len = 16;
    return event_on(&ch2, host_fds[2], &s, true);
}

/*
 * Whatever a client does with the fds it passes in DMA_MAP, the gateway,
 * which maps them to do the device's DMA, must not die of SIGBUS: too
 * short at DMA_MAP, shrunk afterwards, or not a file at all.  Another
 * client (@cl, whose RAM is @ram) keeps working throughout.
 */
static void check_hostile_maps(struct devvm_client *cl, uint8_t *ram)
{
    static struct refusing_client rc;
    struct devvm_dma_map map = {
        .argsz = 32, .flags = DEVVM_DMA_F_READ | DEVVM_DMA_F_WRITE,
        .addr = 0x100000, .size = 0x100000,
    };
    struct devvm_slot s;
    unsigned i, opened = opens;
    int fd, ret, pfd[2];
    uint32_t id;

    TAP_EQ(client_connect_ops(&rc.c, &refusing_ops, &rc), 0,
           "a second client negotiates");
    for (i = 0; i < 200 && opens == opened; i++) {
        sleep_ms(10);
    }
    TAP_EQ(opens, opened + 1, "the gateway opened instance 1 for it");

    fd = memfd_create("short", MFD_CLOEXEC);
    ftruncate(fd, 0x1000);
    ret = devvm_client_dma_map(&rc.c, &map, fd);
    close(fd);
    TAP_CHECK(ret == DEVVM_E_PEER && rc.c.peer_errno == EINVAL,
              "DMA_MAP of a 4 KiB memfd as 1 MiB: refused with EINVAL (%s, "
              "errno %d)", devvm_strerror(ret), rc.c.peer_errno);
    fd = sealed_memfd("short-sealed", 0x1000);
    ret = devvm_client_dma_map(&rc.c, &map, fd);
    close(fd);
    TAP_CHECK(ret == DEVVM_E_PEER && rc.c.peer_errno == EINVAL,
              "... and of a sealed one too");
    TAP_CHECK(dma_event2(1, 20, 0x110000) == EFAULT && gateway_alive(),
              "a device DMA at +64 KiB of the refused range: EFAULT, the "
              "gateway lives");

    fd = memfd_create("shrinks", MFD_CLOEXEC);
    ftruncate(fd, 0x100000);
    TAP_EQ(devvm_client_dma_map(&rc.c, &map, fd), 0,
           "DMA_MAP of an unsealed 1 MiB memfd is taken");
    ftruncate(fd, 0x1000);
    close(fd);
    pthread_create(&rc.tid, NULL, refusing_main, &rc);
    ret = dma_event2(1, 21, 0x110000);
    TAP_CHECK(ret == EFAULT && gateway_alive(),
              "the client shrank it to 4 KiB: a DMA_WRITE at +64 KiB is "
              "EFAULT (status %d), the gateway lives", ret);
    ret = dma_event2(0, 22, 0x1ffff0);
    TAP_CHECK(ret == EFAULT && gateway_alive(),
              "... a DMA_READ of its last 16 bytes too (status %d)", ret);
    TAP_EQ(rc.refused, 2, "both went to the client as DMA_WRITE/DMA_READ "
           "messages (an unsealed fd is not mapped), and it refused them");
    rc.stop = 1;
    pthread_join(rc.tid, NULL);

    if (pipe2(pfd, O_CLOEXEC) == 0) {
        map.addr = 0x300000;
        map.size = 0x1000;
        ret = devvm_client_dma_map(&rc.c, &map, pfd[0]);
        close(pfd[0]);
        close(pfd[1]);
    } else {
        ret = -errno;
    }
    TAP_CHECK(ret == 0 && gateway_alive(),
              "DMA_MAP of a pipe, which cannot be mapped: taken, to be "
              "reached by message");

    id = client_read_id(cl, &ret);
    memset(&s, 0, sizeof(s));
    memset(ch.data, 0xcd, 16);
    s.op = DEVVM_OP_DMA_WRITE;
    s.tag = 23;
    s.addr = CLIENT_RAM + 0x200;
    s.len = 16;
    TAP_CHECK(!ret && id == DEV_ID && event(&s, true) == 0 &&
              ram[0x200] == 0xcd && ram[0x20f] == 0xcd,
              "the first client reads and gets its DMA all along");
    close(rc.c.fd);
}

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait at most @ms for EOF on @fd; true when the peer closed it. */
static bool wait_eof(int fd, int ms)
{
    struct pollfd pfd = { .fd = fd, .events = POLLIN };
    char b;

    return poll(&pfd, 1, ms) == 1 && read(fd, &b, 1) == 0;
}

/*
 * Connections that never negotiate cannot hold the device's instances:
 * the gateway drops them after --handshake-ms.  Meanwhile a client that
 * finds every instance taken is told so (EUSERS); afterwards it gets in.
 * @cl holds instance 0; instance 1 is free.
 */
static void check_idle_connections(struct devvm_client *cl)
{
    struct devvm_client late;
    int idle, ret, i;
    int64_t t0, waited;
    bool dropped;
    uint32_t id;

    /* instance 1's last client left: its thread ends within a moment */
    sleep_ms(200);
    idle = devvm_sock_connect(dev_path);
    t0 = now_ms();
    ret = client_connect(&late);
    TAP_CHECK(ret == DEVVM_E_PEER && late.peer_errno == EUSERS,
              "an idle connection holds the last instance: a client is "
              "refused with EUSERS (%s, errno %d)", devvm_strerror(ret),
              late.peer_errno);
    close(late.fd);
    dropped = wait_eof(idle, 4 * HANDSHAKE_MS);
    waited = now_ms() - t0;
    TAP_CHECK(dropped && waited >= HANDSHAKE_MS - 50,
              "the idle connection is dropped after %lld ms (--handshake-ms "
              "%d)", (long long)waited, HANDSHAKE_MS);
    close(idle);
    for (i = 0; i < 200; i++) {
        ret = client_connect(&late);
        if (ret == 0) {
            break;
        }
        close(late.fd);
        sleep_ms(10);
    }
    TAP_EQ(ret, 0, "then a client gets the instance");
    id = client_read_id(&late, &ret);
    TAP_CHECK(!ret && id == DEV_ID, "... and reads the device");
    close(late.fd);
    id = client_read_id(cl, &ret);
    TAP_CHECK(!ret && id == DEV_ID, "the first client was never disturbed");
}

/* A stranger (uid nobody) cannot even reach the client socket. */
static void check_stranger(void)
{
    pid_t pid;
    int status;

    if (geteuid() != 0) {
        printf("ok %u - # SKIP a stranger's connection: needs root to "
               "become another uid\n", ++tap_count);
        return;
    }
    pid = fork();
    if (pid == 0) {
        int fd;

        if (setgid(65534) || setuid(65534)) {
            _exit(2);
        }
        fd = devvm_sock_connect(dev_path);
        _exit(fd == -EACCES ? 0 : 1);
    }
    waitpid(pid, &status, 0);
    TAP_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "uid 65534 gets EACCES on the 0600 socket in the 0700 "
              "directory");
}

int main(int argc, char **argv)
{
    struct devvm_client cl;
    struct devvm_dma_map map = {
        .flags = DEVVM_DMA_F_READ | DEVVM_DMA_F_WRITE,
        .addr = CLIENT_RAM, .size = RAM_SIZE,
    };
    struct devvm_slot s;
    uint8_t *ram;
    int ret, ramfd, i, fd;
    uint32_t id;
    bool ok;
    char reason[DEVVM_MAX_REASON];
    struct stat st;

    if (argc != 2) {
        fprintf(stderr, "usage: gw-hostile GATEWAY\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    snprintf(dir, sizeof(dir), "/tmp/gw-hostile-XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(gwdir, sizeof(gwdir), "%s/gw", dir);
    snprintf(ivs_path, sizeof(ivs_path), "%s/ivshmem.sock", gwdir);
    snprintf(dev_path, sizeof(dev_path), "%s/device.sock", gwdir);

    /* a directory others can enter is refused */
    mkdir(gwdir, 0755);
    chmod(gwdir, 0755);
    gw_pid = fork();
    if (gw_pid == 0) {
        execl(argv[1], argv[1], "--dir", gwdir, (char *)NULL);
        _exit(127);
    }
    waitpid(gw_pid, &ret, 0);
    gw_pid = 0;
    TAP_CHECK(WIFEXITED(ret) && WEXITSTATUS(ret) == 1,
              "the gateway refuses a directory with mode 0755");
    rmdir(gwdir);

    /* so is a symlink, even to a private directory of ours */
    {
        char target[96];

        snprintf(target, sizeof(target), "%s/private", dir);
        mkdir(target, 0700);
        symlink(target, gwdir);
        gw_pid = fork();
        if (gw_pid == 0) {
            execl(argv[1], argv[1], "--dir", gwdir, (char *)NULL);
            _exit(127);
        }
        for (i = 0; i < 200 && waitpid(gw_pid, &ret, WNOHANG) == 0; i++) {
            sleep_ms(10);
        }
        if (i == 200) {
            stop_gateway();     /* it took the directory: kill it */
            ret = -1;
        }
        gw_pid = 0;
        snprintf(target, sizeof(target), "%s/private/ivshmem.sock", dir);
        TAP_CHECK(ret != -1 && WIFEXITED(ret) && WEXITSTATUS(ret) == 1 &&
                  access(target, F_OK) != 0,
                  "the gateway refuses a symlink to a 0700 directory");
        unlink(target);
        unlink(gwdir);
        snprintf(target, sizeof(target), "%s/private", dir);
        rmdir(target);
    }

    gw_pid = fork();
    if (gw_pid == 0) {
        /* its "ready" line is not TAP: to stderr with its other messages */
        dup2(2, 1);
        execl(argv[1], argv[1], "--dir", gwdir, "--channels", "4",
              "--timeout-ms", "300", "--heartbeat-ms", "60000",
              "--handshake-ms", HANDSHAKE_MS_STR, (char *)NULL);
        _exit(127);
    }
    for (i = 0; i < 200 && access(ivs_path, F_OK); i++) {
        sleep_ms(10);
    }
    stat(gwdir, &st);
    TAP_CHECK(S_ISDIR(st.st_mode) && (st.st_mode & 0777) == 0700,
              "the gateway made its directory 0700");
    stat(ivs_path, &st);
    TAP_CHECK((st.st_mode & 0777) == 0600, "ivshmem.sock is 0600");
    ivs_setup();

    fd = devvm_sock_connect(ivs_path);
    TAP_CHECK(fd >= 0 && ivs_recv(fd, (int64_t[1]){ 0 }, (int[1]){ -1 }),
              "a second device VM is refused while one is connected");
    if (fd >= 0) {
        close(fd);
    }

    /* 1. a header that is not one, marked READY */
    memset(shm, 0xa5, 4096);
    devvm_shm_set_state(shm, DEVVM_STATE_READY, 0, "");
    TAP_CHECK(wait_state(DEVVM_STATE_FAILED, 1000),
              "a garbage header: the gateway marks the device FAILED");
    devvm_shm_reason(shm, reason, sizeof(reason));
    printf("# reason: %s\n", reason);
    TAP_CHECK(access(dev_path, F_OK) && gateway_alive(),
              "... it keeps running and offers no device");

    /* 2. an impossible description */
    generation(99);
    TAP_CHECK(wait_state(DEVVM_STATE_FAILED, 1000) &&
              access(dev_path, F_OK) && gateway_alive(),
              "99 instances in 4 channels: FAILED, no device");

    /* 3. a sound device */
    generation(2);
    for (i = 0; i < 200 && access(dev_path, F_OK); i++) {
        sleep_ms(10);
    }
    stat(dev_path, &st);
    TAP_CHECK(!access(dev_path, F_OK) && (st.st_mode & 0777) == 0600,
              "a sound device in generation %u: device.sock, mode 0600",
              devvm_shm_generation(shm));
    check_stranger();
    pthread_create(&dev_tid, NULL, dev_main, NULL);

    opens_ignored = 1;
    ret = client_connect(&cl);
    TAP_EQ(ret, 0, "a client negotiates");
    for (i = 0; i < 200 && opens < 2; i++) {
        sleep_ms(10);
    }
    TAP_EQ(opens, 2, "the device did not answer the gateway's first OPEN of "
           "instance 0 in time: the gateway opened it again");
    id = client_read_id(&cl, &ret);
    TAP_CHECK(!ret && id == DEV_ID, "a BAR0 read on the socket travels the "
              "control channel: 0x%x", id);

    ramfd = sealed_memfd("gw-hostile-ram", RAM_SIZE);
    ram = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, ramfd, 0);
    memset(ram, 0x5a, RAM_SIZE);
    map.argsz = 32;
    TAP_EQ(devvm_client_dma_map(&cl, &map, ramfd), 0,
           "the client maps 64 KiB of its RAM for DMA");

    /* 4. events, good and bad */
    memset(ch.data, 0xab, 64);
    memset(&s, 0, sizeof(s));
    s.op = DEVVM_OP_DMA_WRITE;
    s.tag = 1;
    s.addr = CLIENT_RAM + 0x100;
    s.len = 16;
    TAP_EQ(event(&s, true), 0, "DMA_WRITE inside the map: done");
    TAP_CHECK(ram[0x100] == 0xab && ram[0x10f] == 0xab &&
              ram[0xff] == 0x5a && ram[0x110] == 0x5a,
              "... exactly those 16 bytes changed");
    s.tag = 2;
    s.addr = CLIENT_RAM - 8;
    TAP_EQ(event(&s, true), EFAULT,
           "DMA_WRITE straddling the map's start: EFAULT");
    s.tag = 3;
    s.addr = 0x40000000;
    TAP_EQ(event(&s, true), EFAULT, "DMA_WRITE outside any map: EFAULT");
    ok = true;
    for (i = 0; i < RAM_SIZE; i++) {
        ok &= ram[i] == (i >= 0x100 && i < 0x110 ? 0xab : 0x5a);
    }
    TAP_CHECK(ok, "... and the client's memory is untouched by both");
    s.op = DEVVM_OP_DMA_READ;
    s.tag = 4;
    s.addr = CLIENT_RAM;
    s.aux = DATA_SIZE - 8;
    TAP_EQ(event(&s, true), EINVAL,
           "DMA_READ past the end of the data area: EINVAL");
    s.aux = 0;
    s.len = 0;
    s.tag = 5;
    TAP_EQ(event(&s, true), EINVAL, "DMA_READ of 0 bytes: EINVAL");
    memset(&s, 0, sizeof(s));
    s.op = DEVVM_OP_IRQ;
    s.region = 7;
    s.data = DEVVM_IRQ_PULSE;
    event(&s, false);
    s.region = DEVVM_PCI_MSIX_IRQ;
    s.addr = 999;
    event(&s, false);
    s.addr = 0;
    s.data = 77;
    event(&s, false);
    for (i = 0; i < 30; i++) {
        memset(&s, 0, sizeof(s));
        s.op = DEVVM_OP_LOG;
        s.flags = i < 29 ? DEVVM_SLOT_F_MORE : 0;
        s.size = DEVVM_LOG_TEXT_MAX;
        memset(s.text, i ? 0x07 : 'A', sizeof(s.text));
        event(&s, false);
    }
    id = client_read_id(&cl, &ret);
    TAP_CHECK(!ret && id == DEV_ID && gateway_alive(),
              "IRQs out of range, a bad action, a LOG chain of 1440 bell "
              "characters: ignored or escaped and cut, the device still "
              "answers");

    /* 4b. hostile fds in DMA_MAP */
    check_hostile_maps(&cl, ram);

    /* 4c. idle connections */
    check_idle_connections(&cl);

    /* 5. an op that does not exist on the event ring */
    memset(&s, 0, sizeof(s));
    s.op = 99;
    event(&s, false);
    sleep_ms(100);
    id = client_read_id(&cl, &ret);
    TAP_CHECK(ret && gateway_alive(),
              "op 99 on the event ring: the channel is dropped, the read "
              "fails (%s, errno %d)", devvm_strerror(ret), cl.peer_errno);

    /* 6. the next generation is taken back */
    dev_stop = 1;
    pthread_join(dev_tid, NULL);
    dev_stop = 0;
    opens = 0;
    generation(2);
    pthread_create(&dev_tid, NULL, dev_main, NULL);
    for (i = 0; i < 200 && !opens; i++) {
        sleep_ms(10);
    }
    id = client_read_id(&cl, &ret);
    TAP_CHECK(opens == 1 && !ret && id == DEV_ID,
              "generation %u: reopened for the same client, reads work",
              devvm_shm_generation(shm));

    /* 7. a completion with a wrong tag */
    wrong_tag = 1;
    id = client_read_id(&cl, &ret);
    TAP_CHECK(ret && gateway_alive(),
              "a READ_DONE with a wrong tag: refused (%s, errno %d)",
              devvm_strerror(ret), cl.peer_errno);

    /* 8. the device VM goes away */
    dev_stop = 1;
    pthread_join(dev_tid, NULL);
    close(ivs_fd);
    TAP_CHECK(wait_state(DEVVM_STATE_FAILED, 1000),
              "the device VM disconnects: FAILED on its behalf");
    devvm_shm_reason(shm, reason, sizeof(reason));
    TAP_CHECK(!strcmp(reason, "device VM exited"), "reason: %s", reason);
    TAP_CHECK(gateway_alive(), "the gateway is still running");

    close(cl.fd);
    kill(gw_pid, SIGTERM);
    waitpid(gw_pid, &ret, 0);
    gw_pid = 0;
    TAP_CHECK(WIFEXITED(ret) && WEXITSTATUS(ret) == 0 &&
              access(dev_path, F_OK) && access(ivs_path, F_OK),
              "SIGTERM: exit 0, both sockets removed");
    rmdir(gwdir);
    rmdir(dir);
    stop_gateway();
    return tap_done();
}
