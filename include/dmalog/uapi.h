/* SPDX-License-Identifier: MIT */
/*
 * The kernel uAPI dmalog speaks: <linux/vfio.h> for layouts, plus what Debian 12's
 * 6.1 header lacks, with the kernel's exact values. Every definition here is guarded so
 * that a newer system header wins; the static asserts pin each size and offset we rely on.
 */
#ifndef DMALOG_UAPI_H
#define DMALOG_UAPI_H

#include <stddef.h>
#include <linux/types.h>
#include <linux/vfio.h>
/* A system that has iommufd's header gives its definitions; only what it lacks is added. */
#if defined(__has_include)
#if __has_include(<linux/iommufd.h>)
#include <linux/iommufd.h>
#endif
#endif

/* The layout checks hold in C and C++ alike (C++ spells it static_assert). */
#ifdef __cplusplus
#define DMALOG_STATIC_ASSERT(cond, msg) static_assert(cond, msg)
#else
#define DMALOG_STATIC_ASSERT(cond, msg) _Static_assert(cond, msg)
#endif

/* PRE_COPY (kernel 6.2): the flag, the two states and the precopy info ioctl on the data fd. */
#ifndef VFIO_MIGRATION_PRE_COPY
#define VFIO_MIGRATION_PRE_COPY (1 << 2)
/* enum vfio_device_mig_state gained these two values in the same release. */
#define VFIO_DEVICE_STATE_PRE_COPY     6
#define VFIO_DEVICE_STATE_PRE_COPY_P2P 7
#endif

#ifndef VFIO_MIG_GET_PRECOPY_INFO
struct vfio_precopy_info {
	__u32 argsz;
	__u32 flags;
	__aligned_u64 initial_bytes;
	__aligned_u64 dirty_bytes;
};
#define VFIO_MIG_GET_PRECOPY_INFO _IO(VFIO_TYPE, VFIO_BASE + 21)
#endif

/* MIG_DATA_SIZE (kernel 6.3): estimated length of the STOP_COPY data. */
#ifndef VFIO_DEVICE_FEATURE_MIG_DATA_SIZE
struct vfio_device_feature_mig_data_size {
	__aligned_u64 stop_copy_length;
};
#define VFIO_DEVICE_FEATURE_MIG_DATA_SIZE 9
#endif

/* Number of states in enum vfio_device_mig_state, PRE_COPY ones included. */
#define DMALOG_MIG_NUM_STATES 8

/* Core limit on START ranges: as many as fit in one 4 KiB kernel page. */
#define DMALOG_LOG_MAX_RANGES (4096 / sizeof(struct vfio_device_feature_dma_logging_range))

DMALOG_STATIC_ASSERT(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
		     "bitmaps are little-endian u64 words");

DMALOG_STATIC_ASSERT(sizeof(struct vfio_device_feature) == 8, "feature header");
DMALOG_STATIC_ASSERT(offsetof(struct vfio_device_feature, argsz) == 0, "argsz");
DMALOG_STATIC_ASSERT(offsetof(struct vfio_device_feature, flags) == 4, "flags");
DMALOG_STATIC_ASSERT(offsetof(struct vfio_device_feature, data) == 8, "data");

DMALOG_STATIC_ASSERT(sizeof(struct vfio_device_feature_dma_logging_control) == 24, "control");
DMALOG_STATIC_ASSERT(offsetof(struct vfio_device_feature_dma_logging_control, page_size) == 0, "");
DMALOG_STATIC_ASSERT(offsetof(struct vfio_device_feature_dma_logging_control, num_ranges) == 8, "");
DMALOG_STATIC_ASSERT(offsetof(struct vfio_device_feature_dma_logging_control, ranges) == 16, "");
DMALOG_STATIC_ASSERT(sizeof(struct vfio_device_feature_dma_logging_range) == 16, "range");
DMALOG_STATIC_ASSERT(offsetof(struct vfio_device_feature_dma_logging_range, length) == 8, "");
DMALOG_STATIC_ASSERT(sizeof(struct vfio_device_feature_dma_logging_report) == 32, "report");
DMALOG_STATIC_ASSERT(offsetof(struct vfio_device_feature_dma_logging_report, iova) == 0, "");
DMALOG_STATIC_ASSERT(offsetof(struct vfio_device_feature_dma_logging_report, length) == 8, "");
DMALOG_STATIC_ASSERT(offsetof(struct vfio_device_feature_dma_logging_report, page_size) == 16, "");
DMALOG_STATIC_ASSERT(offsetof(struct vfio_device_feature_dma_logging_report, bitmap) == 24, "");

