// SPDX-License-Identifier: MIT
/*
 * Emulated mlx5-style device page tracker. The device side is a page log (pagelog) and a
 * firmware thread that answers REPORTING commands with messages in a ring of posted receive
 * buffers; the host side (read_and_clear) drains the ring into the IOVA bitmap, reposting each
 * buffer, until a message whose status leaves REPORTING.
 *
 * Locks: the page log has its own (device writes against START/STOP and the firmware's
 * flips); lock (mutex) guards everything the host and the firmware share, with fw_cond and
 * host_cond to wait on. The firmware fills a posted buffer in place, outside the lock, and
 * the host decodes a message outside it too, turning runs of consecutive addresses into one
 * bitmap fill.
 */
#include <endian.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <dmalog/devtrack.h>

#include "pagelog.h"
#include "core/reserved.h"

#define OPCODE_SEND_IMM 0x1 /* what a report completion must carry */
#define OPCODE_BAD	0xd

struct message {
	uint8_t opcode;
	uint32_t imm;	   /* big-endian; the tracker state in the top nibble */
	uint32_t byte_cnt; /* payload bytes: 8 per dirty address */
	uint8_t *data;
};

#define CMD_HISTORY 16

struct dmalog_devtrack {
	struct dmalog_devtrack_caps caps;
	/* The windows of the last REPORTING commands, oldest first once the ring wraps. */
	struct dmalog_range cmd_history[CMD_HISTORY];

	bool active;
	struct pagelog log;
	struct dmalog_range *ranges; /* programmed, after combining */
	uint32_t nranges;
	uint32_t log_addr_space;

	pthread_mutex_t lock;
	pthread_cond_t fw_cond;	  /* firmware waits for a command, a free buffer, a resume */
	pthread_cond_t host_cond; /* host waits for a message or an error */
	pthread_t fw;
	bool stop;
	uint32_t state;
	bool err; /* sticky until STOP and START */
	bool cmd_pending;
	uint64_t cmd_iova, cmd_last;
	uint64_t cmd_clear_first, cmd_clear_last; /* the whole REPORT the command is a window of */
	struct message *ring;
	uint8_t *ring_data;
	uint32_t head, tail, count;
	uint64_t *addrs; /* decoded entries of one message */
	bool f_bad_opcode, f_zero_length, f_overflow, f_fw_error, stalled;
	uint64_t reports, messages, entries;
};

static int check_caps(const struct dmalog_devtrack_caps *c)
{
	if (!c->max_msg_size || c->max_msg_size % 8 || !c->queue_depth ||
	    c->log_min_page_size > c->log_max_page_size || c->log_max_page_size > 63 ||
	    c->log_min_addr_space > c->log_max_addr_space || c->log_max_addr_space > 64)
		return -EINVAL;
	return 0;
}

int dmalog_devtrack_create(const struct dmalog_devtrack_caps *caps, struct dmalog_devtrack **out)
{
	struct dmalog_devtrack *t;

	if (!caps || check_caps(caps) || !RESERVED_ZERO(caps))
		return -EINVAL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->caps = *caps;
	pagelog_setup(&t->log);
	pthread_mutex_init(&t->lock, NULL);
	pthread_cond_init(&t->fw_cond, NULL);
	pthread_cond_init(&t->host_cond, NULL);
	*out = t;
	return 0;
}

static int devtrack_stop(void *priv);

void dmalog_devtrack_destroy(struct dmalog_devtrack *t)
{
	if (!t)
		return;
	devtrack_stop(t);
	pthread_cond_destroy(&t->fw_cond);
	pthread_cond_destroy(&t->host_cond);
	pthread_mutex_destroy(&t->lock);
	pagelog_teardown(&t->log);
	free(t);
}

/* An error event: ERROR until STOP and START; wakes whoever waits. Caller holds lock. */
static void set_error_locked(struct dmalog_devtrack *t)
{
	t->err = true;
	t->state = DMALOG_DEVTRACK_ERROR;
	pthread_cond_broadcast(&t->host_cond);
	pthread_cond_broadcast(&t->fw_cond);
}

