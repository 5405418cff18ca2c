// SPDX-License-Identifier: MIT
/*
 * The source end: precopy rounds while the guest runs, a switchover when what is left fits
 * the downtime limit, the final state, the hand-off, and the proof (the destination's digests
 * of every page and device, keyed by a fresh nonce, compared here with our own).
 *
 * The hand-off (see <dmalog/migrate.h>): until COMPLETE is wholly written, every failure
 * rolls back. Afterwards only the destination's ABORT does; silence, a dropped connection or
 * a garbled answer leave the guest paused here, because the destination may be running it.
 * Before COMPLETE the only answer the destination may send is ABORT; RUNNING comes only
 * after COMPLETE, the digests only after VERIFY.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "core/le.h"
#include "core/crc32c.h"
#include "engine.h"
#include "link.h"

#define SHARD_PAGES	     DMALOG_STREAM_SHARD_PAGES /* also the longest run: 1 MiB */
#define FRAME_PAGES	     (LINK_FLUSH_BYTES >> DMALOG_RAM_PAGE_SHIFT) /* per PAGES frame */
#define DEVICE_CHUNK	     (256u << 10)
#define VERIFY_PAGES	     4096 /* hashes per VERIFY_PAGES frame */
#define ANSWER_MAX	     512
#define ABORT_REASON_WAIT_MS 200

struct source;

/*
 * A connection that carries pages: the main one (index 0, sent from the engine's thread) or
 * a page channel, whose share of each round is sent from a thread of its own. A channel
 * touches only its own shards of the bitmap and of guest memory, its own link and itself.
 */
struct chan {
	struct source *s;
	uint32_t index;
	struct link *l; /* the main link for index 0, else own */
	struct link own;
	pthread_t thread;
	uint64_t pages;	      /* sent this round; the progress hook reads it (relaxed atomics) */
	uint64_t zero_pages;  /* of all it sent, those that went as ZERO runs */
	double paced_since;   /* max_bandwidth: when its pacing started, and ... */
	uint64_t paced_bytes; /* ... what it had sent then */
	int err;	      /* a page channel's failure (-errno), and why */
	char why[200];
};

struct source {
	struct dmalog_mig *m;
	const struct dmalog_mig_config *c;
	struct dmalog_mig_result *r;
	struct link l;
	struct chan ch[DMALOG_MIG_MAX_CHANNELS];
	uint32_t nch;
	int stop_chans; /* atomic: a connection failed, the others give up */
	uint64_t *bitmap;
	uint64_t npages;
	int data_fd[DMALOG_MIG_MAX_DEVICES];
	uint8_t *chunk;
	double t0, last_sync;
	double send_ms; /* time spent sending precopy rounds, for the bandwidth estimate */
	uint64_t send_bytes;
	bool vcpus_paused;
	uint32_t round;
	double stop_deadline;	/* while stopped: when the downtime cap runs out (0: not stopped) */
	uint32_t outrun_rounds; /* rounds in a row the guest dirtied faster than we sent */
	uint64_t *scratch;	/* one tracker's sync, before it is ORed into the bitmap */
	uint64_t tracker_pages[DMALOG_MIG_MAX_TRACKERS]; /* what each saw at the last sync */
	double sync_interval_ms;			 /* the time those pages were dirtied in */
};

/*
 * Read the destination's next answer within @timeout_ms (0: only if one is waiting) into
 * @buf (@max bytes of payload). Returns 0 with nothing waiting, 1 + the payload length of a
 * @want frame, or -errno with the reason: -ECANCELED for ABORT (carrying the destination's
 * words), -EPROTO for an answer the protocol does not allow now.
 */
static int read_answer(struct source *s, int timeout_ms, uint16_t want, uint8_t *buf, uint32_t max)
{
	uint16_t type;
	uint32_t len;
	int ret = link_read_frame(&s->l, timeout_ms, &type, buf, max, &len);

	if (ret == -EAGAIN && timeout_ms)
		return engine_fail(s->m, -ETIMEDOUT, "the destination did not answer within %d ms",
				   timeout_ms);
	if (ret == -EAGAIN)
		return 0;
	if (ret == -ECONNRESET)
		return engine_fail(s->m, ret, "the destination closed the connection");
	if (ret == -ETIMEDOUT)
		return engine_fail(s->m, ret, "the destination's answer stalled mid-frame");
	if (ret == -EBADMSG)
		return engine_fail(s->m, ret, "the destination sent %s", s->l.error);
	if (ret)
		return engine_fail(s->m, ret, "reading the destination's answer: %s",
				   strerror(-ret));
	if (type == DMALOG_FRAME_ABORT) {
		buf[len < max ? len : max - 1] = 0;
		return engine_fail(s->m, -ECANCELED, "the destination aborted: %s", (char *)buf);
	}
	if (type != want)
		return engine_fail(s->m, -EPROTO, "unexpected %s answer from the destination",
				   dmalog_frame_type_name(type));
	return 1 + (int)len;
}

/* A short answer (RUNNING, or an ABORT's reason): 0 nothing, 1 the wanted one, or -errno. */
static int take_answer(struct source *s, int timeout_ms, uint16_t want)
{
	uint8_t buf[ANSWER_MAX + 1];
	int ret = read_answer(s, timeout_ms, want, buf, ANSWER_MAX);

	if (ret > 1)
		return engine_fail(s->m, -EPROTO, "a %s answer with a payload",
				   dmalog_frame_type_name(want));
	return ret;
}

/*
 * While the guest is stopped no wait may outlast the downtime cap: the link's deadline is the
 * nearer of its own timeout and what is left of the cap.
 */
static int stopped_wait_ms(struct source *s)
{
	double left = s->stop_deadline - link_now_ms();

	if (!s->stop_deadline || left >= s->c->timeout_ms)
		return (int)s->c->timeout_ms;
	return left > 1 ? (int)left : 1;
}

static bool cap_exceeded(const struct source *s)
{
	return s->stop_deadline && link_now_ms() >= s->stop_deadline;
}

#define CAP_EXCEEDED "the final round did not fit the downtime cap of %u ms"

static int check_cap(struct source *s)
{
	if (cap_exceeded(s))
		return engine_fail(s->m, -ETIMEDOUT, CAP_EXCEEDED, s->c->downtime_cap_ms);
	return 0;
}

/*
 * A channel's failure: the main one's is the engine's; a page channel's is kept until its
 * thread is joined, and stops the others at once. -ESHUTDOWN (stopped because another
 * failed) is not a failure of its own.
 */
