// SPDX-License-Identifier: MIT
/*
 * The vfio-user client: a device in another process behind the same handle as an in-process
 * one. The handle's ioctl() takes the kernel's layouts and turns them into messages (DMA
 * logging ranges and the REPORT bitmap inline), its data reads and writes become
 * MIG_DATA_READ and MIG_DATA_WRITE. The server is a peer like any other: every reply is
 * checked (its id, command, size and, for a REPORT, the bitmap's exact length) before use,
 * and every wait has a deadline.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <dmalog/handle.h>

#include "vfu.h"

#define DEFAULT_TIMEOUT_MS 30000
#define RX_CAP		   (sizeof(struct dmalog_vfu_hdr) + 32 + DMALOG_VFU_MAX_BITMAP_BYTES)

struct dmalog_vfu_client {
	int fd;
	int timeout_ms;
	pthread_mutex_t lock; /* one request and its reply at a time */
	uint16_t id;
	uint64_t max_data_xfer; /* the smaller of both ends' */
	uint32_t state;		/* the device state the last MIG_DEVICE_STATE set */
	uint8_t *rx;
	bool broken; /* the connection is out of step: every request fails */
	/* Maps without an fd: the server reaches them by DMA_READ / DMA_WRITE, served here. */
	struct {
		uint64_t iova, size;
		uint8_t *host;
		uint32_t flags;
	} host_maps[DMALOG_VFU_CLIENT_HOST_MAPS];
	uint32_t nhost_maps;
};

/* The host map holding all of [@iova, @iova + @len) with @flag, or -1. */
static int host_map(const struct dmalog_vfu_client *c, uint64_t iova, uint64_t len, uint32_t flag)
{
	for (uint32_t i = 0; i < c->nhost_maps; i++) {
		uint64_t start = c->host_maps[i].iova, size = c->host_maps[i].size;

		if (iova >= start && len <= size && iova - start <= size - len &&
		    c->host_maps[i].flags & flag)
			return (int)i;
	}
	return -1;
}

/*
 * A command from the server (in c->rx, @len bytes): DMA_READ / DMA_WRITE of a map without an
 * fd, each checked against what arrived and what was mapped (-EINVAL malformed, -EFAULT not
 * inside one map that allows it), anything else -ENOTSUP; answered unless No_reply. 0, or the
 * connection's -errno.
 */
static int serve_command(struct dmalog_vfu_client *c, size_t len)
{
	struct dmalog_vfu_hdr h, r;
	struct dmalog_vfu_dma_rw rw;
	const uint8_t *p = c->rx + sizeof(h);
	size_t plen = len - sizeof(h), out_len = 0;
	uint8_t *reply = NULL;
	int err = 0, at, ret;

	memcpy(&h, c->rx, sizeof(h));
	if (h.command != DMALOG_VFU_DMA_READ && h.command != DMALOG_VFU_DMA_WRITE) {
		err = ENOTSUP;
	} else if (plen < sizeof(rw)) {
		err = EINVAL;
	} else {
		memcpy(&rw, p, sizeof(rw));
		if (rw.count > DMALOG_VFU_MAX_DATA_XFER ||
		    (h.command == DMALOG_VFU_DMA_READ ? plen != sizeof(rw)
						      : plen - sizeof(rw) != rw.count))
			err = EINVAL;
	}
	at = err ? -1
		 : host_map(c, rw.address, rw.count,
			    h.command == DMALOG_VFU_DMA_READ ? DMALOG_VFU_DMA_READABLE
							     : DMALOG_VFU_DMA_WRITEABLE);
	if (!err && at < 0)
		err = EFAULT;
	if (!err) {
		uint8_t *mem = c->host_maps[at].host + (rw.address - c->host_maps[at].iova);

		if (h.command == DMALOG_VFU_DMA_WRITE) {
			struct dmalog_vfu_dma_write_reply wr = {rw.address, (uint32_t)rw.count};

			memcpy(mem, p + sizeof(rw), rw.count);
			out_len = sizeof(wr);
			reply = malloc(sizeof(r) + out_len);
			if (reply)
				memcpy(reply + sizeof(r), &wr, sizeof(wr));
		} else {
			out_len = sizeof(rw) + rw.count;
			reply = malloc(sizeof(r) + out_len);
			if (reply) {
				memcpy(reply + sizeof(r), &rw, sizeof(rw));
				memcpy(reply + sizeof(r) + sizeof(rw), mem, rw.count);
			}
		}
		if (!reply)
			err = ENOMEM;
	}
	if (h.flags & DMALOG_VFU_NO_REPLY) {
		free(reply);
		return 0;
	}
	if (err) {
		free(reply);
		reply = malloc(sizeof(r));
		if (!reply)
			return -ENOMEM;
		out_len = 0;
	}
	r = (struct dmalog_vfu_hdr){.id = h.id,
				    .command = h.command,
				    .size = (uint32_t)(sizeof(r) + out_len),
				    .flags = DMALOG_VFU_TYPE_REPLY | (err ? DMALOG_VFU_ERROR : 0),
				    .error = (uint32_t)err};
	memcpy(reply, &r, sizeof(r));
	ret = vfu_send(c->fd, c->timeout_ms, reply, r.size);
	free(reply);
	return ret;
}

