/*
 * devvm-coordinator: a client QEMU's QMP connection, kept open while the
 * client runs.  Commands are sent at once and their replies matched by
 * id; events go to one callback.  up uses it to learn that the client
 * runs, attach and detach for device_add and device_del, status for
 * query-devvm-proxy, and the DEVVM_PROXY_STATE_CHANGED events of the
 * client's proxies are collected from it.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef DEVVM_COORD_QMP_H
#define DEVVM_COORD_QMP_H

#include <json-glib/json-glib.h>

typedef struct CoordQmp CoordQmp;

/*
 * A reply: @ret is the "return" member (NULL on error), @error the
 * error's "desc" or why no reply came ("the QMP connection closed").
 */
typedef void (*CoordQmpReplyFn)(JsonNode *ret, const char *error,
                                gpointer opaque);
/* An event: its name and "data" (NULL when it has none). */
typedef void (*CoordQmpEventFn)(const char *event, JsonObject *data,
                                gpointer opaque);

/*
 * Connect to the QMP server at @path and send qmp_capabilities.  NULL
 * with @errp set when nothing listens there (yet).
 */
CoordQmp *coord_qmp_connect(const char *path, CoordQmpEventFn on_event,
                            gpointer opaque, GError **errp);
/* Close the connection; each pending call gets its error first. */
void coord_qmp_free(CoordQmp *q);

/*
 * Execute @command with @args (taken; NULL: none).  @fn runs once: with
 * the reply, or with an error when the connection closes first (at
 * once, before this returns, when it is closed already).
 */
void coord_qmp_call(CoordQmp *q, const char *command, JsonNode *args,
                    CoordQmpReplyFn fn, gpointer opaque);

#endif /* DEVVM_COORD_QMP_H */
