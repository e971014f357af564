/*
 * devvm-coordinator: CPU quotas and memory limits for device VMs through
 * cgroups.  One interface, one backend per cgroup version (as libvirt's
 * vircgroup.c does): v1 (separate cpu, memory and, if mounted, cpuset
 * hierarchies) is
 * implemented; on a v2-only host, or where no cgroup is writable, the
 * coordinator runs without cgroups ("affinity only") and says so.
 *
 * The coordinator's cgroups live under its own cgroup in each hierarchy
 * (from /proc/self/cgroup), so that whatever limits apply to it apply to
 * what it starts: BASE/devvm-coordinator.PID/LEAF.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef DEVVM_COORD_CGROUP_H
#define DEVVM_COORD_CGROUP_H

#include <glib.h>
#include <sched.h>
#include <stdbool.h>

typedef enum CoordCgroupMode {
    COORD_CGROUP_AUTO,          /* v1 when writable, else none */
    COORD_CGROUP_V1,            /* v1 or fail */
    COORD_CGROUP_NONE,          /* affinity only */
} CoordCgroupMode;

typedef struct CoordCgroups CoordCgroups;
typedef struct CoordCgroup CoordCgroup;

/*
 * Find the hierarchies and make the coordinator's own cgroup in each.
 * With COORD_CGROUP_AUTO this cannot fail: without usable cgroups it
 * returns a "none" set whose description says why.  NULL with @errp
 * set only when COORD_CGROUP_V1 was asked for and cannot be had.
 */
CoordCgroups *coord_cgroups_open(CoordCgroupMode mode, GError **errp);
/* Remove the coordinator's own cgroups (they must be empty). */
void coord_cgroups_close(CoordCgroups *cgs);
/* Whether quotas and limits are available. */
bool coord_cgroups_enabled(const CoordCgroups *cgs);
/* "v1: cpu /sys/fs/cgroup/cpu/..., memory ..." or "none: why" */
const char *coord_cgroups_describe(const CoordCgroups *cgs);

/*
 * Make the cgroup @leaf with a CPU quota of @cpu_percent of one core
 * (0: none), a memory limit of @mem_bytes (0: none) and, where the
 * cpuset controller is there, the cores @cpus (NULL: the coordinator's).
 */
CoordCgroup *coord_cgroup_new(CoordCgroups *cgs, const char *leaf,
                              unsigned cpu_percent, guint64 mem_bytes,
                              const cpu_set_t *cpus, GError **errp);
/* Change its cores (cpuset; nothing without the controller). */
bool coord_cgroup_set_cpus(CoordCgroup *cg, const cpu_set_t *cpus,
                           GError **errp);
/*
 * Open fds (close-on-exec) that a child writes "0" to, before exec, to
 * join the cgroup (coord_cgroup_join_child()).  *@n of them.
 */
const int *coord_cgroup_join_fds(CoordCgroup *cg, unsigned *n);
/* In a child between fork and exec: join.  Async-signal-safe. */
void coord_cgroup_join_child(const int *fds, unsigned n);
/* Whether process @pid is in every hierarchy's directory of @cg. */
bool coord_cgroup_has_pid(CoordCgroup *cg, GPid pid, GError **errp);
/* The directories, for people and tests ("cpu:PATH memory:PATH"). */
char *coord_cgroup_describe(const CoordCgroup *cg);
/* The quota and limit as read back from the files, for status. */
char *coord_cgroup_read_limits(const CoordCgroup *cg);
/* Remove @cg (its processes must have exited); frees it. */
bool coord_cgroup_remove(CoordCgroup *cg, GError **errp);

#endif /* DEVVM_COORD_CGROUP_H */
