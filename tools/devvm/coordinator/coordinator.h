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
#include "qmp.h"

#define COORD_STOP_GRACE_MS     3000
#define COORD_POLL_MS           20
#define COORD_QMP_TIMEOUT_S     30
/* how long status waits for the clients' proxy counters */
#define COORD_PROXY_QUERY_MS    1000
/* detach: how long the guest may take to release the function */
#define COORD_UNPLUG_TIMEOUT_S  30
/* hotplug-slots: the root ports' ids and chassis numbers on q35 */
#define COORD_SLOT_ID           "devvm-hp"
#define COORD_SLOT_CHASSIS      0x40
/* the windows the firmware gives each (empty) root port: a device
 * plugged in later must fit its BARs into them */
#define COORD_SLOT_MEM          "8M"
#define COORD_SLOT_PREF64       "64M"
/* a device VM's QEMU needs this much beyond its guest RAM */
#define COORD_VM_OVERHEAD_MIB   256
/* recovery: restarts of a device VM (--max-restarts, --restart-backoff) */
#define COORD_MAX_RESTARTS      5
#define COORD_BACKOFF_MS        100
#define COORD_BACKOFF_MAX_MS    5000
/* READY this long, a device VM's restarts count from 0 again */
#define COORD_RESTART_WINDOW_S  600

typedef struct Coord Coord;
typedef struct Teardown Teardown;
typedef struct Request Request;
typedef struct Leftovers Leftovers;
typedef struct Unplug Unplug;

/* A device type: an image (or a process-mode binary) and what its note
 * says it needs. */
typedef struct CatalogEntry {
    char *image;
    bool process;               /* run as a host process, not a device VM */
    struct devvm_needs needs;
} CatalogEntry;

typedef enum DevState {
    DEV_STARTING,
    DEV_READY,
    DEV_RESTARTING,             /* lost; a new QEMU behind the same gateway */
    DEV_FAILED,                 /* for good; resources kept until down */
} DevState;

/* A device VM and its gateway, or (entry->process) a process-mode
 * device: then @vm is that process and there is no gateway. */
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
    unsigned restarts;          /* in all */
    unsigned recent_restarts;   /* since it was last READY for the
                                 * restart window: what max_restarts
                                 * and the backoff count */
    bool stopping_vm;           /* its QEMU was told to stop: restart */
    bool new_gateway;           /* the gateway died: restart it too */
    guint restart_timer;
    char *last_failure;         /* why it was lost last */
    char *last_failure_time;    /* when, ISO 8601 */
    gint64 lost_at;             /* monotonic, when last lost */
    double loss_window;         /* lost to READY again, s; < 0: none yet */
    unsigned users;             /* clients it serves or will serve */
    guint32 uid;                /* what its code runs as (--device-uids),
                                 * or 0: the coordinator's */
    Request *req;               /* the request waiting for READY */
    GPtrArray *sharers;         /* Request *: other ups waiting for it
                                 * to be READY, to share it */
    guint poll_timer, ready_timer;
    unsigned ready_ticks;       /* seconds of device_wait_ready() */
    gint64 launched, ready_at;
    Teardown *teardown;
} DeviceVM;

typedef enum ClientState {
    CLIENT_STARTING,
    CLIENT_RUNNING,
    CLIENT_EXITED,
} ClientState;

/* What the client's QEMU said last about one of its devvm-proxy devices
 * (DEVVM_PROXY_STATE_CHANGED). */
typedef struct ProxyEvent {
    char *state, *reason, *time;
    unsigned changes;
} ProxyEvent;

typedef struct Client {
    Coord *co;
    char *name;
    CoordClientDesc *desc;
    GPtrArray *devices;         /* DeviceVM *, one per desc->devices */
    char *dir;
    char *qmp_path;             /* QMP for people and tools */
    char *coord_qmp_path;       /* the coordinator's (qmp) */
    const char *accel;
    CoordProc *qemu;
    ClientState state;
    double up_seconds;          /* up to running */
    Teardown *teardown;
    Request *req;               /* the up (or attach) in progress */
    Unplug *unplug;             /* the detach in progress */
    bool released;              /* its devices were let go */
    CoordQmp *qmp;              /* open while it runs */
    JsonNode *proxies;          /* its last query-devvm-proxy, or NULL */
    GHashTable *proxy_events;   /* device name -> ProxyEvent * */
    char **slots;               /* q35: the device on each hot-plug root
                                 * port, or NULL (desc->hotplug_slots) */
} Client;

