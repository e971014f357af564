/*
 * QTest for devvm-dma-window (docs/devvm/dma-window.rst), written from
 * the document: this test plays the gateway on the device's socket and
 * the device VM's runtime through qtest memory accesses.
 *
 * Checked: the HELLO and the table header; a client range placed in the
 * window is the client's memory itself (reads and writes, both ways),
 * read-only when the client allows no writes; every malformed MAP and
 * UNMAP is refused with its errno and changes nothing; an UNMAP clears
 * the entry and bumps EPOCH at once but is answered (and the range taken
 * out) only at ACK, or at ack-timeout-ms; writes to the table other than
 * ACK change nothing; when the gateway goes, every range goes.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "libqtest.h"
#include "libqos/pci.h"
#include "libqos/pci-pc.h"
#include "hw/pci/pci_regs.h"
#include "qemu/bswap.h"
#include "qemu/units.h"
#include "qobject/qdict.h"

/* the document's constants, on purpose not the implementation's header */
#define WIN_DEVFN           QPCI_DEVFN(4, 0)
#define WIN_VENDOR          0x1af4
#define WIN_DEVICE          0x10f0
#define WIN_SIZE            (16 * MiB)
#define MSG_SIZE            48
#define OP_HELLO            1
#define OP_MAP              2
#define OP_UNMAP            3
#define OP_REPLY            4
#define F_VALID             1
#define F_WRITE             2
#define REG_MAGIC           0x00
#define REG_VERSION         0x04
#define REG_SIZE            0x08
#define REG_SEQ             0x10
#define REG_EPOCH           0x14
#define REG_ACK             0x18
#define REG_SLOTS           0x1c
#define TABLE               0x40
#define ENTRY               32

typedef struct Fixture {
    char *dir, *path;
    int lfd, fd;
    QTestState *qts;
    QPCIBus *bus;
    QPCIDevice *dev;
    QPCIBar table, win;
    uint64_t win_addr;
    uint32_t next_id;
} Fixture;

typedef struct Msg {
    uint32_t op, flags, id, instance;
    uint64_t offset, size, iova, fd_offset;
} Msg;

static void msg_encode(const Msg *m, uint8_t *b)
{
    stl_le_p(b + 0x00, m->op);
    stl_le_p(b + 0x04, m->flags);
    stl_le_p(b + 0x08, m->id);
    stl_le_p(b + 0x0c, m->instance);
    stq_le_p(b + 0x10, m->offset);
    stq_le_p(b + 0x18, m->size);
    stq_le_p(b + 0x20, m->iova);
    stq_le_p(b + 0x28, m->fd_offset);
}

/* One message from the device within @ms; false when none came. */
static bool msg_recv(Fixture *f, Msg *m, int ms)
{
    uint8_t b[MSG_SIZE];
    struct pollfd p = { .fd = f->fd, .events = POLLIN };
    size_t got = 0;

    while (got < sizeof(b)) {
        ssize_t n;

        if (poll(&p, 1, ms) <= 0) {
            return false;
        }
        n = recv(f->fd, b + got, sizeof(b) - got, 0);
        g_assert_cmpint(n, >, 0);
        got += n;
    }
    m->op = ldl_le_p(b + 0x00);
    m->flags = ldl_le_p(b + 0x04);
    m->id = ldl_le_p(b + 0x08);
    m->instance = ldl_le_p(b + 0x0c);
    m->offset = ldq_le_p(b + 0x10);
    m->size = ldq_le_p(b + 0x18);
    m->iova = ldq_le_p(b + 0x20);
    m->fd_offset = ldq_le_p(b + 0x28);
    return true;
}

static void msg_send(Fixture *f, Msg *m, int fd)
{
    uint8_t b[MSG_SIZE];
    struct iovec iov = { .iov_base = b, .iov_len = sizeof(b) };
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int))];
    } c = { 0 };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

    m->id = ++f->next_id;
    msg_encode(m, b);
    if (fd >= 0) {
        mh.msg_control = c.buf;
        mh.msg_controllen = sizeof(c.buf);
        CMSG_FIRSTHDR(&mh)->cmsg_level = SOL_SOCKET;
        CMSG_FIRSTHDR(&mh)->cmsg_type = SCM_RIGHTS;
        CMSG_FIRSTHDR(&mh)->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(CMSG_FIRSTHDR(&mh)), &fd, sizeof(int));
    }
    g_assert_cmpint(sendmsg(f->fd, &mh, 0), ==, sizeof(b));
}

