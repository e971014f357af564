/*
 * devvm-ring-bench: round-trip latency of one request and its reply
 * between two host threads pinned to different CPUs.
 *
 *   ring          client pushes a READ on REQ and busy-polls CPL for the
 *                 READ_DONE; the device thread busy-polls REQ and replies
 *   socket        the same exchange over a UNIX SOCK_STREAM socketpair:
 *                 a 16-byte header and 16 bytes of payload each way,
 *                 blocking read and write
 *   ring-eventfd  the ring, but both ends sleep on eventfd doorbells
 *                 (prepare_sleep / kick_needed) when there is nothing to do
 *   lib-ring      a 4-byte BAR read through libdevvm's own ends of a ring
 *                 channel: devvm_ring_client_read() against
 *                 devvm_server_ring_serve() polling on the device thread
 *   lib-socket    the same read as a vfio-user REGION_READ through
 *                 libdevvm's client and server roles on a socketpair
 *   cacheline     the physical floor of "ring": one cache line bounced
 *                 between the two CPUs (the client writes a sequence
 *                 number, the device thread echoes it on another line)
 *   wakeup        the physical floor of "ring-eventfd" and "socket": a
 *                 thread woken by an eventfd, each way (the device thread
 *                 sleeps in read() on one eventfd, answers on another)
 *
 * Every sample is taken with clock_gettime(CLOCK_MONOTONIC) around one
 * round trip, after a warm-up.  This is a benchmark, not a test: it is
 * run by hand (docs/devvm/benchmarks.rst).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
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

#define BENCH_DEPTH     64u
#define BENCH_DATA      4096u
#define STOP_TAG        UINT32_MAX
#define MSG_SIZE        32u     /* 16-byte header + 16-byte payload */

enum method {
    M_RING,
    M_SOCKET,
    M_RING_EVENTFD,
    M_LIB_RING,
    M_LIB_SOCKET,
    M_CACHELINE,
    M_WAKEUP,
    M_COUNT,
};

static const char *const method_names[M_COUNT] = {
    [M_RING] = "ring",
    [M_SOCKET] = "socket",
    [M_RING_EVENTFD] = "ring-eventfd",
    [M_LIB_RING] = "lib-ring",
    [M_LIB_SOCKET] = "lib-socket",
    [M_CACHELINE] = "cacheline",
    [M_WAKEUP] = "wakeup",
};

struct opts {
    int client_cpu;
    int device_cpu;
    uint32_t iters[M_COUNT];
    uint32_t warmup;
    int enabled[M_COUNT];
    int single_cpu;             /* only one CPU: yield while polling */
};

static struct opts opts = {
    .client_cpu = 0,
    .device_cpu = 1,
    .iters = {
        [M_RING] = 200000,
        [M_SOCKET] = 50000,
        [M_RING_EVENTFD] = 50000,
        [M_LIB_RING] = 200000,
        [M_LIB_SOCKET] = 50000,
        [M_CACHELINE] = 200000,
        [M_WAKEUP] = 50000,
    },
    .warmup = 10000,
    .enabled = { 1, 1, 1, 1, 1, 1, 1 },
};

/* ---- helpers ----------------------------------------------------------- */

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + ts.tv_nsec;
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2),
                                                     noreturn));

static void die(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "devvm-ring-bench: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    exit(1);
}

static void cpu_relax(void)
{
    if (opts.single_cpu) {
        sched_yield();
        return;
    }
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
}

/* Pin the calling thread. */
static void pin_self(int cpu)
{
    cpu_set_t set;

    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof(set), &set) < 0) {
        die("sched_setaffinity(CPU %d): %s", cpu, strerror(errno));
    }
}

static void efd_signal(int fd)
{
    uint64_t one = 1;

    if (write(fd, &one, sizeof(one)) != sizeof(one)) {
        die("eventfd write: %s", strerror(errno));
    }
}

