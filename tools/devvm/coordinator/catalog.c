/*
 * devvm-coordinator: the catalog: device types from the images' needs notes.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "coordinator.h"

const CatalogEntry *catalog_find(Coord *co, const char *type,
                                 CoordMode mode)
{
    CatalogEntry *vm = NULL, *process = NULL;
    guint i;

    for (i = 0; i < co->catalog->len; i++) {
        CatalogEntry *e = co->catalog->pdata[i];

        if (!strcmp(e->needs.name, type)) {
            if (e->process) {
                process = e;
            } else {
                vm = e;
            }
        }
    }
    switch (mode) {
    case COORD_MODE_VM:
        return vm;
    case COORD_MODE_PROCESS:
        return process;
    default:
        return vm ? vm : process;
    }
}

char *catalog_types(Coord *co)
{
    GString *s = g_string_new(NULL);
    guint i;

    for (i = 0; i < co->catalog->len; i++) {
        CatalogEntry *e = co->catalog->pdata[i];

        g_string_append_printf(s, "%s%s%s", i ? ", " : "", e->needs.name,
                               e->process ? " (process)" : "");
    }
    return g_string_free(s, false);
}

bool catalog_add(Coord *co, const char *image, bool process,
                 GError **errp)
{
    g_autofree CatalogEntry *e = g_new0(CatalogEntry, 1);
    const CatalogEntry *old;

    if (!devvm_needs_read_file(image, &e->needs, errp)) {
        return false;
    }
    old = catalog_find(co, e->needs.name,
                       process ? COORD_MODE_PROCESS : COORD_MODE_VM);
    if (old) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_EXISTS,
                    "%s: device type %s%s is already given by %s", image,
                    e->needs.name, process ? " (process)" : "", old->image);
        return false;
    }
    if (process && !g_file_test(image, G_FILE_TEST_IS_EXECUTABLE)) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED,
                    "%s: not an executable; expected a process-mode device "
                    "binary", image);
        return false;
    }
    e->image = g_canonicalize_filename(image, NULL);
    e->process = process;
    g_message("catalog: %s from %s%s: %04x:%04x, %s, %u MiB, %s%u client%s",
              e->needs.name, e->image, process ? " (process mode)" : "",
              e->needs.vendor_id,
              e->needs.device_id,
              e->needs.cores == DEVVM_NEEDS_CORE_EXCLUSIVE ?
              "an exclusive core" : "a shared core",
              e->needs.memory_mib,
              e->needs.flags & DEVVM_NEEDS_F_SHAREABLE ? "shareable, up to "
                                                       : "",
              e->needs.max_clients, e->needs.max_clients == 1 ? "" : "s");
    g_ptr_array_add(co->catalog, g_steal_pointer(&e));
    return true;
}

