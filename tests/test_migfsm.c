// SPDX-License-Identifier: MIT
/*
 * The migration v2 next-state table: every (from, to) pair for each supported flag set,
 * walked through a device and compared with the paths written out below (kernel
 * vfio_mig_get_next_state, with the fix that ends at ERROR). Behaviours 107, 108.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"

enum { S = 1, R = 2, SC = 3, RS = 4, RP = 5, PC = 6, PCP = 7 };

/* Row/column order of the tables. */
static const uint32_t order[7] = {S, R, PC, PCP, SC, RS, RP};

/* clang-format off */
/* Hops after the start state; "" = already there; "EINVAL" = refused. */
static const char *const all_flags[7][7] = {
	/* to:  S            R            PC              PCP          SC          RS             RP */
	[0] = {"", "RP R", "RP R PC", "RP PCP", "SC", "RS", "RP"},			/* from S */
	[1] = {"RP S", "", "PC", "RP PCP", "RP S SC", "RP S RS", "RP"},		/* from R */
	[2] = {"R RP S", "R", "", "PCP", "PCP SC", "R RP S RS", "R RP"},		/* from PC */
	[3] = {"RP S", "RP R", "PC", "", "SC", "RP S RS", "RP"},			/* from PCP */
	[4] = {"S", "S RP R", "EINVAL", "EINVAL", "", "S RS", "S RP"},		/* from SC */
	[5] = {"S", "S RP R", "S RP R PC", "S RP PCP", "S SC", "", "S RP"},	/* from RS */
	[6] = {"S", "R", "R PC", "PCP", "S SC", "S RS", ""},			/* from RP */
};

static const char *const p2p_flags[7][7] = {
	[0] = {"", "RP R", "EINVAL", "EINVAL", "SC", "RS", "RP"},
	[1] = {"RP S", "", "EINVAL", "EINVAL", "RP S SC", "RP S RS", "RP"},
	[4] = {"S", "S RP R", "EINVAL", "EINVAL", "", "S RS", "S RP"},
	[5] = {"S", "S RP R", "EINVAL", "EINVAL", "S SC", "", "S RP"},
	[6] = {"S", "R", "EINVAL", "EINVAL", "S SC", "S RS", ""},
};

static const char *const precopy_flags[7][7] = {
	[0] = {"", "R", "R PC", "EINVAL", "SC", "RS", "EINVAL"},
	[1] = {"S", "", "PC", "EINVAL", "S SC", "S RS", "EINVAL"},
	[2] = {"R S", "R", "", "EINVAL", "SC", "R S RS", "EINVAL"},
	[4] = {"S", "S R", "EINVAL", "EINVAL", "", "S RS", "EINVAL"},
	[5] = {"S", "S R", "S R PC", "EINVAL", "S SC", "", "EINVAL"},
};

static const char *const stop_copy_flags[7][7] = {
	[0] = {"", "R", "EINVAL", "EINVAL", "SC", "RS", "EINVAL"},
	[1] = {"S", "", "EINVAL", "EINVAL", "S SC", "S RS", "EINVAL"},
	[4] = {"S", "S R", "EINVAL", "EINVAL", "", "S RS", "EINVAL"},
	[5] = {"S", "S R", "EINVAL", "EINVAL", "S SC", "", "EINVAL"},
};
/* clang-format on */

static const char *short_name(uint32_t s)
{
	static const char *const n[8] = {"E", "S", "R", "SC", "RS", "RP", "PC", "PCP"};

	return n[s];
}

static int mig_set(struct dmalog_device *dev, uint32_t state, int *fd)
{
	struct vfio_device_feature_mig_state m = {.device_state = state, .data_fd = 1234};
	int ret = feature(dev, FEAT_SET | VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE, &m, sizeof(m));

	*fd = m.data_fd;
	return ret;
}

static uint32_t mig_get(struct dmalog_device *dev)
{
	struct vfio_device_feature_mig_state m = {.data_fd = 1234};

	assert_int_equal(
		feature(dev, FEAT_GET | VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE, &m, sizeof(m)), 0);
	assert_int_equal(m.data_fd, -1);
	return m.device_state;
}

/* Bring a fresh device to @state, feeding RESUMING a valid stream. */
static void drive_to(struct dmalog_device *dev, struct fake_mig *m, uint32_t state)
{
	int fd;

	assert_int_equal(mig_set(dev, state, &fd), 0);
	if (fd >= 0) {
		if (state == RS)
			assert_int_equal(write(fd, FAKE_STATE, strlen(FAKE_STATE)),
					 (ssize_t)strlen(FAKE_STATE));
		close(fd);
	}
	assert_int_equal(mig_get(dev), state);
	m->narcs = 0;
}

static bool opens_session(uint32_t from, uint32_t to)
{
	return (from == S && (to == SC || to == RS)) || (from == R && to == PC) ||
	       (from == RP && to == PCP);
}

