/*
 * crypto-check: the devvm-crypto driver, as a program in the guest sees
 * it.  Runs from the initramfs /init of contrib/devvm/crypto/guest
 * (docs/devvm/crypto.rst, "The Linux driver").
 *
 *   1. the function in sysfs with the driver devvm_crypto bound, and
 *      /proc/crypto's sha256-devvm entry with "selftest : passed";
 *   2. AF_ALG (algif_hash) SHA-256 through sha256-devvm of 0, 1, 63, 64,
 *      65, 4095, 4096 bytes, 1 MiB and 16 MiB, from unaligned buffers,
 *      in one write and in uneven pieces, each compared with the kernel's
 *      sha256-generic and with busybox sha256sum of the same data;
 *   3. several threads hashing at once;
 *   4. the throughput through each, on the same data;
 *   5. lspci -vv: the IDs, BARs and MSI-X capability the device
 *      declares, and the driver in use;
 *   6. the driver unbound and bound again while threads hash, module
 *      removal refused while a transform is open, then done, and the
 *      module loaded again (its self-tests run again);
 *   7. with the driver unbound, this program as a hostile driver: it
 *      maps BAR0 through sysfs, builds a ring in its own locked memory
 *      (physical addresses from /proc/self/pagemap) and writes every
 *      malformed kind of descriptor, each completing with its error
 *      status and a log entry, a good one hashing right after each;
 *      then the driver is bound again and hashes.
 *
 * With --fault it only hashes 1 MiB after 1 MiB through sha256-devvm,
 * after saying "fault: hashing" (the host then kills the device): a
 * hash must fail with an error, not hang, and a later one succeed once
 * the device is back.
 *
 * Output on the console, one line per check:
 *   guest: ok N - what            guest: not ok N - what
 *   guest: # a note
 * and last "guest: P passed, F failed".  Exit status 1 if any failed.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_alg.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../crypto.h"

#define DIGEST      32
#define DRIVER      "sha256-devvm"
#define GENERIC     "sha256-generic"
#define THREADS     4
#define PER_THREAD  40

static unsigned n_test, n_pass, n_fail;
static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;

static bool __attribute__((format(printf, 2, 3)))
check(bool ok, const char *fmt, ...)
{
    va_list ap;

    pthread_mutex_lock(&out_lock);
    n_test++;
    ok ? n_pass++ : n_fail++;
    printf("guest: %s %u - ", ok ? "ok" : "not ok", n_test);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    pthread_mutex_unlock(&out_lock);
    return ok;
}

static void __attribute__((format(printf, 1, 2))) note(const char *fmt, ...)
{
    va_list ap;

    printf("guest: # ");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The text of @path (at most 1 MiB), or NULL. */
