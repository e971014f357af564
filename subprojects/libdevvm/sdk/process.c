/*
 * libdevvm SDK, process mode: devvm_main() serves a device described by a
 * struct devvm_device as a vfio-user server with the devvm extension.
 *
 * Threads: the main thread parses the command line, listens, accepts
 * clients and waits for signals.  Each client gets a thread of its own,
 * with its own instance (struct devvm_dev and private state) and its own
 * server role (struct devvm_server_conn); that thread serves the client's
 * socket and, once attached, its ring channel, so the callbacks of an
 * instance never run concurrently and a DMA through DMA_READ/WRITE
 * messages never meets a concurrent read of the socket.
 *
 * docs/devvm/sdk.rst describes the command line and the faults.
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
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "libdevvm/le.h"
#include "libdevvm/runas.h"
#include "process.h"

/* The process: one device, any number of clients. */
struct devvm_proc proc = {
    .threads = DEVVM_THREADS_INITIALIZER,
    .done_fd = -1,
    .max_clients = PROC_DEFAULT_MAX_CLIENTS,
    .handshake_ms = DEVVM_SERVER_HANDSHAKE_MS,
};

int devvm_proc_stopping(void)
{
    return __atomic_load_n(&proc.stop, __ATOMIC_ACQUIRE);
}

static void proc_vlog(struct proc_client *c, const char *fmt, va_list ap)
{
    flockfile(stderr);
    if (c) {
        fprintf(stderr, "%s[%u]: ", proc.desc->name, c->id);
    } else {
        fprintf(stderr, "%s: ", proc.desc->name);
    }
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    funlockfile(stderr);
}

/* A line on stderr, "NAME: " or, for a client, "NAME[ID]: " first. */
void devvm_proc_log(struct proc_client *c, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    proc_vlog(c, fmt, ap);
    va_end(ap);
}

int devvm_proc_notify(int fd)
{
    uint64_t one = 1;

    while (write(fd, &one, sizeof(one)) < 0) {
        if (errno != EINTR) {
            return -1;
        }
    }
    return 0;
}

void devvm_proc_drain(int fd)
{
    uint64_t v;

    while (read(fd, &v, sizeof(v)) < 0 && errno == EINTR) {
        continue;
    }
}

static void proc_close(int *fd)
{
    if (*fd >= 0) {
        close(*fd);
        *fd = -1;
    }
}

/* ---- runtime hooks of the SDK core -------------------------------------- */

uint64_t devvm_rt_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* In slices, so that SIGTERM does not wait for a long stall. */
void devvm_rt_sleep_ns(uint64_t ns)
{
    while (ns && !proc_stopping()) {
        uint64_t n = ns < PROC_SLEEP_SLICE_NS ? ns : PROC_SLEEP_SLICE_NS;
        struct timespec ts = { n / 1000000000ull, n % 1000000000ull };

        while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
            continue;
        }
        ns -= n;
    }
}

/* ---- interrupts --------------------------------------------------------- */

/* After the IRQ table may have signalled: the count the device sees. */
static void proc_irqs_count(struct proc_client *c, const char *what)
{
    if (c->irqs.signals != c->dev.irq_signals) {
        proc_debug(c, "%s: %" PRIu64 " interrupt signals so far", what,
                   c->irqs.signals);
    }
    c->dev.irq_signals = c->irqs.signals;
}

/* ---- runtime operations ------------------------------------------------- */

static int proc_dma(struct devvm_dev *dev, int write, uint64_t addr,
                    void *buf, size_t len)
{
    struct proc_client *c = dev->rt_opaque;
    int ret;

    if (dev->dma_ignores_master) {
        return devvm_proc_dma_fault(c, write, addr, buf, len);
    }
    /* outside the maps (-EFAULT) and refusals are the role's to log */
    ret = write ? devvm_server_conn_dma_write(&c->conn, addr, buf, len) :
                  devvm_server_conn_dma_read(&c->conn, addr, buf, len);
    if (ret && !devvm_is_errno(ret)) {
        proc_log(c, "DMA %s of 0x%" PRIx64 "+0x%zx: %s",
                 write ? "write" : "read", addr, len, devvm_strerror(ret));
        return -DEVVM_EIO;
    }
    return ret;
}

static void *proc_dma_map(struct devvm_dev *dev, uint64_t addr, size_t len,
                          int write)
{
    struct proc_client *c = dev->rt_opaque;

    return devvm_dma_ptr(&c->conn.dma, addr, len, write);
}

