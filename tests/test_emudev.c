// SPDX-License-Identifier: MIT
/*
 * The migratable emulated device: a STOP_COPY and a PRE_COPY stream move its whole state to a
 * second device, RESUMING refuses truncated, corrupt and incompatible streams into ERROR, STOP
 * stops every write (behaviour 111), RUNNING_P2P only peer-to-peer writes, and the data size
 * estimate matches the stream.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"

enum { S = 1, R = 2, SC = 3, RS = 4, RP = 5, PC = 6, PCP = 7 };

#define MEM (4ULL << 20)

static struct dmalog_emudev *make(uint64_t flags, uint64_t dev_mem, struct dmalog_dma_config *dma)
{
	struct dmalog_emudev_config c = {.migration_flags = flags,
					 .dev_mem_bytes = dev_mem,
					 .tracker = DMALOG_EMUDEV_TRACK_SOFTWARE,
					 .seed = 11};
	struct dmalog_emudev *d;

	if (dma)
		c.dma = *dma;
	assert_int_equal(dmalog_emudev_create(&c, &d), 0);
	return d;
}

static int set_state(struct dmalog_emudev *d, uint32_t state, int *fd)
{
	struct vfio_device_feature_mig_state m = {.device_state = state};
	int ret = feature(dmalog_emudev_device(d), FEAT_SET | VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE,
			  &m, sizeof(m));

	*fd = m.data_fd;
	return ret;
}

static uint32_t get_state(struct dmalog_emudev *d)
{
	struct vfio_device_feature_mig_state m = {0};

	assert_int_equal(feature(dmalog_emudev_device(d),
				 FEAT_GET | VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE, &m, sizeof(m)),
			 0);
	return m.device_state;
}

/* Read @fd to EOF (blocking) into a growing buffer. */
static uint8_t *read_all(int fd, size_t *len)
{
	size_t cap = 1 << 20;
	uint8_t *buf = malloc(cap);
	ssize_t n;

	*len = 0;
	fcntl(fd, F_SETFL, 0);
	while ((n = read(fd, buf + *len, cap - *len)) > 0) {
		*len += n;
		if (*len == cap)
			buf = realloc(buf, cap *= 2);
	}
	assert_int_equal(n, 0);
	return buf;
}

/* Feed @buf to @d through RESUMING; returns what RESUMING -> STOP says. */
static int resume_with(struct dmalog_emudev *d, const uint8_t *buf, size_t len)
{
	int fd, ignored;

	assert_int_equal(set_state(d, RS, &fd), 0);
	assert_true(fd >= 0);
	for (size_t off = 0; off < len;) {
		ssize_t n = write(fd, buf + off, len - off);

		assert_true(n > 0);
		off += n;
	}
	close(fd);
	return set_state(d, S, &ignored);
}

/* STOP_COPY to EOF moves the whole state; the data size estimate is the stream's size. */
static void stop_copy_round_trip(void **state)
{
	struct dmalog_emudev *src = make(VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P, 0, NULL);
	struct dmalog_emudev *dst = make(VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P, 0, NULL);
	struct vfio_device_feature_mig_data_size size = {0};
	uint8_t *stream;
	size_t len;
	int fd;

	/*
	 * Both run the same seeded work: the destination is stopped first, and the source goes
	 * on until its state differs (else the two could be at the same step by chance).
	 */
	assert_int_equal(set_state(dst, S, &fd), 0);
	while (dmalog_emudev_state_hash(src) == dmalog_emudev_state_hash(dst))
		usleep(1000);
	assert_int_equal(set_state(src, SC, &fd), 0); /* R -> RP -> S -> SC */
	assert_int_equal(feature(dmalog_emudev_device(src),
				 FEAT_GET | VFIO_DEVICE_FEATURE_MIG_DATA_SIZE, &size, sizeof(size)),
			 0);
	stream = read_all(fd, &len);
	close(fd);
	assert_int_equal(len, size.stop_copy_length);
	assert_int_not_equal(dmalog_emudev_state_hash(src), dmalog_emudev_state_hash(dst));
	assert_int_equal(resume_with(dst, stream, len), 0);
	assert_string_equal(dmalog_emudev_resume_error(dst), "");
	assert_int_equal(dmalog_emudev_state_hash(src), dmalog_emudev_state_hash(dst));
	assert_int_equal(set_state(dst, R, &fd), 0);
	assert_int_equal(set_state(src, S, &fd), 0);
	free(stream);
	dmalog_emudev_destroy(src);
	dmalog_emudev_destroy(dst);
}

