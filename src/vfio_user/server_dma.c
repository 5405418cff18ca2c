// SPDX-License-Identifier: MIT
/*
 * The device reaching the client's memory: directly in a map that came with an fd, by
 * DMA_READ / DMA_WRITE messages in one that did not. Those go on the connection the serve
 * loop reads, so the loop hands each reply to the thread waiting for it; one request is in
 * flight at a time. A DMA_WRITE sent with No_reply needs no hand-over: the client applies
 * messages in order, so it lands before anything the server sends after it (a STOP arc's
 * reply, say).
 *
 * The map is looked up and the message sent under maps_lock: an unmap (which takes the lock
 * to drop the map) either comes after the message in the stream, so the client sees the DMA
 * before the unmap's reply as the spec asks, or finds no DMA to that map after it.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server_priv.h"

void vfu_dma_init(struct dmalog_vfu_server *s)
{
	pthread_mutex_init(&s->conn_lock, NULL);
	pthread_mutex_init(&s->maps_lock, NULL);
	pthread_mutex_init(&s->dma_lock, NULL);
	pthread_mutex_init(&s->wait_lock, NULL);
	pthread_cond_init(&s->wait_cond, NULL);
	s->conn_fd = -1;
}

void vfu_dma_destroy(struct dmalog_vfu_server *s)
{
	pthread_cond_destroy(&s->wait_cond);
	pthread_mutex_destroy(&s->wait_lock);
	pthread_mutex_destroy(&s->dma_lock);
	pthread_mutex_destroy(&s->maps_lock);
	pthread_mutex_destroy(&s->conn_lock);
}

void vfu_dma_connected(struct dmalog_vfu_server *s, int fd)
{
	pthread_mutex_lock(&s->conn_lock);
	s->conn_fd = fd;
	s->serve_thread = pthread_self();
	pthread_mutex_unlock(&s->conn_lock);
}

void vfu_dma_disconnected(struct dmalog_vfu_server *s)
{
	pthread_mutex_lock(&s->conn_lock);
	s->conn_fd = -1;
	pthread_mutex_unlock(&s->conn_lock);
	/* A request still waiting will have no reply. */
	pthread_mutex_lock(&s->wait_lock);
	if (s->dma_wait.pending && !s->dma_wait.done) {
		s->dma_wait.err = -ECONNRESET;
		s->dma_wait.done = true;
		pthread_cond_broadcast(&s->wait_cond);
	}
	pthread_mutex_unlock(&s->wait_lock);
}

int vfu_conn_send(struct dmalog_vfu_server *s, const void *buf, size_t len, int fd)
{
	int ret;

	pthread_mutex_lock(&s->conn_lock);
	ret = s->conn_fd < 0
		      ? -ENOTCONN
		      : vfu_send_fds(s->conn_fd, (int)s->cfg.timeout_ms, buf, len, &fd, fd >= 0);
	pthread_mutex_unlock(&s->conn_lock);
	return ret;
}

/*
 * A reply on the serve loop: the waiting request's (its id and command, its address and count
 * echoed, a DMA_READ's data exactly as long as asked), or dropped. 0, or -EPROTO for a reply
 * to a request that was never made (the loop ends the connection: it is out of step).
 */
int vfu_dma_reply(struct dmalog_vfu_server *s, const uint8_t *msg, size_t len)
{
	struct dmalog_vfu_hdr h;
	struct vfu_dma_wait *w = &s->dma_wait;
	const uint8_t *p = msg + sizeof(h);
	size_t plen = len - sizeof(h);
	int ret = 0;

	memcpy(&h, msg, sizeof(h));
	pthread_mutex_lock(&s->wait_lock);
	if (!w->pending || w->done || h.id != w->id || h.command != w->cmd) {
		/* A late reply to a request that timed out is dropped; any other is not ours. */
		ret = w->pending || h.id == w->id ? 0 : -EPROTO;
		pthread_mutex_unlock(&s->wait_lock);
		return ret;
	}
	if (h.flags & DMALOG_VFU_ERROR) {
		w->err = h.error && h.error < 4096 ? -(int)h.error : -EIO;
	} else if (h.command == DMALOG_VFU_DMA_READ) {
		struct dmalog_vfu_dma_rw rw;

		if (plen != sizeof(rw) + w->count) {
			w->err = -EPROTO;
		} else {
			memcpy(&rw, p, sizeof(rw));
			w->err = rw.address == w->addr && rw.count == w->count ? 0 : -EPROTO;
			if (!w->err)
				memcpy(w->buf, p + sizeof(rw), w->count);
		}
	} else {
		struct dmalog_vfu_dma_rw rw = {0};

		/* The spec's 12-byte reply (a 4-byte count), or one with an 8-byte count. */
		if (plen == sizeof(struct dmalog_vfu_dma_write_reply)) {
			struct dmalog_vfu_dma_write_reply r;

			memcpy(&r, p, sizeof(r));
			rw.address = r.address;
			rw.count = r.count;
		} else if (plen == sizeof(rw)) {
			memcpy(&rw, p, sizeof(rw));
		}
		w->err = rw.address == w->addr && rw.count == w->count ? 0 : -EPROTO;
	}
	w->done = true;
	pthread_cond_broadcast(&s->wait_cond);
	pthread_mutex_unlock(&s->wait_lock);
	return 0;
}

