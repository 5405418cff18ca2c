// SPDX-License-Identifier: MIT
/*
 * The iommufd tracker: a HWPT's dirty bits, one GET_DIRTY_BITMAP per RAM region straight into
 * the region's bits (the uAPI only sets bits). Read-and-clear invalidates the IOTLB and waits
 * for DMA in flight before it returns, so a page copied afterwards holds every write the
 * report covered.
 */
#include <errno.h>
#include <stdlib.h>

#include <dmalog/tracker.h>

struct hwpt_tracker {
	struct dmalog_handle *iommufd;
	uint32_t hwpt_id;
};

static int hwpt_start(void *priv, const struct dmalog_ram_map *ram)
{
	struct hwpt_tracker *t = priv;

	return dmalog_handle_hwpt_set_dirty(t->iommufd, t->hwpt_id, true);
}

static int hwpt_sync(void *priv, const struct dmalog_ram_map *ram, uint64_t *bitmap)
{
	struct hwpt_tracker *t = priv;
	int ret = 0;

	for (uint32_t i = 0; i < ram->nregions && !ret; i++) {
		const struct dmalog_ram_region *r = &ram->regions[i];

		ret = dmalog_handle_hwpt_get_dirty(
			t->iommufd, t->hwpt_id, r->gpa, r->length, DMALOG_RAM_PAGE_SIZE, 0,
			bitmap + (r->ram_offset >> DMALOG_RAM_PAGE_SHIFT) / 64);
	}
	return ret;
}

static void hwpt_stop(void *priv, const struct dmalog_ram_map *ram)
{
	struct hwpt_tracker *t = priv;

	dmalog_handle_hwpt_set_dirty(t->iommufd, t->hwpt_id, false);
}

static const struct dmalog_tracker_ops hwpt_ops = {
	.start = hwpt_start,
	.sync = hwpt_sync,
	.stop = hwpt_stop,
	.release = free,
};

int dmalog_tracker_iommufd(struct dmalog_handle *iommufd, uint32_t hwpt_id,
			   struct dmalog_tracker **out)
{
	struct hwpt_tracker *t;
	int ret;

	if (!iommufd)
		return -EINVAL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->iommufd = iommufd;
	t->hwpt_id = hwpt_id;
	ret = dmalog_tracker_create(&hwpt_ops, t, "iommufd", out);
	if (ret)
		free(t);
	return ret;
}
