/*
 * libdevvm SDK: write a PCI device once, run it as a host process
 * (process mode) or inside a device VM.
 *
 * A device is a struct devvm_device: what the PCI function looks like
 * (IDs, BARs, interrupts, extra capabilities, ROM) plus callbacks.  The
 * runtime (process mode: devvm_main(); device VM: the freestanding
 * runtime image) builds the config space, checks every access against
 * the description, and calls the device with naturally aligned accesses
 * of 1, 2, 4 or 8 bytes.  Each client gets its own instance: a struct
 * devvm_dev with priv_size bytes of zeroed private state.
 *
 * Callbacks of one instance never run concurrently.  Instances share
 * only the device type's read-only data (type_init, devvm_type_data());
 * a device that wants mutable state shared between instances keeps it
 * itself (and locks it in process mode).
 *
 * This header is freestanding: <stdint.h> and <stddef.h> only, so the
 * same device source compiles into the device VM image.  Errors are
 * negative Linux errno values, spelled DEVVM_Exxx below.  docs/devvm/sdk.rst
 * walks through writing a device.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef LIBDEVVM_SDK_H
#define LIBDEVVM_SDK_H

#include <stddef.h>
#include <stdint.h>

/* errno values: DEVVM_EINVAL, DEVVM_EFAULT, ... (Linux's numbers) */
#include "libdevvm/errno.h"
/* DEVVM_NEEDS(): what the device needs from the host (the coordinator) */
#include "libdevvm/needs.h"

#define DEVVM_SDK_VERSION   1

/* ---- description -------------------------------------------------------- */

enum devvm_bar_type {
    DEVVM_BAR_UNUSED = 0,
    DEVVM_BAR_MEM32,        /* 32-bit memory, 16 bytes to 2 GiB */
    DEVVM_BAR_MEM64,        /* 64-bit memory, takes this slot and the next */
    DEVVM_BAR_IO,           /* I/O ports, 4 to 256 bytes */
};

#define DEVVM_BAR_F_PREFETCH    0x1u    /* memory BARs only */

/*
 * A BAR.  @size is a power of two.  [@mem_offset, @mem_offset + @mem_size)
 * (page-aligned, may be empty) is plain memory that the runtime provides
 * and the device reaches with devvm_bar_mem(): accesses there never reach
 * the read/write callbacks.  In process mode, the client maps it straight
 * into its guest (a vfio-user sparse mmap area).
 */
struct devvm_bar {
    uint8_t type;           /* enum devvm_bar_type */
    uint8_t flags;          /* DEVVM_BAR_F_* */
    uint64_t size;
    uint64_t mem_offset;
    uint64_t mem_size;
};

/*
 * An extra PCI capability, after the ones the SDK builds (MSI, MSI-X).
 * @len bytes from the capability ID on (at least 2); the runtime fills
 * in the ID and the next pointer and copies @body[2..len) as the initial
 * contents.  Config accesses inside it go to config_read/config_write
 * when the device has them, otherwise they read the initial contents
 * and writes are ignored.
 */
struct devvm_capability {
    uint8_t id;
    uint8_t len;
    const uint8_t *body;
};

/*
 * An extended capability of a PCI Express device (desc->pcie), in the
 * extended config space from 0x100, in order, each at the next dword
 * boundary.  @len bytes from the header on (at least 4); the runtime
 * fills in the header (@id, @version, the next offset) and copies
 * @body[4..len) as the initial contents.  The body is served like a
 * struct devvm_capability's.
 */
struct devvm_ext_capability {
    uint16_t id;
    uint8_t version;        /* 0 to 15 */
    uint16_t len;
    const uint8_t *body;
};

#define DEVVM_NUM_BARS      6
#define DEVVM_ROM_BAR       6   /* bar index of the expansion ROM */
#define DEVVM_MAX_CAPS      8
#define DEVVM_MAX_EXT_CAPS  8
#define DEVVM_MAX_MSIX      2048

struct devvm_dev;

struct devvm_device {
    const char *name;           /* short, for logs: "testdev" */

    /* identity */
    uint16_t vendor_id;
    uint16_t device_id;
    uint16_t subsystem_vendor_id;
    uint16_t subsystem_id;
    uint8_t revision;
    uint32_t class_code;        /* class << 16 | subclass << 8 | prog-if */

