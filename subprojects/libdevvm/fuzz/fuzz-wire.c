/*
 * libFuzzer target: the message decoder, and the capability parser behind
 * VERSION.  Input: one byte for the number of fds said to come with the
 * message, then the message bytes.
 *
 * Beyond "no crash, no out-of-bounds access" (ASan/UBSan), every message
 * that decodes is encoded again from its decoded form and must decode to
 * the same thing.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "libdevvm/caps.h"
#include "libdevvm/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t out[DEVVM_MAX_MSG_SIZE];

/* Re-encode @m; returns the length or a negative error. */
static int reencode(const struct devvm_msg *m, int reply)
{
    uint16_t id = m->hdr.id;
    uint32_t flags = m->hdr.flags;

    switch (m->hdr.cmd) {
    case DEVVM_CMD_DMA_MAP:
    case DEVVM_CMD_DEVICE_SET_IRQS:
        if (reply) {
            return -1;  /* payload-less replies */
        }
        break;
    }
    switch (m->hdr.cmd) {
    case DEVVM_CMD_DMA_MAP:
        return devvm_encode_dma_map(out, sizeof(out), id, flags,
                                    &m->u.dma_map);
    case DEVVM_CMD_DEVICE_GET_INFO:
        return devvm_encode_device_info(out, sizeof(out), id, flags,
                                        &m->u.dev_info);
    case DEVVM_CMD_DEVICE_GET_IRQ_INFO:
        return devvm_encode_irq_info(out, sizeof(out), id, flags,
                                     &m->u.irq_info);
    case DEVVM_CMD_REGION_READ:
    case DEVVM_CMD_REGION_WRITE:
        return devvm_encode_region_rw(out, sizeof(out), id, m->hdr.cmd,
                                      flags, &m->u.region_rw);
    case DEVVM_CMD_DEVICE_SET_IRQS:
        return devvm_encode_irq_set(out, sizeof(out), id, flags,
                                    &m->u.irq_set);
    }
    return -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct devvm_msg m, m2;
    struct devvm_hdr h;
    uint32_t nfds, i;
    uint8_t *msg;

    if (size < 1) {
        return 0;
    }
    nfds = data[0] % (DEVVM_MAX_FDS + 2);
    size--;
    /* an exact-size copy, so that ASan sees any read past the end */
    msg = malloc(size ? size : 1);
    memcpy(msg, data + 1, size);

    devvm_hdr_decode(msg, size, DEVVM_MAX_MSG_SIZE, &h);
    memset(&m, 0, sizeof(m));
    if (devvm_msg_decode(msg, size, nfds, &m) == DEVVM_OK) {
        int reply = (m.hdr.flags & DEVVM_HDR_F_TYPE_MASK) ==
                    DEVVM_HDR_F_REPLY;
        int len;

        if (reply && (m.hdr.flags & DEVVM_HDR_F_ERROR)) {
            goto done;
        }
        switch (m.hdr.cmd) {
        case DEVVM_CMD_VERSION:
            if (m.u.version.caps) {
                struct devvm_caps caps, mine, neg;
                char json[DEVVM_MAX_CAPS_JSON + 1];

                if (devvm_caps_parse(m.u.version.caps, m.u.version.caps_len,
                                     &caps) == DEVVM_OK) {
                    devvm_caps_default(&mine);
                    mine.devvm = 1;
                    mine.devvm_version = 1;
                    devvm_caps_negotiate(&mine, &caps, &neg);
                    devvm_caps_format(json, sizeof(json), &neg);
                }
            }
            break;
        case DEVVM_CMD_REGION_WRITE_MULTI:
            for (i = 0; !reply && i < m.u.write_multi.wr_cnt; i++) {
                struct devvm_write_one one;

                devvm_write_multi_get(&m.u.write_multi, i, &one);
                if (!one.count || one.count > 8) {
                    abort();    /* the decoder let a bad entry through */
                }
            }
            break;
        case DEVVM_CMD_DEVICE_GET_REGION_INFO:
            for (i = 0; i < m.u.region_info.nr_areas; i++) {
                if (m.u.region_info.areas[i].offset +
                    m.u.region_info.areas[i].size > m.u.region_info.size) {
                    abort();
                }
            }
            break;
        }
        len = reencode(&m, reply);
        if (len >= 0) {
            if (devvm_msg_decode(out, len, nfds, &m2) != DEVVM_OK ||
                m2.hdr.cmd != m.hdr.cmd || m2.hdr.size != m.hdr.size) {
                abort();    /* decoded but does not survive a round trip */
            }
        }
    }
done:
    free(msg);
    return 0;
}
