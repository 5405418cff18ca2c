// SPDX-License-Identifier: MIT
/*
 * The tracker object: an ops table with the RAM map it was started on, and the RAM map
 * itself (regions back to back in RAM-offset order, each starting on a bitmap word).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <dmalog/tracker.h>

struct dmalog_tracker {
	const struct dmalog_tracker_ops *ops;
	void *priv;
	const struct dmalog_ram_map *ram; /* while started */
	char name[32];
};

int dmalog_ram_map_init(struct dmalog_ram_map *map, struct dmalog_ram_region *regions,
			uint32_t nregions)
{
	uint64_t off = 0;

	if (!map || !regions || !nregions || nregions > DMALOG_RAM_MAX_REGIONS)
		return -EINVAL;
	for (uint32_t i = 0; i < nregions; i++) {
		const struct dmalog_ram_region *r = &regions[i];

		if (!r->host || !r->length || r->length % DMALOG_RAM_REGION_ALIGN ||
		    r->reserved[0] || r->reserved[1] || r->gpa % DMALOG_RAM_PAGE_SIZE ||
		    r->gpa + r->length < r->gpa)
			return -EINVAL;
		for (uint32_t j = 0; j < i; j++)
			if (r->gpa < regions[j].gpa + regions[j].length &&
			    regions[j].gpa < r->gpa + r->length)
				return -EINVAL;
	}
	for (uint32_t i = 0; i < nregions; i++) {
		regions[i].ram_offset = off;
		off += regions[i].length;
	}
	map->regions = regions;
	map->nregions = nregions;
	map->bytes = off;
	return 0;
}

int dmalog_tracker_create(const struct dmalog_tracker_ops *ops, void *priv, const char *name,
			  struct dmalog_tracker **out)
{
	struct dmalog_tracker *t;

	if (!ops || !ops->start || !ops->sync || !ops->stop || !out)
		return -EINVAL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->ops = ops;
	t->priv = priv;
	if (name)
		strncpy(t->name, name, sizeof(t->name) - 1);
	*out = t;
	return 0;
}

void dmalog_tracker_destroy(struct dmalog_tracker *t)
{
	if (!t)
		return;
	dmalog_tracker_stop(t);
	if (t->ops->release)
		t->ops->release(t->priv);
	free(t);
}

const char *dmalog_tracker_name(const struct dmalog_tracker *t)
{
	return t->name;
}

int dmalog_tracker_start(struct dmalog_tracker *t, const struct dmalog_ram_map *ram)
{
	int ret;

	if (!ram || !ram->nregions)
		return -EINVAL;
	if (t->ram)
		return -EBUSY;
	ret = t->ops->start(t->priv, ram);
	if (ret) {
		t->ops->stop(t->priv, ram);
		return ret;
	}
	t->ram = ram;
	return 0;
}

int dmalog_tracker_sync(struct dmalog_tracker *t, uint64_t *bitmap)
{
	if (!t->ram || !bitmap)
		return -EINVAL;
	return t->ops->sync(t->priv, t->ram, bitmap);
}

int dmalog_tracker_restart(struct dmalog_tracker *t)
{
	const struct dmalog_ram_map *ram = t->ram;
	int ret;

	if (!ram)
		return -EINVAL;
	if (t->ops->restart) {
		ret = t->ops->restart(t->priv, ram);
	} else {
		t->ops->stop(t->priv, ram);
		ret = t->ops->start(t->priv, ram);
	}
	if (ret) {
		t->ops->stop(t->priv, ram);
		t->ram = NULL;
	}
	return ret;
}

void dmalog_tracker_stop(struct dmalog_tracker *t)
{
	if (!t->ram)
		return;
	t->ops->stop(t->priv, t->ram);
	t->ram = NULL;
}

bool dmalog_tracker_started(const struct dmalog_tracker *t)
{
	return t->ram != NULL;
}
