/* SPDX-License-Identifier: MIT */
/*
 * A dirty-page log kept per tracked range, one bit per page: what the software tracker keeps
 * in host memory and what the emulated device tracker keeps on the device.
 *
 * Each range has two halves. Writers mark pages in the current half (after their data has
 * landed) inside a mark section (markers.h: no lock); a taker flips the current half, waits out
 * every writer still inside a section (which may still mark the old half) and then owns the
 * retired half alone: it reads and clears it with plain loads and stores, no locked instruction
 * per word. Bits the take must keep (outside the range taken, or pages cut by the edge of the
 * range being cleared) go back into the current half. Outside a take the retired half is all
 * zero.
 *
 * Each half has two copies of its bits. The first writer to mark a half claims it (one
 * compare-and-swap per half per take) and marks the owned copy with plain loads and stores, no
 * locked instruction at all: a log usually has one writer (a device's DMA engine, a vCPU's
 * thread). Every other writer, and the bits a take keeps, go into the shared copy with atomic
 * ORs. A take folds the shared copy into the owned one and hands the owner's claim back.
 *
 * A summary bit per 64 words of each copy (set by the writers, one load when it is already
 * set) lets a take skip clean stretches without reading them: a clean take reads 1/4096 of
 * the log.
 *
 * Start, stop and takes are serialised by the owner (one at a time); stop waits out the
 * writers before it frees the log.
 */
#ifndef DMALOG_PAGELOG_H
#define DMALOG_PAGELOG_H

#include <stdbool.h>
#include <stdint.h>

#include <dmalog/ranges.h>

struct marker;

/* One copy of a half's bits. */
struct pagelog_bits {
	uint64_t *words;   /* one bit per page, nwords */
	uint64_t *summary; /* bit g: words [64 g, 64 g + 64) may be non-zero */
};

struct pagelog_half {
	/*
	 * The writer marking @owned, NULL until one claims it. Reset by a take while the half is
	 * retired (no writer can be in it), published to writers by the flip that makes it
	 * current again.
	 */
	struct marker *owner;
	struct pagelog_bits owned;  /* plain stores, by the owner alone */
	struct pagelog_bits shared; /* atomic ORs, by everyone else */
};

struct pagelog_range {
	uint64_t iova;
	uint64_t last;
	uint64_t first_page; /* absolute page number of bit 0 */
	uint64_t npages;
	uint64_t nwords;
	unsigned int cur; /* the half writers mark; flipped by a take */
	struct pagelog_half half[2];
};

struct pagelog {
	bool active;	      /* written by start/stop, read by writers in a mark section */
	unsigned int pgshift; /* fixed while active */
	uint32_t nranges;
	uint32_t last_hit; /* range of the last mark: writes come in runs (a hint, racy) */
	struct pagelog_range *ranges;
};

/* Once per log, before anything else / after everything else. */
void pagelog_setup(struct pagelog *log);
void pagelog_teardown(struct pagelog *log);

/* Bytes the log for @ranges takes at page size 2^@shift (both halves, both copies, summaries). */
uint64_t pagelog_bytes(const struct dmalog_range *ranges, uint32_t n, unsigned int shift);

/* Start logging @ranges (sorted, disjoint) at 2^@shift: 0, -EINVAL when active, -ENOMEM. */
int pagelog_start(struct pagelog *log, const struct dmalog_range *ranges, uint32_t n,
		  unsigned int shift);
/* Stop and free; a no-op when not active. */
void pagelog_stop(struct pagelog *log);
/* Page shift while active, 0 otherwise. */
unsigned int pagelog_shift(struct pagelog *log);

/* Mark the pages of [iova, iova + length) that fall in tracked ranges; a no-op when stopped. */
void pagelog_mark(struct pagelog *log, uint64_t iova, uint64_t length);
/* Mark @n writes of @length bytes each in one mark section, a word's pages in one store or OR. */
void pagelog_mark_list(struct pagelog *log, const uint64_t *iovas, uint64_t n, uint64_t length);

/*
 * Take the dirty pages overlapping [iova, last]: hand them to @fn (bit k of @words is page
 * (@page_iova >> shift) + k; @words stays valid during the call only) and clear those lying
 * wholly inside [clear_first, clear_last], which must contain [iova, last] (otherwise
 * [iova, last] is used). A page cut by the clear bounds is reported and kept. -EINVAL when
 * not active.
 */
typedef void (*pagelog_fn)(void *opaque, uint64_t page_iova, unsigned int shift,
			   const uint64_t *words, uint64_t nbits);
int pagelog_take(struct pagelog *log, uint64_t iova, uint64_t last, uint64_t clear_first,
		 uint64_t clear_last, pagelog_fn fn, void *opaque);

#endif
