/*
 * devvm-coordinator: device VMs and their gateways: launch, READY, failure, release.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <sys/stat.h>

#include "coordinator.h"

char *device_reservation_str(const DeviceVM *d)
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
    g_free(d->failure);
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

/* ---- recovery ------------------------------------------------------------ */

/* how long a restart waits for the gateway to see the old QEMU gone */
#define DEVICE_GW_NOTICE_MS     2000

static void device_launch_vm(DeviceVM *d);
static void device_launch_process(DeviceVM *d);
static void device_launch_gateway(DeviceVM *d,
                                  const struct devvm_needs *n);
static void device_lost(DeviceVM *d, char *reason);
static void device_is_ready(DeviceVM *d);

static gboolean device_restart(gpointer data)
{
    DeviceVM *d = data;
    g_autoptr(GError) err = NULL;

    d->restart_timer = 0;
    if (d->entry->process) {
        d->restarts++;
        d->recent_restarts++;
        coord_proc_free(d->vm);
        d->vm = NULL;
        g_clear_object(&d->gw_out);
        g_message("device %s: restart %u of %u", d->id, d->recent_restarts,
                  d->co->max_restarts);
        device_launch_process(d);
        return G_SOURCE_REMOVE;
    }
    /*
     * The gateway takes one device VM at a time: until it has noticed the
     * old one's socket close (and logged its generation failed), it would
     * refuse the new one.
     */
    if (!d->new_gateway && d->failed_generation != d->generation &&
        d->restart_waits++ < DEVICE_GW_NOTICE_MS / COORD_POLL_MS) {
        d->restart_timer = g_timeout_add(COORD_POLL_MS, device_restart, d);
        return G_SOURCE_REMOVE;
    }
    d->restart_waits = 0;
    d->restarts++;
    d->recent_restarts++;
    coord_proc_free(d->vm);
    d->vm = NULL;
    if (!d->new_gateway) {
        g_message("device VM %s: restart %u of %u behind the same gateway",
                  d->id, d->recent_restarts, d->co->max_restarts);
        device_launch_vm(d);
        return G_SOURCE_REMOVE;
    }
    /* a new gateway in the same directory: the clients reconnect to it */
    g_message("device VM %s: restart %u of %u with a new gateway", d->id,
              d->recent_restarts, d->co->max_restarts);
    coord_proc_free(d->gateway);
    d->gateway = NULL;
    d->generation = d->failed_generation = 0;
    g_clear_object(&d->gw_out);
    g_clear_object(&d->gw_err);
    if (!coord_remove_tree(d->gw_dir, &err)) {
        device_lost(d, g_strdup(err->message));
        return G_SOURCE_REMOVE;
    }
    device_launch(d);
    if (d->gateway) {
        /* from now on a restart is behind this one */
        d->new_gateway = false;
    }
    return G_SOURCE_REMOVE;
}

/* Its QEMU is gone: start another after the backoff, or give up. */
static void device_schedule_restart(DeviceVM *d)
{
    Coord *co = d->co;
    guint delay = co->backoff_ms;
    unsigned i;

    if (d->recent_restarts >= co->max_restarts) {
        g_free(d->failure);
        d->failure = g_strdup_printf("gave up after %u restart%s; last "
                                     "failure: %s", d->recent_restarts,
                                     d->recent_restarts == 1 ? "" : "s",
                                     d->last_failure);
        d->state = DEV_FAILED;
        g_warning("device VM %s failed: %s; its clients see the device "
                  "failed; its resources are kept until down", d->id,
                  d->failure);
        coord_event(co, "DEVICE_FAILED", "device-vm", d->id, "reason",
                    d->failure, "action", "none", NULL);
        coord_save_state(co);
        return;
    }
    for (i = 0; i < d->recent_restarts && delay < COORD_BACKOFF_MAX_MS;
         i++) {
        delay *= 2;
    }
    delay = MIN(delay, COORD_BACKOFF_MAX_MS);
    g_message("device VM %s: restarting in %u ms", d->id, delay);
    d->restart_timer = g_timeout_add(delay, device_restart, d);
}

