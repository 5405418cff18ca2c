// SPDX-License-Identifier: MIT
/*
 * The destination end: its devices wait in RESUMING, a validating sink applies the stream,
 * each device goes RESUMING -> STOP as its state ends (the device checks it), and once the
 * final state is complete the guest resumes here (devices RUNNING, then the vCPUs) and the
 * source is told RUNNING at once. Then every page and device is compared with the source's
 * hashes and the counts go back as RESULT.
 *
 * Before it resumes, any failure is answered with ABORT and the reason: the source then
 * resumes its guest. After it resumes the guest is ours whatever happens to the proof: no
 * ABORT is ever sent after RUNNING.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/le.h"
#include "engine.h"
#include "link.h"

struct dest {
	struct dmalog_mig *m;
	const struct dmalog_mig_config *c;
	struct link l;
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

/* The final state is in: the guest runs here now, and the source learns it at once. */
static int resume_guest(void *opaque)
{
	struct dest *d = opaque;
	void (*resume)(void *) = HOOK(d->m, resume_vcpus);
	int ret;

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
 * Take the stream as it comes, received straight where the sink wants it (page data into
 * guest memory). The deadline moves only when a whole frame has been taken: a source that
 * trickles bytes (slowloris) or stops mid-frame is given up on like a silent one.
 */
static int receive(struct dest *d, struct dmalog_sink *sink)
{
	double deadline = link_now_ms() + d->c->timeout_ms;
	uint64_t frames = 0;

	for (;;) {
		struct pollfd pfd = {.fd = d->l.fd, .events = POLLIN};
		struct dmalog_sink_stats st;
		double left;
		void *at;
		size_t room;
		ssize_t n;
		int ret;

		if (!d->resumed && __atomic_load_n(&d->m->cancel, __ATOMIC_ACQUIRE)) {
			d->m->r.cancelled = true;
			return stream_failed(d, -EINTR, "cancelled at the destination");
		}
		dmalog_sink_recv_buffer(sink, &at, &room);
		n = recv(d->l.fd, at, room, MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			/* Nothing to read: wait, in slices so that a cancel is noticed. */
			left = deadline - link_now_ms();
			if (left <= 0) {
				char reason[96];

				snprintf(reason, sizeof(reason),
					 "no whole frame from the source for %u ms",
					 d->c->timeout_ms);
				return stream_failed(d, -ETIMEDOUT, reason);
			}
			poll(&pfd, 1, left > 200 ? 200 : (int)left + 1);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return stream_failed(d, -errno, "the connection to the source broke");
		if (!n)
			return stream_failed(d, -ECONNRESET,
					     "the source closed the connection mid-stream");
		ret = dmalog_sink_received(sink, (size_t)n);
		if (ret == 1)
			return 0;
		dmalog_sink_get_stats(sink, &st);
		if (st.frames != frames) {
			frames = st.frames;
			deadline = link_now_ms() + d->c->timeout_ms;
		}
		if (ret < 0) {
			/* The sink's words, then the device's or the layout's own reason. */
			char reason[sizeof(d->why) + 200];

			snprintf(reason, sizeof(reason), "%.190s%s%s", dmalog_sink_error(sink),
				 d->why[0] ? ": " : "", d->why);
			return stream_failed(d, ret, reason);
		}
	}
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
	for (uint32_t i = 0; i < DMALOG_MIG_MAX_DEVICES; i++)
		if (d.data_fd[i] >= 0)
			close(d.data_fd[i]);
	dmalog_sink_destroy(sink);
	link_fini(&d.l);
	return ret;
}
