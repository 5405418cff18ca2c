// SPDX-License-Identifier: MIT
/* Built against an installed libdmalog through pkg-config: the public API end to end. */
#include <stdio.h>
#include <string.h>

#include <dmalog/dmalog.h>

/* VFIO_DEVICE_FEATURE with @payload after the header, copied back afterwards. */
static int feature(struct dmalog_device *dev, uint32_t flags, void *payload, size_t len)
{
	uint64_t buf[8];
	struct vfio_device_feature *f = (void *)buf;
	int ret;

	f->argsz = sizeof(*f) + len;
	f->flags = flags;
	memcpy(f->data, payload, len);
	ret = dmalog_device_ioctl(dev, VFIO_DEVICE_FEATURE, f);
	memcpy(payload, f->data, len);
	return ret;
}

int main(void)
{
	struct vfio_device_feature_dma_logging_range range = {.iova = 0, .length = 1 << 21};
	uint64_t bitmap[8] = {0};
	struct vfio_device_feature_dma_logging_control control = {
		.page_size = 4096, .num_ranges = 1, .ranges = (uintptr_t)&range};
	struct vfio_device_feature_dma_logging_report report = {
		.iova = 0, .length = 1 << 21, .page_size = 4096, .bitmap = (uintptr_t)bitmap};
	struct dmalog_swtrack *t;
	struct dmalog_device *dev;
	struct dmalog_device_desc desc = {.log_ops = dmalog_swtrack_log_ops()};

	if (dmalog_swtrack_create(&t))
		return 1;
	desc.priv = t;
	if (dmalog_device_create(&desc, &dev))
		return 1;
	if (feature(dev, VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_DMA_LOGGING_START, &control,
		    sizeof(control)))
		return 1;
	dmalog_swtrack_log_write(t, 3 * 4096, 1);
	if (feature(dev, VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT, &report,
		    sizeof(report)) ||
	    bitmap[0] != 8)
		return 1;
	dmalog_device_destroy(dev);
	dmalog_swtrack_destroy(t);
	printf("installed libdmalog: report ok\n");
	return 0;
}
