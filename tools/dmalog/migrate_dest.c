// SPDX-License-Identifier: MIT
/*
 * The destination side of `dmalog migrate`: an empty guest of the same shape whose devices
 * wait in RESUMING, a validating sink that applies the stream, RESUMING -> STOP for each
 * device as its state ends (the device checks it), STOP -> RUNNING once the final state is
 * complete, and the comparison of every page and device with the source's hashes.
 *
 * The destination guest runs no workload of its own: its devices resume their internal
 * activity but do no DMA, so verification compares the state it resumed from.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <poll.h>
#include <unistd.h>

#include "migrate.h"

#define READ_BYTES (1u << 20)

struct dest {
	const struct mig_options *o;
	struct guest *g;
	struct link l;
	int data_fd[MIG_MAX_DEVICES];
	uint64_t dev_hash[MIG_MAX_DEVICES];
	char why[200]; /* a device's own reason for refusing its state */
};

static int dev_data(void *opaque, uint32_t dev, const void *data, uint32_t len)
{
	struct dest *d = opaque;
	const uint8_t *p = data;

	while (len) {
		ssize_t n = write(d->data_fd[dev], p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (uint32_t)n;
	}
	return 0;
}

static int dev_done(void *opaque, uint32_t dev)
{
	struct dest *d = opaque;
	int ret;

	close(d->data_fd[dev]);
	d->data_fd[dev] = -1;
	ret = guest_set_state(d->g->dev[dev], VFIO_DEVICE_STATE_STOP, NULL);
	if (ret) {
		snprintf(d->why, sizeof(d->why), "device %u (%s): %s", dev,
			 dmalog_device_name(d->g->dev[dev]),
			 dmalog_emudev_resume_error(d->g->emu[dev]));
		return ret;
	}
	/* What it resumed from: the source's hash of its stopped device must match this. */
	d->dev_hash[dev] = dmalog_emudev_state_hash(d->g->emu[dev]);
	return 0;
}

static bool dev_verify(void *opaque, uint32_t dev, uint64_t hash)
{
	return ((struct dest *)opaque)->dev_hash[dev] == hash;
}

/* The final state is in: the guest runs here now, and the source learns it at once. */
static int resume_guest(void *opaque)
{
	struct dest *d = opaque;
	int ret;

	for (uint32_t i = 0; i < d->g->ndevices; i++) {
		ret = guest_set_state(d->g->dev[i], VFIO_DEVICE_STATE_RUNNING, NULL);
		if (ret)
			return ret;
	}
	ret = link_frame(&d->l, DMALOG_FRAME_RUNNING, NULL, 0);
	return ret ? ret : link_flush(&d->l);
}

static const struct dmalog_sink_ops dest_ops = {
	.device_data = dev_data,
	.device_done = dev_done,
	.device_verify = dev_verify,
	.complete = resume_guest,
};

/* Tell the source why, then wait for it to hang up so the reason is not lost in a reset. */
static void abort_migration(struct dest *d, const char *reason)
{
	uint8_t sink_buf[4096];
	struct pollfd pfd = {.fd = d->l.fd, .events = POLLIN};

	link_frame(&d->l, DMALOG_FRAME_ABORT, reason, (uint32_t)strlen(reason));
	link_flush(&d->l);
	shutdown(d->l.fd, SHUT_WR);
	while (poll(&pfd, 1, 5000) > 0 && read(d->l.fd, sink_buf, sizeof(sink_buf)) > 0)
		;
	fprintf(stderr, "dmalog migrate: destination: migration failed: %s\n", reason);
}

static int receive(struct dest *d, struct dmalog_sink *sink, uint8_t *buf)
{
	for (;;) {
		ssize_t n = read(d->l.fd, buf, READ_BYTES);
		int ret;

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			abort_migration(d, n ? "connection error"
					     : "the source closed the connection mid-stream");
			return -ECONNRESET;
		}
		ret = dmalog_sink_feed(sink, buf, (size_t)n);
		if (ret == 1)
			return 0;
		if (ret < 0) {
			char reason[400];

			snprintf(reason, sizeof(reason), "%s%s%s", dmalog_sink_error(sink),
				 d->why[0] ? ": " : "", d->why);
			abort_migration(d, reason);
			return ret;
		}
	}
}

int migrate_dest(const struct mig_options *o, int fd)
{
	struct dest d = {.o = o};
	struct dmalog_sink *sink = NULL;
	struct dmalog_sink_stats st;
	uint8_t *buf = malloc(READ_BYTES);
	int ret;

	link_init(&d.l, fd);
	for (uint32_t i = 0; i < MIG_MAX_DEVICES; i++)
		d.data_fd[i] = -1;
	ret = buf ? guest_create(o, false, &d.g) : -ENOMEM;
	for (uint32_t i = 0; !ret && i < d.g->ndevices; i++)
		ret = guest_set_state(d.g->dev[i], VFIO_DEVICE_STATE_RESUMING, &d.data_fd[i]);
	if (!ret)
		ret = dmalog_sink_create(d.g->ram, d.g->ram_bytes, MIG_PAGE_SHIFT, d.g->ndevices,
					 &dest_ops, &d, &sink);
	if (ret) {
		char reason[120];

		snprintf(reason, sizeof(reason), "cannot set up the destination guest (%s)",
			 strerror(-ret));
		abort_migration(&d, reason);
	} else {
		ret = receive(&d, sink, buf);
	}
	if (!ret) {
		uint8_t result[24];

		dmalog_sink_get_stats(sink, &st);
		memcpy(result, &st.pages_compared, 8);
		memcpy(result + 8, &st.pages_mismatched, 8);
		memcpy(result + 16, &st.devices_compared, 4);
		memcpy(result + 20, &st.devices_mismatched, 4);
		ret = link_frame(&d.l, DMALOG_FRAME_RESULT, result, sizeof(result));
		if (!ret)
			ret = link_flush(&d.l);
		if (!ret && (st.pages_mismatched || st.devices_mismatched))
			ret = -EIO;
		if (o->listen)
			printf("destination: %llu pages and %u devices compared, %llu pages and %u "
			       "devices mismatched\n",
			       (unsigned long long)st.pages_compared, st.devices_compared,
			       (unsigned long long)st.pages_mismatched, st.devices_mismatched);
	}
	for (uint32_t i = 0; i < MIG_MAX_DEVICES; i++)
		if (d.data_fd[i] >= 0)
			close(d.data_fd[i]);
	dmalog_sink_destroy(sink);
	guest_destroy(d.g);
	link_fini(&d.l);
	free(buf);
	return ret;
}
