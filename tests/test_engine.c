// SPDX-License-Identifier: MIT
/*
 * The migration engine as a library: both ends in one process over a socketpair, the demo
 * guest of `dmalog migrate` (RAM in three slots, a CPU writer with its own log, a NIC with
 * device DMA logging, storage behind the IOMMU) as what is migrated.
 *
 *  - every tracker migrates a busy guest and the destination's memory equals the source's;
 *  - tracker failures are recovered; a corrupt stream, a rejected device state and a lost
 *    connection roll the source back;
 *  - the hand-off: a destination that answers at once (200 times), late, never, with ABORT
 *    after COMPLETE, or that closes just before or just after COMPLETE; each case asserts
 *    which side runs the guest: exactly one, or none when the outcome is unknown;
 *  - with 2 and 4 connections (page channels), every tracker migrates; a corrupt frame on
 *    channel 2, a channel that drops mid-round and a mismatched channel count roll back.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"
#include "../tools/dmalog/cli.h"

#define TEST_MEM (8ULL << 20)
/*
 * Short enough for tests; a silent destination is given up on after this. Under the
 * sanitizers every memory access is several times slower, and with meson running two test
 * programs at once on a 2-core machine an end can be kept off the CPU for seconds (a TSan CI
 * run saw a destination take over 1.5 s from COMPLETE to RUNNING once in 200 hand-offs): a
 * live peer must not look silent there.
 */
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define TEST_TIMEOUT_MS 4000
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
#define TEST_TIMEOUT_MS 4000
#endif
#endif
/*
 * Without them 1 s: a CI run with a memory-heavy benchmark beside meson's two test programs
 * kept ends silent past the 400 ms this was (four tests, both CRC variants).
 */
#ifndef TEST_TIMEOUT_MS
#define TEST_TIMEOUT_MS 1000
#endif

enum fault {
	FAULT_NONE,
	FAULT_CORRUPT_PAGE,	 /* a PAGES frame damaged after its checksum */
	FAULT_DEVICE_STATE,	 /* device 0's data damaged before its checksum */
	FAULT_TRACKER,		 /* the NIC's tracker fails a REPORT */
	FAULT_DROP_LINK,	 /* the destination's end of the connection is shut in round 2 */
	FAULT_CLOSE_COMPLETE,	 /* ... just before COMPLETE is sent */
	FAULT_SLOW_STOP,	 /* the switchover takes longer than the downtime cap allows */
	FAULT_FORCE,		 /* the embedder forces the switchover after round 2 */
	FAULT_CANCEL_PRECOPY,	 /* dmalog_mig_cancel() in round 2 */
	FAULT_CANCEL_STOPPED,	 /* ... once the guest is stopped */
	FAULT_CANCEL_COMPLETE,	 /* ... at the last moment before COMPLETE */
	FAULT_CANCEL_HANDED_OFF, /* ... once the destination runs the guest */
	FAULT_CORRUPT_CHANNEL_2, /* a PAGES frame on page channel 2 damaged in round 2 */
	FAULT_DROP_CHANNEL_1,	 /* page channel 1 shut at the destination mid-round 2 */
	FAULT_SLOW_CHANNEL_1,	 /* page channel 1's final round held back 300 ms */
	FAULT_OUTRUN,		 /* the CPU writes 4 times the guest's pages between syncs */
};

/* One end's view for the hooks: who runs, and what to break. */
struct end {
	struct guest *g;
	enum fault fault;
	int peer_fd; /* the other end's socket, for the link faults */
	bool vcpus_running;
	int pauses, resumes;
	bool damaged;
	uint32_t round;
	bool *wait_for;		  /* round 2 waits until the other side has set this */
	struct dmalog_mig **self; /* the engine, for FAULT_FORCE */
	uint32_t throttle, throttle_max_seen;
	int peer_page_fds[DMALOG_MIG_MAX_CHANNELS]; /* the other end's page channels, from 1 */
	int channel_damaged;			    /* atomic: channel threads race for it */
	bool stopped; /* the switchover has begun (set before the final round's channels run) */
	uint64_t cpu_writes_at_sync; /* FAULT_OUTRUN: the CPU's writes at the last sync */
};

static void pause_vcpus(void *opaque)
{
	struct end *e = opaque;

	guest_pause_vcpus(e->g);
	e->vcpus_running = false;
	e->pauses++;
}

static void resume_vcpus(void *opaque)
{
	struct end *e = opaque;

	guest_resume_vcpus(e->g);
	e->vcpus_running = true;
	e->resumes++;
}

/*
 * FAULT_OUTRUN: before each precopy sync, wait until the guest's CPU has written four times as
 * many random pages as the guest has since the last one (nearly every page dirty), however
 * little of the two cores its thread got meanwhile. A round of an 8 MiB guest takes a few
 * milliseconds, and on a loaded machine the writer could sit them all out. Bounded.
 */
static void outrun(struct end *e)
{
	struct dmalog_dma_stats st;

	for (int i = 0; i < 5000; i++) {
		dmalog_dma_engine_get_stats(e->g->cpu, &st);
		if (st.writes >= e->cpu_writes_at_sync + 4 * (TEST_MEM / 4096))
			break;
		usleep(1000);
	}
	e->cpu_writes_at_sync = st.writes;
}

static int event(void *opaque, enum dmalog_mig_event ev, uint32_t round)
{
	struct end *e = opaque;

	if (ev == DMALOG_MIG_EVENT_SYNC && e->fault == FAULT_OUTRUN && !e->stopped)
		outrun(e);

	if (ev == DMALOG_MIG_EVENT_ROUND)
		e->round = round;
	if (ev == DMALOG_MIG_EVENT_STOPPED)
		e->stopped = true;
	if (ev == DMALOG_MIG_EVENT_SYNC && round == 1 && e->fault == FAULT_TRACKER)
		dmalog_devtrack_inject(dmalog_emudev_devtrack(e->g->emu[0]),
				       DMALOG_DEVTRACK_FAULT_ERROR_EVENT);
	/* Bounded: a peer that never sets the flag fails the test, it does not hang it. */
	for (int i = 0; ev == DMALOG_MIG_EVENT_ROUND && round == 2 && e->wait_for && i < 5000 &&
			!__atomic_load_n(e->wait_for, __ATOMIC_ACQUIRE);
	     i++)
		usleep(1000);
	if (ev == DMALOG_MIG_EVENT_ROUND && round == 2 && e->fault == FAULT_DROP_LINK)
		shutdown(e->peer_fd, SHUT_RDWR);
	if (ev == DMALOG_MIG_EVENT_COMPLETE && e->fault == FAULT_CLOSE_COMPLETE)
		shutdown(e->peer_fd, SHUT_RDWR);
	if (ev == DMALOG_MIG_EVENT_STOPPED && e->fault == FAULT_SLOW_STOP)
		usleep(100 * 1000);
	if (ev == DMALOG_MIG_EVENT_ROUND && round == 3 && e->fault == FAULT_FORCE)
		dmalog_mig_force_switchover(*e->self);
	if ((ev == DMALOG_MIG_EVENT_ROUND && round == 2 && e->fault == FAULT_CANCEL_PRECOPY) ||
	    (ev == DMALOG_MIG_EVENT_STOPPED && e->fault == FAULT_CANCEL_STOPPED) ||
	    (ev == DMALOG_MIG_EVENT_COMPLETE && e->fault == FAULT_CANCEL_COMPLETE) ||
	    (ev == DMALOG_MIG_EVENT_HANDED_OFF && e->fault == FAULT_CANCEL_HANDED_OFF))
		dmalog_mig_cancel(*e->self);
	return 0;
}

