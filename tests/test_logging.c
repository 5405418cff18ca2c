// SPDX-License-Identifier: MIT
/*
 * DMA logging START / STOP / REPORT: seed-digest behaviours 15-53 and 76, on a spy tracker
 * (what the core checks and hands down) and on the software tracker (what a report holds).
 * 27 (copy-back fault) cannot happen in userspace; 49 (DMA reads) belongs to the DMA engines.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"

typedef struct vfio_device_feature_dma_logging_range range_t;

struct fixture {
	struct spy_tracker spy;
	struct dmalog_device *spy_dev;
	struct dmalog_swtrack *sw;
	struct dmalog_device *sw_dev;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct dmalog_device_desc desc = {.log_ops = &spy_log_ops, .priv = &f->spy};

	assert_int_equal(dmalog_device_create(&desc, &f->spy_dev), 0);
	f->sw_dev = swtrack_device(&f->sw);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	dmalog_device_destroy(f->spy_dev);
	dmalog_device_destroy(f->sw_dev);
	dmalog_swtrack_destroy(f->sw);
	free(f);
	return 0;
}

static int spy_start_ranges(struct fixture *f, const range_t *r, uint32_t n)
{
	return log_start(f->spy_dev, r, n, SZ_4K, NULL);
}

/* 15 */
static void b15_zero_ranges(void **state)
{
	struct fixture *f = *state;
	range_t r = {0, SZ_4K};

	assert_int_equal(spy_start_ranges(f, &r, 0), -EINVAL);
	assert_int_equal(f->spy.starts, 0);
	assert_int_equal(log_report(f->spy_dev, 0, SZ_4K, SZ_4K, &r), -EINVAL);
}

/* 16, 17: 256 ranges are the core's guaranteed minimum; 257 is E2BIG. */
static void b16_b17_range_count(void **state)
{
	struct fixture *f = *state;
	range_t r[257];

	for (int i = 0; i < 257; i++) {
		/* Given in descending order; the driver must see them ascending. */
		r[i].iova = (uint64_t)(256 - i) * 2 * SZ_4K;
		r[i].length = SZ_4K;
	}
	assert_int_equal(spy_start_ranges(f, r, 257), -E2BIG);
	/* E2BIG comes before the page-size check (num_ranges is looked at first). */
	assert_int_equal(log_start(f->spy_dev, r, 257, 0, NULL), -E2BIG);
	assert_int_equal(f->spy.starts, 0);
	assert_int_equal(spy_start_ranges(f, r, 256), 0);
	assert_int_equal(f->spy.starts, 1);
	assert_int_equal(f->spy.nranges, 256);
	for (uint32_t i = 1; i < f->spy.nranges; i++)
		assert_true(f->spy.ranges[i - 1].iova < f->spy.ranges[i].iova);
}

/* 18, 19: misaligned iova or length (checked against the hint). */
static void b18_b19_misaligned(void **state)
{
	struct fixture *f = *state;
	range_t bad_iova = {0x1800, SZ_4K}, bad_len = {0, 0x1800};

	assert_int_equal(spy_start_ranges(f, &bad_iova, 1), -EINVAL);
	assert_int_equal(spy_start_ranges(f, &bad_len, 1), -EINVAL);
	/* 0x1800 is aligned to a 2K hint. */
	assert_int_equal(log_start(f->spy_dev, &bad_iova, 1, 2048, NULL), 0);
	assert_int_equal(f->spy.starts, 1);
}

/* 20, 21, 22: overlap and duplicates fail; adjacent ranges are legal. */
static void b20_b22_overlap_and_adjacency(void **state)
{
	struct fixture *f = *state;
	range_t overlap[] = {{0, 2 * SZ_4K}, {SZ_4K, 2 * SZ_4K}};
	range_t same[] = {{SZ_2M, SZ_4K}, {SZ_2M, SZ_4K}};
	range_t adjacent[] = {{0, SZ_4K}, {SZ_4K, SZ_4K}};

	assert_int_equal(spy_start_ranges(f, overlap, 2), -EINVAL);
	assert_int_equal(spy_start_ranges(f, same, 2), -EINVAL);
	assert_int_equal(f->spy.starts, 0);
	assert_int_equal(spy_start_ranges(f, adjacent, 2), 0);
	assert_int_equal(f->spy.nranges, 2);
}

