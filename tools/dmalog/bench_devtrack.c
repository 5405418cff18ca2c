// SPDX-License-Identifier: MIT
/*
 * dmalog bench devtrack: dirty addresses reported per second by the device tracker (firmware
 * thread, message ring, host decode into the bitmap), dense and sparse over 16 GiB. The
 * baseline is the same tracker sending one address per message; the limit is the machine's
 * rate of read-modify-writes on a bitmap of the same size for the same pages in the same
 * order (random for report_sparse, sequential for report_dense), measured the same way.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dmalog/device.h>
#include <dmalog/devtrack.h>
#include <dmalog/handle.h>

#include "bench_util.h"

#define SZ_4K (1ULL << 12)

/* Entries per second for one REPORT of @space with @pages dirty, messages of @msg bytes. */
static double run_report(uint64_t space, const uint64_t *pages, uint64_t npages, uint32_t msg,
			 uint64_t *bitmap)
{
	struct dmalog_devtrack_caps caps = DMALOG_DEVTRACK_CAPS_DEFAULT;
	struct vfio_device_feature_dma_logging_range range = {0, space};
	struct dmalog_device_desc desc = {.log_ops = dmalog_devtrack_log_ops()};
	struct vfio_device_feature_dma_logging_control control = {
		.page_size = SZ_4K, .num_ranges = 1, .ranges = (uintptr_t)&range};
	struct vfio_device_feature_dma_logging_report report = {
		.length = space, .page_size = SZ_4K, .bitmap = (uintptr_t)bitmap};
	struct dmalog_devtrack *t;
	struct dmalog_device *dev;
	struct dmalog_handle *h = NULL;
	double best = 0;

	caps.max_msg_size = msg;
	if (dmalog_devtrack_create(&caps, &t))
		return 0;
	desc.priv = t;
	if (dmalog_device_create(&desc, &dev)) {
		dmalog_devtrack_destroy(t);
		return 0;
	}
	if (!dmalog_handle_from_device(dev, &h) &&
	    !dmalog_handle_feature(h,
				   VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_DMA_LOGGING_START,
				   &control, sizeof(control))) {
		for (int rep = 0; rep < 3; rep++) {
			struct dmalog_devtrack_stats before, after;
			double t0;

			for (uint64_t i = 0; i < npages; i++)
				dmalog_devtrack_log_write(t, pages[i] * SZ_4K, 1);
			memset(bitmap, 0, space / SZ_4K / 8);
			dmalog_devtrack_get_stats(t, &before);
			t0 = bench_now();
			if (dmalog_handle_feature(h,
						  VFIO_DEVICE_FEATURE_GET |
							  VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT,
						  &report, sizeof(report)))
				break;
			t0 = bench_now() - t0;
			dmalog_devtrack_get_stats(t, &after);
			/* Repeated random pages collapse in the log: count what was sent. */
			t0 = (after.entries - before.entries) / t0;
			if (t0 > best)
				best = t0;
		}
	}
	dmalog_handle_destroy(h);
	dmalog_device_destroy(dev);
	dmalog_devtrack_destroy(t);
	return best;
}

/*
 * The machine's limit for the same pages in the same order: one read-modify-write of the
 * bitmap per page (random or sequential, as the pages are), best of three like the report.
 */
static double rmw_rate(uint64_t *bitmap, uint64_t bitmap_bytes, const uint64_t *pages, uint64_t n)
{
	double best = 0;

	for (int rep = 0; rep < 3; rep++) {
		double t0;

		memset(bitmap, 0, bitmap_bytes);
		t0 = bench_now();
		for (uint64_t i = 0; i < n; i++)
			bitmap[pages[i] / 64] |= 1ULL << (pages[i] % 64);
		t0 = bench_now() - t0;
		bench_sink(bitmap[pages[0] / 64]);
		if (n / t0 > best)
			best = n / t0;
	}
	return best;
}

int bench_devtrack(const struct bench_opts *o)
{
	const uint64_t space = 16ULL << 30, total = space / SZ_4K;
	uint64_t n = o->quick ? 1 << 16 : 1 << 20, seed = 5;
	uint64_t *pages = malloc(n * sizeof(*pages));
	uint64_t *bitmap = calloc(total / 64, 8);
	const char *names[2] = {"report_sparse", "report_dense"};

	if (!pages || !bitmap) {
		fprintf(stderr, "dmalog bench devtrack: out of memory\n");
		return 1;
	}
	if (!o->json)
		printf("bench devtrack: dirty addresses reported per second, %llu pages of a 16 "
		       "GiB range\n",
		       (unsigned long long)n);
	for (int dense = 0; dense < 2; dense++) {
		double v, base, limit;

		for (uint64_t i = 0; i < n; i++)
			pages[i] = dense ? i : bench_rand(&seed) % total;
		v = run_report(space, pages, n, 4096, bitmap);
		base = run_report(space, pages, n / 16, 8, bitmap);
		limit = rmw_rate(bitmap, total / 8, pages, n);
		bench_print(o, "devtrack", names[dense], v / 1e6, "Mentries/s", base / 1e6,
			    limit / 1e6);
	}
	free(pages);
	free(bitmap);
	return 0;
}
