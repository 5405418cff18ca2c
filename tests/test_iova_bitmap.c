// SPDX-License-Identifier: MIT
/*
 * The IOVA bitmap writer: behaviours 77-80 and 82, clipping, unaligned buffers, and the
 * word-level conversion checked against a per-bit reference at random unaligned bases,
 * lengths and page sizes in both directions.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"

typedef __int128 s128;

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint64_t rnd(void)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * 0x2545F4914F6CDD1DULL;
}

static void set_bit(uint8_t *b, uint64_t n)
{
	b[n / 8] |= 1 << (n % 8);
}

/* Reference: mark every bitmap page that [lo, hi] touches, clipped to [B, B + length). */
static void ref_mark(uint8_t *ref, uint64_t B, uint64_t length, unsigned int pshift, s128 lo,
		     s128 hi)
{
	s128 end = (s128)B + length - 1;

	if (hi < (s128)B || lo > end)
		return;
	if (lo < (s128)B)
		lo = B;
	if (hi > end)
		hi = end;
	for (s128 n = (lo - B) >> pshift; n <= (hi - B) >> pshift; n++)
		set_bit(ref, (uint64_t)n);
}

static void init_errors(void **state)
{
	struct dmalog_iova_bitmap bm;
	uint64_t w;

	assert_int_equal(dmalog_iova_bitmap_init(&bm, 0, SZ_4K, 3 * SZ_4K, &w, 0), -EINVAL);
	assert_int_equal(dmalog_iova_bitmap_init(&bm, 0, SZ_4K, 0, &w, 0), -EINVAL);
	assert_int_equal(dmalog_iova_bitmap_init(&bm, UINT64_MAX, 2, SZ_4K, &w, 0), -EINVAL);
	assert_int_equal(dmalog_iova_bitmap_init(&bm, 0, SZ_4K, SZ_4K, NULL, 0), -EFAULT);
	assert_int_equal(dmalog_iova_bitmap_init(&bm, 0, SZ_4K, SZ_4K, &w, 1 << 7), -EINVAL);
	assert_int_equal(dmalog_iova_bitmap_init(&bm, 0, 0, SZ_4K, NULL, 0), 0);
	dmalog_iova_bitmap_set(&bm, 0, SZ_4K); /* nothing to write, nothing written */
}

/* 77: words for a length one byte past three words of pages. */
static void b77_sizes(void **state)
{
	assert_int_equal(dmalog_iova_bitmap_words(64 * SZ_4K * 3 + 1, SZ_4K), 4);
	assert_int_equal(dmalog_iova_bitmap_bytes(64 * SZ_4K * 3 + 1, SZ_4K), 25);
	assert_int_equal(dmalog_iova_bitmap_words(0, SZ_4K), 0);
	assert_int_equal(dmalog_iova_bitmap_words(1, SZ_4K), 1);
	assert_int_equal(dmalog_iova_bitmap_bytes(8 * SZ_4K, SZ_4K), 1);
	assert_int_equal(dmalog_iova_bitmap_bytes(8 * SZ_4K + 1, SZ_4K), 2);
}

struct window_log {
	int n;
	uint64_t iova[8], length[8];
};

static int log_window(struct dmalog_iova_bitmap *bm, uint64_t iova, uint64_t length, void *o)
{
	struct window_log *w = o;

	if (w->n < 8) {
		w->iova[w->n] = iova;
		w->length[w->n] = length;
	}
	w->n++;
	return 0;
}

/* 78: the kernel's window, 2 MiB of bitmap, spans 64 GiB at 4K and advances by exactly that. */
static void b78_window_span(void **state)
{
	struct dmalog_iova_bitmap bm;
	struct window_log w = {0};
	uint64_t dummy;

	assert_int_equal(dmalog_iova_bitmap_init(&bm, SZ_4K, 130 * SZ_1G, SZ_4K, &dummy, 0), 0);
	assert_int_equal(
		dmalog_iova_bitmap_for_each(&bm, DMALOG_IOVA_BITMAP_WINDOW_BITS, log_window, &w),
		0);
	assert_int_equal(w.n, 3);
	assert_int_equal(w.iova[0], SZ_4K);
	assert_int_equal(w.length[0], 64 * SZ_1G);
	assert_int_equal(w.iova[1], SZ_4K + 64 * SZ_1G);
	assert_int_equal(w.length[1], 64 * SZ_1G);
	assert_int_equal(w.length[2], 2 * SZ_1G);
	/* A window at a huge page size does not overflow: one window covers all. */
	w.n = 0;
	assert_int_equal(dmalog_iova_bitmap_init(&bm, 0, UINT64_MAX, 1ULL << 62, &dummy, 0), 0);
	assert_int_equal(dmalog_iova_bitmap_for_each(&bm, 64, log_window, &w), 0);
	assert_int_equal(w.n, 1);
	assert_int_equal(w.length[0], UINT64_MAX);
}

