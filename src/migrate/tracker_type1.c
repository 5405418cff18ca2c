// SPDX-License-Identifier: MIT
/*
 * The type1 tracker: DIRTY_PAGES START/STOP and one GET_BITMAP per mapping (each RAM region
 * is one). GET_BITMAP copies a whole bitmap out, zeros included, so it goes through a scratch
 * buffer and is ORed into the region's bits.
 */
#include <errno.h>
#include <stdlib.h>

#include <dmalog/tracker.h>

struct type1_tracker {
	struct dmalog_handle *container;
	uint64_t *scratch;
};

static int type1_start(void *priv, const struct dmalog_ram_map *ram)
{
	struct type1_tracker *t = priv;
	uint64_t words = 0;

	for (uint32_t i = 0; i < ram->nregions; i++) {
		uint64_t w = (ram->regions[i].length >> DMALOG_RAM_PAGE_SHIFT) / 64;

		words = w > words ? w : words;
	}
	free(t->scratch);
	t->scratch = malloc(words * 8);
	if (!t->scratch)
		return -ENOMEM;
	return dmalog_handle_type1_dirty(t->container, VFIO_IOMMU_DIRTY_PAGES_FLAG_START);
}

static int type1_sync(void *priv, const struct dmalog_ram_map *ram, uint64_t *bitmap)
{
	struct type1_tracker *t = priv;

	for (uint32_t i = 0; i < ram->nregions; i++) {
		const struct dmalog_ram_region *r = &ram->regions[i];
		uint64_t words = (r->length >> DMALOG_RAM_PAGE_SHIFT) / 64;
		uint64_t *dst = bitmap + (r->ram_offset >> DMALOG_RAM_PAGE_SHIFT) / 64;
		int ret =
			dmalog_handle_type1_get_bitmap(t->container, r->gpa, r->length,
						       DMALOG_RAM_PAGE_SIZE, t->scratch, words * 8);

		if (ret)
			return ret;
		for (uint64_t w = 0; w < words; w++)
			dst[w] |= t->scratch[w];
	}
	return 0;
}

static void type1_stop(void *priv, const struct dmalog_ram_map *ram)
{
	struct type1_tracker *t = priv;

	dmalog_handle_type1_dirty(t->container, VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP);
	free(t->scratch);
	t->scratch = NULL;
}

static void type1_release(void *priv)
{
	struct type1_tracker *t = priv;

	free(t->scratch);
	free(t);
}

static const struct dmalog_tracker_ops type1_ops = {
	.start = type1_start,
	.sync = type1_sync,
	.stop = type1_stop,
	.release = type1_release,
};

int dmalog_tracker_type1(struct dmalog_handle *container, struct dmalog_tracker **out)
{
	struct type1_tracker *t;
	int ret;

	if (!container)
		return -EINVAL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->container = container;
	ret = dmalog_tracker_create(&type1_ops, t, "type1", out);
	if (ret)
		free(t);
	return ret;
}
