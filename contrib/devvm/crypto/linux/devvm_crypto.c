// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * devvm_crypto: Linux driver for devvm-crypto, the hash offload engine
 * of contrib/devvm/crypto (docs/devvm/crypto.rst is its datasheet).
 *
 * It registers an asynchronous ahash "sha256" (driver "sha256-devvm",
 * priority 300, above the kernel's own implementations), so the crypto
 * manager runs its self-tests on it at registration and AF_ALG users get
 * it.  Each request becomes one descriptor (or several for an SG list of
 * more than the engine's 256 entries) in a ring of 128 in coherent
 * memory; requests beyond the free slots wait in a queue.  Completions
 * come from MSI-X vector 0, handled in a threaded interrupt.
 *
 * The intermediate state lives in the request context between
 * init/update/final and is what export/import copy; it goes to the
 * engine in a per-request buffer from a DMA pool.
 *
 * A watchdog (every second while anything is outstanding or the device
 * is lost) reads ID and STATUS: a device that vanished (all ones, as
 * devvm-proxy reads while its device VM is gone), that was reset behind
 * the driver's back (a restarted device VM), or that keeps a request
 * more than DVC_TIMEOUT_MS, gets every outstanding request failed (-EIO
 * or -ETIMEDOUT) and its ring set up again once it answers.
 *
 * The algorithm is registered at the first probe and unregistered at
 * module exit, so that unbinding a device while tfms exist is safe:
 * requests then fail with -ENODEV until a device is bound again.
 */
#include <crypto/internal/hash.h>
#include <crypto/sha2.h>
#include <linux/delay.h>
#include <linux/dma-mapping.h>
#include <linux/dmapool.h>
#include <linux/interrupt.h>
#include <linux/io.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/pci.h>
#include <linux/scatterlist.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/workqueue.h>
#include <asm/unaligned.h>

#include "../crypto.h"

#define DVC_NAME                "devvm_crypto"
#define DVC_RING                128
#define DVC_TIMEOUT_MS          10000
#define DVC_WATCHDOG_MS         1000
/* the per-request DMA buffer: the state, then the digest */
#define DVC_BUF_STATE           0
#define DVC_BUF_DIGEST          CRYPTO_STATE_SIZE
#define DVC_BUF_SIZE            (CRYPTO_STATE_SIZE + 64)

struct dvc_dev;

/* What export/import copy. */
struct dvc_export {
	u8 state[CRYPTO_STATE_SIZE];
	u32 started;		/* the state is valid (else: INIT) */
};

struct dvc_reqctx {
	struct dvc_export st;
	/* while in flight */
	struct ahash_request *req;
	struct list_head queue;
	struct dvc_dev *dd;
	u8 flags;		/* the last piece's: FINAL or STATE_OUT */
	unsigned int nbytes;
	int mapped, nents;
	unsigned int pieces, done_pieces;
	int err;
	void *buf;
	dma_addr_t buf_dma;
	unsigned long submitted;	/* jiffies */
};

struct dvc_slot {
	struct ahash_request *req;
	bool last;		/* the request's last piece */
};

struct dvc_dev {
	struct pci_dev *pdev;
	void __iomem *regs;
	spinlock_t lock;	/* everything below */
	u8 *ring;
	dma_addr_t ring_dma;
	u8 *sgt;		/* CRYPTO_MAX_SG entries per slot */
	dma_addr_t sgt_dma;
	struct dma_pool *pool;
	struct dvc_slot slots[DVC_RING];
	u32 prod, cons;
	struct list_head queue;
	bool lost, removing;
	struct delayed_work watchdog;
	struct list_head node;	/* dvc_devices */
	u64 requests, errors, resets;
};

static LIST_HEAD(dvc_devices);
static DEFINE_SPINLOCK(dvc_devices_lock);
static DEFINE_MUTEX(dvc_register_lock);
static bool dvc_registered;
static unsigned int dvc_next;

static u32 dvc_rd(struct dvc_dev *dd, u32 reg)
{
	return readl(dd->regs + reg);
}

static void dvc_wr(struct dvc_dev *dd, u32 reg, u32 val)
{
	writel(val, dd->regs + reg);
}

static unsigned int dvc_free_slots(struct dvc_dev *dd)
{
	return DVC_RING - (dd->prod - dd->cons);
}

/* ---- the ring ------------------------------------------------------- */

/* Program the ring; false if the device does not take it. */
static bool dvc_hw_init(struct dvc_dev *dd)
{
	dvc_wr(dd, CRYPTO_REG_CTRL, CRYPTO_CTRL_RESET);
	dd->prod = dd->cons = 0;
	memset(dd->ring, 0, DVC_RING * CRYPTO_DESC_SIZE);
	dvc_wr(dd, CRYPTO_REG_RING_BASE_LO, lower_32_bits(dd->ring_dma));
	dvc_wr(dd, CRYPTO_REG_RING_BASE_HI, upper_32_bits(dd->ring_dma));
	dvc_wr(dd, CRYPTO_REG_RING_SIZE, DVC_RING);
	dvc_wr(dd, CRYPTO_REG_COAL_COUNT, 1);
	dvc_wr(dd, CRYPTO_REG_IRQ_MASK, 0);
	dvc_wr(dd, CRYPTO_REG_CTRL, CRYPTO_CTRL_ENABLE);
	return dvc_rd(dd, CRYPTO_REG_STATUS) == CRYPTO_STATUS_ENABLED;
}

/* Write the request's descriptors; the caller rings the doorbell. */
static void dvc_submit(struct dvc_dev *dd, struct ahash_request *req)
{
	struct dvc_reqctx *rc = ahash_request_ctx(req);
	struct scatterlist *sg = req->src;
	unsigned int left = rc->nbytes, piece;
	int mapped = rc->mapped;

	rc->submitted = jiffies;
	for (piece = 0; piece < rc->pieces; piece++) {
		u32 slot = dd->prod % DVC_RING;
		u8 *d = dd->ring + slot * CRYPTO_DESC_SIZE;
		u8 *table = dd->sgt + (size_t)slot * CRYPTO_MAX_SG *
			    CRYPTO_SG_SIZE;
		bool first = piece == 0, last = piece == rc->pieces - 1;
		unsigned int count = 0;
		u8 flags;

		while (mapped && left && count < CRYPTO_MAX_SG) {
			u32 len = min_t(unsigned int, sg_dma_len(sg), left);

			put_unaligned_le64(sg_dma_address(sg),
					   table + count * CRYPTO_SG_SIZE);
			put_unaligned_le32(len, table + count * CRYPTO_SG_SIZE +
					   CRYPTO_SG_LEN);
			put_unaligned_le32(0, table + count * CRYPTO_SG_SIZE +
					   CRYPTO_SG_LEN + 4);
			left -= len;
			count++;
			mapped--;
			sg = sg_next(sg);
		}
		flags = first && !rc->st.started ? CRYPTO_F_INIT
						 : CRYPTO_F_STATE_IN;
		flags |= last ? rc->flags : CRYPTO_F_STATE_OUT;
		memset(d, 0, CRYPTO_DESC_SIZE);
		d[CRYPTO_D_OP] = CRYPTO_OP_SHA256;
		d[CRYPTO_D_FLAGS] = flags;
		put_unaligned_le16(count, d + CRYPTO_D_SG_COUNT);
		put_unaligned_le64(dd->sgt_dma + (u64)slot * CRYPTO_MAX_SG *
				   CRYPTO_SG_SIZE, d + CRYPTO_D_SG_ADDR);
		put_unaligned_le64(rc->buf_dma + DVC_BUF_DIGEST,
				   d + CRYPTO_D_DST_ADDR);
		put_unaligned_le32(SHA256_DIGEST_SIZE, d + CRYPTO_D_DST_LEN);
		put_unaligned_le64(rc->buf_dma + DVC_BUF_STATE,
				   d + CRYPTO_D_STATE_ADDR);
		dd->slots[slot].req = req;
		dd->slots[slot].last = last;
		dd->prod++;
	}
	dd->requests++;
}

/* Start what waits, as far as slots allow. */
static void dvc_kick(struct dvc_dev *dd)
{
	struct dvc_reqctx *rc, *tmp;
	bool rang = false;

	list_for_each_entry_safe(rc, tmp, &dd->queue, queue) {
		if (dd->lost || rc->pieces > dvc_free_slots(dd))
			break;
		list_del(&rc->queue);
		dvc_submit(dd, rc->req);
		rang = true;
	}
	if (rang) {
		/* descriptors before the doorbell */
		wmb();
		dvc_wr(dd, CRYPTO_REG_RING_PROD, dd->prod);
	}
}

/* ---- finishing requests ------------------------------------------------ */

static void dvc_release(struct dvc_dev *dd, struct ahash_request *req)
{
	struct dvc_reqctx *rc = ahash_request_ctx(req);

	if (rc->mapped) {
		dma_unmap_sg(&dd->pdev->dev, req->src, rc->nents,
			     DMA_TO_DEVICE);
		rc->mapped = 0;
	}
	if (rc->buf) {
		dma_pool_free(dd->pool, rc->buf, rc->buf_dma);
		rc->buf = NULL;
	}
}

/* Called without dd->lock: the caller's callback may submit again. */
static void dvc_complete(struct ahash_request *req, int err)
{
	local_bh_disable();
	ahash_request_complete(req, err);
	local_bh_enable();
}

/*
 * Take the finished request's results (under dd->lock); the caller
 * completes it after unlocking.
 */
static void dvc_finish(struct dvc_dev *dd, struct ahash_request *req)
{
	struct dvc_reqctx *rc = ahash_request_ctx(req);

	if (!rc->err) {
		if (rc->flags & CRYPTO_F_FINAL) {
			memcpy(req->result, rc->buf + DVC_BUF_DIGEST,
			       SHA256_DIGEST_SIZE);
			rc->st.started = 0;
		} else {
			memcpy(rc->st.state, rc->buf + DVC_BUF_STATE,
			       CRYPTO_STATE_SIZE);
			rc->st.started = 1;
		}
	} else {
		dd->errors++;
	}
	dvc_release(dd, req);
}

/*
 * Fail every request in flight and waiting with @err (the device is
 * lost, reset or going away), then set the ring up again if it answers.
 */
static void dvc_fail_all(struct dvc_dev *dd, int err, bool reinit)
{
	struct ahash_request *done[DVC_RING + 1];
	struct dvc_reqctx *rc, *tmp;
	LIST_HEAD(waiting);
	unsigned int n = 0, i;
	unsigned long flags;

	spin_lock_irqsave(&dd->lock, flags);
	for (; dd->cons != dd->prod; dd->cons++) {
		struct dvc_slot *s = &dd->slots[dd->cons % DVC_RING];

		if (s->req && s->last) {
			rc = ahash_request_ctx(s->req);
			rc->err = err;
			dvc_finish(dd, s->req);
			done[n++] = s->req;
		}
		s->req = NULL;
	}
	list_splice_init(&dd->queue, &waiting);
	list_for_each_entry(rc, &waiting, queue)
		dvc_release(dd, rc->req);
	if (reinit) {
		dd->resets++;
		dd->lost = !dvc_hw_init(dd);
	}
	spin_unlock_irqrestore(&dd->lock, flags);

	for (i = 0; i < n; i++)
		dvc_complete(done[i], err);
	list_for_each_entry_safe(rc, tmp, &waiting, queue) {
		list_del(&rc->queue);
		dvc_complete(rc->req, err);
	}
}

/* Completions: from the interrupt thread, and the watchdog. */
static void dvc_reap(struct dvc_dev *dd)
{
	struct ahash_request *done[DVC_RING];
	unsigned int n = 0, i;
	unsigned long flags;
	u32 hw;

	spin_lock_irqsave(&dd->lock, flags);
	dvc_wr(dd, CRYPTO_REG_IRQ_STATUS, CRYPTO_IRQ_DONE | CRYPTO_IRQ_ERROR);
	hw = dvc_rd(dd, CRYPTO_REG_RING_CONS);
	if (hw - dd->cons > dd->prod - dd->cons) {
		/* all ones, or a reset engine: the watchdog sorts it out */
		spin_unlock_irqrestore(&dd->lock, flags);
		return;
	}
	/* the write-backs before reading them */
	rmb();
	for (; dd->cons != hw; dd->cons++) {
		u32 slot = dd->cons % DVC_RING;
		struct dvc_slot *s = &dd->slots[slot];
		u32 st = get_unaligned_le32(dd->ring + slot * CRYPTO_DESC_SIZE +
					    CRYPTO_D_STATUS);
		struct dvc_reqctx *rc;

		if (!s->req)
			continue;
		rc = ahash_request_ctx(s->req);
		if (st != CRYPTO_ST_DONE && !rc->err) {
			dev_warn_ratelimited(&dd->pdev->dev,
					     "descriptor %u failed: status 0x%x\n",
					     slot, st);
			rc->err = (st & 0xffff) == CRYPTO_ST_DMA_FAULT ? -EFAULT
								       : -EIO;
		}
		if (s->last) {
			dvc_finish(dd, s->req);
			done[n++] = s->req;
		}
		s->req = NULL;
	}
	dvc_kick(dd);
	spin_unlock_irqrestore(&dd->lock, flags);

	for (i = 0; i < n; i++) {
		dvc_complete(done[i], ((struct dvc_reqctx *)
				       ahash_request_ctx(done[i]))->err);
	}
}

static irqreturn_t dvc_irq_thread(int irq, void *data)
{
	dvc_reap(data);
	return IRQ_HANDLED;
}

static void dvc_watchdog(struct work_struct *work)
{
	struct dvc_dev *dd = container_of(to_delayed_work(work),
					  struct dvc_dev, watchdog);
	unsigned long flags, oldest = 0;
	bool busy, lost, reset = false, stuck = false;
	u32 id, status;

	id = dvc_rd(dd, CRYPTO_REG_ID);
	status = dvc_rd(dd, CRYPTO_REG_STATUS);
	spin_lock_irqsave(&dd->lock, flags);
	busy = dd->cons != dd->prod || !list_empty(&dd->queue);
	if (dd->cons != dd->prod) {
		struct ahash_request *req = dd->slots[dd->cons % DVC_RING].req;

		if (req) {
			oldest = ((struct dvc_reqctx *)
				  ahash_request_ctx(req))->submitted;
		}
	}
	lost = dd->lost;
	spin_unlock_irqrestore(&dd->lock, flags);

	if (id != CRYPTO_ID) {
		if (!lost) {
			dev_warn(&dd->pdev->dev, "the device is gone (ID 0x%08x): "
				 "failing its requests\n", id);
			spin_lock_irqsave(&dd->lock, flags);
			dd->lost = true;
			spin_unlock_irqrestore(&dd->lock, flags);
			dvc_fail_all(dd, -EIO, false);
		}
	} else if (lost || !(status & CRYPTO_STATUS_ENABLED) ||
		   (status & CRYPTO_STATUS_HALTED)) {
		reset = true;
	} else if (oldest &&
		   time_after(jiffies, oldest +
			      msecs_to_jiffies(DVC_TIMEOUT_MS))) {
		stuck = true;
	} else if (busy) {
		/* an interrupt lost on the way costs at most a second */
		dvc_reap(dd);
	}
	if (stuck)
		dev_warn(&dd->pdev->dev, "a request took over %u ms: failing "
			 "its requests, setting the ring up again\n",
			 DVC_TIMEOUT_MS);
	else if (reset && lost)
		dev_info(&dd->pdev->dev, "the device is back: setting the "
			 "ring up again\n");
	else if (reset)
		dev_warn(&dd->pdev->dev, "the device was reset (STATUS 0x%x): "
			 "failing its requests, setting the ring up again\n",
			 status);
	if (reset || stuck)
		dvc_fail_all(dd, stuck ? -ETIMEDOUT : -EIO, true);
	spin_lock_irqsave(&dd->lock, flags);
	busy = dd->lost || dd->cons != dd->prod || !list_empty(&dd->queue);
	if (busy && !dd->removing) {
		schedule_delayed_work(&dd->watchdog,
				      msecs_to_jiffies(DVC_WATCHDOG_MS));
	}
	spin_unlock_irqrestore(&dd->lock, flags);
}

/* ---- the ahash ----------------------------------------------------------- */

static struct dvc_dev *dvc_pick(void)
{
	struct dvc_dev *dd, *pick = NULL;
	unsigned int i = 0, n = 0;

	spin_lock(&dvc_devices_lock);
	list_for_each_entry(dd, &dvc_devices, node)
		n++;
	list_for_each_entry(dd, &dvc_devices, node) {
		if (i++ == dvc_next % (n ? n : 1))
			pick = dd;
	}
	dvc_next++;
	spin_unlock(&dvc_devices_lock);
	return pick;
}

/*
 * Queue @req for @nbytes of its source; its last descriptor has @flags:
 * CRYPTO_F_FINAL (the digest) or CRYPTO_F_STATE_OUT (keep the state).
 */
static int dvc_enqueue(struct ahash_request *req, unsigned int nbytes,
		       u8 flags)
{
	struct dvc_reqctx *rc = ahash_request_ctx(req);
	gfp_t gfp = req->base.flags & CRYPTO_TFM_REQ_MAY_SLEEP ? GFP_KERNEL
								: GFP_ATOMIC;
	struct dvc_dev *dd = dvc_pick();
	unsigned long irqflags;
	int nents;

	if (!dd)
		return -ENODEV;
	rc->dd = dd;
	rc->req = req;
	rc->flags = flags;
	rc->nbytes = nbytes;
	rc->err = 0;
	rc->mapped = rc->nents = 0;
	rc->buf = dma_pool_alloc(dd->pool, gfp, &rc->buf_dma);
	if (!rc->buf)
		return -ENOMEM;
	if (rc->st.started) {
		memcpy(rc->buf + DVC_BUF_STATE, rc->st.state,
		       CRYPTO_STATE_SIZE);
	}
	if (nbytes) {
		nents = sg_nents_for_len(req->src, nbytes);
		if (nents < 0) {
			dma_pool_free(dd->pool, rc->buf, rc->buf_dma);
			rc->buf = NULL;
			return nents;
		}
		rc->nents = nents;
		rc->mapped = dma_map_sg(&dd->pdev->dev, req->src, nents,
					DMA_TO_DEVICE);
		if (!rc->mapped) {
			dma_pool_free(dd->pool, rc->buf, rc->buf_dma);
			rc->buf = NULL;
			return -ENOMEM;
		}
	}
	rc->pieces = max(1, DIV_ROUND_UP(rc->mapped, CRYPTO_MAX_SG));
	if (rc->pieces > DVC_RING) {
		dvc_release(dd, req);
		return -E2BIG;
	}
	spin_lock_irqsave(&dd->lock, irqflags);
	if (dd->lost || dd->removing) {
		dvc_release(dd, req);
		spin_unlock_irqrestore(&dd->lock, irqflags);
		return dd->lost ? -EIO : -ENODEV;
	}
	list_add_tail(&rc->queue, &dd->queue);
	dvc_kick(dd);
	if (!delayed_work_pending(&dd->watchdog)) {
		schedule_delayed_work(&dd->watchdog,
				      msecs_to_jiffies(DVC_WATCHDOG_MS));
	}
	spin_unlock_irqrestore(&dd->lock, irqflags);
	return -EINPROGRESS;
}

static int dvc_init(struct ahash_request *req)
{
	struct dvc_reqctx *rc = ahash_request_ctx(req);

	memset(&rc->st, 0, sizeof(rc->st));
	return 0;
}

static int dvc_update(struct ahash_request *req)
{
	if (!req->nbytes)
		return 0;
	return dvc_enqueue(req, req->nbytes, CRYPTO_F_STATE_OUT);
}

static int dvc_final(struct ahash_request *req)
{
	return dvc_enqueue(req, 0, CRYPTO_F_FINAL);
}

static int dvc_finup(struct ahash_request *req)
{
	return dvc_enqueue(req, req->nbytes, CRYPTO_F_FINAL);
}

static int dvc_digest(struct ahash_request *req)
{
	dvc_init(req);
	return dvc_enqueue(req, req->nbytes, CRYPTO_F_FINAL);
}

static int dvc_export(struct ahash_request *req, void *out)
{
	struct dvc_reqctx *rc = ahash_request_ctx(req);

	memcpy(out, &rc->st, sizeof(rc->st));
	return 0;
}

static int dvc_import(struct ahash_request *req, const void *in)
{
	struct dvc_reqctx *rc = ahash_request_ctx(req);

	memcpy(&rc->st, in, sizeof(rc->st));
	return 0;
}

static int dvc_init_tfm(struct crypto_ahash *tfm)
{
	crypto_ahash_set_reqsize(tfm, sizeof(struct dvc_reqctx));
	return 0;
}

static struct ahash_alg dvc_sha256 = {
	.init = dvc_init,
	.update = dvc_update,
	.final = dvc_final,
	.finup = dvc_finup,
	.digest = dvc_digest,
	.export = dvc_export,
	.import = dvc_import,
	.init_tfm = dvc_init_tfm,
	.halg = {
		.digestsize = SHA256_DIGEST_SIZE,
		.statesize = sizeof(struct dvc_export),
		.base = {
			.cra_name = "sha256",
			.cra_driver_name = "sha256-devvm",
			.cra_priority = 300,
			.cra_flags = CRYPTO_ALG_ASYNC |
				     CRYPTO_ALG_KERN_DRIVER_ONLY |
				     CRYPTO_ALG_ALLOCATES_MEMORY,
			.cra_blocksize = SHA256_BLOCK_SIZE,
			.cra_module = THIS_MODULE,
		},
	},
};

/* ---- the PCI driver ------------------------------------------------------ */

static int dvc_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct device *dev = &pdev->dev;
	struct dvc_dev *dd;
	int ret;

	dd = devm_kzalloc(dev, sizeof(*dd), GFP_KERNEL);
	if (!dd)
		return -ENOMEM;
	dd->pdev = pdev;
	spin_lock_init(&dd->lock);
	INIT_LIST_HEAD(&dd->queue);
	INIT_DELAYED_WORK(&dd->watchdog, dvc_watchdog);
	pci_set_drvdata(pdev, dd);

	ret = pcim_enable_device(pdev);
	if (ret)
		return ret;
	ret = pcim_iomap_regions(pdev, BIT(0), DVC_NAME);
	if (ret)
		return ret;
	dd->regs = pcim_iomap_table(pdev)[0];
	if (dvc_rd(dd, CRYPTO_REG_ID) != CRYPTO_ID ||
	    dvc_rd(dd, CRYPTO_REG_VERSION) != CRYPTO_VERSION ||
	    !(dvc_rd(dd, CRYPTO_REG_CAPS) & CRYPTO_CAP_SHA256)) {
		dev_err(dev, "not a devvm-crypto version %u with SHA-256 "
			"(ID 0x%08x, VERSION %u, CAPS 0x%x)\n", CRYPTO_VERSION,
			dvc_rd(dd, CRYPTO_REG_ID), dvc_rd(dd, CRYPTO_REG_VERSION),
			dvc_rd(dd, CRYPTO_REG_CAPS));
		return -ENODEV;
	}
	ret = dma_set_mask_and_coherent(dev, DMA_BIT_MASK(64));
	if (ret)
		return ret;
	pci_set_master(pdev);
	dd->ring = dmam_alloc_coherent(dev, DVC_RING * CRYPTO_DESC_SIZE,
				       &dd->ring_dma, GFP_KERNEL);
	dd->sgt = dmam_alloc_coherent(dev, (size_t)DVC_RING * CRYPTO_MAX_SG *
				      CRYPTO_SG_SIZE, &dd->sgt_dma,
				      GFP_KERNEL);
	dd->pool = dmam_pool_create(DVC_NAME, dev, DVC_BUF_SIZE, 64, 0);
	if (!dd->ring || !dd->sgt || !dd->pool)
		return -ENOMEM;
	ret = pci_alloc_irq_vectors(pdev, 1, 1, PCI_IRQ_MSIX);
	if (ret < 0) {
		dev_err(dev, "no MSI-X vector: %d\n", ret);
		return ret;
	}
	/* the vectors are managed: pcim_enable_device() */
	ret = devm_request_threaded_irq(dev, pci_irq_vector(pdev, 0), NULL,
					dvc_irq_thread, IRQF_ONESHOT, DVC_NAME,
					dd);
	if (ret)
		return ret;
	if (!dvc_hw_init(dd)) {
		dev_err(dev, "the engine did not take the ring (STATUS 0x%x, "
			"%u errors logged)\n", dvc_rd(dd, CRYPTO_REG_STATUS),
			dvc_rd(dd, CRYPTO_REG_ERR_COUNT));
		return -EIO;
	}
	spin_lock(&dvc_devices_lock);
	list_add_tail(&dd->node, &dvc_devices);
	spin_unlock(&dvc_devices_lock);

	mutex_lock(&dvc_register_lock);
	if (!dvc_registered) {
		ret = crypto_register_ahash(&dvc_sha256);
		if (ret)
			dev_err(dev, "cannot register sha256-devvm: %d\n", ret);
		dvc_registered = !ret;
	}
	mutex_unlock(&dvc_register_lock);
	if (ret) {
		spin_lock(&dvc_devices_lock);
		list_del(&dd->node);
		spin_unlock(&dvc_devices_lock);
		dvc_wr(dd, CRYPTO_REG_CTRL, CRYPTO_CTRL_RESET);
		return ret;
	}
	dev_info(dev, "devvm-crypto: ring of %u, sha256-devvm\n", DVC_RING);
	return 0;
}

static void dvc_remove(struct pci_dev *pdev)
{
	struct dvc_dev *dd = pci_get_drvdata(pdev);
	unsigned long flags;

	/* no new requests for it */
	spin_lock(&dvc_devices_lock);
	list_del(&dd->node);
	spin_unlock(&dvc_devices_lock);
	spin_lock_irqsave(&dd->lock, flags);
	dd->removing = true;
	spin_unlock_irqrestore(&dd->lock, flags);
	cancel_delayed_work_sync(&dd->watchdog);
	/* what it has: answered if the engine finishes soon, else failed */
	if (dvc_rd(dd, CRYPTO_REG_ID) == CRYPTO_ID) {
		unsigned int i;

		for (i = 0; i < 100 && READ_ONCE(dd->cons) != READ_ONCE(dd->prod);
		     i++) {
			dvc_reap(dd);
			msleep(10);
		}
	}
	dvc_fail_all(dd, -ENODEV, false);
	dvc_wr(dd, CRYPTO_REG_CTRL, CRYPTO_CTRL_RESET);
	devm_free_irq(&pdev->dev, pci_irq_vector(pdev, 0), dd);
	dev_info(&pdev->dev, "devvm-crypto: removed after %llu requests "
		 "(%llu failed, %llu ring resets)\n", dd->requests,
		 dd->errors, dd->resets);
}

static const struct pci_device_id dvc_ids[] = {
	{ PCI_DEVICE(CRYPTO_VENDOR_ID, CRYPTO_DEVICE_ID) },
	{ }
};
MODULE_DEVICE_TABLE(pci, dvc_ids);

static struct pci_driver dvc_driver = {
	.name = DVC_NAME,
	.id_table = dvc_ids,
	.probe = dvc_probe,
	.remove = dvc_remove,
};

static int __init dvc_module_init(void)
{
	return pci_register_driver(&dvc_driver);
}

static void __exit dvc_module_exit(void)
{
	pci_unregister_driver(&dvc_driver);
	/* no tfm is left: each holds a reference to this module */
	if (dvc_registered)
		crypto_unregister_ahash(&dvc_sha256);
}

module_init(dvc_module_init);
module_exit(dvc_module_exit);

MODULE_DESCRIPTION("devvm-crypto hash offload engine (devvm)");
MODULE_LICENSE("GPL");
