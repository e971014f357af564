/*
 * devvm-crypto: a hash offload engine shaped like real ones (a
 * descriptor ring in client memory, a doorbell, scatter-gather sources,
 * an intermediate state in and out, completion write-back, MSI-X with
 * interrupt coalescing, an error log), written once against the devvm
 * SDK and built both as a process-mode binary and as a device VM image.
 * crypto.h is the interface, docs/devvm/crypto.rst the datasheet.
 *
 * The engine works through the ring in the SDK's poll callback, a slice
 * of data at a time (CRYPTO_SLICE bytes), so a 16 MiB descriptor does
 * not hold up register accesses.  Everything it reads from the client
 * (descriptors, SG entries, states, the producer index) is checked;
 * what is malformed completes with an error status and an entry in the
 * error log, never anything else.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stdbool.h>

#include "libdevvm/sdk.h"
#include "libdevvm/needs.h"
#include "libdevvm/le.h"
#include "crypto.h"

/* data hashed per poll call at most, and the bounce buffer for it */
#define CRYPTO_SLICE            (256u << 10)
#define CRYPTO_BOUNCE           (16u << 10)
#define CRYPTO_POLL_NS          100000

/* ---- SHA-256 (FIPS 180-4) and CRC32C (Castagnoli, reflected) ------------- */

struct hash_ctx {
    uint8_t op;
    uint8_t buflen;
    uint64_t total;
    uint32_t h[8];
    uint8_t buf[64];
};

static const uint32_t sha256_k[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1,
    0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3,
    0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
    0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
    0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
    0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
    0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
    0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
    0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static const uint32_t sha256_h0[8] = {
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
    0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
};

static inline uint32_t ror32(uint32_t x, unsigned n)
{
    return (x >> n) | (x << (32 - n));
}

static inline uint32_t ld_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
           (uint32_t)p[2] << 8 | p[3];
}

