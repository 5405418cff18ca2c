// SPDX-License-Identifier: MIT
/*
 * Concurrency (run under ThreadSanitizer by .ci/run): atomic bitmap sets from several
 * threads (81), two devices reporting into one bitmap at once (46), and DMA writers racing
 * a reporter that copies what it reports, through the software tracker and through the
 * IOMMU page table: after a final report the copy equals memory.
 */
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"

#define THREADS 2

struct setter {
	struct dmalog_iova_bitmap *bm;
	int parity;
};

static void *set_every_other(void *arg)
{
	struct setter *s = arg;

	for (uint64_t page = s->parity; page < 64 * 1024; page += 2)
		dmalog_iova_bitmap_set(s->bm, page * SZ_4K, 1);
	return NULL;
}

/* 81: two threads set interleaved bits of the same words; none is lost. */
static void b81_concurrent_sets(void **state)
{
	uint64_t *words = calloc(1024, 8);
	struct dmalog_iova_bitmap bm;
	struct setter s[2] = {{&bm, 0}, {&bm, 1}};
	pthread_t t[2];

	assert_int_equal(dmalog_iova_bitmap_init(&bm, 0, 64 * 1024 * SZ_4K, SZ_4K, words,
						 DMALOG_IOVA_BITMAP_ATOMIC),
			 0);
	for (int i = 0; i < 2; i++)
		pthread_create(&t[i], NULL, set_every_other, &s[i]);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < 1024; i++)
		assert_int_equal(words[i], ~0ULL);
	free(words);
}

struct reporter {
	struct dmalog_device *dev;
	uint64_t *bitmap;
	uint64_t length;
	int ret;
};

static void *report_thread(void *arg)
{
	struct reporter *r = arg;

	r->ret = log_report(r->dev, 0, r->length, SZ_4K, r->bitmap);
	return NULL;
}

/*
 * 46: two devices report concurrently into one zeroed bitmap: the OR of their reports. The
 * issue "REPORT at memory speed" makes plain ORs the default (as the kernel's iova_bitmap);
 * reporters that share a bitmap at once ask for atomic ones (dmalog_device_set_report_shared).
 */
static void b46_two_devices_one_bitmap(void **state)
{
	const uint64_t len = 256 * SZ_2M, words = len / SZ_4K / 64;
	struct vfio_device_feature_dma_logging_range r = {0, len};
	struct dmalog_swtrack *sw[2];
	struct dmalog_device *dev[2];
	uint64_t *shared = calloc(words, 8), *expect = calloc(words, 8);
	uint64_t seed = 1;

	for (int d = 0; d < 2; d++) {
		dev[d] = swtrack_device(&sw[d]);
		/* Concurrent reporters into one bitmap say so: their REPORTs merge atomically. */
		dmalog_device_set_report_shared(dev[d], true);
		/* Device 1 tracks at 2M, so its report replicates into whole words. */
		assert_int_equal(log_start(dev[d], &r, 1, d ? SZ_2M : SZ_4K, NULL), 0);
	}
	for (int round = 0; round < 20; round++) {
		struct reporter rep[2];
		pthread_t t[2];

		memset(shared, 0, words * 8);
		memset(expect, 0, words * 8);
		for (int i = 0; i < 300; i++) {
			for (int d = 0; d < 2; d++) {
				uint64_t page;

				seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
				page = (seed >> 20) % (len / SZ_4K);
				dmalog_swtrack_log_write(sw[d], page * SZ_4K, 1);
				if (d)
					for (uint64_t p = page & ~511ULL; p < (page | 511) + 1; p++)
						expect[p / 64] |= 1ULL << (p % 64);
				else
					expect[page / 64] |= 1ULL << (page % 64);
			}
		}
		for (int d = 0; d < 2; d++) {
			rep[d] = (struct reporter){dev[d], shared, len, -1};
			pthread_create(&t[d], NULL, report_thread, &rep[d]);
		}
		for (int d = 0; d < 2; d++) {
			pthread_join(t[d], NULL);
			assert_int_equal(rep[d].ret, 0);
		}
		assert_memory_equal(shared, expect, words * 8);
	}
	for (int d = 0; d < 2; d++) {
		dmalog_device_destroy(dev[d]);
		dmalog_swtrack_destroy(sw[d]);
	}
	free(shared);
	free(expect);
}