static void efd_wait(int fd)
{
    uint64_t v;

    while (read(fd, &v, sizeof(v)) != sizeof(v)) {
        if (errno != EINTR) {
            die("eventfd read: %s", strerror(errno));
        }
    }
}

static void read_full(int fd, void *buf, size_t len)
{
    uint8_t *p = buf;

    while (len) {
        ssize_t n = read(fd, p, len);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            die("socket read: %s", n ? strerror(errno) : "closed");
        }
        p += n;
        len -= n;
    }
}

/* Returns 0, or -1 when the peer closed before sending anything. */
static int read_msg(int fd, uint8_t *buf)
{
    size_t got = 0;

    while (got < MSG_SIZE) {
        ssize_t n = read(fd, buf + got, MSG_SIZE - got);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n == 0 && got == 0) {
            return -1;
        }
        if (n <= 0) {
            die("socket read: %s", n ? strerror(errno) : "closed");
        }
        got += n;
    }
    return 0;
}

static void write_full(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;

    while (len) {
        ssize_t n = write(fd, p, len);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            die("socket write: %s", strerror(errno));
        }
        p += n;
        len -= n;
    }
}

static void put_le(uint8_t *p, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++) {
        p[i] = v >> (8 * i);
    }
}

static uint64_t get_le(const uint8_t *p, int bytes)
{
    uint64_t v = 0;

    for (int i = bytes - 1; i >= 0; i--) {
        v = v << 8 | p[i];
    }
    return v;
}

static uint64_t reply_data(uint64_t addr)
{
    return addr ^ 0xa5a5a5a5a5a5a5a5ull;
}

/* ---- ring methods ------------------------------------------------------ */

struct ring_bench {
    uint8_t *shm;
    struct devvm_channel cli;
    struct devvm_channel dev;
    int sleep;
    int kick_fd;                /* client -> device */
    int call_fd;                /* device -> client */
};

/* Wait for the next slot on @r: spin, or sleep on @fd. */
static void ring_wait_pop(struct ring_bench *rb, struct devvm_ring *r, int fd,
                          struct devvm_slot *out)
{
    int ret;

    for (;;) {
        ret = devvm_ring_pop(r, out);
        if (ret == 0) {
            return;
        }
        if (ret != DEVVM_E_AGAIN) {
            die("ring pop: %d", ret);
        }
        if (!rb->sleep) {
            cpu_relax();
        } else if (devvm_ring_prepare_sleep(r) == DEVVM_E_AGAIN) {
            efd_wait(fd);
            devvm_ring_poll_mode(r);
        }
    }
}

static void ring_push(struct ring_bench *rb, struct devvm_ring *r, int fd,
                      const struct devvm_slot *s)
{
    int ret;

    while ((ret = devvm_ring_push(r, s)) == DEVVM_E_AGAIN) {
        cpu_relax();
    }
    if (ret < 0) {
        die("ring push: %d", ret);
    }
    if (rb->sleep && devvm_ring_kick_needed(r)) {
        efd_signal(fd);
    }
}

static void *ring_device(void *opaque)
{
    struct ring_bench *rb = opaque;
    struct devvm_ring *req = &rb->dev.ring[DEVVM_RING_REQ];
    struct devvm_ring *cpl = &rb->dev.ring[DEVVM_RING_CPL];
    struct devvm_slot in, out;

    pin_self(opts.device_cpu);
    memset(&out, 0, sizeof(out));
    out.op = DEVVM_OP_READ_DONE;
    for (;;) {
        ring_wait_pop(rb, req, rb->kick_fd, &in);
        if (in.tag == STOP_TAG) {
            return NULL;
        }
        out.tag = in.tag;
        out.data = reply_data(in.addr);
        ring_push(rb, cpl, rb->call_fd, &out);
    }
}

