/*
 * devvm-coordinator: the up request (Figure 2): plan, reserve, launch, all or nothing.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <gio/gunixsocketaddress.h>

#include "coordinator.h"

Request *request_ref(Request *req)
{
    req->refs++;
    return req;
}

void request_unref(Request *req)
{
    if (--req->refs) {
        return;
    }
    g_clear_handle_id(&req->qmp_timer, g_source_remove);
    coord_conn_unref(req->conn);
    if (req->id) {
        json_node_unref(req->id);
    }
    g_ptr_array_free(req->new_devices, true);
    g_ptr_array_free(req->reasons, true);
    g_free(req->name);
    g_free(req->what);
    g_free(req);
}

static char *request_reasons(Request *req)
{
    g_autofree char *joined = NULL;

    g_ptr_array_add(req->reasons, NULL);
    joined = g_strjoinv("; ", (char **)req->reasons->pdata);
    g_ptr_array_remove_index(req->reasons, req->reasons->len - 1);
    return g_strdup_printf("cannot %s: %s", req->what, joined);
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
    if (req->wait_for) {
        g_ptr_array_remove(req->wait_for->sharers, req);
        req->wait_for = NULL;
    }
    req->client = NULL;     /* the teardown frees it */
    g_clear_handle_id(&req->qmp_timer, g_source_remove);
    for (i = 0; i < req->new_devices->len; i++) {
        DeviceVM *d = req->new_devices->pdata[i];

        d->req = NULL;
    }
    if (cl && req->attach) {
        /* the client stays; the device it was to get goes */
        guint last = cl->desc->devices->len - 1;

        cl->req = NULL;
        if (cl->devices->len == cl->desc->devices->len) {
            DeviceVM *d = cl->devices->pdata[last];

            d->users--;
            g_ptr_array_remove_index(cl->devices, last);
        }
        g_ptr_array_remove_index(cl->desc->devices, last);
        req->attach = NULL;     /* freed with the entry */
    } else if (cl) {
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

void request_add_device(JsonBuilder *b, Request *req, guint i)
{
    Client *cl = req->client;
    DeviceVM *d = cl->devices->pdata[i];
    CoordDeviceDesc *dd = cl->desc->devices->pdata[i];
    g_autofree char *res = device_reservation_str(d);

    json_builder_begin_object(b);
    json_builder_set_member_name(b, "name");
    json_builder_add_string_value(b, dd->name);
    json_builder_set_member_name(b, "device-vm");
    json_builder_add_string_value(b, d->id);
    json_builder_set_member_name(b, "mode");
    json_builder_add_string_value(b, d->entry->process ? "process" : "vm");
    json_builder_set_member_name(b, "reused");
    json_builder_add_boolean_value(b,
        !g_ptr_array_find(req->new_devices, d, NULL));
    json_builder_set_member_name(b, "reservation");
    json_builder_add_string_value(b, res);
    json_builder_set_member_name(b, "socket");
    json_builder_add_string_value(b, d->sock);
    json_builder_end_object(b);
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
        request_add_device(b, req, i);
    }
    json_builder_end_array(b);
    json_builder_end_object(b);
    coord_conn_return(req->conn, req->id, json_builder_get_root(b));
    request_unref(req);
}

/* The client's reply to query-status. */
static void up_status_reply(JsonNode *ret, const char *error, gpointer data)
{
    Request *req = data;

    if (req->finished) {
        goto out;
    }
    if (error) {
        /* its exit (client_proc_exited) or the QMP timer says why */
        goto out;
    }
    g_clear_handle_id(&req->qmp_timer, g_source_remove);
    if (JSON_NODE_HOLDS_OBJECT(ret) &&
        json_object_get_boolean_member_with_default(
            json_node_get_object(ret), "running", false)) {
        request_succeed(req);
    } else {
        g_autofree char *text = json_to_string(ret, false);

        g_ptr_array_add(req->reasons, g_strdup_printf(
                            "client %s: QEMU is not running: %s",
                            req->client->name, text));
        request_fail(req);
    }
out:
    request_unref(req);
}

