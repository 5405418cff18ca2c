/* SPDX-License-Identifier: MIT */
/*
 * The live-migration engine: precopy rounds while the guest runs, a switchover when what is
 * left fits the downtime limit, the final state, the hand-off, and a proof that the
 * destination holds what the source had. A VMM embeds it with its own RAM regions, device
 * handles and trackers over a connected fd; the engine never prints, never exits, and keeps
 * no global state. Everything it measures comes back in struct dmalog_mig_result.
 *
 * The hand-off rule. COMPLETE (the source has sent its final state) is the one moment the
 * guest changes owner:
 *  - before COMPLETE is wholly sent, any failure rolls the source back: tracking stopped,
 *    devices RUNNING, vCPUs resumed (DMALOG_MIG_ROLLED_BACK);
 *  - from then on the guest belongs to the destination, which resumes it and answers RUNNING
 *    (DMALOG_MIG_MIGRATED), unless it explicitly refuses with ABORT (rolled back);
 *  - if the connection drops or the answer does not come within the timeout, the source
 *    stays paused, devices in STOP (DMALOG_MIG_OUTCOME_UNKNOWN): management decides, as with
 *    QEMU's postmigrate state. Never two running copies.
 * A destination that has answered RUNNING keeps running whatever happens to the proof.
 *
 * The stream format is in <dmalog/mstream.h>.
 */
#ifndef DMALOG_MIGRATE_H
#define DMALOG_MIGRATE_H

#include <stdbool.h>
#include <stdint.h>
#include <dmalog/api.h>
#include <dmalog/handle.h>
#include <dmalog/tracker.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DMALOG_MIG_MAX_DEVICES	64
#define DMALOG_MIG_MAX_TRACKERS 64
#define DMALOG_MIG_MAX_CHANNELS 16 /* connections per migration: @fd and the page_fds */

/** enum dmalog_mig_outcome - who runs the guest after dmalog_mig_run() */
enum dmalog_mig_outcome {
	DMALOG_MIG_NOT_STARTED,	    /* no guest was touched (bad configuration) */
	DMALOG_MIG_ROLLED_BACK,	    /* failed; the source runs the guest */
	DMALOG_MIG_MIGRATED,	    /* the destination runs the guest */
	DMALOG_MIG_OUTCOME_UNKNOWN, /* no answer after COMPLETE: nobody runs it; source paused */
};

/** enum dmalog_mig_event - points where the engine calls the event hook */
enum dmalog_mig_event {
	DMALOG_MIG_EVENT_ROUND,	     /* a precopy round is about to send its pages */
	DMALOG_MIG_EVENT_SYNC,	     /* a dirty sync is about to read every tracker */
	DMALOG_MIG_EVENT_STOPPED,    /* switchover: vCPUs paused and devices stopped */
	DMALOG_MIG_EVENT_COMPLETE,   /* everything but COMPLETE is sent; COMPLETE is next */
	DMALOG_MIG_EVENT_HANDED_OFF, /* the destination answered RUNNING */
};

/**
 * struct dmalog_mig_round - what one round did
 * @round: 1-based; the last one of a completed migration is the final (stop-and-copy) round
 * @pages: guest pages sent
 * @device_bytes: device migration data sent
 * @bytes: bytes written to the connection
 * @ms: how long the round took (the final one: the downtime)
 * @dirty_rate: pages dirtied per second, measured at the round's sync
 * @sync_ms: how long the round's dirty sync took
 */
struct dmalog_mig_round {
	uint32_t round;
	uint64_t pages;
	uint64_t device_bytes;
	uint64_t bytes;
	double ms;
	double dirty_rate;
	double sync_ms;
};