static char *read_file(const char *path)
{
    FILE *f = fopen(path, "r");
    char *buf;
    size_t n;

    if (!f) {
        return NULL;
    }
    buf = malloc(1 << 20);
    n = fread(buf, 1, (1 << 20) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

/* ---- AF_ALG --------------------------------------------------------------- */

/* A hash transform of @driver: the bound socket, or -errno. */
static int alg_open(const char *driver)
{
    struct sockaddr_alg sa = { .salg_family = AF_ALG };
    int fd = socket(AF_ALG, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

    if (fd < 0) {
        return -errno;
    }
    strcpy((char *)sa.salg_type, "hash");
    snprintf((char *)sa.salg_name, sizeof(sa.salg_name), "%s", driver);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int err = -errno;

        close(fd);
        return err;
    }
    return fd;
}

/*
 * SHA-256 of @len bytes at @p through the transform @tfm, written in
 * @pieces uneven parts (each an update); 0 or -errno.
 */
static int alg_hash(int tfm, const uint8_t *p, size_t len, unsigned pieces,
                    uint8_t *out)
{
    int op = accept4(tfm, NULL, 0, SOCK_CLOEXEC);
    size_t done = 0;
    unsigned i;
    ssize_t n;
    int err = 0;

    if (op < 0) {
        return -errno;
    }
    for (i = 0; i < pieces && !err; i++) {
        size_t end = i == pieces - 1 ? len : len / pieces * (i + 1) + i % 7;
        size_t want;

        end = end > len ? len : end;
        while (done < end) {
            want = end - done;
            n = send(op, p + done, want, i == pieces - 1 && done + want == len
                                         ? 0 : MSG_MORE);
            if (n < 0) {
                err = -errno;
                break;
            }
            done += n;
        }
    }
    if (!err && len == 0 && send(op, p, 0, 0) < 0) {
        err = -errno;
    }
    if (!err) {
        n = read(op, out, DIGEST);
        if (n != DIGEST) {
            err = n < 0 ? -errno : -EIO;
        }
    }
    close(op);
    return err;
}

/* busybox sha256sum of @len bytes at @p. */
static bool sha256sum(const uint8_t *p, size_t len, uint8_t *out)
{
    char line[128];
    FILE *f = fopen("/tmp/data", "w");
    unsigned i;
    bool ok;

    if (!f || fwrite(p, 1, len, f) != len) {
        if (f) {
            fclose(f);
        }
        return false;
    }
    fclose(f);
    f = popen("sha256sum /tmp/data", "r");
    ok = f && fgets(line, sizeof(line), f) && strlen(line) >= 64;
    for (i = 0; ok && i < DIGEST; i++) {
        ok = sscanf(line + 2 * i, "%2hhx", &out[i]) == 1;
    }
    if (f) {
        pclose(f);
    }
    unlink("/tmp/data");
    return ok;
}

static void fill(uint8_t *p, size_t len, uint32_t seed)
{
    size_t i;

    for (i = 0; i < len; i++) {
        seed = seed * 1103515245u + 12345u;
        p[i] = seed >> 16;
    }
}

static char *hex(const uint8_t *d, char *buf)
{
    unsigned i;

    for (i = 0; i < DIGEST; i++) {
        sprintf(buf + 2 * i, "%02x", d[i]);
    }
    return buf;
}

/* ---- the checks ----------------------------------------------------------- */

static bool find_device(char *bdf, size_t size)
{
    DIR *d = opendir("/sys/bus/pci/devices");
    struct dirent *e;
    bool found = false;

    while (d && (e = readdir(d))) {
        char path[300], *v, *dev;

        snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/vendor",
                 e->d_name);
        v = read_file(path);
        snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/device",
                 e->d_name);
        dev = read_file(path);
        if (v && dev && strtoul(v, NULL, 0) == CRYPTO_VENDOR_ID &&
            strtoul(dev, NULL, 0) == CRYPTO_DEVICE_ID) {
            snprintf(bdf, size, "%.63s", e->d_name);
            found = true;
        }
        free(v);
        free(dev);
    }
    if (d) {
        closedir(d);
    }
    return found;
}

