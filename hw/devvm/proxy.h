/*
 * devvm-proxy: the device's state, and the functions its files call
 * across each other.  Private to hw/devvm/.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_DEVVM_PROXY_H
#define HW_DEVVM_PROXY_H

#include "chardev/char-fe.h"
#include "hw/pci/msi.h"
#include "hw/pci/pci_device.h"
#include "qemu/event_notifier.h"
#include "qemu/queue.h"
#include "qemu/stats64.h"
#include "qemu/thread.h"
#include "qemu/timer.h"
#include "system/dma.h"
#include "system/memory.h"

#include "libdevvm/client.h"
#include "libdevvm/ring-client.h"

#include "hw/devvm/devvm-proxy.h"

#define DEVVM_PROXY_MAX_SPARSE 8

/* A part of a BAR the device lets us map straight into the guest. */
typedef struct DevvmProxyMmap {
    MemoryRegion mr;
    void *host;
    size_t size;
} DevvmProxyMmap;

typedef struct DevvmProxyBar {
    DevvmProxyState *proxy;
    MemoryRegion mr;            /* forwarding I/O region, whole BAR */
    uint8_t nr;                 /* vfio-user region index */
    uint8_t type;               /* PCI_BASE_ADDRESS_* bits */
    uint64_t size;
    unsigned nr_mmaps;
    DevvmProxyMmap mmaps[DEVVM_PROXY_MAX_SPARSE];
} DevvmProxyBar;

/*
 * A vIOMMU region of the bus-master address space: its notifier turns
 * the guest's IOMMU mappings into DMA_MAP and DMA_UNMAP.
 */
typedef struct DevvmProxyIommu {
    IOMMUNotifier n;
    DevvmProxyState *proxy;
    IOMMUMemoryRegion *iommu_mr;
    hwaddr offset;              /* address space minus region offset */
    QLIST_ENTRY(DevvmProxyIommu) next;
} DevvmProxyIommu;

/* Guest memory the device may DMA to, as told with DMA_MAP. */
typedef struct DevvmProxyDmaMap {
    hwaddr iova;
    uint64_t size;
    MemoryRegion *mr;           /* referenced while mapped */
    uint64_t fd_offset;
    bool has_fd;
    bool readonly;
    DevvmProxyIommu *iommu;     /* the mapping came from it; or NULL */
    QTAILQ_ENTRY(DevvmProxyDmaMap) next;
} DevvmProxyDmaMap;

/* An MSI or MSI-X vector's eventfd. */
typedef struct DevvmProxyVector {
    EventNotifier e;
    DevvmProxyState *proxy;
    unsigned nr;
    bool msix;
    int virq;                   /* KVM: its MSI route, or -1 */
    MSIMessage msg;             /* KVM: what the route says */
    bool irqfd;                 /* KVM delivers it, not the main loop */
    bool pending;               /* the main loop injects it (irq.c) */
} DevvmProxyVector;

typedef enum DevvmProxyLink {
    DEVVM_PROXY_LINK_CONNECTED,
    DEVVM_PROXY_LINK_FAILED,
} DevvmProxyLink;

/*
 * The connection to the device: the socket, the client role and the
 * ring client (under DevvmProxyState's @lock), its state, and the
 * machinery that makes it again.
 */
typedef struct DevvmProxyConn {
    char *peer;                 /* the device's socket, for messages */
    int fd;
    struct devvm_client client;
    struct devvm_ring_client rc;
    bool ring_open;
    bool events_open;           /* we are the ring's events side */
    bool events_main_loop;      /* the main loop is taking them */
    bool event_error_reported;  /* a bad event was warned about */
    DevvmProxyLink link;        /* written under @lock */
    bool failure_reported;      /* main loop only */
    char *fail_reason;          /* under @lock */
    uint32_t generation;        /* device generation seen last */
    bool ring_stale;            /* re-attach from the main loop */
    bool need_close;            /* the connection is out of step */
    QEMUBH *state_bh;
    QEMUTimer *reconnect_timer;
    /* a reconnection in progress (docs in conn.c) */
    QemuThread reconnect_thread;
    bool reconnecting;          /* main loop only */
    QEMUBH *reconnect_bh;
    int thread_fd;              /* chr: the connection the thread takes */
    int pending_fd;             /* the thread's result, under @lock */
    struct devvm_client pending_client;
    Error *pending_err;
    /*
     * chr: the chardev connects and reconnects; the proxy does its I/O on
     * a dup() of the connected socket.  Main loop only.
     */
    bool chr_open;              /* the chardev has a connection we know */
    unsigned chr_conn;          /* connections it made (CHR_EVENT_OPENED) */
    unsigned fd_conn;           /* the one fd and thread_fd came from */
    bool chr_retake;            /* a new one came while the thread ran */
} DevvmProxyConn;

