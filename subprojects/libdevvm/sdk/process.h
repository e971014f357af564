/*
 * libdevvm SDK, process mode: what process.c (the server) and
 * process-fault.c (fault injection) share.  Internal, not installed.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef LIBDEVVM_SDK_PROCESS_H
#define LIBDEVVM_SDK_PROCESS_H

#include <pthread.h>
#include <signal.h>
#include <stdint.h>

#include "libdevvm/irqfds.h"
#include "libdevvm/ring.h"
#include "libdevvm/server.h"
#include "libdevvm/threads.h"
#include "sdk-impl.h"

#define PROC_MSG_TIMEOUT_MS     5000        /* rest of a message, DMA */
#define PROC_RING_BUDGET        64          /* ring requests per pass */
#define PROC_RING_DEPTH         64
#define PROC_RING_DATA_SIZE     0x10000
#define PROC_SPIN_NS            50000       /* busy-poll before sleeping */
#define PROC_IDLE_MS            1000        /* heartbeat while idle */
#define PROC_SLEEP_SLICE_NS     100000000ull /* devvm_sleep_ns() checks stop */
#define PROC_DEFAULT_MAX_CLIENTS 64         /* --max-clients */

/* One client: its thread, its instance and its server role. */
struct proc_client {
    struct devvm_thread thread; /* on proc.threads */
    unsigned id;
    int fd;
    int wake_fd;                /* the main thread wakes it to stop */
    uint64_t handshake_end;     /* it must have negotiated by then (ns) */
    int result;                 /* 0: orderly end, 1: protocol error */
    struct devvm_dev dev;
    struct devvm_server_conn conn;
    void *priv;
    int win_fd[DEVVM_NUM_BARS]; /* memory windows: one memfd each */
    void *win[DEVVM_NUM_BARS];
    struct devvm_irqfds irqs;   /* SET_IRQS eventfds, INTx automasking */
    /* faults */
    int hung;
    int close_conn;
    uint32_t sock_fault;        /* armed for the next socket REGION_READ */
    /* the request being served */
    int in_ring;
    struct devvm_hdr req;
    /* the device end of the ring channel */
    int shm_fd;
    uint8_t *shm;
    uint64_t shm_size;
    struct devvm_channel ch;
    int kick_fd;
    int call_fd;
    int ring_on;
    int ring_failed;
};

/* The process: one device, any number of clients. */
struct devvm_proc {
    struct devvm_device *desc;
    uid_t owner_uid;            /* who started it: a client may run as
                                 * that uid, or as its own (--run-as) */
    const void *type_data;      /* devvm_type_init()'s, read only */
    struct devvm_server_ops ops;
    int verbose;
    int stop;                   /* atomic: SIGTERM or SIGINT */
    int hung;                   /* atomic: a HANG fault: no new client */
    int done_fd;                /* a client thread ended, or hung */
    sigset_t wait_mask;         /* the main thread's mask while waiting */
    struct devvm_threads threads;   /* the clients */
    unsigned next_id;           /* atomic */
    unsigned max_clients;       /* --max-clients */
    unsigned handshake_ms;      /* --handshake-ms */
};
extern struct devvm_proc devvm_proc;

/*
 * Short names inside process mode; the symbols carry libdevvm's prefix,
 * so that they cannot meet a device's own.
 */
#define proc            devvm_proc
#define proc_log        devvm_proc_log
#define proc_notify     devvm_proc_notify
#define proc_drain      devvm_proc_drain
#define proc_stopping   devvm_proc_stopping

/* SIGTERM or SIGINT came. */
int devvm_proc_stopping(void);

/* A line on stderr, "NAME: " or, for a client, "NAME[ID]: " first. */
__attribute__((format(printf, 2, 3)))
void devvm_proc_log(struct proc_client *c, const char *fmt, ...);

/* devvm_proc_log() with --verbose only. */
#define proc_debug(c, ...) do { \
        if (proc.verbose) { \
            proc_log(c, __VA_ARGS__); \
        } \
    } while (0)

/* Add one to an eventfd (a doorbell, an interrupt): 0 or -1. */
int devvm_proc_notify(int fd);

/* Consume an eventfd's count, if any (the fd is non-blocking). */
void devvm_proc_drain(int fd);

/* ---- fault injection (process-fault.c) ---------------------------------- */

/* The runtime's fault hook (struct devvm_rt_ops.fault). */
void devvm_proc_fault(struct devvm_dev *dev, enum devvm_fault fault);

/*
 * A socket REGION_READ of [@offset, +@count) of @region is about to be
 * answered with @data: send first what the armed reply fault asks for.
 */
void devvm_proc_sock_fault(struct proc_client *c, uint32_t region,
                           uint64_t offset, const void *data,
                           uint32_t count);

/* Hung (the HANG fault): serve nothing, keep the connection, until the
 * process stops. */
void devvm_proc_hang(struct proc_client *c);

/*
 * DMA with the DMA_NO_MASTER fault armed: straight to the client as
 * DMA_READ/WRITE messages, whatever its maps say.  0 or a negative errno.
 */
int devvm_proc_dma_fault(struct proc_client *c, int write, uint64_t addr,
                         void *buf, size_t len);

#endif /* LIBDEVVM_SDK_PROCESS_H */