__attribute__((format(printf, 3, 4))) static int chan_fail(struct chan *ch, int err,
							   const char *fmt, ...)
{
	va_list ap;

	if (err == -ESHUTDOWN)
		return err;
	if (!ch->index) {
		char why[sizeof(ch->why)];

		va_start(ap, fmt);
		vsnprintf(why, sizeof(why), fmt, ap);
		va_end(ap);
		return engine_fail(ch->s->m, err, "%s", why);
	}
	if (!ch->err) {
		ch->err = err;
		va_start(ap, fmt);
		vsnprintf(ch->why, sizeof(ch->why), fmt, ap);
		va_end(ap);
	}
	__atomic_store_n(&ch->s->stop_chans, 1, __ATOMIC_RELEASE);
	return err;
}

/*
 * Sending failed: the destination may have said why it stopped reading. Its ABORT, if one
 * comes within a moment, is the failure reported; anything else leaves the send's own error.
 */
static void abort_reason(struct source *s)
{
	char buf[ANSWER_MAX + 1];
	uint16_t type;
	uint32_t len;

	if (!link_read_frame(&s->l, ABORT_REASON_WAIT_MS, &type, (uint8_t *)buf, ANSWER_MAX,
			     &len) &&
	    type == DMALOG_FRAME_ABORT) {
		buf[len] = 0;
		engine_fail(s->m, -ECANCELED, "the destination aborted: %s", buf);
	}
}

/*
 * max_bandwidth, as QEMU's: while the guest runs, the stream's average rate since precopy
 * began stays under the cap (the final round, with the guest stopped, is not held back).
 */
static void pace(struct chan *ch)
{
	const struct source *s = ch->s;
	double ahead_ms;

	if (!s->c->max_bandwidth || s->stop_deadline)
		return;
	if (!ch->paced_since) {
		ch->paced_since = link_now_ms();
		ch->paced_bytes = ch->l->bytes;
		return;
	}
	/* Each connection its share of the cap. */
	ahead_ms = (double)(ch->l->bytes - ch->paced_bytes) * 1e3 * s->nch /
			   (double)s->c->max_bandwidth -
		   (link_now_ms() - ch->paced_since);
	/* Never so long that the destination would take the pause for a dead link. */
	if (ahead_ms > s->c->timeout_ms / 2.0)
		ahead_ms = s->c->timeout_ms / 2.0;
	if (ahead_ms > 0)
		usleep((useconds_t)(ahead_ms * 1e3));
}

/* Send what is queued. Before COMPLETE, an answer can only be an ABORT: look for one. */
static int flush(struct source *s)
{
	int ret = engine_cancelled(s->m) ?: check_cap(s);

	if (ret)
		return ret;
	s->l.timeout_ms = stopped_wait_ms(s);
	ret = link_flush(&s->l);
	if (ret == -ESHUTDOWN)
		return ret;
	if (!ret || ret == -ETIMEDOUT)
		ret = check_cap(s) ?: ret;
	if (ret && !s->m->r.error) {
		abort_reason(s);
		return engine_fail(s->m, ret, "%s", s->l.error);
	}
	if (ret)
		return ret;
	pace(&s->ch[0]);
	ret = take_answer(s, 0, DMALOG_FRAME_ABORT);
	return ret < 0 ? ret : 0;
}

/* Send what a channel has queued: the main one as above; a page channel only sends. */
static int chan_flush(struct chan *ch)
{
	struct source *s = ch->s;
	int ret;

	if (!ch->index)
		return flush(s);
	if (__atomic_load_n(&s->stop_chans, __ATOMIC_ACQUIRE) ||
	    __atomic_load_n(&s->m->cancel, __ATOMIC_ACQUIRE))
		return -ESHUTDOWN;
	if (cap_exceeded(s))
		return chan_fail(ch, -ETIMEDOUT, CAP_EXCEEDED, s->c->downtime_cap_ms);
	ch->l->timeout_ms = stopped_wait_ms(s);
	ret = link_flush(ch->l);
	if (ret)
		return chan_fail(ch, ret, "%s", ch->l->error);
	pace(ch);
	return 0;
}

static int queue_msg(struct source *s, uint16_t type, const void *msg)
{
	if (link_msg(&s->l, type, msg))
		return engine_fail(s->m, -ENOMEM, "out of memory");
	return s->l.len >= LINK_FLUSH_BYTES ? flush(s) : 0;
}

static int chan_queue_msg(struct chan *ch, uint16_t type, const void *msg)
{
	if (link_msg(ch->l, type, msg))
		return chan_fail(ch, -ENOMEM, "out of memory");
	return ch->l->len >= LINK_FLUSH_BYTES ? chan_flush(ch) : 0;
}

/* One PAGES frame for @n pages from RAM page @first, all inside region @r. */
static int send_frame(struct chan *ch, const struct dmalog_ram_region *r, uint64_t first,
		      uint32_t n)
{
	struct dmalog_frame_run run = {.first_page = first, .count = n};
	uint64_t off = (first << DMALOG_RAM_PAGE_SHIFT) - r->ram_offset;
	uint8_t *p = link_frame_begin(ch->l, sizeof(run) + (n << DMALOG_RAM_PAGE_SHIFT));
	uint32_t crc;

	if (!p)
		return chan_fail(ch, -ENOMEM, "out of memory");
	dmalog_frame_encode(DMALOG_FRAME_PAGES, &run, p);
	/*
	 * One pass over guest memory, which the guest may be writing: each word is copied and
	 * checksummed as it was read, so the frame is consistent whatever happens meanwhile (a
	 * page that changes is dirty again and goes in a later round).
	 */
	crc = dmalog_crc32c_copy(dmalog_crc32c(0, p, sizeof(run)), p + sizeof(run),
				 (const uint8_t *)r->host + off,
				 (uint64_t)n << DMALOG_RAM_PAGE_SHIFT);
	link_frame_seal_crc(ch->l, DMALOG_FRAME_PAGES, crc);
	return ch->l->len >= LINK_FLUSH_BYTES ? chan_flush(ch) : 0;
}

/* @n pages with data from RAM page @first, all inside region @r: frames of FRAME_PAGES. */
static int send_run(struct chan *ch, const struct dmalog_ram_region *r, uint64_t first, uint32_t n)
{
	while (n) {
		uint32_t k = n < FRAME_PAGES ? n : FRAME_PAGES;
		int ret = send_frame(ch, r, first, k);

		if (ret)
			return ret;
		first += k;
		n -= k;
	}
	return 0;
}