DMALOG_STATIC_ASSERT(sizeof(struct vfio_device_feature_migration) == 8, "migration");
DMALOG_STATIC_ASSERT(sizeof(struct vfio_device_feature_mig_state) == 8, "mig_state");
DMALOG_STATIC_ASSERT(offsetof(struct vfio_device_feature_mig_state, data_fd) == 4, "data_fd");
DMALOG_STATIC_ASSERT(sizeof(struct vfio_device_feature_mig_data_size) == 8, "mig_data_size");
DMALOG_STATIC_ASSERT(sizeof(struct vfio_precopy_info) == 24, "precopy_info");
DMALOG_STATIC_ASSERT(offsetof(struct vfio_precopy_info, initial_bytes) == 8, "");
DMALOG_STATIC_ASSERT(offsetof(struct vfio_precopy_info, dirty_bytes) == 16, "");

DMALOG_STATIC_ASSERT(VFIO_DEVICE_FEATURE_MASK == 0xffff, "");
DMALOG_STATIC_ASSERT(VFIO_DEVICE_FEATURE_GET == (1 << 16), "");
DMALOG_STATIC_ASSERT(VFIO_DEVICE_FEATURE_SET == (1 << 17), "");
DMALOG_STATIC_ASSERT(VFIO_DEVICE_FEATURE_PROBE == (1 << 18), "");
DMALOG_STATIC_ASSERT(VFIO_DEVICE_FEATURE_MIGRATION == 1 &&
			     VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE == 2,
		     "");
DMALOG_STATIC_ASSERT(VFIO_DEVICE_FEATURE_DMA_LOGGING_START == 6, "");
DMALOG_STATIC_ASSERT(VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP == 7, "");
DMALOG_STATIC_ASSERT(VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT == 8, "");
DMALOG_STATIC_ASSERT(VFIO_MIGRATION_STOP_COPY == 1 && VFIO_MIGRATION_P2P == 2, "");
DMALOG_STATIC_ASSERT(VFIO_DEVICE_STATE_ERROR == 0 && VFIO_DEVICE_STATE_STOP == 1, "");
DMALOG_STATIC_ASSERT(VFIO_DEVICE_STATE_RUNNING == 2 && VFIO_DEVICE_STATE_STOP_COPY == 3, "");
DMALOG_STATIC_ASSERT(VFIO_DEVICE_STATE_RESUMING == 4 && VFIO_DEVICE_STATE_RUNNING_P2P == 5, "");
DMALOG_STATIC_ASSERT(VFIO_DEVICE_FEATURE == ((';' << 8) | (100 + 17)), "");
DMALOG_STATIC_ASSERT(VFIO_DEVICE_RESET == ((';' << 8) | (100 + 11)), "");
DMALOG_STATIC_ASSERT(VFIO_MIG_GET_PRECOPY_INFO == ((';' << 8) | (100 + 21)), "");

/*
 * iommufd (kernel 6.7): Debian 12 ships no <linux/iommufd.h>. The commands dmalog serves, with
 * the kernel's numbers and layouts.
 */
