/*
 * devvm runtime: the CPU after boot.S: TSS and IDT, exceptions, the
 * local APIC (wake-up interrupts and a one-shot timer), the TSC clock,
 * and page tables above 4 GiB.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "rt.h"
#include "sdk-impl.h"

/* ---- descriptor tables --------------------------------------------------- */

#define CODE64_SEL      0x08
#define TSS_SEL         0x20
#define GATE_INTR       0x8e            /* present, DPL 0, interrupt gate */
#define TSS_AVAILABLE   0x89            /* present, 64-bit TSS, available */
#define IST_FAULT       1

struct idt_gate {
    uint16_t off_lo;
    uint16_t sel;
    uint8_t ist;
    uint8_t type;
    uint16_t off_mid;
    uint32_t off_hi;
    uint32_t zero;
} __attribute__((packed));

struct tss64 {
    uint32_t reserved0;
    uint64_t rsp[3];
    uint64_t reserved1;
    uint64_t ist[7];
    uint64_t reserved2;
    uint16_t reserved3;
    uint16_t iomap_base;
} __attribute__((packed));

static struct idt_gate idt[256] __attribute__((aligned(16)));
static struct tss64 tss __attribute__((aligned(16)));
/*
 * Exceptions run on a stack of their own (IST1), so that a device that
 * overflows the main stack still gets its fault reported.
 */
static uint8_t fault_stack[16384] __attribute__((aligned(16)));

uint64_t rt_lapic_eoi;                  /* read by rt_irq_wake (boot.S) */

static void set_gate(unsigned vec, uint64_t handler, uint8_t ist)
{
    idt[vec] = (struct idt_gate) {
        .off_lo = handler,
        .sel = CODE64_SEL,
        .ist = ist,
        .type = GATE_INTR,
        .off_mid = handler >> 16,
        .off_hi = handler >> 32,
    };
}

static void tables_init(void)
{
    uint64_t base = (uint64_t)&tss, limit = sizeof(tss) - 1;
    struct {
        uint16_t limit;
        uint64_t base;
    } __attribute__((packed)) idtr = { sizeof(idt) - 1, (uint64_t)idt };
    unsigned i;

    tss.ist[IST_FAULT - 1] = (uint64_t)fault_stack + sizeof(fault_stack);
    tss.iomap_base = sizeof(tss);       /* no I/O permission bitmap */
    rt_gdt[TSS_SEL / 8] = (limit & 0xffff) | (base & 0xffffff) << 16 |
                          (uint64_t)TSS_AVAILABLE << 40 |
                          ((limit >> 16) & 0xf) << 48 |
                          ((base >> 24) & 0xff) << 56;
    rt_gdt[TSS_SEL / 8 + 1] = base >> 32;
    asm volatile("ltr %w0" : : "r"(TSS_SEL));

    /* vectors without a gate raise #NP, which is reported like any fault */
    for (i = 0; i < 32; i++) {
        set_gate(i, rt_trap_table[i], IST_FAULT);
    }
    set_gate(RT_VEC_WAKE, (uint64_t)rt_irq_wake, 0);
    set_gate(RT_VEC_TIMER, (uint64_t)rt_irq_wake, 0);
    set_gate(RT_VEC_SPURIOUS, (uint64_t)rt_irq_spurious, 0);
    asm volatile("lidt %0" : : "m"(idtr));
}

/* ---- exceptions ---------------------------------------------------------- */

static const char *const exception_names[32] = {
    "#DE divide error", "#DB debug", "NMI", "#BP breakpoint",
    "#OF overflow", "#BR bound range", "#UD invalid opcode",
    "#NM device not available", "#DF double fault", "coprocessor overrun",
    "#TS invalid TSS", "#NP segment not present", "#SS stack fault",
    "#GP general protection", "#PF page fault", "reserved",
    "#MF x87 error", "#AC alignment check", "#MC machine check",
    "#XM SIMD error", "#VE virtualization", "#CP control protection",
};

void rt_trap(struct rt_frame *f)
{
    const char *name = exception_names[f->vector & 31];
    uint64_t cr2;

    asm volatile("mov %%cr2, %0" : "=r"(cr2));
    rt_log("exception %lu (%s), error code 0x%lx", (unsigned long)f->vector,
           name ? name : "reserved", (unsigned long)f->error);
    rt_log("rip %016lx rsp %016lx rflags %08lx cr2 %016lx",
           (unsigned long)f->rip, (unsigned long)f->rsp,
           (unsigned long)f->rflags, (unsigned long)cr2);
    rt_log("rax %016lx rbx %016lx rcx %016lx rdx %016lx",
           (unsigned long)f->rax, (unsigned long)f->rbx,
           (unsigned long)f->rcx, (unsigned long)f->rdx);
    rt_log("rsi %016lx rdi %016lx rbp %016lx r8  %016lx",
           (unsigned long)f->rsi, (unsigned long)f->rdi,
           (unsigned long)f->rbp, (unsigned long)f->r8);
    rt_log("r9  %016lx r10 %016lx r11 %016lx r12 %016lx",
           (unsigned long)f->r9, (unsigned long)f->r10,
           (unsigned long)f->r11, (unsigned long)f->r12);
    rt_log("r13 %016lx r14 %016lx r15 %016lx",
           (unsigned long)f->r13, (unsigned long)f->r14,
           (unsigned long)f->r15);
    /* fail_code 0 would read as "no failure": #DE reports 256 */
    rt_fail(f->vector ? f->vector : 256, "exception %lu at rip 0x%lx",
            (unsigned long)f->vector, (unsigned long)f->rip);
}