#define PROGRESS_MS 200

static uint64_t count_dirty(const struct source *s);

/* The progress hook, at most every PROGRESS_MS: what every channel has sent so far. */
static void progress(struct source *s, uint64_t total, double start, double *last)
{
	void (*hook)(void *, uint32_t, uint64_t, uint64_t, double) = HOOK(s->m, progress);
	uint64_t sent = 0;
	double now;

	if (!hook)
		return;
	now = link_now_ms();
	if (now - *last < PROGRESS_MS)
		return;
	*last = now;
	for (uint32_t i = 0; i < s->nch; i++)
		sent += __atomic_load_n(&s->ch[i].pages, __ATOMIC_RELAXED);
	hook(s->c->opaque, s->round, sent, total, now - start);
}

/*
 * Whether a page of guest memory is all zero bytes (whole words, as the guest stores them).
 * A page with data usually says so in its first word. A page that changes after this look
 * is dirty again and goes in a later round, as with any copy.
 */
static bool page_is_zero(const uint8_t *page)
{
	const uint64_t *w = (const uint64_t *)page;

	for (uint32_t i = 0; i < DMALOG_RAM_PAGE_SIZE / 8; i++)
		if (__atomic_load_n(&w[i], __ATOMIC_RELAXED))
			return false;
	return true;
}

/* A ZERO frame for @n pages from RAM page @first: no data, the destination zeroes them. */
static int send_zero(struct chan *ch, uint64_t first, uint32_t n)
{
	struct dmalog_frame_run run = {.first_page = first, .count = n};

	ch->zero_pages += n;
	return chan_queue_msg(ch, DMALOG_FRAME_ZERO, &run);
}

/*
 * How many pages ahead the first line is asked for while one is looked at for zeros. The look
 * is a cache miss per page (the CPU's own prefetcher stops at 4 KiB boundaries): back to back,
 * they were 3.5 % of an idle migration's samples over TCP, nearly all waiting on those loads.
 */
#define ZERO_LOOK_AHEAD 16

static void look_ahead(const uint8_t *host, uint64_t p)
{
	__builtin_prefetch(host + (p << DMALOG_RAM_PAGE_SHIFT));
}

/*
 * Dirty pages [p, p + n) of region @r, all in it: data runs as PAGES, zero pages as ZERO
 * runs, in page order.
 */
static int send_dirty_run(struct chan *ch, const struct dmalog_ram_region *r, uint64_t p,
			  uint32_t n)
{
	const uint8_t *host = (const uint8_t *)r->host - r->ram_offset;
	bool zero;

	/* The run's first pages are asked for here; the loop then keeps ZERO_LOOK_AHEAD ahead. */
	for (uint32_t k = 1; k <= ZERO_LOOK_AHEAD && k < n; k++)
		look_ahead(host, p + k);
	zero = page_is_zero(host + (p << DMALOG_RAM_PAGE_SHIFT));
	while (n) {
		bool next = zero;
		uint32_t k = 1;
		int ret;

		/* Each page is looked at once: the one that ends a stretch starts the next. */
		while (k < n) {
			if (k + ZERO_LOOK_AHEAD < n)
				look_ahead(host, p + k + ZERO_LOOK_AHEAD);
			next = page_is_zero(host + ((p + k) << DMALOG_RAM_PAGE_SHIFT));
			if (next != zero)
				break;
			k++;
		}
		ret = zero ? send_zero(ch, p, k) : send_run(ch, r, p, k);
		if (ret)
			return ret;
		p += k;
		n -= k;
		zero = next;
	}
	return 0;
}

/*
 * The dirty pages of shard @shard (SHARD_PAGES pages, whose bitmap words only this channel
 * touches), in runs that cross no region, then its bitmap words cleared. @region is a cursor
 * that only moves forward, as the shards do.
 */
static int send_shard(struct chan *ch, uint64_t shard, uint32_t *region)
{
	struct source *s = ch->s;
	uint64_t first = shard * SHARD_PAGES, p = first;
	uint64_t end = first + SHARD_PAGES < s->npages ? first + SHARD_PAGES : s->npages;

	while (p < end) {
		const struct dmalog_ram_region *r;
		uint64_t w = s->bitmap[p / 64] >> (p % 64), r_end;
		uint32_t n = 0;
		int ret;

		if (!w) {
			p = (p / 64 + 1) * 64;
			continue;
		}
		p += (uint64_t)__builtin_ctzll(w);
		while (p >= ((s->m->ram.regions[*region].ram_offset +
			      s->m->ram.regions[*region].length) >>
			     DMALOG_RAM_PAGE_SHIFT))
			(*region)++;
		r = &s->m->ram.regions[*region];
		r_end = (r->ram_offset + r->length) >> DMALOG_RAM_PAGE_SHIFT;
		while (p + n < end && p + n < r_end &&
		       (s->bitmap[(p + n) / 64] >> ((p + n) % 64) & 1))
			n++;
		ret = send_dirty_run(ch, r, p, n);
		if (ret)
			return ret;
		__atomic_store_n(&ch->pages, ch->pages + n, __ATOMIC_RELAXED);
		p += n;
	}
	memset(&s->bitmap[first / 64], 0, (end - first) / 8);
	return 0;
}

/* A channel's share of the round: every channels-th shard, from its index on. */
static int send_chan_pages(struct chan *ch, uint64_t total, double start)
{
	struct source *s = ch->s;
	uint64_t nshards = (s->npages + SHARD_PAGES - 1) / SHARD_PAGES;
	uint32_t region = 0;
	double last = start;

	for (uint64_t shard = ch->index; shard < nshards; shard += s->nch) {
		int ret = send_shard(ch, shard, &region);

		if (ret)
			return ret;
		if (!ch->index && (shard / s->nch) % 16 == 15)
			progress(s, total, start, &last);
	}
	return 0;
}

/* A page channel's thread for one round: its pages, then ROUND (and at the end COMPLETE). */
static void *chan_main(void *arg)
{
	struct chan *ch = arg;
	struct source *s = ch->s;
	struct dmalog_frame_round msg = {.round = s->round};
	int ret = send_chan_pages(ch, 0, 0);

	msg.pages = ch->pages;
	if (!ret)
		ret = chan_queue_msg(ch, DMALOG_FRAME_ROUND, &msg);
	/* After the final round (the guest is stopped) this channel has nothing more. */
	if (!ret && s->stop_deadline)
		ret = chan_queue_msg(ch, DMALOG_FRAME_COMPLETE, NULL);
	if (!ret)
		chan_flush(ch);
	return NULL;
}

