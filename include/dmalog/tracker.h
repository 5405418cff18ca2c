/* SPDX-License-Identifier: MIT */
/*
 * Dirty trackers as the migration engine consumes them: each one ORs what it saw since the
 * last sync into one bitmap, as QEMU's migration bitmap sync does with KVM's dirty log and
 * VFIO's DMA logging. The bitmap has one bit per 4 KiB page of guest RAM in RAM-offset order
 * (the regions back to back, as QEMU's ram_addr space), little-endian u64 words.
 *
 * Four trackers come with the library, each over a handle (so any backend works):
 *  - dmalog_tracker_vfio_log(): a device's VFIO DMA logging over every region's GPA range;
 *  - dmalog_tracker_ram_log(): a log kept by RAM offset behind the same REPORT uAPI (the CPU's
 *    log of the demo guest, as KVM's dirty log is per memslot);
 *  - dmalog_tracker_iommufd(): an iommufd HWPT's dirty bits;
 *  - dmalog_tracker_type1(): a type1 container's DIRTY_PAGES bitmap.
 * A VMM adds its own (a KVM dirty ring, say) by filling in struct dmalog_tracker_ops.
 */
#ifndef DMALOG_TRACKER_H
#define DMALOG_TRACKER_H

#include <stdint.h>
#include <dmalog/api.h>
#include <dmalog/handle.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DMALOG_RAM_PAGE_SHIFT 12
#define DMALOG_RAM_PAGE_SIZE  (1ULL << DMALOG_RAM_PAGE_SHIFT)
/* Region lengths are multiples of this: each region's bits start on a u64 word. */
#define DMALOG_RAM_REGION_ALIGN (64 * DMALOG_RAM_PAGE_SIZE)
#define DMALOG_RAM_MAX_REGIONS	64

/**
 * struct dmalog_ram_region - one piece of guest RAM
 * @host: where this process has it mapped
 * @gpa: its guest-physical address, which is the IOVA devices use (no vIOMMU)
 * @length: bytes, a multiple of DMALOG_RAM_REGION_ALIGN
 * @ram_offset: its place in RAM-offset order; dmalog_ram_map_init() fills it in
 * @reserved: zero (room for fields to come without changing the array's stride)
 */
struct dmalog_ram_region {
	void *host;
	uint64_t gpa;
	uint64_t length;
	uint64_t ram_offset;
	uint64_t reserved[2];
};

/**
 * struct dmalog_ram_map - guest RAM as trackers and the engine see it
 * @regions: the regions, in RAM-offset order
 * @nregions: how many
 * @bytes: their total length
 */
struct dmalog_ram_map {
	const struct dmalog_ram_region *regions;
	uint32_t nregions;
	uint64_t bytes;
};

/**
 * dmalog_ram_map_init() - lay regions out back to back in RAM-offset order
 * @map: filled in; it points at @regions
 * @regions: the regions; their ram_offset fields are set
 * @nregions: 1 to DMALOG_RAM_MAX_REGIONS
 *
 * Return: 0, or -EINVAL for no regions, too many, a NULL host pointer, non-zero reserved
 * fields, a length that is 0 or
 * not a multiple of DMALOG_RAM_REGION_ALIGN, a GPA not page-aligned, or GPA ranges that wrap
 * or overlap.
 */
DMALOG_API int dmalog_ram_map_init(struct dmalog_ram_map *map, struct dmalog_ram_region *regions,
				   uint32_t nregions);

/** dmalog_ram_map_pages() - pages of guest RAM, the bits of a tracker bitmap */
static inline uint64_t dmalog_ram_map_pages(const struct dmalog_ram_map *map)
{
	return map->bytes >> DMALOG_RAM_PAGE_SHIFT;
}

/**
 * struct dmalog_tracker_ops - what a tracker does
 * @start: begin tracking all of @ram
 * @sync: OR every page written since start or the last sync into @bitmap (one bit per page
 *	in RAM-offset order) and forget them. On error the engine marks everything dirty and
 *	calls @restart.
 * @stop: stop tracking; called also when not started or after a failed sync
 * @restart: optional; start over after a failed sync. NULL: @stop then @start.
 * @release: optional; called by dmalog_tracker_destroy()
 */
