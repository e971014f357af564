/*
 * devvm-proxy: config space.  The standard header, the BARs, MSI and
 * MSI-X are emulated here, by QEMU's PCI core; the bodies of the device's
 * other capabilities, and all of extended config space of a PCI Express
 * device, are forwarded to it.  At realize, config space is made from the
 * device's: the header, the capability list in the same order, extended
 * config space, and a PCI Express capability fitted to where the
 * function sits.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/lockable.h"
#include "hw/pci/msi.h"
#include "hw/pci/msix.h"
#include "hw/pci/pci.h"
#include "hw/pci/pci_bridge.h"
#include "proxy.h"
#include "trace.h"

/* ---- config space accesses ----------------------------------------------- */

static bool devvm_proxy_forwarded(DevvmProxyState *s, uint32_t addr, int len)
{
    int i;

    for (i = 0; i < len; i++) {
        if (addr + i >= PCI_CONFIG_SPACE_SIZE) {
            return s->desc.ext_config;   /* all of it is the device's */
        }
        if (!s->desc.forward[addr + i]) {
            return false;
        }
    }
    return true;
}

uint32_t devvm_proxy_config_read(PCIDevice *pdev, uint32_t addr, int len)
{
    DevvmProxyState *s = DEVVM_PROXY(pdev);
    uint8_t buf[8];
    int ret;

    devvm_proxy_intx_eoi_run(s);

    if (!devvm_proxy_forwarded(s, addr, len)) {
        return pci_default_read_config(pdev, addr, len);
    }
    QEMU_LOCK_GUARD(&s->lock);
    if (s->conn.link != DEVVM_PROXY_LINK_CONNECTED) {
        return MAKE_64BIT_MASK(0, len * 8);
    }
    ret = devvm_client_region_read(&s->conn.client, DEVVM_PCI_CONFIG_REGION,
                                   addr, buf, len);
    if (ret) {
        if (ret != DEVVM_E_PEER) {
            devvm_proxy_fail_locked(s, "config read", ret);
        }
        return MAKE_64BIT_MASK(0, len * 8);
    }
    trace_devvm_proxy_config_forward(devvm_proxy_id(s), "read", addr, len,
                                     ldn_le_p(buf, len));
    return ldn_le_p(buf, len);
}

void devvm_proxy_config_write(PCIDevice *pdev, uint32_t addr,
                              uint32_t val, int len)
{
    DevvmProxyState *s = DEVVM_PROXY(pdev);
    bool forward = devvm_proxy_forwarded(s, addr, len);
    uint8_t buf[8];
    int ret;

    devvm_proxy_intx_eoi_run(s);

    if (!forward) {
        pci_default_write_config(pdev, addr, val, len);
        if (s->msi.msi_cap) {
            msi_write_config(pdev, addr, val, len);
        }
        if (s->msi.msix_cap) {
            msix_write_config(pdev, addr, val, len);
        }
        if (s->msi.kvm_irqfd) {
            devvm_proxy_kvm_config_update(s);
        }
        /* the device hears about its command register (bus master...) */
        if (!ranges_overlap(addr, len, PCI_COMMAND, 2)) {
            return;
        }
        addr = PCI_COMMAND;
        len = 2;
        val = pci_get_word(pdev->config + PCI_COMMAND);
    }
    stn_le_p(buf, len, val);
    QEMU_LOCK_GUARD(&s->lock);
    if (s->conn.link != DEVVM_PROXY_LINK_CONNECTED) {
        return;
    }
    trace_devvm_proxy_config_forward(devvm_proxy_id(s), "write", addr, len,
                                     val);
    ret = devvm_client_region_write(&s->conn.client, DEVVM_PCI_CONFIG_REGION,
                                    addr, buf, len, false);
    if (ret && ret != DEVVM_E_PEER) {
        devvm_proxy_fail_locked(s, "config write", ret);
    }
}

/* ---- making config space ------------------------------------------------ */

/* Size of a capability we forward: up to the next one or the end. */
static uint8_t devvm_proxy_cap_size(DevvmProxyState *s, uint8_t pos)
{
    uint8_t id = s->desc.config[pos], end = 0;
    uint8_t p;

    if (id == PCI_CAP_ID_VNDR) {
        /* its own length, kept inside config space */
        return MIN(MAX(s->desc.config[pos + PCI_CAP_FLAGS], 3),
                   PCI_CONFIG_SPACE_SIZE - pos);
    }
    /* the nearest capability after this one bounds it */
    for (p = s->desc.config[PCI_CAPABILITY_LIST]; p; ) {
        if (p > pos && (!end || p < end)) {
            end = p;
        }
        p = s->desc.config[p + PCI_CAP_LIST_NEXT];
        if (p && (p < PCI_CONFIG_HEADER_SIZE || p & 3)) {
            break;
        }
    }
    return (end ? end : PCI_CONFIG_SPACE_SIZE) - pos;
}