static void ring_run(int sleep, uint64_t *samples, uint32_t n)
{
    uint64_t size = devvm_shm_size(1, BENCH_DEPTH, BENCH_DATA);
    struct devvm_shm_layout l;
    struct ring_bench rb;
    struct devvm_ring *req, *cpl;
    struct devvm_slot s, o;
    pthread_t tid;
    uint32_t i;

    memset(&rb, 0, sizeof(rb));
    rb.sleep = sleep;
    rb.shm = aligned_alloc(4096, size);
    if (!rb.shm) {
        die("out of memory");
    }
    if (devvm_shm_format(rb.shm, size, 1, BENCH_DEPTH, BENCH_DATA, 1) < 0 ||
        devvm_shm_validate(rb.shm, size, &l) < 0 ||
        devvm_channel_attach(&rb.cli, rb.shm, &l, 0, DEVVM_SIDE_CLIENT) < 0 ||
        devvm_channel_attach(&rb.dev, rb.shm, &l, 0, DEVVM_SIDE_DEVICE) < 0) {
        die("cannot set up the shared memory");
    }
    devvm_shm_set_state(rb.shm, DEVVM_STATE_READY, 0, NULL);
    rb.kick_fd = eventfd(0, EFD_CLOEXEC);
    rb.call_fd = eventfd(0, EFD_CLOEXEC);
    if (rb.kick_fd < 0 || rb.call_fd < 0) {
        die("eventfd: %s", strerror(errno));
    }
    if (pthread_create(&tid, NULL, ring_device, &rb)) {
        die("pthread_create failed");
    }
    req = &rb.cli.ring[DEVVM_RING_REQ];
    cpl = &rb.cli.ring[DEVVM_RING_CPL];

    memset(&s, 0, sizeof(s));
    s.op = DEVVM_OP_READ;
    s.size = 4;
    for (i = 0; i < opts.warmup + n; i++) {
        uint64_t t0, t1;

        s.tag = i;
        s.addr = 0x1000 + (uint64_t)i * 4;
        t0 = now_ns();
        ring_push(&rb, req, rb.kick_fd, &s);
        ring_wait_pop(&rb, cpl, rb.call_fd, &o);
        t1 = now_ns();
        if (o.tag != i || o.data != reply_data(s.addr)) {
            die("ring: wrong reply %u to request %u", o.tag, i);
        }
        if (i >= opts.warmup) {
            samples[i - opts.warmup] = t1 - t0;
        }
    }
    s.tag = STOP_TAG;
    ring_push(&rb, req, rb.kick_fd, &s);
    pthread_join(tid, NULL);
    close(rb.kick_fd);
    close(rb.call_fd);
    free(rb.shm);
}

/* ---- socket method ----------------------------------------------------- */

static void *socket_device(void *opaque)
{
    int fd = *(int *)opaque;
    uint8_t msg[MSG_SIZE];

    pin_self(opts.device_cpu);
    while (read_msg(fd, msg) == 0) {
        uint64_t addr = get_le(msg + 16, 8);

        /* reply: same id and command, reply flag, 8 bytes of data */
        put_le(msg + 8, DEVVM_HDR_F_REPLY, 4);
        put_le(msg + 16, reply_data(addr), 8);
        put_le(msg + 24, 0, 8);
        write_full(fd, msg, MSG_SIZE);
    }
    return NULL;
}

