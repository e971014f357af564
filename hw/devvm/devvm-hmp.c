/*
 * devvm-proxy: "info devvm-proxy", the human monitor's view of
 * query-devvm-proxy.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "monitor/hmp.h"
#include "monitor/monitor.h"
#include "qapi/error.h"
#include "qapi/qapi-commands-devvm.h"

void hmp_info_devvm_proxy(Monitor *mon, const QDict *qdict)
{
    Error *err = NULL;
    DevvmProxyInfoList *list = qmp_query_devvm_proxy(&err), *e;

    if (hmp_handle_error(mon, err)) {
        return;
    }
    if (!list) {
        monitor_printf(mon, "No devvm-proxy device\n");
        return;
    }
    for (e = list; e; e = e->next) {
        DevvmProxyInfo *info = e->value;

        monitor_printf(mon, "%s (%s): %s%s%s\n", info->id ?: "<no id>",
                       info->qom_path,
                       DevvmProxyLinkState_str(info->state),
                       info->reason ? ": " : "", info->reason ?: "");
        monitor_printf(mon, "  peer %s, %s, device generation %" PRIu32
                       "\n", info->socket,
                       !info->ring ? "socket only" :
                       info->events ? "ring transport with events" :
                                      "ring transport",
                       info->generation);
        monitor_printf(mon, "  reads %" PRIu64 ", writes %" PRIu64
                       ", DMA bytes %" PRIu64 ", interrupts %" PRIu64
                       ", timeouts %" PRIu64 ", failures %" PRIu64 "\n",
                       info->reads, info->writes, info->dma_bytes,
                       info->irqs, info->timeouts, info->failures);
        if (info->kvm_irqfds) {
            monitor_printf(mon, "  %" PRIu32 " vectors delivered through "
                           "KVM irqfds\n", info->kvm_irqfds);
        }
    }
    qapi_free_DevvmProxyInfoList(list);
}