/* 23: unsorted input reaches the driver sorted. */
static void b23_descending_sorted(void **state)
{
	struct fixture *f = *state;
	range_t r[] = {{SZ_1G, SZ_4K}, {SZ_2M, SZ_4K}, {0, SZ_4K}};

	assert_int_equal(spy_start_ranges(f, r, 3), 0);
	assert_int_equal(f->spy.ranges[0].iova, 0);
	assert_int_equal(f->spy.ranges[1].iova, SZ_2M);
	assert_int_equal(f->spy.ranges[2].iova, SZ_1G);
}

/* 24: a NULL ranges pointer is -EFAULT; nothing starts. */
static void b24_null_ranges_efault(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(log_start(f->spy_dev, NULL, 1, SZ_4K, NULL), -EFAULT);
	assert_int_equal(f->spy.starts, 0);
}

/* 25: iova + length wrapping is -EOVERFLOW; a range ending at 2^64 - 4096 is fine. */
static void b25_overflow(void **state)
{
	struct fixture *f = *state;
	range_t wrap = {UINT64_MAX - SZ_4K + 1, SZ_4K};
	range_t top = {UINT64_MAX - 2 * SZ_4K + 1, SZ_4K};

	assert_int_equal(spy_start_ranges(f, &wrap, 1), -EOVERFLOW);
	assert_int_equal(f->spy.starts, 0);
	assert_int_equal(spy_start_ranges(f, &top, 1), 0);
}

/* Errors come in user order: an overlap in range 1 wins over an overflow in range 2. */
static void range_errors_in_user_order(void **state)
{
	struct fixture *f = *state;
	range_t r[] = {{0, SZ_4K}, {0, SZ_4K}, {UINT64_MAX - SZ_4K + 1, SZ_4K}};
	range_t s[] = {{0, SZ_4K}, {UINT64_MAX - SZ_4K + 1, SZ_4K}, {0, SZ_4K}};

	assert_int_equal(spy_start_ranges(f, r, 3), -EINVAL);
	assert_int_equal(spy_start_ranges(f, s, 3), -EOVERFLOW);
}

/* Stricter than the kernel: zero or non-power-of-two hints, zero-length ranges. */
static void stricter_page_size_and_zero_length(void **state)
{
	struct fixture *f = *state;
	range_t r = {0, 3 * SZ_4K}, empty = {SZ_4K, 0};

	assert_int_equal(log_start(f->spy_dev, &r, 1, 0, NULL), -EINVAL);
	assert_int_equal(log_start(f->spy_dev, &r, 1, 3 * SZ_4K, NULL), -EINVAL);
	assert_int_equal(spy_start_ranges(f, &empty, 1), -EINVAL);
	assert_int_equal(f->spy.starts, 0);
}

/* 26: the selected page size comes back; num_ranges and ranges are echoed. */
static void b26_selected_page_size_written_back(void **state)
{
	struct fixture *f = *state;
	range_t r = {0, SZ_2M};
	struct vfio_device_feature_dma_logging_control c = {
		.page_size = SZ_4K, .num_ranges = 1, .ranges = (uintptr_t)&r};

	f->spy.select_page_size = 64 * 1024;
	assert_int_equal(feature(f->spy_dev, FEAT_SET | VFIO_DEVICE_FEATURE_DMA_LOGGING_START, &c,
				 sizeof(c)),
			 0);
	assert_int_equal(c.page_size, 64 * 1024);
	assert_int_equal(c.num_ranges, 1);
	assert_int_equal(c.ranges, (uintptr_t)&r);
}

