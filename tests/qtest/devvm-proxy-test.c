/*
 * QTest for devvm-proxy
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "libqtest.h"
#include "qapi/error.h"
#include "qobject/qdict.h"
#include "qobject/qjson.h"

static void test_registered(void)
{
    g_assert_true(qtest_has_device("devvm-proxy"));
}

/* device_add @args and expect an error whose text contains @want. */
static void check_device_add_error(QTestState *qts, const char *args,
                                   const char *want)
{
    QDict *resp, *err;
    const char *desc;

    resp = qtest_qmp(qts, "{'execute': 'device_add', 'arguments': %p}",
                     qobject_from_json(args, &error_abort));
    g_assert_nonnull(resp);
    err = qdict_get_qdict(resp, "error");
    g_assert_nonnull(err);
    desc = qdict_get_str(err, "desc");
    g_test_message("device_add %s: %s", args, desc);
    g_assert_nonnull(strstr(desc, want));
    qobject_unref(resp);
}

static void test_realize_errors(void)
{
    QTestState *qts = qtest_init("-M pc -nodefaults");

    check_device_add_error(qts, "{'driver': 'devvm-proxy', 'id': 'p0'}",
                           "'socket' property is required");
    check_device_add_error(qts, "{'driver': 'devvm-proxy', 'id': 'p1', "
                           "'socket': '/nonexistent/devvm.sock'}",
                           "/nonexistent/devvm.sock");
    /* A failed realize leaves nothing behind: the id can be used again. */
    check_device_add_error(qts, "{'driver': 'devvm-proxy', 'id': 'p0'}",
                           "'socket' property is required");
    qtest_quit(qts);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);

    qtest_add_func("/devvm-proxy/registered", test_registered);
    if (qtest_has_machine("pc")) {
        qtest_add_func("/devvm-proxy/realize-errors", test_realize_errors);
    }
    return g_test_run();
}
