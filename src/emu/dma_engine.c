// SPDX-License-Identifier: MIT
/*
 * DMA engine threads. A write stores its words, then tells the device tracker; through the
 * IOMMU the translation (which marks the page dirty) comes first and the access stays in
 * flight until the words are stored. Pause handshakes with the thread between writes.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <time.h>

#include <dmalog/dma.h>

#include "core/reserved.h"

#define BURST_WRITES 1024
#define BURST_GAP_NS (2 * 1000 * 1000)

struct dmalog_dma_engine {
	struct dmalog_dma_config cfg;
	uint64_t nslots, hot_slots;

	pthread_t thread;
	bool running;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int stop;	       /* atomic */
	int want_pause;	       /* atomic */
	unsigned int throttle; /* atomic: percent of the time spent not writing */
	bool paused;	       /* under lock: the thread has stopped between writes */
	int want_pause_p2p;    /* atomic */
	int in_p2p;	       /* atomic: a peer write is in flight */
	struct dmalog_iopt_dma *dma;

	uint64_t rng, cursor, seq;
	struct dmalog_dma_stats st; /* atomics */
};

static bool is_pow2(uint64_t x)
{
	return x && !(x & (x - 1));
}

static int check_config(struct dmalog_dma_config *c)
{
	if (!c->mem || !c->mem_bytes || c->region_off >= c->mem_bytes || !RESERVED_ZERO(c))
		return -EINVAL;
	if (!c->region_len)
		c->region_len = c->mem_bytes - c->region_off;
	if (!c->write_bytes)
		c->write_bytes = 64;
	if (!c->skew)
		c->skew = 0.9;
	if (c->region_len > c->mem_bytes - c->region_off || !is_pow2(c->write_bytes) ||
	    c->write_bytes < 8 || c->write_bytes > 4096 || c->region_len < c->write_bytes ||
	    (c->region_off % c->write_bytes) || c->read_share < 0 || c->read_share > 1 ||
	    c->p2p_share < 0 || c->p2p_share > 1 || c->skew < 0 || c->skew > 1)
		return -EINVAL;
	if (c->p2p_share > 0 && (!c->peer || c->peer_bytes < c->write_bytes))
		return -EINVAL;
	if (c->hot_bytes > c->region_len)
		return -EINVAL;
	if (c->workload > DMALOG_WORKLOAD_BURSTY)
		return -EINVAL;
	return 0;
}

int dmalog_dma_engine_create(const struct dmalog_dma_config *cfg, struct dmalog_dma_engine **out)
{
	struct dmalog_dma_engine *e;
	int ret;

	if (!cfg)
		return -EINVAL;
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->cfg = *cfg;
	ret = check_config(&e->cfg);
	if (ret) {
		free(e);
		return ret;
	}
	e->nslots = e->cfg.region_len / e->cfg.write_bytes;
	e->hot_slots =
		(e->cfg.hot_bytes ? e->cfg.hot_bytes : e->cfg.region_len / 16) / e->cfg.write_bytes;
	if (!e->hot_slots)
		e->hot_slots = 1;
	e->rng = e->cfg.seed * 0x9e3779b97f4a7c15ULL + 1;
	pthread_mutex_init(&e->lock, NULL);
	pthread_cond_init(&e->cond, NULL);
	*out = e;
	return 0;
}

static uint64_t next_rand(struct dmalog_dma_engine *e)
{
	e->rng ^= e->rng >> 12;
	e->rng ^= e->rng << 25;
	e->rng ^= e->rng >> 27;
	return e->rng * 0x2545F4914F6CDD1DULL;
}

static double rand01(struct dmalog_dma_engine *e)
{
	return (next_rand(e) >> 11) * (1.0 / 9007199254740992.0);
}

static uint64_t pick_slot(struct dmalog_dma_engine *e)
{
	switch (e->cfg.workload) {
	case DMALOG_WORKLOAD_SEQUENTIAL:
		return e->cursor++ % e->nslots;
	case DMALOG_WORKLOAD_HOTCOLD:
		if (e->hot_slots >= e->nslots || rand01(e) < e->cfg.skew)
			return next_rand(e) % e->hot_slots;
		return e->hot_slots + next_rand(e) % (e->nslots - e->hot_slots);
	default:
		return next_rand(e) % e->nslots;
	}
}

static void count(uint64_t *stat, uint64_t n)
{
	__atomic_fetch_add(stat, n, __ATOMIC_RELAXED);
}

