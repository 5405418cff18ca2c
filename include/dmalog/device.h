/* SPDX-License-Identifier: MIT */
/*
 * An emulated VFIO device: the ioctl-shaped entry point that takes the exact bytes the
 * kernel takes (VFIO_DEVICE_FEATURE, VFIO_DEVICE_RESET) and returns 0 or the kernel's
 * negative errno, plus the two ops tables a device driver fills in, as vfio_log_ops and
 * vfio_migration_ops are in the kernel.
 *
 * Pointers inside payloads (ranges, bitmap) are plain process addresses. A NULL one gives
 * -EFAULT; any other bad address cannot be detected in userspace.
 */
#ifndef DMALOG_DEVICE_H
#define DMALOG_DEVICE_H

#include <stdbool.h>
#include <stdint.h>
#include <dmalog/api.h>
#include <dmalog/iova_bitmap.h>
#include <dmalog/ranges.h>
#include <dmalog/uapi.h>

#ifdef __cplusplus
extern "C" {
#endif

struct dmalog_device;

/*
 * DMA logging, as struct vfio_log_ops. All three are mandatory. The core serialises calls
 * on one device; ranges are validated, sorted ascending and freed when log_start returns.
 */
struct dmalog_log_ops {
	/* Start tracking; *page_size is the (power-of-two) hint in, the selected size out. */
	int (*log_start)(void *priv, const struct dmalog_range *ranges, uint32_t nranges,
			 uint64_t *page_size);
	/* Stop tracking; 0 when not started. */
	int (*log_stop)(void *priv);
	/*
	 * Report written pages overlapping [iova, iova + length) into @dirty and clear those
	 * lying wholly inside the whole report (dmalog_iova_bitmap_span() of @dirty; the core
	 * hands a long REPORT over window by window): a tracked page cut by a window edge is
	 * then cleared once, and one cut by the REPORT's own edge is reported and kept.
	 */
	int (*log_read_and_clear)(void *priv, uint64_t iova, uint64_t length,
				  struct dmalog_iova_bitmap *dirty);
	/*
	 * Optional. Close and reset call it without the core's lock before they stop tracking:
	 * a read_and_clear blocked on the device must return -EIO soon (mlx5's
	 * set_tracker_error()).
	 */
	void (*log_abort)(void *priv);
};

/*
 * Migration v2, as struct vfio_migration_ops, except that the core walks combination arcs:
 * @step performs exactly one arc of the kernel's table.
 */
struct dmalog_mig_ops {
	/*
	 * Perform arc @from -> @to. On success it may return a new data fd in *data_fd (the
	 * core refuses one on any arc but the last). On failure it returns -errno and sets
	 * *to_error if the device is now in ERROR; otherwise the device stays in @from.
	 */
	int (*step)(void *priv, uint32_t from, uint32_t to, int *data_fd, bool *to_error);
	/* Estimated STOP_COPY data length, in any state. Mandatory. */
	int (*get_data_size)(void *priv, uint64_t *stop_copy_length);
	/* Initial and dirty bytes while in PRE_COPY*. Mandatory with VFIO_MIGRATION_PRE_COPY. */
	int (*precopy_info)(void *priv, uint64_t *initial_bytes, uint64_t *dirty_bytes);
	/* VFIO_DEVICE_RESET: drop any data session, back to RUNNING. Optional. */
	void (*reset)(void *priv);
};

struct dmalog_device_desc {
	const char *name;
	const struct dmalog_log_ops *log_ops; /* NULL: no DMA logging (-ENOTTY) */
	const struct dmalog_mig_ops *mig_ops; /* NULL: not migratable (-ENOTTY) */
	uint64_t migration_flags;	      /* must include STOP_COPY with mig_ops */
	void *priv;			      /* passed to every op */
	uint64_t reserved[4];		      /* zero: room for fields to come */
};

/** dmalog_device_create() - Register a device. -EINVAL for incomplete ops tables or bad flags,
 * -ENOMEM. */
DMALOG_API int dmalog_device_create(const struct dmalog_device_desc *desc,
				    struct dmalog_device **out);

/**
 * dmalog_device_destroy() - close: wakes a REPORT blocked on the device (-EIO), waits for every
 * call in flight to return (calls that arrive meanwhile get -ENODEV), stops DMA logging if
 * active, frees. NULL is
 * fine.
 */
DMALOG_API void dmalog_device_destroy(struct dmalog_device *dev);

/** dmalog_device_ioctl() - ioctl(device_fd, request, arg): VFIO_DEVICE_FEATURE and
 * VFIO_DEVICE_RESET; else -ENOTTY. */
DMALOG_API int dmalog_device_ioctl(struct dmalog_device *dev, unsigned long request, void *arg);

/**
 * dmalog_device_data_ioctl() - ioctl(data_fd, request, arg) on a migration data fd this device
 * handed out: VFIO_MIG_GET_PRECOPY_INFO. -ENOTTY for other requests, -EBADF for an fd that is not
 * the device's open saving session.
 */
DMALOG_API int dmalog_device_data_ioctl(struct dmalog_device *dev, int data_fd,
					unsigned long request, void *arg);

/**
 * dmalog_device_set_report_window() - Window size, in bitmap bits, that REPORT hands the tracker at
 * a time (default DMALOG_IOVA_BITMAP_WINDOW_BITS). Smaller windows exercise the windowing in tests.
 */
DMALOG_API void dmalog_device_set_report_window(struct dmalog_device *dev, uint64_t window_bits);

/**
 * dmalog_device_set_report_shared() - Whether the bitmaps given to this device's REPORTs may be
 * filled by another reporter at the same time (several devices reporting into one bitmap from
 * several threads). Off by default: a REPORT ORs words in with plain loads and stores, as the
 * kernel's iova_bitmap does; on, every word is merged with an atomic OR.
 */
DMALOG_API void dmalog_device_set_report_shared(struct dmalog_device *dev, bool shared);

/** dmalog_device_name() - the name the device was created with ("" for none) */
DMALOG_API const char *dmalog_device_name(const struct dmalog_device *dev);

#ifdef __cplusplus
}
#endif

#endif