/* The firmware's message being assembled, in place in the next posted buffer. */
struct fw_report {
	struct dmalog_devtrack *t;
	uint8_t *buf; /* the buffer at head, once acquired; NULL before */
	uint32_t nbytes;
	bool aborted;
};

/* Wait for a posted buffer to fill (RNR retry while the queue is full); false when aborted. */
static bool fw_acquire(struct fw_report *r)
{
	struct dmalog_devtrack *t = r->t;

	pthread_mutex_lock(&t->lock);
	while (t->count == t->caps.queue_depth && !t->stop && !t->err)
		pthread_cond_wait(&t->fw_cond, &t->lock);
	if (t->stop || t->err)
		r->aborted = true;
	else
		r->buf = t->ring[t->head].data;
	pthread_mutex_unlock(&t->lock);
	r->nbytes = 0;
	return !r->aborted;
}

/* Send the assembled message with @status: the buffer at head becomes the host's. */
static void fw_post(struct fw_report *r, uint32_t status)
{
	struct dmalog_devtrack *t = r->t;
	struct message *m;

	if (!r->buf && !fw_acquire(r))
		return;
	pthread_mutex_lock(&t->lock);
	while (t->stalled && !t->stop && !t->err)
		pthread_cond_wait(&t->fw_cond, &t->lock);
	if (t->f_overflow) {
		/* The host did not keep buffers posted: the queue overran. */
		t->f_overflow = false;
		set_error_locked(t);
	}
	if (t->stop || t->err) {
		r->aborted = true;
		pthread_mutex_unlock(&t->lock);
		return;
	}
	m = &t->ring[t->head];
	m->byte_cnt = r->nbytes;
	m->imm = htobe32(status << 28);
	m->opcode = t->f_bad_opcode ? OPCODE_BAD : OPCODE_SEND_IMM;
	t->f_bad_opcode = false;
	t->head = (t->head + 1) % t->caps.queue_depth;
	t->count++;
	if (status != DMALOG_DEVTRACK_REPORTING)
		t->state = status;
	pthread_cond_broadcast(&t->host_cond);
	pthread_mutex_unlock(&t->lock);
	r->buf = NULL;
	r->nbytes = 0;
}

static void fw_put_addr(struct fw_report *r, uint64_t addr)
{
	uint32_t be[2] = {htobe32(addr >> 32), htobe32((uint32_t)addr)};

	if (!r->buf && !fw_acquire(r))
		return;
	memcpy(r->buf + r->nbytes, be, 8);
	r->nbytes += 8;
	if (r->nbytes == r->t->caps.max_msg_size)
		fw_post(r, DMALOG_DEVTRACK_REPORTING);
}

/* pagelog_take's consumer: each dirty page becomes an 8-byte big-endian address entry. */
static void fw_emit(void *opaque, uint64_t page_iova, unsigned int shift, const uint64_t *words,
		    uint64_t nbits)
{
	struct fw_report *r = opaque;

	for (uint64_t w = 0; w < nbits / 64 && !r->aborted; w++) {
		uint64_t base = page_iova + ((w * 64) << shift);

		for (uint64_t bits = words[w]; bits && !r->aborted; bits &= bits - 1)
			fw_put_addr(r, base + ((uint64_t)__builtin_ctzll(bits) << shift));
	}
}

static void *firmware(void *arg)
{
	struct dmalog_devtrack *t = arg;
	struct fw_report r = {.t = t};

	pthread_mutex_lock(&t->lock);
	for (;;) {
		uint64_t iova, last, clear_first, clear_last;
		bool zero_length;

		while (!t->cmd_pending && !t->stop)
			pthread_cond_wait(&t->fw_cond, &t->lock);
		if (t->stop)
			break;
		t->cmd_pending = false;
		iova = t->cmd_iova;
		last = t->cmd_last;
		clear_first = t->cmd_clear_first;
		clear_last = t->cmd_clear_last;
		zero_length = t->f_zero_length;
		t->f_zero_length = false;
		pthread_mutex_unlock(&t->lock);

		r.buf = NULL;
		r.nbytes = 0;
		r.aborted = false;
		if (zero_length)
			fw_post(&r, DMALOG_DEVTRACK_REPORTING);
		/* Scan and clear the range; pages go out as they are found. */
		if (!r.aborted)
			pagelog_take(&t->log, iova, last, clear_first, clear_last, fw_emit, &r);
		if (!r.aborted) {
			bool fw_error;

			pthread_mutex_lock(&t->lock);
			fw_error = t->f_fw_error;
			t->f_fw_error = false;
			pthread_mutex_unlock(&t->lock);
			fw_post(&r, fw_error ? DMALOG_DEVTRACK_ERROR : DMALOG_DEVTRACK_TRACKING);
		}
		pthread_mutex_lock(&t->lock);
	}
	pthread_mutex_unlock(&t->lock);
	return NULL;
}

