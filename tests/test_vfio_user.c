// SPDX-License-Identifier: MIT
/*
 * The vfio-user server, driven over a socketpair by a client written here from the spec:
 *  - VERSION: the capabilities negotiated with json-c, and refused when malformed;
 *  - DMA_MAP / DMA_UNMAP with memfds: overlaps EEXIST, unmaps only exact;
 *  - DMA logging over the socket: START with inline ranges (or none: every map), REPORT's
 *    bitmap inline, a sub-range REPORT clears only that range, page-size conversion at any
 *    ratio, a REPORT across two maps, a too-small argsz that clears nothing;
 *  - a device's migration state moved through MIG_DATA_READ on one server and MIG_DATA_WRITE
 *    on another;
 *  - every refusal: malformed commands answered with the kernel's errno while the connection
 *    goes on; broken framing (a size under the header's, over the largest, a message cut
 *    short or stalled) ending only that connection; fds where none belong closed; a client
 *    that leaves mid-logging leaves logging off for the next.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "helpers.h"

#define TIMEOUT_MS 2000

struct srv {
	struct dmalog_vfu_server *s;
	int fds[2]; /* [0] the client's end, [1] the server's */
	pthread_t thread;
	int ret;
	uint16_t next_id;
};

static void *serve_thread(void *arg)
{
	struct srv *v = arg;

	v->ret = dmalog_vfu_server_serve(v->s, v->fds[1]);
	return NULL;
}

static void srv_start(struct srv *v, struct dmalog_device *dev, uint32_t timeout_ms)
{
	struct dmalog_vfu_server_config c = {
		.size = sizeof(c), .dev = dev, .timeout_ms = timeout_ms};

	memset(v, 0, sizeof(*v));
	assert_int_equal(dmalog_vfu_server_create(&c, &v->s), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, v->fds), 0);
	assert_int_equal(pthread_create(&v->thread, NULL, serve_thread, v), 0);
}

/* The client hangs up; the serve loop's return. */
static int srv_end(struct srv *v)
{
	close(v->fds[0]);
	pthread_join(v->thread, NULL);
	close(v->fds[1]);
	dmalog_vfu_server_destroy(v->s);
	return v->ret;
}

/* A new client on the same server (the old one has hung up, the loop has returned). */
static void srv_reconnect(struct srv *v)
{
	close(v->fds[0]);
	pthread_join(v->thread, NULL);
	close(v->fds[1]);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, v->fds), 0);
	assert_int_equal(pthread_create(&v->thread, NULL, serve_thread, v), 0);
}

static void send_all(int fd, const void *buf, size_t len, const int *fds, unsigned int nfds)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * 16)];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};

	if (nfds) {
		struct cmsghdr *c;

		mh.msg_control = ctl.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	assert_int_equal(sendmsg(fd, &mh, MSG_NOSIGNAL), (ssize_t)len);
}

