/*
 * devvm-coordinator: reading what a device image needs (the note that
 * DEVVM_NEEDS() of libdevvm/needs.h emits) from a device VM image or a
 * process-mode binary.  The image is untrusted input: every offset and
 * field is checked, and a malformed note is refused with a message that
 * names the image and the problem.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef DEVVM_COORD_NEEDS_H
#define DEVVM_COORD_NEEDS_H

#include <glib.h>
#include <stdbool.h>

#include "libdevvm/needs.h"

/*
 * Find and decode the needs note in the ELF file held in @data (@len
 * bytes); @what names it in messages (usually its path).  Notes are
 * looked for in SHT_NOTE sections, or in PT_NOTE segments when the file
 * has no section headers.  Exactly one devvm needs note must be there.
 * ELF32 and ELF64, little-endian.  Returns false with @errp set.
 */
bool devvm_needs_parse(const guint8 *data, gsize len, const char *what,
                       struct devvm_needs *needs, GError **errp);

/* The same for the file at @path. */
bool devvm_needs_read_file(const char *path, struct devvm_needs *needs,
                           GError **errp);

/*
 * Check a decoded descriptor's fields (devvm_needs_parse() does); @what
 * names the image in messages.
 */
bool devvm_needs_check(const struct devvm_needs *needs, const char *what,
                       GError **errp);

/* "exclusive core" or "shared, 20% of a core": for people. */
char *devvm_needs_cores_str(const struct devvm_needs *needs);

#endif /* DEVVM_COORD_NEEDS_H */
