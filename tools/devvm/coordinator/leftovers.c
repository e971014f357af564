/*
 * devvm-coordinator: what a coordinator that did not stop cleanly (killed
 * with SIGKILL, crashed) left in the run directory, found by the next
 * one at start, shown by status, removed by the cleanup command.
 *
 * Its children had PR_SET_PDEATHSIG (SIGTERM) and QEMU's
 * exit-with-parent, so they normally exit with it; a process may still
 * be exiting, or be stopped or stuck, when the next coordinator starts.
 * What is always left: RUN/state.json (removed on a clean exit: its
 * presence is the sign), the clients' and device VMs' directories (logs,
 * sockets), the stale control socket (replaced at start), and its cgroups
 * BASE/devvm-coordinator.PID/LEAF in each hierarchy.
 *
 * Processes are only ever taken from state.json (and its own leftovers
 * of an earlier coordinator) or from the cgroup.procs of the dead
 * coordinator's own cgroups, by pid, and only while /proc/PID/cmdline
 * still names the run directory: a pid reused by another program is left
 * alone.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <signal.h>
#include <sys/stat.h>

#include "coordinator.h"

#define LEFT_KILL_WAIT_MS   1000

typedef struct LeftProc {
    int pid;
    char *what;
} LeftProc;

struct Leftovers {
    int pid;                    /* the coordinator that left them */
    char *saved;                /* when it last wrote state.json */
    GPtrArray *procs;           /* LeftProc * */
    GPtrArray *cgroups;         /* char *: leaves before their parent */
    GPtrArray *dirs;            /* char *: RUN/clients/X, RUN/devices/Y */
};

static void left_proc_free(gpointer data)
{
    LeftProc *p = data;

    g_free(p->what);
    g_free(p);
}

void leftovers_free(Leftovers *l)
{
    if (!l) {
        return;
    }
    g_free(l->saved);
    g_ptr_array_free(l->procs, true);
    g_ptr_array_free(l->cgroups, true);
    g_ptr_array_free(l->dirs, true);
    g_free(l);
}

/* Whether @pid runs (not a zombie) with the run directory on its
 * command line. */
static bool left_proc_ours(Coord *co, int pid)
{
    g_autofree char *path = g_strdup_printf("/proc/%d/cmdline", pid);
    g_autofree char *stat_path = g_strdup_printf("/proc/%d/stat", pid);
    g_autofree char *cmdline = NULL, *stat = NULL;
    g_autofree char *needle = g_strconcat(co->run_dir, "/", NULL);
    const char *st;
    gsize len, i;

    if (pid <= 1 || pid == getpid() ||
        !g_file_get_contents(path, &cmdline, &len, NULL) ||
        !g_file_get_contents(stat_path, &stat, NULL, NULL)) {
        return false;
    }
    st = strrchr(stat, ')');
    if (!st || st[1] != ' ' || st[2] == 'Z' || st[2] == 'X') {
        return false;   /* exited: a zombie its new parent will reap */
    }
    for (i = 0; i + 1 < len; i++) {
        if (!cmdline[i]) {
            cmdline[i] = ' ';
        }
    }
    return strstr(cmdline, needle) != NULL;
}

static void left_add_proc(Coord *co, Leftovers *l, int pid,
                          const char *what)
{
    LeftProc *p;
    guint i;

    for (i = 0; i < l->procs->len; i++) {
        if (((LeftProc *)l->procs->pdata[i])->pid == pid) {
            return;
        }
    }
    if (!left_proc_ours(co, pid)) {
        return;
    }
    p = g_new0(LeftProc, 1);
    p->pid = pid;
    p->what = g_strdup(what);
    g_ptr_array_add(l->procs, p);
}

/* Member @name of @o when it is an object (array), else NULL. */
static JsonObject *get_object(JsonObject *o, const char *name)
{
    JsonNode *n = json_object_get_member(o, name);

    return n && JSON_NODE_HOLDS_OBJECT(n) ? json_node_get_object(n) : NULL;
}

static JsonArray *get_array(JsonObject *o, const char *name)
{
    JsonNode *n = json_object_get_member(o, name);

    return n && JSON_NODE_HOLDS_ARRAY(n) ? json_node_get_array(n) : NULL;
}

