/*
 * devvm-ctl: the command-line client of devvm-coordinator.
 *
 *   devvm-ctl [--run-dir DIR | --socket PATH] [--json] [--timeout S]
 *             COMMAND [ARG]
 *
 *   up FILE      bring up the client VM FILE describes (with its devices)
 *   down NAME    stop client NAME and release what it used
 *   attach CLIENT NAME TYPE [--mode M] [--reservation R]
 *          [--option KEY=VALUE]...
 *                give running client CLIENT a device NAME of TYPE
 *                (hot-plug)
 *   detach CLIENT NAME
 *                unplug device NAME from client CLIENT, release it
 *   status       clients, device VMs, reservations, processes
 *   cleanup      stop and remove what a killed coordinator left
 *   logs [NAME]  the log files of client or device VM NAME (none: the
 *                coordinator's)
 *
 * --json prints the coordinator's reply as JSON.  Exit status: 0 done,
 * 1 the coordinator refused or failed (its message on stderr), 2 bad
 * usage or no coordinator.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <getopt.h>
#include <gio/gio.h>
#include <gio/gunixsocketaddress.h>
#include <json-glib/json-glib.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "coord.h"

typedef struct Ctl {
    GSocketConnection *conn;
    GDataInputStream *in;
    bool json;
    bool progress;              /* print events */
} Ctl;

static JsonObject *ctl_read(Ctl *ctl, JsonParser *parser, GError **errp)
{
    g_autofree char *line = NULL;
    JsonNode *root;

    line = g_data_input_stream_read_line(ctl->in, NULL, NULL, errp);
    if (!line) {
        if (errp && !*errp) {
            g_set_error(errp, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED,
                        "the coordinator closed the connection");
        }
        return NULL;
    }
    if (!json_parser_load_from_data(parser, line, -1, errp)) {
        return NULL;
    }
    root = json_parser_get_root(parser);
    if (!JSON_NODE_HOLDS_OBJECT(root)) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                    "the coordinator sent: %s", line);
        return NULL;
    }
    return json_node_get_object(root);
}

static void ctl_print_event(JsonObject *obj)
{
    const char *event = json_object_get_string_member(obj, "event");
    JsonObject *d = json_object_get_object_member(obj, "data");
    const char *(*get)(JsonObject *, const char *, const char *) =
        json_object_get_string_member_with_default;
    bool process = d && !strcmp(get(d, "mode", "vm"), "process");

    if (!strcmp(event, "DEVICE_STARTING")) {
        printf("devvm-ctl: device%s %s (%s) starting%s on %s\n",
               process ? "" : " VM", get(d, "device-vm", "?"),
               get(d, "type", "?"), process ? " as a host process" : "",
               get(d, "reservation", "?"));
    } else if (!strcmp(event, "DEVICE_READY")) {
        printf("devvm-ctl: device%s %s READY %s s after its %s started\n",
               process ? "" : " VM", get(d, "device-vm", "?"),
               get(d, "seconds", "?"), process ? "process" : "QEMU");
    } else if (!strcmp(event, "DEVICE_FAILED")) {
        printf("devvm-ctl: device VM %s failed: %s\n",
               get(d, "device-vm", "?"), get(d, "reason", "?"));
    } else if (!strcmp(event, "DEVICE_STOPPED")) {
        printf("devvm-ctl: device VM %s released\n",
               get(d, "device-vm", "?"));
    } else if (!strcmp(event, "CLIENT_STARTING")) {
        printf("devvm-ctl: client %s starting\n", get(d, "client", "?"));
    } else if (!strcmp(event, "CLIENT_RUNNING")) {
        printf("devvm-ctl: client %s running %s s after up\n",
               get(d, "client", "?"), get(d, "seconds", "?"));
    } else if (!strcmp(event, "CLIENT_EXITED")) {
        printf("devvm-ctl: client %s %s\n", get(d, "client", "?"),
               get(d, "how", "?"));
    } else if (!strcmp(event, "DEVICE_ATTACHED")) {
        printf("devvm-ctl: client %s: device %s plugged in %s s after "
               "attach\n", get(d, "client", "?"), get(d, "device", "?"),
               get(d, "seconds", "?"));
    } else if (!strcmp(event, "DEVICE_DETACHED")) {
        printf("devvm-ctl: client %s: the guest let go of device %s\n",
               get(d, "client", "?"), get(d, "device", "?"));
    } else if (!strcmp(event, "PROXY_STATE_CHANGED")) {
        printf("devvm-ctl: client %s: device %s %s (%s)\n",
               get(d, "client", "?"), get(d, "device", "?"),
               get(d, "state", "?"), get(d, "reason", "?"));
    }
    fflush(stdout);
}