/*
 * Receive the next message that is not a command from the server, serving those on the way,
 * the first byte within @deadline: as vfu_recv().
 */
static int recv_reply(struct dmalog_vfu_client *c, double deadline, size_t *rx_len, int *rx_fds,
		      unsigned int *rx_nfds)
{
	for (;;) {
		struct dmalog_vfu_hdr h;
		double left = deadline - vfu_now_ms();
		bool lost;
		int ret;

		ret = vfu_recv(c->fd, NULL, left > 0 ? (int)left + 1 : 0, c->timeout_ms, c->rx,
			       RX_CAP, rx_len, rx_fds, DMALOG_VFU_MAX_MSG_FDS, rx_nfds, &lost);
		if (ret <= 0)
			return ret;
		memcpy(&h, c->rx, sizeof(h));
		if ((h.flags & DMALOG_VFU_TYPE_MASK) != DMALOG_VFU_TYPE_COMMAND)
			return ret;
		while (*rx_nfds)
			close(rx_fds[--*rx_nfds]);
		ret = serve_command(c, *rx_len);
		if (ret)
			return ret;
	}
}

/*
 * One request and its reply: *@body points at the reply's payload where it was received
 * (valid until the next request), *body_len its length; or -errno: the server's error,
 * -EPROTO for a reply that is not this request's, or the connection's failure.
 */
static int exchange_fd(struct dmalog_vfu_client *c, uint16_t cmd, const void *payload, size_t len,
		       const int *fds, unsigned int nfds, const uint8_t **body, size_t *body_len,
		       int *rx_fd)
{
	struct dmalog_vfu_hdr h = {.command = cmd, .size = (uint32_t)(sizeof(h) + len)}, r;
	uint8_t *msg;
	int rx_fds[DMALOG_VFU_MAX_MSG_FDS], ret;
	unsigned int rx_nfds = 0;
	size_t rx_len;

	if (c->broken)
		return -ENOTCONN;
	msg = malloc(sizeof(h) + len);
	if (!msg)
		return -ENOMEM;
	h.id = ++c->id;
	memcpy(msg, &h, sizeof(h));
	if (len)
		memcpy(msg + sizeof(h), payload, len);
	ret = vfu_send_fds(c->fd, c->timeout_ms, msg, sizeof(h) + len, fds, nfds);
	free(msg);
	if (!ret)
		ret = recv_reply(c, vfu_now_ms() + c->timeout_ms, &rx_len, rx_fds, &rx_nfds);
	/* The first fd to the caller that wants one (a successful reply's); the rest closed. */
	if (rx_fd)
		*rx_fd = -1;
	if (ret > 0 && rx_nfds && rx_fd && rx_len >= sizeof(r)) {
		memcpy(&r, c->rx, sizeof(r));
		if (!(r.flags & DMALOG_VFU_ERROR))
			*rx_fd = rx_fds[0], rx_fds[0] = -1;
	}
	while (ret > 0 && rx_nfds)
		if (rx_fds[--rx_nfds] >= 0)
			close(rx_fds[rx_nfds]);
	if (ret <= 0) {
		c->broken = true;
		return ret ? ret : -ECONNRESET;
	}
	memcpy(&r, c->rx, sizeof(r));
	if (r.id != h.id || r.command != cmd ||
	    (r.flags & DMALOG_VFU_TYPE_MASK) != DMALOG_VFU_TYPE_REPLY) {
		c->broken = true;
		ret = -EPROTO;
	} else if (r.flags & DMALOG_VFU_ERROR) {
		ret = r.error && r.error < 4096 ? -(int)r.error : -EIO;
	} else {
		*body = c->rx + sizeof(r);
		*body_len = rx_len - sizeof(r);
		return 0;
	}
	if (rx_fd && *rx_fd >= 0) {
		close(*rx_fd);
		*rx_fd = -1;
	}
	return ret;
}

