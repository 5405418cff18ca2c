// SPDX-License-Identifier: MIT
/*
 * dmalog bench vfio-user: what the socket costs. A device served on a socketpair by a server
 * thread, driven through the client's handle, against the same device driven in process:
 *  - round trips per second of a small REGION_READ (8 bytes of a served PCI function's BAR0)
 *    and of a DEVICE_RESET, against the same request handled in process (the server's own
 *    dispatcher, or the device's ioctl) and against a bare 16-byte ping-pong on a socketpair
 *    between two threads (the transport's floor);
 *  - one DMA_LOGGING_REPORT of a 64 GiB space at 4 KiB with 1 % of the pages dirty (a 2 MiB
 *    bitmap back in the reply), against the same REPORT in process. Medians of the repeats.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <dmalog/dmalog.h>

#include "bench_util.h"

#define SZ_4K	(1ULL << 12)
#define REPEATS 10

struct served {
	struct dmalog_vfu_server *server;
	struct dmalog_vfu_client *client;
	struct dmalog_handle *remote, *local;
	int sv[2];
	pthread_t thread;
};

static void *serve_thread(void *arg)
{
	struct served *s = arg;

	dmalog_vfu_server_serve(s->server, s->sv[1]);
	return NULL;
}

static int serve(struct dmalog_device *dev, struct served *s)
{
	struct dmalog_vfu_server_config c = {.size = sizeof(c), .dev = dev};

	if (dmalog_vfu_server_create(&c, &s->server) ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s->sv) ||
	    pthread_create(&s->thread, NULL, serve_thread, s))
		return -1;
	if (dmalog_vfu_client_connect(s->sv[0], 0, &s->client) ||
	    dmalog_handle_from_vfu_client(s->client, "bench", &s->remote) ||
	    dmalog_handle_from_device(dev, &s->local))
		return -1;
	return 0;
}

static void unserve(struct served *s)
{
	dmalog_handle_destroy(s->remote);
	dmalog_handle_destroy(s->local);
	dmalog_vfu_client_destroy(s->client);
	close(s->sv[0]);
	pthread_join(s->thread, NULL);
	close(s->sv[1]);
	dmalog_vfu_server_destroy(s->server);
}

/* The floor: a 16-byte message and its 16-byte answer between two threads. */
static void *echo_thread(void *arg)
{
	int fd = *(int *)arg;
	char buf[16];

	while (read(fd, buf, sizeof(buf)) == sizeof(buf) && write(fd, buf, sizeof(buf)) > 0)
		;
	return NULL;
}

static double ping_pong_rate(int n)
{
	int sv[2];
	char buf[16] = {0};
	pthread_t t;
	double t0, rate = 0;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) ||
	    pthread_create(&t, NULL, echo_thread, &sv[1]))
		return 0;
	t0 = bench_now();
	for (int i = 0; i < n; i++)
		if (write(sv[0], buf, sizeof(buf)) != sizeof(buf) ||
		    read(sv[0], buf, sizeof(buf)) != sizeof(buf))
			break;
	rate = n / (bench_now() - t0);
	close(sv[0]);
	pthread_join(t, NULL);
	close(sv[1]);
	return rate;
}

static double reset_rate(struct dmalog_handle *h, int n)
{
	double t0 = bench_now();

	for (int i = 0; i < n; i++)
		if (dmalog_handle_reset(h))
			return 0;
	return n / (bench_now() - t0);
}

/* A served PCI function on a socketpair: its client and server thread. */
struct served_fn {
	struct dmalog_vfu_device *d;
	struct dmalog_vfu_client *client;
	int sv[2];
	pthread_t thread;
};

static void *serve_fn_thread(void *arg)
{
	struct served_fn *f = arg;

	dmalog_vfu_server_serve(dmalog_vfu_device_server(f->d), f->sv[1]);
	return NULL;
}

/* REGION_READs of BAR0's scratch register a second: over the socket, or (@f NULL) straight
 * into a second device's dispatcher in this thread. */
static double region_read_rate(struct served_fn *f, int n)
{
	struct dmalog_vfu_device_config c = {.size = sizeof(c), .kind = "nic"};
	struct dmalog_vfu_device *local = NULL;
	struct {
		struct dmalog_vfu_hdr h;
		struct dmalog_vfu_region_access a;
	} m = {{.command = DMALOG_VFU_REGION_READ, .size = sizeof(m)},
	       {.offset = DMALOG_VFU_REG_SCRATCH,
		.region = VFIO_PCI_BAR0_REGION_INDEX,
		.count = 8}};
	struct {
		struct dmalog_vfu_hdr h;
		struct dmalog_vfu_version v;
	} ver = {{.command = DMALOG_VFU_VERSION, .size = sizeof(ver)}, {0, 0}};
	const void *reply;
	size_t len;
	uint8_t buf[8];
	double t0, rate = 0;

	if (!f && (dmalog_vfu_device_create(&c, &local) ||
		   dmalog_vfu_server_handle(dmalog_vfu_device_server(local), &ver, sizeof(ver),
					    NULL, 0, &reply, &len)))
		goto out;
	t0 = bench_now();
	for (int i = 0; i < n; i++) {
		int ret = f ? dmalog_vfu_client_region_read(f->client, VFIO_PCI_BAR0_REGION_INDEX,
							    DMALOG_VFU_REG_SCRATCH, buf, 8)
			    : dmalog_vfu_server_handle(dmalog_vfu_device_server(local), &m,
						       sizeof(m), NULL, 0, &reply, &len);

		if (ret || (!f && len != sizeof(m) + 8))
			goto out;
	}
	rate = n / (bench_now() - t0);
out:
	dmalog_vfu_device_destroy(local);
	return rate;
}

