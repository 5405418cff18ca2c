// SPDX-License-Identifier: MIT
/*
 * DMA engines: what they write is what the trackers report (device log and IOMMU), reads are
 * never logged (behaviour 49), pausing stops every write before it returns, peer-to-peer
 * writes pause on their own, workloads land where they should, faults are counted.
 */
#include <errno.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"

#define MEM (8ULL << 20)

static uint8_t *guest(void)
{
	uint8_t *m = aligned_alloc(SZ_2M, MEM);

	assert_non_null(m);
	memset(m, 0, MEM);
	return m;
}

static void sw_log(void *tracker, uint64_t iova, uint64_t len)
{
	dmalog_swtrack_log_write(tracker, iova, len);
}

/* Pages holding any non-zero byte. */
static void touched_pages(const uint8_t *mem, uint64_t *bitmap)
{
	memset(bitmap, 0, MEM / SZ_4K / 8);
	for (uint64_t p = 0; p < MEM / SZ_4K; p++)
		for (uint64_t i = 0; i < SZ_4K; i += 8)
			if (*(const uint64_t *)(mem + p * SZ_4K + i)) {
				bitmap[p / 64] |= 1ULL << (p % 64);
				break;
			}
}

/*
 * Wait until the engine has done at least this much (polling, up to 20 s so that slow
 * sanitizer builds get there too): activity, not time, is what the tests need.
 */
static void wait_for(struct dmalog_dma_engine *e, uint64_t writes, uint64_t reads, uint64_t faults,
		     uint64_t p2p)
{
	struct dmalog_dma_stats st;

	for (int ms = 0; ms < 20000; ms++) {
		dmalog_dma_engine_get_stats(e, &st);
		if (st.writes >= writes && st.reads >= reads && st.faults >= faults &&
		    st.p2p_writes >= p2p)
			return;
		usleep(1000);
	}
	fail_msg("the engine did not get there: %llu writes, %llu reads, %llu faults",
		 (unsigned long long)st.writes, (unsigned long long)st.reads,
		 (unsigned long long)st.faults);
}

/* Run until the engine has done at least this much, then stop it. */
static void run_until(struct dmalog_dma_engine *e, uint64_t writes, uint64_t reads, uint64_t faults)
{
	assert_int_equal(dmalog_dma_engine_start(e), 0);
	wait_for(e, writes, reads, faults, 0);
	dmalog_dma_engine_stop(e);
}

static void config_errors(void **state)
{
	uint8_t mem[8192];
	struct dmalog_dma_engine *e;
	struct dmalog_dma_config c = {.mem = mem, .mem_bytes = sizeof(mem)};

	c.write_bytes = 48;
	assert_int_equal(dmalog_dma_engine_create(&c, &e), -EINVAL);
	c.write_bytes = 64;
	c.region_off = 8192;
	assert_int_equal(dmalog_dma_engine_create(&c, &e), -EINVAL);
	c.region_off = 0;
	c.p2p_share = 0.5;
	assert_int_equal(dmalog_dma_engine_create(&c, &e), -EINVAL);
	c.p2p_share = 0;
	c.read_share = 2;
	assert_int_equal(dmalog_dma_engine_create(&c, &e), -EINVAL);
	c.read_share = 0;
	assert_int_equal(dmalog_dma_engine_create(&c, &e), 0);
	dmalog_dma_engine_destroy(e);
	assert_int_equal(dmalog_dma_engine_create(NULL, &e), -EINVAL);
}

/* Through the device log: after the engine stops, the report is exactly the pages written. */
static void device_log_covers_writes(void **state)
{
	uint8_t *mem = guest();
	uint64_t *report = calloc(MEM / SZ_4K / 64, 8), *touched = calloc(MEM / SZ_4K / 64, 8);
	struct vfio_device_feature_dma_logging_range r = {0, MEM};
	struct dmalog_swtrack *sw;
	struct dmalog_device *dev = swtrack_device(&sw);
	struct dmalog_dma_config c = {.mem = mem,
				      .mem_bytes = MEM,
				      .log_write = sw_log,
				      .tracker = sw,
				      .workload = DMALOG_WORKLOAD_RANDOM,
				      .tag = 1};
	struct dmalog_dma_engine *e;

	assert_int_equal(log_start(dev, &r, 1, SZ_4K, NULL), 0);
	assert_int_equal(dmalog_dma_engine_create(&c, &e), 0);
	run_until(e, 1000, 0, 0);
	assert_int_equal(log_report(dev, 0, MEM, SZ_4K, report), 0);
	touched_pages(mem, touched);
	assert_memory_equal(report, touched, MEM / SZ_4K / 8);
	dmalog_dma_engine_destroy(e);
	dmalog_device_destroy(dev);
	dmalog_swtrack_destroy(sw);
	free(report);
	free(touched);
	free(mem);
}

