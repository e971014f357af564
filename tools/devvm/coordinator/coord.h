/*
 * devvm-coordinator: shared by the daemon and its command-line client.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef DEVVM_COORD_H
#define DEVVM_COORD_H

#include <glib.h>

#define COORD_CONTROL_SOCKET    "control.sock"

/*
 * The run directory: @dir when given, else $XDG_RUNTIME_DIR/devvm, else
 * /run/devvm for root.  NULL with @errp set when none applies.
 */
char *coord_default_run_dir(const char *dir, GError **errp);

#endif /* DEVVM_COORD_H */
