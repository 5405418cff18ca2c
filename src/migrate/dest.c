// SPDX-License-Identifier: MIT
/*
 * The destination end: its devices wait in RESUMING, a validating sink applies the stream,
 * each device goes RESUMING -> STOP as its state ends (the device checks it), and once the
 * final state is complete the guest resumes here (devices RUNNING, then the vCPUs) and the
 * source is told RUNNING at once. Then every page and device is compared with the source's
 * hashes and the counts go back as RESULT.
 *
 * Page channels (more connections carrying guest pages) are each received on a thread of
 * their own by a sink of their own, into their own shards of guest memory; COMPLETE on the
 * main connection resumes the guest only once every channel has completed.
 *
 * Before it resumes, any failure is answered with ABORT and the reason: the source then
 * resumes its guest. After it resumes the guest is ours whatever happens to the proof: no
 * ABORT is ever sent after RUNNING.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/le.h"
#include "engine.h"
#include "link.h"

struct dest;

/* A page channel's receiving end. */
struct chan_rx {
	struct dest *d;
	uint32_t index;
	int fd;
	struct dmalog_sink *sink;
	pthread_t thread;
	bool started;
	int state; /* under d->lock: 0 receiving, 1 its COMPLETE taken, -errno failed */
	char why[240];
};

struct dest {
	struct dmalog_mig *m;
	const struct dmalog_mig_config *c;
	struct link l;
	struct chan_rx rx[DMALOG_MIG_MAX_CHANNELS]; /* [0] unused: the main connection */
	uint32_t nch;
	pthread_mutex_t lock;
	pthread_cond_t changed; /* a channel's state changed */
	int chan_failed;	/* atomic: the index of the first channel that failed, or 0 */
	int stop;		/* atomic: the channels must give up */
	uint64_t progress_ms;	/* atomic: when a whole frame last arrived on any connection */
	int data_fd[DMALOG_MIG_MAX_DEVICES];
	uint64_t dev_hash[DMALOG_MIG_MAX_DEVICES];
	uint64_t dev_bytes[DMALOG_MIG_MAX_DEVICES]; /* state received per device */
	bool resumed;
	char why[400]; /* a device's own reason for refusing its state */
};

/*
 * Hand a device its bytes, within the device's bound and the link's timeout: a device that
 * stops taking its stream must not hang the destination.
 */
static int dev_data(void *opaque, uint32_t dev, const void *data, uint32_t len)
{
	struct dest *d = opaque;
	const uint8_t *p = data;
	double deadline = link_now_ms() + d->c->timeout_ms;

	d->dev_bytes[dev] += len;
	if (d->dev_bytes[dev] > d->c->device_data_limit) {
		snprintf(d->why, sizeof(d->why), "device %u: more than %llu bytes of state", dev,
			 (unsigned long long)d->c->device_data_limit);
		return -EFBIG;
	}
	while (len) {
		ssize_t n = dmalog_handle_data_write(d->c->devices[dev], d->data_fd[dev], p, len);
		struct pollfd pfd = {.fd = d->data_fd[dev], .events = POLLOUT};

		if (n > 0) {
			p += n;
			len -= (uint32_t)n;
			continue;
		}
		if (n != -EAGAIN || link_now_ms() >= deadline) {
			snprintf(d->why, sizeof(d->why), "device %u stopped taking its state (%s)",
				 dev, n == -EAGAIN ? "timed out" : strerror((int)-n));
			return n == -EAGAIN ? -ETIMEDOUT : (int)n;
		}
		poll(&pfd, 1, 100);
	}
	return 0;
}