static void free_tracker(struct dmalog_devtrack *t)
{
	free(t->ranges);
	free(t->ring);
	free(t->ring_data);
	free(t->addrs);
	t->ranges = NULL;
	t->ring = NULL;
	t->ring_data = NULL;
	t->addrs = NULL;
	t->nranges = 0;
}

/* Combine, clamp and check as mlx5vf_start_page_tracker() and mlx5vf_create_tracker() do. */
static int program_ranges(struct dmalog_devtrack *t, const struct dmalog_range *ranges, uint32_t n,
			  unsigned int *shift)
{
	unsigned int log = *shift; /* the core passes a power of two */
	uint64_t total;
	int ret;

	t->ranges = malloc(n * sizeof(*ranges));
	if (!t->ranges)
		return -ENOMEM;
	memcpy(t->ranges, ranges, n * sizeof(*ranges));
	t->nranges = n;
	ret = dmalog_ranges_combine(t->ranges, &t->nranges, t->caps.max_ranges);
	if (ret)
		return ret;
	if (log < t->caps.log_min_page_size)
		log = t->caps.log_min_page_size;
	if (log > t->caps.log_max_page_size)
		log = t->caps.log_max_page_size;
	total = dmalog_ranges_total_length(t->ranges, t->nranges);
	t->log_addr_space = dmalog_log2_roundup(total);
	if (t->log_addr_space < t->caps.log_min_addr_space ||
	    t->log_addr_space > t->caps.log_max_addr_space)
		return -EOPNOTSUPP;
	*shift = log;
	return 0;
}

static int devtrack_start(void *priv, const struct dmalog_range *ranges, uint32_t n,
			  uint64_t *page_size)
{
	struct dmalog_devtrack *t = priv;
	unsigned int shift = __builtin_ctzll(*page_size);
	uint32_t depth = t->caps.queue_depth;
	int ret;

	pthread_mutex_lock(&t->lock);
	if (t->active) {
		ret = -EINVAL;
		goto out;
	}
	if (!t->caps.max_ranges) {
		ret = -EOPNOTSUPP;
		goto out;
	}
	ret = program_ranges(t, ranges, n, &shift);
	if (!ret)
		ret = pagelog_start(&t->log, t->ranges, t->nranges, shift);
	if (ret)
		goto fail;
	t->ring = calloc(depth, sizeof(*t->ring));
	t->ring_data = malloc((size_t)depth * t->caps.max_msg_size);
	t->addrs = malloc(t->caps.max_msg_size);
	if (!t->ring || !t->ring_data || !t->addrs) {
		ret = -ENOMEM;
		goto fail_log;
	}
	for (uint32_t i = 0; i < depth; i++)
		t->ring[i].data = t->ring_data + (size_t)i * t->caps.max_msg_size;
	t->head = t->tail = t->count = 0;
	t->err = t->stop = t->cmd_pending = false;
	t->f_bad_opcode = t->f_zero_length = t->f_overflow = t->f_fw_error = t->stalled = false;
	t->state = DMALOG_DEVTRACK_TRACKING;
	ret = -pthread_create(&t->fw, NULL, firmware, t);
	if (ret)
		goto fail_log;
	t->active = true;
	*page_size = 1ULL << shift;
	goto out;
fail_log:
	pagelog_stop(&t->log);
fail:
	free_tracker(t);
out:
	pthread_mutex_unlock(&t->lock);
	return ret;
}

