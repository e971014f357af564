/*
 * devvm-crypto: a hash offload engine that does not exist in silicon,
 * written against the devvm SDK.  This header is its programming
 * interface, shared by the device (crypto.c), its Linux driver
 * (linux/) and its tests; docs/devvm/crypto.rst is the datasheet.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef DEVVM_CRYPTO_H
#define DEVVM_CRYPTO_H

/* identity */
#define CRYPTO_VENDOR_ID        0x1af4
#define CRYPTO_DEVICE_ID        0x10f2
#define CRYPTO_SUBSYS_VENDOR_ID 0x1af4
#define CRYPTO_SUBSYS_ID        0x1100
#define CRYPTO_REVISION         0x01
#define CRYPTO_CLASS_CODE       0x108000    /* encryption controller, other */

/* BAR0: 4 KiB of 32-bit registers; BAR2: the MSI-X table and PBA */
#define CRYPTO_BAR0_SIZE        0x1000
#define CRYPTO_MSIX_BAR         2
#define CRYPTO_MSIX_BAR_SIZE    0x1000
#define CRYPTO_MSIX_TABLE       0x0000
#define CRYPTO_MSIX_PBA         0x0800
#define CRYPTO_MSIX_VECTORS     1

/* registers (BAR0; 32-bit accesses only) */
#define CRYPTO_REG_ID           0x00    /* RO  CRYPTO_ID */
#define CRYPTO_REG_VERSION      0x04    /* RO  CRYPTO_VERSION */
#define CRYPTO_REG_CAPS         0x08    /* RO  CRYPTO_CAP_* */
#define CRYPTO_REG_CTRL         0x0c    /* RW  CRYPTO_CTRL_* */
#define CRYPTO_REG_STATUS       0x10    /* RO  CRYPTO_STATUS_* */
#define CRYPTO_REG_RING_BASE_LO 0x18    /* RW  ring base, 64-byte aligned */
#define CRYPTO_REG_RING_BASE_HI 0x1c    /* RW */
#define CRYPTO_REG_RING_SIZE    0x20    /* RW  entries: a power of 2 */
#define CRYPTO_REG_RING_PROD    0x24    /* RW  producer index: doorbell */
#define CRYPTO_REG_RING_CONS    0x28    /* RO  consumer index */
#define CRYPTO_REG_IRQ_STATUS   0x30    /* RW1C CRYPTO_IRQ_* */
#define CRYPTO_REG_IRQ_MASK     0x34    /* RW  CRYPTO_IRQ_*: 1 = masked */
#define CRYPTO_REG_COAL_COUNT   0x38    /* RW  completions per interrupt */
#define CRYPTO_REG_COAL_USEC    0x3c    /* RW  or this long after the 1st */
#define CRYPTO_REG_ERR_COUNT    0x40    /* RO  errors logged so far */
#define CRYPTO_REG_DONE_LO      0x48    /* RO  descriptors completed */
#define CRYPTO_REG_DONE_HI      0x4c
#define CRYPTO_REG_BYTES_LO     0x50    /* RO  source bytes hashed */
#define CRYPTO_REG_BYTES_HI     0x54
#define CRYPTO_REG_IRQ_COUNT    0x58    /* RO  MSI-X messages signalled */
#define CRYPTO_REG_ERR_LOG      0x100   /* RO  CRYPTO_ERR_LOG_LEN entries */

#define CRYPTO_ID               0x44564352u     /* "RCVD" */
#define CRYPTO_VERSION          1

#define CRYPTO_CAP_SHA256       0x1u
#define CRYPTO_CAP_CRC32C       0x4u
#define CRYPTO_CAP_MAX_SG_SHIFT 16      /* bits 16-31: the SG list limit */

#define CRYPTO_CTRL_ENABLE      0x1u    /* start (or keep) the ring */
#define CRYPTO_CTRL_RESET       0x2u    /* back to the reset state */

#define CRYPTO_STATUS_ENABLED   0x1u
#define CRYPTO_STATUS_HALTED    0x2u    /* stopped on an error: reset */
#define CRYPTO_STATUS_BUSY      0x4u    /* a descriptor is in progress */

#define CRYPTO_IRQ_DONE         0x1u    /* descriptors completed */
#define CRYPTO_IRQ_ERROR        0x2u    /* an error was logged */

