// SPDX-License-Identifier: MIT
/*
 * Migration features through the frame: behaviours 102-107, 109, 110, 112, MIG_DATA_SIZE and
 * VFIO_MIG_GET_PRECOPY_INFO. (111, no DMA in STOP, needs a DMA engine: the device issue.)
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"

enum { S = 1, R = 2, SC = 3, RS = 4, RP = 5, PC = 6, PCP = 7 };

struct fixture {
	struct fake_mig mig;
	struct dmalog_swtrack *sw;
	struct dmalog_device *dev;
};

/* One device object holding both a tracker and a migration driver, as real ones do. */
static int fwd_start(void *p, const struct dmalog_range *r, uint32_t n, uint64_t *ps)
{
	return dmalog_swtrack_log_ops()->log_start(((struct fixture *)p)->sw, r, n, ps);
}

static int fwd_stop(void *p)
{
	return dmalog_swtrack_log_ops()->log_stop(((struct fixture *)p)->sw);
}

static int fwd_report(void *p, uint64_t iova, uint64_t len, struct dmalog_iova_bitmap *bm)
{
	return dmalog_swtrack_log_ops()->log_read_and_clear(((struct fixture *)p)->sw, iova, len,
							    bm);
}

static int fwd_step(void *p, uint32_t from, uint32_t to, int *fd, bool *to_error)
{
	return fake_mig_ops.step(&((struct fixture *)p)->mig, from, to, fd, to_error);
}

static int fwd_size(void *p, uint64_t *len)
{
	return fake_mig_ops.get_data_size(&((struct fixture *)p)->mig, len);
}

static int fwd_precopy(void *p, uint64_t *i, uint64_t *d)
{
	return fake_mig_ops.precopy_info(&((struct fixture *)p)->mig, i, d);
}

static void fwd_reset(void *p)
{
	fake_mig_ops.reset(&((struct fixture *)p)->mig);
}

static const struct dmalog_log_ops fwd_log = {
	.log_start = fwd_start, .log_stop = fwd_stop, .log_read_and_clear = fwd_report};
static const struct dmalog_mig_ops fwd_mig = {fwd_step, fwd_size, fwd_precopy, fwd_reset};

static int make(void **state, uint64_t flags)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct dmalog_device_desc d = {
		.log_ops = &fwd_log, .mig_ops = &fwd_mig, .migration_flags = flags, .priv = f};

	f->mig.resume_read_fd = -1;
	assert_int_equal(dmalog_swtrack_create(&f->sw), 0);
	assert_int_equal(dmalog_device_create(&d, &f->dev), 0);
	*state = f;
	return 0;
}

static int setup_stop_copy(void **state)
{
	return make(state, VFIO_MIGRATION_STOP_COPY);
}

static int setup_p2p(void **state)
{
	return make(state, VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P);
}

static int setup_precopy(void **state)
{
	return make(state, DMALOG_MIGRATION_FLAGS_ALL);
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	dmalog_device_destroy(f->dev);
	dmalog_swtrack_destroy(f->sw);
	if (f->mig.resume_read_fd >= 0)
		close(f->mig.resume_read_fd);
	free(f);
	return 0;
}

static int set_state(struct fixture *f, uint32_t state, int *fd)
{
	struct vfio_device_feature_mig_state m = {.device_state = state, .data_fd = 77};
	int ret = feature(f->dev, FEAT_SET | VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE, &m, sizeof(m));

	*fd = m.data_fd;
	return ret;
}

static uint32_t get_state(struct fixture *f)
{
	struct vfio_device_feature_mig_state m = {.device_state = 99, .data_fd = 77};

	assert_int_equal(
		feature(f->dev, FEAT_GET | VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE, &m, sizeof(m)), 0);
	assert_int_equal(m.data_fd, -1);
	return m.device_state;
}