static int devtrack_stop(void *priv)
{
	struct dmalog_devtrack *t = priv;

	pthread_mutex_lock(&t->lock);
	if (!t->active) {
		pthread_mutex_unlock(&t->lock);
		return 0;
	}
	t->stop = true;
	pthread_cond_broadcast(&t->fw_cond);
	pthread_mutex_unlock(&t->lock);
	pthread_join(t->fw, NULL);

	pagelog_stop(&t->log);
	pthread_mutex_lock(&t->lock);
	t->active = false;
	free_tracker(t);
	pthread_mutex_unlock(&t->lock);
	return 0;
}

static void devtrack_abort(void *priv)
{
	struct dmalog_devtrack *t = priv;

	pthread_mutex_lock(&t->lock);
	if (t->active)
		set_error_locked(t);
	pthread_mutex_unlock(&t->lock);
}

/*
 * Decode @n big-endian entries and set their pages: consecutive addresses (what a dense log
 * sends) become one run, scattered ones go through set_list's prefetching.
 */
static void decode_and_set(struct dmalog_devtrack *t, const uint8_t *data, uint32_t n,
			   struct dmalog_iova_bitmap *bm)
{
	uint64_t page = 1ULL << t->log.pgshift, run_start = 0, run_len = 0;
	uint32_t scattered = 0;

	for (uint32_t i = 0; i < n; i++) {
		uint32_t hi, lo;
		uint64_t addr;

		memcpy(&hi, data + 8 * i, 4);
		memcpy(&lo, data + 8 * i + 4, 4);
		addr = (uint64_t)be32toh(hi) << 32 | be32toh(lo);
		if (run_len && addr == run_start + run_len) {
			run_len += page;
			continue;
		}
		if (run_len > page)
			dmalog_iova_bitmap_set(bm, run_start, run_len);
		else if (run_len)
			t->addrs[scattered++] = run_start;
		run_start = addr;
		run_len = page;
	}
	if (run_len > page)
		dmalog_iova_bitmap_set(bm, run_start, run_len);
	else if (run_len)
		t->addrs[scattered++] = run_start;
	dmalog_iova_bitmap_set_list(bm, t->addrs, scattered, page);
}

/* Take one message off the ring (caller holds lock, ring not empty); decode it unlocked. */
static int consume(struct dmalog_devtrack *t, struct dmalog_iova_bitmap *bm, uint32_t *status)
{
	struct message *m = &t->ring[t->tail];
	uint8_t opcode = m->opcode;
	uint32_t n = m->byte_cnt / 8;
	int ret = 0;

	*status = be32toh(m->imm) >> 28;
	pthread_mutex_unlock(&t->lock);
	if (opcode != OPCODE_SEND_IMM) {
		ret = -EIO;
	} else if (!n && *status == DMALOG_DEVTRACK_REPORTING) {
		/* Only the last message may be empty: a protocol violation, not a success. */
		ret = -EIO;
	} else {
		decode_and_set(t, m->data, n, bm);
	}
	pthread_mutex_lock(&t->lock);
	/* Repost the buffer. */
	t->tail = (t->tail + 1) % t->caps.queue_depth;
	t->count--;
	t->messages++;
	t->entries += n;
	pthread_cond_broadcast(&t->fw_cond);
	return ret;
}

static int devtrack_read_and_clear(void *priv, uint64_t iova, uint64_t length,
				   struct dmalog_iova_bitmap *dirty)
{
	struct dmalog_devtrack *t = priv;
	uint32_t status = DMALOG_DEVTRACK_REPORTING;
	int ret = 0;

