// SPDX-License-Identifier: MIT
/*
 * The two ends of `dmalog migrate`: the demo guest handed to the library's engine, the
 * --inject faults done through the engine's hooks, and, after a rollback, an independent
 * check that the guest really runs again, untracked, with nothing but its own writes in
 * memory.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli.h"

struct end {
	const struct mig_options *o;
	struct guest *g;
	int dest_pid;
	uint32_t round;		/* the precopy round under way */
	bool page_damaged;	/* corrupt-stream or lose-page has done its damage */
	bool device_damaged;	/* device-state has done its damage */
	bool stopped;		/* the switchover has begun: the final round */
	FILE *events;		/* --events, or NULL */
	const int *fds;		/* the connections, main one first */
	int channel_damaged;	/* atomic: page channels' threads race for it */
	double last_dirty_rate; /* pages/s, at the last round's sync, for the live line */
};

static void pause_vcpus(void *opaque)
{
	guest_pause_vcpus(((struct end *)opaque)->g);
}

static void resume_vcpus(void *opaque)
{
	guest_resume_vcpus(((struct end *)opaque)->g);
}

static void round_done(void *opaque, const struct dmalog_mig_round *rd, bool final)
{
	struct end *e = opaque;
	char fields[256];

	if (!final)
		e->last_dirty_rate = rd->dirty_rate;
	if (!e->o->quiet && !e->o->json && isatty(fileno(stdout)))
		printf("\r\033[K"); /* the live line gives way to the round's */
	report_progress(e->o, rd, e->g->ram_bytes >> MIG_PAGE_SHIFT, final);
	snprintf(fields, sizeof(fields),
		 "\"data\":{\"round\":%u,\"final\":%s,\"pages\":%llu,\"bytes\":%llu,"
		 "\"ms\":%.3f,\"dirty_pages_per_s\":%.0f}",
		 rd->round, final ? "true" : "false", (unsigned long long)rd->pages,
		 (unsigned long long)rd->bytes, rd->ms, final ? 0 : rd->dirty_rate);
	report_event(e->events, "round", fields);
}

/* The first device tracker fails its next REPORT; without one, the IOMMU its next read. */
static void inject_tracker_fault(struct guest *g)
{
	for (uint32_t i = 0; i < g->ndevices; i++) {
		struct dmalog_devtrack *dt = g->emu[i] ? dmalog_emudev_devtrack(g->emu[i]) : NULL;

		if (dt) {
			dmalog_devtrack_inject(dt, DMALOG_DEVTRACK_FAULT_ERROR_EVENT);
			return;
		}
	}
	if (g->iommu_dirty)
		dmalog_iopt_set_debug(g->iopt, DMALOG_IOPT_DEBUG_FAIL_READ);
}

static int event(void *opaque, enum dmalog_mig_event ev, uint32_t round)
{
	struct end *e = opaque;
	bool due = round == e->o->inject_round;

	if (ev == DMALOG_MIG_EVENT_ROUND)
		e->round = round;
	if (ev == DMALOG_MIG_EVENT_ROUND && round == 1)
		report_event(e->events, "active", NULL);
	if (ev == DMALOG_MIG_EVENT_STOPPED) {
		e->stopped = true;
		/* QEMU's "device" state: the guest is stopped, its devices' state is moving. */
		report_event(e->events, "device", NULL);
	}
	if (ev == DMALOG_MIG_EVENT_ROUND && due && e->o->inject == MIG_INJECT_KILL_DEST &&
	    e->dest_pid > 0)
		kill(e->dest_pid, SIGKILL);
	if (ev == DMALOG_MIG_EVENT_SYNC && due && e->o->inject == MIG_INJECT_TRACKER_FAULT)
		inject_tracker_fault(e->g);
	return 0;
}

/*
 * corrupt-stream: a byte of a page flipped after its checksum, as a bad link would.
 * device-state: a byte of device 0's data flipped before its checksum, so the stream is
 * intact and the destination's device must find the damage itself.
 */