/* Connect to the client's QMP socket, retrying until it listens. */
static gboolean qmp_try_connect(gpointer data)
{
    Request *req = data;
    Client *cl = req->client;

    if (g_get_monotonic_time() > req->qmp_deadline) {
        req->qmp_timer = 0;
        g_ptr_array_add(req->reasons, g_strdup_printf(
                            "client %s: QEMU did not report running within "
                            "%d s", cl->name, COORD_QMP_TIMEOUT_S));
        request_fail(req);
        return G_SOURCE_REMOVE;
    }
    if (cl->qmp) {
        return G_SOURCE_CONTINUE;   /* connected: this is the deadline */
    }
    if (!client_qmp_connect(cl, NULL)) {
        return G_SOURCE_CONTINUE;
    }
    coord_qmp_call(cl->qmp, "query-status", NULL, up_status_reply,
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
    /* the coordinator's own, kept open while the client runs */
    ARG("-qmp");
    ARG("unix:%s,server=on,wait=off", cl->coord_qmp_path);
    for (i = 0; i < cl->devices->len; i++) {
        DeviceVM *d = cl->devices->pdata[i];
        CoordDeviceDesc *dd = desc->devices->pdata[i];

        ARG("-device");
        ARG("devvm-proxy,id=%s,socket=%s", dd->name, d->sock);
    }
    /* the root ports attach plugs devices into (q35) */
    for (i = 0; i < desc->hotplug_slots; i++) {
        ARG("-device");
        ARG("pcie-root-port,id=" COORD_SLOT_ID "%u,chassis=%u,"
            "mem-reserve=" COORD_SLOT_MEM ",pref64-reserve=" COORD_SLOT_PREF64,
            i, COORD_SLOT_CHASSIS + i);
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
                        "client %s: QEMU %s%s%s%s",
                        req->client->name,
                        coord_proc_exit_str(req->client->qemu),
                        req->attach ? "" : " before it ran",
                        *tail ? ": " : "", g_strstrip(tail)));
}

/* The reservation @dd asks for, its type's (@e) when it says auto. */
static void device_desc_policy(const CoordDeviceDesc *dd,
                               const CatalogEntry *e, CoordPolicy *policy,
                               unsigned *percent)
{
    *policy = dd->policy;
    *percent = dd->percent;
    if (*policy == COORD_POLICY_AUTO) {
        *policy = e->needs.cores == DEVVM_NEEDS_CORE_EXCLUSIVE ?
                  COORD_POLICY_EXCLUSIVE : COORD_POLICY_SHARED;
        *percent = e->needs.percent;
    }
}

/*
 * A device VM in @state that a device of type @e with this reservation
 * and these options could share: shareable, with room for one more
 * client; or NULL.
 */
static DeviceVM *device_to_share(Coord *co, const CatalogEntry *e,
                                 CoordPolicy policy, unsigned percent,
                                 const char *opts, DevState state)
{
    guint i;

    if (!(e->needs.flags & DEVVM_NEEDS_F_SHAREABLE)) {
        return NULL;
    }
    for (i = 0; i < co->devices->len; i++) {
        DeviceVM *d = co->devices->pdata[i];

        if (d->entry == e && d->state == state && !d->teardown &&
            d->users < e->needs.max_clients && d->policy == policy &&
            d->percent == percent && !strcmp(d->options_key, opts)) {
            return d;
        }
    }
    return NULL;
}

/*
 * An up whose device could share a device VM that another up started
 * and that is not READY yet waits for it, rather than start a second one
 * (for which there may be no core left); it plans again once that one
 * is READY, or gone (a device VM that fails to start goes with the up
 * that started it).  True if @req now waits.
 */
