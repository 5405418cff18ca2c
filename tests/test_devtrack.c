// SPDX-License-Identifier: MIT
/*
 * The mlx5-style device page tracker through the device frame: seed-digest behaviours
 * 29, 54, 55, 57-62, 65-76 (63 and 64, the PF detach events, are not modelled).
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"

typedef struct vfio_device_feature_dma_logging_range range_t;

struct fixture {
	struct dmalog_devtrack *t;
	struct dmalog_device *dev;
};

static void make(struct fixture *f, struct dmalog_devtrack_caps caps)
{
	struct dmalog_device_desc d = {.log_ops = dmalog_devtrack_log_ops()};

	assert_int_equal(dmalog_devtrack_create(&caps, &f->t), 0);
	d.priv = f->t;
	assert_int_equal(dmalog_device_create(&d, &f->dev), 0);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	make(f, DMALOG_DEVTRACK_CAPS_DEFAULT);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	dmalog_device_destroy(f->dev);
	dmalog_devtrack_destroy(f->t);
	free(f);
	return 0;
}

static void remake(struct fixture *f, struct dmalog_devtrack_caps caps)
{
	dmalog_device_destroy(f->dev);
	dmalog_devtrack_destroy(f->t);
	make(f, caps);
}

static void bad_caps(void **state)
{
	struct dmalog_devtrack_caps c = DMALOG_DEVTRACK_CAPS_DEFAULT;
	struct dmalog_devtrack *t;

	c.max_msg_size = 12;
	assert_int_equal(dmalog_devtrack_create(&c, &t), -EINVAL);
	c = DMALOG_DEVTRACK_CAPS_DEFAULT;
	c.queue_depth = 0;
	assert_int_equal(dmalog_devtrack_create(&c, &t), -EINVAL);
	c = DMALOG_DEVTRACK_CAPS_DEFAULT;
	c.log_min_page_size = 22;
	c.log_max_page_size = 21;
	assert_int_equal(dmalog_devtrack_create(&c, &t), -EINVAL);
	assert_int_equal(dmalog_devtrack_create(NULL, &t), -EINVAL);
}

/* 54, 55: the page size is clamped into the device's range and written back. */
static void b54_b55_page_size_clamp(void **state)
{
	struct fixture *f = *state;
	struct dmalog_devtrack_caps c = DMALOG_DEVTRACK_CAPS_DEFAULT;
	range_t r = {0, SZ_1G};
	uint64_t sel;

	c.log_max_page_size = 21;
	remake(f, c);
	assert_int_equal(log_start(f->dev, &r, 1, SZ_4K, &sel), 0);
	assert_int_equal(sel, SZ_4K);
	assert_int_equal(log_stop(f->dev), 0);
	assert_int_equal(log_start(f->dev, &r, 1, 1024, &sel), 0);
	assert_int_equal(sel, SZ_4K);
	assert_int_equal(log_stop(f->dev), 0);
	assert_int_equal(log_start(f->dev, &r, 1, SZ_1G, &sel), 0);
	assert_int_equal(sel, SZ_2M);
}

/* 29: a second START fails and the first session keeps working. */
static void b29_second_start(void **state)
{
	struct fixture *f = *state;
	range_t r = {0, SZ_1G}, other = {SZ_1G, SZ_1G};
	uint64_t bm[1] = {0};

	assert_int_equal(log_start(f->dev, &r, 1, SZ_4K, NULL), 0);
	assert_int_equal(log_start(f->dev, &other, 1, SZ_4K, NULL), -EINVAL);
	dmalog_devtrack_log_write(f->t, 5 * SZ_4K, 1);
	assert_int_equal(log_report(f->dev, 0, 64 * SZ_4K, SZ_4K, bm), 0);
	assert_int_equal(bm[0], 1 << 5);
}