static int region_read_case(const struct bench_opts *o, int n, double floor_rate)
{
	struct dmalog_vfu_device_config c = {.size = sizeof(c), .kind = "nic"};
	struct served_fn f = {0};
	double remote, local;

	if (dmalog_vfu_device_create(&c, &f.d) ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, f.sv) ||
	    pthread_create(&f.thread, NULL, serve_fn_thread, &f))
		return 1;
	if (dmalog_vfu_client_connect(f.sv[0], 0, &f.client))
		remote = 0;
	else
		remote = region_read_rate(&f, n);
	local = region_read_rate(NULL, n);
	bench_print(o, "vfio-user", "round_trip_region_read", remote, "ops/s", local, floor_rate);
	dmalog_vfu_client_destroy(f.client);
	close(f.sv[0]);
	pthread_join(f.thread, NULL);
	close(f.sv[1]);
	dmalog_vfu_device_destroy(f.d);
	return !remote || !local;
}

/* Median ms of REPEATS REPORTs of @space through @h, 1 % of the pages marked before each. */
static double report_ms(struct dmalog_handle *h, struct dmalog_swtrack *t, uint64_t space,
			uint64_t *bitmap, int *bits)
{
	uint64_t pages = space / SZ_4K, seed = 42;
	double ms[REPEATS];

	for (int r = 0; r < REPEATS; r++) {
		double t0;

		for (uint64_t i = 0; i < pages / 100; i++)
			dmalog_swtrack_log_write(t, (bench_rand(&seed) % pages) * SZ_4K, 8);
		memset(bitmap, 0, pages / 8);
		t0 = bench_now();
		if (dmalog_handle_log_report(h, 0, space, SZ_4K, bitmap))
			return 0;
		ms[r] = (bench_now() - t0) * 1e3;
	}
	*bits = 0;
	for (uint64_t i = 0; i < pages / 64; i++)
		*bits += __builtin_popcountll(bitmap[i]);
	return bench_median(ms, REPEATS);
}

int bench_vfio_user(const struct bench_opts *o)
{
	struct dmalog_device_desc desc = {.name = "bench", .log_ops = dmalog_swtrack_log_ops()};
	struct vfio_device_feature_dma_logging_range range = {0, 0};
	uint64_t space = (o->quick ? 4ULL : 64ULL) << 30, *bitmap = malloc(space / SZ_4K / 8);
	int n = o->quick ? 2000 : 20000, bits_remote = 0, bits_local = 0;
	struct dmalog_swtrack *t = NULL;
	struct dmalog_device *dev = NULL;
	struct served s = {0};
	double floor_rate, remote_rate, local_rate, remote_ms, local_ms;

	range.length = space;
	if (!bitmap || dmalog_swtrack_create(&t))
		return 1;
	desc.priv = t;
	if (dmalog_device_create(&desc, &dev) || serve(dev, &s)) {
		fprintf(stderr, "dmalog bench vfio-user: cannot set up the server\n");
		return 1;
	}
	floor_rate = ping_pong_rate(n);
	if (region_read_case(o, n, floor_rate))
		return 1;
	remote_rate = reset_rate(s.remote, n);
	local_rate = reset_rate(s.local, n);
	bench_print(o, "vfio-user", "round_trip_reset", remote_rate, "ops/s", local_rate,
		    floor_rate);
	if (dmalog_handle_log_start(s.remote, &range, 1, SZ_4K, NULL))
		return 1;
	remote_ms = report_ms(s.remote, t, space, bitmap, &bits_remote);
	local_ms = report_ms(s.local, t, space, bitmap, &bits_local);
	dmalog_handle_log_stop(s.remote);
	if (o->json)
		printf("{\"bench\":\"vfio-user\",\"case\":\"report_1pct\",\"gib\":%llu,"
		       "\"value\":%.4g,\"unit\":\"ms\",\"in_process_ms\":%.4g,"
		       "\"ratio_to_in_process\":%.2f,\"bitmap_bytes\":%llu,\"bits\":%d}\n",
		       (unsigned long long)(space >> 30), remote_ms, local_ms,
		       local_ms > 0 ? remote_ms / local_ms : 0,
		       (unsigned long long)(space / SZ_4K / 8), bits_remote);
	else
		printf("vfio-user report_1pct of %llu GiB: %.3f ms over the socket, %.3f ms in "
		       "process (x%.2f), %llu-byte bitmap, %d pages dirty\n",
		       (unsigned long long)(space >> 30), remote_ms, local_ms,
		       local_ms > 0 ? remote_ms / local_ms : 0,
		       (unsigned long long)(space / SZ_4K / 8), bits_remote);
	unserve(&s);
	dmalog_device_destroy(dev);
	dmalog_swtrack_destroy(t);
	free(bitmap);
	/* Both saw the same share of pages: the transport lost nothing. */
	return !remote_ms || !local_ms || bits_remote != bits_local;
}
