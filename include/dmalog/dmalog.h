/* SPDX-License-Identifier: MIT */
/* libdmalog: the whole public API. */
#ifndef DMALOG_H
#define DMALOG_H

#include <dmalog/version.h>
#include <dmalog/uapi.h>
#include <dmalog/ranges.h>
#include <dmalog/iova_bitmap.h>
#include <dmalog/migfsm.h>
#include <dmalog/device.h>
#include <dmalog/swtrack.h>
#include <dmalog/devtrack.h>
#include <dmalog/iopt.h>
#include <dmalog/hwpt.h>
#include <dmalog/type1.h>
#include <dmalog/dma.h>
#include <dmalog/emudev.h>
#include <dmalog/mstream.h>
#include <dmalog/handle.h>
#include <dmalog/tracker.h>
#include <dmalog/migrate.h>
#include <dmalog/vfio_user.h>
#include <dmalog/vfu_device.h>

#endif
