/*
 * devvm-coordinator: host cores.  The coordinator may use the CPUs it
 * was started on.  Exclusive cores go to device VMs' vCPUs, one each,
 * and leave every other process the coordinator starts; @keep cores
 * always stay for the rest (clients, gateways, QEMU's own threads).
 * Shared device VMs get CPU quotas on the remaining cores, at most 100%
 * of each in total.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef DEVVM_COORD_CORES_H
#define DEVVM_COORD_CORES_H

#include <glib.h>
#include <sched.h>
#include <stdbool.h>

typedef struct CoordCores {
    cpu_set_t host;             /* what the coordinator may use */
    cpu_set_t exclusive;        /* given to device VMs */
    unsigned keep;              /* cores never given exclusively */
    unsigned shared_percent;    /* sum of the shared quotas */
} CoordCores;

/* From this process's affinity.  False with @errp if it cannot be read
 * or @keep leaves nothing. */
bool coord_cores_init(CoordCores *c, unsigned keep, GError **errp);

/*
 * Take an exclusive core for @who ("device crypto0"): the highest free
 * one.  Otherwise false, with the numbers in @errp ("device crypto0
 * needs an exclusive core; 1 of 2 cores is free and 1 is kept for
 * clients").
 */
bool coord_cores_take_exclusive(CoordCores *c, const char *who, int *cpu,
                                GError **errp);
void coord_cores_put_exclusive(CoordCores *c, int cpu);

/* Take @percent of one core's time on the shared cores for @who. */
bool coord_cores_take_shared(CoordCores *c, const char *who,
                             unsigned percent, GError **errp);
void coord_cores_put_shared(CoordCores *c, unsigned percent);

/* The cores that are not exclusive: where everything else runs. */
void coord_cores_shared_set(const CoordCores *c, cpu_set_t *set);

/* @set as a Linux CPU list ("0-1,4"). */
char *coord_cpu_list(const cpu_set_t *set);

#endif /* DEVVM_COORD_CORES_H */