static void frame_out(void *opaque, uint16_t type, uint8_t *frame, uint32_t length)
{
	struct end *e = opaque;
	uint8_t *payload = frame + DMALOG_FRAME_HDR_BYTES;
	uint32_t plen = length - DMALOG_FRAME_HDR_BYTES;

	if (e->damaged)
		return;
	if (e->fault == FAULT_CORRUPT_PAGE && type == DMALOG_FRAME_PAGES && e->round == 2) {
		payload[sizeof(struct dmalog_frame_run) + 7] ^= 1;
		e->damaged = true;
	}
	if (e->fault == FAULT_DEVICE_STATE && type == DMALOG_FRAME_DEVICE_DATA && plen > 40) {
		payload[sizeof(struct dmalog_frame_device) + 30] ^= 1;
		dmalog_frame_reseal(frame);
		e->damaged = true;
	}
}

/* Page channels' frames, on their own threads (e->round was set before they started). */
static void channel_frame_out(void *opaque, uint32_t channel, uint16_t type, uint8_t *frame,
			      uint32_t length)
{
	struct end *e = opaque;

	/* The first frame of channel 1's final round waits: its pages arrive after COMPLETE. */
	if (e->fault == FAULT_SLOW_CHANNEL_1 && e->stopped && channel == 1 &&
	    !__atomic_exchange_n(&e->channel_damaged, 1, __ATOMIC_ACQ_REL))
		usleep(300 * 1000);
	if (type != DMALOG_FRAME_PAGES || e->round != 2)
		return;
	if (e->fault == FAULT_CORRUPT_CHANNEL_2 && channel == 2 &&
	    !__atomic_exchange_n(&e->channel_damaged, 1, __ATOMIC_ACQ_REL))
		frame[DMALOG_FRAME_HDR_BYTES + sizeof(struct dmalog_frame_run) + 7] ^= 1;
	/* After one frame has gone: the channel drops with the round under way. */
	if (e->fault == FAULT_DROP_CHANNEL_1 && channel == 1 &&
	    __atomic_exchange_n(&e->channel_damaged, 1, __ATOMIC_ACQ_REL))
		shutdown(e->peer_page_fds[1], SHUT_RDWR);
}

static int device_hash(void *opaque, uint32_t dev, uint64_t *hash)
{
	return guest_device_hash(((struct end *)opaque)->g, dev, hash);
}

static void device_error(void *opaque, uint32_t dev, char *buf, size_t len)
{
	guest_device_error(((struct end *)opaque)->g, dev, buf, len);
}

static void throttle_vcpus(void *opaque, uint32_t percent)
{
	struct end *e = opaque;

	e->throttle = percent;
	if (percent > e->throttle_max_seen)
		e->throttle_max_seen = percent;
	dmalog_dma_engine_set_throttle(e->g->cpu, percent);
}

/* Precopy lasts at least two rounds, so faults due in round 2 happen. */
static bool keep_precopy(void *opaque, uint32_t round)
{
	return round < 2;
}

static const struct dmalog_mig_hooks hooks = {
	.size = sizeof(struct dmalog_mig_hooks),
	.pause_vcpus = pause_vcpus,
	.resume_vcpus = resume_vcpus,
	.event = event,
	.frame_out = frame_out,
	.device_hash = device_hash,
	.device_error = device_error,
	.keep_precopy = keep_precopy,
	.throttle_vcpus = throttle_vcpus,
	.channel_frame_out = channel_frame_out,
};

static struct mig_options options(enum mig_tracker tracker, uint32_t ndevices, uint64_t rate)
{
	struct mig_options o = {
		.mem_bytes = TEST_MEM,
		.devices = {MIG_DEV_NIC, MIG_DEV_STORAGE},
		.ndevices = ndevices,
		.workload = DMALOG_WORKLOAD_RANDOM,
		.dma_rate = rate,
		.cpu_rate = rate,
		.tracker = tracker,
		.downtime_limit_ms = 50,
		.max_rounds = 6,
		.seed = 7,
	};

	return o;
}

static struct dmalog_mig_config config(struct end *e, int fd)
{
	struct dmalog_mig_config c = guest_engine_config(e->g, fd);

	c.downtime_limit_ms = 50;
	c.max_rounds = 6;
	c.timeout_ms = TEST_TIMEOUT_MS;
	c.hooks = &hooks;
	c.opaque = e;
	return c;
}

/* The source's guest runs: vCPUs resumed, every device RUNNING, the CPU writer moving. */
static bool source_runs(struct end *e)
{
	uint64_t writes = guest_writes(e->g);

	if (!e->vcpus_running)
		return false;
	for (uint32_t i = 0; i < e->g->ndevices; i++) {
		uint32_t state;

		if (dmalog_handle_get_state(e->g->dev[i], &state) ||
		    state != VFIO_DEVICE_STATE_RUNNING)
			return false;
	}
	for (int i = 0; i < 2000 && guest_writes(e->g) == writes; i++)
		usleep(1000);
	return guest_writes(e->g) != writes;
}

/* The source's guest is stopped: vCPUs paused, devices in STOP, nothing being written. */
static bool source_stopped(struct end *e)
{
	for (uint32_t i = 0; i < e->g->ndevices; i++) {
		uint32_t state;

		if (dmalog_handle_get_state(e->g->dev[i], &state) ||
		    state != VFIO_DEVICE_STATE_STOP)
			return false;
	}
	return !e->vcpus_running && e->pauses == 1 && !e->resumes;
}

/* A device served over vfio-user: its server on a thread, and the client's handle. */
struct remote {
	struct dmalog_vfu_server *server;
	struct dmalog_vfu_client *client;
	struct dmalog_handle *handle;
	int sv[2];
	pthread_t thread;
};

