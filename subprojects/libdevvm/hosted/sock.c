/*
 * libdevvm (hosted): message framing on a UNIX stream socket.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "libdevvm/sock.h"

/* libdevvm/errno.h's values are the host's: the wire carries either */
_Static_assert(DEVVM_EPERM == EPERM && DEVVM_ENOENT == ENOENT &&
               DEVVM_EIO == EIO && DEVVM_E2BIG == E2BIG &&
               DEVVM_EAGAIN == EAGAIN && DEVVM_ENOMEM == ENOMEM &&
               DEVVM_EFAULT == EFAULT && DEVVM_EBUSY == EBUSY &&
               DEVVM_EEXIST == EEXIST && DEVVM_ENODEV == ENODEV &&
               DEVVM_EINVAL == EINVAL && DEVVM_ENOSPC == ENOSPC &&
               DEVVM_ERANGE == ERANGE && DEVVM_EUSERS == EUSERS &&
               DEVVM_ENOTSUP == ENOTSUP && DEVVM_ETIMEDOUT == ETIMEDOUT,
               "libdevvm/errno.h");

int devvm_sock_send(int fd, const void *msg, size_t len, const int *fds,
                    uint32_t nfds)
{
    union {
        char buf[CMSG_SPACE(sizeof(int) * DEVVM_MAX_FDS)];
        struct cmsghdr align;
    } control;
    const uint8_t *p = msg;
    size_t done = 0;

    if (nfds > DEVVM_MAX_FDS) {
        return DEVVM_E_BAD_FDS;
    }
    while (done < len) {
        struct iovec iov = {
            .iov_base = (void *)(p + done),
            .iov_len = len - done,
        };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
        ssize_t n;

        /* the fds ride on the first byte only */
        if (done == 0 && nfds) {
            struct cmsghdr *cmsg;

            memset(&control, 0, sizeof(control));
            mh.msg_control = control.buf;
            mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
            cmsg = CMSG_FIRSTHDR(&mh);
            cmsg->cmsg_level = SOL_SOCKET;
            cmsg->cmsg_type = SCM_RIGHTS;
            cmsg->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
            memcpy(CMSG_DATA(cmsg), fds, sizeof(int) * nfds);
        }
        n = sendmsg(fd, &mh, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return errno == EPIPE || errno == ECONNRESET ?
                   DEVVM_E_CLOSED : DEVVM_E_IO;
        }
        done += n;
    }
    return DEVVM_OK;
}

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait for input until @deadline (-1: forever). */
static int wait_readable(int fd, int64_t deadline)
{
    struct pollfd pfd = { .fd = fd, .events = POLLIN };

    for (;;) {
        int timeout = -1, r;

        if (deadline >= 0) {
            int64_t left = deadline - now_ms();

            timeout = left > 0 ? (int)(left < 1000000 ? left : 1000000) : 0;
        }
        r = poll(&pfd, 1, timeout);
        if (r > 0) {
            return DEVVM_OK;
        }
        if (r == 0 && deadline >= 0 && now_ms() >= deadline) {
            return DEVVM_E_TIMEOUT;
        }
        if (r < 0 && errno != EINTR) {
            return DEVVM_E_IO;
        }
    }
}

/*
 * Read exactly @len bytes, collecting any fds into @rx.  @first: these
 * bytes begin a message, so a wait that ends before any came is
 * DEVVM_E_AGAIN, and once they begin *@deadline (if any) moves to at
 * least DEVVM_SOCK_REST_MS from then.
 */
static int read_full(int fd, uint8_t *buf, size_t len, int64_t *deadline,
                     struct devvm_rx *rx, int first)
{
    size_t done = 0;