/*
 * A device VM that was READY (or is coming back) is lost: its QEMU
 * exited, the gateway reported FAILED or died, or a new QEMU did not
 * become READY.  Stop what is left of its QEMU, then restart it on the
 * same core and cgroup, behind the same gateway (or a new one when
 * d->new_gateway).  @reason is taken.
 */
static void device_lost(DeviceVM *d, char *reason)
{
    if (d->state == DEV_READY) {
        d->lost_at = g_get_monotonic_time();
        /* READY for the whole window: its earlier restarts are history */
        if (d->ready_at && d->lost_at - d->ready_at >=
            (gint64)d->co->restart_window_s * G_USEC_PER_SEC) {
            d->recent_restarts = 0;
        }
    }
    g_free(d->last_failure);
    d->last_failure = reason;
    g_free(d->last_failure_time);
    {
        g_autoptr(GDateTime) now = g_date_time_new_now_local();

        d->last_failure_time = g_date_time_format_iso8601(now);
    }
    d->state = DEV_RESTARTING;
    g_clear_handle_id(&d->ready_timer, g_source_remove);
    g_warning("device VM %s lost: %s", d->id, d->last_failure);
    coord_event(d->co, "DEVICE_FAILED", "device-vm", d->id, "reason",
                d->last_failure, "action",
                d->recent_restarts < d->co->max_restarts ? "restart"
                                                         : "none",
                NULL);
    if (d->vm && coord_proc_running(d->vm)) {
        d->stopping_vm = true;
        coord_proc_stop(d->vm, COORD_STOP_GRACE_MS);
    } else {
        device_schedule_restart(d);
    }
    coord_save_state(d->co);
}

/* The gateway's next generation is READY: its clients resume. */
static void device_ready_again(DeviceVM *d)
{
    g_autofree char *secs = NULL, *loss = NULL, *restarts = NULL;

    d->state = DEV_READY;
    d->ready_at = g_get_monotonic_time();
    d->loss_window = (d->ready_at - d->lost_at) / 1e6;
    g_clear_handle_id(&d->ready_timer, g_source_remove);
    g_free(d->failure);
    d->failure = NULL;
    secs = g_strdup_printf("%.3f", (d->ready_at - d->launched) / 1e6);
    loss = g_strdup_printf("%.3f", d->loss_window);
    restarts = g_strdup_printf("%u", d->restarts);
    g_message("device VM %s is READY again (generation %u, restart %u): "
              "%.3f s after its QEMU started, %.3f s after it was lost",
              d->id, d->generation, d->restarts,
              (d->ready_at - d->launched) / 1e6, d->loss_window);
    coord_event(d->co, "DEVICE_READY", "device-vm", d->id, "socket",
                d->sock, "seconds", secs, "restarts", restarts,
                "loss-window", loss, NULL);
    coord_place_all(d->co);
    coord_save_state(d->co);
}

