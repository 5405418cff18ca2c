// SPDX-License-Identifier: MIT
/*
 * The vfio-user server: each command checked against what arrived (sizes, argsz, counts,
 * fds, ranges) before anything is done, then handed to the device through
 * dmalog_device_ioctl() in the kernel's layout, so the device answers with the kernel's
 * errnos. A malformed command gets an error reply; only a broken framing ends a connection.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "server_priv.h"

#define DEFAULT_TIMEOUT_MS 30000
#define FEATURE_DATA_MAX   4096 /* data of a feature the server passes through unread */

static const char *const command_names[] = {
	[DMALOG_VFU_VERSION] = "VERSION",
	[DMALOG_VFU_DMA_MAP] = "DMA_MAP",
	[DMALOG_VFU_DMA_UNMAP] = "DMA_UNMAP",
	[DMALOG_VFU_DEVICE_GET_INFO] = "DEVICE_GET_INFO",
	[DMALOG_VFU_DEVICE_GET_REGION_INFO] = "DEVICE_GET_REGION_INFO",
	[DMALOG_VFU_DEVICE_GET_REGION_IO_FDS] = "DEVICE_GET_REGION_IO_FDS",
	[DMALOG_VFU_DEVICE_GET_IRQ_INFO] = "DEVICE_GET_IRQ_INFO",
	[DMALOG_VFU_DEVICE_SET_IRQS] = "DEVICE_SET_IRQS",
	[DMALOG_VFU_REGION_READ] = "REGION_READ",
	[DMALOG_VFU_REGION_WRITE] = "REGION_WRITE",
	[DMALOG_VFU_DMA_READ] = "DMA_READ",
	[DMALOG_VFU_DMA_WRITE] = "DMA_WRITE",
	[DMALOG_VFU_DEVICE_RESET] = "DEVICE_RESET",
	[DMALOG_VFU_REGION_WRITE_MULTI] = "REGION_WRITE_MULTI",
	[DMALOG_VFU_DEVICE_FEATURE] = "DEVICE_FEATURE",
	[DMALOG_VFU_MIG_DATA_READ] = "MIG_DATA_READ",
	[DMALOG_VFU_MIG_DATA_WRITE] = "MIG_DATA_WRITE",
};

const char *dmalog_vfu_command_name(uint16_t command)
{
	if (command >= sizeof(command_names) / sizeof(command_names[0]) || !command_names[command])
		return "unknown";
	return command_names[command];
}

/* The device's migration state now (RUNNING for a device without migration). */
static uint32_t device_state(struct dmalog_device *dev)
{
	struct {
		struct dmalog_vfu_feature hdr; /* struct vfio_device_feature's argsz and flags */
		struct vfio_device_feature_mig_state state;
	} k = {.hdr = {.argsz = sizeof(k),
		       .flags = VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE}};

	return dmalog_device_ioctl(dev, VFIO_DEVICE_FEATURE, &k) ? VFIO_DEVICE_STATE_RUNNING
								 : k.state.device_state;
}

/* Regions and interrupts the protocol can describe: counts, fds and areas in bounds. */
static bool device_valid(const struct dmalog_vfu_server_config *c)
{
	if (c->nregions > DMALOG_VFU_MAX_REGIONS || c->nirqs > DMALOG_VFU_MAX_IRQ_TYPES ||
	    (c->nregions && (!c->regions || !c->region_access)) || (c->nirqs && !c->irqs))
		return false;
	for (uint32_t i = 0; i < c->nregions; i++) {
		const struct dmalog_vfu_region *r = &c->regions[i];

		if (r->flags & ~(VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE |
				 VFIO_REGION_INFO_FLAG_MMAP) ||
		    r->nareas > DMALOG_VFU_MAX_SPARSE_AREAS ||
		    (r->flags & VFIO_REGION_INFO_FLAG_MMAP && r->fd < 0))
			return false;
		for (uint32_t a = 0; a < r->nareas; a++)
			if (r->areas[a].offset > r->size ||
			    r->areas[a].size > r->size - r->areas[a].offset)
				return false;
	}
	for (uint32_t i = 0; i < c->nirqs; i++)
		if (c->irqs[i].count > DMALOG_VFU_MAX_IRQS)
			return false;
	return true;
}

int dmalog_vfu_server_create(const struct dmalog_vfu_server_config *cfg,
			     struct dmalog_vfu_server **out)
{
	struct dmalog_vfu_server *s;

