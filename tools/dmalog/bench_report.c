// SPDX-License-Identifier: MIT
/*
 * dmalog bench report: one DMA-logging REPORT of a 64 GiB space at 4 KiB (16 Mi pages, a
 * 2 MiB bitmap) from each tracker (software, device, and the IOMMU read-and-clear of 4 KiB
 * leaves that IOMMU_HWPT_GET_DIRTY_BITMAP runs, window loop included), clean, with 1 % of the
 * pages dirty at random and with every page dirty. Caches are evicted before each REPORT
 * (a streaming pass over a buffer twice the size of the last-level cache); the figure is the
 * median of the repetitions.
 *
 * Each REPORT is set against two measurements of the same run: the machine's read bandwidth
 * (as the fraction of it the REPORT achieves over the log it must read: the bit log, or the
 * 8 bytes of PTE per page) and a straightforward tracker (a byte per page, marked with a
 * store, read and cleared with plain loops, merged a bit at a time) on the same pages.
 * Marking is timed too, in ns per page: single writes at random and in sequence, and
 * bursts through the batched call; through the IOMMU, a write through a cached IOTLB entry.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dmalog/dmalog.h>

#include "bench_util.h"

#define SZ_4K (1ULL << 12)

enum pattern { CLEAN, ONE_PCT, ALL, NPATTERNS };
static const char *const pattern_names[] = {"clean", "1pct", "all"};
enum tracker { SW, DEV, IOMMU, NAIVE, NTRACKERS };
static const char *const tracker_names[] = {"swtrack", "devtrack", "iommufd", "straightforward"};

struct report_bench {
	const struct bench_opts *o;
	uint64_t space, npages;
	int reps;
	double read_bw;
	uint64_t *bitmap;
	uint8_t *evict;
	size_t evict_bytes;
	uint64_t *random_pages; /* 1 % of the pages, at random */
	uint64_t nrandom;
	uint64_t ndistinct; /* distinct pages among them */
	/* The subjects. */
	struct dmalog_swtrack *sw;
	struct dmalog_device *sw_dev;
	struct dmalog_handle *sw_h;
	struct dmalog_devtrack *dt;
	struct dmalog_device *dt_dev;
	struct dmalog_handle *dt_h;
	struct dmalog_iopt *iopt;
	struct dmalog_iopt_dma *dma;
	uint8_t *naive; /* a byte per page */
};

/*
 * Read a buffer larger than the last-level cache (written once at setup): what the REPORT
 * touches afterwards comes from memory, and the lines it displaces are clean ones.
 */
static void evict_caches(struct report_bench *b)
{
	uint64_t sum = 0;

	for (size_t i = 0; i < b->evict_bytes; i += 64)
		sum += b->evict[i];
	bench_sink(sum);
}

static int start_call(struct dmalog_handle *h, uint64_t space)
{
	struct vfio_device_feature_dma_logging_range range = {0, space};

	return dmalog_handle_log_start(h, &range, 1, SZ_4K, NULL);
}

static int iopt_window(struct dmalog_iova_bitmap *bm, uint64_t iova, uint64_t length, void *o)
{
	return dmalog_iopt_read_and_clear_dirty(o, iova, length, 0, bm);
}

/* The straightforward REPORT: every byte read, dirty ones cleared and merged bit by bit. */
static void naive_report(struct report_bench *b)
{
	for (uint64_t p = 0; p < b->npages; p++) {
		if (b->naive[p]) {
			b->naive[p] = 0;
			b->bitmap[p / 64] |= 1ULL << (p % 64);
		}
	}
}

static void do_report(struct report_bench *b, enum tracker t)
{
	struct dmalog_iova_bitmap bm;

	switch (t) {
	case SW:
		dmalog_handle_log_report(b->sw_h, 0, b->space, SZ_4K, b->bitmap);
		break;
	case DEV:
		dmalog_handle_log_report(b->dt_h, 0, b->space, SZ_4K, b->bitmap);
		break;
	case IOMMU:
		dmalog_iova_bitmap_init(&bm, 0, b->space, SZ_4K, b->bitmap, 0);
		dmalog_iova_bitmap_for_each(&bm, DMALOG_IOVA_BITMAP_WINDOW_BITS, iopt_window,
					    b->iopt);
		break;
	default:
		naive_report(b);
	}
}

