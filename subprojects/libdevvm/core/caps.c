/*
 * libdevvm: VERSION capabilities (the JSON object of vfio-user's VERSION
 * message) and devvm's "devvm" capability.
 *
 * Freestanding: no libc, no allocation.  The reader is a bounded
 * recursive-descent parser over exactly @len bytes; its recursion is
 * limited by DEVVM_JSON_MAX_DEPTH, so its stack use is bounded too.
 *
 * Reading rules (docs/interop/vfio-user.rst, "DEVVM_CMD_VERSION"):
 *
 *  - The whole text must be one JSON object (RFC 8259 grammar, UTF-8),
 *    optionally surrounded by whitespace; anything after it is an error.
 *    The text is @len bytes without a terminating NUL: a NUL byte
 *    anywhere inside @len is an error.
 *  - Objects and arrays may nest at most DEVVM_JSON_MAX_DEPTH deep, the
 *    top-level object counting as depth 1.
 *  - Members we do not know are skipped at any level, but must still be
 *    valid JSON.  Member names are compared after unescaping, so
 *    "max\u005fmsg_fds" is max_msg_fds.
 *  - A known member with the wrong type, or a number that is negative,
 *    fractional, has an exponent or does not fit its field where an
 *    integer is required, is DEVVM_E_JSON.
 *  - Duplicate names: the last one wins.  For an object-valued member
 *    ("capabilities", "devvm", "twin_socket") the last object replaces
 *    the earlier one entirely, as if the earlier one had not been sent.
 *  - On error *out is left unchanged.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <stddef.h>
#include <stdint.h>

#include "libdevvm/caps.h"

/* ---- reader ------------------------------------------------------------ */

struct devvm_json {
    const unsigned char *p;
    size_t len;
    size_t pos;
};

/* Longest member name we need to recognise, plus slack. */
#define DEVVM_JSON_KEY_MAX  32u

/* Called with the reader on a member's value, which it must consume. */
typedef int (*devvm_json_member_fn)(struct devvm_json *j, const char *key,
                                    size_t klen, unsigned depth,
                                    void *opaque);

static int devvm_json_skip_value(struct devvm_json *j, unsigned depth);

/* Next byte, or -1 at the end of the text. */
static int devvm_json_peek(const struct devvm_json *j)
{
    return j->pos < j->len ? j->p[j->pos] : -1;
}

static void devvm_json_skip_ws(struct devvm_json *j)
{
    while (j->pos < j->len) {
        unsigned char c = j->p[j->pos];

        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
            break;
        }
        j->pos++;
    }
}

/* Consume @c (after whitespace) or fail. */
static int devvm_json_expect(struct devvm_json *j, char c)
{
    devvm_json_skip_ws(j);
    if (devvm_json_peek(j) != (unsigned char)c) {
        return DEVVM_E_JSON;
    }
    j->pos++;
    return 0;
}

/* Consume the literal @lit (true, false, null). */
static int devvm_json_literal(struct devvm_json *j, const char *lit)
{
    size_t i;

    for (i = 0; lit[i]; i++) {
        if (j->pos + i >= j->len ||
            j->p[j->pos + i] != (unsigned char)lit[i]) {
            return DEVVM_E_JSON;
        }
    }
    j->pos += i;
    return 0;
}