static void socket_run(uint64_t *samples, uint32_t n)
{
    uint8_t msg[MSG_SIZE], rep[MSG_SIZE];
    pthread_t tid;
    int sv[2];
    uint32_t i;

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        die("socketpair: %s", strerror(errno));
    }
    if (pthread_create(&tid, NULL, socket_device, &sv[1])) {
        die("pthread_create failed");
    }
    for (i = 0; i < opts.warmup + n; i++) {
        uint64_t t0, t1, addr = 0x1000 + (uint64_t)i * 4;

        /* vfio-user header: id, cmd, size, flags, error */
        put_le(msg, i & 0xffff, 2);
        put_le(msg + 2, DEVVM_CMD_REGION_READ, 2);
        put_le(msg + 4, MSG_SIZE, 4);
        put_le(msg + 8, DEVVM_HDR_F_REQUEST, 4);
        put_le(msg + 12, 0, 4);
        /* payload: offset, region, count */
        put_le(msg + 16, addr, 8);
        put_le(msg + 24, DEVVM_PCI_BAR0_REGION, 4);
        put_le(msg + 28, 4, 4);
        t0 = now_ns();
        write_full(sv[0], msg, MSG_SIZE);
        read_full(sv[0], rep, MSG_SIZE);
        t1 = now_ns();
        if (get_le(rep, 2) != (i & 0xffff) ||
            get_le(rep + 16, 8) != reply_data(addr)) {
            die("socket: wrong reply to request %u", i);
        }
        if (i >= opts.warmup) {
            samples[i - opts.warmup] = t1 - t0;
        }
    }
    close(sv[0]);
    pthread_join(tid, NULL);
    close(sv[1]);
}

/* ---- the physical floors ------------------------------------------------- */

/* two cache lines: the client's sequence number, the device's echo */
struct floor_lines {
    _Alignas(64) volatile uint64_t ping;
    _Alignas(64) volatile uint64_t pong;
    int efd[2];                 /* wakeup: to the device, to the client */
};

static void *cacheline_device(void *opaque)
{
    struct floor_lines *l = opaque;
    uint64_t seen = 0;

    pin_self(opts.device_cpu);
    for (;;) {
        uint64_t v = __atomic_load_n(&l->ping, __ATOMIC_ACQUIRE);

        if (v == seen) {
            cpu_relax();
            continue;
        }
        __atomic_store_n(&l->pong, v, __ATOMIC_RELEASE);
        if (v == UINT64_MAX) {
            return NULL;
        }
        seen = v;
    }
}

static void cacheline_run(uint64_t *samples, uint32_t n)
{
    struct floor_lines *l = aligned_alloc(64, sizeof(*l));
    pthread_t tid;
    uint32_t i;

    memset(l, 0, sizeof(*l));
    if (pthread_create(&tid, NULL, cacheline_device, l)) {
        die("pthread_create failed");
    }
    for (i = 0; i < opts.warmup + n; i++) {
        uint64_t t0 = now_ns(), t1;

        __atomic_store_n(&l->ping, i + 1, __ATOMIC_RELEASE);
        while (__atomic_load_n(&l->pong, __ATOMIC_ACQUIRE) != i + 1) {
            cpu_relax();
        }
        t1 = now_ns();
        if (i >= opts.warmup) {
            samples[i - opts.warmup] = t1 - t0;
        }
    }
    __atomic_store_n(&l->ping, UINT64_MAX, __ATOMIC_RELEASE);
    pthread_join(tid, NULL);
    free(l);
}

static void *wakeup_device(void *opaque)
{
    struct floor_lines *l = opaque;
    uint64_t v;

    pin_self(opts.device_cpu);
    while (read(l->efd[0], &v, sizeof(v)) == sizeof(v) && v != UINT64_MAX - 1) {
        efd_signal(l->efd[1]);
    }
    return NULL;
}

static void wakeup_run(uint64_t *samples, uint32_t n)
{
    struct floor_lines l = { .efd = { eventfd(0, EFD_CLOEXEC),
                                      eventfd(0, EFD_CLOEXEC) } };
    uint64_t stop = UINT64_MAX - 1;
    pthread_t tid;
    uint32_t i;

    if (l.efd[0] < 0 || l.efd[1] < 0) {
        die("eventfd: %s", strerror(errno));
    }
    if (pthread_create(&tid, NULL, wakeup_device, &l)) {
        die("pthread_create failed");
    }
    for (i = 0; i < opts.warmup + n; i++) {
        uint64_t t0 = now_ns(), t1;

        efd_signal(l.efd[0]);
        efd_wait(l.efd[1]);
        t1 = now_ns();
        if (i >= opts.warmup) {
            samples[i - opts.warmup] = t1 - t0;
        }
    }
    if (write(l.efd[0], &stop, sizeof(stop)) != sizeof(stop)) {
        die("eventfd write: %s", strerror(errno));
    }
    pthread_join(tid, NULL);
    close(l.efd[0]);
    close(l.efd[1]);
}

