/*
 * devvm-dma-window: a device VM's window onto its clients' DMA memory
 *
 * The PCI function a device VM's QEMU gets so that the device model in it
 * reaches client memory directly (zero-copy DMA) instead of through the
 * gateway's DMA messages.  docs/devvm/dma-window.rst specifies it; the
 * constants are in libdevvm/window.h.
 *
 *  - BAR2, the window: a large 64-bit prefetchable BAR, empty at first.
 *    The gateway (over the chardev, a UNIX socket it listens on) maps a
 *    client's DMA_MAPped memory at an offset of it, with the client's own
 *    fd, and takes it out again before it answers the client's DMA_UNMAP.
 *    Nothing else is ever reachable through it.
 *  - BAR0, the table: where each client range is in the window, read by
 *    the device VM's runtime (ROM-device memory: reads are plain RAM).
 *    Its one writable word is ACK: a range is taken out only once the
 *    runtime has acknowledged the EPOCH that announced it, so a copy it
 *    started before never runs into a hole (or after ack-timeout-ms, so
 *    a hung guest cannot keep client memory).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/error-report.h"
#include "qemu/log.h"
#include "qemu/module.h"
#include "qemu/queue.h"
#include "qemu/rcu.h"
#include "qemu/timer.h"
#include "qemu/units.h"
#include "chardev/char-fe.h"
#include "hw/pci/pci_device.h"
#include "hw/qdev-properties.h"
#include "hw/qdev-properties-system.h"
#include "migration/blocker.h"
#include "libdevvm/window.h"
#include "trace.h"

#define TYPE_DEVVM_DMA_WINDOW "devvm-dma-window"
OBJECT_DECLARE_SIMPLE_TYPE(DevvmDmaWindowState, DEVVM_DMA_WINDOW)

#define DEVVM_WIN_DEFAULT_SIZE          (64 * GiB)
#define DEVVM_WIN_DEFAULT_ACK_MS        1000

typedef struct DevvmWinMap {
    struct rcu_head rcu;
    MemoryRegion mr;
    uint64_t offset, size;
    unsigned slot;
    bool removing;              /* taken out of the table, waiting for ACK */
    uint32_t epoch;             /* the EPOCH the ACK must reach */
    uint32_t id;                /* the UNMAP to answer */
    QTAILQ_ENTRY(DevvmWinMap) next;
} DevvmWinMap;

struct DevvmDmaWindowState {
    PCIDevice parent_obj;

    CharFrontend chr;
    uint64_t size;
    uint32_t ack_timeout_ms;

    MemoryRegion table;         /* BAR0 */
    MemoryRegion window;        /* BAR2 */
    uint8_t *tbl;               /* the table's RAM */
    uint32_t epoch, ack;
    QTAILQ_HEAD(, DevvmWinMap) maps;
    QEMUTimer *ack_timer;
    uint8_t msg[DEVVM_WIN_MSG_SIZE];
    unsigned msg_len;
    Error *migration_blocker;
};

/* ---- the table (BAR0) --------------------------------------------------- */

static uint8_t *devvm_win_entry(DevvmDmaWindowState *s, unsigned slot)
{
    return s->tbl + DEVVM_WIN_TABLE + slot * DEVVM_WIN_ENTRY_SIZE;
}

/* Write entry @slot (cleared if @m is NULL) under the sequence count. */
static void devvm_win_publish(DevvmDmaWindowState *s, unsigned slot,
                              const DevvmWinMap *m, uint64_t iova,
                              uint32_t instance, uint32_t flags)
{
    uint8_t *e = devvm_win_entry(s, slot);
    uint32_t seq = ldl_le_p(s->tbl + DEVVM_WIN_REG_SEQ);

    stl_le_p(s->tbl + DEVVM_WIN_REG_SEQ, seq + 1);
    smp_wmb();
    if (m) {
        stq_le_p(e + DEVVM_WIN_E_IOVA, iova);
        stq_le_p(e + DEVVM_WIN_E_SIZE, m->size);
        stq_le_p(e + DEVVM_WIN_E_OFFSET, m->offset);
        stl_le_p(e + DEVVM_WIN_E_INSTANCE, instance);
        stl_le_p(e + DEVVM_WIN_E_FLAGS, flags | DEVVM_WIN_E_F_VALID);
    } else {
        memset(e, 0, DEVVM_WIN_ENTRY_SIZE);
        stl_le_p(s->tbl + DEVVM_WIN_REG_EPOCH, ++s->epoch);
    }
    smp_wmb();
    stl_le_p(s->tbl + DEVVM_WIN_REG_SEQ, seq + 2);
    /* what changed: the header (SEQ, EPOCH) and the entry */
    memory_region_flush_rom_device(&s->table, 0, DEVVM_WIN_TABLE);
    memory_region_flush_rom_device(&s->table, e - s->tbl,
                                   DEVVM_WIN_ENTRY_SIZE);
}

