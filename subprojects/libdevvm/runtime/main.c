/*
 * devvm runtime: bring-up from the PVH entry to the poll loop, and the
 * ways out (FAILED, isa-debug-exit).
 *
 * Memory map (identity, docs/devvm/runtime.rst): the image at 1 MiB,
 * its .bss holding page tables and stacks; from the page after the
 * image to the end of that RAM range of the PVH memory map, the heap,
 * which holds the instances' private state and BAR memory windows.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "rt.h"
#include "sdk-impl.h"
#include "libdevvm/ring.h"

#define HVM_START_MAGIC     0x336ec578u
#define HVM_MEMMAP_RAM      1
#define DEBUG_EXIT_PORT     0xf4
#define CMDLINE_MAX         4096
#define LOW_MEM_END         0x100000000ull  /* what boot.S maps */

/* xen/include/public/arch-x86/hvm/start_info.h */
struct hvm_start_info {
    uint32_t magic;
    uint32_t version;
    uint32_t flags;
    uint32_t nr_modules;
    uint64_t modlist_paddr;
    uint64_t cmdline_paddr;
    uint64_t rsdp_paddr;
    uint64_t memmap_paddr;          /* version 1 and later */
    uint32_t memmap_entries;
    uint32_t reserved;
};

struct hvm_memmap_table_entry {
    uint64_t addr;
    uint64_t size;
    uint32_t type;
    uint32_t reserved;
};

void rt_main(uint32_t start_info) __attribute__((noreturn));

static char cmdline[CMDLINE_MAX];
static struct rt_ivshmem ivshmem;

void rt_halt(void)
{
    for (;;) {
        asm volatile("cli; hlt");
    }
}

void rt_exit(uint8_t code)
{
    rt_log("exit %u", code);
    outb(DEBUG_EXIT_PORT, code);
    /* without isa-debug-exit at 0xf4 */
    rt_halt();
}

void rt_fail(uint32_t code, const char *fmt, ...)
{
    static int failing;
    char reason[DEVVM_MAX_REASON];
    va_list ap;

    /* a fault while reporting one: the first report is what counts */
    if (failing++) {
        rt_halt();
    }
    va_start(ap, fmt);
    devvm_vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    rt_log("FAILED (%u): %s", code, reason);
    if (!rt_shm) {
        /* nobody could see FAILED: leave QEMU so that someone notices */
        rt_exit(RT_EXIT_BOOT);
    }
    devvm_shm_set_state(rt_shm, DEVVM_STATE_FAILED, code, reason);
    rt_halt();
}

/* The RAM range of the memory map holding the image: its end. */
static uint64_t ram_end(const struct hvm_start_info *si)
{
    const struct hvm_memmap_table_entry *e;
    uint64_t image_end = (uint64_t)__image_end;
    uint32_t i;

    if (si->version < 1 || !si->memmap_paddr) {
        return 0;
    }
    e = (const void *)si->memmap_paddr;
    for (i = 0; i < si->memmap_entries; i++) {
        if (e[i].type == HVM_MEMMAP_RAM && e[i].addr < image_end &&
            e[i].addr + e[i].size >= image_end) {
            /* only the low 4 GiB are mapped */
            return e[i].addr + e[i].size < LOW_MEM_END ?
                   e[i].addr + e[i].size : LOW_MEM_END;
        }
    }
    return 0;
}

/* The runtime's own parameters: devvm.verbose=0|1. */
static void runtime_params(void)
{
    static const char verbose[] = "devvm.verbose=";
    const char *p = cmdline;

    while (*p) {
        if ((p == cmdline || p[-1] == ' ') &&
            !memcmp(p, verbose, sizeof(verbose) - 1)) {
            rt_verbose = p[sizeof(verbose) - 1] == '1';
        }
        p++;
    }
}

void rt_main(uint32_t start_info)
{
    const struct hvm_start_info *si = (const void *)(uint64_t)start_info;
    uint64_t heap = (uint64_t)__image_end, heap_end;

    rt_console_init();
    rt_cpu_init();
    if (si->magic != HVM_START_MAGIC) {
        rt_fail(DEVVM_EINVAL, "no PVH start info (magic 0x%x)", si->magic);
    }
    if (si->cmdline_paddr) {
        const char *c = (const char *)si->cmdline_paddr;
        unsigned i;

        for (i = 0; i < CMDLINE_MAX - 1 && c[i]; i++) {
            cmdline[i] = c[i];
        }
    }
    runtime_params();
    heap_end = ram_end(si);
    if (heap_end <= heap) {
        rt_fail(DEVVM_ENOMEM, "no RAM after the image in the PVH memory map");
    }
    rt_log("devvm runtime, command line \"%s\", heap %lu KiB", cmdline,
           (unsigned long)((heap_end - heap) >> 10));
    rt_time_init();
    if (rt_pci_init(&ivshmem)) {
        rt_exit(RT_EXIT_NO_IVSHMEM);
    }
    rt_serve_init(&ivshmem, heap, heap_end, cmdline);
    rt_serve();
}
