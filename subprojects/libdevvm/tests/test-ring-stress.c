/*
 * libdevvm: stress tests of the ring transport with a real concurrent
 * peer.
 *
 *   threads, polling    client and device threads both busy-poll
 *   threads, doorbells  both sleep on eventfds (prepare_sleep and
 *                       kick_needed): a lost wakeup shows as a timeout
 *   processes           memfd shared memory, fork; the child is the device
 *
 * The client pushes N READs (tag i, addr f(i)); the device answers each
 * with a READ_DONE (tag i, data g(i)) and, for every EVT_EVERY-th request,
 * sends a DMA_READ event that the client answers with a DMA_DONE.  Both
 * ends check every slot: in order, exactly once, with the right contents.
 * The client keeps at most depth requests in flight, which guarantees the
 * device always finds room on CPL (and it keeps at most depth events in
 * flight for EVT_CPL), so nobody ever waits for space.
 *
 * DEVVM_STRESS_N overrides the request count.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "libdevvm/ring.h"
#include "tap.h"

#if defined(__SANITIZE_THREAD__)
#define UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UNDER_TSAN 1
#endif
#endif
#ifndef UNDER_TSAN
#define UNDER_TSAN 0
#endif

#define N_DEFAULT       (UNDER_TSAN ? 200000u : 2000000u)
#define DEPTH           64u
#define DATA_SIZE       4096u
#define EVT_EVERY       97u
#define TIMEOUT_MS      10000
#define HEARTBEAT_EVERY 4096u

struct stress {
    uint8_t *shm;
    struct devvm_shm_layout l;
    int sleep;                  /* doorbells instead of busy polling */
    int kick_fd;                /* client -> device */
    int call_fd;                /* device -> client */
    uint32_t n;
    uint32_t n_events;
    int *abort_flag;            /* shared: set by whichever end failed */
    uint64_t sleeps;            /* times this end slept on its doorbell */
    uint32_t rng;               /* xorshift state for the jitter */
    char err[256];
};

/*
 * Requests in flight: mostly the whole ring, but with doorbells one in
 * every eight stretches of 1024 requests is strict ping-pong, where each
 * end runs dry after every slot: that is where a lost wakeup would show.
 * (Busy polling keeps the ring full: ping-pong between two spinning
 * threads crawls when the machine is busy and one of them is preempted.)
 */
static uint32_t window(const struct stress *st, uint32_t sent)
{
    return st->sleep && ((sent >> 10) & 7) == 3 ? 1 : DEPTH;
}

static uint64_t req_addr(uint32_t i)
{
    return (uint64_t)i * 8 + 0x1000;
}

static uint64_t cpl_data(uint32_t i)
{
    return ((uint64_t)i << 32) ^ (i * 0x9e3779b9u) ^ 0x5555;
}

static uint64_t evt_addr(uint32_t k)
{
    return 0xfee00000ull + k;
}

static uint16_t evt_status(uint32_t k)
{
    return (uint16_t)(k * 7 + 1);
}

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

__attribute__((format(printf, 2, 3)))
static int fail(struct stress *st, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(st->err, sizeof(st->err), fmt, ap);
    va_end(ap);
    __atomic_store_n(st->abort_flag, 1, __ATOMIC_RELAXED);
    return -1;
}

static int aborted(struct stress *st)
{
    return __atomic_load_n(st->abort_flag, __ATOMIC_RELAXED);
}

static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
}

/*
 * Doorbell mode only: now and then wait a little before pushing, so that
 * pushes also land while the peer is on its way to sleep (prepare_sleep),
 * not only while it is fast asleep or busy.
 */
static void jitter(struct stress *st)
{
    uint32_t x = st->rng, i;

    if (!st->sleep) {
        return;
    }
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    st->rng = x;
    if ((x & 7) == 0) {
        for (i = 0; i < ((x >> 8) & 255); i++) {
            cpu_relax();
        }
    }
}

static void kick(int fd)
{
    uint64_t one = 1;

    if (write(fd, &one, sizeof(one)) != sizeof(one)) {
        /* an eventfd write only fails on counter overflow: ignore */
    }
}

/*
 * Nothing to do.  Busy polling: pause, yield now and then, give up after
 * TIMEOUT_MS without progress.  Doorbells: announce the sleep on both
 * consumed rings, sleep on @fd unless work arrived meanwhile, and go back
 * to polling.  Returns 0 to go on, -1 on timeout.
 */
