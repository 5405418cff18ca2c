// SPDX-License-Identifier: MIT
/*
 * The emulated I/O page table: map/unmap errnos, the AMD v1 leaf layout, DMA translation and
 * faults, dirty bits (seed-digest behaviours 94, 95, 99, 100, 101), and the IOTLB rule: a test
 * that skips the invalidation loses a write, and one that skips the wait returns before an
 * in-flight write has landed.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"

struct fixture {
	struct dmalog_iopt *iopt;
	struct dmalog_iopt_dma *dma;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_int_equal(dmalog_iopt_create(NULL, &f->iopt), 0);
	assert_int_equal(dmalog_iopt_dma_create(f->iopt, &f->dma), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	dmalog_iopt_dma_destroy(f->dma);
	dmalog_iopt_destroy(f->iopt);
	free(f);
	return 0;
}

#define RW (DMALOG_IOPT_READ | DMALOG_IOPT_WRITE)

/* One DMA access: translate, (pretend to) move the data, end. */
static int dma(struct fixture *f, uint64_t iova, bool write, uint64_t *pa)
{
	uint64_t p, room;
	int ret = dmalog_iopt_dma_begin(f->dma, iova, write, &p, &room);

	if (!ret) {
		assert_true(room >= 1 && room <= 4096);
		dmalog_iopt_dma_end(f->dma);
		if (pa)
			*pa = p;
	}
	return ret;
}

/* Report [iova, iova + len) at @page into a fresh bitmap of @words words. */
static void report(struct fixture *f, uint64_t iova, uint64_t len, uint64_t page,
		   unsigned int flags, uint64_t *bitmap, size_t words)
{
	struct dmalog_iova_bitmap bm;

	memset(bitmap, 0, words * 8);
	assert_int_equal(dmalog_iova_bitmap_init(&bm, iova, len, page, bitmap, 0), 0);
	assert_int_equal(dmalog_iopt_read_and_clear_dirty(f->iopt, iova, len, flags, &bm), 0);
}

static void map_errors(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(dmalog_iopt_map(f->iopt, 0x800, SZ_4K, 0, RW), -EINVAL);
	assert_int_equal(dmalog_iopt_map(f->iopt, 0, 0x800, 0, RW), -EINVAL);
	assert_int_equal(dmalog_iopt_map(f->iopt, 0, SZ_4K, 0x10, RW), -EINVAL);
	assert_int_equal(dmalog_iopt_map(f->iopt, 0, 0, 0, RW), -EINVAL);
	assert_int_equal(dmalog_iopt_map(f->iopt, 1ULL << 48, SZ_4K, 0, RW), -EINVAL);
	assert_int_equal(dmalog_iopt_map(f->iopt, (1ULL << 48) - SZ_4K, 2 * SZ_4K, 0, RW), -EINVAL);
	assert_int_equal(dmalog_iopt_map(f->iopt, 0, SZ_4K, 0, 1 << 4), -EINVAL);
	assert_int_equal(dmalog_iopt_map(f->iopt, SZ_2M, SZ_2M, 0, RW), 0);
	/* Any overlap is -EEXIST, and the failing call maps nothing. */
	assert_int_equal(dmalog_iopt_map(f->iopt, 0, 2 * SZ_2M, 0, RW), -EEXIST);
	assert_int_equal(dmalog_iopt_read_pte(f->iopt, 0, NULL), 0);
	assert_int_equal(dmalog_iopt_map(f->iopt, 2 * SZ_2M - SZ_4K, 2 * SZ_4K, 0, RW), -EEXIST);
	assert_int_equal(dmalog_iopt_read_pte(f->iopt, 2 * SZ_2M, NULL), 0);
	/* Top of the 48-bit space is fine. */
	assert_int_equal(dmalog_iopt_map(f->iopt, (1ULL << 48) - SZ_4K, SZ_4K, 0, RW), 0);
}

/*
 * Leaves are as large as alignment allows; the PTE is in the AMD v1 layout. (Tests that count
 * 4K pages map with a physical address off the 2M grid to get 4K leaves.)
 */
