/*
 * devvm-gateway: the DMA window (docs/devvm/dma-window.rst).
 *
 * Every client range DMA_MAPped with an fd is recorded here with a dup of
 * its fd and an offset in the window (first fit, 2 MiB aligned), and
 * placed in the device VM's window when one is connected: MAP with the
 * fd, answered by devvm-dma-window.  UNMAP is answered only once the
 * device VM's runtime acknowledged it (or QEMU's ack-timeout-ms passed);
 * meanwhile the runtime is woken through its doorbell so that it looks.
 * A device VM that does not answer within GW_WIN_REPLY_MS is cut off:
 * QEMU takes every range out when its chardev closes, and the device
 * falls back to DMA messages.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "libdevvm/le.h"
#include "libdevvm/runas.h"
#include "libdevvm/sock.h"
#include "libdevvm/window.h"
#include "gateway-window.h"

#define GW_WIN_PLACE_ALIGN  (2u << 20)  /* large pages in the device VM */
#define GW_WIN_HELLO_MS     2000
#define GW_WIN_REPLY_MS     5000        /* above QEMU's ack-timeout-ms */
#define GW_WIN_KICK_MS      2

struct gw_win_range {
    bool used;
    bool placed;                /* in the connected device VM's window */
    bool write;
    unsigned inst;
    uint64_t iova, size, offset, fd_offset;
    int fd;
};

struct gw_window {
    pthread_mutex_t lock;       /* everything below, and the connection */
    int lfd, fd;
    uid_t owner_uid;
    uint64_t size;              /* the connected window's */
    uint32_t next_id;
    struct gw_win_range ranges[DEVVM_WIN_SLOTS];
    gw_window_kick_fn *kick;
    void *opaque;
    gw_window_log_fn *log;
};

/* The device VM is gone or broken: it keeps nothing (its QEMU drops all). */
static void win_disconnect(struct gw_window *w, const char *why)
{
    unsigned i;

    if (w->fd < 0) {
        return;
    }
    w->log("DMA window: device VM %s: every range is out of its window",
           why);
    close(w->fd);
    w->fd = -1;
    for (i = 0; i < DEVVM_WIN_SLOTS; i++) {
        w->ranges[i].placed = false;
    }
}

/*
 * One request and its reply (lock held): the reply's errno, or -1 when
 * the device VM was cut off.  An UNMAP kicks instance @r->inst's runtime
 * until it answers.
 */
static int win_request(struct gw_window *w, uint32_t op,
                       const struct gw_win_range *r)
{
    uint8_t m[DEVVM_WIN_MSG_SIZE] = { 0 };
    uint32_t id = ++w->next_id;
    /* an UNMAP waits in steps, kicking the runtime after each */
    int step = op == DEVVM_WIN_OP_UNMAP ? GW_WIN_KICK_MS : GW_WIN_REPLY_MS;
    int waited, ret;

    devvm_st32(m + DEVVM_WIN_M_OP, op);
    devvm_st32(m + DEVVM_WIN_M_FLAGS, r->write ? DEVVM_WIN_E_F_WRITE : 0);
    devvm_st32(m + DEVVM_WIN_M_ID, id);
    devvm_st32(m + DEVVM_WIN_M_INSTANCE, r->inst);
    devvm_st64(m + DEVVM_WIN_M_OFFSET, r->offset);
    devvm_st64(m + DEVVM_WIN_M_SIZE, r->size);
    devvm_st64(m + DEVVM_WIN_M_IOVA, r->iova);
    devvm_st64(m + DEVVM_WIN_M_FD_OFFSET, r->fd_offset);
    if (devvm_sock_send(w->fd, m, sizeof(m), &r->fd,
                        op == DEVVM_WIN_OP_MAP ? 1 : 0)) {
        win_disconnect(w, "closed its window socket");
        return -1;
    }
    for (waited = 0;; waited += step) {
        ret = devvm_sock_read(w->fd, m, sizeof(m), step);
        if (ret == DEVVM_E_AGAIN && waited + step < GW_WIN_REPLY_MS) {
            w->kick(w->opaque, r->inst);
            continue;
        }
        if (ret == DEVVM_E_AGAIN) {
            win_disconnect(w, "did not answer a window request");
            return -1;
        }
        if (ret) {
            win_disconnect(w, "closed its window socket");
            return -1;
        }
        if (devvm_ld32(m + DEVVM_WIN_M_OP) != DEVVM_WIN_OP_REPLY ||
            devvm_ld32(m + DEVVM_WIN_M_ID) != id) {
            win_disconnect(w, "sent a message out of turn");
            return -1;
        }
        return (int)devvm_ld32(m + DEVVM_WIN_M_INSTANCE);
    }
}

