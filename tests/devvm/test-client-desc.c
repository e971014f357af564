/*
 * TAP test: the coordinator's client description parser
 * (tools/devvm/coordinator/client-desc.c): a complete description, the
 * defaults, and every error path with the message it must give (file,
 * line, group, key and what was expected).
 *
 *   test-client-desc --tap KERNEL
 *
 * KERNEL is any existing file.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <glib.h>
#include <string.h>

#include "client-desc.h"

static const char *kernel;

/* @text with @KERNEL@ replaced by the kernel's path */
static char *with_kernel(const char *text)
{
    g_auto(GStrv) parts = g_strsplit(text, "@KERNEL@", -1);

    return g_strjoinv(kernel, parts);
}

static void test_complete(void)
{
    g_autofree char *text = with_kernel(
        "# a client with two devices\n"
        "[client]\n"
        "name = demo-1\n"
        "memory = 1G\n"
        "vcpus = 2\n"
        "machine = q35\n"
        "hotplug-slots = 2\n"
        "accel = tcg\n"
        "kernel = @KERNEL@\n"
        "append = console=ttyS0 quiet\n"
        "extra-args = -device;isa-debug-exit,iobase=0xf4,iosize=0x04\n"
        "\n"
        "[device dev0]\n"
        "type = testdev\n"
        "options = bar2-size=64K;x=1\n"
        "reservation = exclusive\n"
        "\n"
        "[device dev1]\n"
        "type = testdev\n"
        "mode = process\n"
        "reservation = shared:25\n");
    g_autoptr(GError) err = NULL;
    g_autoptr(CoordClientDesc) d =
        coord_client_desc_parse(text, -1, "/etc/devvm/demo.ini", &err);
    CoordDeviceDesc *dev;

    g_assert_no_error(err);
    g_assert_cmpstr(d->name, ==, "demo-1");
    g_assert_cmpuint(d->memory_mib, ==, 1024);
    g_assert_cmpuint(d->vcpus, ==, 2);
    g_assert_cmpstr(d->machine, ==, "q35");
    g_assert_cmpuint(d->hotplug_slots, ==, 2);
    g_assert_cmpint(d->accel, ==, COORD_ACCEL_TCG);
    g_assert_cmpstr(d->kernel, ==, kernel);
    g_assert_null(d->initrd);
    g_assert_cmpstr(d->append, ==, "console=ttyS0 quiet");
    g_assert_cmpuint(g_strv_length(d->extra_args), ==, 2);
    g_assert_cmpstr(d->extra_args[1], ==, "isa-debug-exit,iobase=0xf4,"
                    "iosize=0x04");
    g_assert_cmpuint(d->devices->len, ==, 2);
    dev = d->devices->pdata[0];
    g_assert_cmpstr(dev->name, ==, "dev0");
    g_assert_cmpstr(dev->type, ==, "testdev");
    g_assert_cmpint(dev->policy, ==, COORD_POLICY_EXCLUSIVE);
    g_assert_cmpstr(dev->options[0], ==, "bar2-size=64K");
    g_assert_cmpint(dev->line, ==, 13);
    g_assert_cmpint(dev->mode, ==, COORD_MODE_AUTO);
    dev = d->devices->pdata[1];
    g_assert_cmpint(dev->mode, ==, COORD_MODE_PROCESS);
    g_assert_cmpint(dev->policy, ==, COORD_POLICY_SHARED);
    g_assert_cmpuint(dev->percent, ==, 25);
}

static void test_defaults(void)
{
    g_autofree char *text = with_kernel("[client]\nmemory = 128\n"
                                        "kernel = @KERNEL@\n"
                                        "[device d]\ntype = testdev\n");
    g_autoptr(GError) err = NULL;
    g_autoptr(CoordClientDesc) d =
        coord_client_desc_parse(text, -1, "/x/my-vm.conf", &err);
    CoordDeviceDesc *dev;

    g_assert_no_error(err);
    g_assert_cmpstr(d->name, ==, "my-vm");
    g_assert_cmpuint(d->memory_mib, ==, 128);
    g_assert_cmpuint(d->vcpus, ==, 1);
    g_assert_cmpstr(d->machine, ==, "pc");
    g_assert_cmpint(d->accel, ==, COORD_ACCEL_DEFAULT);
    dev = d->devices->pdata[0];
    g_assert_cmpint(dev->policy, ==, COORD_POLICY_AUTO);
    g_assert_null(dev->options);
}

