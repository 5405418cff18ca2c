/* SPDX-License-Identifier: MIT */
/*
 * An emulated I/O page table with hardware dirty bits and an IOTLB: a 4-level x86-64 table
 * with 4 KiB, 2 MiB and 1 GiB leaves in the AMD IOMMU v1 PTE layout
 *
 *   bit 0 PR (present), bit 5 A (accessed), bit 6 D (dirty), bits 9-11 next level
 *   (0 for a leaf), bits 12-51 address, bit 61 IR (readable), bit 62 IW (writable).
 *
 * DMA translates through a direct-mapped IOTLB. With dirty tracking on, a write that
 * translates sets the leaf's D bit with an atomic update before the data lands, and the IOTLB
 * remembers it: later writes that hit the cached translation do not touch the PTE. That is
 * why read-and-clear must, after clearing D bits, invalidate the IOTLB for the range and wait
 * until every DMA that translated through an old entry has finished writing; only then may
 * the caller copy the pages. A write to an unmapped or read-only IOVA is blocked and counted
 * as a fault.
 */
#ifndef DMALOG_IOPT_H
#define DMALOG_IOPT_H

#include <stdbool.h>
#include <stdint.h>
#include <dmalog/api.h>
#include <dmalog/iova_bitmap.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DMALOG_IOPT_PTE_PR    (1ULL << 0)
#define DMALOG_IOPT_PTE_A     (1ULL << 5)
#define DMALOG_IOPT_PTE_D     (1ULL << 6)
#define DMALOG_IOPT_PTE_NL(l) ((uint64_t)(l) << 9)
#define DMALOG_IOPT_PTE_ADDR  (((1ULL << 52) - 1) & ~0xfffULL)
#define DMALOG_IOPT_PTE_IR    (1ULL << 61)
#define DMALOG_IOPT_PTE_IW    (1ULL << 62)
#define DMALOG_IOPT_IOVA_BITS 48

enum dmalog_iopt_prot {
	DMALOG_IOPT_READ = 1 << 0,
	DMALOG_IOPT_WRITE = 1 << 1,
	DMALOG_IOPT_NO_HUGE = 1 << 2, /* map with 4 KiB leaves only (iommufd HUGE_PAGES=0) */
};

/* read_and_clear flag: report without clearing or invalidating anything. */
#define DMALOG_IOPT_NO_CLEAR (1u << 0)

/* Test hooks that break the rule on purpose, so a test can show what the rule prevents. */
enum dmalog_iopt_debug {
	DMALOG_IOPT_DEBUG_SKIP_INVALIDATE = 1 << 0, /* clear D bits but keep IOTLB entries */
	DMALOG_IOPT_DEBUG_SKIP_DMA_WAIT = 1 << 1,   /* do not wait for in-flight writes */
	/* Fault injection: the next read-and-clear fails with -EIO and touches nothing. */
	DMALOG_IOPT_DEBUG_FAIL_READ = 1 << 2,
};

struct dmalog_iopt_config {
	uint32_t iotlb_entries; /* power of two; 0 means 1024 */
	uint32_t reserved32;
	uint64_t reserved[3]; /* zero: room for fields to come */
};

struct dmalog_iopt_stats {
	uint64_t faults;
	uint64_t iotlb_hits;
	uint64_t iotlb_misses;
	uint64_t invalidations; /* read-and-clear or unmap flushes */
	uint64_t tables;	/* page-table pages allocated */
};

struct dmalog_iopt;
/* One per DMA engine (thread): marks its translations in flight. */
struct dmalog_iopt_dma;

/** dmalog_iopt_create() - an empty I/O page table with its IOTLB: 0, -EINVAL or -ENOMEM */
DMALOG_API int dmalog_iopt_create(const struct dmalog_iopt_config *cfg, struct dmalog_iopt **out);
/** dmalog_iopt_destroy() - free the table; no DMA may be in flight; NULL is fine */
DMALOG_API void dmalog_iopt_destroy(struct dmalog_iopt *iopt);