    while (done < len) {
        union {
            char buf[CMSG_SPACE(sizeof(int) * DEVVM_MAX_FDS)];
            struct cmsghdr align;
        } control;
        struct iovec iov = { .iov_base = buf + done, .iov_len = len - done };
        struct msghdr mh = {
            .msg_iov = &iov,
            .msg_iovlen = 1,
            .msg_control = control.buf,
            .msg_controllen = sizeof(control.buf),
        };
        struct cmsghdr *cmsg;
        ssize_t n;
        int ret = 0;

        /* read first; poll() only when nothing is there yet */
        n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno != EAGAIN) {
                return errno == ECONNRESET ? DEVVM_E_CLOSED : DEVVM_E_IO;
            }
            ret = wait_readable(fd, *deadline);
            if (ret) {
                /* nothing of this message yet: the caller may try later */
                return ret == DEVVM_E_TIMEOUT && first && done == 0 ?
                       DEVVM_E_AGAIN : ret;
            }
            continue;
        }
        for (cmsg = CMSG_FIRSTHDR(&mh); cmsg; cmsg = CMSG_NXTHDR(&mh, cmsg)) {
            size_t i, nr;

            if (cmsg->cmsg_level != SOL_SOCKET ||
                cmsg->cmsg_type != SCM_RIGHTS) {
                continue;
            }
            nr = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (i = 0; i < nr; i++) {
                int rfd;

                memcpy(&rfd, CMSG_DATA(cmsg) + i * sizeof(int), sizeof(int));
                if (rx->nfds < DEVVM_MAX_FDS) {
                    rx->fds[rx->nfds++] = rfd;
                } else {
                    close(rfd);
                    ret = DEVVM_E_BAD_FDS;
                }
            }
        }
        if (ret || (mh.msg_flags & MSG_CTRUNC)) {
            return DEVVM_E_BAD_FDS;
        }
        if (n == 0) {
            return DEVVM_E_CLOSED;
        }
        if (first && *deadline >= 0) {
            int64_t rest = now_ms() + DEVVM_SOCK_REST_MS;

            if (*deadline < rest) {
                *deadline = rest;
            }
        }
        done += n;
        first = 0;
    }
    return DEVVM_OK;
}

int devvm_sock_recv(int fd, int timeout_ms, uint32_t max_size,
                    struct devvm_rx *rx)
{
    uint8_t hdr[DEVVM_HDR_SIZE];
    int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
    int ret;

    memset(rx, 0, sizeof(*rx));
    ret = read_full(fd, hdr, sizeof(hdr), &deadline, rx, 1);
    if (ret == DEVVM_OK) {
        ret = devvm_hdr_decode(hdr, sizeof(hdr), max_size, &rx->hdr);
    }
    if (ret == DEVVM_OK) {
        rx->buf = malloc(rx->hdr.size);
        if (!rx->buf) {
            ret = -DEVVM_ENOMEM;
        }
    }
    if (ret == DEVVM_OK) {
        memcpy(rx->buf, hdr, sizeof(hdr));
        ret = read_full(fd, rx->buf + DEVVM_HDR_SIZE,
                        rx->hdr.size - DEVVM_HDR_SIZE, &deadline, rx, 0);
    }
    if (ret) {
        devvm_rx_release(rx);
    }
    return ret;
}

int devvm_sock_read(int fd, void *buf, size_t len, int timeout_ms)
{
    struct devvm_rx rx = { .nfds = 0 };
    int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
    int ret = read_full(fd, buf, len, &deadline, &rx, 1);

    if (!ret && rx.nfds) {
        ret = DEVVM_E_BAD_FDS;
    }
    devvm_rx_release(&rx);
    return ret;
}

void devvm_rx_release(struct devvm_rx *rx)
{
    uint32_t i;

    for (i = 0; i < rx->nfds; i++) {
        if (rx->fds[i] >= 0) {
            close(rx->fds[i]);
        }
    }
    rx->nfds = 0;
    free(rx->buf);
    rx->buf = NULL;
}

static int fill_addr(const char *path, struct sockaddr_un *sun)
{
    memset(sun, 0, sizeof(*sun));
    sun->sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sun->sun_path)) {
        return -DEVVM_EINVAL;
    }
    strcpy(sun->sun_path, path);
    return DEVVM_OK;
}

int devvm_sock_connect(const char *path)
{
    struct sockaddr_un sun;
    int fd, ret;

    ret = fill_addr(path, &sun);
    if (ret) {
        return ret;
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -errno;
    }
    while (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
        if (errno != EINTR) {
            ret = -errno;
            close(fd);
            return ret;
        }
    }
    return fd;
}

int devvm_sock_listen(const char *path)
{
    struct sockaddr_un sun;
    struct stat st;
    int fd, ret;

    ret = fill_addr(path, &sun);
    if (ret) {
        return ret;
    }
    /* replace a stale socket, never any other kind of file */
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            return -DEVVM_EINVAL;
        }
        unlink(path);
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -errno;
    }
    /*
     * Linux creates the socket file with the socket inode's mode (less
     * the umask), so fchmod() before bind() leaves no window in which
     * the file is open to others; no process-wide umask() games.
     */
    if (fchmod(fd, 0600) < 0 ||
        bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
        chmod(path, 0600) < 0 || listen(fd, 16) < 0) {
        ret = -errno;
        close(fd);
        return ret;
    }
    return fd;
}

int devvm_sock_peer_uid(int fd, uid_t *uid)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);

    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
        return DEVVM_E_IO;
    }
    *uid = cred.uid;
    return DEVVM_OK;
}
