/* SPDX-License-Identifier: MIT */
/*
 * An emulated VFIO type1 container with the kernel's dirty page tracking: MAP_DMA, UNMAP_DMA
 * (with VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP), VFIO_IOMMU_DIRTY_PAGES START/STOP/GET_BITMAP and
 * VFIO_IOMMU_GET_INFO with the migration capability, behind dmalog_type1_ioctl(), which takes
 * what ioctl(container_fd, request, arg) takes. The container is a v2 (TYPE1v2) one.
 *
 * What the container can know is what the kernel knows: pages a vendor driver pinned, and
 * pages written through dmalog_type1_dma_rw(). Pinned pages are reported dirty on every read
 * while pinned (and once more after unpinning); written pages once. If any group in the
 * container belongs to a device that does not pin (an IOMMU-backed device that may DMA
 * anywhere), every mapped page is dirty on every read: type1's pessimism.
 */
#ifndef DMALOG_TYPE1_H
#define DMALOG_TYPE1_H

#include <stdbool.h>
#include <stdint.h>
#include <dmalog/api.h>
#include <dmalog/uapi.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Largest bitmap a GET may ask for: INT_MAX pages, rounded to u64 words (256 MiB). */
#define DMALOG_TYPE1_DIRTY_BITMAP_SIZE_MAX (((1ULL << 31) + 63) / 64 * 8)

struct dmalog_type1;

/** dmalog_type1_create() - an empty emulated type1 container: 0 or -ENOMEM */
DMALOG_API int dmalog_type1_create(struct dmalog_type1 **out);
/** dmalog_type1_destroy() - free the container and its mappings; NULL is fine */
DMALOG_API void dmalog_type1_destroy(struct dmalog_type1 *c);

/** dmalog_type1_ioctl() - ioctl(container_fd, request, arg). -ENOTTY for other requests. */
DMALOG_API int dmalog_type1_ioctl(struct dmalog_type1 *c, unsigned long request, void *arg);

/** dmalog_type1_add_group() - A group joins the container; @pins: its device's driver pins what it
 * uses (an mdev). */
DMALOG_API void dmalog_type1_add_group(struct dmalog_type1 *c, bool pins);

/** dmalog_type1_pin_pages() - vfio_pin_pages()/vfio_unpin_pages() for @npages 4 KiB pages at @iova.
 * -EINVAL if unmapped. */
DMALOG_API int dmalog_type1_pin_pages(struct dmalog_type1 *c, uint64_t iova, uint64_t npages);
/** dmalog_type1_unpin_pages() - a vendor driver unpins what it pinned: 0 or -EINVAL */
DMALOG_API int dmalog_type1_unpin_pages(struct dmalog_type1 *c, uint64_t iova, uint64_t npages);

/** dmalog_type1_dma_rw() - vfio_dma_rw(): copy to or from the mapped memory; a write dirties its
 * pages. */
DMALOG_API int dmalog_type1_dma_rw(struct dmalog_type1 *c, uint64_t iova, void *data,
				   uint64_t length, bool write);

#ifdef __cplusplus
}
#endif

#endif