static int read_exact(int fd, void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t n = read(fd, p, len);

		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Send a command (with @nfds fds) and read its reply: its errno (0 for success). */
static int call_fds(struct srv *v, uint16_t cmd, const void *payload, size_t len, const int *fds,
		    unsigned int nfds, void *out, size_t cap, size_t *out_len)
{
	uint8_t *msg = malloc(sizeof(struct dmalog_vfu_hdr) + len);
	struct dmalog_vfu_hdr h = {.id = ++v->next_id,
				   .command = cmd,
				   .size = (uint32_t)(sizeof(h) + len)},
			      r;
	uint8_t *body;

	memcpy(msg, &h, sizeof(h));
	if (len)
		memcpy(msg + sizeof(h), payload, len);
	send_all(v->fds[0], msg, sizeof(h) + len, fds, nfds);
	free(msg);
	assert_int_equal(read_exact(v->fds[0], &r, sizeof(r)), 0);
	assert_int_equal(r.id, h.id);
	assert_int_equal(r.command, cmd);
	assert_int_equal(r.flags & DMALOG_VFU_TYPE_MASK, DMALOG_VFU_TYPE_REPLY);
	assert_true(r.size >= sizeof(r));
	body = malloc(r.size - sizeof(r) + 1);
	assert_int_equal(read_exact(v->fds[0], body, r.size - sizeof(r)), 0);
	if (r.flags & DMALOG_VFU_ERROR) {
		/* An error reply is its header alone. */
		assert_int_equal(r.size, sizeof(r));
		assert_int_not_equal(r.error, 0);
	} else if (out) {
		assert_true(r.size - sizeof(r) <= cap);
		memcpy(out, body, r.size - sizeof(r));
	}
	if (out_len)
		*out_len = r.size - sizeof(r);
	free(body);
	return r.flags & DMALOG_VFU_ERROR ? (int)r.error : 0;
}

static int call(struct srv *v, uint16_t cmd, const void *payload, size_t len, void *out, size_t cap,
		size_t *out_len)
{
	return call_fds(v, cmd, payload, len, NULL, 0, out, cap, out_len);
}

/* QEMU's client's proposal, as it sends it. */
static const char qemu_caps[] =
	"{\"capabilities\":{\"migration\":{\"pgsize\":4096,\"max_bitmap_size\":268435456},"
	"\"max_msg_fds\":16,\"max_data_xfer_size\":1048576,\"pgsizes\":4096,"
	"\"max_dma_maps\":65535,\"write_multiple\":true}}";

static int version_with(struct srv *v, uint16_t major, uint16_t minor, const char *json,
			size_t json_len, char *reply, size_t cap, size_t *len)
{
	uint8_t buf[1024];
	struct dmalog_vfu_version ver = {major, minor};

	memcpy(buf, &ver, sizeof(ver));
	memcpy(buf + sizeof(ver), json, json_len);
	return call(v, DMALOG_VFU_VERSION, buf, sizeof(ver) + json_len, reply, cap, len);
}

static void negotiate(struct srv *v)
{
	char reply[1024];
	size_t len;

	assert_int_equal(
		version_with(v, 0, 0, qemu_caps, sizeof(qemu_caps), reply, sizeof(reply), &len), 0);
}

static struct dmalog_device *sw_device(struct dmalog_swtrack **t)
{
	struct dmalog_device_desc desc = {.name = "sw", .log_ops = dmalog_swtrack_log_ops()};
	struct dmalog_device *dev;

	assert_int_equal(dmalog_swtrack_create(t), 0);
	desc.priv = *t;
	assert_int_equal(dmalog_device_create(&desc, &dev), 0);
	return dev;
}

static void version_negotiated(void **state)
{
	struct dmalog_swtrack *t;
	struct dmalog_device *dev = sw_device(&t);
	struct dmalog_vfu_device_info info = {.argsz = sizeof(info)};
	struct srv v;
	char reply[1024];
	size_t len;
	struct dmalog_vfu_version got;

	srv_start(&v, dev, TIMEOUT_MS);
	/* Nothing before VERSION. */
	assert_int_equal(call(&v, DMALOG_VFU_DEVICE_GET_INFO, &info, sizeof(info), NULL, 0, NULL),
			 EINVAL);
	/* Another major, JSON without its NUL, two NULs, not JSON, a wrong type: refused. */
	assert_int_equal(version_with(&v, 1, 0, "", 1, reply, sizeof(reply), &len), ENOTSUP);
	assert_int_equal(version_with(&v, 0, 0, "{}", 2, reply, sizeof(reply), &len), EINVAL);
	assert_int_equal(version_with(&v, 0, 0, "{}\0{}", 6, reply, sizeof(reply), &len), EINVAL);
	assert_int_equal(version_with(&v, 0, 0, "{\"capab", 8, reply, sizeof(reply), &len), EINVAL);
	assert_int_equal(version_with(&v, 0, 0, "[1]", 4, reply, sizeof(reply), &len), EINVAL);
	assert_int_equal(version_with(&v, 0, 0, "{\"capabilities\":{\"max_msg_fds\":\"8\"}}", 37,
				      reply, sizeof(reply), &len),
			 EINVAL);
	assert_int_equal(version_with(&v, 0, 0,
				      "{\"capabilities\":{\"migration\":{\"pgsize\":3000}}}", 47,
				      reply, sizeof(reply), &len),
			 EINVAL);
	/* QEMU's proposal: the reply keeps the major, lowers no minor below, offers its own. */
	assert_int_equal(
		version_with(&v, 0, 7, qemu_caps, sizeof(qemu_caps), reply, sizeof(reply), &len),
		0);
	memcpy(&got, reply, sizeof(got));
	assert_int_equal(got.major, 0);
	assert_int_equal(got.minor, DMALOG_VFU_MINOR);
	assert_int_equal(reply[len - 1], 0);
	assert_non_null(strstr(reply + 4, "\"max_msg_fds\":8"));
	assert_non_null(strstr(reply + 4, "\"max_data_xfer_size\":1048576"));
	assert_non_null(strstr(reply + 4, "\"migration\":{\"pgsize\":4096"));
	/* Once only. */
	assert_int_equal(version_with(&v, 0, 0, "", 0, reply, sizeof(reply), &len), EINVAL);
	assert_int_equal(call(&v, DMALOG_VFU_DEVICE_GET_INFO, &info, sizeof(info), &info,
			      sizeof(info), &len),
			 0);
	assert_int_equal(info.flags, VFIO_DEVICE_FLAGS_RESET | VFIO_DEVICE_FLAGS_PCI);
	assert_int_equal(srv_end(&v), 0);
	dmalog_device_destroy(dev);
	dmalog_swtrack_destroy(t);
}

/* A memfd of @size bytes, for DMA_MAP. */
static int memfd(size_t size)
{
	int fd = memfd_create("guest", MFD_CLOEXEC);

	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)size), 0);
	return fd;
}

static int dma_map(struct srv *v, uint64_t iova, uint64_t size, int fd, uint64_t offset)
{
	struct dmalog_vfu_dma_map m = {
		.argsz = sizeof(m),
		.flags = DMALOG_VFU_DMA_READABLE | DMALOG_VFU_DMA_WRITEABLE,
		.offset = offset,
		.addr = iova,
		.size = size,
	};

	return call_fds(&*v, DMALOG_VFU_DMA_MAP, &m, sizeof(m), &fd, fd >= 0, NULL, 0, NULL);
}

static int dma_unmap(struct srv *v, uint64_t iova, uint64_t size)
{
	struct dmalog_vfu_dma_unmap u = {.argsz = sizeof(u), .addr = iova, .size = size}, echo;
	size_t len;
	int ret = call(v, DMALOG_VFU_DMA_UNMAP, &u, sizeof(u), &echo, sizeof(echo), &len);

	if (!ret) {
		assert_int_equal(len, sizeof(echo));
		assert_int_equal(echo.addr, iova);
	}
	return ret;
}

static void dma_maps(void **state)
{
	struct dmalog_swtrack *t;
	struct dmalog_device *dev = sw_device(&t);
	int fd = memfd(4 << 20);
	struct srv v;

	srv_start(&v, dev, TIMEOUT_MS);
	negotiate(&v);
	assert_int_equal(dma_map(&v, 0, 2 << 20, fd, 0), 0);
	assert_int_equal(dma_map(&v, 1 << 20, 2 << 20, fd, 0), EEXIST);		   /* overlaps */
	assert_int_equal(dma_map(&v, 4 << 20, 4096 + 1, fd, 0), EINVAL);	   /* unaligned */
	assert_int_equal(dma_map(&v, 4 << 20, 0, fd, 0), EINVAL);		   /* empty */
	assert_int_equal(dma_map(&v, UINT64_MAX & ~4095ULL, 8192, fd, 0), EINVAL); /* wraps */
	assert_int_equal(dma_map(&v, 8 << 20, 2 << 20, fd, 2 << 20), 0); /* the fd's 2nd half */
	assert_int_equal(dma_map(&v, 12 << 20, 4 << 20, fd, 2 << 20), EINVAL); /* past its end */
	assert_int_equal(dma_map(&v, 16 << 20, 2 << 20, -1, 0), 0);	    /* no fd: by message */
	assert_int_equal(dma_map(&v, 32 << 20, 2 << 20, -1, 4096), EINVAL); /* offset, no fd */
	assert_int_equal(dma_unmap(&v, 0, 1 << 20), EINVAL);		    /* not a whole map */
	assert_int_equal(dma_unmap(&v, 0, 2 << 20), 0);
	assert_int_equal(dma_unmap(&v, 0, 2 << 20), EINVAL);	   /* gone */
	assert_int_equal(dma_map(&v, 1 << 20, 2 << 20, fd, 0), 0); /* room again */
	assert_int_equal(srv_end(&v), 0);
	close(fd);
	dmalog_device_destroy(dev);
	dmalog_swtrack_destroy(t);
}

