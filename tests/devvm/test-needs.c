/*
 * TAP test: the coordinator's reader of a device image's needs note
 * (libdevvm/needs.h, tools/devvm/coordinator/needs.c).
 *
 * The real images first: devvm-testdev's device VM image and its
 * process-mode binary carry the note DEVVM_NEEDS() put there.  Then
 * ELF files made here, each broken in one way, must be refused with a
 * message that says what is wrong.
 *
 *   test-needs --tap TESTDEV_VM_ELF TESTDEV_BINARY
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <elf.h>
#include <glib.h>
#include <stdbool.h>
#include <string.h>

#include "needs.h"

static const char *image_paths[2];

static void test_real_image(gconstpointer data)
{
    const char *path = data;
    struct devvm_needs n;
    g_autoptr(GError) err = NULL;

    g_assert_true(devvm_needs_read_file(path, &n, &err));
    g_assert_no_error(err);
    g_assert_cmpstr(n.name, ==, "testdev");
    g_assert_cmphex(n.vendor_id, ==, 0x1af4);
    g_assert_cmphex(n.device_id, ==, 0x10f1);
    g_assert_cmpuint(n.cores, ==, DEVVM_NEEDS_CORE_EXCLUSIVE);
    g_assert_cmpuint(n.percent, ==, 100);
    g_assert_cmpuint(n.memory_mib, ==, 64);
    g_assert_cmpuint(n.max_clients, ==, 4);
    g_assert_cmpuint(n.flags, ==, DEVVM_NEEDS_F_SHAREABLE);
}

/* ---- ELF files made here ------------------------------------------------ */

/* A 64-bit ELF with a section table: [0] null, [1] SHT_NOTE. */
typedef struct Elf64Image {
    Elf64_Ehdr eh;
    Elf64_Shdr sh[2];
    struct devvm_needs_note note[2];
} Elf64Image;

/* A 32-bit ELF with only a program header table: one PT_NOTE. */
typedef struct Elf32Image {
    Elf32_Ehdr eh;
    Elf32_Phdr ph;
    struct devvm_needs_note note;
} Elf32Image;

static void good_note(struct devvm_needs_note *note)
{
    memset(note, 0, sizeof(*note));
    note->namesz = sizeof(DEVVM_NOTE_OWNER);
    note->descsz = DEVVM_NEEDS_SIZE;
    note->type = DEVVM_NOTE_NEEDS;
    memcpy(note->owner, DEVVM_NOTE_OWNER, sizeof(DEVVM_NOTE_OWNER));
    note->needs.version = DEVVM_NEEDS_VERSION;
    note->needs.size = DEVVM_NEEDS_SIZE;
    strcpy(note->needs.name, "crypto");
    note->needs.vendor_id = 0x1af4;
    note->needs.device_id = 0x10f2;
    note->needs.cores = DEVVM_NEEDS_CORE_SHARED;
    note->needs.percent = 25;
    note->needs.memory_mib = 32;
    note->needs.max_clients = 1;
}

/* One note in the note section (two with @two). */
static void good_elf64(Elf64Image *img, bool two)
{
    memset(img, 0, sizeof(*img));
    memcpy(img->eh.e_ident, ELFMAG, SELFMAG);
    img->eh.e_ident[EI_CLASS] = ELFCLASS64;
    img->eh.e_ident[EI_DATA] = ELFDATA2LSB;
    img->eh.e_ident[EI_VERSION] = EV_CURRENT;
    img->eh.e_type = ET_EXEC;
    img->eh.e_machine = EM_X86_64;
    img->eh.e_ehsize = sizeof(Elf64_Ehdr);
    img->eh.e_shoff = offsetof(Elf64Image, sh);
    img->eh.e_shentsize = sizeof(Elf64_Shdr);
    img->eh.e_shnum = 2;
    img->sh[1].sh_type = SHT_NOTE;
    img->sh[1].sh_offset = offsetof(Elf64Image, note);
    img->sh[1].sh_size = sizeof(img->note[0]) * (two ? 2 : 1);
    img->sh[1].sh_addralign = 4;
    good_note(&img->note[0]);
    good_note(&img->note[1]);
}

static void good_elf32(Elf32Image *img)
{
    memset(img, 0, sizeof(*img));
    memcpy(img->eh.e_ident, ELFMAG, SELFMAG);
    img->eh.e_ident[EI_CLASS] = ELFCLASS32;
    img->eh.e_ident[EI_DATA] = ELFDATA2LSB;
    img->eh.e_ident[EI_VERSION] = EV_CURRENT;
    img->eh.e_type = ET_EXEC;
    img->eh.e_machine = EM_386;
    img->eh.e_phoff = offsetof(Elf32Image, ph);
    img->eh.e_phentsize = sizeof(Elf32_Phdr);
    img->eh.e_phnum = 1;
    img->ph.p_type = PT_NOTE;
    img->ph.p_offset = offsetof(Elf32Image, note);
    img->ph.p_filesz = sizeof(img->note);
    img->ph.p_align = 4;
    good_note(&img->note);
}