/* RESUMING refuses what is not a whole, intact stream of a device like itself. */
static void resuming_rejects_bad_streams(void **state)
{
	struct dmalog_emudev *src = make(VFIO_MIGRATION_STOP_COPY, 64 * 4096, NULL);
	struct dmalog_emudev *dst = make(VFIO_MIGRATION_STOP_COPY, 64 * 4096, NULL);
	struct dmalog_emudev *other = make(VFIO_MIGRATION_STOP_COPY, 32 * 4096, NULL);
	uint8_t *stream;
	size_t len;
	int fd;

	assert_int_equal(set_state(src, SC, &fd), 0);
	stream = read_all(fd, &len);
	close(fd);
	/* Truncated. */
	assert_int_equal(resume_with(dst, stream, len - 10), -EINVAL);
	assert_int_equal(get_state(dst), VFIO_DEVICE_STATE_ERROR);
	assert_non_null(strstr(dmalog_emudev_resume_error(dst), "truncated"));
	assert_int_equal(dmalog_device_ioctl(dmalog_emudev_device(dst), VFIO_DEVICE_RESET, NULL),
			 0);
	assert_int_equal(get_state(dst), R);
	/* Missing its end record. */
	assert_int_equal(resume_with(dst, stream, len - 20), -EINVAL);
	assert_non_null(strstr(dmalog_emudev_resume_error(dst), "incomplete"));
	dmalog_device_ioctl(dmalog_emudev_device(dst), VFIO_DEVICE_RESET, NULL);
	/* One flipped bit. */
	stream[len / 2] ^= 0x10;
	assert_int_equal(resume_with(dst, stream, len), -EINVAL);
	assert_non_null(strstr(dmalog_emudev_resume_error(dst), "checksum"));
	dmalog_device_ioctl(dmalog_emudev_device(dst), VFIO_DEVICE_RESET, NULL);
	stream[len / 2] ^= 0x10;
	/* Another device's geometry. */
	assert_int_equal(resume_with(other, stream, len), -EINVAL);
	assert_non_null(strstr(dmalog_emudev_resume_error(other), "incompatible"));
	/* Nothing at all. */
	assert_int_equal(resume_with(dst, stream, 0), -EINVAL);
	dmalog_device_ioctl(dmalog_emudev_device(dst), VFIO_DEVICE_RESET, NULL);
	/* And the whole stream still works. */
	assert_int_equal(resume_with(dst, stream, len), 0);
	assert_int_equal(dmalog_emudev_state_hash(src), dmalog_emudev_state_hash(dst));
	free(stream);
	dmalog_emudev_destroy(src);
	dmalog_emudev_destroy(dst);
	dmalog_emudev_destroy(other);
}

/* CRC-32C by its definition, to re-seal a record changed on purpose. */
static uint32_t crc32c_ref(const uint8_t *p, size_t n)
{
	uint32_t crc = ~0u;

	for (size_t i = 0; i < n; i++) {
		crc ^= p[i];
		for (int k = 0; k < 8; k++)
			crc = crc & 1 ? 0x82f63b78u ^ (crc >> 1) : crc >> 1;
	}
	return ~crc;
}

/* The record of @type in a device stream: its payload and length (records: type, len, ..., crc). */
static uint8_t *find_record(uint8_t *stream, size_t len, uint32_t type, uint32_t *rlen)
{
	for (size_t off = 0; off + 12 <= len;) {
		uint32_t t, l;

		memcpy(&t, stream + off, 4);
		memcpy(&l, stream + off + 4, 4);
		if (t == type) {
			*rlen = l;
			return stream + off;
		}
		off += 12 + l;
	}
	return NULL;
}

