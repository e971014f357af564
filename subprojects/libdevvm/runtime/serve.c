/*
 * devvm runtime: the device on the shared memory.
 *
 * rt_serve_init() formats the ivshmem BAR, applies the parameters, runs
 * the device's type_init, publishes the description and READY;
 * rt_serve() is the poll loop.  Instance i owns control channel 2i and
 * data channel 2i + 1 (docs/devvm/device-vm.rst).  The SDK core (sdk.c)
 * runs the device; this file is its transport: the rings, DMA through
 * the control channel's data area, interrupts and logs as EVT slots,
 * faults.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "rt.h"
#include "sdk-impl.h"
#include "libdevvm/desc.h"
#include "libdevvm/le.h"
#include "libdevvm/ring.h"
#include "libdevvm/ring-device.h"
#include "libdevvm/window.h"

#define RT_DEPTH            64
#define RT_DATA_SIZE        0x10000
#define RT_MAX_INSTANCES    (DEVVM_MAX_CHANNELS / 2)
#define RT_PAGE             4096u

/* how long the loop polls after the last request before it sleeps */
#define RT_SPIN_NS          50000ull
/* the longest sleep: the heartbeat moves at least this often */
#define RT_TICK_NS          100000000ull
/* a DMA_DONE, or room on the EVT ring, takes at most this long */
#define RT_EVT_TIMEOUT_NS   1000000000ull

struct rt_inst {
    unsigned idx;
    struct devvm_channel ctl;       /* channel 2 idx: device side */
    struct devvm_channel data;      /* channel 2 idx + 1 */
    /* where events go: ctl, or data once the client took them (EVENTS) */
    struct devvm_channel *ev;
    int open;
    int broken;                     /* a corrupt ring: not served */
    struct devvm_dev dev;
    void *priv;
    void *bar_mem[DEVVM_NUM_BARS];
    uint32_t dma_tag;               /* tag of the last DMA slot */
    int dma_late;                   /* it timed out: DMA_DONE still due */
    int fault_wrong_tag;            /* DEVVM_FAULT_WRONG_ID pending */
    int fault_bad_slot;             /* GARBAGE or HUGE_SIZE pending */
    /* the last range found in the DMA window, while EPOCH stays */
    uint32_t win_epoch;
    uint64_t win_iova, win_size;
    uint8_t *win_host;
    int win_write;
};

void *rt_shm;
static const struct rt_ivshmem *iv;
static struct devvm_device *desc;
static const void *type_data;
static struct devvm_shm_layout layout;
static struct devvm_device_info dev_info;
static struct devvm_region_info regions[DEVVM_DESC_NR_REGIONS];
static struct rt_inst insts[RT_MAX_INSTANCES];
static unsigned nr_insts;
static struct rt_window win;        /* win.base 0: no DMA window */
static uint32_t win_acked;

static const struct devvm_rt_ops vm_ops;

/* ---- helpers ------------------------------------------------------------ */

static void heartbeat(void)
{
    devvm_shm_heartbeat(rt_shm);
}

static void doorbell(const struct devvm_channel *ch)
{
    /* the host peer's vector v is channel v's call doorbell */
    rt_doorbell(iv, 0, ch->index);
}

