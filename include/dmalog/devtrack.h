/* SPDX-License-Identifier: MIT */
/*
 * An emulated device page tracker modelled on the mlx5 one. The device keeps its own dirty
 * log for the ranges it was programmed with; a report moves the tracker to REPORTING for a
 * range, and the device's firmware (a thread) sends messages of 8-byte dirty addresses
 * (big-endian high and low words, at most max_msg_size bytes each) into a queue of posted
 * receive buffers, clearing what it sends, until a message whose status leaves REPORTING.
 *
 * START combines ranges down to the device's maximum (smallest gap first), clamps the page
 * size into the device's range and writes back the one selected, fails with -EOPNOTSUPP when
 * the covering address space (ilog2 of the total length rounded up to a power of two) is
 * outside the device's limits, and with -EINVAL on a second START. Errors are sticky: an error
 * event (queue overflow, a bad message, an injected fault) puts the tracker in ERROR and every
 * report returns -EIO until STOP and START. STOP, close and reset wake a reporter blocked on
 * the device with -EIO (log_abort) and stop tracking.
 */
#ifndef DMALOG_DEVTRACK_H
#define DMALOG_DEVTRACK_H

#include <stdint.h>
#include <dmalog/api.h>
#include <dmalog/device.h>

#ifdef __cplusplus
extern "C" {
#endif

struct dmalog_devtrack_caps {
	uint32_t max_ranges;	    /* pg_track_max_num_range; 0: cannot track */
	uint8_t log_min_addr_space; /* log2 bounds of the covered address space */
	uint8_t log_max_addr_space;
	uint8_t log_min_page_size; /* log2 bounds of the tracking page size */
	uint8_t log_max_page_size;
	uint32_t max_msg_size; /* bytes per report message, a multiple of 8 */
	uint32_t queue_depth;  /* receive buffers the host keeps posted */
	uint64_t reserved[2];  /* zero: room for fields to come */
};

/* Like a ConnectX-7 VF on 4 KiB pages: 4 ranges, 4K..1G pages, up to 4 TiB tracked. */
#define DMALOG_DEVTRACK_CAPS_DEFAULT                                                               \
	((struct dmalog_devtrack_caps){.max_ranges = 4,                                            \
				       .log_min_addr_space = 12,                                   \
				       .log_max_addr_space = 42,                                   \
				       .log_min_page_size = 12,                                    \
				       .log_max_page_size = 30,                                    \
				       .max_msg_size = 4096,                                       \
				       .queue_depth = 512})

/* Tracker states, as the device's status nibble says them. */
enum dmalog_devtrack_state {
	DMALOG_DEVTRACK_TRACKING = 0,
	DMALOG_DEVTRACK_REPORTING = 1,
	DMALOG_DEVTRACK_ERROR = 2,
};

/* Fault injection, so consumers can test their error paths. */
enum dmalog_devtrack_fault {
	DMALOG_DEVTRACK_FAULT_ERROR_EVENT, /* an async QP/CQ error: ERROR now, wakes a reporter */
	DMALOG_DEVTRACK_FAULT_BAD_OPCODE,  /* the next message has an unexpected opcode */
	DMALOG_DEVTRACK_FAULT_ZERO_LENGTH, /* the next report sends an empty REPORTING message */
	DMALOG_DEVTRACK_FAULT_OVERFLOW,	   /* the next report overruns the queue, no backpressure */
	DMALOG_DEVTRACK_FAULT_FW_ERROR,	   /* the next report ends with status ERROR */
	DMALOG_DEVTRACK_FAULT_STALL,	   /* firmware stops sending until RESUME, STOP or close */
	DMALOG_DEVTRACK_FAULT_RESUME,
};

struct dmalog_devtrack_stats {
	uint32_t state;		 /* enum dmalog_devtrack_state */
	uint32_t nranges;	 /* ranges programmed (after combining) */
	uint64_t page_size;	 /* tracking page size, 0 when not tracking */
	uint32_t log_addr_space; /* programmed log_addr_space_size */
	uint64_t reports;	 /* REPORTING commands */
	uint64_t messages;	 /* messages received by the host */
	uint64_t entries;	 /* dirty addresses received */
};

struct dmalog_devtrack;

/** dmalog_devtrack_create() - -EINVAL for inconsistent caps (message size not a multiple of 8, zero
 * queue depth, ...). */
DMALOG_API int dmalog_devtrack_create(const struct dmalog_devtrack_caps *caps,
				      struct dmalog_devtrack **out);
/** dmalog_devtrack_destroy() - stop the firmware thread and free the tracker; NULL is fine */
DMALOG_API void dmalog_devtrack_destroy(struct dmalog_devtrack *t);

/** dmalog_devtrack_log_ops() - The ops table to put in a dmalog_device_desc, with the tracker as
 * priv. */
DMALOG_API const struct dmalog_log_ops *dmalog_devtrack_log_ops(void);

/** dmalog_devtrack_log_write() - The device wrote [iova, iova + length); called after the data has
 * landed. */
DMALOG_API void dmalog_devtrack_log_write(struct dmalog_devtrack *t, uint64_t iova,
					  uint64_t length);

/** dmalog_devtrack_inject() - make the tracker fail on purpose (see enum dmalog_devtrack_fault): 0
 * or -EINVAL */
DMALOG_API int dmalog_devtrack_inject(struct dmalog_devtrack *t, enum dmalog_devtrack_fault f);

/** dmalog_devtrack_get_stats() - counters of what the tracker and its firmware did */
DMALOG_API void dmalog_devtrack_get_stats(struct dmalog_devtrack *t,
					  struct dmalog_devtrack_stats *st);

/** dmalog_devtrack_ranges() - Up to @max of the ranges the device was programmed with; returns how
 * many there are. */
DMALOG_API uint32_t dmalog_devtrack_ranges(struct dmalog_devtrack *t, struct dmalog_range *out,
					   uint32_t max);

/**
 * dmalog_devtrack_commands() - the (iova, length) of the last REPORTING commands, oldest first
 * @t: the tracker
 * @out: where they go
 * @max: at most this many (the tracker keeps the last 16)
 *
 * Return: how many were written.
 */
DMALOG_API uint32_t dmalog_devtrack_commands(struct dmalog_devtrack *t, struct dmalog_range *out,
					     uint32_t max);

#ifdef __cplusplus
}
#endif

#endif