/*
 * The state digest covers all of the state: a device resumed from a stream in which one
 * register, one queue position or one byte of device memory differs has another digest.
 */
static void state_hash_covers_everything(void **state)
{
	struct dmalog_emudev *src = make(VFIO_MIGRATION_STOP_COPY, 16 * 4096, NULL);
	uint8_t *stream, *rec;
	uint64_t good;
	size_t len;
	uint32_t rlen = 0;
	int fd;

	assert_int_equal(set_state(src, SC, &fd), 0);
	stream = read_all(fd, &len);
	close(fd);
	good = dmalog_emudev_state_hash(src);
	/* 16 registers, then the queue head and tail, in the REGS record (type 3). */
	for (int field = 0; field < 18; field++) {
		struct dmalog_emudev *dst = make(VFIO_MIGRATION_STOP_COPY, 16 * 4096, NULL);
		uint32_t crc;

		rec = find_record(stream, len, 3, &rlen);
		assert_non_null(rec);
		rec[8 + 8 * field] ^= 0x40;
		crc = crc32c_ref(rec, 8 + rlen);
		memcpy(rec + 8 + rlen, &crc, 4);
		assert_int_equal(resume_with(dst, stream, len), 0);
		if (dmalog_emudev_state_hash(dst) == good)
			fail_msg("field %d of the registers is not in the state digest", field);
		rec[8 + 8 * field] ^= 0x40;
		crc = crc32c_ref(rec, 8 + rlen);
		memcpy(rec + 8 + rlen, &crc, 4);
		dmalog_emudev_destroy(dst);
	}
	/* The first and last byte of a memory chunk (type 2: offset, then 4 KiB). */
	for (int at = 0; at < 2; at++) {
		struct dmalog_emudev *dst = make(VFIO_MIGRATION_STOP_COPY, 16 * 4096, NULL);
		uint32_t crc;
		size_t byte;

		rec = find_record(stream, len, 2, &rlen);
		assert_non_null(rec);
		byte = 8 + 8 + (at ? 4095 : 0);
		rec[byte] ^= 0x01;
		crc = crc32c_ref(rec, 8 + rlen);
		memcpy(rec + 8 + rlen, &crc, 4);
		assert_int_equal(resume_with(dst, stream, len), 0);
		assert_int_not_equal(dmalog_emudev_state_hash(dst), good);
		rec[byte] ^= 0x01;
		crc = crc32c_ref(rec, 8 + rlen);
		memcpy(rec + 8 + rlen, &crc, 4);
		dmalog_emudev_destroy(dst);
	}
	/* And the stream as it was gives the same digest. */
	{
		struct dmalog_emudev *dst = make(VFIO_MIGRATION_STOP_COPY, 16 * 4096, NULL);

		assert_int_equal(resume_with(dst, stream, len), 0);
		assert_int_equal(dmalog_emudev_state_hash(dst), good);
		dmalog_emudev_destroy(dst);
	}
	free(stream);
	dmalog_emudev_destroy(src);
}

/*
 * A hostile stream cannot make the device buffer without bound, nor block its writer: a
 * record announcing 2 GiB is refused as soon as its length is read, and the 64 MiB of
 * garbage written after it all goes through (the device drains what it will not take).
 */
static void resuming_bounded_and_never_blocks(void **state)
{
	struct dmalog_emudev *dst = make(VFIO_MIGRATION_STOP_COPY, 64 * 4096, NULL);
	uint8_t *junk = calloc(1, 1 << 20);
	uint32_t huge[2] = {2, 0x80000000u}; /* a chunk record of 2 GiB */
	int fd, ignored;

	assert_int_equal(set_state(dst, RS, &fd), 0);
	assert_int_equal(write(fd, huge, sizeof(huge)), sizeof(huge));
	for (int i = 0; i < 64; i++) {
		size_t off = 0;

		while (off < (1u << 20)) {
			ssize_t n = write(fd, junk + off, (1u << 20) - off);

			assert_true(n > 0);
			off += (size_t)n;
		}
	}
	close(fd);
	assert_int_equal(set_state(dst, S, &ignored), -EINVAL);
	assert_non_null(strstr(dmalog_emudev_resume_error(dst), "record too large"));
	free(junk);
	dmalog_emudev_destroy(dst);
}

