/*
 * devvm-coordinator: the daemon's state and the functions its files
 * share (coordinator.c has the overview; docs/devvm/coordinator.rst the
 * user's guide).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef DEVVM_COORDINATOR_H
#define DEVVM_COORDINATOR_H

#include <errno.h>
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <string.h>
#include <unistd.h>

#include "cgroup.h"
#include "client-desc.h"
#include "control.h"
#include "coord.h"
#include "cores.h"
#include "needs.h"
#include "proc.h"

#define COORD_STOP_GRACE_MS     3000
#define COORD_POLL_MS           20
#define COORD_QMP_TIMEOUT_S     30
/* a device VM's QEMU needs this much beyond its guest RAM */
#define COORD_VM_OVERHEAD_MIB   256
/* recovery: restarts of a device VM (--max-restarts, --restart-backoff) */
#define COORD_MAX_RESTARTS      5
#define COORD_BACKOFF_MS        100
#define COORD_BACKOFF_MAX_MS    5000

typedef struct Coord Coord;
typedef struct Teardown Teardown;
typedef struct Request Request;
typedef struct Leftovers Leftovers;

/* A device type: an image and what its note says it needs. */
typedef struct CatalogEntry {
    char *image;
    struct devvm_needs needs;
} CatalogEntry;

typedef enum DevState {
    DEV_STARTING,
    DEV_READY,
    DEV_RESTARTING,             /* lost; a new QEMU behind the same gateway */
    DEV_FAILED,                 /* for good; resources kept until down */
} DevState;

/* A device VM and its gateway. */
typedef struct DeviceVM {
    Coord *co;
    char *id;                   /* "testdev-1" */
    const CatalogEntry *entry;
    char **options;             /* the device's KEY=VALUE, or NULL */
    char *options_key;          /* joined, to match for reuse */
    CoordPolicy policy;         /* EXCLUSIVE or SHARED */
    unsigned percent;
    int core;                   /* the exclusive core, or -1 */
    bool shared_taken;          /* percent counted in co->cores */
    CoordCgroup *cgroup;
    char *dir, *gw_dir, *sock;
    CoordProc *gateway, *vm;
    GDataInputStream *gw_out;
    GDataInputStream *gw_err;   /* the gateway's log lines */
    FILE *gw_log;               /* ... copied to gateway.log */
    GCancellable *cancel;
    DevState state;
    char *failure;
    /* recovery */
    unsigned generation;        /* the gateway's, at its last READY */
    unsigned failed_generation; /* the last it reported failed */
    unsigned restart_waits;     /* for that report, COORD_POLL_MS each */
    unsigned restarts;
    bool stopping_vm;           /* its QEMU was told to stop: restart */
    bool new_gateway;           /* the gateway died: restart it too */
    guint restart_timer;
    char *last_failure;         /* why it was lost last */
    char *last_failure_time;    /* when, ISO 8601 */
    gint64 lost_at;             /* monotonic, when last lost */
    double loss_window;         /* lost to READY again, s; < 0: none yet */
    unsigned users;             /* clients it serves or will serve */
    Request *req;               /* the request waiting for READY */
    guint poll_timer, ready_timer;
    gint64 launched, ready_at;
    Teardown *teardown;
} DeviceVM;

typedef enum ClientState {
    CLIENT_STARTING,
    CLIENT_RUNNING,
    CLIENT_EXITED,
} ClientState;

typedef struct Client {
    Coord *co;
    char *name;
    CoordClientDesc *desc;
    GPtrArray *devices;         /* DeviceVM *, one per desc->devices */
    char *dir, *qmp_path;
    const char *accel;
    CoordProc *qemu;
    ClientState state;
    double up_seconds;          /* up to running */
    Teardown *teardown;
    Request *req;               /* the up bringing it up */
    bool released;              /* its devices were let go */
} Client;

/* An "up" in progress. */
struct Request {
    int refs;
    Coord *co;
    char *name;                 /* the client's */
    CoordConn *conn;
    JsonNode *id;
    Client *client;
    GPtrArray *new_devices;     /* DeviceVM * started for it */
    unsigned pending;           /* of them, not READY yet */
    GPtrArray *reasons;         /* char * */
    bool finished;              /* replied (or failing) */
    gint64 started;
    GCancellable *cancel;
    /* the client's QMP readiness check */
    GSocketConnection *qmp;
    GDataInputStream *qmp_in;
    guint qmp_timer;
    gint64 qmp_deadline;
};

