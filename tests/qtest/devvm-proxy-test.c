/*
 * QTest for devvm-proxy
 *
 * The device under test is served by devvm-testdev (contrib/devvm/testdev,
 * docs/devvm/testdev.rst), a helper process started on a fresh socket for
 * every case; meson passes its path in QTEST_DEVVM_TESTDEV.  Most cases
 * run twice: with BAR accesses on the devvm ring transport (ring=on) and
 * on the vfio-user socket (ring=off).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include <poll.h>
#include <sys/wait.h>
#ifdef CONFIG_LINUX
#include <sys/prctl.h>
#endif
#include "libqtest.h"
#include "libqos/pci.h"
#include "libqos/pci-pc.h"
#include "qemu/units.h"
#include "qapi/error.h"
#include "qobject/qdict.h"
#include "qobject/qjson.h"
#include "qobject/qlist.h"
#include "hw/pci/pci_regs.h"
#include "contrib/devvm/testdev/testdev.h"

/* where the device sits on the root bus of -M pc */
#define DEV_SLOT            4
#define DEV_DEVFN           QPCI_DEVFN(DEV_SLOT, 0)

/* guest RAM used by the cases */
#define RAM_MB              256
#define DMA_SRC_ADDR        0x100000
#define DMA_DST_ADDR        0x200000
#define DMA_DST2_ADDR       0x300000
#define MSI_ADDR            0x400000    /* MSI / MSI-X messages land here */

/* where BAR2 goes when placed by hand: above 4 GiB */
#define BAR2_ADDR           0x100000000ull
#define ROM_ADDR            0xe0100000u

#define WAIT_MS             5000        /* bound on any wait for an effect */

/* PIIX3 (00:01.0) PIRQ route control registers; see pc_pci_slot_get_pirq */
#define PIIX3_DEVFN         QPCI_DEVFN(1, 0)
#define PIIX_PIRQCA         0x60
#define DEV_PIRQ            ((0 + DEV_SLOT - 1) & 3)
#define DEV_ISA_IRQ         11

/* ---- devvm-testdev, the helper process ----------------------------------- */

/*
 * The device: devvm-testdev as a process, or (vm) a device VM running
 * devvm-testdev-vm.elf behind devvm-gateway, whose pid and stdout are
 * then pid and out.
 */
typedef struct TestDev {
    bool vm;
    char *dir;
    char *sock;
    char *gwdir;                /* vm: the gateway's directory */
    GPid pid;                   /* 0 while not running */
    int out;                    /* its stdout, -1 while not running */
    GPid vm_pid;                /* vm: the device VM's QEMU */
    bool abrt_handler;
} TestDev;

static const char *testdev_binary(void)
{
    return g_getenv("QTEST_DEVVM_TESTDEV");
}

/* Abort handler: do not leave the process or its socket behind. */
static void testdev_abrt(void *opaque)
{
    TestDev *td = opaque;

    if (td->vm_pid) {
        kill(td->vm_pid, SIGKILL);
        waitpid(td->vm_pid, NULL, 0);
        td->vm_pid = 0;
    }
    if (td->pid) {
        kill(td->pid, SIGKILL);
        waitpid(td->pid, NULL, 0);
        td->pid = 0;
    }
    if (td->sock) {
        unlink(td->sock);
    }
    if (td->gwdir) {
        g_autofree char *ivs = g_build_filename(td->gwdir, "ivshmem.sock",
                                                NULL);
        g_autofree char *log = g_build_filename(td->dir, "vm.log", NULL);

        unlink(ivs);
        unlink(log);
        rmdir(td->gwdir);
    }
    if (td->dir) {
        rmdir(td->dir);
    }
}

static void testdev_init(TestDev *td, bool vm)
{
    GError *err = NULL;

    memset(td, 0, sizeof(*td));
    td->out = -1;
    td->vm = vm;
    td->dir = g_dir_make_tmp("devvm-proxy-test-XXXXXX", &err);
    g_assert_no_error(err);
    if (vm) {
        td->gwdir = g_build_filename(td->dir, "gw", NULL);
        td->sock = g_build_filename(td->gwdir, "device.sock", NULL);
    } else {
        td->sock = g_build_filename(td->dir, "testdev.sock", NULL);
    }
    qtest_add_abrt_handler(testdev_abrt, td);
    td->abrt_handler = true;
}

/* In the child: do not outlive a test killed without its abort handler. */
static void testdev_child_setup(gpointer opaque)
{
#ifdef CONFIG_LINUX
    prctl(PR_SET_PDEATHSIG, SIGKILL);
#endif
}

/* The device in a device VM: devvm-gateway and a stock QEMU. */

static const char *gateway_binary(void)
{
    return g_getenv("QTEST_DEVVM_GATEWAY");
}

static const char *testdev_vm_image(void)
{
    return g_getenv("QTEST_DEVVM_TESTDEV_VM");
}

/*
 * The device VM's QEMU: QTEST_DEVVM_VM_QEMU, else the QEMU under test.
 * (A sanitizer build of the client has no firmware to boot a device VM
 * with; make check-qemu-asan points this at the regular build.)
 */
static const char *device_vm_qemu(void)
{
    return g_getenv("QTEST_DEVVM_VM_QEMU") ?: g_getenv("QTEST_QEMU_BINARY");
}

/* Spawn @cmd (a shell-style line) with stdout on a pipe (NULL: none). */
static GPid spawn(const char *cmd, int *out)
{
    g_auto(GStrv) argv = NULL;
    GError *err = NULL;
    GPid pid;

    g_assert_true(g_shell_parse_argv(cmd, NULL, &argv, &err));
    g_assert_no_error(err);
    g_spawn_async_with_pipes(NULL, argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD |
                             (out ? 0 : G_SPAWN_STDOUT_TO_DEV_NULL),
                             testdev_child_setup, NULL, &pid, NULL, out,
                             NULL, &err);
    g_assert_no_error(err);
    return pid;
}

/* Read from @fd until a line equal to @line came, within WAIT_MS * 6. */
static void wait_line(int fd, const char *line)
{
    g_autofree char *want = g_strdup_printf("%s\n", line);
    char buf[512];
    size_t len = 0;
    gint64 deadline = g_get_monotonic_time() + 6 * WAIT_MS * 1000;

    buf[0] = 0;
    while (!strstr(buf, want)) {
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        int timeout = (deadline - g_get_monotonic_time()) / 1000;
        ssize_t n;

        g_assert_cmpint(timeout, >, 0);
        g_assert_cmpint(poll(&pfd, 1, timeout), ==, 1);
        n = read(fd, buf + len, sizeof(buf) - 1 - len);
        g_assert_cmpint(n, >, 0);
        len += n;
        buf[len] = 0;
        g_assert_cmpint(len, <, sizeof(buf) - 1);
    }
}

/* The gateway, on td->dir/gw; td->sock is its client socket. */
static void gateway_start(TestDev *td, const char *args)
{
    g_autofree char *cmd = g_strdup_printf("%s --dir %s --channels 8 %s",
                                           gateway_binary(), td->gwdir,
                                           args ?: "");
    g_autofree char *ivs = g_build_filename(td->gwdir, "ivshmem.sock", NULL);
    gint64 deadline = g_get_monotonic_time() + WAIT_MS * 1000;

    g_assert_cmpint(td->pid, ==, 0);
    unlink(ivs);        /* left by a gateway that was killed */
    td->pid = spawn(cmd, &td->out);
    while (!g_file_test(ivs, G_FILE_TEST_EXISTS)) {
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_usleep(10 * 1000);
    }
}

/*
 * A device VM with devvm-testdev for the gateway, its DMA through the
 * window (docs/devvm/dma-window.rst); with @wait_ready, wait for the
 * gateway's "ready" line (its first device VM only).
 */
static void device_vm_start(TestDev *td, const char *append, bool wait_ready)
{
    g_autofree char *cmd = g_strdup_printf(
        "%s -M pc -nodefaults -display none -no-reboot -accel tcg -cpu max "
        "-m 64M -chardev socket,path=%s/ivshmem.sock,id=ivs "
        "-device ivshmem-doorbell,chardev=ivs,vectors=8 "
        "-chardev socket,path=%s/dma.sock,id=dmaw "
        "-device devvm-dma-window,chardev=dmaw "
        "-device isa-debug-exit,iobase=0xf4,iosize=0x04 "
        "-chardev file,path=%s/vm.log,id=s0,append=on -serial chardev:s0 "
        "-kernel %s%s%s%s",
        device_vm_qemu(), td->gwdir, td->gwdir, td->dir, testdev_vm_image(),
        append ? " -append '" : "", append ?: "", append ? "'" : "");

    g_assert_cmpint(td->vm_pid, ==, 0);
    td->vm_pid = spawn(cmd, NULL);
    if (wait_ready) {
        g_autofree char *line = g_strdup_printf("ready %s", td->sock);

        wait_line(td->out, line);
    }
}

/* Kill the device VM with @sig and reap it. */
static void device_vm_kill(TestDev *td, int sig)
{
    g_assert_cmpint(td->vm_pid, !=, 0);
    kill(td->vm_pid, sig);
    g_assert_cmpint(waitpid(td->vm_pid, NULL, 0), ==, td->vm_pid);
    td->vm_pid = 0;
}

/*
 * Start devvm-testdev on td->sock with @args and wait for "ready"; for a
 * device VM, @args go to the gateway.
 */
static void testdev_start(TestDev *td, const char *args)
{
    g_autofree char *cmd = g_strdup_printf("%s --socket %s %s",
                                           testdev_binary(), td->sock,
                                           args ?: "");
    g_auto(GStrv) argv = NULL;
    GError *err = NULL;
    char buf[64];
    size_t len = 0;
    gint64 deadline = g_get_monotonic_time() + WAIT_MS * 1000;

    if (td->vm) {
        gateway_start(td, args);
        device_vm_start(td, NULL, true);
        return;
    }
    g_assert_cmpint(td->pid, ==, 0);
    g_assert_true(g_shell_parse_argv(cmd, NULL, &argv, &err));
    g_assert_no_error(err);
    g_spawn_async_with_pipes(NULL, argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD,
                             testdev_child_setup, NULL, &td->pid, NULL,
                             &td->out, NULL, &err);
    g_assert_no_error(err);

    /* it prints "ready" once it listens */
    while (!memchr(buf, '\n', len)) {
        struct pollfd pfd = { .fd = td->out, .events = POLLIN };
        int timeout = (deadline - g_get_monotonic_time()) / 1000;
        ssize_t n;

        g_assert_cmpint(timeout, >, 0);
        g_assert_cmpint(poll(&pfd, 1, timeout), ==, 1);
        n = read(td->out, buf + len, sizeof(buf) - 1 - len);
        g_assert_cmpint(n, >, 0);
        len += n;
        g_assert_cmpint(len, <, sizeof(buf) - 1);
    }
    buf[len] = 0;
    g_assert_cmpstr(buf, ==, "ready\n");
}

static void testdev_reaped(TestDev *td)
{
    td->pid = 0;
    if (td->out >= 0) {
        close(td->out);
        td->out = -1;
    }
}

/* Wait at most @ms for the process to end; returns its wait status. */
static int testdev_wait(TestDev *td, int ms)
{
    gint64 deadline = g_get_monotonic_time() + ms * 1000;
    int status;
    pid_t ret;

    g_assert_cmpint(td->pid, !=, 0);
    while ((ret = waitpid(td->pid, &status, WNOHANG)) == 0) {
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_usleep(10 * 1000);
    }
    g_assert_cmpint(ret, ==, td->pid);
    testdev_reaped(td);
    return status;
}

static void testdev_signal(TestDev *td, int sig)
{
    int status;

    g_assert_cmpint(td->pid, !=, 0);
    g_assert_cmpint(kill(td->pid, sig), ==, 0);
    status = testdev_wait(td, WAIT_MS);
    if (sig == SIGTERM) {
        /* it exits normally on SIGTERM */
        g_assert_true(WIFEXITED(status));
    } else {
        g_assert_true(WIFSIGNALED(status));
        g_assert_cmpint(WTERMSIG(status), ==, sig);
    }
}

static void testdev_cleanup(TestDev *td)
{
    if (td->vm_pid) {
        device_vm_kill(td, SIGTERM);
    }
    if (td->pid) {
        testdev_signal(td, SIGTERM);
    }
    unlink(td->sock);
    if (td->vm) {
        g_autofree char *log = g_build_filename(td->dir, "vm.log", NULL);

        unlink(log);
        g_assert_cmpint(rmdir(td->gwdir), ==, 0);
        g_free(td->gwdir);
    }
    g_assert_cmpint(rmdir(td->dir), ==, 0);
    if (td->abrt_handler) {
        qtest_remove_abrt_handler(td);
    }
    g_free(td->sock);
    g_free(td->dir);
    memset(td, 0, sizeof(*td));
}

/* ---- QMP helpers --------------------------------------------------------- */

/* query-devvm-proxy's list. */
static QList *query_proxies(QTestState *qts)
{
    QDict *resp = qtest_qmp(qts, "{'execute': 'query-devvm-proxy'}");
    QList *list;

    g_assert(qdict_haskey(resp, "return"));
    list = qdict_get_qlist(resp, "return");
    qobject_ref(list);
    qobject_unref(resp);
    return list;
}

/* The only devvm-proxy's entry of query-devvm-proxy. */
static QDict *query_proxy(QTestState *qts)
{
    QList *list = query_proxies(qts);
    QDict *info;

    g_assert_cmpint(qlist_size(list), ==, 1);
    info = qobject_to(QDict, qlist_peek(list));
    qobject_ref(info);
    qobject_unref(list);
    return info;
}

static bool proxy_state_is(QTestState *qts, const char *state)
{
    QDict *info = query_proxy(qts);
    bool ret = !strcmp(qdict_get_str(info, "state"), state);

    qobject_unref(info);
    return ret;
}

/* Wait at most @ms for the proxy to reach @state; returns its info. */
static QDict *wait_proxy_state(QTestState *qts, const char *state, int ms)
{
    gint64 deadline = g_get_monotonic_time() + ms * 1000;

    for (;;) {
        QDict *info = query_proxy(qts);

        if (!strcmp(qdict_get_str(info, "state"), state)) {
            return info;
        }
        if (g_get_monotonic_time() > deadline) {
            g_test_message("proxy state %s, reason %s, waiting for %s",
                           qdict_get_str(info, "state"),
                           qdict_get_try_str(info, "reason") ?: "-", state);
            g_assert_not_reached();
        }
        qobject_unref(info);
        g_usleep(20 * 1000);
    }
}

/*
 * Wait (bounded) for a DEVVM_PROXY_STATE_CHANGED event with @state;
 * other events are dropped.  Returns the event's data.
 */
static QDict *wait_proxy_event(QTestState *qts, const char *state)
{
    gint64 deadline = g_get_monotonic_time() + WAIT_MS * 1000;

    for (;;) {
        QDict *ev, *data;

        while ((ev = qtest_qmp_event_ref(qts, "DEVVM_PROXY_STATE_CHANGED"))) {
            data = qdict_get_qdict(ev, "data");
            if (!strcmp(qdict_get_str(data, "state"), state)) {
                qobject_ref(data);
                qobject_unref(ev);
                return data;
            }
            qobject_unref(ev);
        }
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_usleep(20 * 1000);
        /* any command gets the events sent meanwhile into the queue */
        qobject_unref(qtest_qmp(qts, "{'execute': 'query-status'}"));
    }
}

/*
 * The proxy takes the device's events on the ring when the device is a
 * device VM whose gateway lets it (process-mode devices signal eventfds).
 */
static bool proxy_events(QTestState *qts)
{
    QDict *info = query_proxy(qts);
    bool v = qdict_get_bool(info, "events");

    qobject_unref(info);
    return v;
}

static uint64_t proxy_counter(QTestState *qts, const char *name)
{
    QDict *info = query_proxy(qts);
    uint64_t v = qdict_get_int(info, name);

    qobject_unref(info);
    return v;
}

