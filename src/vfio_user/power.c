// SPDX-License-Identifier: MIT
/*
 * Low power, with vfio_pci_core's semantics (the kernel's runtime PM of a vfio-pci device):
 *  - LOW_POWER_ENTRY (3) and LOW_POWER_ENTRY_WITH_WAKEUP (4), SET only: the client allows
 *    low power; a second entry while allowed is -EINVAL. Its mmaps of the device's regions
 *    fault from here until low power is off again. The device then goes into it, unless the
 *    host keeps it out (no_runtime_pm: then it never enters, and no wakeup ever fires).
 *  - Every device access (any command on the device: features, region and IRQ commands,
 *    reset; not DMA maps nor migration data, which are not the device's) wakes a device in
 *    low power for the access. After entry (3) it goes back once the access is done; after
 *    entry with wakeup (4) it stays awake: the eventfd is signalled and low power is off,
 *    single-shot.
 *  - LOW_POWER_EXIT (5), SET only: low power off; always 0, so exit is idempotent. On a
 *    device in low power after (4), the exit's own access is the wake, which signals.
 *  - A client that goes away leaves low power off, with no wakeup.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "server_priv.h"

#define FEATURE_LOW_POWER_ENTRY		    3
#define FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP 4
#define FEATURE_LOW_POWER_EXIT		    5

bool vfu_is_power_feature(uint32_t feature)
{
	return feature >= FEATURE_LOW_POWER_ENTRY && feature <= FEATURE_LOW_POWER_EXIT;
}

static void tell(struct dmalog_vfu_server *s)
{
	if (s->cfg.power)
		s->cfg.power(s->cfg.opaque, s->pm_engaged, s->pm_suspended);
}

static void signal_fd(int fd)
{
	uint64_t one = 1;

	if (write(fd, &one, sizeof(one)) < 0) {
		/* A full counter has been signalled already. */
	}
}

void vfu_power_wake(struct dmalog_vfu_server *s)
{
	if (!s->pm_suspended)
		return;
	s->pm_suspended = false;
	if (s->pm_wake_fd >= 0) {
		signal_fd(s->pm_wake_fd);
		close(s->pm_wake_fd);
		s->pm_wake_fd = -1;
		s->pm_engaged = false;
	}
	tell(s);
}

void vfu_power_idle(struct dmalog_vfu_server *s)
{
	if (!s->pm_engaged || s->pm_suspended || s->cfg.no_runtime_pm)
		return;
	s->pm_suspended = true;
	tell(s);
}

/* Low power off without a wakeup (LOW_POWER_EXIT's own handling, a client gone). */
static void power_off(struct dmalog_vfu_server *s)
{
	bool changed = s->pm_engaged || s->pm_suspended;

	if (s->pm_wake_fd >= 0)
		close(s->pm_wake_fd);
	s->pm_wake_fd = -1;
	s->pm_engaged = s->pm_suspended = false;
	if (changed)
		tell(s);
}

void vfu_power_release(struct dmalog_vfu_server *s)
{
	power_off(s);
}

/* Whether @fd is an eventfd, as eventfd_ctx_fdget() asks of a file. */
static bool is_eventfd(int fd)
{
	char path[40], target[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, target, sizeof(target) - 1);
	if (n < 0)
		return false;
	target[n] = 0;
	return !strcmp(target, "anon_inode:[eventfd]");
}

int vfu_power_feature(struct dmalog_vfu_server *s, uint32_t flags, uint32_t argsz, const uint8_t *d,
		      size_t len, const int *fds, unsigned int nfds)
{
	uint32_t feature = flags & VFIO_DEVICE_FEATURE_MASK;
	bool wakeup = feature == FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP;
	struct dmalog_vfu_low_power_wakeup w;
	size_t minsz = wakeup ? sizeof(w) : 0;
	int fd;

	/* vfio_check_feature(flags, argsz, VFIO_DEVICE_FEATURE_SET, minsz) */
	if (flags & VFIO_DEVICE_FEATURE_GET)
		return -EINVAL;
	if (flags & VFIO_DEVICE_FEATURE_PROBE)
		return nfds ? -EINVAL : 0;
	if (!(flags & VFIO_DEVICE_FEATURE_SET) ||
	    argsz < sizeof(struct dmalog_vfu_feature) + minsz || len < minsz)
		return -EINVAL;
	if (!wakeup && nfds)
		return -EINVAL;
	if (feature == FEATURE_LOW_POWER_EXIT) {
		power_off(s);
		return 0;
	}
	fd = -1;
	if (wakeup) {
		memcpy(&w, d, sizeof(w));
		if (w.wakeup_eventfd < 0)
			return -EINVAL;
		if ((uint32_t)w.wakeup_eventfd >= nfds)
			return -EBADF;
		if (!is_eventfd(fds[w.wakeup_eventfd]))
			return -EINVAL;
	}
	if (s->pm_engaged)
		return -EINVAL;
	if (wakeup) {
		fd = fcntl(fds[w.wakeup_eventfd], F_DUPFD_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
	}
	s->pm_engaged = true;
	s->pm_wake_fd = fd;
	tell(s);
	return 0;
}
