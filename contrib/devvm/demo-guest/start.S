/*
 * devvm-demo: entry point and interrupt stubs.
 *
 * The PVH loader (QEMU's -kernel with pvh.bin) enters _start in 32-bit
 * flat protected mode, paging off, interrupts off, %ebx pointing at
 * hvm_start_info.  The GDT it leaves is not ours to keep, so load one,
 * set up a stack, clear .bss and call demo_main(); its return value goes
 * to isa-debug-exit (QEMU exits with (value << 1) | 1).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#define XEN_ELFNOTE_PHYS32_ENTRY 18
#define DEBUG_EXIT 0xf4
#define CODE_SEL 0x08
#define DATA_SEL 0x10

    .section .note.pvh, "a", @note
    .p2align 2
    .long 4                         /* name size */
    .long 4                         /* descriptor size */
    .long XEN_ELFNOTE_PHYS32_ENTRY
    .asciz "Xen"
    .long _start

    .text
    .code32
    .globl _start
_start:
    cli
    cld
    lgdt gdt_desc
    ljmp $CODE_SEL, $1f
1:  mov $DATA_SEL, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %fs
    mov %ax, %gs
    mov %ax, %ss
    mov $stack_top, %esp
    mov %ebx, %esi                  /* hvm_start_info, kept for main */

    mov $__bss_start, %edi          /* clear .bss */
    mov $__bss_end, %ecx
    sub %edi, %ecx
    xor %eax, %eax
    rep stosb

    push %esi
    call demo_main
    push %eax
    call demo_exit

    .globl demo_exit
demo_exit:                          /* void demo_exit(uint32_t value) */
    cli
    mov 4(%esp), %eax
    mov $DEBUG_EXIT, %dx
    outb %al, %dx
2:  hlt                             /* not reached with isa-debug-exit */
    jmp 2b

/*
 * Interrupt and exception stubs: isr_N pushes 0 (when the CPU pushed no
 * error code) and N, then the common part calls demo_isr(N, frame).
 */
    .altmacro
    .macro isr_stub n
    .p2align 3
isr_\n:
    .if (\n == 8) || ((\n >= 10) && (\n <= 14)) || (\n == 17) || (\n == 21)
    .else
    push $0
    .endif
    push $\n
    jmp isr_common
    .endm

    .macro isr_addr n
    .long isr_\n
    .endm

    .set vec, 0
    .rept 256
    isr_stub %vec
    .set vec, vec + 1
    .endr

isr_common:
    pusha
    mov %esp, %eax
    push %eax                       /* frame: pusha area, vector, error */
    push 36(%esp)                   /* the vector (after pusha + push) */
    call demo_isr
    add $8, %esp
    popa
    add $8, %esp                    /* vector and error code */
    iret

    .section .rodata
    .p2align 2
    .globl isr_table
isr_table:                          /* entry points, for the IDT */
    .set vec, 0
    .rept 256
    isr_addr %vec
    .set vec, vec + 1
    .endr

    .p2align 3
gdt:
    .quad 0
    .quad 0x00cf9a000000ffff        /* 0x08: code, base 0, 4 GiB, 32-bit */
    .quad 0x00cf92000000ffff        /* 0x10: data, base 0, 4 GiB */
gdt_end:
gdt_desc:
    .word gdt_end - gdt - 1
    .long gdt

    .section .note.GNU-stack, "", @progbits

    .bss
    .p2align 4
stack:
    .space 0x8000
stack_top:
