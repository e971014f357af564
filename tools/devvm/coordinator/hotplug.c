/*
 * devvm-coordinator: hot-plug.  attach gives a running client one more
 * device by the same Figure 2 flow as up (reuse a device VM, or reserve
 * and launch one, all or nothing), then plugs a devvm-proxy into the
 * client with QMP device_add: into the root bus on pc (ACPI hot-plug),
 * into a free root port of the client's hotplug-slots on q35.  detach
 * asks the guest to let go (device_del), waits for QEMU's
 * DEVICE_DELETED, then releases the device VM once no client uses it.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "coordinator.h"

/* A detach waiting for DEVICE_DELETED, then for its release. */
struct Unplug {
    Coord *co;
    Client *cl;                 /* NULL once DEVICE_DELETED came */
    CoordConn *conn;
    JsonNode *id;
    char *client, *name, *device_vm;
    guint timer;
    gint64 started;
    bool released;              /* its device VM was stopped */
};

static void unplug_free(Unplug *u)
{
    g_clear_handle_id(&u->timer, g_source_remove);
    coord_conn_unref(u->conn);
    if (u->id) {
        json_node_unref(u->id);
    }
    g_free(u->client);
    g_free(u->name);
    g_free(u->device_vm);
    g_free(u);
}

/* The client is busy with an up, an attach, a detach or going down. */
static bool client_busy(Client *cl, CoordConn *conn, JsonNode *id,
                        const char *verb)
{
    const char *why = NULL;
    g_autofree char *attaching = NULL;

    if (cl->co->quitting) {
        why = "the coordinator is shutting down";
    } else if (cl->teardown || cl->released) {
        why = "it is going down";
    } else if (cl->state != CLIENT_RUNNING) {
        why = cl->state == CLIENT_STARTING ? "it is still coming up"
                                           : "it is not running";
    } else if (cl->req) {
        attaching = g_strdup_printf("it is attaching device %s",
                                    cl->req->attach->name);
        why = attaching;
    } else if (cl->unplug) {
        attaching = g_strdup_printf("it is detaching device %s",
                                    cl->unplug->name);
        why = attaching;
    }
    if (why) {
        coord_conn_error(conn, id, "GenericError", "cannot %s client %s: %s",
                         verb, cl->name, why);
    }
    return why != NULL;
}

static int client_device_index(Client *cl, const char *name)
{
    guint i;

    for (i = 0; i < cl->desc->devices->len; i++) {
        CoordDeviceDesc *dd = cl->desc->devices->pdata[i];

        if (!strcmp(dd->name, name)) {
            return i;
        }
    }
    return -1;
}

/* q35: the first root port with nothing plugged in, or -1. */
static int client_free_slot(Client *cl)
{
    guint i;

    for (i = 0; i < cl->desc->hotplug_slots; i++) {
        if (!cl->slots[i]) {
            return i;
        }
    }
    return -1;
}

/* ---- attach --------------------------------------------------------------- */

static void attach_added(JsonNode *ret, const char *error, gpointer opaque)
{
    Request *req = opaque;
    Client *cl = req->client;
    g_autoptr(JsonBuilder) b = json_builder_new();
    g_autofree char *secs = NULL, *bus = NULL;
    CoordDeviceDesc *dd = req->attach;
    int slot;

    if (req->finished) {
        goto out;
    }
    if (error) {
        g_ptr_array_add(req->reasons, g_strdup_printf(
                            "client %s: device_add: %s", cl->name, error));
        request_fail(req);
        goto out;
    }
    slot = client_free_slot(cl);
    if (slot >= 0) {
        cl->slots[slot] = g_strdup(dd->name);
        bus = g_strdup_printf(COORD_SLOT_ID "%d", slot);
    } else {
        bus = g_strdup("pci.0");
    }
    req->finished = true;
    cl->req = NULL;
    secs = g_strdup_printf("%.3f", (g_get_monotonic_time() - req->started) /
                                   1e6);
    g_message("client %s: device %s attached (device VM %s) %s s after "
              "attach", cl->name, dd->name,
              ((DeviceVM *)cl->devices->pdata[cl->devices->len - 1])->id,
              secs);
    coord_event(req->co, "DEVICE_ATTACHED", "client", cl->name, "device",
                dd->name, "seconds", secs, NULL);
    coord_save_state(req->co);

    json_builder_begin_object(b);
    json_builder_set_member_name(b, "client");
    json_builder_add_string_value(b, cl->name);
    json_builder_set_member_name(b, "seconds");
    json_builder_add_double_value(b, g_ascii_strtod(secs, NULL));
    json_builder_set_member_name(b, "bus");
    json_builder_add_string_value(b, bus);
    json_builder_set_member_name(b, "device");
    request_add_device(b, req, cl->devices->len - 1);
    json_builder_end_object(b);
    coord_conn_return(req->conn, req->id, json_builder_get_root(b));
    request_unref(req);         /* the attach's own reference */
out:
    request_unref(req);
}

