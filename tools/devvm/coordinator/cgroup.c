/*
 * devvm-coordinator: cgroups (cgroup.h).
 *
 * The parts common to every version (directories, joining, removal)
 * are here once; a backend knows where its hierarchies are and how its
 * limits are written.  Only v1 is written so far; a v2 backend is the
 * same three functions on one unified directory (cpu.max, memory.max,
 * cpuset.cpus).  v1's cpuset hierarchy is used when it is mounted: it
 * keeps a device's threads on the cores it was given even if its code
 * calls sched_setaffinity() itself.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <sys/stat.h>
#include <string.h>
#include <unistd.h>

#include "cgroup.h"
#include "cores.h"

#define CG_MAX_DIRS         3
#define CG_CPU_PERIOD_US    100000

typedef struct CoordCgroupBackend {
    const char *name;
    /* find the hierarchies: fill cgs->ctl[] and cgs->parent[] */
    bool (*find)(CoordCgroups *cgs, GError **errp);
    bool (*set_limits)(CoordCgroup *cg, unsigned cpu_percent,
                       guint64 mem_bytes, const cpu_set_t *cpus,
                       GError **errp);
    char *(*read_limits)(const CoordCgroup *cg);
} CoordCgroupBackend;

struct CoordCgroups {
    const CoordCgroupBackend *backend;  /* NULL: none */
    unsigned n;
    char *ctl[CG_MAX_DIRS];     /* controller of each hierarchy */
    char *parent[CG_MAX_DIRS];  /* the coordinator's own cgroup there */
    char *base[CG_MAX_DIRS];    /* parent/devvm-coordinator.PID */
    char *description;
};

struct CoordCgroup {
    CoordCgroups *cgs;
    char *leaf;
    char *dir[CG_MAX_DIRS];
    int procs_fd[CG_MAX_DIRS];
};

/* ---- files ------------------------------------------------------------- */

static bool cg_write(const char *dir, const char *file, const char *value,
                     GError **errp)
{
    g_autofree char *path = g_build_filename(dir, file, NULL);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    size_t len = strlen(value);
    ssize_t n;

    if (fd < 0) {
        g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(errno),
                    "cgroup: cannot open %s: %s", path, g_strerror(errno));
        return false;
    }
    n = write(fd, value, len);
    if (n != (ssize_t)len) {
        int err = n < 0 ? errno : EIO;

        close(fd);
        g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(err),
                    "cgroup: cannot write '%s' to %s: %s", value, path,
                    g_strerror(err));
        return false;
    }
    close(fd);
    return true;
}

static char *cg_read(const char *dir, const char *file)
{
    g_autofree char *path = g_build_filename(dir, file, NULL);
    char *text = NULL;

    if (!g_file_get_contents(path, &text, NULL, NULL)) {
        return g_strdup("?");
    }
    return g_strstrip(text);
}

/*
 * A new v1 cpuset has no cpus and no mems, so no task may join: give
 * @dir the mems of @from and @cpus (NULL: those of @from too).
 */
static bool cg_cpuset_fill(const char *dir, const char *from,
                           const char *cpus, GError **errp)
{
    g_autofree char *mems = cg_read(from, "cpuset.mems");
    g_autofree char *from_cpus = cpus ? NULL : cg_read(from, "cpuset.cpus");

    return cg_write(dir, "cpuset.mems", mems, errp) &&
           cg_write(dir, "cpuset.cpus", cpus ? cpus : from_cpus, errp);
}

/* ---- v1 ---------------------------------------------------------------- */

/* cpuset is optional */
static const char *const v1_controllers[] = { "cpu", "memory", "cpuset" };

/* Whether the comma-separated @list has @word. */
static bool cg_list_has(const char *list, const char *word)
{
    g_auto(GStrv) items = g_strsplit(list, ",", -1);

    return g_strv_contains((const char *const *)items, word);
}

/*
 * The v1 mount of @ctl (from /proc/self/mountinfo) and the cgroup this
 * process is in there (from /proc/self/cgroup): the directory of that
 * cgroup, or NULL.
 */