/**
 * dmalog_iopt_map() - Map [iova, iova + length) to [pa, pa + length) with @prot, using the largest
 * leaves the alignment allows. -EINVAL for unaligned or out-of-range arguments, -EEXIST if any page
 * is already mapped (nothing is mapped then), -ENOMEM.
 */
DMALOG_API int dmalog_iopt_map(struct dmalog_iopt *iopt, uint64_t iova, uint64_t length,
			       uint64_t pa, unsigned int prot);

/**
 * dmalog_iopt_unmap() - Unmap [iova, iova + length): flushes the IOTLB and waits for DMA in flight.
 * -ENOENT if any page is not mapped, -EINVAL if the range is unaligned or cuts a huge leaf (nothing
 * changes).
 */
DMALOG_API int dmalog_iopt_unmap(struct dmalog_iopt *iopt, uint64_t iova, uint64_t length);

/** dmalog_iopt_set_dirty_tracking() - Turn dirty tracking on or off. Enabling clears stale D bits
 * and flushes the IOTLB. */
DMALOG_API int dmalog_iopt_set_dirty_tracking(struct dmalog_iopt *iopt, bool enable);
/** dmalog_iopt_dirty_tracking() - Whether dirty tracking is on: what the hardware does, whatever
 * the software believes. */
DMALOG_API bool dmalog_iopt_dirty_tracking(struct dmalog_iopt *iopt);

/**
 * dmalog_iopt_read_and_clear_dirty() - Record dirty leaves overlapping [iova, iova + length) into
 * @dirty (a huge leaf records its whole size). Without DMALOG_IOPT_NO_CLEAR, leaves lying wholly
 * inside the range are cleaned, the IOTLB is invalidated for the range and DMA in flight through
 * old entries is waited for. A leaf cut by the range edge is reported and stays dirty. Absent
 * tables are skipped a table at a time. -EINVAL for bad flags or a range past 2^48.
 */
DMALOG_API int dmalog_iopt_read_and_clear_dirty(struct dmalog_iopt *iopt, uint64_t iova,
						uint64_t length, unsigned int flags,
						struct dmalog_iova_bitmap *dirty);

/** dmalog_iopt_dma_create() - a DMA context for one thread that translates through @iopt */
DMALOG_API int dmalog_iopt_dma_create(struct dmalog_iopt *iopt, struct dmalog_iopt_dma **out);
/** dmalog_iopt_dma_destroy() - free a DMA context; NULL is fine */
DMALOG_API void dmalog_iopt_dma_destroy(struct dmalog_iopt_dma *dma);

/**
 * dmalog_iopt_dma_begin() - Translate a DMA access at @iova. On success *pa is the address and
 * *room the bytes that may be accessed from it before the next leaf (the caller splits longer
 * accesses), and the access is in flight until dmalog_iopt_dma_end(). -EFAULT for an unmapped IOVA
 * or a write to a read-only one: the access must not be performed (it is counted as a fault).
 */
DMALOG_API int dmalog_iopt_dma_begin(struct dmalog_iopt_dma *dma, uint64_t iova, bool write,
				     uint64_t *pa, uint64_t *room);
/** dmalog_iopt_dma_end() - the access begun by dmalog_iopt_dma_begin() has landed */
DMALOG_API void dmalog_iopt_dma_end(struct dmalog_iopt_dma *dma);

/** dmalog_iopt_get_stats() - faults, IOTLB hits and misses, invalidations and tables so far */
DMALOG_API void dmalog_iopt_get_stats(struct dmalog_iopt *iopt, struct dmalog_iopt_stats *st);
/** dmalog_iopt_set_debug() - turn on test hooks that break the rules on purpose (enum
 * dmalog_iopt_debug) */
DMALOG_API void dmalog_iopt_set_debug(struct dmalog_iopt *iopt, unsigned int debug_flags);

/** dmalog_iopt_read_pte() - The raw leaf PTE mapping @iova (0 if none) and its size, for tests and
 * debugging. */
DMALOG_API uint64_t dmalog_iopt_read_pte(struct dmalog_iopt *iopt, uint64_t iova,
					 uint64_t *leaf_size);

#ifdef __cplusplus
}
#endif

#endif