static void check_binding(void)
{
    char bdf[64] = "", path[300], link[300] = "";
    char *crypto, *entry, *end;
    bool found = find_device(bdf, sizeof(bdf));
    ssize_t n;

    if (!check(found, "the function %04x:%04x is in sysfs (%s)",
               CRYPTO_VENDOR_ID, CRYPTO_DEVICE_ID, found ? bdf : "none")) {
        return;
    }
    snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/driver", bdf);
    n = readlink(path, link, sizeof(link) - 1);
    link[n > 0 ? n : 0] = '\0';
    check(n > 0 && strstr(link, "/devvm_crypto"), "the driver devvm_crypto "
          "is bound to it (%s)", n > 0 ? link : "none");

    /* the crypto manager tests it in a thread of its own */
    for (n = 0; n < 300; n++) {
        crypto = read_file("/proc/crypto");
        entry = crypto ? strstr(crypto, "driver       : " DRIVER "\n")
                       : NULL;
        if (entry && strstr(entry, "selftest     : ") &&
            !strncmp(strstr(entry, "selftest     : ") + 15, "passed", 6)) {
            break;
        }
        free(crypto);
        crypto = NULL;
        usleep(100000);
    }
    if (!crypto) {
        crypto = read_file("/proc/crypto");
    }
    entry = crypto ? strstr(crypto, "driver       : " DRIVER "\n") : NULL;
    if (!check(entry, "/proc/crypto has " DRIVER)) {
        free(crypto);
        return;
    }
    /* the entry: from its "name" line to the next blank line */
    while (entry > crypto && !(entry[-1] == '\n' && entry[-2] == '\n')) {
        entry--;
    }
    end = strstr(entry, "\n\n");
    if (end) {
        *end = '\0';
    }
    check(strstr(entry, "selftest     : passed") &&
          strstr(entry, "name         : sha256") &&
          strstr(entry, "priority     : 300") &&
          strstr(entry, "async        : yes"),
          DRIVER ": name sha256, priority 300, async, selftest passed");
    note("/proc/crypto:");
    for (char *l = strtok(entry, "\n"); l; l = strtok(NULL, "\n")) {
        note("  %s", l);
    }
    free(crypto);
}

static void check_sizes(int dev, int gen)
{
    static const size_t sizes[] = {
        0, 1, 63, 64, 65, 4095, 4096, 1 << 20, 16 << 20,
    };
    size_t i;

    for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        size_t len = sizes[i], off = 1 + i % 3;
        uint8_t *buf = malloc(len + 8);
        uint8_t a[DIGEST], b[DIGEST], c[DIGEST], d[DIGEST];
        char ha[65], hb[65];
        int e1, e2, e3;
        bool s;

        fill(buf + off, len, len);
        e1 = alg_hash(dev, buf + off, len, 1, a);
        e2 = alg_hash(dev, buf + off, len, len > 4 ? 5 : 1, d);
        e3 = alg_hash(gen, buf + off, len, 1, b);
        s = sha256sum(buf + off, len, c);
        check(!e1 && !e2 && !e3 && s && !memcmp(a, b, DIGEST) &&
              !memcmp(a, c, DIGEST) && !memcmp(a, d, DIGEST),
              "%zu bytes at +%zu: " DRIVER " (one write, and 5 pieces) = "
              GENERIC " = sha256sum = %s", len, off,
              e1 || e2 ? strerror(-(e1 ? e1 : e2)) : hex(a, ha));
        if (e1 || memcmp(a, b, DIGEST)) {
            note("  " GENERIC " %s", e3 ? strerror(-e3) : hex(b, hb));
        }
        free(buf);
    }
}

struct worker {
    int dev, gen;
    unsigned id, bad, errors;
};

static void *worker_run(void *opaque)
{
    struct worker *w = opaque;
    uint8_t *buf = malloc(70000);
    unsigned i;

    for (i = 0; i < PER_THREAD; i++) {
        size_t len = (w->id * 7919 + i * 104729) % 65536;
        uint8_t a[DIGEST], b[DIGEST];

        fill(buf, len, w->id * 1000 + i);
        if (alg_hash(w->dev, buf + w->id % 4, len, 1 + i % 3, a) ||
            alg_hash(w->gen, buf + w->id % 4, len, 1, b)) {
            w->errors++;
        } else if (memcmp(a, b, DIGEST)) {
            w->bad++;
        }
    }
    free(buf);
    return NULL;
}

static void check_threads(int dev, int gen)
{
    pthread_t t[THREADS];
    struct worker w[THREADS];
    unsigned i, bad = 0, errors = 0;

    for (i = 0; i < THREADS; i++) {
        w[i] = (struct worker){ .dev = dev, .gen = gen, .id = i };
        pthread_create(&t[i], NULL, worker_run, &w[i]);
    }
    for (i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        bad += w[i].bad;
        errors += w[i].errors;
    }
    check(!bad && !errors, "%u threads x %u hashes at once (up to 64 KiB, "
          "in 1 to 3 pieces): %u wrong, %u errors", THREADS, PER_THREAD,
          bad, errors);
}