/**
 * struct dmalog_mig_hooks - what the engine asks of its embedder; every hook is optional
 * @size: sizeof(struct dmalog_mig_hooks), so hooks can be added without breaking callers
 * @pause_vcpus: stop the guest's CPUs (switchover); they must not write RAM after it returns
 * @resume_vcpus: run them again (rollback on the source, resume on the destination)
 * @round_done: a round ended (progress); @final for the stop-and-copy round
 * @event: called at each enum dmalog_mig_event (tests inject faults here); a non-zero
 *	return fails the migration with that -errno, as if the step had failed
 * @frame_out: a sealed frame (header and payload) is about to be queued for sending; a test
 *	may damage it here as a bad link would
 * @device_hash: a digest of device @dev's state once stopped (source) or loaded (destination);
 *	without it devices are not compared
 * @device_error: destination: why device @dev refused its state, into @buf
 * @keep_precopy: source: return true to go on with precopy after round @round even if what
 *	is left would fit the downtime limit (a test waiting for a later round)
 * @throttle_vcpus: source, auto-converge: let the vCPUs run only (100 - @percent)% of the
 *	time (0: unthrottled), as QEMU's cpu-throttle does
 * @progress: source: within a round, about five times a second: @round, the pages it has
 *	sent of those it had to (@sent of @total) and for how long (@ms)
 * @channel_frame_out: as @frame_out, for the frames of page channel @channel (1 to
 *	npage_fds); called on that channel's own thread, so several may run at once
 */
struct dmalog_mig_hooks {
	uint32_t size;
	void (*pause_vcpus)(void *opaque);
	void (*resume_vcpus)(void *opaque);
	void (*round_done)(void *opaque, const struct dmalog_mig_round *rd, bool final);
	int (*event)(void *opaque, enum dmalog_mig_event ev, uint32_t round);
	void (*frame_out)(void *opaque, uint16_t type, uint8_t *frame, uint32_t length);
	int (*device_hash)(void *opaque, uint32_t dev, uint64_t *hash);
	void (*device_error)(void *opaque, uint32_t dev, char *buf, size_t len);
	bool (*keep_precopy)(void *opaque, uint32_t round);
	void (*throttle_vcpus)(void *opaque, uint32_t percent);
	void (*progress)(void *opaque, uint32_t round, uint64_t sent, uint64_t total, double ms);
	void (*channel_frame_out)(void *opaque, uint32_t channel, uint16_t type, uint8_t *frame,
				  uint32_t length);
};

/**
 * struct dmalog_mig_config - one end of a migration
 * @size: sizeof(struct dmalog_mig_config), so fields can be added without breaking callers
 * @fd: a connected stream socket to the other end (not closed by the engine)
 * @regions: guest RAM (see struct dmalog_ram_region; ram_offset is computed)
 * @nregions: how many
 * @devices: device handles, in the same order on both ends
 * @ndevices: how many (at most DMALOG_MIG_MAX_DEVICES)
 * @trackers: source only: every tracker whose pages must be sent (a VMM's CPU log among
 *	them); the engine starts, syncs and stops them
 * @ntrackers: how many
 * @downtime_limit_ms: source: switch over once the remaining pages and device data would
 *	take no longer at the bandwidth measured so far
 * @max_rounds: source: switch over after this many precopy rounds anyway (0: 30)
 * @timeout_ms: the longest silence tolerated from the peer on any read or write (0: 30000)
 * @device_data_limit: destination: the most migration data one device may receive before
 *	the migration is refused (0: 1 GiB), so a hostile source cannot make it buffer without
 *	bound
 * @downtime_cap_ms: source: the longest the guest may stay stopped (0: 10000). If the final
 *	round is not sent within it, the migration fails and rolls back; if the answer to COMPLETE
 *	does not come within it, the hand-off rule applies (outcome unknown, guest paused)
 * @flags: DMALOG_MIG_AUTO_CONVERGE, DMALOG_MIG_ABORT_IF_NOT_CONVERGED
 * @throttle_initial: auto-converge: the first throttle, in percent (0: 20)
 * @throttle_increment: auto-converge: added each round the dirty rate still outruns the
 *	bandwidth (0: 10)
 * @throttle_max: auto-converge: the most it throttles (0: 99)
 * @max_bandwidth: source: bytes per second the stream may use at most (0: no cap), as QEMU's
 *	max-bandwidth
 * @page_fds: more connected stream sockets to the same peer (not closed by the engine), as
 *	QEMU's multifd channels: guest pages are sharded over @fd and these, each sent and
 *	received on a thread of its own, while everything else stays on @fd. Both ends list
 *	them in the order they were connected; the destination refuses another count.
 * @npage_fds: how many (0: the pages go on @fd alone; at most DMALOG_MIG_MAX_CHANNELS - 1)
 * @hooks: the embedder's hooks (NULL: none)
 * @opaque: passed to every hook
 */