/*
 * Send @cmd with @args (NULL: none); return the reply's "return" member
 * (owned by @parser) or NULL with the error printed.
 */
static JsonNode *ctl_call(Ctl *ctl, JsonParser *parser, const char *cmd,
                          JsonNode *args)
{
    g_autoptr(JsonBuilder) b = json_builder_new();
    g_autoptr(JsonNode) root = NULL;
    g_autofree char *json = NULL;
    g_autofree char *text = NULL;
    g_autoptr(GError) err = NULL;
    GOutputStream *out = g_io_stream_get_output_stream(
        G_IO_STREAM(ctl->conn));

    json_builder_begin_object(b);
    json_builder_set_member_name(b, "execute");
    json_builder_add_string_value(b, cmd);
    if (args) {
        json_builder_set_member_name(b, "arguments");
        json_builder_add_value(b, args);
    }
    json_builder_end_object(b);
    root = json_builder_get_root(b);
    json = json_to_string(root, false);
    text = g_strconcat(json, "\n", NULL);
    if (!g_output_stream_write_all(out, text, strlen(text), NULL, NULL,
                                   &err)) {
        g_printerr("devvm-ctl: %s\n", err->message);
        return NULL;
    }
    for (;;) {
        JsonObject *obj = ctl_read(ctl, parser, &err);

        if (!obj) {
            g_printerr("devvm-ctl: %s\n", err->message);
            return NULL;
        }
        if (json_object_has_member(obj, "event")) {
            if (ctl->progress && !ctl->json) {
                ctl_print_event(obj);
            }
            continue;
        }
        if (json_object_has_member(obj, "error")) {
            JsonObject *e = json_object_get_object_member(obj, "error");

            g_printerr("devvm-ctl: %s\n", e ?
                       json_object_get_string_member_with_default(
                           e, "desc", "?") : "?");
            return NULL;
        }
        if (json_object_has_member(obj, "return")) {
            return json_object_get_member(obj, "return");
        }
    }
}

static bool ctl_connect(Ctl *ctl, const char *path, guint timeout_s)
{
    g_autoptr(GSocketClient) sc = g_socket_client_new();
    g_autoptr(GSocketAddress) addr = g_unix_socket_address_new(path);
    g_autoptr(GError) err = NULL;
    g_autoptr(JsonParser) parser = json_parser_new();
    JsonObject *greeting;

    g_socket_client_set_timeout(sc, timeout_s);
    ctl->conn = g_socket_client_connect(sc, G_SOCKET_CONNECTABLE(addr), NULL,
                                        &err);
    if (!ctl->conn) {
        g_printerr("devvm-ctl: cannot reach the coordinator at %s: %s\n",
                   path, err->message);
        return false;
    }
    ctl->in = g_data_input_stream_new(
        g_io_stream_get_input_stream(G_IO_STREAM(ctl->conn)));
    greeting = ctl_read(ctl, parser, &err);
    if (!greeting) {
        g_printerr("devvm-ctl: %s: %s\n", path, err->message);
        return false;
    }
    if (json_object_has_member(greeting, "error")) {
        JsonObject *e = json_object_get_object_member(greeting, "error");

        g_printerr("devvm-ctl: %s: %s\n", path,
                   e ? json_object_get_string_member_with_default(
                           e, "desc", "?") : "?");
        return false;
    }
    return true;
}

