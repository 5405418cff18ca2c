// SPDX-License-Identifier: MIT
/*
 * Software dirty tracker: one bitmap per started range at the tracking page size. Writers
 * set bits with an atomic OR after their data has landed; a report takes the bits with an
 * atomic AND (or exchange), so every write is in this report or stays for the next one.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include <dmalog/swtrack.h>

/* Words handed to the bitmap writer at a time: the report's memory is bounded by this. */
#define REPORT_CHUNK_WORDS 64

struct swtrack_range {
	uint64_t iova;
	uint64_t last;
	uint64_t first_page; /* absolute page number of bit 0 */
	uint64_t npages;
	uint64_t *bits;
};

struct dmalog_swtrack {
	/* Writers and the reporter share it; START and STOP exclude them. */
	pthread_rwlock_t lock;
	bool active;
	uint64_t log_limit;
	unsigned int pgshift;
	uint32_t nranges;
	struct swtrack_range *ranges;
};

int dmalog_swtrack_create(struct dmalog_swtrack **out)
{
	struct dmalog_swtrack *t = calloc(1, sizeof(*t));

	if (!t)
		return -ENOMEM;
	pthread_rwlock_init(&t->lock, NULL);
	t->log_limit = DMALOG_SWTRACK_MAX_LOG_BYTES;
	*out = t;
	return 0;
}

static void free_ranges(struct dmalog_swtrack *t)
{
	for (uint32_t i = 0; i < t->nranges; i++)
		free(t->ranges[i].bits);
	free(t->ranges);
	t->ranges = NULL;
	t->nranges = 0;
	t->active = false;
}

void dmalog_swtrack_destroy(struct dmalog_swtrack *t)
{
	if (!t)
		return;
	free_ranges(t);
	pthread_rwlock_destroy(&t->lock);
	free(t);
}

static uint64_t range_pages(const struct dmalog_range *r, unsigned int shift)
{
	return (dmalog_range_last(r) >> shift) - (r->iova >> shift) + 1;
}

static uint64_t log_bytes(const struct dmalog_range *ranges, uint32_t n, unsigned int shift)
{
	uint64_t total = 0;

	for (uint32_t i = 0; i < n; i++)
		total += (range_pages(&ranges[i], shift) + 63) / 64 * 8;
	return total;
}

static int swtrack_start(void *priv, const struct dmalog_range *ranges, uint32_t n,
			 uint64_t *page_size)
{
	struct dmalog_swtrack *t = priv;
	unsigned int shift = __builtin_ctzll(*page_size);
	int ret = 0;

	pthread_rwlock_wrlock(&t->lock);
	if (t->active) {
		ret = -EINVAL;
		goto out;
	}
	if (shift < 12)
		shift = 12;
	/* The driver's choice when the hint would need too big a log: coarser pages. */
	while (shift < 63 && log_bytes(ranges, n, shift) > t->log_limit)
		shift++;

	t->ranges = calloc(n, sizeof(*t->ranges));
	if (!t->ranges) {
		ret = -ENOMEM;
		goto out;
	}
	t->nranges = n;
	for (uint32_t i = 0; i < n; i++) {
		struct swtrack_range *r = &t->ranges[i];

		r->iova = ranges[i].iova;
		r->last = dmalog_range_last(&ranges[i]);
		r->first_page = r->iova >> shift;
		r->npages = range_pages(&ranges[i], shift);
		r->bits = calloc((r->npages + 63) / 64, sizeof(uint64_t));
		if (!r->bits) {
			free_ranges(t);
			ret = -ENOMEM;
			goto out;
		}
	}
	t->pgshift = shift;
	t->active = true;
	*page_size = 1ULL << shift;
out:
	pthread_rwlock_unlock(&t->lock);
	return ret;
}

static int swtrack_stop(void *priv)
{
	struct dmalog_swtrack *t = priv;

	pthread_rwlock_wrlock(&t->lock);
	free_ranges(t);
	pthread_rwlock_unlock(&t->lock);
	return 0;
}