/* Wait at most WAIT_MS for counter @name to pass @val. */
static void wait_counter_above(QTestState *qts, const char *name,
                               uint64_t val)
{
    gint64 deadline = g_get_monotonic_time() + WAIT_MS * 1000;

    while (proxy_counter(qts, name) <= val) {
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_usleep(1000);
    }
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

/* ---- a machine with the device ------------------------------------------- */

typedef struct TestParams {
    bool vm;                    /* the device in a device VM */
    bool ring;                  /* ring=on */
    bool memfd;                 /* guest RAM shared with the device */
    bool gw_events;             /* vm: the gateway keeps the device's events */
    bool kvm;                   /* KVM, and a firmware that only waits */
    bool no_irqfd;              /* kvm: kvm-irqfd=off */
    bool bql;                   /* a 2-vCPU guest that reads BAR0 (-S) */
    bool tcg;                   /* bql: under TCG, not KVM */
    int fault;                  /* for the fault cases */
    /* chardev= instead of socket=: the socket chardev's other options */
    const char *chardev;
} TestParams;

typedef struct Fixture {
    const TestParams *p;
    TestDev td;
    QTestState *qts;
    QPCIBus *bus;
    QPCIDevice *dev;
    QPCIBar bar0, bar1;
    char *bios;                 /* kvm, bql: the firmware image */
} Fixture;

static char *kvm_bios_create(void);
static char *bql_bios_create(void);

/*
 * Start devvm-testdev with @td_args and a pc machine with the proxy at
 * 00:04.0 (extra device properties @props), on the socket or through the
 * chardev dev0c, enable the function and map BAR0 and BAR1.
 */
static void fixture_start(Fixture *f, const TestParams *p,
                          const char *td_args, const char *props)
{
    g_autofree char *ram = NULL;
    g_autofree char *dev = NULL;

    memset(f, 0, sizeof(*f));
    f->p = p;
    testdev_init(&f->td, p->vm);
    if (p->gw_events) {
        g_assert_null(td_args);
        td_args = "--no-client-events";
    }
    testdev_start(&f->td, td_args);
    if (p->memfd) {
        ram = g_strdup_printf("-object memory-backend-memfd,id=m,"
                              "size=%dM,share=on -machine memory-backend=m",
                              RAM_MB);
    }
    if (p->chardev) {
        dev = g_strdup_printf("-chardev socket,id=dev0c,path=%s%s "
                              "-device devvm-proxy,id=dev0,addr=%02x.0,"
                              "chardev=dev0c", f->td.sock, p->chardev,
                              DEV_SLOT);
    } else {
        dev = g_strdup_printf("-device devvm-proxy,id=dev0,addr=%02x.0,"
                              "socket=%s", DEV_SLOT, f->td.sock);
    }
    if (p->bql) {
        f->bios = bql_bios_create();
    } else if (p->kvm) {
        f->bios = kvm_bios_create();
    }
    f->qts = qtest_initf("%s%s%s%s%s -M pc -nodefaults -m %dM %s "
                         "%s,ring=%s%s%s",
                         p->kvm ? "-accel kvm -cpu host " : "",
                         p->tcg ? "-accel tcg -cpu max " : "",
                         p->bql ? "-smp 2 -S " : "",
                         f->bios ? "-bios " : "", f->bios ?: "",
                         RAM_MB, ram ?: "", dev, p->ring ? "on" : "off",
                         props ? "," : "", props ?: "");
    f->bus = qpci_new_pc(f->qts, NULL);
    f->dev = qpci_device_find(f->bus, DEV_DEVFN);
    g_assert_nonnull(f->dev);
    qpci_device_enable(f->dev);
    f->bar0 = qpci_iomap(f->dev, 0, NULL);
    f->bar1 = qpci_iomap(f->dev, 1, NULL);
}

static void fixture_stop(Fixture *f)
{
    g_free(f->dev);
    qpci_free_pc(f->bus);
    qtest_quit(f->qts);
    testdev_cleanup(&f->td);
    if (f->bios) {
        unlink(f->bios);
        g_free(f->bios);
    }
}

static uint32_t bar0_readl(Fixture *f, uint64_t off)
{
    return qpci_io_readl(f->dev, f->bar0, off);
}

static void bar0_writel(Fixture *f, uint64_t off, uint32_t val)
{
    qpci_io_writel(f->dev, f->bar0, off, val);
}

/* Wait at most WAIT_MS for guest memory at @addr to read @val. */
static void wait_mem_readl(QTestState *qts, uint64_t addr, uint32_t val)
{
    gint64 deadline = g_get_monotonic_time() + WAIT_MS * 1000;

    while (qtest_readl(qts, addr) != val) {
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_usleep(1000);
    }
}

/*
 * Guest memory at @addr stays @val for a while (an interrupt that must
 * not be delivered has had its chance).
 */
static void check_mem_stays(QTestState *qts, uint64_t addr, uint32_t val)
{
    int i;

    for (i = 0; i < 20; i++) {
        g_assert_cmphex(qtest_readl(qts, addr), ==, val);
        g_usleep(5 * 1000);
    }
}

/* ---- 1. config space ----------------------------------------------------- */

/* Size a 32-bit BAR register: write all-ones, read, restore. */
static uint32_t size_bar(QPCIDevice *dev, uint8_t reg)
{
    uint32_t old = qpci_config_readl(dev, reg), val;

    qpci_config_writel(dev, reg, 0xffffffff);
    val = qpci_config_readl(dev, reg);
    qpci_config_writel(dev, reg, old);
    return val;
}

static void test_config(const void *data)
{
    Fixture f;
    QPCIDevice *dev;
    QDict *info;
    uint8_t pos;

    fixture_start(&f, data, NULL, NULL);
    dev = f.dev;

    g_assert_cmphex(qpci_config_readw(dev, PCI_VENDOR_ID), ==,
                    TESTDEV_VENDOR_ID);
    g_assert_cmphex(qpci_config_readw(dev, PCI_DEVICE_ID), ==,
                    TESTDEV_DEVICE_ID);
    g_assert_cmphex(qpci_config_readb(dev, PCI_REVISION_ID), ==,
                    TESTDEV_REVISION);
    g_assert_cmphex(qpci_config_readl(dev, PCI_CLASS_REVISION) >> 8, ==,
                    TESTDEV_CLASS_CODE);
    g_assert_cmphex(qpci_config_readw(dev, PCI_SUBSYSTEM_VENDOR_ID), ==,
                    TESTDEV_SUBSYS_VENDOR_ID);
    g_assert_cmphex(qpci_config_readw(dev, PCI_SUBSYSTEM_ID), ==,
                    TESTDEV_SUBSYS_ID);
    g_assert_cmphex(qpci_config_readb(dev, PCI_INTERRUPT_PIN), ==,
                    TESTDEV_INTERRUPT_PIN);
    g_assert_cmphex(qpci_config_readb(dev, PCI_HEADER_TYPE) & 0x7f, ==,
                    PCI_HEADER_TYPE_NORMAL);

    /* BAR sizing, every kind */
    qpci_config_writew(dev, PCI_COMMAND, 0);
    g_assert_cmphex(size_bar(dev, PCI_BASE_ADDRESS_0), ==,
                    (uint32_t)~(TESTDEV_BAR0_SIZE - 1) | TESTDEV_BAR0_TYPE);
    g_assert_cmphex(size_bar(dev, PCI_BASE_ADDRESS_1), ==,
                    (uint32_t)~(TESTDEV_BAR1_SIZE - 1) | TESTDEV_BAR1_TYPE);
    g_assert_cmphex(size_bar(dev, PCI_BASE_ADDRESS_2), ==,
                    (uint32_t)~(TESTDEV_BAR2_DEFAULT_SIZE - 1) |
                    TESTDEV_BAR2_TYPE);
    g_assert_cmphex(size_bar(dev, PCI_BASE_ADDRESS_3), ==, 0xffffffff);
    g_assert_cmphex(size_bar(dev, PCI_BASE_ADDRESS_4), ==,
                    (uint32_t)~(TESTDEV_BAR4_SIZE - 1) | TESTDEV_BAR4_TYPE);
    g_assert_cmphex(size_bar(dev, PCI_BASE_ADDRESS_5), ==, 0xffffffff);
    g_assert_cmphex(size_bar(dev, PCI_ROM_ADDRESS) & PCI_ROM_ADDRESS_MASK,
                    ==, (uint32_t)~(TESTDEV_ROM_SIZE - 1));
    /* the upper half of a 64-bit BAR takes an address */
    qpci_config_writel(dev, PCI_BASE_ADDRESS_3, 0x12);
    g_assert_cmphex(qpci_config_readl(dev, PCI_BASE_ADDRESS_3), ==, 0x12);
    qpci_config_writel(dev, PCI_BASE_ADDRESS_3, 0);
    qpci_device_enable(dev);

    /* capability list: MSI -> MSI-X -> vendor */
    g_assert_true(qpci_config_readw(dev, PCI_STATUS) & PCI_STATUS_CAP_LIST);
    pos = qpci_config_readb(dev, PCI_CAPABILITY_LIST);
    g_assert_cmphex(pos, ==, TESTDEV_CAP_MSI);
    g_assert_cmphex(qpci_config_readb(dev, pos), ==, PCI_CAP_ID_MSI);
    g_assert_true(qpci_config_readw(dev, pos + PCI_MSI_FLAGS) &
                  PCI_MSI_FLAGS_64BIT);
    pos = qpci_config_readb(dev, pos + PCI_CAP_LIST_NEXT);
    g_assert_cmphex(pos, ==, TESTDEV_CAP_MSIX);
    g_assert_cmphex(qpci_config_readb(dev, pos), ==, PCI_CAP_ID_MSIX);
    g_assert_cmpint((qpci_config_readw(dev, pos + PCI_MSIX_FLAGS) &
                     PCI_MSIX_FLAGS_QSIZE) + 1, ==, TESTDEV_MSIX_VECTORS);
    g_assert_cmphex(qpci_config_readl(dev, pos + PCI_MSIX_TABLE), ==,
                    TESTDEV_MSIX_TABLE_OFFSET | TESTDEV_MSIX_BAR);
    g_assert_cmphex(qpci_config_readl(dev, pos + PCI_MSIX_PBA), ==,
                    TESTDEV_MSIX_PBA_OFFSET | TESTDEV_MSIX_BAR);
    pos = qpci_config_readb(dev, pos + PCI_CAP_LIST_NEXT);
    g_assert_cmphex(pos, ==, TESTDEV_CAP_VENDOR);
    g_assert_cmphex(qpci_config_readb(dev, pos), ==, PCI_CAP_ID_VNDR);
    g_assert_cmphex(qpci_config_readb(dev, pos + PCI_CAP_LIST_NEXT), ==, 0);
    g_assert_cmphex(qpci_config_readb(dev, pos + PCI_CAP_FLAGS), ==,
                    TESTDEV_CAP_VENDOR_LEN);

    /* the vendor capability's body is the device's */
    g_assert_cmphex(qpci_config_readl(dev, TESTDEV_CFG_VENDOR_MAGIC), ==,
                    TESTDEV_VENDOR_MAGIC);
    qpci_config_writel(dev, TESTDEV_CFG_VENDOR_SCRATCH, 0x12345678);
    g_assert_cmphex(qpci_config_readl(dev, TESTDEV_CFG_VENDOR_SCRATCH), ==,
                    0x12345678);
    qpci_config_writeb(dev, TESTDEV_CFG_VENDOR_SCRATCH + 1, 0xab);
    g_assert_cmphex(qpci_config_readw(dev, TESTDEV_CFG_VENDOR_SCRATCH), ==,
                    0xab78);
    g_assert_cmphex(qpci_config_readl(dev, TESTDEV_CFG_VENDOR_SCRATCH), ==,
                    0x1234ab78);
    qpci_config_writel(dev, TESTDEV_CFG_VENDOR_MAGIC, 0);
    g_assert_cmphex(qpci_config_readl(dev, TESTDEV_CFG_VENDOR_MAGIC), ==,
                    TESTDEV_VENDOR_MAGIC);

    /* the transport is what was asked for */
    info = query_proxy(f.qts);
    g_assert_cmpint(qdict_get_bool(info, "ring"), ==, f.p->ring);
    g_assert_cmpstr(qdict_get_str(info, "socket"), ==, f.td.sock);
    g_assert_cmpstr(qdict_get_str(info, "qom-path"), ==,
                    "/machine/peripheral/dev0");
    qobject_unref(info);
    fixture_stop(&f);
}

/* ---- 2. BAR accesses ----------------------------------------------------- */

/*
 * A 1- or 2-byte write changes its own bytes and no others: fill the 8
 * bytes at @off with a pattern, make the @size-byte write at @off + @at
 * last, then read back every byte (and both halves).  Bytes whose bit is
 * set in @zero_mask read as 0 whatever is written.
 */
static void check_narrow_write(QPCIDevice *dev, QPCIBar bar, uint64_t off,
                               unsigned at, unsigned size, uint8_t zero_mask)
{
    uint8_t want[8];
    uint32_t lo = 0, hi = 0;
    unsigned i;

    qpci_io_writel(dev, bar, off, 0xa3a2a1a0);
    qpci_io_writel(dev, bar, off + 4, 0xa7a6a5a4);
    if (size == 1) {
        qpci_io_writeb(dev, bar, off + at, 0x5c);
    } else {
        qpci_io_writew(dev, bar, off + at, 0x5d5c);
    }
    for (i = 0; i < 8; i++) {
        want[i] = i >= at && i < at + size ? 0x5c + i - at : 0xa0 + i;
        if (zero_mask & (1u << i)) {
            want[i] = 0;
        }
        g_assert_cmphex(qpci_io_readb(dev, bar, off + i), ==, want[i]);
        if (i < 4) {
            lo |= (uint32_t)want[i] << (8 * i);
        } else {
            hi |= (uint32_t)want[i] << (8 * (i - 4));
        }
    }
    g_assert_cmphex(qpci_io_readl(dev, bar, off), ==, lo);
    g_assert_cmphex(qpci_io_readl(dev, bar, off + 4), ==, hi);
}

/* Narrow writes at every spot of an 8-byte window of scratch bytes. */
static void check_narrow_writes(QPCIDevice *dev, QPCIBar bar, uint64_t off)
{
    unsigned at;

    for (at = 0; at < 8; at++) {
        check_narrow_write(dev, bar, off, at, 1, 0);
    }
    for (at = 0; at < 8; at += 2) {
        check_narrow_write(dev, bar, off, at, 2, 0);
    }
}

static void test_bar_access(const void *data)
{
    Fixture f;
    QTestState *qts;
    uint64_t half = TESTDEV_BAR2_DEFAULT_SIZE / 2, reads;
    int i;

    fixture_start(&f, data, NULL, NULL);
    qts = f.qts;

    g_assert_cmphex(bar0_readl(&f, TESTDEV_REG_ID), ==, TESTDEV_ID);
    g_assert_cmphex(bar0_readl(&f, TESTDEV_REG_VERSION), ==,
                    TESTDEV_VERSION);
    g_assert_cmphex(qpci_io_readq(f.dev, f.bar0, TESTDEV_REG_ID), ==,
                    ((uint64_t)TESTDEV_VERSION << 32) | TESTDEV_ID);

    /* 1, 2, 4 and 8 bytes on MMIO */
    qpci_io_writeb(f.dev, f.bar0, 0x20, 0x11);
    qpci_io_writeb(f.dev, f.bar0, 0x21, 0x22);
    qpci_io_writew(f.dev, f.bar0, 0x22, 0x4433);
    qpci_io_writel(f.dev, f.bar0, 0x24, 0x88776655);
    qpci_io_writeq(f.dev, f.bar0, 0x28, 0x0123456789abcdefull);
    g_assert_cmphex(qpci_io_readb(f.dev, f.bar0, 0x20), ==, 0x11);
    g_assert_cmphex(qpci_io_readb(f.dev, f.bar0, 0x23), ==, 0x44);
    g_assert_cmphex(qpci_io_readw(f.dev, f.bar0, 0x20), ==, 0x2211);
    g_assert_cmphex(qpci_io_readw(f.dev, f.bar0, 0x26), ==, 0x8877);
    g_assert_cmphex(qpci_io_readl(f.dev, f.bar0, 0x20), ==, 0x44332211);
    g_assert_cmphex(qpci_io_readl(f.dev, f.bar0, 0x2c), ==, 0x01234567);
    g_assert_cmphex(qpci_io_readq(f.dev, f.bar0, 0x20), ==,
                    0x8877665544332211ull);
    g_assert_cmphex(qpci_io_readq(f.dev, f.bar0, 0x28), ==,
                    0x0123456789abcdefull);
    qpci_io_writeq(f.dev, f.bar0, TESTDEV_REG_SCRATCH64,
                   0xfedcba9876543210ull);
    g_assert_cmphex(qpci_io_readq(f.dev, f.bar0, TESTDEV_REG_SCRATCH64), ==,
                    0xfedcba9876543210ull);
    /* read-only ID ignores writes */
    bar0_writel(&f, TESTDEV_REG_ID, 0);
    g_assert_cmphex(bar0_readl(&f, TESTDEV_REG_ID), ==, TESTDEV_ID);

    /* 1, 2 and 4 bytes on PIO: a window on BAR0's registers */
    g_assert_cmphex(qpci_io_readl(f.dev, f.bar1, TESTDEV_REG_ID), ==,
                    TESTDEV_ID);
    g_assert_cmphex(qpci_io_readl(f.dev, f.bar1, 0x20), ==, 0x44332211);
    qpci_io_writeb(f.dev, f.bar1, 0x30, 0xa1);
    qpci_io_writew(f.dev, f.bar1, 0x32, 0xb2c3);
    qpci_io_writel(f.dev, f.bar1, TESTDEV_REG_SCRATCH32, 0xcafef00d);
    g_assert_cmphex(qpci_io_readb(f.dev, f.bar1, 0x30), ==, 0xa1);
    g_assert_cmphex(qpci_io_readw(f.dev, f.bar1, 0x32), ==, 0xb2c3);
    g_assert_cmphex(qpci_io_readl(f.dev, f.bar1, 0x30), ==, 0xb2c300a1);
    g_assert_cmphex(bar0_readl(&f, 0x30), ==, 0xb2c300a1);
    g_assert_cmphex(bar0_readl(&f, TESTDEV_REG_SCRATCH32), ==, 0xcafef00d);
    g_assert_cmphex(qpci_io_readl(f.dev, f.bar1, 0x40), ==, 0);

    /* narrow writes touch only their own bytes, MMIO and PIO */
    check_narrow_writes(f.dev, f.bar0, TESTDEV_REG_SCRATCH_BYTES + 8);
    check_narrow_writes(f.dev, f.bar1, TESTDEV_REG_SCRATCH_BYTES + 16);

    /* posted writes keep their order: the last write to a spot wins */
    for (i = 0; i < 256; i++) {
        bar0_writel(&f, TESTDEV_REG_MEM, i);
    }
    g_assert_cmphex(bar0_readl(&f, TESTDEV_REG_MEM), ==, 255);
    for (i = TESTDEV_REG_MEM; i < TESTDEV_BAR0_SIZE; i += 4) {
        if (i & 8) {
            qpci_io_writeq(f.dev, f.bar0, i, 0x0101010101010101ull * i);
            i += 4;
        } else {
            bar0_writel(&f, i, 0x9e3779b9u * i);
        }
    }
    for (i = TESTDEV_REG_MEM; i < TESTDEV_BAR0_SIZE; i += 4) {
        if (i & 8) {
            g_assert_cmphex(qpci_io_readq(f.dev, f.bar0, i), ==,
                            0x0101010101010101ull * i);
            i += 4;
        } else {
            g_assert_cmphex(bar0_readl(&f, i), ==, 0x9e3779b9u * i);
        }
    }

    /* the expansion ROM */
    qpci_config_writel(f.dev, PCI_ROM_ADDRESS,
                       ROM_ADDR | PCI_ROM_ADDRESS_ENABLE);
    g_assert_cmphex(qtest_readw(qts, ROM_ADDR), ==, 0xaa55);
    g_assert_cmphex(qtest_readl(qts, ROM_ADDR + 0x1234), ==, 0x37363534);
    g_assert_cmphex(qtest_readb(qts, ROM_ADDR + TESTDEV_ROM_SIZE - 1), ==,
                    0xff);
    qpci_config_writel(f.dev, PCI_ROM_ADDRESS, 0);

    /* BAR2, 64-bit, above 4 GiB: the mmap'd half and the forwarded one */
    qpci_config_writel(f.dev, PCI_BASE_ADDRESS_2,
                       (uint32_t)BAR2_ADDR | TESTDEV_BAR2_TYPE);
    qpci_config_writel(f.dev, PCI_BASE_ADDRESS_3, BAR2_ADDR >> 32);
    g_assert_cmphex(qpci_config_readl(f.dev, PCI_BASE_ADDRESS_2), ==,
                    (uint32_t)BAR2_ADDR | TESTDEV_BAR2_TYPE);
    g_assert_cmphex(qpci_config_readl(f.dev, PCI_BASE_ADDRESS_3), ==,
                    BAR2_ADDR >> 32);
    reads = proxy_counter(qts, "reads");
    qtest_writel(qts, BAR2_ADDR + 0x10, 0xabcd0001);
    qtest_writeq(qts, BAR2_ADDR + half - 8, 0x1122334455667788ull);
    qtest_writeb(qts, BAR2_ADDR + 3, 0x5a);
    g_assert_cmphex(qtest_readl(qts, BAR2_ADDR + 0x10), ==, 0xabcd0001);
    g_assert_cmphex(qtest_readq(qts, BAR2_ADDR + half - 8), ==,
                    0x1122334455667788ull);
    g_assert_cmphex(qtest_readb(qts, BAR2_ADDR + 3), ==, 0x5a);
    /*
     * the first half is mapped: the proxy forwarded nothing (a device VM
     * maps nothing into clients: it forwarded the 3 reads)
     */
    g_assert_cmpuint(proxy_counter(qts, "reads"), ==,
                     reads + (f.p->vm ? 3 : 0));
    qtest_writel(qts, BAR2_ADDR + half + 0x10, 0xabcd0002);
    qtest_writeq(qts, BAR2_ADDR + 2 * half - 8, 0x8877665544332211ull);
    qtest_writew(qts, BAR2_ADDR + half + 2, 0x7e7f);
    g_assert_cmphex(qtest_readl(qts, BAR2_ADDR + half + 0x10), ==,
                    0xabcd0002);
    g_assert_cmphex(qtest_readq(qts, BAR2_ADDR + 2 * half - 8), ==,
                    0x8877665544332211ull);
    g_assert_cmphex(qtest_readw(qts, BAR2_ADDR + half + 2), ==, 0x7e7f);
    g_assert_cmphex(qtest_readb(qts, BAR2_ADDR + half + 1), ==, 0);
    /* the second half is not: these went to the device */
    g_assert_cmpuint(proxy_counter(qts, "reads"), ==,
                     reads + (f.p->vm ? 7 : 4));

    /* with memory decoding off, nothing answers at the BAR */
    qpci_config_writew(f.dev, PCI_COMMAND, PCI_COMMAND_IO);
    g_assert_cmphex(bar0_readl(&f, TESTDEV_REG_ID), !=, TESTDEV_ID);
    qpci_device_enable(f.dev);
    g_assert_cmphex(bar0_readl(&f, TESTDEV_REG_ID), ==, TESTDEV_ID);
    fixture_stop(&f);
}

/* ---- 3. interrupts ------------------------------------------------------- */

/* Program MSI-X vector @n to write @data at @addr, masked or not. */
static void msix_set_vector(Fixture *f, int n, uint64_t addr, uint32_t data,
                            bool masked)
{
    QPCIDevice *dev = f->dev;
    uint64_t off = dev->msix_table_off + n * PCI_MSIX_ENTRY_SIZE;

    qpci_io_writel(dev, dev->msix_table_bar, off + PCI_MSIX_ENTRY_LOWER_ADDR,
                   addr);
    qpci_io_writel(dev, dev->msix_table_bar, off + PCI_MSIX_ENTRY_UPPER_ADDR,
                   addr >> 32);
    qpci_io_writel(dev, dev->msix_table_bar, off + PCI_MSIX_ENTRY_DATA, data);
    qpci_io_writel(dev, dev->msix_table_bar, off + PCI_MSIX_ENTRY_VECTOR_CTRL,
                   masked ? PCI_MSIX_ENTRY_CTRL_MASKBIT : 0);
}

/* Vector @n must land (data 0x5a5a0000 + n at MSI_ADDR + 4 n). */
static void msix_check_delivery(Fixture *f, int n)
{
    uint64_t addr = MSI_ADDR + 4 * n;

    qtest_writel(f->qts, addr, 0);
    bar0_writel(f, TESTDEV_REG_MSIX, n);
    wait_mem_readl(f->qts, addr, 0x5a5a0000 + n);
    g_assert_false(qpci_msix_pending(f->dev, n));
}

static void msix_setup(Fixture *f)
{
    int i;

    qpci_msix_enable(f->dev);
    g_assert_cmpint(qpci_msix_table_size(f->dev), ==, TESTDEV_MSIX_VECTORS);
    for (i = 0; i < TESTDEV_MSIX_VECTORS; i++) {
        msix_set_vector(f, i, MSI_ADDR + 4 * i, 0x5a5a0000 + i, false);
    }
}

static void test_msix(const void *data)
{
    Fixture f;
    uint32_t count;
    int i;

    fixture_start(&f, data, NULL, NULL);
    msix_setup(&f);

    count = bar0_readl(&f, TESTDEV_REG_IRQ_COUNT);
    for (i = 0; i < TESTDEV_MSIX_VECTORS; i++) {
        msix_check_delivery(&f, i);
    }
    g_assert_cmpuint(bar0_readl(&f, TESTDEV_REG_IRQ_COUNT), ==,
                     count + TESTDEV_MSIX_VECTORS);
    g_assert_cmpuint(proxy_counter(f.qts, "irqs"), >=,
                     TESTDEV_MSIX_VECTORS);
    /* only the vector signalled is delivered */
    qtest_writel(f.qts, MSI_ADDR + 4 * 2, 0);
    qtest_writel(f.qts, MSI_ADDR + 4 * 3, 0);
    bar0_writel(&f, TESTDEV_REG_MSIX, 3);
    wait_mem_readl(f.qts, MSI_ADDR + 4 * 3, 0x5a5a0003);
    check_mem_stays(f.qts, MSI_ADDR + 4 * 2, 0);

    /* a masked vector is pending, not delivered; unmasking delivers it */
    msix_set_vector(&f, 5, MSI_ADDR + 4 * 5, 0x5a5a0005, true);
    g_assert_true(qpci_msix_masked(f.dev, 5));
    qtest_writel(f.qts, MSI_ADDR + 4 * 5, 0);
    g_assert_false(qpci_msix_pending(f.dev, 5));
    bar0_writel(&f, TESTDEV_REG_MSIX, 5);
    for (i = 0; !qpci_msix_pending(f.dev, 5); i++) {
        g_assert_cmpint(i, <, WAIT_MS);
        g_usleep(1000);
    }
    check_mem_stays(f.qts, MSI_ADDR + 4 * 5, 0);
    msix_set_vector(&f, 5, MSI_ADDR + 4 * 5, 0x5a5a0005, false);
    wait_mem_readl(f.qts, MSI_ADDR + 4 * 5, 0x5a5a0005);
    g_assert_false(qpci_msix_pending(f.dev, 5));
    msix_check_delivery(&f, 5);

    /* with MSI-X off nothing is delivered */
    qpci_msix_disable(f.dev);
    qtest_writel(f.qts, MSI_ADDR, 0);
    bar0_writel(&f, TESTDEV_REG_MSIX, 0);
    check_mem_stays(f.qts, MSI_ADDR, 0);
    fixture_stop(&f);
}

static void test_msi(const void *data)
{
    Fixture f;
    QPCIDevice *dev;
    uint8_t cap;
    uint16_t flags;

    fixture_start(&f, data, NULL, NULL);
    dev = f.dev;
    cap = qpci_find_capability(dev, PCI_CAP_ID_MSI, 0);
    g_assert_cmphex(cap, ==, TESTDEV_CAP_MSI);
    flags = qpci_config_readw(dev, cap + PCI_MSI_FLAGS);
    g_assert_true(flags & PCI_MSI_FLAGS_64BIT);

    /* disabled: nothing lands */
    qtest_writel(f.qts, MSI_ADDR, 0xffffffff);
    qpci_config_writel(dev, cap + PCI_MSI_ADDRESS_LO, MSI_ADDR);
    qpci_config_writel(dev, cap + PCI_MSI_ADDRESS_HI, 0);
    qpci_config_writew(dev, cap + PCI_MSI_DATA_64, 0xbeef);
    bar0_writel(&f, TESTDEV_REG_MSI, 1);
    check_mem_stays(f.qts, MSI_ADDR, 0xffffffff);

    qpci_config_writew(dev, cap + PCI_MSI_FLAGS,
                       flags | PCI_MSI_FLAGS_ENABLE);
    bar0_writel(&f, TESTDEV_REG_MSI, 1);
    wait_mem_readl(f.qts, MSI_ADDR, 0xbeef);

    /* again, with other data */
    qpci_config_writew(dev, cap + PCI_MSI_DATA_64, 0x4321);
    bar0_writel(&f, TESTDEV_REG_MSI, 1);
    wait_mem_readl(f.qts, MSI_ADDR, 0x4321);
    fixture_stop(&f);
}

/*
 * A device with 4 MSI vectors (the proxy once gave it one eventfd, for
 * as many vectors as were enabled at realize): with 1 enabled, a signal
 * of vector 3 reaches QEMU and is dropped; with 4 it lands, the vector
 * number in the data's low bits.
 */
static void test_msi_vectors(const void *data)
{
    Fixture f;
    QPCIDevice *dev;
    uint8_t cap;
    uint16_t flags;
    uint64_t irqs;

    fixture_start(&f, data, "-o msi-vectors=4", NULL);
    dev = f.dev;
    cap = qpci_find_capability(dev, PCI_CAP_ID_MSI, 0);
    flags = qpci_config_readw(dev, cap + PCI_MSI_FLAGS);
    g_assert_cmphex(flags & PCI_MSI_FLAGS_QMASK, ==, 2 << 1);
    qpci_config_writel(dev, cap + PCI_MSI_ADDRESS_LO, MSI_ADDR);
    qpci_config_writel(dev, cap + PCI_MSI_ADDRESS_HI, 0);
    qpci_config_writew(dev, cap + PCI_MSI_DATA_64, 0xbee0);
    qpci_config_writew(dev, cap + PCI_MSI_FLAGS,
                       (flags & ~PCI_MSI_FLAGS_QSIZE) | PCI_MSI_FLAGS_ENABLE);

    qtest_writel(f.qts, MSI_ADDR, 0);
    irqs = proxy_counter(f.qts, "irqs");
    bar0_writel(&f, TESTDEV_REG_MSI_VECTOR, 3);
    /* the proxy saw it (it is counted) and dropped it */
    wait_counter_above(f.qts, "irqs", irqs);
    check_mem_stays(f.qts, MSI_ADDR, 0);
    bar0_writel(&f, TESTDEV_REG_MSI_VECTOR, 0);
    wait_mem_readl(f.qts, MSI_ADDR, 0xbee0);

    qpci_config_writew(dev, cap + PCI_MSI_FLAGS,
                       (flags & ~PCI_MSI_FLAGS_QSIZE) | (2 << 4) |
                       PCI_MSI_FLAGS_ENABLE);
    bar0_writel(&f, TESTDEV_REG_MSI_VECTOR, 3);
    wait_mem_readl(f.qts, MSI_ADDR, 0xbee3);
    g_assert_true(proxy_state_is(f.qts, "connected"));
    fixture_stop(&f);
}

static bool wait_irq(QTestState *qts, int irq, bool level)
{
    gint64 deadline = g_get_monotonic_time() + WAIT_MS * 1000;

    while (qtest_get_irq(qts, irq) != level) {
        if (g_get_monotonic_time() > deadline) {
            return false;
        }
        g_usleep(1000);
    }
    return true;
}

/* The line stays at @level for a while. */
static void check_irq_stays(QTestState *qts, int irq, bool level)
{
    int i;

    for (i = 0; i < 20; i++) {
        g_assert_cmpint(qtest_get_irq(qts, irq), ==, level);
        g_usleep(5 * 1000);
    }
}

/* Wait until QEMU has handled @n interrupt signals of the device. */
static void wait_irqs_handled(Fixture *f, uint64_t n)
{
    gint64 deadline = g_get_monotonic_time() + WAIT_MS * 1000;

    while (proxy_counter(f->qts, "irqs") < n) {
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_usleep(1000);
    }
}

/*
 * The device lowers its line.  That write is an access too, so it ends
 * the interrupt: the line drops and the device is unmasked.  The unmask
 * must reach the device after the write (on the ring it travels apart
 * from it, on the socket), so the device, its line low by then, does not
 * signal again.
 */
static void intx_lower(Fixture *f)
{
    /* the device is masked: every signal it sent has been handled */
    uint64_t irqs = proxy_counter(f->qts, "irqs");

    bar0_writel(f, TESTDEV_REG_INTX, 0);
    g_assert_true(wait_irq(f->qts, DEV_ISA_IRQ, false));
    g_assert_cmphex(bar0_readl(f, TESTDEV_REG_INTX), ==, 0);
    /*
     * a process counts the eventfd signals it sent; a device VM counts
     * what it asked the gateway for, which automasks INTx on its own
     */
    if (!f->p->vm) {
        g_assert_cmpuint(bar0_readl(f, TESTDEV_REG_IRQ_COUNT), ==, irqs);
    }
    check_irq_stays(f->qts, DEV_ISA_IRQ, false);
    g_assert_cmpuint(proxy_counter(f->qts, "irqs"), ==, irqs);
}

static void test_intx(const void *data)
{
    Fixture f;
    QPCIDevice *piix;
    QTestState *qts;
    uint64_t irqs;
    int i;

    fixture_start(&f, data, NULL, NULL);
    qts = f.qts;

    /* route the device's PIRQ to ISA IRQ 11 and watch the IOAPIC */
    piix = qpci_device_find(f.bus, PIIX3_DEVFN);
    g_assert_nonnull(piix);
    for (i = 0; i < 4; i++) {
        qpci_config_writeb(piix, PIIX_PIRQCA + i,
                           i == DEV_PIRQ ? DEV_ISA_IRQ : 0x80);
    }
    g_free(piix);
    qtest_irq_intercept_in(qts, "ioapic");
    g_assert_false(qtest_get_irq(qts, DEV_ISA_IRQ));
    g_assert_cmpuint(proxy_counter(qts, "irqs"), ==, 0);

    /* raised, and it stays up while nobody touches the device */
    bar0_writel(&f, TESTDEV_REG_INTX, 1);
    g_assert_true(wait_irq(qts, DEV_ISA_IRQ, true));
    check_irq_stays(qts, DEV_ISA_IRQ, true);
    g_assert_cmpuint(proxy_counter(qts, "irqs"), ==, 1);

    /*
     * The next access to the device ends the interrupt: the line drops
     * and the device is unmasked; its line is still high, so it signals
     * again and the line comes back.
     */
    irqs = proxy_counter(qts, "irqs");
    g_assert_cmphex(bar0_readl(&f, TESTDEV_REG_INTX), ==, 1);
    wait_irqs_handled(&f, irqs + 1);
    g_assert_true(wait_irq(qts, DEV_ISA_IRQ, true));
    check_irq_stays(qts, DEV_ISA_IRQ, true);

    /* the device lowers its line: after the next access it stays low */
    intx_lower(&f);

    /* and it can be raised again */
    bar0_writel(&f, TESTDEV_REG_INTX, 1);
    g_assert_true(wait_irq(qts, DEV_ISA_IRQ, true));
    intx_lower(&f);

    /* INTx disable in the command register masks it */
    qpci_config_writew(f.dev, PCI_COMMAND,
                       qpci_config_readw(f.dev, PCI_COMMAND) |
                       PCI_COMMAND_INTX_DISABLE);
    irqs = proxy_counter(qts, "irqs");
    bar0_writel(&f, TESTDEV_REG_INTX, 1);
    wait_irqs_handled(&f, irqs + 1);
    check_irq_stays(qts, DEV_ISA_IRQ, false);
    g_assert_true(qpci_config_readw(f.dev, PCI_STATUS) &
                  PCI_STATUS_INTERRUPT);
    qpci_config_writew(f.dev, PCI_COMMAND,
                       qpci_config_readw(f.dev, PCI_COMMAND) &
                       ~PCI_COMMAND_INTX_DISABLE);
    g_assert_true(wait_irq(qts, DEV_ISA_IRQ, true));
    intx_lower(&f);
    fixture_stop(&f);
}

/* ---- 4. DMA -------------------------------------------------------------- */

/* Run DMA command @cmd; returns DMA_STATUS. */
static uint32_t dma_run(Fixture *f, uint32_t cmd, uint64_t src, uint64_t dst,
                        uint32_t len, uint32_t pattern)
{
    qpci_io_writeq(f->dev, f->bar0, TESTDEV_REG_DMA_SRC, src);
    qpci_io_writeq(f->dev, f->bar0, TESTDEV_REG_DMA_DST, dst);
    bar0_writel(f, TESTDEV_REG_DMA_LEN, len);
    bar0_writel(f, TESTDEV_REG_DMA_PATTERN, pattern);
    bar0_writel(f, TESTDEV_REG_DMA_CMD, cmd);
    return bar0_readl(f, TESTDEV_REG_DMA_STATUS);
}

#define DMA_LEN     1002    /* not a multiple of 4 on purpose */
#define DMA_GUARD   16

/* Fill DMA_LEN bytes at @addr; check the pattern and the guard bytes. */
static void dma_check_fill(Fixture *f, uint64_t addr, uint32_t pattern)
{
    uint8_t buf[DMA_LEN + 2 * DMA_GUARD];
    int i;

    qtest_memset(f->qts, addr - DMA_GUARD, 0x5a, sizeof(buf));
    g_assert_cmpuint(dma_run(f, TESTDEV_DMA_FILL, 0, addr, DMA_LEN,
                             pattern), ==, 0);
    qtest_memread(f->qts, addr - DMA_GUARD, buf, sizeof(buf));
    for (i = 0; i < sizeof(buf); i++) {
        int j = i - DMA_GUARD;
        uint8_t want = j < 0 || j >= DMA_LEN ? 0x5a :
                       (pattern >> (8 * (j % 4))) & 0xff;

        g_assert_cmphex(buf[i], ==, want);
    }
}

/*
 * With bus mastering off a fill must fail and leave memory alone; with
 * @status, with that DMA_STATUS.
 */
static void dma_check_fill_fails(Fixture *f, uint64_t addr, uint32_t status)
{
    uint8_t buf[DMA_LEN + 2 * DMA_GUARD];
    uint32_t got;
    int i;

    qtest_memset(f->qts, addr - DMA_GUARD, 0x5a, sizeof(buf));
    got = dma_run(f, TESTDEV_DMA_FILL, 0, addr, DMA_LEN, 0x01020304);
    g_assert_cmpuint(got, !=, 0);
    if (status) {
        g_assert_cmpuint(got, ==, status);
    }
    qtest_memread(f->qts, addr - DMA_GUARD, buf, sizeof(buf));
    for (i = 0; i < sizeof(buf); i++) {
        g_assert_cmphex(buf[i], ==, 0x5a);
    }
}

/* CRC-32 (IEEE 802.3) bit by bit: what TESTDEV_DMA_CRC32 makes. */
static uint32_t crc32_bitwise(const uint8_t *p, size_t len)
{
    uint32_t crc = ~0u;
    int k;

    while (len--) {
        crc ^= *p++;
        for (k = 0; k < 8; k++) {
            crc = crc & 1 ? 0xedb88320u ^ (crc >> 1) : crc >> 1;
        }
    }
    return ~crc;
}

static void test_dma(const void *data)
{
    Fixture f;
    QTestState *qts;
    g_autofree uint8_t *src = g_malloc(TESTDEV_DMA_MAX_LEN);
    g_autofree uint8_t *dst = g_malloc(TESTDEV_DMA_MAX_LEN);
    uint64_t sum = 0, dma_bytes;
    uint16_t cmd;
    bool events;
    int i;

    fixture_start(&f, data, NULL, NULL);
    qts = f.qts;

    for (i = 0; i < TESTDEV_DMA_MAX_LEN; i++) {
        src[i] = i * 7 + (i >> 8) + 3;
        sum += src[i];
    }
    qtest_memwrite(qts, DMA_SRC_ADDR, src, TESTDEV_DMA_MAX_LEN);

    /* checksum over the largest length */
    g_assert_cmpuint(dma_run(&f, TESTDEV_DMA_CHECKSUM, DMA_SRC_ADDR, 0,
                             TESTDEV_DMA_MAX_LEN, 0), ==, 0);
    g_assert_cmphex(qpci_io_readq(f.dev, f.bar0, TESTDEV_REG_DMA_RESULT), ==,
                    sum);
    /* and a short odd one */
    g_assert_cmpuint(dma_run(&f, TESTDEV_DMA_CHECKSUM, DMA_SRC_ADDR + 1, 0,
                             3, 0), ==, 0);
    g_assert_cmphex(qpci_io_readq(f.dev, f.bar0, TESTDEV_REG_DMA_RESULT), ==,
                    src[1] + src[2] + src[3]);

    /* CRC-32 with the table the device built once (the SDK's type_init) */
    qtest_memwrite(qts, DMA_DST_ADDR, "123456789", 9);
    g_assert_cmpuint(dma_run(&f, TESTDEV_DMA_CRC32, DMA_DST_ADDR, 0, 9, 0),
                     ==, 0);
    g_assert_cmphex(qpci_io_readq(f.dev, f.bar0, TESTDEV_REG_DMA_RESULT), ==,
                    0xcbf43926);
    g_assert_cmpuint(dma_run(&f, TESTDEV_DMA_CRC32, DMA_SRC_ADDR, 0,
                             TESTDEV_DMA_MAX_LEN, 0), ==, 0);
    g_assert_cmphex(qpci_io_readq(f.dev, f.bar0, TESTDEV_REG_DMA_RESULT), ==,
                    crc32_bitwise(src, TESTDEV_DMA_MAX_LEN));

    /* fill, with guard bytes around */
    dma_check_fill(&f, DMA_DST_ADDR + 1, 0xa1b2c3d4);
    dma_check_fill(&f, DMA_DST2_ADDR, 0x0badf00d);

    /* copy */
    qtest_memset(qts, DMA_DST_ADDR, 0, 0x10000);
    g_assert_cmpuint(dma_run(&f, TESTDEV_DMA_COPY, DMA_SRC_ADDR + 5,
                             DMA_DST_ADDR + 16, 0x8000, 0), ==, 0);
    qtest_memread(qts, DMA_DST_ADDR, dst, 0x10000);
    for (i = 0; i < 16; i++) {
        g_assert_cmphex(dst[i], ==, 0);
    }
    g_assert_cmpint(memcmp(dst + 16, src + 5, 0x8000), ==, 0);
    for (i = 16 + 0x8000; i < 0x10000; i++) {
        g_assert_cmphex(dst[i], ==, 0);
    }

    /* outside guest RAM, and too long: errors, no harm */
    g_assert_cmpuint(dma_run(&f, TESTDEV_DMA_FILL, 0,
                             (uint64_t)RAM_MB * MiB + 0x1000, 16, 0), !=, 0);
    g_assert_cmpuint(dma_run(&f, TESTDEV_DMA_CHECKSUM, DMA_SRC_ADDR, 0,
                             TESTDEV_DMA_MAX_LEN + 1, 0), ==,
                     TESTDEV_DMA_EINVAL);

    /*
     * Memory shared by fd is accessed by the device directly (a device
     * VM through its DMA window, docs/devvm/dma-window.rst); other memory
     * with DMA_READ/WRITE messages through the proxy, from the gateway
     * or, when the proxy takes a device VM's events, from the device.
     */
    events = proxy_events(qts);
    g_assert_cmpint(events, ==, f.p->vm && f.p->ring && !f.p->gw_events);
    dma_bytes = proxy_counter(qts, "dma-bytes");
    if (f.p->memfd) {
        g_assert_cmpuint(dma_bytes, ==, 0);
    } else {
        g_assert_cmpuint(dma_bytes, >=,
                         TESTDEV_DMA_MAX_LEN + 2 * DMA_LEN + 0x10000);
    }

    /* bus mastering off: DMA fails and guest memory stays untouched */
    cmd = qpci_config_readw(f.dev, PCI_COMMAND);
    qpci_config_writew(f.dev, PCI_COMMAND, cmd & ~PCI_COMMAND_MASTER);
    dma_check_fill_fails(&f, DMA_DST_ADDR, 0);
    g_assert_cmpuint(dma_run(&f, TESTDEV_DMA_CHECKSUM, DMA_SRC_ADDR, 0, 64,
                             0), !=, 0);
    g_assert_cmphex(qpci_io_readq(f.dev, f.bar0, TESTDEV_REG_DMA_RESULT), ==,
                    0);
    /* back on: it works again */
    qpci_config_writew(f.dev, PCI_COMMAND, cmd);
    dma_check_fill(&f, DMA_DST_ADDR, 0x600dcafe);

    /*
     * A device that DMAs with bus mastering off all the same (testdev's
     * DMA_NO_MASTER fault skips the SDK's own check): the proxy's check
     * is all that stands in the way, whichever path the DMA takes (a
     * DMA_READ/WRITE message, from the device or its gateway, or a DMA
     * slot on the event ring).  No fd mapping may be left to bypass it.
     */
    bar0_writel(&f, TESTDEV_REG_FAULT, TESTDEV_FAULT_DMA_NO_MASTER);
    qpci_config_writew(f.dev, PCI_COMMAND, cmd & ~PCI_COMMAND_MASTER);
    dma_check_fill_fails(&f, DMA_DST_ADDR, TESTDEV_DMA_EFAULT);
    g_assert_cmpuint(dma_run(&f, TESTDEV_DMA_CHECKSUM, DMA_SRC_ADDR, 0, 64,
                             0), ==, TESTDEV_DMA_EFAULT);
    qpci_config_writew(f.dev, PCI_COMMAND, cmd);
    bar0_writel(&f, TESTDEV_REG_FAULT, TESTDEV_FAULT_NONE);
    dma_check_fill(&f, DMA_DST_ADDR, 0x0dd0beef);
    fixture_stop(&f);
}

/* ---- 5. reset ------------------------------------------------------------ */

static void test_reset(const void *data)
{
    Fixture f;
    uint32_t count;
    uint8_t msix;

    fixture_start(&f, data, NULL, NULL);

    count = bar0_readl(&f, TESTDEV_REG_RESET_COUNT);
    bar0_writel(&f, TESTDEV_REG_SCRATCH32, 0xdeadbeef);
    bar0_writel(&f, TESTDEV_REG_SCRATCH_BYTES, 0x01020304);
    bar0_writel(&f, TESTDEV_REG_MEM, 0x55aa55aa);
    qpci_config_writel(f.dev, TESTDEV_CFG_VENDOR_SCRATCH, 0x0ddba11);
    msix_setup(&f);
    msix = qpci_find_capability(f.dev, PCI_CAP_ID_MSIX, 0);
    g_assert_true(qpci_config_readw(f.dev, msix + PCI_MSIX_FLAGS) &
                  PCI_MSIX_FLAGS_ENABLE);

    qtest_system_reset(f.qts);

    /* the PCI function is reset: no decoding, MSI-X off */
    g_assert_cmphex(qpci_config_readw(f.dev, PCI_COMMAND) &
                    (PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER), ==, 0);
    g_assert_false(qpci_config_readw(f.dev, msix + PCI_MSIX_FLAGS) &
                   PCI_MSIX_FLAGS_ENABLE);
    qpci_device_enable(f.dev);
    f.bar0 = qpci_iomap(f.dev, 0, NULL);

    /* ... and so is the device */
    g_assert_cmpuint(bar0_readl(&f, TESTDEV_REG_RESET_COUNT), ==, count + 1);
    g_assert_cmphex(bar0_readl(&f, TESTDEV_REG_SCRATCH32), ==, 0);
    g_assert_cmphex(bar0_readl(&f, TESTDEV_REG_SCRATCH_BYTES), ==, 0);
    g_assert_cmphex(bar0_readl(&f, TESTDEV_REG_MEM), ==, 0);
    g_assert_cmphex(bar0_readl(&f, TESTDEV_REG_ID), ==, TESTDEV_ID);
    /* the device keeps its config space */
    g_assert_cmphex(qpci_config_readl(f.dev, TESTDEV_CFG_VENDOR_SCRATCH), ==,
                    0x0ddba11);
    g_assert_true(proxy_state_is(f.qts, "connected"));

    /* and works: MSI-X again */
    msix_setup(&f);
    msix_check_delivery(&f, 1);
    fixture_stop(&f);
}

/* ---- 6. hot-plug and unplug ---------------------------------------------- */

/* A socket chardev @id connected to @path, added with QMP. */
static void chardev_add(QTestState *qts, const char *id, const char *path)
{
    QDict *resp;

    resp = qtest_qmp(qts, "{'execute': 'chardev-add', 'arguments': "
                     "{'id': %s, 'backend': {'type': 'socket', 'data': "
                     "{'addr': {'type': 'unix', 'data': {'path': %s}}, "
                     "'server': false}}}}", id, path);
    g_assert(qdict_haskey(resp, "return"));
    qobject_unref(resp);
}

/* Remove chardev @id: no frontend holds it any more. */
static void chardev_remove(QTestState *qts, const char *id)
{
    QDict *resp;

    resp = qtest_qmp(qts, "{'execute': 'chardev-remove', 'arguments': "
                     "{'id': %s}}", id);
    g_assert(qdict_haskey(resp, "return"));
    qobject_unref(resp);
}

/* With p->chardev, through the chardev hp0c (chardev_add() it first). */
static void hotplug_add(QTestState *qts, TestDev *td, const TestParams *p,
                        const char *bus, const char *addr)
{
    QDict *args = qdict_new();

    if (p->chardev) {
        qdict_put_str(args, "chardev", "hp0c");
    } else {
        qdict_put_str(args, "socket", td->sock);
    }
    qdict_put_bool(args, "ring", p->ring);
    if (bus) {
        qdict_put_str(args, "bus", bus);
    }
    if (addr) {
        qdict_put_str(args, "addr", addr);
    }
    qdict_put_str(args, "id", "hp0");
    qtest_qmp_device_add_qdict(qts, "devvm-proxy", args);
    qobject_unref(args);
}

/* The device's connection closed: a --once testdev exits with 0. */
static void check_testdev_released(TestDev *td)
{
    int status = testdev_wait(td, WAIT_MS);

    g_assert_true(WIFEXITED(status));
    g_assert_cmpint(WEXITSTATUS(status), ==, 0);
}

static void check_plugged(QTestState *qts, QPCIDevice *dev)
{
    QPCIBar bar0;
    QDict *info;

    g_assert_cmphex(qpci_config_readw(dev, PCI_VENDOR_ID), ==,
                    TESTDEV_VENDOR_ID);
    g_assert_cmphex(qpci_config_readw(dev, PCI_DEVICE_ID), ==,
                    TESTDEV_DEVICE_ID);
    qpci_device_enable(dev);
    bar0 = qpci_iomap(dev, 0, NULL);
    g_assert_cmphex(qpci_io_readl(dev, bar0, TESTDEV_REG_ID), ==,
                    TESTDEV_ID);
    qpci_io_writel(dev, bar0, TESTDEV_REG_SCRATCH32, 0x600d);
    g_assert_cmphex(qpci_io_readl(dev, bar0, TESTDEV_REG_SCRATCH32), ==,
                    0x600d);
    info = query_proxy(qts);
    g_assert_cmpstr(qdict_get_str(info, "id"), ==, "hp0");
    g_assert_cmpstr(qdict_get_str(info, "state"), ==, "connected");
    qobject_unref(info);
}

static void check_unplugged(QTestState *qts, QPCIDevice *dev)
{
    QList *list = query_proxies(qts);

    g_assert_cmpint(qlist_size(list), ==, 0);
    qobject_unref(list);
    g_assert_cmphex(qpci_config_readw(dev, PCI_VENDOR_ID), ==, 0xffff);
}

static void test_hotplug_pc(const void *data)
{
    const TestParams *p = data;
    TestDev td;
    QTestState *qts;
    QPCIBus *bus;
    QPCIDevice *dev;
    int round;

    testdev_init(&td, false);
    qts = qtest_initf("-M pc -nodefaults -m %dM", RAM_MB);
    bus = qpci_new_pc(qts, NULL);

    /* twice: an unplug leaves nothing behind that stops a new plug */
    for (round = 0; round < 2; round++) {
        testdev_start(&td, "--once");
        if (p->chardev) {
            chardev_add(qts, "hp0c", td.sock);
        }
        hotplug_add(qts, &td, p, NULL, "05.0");
        dev = qpci_device_find(bus, QPCI_DEVFN(5, 0));
        g_assert_nonnull(dev);
        check_plugged(qts, dev);

        qpci_unplug_acpi_device_test(qts, "hp0", 5);
        /* with a chardev too: the proxy closed the connection */
        check_testdev_released(&td);
        check_unplugged(qts, dev);
        if (p->chardev) {
            /* and let go of the chardev */
            chardev_remove(qts, "hp0c");
        }
        g_free(dev);
    }

    qpci_free_pc(bus);
    qtest_quit(qts);
    testdev_cleanup(&td);
}

static void test_hotplug_q35(const void *data)
{
    const TestParams *p = data;
    TestDev td;
    QTestState *qts;
    QPCIBus *bus;
    QPCIDevice *port, dev;
    QDict *resp;

    testdev_init(&td, false);
    testdev_start(&td, "--once");
    qts = qtest_initf("-M q35 -nodefaults -m %dM "
                      "-device pcie-root-port,id=rp0,bus=pcie.0,chassis=1,"
                      "addr=03.0", RAM_MB);
    bus = qpci_new_pc(qts, NULL);

    /* the port forwards bus 1 and a memory window to the device */
    port = qpci_device_find(bus, QPCI_DEVFN(3, 0));
    g_assert_nonnull(port);
    qpci_config_writeb(port, PCI_SECONDARY_BUS, 1);
    qpci_config_writeb(port, PCI_SUBORDINATE_BUS, 1);
    qpci_config_writew(port, PCI_MEMORY_BASE, bus->mmio_alloc_ptr >> 16);
    qpci_config_writew(port, PCI_MEMORY_LIMIT,
                       (bus->mmio_alloc_ptr + 0x100000 - 1) >> 16);
    qpci_config_writew(port, PCI_COMMAND,
                       PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);

    hotplug_add(qts, &td, p, "rp0", NULL);
    dev.bus = bus;
    dev.devfn = 1 << 8;             /* bus 1, device 0 */
    dev.msix_enabled = false;
    check_plugged(qts, &dev);

    /*
     * No guest handles the unplug request; a system reset completes it
     * (as in device-plug-test).
     */
    qtest_qmp_device_del_send(qts, "hp0");
    qtest_system_reset_nowait(qts);
    for (;;) {
        QDict *ev = qtest_qmp_eventwait_ref(qts, "DEVICE_DELETED");
        QDict *ev_data = qdict_get_qdict(ev, "data");
        bool ours = ev_data && qdict_haskey(ev_data, "device") &&
                    !strcmp(qdict_get_str(ev_data, "device"), "hp0");

        qobject_unref(ev);
        if (ours) {
            break;
        }
    }
    check_testdev_released(&td);
    /* QEMU keeps running */
    resp = qtest_qmp(qts, "{'execute': 'query-status'}");
    g_assert(qdict_haskey(resp, "return"));
    qobject_unref(resp);
    /* the reset cleared the port's bus numbers: nothing is behind it */
    qpci_config_writeb(port, PCI_SECONDARY_BUS, 1);
    qpci_config_writeb(port, PCI_SUBORDINATE_BUS, 1);
    check_unplugged(qts, &dev);

    g_free(port);
    qpci_free_pc(bus);
    qtest_quit(qts);
    testdev_cleanup(&td);
}

/* ---- PCI Express: extended config space ---------------------------------- */

/* q35's MCH maps ECAM here (PCIEXBAR: 256 MiB, buses 0-255, enabled) */
#define Q35_MCH_PCIEXBAR    0x60
#define ECAM_BASE           0xb0000000u
#define PCIE_DEV_BUS        1

/* ECAM address of @off in the config space of 01:00.0, behind the port */
static uint64_t ecam(uint32_t off)
{
    return ECAM_BASE | PCIE_DEV_BUS << 20 | off;
}

/* Turn on q35's ECAM and give the root port 00:03.0 its bus numbers. */
static void pcie_setup(QTestState *qts)
{
    QPCIBus *bus = qpci_new_pc(qts, NULL);
    QPCIDevice *mch, *port;

    mch = qpci_device_find(bus, 0);
    g_assert_nonnull(mch);
    qpci_config_writel(mch, Q35_MCH_PCIEXBAR + 4, 0);
    qpci_config_writel(mch, Q35_MCH_PCIEXBAR, ECAM_BASE | 1);
    port = qpci_device_find(bus, QPCI_DEVFN(3, 0));
    g_assert_nonnull(port);
    qpci_config_writeb(port, PCI_SECONDARY_BUS, PCIE_DEV_BUS);
    qpci_config_writeb(port, PCI_SUBORDINATE_BUS, PCIE_DEV_BUS);
    g_free(port);
    g_free(mch);
    qpci_free_pc(bus);
    g_assert_cmphex(qtest_readw(qts, ecam(PCI_VENDOR_ID)), ==,
                    TESTDEV_VENDOR_ID);
}

/*
 * q35 with the proxy behind a PCIe root port, ECAM on.  The device is
 * devvm-testdev with @td_args (a device VM: @append on its command line).
 */
static QTestState *pcie_start(TestDev *td, const TestParams *p,
                              const char *td_args, const char *append)
{
    QTestState *qts;

    testdev_init(td, p->vm);
    if (p->vm) {
        gateway_start(td, NULL);
        device_vm_start(td, append, true);
    } else {
        testdev_start(td, td_args);
    }
    qts = qtest_initf("-M q35 -nodefaults -m %dM "
                      "-device pcie-root-port,id=rp0,bus=pcie.0,chassis=1,"
                      "addr=03.0 -device devvm-proxy,id=dev0,bus=rp0,"
                      "socket=%s,ring=%s", RAM_MB, td->sock,
                      p->ring ? "on" : "off");
    pcie_setup(qts);
    return qts;
}

static void pcie_stop(QTestState *qts, TestDev *td)
{
    qtest_quit(qts);
    testdev_cleanup(td);
}

/*
 * A PCI Express device (testdev pcie=on): its PCI Express capability in
 * the list, 4 KiB of config space with its extended capabilities, every
 * access from 0x100 on served by the device.
 */
static void test_pcie(const void *data)
{
    QTestState *qts;
    TestDev td;
    uint32_t hdr;
    uint8_t pos;
    int n = 0;

    qts = pcie_start(&td, data, "-o pcie=on", "pcie=on");

    /* the capability list ends with the PCI Express capability */
    for (pos = qtest_readb(qts, ecam(PCI_CAPABILITY_LIST));
         pos && qtest_readb(qts, ecam(pos)) != PCI_CAP_ID_EXP;
         pos = qtest_readb(qts, ecam(pos + PCI_CAP_LIST_NEXT))) {
        g_assert_cmpint(++n, <, 8);
    }
    g_assert_cmphex(pos, ==, TESTDEV_CAP_PCIE);
    g_assert_cmphex(qtest_readw(qts, ecam(pos + PCI_EXP_FLAGS)), ==,
                    2 | PCI_EXP_TYPE_ENDPOINT << 4);
    g_assert_cmphex(qtest_readb(qts, ecam(pos + PCI_CAP_LIST_NEXT)), ==, 0);
    /* Device Control is the guest's to set, Device Capabilities are not */
    qtest_writew(qts, ecam(pos + PCI_EXP_DEVCTL), PCI_EXP_DEVCTL_RELAX_EN);
    g_assert_cmphex(qtest_readw(qts, ecam(pos + PCI_EXP_DEVCTL)), ==,
                    PCI_EXP_DEVCTL_RELAX_EN);
    qtest_writel(qts, ecam(pos + PCI_EXP_DEVCAP), 0xffffffff);
    g_assert_cmphex(qtest_readl(qts, ecam(pos + PCI_EXP_DEVCAP)), ==, 0);

    /* the extended capabilities: a DVSEC, then a VSEC */
    hdr = qtest_readl(qts, ecam(PCI_CFG_SPACE_SIZE));
    g_assert_cmphex(PCI_EXT_CAP_ID(hdr), ==, PCI_EXT_CAP_ID_DVSEC);
    g_assert_cmphex(PCI_EXT_CAP_VER(hdr), ==, 1);
    g_assert_cmphex(PCI_EXT_CAP_NEXT(hdr), ==, TESTDEV_EXT_VSEC);
    g_assert_cmphex(qtest_readl(qts, ecam(TESTDEV_EXT_DVSEC + 4)), ==,
                    TESTDEV_VENDOR_ID | TESTDEV_EXT_DVSEC_LEN << 20);
    g_assert_cmphex(qtest_readw(qts, ecam(TESTDEV_EXT_DVSEC + 8)), ==,
                    TESTDEV_DVSEC_ID);
    hdr = qtest_readl(qts, ecam(TESTDEV_EXT_VSEC));
    g_assert_cmphex(PCI_EXT_CAP_ID(hdr), ==, PCI_EXT_CAP_ID_VNDR);
    g_assert_cmphex(PCI_EXT_CAP_NEXT(hdr), ==, 0);
    g_assert_cmphex(qtest_readl(qts, ecam(TESTDEV_CFG_VSEC_MAGIC)), ==,
                    TESTDEV_VSEC_MAGIC);

    /* the DVSEC's scratch register, every width */
    qtest_writel(qts, ecam(TESTDEV_CFG_DVSEC_SCRATCH), 0x12345678);
    g_assert_cmphex(qtest_readl(qts, ecam(TESTDEV_CFG_DVSEC_SCRATCH)), ==,
                    0x12345678);
    qtest_writeb(qts, ecam(TESTDEV_CFG_DVSEC_SCRATCH + 1), 0xab);
    qtest_writew(qts, ecam(TESTDEV_CFG_DVSEC_SCRATCH + 2), 0xcdef);
    g_assert_cmphex(qtest_readl(qts, ecam(TESTDEV_CFG_DVSEC_SCRATCH)), ==,
                    0xcdefab78);
    g_assert_cmphex(qtest_readb(qts, ecam(TESTDEV_CFG_DVSEC_SCRATCH + 3)),
                    ==, 0xcd);
    /* read-only bytes and the headers stay */
    qtest_writel(qts, ecam(TESTDEV_CFG_VSEC_MAGIC), 0);
    qtest_writel(qts, ecam(TESTDEV_EXT_VSEC), 0);
    g_assert_cmphex(qtest_readl(qts, ecam(TESTDEV_CFG_VSEC_MAGIC)), ==,
                    TESTDEV_VSEC_MAGIC);
    g_assert_cmphex(qtest_readl(qts, ecam(TESTDEV_EXT_VSEC)), ==, hdr);
    /* the rest of the extended space is empty */
    g_assert_cmphex(qtest_readl(qts, ecam(PCI_CFG_SPACE_EXP_SIZE - 4)), ==,
                    0);

    /*
     * A reset: the SDK's registers are back to their initial values
     * (Device Control: 512-byte reads, relaxed ordering, no snoop), the
     * device keeps its scratch registers (as the vendor one).
     */
    qtest_system_reset(qts);
    pcie_setup(qts);
    g_assert_cmphex(qtest_readw(qts, ecam(pos + PCI_EXP_DEVCTL)), ==, 0x2810);
    g_assert_cmphex(qtest_readl(qts, ecam(TESTDEV_CFG_DVSEC_SCRATCH)), ==,
                    0xcdefab78);
    pcie_stop(qts, &td);
}

/*
 * A conventional device behind the same port: no PCI Express capability,
 * and config space ends at 0x100 (extended reads are all-ones).
 */
static void test_pcie_conventional(const void *data)
{
    QTestState *qts;
    TestDev td;
    uint8_t pos;

    qts = pcie_start(&td, data, NULL, NULL);
    for (pos = qtest_readb(qts, ecam(PCI_CAPABILITY_LIST)); pos;
         pos = qtest_readb(qts, ecam(pos + PCI_CAP_LIST_NEXT))) {
        g_assert_cmphex(qtest_readb(qts, ecam(pos)), !=, PCI_CAP_ID_EXP);
    }
    g_assert_cmphex(qtest_readl(qts, ecam(PCI_CFG_SPACE_SIZE)), ==,
                    0xffffffff);
    g_assert_cmphex(qtest_readl(qts, ecam(TESTDEV_CFG_DVSEC_SCRATCH)), ==,
                    0xffffffff);
    pcie_stop(qts, &td);
}

/* Config space at @off of function 00:04.0 through ECAM (q35's pcie.0). */
static uint64_t ecam_root(uint32_t off)
{
    return ECAM_BASE | QPCI_DEVFN(4, 0) << 12 | off;
}

/*
 * The PCI Express function on q35's root bus: a Root Complex Integrated
 * Endpoint without link registers; the rest is the device's.
 */
static void test_pcie_root_bus(const void *data)
{
    const TestParams *p = data;
    QTestState *qts;
    QPCIBus *bus;
    QPCIDevice *mch;
    TestDev td;
    uint8_t pos = TESTDEV_CAP_PCIE;

    testdev_init(&td, false);
    testdev_start(&td, "-o pcie=on");
    qts = qtest_initf("-M q35 -nodefaults -m %dM -device devvm-proxy,id=dev0,"
                      "bus=pcie.0,addr=04.0,socket=%s,ring=%s", RAM_MB,
                      td.sock, p->ring ? "on" : "off");
    bus = qpci_new_pc(qts, NULL);
    mch = qpci_device_find(bus, 0);
    qpci_config_writel(mch, Q35_MCH_PCIEXBAR + 4, 0);
    qpci_config_writel(mch, Q35_MCH_PCIEXBAR, ECAM_BASE | 1);
    g_free(mch);
    qpci_free_pc(bus);

    g_assert_cmphex(qtest_readb(qts, ecam_root(pos)), ==, PCI_CAP_ID_EXP);
    g_assert_cmphex(qtest_readw(qts, ecam_root(pos + PCI_EXP_FLAGS)), ==,
                    2 | PCI_EXP_TYPE_RC_END << 4);
    qtest_writew(qts, ecam_root(pos + PCI_EXP_LNKCTL), 0xffff);
    g_assert_cmphex(qtest_readl(qts, ecam_root(pos + PCI_EXP_LNKCAP)), ==, 0);
    g_assert_cmphex(qtest_readl(qts, ecam_root(pos + PCI_EXP_LNKCTL)), ==, 0);
    g_assert_cmphex(qtest_readl(qts, ecam_root(pos + PCI_EXP_LNKCAP2)), ==, 0);
    g_assert_cmphex(qtest_readl(qts, ecam_root(pos + PCI_EXP_LNKCTL2)), ==, 0);
    /* the device's own registers around them are still the device's */
    qtest_writew(qts, ecam_root(pos + PCI_EXP_DEVCTL),
                 PCI_EXP_DEVCTL_RELAX_EN);
    g_assert_cmphex(qtest_readw(qts, ecam_root(pos + PCI_EXP_DEVCTL)), ==,
                    PCI_EXP_DEVCTL_RELAX_EN);
    g_assert_cmphex(PCI_EXT_CAP_ID(qtest_readl(qts,
                                               ecam_root(TESTDEV_EXT_DVSEC))),
                    ==, PCI_EXT_CAP_ID_DVSEC);
    g_assert_cmphex(qtest_readl(qts, ecam_root(TESTDEV_CFG_VSEC_MAGIC)), ==,
                    TESTDEV_VSEC_MAGIC);
    pcie_stop(qts, &td);
}

/*
 * The PCI Express function behind q35's PCIe-to-PCI bridge: a
 * conventional function there, without its PCI Express capability or
 * extended config space; its other capabilities stay.
 */
static void test_pcie_behind_bridge(const void *data)
{
    const TestParams *p = data;
    QTestState *qts;
    QPCIBus *bus;
    QPCIDevice *dev, *br;
    TestDev td;
    uint8_t pos;
    int n = 0;

    testdev_init(&td, false);
    testdev_start(&td, "-o pcie=on");
    qts = qtest_initf("-M q35 -nodefaults -m %dM -device pcie-pci-bridge,"
                      "id=br0,bus=pcie.0,addr=05.0 -device devvm-proxy,"
                      "id=dev0,bus=br0,addr=01.0,socket=%s,ring=%s", RAM_MB,
                      td.sock, p->ring ? "on" : "off");
    bus = qpci_new_pc(qts, NULL);
    br = qpci_device_find(bus, QPCI_DEVFN(5, 0));
    g_assert_nonnull(br);
    qpci_config_writeb(br, PCI_SECONDARY_BUS, 1);
    qpci_config_writeb(br, PCI_SUBORDINATE_BUS, 1);
    dev = qpci_device_find(bus, 1 << 8 | QPCI_DEVFN(1, 0));
    g_assert_nonnull(dev);
    g_assert_cmphex(qpci_config_readw(dev, PCI_VENDOR_ID), ==,
                    TESTDEV_VENDOR_ID);
    for (pos = qpci_config_readb(dev, PCI_CAPABILITY_LIST); pos;
         pos = qpci_config_readb(dev, pos + PCI_CAP_LIST_NEXT)) {
        g_assert_cmphex(qpci_config_readb(dev, pos), !=, PCI_CAP_ID_EXP);
        n++;
    }
    g_assert_cmpint(n, ==, 3);      /* MSI-X, MSI, the vendor capability */
    g_assert_cmphex(qpci_find_capability(dev, PCI_CAP_ID_MSIX, 0), !=, 0);
    g_assert_cmphex(qpci_find_capability(dev, PCI_CAP_ID_VNDR, 0), ==,
                    TESTDEV_CAP_VENDOR);
    g_free(dev);
    g_free(br);
    qpci_free_pc(bus);
    pcie_stop(qts, &td);
}

/* ---- 7. the device process dies ------------------------------------------ */


/* "info devvm-proxy" (HMP; its lines end in CR LF) shows @state. */
static void check_hmp_state(Fixture *f, const char *state)
{
    g_autofree char *out = qtest_hmp(f->qts, "info devvm-proxy");
    g_autofree char *want = g_strdup_printf("dev0 (/machine/peripheral/"
                                            "dev0): %s", state);

    g_assert_nonnull(strstr(out, want));
    g_assert_nonnull(strstr(out, "  peer "));
}
/*
 * After a reconnect: a fresh device instance that works, DMA and MSI-X
 * too.  Each connection gets its own instance, so the state is new even
 * when the same process took the proxy back.
 */
static void check_recovered(Fixture *f)
{
    QDict *info, *ev;

    /* reconnect-ms is 200: back within a couple of seconds */
    info = wait_proxy_state(f->qts, "connected", 3000);
    ev = wait_proxy_event(f->qts, "connected");
    g_assert_cmpstr(qdict_get_str(ev, "id"), ==, "dev0");
    qobject_unref(ev);
    g_assert_false(qdict_haskey(info, "reason"));
    g_assert_cmpint(qdict_get_bool(info, "ring"), ==, f->p->ring);
    qobject_unref(info);
    check_hmp_state(f, "connected\r\n");

    g_assert_cmphex(bar0_readl(f, TESTDEV_REG_ID), ==, TESTDEV_ID);
    g_assert_cmphex(bar0_readl(f, TESTDEV_REG_SCRATCH32), ==, 0);
    bar0_writel(f, TESTDEV_REG_SCRATCH32, 0x5ca1ab1e);
    g_assert_cmphex(bar0_readl(f, TESTDEV_REG_SCRATCH32), ==, 0x5ca1ab1e);
    /* the DMA maps were given again */
    dma_check_fill(f, DMA_DST_ADDR, 0x7e57ab1e);
    /* and the interrupt eventfds */
    msix_check_delivery(f, 6);
}

/* The device failed: reads return all-ones, query and event say why. */
static void check_failed(Fixture *f)
{
    QDict *info, *ev;

    info = wait_proxy_state(f->qts, "failed", WAIT_MS);
    g_test_message("failed: %s", qdict_get_str(info, "reason"));
    g_assert_cmpstr(qdict_get_str(info, "reason"), !=, "");
    g_assert_cmpuint(qdict_get_int(info, "failures"), >=, 1);
    qobject_unref(info);
    check_hmp_state(f, "failed: ");
    ev = wait_proxy_event(f->qts, "failed");
    g_assert_cmpstr(qdict_get_str(ev, "id"), ==, "dev0");
    g_assert_cmpstr(qdict_get_str(ev, "qom-path"), ==,
                    "/machine/peripheral/dev0");
    g_assert_cmpstr(qdict_get_try_str(ev, "reason") ?: "", !=, "");
    qobject_unref(ev);

    /* while it is failed (reconnecting takes a moment) */
    if (proxy_state_is(f->qts, "failed")) {
        g_assert_cmphex(bar0_readl(f, TESTDEV_REG_ID), ==, 0xffffffff);
        g_assert_cmphex(qpci_io_readw(f->dev, f->bar1, 0), ==, 0xffff);
    }
}

/* A read that ends within the bound a failed device allows. */
static uint32_t timed_readl(Fixture *f, uint64_t off, int max_ms)
{
    gint64 t = g_get_monotonic_time();
    uint32_t v = bar0_readl(f, off);

    t = (g_get_monotonic_time() - t) / 1000;
    g_test_message("read of BAR0 + 0x%" PRIx64 " took %" PRId64 " ms", off,
                   t);
    g_assert_cmpint(t, <, max_ms);
    return v;
}

/* CPU time the QEMU process used so far in ms, -1 where unknown. */
static int64_t qemu_cpu_ms(QTestState *qts)
{
    g_autofree char *path = g_strdup_printf("/proc/%d/stat", qtest_pid(qts));
    g_autofree char *txt = NULL;
    unsigned long utime, stime;
    char *p;

    if (!g_file_get_contents(path, &txt, NULL, NULL)) {
        return -1;
    }
    /* the fields after "(comm)": utime and stime are the 12th and 13th */
    p = strrchr(txt, ')');
    if (!p || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u "
                     "%lu %lu", &utime, &stime) != 2) {
        return -1;
    }
    return (utime + stime) * 1000 / sysconf(_SC_CLK_TCK);
}