/*
 * What the device described at realize; a reconnect must match it.  And
 * which bytes of config space are forwarded to it.
 */
typedef struct DevvmProxyDesc {
    struct devvm_device_info info;
    struct devvm_region_info regions[DEVVM_PCI_NUM_REGIONS];
    struct devvm_irq_info irqs[DEVVM_PCI_NUM_IRQS];
    uint8_t config[PCI_CONFIG_SPACE_SIZE];
    /* config bytes forwarded to the device (capability bodies) */
    uint8_t forward[PCI_CONFIG_SPACE_SIZE];
    bool ext_config;            /* and all of 0x100..0xfff (PCI Express) */
} DevvmProxyDesc;

/* INTx, with vfio's automasked level model. */
typedef struct DevvmProxyIntx {
    EventNotifier e;
    bool present;
    bool asserted;              /* atomic: set in the main loop */
    bool eoi_due;               /* atomic: a BAR access ended INTx */
    /* the device's INTx line, as its events say; under @lock */
    bool level;
} DevvmProxyIntx;

/* MSI and MSI-X vectors, which KVM may deliver (KVM irqfds). */
typedef struct DevvmProxyMsi {
    DevvmProxyVector *msi;
    uint32_t msi_vectors;
    DevvmProxyVector *msix;
    uint32_t msix_vectors;
    int msi_cap, msix_cap;
    bool kvm_irqfd;             /* KVM irqfds in use (use_kvm_irqfd, KVM) */
    bool msix_notifiers;        /* the MSI-X vector notifiers are ours */
    unsigned pending;           /* vectors with @pending set */
    uint8_t msix_table_bar, msix_pba_bar;
} DevvmProxyMsi;

/* The guest memory the device may use (DMA_MAP), and the vIOMMUs. */
typedef struct DevvmProxyDma {
    MemoryListener listener;
    bool listener_on;
    QTAILQ_HEAD(, DevvmProxyDmaMap) maps;
    QLIST_HEAD(, DevvmProxyIommu) iommus;
    bool refused_reported;      /* main loop only */
} DevvmProxyDma;

/* Counters, for query-devvm-proxy. */
typedef struct DevvmProxyStats {
    Stat64 reads, writes, dma_bytes, irqs, timeouts, failures;
} DevvmProxyStats;

struct DevvmProxyState {
    PCIDevice parent_obj;

    /* Properties: socket_path or chr, not both */
    char *socket_path;
    CharFrontend chr;           /* a UNIX socket chardev */
    uint32_t timeout_ms;        /* bound on every wait for the device */
    uint32_t reconnect_ms;      /* socket=: retry period, 0: never */
    bool use_ring;              /* use the devvm ring transport if offered */
    bool use_events;            /* and take the device's events on it */
    bool use_kvm_irqfd;         /* MSI, MSI-X through KVM irqfds if usable */

    /*
     * @lock serialises the connection: the socket, the client role and
     * the ring client.  BAR accesses run without the BQL and take only
     * this lock; every wait under it is bounded by timeout_ms.
     */
    QemuMutex lock;
    DevvmProxyConn conn;

    DevvmProxyDesc desc;

    DevvmProxyBar bars[PCI_NUM_REGIONS - 1];
    MemoryRegion rom;
    bool has_rom;

    /* interrupts: eventfds the device signals, handled in the main loop */
    DevvmProxyIntx intx;
    DevvmProxyMsi msi;

    DevvmProxyDma dma;

    Error *migration_blocker;

    DevvmProxyStats stats;
};

/* The device's name in messages and trace events. */
static inline const char *devvm_proxy_id(DevvmProxyState *s)
{
    return DEVICE(s)->id ?: TYPE_DEVVM_PROXY;
}

/* bar.c */

