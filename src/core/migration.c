// SPDX-License-Identifier: MIT
/*
 * Migration v2 features: MIGRATION, MIG_DEVICE_STATE (walking combination arcs one hop at a
 * time through the driver's step op), MIG_DATA_SIZE, and VFIO_MIG_GET_PRECOPY_INFO on the
 * saving data fd.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <dmalog/migfsm.h>

#include "device_priv.h"

static bool is_saving_state(uint32_t state)
{
	return state == VFIO_DEVICE_STATE_PRE_COPY || state == VFIO_DEVICE_STATE_PRE_COPY_P2P ||
	       state == VFIO_DEVICE_STATE_STOP_COPY;
}

int dmalog_mig_feature_migration(struct dmalog_device *dev, uint32_t flags, void *data,
				 size_t argsz)
{
	struct vfio_device_feature_migration mig = {.flags = dev->migration_flags};
	int ret;

	if (!dev->mig_ops)
		return -ENOTTY;
	ret = dmalog_check_feature(flags, argsz, VFIO_DEVICE_FEATURE_GET, sizeof(mig));
	if (ret != 1)
		return ret;
	memcpy(data, &mig, sizeof(mig));
	return 0;
}

/* Record that the device reached @state; a saving fd lives through PRE_COPY* and STOP_COPY. */
static void enter_state(struct dmalog_device *dev, uint32_t state, int new_fd)
{
	dev->mig_state = state;
	if (!is_saving_state(state))
		dev->saving_fd = -1;
	if (state != VFIO_DEVICE_STATE_RESUMING)
		dev->resuming_fd = -1;
	if (new_fd < 0)
		return;
	if (is_saving_state(state))
		dev->saving_fd = new_fd;
	else if (state == VFIO_DEVICE_STATE_RESUMING)
		dev->resuming_fd = new_fd;
}

/* Walk from the current state to @target; a failed arc leaves the last state reached. */
static int set_state_locked(struct dmalog_device *dev, uint32_t target, int *out_fd)
{
	*out_fd = -1;
	/*
	 * ERROR can never be requested. The kernel's drivers only notice on the first hop, so
	 * SET(ERROR) while in ERROR "succeeds" there; we refuse it, as the uAPI text says.
	 */
	if (!dmalog_mig_state_supported(dev->migration_flags, target))
		return -EINVAL;
	while (dev->mig_state != target) {
		uint32_t next;
		bool to_error = false;
		int fd = -1;
		int ret;

		ret = dmalog_mig_next_state(dev->migration_flags, dev->mig_state, target, &next);
		if (ret)
			return ret;
		ret = dev->mig_ops->step(dev->priv, dev->mig_state, next, &fd, &to_error);
		if (ret) {
			if (fd >= 0)
				close(fd);
			if (to_error)
				enter_state(dev, VFIO_DEVICE_STATE_ERROR, -1);
			return ret;
		}
		if (fd >= 0 && next != target) {
			/* Only the last arc may open a data session (the kernel WARNs here). */
			close(fd);
			enter_state(dev, next, -1);
			return -EINVAL;
		}
		enter_state(dev, next, fd);
		if (fd >= 0)
			*out_fd = fd;
	}
	return 0;
}

int dmalog_mig_feature_state(struct dmalog_device *dev, uint32_t flags, void *data, size_t argsz)
{
	struct vfio_device_feature_mig_state mig;
	int ret, fd = -1;

	if (!dev->mig_ops)
		return -ENOTTY;
	ret = dmalog_check_feature(flags, argsz, VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_SET,
				   sizeof(mig));
	if (ret != 1)
		return ret;
	memcpy(&mig, data, sizeof(mig));

	pthread_mutex_lock(&dev->mig_lock);
	if (flags & VFIO_DEVICE_FEATURE_GET) {
		mig.device_state = dev->mig_state;
		ret = 0;
	} else {
		ret = set_state_locked(dev, mig.device_state, &fd);
	}
	pthread_mutex_unlock(&dev->mig_lock);
	/* As the kernel does: data_fd is written back on success and on failure. */
	mig.data_fd = fd;
	memcpy(data, &mig, sizeof(mig));
	return ret;
}

int dmalog_mig_feature_data_size(struct dmalog_device *dev, uint32_t flags, void *data,
				 size_t argsz)
{
	struct vfio_device_feature_mig_data_size size = {0};
	uint64_t length = 0;
	int ret;

	if (!dev->mig_ops)
		return -ENOTTY;
	ret = dmalog_check_feature(flags, argsz, VFIO_DEVICE_FEATURE_GET, sizeof(size));
	if (ret != 1)
		return ret;
	pthread_mutex_lock(&dev->mig_lock);
	ret = dev->mig_ops->get_data_size(dev->priv, &length);
	pthread_mutex_unlock(&dev->mig_lock);
	if (ret)
		return ret;
	size.stop_copy_length = length;
	memcpy(data, &size, sizeof(size));
	return 0;
}

int dmalog_mig_precopy_ioctl(struct dmalog_device *dev, int data_fd, unsigned long request,
			     void *arg)
{
	const size_t minsz = offsetof(struct vfio_precopy_info, dirty_bytes) + sizeof(__u64);
	struct vfio_precopy_info info;
	uint64_t initial, dirty;
	int ret;

	pthread_mutex_lock(&dev->mig_lock);
	/* The ioctl lands on the data fd: resuming files have no ioctls, other fds are not ours. */
	if (data_fd >= 0 && data_fd == dev->resuming_fd) {
		ret = -ENOTTY;
		goto out;
	}
	if (data_fd < 0 || data_fd != dev->saving_fd) {
		ret = -EBADF;
		goto out;
	}
	if (request != VFIO_MIG_GET_PRECOPY_INFO) {
		ret = -ENOTTY;
		goto out;
	}
	if (!arg) {
		ret = -EFAULT;
		goto out;
	}
	memcpy(&info, arg, minsz);
	if (info.argsz < minsz) {
		ret = -EINVAL;
		goto out;
	}
	if (dev->mig_state != VFIO_DEVICE_STATE_PRE_COPY &&
	    dev->mig_state != VFIO_DEVICE_STATE_PRE_COPY_P2P) {
		ret = -EINVAL;
		goto out;
	}
	ret = dev->mig_ops->precopy_info(dev->priv, &initial, &dirty);
	if (!ret) {
		/* flags is left as the caller passed it, as in the v1 precopy info. */
		info.initial_bytes = initial;
		info.dirty_bytes = dirty;
		memcpy(arg, &info, minsz);
	}
out:
	pthread_mutex_unlock(&dev->mig_lock);
	return ret;
}

void dmalog_mig_reset_locked(struct dmalog_device *dev)
{
	if (!dev->mig_ops)
		return;
	if (dev->mig_ops->reset)
		dev->mig_ops->reset(dev->priv);
	enter_state(dev, VFIO_DEVICE_STATE_RUNNING, -1);
}