/* DMA_LOGGING_START with @n inline ranges: the errno; *page_size gets the chosen size. */
static int log_start_vfu(struct srv *v, const uint64_t (*ranges)[2], uint32_t n, uint32_t sent,
			 uint64_t *page_size)
{
	uint8_t buf[8 + 16 + 16 * 8], out[sizeof(buf)];
	struct dmalog_vfu_feature f = {.argsz = sizeof(buf),
				       .flags = FEAT_SET | VFIO_DEVICE_FEATURE_DMA_LOGGING_START};
	struct dmalog_vfu_logging_start st = {.page_size = *page_size, .num_ranges = n};
	size_t len;
	int ret;

	memcpy(buf, &f, sizeof(f));
	memcpy(buf + 8, &st, sizeof(st));
	memcpy(buf + 24, ranges, 16 * sent);
	ret = call(v, DMALOG_VFU_DEVICE_FEATURE, buf, 24 + 16 * sent, out, sizeof(out), &len);
	if (!ret)
		memcpy(page_size, out + 8, 8);
	return ret;
}

static int log_stop_vfu(struct srv *v)
{
	struct dmalog_vfu_feature f = {.argsz = sizeof(f),
				       .flags = FEAT_SET | VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP};

	return call(v, DMALOG_VFU_DEVICE_FEATURE, &f, sizeof(f), NULL, 0, NULL);
}

/* DMA_LOGGING_REPORT: the errno; the bitmap into @bitmap; *needed the reply's argsz. */
static int report_vfu(struct srv *v, uint64_t iova, uint64_t length, uint64_t page_size,
		      uint32_t argsz, uint64_t *bitmap, size_t bitmap_bytes, uint32_t *needed)
{
	uint8_t req[32], *out = malloc(32 + bitmap_bytes);
	struct dmalog_vfu_feature f = {.argsz = argsz,
				       .flags = FEAT_GET | VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT};
	struct dmalog_vfu_logging_report r = {iova, length, page_size};
	size_t len;
	int ret;

	memcpy(req, &f, sizeof(f));
	memcpy(req + 8, &r, sizeof(r));
	ret = call(v, DMALOG_VFU_DEVICE_FEATURE, req, sizeof(req), out, 32 + bitmap_bytes, &len);
	if (!ret) {
		memcpy(&f, out, sizeof(f));
		*needed = f.argsz;
		memset(bitmap, 0, bitmap_bytes);
		if (len > 32)
			memcpy(bitmap, out + 32, len - 32);
	}
	free(out);
	return ret;
}

/* Bits set in @bitmap of @words words. */
static int popcount(const uint64_t *bitmap, size_t words)
{
	int n = 0;

	for (size_t i = 0; i < words; i++)
		n += __builtin_popcountll(bitmap[i]);
	return n;
}