typedef struct Killer {
    GPid pid;
    int delay_ms;
} Killer;

static gpointer killer_thread(gpointer opaque)
{
    Killer *k = opaque;

    g_usleep(k->delay_ms * 1000);
    kill(k->pid, SIGKILL);
    return NULL;
}

/*
 * A read in flight when the device dies ends when the socket reports EOF
 * (the ring wait watches the socket too), well before timeout-ms=1000:
 * it is bounded at 800 ms here.
 */
static void test_peer_killed(const void *data)
{
    Fixture f;
    Killer k;
    GThread *thread;
    uint32_t v = 0;
    int i, status;

    fixture_start(&f, data, NULL, "reconnect-ms=200,timeout-ms=1000");
    msix_setup(&f);
    msix_check_delivery(&f, 6);
    dma_check_fill(&f, DMA_DST_ADDR, 0x11223344);
    bar0_writel(&f, TESTDEV_REG_SCRATCH32, 0x12345678);

    /* SIGKILL it from another thread while reads and writes go on */
    k.pid = f.td.pid;
    k.delay_ms = 50;
    thread = g_thread_new("killer", killer_thread, &k);
    for (i = 0; i < 1000000; i++) {
        int64_t cpu = qemu_cpu_ms(f.qts), wall = g_get_monotonic_time();

        bar0_writel(&f, TESTDEV_REG_MEM + (i & 0xf) * 4, i);
        v = timed_readl(&f, TESTDEV_REG_MEM + (i & 0xf) * 4, 800);
        if (v == 0xffffffff) {
            /*
             * The read that saw the device die may wait for it (up to
             * timeout-ms), but must not burn a host CPU meanwhile.
             */
            wall = (g_get_monotonic_time() - wall) / 1000;
            cpu = cpu < 0 ? 0 : qemu_cpu_ms(f.qts) - cpu;
            g_test_message("last read: %" PRId64 " ms, QEMU used %" PRId64
                           " ms of CPU", wall, cpu);
            g_assert_cmpint(cpu, <=, wall / 2 + 50);
            break;
        }
        g_assert_cmphex(v, ==, i);
    }
    g_thread_join(thread);
    g_test_message("the device died after %d reads", i);
    g_assert_cmphex(v, ==, 0xffffffff);
    status = testdev_wait(&f.td, WAIT_MS);
    g_assert_true(WIFSIGNALED(status));
    check_failed(&f);

    /* nobody listens: it stays failed, reads all-ones at once */
    g_usleep(500 * 1000);
    g_assert_true(proxy_state_is(f.qts, "failed"));
    g_assert_cmphex(timed_readl(&f, TESTDEV_REG_ID, 200), ==, 0xffffffff);

    /* a new device process on the same socket */
    testdev_start(&f.td, NULL);
    check_recovered(&f);
    fixture_stop(&f);
}

