/*
 * libdevvm: the events side of a ring channel
 * (devvm_ring_client_events(), devvm_ring_client_service()), against a
 * device end driven by hand on a real shared memory: every event kind,
 * DMA completions and the kick, the call doorbell, a LOG chain, and what
 * a hostile device can put on the EVT ring.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "libdevvm/ring-client.h"
#include "tap.h"

#define DEPTH       8
#define DATA_SIZE   4096

/* the device end, and what the events side was asked to do */
static struct devvm_channel dev;
static void *dev_shm;
static uint64_t dev_shm_size;
static int kick_fd, call_fd;
static uint8_t client_mem[256];
static struct {
    unsigned dma, irq, log, bad;
    int last_write;
    uint64_t last_addr, last_len;
    uint32_t irq_index;
    uint64_t irq_vector, irq_action;
    char log_msg[DEVVM_RING_LOG_MAX + 1];
    uint16_t bad_op;
} seen;

static int ev_dma(void *opaque, int write, uint64_t addr, void *buf,
                  uint64_t len)
{
    seen.dma++;
    seen.last_write = write;
    seen.last_addr = addr;
    seen.last_len = len;
    if (addr > sizeof(client_mem) || len > sizeof(client_mem) - addr) {
        return -EFAULT;
    }
    if (write) {
        memcpy(client_mem + addr, buf, len);
    } else {
        memcpy(buf, client_mem + addr, len);
    }
    return 0;
}

static void ev_irq(void *opaque, uint32_t index, uint64_t vector,
                   uint64_t action)
{
    seen.irq++;
    seen.irq_index = index;
    seen.irq_vector = vector;
    seen.irq_action = action;
}

static void ev_log(void *opaque, const char *msg)
{
    seen.log++;
    snprintf(seen.log_msg, sizeof(seen.log_msg), "%s", msg);
}

static void ev_bad(void *opaque, const struct devvm_slot *s)
{
    seen.bad++;
    seen.bad_op = s->op;
}

static const struct devvm_ring_event_ops ops = {
    .dma = ev_dma, .irq = ev_irq, .log = ev_log, .bad_slot = ev_bad,
};

static int rc_events(void *opaque)
{
    return devvm_ring_client_events(opaque, &ops, NULL);
}

/* A fresh channel: memory formatted, both ends attached. */
static void channel_open(struct devvm_ring_client *rc)
{
    uint64_t size = devvm_shm_size(1, DEPTH, DATA_SIZE);
    struct devvm_ring_attach a = {
        .channel = 0, .depth = DEPTH, .shm_size = size, .generation = 1,
    };
    struct devvm_shm_layout l;
    int mfd = memfd_create("events", MFD_CLOEXEC);
    int fds[DEVVM_ATTACH_FDS];
    void *shm;

    TAP_CHECK(mfd >= 0 && ftruncate(mfd, size) == 0, "a shared memory");
    shm = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
    TAP_CHECK(shm != MAP_FAILED, "mapped for the device end");
    dev_shm = shm;
    dev_shm_size = size;
    devvm_shm_format(shm, size, 1, DEPTH, DATA_SIZE, 1);
    devvm_shm_validate(shm, size, &l);
    devvm_channel_attach(&dev, shm, &l, 0, DEVVM_SIDE_DEVICE);
    devvm_shm_set_state(shm, DEVVM_STATE_READY, 0, "");
    kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    call_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    fds[0] = mfd;
    fds[1] = dup(kick_fd);
    fds[2] = dup(call_fd);
    TAP_EQ(devvm_ring_client_open(rc, &a, fds), DEVVM_OK,
           "the client end opens the channel");
    rc->events = rc_events;
    rc->aux_opaque = rc;
    memset(&seen, 0, sizeof(seen));
}

static void channel_close(struct devvm_ring_client *rc)
{
    devvm_ring_client_close(rc);
    munmap(dev_shm, dev_shm_size);
    close(kick_fd);
    close(call_fd);
}

static void evt_push(const struct devvm_slot *s)
{
    TAP_EQ(devvm_ring_push(&dev.ring[DEVVM_RING_EVT], s), DEVVM_OK,
           "the device publishes op %u", s->op);
}

/* Signalled since the last look (and cleared)? */
static int signalled(int fd)
{
    uint64_t v;

    return read(fd, &v, sizeof(v)) == sizeof(v);
}