    /* resources */
    struct devvm_bar bars[DEVVM_NUM_BARS];
    uint32_t rom_size;          /* 0, or a power of two from 2 KiB */
    uint8_t intx_pin;           /* 0 none, 1..4 INTA..INTD */
    uint8_t msi_vectors;        /* 0, or 1, 2, 4, 8, 16, 32 */
    uint16_t msix_vectors;      /* 0 to DEVVM_MAX_MSIX */
    uint8_t msix_bar;           /* table at msix_table_offset, PBA at */
    uint32_t msix_table_offset; /* msix_pba_offset: the runtime keeps */
    uint32_t msix_pba_offset;   /* that range away from read/write */
    const struct devvm_capability *caps;
    uint8_t nr_caps;            /* at most DEVVM_MAX_CAPS */
    /*
     * PCI Express: the runtime adds a PCI Express capability (version 2,
     * an endpoint, x1 at 2.5 GT/s) after @caps and serves the 4 KiB
     * config space, where @ext_caps go.  The client shows it as a PCIe
     * function when it sits on a PCIe bus.
     */
    uint8_t pcie;
    const struct devvm_ext_capability *ext_caps;
    uint8_t nr_ext_caps;        /* at most DEVVM_MAX_EXT_CAPS */

    size_t priv_size;           /* zeroed state per instance */

    /*
     * Optional: one "key=value" option (process mode: -o key=value;
     * device VM: the kernel command line).  It may change this
     * description before any instance exists.  0, or -DEVVM_EINVAL.
     */
    int (*param)(struct devvm_device *desc, const char *key,
                 const char *value);

    /*
     * Optional: data of the device type, shared by every instance (a
     * constant table, say).  The runtime calls type_init once, after
     * the parameters and before the first instance (process mode: before
     * it listens; device VM: before READY), with @type_data_size zeroed
     * bytes (NULL when it is 0) to fill in.  From then on they are read
     * only (in process mode instances are threads, and a write faults)
     * and devvm_type_data() returns them.  0, or a negative errno that
     * stops the device: process mode exits with status 1, a device VM
     * reports FAILED with the reason.
     */
    size_t type_data_size;
    int (*type_init)(const struct devvm_device *desc, void *type_data);

    /* Optional: a new instance (priv zeroed), before its first access. */
    int (*init)(struct devvm_dev *dev);
    /* Optional: the instance's client went away. */
    void (*fini)(struct devvm_dev *dev);

    /*
     * BAR accesses, @bar 0..5 or DEVVM_ROM_BAR (read only).  @size is
     * 1, 2, 4 or 8 and @offset is a multiple of it, inside the BAR and
     * outside its memory window and MSI-X table/PBA.  Values are in the
     * low @size bytes.
     */
    uint64_t (*read)(struct devvm_dev *dev, unsigned bar, uint64_t offset,
                     unsigned size);
    void (*write)(struct devvm_dev *dev, unsigned bar, uint64_t offset,
                  unsigned size, uint64_t value);

    /* Optional: config space of the extra capabilities and 0x40..0xff
     * outside any SDK-built capability; with pcie, also the bodies of
     * ext_caps and the rest of 0x100..0xfff.  1, 2 or 4 bytes, aligned. */
    uint32_t (*config_read)(struct devvm_dev *dev, uint32_t offset,
                            unsigned size);
    void (*config_write)(struct devvm_dev *dev, uint32_t offset,
                         unsigned size, uint32_t value);

    /* Optional: function-level reset from the client. */
    void (*reset)(struct devvm_dev *dev);

    /*
     * Optional: background work, called after every batch of accesses
     * and at least every @poll_interval_ns (0: only after accesses).
     */
    void (*poll)(struct devvm_dev *dev);
    uint64_t poll_interval_ns;
};

/* ---- helpers for callbacks ---------------------------------------------- */

/* The instance's private state (desc->priv_size bytes). */
void *devvm_priv(struct devvm_dev *dev);
/* The description the instance was made from. */
const struct devvm_device *devvm_desc(struct devvm_dev *dev);
/*
 * The device type's data (desc->type_data_size bytes that type_init
 * filled in), the same for every instance, read only; NULL without it.
 */
const void *devvm_type_data(struct devvm_dev *dev);

/* The memory window of @bar (NULL when it has none). */
void *devvm_bar_mem(struct devvm_dev *dev, unsigned bar);

/* Bus master enable in the client's command register. */
int devvm_bus_master(struct devvm_dev *dev);

/*
 * DMA to and from client memory at client bus address @addr, of any
 * length.  Only ranges the client mapped for DMA are reachable, and none
 * while bus mastering is off: anything else is -DEVVM_EFAULT, and
 * nothing outside the maps is touched.  -DEVVM_EIO when the transfer
 * itself failed.  Blocks until done.  Where the runtime maps client
 * memory (process mode, RAM shared by fd; a device VM's DMA window) the
 * SDK copies directly; otherwise the runtime moves the range in pieces
 * (a device VM: 64 KiB each).  A failure ends the call at its piece:
 * the pieces before it are done, none after it is tried.
 */