/* Starting or restarting failed with @msg. */
static void device_launch_failed(DeviceVM *d, const char *msg)
{
    if (d->state == DEV_RESTARTING) {
        device_lost(d, g_strdup(msg));
    } else {
        device_failed(d, "%s", msg);
    }
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
        bool process = d->entry->process;
        g_autofree char *serial = g_build_filename(
            d->dir, process ? "device.log" : "serial.log", NULL);
        /* a QEMU killed by a signal did not end with a message */
        g_autofree char *tail =
            g_str_has_prefix(coord_proc_exit_str(p), "killed by signal") ?
            g_strdup("") : coord_file_tail(serial, 400);
        char *why = g_strdup_printf("its %s %s%s%s",
                                    process ? "process" : "QEMU",
                                    coord_proc_exit_str(p),
                                    *tail ? process ? "; its log ended "
                                                      "with: "
                                                    : "; its serial output "
                                                      "ended with: " : "",
                                    g_strstrip(tail));

        if (d->state == DEV_STARTING) {
            device_failed(d, "%s", why);
            g_free(why);
        } else if (d->state == DEV_FAILED) {
            g_free(why);
        } else if (d->stopping_vm) {
            /* the exit device_lost() asked for, or one it saw coming */
            char *both = g_strdup_printf("%s; its %s %s", d->last_failure,
                                         d->entry->process ? "process"
                                                           : "QEMU",
                                         coord_proc_exit_str(p));

            d->stopping_vm = false;
            g_free(why);
            g_free(d->last_failure);
            d->last_failure = both;
            device_schedule_restart(d);
        } else {
            device_lost(d, why);
        }
    } else {
        g_autofree char *log = g_build_filename(d->dir, "gateway.log", NULL);
        g_autofree char *tail =
            g_str_has_prefix(coord_proc_exit_str(p), "killed by signal") ?
            g_strdup("") : coord_file_tail(log, 400);

        char *why = g_strdup_printf("its gateway %s%s%s",
                                    coord_proc_exit_str(p),
                                    *tail ? "; its log ended with: " : "",
                                    g_strstrip(tail));

        if (d->state == DEV_STARTING) {
            device_failed(d, "%s", why);
            g_free(why);
        } else if (d->state == DEV_FAILED) {
            /* failed for good: stop what is left, keep the resources */
            if (d->vm && coord_proc_running(d->vm)) {
                coord_proc_stop(d->vm, COORD_STOP_GRACE_MS);
            }
            g_free(why);
        } else {
            /*
             * The device memory died with it: restart both, the device
             * VM stopped first; the clients' devvm-proxy reconnects to
             * the new gateway's socket (its reconnect-ms).
             */
            g_clear_handle_id(&d->restart_timer, g_source_remove);
            g_clear_handle_id(&d->poll_timer, g_source_remove);
            d->new_gateway = true;
            if (d->state == DEV_RESTARTING && !d->stopping_vm &&
                !(d->vm && coord_proc_running(d->vm))) {
                /* between restarts: record it, restart both */
                d->state = DEV_READY;
            }
            device_lost(d, why);
        }
    }
}

/*
 * The READY wait counts one-second ticks, not wall time: a host that was
 * suspended or a VM that was paused fires an overdue timer at once, and
 * the device (whose READY line may be unread yet) was not given its
 * time.  Low priority, so that a line already in the gateway's pipe is
 * read first.
 */
static gboolean device_ready_tick(gpointer data)
{
    DeviceVM *d = data;
    g_autofree char *msg = NULL;

    if (++d->ready_ticks < d->co->ready_timeout_s) {
        return G_SOURCE_CONTINUE;
    }
    msg = g_strdup_printf("not READY within %u s (raise --ready-timeout?)",
                          d->co->ready_timeout_s);
    d->ready_timer = 0;
    device_launch_failed(d, msg);
    return G_SOURCE_REMOVE;
}

/* Wait for READY (device_ready_tick) from now on. */
static void device_wait_ready(DeviceVM *d)
{
    d->ready_ticks = 0;
    d->ready_timer = g_timeout_add_seconds_full(G_PRIORITY_LOW, 1,
                                                device_ready_tick, d, NULL);
}

/*
 * The line a read_line_async() on a gateway pipe gave: NULL at EOF (the
 * exit is handled by device_proc_exited) and when cancelled (the device
 * VM may be freed already: do not touch it).
 */
static char *device_line_finish(GObject *src, GAsyncResult *res)
{
    return g_data_input_stream_read_line_finish(G_DATA_INPUT_STREAM(src),
                                                res, NULL, NULL);
}

/* Read the next line of a gateway pipe of @d into @cb. */
static void device_read_line(DeviceVM *d, GDataInputStream *in,
                             GAsyncReadyCallback cb)
{
    g_data_input_stream_read_line_async(in, G_PRIORITY_DEFAULT, d->cancel,
                                        cb, d);
}

/*
 * A line of the gateway's log (its stderr): copied to gateway.log, and
 * watched for "device generation N: READY" (a restarted device VM is
 * serving) and "device generation N: failed: WHY" (the runtime reported
 * a fault, or the heartbeat stopped, while its QEMU may still run).
 */
