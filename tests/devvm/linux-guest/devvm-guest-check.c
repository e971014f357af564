/*
 * devvm-guest-check: devvm-testdev behind -device devvm-proxy, as a real
 * Linux kernel sees it
 *
 * Runs from the initramfs /init that scripts/devvm/fetch-guest.sh builds
 * and tests/devvm/test-linux-guest.sh boots (docs/devvm/linux-guest.rst).
 * It finds the function in sysfs and checks, in this order:
 *
 *   1. identity, class, the BARs and ROM the kernel assigned (resource),
 *      the capability list in the config file;
 *   2. with no driver bound: BAR0 (resource0 mmap), BAR1 (resource1
 *      pread/pwrite, I/O), BAR2 (resource2 mmap, both halves), BAR4 (the
 *      MSI-X table QEMU emulates), the expansion ROM (/dev/mem);
 *   3. DMA to physical addresses (pagemap) while the device is in an
 *      identity IOMMU domain (iommu=pt), with bus mastering off and on;
 *   4. INTx through uio_pci_generic, as a driver would run it;
 *   5. vfio-pci with the type1 IOMMU (the guest has an emulated VT-d):
 *      regions, MSI-X (every vector), MSI, INTx, DMA to an IOVA;
 *   6. DMA to physical addresses again once vfio has let go.
 *
 * With --hotplug (tests/devvm/test-coordinator-hotplug.sh) the function
 * is not there at boot: it says "hotplug: waiting", waits for the host
 * to plug it in (devvm-ctl attach), runs 1, 2 (BAR0, BAR4), 3 and 4, says
 * "hotplug: unplug now", and waits for the host to take it away
 * (devvm-ctl detach).
 *
 * Output goes to the console, one line per check:
 *   guest: ok N - what            guest: not ok N - what
 *   guest: # a note
 * and last "guest: P passed, F failed".  The exit status is 1 if any
 * check failed.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <linux/vfio.h>

#include "testdev.h"

#define PAGE_SIZE           4096
#define SYS_PCI             "/sys/bus/pci"

/* include/linux/ioport.h, not exported to user space */
#define IORESOURCE_IO       0x00000100
#define IORESOURCE_MEM      0x00000200
#define IORESOURCE_PREFETCH 0x00002000
#define IORESOURCE_MEM_64   0x00100000

#define PCI_COMMAND_IO          0x1
#define PCI_COMMAND_MEMORY      0x2
#define PCI_COMMAND_MASTER      0x4
#define PCI_COMMAND_INTX_DISABLE 0x400

/* where vfio's DMA test maps its buffer: far above the guest's 512 MiB */
#define TEST_IOVA           0x200000000ull

/* raise/lower/unmask cycles of INTx per driver */
#define INTX_CYCLES         50
static unsigned n_test, n_pass, n_fail;

static char bdf[64];
static char dev_dir[128];
static int cfg_fd = -1;
static volatile uint8_t *bar0;      /* sysfs mapping of BAR0 */

/* ---- TAP-ish output ---------------------------------------------------- */

static void vreport(bool ok, const char *fmt, va_list ap)
{
    n_test++;
    printf("guest: %s %u - ", ok ? "ok" : "not ok", n_test);
    vprintf(fmt, ap);
    putchar('\n');
}

static bool __attribute__((format(printf, 2, 3)))
check(bool ok, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vreport(ok, fmt, ap);
    va_end(ap);
    if (ok) {
        n_pass++;
    } else {
        n_fail++;
    }
    return ok;
}