/* 28: whatever validation refuses, the driver's log_start is never called. */
static void b28_refused_start_never_reaches_driver(void **state)
{
	struct fixture *f = *state;
	range_t zero = {0, 0}, misaligned = {SZ_4K / 2, SZ_4K}, wrap = {-SZ_4K, 2 * SZ_4K};
	range_t overlap[] = {{0, 2 * SZ_4K}, {SZ_4K, SZ_4K}};
	static range_t many[300];

	assert_int_equal(spy_start_ranges(f, &zero, 0), -EINVAL);
	assert_int_equal(spy_start_ranges(f, &zero, 1), -EINVAL);
	assert_int_equal(spy_start_ranges(f, &misaligned, 1), -EINVAL);
	assert_int_equal(spy_start_ranges(f, &wrap, 1), -EOVERFLOW);
	assert_int_equal(spy_start_ranges(f, overlap, 2), -EINVAL);
	assert_int_equal(spy_start_ranges(f, many, 257), -E2BIG);
	assert_int_equal(spy_start_ranges(f, NULL, 1), -EFAULT);
	assert_int_equal(f->spy.starts, 0);
}

/* A driver's own START error reaches the caller and leaves nothing started. */
static void driver_error_propagates(void **state)
{
	struct fixture *f = *state;
	range_t r = {0, SZ_4K};

	f->spy.start_error = -EOPNOTSUPP;
	assert_int_equal(spy_start_ranges(f, &r, 1), -EOPNOTSUPP);
	assert_int_equal(f->spy.starts, 1);
	/* The failed START left nothing started. */
	assert_int_equal(log_report(f->spy_dev, 0, SZ_4K, SZ_4K, &r), -EINVAL);
	f->spy.start_error = 0;
	assert_int_equal(spy_start_ranges(f, &r, 1), 0);
}

/* 29, 30: a second START fails and the first session keeps working; restart works. */
static void b29_b30_second_start(void **state)
{
	struct fixture *f = *state;
	range_t first = {0, SZ_2M}, second = {SZ_1G, SZ_2M};
	uint64_t bitmap[8] = {0};

	assert_int_equal(log_start(f->sw_dev, &first, 1, SZ_4K, NULL), 0);
	assert_int_equal(log_start(f->sw_dev, &second, 1, SZ_4K, NULL), -EINVAL);
	dmalog_swtrack_log_write(f->sw, 5 * SZ_4K, 1);
	dmalog_swtrack_log_write(f->sw, SZ_1G, 1); /* not tracked: second START failed */
	assert_int_equal(log_report(f->sw_dev, 0, SZ_2M, SZ_4K, bitmap), 0);
	assert_int_equal(bitmap[0], 1ULL << 5);
	/* 30: STOP, START with other ranges: they are the ones in effect. */
	assert_int_equal(log_stop(f->sw_dev), 0);
	assert_int_equal(log_start(f->sw_dev, &second, 1, SZ_4K, NULL), 0);
	dmalog_swtrack_log_write(f->sw, 5 * SZ_4K, 1);
	dmalog_swtrack_log_write(f->sw, SZ_1G + 7 * SZ_4K, 1);
	memset(bitmap, 0, sizeof(bitmap));
	assert_int_equal(log_report(f->sw_dev, 0, SZ_2M, SZ_4K, bitmap), 0);
	assert_int_equal(bitmap[0], 0);
	assert_int_equal(log_report(f->sw_dev, SZ_1G, SZ_2M, SZ_4K, bitmap), 0);
	assert_int_equal(bitmap[0], 1ULL << 7);
}

/*
 * 31: neither the core nor the driver keeps the caller's ranges or the core's copies past
 * START: the caller's array is freed (and poisoned) before tracking is used, and ASan, which
 * runs this suite in CI, would see any later read of either.
 */