static void device_err_line(GObject *src, GAsyncResult *res, gpointer data)
{
    g_autofree char *line = device_line_finish(src, res);
    DeviceVM *d = data;
    const char *rest;
    unsigned gen;
    int n = 0;

    if (!line) {
        return;
    }
    if (d->gw_log) {
        fprintf(d->gw_log, "%s\n", line);
        fflush(d->gw_log);
    }
    if (sscanf(line, "devvm-gateway: device generation %u: %n", &gen,
               &n) == 1 && n > 0) {
        rest = line + n;
        if (g_str_has_prefix(rest, "READY")) {
            d->generation = gen;
            if (d->state == DEV_RESTARTING && d->vm &&
                coord_proc_running(d->vm) && !d->stopping_vm) {
                device_ready_again(d);
            }
        } else if (!g_ascii_strncasecmp(rest, "failed", 6)) {
            d->failed_generation = gen;
            if (d->state == DEV_READY && gen == d->generation) {
                device_lost(d, g_strdup_printf("the gateway reported %s",
                                               rest));
            }
        }
    } else if (g_str_has_prefix(line, "devvm-gateway: device VM refused: ") &&
               d->state == DEV_RESTARTING && d->vm &&
               coord_proc_running(d->vm) && !d->stopping_vm) {
        /* the restarted QEMU will never be READY */
        device_lost(d, g_strdup_printf("the gateway %s",
                                       line + strlen("devvm-gateway: ")));
    }
    device_read_line(d, d->gw_err, device_err_line);
}

/* A line on the gateway's stdout: "ready DIR/device.sock" */
static void device_gw_line(GObject *src, GAsyncResult *res, gpointer data)
{
    g_autofree char *line = device_line_finish(src, res);
    g_autofree char *want = NULL;
    DeviceVM *d = data;

    if (!line) {
        return;
    }
    want = g_strdup_printf("ready %s", d->sock);
    if (strcmp(line, want) || d->state != DEV_STARTING) {
        /* a restarted gateway's READY is seen in its log (device_err_line) */
        g_message("device VM %s: gateway says: %s", d->id, line);
        device_read_line(d, d->gw_out, device_gw_line);
        return;
    }
    device_read_line(d, d->gw_out, device_gw_line);
    device_is_ready(d);
}

/* A line on a process-mode device's stdout: "ready" once it listens. */
static void device_process_line(GObject *src, GAsyncResult *res,
                                gpointer data)
{
    g_autofree char *line = device_line_finish(src, res);
    DeviceVM *d = data;

    if (!line) {
        return;
    }
    device_read_line(d, d->gw_out, device_process_line);
    if (strcmp(line, "ready")) {
        g_message("device %s says: %s", d->id, line);
    } else if (d->state == DEV_STARTING) {
        device_is_ready(d);
    } else if (d->state == DEV_RESTARTING && !d->stopping_vm) {
        device_ready_again(d);
    }
}

/* 210 done: READY; the request waiting for it goes on. */
static void device_is_ready(DeviceVM *d)
{
    d->state = DEV_READY;
    d->ready_at = g_get_monotonic_time();
    g_clear_handle_id(&d->ready_timer, g_source_remove);
    g_message("device%s %s is READY %.3f s after its %s started",
              d->entry->process ? "" : " VM", d->id,
              (d->ready_at - d->launched) / 1e6,
              d->entry->process ? "process" : "QEMU");
    {
        g_autofree char *secs = g_strdup_printf(
            "%.3f", (d->ready_at - d->launched) / 1e6);

        coord_event(d->co, "DEVICE_READY", "device-vm", d->id, "socket",
                    d->sock, "seconds", secs, "mode",
                    d->entry->process ? "process" : "vm", NULL);
    }
    coord_place_all(d->co);
    coord_save_state(d->co);
    device_wake_sharers(d);
    if (d->req) {
        Request *req = d->req;

        d->req = NULL;
        if (--req->pending == 0 && !req->finished) {
            request_devices_ready(req);
        }
    }
}