struct run {
	struct end src, dst;
	struct dmalog_mig *ms, *md;
	int fds[2];
	bool remote; /* every device behind vfio-user on both ends */
	struct remote rem[2][MIG_MAX_DEVICES];
	struct dmalog_handle *handles[2][MIG_MAX_DEVICES];
	uint32_t channels;			      /* connections: fds and page_fds */
	int page_fds[2][DMALOG_MIG_MAX_CHANNELS - 1]; /* [0] the source's, [1] the destination's */
	const struct dmalog_mig_result *rs, *rd;
};

/* Overrides for the next run_start(): 0 keeps the engine's defaults. */
static uint64_t next_device_data_limit;
static uint32_t next_downtime_cap_ms, next_flags, next_max_rounds;
static double next_downtime_limit_ms;
static uint32_t next_channels, next_dest_channels; /* 0: one connection; dest 0: as the source */
static bool next_remote;
static const char *next_dest_vfu_path; /* the destination's server for vfio-user devices */

static void *serve_remote(void *arg)
{
	struct remote *rm = arg;

	dmalog_vfu_server_serve(rm->server, rm->sv[1]);
	return NULL;
}

/* Each device of @g served on a socket of its own; the engine gets the clients' handles. */
static void serve_devices(struct guest *g, struct remote *rm, struct dmalog_handle **handles)
{
	for (uint32_t i = 0; i < g->ndevices; i++) {
		struct dmalog_vfu_server_config c = {.size = sizeof(c),
						     .dev = dmalog_emudev_device(g->emu[i])};

		assert_int_equal(dmalog_vfu_server_create(&c, &rm[i].server), 0);
		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, rm[i].sv), 0);
		assert_int_equal(pthread_create(&rm[i].thread, NULL, serve_remote, &rm[i]), 0);
		assert_int_equal(dmalog_vfu_client_connect(rm[i].sv[0], 0, &rm[i].client), 0);
		assert_int_equal(dmalog_handle_from_vfu_client(rm[i].client,
							       dmalog_handle_name(g->dev[i]),
							       &rm[i].handle),
				 0);
		handles[i] = rm[i].handle;
	}
}

static void unserve_devices(struct guest *g, struct remote *rm)
{
	for (uint32_t i = 0; i < g->ndevices; i++) {
		dmalog_handle_destroy(rm[i].handle);
		dmalog_vfu_client_destroy(rm[i].client);
		close(rm[i].sv[0]); /* the server sees its client leave */
		pthread_join(rm[i].thread, NULL);
		close(rm[i].sv[1]);
		dmalog_vfu_server_destroy(rm[i].server);
	}
}

static void run_start(struct run *r, const struct mig_options *o, enum fault fault)
{
	struct dmalog_mig_config cs, cd;

	memset(r, 0, sizeof(*r));
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, r->fds), 0);
	r->channels = next_channels ? next_channels : 1;
	for (uint32_t i = 0; i + 1 < r->channels; i++) {
		int sv[2];

		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
		r->page_fds[0][i] = sv[0];
		r->page_fds[1][i] = sv[1];
		r->src.peer_page_fds[i + 1] = sv[1];
	}
	assert_int_equal(guest_create(o, true, &r->src.g), 0);
	{
		struct mig_options od = *o;

		for (uint32_t i = 0; i < o->ndevices; i++)
			if (o->devices[i] == MIG_DEV_VFIO_USER)
				od.vfu_paths[i] = next_dest_vfu_path;
		next_dest_vfu_path = NULL;
		assert_int_equal(guest_create(&od, false, &r->dst.g), 0);
	}
	r->src.vcpus_running = true;
	r->src.fault = fault;
	r->src.peer_fd = r->fds[1];
	cs = config(&r->src, r->fds[0]);
	cd = config(&r->dst, r->fds[1]);
	cs.downtime_cap_ms = next_downtime_cap_ms;
	cd.device_data_limit = next_device_data_limit;
	cs.flags = next_flags;
	if (next_max_rounds)
		cs.max_rounds = next_max_rounds;
	if (next_downtime_limit_ms)
		cs.downtime_limit_ms = next_downtime_limit_ms;
	r->remote = next_remote;
	next_remote = false;
	if (r->remote) {
		serve_devices(r->src.g, r->rem[0], r->handles[0]);
		serve_devices(r->dst.g, r->rem[1], r->handles[1]);
		cs.devices = r->handles[0];
		cd.devices = r->handles[1];
	}
	cs.page_fds = r->page_fds[0];
	cs.npage_fds = r->channels - 1;
	cd.page_fds = r->page_fds[1];
	cd.npage_fds = (next_dest_channels ? next_dest_channels : r->channels) - 1;
	next_channels = next_dest_channels = 0;
	next_downtime_cap_ms = next_flags = next_max_rounds = 0;
	next_device_data_limit = 0;
	next_downtime_limit_ms = 0;
	r->src.self = &r->ms;
	assert_int_equal(dmalog_mig_source_create(&cs, &r->ms), 0);
	assert_int_equal(dmalog_mig_dest_create(&cd, &r->md), 0);
}

/* Both ends: the destination on a thread of its own, the source on this one. */
static void run_both(struct run *r)
{
	assert_int_equal(dmalog_mig_start(r->md), 0);
	dmalog_mig_run(r->ms);
	dmalog_mig_wait(r->md);
	r->rs = dmalog_mig_get_result(r->ms);
	r->rd = dmalog_mig_get_result(r->md);
}

static void run_end(struct run *r)
{
	dmalog_mig_destroy(r->ms);
	dmalog_mig_destroy(r->md);
	if (r->remote) {
		unserve_devices(r->src.g, r->rem[0]);
		unserve_devices(r->dst.g, r->rem[1]);
	}
	guest_destroy(r->src.g);
	guest_destroy(r->dst.g);
	close(r->fds[0]);
	close(r->fds[1]);
	for (uint32_t i = 0; i + 1 < r->channels; i++) {
		close(r->page_fds[0][i]);
		close(r->page_fds[1][i]);
	}
}

/* Migrated and proven: the destination runs, and holds the source's memory and devices. */
static void assert_migrated(struct run *r)
{
	if (r->rs->outcome != DMALOG_MIG_MIGRATED || !r->rs->verified)
		fail_msg("source: %s, %s", dmalog_mig_outcome_name(r->rs->outcome), r->rs->message);
	assert_int_equal(r->rd->outcome, DMALOG_MIG_MIGRATED);
	assert_true(r->rd->verified);
	assert_int_equal(r->rs->pages_compared, TEST_MEM / 4096);
	assert_int_equal(r->rs->devices_compared, r->src.g->ndevices);
	assert_int_equal(r->rs->devices_mismatched, 0);
	/*
	 * Independent of the engine's proof: the bytes themselves (the destination's devices
	 * run again and change their own state, but do no DMA into its memory).
	 */
	assert_memory_equal(r->src.g->ram, r->dst.g->ram, TEST_MEM);
	assert_true(source_stopped(&r->src));
	assert_true(guest_untracked(r->src.g));
}

