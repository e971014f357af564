/*
 * devvm-coordinator: the client description (client-desc.h).
 *
 * GKeyFile parses the file.  GKeyFile does not say on which line a key
 * stands, so an index of the text (group and key of every line) is kept
 * beside it for messages, and to refuse what GKeyFile would silently
 * merge: a group or a key given twice.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <gio/gio.h>
#include <string.h>

#include "client-desc.h"

#define DESC_GROUP_CLIENT   "client"
#define DESC_DEVICE_PREFIX  "device "
#define DESC_MEMORY_MIN_MIB 16
#define DESC_MEMORY_MAX_MIB (1024 * 1024)
#define DESC_VCPUS_MAX      64
#define DESC_SLOTS_MAX      16

typedef struct DescLine {
    char *group;                /* the group the line is in, or NULL */
    char *key;                  /* its key, or NULL for a group header */
} DescLine;

typedef struct DescParser {
    const char *path;
    char *dir;                  /* of path, for relative file names */
    GKeyFile *kf;
    GArray *lines;              /* DescLine, index = line number - 1 */
} DescParser;

static const char *const client_keys[] = {
    "name", "memory", "vcpus", "machine", "accel", "kernel", "initrd",
    "append", "extra-args", "hotplug-slots", NULL,
};
static const char *const device_keys[] = {
    "type", "options", "reservation", "mode", NULL,
};

bool coord_name_valid(const char *name)
{
    size_t i, len = strlen(name);

    if (len == 0 || len > COORD_NAME_MAX) {
        return false;
    }
    for (i = 0; i < len; i++) {
        if (!g_ascii_isalnum(name[i]) && name[i] != '-' && name[i] != '_') {
            return false;
        }
    }
    return true;
}

char *coord_policy_str(CoordPolicy policy, unsigned percent)
{
    switch (policy) {
    case COORD_POLICY_EXCLUSIVE:
        return g_strdup("exclusive");
    case COORD_POLICY_SHARED:
        return g_strdup_printf("shared:%u", percent);
    default:
        return g_strdup("auto");
    }
}

/* The line of [@group] (@key NULL) or of @key in it; 0 if not found. */
static int desc_line(DescParser *p, const char *group, const char *key)
{
    guint i;

    for (i = 0; i < p->lines->len; i++) {
        DescLine *l = &g_array_index(p->lines, DescLine, i);

        if (g_strcmp0(l->group, group) == 0 && g_strcmp0(l->key, key) == 0) {
            return i + 1;
        }
    }
    return 0;
}

/* Set @errp to "PATH:LINE: [GROUP] KEY: message". */
G_GNUC_PRINTF(5, 6)
static void desc_error(DescParser *p, GError **errp, const char *group,
                       const char *key, const char *fmt, ...)
{
    g_autofree char *msg = NULL;
    g_autofree char *where = NULL;
    int line = group ? desc_line(p, group, key) : 0;
    va_list ap;

    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    if (line) {
        where = g_strdup_printf("%s:%d", p->path, line);
    } else {
        where = g_strdup(p->path);
    }
    if (group && key) {
        g_set_error(errp, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                    "%s: [%s] %s: %s", where, group, key, msg);
    } else if (group) {
        g_set_error(errp, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                    "%s: [%s]: %s", where, group, msg);
    } else {
        g_set_error(errp, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                    "%s: %s", where, msg);
    }
}

static void desc_line_clear(gpointer data)
{
    DescLine *l = data;

    g_free(l->group);
    g_free(l->key);
}

/*
 * Index the lines of @text; refuse a group or key given twice.  Lines
 * GKeyFile cannot parse are left to it, but the first one's number is
 * kept in *@bad_line for its message.
 */