static void logging_over_the_socket(void **state)
{
	static const uint64_t ranges[2][2] = {{0, 2 << 20}, {4 << 20, 2 << 20}};
	struct dmalog_swtrack *t;
	struct dmalog_device *dev = sw_device(&t);
	int fd = memfd(4 << 20);
	uint64_t bitmap[2048 / 64], page_size = 4096;
	uint32_t needed;
	struct srv v;
	uint8_t header_only[4] = {0};

	srv_start(&v, dev, TIMEOUT_MS);
	negotiate(&v);
	assert_int_equal(dma_map(&v, 0, 2 << 20, fd, 0), 0);
	assert_int_equal(dma_map(&v, 4 << 20, 2 << 20, fd, 2 << 20), 0);
	/* A count that is not what arrived, a header-only feature: refused, nothing read past. */
	assert_int_equal(log_start_vfu(&v, ranges, 3, 2, &page_size), EINVAL);
	assert_int_equal(call(&v, DMALOG_VFU_DEVICE_FEATURE, header_only, sizeof(header_only), NULL,
			      0, NULL),
			 EINVAL);
	assert_int_equal(log_start_vfu(&v, ranges, 2, 2, &page_size), 0);
	assert_int_equal(page_size, 4096);
	/* Across both maps: exactly the pages written. */
	dmalog_swtrack_log_write(t, 0x1000, 8);
	dmalog_swtrack_log_write(t, (4 << 20) + 0x3000, 8);
	assert_int_equal(report_vfu(&v, 0, 8 << 20, 4096, 8 + 24 + 256, bitmap, 256, &needed), 0);
	assert_int_equal(needed, 8 + 24 + 256);
	assert_int_equal(popcount(bitmap, 32), 2);
	assert_true(bitmap[0] & 2);
	assert_true(bitmap[1027 / 64] >> (1027 % 64) & 1);
	/* Reported means cleared. */
	assert_int_equal(report_vfu(&v, 0, 8 << 20, 4096, 8 + 24 + 256, bitmap, 256, &needed), 0);
	assert_int_equal(popcount(bitmap, 32), 0);
	/* A sub-range clears only itself. */
	dmalog_swtrack_log_write(t, 0x1000, 8);
	dmalog_swtrack_log_write(t, 0x5000, 8);
	assert_int_equal(report_vfu(&v, 0, 0x4000, 4096, 8 + 24 + 8, bitmap, 8, &needed), 0);
	assert_int_equal(bitmap[0], 2);
	assert_int_equal(report_vfu(&v, 0, 8 << 20, 4096, 8 + 24 + 256, bitmap, 256, &needed), 0);
	assert_int_equal(popcount(bitmap, 32), 1);
	assert_int_equal(bitmap[0], 1 << 5);
	/*
	 * Page sizes other than the tracker's, at ratios no 8-bit index could hold: 2 MiB (512
	 * pages a bit) and 1 GiB (262144); under 4 KiB is the kernel's EINVAL.
	 */
	dmalog_swtrack_log_write(t, 0x2000, 8);
	dmalog_swtrack_log_write(t, (5 << 20) + 0x2000, 8);
	assert_int_equal(report_vfu(&v, 0, 8 << 20, 2 << 20, 8 + 24 + 8, bitmap, 8, &needed), 0);
	assert_int_equal(bitmap[0], 1 | 1 << 2);
	dmalog_swtrack_log_write(t, 0x3000, 8);
	assert_int_equal(report_vfu(&v, 0, 8 << 20, 1 << 30, 8 + 24 + 8, bitmap, 8, &needed), 0);
	assert_int_equal(bitmap[0], 1);
	assert_int_equal(report_vfu(&v, 0x3000, 4096, 1024, 8 + 24 + 8, bitmap, 8, &needed),
			 EINVAL);
	/* An argsz that cannot hold the bitmap: told what it needs, and nothing is cleared. */
	dmalog_swtrack_log_write(t, 0x7000, 8);
	assert_int_equal(report_vfu(&v, 0, 8 << 20, 4096, 8 + 24, bitmap, 256, &needed), 0);
	assert_int_equal(needed, 8 + 24 + 256);
	assert_int_equal(popcount(bitmap, 32), 0);
	assert_int_equal(report_vfu(&v, 0, 8 << 20, 4096, 8 + 24 + 256, bitmap, 256, &needed), 0);
	assert_int_equal(bitmap[0], 1 << 7);
	/* Bad page sizes and lengths: the kernel's EINVAL. */
	assert_int_equal(report_vfu(&v, 0, 8 << 20, 3000, 4096, bitmap, 256, &needed), EINVAL);
	assert_int_equal(report_vfu(&v, 0, 0, 4096, 4096, bitmap, 256, &needed), EINVAL);
	/* Started twice: the kernel's EINVAL; stopped, then started on every map (no ranges). */
	assert_int_equal(log_start_vfu(&v, ranges, 2, 2, &page_size), EINVAL);
	assert_int_equal(log_stop_vfu(&v), 0);
	assert_int_equal(log_start_vfu(&v, ranges, 0, 0, &page_size), 0);
	dmalog_swtrack_log_write(t, (5 << 20) + 0x1000, 8);
	assert_int_equal(report_vfu(&v, 4 << 20, 2 << 20, 4096, 8 + 24 + 64, bitmap, 64, &needed),
			 0);
	assert_int_equal(popcount(bitmap, 8), 1);
	assert_true(bitmap[257 / 64] >> (257 % 64) & 1);
	assert_int_equal(srv_end(&v), 0);
	close(fd);
	dmalog_device_destroy(dev);
	dmalog_swtrack_destroy(t);
}

/* A REPORT whose bitmap outgrows the reply buffer the server started with (it must move). */
static void large_report(void **state)
{
	static const uint64_t ranges[1][2] = {{0, 48ULL << 30}};
	struct dmalog_swtrack *t;
	struct dmalog_device *dev = sw_device(&t);
	size_t bytes = (48ULL << 30) / 4096 / 8;
	uint64_t *bitmap = malloc(bytes), page_size = 4096;
	uint32_t needed;
	struct srv v;

	srv_start(&v, dev, TIMEOUT_MS);
	negotiate(&v);
	assert_int_equal(log_start_vfu(&v, ranges, 1, 1, &page_size), 0);
	dmalog_swtrack_log_write(t, (48ULL << 30) - 4096, 8);
	assert_int_equal(report_vfu(&v, 0, 48ULL << 30, 4096, (uint32_t)(8 + 24 + bytes), bitmap,
				    bytes, &needed),
			 0);
	assert_int_equal(needed, 8 + 24 + bytes);
	assert_int_equal(bitmap[bytes / 8 - 1], 1ULL << 63);
	assert_int_equal(popcount(bitmap, bytes / 8), 1);
	assert_int_equal(srv_end(&v), 0);
	free(bitmap);
	dmalog_device_destroy(dev);
	dmalog_swtrack_destroy(t);
}

/* A client that leaves mid-logging leaves the server ready, logging off, for the next one. */
static void disconnect_mid_logging(void **state)
{
	static const uint64_t ranges[1][2] = {{0, 2 << 20}};
	struct dmalog_swtrack *t;
	struct dmalog_device *dev = sw_device(&t);
	int fd = memfd(2 << 20);
	uint64_t page_size = 4096;
	struct srv v;

	srv_start(&v, dev, TIMEOUT_MS);
	negotiate(&v);
	assert_int_equal(dma_map(&v, 0, 2 << 20, fd, 0), 0);
	assert_int_equal(log_start_vfu(&v, ranges, 1, 1, &page_size), 0);
	srv_reconnect(&v);
	assert_int_equal(v.ret, 0);
	/* A new negotiation, its own maps, and START works: the old session is gone. */
	negotiate(&v);
	assert_int_equal(dma_map(&v, 0, 2 << 20, fd, 0), 0);
	assert_int_equal(log_start_vfu(&v, ranges, 1, 1, &page_size), 0);
	assert_int_equal(srv_end(&v), 0);
	close(fd);
	dmalog_device_destroy(dev);
	dmalog_swtrack_destroy(t);
}

static int set_state_vfu(struct srv *v, uint32_t state)
{
	uint8_t buf[16];
	struct dmalog_vfu_feature f = {.argsz = sizeof(buf),
				       .flags = FEAT_SET | VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE};
	struct vfio_device_feature_mig_state st = {.device_state = state, .data_fd = -1};

	memcpy(buf, &f, sizeof(f));
	memcpy(buf + 8, &st, sizeof(st));
	return call(v, DMALOG_VFU_DEVICE_FEATURE, buf, sizeof(buf), NULL, 0, NULL);
}