static void b31_ranges_not_kept_after_start(void **state)
{
	struct fixture *f = *state;
	range_t *r = malloc(2 * sizeof(*r));
	uint64_t bitmap[8] = {0};

	r[0] = (range_t){SZ_1G, SZ_2M};
	r[1] = (range_t){0, SZ_2M};
	assert_int_equal(log_start(f->sw_dev, r, 2, SZ_4K, NULL), 0);
	memset(r, 0xff, 2 * sizeof(*r));
	free(r);
	dmalog_swtrack_log_write(f->sw, SZ_1G + 3 * SZ_4K, 1);
	assert_int_equal(log_report(f->sw_dev, SZ_1G, SZ_2M, SZ_4K, bitmap), 0);
	assert_int_equal(bitmap[0], 1ULL << 3);
}

/* 32, 33, 34: STOP is idempotent; REPORT after STOP fails and leaves the bitmap alone. */
static void b32_b34_stop(void **state)
{
	struct fixture *f = *state;
	range_t r = {0, SZ_2M};
	uint64_t bitmap[8] = {0xa5};

	assert_int_equal(log_stop(f->sw_dev), 0);
	assert_int_equal(log_start(f->sw_dev, &r, 1, SZ_4K, NULL), 0);
	dmalog_swtrack_log_write(f->sw, 0, SZ_2M);
	assert_int_equal(log_stop(f->sw_dev), 0);
	assert_int_equal(log_stop(f->sw_dev), 0);
	assert_int_equal(log_report(f->sw_dev, 0, SZ_2M, SZ_4K, bitmap), -EINVAL);
	assert_int_equal(bitmap[0], 0xa5);
	for (int i = 1; i < 8; i++)
		assert_int_equal(bitmap[i], 0);
}

/* 35, 36, 37, 38: REPORT argument errors, bitmap untouched. */
static void b35_b38_report_errors(void **state)
{
	struct fixture *f = *state;
	range_t r = {0, SZ_2M};
	uint64_t bitmap[8] = {0};

	assert_int_equal(log_report(f->sw_dev, 0, SZ_2M, SZ_4K, bitmap), -EINVAL);
	assert_int_equal(log_start(f->sw_dev, &r, 1, SZ_4K, NULL), 0);
	dmalog_swtrack_log_write(f->sw, 0, SZ_2M);
	assert_int_equal(log_report(f->sw_dev, 0, SZ_2M, 2048, bitmap), -EINVAL);
	assert_int_equal(log_report(f->sw_dev, 0, SZ_2M, 12288, bitmap), -EINVAL);
	assert_int_equal(log_report(f->sw_dev, 0, SZ_2M, 0, bitmap), -EINVAL);
	assert_int_equal(log_report(f->sw_dev, UINT64_MAX - SZ_4K + 1, SZ_4K, SZ_4K, bitmap),
			 -EOVERFLOW);
	assert_int_equal(log_report(f->sw_dev, 0, SZ_2M, SZ_4K, NULL), -EFAULT);
	for (int i = 0; i < 8; i++)
		assert_int_equal(bitmap[i], 0);
	/* Nothing was consumed by the failed calls. */
	assert_int_equal(log_report(f->sw_dev, 0, SZ_2M, SZ_4K, bitmap), 0);
	for (int i = 0; i < 8; i++)
		assert_int_equal(bitmap[i], ~0ULL);
}