static void leaf_sizes_and_layout(void **state)
{
	struct fixture *f = *state;
	uint64_t size, pte, pa;

	/* [1G - 8K, 2G + 2M + 4K): 4K, 4K, a 1G, a 2M, a 4K. */
	assert_int_equal(dmalog_iopt_map(f->iopt, SZ_1G - 2 * SZ_4K,
					 2 * SZ_4K + SZ_1G + SZ_2M + SZ_4K, 5 * SZ_1G - 2 * SZ_4K,
					 DMALOG_IOPT_READ),
			 0);
	pte = dmalog_iopt_read_pte(f->iopt, SZ_1G - SZ_4K, &size);
	assert_int_equal(size, SZ_4K);
	assert_int_equal(pte & DMALOG_IOPT_PTE_ADDR, 5 * SZ_1G - SZ_4K);
	pte = dmalog_iopt_read_pte(f->iopt, SZ_1G + 12345, &size);
	assert_int_equal(size, SZ_1G);
	assert_int_equal(pte & DMALOG_IOPT_PTE_ADDR, 5 * SZ_1G);
	assert_true(pte & DMALOG_IOPT_PTE_PR);
	assert_true(pte & DMALOG_IOPT_PTE_IR);
	assert_false(pte & DMALOG_IOPT_PTE_IW);
	assert_int_equal((pte >> 9) & 7, 0);
	assert_false(pte & (DMALOG_IOPT_PTE_A | DMALOG_IOPT_PTE_D));
	dmalog_iopt_read_pte(f->iopt, 2 * SZ_1G, &size);
	assert_int_equal(size, SZ_2M);
	dmalog_iopt_read_pte(f->iopt, 2 * SZ_1G + SZ_2M, &size);
	assert_int_equal(size, SZ_4K);
	assert_int_equal(dmalog_iopt_read_pte(f->iopt, 2 * SZ_1G + SZ_2M + SZ_4K, NULL), 0);
	/* Translation: inside the 1G leaf, at the right offset; A is set by the access. */
	assert_int_equal(dma(f, SZ_1G + 0x12345, false, &pa), 0);
	assert_int_equal(pa, 5 * SZ_1G + 0x12345);
	assert_true(dmalog_iopt_read_pte(f->iopt, SZ_1G, NULL) & DMALOG_IOPT_PTE_A);
}

static void unmap_errors(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(dmalog_iopt_map(f->iopt, 0, SZ_2M + SZ_4K, 0, RW), 0);
	assert_int_equal(dmalog_iopt_unmap(f->iopt, SZ_4K, SZ_4K), -EINVAL); /* cuts the 2M */
	assert_int_equal(dmalog_iopt_unmap(f->iopt, 0, SZ_2M + 2 * SZ_4K), -ENOENT);
	assert_int_equal(dmalog_iopt_unmap(f->iopt, 0x800, SZ_4K), -EINVAL);
	assert_int_equal(dmalog_iopt_unmap(f->iopt, SZ_1G, SZ_4K), -ENOENT);
	assert_true(dmalog_iopt_read_pte(f->iopt, 0, NULL));
	assert_int_equal(dmalog_iopt_unmap(f->iopt, 0, SZ_2M + SZ_4K), 0);
	assert_int_equal(dmalog_iopt_read_pte(f->iopt, 0, NULL), 0);
	assert_int_equal(dma(f, 0, false, NULL), -EFAULT);
	/* The emptied tables take smaller leaves again. */
	assert_int_equal(dmalog_iopt_map(f->iopt, 0, SZ_2M, 0, RW), 0);
}

