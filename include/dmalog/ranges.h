/* SPDX-License-Identifier: MIT */
/*
 * A validated, sorted set of IOVA ranges: what START hands a tracker, and the helpers
 * trackers with limits need (combining down to N ranges, span, covering address space).
 */
#ifndef DMALOG_RANGES_H
#define DMALOG_RANGES_H

#include <stdint.h>
#include <dmalog/api.h>

#ifdef __cplusplus
extern "C" {
#endif

struct dmalog_range {
	uint64_t iova;
	uint64_t length; /* > 0; iova + length does not wrap */
};

/* Last byte of a range (inclusive), as the kernel's interval-tree nodes store it. */
static inline uint64_t dmalog_range_last(const struct dmalog_range *r)
{
	return r->iova + r->length - 1;
}

/**
 * dmalog_ranges_insert() - Insert @r into the sorted, non-overlapping array @set of *@n entries
 * (room for one more). -EINVAL if it intersects an entry (adjacent ranges are fine).
 */
DMALOG_API int dmalog_ranges_insert(struct dmalog_range *set, uint32_t *n,
				    const struct dmalog_range *r);

/**
 * dmalog_ranges_combine() - Combine a sorted set down to at most @max ranges, as
 * vfio_combine_iova_ranges() does: max == 1 spans everything; otherwise repeatedly merge the
 * adjacent pair with the smallest gap, the lowest-address pair on ties. The result covers a
 * superset of the input. -EINVAL for max == 0 with a non-empty set.
 */
DMALOG_API int dmalog_ranges_combine(struct dmalog_range *set, uint32_t *n, uint32_t max);

/** dmalog_ranges_total_length() - Sum of the lengths. Saturates at UINT64_MAX. */
DMALOG_API uint64_t dmalog_ranges_total_length(const struct dmalog_range *set, uint32_t n);

/** dmalog_ranges_span() - [first iova, last byte] covered by the set (n > 0). */
DMALOG_API void dmalog_ranges_span(const struct dmalog_range *set, uint32_t n, uint64_t *first,
				   uint64_t *last);

/**
 * dmalog_log2_roundup() - log2 of the smallest power of two >= @length (0 for length <= 1): the
 * address-space size a tracker needs, as mlx5 computes log_addr_space_size =
 * ilog2(roundup_pow_of_two(total)).
 */
DMALOG_API unsigned int dmalog_log2_roundup(uint64_t length);

#ifdef __cplusplus
}
#endif

#endif
