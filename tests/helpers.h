/* SPDX-License-Identifier: MIT */
/* Test helpers: VFIO_DEVICE_FEATURE calls by bytes, a spy tracker, a fake migration driver. */
#ifndef DMALOG_TEST_HELPERS_H
#define DMALOG_TEST_HELPERS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <stdint.h>
#include <cmocka.h>

#include <dmalog/dmalog.h>

#define SZ_4K (1ULL << 12)
#define SZ_2M (1ULL << 21)
#define SZ_1G (1ULL << 30)

#define FEAT_GET   VFIO_DEVICE_FEATURE_GET
#define FEAT_SET   VFIO_DEVICE_FEATURE_SET
#define FEAT_PROBE VFIO_DEVICE_FEATURE_PROBE

/*
 * ioctl(VFIO_DEVICE_FEATURE) with header flags @flags, argsz = 8 + @argsz_payload and the
 * payload copied in from (and back out to) @payload (@payload_len bytes, may exceed argsz).
 */
int feature_call(struct dmalog_device *dev, uint32_t flags, void *payload, size_t payload_len,
		 size_t argsz_payload);

/* The common case: argsz covers exactly the payload. */
int feature(struct dmalog_device *dev, uint32_t flags, void *payload, size_t len);

/* DMA logging START of @n ranges with a page-size hint; *selected gets the written-back size. */
int log_start(struct dmalog_device *dev, const struct vfio_device_feature_dma_logging_range *r,
	      uint32_t n, uint64_t page_size, uint64_t *selected);
int log_stop(struct dmalog_device *dev);
int log_report(struct dmalog_device *dev, uint64_t iova, uint64_t length, uint64_t page_size,
	       void *bitmap);

/*
 * A tracker that records what the core hands it. Each read_and_clear marks the first page of
 * its window, so tests can see which windows ran.
 */
struct spy_tracker {
	int starts, stops, reports;
	struct dmalog_range ranges[300];
	uint32_t nranges;
	uint64_t select_page_size; /* 0: keep the hint */
	int start_error;	   /* returned by log_start when non-zero */
	int report_fail_at;	   /* 1-based read_and_clear call that fails ... */
	int report_error;	   /* ... with this errno */
	uint64_t windows[64][2];   /* (iova, length) of each read_and_clear */
	int plain_writers; /* read_and_clear calls handed a bitmap in plain (non-atomic) mode */
};
extern const struct dmalog_log_ops spy_log_ops;

/* A migration driver that records arcs and can fail any of them. */
struct fake_mig {
	uint32_t arcs[16][2];
	int narcs;
	int fail_arc;	    /* 1-based arc number to fail; 0 never */
	bool fail_to_error; /* the failed arc leaves the device in ERROR */
	bool fd_every_arc;  /* misbehave: a data fd on every arc */
	uint64_t data_size;
	uint64_t initial_bytes, dirty_bytes;
	int resets;
	int resume_read_fd; /* our end of the RESUMING pipe */
};
extern const struct dmalog_mig_ops fake_mig_ops;
/* The saving stream the fake writes: this, then EOF. */
#define FAKE_STATE "fake-device-state-v1"

/* A device on the software tracker; *t receives the tracker. */
struct dmalog_device *swtrack_device(struct dmalog_swtrack **t);

/* Reference: is bitmap bit n set? (little-endian bytes) */
static inline int test_bit(const void *bitmap, uint64_t n)
{
	return (((const uint8_t *)bitmap)[n / 8] >> (n % 8)) & 1;
}

#endif
