/*
 * devvm-coordinator: stopping clients and device VMs and freeing what they held.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "coordinator.h"

/* Stop @clients, then @devices, then free their resources and call
 * @done(@data). */
void teardown_start(Coord *co, GPtrArray *clients,
                           GPtrArray *devices, void (*done)(gpointer),
                           gpointer data)
{
    Teardown *td = g_new0(Teardown, 1);

    td->co = co;
    td->clients = g_ptr_array_copy(clients, NULL, NULL);
    td->devices = g_ptr_array_copy(devices, NULL, NULL);
    td->done = done;
    td->data = data;
    teardown_continue(td);
}

/* The next phase, once the processes of this one have exited. */
void teardown_continue(Teardown *td)
{
    Coord *co = td->co;
    guint i;

    while (td->waiting == 0 && td->phase < 2) {
        td->phase++;
        if (td->phase == 1) {
            for (i = 0; i < td->clients->len; i++) {
                Client *cl = td->clients->pdata[i];

                cl->teardown = td;
                if (cl->qemu && coord_proc_running(cl->qemu)) {
                    td->waiting++;
                    coord_proc_stop(cl->qemu, COORD_STOP_GRACE_MS);
                }
            }
        } else {
            for (i = 0; i < td->devices->len; i++) {
                DeviceVM *d = td->devices->pdata[i];

                d->teardown = td;
                g_cancellable_cancel(d->cancel);
                g_clear_handle_id(&d->poll_timer, g_source_remove);
                g_clear_handle_id(&d->ready_timer, g_source_remove);
                g_clear_handle_id(&d->restart_timer, g_source_remove);
                if (d->vm && coord_proc_running(d->vm)) {
                    td->waiting++;
                    coord_proc_stop(d->vm, COORD_STOP_GRACE_MS);
                }
                if (d->gateway && coord_proc_running(d->gateway)) {
                    td->waiting++;
                    coord_proc_stop(d->gateway, COORD_STOP_GRACE_MS);
                }
            }
        }
    }
    if (td->waiting) {
        return;
    }
    for (i = 0; i < td->clients->len; i++) {
        client_destroy(td->clients->pdata[i]);
    }
    for (i = 0; i < td->devices->len; i++) {
        device_destroy(td->devices->pdata[i]);
    }
    coord_place_all(co);
    coord_save_state(co);
    if (td->done) {
        td->done(td->data);
    }
    g_ptr_array_free(td->clients, true);
    g_ptr_array_free(td->devices, true);
    g_free(td);
}

/* @cl's device VMs no other client uses (it stops using them). */
static GPtrArray *client_let_go(Client *cl)
{
    GPtrArray *devices = g_ptr_array_new();
    guint i;

    if (!cl->released) {
        cl->released = true;
        for (i = 0; i < cl->devices->len; i++) {
            DeviceVM *d = cl->devices->pdata[i];

            if (--d->users == 0 && !d->teardown) {
                g_ptr_array_add(devices, d);
            }
        }
        /* they may be freed from now on: it has none */
        g_ptr_array_set_size(cl->devices, 0);
    }
    return devices;
}

/*
 * Let go of @cl: stop it (if it runs), then every device VM no other
 * client uses, free all that, then @done.
 */
void client_release(Client *cl, void (*done)(gpointer), gpointer data)
{
    g_autoptr(GPtrArray) clients = g_ptr_array_new();
    g_autoptr(GPtrArray) devices = client_let_go(cl);

    g_ptr_array_add(clients, cl);
    teardown_start(cl->co, clients, devices, done, data);
}

void client_release_devices(Client *cl)
{
    g_autoptr(GPtrArray) none = g_ptr_array_new();
    g_autoptr(GPtrArray) devices = client_let_go(cl);

    if (devices->len) {
        teardown_start(cl->co, none, devices, NULL, NULL);
    }
}