/* A request and its reply's errno. */
static int request(Fixture *f, Msg *m, int fd)
{
    Msg r;

    msg_send(f, m, fd);
    g_assert_true(msg_recv(f, &r, 5000));
    g_assert_cmpuint(r.op, ==, OP_REPLY);
    g_assert_cmpuint(r.id, ==, m->id);
    return r.instance;
}

/* A memfd of @size bytes, byte i = i * 7 + @seed */
static int client_memory(size_t size, uint8_t seed)
{
    g_autofree uint8_t *b = g_malloc(size);
    int fd = memfd_create("client-ram", MFD_CLOEXEC);
    size_t i;

    g_assert_cmpint(fd, >=, 0);
    for (i = 0; i < size; i++) {
        b[i] = i * 7 + seed;
    }
    g_assert_cmpint(pwrite(fd, b, size, 0), ==, size);
    return fd;
}

static uint8_t fd_byte(int fd, off_t off)
{
    uint8_t v;

    g_assert_cmpint(pread(fd, &v, 1, off), ==, 1);
    return v;
}

static uint32_t tbl32(Fixture *f, uint64_t off)
{
    return qpci_io_readl(f->dev, f->table, off);
}

static uint64_t tbl64(Fixture *f, uint64_t off)
{
    return qpci_io_readq(f->dev, f->table, off);
}

static void fixture_start(Fixture *f, const char *props)
{
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    Msg hello;

    f->dir = g_dir_make_tmp("devvm-win-XXXXXX", NULL);
    f->path = g_strdup_printf("%s/dma.sock", f->dir);
    g_strlcpy(a.sun_path, f->path, sizeof(a.sun_path));
    f->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    g_assert_cmpint(bind(f->lfd, (struct sockaddr *)&a, sizeof(a)), ==, 0);
    g_assert_cmpint(listen(f->lfd, 1), ==, 0);
    f->qts = qtest_initf("-M pc -nodefaults -chardev socket,id=dmaw,path=%s "
                         "-device devvm-dma-window,chardev=dmaw,addr=4.0,"
                         "size=%llu%s%s", f->path,
                         (unsigned long long)WIN_SIZE, props ? "," : "",
                         props ?: "");
    f->fd = accept4(f->lfd, NULL, NULL, SOCK_CLOEXEC);
    g_assert_cmpint(f->fd, >=, 0);
    g_assert_true(msg_recv(f, &hello, 5000));
    g_assert_cmpuint(hello.op, ==, OP_HELLO);
    g_assert_cmpuint(hello.offset, ==, WIN_SIZE);
    g_assert_cmpuint(hello.size, ==, 128);
    g_assert_cmpuint(hello.fd_offset, ==, 1);

    f->bus = qpci_new_pc(f->qts, NULL);
    f->dev = qpci_device_find(f->bus, WIN_DEVFN);
    g_assert_nonnull(f->dev);
    g_assert_cmphex(qpci_config_readw(f->dev, PCI_VENDOR_ID), ==,
                    WIN_VENDOR);
    g_assert_cmphex(qpci_config_readw(f->dev, PCI_DEVICE_ID), ==,
                    WIN_DEVICE);
    qpci_device_enable(f->dev);
    f->table = qpci_iomap(f->dev, 0, NULL);
    f->win = qpci_iomap(f->dev, 2, NULL);
    f->win_addr = f->win.addr;
}

static void fixture_stop(Fixture *f)
{
    g_free(f->dev);
    qpci_free_pc(f->bus);
    qtest_quit(f->qts);
    if (f->fd >= 0) {
        close(f->fd);
    }
    close(f->lfd);
    unlink(f->path);
    rmdir(f->dir);
    g_free(f->path);
    g_free(f->dir);
}

static Msg map_msg(uint64_t offset, uint64_t size, uint64_t iova,
                   uint32_t instance, bool write)
{
    return (Msg) {
        .op = OP_MAP, .flags = write ? F_WRITE : 0, .instance = instance,
        .offset = offset, .size = size, .iova = iova,
    };
}