#ifndef IOMMUFD_TYPE
#include <linux/ioctl.h>
#define IOMMUFD_TYPE (';')
enum {
	IOMMUFD_CMD_BASE = 0x80,
	IOMMUFD_CMD_DESTROY = IOMMUFD_CMD_BASE,
	IOMMUFD_CMD_IOAS_ALLOC,
	IOMMUFD_CMD_IOAS_ALLOW_IOVAS,
	IOMMUFD_CMD_IOAS_COPY,
	IOMMUFD_CMD_IOAS_IOVA_RANGES,
	IOMMUFD_CMD_IOAS_MAP,
	IOMMUFD_CMD_IOAS_UNMAP,
	IOMMUFD_CMD_OPTION,
	IOMMUFD_CMD_VFIO_IOAS,
};

struct iommu_destroy {
	__u32 size;
	__u32 id;
};
#define IOMMU_DESTROY _IO(IOMMUFD_TYPE, IOMMUFD_CMD_DESTROY)

struct iommu_ioas_alloc {
	__u32 size;
	__u32 flags;
	__u32 out_ioas_id;
};
#define IOMMU_IOAS_ALLOC _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_ALLOC)

enum iommufd_ioas_map_flags {
	IOMMU_IOAS_MAP_FIXED_IOVA = 1 << 0,
	IOMMU_IOAS_MAP_WRITEABLE = 1 << 1,
	IOMMU_IOAS_MAP_READABLE = 1 << 2,
};

struct iommu_ioas_map {
	__u32 size;
	__u32 flags;
	__u32 ioas_id;
	__u32 __reserved;
	__aligned_u64 user_va;
	__aligned_u64 length;
	__aligned_u64 iova;
};
#define IOMMU_IOAS_MAP _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_MAP)

struct iommu_ioas_unmap {
	__u32 size;
	__u32 ioas_id;
	__aligned_u64 iova;
	__aligned_u64 length;
};
#define IOMMU_IOAS_UNMAP _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_UNMAP)

enum iommufd_option {
	IOMMU_OPTION_RLIMIT_MODE = 0,
	IOMMU_OPTION_HUGE_PAGES = 1,
};

enum iommufd_option_ops {
	IOMMU_OPTION_OP_SET = 0,
	IOMMU_OPTION_OP_GET = 1,
};

struct iommu_option {
	__u32 size;
	__u32 option_id;
	__u16 op;
	__u16 __reserved;
	__u32 object_id;
	__aligned_u64 val64;
};
#define IOMMU_OPTION _IO(IOMMUFD_TYPE, IOMMUFD_CMD_OPTION)
#endif /* IOMMUFD_TYPE: the 6.2 commands */

/* HWPT allocation and hardware info (6.6). Later commands use their numbers literally. */
#ifndef IOMMU_HWPT_ALLOC
enum iommufd_hwpt_alloc_flags {
	IOMMU_HWPT_ALLOC_NEST_PARENT = 1 << 0,
};

enum iommu_hwpt_data_type {
	IOMMU_HWPT_DATA_NONE = 0,
};

struct iommu_hwpt_alloc {
	__u32 size;
	__u32 flags;
	__u32 dev_id;
	__u32 pt_id;
	__u32 out_hwpt_id;
	__u32 __reserved;
	__u32 data_type;
	__u32 data_len;
	__aligned_u64 data_uptr;
};
#define IOMMU_HWPT_ALLOC _IO(IOMMUFD_TYPE, 0x89)
#endif

#ifndef IOMMU_GET_HW_INFO
enum iommu_hw_info_type {
	IOMMU_HW_INFO_TYPE_NONE = 0,
};

struct iommu_hw_info {
	__u32 size;
	__u32 flags;
	__u32 dev_id;
	__u32 data_len;
	__aligned_u64 data_uptr;
	__u32 out_data_type;
	__u32 __reserved;
	__aligned_u64 out_capabilities;
};
#define IOMMU_GET_HW_INFO _IO(IOMMUFD_TYPE, 0x8a)
#endif