static void throughput(int dev, int gen)
{
    size_t len = 16 << 20;
    uint8_t *buf = malloc(len);
    uint8_t d[DIGEST];
    double t0, t_dev, t_gen;
    int rounds = 4, i, err = 0;

    fill(buf, len, 42);
    t0 = now_s();
    for (i = 0; i < rounds && !err; i++) {
        err = alg_hash(dev, buf, len, 1, d);
    }
    t_dev = now_s() - t0;
    t0 = now_s();
    for (i = 0; i < rounds && !err; i++) {
        err = alg_hash(gen, buf, len, 1, d);
    }
    t_gen = now_s() - t0;
    if (check(!err, "throughput measured (%d x 16 MiB each)", rounds)) {
        note("throughput: " DRIVER " %.1f MB/s, " GENERIC " %.1f MB/s "
             "(16 MiB x %d, AF_ALG, this guest)",
             rounds * len / t_dev / 1e6, rounds * len / t_gen / 1e6, rounds);
    }
    free(buf);
}

/* lspci -vv of the function, as a user would look at it. */
static void check_lspci(void)
{
    FILE *f = popen("lspci -vv -nn -d 1af4:10f2 2>&1", "r");
    static char out[16384];
    size_t n = f ? fread(out, 1, sizeof(out) - 1, f) : 0;
    char *copy, *l;

    if (f) {
        pclose(f);
    }
    out[n] = '\0';
    copy = strdup(out);
    note("lspci -vv -nn -d 1af4:10f2:");
    for (l = strtok(copy, "\n"); l; l = strtok(NULL, "\n")) {
        note("  %s", l);
    }
    free(copy);
    check(strstr(out, "[1af4:10f2] (rev 01)") &&
          strstr(out, "Subsystem: ") && strstr(out, "[1af4:1100]"),
          "lspci: 1af4:10f2 rev 01, subsystem 1af4:1100");
    check(strstr(out, "Region 0: Memory at") && strstr(out, "Region 2: Memory at")
          && strstr(out, "(32-bit, non-prefetchable) [size=4K]"),
          "lspci: BAR0 and BAR2, 4 KiB of 32-bit memory each");
    check(strstr(out, "MSI-X: Enable+ Count=1") &&
          strstr(out, "Vector table: BAR=2 offset=00000000") &&
          strstr(out, "PBA: BAR=2 offset=00000800"),
          "lspci: MSI-X enabled, 1 vector, table and PBA in BAR2");
    check(strstr(out, "Kernel driver in use: devvm_crypto") != NULL,
          "lspci: kernel driver in use: devvm_crypto");
}

/* ---- the driver's life cycle under load ------------------------------- */

static char bdf[64];

static int write_text(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY);
    ssize_t n;
    int err = 0;

    if (fd < 0) {
        return -errno;
    }
    n = write(fd, text, strlen(text));
    if (n < 0) {
        err = -errno;
    }
    close(fd);
    return err;
}

static bool driver_bound(void)
{
    char path[300];

    snprintf(path, sizeof(path), "/sys/bus/pci/drivers/devvm_crypto/%s",
             bdf);
    return access(path, F_OK) == 0;
}

struct loader {
    volatile bool stop;
    unsigned ok, errors, wrong;
};

static void *loader_run(void *opaque)
{
    struct loader *l = opaque;
    uint8_t *buf = malloc(300000);
    uint8_t a[DIGEST], b[DIGEST];
    int gen = alg_open(GENERIC);
    unsigned i = 0;

    while (!l->stop) {
        size_t len = (i * 7919) % 300000;
        int dev = alg_open(DRIVER);

        fill(buf, len, i++);
        if (dev < 0 || alg_hash(dev, buf, len, 2, a)) {
            l->errors++;
        } else if (alg_hash(gen, buf, len, 1, b) || memcmp(a, b, DIGEST)) {
            l->wrong++;
        } else {
            l->ok++;
        }
        if (dev >= 0) {
            close(dev);
        }
    }
    close(gen);
    free(buf);
    return NULL;
}

