// SPDX-License-Identifier: MIT
/*
 * Software dirty tracker: a page log in host memory (pagelog) behind dmalog_log_ops. A report
 * hands the log's words straight to the bitmap writer, which converts page sizes.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include <dmalog/swtrack.h>

#include "pagelog.h"

struct dmalog_swtrack {
	/* Writers and the reporter share it; START and STOP exclude them. */
	pthread_rwlock_t lock;
	bool active;
	uint64_t log_limit;
	struct pagelog log;
};

int dmalog_swtrack_create(struct dmalog_swtrack **out)
{
	struct dmalog_swtrack *t = calloc(1, sizeof(*t));

	if (!t)
		return -ENOMEM;
	pthread_rwlock_init(&t->lock, NULL);
	t->log_limit = DMALOG_SWTRACK_MAX_LOG_BYTES;
	*out = t;
	return 0;
}

void dmalog_swtrack_destroy(struct dmalog_swtrack *t)
{
	if (!t)
		return;
	pagelog_free(&t->log);
	pthread_rwlock_destroy(&t->lock);
	free(t);
}

static int swtrack_start(void *priv, const struct dmalog_range *ranges, uint32_t n,
			 uint64_t *page_size)
{
	struct dmalog_swtrack *t = priv;
	unsigned int shift = __builtin_ctzll(*page_size);
	int ret = 0;

	pthread_rwlock_wrlock(&t->lock);
	if (t->active) {
		ret = -EINVAL;
		goto out;
	}
	if (shift < 12)
		shift = 12;
	/* The driver's choice when the hint would need too big a log: coarser pages. */
	while (shift < 63 && pagelog_bytes(ranges, n, shift) > t->log_limit)
		shift++;
	ret = pagelog_init(&t->log, ranges, n, shift);
	if (!ret) {
		t->active = true;
		*page_size = 1ULL << shift;
	}
out:
	pthread_rwlock_unlock(&t->lock);
	return ret;
}

static int swtrack_stop(void *priv)
{
	struct dmalog_swtrack *t = priv;

	pthread_rwlock_wrlock(&t->lock);
	pagelog_free(&t->log);
	t->active = false;
	pthread_rwlock_unlock(&t->lock);
	return 0;
}

void dmalog_swtrack_log_write(struct dmalog_swtrack *t, uint64_t iova, uint64_t length)
{
	pthread_rwlock_rdlock(&t->lock);
	if (t->active)
		pagelog_mark(&t->log, iova, length);
	pthread_rwlock_unlock(&t->lock);
}

static void to_bitmap(void *opaque, uint64_t page_iova, unsigned int shift, const uint64_t *words,
		      uint64_t nbits)
{
	dmalog_iova_bitmap_set_from(opaque, page_iova, shift, words, nbits);
}

static int swtrack_read_and_clear(void *priv, uint64_t iova, uint64_t length,
				  struct dmalog_iova_bitmap *dirty)
{
	struct dmalog_swtrack *t = priv;
	int ret = 0;

	if (!length)
		return 0;
	pthread_rwlock_rdlock(&t->lock);
	if (t->active)
		pagelog_take(&t->log, iova, iova + length - 1, to_bitmap, dirty);
	else
		ret = -EINVAL;
	pthread_rwlock_unlock(&t->lock);
	return ret;
}

void dmalog_swtrack_set_log_limit(struct dmalog_swtrack *t, uint64_t bytes)
{
	pthread_rwlock_wrlock(&t->lock);
	t->log_limit = bytes ? bytes : DMALOG_SWTRACK_MAX_LOG_BYTES;
	pthread_rwlock_unlock(&t->lock);
}

uint64_t dmalog_swtrack_page_size(struct dmalog_swtrack *t)
{
	uint64_t size;

	pthread_rwlock_rdlock(&t->lock);
	size = t->active ? 1ULL << t->log.pgshift : 0;
	pthread_rwlock_unlock(&t->lock);
	return size;
}

static const struct dmalog_log_ops swtrack_ops = {
	.log_start = swtrack_start,
	.log_stop = swtrack_stop,
	.log_read_and_clear = swtrack_read_and_clear,
};

const struct dmalog_log_ops *dmalog_swtrack_log_ops(void)
{
	return &swtrack_ops;
}
