/*
 * Host CPU placement of vCPU threads ("vcpu-affinity" accel property)
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef ACCEL_VCPU_AFFINITY_H
#define ACCEL_VCPU_AFFINITY_H

#include "qom/object.h"

/*
 * accel_vcpu_affinity_class_init:
 * Add the "vcpu-affinity" property to an accelerator class.  The value is
 * validated when it is set, so a bad list is an error at startup.
 */
void accel_vcpu_affinity_class_init(ObjectClass *oc);

/*
 * accel_vcpu_affinity_apply:
 * Called on a vCPU thread as it starts; pins the calling thread to the
 * host CPUs configured for @cpu, if any.
 */
void accel_vcpu_affinity_apply(CPUState *cpu);

#endif /* ACCEL_VCPU_AFFINITY_H */
