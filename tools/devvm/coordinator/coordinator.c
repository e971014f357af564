/*
 * devvm-coordinator: the manager of client VMs and the device VMs that
 * serve them (Figures 2 and 3 of the design, docs/devvm/coordinator.rst).
 *
 *   devvm-coordinator --image PATH [--image PATH]... [--process PATH]...
 *                     [--run-dir DIR]
 *                     [--qemu PATH] [--gateway PATH] [--kvm-probe PATH]
 *                     [--accel auto|kvm|tcg] [--keep-cores N]
 *                     [--cgroups auto|v1|none] [--ready-timeout S]
 *                     [--max-restarts N] [--restart-backoff MS]
 *
 * One GMainLoop owns everything: the control socket (control.c), the
 * processes it starts (proc.c), their readiness and their exits.  An
 * "up" request runs the Figure 2 flow: plan every device (reuse a
 * running shareable device VM with room, else check the type and the
 * resources and reserve them), launch the new device VMs and wait until
 * each is READY, then launch the client and wait until its QMP says it
 * runs.  If anything fails, everything reserved or started for the
 * request is released before the error, with every reason, is replied.
 *
 * This file: start (options, run directory, catalog, accelerator,
 * cgroups), the log, events, the commands' dispatch, down and logs, and
 * exit.  up.c is the up request, device-vm.c and client.c the two kinds
 * of VM, release.c their teardown, placement.c thread placement,
 * status.c what status reports, leftovers.c what a killed coordinator
 * left; coordinator.h their shared state.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <fcntl.h>
#include <getopt.h>
#include <glib-unix.h>
#include <signal.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>

#include "coordinator.h"

/* ---- logging ------------------------------------------------------------ */

static GLogWriterOutput coord_log_writer(GLogLevelFlags level,
                                         const GLogField *fields,
                                         gsize n_fields, gpointer data)
{
    Coord *co = data;
    g_autofree char *line = NULL;
    g_autoptr(GDateTime) now = g_date_time_new_now_local();
    g_autofree char *ts = g_date_time_format(now, "%F %T.%f");
    const char *msg = NULL;
    gsize i;

    if (level & G_LOG_LEVEL_DEBUG && !g_getenv("G_MESSAGES_DEBUG")) {
        return G_LOG_WRITER_HANDLED;
    }
    for (i = 0; i < n_fields; i++) {
        if (!strcmp(fields[i].key, "MESSAGE")) {
            msg = fields[i].value;
        }
    }
    line = g_strdup_printf("%s devvm-coordinator: %s%s\n", ts,
                           level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL |
                                    G_LOG_LEVEL_WARNING) ? "warning: " : "",
                           msg ? msg : "");
    if (co->log) {
        fputs(line, co->log);
        fflush(co->log);
    }
    if (!co->log || level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL |
                             G_LOG_LEVEL_WARNING)) {
        fputs(line + strlen(ts) + 1, stderr);
    }
    return G_LOG_WRITER_HANDLED;
}

/* ---- events ------------------------------------------------------------- */

void coord_event(Coord *co, const char *event, const char *first, ...)
{
    JsonObject *data = json_object_new();
    const char *key;
    va_list ap;

    va_start(ap, first);
    for (key = first; key; key = va_arg(ap, const char *)) {
        json_object_set_string_member(data, key, va_arg(ap, const char *));
    }
    va_end(ap);
    if (co->control) {
        coord_control_event(co->control, event, data);
    }
    json_object_unref(data);
}

/* ---- commands ----------------------------------------------------------- */

typedef struct DownWait {
    CoordConn *conn;
    JsonNode *id;
    char *name;
} DownWait;

static void down_done(gpointer data)
{
    DownWait *w = data;

    coord_conn_return(w->conn, w->id, NULL);
    coord_conn_unref(w->conn);
    if (w->id) {
        json_node_unref(w->id);
    }
    g_free(w->name);
    g_free(w);
}

