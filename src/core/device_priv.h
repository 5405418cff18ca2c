/* SPDX-License-Identifier: MIT */
/* The emulated vfio_device: what the frame, logging and migration handlers share. */
#ifndef DMALOG_DEVICE_PRIV_H
#define DMALOG_DEVICE_PRIV_H

#include <pthread.h>
#include <stddef.h>

#include <dmalog/device.h>

struct dmalog_device {
	char name[64];
	const struct dmalog_log_ops *log_ops;
	const struct dmalog_mig_ops *mig_ops;
	uint64_t migration_flags;
	void *priv;
	uint64_t report_window_bits;
	bool report_shared; /* REPORT bitmaps may be filled by others at once: atomic ORs */

	/* Serialises START/STOP/REPORT, as the drivers' state mutex does. */
	pthread_mutex_t log_lock;
	bool log_active;

	/* Serialises the FSM and the data-fd ioctls. Taken before log_lock when both are. */
	pthread_mutex_t mig_lock;
	uint32_t mig_state;
	int saving_fd;	 /* data fd of the open saving session (PRE_COPY*, STOP_COPY), or -1 */
	int resuming_fd; /* data fd of the open RESUMING session, or -1 */

	/*
	 * Calls in flight, as the kernel's file reference: close waits for them to leave
	 * (after waking a blocked REPORT), and a call that comes after close is -ENODEV.
	 */
	pthread_mutex_t users_lock;
	pthread_cond_t users_gone;
	unsigned int users;
	bool closing;
};

/*
 * vfio_check_feature(): 1 to go on, 0 for a successful PROBE, -EINVAL for an op the feature
 * does not support, neither GET nor SET, or a payload shorter than @minsz.
 */
int dmalog_check_feature(uint32_t flags, size_t argsz, uint32_t supported_ops, size_t minsz);

/* VFIO_DEVICE_FEATURE: header checks and dispatch. */
int dmalog_device_feature(struct dmalog_device *dev, struct vfio_device_feature *arg);

/* Feature handlers: @data is the payload, @argsz its length (header argsz - 8). */
int dmalog_logging_start(struct dmalog_device *dev, uint32_t flags, void *data, size_t argsz);
int dmalog_logging_stop(struct dmalog_device *dev, uint32_t flags, void *data, size_t argsz);
int dmalog_logging_report(struct dmalog_device *dev, uint32_t flags, void *data, size_t argsz);
int dmalog_mig_feature_migration(struct dmalog_device *dev, uint32_t flags, void *data,
				 size_t argsz);
int dmalog_mig_feature_state(struct dmalog_device *dev, uint32_t flags, void *data, size_t argsz);
int dmalog_mig_feature_data_size(struct dmalog_device *dev, uint32_t flags, void *data,
				 size_t argsz);

/* VFIO_MIG_GET_PRECOPY_INFO on a data fd. */
int dmalog_mig_precopy_ioctl(struct dmalog_device *dev, int data_fd, unsigned long request,
			     void *arg);

/* Stop DMA logging if active; caller holds log_lock. */
void dmalog_logging_stop_locked(struct dmalog_device *dev);

/* VFIO_DEVICE_RESET's migration part: forget data sessions, back to RUNNING. */
void dmalog_mig_reset_locked(struct dmalog_device *dev);

#endif
