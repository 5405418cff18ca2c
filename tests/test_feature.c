// SPDX-License-Identifier: MIT
/* The VFIO_DEVICE_FEATURE frame: seed-digest behaviours 1-14 and the header errno paths. */
#include <errno.h>
#include <string.h>

#include "helpers.h"

#define START  VFIO_DEVICE_FEATURE_DMA_LOGGING_START
#define STOP   VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP
#define REPORT VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT

struct fixture {
	struct spy_tracker spy;
	struct dmalog_device *dev;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct dmalog_device_desc desc = {.log_ops = &spy_log_ops, .priv = &f->spy};

	assert_int_equal(dmalog_device_create(&desc, &f->dev), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	dmalog_device_destroy(f->dev);
	free(f);
	return 0;
}

static uint8_t payload[64];

/* 1: no log ops -> -ENOTTY for every logging feature, whatever the op bits. */
static void b01_no_log_ops_enotty(void **state)
{
	struct dmalog_device *dev;
	struct dmalog_device_desc desc = {0};
	uint32_t ops[] = {FEAT_PROBE, FEAT_PROBE | FEAT_SET, FEAT_PROBE | FEAT_GET, FEAT_SET,
			  FEAT_GET};

	assert_int_equal(dmalog_device_create(&desc, &dev), 0);
	for (unsigned int i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		assert_int_equal(feature(dev, ops[i] | START, payload, 32), -ENOTTY);
		assert_int_equal(feature(dev, ops[i] | STOP, payload, 32), -ENOTTY);
		assert_int_equal(feature(dev, ops[i] | REPORT, payload, 32), -ENOTTY);
	}
	dmalog_device_destroy(dev);
}

/* 2, 3, 4: PROBE with the op bits each feature supports. */
static void b02_b04_probe(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(feature(f->dev, FEAT_PROBE | START, NULL, 0), 0);
	assert_int_equal(feature(f->dev, FEAT_PROBE | FEAT_SET | START, NULL, 0), 0);
	assert_int_equal(feature(f->dev, FEAT_PROBE | FEAT_GET | START, NULL, 0), -EINVAL);
	assert_int_equal(feature(f->dev, FEAT_PROBE | FEAT_GET | REPORT, NULL, 0), 0);
	assert_int_equal(feature(f->dev, FEAT_PROBE | FEAT_SET | REPORT, NULL, 0), -EINVAL);
	assert_int_equal(feature(f->dev, FEAT_PROBE | FEAT_SET | STOP, NULL, 0), 0);
	assert_int_equal(feature(f->dev, FEAT_PROBE | FEAT_GET | STOP, NULL, 0), -EINVAL);
	assert_int_equal(f->spy.starts + f->spy.stops + f->spy.reports, 0);
}

/* 5, 6: the wrong op, or no op at all. */
static void b05_b06_wrong_or_missing_op(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(feature(f->dev, FEAT_GET | START, payload, 24), -EINVAL);
	assert_int_equal(feature(f->dev, FEAT_SET | REPORT, payload, 32), -EINVAL);
	assert_int_equal(feature(f->dev, FEAT_GET | STOP, payload, 0), -EINVAL);
	assert_int_equal(feature(f->dev, START, payload, 24), -EINVAL);
	assert_int_equal(feature(f->dev, STOP, payload, 0), -EINVAL);
	assert_int_equal(feature(f->dev, REPORT, payload, 32), -EINVAL);
	assert_int_equal(f->spy.starts + f->spy.stops + f->spy.reports, 0);
}

/* 7: GET|SET without PROBE fails in the frame; with PROBE it asks for both. */
static void b07_get_and_set(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(feature(f->dev, FEAT_GET | FEAT_SET | START, payload, 24), -EINVAL);
	assert_int_equal(feature(f->dev, FEAT_GET | FEAT_SET | FEAT_PROBE | START, NULL, 0),
			 -EINVAL);
}

/* 8: unknown flag bits. */
static void b08_unknown_flag_bits(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(feature(f->dev, (1u << 19) | FEAT_PROBE | START, NULL, 0), -EINVAL);
	assert_int_equal(feature(f->dev, (1u << 31) | FEAT_SET | STOP, NULL, 0), -EINVAL);
}

/* 9: argsz smaller than the header. */
static void b09_argsz_below_header(void **state)
{
	struct fixture *f = *state;
	struct vfio_device_feature hdr = {.argsz = 7, .flags = FEAT_PROBE | START};

	assert_int_equal(dmalog_device_ioctl(f->dev, VFIO_DEVICE_FEATURE, &hdr), -EINVAL);
	hdr.argsz = 0;
	assert_int_equal(dmalog_device_ioctl(f->dev, VFIO_DEVICE_FEATURE, &hdr), -EINVAL);
	assert_int_equal(dmalog_device_ioctl(f->dev, VFIO_DEVICE_FEATURE, NULL), -EFAULT);
}

/* 10: payload one byte short of the minimum; STOP needs no payload. */
static void b10_minimum_payload(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(feature_call(f->dev, FEAT_SET | START, payload, 24, 23), -EINVAL);
	assert_int_equal(feature_call(f->dev, FEAT_GET | REPORT, payload, 32, 31), -EINVAL);
	assert_int_equal(feature_call(f->dev, FEAT_SET | STOP, NULL, 0, 0), 0);
	assert_int_equal(f->spy.stops, 1);
	assert_int_equal(f->spy.starts, 0);
}

/* 11: PROBE ignores argsz. */
static void b11_probe_ignores_argsz(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(feature_call(f->dev, FEAT_PROBE | FEAT_SET | START, NULL, 0, 0), 0);
	assert_int_equal(feature_call(f->dev, FEAT_PROBE | FEAT_GET | REPORT, NULL, 0, 0), 0);
}

static int nop_start(void *p, const struct dmalog_range *r, uint32_t n, uint64_t *ps)
{
	return 0;
}

static int nop_stop(void *p)
{
	return 0;
}

/* 12: an incomplete log_ops (or mig_ops) table fails registration. */
static void b12_incomplete_ops_rejected(void **state)
{
	struct dmalog_log_ops no_report = {.log_start = nop_start, .log_stop = nop_stop};
	struct dmalog_log_ops no_stop = {.log_start = nop_start,
					 .log_read_and_clear = spy_log_ops.log_read_and_clear};
	struct dmalog_mig_ops no_size = {.step = fake_mig_ops.step};
	struct dmalog_mig_ops no_precopy = {.step = fake_mig_ops.step,
					    .get_data_size = fake_mig_ops.get_data_size};
	struct dmalog_device_desc desc = {.log_ops = &no_report};
	struct dmalog_device *dev = NULL;

	assert_int_equal(dmalog_device_create(&desc, &dev), -EINVAL);
	desc.log_ops = &no_stop;
	assert_int_equal(dmalog_device_create(&desc, &dev), -EINVAL);
	desc.log_ops = NULL;
	desc.mig_ops = &no_size;
	desc.migration_flags = VFIO_MIGRATION_STOP_COPY;
	assert_int_equal(dmalog_device_create(&desc, &dev), -EINVAL);
	/* STOP_COPY is mandatory, unknown bits are refused, PRE_COPY needs precopy_info. */
	desc.mig_ops = &fake_mig_ops;
	desc.migration_flags = VFIO_MIGRATION_P2P;
	assert_int_equal(dmalog_device_create(&desc, &dev), -EINVAL);
	desc.migration_flags = VFIO_MIGRATION_STOP_COPY | (1 << 5);
	assert_int_equal(dmalog_device_create(&desc, &dev), -EINVAL);
	desc.mig_ops = &no_precopy;
	desc.migration_flags = VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_PRE_COPY;
	assert_int_equal(dmalog_device_create(&desc, &dev), -EINVAL);
	/* Flags without ops. */
	desc.mig_ops = NULL;
	desc.migration_flags = VFIO_MIGRATION_STOP_COPY;
	assert_int_equal(dmalog_device_create(&desc, &dev), -EINVAL);
	assert_null(dev);
}

/*
 * 13: unknown feature index with no driver feature op. The issue (and the newest kernel)
 * say -ENOTTY; the V2 code in the seeds said -EINVAL.
 */
static void b13_unknown_feature_enotty(void **state)
{
	struct fixture *f = *state;
	uint32_t unknown[] = {0, 3, 4, 5, 10, 11, 12, 200, 0xffff};

	for (unsigned int i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
		assert_int_equal(feature(f->dev, FEAT_GET | unknown[i], payload, 32), -ENOTTY);
		assert_int_equal(feature(f->dev, FEAT_PROBE | unknown[i], NULL, 0), -ENOTTY);
	}
}

/* Other ioctl requests on the device fd are not ours. */
static void unknown_request_enotty(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(dmalog_device_ioctl(f->dev, VFIO_DEVICE_GET_INFO, payload), -ENOTTY);
	assert_int_equal(dmalog_device_ioctl(f->dev, 0, payload), -ENOTTY);
}

/* Migration features on a device without mig_ops: -ENOTTY before anything else. */
static void migration_features_without_mig_ops(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(feature(f->dev, FEAT_GET | VFIO_DEVICE_FEATURE_MIGRATION, payload, 8),
			 -ENOTTY);
	assert_int_equal(
		feature(f->dev, FEAT_PROBE | VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE, NULL, 0),
		-ENOTTY);
	assert_int_equal(feature(f->dev, FEAT_GET | VFIO_DEVICE_FEATURE_MIG_DATA_SIZE, payload, 8),
			 -ENOTTY);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(b01_no_log_ops_enotty),
		cmocka_unit_test_setup_teardown(b02_b04_probe, setup, teardown),
		cmocka_unit_test_setup_teardown(b05_b06_wrong_or_missing_op, setup, teardown),
		cmocka_unit_test_setup_teardown(b07_get_and_set, setup, teardown),
		cmocka_unit_test_setup_teardown(b08_unknown_flag_bits, setup, teardown),
		cmocka_unit_test_setup_teardown(b09_argsz_below_header, setup, teardown),
		cmocka_unit_test_setup_teardown(b10_minimum_payload, setup, teardown),
		cmocka_unit_test_setup_teardown(b11_probe_ignores_argsz, setup, teardown),
		cmocka_unit_test(b12_incomplete_ops_rejected),
		cmocka_unit_test_setup_teardown(b13_unknown_feature_enotty, setup, teardown),
		cmocka_unit_test_setup_teardown(unknown_request_enotty, setup, teardown),
		cmocka_unit_test_setup_teardown(migration_features_without_mig_ops, setup,
						teardown),
	};

	return cmocka_run_group_tests_name("feature", tests, NULL, NULL);
}