/*
 * Send every page set in the bitmap, and clear it: each connection its shards, the page
 * channels on their threads while the main one's go from here.
 */
static int send_dirty_pages(struct source *s, struct dmalog_mig_round *rd)
{
	uint64_t total = count_dirty(s);
	double start = link_now_ms();
	uint32_t started = 1;
	int ret = 0;

	for (uint32_t i = 0; i < s->nch; i++)
		s->ch[i].pages = 0;
	for (; started < s->nch; started++) {
		if (pthread_create(&s->ch[started].thread, NULL, chan_main, &s->ch[started])) {
			ret = engine_fail(s->m, -EAGAIN, "cannot start page channel %u's thread",
					  started);
			break;
		}
	}
	if (!ret)
		ret = send_chan_pages(&s->ch[0], total, start);
	if (ret)
		__atomic_store_n(&s->stop_chans, 1, __ATOMIC_RELEASE);
	for (uint32_t i = 1; i < started; i++)
		pthread_join(s->ch[i].thread, NULL);
	for (uint32_t i = 0; i < s->nch; i++)
		rd->pages += s->ch[i].pages;
	/*
	 * The first page channel that failed says why, unless the main one already did, or the
	 * destination did (its ABORT, when it refused the stream and hung up on the channels).
	 */
	for (uint32_t i = 1; i < started && !s->m->r.error; i++) {
		if (s->ch[i].err) {
			abort_reason(s);
			engine_fail(s->m, s->ch[i].err, "page channel %u: %s", i, s->ch[i].why);
		}
	}
	/* A channel that stopped for a cancel sent less than its share. */
	if (!ret || ret == -ESHUTDOWN) {
		bool stopped = ret;

		ret = engine_cancelled(s->m) ?: s->m->r.error;
		if (!ret && stopped)
			ret = engine_fail(s->m, -EIO, "a page channel stopped");
	}
	return ret;
}

/* Wait for device @i's data fd to have something, within the remaining time. */
static void wait_device(struct source *s, uint32_t i, double deadline)
{
	struct pollfd pfd = {.fd = s->data_fd[i], .events = POLLIN};
	double left = deadline - link_now_ms();

	poll(&pfd, 1, left < 100 ? (left > 0 ? (int)left : 0) : 100);
}

/* Forward what the devices have produced; with @final, read each stream to its end. */
static int send_device_data(struct source *s, struct dmalog_mig_round *rd, bool final)
{
	for (uint32_t i = 0; i < s->c->ndevices; i++) {
		double deadline = link_now_ms() + s->c->timeout_ms;
		struct dmalog_frame_device hdr = {.device = i};

		while (s->data_fd[i] >= 0) {
			ssize_t n = dmalog_handle_data_read(s->c->devices[i], s->data_fd[i],
							    s->chunk + sizeof(hdr), DEVICE_CHUNK);
			int ret;

			if (n == -EAGAIN && !final)
				break;
			if (n == -EAGAIN && link_now_ms() >= deadline)
				return engine_fail(s->m, -ETIMEDOUT,
						   "device %u's state did not end within %u ms", i,
						   s->c->timeout_ms);
			if (n == -EAGAIN && (ret = engine_cancelled(s->m) ?: check_cap(s)))
				return ret;
			if (n == -EAGAIN) {
				wait_device(s, i, deadline);
				continue;
			}
			if (n < 0)
				return engine_fail(s->m, (int)n, "reading device %u's data: %s", i,
						   strerror((int)-n));
			if (!n) {
				close(s->data_fd[i]);
				s->data_fd[i] = -1;
				ret = queue_msg(s, DMALOG_FRAME_DEVICE_DONE, &hdr);
				if (ret)
					return ret;
				break;
			}
			dmalog_frame_encode(DMALOG_FRAME_DEVICE_DATA, &hdr, s->chunk);
			if (link_raw(&s->l, DMALOG_FRAME_DEVICE_DATA, s->chunk,
				     (uint32_t)(sizeof(hdr) + (size_t)n)))
				return engine_fail(s->m, -ENOMEM, "out of memory");
			if (s->l.len >= LINK_FLUSH_BYTES && (ret = flush(s)))
				return ret;
			rd->device_bytes += (uint64_t)n;
		}
	}
	return 0;
}

static uint64_t count_dirty(const struct source *s)
{
	uint64_t n = 0;

	for (uint64_t i = 0; i < s->npages / 64; i++)
		n += (uint64_t)__builtin_popcountll(s->bitmap[i]);
	return n;
}

/*
 * OR every tracker into the bitmap. A tracker whose sync fails has lost what it knew since
 * the last one: everything is marked dirty and it starts over; the migration goes on.
 */
static int sync_dirty(struct source *s, struct dmalog_mig_round *rd)
{
	double t0 = link_now_ms();
	int ret = engine_event(s->m, DMALOG_MIG_EVENT_SYNC, s->round);

	if (ret)
		return engine_fail(s->m, ret, "dirty sync stopped by the embedder");
	for (uint32_t i = 0; i < s->c->ntrackers; i++) {
		struct dmalog_tracker *t = s->c->trackers[i];

		/* Each tracker into a scratch first: what it alone saw is counted, then ORed in. */
		memset(s->scratch, 0, s->npages / 8);
		if (!dmalog_tracker_sync(t, s->scratch)) {
			s->tracker_pages[i] = 0;
			for (uint64_t w = 0; w < s->npages / 64; w++) {
				s->tracker_pages[i] +=
					(uint64_t)__builtin_popcountll(s->scratch[w]);
				s->bitmap[w] |= s->scratch[w];
			}
			continue;
		}
		memset(s->bitmap, 0xff, s->npages / 8);
		s->r->tracker_errors++;
		ret = dmalog_tracker_restart(t);
		if (ret)
			return engine_fail(s->m, ret,
					   "tracker %s failed and could not restart (%s)",
					   dmalog_tracker_name(t), strerror(-ret));
	}
	rd->sync_ms = link_now_ms() - t0;
	rd->dirty_rate = t0 > s->last_sync ? (double)count_dirty(s) * 1e3 / (t0 - s->last_sync) : 0;
	s->sync_interval_ms = t0 - s->last_sync;
	s->last_sync = t0;
	return 0;
}

/* Bytes written to every connection so far. */
static uint64_t bytes_sent(const struct source *s)
{
	uint64_t n = 0;

	for (uint32_t i = 0; i < s->nch; i++)
		n += s->ch[i].l->bytes;
	return n;
}

