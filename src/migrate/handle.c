// SPDX-License-Identifier: MIT
/*
 * The device handle: one entry point shaped like ioctl() over any backend, and the helpers
 * that marshal what every consumer of the VFIO uAPI would otherwise write by hand. The
 * feature frame is built in a u64 buffer: the payloads hold u64 fields after an 8-byte
 * header, and the kernel reads them at their natural alignment.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <dmalog/handle.h>

#define FEATURE_MAX_PAYLOAD 64

struct dmalog_handle {
	const struct dmalog_handle_ops *ops;
	void *priv;
	char name[32];
};

int dmalog_handle_create(const struct dmalog_handle_ops *ops, void *priv, const char *name,
			 struct dmalog_handle **out)
{
	struct dmalog_handle *h;

	if (!ops || !ops->ioctl || !out)
		return -EINVAL;
	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->ops = ops;
	h->priv = priv;
	if (name) {
		strncpy(h->name, name, sizeof(h->name) - 1);
		h->name[sizeof(h->name) - 1] = 0;
	}
	*out = h;
	return 0;
}

void dmalog_handle_destroy(struct dmalog_handle *h)
{
	if (!h)
		return;
	if (h->ops->release)
		h->ops->release(h->priv);
	free(h);
}

const char *dmalog_handle_name(const struct dmalog_handle *h)
{
	return h->name;
}

int dmalog_handle_ioctl(struct dmalog_handle *h, unsigned long request, void *arg)
{
	return h->ops->ioctl(h->priv, request, arg);
}

int dmalog_handle_feature(struct dmalog_handle *h, uint32_t flags, void *payload, size_t len)
{
	uint64_t buf[(sizeof(struct vfio_device_feature) + FEATURE_MAX_PAYLOAD) / 8] = {0};
	struct vfio_device_feature *f = (struct vfio_device_feature *)buf;
	int ret;

	if (len > FEATURE_MAX_PAYLOAD || (len && !payload))
		return -EINVAL;
	f->argsz = (uint32_t)(sizeof(*f) + len);
	f->flags = flags;
	if (len)
		memcpy(f->data, payload, len);
	ret = dmalog_handle_ioctl(h, VFIO_DEVICE_FEATURE, f);
	if (len)
		memcpy(payload, f->data, len);
	return ret;
}

int dmalog_handle_migration_flags(struct dmalog_handle *h, uint64_t *flags)
{
	struct vfio_device_feature_migration m = {0};
	int ret = dmalog_handle_feature(h, VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_MIGRATION,
					&m, sizeof(m));

	*flags = ret ? 0 : m.flags;
	return ret;
}

int dmalog_handle_set_state(struct dmalog_handle *h, uint32_t state, int *data_fd)
{
	struct vfio_device_feature_mig_state st = {.device_state = state, .data_fd = -1};
	int ret = dmalog_handle_feature(
		h, VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE, &st, sizeof(st));

	if (data_fd)
		*data_fd = ret ? -1 : st.data_fd;
	else if (!ret && st.data_fd >= 0)
		close(st.data_fd);
	return ret;
}

int dmalog_handle_get_state(struct dmalog_handle *h, uint32_t *state)
{
	struct vfio_device_feature_mig_state st = {0};
	int ret = dmalog_handle_feature(
		h, VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE, &st, sizeof(st));

	*state = ret ? VFIO_DEVICE_STATE_ERROR : st.device_state;
	return ret;
}

int dmalog_handle_data_size(struct dmalog_handle *h, uint64_t *stop_copy_bytes)
{
	struct vfio_device_feature_mig_data_size sz = {0};
	int ret = dmalog_handle_feature(
		h, VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_MIG_DATA_SIZE, &sz, sizeof(sz));

	*stop_copy_bytes = ret ? 0 : sz.stop_copy_length;
	return ret;
}

int dmalog_handle_precopy_info(struct dmalog_handle *h, int data_fd, uint64_t *initial_bytes,
			       uint64_t *dirty_bytes)
{
	struct vfio_precopy_info info = {.argsz = sizeof(info)};
	int ret;

	if (h->ops->data_ioctl)
		ret = h->ops->data_ioctl(h->priv, data_fd, VFIO_MIG_GET_PRECOPY_INFO, &info);
	else
		ret = ioctl(data_fd, VFIO_MIG_GET_PRECOPY_INFO, &info) ? -errno : 0;
	*initial_bytes = ret ? 0 : info.initial_bytes;
	*dirty_bytes = ret ? 0 : info.dirty_bytes;
	return ret;
}

ssize_t dmalog_handle_data_read(struct dmalog_handle *h, int data_fd, void *buf, size_t len)
{
	ssize_t n;

	if (h->ops->data_read) {
		n = h->ops->data_read(h->priv, data_fd, buf, len);
	} else {
		do
			n = read(data_fd, buf, len);
		while (n < 0 && errno == EINTR);
		if (n < 0)
			n = -errno;
	}
	/* The kernel's PRE_COPY fd says -ENOMSG where a pipe says -EAGAIN: the same news. */
	if (n == -ENOMSG || n == -EWOULDBLOCK)
		n = -EAGAIN;
	return n;
}