/* An "up" in progress. */
struct Request {
    int refs;
    Coord *co;
    char *name;                 /* the client's */
    char *what;                 /* "bring up client c1", for messages */
    CoordConn *conn;
    JsonNode *id;
    Client *client;
    CoordDeviceDesc *attach;    /* attach: the device (last in client's
                                 * desc->devices); NULL for up */
    GPtrArray *new_devices;     /* DeviceVM * started for it */
    unsigned pending;           /* of them, not READY yet */
    GPtrArray *reasons;         /* char * */
    DeviceVM *wait_for;         /* up: a shareable device VM that is
                                 * starting, to plan once it is not */
    bool finished;              /* replied (or failing) */
    gint64 started;
    /* up: the client's QMP readiness check */
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
    unsigned restart_window_s;  /* --restart-window */
    guint32 uid_first, uid_last; /* --device-uids, or 0 */
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
bool catalog_add(Coord *co, const char *image, bool process,
                 GError **errp);
/* The entry of @type in @mode (auto: the device VM's, else the
 * process's), or NULL. */
const CatalogEntry *catalog_find(Coord *co, const char *type,
                                 CoordMode mode);
/* "testdev, testdev (process)": the type names, for messages */
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
/* The cores @d may run on at all (its cpuset): its exclusive core, and
 * the shared cores unless it is a process on an exclusive core. */
void device_allowed_cpus(const DeviceVM *d, cpu_set_t *set);
/* The lowest uid of --device-uids no device has, or 0. */
guint32 device_pick_uid(Coord *co);
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
/* A client that exited by itself: stop and free the device VMs no other
 * client uses; the record and its directory stay until down. */
void client_release_devices(Client *cl);

/* client.c: its QMP connection, once it listens (events, counters) */
bool client_qmp_connect(Client *cl, GError **errp);
/* Read every running client's query-devvm-proxy (for status), then
 * @done(@data), after COORD_PROXY_QUERY_MS at most. */
void clients_query_proxies(Coord *co, void (*done)(gpointer), gpointer data);
void proxy_event_free(gpointer data);

/* up.c */
void cmd_up(Coord *co, CoordConn *conn, JsonObject *args, JsonNode *id);
/* Every device of @req is READY: 216 launch the client, or plug the
 * device an attach asked for. */
void request_devices_ready(Request *req);
Request *request_new(Coord *co, CoordConn *conn, JsonNode *id, Client *cl);
Request *request_ref(Request *req);
void request_unref(Request *req);
/* 204-208 for @dd, a device of @req's client: reuse or reserve; the
 * reasons why not go to req->reasons. */
void request_plan_device(Request *req, CoordDeviceDesc *dd);
/* @d is READY or gone: the ups that waited to share it plan again. */
void device_wake_sharers(DeviceVM *d);
/* The reply's object for device @i of @req's client. */
void request_add_device(JsonBuilder *b, Request *req, guint i);
/* Add a reason when @req's new device VMs (and, for up, the client) do
 * not fit in the host's available memory. */
void request_check_memory(Request *req);
/* 210: launch the device VMs @req reserved (or go on when there are
 * none). */
void request_launch_devices(Request *req);
/* Release all that @req reserved or started, then reply with every
 * reason (req->reasons). */
void request_fail(Request *req);
/* Add why the client's QEMU exited before it ran to req->reasons. */
void request_client_exited(Request *req);

/* hotplug.c: attach (Figure 2's flow for one device, then device_add)
 * and detach (device_del, then release) */
void cmd_attach(Coord *co, CoordConn *conn, JsonObject *args, JsonNode *id);
void cmd_detach(Coord *co, CoordConn *conn, JsonObject *args, JsonNode *id);
/* 212 for an attach: every device it needs is READY; plug it. */
void attach_plug(Request *req);
/* A DEVICE_DELETED event from @cl's QEMU. */
void client_device_deleted(Client *cl, const char *id);
/* @cl is going away: fail its detach in progress. */
void client_unplug_abort(Client *cl, const char *why);

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