static void proc_irq(struct devvm_dev *dev, unsigned index, unsigned vector,
                     unsigned action)
{
    struct proc_client *c = dev->rt_opaque;
    int ret;

    ret = devvm_irqfds_action(&c->irqs, index, vector, action);
    if (ret < 0) {
        proc_log(c, "IRQ %u vector %u: %s", index, vector, strerror(-ret));
    } else if (!ret && action != DEVVM_IRQ_LOWER) {
        proc_debug(c, "IRQ %u vector %u: no eventfd, not signalled",
                   index, vector);
    }
    proc_irqs_count(c, "IRQ");
}

static void proc_rt_log(struct devvm_dev *dev, const char *line, size_t len)
{
    proc_log(dev->rt_opaque, "%.*s", (int)len, line);
}

/*
 * No piece size: the role takes any length, checks the whole range
 * against the maps first and copies mapping by mapping.
 */
static const struct devvm_rt_ops proc_rt_ops = {
    .dma = proc_dma,
    .dma_max = SIZE_MAX,
    .dma_map = proc_dma_map,
    .irq = proc_irq,
    .log = proc_rt_log,
    .fault = devvm_proc_fault,
};

/* ---- server role callbacks ---------------------------------------------- */

static int proc_device_info(void *opaque, struct devvm_device_info *info)
{
    devvm_dev_device_info(proc.desc, info);
    return 0;
}

static int proc_region_info(void *opaque, uint32_t index,
                            struct devvm_region_info *info, int *fd)
{
    struct proc_client *c = opaque;
    int ret = devvm_dev_region_info(proc.desc, index, info);

    if (!ret && info->nr_areas) {
        *fd = c->win_fd[index];
    }
    return ret;
}

static int proc_irq_info(void *opaque, uint32_t index,
                         struct devvm_irq_info *info)
{
    return devvm_dev_irq_info(proc.desc, index, info);
}

/* The role checked index, start and count against the IRQ info. */
static int proc_set_irqs(void *opaque, const struct devvm_irq_set *set,
                         int *fds, uint32_t nfds)
{
    struct proc_client *c = opaque;
    int ret;

    proc_debug(c, "SET_IRQS index %u start %u count %u flags 0x%x, %u fds",
               set->index, set->start, set->count, set->flags, nfds);
    ret = devvm_irqfds_set(&c->irqs, set, fds, nfds);
    proc_irqs_count(c, "SET_IRQS");
    return ret;
}

static void proc_log_access(struct proc_client *c, const char *what,
                            uint32_t region, uint64_t off, const void *buf,
                            uint32_t count)
{
    uint64_t v = 0;

    memcpy(&v, buf, count < 8 ? count : 8);
    proc_log(c, "%s %s region %u offset 0x%" PRIx64 " count %u: 0x%" PRIx64
             "%s", c->in_ring ? "ring" : "socket", what, region, off, count,
             v, count > 8 ? "..." : "");
}

static int proc_region_read(void *opaque, uint32_t region, uint64_t off,
                            void *buf, uint32_t count)
{
    struct proc_client *c = opaque;
    int ret = devvm_dev_region_read(&c->dev, region, off, buf, count);

    if (proc.verbose && !ret) {
        proc_log_access(c, "read", region, off, buf, count);
    }
    if (!ret && !c->in_ring && c->sock_fault) {
        devvm_proc_sock_fault(c, region, off, buf, count);
    }
    return ret;
}

static int proc_region_write(void *opaque, uint32_t region, uint64_t off,
                             const void *buf, uint32_t count)
{
    struct proc_client *c = opaque;

    if (proc.verbose) {
        proc_log_access(c, "write", region, off, buf, count);
    }
    return devvm_dev_region_write(&c->dev, region, off, buf, count);
}

static int proc_reset(void *opaque)
{
    struct proc_client *c = opaque;

    proc_debug(c, "DEVICE_RESET");
    c->irqs.intx_level = 0;
    c->irqs.intx_masked = 0;
    c->sock_fault = 0;
    devvm_dev_reset(&c->dev);
    return 0;
}

static void proc_dma_changed(void *opaque)
{
    struct proc_client *c = opaque;

    proc_debug(c, "DMA maps changed: %u now", c->conn.dma.nr);
}

