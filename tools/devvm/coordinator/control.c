/*
 * devvm-coordinator: the control socket (control.h).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <errno.h>
#include <gio/gunixsocketaddress.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "control.h"

#define CONTROL_MAX_LINE    (1024 * 1024)
#define CONTROL_READ_SIZE   4096

struct CoordControl {
    char *path;
    GSocketService *service;
    GList *conns;               /* CoordConn *, each holding a ref */
    CoordDispatchFn dispatch;
    gpointer opaque;
};

struct CoordConn {
    int refs;
    CoordControl *ctl;          /* NULL once closed */
    GSocketConnection *sc;
    GCancellable *cancel;
    GString *in;
    GQueue out;                 /* GBytes * to write */
    GBytes *writing;            /* being written */
    bool close_after_write;
    guint64 id;                 /* for logs */
};

static guint64 control_next_id = 1;

CoordConn *coord_conn_ref(CoordConn *c)
{
    c->refs++;
    return c;
}

void coord_conn_unref(CoordConn *c)
{
    if (--c->refs) {
        return;
    }
    g_queue_clear_full(&c->out, (GDestroyNotify)g_bytes_unref);
    g_clear_pointer(&c->writing, g_bytes_unref);
    g_string_free(c->in, true);
    g_object_unref(c->cancel);
    g_object_unref(c->sc);
    g_free(c);
}

static void conn_close(CoordConn *c)
{
    if (!c->ctl) {
        return;
    }
    g_debug("control connection %" G_GUINT64_FORMAT " closed", c->id);
    c->ctl->conns = g_list_remove(c->ctl->conns, c);
    c->ctl = NULL;
    g_cancellable_cancel(c->cancel);
    g_io_stream_close(G_IO_STREAM(c->sc), NULL, NULL);
    coord_conn_unref(c);
}

static void conn_write_next(CoordConn *c);

static void conn_written(GObject *src, GAsyncResult *res, gpointer data)
{
    CoordConn *c = data;
    g_autoptr(GError) err = NULL;

    g_clear_pointer(&c->writing, g_bytes_unref);
    if (!g_output_stream_write_all_finish(G_OUTPUT_STREAM(src), res, NULL,
                                          &err)) {
        if (!g_error_matches(err, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
            g_debug("control connection %" G_GUINT64_FORMAT ": %s", c->id,
                    err->message);
        }
        conn_close(c);
    } else {
        conn_write_next(c);
    }
    coord_conn_unref(c);
}

static void conn_write_next(CoordConn *c)
{
    GBytes *b;

    if (!c->ctl || c->writing) {
        return;
    }
    b = g_queue_peek_head(&c->out);
    if (!b) {
        if (c->close_after_write) {
            conn_close(c);
        }
        return;
    }
    c->writing = g_queue_pop_head(&c->out);
    g_output_stream_write_all_async(
        g_io_stream_get_output_stream(G_IO_STREAM(c->sc)),
        g_bytes_get_data(b, NULL), g_bytes_get_size(b), G_PRIORITY_DEFAULT,
        c->cancel, conn_written, coord_conn_ref(c));
}

static void conn_send(CoordConn *c, JsonNode *node)
{
    g_autofree char *text = json_to_string(node, false);
    GString *line = g_string_new(text);

    if (!c->ctl) {
        return;
    }
    g_string_append_c(line, '\n');
    g_queue_push_tail(&c->out, g_string_free_to_bytes(line));
    conn_write_next(c);
}

/* Add @id to the reply object @b is building, close it and send it. */
static void conn_send_reply(CoordConn *c, JsonBuilder *b, JsonNode *id)
{
    g_autoptr(JsonNode) root = NULL;

    if (id) {
        json_builder_set_member_name(b, "id");
        json_builder_add_value(b, json_node_copy(id));
    }
    json_builder_end_object(b);
    root = json_builder_get_root(b);
    conn_send(c, root);
}

void coord_conn_return(CoordConn *c, JsonNode *id, JsonNode *ret)
{
    g_autoptr(JsonBuilder) b = json_builder_new();

    json_builder_begin_object(b);
    json_builder_set_member_name(b, "return");
    if (ret) {
        json_builder_add_value(b, ret);
    } else {
        json_builder_begin_object(b);
        json_builder_end_object(b);
    }
    conn_send_reply(c, b, id);
}

void coord_conn_error(CoordConn *c, JsonNode *id, const char *klass,
                      const char *fmt, ...)
{
    g_autoptr(JsonBuilder) b = json_builder_new();
    g_autofree char *desc = NULL;
    va_list ap;

    va_start(ap, fmt);
    desc = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "error");
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "class");
    json_builder_add_string_value(b, klass);
    json_builder_set_member_name(b, "desc");
    json_builder_add_string_value(b, desc);
    json_builder_end_object(b);
    conn_send_reply(c, b, id);
}