static void test_relative_kernel(void)
{
    g_autofree char *dir = g_path_get_dirname(kernel);
    g_autofree char *base = g_path_get_basename(kernel);
    g_autofree char *desc_path = g_build_filename(dir, "c.ini", NULL);
    g_autofree char *text = g_strdup_printf("[client]\nmemory = 64M\n"
                                            "kernel = %s\n", base);
    g_autoptr(GError) err = NULL;
    g_autoptr(CoordClientDesc) d =
        coord_client_desc_parse(text, -1, desc_path, &err);

    g_assert_no_error(err);
    g_assert_cmpstr(d->kernel, ==, kernel);
}

typedef struct BadDesc {
    const char *name;
    const char *text;
    const char *message;        /* the whole message, @KERNEL@ replaced */
} BadDesc;

#define OK_CLIENT "[client]\nmemory = 128M\nkernel = @KERNEL@\n"

static const BadDesc bad_descs[] = {
    { "syntax", "[client]\nmemory 128M\n",
      "bad.ini:2: Key file contains line “memory 128M” which is not a "
      "key-value pair, group, or comment; expected [GROUP], KEY = VALUE, "
      "a comment (#) or a blank line" },
    { "no-client", "[device d]\ntype = testdev\n",
      "bad.ini: no [client] group; expected one, with at least memory and "
      "kernel" },
    { "unknown-group", OK_CLIENT "[devices d]\ntype = x\n",
      "bad.ini:4: [devices d]: unknown group; expected [client] or "
      "[device NAME]" },
    { "group-twice", OK_CLIENT "[device d]\ntype = a\n[device d]\n"
      "type = b\n",
      "bad.ini:6: [device d] is given twice (first on line 4); expected once" },
    { "key-twice", "[client]\nmemory = 1G\nmemory = 2G\n",
      "bad.ini:3: [client] memory is given twice (first on line 2); "
      "expected once" },
    { "unknown-key", OK_CLIENT "memroy = 1G\n",
      "bad.ini:4: [client] memroy: unknown key; expected one of name, "
      "memory, vcpus, machine, accel, kernel, initrd, append, extra-args, "
      "hotplug-slots" },
    { "bad-name", "[client]\nname = a b\n",
      "bad.ini:2: [client] name: 'a b'; expected 1 to 32 characters of "
      "A-Z, a-z, 0-9, '-' and '_'" },
    { "no-memory", "[client]\nkernel = @KERNEL@\n",
      "bad.ini:1: [client]: the key 'memory' is missing" },
    { "memory-unit", "[client]\nmemory = 12T\nkernel = @KERNEL@\n",
      "bad.ini:2: [client] memory: '12T'; expected a size from 16M to "
      "1024G, as 128M or 1G (a plain number is MiB)" },
    { "memory-small", "[client]\nmemory = 8M\nkernel = @KERNEL@\n",
      "bad.ini:2: [client] memory: '8M'; expected a size from 16M to "
      "1024G, as 128M or 1G (a plain number is MiB)" },
    { "vcpus", OK_CLIENT "vcpus = 0\n",
      "bad.ini:4: [client] vcpus: '0'; expected a number from 1 to 64" },
    { "machine", OK_CLIENT "machine = microvm\n",
      "bad.ini:4: [client] machine: 'microvm'; expected pc or q35" },
    { "accel", OK_CLIENT "accel = hvf\n",
      "bad.ini:4: [client] accel: 'hvf'; expected auto or kvm or tcg" },
    { "hotplug-slots", OK_CLIENT "machine = q35\nhotplug-slots = 17\n",
      "bad.ini:5: [client] hotplug-slots: '17'; expected a number from 0 "
      "to 16" },
    { "hotplug-slots-pc", OK_CLIENT "hotplug-slots = 2\n",
      "bad.ini:4: [client] hotplug-slots: 2 with machine pc; expected it "
      "only with machine = q35 (on pc, attach plugs devices into the root "
      "bus)" },
    { "no-kernel", "[client]\nmemory = 1G\n",
      "bad.ini:1: [client]: the key 'kernel' is missing" },
    { "kernel-missing", "[client]\nmemory = 1G\nkernel = /nonexistent/k\n",
      "bad.ini:3: [client] kernel: '/nonexistent/k' is not a file; "
      "expected an existing file (relative names are relative to the "
      "description's directory)" },
    { "initrd-missing", OK_CLIENT "initrd = /nonexistent/i\n",
      "bad.ini:4: [client] initrd: '/nonexistent/i' is not a file; "
      "expected an existing file (relative names are relative to the "
      "description's directory)" },
    { "bad-device-name", OK_CLIENT "[device a/b]\ntype = testdev\n",
      "bad.ini:4: [device a/b]: 'a/b' is not a device name; expected "
      "[device NAME] with 1 to 32 characters of A-Z, a-z, 0-9, '-' and "
      "'_'" },
    { "no-type", OK_CLIENT "[device d]\nreservation = auto\n",
      "bad.ini:4: [device d]: the key 'type' is missing" },
    { "device-key", OK_CLIENT "[device d]\ntype = t\nreserve = auto\n",
      "bad.ini:6: [device d] reserve: unknown key; expected one of type, "
      "options, reservation, mode" },
    { "mode", OK_CLIENT "[device d]\ntype = t\nmode = container\n",
      "bad.ini:6: [device d] mode: 'container'; expected vm (a device VM), "
      "process (a host process) or auto (a device VM when the catalog has "
      "one)" },
    { "reservation", OK_CLIENT "[device d]\ntype = t\n"
      "reservation = shared:0\n",
      "bad.ini:6: [device d] reservation: 'shared:0'; expected exclusive, "
      "shared:PERCENT (1 to 100: the share of one core) or auto (what the "
      "device image declares)" },
    { "reservation-word", OK_CLIENT "[device d]\ntype = t\n"
      "reservation = dedicated\n",
      "bad.ini:6: [device d] reservation: 'dedicated'; expected exclusive, "
      "shared:PERCENT (1 to 100: the share of one core) or auto (what the "
      "device image declares)" },
    { "options", OK_CLIENT "[device d]\ntype = t\noptions = a=1;b\n",
      "bad.ini:6: [device d] options: 'b'; expected KEY=VALUE items "
      "without blanks, separated by ';'" },
    { "options-blank", OK_CLIENT "[device d]\ntype = t\n"
      "options = a=1 2\n",
      "bad.ini:6: [device d] options: 'a=1 2'; expected KEY=VALUE items "
      "without blanks, separated by ';'" },
};