/* ---- libdevvm's own ends ------------------------------------------------ */

static int lib_device_info(void *opaque, struct devvm_device_info *info)
{
    info->flags = DEVVM_DEVICE_F_PCI;
    info->num_regions = DEVVM_PCI_NUM_REGIONS;
    info->num_irqs = 0;
    return 0;
}

static int lib_region_info(void *opaque, uint32_t index,
                           struct devvm_region_info *r, int *fd)
{
    memset(r, 0, sizeof(*r));
    if (index == DEVVM_PCI_BAR0_REGION) {
        r->size = 1 << 20;
        r->flags = DEVVM_REGION_F_READ | DEVVM_REGION_F_WRITE;
    }
    return 0;
}

static int lib_irq_info(void *opaque, uint32_t index,
                        struct devvm_irq_info *q)
{
    return 0;
}

static int lib_read(void *opaque, uint32_t region, uint64_t off, void *buf,
                    uint32_t count)
{
    uint64_t v = reply_data(off);

    memcpy(buf, &v, count);
    return 0;
}

static int lib_write(void *opaque, uint32_t region, uint64_t off,
                     const void *buf, uint32_t count)
{
    return 0;
}

static const struct devvm_server_ops lib_ops = {
    .device_info = lib_device_info,
    .region_info = lib_region_info,
    .irq_info = lib_irq_info,
    .region_read = lib_read,
    .region_write = lib_write,
};

struct lib_ring {
    struct devvm_server_conn conn;
    struct devvm_channel ch;
    int call_fd;
    int stop;
};

static void *lib_ring_device(void *opaque)
{
    struct lib_ring *lr = opaque;

    pin_self(opts.device_cpu);
    while (!__atomic_load_n(&lr->stop, __ATOMIC_ACQUIRE)) {
        int ret = devvm_server_ring_serve(&lr->conn, &lr->ch, lr->call_fd,
                                          64);

        if (ret < 0) {
            die("lib-ring: device end: %s", devvm_strerror(ret));
        }
        if (ret == 0) {
            cpu_relax();
        }
    }
    return NULL;
}