/*
 * Start @d's own process (its QEMU, or the process-mode binary) as
 * @spawn says and check that it joined its cgroup; false (and the launch
 * failed) if not.
 */
static bool device_spawn(DeviceVM *d, const CoordSpawn *spawn)
{
    g_autoptr(GError) err = NULL;

    d->launched = g_get_monotonic_time();
    d->vm = coord_proc_spawn(spawn, device_proc_exited, d, &err);
    if (!d->vm ||
        (d->cgroup && !coord_cgroup_has_pid(d->cgroup, coord_proc_pid(d->vm),
                                            &err))) {
        device_launch_failed(d, err->message);
        return false;
    }
    return true;
}

/* Start the device VM's QEMU once the gateway listens for it. */
static void device_launch_vm(DeviceVM *d)
{
    const struct devvm_needs *n = &d->entry->needs;
    g_autofree char *accel = NULL, *mem = NULL, *name = NULL;
    g_autofree char *ivs = NULL, *ivdev = NULL, *serial = NULL, *dmaw = NULL;
    g_autofree char *append = NULL, *log = NULL, *run_with = NULL;
    g_autoptr(GPtrArray) argv = g_ptr_array_new();
    CoordSpawn spawn = { 0 };
    cpu_set_t cpus;
    bool ok;

    accel = d->core >= 0 ? g_strdup_printf("%s,vcpu-affinity=%d",
                                           d->co->accel, d->core)
                         : g_strdup(d->co->accel);
    mem = g_strdup_printf("%uM", n->memory_mib);
    name = g_strdup_printf("%s,debug-threads=on", d->id);
    ivs = g_strdup_printf("socket,path=%s/ivshmem.sock,id=ivs", d->gw_dir);
    ivdev = g_strdup_printf("ivshmem-doorbell,chardev=ivs,vectors=%u",
                            2 * n->max_clients);
    dmaw = g_strdup_printf("socket,path=%s/dma.sock,id=dmaw", d->gw_dir);
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
    /* with a uid of its own: QEMU sets up as root, then drops to it */
    run_with = d->uid ? g_strdup_printf("exit-with-parent=on,user=%u:%u",
                                        d->uid, d->uid)
                      : g_strdup("exit-with-parent=on");
    g_ptr_array_add(argv, "-run-with");
    g_ptr_array_add(argv, run_with);
    g_ptr_array_add(argv, "-chardev");
    g_ptr_array_add(argv, ivs);
    g_ptr_array_add(argv, "-device");
    g_ptr_array_add(argv, ivdev);
    /* zero-copy DMA: the gateway places client memory in its window */
    g_ptr_array_add(argv, "-chardev");
    g_ptr_array_add(argv, dmaw);
    g_ptr_array_add(argv, "-device");
    g_ptr_array_add(argv, "devvm-dma-window,chardev=dmaw");
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

    device_allowed_cpus(d, &cpus);
    log = g_build_filename(d->dir, "vm.log", NULL);
    spawn.what = g_strdup_printf("device VM %s", d->id);
    spawn.argv = (const char *const *)argv->pdata;
    spawn.log_path = log;
    spawn.cpus = &cpus;
    spawn.cgroup = d->cgroup;
    ok = device_spawn(d, &spawn);
    g_free((char *)spawn.what);
    if (!ok) {
        return;
    }
    device_wait_ready(d);
}

/* Wait for the gateway's ivshmem socket, then start the device VM. */
static gboolean device_poll_gateway(gpointer data)
{
    DeviceVM *d = data;
    g_autofree char *ivs = g_build_filename(d->gw_dir, "ivshmem.sock", NULL);

    if (!g_file_test(ivs, G_FILE_TEST_EXISTS)) {
        if ((g_get_monotonic_time() - d->launched) / G_USEC_PER_SEC >=
            d->co->ready_timeout_s) {
            g_autofree char *msg = g_strdup_printf(
                "its gateway made no %s within %u s", ivs,
                d->co->ready_timeout_s);

            d->poll_timer = 0;
            device_launch_failed(d, msg);
            return G_SOURCE_REMOVE;
        }
        return G_SOURCE_CONTINUE;
    }
    d->poll_timer = 0;
    device_launch_vm(d);
    return G_SOURCE_REMOVE;
}

