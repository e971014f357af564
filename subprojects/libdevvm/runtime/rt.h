/*
 * devvm runtime: internals shared by the runtime's files.
 *
 * The runtime is the guest software of a device VM (device-vm.rst): a
 * freestanding x86-64 image, one vCPU, identity-mapped memory, no
 * interrupts except while it idles in rt_idle().
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef DEVVM_RT_H
#define DEVVM_RT_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* lib.c: all that the image has of libc */
void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);

/* the device source defines it, with DEVVM_DEVICE() (sdk.h) */
struct devvm_device *devvm_vm_device(void);

/* ---- ports and memory-mapped I/O ----------------------------------------- */

static inline void outb(uint16_t port, uint8_t v)
{
    asm volatile("outb %0, %1" : : "a"(v), "Nd"(port));
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

static inline uint32_t inl(uint16_t port)
{
    uint32_t v;

    asm volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}

/* volatile: every MMIO access must happen, once, in program order */
static inline uint32_t mmio_rd32(uint64_t addr)
{
    return *(volatile uint32_t *)addr;      /* MMIO */
}

static inline void mmio_wr32(uint64_t addr, uint32_t v)
{
    *(volatile uint32_t *)addr = v;         /* MMIO */
}

static inline uint64_t rdtsc(void)
{
    uint32_t lo, hi;

    asm volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return (uint64_t)hi << 32 | lo;
}

static inline uint64_t rdmsr(uint32_t msr)
{
    uint32_t lo, hi;

    asm volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
    return (uint64_t)hi << 32 | lo;
}

static inline void cpu_relax(void)
{
    asm volatile("pause" : : : "memory");
}

/* ---- console (console.c) ------------------------------------------------ */

void rt_console_init(void);
/* Raw bytes to the serial port. */
void rt_serial_write(const char *s, size_t len);
/* One line on serial, prefixed "devvm-rt: ". */
__attribute__((format(printf, 1, 2)))
void rt_log(const char *fmt, ...);
/* "devvm-rt: NAME[INSTANCE]: " and @len bytes of a device's log line. */
void rt_log_text(const char *name, unsigned instance, const char *text,
                 size_t len);
/* Like rt_log(), only with devvm.verbose=1. */
__attribute__((format(printf, 1, 2)))
void rt_debug(const char *fmt, ...);
extern int rt_verbose;

/* ---- CPU, time and interrupts (cpu.c) ------------------------------------ */

/* What the trap stubs of boot.S push, lowest address first. */
struct rt_frame {
    uint64_t rax, rbx, rcx, rdx, rsi, rdi, rbp;
    uint64_t r8, r9, r10, r11, r12, r13, r14, r15;
    uint64_t vector, error;
    uint64_t rip, cs, rflags, rsp, ss;
};

/* IDT vectors */
#define RT_VEC_WAKE     0x40    /* every ivshmem MSI-X vector */
#define RT_VEC_TIMER    0x41    /* LAPIC one-shot timer */
#define RT_VEC_SPURIOUS 0xff

/* boot.S and rt.lds */
extern uint64_t rt_gdt[];
extern const uint64_t rt_trap_table[32];
extern uint64_t rt_pml4[512];
extern char __image_end[];
void rt_irq_wake(void);
void rt_irq_spurious(void);

void rt_cpu_init(void);
/* TSC against the PIT, then the LAPIC timer against the TSC. */
void rt_time_init(void);
uint64_t rt_lapic_id(void);
/*
 * Sleep until an interrupt or @deadline_ns (devvm_rt_now_ns() time),
 * whichever comes first.  Interrupts are enabled only inside.
 */
void rt_idle(uint64_t deadline_ns);
/* Map [phys, phys + size) identity, write-back, above the low 4 GiB. */
int rt_map_high(uint64_t phys, uint64_t size);

void rt_trap(struct rt_frame *f) __attribute__((noreturn));

/* ---- faults and exit (main.c) -------------------------------------------- */

/* isa-debug-exit codes (QEMU's exit status is code << 1 | 1) */
#define RT_EXIT_BOOT        1   /* a fault before the shared memory */
#define RT_EXIT_NO_IVSHMEM  2   /* no usable ivshmem-doorbell */
#define RT_EXIT_BAD_SHM     3   /* shared memory too small or unusable */

/* Publish FAILED with @code and the formatted reason, log it, halt. */
__attribute__((noreturn, format(printf, 2, 3)))
void rt_fail(uint32_t code, const char *fmt, ...);
/* Leave QEMU through isa-debug-exit: status (code << 1) | 1. */
void rt_exit(uint8_t code) __attribute__((noreturn));
/* Halt forever with interrupts off. */
void rt_halt(void) __attribute__((noreturn));

#define rt_assert(cond) \
    do { \
        if (!(cond)) { \
            rt_fail(DEVVM_EIO, "assertion failed: %s at %s:%d", #cond, \
                    __FILE__, __LINE__); \
        } \
    } while (0)

/* ---- PCI and the ivshmem device (pci.c) ---------------------------------- */

struct rt_ivshmem {
    uint8_t dev;                /* device number on bus 0 */
    uint64_t regs;              /* BAR0: IVPosition, Doorbell */
    uint64_t shm;               /* BAR2 */
    uint64_t shm_size;
    uint32_t vectors;           /* MSI-X table size */
    uint32_t peer_id;           /* IVPosition */
};

/* Find and set up the ivshmem-doorbell function; 0 or -DEVVM_ENODEV. */
int rt_pci_init(struct rt_ivshmem *iv);
/* Signal @vector of peer @peer. */
void rt_doorbell(const struct rt_ivshmem *iv, uint16_t peer,
                 uint16_t vector);

/* The DMA window (docs/devvm/dma-window.rst), when QEMU has one. */
struct rt_window {
    uint64_t table;             /* BAR0 */
    uint64_t base;              /* BAR2, mapped */
    uint64_t size;
};

/* Find and map the devvm-dma-window function; 0 or -DEVVM_ENODEV. */
int rt_pci_window(struct rt_window *w);

/* ---- the device and its rings (serve.c) ---------------------------------- */

/* Bring up the device on the shared memory; returns after READY. */
void rt_serve_init(const struct rt_ivshmem *iv, uint64_t heap,
                   uint64_t heap_end, char *cmdline);
/* The poll loop. */
void rt_serve(void) __attribute__((noreturn));
/* The shared memory, NULL until it is known (for rt_fail()). */
extern void *rt_shm;

#endif /* DEVVM_RT_H */