static void lib_ring_run(uint64_t *samples, uint32_t n)
{
    uint64_t size = devvm_shm_size(1, BENCH_DEPTH, BENCH_DATA);
    struct devvm_ring_attach a = {
        .argsz = 32, .channel = 0, .depth = BENCH_DEPTH, .shm_size = size,
        .generation = 1,
    };
    struct devvm_shm_layout l;
    struct devvm_ring_client rc;
    struct lib_ring lr;
    int fds[DEVVM_ATTACH_FDS], memfd, kick_fd;
    pthread_t tid;
    void *shm;
    uint32_t i;

    memset(&lr, 0, sizeof(lr));
    memfd = memfd_create("bench", MFD_CLOEXEC);
    kick_fd = eventfd(0, EFD_CLOEXEC);
    lr.call_fd = eventfd(0, EFD_CLOEXEC);
    if (memfd < 0 || kick_fd < 0 || lr.call_fd < 0 ||
        ftruncate(memfd, size) < 0) {
        die("lib-ring: %s", strerror(errno));
    }
    shm = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
    if (shm == MAP_FAILED ||
        devvm_shm_format(shm, size, 1, BENCH_DEPTH, BENCH_DATA, 1) < 0 ||
        devvm_shm_validate(shm, size, &l) < 0 ||
        devvm_channel_attach(&lr.ch, shm, &l, 0, DEVVM_SIDE_DEVICE) < 0 ||
        devvm_server_conn_init(&lr.conn, -1, &lib_ops, NULL, NULL) < 0) {
        die("lib-ring: cannot set up the device end");
    }
    devvm_shm_set_state(shm, DEVVM_STATE_READY, 0, NULL);
    fds[0] = memfd;
    fds[1] = dup(kick_fd);
    fds[2] = dup(lr.call_fd);
    if (devvm_ring_client_open(&rc, &a, fds) < 0) {
        die("lib-ring: cannot open the client end");
    }
    if (pthread_create(&tid, NULL, lib_ring_device, &lr)) {
        die("pthread_create failed");
    }
    for (i = 0; i < opts.warmup + n; i++) {
        uint64_t t0, t1, v, addr = (uint64_t)(i & 0xffff) * 4;
        int ret;

        t0 = now_ns();
        ret = devvm_ring_client_read(&rc, DEVVM_PCI_BAR0_REGION, addr, 4, &v,
                                     5000);
        t1 = now_ns();
        if (ret || v != (reply_data(addr) & 0xffffffffu)) {
            die("lib-ring: read %u: %s", i, devvm_strerror(ret));
        }
        if (i >= opts.warmup) {
            samples[i - opts.warmup] = t1 - t0;
        }
    }
    __atomic_store_n(&lr.stop, 1, __ATOMIC_RELEASE);
    pthread_join(tid, NULL);
    devvm_ring_client_close(&rc);
    devvm_server_conn_fini(&lr.conn);
    munmap(shm, size);
    close(kick_fd);
    close(lr.call_fd);
}

static void *lib_socket_device(void *opaque)
{
    struct devvm_server_conn *s = opaque;

    pin_self(opts.device_cpu);
    while (devvm_server_conn_dispatch(s, -1) == DEVVM_OK) {
        continue;
    }
    return NULL;
}

static void lib_socket_run(uint64_t *samples, uint32_t n)
{
    struct devvm_server_conn s;
    struct devvm_client c;
    struct devvm_caps want;
    pthread_t tid;
    int sv[2];
    uint32_t i;

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0 ||
        devvm_server_conn_init(&s, sv[1], &lib_ops, NULL, NULL) < 0) {
        die("lib-socket: cannot set up the server");
    }
    if (pthread_create(&tid, NULL, lib_socket_device, &s)) {
        die("pthread_create failed");
    }
    devvm_client_init(&c, sv[0], 5000, NULL, NULL);
    devvm_caps_default(&want);
    want.max_msg_fds = DEVVM_MAX_FDS;
    if (devvm_client_negotiate(&c, &want) < 0) {
        die("lib-socket: negotiation failed");
    }
    for (i = 0; i < opts.warmup + n; i++) {
        uint64_t t0, t1, addr = (uint64_t)(i & 0xffff) * 4;
        uint32_t v;
        int ret;

        t0 = now_ns();
        ret = devvm_client_region_read(&c, DEVVM_PCI_BAR0_REGION, addr, &v, 4);
        t1 = now_ns();
        if (ret || v != (reply_data(addr) & 0xffffffffu)) {
            die("lib-socket: read %u: %s", i, devvm_strerror(ret));
        }
        if (i >= opts.warmup) {
            samples[i - opts.warmup] = t1 - t0;
        }
    }
    close(sv[0]);
    pthread_join(tid, NULL);
    devvm_server_conn_fini(&s);
}

/* ---- statistics and main ----------------------------------------------- */

struct stats {
    uint64_t median, p99, p999, min, max;
    double mean;
};

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

static void compute(uint64_t *s, uint32_t n, struct stats *st)
{
    double sum = 0;
    uint32_t i;

    qsort(s, n, sizeof(*s), cmp_u64);
    for (i = 0; i < n; i++) {
        sum += s[i];
    }
    st->min = s[0];
    st->max = s[n - 1];
    st->median = s[n / 2];
    st->p99 = s[(uint64_t)n * 99 / 100];
    st->p999 = s[(uint64_t)n * 999 / 1000];
    st->mean = sum / n;
}