static void devvm_win_reply(DevvmDmaWindowState *s, uint32_t id, int err)
{
    uint8_t r[DEVVM_WIN_MSG_SIZE] = { 0 };

    stl_le_p(r + DEVVM_WIN_M_OP, DEVVM_WIN_OP_REPLY);
    stl_le_p(r + DEVVM_WIN_M_ID, id);
    stl_le_p(r + DEVVM_WIN_M_INSTANCE, err);
    /* a gateway gone: its CLOSED event cleans up */
    qemu_chr_fe_write_all(&s->chr, r, sizeof(r));
}

/* Take @m out of the window; no CPU can reach it afterwards. */
static void devvm_win_drop(DevvmDmaWindowState *s, DevvmWinMap *m)
{
    QTAILQ_REMOVE(&s->maps, m, next);
    memory_region_del_subregion(&s->window, &m->mr);
    object_unparent(OBJECT(&m->mr));
    /* after the old flat views (queued first) let go of the region */
    g_free_rcu(m, rcu);
}

/* Finish the removals the ACK (or the timeout, @all) allows. */
static void devvm_win_finish(DevvmDmaWindowState *s, bool all)
{
    DevvmWinMap *m, *next;
    bool waiting = false;

    QTAILQ_FOREACH_SAFE(m, &s->maps, next, next) {
        if (!m->removing) {
            continue;
        }
        if (!all && (int32_t)(s->ack - m->epoch) < 0) {
            waiting = true;
            continue;
        }
        trace_devvm_win_unmapped(m->offset, m->size, all);
        devvm_win_reply(s, m->id, 0);
        devvm_win_drop(s, m);
    }
    if (!waiting) {
        timer_del(s->ack_timer);
    }
}

static void devvm_win_ack_timeout(void *opaque)
{
    DevvmDmaWindowState *s = opaque;

    warn_report("devvm-dma-window: the device VM did not acknowledge an "
                "unmap within %u ms; taking the memory out anyway",
                s->ack_timeout_ms);
    devvm_win_finish(s, true);
}

static uint64_t devvm_win_table_read(void *opaque, hwaddr addr, unsigned size)
{
    /* only in MMIO mode, which this device never enters */
    return 0;
}

static void devvm_win_table_write(void *opaque, hwaddr addr, uint64_t val,
                                  unsigned size)
{
    DevvmDmaWindowState *s = opaque;

    if (addr != DEVVM_WIN_REG_ACK || size != 4) {
        qemu_log_mask(LOG_GUEST_ERROR, "devvm-dma-window: write of %u bytes "
                      "at table offset 0x%" HWADDR_PRIx " ignored: only ACK "
                      "is writable\n", size, addr);
        return;
    }
    s->ack = val;
    stl_le_p(s->tbl + DEVVM_WIN_REG_ACK, val);
    memory_region_flush_rom_device(&s->table, DEVVM_WIN_REG_ACK, 4);
    trace_devvm_win_ack(s->ack, s->epoch);
    devvm_win_finish(s, false);
}

static const MemoryRegionOps devvm_win_table_ops = {
    .read = devvm_win_table_read,
    .write = devvm_win_table_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    .valid = {
        .min_access_size = 1,
        .max_access_size = 8,
    },
};

/* ---- the gateway's requests --------------------------------------------- */