static int devvm_json_hexval(int c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/*
 * Check one UTF-8 sequence whose lead byte @c (>= 0x80) was just
 * consumed: no overlong forms, no surrogates, nothing above U+10FFFF
 * (the table of RFC 3629, section 4).
 */
static int devvm_json_utf8(struct devvm_json *j, unsigned char c)
{
    unsigned char lo = 0x80, hi = 0xbf;
    unsigned n, i;

    if (c >= 0xc2 && c <= 0xdf) {
        n = 1;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 2;
        if (c == 0xe0) {
            lo = 0xa0;
        } else if (c == 0xed) {
            hi = 0x9f;
        }
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 3;
        if (c == 0xf0) {
            lo = 0x90;
        } else if (c == 0xf4) {
            hi = 0x8f;
        }
    } else {
        return DEVVM_E_JSON;
    }
    for (i = 0; i < n; i++) {
        int b = devvm_json_peek(j);

        if (b < lo || b > hi) {
            return DEVVM_E_JSON;
        }
        j->pos++;
        lo = 0x80;
        hi = 0xbf;
    }
    return 0;
}

/*
 * Consume a string starting at its opening quote.  When @key is not
 * NULL, the unescaped name is stored there (not NUL-terminated) with
 * its length in *klen; a name that cannot be one of ours (too long, or
 * not ASCII, or containing U+0000) gets *klen = 0, as the empty name
 * does: ours are never empty, so neither matches.  \uXXXX escapes are
 * checked but only decoded as far as that comparison needs.
 */
static int devvm_json_string(struct devvm_json *j, char *key, size_t *klen)
{
    size_t n = 0;
    int ok = 1;

    if (devvm_json_peek(j) != '"') {
        return DEVVM_E_JSON;
    }
    j->pos++;
    for (;;) {
        int c = devvm_json_peek(j);
        int ch;

        if (c < 0x20) {
            /* end of text (-1), or an unescaped control char (or NUL) */
            return DEVVM_E_JSON;
        }
        j->pos++;
        if (c == '"') {
            break;
        }
        if (c >= 0x80) {
            if (devvm_json_utf8(j, (unsigned char)c) < 0) {
                return DEVVM_E_JSON;
            }
            ok = 0;
            continue;
        }
        ch = c;
        if (c == '\\') {
            c = devvm_json_peek(j);
            if (c < 0) {
                return DEVVM_E_JSON;    /* a backslash ends the text */
            }
            j->pos++;
            switch (c) {
            case '"':
            case '\\':
            case '/':
                ch = c;
                break;
            case 'b':
                ch = '\b';
                break;
            case 'f':
                ch = '\f';
                break;
            case 'n':
                ch = '\n';
                break;
            case 'r':
                ch = '\r';
                break;
            case 't':
                ch = '\t';
                break;
            case 'u': {
                unsigned v = 0, i;

                for (i = 0; i < 4; i++) {
                    int h = devvm_json_hexval(devvm_json_peek(j));

                    if (h < 0) {
                        return DEVVM_E_JSON;
                    }
                    j->pos++;
                    v = (v << 4) | (unsigned)h;
                }
                /* Surrogates need not pair: RFC 8259 allows lone ones. */
                if (v == 0 || v >= 0x80) {
                    ok = 0;
                }
                ch = (int)v;
                break;
            }
            default:
                return DEVVM_E_JSON;
            }
        }
        if (key && ok) {
            if (n < DEVVM_JSON_KEY_MAX) {
                key[n++] = (char)ch;
            } else {
                ok = 0;
            }
        }
    }
    if (klen) {
        *klen = ok ? n : 0;
    }
    return 0;
}

/*
 * Consume a number.  *val gets its value and *is_uint is set when it is
 * a non-negative integer without fraction or exponent that fits in 64
 * bits; other valid numbers are consumed with *is_uint = 0.
 */
static int devvm_json_number(struct devvm_json *j, uint64_t *val,
                             int *is_uint)
{
    uint64_t v = 0;
    int neg = 0, overflow = 0, frac = 0, c;

    if (devvm_json_peek(j) == '-') {
        neg = 1;
        j->pos++;
    }
    c = devvm_json_peek(j);
    if (c == '0') {
        j->pos++;
        c = devvm_json_peek(j);
        if (c >= '0' && c <= '9') {
            return DEVVM_E_JSON;        /* leading zero */
        }
    } else if (c >= '1' && c <= '9') {
        while (c >= '0' && c <= '9') {
            unsigned d = (unsigned)(c - '0');

            if (v > (UINT64_MAX - d) / 10) {
                overflow = 1;
            } else {
                v = v * 10 + d;
            }
            j->pos++;
            c = devvm_json_peek(j);
        }
    } else {
        return DEVVM_E_JSON;
    }
    if (c == '.') {
        j->pos++;
        c = devvm_json_peek(j);
        if (c < '0' || c > '9') {
            return DEVVM_E_JSON;
        }
        while (c >= '0' && c <= '9') {
            j->pos++;
            c = devvm_json_peek(j);
        }
        frac = 1;
    }
    if (c == 'e' || c == 'E') {
        j->pos++;
        c = devvm_json_peek(j);
        if (c == '+' || c == '-') {
            j->pos++;
            c = devvm_json_peek(j);
        }
        if (c < '0' || c > '9') {
            return DEVVM_E_JSON;
        }
        while (c >= '0' && c <= '9') {
            j->pos++;
            c = devvm_json_peek(j);
        }
        frac = 1;
    }
    *val = v;
    *is_uint = !neg && !frac && !overflow;
    return 0;
}

/*
 * After a member or an element: a ',' means another follows (1), @close
 * ends the object or array (0), anything else is an error.
 */
static int devvm_json_after_item(struct devvm_json *j, char close)
{
    devvm_json_skip_ws(j);
    if (devvm_json_peek(j) == ',') {
        j->pos++;
        return 1;
    }
    if (devvm_json_peek(j) == close) {
        j->pos++;
        return 0;
    }
    return DEVVM_E_JSON;
}

/*
 * Consume an object whose '{' is next (after whitespace), calling @fn
 * for each member.  @depth is the object's own nesting level.
 */
static int devvm_json_object(struct devvm_json *j, unsigned depth,
                             devvm_json_member_fn fn, void *opaque)
{
    char key[DEVVM_JSON_KEY_MAX];
    size_t klen;
    int ret;

    if (depth > DEVVM_JSON_MAX_DEPTH) {
        return DEVVM_E_JSON;
    }
    ret = devvm_json_expect(j, '{');
    if (ret < 0) {
        return ret;
    }
    devvm_json_skip_ws(j);
    if (devvm_json_peek(j) == '}') {
        j->pos++;
        return 0;
    }
    for (;;) {
        devvm_json_skip_ws(j);
        ret = devvm_json_string(j, key, &klen);
        if (ret < 0) {
            return ret;
        }
        ret = devvm_json_expect(j, ':');
        if (ret < 0) {
            return ret;
        }
        devvm_json_skip_ws(j);
        ret = fn(j, key, klen, depth, opaque);
        if (ret < 0) {
            return ret;
        }
        ret = devvm_json_after_item(j, '}');
        if (ret <= 0) {
            return ret;
        }
    }
}

static int devvm_json_skip_member(struct devvm_json *j, const char *key,
                                  size_t klen, unsigned depth, void *opaque)
{
    (void)key;
    (void)klen;
    (void)opaque;
    return devvm_json_skip_value(j, depth + 1);
}

/* Consume an array whose '[' is next; @depth is its nesting level. */
static int devvm_json_skip_array(struct devvm_json *j, unsigned depth)
{
    int ret;

    if (depth > DEVVM_JSON_MAX_DEPTH) {
        return DEVVM_E_JSON;
    }
    j->pos++;
    devvm_json_skip_ws(j);
    if (devvm_json_peek(j) == ']') {
        j->pos++;
        return 0;
    }
    for (;;) {
        ret = devvm_json_skip_value(j, depth + 1);
        if (ret < 0) {
            return ret;
        }
        ret = devvm_json_after_item(j, ']');
        if (ret <= 0) {
            return ret;
        }
    }
}

/*
 * Consume any value; @depth is the level it would have if it is an
 * object or array.
 */
static int devvm_json_skip_value(struct devvm_json *j, unsigned depth)
{
    uint64_t v;
    int is_uint;

    devvm_json_skip_ws(j);
    switch (devvm_json_peek(j)) {
    case '{':
        return devvm_json_object(j, depth, devvm_json_skip_member, NULL);
    case '[':
        return devvm_json_skip_array(j, depth);
    case '"':
        return devvm_json_string(j, NULL, NULL);
    case 't':
        return devvm_json_literal(j, "true");
    case 'f':
        return devvm_json_literal(j, "false");
    case 'n':
        return devvm_json_literal(j, "null");
    case '-':
    case '0': case '1': case '2': case '3': case '4':
    case '5': case '6': case '7': case '8': case '9':
        return devvm_json_number(j, &v, &is_uint);
    default:
        return DEVVM_E_JSON;
    }
}

/* ---- typed values of known members ------------------------------------- */

static int devvm_json_get_u64(struct devvm_json *j, uint64_t max,
                              uint64_t *out)
{
    uint64_t v;
    int is_uint, c = devvm_json_peek(j);
    int ret;

    if (c != '-' && (c < '0' || c > '9')) {
        return DEVVM_E_JSON;
    }
    ret = devvm_json_number(j, &v, &is_uint);
    if (ret < 0) {
        return ret;
    }
    if (!is_uint || v > max) {
        return DEVVM_E_JSON;
    }
    *out = v;
    return 0;
}

static int devvm_json_get_u32(struct devvm_json *j, uint32_t *out)
{
    uint64_t v;
    int ret = devvm_json_get_u64(j, UINT32_MAX, &v);

    if (ret == 0) {
        *out = (uint32_t)v;
    }
    return ret;
}

static int devvm_json_get_bool(struct devvm_json *j, uint8_t *out)
{
    switch (devvm_json_peek(j)) {
    case 't':
        *out = 1;
        return devvm_json_literal(j, "true");
    case 'f':
        *out = 0;
        return devvm_json_literal(j, "false");
    default:
        return DEVVM_E_JSON;
    }
}

/* Is the unescaped name @key/@klen equal to @name? */
static int devvm_key_is(const char *key, size_t klen, const char *name)
{
    size_t i;

    for (i = 0; i < klen; i++) {
        if (name[i] == '\0' || name[i] != key[i]) {
            return 0;
        }
    }
    return name[klen] == '\0';
}

/* ---- the capability schema --------------------------------------------- */

static int devvm_caps_twin_member(struct devvm_json *j, const char *key,
                                  size_t klen, unsigned depth, void *opaque)
{
    struct devvm_caps *c = opaque;

    if (devvm_key_is(key, klen, "supported")) {
        return devvm_json_get_bool(j, &c->twin_socket);
    }
    /* fd_index included: only meaningful with twin-socket mode */
    return devvm_json_skip_value(j, depth + 1);
}

static int devvm_caps_devvm_member(struct devvm_json *j, const char *key,
                                   size_t klen, unsigned depth, void *opaque)
{
    struct devvm_caps *c = opaque;

    if (devvm_key_is(key, klen, "version")) {
        return devvm_json_get_u32(j, &c->devvm_version);
    }
    if (devvm_key_is(key, klen, "ring")) {
        return devvm_json_get_bool(j, &c->devvm_ring);
    }
    return devvm_json_skip_value(j, depth + 1);
}

static int devvm_caps_cap_member(struct devvm_json *j, const char *key,
                                 size_t klen, unsigned depth, void *opaque)
{
    struct devvm_caps *c = opaque;
    int ret;

    if (devvm_key_is(key, klen, "max_msg_fds")) {
        return devvm_json_get_u32(j, &c->max_msg_fds);
    }
    if (devvm_key_is(key, klen, "max_data_xfer_size")) {
        return devvm_json_get_u32(j, &c->max_data_xfer_size);
    }
    if (devvm_key_is(key, klen, "max_dma_maps")) {
        return devvm_json_get_u32(j, &c->max_dma_maps);
    }
    if (devvm_key_is(key, klen, "pgsizes")) {
        return devvm_json_get_u64(j, UINT64_MAX, &c->pgsizes);
    }
    if (devvm_key_is(key, klen, "write_multiple")) {
        return devvm_json_get_bool(j, &c->write_multiple);
    }
    if (devvm_key_is(key, klen, "twin_socket")) {
        c->twin_socket = 0;
        return devvm_json_object(j, depth + 1, devvm_caps_twin_member, c);
    }
    if (devvm_key_is(key, klen, "migration")) {
        /* we do not migrate through vfio-user: check the type only */
        if (devvm_json_peek(j) != '{') {
            return DEVVM_E_JSON;
        }
        return devvm_json_skip_value(j, depth + 1);
    }
    if (devvm_key_is(key, klen, "devvm")) {
        c->devvm = 0;
        c->devvm_ring = 0;
        c->devvm_version = 0;
        ret = devvm_json_object(j, depth + 1, devvm_caps_devvm_member, c);
        if (ret < 0) {
            return ret;
        }
        if (c->devvm_version == 0) {
            /* "version" is required and must be positive */
            return DEVVM_E_JSON;
        }
        c->devvm = 1;
        return 0;
    }
    return devvm_json_skip_value(j, depth + 1);
}

static int devvm_caps_top_member(struct devvm_json *j, const char *key,
                                 size_t klen, unsigned depth, void *opaque)
{
    struct devvm_caps *c = opaque;

    if (devvm_key_is(key, klen, "capabilities")) {
        devvm_caps_default(c);
        return devvm_json_object(j, depth + 1, devvm_caps_cap_member, c);
    }
    return devvm_json_skip_value(j, depth + 1);
}

void devvm_caps_default(struct devvm_caps *c)
{
    c->max_msg_fds = DEVVM_CAP_DEF_MAX_FDS;
    c->max_data_xfer_size = DEVVM_CAP_DEF_MAX_XFER;
    c->max_dma_maps = DEVVM_CAP_DEF_MAX_MAPS;
    c->pgsizes = DEVVM_CAP_DEF_PGSIZES;
    c->write_multiple = 0;
    c->twin_socket = 0;
    c->devvm = 0;
    c->devvm_ring = 0;
    c->devvm_version = 0;
}

int devvm_caps_parse(const char *json, size_t len, struct devvm_caps *out)
{
    struct devvm_json j = {
        .p = (const unsigned char *)json,
        .len = len,
        .pos = 0,
    };
    struct devvm_caps c;
    int ret;

    if (!out || (!json && len)) {
        return -DEVVM_EINVAL;
    }
    devvm_caps_default(&c);
    devvm_json_skip_ws(&j);
    if (devvm_json_peek(&j) != '{') {
        return DEVVM_E_JSON;            /* the top level is an object */
    }
    ret = devvm_json_object(&j, 1, devvm_caps_top_member, &c);
    if (ret < 0) {
        return ret;
    }
    devvm_json_skip_ws(&j);
    if (j.pos != j.len) {
        return DEVVM_E_JSON;            /* trailing garbage, or a NUL */
    }
    *out = c;
    return 0;
}

/* ---- writer ------------------------------------------------------------ */

/*
 * A bounded writer: @pos counts every byte the full text needs, bytes
 * are stored only while they fit in front of the terminating NUL.
 */
struct devvm_out {
    char *buf;
    size_t size;
    size_t pos;
};

static void devvm_out_str(struct devvm_out *o, const char *s)
{
    for (; *s; s++) {
        if (o->pos + 1 < o->size) {
            o->buf[o->pos] = *s;
        }
        o->pos++;
    }
}

static void devvm_out_u64(struct devvm_out *o, uint64_t v)
{
    char tmp[21];
    size_t i = sizeof(tmp) - 1;

    tmp[i] = '\0';
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    devvm_out_str(o, &tmp[i]);
}

/*
 * Members in a fixed order; write_multiple only when set, devvm only when
 * c->devvm is set, twin_socket never: we do not implement twin-socket
 * mode, and not advertising it is how a peer says so.  Absent a devvm
 * version the output could not be parsed back, so it is refused with
 * -DEVVM_EINVAL.  On DEVVM_E_TOO_BIG @buf holds the empty string.
 */
int devvm_caps_format(char *buf, size_t size, const struct devvm_caps *c)
{
    struct devvm_out o = { .buf = buf, .size = size, .pos = 0 };

    if (!c || (!buf && size)) {
        return -DEVVM_EINVAL;
    }
    if (c->devvm && c->devvm_version == 0) {
        return -DEVVM_EINVAL;
    }
    devvm_out_str(&o, "{\"capabilities\":{\"max_msg_fds\":");
    devvm_out_u64(&o, c->max_msg_fds);
    devvm_out_str(&o, ",\"max_data_xfer_size\":");
    devvm_out_u64(&o, c->max_data_xfer_size);
    devvm_out_str(&o, ",\"max_dma_maps\":");
    devvm_out_u64(&o, c->max_dma_maps);
    devvm_out_str(&o, ",\"pgsizes\":");
    devvm_out_u64(&o, c->pgsizes);
    if (c->write_multiple) {
        devvm_out_str(&o, ",\"write_multiple\":true");
    }
    if (c->devvm) {
        devvm_out_str(&o, ",\"devvm\":{\"version\":");
        devvm_out_u64(&o, c->devvm_version);
        devvm_out_str(&o, c->devvm_ring ? ",\"ring\":true}"
                                        : ",\"ring\":false}");
    }
    devvm_out_str(&o, "}}");

    if (o.pos >= size) {
        if (size) {
            buf[0] = '\0';
        }
        return DEVVM_E_TOO_BIG;
    }
    buf[o.pos] = '\0';
    return (int)o.pos;
}

/* ---- negotiation ------------------------------------------------------- */

void devvm_caps_negotiate(const struct devvm_caps *mine,
                          const struct devvm_caps *peer,
                          struct devvm_caps *out)
{
    struct devvm_caps r;        /* @out may alias @mine or @peer */

    r.max_msg_fds = mine->max_msg_fds;
    r.max_data_xfer_size = mine->max_data_xfer_size;
    r.max_dma_maps = mine->max_dma_maps;
    r.pgsizes = mine->pgsizes;
    r.write_multiple = mine->write_multiple && peer->write_multiple;
    r.twin_socket = 0;          /* not implemented, never offered back */
    r.devvm = mine->devvm && peer->devvm;
    if (r.devvm) {
        r.devvm_ring = mine->devvm_ring && peer->devvm_ring;
        r.devvm_version = mine->devvm_version < peer->devvm_version ?
                          mine->devvm_version : peer->devvm_version;
    } else {
        /* plain vfio-user: nothing of the extension survives */
        r.devvm_ring = 0;
        r.devvm_version = 0;
    }
    *out = r;
}

int devvm_caps_check_reply(const struct devvm_caps *proposed,
                           const struct devvm_caps *reply)
{
    if (!proposed || !reply) {
        return -DEVVM_EINVAL;
    }
    /* the reply's features must be a subset of the proposal's */
    if ((reply->write_multiple && !proposed->write_multiple) ||
        (reply->twin_socket && !proposed->twin_socket) ||
        (reply->devvm && !proposed->devvm)) {
        return DEVVM_E_VERSION;
    }
    if (reply->devvm) {
        if (reply->devvm_ring && !proposed->devvm_ring) {
            return DEVVM_E_VERSION;
        }
        if (reply->devvm_version == 0 ||
            reply->devvm_version > proposed->devvm_version) {
            return DEVVM_E_VERSION;
        }
    } else if (reply->devvm_ring) {
        return DEVVM_E_VERSION;         /* ring without the extension */
    }
    /* limits we could not work with at all */
    if (reply->max_msg_fds == 0 || reply->max_data_xfer_size == 0) {
        return DEVVM_E_VERSION;
    }
    return 0;
}