/* ---- 8. a hostile or broken device --------------------------------------- */

/*
 * Arm fault @fault and make it fire.  Faults 4-7 fire at the next
 * REGION_READ on the socket: with the ring, BAR accesses do not use the
 * socket, so a forwarded config read does it.  Returns what the
 * triggering read returned.
 */
static uint32_t fault_fire(Fixture *f, int fault)
{
    gint64 t;
    uint32_t v;

    bar0_writel(f, TESTDEV_REG_FAULT, fault);
    if (fault < TESTDEV_FAULT_GARBAGE || fault > TESTDEV_FAULT_UNEXPECTED_FD ||
        !f->p->ring) {
        /* timeout-ms is 300: the read ends soon after, whatever happens */
        return timed_readl(f, TESTDEV_REG_SCRATCH32, 800);
    }
    g_assert_cmphex(bar0_readl(f, TESTDEV_REG_ID), ==, TESTDEV_ID);
    t = g_get_monotonic_time();
    v = qpci_config_readl(f->dev, TESTDEV_CFG_VENDOR_SCRATCH);
    g_assert_cmpint(g_get_monotonic_time() - t, <, 800 * 1000);
    return v;
}

/*
 * Not checked here, a known limit: reconnecting runs in the main loop and
 * waits up to timeout-ms for a device that accepts but does not answer
 * (HANG), so QMP stalls that long on every reconnect-ms attempt.
 */
