// SPDX-License-Identifier: MIT
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"

int feature_call(struct dmalog_device *dev, uint32_t flags, void *payload, size_t payload_len,
		 size_t argsz_payload)
{
	size_t total = sizeof(struct vfio_device_feature) + payload_len;
	struct vfio_device_feature *f = calloc(1, total + 8);
	int ret;

	assert_non_null(f);
	f->argsz = sizeof(*f) + argsz_payload;
	f->flags = flags;
	if (payload_len)
		memcpy(f->data, payload, payload_len);
	ret = dmalog_device_ioctl(dev, VFIO_DEVICE_FEATURE, f);
	if (payload_len)
		memcpy(payload, f->data, payload_len);
	free(f);
	return ret;
}

int feature(struct dmalog_device *dev, uint32_t flags, void *payload, size_t len)
{
	return feature_call(dev, flags, payload, len, len);
}

/* The library's own marshalling, through a handle over the device, as any consumer uses. */
static struct dmalog_handle *handle_of(struct dmalog_device *dev)
{
	struct dmalog_handle *h = NULL;

	assert_int_equal(dmalog_handle_from_device(dev, &h), 0);
	return h;
}

int log_start(struct dmalog_device *dev, const struct vfio_device_feature_dma_logging_range *r,
	      uint32_t n, uint64_t page_size, uint64_t *selected)
{
	struct dmalog_handle *h = handle_of(dev);
	uint64_t chosen = page_size;
	int ret = dmalog_handle_log_start(h, r, n, page_size, &chosen);

	dmalog_handle_destroy(h);
	/* The kernel writes the page size back only on success; callers see the hint otherwise. */
	if (selected)
		*selected = ret ? page_size : chosen;
	return ret;
}

int log_stop(struct dmalog_device *dev)
{
	struct dmalog_handle *h = handle_of(dev);
	int ret = dmalog_handle_log_stop(h);

	dmalog_handle_destroy(h);
	return ret;
}

int log_report(struct dmalog_device *dev, uint64_t iova, uint64_t length, uint64_t page_size,
	       void *bitmap)
{
	struct dmalog_handle *h = handle_of(dev);
	int ret = dmalog_handle_log_report(h, iova, length, page_size, bitmap);

	dmalog_handle_destroy(h);
	return ret;
}

static int spy_start(void *priv, const struct dmalog_range *ranges, uint32_t n, uint64_t *ps)
{
	struct spy_tracker *s = priv;

	s->starts++;
	if (s->start_error)
		return s->start_error;
	memcpy(s->ranges, ranges, n * sizeof(*ranges));
	s->nranges = n;
	if (s->select_page_size)
		*ps = s->select_page_size;
	return 0;
}

static int spy_stop(void *priv)
{
	((struct spy_tracker *)priv)->stops++;
	return 0;
}

static int spy_report(void *priv, uint64_t iova, uint64_t length, struct dmalog_iova_bitmap *bm)
{
	struct spy_tracker *s = priv;

	if (s->reports < 64) {
		s->windows[s->reports][0] = iova;
		s->windows[s->reports][1] = length;
	}
	/* Several devices may report into one bitmap at once: the core must ask for atomic ORs. */
	s->plain_writers += !bm->atomic;
	s->reports++;
	dmalog_iova_bitmap_set(bm, iova, 1);
	return s->reports == s->report_fail_at ? s->report_error : 0;
}

const struct dmalog_log_ops spy_log_ops = {
	.log_start = spy_start,
	.log_stop = spy_stop,
	.log_read_and_clear = spy_report,
};

static int fake_step(void *priv, uint32_t from, uint32_t to, int *data_fd, bool *to_error)
{
	struct fake_mig *m = priv;
	int p[2];

	if (m->narcs < 16) {
		m->arcs[m->narcs][0] = from;
		m->arcs[m->narcs][1] = to;
	}
	m->narcs++;
	if (m->fail_arc == m->narcs) {
		*to_error = m->fail_to_error;
		return -EIO;
	}
	if (from == VFIO_DEVICE_STATE_RESUMING && to == VFIO_DEVICE_STATE_STOP) {
		/* Validate what the user wrote: exactly FAKE_STATE. */
		char buf[64] = {0};
		ssize_t n = read(m->resume_read_fd, buf, sizeof(buf) - 1);

		close(m->resume_read_fd);
		m->resume_read_fd = -1;
		if (n != (ssize_t)strlen(FAKE_STATE) || memcmp(buf, FAKE_STATE, n)) {
			*to_error = true;
			return -EINVAL;
		}
		return 0;
	}
	bool saving =
		(from == VFIO_DEVICE_STATE_RUNNING && to == VFIO_DEVICE_STATE_PRE_COPY) ||
		(from == VFIO_DEVICE_STATE_RUNNING_P2P && to == VFIO_DEVICE_STATE_PRE_COPY_P2P) ||
		(from == VFIO_DEVICE_STATE_STOP && to == VFIO_DEVICE_STATE_STOP_COPY);
	bool resuming = from == VFIO_DEVICE_STATE_STOP && to == VFIO_DEVICE_STATE_RESUMING;

	if (!saving && !resuming && !m->fd_every_arc)
		return 0;
	if (pipe(p))
		return -errno;
	if (resuming) {
		m->resume_read_fd = p[0];
		fcntl(p[0], F_SETFL, O_NONBLOCK);
		*data_fd = p[1];
	} else {
		if (write(p[1], FAKE_STATE, strlen(FAKE_STATE)) < 0)
			return -errno;
		close(p[1]);
		*data_fd = p[0];
	}
	return 0;
}

static int fake_data_size(void *priv, uint64_t *len)
{
	*len = ((struct fake_mig *)priv)->data_size;
	return 0;
}

static int fake_precopy_info(void *priv, uint64_t *initial, uint64_t *dirty)
{
	struct fake_mig *m = priv;

	*initial = m->initial_bytes;
	*dirty = m->dirty_bytes;
	return 0;
}

static void fake_reset(void *priv)
{
	((struct fake_mig *)priv)->resets++;
}

const struct dmalog_mig_ops fake_mig_ops = {
	.step = fake_step,
	.get_data_size = fake_data_size,
	.precopy_info = fake_precopy_info,
	.reset = fake_reset,
};

struct dmalog_device *swtrack_device(struct dmalog_swtrack **t)
{
	struct dmalog_device *dev;
	struct dmalog_device_desc desc = {.name = "sw", .log_ops = dmalog_swtrack_log_ops()};

	assert_int_equal(dmalog_swtrack_create(t), 0);
	desc.priv = *t;
	assert_int_equal(dmalog_device_create(&desc, &dev), 0);
	return dev;
}