static void frame_out(void *opaque, uint16_t type, uint8_t *frame, uint32_t length)
{
	struct end *e = opaque;
	uint8_t *payload = frame + DMALOG_FRAME_HDR_BYTES;
	uint32_t plen = length - DMALOG_FRAME_HDR_BYTES;
	struct dmalog_frame_device dev;

	if (e->o->inject == MIG_INJECT_CORRUPT_STREAM && type == DMALOG_FRAME_PAGES &&
	    e->round == e->o->inject_round && !e->page_damaged) {
		payload[sizeof(struct dmalog_frame_run) + 100] ^= 0x20;
		e->page_damaged = true;
	}
	/* lose-page: one byte of the first final-round page is stale, the frame re-sealed. */
	if (e->o->inject == MIG_INJECT_LOSE_PAGE && type == DMALOG_FRAME_PAGES && e->stopped &&
	    !e->page_damaged) {
		payload[sizeof(struct dmalog_frame_run) + 8] ^= 0x01;
		dmalog_frame_reseal(frame);
		e->page_damaged = true;
	}
	if (e->o->inject == MIG_INJECT_DEVICE_STATE && type == DMALOG_FRAME_DEVICE_DATA &&
	    !e->device_damaged && !dmalog_frame_decode(type, payload, plen, &dev) && !dev.device &&
	    plen > sizeof(dev)) {
		payload[sizeof(dev) + (plen - sizeof(dev)) / 2] ^= 0x01;
		dmalog_frame_reseal(frame);
		e->device_damaged = true;
	}
}

/*
 * Page channels' frames, on their threads. corrupt-channel: a byte of a page on channel 2
 * (1 with two channels) flipped after its checksum. drop-channel: once channel 1 has sent a
 * frame of the round, its connection is shut, the round under way.
 */
static void channel_frame_out(void *opaque, uint32_t channel, uint16_t type, uint8_t *frame,
			      uint32_t length)
{
	struct end *e = opaque;
	uint32_t target = e->o->inject == MIG_INJECT_CORRUPT_CHANNEL && e->o->channels > 2 ? 2 : 1;

	/* e->round was set before this round's channel threads started. */
	if (type != DMALOG_FRAME_PAGES || e->round != e->o->inject_round || channel != target ||
	    e->stopped)
		return;
	if (e->o->inject == MIG_INJECT_CORRUPT_CHANNEL &&
	    !__atomic_exchange_n(&e->channel_damaged, 1, __ATOMIC_ACQ_REL))
		frame[DMALOG_FRAME_HDR_BYTES + sizeof(struct dmalog_frame_run) + 100] ^= 0x20;
	if (e->o->inject == MIG_INJECT_DROP_CHANNEL &&
	    __atomic_exchange_n(&e->channel_damaged, 1, __ATOMIC_ACQ_REL))
		shutdown(e->fds[channel], SHUT_RDWR);
}

static int device_hash(void *opaque, uint32_t dev, uint64_t *hash)
{
	struct end *e = opaque;
	int ret = guest_device_hash(e->g, dev, hash);

	/* device-mismatch: what the source holds of its last device is not what it sent. */
	if (!ret && e->o->inject == MIG_INJECT_DEVICE_MISMATCH && dev == e->g->ndevices - 1 &&
	    e->g->source)
		*hash ^= 1;
	return ret;
}

static void device_error(void *opaque, uint32_t dev, char *buf, size_t len)
{
	guest_device_error(((struct end *)opaque)->g, dev, buf, len);
}

/*
 * The live line, on a terminal only (plain lines otherwise, nothing with --quiet or --json):
 * how far the round is, what is left, the rate, the last dirty rate, and an estimate.
 */
static void progress(void *opaque, uint32_t round, uint64_t sent, uint64_t total, double ms)
{
	struct end *e = opaque;
	double rate = ms > 0 ? (double)(sent << MIG_PAGE_SHIFT) / (ms / 1e3) : 0;
	double eta = rate > 0 ? (double)((total - sent) << MIG_PAGE_SHIFT) / rate : 0;

	if (e->o->quiet || e->o->json || !isatty(fileno(stdout)))
		return;
	printf("\r\033[Kround %u: %3.0f%%  %llu pages left  %.0f MB/s", round,
	       total ? 100.0 * (double)sent / (double)total : 100,
	       (unsigned long long)(total - sent), rate / 1e6);
	if (e->last_dirty_rate > 0) /* none measured before the first sync */
		printf("  dirty %.0f pages/s", e->last_dirty_rate);
	printf("  ETA %.1f s", eta);
	fflush(stdout);
}

static void throttle_vcpus(void *opaque, uint32_t percent)
{
	struct end *e = opaque;

	if (e->g->cpu)
		dmalog_dma_engine_set_throttle(e->g->cpu, percent);
}

