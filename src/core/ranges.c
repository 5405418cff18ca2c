// SPDX-License-Identifier: MIT
/* Sorted IOVA range sets: insertion with overlap check, combining, span helpers. */
#include <errno.h>
#include <string.h>

#include <dmalog/ranges.h>

/* Index of the first entry whose iova is > @iova. */
static uint32_t upper_bound(const struct dmalog_range *set, uint32_t n, uint64_t iova)
{
	uint32_t lo = 0, hi = n;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (set[mid].iova <= iova)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int dmalog_ranges_insert(struct dmalog_range *set, uint32_t *n, const struct dmalog_range *r)
{
	uint32_t pos = upper_bound(set, *n, r->iova);

	/* Sorted and disjoint: only the neighbours can intersect. */
	if (pos > 0 && dmalog_range_last(&set[pos - 1]) >= r->iova)
		return -EINVAL;
	if (pos < *n && set[pos].iova <= dmalog_range_last(r))
		return -EINVAL;
	memmove(&set[pos + 1], &set[pos], (size_t)(*n - pos) * sizeof(*set));
	set[pos] = *r;
	(*n)++;
	return 0;
}

static void merge_into_prev(struct dmalog_range *set, uint32_t *n, uint32_t i)
{
	set[i - 1].length = dmalog_range_last(&set[i]) - set[i - 1].iova + 1;
	memmove(&set[i], &set[i + 1], (size_t)(*n - i - 1) * sizeof(*set));
	(*n)--;
}

int dmalog_ranges_combine(struct dmalog_range *set, uint32_t *n, uint32_t max)
{
	if (*n <= max)
		return 0;
	if (max == 0)
		return -EINVAL;
	if (max == 1) {
		set[0].length = dmalog_range_last(&set[*n - 1]) - set[0].iova + 1;
		*n = 1;
		return 0;
	}
	while (*n > max) {
		uint64_t min_gap = UINT64_MAX;
		uint32_t min_i = 0;

		/* The kernel's metric: gap = start - prev.last; strict '<' keeps the lowest pair.
		 */
		for (uint32_t i = 1; i < *n; i++) {
			uint64_t gap = set[i].iova - dmalog_range_last(&set[i - 1]);

			if (gap < min_gap) {
				min_gap = gap;
				min_i = i;
			}
		}
		merge_into_prev(set, n, min_i);
	}
	return 0;
}

uint64_t dmalog_ranges_total_length(const struct dmalog_range *set, uint32_t n)
{
	uint64_t total = 0;

	for (uint32_t i = 0; i < n; i++) {
		if (__builtin_add_overflow(total, set[i].length, &total))
			return UINT64_MAX;
	}
	return total;
}

void dmalog_ranges_span(const struct dmalog_range *set, uint32_t n, uint64_t *first, uint64_t *last)
{
	*first = set[0].iova;
	*last = dmalog_range_last(&set[n - 1]);
}

unsigned int dmalog_log2_roundup(uint64_t length)
{
	if (length <= 1)
		return 0;
	return 64 - (unsigned int)__builtin_clzll(length - 1);
}