/* 57, 58, 59, 60, 62: combining to the device's range count; the gap becomes tracked. */
static void b57_b62_combining(void **state)
{
	struct fixture *f = *state;
	struct dmalog_devtrack_caps c = DMALOG_DEVTRACK_CAPS_DEFAULT;
	range_t three[] = {{0, SZ_4K}, {1 << 20, SZ_4K}, {8 << 20, SZ_4K}};
	range_t four[] = {{0, SZ_4K}, {10 << 20, SZ_4K}, {11 << 20, SZ_4K}, {30 << 20, SZ_4K}};
	struct dmalog_range got[4];
	struct dmalog_devtrack_stats st;
	uint64_t bm[4] = {0};

	assert_int_equal(log_start(f->dev, three, 3, SZ_4K, NULL), 0); /* 57: max 4 */
	assert_int_equal(dmalog_devtrack_ranges(f->t, got, 4), 3);
	assert_int_equal(got[1].iova, 1 << 20);
	assert_int_equal(got[1].length, SZ_4K); /* 62: last - start + 1 */
	dmalog_devtrack_get_stats(f->t, &st);
	assert_int_equal(st.log_addr_space, 14); /* 12K rounds up to 16K */
	assert_int_equal(log_stop(f->dev), 0);

	c.max_ranges = 1; /* 58 */
	remake(f, c);
	assert_int_equal(log_start(f->dev, three, 3, SZ_4K, NULL), 0);
	assert_int_equal(dmalog_devtrack_ranges(f->t, got, 4), 1);
	assert_int_equal(got[0].iova, 0);
	assert_int_equal(got[0].length, (8 << 20) + SZ_4K);
	/* 60: a write in a former gap is tracked now. */
	dmalog_devtrack_log_write(f->t, 512 << 10, 1);
	assert_int_equal(log_report(f->dev, 0, 256 * SZ_4K, 4 * SZ_4K, bm), 0);
	assert_int_equal(bm[0], 1ULL << 32);
	assert_int_equal(log_stop(f->dev), 0);

	c.max_ranges = 2; /* 59 */
	remake(f, c);
	assert_int_equal(log_start(f->dev, four, 4, SZ_4K, NULL), 0);
	assert_int_equal(dmalog_devtrack_ranges(f->t, got, 4), 2);
	assert_int_equal(got[0].iova, 0);
	assert_int_equal(got[0].length, (11 << 20) + SZ_4K);
	assert_int_equal(got[1].iova, 30 << 20);
}

/* 61: a covered address space outside the device's limits is -EOPNOTSUPP. */
static void b61_address_space_limits(void **state)
{
	struct fixture *f = *state;
	struct dmalog_devtrack_caps c = DMALOG_DEVTRACK_CAPS_DEFAULT;
	range_t small = {0, 3 * SZ_4K}, big = {0, 2 * SZ_1G};
	uint64_t bm[1];

	c.log_min_addr_space = 20;
	c.log_max_addr_space = 30;
	remake(f, c);
	assert_int_equal(log_start(f->dev, &small, 1, SZ_4K, NULL), -EOPNOTSUPP);
	assert_int_equal(log_start(f->dev, &big, 1, SZ_4K, NULL), -EOPNOTSUPP);
	assert_int_equal(log_report(f->dev, 0, SZ_4K, SZ_4K, bm), -EINVAL);
	big.length = SZ_1G;
	assert_int_equal(log_start(f->dev, &big, 1, SZ_4K, NULL), 0);
	/* A device that cannot track at all. */
	c.max_ranges = 0;
	remake(f, c);
	assert_int_equal(log_start(f->dev, &big, 1, SZ_4K, NULL), -EOPNOTSUPP);
}

static uint64_t popcount(const uint64_t *w, size_t n)
{
	uint64_t c = 0;

	for (size_t i = 0; i < n; i++)
		c += __builtin_popcountll(w[i]);
	return c;
}

