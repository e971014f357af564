/*
 * Host CPU placement of vCPU threads ("vcpu-affinity" accel property)
 *
 *   -accel tcg,vcpu-affinity=1            every vCPU thread on host CPU 1
 *   -accel kvm,vcpu-affinity=2/3          vCPU 0 on CPU 2, vCPU 1 (and up) on 3
 *   -accel tcg,vcpu-affinity=0-1,,4/5     vCPU 0 on CPUs 0, 1 and 4; others on 5
 *
 * Lists are separated by '/'; the n-th applies to vCPU n and the last one
 * to every vCPU past it.  Each list is a Linux CPU list ("0-3,8"; a comma
 * is doubled on the command line).  The value is checked when it is set:
 * every CPU must exist and be in this process's allowed set.  The thread
 * pins itself when it starts (cpu_thread_signal_created()), so vCPUs
 * plugged later are placed too.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/bitmap.h"
#include "qemu/error-report.h"
#include "qemu/thread.h"
#include "qemu/accel.h"
#include "accel/accel-ops.h"
#include "accel/vcpu-affinity.h"
#include "hw/core/cpu.h"
#include "trace.h"

struct AccelVcpuAffinity {
    char *value;          /* the property as given */
    unsigned long nbits;  /* bits in each bitmap: configured host CPUs */
    GPtrArray *bitmaps;   /* one unsigned long bitmap per list */
    GPtrArray *lists;     /* the text of each list, for messages */
};

static void vcpu_affinity_free(struct AccelVcpuAffinity *a)
{
    if (a) {
        g_free(a->value);
        g_ptr_array_free(a->bitmaps, true);
        g_ptr_array_free(a->lists, true);
        g_free(a);
    }
}

/* Render @bitmap as a Linux CPU list ("0-3,8"). */
static char *vcpu_affinity_format(const unsigned long *bitmap,
                                  unsigned long nbits)
{
    GString *s = g_string_new(NULL);
    unsigned long first = find_first_bit(bitmap, nbits);

    while (first < nbits) {
        unsigned long last = find_next_zero_bit(bitmap, nbits, first) - 1;

        g_string_append_printf(s, "%s%lu", s->len ? "," : "", first);
        if (last > first) {
            g_string_append_printf(s, "-%lu", last);
        }
        first = find_next_bit(bitmap, nbits, last + 1);
    }
    return g_string_free(s, false);
}

static bool vcpu_affinity_parse_cpu(const char *s, const char **end,
                                    unsigned long *cpu)
{
    char *e;
    unsigned long long v;

    if (!g_ascii_isdigit(*s)) {
        return false;
    }
    errno = 0;
    v = strtoull(s, &e, 10);
    if (errno || v > INT_MAX) {
        return false;
    }
    *cpu = v;
    *end = e;
    return true;
}

/* Parse one CPU list into a new bitmap of @nbits bits. */
static unsigned long *vcpu_affinity_parse_list(const char *list,
                                               unsigned long nbits,
                                               const unsigned long *allowed,
                                               Error **errp)
{
    g_autofree unsigned long *bitmap = bitmap_new(nbits);
    const char *p = list;

    if (!*p) {
        error_setg(errp, "vcpu-affinity: empty CPU list");
        return NULL;
    }
    for (;;) {
        unsigned long lo, hi, cpu;

        if (!vcpu_affinity_parse_cpu(p, &p, &lo)) {
            error_setg(errp, "vcpu-affinity: '%s' is not a CPU list "
                       "(expected for example 1, 0-3,8 or 1/2 for one "
                       "list per vCPU)", list);
            return NULL;
        }
        hi = lo;
        if (*p == '-' && !vcpu_affinity_parse_cpu(p + 1, &p, &hi)) {
            error_setg(errp, "vcpu-affinity: bad range in '%s'", list);
            return NULL;
        }
        if (hi < lo) {
            error_setg(errp, "vcpu-affinity: range %lu-%lu in '%s' is "
                       "backwards", lo, hi, list);
            return NULL;
        }
        for (cpu = lo; cpu <= hi; cpu++) {
            if (cpu >= nbits) {
                error_setg(errp, "vcpu-affinity: host CPU %lu does not "
                           "exist (this host has CPUs 0-%lu)", cpu, nbits - 1);
                return NULL;
            }
            if (!test_bit(cpu, allowed)) {
                g_autofree char *ok = vcpu_affinity_format(allowed, nbits);

                error_setg(errp, "vcpu-affinity: host CPU %lu is not one "
                           "this process may run on (allowed: %s)", cpu, ok);
                return NULL;
            }
            set_bit(cpu, bitmap);
        }
        if (*p == '\0') {
            break;
        }
        if (*p != ',') {
            error_setg(errp, "vcpu-affinity: unexpected '%c' in '%s'",
                       *p, list);
            return NULL;
        }
        p++;
    }
    return g_steal_pointer(&bitmap);
}