struct dmalog_mig_config {
	uint32_t size;
	int fd;
	const struct dmalog_ram_region *regions;
	uint32_t nregions;
	struct dmalog_handle *const *devices;
	uint32_t ndevices;
	struct dmalog_tracker *const *trackers;
	uint32_t ntrackers;
	double downtime_limit_ms;
	uint32_t max_rounds;
	uint32_t timeout_ms;
	const struct dmalog_mig_hooks *hooks;
	void *opaque;
	uint64_t device_data_limit;
	uint32_t downtime_cap_ms;
	uint32_t flags;
	uint32_t throttle_initial, throttle_increment, throttle_max;
	uint64_t max_bandwidth;
	const int *page_fds;
	uint32_t npage_fds;
};

/* Auto-converge: throttle the vCPUs (the throttle_vcpus hook) while dirtying outruns sending. */
#define DMALOG_MIG_AUTO_CONVERGE (1u << 0)
/* At max_rounds without fitting the downtime limit, fail and roll back instead of switching. */
#define DMALOG_MIG_ABORT_IF_NOT_CONVERGED (1u << 1)

/** enum dmalog_mig_switchover - why the source stopped the guest */
enum dmalog_mig_switchover {
	DMALOG_MIG_SWITCHOVER_NONE,	  /* it did not get that far */
	DMALOG_MIG_SWITCHOVER_FITS_LIMIT, /* what was left fit the downtime limit */
	DMALOG_MIG_SWITCHOVER_MAX_ROUNDS, /* max_rounds reached without fitting */
	DMALOG_MIG_SWITCHOVER_FORCED,	  /* dmalog_mig_force_switchover() */
};

/**
 * struct dmalog_mig_result - what happened, filled in by dmalog_mig_run()
 * @outcome: who runs the guest now
 * @verified: the destination compared every page and device and found no mismatch
 * @error: 0 or the -errno of the first failure
 * @message: the first failure, in words ("" when none); a peer's text is included as it came
 *	and must be escaped before it is printed
 * @rounds: one entry per round (owned by the engine, valid until dmalog_mig_destroy())
 * @nrounds: how many
 * @pages_compared: pages the destination compared
 * @pages_mismatched: of which differed
 * @devices_compared: devices compared
 * @devices_mismatched: of which differed
 * @bytes_sent: bytes the source wrote to the connection
 * @guest_bytes: guest RAM
 * @downtime_ms: source: vCPUs paused until the destination answered RUNNING
 * @total_ms: from start to the end of the proof
 * @bandwidth: bytes per second over the precopy rounds
 * @tracker_errors: syncs that failed and were recovered by marking everything dirty
 * @devices_running: after a rollback: every device reads back RUNNING
 * @converged: the switchover came because what was left fit the downtime limit
 * @switchover: why the switchover came
 * @expected_downtime_ms: the estimate the switchover was decided on
 * @throttle_percent: auto-converge's throttle at switchover (0: none)
 * @cancelled: dmalog_mig_cancel() stopped it (error -EINTR)
 * @setup_ms: source: from the start to the first round (trackers started, devices in
 *	PRE_COPY), QEMU's setup-time
 * @not_converged_why: source, when it did not converge: each tracker whose pages alone
 *	would not fit the limit, by name, with its rate and the bandwidth; when none alone,
 *	what is left altogether and how long it takes ("" when it converged)
 * @migration_ms: source: from the start to the destination's RUNNING (QEMU's total-time;
 *	0 when it never came)
 * @verify_ms: source: the proof after it (digests on both ends, compared)
 * @downtime_parts: source: where the downtime went, in ms: [0] stopping the guest (vCPUs
 *	paused, devices to STOP_COPY), [1] the final dirty sync, [2] the last pages, [3] the
 *	devices' final state, [4] COMPLETE until the destination's RUNNING (it checks, resumes
 *	its devices, answers). [0], [1] and [4] are the fixed part: they do not grow with what
 *	is left to send.
 * @zero_pages: source: of the pages sent, those that went as zero-page markers (no data)
 */
struct dmalog_mig_result {
	enum dmalog_mig_outcome outcome;
	bool verified;
	int error;
	char message[320];
	const struct dmalog_mig_round *rounds;
	uint32_t nrounds;
	uint64_t pages_compared, pages_mismatched;
	uint32_t devices_compared, devices_mismatched;
	uint64_t bytes_sent, guest_bytes;
	double downtime_ms, total_ms, bandwidth;
	uint64_t tracker_errors;
	bool devices_running;
	bool converged;
	enum dmalog_mig_switchover switchover;
	double expected_downtime_ms;
	uint32_t throttle_percent;
	bool cancelled;
	double setup_ms;
	char not_converged_why[200];
	double migration_ms;
	double verify_ms;
	double downtime_parts[5];
	uint64_t zero_pages;
};

