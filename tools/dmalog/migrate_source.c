// SPDX-License-Identifier: MIT
/*
 * The source side of `dmalog migrate`: precopy rounds while the guest runs, a switchover
 * when what is left fits the downtime limit, the final state, and then the proof (a hash of
 * every page and device, compared by the destination). Any failure before the destination
 * confirms rolls the source back: tracking stopped, devices RUNNING, CPU running.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <poll.h>
#include <unistd.h>

#include "bench_util.h"
#include "migrate.h"

#define RUN_PAGES	  256 /* pages per PAGES frame: 1 MiB */
#define DEVICE_CHUNK	  (256u << 10)
#define VERIFY_PAGES	  4096 /* hashes per VERIFY_PAGES frame */
#define ANSWER_TIMEOUT_MS 60000

struct source {
	const struct mig_options *o;
	struct mig_result *r;
	struct guest *g;
	struct link l;
	int dest_pid;
	uint64_t *bitmap;
	uint64_t npages;
	int data_fd[MIG_MAX_DEVICES];
	uint8_t *chunk;
	struct sync_stats sync;
	double t0, last_sync;
	double send_seconds; /* time spent sending rounds, for the bandwidth estimate */
	uint64_t send_bytes;
	bool cpu_paused;
	uint32_t round;
};

__attribute__((format(printf, 3, 4))) static int fail(struct source *s, int err, const char *fmt,
						      ...)
{
	va_list ap;

	if (!s->r->error[0]) {
		va_start(ap, fmt);
		vsnprintf(s->r->error, sizeof(s->r->error), fmt, ap);
		va_end(ap);
	}
	return err ? err : -EIO;
}

/*
 * What the destination said, if anything: the payload length of a @want frame (copied to
 * @payload, at most @max bytes), 0 when nothing is waiting and @timeout_ms is 0, or -errno
 * with the reason (an ABORT carries the destination's).
 */
static int take_answer(struct source *s, int timeout_ms, uint16_t want, void *payload, uint32_t max)
{
	char buf[512];
	uint16_t type;
	uint32_t len;
	int ret = link_read_frame(&s->l, timeout_ms, &type, (uint8_t *)buf, sizeof(buf) - 1, &len);

	if (ret == -EAGAIN && timeout_ms)
		return fail(s, -ETIMEDOUT, "the destination did not answer");
	if (ret == -EAGAIN)
		return 0;
	if (ret == -ECONNRESET)
		return fail(s, ret, "the destination closed the connection");
	if (ret)
		return fail(s, ret, "bad answer from the destination (%s)", strerror(-ret));
	if (type == DMALOG_FRAME_ABORT) {
		buf[len] = 0;
		return fail(s, -ECANCELED, "the destination aborted: %s", buf);
	}
	if (type != want || len > max)
		return fail(s, -EPROTO, "unexpected answer %u from the destination", type);
	if (len)
		memcpy(payload, buf, len);
	return (int)len;
}

/* Send what is queued; if the peer is gone, find out why. */
static int flush(struct source *s)
{
	int ret = link_flush(&s->l);

	if (ret) {
		take_answer(s, 200, 0, NULL, 0);
		return fail(s, ret, "%s", s->l.error);
	}
	/* An ABORT may be waiting even while sends succeed. */
	ret = take_answer(s, 0, 0, NULL, 0);
	return ret > 0 ? fail(s, -EPROTO, "unexpected answer from the destination") : ret;
}

static int queue(struct source *s, uint16_t type, const void *payload, uint32_t len)
{
	if (link_frame(&s->l, type, payload, len))
		return fail(s, -ENOMEM, "out of memory");
	return s->l.len >= LINK_FLUSH_BYTES ? flush(s) : 0;
}

/*
 * Copy guest memory that the guest may be writing: word by word with relaxed atomic loads,
 * as the DMA engines store, so each word is whole (x86 compiles these to plain moves). A
 * page that changes during the copy is dirty again and goes in a later round.
 */
