/* SPDX-License-Identifier: MIT */
/*
 * The software tracker: a plain per-range dirty log in host memory, the simplest
 * dmalog_log_ops (what a driver without hardware tracking would do). DMA engines call
 * dmalog_swtrack_log_write() after their data has landed; any number of writers may log
 * while one reporter reads and clears.
 *
 * Semantics pinned down here:
 * - the page size is the START hint (at least 4 KiB); if the log for the given ranges would
 *   exceed the tracker's log limit (DMALOG_SWTRACK_MAX_LOG_BYTES unless set) it picks the
 *   next larger page size that fits (the uAPI's "driver choice") and writes it back;
 * - writes outside the started ranges are not logged;
 * - a report sets every report page that a dirty tracked page touches, and clears only the
 *   tracked pages lying wholly inside the reported range (the whole REPORT, not the window the
 *   core hands over): a page cut by the range edge stays dirty for the next report rather
 *   than being lost;
 * - marking takes a read lock and one atomic OR per word; reporting flips the log's two halves
 *   under the write lock and then reads and clears the retired half with plain loads and
 *   stores, skipping clean stretches through a summary bit per 64 words.
 */
#ifndef DMALOG_SWTRACK_H
#define DMALOG_SWTRACK_H

#include <stdint.h>
#include <dmalog/api.h>
#include <dmalog/device.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DMALOG_SWTRACK_MAX_LOG_BYTES (256ULL << 20)

struct dmalog_swtrack;

/** dmalog_swtrack_create() - a software tracker: 0 or -ENOMEM */
DMALOG_API int dmalog_swtrack_create(struct dmalog_swtrack **out);
/** dmalog_swtrack_destroy() - free the tracker; NULL is fine */
DMALOG_API void dmalog_swtrack_destroy(struct dmalog_swtrack *t);

/** dmalog_swtrack_set_log_limit() - Bound the memory a START may take for its log (bytes, > 0);
 * applies to the next START. */
DMALOG_API void dmalog_swtrack_set_log_limit(struct dmalog_swtrack *t, uint64_t bytes);

/** dmalog_swtrack_log_ops() - The ops table to put in a dmalog_device_desc, with the tracker as
 * priv. */
DMALOG_API const struct dmalog_log_ops *dmalog_swtrack_log_ops(void);

/** dmalog_swtrack_log_write() - Record a completed DMA write of [iova, iova + length). No-op when
 * not tracking. */
DMALOG_API void dmalog_swtrack_log_write(struct dmalog_swtrack *t, uint64_t iova, uint64_t length);

/**
 * dmalog_swtrack_log_writes() - Record @n completed DMA writes of @length bytes each, at @iovas:
 * what a device logging a burst does, with one entry into the tracker for the whole burst.
 */
DMALOG_API void dmalog_swtrack_log_writes(struct dmalog_swtrack *t, const uint64_t *iovas,
					  uint64_t n, uint64_t length);

/** dmalog_swtrack_page_size() - Tracking page size, 0 when not tracking. */
DMALOG_API uint64_t dmalog_swtrack_page_size(struct dmalog_swtrack *t);

#ifdef __cplusplus
}
#endif

#endif
