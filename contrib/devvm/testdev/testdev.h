/*
 * devvm-testdev: register map of devvm's regression-suite test device
 *
 * Constants only, no libdevvm or libc dependency, so that both the
 * device (testdev.c) and qtests of devvm-proxy can include this file.
 * BAR2's first half is memory the client maps; its second half is
 * TESTDEV_BAR2_STORE_SIZE bytes of device memory, repeated.
 * Everything is little-endian.  docs/devvm/testdev.rst describes the
 * behaviour behind each register.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef DEVVM_TESTDEV_H
#define DEVVM_TESTDEV_H

/* ---- PCI identity (config space, vfio-user region 7) -------------------- */

#define TESTDEV_VENDOR_ID           0x1af4
#define TESTDEV_DEVICE_ID           0x10f1
#define TESTDEV_REVISION            0x01
#define TESTDEV_CLASS_CODE          0xff0000    /* class, subclass, prog-if */
#define TESTDEV_SUBSYS_VENDOR_ID    0x1af4
#define TESTDEV_SUBSYS_ID           0x1100
#define TESTDEV_INTERRUPT_PIN       1           /* INTA */
#define TESTDEV_CONFIG_SIZE         256

/* BAR registers carry the type bits only (address bits read 0) */
#define TESTDEV_BAR0_TYPE           0x0         /* 32-bit memory */
#define TESTDEV_BAR1_TYPE           0x1         /* I/O */
#define TESTDEV_BAR2_TYPE           0xc         /* 64-bit prefetchable */
#define TESTDEV_BAR4_TYPE           0x4         /* 64-bit memory */

/* capabilities */
#define TESTDEV_CAP_MSI             0x40        /* 64-bit, 1 vector */
#define TESTDEV_CAP_MSIX            0x50        /* 8 vectors */
#define TESTDEV_CAP_VENDOR          0x60        /* id 0x09 */
#define TESTDEV_CAP_VENDOR_LEN      16          /* at TESTDEV_CAP_VENDOR + 2 */
#define TESTDEV_CFG_VENDOR_SCRATCH  0x64        /* 32-bit, read/write */
#define TESTDEV_CFG_VENDOR_MAGIC    0x68        /* 32-bit, read-only */
#define TESTDEV_VENDOR_MAGIC        0xc0ffee01u

/*
 * With -o pcie=on (device VM: pcie=on on the kernel command line) a PCI
 * Express function: the SDK's PCI Express capability after the vendor
 * one, a 4 KiB config space, and two extended capabilities.
 */
#define TESTDEV_CAP_PCIE            0x70        /* id 0x10, version 2 */
#define TESTDEV_PCIE_CONFIG_SIZE    4096
#define TESTDEV_EXT_DVSEC           0x100       /* id 0x0023, version 1 */
#define TESTDEV_EXT_DVSEC_LEN       16
#define TESTDEV_DVSEC_ID            0x0001      /* in DVSEC header 2 */
#define TESTDEV_CFG_DVSEC_SCRATCH   0x10c       /* 32-bit, read/write */
#define TESTDEV_EXT_VSEC            0x110       /* id 0x000b, version 1 */
#define TESTDEV_EXT_VSEC_LEN        12
#define TESTDEV_CFG_VSEC_MAGIC      0x118       /* 32-bit, read-only */
#define TESTDEV_VSEC_MAGIC          0xc0ffee02u

#define TESTDEV_MSI_VECTORS         1           /* -o msi-vectors=N */
#define TESTDEV_MSIX_VECTORS        8
#define TESTDEV_MSIX_BAR            4
#define TESTDEV_MSIX_TABLE_OFFSET   0x0000
#define TESTDEV_MSIX_PBA_OFFSET     0x1000

/* ---- regions (vfio-user region index = BAR number) ---------------------- */

#define TESTDEV_BAR0_SIZE           0x1000      /* registers */
#define TESTDEV_BAR1_SIZE           0x100       /* I/O window on BAR0 */
#define TESTDEV_BAR2_DEFAULT_SIZE   0x1000000ull /* -o bar2-size=N */
#define TESTDEV_BAR2_STORE_SIZE     0x40000     /* BAR2's second half */
#define TESTDEV_BAR4_SIZE           0x4000      /* MSI-X table and PBA */
#define TESTDEV_ROM_SIZE            0x10000     /* 55 aa, then i & 0xff */

/* ---- BAR0 registers ----------------------------------------------------- */

