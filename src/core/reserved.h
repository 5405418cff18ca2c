/* SPDX-License-Identifier: MIT */
/* Reserved fields of configuration structs must be zero, so later versions can give them a use. */
#ifndef DMALOG_CORE_RESERVED_H
#define DMALOG_CORE_RESERVED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

static inline bool reserved_zero(const uint64_t *reserved, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (reserved[i])
			return false;
	return true;
}

#define RESERVED_ZERO(s) reserved_zero((s)->reserved, sizeof((s)->reserved) / 8)

#endif
