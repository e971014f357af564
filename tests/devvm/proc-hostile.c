/*
 * TAP test: a process-mode device (devvm-testdev) against a hostile
 * client's DMA_MAP fds.
 *
 * The server maps the fds clients pass in DMA_MAP to do the device's DMA
 * itself.  An fd that is shorter than the range it is offered for, or
 * that the client shrinks afterwards, would turn the device's next DMA
 * into SIGBUS and take every other client of the process down with it.
 * This program is two clients on one devvm-testdev: a sound one, and one
 * that offers a 4 KiB memfd as 1 MiB, shrinks a mapped memfd, and offers
 * a pipe.  The device must refuse or route each safely, stay up, and
 * keep serving the sound client.
 *
 *   proc-hostile DEVVM-TESTDEV
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "libdevvm/client.h"
#include "libdevvm/le.h"
#include "sealed-memfd.h"
#include "tap.h"
#include "testdev.h"

#define CONFIG_REGION   7
#define PCI_COMMAND     0x04
#define RAM_ADDR        0x10000
#define RAM_SIZE        0x10000
#define HANDSHAKE_MS    500         /* --handshake-ms */
#define HANDSHAKE_MS_STR "500"

static char dir[64], sock_path[96];
static pid_t dev_pid;

static void stop_device(void)
{
    if (dev_pid > 0) {
        kill(dev_pid, SIGKILL);
        waitpid(dev_pid, NULL, 0);
        dev_pid = 0;
    }
}

static int device_alive(void)
{
    return dev_pid > 0 && waitpid(dev_pid, NULL, WNOHANG) == 0;
}

