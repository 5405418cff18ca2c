// SPDX-License-Identifier: MIT
/*
 * Sockets for `dmalog migrate`: TCP ("host:port", "[v6]:port") or a UNIX socket (a path, or
 * "unix:path"). The engine takes the connected fd; this is only how the tool gets one.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli.h"

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
	if (!path[0] || strlen(path) >= sizeof(sun->sun_path)) {
		snprintf(err, errlen, "bad socket path '%s'", path);
		return -EINVAL;
	}
	strcpy(sun->sun_path, path);
	return 0;
}

/* A port is 1 to 5 digits and at most 65535: no names, signs, spaces or wrap-around. */
static bool valid_port(const char *s)
{
	unsigned long v = 0;
	size_t n = strlen(s);

	if (!n || n > 5 || strspn(s, "0123456789") != n)
		return false;
	v = strtoul(s, NULL, 10);
	return v <= 65535;
}

/* Resolve "host:port" (an empty host listens on every address). */
static int tcp_addr(const char *addr, bool passive, struct addrinfo **res, char *err, size_t errlen)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = passive ? AI_PASSIVE : 0};
	const char *colon = strrchr(addr, ':');
	char host[256];
	size_t n = colon ? (size_t)(colon - addr) : 0;
	int ret;

	if (!colon || n >= sizeof(host) || !valid_port(colon + 1)) {
		snprintf(err, errlen,
			 "bad address '%s' (want host:port, a port from 0 to 65535, "
			 "or a socket path)",
			 addr);
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

bool socket_address_valid(const char *addr)
{
	const char *path, *colon = strrchr(addr, ':');

	if (!*addr)
		return false;
	if (is_unix(addr, &path))
		return *path && strlen(path) < sizeof(((struct sockaddr_un *)0)->sun_path);
	return colon && valid_port(colon + 1);
}

static int fail_errno(const char *what, const char *addr, char *err, size_t errlen)
{
	int e = errno;

	snprintf(err, errlen, "%s %s: %s", what, addr, strerror(e));
	return -e;
}

int socket_listen(const char *addr, char *err, size_t errlen)
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
		/* Only its owner may connect: the socket is private whatever the umask. */
		if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) || chmod(path, 0600) ||
		    listen(fd, DMALOG_MIG_MAX_CHANNELS)) {
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
	if (fd < 0 || bind(fd, res->ai_addr, res->ai_addrlen) ||
	    listen(fd, DMALOG_MIG_MAX_CHANNELS)) {
		ret = fail_errno("cannot listen on", addr, err, errlen);
		if (fd >= 0)
			close(fd);
		freeaddrinfo(res);
		return ret;
	}
	freeaddrinfo(res);
	return fd;
}

int socket_accept(int lfd, int timeout_ms, char *err, size_t errlen)
{
	struct pollfd pfd = {.fd = lfd, .events = POLLIN};
	int fd, one = 1, ret;

	ret = poll(&pfd, 1, timeout_ms);
	if (ret < 0 && errno == EINTR) {
		snprintf(err, errlen, "interrupted while waiting for a connection");
		return -EINTR;
	}
	if (!ret) {
		snprintf(err, errlen, "no connection came within %d ms", timeout_ms);
		return -ETIMEDOUT;
	}
	fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return fail_errno("cannot accept on", "the listening socket", err, errlen);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

/* How often a UNIX connect is tried again while the listener's backlog is full. */
#define UNIX_BACKLOG_RETRY_MS 10

/*
 * A new socket of @family connected to @sa before @timeout_ms has passed: a peer that never
 * answers (a TCP address that drops SYNs, a UNIX listener that never accepts) costs the
 * deadline, not the kernel's own two minutes or for ever. The fd (blocking again), or -errno
 * with errno set: -ETIMEDOUT at the deadline, -EINTR when a signal came.
 */
static int connect_within(int family, const struct sockaddr *sa, socklen_t len, int timeout_ms)
{
	int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0), ret, soerr = 0;
	struct pollfd pfd = {.fd = fd, .events = POLLOUT};
	socklen_t sl = sizeof(soerr);
	int waited = 0;

	if (fd < 0)
		return -errno;
	ret = connect(fd, sa, len) ? -errno : 0;
	/* A UNIX listener with a full backlog refuses at once; there is nothing to poll. */
	while (ret == -EAGAIN && waited < timeout_ms) {
		poll(NULL, 0, UNIX_BACKLOG_RETRY_MS);
		waited += UNIX_BACKLOG_RETRY_MS;
		ret = connect(fd, sa, len) ? -errno : 0;
	}
	if (ret == -EAGAIN)
		ret = -ETIMEDOUT;
	if (ret == -EINPROGRESS) {
		ret = poll(&pfd, 1, timeout_ms);
		if (ret == 0)
			ret = -ETIMEDOUT;
		else if (ret < 0)
			ret = -errno;
		else
			ret = getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) ? -errno : -soerr;
	}
	if (!ret && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK))
		ret = -errno;
	if (ret) {
		close(fd);
		errno = -ret;
		return ret;
	}
	return fd;
}

int socket_connect(const char *addr, int timeout_ms, char *err, size_t errlen)
{
	struct addrinfo *res = NULL, *ai;
	struct sockaddr_un sun;
	const char *path;
	int fd = -1, one = 1, ret = 0;

	if (is_unix(addr, &path)) {
		ret = unix_addr(path, &sun, err, errlen);
		if (ret)
			return ret;
		fd = connect_within(AF_UNIX, (struct sockaddr *)&sun, sizeof(sun), timeout_ms);
		if (fd == -ETIMEDOUT)
			snprintf(err, errlen, "%s did not accept within %d ms", path, timeout_ms);
		else if (fd < 0)
			fail_errno("cannot connect to", path, err, errlen);
		return fd;
	}
	ret = tcp_addr(addr, false, &res, err, errlen);
	if (ret)
		return ret;
	for (ai = res; ai; ai = ai->ai_next) {
		fd = connect_within(ai->ai_family, ai->ai_addr, ai->ai_addrlen, timeout_ms);
		if (fd >= 0 || fd == -EINTR)
			break;
		ret = fd;
		if (fd == -ETIMEDOUT)
			snprintf(err, errlen, "no answer from %s within %d ms", addr, timeout_ms);
		else
			fail_errno("cannot connect to", addr, err, errlen);
	}
	freeaddrinfo(res);
	if (fd == -EINTR)
		snprintf(err, errlen, "interrupted while connecting to %s", addr);
	if (fd < 0)
		return fd == -EINTR ? fd : ret ? ret : -ECONNREFUSED;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

int socket_describe(int fd, char *out, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char host[INET6_ADDRSTRLEN];

	if (getsockname(fd, (struct sockaddr *)&ss, &sl))
		return -errno;
	if (ss.ss_family == AF_UNIX) {
		snprintf(out, len, "%s", ((struct sockaddr_un *)&ss)->sun_path);
	} else if (ss.ss_family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;

		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		snprintf(out, len, "%s:%u", host, ntohs(in->sin_port));
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		snprintf(out, len, "[%s]:%u", host, ntohs(in6->sin6_port));
	}
	return 0;
}

bool socket_is_tcp(int fd)
{
	int domain = 0;
	socklen_t len = sizeof(domain);

	return !getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) &&
	       (domain == AF_INET || domain == AF_INET6);
}