/* Rolled back: the source runs, untracked and intact; the destination does not run. */
static void assert_rolled_back(struct run *r, const char *why)
{
	assert_int_equal(r->rs->outcome, DMALOG_MIG_ROLLED_BACK);
	assert_int_not_equal(r->rd->outcome, DMALOG_MIG_MIGRATED);
	assert_true(r->rs->devices_running);
	assert_true(source_runs(&r->src));
	assert_true(guest_untracked(r->src.g));
	guest_pause_writers(r->src.g);
	assert_int_equal(guest_stray_words(r->src.g), 0);
	guest_resume_writers(r->src.g);
	if (!strstr(r->rs->message, why))
		fail_msg("expected '%s' in: %s", why, r->rs->message);
}

static void migrate_with(enum mig_tracker tracker)
{
	struct mig_options o = options(tracker, 2, 20000);
	struct run r;

	run_start(&r, &o, FAULT_NONE);
	run_both(&r);
	assert_migrated(&r);
	assert_true(r.rs->nrounds >= 3);
	run_end(&r);
}

static void tracker_all(void **state)
{
	migrate_with(MIG_TRACK_ALL);
}

static void tracker_device(void **state)
{
	migrate_with(MIG_TRACK_DEVICE);
}

static void tracker_iommu(void **state)
{
	migrate_with(MIG_TRACK_IOMMU);
}

/* type1 cannot tell what a device wrote: every round resends the whole guest. */
static void tracker_type1(void **state)
{
	struct mig_options o = options(MIG_TRACK_TYPE1, 2, 20000);
	struct run r;

	run_start(&r, &o, FAULT_NONE);
	run_both(&r);
	assert_migrated(&r);
	for (uint32_t i = 0; i < r.rs->nrounds; i++)
		assert_int_equal(r.rs->rounds[i].pages, TEST_MEM / 4096);
	run_end(&r);
}

static void no_devices(void **state)
{
	struct mig_options o = options(MIG_TRACK_ALL, 0, 20000);
	struct run r;

	run_start(&r, &o, FAULT_NONE);
	run_both(&r);
	assert_migrated(&r);
	run_end(&r);
}

/* A REPORT that fails marks everything dirty and restarts the tracker; nothing is lost. */
static void tracker_fault_recovered(void **state)
{
	struct mig_options o = options(MIG_TRACK_DEVICE, 2, 20000);
	struct run r;

	run_start(&r, &o, FAULT_TRACKER);
	run_both(&r);
	assert_migrated(&r);
	assert_true(r.rs->tracker_errors >= 1);
	run_end(&r);
}

static void corrupt_stream_rolls_back(void **state)
{
	struct mig_options o = options(MIG_TRACK_ALL, 2, 20000);
	struct run r;

	run_start(&r, &o, FAULT_CORRUPT_PAGE);
	run_both(&r);
	assert_rolled_back(&r, "checksum mismatch in a PAGES frame");
	run_end(&r);
}

static void rejected_device_state_rolls_back(void **state)
{
	struct mig_options o = options(MIG_TRACK_ALL, 2, 20000);
	struct run r;

	run_start(&r, &o, FAULT_DEVICE_STATE);
	run_both(&r);
	assert_rolled_back(&r, "rejected its state");
	run_end(&r);
}

static void lost_connection_rolls_back(void **state)
{
	struct mig_options o = options(MIG_TRACK_ALL, 2, 20000);
	struct run r;

	run_start(&r, &o, FAULT_DROP_LINK);
	run_both(&r);
	assert_int_equal(r.rs->outcome, DMALOG_MIG_ROLLED_BACK);
	assert_true(source_runs(&r.src));
	assert_int_not_equal(r.rd->outcome, DMALOG_MIG_MIGRATED);
	run_end(&r);
}

/*
 * Several connections, every tracker: the pages sharded over 2 and 4 of them, each sent and
 * received on its own thread (the suite runs under ThreadSanitizer), memory equal at the end,
 * and every connection carried its share.
 */
static void channels_every_tracker(void **state)
{
	static const enum mig_tracker trackers[] = {MIG_TRACK_ALL, MIG_TRACK_DEVICE,
						    MIG_TRACK_IOMMU, MIG_TRACK_TYPE1};
	static const uint32_t counts[] = {2, 4};

	for (size_t t = 0; t < sizeof(trackers) / sizeof(trackers[0]); t++) {
		for (size_t c = 0; c < sizeof(counts) / sizeof(counts[0]); c++) {
			struct mig_options o = options(trackers[t], 2, 20000);
			struct run r;

			next_channels = counts[c];
			run_start(&r, &o, FAULT_NONE);
			run_both(&r);
			assert_migrated(&r);
			assert_true(r.rs->nrounds >= 3);
			/* Round 1 sends every page once, whatever the channel count. */
			assert_int_equal(r.rs->rounds[0].pages, TEST_MEM / 4096);
			run_end(&r);
		}
	}
}

/* A damaged frame on page channel 2: the destination refuses, naming it; the source runs. */
static void corrupt_frame_on_channel_2_rolls_back(void **state)
{
	struct mig_options o = options(MIG_TRACK_ALL, 2, 20000);
	struct run r;

	next_channels = 4;
	run_start(&r, &o, FAULT_CORRUPT_CHANNEL_2);
	run_both(&r);
	assert_rolled_back(&r, "page channel 2: checksum mismatch in a PAGES frame");
	assert_true(r.src.channel_damaged);
	run_end(&r);
}

/* Page channel 1 drops with round 2 under way: both ends notice, and the source runs on. */
static void channel_drop_rolls_back(void **state)
{
	struct mig_options o = options(MIG_TRACK_ALL, 2, 20000);
	struct run r;

	next_channels = 2;
	run_start(&r, &o, FAULT_DROP_CHANNEL_1);
	run_both(&r);
	assert_rolled_back(&r, "page channel 1");
	run_end(&r);
}

/*
 * Every device in another "process" behind vfio-user on both ends (a server thread each, the
 * engine holding the clients' handles): the device state goes through MIG_DATA_READ and
 * MIG_DATA_WRITE, and the migration ends verified, devices compared.
 */
