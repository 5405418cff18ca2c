// SPDX-License-Identifier: MIT
/*
 * The migratable emulated device. One mutex guards its state and its data sessions; an
 * activity thread changes the state while the device runs; a saver thread streams state into
 * the saving pipe and a loader thread drains the resuming pipe.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <dmalog/emudev.h>
#include <dmalog/migfsm.h>
#include <dmalog/swtrack.h>

#include "core/crc32c.h"
#include "core/migstate_names.h"
#include "core/reserved.h"
#include "devstate.h"

struct saving {
	bool open;
	int fd;	     /* our write end */
	int peek_fd; /* a copy of the user's read end: unread bytes, and no SIGPIPE */
	pthread_t thread;
	bool stop;
	bool final;	  /* stream the rest and end (STOP_COPY) */
	uint64_t written; /* atomic */
	uint64_t initial_total;
};

struct resuming {
	bool open;
	int fd; /* our read end */
	pthread_t thread;
	int stop; /* atomic */
	/* The stream is checked and staged as it arrives: memory bounded by the device's size. */
	struct devstate_reader *reader;
	uint8_t *scratch;
	int error; /* a read error */
};

struct dmalog_emudev {
	struct dmalog_emudev_config cfg;
	struct dmalog_device *dev;
	struct dmalog_swtrack *sw;
	struct dmalog_devtrack *dt;
	const struct dmalog_log_ops *tracker_ops;
	void *tracker;
	struct dmalog_dma_engine *dma;

	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct devstate st;
	uint64_t nchunks;
	uint64_t *dirty; /* chunks changed since they were last streamed */
	bool running;	 /* the device's own activity may change its state */
	bool stop_activity;
	pthread_t activity;
	uint64_t rng;
	struct saving save;
	struct resuming resume;
	char resume_error[96];
};

static uint64_t next_rand(struct dmalog_emudev *d)
{
	d->rng ^= d->rng >> 12;
	d->rng ^= d->rng << 25;
	d->rng ^= d->rng >> 27;
	return d->rng * 0x2545F4914F6CDD1DULL;
}

static void mark_chunk(struct dmalog_emudev *d, uint64_t chunk)
{
	d->dirty[chunk / 64] |= 1ULL << (chunk % 64);
}

/* One step of the device's own work: a register, the queue, 64 bytes of its memory. */
static void device_step(struct dmalog_emudev *d)
{
	uint64_t r = next_rand(d), off = (r % (d->st.mem_bytes / 64)) * 64;
	uint64_t *w = (uint64_t *)(d->st.mem + off);

	d->st.regs[r % DEVSTATE_NREGS] = next_rand(d);
	d->st.queue_head++;
	if (r & 1)
		d->st.queue_tail++;
	for (int i = 0; i < 8; i++)
		__atomic_store_n(&w[i], next_rand(d), __ATOMIC_RELAXED);
	mark_chunk(d, off / DEVSTATE_CHUNK);
}

static void *activity_thread(void *arg)
{
	struct dmalog_emudev *d = arg;
	struct timespec gap = {0, 1000000000L / d->cfg.state_rate};

	pthread_mutex_lock(&d->lock);
	while (!d->stop_activity) {
		if (!d->running) {
			pthread_cond_wait(&d->cond, &d->lock);
			continue;
		}
		device_step(d);
		pthread_mutex_unlock(&d->lock);
		nanosleep(&gap, NULL);
		pthread_mutex_lock(&d->lock);
	}
	pthread_mutex_unlock(&d->lock);
	return NULL;
}

/* Run level of a state: the device's activity and DMA, and peer-to-peer DMA. */
static void set_run_level(struct dmalog_emudev *d, uint32_t state)
{
	bool run = state == R || state == RP || state == PC || state == PCP;
	bool p2p = state == R || state == PC;

	if (!run && d->dma)
		dmalog_dma_engine_pause(d->dma);
	pthread_mutex_lock(&d->lock);
	d->running = run;
	pthread_cond_broadcast(&d->cond);
	pthread_mutex_unlock(&d->lock);
	if (run && d->dma) {
		if (p2p)
			dmalog_dma_engine_resume_p2p(d->dma);
		else
			dmalog_dma_engine_pause_p2p(d->dma);
		dmalog_dma_engine_resume(d->dma);
	}
}