static int exchange(struct dmalog_vfu_client *c, uint16_t cmd, const void *payload, size_t len,
		    const int *fds, unsigned int nfds, const uint8_t **body, size_t *body_len)
{
	return exchange_fd(c, cmd, payload, len, fds, nfds, body, body_len, NULL);
}

/* The same with the payload copied into @out (at most @cap bytes: -EMSGSIZE beyond). */
static int request(struct dmalog_vfu_client *c, uint16_t cmd, const void *payload, size_t len,
		   const int *fds, unsigned int nfds, void *out, size_t cap, size_t *out_len)
{
	const uint8_t *body;
	size_t body_len;
	int ret = exchange(c, cmd, payload, len, fds, nfds, &body, &body_len);

	if (ret)
		return ret;
	if (body_len > cap)
		return -EMSGSIZE;
	if (body_len && out)
		memcpy(out, body, body_len);
	if (out_len)
		*out_len = body_len;
	return 0;
}

int dmalog_vfu_client_connect(int fd, uint32_t timeout_ms, struct dmalog_vfu_client **out)
{
	static const char caps[] = "{\"capabilities\":{\"max_msg_fds\":8,"
				   "\"max_data_xfer_size\":1048576,\"pgsizes\":4096,"
				   "\"max_dma_maps\":65535}}";
	uint8_t req[sizeof(struct dmalog_vfu_version) + sizeof(caps)], reply[1024];
	struct dmalog_vfu_version v = {DMALOG_VFU_MAJOR, DMALOG_VFU_MINOR};
	struct dmalog_vfu_client *c;
	struct vfu_caps theirs;
	size_t len;
	int ret;

	if (fd < 0 || !out)
		return -EINVAL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->fd = fd;
	c->timeout_ms = timeout_ms ? (int)timeout_ms : DEFAULT_TIMEOUT_MS;
	c->state = VFIO_DEVICE_STATE_RUNNING;
	pthread_mutex_init(&c->lock, NULL);
	c->rx = malloc(RX_CAP);
	if (!c->rx) {
		dmalog_vfu_client_destroy(c);
		return -ENOMEM;
	}
	memcpy(req, &v, sizeof(v));
	memcpy(req + sizeof(v), caps, sizeof(caps));
	ret = request(c, DMALOG_VFU_VERSION, req, sizeof(req), NULL, 0, reply, sizeof(reply) - 1,
		      &len);
	if (!ret && len < sizeof(v))
		ret = -EPROTO;
	if (!ret) {
		memcpy(&v, reply, sizeof(v));
		/* Same major, no newer minor; capabilities as JSON if any. */
		if (v.major != DMALOG_VFU_MAJOR || v.minor > DMALOG_VFU_MINOR ||
		    (len > sizeof(v) &&
		     vfu_caps_parse((const char *)reply + sizeof(v), len - sizeof(v), &theirs)))
			ret = -EPROTO;
		if (len <= sizeof(v))
			vfu_caps_default(&theirs);
	}
	if (ret) {
		dmalog_vfu_client_destroy(c);
		return ret;
	}
	c->max_data_xfer = theirs.max_data_xfer_size < DMALOG_VFU_MAX_DATA_XFER
				   ? theirs.max_data_xfer_size
				   : DMALOG_VFU_MAX_DATA_XFER;
	*out = c;
	return 0;
}

void dmalog_vfu_client_destroy(struct dmalog_vfu_client *c)
{
	if (!c)
		return;
	pthread_mutex_destroy(&c->lock);
	free(c->rx);
	free(c);
}

int dmalog_vfu_client_dma_map(struct dmalog_vfu_client *c, uint64_t iova, uint64_t size, int fd,
			      uint64_t offset, uint32_t flags)
{
	struct dmalog_vfu_dma_map m = {
		.argsz = sizeof(m), .flags = flags, .offset = offset, .addr = iova, .size = size};
	int ret;

	pthread_mutex_lock(&c->lock);
	ret = request(c, DMALOG_VFU_DMA_MAP, &m, sizeof(m), &fd, fd >= 0, NULL, 0, NULL);
	pthread_mutex_unlock(&c->lock);
	return ret;
}

