/*
 * devvm-coordinator: the processes it starts (proc.h).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proc.h"

#define PROC_MAX_CGROUP_FDS 4

struct CoordProc {
    char *what;
    GSubprocess *sp;
    GPid pid;
    gint64 started;             /* g_get_monotonic_time() */
    bool exited;
    char *exit_str;
    guint kill_timer;
    CoordProcExitFn on_exit;
    gpointer opaque;
};

/* What the child does between fork and exec: async-signal-safe only. */
typedef struct ProcChildSetup {
    cpu_set_t cpus;
    int cgroup_fds[PROC_MAX_CGROUP_FDS];
    unsigned n_cgroup_fds;
} ProcChildSetup;

static void proc_child_setup(gpointer data)
{
    ProcChildSetup *cs = data;

    prctl(PR_SET_PDEATHSIG, SIGTERM);
    sched_setaffinity(0, sizeof(cs->cpus), &cs->cpus);
    coord_cgroup_join_child(cs->cgroup_fds, cs->n_cgroup_fds);
}

static void proc_exited(GObject *source, GAsyncResult *res, gpointer data)
{
    CoordProc *p = data;
    int status;

    g_subprocess_wait_finish(G_SUBPROCESS(source), res, NULL);
    status = g_subprocess_get_status(p->sp);
    p->exited = true;
    if (WIFEXITED(status)) {
        p->exit_str = g_strdup_printf("exited with status %d",
                                      WEXITSTATUS(status));
    } else if (WIFSIGNALED(status)) {
        p->exit_str = g_strdup_printf("killed by signal %d",
                                      WTERMSIG(status));
    } else {
        p->exit_str = g_strdup_printf("ended with wait status 0x%x", status);
    }
    if (p->kill_timer) {
        g_source_remove(p->kill_timer);
        p->kill_timer = 0;
    }
    g_message("%s (pid %d) %s", p->what, (int)p->pid, p->exit_str);
    p->on_exit(p, p->opaque);
}

CoordProc *coord_proc_spawn(const CoordSpawn *s, CoordProcExitFn on_exit,
                            gpointer opaque, GError **errp)
{
    g_autoptr(GSubprocessLauncher) l = NULL;
    ProcChildSetup *cs = g_new0(ProcChildSetup, 1);
    GSubprocessFlags flags;
    g_autofree char *cmd = g_strjoinv(" ", (char **)s->argv);
    CoordProc *p;

    cs->cpus = *s->cpus;
    if (s->cgroup) {
        unsigned n, i;
        const int *fds = coord_cgroup_join_fds(s->cgroup, &n);

        for (i = 0; i < n && i < PROC_MAX_CGROUP_FDS; i++) {
            cs->cgroup_fds[i] = fds[i];
        }
        cs->n_cgroup_fds = i;
    }
    flags = s->stdout_pipe ? G_SUBPROCESS_FLAGS_STDOUT_PIPE
                           : G_SUBPROCESS_FLAGS_STDERR_MERGE;
    if (s->stderr_pipe) {
        g_assert(s->stdout_pipe);
        flags |= G_SUBPROCESS_FLAGS_STDERR_PIPE;
    }
    l = g_subprocess_launcher_new(flags);
    g_subprocess_launcher_set_child_setup(l, proc_child_setup, cs, g_free);
    g_subprocess_launcher_set_stdin_file_path(l, "/dev/null");
    if (s->stderr_pipe) {
        /* the caller copies it to s->log_path */
    } else if (s->stdout_pipe) {
        g_subprocess_launcher_set_stderr_file_path(l, s->log_path);
    } else {
        g_subprocess_launcher_set_stdout_file_path(l, s->log_path);
    }

    p = g_new0(CoordProc, 1);
    p->what = g_strdup(s->what);
    p->on_exit = on_exit;
    p->opaque = opaque;
    g_message("starting %s: %s", s->what, cmd);
    p->sp = g_subprocess_launcher_spawnv(l, s->argv, errp);
    if (!p->sp) {
        g_prefix_error(errp, "cannot start %s: ", s->what);
        g_free(p->what);
        g_free(p);
        return NULL;
    }
    p->pid = atoi(g_subprocess_get_identifier(p->sp));
    p->started = g_get_monotonic_time();
    g_subprocess_wait_async(p->sp, NULL, proc_exited, p);
    return p;
}