/* Write all of @buf unless the session is being torn down. */
static int write_all(struct dmalog_emudev *d, const uint8_t *buf, size_t len)
{
	while (len) {
		ssize_t n = write(d->save.fd, buf, len);

		if (n > 0) {
			buf += n;
			len -= n;
			__atomic_fetch_add(&d->save.written, n, __ATOMIC_RELAXED);
			continue;
		}
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			return -errno;
		if (__atomic_load_n(&d->save.stop, __ATOMIC_ACQUIRE))
			return -ECANCELED;
		poll(&(struct pollfd){.fd = d->save.fd, .events = POLLOUT}, 1, 20);
	}
	return 0;
}

/* Next chunk still to stream, or -1. Caller holds lock. */
static int64_t take_dirty(struct dmalog_emudev *d)
{
	for (uint64_t w = 0; w < (d->nchunks + 63) / 64; w++) {
		if (d->dirty[w]) {
			unsigned int b = __builtin_ctzll(d->dirty[w]);

			d->dirty[w] &= d->dirty[w] - 1;
			return (int64_t)(w * 64 + b);
		}
	}
	return -1;
}

static void *saver_thread(void *arg)
{
	struct dmalog_emudev *d = arg;
	uint8_t *rec = malloc(DEVSTATE_CHUNK_BYTES);
	uint64_t records = 0;
	int ret;

	if (!rec)
		goto out;
	/* The initial data: the header and every chunk, each marked clean as it goes. */
	ret = write_all(d, rec, devstate_put_header(rec, &d->st));
	records++;
	for (uint64_t c = 0; !ret && c < d->nchunks; c++, records++) {
		pthread_mutex_lock(&d->lock);
		d->dirty[c / 64] &= ~(1ULL << (c % 64));
		pthread_mutex_unlock(&d->lock);
		ret = write_all(d, rec, devstate_put_chunk(rec, &d->st, c));
	}
	/* Then what changes, until told to finish: the rest, the registers, the end. */
	while (!ret) {
		int64_t c;

		pthread_mutex_lock(&d->lock);
		c = take_dirty(d);
		if (c < 0 && d->save.final) {
			size_t n = devstate_put_regs(rec, &d->st);

			pthread_mutex_unlock(&d->lock);
			ret = write_all(d, rec, n);
			if (!ret)
				ret = write_all(d, rec, devstate_put_end(rec, records + 1));
			break;
		}
		if (c < 0) {
			struct timespec until;

			if (__atomic_load_n(&d->save.stop, __ATOMIC_ACQUIRE)) {
				pthread_mutex_unlock(&d->lock);
				break;
			}
			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_nsec += 20 * 1000 * 1000;
			if (until.tv_nsec >= 1000000000L) {
				until.tv_sec++;
				until.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&d->cond, &d->lock, &until);
			pthread_mutex_unlock(&d->lock);
			continue;
		}
		pthread_mutex_unlock(&d->lock);
		ret = write_all(d, rec, devstate_put_chunk(rec, &d->st, (uint64_t)c));
		records++;
	}
out:
	free(rec);
	/* End of stream: the user reads EOF once the pipe is drained. */
	close(d->save.fd);
	d->save.fd = -1;
	return NULL;
}