int dmalog_vfu_client_dma_map_host(struct dmalog_vfu_client *c, uint64_t iova, uint64_t size,
				   void *host, uint32_t flags)
{
	int ret;

	if (!host || !size)
		return -EINVAL;
	pthread_mutex_lock(&c->lock);
	if (c->nhost_maps == DMALOG_VFU_CLIENT_HOST_MAPS) {
		ret = -ENOSPC;
	} else {
		ret = request(
			c, DMALOG_VFU_DMA_MAP,
			&(struct dmalog_vfu_dma_map){.argsz = sizeof(struct dmalog_vfu_dma_map),
						     .flags = flags,
						     .addr = iova,
						     .size = size},
			sizeof(struct dmalog_vfu_dma_map), NULL, 0, NULL, 0, NULL);
		if (!ret)
			c->host_maps[c->nhost_maps++] = (typeof(c->host_maps[0])){
				.iova = iova, .size = size, .host = host, .flags = flags};
	}
	pthread_mutex_unlock(&c->lock);
	return ret;
}

int dmalog_vfu_client_dma_unmap(struct dmalog_vfu_client *c, uint64_t iova, uint64_t size)
{
	struct dmalog_vfu_dma_unmap u = {.argsz = sizeof(u), .addr = iova, .size = size}, echo;
	int ret;

	pthread_mutex_lock(&c->lock);
	ret = request(c, DMALOG_VFU_DMA_UNMAP, &u, sizeof(u), NULL, 0, &echo, sizeof(echo), NULL);
	/* Only once the server says it is gone: its DMA may come until the reply. */
	for (uint32_t i = 0; !ret && i < c->nhost_maps; i++) {
		if (c->host_maps[i].iova == iova && c->host_maps[i].size == size) {
			c->host_maps[i] = c->host_maps[--c->nhost_maps];
			break;
		}
	}
	pthread_mutex_unlock(&c->lock);
	return ret;
}

int dmalog_vfu_client_serve(struct dmalog_vfu_client *c, uint32_t timeout_ms)
{
	struct dmalog_vfu_hdr h;
	double deadline = vfu_now_ms() + timeout_ms;
	int fds[DMALOG_VFU_MAX_MSG_FDS], ret, served = 0;
	unsigned int nfds = 0;
	size_t len;
	bool lost;

	pthread_mutex_lock(&c->lock);
	for (ret = c->broken ? -ENOTCONN : 0; !ret;) {
		struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
		double left = deadline - vfu_now_ms();

		ret = poll(&pfd, 1, left > 0 ? (int)left + 1 : 0);
		if (ret < 0 && errno == EINTR) {
			ret = 0;
			continue;
		}
		if (!ret)
			break;
		ret = ret < 0 ? -errno : 0;
		if (!ret)
			ret = vfu_recv(c->fd, NULL, c->timeout_ms, c->timeout_ms, c->rx, RX_CAP,
				       &len, fds, DMALOG_VFU_MAX_MSG_FDS, &nfds, &lost);
		while (ret > 0 && nfds)
			close(fds[--nfds]);
		if (ret <= 0) {
			ret = ret ? ret : -ECONNRESET;
			break;
		}
		memcpy(&h, c->rx, sizeof(h));
		/* Nothing was asked: a reply here is out of step. */
		ret = (h.flags & DMALOG_VFU_TYPE_MASK) == DMALOG_VFU_TYPE_COMMAND
			      ? serve_command(c, len)
			      : -EPROTO;
		served += !ret;
	}
	if (ret)
		c->broken = true;
	pthread_mutex_unlock(&c->lock);
	return ret ? ret : served;
}

/*
 * The capability chain of a GET_REGION_INFO reply (@len bytes from the info struct): the
 * sparse mmap areas into @r, each hop and area checked to lie inside what arrived.
 */
static int region_caps(const uint8_t *info, size_t len, uint32_t offset,
		       struct dmalog_vfu_region *r)
{
	for (unsigned int hops = 0; offset; hops++) {
		struct vfu_sparse_cap c;

		if (hops == 16 || offset < sizeof(struct dmalog_vfu_region_info) || offset > len ||
		    len - offset < 8)
			return -EPROTO;
		memcpy(&c, info + offset, 8);
		if (c.id == VFIO_REGION_INFO_CAP_SPARSE_MMAP) {
			if (len - offset < sizeof(c))
				return -EPROTO;
			memcpy(&c, info + offset, sizeof(c));
			if (c.nr_areas > DMALOG_VFU_MAX_SPARSE_AREAS ||
			    (len - offset - sizeof(c)) / 16 < c.nr_areas)
				return -EPROTO;
			r->nareas = c.nr_areas;
			memcpy(r->areas, info + offset + sizeof(c), 16 * (size_t)c.nr_areas);
			for (uint32_t a = 0; a < c.nr_areas; a++)
				if (r->areas[a].offset > r->size ||
				    r->areas[a].size > r->size - r->areas[a].offset)
					return -EPROTO;
		}
		/* Capabilities go forward only: no loops. */
		if (c.next && c.next <= offset)
			return -EPROTO;
		offset = c.next;
	}
	return 0;
}

