// SPDX-License-Identifier: MIT
/*
 * Per-range dirty-page log: two halves flipped by a take, an owned and a shared copy of each, a
 * summary level, plain-load takes.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "markers.h"
#include "pagelog.h"

/* Words per summary bit: 64 words are 4096 pages, 16 MiB at 4 KiB. */
#define GROUP_SHIFT 6

/* Words of log a take hands over at a time: a 4 KiB page of it, in the first-level cache. */
#define TAKE_PIECE_WORDS 512

static uint64_t range_pages(const struct dmalog_range *r, unsigned int shift)
{
	return (dmalog_range_last(r) >> shift) - (r->iova >> shift) + 1;
}

static uint64_t words_for(uint64_t bits)
{
	return (bits + 63) / 64;
}

uint64_t pagelog_bytes(const struct dmalog_range *ranges, uint32_t n, unsigned int shift)
{
	uint64_t total = 0;

	for (uint32_t i = 0; i < n; i++) {
		uint64_t words = words_for(range_pages(&ranges[i], shift));
		uint64_t sum = words_for(words_for(words));

		/* Two halves, each with an owned and a shared copy. */
		total += 4 * 8 * (words + sum);
	}
	return total;
}

void pagelog_setup(struct pagelog *log)
{
	memset(log, 0, sizeof(*log));
	marks_init();
}

void pagelog_teardown(struct pagelog *log)
{
	pagelog_stop(log);
}

static void free_ranges(struct pagelog *log)
{
	for (uint32_t i = 0; i < log->nranges; i++) {
		for (int h = 0; h < 2; h++) {
			struct pagelog_half *hf = &log->ranges[i].half[h];

			free(hf->owned.words);
			free(hf->owned.summary);
			free(hf->shared.words);
			free(hf->shared.summary);
		}
	}
	free(log->ranges);
	log->ranges = NULL;
	log->nranges = 0;
}

int pagelog_start(struct pagelog *log, const struct dmalog_range *ranges, uint32_t n,
		  unsigned int shift)
{
	if (__atomic_load_n(&log->active, __ATOMIC_RELAXED))
		return -EINVAL;
	log->ranges = calloc(n, sizeof(*log->ranges));
	if (!log->ranges)
		return -ENOMEM;
	log->nranges = n;
	__atomic_store_n(&log->pgshift, shift, __ATOMIC_RELAXED);
	log->last_hit = 0;
	for (uint32_t i = 0; i < n; i++) {
		struct pagelog_range *r = &log->ranges[i];
		uint64_t nsum;

		r->iova = ranges[i].iova;
		r->last = dmalog_range_last(&ranges[i]);
		r->first_page = r->iova >> shift;
		r->npages = range_pages(&ranges[i], shift);
		r->nwords = words_for(r->npages);
		nsum = words_for(words_for(r->nwords));
		for (int h = 0; h < 2; h++) {
			struct pagelog_bits *c[2] = {&r->half[h].owned, &r->half[h].shared};

			/* Pages nobody marks stay unallocated: calloc maps zero pages for big ones.
			 */
			for (int k = 0; k < 2; k++) {
				c[k]->words = calloc(r->nwords, sizeof(uint64_t));
				c[k]->summary = calloc(nsum, sizeof(uint64_t));
				if (!c[k]->words || !c[k]->summary) {
					free_ranges(log);
					return -ENOMEM;
				}
			}
		}
	}
	/* Release: a writer that sees the log active sees its ranges. */
	__atomic_store_n(&log->active, true, __ATOMIC_RELEASE);
	return 0;
}

void pagelog_stop(struct pagelog *log)
{
	if (!__atomic_load_n(&log->active, __ATOMIC_RELAXED))
		return;
	__atomic_store_n(&log->active, false, __ATOMIC_SEQ_CST);
	/* Writers that saw it active may still be marking: free only once they are out. */
	marks_wait();
	free_ranges(log);
}