/* 79, 80: an unaligned set marks every page it touches; a short one marks one. */
static void b79_b80_unaligned_and_short_sets(void **state)
{
	struct dmalog_iova_bitmap bm;
	uint64_t w = 0, base = 0x100000;

	assert_int_equal(dmalog_iova_bitmap_init(&bm, base, 64 * SZ_4K, SZ_4K, &w, 0), 0);
	dmalog_iova_bitmap_set(&bm, base + 0x1800, 0x1000);
	assert_int_equal(w, 0x6);
	w = 0;
	dmalog_iova_bitmap_set(&bm, base + 5 * SZ_4K, 1);
	assert_int_equal(w, 1ULL << 5);
	dmalog_iova_bitmap_set(&bm, base + 7 * SZ_4K + 4095, 1);
	assert_int_equal(w, (1ULL << 5) | (1ULL << 7));
	dmalog_iova_bitmap_set(&bm, base, 0); /* length 0: nothing */
	assert_int_equal(w, (1ULL << 5) | (1ULL << 7));
}

/* Sets are clipped to the bitmap, counted, and never write outside its bytes. */
static void clipping(void **state)
{
	struct dmalog_iova_bitmap bm;
	uint8_t buf[32];
	uint64_t base = SZ_1G;

	memset(buf, 0, sizeof(buf));
	/* 20 pages: 3 bytes, from buf + 5 (unaligned). */
	assert_int_equal(dmalog_iova_bitmap_init(&bm, base, 20 * SZ_4K, SZ_4K, buf + 5, 0), 0);
	dmalog_iova_bitmap_set(&bm, base - 3 * SZ_4K, 5 * SZ_4K);    /* pages -3..1 */
	dmalog_iova_bitmap_set(&bm, base + 18 * SZ_4K, 100 * SZ_4K); /* pages 18..117 */
	dmalog_iova_bitmap_set(&bm, 0, SZ_4K);			     /* wholly below */
	dmalog_iova_bitmap_set(&bm, UINT64_MAX - 10, 100);	     /* wraps: clamps, above */
	assert_int_equal(bm.clipped, 4);
	assert_int_equal(buf[5], 0x03);
	assert_int_equal(buf[6], 0x00);
	assert_int_equal(buf[7], 0x0c); /* bits 18, 19; bits 20-23 of the byte untouched */
	for (unsigned int i = 0; i < sizeof(buf); i++)
		if (i < 5 || i > 7)
			assert_int_equal(buf[i], 0);
	/* Whole-bitmap fill stops at bit 19 as well. */
	dmalog_iova_bitmap_set(&bm, 0, UINT64_MAX);
	assert_int_equal(buf[5], 0xff);
	assert_int_equal(buf[6], 0xff);
	assert_int_equal(buf[7], 0x0f);
	assert_int_equal(buf[8], 0);
	assert_int_equal(buf[4], 0);
}