/* An injected failure due at a later round keeps precopy going until then. */
static bool keep_precopy(void *opaque, uint32_t round)
{
	struct end *e = opaque;

	return e->o->inject && round < e->o->inject_round;
}

static const struct dmalog_mig_hooks hooks = {
	.size = sizeof(struct dmalog_mig_hooks),
	.pause_vcpus = pause_vcpus,
	.resume_vcpus = resume_vcpus,
	.round_done = round_done,
	.event = event,
	.frame_out = frame_out,
	.device_hash = device_hash,
	.device_error = device_error,
	.keep_precopy = keep_precopy,
	.throttle_vcpus = throttle_vcpus,
	.progress = progress,
	.channel_frame_out = channel_frame_out,
};

static struct dmalog_mig_config engine_config(struct end *e, const int *fds)
{
	struct dmalog_mig_config c = guest_engine_config(e->g, fds[0]);

	c.downtime_limit_ms = e->o->downtime_limit_ms;
	c.max_rounds = e->o->max_rounds;
	c.timeout_ms = e->o->timeout_ms;
	c.downtime_cap_ms = e->o->downtime_cap_ms;
	c.flags = (e->o->no_auto_converge ? 0 : DMALOG_MIG_AUTO_CONVERGE) |
		  (e->o->abort_if_not_converged ? DMALOG_MIG_ABORT_IF_NOT_CONVERGED : 0);
	c.throttle_initial = e->o->throttle_initial;
	c.throttle_increment = e->o->throttle_increment;
	c.throttle_max = e->o->throttle_max;
	c.max_bandwidth = e->o->max_bandwidth;
	c.page_fds = fds + 1;
	c.npage_fds = e->o->channels - 1;
	c.hooks = &hooks;
	c.opaque = e;
	return c;
}

/*
 * After a rollback, believe nothing the engine says: the CPU writer's own counter must move,
 * each tracker must say it is off, and every word of memory must be untouched or written by
 * one of the guest's own writers.
 */
static bool guest_runs_intact(struct guest *g)
{
	uint64_t writes = guest_writes(g);
	bool ok;

	for (int i = 0; i < 400 && guest_writes(g) == writes; i++)
		usleep(5000);
	ok = guest_writes(g) != writes && guest_untracked(g);
	guest_pause_writers(g);
	ok &= !guest_stray_words(g);
	guest_resume_writers(g);
	return ok;
}

/*
 * The engine a signal should cancel. The handler only sets flags (dmalog_mig_cancel() is an
 * atomic store), so it is safe at any moment; a signal before the engine exists is kept and
 * honoured as soon as it does.
 */
static struct dmalog_mig *volatile running;
static volatile sig_atomic_t cancel_asked;

void migrate_cancel_from_signal(void)
{
	struct dmalog_mig *m = running;

	cancel_asked = 1;
	if (m)
		dmalog_mig_cancel(m);
}

bool migrate_cancel_asked(void)
{
	return cancel_asked;
}

static int run_engine(struct dmalog_mig *m)
{
	int ret;

	running = m;
	if (cancel_asked)
		dmalog_mig_cancel(m);
	ret = dmalog_mig_run(m);
	running = NULL;
	return ret;
}

static void take_result(struct mig_result *r, const struct dmalog_mig_result *er)
{
	r->outcome = er->outcome;
	r->verified = er->verified;
	snprintf(r->error, sizeof(r->error), "%s", er->message);
	r->nrounds = er->nrounds;
	r->rounds = er->nrounds ? malloc(er->nrounds * sizeof(*r->rounds)) : NULL;
	if (r->rounds)
		memcpy(r->rounds, er->rounds, er->nrounds * sizeof(*r->rounds));
	else
		r->nrounds = 0;
	r->pages_compared = er->pages_compared;
	r->pages_mismatched = er->pages_mismatched;
	r->devices_compared = er->devices_compared;
	r->devices_mismatched = er->devices_mismatched;
	r->bytes_sent = er->bytes_sent;
	r->guest_bytes = er->guest_bytes;
	r->downtime_ms = er->downtime_ms;
	r->total_ms = er->total_ms;
	r->tracker_errors = er->tracker_errors;
	r->bandwidth = er->bandwidth;
	r->converged = er->converged;
	r->switchover = er->switchover;
	r->expected_downtime_ms = er->expected_downtime_ms;
	r->throttle_percent = er->throttle_percent;
	r->not_converged = er->outcome == DMALOG_MIG_ROLLED_BACK && er->error == -ETIMEDOUT &&
			   strstr(er->message, "did not converge");
	r->cancelled = er->cancelled;
	r->setup_ms = er->setup_ms;
	r->migration_ms = er->migration_ms;
	r->verify_ms = er->verify_ms;
	memcpy(r->downtime_parts, er->downtime_parts, sizeof(r->downtime_parts));
	r->zero_pages = er->zero_pages;
	snprintf(r->not_converged_why, sizeof(r->not_converged_why), "%s", er->not_converged_why);
	r->engine_error = er->error;
}

