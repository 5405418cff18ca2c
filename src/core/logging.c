// SPDX-License-Identifier: MIT
/*
 * DMA logging START / STOP / REPORT, with the kernel's order of checks and errnos
 * (vfio_ioctl_device_feature_logging_*) and the stricter rules of DESIGN.md.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "device_priv.h"

static bool is_pow2(uint64_t x)
{
	return x && !(x & (x - 1));
}

/* Copy the user's ranges in user order, checking each as the kernel does, into a sorted set. */
static int collect_ranges(const struct vfio_device_feature_dma_logging_control *control,
			  struct dmalog_range *set, uint32_t *n)
{
	const struct vfio_device_feature_dma_logging_range *user =
		(const void *)(uintptr_t)control->ranges;
	uint64_t mask = control->page_size - 1;

	*n = 0;
	for (uint32_t i = 0; i < control->num_ranges; i++) {
		struct vfio_device_feature_dma_logging_range range;
		struct dmalog_range r;
		uint64_t end;
		int ret;

		memcpy(&range, &user[i], sizeof(range));
		if ((range.iova & mask) || (range.length & mask))
			return -EINVAL;
		/* Stricter than the kernel, whose node for a zero length would end before it
		 * starts. */
		if (!range.length)
			return -EINVAL;
		if (__builtin_add_overflow(range.iova, range.length, &end))
			return -EOVERFLOW;
		r.iova = range.iova;
		r.length = range.length;
		ret = dmalog_ranges_insert(set, n, &r);
		if (ret)
			return ret;
	}
	return 0;
}

int dmalog_logging_start(struct dmalog_device *dev, uint32_t flags, void *data, size_t argsz)
{
	struct vfio_device_feature_dma_logging_control control;
	struct dmalog_range *set;
	uint32_t n;
	int ret;

	if (!dev->log_ops)
		return -ENOTTY;
	ret = dmalog_check_feature(flags, argsz, VFIO_DEVICE_FEATURE_SET, sizeof(control));
	if (ret != 1)
		return ret;
	memcpy(&control, data, sizeof(control));
	if (!control.num_ranges)
		return -EINVAL;
	if (control.num_ranges > DMALOG_LOG_MAX_RANGES)
		return -E2BIG;
	/* Stricter than the kernel: alignment to a zero or non-power-of-two size means nothing. */
	if (!is_pow2(control.page_size))
		return -EINVAL;
	if (!control.ranges)
		return -EFAULT;

	set = calloc(control.num_ranges, sizeof(*set));
	if (!set)
		return -ENOMEM;
	ret = collect_ranges(&control, set, &n);
	if (ret)
		goto out;

	pthread_mutex_lock(&dev->log_lock);
	/* One START, then a matching STOP; the first session stays intact. */
	if (dev->log_active) {
		ret = -EINVAL;
	} else {
		uint64_t page_size = control.page_size;

		ret = dev->log_ops->log_start(dev->priv, set, n, &page_size);
		if (!ret) {
			control.page_size = page_size;
			dev->log_active = true;
			memcpy(data, &control, sizeof(control));
		}
	}
	pthread_mutex_unlock(&dev->log_lock);
out:
	free(set);
	return ret;
}

void dmalog_logging_stop_locked(struct dmalog_device *dev)
{
	if (dev->log_active)
		dev->log_ops->log_stop(dev->priv);
	dev->log_active = false;
}

int dmalog_logging_stop(struct dmalog_device *dev, uint32_t flags, void *data, size_t argsz)
{
	int ret;

	if (!dev->log_ops)
		return -ENOTTY;
	ret = dmalog_check_feature(flags, argsz, VFIO_DEVICE_FEATURE_SET, 0);
	if (ret != 1)
		return ret;
	/*
	 * A REPORT holding the lock may be waiting on a stalled device: wake it (-EIO) as close
	 * and reset do, or STOP would wait as long as the device does.
	 */
	if (pthread_mutex_trylock(&dev->log_lock)) {
		if (dev->log_ops->log_abort)
			dev->log_ops->log_abort(dev->priv);
		pthread_mutex_lock(&dev->log_lock);
	}
	ret = dev->log_ops->log_stop(dev->priv);
	dev->log_active = false;
	pthread_mutex_unlock(&dev->log_lock);
	return ret;
}

static int report_window(struct dmalog_iova_bitmap *bm, uint64_t iova, uint64_t length,
			 void *opaque)
{
	struct dmalog_device *dev = opaque;

	return dev->log_ops->log_read_and_clear(dev->priv, iova, length, bm);
}

int dmalog_logging_report(struct dmalog_device *dev, uint32_t flags, void *data, size_t argsz)
{
	struct vfio_device_feature_dma_logging_report report;
	struct dmalog_iova_bitmap bm;
	uint64_t end;
	int ret;

	if (!dev->log_ops)
		return -ENOTTY;
	ret = dmalog_check_feature(flags, argsz, VFIO_DEVICE_FEATURE_GET, sizeof(report));
	if (ret != 1)
		return ret;
	memcpy(&report, data, sizeof(report));
	if (report.page_size < 4096 || !is_pow2(report.page_size))
		return -EINVAL;
	if (__builtin_add_overflow(report.iova, report.length, &end))
		return -EOVERFLOW;

	pthread_mutex_lock(&dev->log_lock);
	if (!dev->log_active) {
		ret = -EINVAL;
	} else if (!report.length) {
		ret = 0;
	} else {
		/* Plain ORs, as the kernel's; atomic ones when another reporter may share it. */
		ret = dmalog_iova_bitmap_init(&bm, report.iova, report.length, report.page_size,
					      (void *)(uintptr_t)report.bitmap,
					      dev->report_shared ? DMALOG_IOVA_BITMAP_ATOMIC : 0);
		if (!ret)
			ret = dmalog_iova_bitmap_for_each(&bm, dev->report_window_bits,
							  report_window, dev);
	}
	pthread_mutex_unlock(&dev->log_lock);
	return ret;
}