/* Random sets against the reference, unaligned bases and buffers, both write modes. */
static void random_sets_match_reference(void **state)
{
	for (int iter = 0; iter < 3000; iter++) {
		unsigned int pshift = 9 + rnd() % 16;
		uint64_t P = 1ULL << pshift;
		uint64_t B = (rnd() % 1000000) << (rnd() % 30);
		uint64_t nbits = 1 + rnd() % 700;
		uint64_t length = (nbits - 1) * P + 1 + rnd() % P;
		size_t off = rnd() % 8, nbytes = (nbits + 7) / 8;
		uint8_t *buf = calloc(1, nbytes + 32), *ref = calloc(1, nbytes + 32);
		struct dmalog_iova_bitmap bm;
		unsigned int flags = rnd() % 2 ? DMALOG_IOVA_BITMAP_ATOMIC : 0;

		assert_int_equal(dmalog_iova_bitmap_init(&bm, B, length, P, buf + off, flags), 0);
		for (int s = 0; s < 6; s++) {
			s128 lo =
				(s128)B - (s128)(rnd() % (4 * P)) + (s128)(rnd() % (nbits * P + P));
			uint64_t len = 1 + rnd() % ((rnd() % 3 == 0 ? 200 : 3) * P);

			if (lo < 0)
				lo = 0;
			dmalog_iova_bitmap_set(&bm, (uint64_t)lo, len);
			ref_mark(ref + off, B, length, pshift, lo, lo + len - 1);
		}
		assert_memory_equal(buf, ref, nbytes + 32);
		free(buf);
		free(ref);
	}
}

/*
 * set_from against the per-bit reference: random tracker and report page sizes (coarser,
 * finer, equal), tracker bitmaps starting below, inside and above the report base, off the
 * grid, with random densities, into unaligned buffers.
 */
static void random_conversions_match_reference(void **state)
{
	for (int iter = 0; iter < 4000; iter++) {
		unsigned int pshift = 10 + rnd() % 14, gshift;
		uint64_t P = 1ULL << pshift, G;
		uint64_t B = (1ULL << 40) + (rnd() % 4096) * 512 * (rnd() % 2);
		uint64_t nbits = 1 + rnd() % 900;
		uint64_t length = (nbits - 1) * P + 1 + rnd() % P;
		uint64_t src_bits = 1 + rnd() % 2000, S;
		uint64_t *src = calloc((src_bits + 63) / 64 + 1, 8);
		size_t off = rnd() % 8, nbytes = (nbits + 7) / 8;
		uint8_t *buf = calloc(1, nbytes + 32), *ref = calloc(1, nbytes + 32);
		struct dmalog_iova_bitmap bm;
		unsigned int density = rnd() % 4;

		switch (rnd() % 4) {
		case 0:
			gshift = pshift;
			break;
		case 1:
			gshift = pshift - 1 - rnd() % (pshift - 9 < 8 ? pshift - 9 : 8);
			break;
		default:
			gshift = pshift + 1 + rnd() % 12;
		}
		G = 1ULL << gshift;
		/* Source start: aligned or not, from a few pages below to past the end. */
		S = B - (rnd() % 3) * G * (1 + rnd() % 4) + (rnd() % 2 ? rnd() % (nbits * P) : 0);
		if (rnd() % 3 == 0)
			S &= ~(G - 1);
		for (uint64_t k = 0; k < src_bits; k++) {
			bool on = density == 0 ? rnd() % 50 == 0 : density == 3 ? true : rnd() % 2;

			if (on)
				src[k / 64] |= 1ULL << (k % 64);
		}
		/* Garbage past src_bits must be ignored. */
		if (src_bits % 64)
			src[src_bits / 64] |= ~0ULL << (src_bits % 64);

		assert_int_equal(dmalog_iova_bitmap_init(&bm, B, length, P, buf + off,
							 rnd() % 2 ? DMALOG_IOVA_BITMAP_ATOMIC : 0),
				 0);
		dmalog_iova_bitmap_set_from(&bm, S, gshift, src, src_bits);
		for (uint64_t k = 0; k < src_bits; k++)
			if (src[k / 64] >> (k % 64) & 1)
				ref_mark(ref + off, B, length, pshift,
					 (s128)S + ((s128)k << gshift),
					 (s128)S + (((s128)k + 1) << gshift) - 1);
		if (memcmp(buf, ref, nbytes + 32))
			print_error(
				"P=2^%u G=2^%u B=%#llx S=%#llx nbits=%llu src_bits=%llu off=%zu\n",
				pshift, gshift, (unsigned long long)B, (unsigned long long)S,
				(unsigned long long)nbits, (unsigned long long)src_bits, off);
		assert_memory_equal(buf, ref, nbytes + 32);
		free(src);
		free(buf);
		free(ref);
	}
}