/* The pid of a {"pid": N, "running": B} member, or 0. */
static int state_pid(JsonObject *o, const char *member)
{
    JsonObject *p = get_object(o, member);

    if (!p || !json_object_get_boolean_member_with_default(p, "running",
                                                           false)) {
        return 0;
    }
    return json_object_get_int_member_with_default(p, "pid", 0);
}

/*
 * A cgroup directory a dead coordinator made: under /sys/fs/cgroup,
 * named devvm-coordinator.PID (not ours), not a symlink.
 */
static void left_add_cgroup(Coord *co, Leftovers *l, const char *base)
{
    g_autofree char *bn = g_path_get_basename(base);
    g_autoptr(GDir) d = NULL;
    const char *leaf;
    guint64 pid;
    struct stat st;
    guint i;

    if (!g_str_has_prefix(base, "/sys/fs/cgroup/") || strstr(base, "/../") ||
        !g_str_has_prefix(bn, "devvm-coordinator.") ||
        !g_ascii_string_to_unsigned(bn + strlen("devvm-coordinator."), 10,
                                    1, G_MAXINT, &pid, NULL) ||
        pid == (guint64)getpid() || lstat(base, &st) < 0 ||
        !S_ISDIR(st.st_mode)) {
        return;
    }
    for (i = 0; i < l->cgroups->len; i++) {
        if (!strcmp(l->cgroups->pdata[i], base)) {
            return;
        }
    }
    d = g_dir_open(base, 0, NULL);
    while (d && (leaf = g_dir_read_name(d))) {
        g_autofree char *sub = g_build_filename(base, leaf, NULL);
        g_autofree char *procs = g_build_filename(sub, "cgroup.procs",
                                                  NULL);
        g_autofree char *text = NULL;
        g_auto(GStrv) lines = NULL;
        char **p;

        if (lstat(sub, &st) < 0 || !S_ISDIR(st.st_mode)) {
            continue;
        }
        if (g_file_get_contents(procs, &text, NULL, NULL)) {
            lines = g_strsplit(text, "\n", -1);
            for (p = lines; *p; p++) {
                g_autofree char *what = g_strdup_printf("in cgroup %s", sub);

                if (**p) {
                    left_add_proc(co, l, atoi(*p), what);
                }
            }
        }
        g_ptr_array_add(l->cgroups, g_steal_pointer(&sub));
    }
    g_ptr_array_add(l->cgroups, g_strdup(base));
}

/* "v1: cpu BASE memory BASE": the bases */
static void left_add_cgroups(Coord *co, Leftovers *l, const char *desc)
{
    g_auto(GStrv) words = NULL;
    guint i;

    if (!desc || !g_str_has_prefix(desc, "v1: ")) {
        return;
    }
    words = g_strsplit(desc + 4, " ", -1);
    for (i = 0; words[i] && words[i + 1]; i += 2) {
        left_add_cgroup(co, l, words[i + 1]);
    }
}

