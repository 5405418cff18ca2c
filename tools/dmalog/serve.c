// SPDX-License-Identifier: MIT
/*
 * dmalog serve: one emulated device on a vfio-user socket, for any vfio-user client, one
 * client after another until SIGINT or SIGTERM. The library's server does the protocol; this
 * parses options, makes the device, opens the socket and prints.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static struct dmalog_vfu_server *volatile serving;
static volatile sig_atomic_t stop_asked;

#define MAX_ENGINES 16

/* The device's DMA: an engine per writable map of the client's memory, into its tracker. */
struct dma {
	struct dmalog_emudev *dev;
	uint64_t rate;
	bool running; /* the device's state lets it DMA */
	struct {
		uint64_t iova, size;
		struct dmalog_dma_engine *e;
	} engines[MAX_ENGINES];
	unsigned int n;
};

static void log_write(void *dev, uint64_t iova, uint64_t len)
{
	dmalog_emudev_log_write(dev, iova, len);
}

static void on_dma_map(void *opaque, uint64_t iova, uint64_t size, void *host, uint32_t flags)
{
	struct dma *d = opaque;
	struct dmalog_dma_config c = {
		.mem = host,
		.mem_bytes = size,
		.iova_base = iova,
		.log_write = log_write,
		.tracker = d->dev,
		.workload = DMALOG_WORKLOAD_RANDOM,
		.rate = d->rate,
		.tag = 0xd1a0,
		.seed = iova ^ size,
	};

	if (!host || !(flags & DMALOG_VFU_DMA_WRITEABLE) || d->n == MAX_ENGINES || !d->rate ||
	    dmalog_dma_engine_create(&c, &d->engines[d->n].e))
		return;
	d->engines[d->n].iova = iova;
	d->engines[d->n].size = size;
	if (!d->running)
		dmalog_dma_engine_pause(d->engines[d->n].e);
	dmalog_dma_engine_start(d->engines[d->n].e);
	d->n++;
}

static void on_dma_unmap(void *opaque, uint64_t iova, uint64_t size)
{
	struct dma *d = opaque;

	for (unsigned int i = 0; i < d->n; i++) {
		if (d->engines[i].iova != iova || d->engines[i].size != size)
			continue;
		/* Stopped and gone before the reply: nothing touches the map after it. */
		dmalog_dma_engine_stop(d->engines[i].e);
		dmalog_dma_engine_destroy(d->engines[i].e);
		d->engines[i] = d->engines[--d->n];
		return;
	}
}

/*
 * DMA while RUNNING or PRE_COPY, as the device's own engine would: paused before an arc out of
 * them reaches the device (no write may land once it says STOP), resumed once it is back.
 */
static void on_state(void *opaque, uint32_t state, bool done)
{
	struct dma *d = opaque;
	bool run = state == VFIO_DEVICE_STATE_RUNNING || state == VFIO_DEVICE_STATE_PRE_COPY;

	if (!done && run)
		return;
	for (unsigned int i = 0; i < d->n && run != d->running; i++) {
		if (run)
			dmalog_dma_engine_resume(d->engines[i].e);
		else
			dmalog_dma_engine_pause(d->engines[i].e);
	}
	d->running = run;
}

static void on_signal(int sig)
{
	struct dmalog_vfu_server *s = serving;

	stop_asked = 1;
	if (s)
		dmalog_vfu_server_stop(s); /* an atomic store: safe here */
}

static void trace_line(void *opaque, const char *line)
{
	fprintf(stderr, "vfio-user: %s\n", line);
}

static const char usage_text[] =
	"usage: dmalog serve --socket PATH [--device nic|storage] [--dma-rate N] [--trace]\n"
	"                    [--timeout S]\n"
	"\n"
	"Serve one emulated device to vfio-user clients on a UNIX socket (created mode 0600),\n"
	"one client at a time, until SIGINT or SIGTERM. The device is migratable (STOP_COPY,\n"
	"P2P, PRE_COPY) and logs its DMA: a nic with its own mlx5-like tracker, a storage device\n"
	"with a software log. A client that goes away leaves it with its maps dropped and\n"
	"logging off, its state kept, for the next. While RUNNING or PRE_COPY the device writes\n"
	"the client's memory by DMA (each writable map that came with an fd), at random.\n"
	"  --socket PATH   where to listen\n"
	"  --device KIND   nic (default) or storage\n"
	"  --dma-rate N    DMA writes per second per map, 0: none (default 50000)\n"
	"  --trace         a line per message on stderr: command, size, result\n"
	"  --timeout S     a message that has begun must arrive whole, and a reply be taken,\n"
	"                  within S seconds (default 30)\n";