/* Store the tagged words of one write; racing readers see whole words. */
static void store_words(struct dmalog_dma_engine *e, uint8_t *host)
{
	uint64_t *w = (uint64_t *)host;

	for (uint32_t i = 0; i < e->cfg.write_bytes / 8; i++)
		__atomic_store_n(&w[i],
				 ((uint64_t)e->cfg.tag << 48) | (++e->seq & ((1ULL << 48) - 1)),
				 __ATOMIC_RELAXED);
}

static void load_words(struct dmalog_dma_engine *e, const uint8_t *host)
{
	const uint64_t *w = (const uint64_t *)host;
	uint64_t sum = 0;

	for (uint32_t i = 0; i < e->cfg.write_bytes / 8; i++)
		sum += __atomic_load_n(&w[i], __ATOMIC_RELAXED);
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	(void)sum;
}

static void access_guest(struct dmalog_dma_engine *e, uint64_t slot, bool write)
{
	uint64_t off = e->cfg.region_off + slot * e->cfg.write_bytes;
	uint64_t iova = e->cfg.iova_base + off;
	uint8_t *host = e->cfg.mem + off;

	if (e->dma) {
		uint64_t pa, room;

		if (dmalog_iopt_dma_begin(e->dma, iova, write, &pa, &room)) {
			count(&e->st.faults, 1);
			return;
		}
		host = (uint8_t *)(uintptr_t)pa;
	}
	if (write)
		store_words(e, host);
	else
		load_words(e, host);
	if (e->dma)
		dmalog_iopt_dma_end(e->dma);
	/* The device logs a write after its data has landed. */
	if (write && e->cfg.log_write)
		e->cfg.log_write(e->cfg.tracker, iova, e->cfg.write_bytes);
	count(write ? &e->st.writes : &e->st.reads, 1);
	if (write)
		count(&e->st.bytes, e->cfg.write_bytes);
}

static void peer_write(struct dmalog_dma_engine *e)
{
	uint64_t slots = e->cfg.peer_bytes / e->cfg.write_bytes;

	/* Dekker with pause_p2p: announce, then look at the request. */
	__atomic_store_n(&e->in_p2p, 1, __ATOMIC_SEQ_CST);
	if (!__atomic_load_n(&e->want_pause_p2p, __ATOMIC_SEQ_CST)) {
		store_words(e, e->cfg.peer + (next_rand(e) % slots) * e->cfg.write_bytes);
		count(&e->st.p2p_writes, 1);
	}
	__atomic_store_n(&e->in_p2p, 0, __ATOMIC_RELEASE);
}