	if (!cfg || !out || cfg->size < offsetof(struct dmalog_vfu_server_config, trace) ||
	    !cfg->dev)
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	memcpy(&s->cfg, cfg, cfg->size < sizeof(s->cfg) ? cfg->size : sizeof(s->cfg));
	if (!device_valid(&s->cfg)) {
		free(s);
		return -EINVAL;
	}
	if (s->cfg.nregions)
		memcpy(s->regions, s->cfg.regions, s->cfg.nregions * sizeof(s->regions[0]));
	if (s->cfg.nirqs)
		memcpy(s->irq_types, s->cfg.irqs, s->cfg.nirqs * sizeof(s->irq_types[0]));
	vfu_irqs_init(s);
	vfu_dma_init(s);
	s->pm_wake_fd = -1;
	s->reply_fd = -1;
	if (!s->cfg.timeout_ms)
		s->cfg.timeout_ms = DEFAULT_TIMEOUT_MS;
	s->maps = calloc(DMALOG_VFU_MAX_DMA_MAPS, sizeof(*s->maps));
	s->rx = malloc(VFU_MAX_MSG);
	s->reply_cap = VFU_MAX_MSG;
	s->reply = malloc(s->reply_cap);
	s->data_fd = -1;
	if (!s->maps || !s->rx || !s->reply) {
		dmalog_vfu_server_destroy(s);
		return -ENOMEM;
	}
	vfu_caps_default(&s->client);
	s->max_data_xfer = DMALOG_VFU_MAX_DATA_XFER;
	s->dev_state = device_state(s->cfg.dev);
	*out = s;
	return 0;
}

static void close_data(struct dmalog_vfu_server *s)
{
	if (s->data_fd >= 0)
		close(s->data_fd);
	s->data_fd = -1;
}

void dmalog_vfu_server_disconnect(struct dmalog_vfu_server *s)
{
	struct vfio_device_feature stop = {
		.argsz = sizeof(stop),
		.flags = VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP,
	};

	/* Logging off for the next client (0 or -EINVAL when it was not on). */
	dmalog_device_ioctl(s->cfg.dev, VFIO_DEVICE_FEATURE, &stop);
	for (uint32_t i = 0; i < s->nmaps; i++)
		if (s->cfg.dma_unmap)
			s->cfg.dma_unmap(s->cfg.opaque, s->maps[i].iova, s->maps[i].size);
	pthread_mutex_lock(&s->maps_lock);
	for (uint32_t i = 0; i < s->nmaps; i++)
		if (s->maps[i].host)
			munmap(s->maps[i].host, s->maps[i].size);
	s->nmaps = 0;
	pthread_mutex_unlock(&s->maps_lock);
	close_data(s);
	vfu_irqs_release(s);
	vfu_power_release(s);
	s->negotiated = false;
	vfu_caps_default(&s->client);
	__atomic_store_n(&s->max_data_xfer, DMALOG_VFU_MAX_DATA_XFER, __ATOMIC_RELAXED);
}

void dmalog_vfu_server_destroy(struct dmalog_vfu_server *s)
{
	if (!s)
		return;
	if (s->maps)
		dmalog_vfu_server_disconnect(s);
	pthread_mutex_destroy(&s->irq_lock);
	vfu_dma_destroy(s);
	free(s->maps);
	free(s->rx);
	free(s->reply);
	free(s);
}

void dmalog_vfu_server_stop(struct dmalog_vfu_server *s)
{
	__atomic_store_n(&s->stop, 1, __ATOMIC_RELEASE);
}

uint8_t *vfu_reply_room(struct dmalog_vfu_server *s, size_t len)
{
	size_t need = sizeof(struct dmalog_vfu_hdr) + len;

	if (need > s->reply_cap) {
		uint8_t *p = realloc(s->reply, need);

		if (!p)
			return NULL;
		s->reply = p;
		s->reply_cap = need;
	}
	return s->reply + sizeof(struct dmalog_vfu_hdr);
}

/* ---- the commands: each returns the reply payload's length, or -errno for an error reply */

static int cmd_version(struct dmalog_vfu_server *s, const uint8_t *p, size_t len)
{
	struct dmalog_vfu_version v;
	struct vfu_caps ours = {0};
	uint8_t *out;
	int ret, n;

	if (s->negotiated || len < sizeof(v))
		return -EINVAL;
	memcpy(&v, p, sizeof(v));
	if (v.major != DMALOG_VFU_MAJOR)
		return -ENOTSUP;
	if (len > sizeof(v)) {
		ret = vfu_caps_parse((const char *)p + sizeof(v), len - sizeof(v), &s->client);
		if (ret)
			return ret;
	}
	ours.max_msg_fds = DMALOG_VFU_MAX_MSG_FDS;
	__atomic_store_n(&s->max_data_xfer,
			 s->client.max_data_xfer_size < DMALOG_VFU_MAX_DATA_XFER
				 ? s->client.max_data_xfer_size
				 : DMALOG_VFU_MAX_DATA_XFER,
			 __ATOMIC_RELAXED);
	ours.max_data_xfer_size = s->max_data_xfer;
	ours.pgsizes = 4096;
	ours.max_dma_maps = DMALOG_VFU_MAX_DMA_MAPS;
	ours.migration = s->client.migration;
	ours.migration_pgsize = 4096;
	ours.max_bitmap_size = DMALOG_VFU_MAX_BITMAP_BYTES;
	out = vfu_reply_room(s, sizeof(v) + 512);
	if (!out)
		return -ENOMEM;
	v.minor = v.minor < DMALOG_VFU_MINOR ? v.minor : DMALOG_VFU_MINOR;
	memcpy(out, &v, sizeof(v));
	n = vfu_caps_write(&ours, (char *)out + sizeof(v), 512);
	if (n < 0)
		return n;
	s->negotiated = true;
	return (int)sizeof(v) + n;
}