static int dev_done(void *opaque, uint32_t dev)
{
	struct dest *d = opaque;
	void (*describe)(void *, uint32_t, char *, size_t) = HOOK(d->m, device_error);
	int (*hash)(void *, uint32_t, uint64_t *) = HOOK(d->m, device_hash);
	int ret;

	close(d->data_fd[dev]);
	d->data_fd[dev] = -1;
	ret = dmalog_handle_set_state(d->c->devices[dev], VFIO_DEVICE_STATE_STOP, NULL);
	if (ret) {
		char reason[160] = "";

		if (describe)
			describe(d->c->opaque, dev, reason, sizeof(reason));
		snprintf(d->why, sizeof(d->why), "device %u (%s): %s", dev,
			 dmalog_handle_name(d->c->devices[dev]),
			 reason[0] ? reason : strerror(-ret));
		return ret;
	}
	/* What it resumed from: the source's hash of its stopped device must match this. */
	if (hash && hash(d->c->opaque, dev, &d->dev_hash[dev]))
		d->dev_hash[dev] = 0;
	return 0;
}

/* A whole frame arrived on some connection: every connection's silence deadline moves. */
static void progressed(struct dest *d)
{
	__atomic_store_n(&d->progress_ms, (uint64_t)link_now_ms(), __ATOMIC_RELAXED);
}

/* Milliseconds until the source will have been silent on every connection for the timeout. */
static double silence_left(struct dest *d)
{
	return (double)__atomic_load_n(&d->progress_ms, __ATOMIC_RELAXED) + d->c->timeout_ms -
	       link_now_ms();
}

/* COMPLETE on the main connection: the guest may resume once every page channel completed. */
static int wait_channels(struct dest *d)
{
	int ret = 0;

	pthread_mutex_lock(&d->lock);
	for (uint32_t i = 1; i < d->nch && !ret;) {
		struct chan_rx *ch = &d->rx[i];
		struct timespec ts;

		if (ch->state == 1) {
			i++;
			continue;
		}
		if (ch->state < 0) {
			snprintf(d->why, sizeof(d->why), "page channel %u: %s", i, ch->why);
			ret = ch->state;
		} else if (silence_left(d) <= 0) {
			snprintf(d->why, sizeof(d->why),
				 "page channel %u did not complete within %u ms", i,
				 d->c->timeout_ms);
			ret = -ETIMEDOUT;
		} else {
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 100 * 1000000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&d->changed, &d->lock, &ts);
		}
	}
	pthread_mutex_unlock(&d->lock);
	return ret;
}

/* The final state is in: the guest runs here now, and the source learns it at once. */
static int resume_guest(void *opaque)
{
	struct dest *d = opaque;
	void (*resume)(void *) = HOOK(d->m, resume_vcpus);
	int ret = wait_channels(d);

	if (ret)
		return ret;

	for (uint32_t i = 0; i < d->c->ndevices; i++) {
		ret = dmalog_handle_set_state(d->c->devices[i], VFIO_DEVICE_STATE_RUNNING, NULL);
		if (ret) {
			/* Not resumed after all: what already runs stops again. */
			while (i--)
				dmalog_handle_set_state(d->c->devices[i], VFIO_DEVICE_STATE_STOP,
							NULL);
			snprintf(d->why, sizeof(d->why), "device %u would not run (%s)", i,
				 strerror(-ret));
			return ret;
		}
	}
	if (resume)
		resume(d->c->opaque);
	d->resumed = true;
	d->m->r.outcome = DMALOG_MIG_MIGRATED;
	engine_event(d->m, DMALOG_MIG_EVENT_HANDED_OFF, 0);
	/* The guest runs here whether or not the answer gets through. */
	if (link_msg(&d->l, DMALOG_FRAME_RUNNING, NULL) || link_flush(&d->l))
		engine_fail(d->m, -EPIPE, "resumed, but could not tell the source: %s", d->l.error);
	return 0;
}

#define VERIFY_PAGES 4096 /* digests per VERIFY_PAGES answer */

/*
 * VERIFY: the digest of every page and device state held here, keyed by the source's nonce,
 * so that the proof can only come from what this end really has.
 */