static void proc_conn_log(void *opaque, const char *msg)
{
    proc_log(opaque, "%s", msg);
}

/* ---- ring transport ----------------------------------------------------- */

/*
 * Serve up to PROC_RING_BUDGET requests of the request ring, one at a
 * time so that a hang or a close stops at the request that asked for
 * it.  Returns the number served; a corrupt ring fails the channel.
 */
static int proc_ring_serve(struct proc_client *c)
{
    int served = 0, ret;

    c->in_ring = 1;
    do {
        ret = devvm_server_ring_serve(&c->conn, &c->ch, c->call_fd, 1);
        served += ret > 0;
    } while (ret > 0 && served < PROC_RING_BUDGET && !c->hung &&
             !c->close_conn);
    c->in_ring = 0;
    if (ret < 0) {
        proc_log(c, "ring: %s: channel failed", devvm_strerror(ret));
        c->ring_failed = 1;
        devvm_shm_set_state(c->shm, DEVVM_STATE_FAILED, 1, "corrupt ring");
        devvm_server_conn_event(&c->conn, DEVVM_STATE_FAILED,
                                c->ch.generation, "corrupt ring");
    }
    return served;
}

static void proc_ring_close(struct proc_client *c)
{
    c->ring_on = 0;
    c->ring_failed = 0;
    proc_close(&c->kick_fd);
    proc_close(&c->call_fd);
}

/* The shared memory, made at the first attach and kept for the next. */
static int proc_shm_create(struct proc_client *c)
{
    uint64_t size = devvm_shm_size(1, PROC_RING_DEPTH, PROC_RING_DATA_SIZE);
    int fd = memfd_create("devvm-ring", MFD_CLOEXEC), err;
    void *p;

    if (fd < 0 || ftruncate(fd, size) < 0) {
        err = errno;
        proc_log(c, "ring memory: %s", strerror(err));
        if (fd >= 0) {
            close(fd);
        }
        return -err;
    }
    p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        err = errno;
        proc_log(c, "ring memory: mmap: %s", strerror(err));
        close(fd);
        return -err;
    }
    c->shm_fd = fd;
    c->shm = p;
    c->shm_size = size;
    return 0;
}

static int proc_ring_attach(void *opaque, struct devvm_ring_attach *a,
                            int fds[DEVVM_ATTACH_FDS])
{
    struct proc_client *c = opaque;
    struct devvm_shm_layout l;
    uint32_t generation;
    int ret;

    proc_ring_close(c);
    if (!c->shm) {
        ret = proc_shm_create(c);
        if (ret) {
            return ret;
        }
    }
    c->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    c->call_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    generation = devvm_shm_generation(c->shm) + 1;
    if (c->kick_fd < 0 || c->call_fd < 0 ||
        devvm_shm_format(c->shm, c->shm_size, 1, PROC_RING_DEPTH,
                         PROC_RING_DATA_SIZE, generation) ||
        devvm_shm_validate(c->shm, c->shm_size, &l) ||
        devvm_channel_attach(&c->ch, c->shm, &l, 0, DEVVM_SIDE_DEVICE)) {
        proc_log(c, "ring attach failed");
        proc_ring_close(c);
        return -EIO;
    }
    devvm_shm_set_state(c->shm, DEVVM_STATE_READY, 0, "");
    c->ring_on = 1;

    /* neither event ring: IRQs are eventfds, DMA goes through the socket */
    a->flags &= ~DEVVM_ATTACH_F_EVENTS;
    a->channel = 0;
    a->depth = PROC_RING_DEPTH;
    a->shm_size = c->shm_size;
    a->generation = generation;
    fds[0] = dup(c->shm_fd);
    fds[1] = dup(c->kick_fd);
    fds[2] = dup(c->call_fd);
    proc_debug(c, "ring attached, generation %u", generation);
    return 0;
}

static int proc_ring_detach(void *opaque, uint32_t channel)
{
    struct proc_client *c = opaque;

    if (channel != 0 || !c->ring_on) {
        return -EINVAL;
    }
    /* what was published before the detach is executed before its reply */
    while (!c->ring_failed && proc_ring_serve(c) > 0) {
        continue;
    }
    proc_ring_close(c);
    proc_debug(c, "ring detached");
    return 0;
}

/* ---- serving a client --------------------------------------------------- */

