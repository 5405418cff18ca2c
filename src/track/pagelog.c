// SPDX-License-Identifier: MIT
/* Per-range dirty-page log with atomic mark and take. */
#include <errno.h>
#include <stdlib.h>

#include "pagelog.h"

/* Words handed to the consumer at a time: a take's memory is bounded by this. */
#define TAKE_CHUNK_WORDS 64

static uint64_t range_pages(const struct dmalog_range *r, unsigned int shift)
{
	return (dmalog_range_last(r) >> shift) - (r->iova >> shift) + 1;
}

uint64_t pagelog_bytes(const struct dmalog_range *ranges, uint32_t n, unsigned int shift)
{
	uint64_t total = 0;

	for (uint32_t i = 0; i < n; i++)
		total += (range_pages(&ranges[i], shift) + 63) / 64 * 8;
	return total;
}

int pagelog_init(struct pagelog *log, const struct dmalog_range *ranges, uint32_t n,
		 unsigned int shift)
{
	log->pgshift = shift;
	log->nranges = 0;
	log->ranges = calloc(n, sizeof(*log->ranges));
	if (!log->ranges)
		return -ENOMEM;
	log->nranges = n;
	for (uint32_t i = 0; i < n; i++) {
		struct pagelog_range *r = &log->ranges[i];

		r->iova = ranges[i].iova;
		r->last = dmalog_range_last(&ranges[i]);
		r->first_page = r->iova >> shift;
		r->npages = range_pages(&ranges[i], shift);
		r->bits = calloc((r->npages + 63) / 64, sizeof(uint64_t));
		if (!r->bits) {
			pagelog_free(log);
			return -ENOMEM;
		}
	}
	return 0;
}

void pagelog_free(struct pagelog *log)
{
	for (uint32_t i = 0; i < log->nranges; i++)
		free(log->ranges[i].bits);
	free(log->ranges);
	log->ranges = NULL;
	log->nranges = 0;
}

/* First range whose last byte is >= @iova (ranges are sorted and disjoint). */
static uint32_t first_range_ending_at_or_after(const struct pagelog *log, uint64_t iova)
{
	uint32_t lo = 0, hi = log->nranges;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (log->ranges[mid].last < iova)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Mask of bits [lo, hi] within a word, 0 <= lo <= hi <= 63. */
static uint64_t bit_mask(unsigned int lo, unsigned int hi)
{
	return (~0ULL << lo) & (~0ULL >> (63 - hi));
}

void pagelog_mark(struct pagelog *log, uint64_t iova, uint64_t length)
{
	uint64_t last;

	if (!length)
		return;
	if (__builtin_add_overflow(iova, length - 1, &last))
		last = UINT64_MAX;
	for (uint32_t i = first_range_ending_at_or_after(log, iova);
	     i < log->nranges && log->ranges[i].iova <= last; i++) {
		struct pagelog_range *r = &log->ranges[i];
		uint64_t lo = iova > r->iova ? iova : r->iova;
		uint64_t hi = last < r->last ? last : r->last;
		uint64_t b0 = (lo >> log->pgshift) - r->first_page;
		uint64_t b1 = (hi >> log->pgshift) - r->first_page;

		/*
		 * Always a release RMW, never "skip if already set": a skipped OR could let the
		 * reader clear the bit and copy the page before our data is visible to it.
		 */
		for (uint64_t w = b0 / 64; w <= b1 / 64; w++) {
			unsigned int from = w == b0 / 64 ? b0 % 64 : 0;
			unsigned int to = w == b1 / 64 ? b1 % 64 : 63;

			__atomic_fetch_or(&r->bits[w], bit_mask(from, to), __ATOMIC_RELEASE);
		}
	}
}

/* Bits of word (page0, bits from..to) whose pages are in [c_first, c_end). */
static uint64_t clear_mask(uint64_t page0, unsigned int from, unsigned int to, uint64_t c_first,
			   uint64_t c_end)
{
	uint64_t lo = c_first > page0 + from ? c_first : page0 + from;
	uint64_t end = c_end < page0 + to + 1 ? c_end : page0 + to + 1;

	if (lo >= end)
		return 0;
	return bit_mask(lo - page0, end - 1 - page0);
}

/*
 * Take the pages of @r overlapping [iova, last], clearing those wholly inside it, and hand
 * them to @fn TAKE_CHUNK_WORDS words at a time.
 */
static void take_range(struct pagelog *log, struct pagelog_range *r, uint64_t iova, uint64_t last,
		       pagelog_fn fn, void *opaque)
{
	unsigned int shift = log->pgshift;
	uint64_t lo = iova > r->iova ? iova : r->iova;
	uint64_t hi = last < r->last ? last : r->last;
	uint64_t b0 = (lo >> shift) - r->first_page, b1 = (hi >> shift) - r->first_page;
	/* Pages wholly inside: from the first starting at or after iova to the last ending by last.
	 */
	uint64_t c_first = (iova >> shift) + ((iova & ((1ULL << shift) - 1)) != 0);
	uint64_t c_end = (last + 1) >> shift;
	uint64_t tmp[TAKE_CHUNK_WORDS];
	uint64_t chunk_w0 = b0 / 64, nonzero = 0;
	unsigned int n = 0;

	for (uint64_t w = b0 / 64; w <= b1 / 64; w++) {
		unsigned int from = w == b0 / 64 ? b0 % 64 : 0;
		unsigned int to = w == b1 / 64 ? b1 % 64 : 63;
		uint64_t page0 = r->first_page + w * 64;
		uint64_t rmask = bit_mask(from, to);
		uint64_t cmask = clear_mask(page0, from, to, c_first, c_end);
		uint64_t old = __atomic_load_n(&r->bits[w], __ATOMIC_ACQUIRE);

		if (old & cmask)
			old = __atomic_fetch_and(&r->bits[w], ~cmask, __ATOMIC_ACQ_REL);
		tmp[n] = old & rmask;
		nonzero |= tmp[n];
		n++;
		if (n == TAKE_CHUNK_WORDS || w == b1 / 64) {
			if (nonzero)
				fn(opaque, (r->first_page + chunk_w0 * 64) << shift, shift, tmp,
				   (uint64_t)n * 64);
			chunk_w0 = w + 1;
			n = 0;
			nonzero = 0;
		}
	}
}

void pagelog_take(struct pagelog *log, uint64_t iova, uint64_t last, pagelog_fn fn, void *opaque)
{
	for (uint32_t i = first_range_ending_at_or_after(log, iova);
	     i < log->nranges && log->ranges[i].iova <= last; i++)
		take_range(log, &log->ranges[i], iova, last, fn, opaque);
}
