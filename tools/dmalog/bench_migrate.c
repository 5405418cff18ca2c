// SPDX-License-Identifier: MIT
/*
 * dmalog bench migrate: the same guest and workload migrated with each tracker and each
 * channel count, measured in one run. The value is bytes sent per guest byte; the baseline is
 * type1, the straightforward tracker that resends everything mapped. The first round's send
 * rate (copy, checksum, socket, apply) is put against the same number of bytes moved through
 * the same kind of socket between the same two processes with no protocol at all: the link's
 * limit; for an idle guest over as many connections as the migration has, else over one.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_util.h"
#include "cli.h"

static const enum mig_tracker order[] = {MIG_TRACK_TYPE1, MIG_TRACK_IOMMU, MIG_TRACK_DEVICE,
					 MIG_TRACK_ALL};
/* Connections per migration: one, and the default of several. */
static const uint32_t channel_counts[] = {1, 2};

/*
 * The raw transfer's writes and reads: the size the engine writes its stream in. Over TCP
 * loopback on a 2-core Intel Xeon KVM guest, transfers in 1 MiB writes never passed 3.1 GB/s where
 * ones in 256 KiB writes often reached 6: a limit measured in other writes than the engine's
 * would measure that difference, not the engine.
 */
#define RAW_CHUNK (256u << 10)
/* The most connections a raw transfer makes: as many as a migration may have. */
#define RAW_MAX_CONNS DMALOG_MIG_MAX_CHANNELS

/*
 * @bytes of memory backed as the guest's RAM is: on a virtual machine a copy between 4 KiB
 * pages can cost several times one between huge pages (seen: 0.6 against 6.9 GB/s through a
 * UNIX socket on one AMD EPYC guest), and the limit must be measured on the same footing.
 */
static uint8_t *backed(uint64_t bytes)
{
	uint8_t *p = guest_ram_backed(bytes, -1);

	if (p)
		memset(p, 0x5a, bytes);
	return p;
}

/* A connected pair: a UNIX socketpair, or two ends of a TCP connection over loopback. */
static int connected_pair(bool tcp, int sv[2])
{
	char err[200], where[128];
	int lfd;

	if (!tcp)
		return socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
	lfd = socket_listen("127.0.0.1:0", err, sizeof(err));
	if (lfd < 0)
		return -1;
	sv[0] = socket_describe(lfd, where, sizeof(where))
			? -1
			: socket_connect(where, 30000, err, sizeof(err));
	sv[1] = sv[0] >= 0 ? socket_accept(lfd, -1, err, sizeof(err)) : -1;
	close(lfd);
	if (sv[1] < 0 && sv[0] >= 0)
		close(sv[0]);
	return sv[0] >= 0 && sv[1] >= 0 ? 0 : -1;
}

/* One connection of a raw transfer: its share of the memory, sent or received whole. */
struct raw_conn {
	int fd;
	uint8_t *mem;
	uint64_t bytes;
	bool send, ok;
};

static void *raw_move(void *arg)
{
	struct raw_conn *c = arg;

	for (uint64_t done = 0; done < c->bytes;) {
		size_t want = c->bytes - done < RAW_CHUNK ? c->bytes - done : RAW_CHUNK;
		ssize_t n = c->send ? write(c->fd, c->mem + done, want)
				    : read(c->fd, c->mem + done, want);

		if (n <= 0)
			return NULL;
		done += (uint64_t)n;
	}
	c->ok = true;
	return NULL;
}

/* @bytes at @mem split over @n connections, each moved on a thread of its own: all of it? */
static bool raw_move_all(const int *fds, uint32_t n, uint8_t *mem, uint64_t bytes, bool send)
{
	uint64_t share = bytes / n & ~(uint64_t)(RAW_CHUNK - 1);
	struct raw_conn c[RAW_MAX_CONNS];
	pthread_t t[RAW_MAX_CONNS];
	bool threaded[RAW_MAX_CONNS], ok = true;

	for (uint32_t i = 0; i < n; i++) {
		c[i] = (struct raw_conn){.fd = fds[i], .mem = mem + i * share, .send = send};
		c[i].bytes = i + 1 < n ? share : bytes - i * share;
		threaded[i] = !pthread_create(&t[i], NULL, raw_move, &c[i]);
		if (!threaded[i])
			raw_move(&c[i]);
	}
	for (uint32_t i = 0; i < n; i++) {
		if (threaded[i])
			pthread_join(t[i], NULL);
		ok &= c[i].ok;
	}
	return ok;
}