int dmalog_vfu_client_region_info(struct dmalog_vfu_client *c, uint32_t index,
				  struct dmalog_vfu_region *out)
{
	struct dmalog_vfu_region_info info = {.argsz = sizeof(info) +
						       sizeof(struct vfu_sparse_cap) +
						       16 * DMALOG_VFU_MAX_SPARSE_AREAS,
					      .index = index};
	struct dmalog_vfu_region r = {.fd = -1};
	const uint8_t *body;
	size_t len;
	int fd = -1, ret;

	pthread_mutex_lock(&c->lock);
	ret = exchange_fd(c, DMALOG_VFU_DEVICE_GET_REGION_INFO, &info, sizeof(info), NULL, 0, &body,
			  &len, &fd);
	if (!ret && len < sizeof(info))
		ret = -EPROTO;
	if (!ret) {
		uint32_t sent = info.argsz;

		memcpy(&info, body, sizeof(info));
		r.flags = info.flags & ~VFIO_REGION_INFO_FLAG_CAPS;
		r.size = info.size;
		r.fd_offset = info.offset;
		/* More capabilities than this client takes, or a reply not what it says. */
		if (info.index != index || info.argsz > sent || len > info.argsz)
			ret = -EPROTO;
		else if (info.flags & VFIO_REGION_INFO_FLAG_CAPS)
			ret = region_caps(body, len, info.cap_offset, &r);
		/* A mappable region comes with its fd, and only then. */
		if (!ret && !!(r.flags & VFIO_REGION_INFO_FLAG_MMAP) != (fd >= 0))
			ret = -EPROTO;
	}
	pthread_mutex_unlock(&c->lock);
	if (ret) {
		if (fd >= 0)
			close(fd);
		return ret;
	}
	r.fd = fd;
	*out = r;
	return 0;
}

/* REGION_READ / REGION_WRITE of at most the negotiated transfer size, the reply checked. */
static int region_rw(struct dmalog_vfu_client *c, uint32_t index, uint64_t offset, void *buf,
		     uint32_t count, bool write)
{
	struct dmalog_vfu_region_access a = {.offset = offset, .region = index, .count = count};
	uint16_t cmd = write ? DMALOG_VFU_REGION_WRITE : DMALOG_VFU_REGION_READ;
	uint8_t *msg = NULL;
	const uint8_t *body;
	size_t len;
	int ret;

	if (count > c->max_data_xfer)
		return -EINVAL;
	if (write) {
		msg = malloc(sizeof(a) + count);
		if (!msg)
			return -ENOMEM;
		memcpy(msg, &a, sizeof(a));
		memcpy(msg + sizeof(a), buf, count);
	}
	pthread_mutex_lock(&c->lock);
	ret = exchange(c, cmd, write ? (const void *)msg : &a, sizeof(a) + (write ? count : 0),
		       NULL, 0, &body, &len);
	if (!ret) {
		struct dmalog_vfu_region_access echo;

		if (len != sizeof(echo) + (write ? 0 : count))
			ret = -EPROTO;
		else
			memcpy(&echo, body, sizeof(echo));
		if (!ret && (echo.offset != offset || echo.region != index || echo.count != count))
			ret = -EPROTO;
		if (!ret && !write)
			memcpy(buf, body + sizeof(echo), count);
	}
	pthread_mutex_unlock(&c->lock);
	free(msg);
	return ret;
}

int dmalog_vfu_client_region_read(struct dmalog_vfu_client *c, uint32_t index, uint64_t offset,
				  void *buf, uint32_t count)
{
	return region_rw(c, index, offset, buf, count, false);
}

int dmalog_vfu_client_region_write(struct dmalog_vfu_client *c, uint32_t index, uint64_t offset,
				   const void *buf, uint32_t count)
{
	return region_rw(c, index, offset, (void *)buf, count, true);
}

int dmalog_vfu_client_irq_info(struct dmalog_vfu_client *c, uint32_t index,
			       struct dmalog_vfu_irq_type *out)
{
	struct dmalog_vfu_irq_info info = {.argsz = sizeof(info), .index = index};
	size_t len;
	int ret;