/* Stopping clients, then devices, then freeing their resources. */
struct Teardown {
    Coord *co;
    GPtrArray *clients;
    GPtrArray *devices;
    unsigned waiting;
    int phase;
    void (*done)(gpointer data);
    gpointer data;
};

struct Coord {
    char *run_dir;
    char *qemu, *gateway, *probe;
    const char *accel;          /* resolved: "kvm" or "tcg" */
    char *accel_reason;
    unsigned ready_timeout_s;
    unsigned max_restarts;      /* of one device VM */
    unsigned backoff_ms;        /* before its first restart, doubling */
    GPtrArray *catalog;         /* CatalogEntry * */
    CoordCores cores;
    CoordCgroups *cgroups;
    CoordControl *control;
    GPtrArray *clients;         /* Client * */
    GPtrArray *devices;         /* DeviceVM * */
    unsigned next_device;
    GMainLoop *loop;
    FILE *log;
    bool quitting;
    int lock_fd;
    Leftovers *leftovers;       /* of a coordinator killed here, or NULL */
};

/* catalog.c: the device types, from the images' needs notes */
bool catalog_add(Coord *co, const char *image, GError **errp);
const CatalogEntry *catalog_find(Coord *co, const char *type);
/* "testdev, testdev-shared": the type names, for messages */
char *catalog_types(Coord *co);

/* placement.c: move every thread of what the coordinator started to the
 * cores it may use now (after a reservation changed or a device VM is
 * READY) */
void coord_place_all(Coord *co);

/* device-vm.c */
/* A device VM record with a reservation to take (208), not started. */
DeviceVM *device_new(Coord *co, const CatalogEntry *e,
                     const CoordDeviceDesc *dd, CoordPolicy policy,
                     unsigned percent);
/* 210: start its gateway, then its QEMU; READY or failure is reported
 * to d->req. */
void device_launch(DeviceVM *d);
/* Free what it holds (core, quota, cgroup, directory); its processes
 * have exited. */
void device_destroy(DeviceVM *d);
/* "exclusive core 1", "shared, 20% of a core (cgroup CPU quota)" */
char *device_reservation_str(const DeviceVM *d);

/* client.c */
Client *client_find(Coord *co, const char *name);
/* Free a client whose QEMU has exited, and its directory. */
void client_destroy(Client *cl);
/* The exit callback of a client's QEMU. */
void client_proc_exited(CoordProc *p, gpointer opaque);

/* release.c */
/* Stop @clients, then @devices, free what they held, then @done(@data). */
void teardown_start(Coord *co, GPtrArray *clients, GPtrArray *devices,
                    void (*done)(gpointer), gpointer data);
/* A process of @td's current phase exited: go on when all have. */
void teardown_continue(Teardown *td);
/* Stop @cl and the device VMs no other client uses; then @done(@data). */
void client_release(Client *cl, void (*done)(gpointer), gpointer data);

/* up.c */
void cmd_up(Coord *co, CoordConn *conn, JsonObject *args, JsonNode *id);
/* 216: every device is READY: start the client, wait until it runs. */
void client_launch(Request *req);
/* Release all that @req reserved or started, then reply with every
 * reason (req->reasons). */
void request_fail(Request *req);
/* Add why the client's QEMU exited before it ran to req->reasons. */
void request_client_exited(Request *req);

/* status.c */
JsonNode *coord_status(Coord *co);
/* Write coord_status() to RUN/state.json. */
void coord_save_state(Coord *co);

/* leftovers.c: what a coordinator that did not stop cleanly left */
/* Find it (RUN/state.json, its processes and cgroups, RUN/clients/,
 * RUN/devices/); NULL when there is nothing. */
Leftovers *leftovers_find(Coord *co);
void leftovers_free(Leftovers *l);
/* "coordinator 123 did not stop cleanly (...): it left ..." */
char *leftovers_describe(const Leftovers *l);
/* As a JSON object, whether each process is alive checked now. */
void leftovers_add_json(Coord *co, const Leftovers *l, JsonBuilder *b);
/* Stop its processes, remove its cgroups and directories (blocks for
 * about 4 s at most). */
bool leftovers_cleanup(Coord *co, Leftovers *l, GError **errp);

/* coordinator.c: an event with string members (name, value, ..., NULL)
 * to every control connection */
void coord_event(Coord *co, const char *event, const char *first, ...)
    G_GNUC_NULL_TERMINATED;

#endif /* DEVVM_COORDINATOR_H */