static void __attribute__((format(printf, 1, 2))) note(const char *fmt, ...)
{
    va_list ap;

    fputs("guest: # ", stdout);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- sysfs and config space -------------------------------------------- */

static int read_text(const char *path, char *buf, size_t size)
{
    int fd = open(path, O_RDONLY);
    ssize_t n;

    if (fd < 0) {
        return -errno;
    }
    n = read(fd, buf, size - 1);
    close(fd);
    if (n < 0) {
        return -errno;
    }
    buf[n] = 0;
    buf[strcspn(buf, "\n")] = 0;
    return 0;
}

static int write_text(const char *path, const char *s)
{
    int fd = open(path, O_WRONLY);
    ssize_t n;

    if (fd < 0) {
        return -errno;
    }
    n = write(fd, s, strlen(s));
    n = n < 0 ? -errno : 0;
    close(fd);
    return n;
}

static const char *dev_path(const char *name)
{
    static char path[sizeof(dev_dir) + 64];

    snprintf(path, sizeof(path), "%s/%.63s", dev_dir, name);
    return path;
}

static unsigned long long dev_hex(const char *name)
{
    char buf[64];

    if (read_text(dev_path(name), buf, sizeof(buf))) {
        return ~0ull;
    }
    return strtoull(buf, NULL, 0);
}

/* The driver bound to the device, or "" */
static const char *dev_driver(void)
{
    static char link[PATH_MAX];
    ssize_t n = readlink(dev_path("driver"), link, sizeof(link) - 1);

    if (n < 0) {
        return "";
    }
    link[n] = 0;
    return strrchr(link, '/') + 1;
}

static uint32_t cfg_read(unsigned off, unsigned len)
{
    uint32_t v = 0;

    if (pread(cfg_fd, &v, len, off) != (ssize_t)len) {
        return ~0u;
    }
    return v;
}

static bool cfg_write(unsigned off, uint32_t val, unsigned len)
{
    return pwrite(cfg_fd, &val, len, off) == (ssize_t)len;
}

/* Bind the device to DRIVER through driver_override ("" unbinds). */
static bool bind_driver(const char *driver)
{
    char path[PATH_MAX];
    const char *cur = dev_driver();

    if (*cur) {
        snprintf(path, sizeof(path), SYS_PCI "/drivers/%s/unbind", cur);
        write_text(path, bdf);
    }
    write_text(dev_path("driver_override"), *driver ? driver : "\n");
    if (*driver) {
        write_text(SYS_PCI "/drivers_probe", bdf);
    }
    return !strcmp(dev_driver(), driver);
}

/* ---- MMIO -------------------------------------------------------------- */

#define MMIO(base, off, type) (*(volatile type *)((base) + (off)))

static inline uint8_t rd8(volatile uint8_t *b, size_t o)
{
    return MMIO(b, o, uint8_t);
}
static inline uint16_t rd16(volatile uint8_t *b, size_t o)
{
    return MMIO(b, o, uint16_t);
}
static inline uint32_t rd32(volatile uint8_t *b, size_t o)
{
    return MMIO(b, o, uint32_t);
}
static inline uint64_t rd64(volatile uint8_t *b, size_t o)
{
    return MMIO(b, o, uint64_t);
}
static inline void wr8(volatile uint8_t *b, size_t o, uint8_t v)
{
    MMIO(b, o, uint8_t) = v;
}
static inline void wr16(volatile uint8_t *b, size_t o, uint16_t v)
{
    MMIO(b, o, uint16_t) = v;
}
static inline void wr32(volatile uint8_t *b, size_t o, uint32_t v)
{
    MMIO(b, o, uint32_t) = v;
}
static inline void wr64(volatile uint8_t *b, size_t o, uint64_t v)
{
    MMIO(b, o, uint64_t) = v;
}

static volatile uint8_t *map_resource(const char *name, size_t size)
{
    int fd = open(dev_path(name), O_RDWR | O_SYNC);
    void *p;

    if (fd < 0) {
        note("open %s: %s", name, strerror(errno));
        return NULL;
    }
    p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (p == MAP_FAILED) {
        note("mmap %s: %s", name, strerror(errno));
        return NULL;
    }
    return p;
}

/* Run a DMA command on the BAR0 mapping B; returns DMA_STATUS. */
static uint32_t dma_run(volatile uint8_t *b, uint32_t cmd, uint64_t src,
                        uint64_t dst, uint32_t len, uint32_t pattern)
{
    wr64(b, TESTDEV_REG_DMA_SRC, src);
    wr64(b, TESTDEV_REG_DMA_DST, dst);
    wr32(b, TESTDEV_REG_DMA_LEN, len);
    wr32(b, TESTDEV_REG_DMA_PATTERN, pattern);
    wr32(b, TESTDEV_REG_DMA_CMD, cmd);
    return rd32(b, TESTDEV_REG_DMA_STATUS);
}

/* Bytes of BUF that differ from the FILL pattern. */
static size_t fill_errors(const uint8_t *buf, size_t len, uint32_t pattern)
{
    size_t i, bad = 0;

    for (i = 0; i < len; i++) {
        bad += buf[i] != (uint8_t)(pattern >> (8 * (i % 4)));
    }
    return bad;
}

static uint64_t byte_sum(const uint8_t *buf, size_t len)
{
    uint64_t sum = 0;
    size_t i;

    for (i = 0; i < len; i++) {
        sum += buf[i];
    }
    return sum;
}

/* Wait up to MS for eventfd FD; returns its counter (0 if none). */
static uint64_t wait_eventfd(int fd, int ms)
{
    struct pollfd pfd = { .fd = fd, .events = POLLIN };
    uint64_t v = 0;

    if (poll(&pfd, 1, ms) == 1 && read(fd, &v, sizeof(v)) != sizeof(v)) {
        v = 0;
    }
    return v;
}

/* Print the lines of /proc/interrupts that mention WHAT. */
static void note_interrupts(const char *what)
{
    char line[512];
    FILE *f = fopen("/proc/interrupts", "r");

    if (!f) {
        return;
    }
    while (fgets(line, sizeof(line), f)) {
        if (strstr(line, what)) {
            line[strcspn(line, "\n")] = 0;
            note("/proc/interrupts:%s", line);
        }
    }
    fclose(f);
}

/* ---- 1. what the kernel enumerated ------------------------------------- */

/* how long --hotplug waits for the function to come, and to go */
#define HOTPLUG_WAIT_S      300

/*
 * How many of the functions in sysfs are devvm-testdev; the first one's
 * name into @first (@size bytes) when not NULL.
 */
static unsigned scan_devices(char *first, size_t size)
{
    DIR *d = opendir(SYS_PCI "/devices");
    struct dirent *e;
    unsigned n = 0;

    while (d && (e = readdir(d))) {
        char path[PATH_MAX], buf[32];

        if (e->d_name[0] == '.') {
            continue;
        }
        snprintf(path, sizeof(path), SYS_PCI "/devices/%s/vendor", e->d_name);
        if (read_text(path, buf, sizeof(buf)) ||
            strtoul(buf, NULL, 0) != TESTDEV_VENDOR_ID) {
            continue;
        }
        snprintf(path, sizeof(path), SYS_PCI "/devices/%s/device", e->d_name);
        if (!read_text(path, buf, sizeof(buf)) &&
            strtoul(buf, NULL, 0) == TESTDEV_DEVICE_ID && !n++ && first) {
            snprintf(first, size, "%.63s", e->d_name);
        }
    }
    if (d) {
        closedir(d);
    }
    return n;
}

static unsigned count_devices(void)
{
    return scan_devices(NULL, 0);
}

/* Wait until the function is there (@want 1) or gone (@want 0). */
static bool wait_devices(unsigned want, double *waited)
{
    double t0 = now_s();

    while (count_devices() != want) {
        if (now_s() - t0 > HOTPLUG_WAIT_S) {
            *waited = now_s() - t0;
            return false;
        }
        usleep(20000);
    }
    *waited = now_s() - t0;
    return true;
}

static bool find_device(void)
{
    unsigned found = scan_devices(bdf, sizeof(bdf));

    snprintf(dev_dir, sizeof(dev_dir), SYS_PCI "/devices/%.63s", bdf);
    return check(found == 1, "one PCI function 0x%04x:0x%04x in sysfs (%s)",
                 TESTDEV_VENDOR_ID, TESTDEV_DEVICE_ID,
                 found ? bdf : "none");
}

static void check_identity(void)
{
    check(dev_hex("class") == TESTDEV_CLASS_CODE, "class 0x%06llx",
          dev_hex("class"));
    check(dev_hex("revision") == TESTDEV_REVISION &&
          dev_hex("subsystem_vendor") == TESTDEV_SUBSYS_VENDOR_ID &&
          dev_hex("subsystem_device") == TESTDEV_SUBSYS_ID,
          "revision 0x%02llx, subsystem 0x%04llx:0x%04llx",
          dev_hex("revision"), dev_hex("subsystem_vendor"),
          dev_hex("subsystem_device"));
    check(!*dev_driver(), "no driver claims it at boot");
}

struct res {
    uint64_t start, end, flags;
};

static uint64_t res_size(const struct res *r)
{
    return r->flags ? r->end - r->start + 1 : 0;
}

static void check_resources(struct res *res)
{
    static const char *const name[7] = {
        "BAR0", "BAR1", "BAR2", "BAR3", "BAR4", "BAR5", "ROM"
    };
    FILE *f = fopen(dev_path("resource"), "r");
    unsigned long long s, e, fl;
    int i;

    memset(res, 0, 7 * sizeof(*res));
    for (i = 0; f && i < 7 && fscanf(f, "%llx %llx %llx", &s, &e, &fl) == 3;
         i++) {
        res[i] = (struct res){ s, e, fl };
        if (fl) {
            note("resource %s: 0x%llx-0x%llx flags 0x%llx", name[i], s, e,
                 fl);
        }
    }
    if (f) {
        fclose(f);
    }
    check(i == 7, "resource file lists BAR0-5 and the ROM");

#define HAS(r, f) (((r).flags & (f)) == (f))
    check(HAS(res[0], IORESOURCE_MEM) && !HAS(res[0], IORESOURCE_MEM_64) &&
          !HAS(res[0], IORESOURCE_PREFETCH) && res_size(&res[0]) == 0x1000 &&
          res[0].start, "BAR0: 4 KiB 32-bit memory at 0x%" PRIx64,
          res[0].start);
    check(HAS(res[1], IORESOURCE_IO) && res_size(&res[1]) == 0x100 &&
          res[1].start, "BAR1: 256 bytes of I/O at 0x%" PRIx64, res[1].start);
    check(HAS(res[2], IORESOURCE_MEM | IORESOURCE_MEM_64 |
                      IORESOURCE_PREFETCH) &&
          res_size(&res[2]) == TESTDEV_BAR2_DEFAULT_SIZE && res[2].start,
          "BAR2: 16 MiB 64-bit prefetchable memory at 0x%" PRIx64,
          res[2].start);
    check(!res[3].flags && !res[5].flags, "BAR3 and BAR5 (upper halves) "
          "are not resources");
    check(HAS(res[4], IORESOURCE_MEM | IORESOURCE_MEM_64) &&
          !HAS(res[4], IORESOURCE_PREFETCH) &&
          res_size(&res[4]) == TESTDEV_BAR4_SIZE && res[4].start,
          "BAR4: 16 KiB 64-bit memory at 0x%" PRIx64, res[4].start);
    check(HAS(res[6], IORESOURCE_MEM) &&
          res_size(&res[6]) == TESTDEV_ROM_SIZE && res[6].start,
          "ROM: 64 KiB at 0x%" PRIx64, res[6].start);
#undef HAS
}

static void check_config(void)
{
    uint8_t ids[8], offs[8];
    unsigned n = 0, p, guard;
    uint32_t v, tbl, pba;
    uint16_t ctrl;

    cfg_fd = open(dev_path("config"), O_RDWR);
    check(cfg_fd >= 0 && cfg_read(0, 4) ==
          (TESTDEV_VENDOR_ID | TESTDEV_DEVICE_ID << 16) &&
          cfg_read(0x09, 1) == 0 && cfg_read(0x0a, 2) == 0xff00 &&
          cfg_read(0x0e, 1) == 0,
          "config file: IDs, class, header type 0");
    check(cfg_read(0x06, 2) & 0x10, "status has the capability list bit");

    p = cfg_read(0x34, 1);
    for (guard = 0; p && guard < 48 && n < 8; guard++) {
        offs[n] = p;
        ids[n++] = cfg_read(p, 1);
        p = cfg_read(p + 1, 1);
    }
    {
        char list[128] = "";
        size_t l = 0;

        for (p = 0; p < n; p++) {
            l += snprintf(list + l, sizeof(list) - l, " 0x%02x@0x%02x",
                          ids[p], offs[p]);
        }
        note("capabilities (id@offset):%s", n ? list : " none");
    }
    check(n == 3 && ids[0] == 0x05 && ids[1] == 0x11 && ids[2] == 0x09 &&
          offs[0] == TESTDEV_CAP_MSI && offs[1] == TESTDEV_CAP_MSIX &&
          offs[2] == TESTDEV_CAP_VENDOR,
          "capability list: MSI (0x05) at 0x40, MSI-X (0x11) at 0x50, "
          "vendor (0x09) at 0x60");

    ctrl = cfg_read(TESTDEV_CAP_MSI + 2, 2);
    check((ctrl & 0x80) && !(ctrl & 0x0e),
          "MSI: 64-bit, one vector (message control 0x%04x)", ctrl);
    ctrl = cfg_read(TESTDEV_CAP_MSIX + 2, 2);
    tbl = cfg_read(TESTDEV_CAP_MSIX + 4, 4);
    pba = cfg_read(TESTDEV_CAP_MSIX + 8, 4);
    check((ctrl & 0x7ff) + 1 == TESTDEV_MSIX_VECTORS &&
          tbl == (TESTDEV_MSIX_TABLE_OFFSET | TESTDEV_MSIX_BAR) &&
          pba == (TESTDEV_MSIX_PBA_OFFSET | TESTDEV_MSIX_BAR),
          "MSI-X: 8 vectors, table BAR4+0, PBA BAR4+0x1000 (control 0x%04x, "
          "table 0x%x, PBA 0x%x)", ctrl, tbl, pba);
    check(cfg_read(TESTDEV_CAP_VENDOR + 2, 1) == TESTDEV_CAP_VENDOR_LEN &&
          cfg_read(TESTDEV_CFG_VENDOR_MAGIC, 4) == TESTDEV_VENDOR_MAGIC,
          "vendor capability: length 16, magic 0x%08x (forwarded to the "
          "device)", cfg_read(TESTDEV_CFG_VENDOR_MAGIC, 4));
    cfg_write(TESTDEV_CFG_VENDOR_SCRATCH, 0x5eed1234, 4);
    v = cfg_read(TESTDEV_CFG_VENDOR_SCRATCH, 4);
    cfg_write(TESTDEV_CFG_VENDOR_MAGIC, 0, 4);
    check(v == 0x5eed1234 &&
          cfg_read(TESTDEV_CFG_VENDOR_MAGIC, 4) == TESTDEV_VENDOR_MAGIC,
          "vendor scratch in config space round-trips, magic is read-only");
    check(cfg_read(0x3d, 1) == TESTDEV_INTERRUPT_PIN && dev_hex("irq") > 0,
          "interrupt pin INTA, routed to IRQ %llu", dev_hex("irq"));
}

/* ---- 2. BARs through sysfs, no driver ---------------------------------- */

static void check_bar0(void)
{
    unsigned i, bad;
    uint64_t v64;

    check(write_text(dev_path("enable"), "1") == 0 &&
          dev_hex("enable") == 1, "enable the device through sysfs");
    check((cfg_read(4, 2) & (PCI_COMMAND_IO | PCI_COMMAND_MEMORY)) ==
          (PCI_COMMAND_IO | PCI_COMMAND_MEMORY),
          "command register has I/O and memory decode on (0x%04x)",
          cfg_read(4, 2));

    bar0 = map_resource("resource0", TESTDEV_BAR0_SIZE);
    if (!check(bar0, "mmap resource0 (O_RDWR | O_SYNC)")) {
        return;
    }
    check(rd32(bar0, TESTDEV_REG_ID) == TESTDEV_ID &&
          rd32(bar0, TESTDEV_REG_VERSION) == TESTDEV_VERSION,
          "BAR0: ID 0x%08x, version %u", rd32(bar0, TESTDEV_REG_ID),
          rd32(bar0, TESTDEV_REG_VERSION));
    wr32(bar0, TESTDEV_REG_ID, 0);
    check(rd32(bar0, TESTDEV_REG_ID) == TESTDEV_ID, "BAR0: ID is read-only");

    for (i = 0; i < TESTDEV_SCRATCH_BYTES_SIZE; i++) {
        wr8(bar0, TESTDEV_REG_SCRATCH_BYTES + i, 0xa0 + i);
    }
    for (bad = 0, i = 0; i < TESTDEV_SCRATCH_BYTES_SIZE; i++) {
        bad += rd8(bar0, TESTDEV_REG_SCRATCH_BYTES + i) != 0xa0 + i;
    }
    check(!bad && rd32(bar0, TESTDEV_REG_SCRATCH_BYTES) == 0xa3a2a1a0,
          "BAR0: 1-byte scratch writes read back (also as a 32-bit word)");
    for (i = 0; i < TESTDEV_SCRATCH_BYTES_SIZE; i += 2) {
        wr16(bar0, TESTDEV_REG_SCRATCH_BYTES + i, 0x1001 * (i + 1));
    }
    for (bad = 0, i = 0; i < TESTDEV_SCRATCH_BYTES_SIZE; i += 2) {
        bad += rd16(bar0, TESTDEV_REG_SCRATCH_BYTES + i) !=
               (uint16_t)(0x1001 * (i + 1));
    }
    check(!bad, "BAR0: 2-byte scratch writes read back");
    wr32(bar0, TESTDEV_REG_SCRATCH32, 0xdeadbeef);
    check(rd32(bar0, TESTDEV_REG_SCRATCH32) == 0xdeadbeef,
          "BAR0: 4-byte SCRATCH32 round trip");
    wr64(bar0, TESTDEV_REG_SCRATCH64, 0x0123456789abcdefull);
    v64 = rd64(bar0, TESTDEV_REG_SCRATCH64);
    check(v64 == 0x0123456789abcdefull &&
          rd32(bar0, TESTDEV_REG_SCRATCH64 + 4) == 0x01234567,
          "BAR0: 8-byte SCRATCH64 round trip (0x%016" PRIx64 ")", v64);

    for (i = TESTDEV_REG_MEM; i < TESTDEV_BAR0_SIZE; i += 4) {
        wr32(bar0, i, i * 0x9e3779b1u);
    }
    for (bad = 0, i = TESTDEV_REG_MEM; i < TESTDEV_BAR0_SIZE; i += 4) {
        bad += rd32(bar0, i) != i * 0x9e3779b1u;
    }
    check(!bad, "BAR0: memory 0x100-0xfff holds 960 words (%u wrong)", bad);
    check(rd32(bar0, 0xb0) == 0, "BAR0: an unlisted offset reads 0");
}

static void check_bar1(void)
{
    int fd = open(dev_path("resource1"), O_RDWR);
    uint32_t v = 0;
    uint16_t v16 = 0;
    uint8_t b = 0x5a;

    if (!check(fd >= 0, "open resource1 (I/O BAR)")) {
        return;
    }
    if (pread(fd, &v, 4, 0) != 4) {
        v = ~0u;
    }
    check(v == TESTDEV_ID, "BAR1: 4-byte I/O read at 0 is the ID (0x%08x)",
          v);
    v = 0xcafef00d;
    check(pwrite(fd, &v, 4, TESTDEV_REG_SCRATCH32) == 4 && bar0 &&
          rd32(bar0, TESTDEV_REG_SCRATCH32) == 0xcafef00d,
          "BAR1: an I/O write at 0x08 lands in BAR0's SCRATCH32");
    check(pwrite(fd, &b, 1, 0x20) == 1 && bar0 && rd8(bar0, 0x20) == 0x5a &&
          pread(fd, &v16, 2, 0x20) == 2 &&
          v16 == (uint16_t)(0x5a | (rd8(bar0, 0x21) << 8)),
          "BAR1: 1- and 2-byte I/O at 0x20 share BAR0's scratch bytes");
    v = 1;
    check(pread(fd, &v, 4, 0x10) == 4 && v == 0,
          "BAR1: 0x10 is outside the window and reads 0");
    close(fd);
}

static void check_bar2(void)
{
    const size_t size = TESTDEV_BAR2_DEFAULT_SIZE, half = size / 2;
    volatile uint8_t *b = map_resource("resource2", size);
    static const char *const what[2] = { "direct-mapped", "forwarded" };
    double t_read[2];
    int h;

    if (!check(b, "mmap resource2 (16 MiB)")) {
        return;
    }
    for (h = 0; h < 2; h++) {
        size_t base = h * half, i;
        unsigned bad = 0;
        double t0;
        volatile uint32_t sink;

        wr64(b, base, 0x1122334455667788ull + h);
        wr32(b, base + 0x18, 0xa5a5a5a5u - h);
        wr16(b, base + 0x1002, 0xbeef - h);
        wr8(b, base + 0x2001, 0x42 + h);
        wr64(b, base + half - 8, 0x8877665544332211ull - h);
        bad += rd64(b, base) != 0x1122334455667788ull + h;
        bad += rd32(b, base + 4) != 0x11223344u;
        bad += rd32(b, base + 0x18) != 0xa5a5a5a5u - h;
        bad += rd16(b, base + 0x1002) != 0xbeef - h;
        bad += rd8(b, base + 0x2001) != 0x42 + h;
        bad += rd64(b, base + half - 8) != 0x8877665544332211ull - h;
        for (i = 0; i < 0x10000; i += 8) {
            wr64(b, base + 0x10000 + i, (base + i) * 0x9e3779b97f4a7c15ull);
        }
        for (i = 0; i < 0x10000; i += 8) {
            bad += rd64(b, base + 0x10000 + i) !=
                   (base + i) * 0x9e3779b97f4a7c15ull;
        }
        check(!bad, "BAR2 %s half: 1/2/4/8-byte accesses and 64 KiB of "
              "8-byte words round-trip (%u wrong)", what[h], bad);

        t0 = now_s();
        for (i = 0; i < 2000; i++) {
            sink = rd32(b, base + 0x40);
        }
        (void)sink;
        t_read[h] = (now_s() - t0) / 2000 * 1e9;
    }
    note("BAR2 32-bit read: %.0f ns direct-mapped, %.0f ns forwarded",
         t_read[0], t_read[1]);

    /* an unaligned 8-byte access across the boundary of the halves */
    wr64(b, half - 4, 0xf00dfacecafebabeull);
    check(rd64(b, half - 4) == 0xf00dfacecafebabeull &&
          rd32(b, half - 4) == 0xcafebabe && rd32(b, half) == 0xf00dface,
          "BAR2: an 8-byte access straddling the two halves");
    check(access(dev_path("resource2_wc"), F_OK) == 0,
          "resource2_wc exists (the kernel saw BAR2 as prefetchable)");
    munmap((void *)b, size);
}

static void check_bar4(void)
{
    volatile uint8_t *b = map_resource("resource4", TESTDEV_BAR4_SIZE);
    unsigned i, masked = 0;

    if (!check(b, "mmap resource4 (MSI-X BAR)")) {
        return;
    }
    for (i = 0; i < TESTDEV_MSIX_VECTORS; i++) {
        masked += rd32(b, TESTDEV_MSIX_TABLE_OFFSET + 16 * i + 12) & 1;
    }
    check(masked == TESTDEV_MSIX_VECTORS &&
          rd64(b, TESTDEV_MSIX_PBA_OFFSET) == 0,
          "BAR4: MSI-X table with 8 masked vectors, PBA clear");
    munmap((void *)b, TESTDEV_BAR4_SIZE);
}

static void check_rom(const struct res *rom)
{
    uint32_t saved = cfg_read(0x30, 4);
    unsigned i, bad = 0;
    volatile uint8_t *p;
    char buf[16];
    ssize_t n;
    int fd;

    /* The kernel's own ROM reader wants a PCI data structure ("PCIR"). */
    write_text(dev_path("rom"), "1");
    fd = open(dev_path("rom"), O_RDONLY);
    n = fd >= 0 ? read(fd, buf, sizeof(buf)) : -1;
    note("sysfs rom read: %s%s", n >= 0 ? "works" : strerror(errno),
         n >= 0 ? "" : " (pci_map_rom() wants a PCIR structure)");
    if (fd >= 0) {
        close(fd);
    }
    write_text(dev_path("rom"), "0");

    /* So read it where the kernel placed it, with decoding on. */
    cfg_write(0x30, (uint32_t)(rom->start & ~0x7ffull) | 1, 4);
    fd = open("/dev/mem", O_RDONLY | O_SYNC);
    p = fd < 0 ? MAP_FAILED :
        mmap(NULL, TESTDEV_ROM_SIZE, PROT_READ, MAP_SHARED, fd, rom->start);
    if (fd >= 0) {
        close(fd);
    }
    if (check(p != MAP_FAILED, "map the ROM at 0x%" PRIx64 " through "
              "/dev/mem", rom->start)) {
        for (i = 0; i < TESTDEV_ROM_SIZE; i += 4) {
            uint32_t w = rd32(p, i);
            uint32_t want = i == 0 ? 0x0302aa55 :
                ((i & 0xff) | ((i + 1) & 0xff) << 8 |
                 ((i + 2) & 0xff) << 16 | (uint32_t)((i + 3) & 0xff) << 24);

            bad += w != want;
        }
        check(!bad && rd8(p, 0) == 0x55 && rd8(p, 1) == 0xaa,
              "ROM: 55 aa, then byte i = i & 0xff over 64 KiB (%u words "
              "wrong)", bad);
        munmap((void *)p, TESTDEV_ROM_SIZE);
    }
    cfg_write(0x30, saved, 4);
}

/* ---- 3. DMA to physical addresses -------------------------------------- */

static uint64_t virt_to_phys(const void *p)
{
    uint64_t e = 0, v = (uintptr_t)p;
    int fd = open("/proc/self/pagemap", O_RDONLY);

    if (fd < 0) {
        return 0;
    }
    if (pread(fd, &e, 8, v / PAGE_SIZE * 8) != 8) {
        e = 0;
    }
    close(fd);
    if (!(e >> 63) || !(e & ((1ull << 55) - 1))) {
        return 0;
    }
    return (e & ((1ull << 55) - 1)) * PAGE_SIZE + v % PAGE_SIZE;
}

static void check_phys_dma(const char *when, bool bm_off_test)
{
    uint8_t *a, *b;
    uint64_t pa, pb;
    uint16_t cmd;
    uint32_t st;
    unsigned i;

    if (!bar0) {
        return;
    }
    a = mmap(NULL, 2 * PAGE_SIZE, PROT_READ | PROT_WRITE,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE | MAP_LOCKED, -1, 0);
    if (!check(a != MAP_FAILED, "%s: lock two pages of memory", when)) {
        return;
    }
    b = a + PAGE_SIZE;
    memset(a, 0, 2 * PAGE_SIZE);
    pa = virt_to_phys(a);
    pb = virt_to_phys(b);
    if (!check(pa && pb, "%s: physical addresses from /proc/self/pagemap "
               "(0x%" PRIx64 ", 0x%" PRIx64 ")", when, pa, pb)) {
        goto out;
    }
    cmd = cfg_read(4, 2);

    if (bm_off_test) {
        cfg_write(4, cmd & ~PCI_COMMAND_MASTER, 2);
        st = dma_run(bar0, TESTDEV_DMA_FILL, 0, pa, PAGE_SIZE, 0x11111111);
        check(st == TESTDEV_DMA_EFAULT && fill_errors(a, PAGE_SIZE, 0) == 0,
              "%s: with bus mastering off DMA is refused (status %u) and "
              "memory is untouched", when, st);
    }
    cfg_write(4, cmd | PCI_COMMAND_MASTER | PCI_COMMAND_MEMORY, 2);
    st = dma_run(bar0, TESTDEV_DMA_FILL, 0, pa, PAGE_SIZE, 0x5aa5c33c);
    check(st == 0 && fill_errors(a, PAGE_SIZE, 0x5aa5c33c) == 0,
          "%s: DMA fill of a page at its physical address (status %u, %zu "
          "bytes wrong)", when, st, fill_errors(a, PAGE_SIZE, 0x5aa5c33c));
    for (i = 0; i < PAGE_SIZE; i++) {
        b[i] = i * 7 + 3;
    }
    st = dma_run(bar0, TESTDEV_DMA_CHECKSUM, pb, 0, PAGE_SIZE, 0);
    check(st == 0 && rd64(bar0, TESTDEV_REG_DMA_RESULT) ==
          byte_sum(b, PAGE_SIZE),
          "%s: DMA checksum of a page is %" PRIu64 " (status %u, expected "
          "%" PRIu64 ")", when, rd64(bar0, TESTDEV_REG_DMA_RESULT), st,
          byte_sum(b, PAGE_SIZE));
    st = dma_run(bar0, TESTDEV_DMA_COPY, pb, pa, PAGE_SIZE, 0);
    check(st == 0 && !memcmp(a, b, PAGE_SIZE),
          "%s: DMA copy between two pages (status %u)", when, st);
    cfg_write(4, cmd & ~PCI_COMMAND_MASTER, 2);
out:
    munmap(a, 2 * PAGE_SIZE);
}

/* ---- 4. INTx through uio_pci_generic ----------------------------------- */

/*
 * INTx the way a driver sees it: WAIT(ms) reports an interrupt, UNMASK
 * re-enables it after the handler ran.  The first interrupt is checked
 * by the caller; then INTX_CYCLES times: lower the line, unmask, raise it
 * again and expect an interrupt.  An interrupt right after the unmask,
 * with the line low, is spurious: it is handled like a driver would (read
 * a register, unmask) and the cycle is counted.
 */
struct intx_ops {
    bool (*wait)(void *opaque, int ms);
    void (*unmask)(void *opaque);
    void *opaque;
};

static void intx_cycles(const char *who, volatile uint8_t *b,
                        const struct intx_ops *ops)
{
    int i, n, missed = 0, spurious = 0, events = 0;

    for (i = 0; i <= INTX_CYCLES; i++) {
        wr32(b, TESTDEV_REG_INTX, 0);
        ops->unmask(ops->opaque);
        for (n = 0; n < 10 && ops->wait(ops->opaque, 20); n++) {
            rd32(b, TESTDEV_REG_INTX);
            ops->unmask(ops->opaque);
        }
        spurious += n > 0;
        events += n;
        if (i == INTX_CYCLES) {
            break;
        }
        wr32(b, TESTDEV_REG_INTX, 1);
        missed += !ops->wait(ops->opaque, 2000);
    }
    check(!missed, "%s: INTx raised %d more times, the driver was "
          "interrupted each time (%d missed)", who, INTX_CYCLES, missed);
    check(!spurious, "%s: no spurious INTx after the line is lowered and "
          "unmasked (%d of %d cycles had %d in all)", who, spurious,
          INTX_CYCLES + 1, events);
}

/*
 * uio_pci_generic has no irqcontrol: its handler sets INTx disable in the
 * command register and user space clears it through config space.
 */
static void uio_unmask(void *opaque)
{
    (void)opaque;
    cfg_write(4, cfg_read(4, 2) & ~PCI_COMMAND_INTX_DISABLE, 2);
}

static bool uio_wait(void *opaque, int ms)
{
    struct pollfd pfd = { .fd = *(int *)opaque, .events = POLLIN };
    uint32_t count;

    return poll(&pfd, 1, ms) == 1 && read(pfd.fd, &count, 4) == 4;
}

static void check_uio(void)
{
    struct intx_ops ops = { .wait = uio_wait, .unmask = uio_unmask };
    char path[PATH_MAX], name[64] = "";
    struct dirent *e;
    bool ok;
    DIR *d;
    int fd;

    if (!bar0) {
        return;
    }
    if (!check(access(SYS_PCI "/drivers/uio_pci_generic", F_OK) == 0,
               "uio_pci_generic is loaded")) {
        return;
    }
    write_text(dev_path("enable"), "0");
    ok = bind_driver("uio_pci_generic");
    if (!check(ok, "bind to uio_pci_generic (driver: '%s')", dev_driver())) {
        bind_driver("");
        return;
    }
    d = opendir(dev_path("uio"));
    while (d && (e = readdir(d))) {
        if (e->d_name[0] != '.') {
            snprintf(name, sizeof(name), "%.63s", e->d_name);
        }
    }
    if (d) {
        closedir(d);
    }
    snprintf(path, sizeof(path), "/dev/%s", name);
    fd = open(path, O_RDWR);
    if (!check(*name && fd >= 0, "open %s", path)) {
        goto out;
    }
    ops.opaque = &fd;
    uio_unmask(NULL);
    wr32(bar0, TESTDEV_REG_INTX, 1);
    check(uio_wait(&fd, 2000), "uio: raising INTx interrupts the guest");
    check(cfg_read(4, 2) & PCI_COMMAND_INTX_DISABLE,
          "uio: the kernel masked INTx in the command register");
    intx_cycles("uio", bar0, &ops);
    close(fd);
    note_interrupts("uio");
out:
    check(bind_driver(""), "unbind from uio_pci_generic");
}

/* ---- 5. vfio-pci -------------------------------------------------------- */

struct vfio {
    int container, group, device;
    struct vfio_region_info reg[VFIO_PCI_NUM_REGIONS];
    volatile uint8_t *bar0;
};

static bool vfio_set_irqs(struct vfio *v, unsigned index, uint32_t flags,
                          unsigned start, unsigned count, const int *fds)
{
    char buf[sizeof(struct vfio_irq_set) + 8 * sizeof(int)];
    struct vfio_irq_set *set = (struct vfio_irq_set *)buf;

    set->argsz = sizeof(*set) + (fds ? count * sizeof(int) : 0);
    set->flags = flags;
    set->index = index;
    set->start = start;
    set->count = count;
    if (fds) {
        memcpy(set->data, fds, count * sizeof(int));
    }
    return ioctl(v->device, VFIO_DEVICE_SET_IRQS, set) == 0;
}

static bool vfio_cfg_write16(struct vfio *v, unsigned off, uint16_t val)
{
    return pwrite(v->device, &val, 2,
                  v->reg[VFIO_PCI_CONFIG_REGION_INDEX].offset + off) == 2;
}

static uint16_t vfio_cfg_read16(struct vfio *v, unsigned off)
{
    uint16_t val = 0xffff;

    if (pread(v->device, &val, 2,
              v->reg[VFIO_PCI_CONFIG_REGION_INDEX].offset + off) != 2) {
        return 0xffff;
    }
    return val;
}

static bool vfio_open(struct vfio *v)
{
    struct vfio_group_status status = { .argsz = sizeof(status) };
    struct vfio_device_info info = { .argsz = sizeof(info) };
    char link[PATH_MAX], path[64];
    const char *group;
    ssize_t n;
    int iommu;

    n = readlink(dev_path("iommu_group"), link, sizeof(link) - 1);
    if (!check(n > 0, "the device has an IOMMU group")) {
        return false;
    }
    link[n] = 0;
    group = strrchr(link, '/') + 1;
    snprintf(path, sizeof(path), "/sys/kernel/iommu_groups/%s/type", group);
    if (!read_text(path, link, sizeof(link))) {
        note("IOMMU group %s, default domain type %s", group, link);
    }

    v->container = open("/dev/vfio/vfio", O_RDWR);
    if (!check(v->container >= 0 &&
               ioctl(v->container, VFIO_GET_API_VERSION) == VFIO_API_VERSION,
               "open /dev/vfio/vfio (API version %d)", VFIO_API_VERSION)) {
        return false;
    }
    iommu = ioctl(v->container, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU) > 0 ?
            VFIO_TYPE1v2_IOMMU : VFIO_TYPE1_IOMMU;
    snprintf(path, sizeof(path), "/dev/vfio/%s", group);
    v->group = open(path, O_RDWR);
    if (!check(v->group >= 0 &&
               ioctl(v->group, VFIO_GROUP_GET_STATUS, &status) == 0 &&
               (status.flags & VFIO_GROUP_FLAGS_VIABLE),
               "open %s, the group is viable", path)) {
        return false;
    }
    if (!check(ioctl(v->group, VFIO_GROUP_SET_CONTAINER, &v->container) == 0 &&
               ioctl(v->container, VFIO_SET_IOMMU, iommu) == 0,
               "attach the group to a container with the %s IOMMU",
               iommu == VFIO_TYPE1v2_IOMMU ? "type1v2" : "type1")) {
        return false;
    }
    v->device = ioctl(v->group, VFIO_GROUP_GET_DEVICE_FD, bdf);
    if (!check(v->device >= 0, "VFIO_GROUP_GET_DEVICE_FD %s", bdf)) {
        return false;
    }
    if (ioctl(v->device, VFIO_DEVICE_GET_INFO, &info)) {
        info.flags = info.num_regions = info.num_irqs = 0;
    }
    check((info.flags & VFIO_DEVICE_FLAGS_PCI) &&
          info.num_regions >= VFIO_PCI_NUM_REGIONS &&
          info.num_irqs >= VFIO_PCI_NUM_IRQS,
          "device info: PCI, %u regions, %u IRQ indexes", info.num_regions,
          info.num_irqs);
    return true;
}

static void vfio_check_regions(struct vfio *v)
{
    static const uint64_t size[VFIO_PCI_NUM_REGIONS] = {
        TESTDEV_BAR0_SIZE, TESTDEV_BAR1_SIZE, TESTDEV_BAR2_DEFAULT_SIZE, 0,
        TESTDEV_BAR4_SIZE, 0, TESTDEV_ROM_SIZE, TESTDEV_CONFIG_SIZE, 0
    };
    unsigned i, bad = 0;
    uint32_t id = 0;
    void *p;

    for (i = 0; i < VFIO_PCI_NUM_REGIONS; i++) {
        v->reg[i] = (struct vfio_region_info){ .argsz = sizeof(v->reg[i]),
                                               .index = i };
        if (ioctl(v->device, VFIO_DEVICE_GET_REGION_INFO, &v->reg[i])) {
            /* not a VGA device: no VGA region (EINVAL) */
            bad += i != VFIO_PCI_VGA_REGION_INDEX || errno != EINVAL;
            continue;
        }
        note("vfio region %u: size 0x%llx flags 0x%x", i,
             (unsigned long long)v->reg[i].size, v->reg[i].flags);
        if (i != VFIO_PCI_ROM_REGION_INDEX) {
            bad += v->reg[i].size != size[i];
        }
    }
    check(!bad, "vfio region sizes: BAR0 4 KiB, BAR1 256, BAR2 16 MiB, "
          "BAR4 16 KiB, config 256");
    check((v->reg[0].flags & VFIO_REGION_INFO_FLAG_MMAP) &&
          (v->reg[2].flags & VFIO_REGION_INFO_FLAG_MMAP),
          "vfio offers mmap of BAR0 and BAR2");
    /*
     * vfio reports the ROM only if pci_map_rom() accepts it, which wants
     * a PCI data structure ("PCIR") behind the 55 aa signature; testdev's
     * image (byte i = i & 0xff) has none.
     */
    note("vfio ROM region: %s", v->reg[6].size ? "present" :
         "size 0 (pci_map_rom() found no PCIR structure in the image)");

    check(vfio_cfg_read16(v, 0) == TESTDEV_VENDOR_ID &&
          vfio_cfg_read16(v, 2) == TESTDEV_DEVICE_ID,
          "vfio config region: vendor and device IDs");
    check(pread(v->device, &id, 4, v->reg[1].offset) == 4 && id == TESTDEV_ID,
          "vfio BAR1 (I/O) read at 0 is the ID");
    p = mmap(NULL, TESTDEV_BAR0_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
             v->device, v->reg[0].offset);
    if (check(p != MAP_FAILED, "mmap BAR0 through vfio")) {
        v->bar0 = p;
        check(rd32(v->bar0, TESTDEV_REG_ID) == TESTDEV_ID,
              "vfio BAR0 mapping reads the ID");
    }
}

struct vfio_intx {
    struct vfio *v;
    int efd;
};

static bool vfio_intx_wait(void *opaque, int ms)
{
    return wait_eventfd(((struct vfio_intx *)opaque)->efd, ms) != 0;
}

static void vfio_intx_unmask(void *opaque)
{
    vfio_set_irqs(((struct vfio_intx *)opaque)->v, VFIO_PCI_INTX_IRQ_INDEX,
                  VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_UNMASK, 0, 1,
                  NULL);
}

static void vfio_check_irqs(struct vfio *v)
{
    static const unsigned count[3] = { 1, TESTDEV_MSI_VECTORS,
                                       TESTDEV_MSIX_VECTORS };
    int efd[TESTDEV_MSIX_VECTORS], i, j, bad, stray;
    uint32_t trigger = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER;
    uint32_t irqs0, irqs1;
    uint64_t c;

    for (i = 0; i < 3; i++) {
        struct vfio_irq_info info = { .argsz = sizeof(info), .index = i };

        if (ioctl(v->device, VFIO_DEVICE_GET_IRQ_INFO, &info)) {
            info.count = info.flags = 0;
        }
        check(info.count == count[i] && (info.flags & VFIO_IRQ_INFO_EVENTFD),
              "vfio IRQ index %d (%s): %u vector(s), flags 0x%x", i,
              i == 0 ? "INTx" : i == 1 ? "MSI" : "MSI-X", info.count,
              info.flags);
    }
    for (i = 0; i < TESTDEV_MSIX_VECTORS; i++) {
        efd[i] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    }

    /* MSI-X: every vector reaches its own eventfd */
    irqs0 = rd32(v->bar0, TESTDEV_REG_IRQ_COUNT);
    if (check(vfio_set_irqs(v, VFIO_PCI_MSIX_IRQ_INDEX, trigger, 0,
                            TESTDEV_MSIX_VECTORS, efd),
              "enable MSI-X with 8 eventfds")) {
        note_interrupts("vfio-msix");
        for (bad = stray = 0, i = 0; i < TESTDEV_MSIX_VECTORS; i++) {
            wr32(v->bar0, TESTDEV_REG_MSIX, i);
            c = wait_eventfd(efd[i], 2000);
            bad += c != 1;
            for (j = 0; j < TESTDEV_MSIX_VECTORS; j++) {
                stray += j != i && wait_eventfd(efd[j], 0);
            }
        }
        irqs1 = rd32(v->bar0, TESTDEV_REG_IRQ_COUNT);
        check(!bad && !stray, "MSI-X: a write of n to MSIX interrupts vector "
              "n only, n = 0..7 (%d missed, %d stray)", bad, stray);
        check(irqs1 - irqs0 == TESTDEV_MSIX_VECTORS,
              "IRQ_COUNT counted 8 signals (%u)", irqs1 - irqs0);

        wr32(v->bar0, TESTDEV_REG_DMA_IRQ, 1);
        dma_run(v->bar0, TESTDEV_DMA_FILL, 0, TEST_IOVA, 0, 0);
        check(wait_eventfd(efd[0], 2000) == 1,
              "MSI-X: DMA_IRQ signals vector 0 after a DMA command");
        wr32(v->bar0, TESTDEV_REG_DMA_IRQ, 0);
        vfio_set_irqs(v, VFIO_PCI_MSIX_IRQ_INDEX,
                      VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER,
                      0, 0, NULL);
    }

    /* MSI */
    if (check(vfio_set_irqs(v, VFIO_PCI_MSI_IRQ_INDEX, trigger, 0, 1, efd),
              "enable MSI with an eventfd")) {
        note_interrupts("vfio-msi[");
        wr32(v->bar0, TESTDEV_REG_MSI, 1);
        check(wait_eventfd(efd[0], 2000) == 1, "MSI: a write to MSI "
              "interrupts the guest");
        wr32(v->bar0, TESTDEV_REG_MSI, 1);
        check(wait_eventfd(efd[0], 2000) == 1, "MSI: and again");
        vfio_set_irqs(v, VFIO_PCI_MSI_IRQ_INDEX,
                      VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER,
                      0, 0, NULL);
    }

    /* INTx, vfio's automasked model */
    if (check(vfio_set_irqs(v, VFIO_PCI_INTX_IRQ_INDEX, trigger, 0, 1, efd),
              "enable INTx with an eventfd")) {
        struct vfio_intx intx = { v, efd[0] };
        struct intx_ops ops = { vfio_intx_wait, vfio_intx_unmask, &intx };

        note_interrupts("vfio-intx");
        wr32(v->bar0, TESTDEV_REG_INTX, 1);
        check(wait_eventfd(efd[0], 2000) == 1, "vfio: raising INTx "
              "interrupts the guest");
        check(wait_eventfd(efd[0], 300) == 0, "vfio: INTx stays masked "
              "until unmasked");
        intx_cycles("vfio", v->bar0, &ops);
        vfio_set_irqs(v, VFIO_PCI_INTX_IRQ_INDEX,
                      VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER,
                      0, 0, NULL);
    }
    for (i = 0; i < TESTDEV_MSIX_VECTORS; i++) {
        close(efd[i]);
    }
}

static void vfio_check_dma(struct vfio *v)
{
    const size_t len = 0x10000;
    struct vfio_iommu_type1_dma_map map = {
        .argsz = sizeof(map),
        .flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
        .iova = TEST_IOVA,
        .size = len,
    };
    struct vfio_iommu_type1_dma_unmap unmap = {
        .argsz = sizeof(unmap), .iova = TEST_IOVA, .size = len,
    };
    uint8_t *buf;
    uint32_t st;
    size_t i;

    buf = mmap(NULL, len, PROT_READ | PROT_WRITE,
               MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (buf == MAP_FAILED) {
        check(false, "vfio: allocate a DMA buffer");
        return;
    }
    memset(buf, 0, len);
    map.vaddr = (uintptr_t)buf;
    if (!check(ioctl(v->container, VFIO_IOMMU_MAP_DMA, &map) == 0,
               "vfio: map 64 KiB at IOVA 0x%llx", TEST_IOVA)) {
        goto out;
    }
    vfio_cfg_write16(v, 4, vfio_cfg_read16(v, 4) | PCI_COMMAND_MASTER |
                           PCI_COMMAND_MEMORY);
    st = dma_run(v->bar0, TESTDEV_DMA_FILL, 0, TEST_IOVA, len, 0xc0ffee42);
    check(st == 0 && fill_errors(buf, len, 0xc0ffee42) == 0,
          "vfio: DMA fill of 64 KiB at an IOVA, through the vIOMMU (status "
          "%u)", st);
    for (i = 0; i < len; i++) {
        buf[i] = i ^ (i >> 8);
    }
    st = dma_run(v->bar0, TESTDEV_DMA_CHECKSUM, TEST_IOVA, 0, len, 0);
    check(st == 0 && rd64(v->bar0, TESTDEV_REG_DMA_RESULT) ==
          byte_sum(buf, len),
          "vfio: DMA checksum of 64 KiB at an IOVA (status %u)", st);
    st = dma_run(v->bar0, TESTDEV_DMA_FILL, 0, TEST_IOVA + len, 16, 0);
    check(st != 0, "vfio: DMA beyond the mapping fails (status %u)", st);
    vfio_cfg_write16(v, 4, vfio_cfg_read16(v, 4) & ~PCI_COMMAND_MASTER);
    check(ioctl(v->container, VFIO_IOMMU_UNMAP_DMA, &unmap) == 0,
          "vfio: unmap the IOVA range");
out:
    munmap(buf, len);
}

static void check_vfio(void)
{
    struct vfio v = { .container = -1, .group = -1, .device = -1 };
    bool ok;

    if (!check(access(SYS_PCI "/drivers/vfio-pci", F_OK) == 0,
               "vfio-pci is loaded")) {
        return;
    }
    write_text(dev_path("enable"), "0");
    ok = bind_driver("vfio-pci");
    if (!check(ok, "bind to vfio-pci (driver: '%s')", dev_driver())) {
        bind_driver("");
        return;
    }
    if (vfio_open(&v)) {
        vfio_check_regions(&v);
        if (v.bar0) {
            /* MSI and MSI-X messages are writes by the device, too */
            vfio_cfg_write16(&v, 4, vfio_cfg_read16(&v, 4) |
                             PCI_COMMAND_MASTER | PCI_COMMAND_MEMORY);
            check(vfio_cfg_read16(&v, 4) & PCI_COMMAND_MASTER,
                  "vfio: bus mastering on through the config region");
            vfio_check_irqs(&v);
            vfio_check_dma(&v);
            munmap((void *)v.bar0, TESTDEV_BAR0_SIZE);
        }
    }
    if (v.device >= 0) {
        close(v.device);
    }
    if (v.group >= 0) {
        close(v.group);
    }
    if (v.container >= 0) {
        close(v.container);
    }
    check(bind_driver(""), "unbind from vfio-pci");
}

/* ------------------------------------------------------------------------- */

static void hotplug(void)
{
    struct res res[7];
    double waited;
    bool came, gone;

    if (!check(count_devices() == 0, "no PCI function 0x%04x:0x%04x at boot",
               TESTDEV_VENDOR_ID, TESTDEV_DEVICE_ID)) {
        return;
    }
    note("hotplug: waiting");
    came = wait_devices(1, &waited);
    if (!check(came, "the function appeared, %.2f s after the guest "
               "started waiting", waited)) {
        return;
    }
    if (!find_device()) {
        return;
    }
    note("device %s", bdf);
    /*
     * The function is in sysfs as soon as the kernel has scanned it; its
     * BARs are assigned after that: wait for BAR0's address.
     */
    {
        double t0 = now_s();
        unsigned long long start = 0;

        while (now_s() - t0 < 10) {
            FILE *f = fopen(dev_path("resource"), "r");
            bool got = f && fscanf(f, "%llx", &start) == 1 && start;

            if (f) {
                fclose(f);
            }
            if (got) {
                break;
            }
            usleep(20000);
        }
        check(start, "the kernel assigned its BARs, %.2f s after it "
              "appeared (BAR0 at 0x%llx)", now_s() - t0, start);
    }
    check_identity();
    check_resources(res);
    /* the kernel routes a hot-plugged function's INTx when it is
     * enabled: check_bar0() enables it, then check_config() sees it */
    check_bar0();
    check_config();
    check_bar4();
    check_phys_dma("hot-plugged", true);
    check_uio();
    if (bar0) {
        munmap((void *)bar0, TESTDEV_BAR0_SIZE);
        bar0 = NULL;
    }
    write_text(dev_path("enable"), "0");
    note("hotplug: unplug now");
    gone = wait_devices(0, &waited);
    check(gone, "the function is gone from sysfs, %.2f s after the guest "
          "started waiting", waited);
    check(access(dev_dir, F_OK) != 0, "%s is gone", dev_dir);
}

int main(int argc, char **argv)
{
    struct res res[7];
    double t0 = now_s();

    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc > 1 && !strcmp(argv[1], "--hotplug")) {
        hotplug();
    } else if (find_device()) {
        note("device %s", bdf);
        check_identity();
        check_resources(res);
        check_config();
        check_bar0();
        check_bar1();
        check_bar2();
        check_bar4();
        check_rom(&res[6]);
        check_phys_dma("identity domain", true);
        check_uio();
        check_vfio();
        /*
         * A driver's request_region() revoked the earlier sysfs mappings
         * (CONFIG_IO_STRICT_DEVMEM): map BAR0 again.
         */
        write_text(dev_path("enable"), "1");
        if (bar0) {
            munmap((void *)bar0, TESTDEV_BAR0_SIZE);
            bar0 = map_resource("resource0", TESTDEV_BAR0_SIZE);
        }
        check_phys_dma("after vfio", false);
        if (bar0) {
            note("RESET_COUNT %u, IRQ_COUNT %u",
                 rd32(bar0, TESTDEV_REG_RESET_COUNT),
                 rd32(bar0, TESTDEV_REG_IRQ_COUNT));
        }
        write_text(dev_path("enable"), "0");
    }
    note("checks took %.2f s", now_s() - t0);
    printf("guest: %u passed, %u failed\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}
