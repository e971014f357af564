/*
 * devvm-coordinator: the up request (Figure 2): plan, reserve, launch, all or nothing.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <gio/gunixsocketaddress.h>

#include "coordinator.h"

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
void request_fail(Request *req)
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
void client_launch(Request *req)
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
void request_client_exited(Request *req)
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

void cmd_up(Coord *co, CoordConn *conn, JsonObject *args,
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
    if (co->leftovers) {
        g_autofree char *what = leftovers_describe(co->leftovers);

        coord_conn_error(conn, id, "GenericError", "%s; remove that first "
                         "(devvm-ctl cleanup)", what);
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

