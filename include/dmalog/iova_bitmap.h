/* SPDX-License-Identifier: MIT */
/*
 * The IOVA bitmap: the report writer over a caller's bitmap for [iova, iova + length) at a
 * power-of-two report page size. Bit n stands for IOVA iova + n * page_size and lives in
 * byte n / 8, bit n % 8 (little-endian u64 word n / 64, bit n % 64). Only
 * ceil(nbits / 8) bytes are ever touched; the buffer needs no alignment.
 *
 * Writes only set bits (OR): nothing is cleared or initialised. Sets are clipped to the
 * bitmap; what falls outside is counted, never written. With DMALOG_IOVA_BITMAP_ATOMIC
 * every word is updated with an atomic OR so several trackers can report into one bitmap
 * at once.
 *
 * A tracker reports either range by range (dmalog_iova_bitmap_set) or a whole bitmap of its
 * own granularity at once (dmalog_iova_bitmap_set_from), which converts to the report page
 * size a word at a time: coarser ORs pages together, finer replicates them.
 */
#ifndef DMALOG_IOVA_BITMAP_H
#define DMALOG_IOVA_BITMAP_H

#include <stdbool.h>
#include <stdint.h>
#include <dmalog/api.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Window of the kernel's iova_bitmap: 512 pinned 4 KiB pages = 2 MiB of bitmap. */
#define DMALOG_IOVA_BITMAP_WINDOW_BITS (512ULL * 4096 * 8)

enum dmalog_iova_bitmap_flags {
	DMALOG_IOVA_BITMAP_ATOMIC = 1 << 0,
};

/* Fields are private; declared here so callers can keep one on the stack. */
struct dmalog_iova_bitmap {
	uint64_t iova;
	uint64_t length;
	uint64_t nbits;
	unsigned int pgshift;
	bool atomic;
	uint8_t *bytes;		/* caller's buffer */
	uint64_t nbytes;	/* ceil(nbits / 8) */
	uint64_t *words;	/* bytes rounded down to 8: word-aligned view */
	unsigned int head_bits; /* 8 * (bytes & 7): bit 0 sits this far into words[0] */
	uint64_t whole_first;	/* words[whole_first .. whole_end) lie inside the buffer */
	uint64_t whole_end;
	uint64_t clipped; /* sets that fell (partly) outside the bitmap */
};

/** dmalog_iova_bitmap_bytes() - Bytes a report of @length at @page_size writes: ceil(nbits / 8). 0
 * for length 0. */
DMALOG_API uint64_t dmalog_iova_bitmap_bytes(uint64_t length, uint64_t page_size);

/** dmalog_iova_bitmap_words() - u64 words a caller should allocate: ceil(nbits / 64), the kernel's
 * documented size. */
DMALOG_API uint64_t dmalog_iova_bitmap_words(uint64_t length, uint64_t page_size);

/**
 * dmalog_iova_bitmap_init() - Prepare a writer. @page_size must be a power of two; iova + length
 * must not wrap. -EINVAL otherwise, -EFAULT for a NULL buffer with a non-zero length.
 */
DMALOG_API int dmalog_iova_bitmap_init(struct dmalog_iova_bitmap *bm, uint64_t iova,
				       uint64_t length, uint64_t page_size, void *data,
				       unsigned int flags);

/** dmalog_iova_bitmap_set() - Mark every report page that [iova, iova + length) touches. length 0
 * marks nothing. */
DMALOG_API void dmalog_iova_bitmap_set(struct dmalog_iova_bitmap *bm, uint64_t iova,
				       uint64_t length);

/**
 * dmalog_iova_bitmap_set_list() - Mark @n ranges [iovas[i], iovas[i] + length): the shape of a
 * device tracker's report message (a list of dirty addresses). Prefetches ahead, so scattered bits
 * cost about one memory access each rather than one at a time.
 */
DMALOG_API void dmalog_iova_bitmap_set_list(struct dmalog_iova_bitmap *bm, const uint64_t *iovas,
					    uint64_t n, uint64_t length);

/**
 * dmalog_iova_bitmap_set_from() - OR in a tracker's own bitmap: @src bit k set means [src_iova + k
 * * 2^src_pgshift, +2^src_pgshift) is dirty; @src_nbits bits are read (bits past that in the last
 * word are ignored).
 */
DMALOG_API void dmalog_iova_bitmap_set_from(struct dmalog_iova_bitmap *bm, uint64_t src_iova,
					    unsigned int src_pgshift, const uint64_t *src,
					    uint64_t src_nbits);

/**
 * dmalog_iova_bitmap_span() - The IOVA range the whole bitmap covers, [*first, *last] (the whole
 * REPORT, whichever window a tracker is handed): a tracker clears what lies wholly inside it,
 * so a page cut by a window edge is cleared once, not reported forever. Length 0 gives
 * *first > *last.
 */
DMALOG_API void dmalog_iova_bitmap_span(const struct dmalog_iova_bitmap *bm, uint64_t *first,
					uint64_t *last);

typedef int (*dmalog_iova_bitmap_fn)(struct dmalog_iova_bitmap *bm, uint64_t iova, uint64_t length,
				     void *opaque);

/**
 * dmalog_iova_bitmap_for_each() - Call @fn once per window of at most @window_bits bits (rounded
 * down to a multiple of 64, at least 64), in IOVA order, covering [iova, iova + length) exactly.
 * Stops at and returns the first error. A tracker called per window only needs memory bounded by
 * the window.
 */
DMALOG_API int dmalog_iova_bitmap_for_each(struct dmalog_iova_bitmap *bm, uint64_t window_bits,
					   dmalog_iova_bitmap_fn fn, void *opaque);

#ifdef __cplusplus
}
#endif

#endif