/* 102: MIGRATION reports the flags, GET only. */
static void b102_migration_flags(void **state)
{
	struct fixture *f = *state;
	struct vfio_device_feature_migration mig = {0};

	assert_int_equal(
		feature(f->dev, FEAT_GET | VFIO_DEVICE_FEATURE_MIGRATION, &mig, sizeof(mig)), 0);
	assert_int_equal(mig.flags, VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P);
	assert_int_equal(
		feature(f->dev, FEAT_SET | VFIO_DEVICE_FEATURE_MIGRATION, &mig, sizeof(mig)),
		-EINVAL);
	assert_int_equal(
		feature(f->dev, FEAT_PROBE | FEAT_GET | VFIO_DEVICE_FEATURE_MIGRATION, NULL, 0), 0);
	assert_int_equal(feature_call(f->dev, FEAT_GET | VFIO_DEVICE_FEATURE_MIGRATION, &mig,
				      sizeof(mig), 7),
			 -EINVAL);
	assert_int_equal(
		feature(f->dev,
			FEAT_PROBE | FEAT_SET | FEAT_GET | VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE,
			NULL, 0),
		0);
}

/* 103, 104: GET gives RUNNING and no fd; STOP_COPY hands out the whole state, then EOF. */
static void b103_b104_stop_copy_stream(void **state)
{
	struct fixture *f = *state;
	char buf[128];
	ssize_t n, total = 0;
	int fd;

	assert_int_equal(get_state(f), R);
	assert_int_equal(set_state(f, SC, &fd), 0);
	assert_true(fd >= 0);
	while ((n = read(fd, buf + total, sizeof(buf) - total)) > 0)
		total += n;
	assert_int_equal(n, 0);
	assert_int_equal(total, strlen(FAKE_STATE));
	assert_memory_equal(buf, FAKE_STATE, total);
	close(fd);
	assert_int_equal(get_state(f), SC);
}

/* 105: a truncated RESUMING stream fails RESUMING -> STOP and the device is in ERROR. */
static void b105_resuming_rejects_truncated(void **state)
{
	struct fixture *f = *state;
	int fd, ignored;

	assert_int_equal(set_state(f, S, &fd), 0);
	assert_int_equal(fd, -1);
	assert_int_equal(set_state(f, RS, &fd), 0);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, FAKE_STATE, 8), 8);
	close(fd);
	assert_int_equal(set_state(f, S, &ignored), -EINVAL);
	assert_int_equal(ignored, -1);
	assert_int_equal(get_state(f), VFIO_DEVICE_STATE_ERROR);
}

static void resuming_accepts_whole_stream(void **state)
{
	struct fixture *f = *state;
	int fd;

	assert_int_equal(set_state(f, RS, &fd), 0); /* R -> S -> RS */
	assert_true(fd >= 0);
	assert_int_equal(write(fd, FAKE_STATE, strlen(FAKE_STATE)), (ssize_t)strlen(FAKE_STATE));
	close(fd);
	assert_int_equal(set_state(f, R, &fd), 0);
	assert_int_equal(fd, -1);
	assert_int_equal(get_state(f), R);
}

/* 106, 107: ERROR cannot be requested; unknown values neither; nothing moves. */
static void b106_b107_invalid_targets(void **state)
{
	struct fixture *f = *state;
	int fd;

	assert_int_equal(set_state(f, VFIO_DEVICE_STATE_ERROR, &fd), -EINVAL);
	assert_int_equal(fd, -1);
	assert_int_equal(set_state(f, 8, &fd), -EINVAL);
	assert_int_equal(set_state(f, UINT32_MAX, &fd), -EINVAL);
	assert_int_equal(f->mig.narcs, 0);
	assert_int_equal(get_state(f), R);
}

static void b107_p2p_state_needs_p2p(void **state)
{
	struct fixture *f = *state;
	int fd;

	assert_int_equal(set_state(f, RP, &fd), -EINVAL);
	assert_int_equal(set_state(f, PC, &fd), -EINVAL);
	assert_int_equal(get_state(f), R);
}