/* Wait for the next client (or a signal): its fd, -EINTR when asked to stop, or -errno. */
static int next_client(int lfd, char *err, size_t errlen)
{
	for (;;) {
		struct pollfd pfd = {.fd = lfd, .events = POLLIN};

		if (stop_asked)
			return -EINTR;
		if (poll(&pfd, 1, 200) > 0)
			return socket_accept(lfd, 0, err, errlen);
	}
}

int cmd_serve(int argc, char **argv)
{
	const char *path = NULL, *kind = "nic";
	struct dmalog_vfu_server_config sc = {.size = sizeof(sc)};
	struct dmalog_emudev_config ec = {
		.migration_flags =
			VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P | VFIO_MIGRATION_PRE_COPY,
		.dev_mem_bytes = 1 << 20,
		.devtrack_caps = DMALOG_DEVTRACK_CAPS_DEFAULT,
		.seed = 1,
	};
	struct dmalog_vfu_server *s = NULL;
	struct dmalog_emudev *d = NULL;
	struct dma dma = {.rate = 50000, .running = true};
	char err[200];
	int lfd, ret, clients = 0;

	for (int i = 0; i < argc; i++) {
		const char *val = i + 1 < argc ? argv[i + 1] : NULL;
		double sec;
		char *end;

		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			fputs(usage_text, stdout);
			return 0;
		} else if (!strcmp(argv[i], "--trace")) {
			sc.trace = trace_line;
		} else if (!strcmp(argv[i], "--socket") && val) {
			path = val;
			i++;
		} else if (!strcmp(argv[i], "--device") && val &&
			   (!strcmp(val, "nic") || !strcmp(val, "storage"))) {
			kind = val;
			i++;
		} else if (!strcmp(argv[i], "--dma-rate") && val &&
			   (dma.rate = strtoull(val, &end, 10), !*end && val[0] != '-')) {
			i++;
		} else if (!strcmp(argv[i], "--timeout") && val &&
			   (sec = strtod(val, &end)) >= 0.01 && sec <= 86400 && !*end) {
			sc.timeout_ms = (uint32_t)(sec * 1000);
			i++;
		} else {
			fprintf(stderr, "dmalog serve: bad option or value '%s'\n%s", argv[i],
				usage_text);
			return 2;
		}
	}
	if (!path || (strchr(path, ':') && strncmp(path, "unix:", 5))) {
		fprintf(stderr, "dmalog serve: --socket PATH (a UNIX socket) is needed\n%s",
			usage_text);
		return 2;
	}
	ec.name = kind;
	ec.tracker =
		!strcmp(kind, "nic") ? DMALOG_EMUDEV_TRACK_DEVICE : DMALOG_EMUDEV_TRACK_SOFTWARE;
	ret = dmalog_emudev_create(&ec, &d);
	if (!ret) {
		dma.dev = d;
		sc.dev = dmalog_emudev_device(d);
		sc.opaque = &dma;
		sc.dma_map = on_dma_map;
		sc.dma_unmap = on_dma_unmap;
		sc.state_changed = on_state;
		ret = dmalog_vfu_server_create(&sc, &s);
	}
	if (ret) {
		fprintf(stderr, "dmalog serve: cannot create the device (%s)\n", strerror(-ret));
		dmalog_emudev_destroy(d);
		return 5;
	}
	lfd = socket_listen(path, err, sizeof(err));
	if (lfd < 0) {
		fprintf(stderr, "dmalog serve: %s\n", err);
		dmalog_vfu_server_destroy(s);
		dmalog_emudev_destroy(d);
		return 5;
	}
	signal(SIGPIPE, SIG_IGN);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	serving = s;
	printf("serving a %s on %s (vfio-user %u.%u)\n", kind, path, DMALOG_VFU_MAJOR,
	       DMALOG_VFU_MINOR);
	fflush(stdout);
	for (;;) {
		int fd = next_client(lfd, err, sizeof(err));

		if (fd == -EINTR)
			break;
		if (fd < 0) {
			fprintf(stderr, "dmalog serve: %s\n", err);
			continue;
		}
		clients++;
		ret = dmalog_vfu_server_serve(s, fd);
		close(fd);
		printf("client %d: %s%s\n", clients,
		       !ret		   ? "gone"
		       : ret == -ESHUTDOWN ? "stopped"
					   : "connection ended: ",
		       ret && ret != -ESHUTDOWN ? strerror(-ret) : "");
		fflush(stdout);
	}
	serving = NULL;
	close(lfd);
	unlink(strncmp(path, "unix:", 5) ? path : path + 5);
	dmalog_vfu_server_destroy(s);
	dmalog_emudev_destroy(d);
	printf("stopped after %d client%s\n", clients, clients == 1 ? "" : "s");
	return 0;
}
