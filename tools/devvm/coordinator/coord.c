/*
 * devvm-coordinator: shared by the daemon and its client (coord.h).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <gio/gio.h>
#include <unistd.h>

#include "coord.h"

char *coord_default_run_dir(const char *dir, GError **errp)
{
    const char *xdg = g_getenv("XDG_RUNTIME_DIR");

    if (dir) {
        return g_canonicalize_filename(dir, NULL);
    }
    if (xdg && *xdg) {
        return g_build_filename(xdg, "devvm", NULL);
    }
    if (geteuid() == 0) {
        return g_strdup("/run/devvm");
    }
    g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                "no run directory: give --run-dir DIR (XDG_RUNTIME_DIR is "
                "not set)");
    return NULL;
}