void attach_plug(Request *req)
{
    Client *cl = req->client;
    DeviceVM *d = cl->devices->pdata[cl->devices->len - 1];
    g_autoptr(JsonBuilder) b = json_builder_new();
    g_autofree char *bus = NULL;
    int slot = client_free_slot(cl);

    /* 212: assign it to the client */
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "driver");
    json_builder_add_string_value(b, "devvm-proxy");
    json_builder_set_member_name(b, "id");
    json_builder_add_string_value(b, req->attach->name);
    json_builder_set_member_name(b, "socket");
    json_builder_add_string_value(b, d->sock);
    if (slot >= 0) {
        bus = g_strdup_printf(COORD_SLOT_ID "%d", slot);
        json_builder_set_member_name(b, "bus");
        json_builder_add_string_value(b, bus);
    }
    json_builder_end_object(b);
    g_message("client %s: device_add %s on %s (socket %s)", cl->name,
              req->attach->name, bus ? bus : "the root bus", d->sock);
    coord_qmp_call(cl->qmp, "device_add", json_builder_get_root(b),
                   attach_added, request_ref(req));
}

void cmd_attach(Coord *co, CoordConn *conn, JsonObject *args, JsonNode *id)
{
    const char *(*get)(JsonObject *, const char *, const char *) =
        json_object_get_string_member_with_default;
    const char *client = args ? get(args, "client", NULL) : NULL;
    const char *name = args ? get(args, "name", NULL) : NULL;
    const char *type = args ? get(args, "type", NULL) : NULL;
    const char *res = args ? get(args, "reservation", "auto") : "auto";
    const char *mode = args ? get(args, "mode", "auto") : "auto";
    JsonArray *opts = args && json_object_has_member(args, "options") &&
                      JSON_NODE_HOLDS_ARRAY(json_object_get_member(
                          args, "options")) ?
                      json_object_get_array_member(args, "options") : NULL;
    g_autoptr(GPtrArray) options = g_ptr_array_new_with_free_func(g_free);
    CoordDeviceDesc *dd;
    const char *bad;
    Request *req;
    Client *cl;
    guint i;

    if (!client || !name || !type) {
        coord_conn_error(conn, id, "GenericError", "attach: expected "
                         "\"client\", \"name\" and \"type\" (strings), and "
                         "optionally \"reservation\" and \"options\"");
        return;
    }
    cl = client_find(co, client);
    if (!cl) {
        coord_conn_error(conn, id, "GenericError", "no client %s", client);
        return;
    }
    if (client_busy(cl, conn, id, "attach a device to")) {
        return;
    }
    if (!coord_name_valid(name)) {
        coord_conn_error(conn, id, "GenericError", "attach: '%s' is not a "
                         "device name; expected 1 to %u characters of A-Z, "
                         "a-z, 0-9, '-' and '_'", name, COORD_NAME_MAX);
        return;
    }
    if (client_device_index(cl, name) >= 0) {
        coord_conn_error(conn, id, "GenericError", "client %s already has a "
                         "device %s", cl->name, name);
        return;
    }
    for (i = 0; opts && i < json_array_get_length(opts); i++) {
        JsonNode *n = json_array_get_element(opts, i);

        if (!JSON_NODE_HOLDS_VALUE(n) ||
            json_node_get_value_type(n) != G_TYPE_STRING) {
            coord_conn_error(conn, id, "GenericError", "attach: \"options\" "
                             "must be an array of \"KEY=VALUE\" strings");
            return;
        }
        g_ptr_array_add(options, g_strdup(json_node_get_string(n)));
    }
    g_ptr_array_add(options, NULL);
    bad = coord_options_check((char **)options->pdata);
    if (bad) {
        coord_conn_error(conn, id, "GenericError", "attach: option '%s'; "
                         "expected KEY=VALUE without blanks", bad);
        return;
    }
    if (!strcmp(cl->desc->machine, "q35") && client_free_slot(cl) < 0) {
        coord_conn_error(conn, id, "GenericError", "client %s (machine q35) "
                         "has no free hot-plug slot: all %u root ports of "
                         "its hotplug-slots are in use", cl->name,
                         cl->desc->hotplug_slots);
        return;
    }

    dd = g_new0(CoordDeviceDesc, 1);
    if (!coord_policy_parse(res, &dd->policy, &dd->percent)) {
        coord_conn_error(conn, id, "GenericError", "attach: reservation "
                         "'%s'; expected " COORD_POLICY_EXPECTED, res);
        coord_device_desc_free(dd);
        return;
    }
    if (!coord_mode_parse(mode, &dd->mode)) {
        coord_conn_error(conn, id, "GenericError", "attach: mode '%s'; "
                         "expected " COORD_MODE_EXPECTED, mode);
        coord_device_desc_free(dd);
        return;
    }
    dd->name = g_strdup(name);
    dd->type = g_strdup(type);
    if (options->len > 1) {
        dd->options = (char **)g_ptr_array_steal(options, NULL);
    }
    g_ptr_array_add(cl->desc->devices, dd);

    req = request_new(co, conn, id, cl);
    req->attach = dd;
    req->what = g_strdup_printf("attach device %s to client %s", name,
                                cl->name);
    g_message("attach %s to client %s: type %s, reservation %s", name,
              cl->name, type, res);
    request_plan_device(req, dd);
    request_check_memory(req);
    if (req->reasons->len) {
        request_fail(req);
        return;
    }
    request_launch_devices(req);
}