/* Before a dispatch: the header of the request it will handle. */
static void proc_peek(struct proc_client *c)
{
    uint8_t h[DEVVM_HDR_SIZE];

    memset(&c->req, 0, sizeof(c->req));
    if (c->conn.npending) {
        c->req = c->conn.pending[0].hdr;
    } else if (recv(c->fd, h, sizeof(h), MSG_PEEK | MSG_DONTWAIT) ==
               sizeof(h)) {
        c->req.id = devvm_ld16(h);
        c->req.cmd = devvm_ld16(h + 2);
        c->req.size = devvm_ld32(h + 4);
        c->req.flags = devvm_ld32(h + 8);
    }
}

static int proc_ring_active(struct proc_client *c)
{
    return c->ring_on && !c->ring_failed;
}

/*
 * Nothing to do: sleep on the socket, the kick doorbell and the wake
 * eventfd, at most until the next heartbeat or poll.
 */
static void proc_idle(struct proc_client *c)
{
    struct pollfd pfd[3] = {
        { .fd = c->fd, .events = POLLIN },
        { .fd = c->wake_fd, .events = POLLIN },
        { .fd = -1, .events = POLLIN },
    };
    struct devvm_ring *req = &c->ch.ring[DEVVM_RING_REQ];
    int timeout = -1;

    if (proc_ring_active(c)) {
        if (devvm_ring_prepare_sleep(req) != DEVVM_E_AGAIN) {
            devvm_ring_poll_mode(req);
            return;
        }
        pfd[2].fd = c->kick_fd;
        timeout = PROC_IDLE_MS;
    }
    if (proc.desc->poll && proc.desc->poll_interval_ns) {
        uint64_t now = devvm_rt_now_ns(), next = c->dev.next_poll_ns;
        uint64_t ms = next > now ? (next - now + 999999) / 1000000 : 0;

        if (timeout < 0 || ms < (uint64_t)timeout) {
            timeout = (int)ms;
        }
    }
    if (!c->conn.negotiated) {
        uint64_t now = devvm_rt_now_ns();
        uint64_t ms = c->handshake_end > now ?
                      (c->handshake_end - now + 999999) / 1000000 : 0;

        if (timeout < 0 || ms < (uint64_t)timeout) {
            timeout = (int)ms;
        }
    }
    if (poll(pfd, 3, timeout) > 0) {
        if (pfd[1].revents) {
            proc_drain(c->wake_fd);
        }
        if (pfd[2].revents) {
            proc_drain(c->kick_fd);
        }
    }
    if (proc_ring_active(c)) {
        devvm_ring_poll_mode(req);
    }
}

static int proc_sock_readable(struct proc_client *c)
{
    struct pollfd pfd = { .fd = c->fd, .events = POLLIN };

    return poll(&pfd, 1, 0) > 0;
}

/*
 * Serve the client until it goes away, the process stops or a fault ends
 * the connection.  Returns 0 when it ended in an orderly way, 1 on a
 * protocol error.
 */
static int proc_serve(struct proc_client *c)
{
    uint64_t busy_since = devvm_rt_now_ns();
    int ret = DEVVM_OK;

    proc_debug(c, "client connected");
    while (!proc_stopping()) {
        int work = 0;

        if (c->hung) {
            devvm_proc_hang(c);
            break;
        }
        if (c->close_conn) {
            shutdown(c->fd, SHUT_RDWR);
            ret = DEVVM_E_CLOSED;
            break;
        }
        if (!c->conn.negotiated && devvm_rt_now_ns() >= c->handshake_end) {
            /* an idle connection must not hold a thread and an instance */
            proc_log(c, "the client did not negotiate within %u ms: dropped",
                     proc.handshake_ms);
            return 1;
        }
        if (c->conn.npending || proc_sock_readable(c)) {
            proc_peek(c);
            ret = devvm_server_conn_dispatch(&c->conn, PROC_MSG_TIMEOUT_MS);
            if (ret != DEVVM_OK && ret != DEVVM_E_AGAIN) {
                break;
            }
            ret = DEVVM_OK;
            work = 1;
        }
        if (proc_ring_active(c) && !c->hung && !c->close_conn) {
            work |= proc_ring_serve(c) > 0;
        }
        if (c->ring_on && !c->hung) {
            devvm_shm_heartbeat(c->shm);
        }
        if (!c->hung) {
            devvm_dev_poll(&c->dev, work);
        }
        /*
         * busy-poll the ring and the socket a little before sleeping: the
         * next request of a client that is busy with the device comes
         * within microseconds, and a sleep costs a wakeup each way.  The
         * threads of several clients may share one core: while we spin
         * with nothing to do, one of them that has work runs first (with
         * no other thread there, sched_yield() returns at once).
         */
        if (work) {
            busy_since = devvm_rt_now_ns();
        } else if (devvm_rt_now_ns() - busy_since >= PROC_SPIN_NS) {
            proc_idle(c);
            busy_since = devvm_rt_now_ns();
        } else {
            sched_yield();
        }
    }
    if (proc_stopping()) {
        proc_debug(c, "stopping");
        return 0;
    }
    if (c->hung || ret == DEVVM_E_CLOSED) {
        proc_debug(c, "client went away");
        return 0;
    }
    proc_log(c, "connection closed: %s", devvm_strerror(ret));
    return 1;
}

