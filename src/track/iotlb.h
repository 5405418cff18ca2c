/* SPDX-License-Identifier: MIT */
/*
 * A direct-mapped IOTLB of 4 KiB translations, shared by DMA threads. Each entry is a small
 * seqlock: lookups never block, fills and invalidations lock one entry. A fill carries the
 * invalidation generation it was computed under and is dropped if an invalidation ran since,
 * so a translation read before a clear can never be cached after it.
 */
#ifndef DMALOG_IOTLB_H
#define DMALOG_IOTLB_H

#include <stdbool.h>
#include <stdint.h>

struct iotlb;

struct iotlb_val {
	uint64_t pa; /* of the 4 KiB page */
	bool writable;
	bool dirty; /* the leaf's D bit was set when this was cached */
};

int iotlb_create(uint32_t entries, struct iotlb **out);
void iotlb_destroy(struct iotlb *tlb);

bool iotlb_lookup(struct iotlb *tlb, uint64_t pfn, struct iotlb_val *v);

/* Cache @v for @pfn unless *@gen_now has moved past @gen. */
void iotlb_fill(struct iotlb *tlb, uint64_t pfn, const struct iotlb_val *v, uint64_t gen,
		const uint64_t *gen_now);

/* Drop every entry for a page in [first_pfn, last_pfn]. */
void iotlb_invalidate(struct iotlb *tlb, uint64_t first_pfn, uint64_t last_pfn);

#endif
