// SPDX-License-Identifier: MIT
/*
 * Emulated I/O page table (AMD v1 PTE layout) with dirty bits, an IOTLB, and DMA
 * translation. Map, unmap, tracking and read-and-clear are serialised by one mutex; DMA
 * translation is lock-free (PTEs change only by atomic operations, and tables are freed only
 * at destroy).
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include <dmalog/iopt.h>

#include "iotlb.h"
#include "table_pool.h"
#include "core/reserved.h"

#define LEVELS	      4
#define PTES_PER_PAGE 512
#define IOVA_LIMIT    (1ULL << DMALOG_IOPT_IOVA_BITS)
#define SZ_TABLE      (1ULL << 21) /* IOVA covered by one table of 4 KiB leaves */

struct dmalog_iopt_dma {
	struct dmalog_iopt *iopt;
	uint64_t seq; /* odd while an access is in flight */
	uint64_t hits, misses, faults;
	struct dmalog_iopt_dma *next;
};

struct dmalog_iopt {
	uint64_t *root;
	pthread_mutex_t lock; /* map, unmap, tracking, read-and-clear */
	bool tracking;
	unsigned int debug;
	struct iotlb *tlb;
	uint64_t gen; /* invalidation generation, bumped before each flush */
	uint64_t invalidations;

	struct table_pool tables; /* every page-table page, freed at destroy */

	pthread_mutex_t dma_lock;
	struct dmalog_iopt_dma *dmas;
	uint64_t gone_hits, gone_misses, gone_faults; /* from destroyed DMA contexts */
};

static unsigned int level_shift(int level)
{
	return 12 + 9 * (level - 1);
}

static uint64_t level_size(int level)
{
	return 1ULL << level_shift(level);
}

static unsigned int level_index(uint64_t iova, int level)
{
	return (iova >> level_shift(level)) & (PTES_PER_PAGE - 1);
}

static uint64_t *pte_table(uint64_t pte)
{
	return (uint64_t *)(uintptr_t)(pte & DMALOG_IOPT_PTE_ADDR);
}

static bool pte_is_leaf(uint64_t pte, int level)
{
	return level == 1 || ((pte >> 9) & 7) == 0;
}

