/*
 * libdevvm: the DMA window (devvm extension), zero-copy DMA for a device
 * VM.  docs/devvm/dma-window.rst specifies it.
 *
 * A device VM's QEMU has one devvm-dma-window PCI function: BAR2 is the
 * window, a large 64-bit prefetchable BAR with nothing in it until the
 * gateway maps a client's DMA_MAPped memory (the client's own fd) at an
 * offset of it; BAR0 is the table the device VM's runtime reads to find
 * a client address in the window.  The gateway drives the device over a
 * UNIX socket (QEMU's chardev) with the messages below; only ranges a
 * client DMA_MAPped with an fd are ever placed in the window, and each
 * is taken out before the client's DMA_UNMAP is answered.
 *
 * Freestanding (the runtime reads the table): <stdint.h> only.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef LIBDEVVM_WINDOW_H
#define LIBDEVVM_WINDOW_H

#include <stdint.h>

/* the PCI function: experimental range of docs/specs/pci-ids.rst */
#define DEVVM_WIN_VENDOR_ID     0x1af4u
#define DEVVM_WIN_DEVICE_ID     0x10f0u
#define DEVVM_WIN_TABLE_BAR     0       /* 32-bit memory, the table */
#define DEVVM_WIN_BAR           2       /* 64-bit prefetchable, the window */

/* ---- BAR0: the table (read-only to the device VM but for ACK) --------- */

#define DEVVM_WIN_MAGIC         0x57445644u     /* "DVDW" little-endian */
#define DEVVM_WIN_VERSION       1u
#define DEVVM_WIN_REG_MAGIC     0x00    /* u32 */
#define DEVVM_WIN_REG_VERSION   0x04    /* u32 */
#define DEVVM_WIN_REG_SIZE      0x08    /* u64: BAR2's size */
#define DEVVM_WIN_REG_SEQ       0x10    /* u32: odd while the table changes */
#define DEVVM_WIN_REG_EPOCH     0x14    /* u32: +1 at each entry taken out */
#define DEVVM_WIN_REG_ACK       0x18    /* u32: the last EPOCH it saw; the
                                         * device VM's only writable word */
#define DEVVM_WIN_REG_SLOTS     0x1c    /* u32: entries in the table */
#define DEVVM_WIN_TABLE         0x40    /* the entries */
#define DEVVM_WIN_ENTRY_SIZE    32u
#define DEVVM_WIN_SLOTS         128u
#define DEVVM_WIN_TABLE_SIZE    0x2000u /* BAR0 */

/* an entry: client @iova..+@size is at @offset of the window */
#define DEVVM_WIN_E_IOVA        0x00    /* u64 */
#define DEVVM_WIN_E_SIZE        0x08    /* u64 */
#define DEVVM_WIN_E_OFFSET      0x10    /* u64 */
#define DEVVM_WIN_E_INSTANCE    0x18    /* u32: the gateway's instance */
#define DEVVM_WIN_E_FLAGS       0x1c    /* u32 */
#define DEVVM_WIN_E_F_VALID     0x1u
#define DEVVM_WIN_E_F_WRITE     0x2u    /* the client allows device writes */

/* ---- the socket: gateway <-> devvm-dma-window ------------------------- */

/*
 * Every message is DEVVM_WIN_MSG_SIZE bytes, little-endian; MAP carries
 * one fd (SCM_RIGHTS).  The device sends HELLO when it is realized and
 * then answers each request with a REPLY of the same id.
 */
#define DEVVM_WIN_MSG_SIZE      48u
#define DEVVM_WIN_M_OP          0x00    /* u32 */
#define DEVVM_WIN_M_FLAGS       0x04    /* u32: MAP: DEVVM_WIN_E_F_WRITE */
#define DEVVM_WIN_M_ID          0x08    /* u32: a request's, its reply's */
#define DEVVM_WIN_M_INSTANCE    0x0c    /* u32: MAP: the entry's instance;
                                         * REPLY: 0 or a positive errno */
#define DEVVM_WIN_M_OFFSET      0x10    /* u64: window offset;
                                         * HELLO: the window's size */
#define DEVVM_WIN_M_SIZE        0x18    /* u64; HELLO: the table's slots */
#define DEVVM_WIN_M_IOVA        0x20    /* u64: MAP: the client address */
#define DEVVM_WIN_M_FD_OFFSET   0x28    /* u64: MAP: offset in the fd;
                                         * HELLO: the version */

#define DEVVM_WIN_OP_HELLO      1u      /* device -> gateway, once */
#define DEVVM_WIN_OP_MAP        2u      /* gateway -> device, with an fd */
#define DEVVM_WIN_OP_UNMAP      3u      /* gateway -> device: OFFSET, SIZE */
#define DEVVM_WIN_OP_REPLY      4u      /* device -> gateway */

/* what the window's offsets and sizes are multiples of */
#define DEVVM_WIN_ALIGN         4096u

#endif /* LIBDEVVM_WINDOW_H */