/*
 * The link's limit: @bytes of memory (@src) from one process to the same amount of memory in
 * another, over @nconn connections (each a UNIX socketpair or TCP over loopback, set up as the
 * engine sets its own up) with a thread per connection on each end, as the engine's channels;
 * in RAW_CHUNK writes and reads, until the receiver says it has them all; no protocol, no
 * checksum, no copy but the socket's. Bytes per second of one transfer, 0 if it failed.
 */
static double raw_transfer(const uint8_t *src, uint64_t bytes, bool tcp, uint32_t nconn)
{
	int sv[RAW_MAX_CONNS][2], send_fd[RAW_MAX_CONNS] = {0}, recv_fd[RAW_MAX_CONNS] = {0},
				  status;
	double t0, rate = 0;
	uint32_t made = 0;
	pid_t pid = -1;
	char ack;

	while (made < nconn && !connected_pair(tcp, sv[made])) {
		dmalog_mig_socket_setup(sv[made][0], 30000);
		dmalog_mig_socket_setup(sv[made][1], 30000);
		send_fd[made] = sv[made][0];
		recv_fd[made] = sv[made][1];
		made++;
	}
	if (made == nconn)
		pid = fork();
	if (pid == 0) {
		uint8_t *dst = backed(bytes);

		for (uint32_t i = 0; i < nconn; i++)
			close(send_fd[i]);
		/* Ready: the sender's clock starts at this byte. */
		if (!dst || write(recv_fd[0], "r", 1) != 1 ||
		    !raw_move_all(recv_fd, nconn, dst, bytes, false))
			_exit(1);
		_exit(write(recv_fd[0], "k", 1) == 1 ? 0 : 1);
	}
	for (uint32_t i = 0; i < made; i++)
		close(recv_fd[i]);
	if (pid > 0 && read(send_fd[0], &ack, 1) != 1)
		pid = -1;
	t0 = bench_now();
	if (pid > 0 && raw_move_all(send_fd, nconn, (uint8_t *)src, bytes, true) &&
	    read(send_fd[0], &ack, 1) == 1)
		rate = bytes / (bench_now() - t0);
	for (uint32_t i = 0; i < made; i++)
		close(send_fd[i]);
	if (pid > 0)
		waitpid(pid, &status, 0);
	return rate;
}

/* The median of three raw transfers: the limit the busy guests' first rounds are put against. */
static double raw_socket_rate(const uint8_t *src, uint64_t bytes, bool tcp)
{
	double rate[3];

	for (int i = 0; i < 3; i++)
		rate[i] = raw_transfer(src, bytes, tcp, 1);
	return bench_median(rate, 3);
}

/* The part of the downtime that does not grow with what is left: stop, sync, the answer. */
static double downtime_fixed_ms(const struct mig_result *r)
{
	return r->downtime_parts[0] + r->downtime_parts[1] + r->downtime_parts[4];
}

static double first_round_rate(const struct mig_result *r)
{
	return r->nrounds && r->rounds[0].ms > 0
		       ? (double)r->rounds[0].bytes / (r->rounds[0].ms / 1e3)
		       : 0;
}

/*
 * --max-bandwidth holds: the same guest with the stream capped at half the rate the uncapped
 * migration reached in this run; the value is the precopy rate measured, the cap its limit.
 */
static int bench_max_bandwidth(const struct bench_opts *bo, struct mig_options *o, double raw,
			       double uncapped)
{
	struct mig_result r;

	o->tracker = MIG_TRACK_ALL;
	o->channels = 1;
	o->max_bandwidth = (uint64_t)(uncapped / 2);
	o->max_rounds = 3;
	migrate_run(o, &r);
	bench_print(bo, "migrate", "max_bandwidth_half", r.bandwidth / 1e6, "MB/s", raw / 1e6,
		    (double)o->max_bandwidth / 1e6);
	free(r.rounds);
	o->max_bandwidth = 0;
	return !r.verified;
}

/*
 * One migration with the destination a child listening on TCP loopback (as --listen does):
 * the same ends as migrate_run(), over TCP instead of a UNIX socket.
 */