/* --events: the file (or stdout for "-"), opened before anything starts; NULL without. */
static FILE *open_events(const struct mig_options *o)
{
	if (!o->events)
		return NULL;
	return strcmp(o->events, "-") ? fopen(o->events, "w") : stdout;
}

static void close_events(FILE *f)
{
	if (f && f != stdout)
		fclose(f);
}

/* The last event: how it ended, with the error code and words when it failed. */
static void final_event(FILE *f, const struct mig_result *r)
{
	char fields[600], msg[420];

	if (!f)
		return;
	json_quote(msg, sizeof(msg), r->error);
	snprintf(fields, sizeof(fields),
		 "\"data\":{\"outcome\":\"%s\",\"error_code\":%s%s%s,\"error\":%s}",
		 dmalog_mig_outcome_name(r->outcome), mig_error_code(r) ? "\"" : "",
		 mig_error_code(r) ? mig_error_code(r) : "null", mig_error_code(r) ? "\"" : "",
		 r->error[0] ? msg : "null");
	report_event(f,
		     r->cancelled			 ? "cancelled"
		     : r->outcome == DMALOG_MIG_MIGRATED ? "completed"
							 : "failed",
		     fields);
}

static void close_all(const struct mig_options *o, const int *fds)
{
	for (uint32_t i = 0; i < o->channels; i++)
		close(fds[i]);
}

int migrate_source(const struct mig_options *o, const int *fds, int dest_pid, struct mig_result *r)
{
	struct end e = {.o = o, .dest_pid = dest_pid, .events = open_events(o), .fds = fds};
	struct dmalog_mig_config cfg;
	struct dmalog_mig *m = NULL;
	int ret = guest_create(o, true, &e.g);

	r->guest_bytes = o->mem_bytes;
	if (ret) {
		snprintf(r->error, sizeof(r->error), "cannot create the guest (%s)",
			 strerror(-ret));
		final_event(e.events, r);
		close_events(e.events);
		close_all(o, fds);
		return ret;
	}
	r->prefault_ms = e.g->prefault_ms;
	report_event(e.events, "setup", NULL);
	cfg = engine_config(&e, fds);
	ret = dmalog_mig_source_create(&cfg, &m);
	if (ret) {
		snprintf(r->error, sizeof(r->error), "cannot set up the migration (%s)",
			 strerror(-ret));
	} else {
		ret = run_engine(m);
		take_result(r, dmalog_mig_get_result(m));
		if (r->outcome == DMALOG_MIG_ROLLED_BACK)
			r->source_running =
				dmalog_mig_get_result(m)->devices_running && guest_runs_intact(e.g);
	}
	final_event(e.events, r);
	close_events(e.events);
	dmalog_mig_destroy(m);
	guest_destroy(e.g);
	close_all(o, fds);
	return ret;
}

