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
	"                    [--timeout S] [--no-runtime-pm]\n"
	"\n"
	"Serve one emulated PCI device to vfio-user clients on a UNIX socket (created mode 0600),\n"
	"one client at a time, until SIGINT or SIGTERM. The device is migratable (STOP_COPY,\n"
	"P2P, PRE_COPY) and logs its DMA: a nic with its own mlx5-like tracker, a storage device\n"
	"with a software log. It has config space, BAR0 registers, BAR2 memory (partly\n"
	"mappable), INTx and four MSI-X vectors, and the low-power features. A client that goes\n"
	"away leaves it with its maps dropped, logging and low power off, its state kept, for the\n"
	"next. While RUNNING or PRE_COPY the device writes the client's memory by DMA (each\n"
	"writable map that came with an fd), at random.\n"
	"  --socket PATH    where to listen\n"
	"  --device KIND    nic (default) or storage\n"
	"  --dma-rate N     DMA writes per second per map, 0: none (default 50000)\n"
	"  --trace          a line per message on stderr: command, size, result\n"
	"  --timeout S      a message that has begun must arrive whole, and a reply be taken,\n"
	"                   within S seconds (default 30)\n"
	"  --no-runtime-pm  the host keeps the device out of low power (LOW_POWER_ENTRY is\n"
	"                   accepted, the device never enters it)\n";

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
	const char *path = NULL;
	struct dmalog_vfu_device_config dc = {
		.size = sizeof(dc), .kind = "nic", .dma_rate = 50000, .seed = 1};
	struct dmalog_vfu_device *d = NULL;
	struct dmalog_vfu_server *s;
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
			dc.trace = trace_line;
		} else if (!strcmp(argv[i], "--no-runtime-pm")) {
			dc.no_runtime_pm = true;
		} else if (!strcmp(argv[i], "--socket") && val) {
			path = val;
			i++;
		} else if (!strcmp(argv[i], "--device") && val &&
			   (!strcmp(val, "nic") || !strcmp(val, "storage"))) {
			dc.kind = val;
			i++;
		} else if (!strcmp(argv[i], "--dma-rate") && val &&
			   (dc.dma_rate = strtoull(val, &end, 10), !*end && val[0] != '-')) {
			i++;
		} else if (!strcmp(argv[i], "--timeout") && val &&
			   (sec = strtod(val, &end)) >= 0.01 && sec <= 86400 && !*end) {
			dc.timeout_ms = (uint32_t)(sec * 1000);
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
	ret = dmalog_vfu_device_create(&dc, &d);
	if (ret) {
		fprintf(stderr, "dmalog serve: cannot create the device (%s)\n", strerror(-ret));
		return 5;
	}
	s = dmalog_vfu_device_server(d);
	lfd = socket_listen(path, err, sizeof(err));
	if (lfd < 0) {
		fprintf(stderr, "dmalog serve: %s\n", err);
		dmalog_vfu_device_destroy(d);
		return 5;
	}
	signal(SIGPIPE, SIG_IGN);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	serving = s;
	printf("serving a %s on %s (vfio-user %u.%u)\n", dc.kind, path, DMALOG_VFU_MAJOR,
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
		printf("client %d: %s%s; device state hash %016llx, %llu DMA writes\n", clients,
		       !ret		   ? "gone"
		       : ret == -ESHUTDOWN ? "stopped"
					   : "connection ended: ",
		       ret && ret != -ESHUTDOWN ? strerror(-ret) : "",
		       (unsigned long long)dmalog_vfu_device_state_hash(d),
		       (unsigned long long)dmalog_vfu_device_dma_writes(d));
		fflush(stdout);
	}
	serving = NULL;
	close(lfd);
	unlink(strncmp(path, "unix:", 5) ? path : path + 5);
	dmalog_vfu_device_destroy(d);
	printf("stopped after %d client%s\n", clients, clients == 1 ? "" : "s");
	return 0;
}