static void cmd_down(Coord *co, CoordConn *conn, JsonObject *args,
                     JsonNode *id)
{
    const char *name = args ? json_object_get_string_member_with_default(
                                  args, "name", NULL) : NULL;
    Client *cl = name ? client_find(co, name) : NULL;
    DownWait *w;

    if (!name) {
        coord_conn_error(conn, id, "GenericError", "down: expected "
                         "\"name\": a client's name");
        return;
    }
    if (!cl && co->leftovers) {
        g_autofree char *what = leftovers_describe(co->leftovers);

        coord_conn_error(conn, id, "GenericError", "no client %s here; %s: "
                         "devvm-ctl cleanup removes that", name, what);
        return;
    }
    if (!cl) {
        coord_conn_error(conn, id, "GenericError", "no client %s", name);
        return;
    }
    if (cl->state == CLIENT_STARTING) {
        coord_conn_error(conn, id, "GenericError", "client %s is still "
                         "coming up", name);
        return;
    }
    if (cl->teardown) {
        coord_conn_error(conn, id, "GenericError", "client %s is already "
                         "going down", name);
        return;
    }
    g_message("down %s", name);
    if (cl->req) {
        /* an attach in progress: it fails, its device is released */
        g_ptr_array_add(cl->req->reasons, g_strdup_printf(
                            "client %s is going down", name));
        request_fail(cl->req);
    }
    client_unplug_abort(cl, "the client is going down");
    w = g_new0(DownWait, 1);
    w->conn = coord_conn_ref(conn);
    w->id = id ? json_node_copy(id) : NULL;
    w->name = g_strdup(name);
    client_release(cl, down_done, w);
}

static void cmd_logs(Coord *co, CoordConn *conn, JsonObject *args,
                     JsonNode *id)
{
    const char *name = args ? json_object_get_string_member_with_default(
                                  args, "name", NULL) : NULL;
    g_autoptr(JsonBuilder) b = json_builder_new();
    const char *dir = NULL;
    const char *const *files = NULL;
    static const char *const client_files[] = { "serial.log", "qemu.log",
                                                NULL };
    static const char *const device_files[] = { "serial.log", "vm.log",
                                                "gateway.log", NULL };
    g_autofree char *own = NULL;
    guint i;

    if (!name) {
        own = g_build_filename(co->run_dir, "coordinator.log", NULL);
    } else {
        Client *cl = client_find(co, name);

        if (cl) {
            dir = cl->dir;
            files = client_files;
        }
        for (i = 0; !dir && i < co->devices->len; i++) {
            DeviceVM *d = co->devices->pdata[i];

            if (!strcmp(d->id, name)) {
                dir = d->dir;
                files = device_files;
            }
        }
        if (!dir) {
            coord_conn_error(conn, id, "GenericError", "no client or device "
                             "VM %s", name);
            return;
        }
    }
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "files");
    json_builder_begin_array(b);
    if (own) {
        json_builder_add_string_value(b, own);
    }
    for (i = 0; files && files[i]; i++) {
        g_autofree char *f = g_build_filename(dir, files[i], NULL);

        json_builder_add_string_value(b, f);
    }
    json_builder_end_array(b);
    json_builder_end_object(b);
    coord_conn_return(conn, id, json_builder_get_root(b));
}

static void cmd_cleanup(Coord *co, CoordConn *conn, JsonNode *id)
{
    g_autoptr(JsonBuilder) b = json_builder_new();
    g_autoptr(GError) err = NULL;
    g_autofree char *what = NULL;

    json_builder_begin_object(b);
    if (co->leftovers) {
        what = leftovers_describe(co->leftovers);
        g_message("cleanup: %s", what);
        json_builder_set_member_name(b, "removed");
        leftovers_add_json(co, co->leftovers, b);
        if (!leftovers_cleanup(co, co->leftovers, &err)) {
            g_warning("%s", err->message);
            coord_conn_error(conn, id, "GenericError", "%s", err->message);
            return;
        }
        g_clear_pointer(&co->leftovers, leftovers_free);
        coord_save_state(co);
    }
    json_builder_end_object(b);
    coord_conn_return(conn, id, json_builder_get_root(b));
}

typedef struct StatusWait {
    Coord *co;
    CoordConn *conn;
    JsonNode *id;
} StatusWait;