static void usage(FILE *f)
{
    fprintf(f,
"Usage: devvm-ring-bench [OPTION]...\n"
"Round-trip latency of a request and its reply between two threads.\n"
"\n"
"  -c, --client-cpu=CPU      CPU of the client thread (default 0)\n"
"  -d, --device-cpu=CPU      CPU of the device thread (default 1)\n"
"  -n, --iterations=N        ring, lib-ring and cacheline iterations\n"
"                            (default 200000)\n"
"  -s, --socket-iterations=N socket and lib-socket iterations\n"
"                            (default 50000)\n"
"  -e, --eventfd-iterations=N ring-eventfd and wakeup iterations\n"
"                            (default 50000)\n"
"  -w, --warmup=N            warm-up round trips per method (default 10000)\n"
"  -m, --methods=LIST        comma-separated: ring,socket,ring-eventfd,\n"
"                            lib-ring,lib-socket,cacheline,wakeup\n"
"                            (default: all)\n"
"  -h, --help                this text\n"
"\n"
"Prints median, p99, p99.9, min and mean in ns per method, then one\n"
"'result method=...' line per method for scripts.\n");
}

static uint32_t parse_count(const char *arg, const char *what)
{
    char *end;
    unsigned long v;

    errno = 0;
    v = strtoul(arg, &end, 0);
    if (errno || *end || v == 0 || v > 100000000ul) {
        die("bad %s '%s' (1..100000000)", what, arg);
    }
    return v;
}

static int parse_cpu(const char *arg)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(arg, &end, 0);
    if (errno || *end || v < 0 || v >= CPU_SETSIZE) {
        die("bad CPU number '%s'", arg);
    }
    return v;
}

