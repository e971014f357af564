/*
 * devvm-coordinator: the needs note of a device image (needs.h).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <elf.h>
#include <gio/gio.h>
#include <string.h>

#include "libdevvm/le.h"
#include "needs.h"

/* The parts of an ELF file the reader uses, whatever its class. */
typedef struct NeedsElf {
    const guint8 *data;
    gsize len;
    const char *what;
    bool is64;
} NeedsElf;

#define needs_fail(errp, ...) \
    g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, __VA_ARGS__)

/* [off, off + size) lies inside the file */
static bool needs_in_file(const NeedsElf *e, guint64 off, guint64 size)
{
    return off <= e->len && size <= e->len - off;
}

static guint64 needs_ld(const NeedsElf *e, guint64 off, unsigned size)
{
    switch (size) {
    case 2:
        return devvm_ld16(e->data + off);
    case 4:
        return devvm_ld32(e->data + off);
    default:
        return devvm_ld64(e->data + off);
    }
}

/* A field of a header at @base: its offset in the ELF32 and ELF64 forms
 * and its size in each. */
static guint64 needs_field(const NeedsElf *e, guint64 base, unsigned off32,
                           unsigned size32, unsigned off64, unsigned size64)
{
    return e->is64 ? needs_ld(e, base + off64, size64)
                   : needs_ld(e, base + off32, size32);
}

/* Decode and check the descriptor of a devvm needs note. */
static bool needs_decode(const NeedsElf *e, const guint8 *d, guint32 descsz,
                         struct devvm_needs *n, GError **errp)
{
    guint32 version;

    if (descsz < 8) {
        needs_fail(errp, "%s: the devvm needs note is %u bytes long; its "
                   "descriptor has at least a version and a size (8 bytes)",
                   e->what, descsz);
        return false;
    }
    version = devvm_ld32(d);
    if (version != DEVVM_NEEDS_VERSION) {
        needs_fail(errp, "%s: the devvm needs note has version %u; this "
                   "coordinator reads version %u", e->what, version,
                   DEVVM_NEEDS_VERSION);
        return false;
    }
    if (descsz != DEVVM_NEEDS_SIZE || devvm_ld32(d + 4) != DEVVM_NEEDS_SIZE) {
        needs_fail(errp, "%s: the devvm needs note's descriptor is %u bytes "
                   "and says %u; version %u has %u", e->what, descsz,
                   devvm_ld32(d + 4), DEVVM_NEEDS_VERSION, DEVVM_NEEDS_SIZE);
        return false;
    }
    memset(n, 0, sizeof(*n));
    n->version = version;
    n->size = DEVVM_NEEDS_SIZE;
    memcpy(n->name, d + 8, DEVVM_NEEDS_NAME_MAX);
    n->vendor_id = devvm_ld16(d + 40);
    n->device_id = devvm_ld16(d + 42);
    n->cores = d[44];
    n->percent = d[45];
    n->reserved0 = devvm_ld16(d + 46);
    n->memory_mib = devvm_ld32(d + 48);
    n->max_clients = devvm_ld32(d + 52);
    n->flags = devvm_ld32(d + 56);
    n->reserved1 = devvm_ld32(d + 60);
    return devvm_needs_check(n, e->what, errp);
}