/* 109: a failed second arc leaves the intermediate state, or ERROR if the driver says so. */
static void b109_failed_arc_state(void **state)
{
	struct fixture *f = *state;
	int fd;

	f->mig.fail_arc = 2;
	assert_int_equal(set_state(f, SC, &fd), -EIO); /* R -> RP ok, RP -> S fails */
	assert_int_equal(fd, -1);
	assert_int_equal(get_state(f), RP);
	f->mig.narcs = 0;
	f->mig.fail_arc = 1;
	f->mig.fail_to_error = true;
	assert_int_equal(set_state(f, S, &fd), -EIO);
	assert_int_equal(get_state(f), VFIO_DEVICE_STATE_ERROR);
}

/* 110: in ERROR every SET fails; VFIO_DEVICE_RESET brings RUNNING back. */
static void b110_error_and_reset(void **state)
{
	struct fixture *f = *state;
	int fd;

	f->mig.fail_arc = 1;
	f->mig.fail_to_error = true;
	assert_int_equal(set_state(f, S, &fd), -EIO);
	f->mig.fail_arc = 0;
	for (uint32_t s = 0; s < 8; s++)
		assert_int_equal(set_state(f, s, &fd), -EINVAL);
	assert_int_equal(get_state(f), VFIO_DEVICE_STATE_ERROR);
	assert_int_equal(dmalog_device_ioctl(f->dev, VFIO_DEVICE_RESET, NULL), 0);
	assert_int_equal(f->mig.resets, 1);
	assert_int_equal(get_state(f), R);
	assert_int_equal(set_state(f, SC, &fd), 0);
	close(fd);
}

/* A driver that opens a data fd on an intermediate arc is refused; the fd is not leaked. */
static void intermediate_fd_refused(void **state)
{
	struct fixture *f = *state;
	int fd;

	f->mig.fd_every_arc = true;
	assert_int_equal(set_state(f, SC, &fd), -EINVAL); /* R -> S opened an fd */
	assert_int_equal(fd, -1);
	assert_int_equal(get_state(f), S);
	assert_int_equal(f->mig.narcs, 1);
}

/* 112: DMA logging is not connected to the FSM: started in RUNNING, it reports in STOP. */
static void b112_logging_survives_transitions(void **state)
{
	struct fixture *f = *state;
	struct vfio_device_feature_dma_logging_range r = {0, SZ_2M};
	uint64_t bitmap[8] = {0};
	int fd;

	assert_int_equal(log_start(f->dev, &r, 1, SZ_4K, NULL), 0);
	dmalog_swtrack_log_write(f->sw, 3 * SZ_4K, 1);
	assert_int_equal(set_state(f, SC, &fd), 0);
	close(fd);
	assert_int_equal(set_state(f, S, &fd), 0);
	assert_int_equal(log_report(f->dev, 0, SZ_2M, SZ_4K, bitmap), 0);
	assert_int_equal(bitmap[0], 8);
}

static void mig_data_size(void **state)
{
	struct fixture *f = *state;
	struct vfio_device_feature_mig_data_size size = {0};

	f->mig.data_size = 123456789;
	assert_int_equal(
		feature(f->dev, FEAT_GET | VFIO_DEVICE_FEATURE_MIG_DATA_SIZE, &size, sizeof(size)),
		0);
	assert_int_equal(size.stop_copy_length, 123456789);
	assert_int_equal(
		feature(f->dev, FEAT_SET | VFIO_DEVICE_FEATURE_MIG_DATA_SIZE, &size, sizeof(size)),
		-EINVAL);
	assert_int_equal(feature_call(f->dev, FEAT_GET | VFIO_DEVICE_FEATURE_MIG_DATA_SIZE, &size,
				      sizeof(size), 4),
			 -EINVAL);
}

static int precopy(struct fixture *f, int fd, unsigned long req, struct vfio_precopy_info *i)
{
	return dmalog_device_data_ioctl(f->dev, fd, req, i);
}

