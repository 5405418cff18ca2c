// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for the device entry point: arbitrary bytes become a sequence of ioctls
 * (header plus payload) on a device with the software tracker and a migration driver, plus
 * DMA writes in between. A user pointer cannot be validated in userspace, so the harness
 * points the payloads' ranges and bitmap fields at buffers it owns, sized and filled from the
 * input; everything else reaches the frame exactly as given.
 *
 * Each command is CMD_BYTES bytes: op, argsz, flags, a 32-byte payload, and up to four
 * 16-byte ranges for START.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <dmalog/dmalog.h>

#define PAYLOAD_BYTES 32
#define RANGES_GIVEN  4
#define CMD_BYTES     (1 + 4 + 4 + PAYLOAD_BYTES + 16 * RANGES_GIVEN)
#define BITMAP_MAX    (1u << 16) /* bytes: reports are clipped to this many pages */

enum op { OP_FEATURE, OP_RESET, OP_DMA, OP_PRECOPY, OP_COUNT };

struct harness {
	struct dmalog_swtrack *sw;
	int saving_fd;
};

static int mig_step(void *priv, uint32_t from, uint32_t to, int *fd, bool *to_error)
{
	int p[2];

	/* Open a pipe on the arcs that start a saving session, so precopy info has an fd. */
	if ((from == VFIO_DEVICE_STATE_RUNNING && to == VFIO_DEVICE_STATE_PRE_COPY) ||
	    (from == VFIO_DEVICE_STATE_STOP && to == VFIO_DEVICE_STATE_STOP_COPY)) {
		if (pipe(p))
			return -errno;
		close(p[1]);
		*fd = p[0];
	}
	return 0;
}

static int mig_size(void *priv, uint64_t *len)
{
	*len = 4096;
	return 0;
}

static int mig_precopy(void *priv, uint64_t *initial, uint64_t *dirty)
{
	*initial = 1;
	*dirty = 2;
	return 0;
}

static int log_start(void *p, const struct dmalog_range *r, uint32_t n, uint64_t *ps)
{
	return dmalog_swtrack_log_ops()->log_start(((struct harness *)p)->sw, r, n, ps);
}

static int log_stop(void *p)
{
	return dmalog_swtrack_log_ops()->log_stop(((struct harness *)p)->sw);
}

static int log_report(void *p, uint64_t iova, uint64_t len, struct dmalog_iova_bitmap *bm)
{
	return dmalog_swtrack_log_ops()->log_read_and_clear(((struct harness *)p)->sw, iova, len,
							    bm);
}

static const struct dmalog_log_ops log_ops = {
	.log_start = log_start, .log_stop = log_stop, .log_read_and_clear = log_report};
static const struct dmalog_mig_ops mig_ops = {
	.step = mig_step, .get_data_size = mig_size, .precopy_info = mig_precopy};

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

static void feature_cmd(struct dmalog_device *dev, struct harness *h, const uint8_t *cmd)
{
	static struct vfio_device_feature_dma_logging_range ranges[DMALOG_LOG_MAX_RANGES + 1];
	static uint8_t bitmap[BITMAP_MAX];
	uint8_t buf[sizeof(struct vfio_device_feature) + PAYLOAD_BYTES];
	struct vfio_device_feature *f = (void *)buf;
	uint32_t argsz = get32(cmd + 1), flags = get32(cmd + 5);
	uint8_t *payload = buf + sizeof(*f);
	int ret;

	memcpy(payload, cmd + 9, PAYLOAD_BYTES);
	/* The buffer is all the memory there is: a longer argsz would read past it. */
	if (argsz > sizeof(buf))
		argsz = sizeof(buf);
	f->argsz = argsz;
	f->flags = flags;

	switch (flags & VFIO_DEVICE_FEATURE_MASK) {
	case VFIO_DEVICE_FEATURE_DMA_LOGGING_START: {
		struct vfio_device_feature_dma_logging_control c;
		const uint8_t *given = cmd + 9 + PAYLOAD_BYTES;

		memcpy(&c, payload, sizeof(c));
		/* The first ranges come from the input; the rest repeat them further up. */
		for (uint32_t i = 0; i <= DMALOG_LOG_MAX_RANGES; i++) {
			ranges[i].iova = get64(given + 16 * (i % RANGES_GIVEN)) +
					 ((uint64_t)(i / RANGES_GIVEN) << 32);
			ranges[i].length = get64(given + 16 * (i % RANGES_GIVEN) + 8);
		}
		c.ranges = c.ranges ? (uintptr_t)ranges : 0;
		memcpy(payload, &c, sizeof(c));
		break;
	}
	case VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT: {
		struct vfio_device_feature_dma_logging_report r;
		uint64_t bytes;

		memcpy(&r, payload, sizeof(r));
		/* Size the report to the harness's bitmap, as a caller sizes its buffer. */
		bytes = dmalog_iova_bitmap_bytes(r.length, r.page_size);
		if (bytes > BITMAP_MAX && r.page_size && !(r.page_size & (r.page_size - 1)))
			r.length = (uint64_t)BITMAP_MAX * 8 * r.page_size;
		r.bitmap = r.bitmap ? (uintptr_t)bitmap : 0;
		memcpy(payload, &r, sizeof(r));
		break;
	}
	default:
		break;
	}
	ret = dmalog_device_ioctl(dev, VFIO_DEVICE_FEATURE, f);
	/* A SET of the device state may hand back a data fd: the user owns it. */
	if (!ret && (flags & VFIO_DEVICE_FEATURE_SET) &&
	    (flags & VFIO_DEVICE_FEATURE_MASK) == VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE) {
		struct vfio_device_feature_mig_state m;

		memcpy(&m, payload, sizeof(m));
		if (m.data_fd >= 0) {
			if (h->saving_fd >= 0)
				close(h->saving_fd);
			h->saving_fd = m.data_fd;
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct harness h = {.saving_fd = -1};
	struct dmalog_device_desc desc = {.log_ops = &log_ops,
					  .mig_ops = &mig_ops,
					  .migration_flags = DMALOG_MIGRATION_FLAGS_ALL,
					  .priv = &h};
	struct dmalog_device *dev;

	if (dmalog_swtrack_create(&h.sw))
		return 0;
	/* Keep START's log small so every input runs fast. */
	dmalog_swtrack_set_log_limit(h.sw, 1 << 20);
	if (dmalog_device_create(&desc, &dev)) {
		dmalog_swtrack_destroy(h.sw);
		return 0;
	}
	dmalog_device_set_report_window(dev, 64 << (data[0] % 16));
	for (size_t off = 1; off + CMD_BYTES <= size; off += CMD_BYTES) {
		const uint8_t *cmd = data + off;
		struct vfio_precopy_info info = {.argsz = get32(cmd + 1)};

		switch (cmd[0] % OP_COUNT) {
		case OP_FEATURE:
			feature_cmd(dev, &h, cmd);
			break;
		case OP_RESET:
			dmalog_device_ioctl(dev, VFIO_DEVICE_RESET, NULL);
			break;
		case OP_DMA:
			dmalog_swtrack_log_write(h.sw, get64(cmd + 9), get64(cmd + 17));
			break;
		case OP_PRECOPY:
			dmalog_device_data_ioctl(
				dev, cmd[5] & 1 ? h.saving_fd : get32(cmd + 5),
				cmd[6] & 1 ? VFIO_MIG_GET_PRECOPY_INFO : get32(cmd + 9), &info);
			break;
		}
	}
	dmalog_device_destroy(dev);
	dmalog_swtrack_destroy(h.sw);
	if (h.saving_fd >= 0)
		close(h.saving_fd);
	return 0;
}
