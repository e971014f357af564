/*
 * libdevvm's names are its own: a file can include every public header
 * together with Linux's <linux/vfio.h> (whose VFIO_* names libdevvm's
 * DEVVM_* mirror), and the values that both define are the same, since
 * vfio-user takes them from vfio.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <linux/vfio.h>

#include "libdevvm/caps.h"
#include "libdevvm/client.h"
#include "libdevvm/desc.h"
#include "libdevvm/dma.h"
#include "libdevvm/errno.h"
#include "libdevvm/irqfds.h"
#include "libdevvm/le.h"
#include "libdevvm/needs.h"
#include "libdevvm/ring-client.h"
#include "libdevvm/ring-device.h"
#include "libdevvm/ring.h"
#include "libdevvm/sdk.h"
#include "libdevvm/server.h"
#include "libdevvm/sock.h"
#include "libdevvm/threads.h"
#include "libdevvm/wire.h"
#include "tap.h"

int main(void)
{
    TAP_CHECK((int)DEVVM_PCI_BAR0_REGION == VFIO_PCI_BAR0_REGION_INDEX &&
              (int)DEVVM_PCI_ROM_REGION == VFIO_PCI_ROM_REGION_INDEX &&
              (int)DEVVM_PCI_CONFIG_REGION == VFIO_PCI_CONFIG_REGION_INDEX &&
              (int)DEVVM_PCI_NUM_REGIONS == VFIO_PCI_NUM_REGIONS,
              "region indexes are vfio's");
    TAP_CHECK((int)DEVVM_PCI_INTX_IRQ == VFIO_PCI_INTX_IRQ_INDEX &&
              (int)DEVVM_PCI_MSI_IRQ == VFIO_PCI_MSI_IRQ_INDEX &&
              (int)DEVVM_PCI_MSIX_IRQ == VFIO_PCI_MSIX_IRQ_INDEX &&
              (int)DEVVM_PCI_NUM_IRQS == VFIO_PCI_NUM_IRQS,
              "IRQ indexes are vfio's");
    TAP_CHECK(DEVVM_REGION_F_READ == VFIO_REGION_INFO_FLAG_READ &&
              DEVVM_REGION_F_WRITE == VFIO_REGION_INFO_FLAG_WRITE &&
              DEVVM_REGION_F_MMAP == VFIO_REGION_INFO_FLAG_MMAP &&
              DEVVM_REGION_F_CAPS == VFIO_REGION_INFO_FLAG_CAPS &&
              DEVVM_REGION_CAP_SPARSE_MMAP ==
              VFIO_REGION_INFO_CAP_SPARSE_MMAP,
              "region flags are vfio's");
    TAP_CHECK(DEVVM_IRQ_INFO_F_EVENTFD == VFIO_IRQ_INFO_EVENTFD &&
              DEVVM_IRQ_INFO_F_MASKABLE == VFIO_IRQ_INFO_MASKABLE &&
              DEVVM_IRQ_INFO_F_AUTOMASKED == VFIO_IRQ_INFO_AUTOMASKED &&
              DEVVM_IRQ_SET_DATA_NONE == VFIO_IRQ_SET_DATA_NONE &&
              DEVVM_IRQ_SET_DATA_BOOL == VFIO_IRQ_SET_DATA_BOOL &&
              DEVVM_IRQ_SET_DATA_EVENTFD == VFIO_IRQ_SET_DATA_EVENTFD &&
              DEVVM_IRQ_SET_ACTION_MASK == VFIO_IRQ_SET_ACTION_MASK &&
              DEVVM_IRQ_SET_ACTION_UNMASK == VFIO_IRQ_SET_ACTION_UNMASK &&
              DEVVM_IRQ_SET_ACTION_TRIGGER == VFIO_IRQ_SET_ACTION_TRIGGER,
              "IRQ info and SET_IRQS flags are vfio's");
    TAP_CHECK(DEVVM_DEVICE_F_RESET == VFIO_DEVICE_FLAGS_RESET &&
              DEVVM_DEVICE_F_PCI == VFIO_DEVICE_FLAGS_PCI,
              "device flags are vfio's");
    return tap_done();
}
