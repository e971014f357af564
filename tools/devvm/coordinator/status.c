/*
 * devvm-coordinator: what status reports and state.json holds.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "coordinator.h"

static const char *const dev_state_names[] = {
    [DEV_STARTING] = "starting",
    [DEV_READY] = "ready",
    [DEV_RESTARTING] = "restarting",
    [DEV_FAILED] = "failed",
};

static const char *const client_state_names[] = {
    [CLIENT_STARTING] = "starting",
    [CLIENT_RUNNING] = "running",
    [CLIENT_EXITED] = "exited",
};

/* The value of line @key ("VmRSS") of the status file @path, or NULL. */
static char *status_field(const char *path, const char *key)
{
    g_autofree char *text = NULL;
    g_autofree char *line = g_strdup_printf("\n%s:", key);
    const char *p;

    if (!g_file_get_contents(path, &text, NULL, NULL) ||
        !(p = strstr(text, line))) {
        return NULL;
    }
    p += strlen(line);
    return g_strstrip(g_strndup(p, strcspn(p, "\n")));
}

static char *thread_cpus(GPid pid, const char *tid)
{
    g_autofree char *path = g_strdup_printf("/proc/%d/task/%s/status",
                                            (int)pid, tid);
    char *cpus = status_field(path, "Cpus_allowed_list");

    return cpus ? cpus : g_strdup("?");
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

/* VmRSS of @pid in KiB, or -1. */
static gint64 proc_rss_kib(GPid pid)
{
    g_autofree char *path = g_strdup_printf("/proc/%d/status", (int)pid);
    g_autofree char *rss = status_field(path, "VmRSS");

    return rss ? g_ascii_strtoll(rss, NULL, 10) : -1;
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
        json_builder_set_member_name(b, "rss-kib");
        json_builder_add_int_value(b, proc_rss_kib(coord_proc_pid(p)));
        add_threads(b, coord_proc_pid(p));
    } else if (p) {
        json_builder_set_member_name(b, "exit");
        json_builder_add_string_value(b, coord_proc_exit_str(p));
    }
    json_builder_end_object(b);
}

/*
 * What the client's QEMU says of its devvm-proxy @name: "proxy", its
 * query-devvm-proxy entry (link state and counters, as of the last
 * query-status: clients_query_proxies()), and "last-event", its last
 * DEVVM_PROXY_STATE_CHANGED.
 */
static void add_proxy(JsonBuilder *b, Client *cl, const char *name)
{
    JsonArray *a = cl->proxies ? json_node_get_array(cl->proxies) : NULL;
    ProxyEvent *e = g_hash_table_lookup(cl->proxy_events, name);
    guint i;

    for (i = 0; a && i < json_array_get_length(a); i++) {
        JsonNode *n = json_array_get_element(a, i);

        if (JSON_NODE_HOLDS_OBJECT(n) &&
            !g_strcmp0(json_object_get_string_member_with_default(
                           json_node_get_object(n), "id", NULL), name)) {
            json_builder_set_member_name(b, "proxy");
            json_builder_add_value(b, json_node_copy(n));
        }
    }
    if (e) {
        json_builder_set_member_name(b, "last-event");
        json_builder_begin_object(b);
        json_builder_set_member_name(b, "time");
        json_builder_add_string_value(b, e->time);
        json_builder_set_member_name(b, "state");
        json_builder_add_string_value(b, e->state);
        json_builder_set_member_name(b, "reason");
        json_builder_add_string_value(b, e->reason);
        json_builder_set_member_name(b, "changes");
        json_builder_add_int_value(b, e->changes);
        json_builder_end_object(b);
    }
}

JsonNode *coord_status(Coord *co)
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
    json_builder_set_member_name(b, "device-uids");
    if (co->uid_first) {
        g_autofree char *range = g_strdup_printf("%u-%u", co->uid_first,
                                                 co->uid_last);

        json_builder_add_string_value(b, range);
    } else {
        json_builder_add_null_value(b);
    }
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
        json_builder_set_member_name(b, "mode");
        json_builder_add_string_value(b, e->process ? "process" : "vm");
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
            json_builder_set_member_name(b, "state");
            json_builder_add_string_value(b, dev_state_names[d->state]);
            json_builder_set_member_name(b, "plugged");
            json_builder_add_boolean_value(b, !(cl->req &&
                                                cl->req->attach == dd));
            add_proxy(b, cl, dd->name);
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
        json_builder_set_member_name(b, "mode");
        json_builder_add_string_value(b, d->entry->process ? "process"
                                                           : "vm");
        json_builder_set_member_name(b, "state");
        json_builder_add_string_value(b, dev_state_names[d->state]);
        if (d->failure) {
            json_builder_set_member_name(b, "failure");
            json_builder_add_string_value(b, d->failure);
        }
        json_builder_set_member_name(b, "restarts");
        json_builder_add_int_value(b, d->restarts);
        json_builder_set_member_name(b, "recent-restarts");
        json_builder_add_int_value(b, d->recent_restarts);
        json_builder_set_member_name(b, "max-restarts");
        json_builder_add_int_value(b, d->co->max_restarts);
        json_builder_set_member_name(b, "generation");
        json_builder_add_int_value(b, d->generation);
        if (d->last_failure) {
            json_builder_set_member_name(b, "last-failure");
            json_builder_begin_object(b);
            json_builder_set_member_name(b, "time");
            json_builder_add_string_value(b, d->last_failure_time);
            json_builder_set_member_name(b, "reason");
            json_builder_add_string_value(b, d->last_failure);
            json_builder_end_object(b);
        }
        if (d->loss_window >= 0) {
            json_builder_set_member_name(b, "loss-window");
            json_builder_add_double_value(b, d->loss_window);
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
        json_builder_set_member_name(b, "uid");
        json_builder_add_int_value(b, d->uid ? d->uid : geteuid());
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
    if (co->leftovers) {
        json_builder_set_member_name(b, "leftovers");
        leftovers_add_json(co, co->leftovers, b);
    }
    json_builder_end_object(b);
    return json_builder_get_root(b);
}

/* The state a restarted coordinator needs, in RUN/state.json. */
void coord_save_state(Coord *co)
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