/* First range whose last byte is >= @iova (ranges are sorted and disjoint). */
static uint32_t first_range_ending_at_or_after(const struct dmalog_swtrack *t, uint64_t iova)
{
	uint32_t lo = 0, hi = t->nranges;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (t->ranges[mid].last < iova)
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

void dmalog_swtrack_log_write(struct dmalog_swtrack *t, uint64_t iova, uint64_t length)
{
	uint64_t last;

	if (!length)
		return;
	if (__builtin_add_overflow(iova, length - 1, &last))
		last = UINT64_MAX;
	pthread_rwlock_rdlock(&t->lock);
	if (!t->active)
		goto out;
	for (uint32_t i = first_range_ending_at_or_after(t, iova);
	     i < t->nranges && t->ranges[i].iova <= last; i++) {
		struct swtrack_range *r = &t->ranges[i];
		uint64_t lo = iova > r->iova ? iova : r->iova;
		uint64_t hi = last < r->last ? last : r->last;
		uint64_t b0 = (lo >> t->pgshift) - r->first_page;
		uint64_t b1 = (hi >> t->pgshift) - r->first_page;

		/*
		 * Always a release RMW, never "skip if already set": a skipped OR could let the
		 * reporter clear the bit and copy the page before our data is visible to it.
		 */
		for (uint64_t w = b0 / 64; w <= b1 / 64; w++) {
			unsigned int from = w == b0 / 64 ? b0 % 64 : 0;
			unsigned int to = w == b1 / 64 ? b1 % 64 : 63;

			__atomic_fetch_or(&r->bits[w], bit_mask(from, to), __ATOMIC_RELEASE);
		}
	}
out:
	pthread_rwlock_unlock(&t->lock);
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
 * Report the pages of @r overlapping [iova, last] and clear those wholly inside it, handing
 * the bitmap writer REPORT_CHUNK_WORDS words at a time.
 */
static void report_range(struct dmalog_swtrack *t, struct swtrack_range *r, uint64_t iova,
			 uint64_t last, struct dmalog_iova_bitmap *bm)
{
	unsigned int shift = t->pgshift;
	uint64_t lo = iova > r->iova ? iova : r->iova;
	uint64_t hi = last < r->last ? last : r->last;
	uint64_t b0 = (lo >> shift) - r->first_page, b1 = (hi >> shift) - r->first_page;
	/* Pages wholly inside the query: first page starting at or after iova, last ending by last.
	 */
	uint64_t c_first = (iova >> shift) + ((iova & ((1ULL << shift) - 1)) != 0);
	uint64_t c_end = (last + 1) >> shift;
	uint64_t tmp[REPORT_CHUNK_WORDS];
	uint64_t chunk_w0 = b0 / 64, nonzero = 0;
	unsigned int n = 0;

	for (uint64_t w = b0 / 64; w <= b1 / 64; w++) {
		unsigned int from = w == b0 / 64 ? b0 % 64 : 0;
		unsigned int to = w == b1 / 64 ? b1 % 64 : 63;
		uint64_t rmask = bit_mask(from, to), cmask, old;
		uint64_t page0 = r->first_page + w * 64;

		cmask = clear_mask(page0, from, to, c_first, c_end);
		old = __atomic_load_n(&r->bits[w], __ATOMIC_ACQUIRE);
		if ((old & cmask) == 0)
			cmask = 0;
		if (cmask)
			old = __atomic_fetch_and(&r->bits[w], ~cmask, __ATOMIC_ACQ_REL);
		tmp[n] = old & rmask;
		nonzero |= tmp[n];
		n++;
		if (n == REPORT_CHUNK_WORDS || w == b1 / 64) {
			if (nonzero)
				dmalog_iova_bitmap_set_from(
					bm, (r->first_page + chunk_w0 * 64) << shift, shift, tmp,
					(uint64_t)n * 64);
			chunk_w0 = w + 1;
			n = 0;
			nonzero = 0;
		}
	}
}

static int swtrack_read_and_clear(void *priv, uint64_t iova, uint64_t length,
				  struct dmalog_iova_bitmap *dirty)
{
	struct dmalog_swtrack *t = priv;
	uint64_t last = iova + length - 1;
	int ret = 0;

	if (!length)
		return 0;
	pthread_rwlock_rdlock(&t->lock);
	if (!t->active) {
		ret = -EINVAL;
		goto out;
	}
	for (uint32_t i = first_range_ending_at_or_after(t, iova);
	     i < t->nranges && t->ranges[i].iova <= last; i++)
		report_range(t, &t->ranges[i], iova, last, dirty);
out:
	pthread_rwlock_unlock(&t->lock);
	return ret;
}

void dmalog_swtrack_set_log_limit(struct dmalog_swtrack *t, uint64_t bytes)
{
	pthread_rwlock_wrlock(&t->lock);
	t->log_limit = bytes ? bytes : DMALOG_SWTRACK_MAX_LOG_BYTES;
	pthread_rwlock_unlock(&t->lock);
}

uint64_t dmalog_swtrack_page_size(struct dmalog_swtrack *t)
{
	uint64_t size;

	pthread_rwlock_rdlock(&t->lock);
	size = t->active ? 1ULL << t->pgshift : 0;
	pthread_rwlock_unlock(&t->lock);
	return size;
}

static const struct dmalog_log_ops swtrack_ops = {
	.log_start = swtrack_start,
	.log_stop = swtrack_stop,
	.log_read_and_clear = swtrack_read_and_clear,
};

const struct dmalog_log_ops *dmalog_swtrack_log_ops(void)
{
	return &swtrack_ops;
}