/*
 * A PCI Express device (a PCI Express capability and 4 KiB of config
 * space) keeps its extended config space: every access from 0x100 on is
 * forwarded.  Its list of extended capabilities must be well formed
 * (what QEMU's own pcie_find_capability() asserts); on a conventional
 * device, or one without 4 KiB, the function is conventional PCI.
 */
static bool devvm_proxy_init_ext_config(DevvmProxyState *s, int exp_cap,
                                        Error **errp)
{
    PCIDevice *pdev = PCI_DEVICE(s);
    g_autofree uint8_t *ext = NULL;
    unsigned long seen[BITS_TO_LONGS(PCIE_CONFIG_SPACE_SIZE / 4)] = { 0 };
    uint16_t next;
    int ret;

    if (!exp_cap || s->desc.regions[DEVVM_PCI_CONFIG_REGION].size <
                    PCIE_CONFIG_SPACE_SIZE) {
        pdev->cap_present &= ~QEMU_PCI_CAP_EXPRESS;
        return true;
    }
    ext = g_malloc(PCIE_CONFIG_SPACE_SIZE - PCI_CONFIG_SPACE_SIZE);
    WITH_QEMU_LOCK_GUARD(&s->lock) {
        ret = devvm_client_region_read(&s->conn.client, DEVVM_PCI_CONFIG_REGION,
                                       PCI_CONFIG_SPACE_SIZE, ext,
                                       PCIE_CONFIG_SPACE_SIZE -
                                       PCI_CONFIG_SPACE_SIZE);
    }
    if (ret) {
        error_setg(errp, "reading extended config space: %s",
                   devvm_strerror(ret));
        return false;
    }
    for (next = PCI_CONFIG_SPACE_SIZE; next; ) {
        uint32_t header = ldl_le_p(ext + next - PCI_CONFIG_SPACE_SIZE);

        if (next == PCI_CONFIG_SPACE_SIZE && !header) {
            break;          /* no extended capabilities */
        }
        if (next < PCI_CONFIG_SPACE_SIZE || next & 3 ||
            next > PCIE_CONFIG_SPACE_SIZE - 8) {
            error_setg(errp, "extended capability pointer 0x%x is outside "
                       "extended config space", next);
            return false;
        }
        if (test_and_set_bit(next / 4, seen)) {
            error_setg(errp, "extended capability list loops at 0x%x", next);
            return false;
        }
        trace_devvm_proxy_ext_cap(devvm_proxy_id(s), PCI_EXT_CAP_ID(header),
                                  next);
        next = PCI_EXT_CAP_NEXT(header);
    }
    /* QEMU's own view: an endpoint's PCI Express capability, body forwarded */
    pdev->exp.exp_cap = exp_cap;
    s->desc.ext_config = true;
    return true;
}

/*
 * A PCI Express function on a conventional bus of a PCI Express machine
 * (behind a PCIe-to-PCI bridge on q35) is not something hardware can be:
 * as vfio-pci does, hide its PCI Express capability there (Windows will
 * not start such a device, and Linux's IOMMU grouping follows bus types).
 * On a conventional machine (pc) it stays: some drivers want it.
 */
static bool devvm_proxy_hide_exp(DevvmProxyState *s)
{
    PCIBus *bus = pci_get_bus(PCI_DEVICE(s));

    if (pci_bus_is_express(bus)) {
        return false;
    }
    while (!pci_bus_is_root(bus)) {
        bus = pci_get_bus(pci_bridge_get_device(bus));
    }
    return pci_bus_is_express(bus);
}

/* Show the guest @len bytes at @off as @val, read-only, not forwarded. */
static void devvm_proxy_emulate_config(DevvmProxyState *s, uint32_t off,
                                       unsigned len, uint32_t val)
{
    PCIDevice *pdev = PCI_DEVICE(s);

    stn_le_p(pdev->config + off, len, val);
    memset(pdev->wmask + off, 0, len);
    memset(s->desc.forward + off, 0, len);
}

/*
 * An Endpoint on a PCI Express root bus (q35's pcie.0) is a Root Complex
 * Integrated Endpoint, which has no link: say so, and hide the link
 * registers, as vfio-pci does.  Other types keep what the device says.
 */
