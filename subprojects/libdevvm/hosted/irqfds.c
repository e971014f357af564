/*
 * libdevvm (hosted): SET_IRQS eventfds and vfio's interrupt model.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "libdevvm/irqfds.h"
#include "libdevvm/ring.h"

int devvm_irqfds_init(struct devvm_irqfds *q, const struct devvm_irq_info *irqs,
                      uint32_t n)
{
    uint32_t i, v;

    memset(q, 0, sizeof(*q));
    for (i = 0; i < n && i < DEVVM_PCI_NUM_IRQS; i++) {
        if (!irqs[i].count) {
            continue;
        }
        q->fds[i] = malloc(irqs[i].count * sizeof(int));
        if (!q->fds[i]) {
            devvm_irqfds_fini(q);
            return -ENOMEM;
        }
        q->count[i] = irqs[i].count;
        for (v = 0; v < irqs[i].count; v++) {
            q->fds[i][v] = -1;
        }
    }
    return 0;
}

static void devvm_irqfds_close(struct devvm_irqfds *q, uint32_t index,
                               uint32_t start, uint32_t count)
{
    uint32_t v;

    for (v = start; v < start + count; v++) {
        if (q->fds[index][v] >= 0) {
            close(q->fds[index][v]);
            q->fds[index][v] = -1;
        }
    }
}

void devvm_irqfds_fini(struct devvm_irqfds *q)
{
    uint32_t i;

    for (i = 0; i < DEVVM_PCI_NUM_IRQS; i++) {
        if (q->fds[i]) {
            devvm_irqfds_close(q, i, 0, q->count[i]);
            free(q->fds[i]);
        }
    }
    memset(q, 0, sizeof(*q));
}

int devvm_irqfds_signal(struct devvm_irqfds *q, uint32_t index,
                        uint32_t vector)
{
    uint64_t one = 1;
    int fd;

    if (index >= DEVVM_PCI_NUM_IRQS || vector >= q->count[index]) {
        return -EINVAL;
    }
    fd = q->fds[index][vector];
    if (fd < 0) {
        return 0;
    }
    while (write(fd, &one, sizeof(one)) < 0) {
        if (errno != EINTR) {
            return -errno;
        }
    }
    q->signals++;
    return 1;
}

/* A high, unmasked line with an eventfd: signal once, then mask. */
static void devvm_irqfds_intx_update(struct devvm_irqfds *q)
{
    if (q->intx_level && !q->intx_masked &&
        devvm_irqfds_signal(q, DEVVM_PCI_INTX_IRQ, 0) > 0) {
        q->intx_masked = 1;
    }
}

void devvm_irqfds_intx(struct devvm_irqfds *q, int level)
{
    q->intx_level = !!level;
    devvm_irqfds_intx_update(q);
}

/* MASK and UNMASK: INTx only, without eventfds. */
static int devvm_irqfds_mask(struct devvm_irqfds *q,
                             const struct devvm_irq_set *set, uint32_t count)
{
    uint32_t data = set->flags & DEVVM_IRQ_SET_DATA_MASK;

    if (set->index != DEVVM_PCI_INTX_IRQ) {
        return -EINVAL;
    }
    if (data == DEVVM_IRQ_SET_DATA_EVENTFD) {
        return -ENOTSUP;
    }
    if (!count || (data == DEVVM_IRQ_SET_DATA_BOOL && !set->bools[0])) {
        return 0;
    }
    if (set->flags & DEVVM_IRQ_SET_ACTION_MASK) {
        q->intx_masked = 1;
    } else {
        q->intx_masked = 0;
        devvm_irqfds_intx_update(q);
    }
    return 0;
}

int devvm_irqfds_set(struct devvm_irqfds *q, const struct devvm_irq_set *set,
                     int *fds, uint32_t nfds)
{
    uint32_t data = set->flags & DEVVM_IRQ_SET_DATA_MASK;
    uint32_t count = set->count, i;

    if (set->index >= DEVVM_PCI_NUM_IRQS ||
        set->start + (uint64_t)count > q->count[set->index]) {
        return -EINVAL;
    }
    if (data == DEVVM_IRQ_SET_DATA_NONE && count == 0) {
        if (set->flags & DEVVM_IRQ_SET_ACTION_TRIGGER) {
            /* disable the whole index */
            devvm_irqfds_close(q, set->index, 0, q->count[set->index]);
            if (set->index == DEVVM_PCI_INTX_IRQ) {
                q->intx_masked = 0;
            }
            return 0;
        }
        count = q->count[set->index];
    }
    if (!(set->flags & DEVVM_IRQ_SET_ACTION_TRIGGER)) {
        return devvm_irqfds_mask(q, set, count);
    }
    if (data != DEVVM_IRQ_SET_DATA_EVENTFD) {
        return -ENOTSUP;        /* no loopback triggering */
    }
    /* nfds is count (assign) or 0 (de-assign) */
    for (i = 0; i < count; i++) {
        int *slot = &q->fds[set->index][set->start + i];

        if (*slot >= 0) {
            close(*slot);
        }
        *slot = nfds ? fds[i] : -1;
        if (nfds) {
            fds[i] = -1;
        }
    }
    if (set->index == DEVVM_PCI_INTX_IRQ && count) {
        q->intx_masked = 0;
        devvm_irqfds_intx_update(q);
    }
    return 0;
}

int devvm_irqfds_action(struct devvm_irqfds *q, uint32_t index,
                        uint32_t vector, uint32_t action)
{
    if (index == DEVVM_PCI_INTX_IRQ) {
        devvm_irqfds_intx(q, action != DEVVM_IRQ_LOWER);
        if (action == DEVVM_IRQ_PULSE) {
            devvm_irqfds_intx(q, 0);
        }
        return 1;
    }
    if (action == DEVVM_IRQ_LOWER) {
        return 0;
    }
    return devvm_irqfds_signal(q, index, vector);
}