	pthread_mutex_lock(&c->lock);
	ret = request(c, DMALOG_VFU_DEVICE_GET_IRQ_INFO, &info, sizeof(info), NULL, 0, &info,
		      sizeof(info), &len);
	pthread_mutex_unlock(&c->lock);
	if (!ret && (len != sizeof(info) || info.index != index))
		ret = -EPROTO;
	if (!ret)
		*out = (struct dmalog_vfu_irq_type){.flags = info.flags, .count = info.count};
	return ret;
}

int dmalog_vfu_client_set_irqs(struct dmalog_vfu_client *c, uint32_t index, uint32_t flags,
			       uint32_t start, uint32_t count, const int *eventfds,
			       const uint8_t *bools)
{
	struct dmalog_vfu_irq_set set = {.argsz = sizeof(set),
					 .flags = flags,
					 .index = index,
					 .start = start,
					 .count = count};
	uint8_t msg[sizeof(set) + DMALOG_VFU_MAX_IRQS];
	unsigned int nfds = eventfds ? count : 0;
	size_t len = sizeof(set);
	int ret;

	if (count > DMALOG_VFU_MAX_IRQS || nfds > DMALOG_VFU_MAX_MSG_FDS)
		return -EINVAL;
	if (flags & VFIO_IRQ_SET_DATA_BOOL) {
		if (!bools)
			return -EINVAL;
		memcpy(msg + sizeof(set), bools, count);
		len += count;
	}
	set.argsz = (uint32_t)len;
	memcpy(msg, &set, sizeof(set));
	pthread_mutex_lock(&c->lock);
	ret = request(c, DMALOG_VFU_DEVICE_SET_IRQS, msg, len, eventfds, nfds, NULL, 0, NULL);
	pthread_mutex_unlock(&c->lock);
	return ret;
}

/* The kernel's feature struct: its argsz and flags, then the data. */
struct kfeature {
	uint32_t argsz;
	uint32_t flags;
	uint8_t data[];
};

static int logging_start(struct dmalog_vfu_client *c, struct kfeature *k)
{
	struct vfio_device_feature_dma_logging_control ctl;
	uint8_t *msg, out[24];
	size_t len;
	int ret;

	if (k->argsz < sizeof(*k) + sizeof(ctl))
		return -EINVAL;
	memcpy(&ctl, k->data, sizeof(ctl));
	/* The kernel's own bounds, before anything is sent. */
	if (!ctl.num_ranges)
		return -EINVAL;
	if (ctl.num_ranges > DMALOG_LOG_MAX_RANGES)
		return -E2BIG;
	if (!ctl.ranges)
		return -EFAULT;
	len = 8 + 16 + 16 * (size_t)ctl.num_ranges;
	msg = malloc(len);
	if (!msg)
		return -ENOMEM;
	memcpy(msg, &(struct dmalog_vfu_feature){.argsz = 8 + 16, .flags = k->flags}, 8);
	memcpy(msg + 8,
	       &(struct dmalog_vfu_logging_start){.page_size = ctl.page_size,
						  .num_ranges = ctl.num_ranges},
	       16);
	memcpy(msg + 24, (const void *)(uintptr_t)ctl.ranges, 16 * (size_t)ctl.num_ranges);
	ret = request(c, DMALOG_VFU_DEVICE_FEATURE, msg, len, NULL, 0, msg, len, &len);
	if (!ret && len >= sizeof(out)) {
		/* The page size the device chose comes back, as the kernel writes it back. */
		memcpy(&ctl.page_size, msg + 8, 8);
		memcpy(k->data, &ctl, sizeof(ctl));
	}
	free(msg);
	return ret;
}

/* REPORT: the bitmap comes back inline, exactly as long as the range needs, ORed in. */
static int logging_report(struct dmalog_vfu_client *c, struct kfeature *k)
{
	struct vfio_device_feature_dma_logging_report rep;
	struct dmalog_vfu_logging_report r;
	uint8_t req[8 + 24];
	const uint8_t *out;
	uint64_t pages, bytes;
	size_t len;
	int ret;

	if (k->argsz < sizeof(*k) + sizeof(rep))
		return -EINVAL;
	memcpy(&rep, k->data, sizeof(rep));
	ret = vfu_report_size(rep.iova, rep.length, rep.page_size, &pages, &bytes);
	if (ret)
		return ret;
	if (!rep.bitmap)
		return -EFAULT;
	r = (struct dmalog_vfu_logging_report){rep.iova, rep.length, rep.page_size};
	memcpy(req,
	       &(struct dmalog_vfu_feature){.argsz = (uint32_t)(8 + 24 + bytes), .flags = k->flags},
	       8);
	memcpy(req + 8, &r, sizeof(r));
	/* Read in place: the bitmap is ORed into the caller's straight from the receive buffer. */
	ret = exchange(c, DMALOG_VFU_DEVICE_FEATURE, req, sizeof(req), NULL, 0, &out, &len);
	if (!ret && len != 8 + 24 + bytes)
		ret = -EPROTO;
	if (!ret) {
		uint64_t *dst = (uint64_t *)(uintptr_t)rep.bitmap, w;

		for (uint64_t i = 0; i < bytes / 8; i++) {
			memcpy(&w, out + 32 + 8 * i, 8);
			/* Bits past the range's last page are not the server's to set. */
			if (i == bytes / 8 - 1 && pages % 64)
				w &= (1ULL << (pages % 64)) - 1;
			dst[i] |= w;
		}
	}
	return ret;
}