static bool request_wait_to_share(Request *req)
{
    Coord *co = req->co;
    Client *cl = req->client;
    guint i;

    for (i = 0; i < cl->desc->devices->len; i++) {
        CoordDeviceDesc *dd = cl->desc->devices->pdata[i];
        const CatalogEntry *e = catalog_find(co, dd->type, dd->mode);
        g_autofree char *opts = dd->options ? g_strjoinv(";", dd->options)
                                            : g_strdup("");
        CoordPolicy policy;
        unsigned percent;
        DeviceVM *d;

        if (!e) {
            continue;
        }
        device_desc_policy(dd, e, &policy, &percent);
        d = device_to_share(co, e, policy, percent, opts, DEV_STARTING);
        if (d) {
            req->wait_for = d;
            g_ptr_array_add(d->sharers, req);
            g_message("client %s: device %s waits for device VM %s, which "
                      "is starting, to share it", cl->name, dd->name,
                      d->id);
            return true;
        }
    }
    return false;
}

static gboolean request_replan(gpointer data);

void device_wake_sharers(DeviceVM *d)
{
    while (d->sharers->len) {
        Request *req = g_ptr_array_steal_index(d->sharers, 0);

        req->wait_for = NULL;
        g_idle_add(request_replan, request_ref(req));
    }
}

/*
 * 204-208 for one device: reuse a running device VM, or check the type
 * and the resources and reserve them.  Reasons go to req->reasons.
 */