static void check_lifecycle(void)
{
    struct loader l = { 0 };
    pthread_t t[2];
    unsigned ok_before, i;
    int dev, err;

    for (i = 0; i < 2; i++) {
        pthread_create(&t[i], NULL, loader_run, &l);
    }
    usleep(300000);
    ok_before = l.ok;
    err = write_text("/sys/bus/pci/drivers/devvm_crypto/unbind", bdf);
    check(!err && !driver_bound(), "unbind while 2 threads hash (%u hashes "
          "done): %s", ok_before, err ? strerror(-err) : "unbound");
    usleep(300000);
    err = write_text("/sys/bus/pci/drivers/devvm_crypto/bind", bdf);
    check(!err && driver_bound(), "bind again while they hash: %s",
          err ? strerror(-err) : "bound");
    ok_before = l.ok;
    usleep(500000);
    l.stop = true;
    for (i = 0; i < 2; i++) {
        pthread_join(t[i], NULL);
    }
    check(!l.wrong && l.ok > ok_before, "the threads hashed on: %u right "
          "after the rebind, %u errors while unbound, 0 wrong (%u)",
          l.ok - ok_before, l.errors, l.wrong);

    dev = alg_open(DRIVER);
    err = system("rmmod devvm_crypto 2>/dev/null");
    check(dev >= 0 && err != 0 && driver_bound(), "rmmod refused while an "
          "AF_ALG transform of " DRIVER " is open (it holds the module)");
    if (dev >= 0) {
        close(dev);
    }
    /* the transform goes when its socket is released */
    for (i = 0; i < 50 && system("rmmod devvm_crypto 2>/dev/null"); i++) {
        usleep(100000);
    }
    check(access("/sys/module/devvm_crypto", F_OK) != 0, "rmmod once it is "
          "closed: the module is gone");
    err = system("modprobe devvm_crypto");
    for (i = 0; i < 100; i++) {
        char *c = read_file("/proc/crypto");
        bool passed = c && strstr(c, "driver       : " DRIVER "\n") &&
                      strstr(strstr(c, "driver       : " DRIVER "\n"),
                             "selftest     : passed");

        free(c);
        if (passed) {
            break;
        }
        usleep(100000);
    }
    dev = alg_open(DRIVER);
    {
        uint8_t a[DIGEST], b[DIGEST];
        uint8_t data[1000];
        int gen = alg_open(GENERIC);

        fill(data, sizeof(data), 5);
        check(!err && dev >= 0 && !alg_hash(dev, data, sizeof(data), 1, a) &&
              !alg_hash(gen, data, sizeof(data), 1, b) &&
              !memcmp(a, b, DIGEST), "modprobe again: self-tests passed, "
              "a hash through " DRIVER " is right");
        close(gen);
    }
    if (dev >= 0) {
        close(dev);
    }
}

/* ---- a hostile driver --------------------------------------------------- */

#define PAGE 4096

static uint64_t virt_to_phys(const void *p)
{
    uint64_t e = 0, v = (uintptr_t)p;
    int fd = open("/proc/self/pagemap", O_RDONLY);

    if (fd < 0) {
        return 0;
    }
    if (pread(fd, &e, 8, v / PAGE * 8) != 8) {
        e = 0;
    }
    close(fd);
    if (!(e >> 63) || !(e & ((1ull << 55) - 1))) {
        return 0;
    }
    return (e & ((1ull << 55) - 1)) * PAGE + v % PAGE;
}

