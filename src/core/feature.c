// SPDX-License-Identifier: MIT
/* The VFIO_DEVICE_FEATURE frame: header validation and dispatch, as vfio_main.c does it. */
#include <errno.h>
#include <string.h>

#include "device_priv.h"

#define FEATURE_OPS (VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_SET)

int dmalog_check_feature(uint32_t flags, size_t argsz, uint32_t supported_ops, size_t minsz)
{
	if ((flags & FEATURE_OPS) & ~supported_ops)
		return -EINVAL;
	if (flags & VFIO_DEVICE_FEATURE_PROBE)
		return 0;
	if (!(flags & FEATURE_OPS))
		return -EINVAL;
	if (argsz < minsz)
		return -EINVAL;
	return 1;
}

int dmalog_device_feature(struct dmalog_device *dev, struct vfio_device_feature *arg)
{
	struct vfio_device_feature hdr;
	void *data;
	size_t argsz;

	if (!arg)
		return -EFAULT;
	memcpy(&hdr, arg, sizeof(hdr));
	if (hdr.argsz < sizeof(hdr))
		return -EINVAL;
	if (hdr.flags & ~(VFIO_DEVICE_FEATURE_MASK | FEATURE_OPS | VFIO_DEVICE_FEATURE_PROBE))
		return -EINVAL;
	/* GET and SET together only make sense as a probe of both. */
	if ((hdr.flags & FEATURE_OPS) == FEATURE_OPS && !(hdr.flags & VFIO_DEVICE_FEATURE_PROBE))
		return -EINVAL;

	data = (char *)arg + sizeof(hdr);
	argsz = hdr.argsz - sizeof(hdr);
	switch (hdr.flags & VFIO_DEVICE_FEATURE_MASK) {
	case VFIO_DEVICE_FEATURE_MIGRATION:
		return dmalog_mig_feature_migration(dev, hdr.flags, data, argsz);
	case VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE:
		return dmalog_mig_feature_state(dev, hdr.flags, data, argsz);
	case VFIO_DEVICE_FEATURE_DMA_LOGGING_START:
		return dmalog_logging_start(dev, hdr.flags, data, argsz);
	case VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP:
		return dmalog_logging_stop(dev, hdr.flags, data, argsz);
	case VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT:
		return dmalog_logging_report(dev, hdr.flags, data, argsz);
	case VFIO_DEVICE_FEATURE_MIG_DATA_SIZE:
		return dmalog_mig_feature_data_size(dev, hdr.flags, data, argsz);
	default:
		/* No driver feature op: the newest kernels answer -ENOTTY (older ones -EINVAL). */
		return -ENOTTY;
	}
}
