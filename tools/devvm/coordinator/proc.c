/*
 * devvm-coordinator: the processes it starts (proc.h).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <errno.h>
#include <fcntl.h>
#include <glib-unix.h>
#include <gio/gunixinputstream.h>
#include <signal.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proc.h"

#define PROC_MAX_CGROUP_FDS 4

/*
 * How a child's exit is seen.  Each child is spawned without GLib
 * reaping it; its pidfd is watched in the main loop, and once it is
 * readable waitid(WNOWAIT) gives the exit status without reaping, so
 * the exit callback runs at once.  The reap itself is left to a thread
 * of its own: on this project's 6.18 development kernel, reaping a
 * multithreaded child (the gateway, killed under load) was seen to spin
 * in the kernel for 30 s, flushing the child's /proc dentries
 * (release_task -> proc_flush_pid -> shrink_dcache_parent), and GLib's
 * child watch, which reaps before it reports, held every exit back for
 * that long.
 */
struct CoordProc {
    char *what;
    GPid pid;
    int pidfd;                  /* until the exit: then the reaper's */
    guint pidfd_watch;
    gint64 started;             /* g_get_monotonic_time() */
    bool exited;
    char *exit_str;
    guint kill_timer;
    GInputStream *out, *err;    /* the stdout and stderr pipes, or NULL */
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

/* A reaper thread: reap the exited child behind the pidfd @data. */
static void proc_reap(gpointer data, gpointer unused)
{
    int pidfd = GPOINTER_TO_INT(data);
    siginfo_t si;

    while (waitid(P_PIDFD, pidfd, &si, WEXITED) < 0 && errno == EINTR) {
        ;
    }
    close(pidfd);
}

static GThreadPool *proc_reapers(void)
{
    static GThreadPool *pool;

    if (!pool) {
        /* as many threads as reaps at once: a slow one holds no other */
        pool = g_thread_pool_new(proc_reap, NULL, -1, FALSE, NULL);
    }
    return pool;
}

static gboolean proc_pidfd_ready(gint fd, GIOCondition cond, gpointer data)
{
    CoordProc *p = data;
    siginfo_t si = { 0 };

    if (waitid(P_PIDFD, p->pidfd, &si, WEXITED | WNOHANG | WNOWAIT) < 0) {
        if (errno == EINTR) {
            return G_SOURCE_CONTINUE;
        }
        /* cannot be: the child is ours and nobody else reaps it */
        p->exit_str = g_strdup_printf("ended, status unknown (waitid: %s)",
                                      g_strerror(errno));
    } else if (!si.si_pid) {
        return G_SOURCE_CONTINUE;
    } else if (si.si_code == CLD_EXITED) {
        p->exit_str = g_strdup_printf("exited with status %d", si.si_status);
    } else if (si.si_code == CLD_KILLED || si.si_code == CLD_DUMPED) {
        p->exit_str = g_strdup_printf("killed by signal %d", si.si_status);
    } else {
        p->exit_str = g_strdup_printf("ended (si_code %d, status %d)",
                                      si.si_code, si.si_status);
    }
    p->pidfd_watch = 0;
    p->exited = true;
    g_thread_pool_push(proc_reapers(), GINT_TO_POINTER(p->pidfd), NULL);
    p->pidfd = -1;
    if (p->kill_timer) {
        g_source_remove(p->kill_timer);
        p->kill_timer = 0;
    }
    g_message("%s (pid %d) %s", p->what, (int)p->pid, p->exit_str);
    p->on_exit(p, p->opaque);
    return G_SOURCE_REMOVE;
}

/* @path for stdout or stderr, created anew; -1 with @errp set. */
static int proc_open_log(const char *path, const char *what, GError **errp)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

    if (fd < 0) {
        g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(errno),
                    "cannot start %s: its log %s: %s", what, path,
                    g_strerror(errno));
    }
    return fd;
}