int devvm_dma_read(struct devvm_dev *dev, uint64_t addr, void *buf,
                   size_t len);
int devvm_dma_write(struct devvm_dev *dev, uint64_t addr, const void *buf,
                    size_t len);
/*
 * A direct pointer to [addr, addr + len) of client memory, when the
 * runtime can map it (process mode with shared client RAM, a device VM
 * with a DMA window holding the range); NULL otherwise, and the device
 * falls back to devvm_dma_read/write.  Valid until the callback returns.
 */
void *devvm_dma_map(struct devvm_dev *dev, uint64_t addr, size_t len,
                    int write);

/*
 * Interrupts.  devvm_intx_set() sets the INTx line's level (the device
 * needs an intx_pin); devvm_msi_notify() and devvm_msix_notify() signal
 * an MSI or MSI-X vector (an edge).  A vector the device did not
 * declare is logged and ignored; whether the client enabled or masked
 * it is the client's business.
 */
void devvm_intx_set(struct devvm_dev *dev, int level);
void devvm_msi_notify(struct devvm_dev *dev, unsigned vector);
void devvm_msix_notify(struct devvm_dev *dev, unsigned vector);
/*
 * Interrupt signals the runtime delivered for this instance so far
 * (process mode: eventfd signals, including INTx signals repeated after
 * an unmask; device VM: IRQ events posted).  For tests.
 */
uint64_t devvm_irq_signals(struct devvm_dev *dev);

/* Log a line (no newline needed); %d %i %u %x %X %c %s %p with the l,
 * ll and z modifiers, width and zero padding. */
__attribute__((format(printf, 2, 3)))
void devvm_log(struct devvm_dev *dev, const char *fmt, ...);

/*
 * devvm_now_ns(): a monotonic clock, in ns.  devvm_sleep_ns(): wait @ns
 * while the runtime keeps its heartbeat (a device that sleeps is slow,
 * not dead); the client waits with it.
 */
uint64_t devvm_now_ns(void);
void devvm_sleep_ns(uint64_t ns);

/*
 * Fault injection, for testing the stack around a device.  What each
 * fault does depends on the runtime; docs/devvm/sdk.rst has the table.
 */
enum devvm_fault {
    DEVVM_FAULT_NONE = 0,       /* disarm a reply fault that did not fire */
    DEVVM_FAULT_HANG = 1,       /* stop serving, keep the connection */
    DEVVM_FAULT_CRASH,          /* process: abort(); VM: an exception */
    DEVVM_FAULT_GARBAGE,        /* the next reply: garbage bytes first */
    DEVVM_FAULT_HUGE_SIZE,      /*  ... a header with size 0x7fffffff */
    DEVVM_FAULT_WRONG_ID,       /*  ... a reply with a wrong id/tag */
    DEVVM_FAULT_UNEXPECTED_FD,  /*  ... a reply carrying an fd */
    DEVVM_FAULT_CLOSE,          /* drop this client's connection */
    DEVVM_FAULT_DMA_NO_MASTER,  /* DMA even with bus mastering off, as a
                                 * broken device would, until NONE */
};
/* Inject @fault into @dev's runtime (NONE disarms what is armed). */
void devvm_fault(struct devvm_dev *dev, enum devvm_fault fault);

/* ---- running a device --------------------------------------------------- */

/*
 * Process mode (hosted library only): parse the command line (--socket,
 * --fd, -o key=value, --no-ring, --once, --verbose; --help lists them),
 * then serve clients until SIGTERM/SIGINT.  Returns the exit status.
 */
int devvm_main(struct devvm_device *desc, int argc, char **argv);

/*
 * The device VM runtime calls this one function, which the device
 * source provides with DEVVM_DEVICE(desc): the same source then builds
 * both ways.  In process mode DEVVM_DEVICE() also defines main().
 */
#ifdef DEVVM_RUNTIME_VM
#define DEVVM_DEVICE(desc) \
    struct devvm_device *devvm_vm_device(void); \
    struct devvm_device *devvm_vm_device(void) { return &(desc); }
#else
#define DEVVM_DEVICE(desc) \
    int main(int argc, char **argv); \
    int main(int argc, char **argv) { return devvm_main(&(desc), argc, argv); }
#endif

#endif /* LIBDEVVM_SDK_H */