/* 39, 40, 41, 42: bit placement, OR-only, guard words, read-and-clear. */
static void b39_b42_report_bits(void **state)
{
	struct fixture *f = *state;
	range_t r = {0, SZ_1G};
	uint64_t bitmap[6];
	uint64_t B = 0x100000, A = B + 86 * SZ_4K + 0x123;

	assert_int_equal(log_start(f->sw_dev, &r, 1, SZ_4K, NULL), 0);
	dmalog_swtrack_log_write(f->sw, A, 1);
	memset(bitmap, 0, sizeof(bitmap));
	bitmap[1] = 1ULL << 63; /* a user bit on a clean page: it stays */
	bitmap[4] = bitmap[5] = 0xdeadbeefcafef00dULL;
	/* 4 words = 256 pages = 1 MiB from B. */
	assert_int_equal(log_report(f->sw_dev, B, 256 * SZ_4K, SZ_4K, bitmap), 0);
	uint64_t n = (A - B) / SZ_4K;
	for (uint64_t bit = 0; bit < 256; bit++)
		assert_int_equal(test_bit(bitmap, bit), bit == n || bit == 127);
	assert_true(bitmap[n / 64] & (1ULL << (n % 64)));
	assert_int_equal(bitmap[4], 0xdeadbeefcafef00dULL);
	assert_int_equal(bitmap[5], 0xdeadbeefcafef00dULL);
	/* 42: nothing new. */
	memset(bitmap, 0, 4 * sizeof(uint64_t));
	assert_int_equal(log_report(f->sw_dev, B, 256 * SZ_4K, SZ_4K, bitmap), 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(bitmap[i], 0);
}

/* 43: clearing is limited to the queried range. */
static void b43_clear_only_queried(void **state)
{
	struct fixture *f = *state;
	range_t r = {0, SZ_1G};
	uint64_t bitmap[8] = {0};

	assert_int_equal(log_start(f->sw_dev, &r, 1, SZ_4K, NULL), 0);
	dmalog_swtrack_log_write(f->sw, SZ_4K, 1);
	dmalog_swtrack_log_write(f->sw, SZ_2M + 3 * SZ_4K, 1);
	assert_int_equal(log_report(f->sw_dev, 0, SZ_2M, SZ_4K, bitmap), 0);
	assert_int_equal(bitmap[0], 2);
	memset(bitmap, 0, sizeof(bitmap));
	assert_int_equal(log_report(f->sw_dev, SZ_2M, SZ_2M, SZ_4K, bitmap), 0);
	assert_int_equal(bitmap[0], 8);
}

/* 44: tracking at 4K, reporting at 64K: two pages in one block give one bit. */
static void b44_coarser_report(void **state)
{
	struct fixture *f = *state;
	range_t r = {0, SZ_1G};
	uint64_t bitmap[1] = {0};

	assert_int_equal(log_start(f->sw_dev, &r, 1, SZ_4K, NULL), 0);
	dmalog_swtrack_log_write(f->sw, 0x10000 + SZ_4K, 1);
	dmalog_swtrack_log_write(f->sw, 0x10000 + 9 * SZ_4K, 8);
	assert_int_equal(log_report(f->sw_dev, 0, 64 * 0x10000, 0x10000, bitmap), 0);
	assert_int_equal(bitmap[0], 2);
}

/* 45: tracking at 2M, reporting at 4K: one write gives 512 bits. */
static void b45_finer_report_replicates(void **state)
{
	struct fixture *f = *state;
	range_t r = {0, SZ_1G};
	uint64_t sel, bitmap[16] = {0};

	assert_int_equal(log_start(f->sw_dev, &r, 1, SZ_2M, &sel), 0);
	assert_int_equal(sel, SZ_2M);
	dmalog_swtrack_log_write(f->sw, SZ_2M + 100, 1);
	assert_int_equal(log_report(f->sw_dev, 0, 2 * SZ_2M, SZ_4K, bitmap), 0);
	for (int i = 0; i < 8; i++)
		assert_int_equal(bitmap[i], 0);
	for (int i = 8; i < 16; i++)
		assert_int_equal(bitmap[i], ~0ULL);
}

/*
 * 47: a report over more than 64 GiB at 4K crosses the default 2 MiB bitmap window: pages at
 * the start, at each window boundary and one page either side, and at the end.
 */
static void b47_multi_window_report(void **state)
{
	struct fixture *f = *state;
	const uint64_t len = 160 * SZ_1G, window = 64 * SZ_1G;
	range_t r = {0, len};
	uint64_t words = dmalog_iova_bitmap_words(len, SZ_4K);
	uint64_t *bitmap = calloc(words, 8);
	uint64_t pages[] = {0,
			    window / SZ_4K - 1,
			    window / SZ_4K,
			    window / SZ_4K + 1,
			    2 * window / SZ_4K - 1,
			    2 * window / SZ_4K,
			    2 * window / SZ_4K + 1,
			    len / SZ_4K - 1};
	uint64_t seen = 0;

	assert_int_equal(log_start(f->sw_dev, &r, 1, SZ_4K, NULL), 0);
	for (unsigned int i = 0; i < 8; i++)
		dmalog_swtrack_log_write(f->sw, pages[i] * SZ_4K, 1);
	assert_int_equal(log_report(f->sw_dev, 0, len, SZ_4K, bitmap), 0);
	for (uint64_t w = 0; w < words; w++)
		seen += __builtin_popcountll(bitmap[w]);
	assert_int_equal(seen, 8);
	for (unsigned int i = 0; i < 8; i++)
		assert_true(test_bit(bitmap, pages[i]));
	free(bitmap);
}

/* 48: a bitmap 8 bytes into a page (and at an odd byte), many small windows. */
static void b48_unaligned_bitmap_small_windows(void **state)
{
	struct fixture *f = *state;
	range_t r = {0, SZ_1G};
	uint8_t *buf = calloc(1, 4096 + 64);
	size_t offsets[] = {8, 0xff1 - 0xf00};

	assert_int_equal(log_start(f->sw_dev, &r, 1, SZ_4K, NULL), 0);
	dmalog_device_set_report_window(f->sw_dev, 64);
	for (unsigned int o = 0; o < 2; o++) {
		uint8_t *bm = buf + offsets[o];

		memset(buf, 0, 4096 + 64);
		for (uint64_t p = 0; p < 1000; p += 7)
			dmalog_swtrack_log_write(f->sw, 0x4000000 + p * SZ_4K, 1);
		/* 1000 pages = 125 bytes; 64-bit windows = 16 tracker calls. */
		assert_int_equal(log_report(f->sw_dev, 0x4000000, 1000 * SZ_4K, SZ_4K, bm), 0);
		for (uint64_t p = 0; p < 1000; p++)
			assert_int_equal(test_bit(bm, p), p % 7 == 0);
		for (size_t i = 125; i < 64 + 125; i++)
			assert_int_equal(bm[i], 0);
		for (size_t i = 0; i < offsets[o]; i++)
			assert_int_equal(buf[i], 0);
	}
	free(buf);
}

/* 50, 52: writes outside the ranges are not logged; reports past them are fine. */
static void b50_b52_outside_ranges(void **state)
{
	struct fixture *f = *state;
	range_t r[] = {{SZ_2M, SZ_2M}, {8 * SZ_2M, SZ_2M}};
	uint64_t bitmap[64] = {0};

	assert_int_equal(log_start(f->sw_dev, r, 2, SZ_4K, NULL), 0);
	dmalog_swtrack_log_write(f->sw, 0, SZ_2M);		       /* below */
	dmalog_swtrack_log_write(f->sw, 4 * SZ_2M, SZ_2M);	       /* in the hole */
	dmalog_swtrack_log_write(f->sw, 2 * SZ_2M - SZ_4K, 2 * SZ_4K); /* straddles the end */
	dmalog_swtrack_log_write(f->sw, 8 * SZ_2M, 1);
	assert_int_equal(log_report(f->sw_dev, 0, 16 * SZ_2M, SZ_2M / 8, bitmap), 0);
	/* Report page 256K: range 1's last page is bit 15, range 2's first is bit 64. */
	assert_int_equal(bitmap[0], 1ULL << 15);
	assert_int_equal(bitmap[1], 1);
	for (int i = 2; i < 64; i++)
		assert_int_equal(bitmap[i], 0);
}

/* 51: a zero-length report succeeds and touches nothing. */
static void b51_zero_length_report(void **state)
{
	struct fixture *f = *state;
	range_t r = {0, SZ_2M};
	uint64_t bitmap[1] = {0};

	assert_int_equal(log_start(f->sw_dev, &r, 1, SZ_4K, NULL), 0);
	dmalog_swtrack_log_write(f->sw, 0, SZ_2M);
	assert_int_equal(log_report(f->sw_dev, 0, 0, SZ_4K, bitmap), 0);
	assert_int_equal(bitmap[0], 0);
}

/* 53, 76: one tracker call per window; an error stops the report, earlier bits stay set. */
static void b53_b76_windows_and_errors(void **state)
{
	struct fixture *f = *state;
	range_t r = {0, SZ_1G};
	uint64_t bitmap[4] = {0};

	assert_int_equal(spy_start_ranges(f, &r, 1), 0);
	dmalog_device_set_report_window(f->spy_dev, 64);
	assert_int_equal(log_report(f->spy_dev, SZ_4K, 3 * 64 * SZ_4K, SZ_4K, bitmap), 0);
	assert_int_equal(f->spy.reports, 3);
	/* Plain ORs unless the device is told its bitmaps are shared (46 needs that). */
	assert_int_equal(f->spy.plain_writers, 3);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(f->spy.windows[i][0], SZ_4K + i * 64 * SZ_4K);
		assert_int_equal(f->spy.windows[i][1], 64 * SZ_4K);
	}
	dmalog_device_set_report_shared(f->spy_dev, true);
	f->spy.plain_writers = 0;
	f->spy.reports = 0;
	assert_int_equal(log_report(f->spy_dev, SZ_4K, 3 * 64 * SZ_4K, SZ_4K, bitmap), 0);
	assert_int_equal(f->spy.plain_writers, 0);
	memset(bitmap, 0, sizeof(bitmap));
	f->spy.reports = 0;
	f->spy.report_fail_at = 2;
	f->spy.report_error = -EIO;
	assert_int_equal(log_report(f->spy_dev, 0, 3 * 64 * SZ_4K, SZ_4K, bitmap), -EIO);
	assert_int_equal(f->spy.reports, 2);
	assert_int_equal(bitmap[0], 1); /* window 1 finished */
	assert_int_equal(bitmap[1], 1); /* window 2 set its bit, then failed */
	assert_int_equal(bitmap[2], 0); /* window 3 never ran */
}

