/* SPDX-License-Identifier: MIT */
/*
 * DMA engines: threads that write guest memory the way a device does, through its page
 * tracker (data first, then the log entry), through the IOMMU (the translation marks the page
 * dirty before the data lands), or both, at a configurable rate and pattern. Each write stores
 * tagged 8-byte words, (tag << 48) | sequence, so a copy can be checked word for word.
 *
 * Pausing waits until no write is in flight: a device's STOP arc uses it so that no write
 * lands after the arc returns. Peer-to-peer writes (to a peer's buffer, outside guest memory
 * and never logged) can be paused on their own, as RUNNING_P2P requires.
 */
#ifndef DMALOG_DMA_H
#define DMALOG_DMA_H

#include <stdbool.h>
#include <stdint.h>
#include <dmalog/api.h>
#include <dmalog/iopt.h>

#ifdef __cplusplus
extern "C" {
#endif

enum dmalog_workload {
	DMALOG_WORKLOAD_SEQUENTIAL, /* a ring over the region, like a NIC's receive buffers */
	DMALOG_WORKLOAD_RANDOM,	    /* uniform over the region */
	DMALOG_WORKLOAD_HOTCOLD,    /* a hot set takes `skew` of the writes */
	DMALOG_WORKLOAD_BURSTY,	    /* bursts of random writes with pauses between */
};

/* Records a device write of [iova, iova + length) in a tracker (swtrack, devtrack, ...). */
typedef void (*dmalog_log_write_fn)(void *tracker, uint64_t iova, uint64_t length);

struct dmalog_dma_config {
	uint8_t *mem; /* guest memory, as the host sees it */
	uint64_t mem_bytes;
	uint64_t iova_base;  /* the IOVA of mem[0]; writes go to [iova_base, + mem_bytes) */
	uint64_t region_off; /* the part of guest memory this engine writes ... */
	uint64_t region_len; /* ... (0: all of it) */

	dmalog_log_write_fn log_write; /* device tracker, or NULL */
	void *tracker;
	struct dmalog_iopt *iopt; /* translate through it (pa = host address), or NULL */

	enum dmalog_workload workload;
	double skew;	      /* HOTCOLD: share of writes to the hot set (default 0.9) */
	uint64_t hot_bytes;   /* HOTCOLD: size of the hot set (default 1/16 of the region) */
	uint32_t write_bytes; /* bytes per write, a multiple of 8 (default 64) */
	uint64_t rate;	      /* writes per second, 0 for as fast as it goes */
	double read_share;    /* share of accesses that are reads (never logged) */
	double p2p_share;     /* share of writes that go to the peer buffer */
	uint8_t *peer;	      /* peer buffer for P2P writes */
	uint64_t peer_bytes;
	uint16_t tag; /* high bits of every word written */
	uint64_t seed;
	uint64_t reserved[4]; /* zero: room for fields to come */
};

struct dmalog_dma_stats {
	uint64_t writes, reads, p2p_writes, bytes, faults;
};

struct dmalog_dma_engine;

/** dmalog_dma_engine_create() - -EINVAL for an inconsistent config (region outside memory, write
 * size, shares). */
DMALOG_API int dmalog_dma_engine_create(const struct dmalog_dma_config *cfg,
					struct dmalog_dma_engine **out);
/** dmalog_dma_engine_destroy() - Stops the thread if running, then frees. */
DMALOG_API void dmalog_dma_engine_destroy(struct dmalog_dma_engine *e);

/** dmalog_dma_engine_start() - start the engine's thread: 0 or -errno */
DMALOG_API int dmalog_dma_engine_start(struct dmalog_dma_engine *e);
/** dmalog_dma_engine_stop() - stop the thread; writes in flight complete first */
DMALOG_API void dmalog_dma_engine_stop(struct dmalog_dma_engine *e);

/** dmalog_dma_engine_pause() - Stop issuing writes and return once none is in flight; resume lets
 * it go on. */
DMALOG_API void dmalog_dma_engine_pause(struct dmalog_dma_engine *e);
/** dmalog_dma_engine_resume() - let a paused engine write again */
DMALOG_API void dmalog_dma_engine_resume(struct dmalog_dma_engine *e);
/** dmalog_dma_engine_pause_p2p() - The same for peer-to-peer writes only. */
DMALOG_API void dmalog_dma_engine_pause_p2p(struct dmalog_dma_engine *e);
/** dmalog_dma_engine_resume_p2p() - let a P2P-paused engine write to its peer again */
DMALOG_API void dmalog_dma_engine_resume_p2p(struct dmalog_dma_engine *e);

/**
 * dmalog_dma_engine_set_throttle() - write only (100 - @percent)% of the time
 * @e: the engine (a CPU writer, say, throttled by auto-converge)
 * @percent: 0 (unthrottled) to 99
 */
DMALOG_API void dmalog_dma_engine_set_throttle(struct dmalog_dma_engine *e, unsigned int percent);

/** dmalog_dma_engine_get_stats() - what the engine has done so far */
DMALOG_API void dmalog_dma_engine_get_stats(struct dmalog_dma_engine *e,
					    struct dmalog_dma_stats *st);

#ifdef __cplusplus
}
#endif

#endif
