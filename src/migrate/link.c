// SPDX-License-Identifier: MIT
/*
 * Frames queued and flushed, and answers read whole, with every wait bounded: the peer is
 * hostile until checked, and a peer that stops reading or writing must not hang us.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <dmalog/migrate.h>

#include "core/crc32c.h"
#include "link.h"

double link_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/*
 * TCP: a peer host that vanishes without closing the connection is noticed by the kernel
 * too, within about the same timeout: keepalive probes once the link idles for a third of
 * it, and unacknowledged data fails the connection after all of it.
 */
static void tcp_keepalive(int fd, int timeout_ms)
{
	int domain = 0, one = 1, idle = timeout_ms / 3000 > 0 ? timeout_ms / 3000 : 1, cnt = 3;
	unsigned int user_timeout = (unsigned int)timeout_ms;
	socklen_t len = sizeof(domain);

	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) ||
	    (domain != AF_INET && domain != AF_INET6))
		return;
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &idle, sizeof(idle));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
	setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout, sizeof(user_timeout));
}

void dmalog_mig_socket_setup(int fd, uint32_t timeout_ms)
{
	/* Room for a few 1 MiB frames in flight: fewer wakeups on both ends. */
	int bytes = 8 << 20;

	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof(bytes));
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof(bytes));
	tcp_keepalive(fd, (int)timeout_ms);
}

void link_init(struct link *l, int fd, int timeout_ms)
{
	memset(l, 0, sizeof(*l));
	l->fd = fd;
	l->timeout_ms = timeout_ms;
	dmalog_mig_socket_setup(fd, (uint32_t)timeout_ms);
}

void link_fini(struct link *l)
{
	free(l->buf);
	l->buf = NULL;
	l->len = l->cap = 0;
}

uint8_t *link_frame_begin(struct link *l, uint32_t length)
{
	size_t need = l->len + DMALOG_FRAME_HDR_BYTES + length;

	if (need > l->cap) {
		size_t cap = need < 2 * l->cap ? 2 * l->cap : need;
		uint8_t *p = realloc(l->buf, cap);

		if (!p)
			return NULL;
		l->buf = p;
		l->cap = cap;
	}
	/* The header goes in when sealed; the length waits there meanwhile. */
	memcpy(l->buf + l->len + 8, &length, 4);
	return l->buf + l->len + DMALOG_FRAME_HDR_BYTES;
}

void link_frame_seal_crc(struct link *l, uint16_t type, uint32_t payload_crc)
{
	uint8_t *hdr = l->buf + l->len;
	uint32_t length;

	memcpy(&length, hdr + 8, 4);
	dmalog_frame_header_crc(hdr, type, (uint32_t)l->frames, length, payload_crc);
	if (l->tap)
		l->tap(l->tap_opaque, type, hdr, DMALOG_FRAME_HDR_BYTES + length);
	l->len += DMALOG_FRAME_HDR_BYTES + length;
	l->frames++;
}

void link_frame_seal(struct link *l, uint16_t type)
{
	uint32_t length;

	memcpy(&length, l->buf + l->len + 8, 4);
	link_frame_seal_crc(
		l, type,
		length ? dmalog_crc32c(0, l->buf + l->len + DMALOG_FRAME_HDR_BYTES, length) : 0);
}

int link_msg(struct link *l, uint16_t type, const void *msg)
{
	int fixed = dmalog_frame_fixed_bytes(type);
	uint8_t *p = fixed >= 0 ? link_frame_begin(l, (uint32_t)fixed) : NULL;

	if (!p)
		return -ENOMEM;
	if (fixed)
		dmalog_frame_encode(type, msg, p);
	link_frame_seal(l, type);
	return 0;
}

int link_raw(struct link *l, uint16_t type, const void *payload, uint32_t length)
{
	uint8_t *p = link_frame_begin(l, length);

	if (!p)
		return -ENOMEM;
	if (length)
		memcpy(p, payload, length);
	link_frame_seal(l, type);
	return 0;
}

/* Wait until @fd is ready for @events, at most @ms: 0, -ETIMEDOUT or -errno. */
static int wait_fd(int fd, short events, int ms)
{
	struct pollfd pfd = {.fd = fd, .events = events};
	int ret;

	do
		ret = poll(&pfd, 1, ms);
	while (ret < 0 && errno == EINTR);
	if (ret < 0)
		return -errno;
	return ret ? 0 : -ETIMEDOUT;
}

