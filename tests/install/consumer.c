// SPDX-License-Identifier: MIT
/* Built against an installed libdmalog through pkg-config: the public API end to end. */
#include <stdio.h>

#include <dmalog/dmalog.h>

int main(void)
{
	struct vfio_device_feature_dma_logging_range range = {0, 1 << 21};
	uint64_t bitmap[8] = {0};
	struct dmalog_swtrack *t;
	struct dmalog_device *dev;
	struct dmalog_handle *h;
	struct dmalog_device_desc desc = {.log_ops = dmalog_swtrack_log_ops()};

	if (dmalog_swtrack_create(&t))
		return 1;
	desc.priv = t;
	if (dmalog_device_create(&desc, &dev))
		return 1;
	if (dmalog_handle_from_device(dev, &h) || dmalog_handle_log_start(h, &range, 1, 4096, NULL))
		return 1;
	dmalog_swtrack_log_write(t, 3 * 4096, 1);
	if (dmalog_handle_log_report(h, 0, 1 << 21, 4096, bitmap) || bitmap[0] != 8)
		return 1;
	if ((DMALOG_VERSION_NUMBER >> 16) != (dmalog_version_number() >> 16))
		return 1;
	dmalog_handle_destroy(h);
	dmalog_device_destroy(dev);
	dmalog_swtrack_destroy(t);
	printf("installed libdmalog %s: report ok\n", dmalog_version());
	return 0;
}