/* The destination's result: a line for people, or one JSON object with --json. */
static void dest_report(const struct mig_options *o, const struct dmalog_mig_result *r, int status)
{
	char msg[420];

	if (o->json) {
		json_quote(msg, sizeof(msg), r->message);
		printf("{\"role\":\"destination\",\"outcome\":\"%s\",\"status\":\"%s\","
		       "\"exit_status\":%d,\"verified\":%s,\"pages_compared\":%llu,"
		       "\"mismatched_pages\":%llu,\"devices_compared\":%u,\"mismatched_devices\":%"
		       "u,"
		       "\"bytes_received\":%llu,\"total_ms\":%.3f,\"error\":%s}\n",
		       dmalog_mig_outcome_name(r->outcome),
		       r->cancelled			   ? "cancelled"
		       : r->outcome == DMALOG_MIG_MIGRATED ? "completed"
							   : "failed",
		       status, r->verified ? "true" : "false",
		       (unsigned long long)r->pages_compared,
		       (unsigned long long)r->pages_mismatched, r->devices_compared,
		       r->devices_mismatched, (unsigned long long)r->bytes_sent, r->total_ms,
		       r->message[0] ? msg : "null");
		return;
	}
	if (r->outcome == DMALOG_MIG_MIGRATED)
		printf("destination: guest running here; %llu pages and %u devices compared, %llu "
		       "pages and %u devices mismatched\n",
		       (unsigned long long)r->pages_compared, r->devices_compared,
		       (unsigned long long)r->pages_mismatched, r->devices_mismatched);
}

int migrate_dest_guest(const struct mig_options *o, struct guest **g)
{
	int ret = guest_create(o, false, g);

	if (ret)
		fprintf(stderr, "dmalog migrate: destination: cannot create the guest (%s)\n",
			strerror(-ret));
	return ret;
}

int migrate_dest(const struct mig_options *o, struct guest *g, const int *fds)
{
	/* A self-spawned destination leaves the events to its source. */
	struct end e = {.o = o, .events = o->listen ? open_events(o) : NULL};
	struct dmalog_mig_config cfg;
	const struct dmalog_mig_result *r;
	struct dmalog_mig *m = NULL;
	struct mig_result mr = {0};
	int ret, status;

	e.g = g;
	report_event(e.events, "setup", NULL);
	cfg = engine_config(&e, fds);
	ret = dmalog_mig_dest_create(&cfg, &m);
	if (ret) {
		fprintf(stderr, "dmalog migrate: destination: cannot set up (%s)\n",
			strerror(-ret));
		status = 5;
	} else {
		report_event(e.events, "active", NULL);
		run_engine(m);
		r = dmalog_mig_get_result(m);
		status = r->outcome != DMALOG_MIG_MIGRATED ? (r->cancelled ? 7 : 1)
			 : r->verified			   ? 0
							   : 3;
		if (r->message[0] && !o->json)
			fprintf(stderr, "dmalog migrate: destination: %s%s\n",
				r->outcome == DMALOG_MIG_MIGRATED ? "" : "migration failed: ",
				r->message);
		if (o->listen)
			dest_report(o, r, status);
		take_result(&mr, r);
		final_event(e.events, &mr);
		free(mr.rounds);
	}
	close_events(e.events);
	dmalog_mig_destroy(m);
	guest_destroy(e.g);
	close_all(o, fds);
	return status;
}

int mig_exit_status(const struct mig_result *r)
{
	switch (r->outcome) {
	case DMALOG_MIG_MIGRATED:
		return r->verified ? 0 : 3;
	case DMALOG_MIG_OUTCOME_UNKNOWN:
		return 4;
	case DMALOG_MIG_NOT_STARTED:
		return 5;
	case DMALOG_MIG_ROLLED_BACK:
		return r->cancelled ? 7 : r->not_converged ? 6 : 1;
	default:
		return 1;
	}
}

const char *mig_error_code(const struct mig_result *r)
{
	if (r->outcome == DMALOG_MIG_MIGRATED)
		return r->verified					  ? NULL
		       : r->error[0] && strstr(r->error, "proof differs") ? "proof-mismatch"
									  : "proof-incomplete";
	if (r->outcome == DMALOG_MIG_NOT_STARTED)
		return "setup";
	if (r->outcome == DMALOG_MIG_OUTCOME_UNKNOWN)
		return "outcome-unknown";
	if (r->cancelled)
		return "cancelled";
	if (r->not_converged)
		return "not-converged";
	if (strstr(r->error, "mismatched stream"))
		return "peer-mismatch";
	if (strstr(r->error, "rejected its state"))
		return "device-state-rejected";
	if (strstr(r->error, "checksum") || strstr(r->error, "corrupt") ||
	    strstr(r->error, "malformed") || strstr(r->error, "reordered"))
		return "stream-corrupt";
	switch (r->engine_error) {
	case -ETIMEDOUT:
		return "timeout";
	case -ECONNRESET:
	case -EPIPE:
		return "peer-closed";
	case -ECANCELED:
		return "peer-aborted";
	default:
		return "failed";
	}
}