/* Memory windows, IRQ vectors, private state: 0 or -errno. */
static int proc_client_alloc(struct proc_client *c)
{
    const struct devvm_device *d = proc.desc;
    struct devvm_irq_info q[DEVVM_PCI_NUM_IRQS];
    uint32_t i;
    int err;

    c->priv = calloc(1, d->priv_size ? d->priv_size : 1);
    if (!c->priv) {
        return -ENOMEM;
    }
    for (i = 0; i < DEVVM_NUM_BARS; i++) {
        const struct devvm_bar *b = &d->bars[i];
        char name[32];
        void *p;

        if (!b->mem_size) {
            continue;
        }
        snprintf(name, sizeof(name), "devvm-bar%u", i);
        c->win_fd[i] = memfd_create(name, MFD_CLOEXEC);
        if (c->win_fd[i] < 0 ||
            ftruncate(c->win_fd[i], b->mem_offset + b->mem_size) < 0) {
            err = errno;
            proc_log(c, "BAR%u memory of 0x%" PRIx64 " bytes: %s", i,
                     b->mem_size, strerror(err));
            return -err;
        }
        p = mmap(NULL, b->mem_size, PROT_READ | PROT_WRITE, MAP_SHARED,
                 c->win_fd[i], b->mem_offset);
        if (p == MAP_FAILED) {
            err = errno;
            proc_log(c, "BAR%u memory: mmap: %s", i, strerror(err));
            return -err;
        }
        c->win[i] = p;
    }
    for (i = 0; i < DEVVM_PCI_NUM_IRQS; i++) {
        devvm_dev_irq_info(d, i, &q[i]);
    }
    return devvm_irqfds_init(&c->irqs, q, DEVVM_PCI_NUM_IRQS);
}

static void proc_client_free(struct proc_client *c)
{
    uint32_t i;

    proc_ring_close(c);
    if (c->shm) {
        munmap(c->shm, c->shm_size);
    }
    proc_close(&c->shm_fd);
    devvm_irqfds_fini(&c->irqs);
    for (i = 0; i < DEVVM_NUM_BARS; i++) {
        if (c->win[i]) {
            munmap(c->win[i], proc.desc->bars[i].mem_size);
        }
        proc_close(&c->win_fd[i]);
    }
    free(c->priv);
    proc_close(&c->wake_fd);
    proc_close(&c->fd);
    free(c);
}

static void *proc_client_main(void *opaque)
{
    struct proc_client *c = opaque;
    int ret;

    ret = proc_client_alloc(c);
    if (ret) {
        proc_log(c, "client refused: %s", strerror(-ret));
        c->result = 1;
        goto out;
    }
    ret = devvm_server_conn_init(&c->conn, c->fd, &proc.ops, c, NULL);
    if (ret) {
        proc_log(c, "device description refused: %s", devvm_strerror(ret));
        c->result = 1;
        goto out;
    }
    c->conn.timeout_ms = PROC_MSG_TIMEOUT_MS;
    c->conn.verbose = proc.verbose;     /* every message, both ways */
    ret = devvm_dev_init(&c->dev, proc.desc, proc.type_data, c->priv,
                         c->win, &proc_rt_ops, c);
    if (ret) {
        proc_log(c, "the device's init failed: %s", strerror(-ret));
        c->result = 1;
    } else {
        c->result = proc_serve(c);
        devvm_dev_fini(&c->dev);
    }
    /* the role closes the socket and unmaps the client's memory */
    devvm_server_conn_fini(&c->conn);
    c->fd = -1;
out:
    devvm_thread_finished(&c->thread);
    proc_notify(proc.done_fd);
    return NULL;
}