static char *v1_own_dir(const char *ctl, const char *mountinfo,
                        const char *self, GError **errp)
{
    g_auto(GStrv) mounts = g_strsplit(mountinfo, "\n", -1);
    g_auto(GStrv) groups = g_strsplit(self, "\n", -1);
    const char *path = NULL;
    guint i;

    for (i = 0; groups[i]; i++) {
        g_auto(GStrv) f = g_strsplit(groups[i], ":", 3);

        if (g_strv_length(f) == 3 && *f[1] && cg_list_has(f[1], ctl)) {
            path = groups[i] + strlen(f[0]) + strlen(f[1]) + 2;
            break;
        }
    }
    if (!path) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                    "no cgroup v1 '%s' hierarchy in /proc/self/cgroup", ctl);
        return NULL;
    }
    for (i = 0; mounts[i]; i++) {
        /* ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS ... - FSTYPE SRC SUPER */
        g_auto(GStrv) f = g_strsplit(mounts[i], " ", -1);
        const char *sep = strstr(mounts[i], " - ");
        g_auto(GStrv) tail = NULL;
        const char *rel;

        if (!sep || g_strv_length(f) < 5) {
            continue;
        }
        tail = g_strsplit(sep + 3, " ", 3);
        if (g_strv_length(tail) < 3 || strcmp(tail[0], "cgroup") ||
            !cg_list_has(tail[2], ctl)) {
            continue;
        }
        /* the part of our path below the mount's root */
        if (!strcmp(f[3], "/")) {
            rel = path;
        } else if (g_str_has_prefix(path, f[3])) {
            rel = path + strlen(f[3]);
        } else {
            continue;
        }
        return g_build_filename(f[4], rel, NULL);
    }
    g_set_error(errp, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                "the cgroup v1 '%s' hierarchy is not mounted", ctl);
    return NULL;
}

static bool v1_find(CoordCgroups *cgs, GError **errp)
{
    g_autofree char *mountinfo = NULL, *self = NULL;
    guint i;

    if (!g_file_get_contents("/proc/self/mountinfo", &mountinfo, NULL,
                             errp) ||
        !g_file_get_contents("/proc/self/cgroup", &self, NULL, errp)) {
        return false;
    }
    for (i = 0; i < G_N_ELEMENTS(v1_controllers); i++) {
        g_autoptr(GError) err = NULL;
        char *dir = v1_own_dir(v1_controllers[i], mountinfo, self, &err);

        if (!dir && !strcmp(v1_controllers[i], "cpuset")) {
            continue;
        }
        if (!dir) {
            g_propagate_error(errp, g_steal_pointer(&err));
            return false;
        }
        cgs->ctl[cgs->n] = g_strdup(v1_controllers[i]);
        cgs->parent[cgs->n++] = dir;
    }
    return true;
}

static bool v1_set_limits(CoordCgroup *cg, unsigned cpu_percent,
                          guint64 mem_bytes, const cpu_set_t *cpus,
                          GError **errp)
{
    unsigned i;

    for (i = 0; i < cg->cgs->n; i++) {
        g_autofree char *v = NULL;

        if (!strcmp(cg->cgs->ctl[i], "cpuset")) {
            v = cpus ? coord_cpu_list(cpus) : NULL;
            if (!cg_cpuset_fill(cg->dir[i], cg->cgs->base[i], v, errp)) {
                return false;
            }
        } else if (!strcmp(cg->cgs->ctl[i], "cpu") && cpu_percent) {
            v = g_strdup_printf("%u", CG_CPU_PERIOD_US);
            if (!cg_write(cg->dir[i], "cpu.cfs_period_us", v, errp)) {
                return false;
            }
            g_free(v);
            v = g_strdup_printf("%u", CG_CPU_PERIOD_US / 100 * cpu_percent);
            if (!cg_write(cg->dir[i], "cpu.cfs_quota_us", v, errp)) {
                return false;
            }
        } else if (!strcmp(cg->cgs->ctl[i], "memory") && mem_bytes) {
            v = g_strdup_printf("%" G_GUINT64_FORMAT, mem_bytes);
            if (!cg_write(cg->dir[i], "memory.limit_in_bytes", v, errp)) {
                return false;
            }
        }
    }
    return true;
}

static char *v1_read_limits(const CoordCgroup *cg)
{
    g_autofree char *quota = NULL, *period = NULL, *mem = NULL;
    g_autofree char *cpus = NULL;
    unsigned i;

    for (i = 0; i < cg->cgs->n; i++) {
        if (!strcmp(cg->cgs->ctl[i], "cpu")) {
            quota = cg_read(cg->dir[i], "cpu.cfs_quota_us");
            period = cg_read(cg->dir[i], "cpu.cfs_period_us");
        } else if (!strcmp(cg->cgs->ctl[i], "memory")) {
            mem = cg_read(cg->dir[i], "memory.limit_in_bytes");
        } else if (!strcmp(cg->cgs->ctl[i], "cpuset")) {
            cpus = cg_read(cg->dir[i], "cpuset.cpus");
        }
    }
    return g_strdup_printf("cpu.cfs_quota_us %s of cpu.cfs_period_us %s, "
                           "memory.limit_in_bytes %s%s%s", quota, period, mem,
                           cpus ? ", cpuset.cpus " : "", cpus ? cpus : "");
}

