/*
 * devvm-demo: freestanding guest software for devvm's main job.
 *
 * Booted as a PVH kernel in the client VM (-M pc), it finds the
 * regression-suite device (devvm-testdev, 1af4:10f1, docs/devvm/testdev.rst)
 * that -device devvm-proxy makes appear as a PCI function, places its BARs
 * itself, and drives it the way a driver would: registers over MMIO and
 * port I/O, the DMA engine into and out of guest RAM, MSI and MSI-X.
 * Every check prints "demo: ok WHAT" or "demo: FAIL WHAT (got X, want Y)";
 * the last line is "demo: N checks passed" (", M FAILED" when some did).
 * demo_main's return value leaves QEMU through isa-debug-exit: 0 when all
 * passed (QEMU exit status 1), 1 otherwise (status 3).
 *
 * 32-bit flat protected mode, no paging; all MMIO is below 4 GiB.
 * INTx is not tested: it needs IOAPIC and PIRQ routing this demo does
 * not set up.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "testdev.h"

/* ---- machine constants (-M pc) ------------------------------------------ */

#define COM1            0x3f8
#define COM1_LSR        (COM1 + 5)
#define LSR_THRE        0x20

#define PCI_CONF_ADDR   0xcf8
#define PCI_CONF_DATA   0xcfc

#define PIC1_DATA       0x21
#define PIC2_DATA       0xa1

#define LAPIC_BASE      0xfee00000u
#define LAPIC_TPR       0x80
#define LAPIC_EOI       0xb0
#define LAPIC_SVR       0xf0
#define MSI_ADDR        0xfee00000u     /* fixed delivery to APIC ID 0 */

#define HVM_START_MAGIC 0x336ec578u

/*
 * Where the demo places the function's BARs: memory BARs top-down below
 * the IOAPIC (0xfec00000), in the 32-bit PCI hole that -nodefaults
 * leaves to this device alone; I/O BARs upwards from 0xc000.
 */
#define MEM_TOP         0xfec00000u
#define MEM_MAX_BAR     0x4000000u      /* larger BARs stay where they are */
#define IO_BASE         0xc000u

/* guest RAM the DMA tests use (the client VM has 128 MiB) */
#define DMA_A           0x01000000u     /* 16 MiB */
#define DMA_B           0x01200000u
#define DMA_AREA        0x00200000u     /* each: guard, 1 MiB, guard */
#define GUARD           0x1000u
#define GUARD_BYTE      0xee
#define DMA_BIG         TESTDEV_DMA_MAX_LEN
#define DMA_ODD_OFF     4093u           /* unaligned, crossing pages */
#define DMA_ODD_LEN     (3 * 4096 + 77)
#define DMA_UNMAPPED    0xe0000000u     /* PCI hole, nothing there */

/* IDT vectors */
#define VEC_MSI         0x40
#define VEC_MSIX        0x50            /* + MSI-X vector number */
#define VEC_EDU         0x60            /* edu's MSI, when timed */
#define VEC_SPURIOUS    0xff

/* PCI config space */
#define PCI_VENDOR_ID   0x00
#define PCI_COMMAND     0x04
#define PCI_STATUS      0x06
#define PCI_REVISION    0x08
#define PCI_HEADER_TYPE 0x0e
#define PCI_BAR0        0x10
#define PCI_SUBSYS_VID  0x2c
#define PCI_SUBSYS_ID   0x2e
#define PCI_ROM         0x30
#define PCI_CAP_PTR     0x34
#define PCI_INT_PIN     0x3d
#define CMD_IO          0x1
#define CMD_MEM         0x2
#define CMD_MASTER      0x4
#define STATUS_CAPS     0x10
#define CAP_ID_MSI      0x05
#define CAP_ID_VENDOR   0x09
#define CAP_ID_MSIX     0x11
#define MSI_CTRL_EN     0x0001
#define MSIX_CTRL_EN    0x8000
#define MSIX_CTRL_MASK  0x4000

void demo_exit(uint32_t value) __attribute__((noreturn));
void demo_isr(uint32_t vector, uint32_t *frame);
uint32_t demo_main(uint32_t start_info);
extern const uint32_t isr_table[256];

/* ---- port and memory access --------------------------------------------- */