static void test_fault(const void *data)
{
    const TestParams *p = data;
    Fixture f;
    uint32_t v;
    QDict *info;

    fixture_start(&f, p, NULL, "reconnect-ms=200,timeout-ms=300");
    msix_setup(&f);
    bar0_writel(&f, TESTDEV_REG_SCRATCH32, 0xf00dface);
    qpci_config_writel(f.dev, TESTDEV_CFG_VENDOR_SCRATCH, 0x0c0ffee0);
    bar0_writel(&f, TESTDEV_REG_FAULT_ARG, 1000);

    v = fault_fire(&f, p->fault);
    g_test_message("fault %d: the read returned 0x%x", p->fault, v);
    switch (p->fault) {
    case TESTDEV_FAULT_STALL:
    case TESTDEV_FAULT_HANG:
        /* the wait was bounded by timeout-ms */
        g_assert_cmphex(v, ==, 0xffffffff);
        g_assert_cmpuint(proxy_counter(f.qts, "timeouts"), >=, 1);
        break;
    case TESTDEV_FAULT_CLOSE:
        /* on the ring the read may be served before the channel goes */
        if (!p->ring) {
            g_assert_cmphex(v, ==, 0xffffffff);
        }
        break;
    default:
        /*
         * The device died, or a reply cannot be trusted (garbage, a
         * header too large, a wrong id, an fd nobody asked for): not data.
         */
        g_assert_cmphex(v, ==, 0xffffffff);
        break;
    }
    check_failed(&f);
    info = query_proxy(f.qts);
    g_test_message("fault %d: %s", p->fault, qdict_get_str(info, "reason"));
    qobject_unref(info);

    switch (p->fault) {
    case TESTDEV_FAULT_CRASH:
        /* it aborted: a new process */
        g_assert_true(WIFSIGNALED(testdev_wait(&f.td, WAIT_MS)));
        testdev_start(&f.td, NULL);
        check_recovered(&f);
        break;
    case TESTDEV_FAULT_HANG:
        /* it takes no new client: a new process */
        testdev_signal(&f.td, SIGTERM);
        testdev_start(&f.td, NULL);
        check_recovered(&f);
        break;
    default:
        /* the same process takes the proxy back, with a new instance */
        g_assert_cmpint(kill(f.td.pid, 0), ==, 0);
        check_recovered(&f);
        g_assert_cmphex(qpci_config_readl(f.dev, TESTDEV_CFG_VENDOR_SCRATCH),
                        ==, 0);
        break;
    }
    fixture_stop(&f);
}