static void copy_guest(uint8_t *dst, const uint8_t *src, uint64_t bytes)
{
	const uint64_t *from = (const uint64_t *)src;

	/* @dst sits after a 20-byte frame header: 4 bytes off alignment, so memcpy each word. */
	for (uint64_t i = 0; i < bytes / 8; i++) {
		uint64_t w = __atomic_load_n(&from[i], __ATOMIC_RELAXED);

		memcpy(dst + 8 * i, &w, 8);
	}
}

/* One PAGES frame for @n pages from @first, copied out of guest memory and checksummed. */
static int send_run(struct source *s, uint64_t first, uint32_t n, bool corrupt)
{
	uint8_t *p = link_frame_begin(&s->l, 16 + (n << MIG_PAGE_SHIFT));

	if (!p)
		return fail(s, -ENOMEM, "out of memory");
	memset(p, 0, 16);
	memcpy(p, &first, 8);
	memcpy(p + 8, &n, 4);
	copy_guest(p + 16, s->g->ram + (first << MIG_PAGE_SHIFT), (uint64_t)n << MIG_PAGE_SHIFT);
	link_frame_seal(&s->l, DMALOG_FRAME_PAGES);
	/* The injected fault: damage after the checksum, as a bad link would. */
	if (corrupt)
		p[16 + 100] ^= 0x20;
	return s->l.len >= LINK_FLUSH_BYTES ? flush(s) : 0;
}

/* Send every page set in the bitmap, then clear it. */
static int send_dirty_pages(struct source *s, struct mig_round *rd)
{
	bool corrupt = s->o->inject == MIG_INJECT_CORRUPT_STREAM && s->round == s->o->inject_round;

	for (uint64_t p = 0; p < s->npages;) {
		uint64_t w = s->bitmap[p / 64] >> (p % 64);
		uint32_t n = 0;
		int ret;

		if (!w) {
			p = (p / 64 + 1) * 64;
			continue;
		}
		p += (uint64_t)__builtin_ctzll(w);
		while (p + n < s->npages && n < RUN_PAGES &&
		       (s->bitmap[(p + n) / 64] >> ((p + n) % 64) & 1))
			n++;
		ret = send_run(s, p, n, corrupt);
		if (ret)
			return ret;
		corrupt = false;
		rd->pages += n;
		p += n;
	}
	memset(s->bitmap, 0, s->npages / 8);
	return 0;
}