static bool desc_index(DescParser *p, const char *text, gssize len,
                       int *bad_line, GError **errp)
{
    g_autofree char *copy = len < 0 ? g_strdup(text) : g_strndup(text, len);
    g_auto(GStrv) lines = g_strsplit(copy, "\n", -1);
    g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash,
                                                       g_str_equal,
                                                       g_free, NULL);
    const char *group = NULL;
    guint i;

    *bad_line = 0;
    for (i = 0; lines[i]; i++) {
        char *s = g_strstrip(lines[i]);
        DescLine l = { 0 };
        g_autofree char *id = NULL;
        char *eq;

        if (*s == '[' && s[strlen(s) - 1] == ']') {
            s[strlen(s) - 1] = '\0';
            group = s + 1;
            l.group = g_strdup(group);
            id = g_strdup_printf("[%s]", group);
        } else if (*s && *s != '#' && (eq = strchr(s, '='))) {
            *eq = '\0';
            l.group = g_strdup(group);
            l.key = g_strdup(g_strchomp(s));
            id = g_strdup_printf("[%s] %s", group ? group : "", l.key);
        } else if (*s && *s != '#' && !*bad_line) {
            *bad_line = i + 1;
        }
        if (id && g_hash_table_contains(seen, id)) {
            desc_line_clear(&l);
            g_set_error(errp, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_PARSE,
                        "%s:%u: %s is given twice (first on line %u); "
                        "expected once", p->path, i + 1, id,
                        GPOINTER_TO_UINT(g_hash_table_lookup(seen, id)));
            return false;
        }
        if (id) {
            g_hash_table_insert(seen, g_steal_pointer(&id),
                                GUINT_TO_POINTER(i + 1));
        }
        g_array_append_val(p->lines, l);
    }
    return true;
}

/* Refuse keys of @group that are not in @known. */
static bool desc_known_keys(DescParser *p, const char *group,
                            const char *const *known, GError **errp)
{
    g_auto(GStrv) keys = g_key_file_get_keys(p->kf, group, NULL, NULL);
    guint i;

    for (i = 0; keys && keys[i]; i++) {
        if (!g_strv_contains(known, keys[i])) {
            g_autofree char *list = g_strjoinv(", ", (char **)known);

            desc_error(p, errp, group, keys[i],
                       "unknown key; expected one of %s", list);
            return false;
        }
    }
    return true;
}

/* The value of @key as a string, or NULL (and *@ok false on error). */
static char *desc_string(DescParser *p, const char *group, const char *key,
                         bool required, bool *ok, GError **errp)
{
    g_autoptr(GError) err = NULL;
    char *v;

    if (!g_key_file_has_key(p->kf, group, key, NULL)) {
        if (required) {
            desc_error(p, errp, group, NULL, "the key '%s' is missing", key);
            *ok = false;
        }
        return NULL;
    }
    v = g_key_file_get_string(p->kf, group, key, &err);
    if (!v) {
        desc_error(p, errp, group, key, "%s", err->message);
        *ok = false;
    }
    return v;
}

/* An existing regular file, relative to the description's directory. */
static char *desc_file(DescParser *p, const char *group, const char *key,
                       bool required, bool *ok, GError **errp)
{
    g_autofree char *v = desc_string(p, group, key, required, ok, errp);
    g_autofree char *abs = NULL;

    if (!v) {
        return NULL;
    }
    abs = g_path_is_absolute(v) ? g_strdup(v)
                                : g_build_filename(p->dir, v, NULL);
    if (!g_file_test(abs, G_FILE_TEST_IS_REGULAR)) {
        desc_error(p, errp, group, key, "'%s' is not a file; expected an "
                   "existing file (relative names are relative to the "
                   "description's directory)", abs);
        *ok = false;
        return NULL;
    }
    return g_steal_pointer(&abs);
}

/* "128M", "1G", "512" (MiB) */
static bool desc_memory(DescParser *p, const char *group, const char *key,
                        const char *v, guint64 *mib, GError **errp)
{
    guint64 n, mul = 1;
    char *end;

    if (!g_ascii_isdigit(*v)) {
        goto bad;
    }
    n = g_ascii_strtoull(v, &end, 10);
    if (!g_ascii_strcasecmp(end, "G") || !g_ascii_strcasecmp(end, "GiB")) {
        mul = 1024;
    } else if (*end && g_ascii_strcasecmp(end, "M") &&
               g_ascii_strcasecmp(end, "MiB")) {
        goto bad;
    }
    if (n > DESC_MEMORY_MAX_MIB / mul || n * mul < DESC_MEMORY_MIN_MIB) {
        goto bad;
    }
    *mib = n * mul;
    return true;
bad:
    desc_error(p, errp, group, key, "'%s'; expected a size from 16M to "
               "1024G, as 128M or 1G (a plain number is MiB)", v);
    return false;
}