static void devvm_proxy_exp_on_root_bus(DevvmProxyState *s, uint8_t pos,
                                        unsigned size)
{
    PCIBus *bus = pci_get_bus(PCI_DEVICE(s));
    uint16_t flags = pci_get_word(s->desc.config + pos + PCI_EXP_FLAGS);
    unsigned type = (flags & PCI_EXP_FLAGS_TYPE) >> 4;

    if (!pci_bus_is_express(bus) || !pci_bus_is_root(bus) ||
        (type != PCI_EXP_TYPE_ENDPOINT && type != PCI_EXP_TYPE_LEG_END)) {
        return;
    }
    trace_devvm_proxy_exp_type(devvm_proxy_id(s), type, PCI_EXP_TYPE_RC_END);
    devvm_proxy_emulate_config(s, pos + PCI_EXP_FLAGS, 2,
                               (flags & ~PCI_EXP_FLAGS_TYPE) |
                               PCI_EXP_TYPE_RC_END << 4);
    if (size >= PCI_EXP_LNKSTA + 2) {
        devvm_proxy_emulate_config(s, pos + PCI_EXP_LNKCAP, 4, 0);
        devvm_proxy_emulate_config(s, pos + PCI_EXP_LNKCTL, 2, 0);
        devvm_proxy_emulate_config(s, pos + PCI_EXP_LNKSTA, 2, 0);
    }
    if (size >= PCI_EXP_LNKSTA2 + 2) {
        devvm_proxy_emulate_config(s, pos + PCI_EXP_LNKCAP2, 4, 0);
        devvm_proxy_emulate_config(s, pos + PCI_EXP_LNKCTL2, 2, 0);
        devvm_proxy_emulate_config(s, pos + PCI_EXP_LNKSTA2, 2, 0);
    }
}

/*
 * Recreate the device's capability list in the same order: MSI and MSI-X
 * emulated here, the others forwarded byte for byte (their id and next
 * pointer stay ours).  pci_add_capability() puts each new capability at
 * the head of the list, so add them last to first.
 */