static int answer_verify(void *opaque, uint64_t nonce)
{
	struct dest *d = opaque;
	const struct dmalog_ram_map *ram = &d->m->ram;

	for (uint32_t i = 0; i < ram->nregions; i++) {
		const struct dmalog_ram_region *r = &ram->regions[i];
		uint64_t pages = r->length >> DMALOG_RAM_PAGE_SHIFT;

		for (uint64_t p = 0; p < pages; p += VERIFY_PAGES) {
			struct dmalog_frame_run run = {
				.first_page = (r->ram_offset >> DMALOG_RAM_PAGE_SHIFT) + p,
				.count = pages - p < VERIFY_PAGES ? (uint32_t)(pages - p)
								  : VERIFY_PAGES,
			};
			uint8_t *f = link_frame_begin(&d->l, sizeof(run) + 8 * run.count);

			if (!f)
				return -ENOMEM;
			dmalog_frame_encode(DMALOG_FRAME_VERIFY_PAGES, &run, f);
			for (uint32_t k = 0; k < run.count; k++) {
				uint64_t h = dmalog_page_digest(
					nonce,
					(const uint8_t *)r->host +
						((p + k) << DMALOG_RAM_PAGE_SHIFT),
					DMALOG_RAM_PAGE_SIZE);

				memcpy(f + sizeof(run) + 8 * k, &h, 8);
			}
			link_frame_seal(&d->l, DMALOG_FRAME_VERIFY_PAGES);
			/* Each answer goes at once: the source digests its pages meanwhile. */
			if (link_flush(&d->l))
				return -EPIPE;
		}
	}
	for (uint32_t i = 0; i < d->c->ndevices; i++) {
		struct dmalog_frame_verify_device vd = {
			.device = i,
			.hash = dmalog_page_digest(nonce, &d->dev_hash[i], 8),
		};

		if (link_msg(&d->l, DMALOG_FRAME_VERIFY_DEVICE, &vd))
			return -ENOMEM;
	}
	return link_flush(&d->l) ? -EPIPE : 0;
}

/* Device names as a list, for messages: "nic,storage". */
static void list_names(char *out, size_t len, const uint8_t *names, uint32_t n)
{
	size_t used = 0;

	out[0] = 0;
	for (uint32_t i = 0; i < n && used + 2 < len; i++) {
		char name[DMALOG_HELLO_NAME_BYTES];

		memcpy(name, names + i * DMALOG_HELLO_NAME_BYTES, sizeof(name));
		name[sizeof(name) - 1] = 0;
		for (char *c = name; *c; c++)
			if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
				*c = '?';
		used += (size_t)snprintf(out + used, len - used, "%s%s", i ? "," : "", name);
	}
}

/*
 * HELLO: the source's guest must have this guest's shape, region for region and device for
 * device, or nothing will be loaded (a wrong order would load one device's state into
 * another).
 */
static int check_hello(void *opaque, const uint8_t *regions, uint32_t nregions,
		       const uint8_t *names)
{
	struct dest *d = opaque;
	const struct dmalog_ram_map *ram = &d->m->ram;
	char theirs[120], ours[120];
	uint8_t mine[DMALOG_HELLO_NAME_BYTES];

	for (uint32_t i = 0; i < nregions && nregions == ram->nregions; i++) {
		if (get64(regions + 16 * i) != ram->regions[i].gpa ||
		    get64(regions + 16 * i + 8) != ram->regions[i].length)
			nregions = 0;
	}
	if (nregions != ram->nregions) {
		snprintf(d->why, sizeof(d->why), "the guest's RAM regions differ from this one's");
		return -EPROTO;
	}
	for (uint32_t i = 0; i < d->c->ndevices; i++) {
		memset(mine, 0, sizeof(mine));
		strncpy((char *)mine, dmalog_handle_name(d->c->devices[i]), sizeof(mine) - 1);
		if (memcmp(mine, names + i * DMALOG_HELLO_NAME_BYTES, sizeof(mine))) {
			size_t used = 0;

			list_names(theirs, sizeof(theirs), names, d->c->ndevices);
			ours[0] = 0;
			for (uint32_t k = 0; k < d->c->ndevices && used + 2 < sizeof(ours); k++)
				used += (size_t)snprintf(ours + used, sizeof(ours) - used, "%s%s",
							 k ? "," : "",
							 dmalog_handle_name(d->c->devices[k]));
			snprintf(d->why, sizeof(d->why), "devices differ (source: %s; here: %s)",
				 theirs, ours);
			return -EPROTO;
		}
	}
	return 0;
}