#define TESTDEV_REG_ID              0x00        /* RO 32 */
#define TESTDEV_REG_VERSION         0x04        /* RO 32 */
#define TESTDEV_REG_SCRATCH32       0x08        /* RW 32 */
#define TESTDEV_REG_SCRATCH64       0x10        /* RW 64 */
#define TESTDEV_REG_SCRATCH_BYTES   0x20        /* RW, 0x20 bytes */
#define TESTDEV_SCRATCH_BYTES_SIZE  0x20
#define TESTDEV_REG_INTX            0x40        /* write: line level */
#define TESTDEV_REG_MSI             0x44        /* write: signal MSI 0 */
#define TESTDEV_REG_MSIX            0x48        /* write n: signal MSI-X n */
#define TESTDEV_REG_IRQ_COUNT       0x4c        /* RO 32 */
#define TESTDEV_REG_MSI_VECTOR      0x50        /* write n: signal MSI n */
#define TESTDEV_REG_DMA_SRC         0x80        /* RW 64 */
#define TESTDEV_REG_DMA_DST         0x88        /* RW 64 */
#define TESTDEV_REG_DMA_LEN         0x90        /* RW 32 */
#define TESTDEV_REG_DMA_CMD         0x94        /* write: run a command */
#define TESTDEV_REG_DMA_PATTERN     0x98        /* RW 32 */
#define TESTDEV_REG_DMA_RESULT      0xa0        /* RO 64 */
#define TESTDEV_REG_DMA_STATUS      0xa8        /* RO 32: 0 or an errno */
#define TESTDEV_REG_DMA_IRQ         0xac        /* RW 32: MSI-X vector + 1 */
#define TESTDEV_REG_FAULT           0xc0        /* write: inject a fault */
#define TESTDEV_REG_FAULT_ARG       0xc4        /* RW 32 */
#define TESTDEV_REG_RESET_COUNT     0xd0        /* RO 32 */
#define TESTDEV_REG_MEM             0x100       /* RW memory up to 0xfff */

#define TESTDEV_ID                  0x7e570001u
#define TESTDEV_VERSION             1

/* DMA_CMD values */
#define TESTDEV_DMA_COPY            1   /* [SRC, +LEN) -> [DST, +LEN) */
#define TESTDEV_DMA_FILL            2   /* PATTERN repeated over DST */
#define TESTDEV_DMA_CHECKSUM        3   /* byte sum of SRC -> RESULT */
#define TESTDEV_DMA_CRC32           4   /* CRC-32 (IEEE) of SRC -> RESULT */
#define TESTDEV_DMA_MAX_LEN         0x100000

/* DMA_STATUS values besides 0 (Linux errno numbers) */
#define TESTDEV_DMA_EIO             5   /* DMA through the client failed */
#define TESTDEV_DMA_EFAULT          14  /* range outside the client's maps */
#define TESTDEV_DMA_EINVAL          22  /* bad command or LEN too large */

/*
 * FAULT values.  STALL applies to the next BAR access, on the socket or
 * the ring.  GARBAGE to UNEXPECTED_FD apply to the next REGION_READ on
 * the socket (any region): its reply is preceded by 32 bytes of garbage,
 * by a reply header with size 0x7fffffff, by a well-formed reply with a
 * wrong id, or by a well-formed reply carrying an eventfd.
 */
#define TESTDEV_FAULT_NONE          0   /* disarm STALL and GARBAGE.. */
#define TESTDEV_FAULT_STALL         1   /* wait FAULT_ARG ms, once */
#define TESTDEV_FAULT_HANG          2   /* stop serving, keep the socket */
#define TESTDEV_FAULT_CRASH         3   /* abort() */
#define TESTDEV_FAULT_GARBAGE       4
#define TESTDEV_FAULT_HUGE_SIZE     5
#define TESTDEV_FAULT_WRONG_ID      6
#define TESTDEV_FAULT_UNEXPECTED_FD 7
#define TESTDEV_FAULT_CLOSE         8   /* shut the socket down */
#define TESTDEV_FAULT_DMA_NO_MASTER 9   /* DMA with bus mastering off too */

/* ---- BAR1 (I/O) --------------------------------------------------------- */

/*
 * Offsets 0x00-0x03 (ID), 0x08-0x0f and 0x20-0x3f are BAR0's registers
 * at the same offsets (same storage); everything else reads 0.
 */

/* ---- ring transport ----------------------------------------------------- */

#define TESTDEV_RING_DEPTH          64
#define TESTDEV_RING_DATA_SIZE      0x10000

#endif /* DEVVM_TESTDEV_H */