static const CoordCgroupBackend cg_v1 = {
    .name = "v1",
    .find = v1_find,
    .set_limits = v1_set_limits,
    .read_limits = v1_read_limits,
};

/* ---- common ------------------------------------------------------------ */

static void cg_forget_dirs(CoordCgroups *cgs)
{
    unsigned i;

    for (i = 0; i < cgs->n; i++) {
        g_clear_pointer(&cgs->ctl[i], g_free);
        g_clear_pointer(&cgs->parent[i], g_free);
        g_clear_pointer(&cgs->base[i], g_free);
    }
    cgs->n = 0;
}

static bool cg_make_base(CoordCgroups *cgs, GError **errp)
{
    g_autofree char *name = g_strdup_printf("devvm-coordinator.%d",
                                            (int)getpid());
    unsigned i;

    for (i = 0; i < cgs->n; i++) {
        cgs->base[i] = g_build_filename(cgs->parent[i], name, NULL);
        if (mkdir(cgs->base[i], 0755) < 0) {
            g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(errno),
                        "cannot make the cgroup %s: %s", cgs->base[i],
                        g_strerror(errno));
            while (i-- > 0) {
                rmdir(cgs->base[i]);
            }
            return false;
        }
        /* a cpuset: what the coordinator itself may use */
        if (!strcmp(cgs->ctl[i], "cpuset") &&
            !cg_cpuset_fill(cgs->base[i], cgs->parent[i], NULL, errp)) {
            do {
                rmdir(cgs->base[i]);
            } while (i-- > 0);
            return false;
        }
    }
    return true;
}

CoordCgroups *coord_cgroups_open(CoordCgroupMode mode, GError **errp)
{
    CoordCgroups *cgs = g_new0(CoordCgroups, 1);
    g_autoptr(GError) err = NULL;
    GString *d;
    unsigned i;

    if (mode == COORD_CGROUP_NONE) {
        cgs->description = g_strdup("none (--cgroups=none): affinity only, "
                                    "no CPU quota or memory limit");
        return cgs;
    }
    if (!v1_find(cgs, &err) || !cg_make_base(cgs, &err)) {
        cg_forget_dirs(cgs);
        if (mode == COORD_CGROUP_V1) {
            g_propagate_prefixed_error(errp, g_steal_pointer(&err),
                                       "--cgroups=v1: ");
            g_free(cgs);
            return NULL;
        }
        cgs->description = g_strdup_printf(
            "none (%s%s): affinity only, no CPU quota or memory limit",
            err->message,
            g_file_test("/sys/fs/cgroup/cgroup.controllers",
                        G_FILE_TEST_EXISTS) ?
            "; cgroup v2 is not supported yet" : "");
        return cgs;
    }
    cgs->backend = &cg_v1;
    d = g_string_new("v1:");
    for (i = 0; i < cgs->n; i++) {
        g_string_append_printf(d, " %s %s", cgs->ctl[i], cgs->base[i]);
    }
    cgs->description = g_string_free(d, false);
    return cgs;
}

void coord_cgroups_close(CoordCgroups *cgs)
{
    unsigned i;

    if (!cgs) {
        return;
    }
    for (i = 0; i < cgs->n; i++) {
        if (rmdir(cgs->base[i]) < 0) {
            g_warning("cannot remove the cgroup %s: %s", cgs->base[i],
                      g_strerror(errno));
        }
    }
    cg_forget_dirs(cgs);
    g_free(cgs->description);
    g_free(cgs);
}

bool coord_cgroups_enabled(const CoordCgroups *cgs)
{
    return cgs->backend != NULL;
}

const char *coord_cgroups_describe(const CoordCgroups *cgs)
{
    return cgs->description;
}

static void cg_free(CoordCgroup *cg)
{
    unsigned i;

    for (i = 0; i < cg->cgs->n; i++) {
        if (cg->procs_fd[i] >= 0) {
            close(cg->procs_fd[i]);
        }
        g_free(cg->dir[i]);
    }
    g_free(cg->leaf);
    g_free(cg);
}