static void test_bad(gconstpointer data)
{
    const BadDesc *c = data;
    g_autofree char *text = with_kernel(c->text);
    g_autofree char *want = with_kernel(c->message);
    g_autoptr(GError) err = NULL;
    g_autoptr(CoordClientDesc) d =
        coord_client_desc_parse(text, -1, "bad.ini", &err);

    g_assert_null(d);
    g_assert_nonnull(err);
    g_assert_cmpstr(err->message, ==, want);
}

static void test_unreadable(void)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(CoordClientDesc) d =
        coord_client_desc_load("/nonexistent/c.ini", &err);

    g_assert_null(d);
    g_assert_nonnull(strstr(err->message, "/nonexistent/c.ini"));
}

int main(int argc, char **argv)
{
    size_t i;

    g_test_init(&argc, &argv, NULL);
    if (argc != 2) {
        g_printerr("usage: test-client-desc [--tap] KERNEL\n");
        return 2;
    }
    kernel = g_canonicalize_filename(argv[1], NULL);
    g_test_add_func("/client-desc/complete", test_complete);
    g_test_add_func("/client-desc/defaults", test_defaults);
    g_test_add_func("/client-desc/relative-kernel", test_relative_kernel);
    g_test_add_func("/client-desc/unreadable", test_unreadable);
    for (i = 0; i < G_N_ELEMENTS(bad_descs); i++) {
        g_autofree char *path = g_strdup_printf("/client-desc/bad/%s",
                                                bad_descs[i].name);

        g_test_add_data_func(path, &bad_descs[i], test_bad);
    }
    return g_test_run();
}
