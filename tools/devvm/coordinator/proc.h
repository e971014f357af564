/*
 * devvm-coordinator: the processes it starts (gateways, device VMs,
 * clients).  Each is watched from the main loop through its pidfd (and
 * reaped by a thread of its own: proc.c says why); it starts with the
 * host cores it may use, in its cgroup, with its output in its log file,
 * and dies with the coordinator (PR_SET_PDEATHSIG).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef DEVVM_COORD_PROC_H
#define DEVVM_COORD_PROC_H

#include <gio/gio.h>
#include <stdbool.h>

#include "cgroup.h"
#include "cores.h"

typedef struct CoordProc CoordProc;

/* Called once, from the main loop, when the process has exited. */
typedef void (*CoordProcExitFn)(CoordProc *proc, gpointer opaque);

typedef struct CoordSpawn {
    const char *what;           /* "gateway of testdev-1", for logs */
    const char *const *argv;
    const char *log_path;       /* stdout and stderr (created anew) */
    bool stdout_pipe;           /* stdout to coord_proc_stdout() instead */
    bool stderr_pipe;           /* stderr to coord_proc_stderr() instead
                                 * (the caller copies it to the log) */
    const cpu_set_t *cpus;      /* its affinity */
    CoordCgroup *cgroup;        /* or NULL */
} CoordSpawn;

CoordProc *coord_proc_spawn(const CoordSpawn *spawn, CoordProcExitFn on_exit,
                            gpointer opaque, GError **errp);
/* Free @proc: only after its exit callback ran. */
void coord_proc_free(CoordProc *proc);

GPid coord_proc_pid(const CoordProc *proc);
bool coord_proc_running(const CoordProc *proc);
const char *coord_proc_what(const CoordProc *proc);
/* The stdout pipe (stdout_pipe), or NULL. */
GInputStream *coord_proc_stdout(CoordProc *proc);
/* The stderr pipe (stderr_pipe), or NULL. */
GInputStream *coord_proc_stderr(CoordProc *proc);
/* "exited with status 1", "killed by signal 9"; NULL while running */
const char *coord_proc_exit_str(const CoordProc *proc);
/* Seconds since it started. */
double coord_proc_uptime(const CoordProc *proc);

/* SIGTERM (and SIGCONT) now, SIGKILL after @grace_ms if it is still
 * there. */
void coord_proc_stop(CoordProc *proc, guint grace_ms);

/*
 * Set the affinity of each thread of @pid to @cpus.  Threads that exit
 * meanwhile are skipped; other failures are logged.
 */
void coord_place_threads(GPid pid, const cpu_set_t *cpus);

/*
 * Remove the directory @path and what it holds (files, sockets, and
 * directories of such, not following symlinks); a missing @path is
 * fine.
 */
bool coord_remove_tree(const char *path, GError **errp);

/* The last @max bytes of the file at @path, or "" (for messages). */
char *coord_file_tail(const char *path, gsize max);

#endif /* DEVVM_COORD_PROC_H */