static bool desc_uint(DescParser *p, const char *group, const char *key,
                      const char *v, unsigned min, unsigned max,
                      unsigned *out, GError **errp)
{
    guint64 n;

    if (!g_ascii_string_to_unsigned(v, 10, min, max, &n, NULL)) {
        desc_error(p, errp, group, key, "'%s'; expected a number from %u "
                   "to %u", v, min, max);
        return false;
    }
    *out = n;
    return true;
}

static bool desc_one_of(DescParser *p, const char *group, const char *key,
                        const char *v, const char *const *choices,
                        unsigned *index, GError **errp)
{
    g_autofree char *list = NULL;
    unsigned i;

    for (i = 0; choices[i]; i++) {
        if (!strcmp(v, choices[i])) {
            *index = i;
            return true;
        }
    }
    list = g_strjoinv(" or ", (char **)choices);
    desc_error(p, errp, group, key, "'%s'; expected %s", v, list);
    return false;
}

static bool desc_client(DescParser *p, CoordClientDesc *d, GError **errp)
{
    static const char *const machines[] = { "pc", "q35", NULL };
    static const char *const accels[] = { "auto", "kvm", "tcg", NULL };
    const char *g = DESC_GROUP_CLIENT;
    g_autofree char *name = NULL, *memory = NULL, *vcpus = NULL;
    g_autofree char *machine = NULL, *accel = NULL, *slots = NULL;
    g_autoptr(GError) err = NULL;
    bool ok = true;
    unsigned i;

    if (!g_key_file_has_group(p->kf, g)) {
        desc_error(p, errp, NULL, NULL, "no [client] group; expected one, "
                   "with at least memory and kernel");
        return false;
    }
    if (!desc_known_keys(p, g, client_keys, errp)) {
        return false;
    }
    name = desc_string(p, g, "name", false, &ok, errp);
    if (!ok) {
        return false;
    }
    if (name) {
        if (!coord_name_valid(name)) {
            desc_error(p, errp, g, "name", "'%s'; expected 1 to %u "
                       "characters of A-Z, a-z, 0-9, '-' and '_'", name,
                       COORD_NAME_MAX);
            return false;
        }
        d->name = g_steal_pointer(&name);
    } else {
        g_autofree char *base = g_path_get_basename(p->path);
        char *dot = strrchr(base, '.');

        if (dot && dot != base) {
            *dot = '\0';
        }
        if (!coord_name_valid(base)) {
            desc_error(p, errp, g, NULL, "no name, and the file name '%s' "
                       "is not one; expected name = 1 to %u characters of "
                       "A-Z, a-z, 0-9, '-' and '_'", base, COORD_NAME_MAX);
            return false;
        }
        d->name = g_steal_pointer(&base);
    }

    memory = desc_string(p, g, "memory", true, &ok, errp);
    if (!ok || !desc_memory(p, g, "memory", memory, &d->memory_mib, errp)) {
        return false;
    }
    vcpus = desc_string(p, g, "vcpus", false, &ok, errp);
    d->vcpus = 1;
    if (!ok || (vcpus && !desc_uint(p, g, "vcpus", vcpus, 1,
                                    DESC_VCPUS_MAX, &d->vcpus, errp))) {
        return false;
    }
    machine = desc_string(p, g, "machine", false, &ok, errp);
    if (!ok || (machine && !desc_one_of(p, g, "machine", machine, machines,
                                        &i, errp))) {
        return false;
    }
    d->machine = g_strdup(machine ? machine : "pc");
    slots = desc_string(p, g, "hotplug-slots", false, &ok, errp);
    if (!ok || (slots && !desc_uint(p, g, "hotplug-slots", slots, 0,
                                    DESC_SLOTS_MAX, &d->hotplug_slots,
                                    errp))) {
        return false;
    }
    if (d->hotplug_slots && strcmp(d->machine, "q35")) {
        desc_error(p, errp, g, "hotplug-slots", "%u with machine %s; "
                   "expected it only with machine = q35 (on pc, attach "
                   "plugs devices into the root bus)", d->hotplug_slots,
                   d->machine);
        return false;
    }
    accel = desc_string(p, g, "accel", false, &ok, errp);
    if (!ok || (accel && !desc_one_of(p, g, "accel", accel, accels, &i,
                                      errp))) {
        return false;
    }
    d->accel = accel ? COORD_ACCEL_AUTO + i : COORD_ACCEL_DEFAULT;
    d->kernel = desc_file(p, g, "kernel", true, &ok, errp);
    if (!ok) {
        return false;
    }
    d->initrd = desc_file(p, g, "initrd", false, &ok, errp);
    if (!ok) {
        return false;
    }
    d->append = desc_string(p, g, "append", false, &ok, errp);
    if (!ok) {
        return false;
    }
    if (g_key_file_has_key(p->kf, g, "extra-args", NULL)) {
        d->extra_args = g_key_file_get_string_list(p->kf, g, "extra-args",
                                                   NULL, &err);
        if (!d->extra_args) {
            desc_error(p, errp, g, "extra-args", "%s; expected QEMU "
                       "arguments separated by ';'", err->message);
            return false;
        }
    }
    return true;
}

