/*
 * devvm-proxy: a PCI function whose device model runs in a device VM
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_DEVVM_DEVVM_PROXY_H
#define HW_DEVVM_DEVVM_PROXY_H

#include "hw/pci/pci_device.h"
#include "qom/object.h"

#define TYPE_DEVVM_PROXY "devvm-proxy"
OBJECT_DECLARE_SIMPLE_TYPE(DevvmProxyState, DEVVM_PROXY)

struct DevvmProxyState {
    PCIDevice parent_obj;

    /* Properties */
    char *socket_path;
};

#endif /* HW_DEVVM_DEVVM_PROXY_H */
