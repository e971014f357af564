/*
 * devvm-coordinator: the manager of client VMs and the device VMs that
 * serve them (Figures 2 and 3 of the design, docs/devvm/coordinator.rst).
 *
 *   devvm-coordinator --image PATH [--image PATH]... [--run-dir DIR]
 *                     [--qemu PATH] [--gateway PATH] [--kvm-probe PATH]
 *                     [--accel auto|kvm|tcg] [--keep-cores N]
 *                     [--cgroups auto|v1|none] [--ready-timeout S]
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
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <gio/gunixsocketaddress.h>
#include <glib-unix.h>
#include <json-glib/json-glib.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cgroup.h"
#include "client-desc.h"
#include "control.h"
#include "coord.h"
#include "cores.h"
#include "needs.h"
#include "proc.h"

#define COORD_STOP_GRACE_MS     3000
#define COORD_POLL_MS           20
#define COORD_QMP_TIMEOUT_S     30
/* a device VM's QEMU needs this much beyond its guest RAM */
#define COORD_VM_OVERHEAD_MIB   256

typedef struct Coord Coord;
typedef struct Teardown Teardown;
typedef struct Request Request;

/* A device type: an image and what its note says it needs. */
typedef struct CatalogEntry {
    char *image;
    struct devvm_needs needs;
} CatalogEntry;

typedef enum DevState {
    DEV_STARTING,
    DEV_READY,
    DEV_FAILED,
} DevState;

static const char *const dev_state_names[] = {
    [DEV_STARTING] = "starting",
    [DEV_READY] = "ready",
    [DEV_FAILED] = "failed",
};

/* A device VM and its gateway. */
typedef struct DeviceVM {
    Coord *co;
    char *id;                   /* "testdev-1" */
    const CatalogEntry *entry;
    char **options;             /* the device's KEY=VALUE, or NULL */
    char *options_key;          /* joined, to match for reuse */
    CoordPolicy policy;         /* EXCLUSIVE or SHARED */
    unsigned percent;
    int core;                   /* the exclusive core, or -1 */
    bool shared_taken;          /* percent counted in co->cores */
    CoordCgroup *cgroup;
    char *dir, *gw_dir, *sock;
    CoordProc *gateway, *vm;
    GDataInputStream *gw_out;
    GCancellable *cancel;
    DevState state;
    char *failure;
    unsigned users;             /* clients it serves or will serve */
    Request *req;               /* the request waiting for READY */
    guint poll_timer, ready_timer;
    gint64 launched, ready_at;
    Teardown *teardown;
} DeviceVM;

typedef enum ClientState {
    CLIENT_STARTING,
    CLIENT_RUNNING,
    CLIENT_EXITED,
} ClientState;

static const char *const client_state_names[] = {
    [CLIENT_STARTING] = "starting",
    [CLIENT_RUNNING] = "running",
    [CLIENT_EXITED] = "exited",
};

typedef struct Client {
    Coord *co;
    char *name;
    CoordClientDesc *desc;
    GPtrArray *devices;         /* DeviceVM *, one per desc->devices */
    char *dir, *qmp_path;
    const char *accel;
    CoordProc *qemu;
    ClientState state;
    double up_seconds;          /* up to running */
    Teardown *teardown;
    Request *req;               /* the up bringing it up */
    bool released;              /* its devices were let go */
} Client;

/* An "up" in progress. */
struct Request {
    int refs;
    Coord *co;
    char *name;                 /* the client's */
    CoordConn *conn;
    JsonNode *id;
    Client *client;
    GPtrArray *new_devices;     /* DeviceVM * started for it */
    unsigned pending;           /* of them, not READY yet */
    GPtrArray *reasons;         /* char * */
    bool finished;              /* replied (or failing) */
    gint64 started;
    GCancellable *cancel;
    /* the client's QMP readiness check */
    GSocketConnection *qmp;
    GDataInputStream *qmp_in;
    guint qmp_timer;
    gint64 qmp_deadline;
};

/* Stopping clients, then devices, then freeing their resources. */
struct Teardown {
    Coord *co;
    GPtrArray *clients;
    GPtrArray *devices;
    unsigned waiting;
    int phase;
    void (*done)(gpointer data);
    gpointer data;
};

struct Coord {
    char *run_dir;
    char *qemu, *gateway, *probe;
    const char *accel;          /* resolved: "kvm" or "tcg" */
    char *accel_reason;
    unsigned ready_timeout_s;
    GPtrArray *catalog;         /* CatalogEntry * */
    CoordCores cores;
    CoordCgroups *cgroups;
    CoordControl *control;
    GPtrArray *clients;         /* Client * */
    GPtrArray *devices;         /* DeviceVM * */
    unsigned next_device;
    GMainLoop *loop;
    FILE *log;
    bool quitting;
    int lock_fd;
};

static void request_fail(Request *req);
static void request_unref(Request *req);
static void client_launch(Request *req);
static void coord_save_state(Coord *co);
static void teardown_start(Coord *co, GPtrArray *clients,
                           GPtrArray *devices, void (*done)(gpointer),
                           gpointer data);
static void teardown_continue(Teardown *td);
static void client_release(Client *cl, void (*done)(gpointer),
                           gpointer data);
static void request_client_exited(Request *req);

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

static void coord_event(Coord *co, const char *event, const char *first, ...)
    G_GNUC_NULL_TERMINATED;

/* An event with string members: name, value, ..., NULL. */
static void coord_event(Coord *co, const char *event, const char *first, ...)
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

/* ---- the catalog -------------------------------------------------------- */

static const CatalogEntry *catalog_find(Coord *co, const char *type)
{
    guint i;

    for (i = 0; i < co->catalog->len; i++) {
        CatalogEntry *e = co->catalog->pdata[i];

        if (!strcmp(e->needs.name, type)) {
            return e;
        }
    }
    return NULL;
}

static char *catalog_types(Coord *co)
{
    GString *s = g_string_new(NULL);
    guint i;

    for (i = 0; i < co->catalog->len; i++) {
        CatalogEntry *e = co->catalog->pdata[i];

        g_string_append_printf(s, "%s%s", i ? ", " : "", e->needs.name);
    }
    return g_string_free(s, false);
}

static bool catalog_add(Coord *co, const char *image, GError **errp)
{
    g_autofree CatalogEntry *e = g_new0(CatalogEntry, 1);
    const CatalogEntry *old;

    if (!devvm_needs_read_file(image, &e->needs, errp)) {
        return false;
    }
    old = catalog_find(co, e->needs.name);
    if (old) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_EXISTS,
                    "%s: device type %s is already given by %s", image,
                    e->needs.name, old->image);
        return false;
    }
    e->image = g_canonicalize_filename(image, NULL);
    g_message("catalog: %s from %s: %04x:%04x, %s, %u MiB, %s%u client%s",
              e->needs.name, e->image, e->needs.vendor_id,
              e->needs.device_id,
              e->needs.cores == DEVVM_NEEDS_CORE_EXCLUSIVE ?
              "an exclusive core" : "a shared core",
              e->needs.memory_mib,
              e->needs.flags & DEVVM_NEEDS_F_SHAREABLE ? "shareable, up to "
                                                       : "",
              e->needs.max_clients, e->needs.max_clients == 1 ? "" : "s");
    g_ptr_array_add(co->catalog, g_steal_pointer(&e));
    return true;
}

/* ---- affinity ----------------------------------------------------------- */

/*
 * Place every thread of every process the coordinator started: device
 * VMs' vCPUs on their exclusive cores, everything else on the cores no
 * one has exclusively.  A device VM that is not READY yet keeps its own
 * core in its other threads' set too, since QEMU checks vcpu-affinity
 * against its own affinity while it starts.
 */