/*
 * 46, contended: two reporters OR into the same word over and over, each owning half of its
 * bits. Bits are only ever set and nobody clears them, so after each of its REPORTs a reporter
 * must find its own half there. The REPORT path's atomic OR keeps it so; with a plain
 * read-modify-write the other reporter's store of a stale word erases it now and then, and
 * this test sees that without ThreadSanitizer's help.
 */
#define CONTENDED_ROUNDS 200000

struct contender {
	struct dmalog_device *dev;
	struct dmalog_swtrack *sw;
	uint64_t *word;
	int half;
	int *go;
	uint64_t missing, errors;
};

static void *contend(void *arg)
{
	struct contender *c = arg;
	uint64_t mine = 0xffffffffULL << (32 * c->half);

	while (!__atomic_load_n(c->go, __ATOMIC_ACQUIRE))
		;
	for (int round = 0; round < CONTENDED_ROUNDS; round++) {
		dmalog_swtrack_log_write(c->sw, 32 * (uint64_t)c->half * SZ_4K, 32 * SZ_4K);
		c->errors += log_report(c->dev, 0, 64 * SZ_4K, SZ_4K, c->word) != 0;
		c->missing += (__atomic_load_n(c->word, __ATOMIC_RELAXED) & mine) != mine;
	}
	return NULL;
}

static void b46_two_reporters_contend(void **state)
{
	struct vfio_device_feature_dma_logging_range r = {0, 64 * SZ_4K};
	uint64_t word = 0;
	struct contender c[2];
	pthread_t t[2];
	int go = 0;

	for (int d = 0; d < 2; d++) {
		c[d] = (struct contender){.word = &word, .half = d, .go = &go};
		c[d].dev = swtrack_device(&c[d].sw);
		dmalog_device_set_report_shared(c[d].dev, true);
		assert_int_equal(log_start(c[d].dev, &r, 1, SZ_4K, NULL), 0);
		pthread_create(&t[d], NULL, contend, &c[d]);
	}
	__atomic_store_n(&go, 1, __ATOMIC_RELEASE);
	for (int d = 0; d < 2; d++) {
		pthread_join(t[d], NULL);
		assert_int_equal(c[d].errors, 0);
		assert_int_equal(c[d].missing, 0);
		dmalog_device_destroy(c[d].dev);
		dmalog_swtrack_destroy(c[d].sw);
	}
	assert_int_equal(word, ~0ULL);
}

/* Guest memory a DMA writer changes and a reporter copies, word by word, atomically. */
struct guest {
	uint64_t *mem;
	uint64_t *shadow;
	uint64_t bytes;
	struct dmalog_swtrack *sw;  /* the tracker writes are logged to: this one ... */
	struct dmalog_devtrack *dt; /* ... or the device's */
	struct dmalog_device *dev;
	int writers_done;
	uint64_t rounds;
	unsigned int burst; /* > 0: log through dmalog_swtrack_log_writes() this many at once */
};

struct writer {
	struct guest *g;
	uint64_t id;
};