/* What state.json (or its "leftovers" member) names. */
static void left_read_state(Coord *co, Leftovers *l, JsonObject *st)
{
    JsonArray *clients = get_array(st, "clients");
    JsonArray *devs = get_array(st, "device-vms");
    JsonObject *older = get_object(st, "leftovers");
    guint i;

    for (i = 0; clients && i < json_array_get_length(clients); i++) {
        JsonObject *c = json_array_get_object_element(clients, i);
        g_autofree char *what = g_strdup_printf(
            "client %s", json_object_get_string_member_with_default(
                c, "name", "?"));

        left_add_proc(co, l, state_pid(c, "qemu"), what);
    }
    for (i = 0; devs && i < json_array_get_length(devs); i++) {
        JsonObject *d = json_array_get_object_element(devs, i);
        const char *id = json_object_get_string_member_with_default(d, "id",
                                                                    "?");
        g_autofree char *vm = g_strdup_printf("device VM %s", id);
        g_autofree char *gw = g_strdup_printf("gateway of %s", id);

        left_add_proc(co, l, state_pid(d, "vm"), vm);
        left_add_proc(co, l, state_pid(d, "gateway"), gw);
    }
    left_add_cgroups(co, l, json_object_get_string_member_with_default(
                                st, "cgroups", NULL));
    if (older) {
        /* a coordinator stopped before it cleaned up after another */
        JsonArray *procs = get_array(older, "processes");
        JsonArray *cgs = get_array(older, "cgroups");
        int opid = json_object_get_int_member_with_default(
            older, "coordinator-pid", 0);

        if (!clients || !json_array_get_length(clients)) {
            l->pid = opid;      /* they are that one's */
        }

        for (i = 0; procs && i < json_array_get_length(procs); i++) {
            JsonObject *p = json_array_get_object_element(procs, i);

            left_add_proc(co, l, json_object_get_int_member_with_default(
                                     p, "pid", 0),
                          json_object_get_string_member_with_default(
                              p, "what", "?"));
        }
        for (i = 0; cgs && i < json_array_get_length(cgs); i++) {
            const char *dir = json_array_get_string_element(cgs, i);
            g_autofree char *parent = dir ? g_path_get_dirname(dir) : NULL;
            g_autofree char *bn = parent ? g_path_get_basename(parent)
                                         : NULL;

            /* bases, and leaves (whose base is listed too) */
            if (bn && !g_str_has_prefix(bn, "devvm-coordinator.")) {
                left_add_cgroup(co, l, dir);
            }
        }
    }
}

static void left_add_dirs(Coord *co, Leftovers *l, const char *sub)
{
    g_autofree char *dir = g_build_filename(co->run_dir, sub, NULL);
    g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
    const char *name;

    while (d && (name = g_dir_read_name(d))) {
        g_ptr_array_add(l->dirs, g_build_filename(dir, name, NULL));
    }
}

Leftovers *leftovers_find(Coord *co)
{
    g_autofree char *path = g_build_filename(co->run_dir, "state.json",
                                             NULL);
    g_autoptr(JsonParser) parser = json_parser_new();
    g_autoptr(GError) err = NULL;
    Leftovers *l = g_new0(Leftovers, 1);
    struct stat st;

    l->procs = g_ptr_array_new_with_free_func(left_proc_free);
    l->cgroups = g_ptr_array_new_with_free_func(g_free);
    l->dirs = g_ptr_array_new_with_free_func(g_free);
    if (stat(path, &st) == 0) {
        g_autoptr(GDateTime) t = g_date_time_new_from_unix_local(st.st_mtime);

        l->saved = g_date_time_format_iso8601(t);
        if (!json_parser_load_from_file(parser, path, &err) ||
            !JSON_NODE_HOLDS_OBJECT(json_parser_get_root(parser))) {
            g_warning("%s: %s: what it names cannot be found", path,
                      err ? err->message : "not a JSON object");
        } else {
            JsonObject *o = json_node_get_object(json_parser_get_root(parser));

            l->pid = json_object_get_int_member_with_default(o, "pid", 0);
            left_read_state(co, l, o);
        }
    }
    left_add_dirs(co, l, "clients");
    left_add_dirs(co, l, "devices");
    if (!l->procs->len && !l->cgroups->len && !l->dirs->len) {
        if (l->saved) {
            g_message("coordinator %d did not stop cleanly, but left "
                      "nothing behind", l->pid);
        }
        leftovers_free(l);
        return NULL;
    }
    return l;
}

char *leftovers_describe(const Leftovers *l)
{
    GString *s = g_string_new(NULL);
    guint i;

    g_string_printf(s, "coordinator %d did not stop cleanly (state.json "
                    "of %s): it left %u process%s", l->pid,
                    l->saved ? l->saved : "(none)", l->procs->len,
                    l->procs->len == 1 ? "" : "es");
    for (i = 0; i < l->procs->len; i++) {
        LeftProc *p = l->procs->pdata[i];

        g_string_append_printf(s, "%s%d (%s)", i ? ", " : " ", p->pid,
                               p->what);
    }
    g_string_append_printf(s, ", %u cgroup%s, %u director%s", l->cgroups->len,
                           l->cgroups->len == 1 ? "" : "s", l->dirs->len,
                           l->dirs->len == 1 ? "y" : "ies");
    return g_string_free(s, false);
}

