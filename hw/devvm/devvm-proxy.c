/*
 * devvm-proxy: a PCI function whose device model runs in a device VM
 *
 * The proxy connects to a vfio-user compatible socket served by a devvm
 * gateway (or any vfio-user server) and builds a PCI function from what
 * the peer describes.  See docs/devvm/ for the design.
 *
 * This build registers the device and checks its configuration; the
 * connection to a peer is not implemented yet, so realize fails with an
 * error that says so rather than creating a function that does nothing.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/module.h"
#include "hw/qdev-properties.h"
#include "hw/devvm/devvm-proxy.h"
#include "trace.h"

static void devvm_proxy_realize(PCIDevice *pdev, Error **errp)
{
    DevvmProxyState *s = DEVVM_PROXY(pdev);
    const char *id = DEVICE(pdev)->id ?: TYPE_DEVVM_PROXY;

    trace_devvm_proxy_realize(id, s->socket_path ?: "");

    if (!s->socket_path || !*s->socket_path) {
        error_setg(errp, "'socket' property is required: "
                   "the path of the device's vfio-user socket");
        trace_devvm_proxy_realize_failed(id, "no socket");
        return;
    }

    error_setg(errp, "connecting to a device at '%s' is not implemented "
               "in this build", s->socket_path);
    trace_devvm_proxy_realize_failed(id, "not implemented");
}

static const Property devvm_proxy_properties[] = {
    DEFINE_PROP_STRING("socket", DevvmProxyState, socket_path),
};

static void devvm_proxy_class_init(ObjectClass *klass, const void *data)
{
    DeviceClass *dc = DEVICE_CLASS(klass);
    PCIDeviceClass *k = PCI_DEVICE_CLASS(klass);

    k->realize = devvm_proxy_realize;
    device_class_set_props(dc, devvm_proxy_properties);
    dc->desc = "PCI function emulated by a devvm device VM";
    set_bit(DEVICE_CATEGORY_MISC, dc->categories);
}

static const TypeInfo devvm_proxy_types[] = {
    {
        .name          = TYPE_DEVVM_PROXY,
        .parent        = TYPE_PCI_DEVICE,
        .instance_size = sizeof(DevvmProxyState),
        .class_init    = devvm_proxy_class_init,
        .interfaces    = (const InterfaceInfo[]) {
            { INTERFACE_PCIE_DEVICE },
            { INTERFACE_CONVENTIONAL_PCI_DEVICE },
            { }
        },
    },
};

DEFINE_TYPES(devvm_proxy_types)