void coord_control_event(CoordControl *ctl, const char *event,
                         JsonObject *data)
{
    g_autoptr(JsonBuilder) b = json_builder_new();
    g_autoptr(JsonNode) root = NULL;
    gint64 now = g_get_real_time();
    GList *l;

    json_builder_begin_object(b);
    json_builder_set_member_name(b, "event");
    json_builder_add_string_value(b, event);
    json_builder_set_member_name(b, "data");
    if (data) {
        JsonNode *n = json_node_new(JSON_NODE_OBJECT);

        json_node_set_object(n, data);
        json_builder_add_value(b, n);
    } else {
        json_builder_begin_object(b);
        json_builder_end_object(b);
    }
    json_builder_set_member_name(b, "timestamp");
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "seconds");
    json_builder_add_int_value(b, now / G_USEC_PER_SEC);
    json_builder_set_member_name(b, "microseconds");
    json_builder_add_int_value(b, now % G_USEC_PER_SEC);
    json_builder_end_object(b);
    json_builder_end_object(b);
    root = json_builder_get_root(b);
    for (l = ctl->conns; l; l = l->next) {
        conn_send(l->data, root);
    }
}

/* One line from the peer. */
static void conn_line(CoordConn *c, const char *line)
{
    g_autoptr(JsonParser) parser = json_parser_new();
    g_autoptr(GError) err = NULL;
    JsonObject *obj, *args = NULL;
    JsonNode *root, *id, *exec, *a;

    if (!*line) {
        return;
    }
    if (!json_parser_load_from_data(parser, line, -1, &err)) {
        coord_conn_error(c, NULL, "GenericError", "JSON parse error: %s",
                         err->message);
        return;
    }
    root = json_parser_get_root(parser);
    if (!JSON_NODE_HOLDS_OBJECT(root)) {
        coord_conn_error(c, NULL, "GenericError", "expected a JSON object "
                         "{\"execute\": COMMAND, \"arguments\": {...}}");
        return;
    }
    obj = json_node_get_object(root);
    id = json_object_get_member(obj, "id");
    exec = json_object_get_member(obj, "execute");
    if (!exec || !JSON_NODE_HOLDS_VALUE(exec) ||
        json_node_get_value_type(exec) != G_TYPE_STRING) {
        coord_conn_error(c, id, "GenericError", "expected \"execute\" with "
                         "a command name");
        return;
    }
    a = json_object_get_member(obj, "arguments");
    if (a && !JSON_NODE_HOLDS_OBJECT(a)) {
        coord_conn_error(c, id, "GenericError", "\"arguments\" must be an "
                         "object");
        return;
    }
    if (a) {
        args = json_node_get_object(a);
    }
    c->ctl->dispatch(c, json_node_get_string(exec), args, id,
                     c->ctl->opaque);
}

static void conn_read(CoordConn *c);

static void conn_got(GObject *src, GAsyncResult *res, gpointer data)
{
    CoordConn *c = data;
    g_autoptr(GError) err = NULL;
    g_autoptr(GBytes) bytes = NULL;
    char *nl;

    bytes = g_input_stream_read_bytes_finish(G_INPUT_STREAM(src), res, &err);
    if (!c->ctl) {
        goto out;
    }
    if (!bytes || g_bytes_get_size(bytes) == 0) {
        conn_close(c);
        goto out;
    }
    g_string_append_len(c->in, g_bytes_get_data(bytes, NULL),
                        g_bytes_get_size(bytes));
    while (c->ctl && (nl = memchr(c->in->str, '\n', c->in->len))) {
        g_autofree char *line = g_strndup(c->in->str, nl - c->in->str);

        g_string_erase(c->in, 0, nl - c->in->str + 1);
        conn_line(c, line);
    }
    if (c->ctl && c->in->len > CONTROL_MAX_LINE) {
        coord_conn_error(c, NULL, "GenericError", "a line of more than %d "
                         "bytes: disconnected", CONTROL_MAX_LINE);
        c->close_after_write = true;
        conn_write_next(c);
        goto out;
    }
    conn_read(c);
out:
    coord_conn_unref(c);
}