struct hostile {
    volatile uint32_t *regs;
    uint8_t *mem;               /* 4 locked pages: ring, SG, data, out */
    uint64_t phys[4];
    uint32_t prod;
};

static void le64(uint8_t *p, uint64_t v)
{
    memcpy(p, &v, 8);           /* x86: little-endian */
}

/* Post one descriptor; wait for it; its status word. */
static uint32_t hostile_run(struct hostile *h, uint8_t op, uint8_t flags,
                            uint16_t count, uint64_t sg, uint64_t dst,
                            uint32_t dst_len, uint64_t state)
{
    uint8_t *d = h->mem + (h->prod % 8) * CRYPTO_DESC_SIZE;
    uint32_t st;
    int i;

    memset(d, 0, CRYPTO_DESC_SIZE);
    d[CRYPTO_D_OP] = op;
    d[CRYPTO_D_FLAGS] = flags;
    memcpy(d + CRYPTO_D_SG_COUNT, &count, 2);
    le64(d + CRYPTO_D_SG_ADDR, sg);
    le64(d + CRYPTO_D_DST_ADDR, dst);
    memcpy(d + CRYPTO_D_DST_LEN, &dst_len, 4);
    le64(d + CRYPTO_D_STATE_ADDR, state);
    __sync_synchronize();
    h->regs[CRYPTO_REG_RING_PROD / 4] = ++h->prod;
    for (i = 0; i < 5000 && h->regs[CRYPTO_REG_RING_CONS / 4] != h->prod;
         i++) {
        usleep(1000);
    }
    __sync_synchronize();
    memcpy(&st, d + CRYPTO_D_STATUS, 4);
    return h->regs[CRYPTO_REG_RING_CONS / 4] == h->prod ? st : 0;
}

