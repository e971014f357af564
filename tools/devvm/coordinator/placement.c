/*
 * devvm-coordinator: where the threads of what it started run.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "coordinator.h"

/*
 * Place every thread of every process the coordinator started: all of a
 * device's threads on its exclusive core when it has one, a shared
 * device's on the cores no one has exclusively, and the gateways' and
 * clients' there too.
 *
 * A device VM's main loop (its doorbells, timers, DMA window) is part of
 * the device: on the shared cores it competed with the clients it
 * serves, and on this project's test machines (Linux 6.18, cgroup v1,
 * autogroups) a client busy on core 0 left a device VM's main loop
 * runnable but not run for up to 30 s (in state R with no run time): no
 * heartbeat after READY, SIGTERM not acted on.  On its own core it
 * competes only with its own vCPU.
 *
 * The coordinator's own threads keep off the exclusive cores too: those
 * are the devices'.
 */
void coord_place_all(Coord *co)
{
    cpu_set_t shared;
    guint i;

    coord_cores_shared_set(&co->cores, &shared);
    coord_place_threads(getpid(), &shared);
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
            coord_place_threads(coord_proc_pid(d->gateway), &shared);
        }
        if (d->vm && coord_proc_running(d->vm)) {
            coord_place_threads(coord_proc_pid(d->vm), &allowed);
        }
    }
    for (i = 0; i < co->clients->len; i++) {
        Client *cl = co->clients->pdata[i];

        if (cl->qemu && coord_proc_running(cl->qemu)) {
            coord_place_threads(coord_proc_pid(cl->qemu), &shared);
        }
    }
}