static const struct dmalog_sink_ops dest_ops = {
	.hello = check_hello,
	.device_data = dev_data,
	.device_done = dev_done,
	.complete = resume_guest,
	.verify = answer_verify,
};

/*
 * The page channels' threads give up (within about 100 ms); with @hang_up their connections
 * are shut too, so that a source still sending on them fails at once instead of waiting.
 */
static void stop_channels(struct dest *d, bool hang_up)
{
	__atomic_store_n(&d->stop, 1, __ATOMIC_RELEASE);
	for (uint32_t i = 1; i < d->nch && hang_up; i++)
		shutdown(d->rx[i].fd, SHUT_RDWR);
}

/*
 * Not resumed: tell the source why, then wait (bounded) for it to hang up so the reason is
 * not lost in a reset.
 */
static void refuse(struct dest *d, int err, const char *reason)
{
	uint8_t drain[4096];
	struct pollfd pfd = {.fd = d->l.fd, .events = POLLIN};
	double deadline = link_now_ms() + d->c->timeout_ms;

	engine_fail(d->m, err, "%s", reason);
	d->m->r.outcome = DMALOG_MIG_ROLLED_BACK;
	/* Short enough for any source's answer buffer (dmalog's takes 512 bytes). */
	link_raw(&d->l, DMALOG_FRAME_ABORT, reason,
		 (uint32_t)(strlen(reason) < 400 ? strlen(reason) : 400));
	link_flush(&d->l);
	shutdown(d->l.fd, SHUT_WR);
	stop_channels(d, true);
	while (link_now_ms() < deadline && poll(&pfd, 1, 100) >= 0) {
		if (pfd.revents && read(d->l.fd, drain, sizeof(drain)) <= 0)
			break;
	}
}

/* What went wrong, before or after resuming: only before is the source told to resume. */
static int stream_failed(struct dest *d, int err, const char *reason)
{
	if (!d->resumed)
		refuse(d, err, reason);
	else
		engine_fail(d->m, err, "resumed, but the proof did not complete: %s", reason);
	return err;
}

/*
 * Each connection's stream is received into a buffer of this size and fed to its sink from
 * there, whatever frames it holds: the sink copies pages on into guest memory, checksumming
 * them in the same pass with stores that bypass the caches. Received straight into guest
 * memory instead, every line written was first read in from memory (a cold write), and the
 * kernel's copy there was the largest cost of a migration: a UNIX socket's idle migration ran
 * about 20 % faster this way on the Intel Xeon KVM machine (TCP loopback 10 %). The buffer stays
 * in the second-level cache between the receive and the copy. The source sends nothing after
 * a connection's last frame, so nothing is read that is not the sink's.
 */
#define RECV_BYTES (256u << 10)

/*
 * Take one connection's stream as it comes, fed to its sink, until the sink has taken its
 * last frame (1) or something failed (-errno, @why says what). The deadline moves only when a
 * whole frame has been taken on some connection: a source that trickles bytes (slowloris) or
 * stops mid-frame is given up on like a silent one. The main connection (@ch NULL) also gives
 * up on a cancel or a failed page channel; a page channel when told to stop.
 */
