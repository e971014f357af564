/*
 * libdevvm: VERSION capabilities (the JSON object of vfio-user's VERSION
 * message) and devvm's "devvm" capability.
 *
 * Freestanding: a bounded, non-allocating JSON reader and writer.  Unknown
 * members are skipped, so a peer may advertise capabilities we do not
 * know; malformed JSON, nesting deeper than DEVVM_JSON_MAX_DEPTH and
 * out-of-range numbers are errors.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef LIBDEVVM_CAPS_H
#define LIBDEVVM_CAPS_H

#include <stddef.h>
#include <stdint.h>

#include "libdevvm/wire.h"

#define DEVVM_JSON_MAX_DEPTH    8u
#define DEVVM_EXT_VERSION       1u      /* "devvm": {"version": 1} */

/* vfio-user's defaults for an absent member */
#define DEVVM_CAP_DEF_MAX_FDS   1u
#define DEVVM_CAP_DEF_MAX_XFER  (1024u * 1024u)
#define DEVVM_CAP_DEF_MAX_MAPS  65535u
#define DEVVM_CAP_DEF_PGSIZES   4096u

struct devvm_caps {
    uint32_t max_msg_fds;
    uint32_t max_data_xfer_size;
    uint32_t max_dma_maps;
    uint64_t pgsizes;
    uint8_t write_multiple;
    uint8_t twin_socket;        /* twin_socket.supported */
    uint8_t devvm;              /* "devvm" object present and understood */
    uint8_t devvm_ring;         /* "devvm": {"ring": true} */
    uint32_t devvm_version;     /* "devvm": {"version": N} */
};

/* vfio-user's defaults: what a peer that sends no JSON has. */
void devvm_caps_default(struct devvm_caps *c);

/*
 * Parse the capability JSON of a VERSION message (@len bytes, no NUL
 * needed).  Members not given keep vfio-user's defaults.  A "devvm"
 * member whose version is not a positive integer is an error; a higher
 * version than ours is accepted and negotiated down.
 */
int devvm_caps_parse(const char *json, size_t len, struct devvm_caps *out);

/* Write @c as JSON into @buf (NUL-terminated); returns the length
 * without the NUL or DEVVM_E_TOO_BIG. */
int devvm_caps_format(char *buf, size_t size, const struct devvm_caps *c);

/*
 * Limits (max_msg_fds, max_data_xfer_size, max_dma_maps, pgsizes)
 * describe what their sender can receive or handle; features
 * (write_multiple, twin_socket, devvm, devvm_ring) are used only when
 * both sides have them.  devvm_caps_negotiate() is the server's reply:
 * its own limits, the features both have, the lower devvm version.  The
 * client checks the reply with devvm_caps_check_reply(): a feature it
 * did not propose, or a devvm version above its own, is DEVVM_E_VERSION.
 */
void devvm_caps_negotiate(const struct devvm_caps *mine,
                          const struct devvm_caps *peer,
                          struct devvm_caps *out);
int devvm_caps_check_reply(const struct devvm_caps *proposed,
                           const struct devvm_caps *reply);

#endif /* LIBDEVVM_CAPS_H */