void coord_proc_free(CoordProc *p)
{
    if (!p) {
        return;
    }
    g_assert(p->exited);
    g_object_unref(p->sp);
    g_free(p->what);
    g_free(p->exit_str);
    g_free(p);
}

GPid coord_proc_pid(const CoordProc *p)
{
    return p->pid;
}

bool coord_proc_running(const CoordProc *p)
{
    return !p->exited;
}

const char *coord_proc_what(const CoordProc *p)
{
    return p->what;
}

GInputStream *coord_proc_stdout(CoordProc *p)
{
    return g_subprocess_get_stdout_pipe(p->sp);
}

GInputStream *coord_proc_stderr(CoordProc *p)
{
    return g_subprocess_get_stderr_pipe(p->sp);
}

const char *coord_proc_exit_str(const CoordProc *p)
{
    return p->exit_str;
}

double coord_proc_uptime(const CoordProc *p)
{
    return (g_get_monotonic_time() - p->started) / 1e6;
}

static gboolean proc_kill(gpointer data)
{
    CoordProc *p = data;

    p->kill_timer = 0;
    if (!p->exited) {
        g_warning("%s (pid %d) is still there after SIGTERM: SIGKILL",
                  p->what, (int)p->pid);
        g_subprocess_force_exit(p->sp);
    }
    return G_SOURCE_REMOVE;
}

void coord_proc_stop(CoordProc *p, guint grace_ms)
{
    if (p->exited || p->kill_timer) {
        return;
    }
    g_subprocess_send_signal(p->sp, SIGTERM);
    g_subprocess_send_signal(p->sp, SIGCONT);  /* a stopped one must see it */
    p->kill_timer = g_timeout_add(grace_ms, proc_kill, p);
}

void coord_place_threads(GPid pid, const cpu_set_t *cpus)
{
    g_autofree char *dir = g_strdup_printf("/proc/%d/task", (int)pid);
    g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
    const char *tid;

    if (!d) {
        return;     /* it exited */
    }
    while ((tid = g_dir_read_name(d))) {
        if (sched_setaffinity(atoi(tid), sizeof(*cpus), cpus) < 0 &&
            errno != ESRCH) {
            g_warning("cannot set the CPU affinity of thread %s of process "
                      "%d: %s", tid, (int)pid, g_strerror(errno));
        }
    }
}

char *coord_file_tail(const char *path, gsize max)
{
    g_autofree char *text = NULL;
    gsize len;

    if (!g_file_get_contents(path, &text, &len, NULL)) {
        return g_strdup("");
    }
    if (len <= max) {
        return g_steal_pointer(&text);
    }
    return g_strdup(text + len - max);
}

bool coord_remove_tree(const char *path, GError **errp)
{
    g_autoptr(GDir) d = NULL;
    const char *name;
    struct stat st;

    if (lstat(path, &st) < 0) {
        if (errno == ENOENT) {
            return true;
        }
        g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(errno),
                    "cannot remove %s: %s", path, g_strerror(errno));
        return false;
    }
    if (!S_ISDIR(st.st_mode)) {
        if (unlink(path) < 0) {
            g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(errno),
                        "cannot remove %s: %s", path, g_strerror(errno));
            return false;
        }
        return true;
    }
    d = g_dir_open(path, 0, errp);
    if (!d) {
        return false;
    }
    while ((name = g_dir_read_name(d))) {
        g_autofree char *sub = g_build_filename(path, name, NULL);

        if (!coord_remove_tree(sub, errp)) {
            return false;
        }
    }
    if (rmdir(path) < 0) {
        g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(errno),
                    "cannot remove %s: %s", path, g_strerror(errno));
        return false;
    }
    return true;
}