/* The host CPUs this process may run on, as a bitmap of @nbits bits. */
static unsigned long *vcpu_affinity_allowed(unsigned long nbits, Error **errp)
{
    QemuThread self;
    unsigned long *cur, cur_nbits, *allowed;
    int err;

    qemu_thread_get_self(&self);
    err = qemu_thread_get_affinity(&self, &cur, &cur_nbits);
    if (err) {
        error_setg_errno(errp, err < 0 ? -err : err,
                         "vcpu-affinity: cannot read this process's CPU "
                         "affinity");
        return NULL;
    }
    allowed = bitmap_new(nbits);
    bitmap_copy(allowed, cur, MIN(nbits, cur_nbits));
    g_free(cur);
    return allowed;
}

static struct AccelVcpuAffinity *vcpu_affinity_parse(const char *value,
                                                     Error **errp)
{
    g_autofree unsigned long *allowed = NULL;
    g_auto(GStrv) lists = NULL;
    struct AccelVcpuAffinity *a;
    long conf = sysconf(_SC_NPROCESSORS_CONF);
    int i;

    if (conf < 1) {
        error_setg(errp, "vcpu-affinity: cannot count the host's CPUs");
        return NULL;
    }
    allowed = vcpu_affinity_allowed(conf, errp);
    if (!allowed) {
        return NULL;
    }

    a = g_new0(struct AccelVcpuAffinity, 1);
    a->value = g_strdup(value);
    a->nbits = conf;
    a->bitmaps = g_ptr_array_new_with_free_func(g_free);
    a->lists = g_ptr_array_new_with_free_func(g_free);

    lists = g_strsplit(value, "/", -1);
    for (i = 0; lists[i]; i++) {
        unsigned long *bitmap;

        bitmap = vcpu_affinity_parse_list(lists[i], a->nbits, allowed, errp);
        if (!bitmap) {
            vcpu_affinity_free(a);
            return NULL;
        }
        g_ptr_array_add(a->bitmaps, bitmap);
        g_ptr_array_add(a->lists, vcpu_affinity_format(bitmap, a->nbits));
    }
    return a;
}

static char *vcpu_affinity_get(Object *obj, Error **errp)
{
    AccelState *as = ACCEL(obj);

    return g_strdup(as->vcpu_affinity ? as->vcpu_affinity->value : "");
}

static void vcpu_affinity_set(Object *obj, const char *value, Error **errp)
{
    AccelState *as = ACCEL(obj);
    struct AccelVcpuAffinity *a = NULL;

    if (*value) {
        a = vcpu_affinity_parse(value, errp);
        if (!a) {
            return;
        }
    }
    vcpu_affinity_free(as->vcpu_affinity);
    as->vcpu_affinity = a;
}

void accel_vcpu_affinity_class_init(ObjectClass *oc)
{
    object_class_property_add_str(oc, "vcpu-affinity",
                                  vcpu_affinity_get, vcpu_affinity_set);
    object_class_property_set_description(oc, "vcpu-affinity",
        "Host CPUs for vCPU threads: a CPU list (e.g. 0-3,8), "
        "or one list per vCPU separated by '/'");
}

void accel_vcpu_affinity_apply(CPUState *cpu)
{
    AccelState *as = current_accel();
    struct AccelVcpuAffinity *a = as ? as->vcpu_affinity : NULL;
    QemuThread self;
    unsigned int i;
    int err;

    if (!a) {
        return;
    }
    i = MIN((unsigned int)cpu->cpu_index, a->bitmaps->len - 1);
    qemu_thread_get_self(&self);
    err = qemu_thread_set_affinity(&self, g_ptr_array_index(a->bitmaps, i),
                                   a->nbits);
    if (err) {
        warn_report("vcpu-affinity: could not pin vCPU %d to host CPUs "
                    "%s: %s", cpu->cpu_index,
                    (char *)g_ptr_array_index(a->lists, i),
                    strerror(err < 0 ? -err : err));
        return;
    }
    trace_accel_vcpu_affinity_apply(cpu->cpu_index, qemu_get_thread_id(),
                                    g_ptr_array_index(a->lists, i));
}