CoordProc *coord_proc_spawn(const CoordSpawn *s, CoordProcExitFn on_exit,
                            gpointer opaque, GError **errp)
{
    ProcChildSetup cs = { .cpus = *s->cpus };
    g_autofree char *cmd = g_strjoinv(" ", (char **)s->argv);
    int in_fd = -1, log_fd = -1, out_pipe = -1, err_pipe = -1;
    GPid pid;
    CoordProc *p = NULL;
    bool ok;

    g_assert(!s->stderr_pipe || s->stdout_pipe);
    if (s->cgroup) {
        unsigned n, i;
        const int *fds = coord_cgroup_join_fds(s->cgroup, &n);

        for (i = 0; i < n && i < PROC_MAX_CGROUP_FDS; i++) {
            cs.cgroup_fds[i] = fds[i];
        }
        cs.n_cgroup_fds = i;
    }
    in_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (in_fd < 0) {
        g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(errno),
                    "cannot start %s: /dev/null: %s", s->what,
                    g_strerror(errno));
        return NULL;
    }
    /*
     * stdout to the pipe or the log; stderr to its pipe, or the log (with
     * a stdout pipe, the caller copies its stderr pipe there)
     */
    if (!s->stderr_pipe) {
        log_fd = proc_open_log(s->log_path, s->what, errp);
        if (log_fd < 0) {
            close(in_fd);
            return NULL;
        }
    }
    g_message("starting %s: %s", s->what, cmd);
    ok = g_spawn_async_with_pipes_and_fds(
        NULL, s->argv, NULL,
        G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_SEARCH_PATH |
        G_SPAWN_CLOEXEC_PIPES, proc_child_setup, &cs, in_fd,
        s->stdout_pipe ? -1 : log_fd, s->stderr_pipe ? -1 : log_fd,
        NULL, NULL, 0, &pid, NULL, s->stdout_pipe ? &out_pipe : NULL,
        s->stderr_pipe ? &err_pipe : NULL, errp);
    close(in_fd);
    if (log_fd >= 0) {
        close(log_fd);
    }
    if (!ok) {
        g_prefix_error(errp, "cannot start %s: ", s->what);
        return NULL;
    }

    p = g_new0(CoordProc, 1);
    p->what = g_strdup(s->what);
    p->pid = pid;
    p->on_exit = on_exit;
    p->opaque = opaque;
    p->started = g_get_monotonic_time();
    p->out = out_pipe < 0 ? NULL : g_unix_input_stream_new(out_pipe, TRUE);
    p->err = err_pipe < 0 ? NULL : g_unix_input_stream_new(err_pipe, TRUE);
    p->pidfd = pidfd_open(pid, 0);
    if (p->pidfd < 0) {
        /* a kernel before 5.3: the child would be watched by nobody */
        g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(errno),
                    "cannot watch %s (pid %d): pidfd_open: %s", s->what,
                    (int)pid, g_strerror(errno));
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        p->exited = true;
        coord_proc_free(p);
        return NULL;
    }
    p->pidfd_watch = g_unix_fd_add(p->pidfd, G_IO_IN, proc_pidfd_ready, p);
    return p;
}

void coord_proc_free(CoordProc *p)
{
    if (!p) {
        return;
    }
    g_assert(p->exited);
    g_clear_object(&p->out);
    g_clear_object(&p->err);
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
    return p->out;
}

GInputStream *coord_proc_stderr(CoordProc *p)
{
    return p->err;
}

const char *coord_proc_exit_str(const CoordProc *p)
{
    return p->exit_str;
}

double coord_proc_uptime(const CoordProc *p)
{
    return (g_get_monotonic_time() - p->started) / 1e6;
}

/* Signal @p while it runs (its pidfd: never a reused pid). */
static void proc_signal(CoordProc *p, int sig)
{
    if (!p->exited && pidfd_send_signal(p->pidfd, sig, NULL, 0) < 0 &&
        errno != ESRCH) {
        g_warning("cannot signal %s (pid %d): %s", p->what, (int)p->pid,
                  g_strerror(errno));
    }
}

static gboolean proc_kill(gpointer data)
{
    CoordProc *p = data;

    p->kill_timer = 0;
    if (!p->exited) {
        g_warning("%s (pid %d) is still there after SIGTERM: SIGKILL",
                  p->what, (int)p->pid);
        proc_signal(p, SIGKILL);
    }
    return G_SOURCE_REMOVE;
}

void coord_proc_stop(CoordProc *p, guint grace_ms)
{
    if (p->exited || p->kill_timer) {
        return;
    }
    proc_signal(p, SIGTERM);
    proc_signal(p, SIGCONT);    /* a stopped one must see it */
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