static void test_good_elf64(void)
{
    Elf64Image img;
    struct devvm_needs n;
    g_autoptr(GError) err = NULL;

    good_elf64(&img, false);
    g_assert_true(devvm_needs_parse((guint8 *)&img, sizeof(img), "good.elf",
                                    &n, &err));
    g_assert_cmpstr(n.name, ==, "crypto");
    g_assert_cmpuint(n.cores, ==, DEVVM_NEEDS_CORE_SHARED);
    g_assert_cmpuint(n.percent, ==, 25);
}

static void test_good_elf32_segments(void)
{
    Elf32Image img;
    struct devvm_needs n;
    g_autoptr(GError) err = NULL;

    good_elf32(&img);
    g_assert_true(devvm_needs_parse((guint8 *)&img, sizeof(img), "good32.elf",
                                    &n, &err));
    g_assert_cmpstr(n.name, ==, "crypto");
    g_assert_cmpuint(n.memory_mib, ==, 32);
}

/* One way to break an image, and what the error must say. */
typedef struct BadCase {
    const char *name;
    void (*breakit)(Elf64Image *img, gsize *len);
    const char *message;
} BadCase;

static void bad_magic(Elf64Image *img, gsize *len)
{
    img->eh.e_ident[1] = 'X';
}

static void bad_endian(Elf64Image *img, gsize *len)
{
    img->eh.e_ident[EI_DATA] = ELFDATA2MSB;
}

static void bad_class(Elf64Image *img, gsize *len)
{
    img->eh.e_ident[EI_CLASS] = 7;
}

static void truncated_header(Elf64Image *img, gsize *len)
{
    *len = 40;
}

static void table_outside(Elf64Image *img, gsize *len)
{
    img->eh.e_shoff = 0x7fffffff;
}

static void small_entries(Elf64Image *img, gsize *len)
{
    img->eh.e_shentsize = 8;
}

static void section_past_end(Elf64Image *img, gsize *len)
{
    img->sh[1].sh_size = 0x100000;
}

static void note_past_section(Elf64Image *img, gsize *len)
{
    img->note[0].descsz = 0xfffffff0;
}

static void no_note(Elf64Image *img, gsize *len)
{
    memcpy(img->note[0].owner, "GNU\0\0\0", 6);
    img->note[0].namesz = 4;
}

static void two_notes(Elf64Image *img, gsize *len)
{
    img->sh[1].sh_size = sizeof(img->note);
}

static void unknown_type(Elf64Image *img, gsize *len)
{
    img->note[0].type = 7;
}

static void bad_version(Elf64Image *img, gsize *len)
{
    img->note[0].needs.version = 2;
}

static void bad_size(Elf64Image *img, gsize *len)
{
    img->note[0].needs.size = 60;
}

static void short_desc(Elf64Image *img, gsize *len)
{
    img->note[0].descsz = 4;
}

static void empty_name(Elf64Image *img, gsize *len)
{
    memset(img->note[0].needs.name, 0, DEVVM_NEEDS_NAME_MAX);
}

static void long_name(Elf64Image *img, gsize *len)
{
    memset(img->note[0].needs.name, 'a', DEVVM_NEEDS_NAME_MAX);
}

static void bad_char(Elf64Image *img, gsize *len)
{
    img->note[0].needs.name[2] = '/';
}

static void bad_padding(Elf64Image *img, gsize *len)
{
    img->note[0].needs.name[20] = 'x';
}

static void bad_cores(Elf64Image *img, gsize *len)
{
    img->note[0].needs.cores = 3;
}

static void zero_percent(Elf64Image *img, gsize *len)
{
    img->note[0].needs.percent = 0;
}

static void big_percent(Elf64Image *img, gsize *len)
{
    img->note[0].needs.percent = 150;
}

static void exclusive_half(Elf64Image *img, gsize *len)
{
    img->note[0].needs.cores = DEVVM_NEEDS_CORE_EXCLUSIVE;
    img->note[0].needs.percent = 50;
}

static void small_memory(Elf64Image *img, gsize *len)
{
    img->note[0].needs.memory_mib = 8;
}

static void no_clients(Elf64Image *img, gsize *len)
{
    img->note[0].needs.max_clients = 0;
}

static void unshared_clients(Elf64Image *img, gsize *len)
{
    img->note[0].needs.max_clients = 2;
}