/* Precopy info: only on the saving fd, only in PRE_COPY*, with the kernel's errnos. */
static void precopy_info(void **state)
{
	struct fixture *f = *state;
	struct vfio_precopy_info info = {.argsz = sizeof(info), .flags = 0x40};
	int fd, rfd;

	f->mig.initial_bytes = 1000;
	f->mig.dirty_bytes = 77;
	assert_int_equal(set_state(f, PC, &fd), 0);
	assert_true(fd >= 0);
	assert_int_equal(precopy(f, fd, VFIO_MIG_GET_PRECOPY_INFO, &info), 0);
	assert_int_equal(info.initial_bytes, 1000);
	assert_int_equal(info.dirty_bytes, 77);
	assert_int_equal(info.flags, 0x40);
	assert_int_equal(precopy(f, fd, VFIO_DEVICE_FEATURE, &info), -ENOTTY);
	assert_int_equal(precopy(f, fd + 1000, VFIO_MIG_GET_PRECOPY_INFO, &info), -EBADF);
	assert_int_equal(precopy(f, -1, VFIO_MIG_GET_PRECOPY_INFO, &info), -EBADF);
	assert_int_equal(precopy(f, fd, VFIO_MIG_GET_PRECOPY_INFO, NULL), -EFAULT);
	info.argsz = sizeof(info) - 1;
	assert_int_equal(precopy(f, fd, VFIO_MIG_GET_PRECOPY_INFO, &info), -EINVAL);
	info.argsz = sizeof(info);
	/* PRE_COPY_P2P: same session, still valid. */
	assert_int_equal(set_state(f, PCP, &rfd), 0);
	assert_int_equal(rfd, -1);
	assert_int_equal(precopy(f, fd, VFIO_MIG_GET_PRECOPY_INFO, &info), 0);
	/* STOP_COPY continues the same fd, but precopy info is over. */
	assert_int_equal(set_state(f, SC, &rfd), 0);
	assert_int_equal(rfd, -1);
	assert_int_equal(precopy(f, fd, VFIO_MIG_GET_PRECOPY_INFO, &info), -EINVAL);
	/* STOP ends the session. */
	assert_int_equal(set_state(f, S, &rfd), 0);
	assert_int_equal(precopy(f, fd, VFIO_MIG_GET_PRECOPY_INFO, &info), -EBADF);
	close(fd);
	/* A resuming fd has no ioctls. */
	assert_int_equal(set_state(f, RS, &rfd), 0);
	assert_int_equal(precopy(f, rfd, VFIO_MIG_GET_PRECOPY_INFO, &info), -ENOTTY);
	close(rfd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(b102_migration_flags, setup_p2p, teardown),
		cmocka_unit_test_setup_teardown(b103_b104_stop_copy_stream, setup_p2p, teardown),
		cmocka_unit_test_setup_teardown(b105_resuming_rejects_truncated, setup_p2p,
						teardown),
		cmocka_unit_test_setup_teardown(resuming_accepts_whole_stream, setup_stop_copy,
						teardown),
		cmocka_unit_test_setup_teardown(b106_b107_invalid_targets, setup_p2p, teardown),
		cmocka_unit_test_setup_teardown(b107_p2p_state_needs_p2p, setup_stop_copy,
						teardown),
		cmocka_unit_test_setup_teardown(b109_failed_arc_state, setup_p2p, teardown),
		cmocka_unit_test_setup_teardown(b110_error_and_reset, setup_p2p, teardown),
		cmocka_unit_test_setup_teardown(intermediate_fd_refused, setup_stop_copy, teardown),
		cmocka_unit_test_setup_teardown(b112_logging_survives_transitions, setup_p2p,
						teardown),
		cmocka_unit_test_setup_teardown(mig_data_size, setup_p2p, teardown),
		cmocka_unit_test_setup_teardown(precopy_info, setup_precopy, teardown),
	};

	return cmocka_run_group_tests_name("migration", tests, NULL, NULL);
}