/* Dirty tracking (6.7): the flag, the capability and the two commands. */
#ifndef IOMMU_HWPT_SET_DIRTY_TRACKING
#define IOMMU_HWPT_ALLOC_DIRTY_TRACKING (1 << 1)
#define IOMMU_HW_CAP_DIRTY_TRACKING	(1 << 0)

enum iommufd_hwpt_set_dirty_tracking_flags {
	IOMMU_HWPT_DIRTY_TRACKING_ENABLE = 1,
};

struct iommu_hwpt_set_dirty_tracking {
	__u32 size;
	__u32 flags;
	__u32 hwpt_id;
	__u32 __reserved;
};
#define IOMMU_HWPT_SET_DIRTY_TRACKING _IO(IOMMUFD_TYPE, 0x8b)

enum iommufd_hwpt_get_dirty_bitmap_flags {
	IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR = 1,
};

struct iommu_hwpt_get_dirty_bitmap {
	__u32 size;
	__u32 hwpt_id;
	__u32 flags;
	__u32 __reserved;
	__aligned_u64 iova;
	__aligned_u64 length;
	__aligned_u64 page_size;
	__aligned_u64 data;
};
#define IOMMU_HWPT_GET_DIRTY_BITMAP _IO(IOMMUFD_TYPE, 0x8c)
#endif

DMALOG_STATIC_ASSERT(sizeof(struct iommu_destroy) == 8, "");
DMALOG_STATIC_ASSERT(sizeof(struct iommu_ioas_alloc) == 12, "");
DMALOG_STATIC_ASSERT(sizeof(struct iommu_ioas_map) == 40, "");
DMALOG_STATIC_ASSERT(offsetof(struct iommu_ioas_map, user_va) == 16, "");
DMALOG_STATIC_ASSERT(offsetof(struct iommu_ioas_map, iova) == 32, "");
DMALOG_STATIC_ASSERT(sizeof(struct iommu_ioas_unmap) == 24, "");
DMALOG_STATIC_ASSERT(offsetof(struct iommu_ioas_unmap, iova) == 8, "");
DMALOG_STATIC_ASSERT(sizeof(struct iommu_option) == 24, "");
DMALOG_STATIC_ASSERT(offsetof(struct iommu_option, object_id) == 12, "");
DMALOG_STATIC_ASSERT(offsetof(struct iommu_option, val64) == 16, "");
DMALOG_STATIC_ASSERT(offsetof(struct iommu_hwpt_alloc, out_hwpt_id) == 16, "");
DMALOG_STATIC_ASSERT(offsetof(struct iommu_hwpt_alloc, data_uptr) == 32, "");
DMALOG_STATIC_ASSERT(sizeof(struct iommu_hw_info) == 40, "");
DMALOG_STATIC_ASSERT(offsetof(struct iommu_hw_info, out_capabilities) == 32, "");
DMALOG_STATIC_ASSERT(sizeof(struct iommu_hwpt_set_dirty_tracking) == 16, "");
DMALOG_STATIC_ASSERT(sizeof(struct iommu_hwpt_get_dirty_bitmap) == 48, "");
DMALOG_STATIC_ASSERT(offsetof(struct iommu_hwpt_get_dirty_bitmap, iova) == 16, "");
DMALOG_STATIC_ASSERT(offsetof(struct iommu_hwpt_get_dirty_bitmap, data) == 40, "");
DMALOG_STATIC_ASSERT(IOMMU_HWPT_ALLOC == ((';' << 8) | 0x89), "");
DMALOG_STATIC_ASSERT(IOMMU_GET_HW_INFO == ((';' << 8) | 0x8a), "");
DMALOG_STATIC_ASSERT(IOMMU_HWPT_SET_DIRTY_TRACKING == ((';' << 8) | 0x8b), "");
DMALOG_STATIC_ASSERT(IOMMU_HWPT_GET_DIRTY_BITMAP == ((';' << 8) | 0x8c), "");

#endif /* DMALOG_UAPI_H */