/* Forward what the devices have produced; with @final, wait for each stream's end. */
static int send_device_data(struct source *s, struct mig_round *rd, bool final)
{
	for (uint32_t i = 0; i < s->g->ndevices; i++) {
		while (s->data_fd[i] >= 0) {
			uint32_t hdr[2] = {i, 0};
			ssize_t n = read(s->data_fd[i], s->chunk + 8, DEVICE_CHUNK);
			int ret;

			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && errno == EAGAIN && !final)
				break;
			if (n < 0 && errno == EAGAIN) {
				struct pollfd pfd = {.fd = s->data_fd[i], .events = POLLIN};

				poll(&pfd, 1, 100);
				continue;
			}
			if (n < 0)
				return fail(s, -errno, "reading device %u's data: %s", i,
					    strerror(errno));
			if (!n) {
				close(s->data_fd[i]);
				s->data_fd[i] = -1;
				ret = queue(s, DMALOG_FRAME_DEVICE_DONE, hdr, sizeof(hdr));
				if (ret)
					return ret;
				break;
			}
			memcpy(s->chunk, hdr, sizeof(hdr));
			/* The injected fault: device 0's state damaged before it is framed. */
			if (s->o->inject == MIG_INJECT_DEVICE_STATE && i == 0 && !rd->device_bytes)
				s->chunk[8 + n / 2] ^= 0x01;
			ret = queue(s, DMALOG_FRAME_DEVICE_DATA, s->chunk, 8 + (uint32_t)n);
			if (ret)
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

/* The first device tracker fails its next REPORT; without one, the IOMMU its next read. */
static void inject_tracker_fault(struct guest *g)
{
	for (uint32_t i = 0; i < g->ndevices; i++) {
		struct dmalog_devtrack *dt = dmalog_emudev_devtrack(g->emu[i]);

		if (dt) {
			dmalog_devtrack_inject(dt, DMALOG_DEVTRACK_FAULT_ERROR_EVENT);
			return;
		}
	}
	if (g->iommu_dirty)
		dmalog_iopt_set_debug(g->iopt, DMALOG_IOPT_DEBUG_FAIL_READ);
}

static int sync_dirty(struct source *s, struct mig_round *rd)
{
	double t = bench_now();
	int ret;

	if (s->o->inject == MIG_INJECT_TRACKER_FAULT && s->round == s->o->inject_round)
		inject_tracker_fault(s->g);
	ret = tracking_sync(s->g, s->bitmap, &s->sync);
	if (ret)
		return fail(s, ret, "dirty sync failed (%s)", strerror(-ret));
	rd->sync_ms = (bench_now() - t) * 1e3;
	rd->dirty_rate = (double)count_dirty(s) / (t - s->last_sync);
	s->last_sync = t;
	return 0;
}

static struct mig_round *new_round(struct source *s)
{
	struct mig_result *r = s->r;
	struct mig_round *rounds = realloc(r->rounds, (r->nrounds + 1) * sizeof(*rounds));

	if (!rounds)
		return NULL;
	r->rounds = rounds;
	rounds[r->nrounds] = (struct mig_round){.round = ++s->round};
	return &rounds[r->nrounds++];
}

/* Close a precopy round: tell the destination, and measure what the round cost. */
static int end_round(struct source *s, struct mig_round *rd, double start, uint64_t bytes_before)
{
	uint64_t msg[2] = {rd->round, rd->pages};
	int ret = queue(s, DMALOG_FRAME_ROUND, msg, sizeof(msg));

	if (!ret)
		ret = flush(s);
	rd->ms = (bench_now() - start) * 1e3;
	rd->bytes = s->l.bytes - bytes_before;
	s->send_bytes += rd->bytes;
	s->send_seconds += rd->ms / 1e3;
	return ret;
}

/* Seconds the remaining pages and device state would take at the measured bandwidth. */
static double expected_downtime(struct source *s)
{
	uint64_t bytes = count_dirty(s) << MIG_PAGE_SHIFT;

	for (uint32_t i = 0; i < s->g->ndevices; i++) {
		uint64_t sz;

		if (!guest_data_size(s->g->dev[i], &sz))
			bytes += sz;
	}
	return s->send_seconds > 0 ? (double)bytes * s->send_seconds / (double)s->send_bytes : 0;
}

static int precopy(struct source *s)
{
	int ret;

	for (uint32_t i = 0; i < s->g->ndevices; i++) {
		ret = guest_set_state(s->g->dev[i], VFIO_DEVICE_STATE_PRE_COPY, &s->data_fd[i]);
		if (ret)
			return fail(s, ret, "device %u refused PRE_COPY (%s)", i, strerror(-ret));
		fcntl(s->data_fd[i], F_SETFL, O_NONBLOCK);
	}
	/* The first round sends everything: the bulk stage. */
	memset(s->bitmap, 0xff, s->npages / 8);
	for (;;) {
		struct mig_round *rd = new_round(s);
		double start = bench_now();
		uint64_t before = s->l.bytes;

		if (!rd)
			return fail(s, -ENOMEM, "out of memory");
		if (s->o->inject == MIG_INJECT_KILL_DEST && s->round == s->o->inject_round &&
		    s->dest_pid > 0)
			kill(s->dest_pid, SIGKILL);
		ret = send_dirty_pages(s, rd);
		if (!ret)
			ret = send_device_data(s, rd, false);
		if (!ret)
			ret = end_round(s, rd, start, before);
		if (!ret)
			ret = sync_dirty(s, rd);
		if (ret)
			return ret;
		report_progress(s->o, rd, s->npages, false);
		/* An injected failure due at a later round keeps precopy going until then. */
		if (s->o->inject && s->round < s->o->inject_round)
			continue;
		if (expected_downtime(s) * 1e3 <= s->o->downtime_limit_ms ||
		    s->round >= s->o->max_rounds)
			return 0;
	}
}

static int switchover(struct source *s, double *t_stop)
{
	struct mig_round *rd = new_round(s);
	uint64_t bytes_before = s->l.bytes;
	int ret;

	if (!rd)
		return fail(s, -ENOMEM, "out of memory");
	*t_stop = bench_now();
	dmalog_dma_engine_pause(s->g->cpu);
	s->cpu_paused = true;
	for (uint32_t i = 0; i < s->g->ndevices; i++) {
		int fd = -1;

		ret = guest_set_state(s->g->dev[i], VFIO_DEVICE_STATE_STOP_COPY, &fd);
		if (ret)
			return fail(s, ret, "device %u refused STOP_COPY (%s)", i, strerror(-ret));
		if (fd >= 0) {
			close(s->data_fd[i]);
			s->data_fd[i] = fd;
			fcntl(fd, F_SETFL, O_NONBLOCK);
		}
	}
	ret = queue(s, DMALOG_FRAME_SWITCHOVER, NULL, 0);
	if (!ret)
		ret = sync_dirty(s, rd);
	if (!ret)
		ret = send_dirty_pages(s, rd);
	if (!ret)
		ret = send_device_data(s, rd, true);
	if (!ret)
		ret = queue(s, DMALOG_FRAME_COMPLETE, NULL, 0);
	if (!ret)
		ret = flush(s);
	if (!ret)
		ret = take_answer(s, ANSWER_TIMEOUT_MS, DMALOG_FRAME_RUNNING, NULL, 0);
	if (ret < 0)
		return ret;
	s->r->downtime_ms = (bench_now() - *t_stop) * 1e3;
	rd->ms = s->r->downtime_ms;
	rd->bytes = s->l.bytes - bytes_before;
	report_progress(s->o, rd, s->npages, true);
	return 0;
}

/* The proof: every page's and device's hash, for the destination to compare. */
static int verify(struct source *s)
{
	uint64_t *hashes = (uint64_t *)(s->chunk + 16);
	uint8_t answer[32];
	int ret = 0;

	for (uint64_t p = 0; p < s->npages && !ret; p += VERIFY_PAGES) {
		uint32_t n =
			s->npages - p < VERIFY_PAGES ? (uint32_t)(s->npages - p) : VERIFY_PAGES;

		memset(s->chunk, 0, 16);
		memcpy(s->chunk, &p, 8);
		memcpy(s->chunk + 8, &n, 4);
		for (uint32_t i = 0; i < n; i++)
			hashes[i] = dmalog_page_hash(s->g->ram + ((p + i) << MIG_PAGE_SHIFT),
						     MIG_PAGE_SIZE);
		ret = queue(s, DMALOG_FRAME_VERIFY_PAGES, s->chunk, 16 + 8 * n);
	}
	for (uint32_t i = 0; i < s->g->ndevices && !ret; i++) {
		uint64_t msg[2] = {i, dmalog_emudev_state_hash(s->g->emu[i])};

		ret = queue(s, DMALOG_FRAME_VERIFY_DEVICE, msg, sizeof(msg));
	}
	if (!ret) {
		uint64_t frames = s->l.frames;

		ret = queue(s, DMALOG_FRAME_END, &frames, sizeof(frames));
	}
	if (!ret)
		ret = flush(s);
	if (!ret)
		ret = take_answer(s, ANSWER_TIMEOUT_MS, DMALOG_FRAME_RESULT, answer,
				  sizeof(answer));
	if (ret < 0)
		return ret;
	if (ret != 24)
		return fail(s, -EPROTO, "bad result from the destination");
	memcpy(&s->r->pages_compared, answer, 8);
	memcpy(&s->r->pages_mismatched, answer + 8, 8);
	memcpy(&s->r->devices_compared, answer + 16, 4);
	memcpy(&s->r->devices_mismatched, answer + 20, 4);
	return 0;
}

/* Back to where the guest was: running, untracked, with nothing lost. */
static void roll_back(struct source *s)
{
	struct guest *g = s->g;
	bool running = true;
	uint64_t writes;

	tracking_stop(g);
	for (uint32_t i = 0; i < g->ndevices; i++) {
		if (s->data_fd[i] >= 0)
			close(s->data_fd[i]);
		s->data_fd[i] = -1;
		if (guest_set_state(g->dev[i], VFIO_DEVICE_STATE_RUNNING, NULL) ||
		    guest_get_state(g->dev[i]) != VFIO_DEVICE_STATE_RUNNING)
			running = false;
	}
	if (s->cpu_paused)
		dmalog_dma_engine_resume(g->cpu);
	s->cpu_paused = false;
	/* The guest must really run again, and its memory hold only its own writes. */
	writes = guest_writes(g);
	for (int i = 0; i < 400 && guest_writes(g) == writes; i++)
		usleep(5000);
	if (guest_writes(g) == writes)
		running = false;
	guest_pause_writers(g);
	if (guest_stray_words(g))
		running = false;
	guest_resume_writers(g);
	s->r->source_running = running;
}

int migrate_source(const struct mig_options *o, int fd, int dest_pid, struct mig_result *r)
{
	struct source s = {.o = o, .r = r, .dest_pid = dest_pid};
	uint64_t hello[3] = {DMALOG_STREAM_VERSION | (uint64_t)MIG_PAGE_SHIFT << 32, o->mem_bytes,
			     o->ndevices};
	double t_stop = 0;
	int ret;

	link_init(&s.l, fd);
	for (uint32_t i = 0; i < MIG_MAX_DEVICES; i++)
		s.data_fd[i] = -1;
	r->guest_bytes = o->mem_bytes;
	ret = guest_create(o, true, &s.g);
	if (ret) {
		link_fini(&s.l);
		return fail(&s, ret, "cannot create the guest (%s)", strerror(-ret));
	}
	s.npages = o->mem_bytes >> MIG_PAGE_SHIFT;
	s.bitmap = calloc(s.npages / 64, 8);
	s.chunk = malloc(DEVICE_CHUNK + 16 + 8 * VERIFY_PAGES);
	if (!s.bitmap || !s.chunk) {
		ret = fail(&s, -ENOMEM, "out of memory");
		goto out;
	}
	s.t0 = s.last_sync = bench_now();
	ret = queue(&s, DMALOG_FRAME_HELLO, hello, sizeof(hello));
	if (!ret) {
		ret = tracking_start(s.g);
		if (ret)
			fail(&s, ret, "cannot start dirty tracking (%s)", strerror(-ret));
	}
	if (!ret)
		ret = precopy(&s);
	if (!ret)
		ret = switchover(&s, &t_stop);
	if (!ret) {
		tracking_stop(s.g);
		r->completed = true;
		ret = verify(&s);
	}
	r->total_ms = (bench_now() - s.t0) * 1e3;
	r->bytes_sent = s.l.bytes;
	r->tracker_errors = s.sync.tracker_errors;
	r->bandwidth = s.send_seconds > 0 ? (double)s.send_bytes / s.send_seconds : 0;
	if (!ret) {
		r->verified = r->pages_compared == s.npages && !r->pages_mismatched &&
			      r->devices_compared == o->ndevices && !r->devices_mismatched;
		/* Migrated: the source stays stopped, as QEMU's does after a migration. */
		for (uint32_t i = 0; i < s.g->ndevices; i++)
			guest_set_state(s.g->dev[i], VFIO_DEVICE_STATE_STOP, NULL);
	} else if (!r->completed) {
		roll_back(&s);
	}
out:
	for (uint32_t i = 0; i < MIG_MAX_DEVICES; i++)
		if (s.data_fd[i] >= 0)
			close(s.data_fd[i]);
	guest_destroy(s.g);
	link_fini(&s.l);
	free(s.bitmap);
	free(s.chunk);
	return ret;
}