static void add_strings(JsonBuilder *b, const char *name, GPtrArray *a)
{
    guint i;

    json_builder_set_member_name(b, name);
    json_builder_begin_array(b);
    for (i = 0; i < a->len; i++) {
        json_builder_add_string_value(b, a->pdata[i]);
    }
    json_builder_end_array(b);
}

void leftovers_add_json(Coord *co, const Leftovers *l, JsonBuilder *b)
{
    guint i;

    json_builder_begin_object(b);
    json_builder_set_member_name(b, "coordinator-pid");
    json_builder_add_int_value(b, l->pid);
    json_builder_set_member_name(b, "saved");
    json_builder_add_string_value(b, l->saved ? l->saved : "");
    json_builder_set_member_name(b, "processes");
    json_builder_begin_array(b);
    for (i = 0; i < l->procs->len; i++) {
        LeftProc *p = l->procs->pdata[i];

        json_builder_begin_object(b);
        json_builder_set_member_name(b, "pid");
        json_builder_add_int_value(b, p->pid);
        json_builder_set_member_name(b, "what");
        json_builder_add_string_value(b, p->what);
        json_builder_set_member_name(b, "alive");
        json_builder_add_boolean_value(b, left_proc_ours(co, p->pid));
        json_builder_end_object(b);
    }
    json_builder_end_array(b);
    add_strings(b, "cgroups", l->cgroups);
    add_strings(b, "directories", l->dirs);
    json_builder_end_object(b);
}

/* Until none of @l's processes is ours any more, or @ms passed. */
static bool left_wait(Coord *co, Leftovers *l, guint ms)
{
    gint64 end = g_get_monotonic_time() + ms * 1000;
    guint i;

    for (;;) {
        bool any = false;

        for (i = 0; i < l->procs->len; i++) {
            any |= left_proc_ours(co, ((LeftProc *)l->procs->pdata[i])->pid);
        }
        if (!any) {
            return true;
        }
        if (g_get_monotonic_time() >= end) {
            return false;
        }
        g_usleep(COORD_POLL_MS * 1000);
    }
}

static void left_signal(Coord *co, Leftovers *l, int sig)
{
    guint i;

    for (i = 0; i < l->procs->len; i++) {
        LeftProc *p = l->procs->pdata[i];

        if (left_proc_ours(co, p->pid)) {
            g_message("cleanup: %s to %d (%s)", sig == SIGKILL ? "SIGKILL"
                      : "SIGTERM", p->pid, p->what);
            kill(p->pid, sig);
            if (sig == SIGTERM) {
                kill(p->pid, SIGCONT);  /* a stopped one must see it */
            }
        }
    }
}

/*
 * Stop @l's processes (SIGTERM, SIGKILL after COORD_STOP_GRACE_MS), then
 * remove its cgroups and directories.  Blocks the main loop for at most
 * about 4 s.  False with @errp when something stays; @l is then still
 * valid and complete.
 */
bool leftovers_cleanup(Coord *co, Leftovers *l, GError **errp)
{
    guint i;

    left_signal(co, l, SIGTERM);
    if (!left_wait(co, l, COORD_STOP_GRACE_MS)) {
        left_signal(co, l, SIGKILL);
        if (!left_wait(co, l, LEFT_KILL_WAIT_MS)) {
            g_set_error(errp, G_IO_ERROR, G_IO_ERROR_BUSY,
                        "cleanup: a process of coordinator %d is still "
                        "there after SIGKILL", l->pid);
            return false;
        }
    }
    for (i = 0; i < l->cgroups->len; i++) {
        const char *dir = l->cgroups->pdata[i];

        if (rmdir(dir) < 0 && errno != ENOENT) {
            g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(errno),
                        "cleanup: cannot remove the cgroup %s: %s", dir,
                        g_strerror(errno));
            return false;
        }
        g_message("cleanup: removed the cgroup %s", dir);
    }
    for (i = 0; i < l->dirs->len; i++) {
        if (!coord_remove_tree(l->dirs->pdata[i], errp)) {
            g_prefix_error(errp, "cleanup: ");
            return false;
        }
        g_message("cleanup: removed %s", (char *)l->dirs->pdata[i]);
    }
    return true;
}
