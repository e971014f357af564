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

void client_destroy(Client *cl)
{
    Coord *co = cl->co;
    g_autoptr(GError) err = NULL;

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
    g_free(cl);
}

void client_proc_exited(CoordProc *p, gpointer opaque)
{
    Client *cl = opaque;

    cl->state = CLIENT_EXITED;
    if (cl->req) {
        Request *req = cl->req;

        request_client_exited(req);
        request_fail(req);
        return;
    }
    if (cl->teardown) {
        if (--cl->teardown->waiting == 0) {
            teardown_continue(cl->teardown);
        }
        return;
    }
    coord_event(cl->co, "CLIENT_EXITED", "client", cl->name, "how",
                coord_proc_exit_str(p), NULL);
    /* it ended by itself: its devices are no longer needed by it */
    client_release(cl, NULL, NULL);
    coord_save_state(cl->co);
}