/* ---- detach --------------------------------------------------------------- */

static void unplug_reply(Unplug *u)
{
    g_autoptr(JsonBuilder) b = json_builder_new();

    json_builder_begin_object(b);
    json_builder_set_member_name(b, "client");
    json_builder_add_string_value(b, u->client);
    json_builder_set_member_name(b, "device");
    json_builder_add_string_value(b, u->name);
    json_builder_set_member_name(b, "device-vm");
    json_builder_add_string_value(b, u->device_vm);
    json_builder_set_member_name(b, "released");
    json_builder_add_boolean_value(b, u->released);
    json_builder_set_member_name(b, "seconds");
    json_builder_add_double_value(b, (g_get_monotonic_time() - u->started) /
                                     1e6);
    json_builder_end_object(b);
    coord_conn_return(u->conn, u->id, json_builder_get_root(b));
    unplug_free(u);
}

static void unplug_fail(Unplug *u, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

static void unplug_fail(Unplug *u, const char *fmt, ...)
{
    g_autofree char *why = NULL;
    va_list ap;

    va_start(ap, fmt);
    why = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_warning("cannot detach device %s from client %s: %s", u->name,
              u->client, why);
    coord_conn_error(u->conn, u->id, "GenericError", "cannot detach device "
                     "%s from client %s: %s", u->name, u->client, why);
    if (u->cl) {
        u->cl->unplug = NULL;
    }
    unplug_free(u);
}

void client_unplug_abort(Client *cl, const char *why)
{
    if (cl->unplug) {
        unplug_fail(cl->unplug, "%s", why);
    }
}

static gboolean unplug_timeout(gpointer data)
{
    Unplug *u = data;

    u->timer = 0;
    unplug_fail(u, "the guest did not release it within %d s (QEMU's "
                "device_del stays pending: the guest may still let go, "
                "and the coordinator then releases it)",
                COORD_UNPLUG_TIMEOUT_S);
    return G_SOURCE_REMOVE;
}

static void unplug_del_reply(JsonNode *ret, const char *error,
                             gpointer opaque)
{
    Client *cl = opaque;

    if (error && cl->unplug) {
        unplug_fail(cl->unplug, "device_del: %s", error);
    }
}

static void unplug_released(gpointer data)
{
    Unplug *u = data;

    if (u) {
        u->released = true;
        unplug_reply(u);
    }
}

void client_device_deleted(Client *cl, const char *name)
{
    Unplug *u = cl->unplug && !strcmp(cl->unplug->name, name) ? cl->unplug
                                                              : NULL;
    int i = client_device_index(cl, name);
    DeviceVM *d;
    guint s;

    if (i < 0 || (guint)i >= cl->devices->len || cl->released ||
        (cl->req && cl->req->attach &&
         !strcmp(cl->req->attach->name, name))) {
        return;                 /* not one of its devvm-proxy devices */
    }
    d = cl->devices->pdata[i];
    g_message("client %s: device %s is gone (device VM %s)", cl->name, name,
              d->id);
    coord_event(cl->co, "DEVICE_DETACHED", "client", cl->name, "device",
                name, "device-vm", d->id, NULL);
    for (s = 0; s < cl->desc->hotplug_slots; s++) {
        if (!g_strcmp0(cl->slots[s], name)) {
            g_clear_pointer(&cl->slots[s], g_free);
        }
    }
    g_ptr_array_remove_index(cl->devices, i);
    g_ptr_array_remove_index(cl->desc->devices, i);
    g_hash_table_remove(cl->proxy_events, name);
    if (u) {
        cl->unplug = NULL;
        u->cl = NULL;
        g_clear_handle_id(&u->timer, g_source_remove);
    }
    if (--d->users == 0 && !d->teardown) {
        g_autoptr(GPtrArray) none = g_ptr_array_new();
        g_autoptr(GPtrArray) devices = g_ptr_array_new();

        g_ptr_array_add(devices, d);
        teardown_start(cl->co, none, devices, unplug_released, u);
        return;
    }
    coord_save_state(cl->co);
    if (u) {
        unplug_reply(u);
    }
}

void cmd_detach(Coord *co, CoordConn *conn, JsonObject *args, JsonNode *id)
{
    const char *(*get)(JsonObject *, const char *, const char *) =
        json_object_get_string_member_with_default;
    const char *client = args ? get(args, "client", NULL) : NULL;
    const char *name = args ? get(args, "name", NULL) : NULL;
    g_autoptr(JsonBuilder) b = json_builder_new();
    Unplug *u;
    Client *cl;
    int i;

    if (!client || !name) {
        coord_conn_error(conn, id, "GenericError", "detach: expected "
                         "\"client\" and \"name\" (strings)");
        return;
    }
    cl = client_find(co, client);
    if (!cl) {
        coord_conn_error(conn, id, "GenericError", "no client %s", client);
        return;
    }
    if (client_busy(cl, conn, id, "detach a device from")) {
        return;
    }
    i = client_device_index(cl, name);
    if (i < 0) {
        coord_conn_error(conn, id, "GenericError", "client %s has no device "
                         "%s", cl->name, name);
        return;
    }
    u = g_new0(Unplug, 1);
    u->co = co;
    u->cl = cl;
    u->conn = coord_conn_ref(conn);
    u->id = id ? json_node_copy(id) : NULL;
    u->client = g_strdup(cl->name);
    u->name = g_strdup(name);
    u->device_vm = g_strdup(((DeviceVM *)cl->devices->pdata[i])->id);
    u->started = g_get_monotonic_time();
    u->timer = g_timeout_add_seconds(COORD_UNPLUG_TIMEOUT_S, unplug_timeout,
                                     u);
    cl->unplug = u;
    g_message("detach %s from client %s: device_del", name, cl->name);
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "id");
    json_builder_add_string_value(b, name);
    json_builder_end_object(b);
    coord_qmp_call(cl->qmp, "device_del", json_builder_get_root(b),
                   unplug_del_reply, cl);
}