static int idle(struct stress *st, struct devvm_ring *a, struct devvm_ring *b,
                int fd, uint32_t *spins, uint64_t *since)
{
    struct pollfd pfd = { .fd = fd, .events = POLLIN };
    uint64_t val;
    int ra, rb, ret;

    if (!st->sleep) {
        cpu_relax();
        if ((++*spins & 255) == 0) {
            sched_yield();
            if (*since == 0) {
                *since = now_ms();
            } else if (now_ms() - *since > TIMEOUT_MS) {
                return -1;
            }
        }
        return 0;
    }
    ra = devvm_ring_prepare_sleep(a);
    rb = devvm_ring_prepare_sleep(b);
    if (ra == DEVVM_E_AGAIN && rb == DEVVM_E_AGAIN) {
        do {
            ret = poll(&pfd, 1, TIMEOUT_MS);
        } while (ret < 0 && errno == EINTR);
        if (ret <= 0) {
            return -1;
        }
        if (read(fd, &val, sizeof(val)) != sizeof(val)) {
            return -1;
        }
        st->sleeps++;
    }
    devvm_ring_poll_mode(a);
    devvm_ring_poll_mode(b);
    return 0;
}

static int device_run(struct stress *st)
{
    struct devvm_channel ch;
    struct devvm_ring *req, *cpl, *evt, *evt_cpl;
    struct devvm_slot s, o;
    uint32_t req_done = 0, evt_due = 0, evt_sent = 0, evt_done = 0;
    uint32_t spins = 0;
    uint64_t since = 0;
    int ret;

    ret = devvm_channel_attach(&ch, st->shm, &st->l, 0, DEVVM_SIDE_DEVICE);
    if (ret < 0) {
        return fail(st, "device attach: %d", ret);
    }
    req = &ch.ring[DEVVM_RING_REQ];
    cpl = &ch.ring[DEVVM_RING_CPL];
    evt = &ch.ring[DEVVM_RING_EVT];
    evt_cpl = &ch.ring[DEVVM_RING_EVT_CPL];

    while (req_done < st->n || evt_done < st->n_events) {
        int progress = 0, pushed_cpl = 0, pushed_evt = 0;

        if (aborted(st)) {
            return fail(st, "device: client failed");
        }
        while (req_done < st->n && (ret = devvm_ring_pop(req, &o)) == 0) {
            if (o.op != DEVVM_OP_READ || o.tag != req_done ||
                o.addr != req_addr(req_done) || o.size != 8) {
                return fail(st, "device: request %u: op %u tag %u addr "
                            "0x%" PRIx64, req_done, o.op, o.tag, o.addr);
            }
            memset(&s, 0, sizeof(s));
            s.op = DEVVM_OP_READ_DONE;
            s.tag = o.tag;
            s.data = cpl_data(o.tag);
            jitter(st);
            ret = devvm_ring_push(cpl, &s);
            if (ret < 0) {
                return fail(st, "device: push CPL %u: %d", o.tag, ret);
            }
            pushed_cpl = 1;
            if (req_done % EVT_EVERY == 0) {
                evt_due++;
            }
            if (++req_done % HEARTBEAT_EVERY == 0) {
                devvm_shm_heartbeat(st->shm);
            }
            progress = 1;
        }
        if (ret < 0 && ret != DEVVM_E_AGAIN) {
            return fail(st, "device: pop REQ: %d", ret);
        }
        while (evt_sent < evt_due && evt_sent - evt_done < DEPTH) {
            memset(&s, 0, sizeof(s));
            s.op = DEVVM_OP_DMA_READ;
            s.tag = evt_sent;
            s.addr = evt_addr(evt_sent);
            s.len = 64;
            s.aux = (evt_sent % (DATA_SIZE / 64)) * 64;
            ret = devvm_ring_push(evt, &s);
            if (ret < 0) {
                return fail(st, "device: push EVT %u: %d", evt_sent, ret);
            }
            evt_sent++;
            pushed_evt = 1;
            progress = 1;
        }
        while ((ret = devvm_ring_pop(evt_cpl, &o)) == 0) {
            if (o.op != DEVVM_OP_DMA_DONE || o.tag != evt_done ||
                o.status != evt_status(evt_done) || evt_done >= evt_sent) {
                return fail(st, "device: event completion %u: op %u tag %u",
                            evt_done, o.op, o.tag);
            }
            evt_done++;
            progress = 1;
        }
        if (ret != DEVVM_E_AGAIN) {
            return fail(st, "device: pop EVT_CPL: %d", ret);
        }
        if (st->sleep && ((pushed_cpl && devvm_ring_kick_needed(cpl)) ||
                          (pushed_evt && devvm_ring_kick_needed(evt)))) {
            kick(st->call_fd);
        }
        if (progress) {
            spins = 0;
            since = 0;
        } else if (idle(st, req, evt_cpl, st->kick_fd, &spins, &since)) {
            return fail(st, "device: timed out at request %u, event %u/%u",
                        req_done, evt_done, evt_sent);
        }
    }
    return 0;
}