/*
 * MIG_DEVICE_STATE SET: the session an arc opens is the server's; the caller gets a stand-in
 * data fd (/dev/null: always ready, never read) for its polls and its close, and its reads
 * and writes come through the handle's data ops.
 */
static int set_state(struct dmalog_vfu_client *c, struct kfeature *k)
{
	struct vfio_device_feature_mig_state st;
	uint8_t msg[16];
	int ret;

	if (k->argsz < sizeof(*k) + sizeof(st))
		return -EINVAL;
	memcpy(&st, k->data, sizeof(st));
	memcpy(msg, &(struct dmalog_vfu_feature){.argsz = 16, .flags = k->flags}, 8);
	memcpy(msg + 8, &(struct vfio_device_feature_mig_state){st.device_state, -1}, 8);
	ret = request(c, DMALOG_VFU_DEVICE_FEATURE, msg, sizeof(msg), NULL, 0, msg, sizeof(msg),
		      NULL);
	if (ret)
		return ret;
	st.data_fd = -1;
	if ((vfu_saving(st.device_state) || st.device_state == VFIO_DEVICE_STATE_RESUMING) &&
	    !(vfu_saving(c->state) && vfu_saving(st.device_state))) {
		st.data_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (st.data_fd < 0)
			ret = -errno;
	}
	c->state = st.device_state;
	memcpy(k->data, &st, sizeof(st));
	return ret;
}

/* Any other feature: SET with its data, GET of what fits the caller's argsz. */
static int other_feature(struct dmalog_vfu_client *c, struct kfeature *k)
{
	size_t data = k->argsz - sizeof(*k), len;
	uint8_t *msg;
	int ret;

	if (data > 4096)
		return -EINVAL;
	msg = malloc(8 + data);
	if (!msg)
		return -ENOMEM;
	memcpy(msg, k, 8 + data);
	if (k->flags & VFIO_DEVICE_FEATURE_GET && !(k->flags & VFIO_DEVICE_FEATURE_PROBE))
		ret = request(c, DMALOG_VFU_DEVICE_FEATURE, msg, 8, NULL, 0, msg, 8 + data, &len);
	else
		ret = request(c, DMALOG_VFU_DEVICE_FEATURE, msg, 8 + data, NULL, 0, msg, 8 + data,
			      &len);
	if (!ret && k->flags & VFIO_DEVICE_FEATURE_GET && !(k->flags & VFIO_DEVICE_FEATURE_PROBE)) {
		if (len < 8)
			ret = -EPROTO;
		else
			memcpy(k->data, msg + 8, len - 8);
	}
	free(msg);
	return ret;
}

/*
 * LOW_POWER_ENTRY_WITH_WAKEUP: the eventfd goes with the message, and its field says where it
 * is among the message's fds. The kernel's own checks first: a negative fd is -EINVAL.
 */
static int low_power_wakeup(struct dmalog_vfu_client *c, struct kfeature *k)
{
	struct vfio_device_low_power_entry_with_wakeup e;
	struct dmalog_vfu_low_power_wakeup w = {0};
	uint8_t msg[8 + sizeof(w)];

	if (k->argsz < sizeof(*k) + sizeof(e))
		return -EINVAL;
	memcpy(&e, k->data, sizeof(e));
	if (e.wakeup_eventfd < 0)
		return -EINVAL;
	memcpy(msg, &(struct dmalog_vfu_feature){.argsz = sizeof(msg), .flags = k->flags}, 8);
	memcpy(msg + 8, &w, sizeof(w));
	return request(c, DMALOG_VFU_DEVICE_FEATURE, msg, sizeof(msg), &e.wakeup_eventfd, 1, NULL,
		       sizeof(msg), NULL);
}