static inline void outb(uint16_t port, uint8_t v)
{
    asm volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline void outw(uint16_t port, uint16_t v)
{
    asm volatile("outw %0, %1" : : "a"(v), "Nd"(port));
}

static inline void outl(uint16_t port, uint32_t v)
{
    asm volatile("outl %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint8_t inb(uint16_t port)
{
    uint8_t v;

    asm volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}

static inline uint16_t inw(uint16_t port)
{
    uint16_t v;

    asm volatile("inw %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}

static inline uint32_t inl(uint16_t port)
{
    uint32_t v;

    asm volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}

static inline uint8_t rd8(uint32_t a)
{
    return *(volatile uint8_t *)a;
}

static inline uint16_t rd16(uint32_t a)
{
    return *(volatile uint16_t *)a;
}

static inline uint32_t rd32(uint32_t a)
{
    return *(volatile uint32_t *)a;
}

static inline void wr8(uint32_t a, uint8_t v)
{
    *(volatile uint8_t *)a = v;
}

static inline void wr16(uint32_t a, uint16_t v)
{
    *(volatile uint16_t *)a = v;
}

static inline void wr32(uint32_t a, uint32_t v)
{
    *(volatile uint32_t *)a = v;
}

/*
 * One 8-byte access through an MMX register (CR0.EM/TS cleared first).
 * No clobber: with -mgeneral-regs-only the compiler never uses %mm0.
 */
static inline uint64_t rd64(uint32_t a)
{
    uint64_t v;

    asm volatile("movq (%1), %%mm0\n\t"
                 "movq %%mm0, %0\n\t"
                 "emms"
                 : "=m"(v) : "r"(a) : "memory");
    return v;
}

static inline void wr64(uint32_t a, uint64_t v)
{
    asm volatile("movq %0, %%mm0\n\t"
                 "movq %%mm0, (%1)\n\t"
                 "emms"
                 : : "m"(v), "r"(a) : "memory");
}

static inline uint64_t rdtsc(void)
{
    uint64_t v;

    asm volatile("rdtsc" : "=A"(v));
    return v;
}

/* gcc may emit calls to these even in freestanding code */
void *memset(void *d, int c, size_t n)
{
    uint8_t *p = d;

    while (n--) {
        *p++ = c;
    }
    return d;
}

void *memcpy(void *d, const void *s, size_t n)
{
    uint8_t *p = d;
    const uint8_t *q = s;

    while (n--) {
        *p++ = *q++;
    }
    return d;
}

/* ---- serial output ------------------------------------------------------ */

static void putch(char c)
{
    while (!(inb(COM1_LSR) & LSR_THRE)) {
        /* wait for the transmit holding register */
    }
    outb(COM1, c);
}

static void putstr(const char *s)
{
    while (*s) {
        putch(*s++);
    }
}

/*
 * A small printf: %s %c %d %u %x with an optional 0 flag and width, and
 * "ll" for a 64-bit argument (hex only; decimal is 32-bit).
 */
static void vpr(const char *fmt, va_list ap)
{
    for (; *fmt; fmt++) {
        char buf[24], pad = ' ';
        int width = 0, longs = 0, n = 0;
        uint64_t v;

        if (*fmt != '%') {
            putch(*fmt);
            continue;
        }
        fmt++;
        if (*fmt == '0') {
            pad = '0';
            fmt++;
        }
        while (*fmt >= '0' && *fmt <= '9') {
            width = width * 10 + *fmt++ - '0';
        }
        while (*fmt == 'l') {
            longs++;
            fmt++;
        }
        switch (*fmt) {
        case 's':
            putstr(va_arg(ap, const char *));
            continue;
        case 'c':
            putch(va_arg(ap, int));
            continue;
        case 'd':
        case 'u':
        case 'x':
            v = longs >= 2 ? va_arg(ap, uint64_t) : va_arg(ap, uint32_t);
            if (*fmt == 'd' && (int32_t)v < 0) {
                putch('-');
                v = -(int32_t)v;
            }
            if (*fmt == 'x') {
                do {
                    buf[n++] = "0123456789abcdef"[v & 15];
                    v >>= 4;
                } while (v);
            } else {
                uint32_t w = v;

                do {
                    buf[n++] = '0' + w % 10;
                    w /= 10;
                } while (w);
            }
            while (n < width) {
                buf[n++] = pad;
            }
            while (n) {
                putch(buf[--n]);
            }
            continue;
        case '%':
            putch('%');
            continue;
        default:
            putch('?');
            continue;
        }
    }
}

static void pr(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vpr(fmt, ap);
    va_end(ap);
}

/* ---- checks ------------------------------------------------------------- */

static unsigned n_ok, n_fail;

static void print_val(uint64_t v)
{
    if (v >> 32) {
        pr("0x%llx", v);
    } else {
        pr("0x%x", (uint32_t)v);
    }
}

/* "demo: ok WHAT" when got == want, else "demo: FAIL WHAT (got, want)" */
static bool check(uint64_t got, uint64_t want, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    if (got == want) {
        pr("demo: ok ");
        vpr(fmt, ap);
        pr("\n");
        n_ok++;
    } else {
        pr("demo: FAIL ");
        vpr(fmt, ap);
        pr(" (got ");
        print_val(got);
        pr(", want ");
        print_val(want);
        pr(")\n");
        n_fail++;
    }
    va_end(ap);
    return got == want;
}

typedef uint8_t ExpectFn(uint32_t i, uint32_t arg);

static uint8_t expect_const(uint32_t i, uint32_t arg)
{
    return arg;
}

/* DMA_FILL: byte i is byte i mod 4 of the pattern */
static uint8_t expect_pattern(uint32_t i, uint32_t arg)
{
    return arg >> (8 * (i & 3));
}

/* pseudo-random contents the CPU writes for copy and checksum */
static uint8_t expect_hash(uint32_t i, uint32_t arg)
{
    uint32_t x = (i + arg) * 2654435761u;

    return (x ^ (x >> 15)) >> 7;
}

/* Check len bytes at addr against expect(first + i, arg). */
static bool check_mem(uint32_t addr, uint32_t len, ExpectFn *expect,
                      uint32_t first, uint32_t arg, const char *fmt, ...)
{
    const volatile uint8_t *p = (const volatile uint8_t *)addr;
    va_list ap;
    uint32_t i;

    for (i = 0; i < len; i++) {
        if (p[i] != expect(first + i, arg)) {
            break;
        }
    }
    va_start(ap, fmt);
    if (i == len) {
        pr("demo: ok ");
        vpr(fmt, ap);
        pr("\n");
        n_ok++;
    } else {
        pr("demo: FAIL ");
        vpr(fmt, ap);
        pr(" (got 0x%02x at +0x%x, want 0x%02x)\n", p[i], i,
           expect(first + i, arg));
        n_fail++;
    }
    va_end(ap);
    return i == len;
}

static void fill_mem(uint32_t addr, uint32_t len, ExpectFn *expect,
                     uint32_t first, uint32_t arg)
{
    uint8_t *p = (uint8_t *)addr;
    uint32_t i;

    for (i = 0; i < len; i++) {
        p[i] = expect(first + i, arg);
    }
}

static uint64_t byte_sum(uint32_t addr, uint32_t len)
{
    const uint8_t *p = (const uint8_t *)addr;
    uint64_t sum = 0;
    uint32_t i;

    for (i = 0; i < len; i++) {
        sum += p[i];
    }
    return sum;
}

/* ---- PCI configuration space (0xcf8/0xcfc) ------------------------------ */

static uint32_t cfg_addr(uint32_t bdf, uint32_t off)
{
    return 0x80000000u | (bdf << 8) | (off & 0xfc);
}

static uint32_t cfg_rd32(uint32_t bdf, uint32_t off)
{
    outl(PCI_CONF_ADDR, cfg_addr(bdf, off));
    return inl(PCI_CONF_DATA);
}

static uint16_t cfg_rd16(uint32_t bdf, uint32_t off)
{
    outl(PCI_CONF_ADDR, cfg_addr(bdf, off));
    return inw(PCI_CONF_DATA + (off & 2));
}

static uint8_t cfg_rd8(uint32_t bdf, uint32_t off)
{
    outl(PCI_CONF_ADDR, cfg_addr(bdf, off));
    return inb(PCI_CONF_DATA + (off & 3));
}

static void cfg_wr32(uint32_t bdf, uint32_t off, uint32_t v)
{
    outl(PCI_CONF_ADDR, cfg_addr(bdf, off));
    outl(PCI_CONF_DATA, v);
}

static void cfg_wr16(uint32_t bdf, uint32_t off, uint16_t v)
{
    outl(PCI_CONF_ADDR, cfg_addr(bdf, off));
    outw(PCI_CONF_DATA + (off & 2), v);
}

static uint32_t bdf_dev(uint32_t bdf)
{
    return (bdf >> 3) & 31;
}

static uint32_t bdf_fn(uint32_t bdf)
{
    return bdf & 7;
}

/* Scan bus 0, print every function, return the test device's or -1. */
static int32_t pci_find(uint16_t vendor, uint16_t device)
{
    int32_t found = -1;
    uint32_t dev, fn;

    for (dev = 0; dev < 32; dev++) {
        for (fn = 0; fn < 8; fn++) {
            uint32_t bdf = (dev << 3) | fn;
            uint32_t id = cfg_rd32(bdf, PCI_VENDOR_ID);
            uint32_t class = cfg_rd32(bdf, PCI_REVISION) >> 8;

            if ((id & 0xffff) == 0xffff) {
                if (fn == 0) {
                    break;
                }
                continue;
            }
            pr("demo: pci 00:%02x.%u %04x:%04x class %06x\n", dev, fn,
               id & 0xffff, id >> 16, class);
            if ((id & 0xffff) == vendor && (id >> 16) == device &&
                found < 0) {
                found = bdf;
            }
            if (fn == 0 && !(cfg_rd8(bdf, PCI_HEADER_TYPE) & 0x80)) {
                break;
            }
        }
    }
    return found;
}

/* Capability with this id, or 0. */
static uint32_t pci_find_cap(uint32_t bdf, uint8_t id)
{
    uint32_t pos = cfg_rd8(bdf, PCI_CAP_PTR) & ~3u;
    int guard = 48;

    while (pos && guard--) {
        if (cfg_rd8(bdf, pos) == id) {
            return pos;
        }
        pos = cfg_rd8(bdf, pos + 1) & ~3u;
    }
    return 0;
}

/* ---- BARs ---------------------------------------------------------------- */

typedef struct Bar {
    bool present, io, is64, prefetch;
    uint64_t size;
    uint32_t addr;      /* 0 when the demo did not place it */
} Bar;

static Bar bars[6];

static void bar_size_all(uint32_t bdf)
{
    uint16_t cmd = cfg_rd16(bdf, PCI_COMMAND);
    int i;

    /* no decoding while the BAR registers hold all-ones */
    cfg_wr16(bdf, PCI_COMMAND, cmd & ~(CMD_IO | CMD_MEM));
    for (i = 0; i < 6; i++) {
        uint32_t off = PCI_BAR0 + 4 * i, orig, v;
        Bar *b = &bars[i];

        orig = cfg_rd32(bdf, off);
        cfg_wr32(bdf, off, 0xffffffffu);
        v = cfg_rd32(bdf, off);
        cfg_wr32(bdf, off, orig);
        if (!v) {
            continue;
        }
        b->present = true;
        if (v & 1) {
            b->io = true;
            b->size = (uint32_t)~(v & ~3u) + 1;
            b->size &= 0xffff;
            continue;
        }
        b->prefetch = v & 8;
        b->is64 = ((v >> 1) & 3) == 2;
        if (b->is64 && i < 5) {
            uint32_t hi_orig = cfg_rd32(bdf, off + 4), hi;

            cfg_wr32(bdf, off + 4, 0xffffffffu);
            hi = cfg_rd32(bdf, off + 4);
            cfg_wr32(bdf, off + 4, hi_orig);
            b->size = ~(((uint64_t)hi << 32) | (v & ~0xfu)) + 1;
            i++;
        } else {
            b->size = (uint32_t)~(v & ~0xfu) + 1;
        }
    }
    cfg_wr16(bdf, PCI_COMMAND, cmd);
}

static void bar_place_all(uint32_t bdf)
{
    uint32_t mem_top = MEM_TOP, io_next = IO_BASE;
    int i;

    cfg_wr16(bdf, PCI_COMMAND, 0);
    for (i = 0; i < 6; i++) {
        uint32_t off = PCI_BAR0 + 4 * i;
        Bar *b = &bars[i];

        if (!b->present) {
            continue;
        }
        if (b->io) {
            b->addr = (io_next + (uint32_t)b->size - 1) &
                      ~((uint32_t)b->size - 1);
            io_next = b->addr + b->size;
            cfg_wr32(bdf, off, b->addr);
            pr("demo: BAR%d I/O, %u bytes, at 0x%x\n", i,
               (uint32_t)b->size, b->addr);
            continue;
        }
        if (b->size > MEM_MAX_BAR) {
            pr("demo: BAR%d memory, 0x%llx bytes, too large for the 32-bit "
               "hole: left where the firmware put it\n", i, b->size);
        } else {
            b->addr = (mem_top - (uint32_t)b->size) &
                      ~((uint32_t)b->size - 1);
            mem_top = b->addr;
            cfg_wr32(bdf, off, b->addr);
            if (b->is64) {
                cfg_wr32(bdf, off + 4, 0);
            }
            pr("demo: BAR%d %s-bit %smemory, %u KiB, at 0x%x\n", i,
               b->is64 ? "64" : "32", b->prefetch ? "prefetchable " : "",
               (uint32_t)(b->size >> 10), b->addr);
        }
        if (b->is64) {
            i++;
        }
    }
    cfg_wr32(bdf, PCI_ROM, 0);      /* expansion ROM: not used */
}

/* ---- interrupts ------------------------------------------------------------ */

typedef struct IdtGate {
    uint16_t off_lo, sel;
    uint8_t zero, type;
    uint16_t off_hi;
} __attribute__((packed)) IdtGate;

static IdtGate idt[256] __attribute__((aligned(8)));
static volatile uint32_t irqs_seen[256];

void demo_isr(uint32_t vector, uint32_t *frame)
{
    if (vector < 32) {
        /* frame: pusha (8 words), vector, error code, eip, cs, eflags */
        pr("demo: FAIL cpu exception %u (error 0x%x) at eip 0x%x\n",
           vector, frame[9], frame[10]);
        demo_exit(1);
    }
    irqs_seen[vector]++;
    if (vector != VEC_SPURIOUS) {
        wr32(LAPIC_BASE + LAPIC_EOI, 0);
    }
}

static void irq_setup(void)
{
    struct {
        uint16_t limit;
        uint32_t base;
    } __attribute__((packed)) idtr = { sizeof(idt) - 1, (uint32_t)idt };
    int i;

    for (i = 0; i < 256; i++) {
        idt[i].off_lo = isr_table[i] & 0xffff;
        idt[i].sel = 0x08;
        idt[i].zero = 0;
        idt[i].type = 0x8e;         /* present, DPL 0, 32-bit interrupt gate */
        idt[i].off_hi = isr_table[i] >> 16;
    }
    asm volatile("lidt %0" : : "m"(idtr));

    /* the 8259s stay masked: only the local APIC delivers */
    outb(PIC1_DATA, 0xff);
    outb(PIC2_DATA, 0xff);
    wr32(LAPIC_BASE + LAPIC_TPR, 0);
    wr32(LAPIC_BASE + LAPIC_SVR, 0x100 | VEC_SPURIOUS);
    asm volatile("sti");
}

/* Wait up to a few seconds (host TSC under TCG) for count on a vector. */
static uint32_t irq_wait(uint32_t vector, uint32_t count)
{
    uint64_t start = rdtsc();

    while (irqs_seen[vector] < count && rdtsc() - start < 8000000000ull) {
        asm volatile("pause");
    }
    return irqs_seen[vector];
}

/* ---- the device ------------------------------------------------------------ */

static uint32_t bar0, bar1, bar4;

static uint32_t dma(uint32_t cmd, uint32_t src, uint32_t dst, uint32_t len)
{
    wr32(bar0 + TESTDEV_REG_DMA_SRC, src);
    wr32(bar0 + TESTDEV_REG_DMA_SRC + 4, 0);
    wr32(bar0 + TESTDEV_REG_DMA_DST, dst);
    wr32(bar0 + TESTDEV_REG_DMA_DST + 4, 0);
    wr32(bar0 + TESTDEV_REG_DMA_LEN, len);
    wr32(bar0 + TESTDEV_REG_DMA_CMD, cmd);
    /* the command ran before the write completed; STATUS is its result */
    return rd32(bar0 + TESTDEV_REG_DMA_STATUS);
}

/* guard, LEN bytes of value, guard around the 1 MiB area at base + GUARD */
static void dma_area_reset(uint32_t base, uint8_t value)
{
    memset((void *)base, GUARD_BYTE, GUARD);
    memset((void *)(base + GUARD), value, DMA_BIG);
    memset((void *)(base + GUARD + DMA_BIG), GUARD_BYTE, GUARD);
}

static void check_guards(uint32_t base, const char *what)
{
    check_mem(base, GUARD, expect_const, 0, GUARD_BYTE,
              "%s: guard bytes before the buffer untouched", what);
    check_mem(base + GUARD + DMA_BIG, GUARD, expect_const, 0, GUARD_BYTE,
              "%s: guard bytes after the buffer untouched", what);
}

static void test_identity(uint32_t bdf)
{
    uint32_t class = cfg_rd32(bdf, PCI_REVISION) >> 8;
    uint32_t vendor, magic;

    pr("demo: device 00:%02x.%u: class %06x rev %02x subsystem %04x:%04x "
       "interrupt pin %u\n", bdf_dev(bdf), bdf_fn(bdf), class,
       cfg_rd8(bdf, PCI_REVISION), cfg_rd16(bdf, PCI_SUBSYS_VID),
       cfg_rd16(bdf, PCI_SUBSYS_ID), cfg_rd8(bdf, PCI_INT_PIN));
    check(class, TESTDEV_CLASS_CODE, "class code");
    check(cfg_rd8(bdf, PCI_REVISION), TESTDEV_REVISION, "revision");
    check(cfg_rd16(bdf, PCI_SUBSYS_VID), TESTDEV_SUBSYS_VENDOR_ID,
          "subsystem vendor");
    check(cfg_rd16(bdf, PCI_SUBSYS_ID), TESTDEV_SUBSYS_ID, "subsystem id");
    check(cfg_rd16(bdf, PCI_STATUS) & STATUS_CAPS, STATUS_CAPS,
          "status: capability list present");
    check(pci_find_cap(bdf, CAP_ID_MSI), TESTDEV_CAP_MSI,
          "MSI capability at 0x%x", TESTDEV_CAP_MSI);
    check(pci_find_cap(bdf, CAP_ID_MSIX), TESTDEV_CAP_MSIX,
          "MSI-X capability at 0x%x", TESTDEV_CAP_MSIX);
    vendor = pci_find_cap(bdf, CAP_ID_VENDOR);
    check(vendor, TESTDEV_CAP_VENDOR, "vendor capability at 0x%x",
          TESTDEV_CAP_VENDOR);
    if (vendor) {
        /* the vendor capability's body lives in the device process */
        magic = cfg_rd32(bdf, TESTDEV_CFG_VENDOR_MAGIC);
        check(magic, TESTDEV_VENDOR_MAGIC, "vendor capability magic");
        cfg_wr32(bdf, TESTDEV_CFG_VENDOR_SCRATCH, 0x5ca1ab1e);
        check(cfg_rd32(bdf, TESTDEV_CFG_VENDOR_SCRATCH), 0x5ca1ab1e,
              "vendor capability scratch write, read back");
    }
}

static bool test_bars(uint32_t bdf)
{
    uint16_t cmd;

    bar_size_all(bdf);
    check(bars[0].present && !bars[0].io && !bars[0].is64, 1,
          "BAR0 is 32-bit memory");
    check(bars[0].size, TESTDEV_BAR0_SIZE, "BAR0 size");
    check(bars[1].present && bars[1].io, 1, "BAR1 is I/O");
    check(bars[1].size, TESTDEV_BAR1_SIZE, "BAR1 size");
    check(bars[2].present && bars[2].is64 && bars[2].prefetch, 1,
          "BAR2 is 64-bit prefetchable memory");
    check(bars[4].present && bars[4].is64, 1, "BAR4 is 64-bit memory");
    check(bars[4].size, TESTDEV_BAR4_SIZE, "BAR4 size");
    if (bars[0].size != TESTDEV_BAR0_SIZE || !bars[1].io ||
        bars[1].size != TESTDEV_BAR1_SIZE || bars[4].size != TESTDEV_BAR4_SIZE) {
        return false;
    }
    bar_place_all(bdf);
    bar0 = bars[0].addr;
    bar1 = bars[1].addr;
    bar4 = bars[4].addr;
    check(cfg_rd32(bdf, PCI_BAR0), bar0, "BAR0 programmed");
    check(cfg_rd32(bdf, PCI_BAR0 + 4), bar1 | 1, "BAR1 programmed");

    cfg_wr16(bdf, PCI_COMMAND, CMD_IO | CMD_MEM | CMD_MASTER);
    cmd = cfg_rd16(bdf, PCI_COMMAND);
    check(cmd & (CMD_IO | CMD_MEM | CMD_MASTER), CMD_IO | CMD_MEM | CMD_MASTER,
          "command: I/O, memory and bus mastering enabled");
    return true;
}

static uint32_t mem_word(uint32_t off)
{
    return off * 0x01010101u ^ 0xa5a5a5a5u;
}

static void test_registers(void)
{
    uint32_t i;

    check(rd32(bar0 + TESTDEV_REG_ID), TESTDEV_ID, "ID over MMIO");
    check(inl(bar1 + TESTDEV_REG_ID), TESTDEV_ID, "ID over port I/O");
    check(rd32(bar0 + TESTDEV_REG_VERSION), TESTDEV_VERSION, "VERSION");
    wr32(bar0 + TESTDEV_REG_ID, 0);
    check(rd32(bar0 + TESTDEV_REG_ID), TESTDEV_ID, "ID is read-only");

    /* 4 bytes */
    wr32(bar0 + TESTDEV_REG_SCRATCH32, 0xdeadbeef);
    check(rd32(bar0 + TESTDEV_REG_SCRATCH32), 0xdeadbeef,
          "SCRATCH32: 4-byte MMIO write, read back");
    check(inl(bar1 + TESTDEV_REG_SCRATCH32), 0xdeadbeef,
          "SCRATCH32: read over port I/O (same storage)");
    outl(bar1 + TESTDEV_REG_SCRATCH32, 0x01234567);
    check(rd32(bar0 + TESTDEV_REG_SCRATCH32), 0x01234567,
          "SCRATCH32: 4-byte port write, MMIO read");

    /* 1 and 2 bytes */
    for (i = 0; i < 4; i++) {
        wr8(bar0 + TESTDEV_REG_SCRATCH_BYTES + i, 0x11 * (i + 1));
    }
    check(rd32(bar0 + TESTDEV_REG_SCRATCH_BYTES), 0x44332211,
          "scratch bytes: 1-byte MMIO writes, 4-byte read");
    check(rd8(bar0 + TESTDEV_REG_SCRATCH_BYTES + 2), 0x33,
          "scratch bytes: 1-byte MMIO read");
    wr16(bar0 + TESTDEV_REG_SCRATCH_BYTES + 4, 0xbeef);
    wr16(bar0 + TESTDEV_REG_SCRATCH_BYTES + 6, 0xdead);
    check(rd16(bar0 + TESTDEV_REG_SCRATCH_BYTES + 6), 0xdead,
          "scratch bytes: 2-byte MMIO write, read back");
    check(rd32(bar0 + TESTDEV_REG_SCRATCH_BYTES + 4), 0xdeadbeef,
          "scratch bytes: 2-byte MMIO writes, 4-byte read");
    outb(bar1 + TESTDEV_REG_SCRATCH_BYTES + 8, 0x5a);
    outw(bar1 + TESTDEV_REG_SCRATCH_BYTES + 10, 0xa55a);
    check(inb(bar1 + TESTDEV_REG_SCRATCH_BYTES + 8), 0x5a,
          "scratch bytes: 1-byte port write, read back");
    check(inw(bar1 + TESTDEV_REG_SCRATCH_BYTES + 10), 0xa55a,
          "scratch bytes: 2-byte port write, read back");
    check(rd32(bar0 + TESTDEV_REG_SCRATCH_BYTES + 8), 0xa55a005a,
          "scratch bytes: port writes seen over MMIO");

    /* 8 bytes: as two halves, and as one access */
    wr32(bar0 + TESTDEV_REG_SCRATCH64, 0x89abcdef);
    wr32(bar0 + TESTDEV_REG_SCRATCH64 + 4, 0x01234567);
    check(rd64(bar0 + TESTDEV_REG_SCRATCH64), 0x0123456789abcdefull,
          "SCRATCH64: two 4-byte writes, one 8-byte read");
    wr64(bar0 + TESTDEV_REG_SCRATCH64, 0xfedcba9876543210ull);
    check(rd32(bar0 + TESTDEV_REG_SCRATCH64), 0x76543210,
          "SCRATCH64: 8-byte write, low half");
    check(rd32(bar0 + TESTDEV_REG_SCRATCH64 + 4), 0xfedcba98,
          "SCRATCH64: 8-byte write, high half");

    check(rd32(bar0 + 0x0c), 0, "unlisted offset 0x0c reads 0");
    check(inl(bar1 + 0x40), 0, "port offset 0x40 reads 0");

    /* the device's memory at 0x100-0xfff */
    for (i = TESTDEV_REG_MEM; i < TESTDEV_BAR0_SIZE; i += 4) {
        wr32(bar0 + i, mem_word(i));
    }
    for (i = TESTDEV_REG_MEM; i < TESTDEV_BAR0_SIZE - 4; i += 4) {
        if (rd32(bar0 + i) != mem_word(i)) {
            break;
        }
    }
    /* i is the first word that differs, or the last one */
    check(rd32(bar0 + i), mem_word(i), "device memory 0x100-0xfff: %u "
          "4-byte writes, read back (word at 0x%x)",
          (TESTDEV_BAR0_SIZE - TESTDEV_REG_MEM) / 4, i);
}

/*
 * BAR2: its first half is the device's memfd mapped straight into the
 * guest, the second half is forwarded to the device process; both are
 * the same memory on the device's side.
 */
static void test_bar2(void)
{
    uint32_t base = bars[2].addr, half = bars[2].size / 2;

    if (!base) {
        return;
    }
    wr32(base, 0xcafef00d);
    wr32(base + half - 4, 0x600dcafe);
    check(rd32(base), 0xcafef00d, "BAR2 mapped half: write, read back");
    check(rd32(base + half - 4), 0x600dcafe,
          "BAR2 mapped half: last word, write, read back");
    wr32(base + half, 0x0badf00d);
    wr64(base + bars[2].size - 8, 0x1122334455667788ull);
    check(rd32(base + half), 0x0badf00d,
          "BAR2 forwarded half: write, read back");
    check(rd64(base + bars[2].size - 8), 0x1122334455667788ull,
          "BAR2 forwarded half: last 8 bytes, write, read back");
}

static void test_dma(uint32_t bdf)
{
    uint32_t a = DMA_A + GUARD, b = DMA_B + GUARD, st;
    uint32_t pattern = 0x5aa5c33c;
    uint64_t sum;

    pr("demo: DMA buffers in guest RAM at 0x%x and 0x%x, %u KiB each, "
       "%u-byte guards\n", a, b, DMA_BIG >> 10, GUARD);

    /* fill */
    dma_area_reset(DMA_A, 0);
    st = dma(TESTDEV_DMA_FILL, 0, a, DMA_BIG);
    check(st, 0, "dma fill 1 MiB: status");
    wr32(bar0 + TESTDEV_REG_DMA_PATTERN, pattern);
    st = dma(TESTDEV_DMA_FILL, 0, a, DMA_BIG);
    check(st, 0, "dma fill 1 MiB with 0x%x: status", pattern);
    check_mem(a, DMA_BIG, expect_pattern, 0, pattern,
              "dma fill 1 MiB: contents");
    check_guards(DMA_A, "dma fill 1 MiB");

    dma_area_reset(DMA_A, 0);
    wr32(bar0 + TESTDEV_REG_DMA_PATTERN, 0x04030201);
    st = dma(TESTDEV_DMA_FILL, 0, a + DMA_ODD_OFF, DMA_ODD_LEN);
    check(st, 0, "dma fill %u bytes at +%u: status", DMA_ODD_LEN, DMA_ODD_OFF);
    check_mem(a + DMA_ODD_OFF, DMA_ODD_LEN, expect_pattern, 0, 0x04030201,
              "dma fill %u bytes at +%u: contents", DMA_ODD_LEN, DMA_ODD_OFF);
    check_mem(a, DMA_ODD_OFF, expect_const, 0, 0,
              "dma fill %u bytes at +%u: bytes before untouched",
              DMA_ODD_LEN, DMA_ODD_OFF);
    check_mem(a + DMA_ODD_OFF + DMA_ODD_LEN, 64, expect_const, 0, 0,
              "dma fill %u bytes at +%u: bytes after untouched",
              DMA_ODD_LEN, DMA_ODD_OFF);

    /* copy */
    dma_area_reset(DMA_A, 0);
    dma_area_reset(DMA_B, 0);
    fill_mem(a, DMA_BIG, expect_hash, 0, 0x1234);
    st = dma(TESTDEV_DMA_COPY, a, b, DMA_BIG);
    check(st, 0, "dma copy 1 MiB: status");
    check_mem(b, DMA_BIG, expect_hash, 0, 0x1234, "dma copy 1 MiB: contents");
    check_guards(DMA_B, "dma copy 1 MiB");
    check_mem(a, DMA_BIG, expect_hash, 0, 0x1234,
              "dma copy 1 MiB: source unchanged");

    dma_area_reset(DMA_B, 0);
    st = dma(TESTDEV_DMA_COPY, a + 1, b + DMA_ODD_OFF, DMA_ODD_LEN);
    check(st, 0, "dma copy %u bytes, unaligned: status", DMA_ODD_LEN);
    check_mem(b + DMA_ODD_OFF, DMA_ODD_LEN, expect_hash, 1, 0x1234,
              "dma copy %u bytes, unaligned: contents", DMA_ODD_LEN);
    check_mem(b + DMA_ODD_OFF + DMA_ODD_LEN, 64, expect_const, 0, 0,
              "dma copy %u bytes, unaligned: bytes after untouched",
              DMA_ODD_LEN);

    /* checksum */
    sum = byte_sum(a, DMA_BIG);
    st = dma(TESTDEV_DMA_CHECKSUM, a, 0, DMA_BIG);
    check(st, 0, "dma checksum 1 MiB: status");
    check(rd64(bar0 + TESTDEV_REG_DMA_RESULT), sum,
          "dma checksum 1 MiB: device sum = guest sum");
    sum = byte_sum(a + 7, DMA_ODD_LEN);
    st = dma(TESTDEV_DMA_CHECKSUM, a + 7, 0, DMA_ODD_LEN);
    check(st, 0, "dma checksum %u bytes at +7: status", DMA_ODD_LEN);
    check((uint64_t)rd32(bar0 + TESTDEV_REG_DMA_RESULT + 4) << 32 |
          rd32(bar0 + TESTDEV_REG_DMA_RESULT), sum,
          "dma checksum %u bytes at +7: device sum = guest sum (0x%x)",
          DMA_ODD_LEN, (uint32_t)sum);

    /* errors */
    check(dma(TESTDEV_DMA_FILL, 0, a, DMA_BIG + 1), TESTDEV_DMA_EINVAL,
          "dma longer than 1 MiB refused with EINVAL");
    check(dma(7, a, b, 16), TESTDEV_DMA_EINVAL,
          "unknown dma command refused with EINVAL");
    check(dma(TESTDEV_DMA_FILL, 0, DMA_UNMAPPED, 4096), TESTDEV_DMA_EFAULT,
          "dma to 0x%x (no RAM there) refused with EFAULT", DMA_UNMAPPED);

    /* bus mastering off: the proxy takes guest RAM away from the device */
    dma_area_reset(DMA_A, 0);
    wr32(bar0 + TESTDEV_REG_DMA_PATTERN, 0xffffffff);
    cfg_wr16(bdf, PCI_COMMAND, CMD_IO | CMD_MEM);
    check(dma(TESTDEV_DMA_FILL, 0, a, 4096), TESTDEV_DMA_EFAULT,
          "bus mastering off: dma refused with EFAULT");
    check_mem(a, 4096, expect_const, 0, 0,
              "bus mastering off: guest RAM untouched");
    cfg_wr16(bdf, PCI_COMMAND, CMD_IO | CMD_MEM | CMD_MASTER);
    check(dma(TESTDEV_DMA_FILL, 0, a, 4096), 0,
          "bus mastering on again: dma works");
    check_mem(a, 4096, expect_const, 0, 0xff,
              "bus mastering on again: contents");
}

static void test_msi(uint32_t bdf)
{
    uint32_t cap = TESTDEV_CAP_MSI, count0 = rd32(bar0 + TESTDEV_REG_IRQ_COUNT);
    uint16_t ctrl = cfg_rd16(bdf, cap + 2);

    check(ctrl & 0x80, 0x80, "MSI: 64-bit capable");
    cfg_wr32(bdf, cap + 4, MSI_ADDR);
    cfg_wr32(bdf, cap + 8, 0);
    cfg_wr16(bdf, cap + 12, VEC_MSI);
    cfg_wr16(bdf, cap + 2, ctrl | MSI_CTRL_EN);
    wr32(bar0 + TESTDEV_REG_MSI, 1);
    check(irq_wait(VEC_MSI, 1), 1,
          "MSI: device signalled, vector 0x%x taken by the guest", VEC_MSI);
    /* all-ones is what a failed device reads as: never a count */
    check(count0 == 0xffffffffu ? count0 :
          rd32(bar0 + TESTDEV_REG_IRQ_COUNT) - count0, 1,
          "MSI: the device counted one signal");
    cfg_wr16(bdf, cap + 2, ctrl & ~MSI_CTRL_EN);
}

static void msix_entry(uint32_t n, uint32_t vector, bool masked)
{
    uint32_t e = bar4 + TESTDEV_MSIX_TABLE_OFFSET + 16 * n;

    wr32(e, MSI_ADDR);
    wr32(e + 4, 0);
    wr32(e + 8, vector);
    wr32(e + 12, masked);
}

static bool msix_pending(uint32_t n)
{
    return rd32(bar4 + TESTDEV_MSIX_PBA_OFFSET) >> n & 1;
}

static void test_msix(uint32_t bdf)
{
    uint32_t cap = TESTDEV_CAP_MSIX, n;
    uint16_t ctrl = cfg_rd16(bdf, cap + 2);
    uint64_t start;

    check((ctrl & 0x7ff) + 1, TESTDEV_MSIX_VECTORS, "MSI-X: table size");
    check(cfg_rd32(bdf, cap + 4), TESTDEV_MSIX_BAR | TESTDEV_MSIX_TABLE_OFFSET,
          "MSI-X: table in BAR%u", TESTDEV_MSIX_BAR);
    for (n = 0; n < TESTDEV_MSIX_VECTORS; n++) {
        msix_entry(n, VEC_MSIX + n, true);
    }
    /* enable first, then unmask (docs/devvm/testdev.rst) */
    cfg_wr16(bdf, cap + 2, MSIX_CTRL_EN);
    wr32(bar4 + 16 * 3 + 12, 0);

    wr32(bar0 + TESTDEV_REG_MSIX, 3);
    check(irq_wait(VEC_MSIX + 3, 1), 1,
          "MSI-X vector 3: signalled through MSIX register, vector 0x%x "
          "taken", VEC_MSIX + 3);

    wr32(bar0 + TESTDEV_REG_DMA_IRQ, 3 + 1);
    check(dma(TESTDEV_DMA_FILL, 0, DMA_A + GUARD, 64), 0,
          "MSI-X vector 3: dma with DMA_IRQ 4: status");
    check(irq_wait(VEC_MSIX + 3, 2), 2,
          "MSI-X vector 3: completion interrupt after the dma");
    wr32(bar0 + TESTDEV_REG_DMA_IRQ, 0);

    /* a masked vector: pending bit, then delivery on unmask */
    wr32(bar0 + TESTDEV_REG_MSIX, 5);
    start = rdtsc();
    while (!msix_pending(5) && rdtsc() - start < 8000000000ull) {
        asm volatile("pause");
    }
    check(msix_pending(5), 1, "MSI-X vector 5 (masked): pending bit set");
    check(irqs_seen[VEC_MSIX + 5], 0, "MSI-X vector 5 (masked): not taken");
    wr32(bar4 + 16 * 5 + 12, 0);
    check(irq_wait(VEC_MSIX + 5, 1), 1,
          "MSI-X vector 5: delivered when unmasked");
    check(msix_pending(5), 0, "MSI-X vector 5: pending bit cleared");

    check(irqs_seen[VEC_SPURIOUS], 0, "no spurious interrupts");
    cfg_wr16(bdf, cap + 2, 0);
}

/* ---- benchmarks: what an access costs the guest ("make bench") --------- */

/*
 * Not checks: each line "demo: bench DEVICE MEASURE median M p99 P
 * samples N" gives host TSC cycles (under TCG the guest's rdtsc reads the
 * host's) of N timed calls after BENCH_WARMUP untimed ones.
 * scripts/devvm/bench.py collects them.
 */
#define BENCH_SAMPLES   4095
#define BENCH_WARMUP    16
#define EDU_VENDOR_ID   0x1234          /* QEMU's in-process edu device */
#define EDU_DEVICE_ID   0x11e8
#define PCITEST_VENDOR_ID 0x1b36        /* QEMU's in-process pci-testdev */
#define PCITEST_DEVICE_ID 0x0005
#define IDIO16_VENDOR_ID 0x494f         /* libvfio-user's gpio-pci-idio-16 */
#define IDIO16_DEVICE_ID 0x0dc8

static uint32_t bench_t[BENCH_SAMPLES];

typedef void BenchFn(uint32_t arg);

static void bench_rd32(uint32_t addr)
{
    (void)rd32(addr);
}

static void bench_inl(uint32_t port)
{
    (void)inl(port);
}

static void bench_inb(uint32_t port)
{
    (void)inb(port);
}

static void bench_wr32(uint32_t addr)
{
    wr32(addr, 0x5a5a5a5a);
}

/* An interrupt: a write of @val to @reg, then wait for the handler. */
static uint32_t bench_irq_reg, bench_irq_val, bench_irq_vector;

static void bench_irq(uint32_t ack)
{
    uint32_t n = irqs_seen[bench_irq_vector];
    uint64_t start = rdtsc();

    wr32(bench_irq_reg, bench_irq_val);
    while (irqs_seen[bench_irq_vector] == n &&
           rdtsc() - start < 8000000000ull) {
        asm volatile("pause");
    }
    if (ack) {
        wr32(ack, bench_irq_val);       /* edu: acknowledge */
    }
}

/* device -> guest: a FILL of @len bytes; guest -> device: a CHECKSUM */
static void bench_dma_to_guest(uint32_t len)
{
    (void)dma(TESTDEV_DMA_FILL, 0, DMA_A + GUARD, len);
}

static void bench_dma_from_guest(uint32_t len)
{
    (void)dma(TESTDEV_DMA_CHECKSUM, DMA_A + GUARD, 0, len);
}

static void sort_u32(uint32_t *t, uint32_t n)
{
    uint32_t gap, i, j, v;

    for (gap = n / 2; gap; gap /= 2) {
        for (i = gap; i < n; i++) {
            v = t[i];
            for (j = i; j >= gap && t[j - gap] > v; j -= gap) {
                t[j] = t[j - gap];
            }
            t[j] = v;
        }
    }
}

static void bench(const char *device, const char *measure, BenchFn *fn,
                  uint32_t arg, uint32_t n)
{
    uint32_t i;

    for (i = 0; i < BENCH_WARMUP; i++) {
        fn(arg);
    }
    for (i = 0; i < n; i++) {
        uint64_t start = rdtsc();

        fn(arg);
        bench_t[i] = rdtsc() - start;
    }
    sort_u32(bench_t, n);
    pr("demo: bench %s %s median %u p99 %u samples %u\n", device, measure,
       bench_t[n / 2], bench_t[n * 99 / 100], n);
}

/* devvm-testdev, BARs placed and interrupts set up */
static void bench_testdev(uint32_t bdf)
{
    static const struct {
        const char *to, *from;
        uint32_t len, n;
    } dmas[] = {
        { "dma-to-guest-4k", "dma-from-guest-4k", 4096, 1023 },
        { "dma-to-guest-64k", "dma-from-guest-64k", 65536, 1023 },
        { "dma-to-guest-1m", "dma-from-guest-1m", DMA_BIG, 255 },
    };
    uint32_t i;

    bench("devvm-testdev", "mmio-read", bench_rd32, bar0 + TESTDEV_REG_ID,
          BENCH_SAMPLES);
    bench("devvm-testdev", "port-read", bench_inl, bar1 + TESTDEV_REG_ID,
          BENCH_SAMPLES);
    bench("devvm-testdev", "mmio-write", bench_wr32,
          bar0 + TESTDEV_REG_MEM + 0x100, BENCH_SAMPLES);
    msix_entry(0, VEC_MSIX, false);
    cfg_wr16(bdf, TESTDEV_CAP_MSIX + 2, MSIX_CTRL_EN);
    bench_irq_reg = bar0 + TESTDEV_REG_MSIX;
    bench_irq_val = 0;
    bench_irq_vector = VEC_MSIX;
    bench("devvm-testdev", "msix", bench_irq, 0, BENCH_SAMPLES);
    cfg_wr16(bdf, TESTDEV_CAP_MSIX + 2, 0);
    for (i = 0; i < sizeof(dmas) / sizeof(dmas[0]); i++) {
        bench("devvm-testdev", dmas[i].to, bench_dma_to_guest, dmas[i].len,
              dmas[i].n);
        bench("devvm-testdev", dmas[i].from, bench_dma_from_guest,
              dmas[i].len, dmas[i].n);
    }
}

/*
 * With more devvm-testdev functions than the one checked (run.sh
 * --devices=N): a register read and a posted write that go round all N
 * functions, one function a sample, each at the BAR0 firmware gave it
 * (the first at the one test_bars() placed).  Measures "mmio-read-Ndev"
 * and "mmio-write-Ndev".
 */
#define BENCH_MAX_DEVS  8

static uint32_t bench_rr_addr[BENCH_MAX_DEVS], bench_rr_n, bench_rr_i;

static void bench_rd32_rr(uint32_t off)
{
    (void)rd32(bench_rr_addr[bench_rr_i++ % bench_rr_n] + off);
}

static void bench_wr32_rr(uint32_t off)
{
    wr32(bench_rr_addr[bench_rr_i++ % bench_rr_n] + off, 0x5a5a5a5a);
}

/* "@prefix@n" "dev" into @buf (@n a single digit) */
static const char *bench_ndev(char *buf, const char *prefix, uint32_t n)
{
    char *b = buf;

    while (*prefix) {
        *b++ = *prefix++;
    }
    *b++ = '0' + n;
    *b++ = 'd';
    *b++ = 'e';
    *b++ = 'v';
    *b = 0;
    return buf;
}

static void bench_testdevs(uint32_t first)
{
    char rd[24], wr[24];
    uint32_t dev, fn, bdf, bar;

    bench_rr_n = 0;
    bench_rr_addr[bench_rr_n++] = bar0;
    for (dev = 0; dev < 32 && bench_rr_n < BENCH_MAX_DEVS; dev++) {
        for (fn = 0; fn < 8 && bench_rr_n < BENCH_MAX_DEVS; fn++) {
            bdf = (dev << 3) | fn;
            if (bdf == first || cfg_rd32(bdf, PCI_VENDOR_ID) !=
                (TESTDEV_VENDOR_ID | (uint32_t)TESTDEV_DEVICE_ID << 16)) {
                continue;
            }
            bar = cfg_rd32(bdf, PCI_BAR0) & ~0xfu;
            if (!bar) {
                pr("demo: bench devvm-testdev 00:%02x.%u: no BAR0 address\n",
                   dev, fn);
                continue;
            }
            cfg_wr16(bdf, PCI_COMMAND, CMD_MEM);
            bench_rr_addr[bench_rr_n++] = bar;
        }
    }
    if (bench_rr_n < 2) {
        return;
    }
    bench("devvm-testdev", bench_ndev(rd, "mmio-read-", bench_rr_n),
          bench_rd32_rr, TESTDEV_REG_ID, BENCH_SAMPLES);
    bench("devvm-testdev", bench_ndev(wr, "mmio-write-", bench_rr_n),
          bench_wr32_rr, TESTDEV_REG_MEM + 0x100, BENCH_SAMPLES);
}

/* A port read of I/O BAR @bar of @bdf, as firmware placed it. */
static void bench_port_bar(uint32_t bdf, const char *name, uint32_t bar)
{
    uint32_t v = cfg_rd32(bdf, PCI_BAR0 + 4 * bar);

    if (!(v & 1) || !(v & ~3u)) {
        pr("demo: bench %s: no port BAR%u\n", name, bar);
        return;
    }
    cfg_wr16(bdf, PCI_COMMAND, CMD_IO);
    bench(name, "port-read", bench_inb, v & ~3u, BENCH_SAMPLES);
}

/*
 * The references in the same VM, when it has them: QEMU's in-process edu
 * (a register read and write, its MSI) and pci-testdev (a port read),
 * and libvfio-user's gpio-pci-idio-16 sample (a port read of its BAR2).
 * Their BARs as firmware placed them.
 */
static void bench_others(void)
{
    uint32_t dev, id, bar, msi;

    for (dev = 0; dev < 32; dev++) {
        uint32_t bdf = dev << 3;

        id = cfg_rd32(bdf, PCI_VENDOR_ID);
        if (id == (EDU_VENDOR_ID | (uint32_t)EDU_DEVICE_ID << 16)) {
            bar = cfg_rd32(bdf, PCI_BAR0) & ~0xfu;
            msi = pci_find_cap(bdf, CAP_ID_MSI);
            if (!bar || !msi) {
                pr("demo: bench edu: no BAR0 address or no MSI\n");
                continue;
            }
            cfg_wr16(bdf, PCI_COMMAND, CMD_MEM | CMD_MASTER);
            bench("edu", "mmio-read", bench_rd32, bar, BENCH_SAMPLES);
            bench("edu", "mmio-write", bench_wr32, bar + 4, BENCH_SAMPLES);
            cfg_wr32(bdf, msi + 4, MSI_ADDR);
            cfg_wr32(bdf, msi + 8, 0);
            cfg_wr16(bdf, msi + 12, VEC_EDU);
            cfg_wr16(bdf, msi + 2, cfg_rd16(bdf, msi + 2) | MSI_CTRL_EN);
            bench_irq_reg = bar + 0x60;     /* raise interrupt */
            bench_irq_val = 1;
            bench_irq_vector = VEC_EDU;
            bench("edu", "msi", bench_irq, bar + 0x64, BENCH_SAMPLES);
            cfg_wr16(bdf, msi + 2, cfg_rd16(bdf, msi + 2) & ~MSI_CTRL_EN);
        } else if (id == (PCITEST_VENDOR_ID |
                          (uint32_t)PCITEST_DEVICE_ID << 16)) {
            bench_port_bar(bdf, "pci-testdev", 1);
        } else if (id == (IDIO16_VENDOR_ID |
                          (uint32_t)IDIO16_DEVICE_ID << 16)) {
            bench_port_bar(bdf, "gpio-pci-idio-16", 2);
        }
    }
}

/* Does the PVH command line (hvm_start_info.cmdline_paddr) have @word? */
static bool cmdline_has(uint32_t start_info, const char *word)
{
    const char *c = (const char *)*(volatile uint32_t *)(start_info + 24);
    uint32_t n;

    while (c && *c) {
        for (n = 0; word[n] && c[n] == word[n]; n++) {
            ;
        }
        if (!word[n] && (c[n] == ' ' || !c[n])) {
            return true;
        }
        while (*c && *c != ' ') {
            c++;
        }
        while (*c == ' ') {
            c++;
        }
    }
    return false;
}

uint32_t demo_main(uint32_t start_info)
{
    int32_t bdf;
    uint32_t cr0;
    bool bench_on;

    pr("demo: devvm demo guest: drives the device that -device devvm-proxy "
       "shows as a PCI function\n");
    check(rd32(start_info), HVM_START_MAGIC, "booted through PVH "
          "(hvm_start_info magic)");

    /* allow MMX for the 8-byte MMIO accesses */
    asm volatile("mov %%cr0, %0" : "=r"(cr0));
    cr0 = (cr0 & ~0xcu) | 0x2;              /* EM, TS off; MP on */
    asm volatile("mov %0, %%cr0" : : "r"(cr0));

    /* "bench" on the command line: the benchmarks too ("make bench") */
    bench_on = cmdline_has(start_info, "bench");
    bdf = pci_find(TESTDEV_VENDOR_ID, TESTDEV_DEVICE_ID);
    if (bdf >= 0 || !bench_on) {
        check(bdf >= 0, 1, "found %04x:%04x on PCI bus 0", TESTDEV_VENDOR_ID,
              TESTDEV_DEVICE_ID);
    }
    if (bdf >= 0) {
        test_identity(bdf);
        if (test_bars(bdf)) {
            test_registers();
            test_bar2();
            test_dma(bdf);
            irq_setup();
            test_msi(bdf);
            test_msix(bdf);
            pr("demo: skip INTx (needs IOAPIC and PIRQ routing, which this "
               "demo does not set up)\n");
            if (bench_on) {
                bench_testdev(bdf);
                bench_testdevs(bdf);
            }
        }
    }
    if (bench_on) {
        if (bdf < 0) {
            irq_setup();
        }
        bench_others();
    }

    if (n_fail) {
        pr("demo: %u checks passed, %u FAILED\n", n_ok, n_fail);
        return 1;
    }
    pr("demo: %u checks passed\n", n_ok);
    return 0;
}