static void devices_over_vfio_user(void **state)
{
	struct mig_options o = options(MIG_TRACK_IOMMU, 2, 20000);
	struct run r;

	next_remote = true;
	next_channels = 2;
	run_start(&r, &o, FAULT_NONE);
	run_both(&r);
	assert_migrated(&r);
	run_end(&r);
}

/* A served PCI function (dmalog_vfu_device) listening on a UNIX socket for one client. */
struct served {
	struct dmalog_vfu_device *d;
	char path[108];
	int lfd;
	pthread_t thread;
};

static void *serve_one(void *arg)
{
	struct served *sv = arg;
	char err[200];
	/*
	 * The guest connects only once the guests before it are built: with meson's other test
	 * programs on both cores that took over TEST_TIMEOUT_MS once, and a client whose server
	 * had given up waited out its own 30 s for VERSION's reply.
	 */
	int fd = socket_accept(sv->lfd, 60000, err, sizeof(err));

	if (fd >= 0) {
		dmalog_vfu_server_serve(dmalog_vfu_device_server(sv->d), fd);
		close(fd);
	}
	return NULL;
}

static void served_start(struct served *sv, const char *dir, const char *name)
{
	struct dmalog_vfu_device_config c = {
		.size = sizeof(c), .kind = "nic", .dma_rate = 20000, .seed = 3};
	char err[200];

	assert_int_equal(dmalog_vfu_device_create(&c, &sv->d), 0);
	snprintf(sv->path, sizeof(sv->path), "%s/%s", dir, name);
	sv->lfd = socket_listen(sv->path, err, sizeof(err));
	assert_true(sv->lfd >= 0);
	assert_int_equal(pthread_create(&sv->thread, NULL, serve_one, sv), 0);
}

static void served_end(struct served *sv)
{
	pthread_join(sv->thread, NULL);
	close(sv->lfd);
	unlink(sv->path);
	dmalog_vfu_device_destroy(sv->d);
}

/*
 * A device that lives behind a vfio-user socket in the guest (--device vfio-user:PATH): guest
 * RAM shared with its server by memfd, its own DMA into it logged by its own tracker, its
 * state hash read from its BAR0. Migrated and verified; then a corrupt stream rolls back with
 * its DMA running again and every word in RAM accounted for.
 */
static void served_device_in_the_guest(void **state)
{
	const char *tmp = getenv("TMPDIR");
	struct mig_options o = options(MIG_TRACK_ALL, 2, 20000);
	struct served sv[2];
	struct run r;
	char dir[80];

	/* A private directory for the two sockets, named after this process. */
	snprintf(dir, sizeof(dir), "%s/dmalog-engine-%d", tmp && *tmp ? tmp : "/tmp",
		 (int)getpid());
	assert_int_equal(mkdir(dir, 0700), 0);
	for (int fault = 0; fault < 2; fault++) {
		served_start(&sv[0], dir, "src.sock");
		served_start(&sv[1], dir, "dst.sock");
		o.devices[1] = MIG_DEV_VFIO_USER;
		o.vfu_paths[1] = sv[0].path;
		next_dest_vfu_path = sv[1].path;
		run_start(&r, &o, fault ? FAULT_CORRUPT_PAGE : FAULT_NONE);
		run_both(&r);
		if (fault) {
			assert_rolled_back(&r, "checksum mismatch in a PAGES frame");
		} else {
			assert_migrated(&r);
			assert_true(dmalog_vfu_device_dma_writes(sv[0].d) > 0);
			assert_int_equal(dmalog_vfu_device_dma_writes(sv[1].d), 0);
		}
		run_end(&r);
		served_end(&sv[0]);
		served_end(&sv[1]);
	}
	rmdir(dir);
}

/*
 * A page channel whose final pages come late (after COMPLETE on the main connection): the
 * destination resumes only once every channel has completed, so the proof finds them all.
 */
static void slow_channel_waited_for(void **state)
{
	struct mig_options o = options(MIG_TRACK_ALL, 2, 20000);
	struct run r;

	next_channels = 2;
	run_start(&r, &o, FAULT_SLOW_CHANNEL_1);
	run_both(&r);
	assert_migrated(&r);
	assert_true(r.src.channel_damaged);
	assert_true(r.rs->downtime_ms >= 300);
	run_end(&r);
}

/* Ends that disagree on the number of connections never start copying into a guest. */
static void channel_count_mismatch_refused(void **state)
{
	struct mig_options o = options(MIG_TRACK_ALL, 2, 20000);
	struct run r;

	next_channels = 2;
	next_dest_channels = 1;
	run_start(&r, &o, FAULT_NONE);
	run_both(&r);
	assert_rolled_back(&r, "connections differ: 2 at the source, 1 here");
	run_end(&r);
}

/* A source cannot make the destination take more device state than it allows. */
static void device_data_bounded(void **state)
{
	struct mig_options o = options(MIG_TRACK_ALL, 2, 20000);
	struct run r;

	next_device_data_limit = 64 << 10; /* the NIC's state is 1 MiB and more */
	run_start(&r, &o, FAULT_NONE);
	run_both(&r);
	assert_rolled_back(&r, "more than 65536 bytes of state");
	run_end(&r);
}

/* A final round that cannot fit the downtime cap fails before COMPLETE, and rolls back. */
static void downtime_cap_rolls_back(void **state)
{
	struct mig_options o = options(MIG_TRACK_ALL, 2, 20000);
	struct run r;

	next_downtime_cap_ms = 50;
	run_start(&r, &o, FAULT_SLOW_STOP);
	run_both(&r);
	assert_rolled_back(&r, "downtime cap of 50 ms");
	run_end(&r);
}

/*
 * Auto-converge: a CPU that dirties all of memory every round gets throttled, more each
 * round, as QEMU's cpu-throttle; the migration still ends verified, and says it did not
 * converge when the limit was never met.
 */
static void auto_converge_throttles(void **state)
{
	struct mig_options o = options(MIG_TRACK_ALL, 1, 0); /* unthrottled writers */
	struct run r;

	next_flags = DMALOG_MIG_AUTO_CONVERGE;
	next_max_rounds = 6;
	next_downtime_limit_ms = 0.001; /* never met */
	run_start(&r, &o, FAULT_OUTRUN);
	run_both(&r);
	assert_migrated(&r);
	assert_false(r.rs->converged);
	assert_int_equal(r.rs->switchover, DMALOG_MIG_SWITCHOVER_MAX_ROUNDS);
	assert_true(r.rs->expected_downtime_ms > 0.001);
	/* Two rounds to notice, then 20, 30, ... */
	assert_true(r.src.throttle_max_seen >= 20);
	assert_int_equal(r.rs->throttle_percent, r.src.throttle_max_seen);
	/*
	 * And it says who keeps it from converging, by tracker name, unless the writers were
	 * kept off the CPU for the whole last round (a loaded machine): then what is left.
	 */
	assert_non_null(strstr(r.rs->not_converged_why, "cannot fit"));
	if (!strstr(r.rs->not_converged_why, "what is left"))
		assert_non_null(strstr(r.rs->not_converged_why, "dirties"));
	run_end(&r);
}

