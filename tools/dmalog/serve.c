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
	"usage: dmalog serve --socket PATH [--device nic|storage] [--trace] [--timeout S]\n"
	"\n"
	"Serve one emulated device to vfio-user clients on a UNIX socket (created mode 0600),\n"
	"one client at a time, until SIGINT or SIGTERM. The device is migratable (STOP_COPY,\n"
	"P2P, PRE_COPY) and logs its DMA: a nic with its own mlx5-like tracker, a storage device\n"
	"with a software log. A client that goes away leaves it with its maps dropped and\n"
	"logging off, its state kept, for the next.\n"
	"  --socket PATH   where to listen\n"
	"  --device KIND   nic (default) or storage\n"
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
		sc.dev = dmalog_emudev_device(d);
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