static void dma_faults(void **state)
{
	struct fixture *f = *state;
	struct dmalog_iopt_stats st;

	assert_int_equal(dmalog_iopt_map(f->iopt, 0, SZ_2M, 0, DMALOG_IOPT_READ), 0);
	assert_int_equal(dmalog_iopt_set_dirty_tracking(f->iopt, true), 0);
	assert_int_equal(dma(f, 5 * SZ_4K, false, NULL), 0);
	assert_int_equal(dma(f, 5 * SZ_4K, true, NULL), -EFAULT); /* read-only: IOTLB hit too */
	assert_int_equal(dma(f, SZ_1G, true, NULL), -EFAULT);	  /* unmapped */
	assert_int_equal(dma(f, 1ULL << 48, false, NULL), -EFAULT);
	dmalog_iopt_get_stats(f->iopt, &st);
	assert_int_equal(st.faults, 3);
	/* A blocked write never dirties anything. */
	assert_false(dmalog_iopt_read_pte(f->iopt, 5 * SZ_4K, NULL) & DMALOG_IOPT_PTE_D);
}

/* 94, 95, 99, 100: set, report-and-clear, NO_CLEAR, enabling clears, disabled records none. */
static void b94_b95_b99_b100_dirty_bits(void **state)
{
	struct fixture *f = *state;
	uint64_t bm[8];

	assert_int_equal(dmalog_iopt_map(f->iopt, 0, SZ_2M, SZ_4K, RW), 0);
	/* 100: not tracking: writes leave D alone. */
	assert_int_equal(dma(f, 3 * SZ_4K, true, NULL), 0);
	assert_false(dmalog_iopt_read_pte(f->iopt, 3 * SZ_4K, NULL) & DMALOG_IOPT_PTE_D);
	assert_int_equal(dmalog_iopt_set_dirty_tracking(f->iopt, true), 0);
	/* 94 */
	assert_int_equal(dma(f, 3 * SZ_4K + 8, true, NULL), 0);
	assert_true(dmalog_iopt_read_pte(f->iopt, 3 * SZ_4K, NULL) & DMALOG_IOPT_PTE_D);
	report(f, 0, 64 * SZ_4K, SZ_4K, 0, bm, 1);
	assert_int_equal(bm[0], 8);
	report(f, 0, 64 * SZ_4K, SZ_4K, 0, bm, 1);
	assert_int_equal(bm[0], 0);
	/* 95 */
	assert_int_equal(dma(f, 9 * SZ_4K, true, NULL), 0);
	report(f, 0, 64 * SZ_4K, SZ_4K, DMALOG_IOPT_NO_CLEAR, bm, 1);
	assert_int_equal(bm[0], 1 << 9);
	report(f, 0, 64 * SZ_4K, SZ_4K, 0, bm, 1);
	assert_int_equal(bm[0], 1 << 9);
	report(f, 0, 64 * SZ_4K, SZ_4K, 0, bm, 1);
	assert_int_equal(bm[0], 0);
	/* 99: D bits left from before a disable/enable cycle are gone after enabling. */
	assert_int_equal(dma(f, 11 * SZ_4K, true, NULL), 0);
	assert_int_equal(dmalog_iopt_set_dirty_tracking(f->iopt, false), 0);
	assert_true(dmalog_iopt_read_pte(f->iopt, 11 * SZ_4K, NULL) & DMALOG_IOPT_PTE_D);
	assert_int_equal(dmalog_iopt_set_dirty_tracking(f->iopt, true), 0);
	report(f, 0, 64 * SZ_4K, SZ_4K, 0, bm, 1);
	assert_int_equal(bm[0], 0);
	/* ... and a write after enabling is recorded, even though the IOTLB had the page. */
	assert_int_equal(dma(f, 11 * SZ_4K, true, NULL), 0);
	report(f, 0, 64 * SZ_4K, SZ_4K, 0, bm, 1);
	assert_int_equal(bm[0], 1 << 11);
	assert_int_equal(dmalog_iopt_read_and_clear_dirty(f->iopt, 0, SZ_4K, 1 << 3, NULL),
			 -EINVAL);
}

