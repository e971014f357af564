/*
 * The smallest PVH guest: booted with -kernel, it prints a marker on the
 * first serial port and leaves QEMU through isa-debug-exit with status
 * (0x21 << 1) | 1 = 67.  Used to prove that a QEMU finds the firmware and
 * option ROMs (bios.bin, pvh.bin) with no -L.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#define XEN_ELFNOTE_PHYS32_ENTRY 18
#define COM1 0x3f8
#define DEBUG_EXIT 0xf4

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
_start:                             /* 32-bit flat protected mode */
    lea marker, %esi
1:  lodsb
    test %al, %al
    jz 3f
    mov %al, %bl
    mov $COM1 + 5, %dx              /* wait for THR empty */
2:  inb %dx, %al
    test $0x20, %al
    jz 2b
    mov $COM1, %dx
    mov %bl, %al
    outb %al, %dx
    jmp 1b
3:  mov $DEBUG_EXIT, %dx
    mov $0x21, %al
    outb %al, %dx
4:  hlt
    jmp 4b

marker:
    .asciz "devvm-pvh-ok\n"