static void status_done(gpointer data)
{
    StatusWait *w = data;

    coord_conn_return(w->conn, w->id, coord_status(w->co));
    coord_conn_unref(w->conn);
    if (w->id) {
        json_node_unref(w->id);
    }
    g_free(w);
}

/* status, with the clients' proxy counters read now */
static void cmd_status(Coord *co, CoordConn *conn, JsonNode *id)
{
    StatusWait *w = g_new0(StatusWait, 1);

    w->co = co;
    w->conn = coord_conn_ref(conn);
    w->id = id ? json_node_copy(id) : NULL;
    clients_query_proxies(co, status_done, w);
}

static void coord_dispatch(CoordConn *conn, const char *command,
                           JsonObject *args, JsonNode *id, gpointer opaque)
{
    Coord *co = opaque;

    if (!strcmp(command, "up")) {
        cmd_up(co, conn, args, id);
    } else if (!strcmp(command, "down")) {
        cmd_down(co, conn, args, id);
    } else if (!strcmp(command, "attach")) {
        cmd_attach(co, conn, args, id);
    } else if (!strcmp(command, "detach")) {
        cmd_detach(co, conn, args, id);
    } else if (!strcmp(command, "query-status")) {
        cmd_status(co, conn, id);
    } else if (!strcmp(command, "query-logs")) {
        cmd_logs(co, conn, args, id);
    } else if (!strcmp(command, "cleanup")) {
        cmd_cleanup(co, conn, id);
    } else if (!strcmp(command, "qmp_capabilities")) {
        coord_conn_return(conn, id, NULL);
    } else {
        coord_conn_error(conn, id, "CommandNotFound", "the command %s has "
                         "not been found (expected up, down, attach, detach, "
                         "query-status, query-logs or cleanup)", command);
    }
}

/* ---- start and exit ----------------------------------------------------- */

static void coord_quit_done(gpointer data)
{
    Coord *co = data;

    g_main_loop_quit(co->loop);
}

static gboolean coord_on_signal(gpointer data)
{
    Coord *co = data;
    g_autoptr(GPtrArray) clients = NULL;
    g_autoptr(GPtrArray) devices = NULL;
    guint i;

    if (co->quitting) {
        return G_SOURCE_CONTINUE;
    }
    co->quitting = true;
    for (i = 0; i < co->clients->len; i++) {
        Client *cl = co->clients->pdata[i];

        if (cl->req) {
            Request *req = cl->req;

            g_ptr_array_add(req->reasons,
                            g_strdup("the coordinator is stopping"));
            request_fail(req);
            i = -1;     /* the list may have changed: again */
        }
    }
    g_message("stopping: %u client%s, %u device VM%s", co->clients->len,
              co->clients->len == 1 ? "" : "s", co->devices->len,
              co->devices->len == 1 ? "" : "s");
    clients = g_ptr_array_copy(co->clients, NULL, NULL);
    devices = g_ptr_array_new();
    for (i = 0; i < co->devices->len; i++) {
        DeviceVM *d = co->devices->pdata[i];

        if (!d->teardown) {
            g_ptr_array_add(devices, d);
        }
    }
    for (i = 0; i < clients->len; i++) {
        Client *cl = clients->pdata[i];

        if (cl->teardown) {
            g_ptr_array_remove_index(clients, i--);
        }
    }
    teardown_start(co, clients, devices, coord_quit_done, co);
    return G_SOURCE_CONTINUE;
}

/* --device-uids FIRST-LAST */
static bool coord_parse_uids(const char *arg, Coord *co)
{
    g_auto(GStrv) parts = g_strsplit(arg, "-", 2);
    guint64 first, last;

    if (g_strv_length(parts) != 2 ||
        !g_ascii_string_to_unsigned(parts[0], 10, 1, G_MAXINT32, &first,
                                    NULL) ||
        !g_ascii_string_to_unsigned(parts[1], 10, first, G_MAXINT32, &last,
                                    NULL)) {
        g_printerr("devvm-coordinator: --device-uids %s: expected FIRST-LAST, "
                   "uids from 1 to %d with FIRST <= LAST\n", arg, G_MAXINT32);
        return false;
    }
    if (geteuid() != 0) {
        g_printerr("devvm-coordinator: --device-uids needs root (to start "
                   "device code that then runs as those uids)\n");
        return false;
    }
    co->uid_first = first;
    co->uid_last = last;
    return true;
}