struct dmalog_mig;

/**
 * dmalog_mig_source_create() - the sending end
 * @cfg: its configuration (copied; the arrays it points to must outlive the engine)
 * @out: the engine
 *
 * Return: 0, -EINVAL for a bad configuration (a size too small here or in the hooks, regions,
 * counts, fd), or -ENOMEM.
 */
DMALOG_API int dmalog_mig_source_create(const struct dmalog_mig_config *cfg,
					struct dmalog_mig **out);

/**
 * dmalog_mig_dest_create() - the receiving end: the devices go to RESUMING when it runs
 * @cfg: its configuration; trackers, downtime and rounds are not used
 * @out: the engine
 *
 * The destination's guest must not run before it: the engine resumes it (devices RUNNING,
 * then the resume_vcpus hook) when the final state is complete.
 * Return: 0, -EINVAL or -ENOMEM.
 */
DMALOG_API int dmalog_mig_dest_create(const struct dmalog_mig_config *cfg, struct dmalog_mig **out);

/**
 * dmalog_mig_run() - run the migration on the caller's thread until it ends
 * @m: the engine (one run each)
 *
 * Return: 0 when migrated and verified, else the -errno in the result (-EBUSY when run twice).
 */
DMALOG_API int dmalog_mig_run(struct dmalog_mig *m);

/** dmalog_mig_start() - run it on a thread of its own: 0, -EBUSY or -errno */
DMALOG_API int dmalog_mig_start(struct dmalog_mig *m);

/** dmalog_mig_wait() - wait for a started run to end: what dmalog_mig_run() would return */
DMALOG_API int dmalog_mig_wait(struct dmalog_mig *m);

/**
 * dmalog_mig_force_switchover() - switch over at the end of the current precopy round, fitting
 *	or not (any thread may call it while the source runs)
 * @m: a source engine
 */
DMALOG_API void dmalog_mig_force_switchover(struct dmalog_mig *m);

/**
 * dmalog_mig_cancel() - stop the migration as soon as it safely can (any thread, or a signal
 *	handler: it only sets a flag)
 * @m: an engine
 *
 * The source rolls back if COMPLETE has not been sent; once it has, the hand-off rule
 * applies and the source waits for the destination's answer as usual (a cancel cannot make it
 * resume a guest the destination may run). A destination that has not resumed refuses the
 * stream (ABORT, "cancelled"). The result's @cancelled says whether it took effect.
 */
DMALOG_API void dmalog_mig_cancel(struct dmalog_mig *m);

/** dmalog_mig_switchover_name() - "fits-limit", "max-rounds", "forced" or "none" */
DMALOG_API const char *dmalog_mig_switchover_name(enum dmalog_mig_switchover s);

/** dmalog_mig_get_result() - the result (complete once the run has ended) */
DMALOG_API const struct dmalog_mig_result *dmalog_mig_get_result(const struct dmalog_mig *m);

/** dmalog_mig_destroy() - free the engine (waits for a started run); NULL is fine */
DMALOG_API void dmalog_mig_destroy(struct dmalog_mig *m);

/**
 * dmalog_mig_socket_setup() - make a connected socket ready for a migration
 * @fd: a stream socket (UNIX or TCP)
 * @timeout_ms: the silence the engine will tolerate
 *
 * Large socket buffers; for TCP also keepalive probes and TCP_USER_TIMEOUT, so that a peer
 * host that vanishes without closing the connection is noticed within about @timeout_ms.
 * The engine does this to the fd it is given; call it yourself on a socket you wrap (in TLS,
 * say) before the engine sees it.
 */
DMALOG_API void dmalog_mig_socket_setup(int fd, uint32_t timeout_ms);

/** dmalog_mig_outcome_name() - "rolled-back", "migrated", "unknown" or "not-started" */
DMALOG_API const char *dmalog_mig_outcome_name(enum dmalog_mig_outcome o);

#ifdef __cplusplus
}
#endif

#endif
