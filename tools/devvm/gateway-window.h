/*
 * devvm-gateway: the DMA window (docs/devvm/dma-window.rst).
 *
 * The gateway side of zero-copy DMA: it listens on DIR/dma.sock for the
 * device VM's devvm-dma-window, places each client range DMA_MAPped with
 * an fd in the window (first fit), takes it out before the client's
 * DMA_UNMAP is answered, and places them all again in the next device
 * VM's window after a restart.  Thread-safe: the clients' threads map
 * and unmap, the main loop accepts.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef DEVVM_GATEWAY_WINDOW_H
#define DEVVM_GATEWAY_WINDOW_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct gw_window;

/* Wake the device VM's runtime (instance @inst's doorbell). */
typedef void gw_window_kick_fn(void *opaque, unsigned inst);
typedef void gw_window_log_fn(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

/* Listen on @path; NULL (logged) on failure. */
struct gw_window *gw_window_new(const char *path, uid_t owner_uid,
                                gw_window_kick_fn *kick, void *opaque,
                                gw_window_log_fn *log);
void gw_window_free(struct gw_window *w);

/* The listening socket, for the main loop's poll(). */
int gw_window_listen_fd(const struct gw_window *w);

/* A device VM's QEMU connects: greet it, place every range again. */
void gw_window_accept(struct gw_window *w);

/*
 * Place client @inst's [@iova, @iova + @size), @fd at @fd_offset (taken),
 * in the window.  False when it cannot be (no device VM window, full,
 * misaligned): the device reaches that range by DMA messages.
 */
bool gw_window_map(struct gw_window *w, unsigned inst, uint64_t iova,
                   uint64_t size, bool write, int fd, uint64_t fd_offset);

/* Take it out (if it is in); returns once no CPU can reach it. */
void gw_window_unmap(struct gw_window *w, unsigned inst, uint64_t iova,
                     uint64_t size);

/* Every range of @inst out. */
void gw_window_unmap_all(struct gw_window *w, unsigned inst);

/* Ranges placed, and bytes, for the log and the tests. */
void gw_window_stats(struct gw_window *w, unsigned *ranges, uint64_t *bytes,
                     bool *connected);

#endif /* DEVVM_GATEWAY_WINDOW_H */
