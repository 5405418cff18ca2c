/* SPDX-License-Identifier: MIT */
/*
 * A migratable emulated device: a DMA engine, a dirty tracker and migration v2 ops over real
 * internal state (registers, queue positions and on-device memory that the device keeps
 * changing while it runs), driven through the dmalog_device it returns.
 *
 * - STOP (and STOP_COPY, RESUMING) really stop it: the arc pauses the DMA engine and the
 *   device's own activity, so no write lands and nothing changes after the arc returns.
 *   RUNNING_P2P stops peer-to-peer DMA only.
 * - STOP_COPY streams the state through the data fd (a pipe) in a versioned, checksummed
 *   format, then EOF. PRE_COPY streams the initial data at once, then the memory chunks that
 *   change, and reports initial and dirty bytes; PRE_COPY -> STOP_COPY continues the same fd.
 *   While PRE_COPY data is drained the fd has nothing to read (O_NONBLOCK readers see EAGAIN,
 *   the pipe's equivalent of the kernel's -ENOMSG).
 * - RESUMING takes a stream on its data fd; RESUMING -> STOP validates it and refuses an
 *   incomplete, corrupt or incompatible one with -EINVAL, leaving the device in ERROR.
 * - Any subset of the migration flags (with STOP_COPY) may be given, so consumers see the
 *   combination arcs a real device would show.
 */
#ifndef DMALOG_EMUDEV_H
#define DMALOG_EMUDEV_H

#include <stdint.h>
#include <dmalog/api.h>
#include <dmalog/devtrack.h>
#include <dmalog/device.h>
#include <dmalog/dma.h>

#ifdef __cplusplus
extern "C" {
#endif

enum dmalog_emudev_tracker {
	DMALOG_EMUDEV_TRACK_NONE,     /* no DMA logging: PROBE says -ENOTTY */
	DMALOG_EMUDEV_TRACK_SOFTWARE, /* swtrack */
	DMALOG_EMUDEV_TRACK_DEVICE,   /* devtrack, with devtrack_caps */
};

struct dmalog_emudev_config {
	const char *name;
	uint64_t migration_flags; /* STOP_COPY, plus any of P2P and PRE_COPY */
	uint64_t dev_mem_bytes;	  /* on-device memory, a multiple of 4 KiB (default 1 MiB) */
	uint32_t state_rate;	  /* internal updates per second while running (default 5000) */
	enum dmalog_emudev_tracker tracker;
	struct dmalog_devtrack_caps devtrack_caps; /* zero: DMALOG_DEVTRACK_CAPS_DEFAULT */
	/* With dma.mem set the device has a DMA engine; its writes are logged to the tracker. */
	struct dmalog_dma_config dma;
	uint64_t seed;
	uint64_t reserved[4]; /* zero: room for fields to come */
};

struct dmalog_emudev;

/** dmalog_emudev_create() - a migratable emulated device as @cfg says: 0, -EINVAL or -ENOMEM */
DMALOG_API int dmalog_emudev_create(const struct dmalog_emudev_config *cfg,
				    struct dmalog_emudev **out);
/** dmalog_emudev_destroy() - stop its threads and free it; NULL is fine */
DMALOG_API void dmalog_emudev_destroy(struct dmalog_emudev *d);

/** dmalog_emudev_device() - The VFIO device to drive with dmalog_device_ioctl(). */
DMALOG_API struct dmalog_device *dmalog_emudev_device(struct dmalog_emudev *d);
/** dmalog_emudev_dma() - Its DMA engine (NULL without one), for statistics. */
DMALOG_API struct dmalog_dma_engine *dmalog_emudev_dma(struct dmalog_emudev *d);

/** dmalog_emudev_devtrack() - Its device tracker (NULL unless tracker is
 * DMALOG_EMUDEV_TRACK_DEVICE), to inject faults. */
DMALOG_API struct dmalog_devtrack *dmalog_emudev_devtrack(struct dmalog_emudev *d);

/**
 * dmalog_emudev_log_write() - record a write of [@iova, @iova + @len) the device made with a DMA
 *	engine of the caller's (one that writes memory it could not be given at creation, a
 *	vfio-user client's, say) in the device's own tracker; nothing without one
 */
DMALOG_API void dmalog_emudev_log_write(struct dmalog_emudev *d, uint64_t iova, uint64_t len);

/** dmalog_emudev_state_hash() - A digest of registers, queue positions and device memory: equal
 * after a good migration. */
DMALOG_API uint64_t dmalog_emudev_state_hash(struct dmalog_emudev *d);

/** dmalog_emudev_resume_error() - Why the last RESUMING -> STOP refused its stream; "" when it did
 * not. */
DMALOG_API const char *dmalog_emudev_resume_error(struct dmalog_emudev *d);

#ifdef __cplusplus
}
#endif

#endif
