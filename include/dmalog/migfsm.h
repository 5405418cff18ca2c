/* SPDX-License-Identifier: MIT */
/*
 * The migration v2 state machine: the kernel's next-state table (vfio_mig_get_next_state)
 * for every supported flag set, with the June 2026 fix that stops at ERROR instead of
 * looping.
 */
#ifndef DMALOG_MIGFSM_H
#define DMALOG_MIGFSM_H

#include <stdbool.h>
#include <stdint.h>
#include <dmalog/api.h>
#include <dmalog/uapi.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Flag bits a device may advertise in VFIO_DEVICE_FEATURE_MIGRATION. */
#define DMALOG_MIGRATION_FLAGS_ALL                                                                 \
	(VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P | VFIO_MIGRATION_PRE_COPY)

/** dmalog_mig_state_supported() - Whether a device with @flags supports @state (ERROR never can be
 * requested). */
DMALOG_API bool dmalog_mig_state_supported(uint64_t flags, uint32_t state);

/**
 * dmalog_mig_next_state() - Next hop from @cur toward @target for a device with @flags. -EINVAL
 * when either state is unsupported or unknown, or the arc is blocked (STOP_COPY -> PRE_COPY*). cur
 * == target gives next == cur.
 */
DMALOG_API int dmalog_mig_next_state(uint64_t flags, uint32_t cur, uint32_t target, uint32_t *next);

/** dmalog_mig_state_name() - "RUNNING", "PRE_COPY_P2P", ...; "INVALID" for unknown values. */
DMALOG_API const char *dmalog_mig_state_name(uint32_t state);

#ifdef __cplusplus
}
#endif

#endif