uint32_t vfu_map_index(const struct dmalog_vfu_server *s, uint64_t iova)
{
	uint32_t lo = 0, hi = s->nmaps;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (s->maps[mid].iova + s->maps[mid].size <= iova)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int cmd_dma_map(struct dmalog_vfu_server *s, const uint8_t *p, size_t len, const int *fds,
		       unsigned int nfds)
{
	struct dmalog_vfu_dma_map m;
	struct vfu_map *slot;
	uint32_t at;
	void *host = NULL;
	int prot;

	if (len != sizeof(m) || nfds > 1)
		return -EINVAL;
	memcpy(&m, p, sizeof(m));
	if (m.argsz < sizeof(m) ||
	    m.flags & ~(DMALOG_VFU_DMA_READABLE | DMALOG_VFU_DMA_WRITEABLE) || !m.size ||
	    m.addr + m.size < m.addr || m.offset + m.size < m.offset ||
	    (m.addr | m.size | m.offset) & 4095 || (!nfds && m.offset))
		return -EINVAL;
	if (s->nmaps == DMALOG_VFU_MAX_DMA_MAPS)
		return -ENOSPC;
	at = vfu_map_index(s, m.addr);
	if (at < s->nmaps && s->maps[at].iova < m.addr + m.size)
		return -EEXIST;
	if (nfds) {
		struct stat st;

		/* A file too short for the map would fault the device's first DMA past its end. */
		if (fstat(fds[0], &st))
			return -errno;
		if (S_ISREG(st.st_mode) && (uint64_t)st.st_size < m.offset + m.size)
			return -EINVAL;
		prot = (m.flags & DMALOG_VFU_DMA_READABLE ? PROT_READ : 0) |
		       (m.flags & DMALOG_VFU_DMA_WRITEABLE ? PROT_WRITE : 0);
		host = mmap(NULL, (size_t)m.size, prot ? prot : PROT_NONE, MAP_SHARED, fds[0],
			    (off_t)m.offset);
		if (host == MAP_FAILED)
			return -errno;
	}
	pthread_mutex_lock(&s->maps_lock);
	slot = &s->maps[at];
	memmove(slot + 1, slot, (s->nmaps - at) * sizeof(*slot));
	*slot = (struct vfu_map){.iova = m.addr, .size = m.size, .flags = m.flags, .host = host};
	s->nmaps++;
	pthread_mutex_unlock(&s->maps_lock);
	if (s->cfg.dma_map)
		s->cfg.dma_map(s->cfg.opaque, m.addr, m.size, host, m.flags);
	return 0;
}

static int cmd_dma_unmap(struct dmalog_vfu_server *s, const uint8_t *p, size_t len)
{
	struct dmalog_vfu_dma_unmap u;
	uint32_t at;
	uint8_t *out;

	if (len != sizeof(u))
		return -EINVAL;
	memcpy(&u, p, sizeof(u));
	/* The legacy dirty-bitmap and unmap-all flags are not in this version of the spec. */
	if (u.argsz < sizeof(u) || u.flags)
		return -EINVAL;
	at = vfu_map_index(s, u.addr);
	if (at == s->nmaps || s->maps[at].iova != u.addr || s->maps[at].size != u.size)
		return -EINVAL;
	/* Nothing may touch it any more before the reply says it is gone. */
	if (s->cfg.dma_unmap)
		s->cfg.dma_unmap(s->cfg.opaque, u.addr, u.size);
	pthread_mutex_lock(&s->maps_lock);
	if (s->maps[at].host)
		munmap(s->maps[at].host, (size_t)s->maps[at].size);
	memmove(&s->maps[at], &s->maps[at + 1], (s->nmaps - at - 1) * sizeof(s->maps[0]));
	s->nmaps--;
	pthread_mutex_unlock(&s->maps_lock);
	out = vfu_reply_room(s, sizeof(u));
	if (!out)
		return -ENOMEM;
	memcpy(out, &u, sizeof(u));
	return sizeof(u);
}

static int cmd_device_info(struct dmalog_vfu_server *s, const uint8_t *p, size_t len)
{
	struct dmalog_vfu_device_info info;
	uint8_t *out;

	if (len != sizeof(info))
		return -EINVAL;
	memcpy(&info, p, sizeof(info));
	if (info.argsz < sizeof(info) || info.flags || info.num_regions || info.num_irqs)
		return -EINVAL;
	info = (struct dmalog_vfu_device_info){
		.argsz = sizeof(info),
		.flags = VFIO_DEVICE_FLAGS_RESET | VFIO_DEVICE_FLAGS_PCI,
		.num_regions = s->cfg.nregions,
		.num_irqs = s->cfg.nirqs,
	};
	out = vfu_reply_room(s, sizeof(info));
	if (!out)
		return -ENOMEM;
	memcpy(out, &info, sizeof(info));
	return sizeof(info);
}

/* The device is about to go to @state (@done false), or is in @state now: the embedder hears. */
static void state_is(struct dmalog_vfu_server *s, uint32_t state, bool done)
{
	if (done)
		s->dev_state = state;
	if (s->cfg.state_changed)
		s->cfg.state_changed(s->cfg.opaque, state, done);
}

static int cmd_reset(struct dmalog_vfu_server *s, size_t len)
{
	int ret;

	if (len)
		return -EINVAL;
	close_data(s);
	state_is(s, VFIO_DEVICE_STATE_RUNNING, false);
	ret = dmalog_device_ioctl(s->cfg.dev, VFIO_DEVICE_RESET, NULL);
	state_is(s, ret ? device_state(s->cfg.dev) : VFIO_DEVICE_STATE_RUNNING, true);
	return ret;
}

/*
 * A kernel-layout feature request: struct vfio_device_feature's argsz and flags (the same
 * layout as vfio-user's), then its data.
 */
struct kfeature {
	struct dmalog_vfu_feature hdr;
	union {
		struct vfio_device_feature_dma_logging_control control;
		struct vfio_device_feature_dma_logging_report report;
		struct vfio_device_feature_mig_state state;
		uint8_t raw[FEATURE_DATA_MAX];
	} u;
};

static int feature_ioctl(struct dmalog_vfu_server *s, struct kfeature *k, uint32_t flags,
			 size_t data_len)
{
	k->hdr.argsz = (uint32_t)(sizeof(k->hdr) + data_len);
	k->hdr.flags = flags;
	return dmalog_device_ioctl(s->cfg.dev, VFIO_DEVICE_FEATURE, k);
}

/* The feature reply: its argsz and flags, then @len bytes of data. */
static int feature_reply(struct dmalog_vfu_server *s, uint32_t flags, const void *data, size_t len)
{
	struct dmalog_vfu_feature f = {.argsz = (uint32_t)(sizeof(f) + len), .flags = flags};
	uint8_t *out = vfu_reply_room(s, sizeof(f) + len);

	if (!out)
		return -ENOMEM;
	memcpy(out, &f, sizeof(f));
	if (len)
		memcpy(out + sizeof(f), data, len);
	return (int)(sizeof(f) + len);
}

/* DMA_LOGGING_START: ranges inline; none means every DMA map (the spec's "log all writes"). */
static int logging_start(struct dmalog_vfu_server *s, uint32_t flags, const uint8_t *d, size_t len)
{
	struct dmalog_vfu_logging_start st;
	struct vfio_device_feature_dma_logging_range *ranges;
	struct kfeature k = {0};
	uint32_t n;
	int ret;

	if (len < sizeof(st))
		return -EINVAL;
	memcpy(&st, d, sizeof(st));
	n = st.num_ranges ? st.num_ranges : s->nmaps;
	/* The count must be what arrived: not one range more or less. */
	if (st.reserved || !n || (st.num_ranges && len - sizeof(st) != (uint64_t)n * 16) ||
	    (!st.num_ranges && len != sizeof(st)))
		return -EINVAL;
	ranges = malloc((size_t)n * sizeof(*ranges));
	if (!ranges)
		return -ENOMEM;
	for (uint32_t i = 0; i < n; i++) {
		if (st.num_ranges) {
			memcpy(&ranges[i], d + sizeof(st) + 16 * i, 16);
		} else {
			ranges[i].iova = s->maps[i].iova;
			ranges[i].length = s->maps[i].size;
		}
	}
	k.u.control.page_size = st.page_size;
	k.u.control.num_ranges = n;
	k.u.control.ranges = (uintptr_t)ranges;
	ret = feature_ioctl(s, &k, flags, sizeof(k.u.control));
	free(ranges);
	if (ret)
		return ret;
	/* The reply is the request with the page size the tracker chose. */
	ret = feature_reply(s, flags, d, len);
	if (ret > 0)
		memcpy(s->reply + sizeof(struct dmalog_vfu_hdr) + sizeof(struct dmalog_vfu_feature),
		       &k.u.control.page_size, sizeof(k.u.control.page_size));
	return ret;
}

/*
 * DMA_LOGGING_REPORT: the bitmap comes back inline. A client whose argsz cannot hold it gets
 * the size it needs and no report (nothing is cleared that it could not receive).
 */
static int logging_report(struct dmalog_vfu_server *s, uint32_t argsz, uint32_t flags,
			  const uint8_t *d, size_t len)
{
	struct dmalog_vfu_logging_report r;
	struct dmalog_vfu_feature f;
	struct kfeature k = {0};
	uint64_t pages, bytes;
	uint8_t *out;
	int ret;

	if (len != sizeof(r))
		return -EINVAL;
	memcpy(&r, d, sizeof(r));
	ret = vfu_report_size(r.iova, r.length, r.page_size, &pages, &bytes);
	if (ret)
		return ret;
	f.flags = flags;
	f.argsz = (uint32_t)(sizeof(f) + sizeof(r) + bytes);
	if (argsz < f.argsz) {
		out = vfu_reply_room(s, sizeof(f) + sizeof(r));
		if (!out)
			return -ENOMEM;
		memcpy(out, &f, sizeof(f));
		memcpy(out + sizeof(f), &r, sizeof(r));
		return (int)(sizeof(f) + sizeof(r));
	}
	out = vfu_reply_room(s, sizeof(f) + sizeof(r) + bytes);
	if (!out)
		return -ENOMEM;
	memcpy(out, &f, sizeof(f));
	memcpy(out + sizeof(f), &r, sizeof(r));
	memset(out + sizeof(f) + sizeof(r), 0, bytes);
	k.u.report.iova = r.iova;
	k.u.report.length = r.length;
	k.u.report.page_size = r.page_size;
	k.u.report.bitmap = (uintptr_t)(out + sizeof(f) + sizeof(r));
	ret = feature_ioctl(s, &k, flags, sizeof(k.u.report));
	return ret ? ret : (int)(sizeof(f) + sizeof(r) + bytes);
}

/*
 * MIG_DEVICE_STATE SET: the data session the arc opens is kept here for MIG_DATA_READ and
 * MIG_DATA_WRITE. A session the new state does not continue is closed first, as a kernel
 * client closes its data_fd (a resuming device checks its stream when it ends).
 */
static int set_state(struct dmalog_vfu_server *s, uint32_t flags, const uint8_t *d, size_t len)
{
	struct kfeature k = {0};
	uint32_t to;
	int ret;

	if (len != sizeof(k.u.state))
		return -EINVAL;
	memcpy(&to, d, sizeof(to));
	if (!(vfu_saving(s->dev_state) && vfu_saving(to)))
		close_data(s);
	k.u.state.device_state = to;
	k.u.state.data_fd = -1;
	state_is(s, to, false);
	ret = feature_ioctl(s, &k, flags, sizeof(k.u.state));
	state_is(s, ret ? device_state(s->cfg.dev) : to, true);
	if (ret)
		return ret;
	if (k.u.state.data_fd >= 0) {
		close_data(s);
		s->data_fd = k.u.state.data_fd;
		fcntl(s->data_fd, F_SETFL, fcntl(s->data_fd, F_GETFL) | O_NONBLOCK);
	}
	return feature_reply(s, flags, d, len);
}

static int cmd_feature(struct dmalog_vfu_server *s, const uint8_t *p, size_t len, const int *fds,
		       unsigned int nfds)
{
	struct dmalog_vfu_feature f;
	struct kfeature k = {0};
	const uint8_t *d = p + sizeof(f);
	size_t dlen = len - sizeof(f), out_len = dlen;
	uint32_t feature;
	int ret;

	if (len < sizeof(f))
		return -EINVAL;
	memcpy(&f, p, sizeof(f));
	feature = f.flags & VFIO_DEVICE_FEATURE_MASK;
	if (f.argsz < sizeof(f))
		return -EINVAL;
	/* Low power is the PCI function's, not the device driver's (vfio_pci_core's). */
	if (vfu_is_power_feature(feature)) {
		if (f.flags & ~(VFIO_DEVICE_FEATURE_MASK | VFIO_DEVICE_FEATURE_GET |
				VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_PROBE) ||
		    (!(f.flags & VFIO_DEVICE_FEATURE_PROBE) && f.flags & VFIO_DEVICE_FEATURE_GET &&
		     f.flags & VFIO_DEVICE_FEATURE_SET))
			return -EINVAL;
		ret = vfu_power_feature(s, f.flags, f.argsz, d, dlen, fds, nfds);
		return ret ? ret : feature_reply(s, f.flags, d, dlen);
	}
	if (nfds)
		return -EINVAL;
	if (f.flags & VFIO_DEVICE_FEATURE_PROBE) {
		ret = feature_ioctl(s, &k, f.flags, 0);
		return ret ? ret : feature_reply(s, f.flags, d, dlen);
	}
	if (f.flags & VFIO_DEVICE_FEATURE_SET && feature == VFIO_DEVICE_FEATURE_DMA_LOGGING_START)
		return logging_start(s, f.flags, d, dlen);
	if (f.flags & VFIO_DEVICE_FEATURE_GET && feature == VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT)
		return logging_report(s, f.argsz, f.flags, d, dlen);
	if (f.flags & VFIO_DEVICE_FEATURE_SET && feature == VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE)
		return set_state(s, f.flags, d, dlen);
	/*
	 * Everything else goes through as it came: SET with its data; GET of the fixed-size
	 * data of the feature (MIGRATION, MIG_DEVICE_STATE, MIG_DATA_SIZE: 8 bytes), within
	 * the client's argsz.
	 */
	if (dlen > FEATURE_DATA_MAX)
		return -EINVAL;
	if (f.flags & VFIO_DEVICE_FEATURE_GET) {
		out_len = f.argsz - sizeof(f) < FEATURE_DATA_MAX ? f.argsz - sizeof(f)
								 : FEATURE_DATA_MAX;
		if (feature == VFIO_DEVICE_FEATURE_MIGRATION ||
		    feature == VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE ||
		    feature == VFIO_DEVICE_FEATURE_MIG_DATA_SIZE)
			out_len = out_len < 8 ? out_len : 8;
	}
	memcpy(k.u.raw, d, dlen);
	ret = feature_ioctl(s, &k, f.flags, out_len > dlen ? out_len : dlen);
	if (ret)
		return ret;
	if (feature == VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE)
		k.u.state.data_fd = -1; /* the session stays here */
	return feature_reply(s, f.flags, k.u.raw, out_len);
}

/*
 * MIG_DATA_READ: up to @size bytes of the device's stream. In PRE_COPY what it has now (a
 * short read says "no more for now"); in STOP_COPY until @size or the end of the stream.
 */
static int cmd_data_read(struct dmalog_vfu_server *s, const uint8_t *p, size_t len)
{
	struct dmalog_vfu_mig_data m;
	double deadline = vfu_now_ms() + s->cfg.timeout_ms;
	uint8_t *out;
	size_t got = 0;

	if (len != sizeof(m))
		return -EINVAL;
	memcpy(&m, p, sizeof(m));
	if (s->data_fd < 0 || !vfu_saving(s->dev_state) || m.argsz < sizeof(m) + (uint64_t)m.size)
		return -EINVAL;
	if (m.size > s->max_data_xfer)
		m.size = (uint32_t)s->max_data_xfer;
	out = vfu_reply_room(s, sizeof(m) + m.size);
	if (!out)
		return -ENOMEM;
	while (got < m.size) {
		ssize_t n = read(s->data_fd, out + sizeof(m) + got, m.size - got);

		if (n > 0) {
			got += (size_t)n;
			continue;
		}
		if (!n)
			break;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			return -errno;
		if (s->dev_state != VFIO_DEVICE_STATE_STOP_COPY)
			break;
		if (vfu_wait(s->data_fd, POLLIN, deadline, NULL))
			return -ETIMEDOUT;
	}
	m.argsz = (uint32_t)(sizeof(m) + got);
	m.size = (uint32_t)got;
	memcpy(out, &m, sizeof(m));
	return (int)(sizeof(m) + got);
}

/* MIG_DATA_WRITE: bytes of the stream for a RESUMING device, all taken within the timeout. */
static int cmd_data_write(struct dmalog_vfu_server *s, const uint8_t *p, size_t len)
{
	struct dmalog_vfu_mig_data m;
	double deadline = vfu_now_ms() + s->cfg.timeout_ms;
	size_t put = 0;

	if (len < sizeof(m))
		return -EINVAL;
	memcpy(&m, p, sizeof(m));
	if (m.size != len - sizeof(m) || m.size > s->max_data_xfer || s->data_fd < 0 ||
	    s->dev_state != VFIO_DEVICE_STATE_RESUMING)
		return -EINVAL;
	while (put < m.size) {
		ssize_t n = write(s->data_fd, p + sizeof(m) + put, m.size - put);

		if (n > 0) {
			put += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != EAGAIN)
			return -errno;
		if (vfu_wait(s->data_fd, POLLOUT, deadline, NULL))
			return -ETIMEDOUT;
	}
	return 0;
}

static const char *const feature_names[] = {
	[VFIO_DEVICE_FEATURE_MIGRATION] = "MIGRATION",
	[VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE] = "MIG_DEVICE_STATE",
	[3] = "LOW_POWER_ENTRY",
	[4] = "LOW_POWER_ENTRY_WITH_WAKEUP",
	[5] = "LOW_POWER_EXIT",
	[VFIO_DEVICE_FEATURE_DMA_LOGGING_START] = "DMA_LOGGING_START",
	[VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP] = "DMA_LOGGING_STOP",
	[VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT] = "DMA_LOGGING_REPORT",
	[VFIO_DEVICE_FEATURE_MIG_DATA_SIZE] = "MIG_DATA_SIZE",
};

/* A line per message: the command (a feature's name and operation too), size and result. */
static void trace(struct dmalog_vfu_server *s, const struct dmalog_vfu_hdr *h, const uint8_t *p,
		  size_t len, int ret)
{
	char line[200], what[80] = "";

	if (!s->cfg.trace)
		return;
	if (h->command == DMALOG_VFU_DEVICE_FEATURE && len >= sizeof(struct dmalog_vfu_feature)) {
		struct dmalog_vfu_feature f;
		uint32_t index;

		memcpy(&f, p, sizeof(f));
		index = f.flags & VFIO_DEVICE_FEATURE_MASK;
		snprintf(what, sizeof(what), " %s%s%s %s",
			 f.flags & VFIO_DEVICE_FEATURE_PROBE ? "PROBE " : "",
			 f.flags & VFIO_DEVICE_FEATURE_GET ? "GET" : "",
			 f.flags & VFIO_DEVICE_FEATURE_SET ? "SET" : "",
			 index < sizeof(feature_names) / sizeof(feature_names[0]) &&
					 feature_names[index]
				 ? feature_names[index]
				 : "unknown");
	}
	snprintf(line, sizeof(line), "%s%s id %u size %u: %s%s",
		 dmalog_vfu_command_name(h->command), what, h->id, h->size,
		 ret < 0 ? "error " : "ok", ret < 0 ? strerror(-ret) : "");
	s->cfg.trace(s->cfg.opaque, line);
}

/* A command on the device itself (an ioctl or read/write of the device fd in the kernel). */
static int device_command(struct dmalog_vfu_server *s, const struct dmalog_vfu_hdr *h,
			  const uint8_t *p, size_t len, const int *fds, unsigned int nfds)
{
	switch (h->command) {
	case DMALOG_VFU_DEVICE_GET_INFO:
		return cmd_device_info(s, p, len);
	case DMALOG_VFU_DEVICE_GET_REGION_INFO:
		return vfu_cmd_region_info(s, p, len);
	case DMALOG_VFU_DEVICE_GET_IRQ_INFO:
		return vfu_cmd_irq_info(s, p, len);
	case DMALOG_VFU_DEVICE_SET_IRQS:
		return vfu_cmd_set_irqs(s, p, len, fds, nfds);
	case DMALOG_VFU_REGION_READ:
		return vfu_cmd_region_read(s, p, len);
	case DMALOG_VFU_REGION_WRITE:
		return vfu_cmd_region_write(s, p, len);
	case DMALOG_VFU_DEVICE_RESET:
		return cmd_reset(s, len);
	default: /* DEVICE_FEATURE */
		return cmd_feature(s, p, len, fds, nfds);
	}
}

static int dispatch(struct dmalog_vfu_server *s, const struct dmalog_vfu_hdr *h, const uint8_t *p,
		    size_t len, const int *fds, unsigned int nfds, bool fds_lost)
{
	int ret;

	/*
	 * Fds only where a command takes them: DMA_MAP one, SET_IRQS one per eventfd, a
	 * DEVICE_FEATURE its wakeup eventfd; more than a message may carry are refused.
	 */
	if (fds_lost ||
	    (nfds && h->command != DMALOG_VFU_DMA_MAP && h->command != DMALOG_VFU_DEVICE_SET_IRQS &&
	     h->command != DMALOG_VFU_DEVICE_FEATURE))
		return -EINVAL;
	if ((h->flags & DMALOG_VFU_TYPE_MASK) != DMALOG_VFU_TYPE_COMMAND)
		return -EINVAL;
	if (h->command != DMALOG_VFU_VERSION && !s->negotiated)
		return -EINVAL;
	switch (h->command) {
	case DMALOG_VFU_VERSION:
		return cmd_version(s, p, len);
	case DMALOG_VFU_DMA_MAP:
		return cmd_dma_map(s, p, len, fds, nfds);
	case DMALOG_VFU_DMA_UNMAP:
		return cmd_dma_unmap(s, p, len);
	case DMALOG_VFU_MIG_DATA_READ:
		return cmd_data_read(s, p, len);
	case DMALOG_VFU_MIG_DATA_WRITE:
		return cmd_data_write(s, p, len);
	case DMALOG_VFU_DEVICE_GET_INFO:
	case DMALOG_VFU_DEVICE_GET_REGION_INFO:
	case DMALOG_VFU_DEVICE_GET_IRQ_INFO:
	case DMALOG_VFU_DEVICE_SET_IRQS:
	case DMALOG_VFU_REGION_READ:
	case DMALOG_VFU_REGION_WRITE:
	case DMALOG_VFU_DEVICE_RESET:
	case DMALOG_VFU_DEVICE_FEATURE:
		/* A device in low power is woken for the access, and may go back after it. */
		vfu_power_wake(s);
		ret = device_command(s, h, p, len, fds, nfds);
		vfu_power_idle(s);
		return ret;
	default:
		/*
		 * GET_REGION_IO_FDS and REGION_WRITE_MULTI are optional (no ioeventfds, and
		 * write_multiple is not offered); DMA_READ/WRITE go the other way.
		 */
		return -ENOTSUP;
	}
}

static int handle(struct dmalog_vfu_server *s, const void *msg, size_t len, const int *fds,
		  unsigned int nfds, bool fds_lost, const void **reply, size_t *reply_len)
{
	struct dmalog_vfu_hdr h;
	int ret;

	*reply_len = 0;
	s->reply_fd = -1;
	if (len < sizeof(h)) {
		ret = -EBADMSG;
		goto out;
	}
	memcpy(&h, msg, sizeof(h));
	if (h.size != len || len > VFU_MAX_MSG) {
		ret = -EBADMSG;
		goto out;
	}
	ret = dispatch(s, &h, (const uint8_t *)msg + sizeof(h), len - sizeof(h), fds, nfds,
		       fds_lost);
	if (ret < 0)
		s->reply_fd = -1; /* an error reply is its header alone */
	trace(s, &h, (const uint8_t *)msg + sizeof(h), len - sizeof(h), ret);
	if (!(h.flags & DMALOG_VFU_NO_REPLY)) {
		struct dmalog_vfu_hdr r = {
			.id = h.id,
			.command = h.command,
			.size = (uint32_t)sizeof(r) + (ret > 0 ? (uint32_t)ret : 0),
			.flags = DMALOG_VFU_TYPE_REPLY | (ret < 0 ? DMALOG_VFU_ERROR : 0),
			.error = ret < 0 ? (uint32_t)-ret : 0,
		};

		memcpy(s->reply, &r, sizeof(r));
		*reply_len = r.size;
	}
	ret = 0;
out:
	/* Only now: a command may have grown (moved) the reply buffer. */
	*reply = s->reply;
	/* Fds are taken: mmap() keeps what it needs of one. */
	for (unsigned int i = 0; i < nfds; i++)
		close(fds[i]);
	return ret;
}

int dmalog_vfu_server_handle(struct dmalog_vfu_server *s, const void *msg, size_t len,
			     const int *fds, unsigned int nfds, const void **reply,
			     size_t *reply_len)
{
	return handle(s, msg, len, fds, nfds, false, reply, reply_len);
}

static bool is_reply(const uint8_t *msg)
{
	struct dmalog_vfu_hdr h;

	memcpy(&h, msg, sizeof(h));
	return (h.flags & DMALOG_VFU_TYPE_MASK) == DMALOG_VFU_TYPE_REPLY &&
	       (h.command == DMALOG_VFU_DMA_READ || h.command == DMALOG_VFU_DMA_WRITE);
}

int dmalog_vfu_server_serve(struct dmalog_vfu_server *s, int fd)
{
	int ret;

	__atomic_store_n(&s->stop, 0, __ATOMIC_RELEASE);
	vfu_dma_connected(s, fd);
	for (;;) {
		int fds[DMALOG_VFU_MAX_MSG_FDS];
		unsigned int nfds;
		const void *reply;
		size_t len, reply_len;
		bool fds_lost;

		ret = vfu_recv(fd, &s->stop, -1, (int)s->cfg.timeout_ms, s->rx, VFU_MAX_MSG, &len,
			       fds, DMALOG_VFU_MAX_MSG_FDS, &nfds, &fds_lost);
		if (ret <= 0)
			break;
		/* A reply to the device's DMA_READ / DMA_WRITE: to the thread that waits for it. */
		if (is_reply(s->rx)) {
			while (nfds)
				close(fds[--nfds]);
			ret = vfu_dma_reply(s, s->rx, len);
			if (ret)
				break;
			continue;
		}
		/* More fds than a message may carry: refused, but the bytes were whole. */
		ret = handle(s, s->rx, len, fds, nfds, fds_lost, &reply, &reply_len);
		if (!ret && reply_len)
			ret = vfu_conn_send(s, reply, reply_len, s->reply_fd);
		if (ret)
			break;
	}
	vfu_dma_disconnected(s);
	dmalog_vfu_server_disconnect(s);
	return ret;
}