/*
 * RUN/devices/ID: the coordinator's (its logs are written there as
 * root: a device uid must not be able to plant a symlink); 0711 when
 * the device runs as a uid of its own, which then owns only what it
 * makes inside (the gateway's gw/).
 */
static bool device_make_dir(DeviceVM *d, GError **errp)
{
    if ((g_mkdir_with_parents(d->dir, 0700) < 0 && errno != EEXIST) ||
        chmod(d->dir, d->uid ? 0711 : 0700) < 0) {
        g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(errno),
                    "cannot make %s: %s", d->dir, g_strerror(errno));
        return false;
    }
    return true;
}

/*
 * 210 for a process-mode device: BINARY --socket RUN/devices/ID/
 * device.sock, READY when it prints "ready"; on its exclusive core
 * alone, or on the shared cores in its cgroup.
 */
static void device_launch_process(DeviceVM *d)
{
    const struct devvm_needs *n = &d->entry->needs;
    g_autofree char *log = g_build_filename(d->dir, "device.log", NULL);
    g_autofree char *what = g_strdup_printf("device %s", d->id);
    g_autofree char *max = g_strdup_printf("%u", n->max_clients);
    g_autofree char *run_as = g_strdup_printf("%u:%u", d->uid, d->uid);
    g_autoptr(GPtrArray) argv = g_ptr_array_new();
    g_autoptr(GError) err = NULL;
    CoordSpawn spawn = {
        .what = what, .log_path = log, .stdout_pipe = true,
        .cgroup = d->cgroup,
    };
    cpu_set_t cpus;
    guint i;

    g_ptr_array_add(argv, d->entry->image);
    g_ptr_array_add(argv, "--socket");
    g_ptr_array_add(argv, d->sock);
    g_ptr_array_add(argv, "--max-clients");
    g_ptr_array_add(argv, max);
    if (d->uid) {
        g_ptr_array_add(argv, "--run-as");
        g_ptr_array_add(argv, run_as);
    }
    for (i = 0; d->options && d->options[i]; i++) {
        g_ptr_array_add(argv, "--param");
        g_ptr_array_add(argv, d->options[i]);
    }
    g_ptr_array_add(argv, NULL);
    spawn.argv = (const char *const *)argv->pdata;
    device_allowed_cpus(d, &cpus);
    spawn.cpus = &cpus;
    if (!device_make_dir(d, &err)) {
        device_launch_failed(d, err->message);
        return;
    }
    /* a killed one left its socket: the next could not bind it */
    if (unlink(d->sock) < 0 && errno != ENOENT) {
        g_autofree char *msg = g_strdup_printf("cannot remove %s: %s",
                                               d->sock, g_strerror(errno));

        device_launch_failed(d, msg);
        return;
    }
    if (!device_spawn(d, &spawn)) {
        return;
    }
    d->gw_out = g_data_input_stream_new(coord_proc_stdout(d->vm));
    device_read_line(d, d->gw_out, device_process_line);
    device_wait_ready(d);
    if (d->state == DEV_STARTING) {
        g_autofree char *res = device_reservation_str(d);

        coord_event(d->co, "DEVICE_STARTING", "device-vm", d->id, "type",
                    n->name, "reservation", res, "mode", "process", NULL);
    }
}

/* 210: create, configure and launch the device VM (gateway first). */
void device_launch(DeviceVM *d)
{
    const struct devvm_needs *n = &d->entry->needs;

    if (d->entry->process) {
        device_launch_process(d);
        return;
    }
    device_launch_gateway(d, n);
}