static void migrate_tcp(const struct mig_options *o, struct mig_result *r)
{
	char err[200], where[128];
	struct mig_options src = *o;
	struct guest *g;
	int lfd = socket_listen("127.0.0.1:0", err, sizeof(err)), status;
	pid_t pid;

	memset(r, 0, sizeof(*r));
	if (lfd < 0 || socket_describe(lfd, where, sizeof(where))) {
		snprintf(r->error, sizeof(r->error), "cannot listen on TCP loopback");
		return;
	}
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		int fds[DMALOG_MIG_MAX_CHANNELS];

		if (migrate_dest_guest(o, &g))
			_exit(5);
		for (uint32_t i = 0; i < o->channels; i++) {
			fds[i] = socket_accept(lfd, -1, err, sizeof(err));
			if (fds[i] < 0)
				_exit(5);
		}
		close(lfd);
		_exit(migrate_dest(o, g, fds));
	}
	close(lfd);
	src.connect = where;
	if (pid > 0)
		migrate_run(&src, r);
	if (pid > 0)
		waitpid(pid, &status, 0);
}

#define IDLE_PAIRS 5

/*
 * An idle guest (no devices, a CPU that writes almost nothing): everything goes in the first
 * round, so its rate is the engine's transfer rate. Each migration comes right after a raw
 * transfer of the same bytes through the same kind and number of connections (a thread each
 * per end, as the engine's channels: one connection cannot use both cores of a 2-core machine
 * where two can), and the ratio is taken pair by pair: this machine's bandwidth drifts by half
 * within a minute, and a limit measured once, minutes away, says more about the drift than
 * about the engine. The medians of the pairs.
 */
static int bench_idle(const struct bench_opts *bo, struct mig_options o, const uint8_t *src,
		      bool tcp, uint32_t channels)
{
	double rate[IDLE_PAIRS], raw[IDLE_PAIRS], ratio[IDLE_PAIRS], mig_ms[IDLE_PAIRS];
	double proof_ms[IDLE_PAIRS], lo, hi, med_rate, med_raw, med_ratio, med_mig_ms, med_proof_ms;
	const char *name = tcp ? "idle_tcp" : "idle";
	int failed = 0;

	o.channels = channels;
	o.ndevices = 0;
	o.cpu_rate = 1;
	o.tracker = MIG_TRACK_ALL;
	for (int i = 0; i < IDLE_PAIRS; i++) {
		struct mig_result r;

		raw[i] = raw_transfer(src, o.mem_bytes, tcp, channels);
		if (tcp)
			migrate_tcp(&o, &r);
		else
			migrate_run(&o, &r);
		rate[i] = first_round_rate(&r);
		ratio[i] = raw[i] > 0 ? rate[i] / raw[i] : 0;
		mig_ms[i] = r.migration_ms;
		proof_ms[i] = r.verify_ms;
		failed |= !r.verified;
		free(r.rounds);
	}
	med_rate = bench_median(rate, IDLE_PAIRS);
	med_raw = bench_median(raw, IDLE_PAIRS);
	med_ratio = bench_median(ratio, IDLE_PAIRS); /* sorts them: the range is at the ends */
	lo = ratio[0];
	hi = ratio[IDLE_PAIRS - 1];
	med_mig_ms = bench_median(mig_ms, IDLE_PAIRS);
	med_proof_ms = bench_median(proof_ms, IDLE_PAIRS);
	if (bo->json)
		printf("{\"bench\":\"migrate\",\"case\":\"%s\",\"channels\":%u,\"value\":%.4g,"
		       "\"unit\":\"B/s\",\"baseline\":null,\"limit\":%.4g,\"ratio_to_limit\":%.3f,"
		       "\"ratio_min\":%.3f,\"ratio_max\":%.3f,\"pairs\":%d,\"verified\":%s,"
		       "\"migration_ms\":%.1f,\"verify_ms\":%.1f,\"guest_bytes\":%llu}\n",
		       name, channels, med_rate, med_raw, med_ratio, lo, hi, IDLE_PAIRS,
		       failed ? "false" : "true", med_mig_ms, med_proof_ms,
		       (unsigned long long)o.mem_bytes);
	else
		printf("migrate  %-8s %u ch %5.0f MB/s, raw %5.0f MB/s: %5.1f%% of the raw socket "
		       "(pairs %.0f-%.0f%%)  migration %6.1f ms  proof %6.1f ms  (medians of %d)  "
		       "%s\n",
		       name, channels, med_rate / 1e6, med_raw / 1e6, 100 * med_ratio, 100 * lo,
		       100 * hi, med_mig_ms, med_proof_ms, IDLE_PAIRS,
		       failed ? "NOT verified" : "verified");
	fflush(stdout);
	return failed;
}