static void unknown_flags(Elf64Image *img, gsize *len)
{
    img->note[0].needs.flags = 0x10;
}

static void reserved_set(Elf64Image *img, gsize *len)
{
    img->note[0].needs.reserved1 = 1;
}

static const BadCase bad_cases[] = {
    { "not-elf", bad_magic, "bad.elf: not an ELF file" },
    { "big-endian", bad_endian, "bad.elf: not a little-endian ELF file" },
    { "class", bad_class, "bad.elf: unknown ELF class 7" },
    { "truncated-header", truncated_header,
      "bad.elf: the ELF header is truncated" },
    { "table-outside", table_outside,
      "bad.elf: the section header table is outside the file" },
    { "small-entries", small_entries, "its entries are too small" },
    { "section-past-end", section_past_end,
      "bad.elf: note section 1 (offset 0xc0, 1048576 bytes) runs past the "
      "end of the file" },
    { "note-past-section", note_past_section,
      "bad.elf: a note in note section 1 at offset 0 claims 6 + 4294967280 "
      "bytes, past the end of note section 1" },
    { "no-note", no_note, "bad.elf: no devvm needs note" },
    { "two-notes", two_notes, "bad.elf: 2 devvm needs notes" },
    { "unknown-type", unknown_type,
      "bad.elf: a devvm note of unknown type 0x7 in note section 1" },
    { "version", bad_version,
      "the devvm needs note has version 2; this coordinator reads "
      "version 1" },
    { "size", bad_size, "descriptor is 64 bytes and says 60" },
    { "short", short_desc, "the devvm needs note is 4 bytes long" },
    { "empty-name", empty_name, "name is empty; expected 1 to 31" },
    { "long-name", long_name, "name is not NUL-terminated" },
    { "name-char", bad_char, "name has the byte 0x2f" },
    { "name-padding", bad_padding, "bytes after its NUL" },
    { "cores", bad_cores,
      "device crypto: cores is 3; expected 1 (exclusive) or 2 (shared)" },
    { "percent-0", zero_percent, "percent is 0; expected 1 to 100" },
    { "percent-150", big_percent, "percent is 150; expected 1 to 100" },
    { "exclusive-50", exclusive_half,
      "an exclusive core with percent 50; expected 100" },
    { "memory", small_memory, "memory_mib is 8; expected 16 to 65536" },
    { "max-clients-0", no_clients, "max_clients is 0; expected 1 to 32" },
    { "not-shareable", unshared_clients,
      "not shareable but max_clients is 2" },
    { "flags", unknown_flags, "unknown flags 0x10" },
    { "reserved", reserved_set, "reserved fields are not 0" },
};

static void test_bad(gconstpointer data)
{
    const BadCase *c = data;
    Elf64Image img;
    gsize len = sizeof(img);
    struct devvm_needs n;
    g_autoptr(GError) err = NULL;

    good_elf64(&img, false);
    c->breakit(&img, &len);
    g_assert_false(devvm_needs_parse((guint8 *)&img, len, "bad.elf", &n,
                                     &err));
    g_assert_nonnull(err);
    g_test_message("%s", err->message);
    if (!strstr(err->message, c->message)) {
        g_test_message("expected a message with: %s", c->message);
        g_test_fail();
    }
}

static void test_missing_file(void)
{
    struct devvm_needs n;
    g_autoptr(GError) err = NULL;

    g_assert_false(devvm_needs_read_file("/nonexistent/dev.elf", &n, &err));
    g_assert_nonnull(strstr(err->message, "device image: "));
    g_assert_nonnull(strstr(err->message, "/nonexistent/dev.elf"));
}

int main(int argc, char **argv)
{
    size_t i;

    g_test_init(&argc, &argv, NULL);
    if (argc != 3) {
        g_printerr("usage: test-needs [--tap] TESTDEV_VM_ELF TESTDEV_BINARY\n");
        return 2;
    }
    image_paths[0] = argv[1];
    image_paths[1] = argv[2];
    g_test_add_data_func("/needs/image/device-vm", image_paths[0],
                         test_real_image);
    g_test_add_data_func("/needs/image/process", image_paths[1],
                         test_real_image);
    g_test_add_func("/needs/elf64-sections", test_good_elf64);
    g_test_add_func("/needs/elf32-segments", test_good_elf32_segments);
    g_test_add_func("/needs/missing-file", test_missing_file);
    for (i = 0; i < G_N_ELEMENTS(bad_cases); i++) {
        g_autofree char *path = g_strdup_printf("/needs/bad/%s",
                                                bad_cases[i].name);

        g_test_add_data_func(path, &bad_cases[i], test_bad);
    }
    return g_test_run();
}
