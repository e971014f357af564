/*
 * devvm-proxy: a PCI function whose device model runs in another process
 * or in a device VM, reached through a vfio-user socket (docs/devvm/).
 * The device's state is private to hw/devvm/ (hw/devvm/proxy.h).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_DEVVM_DEVVM_PROXY_H
#define HW_DEVVM_DEVVM_PROXY_H

#include "qom/object.h"

#define TYPE_DEVVM_PROXY "devvm-proxy"
OBJECT_DECLARE_SIMPLE_TYPE(DevvmProxyState, DEVVM_PROXY)

#endif /* HW_DEVVM_DEVVM_PROXY_H */
