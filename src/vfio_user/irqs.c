// SPDX-License-Identifier: MIT
/*
 * The served device's interrupts: DEVICE_GET_IRQ_INFO, DEVICE_SET_IRQS and the device raising
 * them. SET_IRQS is checked as the kernel's vfio_set_irqs_validate_and_prepare() checks
 * struct vfio_irq_set (-EINVAL), then dispatched as vfio_pci_set_irqs_ioctl() does: an action
 * an interrupt type has no handler for is -ENOTTY (MASK and UNMASK only where the type is
 * MASKABLE; masking by eventfd is not offered, as vfio-pci does not offer it for MASK).
 * Over vfio-user an eventfd comes as SCM_RIGHTS, one per interrupt of the range; a DATA_EVENTFD
 * without fds de-assigns the range (the spec's rule, where the kernel takes -1 entries).
 */
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "server_priv.h"

#define SET_IRQS_DATA (VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_DATA_BOOL | VFIO_IRQ_SET_DATA_EVENTFD)
#define SET_IRQS_ACTION                                                                            \
	(VFIO_IRQ_SET_ACTION_MASK | VFIO_IRQ_SET_ACTION_UNMASK | VFIO_IRQ_SET_ACTION_TRIGGER)

void vfu_irqs_init(struct dmalog_vfu_server *s)
{
	pthread_mutex_init(&s->irq_lock, NULL);
	for (uint32_t t = 0; t < DMALOG_VFU_MAX_IRQ_TYPES; t++)
		for (uint32_t i = 0; i < DMALOG_VFU_MAX_IRQS; i++)
			s->irqs[t][i] = (struct vfu_irq){.trigger = -1};
}

static void irq_clear(struct vfu_irq *q)
{
	if (q->trigger >= 0)
		close(q->trigger);
	*q = (struct vfu_irq){.trigger = -1};
}

void vfu_irqs_release(struct dmalog_vfu_server *s)
{
	pthread_mutex_lock(&s->irq_lock);
	for (uint32_t t = 0; t < DMALOG_VFU_MAX_IRQ_TYPES; t++)
		for (uint32_t i = 0; i < DMALOG_VFU_MAX_IRQS; i++)
			irq_clear(&s->irqs[t][i]);
	pthread_mutex_unlock(&s->irq_lock);
}

int vfu_cmd_irq_info(struct dmalog_vfu_server *s, const uint8_t *p, size_t len)
{
	struct dmalog_vfu_irq_info info;
	uint8_t *out;

	if (len != sizeof(info))
		return -EINVAL;
	memcpy(&info, p, sizeof(info));
	if (info.argsz < sizeof(info) || info.index >= s->cfg.nirqs)
		return -EINVAL;
	info.argsz = sizeof(info);
	info.flags = s->irq_types[info.index].flags;
	info.count = s->irq_types[info.index].count;
	out = vfu_reply_room(s, sizeof(info));
	if (!out)
		return -ENOMEM;
	memcpy(out, &info, sizeof(info));
	return sizeof(info);
}

/* Signal @q's eventfd (irq_lock held): an AUTOMASKED type masks itself until UNMASK. */
static int irq_fire(struct dmalog_vfu_server *s, uint32_t type, struct vfu_irq *q)
{
	uint64_t one = 1;

	if (q->trigger < 0)
		return -ENOENT;
	if (q->masked) {
		q->pending = true;
		return -EAGAIN;
	}
	/* An eventfd's counter saturates long after any reader: a full one is not an error. */
	if (write(q->trigger, &one, sizeof(one)) < 0 && errno != EAGAIN)
		return -errno;
	if (s->irq_types[type].flags & VFIO_IRQ_INFO_AUTOMASKED)
		q->masked = true;
	return 0;
}

int dmalog_vfu_server_irq(struct dmalog_vfu_server *s, uint32_t index, uint32_t sub)
{
	int ret;

	if (!s || index >= s->cfg.nirqs || sub >= s->irq_types[index].count)
		return -EINVAL;
	pthread_mutex_lock(&s->irq_lock);
	ret = irq_fire(s, index, &s->irqs[index][sub]);
	pthread_mutex_unlock(&s->irq_lock);
	return ret;
}