static void *dma_writer(void *arg)
{
	struct writer *w = arg;
	struct guest *g = w->g;
	uint64_t seed = w->id + 1, words = g->bytes / 8, pending[64];
	unsigned int npending = 0;

	/* Enough writes, and on for at least three syncs however the threads are scheduled. */
	for (uint64_t seq = 1; seq <= 200000 || __atomic_load_n(&g->rounds, __ATOMIC_RELAXED) < 3;
	     seq++) {
		uint64_t word;

		seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
		word = (seed >> 17) % words;
		/* Data first, then the log: the order a device page tracker guarantees. */
		__atomic_store_n(&g->mem[word], (w->id << 56) | seq, __ATOMIC_RELAXED);
		if (g->burst) {
			/* A burst's data all lands before the burst is logged. */
			pending[npending++] = word * 8;
			if (npending == g->burst) {
				dmalog_swtrack_log_writes(g->sw, pending, npending, 8);
				npending = 0;
			}
		} else if (g->sw) {
			dmalog_swtrack_log_write(g->sw, word * 8, 8);
		} else {
			dmalog_devtrack_log_write(g->dt, word * 8, 8);
		}
	}
	if (npending)
		dmalog_swtrack_log_writes(g->sw, pending, npending, 8);
	__atomic_fetch_add(&g->writers_done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void copy_reported(struct guest *g, const uint64_t *bitmap)
{
	uint64_t pages = g->bytes / SZ_4K;

	for (uint64_t p = 0; p < pages; p++) {
		if (!(bitmap[p / 64] >> (p % 64) & 1))
			continue;
		for (uint64_t i = p * 512; i < (p + 1) * 512; i++)
			g->shadow[i] = __atomic_load_n(&g->mem[i], __ATOMIC_RELAXED);
	}
}

static void sync_once(struct guest *g, uint64_t *bitmap)
{
	memset(bitmap, 0, g->bytes / SZ_4K / 8);
	assert_int_equal(log_report(g->dev, 0, g->bytes, SZ_4K, bitmap), 0);
	copy_reported(g, bitmap);
}

/* Nothing is lost: the shadow built from reports alone equals memory after a final sync. */
static void race(struct guest *g)
{
	struct vfio_device_feature_dma_logging_range r = {0, g->bytes};
	struct writer w[THREADS];
	pthread_t t[THREADS];
	uint64_t *bitmap = calloc(g->bytes / SZ_4K / 64, 8);

	g->mem = calloc(g->bytes, 1);
	g->shadow = calloc(g->bytes, 1);
	assert_int_equal(log_start(g->dev, &r, 1, SZ_4K, NULL), 0);
	for (int i = 0; i < THREADS; i++) {
		w[i] = (struct writer){g, (uint64_t)i + 1};
		pthread_create(&t[i], NULL, dma_writer, &w[i]);
	}
	/* Sync while the writers run. */
	while (__atomic_load_n(&g->writers_done, __ATOMIC_ACQUIRE) < THREADS) {
		sync_once(g, bitmap);
		__atomic_store_n(&g->rounds, g->rounds + 1, __ATOMIC_RELAXED);
	}
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	/* Final sync with the writers stopped. */
	sync_once(g, bitmap);
	printf("# %llu syncs raced the writers\n", (unsigned long long)g->rounds);
	/* A race needs racers: syncs while the writers ran, not one sync after they stopped. */
	assert_true(g->rounds >= 3);
	assert_memory_equal(g->shadow, g->mem, g->bytes);
	free(g->mem);
	free(g->shadow);
	free(bitmap);
}

static void writers_race_reporter(void **state)
{
	struct guest g = {.bytes = 16ULL << 20};

	g.dev = swtrack_device(&g.sw);
	race(&g);
	dmalog_device_destroy(g.dev);
	dmalog_swtrack_destroy(g.sw);
}

/* The same with writers logging bursts: a word's pages gathered into one OR. */
static void burst_writers_race_reporter(void **state)
{
	struct guest g = {.bytes = 16ULL << 20, .burst = 37};

	g.dev = swtrack_device(&g.sw);
	race(&g);
	dmalog_device_destroy(g.dev);
	dmalog_swtrack_destroy(g.sw);
}

/* Pages the two writers share: 64 log words. */
#define SHARED_PAGES  4096
#define SHARED_ROUNDS 2000

struct word_writer {
	struct dmalog_swtrack *sw;
	pthread_barrier_t *marked;
	int *go; /* rounds the writers may start */
	uint64_t parity;
	int single; /* one page per call, else the burst interface */
};

static void *mark_alternate_pages(void *arg)
{
	struct word_writer *w = arg;
	uint64_t *list = malloc(SHARED_PAGES / 2 * sizeof(*list));

	for (uint64_t i = 0; i < SHARED_PAGES / 2; i++)
		list[i] = (2 * i + w->parity) * SZ_4K;
	for (int r = 0; r < SHARED_ROUNDS; r++) {
		/* Spin, so that both start within a cache miss of each other and meet on words. */
		for (int spins = 0; __atomic_load_n(w->go, __ATOMIC_ACQUIRE) <= r; spins++)
			if (spins > 10000)
				sched_yield();
		if (w->single)
			for (uint64_t i = 0; i < SHARED_PAGES / 2; i++)
				dmalog_swtrack_log_write(w->sw, list[i], 1);
		else
			dmalog_swtrack_log_writes(w->sw, list, SHARED_PAGES / 2, 1);
		pthread_barrier_wait(w->marked);
	}
	free(list);
	return NULL;
}

/*
 * Two writers marking the even and the odd pages of the same log words at once, round after
 * round, a REPORT between rounds: the first to mark a half owns it and stores plainly into
 * its own copy, the other ORs into the shared copy. A plain store into a word the other writer
 * also writes would lose its bits: every REPORT must come back with every page.
 */
static void two_writers_share_words(void **state)
{
	struct vfio_device_feature_dma_logging_range r = {0, SHARED_PAGES * SZ_4K};
	uint64_t bitmap[SHARED_PAGES / 64];
	pthread_barrier_t marked;
	struct word_writer w[2];
	struct dmalog_swtrack *sw;
	struct dmalog_device *dev = swtrack_device(&sw);
	pthread_t t[2];
	int go = 0, lost = 0;

	assert_int_equal(log_start(dev, &r, 1, SZ_4K, NULL), 0);
	pthread_barrier_init(&marked, NULL, 3);
	for (int i = 0; i < 2; i++) {
		w[i] = (struct word_writer){sw, &marked, &go, (uint64_t)i, *(int *)*state};
		pthread_create(&t[i], NULL, mark_alternate_pages, &w[i]);
	}
	for (int round = 0; round < SHARED_ROUNDS; round++) {
		__atomic_store_n(&go, round + 1, __ATOMIC_RELEASE);
		pthread_barrier_wait(&marked);
		memset(bitmap, 0, sizeof(bitmap));
		assert_int_equal(log_report(dev, 0, SHARED_PAGES * SZ_4K, SZ_4K, bitmap), 0);
		for (int k = 0; k < SHARED_PAGES / 64; k++)
			lost += 64 - __builtin_popcountll(bitmap[k]);
	}
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	printf("# %d pages lost\n", lost);
	assert_int_equal(lost, 0);
	pthread_barrier_destroy(&marked);
	dmalog_device_destroy(dev);
	dmalog_swtrack_destroy(sw);
}

static int single_marks = 1, burst_marks;

struct churn {
	struct dmalog_swtrack *sw;
	int stop;
};

static void *churn_writer(void *arg)
{
	struct churn *c = arg;
	uint64_t seed = 7, list[16];

	while (!__atomic_load_n(&c->stop, __ATOMIC_ACQUIRE)) {
		seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
		dmalog_swtrack_log_write(c->sw, (seed >> 20) % SZ_1G, 64);
		for (int i = 0; i < 16; i++)
			list[i] = (seed >> 20) % SZ_1G + i * SZ_4K;
		dmalog_swtrack_log_writes(c->sw, list, 16, 8);
	}
	return NULL;
}

/*
 * Writers that never stop while logging starts, reports and stops over and over: STOP frees
 * the log only once every writer that saw it is out (ASan and TSan watch for the rest), and
 * sessions see the writes made during them.
 */
static void stop_races_writers(void **state)
{
	struct vfio_device_feature_dma_logging_range r = {0, SZ_1G};
	uint64_t *bitmap = calloc(SZ_1G / SZ_4K / 64, 8);
	struct churn c = {0};
	struct dmalog_device *dev = swtrack_device(&c.sw);
	pthread_t t[THREADS];
	int saw_writes = 0;

	for (int i = 0; i < THREADS; i++)
		pthread_create(&t[i], NULL, churn_writer, &c);
	for (int cycle = 0; cycle < 200; cycle++) {
		uint64_t bits = 0;

		assert_int_equal(log_start(dev, &r, 1, cycle % 2 ? SZ_4K : SZ_2M, NULL), 0);
		/* Give the writers a moment when they have not marked yet (a busy machine). */
		for (int rep = 0; rep < 20 && !bits; rep++) {
			if (rep)
				usleep(100);
			memset(bitmap, 0, SZ_1G / SZ_4K / 8);
			assert_int_equal(log_report(dev, 0, SZ_1G, SZ_4K, bitmap), 0);
			for (uint64_t w = 0; w < SZ_1G / SZ_4K / 64; w++)
				bits |= bitmap[w];
		}
		assert_int_equal(log_stop(dev), 0);
		saw_writes += bits != 0;
	}
	printf("# %d of 200 sessions saw writes\n", saw_writes);
	/* Not every cycle: on a busy machine the writers may sit out a whole one. */
	assert_true(saw_writes > 0);
	__atomic_store_n(&c.stop, 1, __ATOMIC_RELEASE);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	dmalog_device_destroy(dev);
	dmalog_swtrack_destroy(c.sw);
	free(bitmap);
}

/* The same through the device tracker: messages from its firmware thread. */
static void device_writers_race_reporter(void **state)
{
	struct dmalog_devtrack_caps caps = DMALOG_DEVTRACK_CAPS_DEFAULT;
	struct guest g = {.bytes = 16ULL << 20};
	struct dmalog_device_desc d = {.log_ops = dmalog_devtrack_log_ops()};

	caps.queue_depth = 8; /* small, so backpressure is part of the race */
	assert_int_equal(dmalog_devtrack_create(&caps, &g.dt), 0);
	d.priv = g.dt;
	assert_int_equal(dmalog_device_create(&d, &g.dev), 0);
	race(&g);
	dmalog_device_destroy(g.dev);
	dmalog_devtrack_destroy(g.dt);
}

/* DMA through the IOMMU: the same proof with IOTLB hits on cached dirty translations. */
struct iommu_guest {
	struct dmalog_iopt *iopt;
	uint64_t *mem, *shadow, bytes;
	int writers_done;
	int syncs; /* writers keep going until a few syncs have cleared under them */
};

struct iommu_writer {
	struct iommu_guest *g;
	uint64_t id;
};

static void *iommu_dma_writer(void *arg)
{
	struct iommu_writer *w = arg;
	struct iommu_guest *g = w->g;
	struct dmalog_iopt_dma *dma;
	uint64_t seed = w->id * 7919, pages = g->bytes / SZ_4K;

	assert_int_equal(dmalog_iopt_dma_create(g->iopt, &dma), 0);
	for (uint64_t seq = 1; seq <= 100000 || __atomic_load_n(&g->syncs, __ATOMIC_RELAXED) < 3;
	     seq++) {
		uint64_t page, iova, pa, room;

		seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
		/* Mostly a hot set of 32 pages (IOTLB hits), sometimes anywhere. */
		page = (seed >> 33) % 8 ? (seed >> 20) % 32 : (seed >> 20) % pages;
		iova = page * SZ_4K + ((seed >> 40) % 512) * 8;
		if (dmalog_iopt_dma_begin(dma, iova, true, &pa, &room))
			continue;
		__atomic_store_n(&g->mem[pa / 8], (w->id << 56) | seq, __ATOMIC_RELAXED);
		dmalog_iopt_dma_end(dma);
	}
	dmalog_iopt_dma_destroy(dma);
	__atomic_fetch_add(&g->writers_done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void iommu_sync(struct iommu_guest *g, uint64_t *bitmap)
{
	struct dmalog_iova_bitmap bm;
	uint64_t pages = g->bytes / SZ_4K;

	memset(bitmap, 0, pages / 8);
	assert_int_equal(dmalog_iova_bitmap_init(&bm, 0, g->bytes, SZ_4K, bitmap, 0), 0);
	assert_int_equal(dmalog_iopt_read_and_clear_dirty(g->iopt, 0, g->bytes, 0, &bm), 0);
	for (uint64_t p = 0; p < pages; p++)
		if (bitmap[p / 64] >> (p % 64) & 1)
			for (uint64_t i = p * 512; i < (p + 1) * 512; i++)
				g->shadow[i] = __atomic_load_n(&g->mem[i], __ATOMIC_RELAXED);
}

/* One race; true if the shadow built from reports equals memory at the end. */
static bool iommu_race(unsigned int debug, uint64_t *rounds_out)
{
	struct iommu_guest g = {.bytes = 8ULL << 20};
	struct iommu_writer w[THREADS];
	pthread_t t[THREADS];
	uint64_t *bitmap = calloc(g.bytes / SZ_4K / 64, 8), rounds = 0;
	/* An IOTLB larger than the guest: hot translations are never evicted, only invalidated. */
	struct dmalog_iopt_config cfg = {.iotlb_entries = 4096};
	bool same;

	g.mem = calloc(g.bytes, 1);
	g.shadow = calloc(g.bytes, 1);
	assert_int_equal(dmalog_iopt_create(&cfg, &g.iopt), 0);
	/* Identity map in 4 KiB leaves, so a dirty page is one page to copy. */
	for (uint64_t a = 0; a < g.bytes; a += SZ_4K)
		assert_int_equal(
			dmalog_iopt_map(g.iopt, a, SZ_4K, a, DMALOG_IOPT_READ | DMALOG_IOPT_WRITE),
			0);
	assert_int_equal(dmalog_iopt_set_dirty_tracking(g.iopt, true), 0);
	dmalog_iopt_set_debug(g.iopt, debug);
	for (int i = 0; i < THREADS; i++) {
		w[i] = (struct iommu_writer){&g, (uint64_t)i + 1};
		pthread_create(&t[i], NULL, iommu_dma_writer, &w[i]);
	}
	while (__atomic_load_n(&g.writers_done, __ATOMIC_ACQUIRE) < THREADS) {
		iommu_sync(&g, bitmap);
		__atomic_store_n(&g.syncs, (int)++rounds, __ATOMIC_RELAXED);
	}
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	iommu_sync(&g, bitmap);
	same = !memcmp(g.shadow, g.mem, g.bytes);
	dmalog_iopt_destroy(g.iopt);
	free(g.mem);
	free(g.shadow);
	free(bitmap);
	*rounds_out = rounds;
	return same;
}

static void iommu_writers_race_reporter(void **state)
{
	uint64_t rounds;

	assert_true(iommu_race(0, &rounds));
	printf("# %llu IOMMU syncs raced the writers\n", (unsigned long long)rounds);
	assert_true(rounds >= 3);
}

/* The same race without the IOTLB invalidation loses writes (within a few tries). */
static void iommu_race_without_invalidation_loses(void **state)
{
	uint64_t rounds;
	int tries = 0;

	while (iommu_race(DMALOG_IOPT_DEBUG_SKIP_INVALIDATE, &rounds))
		assert_true(++tries < 20);
	printf("# a write was lost after %d clean tries\n", tries);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(b81_concurrent_sets),
		cmocka_unit_test(b46_two_devices_one_bitmap),
		cmocka_unit_test(b46_two_reporters_contend),
		cmocka_unit_test(writers_race_reporter),
		cmocka_unit_test(burst_writers_race_reporter),
		cmocka_unit_test_prestate(two_writers_share_words, &single_marks),
		cmocka_unit_test_prestate(two_writers_share_words, &burst_marks),
		cmocka_unit_test(stop_races_writers),
		cmocka_unit_test(device_writers_race_reporter),
		cmocka_unit_test(iommu_writers_race_reporter),
		cmocka_unit_test(iommu_race_without_invalidation_loses),
	};

	return cmocka_run_group_tests_name("concurrent", tests, NULL, NULL);
}