	if (!length)
		return 0;
	pthread_mutex_lock(&t->lock);
	if (!t->active) {
		pthread_mutex_unlock(&t->lock);
		return -EINVAL;
	}
	if (t->err) {
		pthread_mutex_unlock(&t->lock);
		return -EIO;
	}
	/* MODIFY the tracker to REPORTING for exactly this range. */
	t->state = DMALOG_DEVTRACK_REPORTING;
	t->cmd_iova = iova;
	t->cmd_last = iova + length - 1;
	dmalog_iova_bitmap_span(dirty, &t->cmd_clear_first, &t->cmd_clear_last);
	t->cmd_pending = true;
	t->cmd_history[t->reports % CMD_HISTORY] = (struct dmalog_range){iova, length};
	t->reports++;
	pthread_cond_broadcast(&t->fw_cond);
	while (status == DMALOG_DEVTRACK_REPORTING) {
		while (!t->count && !t->err)
			pthread_cond_wait(&t->host_cond, &t->lock);
		if (t->err) {
			ret = -EIO;
			break;
		}
		ret = consume(t, dirty, &status);
		if (!ret && status == DMALOG_DEVTRACK_ERROR)
			ret = -EIO;
		if (ret) {
			set_error_locked(t);
			break;
		}
	}
	pthread_mutex_unlock(&t->lock);
	return ret;
}

void dmalog_devtrack_log_write(struct dmalog_devtrack *t, uint64_t iova, uint64_t length)
{
	pagelog_mark(&t->log, iova, length);
}

int dmalog_devtrack_inject(struct dmalog_devtrack *t, enum dmalog_devtrack_fault f)
{
	int ret = 0;

	pthread_mutex_lock(&t->lock);
	switch (f) {
	case DMALOG_DEVTRACK_FAULT_ERROR_EVENT:
		if (t->active)
			set_error_locked(t);
		break;
	case DMALOG_DEVTRACK_FAULT_BAD_OPCODE:
		t->f_bad_opcode = true;
		break;
	case DMALOG_DEVTRACK_FAULT_ZERO_LENGTH:
		t->f_zero_length = true;
		break;
	case DMALOG_DEVTRACK_FAULT_OVERFLOW:
		t->f_overflow = true;
		break;
	case DMALOG_DEVTRACK_FAULT_FW_ERROR:
		t->f_fw_error = true;
		break;
	case DMALOG_DEVTRACK_FAULT_STALL:
		t->stalled = true;
		break;
	case DMALOG_DEVTRACK_FAULT_RESUME:
		t->stalled = false;
		pthread_cond_broadcast(&t->fw_cond);
		break;
	default:
		ret = -EINVAL;
	}
	pthread_mutex_unlock(&t->lock);
	return ret;
}

void dmalog_devtrack_get_stats(struct dmalog_devtrack *t, struct dmalog_devtrack_stats *st)
{
	pthread_mutex_lock(&t->lock);
	*st = (struct dmalog_devtrack_stats){
		.state = t->state,
		.nranges = t->active ? t->nranges : 0,
		.page_size = t->active ? 1ULL << t->log.pgshift : 0,
		.log_addr_space = t->active ? t->log_addr_space : 0,
		.reports = t->reports,
		.messages = t->messages,
		.entries = t->entries,
	};
	pthread_mutex_unlock(&t->lock);
}

uint32_t dmalog_devtrack_ranges(struct dmalog_devtrack *t, struct dmalog_range *out, uint32_t max)
{
	uint32_t n;

	pthread_mutex_lock(&t->lock);
	n = t->active ? t->nranges : 0;
	memcpy(out, t->ranges, (n < max ? n : max) * sizeof(*out));
	pthread_mutex_unlock(&t->lock);
	return n;
}

uint32_t dmalog_devtrack_commands(struct dmalog_devtrack *t, struct dmalog_range *out, uint32_t max)
{
	uint32_t n, first;

	pthread_mutex_lock(&t->lock);
	n = t->reports < CMD_HISTORY ? (uint32_t)t->reports : CMD_HISTORY;
	first = (uint32_t)(t->reports - n);
	n = n < max ? n : max;
	for (uint32_t i = 0; i < n; i++)
		out[i] = t->cmd_history[(first + i) % CMD_HISTORY];
	pthread_mutex_unlock(&t->lock);
	return n;
}

static const struct dmalog_log_ops devtrack_ops = {
	.log_start = devtrack_start,
	.log_stop = devtrack_stop,
	.log_read_and_clear = devtrack_read_and_clear,
	.log_abort = devtrack_abort,
};

const struct dmalog_log_ops *dmalog_devtrack_log_ops(void)
{
	return &devtrack_ops;
}
