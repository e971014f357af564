/*
 * libdevvm (hosted): vfio-user framing on a UNIX stream socket, with
 * file descriptors passed as SCM_RIGHTS.  The one place in libdevvm that
 * calls sendmsg() and recvmsg().
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef LIBDEVVM_SOCK_H
#define LIBDEVVM_SOCK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "libdevvm/wire.h"

/* Time the rest of a message may take once it has begun (ms). */
#define DEVVM_SOCK_REST_MS 1000

/* One received message: the buffer is malloc'd, the fds are owned. */
struct devvm_rx {
    uint8_t *buf;               /* hdr.size bytes */
    struct devvm_hdr hdr;
    int fds[DEVVM_MAX_FDS];
    uint32_t nfds;
};

/*
 * Send one complete message with @nfds (<= DEVVM_MAX_FDS) descriptors
 * attached to its first byte.  Blocks until all is written (EINTR is
 * retried, SIGPIPE is not raised).  Returns 0, DEVVM_E_CLOSED or
 * DEVVM_E_IO.
 */
int devvm_sock_send(int fd, const void *msg, size_t len, const int *fds,
                    uint32_t nfds);

/*
 * Receive one message.  The header is read and checked first
 * (devvm_hdr_decode() against @max_size), so an oversized message is
 * refused before anything is allocated.  At most DEVVM_MAX_FDS fds are
 * accepted; more (or truncated control data) is DEVVM_E_BAD_FDS and
 * every fd that did arrive is closed.  @timeout_ms bounds the wait for a
 * message to begin (-1: no bound, 0: poll); once its first byte is in,
 * the rest gets at least DEVVM_SOCK_REST_MS more.  Returns 0,
 * DEVVM_E_AGAIN (timeout before the first byte), DEVVM_E_TIMEOUT
 * (timeout in the middle of a message),
 * DEVVM_E_CLOSED (EOF), DEVVM_E_IO, -DEVVM_ENOMEM or a header error.
 * After any error but DEVVM_E_AGAIN the stream is out of step and the
 * connection must be closed.  On success release @rx with
 * devvm_rx_release().
 */
int devvm_sock_recv(int fd, int timeout_ms, uint32_t max_size,
                    struct devvm_rx *rx);

/*
 * Receive one message of exactly @len bytes and no fds (a protocol of
 * fixed-size messages without vfio-user's header), with the same waits
 * as devvm_sock_recv().  Returns 0, DEVVM_E_AGAIN, DEVVM_E_TIMEOUT,
 * DEVVM_E_CLOSED, DEVVM_E_IO or DEVVM_E_BAD_FDS (fds came with it: they
 * are closed); after any but DEVVM_E_AGAIN the stream is out of step.
 */
int devvm_sock_read(int fd, void *buf, size_t len, int timeout_ms);

/* Free the buffer and close every fd still in rx->fds (a consumer that
 * keeps an fd sets its slot to -1). */
void devvm_rx_release(struct devvm_rx *rx);

/* Connect to a UNIX socket path; returns an fd or a negative errno. */
int devvm_sock_connect(const char *path);

/* Bind and listen on @path with mode 0600 (an existing socket file is
 * replaced); returns an fd or a negative errno. */
int devvm_sock_listen(const char *path);

/* uid of the process at the other end (SO_PEERCRED). */
int devvm_sock_peer_uid(int fd, uid_t *uid);

#endif /* LIBDEVVM_SOCK_H */
