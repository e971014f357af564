/*
 * devvm runtime: PVH entry, switch to long mode, trap stubs.
 *
 * QEMU's -kernel with pvh.bin enters _start in 32-bit flat protected
 * mode: paging off, interrupts off, %ebx pointing at hvm_start_info.
 * The GDT it leaves is not ours to keep.  We clear .bss, identity-map
 * the low 4 GiB with 2 MiB pages, enable PAE, SSE and long mode, load
 * our own GDT and enter rt_main(start_info) in 64-bit mode.  rt_main()
 * installs the TSS and the IDT (cpu.c) and never returns.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#define XEN_ELFNOTE_PHYS32_ENTRY 18

#define CODE64_SEL      0x08
#define DATA_SEL        0x10
#define CODE32_SEL      0x18

#define CR0_MP          (1 << 1)
#define CR0_EM          (1 << 2)
#define CR0_TS          (1 << 3)
#define CR0_NE          (1 << 5)
#define CR0_PG          (1 << 31)
#define CR4_PAE         (1 << 5)
#define CR4_OSFXSR      (1 << 9)
#define CR4_OSXMMEXCPT  (1 << 10)
#define MSR_EFER        0xc0000080
#define EFER_LME        (1 << 8)

#define PTE_P           0x1
#define PTE_RW          0x2
#define PTE_PS          0x80            /* 2 MiB page in a PD entry */

    .section .note.pvh, "a", @note
    .p2align 2
    .long 4                             /* name size */
    .long 4                             /* descriptor size */
    .long XEN_ELFNOTE_PHYS32_ENTRY
    .asciz "Xen"
    .long _start

    .text
    .code32
    .globl _start
_start:
    cli
    cld
    mov %ebx, %esi                      /* hvm_start_info, for rt_main */
    lgdt gdt_desc
    ljmp $CODE32_SEL, $1f
1:  mov $DATA_SEL, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %fs
    mov %ax, %gs
    mov %ax, %ss

    /* .bss holds the page tables and the stacks: clear it first */
    mov $__bss_start, %edi
    mov $__bss_end, %ecx
    sub %edi, %ecx
    xor %eax, %eax
    rep stosb

    /* PML4[0] -> PDPT; PDPT[0..3] -> the four PDs of the low 4 GiB */
    mov $rt_pdpt, %eax
    or $(PTE_P | PTE_RW), %eax
    mov %eax, rt_pml4
    mov $rt_pd_low, %eax
    or $(PTE_P | PTE_RW), %eax
    xor %ecx, %ecx
2:  mov %eax, rt_pdpt(, %ecx, 8)
    add $4096, %eax
    inc %ecx
    cmp $4, %ecx
    jne 2b

    /*
     * 2048 PD entries of 2 MiB each, write-back (PAT index 0).  MMIO in
     * there traps to QEMU whatever its memory type, and the ivshmem
     * shared memory wants write-back (protocol.rst, "Memory ordering").
     */
    mov $(PTE_P | PTE_RW | PTE_PS), %eax
    xor %edx, %edx                      /* bits 32+ of the address */
    xor %ecx, %ecx
3:  mov %eax, rt_pd_low(, %ecx, 8)
    mov %edx, rt_pd_low + 4(, %ecx, 8)
    add $0x200000, %eax
    adc $0, %edx
    inc %ecx
    cmp $2048, %ecx
    jne 3b

    /* PAE and SSE (compiled C may use it): OSFXSR, OSXMMEXCPT */
    mov $(CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT), %eax
    mov %eax, %cr4
    mov $rt_pml4, %eax
    mov %eax, %cr3
    mov $MSR_EFER, %ecx
    rdmsr
    or $EFER_LME, %eax
    wrmsr
    /* paging on, and FPU/SSE usable: MP and NE set, EM and TS clear */
    mov %cr0, %eax
    and $~(CR0_EM | CR0_TS), %eax
    or $(CR0_PG | CR0_MP | CR0_NE), %eax
    mov %eax, %cr0
    ljmp $CODE64_SEL, $long_mode

    .code64
long_mode:
    mov $DATA_SEL, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %fs
    mov %ax, %gs
    mov %ax, %ss
    lea rt_stack_top(%rip), %rsp
    fninit
    movl %esi, %edi                     /* zero-extends start_info */
    call rt_main
4:  cli                                 /* rt_main does not return */
    hlt
    jmp 4b

/*
 * Exceptions 0..31: trap_N pushes 0 (when the CPU pushed no error code)
 * and N, saves the general registers and calls rt_trap(frame), which
 * reports the fault and never returns (struct rt_frame in rt.h).  They
 * run on the IST1 stack (cpu.c) so that a stack overflow is reported
 * too.
 */
    .altmacro
    .macro trap_stub n
    .p2align 4
trap_\n:
    .set has_error_code, (\n == 8) || ((\n >= 10) && (\n <= 14))
    .set has_error_code, has_error_code || (\n == 17) || (\n == 21)
    .set has_error_code, has_error_code || (\n == 29) || (\n == 30)
    .if !has_error_code
    push $0
    .endif
    push $\n
    jmp trap_common
    .endm

    .macro trap_addr n
    .quad trap_\n
    .endm

    .set vec, 0
    .rept 32
    trap_stub %vec
    .set vec, vec + 1
    .endr

trap_common:
    push %r15
    push %r14
    push %r13
    push %r12
    push %r11
    push %r10
    push %r9
    push %r8
    push %rbp
    push %rdi
    push %rsi
    push %rdx
    push %rcx
    push %rbx
    push %rax
    mov %rsp, %rdi                      /* 16-byte aligned: 22 quads */
    call rt_trap
5:  cli
    hlt
    jmp 5b

/*
 * The wake-up (MSI-X) and timer interrupts only end a hlt in
 * rt_idle(): the poll loop looks at every ring afterwards.  They touch
 * no register but %rax, so the interrupted C code keeps its SSE state.
 */
    .globl rt_irq_wake
rt_irq_wake:
    push %rax
    mov rt_lapic_eoi(%rip), %rax
    movl $0, (%rax)
    pop %rax
    iretq

    /* LAPIC spurious interrupts need no EOI */
    .globl rt_irq_spurious
rt_irq_spurious:
    iretq

    .section .rodata
    .p2align 3
    .globl rt_trap_table
rt_trap_table:                          /* entry points, for the IDT */
    .set vec, 0
    .rept 32
    trap_addr %vec
    .set vec, vec + 1
    .endr

    .data
    .p2align 3
    .globl rt_gdt
rt_gdt:
    .quad 0
    .quad 0x00af9a000000ffff            /* 0x08: code, 64-bit */
    .quad 0x00cf92000000ffff            /* 0x10: data, base 0, 4 GiB */
    .quad 0x00cf9a000000ffff            /* 0x18: code, 32-bit (boot) */
    .quad 0, 0                          /* 0x20: TSS, filled by cpu.c */
rt_gdt_end:
gdt_desc:                               /* lgdt in 32-bit mode: 6 bytes */
    .word rt_gdt_end - rt_gdt - 1
    .long rt_gdt

    .section .note.GNU-stack, "", @progbits

    .section .bss.pgtable, "aw", @nobits
    .p2align 12
    .globl rt_pml4, rt_pdpt
rt_pml4:
    .space 4096
rt_pdpt:
    .space 4096
rt_pd_low:
    .space 4 * 4096

    .bss
    .p2align 4
    .space 0x10000
rt_stack_top:
