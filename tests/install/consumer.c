// SPDX-License-Identifier: MIT
/* Built against an installed libdmalog through pkg-config: the public API end to end. */
#include <stdio.h>

#include <dmalog/dmalog.h>

int main(void)
{
	struct vfio_device_feature_dma_logging_range range = {.iova = 0, .length = 1 << 21};
	struct {
		struct vfio_device_feature hdr;
		union {
			struct vfio_device_feature_dma_logging_control control;
			struct vfio_device_feature_dma_logging_report report;
		};
	} f = {0};
	uint64_t bitmap[8] = {0};
	struct dmalog_swtrack *t;
	struct dmalog_device *dev;
	struct dmalog_device_desc desc = {.log_ops = dmalog_swtrack_log_ops()};

	if (dmalog_swtrack_create(&t))
		return 1;
	desc.priv = t;
	if (dmalog_device_create(&desc, &dev))
		return 1;
	f.hdr.argsz = sizeof(f.hdr) + sizeof(f.control);
	f.hdr.flags = VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_DMA_LOGGING_START;
	f.control = (struct vfio_device_feature_dma_logging_control){
		.page_size = 4096, .num_ranges = 1, .ranges = (uintptr_t)&range};
	if (dmalog_device_ioctl(dev, VFIO_DEVICE_FEATURE, &f))
		return 1;
	dmalog_swtrack_log_write(t, 3 * 4096, 1);
	f.hdr.argsz = sizeof(f.hdr) + sizeof(f.report);
	f.hdr.flags = VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT;
	f.report = (struct vfio_device_feature_dma_logging_report){
		.iova = 0, .length = 1 << 21, .page_size = 4096, .bitmap = (uintptr_t)bitmap};
	if (dmalog_device_ioctl(dev, VFIO_DEVICE_FEATURE, &f) || bitmap[0] != 8)
		return 1;
	dmalog_device_destroy(dev);
	dmalog_swtrack_destroy(t);
	printf("installed libdmalog: report ok\n");
	return 0;
}
