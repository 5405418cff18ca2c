// SPDX-License-Identifier: MIT
/*
 * The connection between source and destination: TCP ("host:port") or a UNIX socket (a path,
 * or "unix:path"), and frames queued into one buffer and written out in large pieces. A
 * frame's payload is built in place in the buffer, so a page is copied once (out of guest
 * memory, which keeps changing) and checksummed where it lies.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "migrate.h"

static bool is_unix(const char *addr, const char **path)
{
	if (!strncmp(addr, "unix:", 5)) {
		*path = addr + 5;
		return true;
	}
	*path = addr;
	return strchr(addr, '/') != NULL || !strchr(addr, ':');
}

static int unix_addr(const char *path, struct sockaddr_un *sun, char *err, size_t errlen)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun->sun_path)) {
		snprintf(err, errlen, "socket path too long: %s", path);
		return -ENAMETOOLONG;
	}
	strcpy(sun->sun_path, path);
	return 0;
}

/* Resolve "host:port" (an empty host listens on every address). */
static int tcp_addr(const char *addr, bool passive, struct addrinfo **res, char *err, size_t errlen)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = passive ? AI_PASSIVE : 0};
	const char *colon = strrchr(addr, ':');
	char host[256];
	size_t n = colon ? (size_t)(colon - addr) : 0;
	int ret;

	if (!colon || n >= sizeof(host) || !colon[1]) {
		snprintf(err, errlen, "bad address '%s' (want host:port or a socket path)", addr);
		return -EINVAL;
	}
	memcpy(host, addr, n);
	host[n] = 0;
	/* "[::1]:4444" */
	if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
		memmove(host, host + 1, n - 2);
		host[n - 2] = 0;
	}
	ret = getaddrinfo(host[0] ? host : NULL, colon + 1, &hints, res);
	if (ret) {
		snprintf(err, errlen, "cannot resolve '%s': %s", addr, gai_strerror(ret));
		return -EINVAL;
	}
	return 0;
}

static int fail_errno(const char *what, const char *addr, char *err, size_t errlen)
{
	int e = errno;

	snprintf(err, errlen, "%s %s: %s", what, addr, strerror(e));
	return -e;
}

int link_listen(const char *addr, char *err, size_t errlen)
{
	struct addrinfo *res = NULL;
	struct sockaddr_un sun;
	const char *path;
	int fd, one = 1, ret;

	if (is_unix(addr, &path)) {
		ret = unix_addr(path, &sun, err, errlen);
		if (ret)
			return ret;
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) || listen(fd, 1)) {
			ret = fail_errno("cannot listen on", path, err, errlen);
			if (fd >= 0)
				close(fd);
			return ret;
		}
		return fd;
	}
	ret = tcp_addr(addr, true, &res, err, errlen);
	if (ret)
		return ret;
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (fd < 0 || bind(fd, res->ai_addr, res->ai_addrlen) || listen(fd, 1)) {
		ret = fail_errno("cannot listen on", addr, err, errlen);
		if (fd >= 0)
			close(fd);
		freeaddrinfo(res);
		return ret;
	}
	freeaddrinfo(res);
	return fd;
}

int link_accept(int lfd, char *err, size_t errlen)
{
	int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC), one = 1;

	if (fd < 0)
		return fail_errno("cannot accept on", "the listening socket", err, errlen);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

int link_connect(const char *addr, char *err, size_t errlen)
{
	struct addrinfo *res = NULL, *ai;
	struct sockaddr_un sun;
	const char *path;
	int fd = -1, one = 1, ret;

	if (is_unix(addr, &path)) {
		ret = unix_addr(path, &sun, err, errlen);
		if (ret)
			return ret;
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun))) {
			ret = fail_errno("cannot connect to", path, err, errlen);
			if (fd >= 0)
				close(fd);
			return ret;
		}
		return fd;
	}
	ret = tcp_addr(addr, false, &res, err, errlen);
	if (ret)
		return ret;
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd >= 0 && !connect(fd, ai->ai_addr, ai->ai_addrlen))
			break;
		ret = fail_errno("cannot connect to", addr, err, errlen);
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		return ret ? ret : -ECONNREFUSED;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

void link_init(struct link *l, int fd)
{
	/* Room for a few 1 MiB frames in flight: fewer wakeups on both ends. */
	int bytes = 8 << 20;

	memset(l, 0, sizeof(*l));
	l->fd = fd;
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof(bytes));
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof(bytes));
}

void link_fini(struct link *l)
{
	free(l->buf);
	if (l->fd >= 0)
		close(l->fd);
	l->fd = -1;
	l->buf = NULL;
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
	/* The header goes in when sealed; length is kept there meanwhile. */
	memcpy(l->buf + l->len + 8, &length, 4);
	return l->buf + l->len + DMALOG_FRAME_HDR_BYTES;
}

void link_frame_seal(struct link *l, uint16_t type)
{
	uint8_t *hdr = l->buf + l->len;
	uint32_t length;

	memcpy(&length, hdr + 8, 4);
	dmalog_frame_header(hdr, type, hdr + DMALOG_FRAME_HDR_BYTES, length);
	l->len += DMALOG_FRAME_HDR_BYTES + length;
	l->frames++;
}

int link_frame(struct link *l, uint16_t type, const void *payload, uint32_t length)
{
	uint8_t *p = link_frame_begin(l, length);

	if (!p)
		return -ENOMEM;
	if (length)
		memcpy(p, payload, length);
	link_frame_seal(l, type);
	return 0;
}

int link_flush(struct link *l)
{
	size_t off = 0;

	while (off < l->len) {
		ssize_t n = send(l->fd, l->buf + off, l->len - off, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;

			snprintf(l->error, sizeof(l->error), "connection lost: %s", strerror(e));
			return -e;
		}
		off += (size_t)n;
		l->bytes += (uint64_t)n;
	}
	l->len = 0;
	return 0;
}

/* Read exactly @len bytes; -ECONNRESET at EOF. */
static int read_full(int fd, uint8_t *p, size_t len)
{
	while (len) {
		ssize_t n = read(fd, p, len);

		if (n < 0 && errno == EINTR)
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
	struct pollfd pfd = {.fd = l->fd, .events = POLLIN};
	uint8_t hdr[DMALOG_FRAME_HDR_BYTES];
	uint32_t crc;
	int ret;

	ret = poll(&pfd, 1, timeout_ms);
	if (ret < 0)
		return -errno;
	if (!ret)
		return -EAGAIN;
	ret = read_full(l->fd, hdr, sizeof(hdr));
	if (!ret)
		ret = dmalog_frame_parse_header(hdr, type, length, &crc);
	if (!ret && *length > max)
		ret = -EBADMSG;
	if (!ret)
		ret = read_full(l->fd, payload, *length);
	if (!ret) {
		uint8_t check[DMALOG_FRAME_HDR_BYTES];

		dmalog_frame_header(check, *type, payload, *length);
		if (memcmp(check + 12, hdr + 12, 4))
			ret = -EBADMSG;
	}
	return ret;
}