/*
 * --device-uids: each device's gateway makes its socket below @dir, as
 * its own uid: every directory above must let others through.
 */
static bool coord_parents_searchable(const char *dir, GError **errp)
{
    g_autofree char *path = g_canonicalize_filename(dir, NULL);
    struct stat st;
    char *slash;

    while ((slash = strrchr(path, '/')) && slash != path) {
        *slash = '\0';
        if (stat(path, &st) < 0 || !(st.st_mode & S_IXOTH)) {
            g_set_error(errp, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED,
                        "--device-uids: the device uids must reach the run "
                        "directory %s, but %s (mode %04o) does not let others "
                        "through; choose another --run-dir, or chmod o+x it",
                        dir, path, (unsigned)(st.st_mode & 07777));
            return false;
        }
    }
    return true;
}

/*
 * The run directory: ours, 0700 (0711 with --device-uids), not a
 * symlink; one coordinator.
 */
static bool coord_setup_run_dir(Coord *co, GError **errp)
{
    g_autofree char *lock = NULL, *log = NULL, *devices = NULL;
    struct stat st;
    int log_fd;

    if (g_mkdir_with_parents(co->run_dir, 0700) < 0) {
        g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(errno),
                    "cannot make the run directory %s: %s", co->run_dir,
                    g_strerror(errno));
        return false;
    }
    if (lstat(co->run_dir, &st) < 0 || !S_ISDIR(st.st_mode) ||
        st.st_uid != geteuid() ||
        ((st.st_mode & 0777) != 0700 && (st.st_mode & 0777) != 0711)) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED,
                    "the run directory %s must be a directory (not a "
                    "symlink) of uid %u with mode 0700 (or 0711)",
                    co->run_dir, (unsigned)geteuid());
        return false;
    }
    if (co->uid_first && !coord_parents_searchable(co->run_dir, errp)) {
        return false;
    }
    /* with --device-uids, the device uids pass through RUN and
     * RUN/devices (0711: no listing) to their own directories */
    devices = g_build_filename(co->run_dir, "devices", NULL);
    if (chmod(co->run_dir, co->uid_first ? 0711 : 0700) < 0 ||
        (g_mkdir_with_parents(devices, 0700) < 0 && errno != EEXIST) ||
        lstat(devices, &st) < 0 || !S_ISDIR(st.st_mode) ||
        st.st_uid != geteuid() ||
        chmod(devices, co->uid_first ? 0711 : 0700) < 0) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED,
                    "cannot set up %s (a directory of uid %u): %s", devices,
                    (unsigned)geteuid(), g_strerror(errno));
        return false;
    }
    lock = g_build_filename(co->run_dir, "coordinator.lock", NULL);
    co->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (co->lock_fd < 0 || flock(co->lock_fd, LOCK_EX | LOCK_NB) < 0) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_BUSY,
                    "%s: %s: another coordinator uses this run directory",
                    lock, g_strerror(errno));
        return false;
    }
    log = g_build_filename(co->run_dir, "coordinator.log", NULL);
    log_fd = open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    co->log = log_fd >= 0 ? fdopen(log_fd, "a") : NULL;
    if (!co->log) {
        g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(errno),
                    "cannot open %s: %s", log, g_strerror(errno));
        return false;
    }
    /* state.json is removed at a clean exit: one left means a killed
     * coordinator; keep what it names until cleanup */
    co->leftovers = leftovers_find(co);
    if (co->leftovers) {
        g_autofree char *what = leftovers_describe(co->leftovers);

        g_warning("%s; devvm-ctl status lists it, devvm-ctl cleanup "
                  "removes it (up is refused until then)", what);
    }
    return true;
}