unsigned int pagelog_shift(struct pagelog *log)
{
	return __atomic_load_n(&log->active, __ATOMIC_ACQUIRE)
		       ? __atomic_load_n(&log->pgshift, __ATOMIC_RELAXED)
		       : 0;
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
static inline uint64_t bit_mask(unsigned int lo, unsigned int hi)
{
	return (~0ULL << lo) & (~0ULL >> (63 - hi));
}

/*
 * The copy of @hf that writer @m marks: the owned one when @m holds the half's claim or takes
 * it now (nobody has), the shared one otherwise. The claim was reset while the half was
 * retired; the flip that made it current (acquired by the caller) published that.
 */
static inline struct pagelog_bits *writer_copy(struct pagelog_half *hf, struct marker *m, bool *own)
{
	struct marker *owner = __atomic_load_n(&hf->owner, __ATOMIC_RELAXED);

	if (!owner && __atomic_compare_exchange_n(&hf->owner, &owner, m, false, __ATOMIC_RELAXED,
						  __ATOMIC_RELAXED))
		owner = m;
	*own = owner == m;
	return *own ? &hf->owned : &hf->shared;
}

/*
 * Set @mask in @word of a copy of the current half: a load alone when the bits are there, a
 * plain store in the owned copy (nobody else writes it while the half is current), an atomic
 * OR in the shared one. Skipping is safe because a taker clears this half only after it has
 * become the retired one and every writer that could have seen it current has left its mark
 * section: a bit we see set stays set until after we have left, and our data reaches the taker
 * through marks_exit().
 */
static inline void set_bits(uint64_t *word, uint64_t mask, bool own)
{
	uint64_t v = __atomic_load_n(word, __ATOMIC_RELAXED);

	if ((v & mask) == mask)
		return;
	if (own)
		__atomic_store_n(word, v | mask, __ATOMIC_RELAXED);
	else
		__atomic_fetch_or(word, mask, __ATOMIC_RELAXED);
}

/* Set the summary bits of words [w0, w1] of copy @c. */
static inline void mark_summary(struct pagelog_bits *c, uint64_t w0, uint64_t w1, bool own)
{
	uint64_t g0 = w0 >> GROUP_SHIFT, g1 = w1 >> GROUP_SHIFT;

	for (uint64_t s = g0 / 64; s <= g1 / 64; s++)
		set_bits(&c->summary[s],
			 bit_mask(s == g0 / 64 ? g0 % 64 : 0, s == g1 / 64 ? g1 % 64 : 63), own);
}

/*
 * Mark pages [b0, b1] (relative to the range) in the current half. Relaxed: the writer's data
 * and its marks reach a taker through marks_exit() and marks_wait().
 */
static inline void mark_pages(struct pagelog_range *r, struct marker *m, uint64_t b0, uint64_t b1)
{
	/* Acquire: pairs with the flip that made this half current after a take cleared it. */
	unsigned int h = __atomic_load_n(&r->cur, __ATOMIC_ACQUIRE);
	bool own;
	struct pagelog_bits *c = writer_copy(&r->half[h], m, &own);

	for (uint64_t w = b0 / 64; w <= b1 / 64; w++) {
		unsigned int from = w == b0 / 64 ? b0 % 64 : 0;
		unsigned int to = w == b1 / 64 ? b1 % 64 : 63;

		set_bits(&c->words[w], bit_mask(from, to), own);
	}
	mark_summary(c, b0 / 64, b1 / 64, own);
}

/* Mark [iova, last] in every range it meets; caller is in a mark section, log active. */
static void mark_locked(struct pagelog *log, struct marker *m, uint64_t iova, uint64_t last)
{
	uint32_t i = __atomic_load_n(&log->last_hit, __ATOMIC_RELAXED);

	if (i >= log->nranges || log->ranges[i].iova > iova || log->ranges[i].last < last)
		i = first_range_ending_at_or_after(log, iova);
	for (; i < log->nranges && log->ranges[i].iova <= last; i++) {
		struct pagelog_range *r = &log->ranges[i];
		uint64_t lo = iova > r->iova ? iova : r->iova;
		uint64_t hi = last < r->last ? last : r->last;

		mark_pages(r, m, (lo >> log->pgshift) - r->first_page,
			   (hi >> log->pgshift) - r->first_page);
		/* Stored only on a change: writers on other CPUs keep the line shared. */
		if (__atomic_load_n(&log->last_hit, __ATOMIC_RELAXED) != i)
			__atomic_store_n(&log->last_hit, i, __ATOMIC_RELAXED);
	}
}

static uint64_t last_byte(uint64_t iova, uint64_t length)
{
	uint64_t last;

	if (__builtin_add_overflow(iova, length - 1, &last))
		last = UINT64_MAX;
	return last;
}

/*
 * The common write, a few bytes: [iova, last] within one log word of the range last hit. Marks
 * it and returns true, or returns false having done nothing; caller is in a mark section, log
 * active.
 */
static inline bool mark_in_word(struct pagelog *log, struct marker *m, uint64_t iova, uint64_t last)
{
	uint32_t i = __atomic_load_n(&log->last_hit, __ATOMIC_RELAXED);
	unsigned int shift = log->pgshift;
	struct pagelog_range *r;
	struct pagelog_bits *c;
	uint64_t b0, b1;
	bool own;

	if (i >= log->nranges)
		return false;
	r = &log->ranges[i];
	if (iova < r->iova || last > r->last)
		return false;
	b0 = (iova >> shift) - r->first_page;
	b1 = (last >> shift) - r->first_page;
	if (b0 / 64 != b1 / 64)
		return false;
	/* Acquire: as in mark_pages(). */
	c = writer_copy(&r->half[__atomic_load_n(&r->cur, __ATOMIC_ACQUIRE)], m, &own);
	set_bits(&c->words[b0 / 64], bit_mask(b0 % 64, b1 % 64), own);
	set_bits(&c->summary[b0 / 64 >> GROUP_SHIFT >> 6], 1ULL << (b0 / 64 >> GROUP_SHIFT) % 64,
		 own);
	return true;
}

void pagelog_mark(struct pagelog *log, uint64_t iova, uint64_t length)
{
	struct marker *m;
	uint64_t last;

	if (!length)
		return;
	m = marks_enter();
	if (__atomic_load_n(&log->active, __ATOMIC_ACQUIRE)) {
		last = last_byte(iova, length);
		if (!mark_in_word(log, m, iova, last))
			mark_locked(log, m, iova, last);
	}
	marks_exit(m);
}

/* Marks of one word gathered from a burst, written with one store or atomic OR. */
struct pending {
	struct pagelog_range *r;
	uint64_t w;
	uint64_t mask;
};

static void flush_pending(struct pending *p, struct marker *m)
{
	struct pagelog_bits *c;
	unsigned int h;
	bool own;

	if (!p->mask)
		return;
	h = __atomic_load_n(&p->r->cur, __ATOMIC_ACQUIRE);
	c = writer_copy(&p->r->half[h], m, &own);
	set_bits(&c->words[p->w], p->mask, own);
	mark_summary(c, p->w, p->w, own);
	p->mask = 0;
}

/* The range holding page @iova, or NULL; caller is in a mark section, log active. */
static struct pagelog_range *range_of(struct pagelog *log, uint64_t iova)
{
	uint32_t i = __atomic_load_n(&log->last_hit, __ATOMIC_RELAXED);

	if (i >= log->nranges || log->ranges[i].iova > iova || log->ranges[i].last < iova) {
		i = first_range_ending_at_or_after(log, iova);
		if (i >= log->nranges || log->ranges[i].iova > iova)
			return NULL;
		__atomic_store_n(&log->last_hit, i, __ATOMIC_RELAXED);
	}
	return &log->ranges[i];
}

/* Entries of a burst between the one whose log word is asked for and the one being marked. */
#define MARK_LOOKAHEAD 32

/*
 * Ask for the log word of the page at @iova ahead of its OR: a locked OR waits for its cache
 * line before the next can start, where prefetches overlap, so a burst of scattered pages
 * pays one miss at a time without this. Only in the range last hit, the common case; a stale
 * half or range only wastes the prefetch.
 */
static inline void prefetch_mark(struct pagelog *log, struct marker *m, uint64_t iova,
				 unsigned int shift)
{
	uint32_t k = __atomic_load_n(&log->last_hit, __ATOMIC_RELAXED);
	struct pagelog_range *r;
	struct pagelog_half *hf;
	uint64_t page;

	if (k >= log->nranges)
		return;
	r = &log->ranges[k];
	if (iova < r->iova || iova > r->last)
		return;
	page = (iova >> shift) - r->first_page;
	hf = &r->half[__atomic_load_n(&r->cur, __ATOMIC_RELAXED)];
	__builtin_prefetch(
		&(__atomic_load_n(&hf->owner, __ATOMIC_RELAXED) == m ? hf->owned : hf->shared)
			 .words[page / 64],
		1, 3);
}

void pagelog_mark_list(struct pagelog *log, const uint64_t *iovas, uint64_t n, uint64_t length)
{
	struct pending p = {0};
	struct marker *m;
	unsigned int shift;

	if (!length || !n)
		return;
	m = marks_enter();
	if (!__atomic_load_n(&log->active, __ATOMIC_ACQUIRE))
		goto out;
	shift = log->pgshift;
	for (uint64_t i = 0; i < n && i < MARK_LOOKAHEAD; i++)
		prefetch_mark(log, m, iovas[i], shift);
	for (uint64_t i = 0; i < n; i++) {
		uint64_t last = last_byte(iovas[i], length);
		struct pagelog_range *r;
		uint64_t page;

		/* The hot case: another page of the word being gathered. */
		if (p.mask && iovas[i] >= p.r->iova && last <= p.r->last &&
		    (iovas[i] >> shift) == (last >> shift)) {
			page = (iovas[i] >> shift) - p.r->first_page;
			if (page / 64 == p.w) {
				p.mask |= 1ULL << (page % 64);
				continue;
			}
		}
		/* Not the word being gathered: scattered pages, where asking ahead pays. */
		if (i + MARK_LOOKAHEAD < n)
			prefetch_mark(log, m, iovas[i + MARK_LOOKAHEAD], shift);

		/* Writes within one page (the common burst) gather per word. */
		if ((iovas[i] >> shift) != (last >> shift) || !(r = range_of(log, iovas[i]))) {
			flush_pending(&p, m);
			mark_locked(log, m, iovas[i], last);
			continue;
		}
		page = (iovas[i] >> shift) - r->first_page;
		if (p.r != r || p.w != page / 64) {
			flush_pending(&p, m);
			p.r = r;
			p.w = page / 64;
		}
		p.mask |= 1ULL << (page % 64);
	}
	flush_pending(&p, m);
out:
	marks_exit(m);
}

/*
 * Put bits a take must keep back into the current half's shared copy: writers may be marking
 * it, its owner with plain stores into the other copy.
 */
static void keep_bits(struct pagelog_range *r, uint64_t w, uint64_t bits)
{
	/* Only a taker flips cur, and we are the taker: a plain read. */
	struct pagelog_bits *c = &r->half[r->cur].shared;

	__atomic_fetch_or(&c->words[w], bits, __ATOMIC_RELAXED);
	mark_summary(c, w, w, false);
}

/* What one take of a range needs: pages relative to the range, as [first, last] or [lo, end). */
struct take {
	struct pagelog_range *r;
	unsigned int shift;
	uint64_t b0, b1;      /* pages to report */
	uint64_t c_lo, c_end; /* pages to clear */
	pagelog_fn fn;
	void *opaque;
};

static uint64_t page_iova(const struct take *t, uint64_t word)
{
	return (t->r->first_page + word * 64) << t->shift;
}

/* An edge word of the take: report the bits in range, keep what may not be cleared. */
static void take_edge_word(const struct take *t, uint64_t *retired, uint64_t w)
{
	uint64_t v = retired[w], page0 = w * 64, rmask, cmask = 0;

	if (!v)
		return;
	rmask = bit_mask(w == t->b0 / 64 ? t->b0 % 64 : 0, w == t->b1 / 64 ? t->b1 % 64 : 63);
	if (t->c_lo < page0 + 64 && t->c_end > page0) {
		uint64_t lo = t->c_lo > page0 ? t->c_lo - page0 : 0;
		uint64_t end = t->c_end < page0 + 64 ? t->c_end - page0 : 64;

		cmask = bit_mask(lo, end - 1);
	}
	retired[w] = 0;
	if (v & ~(rmask & cmask))
		keep_bits(t->r, w, v & ~(rmask & cmask));
	v &= rmask;
	if (v)
		t->fn(t->opaque, page_iova(t, w), t->shift, &v, 64);
}

/* Words [a, b) of the retired half, from summary groups that are set. */
static void take_words(const struct take *t, uint64_t *retired, uint64_t a, uint64_t b)
{
	uint64_t w0 = t->b0 / 64, w1 = t->b1 / 64;

	/* Outside the take: everything goes back. */
	for (uint64_t w = a; w < b && w < w0; w++) {
		if (retired[w])
			keep_bits(t->r, w, retired[w]);
		retired[w] = 0;
	}
	for (uint64_t w = w1 + 1 > a ? w1 + 1 : a; w < b; w++) {
		if (retired[w])
			keep_bits(t->r, w, retired[w]);
		retired[w] = 0;
	}
	if (a < w0)
		a = w0;
	if (b > w1 + 1)
		b = w1 + 1;
	if (a >= b)
		return;
	if (a == w0)
		take_edge_word(t, retired, a++);
	if (a < b && b - 1 == w1)
		take_edge_word(t, retired, --b);
	/*
	 * Between the edge words every page is reported and wholly inside the clear bounds. In
	 * pieces, each cleared while the caller's read of it is still in the first-level cache.
	 */
	for (uint64_t n; a < b; a += n) {
		n = b - a < TAKE_PIECE_WORDS ? b - a : TAKE_PIECE_WORDS;
		t->fn(t->opaque, page_iova(t, a), t->shift, &retired[a], n * 64);
		memset(&retired[a], 0, n * sizeof(uint64_t));
	}
}

/* OR the retired half's shared copy into its owned copy, leaving the shared one all zero. */
static void fold_shared(struct pagelog_range *r, struct pagelog_half *hf)
{
	uint64_t nsum = words_for(words_for(r->nwords));

	for (uint64_t s = 0; s < nsum; s++) {
		uint64_t groups = hf->shared.summary[s];

		if (!groups)
			continue;
		hf->owned.summary[s] |= groups;
		hf->shared.summary[s] = 0;
		for (; groups; groups &= groups - 1) {
			uint64_t w = (s * 64 + __builtin_ctzll(groups)) << GROUP_SHIFT;
			uint64_t end = w + (1 << GROUP_SHIFT) < r->nwords ? w + (1 << GROUP_SHIFT)
									  : r->nwords;

			for (; w < end; w++) {
				hf->owned.words[w] |= hf->shared.words[w];
				hf->shared.words[w] = 0;
			}
		}
	}
}

static void take_range(struct take *t)
{
	struct pagelog_range *r = t->r;
	struct pagelog_half *hf = &r->half[!r->cur];
	uint64_t ngroups = (r->nwords + 63) >> GROUP_SHIFT;
	uint64_t nsum = words_for(ngroups);
	uint64_t *retired = hf->owned.words, *summary = hf->owned.summary;

	fold_shared(r, hf);

	/* Runs of set summary bits become one call each. */
	for (uint64_t g = 0; g < ngroups;) {
		uint64_t s = summary[g / 64] >> (g % 64), run_end;

		if (!s) {
			g = (g / 64 + 1) * 64;
			continue;
		}
		g += __builtin_ctzll(s);
		run_end = g;
		while (run_end < ngroups && (summary[run_end / 64] >> (run_end % 64) & 1))
			run_end++;
		take_words(t, retired, g << GROUP_SHIFT,
			   (run_end << GROUP_SHIFT) < r->nwords ? run_end << GROUP_SHIFT
								: r->nwords);
		g = run_end;
	}
	memset(summary, 0, nsum * sizeof(uint64_t));
	/* No writer is in the half now: the next flip publishes the free claim with it. */
	__atomic_store_n(&hf->owner, NULL, __ATOMIC_RELAXED);
}

int pagelog_take(struct pagelog *log, uint64_t iova, uint64_t last, uint64_t clear_first,
		 uint64_t clear_last, pagelog_fn fn, void *opaque)
{
	unsigned int shift = log->pgshift;
	uint64_t c_first, c_end;

	uint32_t first;

	if (!__atomic_load_n(&log->active, __ATOMIC_RELAXED))
		return -EINVAL;
	if (clear_first > iova || clear_last < last) {
		clear_first = iova;
		clear_last = last;
	}
	/* Absolute pages wholly inside: the first starting at or after clear_first, up to the
	 * last ending by clear_last. */
	c_first = (clear_first >> shift) + ((clear_first & ((1ULL << shift) - 1)) != 0);
	c_end = clear_last == UINT64_MAX ? (1ULL << (64 - shift)) : (clear_last + 1) >> shift;

	/*
	 * The flip: writers mark the other half from here; once those still inside a section
	 * (who may have read the old cur) are out, the retired halves are ours alone.
	 */
	first = first_range_ending_at_or_after(log, iova);
	if (first >= log->nranges || log->ranges[first].iova > last)
		return 0; /* nothing tracked there */
	for (uint32_t i = first; i < log->nranges && log->ranges[i].iova <= last; i++)
		__atomic_store_n(&log->ranges[i].cur, !log->ranges[i].cur, __ATOMIC_SEQ_CST);
	marks_wait();

	for (uint32_t i = first; i < log->nranges && log->ranges[i].iova <= last; i++) {
		struct pagelog_range *r = &log->ranges[i];
		uint64_t lo = iova > r->iova ? iova : r->iova;
		uint64_t hi = last < r->last ? last : r->last;
		struct take t = {
			.r = r,
			.shift = shift,
			.b0 = (lo >> shift) - r->first_page,
			.b1 = (hi >> shift) - r->first_page,
			.c_lo = c_first > r->first_page ? c_first - r->first_page : 0,
			.c_end = c_end > r->first_page ? c_end - r->first_page : 0,
			.fn = fn,
			.opaque = opaque,
		};

		take_range(&t);
	}
	return 0;
}