static int open_saving(struct dmalog_emudev *d, bool final, int *data_fd)
{
	int p[2], ret;

	if (pipe2(p, O_CLOEXEC))
		return -errno;
	fcntl(p[1], F_SETFL, O_NONBLOCK);
	d->save = (struct saving){.open = true, .fd = p[1], .final = final};
	d->save.peek_fd = dup(p[0]);
	d->save.initial_total = DEVSTATE_HEADER_BYTES + d->nchunks * DEVSTATE_CHUNK_BYTES;
	ret = d->save.peek_fd < 0 ? -errno
				  : -pthread_create(&d->save.thread, NULL, saver_thread, d);
	if (ret) {
		close(p[0]);
		close(p[1]);
		if (d->save.peek_fd >= 0)
			close(d->save.peek_fd);
		d->save.open = false;
		return ret;
	}
	*data_fd = p[0];
	return 0;
}

static void close_saving(struct dmalog_emudev *d)
{
	if (!d->save.open)
		return;
	pthread_mutex_lock(&d->lock);
	__atomic_store_n(&d->save.stop, true, __ATOMIC_RELEASE);
	pthread_cond_broadcast(&d->cond);
	pthread_mutex_unlock(&d->lock);
	pthread_join(d->save.thread, NULL);
	close(d->save.peek_fd);
	d->save.open = false;
}

static void finish_saving(struct dmalog_emudev *d)
{
	pthread_mutex_lock(&d->lock);
	d->save.final = true;
	pthread_cond_broadcast(&d->cond);
	pthread_mutex_unlock(&d->lock);
}

#define LOADER_BYTES (64u << 10)

/*
 * Take the stream as it comes. After a bad record the rest is read and dropped: the writer
 * never blocks on a device that gave up, and RESUMING -> STOP reports why.
 */
static void *loader_thread(void *arg)
{
	struct dmalog_emudev *d = arg;
	struct resuming *r = &d->resume;
	uint8_t *buf = malloc(LOADER_BYTES), drain[256];

	if (!buf)
		r->error = -ENOMEM;
	for (;;) {
		/*
		 * Seen before the read: once told to stop, one more read that finds the pipe
		 * empty means everything written before RESUMING -> STOP has been taken. (Looked
		 * at after an empty read, the stop could follow the last writes that the read
		 * just missed, and they would be lost: a truncated stream.)
		 */
		bool stopping = __atomic_load_n(&r->stop, __ATOMIC_ACQUIRE);
		ssize_t n =
			buf ? read(r->fd, buf, LOADER_BYTES) : read(r->fd, drain, sizeof(drain));

		if (n > 0) {
			if (buf && !r->error)
				devstate_reader_feed(r->reader, buf, (size_t)n);
			continue;
		}
		if (n == 0)
			break; /* the user closed its end */
		if (errno != EAGAIN && errno != EINTR) {
			r->error = -errno;
			break;
		}
		if (stopping)
			break;
		poll(&(struct pollfd){.fd = r->fd, .events = POLLIN}, 1, 20);
	}
	free(buf);
	return NULL;
}

static int open_resuming(struct dmalog_emudev *d, int *data_fd)
{
	struct resuming *r = &d->resume;
	int p[2], ret;

	*r = (struct resuming){0};
	r->reader = malloc(sizeof(*r->reader));
	r->scratch = malloc(d->st.mem_bytes);
	if (!r->reader || !r->scratch) {
		ret = -ENOMEM;
		goto fail;
	}
	pthread_mutex_lock(&d->lock);
	devstate_reader_init(r->reader, &d->st, r->scratch);
	pthread_mutex_unlock(&d->lock);
	if (pipe2(p, O_CLOEXEC)) {
		ret = -errno;
		goto fail;
	}
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	r->open = true;
	r->fd = p[0];
	ret = -pthread_create(&r->thread, NULL, loader_thread, d);
	if (ret) {
		close(p[0]);
		close(p[1]);
		r->open = false;
		goto fail;
	}
	*data_fd = p[1];
	d->resume_error[0] = 0;
	return 0;
fail:
	free(r->reader);
	free(r->scratch);
	*r = (struct resuming){0};
	return ret;
}