static void coord_place_all(Coord *co)
{
    cpu_set_t shared;
    guint i;

    coord_cores_shared_set(&co->cores, &shared);
    for (i = 0; i < co->devices->len; i++) {
        DeviceVM *d = co->devices->pdata[i];

        if (d->gateway && coord_proc_running(d->gateway)) {
            coord_place_threads(coord_proc_pid(d->gateway), NULL, &shared);
        }
        if (d->vm && coord_proc_running(d->vm)) {
            cpu_set_t own, others = shared;

            CPU_ZERO(&own);
            if (d->core >= 0) {
                CPU_SET(d->core, &own);
                if (d->state == DEV_STARTING) {
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

/* ---- device VMs --------------------------------------------------------- */

static char *device_reservation_str(const DeviceVM *d)
{
    if (d->core >= 0) {
        return g_strdup_printf("exclusive core %d", d->core);
    }
    return g_strdup_printf("shared, %u%% of a core%s", d->percent,
                           d->cgroup ? " (cgroup CPU quota)"
                                     : " (affinity only: no cgroup quota)");
}

/* The device VM failed: record why, fail the request waiting for it. */
static void device_failed(DeviceVM *d, const char *fmt, ...)
    G_GNUC_PRINTF(2, 3);

static void device_failed(DeviceVM *d, const char *fmt, ...)
{
    Request *req = d->req;
    Coord *co = d->co;
    va_list ap;

    if (d->state == DEV_FAILED) {
        return;
    }
    va_start(ap, fmt);
    d->failure = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    d->state = DEV_FAILED;
    g_clear_handle_id(&d->poll_timer, g_source_remove);
    g_clear_handle_id(&d->ready_timer, g_source_remove);
    g_cancellable_cancel(d->cancel);
    g_warning("device VM %s failed: %s", d->id, d->failure);
    coord_event(d->co, "DEVICE_FAILED", "device-vm", d->id, "reason",
                d->failure, NULL);
    if (req) {
        d->req = NULL;
        g_ptr_array_add(req->reasons, g_strdup_printf("device VM %s: %s",
                                                      d->id, d->failure));
        request_fail(req);     /* may free d */
    }
    coord_save_state(co);
}

static void device_proc_exited(CoordProc *p, gpointer opaque)
{
    DeviceVM *d = opaque;

    if (d->teardown) {
        if (--d->teardown->waiting == 0) {
            teardown_continue(d->teardown);
        }
        return;
    }
    if (p == d->vm) {
        g_autofree char *serial = g_build_filename(d->dir, "serial.log",
                                                   NULL);
        g_autofree char *tail = coord_file_tail(serial, 400);

        device_failed(d, "its QEMU %s%s%s", coord_proc_exit_str(p),
                      *tail ? "; its serial output ended with: " : "",
                      g_strstrip(tail));
    } else {
        g_autofree char *log = g_build_filename(d->dir, "gateway.log", NULL);
        g_autofree char *tail = coord_file_tail(log, 400);

        device_failed(d, "its gateway %s%s%s", coord_proc_exit_str(p),
                      *tail ? "; its log ended with: " : "",
                      g_strstrip(tail));
    }
}

static gboolean device_ready_timeout(gpointer data)
{
    DeviceVM *d = data;

    d->ready_timer = 0;
    device_failed(d, "not READY within %u s (raise --ready-timeout?)",
                  d->co->ready_timeout_s);
    return G_SOURCE_REMOVE;
}

static void device_gw_line(GObject *src, GAsyncResult *res, gpointer data);

static void device_read_gateway(DeviceVM *d)
{
    g_data_input_stream_read_line_async(d->gw_out, G_PRIORITY_DEFAULT,
                                        d->cancel, device_gw_line, d);
}

/* A line on the gateway's stdout: "ready DIR/device.sock" */
static void device_gw_line(GObject *src, GAsyncResult *res, gpointer data)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *line = NULL;
    g_autofree char *want = NULL;
    DeviceVM *d;

    line = g_data_input_stream_read_line_finish(G_DATA_INPUT_STREAM(src),
                                                res, NULL, &err);
    if (g_error_matches(err, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
        return;     /* d may be gone */
    }
    d = data;
    if (!line) {
        return;     /* EOF: the exit is handled by device_proc_exited */
    }
    want = g_strdup_printf("ready %s", d->sock);
    if (strcmp(line, want) || d->state != DEV_STARTING) {
        g_message("device VM %s: gateway says: %s", d->id, line);
        device_read_gateway(d);
        return;
    }
    d->state = DEV_READY;
    d->ready_at = g_get_monotonic_time();
    g_clear_handle_id(&d->ready_timer, g_source_remove);
    g_message("device VM %s is READY %.3f s after its QEMU started", d->id,
              (d->ready_at - d->launched) / 1e6);
    {
        g_autofree char *secs = g_strdup_printf(
            "%.3f", (d->ready_at - d->launched) / 1e6);

        coord_event(d->co, "DEVICE_READY", "device-vm", d->id, "socket",
                    d->sock, "seconds", secs, NULL);
    }
    coord_place_all(d->co);
    coord_save_state(d->co);
    device_read_gateway(d);
    if (d->req) {
        Request *req = d->req;

        d->req = NULL;
        if (--req->pending == 0 && !req->finished) {
            client_launch(req);
        }
    }
}

/* Start the device VM's QEMU once the gateway listens for it. */
static void device_launch_vm(DeviceVM *d)
{
    const struct devvm_needs *n = &d->entry->needs;
    g_autofree char *accel = NULL, *mem = NULL, *name = NULL;
    g_autofree char *ivs = NULL, *ivdev = NULL, *serial = NULL;
    g_autofree char *append = NULL, *log = NULL;
    g_autoptr(GPtrArray) argv = g_ptr_array_new();
    g_autoptr(GError) err = NULL;
    CoordSpawn spawn = { 0 };
    cpu_set_t cpus;

    accel = d->core >= 0 ? g_strdup_printf("%s,vcpu-affinity=%d",
                                           d->co->accel, d->core)
                         : g_strdup(d->co->accel);
    mem = g_strdup_printf("%uM", n->memory_mib);
    name = g_strdup_printf("%s,debug-threads=on", d->id);
    ivs = g_strdup_printf("socket,path=%s/ivshmem.sock,id=ivs", d->gw_dir);
    ivdev = g_strdup_printf("ivshmem-doorbell,chardev=ivs,vectors=%u",
                            2 * n->max_clients);
    serial = g_strdup_printf("file,path=%s/serial.log,id=ser0", d->dir);
    g_ptr_array_add(argv, d->co->qemu);
    g_ptr_array_add(argv, "-M");
    g_ptr_array_add(argv, "pc");
    g_ptr_array_add(argv, "-nodefaults");
    g_ptr_array_add(argv, "-display");
    g_ptr_array_add(argv, "none");
    g_ptr_array_add(argv, "-no-reboot");
    g_ptr_array_add(argv, "-cpu");
    g_ptr_array_add(argv, "max");
    g_ptr_array_add(argv, "-accel");
    g_ptr_array_add(argv, accel);
    g_ptr_array_add(argv, "-m");
    g_ptr_array_add(argv, mem);
    g_ptr_array_add(argv, "-name");
    g_ptr_array_add(argv, name);
    g_ptr_array_add(argv, "-run-with");
    g_ptr_array_add(argv, "exit-with-parent=on");
    g_ptr_array_add(argv, "-chardev");
    g_ptr_array_add(argv, ivs);
    g_ptr_array_add(argv, "-device");
    g_ptr_array_add(argv, ivdev);
    g_ptr_array_add(argv, "-device");
    g_ptr_array_add(argv, "isa-debug-exit,iobase=0xf4,iosize=0x04");
    g_ptr_array_add(argv, "-chardev");
    g_ptr_array_add(argv, serial);
    g_ptr_array_add(argv, "-serial");
    g_ptr_array_add(argv, "chardev:ser0");
    g_ptr_array_add(argv, "-kernel");
    g_ptr_array_add(argv, d->entry->image);
    if (d->options) {
        append = g_strjoinv(" ", d->options);
        g_ptr_array_add(argv, "-append");
        g_ptr_array_add(argv, append);
    }
    g_ptr_array_add(argv, NULL);

    coord_cores_shared_set(&d->co->cores, &cpus);
    if (d->core >= 0) {
        CPU_SET(d->core, &cpus);
    }
    log = g_build_filename(d->dir, "vm.log", NULL);
    spawn.what = g_strdup_printf("device VM %s", d->id);
    spawn.argv = (const char *const *)argv->pdata;
    spawn.log_path = log;
    spawn.cpus = &cpus;
    spawn.cgroup = d->cgroup;
    d->launched = g_get_monotonic_time();
    d->vm = coord_proc_spawn(&spawn, device_proc_exited, d, &err);
    g_free((char *)spawn.what);
    if (!d->vm) {
        device_failed(d, "%s", err->message);
        return;
    }
    if (d->cgroup && !coord_cgroup_has_pid(d->cgroup, coord_proc_pid(d->vm),
                                           &err)) {
        device_failed(d, "%s", err->message);
        return;
    }
    d->ready_timer = g_timeout_add_seconds(d->co->ready_timeout_s,
                                           device_ready_timeout, d);
}

/* Wait for the gateway's ivshmem socket, then start the device VM. */
static gboolean device_poll_gateway(gpointer data)
{
    DeviceVM *d = data;
    g_autofree char *ivs = g_build_filename(d->gw_dir, "ivshmem.sock", NULL);

    if (!g_file_test(ivs, G_FILE_TEST_EXISTS)) {
        if ((g_get_monotonic_time() - d->launched) / G_USEC_PER_SEC >=
            d->co->ready_timeout_s) {
            d->poll_timer = 0;
            device_failed(d, "its gateway made no %s within %u s", ivs,
                          d->co->ready_timeout_s);
            return G_SOURCE_REMOVE;
        }
        return G_SOURCE_CONTINUE;
    }
    d->poll_timer = 0;
    device_launch_vm(d);
    return G_SOURCE_REMOVE;
}

/* 210: create, configure and launch the device VM (gateway first). */
static void device_launch(DeviceVM *d)
{
    const struct devvm_needs *n = &d->entry->needs;
    g_autofree char *channels = g_strdup_printf("%u", 2 * n->max_clients);
    g_autofree char *log = g_build_filename(d->dir, "gateway.log", NULL);
    g_autofree char *what = g_strdup_printf("gateway of %s", d->id);
    const char *argv[] = {
        d->co->gateway, "--dir", d->gw_dir, "--channels", channels, NULL,
    };
    g_autoptr(GError) err = NULL;
    CoordSpawn spawn = {
        .what = what, .argv = argv, .log_path = log, .stdout_pipe = true,
    };
    cpu_set_t cpus;

    coord_cores_shared_set(&d->co->cores, &cpus);
    spawn.cpus = &cpus;
    if (g_mkdir_with_parents(d->dir, 0700) < 0) {
        device_failed(d, "cannot make %s: %s", d->dir, g_strerror(errno));
        return;
    }
    d->launched = g_get_monotonic_time();
    d->gateway = coord_proc_spawn(&spawn, device_proc_exited, d, &err);
    if (!d->gateway) {
        device_failed(d, "%s", err->message);
        return;
    }
    d->gw_out = g_data_input_stream_new(coord_proc_stdout(d->gateway));
    device_read_gateway(d);
    d->poll_timer = g_timeout_add(COORD_POLL_MS, device_poll_gateway, d);
    {
        g_autofree char *res = device_reservation_str(d);

        coord_event(d->co, "DEVICE_STARTING", "device-vm", d->id, "type",
                    n->name, "reservation", res, NULL);
    }
}

/* A new device VM record with its reservation taken (208). */
static DeviceVM *device_new(Coord *co, const CatalogEntry *e,
                            const CoordDeviceDesc *dd, CoordPolicy policy,
                            unsigned percent)
{
    DeviceVM *d = g_new0(DeviceVM, 1);

    d->co = co;
    d->id = g_strdup_printf("%s-%u", e->needs.name, ++co->next_device);
    d->entry = e;
    d->options = g_strdupv(dd->options);
    d->options_key = dd->options ? g_strjoinv(";", dd->options)
                                 : g_strdup("");
    d->policy = policy;
    d->percent = percent;
    d->core = -1;
    d->cancel = g_cancellable_new();
    d->dir = g_build_filename(co->run_dir, "devices", d->id, NULL);
    d->gw_dir = g_build_filename(d->dir, "gw", NULL);
    d->sock = g_build_filename(d->gw_dir, "device.sock", NULL);
    g_ptr_array_add(co->devices, d);
    return d;
}

/* Free what a device VM holds; its processes have exited. */
static void device_destroy(DeviceVM *d)
{
    Coord *co = d->co;
    g_autoptr(GError) err = NULL;
    g_autoptr(GError) rm_err = NULL;

    g_cancellable_cancel(d->cancel);
    g_clear_handle_id(&d->poll_timer, g_source_remove);
    g_clear_handle_id(&d->ready_timer, g_source_remove);
    if (d->core >= 0) {
        coord_cores_put_exclusive(&co->cores, d->core);
    }
    if (d->shared_taken) {
        coord_cores_put_shared(&co->cores, d->percent);
    }
    if (d->cgroup && !coord_cgroup_remove(d->cgroup, &err)) {
        g_warning("device VM %s: %s", d->id, err->message);
    }
    if (!coord_remove_tree(d->dir, &rm_err)) {
        g_warning("device VM %s: %s", d->id, rm_err->message);
    }
    g_message("device VM %s released", d->id);
    coord_event(co, "DEVICE_STOPPED", "device-vm", d->id, NULL);
    g_ptr_array_remove(co->devices, d);
    if (d->gw_out) {
        g_object_unref(d->gw_out);
    }
    coord_proc_free(d->gateway);
    coord_proc_free(d->vm);
    g_object_unref(d->cancel);
    g_free(d->id);
    g_strfreev(d->options);
    g_free(d->options_key);
    g_free(d->dir);
    g_free(d->gw_dir);
    g_free(d->sock);
    g_free(d->failure);
    g_free(d);
}

/* ---- clients ------------------------------------------------------------ */

static Client *client_find(Coord *co, const char *name)
{
    guint i;

    for (i = 0; i < co->clients->len; i++) {
        Client *cl = co->clients->pdata[i];

        if (!strcmp(cl->name, name)) {
            return cl;
        }
    }
    return NULL;
}

static void client_destroy(Client *cl)
{
    Coord *co = cl->co;
    g_autoptr(GError) err = NULL;

    if (!coord_remove_tree(cl->dir, &err)) {
        g_warning("client %s: %s", cl->name, err->message);
    }
    g_message("client %s released", cl->name);
    g_ptr_array_remove(co->clients, cl);
    coord_proc_free(cl->qemu);
    coord_client_desc_free(cl->desc);
    g_ptr_array_free(cl->devices, true);
    g_free(cl->name);
    g_free(cl->dir);
    g_free(cl->qmp_path);
    g_free(cl);
}

static void client_proc_exited(CoordProc *p, gpointer opaque)
{
    Client *cl = opaque;

    cl->state = CLIENT_EXITED;
    if (cl->req) {
        Request *req = cl->req;

        request_client_exited(req);
        request_fail(req);
        return;
    }
    if (cl->teardown) {
        if (--cl->teardown->waiting == 0) {
            teardown_continue(cl->teardown);
        }
        return;
    }
    coord_event(cl->co, "CLIENT_EXITED", "client", cl->name, "how",
                coord_proc_exit_str(p), NULL);
    /* it ended by itself: its devices are no longer needed by it */
    client_release(cl, NULL, NULL);
    coord_save_state(cl->co);
}

/* ---- teardown ----------------------------------------------------------- */

/* Stop @clients, then @devices, then free their resources and call
 * @done(@data). */
static void teardown_start(Coord *co, GPtrArray *clients,
                           GPtrArray *devices, void (*done)(gpointer),
                           gpointer data)
{
    Teardown *td = g_new0(Teardown, 1);

    td->co = co;
    td->clients = g_ptr_array_copy(clients, NULL, NULL);
    td->devices = g_ptr_array_copy(devices, NULL, NULL);
    td->done = done;
    td->data = data;
    teardown_continue(td);
}

/* The next phase, once the processes of this one have exited. */
static void teardown_continue(Teardown *td)
{
    Coord *co = td->co;
    guint i;

    while (td->waiting == 0 && td->phase < 2) {
        td->phase++;
        if (td->phase == 1) {
            for (i = 0; i < td->clients->len; i++) {
                Client *cl = td->clients->pdata[i];

                cl->teardown = td;
                if (cl->qemu && coord_proc_running(cl->qemu)) {
                    td->waiting++;
                    coord_proc_stop(cl->qemu, COORD_STOP_GRACE_MS);
                }
            }
        } else {
            for (i = 0; i < td->devices->len; i++) {
                DeviceVM *d = td->devices->pdata[i];

                d->teardown = td;
                g_cancellable_cancel(d->cancel);
                g_clear_handle_id(&d->poll_timer, g_source_remove);
                g_clear_handle_id(&d->ready_timer, g_source_remove);
                if (d->vm && coord_proc_running(d->vm)) {
                    td->waiting++;
                    coord_proc_stop(d->vm, COORD_STOP_GRACE_MS);
                }
                if (d->gateway && coord_proc_running(d->gateway)) {
                    td->waiting++;
                    coord_proc_stop(d->gateway, COORD_STOP_GRACE_MS);
                }
            }
        }
    }
    if (td->waiting) {
        return;
    }
    for (i = 0; i < td->clients->len; i++) {
        client_destroy(td->clients->pdata[i]);
    }
    for (i = 0; i < td->devices->len; i++) {
        device_destroy(td->devices->pdata[i]);
    }
    coord_place_all(co);
    coord_save_state(co);
    if (td->done) {
        td->done(td->data);
    }
    g_ptr_array_free(td->clients, true);
    g_ptr_array_free(td->devices, true);
    g_free(td);
}

/*
 * Let go of @cl: stop it (if it runs), then every device VM no other
 * client uses, free all that, then @done.
 */
static void client_release(Client *cl, void (*done)(gpointer), gpointer data)
{
    g_autoptr(GPtrArray) clients = g_ptr_array_new();
    g_autoptr(GPtrArray) devices = g_ptr_array_new();
    guint i;

    if (!cl->released) {
        cl->released = true;
        for (i = 0; i < cl->devices->len; i++) {
            DeviceVM *d = cl->devices->pdata[i];

            if (--d->users == 0 && !d->teardown) {
                g_ptr_array_add(devices, d);
            }
        }
    }
    g_ptr_array_add(clients, cl);
    teardown_start(cl->co, clients, devices, done, data);
}

/* ---- the up request ----------------------------------------------------- */

static Request *request_ref(Request *req)
{
    req->refs++;
    return req;
}

static void request_unref(Request *req)
{
    if (--req->refs) {
        return;
    }
    g_clear_handle_id(&req->qmp_timer, g_source_remove);
    g_clear_object(&req->qmp_in);
    g_clear_object(&req->qmp);
    g_object_unref(req->cancel);
    coord_conn_unref(req->conn);
    if (req->id) {
        json_node_unref(req->id);
    }
    g_ptr_array_free(req->new_devices, true);
    g_ptr_array_free(req->reasons, true);
    g_free(req->name);
    g_free(req);
}

static char *request_reasons(Request *req)
{
    g_autofree char *joined = NULL;

    g_ptr_array_add(req->reasons, NULL);
    joined = g_strjoinv("; ", (char **)req->reasons->pdata);
    g_ptr_array_remove_index(req->reasons, req->reasons->len - 1);
    return g_strdup_printf("cannot bring up client %s: %s", req->name,
                           joined);
}

static void request_failed_done(gpointer data)
{
    Request *req = data;
    g_autofree char *msg = request_reasons(req);

    g_warning("%s", msg);
    coord_conn_error(req->conn, req->id, "GenericError", "%s", msg);
    request_unref(req);
}

/*
 * Release everything reserved or started for @req, then reply with
 * every reason.
 */
static void request_fail(Request *req)
{
    Client *cl = req->client;
    g_autoptr(GPtrArray) clients = g_ptr_array_new();
    g_autoptr(GPtrArray) devices = g_ptr_array_new();
    guint i;

    if (req->finished) {
        return;
    }
    req->finished = true;
    req->client = NULL;     /* the teardown frees it */
    g_cancellable_cancel(req->cancel);
    g_clear_handle_id(&req->qmp_timer, g_source_remove);
    for (i = 0; i < req->new_devices->len; i++) {
        DeviceVM *d = req->new_devices->pdata[i];

        d->req = NULL;
    }
    if (cl) {
        cl->req = NULL;
        cl->released = true;
        for (i = 0; i < cl->devices->len; i++) {
            DeviceVM *d = cl->devices->pdata[i];

            d->users--;
        }
        g_ptr_array_add(clients, cl);
    }
    /* the device VMs started for it (none is reused before it is READY,
     * so no one else uses them) */
    for (i = 0; i < req->new_devices->len; i++) {
        DeviceVM *d = req->new_devices->pdata[i];

        if (d->users == 0 && !d->teardown) {
            g_ptr_array_add(devices, d);
        }
    }
    teardown_start(req->co, clients, devices, request_failed_done,
                   request_ref(req));
    request_unref(req);
}

static void request_succeed(Request *req)
{
    Client *cl = req->client;
    g_autoptr(JsonBuilder) b = json_builder_new();
    g_autofree char *secs = NULL;
    guint i;

    req->finished = true;
    cl->req = NULL;
    cl->state = CLIENT_RUNNING;
    cl->up_seconds = (g_get_monotonic_time() - req->started) / 1e6;
    secs = g_strdup_printf("%.3f", cl->up_seconds);
    g_message("client %s is running (pid %d), %s s after up", cl->name,
              (int)coord_proc_pid(cl->qemu), secs);
    coord_event(req->co, "CLIENT_RUNNING", "client", cl->name, "seconds",
                secs, NULL);
    coord_save_state(req->co);

    json_builder_begin_object(b);
    json_builder_set_member_name(b, "client");
    json_builder_add_string_value(b, cl->name);
    json_builder_set_member_name(b, "pid");
    json_builder_add_int_value(b, coord_proc_pid(cl->qemu));
    json_builder_set_member_name(b, "seconds");
    json_builder_add_double_value(b, cl->up_seconds);
    json_builder_set_member_name(b, "devices");
    json_builder_begin_array(b);
    for (i = 0; i < cl->devices->len; i++) {
        DeviceVM *d = cl->devices->pdata[i];
        CoordDeviceDesc *dd = cl->desc->devices->pdata[i];
        g_autofree char *res = device_reservation_str(d);

        json_builder_begin_object(b);
        json_builder_set_member_name(b, "name");
        json_builder_add_string_value(b, dd->name);
        json_builder_set_member_name(b, "device-vm");
        json_builder_add_string_value(b, d->id);
        json_builder_set_member_name(b, "reused");
        json_builder_add_boolean_value(b,
            !g_ptr_array_find(req->new_devices, d, NULL));
        json_builder_set_member_name(b, "reservation");
        json_builder_add_string_value(b, res);
        json_builder_set_member_name(b, "socket");
        json_builder_add_string_value(b, d->sock);
        json_builder_end_object(b);
    }
    json_builder_end_array(b);
    json_builder_end_object(b);
    coord_conn_return(req->conn, req->id, json_builder_get_root(b));
    request_unref(req);
}

static void qmp_line(GObject *src, GAsyncResult *res, gpointer data);

static void qmp_send(Request *req, const char *cmd)
{
    g_autoptr(GError) err = NULL;
    GOutputStream *out = g_io_stream_get_output_stream(G_IO_STREAM(req->qmp));

    if (!g_output_stream_write_all(out, cmd, strlen(cmd), NULL, req->cancel,
                                   &err)) {
        g_ptr_array_add(req->reasons, g_strdup_printf(
                            "client %s: QMP: %s", req->client->name,
                            err->message));
        request_fail(req);
        return;
    }
    g_data_input_stream_read_line_async(req->qmp_in, G_PRIORITY_DEFAULT,
                                        req->cancel, qmp_line,
                                        request_ref(req));
}

/* The client's QMP: greeting, qmp_capabilities, query-status. */
static void qmp_line(GObject *src, GAsyncResult *res, gpointer data)
{
    Request *req = data;
    g_autoptr(GError) err = NULL;
    g_autofree char *line = NULL;
    g_autoptr(JsonParser) parser = json_parser_new();
    JsonObject *obj;

    line = g_data_input_stream_read_line_finish(G_DATA_INPUT_STREAM(src),
                                                res, NULL, &err);
    if (req->finished) {
        goto out;
    }
    if (!line) {
        /* its exit (client_proc_exited) or the QMP timer says why */
        goto out;
    }
    if (!json_parser_load_from_data(parser, line, -1, NULL) ||
        !JSON_NODE_HOLDS_OBJECT(json_parser_get_root(parser))) {
        goto again;
    }
    obj = json_node_get_object(json_parser_get_root(parser));
    if (json_object_has_member(obj, "QMP")) {
        qmp_send(req, "{\"execute\": \"qmp_capabilities\"}\n"
                      "{\"execute\": \"query-status\", \"id\": \"st\"}\n");
        goto out;
    }
    if (json_object_has_member(obj, "return") &&
        !g_strcmp0(json_object_get_string_member_with_default(obj, "id", ""),
                   "st")) {
        JsonObject *ret = json_object_get_object_member(obj, "return");

        if (ret && json_object_get_boolean_member_with_default(
                ret, "running", false)) {
            g_clear_handle_id(&req->qmp_timer, g_source_remove);
            g_io_stream_close(G_IO_STREAM(req->qmp), NULL, NULL);
            request_succeed(req);
            goto out;
        }
        g_ptr_array_add(req->reasons, g_strdup_printf(
                            "client %s: QEMU is not running: %s",
                            req->client->name, line));
        request_fail(req);
        goto out;
    }
again:
    g_data_input_stream_read_line_async(req->qmp_in, G_PRIORITY_DEFAULT,
                                        req->cancel, qmp_line,
                                        request_ref(req));
out:
    request_unref(req);
}

/* Connect to the client's QMP socket, retrying until it listens. */
static gboolean qmp_try_connect(gpointer data)
{
    Request *req = data;
    g_autoptr(GSocketClient) sc = g_socket_client_new();
    g_autoptr(GSocketAddress) addr = NULL;
    g_autoptr(GError) err = NULL;

    if (g_get_monotonic_time() > req->qmp_deadline) {
        req->qmp_timer = 0;
        g_ptr_array_add(req->reasons, g_strdup_printf(
                            "client %s: QEMU did not report running within "
                            "%d s", req->client->name, COORD_QMP_TIMEOUT_S));
        request_fail(req);
        return G_SOURCE_REMOVE;
    }
    if (req->qmp) {
        return G_SOURCE_CONTINUE;   /* connected: this is the deadline */
    }
    addr = g_unix_socket_address_new(req->client->qmp_path);
    req->qmp = g_socket_client_connect(sc, G_SOCKET_CONNECTABLE(addr),
                                       req->cancel, &err);
    if (!req->qmp) {
        return G_SOURCE_CONTINUE;
    }
    req->qmp_in = g_data_input_stream_new(
        g_io_stream_get_input_stream(G_IO_STREAM(req->qmp)));
    g_data_input_stream_read_line_async(req->qmp_in, G_PRIORITY_DEFAULT,
                                        req->cancel, qmp_line,
                                        request_ref(req));
    return G_SOURCE_CONTINUE;
}

/* 216: every device is assigned: launch the client. */
static void client_launch(Request *req)
{
    Client *cl = req->client;
    CoordClientDesc *desc = cl->desc;
    g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);
    g_autofree char *log = g_build_filename(cl->dir, "qemu.log", NULL);
    g_autofree char *what = g_strdup_printf("client %s", cl->name);
    g_autoptr(GError) err = NULL;
    CoordSpawn spawn = { 0 };
    cpu_set_t cpus;
    guint i;

#define ARG(...) g_ptr_array_add(argv, g_strdup_printf(__VA_ARGS__))
    ARG("%s", cl->co->qemu);
    ARG("-M");
    ARG("%s,memory-backend=ram0", desc->machine);
    ARG("-m");
    ARG("%" G_GUINT64_FORMAT "M", desc->memory_mib);
    ARG("-object");
    ARG("memory-backend-memfd,id=ram0,size=%" G_GUINT64_FORMAT "M,share=on",
        desc->memory_mib);
    ARG("-smp");
    ARG("%u", desc->vcpus);
    ARG("-nodefaults");
    ARG("-display");
    ARG("none");
    ARG("-no-reboot");
    ARG("-accel");
    ARG("%s", cl->accel);
    ARG("-name");
    ARG("%s,debug-threads=on", cl->name);
    ARG("-run-with");
    ARG("exit-with-parent=on");
    ARG("-chardev");
    ARG("file,path=%s/serial.log,id=ser0", cl->dir);
    ARG("-serial");
    ARG("chardev:ser0");
    ARG("-qmp");
    ARG("unix:%s,server=on,wait=off", cl->qmp_path);
    for (i = 0; i < cl->devices->len; i++) {
        DeviceVM *d = cl->devices->pdata[i];
        CoordDeviceDesc *dd = desc->devices->pdata[i];

        ARG("-device");
        ARG("devvm-proxy,id=%s,socket=%s", dd->name, d->sock);
    }
    ARG("-kernel");
    ARG("%s", desc->kernel);
    if (desc->initrd) {
        ARG("-initrd");
        ARG("%s", desc->initrd);
    }
    if (desc->append) {
        ARG("-append");
        ARG("%s", desc->append);
    }
    for (i = 0; desc->extra_args && desc->extra_args[i]; i++) {
        ARG("%s", desc->extra_args[i]);
    }
#undef ARG
    g_ptr_array_add(argv, NULL);

    coord_cores_shared_set(&cl->co->cores, &cpus);
    spawn.what = what;
    spawn.argv = (const char *const *)argv->pdata;
    spawn.log_path = log;
    spawn.cpus = &cpus;
    coord_event(cl->co, "CLIENT_STARTING", "client", cl->name, NULL);
    cl->qemu = coord_proc_spawn(&spawn, client_proc_exited, cl, &err);
    if (!cl->qemu) {
        g_ptr_array_add(req->reasons, g_strdup(err->message));
        request_fail(req);
        return;
    }
    req->qmp_deadline = g_get_monotonic_time() +
                        COORD_QMP_TIMEOUT_S * G_USEC_PER_SEC;
    req->qmp_timer = g_timeout_add(COORD_POLL_MS, qmp_try_connect, req);
}

/* The client's QEMU exited while the request waited for it. */
static void request_client_exited(Request *req)
{
    g_autofree char *log = g_build_filename(req->client->dir, "qemu.log",
                                            NULL);
    g_autofree char *tail = coord_file_tail(log, 600);

    g_ptr_array_add(req->reasons, g_strdup_printf(
                        "client %s: QEMU %s before it ran%s%s",
                        req->client->name,
                        coord_proc_exit_str(req->client->qemu),
                        *tail ? ": " : "", g_strstrip(tail)));
}

/*
 * 204-208 for one device: reuse a running device VM, or check the type
 * and the resources and reserve them.  Reasons go to req->reasons.
 */
static void request_plan_device(Request *req, CoordDeviceDesc *dd)
{
    Coord *co = req->co;
    Client *cl = req->client;
    const CatalogEntry *e = catalog_find(co, dd->type);
    g_autofree char *who = g_strdup_printf("device %s", dd->name);
    g_autofree char *opts = dd->options ? g_strjoinv(";", dd->options)
                                        : g_strdup("");
    g_autoptr(GError) err = NULL;
    CoordPolicy policy;
    unsigned percent;
    DeviceVM *d;
    guint i;

    /* 206: can it be emulated? */
    if (!e) {
        g_autofree char *types = catalog_types(co);

        g_ptr_array_add(req->reasons, g_strdup_printf(
                            "%s: unknown type '%s' (the catalog has: %s)",
                            who, dd->type, *types ? types : "nothing"));
        return;
    }
    policy = dd->policy;
    percent = dd->percent;
    if (policy == COORD_POLICY_AUTO) {
        policy = e->needs.cores == DEVVM_NEEDS_CORE_EXCLUSIVE ?
                 COORD_POLICY_EXCLUSIVE : COORD_POLICY_SHARED;
        percent = e->needs.percent;
    }
    if (policy == COORD_POLICY_SHARED &&
        e->needs.cores == DEVVM_NEEDS_CORE_EXCLUSIVE) {
        g_ptr_array_add(req->reasons, g_strdup_printf(
                            "%s: reservation shared:%u, but its image %s "
                            "declares that it needs an exclusive core",
                            who, percent, e->image));
        return;
    }

    /* 204/214: a running device VM of that type that takes one more */
    for (i = 0; i < co->devices->len; i++) {
        d = co->devices->pdata[i];
        if (d->entry == e && d->state == DEV_READY && !d->teardown &&
            (e->needs.flags & DEVVM_NEEDS_F_SHAREABLE) &&
            d->users < e->needs.max_clients && d->policy == policy &&
            d->percent == percent && !strcmp(d->options_key, opts)) {
            d->users++;
            g_ptr_array_add(cl->devices, d);
            g_message("client %s: %s reuses device VM %s (%u of %u "
                      "clients)", cl->name, who, d->id, d->users,
                      e->needs.max_clients);
            return;
        }
    }

    /* 206/208: resources */
    d = device_new(co, e, dd, policy, percent);
    d->users = 1;
    d->req = req;
    g_ptr_array_add(req->new_devices, d);
    g_ptr_array_add(cl->devices, d);
    if (policy == COORD_POLICY_EXCLUSIVE) {
        if (!coord_cores_take_exclusive(&co->cores, who, &d->core, &err)) {
            g_ptr_array_add(req->reasons, g_strdup(err->message));
            return;
        }
    } else {
        if (!coord_cores_take_shared(&co->cores, who, percent, &err)) {
            g_ptr_array_add(req->reasons, g_strdup(err->message));
            return;
        }
        d->shared_taken = true;
    }
    if (coord_cgroups_enabled(co->cgroups)) {
        d->cgroup = coord_cgroup_new(co->cgroups, d->id,
                                     policy == COORD_POLICY_SHARED ? percent
                                                                   : 0,
                                     (guint64)(e->needs.memory_mib +
                                               COORD_VM_OVERHEAD_MIB) << 20,
                                     &err);
        if (!d->cgroup) {
            g_ptr_array_add(req->reasons, g_strdup_printf("%s: %s", who,
                                                          err->message));
        }
    }
}

/* Memory: the client and the new device VMs must fit in MemAvailable. */
static void request_check_memory(Request *req)
{
    g_autofree char *meminfo = NULL;
    guint64 need = req->client->desc->memory_mib, avail = 0;
    const char *p;
    guint i;

    for (i = 0; i < req->new_devices->len; i++) {
        DeviceVM *d = req->new_devices->pdata[i];

        need += d->entry->needs.memory_mib;
    }
    if (!g_file_get_contents("/proc/meminfo", &meminfo, NULL, NULL) ||
        !(p = strstr(meminfo, "MemAvailable:"))) {
        return;
    }
    avail = g_ascii_strtoull(p + strlen("MemAvailable:"), NULL, 10) / 1024;
    if (need > avail) {
        g_ptr_array_add(req->reasons, g_strdup_printf(
                            "the client and its new device VMs need %"
                            G_GUINT64_FORMAT " MiB of guest RAM; the host "
                            "has %" G_GUINT64_FORMAT " MiB available",
                            need, avail));
    }
}

static const char *coord_resolve_accel(Coord *co, CoordAccel accel)
{
    switch (accel) {
    case COORD_ACCEL_KVM:
        return "kvm";
    case COORD_ACCEL_TCG:
        return "tcg";
    default:
        return co->accel;
    }
}

static void cmd_up(Coord *co, CoordConn *conn, JsonObject *args,
                   JsonNode *id)
{
    const char *file = args ? json_object_get_string_member_with_default(
                                  args, "file", NULL) : NULL;
    g_autoptr(GError) err = NULL;
    g_autoptr(CoordClientDesc) desc = NULL;
    Request *req;
    Client *cl;
    guint i;

    if (!file || !g_path_is_absolute(file)) {
        coord_conn_error(conn, id, "GenericError", "up: expected "
                         "\"file\": the description's absolute path");
        return;
    }
    desc = coord_client_desc_load(file, &err);
    if (!desc) {
        coord_conn_error(conn, id, "GenericError", "%s", err->message);
        return;
    }
    if (client_find(co, desc->name)) {
        coord_conn_error(conn, id, "GenericError", "client %s is already "
                         "up (devvm-ctl down %s first)", desc->name,
                         desc->name);
        return;
    }
    if (co->quitting) {
        coord_conn_error(conn, id, "GenericError", "the coordinator is "
                         "shutting down");
        return;
    }

    cl = g_new0(Client, 1);
    cl->co = co;
    cl->name = g_strdup(desc->name);
    cl->desc = g_steal_pointer(&desc);
    cl->devices = g_ptr_array_new();
    cl->dir = g_build_filename(co->run_dir, "clients", cl->name, NULL);
    cl->qmp_path = g_build_filename(cl->dir, "qmp.sock", NULL);
    cl->accel = coord_resolve_accel(co, cl->desc->accel);
    g_ptr_array_add(co->clients, cl);

    req = g_new0(Request, 1);
    req->refs = 1;
    req->co = co;
    req->conn = coord_conn_ref(conn);
    req->id = id ? json_node_copy(id) : NULL;
    req->client = cl;
    req->name = g_strdup(cl->name);
    cl->req = req;
    req->new_devices = g_ptr_array_new();
    req->reasons = g_ptr_array_new_with_free_func(g_free);
    req->started = g_get_monotonic_time();
    req->cancel = g_cancellable_new();
    g_message("up %s: client %s, %u device%s", file, cl->name,
              cl->desc->devices->len, cl->desc->devices->len == 1 ? "" : "s");

    /* 204-208 for every device, so that every reason is reported */
    for (i = 0; i < cl->desc->devices->len; i++) {
        request_plan_device(req, cl->desc->devices->pdata[i]);
    }
    request_check_memory(req);
    if (g_mkdir_with_parents(cl->dir, 0700) < 0) {
        g_ptr_array_add(req->reasons, g_strdup_printf(
                            "cannot make %s: %s", cl->dir,
                            g_strerror(errno)));
    }
    if (req->reasons->len) {
        request_fail(req);
        return;
    }
    /* the new exclusive cores leave every other process now */
    coord_place_all(co);
    coord_save_state(co);
    /* 210: launch the new device VMs; 216 when all are READY */
    req->pending = req->new_devices->len;
    if (!req->pending) {
        client_launch(req);
        return;
    }
    request_ref(req);
    for (i = 0; i < req->new_devices->len && !req->finished; i++) {
        device_launch(req->new_devices->pdata[i]);
    }
    request_unref(req);
}

/* ---- status ------------------------------------------------------------- */

static char *thread_cpus(GPid pid, const char *tid)
{
    g_autofree char *path = g_strdup_printf("/proc/%d/task/%s/status",
                                            (int)pid, tid);
    g_autofree char *text = NULL;
    const char *p;

    if (!g_file_get_contents(path, &text, NULL, NULL) ||
        !(p = strstr(text, "Cpus_allowed_list:"))) {
        return g_strdup("?");
    }
    p += strlen("Cpus_allowed_list:");
    return g_strstrip(g_strndup(p, strcspn(p, "\n")));
}

/* "main 0, CPU 0/TCG 1": the distinct placements of @pid's threads */
static void add_threads(JsonBuilder *b, GPid pid)
{
    g_autofree char *dir = g_strdup_printf("/proc/%d/task", (int)pid);
    g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
    const char *tid;

    json_builder_set_member_name(b, "threads");
    json_builder_begin_array(b);
    while (d && (tid = g_dir_read_name(d))) {
        g_autofree char *comm_path = g_build_filename(dir, tid, "comm", NULL);
        g_autofree char *comm = NULL;
        g_autofree char *cpus = thread_cpus(pid, tid);

        if (!g_file_get_contents(comm_path, &comm, NULL, NULL)) {
            continue;
        }
        json_builder_begin_object(b);
        json_builder_set_member_name(b, "tid");
        json_builder_add_int_value(b, atoi(tid));
        json_builder_set_member_name(b, "name");
        json_builder_add_string_value(b, g_strstrip(comm));
        json_builder_set_member_name(b, "cpus");
        json_builder_add_string_value(b, cpus);
        json_builder_end_object(b);
    }
    json_builder_end_array(b);
}

static void add_proc(JsonBuilder *b, const char *key, CoordProc *p)
{
    json_builder_set_member_name(b, key);
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "pid");
    json_builder_add_int_value(b, p ? coord_proc_pid(p) : 0);
    json_builder_set_member_name(b, "running");
    json_builder_add_boolean_value(b, p && coord_proc_running(p));
    if (p && coord_proc_running(p)) {
        json_builder_set_member_name(b, "uptime");
        json_builder_add_double_value(b, coord_proc_uptime(p));
        add_threads(b, coord_proc_pid(p));
    } else if (p) {
        json_builder_set_member_name(b, "exit");
        json_builder_add_string_value(b, coord_proc_exit_str(p));
    }
    json_builder_end_object(b);
}

static JsonNode *coord_status(Coord *co)
{
    g_autoptr(JsonBuilder) b = json_builder_new();
    g_autofree char *host = coord_cpu_list(&co->cores.host);
    g_autofree char *excl = coord_cpu_list(&co->cores.exclusive);
    cpu_set_t shared;
    g_autofree char *shared_list = NULL;
    guint i, j;

    coord_cores_shared_set(&co->cores, &shared);
    shared_list = coord_cpu_list(&shared);
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "pid");
    json_builder_add_int_value(b, getpid());
    json_builder_set_member_name(b, "run-dir");
    json_builder_add_string_value(b, co->run_dir);
    json_builder_set_member_name(b, "accel");
    json_builder_add_string_value(b, co->accel);
    json_builder_set_member_name(b, "accel-reason");
    json_builder_add_string_value(b, co->accel_reason);
    json_builder_set_member_name(b, "cgroups");
    json_builder_add_string_value(b, coord_cgroups_describe(co->cgroups));
    json_builder_set_member_name(b, "cores");
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "host");
    json_builder_add_string_value(b, host);
    json_builder_set_member_name(b, "exclusive");
    json_builder_add_string_value(b, excl);
    json_builder_set_member_name(b, "shared");
    json_builder_add_string_value(b, shared_list);
    json_builder_set_member_name(b, "kept-for-clients");
    json_builder_add_int_value(b, co->cores.keep);
    json_builder_set_member_name(b, "shared-quota-percent");
    json_builder_add_int_value(b, co->cores.shared_percent);
    json_builder_end_object(b);

    json_builder_set_member_name(b, "catalog");
    json_builder_begin_array(b);
    for (i = 0; i < co->catalog->len; i++) {
        CatalogEntry *e = co->catalog->pdata[i];
        g_autofree char *cores = devvm_needs_cores_str(&e->needs);
        g_autofree char *ids = g_strdup_printf("%04x:%04x",
                                               e->needs.vendor_id,
                                               e->needs.device_id);

        json_builder_begin_object(b);
        json_builder_set_member_name(b, "type");
        json_builder_add_string_value(b, e->needs.name);
        json_builder_set_member_name(b, "image");
        json_builder_add_string_value(b, e->image);
        json_builder_set_member_name(b, "pci-ids");
        json_builder_add_string_value(b, ids);
        json_builder_set_member_name(b, "cores");
        json_builder_add_string_value(b, cores);
        json_builder_set_member_name(b, "memory-mib");
        json_builder_add_int_value(b, e->needs.memory_mib);
        json_builder_set_member_name(b, "shareable");
        json_builder_add_boolean_value(b, e->needs.flags &
                                          DEVVM_NEEDS_F_SHAREABLE);
        json_builder_set_member_name(b, "max-clients");
        json_builder_add_int_value(b, e->needs.max_clients);
        json_builder_end_object(b);
    }
    json_builder_end_array(b);

    json_builder_set_member_name(b, "clients");
    json_builder_begin_array(b);
    for (i = 0; i < co->clients->len; i++) {
        Client *cl = co->clients->pdata[i];

        json_builder_begin_object(b);
        json_builder_set_member_name(b, "name");
        json_builder_add_string_value(b, cl->name);
        json_builder_set_member_name(b, "state");
        json_builder_add_string_value(b, client_state_names[cl->state]);
        json_builder_set_member_name(b, "accel");
        json_builder_add_string_value(b, cl->accel);
        json_builder_set_member_name(b, "up-seconds");
        json_builder_add_double_value(b, cl->up_seconds);
        json_builder_set_member_name(b, "description");
        json_builder_add_string_value(b, cl->desc->path);
        json_builder_set_member_name(b, "dir");
        json_builder_add_string_value(b, cl->dir);
        add_proc(b, "qemu", cl->qemu);
        json_builder_set_member_name(b, "devices");
        json_builder_begin_array(b);
        for (j = 0; j < cl->devices->len; j++) {
            DeviceVM *d = cl->devices->pdata[j];
            CoordDeviceDesc *dd = cl->desc->devices->pdata[j];

            json_builder_begin_object(b);
            json_builder_set_member_name(b, "name");
            json_builder_add_string_value(b, dd->name);
            json_builder_set_member_name(b, "device-vm");
            json_builder_add_string_value(b, d->id);
            json_builder_end_object(b);
        }
        json_builder_end_array(b);
        json_builder_end_object(b);
    }
    json_builder_end_array(b);

    json_builder_set_member_name(b, "device-vms");
    json_builder_begin_array(b);
    for (i = 0; i < co->devices->len; i++) {
        DeviceVM *d = co->devices->pdata[i];
        g_autofree char *res = device_reservation_str(d);

        json_builder_begin_object(b);
        json_builder_set_member_name(b, "id");
        json_builder_add_string_value(b, d->id);
        json_builder_set_member_name(b, "type");
        json_builder_add_string_value(b, d->entry->needs.name);
        json_builder_set_member_name(b, "state");
        json_builder_add_string_value(b, dev_state_names[d->state]);
        if (d->failure) {
            json_builder_set_member_name(b, "failure");
            json_builder_add_string_value(b, d->failure);
        }
        json_builder_set_member_name(b, "reservation");
        json_builder_add_string_value(b, res);
        json_builder_set_member_name(b, "core");
        json_builder_add_int_value(b, d->core);
        if (d->cgroup) {
            g_autofree char *dirs = coord_cgroup_describe(d->cgroup);
            g_autofree char *limits = coord_cgroup_read_limits(d->cgroup);

            json_builder_set_member_name(b, "cgroup");
            json_builder_add_string_value(b, dirs);
            json_builder_set_member_name(b, "limits");
            json_builder_add_string_value(b, limits);
        }
        json_builder_set_member_name(b, "users");
        json_builder_add_int_value(b, d->users);
        json_builder_set_member_name(b, "max-clients");
        json_builder_add_int_value(b, d->entry->needs.max_clients);
        json_builder_set_member_name(b, "socket");
        json_builder_add_string_value(b, d->sock);
        json_builder_set_member_name(b, "dir");
        json_builder_add_string_value(b, d->dir);
        if (d->ready_at) {
            json_builder_set_member_name(b, "ready-seconds");
            json_builder_add_double_value(b, (d->ready_at - d->launched) /
                                             1e6);
        }
        add_proc(b, "vm", d->vm);
        add_proc(b, "gateway", d->gateway);
        json_builder_end_object(b);
    }
    json_builder_end_array(b);
    json_builder_end_object(b);
    return json_builder_get_root(b);
}

/* The state a restarted coordinator needs, in RUN/state.json. */
static void coord_save_state(Coord *co)
{
    g_autoptr(JsonNode) st = coord_status(co);
    g_autofree char *text = json_to_string(st, true);
    g_autofree char *path = g_build_filename(co->run_dir, "state.json", NULL);
    g_autoptr(GError) err = NULL;

    if (!g_file_set_contents_full(path, text, -1,
                                  G_FILE_SET_CONTENTS_CONSISTENT, 0600,
                                  &err)) {
        g_warning("%s", err->message);
    }
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

static void coord_dispatch(CoordConn *conn, const char *command,
                           JsonObject *args, JsonNode *id, gpointer opaque)
{
    Coord *co = opaque;

    if (!strcmp(command, "up")) {
        cmd_up(co, conn, args, id);
    } else if (!strcmp(command, "down")) {
        cmd_down(co, conn, args, id);
    } else if (!strcmp(command, "query-status")) {
        coord_conn_return(conn, id, coord_status(co));
    } else if (!strcmp(command, "query-logs")) {
        cmd_logs(co, conn, args, id);
    } else if (!strcmp(command, "qmp_capabilities")) {
        coord_conn_return(conn, id, NULL);
    } else {
        coord_conn_error(conn, id, "CommandNotFound", "the command %s has "
                         "not been found (expected up, down, query-status "
                         "or query-logs)", command);
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

/* The run directory: ours, 0700, not a symlink; one coordinator. */
static bool coord_setup_run_dir(Coord *co, GError **errp)
{
    g_autofree char *lock = NULL, *log = NULL, *clients = NULL;
    g_autofree char *devices = NULL;
    struct stat st;

    if (g_mkdir_with_parents(co->run_dir, 0700) < 0) {
        g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(errno),
                    "cannot make the run directory %s: %s", co->run_dir,
                    g_strerror(errno));
        return false;
    }
    if (lstat(co->run_dir, &st) < 0 || !S_ISDIR(st.st_mode) ||
        st.st_uid != geteuid() || (st.st_mode & 0777) != 0700) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED,
                    "the run directory %s must be a directory (not a "
                    "symlink) of uid %u with mode 0700", co->run_dir,
                    (unsigned)geteuid());
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
    clients = g_build_filename(co->run_dir, "clients", NULL);
    devices = g_build_filename(co->run_dir, "devices", NULL);
    if (g_rmdir(clients) < 0 && errno == ENOTEMPTY) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_EXISTS,
                    "%s is not empty: a coordinator that did not stop "
                    "cleanly left clients there (recovering them is not "
                    "written yet; stop them and remove the directory)",
                    clients);
        return false;
    }
    if (g_rmdir(devices) < 0 && errno == ENOTEMPTY) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_EXISTS,
                    "%s is not empty: a coordinator that did not stop "
                    "cleanly left device VMs there (recovering them is not "
                    "written yet; stop them and remove the directory)",
                    devices);
        return false;
    }
    log = g_build_filename(co->run_dir, "coordinator.log", NULL);
    co->log = fopen(log, "ae");
    if (!co->log) {
        g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(errno),
                    "cannot open %s: %s", log, g_strerror(errno));
        return false;
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
"usage: devvm-coordinator --image PATH [--image PATH]... [options]\n"
"\n"
"Brings up client VMs with the device VMs they need (devvm-ctl up).\n"
"\n"
"  -i, --image PATH        a device image: its needs note makes a type of\n"
"                          the catalog (repeat for more types)\n"
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
"  -h, --help              this text\n"
"\n"
"Prints \"ready RUN/control.sock\" once it listens.  SIGTERM or SIGINT:\n"
"stops every client and device VM, releases their resources, exits 0.\n");
}