static void mark_page(struct report_bench *b, enum tracker t, uint64_t page)
{
	uint64_t pa, room;

	switch (t) {
	case SW:
		dmalog_swtrack_log_write(b->sw, page * SZ_4K, 1);
		break;
	case DEV:
		dmalog_devtrack_log_write(b->dt, page * SZ_4K, 1);
		break;
	case IOMMU:
		if (!dmalog_iopt_dma_begin(b->dma, page * SZ_4K, true, &pa, &room))
			dmalog_iopt_dma_end(b->dma);
		break;
	default:
		__atomic_store_n(&b->naive[page], 1, __ATOMIC_RELEASE);
	}
}

static void mark_pattern(struct report_bench *b, enum tracker t, enum pattern p)
{
	if (p == ONE_PCT) {
		if (t == SW) {
			dmalog_swtrack_log_writes(b->sw, b->random_pages, b->nrandom, 1);
			return;
		}
		for (uint64_t i = 0; i < b->nrandom; i++)
			mark_page(b, t, b->random_pages[i] / SZ_4K);
	} else if (p == ALL) {
		if (t == SW)
			dmalog_swtrack_log_write(b->sw, 0, b->space);
		else if (t == DEV)
			dmalog_devtrack_log_write(b->dt, 0, b->space);
		else if (t == NAIVE)
			memset(b->naive, 1, b->npages);
		else
			for (uint64_t pg = 0; pg < b->npages; pg++)
				mark_page(b, t, pg);
	}
}

/* Median seconds of one REPORT of tracker @t after marking @p, caches cold; bits checked. */
static double time_report(struct report_bench *b, enum tracker t, enum pattern p, int *bad)
{
	double secs[32];
	uint64_t want = p == CLEAN ? 0 : p == ALL ? b->npages : b->ndistinct;

	for (int r = 0; r < b->reps; r++) {
		uint64_t got = 0;
		double t0;

		memset(b->bitmap, 0, b->npages / 8);
		mark_pattern(b, t, p);
		evict_caches(b);
		t0 = bench_now();
		do_report(b, t);
		secs[r] = bench_now() - t0;
		for (uint64_t w = 0; w < b->npages / 64; w++)
			got += __builtin_popcountll(b->bitmap[w]);
		if (got != want)
			(*bad)++;
	}
	return bench_median(secs, b->reps);
}

