/*
 * The needs note of "broken", a device image that cannot work: linked
 * with pvh-exit.S, it leaves QEMU as soon as it boots.  The coordinator's
 * test uses it to make a device VM fail after the coordinator started
 * it (everything started for that request must be released).  Shared,
 * 10% of a core, 16 MiB, one client: libdevvm/needs.h has the layout.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
    .section .note.devvm, "a", @note
    .p2align 2
    .long 6                         /* name size: "devvm" */
    .long 64                        /* descriptor size */
    .long 0x44454e31                /* DEVVM_NOTE_NEEDS */
    .asciz "devvm"
    .p2align 2
    .long 1                         /* version */
    .long 64                        /* size */
    .ascii "broken"                 /* name[32] */
    .fill 26, 1, 0
    .short 0x1af4, 0x10f3           /* vendor, device */
    .byte 2                         /* cores: shared */
    .byte 10                        /* percent */
    .short 0
    .long 16                        /* memory_mib */
    .long 1                         /* max_clients */
    .long 0                         /* flags */
    .long 0
