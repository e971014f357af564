/*
 * libdevvm: what a device needs from the host, as an ELF note in the
 * device's images (Figure 3 of the design: the device VM determines what
 * it needs and asks the coordinator for it).
 *
 * A device source states its needs once, next to its description:
 *
 *   DEVVM_NEEDS(.name = "testdev",
 *               .vendor_id = 0x1af4, .device_id = 0x10f1,
 *               .cores = DEVVM_NEEDS_CORE_EXCLUSIVE, .percent = 100,
 *               .memory_mib = 64, .flags = DEVVM_NEEDS_F_SHAREABLE,
 *               .max_clients = 4);
 *
 * The macro places a note (owner "devvm", type DEVVM_NOTE_NEEDS) in the
 * section ".note.devvm" of the object, so that both the device VM image
 * and the process-mode binary built from that source carry it.  The
 * coordinator (tools/devvm/coordinator/needs.c) reads it from the image
 * it is given: its catalog is the set of images and cannot drift from
 * them.  docs/devvm/coordinator.rst describes the fields and the layout.
 *
 * The descriptor is a fixed little-endian layout of DEVVM_NEEDS_SIZE
 * bytes; the macro writes it with the compiler's own layout, so it is
 * only available on little-endian targets (all the runtimes are x86-64).
 * Freestanding: <stdint.h> only.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef LIBDEVVM_NEEDS_H
#define LIBDEVVM_NEEDS_H

#include <stdint.h>

#define DEVVM_NOTE_OWNER        "devvm"     /* n_namesz 6, padded to 8 */
#define DEVVM_NOTE_NEEDS        0x44454e31u /* n_type: "1NED" */
#define DEVVM_NEEDS_VERSION     1u
#define DEVVM_NEEDS_SIZE        64u
#define DEVVM_NEEDS_NAME_MAX    32u         /* bytes, NUL-terminated */

/* How the device's vCPU wants a host core. */
enum devvm_needs_cores {
    DEVVM_NEEDS_CORE_EXCLUSIVE = 1, /* a core of its own (it polls) */
    DEVVM_NEEDS_CORE_SHARED = 2,    /* @percent of one core is enough */
};

/* Flags. */
#define DEVVM_NEEDS_F_SHAREABLE 0x1u    /* one device VM may serve several
                                         * clients, up to @max_clients */

/*
 * The note's descriptor.  Offsets are fixed (checked below); reserved
 * fields are 0.
 */
struct devvm_needs {
    uint32_t version;       /*  0: DEVVM_NEEDS_VERSION */
    uint32_t size;          /*  4: DEVVM_NEEDS_SIZE */
    char name[DEVVM_NEEDS_NAME_MAX]; /* 8: the catalog's type name:
                                      * [a-z0-9_-], 1 to 31 bytes */
    uint16_t vendor_id;     /* 40: PCI IDs of the function it presents */
    uint16_t device_id;     /* 42 */
    uint8_t cores;          /* 44: enum devvm_needs_cores */
    uint8_t percent;        /* 45: share of one core: 1..100 (100 when
                             * exclusive) */
    uint16_t reserved0;     /* 46 */
    uint32_t memory_mib;    /* 48: guest RAM of its device VM, 16..65536 */
    uint32_t max_clients;   /* 52: 1..32; 1 when not shareable */
    uint32_t flags;         /* 56: DEVVM_NEEDS_F_* */
    uint32_t reserved1;     /* 60 */
};

/* The whole note as it sits in the section: header, owner, descriptor. */
struct devvm_needs_note {
    uint32_t namesz;
    uint32_t descsz;
    uint32_t type;
    char owner[8];
    struct devvm_needs needs;
};

_Static_assert(sizeof(struct devvm_needs) == DEVVM_NEEDS_SIZE,
               "struct devvm_needs has the note's layout");
_Static_assert(__builtin_offsetof(struct devvm_needs, memory_mib) == 48,
               "struct devvm_needs has the note's layout");
_Static_assert(sizeof(struct devvm_needs_note) == 20 + DEVVM_NEEDS_SIZE,
               "struct devvm_needs_note has the note's layout");

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
/*
 * DEVVM_NEEDS(designated initializers of struct devvm_needs): emit the
 * note.  Use it once per device source, at file scope.
 */
#define DEVVM_NEEDS(...) \
    __attribute__((used, section(".note.devvm"), aligned(4))) \
    static const struct devvm_needs_note devvm_needs_note_ = { \
        .namesz = sizeof(DEVVM_NOTE_OWNER), \
        .descsz = DEVVM_NEEDS_SIZE, \
        .type = DEVVM_NOTE_NEEDS, \
        .owner = DEVVM_NOTE_OWNER, \
        .needs = { \
            .version = DEVVM_NEEDS_VERSION, \
            .size = DEVVM_NEEDS_SIZE, \
            __VA_ARGS__ \
        }, \
    }
#endif

#endif /* LIBDEVVM_NEEDS_H */