/* --on-no-converge abort: at max_rounds without fitting, roll back, unthrottled. */
static void not_converged_rolls_back(void **state)
{
	struct mig_options o = options(MIG_TRACK_ALL, 1, 0);
	struct run r;

	next_flags = DMALOG_MIG_AUTO_CONVERGE | DMALOG_MIG_ABORT_IF_NOT_CONVERGED;
	next_max_rounds = 4;
	next_downtime_limit_ms = 0.001;
	run_start(&r, &o, FAULT_NONE);
	run_both(&r);
	assert_rolled_back(&r, "did not converge in 4 rounds");
	assert_int_equal(r.rs->switchover, DMALOG_MIG_SWITCHOVER_NONE);
	assert_int_equal(r.src.throttle, 0); /* the guest runs at full speed again */
	run_end(&r);
}

/* The embedder may force the switchover; the result says so. */
static void forced_switchover(void **state)
{
	struct mig_options o = options(MIG_TRACK_ALL, 1, 20000);
	struct run r;

	next_max_rounds = 100;
	next_downtime_limit_ms = 0.001;
	run_start(&r, &o, FAULT_FORCE);
	run_both(&r);
	assert_migrated(&r);
	assert_int_equal(r.rs->switchover, DMALOG_MIG_SWITCHOVER_FORCED);
	assert_int_equal(r.rs->nrounds, 4); /* 3 precopy rounds, then the final one */
	run_end(&r);
}

/*
 * A cancel at each phase: in precopy, with the guest stopped, and at the last moment before
 * COMPLETE it rolls back; once the destination runs the guest it cannot undo the hand-off.
 */
static void cancel_at_each_phase(void **state)
{
	static const enum fault when[] = {FAULT_CANCEL_PRECOPY, FAULT_CANCEL_STOPPED,
					  FAULT_CANCEL_COMPLETE, FAULT_CANCEL_HANDED_OFF};
	struct mig_options o = options(MIG_TRACK_ALL, 2, 20000);

	for (size_t i = 0; i < sizeof(when) / sizeof(when[0]); i++) {
		struct run r;

		run_start(&r, &o, when[i]);
		run_both(&r);
		if (when[i] == FAULT_CANCEL_HANDED_OFF) {
			assert_migrated(&r);
			assert_false(r.rs->cancelled);
		} else {
			assert_rolled_back(&r, "cancelled");
			assert_true(r.rs->cancelled);
			assert_int_equal(r.rs->error, -EINTR);
		}
		run_end(&r);
	}
}

/* The connection closes just before COMPLETE: the destination cannot resume; we do. */
static void closed_before_complete_rolls_back(void **state)
{
	struct mig_options o = options(MIG_TRACK_ALL, 2, 20000);
	struct run r;

	run_start(&r, &o, FAULT_CLOSE_COMPLETE);
	run_both(&r);
	assert_int_equal(r.rs->outcome, DMALOG_MIG_ROLLED_BACK);
	assert_true(source_runs(&r.src));
	assert_int_not_equal(r.rd->outcome, DMALOG_MIG_MIGRATED);
	run_end(&r);
}

/*
 * A destination that answers as fast as it can: RUNNING is often waiting before the source
 * has finished sending COMPLETE. It must be taken as the hand-off, every time. Idle guests
 * keep 200 runs short, also under ThreadSanitizer.
 */
static void immediate_answer_200_times(void **state)
{
	struct mig_options o = options(MIG_TRACK_ALL, 1, 2000);

	for (int i = 0; i < 200; i++) {
		struct run r;

		run_start(&r, &o, FAULT_NONE);
		run_both(&r);
		if (r.rs->outcome != DMALOG_MIG_MIGRATED || !r.rs->verified)
			fail_msg("run %d: source %s: %s", i, dmalog_mig_outcome_name(r.rs->outcome),
				 r.rs->message);
		assert_int_equal(r.rd->outcome, DMALOG_MIG_MIGRATED);
		assert_true(source_stopped(&r.src));
		run_end(&r);
	}
}

/* ---- scripted destinations for the hand-off ---- */

enum script {
	ANSWER_LATE,		 /* RUNNING after a while, within the source's timeout */
	ANSWER_NEVER,		 /* takes COMPLETE and says nothing, connection open */
	ABORT_AFTER_COMPLETE,	 /* takes COMPLETE and refuses */
	CLOSE_AFTER_COMPLETE,	 /* takes COMPLETE and hangs up without a word */
	RUNNING_BEFORE_COMPLETE, /* says RUNNING in the middle of precopy */
	FAKE_PROOF,		 /* resumes, throws the pages away, then claims all is well */
	OLD_RESULT,		 /* resumes, then answers the proof with a RESULT of its own */
};

struct scripted {
	enum script script;
	int fd;
	uint8_t *mem;
	bool resumed;	   /* it answered RUNNING: its guest runs */
	bool said_running; /* RUNNING_BEFORE_COMPLETE has lied */
	uint32_t answers;  /* frames sent back: the next one's number */
	pthread_t thread;
};

static void answer_bytes(struct scripted *d, uint16_t type, const void *payload, uint32_t len)
{
	uint8_t *frame = test_malloc(DMALOG_FRAME_HDR_BYTES + len);

	dmalog_frame_header(frame, type, d->answers++, payload, len);
	memcpy(frame + DMALOG_FRAME_HDR_BYTES, payload, len);
	assert_int_equal(send(d->fd, frame, DMALOG_FRAME_HDR_BYTES + len, MSG_NOSIGNAL),
			 DMALOG_FRAME_HDR_BYTES + len);
	test_free(frame);
}

static void answer(struct scripted *d, uint16_t type, const char *text)
{
	answer_bytes(d, type, text ? text : "", text ? (uint32_t)strlen(text) : 0);
}

/*
 * The proof, answered from what the scripted destination holds: digests of its memory, keyed
 * as asked; FAKE_PROOF has thrown its pages away by then. OLD_RESULT answers the way a
 * destination of the previous protocol claimed success: with a RESULT of its own.
 */