/* A thread for the client on @fd (which it owns from now on). */
static int proc_client_start(int fd)
{
    struct proc_client *c = calloc(1, sizeof(*c));
    int ret, i;

    if (!c) {
        close(fd);
        return -ENOMEM;
    }
    c->fd = fd;
    c->handshake_end = devvm_rt_now_ns() +
                       (uint64_t)proc.handshake_ms * 1000000;
    c->shm_fd = c->kick_fd = c->call_fd = -1;
    for (i = 0; i < DEVVM_NUM_BARS; i++) {
        c->win_fd[i] = -1;
    }
    c->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (c->wake_fd < 0) {
        ret = -errno;
        proc_client_free(c);
        return ret;
    }
    c->id = __atomic_add_fetch(&proc.next_id, 1, __ATOMIC_RELAXED);
    ret = devvm_threads_start(&proc.threads, &c->thread, proc_client_main,
                              c);
    if (ret) {
        proc_client_free(c);
    }
    return ret;
}

/* A client's thread was joined: free it, keep its result. */
static void proc_reaped(struct devvm_thread *th, void *opaque)
{
    struct proc_client *c = devvm_thread_owner(th, struct proc_client,
                                               thread);

    *(int *)opaque = c->result;
    proc_client_free(c);
}

/*
 * Join the client threads that ended (all of them with @all, after
 * waking them).  Returns how many are left; *result gets the last
 * ended one's result.
 */
static unsigned proc_reap(int all, int *result)
{
    struct devvm_thread *th;

    if (all) {
        pthread_mutex_lock(&proc.threads.lock);
        for (th = proc.threads.list; th; th = th->next) {
            proc_notify(devvm_thread_owner(th, struct proc_client,
                                           thread)->wake_fd);
        }
        pthread_mutex_unlock(&proc.threads.lock);
    }
    return devvm_threads_reap(&proc.threads, all, proc_reaped, result);
}

/*
 * Wait up to forever for one of @pfd; a pending SIGTERM or SIGINT is
 * taken here.  Returns ppoll()'s count, 0 after a signal.
 */
static int proc_wait(struct pollfd *pfd, nfds_t n)
{
    int ret = ppoll(pfd, n, NULL, &proc.wait_mask);

    if (ret < 0 && errno != EINTR) {
        proc_log(NULL, "ppoll: %s", strerror(errno));
        __atomic_store_n(&proc.stop, 1, __ATOMIC_RELEASE);
    }
    return ret < 0 ? 0 : ret;
}

static void proc_accept(int lfd)
{
    int fd, ret;

    fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) {
        if (errno != EINTR && errno != ECONNABORTED && errno != EAGAIN) {
            proc_log(NULL, "accept: %s", strerror(errno));
        }
        return;
    }
    if (!devvm_peer_allowed(fd, proc.owner_uid)) {
        proc_log(NULL, "client refused: not our uid");
        close(fd);
        return;
    }
    if (devvm_threads_count(&proc.threads) >= proc.max_clients) {
        /* it is told why: an EUSERS reply to its VERSION */
        proc_log(NULL, "client refused: %u clients already (--max-clients)",
                 proc.max_clients);
        devvm_server_refuse(fd, EUSERS, proc.handshake_ms);
        return;
    }
    ret = proc_client_start(fd);
    if (ret) {
        proc_log(NULL, "client thread: %s", strerror(-ret));
    }
}

/*
 * Serve clients: accept on @lfd (-1: none, the client is already there)
 * until a signal, or with @once until the first client ended.
 */
static int proc_run(int lfd, int once)
{
    int result = 0, accepted = lfd < 0;

    while (!proc_stopping()) {
        struct pollfd pfd[2] = {
            { .fd = proc.done_fd, .events = POLLIN },
            { .fd = lfd, .events = POLLIN },
        };
        unsigned left;

        if ((once && accepted) || __atomic_load_n(&proc.hung,
                                                  __ATOMIC_ACQUIRE)) {
            pfd[1].fd = -1;
        }
        proc_wait(pfd, 2);
        if (pfd[0].revents) {
            proc_drain(proc.done_fd);
        }
        left = proc_reap(0, &result);
        if (once && accepted && !left) {
            return result;
        }
        if (pfd[1].fd >= 0 && pfd[1].revents && !proc_stopping()) {
            proc_accept(lfd);
            accepted = 1;
        }
    }
    proc_reap(1, &result);
    return 0;
}

