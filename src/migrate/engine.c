// SPDX-License-Identifier: MIT
/*
 * The engine object: configuration checked once at the boundary, one run on the caller's
 * thread or on a thread of its own, and the result it leaves behind.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"

/* The first versions of the structs: callers built against them stay valid. */
#define CONFIG_MIN_SIZE (offsetof(struct dmalog_mig_config, opaque) + sizeof(void *))
#define HOOKS_MIN_SIZE	(offsetof(struct dmalog_mig_hooks, keep_precopy) + sizeof(void *))

int engine_fail(struct dmalog_mig *m, int err, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		err = -EIO;
	if (!m->r.error) {
		m->r.error = err;
		va_start(ap, fmt);
		vsnprintf(m->r.message, sizeof(m->r.message), fmt, ap);
		va_end(ap);
	}
	return err;
}

struct dmalog_mig_round *engine_new_round(struct dmalog_mig *m)
{
	if (m->r.nrounds == m->rounds_cap) {
		uint32_t cap = m->rounds_cap ? 2 * m->rounds_cap : 16;
		struct dmalog_mig_round *p = realloc(m->rounds, cap * sizeof(*p));

		if (!p)
			return NULL;
		m->rounds = p;
		m->rounds_cap = cap;
	}
	m->r.rounds = m->rounds;
	m->rounds[m->r.nrounds] = (struct dmalog_mig_round){.round = m->r.nrounds + 1};
	return &m->rounds[m->r.nrounds++];
}

int engine_event(struct dmalog_mig *m, enum dmalog_mig_event ev, uint32_t round)
{
	int (*hook)(void *, enum dmalog_mig_event, uint32_t) = HOOK(m, event);

	return hook ? hook(m->cfg.opaque, ev, round) : 0;
}

static int create(const struct dmalog_mig_config *cfg, bool source, struct dmalog_mig **out)
{
	struct dmalog_mig *m;
	int ret;

	if (!cfg || !out || cfg->size < CONFIG_MIN_SIZE || cfg->fd < 0 || !cfg->regions ||
	    !cfg->nregions || cfg->nregions > DMALOG_RAM_MAX_REGIONS ||
	    cfg->ndevices > DMALOG_MIG_MAX_DEVICES || (cfg->ndevices && !cfg->devices) ||
	    (cfg->ntrackers && !cfg->trackers) || cfg->ntrackers > DMALOG_MIG_MAX_TRACKERS ||
	    cfg->downtime_limit_ms < 0 || cfg->downtime_limit_ms != cfg->downtime_limit_ms ||
	    (cfg->size >= offsetof(struct dmalog_mig_config, max_bandwidth) &&
	     ((cfg->flags & ~(DMALOG_MIG_AUTO_CONVERGE | DMALOG_MIG_ABORT_IF_NOT_CONVERGED)) ||
	      cfg->throttle_initial > 99 || cfg->throttle_increment > 99 ||
	      cfg->throttle_max > 99)) ||
	    (cfg->hooks && cfg->hooks->size < HOOKS_MIN_SIZE))
		return -EINVAL;
	for (uint32_t i = 0; i < cfg->ndevices; i++)
		if (!cfg->devices[i])
			return -EINVAL;
	for (uint32_t i = 0; i < cfg->ntrackers; i++)
		if (!cfg->trackers[i])
			return -EINVAL;
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	memcpy(&m->cfg, cfg, cfg->size < sizeof(m->cfg) ? cfg->size : sizeof(m->cfg));
	m->cfg.size = sizeof(m->cfg);
	if (cfg->hooks)
		memcpy(&m->hooks, cfg->hooks,
		       cfg->hooks->size < sizeof(m->hooks) ? cfg->hooks->size : sizeof(m->hooks));
	m->hooks.size = sizeof(m->hooks);
	/* Fields past the caller's size are zero here: no page channels. */
	if (m->cfg.npage_fds >= DMALOG_MIG_MAX_CHANNELS || (m->cfg.npage_fds && !m->cfg.page_fds)) {
		free(m);
		return -EINVAL;
	}
	for (uint32_t i = 0; i < m->cfg.npage_fds; i++) {
		if (m->cfg.page_fds[i] < 0) {
			free(m);
			return -EINVAL;
		}
	}
	if (!m->cfg.timeout_ms)
		m->cfg.timeout_ms = ENGINE_DEFAULT_TIMEOUT_MS;
	if (!m->cfg.max_rounds)
		m->cfg.max_rounds = ENGINE_DEFAULT_MAX_ROUNDS;
	if (!m->cfg.device_data_limit)
		m->cfg.device_data_limit = ENGINE_DEFAULT_DEVICE_DATA;
	if (!m->cfg.downtime_cap_ms)
		m->cfg.downtime_cap_ms = ENGINE_DEFAULT_DOWNTIME_CAP_MS;
	if (!m->cfg.throttle_initial)
		m->cfg.throttle_initial = ENGINE_DEFAULT_THROTTLE_INITIAL;
	if (!m->cfg.throttle_increment)
		m->cfg.throttle_increment = ENGINE_DEFAULT_THROTTLE_STEP;
	if (!m->cfg.throttle_max)
		m->cfg.throttle_max = ENGINE_DEFAULT_THROTTLE_MAX;
	if (!source)
		m->cfg.ntrackers = 0;
	m->source = source;
	memcpy(m->regions, cfg->regions, cfg->nregions * sizeof(*cfg->regions));
	ret = dmalog_ram_map_init(&m->ram, m->regions, cfg->nregions);
	if (ret) {
		free(m);
		return ret;
	}
	m->r.guest_bytes = m->ram.bytes;
	*out = m;
	return 0;
}