static int s_verify(void *opaque, uint64_t nonce)
{
	struct scripted *d = opaque;
	const uint32_t pages = TEST_MEM / 4096;
	struct dmalog_frame_run run = {.first_page = 0, .count = pages};
	uint32_t len = sizeof(run) + 8 * pages;
	uint8_t *p = test_malloc(len);

	if (d->script == OLD_RESULT) {
		struct dmalog_frame_result res = {pages, 0, 1, 0};

		dmalog_frame_encode(DMALOG_FRAME_RESULT, &res, p);
		answer_bytes(d, DMALOG_FRAME_RESULT, p, sizeof(res));
		test_free(p);
		return 0;
	}
	dmalog_frame_encode(DMALOG_FRAME_VERIFY_PAGES, &run, p);
	for (uint32_t i = 0; i < pages; i++) {
		uint64_t h = dmalog_page_digest(nonce, d->mem + 4096ULL * i, 4096);

		memcpy(p + sizeof(run) + 8 * i, &h, 8);
	}
	answer_bytes(d, DMALOG_FRAME_VERIFY_PAGES, p, len);
	/* Its one device's state it never had: any digest will do, none will match. */
	dmalog_frame_encode(DMALOG_FRAME_VERIFY_DEVICE, &(struct dmalog_frame_verify_device){0}, p);
	answer_bytes(d, DMALOG_FRAME_VERIFY_DEVICE, p, sizeof(struct dmalog_frame_verify_device));
	test_free(p);
	return 0;
}

static int s_data(void *opaque, uint32_t dev, const void *data, uint32_t len)
{
	return 0;
}

static int s_done(void *opaque, uint32_t dev)
{
	return 0;
}

static int s_complete(void *opaque)
{
	struct scripted *d = opaque;

	switch (d->script) {
	case ANSWER_LATE:
		usleep(TEST_TIMEOUT_MS * 1000 / 2);
		d->resumed = true;
		answer(d, DMALOG_FRAME_RUNNING, NULL);
		return 0;
	case ABORT_AFTER_COMPLETE:
		answer(d, DMALOG_FRAME_ABORT, "not today");
		return -ECANCELED;
	case CLOSE_AFTER_COMPLETE:
		shutdown(d->fd, SHUT_RDWR);
		return -ECONNRESET;
	case FAKE_PROOF:
		memset(d->mem, 0, TEST_MEM);
		/* fall through */
	case OLD_RESULT:
		d->resumed = true;
		answer(d, DMALOG_FRAME_RUNNING, NULL);
		return 0;
	default:
		return 0;
	}
}

static const struct dmalog_sink_ops scripted_ops = {
	.device_data = s_data,
	.device_done = s_done,
	.complete = s_complete,
	.verify = s_verify,
};

static void *scripted_thread(void *arg)
{
	struct scripted *d = arg;
	static __thread uint8_t buf[1 << 16];
	struct dmalog_sink *sink;
	bool said_running = false;

	assert_int_equal(dmalog_sink_create(d->mem, TEST_MEM, 12, 1, &scripted_ops, d, &sink), 0);
	for (;;) {
		ssize_t n = read(d->fd, buf, sizeof(buf));
		struct dmalog_sink_stats st;

		if (n <= 0 || dmalog_sink_feed(sink, buf, (size_t)n))
			break;
		dmalog_sink_get_stats(sink, &st);
		if (d->script == RUNNING_BEFORE_COMPLETE && st.rounds == 1 && !said_running) {
			answer(d, DMALOG_FRAME_RUNNING, NULL);
			said_running = true;
			__atomic_store_n(&d->said_running, true, __ATOMIC_RELEASE);
		}
	}
	dmalog_sink_destroy(sink);
	return NULL;
}

static uint32_t handoff_cap_ms, handoff_timeout_ms;

static void handoff(enum script script, enum dmalog_mig_outcome want)
{
	struct mig_options o = options(MIG_TRACK_ALL, 1, 20000);
	struct scripted d = {.script = script};
	struct dmalog_mig_config cs;
	struct dmalog_mig *m;
	struct end src = {.vcpus_running = true};
	const struct dmalog_mig_result *r;
	int fds[2];

	d.mem = test_malloc(TEST_MEM);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
	d.fd = fds[1];
	assert_int_equal(guest_create(&o, true, &src.g), 0);
	if (script == RUNNING_BEFORE_COMPLETE)
		src.wait_for = &d.said_running;
	cs = config(&src, fds[0]);
	if (handoff_cap_ms)
		cs.downtime_cap_ms = handoff_cap_ms;
	if (handoff_timeout_ms)
		cs.timeout_ms = handoff_timeout_ms;
	handoff_cap_ms = handoff_timeout_ms = 0;
	assert_int_equal(dmalog_mig_source_create(&cs, &m), 0);
	assert_int_equal(pthread_create(&d.thread, NULL, scripted_thread, &d), 0);
	dmalog_mig_run(m);
	r = dmalog_mig_get_result(m);
	if (r->outcome != want)
		fail_msg("want %s, got %s: %s", dmalog_mig_outcome_name(want),
			 dmalog_mig_outcome_name(r->outcome), r->message);
	/* Which side runs the guest: exactly one, or none when nobody can know. */
	switch (want) {
	case DMALOG_MIG_MIGRATED:
		assert_true(d.resumed);
		assert_true(source_stopped(&src));
		/* Only a destination that proves what it holds is believed. */
		if (script == FAKE_PROOF) {
			assert_false(r->verified);
			assert_int_equal(r->pages_mismatched, TEST_MEM / 4096);
			assert_int_equal(r->devices_mismatched, 1);
			assert_non_null(strstr(r->message, "(first: 0, 1, 2, 3)"));
		} else if (script == OLD_RESULT) {
			assert_false(r->verified);
			assert_non_null(strstr(r->message, "unexpected RESULT answer"));
		}
		break;
	case DMALOG_MIG_ROLLED_BACK:
		assert_false(d.resumed);
		assert_true(source_runs(&src));
		break;
	default:
		assert_false(d.resumed);
		assert_true(source_stopped(&src));
		assert_non_null(strstr(r->message, "outcome unknown"));
		break;
	}
	shutdown(fds[0], SHUT_RDWR);
	pthread_join(d.thread, NULL);
	dmalog_mig_destroy(m);
	guest_destroy(src.g);
	close(fds[0]);
	close(fds[1]);
	test_free(d.mem);
}

static void answer_late(void **state)
{
	handoff(ANSWER_LATE, DMALOG_MIG_MIGRATED);
}

static void answer_never_leaves_guest_paused(void **state)
{
	handoff(ANSWER_NEVER, DMALOG_MIG_OUTCOME_UNKNOWN);
}

