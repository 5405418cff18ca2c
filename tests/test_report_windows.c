// SPDX-License-Identifier: MIT
/*
 * Window edges inside one REPORT (47 and the issue "REPORT at memory speed"): the core hands a
 * long REPORT to the tracker window by window, yet a tracked page (or IOMMU leaf) lying wholly
 * inside the REPORT must be cleared by it even when a window edge cuts it, so that a second
 * identical REPORT comes back empty but for pages cut by the REPORT's own edges.
 *
 * Randomised over the tracker (software, device, IOMMU leaves), tracker page size, report
 * page size, window size and range alignment. Each trial checks: the first REPORT sets
 * exactly the report pages that dirty tracked pages touch (nothing lost, nothing extra), the
 * second sets exactly those of dirty pages cut by the REPORT's edges, and a REPORT of the
 * whole tracked space then finds exactly the pages the first did not clear, and nothing after.
 */
#include <string.h>

#include "helpers.h"

typedef struct vfio_device_feature_dma_logging_range range_t;

enum kind { SW, DEV, IOMMU, NKINDS };

#define TRACKED_PAGES 12

static uint64_t seed = 88172645463325252ULL;

static uint64_t rnd(void)
{
	seed ^= seed << 13;
	seed ^= seed >> 7;
	seed ^= seed << 17;
	return seed;
}

static uint64_t pick(const uint64_t *v, unsigned int n)
{
	return v[rnd() % n];
}

/* A tracker of one kind behind a uniform "report [iova, +len) at page, in windows" call. */
struct subject {
	enum kind kind;
	struct dmalog_swtrack *sw;
	struct dmalog_devtrack *dt;
	struct dmalog_device *dev;
	struct dmalog_iopt *iopt;
	struct dmalog_iopt_dma *dma;
	uint64_t base, page; /* tracked space [base, base + TRACKED_PAGES * page) */
	uint64_t window_bits;
};

static void subject_open(struct subject *s, enum kind kind, uint64_t page, uint64_t window_bits)
{
	struct dmalog_device_desc desc = {0};
	range_t r;
	uint64_t selected = 0;

	memset(s, 0, sizeof(*s));
	s->kind = kind;
	s->page = page;
	s->window_bits = window_bits;
	/* Aligned to the tracked page, not to anything larger: edges fall anywhere. */
	s->base = page * (3 + rnd() % 5);
	r = (range_t){s->base, TRACKED_PAGES * page};
	if (kind == IOMMU) {
		struct dmalog_iopt_config cfg = {0};

		assert_int_equal(dmalog_iopt_create(&cfg, &s->iopt), 0);
		assert_int_equal(dmalog_iopt_map(s->iopt, r.iova, r.length, 0,
						 DMALOG_IOPT_READ | DMALOG_IOPT_WRITE),
				 0);
		assert_int_equal(dmalog_iopt_dma_create(s->iopt, &s->dma), 0);
		assert_int_equal(dmalog_iopt_set_dirty_tracking(s->iopt, true), 0);
		return;
	}
	if (kind == SW) {
		assert_int_equal(dmalog_swtrack_create(&s->sw), 0);
		desc.log_ops = dmalog_swtrack_log_ops();
		desc.priv = s->sw;
	} else {
		struct dmalog_devtrack_caps caps = DMALOG_DEVTRACK_CAPS_DEFAULT;

		caps.max_msg_size = 64; /* many messages per REPORT */
		caps.queue_depth = 4;
		assert_int_equal(dmalog_devtrack_create(&caps, &s->dt), 0);
		desc.log_ops = dmalog_devtrack_log_ops();
		desc.priv = s->dt;
	}
	assert_int_equal(dmalog_device_create(&desc, &s->dev), 0);
	dmalog_device_set_report_window(s->dev, window_bits);
	assert_int_equal(log_start(s->dev, &r, 1, page, &selected), 0);
	assert_int_equal(selected, page);
}

static void subject_close(struct subject *s)
{
	dmalog_device_destroy(s->dev);
	dmalog_swtrack_destroy(s->sw);
	dmalog_devtrack_destroy(s->dt);
	dmalog_iopt_dma_destroy(s->dma);
	dmalog_iopt_destroy(s->iopt);
}

/* The device (or the IOMMU's translation) records a one-byte write at @iova. */
static void subject_write(struct subject *s, uint64_t iova)
{
	if (s->kind == SW) {
		dmalog_swtrack_log_write(s->sw, iova, 1);
	} else if (s->kind == DEV) {
		dmalog_devtrack_log_write(s->dt, iova, 1);
	} else {
		uint64_t pa, room;

		assert_int_equal(dmalog_iopt_dma_begin(s->dma, iova, true, &pa, &room), 0);
		dmalog_iopt_dma_end(s->dma);
	}
}