/* A program next to this one, or on PATH. */
static char *coord_find_program(const char *given, const char *name)
{
    g_autofree char *self = g_file_read_link("/proc/self/exe", NULL);
    g_autofree char *dir = self ? g_path_get_dirname(self) : NULL;
    g_autofree char *near = dir ? g_build_filename(dir, name, NULL) : NULL;

    if (given) {
        return g_canonicalize_filename(given, NULL);
    }
    if (near && g_file_test(near, G_FILE_TEST_IS_EXECUTABLE)) {
        return g_steal_pointer(&near);
    }
    return g_find_program_in_path(name);
}

static bool coord_pick_accel(Coord *co, const char *mode, GError **errp)
{
    const char *argv[] = { co->probe, NULL };
    g_autoptr(GSubprocess) sp = NULL;
    g_autofree char *out = NULL;

    if (!strcmp(mode, "kvm") || !strcmp(mode, "tcg")) {
        co->accel = !strcmp(mode, "kvm") ? "kvm" : "tcg";
        co->accel_reason = g_strdup_printf("--accel %s", mode);
        return true;
    }
    if (strcmp(mode, "auto")) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "--accel %s: expected auto, kvm or tcg", mode);
        return false;
    }
    co->accel = "tcg";
    if (!co->probe) {
        co->accel_reason = g_strdup("no devvm-kvm-probe found: TCG");
        return true;
    }
    sp = g_subprocess_newv(argv, G_SUBPROCESS_FLAGS_STDOUT_PIPE |
                           G_SUBPROCESS_FLAGS_STDERR_MERGE, errp);
    if (!sp || !g_subprocess_communicate_utf8(sp, NULL, NULL, &out, NULL,
                                              errp)) {
        return false;
    }
    if (g_subprocess_get_if_exited(sp) &&
        g_subprocess_get_exit_status(sp) == 0) {
        co->accel = "kvm";
    }
    co->accel_reason = g_strstrip(g_steal_pointer(&out));
    return true;
}

static void usage(FILE *f)
{
    fprintf(f,
"usage: devvm-coordinator [--image PATH]... [--process PATH]... [options]\n"
"\n"
"Brings up client VMs with the device VMs they need (devvm-ctl up).\n"
"\n"
"  -i, --image PATH        a device image: its needs note makes a type of\n"
"                          the catalog, run in a device VM (repeat for\n"
"                          more types)\n"
"  -p, --process PATH      a process-mode device binary: its needs note\n"
"                          makes a type run as a host process\n"
"  -r, --run-dir DIR       sockets, logs and state (default:\n"
"                          $XDG_RUNTIME_DIR/devvm, or /run/devvm for root)\n"
"      --qemu PATH         qemu-system-x86_64 with devvm-proxy\n"
"      --gateway PATH      devvm-gateway\n"
"      --kvm-probe PATH    devvm-kvm-probe\n"
"  -a, --accel MODE        auto (default: KVM where the probe says it is\n"
"                          usable), kvm or tcg\n"
"  -k, --keep-cores N      cores never given exclusively (default 1)\n"
"  -c, --cgroups MODE      auto (default), v1 or none (affinity only)\n"
"  -t, --ready-timeout S   wait for a device VM's READY (default 30)\n"
"      --max-restarts N    restarts of a device VM that dies or fails\n"
"                          before it is left failed (default 5)\n"
"      --restart-backoff MS  before its first restart (default 100),\n"
"                          doubling at each one, at most 5000\n"
"      --restart-window S  a device VM READY this long has its restarts\n"
"                          counted from 0 again (default 600)\n"
"  -U, --device-uids FIRST-LAST  run each device's code (gateway, device\n"
"                          VM, process) as a uid of its own from this\n"
"                          range (root only; default: as this uid)\n"
"  -h, --help              this text\n"
"\n"
"Prints \"ready RUN/control.sock\" once it listens.  SIGTERM or SIGINT:\n"
"stops every client and device VM, releases their resources, exits 0.\n");
}