/* One interrupt's action from the client (irq_lock held); @fd is for TRIGGER by eventfd. */
static int irq_action(struct dmalog_vfu_server *s, uint32_t type, struct vfu_irq *q,
		      uint32_t action, bool eventfd, int fd)
{
	switch (action) {
	case VFIO_IRQ_SET_ACTION_MASK:
		q->masked = true;
		return 0;
	case VFIO_IRQ_SET_ACTION_UNMASK:
		q->masked = false;
		if (q->pending) {
			q->pending = false;
			irq_fire(s, type, q);
		}
		return 0;
	default: /* TRIGGER */
		/* The client raising it itself: as if the device had (masked: left pending). */
		if (!eventfd) {
			irq_fire(s, type, q);
			return 0;
		}
		if (q->trigger >= 0)
			close(q->trigger);
		q->trigger = fd;
		q->pending = false;
		return 0;
	}
}

int vfu_cmd_set_irqs(struct dmalog_vfu_server *s, const uint8_t *p, size_t len, const int *fds,
		     unsigned int nfds)
{
	struct dmalog_vfu_irq_set set;
	uint32_t data, action, nirqs, flags;
	int dups[DMALOG_VFU_MAX_MSG_FDS];
	bool eventfd;

	if (len < sizeof(set))
		return -EINVAL;
	memcpy(&set, p, sizeof(set));
	data = set.flags & SET_IRQS_DATA;
	action = set.flags & SET_IRQS_ACTION;
	if (set.argsz < sizeof(set) || set.index >= s->cfg.nirqs ||
	    set.count >= UINT32_MAX - set.start || set.flags & ~(SET_IRQS_DATA | SET_IRQS_ACTION))
		return -EINVAL;
	nirqs = s->irq_types[set.index].count;
	flags = s->irq_types[set.index].flags;
	if (set.start >= nirqs || set.start + set.count > nirqs)
		return -EINVAL;
	eventfd = data == VFIO_IRQ_SET_DATA_EVENTFD;
	/* Exactly one data type, and what it says must be what arrived. */
	if (data == VFIO_IRQ_SET_DATA_NONE) {
		if (len != sizeof(set) || nfds)
			return -EINVAL;
	} else if (data == VFIO_IRQ_SET_DATA_BOOL) {
		if (len != sizeof(set) + set.count || nfds)
			return -EINVAL;
	} else if (eventfd) {
		/* An inline array (a client reusing the kernel's struct) is allowed and unread. */
		if ((len != sizeof(set) && len != sizeof(set) + 4ULL * set.count) ||
		    (nfds && nfds != set.count))
			return -EINVAL;
	} else {
		return -EINVAL;
	}
	/* The handlers the type has: exactly one action, masking only where it is maskable. */
	if ((action != VFIO_IRQ_SET_ACTION_MASK && action != VFIO_IRQ_SET_ACTION_UNMASK &&
	     action != VFIO_IRQ_SET_ACTION_TRIGGER) ||
	    (action != VFIO_IRQ_SET_ACTION_TRIGGER &&
	     (!(flags & VFIO_IRQ_INFO_MASKABLE) || eventfd)) ||
	    !(flags & VFIO_IRQ_INFO_EVENTFD))
		return -ENOTTY;
	/* TRIGGER, NONE, no range: every interrupt of the type off (the kernel's "disable"). */
	if (action == VFIO_IRQ_SET_ACTION_TRIGGER && data == VFIO_IRQ_SET_DATA_NONE && !set.count) {
		pthread_mutex_lock(&s->irq_lock);
		for (uint32_t i = 0; i < nirqs; i++)
			irq_clear(&s->irqs[set.index][i]);
		pthread_mutex_unlock(&s->irq_lock);
		return 0;
	}
	for (unsigned int i = 0; i < nfds; i++) {
		dups[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 0);
		if (dups[i] < 0) {
			int err = -errno;

			while (i)
				close(dups[--i]);
			return err;
		}
	}
	pthread_mutex_lock(&s->irq_lock);
	for (uint32_t i = 0; i < set.count; i++) {
		bool yes = data != VFIO_IRQ_SET_DATA_BOOL || p[sizeof(set) + i];

		if (yes)
			irq_action(s, set.index, &s->irqs[set.index][set.start + i], action,
				   eventfd, eventfd && nfds ? dups[i] : -1);
		else if (eventfd && nfds)
			close(dups[i]);
	}
	pthread_mutex_unlock(&s->irq_lock);
	return 0;
}