static void round_done(struct source *s, const struct dmalog_mig_round *rd, bool final)
{
	void (*hook)(void *, const struct dmalog_mig_round *, bool) = HOOK(s->m, round_done);

	if (hook)
		hook(s->c->opaque, rd, final);
}

/* Close a precopy round: tell the destination, and measure what the round cost. */
static int end_round(struct source *s, struct dmalog_mig_round *rd, double start,
		     uint64_t bytes_before)
{
	struct dmalog_frame_round msg = {.round = rd->round, .pages = s->ch[0].pages};
	int ret = queue_msg(s, DMALOG_FRAME_ROUND, &msg);

	if (!ret)
		ret = flush(s);
	rd->ms = link_now_ms() - start;
	rd->bytes = bytes_sent(s) - bytes_before;
	s->send_bytes += rd->bytes;
	s->send_ms += rd->ms;
	return ret;
}

/* Milliseconds the remaining pages and device state would take at the measured bandwidth. */
static double expected_downtime_ms(struct source *s)
{
	uint64_t bytes = count_dirty(s) << DMALOG_RAM_PAGE_SHIFT;

	for (uint32_t i = 0; i < s->c->ndevices; i++) {
		uint64_t sz;

		if (!dmalog_handle_data_size(s->c->devices[i], &sz))
			bytes += sz;
	}
	return s->send_bytes ? (double)bytes * s->send_ms / (double)s->send_bytes : 0;
}