/* Stop the loader; with @load, take the stream if it was whole and sound. */
static int close_resuming(struct dmalog_emudev *d, bool load)
{
	struct resuming *r = &d->resume;
	int ret = 0;

	if (!r->open)
		return 0;
	__atomic_store_n(&r->stop, 1, __ATOMIC_RELEASE);
	pthread_join(r->thread, NULL);
	close(r->fd);
	r->open = false;
	if (load) {
		ret = r->error;
		if (!ret) {
			pthread_mutex_lock(&d->lock);
			ret = devstate_reader_finish(r->reader, &d->st);
			pthread_mutex_unlock(&d->lock);
		}
		snprintf(d->resume_error, sizeof(d->resume_error), "%s",
			 ret ? (r->error ? "read error" : r->reader->why) : "");
	}
	free(r->reader);
	free(r->scratch);
	r->reader = NULL;
	r->scratch = NULL;
	return ret;
}

static int emudev_step(void *priv, uint32_t from, uint32_t to, int *data_fd, bool *to_error)
{
	struct dmalog_emudev *d = priv;
	int ret = 0;

	/* Stop first: nothing may change once a stopped state is reached. */
	set_run_level(d, to);
	if (to == SC && from == S) {
		ret = open_saving(d, true, data_fd);
	} else if (to == SC) {
		finish_saving(d); /* PRE_COPY(_P2P) -> STOP_COPY: the same fd goes on */
	} else if ((to == PC && from == R) || (to == PCP && from == RP)) {
		ret = open_saving(d, false, data_fd);
	} else if ((from == SC && to == S) || (from == PC && to == R) ||
		   (from == PCP && to == RP)) {
		close_saving(d);
	} else if (from == S && to == RS) {
		ret = open_resuming(d, data_fd);
	} else if (from == RS && to == S) {
		ret = close_resuming(d, true);
		*to_error = ret != 0;
	}
	if (ret && !*to_error)
		set_run_level(d, from);
	return ret;
}

static uint64_t unread_bytes(struct dmalog_emudev *d)
{
	int unread = 0;

	if (ioctl(d->save.peek_fd, FIONREAD, &unread) || unread < 0)
		unread = 0;
	return (uint64_t)unread;
}

static uint64_t dirty_chunks_locked(struct dmalog_emudev *d)
{
	uint64_t n = 0;

	for (uint64_t w = 0; w < (d->nchunks + 63) / 64; w++)
		n += __builtin_popcountll(d->dirty[w]);
	return n;
}

static int emudev_precopy_info(void *priv, uint64_t *initial_bytes, uint64_t *dirty_bytes)
{
	struct dmalog_emudev *d = priv;
	/* Unread first: bytes written after it only make consumed look a little larger. */
	uint64_t unread = unread_bytes(d);
	uint64_t written = __atomic_load_n(&d->save.written, __ATOMIC_RELAXED);
	uint64_t consumed = written > unread ? written - unread : 0;

	*initial_bytes = d->save.initial_total > consumed ? d->save.initial_total - consumed : 0;
	pthread_mutex_lock(&d->lock);
	*dirty_bytes = dirty_chunks_locked(d) * DEVSTATE_CHUNK_BYTES +
		       (consumed >= d->save.initial_total ? unread : 0);
	pthread_mutex_unlock(&d->lock);
	return 0;
}

static int emudev_data_size(void *priv, uint64_t *length)
{
	struct dmalog_emudev *d = priv;
	const uint64_t tail = DEVSTATE_REGS_BYTES + DEVSTATE_END_BYTES;

	pthread_mutex_lock(&d->lock);
	if (d->save.open && !d->save.final)
		*length = dirty_chunks_locked(d) * DEVSTATE_CHUNK_BYTES + tail;
	else
		*length = DEVSTATE_HEADER_BYTES + d->nchunks * DEVSTATE_CHUNK_BYTES + tail;
	pthread_mutex_unlock(&d->lock);
	return 0;
}