/* A device of up's or attach's reply: where it runs. */
static void ctl_print_device(JsonObject *d)
{
    printf("devvm-ctl: device %s: %s device %s %s on %s, socket %s\n",
           json_object_get_string_member(d, "name"),
           json_object_get_boolean_member(d, "reused") ? "reused" : "new",
           strcmp(json_object_get_string_member_with_default(d, "mode", "vm"),
                  "process") ? "VM" : "process",
           json_object_get_string_member(d, "device-vm"),
           json_object_get_string_member(d, "reservation"),
           json_object_get_string_member(d, "socket"));
}

static void ctl_print_json(JsonNode *node)
{
    g_autofree char *text = json_to_string(node, true);

    printf("%s\n", text);
}

/* The CPU lists of @proc's threads: vCPU threads and the others. */
static void proc_cpus(JsonObject *proc, char **vcpu, char **others)
{
    JsonArray *threads = json_object_has_member(proc, "threads") ?
        json_object_get_array_member(proc, "threads") : NULL;
    g_autoptr(GPtrArray) v = g_ptr_array_new();
    g_autoptr(GPtrArray) o = g_ptr_array_new();
    guint i;

    for (i = 0; threads && i < json_array_get_length(threads); i++) {
        JsonObject *t = json_array_get_object_element(threads, i);
        const char *name = json_object_get_string_member(t, "name");
        const char *cpus = json_object_get_string_member(t, "cpus");
        GPtrArray *set = g_str_has_prefix(name, "CPU ") ? v : o;

        if (!g_ptr_array_find_with_equal_func(set, cpus, g_str_equal,
                                              NULL)) {
            g_ptr_array_add(set, (char *)cpus);
        }
    }
    g_ptr_array_add(v, NULL);
    g_ptr_array_add(o, NULL);
    *vcpu = v->len > 1 ? g_strjoinv(" ", (char **)v->pdata) : g_strdup("-");
    *others = o->len > 1 ? g_strjoinv(" ", (char **)o->pdata)
                         : g_strdup("-");
}

static char *proc_pid_str(JsonObject *proc)
{
    if (json_object_get_boolean_member(proc, "running")) {
        return g_strdup_printf("%" G_GINT64_FORMAT,
                               json_object_get_int_member(proc, "pid"));
    }
    return g_strdup("-");
}

static char *proc_uptime_str(JsonObject *proc)
{
    if (json_object_has_member(proc, "uptime")) {
        return g_strdup_printf("%.1fs", json_object_get_double_member(
                                   proc, "uptime"));
    }
    return g_strdup(json_object_get_string_member_with_default(
                        proc, "exit", "-"));
}

/* What a killed coordinator left (status, cleanup). */
static void ctl_print_leftovers(JsonObject *l, const char *verb)
{
    JsonArray *procs = json_object_get_array_member(l, "processes");
    const char *const lists[] = { "cgroups", "directories" };
    guint i, j;

    printf("coordinator %" G_GINT64_FORMAT " did not stop cleanly "
           "(state.json of %s); %s:\n",
           json_object_get_int_member(l, "coordinator-pid"),
           json_object_get_string_member(l, "saved"), verb);
    for (i = 0; i < json_array_get_length(procs); i++) {
        JsonObject *p = json_array_get_object_element(procs, i);

        printf("  process %" G_GINT64_FORMAT " (%s)%s\n",
               json_object_get_int_member(p, "pid"),
               json_object_get_string_member(p, "what"),
               json_object_get_boolean_member(p, "alive") ? "" : ", gone");
    }
    for (j = 0; j < G_N_ELEMENTS(lists); j++) {
        JsonArray *a = json_object_get_array_member(l, lists[j]);

        for (i = 0; i < json_array_get_length(a); i++) {
            printf("  %s %s\n", j ? "directory" : "cgroup",
                   json_array_get_string_element(a, i));
        }
    }
}