bool devvm_needs_check(const struct devvm_needs *n, const char *what,
                       GError **errp)
{
    size_t len = strnlen(n->name, DEVVM_NEEDS_NAME_MAX);
    size_t i;

    if (len == 0 || len == DEVVM_NEEDS_NAME_MAX) {
        needs_fail(errp, "%s: the devvm needs note's name is %s; expected "
                   "1 to %u characters", what,
                   len ? "not NUL-terminated" : "empty",
                   DEVVM_NEEDS_NAME_MAX - 1);
        return false;
    }
    for (i = 0; i < len; i++) {
        char c = n->name[i];

        if (!g_ascii_islower(c) && !g_ascii_isdigit(c) && c != '-' &&
            c != '_') {
            needs_fail(errp, "%s: the devvm needs note's name has the byte "
                       "0x%02x; expected a-z, 0-9, '-' and '_'", what,
                       (guint8)c);
            return false;
        }
    }
    for (i = len; i < DEVVM_NEEDS_NAME_MAX; i++) {
        if (n->name[i]) {
            needs_fail(errp, "%s: the devvm needs note's name has bytes "
                       "after its NUL; expected NUL padding", what);
            return false;
        }
    }
    if (n->cores != DEVVM_NEEDS_CORE_EXCLUSIVE &&
        n->cores != DEVVM_NEEDS_CORE_SHARED) {
        needs_fail(errp, "%s: device %s: cores is %u; expected %u "
                   "(exclusive) or %u (shared)", what, n->name, n->cores,
                   DEVVM_NEEDS_CORE_EXCLUSIVE, DEVVM_NEEDS_CORE_SHARED);
        return false;
    }
    if (n->cores == DEVVM_NEEDS_CORE_EXCLUSIVE && n->percent != 100) {
        needs_fail(errp, "%s: device %s: an exclusive core with percent "
                   "%u; expected 100", what, n->name, n->percent);
        return false;
    }
    if (n->percent < 1 || n->percent > 100) {
        needs_fail(errp, "%s: device %s: percent is %u; expected 1 to 100",
                   what, n->name, n->percent);
        return false;
    }
    if (n->memory_mib < 16 || n->memory_mib > 65536) {
        needs_fail(errp, "%s: device %s: memory_mib is %u; expected 16 to "
                   "65536", what, n->name, n->memory_mib);
        return false;
    }
    if (n->flags & ~DEVVM_NEEDS_F_SHAREABLE) {
        needs_fail(errp, "%s: device %s: unknown flags 0x%x", what, n->name,
                   n->flags & ~DEVVM_NEEDS_F_SHAREABLE);
        return false;
    }
    if (n->max_clients < 1 || n->max_clients > 32) {
        needs_fail(errp, "%s: device %s: max_clients is %u; expected 1 to "
                   "32", what, n->name, n->max_clients);
        return false;
    }
    if (!(n->flags & DEVVM_NEEDS_F_SHAREABLE) && n->max_clients != 1) {
        needs_fail(errp, "%s: device %s: not shareable but max_clients is "
                   "%u; expected 1", what, n->name, n->max_clients);
        return false;
    }
    if (n->reserved0 || n->reserved1) {
        needs_fail(errp, "%s: device %s: reserved fields are not 0", what,
                   n->name);
        return false;
    }
    return true;
}

/*
 * Walk the notes in [off, off + size) (@where names the section or
 * segment); count devvm needs notes in *@found, decoding the first.
 */
static bool needs_walk(const NeedsElf *e, guint64 off, guint64 size,
                       guint64 align, const char *where,
                       struct devvm_needs *n, unsigned *found,
                       GError **errp)
{
    guint64 pos = 0;

    if (!needs_in_file(e, off, size)) {
        needs_fail(errp, "%s: %s (offset 0x%" G_GINT64_MODIFIER "x, "
                   "%" G_GUINT64_FORMAT " bytes) runs past the end of the "
                   "file (%" G_GSIZE_FORMAT " bytes)", e->what, where, off,
                   size, e->len);
        return false;
    }
    /* notes are 4-byte aligned, 8-byte in some 64-bit sections */
    align = align == 8 ? 8 : 4;
    while (pos + 12 <= size) {
        const guint8 *h = e->data + off + pos;
        guint32 namesz = devvm_ld32(h);
        guint32 descsz = devvm_ld32(h + 4);
        guint32 type = devvm_ld32(h + 8);
        guint64 name_end = 12 + (guint64)namesz;
        guint64 desc_off = (name_end + align - 1) & ~(align - 1);
        guint64 end = desc_off + (guint64)descsz;

        if (end > size - pos) {
            needs_fail(errp, "%s: a note in %s at offset %" G_GUINT64_FORMAT
                       " claims %u + %u bytes, past the end of %s", e->what,
                       where, pos, namesz, descsz, where);
            return false;
        }
        if (namesz == sizeof(DEVVM_NOTE_OWNER) &&
            !memcmp(h + 12, DEVVM_NOTE_OWNER, sizeof(DEVVM_NOTE_OWNER))) {
            if (type != DEVVM_NOTE_NEEDS) {
                needs_fail(errp, "%s: a devvm note of unknown type 0x%x in "
                           "%s", e->what, type, where);
                return false;
            }
            if (++*found == 1 &&
                !needs_decode(e, h + desc_off, descsz, n, errp)) {
                return false;
            }
        }
        pos += (end + align - 1) & ~(align - 1);
    }
    return true;
}

