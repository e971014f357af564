/*
 * devvm-coordinator: host cores (cores.h).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <errno.h>
#include <gio/gio.h>

#include "cores.h"

bool coord_cores_init(CoordCores *c, unsigned keep, GError **errp)
{
    memset(c, 0, sizeof(*c));
    if (sched_getaffinity(0, sizeof(c->host), &c->host) < 0) {
        g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(errno),
                    "cannot read this process's CPU affinity: %s",
                    g_strerror(errno));
        return false;
    }
    if (keep < 1 || keep > (unsigned)CPU_COUNT(&c->host)) {
        g_autofree char *list = coord_cpu_list(&c->host);

        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "--keep-cores %u: expected 1 to %d (the coordinator may "
                    "use CPUs %s)", keep, CPU_COUNT(&c->host), list);
        return false;
    }
    c->keep = keep;
    return true;
}

static unsigned cores_free(const CoordCores *c)
{
    return CPU_COUNT(&c->host) - CPU_COUNT(&c->exclusive);
}

bool coord_cores_take_exclusive(CoordCores *c, const char *who, int *cpu,
                                GError **errp)
{
    unsigned free = cores_free(c);
    int i;

    if (free <= c->keep) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_NO_SPACE,
                    "%s needs an exclusive core; %u of %d cores %s free and "
                    "%u %s kept for clients", who, free, CPU_COUNT(&c->host),
                    free == 1 ? "is" : "are", c->keep,
                    c->keep == 1 ? "is" : "are");
        return false;
    }
    /* the shared quotas must still fit on one core fewer */
    if (c->shared_percent > (free - 1) * 100) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_NO_SPACE,
                    "%s needs an exclusive core; the %u shared cores carry "
                    "CPU quotas of %u%%, which would not fit on %u",
                    who, free, c->shared_percent, free - 1);
        return false;
    }
    for (i = CPU_SETSIZE - 1; i >= 0; i--) {
        if (CPU_ISSET(i, &c->host) && !CPU_ISSET(i, &c->exclusive)) {
            break;
        }
    }
    CPU_SET(i, &c->exclusive);
    *cpu = i;
    return true;
}

void coord_cores_put_exclusive(CoordCores *c, int cpu)
{
    CPU_CLR(cpu, &c->exclusive);
}

bool coord_cores_take_shared(CoordCores *c, const char *who,
                             unsigned percent, GError **errp)
{
    unsigned cap = cores_free(c) * 100;

    if (c->shared_percent + percent > cap) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_NO_SPACE,
                    "%s needs %u%% of a core; the %u shared cores have "
                    "%u%% of %u%% left", who, percent, cores_free(c),
                    cap - c->shared_percent, cap);
        return false;
    }
    c->shared_percent += percent;
    return true;
}

void coord_cores_put_shared(CoordCores *c, unsigned percent)
{
    c->shared_percent -= MIN(percent, c->shared_percent);
}

void coord_cores_shared_set(const CoordCores *c, cpu_set_t *set)
{
    cpu_set_t excl = c->exclusive;

    CPU_XOR(set, &c->host, &excl);
    CPU_AND(set, set, &c->host);
}

char *coord_cpu_list(const cpu_set_t *set)
{
    GString *s = g_string_new(NULL);
    int i = 0;

    while (i < CPU_SETSIZE) {
        int last;

        if (!CPU_ISSET(i, set)) {
            i++;
            continue;
        }
        for (last = i; last + 1 < CPU_SETSIZE && CPU_ISSET(last + 1, set);
             last++) {
            continue;
        }
        g_string_append_printf(s, "%s%d", s->len ? "," : "", i);
        if (last > i) {
            g_string_append_printf(s, "-%d", last);
        }
        i = last + 1;
    }
    return g_string_free(s, false);
}