/* ---- 9. realize ---------------------------------------------------------- */

static void test_registered(void)
{
    g_assert_true(qtest_has_device("devvm-proxy"));
}

static void test_realize_errors(void)
{
    QTestState *qts = qtest_init("-M pc -nodefaults");
    QList *list;

    check_device_add_error(qts, "{'driver': 'devvm-proxy', 'id': 'p0'}",
                           "'socket' or 'chardev' property is required");
    check_device_add_error(qts, "{'driver': 'devvm-proxy', 'id': 'p1', "
                           "'socket': '/nonexistent/devvm.sock'}",
                           "/nonexistent/devvm.sock");
    check_device_add_error(qts, "{'driver': 'devvm-proxy', 'id': 'p2', "
                           "'socket': '/nonexistent/devvm.sock', "
                           "'timeout-ms': 0}",
                           "'timeout-ms' must be at least 1");
    /* A failed realize leaves nothing behind: the id can be used again. */
    check_device_add_error(qts, "{'driver': 'devvm-proxy', 'id': 'p0'}",
                           "'socket' or 'chardev' property is required");
    check_device_add_error(qts, "{'driver': 'devvm-proxy', 'id': 'p1', "
                           "'socket': '/nonexistent/devvm.sock'}",
                           "/nonexistent/devvm.sock");
    list = query_proxies(qts);
    g_assert_cmpint(qlist_size(list), ==, 0);
    qobject_unref(list);
    qtest_quit(qts);
}

/* A socket path nobody listens on (an existing but dead socket file). */
static void test_realize_no_listener(void)
{
    TestDev td;
    g_autofree char *args = NULL;
    QTestState *qts;

    testdev_init(&td, false);
    testdev_start(&td, NULL);
    /* SIGKILL leaves the socket file behind, with nobody listening */
    testdev_signal(&td, SIGKILL);
    g_assert_true(g_file_test(td.sock, G_FILE_TEST_EXISTS));

    qts = qtest_init("-M pc -nodefaults");
    args = g_strdup_printf("{'driver': 'devvm-proxy', 'id': 'p0', "
                           "'socket': '%s'}", td.sock);
    check_device_add_error(qts, args, td.sock);
    check_device_add_error(qts, args, "cannot connect");
    /* a device comes: the same id realizes */
    testdev_start(&td, NULL);
    qtest_qmp_device_add(qts, "devvm-proxy", "p0", "{'socket': %s}",
                         td.sock);
    g_assert_true(proxy_state_is(qts, "connected"));
    qtest_quit(qts);
    testdev_cleanup(&td);
}

/* ring=on with a device that offers no ring: the socket carries it all. */
/*
 * A device that serves no more clients (testdev --max-clients 1): a
 * second proxy's realize says so plainly.
 */
static void test_device_full(void)
{
    TestDev td;
    QTestState *qts;
    g_autofree char *args = NULL;

    testdev_init(&td, false);
    testdev_start(&td, "--max-clients 1");
    qts = qtest_initf("-M pc -nodefaults -device devvm-proxy,id=p0,socket=%s",
                      td.sock);
    args = g_strdup_printf("{'driver': 'devvm-proxy', 'id': 'p1', "
                           "'socket': '%s'}", td.sock);
    check_device_add_error(qts, args, "the device serves no more clients: "
                           "every instance of it is in use");
    /* the first one's instance is untouched */
    g_assert_true(proxy_state_is(qts, "connected"));
    qtest_quit(qts);
    testdev_cleanup(&td);
}

static void test_ring_not_offered(void)
{
    static const TestParams p = { .ring = true };
    Fixture f;
    QDict *info;

    fixture_start(&f, &p, "--no-ring", NULL);
    info = query_proxy(f.qts);
    g_assert_false(qdict_get_bool(info, "ring"));
    g_assert_cmpstr(qdict_get_str(info, "state"), ==, "connected");
    qobject_unref(info);
    g_assert_cmphex(bar0_readl(&f, TESTDEV_REG_ID), ==, TESTDEV_ID);
    bar0_writel(&f, TESTDEV_REG_SCRATCH32, 0x1234);
    g_assert_cmphex(bar0_readl(&f, TESTDEV_REG_SCRATCH32), ==, 0x1234);
    fixture_stop(&f);
}

/* An 8 GiB BAR2: a 64-bit BAR that only fits above 4 GiB. */
static void test_huge_bar(const void *data)
{
    Fixture f;
    QTestState *qts;
    uint64_t size = 8 * GiB, addr = 16 * GiB;

    fixture_start(&f, data, "-o bar2-size=8G", NULL);
    qts = f.qts;
    qpci_config_writew(f.dev, PCI_COMMAND, 0);
    g_assert_cmphex(size_bar(f.dev, PCI_BASE_ADDRESS_2), ==,
                    TESTDEV_BAR2_TYPE);
    g_assert_cmphex(size_bar(f.dev, PCI_BASE_ADDRESS_3), ==,
                    (uint32_t)(~(size - 1) >> 32));
    qpci_config_writel(f.dev, PCI_BASE_ADDRESS_2,
                       (uint32_t)addr | TESTDEV_BAR2_TYPE);
    qpci_config_writel(f.dev, PCI_BASE_ADDRESS_3, addr >> 32);
    qpci_device_enable(f.dev);

    qtest_writeq(qts, addr + 0x1000, 0x0102030405060708ull);
    qtest_writeq(qts, addr + size / 2 - 8, 0x1112131415161718ull);
    qtest_writeq(qts, addr + size / 2, 0x2122232425262728ull);
    qtest_writeq(qts, addr + size - 8, 0x3132333435363738ull);
    g_assert_cmphex(qtest_readq(qts, addr + 0x1000), ==,
                    0x0102030405060708ull);
    g_assert_cmphex(qtest_readq(qts, addr + size / 2 - 8), ==,
                    0x1112131415161718ull);
    g_assert_cmphex(qtest_readq(qts, addr + size / 2), ==,
                    0x2122232425262728ull);
    g_assert_cmphex(qtest_readq(qts, addr + size - 8), ==,
                    0x3132333435363738ull);
    g_assert_cmphex(bar0_readl(&f, TESTDEV_REG_ID), ==, TESTDEV_ID);
    fixture_stop(&f);
}

/* A 16-byte BAR0, the smallest memory BAR there is: sized and used. */
static void test_small_bar(const void *data)
{
    Fixture f;

    fixture_start(&f, data, "-o bar0-size=16", NULL);
    qpci_config_writew(f.dev, PCI_COMMAND, 0);
    g_assert_cmphex(size_bar(f.dev, PCI_BASE_ADDRESS_0), ==,
                    (uint32_t)~15u | TESTDEV_BAR0_TYPE);
    qpci_device_enable(f.dev);
    g_assert_cmphex(bar0_readl(&f, TESTDEV_REG_ID), ==, TESTDEV_ID);
    g_assert_cmphex(qpci_io_readb(f.dev, f.bar0, 0), ==, TESTDEV_ID & 0xff);
    g_assert_cmphex(qpci_io_readw(f.dev, f.bar0, 2), ==, TESTDEV_ID >> 16);
    bar0_writel(&f, TESTDEV_REG_SCRATCH32, 0xa5a55a5a);
    g_assert_cmphex(bar0_readl(&f, TESTDEV_REG_SCRATCH32), ==, 0xa5a55a5a);
    /* the last 8 bytes: SCRATCH32 and an offset that reads 0 */
    qpci_io_writeq(f.dev, f.bar0, 8, 0x0123456789abcdefull);
    g_assert_cmphex(qpci_io_readq(f.dev, f.bar0, 8), ==, 0x89abcdefull);
    g_assert_cmphex(qpci_io_readl(f.dev, f.bar0, TESTDEV_REG_VERSION), ==,
                    TESTDEV_VERSION);
    /*
     * narrow writes at the BAR's last bytes: SCRATCH32's (0x08-0x0b),
     * and 0x0c-0x0f, which read 0
     */
    check_narrow_write(f.dev, f.bar0, 8, 0, 1, 0xf0);
    check_narrow_write(f.dev, f.bar0, 8, 0, 2, 0xf0);
    check_narrow_write(f.dev, f.bar0, 8, 3, 1, 0xf0);
    check_narrow_write(f.dev, f.bar0, 8, 2, 2, 0xf0);
    check_narrow_write(f.dev, f.bar0, 8, 7, 1, 0xf0);
    check_narrow_write(f.dev, f.bar0, 8, 6, 2, 0xf0);
    g_assert_true(proxy_state_is(f.qts, "connected"));
    fixture_stop(&f);
}

/* ---- registration -------------------------------------------------------- */

/* ---- 10. the device VM fails ----------------------------------------------- */

/* the gateway answers within the proxy's timeout-ms=1000 */
#define GATEWAY_ARGS    "--timeout-ms 500 --heartbeat-ms 1000"
#define GUARD_ADDR      0x500000    /* a page the device never targets */
#define GUARD_LEN       0x2000

static void guard_set(QTestState *qts)
{
    qtest_memset(qts, GUARD_ADDR, 0xc3, GUARD_LEN);
}

/* Nothing outside what the cases target was written. */
static void guard_check(QTestState *qts)
{
    g_autofree uint8_t *buf = g_malloc(GUARD_LEN);
    int i;

    qtest_memread(qts, GUARD_ADDR, buf, GUARD_LEN);
    for (i = 0; i < GUARD_LEN; i++) {
        g_assert_cmphex(buf[i], ==, 0xc3);
    }
}

/*
 * The device comes back in a new device VM (a new generation behind the
 * same gateway socket): the proxy resumes on the gateway's EVENT, the
 * device state is fresh, DMA and MSI-X work again.
 */
static void check_vm_recovered(Fixture *f)
{
    QDict *info = wait_proxy_state(f->qts, "connected", 6 * WAIT_MS);

    g_assert_false(qdict_haskey(info, "reason"));
    qobject_unref(info);
    g_assert_cmphex(bar0_readl(f, TESTDEV_REG_ID), ==, TESTDEV_ID);
    g_assert_cmphex(bar0_readl(f, TESTDEV_REG_SCRATCH32), ==, 0);
    bar0_writel(f, TESTDEV_REG_SCRATCH32, 0x5ca1ab1e);
    g_assert_cmphex(bar0_readl(f, TESTDEV_REG_SCRATCH32), ==, 0x5ca1ab1e);
    dma_check_fill(f, DMA_DST_ADDR, 0x7e57ab1e);
    msix_check_delivery(f, 6);
    guard_check(f->qts);
}

/* DMA outside the client's DMA maps: refused, memory untouched. */
static void test_vm_dma_unmapped(const void *data)
{
    Fixture f;

    fixture_start(&f, data, NULL, NULL);
    guard_set(f.qts);
    g_assert_cmpuint(dma_run(&f, TESTDEV_DMA_FILL, 0,
                             (uint64_t)RAM_MB * MiB + 0x1000, 64, 0), ==,
                     TESTDEV_DMA_EFAULT);
    g_assert_cmpuint(dma_run(&f, TESTDEV_DMA_COPY, 0x100000000ull,
                             GUARD_ADDR, 64, 0), ==, TESTDEV_DMA_EFAULT);
    guard_check(f.qts);
    dma_check_fill(&f, DMA_DST_ADDR, 0x01020304);
    fixture_stop(&f);
}

/* SIGKILL the device VM under traffic; start another one. */
static void test_vm_killed(const void *data)
{
    Fixture f;
    Killer k;
    GThread *thread;
    uint32_t v = 0;
    int i;

    fixture_start(&f, data, GATEWAY_ARGS, "timeout-ms=1000");
    msix_setup(&f);
    msix_check_delivery(&f, 6);
    guard_set(f.qts);
    dma_check_fill(&f, DMA_DST_ADDR, 0x11223344);

    k.pid = f.td.vm_pid;
    k.delay_ms = 200;
    thread = g_thread_new("killer", killer_thread, &k);
    for (i = 0; i < 1000000; i++) {
        bar0_writel(&f, TESTDEV_REG_MEM + (i & 0xf) * 4, i);
        v = timed_readl(&f, TESTDEV_REG_MEM + (i & 0xf) * 4, 2500);
        if (v == 0xffffffff) {
            break;
        }
        g_assert_cmphex(v, ==, i);
    }
    g_thread_join(thread);
    g_test_message("the device VM died after %d reads", i);
    g_assert_cmpint(waitpid(f.td.vm_pid, NULL, 0), ==, f.td.vm_pid);
    f.td.vm_pid = 0;
    check_failed(&f);
    g_assert_cmphex(timed_readl(&f, TESTDEV_REG_ID, 200), ==, 0xffffffff);
    guard_check(f.qts);

    device_vm_start(&f.td, NULL, false);
    check_vm_recovered(&f);
    fixture_stop(&f);
}

/* A second client VM of the same device, with one proxy at 00:04.0. */
static void second_client_start(Fixture *c, const Fixture *f)
{
    memset(c, 0, sizeof(*c));
    c->p = f->p;
    c->qts = qtest_initf("-M pc -nodefaults -m %dM -device devvm-proxy,"
                         "id=dev0,addr=%02x.0,socket=%s,ring=%s", RAM_MB,
                         DEV_SLOT, f->td.sock, f->p->ring ? "on" : "off");
    c->bus = qpci_new_pc(c->qts, NULL);
    c->dev = qpci_device_find(c->bus, DEV_DEVFN);
    g_assert_nonnull(c->dev);
    qpci_device_enable(c->dev);
    c->bar0 = qpci_iomap(c->dev, 0, NULL);
}

static void second_client_stop(Fixture *c)
{
    g_free(c->dev);
    qpci_free_pc(c->bus);
    qtest_quit(c->qts);
}

#define LONG_STALL_MS   10000

/*
 * The device stalls one access for LONG_STALL_MS, longer than the
 * proxy's timeout-ms (5 s) and the gateway's own (2 s).  The stalled
 * client's read fails (ring: at the proxy's timeout, and the proxy
 * reconnects; socket: at the gateway's, with an error reply), but once
 * the device VM answers again it works by itself; a second client, idle
 * meanwhile, is untouched; and a new client can still connect.
 */
static void test_vm_long_stall(const void *data)
{
    Fixture f, b;
    gint64 t0;
    uint32_t v;

    fixture_start(&f, data, NULL, NULL);
    second_client_start(&b, &f);
    g_assert_cmphex(bar0_readl(&f, TESTDEV_REG_ID), ==, TESTDEV_ID);
    g_assert_cmphex(bar0_readl(&b, TESTDEV_REG_ID), ==, TESTDEV_ID);
    bar0_writel(&b, TESTDEV_REG_SCRATCH32, 0xb0b0b0b0);

    bar0_writel(&f, TESTDEV_REG_FAULT_ARG, LONG_STALL_MS);
    bar0_writel(&f, TESTDEV_REG_FAULT, TESTDEV_FAULT_STALL);
    t0 = g_get_monotonic_time();
    v = bar0_readl(&f, TESTDEV_REG_ID);
    g_test_message("the stalled read returned 0x%x after %" PRId64 " ms", v,
                   (g_get_monotonic_time() - t0) / 1000);
    g_assert_cmphex(v, ==, 0xffffffff);
    if (f.p->ring) {
        /* its own timeout: it closes the connection, and reconnects */
        g_assert_false(proxy_state_is(f.qts, "connected"));
    }

    /* the device answers again: the stalled client comes back */
    while (g_get_monotonic_time() < t0 + LONG_STALL_MS * 1000) {
        g_usleep(100 * 1000);
    }
    qobject_unref(wait_proxy_state(f.qts, "connected", 4 * WAIT_MS));
    g_test_message("the stalled client was back %" PRId64 " ms after the "
                   "stall ended", (g_get_monotonic_time() - t0) / 1000 -
                   LONG_STALL_MS);
    g_assert_cmphex(bar0_readl(&f, TESTDEV_REG_ID), ==, TESTDEV_ID);

    /* the other client never noticed */
    g_assert_true(proxy_state_is(b.qts, "connected"));
    g_assert_cmpuint(proxy_counter(b.qts, "failures"), ==, 0);
    g_assert_cmphex(bar0_readl(&b, TESTDEV_REG_ID), ==, TESTDEV_ID);
    g_assert_cmphex(bar0_readl(&b, TESTDEV_REG_SCRATCH32), ==, 0xb0b0b0b0);

    /* and a new client realizes */
    qtest_qmp_device_add(b.qts, "devvm-proxy", "dev1",
                         "{'addr': '05.0', 'socket': %s}", f.td.sock);
    second_client_stop(&b);
    fixture_stop(&f);
}

/* A guest exception in the runtime, or a hang: FAILED, then a new VM. */
static void test_vm_fault(const void *data)
{
    const TestParams *p = data;
    Fixture f;
    QDict *info;
    const char *reason;

    fixture_start(&f, p, GATEWAY_ARGS, "timeout-ms=1000");
    msix_setup(&f);
    guard_set(f.qts);
    bar0_writel(&f, TESTDEV_REG_FAULT, p->fault);
    info = wait_proxy_state(f.qts, "failed", 6 * WAIT_MS);
    reason = qdict_get_str(info, "reason");
    g_test_message("fault %d: %s", p->fault, reason);
    g_assert_nonnull(strstr(reason, p->fault == TESTDEV_FAULT_CRASH ?
                            "exception" : "heartbeat"));
    qobject_unref(info);
    g_assert_cmphex(timed_readl(&f, TESTDEV_REG_ID, 1500), ==, 0xffffffff);
    guard_check(f.qts);

    /* the runtime is halted, its QEMU still up: replace it */
    g_assert_cmpint(waitpid(f.td.vm_pid, NULL, WNOHANG), ==, 0);
    device_vm_kill(&f.td, SIGKILL);
    device_vm_start(&f.td, NULL, false);
    check_vm_recovered(&f);
    fixture_stop(&f);
}

/* The gateway dies: the proxy reconnects to a new gateway and device VM. */
static void test_vm_gateway_killed(const void *data)
{
    Fixture f;

    fixture_start(&f, data, GATEWAY_ARGS,
                  "reconnect-ms=200,timeout-ms=1000");
    msix_setup(&f);
    guard_set(f.qts);
    testdev_signal(&f.td, SIGKILL);
    check_failed(&f);
    guard_check(f.qts);
    /* its device VM lost its memory with it */
    device_vm_kill(&f.td, SIGKILL);
    gateway_start(&f.td, GATEWAY_ARGS);
    device_vm_start(&f.td, NULL, true);
    check_recovered(&f);
    guard_check(f.qts);
    fixture_stop(&f);
}

/* ---- 11. chardev= instead of socket= ----------------------------------- */

/*
 * Through a socket chardev: the device as it is with socket=, its DMA
 * requests and interrupts too (the proxy reads its own dup of the
 * chardev's socket; the chardev reads nothing).
 */