CoordCgroup *coord_cgroup_new(CoordCgroups *cgs, const char *leaf,
                              unsigned cpu_percent, guint64 mem_bytes,
                              const cpu_set_t *cpus, GError **errp)
{
    CoordCgroup *cg;
    unsigned i;

    if (!cgs->backend) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                    "no cgroups: %s", cgs->description);
        return NULL;
    }
    cg = g_new0(CoordCgroup, 1);
    cg->cgs = cgs;
    cg->leaf = g_strdup(leaf);
    for (i = 0; i < cgs->n; i++) {
        cg->procs_fd[i] = -1;
    }
    for (i = 0; i < cgs->n; i++) {
        g_autofree char *procs = NULL;

        cg->dir[i] = g_build_filename(cgs->base[i], leaf, NULL);
        if (mkdir(cg->dir[i], 0755) < 0) {
            g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(errno),
                        "cannot make the cgroup %s: %s", cg->dir[i],
                        g_strerror(errno));
            g_clear_pointer(&cg->dir[i], g_free);
            goto fail;
        }
        procs = g_build_filename(cg->dir[i], "cgroup.procs", NULL);
        cg->procs_fd[i] = open(procs, O_WRONLY | O_CLOEXEC);
        if (cg->procs_fd[i] < 0) {
            g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(errno),
                        "cannot open %s: %s", procs, g_strerror(errno));
            goto fail;
        }
    }
    if (!cgs->backend->set_limits(cg, cpu_percent, mem_bytes, cpus, errp)) {
        goto fail;
    }
    return cg;
fail:
    coord_cgroup_remove(cg, NULL);
    return NULL;
}

const int *coord_cgroup_join_fds(CoordCgroup *cg, unsigned *n)
{
    *n = cg->cgs->n;
    return cg->procs_fd;
}

void coord_cgroup_join_child(const int *fds, unsigned n)
{
    unsigned i;

    for (i = 0; i < n; i++) {
        /* "0" is the writing process, in v1 and v2 alike */
        if (write(fds[i], "0", 1) != 1) {
            continue;   /* the parent checks with coord_cgroup_has_pid() */
        }
    }
}

bool coord_cgroup_has_pid(CoordCgroup *cg, GPid pid, GError **errp)
{
    g_autofree char *want = g_strdup_printf("%d", (int)pid);
    unsigned i;

    for (i = 0; i < cg->cgs->n; i++) {
        g_autofree char *path = g_build_filename(cg->dir[i], "cgroup.procs",
                                                 NULL);
        g_autofree char *text = NULL;
        g_auto(GStrv) pids = NULL;

        if (!g_file_get_contents(path, &text, NULL, errp)) {
            return false;
        }
        pids = g_strsplit(text, "\n", -1);
        if (!g_strv_contains((const char *const *)pids, want)) {
            g_set_error(errp, G_IO_ERROR, G_IO_ERROR_FAILED,
                        "process %s did not join the cgroup %s", want,
                        cg->dir[i]);
            return false;
        }
    }
    return true;
}

char *coord_cgroup_describe(const CoordCgroup *cg)
{
    GString *s = g_string_new(NULL);
    unsigned i;

    for (i = 0; i < cg->cgs->n; i++) {
        g_string_append_printf(s, "%s%s:%s", i ? " " : "", cg->cgs->ctl[i],
                               cg->dir[i]);
    }
    return g_string_free(s, false);
}

bool coord_cgroup_set_cpus(CoordCgroup *cg, const cpu_set_t *cpus,
                           GError **errp)
{
    g_autofree char *list = coord_cpu_list(cpus);
    unsigned i;

    for (i = 0; i < cg->cgs->n; i++) {
        if (!strcmp(cg->cgs->ctl[i], "cpuset")) {
            g_autofree char *now = cg_read(cg->dir[i], "cpuset.cpus");

            return !strcmp(now, list) ||
                   cg_write(cg->dir[i], "cpuset.cpus", list, errp);
        }
    }
    return true;
}

char *coord_cgroup_read_limits(const CoordCgroup *cg)
{
    return cg->cgs->backend->read_limits(cg);
}

bool coord_cgroup_remove(CoordCgroup *cg, GError **errp)
{
    bool ok = true;
    unsigned i;

    for (i = 0; i < cg->cgs->n; i++) {
        if (cg->dir[i] && rmdir(cg->dir[i]) < 0 && errno != ENOENT) {
            if (ok) {
                g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(errno),
                            "cannot remove the cgroup %s: %s", cg->dir[i],
                            g_strerror(errno));
            }
            ok = false;
        }
    }
    cg_free(cg);
    return ok;
}