/* ---- local APIC ---------------------------------------------------------- */

#define MSR_APIC_BASE       0x1b
#define APIC_BASE_ENABLE    (1u << 11)
#define APIC_BASE_MASK      0xfffff000u
#define LAPIC_ID            0x20
#define LAPIC_TPR           0x80
#define LAPIC_EOI           0xb0
#define LAPIC_SVR           0xf0
#define LAPIC_LVT_TIMER     0x320
#define LAPIC_TIMER_INIT    0x380
#define LAPIC_TIMER_CUR     0x390
#define LAPIC_TIMER_DIV     0x3e0
#define SVR_ENABLE          0x100
#define LVT_MASKED          0x10000
#define TIMER_DIV_1         0xb

#define PIC1_DATA           0x21
#define PIC2_DATA           0xa1

static uint64_t lapic;

static uint32_t lapic_rd(uint32_t reg)
{
    return mmio_rd32(lapic + reg);
}

static void lapic_wr(uint32_t reg, uint32_t v)
{
    mmio_wr32(lapic + reg, v);
}

uint64_t rt_lapic_id(void)
{
    return lapic_rd(LAPIC_ID) >> 24;
}

static void lapic_init(void)
{
    uint64_t base = rdmsr(MSR_APIC_BASE);

    /* the legacy PICs stay masked: nothing of theirs is used */
    outb(PIC1_DATA, 0xff);
    outb(PIC2_DATA, 0xff);
    if (!(base & APIC_BASE_ENABLE)) {
        base |= APIC_BASE_ENABLE;
        asm volatile("wrmsr" : : "c"(MSR_APIC_BASE), "a"((uint32_t)base),
                     "d"((uint32_t)(base >> 32)));
    }
    /* xAPIC: below 4 GiB, so inside the identity map of boot.S */
    lapic = base & APIC_BASE_MASK;
    rt_lapic_eoi = lapic + LAPIC_EOI;
    lapic_wr(LAPIC_SVR, SVR_ENABLE | RT_VEC_SPURIOUS);
    lapic_wr(LAPIC_TPR, 0);
    lapic_wr(LAPIC_TIMER_DIV, TIMER_DIV_1);
    lapic_wr(LAPIC_LVT_TIMER, LVT_MASKED | RT_VEC_TIMER);
}

void rt_cpu_init(void)
{
    tables_init();
    lapic_init();
}

/* ---- time ---------------------------------------------------------------- */

#define PIT_HZ              1193182u
#define PIT_CH2             0x42
#define PIT_CMD             0x43
#define PIT_CH2_MODE0       0xb0    /* channel 2, lo/hi byte, mode 0 */
#define PORT_B              0x61
#define PORT_B_GATE2        0x01
#define PORT_B_SPEAKER      0x02
#define PORT_B_OUT2         0x20
#define CALIBRATE_PIT_TICKS 5966u   /* 5 ms */

static uint64_t tsc_hz;
static uint64_t tsc_base;
static uint64_t ns_per_tsc_q32;      /* ns per TSC tick, 32.32 fixed */
static uint64_t apic_per_ns_q32;     /* LAPIC timer ticks per ns, 32.32 */

uint64_t devvm_rt_now_ns(void)
{
    return ((unsigned __int128)(rdtsc() - tsc_base) * ns_per_tsc_q32) >> 32;
}

/*
 * PIT channel 2 counts CALIBRATE_PIT_TICKS in mode 0 (its output, seen
 * in port 0x61, goes high at the end) while both the TSC and the LAPIC
 * timer run: one measurement calibrates both.
 */