/* ns per page of @n marks of tracker @t: random single writes, sequential, bursts. */
static void time_marking(struct report_bench *b, enum tracker t)
{
	const uint64_t burst = 256;
	uint64_t n = b->nrandom, *seq = malloc(n * sizeof(*seq));
	double secs[4][32];

	/* The device has its list of writes already: build it outside the clock. */
	for (uint64_t i = 0; seq && i < n; i++)
		seq[i] = i * SZ_4K;
	for (int r = 0; r < b->reps && seq; r++) {
		double t0 = bench_now();

		for (uint64_t i = 0; i < n; i++)
			mark_page(b, t, b->random_pages[i] / SZ_4K);
		secs[0][r] = (bench_now() - t0) / n * 1e9;
		t0 = bench_now();
		if (t == IOMMU) {
			/* A cached IOTLB entry: the same 256 pages over and over. */
			for (uint64_t i = 0; i < n; i++)
				mark_page(b, t, i % 256);
		} else {
			for (uint64_t i = 0; i < n; i++)
				mark_page(b, t, i);
		}
		secs[1][r] = (bench_now() - t0) / n * 1e9;
		secs[2][r] = secs[3][r] = 0;
		if (t == SW) {
			do_report(b, t);
			t0 = bench_now();
			for (uint64_t i = 0; i < n; i += burst)
				dmalog_swtrack_log_writes(b->sw, b->random_pages + i,
							  i + burst <= n ? burst : n - i, 1);
			secs[3][r] = (bench_now() - t0) / n * 1e9;
			do_report(b, t);
			t0 = bench_now();
			for (uint64_t i = 0; i < n; i += burst)
				dmalog_swtrack_log_writes(b->sw, seq + i,
							  i + burst <= n ? burst : n - i, 1);
			secs[2][r] = (bench_now() - t0) / n * 1e9;
		}
		do_report(b, t); /* leave the log clean */
	}
	free(seq);
	if (b->o->json) {
		printf("{\"bench\":\"report\",\"tracker\":\"%s\",\"case\":\"marking\","
		       "\"random_ns_per_page\":%.2f,\"%s_ns_per_page\":%.2f",
		       tracker_names[t], bench_median(secs[0], b->reps),
		       t == IOMMU ? "cached_iotlb" : "sequential", bench_median(secs[1], b->reps));
		if (t == SW)
			printf(",\"random_burst_ns_per_page\":%.2f,"
			       "\"sequential_burst_ns_per_page\":%.2f",
			       bench_median(secs[3], b->reps), bench_median(secs[2], b->reps));
		printf("}\n");
	} else {
		printf("report   %-15s marking      random %6.2f ns/page   %s %6.2f ns/page",
		       tracker_names[t], bench_median(secs[0], b->reps),
		       t == IOMMU ? "cached IOTLB" : "sequential", bench_median(secs[1], b->reps));
		if (t == SW)
			printf("\nreport   %-15s marking      random bursts %5.2f ns/page   "
			       "sequential bursts %5.2f ns/page",
			       tracker_names[t], bench_median(secs[3], b->reps),
			       bench_median(secs[2], b->reps));
		printf("\n");
	}
	fflush(stdout);
}

static int setup(struct report_bench *b)
{
	struct dmalog_device_desc sw = {.log_ops = dmalog_swtrack_log_ops()};
	struct dmalog_device_desc dt = {.log_ops = dmalog_devtrack_log_ops()};
	struct dmalog_devtrack_caps caps = DMALOG_DEVTRACK_CAPS_DEFAULT;
	uint64_t seed = 42;

	b->npages = b->space / SZ_4K;
	b->bitmap = calloc(b->npages / 64, 8);
	b->naive = calloc(b->npages, 1);
	b->evict = malloc(b->evict_bytes);
	b->nrandom = b->npages / 100;
	b->random_pages = malloc(b->nrandom * 8);
	if (!b->bitmap || !b->naive || !b->evict || !b->random_pages)
		return -1;
	memset(b->evict, 0x5a, b->evict_bytes);
	for (uint64_t i = 0; i < b->nrandom; i++) {
		uint64_t pg = bench_rand(&seed) % b->npages;

		b->random_pages[i] = pg * SZ_4K;
		if (!(b->bitmap[pg / 64] >> (pg % 64) & 1))
			b->ndistinct++;
		b->bitmap[pg / 64] |= 1ULL << (pg % 64);
	}
	caps.log_max_addr_space = 48;
	if (dmalog_swtrack_create(&b->sw) || dmalog_devtrack_create(&caps, &b->dt))
		return -1;
	sw.priv = b->sw;
	dt.priv = b->dt;
	if (dmalog_device_create(&sw, &b->sw_dev) || dmalog_device_create(&dt, &b->dt_dev))
		return -1;
	if (dmalog_handle_from_device(b->sw_dev, &b->sw_h) ||
	    dmalog_handle_from_device(b->dt_dev, &b->dt_h))
		return -1;
	if (start_call(b->sw_h, b->space) || start_call(b->dt_h, b->space))
		return -1;
	/* A physical address off the 2 MiB grid: 4 KiB leaves throughout. */
	if (dmalog_iopt_create(NULL, &b->iopt) ||
	    dmalog_iopt_map(b->iopt, 0, b->space, SZ_4K, DMALOG_IOPT_READ | DMALOG_IOPT_WRITE) ||
	    dmalog_iopt_dma_create(b->iopt, &b->dma) ||
	    dmalog_iopt_set_dirty_tracking(b->iopt, true))
		return -1;
	return 0;
}