/* The BARs and the ROM from the device's regions.  Realize, BQL held. */
bool devvm_proxy_init_bars(DevvmProxyState *s, Error **errp);
/* Unmap their sparse mmap areas.  Unrealize, BQL held. */
void devvm_proxy_free_bars(DevvmProxyState *s);

/* config.c */

/* PCIDeviceClass::config_read: emulated or forwarded.  BQL held. */
uint32_t devvm_proxy_config_read(PCIDevice *pdev, uint32_t addr, int len);
/* PCIDeviceClass::config_write: emulated or forwarded.  BQL held. */
void devvm_proxy_config_write(PCIDevice *pdev, uint32_t addr, uint32_t val,
                              int len);
/* Capabilities and extended config space.  Realize, BQL held. */
bool devvm_proxy_add_caps(DevvmProxyState *s, Error **errp);
/* The header from the device's.  Realize, BQL held. */
void devvm_proxy_init_config(DevvmProxyState *s);

/* conn.c */

/* Fail the device: all-ones from now on.  s->lock held, any thread. */
void devvm_proxy_fail_locked(DevvmProxyState *s, const char *what, int err);
/* The device is down, the connection sound.  s->lock held, any thread. */
void devvm_proxy_device_down_locked(DevvmProxyState *s, const char *what,
                                    int err);
/* A ring channel if both sides have it.  Main loop, BQL held. */
bool devvm_proxy_attach_ring(DevvmProxyState *s, Error **errp);
/* The bottom halves and the reconnect timer.  Realize, BQL held. */
void devvm_proxy_init_conn(DevvmProxyState *s);
/* Connect, negotiate, fill s->desc.  Realize, BQL held. */
bool devvm_proxy_connect(DevvmProxyState *s, Error **errp);
/* Serve the socket and the chardev's events.  Realize, BQL held. */
void devvm_proxy_start_conn(DevvmProxyState *s);
/* The connection and its machinery go.  Unrealize, BQL held. */
void devvm_proxy_free_conn(DevvmProxyState *s);

/* dma.c */

/* The device's DMA, into guest RAM only.  s->lock held, any thread. */
int devvm_proxy_dma_rw(DevvmProxyState *s, uint64_t addr, void *buf,
                       uint64_t len, DMADirection dir);
/* Every DMA map to a new connection.  s->lock held, main loop. */
int devvm_proxy_replay_dma_locked(DevvmProxyState *s);
/* Start telling the device its DMA maps.  Realize, BQL held. */
void devvm_proxy_init_dma(DevvmProxyState *s);
/* Stop, and forget the maps.  Unrealize, BQL held. */
void devvm_proxy_free_dma(DevvmProxyState *s);

/* events.c */

/* The ring attached grants EVENTS: take them.  s->lock held. */
void devvm_proxy_events_open_locked(DevvmProxyState *s);

/* irq.c */

/* A BAR access may end INTx: unmask after it.  s->lock held, no BQL. */
void devvm_proxy_intx_eoi(DevvmProxyState *s);
/* End INTx if a BAR access said so.  Main loop, BQL held. */
void devvm_proxy_intx_eoi_run(DevvmProxyState *s);
/* MSI and MSI-X vectors to KVM or back, after a config write.  BQL held. */
void devvm_proxy_kvm_config_update(DevvmProxyState *s);
/* Every vector back to the main loop, before a reset.  BQL held. */
void devvm_proxy_kvm_detach_all(DevvmProxyState *s);
/* An interrupt event for vector @v.  s->lock held. */
void devvm_proxy_signal_vector_locked(DevvmProxyState *s, DevvmProxyVector *v);
/* Inject what that left pending.  Main loop, BQL held, not s->lock. */
void devvm_proxy_inject_pending(DevvmProxyState *s);
/* Our eventfds to the device (SET_IRQS).  s->lock held, main loop. */
int devvm_proxy_set_irqs_locked(DevvmProxyState *s);
/* Eventfds for INTx, MSI and MSI-X.  Realize, BQL held. */
bool devvm_proxy_init_irqs(DevvmProxyState *s, Error **errp);
/* Their eventfds, routes and notifiers go.  Unrealize, BQL held. */
void devvm_proxy_free_irqs(DevvmProxyState *s);

#endif /* HW_DEVVM_PROXY_H */