static DevvmWinMap *devvm_win_find(DevvmDmaWindowState *s, uint64_t offset,
                                   uint64_t size)
{
    DevvmWinMap *m;

    QTAILQ_FOREACH(m, &s->maps, next) {
        if (offset < m->offset + m->size && m->offset < offset + size) {
            return m;
        }
    }
    return NULL;
}

static int devvm_win_free_slot(DevvmDmaWindowState *s)
{
    DECLARE_BITMAP(used, DEVVM_WIN_SLOTS) = { 0 };
    DevvmWinMap *m;
    unsigned slot;

    QTAILQ_FOREACH(m, &s->maps, next) {
        set_bit(m->slot, used);
    }
    slot = find_first_zero_bit(used, DEVVM_WIN_SLOTS);
    return slot < DEVVM_WIN_SLOTS ? slot : -1;
}

/* MAP: @fd (taken) at OFFSET; 0 or a positive errno. */
static int devvm_win_map(DevvmDmaWindowState *s, const uint8_t *msg, int fd)
{
    uint64_t offset = ldq_le_p(msg + DEVVM_WIN_M_OFFSET);
    uint64_t size = ldq_le_p(msg + DEVVM_WIN_M_SIZE);
    uint64_t iova = ldq_le_p(msg + DEVVM_WIN_M_IOVA);
    uint64_t fd_offset = ldq_le_p(msg + DEVVM_WIN_M_FD_OFFSET);
    uint32_t flags = ldl_le_p(msg + DEVVM_WIN_M_FLAGS) & DEVVM_WIN_E_F_WRITE;
    uint32_t instance = ldl_le_p(msg + DEVVM_WIN_M_INSTANCE);
    g_autofree char *name = NULL;
    Error *err = NULL;
    DevvmWinMap *m;
    int slot;

    if (fd < 0) {
        return EBADF;
    }
    if (!size || (offset | size | fd_offset) % DEVVM_WIN_ALIGN ||
        offset > s->size || size > s->size - offset ||
        iova + (size - 1) < iova) {
        close(fd);
        return EINVAL;
    }
    if (devvm_win_find(s, offset, size)) {
        close(fd);
        return EEXIST;
    }
    slot = devvm_win_free_slot(s);
    if (slot < 0) {
        close(fd);
        return ENOSPC;
    }
    m = g_new0(DevvmWinMap, 1);
    m->offset = offset;
    m->size = size;
    m->slot = slot;
    name = g_strdup_printf("devvm-dma-window@0x%" PRIx64, offset);
    /* the client's memory, shared; read-only when it allows no writes */
    if (!memory_region_init_ram_from_fd(&m->mr, NULL, name, size,
                                        RAM_SHARED |
                                        (flags ? 0 : RAM_READONLY |
                                                     RAM_READONLY_FD),
                                        fd, fd_offset, &err)) {
        trace_devvm_win_map_failed(offset, size, error_get_pretty(err));
        error_free(err);
        g_free(m);      /* memory_region_init_ram_from_fd() unparented it */
        close(fd);
        return EIO;
    }
    /* the region owns @fd now */
    memory_region_add_subregion(&s->window, offset, &m->mr);
    QTAILQ_INSERT_TAIL(&s->maps, m, next);
    devvm_win_publish(s, slot, m, iova, instance, flags);
    trace_devvm_win_mapped(instance, iova, size, offset, flags);
    return 0;
}

/* UNMAP: answered once the runtime acknowledged it (or timed out). */
static int devvm_win_unmap(DevvmDmaWindowState *s, const uint8_t *msg)
{
    uint64_t offset = ldq_le_p(msg + DEVVM_WIN_M_OFFSET);
    uint64_t size = ldq_le_p(msg + DEVVM_WIN_M_SIZE);
    DevvmWinMap *m = devvm_win_find(s, offset, size ? size : 1);

    if (!m || m->offset != offset || m->size != size || m->removing) {
        return ENOENT;
    }
    devvm_win_publish(s, m->slot, NULL, 0, 0, 0);
    m->removing = true;
    m->epoch = s->epoch;
    m->id = ldl_le_p(msg + DEVVM_WIN_M_ID);
    if (!timer_pending(s->ack_timer)) {
        timer_mod(s->ack_timer, qemu_clock_get_ms(QEMU_CLOCK_REALTIME) +
                                s->ack_timeout_ms);
    }
    trace_devvm_win_unmap(offset, size, s->epoch);
    return 0;
}