/* The clients' devices as their QEMU sees them: link, counters, last
 * event. */
static void ctl_print_proxies(JsonArray *clients)
{
    guint i, j;

    printf("\n%-12s %-12s %-10s %-9s %9s %9s %11s %7s\n", "CLIENT",
           "DEVICE", "LINK", "GEN", "READS", "WRITES", "DMA BYTES", "IRQS");
    for (i = 0; i < json_array_get_length(clients); i++) {
        JsonObject *c = json_array_get_object_element(clients, i);
        JsonArray *cd = json_object_get_array_member(c, "devices");

        for (j = 0; j < json_array_get_length(cd); j++) {
            JsonObject *d = json_array_get_object_element(cd, j);
            JsonObject *p = json_object_has_member(d, "proxy") ?
                json_object_get_object_member(d, "proxy") : NULL;
            const char *name = json_object_get_string_member(d, "name");
            const char *client = json_object_get_string_member(c, "name");

            if (!json_object_get_boolean_member_with_default(d, "plugged",
                                                             true)) {
                printf("%-12s %-12s %s\n", client, name, "(being attached)");
            } else if (!p) {
                printf("%-12s %-12s %s\n", client, name,
                       "(no counters yet)");
            } else {
                printf("%-12s %-12s %-10s %-9" G_GINT64_FORMAT " %9"
                       G_GINT64_FORMAT " %9" G_GINT64_FORMAT " %11"
                       G_GINT64_FORMAT " %7" G_GINT64_FORMAT "\n",
                       client, name, json_object_get_string_member(p, "state"),
                       json_object_get_int_member(p, "generation"),
                       json_object_get_int_member(p, "reads"),
                       json_object_get_int_member(p, "writes"),
                       json_object_get_int_member(p, "dma-bytes"),
                       json_object_get_int_member(p, "irqs"));
            }
            if (json_object_has_member(d, "last-event")) {
                JsonObject *e = json_object_get_object_member(d,
                                                              "last-event");

                printf("%-12s %-12s last event %s: %s (%s), %" G_GINT64_FORMAT
                       " change%s\n", "", "",
                       json_object_get_string_member(e, "time"),
                       json_object_get_string_member(e, "state"),
                       json_object_get_string_member(e, "reason"),
                       json_object_get_int_member(e, "changes"),
                       json_object_get_int_member(e, "changes") == 1 ? ""
                                                                     : "s");
            }
        }
    }
}