/*
 * The answer to COMPLETE must come within the downtime cap too, however long the link's
 * timeout: the guest is stopped meanwhile. Past the cap the outcome is unknown (the cap
 * cannot make the source resume a guest the destination may run).
 */
static void answer_past_the_cap_leaves_guest_paused(void **state)
{
	struct timespec a, b;

	clock_gettime(CLOCK_MONOTONIC, &a);
	handoff_cap_ms = 300;
	handoff_timeout_ms = 60000;
	handoff(ANSWER_NEVER, DMALOG_MIG_OUTCOME_UNKNOWN);
	clock_gettime(CLOCK_MONOTONIC, &b);
	/* Well under the 60 s timeout: bounded by the cap (and the precopy before it). */
	assert_true(b.tv_sec - a.tv_sec < 30);
}

static void abort_after_complete_rolls_back(void **state)
{
	handoff(ABORT_AFTER_COMPLETE, DMALOG_MIG_ROLLED_BACK);
}

static void closed_after_complete_leaves_guest_paused(void **state)
{
	handoff(CLOSE_AFTER_COMPLETE, DMALOG_MIG_OUTCOME_UNKNOWN);
}

/*
 * A destination that took the guest but not its memory cannot fake the proof: its digests
 * are keyed by a nonce it only learns now, and the source names the pages that differ.
 */
static void faked_proof_caught(void **state)
{
	handoff(FAKE_PROOF, DMALOG_MIG_MIGRATED);
}

static void old_style_result_not_believed(void **state)
{
	handoff(OLD_RESULT, DMALOG_MIG_MIGRATED);
}

/* RUNNING before COMPLETE is a lie the source must not believe: it keeps the guest. */
static void running_before_complete_rolls_back(void **state)
{
	handoff(RUNNING_BEFORE_COMPLETE, DMALOG_MIG_ROLLED_BACK);
}

/* Configuration is checked at the boundary, before any guest is touched. */
static void bad_config_refused(void **state)
{
	uint8_t ram[DMALOG_RAM_REGION_ALIGN * 2];
	struct dmalog_ram_region regions[2] = {
		{.host = ram, .length = DMALOG_RAM_REGION_ALIGN},
		{.host = ram + DMALOG_RAM_REGION_ALIGN,
		 .gpa = 1ULL << 30,
		 .length = DMALOG_RAM_REGION_ALIGN},
	};
	struct dmalog_mig_config c = {
		.size = sizeof(c), .fd = 0, .regions = regions, .nregions = 2};
	struct dmalog_mig *m = NULL;

	assert_int_equal(dmalog_mig_source_create(&c, &m), 0);
	dmalog_mig_destroy(m);
	c.size = 8;
	assert_int_equal(dmalog_mig_source_create(&c, &m), -EINVAL);
	c.size = sizeof(c);
	c.fd = -1;
	assert_int_equal(dmalog_mig_source_create(&c, &m), -EINVAL);
	c.fd = 0;
	regions[1].gpa = 4096; /* overlaps region 0 */
	assert_int_equal(dmalog_mig_source_create(&c, &m), -EINVAL);
	regions[1].gpa = 1ULL << 30;
	regions[1].length = 4096; /* not a whole bitmap word */
	assert_int_equal(dmalog_mig_dest_create(&c, &m), -EINVAL);
	regions[1].length = DMALOG_RAM_REGION_ALIGN;
	c.ndevices = 1; /* with no device array */
	assert_int_equal(dmalog_mig_dest_create(&c, &m), -EINVAL);
	c.ndevices = 0;
	c.downtime_limit_ms = -1;
	assert_int_equal(dmalog_mig_source_create(&c, &m), -EINVAL);
	c.downtime_limit_ms = 0;
	regions[0].reserved[1] = 1; /* reserved fields are for later versions */
	assert_int_equal(dmalog_mig_source_create(&c, &m), -EINVAL);
	regions[0].reserved[1] = 0;
	c.hooks = &(struct dmalog_mig_hooks){.size = 4}; /* hooks of no known version */
	assert_int_equal(dmalog_mig_source_create(&c, &m), -EINVAL);
	c.hooks = NULL;
	c.npage_fds = 1; /* with no fd array */
	assert_int_equal(dmalog_mig_source_create(&c, &m), -EINVAL);
	c.page_fds = (const int[]){-1};
	assert_int_equal(dmalog_mig_dest_create(&c, &m), -EINVAL);
	c.page_fds = (const int[DMALOG_MIG_MAX_CHANNELS]){0};
	c.npage_fds = DMALOG_MIG_MAX_CHANNELS; /* one connection too many */
	assert_int_equal(dmalog_mig_source_create(&c, &m), -EINVAL);
	c.npage_fds = DMALOG_MIG_MAX_CHANNELS - 1;
	assert_int_equal(dmalog_mig_source_create(&c, &m), 0);
	dmalog_mig_destroy(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(bad_config_refused),
		cmocka_unit_test(tracker_all),
		cmocka_unit_test(tracker_device),
		cmocka_unit_test(tracker_iommu),
		cmocka_unit_test(tracker_type1),
		cmocka_unit_test(no_devices),
		cmocka_unit_test(tracker_fault_recovered),
		cmocka_unit_test(corrupt_stream_rolls_back),
		cmocka_unit_test(rejected_device_state_rolls_back),
		cmocka_unit_test(lost_connection_rolls_back),
		cmocka_unit_test(closed_before_complete_rolls_back),
		cmocka_unit_test(device_data_bounded),
		cmocka_unit_test(auto_converge_throttles),
		cmocka_unit_test(not_converged_rolls_back),
		cmocka_unit_test(forced_switchover),
		cmocka_unit_test(cancel_at_each_phase),
		cmocka_unit_test(downtime_cap_rolls_back),
		cmocka_unit_test(answer_past_the_cap_leaves_guest_paused),
		cmocka_unit_test(answer_late),
		cmocka_unit_test(answer_never_leaves_guest_paused),
		cmocka_unit_test(abort_after_complete_rolls_back),
		cmocka_unit_test(closed_after_complete_leaves_guest_paused),
		cmocka_unit_test(running_before_complete_rolls_back),
		cmocka_unit_test(faked_proof_caught),
		cmocka_unit_test(old_style_result_not_believed),
		cmocka_unit_test(immediate_answer_200_times),
		cmocka_unit_test(channels_every_tracker),
		cmocka_unit_test(corrupt_frame_on_channel_2_rolls_back),
		cmocka_unit_test(channel_drop_rolls_back),
		cmocka_unit_test(channel_count_mismatch_refused),
		cmocka_unit_test(slow_channel_waited_for),
		cmocka_unit_test(devices_over_vfio_user),
		cmocka_unit_test(served_device_in_the_guest),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