int bench_migrate(const struct bench_opts *bo)
{
	double raw, raw_tcp, baseline = 0, uncapped = 0;
	struct mig_options o;
	uint8_t *src;
	int failed = 0;

	/* The defaults' devices and rates, on a smaller guest with a hot/cold workload. */
	mig_options_default(&o);
	o.mem_bytes = bo->quick ? 64ULL << 20 : 512ULL << 20;
	o.workload = DMALOG_WORKLOAD_HOTCOLD;
	o.max_rounds = 10;
	o.quiet = true;
	src = backed(o.mem_bytes);
	if (!src) {
		fprintf(stderr, "dmalog bench migrate: cannot back %llu MiB\n",
			(unsigned long long)(o.mem_bytes >> 20));
		return 1;
	}
	raw = raw_socket_rate(src, o.mem_bytes, false);
	raw_tcp = raw_socket_rate(src, o.mem_bytes, true);
	if (!bo->json)
		printf("bench migrate: %llu MiB guest; a raw UNIX socket moves it at %.0f MB/s, "
		       "TCP over loopback at %.0f MB/s (medians of 3)\n",
		       (unsigned long long)(o.mem_bytes >> 20), raw / 1e6, raw_tcp / 1e6);

	for (size_t c = 0; c < sizeof(channel_counts) / sizeof(channel_counts[0]); c++) {
		failed |= bench_idle(bo, o, src, false, channel_counts[c]);
		failed |= bench_idle(bo, o, src, true, channel_counts[c]);
	}
	munmap(src, o.mem_bytes);
	for (size_t k = 0; k < sizeof(order) / sizeof(order[0]) * 2; k++) {
		size_t i = k / 2;
		struct mig_result r;
		double ratio, rate;

		o.tracker = order[i];
		o.channels = channel_counts[k % 2];
		migrate_run(&o, &r);
		ratio = (double)r.bytes_sent / (double)r.guest_bytes;
		rate = first_round_rate(&r);
		if (order[i] == MIG_TRACK_TYPE1 && o.channels == 1)
			baseline = ratio;
		if (order[i] == MIG_TRACK_ALL && o.channels == 1)
			uncapped = r.bandwidth;
		failed |= !r.verified;
		if (bo->json)
			printf("{\"bench\":\"migrate\",\"case\":\"%s\",\"channels\":%u,"
			       "\"value\":%.4g,\"unit\":\"bytes_per_guest_byte\",\"baseline\":%.4g,"
			       "\"limit\":null,\"ratio_to_limit\":null,\"verified\":%s,\"rounds\":%"
			       "u,"
			       "\"downtime_ms\":%.1f,\"downtime_fixed_ms\":%.1f,\"total_ms\":%.1f,"
			       "\"guest_bytes\":%llu,\"send_rate\":%.4g,\"raw_socket_rate\":%.4g,"
			       "\"send_ratio_to_raw_socket\":%.3f}\n",
			       mig_tracker_name(order[i]), o.channels, ratio, baseline,
			       r.verified ? "true" : "false", r.nrounds, r.downtime_ms,
			       downtime_fixed_ms(&r), r.total_ms, (unsigned long long)r.guest_bytes,
			       rate, raw, raw > 0 ? rate / raw : 0);
		else
			printf("migrate  %-7s %u ch %5.2f x guest sent (type1 %.2f)  %2u rounds  "
			       "downtime %6.1f ms (fixed %4.1f)  total %7.1f ms  first round %5.0f "
			       "MB/s = %5.1f%% of the raw socket  %s\n",
			       mig_tracker_name(order[i]), o.channels, ratio, baseline, r.nrounds,
			       r.downtime_ms, downtime_fixed_ms(&r), r.total_ms, rate / 1e6,
			       raw > 0 ? 100 * rate / raw : 0, r.verified ? "verified" : r.error);
		fflush(stdout);
		free(r.rounds);
	}
	return failed | bench_max_bandwidth(bo, &o, raw, uncapped);
}