/* A corrupt ring: the instance's channels are not served any more. */
static void inst_broken(struct rt_inst *in, const struct devvm_channel *ch,
                        const char *ring, int err)
{
    if (!in->broken) {
        rt_log("instance %u: channel %u %s: %s; the instance is not "
               "served any more", in->idx, ch->index, ring,
               err ? devvm_strerror(err) : "protocol error");
    }
    in->broken = 1;
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

/* ---- events (EVT and EVT_CPL rings of in->ev) ---------------------------- */

/*
 * Push @s on the instance's EVT ring and ring the events side's
 * doorbell when it sleeps.  With @wait, wait up to RT_EVT_TIMEOUT_NS for
 * room (the events side consumes it without telling us, so poll).
 */
static int evt_push(struct rt_inst *in, const struct devvm_slot *s, int wait)
{
    struct devvm_ring *evt = &in->ev->ring[DEVVM_RING_EVT];
    uint64_t deadline = devvm_rt_now_ns() + RT_EVT_TIMEOUT_NS;
    int ret;

    if (in->broken) {
        return DEVVM_E_STATE;
    }
    while ((ret = devvm_ring_push(evt, s)) == DEVVM_E_AGAIN && wait &&
           devvm_rt_now_ns() < deadline) {
        heartbeat();
        cpu_relax();
    }
    if (ret == DEVVM_E_RING_INDEX) {
        inst_broken(in, in->ev, "EVT", ret);
    }
    if (!ret && devvm_ring_kick_needed(evt)) {
        doorbell(in->ev);
    }
    return ret;
}

/*
 * The next EVT_CPL slot: 0, DEVVM_E_AGAIN when there is none before
 * @deadline, or a ring error (the instance is then broken).  Polls for
 * RT_SPIN_NS, then sleeps on the kick doorbell; keeps the heartbeat.
 */
static int evt_cpl_pop(struct rt_inst *in, struct devvm_slot *out,
                       uint64_t deadline)
{
    struct devvm_ring *cpl = &in->ev->ring[DEVVM_RING_EVT_CPL];
    uint64_t spin_end = devvm_rt_now_ns() + RT_SPIN_NS;
    int ret;

    for (;;) {
        uint64_t now;

        ret = devvm_ring_pop(cpl, out);
        if (ret != DEVVM_E_AGAIN) {
            break;
        }
        heartbeat();
        now = devvm_rt_now_ns();
        if (now >= deadline) {
            break;
        }
        if (now < spin_end) {
            cpu_relax();
            continue;
        }
        if (devvm_ring_prepare_sleep(cpl) == DEVVM_E_AGAIN) {
            rt_idle(min_u64(deadline, now + RT_TICK_NS));
        }
    }
    devvm_ring_poll_mode(cpl);
    if (ret && ret != DEVVM_E_AGAIN) {
        inst_broken(in, in->ev, "EVT_CPL", ret);
    }
    return ret;
}

/* The DMA_DONE for @tag: its status, or -DEVVM_EIO. */
static int dma_done(struct rt_inst *in, uint32_t tag, uint64_t deadline)
{
    struct devvm_slot c;
    int ret = evt_cpl_pop(in, &c, deadline);

    if (ret) {
        return -DEVVM_EIO;
    }
    if (c.op != DEVVM_OP_DMA_DONE || c.tag != tag) {
        inst_broken(in, in->ev, "EVT_CPL", 0);
        return -DEVVM_EIO;
    }
    if (c.status == DEVVM_EFAULT) {
        return -DEVVM_EFAULT;
    }
    return c.status ? -DEVVM_EIO : 0;
}

/*
 * One piece of DMA, at most the data area (vm_ops.dma_max), through the
 * data area of the events' channel: DMA is synchronous for the device,
 * so the whole area is ours between a DMA slot and its DMA_DONE.
 */
static int vm_dma(struct devvm_dev *dev, int write, uint64_t addr, void *buf,
                  size_t len)
{
    struct rt_inst *in = dev->rt_opaque;
    struct devvm_slot s = {
        .op = write ? DEVVM_OP_DMA_WRITE : DEVVM_OP_DMA_READ,
        .addr = addr,
        .len = len,
        .aux = 0,
    };
    int ret;

    if (in->dma_late) {
        /* the area is lent until the late DMA_DONE comes back */
        if (dma_done(in, in->dma_tag, 0) == -DEVVM_EIO) {
            return -DEVVM_EIO;
        }
        in->dma_late = 0;
    }
    s.tag = ++in->dma_tag;
    if (write) {
        memcpy(in->ev->data, buf, len);
    }
    if (evt_push(in, &s, 1)) {
        return -DEVVM_EIO;
    }
    ret = dma_done(in, s.tag, devvm_rt_now_ns() + RT_EVT_TIMEOUT_NS);
    if (ret) {
        in->dma_late = ret == -DEVVM_EIO && !in->broken;
        rt_debug("instance %u: DMA %s of %lu bytes at 0x%lx: %d",
                 in->idx, write ? "write" : "read", (unsigned long)len,
                 (unsigned long)addr, ret);
        return ret;
    }
    if (!write) {
        memcpy(buf, in->ev->data, len);
    }
    return 0;
}

/* ---- the DMA window (docs/devvm/dma-window.rst) ------------------------- */

static uint64_t win_rd64(uint64_t off)
{
    return *(volatile uint64_t *)(win.table + off);
}

/*
 * Where instance @in's [addr, addr + len) is in the window, or NULL.  The
 * table is read between two equal even SEQ values; what it finds stays
 * mapped until this runtime ACKs a later EPOCH, which window_ack() does
 * only between requests: so the pointer is good for the callback.
 */
static void *window_ptr(struct rt_inst *in, uint64_t addr, size_t len,
                        int write)
{
    uint64_t last = addr + (len - 1);
    uint32_t seq, epoch, i;
    uint8_t *found;

    if (!win.base || !len || last < addr) {
        return NULL;
    }
    epoch = mmio_rd32(win.table + DEVVM_WIN_REG_EPOCH);
    if (in->win_host && in->win_epoch == epoch && addr >= in->win_iova &&
        last <= in->win_iova + (in->win_size - 1) &&
        (!write || in->win_write)) {
        return in->win_host + (addr - in->win_iova);
    }
    do {
        seq = mmio_rd32(win.table + DEVVM_WIN_REG_SEQ);
        epoch = mmio_rd32(win.table + DEVVM_WIN_REG_EPOCH);
        found = NULL;
        for (i = 0; !(seq & 1) && i < DEVVM_WIN_SLOTS; i++) {
            uint64_t e = DEVVM_WIN_TABLE + i * DEVVM_WIN_ENTRY_SIZE;
            uint32_t flags = mmio_rd32(win.table + e + DEVVM_WIN_E_FLAGS);
            uint64_t iova, size, off;

            if (!(flags & DEVVM_WIN_E_F_VALID) ||
                mmio_rd32(win.table + e + DEVVM_WIN_E_INSTANCE) != in->idx) {
                continue;
            }
            iova = win_rd64(e + DEVVM_WIN_E_IOVA);
            size = win_rd64(e + DEVVM_WIN_E_SIZE);
            off = win_rd64(e + DEVVM_WIN_E_OFFSET);
            if (addr < iova || !size || last > iova + (size - 1) ||
                off > win.size || size > win.size - off) {
                continue;
            }
            found = (uint8_t *)(win.base + off);
            in->win_iova = iova;
            in->win_size = size;
            in->win_write = !!(flags & DEVVM_WIN_E_F_WRITE);
            break;
        }
        asm volatile("" : : : "memory");
    } while ((seq & 1) || mmio_rd32(win.table + DEVVM_WIN_REG_SEQ) != seq);
    in->win_host = found;
    in->win_epoch = epoch;
    if (!found || (write && !in->win_write)) {
        return NULL;
    }
    return found + (addr - in->win_iova);
}

/* Between requests nothing points into the window: let go what is out. */
static void window_ack(void)
{
    uint32_t epoch;

    if (!win.base) {
        return;
    }
    epoch = mmio_rd32(win.table + DEVVM_WIN_REG_EPOCH);
    if (epoch != win_acked) {
        win_acked = epoch;
        mmio_wr32(win.table + DEVVM_WIN_REG_ACK, epoch);
    }
}

/* A direct pointer into client memory through the DMA window. */
static void *vm_dma_map(struct devvm_dev *dev, uint64_t addr, size_t len,
                        int write)
{
    return window_ptr(dev->rt_opaque, addr, len, write);
}

static void vm_irq(struct devvm_dev *dev, unsigned index, unsigned vector,
                   unsigned action)
{
    struct rt_inst *in = dev->rt_opaque;
    struct devvm_slot s = {
        .op = DEVVM_OP_IRQ,
        .region = index,
        .addr = vector,
        .data = action,
    };

    if (!evt_push(in, &s, 1)) {
        dev->irq_signals++;
    } else {
        rt_log("instance %u: IRQ %u vector %u dropped: EVT ring full",
               in->idx, index, vector);
    }
}

/* Serial always; LOG slots (MORE-chained) when the EVT ring has room. */
static void vm_log(struct devvm_dev *dev, const char *line, size_t len)
{
    struct rt_inst *in = dev->rt_opaque;
    struct devvm_ring *evt = &in->ev->ring[DEVVM_RING_EVT];
    uint32_t slots = (len + DEVVM_LOG_TEXT_MAX - 1) / DEVVM_LOG_TEXT_MAX;
    size_t off = 0;

    rt_log_text(desc->name, in->idx, line, len);
    if (in->broken || devvm_ring_space(evt) < (slots ? slots : 1)) {
        return;
    }
    do {
        struct devvm_slot s = { .op = DEVVM_OP_LOG };
        size_t n = min_u64(len - off, DEVVM_LOG_TEXT_MAX);

        memcpy(s.text, line + off, n);
        s.size = n;
        off += n;
        s.flags = off < len ? DEVVM_SLOT_F_MORE : 0;
        if (evt_push(in, &s, 0)) {
            return;
        }
    } while (off < len);
}

static void vm_fault(struct devvm_dev *dev, enum devvm_fault fault)
{
    struct rt_inst *in = dev->rt_opaque;

    rt_log("instance %u: fault %s injected", in->idx,
           devvm_fault_name(fault));
    switch (fault) {
    case DEVVM_FAULT_NONE:
        in->fault_wrong_tag = in->fault_bad_slot = 0;
        break;
    case DEVVM_FAULT_HANG:
        /* no more requests, no heartbeat: the gateway's watchdog fires */
        rt_halt();
    case DEVVM_FAULT_CRASH:
        asm volatile("ud2");
        break;
    case DEVVM_FAULT_WRONG_ID:
        in->fault_wrong_tag = 1;
        break;
    case DEVVM_FAULT_GARBAGE:
    case DEVVM_FAULT_HUGE_SIZE:
        in->fault_bad_slot = fault;
        break;
    default:
        rt_log("instance %u: fault %s: a device VM has no connection to "
               "drop and no fd to send", in->idx, devvm_fault_name(fault));
        break;
    }
}

static const struct devvm_rt_ops vm_ops = {
    .dma = vm_dma,
    .dma_max = RT_DATA_SIZE,
    .dma_map = vm_dma_map,
    .irq = vm_irq,
    .log = vm_log,
    .fault = vm_fault,
};

void devvm_rt_sleep_ns(uint64_t ns)
{
    uint64_t now = devvm_rt_now_ns(), deadline = now + ns;

    while (now < deadline) {
        heartbeat();
        rt_idle(min_u64(deadline, now + RT_TICK_NS));
        now = devvm_rt_now_ns();
    }
}

/* ---- requests ----------------------------------------------------------- */

/*
 * A completion slot that breaks the ring on purpose (GARBAGE, HUGE_SIZE
 * faults): written raw, with a sequence number that is not its index.
 */
static void push_bad_slot(struct devvm_ring *r, int fault)
{
    uint8_t *slot = r->base + DEVVM_RING_OFF_SLOTS +
                    (uint64_t)(r->local & r->mask) * DEVVM_SLOT_SIZE;

    if (fault == DEVVM_FAULT_GARBAGE) {
        memset(slot, 0xa5, DEVVM_SLOT_SIZE);
    } else {
        memset(slot, 0, DEVVM_SLOT_SIZE);
        devvm_st32(slot + DEVVM_SLOT_OFF_SEQ, r->local + r->depth);
        devvm_st16(slot + DEVVM_SLOT_OFF_OP, DEVVM_OP_READ_DONE);
        slot[DEVVM_SLOT_OFF_SIZE] = 0xff;
        devvm_st64(slot + DEVVM_SLOT_OFF_DATA, 0x7fffffff);
    }
    devvm_store_release32(r->base + DEVVM_RING_OFF_PROD, ++r->local);
}

/*
 * The device end of a ring pushes a READ_DONE: armed completion faults
 * (GARBAGE, HUGE_SIZE, WRONG_ID) fire here.
 */
static int ring_push_done(void *opaque, struct devvm_ring *cpl,
                          const struct devvm_slot *c)
{
    struct rt_inst *in = opaque;
    struct devvm_slot done = *c;
    int ret;

    if (in->fault_bad_slot) {
        push_bad_slot(cpl, in->fault_bad_slot);
        in->fault_bad_slot = 0;
        return 0;
    }
    if (in->fault_wrong_tag) {
        done.tag = ~done.tag;
        in->fault_wrong_tag = 0;
    }
    /* the client waits for each completion, so there is always room */
    ret = devvm_ring_push(cpl, &done);
    return ret == DEVVM_E_AGAIN ? DEVVM_E_RING_INDEX : ret;
}

/* Zero the indices of every ring of @ch and attach to it again. */
static void channel_reset(struct devvm_channel *ch)
{
    unsigned i;

    for (i = 0; i < DEVVM_RINGS_PER_CHANNEL; i++) {
        uint8_t *base = ch->ring[i].base;

        devvm_store_release32(base + DEVVM_RING_OFF_PROD, 0);
        devvm_store_release32(base + DEVVM_RING_OFF_CONS, 0);
        devvm_store_release32(base + DEVVM_RING_OFF_NEED_WAKEUP, 0);
    }
    rt_assert(!devvm_channel_attach(ch, rt_shm, &layout, ch->index,
                                    DEVVM_SIDE_DEVICE));
}

/*
 * EVENTS: @to_data 1 sends the instance's events to its data channel,
 * whose client consumes them from now on; 0 brings them back to the
 * control channel and empties the data channel's rings (its client let
 * go of it).  A DMA whose DMA_DONE is late holds its channel's data
 * area: EBUSY then.
 */
static int route_events(struct rt_inst *in, uint64_t to_data)
{
    if (to_data > 1) {
        return -DEVVM_EINVAL;
    }
    if (!in->open) {
        return -DEVVM_ENODEV;
    }
    if (!to_data && in->ev == &in->data) {
        in->dma_late = 0;
        channel_reset(&in->data);
    } else if (in->dma_late) {
        return -DEVVM_EBUSY;
    }
    in->ev = to_data ? &in->data : &in->ctl;
    rt_debug("instance %u: events on channel %u", in->idx, in->ev->index);
    return 0;
}

/* OPEN, CLOSE, RESET: 0 or a negative errno, the completion's status. */
static int control_op(struct rt_inst *in, uint16_t op)
{
    unsigned i;
    int ret;

    switch (op) {
    case DEVVM_OP_OPEN:
        if (in->open) {
            return -DEVVM_EBUSY;
        }
        memset(in->priv, 0, desc->priv_size);
        for (i = 0; i < DEVVM_NUM_BARS; i++) {
            if (in->bar_mem[i]) {
                memset(in->bar_mem[i], 0, desc->bars[i].mem_size);
            }
        }
        in->dma_late = 0;
        in->fault_wrong_tag = in->fault_bad_slot = 0;
        ret = devvm_dev_init(&in->dev, desc, type_data, in->priv,
                             in->bar_mem, &vm_ops, in);
        if (ret) {
            rt_log("instance %u: init: %d", in->idx, ret);
            return ret;
        }
        in->open = 1;
        rt_debug("instance %u open", in->idx);
        return 0;
    case DEVVM_OP_CLOSE:
        if (in->open) {
            devvm_dev_fini(&in->dev);
            in->open = 0;
        }
        /* the next client starts on empty rings, its events with us */
        channel_reset(&in->data);
        in->ev = &in->ctl;
        in->dma_late = 0;
        rt_debug("instance %u closed", in->idx);
        return 0;
    default:
        if (!in->open) {
            return -DEVVM_ENODEV;
        }
        devvm_dev_reset(&in->dev);
        return 0;
    }
}

/* An op not valid on @ch's REQ ring: a protocol error. */
static int bad_op(struct rt_inst *in, const struct devvm_channel *ch,
                  uint16_t op)
{
    rt_log("instance %u: op %u on channel %u", in->idx, op, ch->index);
    return DEVVM_E_BAD_FIELD;
}

/*
 * The device end of the instance's rings: BAR (and, on the control
 * channel, config space) accesses; a devvm_err stops serving when a
 * device callback broke the instance.
 */
static int ring_read(void *opaque, uint32_t region, uint64_t offset,
                     uint32_t size, uint64_t *value)
{
    struct rt_inst *in = opaque;
    uint8_t buf[8] = { 0 };
    int ret;

    if (!in->open) {
        return -DEVVM_ENODEV;
    }
    ret = devvm_dev_region_read(&in->dev, region, offset, buf, size);
    *value = devvm_ld64(buf);
    return in->broken ? DEVVM_E_STATE : ret;
}

static int ring_write(void *opaque, uint32_t region, uint64_t offset,
                      uint32_t size, uint64_t value)
{
    struct rt_inst *in = opaque;
    uint8_t buf[8];
    int ret;

    if (!in->open) {
        return -DEVVM_ENODEV;
    }
    devvm_st64(buf, value);
    ret = devvm_dev_region_write(&in->dev, region, offset, buf, size);
    return in->broken ? DEVVM_E_STATE : ret;
}

static void ring_write_dropped(void *opaque, const struct devvm_slot *r,
                               int err)
{
    struct rt_inst *in = opaque;

    rt_debug("instance %u: write of %u bytes at region %u + 0x%lx dropped: "
             "%d", in->idx, r->size, r->region, (unsigned long)r->addr, err);
}

/* The control channel's own ops. */
static int ctl_other(void *opaque, const struct devvm_slot *r)
{
    struct rt_inst *in = opaque;

    switch (r->op) {
    case DEVVM_OP_OPEN:
    case DEVVM_OP_CLOSE:
    case DEVVM_OP_RESET:
        return control_op(in, r->op);
    case DEVVM_OP_EVENTS:
        return route_events(in, r->data);
    }
    return bad_op(in, &in->ctl, r->op);
}

static int data_other(void *opaque, const struct devvm_slot *r)
{
    struct rt_inst *in = opaque;

    return bad_op(in, &in->data, r->op);
}

static const struct devvm_ring_device_ops ctl_ops = {
    .read = ring_read,
    .write = ring_write,
    .other = ctl_other,
    .write_dropped = ring_write_dropped,
    .push_done = ring_push_done,
};

static const struct devvm_ring_device_ops data_ops = {
    .read = ring_read,
    .write = ring_write,
    .other = data_other,
    .write_dropped = ring_write_dropped,
    .push_done = ring_push_done,
};

/* Serve @ch's REQ ring: the number of slots taken. */
static unsigned serve_channel(struct rt_inst *in, struct devvm_channel *ch,
                              int ctl)
{
    const struct devvm_ring_device d = {
        .ch = ch,
        .regions = regions,
        .nr_regions = dev_info.num_regions,
        /* BARs only on a data channel */
        .max_region = ctl ? DEVVM_PCI_CONFIG_REGION : DEVVM_PCI_BAR5_REGION,
        .ops = ctl ? &ctl_ops : &data_ops,
        .opaque = in,
    };
    int completed = 0, ret;

    if (in->broken) {
        return 0;
    }
    ret = devvm_ring_device_serve(&d, RT_DEPTH, &completed);
    if (ret < 0 && ret != DEVVM_E_STATE) {
        inst_broken(in, ch, "REQ/CPL",
                    ret == DEVVM_E_BAD_FIELD ? 0 : ret);
    }
    if (completed && devvm_ring_kick_needed(&ch->ring[DEVVM_RING_CPL])) {
        doorbell(ch);
    }
    return ret < 0 ? 1 : (unsigned)ret;
}

/* ---- the poll loop ------------------------------------------------------ */

/* Before sleeping: 1 when every served REQ ring is still empty. */
static int prepare_sleep(void)
{
    unsigned i;

    for (i = 0; i < nr_insts; i++) {
        struct rt_inst *in = &insts[i];

        if (in->broken) {
            continue;
        }
        if (devvm_ring_prepare_sleep(&in->ctl.ring[DEVVM_RING_REQ]) !=
            DEVVM_E_AGAIN ||
            devvm_ring_prepare_sleep(&in->data.ring[DEVVM_RING_REQ]) !=
            DEVVM_E_AGAIN) {
            return 0;
        }
    }
    return 1;
}

static void poll_mode(void)
{
    unsigned i;

    for (i = 0; i < nr_insts; i++) {
        devvm_ring_poll_mode(&insts[i].ctl.ring[DEVVM_RING_REQ]);
        devvm_ring_poll_mode(&insts[i].data.ring[DEVVM_RING_REQ]);
    }
}

/* The earliest poll deadline of an open instance, or @limit. */
static uint64_t next_deadline(uint64_t limit)
{
    unsigned i;

    if (!desc->poll || !desc->poll_interval_ns) {
        return limit;
    }
    for (i = 0; i < nr_insts; i++) {
        if (insts[i].open && !insts[i].broken) {
            limit = min_u64(limit, insts[i].dev.next_poll_ns);
        }
    }
    return limit;
}

void rt_serve(void)
{
    uint64_t last_work = devvm_rt_now_ns();

    for (;;) {
        unsigned i, work = 0;
        uint64_t now;

        window_ack();
        for (i = 0; i < nr_insts; i++) {
            struct rt_inst *in = &insts[i];
            unsigned n;

            if (in->broken) {
                continue;
            }
            n = serve_channel(in, &in->ctl, 1);
            n += serve_channel(in, &in->data, 0);
            if (in->open && !in->broken) {
                devvm_dev_poll(&in->dev, n > 0);
            }
            work += n;
        }
        heartbeat();
        now = devvm_rt_now_ns();
        if (work) {
            last_work = now;
            continue;
        }
        if (now - last_work < RT_SPIN_NS) {
            cpu_relax();
            continue;
        }
        if (prepare_sleep()) {
            rt_idle(next_deadline(now + RT_TICK_NS));
        }
        poll_mode();
        last_work = devvm_rt_now_ns();
    }
}

/* ---- bring-up ----------------------------------------------------------- */

/* Hand the device its key=value parameters (not the devvm.* ones). */
static void apply_params(char *cmdline)
{
    char *p = cmdline;

    while (*p) {
        char *key, *val = NULL;
        int ret;

        while (*p == ' ') {
            p++;
        }
        if (!*p) {
            break;
        }
        key = p;
        while (*p && *p != ' ') {
            if (*p == '=' && !val) {
                *p = '\0';
                val = p + 1;
            }
            p++;
        }
        if (*p) {
            *p++ = '\0';
        }
        if (!memcmp(key, "devvm.", 6)) {
            continue;
        }
        if (!val) {
            rt_fail(DEVVM_EINVAL, "parameter \"%s\": not key=value", key);
        }
        ret = desc->param ? desc->param(desc, key, val) : -DEVVM_EINVAL;
        if (ret) {
            rt_fail(DEVVM_EINVAL, "parameter %s=%s: %s", key, val,
                    desc->param ? "refused by the device"
                                : "the device takes no parameters");
        }
        rt_log("parameter %s=%s", key, val);
    }
}

static uint64_t page_up(uint64_t v)
{
    return (v + RT_PAGE - 1) & ~(uint64_t)(RT_PAGE - 1);
}

/* The device type's data, first on the heap: where the heap goes on. */
static uint64_t type_init(uint64_t heap, uint64_t heap_end)
{
    uint64_t pages = (heap_end - heap) & ~(uint64_t)(RT_PAGE - 1);
    void *p = desc->type_data_size ? (void *)heap : NULL;
    int ret;

    /* within whole pages, so that page_up() below cannot wrap */
    if (desc->type_data_size > pages) {
        rt_fail(DEVVM_ENOMEM, "not enough memory for %lu bytes of type data",
                (unsigned long)desc->type_data_size);
    }
    if (p) {
        memset(p, 0, desc->type_data_size);
    }
    ret = devvm_type_init(desc, p);
    if (ret) {
        rt_fail(devvm_is_errno(ret) ? -ret : DEVVM_EIO,
                "the device's type_init failed: %s (%d)",
                devvm_strerror(ret), ret);
    }
    type_data = p;
    return heap + page_up(desc->type_data_size);
}

/* Per-instance memory from [*heap, heap_end); how many instances fit. */
static unsigned alloc_instances(unsigned want, uint64_t heap,
                                uint64_t heap_end)
{
    uint64_t per = page_up(desc->priv_size);
    unsigned i, b;

    for (b = 0; b < DEVVM_NUM_BARS; b++) {
        per += page_up(desc->bars[b].mem_size);
    }
    for (i = 0; i < want; i++) {
        struct rt_inst *in = &insts[i];

        if (per > heap_end - heap) {
            rt_log("memory for %u instances only (%lu KiB each)", i,
                   (unsigned long)(per >> 10));
            break;
        }
        in->priv = (void *)heap;
        heap += page_up(desc->priv_size);
        for (b = 0; b < DEVVM_NUM_BARS; b++) {
            if (desc->bars[b].mem_size) {
                in->bar_mem[b] = (void *)heap;
                heap += page_up(desc->bars[b].mem_size);
            }
        }
    }
    return i;
}

/* The description area: what the gateway builds the PCI function from. */
static void publish_desc(unsigned instances)
{
    struct devvm_desc_info d = { .instances = instances };
    uint8_t area[DEVVM_DESC_SIZE];
    unsigned i;
    int n;

    for (i = 0; i < DEVVM_DESC_NAME_MAX && desc->name && desc->name[i]; i++) {
        d.name[i] = desc->name[i];
    }
    devvm_dev_device_info(desc, &dev_info);
    d.dev = dev_info;
    for (i = 0; i < DEVVM_DESC_NR_REGIONS; i++) {
        if (i < dev_info.num_regions) {
            devvm_dev_region_info(desc, i, &regions[i]);
        }
        d.regions[i].size = regions[i].size;
        d.regions[i].flags = regions[i].flags &
                             (DEVVM_REGION_F_READ | DEVVM_REGION_F_WRITE);
    }
    for (i = 0; i < DEVVM_DESC_NR_IRQS && i < dev_info.num_irqs; i++) {
        devvm_dev_irq_info(desc, i, &d.irqs[i]);
        d.irqs[i].flags &= DEVVM_IRQ_INFO_F_EVENTFD |
                           DEVVM_IRQ_INFO_F_MASKABLE |
                           DEVVM_IRQ_INFO_F_AUTOMASKED;
    }
    n = devvm_desc_encode(area, sizeof(area), &d);
    rt_assert(n > 0 && !devvm_shm_set_desc(rt_shm, area, n));
}

void rt_serve_init(const struct rt_ivshmem *ivshmem, uint64_t heap,
                   uint64_t heap_end, char *cmdline)
{
    uint32_t nr, gen;
    const char *why;
    unsigned i;

    iv = ivshmem;
    /* a channel pair per instance, a vector per channel */
    nr = min_u64(DEVVM_MAX_CHANNELS, iv->vectors) & ~1u;
    while (nr && devvm_shm_size(nr, RT_DEPTH, RT_DATA_SIZE) > iv->shm_size) {
        nr -= 2;
    }
    if (!nr) {
        rt_log("shared memory of %lu KiB with %u MSI-X vectors: not even "
               "one instance fits", (unsigned long)(iv->shm_size >> 10),
               iv->vectors);
        rt_exit(RT_EXIT_BAD_SHM);
    }
    gen = devvm_shm_generation((void *)iv->shm) + 1;
    if (devvm_shm_format((void *)iv->shm, iv->shm_size, nr, RT_DEPTH,
                         RT_DATA_SIZE, gen) ||
        devvm_shm_validate((void *)iv->shm, iv->shm_size, &layout)) {
        rt_log("cannot format the shared memory");
        rt_exit(RT_EXIT_BAD_SHM);
    }
    rt_shm = (void *)iv->shm;
    rt_log("generation %u, %u channels", gen, nr);

    if (rt_pci_window(&win)) {
        win.base = 0;
    }
    desc = devvm_vm_device();
    apply_params(cmdline);
    if (devvm_desc_check(desc, &why)) {
        rt_fail(DEVVM_EINVAL, "bad device description: %s", why);
    }
    heap = type_init(heap, heap_end);
    nr_insts = alloc_instances(nr / 2, heap, heap_end);
    if (!nr_insts) {
        rt_fail(DEVVM_ENOMEM, "not enough memory for one instance");
    }
    for (i = 0; i < nr_insts; i++) {
        insts[i].idx = i;
        insts[i].ev = &insts[i].ctl;
        rt_assert(!devvm_channel_attach(&insts[i].ctl, rt_shm, &layout, 2 * i,
                                        DEVVM_SIDE_DEVICE));
        rt_assert(!devvm_channel_attach(&insts[i].data, rt_shm, &layout,
                                        2 * i + 1, DEVVM_SIDE_DEVICE));
    }
    publish_desc(nr_insts);
    devvm_shm_set_state(rt_shm, DEVVM_STATE_READY, 0, NULL);
    rt_log("READY: \"%s\", %u instances", desc->name, nr_insts);
}