/* Through the IOMMU, with 49: reads translate but leave nothing dirty. */
static void b49_iommu_reads_not_logged(void **state)
{
	uint8_t *mem = guest();
	uint64_t *report = calloc(MEM / SZ_4K / 64, 8), *touched = calloc(MEM / SZ_4K / 64, 8);
	struct dmalog_iopt *iopt;
	struct dmalog_iova_bitmap bm;
	struct dmalog_dma_config c = {.mem = mem,
				      .mem_bytes = MEM,
				      .iova_base = SZ_1G,
				      .workload = DMALOG_WORKLOAD_RANDOM,
				      .tag = 2};
	struct dmalog_dma_engine *e;
	struct dmalog_dma_stats st;

	assert_int_equal(dmalog_iopt_create(NULL, &iopt), 0);
	assert_int_equal(
		dmalog_iopt_map(iopt, SZ_1G, MEM, (uintptr_t)mem,
				DMALOG_IOPT_READ | DMALOG_IOPT_WRITE | DMALOG_IOPT_NO_HUGE),
		0);
	assert_int_equal(dmalog_iopt_set_dirty_tracking(iopt, true), 0);
	c.iopt = iopt;
	for (int reads_only = 1; reads_only >= 0; reads_only--) {
		c.read_share = reads_only ? 1.0 : 0.5;
		assert_int_equal(dmalog_dma_engine_create(&c, &e), 0);
		run_until(e, reads_only ? 0 : 1000, 1000, 0);
		dmalog_dma_engine_get_stats(e, &st);
		assert_int_equal(st.faults, 0);
		assert_int_equal(st.writes == 0, reads_only);
		memset(report, 0, MEM / SZ_4K / 8);
		assert_int_equal(dmalog_iova_bitmap_init(&bm, SZ_1G, MEM, SZ_4K, report, 0), 0);
		assert_int_equal(dmalog_iopt_read_and_clear_dirty(iopt, SZ_1G, MEM, 0, &bm), 0);
		touched_pages(mem, touched);
		assert_memory_equal(report, touched, MEM / SZ_4K / 8);
		dmalog_dma_engine_destroy(e);
	}
	dmalog_iopt_destroy(iopt);
	free(report);
	free(touched);
	free(mem);
}

/* Pausing returns only when no write is in flight, and nothing moves until resume. */
static void pause_stops_every_write(void **state)
{
	uint8_t *mem = guest(), *snap = malloc(MEM);
	uint8_t peer[4096] = {0}, peer_snap[4096];
	struct dmalog_dma_config c = {.mem = mem,
				      .mem_bytes = MEM,
				      .p2p_share = 0.3,
				      .peer = peer,
				      .peer_bytes = sizeof(peer),
				      .tag = 3};
	struct dmalog_dma_engine *e;
	struct dmalog_dma_stats a, b;

	assert_int_equal(dmalog_dma_engine_create(&c, &e), 0);
	assert_int_equal(dmalog_dma_engine_start(e), 0);
	wait_for(e, 100, 0, 0, 10);
	dmalog_dma_engine_pause(e);
	dmalog_dma_engine_get_stats(e, &a);
	memcpy(snap, mem, MEM);
	memcpy(peer_snap, peer, sizeof(peer));
	usleep(20 * 1000);
	dmalog_dma_engine_get_stats(e, &b);
	assert_int_equal(a.writes, b.writes);
	assert_int_equal(a.p2p_writes, b.p2p_writes);
	assert_memory_equal(snap, mem, MEM);
	assert_memory_equal(peer_snap, peer, sizeof(peer));
	/* P2P paused alone: guest writes go on, the peer buffer stays still. */
	dmalog_dma_engine_pause_p2p(e);
	memcpy(peer_snap, peer, sizeof(peer));
	dmalog_dma_engine_resume(e);
	wait_for(e, b.writes + 100, 0, 0, 0);
	dmalog_dma_engine_pause(e);
	dmalog_dma_engine_get_stats(e, &a);
	assert_int_equal(a.p2p_writes, b.p2p_writes);
	assert_memory_equal(peer_snap, peer, sizeof(peer));
	dmalog_dma_engine_resume_p2p(e);
	dmalog_dma_engine_resume(e);
	wait_for(e, 0, 0, 0, a.p2p_writes + 10);
	dmalog_dma_engine_stop(e);
	dmalog_dma_engine_destroy(e);
	free(snap);
	free(mem);
}