void request_plan_device(Request *req, CoordDeviceDesc *dd)
{
    Coord *co = req->co;
    Client *cl = req->client;
    const CatalogEntry *e = catalog_find(co, dd->type, dd->mode);
    g_autofree char *who = g_strdup_printf("device %s", dd->name);
    g_autofree char *opts = dd->options ? g_strjoinv(";", dd->options)
                                        : g_strdup("");
    g_autoptr(GError) err = NULL;
    CoordPolicy policy;
    unsigned percent;
    DeviceVM *d;

    /* 206: can it be emulated? */
    if (!e && catalog_find(co, dd->type, COORD_MODE_AUTO)) {
        g_ptr_array_add(req->reasons, g_strdup_printf(
                            "%s: type '%s' has no %s in the catalog (give "
                            "the coordinator --%s)", who, dd->type,
                            dd->mode == COORD_MODE_PROCESS ?
                            "process-mode binary" : "device VM image",
                            dd->mode == COORD_MODE_PROCESS ? "process"
                                                           : "image"));
        return;
    }
    if (!e) {
        g_autofree char *types = catalog_types(co);

        g_ptr_array_add(req->reasons, g_strdup_printf(
                            "%s: unknown type '%s' (the catalog has: %s)",
                            who, dd->type, *types ? types : "nothing"));
        return;
    }
    device_desc_policy(dd, e, &policy, &percent);
    if (policy == COORD_POLICY_SHARED &&
        e->needs.cores == DEVVM_NEEDS_CORE_EXCLUSIVE) {
        g_ptr_array_add(req->reasons, g_strdup_printf(
                            "%s: reservation shared:%u, but its image %s "
                            "declares that it needs an exclusive core",
                            who, percent, e->image));
        return;
    }

    /* 204/214: a running device VM of that type that takes one more */
    d = device_to_share(co, e, policy, percent, opts, DEV_READY);
    if (d) {
        d->users++;
        g_ptr_array_add(cl->devices, d);
        g_message("client %s: %s reuses device VM %s (%u of %u clients)",
                  cl->name, who, d->id, d->users, e->needs.max_clients);
        return;
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
    if (co->uid_first) {
        d->uid = device_pick_uid(co);
        if (!d->uid) {
            g_ptr_array_add(req->reasons, g_strdup_printf(
                                "%s needs a uid of its own; all %u of "
                                "--device-uids %u-%u are in use", who,
                                co->uid_last - co->uid_first + 1,
                                co->uid_first, co->uid_last));
        }
    }
    if (coord_cgroups_enabled(co->cgroups)) {
        cpu_set_t cpus;

        device_allowed_cpus(d, &cpus);
        d->cgroup = coord_cgroup_new(co->cgroups, d->id,
                                     policy == COORD_POLICY_SHARED ? percent
                                                                   : 0,
                                     (guint64)(e->needs.memory_mib +
                                               COORD_VM_OVERHEAD_MIB) << 20,
                                     &cpus, &err);
        if (!d->cgroup) {
            g_ptr_array_add(req->reasons, g_strdup_printf("%s: %s", who,
                                                          err->message));
        }
    }
}

/* Memory: the client (up) and the new device VMs must fit in
 * MemAvailable. */
void request_check_memory(Request *req)
{
    g_autofree char *meminfo = NULL;
    guint64 need = req->attach ? 0 : req->client->desc->memory_mib;
    guint64 avail = 0;
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
                            "%s need %"
                            G_GUINT64_FORMAT " MiB of guest RAM; the host "
                            "has %" G_GUINT64_FORMAT " MiB available",
                            req->attach ? "its new device VMs"
                                        : "the client and its new device VMs",
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

Request *request_new(Coord *co, CoordConn *conn, JsonNode *id, Client *cl)
{
    Request *req = g_new0(Request, 1);

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
    return req;
}

void request_launch_devices(Request *req)
{
    Coord *co = req->co;
    guint i;

    /* the new exclusive cores leave every other process now */
    coord_place_all(co);
    coord_save_state(co);
    /* 210: launch the new device VMs; go on when all are READY */
    req->pending = req->new_devices->len;
    if (!req->pending) {
        request_devices_ready(req);
        return;
    }
    request_ref(req);
    for (i = 0; i < req->new_devices->len && !req->finished; i++) {
        device_launch(req->new_devices->pdata[i]);
    }
    request_unref(req);
}

void request_devices_ready(Request *req)
{
    if (req->attach) {
        attach_plug(req);
    } else {
        client_launch(req);
    }
}

/* An up: plan every device, reserve, launch; or wait to share. */
static void request_plan(Request *req)
{
    Client *cl = req->client;
    guint i;

    if (request_wait_to_share(req)) {
        return;
    }
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
    request_launch_devices(req);
}

static gboolean request_replan(gpointer data)
{
    Request *req = data;

    if (!req->finished) {
        request_plan(req);
    }
    request_unref(req);
    return G_SOURCE_REMOVE;
}

void cmd_up(Coord *co, CoordConn *conn, JsonObject *args, JsonNode *id)
{
    const char *file = args ? json_object_get_string_member_with_default(
                                  args, "file", NULL) : NULL;
    g_autoptr(GError) err = NULL;
    g_autoptr(CoordClientDesc) desc = NULL;
    Request *req;
    Client *cl;

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
    cl = client_find(co, desc->name);
    if (cl && cl->state == CLIENT_EXITED && !cl->teardown) {
        coord_conn_error(conn, id, "GenericError", "client %s %s; its logs "
                         "are in %s (devvm-ctl logs %s); devvm-ctl down %s "
                         "removes it", desc->name,
                         coord_proc_exit_str(cl->qemu), cl->dir, desc->name,
                         desc->name);
        return;
    }
    if (cl) {
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
    cl->coord_qmp_path = g_build_filename(cl->dir, "coordinator-qmp.sock",
                                          NULL);
    cl->accel = coord_resolve_accel(co, cl->desc->accel);
    cl->proxy_events = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                             proxy_event_free);
    cl->slots = g_new0(char *, cl->desc->hotplug_slots + 1);
    g_ptr_array_add(co->clients, cl);

    req = request_new(co, conn, id, cl);
    req->what = g_strdup_printf("bring up client %s", cl->name);
    g_message("up %s: client %s, %u device%s", file, cl->name,
              cl->desc->devices->len, cl->desc->devices->len == 1 ? "" : "s");
    request_plan(req);
}