static void check_hostile(void)
{
    static const char good[] = "a good request after a bad one";
    struct hostile h = { 0 };
    char path[300];
    uint8_t want[DIGEST];
    uint64_t sg, data, dst, state;
    int fd, gen, i, err;
    void *map;
    struct {
        const char *what;
        uint8_t op, flags;
        uint16_t count;
        int sg_bad, dst_bad, state_bad;
        uint32_t dst_len;
        uint32_t status;
    } cases[] = {
        { "an unknown operation", 9, CRYPTO_F_INIT | CRYPTO_F_FINAL, 1,
          0, 0, 0, 32, CRYPTO_ST_BAD_OP },
        { "INIT and STATE_IN together", CRYPTO_OP_SHA256,
          CRYPTO_F_INIT | CRYPTO_F_STATE_IN | CRYPTO_F_FINAL, 1, 0, 0, 0, 32,
          CRYPTO_ST_BAD_FLAGS },
        { "257 SG entries", CRYPTO_OP_SHA256, CRYPTO_F_INIT | CRYPTO_F_FINAL,
          257, 0, 0, 0, 32, CRYPTO_ST_BAD_LEN },
        { "a 16-byte digest buffer", CRYPTO_OP_SHA256,
          CRYPTO_F_INIT | CRYPTO_F_FINAL, 1, 0, 0, 0, 16, CRYPTO_ST_BAD_LEN },
        { "an SG list outside guest memory", CRYPTO_OP_SHA256,
          CRYPTO_F_INIT | CRYPTO_F_FINAL, 1, 1, 0, 0, 32,
          CRYPTO_ST_DMA_FAULT },
        { "a digest outside guest memory", CRYPTO_OP_SHA256,
          CRYPTO_F_INIT | CRYPTO_F_FINAL, 1, 0, 1, 0, 32,
          CRYPTO_ST_DMA_FAULT },
        { "a state that is not one", CRYPTO_OP_SHA256,
          CRYPTO_F_STATE_IN | CRYPTO_F_FINAL, 1, 0, 0, 1, 32,
          CRYPTO_ST_BAD_STATE },
    };

    err = write_text("/sys/bus/pci/drivers/devvm_crypto/unbind", bdf);
    if (!check(!err, "unbind the driver: this program drives the device")) {
        return;
    }
    snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/enable", bdf);
    write_text(path, "1");
    snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/config", bdf);
    fd = open(path, O_RDWR);
    if (fd >= 0) {
        uint16_t cmd;

        pread(fd, &cmd, 2, 4);
        cmd |= 0x6;             /* memory, bus master */
        pwrite(fd, &cmd, 2, 4);
        close(fd);
    }
    snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/resource0", bdf);
    fd = open(path, O_RDWR | O_SYNC);
    map = fd < 0 ? MAP_FAILED : mmap(NULL, CRYPTO_BAR0_SIZE,
                                     PROT_READ | PROT_WRITE, MAP_SHARED, fd,
                                     0);
    if (fd >= 0) {
        close(fd);
    }
    h.mem = mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE | MAP_LOCKED, -1,
                 0);
    if (!check(map != MAP_FAILED && h.mem != MAP_FAILED, "map BAR0 "
               "(resource0) and lock 4 pages of memory")) {
        return;
    }
    h.regs = map;
    memset(h.mem, 0, 4 * PAGE);
    for (i = 0; i < 4; i++) {
        h.phys[i] = virt_to_phys(h.mem + i * PAGE);
    }
    if (!check(h.phys[0] && h.phys[1] && h.phys[2] && h.phys[3],
               "physical addresses from /proc/self/pagemap")) {
        return;
    }
    sg = h.phys[1];
    data = h.phys[2];
    dst = h.phys[3];
    state = h.phys[3] + 512;
    memcpy(h.mem + 2 * PAGE, good, sizeof(good) - 1);
    le64(h.mem + PAGE, data);
    {
        uint32_t len = sizeof(good) - 1;

        memcpy(h.mem + PAGE + 8, &len, 4);
    }
    gen = alg_open(GENERIC);
    alg_hash(gen, (const uint8_t *)good, sizeof(good) - 1, 1, want);
    close(gen);

    h.regs[CRYPTO_REG_CTRL / 4] = CRYPTO_CTRL_RESET;
    h.regs[CRYPTO_REG_RING_BASE_LO / 4] = (uint32_t)h.phys[0];
    h.regs[CRYPTO_REG_RING_BASE_HI / 4] = h.phys[0] >> 32;
    h.regs[CRYPTO_REG_RING_SIZE / 4] = 8;
    h.regs[CRYPTO_REG_CTRL / 4] = CRYPTO_CTRL_ENABLE;
    check(h.regs[CRYPTO_REG_STATUS / 4] == CRYPTO_STATUS_ENABLED,
          "the engine takes a ring in this program's memory");

    for (i = 0; i < (int)(sizeof(cases) / sizeof(cases[0])); i++) {
        uint32_t errs = h.regs[CRYPTO_REG_ERR_COUNT / 4], st, st2;

        st = hostile_run(&h, cases[i].op, cases[i].flags, cases[i].count,
                         cases[i].sg_bad ? 0x7f0000000000ull : sg,
                         cases[i].dst_bad ? 0x7f0000001000ull : dst,
                         cases[i].dst_len,
                         cases[i].state_bad ? data : state);
        memset(h.mem + 3 * PAGE, 0, DIGEST);
        st2 = hostile_run(&h, CRYPTO_OP_SHA256,
                          CRYPTO_F_INIT | CRYPTO_F_FINAL, 1, sg, dst, 32, 0);
        check(st == (CRYPTO_ST_DONE | cases[i].status) &&
              h.regs[CRYPTO_REG_ERR_COUNT / 4] == errs + 1 &&
              st2 == CRYPTO_ST_DONE &&
              !memcmp(h.mem + 3 * PAGE, want, DIGEST),
              "hostile: %s: status 0x%08x, logged; the next request "
              "hashes right", cases[i].what, st);
    }
    {
        uint32_t errs = h.regs[CRYPTO_REG_ERR_COUNT / 4];

        h.regs[CRYPTO_REG_RING_PROD / 4] = h.prod + 100;
        check(h.regs[CRYPTO_REG_ERR_COUNT / 4] == errs + 1 &&
              h.regs[CRYPTO_REG_RING_PROD / 4] == h.prod &&
              hostile_run(&h, CRYPTO_OP_SHA256,
                          CRYPTO_F_INIT | CRYPTO_F_FINAL, 1, sg, dst, 32, 0)
              == CRYPTO_ST_DONE,
              "hostile: a producer index 100 ahead: logged, ignored; the "
              "ring goes on");
    }
    h.regs[CRYPTO_REG_CTRL / 4] = CRYPTO_CTRL_RESET;
    munmap(map, CRYPTO_BAR0_SIZE);
    munmap(h.mem, 4 * PAGE);

    err = write_text("/sys/bus/pci/drivers/devvm_crypto/bind", bdf);
    {
        uint8_t a[DIGEST];
        int dev = alg_open(DRIVER);

        check(!err && driver_bound() && dev >= 0 &&
              !alg_hash(dev, (const uint8_t *)good, sizeof(good) - 1, 1, a)
              && !memcmp(a, want, DIGEST),
              "the driver bound again hashes right");
        if (dev >= 0) {
            close(dev);
        }
    }
}

