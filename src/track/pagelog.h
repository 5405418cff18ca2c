/* SPDX-License-Identifier: MIT */
/*
 * A dirty-page log kept per tracked range, one bit per page: what the software tracker keeps
 * in host memory and what the emulated device tracker keeps on the device. Writers mark pages
 * with a release OR after their data has landed; a reader takes pages with an AND (so a page
 * written meanwhile is in this take or stays for the next), clearing only pages that lie
 * wholly inside the range it takes: a page cut by the range edge is reported and kept.
 * The caller excludes init/free against mark/take.
 */
#ifndef DMALOG_PAGELOG_H
#define DMALOG_PAGELOG_H

#include <stdint.h>

#include <dmalog/ranges.h>

struct pagelog_range {
	uint64_t iova;
	uint64_t last;
	uint64_t first_page; /* absolute page number of bit 0 */
	uint64_t npages;
	uint64_t *bits;
};

struct pagelog {
	unsigned int pgshift;
	uint32_t nranges;
	struct pagelog_range *ranges;
};

/* Bytes the log for @ranges takes at page size 2^@shift. */
uint64_t pagelog_bytes(const struct dmalog_range *ranges, uint32_t n, unsigned int shift);

int pagelog_init(struct pagelog *log, const struct dmalog_range *ranges, uint32_t n,
		 unsigned int shift);
void pagelog_free(struct pagelog *log);

/* Mark the pages of [iova, iova + length) that fall in tracked ranges. */
void pagelog_mark(struct pagelog *log, uint64_t iova, uint64_t length);

/*
 * Take the dirty pages overlapping [iova, last], handing them to @fn a chunk of at most 64
 * words at a time: bit k of @words is page (@page_iova >> shift) + k.
 */
typedef void (*pagelog_fn)(void *opaque, uint64_t page_iova, unsigned int shift,
			   const uint64_t *words, uint64_t nbits);
void pagelog_take(struct pagelog *log, uint64_t iova, uint64_t last, pagelog_fn fn, void *opaque);

#endif