static void ctl_print_status(JsonObject *st)
{
    JsonObject *cores = json_object_get_object_member(st, "cores");
    JsonArray *clients = json_object_get_array_member(st, "clients");
    JsonArray *devs = json_object_get_array_member(st, "device-vms");
    guint i, j;

    printf("coordinator %" G_GINT64_FORMAT " in %s; accelerator %s (%s)\n",
           json_object_get_int_member(st, "pid"),
           json_object_get_string_member(st, "run-dir"),
           json_object_get_string_member(st, "accel"),
           json_object_get_string_member(st, "accel-reason"));
    printf("cores: host %s, exclusive %s, shared %s (%" G_GINT64_FORMAT
           " kept for clients, %" G_GINT64_FORMAT "%% in CPU quotas)\n",
           json_object_get_string_member(cores, "host"),
           *json_object_get_string_member(cores, "exclusive") ?
           json_object_get_string_member(cores, "exclusive") : "none",
           json_object_get_string_member(cores, "shared"),
           json_object_get_int_member(cores, "kept-for-clients"),
           json_object_get_int_member(cores, "shared-quota-percent"));
    printf("cgroups: %s\n", json_object_get_string_member(st, "cgroups"));
    if (JSON_NODE_HOLDS_VALUE(json_object_get_member(st, "device-uids"))) {
        printf("device code runs as: a uid of its own from %s\n",
               json_object_get_string_member(st, "device-uids"));
    } else {
        printf("device code runs as: the coordinator's uid (no "
               "--device-uids)\n");
    }

    printf("\n%-12s %-9s %-7s %-8s %-5s %-7s %s\n", "CLIENT", "STATE",
           "PID", "UPTIME", "ACCEL", "CPUS", "DEVICES");
    for (i = 0; i < json_array_get_length(clients); i++) {
        JsonObject *c = json_array_get_object_element(clients, i);
        JsonObject *q = json_object_get_object_member(c, "qemu");
        JsonArray *cd = json_object_get_array_member(c, "devices");
        g_autofree char *pid = proc_pid_str(q);
        g_autofree char *up = proc_uptime_str(q);
        g_autofree char *vcpu = NULL, *others = NULL;
        GString *devices = g_string_new(NULL);

        proc_cpus(q, &vcpu, &others);
        for (j = 0; j < json_array_get_length(cd); j++) {
            JsonObject *d = json_array_get_object_element(cd, j);

            const char *dst = json_object_get_string_member_with_default(
                d, "state", "ready");

            g_string_append_printf(devices, "%s%s=%s%s%s%s", j ? " " : "",
                                   json_object_get_string_member(d, "name"),
                                   json_object_get_string_member(
                                       d, "device-vm"),
                                   strcmp(dst, "ready") ? " (" : "",
                                   strcmp(dst, "ready") ? dst : "",
                                   strcmp(dst, "ready") ? ")" : "");
        }
        printf("%-12s %-9s %-7s %-8s %-5s %-7s %s\n",
               json_object_get_string_member(c, "name"),
               json_object_get_string_member(c, "state"), pid, up,
               json_object_get_string_member(c, "accel"),
               strcmp(vcpu, "-") ? vcpu : others,
               devices->len ? devices->str : "-");
        g_string_free(devices, true);
    }
    if (!json_array_get_length(clients)) {
        printf("(none)\n");
    } else {
        ctl_print_proxies(clients);
    }

    printf("\n%-12s %-7s %-9s %-6s %-7s %-7s %-8s %-10s %s\n", "DEVICE",
           "MODE", "STATE", "USERS", "PID", "GW PID", "UPTIME",
           "vCPU/OTHER", "RESERVATION");
    for (i = 0; i < json_array_get_length(devs); i++) {
        JsonObject *d = json_array_get_object_element(devs, i);
        JsonObject *vm = json_object_get_object_member(d, "vm");
        JsonObject *gw = json_object_get_object_member(d, "gateway");
        g_autofree char *vpid = proc_pid_str(vm);
        g_autofree char *gpid = proc_pid_str(gw);
        g_autofree char *up = proc_uptime_str(vm);
        g_autofree char *vcpu = NULL, *others = NULL;
        g_autofree char *users = g_strdup_printf(
            "%" G_GINT64_FORMAT "/%" G_GINT64_FORMAT,
            json_object_get_int_member(d, "users"),
            json_object_get_int_member(d, "max-clients"));
        g_autofree char *cpus = NULL;

        proc_cpus(vm, &vcpu, &others);
        cpus = g_strdup_printf("%s/%s", vcpu, others);
        printf("%-12s %-7s %-9s %-6s %-7s %-7s %-8s %-10s %s\n",
               json_object_get_string_member(d, "id"),
               json_object_get_string_member_with_default(d, "mode", "vm"),
               json_object_get_string_member(d, "state"), users, vpid, gpid,
               up, cpus, json_object_get_string_member(d, "reservation"));
        if (json_object_has_member(d, "limits")) {
            printf("%-12s cgroup %s: %s\n", "",
                   json_object_get_string_member(d, "cgroup"),
                   json_object_get_string_member(d, "limits"));
        }
        if (json_object_has_member(d, "failure")) {
            printf("%-12s failed: %s\n", "",
                   json_object_get_string_member(d, "failure"));
        }
        if (json_object_get_int_member_with_default(d, "restarts", 0) ||
            json_object_has_member(d, "last-failure")) {
            gint64 all = json_object_get_int_member(d, "restarts");
            gint64 recent = json_object_get_int_member_with_default(
                d, "recent-restarts", all);

            printf("%-12s restarts %" G_GINT64_FORMAT "/%" G_GINT64_FORMAT,
                   "", recent, json_object_get_int_member(d, "max-restarts"));
            if (all != recent) {
                printf(" (%" G_GINT64_FORMAT " in all)", all);
            }
            printf(", generation %" G_GINT64_FORMAT,
                   json_object_get_int_member(d, "generation"));
            if (json_object_has_member(d, "loss-window")) {
                printf(", last loss window %.3f s",
                       json_object_get_double_member(d, "loss-window"));
            }
            printf("\n");
        }
        if (json_object_has_member(d, "last-failure")) {
            JsonObject *lf = json_object_get_object_member(d,
                                                           "last-failure");

            printf("%-12s last failure %s: %s\n", "",
                   json_object_get_string_member(lf, "time"),
                   json_object_get_string_member(lf, "reason"));
        }
    }
    if (!json_array_get_length(devs)) {
        printf("(none)\n");
    }
    if (json_object_has_member(st, "leftovers")) {
        printf("\n");
        ctl_print_leftovers(json_object_get_object_member(st, "leftovers"),
                            "it left (devvm-ctl cleanup removes it)");
    }
}