static int client_run(struct stress *st)
{
    struct devvm_channel ch;
    struct devvm_ring *req, *cpl, *evt, *evt_cpl;
    struct devvm_slot s, o;
    uint32_t sent = 0, done = 0, evt_seen = 0, spins = 0;
    uint64_t since = 0;
    int ret;

    ret = devvm_channel_attach(&ch, st->shm, &st->l, 0, DEVVM_SIDE_CLIENT);
    if (ret < 0) {
        return fail(st, "client attach: %d", ret);
    }
    req = &ch.ring[DEVVM_RING_REQ];
    cpl = &ch.ring[DEVVM_RING_CPL];
    evt = &ch.ring[DEVVM_RING_EVT];
    evt_cpl = &ch.ring[DEVVM_RING_EVT_CPL];

    while (done < st->n || evt_seen < st->n_events) {
        int progress = 0, pushed_req = 0, pushed_evt_cpl = 0;

        if (aborted(st)) {
            return fail(st, "client: device failed");
        }
        while (sent < st->n && sent - done < window(st, sent)) {
            memset(&s, 0, sizeof(s));
            s.op = DEVVM_OP_READ;
            s.tag = sent;
            s.size = 8;
            s.addr = req_addr(sent);
            jitter(st);
            ret = devvm_ring_push(req, &s);
            if (ret < 0) {
                return fail(st, "client: push REQ %u: %d", sent, ret);
            }
            sent++;
            pushed_req = 1;
            progress = 1;
        }
        while ((ret = devvm_ring_pop(cpl, &o)) == 0) {
            if (o.op != DEVVM_OP_READ_DONE || o.tag != done ||
                o.data != cpl_data(done) || o.status != 0 || done >= sent) {
                return fail(st, "client: completion %u: op %u tag %u data "
                            "0x%" PRIx64, done, o.op, o.tag, o.data);
            }
            done++;
            progress = 1;
            if (done % HEARTBEAT_EVERY == 0) {
                ret = devvm_channel_check(&ch);
                if (ret < 0) {
                    return fail(st, "client: channel check: %d", ret);
                }
            }
        }
        if (ret != DEVVM_E_AGAIN) {
            return fail(st, "client: pop CPL: %d", ret);
        }
        while ((ret = devvm_ring_pop(evt, &o)) == 0) {
            if (o.op != DEVVM_OP_DMA_READ || o.tag != evt_seen ||
                o.addr != evt_addr(evt_seen) || o.len != 64 ||
                devvm_channel_data_range(&ch, o.aux, o.len) < 0) {
                return fail(st, "client: event %u: op %u tag %u", evt_seen,
                            o.op, o.tag);
            }
            memset(&s, 0, sizeof(s));
            s.op = DEVVM_OP_DMA_DONE;
            s.tag = o.tag;
            s.status = evt_status(o.tag);
            ret = devvm_ring_push(evt_cpl, &s);
            if (ret < 0) {
                return fail(st, "client: push EVT_CPL %u: %d", o.tag, ret);
            }
            evt_seen++;
            pushed_evt_cpl = 1;
            progress = 1;
        }
        if (ret != DEVVM_E_AGAIN) {
            return fail(st, "client: pop EVT: %d", ret);
        }
        if (st->sleep && ((pushed_req && devvm_ring_kick_needed(req)) ||
                          (pushed_evt_cpl &&
                           devvm_ring_kick_needed(evt_cpl)))) {
            kick(st->kick_fd);
        }
        if (progress) {
            spins = 0;
            since = 0;
        } else if (idle(st, cpl, evt, st->call_fd, &spins, &since)) {
            return fail(st, "client: timed out at %u/%u sent, %u done, "
                        "event %u", sent, st->n, done, evt_seen);
        }
    }
    /* nothing more may arrive */
    if (devvm_ring_pop(cpl, &o) != DEVVM_E_AGAIN ||
        devvm_ring_pop(evt, &o) != DEVVM_E_AGAIN) {
        return fail(st, "client: extra slots after the last completion");
    }
    return 0;
}

static void *device_thread(void *opaque)
{
    struct stress *st = opaque;

    return (void *)(intptr_t)device_run(st);
}