/* Workloads: a ring fills from the start; a hot set with skew 1 never leaves it. */
static void workloads_land_where_they_should(void **state)
{
	uint8_t *mem = guest();
	uint64_t *touched = calloc(MEM / SZ_4K / 64, 8);
	struct dmalog_dma_config c = {.mem = mem,
				      .mem_bytes = MEM,
				      .region_off = SZ_2M,
				      .region_len = SZ_2M,
				      .rate = 2000,
				      .tag = 4,
				      .workload = DMALOG_WORKLOAD_SEQUENTIAL};
	struct dmalog_dma_engine *e;
	struct dmalog_dma_stats st;
	uint64_t pages;

	assert_int_equal(dmalog_dma_engine_create(&c, &e), 0);
	run_until(e, 50, 0, 0);
	dmalog_dma_engine_get_stats(e, &st);
	touched_pages(mem, touched);
	pages = (st.writes * 64 + SZ_4K - 1) / SZ_4K;
	for (uint64_t p = 0; p < MEM / SZ_4K; p++)
		assert_int_equal(test_bit(touched, p), p >= 512 && p < 512 + pages);
	dmalog_dma_engine_destroy(e);

	memset(mem, 0, MEM);
	c = (struct dmalog_dma_config){.mem = mem,
				       .mem_bytes = MEM,
				       .hot_bytes = 16 * SZ_4K,
				       .skew = 1.0,
				       .workload = DMALOG_WORKLOAD_HOTCOLD,
				       .tag = 5};
	assert_int_equal(dmalog_dma_engine_create(&c, &e), 0);
	run_until(e, 1000, 0, 0);
	touched_pages(mem, touched);
	for (uint64_t p = 16; p < MEM / SZ_4K; p++)
		assert_false(test_bit(touched, p));
	dmalog_dma_engine_destroy(e);

	c.workload = DMALOG_WORKLOAD_BURSTY;
	assert_int_equal(dmalog_dma_engine_create(&c, &e), 0);
	run_until(e, 2 * 1024 + 1, 0, 0); /* past two bursts */
	dmalog_dma_engine_destroy(e);
	free(touched);
	free(mem);
}

/* Writes to unmapped or read-only IOVA are blocked and counted, never performed. */
static void iommu_faults_block_writes(void **state)
{
	uint8_t *mem = guest();
	struct dmalog_iopt *iopt;
	struct dmalog_dma_config c = {.mem = mem, .mem_bytes = MEM, .tag = 6};
	struct dmalog_dma_engine *e;

	assert_int_equal(dmalog_iopt_create(NULL, &iopt), 0);
	/* First half writable, second half read-only; the last 2 MiB unmapped. */
	assert_int_equal(dmalog_iopt_map(iopt, 0, MEM / 2, (uintptr_t)mem, DMALOG_IOPT_WRITE), 0);
	assert_int_equal(
		dmalog_iopt_map(iopt, MEM / 2, MEM / 4, (uintptr_t)mem + MEM / 2, DMALOG_IOPT_READ),
		0);
	c.iopt = iopt;
	assert_int_equal(dmalog_dma_engine_create(&c, &e), 0);
	run_until(e, 100, 0, 100);
	for (uint64_t i = MEM / 2; i < MEM; i += 8)
		assert_int_equal(*(uint64_t *)(mem + i), 0);
	dmalog_dma_engine_destroy(e);
	dmalog_iopt_destroy(iopt);
	free(mem);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(config_errors),
		cmocka_unit_test(device_log_covers_writes),
		cmocka_unit_test(b49_iommu_reads_not_logged),
		cmocka_unit_test(pause_stops_every_write),
		cmocka_unit_test(workloads_land_where_they_should),
		cmocka_unit_test(iommu_faults_block_writes),
	};

	return cmocka_run_group_tests_name("dma", tests, NULL, NULL);
}
