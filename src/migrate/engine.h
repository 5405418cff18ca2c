/* SPDX-License-Identifier: MIT */
/* What the engine's two ends share: the validated configuration, the RAM map and the result. */
#ifndef DMALOG_MIGRATE_ENGINE_H
#define DMALOG_MIGRATE_ENGINE_H

#include <pthread.h>
#include <stdarg.h>

#include <dmalog/migrate.h>

#define ENGINE_DEFAULT_TIMEOUT_MS	30000
#define ENGINE_DEFAULT_MAX_ROUNDS	30
#define ENGINE_DEFAULT_DEVICE_DATA	(1ULL << 30)
#define ENGINE_DEFAULT_DOWNTIME_CAP_MS	10000
#define ENGINE_DEFAULT_THROTTLE_INITIAL 20
#define ENGINE_DEFAULT_THROTTLE_STEP	10
#define ENGINE_DEFAULT_THROTTLE_MAX	99

struct dmalog_mig {
	struct dmalog_mig_config cfg;
	struct dmalog_mig_hooks hooks; /* a copy: fields the caller did not know are NULL */
	bool source;
	struct dmalog_ram_region regions[DMALOG_RAM_MAX_REGIONS];
	struct dmalog_ram_map ram;
	struct dmalog_mig_result r;
	struct dmalog_mig_round *rounds;
	uint32_t rounds_cap;
	pthread_t thread;
	bool thread_started, ran;
	int ret;
	int force_switchover; /* atomic */
	int cancel;	      /* atomic */
};

int source_run(struct dmalog_mig *m);
int dest_run(struct dmalog_mig *m);

/* Record the first failure: its -errno and words. Returns @err (-EIO for 0). */
int engine_fail(struct dmalog_mig *m, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* A new round entry in the result, or NULL without memory. */
struct dmalog_mig_round *engine_new_round(struct dmalog_mig *m);

/* -EINTR (recorded as the failure) once dmalog_mig_cancel() was called, else 0. */
int engine_cancelled(struct dmalog_mig *m);

/* The embedder's hook at @ev, 0 without one. */
int engine_event(struct dmalog_mig *m, enum dmalog_mig_event ev, uint32_t round);

#define HOOK(m, name) ((m)->hooks.name)

#endif