static void conn_read(CoordConn *c)
{
    if (!c->ctl) {
        return;
    }
    g_input_stream_read_bytes_async(
        g_io_stream_get_input_stream(G_IO_STREAM(c->sc)), CONTROL_READ_SIZE,
        G_PRIORITY_DEFAULT, c->cancel, conn_got, coord_conn_ref(c));
}

static gboolean control_incoming(GSocketService *service,
                                 GSocketConnection *sc, GObject *source,
                                 gpointer data)
{
    CoordControl *ctl = data;
    GSocket *sock = g_socket_connection_get_socket(sc);
    g_autoptr(GCredentials) cred = NULL;
    g_autoptr(GError) err = NULL;
    CoordConn *c = g_new0(CoordConn, 1);
    uid_t uid = (uid_t)-1;

    c->refs = 1;
    c->ctl = ctl;
    c->sc = g_object_ref(sc);
    c->cancel = g_cancellable_new();
    c->in = g_string_new(NULL);
    c->id = control_next_id++;
    g_queue_init(&c->out);
    ctl->conns = g_list_prepend(ctl->conns, c);

    cred = g_socket_get_credentials(sock, &err);
    if (cred) {
        uid = g_credentials_get_unix_user(cred, &err);
    }
    if (!cred || uid == (uid_t)-1 || uid != geteuid()) {
        g_autofree char *who = cred && uid != (uid_t)-1 ?
            g_strdup_printf("uid %u", (unsigned)uid) :
            g_strdup_printf("a peer of unknown uid (%s)",
                            err ? err->message : "?");

        g_warning("control connection refused: %s is not uid %u", who,
                  (unsigned)geteuid());
        coord_conn_error(c, NULL, "PermissionDenied", "%s may not use this "
                         "coordinator: it serves uid %u only", who,
                         (unsigned)geteuid());
        c->close_after_write = true;
        conn_write_next(c);
        return true;
    }
    g_debug("control connection %" G_GUINT64_FORMAT " from uid %u", c->id,
            (unsigned)uid);
    {
        g_autoptr(JsonBuilder) b = json_builder_new();
        g_autoptr(JsonNode) root = NULL;

        json_builder_begin_object(b);
        json_builder_set_member_name(b, "devvm-coordinator");
        json_builder_begin_object(b);
        json_builder_set_member_name(b, "version");
        json_builder_add_string_value(b, "0.1");
        json_builder_set_member_name(b, "pid");
        json_builder_add_int_value(b, getpid());
        json_builder_end_object(b);
        json_builder_end_object(b);
        root = json_builder_get_root(b);
        conn_send(c, root);
    }
    conn_read(c);
    return true;
}

CoordControl *coord_control_new(const char *path, CoordDispatchFn dispatch,
                                gpointer opaque, GError **errp)
{
    CoordControl *ctl = g_new0(CoordControl, 1);
    g_autoptr(GSocketAddress) addr = g_unix_socket_address_new(path);

    ctl->path = g_strdup(path);
    ctl->dispatch = dispatch;
    ctl->opaque = opaque;
    ctl->service = g_socket_service_new();
    unlink(path);
    if (!g_socket_listener_add_address(G_SOCKET_LISTENER(ctl->service), addr,
                                       G_SOCKET_TYPE_STREAM,
                                       G_SOCKET_PROTOCOL_DEFAULT, NULL, NULL,
                                       errp) ||
        chmod(path, 0600) < 0) {
        if (errp && !*errp) {
            g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(errno),
                        "chmod %s: %s", path, g_strerror(errno));
        }
        g_prefix_error(errp, "control socket %s: ", path);
        g_object_unref(ctl->service);
        g_free(ctl->path);
        g_free(ctl);
        return NULL;
    }
    g_signal_connect(ctl->service, "incoming", G_CALLBACK(control_incoming),
                     ctl);
    g_socket_service_start(ctl->service);
    return ctl;
}

void coord_control_free(CoordControl *ctl)
{
    if (!ctl) {
        return;
    }
    g_socket_service_stop(ctl->service);
    g_socket_listener_close(G_SOCKET_LISTENER(ctl->service));
    while (ctl->conns) {
        conn_close(ctl->conns->data);
    }
    g_object_unref(ctl->service);
    unlink(ctl->path);
    g_free(ctl->path);
    g_free(ctl);
}
