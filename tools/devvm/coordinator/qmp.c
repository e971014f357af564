/*
 * devvm-coordinator: a client QEMU's QMP connection (qmp.h).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <gio/gio.h>
#include <gio/gunixsocketaddress.h>
#include <stdbool.h>
#include <string.h>

#include "qmp.h"

typedef struct QmpPending {
    CoordQmpReplyFn fn;
    gpointer opaque;
} QmpPending;

struct CoordQmp {
    int refs;
    bool closed;                /* freed by its owner, or the peer left */
    GSocketConnection *conn;
    GDataInputStream *in;
    GCancellable *cancel;
    GHashTable *pending;        /* id (gint64 *) -> QmpPending * */
    gint64 next_id;
    CoordQmpEventFn on_event;
    gpointer opaque;
};

static CoordQmp *qmp_ref(CoordQmp *q)
{
    q->refs++;
    return q;
}

static void qmp_unref(CoordQmp *q)
{
    if (--q->refs) {
        return;
    }
    g_hash_table_unref(q->pending);
    g_object_unref(q->cancel);
    g_clear_object(&q->in);
    g_clear_object(&q->conn);
    g_free(q);
}

/* The peer is gone: every pending call gets @why. */
static void qmp_fail_pending(CoordQmp *q, const char *why)
{
    g_autoptr(GList) calls = NULL;
    GList *l;

    q->closed = true;
    calls = g_hash_table_get_values(q->pending);
    g_hash_table_steal_all(q->pending);
    for (l = calls; l; l = l->next) {
        QmpPending *p = l->data;

        p->fn(NULL, why, p->opaque);
        g_free(p);
    }
}

static void qmp_dispatch(CoordQmp *q, JsonObject *obj)
{
    JsonNode *idn = json_object_get_member(obj, "id");
    gint64 id;
    QmpPending *p;

    if (json_object_has_member(obj, "event")) {
        const char *ev = json_object_get_string_member_with_default(
            obj, "event", "");
        JsonNode *data = json_object_get_member(obj, "data");

        if (q->on_event) {
            q->on_event(ev, data && JSON_NODE_HOLDS_OBJECT(data) ?
                            json_node_get_object(data) : NULL, q->opaque);
        }
        return;
    }
    if (!idn || !JSON_NODE_HOLDS_VALUE(idn) ||
        json_node_get_value_type(idn) != G_TYPE_INT64) {
        return;                 /* the greeting, qmp_capabilities' reply */
    }
    id = json_node_get_int(idn);
    p = g_hash_table_lookup(q->pending, &id);
    if (!p) {
        return;
    }
    g_hash_table_steal(q->pending, &id);
    if (json_object_has_member(obj, "return")) {
        p->fn(json_object_get_member(obj, "return"), NULL, p->opaque);
    } else {
        JsonObject *e = json_object_get_object_member(obj, "error");

        p->fn(NULL, e ? json_object_get_string_member_with_default(
                            e, "desc", "error without a description")
                      : "a reply without return or error", p->opaque);
    }
    g_free(p);
}

static void qmp_read(GObject *src, GAsyncResult *res, gpointer data)
{
    CoordQmp *q = data;
    g_autoptr(GError) err = NULL;
    g_autofree char *line = NULL;
    g_autoptr(JsonParser) parser = json_parser_new();

    line = g_data_input_stream_read_line_finish(G_DATA_INPUT_STREAM(src),
                                                res, NULL, &err);
    if (q->closed) {
        goto out;
    }
    if (!line) {
        qmp_fail_pending(q, err ? err->message
                                : "the QMP connection closed");
        goto out;
    }
    if (json_parser_load_from_data(parser, line, -1, NULL) &&
        JSON_NODE_HOLDS_OBJECT(json_parser_get_root(parser))) {
        qmp_dispatch(q, json_node_get_object(json_parser_get_root(parser)));
    }
    if (!q->closed) {
        g_data_input_stream_read_line_async(q->in, G_PRIORITY_DEFAULT,
                                            q->cancel, qmp_read,
                                            qmp_ref(q));
    }
out:
    qmp_unref(q);
}

static bool qmp_send(CoordQmp *q, JsonNode *msg, GError **errp)
{
    g_autofree char *json = json_to_string(msg, false);
    g_autofree char *text = g_strconcat(json, "\n", NULL);
    GOutputStream *out = g_io_stream_get_output_stream(G_IO_STREAM(q->conn));

    return g_output_stream_write_all(out, text, strlen(text), NULL,
                                     q->cancel, errp);
}

CoordQmp *coord_qmp_connect(const char *path, CoordQmpEventFn on_event,
                            gpointer opaque, GError **errp)
{
    g_autoptr(GSocketClient) sc = g_socket_client_new();
    g_autoptr(GSocketAddress) addr = g_unix_socket_address_new(path);
    g_autoptr(JsonNode) caps = NULL;
    g_autoptr(JsonBuilder) b = json_builder_new();
    GSocketConnection *conn;
    CoordQmp *q;

    conn = g_socket_client_connect(sc, G_SOCKET_CONNECTABLE(addr), NULL,
                                   errp);
    if (!conn) {
        return NULL;
    }
    q = g_new0(CoordQmp, 1);
    q->refs = 1;
    q->conn = conn;
    q->in = g_data_input_stream_new(
        g_io_stream_get_input_stream(G_IO_STREAM(conn)));
    q->cancel = g_cancellable_new();
    q->pending = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free,
                                       NULL);
    q->next_id = 1;
    q->on_event = on_event;
    q->opaque = opaque;

    json_builder_begin_object(b);
    json_builder_set_member_name(b, "execute");
    json_builder_add_string_value(b, "qmp_capabilities");
    json_builder_end_object(b);
    caps = json_builder_get_root(b);
    if (!qmp_send(q, caps, errp)) {
        qmp_unref(q);
        return NULL;
    }
    g_data_input_stream_read_line_async(q->in, G_PRIORITY_DEFAULT, q->cancel,
                                        qmp_read, qmp_ref(q));
    return q;
}

void coord_qmp_free(CoordQmp *q)
{
    if (!q) {
        return;
    }
    qmp_fail_pending(q, "the QMP connection was closed");
    g_cancellable_cancel(q->cancel);
    g_io_stream_close(G_IO_STREAM(q->conn), NULL, NULL);
    qmp_unref(q);
}

void coord_qmp_call(CoordQmp *q, const char *command, JsonNode *args,
                    CoordQmpReplyFn fn, gpointer opaque)
{
    g_autoptr(JsonBuilder) b = json_builder_new();
    g_autoptr(JsonNode) msg = NULL;
    g_autoptr(GError) err = NULL;
    QmpPending *p;
    gint64 id = q->next_id++;

    json_builder_begin_object(b);
    json_builder_set_member_name(b, "execute");
    json_builder_add_string_value(b, command);
    if (args) {
        json_builder_set_member_name(b, "arguments");
        json_builder_add_value(b, args);
    }
    json_builder_set_member_name(b, "id");
    json_builder_add_int_value(b, id);
    json_builder_end_object(b);
    msg = json_builder_get_root(b);
    if (q->closed || !qmp_send(q, msg, &err)) {
        g_autofree char *why = g_strdup_printf(
            "QMP %s: %s", command,
            err ? err->message : "the connection is closed");

        fn(NULL, why, opaque);
        return;
    }
    p = g_new0(QmpPending, 1);
    p->fn = fn;
    p->opaque = opaque;
    g_hash_table_insert(q->pending, g_memdup2(&id, sizeof(id)), p);
}