/* 101: a dirty 2M leaf reads as 512 bits at 4K; a 1G leaf at 2M as 512 bits. */
static void b101_huge_leaf_whole_size(void **state)
{
	struct fixture *f = *state;
	uint64_t bm[16];

	assert_int_equal(dmalog_iopt_map(f->iopt, SZ_2M, SZ_2M, 0, RW), 0);
	assert_int_equal(dmalog_iopt_map(f->iopt, SZ_1G, SZ_1G, SZ_1G, RW), 0);
	assert_int_equal(dmalog_iopt_set_dirty_tracking(f->iopt, true), 0);
	assert_int_equal(dma(f, SZ_2M + 5, true, NULL), 0);
	report(f, 0, 1024 * SZ_4K, SZ_4K, 0, bm, 16);
	for (int i = 0; i < 16; i++)
		assert_int_equal(bm[i], i >= 8 ? ~0ULL : 0);
	assert_int_equal(dma(f, SZ_1G + SZ_2M * 7, true, NULL), 0);
	report(f, SZ_1G, SZ_1G, SZ_2M, 0, bm, 8);
	for (int i = 0; i < 8; i++)
		assert_int_equal(bm[i], ~0ULL);
}

/* A leaf cut by the edge of the range is reported and stays dirty. */
static void cut_leaf_kept(void **state)
{
	struct fixture *f = *state;
	uint64_t bm[8];

	assert_int_equal(dmalog_iopt_map(f->iopt, 0, SZ_2M, 0, RW), 0);
	assert_int_equal(dmalog_iopt_set_dirty_tracking(f->iopt, true), 0);
	assert_int_equal(dma(f, SZ_2M - 1, true, NULL), 0);
	report(f, 0, SZ_2M / 2, SZ_4K, 0, bm, 4);
	for (int i = 0; i < 4; i++)
		assert_int_equal(bm[i], ~0ULL);
	report(f, 0, SZ_2M, SZ_2M, 0, bm, 1);
	assert_int_equal(bm[0], 1);
	report(f, 0, SZ_2M, SZ_2M, 0, bm, 1);
	assert_int_equal(bm[0], 0);
}

/* Absent tables are skipped: a walk over the whole 48-bit space touches what is mapped. */
static void sparse_walk(void **state)
{
	struct fixture *f = *state;
	struct dmalog_iopt_stats st;
	uint64_t bm[1];
	struct dmalog_iova_bitmap b;

	assert_int_equal(dmalog_iopt_map(f->iopt, 1ULL << 45, SZ_4K, 0, RW), 0);
	assert_int_equal(dmalog_iopt_set_dirty_tracking(f->iopt, true), 0);
	assert_int_equal(dma(f, 1ULL << 45, true, NULL), 0);
	dmalog_iopt_get_stats(f->iopt, &st);
	assert_int_equal(st.tables, 4);
	bm[0] = 0;
	/* Report at 2^42 per bit: 64 bits cover the whole space. */
	assert_int_equal(dmalog_iova_bitmap_init(&b, 0, 1ULL << 48, 1ULL << 42, bm, 0), 0);
	assert_int_equal(dmalog_iopt_read_and_clear_dirty(f->iopt, 0, 1ULL << 48, 0, &b), 0);
	assert_int_equal(bm[0], 1 << 8);
}

/*
 * The IOTLB rule. The write after the clear hits a cached translation that already says
 * "dirty", so it does not touch the PTE: without the invalidation it is lost.
 */
static void skipping_invalidation_loses_a_write(void **state)
{
	struct fixture *f = *state;
	uint64_t bm[1];

	assert_int_equal(dmalog_iopt_map(f->iopt, 0, SZ_2M, SZ_4K, RW), 0);
	assert_int_equal(dmalog_iopt_set_dirty_tracking(f->iopt, true), 0);
	for (int skip = 0; skip < 2; skip++) {
		dmalog_iopt_set_debug(f->iopt, skip ? DMALOG_IOPT_DEBUG_SKIP_INVALIDATE : 0);
		assert_int_equal(dma(f, 7 * SZ_4K, true, NULL), 0); /* fills the IOTLB, sets D */
		report(f, 0, 64 * SZ_4K, SZ_4K, 0, bm, 1);	    /* reports and clears */
		assert_int_equal(bm[0], 1 << 7);
		assert_int_equal(dma(f, 7 * SZ_4K, true, NULL), 0); /* written again */
		report(f, 0, 64 * SZ_4K, SZ_4K, 0, bm, 1);
		if (skip)
			assert_int_equal(bm[0], 0); /* the second write is lost */
		else
			assert_int_equal(bm[0], 1 << 7);
		dmalog_iopt_set_debug(f->iopt, 0);
		assert_int_equal(dmalog_iopt_set_dirty_tracking(f->iopt, true), 0);
	}
}