static uint64_t get_u64_feature(struct srv *v, uint32_t feature)
{
	struct dmalog_vfu_feature f = {.argsz = 16, .flags = FEAT_GET | feature};
	uint8_t out[16];
	uint64_t val;
	size_t len;

	assert_int_equal(call(v, DMALOG_VFU_DEVICE_FEATURE, &f, sizeof(f), out, sizeof(out), &len),
			 0);
	assert_int_equal(len, 16);
	memcpy(&val, out + 8, 8);
	return val;
}

/* MIG_DATA_READ of up to @size bytes into @buf: how many came, or -errno. */
static int data_read(struct srv *v, void *buf, uint32_t size)
{
	struct dmalog_vfu_mig_data m = {.argsz = (uint32_t)sizeof(m) + size, .size = size};
	uint8_t *out = malloc(sizeof(m) + size);
	size_t len;
	int ret = call(v, DMALOG_VFU_MIG_DATA_READ, &m, sizeof(m), out, sizeof(m) + size, &len);

	if (!ret) {
		memcpy(&m, out, sizeof(m));
		assert_int_equal(len, sizeof(m) + m.size);
		memcpy(buf, out + sizeof(m), m.size);
		ret = (int)m.size;
	} else {
		ret = -ret;
	}
	free(out);
	return ret;
}

static int data_write(struct srv *v, const void *data, uint32_t size)
{
	uint8_t *msg = malloc(8 + size);
	struct dmalog_vfu_mig_data m = {.argsz = 8, .size = size};
	int ret;

	memcpy(msg, &m, sizeof(m));
	memcpy(msg + 8, data, size);
	ret = call(v, DMALOG_VFU_MIG_DATA_WRITE, msg, 8 + size, NULL, 0, NULL);
	free(msg);
	return ret;
}

static struct dmalog_emudev *emu(void)
{
	struct dmalog_emudev_config c = {.migration_flags =
						 VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P,
					 .dev_mem_bytes = 64 * 4096,
					 .tracker = DMALOG_EMUDEV_TRACK_SOFTWARE,
					 .seed = 11};
	struct dmalog_emudev *d;

	assert_int_equal(dmalog_emudev_create(&c, &d), 0);
	return d;
}

/* A device's state moves from one server to another through the socket, and loads. */
static void migration_data_over_the_socket(void **state)
{
	struct dmalog_emudev *src = emu(), *dst = emu();
	struct srv a, b;
	size_t cap = 1 << 20, len = 0;
	uint8_t *stream = malloc(cap), chunk[16];
	int n;

	srv_start(&a, dmalog_emudev_device(src), TIMEOUT_MS);
	srv_start(&b, dmalog_emudev_device(dst), TIMEOUT_MS);
	negotiate(&a);
	negotiate(&b);
	assert_int_equal(get_u64_feature(&a, VFIO_DEVICE_FEATURE_MIGRATION),
			 VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P);
	/* No data session while running; the destination stops before it compares. */
	assert_int_equal(data_read(&a, chunk, sizeof(chunk)), -EINVAL);
	assert_int_equal(set_state_vfu(&b, VFIO_DEVICE_STATE_STOP), 0);
	while (dmalog_emudev_state_hash(src) == dmalog_emudev_state_hash(dst))
		usleep(1000);
	assert_int_equal(set_state_vfu(&a, VFIO_DEVICE_STATE_STOP_COPY), 0);
	assert_int_equal(get_u64_feature(&a, VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE) & 0xffffffff,
			 VFIO_DEVICE_STATE_STOP_COPY);
	assert_int_equal(get_u64_feature(&a, VFIO_DEVICE_FEATURE_MIG_DATA_SIZE) > 0, 1);
	/* Until a short read: the end of the stream. */
	do {
		assert_true(len + 65536 <= cap);
		n = data_read(&a, stream + len, 65536);
		assert_true(n >= 0);
		len += (size_t)n;
	} while (n == 65536);
	assert_true(len > 64 * 4096);
	assert_int_equal(data_write(&b, stream, 16), EINVAL); /* not RESUMING yet */
	assert_int_equal(set_state_vfu(&b, VFIO_DEVICE_STATE_RESUMING), 0);
	for (size_t off = 0; off < len; off += 100000)
		assert_int_equal(data_write(&b, stream + off,
					    (uint32_t)(len - off < 100000 ? len - off : 100000)),
				 0);
	assert_int_equal(set_state_vfu(&b, VFIO_DEVICE_STATE_STOP), 0);
	assert_int_equal(dmalog_emudev_state_hash(src), dmalog_emudev_state_hash(dst));
	assert_int_equal(set_state_vfu(&a, VFIO_DEVICE_STATE_STOP), 0);
	assert_int_equal(srv_end(&a), 0);
	assert_int_equal(srv_end(&b), 0);
	free(stream);
	dmalog_emudev_destroy(src);
	dmalog_emudev_destroy(dst);
}

/* Raw bytes on a fresh connection; the serve loop's return once it gives up on it. */
static int raw_then_end(const void *bytes, size_t len, bool hang_up, uint32_t timeout_ms)
{
	struct dmalog_swtrack *t;
	struct dmalog_device *dev = sw_device(&t);
	struct srv v;
	int ret;

	srv_start(&v, dev, timeout_ms);
	send_all(v.fds[0], bytes, len, NULL, 0);
	if (hang_up)
		shutdown(v.fds[0], SHUT_WR);
	/* The server ends the connection on its own, the client still there. */
	pthread_join(v.thread, NULL);
	ret = v.ret;
	close(v.fds[0]);
	close(v.fds[1]);
	dmalog_vfu_server_destroy(v.s);
	dmalog_device_destroy(dev);
	dmalog_swtrack_destroy(t);
	return ret;
}

