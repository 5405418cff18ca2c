/* SPDX-License-Identifier: MIT */
/*
 * An emulated iommufd: IOAS, hardware page tables (each an I/O page table with dirty bits)
 * and bound devices, behind the kernel's ioctl layouts and errnos. dmalog_iommufd_ioctl()
 * takes what ioctl(iommufd, request, arg) takes: IOMMU_DESTROY, IOMMU_IOAS_ALLOC,
 * IOMMU_IOAS_MAP, IOMMU_IOAS_UNMAP, IOMMU_OPTION (HUGE_PAGES), IOMMU_HWPT_ALLOC,
 * IOMMU_GET_HW_INFO, IOMMU_HWPT_SET_DIRTY_TRACKING and IOMMU_HWPT_GET_DIRTY_BITMAP.
 * IOAS_MAP's user_va is the address DMA reaches: a device's DMA through its page table lands
 * at user_va + (iova - mapping iova).
 *
 * Stricter than the kernel (which it otherwise follows): a GET_DIRTY_BITMAP over a range that
 * is not wholly mapped, of length 0, or with a page size that is not a power of two fails
 * with -EINVAL (the kernel drops the hole error and does not check the rest); a non-zero
 * __reserved in SET_DIRTY_TRACKING is -EOPNOTSUPP.
 */
#ifndef DMALOG_HWPT_H
#define DMALOG_HWPT_H

#include <stdbool.h>
#include <stdint.h>
#include <dmalog/api.h>
#include <dmalog/iopt.h>
#include <dmalog/uapi.h>

#ifdef __cplusplus
extern "C" {
#endif

struct dmalog_iommufd;

/* What the IOMMU behind a device can do. */
struct dmalog_iommufd_device_caps {
	bool dirty_tracking; /* IOMMU_HW_CAP_DIRTY_TRACKING */
};

/** dmalog_iommufd_create() - an empty emulated iommufd context: 0 or -ENOMEM */
DMALOG_API int dmalog_iommufd_create(struct dmalog_iommufd **out);
/** dmalog_iommufd_destroy() - free the context and every object in it; NULL is fine */
DMALOG_API void dmalog_iommufd_destroy(struct dmalog_iommufd *ictx);

/** dmalog_iommufd_ioctl() - ioctl(iommufd, request, arg). -ENOTTY for requests it does not serve.
 */
DMALOG_API int dmalog_iommufd_ioctl(struct dmalog_iommufd *ictx, unsigned long request, void *arg);

/** dmalog_iommufd_bind() - Binding a VFIO device to the iommufd (VFIO_DEVICE_BIND_IOMMUFD): returns
 * its dev_id. */
DMALOG_API int dmalog_iommufd_bind(struct dmalog_iommufd *ictx,
				   const struct dmalog_iommufd_device_caps *caps, uint32_t *dev_id);

/**
 * dmalog_iommufd_attach() - VFIO_DEVICE_ATTACH_IOMMUFD_PT: attach to a HWPT, or to an IOAS (which
 * gets the device its own page table, without dirty tracking); *pt_id returns the HWPT. -ENOENT for
 * unknown ids, -EINVAL when the HWPT enforces dirty tracking and the device's IOMMU has none.
 */
DMALOG_API int dmalog_iommufd_attach(struct dmalog_iommufd *ictx, uint32_t dev_id, uint32_t *pt_id);

/** dmalog_iommufd_device_iopt() - The page table the device's DMA translates through; NULL while
 * detached. */
DMALOG_API struct dmalog_iopt *dmalog_iommufd_device_iopt(struct dmalog_iommufd *ictx,
							  uint32_t dev_id);

#ifdef __cplusplus
}
#endif

#endif