static void test_chardev(const void *data)
{
    Fixture f;
    QDict *info;

    fixture_start(&f, data, NULL, NULL);
    g_assert_cmphex(qpci_config_readw(f.dev, PCI_VENDOR_ID), ==,
                    TESTDEV_VENDOR_ID);
    g_assert_cmphex(qpci_config_readw(f.dev, PCI_DEVICE_ID), ==,
                    TESTDEV_DEVICE_ID);
    g_assert_cmphex(qpci_config_readl(f.dev, TESTDEV_CFG_VENDOR_MAGIC), ==,
                    TESTDEV_VENDOR_MAGIC);
    g_assert_cmphex(bar0_readl(&f, TESTDEV_REG_ID), ==, TESTDEV_ID);
    bar0_writel(&f, TESTDEV_REG_SCRATCH32, 0xc0ffee);
    g_assert_cmphex(bar0_readl(&f, TESTDEV_REG_SCRATCH32), ==, 0xc0ffee);
    dma_check_fill(&f, DMA_DST_ADDR, 0x0badcafe);
    msix_setup(&f);
    msix_check_delivery(&f, 1);

    /* the peer is the chardev's path */
    info = query_proxy(f.qts);
    g_assert_cmpstr(qdict_get_str(info, "socket"), ==, f.td.sock);
    g_assert_cmpstr(qdict_get_str(info, "state"), ==, "connected");
    g_assert_cmpint(qdict_get_bool(info, "ring"), ==, f.p->ring);
    qobject_unref(info);
    fixture_stop(&f);
}

/*
 * The device process killed and restarted: the chardev (reconnect-ms=200)
 * connects again and the proxy takes the new connection; its own
 * reconnect-ms (0 here: never) does not apply.
 */
static void test_chardev_killed(const void *data)
{
    Fixture f;
    QDict *info;

    fixture_start(&f, data, NULL, "reconnect-ms=0,timeout-ms=1000");
    msix_setup(&f);
    msix_check_delivery(&f, 6);
    dma_check_fill(&f, DMA_DST_ADDR, 0x11223344);
    bar0_writel(&f, TESTDEV_REG_SCRATCH32, 0x12345678);

    testdev_signal(&f.td, SIGKILL);
    check_failed(&f);

    /* nobody listens: the chardev keeps trying, the device stays failed */
    g_usleep(500 * 1000);
    g_assert_true(proxy_state_is(f.qts, "failed"));
    g_assert_cmphex(timed_readl(&f, TESTDEV_REG_ID, 200), ==, 0xffffffff);
    info = query_proxy(f.qts);
    g_assert_cmpstr(qdict_get_str(info, "socket"), ==, f.td.sock);
    g_assert_cmpuint(qdict_get_int(info, "failures"), ==, 1);
    qobject_unref(info);

    /* a new device process on the same socket */
    testdev_start(&f.td, NULL);
    check_recovered(&f);
    g_assert_cmpuint(proxy_counter(f.qts, "failures"), ==, 1);
    fixture_stop(&f);
}

/* Realize errors particular to chardev=, with no device running. */
static void test_chardev_realize_errors(void)
{
    QTestState *qts = qtest_init("-M pc -nodefaults -chardev null,id=n0 "
                                 "-chardev socket,id=t0,host=127.0.0.1,"
                                 "port=0,server=on,wait=off");
    QList *list;

    check_device_add_error(qts, "{'driver': 'devvm-proxy', 'id': 'p0', "
                           "'socket': '/nonexistent/devvm.sock', "
                           "'chardev': 'n0'}",
                           "'socket' and 'chardev' exclude each other");
    check_device_add_error(qts, "{'driver': 'devvm-proxy', 'id': 'p0', "
                           "'chardev': 'n0'}",
                           "chardev 'n0' is a chardev-null, not a socket");
    check_device_add_error(qts, "{'driver': 'devvm-proxy', 'id': 'p0', "
                           "'chardev': 't0'}",
                           "chardev 't0' is not a UNIX socket");
    check_device_add_error(qts, "{'driver': 'devvm-proxy', 'id': 'p0', "
                           "'chardev': 'nonexistent'}", "nonexistent");
    /* the failed realizes let go of the chardevs */
    chardev_remove(qts, "n0");
    chardev_remove(qts, "t0");
    list = query_proxies(qts);
    g_assert_cmpint(qlist_size(list), ==, 0);
    qobject_unref(list);
    qtest_quit(qts);
}

/* Wait until chardev @id reports its connection gone. */
static void wait_chardev_disconnected(QTestState *qts, const char *id)
{
    gint64 deadline = g_get_monotonic_time() + WAIT_MS * 1000;

    for (;;) {
        QDict *resp = qtest_qmp(qts, "{'execute': 'query-chardev'}");
        QList *list = qdict_get_qlist(resp, "return");
        const QListEntry *e;
        bool done = false;

        QLIST_FOREACH_ENTRY(list, e) {
            QDict *c = qobject_to(QDict, qlist_entry_obj(e));

            if (!strcmp(qdict_get_str(c, "label"), id)) {
                done = g_str_has_prefix(qdict_get_str(c, "filename"),
                                        "disconnected:");
            }
        }
        qobject_unref(resp);
        if (done) {
            return;
        }
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_usleep(20 * 1000);
    }
}

/*
 * A chardev whose device went away before the proxy came, and that does
 * not reconnect: realize fails; once a device listens, it connects again.
 */
static void test_chardev_no_listener(void)
{
    TestDev td;
    QTestState *qts;

    testdev_init(&td, false);
    testdev_start(&td, NULL);
    qts = qtest_initf("-M pc -nodefaults -chardev socket,id=c0,path=%s",
                      td.sock);
    testdev_signal(&td, SIGKILL);
    wait_chardev_disconnected(qts, "c0");

    check_device_add_error(qts, "{'driver': 'devvm-proxy', 'id': 'p0', "
                           "'chardev': 'c0'}", "chardev 'c0' cannot connect");
    /* a device comes: the same id realizes, on a new connection */
    testdev_start(&td, NULL);
    qtest_qmp_device_add(qts, "devvm-proxy", "p0", "{'chardev': 'c0'}");
    g_assert_true(proxy_state_is(qts, "connected"));
    qtest_quit(qts);
    testdev_cleanup(&td);
}

/* ---- 10. KVM: interrupts delivered by the kernel ------------------------ */

/*
 * A 64 KiB -bios image in a temporary file (its path, to unlink): real
 * mode @code at 0xff00, and at the reset vector (0xfff0) a jump to it.
 */
static char *bios_create(const uint8_t *code, size_t len)
{
    static const uint8_t reset[] = { 0xe9, 0x0d, 0xff }; /* jmp 0xff00 */
    g_autofree uint8_t *img = g_malloc0(64 * KiB);
    g_autoptr(GError) err = NULL;
    char *path = NULL;
    int fd;

    g_assert_cmpuint(len, <=, 0xfff0 - 0xff00);
    memcpy(img + 0xff00, code, len);
    memcpy(img + 0xfff0, reset, sizeof(reset));
    fd = g_file_open_tmp("devvm-bios-XXXXXX", &path, &err);
    g_assert_no_error(err);
    g_assert_cmpint(write(fd, img, 64 * KiB), ==, 64 * KiB);
    close(fd);
    return path;
}

/*
 * The firmware of the KVM cases, a 64 KiB image for -bios: at the reset
 * vector, switch the local APIC to x2APIC mode (MSRs, so real mode will
 * do), software-enable it, and halt with interrupts off.  Interrupts then
 * stay in the APIC's IRR, where "info lapic" shows them.  The vCPU runs
 * a dozen instructions, so a slow KVM does not matter.
 */
static char *kvm_bios_create(void)
{
    static const uint8_t code[] = {
        0x66, 0xb9, 0x1b, 0x00, 0x00, 0x00,     /* mov ecx, 0x1b (APIC_BASE) */
        0x0f, 0x32,                             /* rdmsr */
        0x66, 0x0d, 0x00, 0x0c, 0x00, 0x00,     /* or eax, 0xc00 (EN|EXTD) */
        0x0f, 0x30,                             /* wrmsr */
        0x66, 0xb9, 0x0f, 0x08, 0x00, 0x00,     /* mov ecx, 0x80f (SVR) */
        0x66, 0xb8, 0xff, 0x01, 0x00, 0x00,     /* mov eax, 0x1ff */
        0x66, 0x31, 0xd2,                       /* xor edx, edx */
        0x0f, 0x30,                             /* wrmsr */
        0xfa,                                   /* 1: cli */
        0xf4,                                   /* hlt */
        0xeb, 0xfc,                             /* jmp 1b */
    };

    return bios_create(code, sizeof(code));
}

#define KVM_MSI_ADDR        0xfee00000u /* to APIC 0, physical, fixed */
#define KVM_VEC_MSIX        0x40        /* + n for MSI-X vector n */
#define KVM_VEC_MSI         0x60        /* + n for MSI vector n */

/* Whether vector @vec is in the IRR of the guest's local APIC. */
static bool kvm_irr_has(QTestState *qts, unsigned vec)
{
    g_autofree char *out = qtest_hmp(qts, "info lapic");
    g_autofree char *want = g_strdup_printf(" %u ", vec);
    const char *irr = strstr(out, "\nIRR\t");
    const char *end;

    g_assert_nonnull(irr);
    end = strchr(irr + 1, '\n');
    g_assert_nonnull(end);
    return g_strstr_len(irr + 4, end - irr - 4 + 1, want) != NULL;
}

static void kvm_wait_irr(QTestState *qts, unsigned vec)
{
    gint64 deadline = g_get_monotonic_time() + WAIT_MS * 1000;

    while (!kvm_irr_has(qts, vec)) {
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_usleep(1000);
    }
}

/* Start a KVM case: skipped without KVM; waits for the firmware. */
static bool kvm_fixture_start(Fixture *f, const void *data,
                              const char *td_args, const char *props)
{
    gint64 deadline;
    char *out;

    if (!qtest_has_accel("kvm")) {
        g_test_skip("KVM is not available here");
        return false;
    }
    fixture_start(f, data, td_args, props);
    /* generous: the vCPU may run a thousand times slower than natively */
    deadline = g_get_monotonic_time() + 60 * G_USEC_PER_SEC;
    for (;;) {
        out = qtest_hmp(f->qts, "info lapic");
        if (strstr(out, "APIC enabled")) {
            break;
        }
        g_free(out);
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_usleep(10 * 1000);
    }
    g_free(out);
    return true;
}

/*
 * Signal MSI-X vector @n, masked: QEMU sees it and keeps it pending.
 * Unmask it with APIC vector @vec: the guest gets it.
 */
static void kvm_msix_masked(Fixture *f, int n, unsigned vec)
{
    uint64_t irqs = proxy_counter(f->qts, "irqs");

    bar0_writel(f, TESTDEV_REG_MSIX, n);
    wait_counter_above(f->qts, "irqs", irqs);
    g_assert_true(qpci_msix_pending(f->dev, n));
    g_assert_false(kvm_irr_has(f->qts, vec));
    msix_set_vector(f, n, KVM_MSI_ADDR, vec, false);
    kvm_wait_irr(f->qts, vec);
    g_assert_false(qpci_msix_pending(f->dev, n));
}

/*
 * MSI-X under KVM: an unmasked vector is a KVM irqfd, so the device's
 * signal reaches the guest's APIC without QEMU seeing it (the proxy's
 * irqs counter does not move); a masked one comes back to QEMU, which
 * keeps its pending bit and delivers it on unmask.  With kvm-irqfd=off
 * QEMU delivers every one (the reference).
 */
static void test_kvm_msix(const void *data)
{
    const TestParams *p = data;
    bool irqfd = !p->no_irqfd;
    Fixture f;
    uint64_t irqs;
    uint32_t count;
    int i;

    if (!kvm_fixture_start(&f, data, NULL,
                           irqfd ? NULL : "kvm-irqfd=off")) {
        return;
    }
    g_assert_cmpuint(proxy_counter(f.qts, "kvm-irqfds"), ==, 0);
    qpci_msix_enable(f.dev);
    for (i = 0; i < TESTDEV_MSIX_VECTORS; i++) {
        msix_set_vector(&f, i, KVM_MSI_ADDR, KVM_VEC_MSIX + i, i == 5);
    }
    g_assert_cmpuint(proxy_counter(f.qts, "kvm-irqfds"), ==,
                     irqfd ? TESTDEV_MSIX_VECTORS - 1 : 0);

    irqs = proxy_counter(f.qts, "irqs");
    count = bar0_readl(&f, TESTDEV_REG_IRQ_COUNT);
    for (i = 0; i < TESTDEV_MSIX_VECTORS; i++) {
        if (i != 5) {
            g_assert_false(kvm_irr_has(f.qts, KVM_VEC_MSIX + i));
            bar0_writel(&f, TESTDEV_REG_MSIX, i);
            kvm_wait_irr(f.qts, KVM_VEC_MSIX + i);
        }
    }
    g_assert_cmpuint(bar0_readl(&f, TESTDEV_REG_IRQ_COUNT), ==,
                     count + TESTDEV_MSIX_VECTORS - 1);
    g_assert_cmpuint(proxy_counter(f.qts, "irqs"), ==,
                     irqfd ? irqs : irqs + TESTDEV_MSIX_VECTORS - 1);

    kvm_msix_masked(&f, 5, KVM_VEC_MSIX + 5);
    g_assert_cmpuint(proxy_counter(f.qts, "kvm-irqfds"), ==,
                     irqfd ? TESTDEV_MSIX_VECTORS : 0);

    /* the same for a vector the kernel had, with new data on unmask */
    msix_set_vector(&f, 0, KVM_MSI_ADDR, KVM_VEC_MSIX + 0x10, true);
    g_assert_cmpuint(proxy_counter(f.qts, "kvm-irqfds"), ==,
                     irqfd ? TESTDEV_MSIX_VECTORS - 1 : 0);
    kvm_msix_masked(&f, 0, KVM_VEC_MSIX + 0x10);
    irqs = proxy_counter(f.qts, "irqs");
    bar0_writel(&f, TESTDEV_REG_MSIX, 1);
    bar0_writel(&f, TESTDEV_REG_MSIX, 0);
    g_assert_cmpuint(bar0_readl(&f, TESTDEV_REG_ID), ==, TESTDEV_ID);
    if (irqfd) {
        g_assert_cmpuint(proxy_counter(f.qts, "irqs"), ==, irqs);
    } else {
        wait_counter_above(f.qts, "irqs", irqs + 1);
    }

    /* MSI-X off: every vector back to QEMU */
    qpci_msix_disable(f.dev);
    g_assert_cmpuint(proxy_counter(f.qts, "kvm-irqfds"), ==, 0);
    irqs = proxy_counter(f.qts, "irqs");
    bar0_writel(&f, TESTDEV_REG_MSIX, 0);
    wait_counter_above(f.qts, "irqs", irqs);

    /* on again, then a reset leaves no vector with the kernel */
    qpci_msix_enable(f.dev);
    g_assert_cmpuint(proxy_counter(f.qts, "kvm-irqfds"), ==,
                     irqfd ? TESTDEV_MSIX_VECTORS : 0);
    qtest_system_reset(f.qts);
    g_assert_cmpuint(proxy_counter(f.qts, "kvm-irqfds"), ==, 0);
    fixture_stop(&f);
}

/*
 * MSI under KVM, 4 vectors: the enabled and unmasked ones are irqfds, a
 * vector the guest did not enable is dropped, a disabled MSI goes back to
 * QEMU.
 */
static void test_kvm_msi(const void *data)
{
    Fixture f;
    QPCIDevice *dev;
    uint8_t cap;
    uint16_t flags;
    uint64_t irqs;

    if (!kvm_fixture_start(&f, data, "-o msi-vectors=4", NULL)) {
        return;
    }
    dev = f.dev;
    cap = qpci_find_capability(dev, PCI_CAP_ID_MSI, 0);
    flags = qpci_config_readw(dev, cap + PCI_MSI_FLAGS) & ~PCI_MSI_FLAGS_QSIZE;
    qpci_config_writel(dev, cap + PCI_MSI_ADDRESS_LO, KVM_MSI_ADDR);
    qpci_config_writel(dev, cap + PCI_MSI_ADDRESS_HI, 0);
    qpci_config_writew(dev, cap + PCI_MSI_DATA_64, KVM_VEC_MSI);
    g_assert_cmpuint(proxy_counter(f.qts, "kvm-irqfds"), ==, 0);

    /* one vector enabled: vector 0 by the kernel, vector 3 dropped */
    qpci_config_writew(dev, cap + PCI_MSI_FLAGS, flags | PCI_MSI_FLAGS_ENABLE);
    g_assert_cmpuint(proxy_counter(f.qts, "kvm-irqfds"), ==, 1);
    irqs = proxy_counter(f.qts, "irqs");
    bar0_writel(&f, TESTDEV_REG_MSI_VECTOR, 0);
    kvm_wait_irr(f.qts, KVM_VEC_MSI);
    g_assert_cmpuint(proxy_counter(f.qts, "irqs"), ==, irqs);
    bar0_writel(&f, TESTDEV_REG_MSI_VECTOR, 3);
    wait_counter_above(f.qts, "irqs", irqs);
    g_assert_false(kvm_irr_has(f.qts, KVM_VEC_MSI + 3));

    /* four: vector 3 by the kernel too, with its number in the data */
    qpci_config_writew(dev, cap + PCI_MSI_FLAGS,
                       flags | (2 << 4) | PCI_MSI_FLAGS_ENABLE);
    g_assert_cmpuint(proxy_counter(f.qts, "kvm-irqfds"), ==, 4);
    irqs = proxy_counter(f.qts, "irqs");
    bar0_writel(&f, TESTDEV_REG_MSI_VECTOR, 3);
    kvm_wait_irr(f.qts, KVM_VEC_MSI + 3);
    g_assert_cmpuint(proxy_counter(f.qts, "irqs"), ==, irqs);

    /* new data moves the routes: vector 2 lands at its new vector */
    qpci_config_writew(dev, cap + PCI_MSI_DATA_64, KVM_VEC_MSI + 0x10);
    bar0_writel(&f, TESTDEV_REG_MSI_VECTOR, 2);
    kvm_wait_irr(f.qts, KVM_VEC_MSI + 0x12);
    g_assert_false(kvm_irr_has(f.qts, KVM_VEC_MSI + 2));

    /* disabled: QEMU sees the signal and drops it */
    qpci_config_writew(dev, cap + PCI_MSI_FLAGS, flags);
    g_assert_cmpuint(proxy_counter(f.qts, "kvm-irqfds"), ==, 0);
    irqs = proxy_counter(f.qts, "irqs");
    bar0_writel(&f, TESTDEV_REG_MSI_VECTOR, 1);
    wait_counter_above(f.qts, "irqs", irqs);
    g_assert_false(kvm_irr_has(f.qts, KVM_VEC_MSI + 0x11));

    /* a reset turns MSI off, and takes its vectors back */
    qpci_config_writew(dev, cap + PCI_MSI_FLAGS, flags | PCI_MSI_FLAGS_ENABLE);
    g_assert_cmpuint(proxy_counter(f.qts, "kvm-irqfds"), ==, 1);
    qtest_system_reset(f.qts);
    g_assert_cmpuint(proxy_counter(f.qts, "kvm-irqfds"), ==, 0);
    fixture_stop(&f);
}

/* ---- 11. a BAR access that waits does not hold the BQL ------------------ */

/*
 * A 2-vCPU guest whose firmware (the -bios image below, real mode) starts
 * the second vCPU and then reads BAR0, placed at 0xa0000 where real mode
 * reaches it (i440fx routes the legacy VGA window to PCI), in a loop.
 * The second vCPU counts in guest RAM, without I/O.
 */