static void framing_refused(void **state)
{
	struct dmalog_vfu_hdr small = {.id = 1, .command = DMALOG_VFU_VERSION, .size = 8};
	struct dmalog_vfu_hdr huge = {.id = 1, .command = DMALOG_VFU_VERSION, .size = 100 << 20};
	struct dmalog_vfu_hdr cut = {.id = 1, .command = DMALOG_VFU_VERSION, .size = 64};

	assert_int_equal(raw_then_end(&small, sizeof(small), false, TIMEOUT_MS), -EBADMSG);
	assert_int_equal(raw_then_end(&huge, sizeof(huge), false, TIMEOUT_MS), -EMSGSIZE);
	/* Closed mid-message, or stalled in it past the timeout. */
	assert_int_equal(raw_then_end(&cut, sizeof(cut), true, TIMEOUT_MS), -ECONNRESET);
	assert_int_equal(raw_then_end(&cut, sizeof(cut), false, 200), -ETIMEDOUT);
}

/* Malformed commands: an error reply each, and the connection goes on. */
static void malformed_commands_answered(void **state)
{
	struct dmalog_swtrack *t;
	struct dmalog_device *dev = sw_device(&t);
	struct dmalog_vfu_device_info info = {.argsz = sizeof(info)};
	int many[9], pipefd[2];
	struct srv v;
	uint8_t junk[8] = {0};
	size_t len;

	signal(SIGPIPE, SIG_IGN);
	srv_start(&v, dev, TIMEOUT_MS);
	negotiate(&v);
	assert_int_equal(call(&v, 0x7777, junk, sizeof(junk), NULL, 0, NULL), ENOTSUP);
	/* Optional commands not offered; a region this device does not have (it has none). */
	assert_int_equal(
		call(&v, DMALOG_VFU_DEVICE_GET_REGION_IO_FDS, junk, sizeof(junk), NULL, 0, NULL),
		ENOTSUP);
	{
		struct dmalog_vfu_region_access a = {.region = 0, .count = 4};

		assert_int_equal(call(&v, DMALOG_VFU_REGION_READ, &a, sizeof(a), NULL, 0, NULL),
				 EINVAL);
	}
	assert_int_equal(call(&v, DMALOG_VFU_DEVICE_GET_INFO, &info, 8, NULL, 0, NULL), EINVAL);
	info.num_regions = 1; /* must be zero in a request */
	assert_int_equal(call(&v, DMALOG_VFU_DEVICE_GET_INFO, &info, sizeof(info), NULL, 0, NULL),
			 EINVAL);
	assert_int_equal(call(&v, DMALOG_VFU_DEVICE_RESET, junk, 4, NULL, 0, NULL), EINVAL);
	assert_int_equal(call(&v, DMALOG_VFU_MIG_DATA_READ, junk, 4, NULL, 0, NULL), EINVAL);
	assert_int_equal(call(&v, DMALOG_VFU_MIG_DATA_WRITE, junk, 8, NULL, 0, NULL), EINVAL);
	/* Migration features of a device without them: the kernel's ENOTTY. */
	assert_int_equal(set_state_vfu(&v, VFIO_DEVICE_STATE_STOP), ENOTTY);
	/* An fd where none belongs is refused and closed: its pipe has no reader left. */
	assert_int_equal(pipe(pipefd), 0);
	info.num_regions = 0;
	assert_int_equal(call_fds(&v, DMALOG_VFU_DEVICE_GET_INFO, &info, sizeof(info), pipefd, 1,
				  NULL, 0, NULL),
			 EINVAL);
	close(pipefd[0]);
	assert_int_equal(write(pipefd[1], "x", 1), -1);
	assert_int_equal(errno, EPIPE);
	close(pipefd[1]);
	/* More fds than a message may carry: refused, and the connection goes on. */
	for (int i = 0; i < 9; i++)
		many[i] = memfd(4096);
	assert_int_equal(call_fds(&v, DMALOG_VFU_DEVICE_GET_INFO, &info, sizeof(info), many, 9,
				  NULL, 0, NULL),
			 EINVAL);
	for (int i = 0; i < 9; i++)
		close(many[i]);
	assert_int_equal(call(&v, DMALOG_VFU_DEVICE_GET_INFO, &info, sizeof(info), &info,
			      sizeof(info), &len),
			 0);
	assert_int_equal(len, sizeof(info));
	assert_int_equal(srv_end(&v), 0);
	dmalog_device_destroy(dev);
	dmalog_swtrack_destroy(t);
}

/* No_reply: the command is done and nothing comes back; the next reply is the next command's. */
static void no_reply_honoured(void **state)
{
	struct dmalog_swtrack *t;
	struct dmalog_device *dev = sw_device(&t);
	struct dmalog_vfu_hdr h = {.id = 40,
				   .command = DMALOG_VFU_DEVICE_RESET,
				   .size = sizeof(h),
				   .flags = DMALOG_VFU_NO_REPLY};
	struct dmalog_vfu_device_info info = {.argsz = sizeof(info)};
	struct srv v;

	srv_start(&v, dev, TIMEOUT_MS);
	negotiate(&v);
	send_all(v.fds[0], &h, sizeof(h), NULL, 0);
	assert_int_equal(call(&v, DMALOG_VFU_DEVICE_GET_INFO, &info, sizeof(info), &info,
			      sizeof(info), NULL),
			 0);
	assert_int_equal(srv_end(&v), 0);
	dmalog_device_destroy(dev);
	dmalog_swtrack_destroy(t);
}