static void teardown(struct report_bench *b)
{
	dmalog_handle_destroy(b->sw_h);
	dmalog_handle_destroy(b->dt_h);
	dmalog_device_destroy(b->sw_dev);
	dmalog_device_destroy(b->dt_dev);
	dmalog_swtrack_destroy(b->sw);
	dmalog_devtrack_destroy(b->dt);
	dmalog_iopt_dma_destroy(b->dma);
	dmalog_iopt_destroy(b->iopt);
	free(b->bitmap);
	free(b->naive);
	free(b->evict);
	free(b->random_pages);
}

int bench_report(const struct bench_opts *o)
{
	struct report_bench b = {
		.o = o,
		.space = o->quick ? 4ULL << 30 : 64ULL << 30,
		.reps = o->quick ? 3 : 10,
		.evict_bytes = o->quick ? 64u << 20 : 512u << 20,
	};
	double naive_secs[NPATTERNS], naive_bw;
	int bad = 0;

	if (setup(&b)) {
		fprintf(stderr, "bench report: setup failed (out of memory?)\n");
		teardown(&b);
		return 1;
	}
	if (!o->json)
		printf("report of %llu GiB at 4 KiB, caches evicted, median of %d; read bandwidth "
		       "measured before each tracker's REPORTs\n",
		       (unsigned long long)(b.space >> 30), b.reps);
	naive_bw = bench_read_bandwidth();
	for (int p = 0; p < NPATTERNS; p++)
		naive_secs[p] = time_report(&b, NAIVE, p, &bad);
	for (int t = 0; t < NTRACKERS; t++) {
		/* Bytes of log a REPORT that reads all of it reads: bits, PTEs, bytes. */
		double log_bytes = t == IOMMU	? b.npages * 8.0
				   : t == NAIVE ? b.npages
						: b.npages / 8.0;

		/*
		 * The ceiling is measured again for each tracker: on a shared machine it moves by
		 * half within one run, and a ratio is only honest against the bandwidth of its
		 * time.
		 */
		b.read_bw = t == NAIVE ? naive_bw : bench_read_bandwidth();
		for (int p = 0; p < NPATTERNS; p++) {
			double s = t == NAIVE ? naive_secs[p] : time_report(&b, t, p, &bad);
			double frac = log_bytes / s / b.read_bw;

			if (o->json)
				printf("{\"bench\":\"report\",\"tracker\":\"%s\",\"case\":\"%s\","
				       "\"gib\":%llu,\"ms\":%.4f,\"log_bytes\":%.0f,"
				       "\"read_bw_gbs\":%.2f,\"read_bw_fraction\":%.3f,"
				       "\"straightforward_ms\":%.4f,\"speedup\":%.2f}\n",
				       tracker_names[t], pattern_names[p],
				       (unsigned long long)(b.space >> 30), s * 1e3, log_bytes,
				       b.read_bw / 1e9, frac, naive_secs[p] * 1e3,
				       naive_secs[p] / s);
			else
				printf("report   %-15s %-6s %9.3f ms  %5.1f%% of %4.1f GB/s read "
				       "bandwidth over the log  x%-7.1f vs straightforward\n",
				       tracker_names[t], pattern_names[p], s * 1e3, 100 * frac,
				       b.read_bw / 1e9, naive_secs[p] / s);
			fflush(stdout);
		}
	}
	for (int t = 0; t < NTRACKERS; t++)
		time_marking(&b, t);
	teardown(&b);
	if (bad) {
		fprintf(stderr, "bench report: %d REPORTs returned the wrong number of pages\n",
			bad);
		return 1;
	}
	return 0;
}