static int devvm_win_can_receive(void *opaque)
{
    DevvmDmaWindowState *s = opaque;

    return sizeof(s->msg) - s->msg_len;
}

static void devvm_win_receive(void *opaque, const uint8_t *buf, int size)
{
    DevvmDmaWindowState *s = opaque;
    uint32_t op, id;
    int fd, err;

    assert(size >= 0 && s->msg_len + size <= sizeof(s->msg));
    memcpy(s->msg + s->msg_len, buf, size);
    s->msg_len += size;
    if (s->msg_len < sizeof(s->msg)) {
        return;
    }
    s->msg_len = 0;
    op = ldl_le_p(s->msg + DEVVM_WIN_M_OP);
    id = ldl_le_p(s->msg + DEVVM_WIN_M_ID);
    fd = qemu_chr_fe_get_msgfd(&s->chr);
    switch (op) {
    case DEVVM_WIN_OP_MAP:
        err = devvm_win_map(s, s->msg, fd);
        fd = -1;
        break;
    case DEVVM_WIN_OP_UNMAP:
        err = devvm_win_unmap(s, s->msg);
        if (!err) {
            /* answered when it is out */
            return;
        }
        break;
    default:
        err = EOPNOTSUPP;
        break;
    }
    if (fd >= 0) {
        close(fd);
    }
    if (err) {
        trace_devvm_win_refused(op, id, strerror(err));
    }
    devvm_win_reply(s, id, err);
}

/* The gateway is gone: nothing of its clients stays reachable. */
static void devvm_win_drop_all(DevvmDmaWindowState *s)
{
    DevvmWinMap *m, *next;

    QTAILQ_FOREACH_SAFE(m, &s->maps, next, next) {
        if (!m->removing) {
            devvm_win_publish(s, m->slot, NULL, 0, 0, 0);
        }
        devvm_win_drop(s, m);
    }
    timer_del(s->ack_timer);
}

static void devvm_win_event(void *opaque, QEMUChrEvent event)
{
    DevvmDmaWindowState *s = opaque;

    if (event == CHR_EVENT_CLOSED) {
        trace_devvm_win_closed();
        s->msg_len = 0;
        devvm_win_drop_all(s);
    }
}

/* ---- realize, exit ------------------------------------------------------ */

