// SPDX-License-Identifier: MIT
#include <errno.h>
#include <string.h>

#include "vfio_feature.h"

int vfio_feature(struct dmalog_device *dev, uint32_t flags, void *payload, size_t len)
{
	/* u64 words: the payloads hold u64 fields, and the header is 8 bytes. */
	uint64_t buf[8] = {0};
	struct vfio_device_feature *f = (void *)buf;
	int ret;

	if (len > sizeof(buf) - sizeof(*f))
		return -EINVAL;
	f->argsz = sizeof(*f) + len;
	f->flags = flags;
	if (len)
		memcpy(f->data, payload, len);
	ret = dmalog_device_ioctl(dev, VFIO_DEVICE_FEATURE, f);
	if (len)
		memcpy(payload, f->data, len);
	return ret;
}
