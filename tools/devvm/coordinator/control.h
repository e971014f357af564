/*
 * devvm-coordinator: the control socket.  A UNIX stream socket (mode
 * 0600 in the 0700 run directory) that speaks QMP-shaped JSON, one
 * object per line:
 *
 *   -> {"execute": "up", "arguments": {"file": "/abs/demo.ini"}, "id": 1}
 *   <- {"return": {...}, "id": 1}
 *   <- {"error": {"class": "GenericError", "desc": "..."}, "id": 1}
 *   <- {"event": "DEVICE_READY", "data": {...}, "timestamp": {...}}
 *
 * A peer whose SO_PEERCRED uid is not the coordinator's gets one error
 * (class "PermissionDenied") and is disconnected.  Commands may complete
 * later (up waits for device VMs): the dispatcher keeps a reference to
 * the connection and replies when done; a reply to a connection that
 * went away is dropped.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef DEVVM_COORD_CONTROL_H
#define DEVVM_COORD_CONTROL_H

#include <json-glib/json-glib.h>
#include <stdbool.h>

typedef struct CoordControl CoordControl;
typedef struct CoordConn CoordConn;

/* One command: @args may be NULL; reply with coord_conn_return() or
 * coord_conn_error(), now or later, passing @id back. */
typedef void (*CoordDispatchFn)(CoordConn *conn, const char *command,
                                JsonObject *args, JsonNode *id,
                                gpointer opaque);

CoordControl *coord_control_new(const char *path, CoordDispatchFn dispatch,
                                gpointer opaque, GError **errp);
/* Stop listening, drop every connection, remove the socket file. */
void coord_control_free(CoordControl *ctl);

/* Send an event to every connection. */
void coord_control_event(CoordControl *ctl, const char *event,
                         JsonObject *data);

CoordConn *coord_conn_ref(CoordConn *conn);
void coord_conn_unref(CoordConn *conn);
/* Reply; takes @ret (NULL: an empty object) and @id. */
void coord_conn_return(CoordConn *conn, JsonNode *id, JsonNode *ret);
G_GNUC_PRINTF(4, 5)
void coord_conn_error(CoordConn *conn, JsonNode *id, const char *klass,
                      const char *fmt, ...);

#endif /* DEVVM_COORD_CONTROL_H */