bool devvm_needs_parse(const guint8 *data, gsize len, const char *what,
                       struct devvm_needs *n, GError **errp)
{
    NeedsElf e = { .data = data, .len = len, .what = what };
    guint64 shoff, phoff, count, entsize, i;
    unsigned found = 0;
    bool sections;

    if (len < EI_NIDENT || memcmp(data, ELFMAG, SELFMAG)) {
        needs_fail(errp, "%s: not an ELF file", what);
        return false;
    }
    if (data[EI_CLASS] != ELFCLASS32 && data[EI_CLASS] != ELFCLASS64) {
        needs_fail(errp, "%s: unknown ELF class %u", what, data[EI_CLASS]);
        return false;
    }
    if (data[EI_DATA] != ELFDATA2LSB) {
        needs_fail(errp, "%s: not a little-endian ELF file", what);
        return false;
    }
    e.is64 = data[EI_CLASS] == ELFCLASS64;
    if (len < (e.is64 ? sizeof(Elf64_Ehdr) : sizeof(Elf32_Ehdr))) {
        needs_fail(errp, "%s: the ELF header is truncated", what);
        return false;
    }

    /* section headers when there are any, else program headers */
    shoff = needs_field(&e, 0, 32, 4, 40, 8);
    count = needs_field(&e, 0, 48, 2, 60, 2);
    entsize = needs_field(&e, 0, 46, 2, 58, 2);
    sections = shoff && count;
    if (!sections) {
        phoff = needs_field(&e, 0, 28, 4, 32, 8);
        count = needs_field(&e, 0, 44, 2, 56, 2);
        entsize = needs_field(&e, 0, 42, 2, 54, 2);
        shoff = phoff;
    }
    if (count && (entsize < (sections ? (e.is64 ? sizeof(Elf64_Shdr) :
                                                  sizeof(Elf32_Shdr)) :
                                        (e.is64 ? sizeof(Elf64_Phdr) :
                                                  sizeof(Elf32_Phdr))) ||
                  !needs_in_file(&e, shoff, count * entsize))) {
        needs_fail(errp, "%s: the %s header table is outside the file or "
                   "its entries are too small", what,
                   sections ? "section" : "program");
        return false;
    }

    for (i = 0; i < count; i++) {
        guint64 h = shoff + i * entsize;
        guint64 off, size, align;
        g_autofree char *where = NULL;

        if (sections) {
            if (needs_ld(&e, h + 4, 4) != SHT_NOTE) {
                continue;
            }
            off = needs_field(&e, h, 16, 4, 24, 8);
            size = needs_field(&e, h, 20, 4, 32, 8);
            align = needs_field(&e, h, 32, 4, 48, 8);
            where = g_strdup_printf("note section %" G_GUINT64_FORMAT, i);
        } else {
            if (needs_ld(&e, h, 4) != PT_NOTE) {
                continue;
            }
            off = needs_field(&e, h, 4, 4, 8, 8);
            size = needs_field(&e, h, 16, 4, 32, 8);
            align = needs_field(&e, h, 28, 4, 48, 8);
            where = g_strdup_printf("note segment %" G_GUINT64_FORMAT, i);
        }
        if (!needs_walk(&e, off, size, align, where, n, &found, errp)) {
            return false;
        }
    }
    if (found == 0) {
        needs_fail(errp, "%s: no devvm needs note: not a devvm device image, "
                   "or its source lacks DEVVM_NEEDS() (libdevvm/needs.h)",
                   what);
        return false;
    }
    if (found > 1) {
        needs_fail(errp, "%s: %u devvm needs notes; a device image has one",
                   what, found);
        return false;
    }
    return true;
}

bool devvm_needs_read_file(const char *path, struct devvm_needs *n,
                           GError **errp)
{
    g_autoptr(GMappedFile) file = NULL;
    GError *err = NULL;

    file = g_mapped_file_new(path, false, &err);
    if (!file) {
        g_propagate_prefixed_error(errp, err, "device image: ");
        return false;
    }
    return devvm_needs_parse((const guint8 *)g_mapped_file_get_contents(file),
                             g_mapped_file_get_length(file), path, n, errp);
}

char *devvm_needs_cores_str(const struct devvm_needs *n)
{
    if (n->cores == DEVVM_NEEDS_CORE_EXCLUSIVE) {
        return g_strdup("an exclusive core");
    }
    return g_strdup_printf("%u%% of a shared core", n->percent);
}