/* dmalog's client against dmalog's server: DMA logging through the handle, as in process. */
static void client_logging(void **state)
{
	static const struct vfio_device_feature_dma_logging_range range = {0, 2 << 20};
	struct dmalog_swtrack *t;
	struct dmalog_device *dev = sw_device(&t);
	struct dmalog_vfu_client *c;
	struct dmalog_handle *h;
	uint64_t bitmap[8] = {0}, selected = 0, flags;
	int fd = memfd(2 << 20);
	struct srv v;

	srv_start(&v, dev, TIMEOUT_MS);
	assert_int_equal(dmalog_vfu_client_connect(v.fds[0], TIMEOUT_MS, &c), 0);
	assert_int_equal(
		dmalog_vfu_client_dma_map(c, 0, 2 << 20, fd, 0,
					  DMALOG_VFU_DMA_READABLE | DMALOG_VFU_DMA_WRITEABLE),
		0);
	assert_int_equal(dmalog_handle_from_vfu_client(c, "sw", &h), 0);
	assert_int_equal(dmalog_handle_log_start(h, &range, 1, 4096, &selected), 0);
	assert_int_equal(selected, 4096);
	dmalog_swtrack_log_write(t, 0x1000, 8);
	dmalog_swtrack_log_write(t, 0x9000, 8);
	assert_int_equal(dmalog_handle_log_report(h, 0, 2 << 20, 4096, bitmap), 0);
	assert_int_equal(bitmap[0], 1 << 1 | 1 << 9);
	/* The device's errnos come through the wire; bad requests never leave. */
	assert_int_equal(dmalog_handle_log_start(h, &range, 1, 4096, NULL), -EINVAL);
	assert_int_equal(dmalog_handle_log_report(h, 0, 2 << 20, 3000, bitmap), -EINVAL);
	assert_int_equal(dmalog_handle_migration_flags(h, &flags), -ENOTTY);
	assert_int_equal(dmalog_handle_log_stop(h), 0);
	assert_int_equal(dmalog_handle_reset(h), 0);
	assert_int_equal(dmalog_vfu_client_dma_unmap(c, 0, 2 << 20), 0);
	assert_int_equal(dmalog_vfu_client_dma_unmap(c, 0, 2 << 20), -EINVAL);
	dmalog_handle_destroy(h);
	dmalog_vfu_client_destroy(c);
	assert_int_equal(srv_end(&v), 0);
	close(fd);
	dmalog_device_destroy(dev);
	dmalog_swtrack_destroy(t);
}

/* A device's state between two servers through two clients' handles: data fds stand in. */
static void client_migration(void **state)
{
	struct dmalog_emudev *src = emu(), *dst = emu();
	struct dmalog_vfu_client *ca, *cb;
	struct dmalog_handle *ha, *hb;
	size_t cap = 1 << 20, len = 0;
	uint8_t *stream = malloc(cap);
	uint64_t flags, size;
	struct srv a, b;
	int fd;
	ssize_t n;

	srv_start(&a, dmalog_emudev_device(src), TIMEOUT_MS);
	srv_start(&b, dmalog_emudev_device(dst), TIMEOUT_MS);
	assert_int_equal(dmalog_vfu_client_connect(a.fds[0], TIMEOUT_MS, &ca), 0);
	assert_int_equal(dmalog_vfu_client_connect(b.fds[0], TIMEOUT_MS, &cb), 0);
	assert_int_equal(dmalog_handle_from_vfu_client(ca, "emu", &ha), 0);
	assert_int_equal(dmalog_handle_from_vfu_client(cb, "emu", &hb), 0);
	assert_int_equal(dmalog_handle_migration_flags(ha, &flags), 0);
	assert_int_equal(flags, VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P);
	assert_int_equal(dmalog_handle_set_state(hb, VFIO_DEVICE_STATE_STOP, NULL), 0);
	while (dmalog_emudev_state_hash(src) == dmalog_emudev_state_hash(dst))
		usleep(1000);
	assert_int_equal(dmalog_handle_set_state(ha, VFIO_DEVICE_STATE_STOP_COPY, &fd), 0);
	assert_true(fd >= 0);
	assert_int_equal(dmalog_handle_data_size(ha, &size), 0);
	assert_true(size > 0);
	while ((n = dmalog_handle_data_read(ha, fd, stream + len, 65536)) > 0) {
		len += (size_t)n;
		assert_true(len + 65536 <= cap);
	}
	assert_int_equal(n, 0);
	close(fd);
	assert_int_equal(dmalog_handle_set_state(hb, VFIO_DEVICE_STATE_RESUMING, &fd), 0);
	assert_true(fd >= 0);
	for (size_t off = 0; off < len; off += (size_t)n) {
		n = dmalog_handle_data_write(hb, fd, stream + off, len - off);
		assert_true(n > 0);
	}
	close(fd);
	assert_int_equal(dmalog_handle_set_state(hb, VFIO_DEVICE_STATE_STOP, NULL), 0);
	assert_int_equal(dmalog_emudev_state_hash(src), dmalog_emudev_state_hash(dst));
	dmalog_handle_destroy(ha);
	dmalog_handle_destroy(hb);
	dmalog_vfu_client_destroy(ca);
	dmalog_vfu_client_destroy(cb);
	assert_int_equal(srv_end(&a), 0);
	assert_int_equal(srv_end(&b), 0);
	free(stream);
	dmalog_emudev_destroy(src);
	dmalog_emudev_destroy(dst);
}

/*
 * A server that answers VERSION with @reply, as a hostile one might; without one it hangs up
 * (@len 0) or stays silent (@len 1).
 */
struct fake_server {
	int fd;
	const void *reply;
	size_t len;
};

static void *fake_server_thread(void *arg)
{
	struct fake_server *f = arg;
	struct dmalog_vfu_hdr h;
	uint8_t buf[1024];

	if (read_exact(f->fd, &h, sizeof(h)) || h.size > sizeof(buf) + sizeof(h) ||
	    read_exact(f->fd, buf, h.size - sizeof(h)))
		return NULL;
	if (f->reply) {
		struct dmalog_vfu_hdr r;

		memcpy(&r, f->reply, sizeof(r));
		r.id = r.id ? r.id : h.id;
		send_all(f->fd, &r, sizeof(r), NULL, 0);
		if (f->len > sizeof(r))
			send_all(f->fd, (const uint8_t *)f->reply + sizeof(r), f->len - sizeof(r),
				 NULL, 0);
	} else if (!f->len) {
		shutdown(f->fd, SHUT_RDWR);
	}
	return NULL;
}