bool devvm_proxy_add_caps(DevvmProxyState *s, Error **errp)
{
    PCIDevice *pdev = PCI_DEVICE(s);
    uint8_t caps[48];
    int n = 0, i, exp_cap = 0;
    uint8_t pos;

    if (!(pci_get_word(s->desc.config + PCI_STATUS) & PCI_STATUS_CAP_LIST)) {
        return devvm_proxy_init_ext_config(s, 0, errp);
    }
    for (pos = s->desc.config[PCI_CAPABILITY_LIST]; pos;
         pos = s->desc.config[pos + PCI_CAP_LIST_NEXT]) {
        if (pos < PCI_CONFIG_HEADER_SIZE || (pos & 3) ||
            pos > PCI_CONFIG_SPACE_SIZE - 4) {
            error_setg(errp, "capability pointer 0x%x is outside config "
                       "space", pos);
            return false;
        }
        for (i = 0; i < n; i++) {
            if (caps[i] == pos) {
                error_setg(errp, "capability list loops at 0x%x", pos);
                return false;
            }
        }
        if (n == ARRAY_SIZE(caps)) {
            error_setg(errp, "more than %zu capabilities", ARRAY_SIZE(caps));
            return false;
        }
        caps[n++] = pos;
    }
    pdev->config[PCI_CAPABILITY_LIST] = 0;

    for (i = n - 1; i >= 0; i--) {
        uint8_t id = s->desc.config[caps[i]];
        uint8_t size = devvm_proxy_cap_size(s, caps[i]);
        Error *err = NULL;
        int ret;

        pos = caps[i];
        /* MSI and MSI-X structures must fit where the device put them */
        if ((id == PCI_CAP_ID_MSI && pos > PCI_CONFIG_SPACE_SIZE - 24) ||
            (id == PCI_CAP_ID_MSIX &&
             pos > PCI_CONFIG_SPACE_SIZE - PCI_CAP_MSIX_SIZEOF)) {
            error_setg(errp, "capability 0x%x at 0x%x runs past config "
                       "space", id, pos);
            return false;
        }
        switch (id) {
        case PCI_CAP_ID_MSI: {
            uint16_t flags = pci_get_word(s->desc.config + pos +
                                          PCI_MSI_FLAGS);
            unsigned vectors = 1 << ((flags & PCI_MSI_FLAGS_QMASK) >> 1);
            unsigned have = s->desc.info.num_irqs > DEVVM_PCI_MSI_IRQ ?
                            s->desc.irqs[DEVVM_PCI_MSI_IRQ].count : 0;

            if (vectors > 32 || have < vectors) {
                error_setg(errp, "MSI capability asks for %u vectors, the "
                           "device's IRQ info has %u", vectors, have);
                return false;
            }
            ret = msi_init(pdev, pos, vectors, flags & PCI_MSI_FLAGS_64BIT,
                           flags & PCI_MSI_FLAGS_MASKBIT, &err);
            if (ret < 0) {
                error_propagate_prepend(errp, err, "MSI capability: ");
                return false;
            }
            s->msi.msi_cap = pos;
            break;
        }
        case PCI_CAP_ID_MSIX: {
            uint16_t flags = pci_get_word(s->desc.config + pos +
                                          PCI_MSIX_FLAGS);
            uint32_t table = pci_get_long(s->desc.config + pos +
                                          PCI_MSIX_TABLE);
            uint32_t pba = pci_get_long(s->desc.config + pos + PCI_MSIX_PBA);
            unsigned entries = (flags & PCI_MSIX_FLAGS_QSIZE) + 1;
            unsigned tbir = table & PCI_MSIX_FLAGS_BIRMASK;
            unsigned pbir = pba & PCI_MSIX_FLAGS_BIRMASK;

            if (s->desc.info.num_irqs <= DEVVM_PCI_MSIX_IRQ ||
                s->desc.irqs[DEVVM_PCI_MSIX_IRQ].count < entries) {
                error_setg(errp, "MSI-X capability has %u vectors, the "
                           "device's IRQ info %u", entries,
                           s->desc.info.num_irqs > DEVVM_PCI_MSIX_IRQ ?
                           s->desc.irqs[DEVVM_PCI_MSIX_IRQ].count : 0);
                return false;
            }
            if (tbir >= PCI_ROM_SLOT || !s->bars[tbir].size ||
                pbir >= PCI_ROM_SLOT || !s->bars[pbir].size) {
                error_setg(errp, "MSI-X table or PBA in BAR%u/BAR%u, which "
                           "the device does not have", tbir, pbir);
                return false;
            }
            ret = msix_init(pdev, entries, &s->bars[tbir].mr, tbir,
                            table & ~PCI_MSIX_FLAGS_BIRMASK,
                            &s->bars[pbir].mr, pbir,
                            pba & ~PCI_MSIX_FLAGS_BIRMASK, pos, &err);
            if (ret < 0) {
                error_propagate_prepend(errp, err, "MSI-X capability: ");
                return false;
            }
            s->msi.msix_cap = pos;
            s->msi.msix_table_bar = tbir;
            s->msi.msix_pba_bar = pbir;
            break;
        }
        case PCI_CAP_ID_EXP:
            if (devvm_proxy_hide_exp(s)) {
                trace_devvm_proxy_cap_hidden(devvm_proxy_id(s), id, pos,
                                             "PCI Express on a conventional "
                                             "bus of a PCI Express machine");
                continue;
            }
            /* fall through */
        default:
            if (size < 2 || pci_add_capability(pdev, id, pos, size,
                                               &err) < 0) {
                error_propagate_prepend(errp, err, "capability 0x%x at "
                                        "0x%x: ", id, pos);
                return false;
            }
            /* the body belongs to the device */
            memset(s->desc.forward + pos + 2, 1, size - 2);
            if (id == PCI_CAP_ID_EXP && size >= PCI_EXP_FLAGS + 2) {
                exp_cap = pos;
                devvm_proxy_exp_on_root_bus(s, pos, size);
            }
            break;
        }
        trace_devvm_proxy_cap(devvm_proxy_id(s), id, pos, size);
    }
    return devvm_proxy_init_ext_config(s, exp_cap, errp);
}

void devvm_proxy_init_config(DevvmProxyState *s)
{
    PCIDevice *pdev = PCI_DEVICE(s);
    uint8_t *c = pdev->config, *d = s->desc.config;

    pci_set_word(c + PCI_VENDOR_ID, pci_get_word(d + PCI_VENDOR_ID));
    pci_set_word(c + PCI_DEVICE_ID, pci_get_word(d + PCI_DEVICE_ID));
    c[PCI_REVISION_ID] = d[PCI_REVISION_ID];
    c[PCI_CLASS_PROG] = d[PCI_CLASS_PROG];
    pci_set_word(c + PCI_CLASS_DEVICE, pci_get_word(d + PCI_CLASS_DEVICE));
    pci_set_word(c + PCI_SUBSYSTEM_VENDOR_ID,
                 pci_get_word(d + PCI_SUBSYSTEM_VENDOR_ID));
    pci_set_word(c + PCI_SUBSYSTEM_ID, pci_get_word(d + PCI_SUBSYSTEM_ID));
    c[PCI_INTERRUPT_PIN] = d[PCI_INTERRUPT_PIN] ? 1 : 0;
    c[PCI_HEADER_TYPE] |= d[PCI_HEADER_TYPE] & PCI_HEADER_TYPE_MULTI_FUNCTION;
}
