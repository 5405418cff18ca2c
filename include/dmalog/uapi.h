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

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "bitmaps are little-endian u64 words");

_Static_assert(sizeof(struct vfio_device_feature) == 8, "feature header");
_Static_assert(offsetof(struct vfio_device_feature, argsz) == 0, "argsz");
_Static_assert(offsetof(struct vfio_device_feature, flags) == 4, "flags");
_Static_assert(offsetof(struct vfio_device_feature, data) == 8, "data");

_Static_assert(sizeof(struct vfio_device_feature_dma_logging_control) == 24, "control");
_Static_assert(offsetof(struct vfio_device_feature_dma_logging_control, page_size) == 0, "");
_Static_assert(offsetof(struct vfio_device_feature_dma_logging_control, num_ranges) == 8, "");
_Static_assert(offsetof(struct vfio_device_feature_dma_logging_control, ranges) == 16, "");
_Static_assert(sizeof(struct vfio_device_feature_dma_logging_range) == 16, "range");
_Static_assert(offsetof(struct vfio_device_feature_dma_logging_range, length) == 8, "");
_Static_assert(sizeof(struct vfio_device_feature_dma_logging_report) == 32, "report");
_Static_assert(offsetof(struct vfio_device_feature_dma_logging_report, iova) == 0, "");
_Static_assert(offsetof(struct vfio_device_feature_dma_logging_report, length) == 8, "");
_Static_assert(offsetof(struct vfio_device_feature_dma_logging_report, page_size) == 16, "");
_Static_assert(offsetof(struct vfio_device_feature_dma_logging_report, bitmap) == 24, "");

_Static_assert(sizeof(struct vfio_device_feature_migration) == 8, "migration");
_Static_assert(sizeof(struct vfio_device_feature_mig_state) == 8, "mig_state");
_Static_assert(offsetof(struct vfio_device_feature_mig_state, data_fd) == 4, "data_fd");
_Static_assert(sizeof(struct vfio_device_feature_mig_data_size) == 8, "mig_data_size");
_Static_assert(sizeof(struct vfio_precopy_info) == 24, "precopy_info");
_Static_assert(offsetof(struct vfio_precopy_info, initial_bytes) == 8, "");
_Static_assert(offsetof(struct vfio_precopy_info, dirty_bytes) == 16, "");

_Static_assert(VFIO_DEVICE_FEATURE_MASK == 0xffff, "");
_Static_assert(VFIO_DEVICE_FEATURE_GET == (1 << 16), "");
_Static_assert(VFIO_DEVICE_FEATURE_SET == (1 << 17), "");
_Static_assert(VFIO_DEVICE_FEATURE_PROBE == (1 << 18), "");
_Static_assert(VFIO_DEVICE_FEATURE_MIGRATION == 1 && VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE == 2, "");
_Static_assert(VFIO_DEVICE_FEATURE_DMA_LOGGING_START == 6, "");
_Static_assert(VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP == 7, "");
_Static_assert(VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT == 8, "");
_Static_assert(VFIO_MIGRATION_STOP_COPY == 1 && VFIO_MIGRATION_P2P == 2, "");
_Static_assert(VFIO_DEVICE_STATE_ERROR == 0 && VFIO_DEVICE_STATE_STOP == 1, "");
_Static_assert(VFIO_DEVICE_STATE_RUNNING == 2 && VFIO_DEVICE_STATE_STOP_COPY == 3, "");
_Static_assert(VFIO_DEVICE_STATE_RESUMING == 4 && VFIO_DEVICE_STATE_RUNNING_P2P == 5, "");
_Static_assert(VFIO_DEVICE_FEATURE == ((';' << 8) | (100 + 17)), "");
_Static_assert(VFIO_DEVICE_RESET == ((';' << 8) | (100 + 11)), "");
_Static_assert(VFIO_MIG_GET_PRECOPY_INFO == ((';' << 8) | (100 + 21)), "");

#endif /* DMALOG_UAPI_H */
