// SPDX-License-Identifier: MIT
/*
 * dmalog bench iopt: read-and-clear of the emulated I/O page table over 16 GiB and 1 TiB IOVA
 * spaces, 4 KiB and 2 MiB leaves, clean, dense and sparse, reported as page-table memory
 * scanned per second against the machine's read bandwidth and against a walk that looks every
 * page up from the root. A last case maps 16 GiB scattered over 1 TiB: the walk costs what is
 * mapped, not the IOVA space.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dmalog/iopt.h>

#include "bench_util.h"

#define SZ_4K (1ULL << 12)
#define SZ_2M (1ULL << 21)
#define SZ_1G (1ULL << 30)
#define GB    1e9

struct iopt_bench {
	const struct bench_opts *o;
	double read_bw;
	uint64_t *bitmap; /* 4 KiB granularity over the largest space */
};

enum dirty { CLEAN, DENSE, SPARSE };

/* Write one byte into every page (DENSE) or one page per 2 MiB (SPARSE) through the IOMMU. */
static void dirty_pages(struct dmalog_iopt *iopt, uint64_t base, uint64_t space, enum dirty d)
{
	struct dmalog_iopt_dma *dma;
	uint64_t step = d == DENSE ? SZ_4K : SZ_2M, pa, room;

	if (d == CLEAN || dmalog_iopt_dma_create(iopt, &dma))
		return;
	for (uint64_t iova = base; iova < base + space; iova += step)
		if (!dmalog_iopt_dma_begin(dma, iova, true, &pa, &room))
			dmalog_iopt_dma_end(dma);
	dmalog_iopt_dma_destroy(dma);
}

static double report_once(struct dmalog_iopt *iopt, uint64_t *bitmap, uint64_t space)
{
	struct dmalog_iova_bitmap bm;
	double t0;

	memset(bitmap, 0, space / SZ_4K / 8);
	dmalog_iova_bitmap_init(&bm, 0, space, SZ_4K, bitmap, 0);
	t0 = bench_now();
	dmalog_iopt_read_and_clear_dirty(iopt, 0, space, 0, &bm);
	return bench_now() - t0;
}

/*
 * The straightforward walk: every leaf looked up from the root, stepping by the leaf size the
 * lookup reports, its pages' bits set a word at a time; on the first @slice bytes.
 */
static double naive_walk(struct dmalog_iopt *iopt, uint64_t *bitmap, uint64_t slice)
{
	double t0 = bench_now();
	uint64_t size;

	for (uint64_t iova = 0; iova < slice; iova += size) {
		uint64_t pte = dmalog_iopt_read_pte(iopt, iova, &size), first = iova / SZ_4K;
		uint64_t n = size / SZ_4K;

		if (!size)
			size = SZ_4K;
		if (!(pte & DMALOG_IOPT_PTE_D))
			continue;
		if (n >= 64) {
			for (uint64_t w = first / 64; w < (first + n) / 64; w++)
				bitmap[w] = ~0ULL;
		} else {
			bitmap[first / 64] |= (n == 64 ? ~0ULL : ((1ULL << n) - 1)) << (first % 64);
		}
	}
	return bench_now() - t0;
}

/*
 * Map @mapped bytes with @leaf leaves in chunks of @chunk every @stride bytes of a @space
 * IOVA space, dirty them, time read-and-clear over the whole space.
 */
static void run_case(struct iopt_bench *b, const char *name, uint64_t space, uint64_t mapped,
		     uint64_t chunk, uint64_t stride, uint64_t leaf, enum dirty d)
{
	/* A physical address off the 2 MiB grid forces 4 KiB leaves. */
	uint64_t pa_skew = leaf == SZ_4K ? SZ_4K : 0, pte_bytes = mapped / leaf * 8;
	struct dmalog_iopt *iopt;
	double t = 1e30, tb;

	if (dmalog_iopt_create(NULL, &iopt))
		return;
	for (uint64_t iova = 0; iova < space && iova / stride * chunk < mapped; iova += stride)
		if (dmalog_iopt_map(iopt, iova, chunk, iova + pa_skew,
				    DMALOG_IOPT_READ | DMALOG_IOPT_WRITE)) {
			fprintf(stderr, "bench iopt: map failed\n");
			dmalog_iopt_destroy(iopt);
			return;
		}
	dmalog_iopt_set_dirty_tracking(iopt, true);
	for (int rep = 0; rep < 3; rep++) {
		double dt;

		for (uint64_t iova = 0; iova < space; iova += stride)
			dirty_pages(iopt, iova, chunk, d);
		dt = report_once(iopt, b->bitmap, space);
		if (dt < t)
			t = dt;
	}
	/* The baseline over a slice of the mapped part, re-dirtied first. */
	dirty_pages(iopt, 0, chunk < SZ_1G ? chunk : SZ_1G, d);
	tb = naive_walk(iopt, b->bitmap, chunk < SZ_1G ? chunk : SZ_1G);
	bench_sink(b->bitmap[0]);
	bench_print(b->o, "iopt", name, pte_bytes / t / GB, "GB/s",
		    (chunk < SZ_1G ? chunk : SZ_1G) / leaf * 8 / tb / GB, b->read_bw / GB);
	dmalog_iopt_destroy(iopt);
}

int bench_iopt(const struct bench_opts *o)
{
	const uint64_t g16 = 16 * SZ_1G, t1 = 1024 * SZ_1G;
	struct iopt_bench b = {.o = o};

	b.bitmap = calloc((o->quick ? g16 : t1) / SZ_4K / 64, 8);
	if (!b.bitmap) {
		fprintf(stderr, "dmalog bench iopt: out of memory\n");
		return 1;
	}
	b.read_bw = bench_read_bandwidth();
	if (!o->json)
		printf("bench iopt: read-and-clear, page-table memory scanned per second; "
		       "read bandwidth %.2f GB/s\n",
		       b.read_bw / GB);
	run_case(&b, "4k_clean_16g", g16, g16, g16, g16, SZ_4K, CLEAN);
	run_case(&b, "4k_dense_16g", g16, g16, g16, g16, SZ_4K, DENSE);
	run_case(&b, "4k_sparse_16g", g16, g16, g16, g16, SZ_4K, SPARSE);
	run_case(&b, "2m_dense_16g", g16, g16, g16, g16, SZ_2M, DENSE);
	if (!o->quick) {
		run_case(&b, "4k_clean_1t", t1, t1, t1, t1, SZ_4K, CLEAN);
		run_case(&b, "4k_sparse_1t", t1, t1, t1, t1, SZ_4K, SPARSE);
		run_case(&b, "2m_dense_1t", t1, t1, t1, t1, SZ_2M, DENSE);
		/* 16 GiB in 1 GiB pieces every 64 GiB: compare with 4k_clean_16g. */
		run_case(&b, "4k_clean_16g_in_1t", t1, g16, SZ_1G, 64 * SZ_1G, SZ_4K, CLEAN);
	}
	free(b.bitmap);
	return 0;
}