/* The map holding all of [@iova, @iova + @len) with @flag, under maps_lock; NULL if none. */
static struct vfu_map *map_of(struct dmalog_vfu_server *s, uint64_t iova, size_t len, uint32_t flag)
{
	uint32_t at = vfu_map_index(s, iova);
	struct vfu_map *m = at < s->nmaps ? &s->maps[at] : NULL;

	if (!m || iova < m->iova || len > m->size || iova - m->iova > m->size - len ||
	    !(m->flags & flag))
		return NULL;
	return m;
}

/* One DMA message of at most the client's transfer size, and (@wait) its reply. */
static int dma_message(struct dmalog_vfu_server *s, uint16_t cmd, uint64_t iova, uint8_t *buf,
		       size_t len, bool wait, uint32_t flag)
{
	struct dmalog_vfu_hdr h = {.command = cmd, .flags = wait ? 0 : DMALOG_VFU_NO_REPLY};
	struct dmalog_vfu_dma_rw rw = {.address = iova, .count = len};
	struct vfu_dma_wait *w = &s->dma_wait;
	double deadline = vfu_now_ms() + s->cfg.timeout_ms;
	bool write = cmd == DMALOG_VFU_DMA_WRITE;
	uint8_t *msg;
	struct vfu_map *m;
	int ret = 0;

	msg = malloc(sizeof(h) + sizeof(rw) + (write ? len : 0));
	if (!msg)
		return -ENOMEM;
	pthread_mutex_lock(&s->maps_lock);
	m = map_of(s, iova, len, flag);
	if (!m) {
		ret = -EFAULT;
	} else if (m->host) {
		/* Mapped here: no message at all. */
		if (write)
			memcpy((uint8_t *)m->host + (iova - m->iova), buf, len);
		else
			memcpy(buf, (const uint8_t *)m->host + (iova - m->iova), len);
		wait = false;
	} else {
		pthread_mutex_lock(&s->wait_lock);
		h.id = ++s->dma_id;
		*w = (struct vfu_dma_wait){.pending = wait,
					   .id = h.id,
					   .cmd = cmd,
					   .buf = buf,
					   .addr = iova,
					   .count = len};
		pthread_mutex_unlock(&s->wait_lock);
		h.size = (uint32_t)(sizeof(h) + sizeof(rw) + (write ? len : 0));
		memcpy(msg, &h, sizeof(h));
		memcpy(msg + sizeof(h), &rw, sizeof(rw));
		if (write)
			memcpy(msg + sizeof(h) + sizeof(rw), buf, len);
		ret = vfu_conn_send(s, msg, h.size, -1);
	}
	pthread_mutex_unlock(&s->maps_lock);
	free(msg);
	if (ret || !wait)
		return ret;
	pthread_mutex_lock(&s->wait_lock);
	while (!w->done && !ret) {
		struct timespec ts;
		double left = deadline - vfu_now_ms();

		if (left <= 0) {
			ret = -ETIMEDOUT;
			break;
		}
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += (time_t)(left / 1000);
		ts.tv_nsec += (long)((left - (double)(long)(left / 1000) * 1000) * 1e6);
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&s->wait_cond, &s->wait_lock, &ts);
	}
	if (!ret)
		ret = w->err;
	w->pending = false; /* a late reply is dropped */
	pthread_mutex_unlock(&s->wait_lock);
	return ret;
}

static int dma(struct dmalog_vfu_server *s, uint16_t cmd, uint64_t iova, uint8_t *buf, size_t len,
	       bool wait)
{
	uint32_t flag =
		cmd == DMALOG_VFU_DMA_READ ? DMALOG_VFU_DMA_READABLE : DMALOG_VFU_DMA_WRITEABLE;
	size_t chunk;
	int ret = 0;

	if (!s || (!buf && len) || iova + len < iova)
		return -EINVAL;
	/* The serve loop cannot wait for a reply only it would read. */
	pthread_mutex_lock(&s->conn_lock);
	if (wait && s->conn_fd >= 0 && pthread_equal(s->serve_thread, pthread_self()))
		ret = -EDEADLK;
	pthread_mutex_unlock(&s->conn_lock);
	if (ret)
		return ret;
	pthread_mutex_lock(&s->dma_lock);
	/* The client's limit for what it receives, as VERSION set it (never over ours). */
	chunk = (size_t)__atomic_load_n(&s->max_data_xfer, __ATOMIC_RELAXED);
	for (size_t done = 0; done < len && !ret; done += chunk) {
		size_t n = len - done < chunk ? len - done : chunk;

		ret = dma_message(s, cmd, iova + done, buf + done, n, wait, flag);
	}
	pthread_mutex_unlock(&s->dma_lock);
	return ret;
}

int dmalog_vfu_server_dma_read(struct dmalog_vfu_server *s, uint64_t iova, void *buf, size_t len)
{
	return dma(s, DMALOG_VFU_DMA_READ, iova, buf, len, true);
}

int dmalog_vfu_server_dma_write(struct dmalog_vfu_server *s, uint64_t iova, const void *buf,
				size_t len, bool wait)
{
	return dma(s, DMALOG_VFU_DMA_WRITE, iova, (uint8_t *)buf, len, wait);
}