/* 65, 66, 67: one message for one page; several for 1500; a ring that wraps many times. */
static void b65_b67_messages(void **state)
{
	struct fixture *f = *state;
	struct dmalog_devtrack_caps c = DMALOG_DEVTRACK_CAPS_DEFAULT;
	range_t r = {0, SZ_1G};
	struct dmalog_devtrack_stats st;
	uint64_t *bm = calloc(SZ_1G / SZ_4K / 64, 8);

	assert_int_equal(log_start(f->dev, &r, 1, SZ_4K, NULL), 0);
	dmalog_devtrack_log_write(f->t, 77 * SZ_4K, 1);
	assert_int_equal(log_report(f->dev, 0, SZ_1G, SZ_4K, bm), 0);
	dmalog_devtrack_get_stats(f->t, &st);
	assert_int_equal(st.messages, 1);
	assert_int_equal(st.entries, 1);
	assert_int_equal(st.state, DMALOG_DEVTRACK_TRACKING);
	assert_true(test_bit(bm, 77));

	memset(bm, 0, SZ_1G / SZ_4K / 8);
	for (uint64_t p = 0; p < 1500; p++)
		dmalog_devtrack_log_write(f->t, p * 3 * SZ_4K, 1);
	assert_int_equal(log_report(f->dev, 0, SZ_1G, SZ_4K, bm), 0);
	dmalog_devtrack_get_stats(f->t, &st);
	assert_true(st.messages - 1 >= 3);
	assert_int_equal(st.entries, 1501);
	assert_int_equal(popcount(bm, SZ_1G / SZ_4K / 64), 1500);

	/* 67: 4 buffers of 8 entries, 5000 pages: the ring wraps over 150 times. */
	c.queue_depth = 4;
	c.max_msg_size = 64;
	remake(f, c);
	assert_int_equal(log_start(f->dev, &r, 1, SZ_4K, NULL), 0);
	memset(bm, 0, SZ_1G / SZ_4K / 8);
	dmalog_devtrack_log_write(f->t, 0, 5000 * SZ_4K);
	assert_int_equal(log_report(f->dev, 0, SZ_1G, SZ_4K, bm), 0);
	assert_int_equal(popcount(bm, SZ_1G / SZ_4K / 64), 5000);
	dmalog_devtrack_get_stats(f->t, &st);
	assert_true(st.messages >= 625);
	free(bm);
}

/* 68, 69, 70 and overflow: each error is -EIO, sticky until STOP and START. */
static void b68_b70_errors_are_sticky(void **state)
{
	struct fixture *f = *state;
	const enum dmalog_devtrack_fault faults[] = {
		DMALOG_DEVTRACK_FAULT_FW_ERROR, DMALOG_DEVTRACK_FAULT_BAD_OPCODE,
		DMALOG_DEVTRACK_FAULT_ZERO_LENGTH, DMALOG_DEVTRACK_FAULT_OVERFLOW,
		DMALOG_DEVTRACK_FAULT_ERROR_EVENT};
	range_t r = {0, SZ_1G};
	uint64_t bm[8];

	for (unsigned int i = 0; i < sizeof(faults) / sizeof(faults[0]); i++) {
		struct dmalog_devtrack_stats st;

		assert_int_equal(log_start(f->dev, &r, 1, SZ_4K, NULL), 0);
		dmalog_devtrack_log_write(f->t, 3 * SZ_4K, 1);
		assert_int_equal(dmalog_devtrack_inject(f->t, faults[i]), 0);
		assert_int_equal(log_report(f->dev, 0, 512 * SZ_4K, SZ_4K, bm), -EIO);
		assert_int_equal(log_report(f->dev, 0, 512 * SZ_4K, SZ_4K, bm), -EIO);
		dmalog_devtrack_get_stats(f->t, &st);
		assert_int_equal(st.state, DMALOG_DEVTRACK_ERROR);
		assert_int_equal(log_stop(f->dev), 0);
		assert_int_equal(log_start(f->dev, &r, 1, SZ_4K, NULL), 0);
		dmalog_devtrack_log_write(f->t, 3 * SZ_4K, 1);
		memset(bm, 0, sizeof(bm));
		assert_int_equal(log_report(f->dev, 0, 512 * SZ_4K, SZ_4K, bm), 0);
		assert_int_equal(bm[0], 8);
		assert_int_equal(log_stop(f->dev), 0);
	}
	assert_int_equal(dmalog_devtrack_inject(f->t, 99), -EINVAL);
}

struct blocked {
	struct dmalog_device *dev;
	int ret;
	int done;
};