static void sha256_block(uint32_t h[8], const uint8_t *p)
{
    uint32_t w[64], a, b, c, d, e, f, g, hh, t1, t2;
    unsigned i;

    for (i = 0; i < 16; i++) {
        w[i] = ld_be32(p + 4 * i);
    }
    for (; i < 64; i++) {
        uint32_t s0 = ror32(w[i - 15], 7) ^ ror32(w[i - 15], 18) ^
                      (w[i - 15] >> 3);
        uint32_t s1 = ror32(w[i - 2], 17) ^ ror32(w[i - 2], 19) ^
                      (w[i - 2] >> 10);

        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    a = h[0]; b = h[1]; c = h[2]; d = h[3];
    e = h[4]; f = h[5]; g = h[6]; hh = h[7];
    for (i = 0; i < 64; i++) {
        t1 = hh + (ror32(e, 6) ^ ror32(e, 11) ^ ror32(e, 25)) +
             ((e & f) ^ (~e & g)) + sha256_k[i] + w[i];
        t2 = (ror32(a, 2) ^ ror32(a, 13) ^ ror32(a, 22)) +
             ((a & b) ^ (a & c) ^ (b & c));
        hh = g; g = f; f = e; e = d + t1;
        d = c; c = b; b = a; a = t1 + t2;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d;
    h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
}

/* the CRC32C table, made once (the device type's data) */
struct crypto_type {
    uint32_t crc32c[256];
};

static int crypto_type_init(const struct devvm_device *desc, void *data)
{
    struct crypto_type *t = data;
    uint32_t c;
    unsigned i, k;

    (void)desc;
    for (i = 0; i < 256; i++) {
        c = i;
        for (k = 0; k < 8; k++) {
            c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
        }
        t->crc32c[i] = c;
    }
    return 0;
}

static void hash_init(struct hash_ctx *c, uint8_t op)
{
    __builtin_memset(c, 0, sizeof(*c));
    c->op = op;
    if (op == CRYPTO_OP_SHA256) {
        __builtin_memcpy(c->h, sha256_h0, sizeof(c->h));
    } else {
        c->h[0] = 0xffffffffu;
    }
}

static void hash_update(struct hash_ctx *c, const struct crypto_type *t,
                        const uint8_t *p, size_t len)
{
    size_t n;

    c->total += len;
    if (c->op == CRYPTO_OP_CRC32C) {
        uint32_t crc = c->h[0];

        while (len--) {
            crc = t->crc32c[(crc ^ *p++) & 0xff] ^ (crc >> 8);
        }
        c->h[0] = crc;
        return;
    }
    if (c->buflen) {
        n = 64u - c->buflen;
        n = n < len ? n : len;
        __builtin_memcpy(c->buf + c->buflen, p, n);
        c->buflen += n;
        p += n;
        len -= n;
        if (c->buflen < 64) {
            return;
        }
        sha256_block(c->h, c->buf);
        c->buflen = 0;
    }
    for (; len >= 64; p += 64, len -= 64) {
        sha256_block(c->h, p);
    }
    __builtin_memcpy(c->buf, p, len);
    c->buflen = len;
}

/* The digest into @out (CRYPTO_SHA256_DIGEST or CRYPTO_CRC32C_DIGEST). */
static unsigned hash_final(struct hash_ctx *c, const struct crypto_type *t,
                           uint8_t *out)
{
    uint64_t bits = c->total * 8;
    unsigned i;

    if (c->op == CRYPTO_OP_CRC32C) {
        devvm_st32(out, ~c->h[0]);
        return CRYPTO_CRC32C_DIGEST;
    }
    (void)t;
    c->buf[c->buflen++] = 0x80;
    if (c->buflen > 56) {
        __builtin_memset(c->buf + c->buflen, 0, 64 - c->buflen);
        sha256_block(c->h, c->buf);
        c->buflen = 0;
    }
    __builtin_memset(c->buf + c->buflen, 0, 56 - c->buflen);
    for (i = 0; i < 8; i++) {
        c->buf[56 + i] = bits >> (56 - 8 * i);
    }
    sha256_block(c->h, c->buf);
    for (i = 0; i < 8; i++) {
        out[4 * i] = c->h[i] >> 24;
        out[4 * i + 1] = c->h[i] >> 16;
        out[4 * i + 2] = c->h[i] >> 8;
        out[4 * i + 3] = c->h[i];
    }
    return CRYPTO_SHA256_DIGEST;
}

/* ---- the engine ---------------------------------------------------------- */

struct crypto {
    /* registers */
    uint32_t ctrl, status;
    uint64_t ring_base;
    uint32_t ring_size, prod, cons;
    uint32_t irq_status, irq_mask;
    uint32_t coal_count, coal_usec;
    uint32_t err_count;
    uint8_t err_log[CRYPTO_ERR_LOG_LEN * 16];
    uint64_t done, bytes;
    uint32_t irq_count;
    /* completions not signalled yet */
    uint32_t pending;
    uint64_t first_pending_ns;
    /* the descriptor in progress (status BUSY) */
    uint8_t desc[CRYPTO_DESC_SIZE];
    uint32_t slot;
    uint16_t sg_i;
    uint32_t seg_off, seg_len;
    uint64_t seg_addr;
    uint32_t hashed;
    struct hash_ctx ctx;
    uint8_t bounce[CRYPTO_BOUNCE];
};

static void crypto_signal(struct devvm_dev *dev, struct crypto *c)
{
    if (c->irq_status & ~c->irq_mask) {
        c->irq_count++;
        devvm_msix_notify(dev, 0);
    }
}

/* Log an error; @slot CRYPTO_ERR_NO_INDEX when no descriptor is at
 * fault.  Raises the ERROR interrupt. */
static void crypto_error(struct devvm_dev *dev, struct crypto *c,
                         uint16_t code, uint32_t slot, uint64_t detail)
{
    uint8_t *e = c->err_log + (c->err_count % CRYPTO_ERR_LOG_LEN) * 16;

    c->err_count++;
    devvm_st32(e + CRYPTO_ERR_SEQ, c->err_count);
    devvm_st16(e + CRYPTO_ERR_CODE, code);
    devvm_st16(e + CRYPTO_ERR_INDEX, slot);
    devvm_st64(e + CRYPTO_ERR_DETAIL, detail);
    devvm_log(dev, "error %u (code %u, slot %u, detail 0x%llx)",
              c->err_count, code, slot, (unsigned long long)detail);
    c->irq_status |= CRYPTO_IRQ_ERROR;
    crypto_signal(dev, c);
}

/* A completion: count it, and interrupt as the coalescing says. */
static void crypto_completed(struct devvm_dev *dev, struct crypto *c)
{
    c->done++;
    if (!c->pending++) {
        c->first_pending_ns = devvm_now_ns();
    }
    if (c->pending >= (c->coal_count ? c->coal_count : 1)) {
        c->pending = 0;
        c->irq_status |= CRYPTO_IRQ_DONE;
        crypto_signal(dev, c);
    }
}

static void crypto_coalesce_timer(struct devvm_dev *dev, struct crypto *c)
{
    if (c->pending && c->coal_usec &&
        devvm_now_ns() - c->first_pending_ns >= c->coal_usec * 1000ull) {
        c->pending = 0;
        c->irq_status |= CRYPTO_IRQ_DONE;
        crypto_signal(dev, c);
    }
}

/* The ring stopped: a descriptor could not be fetched or written back. */
static void crypto_halt(struct devvm_dev *dev, struct crypto *c,
                        uint16_t code, uint64_t addr)
{
    c->status = (c->status | CRYPTO_STATUS_HALTED) & ~CRYPTO_STATUS_BUSY;
    crypto_error(dev, c, code, c->cons % (c->ring_size ? c->ring_size : 1),
                 addr);
}

static uint64_t crypto_slot_addr(const struct crypto *c, uint32_t slot)
{
    return c->ring_base + (uint64_t)slot * CRYPTO_DESC_SIZE;
}

/* Write the status back into the descriptor and move on. */
static void crypto_finish(struct devvm_dev *dev, struct crypto *c,
                          uint16_t st, uint64_t detail)
{
    uint8_t wb[8];

    devvm_st32(wb, c->hashed);
    devvm_st32(wb + 4, CRYPTO_ST_DONE | st);
    c->status &= ~CRYPTO_STATUS_BUSY;
    if (!(c->ctrl & CRYPTO_CTRL_ENABLE)) {
        /* ENABLE was cleared while this one was in hand */
        c->status &= ~CRYPTO_STATUS_ENABLED;
    }
    if (st != CRYPTO_ST_OK) {
        crypto_error(dev, c, st, c->slot, detail);
    }
    if (devvm_dma_write(dev, crypto_slot_addr(c, c->slot) +
                        CRYPTO_D_RESULT_LEN, wb, sizeof(wb))) {
        crypto_halt(dev, c, CRYPTO_ST_RING_FETCH,
                    crypto_slot_addr(c, c->slot));
        return;
    }
    c->cons++;
    crypto_completed(dev, c);
}

/* The state at STATE_ADDR into c->ctx; a CRYPTO_ST_*. */
static uint16_t crypto_state_in(struct devvm_dev *dev, struct crypto *c,
                                uint8_t op, uint64_t addr)
{
    uint8_t s[CRYPTO_STATE_SIZE];
    unsigned i;

    if (devvm_dma_read(dev, addr, s, sizeof(s))) {
        return CRYPTO_ST_DMA_FAULT;
    }
    if (devvm_ld32(s + CRYPTO_S_MAGIC) != CRYPTO_STATE_MAGIC ||
        s[CRYPTO_S_OP] != op || s[CRYPTO_S_BUFLEN] >= 64 ||
        (op == CRYPTO_OP_CRC32C && s[CRYPTO_S_BUFLEN]) ||
        (op == CRYPTO_OP_SHA256 &&
         devvm_ld64(s + CRYPTO_S_TOTAL) % 64 != s[CRYPTO_S_BUFLEN])) {
        return CRYPTO_ST_BAD_STATE;
    }
    c->ctx.op = op;
    c->ctx.buflen = s[CRYPTO_S_BUFLEN];
    c->ctx.total = devvm_ld64(s + CRYPTO_S_TOTAL);
    for (i = 0; i < 8; i++) {
        c->ctx.h[i] = devvm_ld32(s + CRYPTO_S_H + 4 * i);
    }
    __builtin_memcpy(c->ctx.buf, s + CRYPTO_S_BUF, 64);
    return CRYPTO_ST_OK;
}

static int crypto_state_out(struct devvm_dev *dev, struct crypto *c,
                            uint64_t addr)
{
    uint8_t s[CRYPTO_STATE_SIZE] = { 0 };
    unsigned i;

    devvm_st32(s + CRYPTO_S_MAGIC, CRYPTO_STATE_MAGIC);
    s[CRYPTO_S_OP] = c->ctx.op;
    s[CRYPTO_S_BUFLEN] = c->ctx.buflen;
    devvm_st64(s + CRYPTO_S_TOTAL, c->ctx.total);
    for (i = 0; i < 8; i++) {
        devvm_st32(s + CRYPTO_S_H + 4 * i, c->ctx.h[i]);
    }
    __builtin_memcpy(s + CRYPTO_S_BUF, c->ctx.buf, 64);
    return devvm_dma_write(dev, addr, s, sizeof(s));
}

/*
 * Fetch the descriptor at CONS and check what can be checked before any
 * data moves; false when it completed (with an error) or the ring
 * halted.
 */
static bool crypto_start(struct devvm_dev *dev, struct crypto *c)
{
    uint8_t *d = c->desc;
    uint8_t op, flags;
    uint16_t st;

    c->slot = c->cons & (c->ring_size - 1);
    c->hashed = 0;
    if (devvm_dma_read(dev, crypto_slot_addr(c, c->slot), d,
                       CRYPTO_DESC_SIZE)) {
        crypto_halt(dev, c, CRYPTO_ST_RING_FETCH,
                    crypto_slot_addr(c, c->slot));
        return false;
    }
    c->status |= CRYPTO_STATUS_BUSY;
    op = d[CRYPTO_D_OP];
    flags = d[CRYPTO_D_FLAGS];
    if (op != CRYPTO_OP_SHA256 && op != CRYPTO_OP_CRC32C) {
        crypto_finish(dev, c, CRYPTO_ST_BAD_OP, op);
        return false;
    }
    if ((flags & ~CRYPTO_F_ALL) ||
        !(flags & CRYPTO_F_INIT) == !(flags & CRYPTO_F_STATE_IN)) {
        crypto_finish(dev, c, CRYPTO_ST_BAD_FLAGS, flags);
        return false;
    }
    if (devvm_ld16(d + CRYPTO_D_SG_COUNT) > CRYPTO_MAX_SG) {
        crypto_finish(dev, c, CRYPTO_ST_BAD_LEN,
                      devvm_ld16(d + CRYPTO_D_SG_COUNT));
        return false;
    }
    if ((flags & CRYPTO_F_FINAL) &&
        devvm_ld32(d + CRYPTO_D_DST_LEN) <
        (op == CRYPTO_OP_SHA256 ? CRYPTO_SHA256_DIGEST
                                : CRYPTO_CRC32C_DIGEST)) {
        crypto_finish(dev, c, CRYPTO_ST_BAD_LEN,
                      devvm_ld32(d + CRYPTO_D_DST_LEN));
        return false;
    }
    if (flags & CRYPTO_F_INIT) {
        hash_init(&c->ctx, op);
    } else {
        st = crypto_state_in(dev, c, op, devvm_ld64(d + CRYPTO_D_STATE_ADDR));
        if (st != CRYPTO_ST_OK) {
            crypto_finish(dev, c, st, devvm_ld64(d + CRYPTO_D_STATE_ADDR));
            return false;
        }
    }
    c->sg_i = 0;
    c->seg_off = c->seg_len = 0;
    return true;
}

/* The next SG entry into seg_*; a CRYPTO_ST_*. */
static uint16_t crypto_next_seg(struct devvm_dev *dev, struct crypto *c,
                                uint64_t *detail)
{
    uint64_t addr = devvm_ld64(c->desc + CRYPTO_D_SG_ADDR) +
                    (uint64_t)c->sg_i * CRYPTO_SG_SIZE;
    uint8_t sg[CRYPTO_SG_SIZE];

    *detail = addr;
    if (devvm_dma_read(dev, addr, sg, sizeof(sg))) {
        return CRYPTO_ST_DMA_FAULT;
    }
    c->seg_addr = devvm_ld64(sg + CRYPTO_SG_ADDR);
    c->seg_len = devvm_ld32(sg + CRYPTO_SG_LEN);
    c->seg_off = 0;
    *detail = c->seg_len;
    if (c->seg_len > CRYPTO_MAX_SEG_LEN ||
        c->hashed + (uint64_t)c->seg_len > 0xffffffffull) {
        return CRYPTO_ST_BAD_LEN;
    }
    c->sg_i++;
    return CRYPTO_ST_OK;
}

/* Hash up to @budget more bytes; true when the sources are done. */
static bool crypto_feed(struct devvm_dev *dev, struct crypto *c,
                        uint32_t budget, uint16_t *st, uint64_t *detail)
{
    const struct crypto_type *t = devvm_type_data(dev);
    uint16_t count = devvm_ld16(c->desc + CRYPTO_D_SG_COUNT);

    *st = CRYPTO_ST_OK;
    while (budget) {
        uint32_t n;
        const void *p;

        if (c->seg_off == c->seg_len) {
            if (c->sg_i == count) {
                return true;
            }
            *st = crypto_next_seg(dev, c, detail);
            if (*st != CRYPTO_ST_OK) {
                return true;
            }
            continue;
        }
        n = c->seg_len - c->seg_off;
        n = n < budget ? n : budget;
        p = devvm_dma_map(dev, c->seg_addr + c->seg_off, n, 0);
        if (!p) {
            n = n < CRYPTO_BOUNCE ? n : CRYPTO_BOUNCE;
            if (devvm_dma_read(dev, c->seg_addr + c->seg_off, c->bounce,
                               n)) {
                *st = CRYPTO_ST_DMA_FAULT;
                *detail = c->seg_addr + c->seg_off;
                return true;
            }
            p = c->bounce;
        }
        hash_update(&c->ctx, t, p, n);
        c->seg_off += n;
        c->hashed += n;
        c->bytes += n;
        budget -= n;
    }
    return false;
}

/* The sources are hashed: the digest and the state out, then done. */
static void crypto_complete(struct devvm_dev *dev, struct crypto *c)
{
    const struct crypto_type *t = devvm_type_data(dev);
    uint8_t flags = c->desc[CRYPTO_D_FLAGS];
    uint8_t digest[CRYPTO_SHA256_DIGEST];
    uint64_t addr;
    unsigned len;

    if (flags & CRYPTO_F_STATE_OUT) {
        addr = devvm_ld64(c->desc + CRYPTO_D_STATE_ADDR);
        if (crypto_state_out(dev, c, addr)) {
            crypto_finish(dev, c, CRYPTO_ST_DMA_FAULT, addr);
            return;
        }
    }
    if (flags & CRYPTO_F_FINAL) {
        len = hash_final(&c->ctx, t, digest);
        addr = devvm_ld64(c->desc + CRYPTO_D_DST_ADDR);
        if (devvm_dma_write(dev, addr, digest, len)) {
            crypto_finish(dev, c, CRYPTO_ST_DMA_FAULT, addr);
            return;
        }
    }
    crypto_finish(dev, c, CRYPTO_ST_OK, 0);
}

/* Background work: descriptors, a slice of data at a time. */
static void crypto_poll(struct devvm_dev *dev)
{
    struct crypto *c = devvm_priv(dev);
    uint32_t budget = CRYPTO_SLICE;

    crypto_coalesce_timer(dev, c);
    while ((c->status & (CRYPTO_STATUS_ENABLED | CRYPTO_STATUS_HALTED)) ==
           CRYPTO_STATUS_ENABLED && budget) {
        uint64_t before = c->bytes, detail = 0;
        uint16_t st;
        bool fed;

        if (!(c->status & CRYPTO_STATUS_BUSY)) {
            if (c->cons == c->prod) {
                break;
            }
            if (!crypto_start(dev, c)) {
                budget = budget > CRYPTO_DESC_SIZE ?
                         budget - CRYPTO_DESC_SIZE : 0;
                continue;
            }
        }
        fed = crypto_feed(dev, c, budget, &st, &detail);
        budget -= c->bytes - before < budget ? c->bytes - before : budget;
        if (!fed) {
            break;          /* the slice is spent: go on at the next poll */
        }
        if (st != CRYPTO_ST_OK) {
            crypto_finish(dev, c, st, detail);
        } else {
            crypto_complete(dev, c);
        }
        budget = budget > CRYPTO_DESC_SIZE ? budget - CRYPTO_DESC_SIZE : 0;
    }
}

/* ---- registers ----------------------------------------------------------- */

static void crypto_reset(struct devvm_dev *dev)
{
    struct crypto *c = devvm_priv(dev);

    __builtin_memset(c, 0, sizeof(*c));
    c->irq_mask = CRYPTO_IRQ_DONE | CRYPTO_IRQ_ERROR;
    c->coal_count = 1;
}

static int crypto_init(struct devvm_dev *dev)
{
    crypto_reset(dev);
    return 0;
}

static uint64_t crypto_read(struct devvm_dev *dev, unsigned bar,
                            uint64_t off, unsigned size)
{
    struct crypto *c = devvm_priv(dev);

    if (bar != 0 || size != 4) {
        return 0;
    }
    if (off >= CRYPTO_REG_ERR_LOG &&
        off < CRYPTO_REG_ERR_LOG + sizeof(c->err_log)) {
        return devvm_ld32(c->err_log + (off - CRYPTO_REG_ERR_LOG));
    }
    switch (off) {
    case CRYPTO_REG_ID:
        return CRYPTO_ID;
    case CRYPTO_REG_VERSION:
        return CRYPTO_VERSION;
    case CRYPTO_REG_CAPS:
        return CRYPTO_CAP_SHA256 | CRYPTO_CAP_CRC32C |
               (uint32_t)CRYPTO_MAX_SG << CRYPTO_CAP_MAX_SG_SHIFT;
    case CRYPTO_REG_CTRL:
        return c->ctrl;
    case CRYPTO_REG_STATUS:
        return c->status;
    case CRYPTO_REG_RING_BASE_LO:
        return (uint32_t)c->ring_base;
    case CRYPTO_REG_RING_BASE_HI:
        return c->ring_base >> 32;
    case CRYPTO_REG_RING_SIZE:
        return c->ring_size;
    case CRYPTO_REG_RING_PROD:
        return c->prod;
    case CRYPTO_REG_RING_CONS:
        return c->cons;
    case CRYPTO_REG_IRQ_STATUS:
        return c->irq_status;
    case CRYPTO_REG_IRQ_MASK:
        return c->irq_mask;
    case CRYPTO_REG_COAL_COUNT:
        return c->coal_count;
    case CRYPTO_REG_COAL_USEC:
        return c->coal_usec;
    case CRYPTO_REG_ERR_COUNT:
        return c->err_count;
    case CRYPTO_REG_DONE_LO:
        return (uint32_t)c->done;
    case CRYPTO_REG_DONE_HI:
        return c->done >> 32;
    case CRYPTO_REG_BYTES_LO:
        return (uint32_t)c->bytes;
    case CRYPTO_REG_BYTES_HI:
        return c->bytes >> 32;
    case CRYPTO_REG_IRQ_COUNT:
        return c->irq_count;
    default:
        return 0;
    }
}

/* CTRL.ENABLE: the ring must be set up. */
static void crypto_enable(struct devvm_dev *dev, struct crypto *c)
{
    uint32_t n = c->ring_size;

    if (c->status & CRYPTO_STATUS_ENABLED) {
        return;
    }
    if (!n || n > CRYPTO_RING_MAX || (n & (n - 1)) ||
        c->ring_base % CRYPTO_DESC_SIZE) {
        c->ctrl &= ~CRYPTO_CTRL_ENABLE;
        crypto_error(dev, c, CRYPTO_ST_RING_CONFIG, CRYPTO_ERR_NO_INDEX,
                     c->ring_base | n);
        return;
    }
    c->status |= CRYPTO_STATUS_ENABLED;
}

static void crypto_write(struct devvm_dev *dev, unsigned bar, uint64_t off,
                         unsigned size, uint64_t value)
{
    struct crypto *c = devvm_priv(dev);
    uint32_t v = value;
    bool ring_idle = !(c->status & CRYPTO_STATUS_ENABLED);

    if (bar != 0 || size != 4) {
        return;
    }
    switch (off) {
    case CRYPTO_REG_CTRL:
        if (v & CRYPTO_CTRL_RESET) {
            crypto_reset(dev);
            return;
        }
        c->ctrl = v & CRYPTO_CTRL_ENABLE;
        if (v & CRYPTO_CTRL_ENABLE) {
            crypto_enable(dev, c);
        }
        /* clearing ENABLE stops the ring after the descriptor in hand */
        if (!(v & CRYPTO_CTRL_ENABLE) &&
            !(c->status & CRYPTO_STATUS_BUSY)) {
            c->status &= ~CRYPTO_STATUS_ENABLED;
        }
        break;
    case CRYPTO_REG_RING_BASE_LO:
        if (ring_idle) {
            c->ring_base = (c->ring_base & ~0xffffffffull) | v;
        }
        break;
    case CRYPTO_REG_RING_BASE_HI:
        if (ring_idle) {
            c->ring_base = (c->ring_base & 0xffffffffull) |
                           (uint64_t)v << 32;
        }
        break;
    case CRYPTO_REG_RING_SIZE:
        if (ring_idle) {
            c->ring_size = v;
        }
        break;
    case CRYPTO_REG_RING_PROD:
        /* free-running: at most ring_size ahead of CONS, never back */
        if (v - c->cons > c->ring_size || v - c->prod > c->ring_size) {
            crypto_error(dev, c, CRYPTO_ST_RING_INDEX, CRYPTO_ERR_NO_INDEX,
                         v);
            break;
        }
        c->prod = v;
        break;
    case CRYPTO_REG_IRQ_STATUS:
        c->irq_status &= ~v;
        break;
    case CRYPTO_REG_IRQ_MASK:
        c->irq_mask = v & (CRYPTO_IRQ_DONE | CRYPTO_IRQ_ERROR);
        crypto_signal(dev, c);
        break;
    case CRYPTO_REG_COAL_COUNT:
        c->coal_count = v;
        break;
    case CRYPTO_REG_COAL_USEC:
        c->coal_usec = v;
        break;
    default:
        break;
    }
}

/* ---- the device ---------------------------------------------------------- */

static struct devvm_device crypto_device = {
    .name = "crypto",
    .vendor_id = CRYPTO_VENDOR_ID,
    .device_id = CRYPTO_DEVICE_ID,
    .subsystem_vendor_id = CRYPTO_SUBSYS_VENDOR_ID,
    .subsystem_id = CRYPTO_SUBSYS_ID,
    .revision = CRYPTO_REVISION,
    .class_code = CRYPTO_CLASS_CODE,
    .bars = {
        [0] = { .type = DEVVM_BAR_MEM32, .size = CRYPTO_BAR0_SIZE },
        [CRYPTO_MSIX_BAR] = { .type = DEVVM_BAR_MEM32,
                              .size = CRYPTO_MSIX_BAR_SIZE },
    },
    .msix_vectors = CRYPTO_MSIX_VECTORS,
    .msix_bar = CRYPTO_MSIX_BAR,
    .msix_table_offset = CRYPTO_MSIX_TABLE,
    .msix_pba_offset = CRYPTO_MSIX_PBA,
    .priv_size = sizeof(struct crypto),
    .type_data_size = sizeof(struct crypto_type),
    .type_init = crypto_type_init,
    .init = crypto_init,
    .read = crypto_read,
    .write = crypto_write,
    .reset = crypto_reset,
    .poll = crypto_poll,
    .poll_interval_ns = CRYPTO_POLL_NS,
};

DEVVM_DEVICE(crypto_device)

/* What it needs: a core of its own (the engine polls), one client. */
DEVVM_NEEDS(.name = "crypto",
            .vendor_id = CRYPTO_VENDOR_ID, .device_id = CRYPTO_DEVICE_ID,
            .cores = DEVVM_NEEDS_CORE_EXCLUSIVE, .percent = 100,
            .memory_mib = 64, .max_clients = 4,
            .flags = DEVVM_NEEDS_F_SHAREABLE);