/* PRE_COPY: initial data, then what changes; the same fd carries STOP_COPY's end. */
static void precopy_round_trip(void **state)
{
	struct dmalog_emudev *src = make(DMALOG_MIGRATION_FLAGS_ALL, 0, NULL);
	struct dmalog_emudev *dst = make(DMALOG_MIGRATION_FLAGS_ALL, 0, NULL);
	struct vfio_precopy_info info = {.argsz = sizeof(info)};
	uint8_t *buf = malloc(64 << 20), *rest;
	size_t len = 0, more;
	int fd, none;

	assert_int_equal(set_state(src, PC, &fd), 0);
	assert_true(fd >= 0);
	fcntl(fd, F_SETFL, O_NONBLOCK);
	assert_int_equal(dmalog_device_data_ioctl(dmalog_emudev_device(src), fd,
						  VFIO_MIG_GET_PRECOPY_INFO, &info),
			 0);
	assert_true(info.initial_bytes > 0);
	/* Drain the initial data; then, not reading, wait for the device to dirty more. */
	for (int waited = 0; waited < 20000 && info.initial_bytes; waited++) {
		ssize_t n = read(fd, buf + len, (64 << 20) - len);

		if (n > 0)
			len += n;
		else
			usleep(1000);
		assert_int_equal(dmalog_device_data_ioctl(dmalog_emudev_device(src), fd,
							  VFIO_MIG_GET_PRECOPY_INFO, &info),
				 0);
	}
	assert_int_equal(info.initial_bytes, 0);
	assert_true(len >= 256 * 4096);
	for (int waited = 0; waited < 20000 && !info.dirty_bytes; waited++) {
		usleep(1000);
		assert_int_equal(dmalog_device_data_ioctl(dmalog_emudev_device(src), fd,
							  VFIO_MIG_GET_PRECOPY_INFO, &info),
				 0);
	}
	assert_true(info.dirty_bytes > 0);
	/* PRE_COPY -> PRE_COPY_P2P -> STOP_COPY: no new fd. */
	assert_int_equal(set_state(src, SC, &none), 0);
	assert_int_equal(none, -1);
	rest = read_all(fd, &more);
	close(fd);
	memcpy(buf + len, rest, more);
	assert_int_equal(resume_with(dst, buf, len + more), 0);
	assert_int_equal(dmalog_emudev_state_hash(src), dmalog_emudev_state_hash(dst));
	free(rest);
	free(buf);
	dmalog_emudev_destroy(src);
	dmalog_emudev_destroy(dst);
}

static void wait_writes(struct dmalog_dma_engine *e, uint64_t writes, uint64_t p2p)
{
	struct dmalog_dma_stats st;

	for (int ms = 0; ms < 20000; ms++) {
		dmalog_dma_engine_get_stats(e, &st);
		if (st.writes >= writes && st.p2p_writes >= p2p)
			return;
		usleep(1000);
	}
	fail_msg("no progress");
}