static int iopt_window(struct dmalog_iova_bitmap *bm, uint64_t iova, uint64_t length, void *o)
{
	return dmalog_iopt_read_and_clear_dirty(o, iova, length, 0, bm);
}

static void subject_report(struct subject *s, uint64_t iova, uint64_t length, uint64_t psize,
			   uint64_t *bitmap)
{
	struct dmalog_iova_bitmap bm;

	if (s->kind != IOMMU) {
		assert_int_equal(log_report(s->dev, iova, length, psize, bitmap), 0);
		return;
	}
	assert_int_equal(dmalog_iova_bitmap_init(&bm, iova, length, psize, bitmap, 0), 0);
	assert_int_equal(dmalog_iova_bitmap_for_each(&bm, s->window_bits, iopt_window, s->iopt), 0);
}

/* Expected bits of a REPORT [a, a + len) at @psize: dirty tracked pages that @want selects. */
static void expect_bits(const struct subject *s, const bool *dirty, uint64_t a, uint64_t len,
			uint64_t psize, bool only_cut, uint64_t *out)
{
	for (int i = 0; i < TRACKED_PAGES; i++) {
		uint64_t p = s->base + i * s->page, lo, hi;
		bool inside = p >= a && p + s->page <= a + len;

		if (!dirty[i] || p >= a + len || p + s->page <= a || (only_cut && inside))
			continue;
		lo = p > a ? p : a;
		hi = (p + s->page < a + len ? p + s->page : a + len) - 1;
		for (uint64_t b = (lo - a) / psize; b <= (hi - a) / psize; b++)
			out[b / 64] |= 1ULL << (b % 64);
	}
}

static void one_trial(enum kind kind)
{
	static const uint64_t sw_pages[] = {SZ_4K, 2 * SZ_4K, 16 * SZ_4K, SZ_2M};
	static const uint64_t iommu_pages[] = {SZ_4K, SZ_2M, SZ_1G};
	static const uint64_t report_pages[] = {SZ_4K, 2 * SZ_4K, 4 * SZ_4K, 16 * SZ_4K, SZ_2M};
	static const uint64_t windows[] = {64, 128, 192, 512, 4096};
	uint64_t page = kind == IOMMU ? pick(iommu_pages, 3) : pick(sw_pages, 4);
	uint64_t psize = pick(report_pages, 5);
	struct subject s;
	bool dirty[TRACKED_PAGES], left[TRACKED_PAGES];
	uint64_t a, len, span, nwords, *got, *want;

	subject_open(&s, kind, page, pick(windows, 5));
	span = TRACKED_PAGES * page;
	for (int i = 0; i < TRACKED_PAGES; i++) {
		dirty[i] = rnd() % 3 != 0;
		if (dirty[i])
			subject_write(&s, s.base + i * page + rnd() % page);
	}
	/* A report-page-aligned range starting anywhere around the tracked space. */
	a = (s.base - page + rnd() % (span + page)) / psize * psize;
	len = (s.base + span + page - a) / psize;
	len = (1 + rnd() % (len ? len : 1)) * psize;
	nwords = (len / psize + 63) / 64;
	got = calloc(nwords, 8);
	want = calloc(nwords, 8);

	subject_report(&s, a, len, psize, got);
	expect_bits(&s, dirty, a, len, psize, false, want);
	assert_memory_equal(got, want, nwords * 8);

	memset(got, 0, nwords * 8);
	memset(want, 0, nwords * 8);
	subject_report(&s, a, len, psize, got);
	expect_bits(&s, dirty, a, len, psize, true, want);
	assert_memory_equal(got, want, nwords * 8);
	free(got);
	free(want);

	/* What the first REPORT left: pages it did not hold wholly. */
	for (int i = 0; i < TRACKED_PAGES; i++) {
		uint64_t p = s.base + i * page;

		left[i] = dirty[i] && !(p >= a && p + page <= a + len);
	}
	nwords = (span / page + 63) / 64;
	got = calloc(nwords, 8);
	want = calloc(nwords, 8);
	subject_report(&s, s.base, span, page, got);
	expect_bits(&s, left, s.base, span, page, false, want);
	assert_memory_equal(got, want, nwords * 8);
	memset(got, 0, nwords * 8);
	subject_report(&s, s.base, span, page, got);
	for (uint64_t w = 0; w < nwords; w++)
		assert_int_equal(got[w], 0);
	free(got);
	free(want);
	subject_close(&s);
}

static void window_edges_swtrack(void **state)
{
	for (int i = 0; i < 400; i++)
		one_trial(SW);
}

static void window_edges_devtrack(void **state)
{
	for (int i = 0; i < 150; i++)
		one_trial(DEV);
}

static void window_edges_iommu(void **state)
{
	for (int i = 0; i < 150; i++)
		one_trial(IOMMU);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(window_edges_swtrack),
		cmocka_unit_test(window_edges_devtrack),
		cmocka_unit_test(window_edges_iommu),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
