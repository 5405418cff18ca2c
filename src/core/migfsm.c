// SPDX-License-Identifier: MIT
/* The migration v2 next-state table, as vfio_mig_get_next_state() encodes it. */
#include <errno.h>

#include <dmalog/migfsm.h>

#include "migstate_names.h"

/* clang-format off */
/* next_hop[cur][target]: the first arc of the shortest path with every optional state. */
static const uint8_t next_hop[DMALOG_MIG_NUM_STATES][DMALOG_MIG_NUM_STATES] = {
	[S] = {[S] = S, [R] = RP, [PC] = RP, [PCP] = RP, [SC] = SC, [RS] = RS, [RP] = RP,
	       [ERR] = ERR},
	[R] = {[S] = RP, [R] = R, [PC] = PC, [PCP] = RP, [SC] = RP, [RS] = RP, [RP] = RP,
	       [ERR] = ERR},
	[PC] = {[S] = R, [R] = R, [PC] = PC, [PCP] = PCP, [SC] = PCP, [RS] = R, [RP] = R,
		[ERR] = ERR},
	[PCP] = {[S] = RP, [R] = RP, [PC] = PC, [PCP] = PCP, [SC] = SC, [RS] = RP, [RP] = RP,
		 [ERR] = ERR},
	[SC] = {[S] = S, [R] = S, [PC] = ERR, [PCP] = ERR, [SC] = SC, [RS] = S, [RP] = S,
		[ERR] = ERR},
	[RS] = {[S] = S, [R] = S, [PC] = S, [PCP] = S, [SC] = S, [RS] = RS, [RP] = S,
		[ERR] = ERR},
	[RP] = {[S] = S, [R] = R, [PC] = R, [PCP] = PCP, [SC] = S, [RS] = S, [RP] = RP,
		[ERR] = ERR},
	[ERR] = {ERR, ERR, ERR, ERR, ERR, ERR, ERR, ERR},
};
/* clang-format on */

/* Migration flags a state needs; ERROR needs everything, so it can never be requested. */
static const uint64_t state_needs[DMALOG_MIG_NUM_STATES] = {
	[ERR] = ~0ULL,
	[S] = VFIO_MIGRATION_STOP_COPY,
	[R] = VFIO_MIGRATION_STOP_COPY,
	[SC] = VFIO_MIGRATION_STOP_COPY,
	[RS] = VFIO_MIGRATION_STOP_COPY,
	[RP] = VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P,
	[PC] = VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_PRE_COPY,
	[PCP] = VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P | VFIO_MIGRATION_PRE_COPY,
};

bool dmalog_mig_state_supported(uint64_t flags, uint32_t state)
{
	return state < DMALOG_MIG_NUM_STATES && (state_needs[state] & flags) == state_needs[state];
}

int dmalog_mig_next_state(uint64_t flags, uint32_t cur, uint32_t target, uint32_t *next)
{
	uint32_t hop;

	if (!dmalog_mig_state_supported(flags, cur) || !dmalog_mig_state_supported(flags, target))
		return -EINVAL;
	hop = next_hop[cur][target];
	/*
	 * Skip optional states the device lacks by asking the table again from the skipped
	 * state. Stop at ERROR: the unfixed kernel loop spun forever on STOP_COPY -> PRE_COPY*.
	 */
	while (hop != ERR && !dmalog_mig_state_supported(flags, hop))
		hop = next_hop[hop][target];
	if (hop == ERR)
		return -EINVAL;
	*next = hop;
	return 0;
}

const char *dmalog_mig_state_name(uint32_t state)
{
	static const char *const names[DMALOG_MIG_NUM_STATES] = {
		[ERR] = "ERROR",   [S] = "STOP",	 [R] = "RUNNING",   [SC] = "STOP_COPY",
		[RS] = "RESUMING", [RP] = "RUNNING_P2P", [PC] = "PRE_COPY", [PCP] = "PRE_COPY_P2P",
	};

	return state < DMALOG_MIG_NUM_STATES ? names[state] : "INVALID";
}