#define CRYPTO_RING_MAX         4096
#define CRYPTO_MAX_SG           256
#define CRYPTO_MAX_SEG_LEN      (16u << 20)

/* the error log: CRYPTO_ERR_LOG_LEN entries of 16 bytes, oldest
 * overwritten; entry (count - 1) % LEN is the newest */
#define CRYPTO_ERR_LOG_LEN      16
#define CRYPTO_ERR_SEQ          0x0     /* u32: 1, 2, ...; 0: empty */
#define CRYPTO_ERR_CODE         0x4     /* u16: CRYPTO_ST_* */
#define CRYPTO_ERR_INDEX        0x6     /* u16: ring slot, or 0xffff */
#define CRYPTO_ERR_DETAIL       0x8     /* u64: an address or a value */
#define CRYPTO_ERR_NO_INDEX     0xffff

/* a descriptor: 64 bytes in the ring, little-endian */
#define CRYPTO_DESC_SIZE        64
#define CRYPTO_D_OP             0x00    /* u8  CRYPTO_OP_* */
#define CRYPTO_D_FLAGS          0x01    /* u8  CRYPTO_F_* */
#define CRYPTO_D_SG_COUNT       0x02    /* u16 entries at SG_ADDR */
#define CRYPTO_D_SG_ADDR        0x08    /* u64 */
#define CRYPTO_D_DST_ADDR       0x10    /* u64 the digest (FINAL) */
#define CRYPTO_D_DST_LEN        0x18    /* u32 room there */
#define CRYPTO_D_STATE_ADDR     0x20    /* u64 CRYPTO_STATE_SIZE bytes */
#define CRYPTO_D_COOKIE         0x28    /* u64 the driver's, untouched */
#define CRYPTO_D_RESULT_LEN     0x38    /* u32 written back: bytes hashed */
#define CRYPTO_D_STATUS         0x3c    /* u32 written back */

#define CRYPTO_OP_SHA256        1
#define CRYPTO_OP_CRC32C        3

#define CRYPTO_F_INIT           0x1u    /* start afresh */
#define CRYPTO_F_FINAL          0x2u    /* write the digest to DST */
#define CRYPTO_F_STATE_IN       0x4u    /* continue from STATE */
#define CRYPTO_F_STATE_OUT      0x8u    /* save the state to STATE */
#define CRYPTO_F_ALL            0xfu

/* the status word: DONE, and the outcome in the low 16 bits */
#define CRYPTO_ST_DONE          0x80000000u
#define CRYPTO_ST_OK            0
#define CRYPTO_ST_BAD_OP        1       /* unknown operation */
#define CRYPTO_ST_BAD_FLAGS     2       /* unknown or contradictory flags */
#define CRYPTO_ST_BAD_LEN       3       /* SG count, a length, DST_LEN */
#define CRYPTO_ST_DMA_FAULT     4       /* an address the client did not
                                         * map for DMA (log: the address) */
#define CRYPTO_ST_BAD_STATE     5       /* a STATE that is not a state */
#define CRYPTO_ST_RING_INDEX    6       /* (log only) PROD out of range */
#define CRYPTO_ST_RING_FETCH    7       /* (log only) the ring unreadable:
                                         * HALTED */
#define CRYPTO_ST_RING_CONFIG   8       /* (log only) ENABLE with a bad
                                         * base or size */

/* an SG entry: 16 bytes */
#define CRYPTO_SG_SIZE          16
#define CRYPTO_SG_ADDR          0x0     /* u64 */
#define CRYPTO_SG_LEN           0x8     /* u32, at most CRYPTO_MAX_SEG_LEN */

/* the state: 128 bytes, opaque to the driver but for its size */
#define CRYPTO_STATE_SIZE       128
#define CRYPTO_STATE_MAGIC      0x53485644u     /* "DVHS" */
#define CRYPTO_S_MAGIC          0x00    /* u32 */
#define CRYPTO_S_OP             0x04    /* u8 */
#define CRYPTO_S_BUFLEN         0x05    /* u8, below 64 */
#define CRYPTO_S_TOTAL          0x08    /* u64 bytes so far */
#define CRYPTO_S_H              0x10    /* u32[8] */
#define CRYPTO_S_BUF            0x30    /* u8[64] */

#define CRYPTO_SHA256_DIGEST    32
#define CRYPTO_CRC32C_DIGEST    4

#endif /* DEVVM_CRYPTO_H */
