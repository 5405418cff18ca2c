/* SPDX-License-Identifier: MIT */
/*
 * A handle over one VFIO-shaped object: a device, an iommufd or a type1 container. It takes
 * the exact bytes ioctl(fd, request, arg) takes and returns 0 or -errno, and moves migration
 * data through the device's data fds. What is behind it is a backend:
 *
 *  - an emulated device, iommufd or container in this process (dmalog_handle_from_device(),
 *    _from_iommufd(), _from_type1());
 *  - a real kernel fd (dmalog_handle_from_fd(): plain ioctl(), read() and write());
 *  - anything else that fills in struct dmalog_handle_ops (a vfio-user connection, say).
 *
 * Consumers (the migration engine, a VMM) use the helpers below and never learn which
 * backend they talk to, so code tested against the emulator is the code that drives
 * hardware.
 */
#ifndef DMALOG_HANDLE_H
#define DMALOG_HANDLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <dmalog/api.h>
#include <dmalog/uapi.h>

#ifdef __cplusplus
extern "C" {
#endif

struct dmalog_device;
struct dmalog_iommufd;
struct dmalog_type1;
struct dmalog_handle;

/**
 * struct dmalog_handle_ops - a backend of a handle
 * @ioctl: ioctl(fd, @request, @arg): 0 or -errno. Mandatory.
 * @data_ioctl: ioctl(@data_fd, @request, @arg) on a migration data fd the object handed out
 *	(VFIO_MIG_GET_PRECOPY_INFO). NULL: plain ioctl() on @data_fd.
 * @data_read: read up to @len bytes of a saving data fd: bytes read, 0 at the end of the
 *	stream, -EAGAIN when nothing is ready now, or -errno. NULL: plain read().
 * @data_write: write up to @len bytes to a resuming data fd: bytes written or -errno.
 *	NULL: plain write().
 * @release: called once by dmalog_handle_destroy(). Optional.
 */
struct dmalog_handle_ops {
	int (*ioctl)(void *priv, unsigned long request, void *arg);
	int (*data_ioctl)(void *priv, int data_fd, unsigned long request, void *arg);
	ssize_t (*data_read)(void *priv, int data_fd, void *buf, size_t len);
	ssize_t (*data_write)(void *priv, int data_fd, const void *buf, size_t len);
	void (*release)(void *priv);
};

/**
 * dmalog_handle_create() - a handle over any backend
 * @ops: the backend's operations (kept by pointer: it must outlive the handle)
 * @priv: passed to every op
 * @name: a name for messages (copied; NULL for none)
 * @out: the new handle
 *
 * Return: 0, -EINVAL without @ops->ioctl, or -ENOMEM.
 */
DMALOG_API int dmalog_handle_create(const struct dmalog_handle_ops *ops, void *priv,
				    const char *name, struct dmalog_handle **out);

/**
 * dmalog_handle_destroy() - release the backend and free the handle; NULL is fine
 * @h: the handle
 */
DMALOG_API void dmalog_handle_destroy(struct dmalog_handle *h);

/**
 * dmalog_handle_from_device() - a handle over an emulated device in this process
 * @dev: the device (not owned: destroy it after the handle)
 * @out: the new handle, named after the device
 *
 * Return: 0 or -ENOMEM.
 */
DMALOG_API int dmalog_handle_from_device(struct dmalog_device *dev, struct dmalog_handle **out);

/**
 * dmalog_handle_from_iommufd() - a handle over an emulated iommufd in this process
 * @ifd: the iommufd (not owned)
 * @out: the new handle
 *
 * Return: 0 or -ENOMEM.
 */
DMALOG_API int dmalog_handle_from_iommufd(struct dmalog_iommufd *ifd, struct dmalog_handle **out);

/**
 * dmalog_handle_from_type1() - a handle over an emulated type1 container in this process
 * @c: the container (not owned)
 * @out: the new handle
 *
 * Return: 0 or -ENOMEM.
 */
DMALOG_API int dmalog_handle_from_type1(struct dmalog_type1 *c, struct dmalog_handle **out);

/**
 * dmalog_handle_from_fd() - a handle over a kernel fd (/dev/vfio/devices/..., /dev/iommu,
 *	a container)
 * @fd: the fd (not owned: close it after the handle)
 * @name: a name for messages
 * @out: the new handle
 *
 * Return: 0, -EBADF for a negative fd, or -ENOMEM.
 */
DMALOG_API int dmalog_handle_from_fd(int fd, const char *name, struct dmalog_handle **out);

/** dmalog_handle_name() - the handle's name ("" when it has none) */
DMALOG_API const char *dmalog_handle_name(const struct dmalog_handle *h);

/** dmalog_handle_ioctl() - ioctl(fd, @request, @arg) through the backend: 0 or -errno */
DMALOG_API int dmalog_handle_ioctl(struct dmalog_handle *h, unsigned long request, void *arg);

/* ---- a VFIO device ---- */

/**
 * dmalog_handle_feature() - VFIO_DEVICE_FEATURE with a payload copied in and back out
 * @h: a device handle
 * @flags: GET/SET/PROBE and the feature index
 * @payload: the feature's payload (NULL when @len is 0)
 * @len: payload bytes, at most 64; argsz is the header plus @len
 *
 * Return: 0 or the device's -errno; -EINVAL for a payload over 64 bytes.
 */
DMALOG_API int dmalog_handle_feature(struct dmalog_handle *h, uint32_t flags, void *payload,
				     size_t len);

/** dmalog_handle_migration_flags() - VFIO_DEVICE_FEATURE_MIGRATION: the device's flags */
DMALOG_API int dmalog_handle_migration_flags(struct dmalog_handle *h, uint64_t *flags);

/**
 * dmalog_handle_set_state() - VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE SET
 * @h: a device handle
 * @state: the state to reach (the device walks the combination arcs)
 * @data_fd: receives the new data fd or -1; NULL closes any fd returned
 *
 * Return: 0 or the device's -errno.
 */
DMALOG_API int dmalog_handle_set_state(struct dmalog_handle *h, uint32_t state, int *data_fd);

/** dmalog_handle_get_state() - VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE GET into *@state */
DMALOG_API int dmalog_handle_get_state(struct dmalog_handle *h, uint32_t *state);

/** dmalog_handle_data_size() - VFIO_DEVICE_FEATURE_MIG_DATA_SIZE: stop-copy bytes estimated */
DMALOG_API int dmalog_handle_data_size(struct dmalog_handle *h, uint64_t *stop_copy_bytes);

/**
 * dmalog_handle_precopy_info() - VFIO_MIG_GET_PRECOPY_INFO on a PRE_COPY data fd
 * @h: a device handle
 * @data_fd: the saving data fd the device handed out
 * @initial_bytes: initial data still to read
 * @dirty_bytes: data that changed since it was read
 *
 * Return: 0 or -errno.
 */
DMALOG_API int dmalog_handle_precopy_info(struct dmalog_handle *h, int data_fd,
					  uint64_t *initial_bytes, uint64_t *dirty_bytes);

/**
 * dmalog_handle_data_read() - read a saving data fd through the backend
 * @h: a device handle
 * @data_fd: the data fd
 * @buf: where the bytes go
 * @len: at most this many
 *
 * Return: bytes read, 0 at the end of the stream, -EAGAIN when nothing is ready now
 * (a PRE_COPY fd that is drained for now; -ENOMSG is mapped to it), or -errno.
 */
DMALOG_API ssize_t dmalog_handle_data_read(struct dmalog_handle *h, int data_fd, void *buf,
					   size_t len);

/**
 * dmalog_handle_data_write() - write to a resuming data fd through the backend
 * @h: a device handle
 * @data_fd: the data fd
 * @buf: the bytes
 * @len: at most this many
 *
 * Return: bytes written (possibly fewer than @len), -EAGAIN when the device takes nothing now
 * (a non-blocking fd that is full), or -errno.
 */
DMALOG_API ssize_t dmalog_handle_data_write(struct dmalog_handle *h, int data_fd, const void *buf,
					    size_t len);

/**
 * dmalog_handle_log_start() - VFIO_DEVICE_FEATURE_DMA_LOGGING_START
 * @h: a device handle
 * @ranges: IOVA ranges to track
 * @nranges: how many
 * @page_size: the page-size hint
 * @selected: receives the page size the device chose (NULL: not wanted)
 *
 * Return: 0 or the device's -errno.
 */
DMALOG_API int dmalog_handle_log_start(struct dmalog_handle *h,
				       const struct vfio_device_feature_dma_logging_range *ranges,
				       uint32_t nranges, uint64_t page_size, uint64_t *selected);

/** dmalog_handle_log_stop() - VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP */
DMALOG_API int dmalog_handle_log_stop(struct dmalog_handle *h);

/**
 * dmalog_handle_log_report() - VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT
 * @h: a device handle
 * @iova: first IOVA of the range
 * @length: bytes of the range
 * @page_size: the bitmap's page size
 * @bitmap: bit n is set for page n of the range that was written (never cleared)
 *
 * Return: 0 or the device's -errno.
 */
DMALOG_API int dmalog_handle_log_report(struct dmalog_handle *h, uint64_t iova, uint64_t length,
					uint64_t page_size, void *bitmap);

/** dmalog_handle_reset() - VFIO_DEVICE_RESET */
DMALOG_API int dmalog_handle_reset(struct dmalog_handle *h);

/* ---- an iommufd ---- */

/** dmalog_handle_hwpt_set_dirty() - IOMMU_HWPT_SET_DIRTY_TRACKING on or off */
DMALOG_API int dmalog_handle_hwpt_set_dirty(struct dmalog_handle *h, uint32_t hwpt_id, bool enable);

/**
 * dmalog_handle_hwpt_get_dirty() - IOMMU_HWPT_GET_DIRTY_BITMAP
 * @h: an iommufd handle
 * @hwpt_id: the HWPT
 * @iova: first IOVA
 * @length: bytes
 * @page_size: the bitmap's page size
 * @flags: IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR or 0
 * @bitmap: bits are set, never cleared
 *
 * Return: 0 or -errno.
 */
DMALOG_API int dmalog_handle_hwpt_get_dirty(struct dmalog_handle *h, uint32_t hwpt_id,
					    uint64_t iova, uint64_t length, uint64_t page_size,
					    uint32_t flags, void *bitmap);

/* ---- a type1 container ---- */

/**
 * dmalog_handle_type1_dirty() - VFIO_IOMMU_DIRTY_PAGES START or STOP
 * @h: a container handle
 * @flag: VFIO_IOMMU_DIRTY_PAGES_FLAG_START or _STOP
 *
 * Return: 0 or -errno.
 */
DMALOG_API int dmalog_handle_type1_dirty(struct dmalog_handle *h, uint32_t flag);

/**
 * dmalog_handle_type1_get_bitmap() - VFIO_IOMMU_DIRTY_PAGES GET_BITMAP (copies, then clears)
 * @h: a container handle
 * @iova: a mapping's first IOVA
 * @size: bytes, whole mappings
 * @pgsize: the bitmap's page size
 * @bitmap: the whole bitmap is written (zeros included)
 * @bitmap_bytes: its size, in bytes
 *
 * Return: 0 or -errno.
 */
DMALOG_API int dmalog_handle_type1_get_bitmap(struct dmalog_handle *h, uint64_t iova, uint64_t size,
					      uint64_t pgsize, void *bitmap, uint64_t bitmap_bytes);

#ifdef __cplusplus
}
#endif

#endif