static void test_header(void)
{
    Fixture f = { 0 };

    fixture_start(&f, NULL);
    g_assert_cmphex(tbl32(&f, REG_MAGIC), ==, 0x57445644);
    g_assert_cmpuint(tbl32(&f, REG_VERSION), ==, 1);
    g_assert_cmpuint(tbl64(&f, REG_SIZE), ==, WIN_SIZE);
    g_assert_cmpuint(tbl32(&f, REG_SLOTS), ==, 128);
    g_assert_cmpuint(tbl32(&f, REG_SEQ), ==, 0);
    g_assert_cmpuint(tbl32(&f, REG_EPOCH), ==, 0);
    /* nothing is in the window yet */
    g_assert_cmpuint(tbl32(&f, TABLE + 0x1c), ==, 0);
    fixture_stop(&f);
}

static void test_map(void)
{
    Fixture f = { 0 };
    int fd = client_memory(256 * KiB, 3), ro = client_memory(64 * KiB, 9);
    Msg m = map_msg(1 * MiB, 64 * KiB, 0x50000000, 3, true);
    uint8_t buf[16];
    unsigned i;

    fixture_start(&f, NULL);
    /* 64 KiB of the client memory from offset 128 KiB */
    m.fd_offset = 128 * KiB;
    g_assert_cmpint(request(&f, &m, fd), ==, 0);
    g_assert_cmpuint(tbl32(&f, REG_SEQ), ==, 2);
    g_assert_cmphex(tbl64(&f, TABLE + 0x00), ==, 0x50000000);
    g_assert_cmphex(tbl64(&f, TABLE + 0x08), ==, 64 * KiB);
    g_assert_cmphex(tbl64(&f, TABLE + 0x10), ==, 1 * MiB);
    g_assert_cmpuint(tbl32(&f, TABLE + 0x18), ==, 3);
    g_assert_cmpuint(tbl32(&f, TABLE + 0x1c), ==, F_VALID | F_WRITE);

    /* the window is the client's memory: reads ... */
    qtest_memread(f.qts, f.win_addr + 1 * MiB + 100, buf, sizeof(buf));
    for (i = 0; i < sizeof(buf); i++) {
        g_assert_cmpuint(buf[i], ==, (uint8_t)((128 * KiB + 100 + i) * 7 +
                                               3));
    }
    /* ... and writes land in it, and client writes show at once */
    qpci_io_writel(f.dev, f.win, 1 * MiB + 8, 0xa5a5a5a5);
    g_assert_cmpuint(fd_byte(fd, 128 * KiB + 8), ==, 0xa5);
    g_assert_cmpint(pwrite(fd, "\x42", 1, 128 * KiB + 64 * KiB - 1), ==, 1);
    g_assert_cmpuint(qpci_io_readb(f.dev, f.win, 1 * MiB + 64 * KiB - 1),
                     ==, 0x42);
    /* outside the range: nothing of the client */
    qpci_io_writeb(f.dev, f.win, 1 * MiB + 64 * KiB, 0xcc);
    g_assert_cmpuint(fd_byte(fd, 128 * KiB + 64 * KiB), ==,
                     (uint8_t)((192 * KiB) * 7 + 3));

    /* read-only for a client that allows no writes */
    m = map_msg(4 * MiB, 64 * KiB, 0x60000000, 1, false);
    g_assert_cmpint(request(&f, &m, ro), ==, 0);
    g_assert_cmpuint(tbl32(&f, TABLE + ENTRY + 0x1c), ==, F_VALID);
    g_assert_cmpuint(qpci_io_readb(f.dev, f.win, 4 * MiB + 1), ==, 16);
    qpci_io_writeb(f.dev, f.win, 4 * MiB + 1, 0xee);
    g_assert_cmpuint(fd_byte(ro, 1), ==, 16);
    fixture_stop(&f);
    close(fd);
    close(ro);
}