static void devvm_win_realize(PCIDevice *pdev, Error **errp)
{
    DevvmDmaWindowState *s = DEVVM_DMA_WINDOW(pdev);
    uint8_t hello[DEVVM_WIN_MSG_SIZE] = { 0 };

    if (!qemu_chr_fe_backend_connected(&s->chr)) {
        error_setg(errp, "devvm-dma-window: the chardev property is "
                   "required (a socket the gateway listens on)");
        return;
    }
    if (s->size < 2 * MiB || !is_power_of_2(s->size)) {
        error_setg(errp, "devvm-dma-window: size 0x%" PRIx64 " must be a "
                   "power of two of at least 2 MiB", s->size);
        return;
    }
    if (!s->ack_timeout_ms) {
        error_setg(errp, "devvm-dma-window: ack-timeout-ms must not be 0");
        return;
    }
    error_setg(&s->migration_blocker, "devvm-dma-window maps another "
               "process's memory, which does not migrate");
    if (migrate_add_blocker(&s->migration_blocker, errp) < 0) {
        return;
    }
    if (!memory_region_init_rom_device(&s->table, OBJECT(s),
                                       &devvm_win_table_ops, s,
                                       "devvm-dma-window-table",
                                       DEVVM_WIN_TABLE_SIZE, errp)) {
        migrate_del_blocker(&s->migration_blocker);
        return;
    }
    s->tbl = memory_region_get_ram_ptr(&s->table);
    memset(s->tbl, 0, DEVVM_WIN_TABLE_SIZE);
    stl_le_p(s->tbl + DEVVM_WIN_REG_MAGIC, DEVVM_WIN_MAGIC);
    stl_le_p(s->tbl + DEVVM_WIN_REG_VERSION, DEVVM_WIN_VERSION);
    stq_le_p(s->tbl + DEVVM_WIN_REG_SIZE, s->size);
    stl_le_p(s->tbl + DEVVM_WIN_REG_SLOTS, DEVVM_WIN_SLOTS);
    memory_region_init(&s->window, OBJECT(s), "devvm-dma-window", s->size);
    pci_register_bar(pdev, DEVVM_WIN_TABLE_BAR, PCI_BASE_ADDRESS_SPACE_MEMORY,
                     &s->table);
    pci_register_bar(pdev, DEVVM_WIN_BAR, PCI_BASE_ADDRESS_SPACE_MEMORY |
                     PCI_BASE_ADDRESS_MEM_TYPE_64 |
                     PCI_BASE_ADDRESS_MEM_PREFETCH, &s->window);
    QTAILQ_INIT(&s->maps);
    s->ack_timer = timer_new_ms(QEMU_CLOCK_REALTIME, devvm_win_ack_timeout,
                                s);

    stl_le_p(hello + DEVVM_WIN_M_OP, DEVVM_WIN_OP_HELLO);
    stq_le_p(hello + DEVVM_WIN_M_OFFSET, s->size);
    stq_le_p(hello + DEVVM_WIN_M_SIZE, DEVVM_WIN_SLOTS);
    stq_le_p(hello + DEVVM_WIN_M_FD_OFFSET, DEVVM_WIN_VERSION);
    if (qemu_chr_fe_write_all(&s->chr, hello, sizeof(hello)) !=
        sizeof(hello)) {
        error_setg(errp, "devvm-dma-window: cannot greet the gateway on "
                   "the chardev");
        timer_free(s->ack_timer);
        migrate_del_blocker(&s->migration_blocker);
        return;
    }
    qemu_chr_fe_set_handlers(&s->chr, devvm_win_can_receive,
                             devvm_win_receive, devvm_win_event, NULL, s,
                             NULL, true);
    trace_devvm_win_realized(s->size);
}

static void devvm_win_exit(PCIDevice *pdev)
{
    DevvmDmaWindowState *s = DEVVM_DMA_WINDOW(pdev);

    qemu_chr_fe_set_handlers(&s->chr, NULL, NULL, NULL, NULL, NULL, NULL,
                             true);
    devvm_win_drop_all(s);
    timer_free(s->ack_timer);
    migrate_del_blocker(&s->migration_blocker);
}

static const Property devvm_win_properties[] = {
    DEFINE_PROP_CHR("chardev", DevvmDmaWindowState, chr),
    DEFINE_PROP_SIZE("size", DevvmDmaWindowState, size,
                     DEVVM_WIN_DEFAULT_SIZE),
    DEFINE_PROP_UINT32("ack-timeout-ms", DevvmDmaWindowState, ack_timeout_ms,
                       DEVVM_WIN_DEFAULT_ACK_MS),
};

static void devvm_win_class_init(ObjectClass *klass, const void *data)
{
    DeviceClass *dc = DEVICE_CLASS(klass);
    PCIDeviceClass *k = PCI_DEVICE_CLASS(klass);

    k->realize = devvm_win_realize;
    k->exit = devvm_win_exit;
    k->vendor_id = DEVVM_WIN_VENDOR_ID;
    k->device_id = DEVVM_WIN_DEVICE_ID;
    k->class_id = PCI_CLASS_MEMORY_RAM;
    k->revision = 1;
    device_class_set_props(dc, devvm_win_properties);
    dc->desc = "devvm device VM window onto client DMA memory";
    set_bit(DEVICE_CATEGORY_MISC, dc->categories);
    /* it serves its gateway's clients: not something to plug by hand */
    dc->hotpluggable = false;
}

static const TypeInfo devvm_win_types[] = {
    {
        .name = TYPE_DEVVM_DMA_WINDOW,
        .parent = TYPE_PCI_DEVICE,
        .instance_size = sizeof(DevvmDmaWindowState),
        .class_init = devvm_win_class_init,
        .interfaces = (const InterfaceInfo[]) {
            { INTERFACE_CONVENTIONAL_PCI_DEVICE },
            { },
        },
    },
};

DEFINE_TYPES(devvm_win_types)