/* 4K <-> 2M, the cases a REPORT hits most, at word-exact expectations. */
static void conversion_4k_2m_exact(void **state)
{
	uint64_t src[16] = {0}, dst[16] = {0};
	struct dmalog_iova_bitmap bm;

	/* 4K -> 2M: one bit in the second 512-page group gives bit 1. */
	src[8] = 1ULL << 40;
	assert_int_equal(dmalog_iova_bitmap_init(&bm, 0, 64 * SZ_2M, SZ_2M, dst, 0), 0);
	dmalog_iova_bitmap_set_from(&bm, 0, 12, src, 1024);
	assert_int_equal(dst[0], 2);
	/* 2M -> 4K: one bit replicates to 512. */
	memset(dst, 0, sizeof(dst));
	memset(src, 0, sizeof(src));
	src[0] = 2;
	assert_int_equal(dmalog_iova_bitmap_init(&bm, 0, 1024 * SZ_4K, SZ_4K, dst, 0), 0);
	dmalog_iova_bitmap_set_from(&bm, 0, 21, src, 2);
	for (int i = 0; i < 16; i++)
		assert_int_equal(dst[i], i >= 8 ? ~0ULL : 0);
}

/* The caller's source is read within src_nbits only (ASan checks the buffer bound). */
static void source_read_bounds(void **state)
{
	uint64_t *src = malloc(8), dst[4] = {0};
	struct dmalog_iova_bitmap bm;

	src[0] = ~0ULL;
	assert_int_equal(dmalog_iova_bitmap_init(&bm, 4096, 200 * SZ_4K, SZ_4K, dst, 0), 0);
	dmalog_iova_bitmap_set_from(&bm, 4096 + 2048, 12, src, 64);
	assert_int_equal(dst[0], ~0ULL);
	assert_int_equal(dst[1], 1);
	free(src);
}

struct replay {
	const uint64_t *pages; /* dirty page numbers at 4K, sorted */
	int n;
};

/* A tracker that only reports what falls in the window it is handed. */
static int replay_window(struct dmalog_iova_bitmap *bm, uint64_t iova, uint64_t length, void *o)
{
	struct replay *r = o;

	for (int i = 0; i < r->n; i++) {
		uint64_t a = r->pages[i] * SZ_4K;

		if (a >= iova && a - iova < length)
			dmalog_iova_bitmap_set(bm, a, SZ_4K);
	}
	return 0;
}

/* 82: the same report through windows of 64 bits, 128 bits, and the kernel's 16 Mi bits. */
static void b82_windowing_transparent(void **state)
{
	static const uint64_t pages[] = {0, 1, 63, 64, 65, 127, 128, 129, 1000, 4095, 4096, 9999};
	struct replay r = {pages, sizeof(pages) / sizeof(pages[0])};
	uint64_t windows[] = {64, 128, DMALOG_IOVA_BITMAP_WINDOW_BITS, 100 /* rounds to 64 */};
	uint64_t expect[157] = {0}, got[157];
	struct dmalog_iova_bitmap bm;

	for (int i = 0; i < r.n; i++)
		expect[pages[i] / 64] |= 1ULL << (pages[i] % 64);
	for (int w = 0; w < 4; w++) {
		memset(got, 0, sizeof(got));
		assert_int_equal(dmalog_iova_bitmap_init(&bm, 0, 10000 * SZ_4K, SZ_4K, got, 0), 0);
		assert_int_equal(dmalog_iova_bitmap_for_each(&bm, windows[w], replay_window, &r),
				 0);
		assert_memory_equal(got, expect, sizeof(expect));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(init_errors),
		cmocka_unit_test(b77_sizes),
		cmocka_unit_test(b78_window_span),
		cmocka_unit_test(b79_b80_unaligned_and_short_sets),
		cmocka_unit_test(clipping),
		cmocka_unit_test(random_sets_match_reference),
		cmocka_unit_test(random_conversions_match_reference),
		cmocka_unit_test(conversion_4k_2m_exact),
		cmocka_unit_test(source_read_bounds),
		cmocka_unit_test(b82_windowing_transparent),
	};

	return cmocka_run_group_tests_name("iova_bitmap", tests, NULL, NULL);
}