static void emudev_reset(void *priv)
{
	struct dmalog_emudev *d = priv;

	close_saving(d);
	close_resuming(d, false);
	pthread_mutex_lock(&d->lock);
	memset(d->st.regs, 0, sizeof(d->st.regs));
	d->st.queue_head = d->st.queue_tail = 0;
	pthread_mutex_unlock(&d->lock);
	set_run_level(d, R);
}

static const struct dmalog_mig_ops emudev_mig_ops = {
	.step = emudev_step,
	.get_data_size = emudev_data_size,
	.precopy_info = emudev_precopy_info,
	.reset = emudev_reset,
};

/* DMA logging goes to the device's tracker. */
static int fwd_start(void *p, const struct dmalog_range *r, uint32_t n, uint64_t *ps)
{
	struct dmalog_emudev *d = p;

	return d->tracker_ops->log_start(d->tracker, r, n, ps);
}

static int fwd_stop(void *p)
{
	struct dmalog_emudev *d = p;

	return d->tracker_ops->log_stop(d->tracker);
}

static int fwd_report(void *p, uint64_t iova, uint64_t len, struct dmalog_iova_bitmap *bm)
{
	struct dmalog_emudev *d = p;

	return d->tracker_ops->log_read_and_clear(d->tracker, iova, len, bm);
}

static void fwd_abort(void *p)
{
	struct dmalog_emudev *d = p;

	if (d->tracker_ops->log_abort)
		d->tracker_ops->log_abort(d->tracker);
}

static const struct dmalog_log_ops emudev_log_ops = {
	.log_start = fwd_start,
	.log_stop = fwd_stop,
	.log_read_and_clear = fwd_report,
	.log_abort = fwd_abort,
};

static void sw_log_write(void *t, uint64_t iova, uint64_t len)
{
	dmalog_swtrack_log_write(t, iova, len);
}

static void dev_log_write(void *t, uint64_t iova, uint64_t len)
{
	dmalog_devtrack_log_write(t, iova, len);
}

static int make_tracker(struct dmalog_emudev *d)
{
	struct dmalog_devtrack_caps caps = d->cfg.devtrack_caps;
	int ret = 0;

	switch (d->cfg.tracker) {
	case DMALOG_EMUDEV_TRACK_SOFTWARE:
		ret = dmalog_swtrack_create(&d->sw);
		d->tracker = d->sw;
		d->tracker_ops = dmalog_swtrack_log_ops();
		d->cfg.dma.log_write = sw_log_write;
		break;
	case DMALOG_EMUDEV_TRACK_DEVICE:
		if (!caps.max_msg_size)
			caps = DMALOG_DEVTRACK_CAPS_DEFAULT;
		ret = dmalog_devtrack_create(&caps, &d->dt);
		d->tracker = d->dt;
		d->tracker_ops = dmalog_devtrack_log_ops();
		d->cfg.dma.log_write = dev_log_write;
		break;
	case DMALOG_EMUDEV_TRACK_NONE:
		break;
	default:
		return -EINVAL;
	}
	d->cfg.dma.tracker = d->tracker;
	return ret;
}