int main(int argc, char **argv)
{
    enum { OPT_QEMU = 256, OPT_GATEWAY, OPT_PROBE };
    static const struct option longopts[] = {
        { "image", required_argument, NULL, 'i' },
        { "run-dir", required_argument, NULL, 'r' },
        { "qemu", required_argument, NULL, OPT_QEMU },
        { "gateway", required_argument, NULL, OPT_GATEWAY },
        { "kvm-probe", required_argument, NULL, OPT_PROBE },
        { "accel", required_argument, NULL, 'a' },
        { "keep-cores", required_argument, NULL, 'k' },
        { "cgroups", required_argument, NULL, 'c' },
        { "ready-timeout", required_argument, NULL, 't' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    static Coord coord;
    Coord *co = &coord;
    g_autoptr(GPtrArray) images = g_ptr_array_new();
    g_autoptr(GError) err = NULL;
    const char *run_dir = NULL, *qemu = NULL, *gateway = NULL;
    const char *probe = NULL, *accel = "auto", *cgroups = "auto";
    CoordCgroupMode cg_mode;
    guint64 keep = 1, timeout = 30;
    g_autofree char *sock = NULL;
    guint i;
    int opt;

    while ((opt = getopt_long(argc, argv, "i:r:a:k:c:t:h", longopts,
                              NULL)) != -1) {
        switch (opt) {
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

    g_log_set_writer_func(coord_log_writer, co, NULL);
    co->ready_timeout_s = timeout;
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
    if (!images->len) {
        g_warning("no --image: the catalog would be empty");
        return 2;
    }
    for (i = 0; i < images->len; i++) {
        if (!catalog_add(co, images->pdata[i], &err)) {
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

        g_unlink(state);
        g_rmdir(clients);
        g_rmdir(devices);
    }
    g_message("stopped");
    return 0;
}