static int connect_to_fake(const void *reply, size_t len)
{
	struct fake_server f = {.reply = reply, .len = len};
	struct dmalog_vfu_client *c = NULL;
	pthread_t t;
	int sv[2], ret;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	f.fd = sv[1];
	assert_int_equal(pthread_create(&t, NULL, fake_server_thread, &f), 0);
	ret = dmalog_vfu_client_connect(sv[0], 300, &c);
	pthread_join(t, NULL);
	dmalog_vfu_client_destroy(c);
	close(sv[0]);
	close(sv[1]);
	return ret;
}

/* A VERSION reply: header fields as given (id 0: the request's), version, JSON with its NUL. */
static int fake_version(uint16_t id, uint32_t flags, uint16_t major, uint16_t minor,
			const char *json)
{
	uint8_t buf[256];
	size_t len = sizeof(struct dmalog_vfu_hdr) + sizeof(struct dmalog_vfu_version) +
		     (json ? strlen(json) + 1 : 0);
	struct dmalog_vfu_hdr h = {
		.id = id, .command = DMALOG_VFU_VERSION, .size = (uint32_t)len, .flags = flags};
	struct dmalog_vfu_version v = {major, minor};

	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), &v, sizeof(v));
	if (json)
		memcpy(buf + sizeof(h) + sizeof(v), json, strlen(json) + 1);
	return connect_to_fake(buf, len);
}

/* The client checks its server: another major, bad JSON, a stranger's reply, silence. */
static void client_refuses_bad_servers(void **state)
{
	struct dmalog_vfu_hdr err = {.command = DMALOG_VFU_VERSION,
				     .size = sizeof(err),
				     .flags = DMALOG_VFU_TYPE_REPLY | DMALOG_VFU_ERROR,
				     .error = EPERM};

	assert_int_equal(fake_version(0, DMALOG_VFU_TYPE_REPLY, 0, 0, "{}"), 0);
	assert_int_equal(fake_version(0, DMALOG_VFU_TYPE_REPLY, 0, 1, NULL), 0);
	assert_int_equal(fake_version(0, DMALOG_VFU_TYPE_REPLY, 1, 0, "{}"), -EPROTO);
	assert_int_equal(fake_version(0, DMALOG_VFU_TYPE_REPLY, 0, DMALOG_VFU_MINOR + 1, "{}"),
			 -EPROTO);
	assert_int_equal(fake_version(0, DMALOG_VFU_TYPE_REPLY, 0, 0, "{]"), -EPROTO);
	/*
	 * Not the request's id: out of step. A command instead of a reply is a command from the
	 * server (only DMA_READ/WRITE are served; this one gets ENOTSUP) and the reply is still
	 * awaited: this server never sends it.
	 */
	assert_int_equal(fake_version(999, DMALOG_VFU_TYPE_REPLY, 0, 0, "{}"), -EPROTO);
	assert_int_equal(fake_version(0, DMALOG_VFU_TYPE_COMMAND, 0, 0, "{}"), -ETIMEDOUT);
	assert_int_equal(connect_to_fake(&err, sizeof(err)), -EPERM);
	/* Hung up without a word; silent past the client's timeout. */
	assert_int_equal(connect_to_fake(NULL, 0), -ECONNRESET);
	assert_int_equal(connect_to_fake(NULL, 1), -ETIMEDOUT);
}

/* A server that negotiates, then answers a REPORT of 100 pages with every bit set. */
static void *stray_bits_server(void *arg)
{
	int fd = *(int *)arg;
	struct dmalog_vfu_hdr h;
	uint8_t buf[1024];

	for (int msg = 0; msg < 2; msg++) {
		struct {
			struct dmalog_vfu_hdr h;
			uint8_t payload[8 + 24 + 16];
		} r = {0};
		size_t len = sizeof(r.h);

		if (read_exact(fd, &h, sizeof(h)) || h.size > sizeof(buf) + sizeof(h) ||
		    read_exact(fd, buf, h.size - sizeof(h)))
			return NULL;
		if (!msg) {
			memcpy(r.payload, "\0\0\0\0{}", 7); /* version 0.0, "{}" */
			len += 7;
		} else {
			memcpy(r.payload, buf, 8 + 24); /* the request's feature and range */
			memset(r.payload + 32, 0xff, 16);
			len += sizeof(r.payload);
		}
		r.h = (struct dmalog_vfu_hdr){.id = h.id,
					      .command = h.command,
					      .size = (uint32_t)len,
					      .flags = DMALOG_VFU_TYPE_REPLY};
		send_all(fd, &r, len, NULL, 0);
	}
	return NULL;
}

/* Bits past the range's last page are not the server's to set: the client drops them. */
static void client_masks_stray_bits(void **state)
{
	struct dmalog_vfu_client *c;
	struct dmalog_handle *h;
	uint64_t bitmap[2] = {0};
	pthread_t t;
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(pthread_create(&t, NULL, stray_bits_server, &sv[1]), 0);
	assert_int_equal(dmalog_vfu_client_connect(sv[0], TIMEOUT_MS, &c), 0);
	assert_int_equal(dmalog_handle_from_vfu_client(c, "stray", &h), 0);
	assert_int_equal(dmalog_handle_log_report(h, 0, 100 * 4096, 4096, bitmap), 0);
	assert_int_equal(bitmap[0], ~0ULL);
	assert_int_equal(bitmap[1], (1ULL << 36) - 1);
	pthread_join(t, NULL);
	dmalog_handle_destroy(h);
	dmalog_vfu_client_destroy(c);
	close(sv[0]);
	close(sv[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(version_negotiated),
		cmocka_unit_test(dma_maps),
		cmocka_unit_test(logging_over_the_socket),
		cmocka_unit_test(large_report),
		cmocka_unit_test(disconnect_mid_logging),
		cmocka_unit_test(migration_data_over_the_socket),
		cmocka_unit_test(framing_refused),
		cmocka_unit_test(malformed_commands_answered),
		cmocka_unit_test(no_reply_honoured),
		cmocka_unit_test(client_logging),
		cmocka_unit_test(client_migration),
		cmocka_unit_test(client_refuses_bad_servers),
		cmocka_unit_test(client_masks_stray_bits),
	};

	return cmocka_run_group_tests_name("vfio_user", tests, NULL, NULL);
}