static void test_refused(void)
{
    Fixture f = { 0 };
    int fd = client_memory(64 * KiB, 1);
    Msg m;

    fixture_start(&f, NULL);
    m = map_msg(1 * MiB, 64 * KiB, 0, 0, true);
    g_assert_cmpint(request(&f, &m, fd), ==, 0);

    m = map_msg(2 * MiB + 1, 4 * KiB, 0, 0, true);
    g_assert_cmpint(request(&f, &m, fd), ==, EINVAL);   /* misaligned */
    m = map_msg(2 * MiB, 4 * KiB + 100, 0, 0, true);
    g_assert_cmpint(request(&f, &m, fd), ==, EINVAL);
    m = map_msg(WIN_SIZE - 4 * KiB, 8 * KiB, 0, 0, true);
    g_assert_cmpint(request(&f, &m, fd), ==, EINVAL);   /* past the end */
    m = map_msg(2 * MiB, 0, 0, 0, true);
    g_assert_cmpint(request(&f, &m, fd), ==, EINVAL);   /* empty */
    m = map_msg(2 * MiB, 4 * KiB, UINT64_MAX - 100, 0, true);
    g_assert_cmpint(request(&f, &m, fd), ==, EINVAL);   /* iova wraps */
    m = map_msg(1 * MiB + 60 * KiB, 8 * KiB, 0, 0, true);
    g_assert_cmpint(request(&f, &m, fd), ==, EEXIST);   /* overlaps */
    m = map_msg(2 * MiB, 4 * KiB, 0, 0, true);
    g_assert_cmpint(request(&f, &m, -1), ==, EBADF);    /* no fd */
    m = map_msg(2 * MiB, 128 * KiB, 0, 0, true);
    g_assert_cmpint(request(&f, &m, fd), ==, EIO);      /* fd too short */
    m = (Msg) { .op = 99 };
    g_assert_cmpint(request(&f, &m, -1), ==, EOPNOTSUPP);
    m = (Msg) { .op = OP_UNMAP, .offset = 2 * MiB, .size = 4 * KiB };
    g_assert_cmpint(request(&f, &m, -1), ==, ENOENT);
    m = (Msg) { .op = OP_UNMAP, .offset = 1 * MiB, .size = 4 * KiB };
    g_assert_cmpint(request(&f, &m, -1), ==, ENOENT);   /* not the range */

    /* nothing changed: one entry, still mapped; the table is read-only */
    g_assert_cmpuint(tbl32(&f, REG_SEQ), ==, 2);
    g_assert_cmpuint(tbl32(&f, TABLE + ENTRY + 0x1c), ==, 0);
    qpci_io_writel(f.dev, f.table, REG_EPOCH, 77);
    qpci_io_writel(f.dev, f.table, TABLE + 0x10, 0);
    g_assert_cmpuint(tbl32(&f, REG_EPOCH), ==, 0);
    g_assert_cmphex(tbl64(&f, TABLE + 0x10), ==, 1 * MiB);
    g_assert_cmpuint(qpci_io_readb(f.dev, f.win, 1 * MiB + 2), ==, 15);
    fixture_stop(&f);
    close(fd);
}

static void test_unmap_ack(void)
{
    Fixture f = { 0 };
    int fd = client_memory(64 * KiB, 5);
    Msg m = map_msg(0, 64 * KiB, 0x1000, 0, true), r;

    fixture_start(&f, NULL);
    g_assert_cmpint(request(&f, &m, fd), ==, 0);
    m = (Msg) { .op = OP_UNMAP, .offset = 0, .size = 64 * KiB };
    msg_send(&f, &m, -1);
    /* taken out of the table at once, answered only at ACK */
    g_assert_false(msg_recv(&f, &r, 300));
    g_assert_cmpuint(tbl32(&f, TABLE + 0x1c), ==, 0);
    g_assert_cmpuint(tbl32(&f, REG_EPOCH), ==, 1);
    g_assert_cmpuint(tbl32(&f, REG_SEQ), ==, 4);
    /* until then the runtime may still finish a copy */
    g_assert_cmpuint(qpci_io_readb(f.dev, f.win, 0), ==, 5);
    qpci_io_writel(f.dev, f.table, REG_ACK, 0);     /* an older epoch */
    g_assert_false(msg_recv(&f, &r, 100));
    qpci_io_writel(f.dev, f.table, REG_ACK, 1);
    g_assert_true(msg_recv(&f, &r, 5000));
    g_assert_cmpuint(r.op, ==, OP_REPLY);
    g_assert_cmpuint(r.id, ==, m.id);
    g_assert_cmpuint(r.instance, ==, 0);
    g_assert_cmpuint(tbl32(&f, REG_ACK), ==, 1);
    /* out: the client's memory is no longer reachable */
    qpci_io_writeb(f.dev, f.win, 0, 0xcc);
    g_assert_cmpuint(fd_byte(fd, 0), ==, 5);
    g_assert_cmpuint(qpci_io_readb(f.dev, f.win, 1), !=, 12);
    /* and the place can be used again */
    m = map_msg(0, 64 * KiB, 0x1000, 0, true);
    g_assert_cmpint(request(&f, &m, fd), ==, 0);
    fixture_stop(&f);
    close(fd);
}