static void parse_methods(char *list)
{
    char *tok, *save = NULL;
    int m;

    memset(opts.enabled, 0, sizeof(opts.enabled));
    for (tok = strtok_r(list, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        for (m = 0; m < M_COUNT; m++) {
            if (strcmp(tok, method_names[m]) == 0) {
                opts.enabled[m] = 1;
                break;
            }
        }
        if (m == M_COUNT) {
            die("unknown method '%s' (ring, socket, ring-eventfd, "
                "lib-ring, lib-socket, cacheline, wakeup)", tok);
        }
    }
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "client-cpu", required_argument, NULL, 'c' },
        { "device-cpu", required_argument, NULL, 'd' },
        { "iterations", required_argument, NULL, 'n' },
        { "socket-iterations", required_argument, NULL, 's' },
        { "eventfd-iterations", required_argument, NULL, 'e' },
        { "warmup", required_argument, NULL, 'w' },
        { "methods", required_argument, NULL, 'm' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct stats st[M_COUNT];
    cpu_set_t avail;
    int c, m, ncpus;
    uint64_t *samples;

    while ((c = getopt_long(argc, argv, "c:d:n:s:e:w:m:h", longopts,
                            NULL)) != -1) {
        switch (c) {
        case 'c':
            opts.client_cpu = parse_cpu(optarg);
            break;
        case 'd':
            opts.device_cpu = parse_cpu(optarg);
            break;
        case 'n':
            opts.iters[M_RING] = parse_count(optarg, "iteration count");
            opts.iters[M_LIB_RING] = opts.iters[M_RING];
            opts.iters[M_CACHELINE] = opts.iters[M_RING];
            break;
        case 's':
            opts.iters[M_SOCKET] = parse_count(optarg, "iteration count");
            opts.iters[M_LIB_SOCKET] = opts.iters[M_SOCKET];
            break;
        case 'e':
            opts.iters[M_RING_EVENTFD] = parse_count(optarg,
                                                     "iteration count");
            opts.iters[M_WAKEUP] = opts.iters[M_RING_EVENTFD];
            break;
        case 'w':
            opts.warmup = strtoul(optarg, NULL, 0);
            break;
        case 'm':
            parse_methods(optarg);
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        usage(stderr);
        return 2;
    }

    printf("command:");
    for (c = 0; c < argc; c++) {
        printf(" %s", argv[c]);
    }
    printf("\n");

    if (sched_getaffinity(0, sizeof(avail), &avail) < 0) {
        die("sched_getaffinity: %s", strerror(errno));
    }
    ncpus = CPU_COUNT(&avail);
    if (ncpus < 2) {
        /* both threads share the one CPU: polling must yield */
        opts.single_cpu = 1;
        for (c = 0; c < CPU_SETSIZE && !CPU_ISSET(c, &avail); c++) {
            /* find it */
        }
        opts.client_cpu = opts.device_cpu = c;
        printf("only 1 CPU available (CPU %d): both threads run on it and "
               "poll with sched_yield; the numbers measure the scheduler, "
               "not the transport\n", c);
    } else {
        if (!CPU_ISSET(opts.client_cpu, &avail) ||
            !CPU_ISSET(opts.device_cpu, &avail)) {
            die("CPU %d or %d is not available to this process "
                "(%d CPUs available)", opts.client_cpu, opts.device_cpu,
                ncpus);
        }
        if (opts.client_cpu == opts.device_cpu) {
            opts.single_cpu = 1;
            printf("client and device share CPU %d: polling yields\n",
                   opts.client_cpu);
        }
    }
    printf("client CPU %d, device CPU %d (%d CPUs available), warm-up %u\n",
           opts.client_cpu, opts.device_cpu, ncpus, opts.warmup);
    fflush(stdout);
    pin_self(opts.client_cpu);

    for (m = 0; m < M_COUNT; m++) {
        uint32_t n = opts.iters[m];

        if (!opts.enabled[m]) {
            continue;
        }
        samples = calloc(n, sizeof(*samples));
        if (!samples) {
            die("out of memory");
        }
        switch (m) {
        case M_RING:
            ring_run(0, samples, n);
            break;
        case M_SOCKET:
            socket_run(samples, n);
            break;
        case M_RING_EVENTFD:
            ring_run(1, samples, n);
            break;
        case M_LIB_RING:
            lib_ring_run(samples, n);
            break;
        case M_LIB_SOCKET:
            lib_socket_run(samples, n);
            break;
        case M_CACHELINE:
            cacheline_run(samples, n);
            break;
        case M_WAKEUP:
            wakeup_run(samples, n);
            break;
        }
        compute(samples, n, &st[m]);
        free(samples);
    }

    printf("\n%-13s %10s %10s %10s %10s %10s %10s\n", "method",
           "iterations", "median_ns", "p99_ns", "p99.9_ns", "min_ns",
           "mean_ns");
    for (m = 0; m < M_COUNT; m++) {
        if (opts.enabled[m]) {
            printf("%-13s %10u %10" PRIu64 " %10" PRIu64 " %10" PRIu64
                   " %10" PRIu64 " %10.0f\n", method_names[m], opts.iters[m],
                   st[m].median, st[m].p99, st[m].p999, st[m].min,
                   st[m].mean);
        }
    }
    printf("\n");
    for (m = 0; m < M_COUNT; m++) {
        if (opts.enabled[m]) {
            printf("result method=%s iterations=%u client_cpu=%d "
                   "device_cpu=%d median_ns=%" PRIu64 " p99_ns=%" PRIu64
                   " p999_ns=%" PRIu64 " min_ns=%" PRIu64 " mean_ns=%.0f "
                   "max_ns=%" PRIu64 "\n", method_names[m], opts.iters[m],
                   opts.client_cpu, opts.device_cpu, st[m].median,
                   st[m].p99, st[m].p999, st[m].min, st[m].mean,
                   st[m].max);
        }
    }
    return 0;
}
