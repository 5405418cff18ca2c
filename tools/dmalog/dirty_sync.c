// SPDX-License-Identifier: MIT
/*
 * One dirty bitmap from every tracker the guest has, the way QEMU's migration sync builds it:
 * the CPU's log, each device's DMA logging REPORT, the IOMMU's GET_DIRTY_BITMAP, type1's
 * DIRTY_PAGES GET_BITMAP. The bitmap has one bit per RAM page (RAM offset order); every RAM
 * slot starts at a 2 MiB multiple, so a report for a slot's guest-physical range lands
 * directly at the slot's byte in the bitmap. The uAPI reports only set bits, so the trackers
 * OR into it without a merge pass; type1, which copies its bitmap out, goes through a scratch.
 *
 * A report that fails costs its tracker's knowledge since the last sync: everything is marked
 * dirty and the tracker is restarted, so the migration goes on with nothing lost.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "migrate.h"
#include "vfio_feature.h"

static uint8_t *slot_bitmap(uint64_t *bitmap, const struct guest_slot *s)
{
	return (uint8_t *)bitmap + (s->ram_off >> MIG_PAGE_SHIFT) / 8;
}

static int device_log_start(struct guest *g, struct dmalog_device *dev, bool cpu)
{
	struct vfio_device_feature_dma_logging_range ranges[MIG_MAX_SLOTS];
	struct vfio_device_feature_dma_logging_control ctl = {
		.page_size = MIG_PAGE_SIZE,
		.num_ranges = cpu ? 1 : g->nslots,
		.ranges = (uintptr_t)ranges,
	};

	/* The CPU's log is per RAM offset, as KVM's is per memslot; devices see GPAs. */
	if (cpu)
		ranges[0] = (struct vfio_device_feature_dma_logging_range){0, g->ram_bytes};
	for (uint32_t i = 0; !cpu && i < g->nslots; i++)
		ranges[i] = (struct vfio_device_feature_dma_logging_range){g->slots[i].gpa,
									   g->slots[i].len};
	return vfio_feature(dev, VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_DMA_LOGGING_START,
			    &ctl, sizeof(ctl));
}

static int device_log_stop(struct dmalog_device *dev)
{
	return vfio_feature(dev, VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP,
			    NULL, 0);
}

static int device_report(struct dmalog_device *dev, uint64_t iova, uint64_t length, void *bitmap)
{
	struct vfio_device_feature_dma_logging_report rep = {
		.iova = iova,
		.length = length,
		.page_size = MIG_PAGE_SIZE,
		.bitmap = (uintptr_t)bitmap,
	};

	return vfio_feature(dev, VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT,
			    &rep, sizeof(rep));
}

static int iommu_set_tracking(struct guest *g, bool on)
{
	struct iommu_hwpt_set_dirty_tracking set = {
		.size = sizeof(set),
		.flags = on ? IOMMU_HWPT_DIRTY_TRACKING_ENABLE : 0,
		.hwpt_id = g->hwpt_id,
	};

	return dmalog_iommufd_ioctl(g->iommufd, IOMMU_HWPT_SET_DIRTY_TRACKING, &set);
}

static int iommu_report(struct guest *g, const struct guest_slot *s, void *bitmap)
{
	struct iommu_hwpt_get_dirty_bitmap get = {
		.size = sizeof(get),
		.hwpt_id = g->hwpt_id,
		.iova = s->gpa,
		.length = s->len,
		.page_size = MIG_PAGE_SIZE,
		.data = (uintptr_t)bitmap,
	};

	return dmalog_iommufd_ioctl(g->iommufd, IOMMU_HWPT_GET_DIRTY_BITMAP, &get);
}

static int type1_dirty(struct guest *g, uint32_t flags)
{
	struct vfio_iommu_type1_dirty_bitmap d = {.argsz = sizeof(d), .flags = flags};

	return dmalog_type1_ioctl(g->type1, VFIO_IOMMU_DIRTY_PAGES, &d);
}