static uint64_t load_pte(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static uint64_t *alloc_table(struct dmalog_iopt *iopt)
{
	return table_pool_alloc(&iopt->tables);
}

int dmalog_iopt_create(const struct dmalog_iopt_config *cfg, struct dmalog_iopt **out)
{
	uint32_t entries = cfg && cfg->iotlb_entries ? cfg->iotlb_entries : 1024;
	struct dmalog_iopt *iopt;
	int ret;

	if (cfg && (cfg->reserved32 || !RESERVED_ZERO(cfg)))
		return -EINVAL;
	iopt = calloc(1, sizeof(*iopt));
	if (!iopt)
		return -ENOMEM;
	ret = iotlb_create(entries, &iopt->tlb);
	if (ret) {
		free(iopt);
		return ret;
	}
	iopt->root = alloc_table(iopt);
	if (!iopt->root) {
		iotlb_destroy(iopt->tlb);
		free(iopt);
		return -ENOMEM;
	}
	pthread_mutex_init(&iopt->lock, NULL);
	pthread_mutex_init(&iopt->dma_lock, NULL);
	*out = iopt;
	return 0;
}

void dmalog_iopt_destroy(struct dmalog_iopt *iopt)
{
	if (!iopt)
		return;
	table_pool_destroy(&iopt->tables);
	iotlb_destroy(iopt->tlb);
	pthread_mutex_destroy(&iopt->lock);
	pthread_mutex_destroy(&iopt->dma_lock);
	free(iopt);
}

/* The PTE slot for @iova at @level, creating tables on the way if @create. */
static uint64_t *get_slot(struct dmalog_iopt *iopt, uint64_t iova, int level, bool create)
{
	uint64_t *table = iopt->root;

	for (int l = LEVELS; l > level; l--) {
		uint64_t *p = &table[level_index(iova, l)];
		uint64_t pte = load_pte(p);

		if (!(pte & DMALOG_IOPT_PTE_PR)) {
			uint64_t *next;

			if (!create)
				return NULL;
			next = alloc_table(iopt);
			if (!next)
				return NULL;
			pte = DMALOG_IOPT_PTE_PR | DMALOG_IOPT_PTE_NL(l - 1) | (uintptr_t)next;
			__atomic_store_n(p, pte, __ATOMIC_RELEASE);
		} else if (pte_is_leaf(pte, l)) {
			return NULL;
		}
		table = pte_table(pte);
	}
	return &table[level_index(iova, level)];
}

/* Calls @leaf for each present leaf overlapping [lo, hi]; @hole for each absent stretch. */
struct walk {
	int (*leaf)(struct walk *w, uint64_t *p, uint64_t pte, int level, uint64_t base);
	int (*hole)(struct walk *w, uint64_t lo, uint64_t hi);
	/* A whole table of 4 KiB leaves at once (may be NULL: then leaf is called per PTE). */
	int (*leaf_table)(struct walk *w, uint64_t *t, uint64_t base, unsigned int first,
			  unsigned int last);
};

/*
 * Tables are separate pages: the CPU's prefetcher stops at each one's end and a scan of
 * clean tables would wait on memory at every table. Ask for the table of leaves after the
 * next one while this one is scanned (the next was asked for a table ago).
 */
static inline void prefetch_next_table(const uint64_t *table, unsigned int i)
{
	uint64_t next =
		i + 2 < PTES_PER_PAGE ? __atomic_load_n(&table[i + 2], __ATOMIC_RELAXED) : 0;

	if (!(next & DMALOG_IOPT_PTE_PR) || pte_is_leaf(next, 2))
		return;
	for (unsigned int off = 0; off < 4096; off += 64)
		__builtin_prefetch((const char *)pte_table(next) + off);
}

static int walk(struct walk *w, uint64_t *table, int level, uint64_t lo, uint64_t hi)
{
	uint64_t size = level_size(level);

	for (unsigned int i = level_index(lo, level);; i++) {
		uint64_t base = (lo & ~(size - 1)) + (uint64_t)(i - level_index(lo, level)) * size;
		uint64_t sub_lo = base > lo ? base : lo, end = base + size - 1;
		uint64_t sub_hi = end < hi ? end : hi;
		uint64_t pte = load_pte(&table[i]);
		int ret = 0;

		if (!(pte & DMALOG_IOPT_PTE_PR)) {
			if (w->hole)
				ret = w->hole(w, sub_lo, sub_hi);
		} else if (pte_is_leaf(pte, level)) {
			ret = w->leaf(w, &table[i], pte, level, base);
		} else if (level == 2 && w->leaf_table) {
			prefetch_next_table(table, i);
			ret = w->leaf_table(w, pte_table(pte), base, level_index(sub_lo, 1),
					    level_index(sub_hi, 1));
		} else {
			ret = walk(w, pte_table(pte), level - 1, sub_lo, sub_hi);
		}
		if (ret || sub_hi == hi || i == PTES_PER_PAGE - 1)
			return ret;
	}
}

static int walk_range(struct dmalog_iopt *iopt, struct walk *w, uint64_t lo, uint64_t hi)
{
	return walk(w, iopt->root, LEVELS, lo, hi);
}

static int found_leaf(struct walk *w, uint64_t *p, uint64_t pte, int level, uint64_t base)
{
	return -EEXIST;
}

static bool valid_range(uint64_t iova, uint64_t length)
{
	return length && iova < IOVA_LIMIT && length <= IOVA_LIMIT - iova;
}

/* Wait until every DMA access that was in flight when we got here has finished. */
static void wait_dma(struct dmalog_iopt *iopt)
{
	/* Pairs with the fence in dma_begin: either we see its odd sequence, or it sees our
	 * invalidation and cleared bits. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	pthread_mutex_lock(&iopt->dma_lock);
	for (struct dmalog_iopt_dma *d = iopt->dmas; d; d = d->next) {
		uint64_t s = __atomic_load_n(&d->seq, __ATOMIC_SEQ_CST);

		while ((s & 1) && __atomic_load_n(&d->seq, __ATOMIC_ACQUIRE) == s)
			sched_yield();
	}
	pthread_mutex_unlock(&iopt->dma_lock);
}

/* Invalidate the IOTLB for [lo, hi] and wait out DMA through old entries. */
static void flush_and_wait(struct dmalog_iopt *iopt, uint64_t lo, uint64_t hi)
{
	unsigned int debug = __atomic_load_n(&iopt->debug, __ATOMIC_RELAXED);

	if (!(debug & DMALOG_IOPT_DEBUG_SKIP_INVALIDATE)) {
		__atomic_fetch_add(&iopt->gen, 1, __ATOMIC_SEQ_CST);
		iotlb_invalidate(iopt->tlb, lo >> 12, hi >> 12);
		__atomic_fetch_add(&iopt->invalidations, 1, __ATOMIC_RELAXED);
	}
	if (!(debug & DMALOG_IOPT_DEBUG_SKIP_DMA_WAIT))
		wait_dma(iopt);
}

/* Whether a leaf one level up could map the next part. */
static bool bigger_leaf_fits(int level, uint64_t iova, uint64_t pa, uint64_t rem)
{
	uint64_t size = level_size(level + 1);

	return level < 3 && !((iova | pa) & (size - 1)) && rem >= size;
}

static int map_leaves(struct dmalog_iopt *iopt, uint64_t iova, uint64_t length, uint64_t pa,
		      uint64_t prot_bits, int top_level, uint64_t *done)
{
	for (*done = 0; *done < length;) {
		uint64_t cur = iova + *done, cpa = pa + *done, rem = length - *done;
		int level;

		for (level = top_level; level >= 1; level--) {
			uint64_t size = level_size(level), *slot;

			if ((cur | cpa) & (size - 1) || rem < size)
				continue;
			slot = get_slot(iopt, cur, level, true);
			if (!slot)
				return -ENOMEM;
			/* An empty table left by an earlier unmap: map smaller leaves into it. */
			if (load_pte(slot) & DMALOG_IOPT_PTE_PR)
				continue;
			/* Fill this table's run of free slots without walking again. */
			for (unsigned int i = level_index(cur, level);;) {
				__atomic_store_n(slot, DMALOG_IOPT_PTE_PR | prot_bits | cpa,
						 __ATOMIC_RELEASE);
				*done += size;
				cur += size;
				cpa += size;
				rem -= size;
				if (++i == PTES_PER_PAGE || rem < size ||
				    (level < top_level && bigger_leaf_fits(level, cur, cpa, rem)) ||
				    (load_pte(++slot) & DMALOG_IOPT_PTE_PR))
					break;
			}
			break;
		}
		if (level < 1)
			return -ENOMEM;
	}
	return 0;
}

static int leaf_clear(struct walk *w, uint64_t *p, uint64_t pte, int level, uint64_t base)
{
	__atomic_store_n(p, 0, __ATOMIC_RELEASE);
	return 0;
}

int dmalog_iopt_map(struct dmalog_iopt *iopt, uint64_t iova, uint64_t length, uint64_t pa,
		    unsigned int prot)
{
	struct walk any = {.leaf = found_leaf};
	uint64_t bits = 0, done;
	int ret;

	if (!valid_range(iova, length) || ((iova | length | pa) & 0xfff) ||
	    pa > DMALOG_IOPT_PTE_ADDR || length > DMALOG_IOPT_PTE_ADDR - pa + 1 ||
	    (prot & ~(DMALOG_IOPT_READ | DMALOG_IOPT_WRITE | DMALOG_IOPT_NO_HUGE)))
		return -EINVAL;
	if (prot & DMALOG_IOPT_READ)
		bits |= DMALOG_IOPT_PTE_IR;
	if (prot & DMALOG_IOPT_WRITE)
		bits |= DMALOG_IOPT_PTE_IW;
	pthread_mutex_lock(&iopt->lock);
	ret = walk_range(iopt, &any, iova, iova + length - 1);
	if (!ret) {
		ret = map_leaves(iopt, iova, length, pa, bits, prot & DMALOG_IOPT_NO_HUGE ? 1 : 3,
				 &done);
		if (ret && done) {
			struct walk undo = {.leaf = leaf_clear};

			walk_range(iopt, &undo, iova, iova + done - 1);
		}
	}
	pthread_mutex_unlock(&iopt->lock);
	return ret;
}

struct unmap_check {
	struct walk w;
	uint64_t lo, hi;
};

static int unmap_hole(struct walk *w, uint64_t lo, uint64_t hi)
{
	return -ENOENT;
}

static int unmap_leaf_inside(struct walk *w, uint64_t *p, uint64_t pte, int level, uint64_t base)
{
	struct unmap_check *c = (struct unmap_check *)w;

	return base < c->lo || base + level_size(level) - 1 > c->hi ? -EINVAL : 0;
}

int dmalog_iopt_unmap(struct dmalog_iopt *iopt, uint64_t iova, uint64_t length)
{
	struct unmap_check check = {
		.w = {.leaf = unmap_leaf_inside, .hole = unmap_hole},
		.lo = iova,
		.hi = iova + length - 1,
	};
	struct walk clear = {.leaf = leaf_clear};
	int ret;

	if (!valid_range(iova, length) || ((iova | length) & 0xfff))
		return -EINVAL;
	pthread_mutex_lock(&iopt->lock);
	ret = walk_range(iopt, &check.w, check.lo, check.hi);
	if (!ret) {
		walk_range(iopt, &clear, check.lo, check.hi);
		flush_and_wait(iopt, check.lo, check.hi);
	}
	pthread_mutex_unlock(&iopt->lock);
	return ret;
}

struct dirty_walk {
	struct walk w;
	uint64_t lo, hi;     /* the leaves to visit: those overlapping the window */
	uint64_t c_lo, c_hi; /* only leaves wholly inside are cleaned: the whole report */
	uint64_t f_lo, f_hi; /* what the cleaned leaves span, to invalidate */
	bool clear;
	bool cleared;
	struct dmalog_iova_bitmap *bm;
};

static bool leaf_inside(const struct dirty_walk *d, uint64_t base, uint64_t size)
{
	return base >= d->c_lo && base + size - 1 <= d->c_hi;
}

static void note_cleaned(struct dirty_walk *d, uint64_t lo, uint64_t hi)
{
	if (!d->cleared || lo < d->f_lo)
		d->f_lo = lo;
	if (!d->cleared || hi > d->f_hi)
		d->f_hi = hi;
	d->cleared = true;
}

static int dirty_leaf(struct walk *w, uint64_t *p, uint64_t pte, int level, uint64_t base)
{
	struct dirty_walk *d = (struct dirty_walk *)w;
	uint64_t size = level_size(level);

	if (!(pte & DMALOG_IOPT_PTE_D))
		return 0;
	if (d->bm)
		dmalog_iova_bitmap_set(d->bm, base, size);
	if (d->clear && leaf_inside(d, base, size)) {
		__atomic_fetch_and(p, ~DMALOG_IOPT_PTE_D, __ATOMIC_ACQ_REL);
		note_cleaned(d, base, base + size - 1);
	}
	return 0;
}

/*
 * The dense path: one table of 4 KiB leaves, gathered into a 512-bit mask and cleaned in one
 * pass, then handed to the bitmap writer at once.
 */
static int dirty_leaf_table(struct walk *w, uint64_t *t, uint64_t base, unsigned int first,
			    unsigned int last)
{
	const uint64_t want = DMALOG_IOPT_PTE_PR | DMALOG_IOPT_PTE_D;
	struct dirty_walk *d = (struct dirty_walk *)w;
	uint64_t mask[PTES_PER_PAGE / 64] = {0}, any = 0, cleaned = 0;
	/* Pages wholly inside the clear bounds, the ones a clear may clean: [c_lo, c_end). */
	uint64_t c_lo = base >= d->c_lo ? 0 : (d->c_lo - base + 4095) >> 12;
	uint64_t c_end = d->c_hi < base				       ? 0
			 : d->c_hi - base >= (PTES_PER_PAGE << 12) - 1 ? PTES_PER_PAGE
								       : (d->c_hi + 1 - base) >> 12;

	for (unsigned int wi = first / 64; wi <= last / 64; wi++) {
		unsigned int lo = wi == first / 64 ? first % 64 : 0;
		unsigned int hi = wi == last / 64 ? last % 64 : 63;
		uint64_t *p = &t[wi * 64], acc = 0;

		/* Clean tables are the common case: OR 64 PTEs together, test once. */
		for (unsigned int i = lo; i <= hi; i++)
			acc |= __atomic_load_n(&p[i], __ATOMIC_RELAXED);
		if (!(acc & DMALOG_IOPT_PTE_D))
			continue;
		for (unsigned int i = lo; i <= hi; i++) {
			uint64_t pte = __atomic_load_n(&p[i], __ATOMIC_RELAXED);
			unsigned int idx = wi * 64 + i;

			if ((pte & want) != want)
				continue;
			mask[wi] |= 1ULL << i;
			any = 1;
			/*
			 * A store, not a locked AND: the only concurrent writers are DMA walks
			 * setting D (or A), and any walk this could overwrite is in flight, so
			 * the invalidate-and-wait that follows lets its data land before we
			 * return and makes its next write walk again and set D anew.
			 */
			if (d->clear && idx >= c_lo && idx < c_end) {
				__atomic_store_n(&p[i], pte & ~DMALOG_IOPT_PTE_D, __ATOMIC_RELAXED);
				cleaned = 1;
			}
		}
	}
	if (!any)
		return 0;
	if (cleaned)
		note_cleaned(d, base + ((uint64_t)first << 12),
			     base + ((uint64_t)last << 12) + 4095);
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	if (d->bm)
		dmalog_iova_bitmap_set_from(d->bm, base, 12, mask, PTES_PER_PAGE);
	return 0;
}

static void dirty_walk_locked(struct dmalog_iopt *iopt, struct dirty_walk *d)
{
	walk_range(iopt, &d->w, d->lo, d->hi);
	if (d->cleared)
		flush_and_wait(iopt, d->f_lo, d->f_hi);
}

int dmalog_iopt_read_and_clear_dirty(struct dmalog_iopt *iopt, uint64_t iova, uint64_t length,
				     unsigned int flags, struct dmalog_iova_bitmap *dirty)
{
	struct dirty_walk d = {
		.w = {.leaf = dirty_leaf, .leaf_table = dirty_leaf_table},
		.lo = iova,
		.hi = iova + length - 1,
		.c_lo = iova,
		.c_hi = iova + length - 1,
		.clear = !(flags & DMALOG_IOPT_NO_CLEAR),
		.bm = dirty,
	};

	if (flags & ~DMALOG_IOPT_NO_CLEAR)
		return -EINVAL;
	if (!length)
		return 0;
	/* A window of a longer report: clean what the whole report covers (see dmalog_log_ops). */
	if (dirty) {
		uint64_t first, last;

		dmalog_iova_bitmap_span(dirty, &first, &last);
		if (first <= d.lo && last >= d.hi) {
			d.c_lo = first;
			d.c_hi = last;
		}
	}
	if (!valid_range(iova, length))
		return -EINVAL;
	/* One-shot: the IOMMU could not read its tables this time. */
	if (__atomic_fetch_and(&iopt->debug, ~(unsigned int)DMALOG_IOPT_DEBUG_FAIL_READ,
			       __ATOMIC_RELAXED) &
	    DMALOG_IOPT_DEBUG_FAIL_READ)
		return -EIO;
	pthread_mutex_lock(&iopt->lock);
	dirty_walk_locked(iopt, &d);
	pthread_mutex_unlock(&iopt->lock);
	return 0;
}

bool dmalog_iopt_dirty_tracking(struct dmalog_iopt *iopt)
{
	return __atomic_load_n(&iopt->tracking, __ATOMIC_SEQ_CST);
}

int dmalog_iopt_set_dirty_tracking(struct dmalog_iopt *iopt, bool enable)
{
	/* Enabling forgets stale D bits: a walk over everything that clears and records nothing. */
	struct dirty_walk d = {
		.w = {.leaf = dirty_leaf, .leaf_table = dirty_leaf_table},
		.lo = 0,
		.hi = IOVA_LIMIT - 1,
		.c_lo = 0,
		.c_hi = IOVA_LIMIT - 1,
		.clear = true,
	};

	pthread_mutex_lock(&iopt->lock);
	__atomic_store_n(&iopt->tracking, enable, __ATOMIC_SEQ_CST);
	if (enable)
		dirty_walk_locked(iopt, &d);
	flush_and_wait(iopt, 0, IOVA_LIMIT - 1);
	pthread_mutex_unlock(&iopt->lock);
	return 0;
}

int dmalog_iopt_dma_create(struct dmalog_iopt *iopt, struct dmalog_iopt_dma **out)
{
	struct dmalog_iopt_dma *dma = calloc(1, sizeof(*dma));

	if (!dma)
		return -ENOMEM;
	dma->iopt = iopt;
	pthread_mutex_lock(&iopt->dma_lock);
	dma->next = iopt->dmas;
	iopt->dmas = dma;
	pthread_mutex_unlock(&iopt->dma_lock);
	*out = dma;
	return 0;
}

void dmalog_iopt_dma_destroy(struct dmalog_iopt_dma *dma)
{
	struct dmalog_iopt *iopt;

	if (!dma)
		return;
	iopt = dma->iopt;
	pthread_mutex_lock(&iopt->dma_lock);
	for (struct dmalog_iopt_dma **pp = &iopt->dmas; *pp; pp = &(*pp)->next) {
		if (*pp == dma) {
			*pp = dma->next;
			break;
		}
	}
	iopt->gone_hits += dma->hits;
	iopt->gone_misses += dma->misses;
	iopt->gone_faults += dma->faults;
	pthread_mutex_unlock(&iopt->dma_lock);
	free(dma);
}

/*
 * A DMA context's counters have one writer, its thread: a relaxed load and store, no locked
 * add (readers of the statistics see a value that was true a moment ago).
 */
static inline void count(uint64_t *stat)
{
	__atomic_store_n(stat, __atomic_load_n(stat, __ATOMIC_RELAXED) + 1, __ATOMIC_RELAXED);
}

static void dma_fault(struct dmalog_iopt_dma *dma)
{
	count(&dma->faults);
	dmalog_iopt_dma_end(dma);
}

/* Walk the table as the IOMMU does on an IOTLB miss; a write sets D when tracking. */
static int translate_walk(struct dmalog_iopt *iopt, uint64_t iova, bool write, struct iotlb_val *v)
{
	uint64_t *table = iopt->root;

	for (int level = LEVELS; level >= 1; level--) {
		uint64_t *p = &table[level_index(iova, level)];
		uint64_t pte = load_pte(p);

		if (!(pte & DMALOG_IOPT_PTE_PR) || (level == LEVELS && pte_is_leaf(pte, level)))
			return -EFAULT;
		if (!pte_is_leaf(pte, level)) {
			table = pte_table(pte);
			continue;
		}
		if (!(pte & (write ? DMALOG_IOPT_PTE_IW : DMALOG_IOPT_PTE_IR)))
			return -EFAULT;
		v->writable = pte & DMALOG_IOPT_PTE_IW;
		v->dirty = false;
		if (write && __atomic_load_n(&iopt->tracking, __ATOMIC_RELAXED)) {
			/* Hardware's atomic D update, before the data lands. */
			if ((pte & (DMALOG_IOPT_PTE_D | DMALOG_IOPT_PTE_A)) !=
			    (DMALOG_IOPT_PTE_D | DMALOG_IOPT_PTE_A))
				__atomic_fetch_or(p, DMALOG_IOPT_PTE_D | DMALOG_IOPT_PTE_A,
						  __ATOMIC_ACQ_REL);
			v->dirty = true;
		} else if (!(pte & DMALOG_IOPT_PTE_A)) {
			__atomic_fetch_or(p, DMALOG_IOPT_PTE_A, __ATOMIC_RELAXED);
		}
		v->pa = ((pte & DMALOG_IOPT_PTE_ADDR) + (iova & (level_size(level) - 1))) &
			~0xfffULL;
		return 0;
	}
	return -EFAULT;
}

int dmalog_iopt_dma_begin(struct dmalog_iopt_dma *dma, uint64_t iova, bool write, uint64_t *pa,
			  uint64_t *room)
{
	struct dmalog_iopt *iopt = dma->iopt;
	uint64_t s = __atomic_load_n(&dma->seq, __ATOMIC_RELAXED), gen;
	struct iotlb_val v;

	/* In flight from here: pairs with the fence in wait_dma(). */
	__atomic_store_n(&dma->seq, s + 1, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (iova >= IOVA_LIMIT) {
		dma_fault(dma);
		return -EFAULT;
	}
	if (iotlb_lookup(iopt->tlb, iova >> 12, &v) && (!write || v.writable) &&
	    (!write || v.dirty || !__atomic_load_n(&iopt->tracking, __ATOMIC_RELAXED))) {
		count(&dma->hits);
	} else {
		count(&dma->misses);
		gen = __atomic_load_n(&iopt->gen, __ATOMIC_SEQ_CST);
		if (translate_walk(iopt, iova, write, &v)) {
			dma_fault(dma);
			return -EFAULT;
		}
		iotlb_fill(iopt->tlb, iova >> 12, &v, gen, &iopt->gen);
	}
	*pa = v.pa + (iova & 0xfff);
	*room = 4096 - (iova & 0xfff);
	return 0;
}

void dmalog_iopt_dma_end(struct dmalog_iopt_dma *dma)
{
	__atomic_store_n(&dma->seq, __atomic_load_n(&dma->seq, __ATOMIC_RELAXED) + 1,
			 __ATOMIC_RELEASE);
}

void dmalog_iopt_get_stats(struct dmalog_iopt *iopt, struct dmalog_iopt_stats *st)
{
	memset(st, 0, sizeof(*st));
	pthread_mutex_lock(&iopt->dma_lock);
	st->iotlb_hits = iopt->gone_hits;
	st->iotlb_misses = iopt->gone_misses;
	st->faults = iopt->gone_faults;
	for (struct dmalog_iopt_dma *d = iopt->dmas; d; d = d->next) {
		st->iotlb_hits += __atomic_load_n(&d->hits, __ATOMIC_RELAXED);
		st->iotlb_misses += __atomic_load_n(&d->misses, __ATOMIC_RELAXED);
		st->faults += __atomic_load_n(&d->faults, __ATOMIC_RELAXED);
	}
	pthread_mutex_unlock(&iopt->dma_lock);
	st->invalidations = __atomic_load_n(&iopt->invalidations, __ATOMIC_RELAXED);
	pthread_mutex_lock(&iopt->lock);
	st->tables = iopt->tables.ntables;
	pthread_mutex_unlock(&iopt->lock);
}

void dmalog_iopt_set_debug(struct dmalog_iopt *iopt, unsigned int debug_flags)
{
	__atomic_store_n(&iopt->debug, debug_flags, __ATOMIC_RELAXED);
}

uint64_t dmalog_iopt_read_pte(struct dmalog_iopt *iopt, uint64_t iova, uint64_t *leaf_size)
{
	uint64_t *table = iopt->root;

	if (iova >= IOVA_LIMIT)
		return 0;
	for (int level = LEVELS; level >= 1; level--) {
		uint64_t pte = load_pte(&table[level_index(iova, level)]);

		if (!(pte & DMALOG_IOPT_PTE_PR))
			return 0;
		if (pte_is_leaf(pte, level)) {
			if (leaf_size)
				*leaf_size = level_size(level);
			return pte;
		}
		table = pte_table(pte);
	}
	return 0;
}