static void sleep_ns(uint64_t ns)
{
	struct timespec ts = {.tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000};

	nanosleep(&ts, NULL);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

/* Wait here while paused; the pauser learns that no write is in flight. */
static void honour_pause(struct dmalog_dma_engine *e)
{
	pthread_mutex_lock(&e->lock);
	e->paused = true;
	pthread_cond_broadcast(&e->cond);
	while (__atomic_load_n(&e->want_pause, __ATOMIC_ACQUIRE) &&
	       !__atomic_load_n(&e->stop, __ATOMIC_ACQUIRE))
		pthread_cond_wait(&e->cond, &e->lock);
	e->paused = false;
	pthread_mutex_unlock(&e->lock);
}

/*
 * A throttle of @pct percent: for every stretch of writing, sleep so that writing takes only
 * (100 - pct)% of the time, as a throttled vCPU runs. Checked every 64 writes.
 */
static void honour_throttle(struct dmalog_dma_engine *e, uint64_t *run_since, uint64_t *start,
			    uint64_t *issued)
{
	unsigned int pct = __atomic_load_n(&e->throttle, __ATOMIC_RELAXED);
	uint64_t now, ran;

	if (!pct) {
		*run_since = 0;
		return;
	}
	now = now_ns();
	if (!*run_since)
		*run_since = now;
	ran = now - *run_since;
	if (ran < 1000000)
		return;
	sleep_ns(ran * pct / (100 - pct));
	*run_since = now_ns();
	/* Time spent throttled does not count against the rate: no burst to catch up. */
	*start = *run_since;
	*issued = 0;
}

static void *engine_thread(void *arg)
{
	struct dmalog_dma_engine *e = arg;
	uint64_t start = now_ns(), issued = 0, run_since = 0;

	while (!__atomic_load_n(&e->stop, __ATOMIC_ACQUIRE)) {
		double r;

		if (issued % 64 == 0)
			honour_throttle(e, &run_since, &start, &issued);
		if (__atomic_load_n(&e->want_pause, __ATOMIC_ACQUIRE)) {
			honour_pause(e);
			/* Time spent paused does not count against the rate. */
			start = now_ns();
			issued = 0;
			continue;
		}
		if (e->cfg.rate) {
			uint64_t due = start + issued * 1000000000ULL / e->cfg.rate, now = now_ns();

			if (now < due) {
				sleep_ns(due - now < 1000000 ? due - now : 1000000);
				continue;
			}
		} else if (e->cfg.workload == DMALOG_WORKLOAD_BURSTY && issued &&
			   issued % BURST_WRITES == 0) {
			sleep_ns(BURST_GAP_NS);
		}
		issued++;
		r = rand01(e);
		if (r < e->cfg.read_share)
			access_guest(e, pick_slot(e), false);
		else if (r < e->cfg.read_share + (1 - e->cfg.read_share) * e->cfg.p2p_share)
			peer_write(e);
		else
			access_guest(e, pick_slot(e), true);
	}
	return NULL;
}

int dmalog_dma_engine_start(struct dmalog_dma_engine *e)
{
	int ret;

	if (e->running)
		return -EBUSY;
	if (e->cfg.iopt && !e->dma) {
		ret = dmalog_iopt_dma_create(e->cfg.iopt, &e->dma);
		if (ret)
			return ret;
	}
	__atomic_store_n(&e->stop, 0, __ATOMIC_RELEASE);
	ret = -pthread_create(&e->thread, NULL, engine_thread, e);
	if (!ret)
		e->running = true;
	return ret;
}

void dmalog_dma_engine_stop(struct dmalog_dma_engine *e)
{
	if (!e->running)
		return;
	pthread_mutex_lock(&e->lock);
	__atomic_store_n(&e->stop, 1, __ATOMIC_RELEASE);
	pthread_cond_broadcast(&e->cond);
	pthread_mutex_unlock(&e->lock);
	pthread_join(e->thread, NULL);
	e->running = false;
}

void dmalog_dma_engine_destroy(struct dmalog_dma_engine *e)
{
	if (!e)
		return;
	dmalog_dma_engine_stop(e);
	dmalog_iopt_dma_destroy(e->dma);
	pthread_cond_destroy(&e->cond);
	pthread_mutex_destroy(&e->lock);
	free(e);
}

void dmalog_dma_engine_pause(struct dmalog_dma_engine *e)
{
	__atomic_store_n(&e->want_pause, 1, __ATOMIC_RELEASE);
	pthread_mutex_lock(&e->lock);
	while (e->running && !e->paused)
		pthread_cond_wait(&e->cond, &e->lock);
	pthread_mutex_unlock(&e->lock);
}

void dmalog_dma_engine_resume(struct dmalog_dma_engine *e)
{
	pthread_mutex_lock(&e->lock);
	__atomic_store_n(&e->want_pause, 0, __ATOMIC_RELEASE);
	pthread_cond_broadcast(&e->cond);
	pthread_mutex_unlock(&e->lock);
}

void dmalog_dma_engine_pause_p2p(struct dmalog_dma_engine *e)
{
	__atomic_store_n(&e->want_pause_p2p, 1, __ATOMIC_SEQ_CST);
	while (__atomic_load_n(&e->in_p2p, __ATOMIC_SEQ_CST))
		sched_yield();
}

void dmalog_dma_engine_resume_p2p(struct dmalog_dma_engine *e)
{
	__atomic_store_n(&e->want_pause_p2p, 0, __ATOMIC_RELEASE);
}

void dmalog_dma_engine_get_stats(struct dmalog_dma_engine *e, struct dmalog_dma_stats *st)
{
	st->writes = __atomic_load_n(&e->st.writes, __ATOMIC_RELAXED);
	st->reads = __atomic_load_n(&e->st.reads, __ATOMIC_RELAXED);
	st->p2p_writes = __atomic_load_n(&e->st.p2p_writes, __ATOMIC_RELAXED);
	st->bytes = __atomic_load_n(&e->st.bytes, __ATOMIC_RELAXED);
	st->faults = __atomic_load_n(&e->st.faults, __ATOMIC_RELAXED);
}

void dmalog_dma_engine_set_throttle(struct dmalog_dma_engine *e, unsigned int percent)
{
	__atomic_store_n(&e->throttle, percent > 99 ? 99 : percent, __ATOMIC_RELAXED);
}
