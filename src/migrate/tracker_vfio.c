// SPDX-License-Identifier: MIT
/*
 * Trackers behind the VFIO DMA logging uAPI: a device's own DMA logging over every RAM
 * region's GPA range, and a log kept by RAM offset (the demo guest's CPU log, as KVM's is per
 * memslot). The uAPI only ever sets bits, so each REPORT lands straight in the region's bits
 * of the round's bitmap: no scratch buffer, no merge pass.
 */
#include <errno.h>
#include <stdlib.h>

#include <dmalog/tracker.h>

struct vfio_log {
	struct dmalog_handle *dev;
	bool by_ram_offset;
};

static void *region_bits(uint64_t *bitmap, const struct dmalog_ram_region *r)
{
	return bitmap + (r->ram_offset >> DMALOG_RAM_PAGE_SHIFT) / 64;
}

static int log_start(void *priv, const struct dmalog_ram_map *ram)
{
	struct vfio_log *l = priv;
	struct vfio_device_feature_dma_logging_range ranges[DMALOG_RAM_MAX_REGIONS];
	uint32_t n = 0;

	if (l->by_ram_offset) {
		ranges[n++] = (struct vfio_device_feature_dma_logging_range){0, ram->bytes};
	} else {
		for (; n < ram->nregions; n++)
			ranges[n] = (struct vfio_device_feature_dma_logging_range){
				ram->regions[n].gpa, ram->regions[n].length};
	}
	return dmalog_handle_log_start(l->dev, ranges, n, DMALOG_RAM_PAGE_SIZE, NULL);
}

static int log_sync(void *priv, const struct dmalog_ram_map *ram, uint64_t *bitmap)
{
	struct vfio_log *l = priv;
	int ret = 0;

	if (l->by_ram_offset)
		return dmalog_handle_log_report(l->dev, 0, ram->bytes, DMALOG_RAM_PAGE_SIZE,
						bitmap);
	for (uint32_t i = 0; i < ram->nregions && !ret; i++) {
		const struct dmalog_ram_region *r = &ram->regions[i];

		ret = dmalog_handle_log_report(l->dev, r->gpa, r->length, DMALOG_RAM_PAGE_SIZE,
					       region_bits(bitmap, r));
	}
	return ret;
}

static void log_stop(void *priv, const struct dmalog_ram_map *ram)
{
	struct vfio_log *l = priv;

	dmalog_handle_log_stop(l->dev);
}

static const struct dmalog_tracker_ops vfio_log_ops = {
	.start = log_start,
	.sync = log_sync,
	.stop = log_stop,
	.release = free,
};

static int create(struct dmalog_handle *dev, bool by_ram_offset, struct dmalog_tracker **out)
{
	struct vfio_log *l;
	int ret;

	if (!dev)
		return -EINVAL;
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->dev = dev;
	l->by_ram_offset = by_ram_offset;
	ret = dmalog_tracker_create(&vfio_log_ops, l, dmalog_handle_name(dev), out);
	if (ret)
		free(l);
	return ret;
}

int dmalog_tracker_vfio_log(struct dmalog_handle *dev, struct dmalog_tracker **out)
{
	return create(dev, false, out);
}

int dmalog_tracker_ram_log(struct dmalog_handle *log, struct dmalog_tracker **out)
{
	return create(log, true, out);
}