ssize_t dmalog_handle_data_write(struct dmalog_handle *h, int data_fd, const void *buf, size_t len)
{
	ssize_t n;

	if (h->ops->data_write) {
		n = h->ops->data_write(h->priv, data_fd, buf, len);
	} else {
		do
			n = write(data_fd, buf, len);
		while (n < 0 && errno == EINTR);
		if (n < 0)
			n = -errno;
	}
	return n == -EWOULDBLOCK ? -EAGAIN : n;
}

int dmalog_handle_log_start(struct dmalog_handle *h,
			    const struct vfio_device_feature_dma_logging_range *ranges,
			    uint32_t nranges, uint64_t page_size, uint64_t *selected)
{
	struct vfio_device_feature_dma_logging_control ctl = {
		.page_size = page_size,
		.num_ranges = nranges,
		.ranges = (uintptr_t)ranges,
	};
	int ret = dmalog_handle_feature(
		h, VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_DMA_LOGGING_START, &ctl,
		sizeof(ctl));

	if (selected)
		*selected = ret ? 0 : ctl.page_size;
	return ret;
}

int dmalog_handle_log_stop(struct dmalog_handle *h)
{
	return dmalog_handle_feature(
		h, VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP, NULL, 0);
}

int dmalog_handle_log_report(struct dmalog_handle *h, uint64_t iova, uint64_t length,
			     uint64_t page_size, void *bitmap)
{
	struct vfio_device_feature_dma_logging_report rep = {
		.iova = iova,
		.length = length,
		.page_size = page_size,
		.bitmap = (uintptr_t)bitmap,
	};

	return dmalog_handle_feature(
		h, VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT, &rep,
		sizeof(rep));
}

int dmalog_handle_reset(struct dmalog_handle *h)
{
	return dmalog_handle_ioctl(h, VFIO_DEVICE_RESET, NULL);
}

int dmalog_handle_hwpt_set_dirty(struct dmalog_handle *h, uint32_t hwpt_id, bool enable)
{
	struct iommu_hwpt_set_dirty_tracking set = {
		.size = sizeof(set),
		.flags = enable ? IOMMU_HWPT_DIRTY_TRACKING_ENABLE : 0,
		.hwpt_id = hwpt_id,
	};

	return dmalog_handle_ioctl(h, IOMMU_HWPT_SET_DIRTY_TRACKING, &set);
}

int dmalog_handle_hwpt_get_dirty(struct dmalog_handle *h, uint32_t hwpt_id, uint64_t iova,
				 uint64_t length, uint64_t page_size, uint32_t flags, void *bitmap)
{
	struct iommu_hwpt_get_dirty_bitmap get = {
		.size = sizeof(get),
		.hwpt_id = hwpt_id,
		.flags = flags,
		.iova = iova,
		.length = length,
		.page_size = page_size,
		.data = (uintptr_t)bitmap,
	};

	return dmalog_handle_ioctl(h, IOMMU_HWPT_GET_DIRTY_BITMAP, &get);
}

int dmalog_handle_type1_dirty(struct dmalog_handle *h, uint32_t flag)
{
	struct vfio_iommu_type1_dirty_bitmap d = {.argsz = sizeof(d), .flags = flag};

	return dmalog_handle_ioctl(h, VFIO_IOMMU_DIRTY_PAGES, &d);
}

int dmalog_handle_type1_get_bitmap(struct dmalog_handle *h, uint64_t iova, uint64_t size,
				   uint64_t pgsize, void *bitmap, uint64_t bitmap_bytes)
{
	/* struct vfio_iommu_type1_dirty_bitmap with its _get in the flexible data[] after it. */
	uint64_t buf[(sizeof(struct vfio_iommu_type1_dirty_bitmap) +
		      sizeof(struct vfio_iommu_type1_dirty_bitmap_get)) /
		     8] = {0};
	struct vfio_iommu_type1_dirty_bitmap *d = (struct vfio_iommu_type1_dirty_bitmap *)buf;
	struct vfio_iommu_type1_dirty_bitmap_get get = {
		.iova = iova,
		.size = size,
		.bitmap = {.pgsize = pgsize, .size = bitmap_bytes, .data = (__u64 *)bitmap},
	};

	d->argsz = sizeof(buf);
	d->flags = VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP;
	memcpy(d->data, &get, sizeof(get));
	return dmalog_handle_ioctl(h, VFIO_IOMMU_DIRTY_PAGES, d);
}
