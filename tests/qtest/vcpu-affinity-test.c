/*
 * QTest for the "vcpu-affinity" accel property
 *
 * Bad values must stop QEMU at startup with a clear message; good ones
 * must leave each vCPU thread with the host CPUs asked for, as the kernel
 * reports them in /proc/PID/task/TID/status.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include <sched.h>
#include "libqtest.h"

static long host_cpus(void)
{
    return sysconf(_SC_NPROCESSORS_CONF);
}

static void restrict_to_cpu0(gpointer data)
{
    cpu_set_t set;

    CPU_ZERO(&set);
    CPU_SET(0, &set);
    sched_setaffinity(0, sizeof(set), &set);
}

/*
 * Start QEMU with "-accel @accel,vcpu-affinity=@value" and expect it to
 * exit with an error that contains @want.
 */
static void check_rejected(const char *accel, const char *value,
                           const char *want, bool only_cpu0)
{
    g_autofree char *accel_arg =
        g_strdup_printf("%s,vcpu-affinity=%s", accel, value);
    const char *argv[] = {
        qtest_qemu_binary(NULL), "-M", "none", "-nodefaults",
        "-display", "none", "-accel", accel_arg, NULL
    };
    g_autofree char *out = NULL, *err = NULL;
    g_autoptr(GError) gerr = NULL;
    int status;

    g_assert_true(g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_DEFAULT,
                               only_cpu0 ? restrict_to_cpu0 : NULL, NULL,
                               &out, &err, &status, &gerr));
    g_test_message("vcpu-affinity=%s: %s", value, g_strstrip(err));
    g_assert_true(WIFEXITED(status));
    g_assert_cmpint(WEXITSTATUS(status), !=, 0);
    g_assert_nonnull(strstr(err, want));
}

static void test_rejects_bad_input(const void *data)
{
    const char *accel = data;
    g_autofree char *missing = g_strdup_printf("%ld", host_cpus());
    g_autofree char *missing_msg =
        g_strdup_printf("host CPU %ld does not exist", host_cpus());

    check_rejected(accel, "abc", "is not a CPU list", false);
    check_rejected(accel, "1-0", "is backwards", false);
    check_rejected(accel, "0x", "unexpected 'x'", false);
    check_rejected(accel, "0-", "bad range", false);
    check_rejected(accel, "0/", "empty CPU list", false);
    check_rejected(accel, "99999999999", "is not a CPU list", false);
    check_rejected(accel, missing, missing_msg, false);
    if (host_cpus() > 1) {
        check_rejected(accel, "1", "host CPU 1 is not one this process may "
                       "run on (allowed: 0)", true);
    }
}

/* The Cpus_allowed_list of the thread called @name in QEMU process @pid. */
static char *thread_cpus(pid_t pid, const char *name)
{
    g_autofree char *taskdir = g_strdup_printf("/proc/%d/task", pid);
    g_autoptr(GDir) dir = g_dir_open(taskdir, 0, NULL);
    const char *tid;

    g_assert_nonnull(dir);
    while ((tid = g_dir_read_name(dir))) {
        g_autofree char *path = g_strdup_printf("%s/%s/status", taskdir, tid);
        g_autofree char *status = NULL;
        g_auto(GStrv) lines = NULL;
        bool match = false;
        int i;

        if (!g_file_get_contents(path, &status, NULL, NULL)) {
            continue;
        }
        lines = g_strsplit(status, "\n", -1);
        for (i = 0; lines[i]; i++) {
            if (g_str_has_prefix(lines[i], "Name:")) {
                match = g_str_equal(g_strstrip(lines[i] + 5), name);
            } else if (match &&
                       g_str_has_prefix(lines[i], "Cpus_allowed_list:")) {
                return g_strdup(g_strstrip(lines[i] + 18));
            }
        }
    }
    return NULL;
}

typedef struct PinCase {
    const char *accel;
    const char *thread_suffix;
    const char *value;        /* command line form */
    const char *expect[3];    /* CPU list of vCPU 0, 1, 2 */
} PinCase;

static void test_pins(const void *data)
{
    const PinCase *c = data;
    QTestState *qts;
    int i;

    qts = qtest_initf("-M pc -nodefaults -smp 3 -name debug-threads=on "
                      "-accel %s,vcpu-affinity=%s", c->accel, c->value);
    for (i = 0; i < 3; i++) {
        g_autofree char *name = g_strdup_printf("CPU %d/%s", i,
                                                c->thread_suffix);
        g_autofree char *cpus = thread_cpus(qtest_pid(qts), name);

        g_test_message("%s: Cpus_allowed_list %s", name, cpus);
        g_assert_nonnull(cpus);
        g_assert_cmpstr(cpus, ==, c->expect[i]);
    }
    qtest_quit(qts);
}

static const PinCase pin_cases[] = {
    { "tcg", "TCG", "1", { "1", "1", "1" } },
    { "tcg", "TCG", "1/0", { "1", "0", "0" } },
    { "tcg", "TCG", "0-1/1/0", { "0-1", "1", "0" } },
    { "tcg", "TCG", "0,,1/1", { "0-1", "1", "1" } },
    { "kvm", "KVM", "1/0", { "1", "0", "0" } },
};

int main(int argc, char **argv)
{
    int i;

    g_test_init(&argc, &argv, NULL);

    if (qtest_has_accel("tcg")) {
        qtest_add_data_func("/vcpu-affinity/tcg/rejects-bad-input", "tcg",
                            test_rejects_bad_input);
    }
    if (qtest_has_accel("kvm")) {
        qtest_add_data_func("/vcpu-affinity/kvm/rejects-bad-input", "kvm",
                            test_rejects_bad_input);
    }
    for (i = 0; i < ARRAY_SIZE(pin_cases); i++) {
        const PinCase *c = &pin_cases[i];
        g_autofree char *path = NULL;

        if (host_cpus() < 2 || !qtest_has_machine("pc") ||
            !qtest_has_accel(c->accel)) {
            continue;
        }
        path = g_strdup_printf("/vcpu-affinity/%s/pins/%d", c->accel, i);
        qtest_add_data_func(path, c, test_pins);
    }
    return g_test_run();
}