bool coord_mode_parse(const char *text, CoordMode *mode)
{
    static const char *const names[] = { "auto", "vm", "process" };
    guint i;

    for (i = 0; i < G_N_ELEMENTS(names); i++) {
        if (!strcmp(text, names[i])) {
            *mode = COORD_MODE_AUTO + i;
            return true;
        }
    }
    return false;
}

bool coord_policy_parse(const char *text, CoordPolicy *policy,
                        unsigned *percent)
{
    guint64 n;

    if (!strcmp(text, "auto")) {
        *policy = COORD_POLICY_AUTO;
        *percent = 0;
    } else if (!strcmp(text, "exclusive")) {
        *policy = COORD_POLICY_EXCLUSIVE;
        *percent = 100;
    } else if (g_str_has_prefix(text, "shared:") &&
               g_ascii_string_to_unsigned(text + 7, 10, 1, 100, &n, NULL)) {
        *policy = COORD_POLICY_SHARED;
        *percent = n;
    } else {
        return false;
    }
    return true;
}

const char *coord_options_check(char **options)
{
    guint i;

    for (i = 0; options && options[i]; i++) {
        const char *o = options[i];
        const char *eq = strchr(o, '=');

        if (!eq || eq == o || strpbrk(o, " \t\n")) {
            return o;
        }
    }
    return NULL;
}

void coord_device_desc_free(CoordDeviceDesc *dev)
{
    g_free(dev->name);
    g_free(dev->type);
    g_strfreev(dev->options);
    g_free(dev);
}

static void desc_device_free(gpointer data)
{
    coord_device_desc_free(data);
}

static bool desc_device(DescParser *p, const char *g, CoordClientDesc *d,
                        GError **errp)
{
    const char *name = g + strlen(DESC_DEVICE_PREFIX);
    g_autoptr(GError) err = NULL;
    g_autofree char *type = NULL, *policy = NULL, *mode = NULL;
    CoordDeviceDesc *dev;
    const char *bad;
    bool ok = true;

    if (!coord_name_valid(name)) {
        desc_error(p, errp, g, NULL, "'%s' is not a device name; expected "
                   "[device NAME] with 1 to %u characters of A-Z, a-z, 0-9, "
                   "'-' and '_'", name, COORD_NAME_MAX);
        return false;
    }
    if (!desc_known_keys(p, g, device_keys, errp)) {
        return false;
    }
    type = desc_string(p, g, "type", true, &ok, errp);
    if (!ok) {
        return false;
    }
    dev = g_new0(CoordDeviceDesc, 1);
    g_ptr_array_add(d->devices, dev);
    dev->name = g_strdup(name);
    dev->type = g_steal_pointer(&type);
    dev->line = desc_line(p, g, NULL);
    policy = desc_string(p, g, "reservation", false, &ok, errp);
    if (!ok) {
        return false;
    }
    if (policy && !coord_policy_parse(policy, &dev->policy, &dev->percent)) {
        desc_error(p, errp, g, "reservation", "'%s'; expected "
                   COORD_POLICY_EXPECTED, policy);
        return false;
    }
    mode = desc_string(p, g, "mode", false, &ok, errp);
    if (!ok) {
        return false;
    }
    if (mode && !coord_mode_parse(mode, &dev->mode)) {
        desc_error(p, errp, g, "mode", "'%s'; expected "
                   COORD_MODE_EXPECTED, mode);
        return false;
    }
    if (g_key_file_has_key(p->kf, g, "options", NULL)) {
        dev->options = g_key_file_get_string_list(p->kf, g, "options", NULL,
                                                  &err);
        if (!dev->options) {
            desc_error(p, errp, g, "options", "%s", err->message);
            return false;
        }
    }
    bad = coord_options_check(dev->options);
    if (bad) {
        desc_error(p, errp, g, "options", "'%s'; expected KEY=VALUE "
                   "items without blanks, separated by ';'", bad);
        return false;
    }
    return true;
}