/* Start the gateway; the device VM once it listens. */
static void device_launch_gateway(DeviceVM *d, const struct devvm_needs *n)
{
    g_autofree char *channels = g_strdup_printf("%u", 2 * n->max_clients);
    g_autofree char *log = g_build_filename(d->dir, "gateway.log", NULL);
    g_autofree char *what = g_strdup_printf("gateway of %s", d->id);
    g_autofree char *run_as = g_strdup_printf("%u:%u", d->uid, d->uid);
    const char *argv[] = {
        d->co->gateway, "--dir", d->gw_dir, "--channels", channels,
        d->uid ? "--run-as" : NULL, run_as, NULL,
    };
    g_autoptr(GError) err = NULL;
    CoordSpawn spawn = {
        .what = what, .argv = argv, .log_path = log, .stdout_pipe = true,
        .stderr_pipe = true,
    };
    cpu_set_t cpus;

    coord_cores_shared_set(&d->co->cores, &cpus);
    spawn.cpus = &cpus;
    if (!device_make_dir(d, &err)) {
        device_failed(d, "%s", err->message);
        return;
    }
    if (!d->gw_log) {
        d->gw_log = fopen(log, "ae");
    }
    if (!d->gw_log) {
        device_failed(d, "cannot open %s: %s", log, g_strerror(errno));
        return;
    }
    d->launched = g_get_monotonic_time();
    d->gateway = coord_proc_spawn(&spawn, device_proc_exited, d, &err);
    if (!d->gateway) {
        device_launch_failed(d, err->message);
        return;
    }
    d->gw_out = g_data_input_stream_new(coord_proc_stdout(d->gateway));
    device_read_line(d, d->gw_out, device_gw_line);
    d->gw_err = g_data_input_stream_new(coord_proc_stderr(d->gateway));
    device_read_line(d, d->gw_err, device_err_line);
    d->poll_timer = g_timeout_add(COORD_POLL_MS, device_poll_gateway, d);
    {
        g_autofree char *res = device_reservation_str(d);

        coord_event(d->co, "DEVICE_STARTING", "device-vm", d->id, "type",
                    n->name, "reservation", res, NULL);
    }
}

void device_allowed_cpus(const DeviceVM *d, cpu_set_t *set)
{
    if (d->core >= 0) {
        CPU_ZERO(set);
        CPU_SET(d->core, set);
    } else {
        coord_cores_shared_set(&d->co->cores, set);
    }
}

guint32 device_pick_uid(Coord *co)
{
    guint32 uid;
    guint i;

    for (uid = co->uid_first; uid && uid <= co->uid_last; uid++) {
        for (i = 0; i < co->devices->len; i++) {
            if (((DeviceVM *)co->devices->pdata[i])->uid == uid) {
                break;
            }
        }
        if (i == co->devices->len) {
            return uid;
        }
    }
    return 0;
}

/* A new device VM record with its reservation taken (208). */
DeviceVM *device_new(Coord *co, const CatalogEntry *e,
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
    d->loss_window = -1;
    d->cancel = g_cancellable_new();
    d->sharers = g_ptr_array_new();
    d->dir = g_build_filename(co->run_dir, "devices", d->id, NULL);
    d->gw_dir = g_build_filename(d->dir, "gw", NULL);
    d->sock = g_build_filename(e->process ? d->dir : d->gw_dir,
                               "device.sock", NULL);
    g_ptr_array_add(co->devices, d);
    return d;
}

/* Free what a device VM holds; its processes have exited. */
void device_destroy(DeviceVM *d)
{
    Coord *co = d->co;
    g_autoptr(GError) err = NULL;
    g_autoptr(GError) rm_err = NULL;

    g_cancellable_cancel(d->cancel);
    g_clear_handle_id(&d->poll_timer, g_source_remove);
    g_clear_handle_id(&d->ready_timer, g_source_remove);
    g_clear_handle_id(&d->restart_timer, g_source_remove);
    device_wake_sharers(d);
    g_ptr_array_free(d->sharers, true);
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
    g_clear_object(&d->gw_out);
    g_clear_object(&d->gw_err);
    if (d->gw_log) {
        fclose(d->gw_log);
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
    g_free(d->last_failure);
    g_free(d->last_failure_time);
    g_free(d);
}

