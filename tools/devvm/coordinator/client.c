/*
 * devvm-coordinator: client VMs: lookup, exit, release.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "coordinator.h"

Client *client_find(Coord *co, const char *name)
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

void proxy_event_free(gpointer data)
{
    ProxyEvent *e = data;

    g_free(e->state);
    g_free(e->reason);
    g_free(e->time);
    g_free(e);
}

/* DEVVM_PROXY_STATE_CHANGED: keep it for status, pass it on. */
static void client_proxy_event(Client *cl, JsonObject *data)
{
    const char *(*get)(JsonObject *, const char *, const char *) =
        json_object_get_string_member_with_default;
    const char *dev = get(data, "id", get(data, "qom-path", "?"));
    g_autoptr(GDateTime) now = g_date_time_new_now_local();
    ProxyEvent *e = g_hash_table_lookup(cl->proxy_events, dev);

    if (!e) {
        e = g_new0(ProxyEvent, 1);
        g_hash_table_insert(cl->proxy_events, g_strdup(dev), e);
    }
    g_free(e->state);
    g_free(e->reason);
    g_free(e->time);
    e->state = g_strdup(get(data, "state", "?"));
    e->reason = g_strdup(get(data, "reason", ""));
    e->time = g_date_time_format_iso8601(now);
    e->changes++;
    g_message("client %s: device %s is %s (%s)", cl->name, dev, e->state,
              e->reason);
    coord_event(cl->co, "PROXY_STATE_CHANGED", "client", cl->name,
                "device", dev, "state", e->state, "reason", e->reason, NULL);
}

static void client_qmp_event(const char *event, JsonObject *data,
                             gpointer opaque)
{
    Client *cl = opaque;

    if (!data) {
        return;
    }
    if (!strcmp(event, "DEVVM_PROXY_STATE_CHANGED")) {
        client_proxy_event(cl, data);
    } else if (!strcmp(event, "DEVICE_DELETED") &&
               json_object_has_member(data, "device")) {
        client_device_deleted(cl, json_object_get_string_member(data,
                                                                "device"));
    }
}

/*
 * A status waiting for the clients' query-devvm-proxy: done() once all
 * answered, or after COORD_PROXY_QUERY_MS; freed when both happened.
 */
typedef struct ProxyQuery {
    unsigned pending;           /* calls not answered yet */
    bool answered;              /* done() was called */
    void (*done)(gpointer data);
    gpointer data;
    guint timer;
} ProxyQuery;

typedef struct ProxyCall {
    ProxyQuery *q;
    Client *cl;
} ProxyCall;

static void proxy_query_answer(ProxyQuery *q)
{
    if (!q->answered) {
        q->answered = true;
        g_clear_handle_id(&q->timer, g_source_remove);
        q->done(q->data);
    }
    if (!q->pending) {
        g_clear_handle_id(&q->timer, g_source_remove);
        g_free(q);
    }
}

static void client_proxies_reply(JsonNode *ret, const char *error,
                                 gpointer opaque)
{
    ProxyCall *call = opaque;
    ProxyQuery *q = call->q;

    if (ret && JSON_NODE_HOLDS_ARRAY(ret)) {
        g_clear_pointer(&call->cl->proxies, json_node_unref);
        call->cl->proxies = json_node_copy(ret);
    }
    g_free(call);
    if (--q->pending == 0) {
        proxy_query_answer(q);
    }
}

/* A client that does not answer in time: status goes without it. */
static gboolean proxy_query_timeout(gpointer data)
{
    ProxyQuery *q = data;

    q->timer = 0;
    proxy_query_answer(q);
    return G_SOURCE_REMOVE;
}

void clients_query_proxies(Coord *co, void (*done)(gpointer), gpointer data)
{
    ProxyQuery *q = g_new0(ProxyQuery, 1);
    GPtrArray *calls = g_ptr_array_new();
    guint i;

    q->done = done;
    q->data = data;
    for (i = 0; i < co->clients->len; i++) {
        Client *cl = co->clients->pdata[i];

        if (cl->state == CLIENT_RUNNING && cl->qmp && !cl->teardown) {
            ProxyCall *call = g_new0(ProxyCall, 1);

            call->cl = cl;
            g_ptr_array_add(calls, call);
        }
    }
    q->pending = calls->len;
    if (!q->pending) {
        g_ptr_array_free(calls, true);
        proxy_query_answer(q);
        return;
    }
    q->timer = g_timeout_add(COORD_PROXY_QUERY_MS, proxy_query_timeout, q);
    for (i = 0; i < calls->len; i++) {
        ProxyCall *call = calls->pdata[i];

        call->q = q;
        coord_qmp_call(call->cl->qmp, "query-devvm-proxy", NULL,
                       client_proxies_reply, call);
    }
    g_ptr_array_free(calls, true);
}

bool client_qmp_connect(Client *cl, GError **errp)
{
    cl->qmp = coord_qmp_connect(cl->coord_qmp_path, client_qmp_event, cl,
                                errp);
    return cl->qmp != NULL;
}

void client_destroy(Client *cl)
{
    Coord *co = cl->co;
    g_autoptr(GError) err = NULL;

    client_unplug_abort(cl, "the client is gone");
    /* pending replies are called, with an error, while cl is whole */
    g_clear_pointer(&cl->qmp, coord_qmp_free);
    g_clear_pointer(&cl->proxies, json_node_unref);
    g_hash_table_unref(cl->proxy_events);
    for (guint i = 0; i < cl->desc->hotplug_slots; i++) {
        g_free(cl->slots[i]);
    }
    g_free(cl->slots);

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
    g_free(cl->coord_qmp_path);
    g_free(cl);
}

void client_proc_exited(CoordProc *p, gpointer opaque)
{
    Client *cl = opaque;
    Coord *co = cl->co;

    cl->state = CLIENT_EXITED;
    if (cl->req && !cl->teardown) {
        Request *req = cl->req;
        bool attach = req->attach;

        request_client_exited(req);
        request_fail(req);
        if (!attach) {
            return;
        }
    }
    if (cl->teardown) {
        if (--cl->teardown->waiting == 0) {
            teardown_continue(cl->teardown);
        }
        return;
    }
    g_message("client %s %s; its logs stay in %s until down", cl->name,
              coord_proc_exit_str(p), cl->dir);
    coord_event(cl->co, "CLIENT_EXITED", "client", cl->name, "how",
                coord_proc_exit_str(p), NULL);
    /* it ended by itself: its devices are no longer needed by it; the
     * record and its directory (the logs of what happened) stay */
    client_unplug_abort(cl, "the client exited");
    g_clear_pointer(&cl->qmp, coord_qmp_free);
    client_release_devices(cl);
    coord_save_state(co);
}