static void desc_parser_clear(DescParser *p)
{
    g_free(p->dir);
    if (p->kf) {
        g_key_file_free(p->kf);
    }
    if (p->lines) {
        g_array_free(p->lines, true);
    }
}

CoordClientDesc *coord_client_desc_parse(const char *text, gssize len,
                                         const char *path, GError **errp)
{
    DescParser p = { .path = path };
    g_autoptr(CoordClientDesc) d = g_new0(CoordClientDesc, 1);
    g_autoptr(GError) err = NULL;
    g_auto(GStrv) groups = NULL;
    int bad_line;
    guint i;

    d->path = g_strdup(path);
    d->devices = g_ptr_array_new_with_free_func(desc_device_free);
    p.dir = g_path_get_dirname(path);
    p.kf = g_key_file_new();
    p.lines = g_array_new(false, true, sizeof(DescLine));
    g_array_set_clear_func(p.lines, desc_line_clear);

    if (!desc_index(&p, text, len, &bad_line, errp)) {
        goto fail;
    }
    if (!g_key_file_load_from_data(p.kf, text,
                                   len < 0 ? (gsize)-1 : (gsize)len,
                                   G_KEY_FILE_NONE, &err)) {
        if (bad_line) {
            g_set_error(errp, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_PARSE,
                        "%s:%d: %s; expected [GROUP], KEY = VALUE, a "
                        "comment (#) or a blank line", path, bad_line,
                        err->message);
        } else {
            g_set_error(errp, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_PARSE,
                        "%s: %s", path, err->message);
        }
        goto fail;
    }
    groups = g_key_file_get_groups(p.kf, NULL);
    for (i = 0; groups[i]; i++) {
        if (!strcmp(groups[i], DESC_GROUP_CLIENT)) {
            continue;
        }
        if (!g_str_has_prefix(groups[i], DESC_DEVICE_PREFIX)) {
            desc_error(&p, errp, groups[i], NULL, "unknown group; expected "
                       "[client] or [device NAME]");
            goto fail;
        }
    }
    if (!desc_client(&p, d, errp)) {
        goto fail;
    }
    for (i = 0; groups[i]; i++) {
        if (g_str_has_prefix(groups[i], DESC_DEVICE_PREFIX) &&
            !desc_device(&p, groups[i], d, errp)) {
            goto fail;
        }
    }
    desc_parser_clear(&p);
    return g_steal_pointer(&d);
fail:
    desc_parser_clear(&p);
    return NULL;
}

CoordClientDesc *coord_client_desc_load(const char *path, GError **errp)
{
    g_autofree char *text = NULL;
    gsize len;

    if (!g_file_get_contents(path, &text, &len, errp)) {
        return NULL;
    }
    return coord_client_desc_parse(text, len, path, errp);
}

void coord_client_desc_free(CoordClientDesc *d)
{
    if (!d) {
        return;
    }
    g_free(d->path);
    g_free(d->name);
    g_free(d->machine);
    g_free(d->kernel);
    g_free(d->initrd);
    g_free(d->append);
    g_strfreev(d->extra_args);
    g_ptr_array_free(d->devices, true);
    g_free(d);
}