struct dmalog_tracker_ops {
	int (*start)(void *priv, const struct dmalog_ram_map *ram);
	int (*sync)(void *priv, const struct dmalog_ram_map *ram, uint64_t *bitmap);
	void (*stop)(void *priv, const struct dmalog_ram_map *ram);
	int (*restart)(void *priv, const struct dmalog_ram_map *ram);
	void (*release)(void *priv);
};

struct dmalog_tracker;

/**
 * dmalog_tracker_create() - a tracker over any implementation
 * @ops: its operations (kept by pointer)
 * @priv: passed to every op
 * @name: for messages (copied)
 * @out: the new tracker
 *
 * Return: 0, -EINVAL for missing start, sync or stop, or -ENOMEM.
 */
DMALOG_API int dmalog_tracker_create(const struct dmalog_tracker_ops *ops, void *priv,
				     const char *name, struct dmalog_tracker **out);

/** dmalog_tracker_destroy() - stop it if it runs, release and free; NULL is fine */
DMALOG_API void dmalog_tracker_destroy(struct dmalog_tracker *t);

/** dmalog_tracker_name() - the tracker's name */
DMALOG_API const char *dmalog_tracker_name(const struct dmalog_tracker *t);

/** dmalog_tracker_start() - start tracking @ram: 0 or -errno (-EBUSY if already started) */
DMALOG_API int dmalog_tracker_start(struct dmalog_tracker *t, const struct dmalog_ram_map *ram);

/**
 * dmalog_tracker_sync() - OR what was written since the last sync into @bitmap
 * @t: a started tracker
 * @bitmap: dmalog_ram_map_pages() bits
 *
 * Return: 0, -EINVAL when not started, or the tracker's -errno (its knowledge is lost:
 * mark everything dirty and call dmalog_tracker_restart()).
 */
DMALOG_API int dmalog_tracker_sync(struct dmalog_tracker *t, uint64_t *bitmap);

/** dmalog_tracker_restart() - start over after a failed sync: 0 or -errno (then stopped) */
DMALOG_API int dmalog_tracker_restart(struct dmalog_tracker *t);

/** dmalog_tracker_stop() - stop tracking; a tracker not started is left alone */
DMALOG_API void dmalog_tracker_stop(struct dmalog_tracker *t);

/** dmalog_tracker_started() - whether the tracker is between start and stop */
DMALOG_API bool dmalog_tracker_started(const struct dmalog_tracker *t);

/**
 * dmalog_tracker_vfio_log() - a device's VFIO DMA logging
 * @dev: a device handle (not owned)
 * @out: the tracker: START over every region's GPA range at 4 KiB, one REPORT per region
 *	straight into the region's bits of the bitmap
 *
 * Return: 0 or -ENOMEM.
 */
DMALOG_API int dmalog_tracker_vfio_log(struct dmalog_handle *dev, struct dmalog_tracker **out);

/**
 * dmalog_tracker_ram_log() - a dirty log kept by RAM offset, behind the REPORT uAPI
 * @log: a device handle whose DMA logging covers [0, RAM bytes) by RAM offset (not owned)
 * @out: the tracker
 *
 * Return: 0 or -ENOMEM.
 */
DMALOG_API int dmalog_tracker_ram_log(struct dmalog_handle *log, struct dmalog_tracker **out);

/**
 * dmalog_tracker_iommufd() - an iommufd HWPT's dirty bits
 * @iommufd: an iommufd handle (not owned)
 * @hwpt_id: a HWPT allocated with IOMMU_HWPT_ALLOC_DIRTY_TRACKING whose IOAS maps every
 *	region at its GPA
 * @out: the tracker: one GET_DIRTY_BITMAP per region
 *
 * Return: 0 or -ENOMEM.
 */
DMALOG_API int dmalog_tracker_iommufd(struct dmalog_handle *iommufd, uint32_t hwpt_id,
				      struct dmalog_tracker **out);

/**
 * dmalog_tracker_type1() - a type1 container's dirty page tracking
 * @container: a container handle that maps each region at its GPA as one mapping (not owned)
 * @out: the tracker
 *
 * Return: 0 or -ENOMEM.
 */
DMALOG_API int dmalog_tracker_type1(struct dmalog_handle *container, struct dmalog_tracker **out);

#ifdef __cplusplus
}
#endif

#endif