/* Shared memory (memfd, MAP_SHARED), formatted READY, and the doorbells. */
static int stress_init(struct stress *st, uint32_t n, int sleep)
{
    uint64_t size = devvm_shm_size(1, DEPTH, DATA_SIZE);
    int fd;

    memset(st, 0, sizeof(*st));
    st->n = n;
    st->n_events = (n + EVT_EVERY - 1) / EVT_EVERY;
    st->sleep = sleep;
    st->rng = 0x12345678;
    fd = memfd_create("devvm-ring-stress", MFD_CLOEXEC);
    if (fd < 0 || ftruncate(fd, size) < 0) {
        return -1;
    }
    st->shm = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (st->shm == MAP_FAILED) {
        return -1;
    }
    st->abort_flag = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
                          MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (st->abort_flag == MAP_FAILED) {
        return -1;
    }
    if (devvm_shm_format(st->shm, size, 1, DEPTH, DATA_SIZE, 1) < 0 ||
        devvm_shm_validate(st->shm, size, &st->l) < 0) {
        return -1;
    }
    devvm_shm_set_state(st->shm, DEVVM_STATE_READY, 0, NULL);
    st->kick_fd = eventfd(0, EFD_CLOEXEC);
    st->call_fd = eventfd(0, EFD_CLOEXEC);
    return st->kick_fd < 0 || st->call_fd < 0 ? -1 : 0;
}

static void stress_fini(struct stress *st)
{
    munmap(st->shm, st->l.shm_size);
    munmap(st->abort_flag, 4096);
    close(st->kick_fd);
    close(st->call_fd);
}

static void run_threads(uint32_t n, int sleep)
{
    const char *mode = sleep ? "doorbells" : "busy polling";
    struct stress st, dst;
    pthread_t tid;
    void *dret;
    uint64_t t0 = now_ms();
    int cret;

    if (!TAP_CHECK(stress_init(&st, n, sleep) == 0, "threads, %s: set up",
                   mode)) {
        return;
    }
    /* the device gets its own error buffer, same shared memory */
    dst = st;
    dst.rng = 0x9abcdef1;
    if (!TAP_CHECK(pthread_create(&tid, NULL, device_thread, &dst) == 0,
                   "threads, %s: start device thread", mode)) {
        return;
    }
    cret = client_run(&st);
    pthread_join(tid, &dret);
    TAP_CHECK(cret == 0, "threads, %s: client saw %u completions and %u "
              "events in order%s%s", mode, n, st.n_events,
              cret ? ": " : "", st.err);
    TAP_CHECK(dret == NULL, "threads, %s: device saw %u requests and %u "
              "event completions in order%s%s", mode, n, st.n_events,
              dret ? ": " : "", dst.err);
    TAP_CHECK(devvm_shm_heartbeat_count(st.shm) == n / HEARTBEAT_EVERY,
              "threads, %s: heartbeat %" PRIu64, mode,
              devvm_shm_heartbeat_count(st.shm));
    printf("# threads, %s: %u round trips in %" PRIu64 " ms, client slept "
           "%" PRIu64 " times, device %" PRIu64 "\n", mode, n, now_ms() - t0,
           st.sleeps, dst.sleeps);
    stress_fini(&st);
}

static void run_processes(uint32_t n)
{
    struct stress st;
    pid_t pid;
    int cret, status = 0;
    uint64_t t0 = now_ms();

    if (!TAP_CHECK(stress_init(&st, n, 1) == 0, "processes: set up")) {
        return;
    }
    fflush(stdout);
    fflush(stderr);
    pid = fork();
    if (pid == 0) {
        st.rng = 0x9abcdef1;
        if (device_run(&st) < 0) {
            fprintf(stderr, "device process: %s\n", st.err);
            _exit(1);
        }
        _exit(0);
    }
    if (!TAP_CHECK(pid > 0, "processes: fork")) {
        stress_fini(&st);
        return;
    }
    cret = client_run(&st);
    if (cret < 0) {
        /* the child notices the abort flag or times out; make sure */
        kill(pid, SIGTERM);
    }
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        /* retry */
    }
    TAP_CHECK(cret == 0, "processes: client saw %u completions and %u "
              "events in order%s%s", n, st.n_events, cret ? ": " : "",
              st.err);
    TAP_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "processes: device child exited with status 0 (0x%x)",
              status);
    TAP_CHECK(devvm_shm_heartbeat_count(st.shm) == n / HEARTBEAT_EVERY,
              "processes: heartbeat from the child %" PRIu64,
              devvm_shm_heartbeat_count(st.shm));
    printf("# processes: %u round trips in %" PRIu64 " ms, client slept "
           "%" PRIu64 " times\n", n, now_ms() - t0, st.sleeps);
    stress_fini(&st);
}

int main(void)
{
    const char *env = getenv("DEVVM_STRESS_N");
    uint32_t n = N_DEFAULT;

    if (env && *env) {
        n = strtoul(env, NULL, 0);
    }
    printf("# %u requests per case%s, depth %u\n", n,
           UNDER_TSAN ? " (ThreadSanitizer)" : "", DEPTH);
    run_threads(n, 0);
    run_threads(n, 1);
    run_processes(n);
    return tap_done();
}