/* Wait until @l can take more, within its timeout, in slices when it may be told to stop. */
static int wait_writable(struct link *l)
{
	double deadline = link_now_ms() + l->timeout_ms;

	if (!l->stop)
		return wait_fd(l->fd, POLLOUT, l->timeout_ms);
	for (;;) {
		double left = deadline - link_now_ms();
		int ret;

		if (__atomic_load_n(l->stop, __ATOMIC_ACQUIRE))
			return -ESHUTDOWN;
		if (left <= 0)
			return -ETIMEDOUT;
		ret = wait_fd(l->fd, POLLOUT, left < 100 ? (int)left + 1 : 100);
		if (ret != -ETIMEDOUT)
			return ret;
	}
}

int link_flush(struct link *l)
{
	size_t off = 0;
	int ret = 0;

	while (off < l->len) {
		ssize_t n = send(l->fd, l->buf + off, l->len - off, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			/* The silence deadline restarts with every byte the peer takes. */
			ret = wait_writable(l);
			if (ret == -ESHUTDOWN) {
				snprintf(l->error, sizeof(l->error),
					 "stopped: another connection failed");
				break;
			}
			if (ret == -ETIMEDOUT) {
				snprintf(l->error, sizeof(l->error),
					 "the peer stopped reading for %d ms", l->timeout_ms);
				break;
			}
			if (ret)
				break;
			continue;
		}
		if (n < 0) {
			ret = -errno;
			snprintf(l->error, sizeof(l->error), "connection lost: %s",
				 strerror(errno));
			break;
		}
		off += (size_t)n;
		l->bytes += (uint64_t)n;
	}
	l->len = 0;
	return ret;
}

/* Read exactly @len bytes before @deadline (ms): 0, -ETIMEDOUT, -ECONNRESET at EOF, -errno. */
static int read_full(int fd, uint8_t *p, size_t len, double deadline)
{
	while (len) {
		double left = deadline - link_now_ms();
		ssize_t n;
		int ret;

		if (left <= 0)
			return -ETIMEDOUT;
		ret = wait_fd(fd, POLLIN, (int)left + 1);
		if (ret)
			return ret;
		n = recv(fd, p, len, MSG_DONTWAIT);
		if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
			continue;
		if (n < 0)
			return -errno;
		if (!n)
			return -ECONNRESET;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int link_read_frame(struct link *l, int timeout_ms, uint16_t *type, uint8_t *payload, uint32_t max,
		    uint32_t *length)
{
	uint8_t hdr[DMALOG_FRAME_HDR_BYTES];
	uint32_t crc, seq;
	double deadline;
	int ret = wait_fd(l->fd, POLLIN, timeout_ms);

	if (ret == -ETIMEDOUT)
		return -EAGAIN;
	if (ret)
		return ret;
	/* A frame has begun: the whole of it must follow within the link's timeout. */
	deadline = link_now_ms() + l->timeout_ms;
	ret = read_full(l->fd, hdr, sizeof(hdr), deadline);
	if (!ret)
		ret = dmalog_frame_parse_header(hdr, type, &seq, length, &crc);
	if (ret == -EBADMSG)
		snprintf(l->error, sizeof(l->error), "a corrupt frame header");
	if (ret == -E2BIG || (!ret && *length > max)) {
		snprintf(l->error, sizeof(l->error), "a %s frame of %u bytes (at most %u here)",
			 dmalog_frame_type_name(*type), *length, max);
		ret = -EBADMSG;
	}
	if (!ret && seq != l->rx_frames) {
		snprintf(l->error, sizeof(l->error),
			 "%s frame %u where frame %llu was expected (lost, repeated or reordered)",
			 dmalog_frame_type_name(*type), seq, (unsigned long long)l->rx_frames);
		ret = -EBADMSG;
	}
	if (!ret)
		ret = read_full(l->fd, payload, *length, deadline);
	if (!ret && (*length ? dmalog_crc32c(0, payload, *length) : 0) != crc) {
		snprintf(l->error, sizeof(l->error), "a checksum mismatch in a %s frame",
			 dmalog_frame_type_name(*type));
		ret = -EBADMSG;
	}
	if (!ret)
		l->rx_frames++;
	return ret;
}