struct slow_writer {
	struct fixture *f;
	int started;
	int landed;
};

static void *slow_write(void *arg)
{
	struct slow_writer *w = arg;
	uint64_t pa, room;

	assert_int_equal(dmalog_iopt_dma_begin(w->f->dma, 3 * SZ_4K, true, &pa, &room), 0);
	__atomic_store_n(&w->started, 1, __ATOMIC_RELEASE);
	usleep(100 * 1000);
	__atomic_store_n(&w->landed, 1, __ATOMIC_RELEASE); /* the data lands */
	dmalog_iopt_dma_end(w->f->dma);
	return NULL;
}

/* Read-and-clear returns only after a write in flight through an old entry has landed. */
static void read_and_clear_waits_for_dma(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(dmalog_iopt_map(f->iopt, 0, SZ_2M, SZ_4K, RW), 0);
	assert_int_equal(dmalog_iopt_set_dirty_tracking(f->iopt, true), 0);
	for (int skip = 0; skip < 2; skip++) {
		struct slow_writer w = {f, 0, 0};
		uint64_t bm[1];
		pthread_t t;

		dmalog_iopt_set_debug(f->iopt, skip ? DMALOG_IOPT_DEBUG_SKIP_DMA_WAIT : 0);
		pthread_create(&t, NULL, slow_write, &w);
		while (!__atomic_load_n(&w.started, __ATOMIC_ACQUIRE))
			sched_yield();
		report(f, 0, 64 * SZ_4K, SZ_4K, 0, bm, 1);
		assert_int_equal(bm[0], 8);
		/* Waiting: the write has landed. Skipping: the 100 ms write is still going. */
		assert_int_equal(__atomic_load_n(&w.landed, __ATOMIC_ACQUIRE), !skip);
		pthread_join(t, NULL);
	}
	dmalog_iopt_set_debug(f->iopt, 0);
}

/* The injected read failure: one report fails with -EIO and clears nothing; the next works. */
static void injected_read_failure(void **state)
{
	struct fixture *f = *state;
	struct dmalog_iova_bitmap bm;
	uint64_t bitmap[1] = {0};

	assert_int_equal(dmalog_iopt_map(f->iopt, 0, SZ_2M, 0, RW | DMALOG_IOPT_NO_HUGE), 0);
	assert_int_equal(dmalog_iopt_set_dirty_tracking(f->iopt, true), 0);
	assert_int_equal(dma(f, 3 * SZ_4K, true, NULL), 0);
	assert_int_equal(dmalog_iova_bitmap_init(&bm, 0, 64 * SZ_4K, SZ_4K, bitmap, 0), 0);
	dmalog_iopt_set_debug(f->iopt, DMALOG_IOPT_DEBUG_FAIL_READ);
	assert_int_equal(dmalog_iopt_read_and_clear_dirty(f->iopt, 0, 64 * SZ_4K, 0, &bm), -EIO);
	assert_int_equal(bitmap[0], 0);
	assert_int_equal(dmalog_iopt_read_and_clear_dirty(f->iopt, 0, 64 * SZ_4K, 0, &bm), 0);
	assert_int_equal(bitmap[0], 1ULL << 3);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(injected_read_failure),
		T(map_errors),
		T(leaf_sizes_and_layout),
		T(unmap_errors),
		T(dma_faults),
		T(b94_b95_b99_b100_dirty_bits),
		T(b101_huge_leaf_whole_size),
		T(cut_leaf_kept),
		T(sparse_walk),
		T(skipping_invalidation_loses_a_write),
		T(read_and_clear_waits_for_dma),
	};

	return cmocka_run_group_tests_name("iopt", tests, NULL, NULL);
}