/* Precopy reads what a device has so far and moves on: its data fd must not block. */
static void nonblocking(int fd)
{
	int flags = fd >= 0 ? fcntl(fd, F_GETFL) : -1;

	if (flags >= 0)
		fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

/*
 * Auto-converge, as QEMU's cpu-throttle: once the guest dirtied more than half of what a
 * round sent (QEMU's throttle-trigger-threshold) for two rounds in a row, throttle the vCPUs,
 * and more each round it still does. Devices cannot be throttled (a VFIO device has no such
 * knob): their DMA is what it is.
 */
static void auto_converge(struct source *s, const struct dmalog_mig_round *rd)
{
	void (*throttle)(void *, uint32_t) = HOOK(s->m, throttle_vcpus);
	uint64_t dirtied = count_dirty(s) << DMALOG_RAM_PAGE_SHIFT;
	uint32_t *pct = &s->r->throttle_percent;

	if (!(s->c->flags & DMALOG_MIG_AUTO_CONVERGE) || !throttle)
		return;
	if (dirtied <= rd->bytes / 2) {
		s->outrun_rounds = 0;
		return;
	}
	if (++s->outrun_rounds < 2)
		return;
	*pct = *pct ? *pct + s->c->throttle_increment : s->c->throttle_initial;
	if (*pct > s->c->throttle_max)
		*pct = s->c->throttle_max;
	throttle(s->c->opaque, *pct);
}

/*
 * Not converging: name every tracker whose pages alone would not fit the downtime limit at
 * the bandwidth measured (a device's DMA, which no throttle can slow, is the usual culprit).
 */
static void explain_no_convergence(struct source *s)
{
	char *why = s->r->not_converged_why;
	size_t used = 0;
	double bw = s->send_ms > 0 ? (double)s->send_bytes * 1e3 / s->send_ms : 0;

	why[0] = 0;
	for (uint32_t i = 0; i < s->c->ntrackers && bw > 0 && s->sync_interval_ms > 0; i++) {
		double bytes = (double)(s->tracker_pages[i] << DMALOG_RAM_PAGE_SHIFT);
		double alone_ms = bytes * 1e3 / bw;

		if (alone_ms <= s->c->downtime_limit_ms ||
		    used + 64 >= sizeof(s->r->not_converged_why))
			continue;
		used += (size_t)snprintf(why + used, sizeof(s->r->not_converged_why) - used,
					 "%s%s dirties %.0f MB/s", used ? "; " : "",
					 dmalog_tracker_name(s->c->trackers[i]),
					 bytes / 1e3 / s->sync_interval_ms);
	}
	if (used)
		snprintf(why + used, sizeof(s->r->not_converged_why) - used,
			 "; bandwidth %.0f MB/s; cannot fit %.0f ms", bw / 1e6,
			 s->c->downtime_limit_ms);
	else /* no tracker alone: all of them together, or the devices' state */
		snprintf(why, sizeof(s->r->not_converged_why),
			 "what is left (pages and device state) takes %.1f ms at %.0f MB/s; "
			 "cannot fit %g ms",
			 s->r->expected_downtime_ms, bw / 1e6, s->c->downtime_limit_ms);
}

/*
 * After a round: 1 to switch over (and why), 0 to go on, or -errno when the migration must
 * not switch over at all (max_rounds reached without fitting, with ABORT_IF_NOT_CONVERGED).
 */
static int decide_switchover(struct source *s)
{
	double expected = expected_downtime_ms(s);

	s->r->expected_downtime_ms = expected;
	if (__atomic_load_n(&s->m->force_switchover, __ATOMIC_ACQUIRE)) {
		s->r->switchover = DMALOG_MIG_SWITCHOVER_FORCED;
		return 1;
	}
	if (expected <= s->c->downtime_limit_ms) {
		s->r->switchover = DMALOG_MIG_SWITCHOVER_FITS_LIMIT;
		s->r->converged = true;
		return 1;
	}
	if (s->round < s->c->max_rounds)
		return 0;
	explain_no_convergence(s);
	if (s->c->flags & DMALOG_MIG_ABORT_IF_NOT_CONVERGED)
		return engine_fail(s->m, -ETIMEDOUT,
				   "did not converge in %u rounds: %.0f ms of downtime expected, "
				   "limit %.0f ms%s%s",
				   s->round, expected, s->c->downtime_limit_ms,
				   s->r->not_converged_why[0] ? "; " : "", s->r->not_converged_why);
	s->r->switchover = DMALOG_MIG_SWITCHOVER_MAX_ROUNDS;
	return 1;
}

static int precopy(struct source *s)
{
	bool (*keep_precopy)(void *, uint32_t) = HOOK(s->m, keep_precopy);
	int ret;

	for (uint32_t i = 0; i < s->c->ndevices; i++) {
		ret = dmalog_handle_set_state(s->c->devices[i], VFIO_DEVICE_STATE_PRE_COPY,
					      &s->data_fd[i]);
		if (ret)
			return engine_fail(s->m, ret, "device %u refused PRE_COPY (%s)", i,
					   strerror(-ret));
		nonblocking(s->data_fd[i]);
	}
	/* The first round sends everything: the bulk stage. */
	memset(s->bitmap, 0xff, s->npages / 8);
	s->r->setup_ms = link_now_ms() - s->t0;
	for (;;) {
		struct dmalog_mig_round *rd = engine_new_round(s->m);
		double start = link_now_ms();
		uint64_t before = bytes_sent(s);

		if (!rd)
			return engine_fail(s->m, -ENOMEM, "out of memory");
		s->round = rd->round;
		ret = engine_cancelled(s->m);
		if (ret)
			return ret;
		ret = engine_event(s->m, DMALOG_MIG_EVENT_ROUND, s->round);
		if (ret)
			return engine_fail(s->m, ret, "round %u stopped by the embedder", s->round);
		ret = send_dirty_pages(s, rd);
		if (!ret)
			ret = send_device_data(s, rd, false);
		if (!ret)
			ret = end_round(s, rd, start, before);
		if (!ret)
			ret = sync_dirty(s, rd);
		if (ret)
			return ret;
		round_done(s, rd, false);
		auto_converge(s, rd);
		if (keep_precopy && keep_precopy(s->c->opaque, s->round))
			continue;
		ret = decide_switchover(s);
		if (ret)
			return ret < 0 ? ret : 0;
	}
}

/* Stop the guest: vCPUs, then every device to STOP_COPY (whose fd carries the final state). */
static int stop_guest(struct source *s)
{
	void (*pause)(void *) = HOOK(s->m, pause_vcpus);

	if (pause)
		pause(s->c->opaque);
	s->vcpus_paused = true;
	for (uint32_t i = 0; i < s->c->ndevices; i++) {
		int fd = -1, ret = dmalog_handle_set_state(s->c->devices[i],
							   VFIO_DEVICE_STATE_STOP_COPY, &fd);

		if (ret)
			return engine_fail(s->m, ret, "device %u refused STOP_COPY (%s)", i,
					   strerror(-ret));
		/* PRE_COPY -> STOP_COPY goes on with the same fd; another arc may give a new one.
		 */
		if (fd >= 0) {
			if (s->data_fd[i] >= 0)
				close(s->data_fd[i]);
			s->data_fd[i] = fd;
			nonblocking(fd);
		}
	}
	return 0;
}

/*
 * The final round, up to COMPLETE written whole. Returns 0 once COMPLETE is on the wire, or
 * -errno while the destination cannot have it (a failure here rolls back).
 */
static int final_state(struct source *s, struct dmalog_mig_round *rd, double *t_stop)
{
	double *part = s->m->r.downtime_parts, t;
	int ret;

	*t_stop = t = link_now_ms();
	s->stop_deadline = *t_stop + s->c->downtime_cap_ms;
	ret = stop_guest(s);
	part[0] = link_now_ms() - t;
	if (!ret)
		ret = engine_event(s->m, DMALOG_MIG_EVENT_STOPPED, s->round);
	if (!ret)
		ret = queue_msg(s, DMALOG_FRAME_SWITCHOVER, NULL);
	t = link_now_ms();
	if (!ret)
		ret = sync_dirty(s, rd);
	part[1] = link_now_ms() - t;
	t = link_now_ms();
	if (!ret)
		ret = send_dirty_pages(s, rd);
	part[2] = link_now_ms() - t;
	t = link_now_ms();
	if (!ret)
		ret = send_device_data(s, rd, true);
	if (!ret)
		ret = flush(s);
	/* Queued pages went out with the device data: the flush counts for both. */
	part[3] = link_now_ms() - t;
	if (!ret && (ret = engine_event(s->m, DMALOG_MIG_EVENT_COMPLETE, s->round)))
		engine_fail(s->m, ret, "stopped by the embedder before COMPLETE");
	if (ret)
		return ret;
	/*
	 * COMPLETE alone: if any of its 20 bytes is not written, the destination cannot have a
	 * whole, checksummed COMPLETE and cannot resume; rolling back is safe.
	 */
	if (link_msg(&s->l, DMALOG_FRAME_COMPLETE, NULL))
		return engine_fail(s->m, -ENOMEM, "out of memory");
	/* The last moment a cancel can still roll back. */
	ret = engine_cancelled(s->m) ?: check_cap(s);
	if (ret)
		return ret;
	s->l.timeout_ms = stopped_wait_ms(s);
	ret = link_flush(&s->l);
	return ret ? engine_fail(s->m, ret, "%s", s->l.error) : 0;
}

/* A nonce nobody could have guessed before the verification starts. */
static uint64_t fresh_nonce(void)
{
	uint64_t nonce = 0;

	if (getrandom(&nonce, sizeof(nonce), 0) != sizeof(nonce))
		nonce = (uint64_t)(link_now_ms() * 1e6) ^ (uint64_t)getpid() << 32;
	return nonce;
}

/* Guest page @page of the source, wherever its region is. */
static const uint8_t *source_page(struct source *s, uint64_t page, uint32_t *region)
{
	uint64_t off = page << DMALOG_RAM_PAGE_SHIFT;
	const struct dmalog_ram_region *r;

	while (off >= s->m->ram.regions[*region].ram_offset + s->m->ram.regions[*region].length)
		(*region)++;
	r = &s->m->ram.regions[*region];
	return (const uint8_t *)r->host + (off - r->ram_offset);
}

static void note_mismatch(struct source *s, uint64_t first, uint64_t *named, char *list,
			  size_t size)
{
	size_t used = strlen(list);

	if (*named < 4 && used + 24 < size)
		snprintf(list + used, size - used, "%s%llu", used ? ", " : "",
			 (unsigned long long)first);
	(*named)++;
}

/*
 * The proof. The destination digests every page and device state it holds, keyed by a fresh
 * nonce; the source digests its own and compares, so a destination cannot claim what it does
 * not have. The counts go back as RESULT, then END.
 */
static int verify(struct source *s)
{
	int (*device_hash)(void *, uint32_t, uint64_t *) = HOOK(s->m, device_hash);
	struct dmalog_frame_verify req = {.nonce = fresh_nonce()};
	struct dmalog_frame_result res = {0};
	struct dmalog_frame_end end;
	uint32_t max = sizeof(struct dmalog_frame_run) + 8 * VERIFY_PAGES, region = 0;
	uint8_t *buf = malloc(max);
	uint64_t next = 0, named = 0;
	char pages[96] = "";
	int ret;

	if (!buf)
		return engine_fail(s->m, -ENOMEM, "out of memory");
	ret = link_msg(&s->l, DMALOG_FRAME_VERIFY, &req) ?: link_flush(&s->l);
	if (ret)
		engine_fail(s->m, ret, "asking for the proof: %s", s->l.error);
	/* Every page in order, in runs the destination chooses (at most VERIFY_PAGES each). */
	while (!ret && next < s->npages) {
		struct dmalog_frame_run run;
		int n = read_answer(s, (int)s->c->timeout_ms, DMALOG_FRAME_VERIFY_PAGES, buf, max);

		if (n < 0) {
			ret = n;
			break;
		}
		if (dmalog_frame_decode(DMALOG_FRAME_VERIFY_PAGES, buf, (uint32_t)n - 1, &run) ||
		    run.first_page != next || !run.count || run.count > s->npages - next ||
		    (uint64_t)n - 1 != sizeof(run) + 8ULL * run.count) {
			ret = engine_fail(s->m, -EPROTO, "a malformed VERIFY_PAGES answer");
			break;
		}
		for (uint32_t i = 0; i < run.count; i++) {
			uint64_t theirs, ours = dmalog_page_digest(
						 req.nonce, source_page(s, next + i, &region),
						 DMALOG_RAM_PAGE_SIZE);

			memcpy(&theirs, buf + sizeof(run) + 8 * i, 8);
			if (theirs != ours) {
				res.pages_mismatched++;
				note_mismatch(s, next + i, &named, pages, sizeof(pages));
			}
		}
		res.pages_compared += run.count;
		next += run.count;
	}
	/* What was compared counts, even if the rest of the proof does not come. */
	s->r->pages_compared = res.pages_compared;
	s->r->pages_mismatched = res.pages_mismatched;
	for (uint32_t i = 0; i < s->c->ndevices && !ret; i++) {
		struct dmalog_frame_verify_device vd;
		uint64_t hash;
		int n = read_answer(s, (int)s->c->timeout_ms, DMALOG_FRAME_VERIFY_DEVICE, buf, max);

		if (n < 0) {
			ret = n;
			break;
		}
		if (dmalog_frame_decode(DMALOG_FRAME_VERIFY_DEVICE, buf, (uint32_t)n - 1, &vd) ||
		    vd.device != i) {
			ret = engine_fail(s->m, -EPROTO, "a malformed VERIFY_DEVICE answer");
			break;
		}
		if (!device_hash)
			continue;
		ret = device_hash(s->c->opaque, i, &hash);
		if (ret) {
			engine_fail(s->m, ret, "no state digest for device %u", i);
			break;
		}
		res.devices_compared++;
		res.devices_mismatched += vd.hash != dmalog_page_digest(req.nonce, &hash, 8);
	}
	free(buf);
	if (ret)
		return ret;
	s->r->devices_compared = res.devices_compared;
	s->r->devices_mismatched = res.devices_mismatched;
	s->r->verified = res.pages_compared == s->npages && !res.pages_mismatched &&
			 res.devices_compared == (device_hash ? s->c->ndevices : 0) &&
			 !res.devices_mismatched;
	/* Tell the destination what was found; it runs the guest either way. */
	end.frames = s->l.frames + 1;
	ret = link_msg(&s->l, DMALOG_FRAME_RESULT, &res) ?: link_msg(&s->l, DMALOG_FRAME_END, &end);
	if (!ret)
		link_flush(&s->l);
	if (s->r->verified)
		return 0;
	return engine_fail(
		s->m, -EIO,
		"the destination's proof differs in %llu pages (first: %s) and %u devices",
		(unsigned long long)res.pages_mismatched, pages[0] ? pages : "none",
		res.devices_mismatched);
}

static void stop_tracking(struct source *s)
{
	for (uint32_t i = 0; i < s->c->ntrackers; i++)
		dmalog_tracker_stop(s->c->trackers[i]);
}

static void close_data_fds(struct source *s)
{
	for (uint32_t i = 0; i < s->c->ndevices; i++) {
		if (s->data_fd[i] >= 0)
			close(s->data_fd[i]);
		s->data_fd[i] = -1;
	}
}

/* Back to where the guest was: tracking stopped, devices RUNNING, vCPUs running. */
static void roll_back(struct source *s)
{
	void (*resume)(void *) = HOOK(s->m, resume_vcpus);
	bool running = true;

	stop_tracking(s);
	close_data_fds(s);
	for (uint32_t i = 0; i < s->c->ndevices; i++) {
		uint32_t state;

		if (dmalog_handle_set_state(s->c->devices[i], VFIO_DEVICE_STATE_RUNNING, NULL) ||
		    dmalog_handle_get_state(s->c->devices[i], &state) ||
		    state != VFIO_DEVICE_STATE_RUNNING)
			running = false;
	}
	if (s->r->throttle_percent && HOOK(s->m, throttle_vcpus))
		HOOK(s->m, throttle_vcpus)(s->c->opaque, 0);
	if (s->vcpus_paused && resume)
		resume(s->c->opaque);
	s->vcpus_paused = false;
	s->r->devices_running = running;
	s->r->outcome = DMALOG_MIG_ROLLED_BACK;
}

/* The guest is (or may be) the destination's: stay paused, devices in STOP. */
static void stay_stopped(struct source *s, enum dmalog_mig_outcome outcome)
{
	stop_tracking(s);
	close_data_fds(s);
	for (uint32_t i = 0; i < s->c->ndevices; i++)
		dmalog_handle_set_state(s->c->devices[i], VFIO_DEVICE_STATE_STOP, NULL);
	s->r->outcome = outcome;
}

/* HELLO: the stream's version and the guest's shape: its regions and its devices, by name. */
static int send_hello(struct source *s)
{
	const struct dmalog_ram_map *ram = &s->m->ram;
	struct dmalog_frame_hello hello = {
		.version = DMALOG_STREAM_VERSION,
		.page_shift = DMALOG_RAM_PAGE_SHIFT,
		.guest_bytes = ram->bytes,
		.ndevices = s->c->ndevices,
		.nregions = ram->nregions,
		.channels = s->nch,
	};
	uint32_t len = sizeof(hello) + ram->nregions * sizeof(struct dmalog_frame_hello_region) +
		       s->c->ndevices * DMALOG_HELLO_NAME_BYTES;
	uint8_t *p = link_frame_begin(&s->l, len), *q;

	if (!p)
		return engine_fail(s->m, -ENOMEM, "out of memory");
	dmalog_frame_encode(DMALOG_FRAME_HELLO, &hello, p);
	q = p + sizeof(hello);
	for (uint32_t i = 0; i < ram->nregions; i++, q += 16) {
		put64(q, ram->regions[i].gpa);
		put64(q + 8, ram->regions[i].length);
	}
	for (uint32_t i = 0; i < s->c->ndevices; i++, q += DMALOG_HELLO_NAME_BYTES) {
		memset(q, 0, DMALOG_HELLO_NAME_BYTES);
		strncpy((char *)q, dmalog_handle_name(s->c->devices[i]),
			DMALOG_HELLO_NAME_BYTES - 1);
	}
	link_frame_seal(&s->l, DMALOG_FRAME_HELLO);
	/* Each page channel says which one it is before it carries anything. */
	for (uint32_t i = 1; i < s->nch; i++) {
		struct dmalog_frame_channel msg = {
			.version = DMALOG_STREAM_VERSION,
			.index = i,
			.channels = s->nch,
			.page_shift = DMALOG_RAM_PAGE_SHIFT,
			.guest_bytes = ram->bytes,
		};

		if (link_msg(s->ch[i].l, DMALOG_FRAME_CHANNEL, &msg))
			return engine_fail(s->m, -ENOMEM, "out of memory");
	}
	return 0;
}

static int start(struct source *s)
{
	int ret = send_hello(s);

	for (uint32_t i = 0; i < s->c->ntrackers && !ret; i++) {
		ret = dmalog_tracker_start(s->c->trackers[i], &s->m->ram);
		if (ret)
			engine_fail(s->m, ret, "cannot start tracker %s (%s)",
				    dmalog_tracker_name(s->c->trackers[i]), strerror(-ret));
	}
	return ret;
}

/* A page channel's frames go to the embedder's channel_frame_out hook with its index. */
static void chan_tap(void *opaque, uint16_t type, uint8_t *frame, uint32_t length)
{
	struct chan *ch = opaque;

	HOOK(ch->s->m, channel_frame_out)(ch->s->c->opaque, ch->index, type, frame, length);
}

/* The main connection and each page channel, every one stopping when another fails. */
static void init_channels(struct source *s)
{
	struct dmalog_mig *m = s->m;

	link_init(&s->l, m->cfg.fd, (int)m->cfg.timeout_ms);
	s->l.tap = HOOK(m, frame_out);
	s->l.tap_opaque = m->cfg.opaque;
	s->nch = 1 + m->cfg.npage_fds;
	for (uint32_t i = 0; i < s->nch; i++) {
		struct chan *ch = &s->ch[i];

		ch->s = s;
		ch->index = i;
		ch->l = i ? &ch->own : &s->l;
		if (i)
			link_init(&ch->own, m->cfg.page_fds[i - 1], (int)m->cfg.timeout_ms);
		if (i && HOOK(m, channel_frame_out)) {
			ch->own.tap = chan_tap;
			ch->own.tap_opaque = ch;
		}
		ch->l->stop = &s->stop_chans;
	}
}

int source_run(struct dmalog_mig *m)
{
	struct source s = {.m = m, .c = &m->cfg, .r = &m->r};
	struct dmalog_mig_round *rd = NULL;
	uint64_t bytes_before = 0;
	double t_stop = 0;
	int ret;

	init_channels(&s);
	for (uint32_t i = 0; i < DMALOG_MIG_MAX_DEVICES; i++)
		s.data_fd[i] = -1;
	s.npages = dmalog_ram_map_pages(&m->ram);
	s.bitmap = calloc(s.npages / 64, 8);
	s.chunk = malloc(DEVICE_CHUNK + sizeof(struct dmalog_frame_device));
	s.scratch = calloc(s.npages / 64, 8);
	s.t0 = s.last_sync = link_now_ms();
	ret = s.bitmap && s.chunk && s.scratch ? start(&s)
					       : engine_fail(m, -ENOMEM, "out of memory");
	if (!ret)
		ret = precopy(&s);
	if (!ret) {
		rd = engine_new_round(m);
		ret = rd ? 0 : engine_fail(m, -ENOMEM, "out of memory");
		bytes_before = bytes_sent(&s);
		if (rd)
			s.round = rd->round;
	}
	if (!ret)
		ret = final_state(&s, rd, &t_stop);
	if (ret) {
		roll_back(&s);
		goto out;
	}
	/* COMPLETE is on the wire: from here on the guest may be running at the destination. */
	/* The answer, too, must come within the cap: the guest is stopped until it does. */
	s.l.timeout_ms = stopped_wait_ms(&s);
	ret = take_answer(&s, s.l.timeout_ms, DMALOG_FRAME_RUNNING);
	s.l.timeout_ms = (int)m->cfg.timeout_ms;
	s.stop_deadline = 0;
	if (ret == -ECANCELED) {
		/* An explicit refusal: the destination did not resume, so the source does. */
		roll_back(&s);
		goto out;
	}
	if (ret < 0) {
		/* take_answer() said what went wrong; say what it means for the guest. */
		stay_stopped(&s, DMALOG_MIG_OUTCOME_UNKNOWN);
		strncat(m->r.message, "; outcome unknown: guest left paused on the source",
			sizeof(m->r.message) - strlen(m->r.message) - 1);
		goto out;
	}
	m->r.downtime_ms = link_now_ms() - t_stop;
	m->r.downtime_parts[4] = m->r.downtime_ms - m->r.downtime_parts[0] -
				 m->r.downtime_parts[1] - m->r.downtime_parts[2] -
				 m->r.downtime_parts[3];
	rd->ms = m->r.downtime_ms;
	rd->bytes = bytes_sent(&s) - bytes_before;
	stay_stopped(&s, DMALOG_MIG_MIGRATED);
	round_done(&s, rd, true);
	engine_event(m, DMALOG_MIG_EVENT_HANDED_OFF, s.round);
	m->r.migration_ms = link_now_ms() - s.t0;
	ret = verify(&s);
	m->r.verify_ms = link_now_ms() - s.t0 - m->r.migration_ms;
out:
	m->r.total_ms = link_now_ms() - s.t0;
	m->r.bytes_sent = bytes_sent(&s);
	m->r.bandwidth = s.send_ms > 0 ? (double)s.send_bytes * 1e3 / s.send_ms : 0;
	for (uint32_t i = 0; i < s.nch; i++) {
		m->r.zero_pages += s.ch[i].zero_pages;
		link_fini(s.ch[i].l);
	}
	close_data_fds(&s);
	free(s.bitmap);
	free(s.chunk);
	free(s.scratch);
	return ret;
}
