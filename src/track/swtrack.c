// SPDX-License-Identifier: MIT
/*
 * Software dirty tracker: a page log in host memory (pagelog) behind dmalog_log_ops. A report
 * hands the log's words straight to the bitmap writer, which converts page sizes.
 */
#include <errno.h>
#include <stdlib.h>

#include <dmalog/swtrack.h>

#include "pagelog.h"

struct dmalog_swtrack {
	/* Bytes a START may take for its log; read by START, set at any time. */
	uint64_t log_limit;
	/* Writers, the reporter and START/STOP synchronise through the log's own lock. */
	struct pagelog log;
};

int dmalog_swtrack_create(struct dmalog_swtrack **out)
{
	struct dmalog_swtrack *t = calloc(1, sizeof(*t));

	if (!t)
		return -ENOMEM;
	pagelog_setup(&t->log);
	t->log_limit = DMALOG_SWTRACK_MAX_LOG_BYTES;
	*out = t;
	return 0;
}

void dmalog_swtrack_destroy(struct dmalog_swtrack *t)
{
	if (!t)
		return;
	pagelog_teardown(&t->log);
	free(t);
}

static int swtrack_start(void *priv, const struct dmalog_range *ranges, uint32_t n,
			 uint64_t *page_size)
{
	struct dmalog_swtrack *t = priv;
	unsigned int shift = __builtin_ctzll(*page_size);
	uint64_t limit = __atomic_load_n(&t->log_limit, __ATOMIC_RELAXED);
	int ret;

	if (shift < 12)
		shift = 12;
	/* The driver's choice when the hint would need too big a log: coarser pages. */
	while (shift < 63 && pagelog_bytes(ranges, n, shift) > limit)
		shift++;
	ret = pagelog_start(&t->log, ranges, n, shift);
	if (!ret)
		*page_size = 1ULL << shift;
	return ret;
}

static int swtrack_stop(void *priv)
{
	struct dmalog_swtrack *t = priv;

	pagelog_stop(&t->log);
	return 0;
}

void dmalog_swtrack_log_write(struct dmalog_swtrack *t, uint64_t iova, uint64_t length)
{
	pagelog_mark(&t->log, iova, length);
}

void dmalog_swtrack_log_writes(struct dmalog_swtrack *t, const uint64_t *iovas, uint64_t n,
			       uint64_t length)
{
	pagelog_mark_list(&t->log, iovas, n, length);
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
	uint64_t first, last;

	if (!length)
		return 0;
	/* Clear what the whole report covers, not just this window: see dmalog_log_ops. */
	dmalog_iova_bitmap_span(dirty, &first, &last);
	return pagelog_take(&t->log, iova, iova + length - 1, first, last, to_bitmap, dirty);
}

void dmalog_swtrack_set_log_limit(struct dmalog_swtrack *t, uint64_t bytes)
{
	__atomic_store_n(&t->log_limit, bytes ? bytes : DMALOG_SWTRACK_MAX_LOG_BYTES,
			 __ATOMIC_RELAXED);
}

uint64_t dmalog_swtrack_page_size(struct dmalog_swtrack *t)
{
	unsigned int shift = pagelog_shift(&t->log);

	return shift ? 1ULL << shift : 0;
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