#define BQL_BAR0_ADDR       0xa0000u
#define BQL_AP_CODE         0x8000u     /* SIPI vector 0x08 */
#define BQL_AP_COUNT        0x9000u     /* the second vCPU's loops */
#define BQL_BSP_COUNT       0x9004u     /* BAR0 reads that completed */
#define BQL_STALL_MS        3000
#define BQL_QMP_MAX_US      (100 * 1000)

/*
 * At the reset vector: x2APIC on (MSRs work in real mode), INIT and
 * SIPI to APIC 1, then read BAR0's ID forever, counting the reads.
 */
static char *bql_bios_create(void)
{
    static const uint8_t code[] = {
        0x66, 0xb9, 0x1b, 0x00, 0x00, 0x00,     /* mov ecx, 0x1b (APIC_BASE) */
        0x0f, 0x32,                             /* rdmsr */
        0x66, 0x0d, 0x00, 0x0c, 0x00, 0x00,     /* or eax, 0xc00 (EN|EXTD) */
        0x0f, 0x30,                             /* wrmsr */
        0x66, 0xb9, 0x30, 0x08, 0x00, 0x00,     /* mov ecx, 0x830 (ICR) */
        0x66, 0xba, 0x01, 0x00, 0x00, 0x00,     /* mov edx, 1 (APIC 1) */
        0x66, 0xb8, 0x00, 0x45, 0x00, 0x00,     /* mov eax, 0x4500 (INIT) */
        0x0f, 0x30,                             /* wrmsr */
        0x66, 0xb8, 0x08, 0x46, 0x00, 0x00,     /* mov eax, 0x4608 (SIPI 8) */
        0x0f, 0x30,                             /* wrmsr */
        0x31, 0xc0,                             /* xor ax, ax */
        0x8e, 0xc0,                             /* mov es, ax */
        0xb8, 0x00, 0xa0,                       /* mov ax, 0xa000 */
        0x8e, 0xd8,                             /* mov ds, ax */
        0x66, 0xa1, 0x00, 0x00,                 /* 1: mov eax, [0] (ID) */
        0x26, 0x66, 0xff, 0x06, 0x04, 0x90,     /* inc dword es:[0x9004] */
        0xeb, 0xf4,                             /* jmp 1b */
    };

    return bios_create(code, sizeof(code));
}

/*
 * One vCPU's BAR0 read waits BQL_STALL_MS for the device (testdev's
 * STALL): meanwhile QMP answers within BQL_QMP_MAX_US and the other
 * vCPU keeps running, because the proxy's BAR regions are lockless and
 * the accelerator honours that (patch 0007 for TCG, which took the BQL
 * around every MMIO access).  Afterwards the read completes and the
 * guest goes on reading.
 */
static void test_bql(const void *data)
{
    const TestParams *p = data;
    /* at 0x8000: count at 0x9000 forever */
    static const uint8_t ap_code[] = {
        0x31, 0xc0,                             /* xor ax, ax */
        0x8e, 0xd8,                             /* mov ds, ax */
        0x66, 0xff, 0x06, 0x00, 0x90,           /* 1: inc dword [0x9000] */
        0xeb, 0xf9,                             /* jmp 1b */
    };
    Fixture f;
    QTestState *qts;
    uint32_t ap, bsp;
    gint64 start, deadline, slowest = 0;
    int i;

    if (p->kvm && !qtest_has_accel("kvm")) {
        g_test_skip("KVM is not available here");
        return;
    }
    fixture_start(&f, data, NULL, NULL);
    qts = f.qts;
    /* BAR0 where real mode reaches it; memory decoding is on */
    qpci_config_writel(f.dev, PCI_BASE_ADDRESS_0, BQL_BAR0_ADDR);
    g_assert_cmphex(qtest_readl(qts, BQL_BAR0_ADDR + TESTDEV_REG_ID), ==,
                    TESTDEV_ID);
    qtest_memwrite(qts, BQL_AP_CODE, ap_code, sizeof(ap_code));
    qtest_writel(qts, BQL_AP_COUNT, 0);
    qtest_writel(qts, BQL_BSP_COUNT, 0);
    /* the guest's first read will wait */
    qtest_writel(qts, BQL_BAR0_ADDR + TESTDEV_REG_FAULT_ARG, BQL_STALL_MS);
    qtest_writel(qts, BQL_BAR0_ADDR + TESTDEV_REG_FAULT, TESTDEV_FAULT_STALL);

    start = g_get_monotonic_time();
    qtest_qmp_assert_success(qts, "{'execute': 'cont'}");
    /*
     * From now on, until the read has waited BQL_STALL_MS: every qtest
     * and QMP command answers within BQL_QMP_MAX_US (they need the BQL),
     * and the second vCPU counts.  First it starts: the first vCPU sent
     * its SIPI just before the read.
     */
    deadline = start + WAIT_MS * 1000;
    ap = 0;
    while (!ap) {
        gint64 t0 = g_get_monotonic_time();

        ap = qtest_readl(qts, BQL_AP_COUNT);
        slowest = MAX(slowest, g_get_monotonic_time() - t0);
        g_assert_cmpint(slowest, <, BQL_QMP_MAX_US);
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_usleep(1000);
    }
    for (i = 0; i < 10; i++) {
        gint64 t0;
        QDict *resp;
        uint32_t now;

        g_usleep(50 * 1000);
        t0 = g_get_monotonic_time();
        resp = qtest_qmp(qts, "{'execute': 'query-status'}");
        slowest = MAX(slowest, g_get_monotonic_time() - t0);
        g_assert_true(qdict_haskey(resp, "return"));
        qobject_unref(resp);
        g_assert_cmpint(slowest, <, BQL_QMP_MAX_US);
        t0 = g_get_monotonic_time();
        now = qtest_readl(qts, BQL_AP_COUNT);
        slowest = MAX(slowest, g_get_monotonic_time() - t0);
        g_assert_cmpint(slowest, <, BQL_QMP_MAX_US);
        g_assert_cmpuint(now, >, ap);
        ap = now;
    }
    g_test_message("QMP and qtest commands took at most %" PRId64 " us "
                   "while a vCPU's read waited", slowest);
    /* all of that while the read waited */
    bsp = qtest_readl(qts, BQL_BSP_COUNT);
    g_assert_cmpint(g_get_monotonic_time() - start, <,
                    BQL_STALL_MS * 1000);
    g_assert_cmpuint(bsp, ==, 0);
    /* the read completes, and the guest reads on */
    deadline = start + (BQL_STALL_MS + WAIT_MS) * 1000;
    while (qtest_readl(qts, BQL_BSP_COUNT) < 2) {
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_usleep(10 * 1000);
    }
    g_assert_true(proxy_state_is(qts, "connected"));
    fixture_stop(&f);
}

static const TestParams bql_tcg_ring = { .ring = true, .bql = true,
                                         .tcg = true };
static const TestParams bql_tcg_socket = { .ring = false, .bql = true,
                                           .tcg = true };
static const TestParams bql_kvm_ring = { .ring = true, .bql = true,
                                         .kvm = true };

static const TestParams kvm_ring_on = { .ring = true, .kvm = true };
static const TestParams kvm_ring_off = { .ring = false, .kvm = true };
static const TestParams kvm_no_irqfd = {
    .ring = true, .kvm = true, .no_irqfd = true
};

static const TestParams ring_on = { .ring = true };
static const TestParams ring_off = { .ring = false };
static const TestParams ring_on_memfd = { .ring = true, .memfd = true };
static const TestParams ring_off_memfd = { .ring = false, .memfd = true };

static const char *const fault_names[] = {
    [TESTDEV_FAULT_STALL] = "stall",
    [TESTDEV_FAULT_HANG] = "hang",
    [TESTDEV_FAULT_CRASH] = "crash",
    [TESTDEV_FAULT_GARBAGE] = "garbage",
    [TESTDEV_FAULT_HUGE_SIZE] = "huge-size",
    [TESTDEV_FAULT_WRONG_ID] = "wrong-id",
    [TESTDEV_FAULT_UNEXPECTED_FD] = "unexpected-fd",
    [TESTDEV_FAULT_CLOSE] = "close",
};

/* Register @fn as /devvm-proxy/@name/ring and /devvm-proxy/@name/socket. */
static void add_both(const char *name, void (*fn)(const void *))
{
    g_autofree char *on = g_strdup_printf("/devvm-proxy/%s/ring", name);
    g_autofree char *off = g_strdup_printf("/devvm-proxy/%s/socket", name);

    qtest_add_data_func(on, &ring_on, fn);
    qtest_add_data_func(off, &ring_off, fn);
}

/* chardev=, with the chardev reconnecting every 200 ms */
#define CHARDEV_RECONNECT   ",reconnect-ms=200"

static const TestParams chr_ring_on = { .ring = true, .chardev = "" };
static const TestParams chr_ring_off = { .ring = false, .chardev = "" };
static const TestParams chr_killed_ring_memfd = {
    .ring = true, .memfd = true, .chardev = CHARDEV_RECONNECT,
};
static const TestParams chr_killed_socket_ram = {
    .ring = false, .chardev = CHARDEV_RECONNECT,
};
/* a timeout and a protocol error: the proxy drops the connection */
static const TestParams chr_stall_ring = {
    .ring = true, .fault = TESTDEV_FAULT_STALL, .chardev = CHARDEV_RECONNECT,
};
static const TestParams chr_garbage_socket = {
    .ring = false, .fault = TESTDEV_FAULT_GARBAGE,
    .chardev = CHARDEV_RECONNECT,
};

static void add_chardev_tests(void)
{
    qtest_add_func("/devvm-proxy/chardev/no-listener",
                   test_chardev_no_listener);
    qtest_add_data_func("/devvm-proxy/chardev/ring", &chr_ring_on,
                        test_chardev);
    qtest_add_data_func("/devvm-proxy/chardev/socket", &chr_ring_off,
                        test_chardev);
    qtest_add_data_func("/devvm-proxy/chardev/hotplug/pc/ring", &chr_ring_on,
                        test_hotplug_pc);
    qtest_add_data_func("/devvm-proxy/chardev/hotplug/pc/socket",
                        &chr_ring_off, test_hotplug_pc);
    qtest_add_data_func("/devvm-proxy/chardev/peer-killed/ring/memfd",
                        &chr_killed_ring_memfd, test_chardev_killed);
    qtest_add_data_func("/devvm-proxy/chardev/peer-killed/socket/ram",
                        &chr_killed_socket_ram, test_chardev_killed);
    qtest_add_data_func("/devvm-proxy/chardev/fault/stall/ring",
                        &chr_stall_ring, test_fault);
    qtest_add_data_func("/devvm-proxy/chardev/fault/garbage/socket",
                        &chr_garbage_socket, test_fault);
}

static void add_fault_tests(void)
{
    int fault;

    for (fault = TESTDEV_FAULT_STALL; fault <= TESTDEV_FAULT_CLOSE;
         fault++) {
        int ring;

        for (ring = 0; ring < 2; ring++) {
            TestParams *p = g_new0(TestParams, 1);
            g_autofree char *path = NULL;

            p->ring = ring;
            p->fault = fault;
            path = g_strdup_printf("/devvm-proxy/fault/%s/%s",
                                   fault_names[fault],
                                   ring ? "ring" : "socket");
            qtest_add_data_func_full(path, p, test_fault, g_free);
        }
    }
}

static const TestParams vm_ring_on = { .vm = true, .ring = true };
static const TestParams vm_ring_off = { .vm = true, .ring = false };
static const TestParams vm_ring_on_memfd = {
    .vm = true, .ring = true, .memfd = true,
};
static const TestParams vm_ring_off_memfd = {
    .vm = true, .ring = false, .memfd = true,
};
static const TestParams vm_ring_gw_events = {
    .vm = true, .ring = true, .gw_events = true,
};
static const TestParams vm_ring_gw_events_memfd = {
    .vm = true, .ring = true, .memfd = true, .gw_events = true,
};
static const TestParams vm_crash = {
    .vm = true, .ring = true, .memfd = true, .fault = TESTDEV_FAULT_CRASH,
};
static const TestParams vm_hang = {
    .vm = true, .ring = false, .memfd = true, .fault = TESTDEV_FAULT_HANG,
};

/* /devvm-proxy/vm/@name/ring and .../socket, the device in a device VM */
static void add_vm_both(const char *name, void (*fn)(const void *))
{
    g_autofree char *on = g_strdup_printf("/devvm-proxy/vm/%s/ring", name);
    g_autofree char *off = g_strdup_printf("/devvm-proxy/vm/%s/socket", name);

    qtest_add_data_func(on, &vm_ring_on, fn);
    qtest_add_data_func(off, &vm_ring_off, fn);
}

/*
 * The same device as a device VM behind devvm-gateway: the functional
 * cases, then what is specific to device VMs.
 */
static void add_vm_tests(void)
{
    add_vm_both("config", test_config);
    add_vm_both("bar-access", test_bar_access);
    add_vm_both("msix", test_msix);
    add_vm_both("msi", test_msi);
    add_vm_both("intx", test_intx);
    add_vm_both("reset", test_reset);
    /* the ring, with the device's events relayed by the gateway */
    qtest_add_data_func("/devvm-proxy/vm/msix/ring-gateway-events",
                        &vm_ring_gw_events, test_msix);
    qtest_add_data_func("/devvm-proxy/vm/intx/ring-gateway-events",
                        &vm_ring_gw_events, test_intx);
    qtest_add_data_func("/devvm-proxy/vm/dma/ring-gateway-events/memfd",
                        &vm_ring_gw_events_memfd, test_dma);
    qtest_add_data_func("/devvm-proxy/vm/dma/ring-gateway-events/ram",
                        &vm_ring_gw_events, test_dma);
    if (qtest_has_machine("q35") && qtest_has_device("pcie-root-port")) {
        add_vm_both("pcie", test_pcie);
    }
    qtest_add_data_func("/devvm-proxy/vm/dma/ring/memfd", &vm_ring_on_memfd,
                        test_dma);
    qtest_add_data_func("/devvm-proxy/vm/dma/socket/memfd",
                        &vm_ring_off_memfd, test_dma);
    qtest_add_data_func("/devvm-proxy/vm/dma/ring/ram", &vm_ring_on,
                        test_dma);
    qtest_add_data_func("/devvm-proxy/vm/dma/socket/ram", &vm_ring_off,
                        test_dma);
    qtest_add_data_func("/devvm-proxy/vm/dma-unmapped/memfd",
                        &vm_ring_on_memfd, test_vm_dma_unmapped);
    qtest_add_data_func("/devvm-proxy/vm/dma-unmapped/ram", &vm_ring_off,
                        test_vm_dma_unmapped);
    qtest_add_data_func("/devvm-proxy/vm/killed/ring/memfd",
                        &vm_ring_on_memfd, test_vm_killed);
    qtest_add_data_func("/devvm-proxy/vm/killed/socket/ram", &vm_ring_off,
                        test_vm_killed);
    qtest_add_data_func("/devvm-proxy/vm/fault/crash", &vm_crash,
                        test_vm_fault);
    qtest_add_data_func("/devvm-proxy/vm/fault/hang", &vm_hang,
                        test_vm_fault);
    qtest_add_data_func("/devvm-proxy/vm/gateway-killed", &vm_ring_on_memfd,
                        test_vm_gateway_killed);
    qtest_add_data_func("/devvm-proxy/vm/long-stall/ring", &vm_ring_on,
                        test_vm_long_stall);
    qtest_add_data_func("/devvm-proxy/vm/long-stall/socket", &vm_ring_off,
                        test_vm_long_stall);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);

    qtest_add_func("/devvm-proxy/registered", test_registered);
    if (!qtest_has_machine("pc")) {
        return g_test_run();
    }
    qtest_add_func("/devvm-proxy/realize-errors", test_realize_errors);
    qtest_add_func("/devvm-proxy/chardev/realize-errors",
                   test_chardev_realize_errors);
    if (!testdev_binary()) {
        g_test_message("QTEST_DEVVM_TESTDEV is not set: only the cases "
                       "without a device run");
        return g_test_run();
    }
    qtest_add_func("/devvm-proxy/realize-no-listener",
                   test_realize_no_listener);
    qtest_add_func("/devvm-proxy/ring-not-offered", test_ring_not_offered);
    qtest_add_func("/devvm-proxy/device-full", test_device_full);
    add_both("config", test_config);
    add_both("bar-access", test_bar_access);
    add_both("huge-bar", test_huge_bar);
    add_both("small-bar", test_small_bar);
    add_both("msix", test_msix);
    add_both("msi", test_msi);
    add_both("msi-vectors", test_msi_vectors);
    qtest_add_data_func("/devvm-proxy/kvm/msix/ring", &kvm_ring_on,
                        test_kvm_msix);
    qtest_add_data_func("/devvm-proxy/kvm/msix/socket", &kvm_ring_off,
                        test_kvm_msix);
    qtest_add_data_func("/devvm-proxy/kvm/msix/kvm-irqfd-off", &kvm_no_irqfd,
                        test_kvm_msix);
    qtest_add_data_func("/devvm-proxy/tcg/bql-free-read/ring",
                        &bql_tcg_ring, test_bql);
    qtest_add_data_func("/devvm-proxy/tcg/bql-free-read/socket",
                        &bql_tcg_socket, test_bql);
    qtest_add_data_func("/devvm-proxy/kvm/bql-free-read/ring",
                        &bql_kvm_ring, test_bql);
    qtest_add_data_func("/devvm-proxy/kvm/msi/ring", &kvm_ring_on,
                        test_kvm_msi);
    add_both("intx", test_intx);
    qtest_add_data_func("/devvm-proxy/dma/ring/memfd", &ring_on_memfd,
                        test_dma);
    qtest_add_data_func("/devvm-proxy/dma/socket/memfd", &ring_off_memfd,
                        test_dma);
    qtest_add_data_func("/devvm-proxy/dma/ring/ram", &ring_on, test_dma);
    qtest_add_data_func("/devvm-proxy/dma/socket/ram", &ring_off, test_dma);
    add_both("reset", test_reset);
    add_both("hotplug/pc", test_hotplug_pc);
    if (qtest_has_machine("q35") && qtest_has_device("pcie-root-port")) {
        add_both("hotplug/q35", test_hotplug_q35);
        add_both("pcie", test_pcie);
        add_both("pcie-conventional", test_pcie_conventional);
        add_both("pcie-root-bus", test_pcie_root_bus);
        if (qtest_has_device("pcie-pci-bridge")) {
            add_both("pcie-behind-bridge", test_pcie_behind_bridge);
        }
    }
    qtest_add_data_func("/devvm-proxy/peer-killed/ring/memfd", &ring_on_memfd,
                        test_peer_killed);
    qtest_add_data_func("/devvm-proxy/peer-killed/socket/memfd",
                        &ring_off_memfd, test_peer_killed);
    qtest_add_data_func("/devvm-proxy/peer-killed/ring/ram", &ring_on,
                        test_peer_killed);
    qtest_add_data_func("/devvm-proxy/peer-killed/socket/ram", &ring_off,
                        test_peer_killed);
    add_fault_tests();
    add_chardev_tests();
    if (gateway_binary() && testdev_vm_image()) {
        add_vm_tests();
    } else {
        g_test_message("QTEST_DEVVM_GATEWAY or QTEST_DEVVM_TESTDEV_VM is "
                       "not set: no device VM cases");
    }
    return g_test_run();
}
