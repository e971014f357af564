/*
 * libdevvm SDK, process mode: fault injection (devvm_fault(), testdev's
 * FAULT register), kept out of the server's own path.  docs/devvm/sdk.rst
 * has the table of what each fault does.
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
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "libdevvm/le.h"
#include "process.h"

/* what DEVVM_FAULT_GARBAGE sends: 32 bytes, no valid header */
static const char proc_garbage[32] = "devvm: garbage, not a message!!";

void devvm_proc_fault(struct devvm_dev *dev, enum devvm_fault fault)
{
    struct proc_client *c = dev->rt_opaque;

    switch (fault) {
    case DEVVM_FAULT_NONE:
        c->sock_fault = 0;
        break;
    case DEVVM_FAULT_HANG:
        proc_log(c, "fault: hanging (the connection stays open, no new "
                 "client is accepted)");
        c->hung = 1;
        __atomic_store_n(&proc.hung, 1, __ATOMIC_RELEASE);
        proc_notify(proc.done_fd);
        break;
    case DEVVM_FAULT_CRASH:
        proc_log(c, "fault: crashing");
        abort();
    case DEVVM_FAULT_GARBAGE:
    case DEVVM_FAULT_HUGE_SIZE:
    case DEVVM_FAULT_WRONG_ID:
    case DEVVM_FAULT_UNEXPECTED_FD:
        c->sock_fault = fault;
        proc_debug(c, "fault %s armed for the next socket REGION_READ",
                   devvm_fault_name(fault));
        break;
    case DEVVM_FAULT_CLOSE:
        proc_log(c, "fault: closing the connection");
        c->close_conn = 1;
        break;
    default:
        proc_log(c, "fault %u does not exist, ignored", (unsigned)fault);
        break;
    }
}

/*
 * A socket REGION_READ is about to be answered: put what an armed fault
 * asks for in front of the reply.  @data is what the reply will carry.
 */
void devvm_proc_sock_fault(struct proc_client *c, uint32_t region,
                           uint64_t offset, const void *data,
                           uint32_t count)
{
    struct devvm_region_rw rw = { offset, region, count, data };
    size_t size = DEVVM_HDR_SIZE + 16 + count;
    uint32_t fault = c->sock_fault;
    uint16_t id = c->req.id;
    uint8_t *msg;
    int len, fd = -1;

    c->sock_fault = 0;
    proc_log(c, "fault %s: before the reply to request %u",
             devvm_fault_name(fault), id);
    if (fault == DEVVM_FAULT_GARBAGE) {
        if (send(c->fd, proc_garbage, sizeof(proc_garbage),
                 MSG_NOSIGNAL) < 0) {
            proc_log(c, "sending garbage: %s", strerror(errno));
        }
        return;
    }
    msg = malloc(size);
    if (!msg) {
        proc_log(c, "fault %s: out of memory", devvm_fault_name(fault));
        return;
    }
    if (fault == DEVVM_FAULT_HUGE_SIZE) {
        len = devvm_encode_hdr_only(msg, size, id, DEVVM_CMD_REGION_READ,
                                    DEVVM_HDR_F_REPLY, 0);
        devvm_st32(msg + 4, 0x7fffffff);
    } else {
        if (fault == DEVVM_FAULT_WRONG_ID) {
            id += 0x8000;
        } else {
            fd = eventfd(0, EFD_CLOEXEC);
        }
        len = devvm_encode_region_rw(msg, size, id, DEVVM_CMD_REGION_READ,
                                     DEVVM_HDR_F_REPLY, &rw);
    }
    if (len > 0 && devvm_sock_send(c->fd, msg, len, &fd, fd >= 0)) {
        proc_log(c, "fault %s: send failed", devvm_fault_name(fault));
    }
    if (fd >= 0) {
        close(fd);
    }
    free(msg);
}

void devvm_proc_hang(struct proc_client *c)
{
    struct pollfd pfd = { .fd = c->wake_fd, .events = POLLIN };

    while (!proc_stopping()) {
        if (poll(&pfd, 1, -1) > 0) {
            proc_drain(c->wake_fd);
        }
    }
}

int devvm_proc_dma_fault(struct proc_client *c, int write, uint64_t addr,
                         void *buf, size_t len)
{
    int ret = devvm_server_conn_dma_unchecked(&c->conn, write, addr, buf,
                                              len);

    /* a refusal is the client's errno, logged by the role */
    return ret && !devvm_is_errno(ret) ? -DEVVM_EIO : ret;
}
