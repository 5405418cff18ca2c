/* SPDX-License-Identifier: MIT */
/* The tool's one way to issue VFIO_DEVICE_FEATURE on an emulated device. */
#ifndef DMALOG_TOOL_VFIO_FEATURE_H
#define DMALOG_TOOL_VFIO_FEATURE_H

#include <stddef.h>
#include <stdint.h>

#include <dmalog/device.h>

/* VFIO_DEVICE_FEATURE with @flags and @len (at most 48) bytes of @payload, copied back. */
int vfio_feature(struct dmalog_device *dev, uint32_t flags, void *payload, size_t len);

#endif
