/* SPDX-License-Identifier: MIT */
/* Short names for the migration states, for tables and arc code inside the library. */
#ifndef DMALOG_MIGSTATE_NAMES_H
#define DMALOG_MIGSTATE_NAMES_H

#include <dmalog/uapi.h>

enum {
	ERR = VFIO_DEVICE_STATE_ERROR,
	S = VFIO_DEVICE_STATE_STOP,
	R = VFIO_DEVICE_STATE_RUNNING,
	SC = VFIO_DEVICE_STATE_STOP_COPY,
	RS = VFIO_DEVICE_STATE_RESUMING,
	RP = VFIO_DEVICE_STATE_RUNNING_P2P,
	PC = VFIO_DEVICE_STATE_PRE_COPY,
	PCP = VFIO_DEVICE_STATE_PRE_COPY_P2P,
};

#endif