static void test_unmap_timeout(void)
{
    Fixture f = { 0 };
    int fd = client_memory(64 * KiB, 5);
    Msg m = map_msg(0, 64 * KiB, 0x1000, 0, true), r;
    gint64 start;

    fixture_start(&f, "ack-timeout-ms=300");
    g_assert_cmpint(request(&f, &m, fd), ==, 0);
    m = (Msg) { .op = OP_UNMAP, .offset = 0, .size = 64 * KiB };
    start = g_get_monotonic_time();
    msg_send(&f, &m, -1);
    /* a device VM that never ACKs does not keep client memory */
    g_assert_true(msg_recv(&f, &r, 10000));
    g_assert_cmpint(g_get_monotonic_time() - start, >=, 250 * 1000);
    g_assert_cmpuint(r.id, ==, m.id);
    g_assert_cmpuint(r.instance, ==, 0);
    qpci_io_writeb(f.dev, f.win, 0, 0xcc);
    g_assert_cmpuint(fd_byte(fd, 0), ==, 5);
    fixture_stop(&f);
    close(fd);
}

static void test_gateway_gone(void)
{
    Fixture f = { 0 };
    int fd = client_memory(64 * KiB, 5);
    Msg m = map_msg(2 * MiB, 64 * KiB, 0x1000, 2, true);

    fixture_start(&f, NULL);
    g_assert_cmpint(request(&f, &m, fd), ==, 0);
    m = map_msg(4 * MiB, 64 * KiB, 0x2000000, 2, true);
    g_assert_cmpint(request(&f, &m, fd), ==, 0);
    g_assert_cmpuint(qpci_io_readb(f.dev, f.win, 2 * MiB), ==, 5);
    close(f.fd);
    f.fd = -1;
    /* the CLOSED event: every range out, both entries cleared */
    for (int i = 0; i < 100 && tbl32(&f, TABLE + 0x1c); i++) {
        g_usleep(10 * 1000);
    }
    g_assert_cmpuint(tbl32(&f, TABLE + 0x1c), ==, 0);
    g_assert_cmpuint(tbl32(&f, TABLE + ENTRY + 0x1c), ==, 0);
    g_assert_cmpuint(tbl32(&f, REG_EPOCH), ==, 2);
    qpci_io_writeb(f.dev, f.win, 2 * MiB, 0xcc);
    qpci_io_writeb(f.dev, f.win, 4 * MiB, 0xcc);
    g_assert_cmpuint(fd_byte(fd, 0), ==, 5);
    fixture_stop(&f);
    close(fd);
}

static void test_no_hotplug(void)
{
    QTestState *qts = qtest_init("-M pc -nodefaults");
    QDict *r = qtest_qmp(qts, "{'execute': 'device_add', 'arguments': "
                         "{'driver': 'devvm-dma-window'}}");

    /* it is part of a device VM's command line, never plugged later */
    g_assert_true(qdict_haskey(r, "error"));
    qobject_unref(r);
    qtest_quit(qts);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    qtest_add_func("/devvm-dma-window/header", test_header);
    qtest_add_func("/devvm-dma-window/map", test_map);
    qtest_add_func("/devvm-dma-window/refused", test_refused);
    qtest_add_func("/devvm-dma-window/unmap-ack", test_unmap_ack);
    qtest_add_func("/devvm-dma-window/unmap-timeout", test_unmap_timeout);
    qtest_add_func("/devvm-dma-window/gateway-gone", test_gateway_gone);
    qtest_add_func("/devvm-dma-window/no-hotplug", test_no_hotplug);
    return g_test_run();
}