static bool win_place(struct gw_window *w, struct gw_win_range *r)
{
    int err;

    if (w->fd < 0 || r->offset + r->size > w->size) {
        return false;
    }
    err = win_request(w, DEVVM_WIN_OP_MAP, r);
    if (err > 0) {
        w->log("DMA window: instance %u: 0x%llx+0x%llx not placed: %s",
               r->inst, (unsigned long long)r->iova,
               (unsigned long long)r->size, strerror(err));
    }
    r->placed = err == 0;
    if (r->placed) {
        w->log("DMA window: instance %u: 0x%llx+0x%llx at window offset "
               "0x%llx%s", r->inst, (unsigned long long)r->iova,
               (unsigned long long)r->size, (unsigned long long)r->offset,
               r->write ? "" : ", read-only");
    }
    return r->placed;
}

struct gw_window *gw_window_new(const char *path, uid_t owner_uid,
                                gw_window_kick_fn *kick, void *opaque,
                                gw_window_log_fn *log)
{
    struct gw_window *w = calloc(1, sizeof(*w));

    if (!w) {
        log("DMA window: out of memory");
        return NULL;
    }
    pthread_mutex_init(&w->lock, NULL);
    w->fd = -1;
    w->owner_uid = owner_uid;
    w->kick = kick;
    w->opaque = opaque;
    w->log = log;
    w->lfd = devvm_sock_listen(path);
    if (w->lfd < 0) {
        log("cannot listen on %s: %s", path, strerror(-w->lfd));
        free(w);
        return NULL;
    }
    return w;
}

void gw_window_free(struct gw_window *w)
{
    unsigned i;

    if (!w) {
        return;
    }
    for (i = 0; i < DEVVM_WIN_SLOTS; i++) {
        if (w->ranges[i].used) {
            close(w->ranges[i].fd);
        }
    }
    if (w->fd >= 0) {
        close(w->fd);
    }
    close(w->lfd);
    pthread_mutex_destroy(&w->lock);
    free(w);
}

int gw_window_listen_fd(const struct gw_window *w)
{
    return w->lfd;
}

void gw_window_accept(struct gw_window *w)
{
    uint8_t hello[DEVVM_WIN_MSG_SIZE];
    unsigned i, placed = 0;
    uint64_t size;
    int fd = accept4(w->lfd, NULL, NULL, SOCK_CLOEXEC);

    if (fd < 0) {
        return;
    }
    if (!devvm_peer_allowed(fd, w->owner_uid)) {
        w->log("DMA window refused: its peer does not run as uid %u",
               (unsigned)w->owner_uid);
        close(fd);
        return;
    }
    if (devvm_sock_read(fd, hello, sizeof(hello), GW_WIN_HELLO_MS) ||
        devvm_ld32(hello + DEVVM_WIN_M_OP) != DEVVM_WIN_OP_HELLO ||
        devvm_ld64(hello + DEVVM_WIN_M_FD_OFFSET) != DEVVM_WIN_VERSION) {
        w->log("DMA window refused: no HELLO of version %u",
               DEVVM_WIN_VERSION);
        close(fd);
        return;
    }
    size = devvm_ld64(hello + DEVVM_WIN_M_OFFSET);
    pthread_mutex_lock(&w->lock);
    /* the one before died (a restart): its QEMU took everything out */
    win_disconnect(w, "replaced by a new one");
    w->fd = fd;
    w->size = size;
    for (i = 0; i < DEVVM_WIN_SLOTS; i++) {
        if (w->ranges[i].used && win_place(w, &w->ranges[i])) {
            placed++;
        }
    }
    pthread_mutex_unlock(&w->lock);
    w->log("DMA window: device VM connected, window of %llu GiB, %u "
           "range%s placed", (unsigned long long)(size >> 30), placed,
           placed == 1 ? "" : "s");
}