int main(int argc, char **argv)
{
    enum { OPT_QEMU = 256, OPT_GATEWAY, OPT_PROBE, OPT_MAX_RESTARTS,
           OPT_BACKOFF, OPT_WINDOW };
    static const struct option longopts[] = {
        { "image", required_argument, NULL, 'i' },
        { "process", required_argument, NULL, 'p' },
        { "run-dir", required_argument, NULL, 'r' },
        { "qemu", required_argument, NULL, OPT_QEMU },
        { "gateway", required_argument, NULL, OPT_GATEWAY },
        { "kvm-probe", required_argument, NULL, OPT_PROBE },
        { "accel", required_argument, NULL, 'a' },
        { "keep-cores", required_argument, NULL, 'k' },
        { "cgroups", required_argument, NULL, 'c' },
        { "ready-timeout", required_argument, NULL, 't' },
        { "max-restarts", required_argument, NULL, OPT_MAX_RESTARTS },
        { "restart-backoff", required_argument, NULL, OPT_BACKOFF },
        { "restart-window", required_argument, NULL, OPT_WINDOW },
        { "device-uids", required_argument, NULL, 'U' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    static Coord coord;
    Coord *co = &coord;
    g_autoptr(GPtrArray) images = g_ptr_array_new();
    g_autoptr(GPtrArray) processes = g_ptr_array_new();
    g_autoptr(GError) err = NULL;
    const char *run_dir = NULL, *qemu = NULL, *gateway = NULL;
    const char *probe = NULL, *accel = "auto", *cgroups = "auto";
    CoordCgroupMode cg_mode;
    guint64 keep = 1, timeout = 30;
    guint64 max_restarts = COORD_MAX_RESTARTS, backoff = COORD_BACKOFF_MS;
    guint64 window = COORD_RESTART_WINDOW_S;
    g_autofree char *sock = NULL;
    guint i;
    int opt;

    while ((opt = getopt_long(argc, argv, "i:p:r:a:k:c:t:U:h", longopts,
                              NULL)) != -1) {
        switch (opt) {
        case 'p':
            g_ptr_array_add(processes, optarg);
            break;
        case 'U':
            if (!coord_parse_uids(optarg, co)) {
                return 2;
            }
            break;
        case 'i':
            g_ptr_array_add(images, optarg);
            break;
        case 'r':
            run_dir = optarg;
            break;
        case OPT_QEMU:
            qemu = optarg;
            break;
        case OPT_GATEWAY:
            gateway = optarg;
            break;
        case OPT_PROBE:
            probe = optarg;
            break;
        case 'a':
            accel = optarg;
            break;
        case 'k':
            if (!g_ascii_string_to_unsigned(optarg, 10, 1, 1024, &keep,
                                            NULL)) {
                fprintf(stderr, "devvm-coordinator: --keep-cores %s: "
                        "expected a number from 1\n", optarg);
                return 2;
            }
            break;
        case 'c':
            cgroups = optarg;
            break;
        case 't':
            if (!g_ascii_string_to_unsigned(optarg, 10, 1, 3600, &timeout,
                                            NULL)) {
                fprintf(stderr, "devvm-coordinator: --ready-timeout %s: "
                        "expected seconds from 1 to 3600\n", optarg);
                return 2;
            }
            break;
        case OPT_MAX_RESTARTS:
            if (!g_ascii_string_to_unsigned(optarg, 10, 0, 1000,
                                            &max_restarts, NULL)) {
                fprintf(stderr, "devvm-coordinator: --max-restarts %s: "
                        "expected a number from 0 to 1000\n", optarg);
                return 2;
            }
            break;
        case OPT_WINDOW:
            if (!g_ascii_string_to_unsigned(optarg, 10, 1, 86400, &window,
                                            NULL)) {
                fprintf(stderr, "devvm-coordinator: --restart-window %s: "
                        "expected seconds from 1 to 86400\n", optarg);
                return 2;
            }
            break;
        case OPT_BACKOFF:
            if (!g_ascii_string_to_unsigned(optarg, 10, 1,
                                            COORD_BACKOFF_MAX_MS, &backoff,
                                            NULL)) {
                fprintf(stderr, "devvm-coordinator: --restart-backoff %s: "
                        "expected milliseconds from 1 to %u\n", optarg,
                        COORD_BACKOFF_MAX_MS);
                return 2;
            }
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "devvm-coordinator: unexpected argument '%s'\n",
                argv[optind]);
        usage(stderr);
        return 2;
    }
    if (!strcmp(cgroups, "auto")) {
        cg_mode = COORD_CGROUP_AUTO;
    } else if (!strcmp(cgroups, "v1")) {
        cg_mode = COORD_CGROUP_V1;
    } else if (!strcmp(cgroups, "none")) {
        cg_mode = COORD_CGROUP_NONE;
    } else {
        fprintf(stderr, "devvm-coordinator: --cgroups %s: expected auto, "
                "v1 or none\n", cgroups);
        return 2;
    }

    /* what it and its children make is theirs alone (logs, sockets) */
    umask(077);
    g_log_set_writer_func(coord_log_writer, co, NULL);
    co->ready_timeout_s = timeout;
    co->max_restarts = max_restarts;
    co->restart_window_s = window;
    co->backoff_ms = backoff;
    co->catalog = g_ptr_array_new();
    co->clients = g_ptr_array_new();
    co->devices = g_ptr_array_new();
    co->lock_fd = -1;
    co->run_dir = coord_default_run_dir(run_dir, &err);
    if (!co->run_dir || !coord_setup_run_dir(co, &err)) {
        g_printerr("devvm-coordinator: %s\n", err->message);
        return 1;
    }
    g_message("starting (pid %d) in %s", (int)getpid(), co->run_dir);
    co->qemu = coord_find_program(qemu, "qemu-system-x86_64");
    co->gateway = coord_find_program(gateway, "devvm-gateway");
    co->probe = coord_find_program(probe, "devvm-kvm-probe");
    if (!co->qemu || !co->gateway) {
        g_warning("cannot find %s: give --%s PATH",
                  co->qemu ? "devvm-gateway" : "qemu-system-x86_64",
                  co->qemu ? "gateway" : "qemu");
        return 1;
    }
    if (!images->len && !processes->len) {
        g_warning("no --image and no --process: the catalog would be empty");
        return 2;
    }
    for (i = 0; i < images->len + processes->len; i++) {
        bool process = i >= images->len;
        const char *path = process ? processes->pdata[i - images->len]
                                   : images->pdata[i];

        if (!catalog_add(co, path, process, &err)) {
            g_warning("%s", err->message);
            return 1;
        }
    }
    if (!coord_cores_init(&co->cores, keep, &err) ||
        !coord_pick_accel(co, accel, &err)) {
        g_warning("%s", err->message);
        return 1;
    }
    g_message("accelerator %s (%s)", co->accel, co->accel_reason);
    co->cgroups = coord_cgroups_open(cg_mode, &err);
    if (!co->cgroups) {
        g_warning("%s", err->message);
        return 1;
    }
    g_message("cgroups: %s", coord_cgroups_describe(co->cgroups));
    {
        g_autofree char *host = coord_cpu_list(&co->cores.host);

        g_message("host cores %s, %u kept for clients", host, co->cores.keep);
    }

    sock = g_build_filename(co->run_dir, COORD_CONTROL_SOCKET, NULL);
    co->loop = g_main_loop_new(NULL, false);
    co->control = coord_control_new(sock, coord_dispatch, co, &err);
    if (!co->control) {
        g_warning("%s", err->message);
        coord_cgroups_close(co->cgroups);
        return 1;
    }
    g_unix_signal_add(SIGTERM, coord_on_signal, co);
    g_unix_signal_add(SIGINT, coord_on_signal, co);
    g_unix_signal_add(SIGHUP, coord_on_signal, co);
    signal(SIGPIPE, SIG_IGN);
    coord_save_state(co);
    g_message("listening on %s", sock);
    printf("ready %s\n", sock);
    fflush(stdout);

    g_main_loop_run(co->loop);

    coord_control_free(co->control);
    co->control = NULL;
    coord_cgroups_close(co->cgroups);
    {
        g_autofree char *state = g_build_filename(co->run_dir, "state.json",
                                                  NULL);
        g_autofree char *clients = g_build_filename(co->run_dir, "clients",
                                                    NULL);
        g_autofree char *devices = g_build_filename(co->run_dir, "devices",
                                                    NULL);

        if (!co->leftovers) {
            g_unlink(state);    /* else the next coordinator needs it */
        }
        g_rmdir(clients);
        g_rmdir(devices);
    }
    g_message("stopped");
    return 0;
}
