/*
 * devvm-coordinator: where the threads of what it started run.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "coordinator.h"

/*
 * Place every thread of every process the coordinator started: device
 * VMs' vCPUs on their exclusive cores, everything else on the cores no
 * one has exclusively; a process-mode device on its exclusive core
 * alone.  A device VM that is not READY (yet, or again)
 * keeps its own core in its other threads' set too, since QEMU checks
 * vcpu-affinity against its own affinity while it starts.
 */
void coord_place_all(Coord *co)
{
    cpu_set_t shared;
    guint i;

    coord_cores_shared_set(&co->cores, &shared);
    for (i = 0; i < co->devices->len; i++) {
        DeviceVM *d = co->devices->pdata[i];
        cpu_set_t allowed;

        device_allowed_cpus(d, &allowed);
        if (d->cgroup && !d->teardown) {
            /* first the cpuset: the kernel holds the threads to it */
            g_autoptr(GError) err = NULL;

            if (!coord_cgroup_set_cpus(d->cgroup, &allowed, &err)) {
                g_warning("device %s: %s", d->id, err->message);
            }
        }
        if (d->gateway && coord_proc_running(d->gateway)) {
            coord_place_threads(coord_proc_pid(d->gateway), NULL, &shared);
        }
        if (d->vm && coord_proc_running(d->vm) && d->entry->process) {
            /* a process-mode device: all of it on its core, if it has one */
            coord_place_threads(coord_proc_pid(d->vm), NULL, &allowed);
        } else if (d->vm && coord_proc_running(d->vm)) {
            cpu_set_t own, others = shared;

            CPU_ZERO(&own);
            if (d->core >= 0) {
                CPU_SET(d->core, &own);
                if (d->state != DEV_READY) {
                    CPU_SET(d->core, &others);
                }
            }
            coord_place_threads(coord_proc_pid(d->vm),
                                d->core >= 0 ? &own : NULL, &others);
        }
    }
    for (i = 0; i < co->clients->len; i++) {
        Client *cl = co->clients->pdata[i];

        if (cl->qemu && coord_proc_running(cl->qemu)) {
            coord_place_threads(coord_proc_pid(cl->qemu), NULL, &shared);
        }
    }
}