static int client_ioctl(void *priv, unsigned long request_code, void *arg)
{
	struct dmalog_vfu_client *c = priv;
	struct kfeature *k = arg;
	uint32_t feature;
	int ret;

	if (request_code == VFIO_DEVICE_RESET) {
		pthread_mutex_lock(&c->lock);
		ret = request(c, DMALOG_VFU_DEVICE_RESET, NULL, 0, NULL, 0, NULL, 0, NULL);
		if (!ret)
			c->state = VFIO_DEVICE_STATE_RUNNING;
		pthread_mutex_unlock(&c->lock);
		return ret;
	}
	if (request_code != VFIO_DEVICE_FEATURE)
		return -ENOTTY;
	if (k->argsz < sizeof(*k))
		return -EINVAL;
	feature = k->flags & VFIO_DEVICE_FEATURE_MASK;
	pthread_mutex_lock(&c->lock);
	if (k->flags & VFIO_DEVICE_FEATURE_PROBE)
		ret = other_feature(c, k);
	else if (feature == VFIO_DEVICE_FEATURE_DMA_LOGGING_START)
		ret = logging_start(c, k);
	else if (feature == VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT)
		ret = logging_report(c, k);
	else if (feature == VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE &&
		 k->flags & VFIO_DEVICE_FEATURE_SET)
		ret = set_state(c, k);
	else if (feature == VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP &&
		 k->flags & VFIO_DEVICE_FEATURE_SET)
		ret = low_power_wakeup(c, k);
	else
		ret = other_feature(c, k);
	pthread_mutex_unlock(&c->lock);
	return ret;
}

/* vfio-user has no VFIO_MIG_GET_PRECOPY_INFO. */
static int client_data_ioctl(void *priv, int data_fd, unsigned long request_code, void *arg)
{
	return -ENOTTY;
}

/*
 * MIG_DATA_READ: a short read is the end of the stream in STOP_COPY, and "nothing more now"
 * (-EAGAIN) while PRE_COPY goes on.
 */
static ssize_t client_data_read(void *priv, int data_fd, void *buf, size_t len)
{
	struct dmalog_vfu_client *c = priv;
	struct dmalog_vfu_mig_data m;
	size_t want = len < c->max_data_xfer ? len : c->max_data_xfer, got;
	const uint8_t *out;
	ssize_t ret;

	m = (struct dmalog_vfu_mig_data){.argsz = (uint32_t)(sizeof(m) + want),
					 .size = (uint32_t)want};
	pthread_mutex_lock(&c->lock);
	ret = exchange(c, DMALOG_VFU_MIG_DATA_READ, &m, sizeof(m), NULL, 0, &out, &got);
	if (!ret) {
		memcpy(&m, out, sizeof(m));
		if (got < sizeof(m) || m.size != got - sizeof(m) || m.size > want)
			ret = -EPROTO;
		else if (!m.size && c->state != VFIO_DEVICE_STATE_STOP_COPY)
			ret = -EAGAIN;
		else
			ret = m.size;
		if (ret > 0)
			memcpy(buf, out + sizeof(m), m.size);
	}
	pthread_mutex_unlock(&c->lock);
	return ret;
}

static ssize_t client_data_write(void *priv, int data_fd, const void *buf, size_t len)
{
	struct dmalog_vfu_client *c = priv;
	size_t n = len < c->max_data_xfer ? len : c->max_data_xfer;
	uint8_t *msg = malloc(sizeof(struct dmalog_vfu_mig_data) + n);
	ssize_t ret;

	if (!msg)
		return -ENOMEM;
	memcpy(msg, &(struct dmalog_vfu_mig_data){.argsz = 8, .size = (uint32_t)n}, 8);
	memcpy(msg + 8, buf, n);
	pthread_mutex_lock(&c->lock);
	ret = request(c, DMALOG_VFU_MIG_DATA_WRITE, msg, 8 + n, NULL, 0, NULL, 0, NULL);
	pthread_mutex_unlock(&c->lock);
	free(msg);
	return ret ? ret : (ssize_t)n;
}

static const struct dmalog_handle_ops client_ops = {
	.ioctl = client_ioctl,
	.data_ioctl = client_data_ioctl,
	.data_read = client_data_read,
	.data_write = client_data_write,
};

int dmalog_handle_from_vfu_client(struct dmalog_vfu_client *c, const char *name,
				  struct dmalog_handle **out)
{
	if (!c)
		return -EINVAL;
	return dmalog_handle_create(&client_ops, c, name, out);
}