/* First fit for @size in the window (lock held); false when full. */
static bool win_alloc(struct gw_window *w, uint64_t size, uint64_t *offset)
{
    uint64_t at = 0;
    bool moved;

    do {
        unsigned i;

        moved = false;
        for (i = 0; i < DEVVM_WIN_SLOTS; i++) {
            const struct gw_win_range *r = &w->ranges[i];

            if (r->used && at < r->offset + r->size &&
                r->offset < at + size) {
                at = (r->offset + r->size + GW_WIN_PLACE_ALIGN - 1) &
                     ~(uint64_t)(GW_WIN_PLACE_ALIGN - 1);
                moved = true;
            }
        }
    } while (moved && at < w->size);
    if (at > w->size || size > w->size - at) {
        return false;
    }
    *offset = at;
    return true;
}

bool gw_window_map(struct gw_window *w, unsigned inst, uint64_t iova,
                   uint64_t size, bool write, int fd, uint64_t fd_offset)
{
    struct gw_win_range *r = NULL;
    unsigned i;
    bool ok = false;

    if (!size || (iova | size | fd_offset) % DEVVM_WIN_ALIGN) {
        close(fd);
        return false;
    }
    pthread_mutex_lock(&w->lock);
    for (i = 0; i < DEVVM_WIN_SLOTS && !r; i++) {
        if (!w->ranges[i].used) {
            r = &w->ranges[i];
        }
    }
    if (!r || !w->size || !win_alloc(w, size, &r->offset)) {
        w->log("DMA window: instance %u: no room for 0x%llx+0x%llx: the "
               "device reaches it by DMA messages", inst,
               (unsigned long long)iova, (unsigned long long)size);
        close(fd);
    } else {
        r->used = true;
        r->inst = inst;
        r->iova = iova;
        r->size = size;
        r->write = write;
        r->fd = fd;
        r->fd_offset = fd_offset;
        ok = win_place(w, r);
    }
    pthread_mutex_unlock(&w->lock);
    return ok;
}

static void win_remove(struct gw_window *w, struct gw_win_range *r)
{
    if (r->placed && win_request(w, DEVVM_WIN_OP_UNMAP, r) > 0) {
        /* it was not there: nothing is reachable either way */
        w->log("DMA window: instance %u: unmap of 0x%llx+0x%llx refused",
               r->inst, (unsigned long long)r->iova,
               (unsigned long long)r->size);
    }
    close(r->fd);
    memset(r, 0, sizeof(*r));
}

void gw_window_unmap(struct gw_window *w, unsigned inst, uint64_t iova,
                     uint64_t size)
{
    unsigned i;

    pthread_mutex_lock(&w->lock);
    for (i = 0; i < DEVVM_WIN_SLOTS; i++) {
        struct gw_win_range *r = &w->ranges[i];

        if (r->used && r->inst == inst && r->iova == iova &&
            r->size == size) {
            win_remove(w, r);
        }
    }
    pthread_mutex_unlock(&w->lock);
}

void gw_window_unmap_all(struct gw_window *w, unsigned inst)
{
    unsigned i;

    pthread_mutex_lock(&w->lock);
    for (i = 0; i < DEVVM_WIN_SLOTS; i++) {
        if (w->ranges[i].used && w->ranges[i].inst == inst) {
            win_remove(w, &w->ranges[i]);
        }
    }
    pthread_mutex_unlock(&w->lock);
}

void gw_window_stats(struct gw_window *w, unsigned *ranges, uint64_t *bytes,
                     bool *connected)
{
    unsigned i;

    *ranges = 0;
    *bytes = 0;
    pthread_mutex_lock(&w->lock);
    for (i = 0; i < DEVVM_WIN_SLOTS; i++) {
        if (w->ranges[i].placed) {
            ++*ranges;
            *bytes += w->ranges[i].size;
        }
    }
    *connected = w->fd >= 0;
    pthread_mutex_unlock(&w->lock);
}