int dmalog_mig_source_create(const struct dmalog_mig_config *cfg, struct dmalog_mig **out)
{
	return create(cfg, true, out);
}

int dmalog_mig_dest_create(const struct dmalog_mig_config *cfg, struct dmalog_mig **out)
{
	return create(cfg, false, out);
}

int dmalog_mig_run(struct dmalog_mig *m)
{
	if (m->ran)
		return -EBUSY;
	m->ran = true;
	m->ret = m->source ? source_run(m) : dest_run(m);
	return m->ret;
}

static void *run_thread(void *arg)
{
	dmalog_mig_run(arg);
	return NULL;
}

int dmalog_mig_start(struct dmalog_mig *m)
{
	int ret;

	if (m->ran || m->thread_started)
		return -EBUSY;
	ret = pthread_create(&m->thread, NULL, run_thread, m);
	if (ret)
		return -ret;
	m->thread_started = true;
	return 0;
}

int dmalog_mig_wait(struct dmalog_mig *m)
{
	if (!m->thread_started)
		return m->ran ? m->ret : -EINVAL;
	pthread_join(m->thread, NULL);
	m->thread_started = false;
	return m->ret;
}

const struct dmalog_mig_result *dmalog_mig_get_result(const struct dmalog_mig *m)
{
	return &m->r;
}

void dmalog_mig_destroy(struct dmalog_mig *m)
{
	if (!m)
		return;
	if (m->thread_started)
		dmalog_mig_wait(m);
	free(m->rounds);
	free(m);
}

void dmalog_mig_cancel(struct dmalog_mig *m)
{
	__atomic_store_n(&m->cancel, 1, __ATOMIC_RELEASE);
}

int engine_cancelled(struct dmalog_mig *m)
{
	if (!__atomic_load_n(&m->cancel, __ATOMIC_ACQUIRE))
		return 0;
	m->r.cancelled = true;
	return engine_fail(m, -EINTR, "cancelled");
}

void dmalog_mig_force_switchover(struct dmalog_mig *m)
{
	__atomic_store_n(&m->force_switchover, 1, __ATOMIC_RELEASE);
}

const char *dmalog_mig_switchover_name(enum dmalog_mig_switchover s)
{
	switch (s) {
	case DMALOG_MIG_SWITCHOVER_FITS_LIMIT:
		return "fits-limit";
	case DMALOG_MIG_SWITCHOVER_MAX_ROUNDS:
		return "max-rounds";
	case DMALOG_MIG_SWITCHOVER_FORCED:
		return "forced";
	default:
		return "none";
	}
}

const char *dmalog_mig_outcome_name(enum dmalog_mig_outcome o)
{
	switch (o) {
	case DMALOG_MIG_ROLLED_BACK:
		return "rolled-back";
	case DMALOG_MIG_MIGRATED:
		return "migrated";
	case DMALOG_MIG_OUTCOME_UNKNOWN:
		return "unknown";
	default:
		return "not-started";
	}
}