static int pump_through(struct dest *d, int fd, struct dmalog_sink *sink, struct chan_rx *ch,
			char *why, size_t len, uint8_t *buf)
{
	uint64_t frames = 0;

	for (;;) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		struct dmalog_sink_stats st;
		int failed, ret;
		double left;
		ssize_t n;

		if (ch && __atomic_load_n(&d->stop, __ATOMIC_ACQUIRE)) {
			snprintf(why, len, "stopped");
			return -ESHUTDOWN;
		}
		if (!ch && !d->resumed && __atomic_load_n(&d->m->cancel, __ATOMIC_ACQUIRE)) {
			d->m->r.cancelled = true;
			snprintf(why, len, "cancelled at the destination");
			return -EINTR;
		}
		failed = ch ? 0 : __atomic_load_n(&d->chan_failed, __ATOMIC_ACQUIRE);
		if (failed) {
			snprintf(why, len, "page channel %d: %s", failed, d->rx[failed].why);
			return d->rx[failed].state;
		}
		n = recv(fd, buf, RECV_BYTES, MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			/* Nothing to read: wait, in slices so that a cancel or a stop is noticed.
			 */
			left = silence_left(d);
			if (left <= 0) {
				snprintf(why, len, "no whole frame from the source for %u ms",
					 d->c->timeout_ms);
				return -ETIMEDOUT;
			}
			poll(&pfd, 1, left > 100 ? 100 : (int)left + 1);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -errno;
			snprintf(why, len, "the connection to the source broke");
			return ret;
		}
		if (!n) {
			snprintf(why, len, "the source closed the connection mid-stream");
			return -ECONNRESET;
		}
		ret = dmalog_sink_feed(sink, buf, (size_t)n);
		dmalog_sink_get_stats(sink, &st);
		if (st.frames != frames) {
			frames = st.frames;
			progressed(d);
		}
		if (ret == 1)
			return 1;
		if (ret < 0) {
			/* The sink's words, then the device's or the layout's own reason. */
			const char *more = ch ? "" : d->why;

			snprintf(why, len, "%.190s%s%s", dmalog_sink_error(sink),
				 more[0] ? ": " : "", more);
			return ret;
		}
	}
}

static int pump(struct dest *d, int fd, struct dmalog_sink *sink, struct chan_rx *ch, char *why,
		size_t len)
{
	uint8_t *buf = malloc(RECV_BYTES);
	int ret;

	if (!buf) {
		snprintf(why, len, "out of memory");
		return -ENOMEM;
	}
	ret = pump_through(d, fd, sink, ch, why, len, buf);
	free(buf);
	return ret;
}

/* The main connection's stream, to its END. */
static int receive(struct dest *d, struct dmalog_sink *sink)
{
	char reason[sizeof(d->why) + 200];
	int ret = pump(d, d->l.fd, sink, NULL, reason, sizeof(reason));

	return ret == 1 ? 0 : stream_failed(d, ret, reason);
}

