// SPDX-License-Identifier: MIT
/*
 * vfio-user messages on a UNIX socket: a header, a payload, and fds as SCM_RIGHTS on any of
 * its bytes. The peer is hostile until checked: the size is checked before the payload is
 * read, a message that has begun must finish within the timeout, and fds that were not
 * expected are closed, never leaked.
 */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "vfu.h"

double vfu_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

int vfu_wait(int fd, short events, double deadline, const int *stop)
{
	for (;;) {
		struct pollfd pfd = {.fd = fd, .events = events};
		double left = deadline ? deadline - vfu_now_ms() : 100;
		int ret;

		if (stop && __atomic_load_n(stop, __ATOMIC_ACQUIRE))
			return -ESHUTDOWN;
		if (left <= 0)
			return -ETIMEDOUT;
		ret = poll(&pfd, 1, left < 100 ? (int)left + 1 : 100);
		if (ret > 0)
			return 0;
		if (ret < 0 && errno != EINTR)
			return -errno;
	}
}

/* Take the fds of one control message into @fds (closing what does not fit). */
static void take_fds(struct msghdr *mh, int *fds, unsigned int max_fds, unsigned int *nfds,
		     bool *fds_lost)
{
	if (mh->msg_flags & MSG_CTRUNC)
		*fds_lost = true;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		size_t n;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (*nfds < max_fds) {
				fds[(*nfds)++] = fd;
			} else {
				close(fd);
				*fds_lost = true;
			}
		}
	}
}

/* Read @len bytes at @p before @deadline, gathering fds. 0 or -errno (-ECONNRESET at EOF). */
static int read_part(int fd, uint8_t *p, size_t len, double deadline, const int *stop, int *fds,
		     unsigned int max_fds, unsigned int *nfds, bool *fds_lost)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * DMALOG_VFU_MAX_MSG_FDS)];
		struct cmsghdr align;
	} ctl;

	while (len) {
		struct iovec iov = {.iov_base = p, .iov_len = len};
		struct msghdr mh = {.msg_iov = &iov,
				    .msg_iovlen = 1,
				    .msg_control = ctl.buf,
				    .msg_controllen = sizeof(ctl.buf)};
		ssize_t n = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		int ret;

		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			ret = vfu_wait(fd, POLLIN, deadline, stop);
			if (ret)
				return ret;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		take_fds(&mh, fds, max_fds, nfds, fds_lost);
		if (!n)
			return -ECONNRESET;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int vfu_recv(int fd, const int *stop, int first_ms, int timeout_ms, uint8_t *buf, size_t cap,
	     size_t *len, int *fds, unsigned int max_fds, unsigned int *nfds, bool *fds_lost)
{
	double first_deadline = first_ms < 0 ? 0 : vfu_now_ms() + first_ms, deadline;
	struct dmalog_vfu_hdr hdr;
	char first;
	ssize_t n;
	int ret;

	*nfds = 0;
	*fds_lost = false;
	/* Between messages a client may be silent for as long as it likes. */
	for (;;) {
		ret = vfu_wait(fd, POLLIN, first_deadline, stop);
		if (ret)
			return ret;
		n = recv(fd, &first, 1, MSG_PEEK | MSG_DONTWAIT);
		if (n == 0)
			return 0;
		if (n > 0)
			break;
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			return -errno;
	}
	deadline = vfu_now_ms() + timeout_ms;
	ret = read_part(fd, buf, sizeof(hdr), deadline, stop, fds, max_fds, nfds, fds_lost);
	if (ret)
		goto fail;
	memcpy(&hdr, buf, sizeof(hdr));
	if (hdr.size < sizeof(hdr)) {
		ret = -EBADMSG;
		goto fail;
	}
	if (hdr.size > cap) {
		ret = -EMSGSIZE;
		goto fail;
	}
	ret = read_part(fd, buf + sizeof(hdr), hdr.size - sizeof(hdr), deadline, stop, fds, max_fds,
			nfds, fds_lost);
	if (ret)
		goto fail;
	*len = hdr.size;
	return 1;
fail:
	while (*nfds)
		close(fds[--*nfds]);
	return ret;
}

int vfu_send(int fd, int timeout_ms, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	double deadline = vfu_now_ms() + timeout_ms;

	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		int ret;

		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			/* The deadline restarts with every byte the peer takes. */
			ret = vfu_wait(fd, POLLOUT, deadline, NULL);
			if (ret)
				return ret;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
		deadline = vfu_now_ms() + timeout_ms;
	}
	return 0;
}

int vfu_send_fds(int fd, int timeout_ms, const void *buf, size_t len, const int *fds,
		 unsigned int nfds)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * DMALOG_VFU_MAX_MSG_FDS)];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = {.iov_base = (void *)buf, .iov_len = 1};
	struct msghdr mh = {.msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = ctl.buf,
			    .msg_controllen = CMSG_SPACE(sizeof(int) * nfds)};
	struct cmsghdr *c;
	ssize_t n;
	int ret;

	if (!nfds)
		return vfu_send(fd, timeout_ms, buf, len);
	if (nfds > DMALOG_VFU_MAX_MSG_FDS || !len)
		return -EINVAL;
	memset(ctl.buf, 0, sizeof(ctl.buf));
	c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
	memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	/* The fds ride on the first byte; the rest follows as usual. */
	for (;;) {
		n = sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n == 1)
			break;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
			return -errno;
		ret = vfu_wait(fd, POLLOUT, vfu_now_ms() + timeout_ms, NULL);
		if (ret)
			return ret;
	}
	return vfu_send(fd, timeout_ms, (const uint8_t *)buf + 1, len - 1);
}
