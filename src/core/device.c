// SPDX-License-Identifier: MIT
/* Emulated device lifecycle and the ioctl-shaped entry points. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include <dmalog/migfsm.h>

#include "device_priv.h"
#include "reserved.h"

/* As vfio_pci_core_register_device(): ops tables must be complete. */
static int check_desc(const struct dmalog_device_desc *desc)
{
	const struct dmalog_log_ops *log = desc->log_ops;
	const struct dmalog_mig_ops *mig = desc->mig_ops;
	uint64_t flags = desc->migration_flags;

	if (!RESERVED_ZERO(desc))
		return -EINVAL;
	if (log && (!log->log_start || !log->log_stop || !log->log_read_and_clear))
		return -EINVAL;
	if (!mig)
		return flags ? -EINVAL : 0;
	if (!mig->step || !mig->get_data_size)
		return -EINVAL;
	if (!(flags & VFIO_MIGRATION_STOP_COPY) || (flags & ~DMALOG_MIGRATION_FLAGS_ALL))
		return -EINVAL;
	if ((flags & VFIO_MIGRATION_PRE_COPY) && !mig->precopy_info)
		return -EINVAL;
	return 0;
}

int dmalog_device_create(const struct dmalog_device_desc *desc, struct dmalog_device **out)
{
	struct dmalog_device *dev;
	int ret;

	if (!desc || !out)
		return -EINVAL;
	ret = check_desc(desc);
	if (ret)
		return ret;
	dev = calloc(1, sizeof(*dev));
	if (!dev)
		return -ENOMEM;
	snprintf(dev->name, sizeof(dev->name), "%s", desc->name ? desc->name : "dmalog-device");
	dev->log_ops = desc->log_ops;
	dev->mig_ops = desc->mig_ops;
	dev->migration_flags = desc->migration_flags;
	dev->priv = desc->priv;
	dev->report_window_bits = DMALOG_IOVA_BITMAP_WINDOW_BITS;
	pthread_mutex_init(&dev->log_lock, NULL);
	pthread_mutex_init(&dev->mig_lock, NULL);
	pthread_mutex_init(&dev->users_lock, NULL);
	pthread_cond_init(&dev->users_gone, NULL);
	dev->mig_state = desc->mig_ops ? VFIO_DEVICE_STATE_RUNNING : VFIO_DEVICE_STATE_ERROR;
	dev->saving_fd = -1;
	dev->resuming_fd = -1;
	*out = dev;
	return 0;
}

/* A reporter may hold log_lock while it waits on the device: wake it before taking the lock. */
static void abort_blocked_report(struct dmalog_device *dev)
{
	if (dev->log_ops && dev->log_ops->log_abort)
		dev->log_ops->log_abort(dev->priv);
}

/* A call begins: -ENODEV once the device is being closed. */
static int enter(struct dmalog_device *dev)
{
	int ret = 0;

	pthread_mutex_lock(&dev->users_lock);
	if (dev->closing)
		ret = -ENODEV;
	else
		dev->users++;
	pthread_mutex_unlock(&dev->users_lock);
	return ret;
}

static int leave(struct dmalog_device *dev, int ret)
{
	pthread_mutex_lock(&dev->users_lock);
	if (!--dev->users)
		pthread_cond_broadcast(&dev->users_gone);
	pthread_mutex_unlock(&dev->users_lock);
	return ret;
}

void dmalog_device_destroy(struct dmalog_device *dev)
{
	if (!dev)
		return;
	pthread_mutex_lock(&dev->users_lock);
	dev->closing = true;
	pthread_mutex_unlock(&dev->users_lock);
	/*
	 * Closing tears tracking down, as the drivers' close paths do: a REPORT blocked on the
	 * device is woken (-EIO), and close waits for every call in flight to leave.
	 */
	abort_blocked_report(dev);
	pthread_mutex_lock(&dev->users_lock);
	while (dev->users)
		pthread_cond_wait(&dev->users_gone, &dev->users_lock);
	pthread_mutex_unlock(&dev->users_lock);
	pthread_mutex_lock(&dev->log_lock);
	if (dev->log_ops)
		dmalog_logging_stop_locked(dev);
	pthread_mutex_unlock(&dev->log_lock);
	pthread_mutex_destroy(&dev->log_lock);
	pthread_mutex_destroy(&dev->mig_lock);
	pthread_mutex_destroy(&dev->users_lock);
	pthread_cond_destroy(&dev->users_gone);
	free(dev);
}

/*
 * VFIO_DEVICE_RESET: the device is back in RUNNING with no data session, and DMA logging is
 * stopped (a reset device has forgotten its tracker configuration).
 */
static int device_reset(struct dmalog_device *dev)
{
	abort_blocked_report(dev);
	pthread_mutex_lock(&dev->mig_lock);
	pthread_mutex_lock(&dev->log_lock);
	if (dev->log_ops)
		dmalog_logging_stop_locked(dev);
	dmalog_mig_reset_locked(dev);
	pthread_mutex_unlock(&dev->log_lock);
	pthread_mutex_unlock(&dev->mig_lock);
	return 0;
}

int dmalog_device_ioctl(struct dmalog_device *dev, unsigned long request, void *arg)
{
	int ret = enter(dev);

	if (ret)
		return ret;
	switch (request) {
	case VFIO_DEVICE_FEATURE:
		return leave(dev, dmalog_device_feature(dev, arg));
	case VFIO_DEVICE_RESET:
		return leave(dev, device_reset(dev));
	default:
		return leave(dev, -ENOTTY);
	}
}

int dmalog_device_data_ioctl(struct dmalog_device *dev, int data_fd, unsigned long request,
			     void *arg)
{
	int ret = enter(dev);

	if (ret)
		return ret;
	if (!dev->mig_ops)
		return leave(dev, -EBADF);
	return leave(dev, dmalog_mig_precopy_ioctl(dev, data_fd, request, arg));
}

void dmalog_device_set_report_window(struct dmalog_device *dev, uint64_t window_bits)
{
	pthread_mutex_lock(&dev->log_lock);
	dev->report_window_bits = window_bits ? window_bits : DMALOG_IOVA_BITMAP_WINDOW_BITS;
	pthread_mutex_unlock(&dev->log_lock);
}

void dmalog_device_set_report_shared(struct dmalog_device *dev, bool shared)
{
	pthread_mutex_lock(&dev->log_lock);
	dev->report_shared = shared;
	pthread_mutex_unlock(&dev->log_lock);
}

const char *dmalog_device_name(const struct dmalog_device *dev)
{
	return dev->name;
}
