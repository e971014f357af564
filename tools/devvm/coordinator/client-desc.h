/*
 * devvm-coordinator: the description of a client VM and the devices it
 * needs, read with GKeyFile.  docs/devvm/coordinator.rst has the schema
 * and a complete example.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef DEVVM_COORD_CLIENT_DESC_H
#define DEVVM_COORD_CLIENT_DESC_H

#include <glib.h>
#include <stdbool.h>

#define COORD_NAME_MAX  32      /* client and device names, without NUL */

typedef enum CoordAccel {
    COORD_ACCEL_DEFAULT,        /* the coordinator's --accel */
    COORD_ACCEL_AUTO,           /* KVM where devvm-kvm-probe says usable */
    COORD_ACCEL_KVM,
    COORD_ACCEL_TCG,
} CoordAccel;

typedef enum CoordMode {
    COORD_MODE_AUTO,            /* a device VM if the catalog has one */
    COORD_MODE_VM,              /* in a device VM */
    COORD_MODE_PROCESS,         /* as a host process */
} CoordMode;

typedef enum CoordPolicy {
    COORD_POLICY_AUTO,          /* what the device image declares */
    COORD_POLICY_EXCLUSIVE,     /* a host core of its own */
    COORD_POLICY_SHARED,        /* a CPU quota of @percent of one core */
} CoordPolicy;

/* A [device NAME] group. */
typedef struct CoordDeviceDesc {
    char *name;                 /* the group's NAME: the proxy's id */
    char *type;                 /* a catalog type (a needs note's name) */
    char **options;             /* KEY=VALUE for the device's param, or
                                 * NULL */
    CoordMode mode;
    CoordPolicy policy;
    unsigned percent;           /* COORD_POLICY_SHARED: 1..100 */
    int line;                   /* of the group header, for messages */
} CoordDeviceDesc;

typedef struct CoordClientDesc {
    char *path;                 /* the file, as named */
    char *name;
    guint64 memory_mib;
    unsigned vcpus;
    char *machine;              /* "pc" or "q35" */
    unsigned hotplug_slots;     /* q35: root ports for attach */
    CoordAccel accel;
    char *kernel, *initrd, *append;     /* absolute paths; NULL if unset */
    char **extra_args;          /* extra QEMU arguments, or NULL */
    GPtrArray *devices;         /* CoordDeviceDesc *, in file order */
} CoordClientDesc;

/*
 * Parse @text (@len bytes; -1: NUL-terminated) read from @path: relative
 * paths in it are relative to @path's directory.  Every error names
 * @path, the line where one can be found, the group and key, and what
 * was expected.  Returns NULL with @errp set.
 */
CoordClientDesc *coord_client_desc_parse(const char *text, gssize len,
                                         const char *path, GError **errp);
/* Read and parse the file at @path. */
CoordClientDesc *coord_client_desc_load(const char *path, GError **errp);
void coord_client_desc_free(CoordClientDesc *desc);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CoordClientDesc, coord_client_desc_free)

/* A client or device name: [A-Za-z0-9_-], 1 to COORD_NAME_MAX bytes. */
bool coord_name_valid(const char *name);
/*
 * A reservation, "exclusive", "shared:PERCENT" or "auto", into
 * @policy and @percent; false if @text is none of these.
 */
#define COORD_POLICY_EXPECTED "exclusive, shared:PERCENT (1 to 100: " \
    "the share of one core) or auto (what the device image declares)"
bool coord_policy_parse(const char *text, CoordPolicy *policy,
                        unsigned *percent);
/* The device @dev's options, KEY=VALUE without blanks: the first that
 * is not, or NULL. */
const char *coord_options_check(char **options);
void coord_device_desc_free(CoordDeviceDesc *dev);
/* "auto", "vm" or "process" into @mode; false if it is none of these */
bool coord_mode_parse(const char *text, CoordMode *mode);
#define COORD_MODE_EXPECTED "vm (a device VM), process (a host process) " \
    "or auto (a device VM when the catalog has one)"
/* "exclusive", "shared:20" or "auto" */
char *coord_policy_str(CoordPolicy policy, unsigned percent);

#endif /* DEVVM_COORD_CLIENT_DESC_H */