/* 111: after the STOP arc nothing is written: no new dirty bits, memory and state still. */
static void b111_stop_stops_dma(void **state)
{
	uint8_t *mem = aligned_alloc(4096, MEM), *snap = malloc(MEM);
	uint8_t peer[4096];
	struct dmalog_dma_config dma = {.mem = mem,
					.mem_bytes = MEM,
					.p2p_share = 0.2,
					.peer = peer,
					.peer_bytes = sizeof(peer),
					.tag = 9};
	struct dmalog_emudev *d;
	struct vfio_device_feature_dma_logging_range r = {0, MEM};
	uint64_t *bm = calloc(MEM / SZ_4K / 64, 8), h;
	struct dmalog_dma_stats a, b;
	int fd;

	memset(mem, 0, MEM);
	d = make(VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P, 0, &dma);
	assert_int_equal(log_start(dmalog_emudev_device(d), &r, 1, SZ_4K, NULL), 0);
	wait_writes(dmalog_emudev_dma(d), 1000, 100);
	/* RUNNING_P2P: guest writes go on, peer writes stop. */
	assert_int_equal(set_state(d, RP, &fd), 0);
	dmalog_dma_engine_get_stats(dmalog_emudev_dma(d), &a);
	wait_writes(dmalog_emudev_dma(d), a.writes + 1000, 0);
	dmalog_dma_engine_get_stats(dmalog_emudev_dma(d), &b);
	assert_int_equal(a.p2p_writes, b.p2p_writes);
	/* STOP: nothing at all. */
	assert_int_equal(set_state(d, S, &fd), 0);
	assert_int_equal(log_report(dmalog_emudev_device(d), 0, MEM, SZ_4K, bm), 0);
	memcpy(snap, mem, MEM);
	h = dmalog_emudev_state_hash(d);
	dmalog_dma_engine_get_stats(dmalog_emudev_dma(d), &a);
	usleep(30 * 1000);
	memset(bm, 0, MEM / SZ_4K / 8);
	assert_int_equal(log_report(dmalog_emudev_device(d), 0, MEM, SZ_4K, bm), 0);
	for (uint64_t i = 0; i < MEM / SZ_4K / 64; i++)
		assert_int_equal(bm[i], 0);
	assert_memory_equal(snap, mem, MEM);
	assert_int_equal(h, dmalog_emudev_state_hash(d));
	dmalog_dma_engine_get_stats(dmalog_emudev_dma(d), &b);
	assert_int_equal(a.writes, b.writes);
	/* RUNNING again: writes resume and are logged. */
	assert_int_equal(set_state(d, R, &fd), 0);
	wait_writes(dmalog_emudev_dma(d), b.writes + 100, b.p2p_writes + 10);
	dmalog_emudev_destroy(d);
	free(bm);
	free(snap);
	free(mem);
}

/* A device given STOP_COPY alone shows those arcs; no DMA logging without a tracker. */
static void flag_subsets(void **state)
{
	struct dmalog_emudev_config c = {.migration_flags = VFIO_MIGRATION_STOP_COPY,
					 .dev_mem_bytes = 16 * 4096};
	struct vfio_device_feature_migration mig = {0};
	struct dmalog_emudev *d;
	int fd;

	assert_int_equal(dmalog_emudev_create(&c, &d), 0);
	assert_int_equal(feature(dmalog_emudev_device(d), FEAT_GET | VFIO_DEVICE_FEATURE_MIGRATION,
				 &mig, sizeof(mig)),
			 0);
	assert_int_equal(mig.flags, VFIO_MIGRATION_STOP_COPY);
	assert_int_equal(feature(dmalog_emudev_device(d),
				 FEAT_PROBE | VFIO_DEVICE_FEATURE_DMA_LOGGING_START, NULL, 0),
			 -ENOTTY);
	assert_int_equal(set_state(d, RP, &fd), -EINVAL);
	assert_int_equal(set_state(d, PC, &fd), -EINVAL);
	assert_int_equal(set_state(d, SC, &fd), 0);
	close(fd);
	assert_int_equal(set_state(d, R, &fd), 0);
	dmalog_emudev_destroy(d);
	c.migration_flags = VFIO_MIGRATION_P2P;
	assert_int_equal(dmalog_emudev_create(&c, &d), -EINVAL);
	c.migration_flags = VFIO_MIGRATION_STOP_COPY;
	c.dev_mem_bytes = 1000;
	assert_int_equal(dmalog_emudev_create(&c, &d), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(stop_copy_round_trip),
		cmocka_unit_test(resuming_rejects_bad_streams),
		cmocka_unit_test(resuming_bounded_and_never_blocks),
		cmocka_unit_test(state_hash_covers_everything),
		cmocka_unit_test(precopy_round_trip),
		cmocka_unit_test(b111_stop_stops_dma),
		cmocka_unit_test(flag_subsets),
	};

	return cmocka_run_group_tests_name("emudev", tests, NULL, NULL);
}