/* ---- command line ------------------------------------------------------- */

static void proc_on_signal(int sig)
{
    __atomic_store_n(&proc.stop, 1, __ATOMIC_RELEASE);
}

static void proc_usage(FILE *f, const char *prog)
{
    fprintf(f,
"usage: %s --socket PATH [OPTION...]\n"
"       %s --fd N [OPTION...]\n"
"The %s device as a vfio-user server (devvm process mode).\n"
"\n"
"  -s, --socket PATH     listen on PATH (mode 0600); every client gets its\n"
"                        own instance; prints \"ready\" once listening\n"
"  -f, --fd N            serve the connected socket N, exit when it closes\n"
"  -o, --param KEY=VALUE a device parameter (repeat as needed)\n"
"  -n, --no-ring         do not offer the devvm ring transport\n"
"  -m, --max-clients N   serve at most N clients at once (default %u); one\n"
"                        more gets an EUSERS reply to its VERSION\n"
"  -H, --handshake-ms MS drop a client that has not negotiated (sent\n"
"                        VERSION) MS after it connected (default %u)\n"
"  -1, --once            exit after the first client (with --socket)\n"
"  -u, --run-as UID:GID  once listening, drop root and run as UID:GID\n"
"  -v, --verbose         log every message (both ways) and access on\n"
"                        stderr\n"
"  -h, --help            show this help\n"
"\n"
"SIGTERM or SIGINT: exit 0 (and remove the socket).\n",
            prog, prog, proc.desc->name, PROC_DEFAULT_MAX_CLIENTS,
            DEVVM_SERVER_HANDSHAKE_MS);
}

/* -o KEY=VALUE: 0, or 2 (bad arguments). */
static int proc_param(struct devvm_device *desc, const char *arg)
{
    const char *eq = strchr(arg, '=');
    char *key;
    int ret;

    if (!eq || eq == arg) {
        proc_log(NULL, "--param %s: not KEY=VALUE", arg);
        return 2;
    }
    if (!desc->param) {
        proc_log(NULL, "--param %s: the device takes no parameters", arg);
        return 2;
    }
    key = strndup(arg, eq - arg);
    if (!key) {
        return 2;
    }
    ret = desc->param(desc, key, eq + 1);
    free(key);
    if (ret) {
        proc_log(NULL, "--param %s: refused by the device", arg);
        return 2;
    }
    return 0;
}

/*
 * The device type's data: desc->type_data_size zeroed bytes for the
 * device's type_init, read only once it returned (the instances'
 * threads share them), kept until the process exits.  0, or 1 (the exit
 * status) after a log line.
 */
static int proc_type_init(void)
{
    size_t size = proc.desc->type_data_size;
    void *p = NULL;
    int ret;

    if (size) {
        p = mmap(NULL, size, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) {
            proc_log(NULL, "type data of %zu bytes: %s", size,
                     strerror(errno));
            return 1;
        }
    }
    ret = devvm_type_init(proc.desc, p);
    if (ret) {
        proc_log(NULL, "the device's type_init failed: %s", strerror(-ret));
    } else if (p && mprotect(p, size, PROT_READ) < 0) {
        ret = -errno;
        proc_log(NULL, "type data: mprotect: %s", strerror(-ret));
    }
    if (ret) {
        if (p) {
            munmap(p, size);
        }
        return 1;
    }
    proc.type_data = p;
    return 0;
}

/* --run-as @spec (@uid:@gid), once set up; false (logged) on failure. */
static bool proc_run_as(const char *spec, uid_t uid, gid_t gid)
{
    const char *what;
    int ret = devvm_run_as(uid, gid, &what);

    if (ret) {
        proc_log(NULL, "--run-as %s: %s: %s", spec, what, strerror(-ret));
    }
    return ret == 0;
}