/* A tracked page cut by the report's edge is reported but kept for the next report. */
static void partial_page_kept_dirty(void **state)
{
	struct fixture *f = *state;
	range_t r = {0, SZ_1G};
	uint64_t bitmap[8] = {0};

	assert_int_equal(log_start(f->sw_dev, &r, 1, SZ_2M, NULL), 0);
	dmalog_swtrack_log_write(f->sw, SZ_2M + SZ_2M / 2 + 5, 1);
	/* Report the first half of the 2M page: its bits show, the page stays dirty. */
	assert_int_equal(log_report(f->sw_dev, SZ_2M, SZ_2M / 2, SZ_4K, bitmap), 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(bitmap[i], ~0ULL);
	memset(bitmap, 0, sizeof(bitmap));
	assert_int_equal(log_report(f->sw_dev, SZ_2M + SZ_2M / 2, SZ_2M / 2, SZ_4K, bitmap), 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(bitmap[i], ~0ULL);
	/* A report covering the whole page clears it. */
	assert_int_equal(log_report(f->sw_dev, SZ_2M, SZ_2M, SZ_4K, bitmap), 0);
	memset(bitmap, 0, sizeof(bitmap));
	assert_int_equal(log_report(f->sw_dev, 0, 4 * SZ_2M, SZ_2M, bitmap), 0);
	assert_int_equal(bitmap[0], 0);
}

/* The software tracker picks a coarser page when the hint would need too big a log. */
static void swtrack_coarsens_huge_ranges(void **state)
{
	struct fixture *f = *state;
	range_t r = {0, 1ULL << 50};
	uint64_t sel;

	assert_int_equal(log_start(f->sw_dev, &r, 1, SZ_4K, &sel), 0);
	assert_true(sel > SZ_4K);
	assert_true(((1ULL << 50) / sel + 63) / 64 * 8 <= DMALOG_SWTRACK_MAX_LOG_BYTES);
	assert_int_equal(dmalog_swtrack_page_size(f->sw), sel);
}

/* Reset and close stop tracking (our rule; the kernel drivers do it on close/reset). */
static void reset_and_close_stop_logging(void **state)
{
	struct fixture *f = *state;
	range_t r = {0, SZ_2M};
	uint64_t bitmap[8];

	assert_int_equal(spy_start_ranges(f, &r, 1), 0);
	assert_int_equal(dmalog_device_ioctl(f->spy_dev, VFIO_DEVICE_RESET, NULL), 0);
	assert_int_equal(f->spy.stops, 1);
	assert_int_equal(log_report(f->spy_dev, 0, SZ_2M, SZ_4K, bitmap), -EINVAL);
	assert_int_equal(spy_start_ranges(f, &r, 1), 0);
	dmalog_device_destroy(f->spy_dev);
	f->spy_dev = NULL;
	assert_int_equal(f->spy.stops, 2);
}

/*
 * A burst (dmalog_swtrack_log_writes) marks exactly what its writes touch, one at a time or
 * not: runs of neighbouring pages (gathered into one OR per word), scattered pages, writes
 * across page and range edges, and writes outside the ranges.
 */
static void burst_marks_every_page(void **state)
{
	struct fixture *f = *state;
	range_t r[] = {{0, 256 * SZ_4K}, {512 * SZ_4K, 256 * SZ_4K}};
	static const uint64_t lengths[] = {1, 8, SZ_4K, SZ_4K + 1, 3 * SZ_4K};
	uint64_t seed = 11, iovas[300], got[16], want[16];

	assert_int_equal(log_start(f->sw_dev, r, 2, SZ_4K, NULL), 0);
	for (int trial = 0; trial < 200; trial++) {
		uint64_t len = lengths[trial % 5], n = 1 + trial % 300, page = 0;

		memset(want, 0, sizeof(want));
		for (uint64_t i = 0; i < n; i++) {
			seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
			/* Mostly the next page or the same one, sometimes a jump anywhere. */
			page = (seed >> 60) < 12 ? page + (seed >> 62) : (seed >> 20) % 1024;
			iovas[i] = page * SZ_4K + (seed >> 8) % SZ_4K;
			for (uint64_t p = iovas[i] / SZ_4K; p <= (iovas[i] + len - 1) / SZ_4K; p++)
				if (p < 256 || (p >= 512 && p < 768))
					want[p / 64] |= 1ULL << (p % 64);
		}
		dmalog_swtrack_log_writes(f->sw, iovas, n, len);
		memset(got, 0, sizeof(got));
		assert_int_equal(log_report(f->sw_dev, 0, 1024 * SZ_4K, SZ_4K, got), 0);
		assert_memory_equal(got, want, sizeof(want));
	}
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(b15_zero_ranges),
		T(b16_b17_range_count),
		T(b18_b19_misaligned),
		T(b20_b22_overlap_and_adjacency),
		T(b23_descending_sorted),
		T(b24_null_ranges_efault),
		T(b25_overflow),
		T(range_errors_in_user_order),
		T(stricter_page_size_and_zero_length),
		T(b26_selected_page_size_written_back),
		T(b28_refused_start_never_reaches_driver),
		T(driver_error_propagates),
		T(b29_b30_second_start),
		T(b31_ranges_not_kept_after_start),
		T(b32_b34_stop),
		T(b35_b38_report_errors),
		T(b39_b42_report_bits),
		T(b43_clear_only_queried),
		T(b44_coarser_report),
		T(b45_finer_report_replicates),
		T(b47_multi_window_report),
		T(b48_unaligned_bitmap_small_windows),
		T(b50_b52_outside_ranges),
		T(b51_zero_length_report),
		T(b53_b76_windows_and_errors),
		T(partial_page_kept_dirty),
		T(swtrack_coarsens_huge_ranges),
		T(reset_and_close_stop_logging),
		T(burst_marks_every_page),
	};

	return cmocka_run_group_tests_name("logging", tests, NULL, NULL);
}
