/*
 * libdevvm (hosted): the eventfds a client gave with SET_IRQS, and the
 * server side of vfio's interrupt model on top of them: MSI and MSI-X
 * vectors signal their eventfd, INTx is level-triggered and automasked
 * (a high, unmasked line signals once and is then masked until the
 * client unmasks it).  Not thread-safe: one owner.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef LIBDEVVM_IRQFDS_H
#define LIBDEVVM_IRQFDS_H

#include <stdint.h>

#include "libdevvm/wire.h"

struct devvm_irqfds {
    int *fds[DEVVM_PCI_NUM_IRQS];        /* count[i] entries, -1 = none */
    uint32_t count[DEVVM_PCI_NUM_IRQS];
    int intx_level;
    int intx_masked;
    uint64_t signals;                   /* eventfd writes done */
};

/* Size the table from the device's IRQ info (@n entries, index order). */
int devvm_irqfds_init(struct devvm_irqfds *q, const struct devvm_irq_info *irqs,
                      uint32_t n);
/* Close every eventfd and free the table. */
void devvm_irqfds_fini(struct devvm_irqfds *q);

/*
 * A SET_IRQS request, already checked by the server role against the IRQ
 * info.  Takes the fds it keeps (sets their slot in @fds to -1).  Returns
 * 0 or a negative errno: -EINVAL, -ENOTSUP (loopback triggering, or
 * masking anything but INTx).
 */
int devvm_irqfds_set(struct devvm_irqfds *q, const struct devvm_irq_set *set,
                     int *fds, uint32_t nfds);

/* Edge on @index/@vector: 1 signalled, 0 no eventfd, -errno. */
int devvm_irqfds_signal(struct devvm_irqfds *q, uint32_t index,
                        uint32_t vector);
/* INTx line level. */
void devvm_irqfds_intx(struct devvm_irqfds *q, int level);

/*
 * What a device asks for on @index/@vector, as an IRQ event (ring.h's
 * DEVVM_IRQ_LOWER, RAISE or PULSE, already checked): INTx follows the
 * level (PULSE: up and down), MSI and MSI-X vectors signal on RAISE and
 * PULSE.  Returns what devvm_irqfds_signal() returned, or 1 for INTx.
 */
int devvm_irqfds_action(struct devvm_irqfds *q, uint32_t index,
                        uint32_t vector, uint32_t action);

#endif /* LIBDEVVM_IRQFDS_H */