static void check_flags(uint64_t flags, const char *const table[7][7])
{
	for (int i = 0; i < 7; i++) {
		for (int j = 0; j < 7; j++) {
			struct fake_mig m = {.resume_read_fd = -1};
			struct dmalog_device_desc d = {
				.mig_ops = &fake_mig_ops, .migration_flags = flags, .priv = &m};
			const char *expect = table[i][j] ? table[i][j] : "EINVAL";
			struct dmalog_device *dev;
			char got[64] = "";
			uint32_t from = order[i], to = order[j], cur;
			int fd, ret;

			assert_int_equal(dmalog_device_create(&d, &dev), 0);
			if (!dmalog_mig_state_supported(flags, from)) {
				/* An unsupported start state cannot be reached. */
				assert_int_equal(mig_set(dev, from, &fd), -EINVAL);
				assert_int_equal(fd, -1);
				assert_string_equal(expect, "EINVAL");
				dmalog_device_destroy(dev);
				continue;
			}
			drive_to(dev, &m, from);
			ret = mig_set(dev, to, &fd);
			cur = from;
			for (int a = 0; a < m.narcs; a++) {
				assert_int_equal(m.arcs[a][0], cur);
				cur = m.arcs[a][1];
				if (a)
					strcat(got, " ");
				strcat(got, short_name(cur));
			}
			if (ret) {
				assert_int_equal(ret, -EINVAL);
				assert_int_equal(m.narcs, 0);
				assert_int_equal(mig_get(dev), from);
				strcpy(got, "EINVAL");
			} else {
				assert_int_equal(mig_get(dev), to);
				/* Only the last arc, and only a session-opening one, gives an fd.
				 */
				assert_int_equal(fd >= 0,
						 m.narcs &&
							 opens_session(m.arcs[m.narcs - 1][0], to));
				if (fd >= 0)
					close(fd);
			}
			if (strcmp(got, expect))
				print_error("flags %#llx: %s -> %s: got '%s', want '%s'\n",
					    (unsigned long long)flags, short_name(from),
					    short_name(to), got, expect);
			assert_string_equal(got, expect);
			if (m.resume_read_fd >= 0)
				close(m.resume_read_fd);
			dmalog_device_destroy(dev);
		}
	}
}

/* 108: the P2P path goes through RUNNING_P2P; the rest of the table too. */
static void b108_all_flags(void **state)
{
	check_flags(VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P | VFIO_MIGRATION_PRE_COPY,
		    all_flags);
}

static void b108_p2p(void **state)
{
	check_flags(VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P, p2p_flags);
}

static void precopy_without_p2p(void **state)
{
	check_flags(VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_PRE_COPY, precopy_flags);
}

/* 108 (non-P2P: RUNNING -> STOP -> STOP_COPY), 107 (RUNNING_P2P needs P2P). */
static void b107_b108_stop_copy_only(void **state)
{
	check_flags(VFIO_MIGRATION_STOP_COPY, stop_copy_flags);
}

/* The pure function: ERROR and unknown values are never valid; the blocked arcs end. */
static void next_state_edges(void **state)
{
	uint64_t all = DMALOG_MIGRATION_FLAGS_ALL;
	uint32_t next = 99;

	for (uint32_t s = 0; s < 8; s++) {
		assert_int_equal(dmalog_mig_next_state(all, s, VFIO_DEVICE_STATE_ERROR, &next),
				 -EINVAL);
		assert_int_equal(dmalog_mig_next_state(all, VFIO_DEVICE_STATE_ERROR, s, &next),
				 -EINVAL);
		assert_int_equal(dmalog_mig_next_state(all, s, 8, &next), -EINVAL);
		assert_int_equal(dmalog_mig_next_state(all, UINT32_MAX, s, &next), -EINVAL);
	}
	/* The three combinations on which the unfixed kernel loop never returned. */
	assert_int_equal(dmalog_mig_next_state(VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_PRE_COPY,
					       SC, PC, &next),
			 -EINVAL);
	assert_int_equal(dmalog_mig_next_state(all, SC, PC, &next), -EINVAL);
	assert_int_equal(dmalog_mig_next_state(all, SC, PCP, &next), -EINVAL);
	assert_int_equal(next, 99);
	assert_int_equal(dmalog_mig_next_state(all, R, R, &next), 0);
	assert_int_equal(next, R);
	assert_string_equal(dmalog_mig_state_name(PCP), "PRE_COPY_P2P");
	assert_string_equal(dmalog_mig_state_name(8), "INVALID");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(b108_all_flags),      cmocka_unit_test(b108_p2p),
		cmocka_unit_test(precopy_without_p2p), cmocka_unit_test(b107_b108_stop_copy_only),
		cmocka_unit_test(next_state_edges),
	};

	return cmocka_run_group_tests_name("migfsm", tests, NULL, NULL);
}