static void usage(FILE *f)
{
    fprintf(f,
"usage: devvm-ctl [--run-dir DIR | --socket PATH] [--json] [--timeout S]\n"
"                 COMMAND [ARG]\n"
"\n"
"  up FILE      bring up the client VM FILE describes, with its devices\n"
"  down NAME    stop client NAME and release what it used\n"
"  attach CLIENT NAME TYPE [-m MODE] [-R RESERVATION] [-o KEY=VALUE]...\n"
"               give running client CLIENT a device NAME of TYPE (hot-plug)\n"
"  detach CLIENT NAME\n"
"               unplug device NAME from CLIENT; release its device VM\n"
"               when no other client uses it\n"
"  status       clients, device VMs, reservations and processes\n"
"  cleanup      stop and remove what a coordinator killed in this run\n"
"               directory left\n"
"  logs [NAME]  the logs of client or device VM NAME (none: the\n"
"               coordinator's own)\n"
"\n"
"  -r, --run-dir DIR   the coordinator's run directory (default:\n"
"                      $XDG_RUNTIME_DIR/devvm, or /run/devvm for root)\n"
"  -s, --socket PATH   its control socket (default: RUN-DIR/control.sock)\n"
"  -j, --json          print the reply as JSON\n"
"  -t, --timeout S     wait at most S seconds for a reply (default 120)\n"
"  -m, --mode M        attach: vm, process or auto (the default: a device\n"
"                      VM when the catalog has one)\n"
"  -R, --reservation R attach: exclusive, shared:PERCENT or auto (the\n"
"                      default: what the device image declares)\n"
"  -o, --option K=V    attach: a device option (repeatable)\n");
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "run-dir", required_argument, NULL, 'r' },
        { "socket", required_argument, NULL, 's' },
        { "json", no_argument, NULL, 'j' },
        { "timeout", required_argument, NULL, 't' },
        { "reservation", required_argument, NULL, 'R' },
        { "mode", required_argument, NULL, 'm' },
        { "option", required_argument, NULL, 'o' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    g_autoptr(JsonParser) parser = json_parser_new();
    g_autoptr(GError) err = NULL;
    g_autofree char *sock = NULL;
    const char *run_dir = NULL, *socket_path = NULL, *cmd;
    const char *reservation = NULL, *mode = NULL;
    g_autoptr(GPtrArray) options = g_ptr_array_new();
    guint64 timeout = 120;
    Ctl ctl = { 0 };
    JsonNode *ret;
    int opt;

    while ((opt = getopt_long(argc, argv, "r:s:jt:R:m:o:h", longopts,
                              NULL)) != -1) {
        switch (opt) {
        case 'r':
            run_dir = optarg;
            break;
        case 's':
            socket_path = optarg;
            break;
        case 'j':
            ctl.json = true;
            break;
        case 't':
            if (!g_ascii_string_to_unsigned(optarg, 10, 1, 86400, &timeout,
                                            NULL)) {
                g_printerr("devvm-ctl: --timeout %s: expected seconds\n",
                           optarg);
                return 2;
            }
            break;
        case 'R':
            reservation = optarg;
            break;
        case 'm':
            mode = optarg;
            break;
        case 'o':
            g_ptr_array_add(options, optarg);
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return 2;
    }
    cmd = argv[optind++];
    if (socket_path) {
        sock = g_strdup(socket_path);
    } else {
        g_autofree char *dir = coord_default_run_dir(run_dir, &err);

        if (!dir) {
            g_printerr("devvm-ctl: %s\n", err->message);
            return 2;
        }
        sock = g_build_filename(dir, COORD_CONTROL_SOCKET, NULL);
    }

    if (!strcmp(cmd, "up") || !strcmp(cmd, "down")) {
        g_autoptr(JsonBuilder) b = json_builder_new();
        g_autofree char *abs = NULL;
        bool up = !strcmp(cmd, "up");

        if (optind + 1 != argc) {
            g_printerr("devvm-ctl: %s needs one %s\n", cmd,
                       up ? "FILE" : "NAME");
            return 2;
        }
        abs = up ? g_canonicalize_filename(argv[optind], NULL)
                 : g_strdup(argv[optind]);
        if (!ctl_connect(&ctl, sock, timeout)) {
            return 2;
        }
        json_builder_begin_object(b);
        json_builder_set_member_name(b, up ? "file" : "name");
        json_builder_add_string_value(b, abs);
        json_builder_end_object(b);
        ctl.progress = true;
        ret = ctl_call(&ctl, parser, cmd, json_builder_get_root(b));
        if (!ret) {
            return 1;
        }
        if (ctl.json) {
            ctl_print_json(ret);
        } else if (up) {
            JsonObject *r = json_node_get_object(ret);
            JsonArray *devs = json_object_get_array_member(r, "devices");
            guint i;

            for (i = 0; i < json_array_get_length(devs); i++) {
                ctl_print_device(json_array_get_object_element(devs, i));
            }
            printf("devvm-ctl: client %s is up (QEMU pid %" G_GINT64_FORMAT
                   ") in %.3f s\n", json_object_get_string_member(r, "client"),
                   json_object_get_int_member(r, "pid"),
                   json_object_get_double_member(r, "seconds"));
        } else {
            printf("devvm-ctl: client %s is down\n", abs);
        }
        return 0;
    }
    if ((reservation || mode || options->len) && strcmp(cmd, "attach")) {
        g_printerr("devvm-ctl: --reservation, --mode and --option are for "
                   "attach\n");
        return 2;
    }
    if (!strcmp(cmd, "attach") || !strcmp(cmd, "detach")) {
        g_autoptr(JsonBuilder) b = json_builder_new();
        bool attach = !strcmp(cmd, "attach");
        JsonObject *r;
        guint i;

        if (argc - optind != (attach ? 3 : 2)) {
            g_printerr("devvm-ctl: %s needs CLIENT NAME%s\n", cmd,
                       attach ? " TYPE" : "");
            return 2;
        }
        if (!ctl_connect(&ctl, sock, timeout)) {
            return 2;
        }
        json_builder_begin_object(b);
        json_builder_set_member_name(b, "client");
        json_builder_add_string_value(b, argv[optind]);
        json_builder_set_member_name(b, "name");
        json_builder_add_string_value(b, argv[optind + 1]);
        if (attach) {
            json_builder_set_member_name(b, "type");
            json_builder_add_string_value(b, argv[optind + 2]);
            if (reservation) {
                json_builder_set_member_name(b, "reservation");
                json_builder_add_string_value(b, reservation);
            }
            if (mode) {
                json_builder_set_member_name(b, "mode");
                json_builder_add_string_value(b, mode);
            }
            if (options->len) {
                json_builder_set_member_name(b, "options");
                json_builder_begin_array(b);
                for (i = 0; i < options->len; i++) {
                    json_builder_add_string_value(b, options->pdata[i]);
                }
                json_builder_end_array(b);
            }
        }
        json_builder_end_object(b);
        ctl.progress = true;
        ret = ctl_call(&ctl, parser, cmd, json_builder_get_root(b));
        if (!ret) {
            return 1;
        }
        r = json_node_get_object(ret);
        if (ctl.json) {
            ctl_print_json(ret);
        } else if (attach) {
            JsonObject *d = json_object_get_object_member(r, "device");

            ctl_print_device(d);
            printf("devvm-ctl: client %s has device %s on %s, %.3f s "
                   "after attach\n",
                   json_object_get_string_member(r, "client"),
                   json_object_get_string_member(d, "name"),
                   json_object_get_string_member(r, "bus"),
                   json_object_get_double_member(r, "seconds"));
        } else {
            printf("devvm-ctl: device %s left client %s in %.3f s; device "
                   "VM %s %s\n", json_object_get_string_member(r, "device"),
                   json_object_get_string_member(r, "client"),
                   json_object_get_double_member(r, "seconds"),
                   json_object_get_string_member(r, "device-vm"),
                   json_object_get_boolean_member(r, "released") ?
                   "released" : "kept (other clients use it)");
        }
        return 0;
    }
    if (!strcmp(cmd, "status") || !strcmp(cmd, "cleanup")) {
        bool status = !strcmp(cmd, "status");
        JsonObject *r;

        if (optind != argc) {
            g_printerr("devvm-ctl: %s takes no argument\n", cmd);
            return 2;
        }
        if (!ctl_connect(&ctl, sock, timeout)) {
            return 2;
        }
        ret = ctl_call(&ctl, parser, status ? "query-status" : cmd, NULL);
        if (!ret) {
            return 1;
        }
        r = json_node_get_object(ret);
        if (ctl.json) {
            ctl_print_json(ret);
        } else if (status) {
            ctl_print_status(r);
        } else if (json_object_has_member(r, "removed")) {
            ctl_print_leftovers(json_object_get_object_member(r, "removed"),
                                "stopped and removed");
        } else {
            printf("devvm-ctl: nothing to clean up\n");
        }
        return 0;
    }
    if (!strcmp(cmd, "logs")) {
        g_autoptr(JsonBuilder) b = json_builder_new();
        JsonArray *files;
        guint i;

        if (optind + 1 < argc) {
            g_printerr("devvm-ctl: logs takes at most one NAME\n");
            return 2;
        }
        if (!ctl_connect(&ctl, sock, timeout)) {
            return 2;
        }
        json_builder_begin_object(b);
        if (optind < argc) {
            json_builder_set_member_name(b, "name");
            json_builder_add_string_value(b, argv[optind]);
        }
        json_builder_end_object(b);
        ret = ctl_call(&ctl, parser, "query-logs", json_builder_get_root(b));
        if (!ret) {
            return 1;
        }
        if (ctl.json) {
            ctl_print_json(ret);
            return 0;
        }
        files = json_object_get_array_member(json_node_get_object(ret),
                                             "files");
        for (i = 0; i < json_array_get_length(files); i++) {
            const char *path = json_array_get_string_element(files, i);
            g_autofree char *text = NULL;

            printf("==> %s <==\n", path);
            if (g_file_get_contents(path, &text, NULL, NULL)) {
                fputs(text, stdout);
                if (*text && text[strlen(text) - 1] != '\n') {
                    putchar('\n');
                }
            }
        }
        return 0;
    }
    g_printerr("devvm-ctl: unknown command '%s'\n", cmd);
    usage(stderr);
    return 2;
}