int devvm_main(struct devvm_device *desc, int argc, char **argv)
{
    static const struct option longopts[] = {
        { "socket", required_argument, NULL, 's' },
        { "fd", required_argument, NULL, 'f' },
        { "param", required_argument, NULL, 'o' },
        { "no-ring", no_argument, NULL, 'n' },
        { "max-clients", required_argument, NULL, 'm' },
        { "handshake-ms", required_argument, NULL, 'H' },
        { "once", no_argument, NULL, '1' },
        { "run-as", required_argument, NULL, 'u' },
        { "verbose", no_argument, NULL, 'v' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct sigaction sa = { .sa_handler = proc_on_signal };
    const char *path = NULL, *why, *run_as = NULL;
    uid_t uid = 0;
    gid_t gid = 0;
    int opt, fd = -1, once = 0, no_ring = 0, lfd, ret;
    unsigned long n;
    sigset_t block;
    char *end;

    proc.desc = desc;
    proc.owner_uid = geteuid();
    while ((opt = getopt_long(argc, argv, "s:f:o:nm:H:1u:vh", longopts,
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
                proc_log(NULL, "--fd %s: not an open file descriptor",
                         optarg);
                return 2;
            }
            break;
        case 'o':
            if (proc_param(desc, optarg)) {
                return 2;
            }
            break;
        case 'n':
            no_ring = 1;
            break;
        case 'm':
        case 'H':
            errno = 0;
            n = strtoul(optarg, &end, 10);
            if (errno || end == optarg || *end || n < (opt == 'm' ? 1 : 10) ||
                n > (opt == 'm' ? 4096 : 3600000)) {
                proc_log(NULL, opt == 'm' ?
                         "--max-clients %s: a number from 1 to 4096" :
                         "--handshake-ms %s: milliseconds from 10 to 3600000",
                         optarg);
                return 2;
            }
            *(opt == 'm' ? &proc.max_clients : &proc.handshake_ms) = n;
            break;
        case '1':
            once = 1;
            break;
        case 'u':
            if (devvm_run_as_parse(optarg, &uid, &gid)) {
                proc_log(NULL, "--run-as %s: expected UID:GID, neither 0",
                         optarg);
                return 2;
            }
            run_as = optarg;
            break;
        case 'v':
            proc.verbose = 1;
            break;
        case 'h':
            proc_usage(stdout, argv[0]);
            return 0;
        default:
            proc_usage(stderr, argv[0]);
            return 2;
        }
    }
    if (optind < argc || (path != NULL) == (fd >= 0)) {
        proc_log(NULL, "exactly one of --socket and --fd is needed");
        proc_usage(stderr, argv[0]);
        return 2;
    }
    if (devvm_desc_check(desc, &why)) {
        proc_log(NULL, "device description refused: %s", why);
        return 1;
    }
    if (proc_type_init()) {
        return 1;
    }
    proc.ops = (struct devvm_server_ops) {
        .device_info = proc_device_info,
        .region_info = proc_region_info,
        .irq_info = proc_irq_info,
        .set_irqs = proc_set_irqs,
        .region_read = proc_region_read,
        .region_write = proc_region_write,
        .reset = proc_reset,
        .dma_changed = proc_dma_changed,
        .ring_attach = no_ring ? NULL : proc_ring_attach,
        .ring_detach = no_ring ? NULL : proc_ring_detach,
        .log = proc_conn_log,
    };

    /* SIGTERM and SIGINT arrive only while the main thread waits */
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    pthread_sigmask(SIG_BLOCK, &block, &proc.wait_mask);
    sigdelset(&proc.wait_mask, SIGTERM);
    sigdelset(&proc.wait_mask, SIGINT);
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    proc.done_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (proc.done_fd < 0) {
        proc_log(NULL, "eventfd: %s", strerror(errno));
        return 1;
    }
    if (!path && run_as && !proc_run_as(run_as, uid, gid)) {
        return 1;
    }
    if (!path) {
        fcntl(fd, F_SETFD, FD_CLOEXEC);
        ret = proc_client_start(fd);
        if (ret) {
            proc_log(NULL, "client thread: %s", strerror(-ret));
            return 1;
        }
        printf("ready\n");
        fflush(stdout);
        return proc_run(-1, 1);
    }
    lfd = devvm_sock_listen(path);
    if (lfd < 0) {
        proc_log(NULL, "cannot listen on %s: %s", path, strerror(-lfd));
        return 1;
    }
    if (run_as && !proc_run_as(run_as, uid, gid)) {
        unlink(path);
        return 1;
    }
    printf("ready\n");
    fflush(stdout);
    ret = proc_run(lfd, once);
    close(lfd);
    unlink(path);
    return ret;
}