/* A page channel's thread: its stream to its COMPLETE, then its state for the main one. */
static void *chan_rx_main(void *arg)
{
	struct chan_rx *ch = arg;
	struct dest *d = ch->d;
	char why[sizeof(ch->why)];
	int ret = pump(d, ch->fd, ch->sink, ch, why, sizeof(why)), none = 0;

	pthread_mutex_lock(&d->lock);
	if (ret != 1)
		memcpy(ch->why, why, sizeof(why));
	ch->state = ret;
	pthread_cond_broadcast(&d->changed);
	pthread_mutex_unlock(&d->lock);
	if (ret != 1 && ret != -ESHUTDOWN)
		__atomic_compare_exchange_n(&d->chan_failed, &none, (int)ch->index, false,
					    __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
	return NULL;
}

/* A sink and a thread for each page channel, over the same guest memory. */
static int start_channels(struct dest *d, const struct dmalog_sink_mem *mem, uint32_t nmem)
{
	for (uint32_t i = 1; i < d->nch; i++) {
		struct chan_rx *ch = &d->rx[i];
		int ret = dmalog_sink_create_regions(mem, nmem, DMALOG_RAM_PAGE_SHIFT, 0, NULL,
						     NULL, &ch->sink);

		if (!ret)
			ret = dmalog_sink_set_channel(ch->sink, i, d->nch);
		if (!ret)
			ret = -pthread_create(&ch->thread, NULL, chan_rx_main, ch);
		if (ret)
			return ret;
		ch->started = true;
	}
	return 0;
}

/* What the source found, as its RESULT said. */
static int take_result(struct dest *d, struct dmalog_sink *sink)
{
	struct dmalog_sink_stats st;
	struct dmalog_mig_result *r = &d->m->r;

	dmalog_sink_get_stats(sink, &st);
	r->pages_compared = st.pages_compared;
	r->pages_mismatched = st.pages_mismatched;
	r->devices_compared = st.devices_compared;
	r->devices_mismatched = st.devices_mismatched;
	r->verified = st.result && st.pages_compared == dmalog_ram_map_pages(&d->m->ram) &&
		      !st.pages_mismatched && !st.devices_mismatched &&
		      st.devices_compared == (HOOK(d->m, device_hash) ? d->c->ndevices : 0);
	if (!r->verified)
		return engine_fail(d->m, -EIO, "the proof differs in %llu pages and %u devices",
				   (unsigned long long)st.pages_mismatched, st.devices_mismatched);
	return r->error;
}

int dest_run(struct dmalog_mig *m)
{
	struct dest d = {.m = m, .c = &m->cfg};
	struct dmalog_sink_mem mem[DMALOG_RAM_MAX_REGIONS];
	struct dmalog_sink *sink = NULL;
	double t0 = link_now_ms();
	int ret = 0;

	link_init(&d.l, m->cfg.fd, (int)m->cfg.timeout_ms);
	pthread_mutex_init(&d.lock, NULL);
	pthread_cond_init(&d.changed, NULL);
	d.nch = 1 + m->cfg.npage_fds;
	for (uint32_t i = 1; i < d.nch; i++) {
		d.rx[i] = (struct chan_rx){.d = &d, .index = i, .fd = m->cfg.page_fds[i - 1]};
		dmalog_mig_socket_setup(d.rx[i].fd, m->cfg.timeout_ms);
	}
	progressed(&d);
	for (uint32_t i = 0; i < DMALOG_MIG_MAX_DEVICES; i++)
		d.data_fd[i] = -1;
	for (uint32_t i = 0; i < m->ram.nregions; i++)
		mem[i] = (struct dmalog_sink_mem){m->ram.regions[i].host, m->ram.regions[i].length};
	for (uint32_t i = 0; !ret && i < m->cfg.ndevices; i++)
		ret = dmalog_handle_set_state(m->cfg.devices[i], VFIO_DEVICE_STATE_RESUMING,
					      &d.data_fd[i]);
	/* Writes to a device wait within the deadline, never in a blocking write(). */
	for (uint32_t i = 0; !ret && i < m->cfg.ndevices; i++) {
		int flags = fcntl(d.data_fd[i], F_GETFL);

		if (flags >= 0)
			fcntl(d.data_fd[i], F_SETFL, flags | O_NONBLOCK);
	}
	if (!ret)
		ret = dmalog_sink_create_regions(mem, m->ram.nregions, DMALOG_RAM_PAGE_SHIFT,
						 m->cfg.ndevices, &dest_ops, &d, &sink);
	if (!ret)
		ret = dmalog_sink_set_channel(sink, 0, d.nch);
	if (!ret)
		ret = start_channels(&d, mem, m->ram.nregions);
	if (ret) {
		char reason[120];

		snprintf(reason, sizeof(reason), "cannot set up the destination (%s)",
			 strerror(-ret));
		refuse(&d, ret, reason);
	} else {
		ret = receive(&d, sink);
	}
	if (!ret)
		ret = take_result(&d, sink);
	m->r.total_ms = link_now_ms() - t0;
	m->r.bytes_sent = d.l.bytes;
	stop_channels(&d, false);
	for (uint32_t i = 1; i < d.nch; i++) {
		if (d.rx[i].started)
			pthread_join(d.rx[i].thread, NULL);
		dmalog_sink_destroy(d.rx[i].sink);
	}
	pthread_cond_destroy(&d.changed);
	pthread_mutex_destroy(&d.lock);
	for (uint32_t i = 0; i < DMALOG_MIG_MAX_DEVICES; i++)
		if (d.data_fd[i] >= 0)
			close(d.data_fd[i]);
	dmalog_sink_destroy(sink);
	link_fini(&d.l);
	return ret;
}