/* type1 copies its bitmap out: read into @scratch, then OR it into the slot's bits. */
static int type1_report(struct guest *g, const struct guest_slot *s, uint64_t *scratch,
			uint64_t *bitmap)
{
	uint64_t words = dmalog_iova_bitmap_words(s->len, MIG_PAGE_SIZE);
	uint64_t buf[(sizeof(struct vfio_iommu_type1_dirty_bitmap) +
		      sizeof(struct vfio_iommu_type1_dirty_bitmap_get)) /
		     8] = {0};
	struct vfio_iommu_type1_dirty_bitmap *d = (void *)buf;
	struct vfio_iommu_type1_dirty_bitmap_get get = {
		.iova = s->gpa,
		.size = s->len,
		.bitmap = {.pgsize = MIG_PAGE_SIZE, .size = words * 8, .data = (__u64 *)scratch},
	};
	uint64_t *dst = (uint64_t *)slot_bitmap(bitmap, s);
	int ret;

	d->argsz = sizeof(buf);
	d->flags = VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP;
	memcpy(d->data, &get, sizeof(get));
	memset(scratch, 0, words * 8);
	ret = dmalog_type1_ioctl(g->type1, VFIO_IOMMU_DIRTY_PAGES, d);
	for (uint64_t i = 0; !ret && i < words; i++)
		dst[i] |= scratch[i];
	return ret;
}

int tracking_start(struct guest *g)
{
	int ret = device_log_start(g, g->cpu_logdev, true);

	for (uint32_t i = 0; i < g->ndevices && !ret; i++)
		if (g->dev_logging[i])
			ret = device_log_start(g, g->dev[i], false);
	if (!ret && g->iommu_dirty)
		ret = iommu_set_tracking(g, true);
	if (!ret && g->type1)
		ret = type1_dirty(g, VFIO_IOMMU_DIRTY_PAGES_FLAG_START);
	if (ret)
		tracking_stop(g);
	return ret;
}

void tracking_stop(struct guest *g)
{
	device_log_stop(g->cpu_logdev);
	for (uint32_t i = 0; i < g->ndevices; i++)
		if (g->dev_logging[i])
			device_log_stop(g->dev[i]);
	if (g->iommu_dirty)
		iommu_set_tracking(g, false);
	if (g->type1)
		type1_dirty(g, VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP);
}

/* A tracker lost what it knew: everything is dirty, and it starts over. */
static int recover(struct guest *g, uint64_t *bitmap, struct sync_stats *st, int dev)
{
	memset(bitmap, 0xff, (g->ram_bytes >> MIG_PAGE_SHIFT) / 8);
	st->tracker_errors++;
	if (dev < 0)
		return iommu_set_tracking(g, false) ?: iommu_set_tracking(g, true);
	device_log_stop(g->dev[dev]);
	return device_log_start(g, g->dev[dev], false);
}

int tracking_sync(struct guest *g, uint64_t *bitmap, struct sync_stats *st)
{
	uint64_t *scratch = NULL;
	int ret;

	/* The CPU log is KVM's: it cannot fail the way a device can. */
	ret = device_report(g->cpu_logdev, 0, g->ram_bytes, bitmap);
	if (ret)
		return ret;
	for (uint32_t i = 0; i < g->ndevices; i++) {
		for (uint32_t s = 0; g->dev_logging[i] && s < g->nslots; s++) {
			const struct guest_slot *slot = &g->slots[s];

			if (device_report(g->dev[i], slot->gpa, slot->len,
					  slot_bitmap(bitmap, slot))) {
				ret = recover(g, bitmap, st, (int)i);
				if (ret)
					return ret;
				break;
			}
		}
	}
	for (uint32_t s = 0; g->iommu_dirty && s < g->nslots; s++) {
		if (iommu_report(g, &g->slots[s], slot_bitmap(bitmap, &g->slots[s]))) {
			ret = recover(g, bitmap, st, -1);
			if (ret)
				return ret;
			break;
		}
	}
	if (g->type1) {
		scratch = malloc(dmalog_iova_bitmap_words(g->ram_bytes, MIG_PAGE_SIZE) * 8);
		if (!scratch)
			return -ENOMEM;
		for (uint32_t s = 0; s < g->nslots && !ret; s++)
			ret = type1_report(g, &g->slots[s], scratch, bitmap);
		free(scratch);
	}
	st->syncs++;
	return ret;
}