static void test_events(void)
{
    struct devvm_ring_client rc;
    struct devvm_ring *evt_dev = &dev.ring[DEVVM_RING_EVT];
    struct devvm_slot s, d;
    static const char text[] = "a log line that does not fit in one slot, "
                               "so it comes in two\x01";

    channel_open(&rc);

    /* an interrupt; nothing to complete, no kick */
    s = (struct devvm_slot){ .op = DEVVM_OP_IRQ, .region = 2, .addr = 5,
                             .data = DEVVM_IRQ_PULSE };
    evt_push(&s);
    TAP_EQ(devvm_ring_client_events(&rc, &ops, NULL), DEVVM_OK,
           "the events side takes it");
    TAP_CHECK(seen.irq == 1 && seen.irq_index == 2 && seen.irq_vector == 5 &&
              seen.irq_action == DEVVM_IRQ_PULSE,
              "IRQ: index, vector and action reach the callback");
    TAP_CHECK(!signalled(kick_fd), "no kick without a completion");
    TAP_CHECK(devvm_ring_kick_needed(evt_dev),
              "afterwards every event rings the doorbell (need_wakeup)");

    /* a DMA write into client memory, a read back, each completed */
    memcpy(dev.data + 64, "0123456789", 10);
    s = (struct devvm_slot){ .op = DEVVM_OP_DMA_WRITE, .tag = 7, .addr = 16,
                             .len = 10, .aux = 64 };
    evt_push(&s);
    s = (struct devvm_slot){ .op = DEVVM_OP_DMA_READ, .tag = 8, .addr = 16,
                             .len = 10, .aux = 128 };
    evt_push(&s);
    devvm_ring_prepare_sleep(&dev.ring[DEVVM_RING_EVT_CPL]);
    TAP_EQ(devvm_ring_client_events(&rc, &ops, NULL), DEVVM_OK,
           "two DMA requests executed");
    TAP_CHECK(!memcmp(client_mem + 16, "0123456789", 10),
              "DMA_WRITE: the data area's bytes are in client memory");
    TAP_CHECK(!memcmp(dev.data + 128, "0123456789", 10),
              "DMA_READ: client memory is in the data area");
    TAP_EQ(devvm_ring_pop(&dev.ring[DEVVM_RING_EVT_CPL], &d), DEVVM_OK,
           "a first DMA_DONE");
    TAP_CHECK(d.op == DEVVM_OP_DMA_DONE && d.tag == 7 && d.status == 0,
              "... for the write, status 0");
    TAP_EQ(devvm_ring_pop(&dev.ring[DEVVM_RING_EVT_CPL], &d), DEVVM_OK,
           "a second");
    TAP_CHECK(d.tag == 8 && d.status == 0, "... for the read, in order");
    TAP_CHECK(signalled(kick_fd), "the sleeping device was kicked");

    /* what the callback refuses, and ranges outside the data area */
    s = (struct devvm_slot){ .op = DEVVM_OP_DMA_WRITE, .tag = 9,
                             .addr = 250, .len = 10, .aux = 0 };
    evt_push(&s);
    s = (struct devvm_slot){ .op = DEVVM_OP_DMA_READ, .tag = 10,
                             .addr = 0, .len = 16, .aux = DATA_SIZE - 8 };
    evt_push(&s);
    s = (struct devvm_slot){ .op = DEVVM_OP_DMA_READ, .tag = 11,
                             .addr = 0, .len = 0, .aux = 0 };
    evt_push(&s);
    s = (struct devvm_slot){ .op = DEVVM_OP_DMA_WRITE, .tag = 12,
                             .addr = 0, .len = 1, .aux = ~0ull };
    evt_push(&s);
    seen.dma = 0;
    TAP_EQ(devvm_ring_client_events(&rc, &ops, NULL), DEVVM_OK,
           "bad DMA requests do not break the channel");
    TAP_EQ(seen.dma, 1, "only the one inside the data area reaches the "
           "callback");
    TAP_EQ(seen.bad, 3, "the others are reported as bad slots");
    devvm_ring_pop(&dev.ring[DEVVM_RING_EVT_CPL], &d);
    TAP_CHECK(d.tag == 9 && d.status == EFAULT,
              "outside client memory: EFAULT from the callback");
    devvm_ring_pop(&dev.ring[DEVVM_RING_EVT_CPL], &d);
    TAP_CHECK(d.tag == 10 && d.status == EINVAL,
              "past the end of the data area: EINVAL");
    devvm_ring_pop(&dev.ring[DEVVM_RING_EVT_CPL], &d);
    TAP_CHECK(d.tag == 11 && d.status == EINVAL, "zero length: EINVAL");
    devvm_ring_pop(&dev.ring[DEVVM_RING_EVT_CPL], &d);
    TAP_CHECK(d.tag == 12 && d.status == EINVAL,
              "an offset that wraps: EINVAL");

    /* a LOG message in two slots, unprintable bytes replaced */
    memset(&s, 0, sizeof(s));
    s.op = DEVVM_OP_LOG;
    s.size = DEVVM_LOG_TEXT_MAX;
    s.flags = DEVVM_SLOT_F_MORE;
    memcpy(s.text, text, DEVVM_LOG_TEXT_MAX);
    evt_push(&s);
    memset(&s, 0, sizeof(s));
    s.op = DEVVM_OP_LOG;
    s.size = sizeof(text) - 1 - DEVVM_LOG_TEXT_MAX;
    memcpy(s.text, text + DEVVM_LOG_TEXT_MAX, s.size);
    evt_push(&s);
    TAP_EQ(devvm_ring_client_events(&rc, &ops, NULL), DEVVM_OK,
           "a LOG chain");
    TAP_EQ(seen.log, 1, "one message for the chain");
    TAP_CHECK(!strncmp(seen.log_msg, text, sizeof(text) - 2) &&
              seen.log_msg[sizeof(text) - 2] == '?' &&
              strlen(seen.log_msg) == sizeof(text) - 1,
              "the whole text, the control byte as '?' (%s)", seen.log_msg);

    /* the call doorbell outside a wait: service takes it and the events */
    s = (struct devvm_slot){ .op = DEVVM_OP_IRQ, .region = 0, .addr = 0,
                             .data = DEVVM_IRQ_RAISE };
    evt_push(&s);
    TAP_CHECK(devvm_ring_kick_needed(evt_dev), "the device rings call");
    signalled(call_fd);
    {
        uint64_t one = 1;

        TAP_EQ(write(call_fd, &one, sizeof(one)), sizeof(one),
               "call signalled");
    }
    seen.irq = 0;
    TAP_EQ(devvm_ring_client_service(&rc), DEVVM_OK, "service");
    TAP_CHECK(seen.irq == 1 && seen.irq_action == DEVVM_IRQ_RAISE,
              "... ran the events");
    TAP_CHECK(!signalled(call_fd), "... and took the doorbell's signal");
    TAP_EQ(devvm_ring_client_service(&rc), DEVVM_OK,
           "service without a signal does not block");

    /* an op that has no place on the EVT ring: the channel is corrupt */
    s = (struct devvm_slot){ .op = DEVVM_OP_READ_DONE, .tag = 1 };
    evt_push(&s);
    seen.bad = 0;
    TAP_EQ(devvm_ring_client_events(&rc, &ops, NULL), DEVVM_E_BAD_FIELD,
           "READ_DONE on the EVT ring: a corrupt channel");
    TAP_CHECK(seen.bad == 1 && seen.bad_op == DEVVM_OP_READ_DONE,
              "... reported as a bad slot");
    TAP_EQ(devvm_ring_client_events(&rc, &ops, NULL), DEVVM_E_BAD_FIELD,
           "... and it stays broken");
    TAP_EQ(devvm_ring_client_service(&rc), DEVVM_E_BAD_FIELD,
           "service too");
    channel_close(&rc);
}

/* A corrupt producer index on the EVT ring. */
static void test_corrupt_index(void)
{
    struct devvm_ring_client rc;
    uint8_t *prod;

    channel_open(&rc);
    prod = dev.ring[DEVVM_RING_EVT].base + DEVVM_RING_OFF_PROD;
    __atomic_store_n((uint32_t *)prod, DEPTH + 5, __ATOMIC_RELEASE);
    TAP_EQ(devvm_ring_client_events(&rc, &ops, NULL), DEVVM_E_RING_INDEX,
           "an EVT producer index past the ring: DEVVM_E_RING_INDEX");
    TAP_EQ(seen.irq + seen.dma + seen.log, 0, "nothing was executed");
    channel_close(&rc);
}

int main(void)
{
    test_events();
    test_corrupt_index();
    return tap_done();
}