void rt_time_init(void)
{
    uint8_t b = inb(PORT_B);
    uint64_t t0, t1, ns;
    uint32_t apic0, apic1;

    outb(PORT_B, (b & ~PORT_B_SPEAKER) | PORT_B_GATE2);
    outb(PIT_CMD, PIT_CH2_MODE0);
    lapic_wr(LAPIC_TIMER_INIT, 0xffffffffu);
    outb(PIT_CH2, CALIBRATE_PIT_TICKS & 0xff);
    outb(PIT_CH2, CALIBRATE_PIT_TICKS >> 8);
    t0 = rdtsc();
    apic0 = lapic_rd(LAPIC_TIMER_CUR);
    while (!(inb(PORT_B) & PORT_B_OUT2)) {
        cpu_relax();
    }
    t1 = rdtsc();
    apic1 = lapic_rd(LAPIC_TIMER_CUR);
    lapic_wr(LAPIC_TIMER_INIT, 0);
    outb(PORT_B, b);

    rt_assert(t1 > t0 && apic0 > apic1);
    tsc_hz = (t1 - t0) * PIT_HZ / CALIBRATE_PIT_TICKS;
    ns_per_tsc_q32 = (1000000000ull << 32) / tsc_hz;
    tsc_base = t0;
    ns = (uint64_t)CALIBRATE_PIT_TICKS * 1000000000ull / PIT_HZ;
    apic_per_ns_q32 = ((uint64_t)(apic0 - apic1) << 32) / ns;
    rt_log("TSC %lu kHz, LAPIC timer %lu kHz",
           (unsigned long)(tsc_hz / 1000),
           (unsigned long)((apic_per_ns_q32 * 1000000ull) >> 32));
}

void rt_idle(uint64_t deadline_ns)
{
    uint64_t now = devvm_rt_now_ns(), ticks;

    if (deadline_ns <= now) {
        return;
    }
    ticks = ((unsigned __int128)(deadline_ns - now) * apic_per_ns_q32) >> 32;
    if (ticks > 0xffffffffu) {
        ticks = 0xffffffffu;
    }
    lapic_wr(LAPIC_LVT_TIMER, RT_VEC_TIMER);            /* one-shot */
    lapic_wr(LAPIC_TIMER_INIT, ticks ? ticks : 1);
    /*
     * An MSI-X message that arrived since the caller last looked at its
     * rings is pending in the LAPIC and fires right after sti: hlt is in
     * sti's interrupt shadow, so the wake-up cannot be lost.
     */
    asm volatile("sti; hlt; cli" : : : "memory");
    lapic_wr(LAPIC_TIMER_INIT, 0);
}

/* ---- page tables above 4 GiB --------------------------------------------- */

#define PTE_P           0x1ull
#define PTE_RW          0x2ull
#define PTE_PS          0x80ull
#define PTE_ADDR        0x000ffffffffff000ull
#define PAGE_2M         0x200000ull
#define PAGE_1G         0x40000000ull
#define PT_POOL_PAGES   8

/* PDPTs and PDs for rt_map_high(): one PD maps 1 GiB */
static uint64_t pt_pool[PT_POOL_PAGES][512] __attribute__((aligned(4096)));
static unsigned pt_pool_used;

/* The table entry @e points to, allocated when it is empty. */
static uint64_t *next_table(uint64_t *e)
{
    uint64_t *t;

    if (*e & PTE_P) {
        return (uint64_t *)(*e & PTE_ADDR);
    }
    if (pt_pool_used == PT_POOL_PAGES) {
        return NULL;
    }
    t = pt_pool[pt_pool_used++];
    *e = (uint64_t)t | PTE_P | PTE_RW;
    return t;
}

/* CPUID.80000001H:EDX.Page1GB */
static int has_1g_pages(void)
{
    uint32_t a = 0x80000001, b, c = 0, d;

    asm volatile("cpuid" : "+a"(a), "=b"(b), "+c"(c), "=d"(d));
    return d & (1u << 26);
}

int rt_map_high(uint64_t phys, uint64_t size)
{
    uint64_t a, end = phys + size;
    int big = has_1g_pages();

    for (a = phys & ~(PAGE_2M - 1); a < end;) {
        uint64_t *pdpt = next_table(&rt_pml4[(a >> 39) & 511]);
        uint64_t *pd;

        if (pdpt && (pdpt[(a >> 30) & 511] & (PTE_P | PTE_PS)) ==
                    (PTE_P | PTE_PS)) {
            /* mapped already, by a 1 GiB page */
            a = (a & ~(PAGE_1G - 1)) + PAGE_1G;
            continue;
        }
        if (pdpt && big && !(a & (PAGE_1G - 1)) && end - a >= PAGE_1G &&
            !(pdpt[(a >> 30) & 511] & PTE_P)) {
            /* a window of many GiB needs no page directories */
            pdpt[(a >> 30) & 511] = a | PTE_P | PTE_RW | PTE_PS;
            a += PAGE_1G;
            continue;
        }
        pd = pdpt ? next_table(&pdpt[(a >> 30) & 511]) : NULL;
        if (!pd) {
            return -DEVVM_ENOMEM;
        }
        pd[(a >> 21) & 511] = a | PTE_P | PTE_RW | PTE_PS;
        a += PAGE_2M;
    }
    /* only not-present entries changed, but be explicit about it */
    asm volatile("mov %%cr3, %%rax; mov %%rax, %%cr3" : : : "rax", "memory");
    return 0;
}