/* Start devvm-testdev on sock_path and wait for its "ready" line. */
static int start_device(const char *prog)
{
    int out[2];
    char buf[16] = "";
    struct pollfd pfd;
    ssize_t n;

    if (pipe2(out, O_CLOEXEC) < 0) {
        return -1;
    }
    dev_pid = fork();
    if (dev_pid == 0) {
        dup2(out[1], 1);
        execl(prog, prog, "--socket", sock_path, "--max-clients", "3",
              "--handshake-ms", HANDSHAKE_MS_STR, (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    pfd.fd = out[0];
    pfd.events = POLLIN;
    n = poll(&pfd, 1, 5000) == 1 ? read(out[0], buf, sizeof(buf) - 1) : -1;
    close(out[0]);
    return n > 0 && !strncmp(buf, "ready", 5) ? 0 : -1;
}

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait at most @ms for EOF on @fd; 1 when the peer closed it. */
static int wait_eof(int fd, int ms)
{
    struct pollfd pfd = { .fd = fd, .events = POLLIN };
    char b;

    return poll(&pfd, 1, ms) == 1 && read(fd, &b, 1) == 0;
}

static int client_connect(struct devvm_client *c,
                          const struct devvm_client_ops *ops, void *opaque)
{
    struct devvm_caps want;
    int fd = devvm_sock_connect(sock_path);

    if (fd < 0) {
        return fd;
    }
    devvm_client_init(c, fd, 5000, ops, opaque);
    devvm_caps_default(&want);
    want.max_msg_fds = DEVVM_MAX_FDS;
    want.max_data_xfer_size = DEVVM_MAX_XFER;
    want.max_dma_maps = DEVVM_MAX_DMA_MAPS;
    return devvm_client_negotiate(c, &want);
}

static int reg_write(struct devvm_client *c, uint32_t region, uint64_t off,
                     uint64_t v, unsigned size)
{
    uint8_t b[8];

    devvm_st64(b, v);
    return devvm_client_region_write(c, region, off, b, size, 0);
}

static uint32_t reg_read32(struct devvm_client *c, uint64_t off)
{
    uint8_t b[4] = { 0 };

    devvm_client_region_read(c, 0, off, b, 4);
    return devvm_ld32(b);
}

/* FILL 16 bytes at @dst with a pattern; DMA_STATUS (or ~0 on error). */
static uint32_t fill(struct devvm_client *c, uint64_t dst)
{
    if (reg_write(c, 0, TESTDEV_REG_DMA_DST, dst, 8) ||
        reg_write(c, 0, TESTDEV_REG_DMA_LEN, 16, 4) ||
        reg_write(c, 0, TESTDEV_REG_DMA_PATTERN, 0xc3c3c3c3, 4) ||
        reg_write(c, 0, TESTDEV_REG_DMA_CMD, TESTDEV_DMA_FILL, 4)) {
        return ~0u;
    }
    return reg_read32(c, TESTDEV_REG_DMA_STATUS);
}

static unsigned refused;

static int refuse_dma_read(void *opaque, uint64_t addr, void *buf,
                           uint64_t len)
{
    refused++;
    return -EFAULT;
}

static int refuse_dma_write(void *opaque, uint64_t addr, const void *buf,
                            uint64_t len)
{
    refused++;
    return -EFAULT;
}

static const struct devvm_client_ops refusing_ops = {
    .dma_read = refuse_dma_read,
    .dma_write = refuse_dma_write,
};

int main(int argc, char **argv)
{
    struct devvm_client good, bad;
    struct devvm_dma_map map = {
        .argsz = 32, .flags = DEVVM_DMA_F_READ | DEVVM_DMA_F_WRITE,
        .addr = RAM_ADDR, .size = RAM_SIZE,
    };
    uint8_t *ram;
    int fd, ret, pfd[2];
    uint32_t status;

    if (argc != 2) {
        fprintf(stderr, "usage: proc-hostile DEVVM-TESTDEV\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    snprintf(dir, sizeof(dir), "/tmp/proc-hostile-XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(sock_path, sizeof(sock_path), "%s/device.sock", dir);
    TAP_EQ(start_device(argv[1]), 0, "devvm-testdev is ready");

    /* the sound client: sealed RAM, mapped by the device */
    TAP_EQ(client_connect(&good, NULL, NULL), 0, "a sound client");
    fd = sealed_memfd("good-ram", RAM_SIZE);
    ram = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    memset(ram, 0x5a, RAM_SIZE);
    TAP_EQ(devvm_client_dma_map(&good, &map, fd), 0,
           "... maps 64 KiB of sealed memfd RAM");
    close(fd);
    reg_write(&good, CONFIG_REGION, PCI_COMMAND, 0x6, 2);
    TAP_CHECK(fill(&good, RAM_ADDR + 0x100) == 0 && ram[0x100] == 0xc3 &&
              ram[0x10f] == 0xc3 && ram[0x110] == 0x5a,
              "... and the device fills 16 bytes of it");

    /* the hostile one */
    TAP_EQ(client_connect(&bad, &refusing_ops, NULL), 0, "a hostile client");
    reg_write(&bad, CONFIG_REGION, PCI_COMMAND, 0x6, 2);
    map.addr = 0x100000;
    map.size = 0x100000;
    fd = memfd_create("short", MFD_CLOEXEC);
    ftruncate(fd, 0x1000);
    ret = devvm_client_dma_map(&bad, &map, fd);
    close(fd);
    TAP_CHECK(ret == DEVVM_E_PEER && bad.peer_errno == EINVAL,
              "DMA_MAP of a 4 KiB memfd as 1 MiB: refused with EINVAL (%s, "
              "errno %d)", devvm_strerror(ret), bad.peer_errno);
    status = fill(&bad, 0x110000);
    TAP_CHECK(status == TESTDEV_DMA_EFAULT && device_alive(),
              "a FILL at +64 KiB of it: EFAULT (status %u), the device "
              "lives", status);

    fd = memfd_create("shrinks", MFD_CLOEXEC);
    ftruncate(fd, 0x100000);
    TAP_EQ(devvm_client_dma_map(&bad, &map, fd), 0,
           "DMA_MAP of an unsealed 1 MiB memfd is taken");
    ftruncate(fd, 0x1000);
    close(fd);
    status = fill(&bad, 0x110000);
    TAP_CHECK(status == TESTDEV_DMA_EFAULT && device_alive(),
              "shrunk to 4 KiB, a FILL at +64 KiB: EFAULT (status %u), the "
              "device lives", status);
    TAP_EQ(refused, 1, "it went to the client as a DMA_WRITE message (an "
           "unsealed fd is not mapped), which the client refused");

    if (pipe2(pfd, O_CLOEXEC) == 0) {
        map.addr = 0x300000;
        map.size = 0x1000;
        ret = devvm_client_dma_map(&bad, &map, pfd[0]);
        close(pfd[0]);
        close(pfd[1]);
    } else {
        ret = -errno;
    }
    TAP_CHECK(ret == 0 && fill(&bad, 0x300000) == TESTDEV_DMA_EFAULT &&
              refused == 2 && device_alive(),
              "DMA_MAP of a pipe: taken, and reached by message");

    TAP_CHECK(reg_read32(&good, TESTDEV_REG_ID) == TESTDEV_ID &&
              fill(&good, RAM_ADDR + 0x200) == 0 && ram[0x200] == 0xc3,
              "the sound client reads and gets its DMA all along");
    close(bad.fd);

    /*
     * Connections that never negotiate cannot hold the device: with
     * --max-clients 3, two idle ones and the sound client fill it, and a
     * fourth client is told so (EUSERS); after --handshake-ms the idle
     * ones are dropped and it gets in.
     */
    {
        struct devvm_client late;
        int idle[2], dropped;
        int64_t t0, waited;

        usleep(200 * 1000);         /* the hostile client's thread ends */
        idle[0] = devvm_sock_connect(sock_path);
        idle[1] = devvm_sock_connect(sock_path);
        t0 = now_ms();
        usleep(50 * 1000);          /* both accepted */
        ret = client_connect(&late, NULL, NULL);
        TAP_CHECK(ret == DEVVM_E_PEER && late.peer_errno == EUSERS,
                  "two idle connections and a client fill --max-clients 3: "
                  "a fourth is refused with EUSERS (%s, errno %d)",
                  devvm_strerror(ret), late.peer_errno);
        close(late.fd);
        dropped = wait_eof(idle[0], 4 * HANDSHAKE_MS) &&
                  wait_eof(idle[1], 4 * HANDSHAKE_MS);
        waited = now_ms() - t0;
        TAP_CHECK(dropped && waited >= HANDSHAKE_MS - 100,
                  "the idle connections are dropped after %lld ms "
                  "(--handshake-ms %d)", (long long)waited, HANDSHAKE_MS);
        close(idle[0]);
        close(idle[1]);
        usleep(100 * 1000);         /* their threads end */
        ret = client_connect(&late, NULL, NULL);
        TAP_CHECK(ret == 0 && reg_read32(&late, TESTDEV_REG_ID) == TESTDEV_ID,
                  "then a client gets in and reads the device");
        close(late.fd);
        TAP_CHECK(reg_read32(&good, TESTDEV_REG_ID) == TESTDEV_ID,
                  "the sound client was never disturbed");
    }
    close(good.fd);
    stop_device();
    unlink(sock_path);
    rmdir(dir);
    return tap_done();
}