/* --fault: hash until a hash fails, then until one succeeds again. */
static int fault(void)
{
    size_t len = 1 << 20;
    uint8_t *buf = malloc(len);
    uint8_t a[DIGEST], b[DIGEST];
    double t0, failed_at = 0, back_at = 0;
    int dev = alg_open(DRIVER), gen = alg_open(GENERIC), err = 0;
    unsigned before = 0;

    fill(buf, len, 7);
    if (!check(dev >= 0 && gen >= 0 && !alg_hash(gen, buf, len, 1, b),
               "AF_ALG binds " DRIVER " and " GENERIC)) {
        return 1;
    }
    note("fault: hashing");
    t0 = now_s();
    while (now_s() - t0 < 120) {
        int e = alg_hash(dev, buf, len, 1, a);

        if (e && !failed_at) {
            failed_at = now_s() - t0;
            err = e;
        } else if (!e && !failed_at) {
            before++;
            if (memcmp(a, b, DIGEST)) {
                err = -EBADMSG;
                break;
            }
        } else if (!e && failed_at) {
            back_at = now_s() - t0;
            break;
        }
    }
    check(failed_at && err != -EBADMSG, "with the device gone a hash "
          "returned an error, not a hang (%s, %.2f s in, after %u good "
          "hashes)", failed_at ? strerror(-err) : "none", failed_at, before);
    check(back_at && !memcmp(a, b, DIGEST), "a later hash succeeds and is "
          "right, %.2f s after the failure", back_at - failed_at);
    printf("guest: %u passed, %u failed\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}

int main(int argc, char **argv)
{
    double t0 = now_s();
    int dev, gen;

    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc > 1 && !strcmp(argv[1], "--fault")) {
        return fault();
    }
    check_binding();
    check_lspci();
    dev = alg_open(DRIVER);
    gen = alg_open(GENERIC);
    if (check(dev >= 0 && gen >= 0, "AF_ALG binds " DRIVER " and " GENERIC
              " (%s)", dev < 0 ? strerror(-dev) :
              gen < 0 ? strerror(-gen) : "ok")) {
        check_sizes(dev, gen);
        check_threads(dev, gen);
        throughput(dev, gen);
    }
    if (dev >= 0) {
        close(dev);
    }
    if (gen >= 0) {
        close(gen);
    }
    if (find_device(bdf, sizeof(bdf))) {
        check_lifecycle();
        check_hostile();
    }
    note("checks took %.2f s", now_s() - t0);
    printf("guest: %u passed, %u failed\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}