int dmalog_emudev_create(const struct dmalog_emudev_config *cfg, struct dmalog_emudev **out)
{
	struct dmalog_device_desc desc = {0};
	struct dmalog_emudev *d;
	int ret;

	if (!cfg || !(cfg->migration_flags & VFIO_MIGRATION_STOP_COPY) ||
	    (cfg->migration_flags & ~DMALOG_MIGRATION_FLAGS_ALL) ||
	    (cfg->dev_mem_bytes % DEVSTATE_CHUNK) || !RESERVED_ZERO(cfg) ||
	    !RESERVED_ZERO(&cfg->dma))
		return -EINVAL;
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->cfg = *cfg;
	if (!d->cfg.dev_mem_bytes)
		d->cfg.dev_mem_bytes = 1 << 20;
	if (!d->cfg.state_rate)
		d->cfg.state_rate = 5000;
	d->rng = d->cfg.seed * 0x9e3779b97f4a7c15ULL + 7;
	pthread_mutex_init(&d->lock, NULL);
	pthread_cond_init(&d->cond, NULL);
	d->st.mem_bytes = d->cfg.dev_mem_bytes;
	d->st.mem = calloc(1, d->st.mem_bytes);
	d->nchunks = d->st.mem_bytes / DEVSTATE_CHUNK;
	d->dirty = calloc((d->nchunks + 63) / 64, sizeof(uint64_t));
	ret = !d->st.mem || !d->dirty ? -ENOMEM : make_tracker(d);
	if (!ret && d->cfg.dma.mem) {
		ret = dmalog_dma_engine_create(&d->cfg.dma, &d->dma);
		if (!ret)
			ret = dmalog_dma_engine_start(d->dma);
	}
	if (!ret) {
		desc.name = cfg->name;
		desc.log_ops = d->tracker ? &emudev_log_ops : NULL;
		desc.mig_ops = &emudev_mig_ops;
		desc.migration_flags = cfg->migration_flags;
		desc.priv = d;
		ret = dmalog_device_create(&desc, &d->dev);
	}
	if (!ret) {
		d->running = true;
		ret = -pthread_create(&d->activity, NULL, activity_thread, d);
		if (ret) {
			dmalog_device_destroy(d->dev);
			d->dev = NULL;
		}
	}
	if (ret) {
		dmalog_dma_engine_destroy(d->dma);
		dmalog_swtrack_destroy(d->sw);
		dmalog_devtrack_destroy(d->dt);
		free(d->st.mem);
		free(d->dirty);
		free(d);
		return ret;
	}
	*out = d;
	return 0;
}

void dmalog_emudev_destroy(struct dmalog_emudev *d)
{
	if (!d)
		return;
	dmalog_device_destroy(d->dev);
	close_saving(d);
	close_resuming(d, false);
	pthread_mutex_lock(&d->lock);
	d->stop_activity = true;
	pthread_cond_broadcast(&d->cond);
	pthread_mutex_unlock(&d->lock);
	pthread_join(d->activity, NULL);
	dmalog_dma_engine_destroy(d->dma);
	dmalog_swtrack_destroy(d->sw);
	dmalog_devtrack_destroy(d->dt);
	pthread_cond_destroy(&d->cond);
	pthread_mutex_destroy(&d->lock);
	free(d->st.mem);
	free(d->dirty);
	free(d);
}

struct dmalog_device *dmalog_emudev_device(struct dmalog_emudev *d)
{
	return d->dev;
}

struct dmalog_dma_engine *dmalog_emudev_dma(struct dmalog_emudev *d)
{
	return d->dma;
}

void dmalog_emudev_log_write(struct dmalog_emudev *d, uint64_t iova, uint64_t len)
{
	if (d->sw)
		dmalog_swtrack_log_write(d->sw, iova, len);
	else if (d->dt)
		dmalog_devtrack_log_write(d->dt, iova, len);
}

struct dmalog_devtrack *dmalog_emudev_devtrack(struct dmalog_emudev *d)
{
	return d->dt;
}

uint64_t dmalog_emudev_state_hash(struct dmalog_emudev *d)
{
	uint32_t a, b;

	pthread_mutex_lock(&d->lock);
	a = dmalog_crc32c(0, d->st.regs, sizeof(d->st.regs));
	a = dmalog_crc32c(a, &d->st.queue_head, sizeof(d->st.queue_head));
	a = dmalog_crc32c(a, &d->st.queue_tail, sizeof(d->st.queue_tail));
	b = dmalog_crc32c(0, d->st.mem, d->st.mem_bytes);
	pthread_mutex_unlock(&d->lock);
	return (uint64_t)a << 32 | b;
}

const char *dmalog_emudev_resume_error(struct dmalog_emudev *d)
{
	return d->resume_error;
}
