/* SPDX-License-Identifier: MIT */
/*
 * Page-table pages for the emulated IOMMU, carved from large chunks.
 *
 * A kernel IOMMU driver's tables are pages the CPU reaches through the direct map, which uses
 * huge pages: walking them costs no TLB misses. Separate 4 KiB allocations in userspace cost one
 * per table, and a walk of clean tables is bound by them. Chunks of up to 2 MiB, asked to be
 * backed by huge pages, put 512 tables behind one TLB entry.
 */
#ifndef DMALOG_TRACK_TABLE_POOL_H
#define DMALOG_TRACK_TABLE_POOL_H

#include <stddef.h>
#include <stdint.h>

struct table_pool {
	void **chunks; /* every chunk, unmapped at table_pool_destroy() */
	size_t nchunks, cap_chunks;
	size_t used;	/* bytes handed out of the newest chunk */
	size_t ntables; /* tables handed out in all */
};

/**
 * table_pool_alloc() - a zeroed, 4 KiB-aligned page-table page
 * @pool: the pool (zero-initialised before first use)
 *
 * Tables live until table_pool_destroy(): the emulated IOMMU never frees one while DMA may
 * still walk it.
 *
 * Return: the page, or NULL when memory ran out.
 */
uint64_t *table_pool_alloc(struct table_pool *pool);

/**
 * table_pool_destroy() - free every table of @pool at once
 * @pool: the pool; zeroed again, so it can be reused
 */
void table_pool_destroy(struct table_pool *pool);

#endif