static void *blocked_report(void *arg)
{
	struct blocked *b = arg;
	uint64_t bm[8];

	b->ret = log_report(b->dev, 0, 512 * SZ_4K, SZ_4K, bm);
	__atomic_store_n(&b->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/*
 * The reporter is blocked once its REPORTING command has reached the stalled device: the
 * device's own count of commands says so (no sleep stands in for it).
 */
static void wait_for_command(struct fixture *f, uint64_t before)
{
	struct dmalog_devtrack_stats st;

	for (int i = 0; i < 10000; i++) {
		dmalog_devtrack_get_stats(f->t, &st);
		if (st.reports > before)
			return;
		usleep(1000);
	}
	fail_msg("the REPORT never reached the device");
}

static pthread_t start_blocked_report(struct fixture *f, struct blocked *b)
{
	struct dmalog_devtrack_stats st;
	range_t r = {0, SZ_1G};
	pthread_t th;

	*b = (struct blocked){f->dev, 1, 0};
	assert_int_equal(log_start(f->dev, &r, 1, SZ_4K, NULL), 0);
	dmalog_devtrack_log_write(f->t, 0, 1);
	assert_int_equal(dmalog_devtrack_inject(f->t, DMALOG_DEVTRACK_FAULT_STALL), 0);
	dmalog_devtrack_get_stats(f->t, &st);
	assert_int_equal(pthread_create(&th, NULL, blocked_report, b), 0);
	wait_for_command(f, st.reports);
	assert_int_equal(__atomic_load_n(&b->done, __ATOMIC_ACQUIRE), 0); /* still blocked */
	return th;
}

/* 71: an asynchronous error event wakes a REPORT blocked on the device with -EIO. */
static void b71_error_event_wakes_reporter(void **state)
{
	struct fixture *f = *state;
	struct blocked b;
	pthread_t th = start_blocked_report(f, &b);

	assert_int_equal(dmalog_devtrack_inject(f->t, DMALOG_DEVTRACK_FAULT_ERROR_EVENT), 0);
	pthread_join(th, NULL);
	assert_int_equal(b.ret, -EIO);
	assert_int_equal(log_stop(f->dev), 0);
}

/*
 * 73, 74: closing the device while a REPORT is blocked wakes it (-EIO) and completes, tracking
 * released; a device opened again over the tracker has logging off (REPORT -EINVAL) and can
 * START.
 */
static void b73_b74_close_wakes_reporter(void **state)
{
	struct fixture *f = *state;
	struct dmalog_device_desc d = {.log_ops = dmalog_devtrack_log_ops(), .priv = f->t};
	struct dmalog_devtrack_stats st;
	range_t r = {0, SZ_1G};
	uint64_t bm[8];
	struct blocked b;
	pthread_t th = start_blocked_report(f, &b);

	/*
	 * Returns only once the reporter has left the device (ASan would see it touch freed
	 * memory otherwise); the reporter's thread may still be on its way out of the helpers,
	 * so it is joined before its result is looked at.
	 */
	dmalog_device_destroy(f->dev);
	f->dev = NULL;
	pthread_join(th, NULL);
	assert_int_equal(__atomic_load_n(&b.done, __ATOMIC_ACQUIRE), 1);
	assert_int_equal(b.ret, -EIO);
	dmalog_devtrack_get_stats(f->t, &st);
	assert_int_equal(st.page_size, 0); /* the tracker is not tracking */
	assert_int_equal(dmalog_device_create(&d, &f->dev), 0);
	assert_int_equal(log_report(f->dev, 0, SZ_4K, SZ_4K, bm), -EINVAL);
	assert_int_equal(log_start(f->dev, &r, 1, SZ_4K, NULL), 0);
}

/* A reset wakes a blocked REPORT the same way, and leaves logging off. */
static void reset_wakes_reporter(void **state)
{
	struct fixture *f = *state;
	range_t r = {0, SZ_1G};
	uint64_t bm[8];
	struct blocked b;
	pthread_t th = start_blocked_report(f, &b);

	assert_int_equal(dmalog_device_ioctl(f->dev, VFIO_DEVICE_RESET, NULL), 0);
	pthread_join(th, NULL);
	assert_int_equal(b.ret, -EIO);
	assert_int_equal(log_report(f->dev, 0, SZ_4K, SZ_4K, bm), -EINVAL);
	assert_int_equal(log_start(f->dev, &r, 1, SZ_4K, NULL), 0);
}

struct stop_call {
	struct dmalog_device *dev;
	int *ret;
};

static void *stop_thread(void *arg)
{
	struct stop_call *c = arg;

	*c->ret = log_stop(c->dev);
	return NULL;
}

/*
 * STOP wakes a REPORT blocked on a stalled tracker (-EIO), as close and reset do, instead of
 * waiting as long as the firmware does; the next START tracks afresh.
 */
static void stop_wakes_reporter(void **state)
{
	struct fixture *f = *state;
	range_t r = {0, SZ_1G};
	uint64_t bm[8] = {0};
	struct blocked b;
	pthread_t th = start_blocked_report(f, &b), stopper;
	struct timespec deadline;
	/* Static: a STOP that never returns must not write into a frame that is gone. */
	static int stop_ret;
	static struct stop_call call;

	call = (struct stop_call){f->dev, &stop_ret};
	stop_ret = -1;
	/* A STOP that waits for the stalled firmware would never return: fail, do not hang. */
	assert_int_equal(pthread_create(&stopper, NULL, stop_thread, &call), 0);
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += 30;
	assert_int_equal(pthread_timedjoin_np(stopper, NULL, &deadline), 0);
	assert_int_equal(stop_ret, 0);
	pthread_join(th, NULL);
	assert_int_equal(b.ret, -EIO);
	assert_int_equal(log_report(f->dev, 0, SZ_4K, SZ_4K, bm), -EINVAL);
	assert_int_equal(log_start(f->dev, &r, 1, SZ_4K, NULL), 0);
	dmalog_devtrack_log_write(f->t, 2 * SZ_4K, 1);
	assert_int_equal(log_report(f->dev, 0, 64 * SZ_4K, SZ_4K, bm), 0);
	assert_int_equal(bm[0], 1ULL << 2);
}

/* 75: addresses above 4 GiB travel as big-endian high and low words intact. */
static void b75_high_addresses(void **state)
{
	struct fixture *f = *state;
	range_t r = {0x7f00000000ULL, SZ_1G};
	uint64_t bm[4] = {0};

	assert_int_equal(log_start(f->dev, &r, 1, SZ_4K, NULL), 0);
	dmalog_devtrack_log_write(f->t, 0x7f00000000ULL + 0x21000, 8);
	dmalog_devtrack_log_write(f->t, 0x7f00000000ULL + 0xff000, 8);
	assert_int_equal(log_report(f->dev, 0x7f00000000ULL, 256 * SZ_4K, SZ_4K, bm), 0);
	assert_int_equal(bm[0], 1ULL << 0x21);
	assert_int_equal(bm[3], 1ULL << 63);
}

/* 76: one REPORTING command per window the core hands down, with exactly that window. */
static void b76_one_command_per_window(void **state)
{
	struct fixture *f = *state;
	range_t r = {0, SZ_1G};
	struct dmalog_devtrack_stats st;
	struct dmalog_range cmds[8];
	uint64_t bm[4] = {0};

	assert_int_equal(log_start(f->dev, &r, 1, SZ_4K, NULL), 0);
	dmalog_device_set_report_window(f->dev, 64);
	dmalog_devtrack_log_write(f->t, 0, 3 * 64 * SZ_4K);
	assert_int_equal(log_report(f->dev, 0, 3 * 64 * SZ_4K, SZ_4K, bm), 0);
	dmalog_devtrack_get_stats(f->t, &st);
	assert_int_equal(st.reports, 3);
	assert_int_equal(dmalog_devtrack_commands(f->t, cmds, 8), 3);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(cmds[i].iova, (uint64_t)i * 64 * SZ_4K);
		assert_int_equal(cmds[i].length, 64 * SZ_4K);
		assert_int_equal(bm[i], ~0ULL);
	}
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(bad_caps),
		T(b54_b55_page_size_clamp),
		T(b29_second_start),
		T(b57_b62_combining),
		T(b61_address_space_limits),
		T(b65_b67_messages),
		T(b68_b70_errors_are_sticky),
		T(b71_error_event_wakes_reporter),
		T(b73_b74_close_wakes_reporter),
		T(stop_wakes_reporter),
		T(reset_wakes_reporter),
		T(b75_high_addresses),
		T(b76_one_command_per_window),
	};

	return cmocka_run_group_tests_name("devtrack", tests, NULL, NULL);
}
