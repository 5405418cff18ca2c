// SPDX-License-Identifier: MIT
/* Range sets: insertion, combining by smallest gap (behaviours 57-59), span helpers. */
#include <errno.h>

#include "helpers.h"

static void insert_sorted_disjoint(void **state)
{
	struct dmalog_range set[8];
	uint32_t n = 0;
	struct dmalog_range in[] = {{100, 10}, {0, 10}, {50, 10}, {10, 40}, {60, 40}};

	for (unsigned int i = 0; i < 5; i++)
		assert_int_equal(dmalog_ranges_insert(set, &n, &in[i]), 0);
	assert_int_equal(n, 5);
	for (uint32_t i = 1; i < n; i++)
		assert_true(set[i - 1].iova < set[i].iova);
	/* Touching either neighbour by one byte is an overlap. */
	struct dmalog_range a = {9, 1}, b = {109, 5}, c = {0, 1000};
	assert_int_equal(dmalog_ranges_insert(set, &n, &a), -EINVAL);
	assert_int_equal(dmalog_ranges_insert(set, &n, &b), -EINVAL);
	assert_int_equal(dmalog_ranges_insert(set, &n, &c), -EINVAL);
	assert_int_equal(n, 5);
}

/* 57: under the limit nothing changes. */
static void b57_under_limit_unchanged(void **state)
{
	struct dmalog_range set[] = {{0, SZ_4K}, {SZ_2M, SZ_4K}, {SZ_1G, SZ_4K}};
	uint32_t n = 3;

	assert_int_equal(dmalog_ranges_combine(set, &n, 4), 0);
	assert_int_equal(n, 3);
	assert_int_equal(set[1].iova, SZ_2M);
	assert_int_equal(set[1].length, SZ_4K);
}

/* 58: max 1 spans everything. */
static void b58_combine_to_one(void **state)
{
	struct dmalog_range set[] = {{0, SZ_4K}, {1 << 20, SZ_4K}, {8 << 20, SZ_4K}};
	uint32_t n = 3;

	assert_int_equal(dmalog_ranges_combine(set, &n, 1), 0);
	assert_int_equal(n, 1);
	assert_int_equal(set[0].iova, 0);
	assert_int_equal(set[0].length, (8 << 20) + SZ_4K);
}

/* 59: smallest gap first, lowest pair on ties. */
static void b59_smallest_gap_first(void **state)
{
	struct dmalog_range set[] = {
		{0, SZ_4K}, {10 << 20, SZ_4K}, {11 << 20, SZ_4K}, {30 << 20, SZ_4K}};
	uint32_t n = 4;

	assert_int_equal(dmalog_ranges_combine(set, &n, 3), 0);
	assert_int_equal(n, 3);
	assert_int_equal(set[1].iova, 10 << 20);
	assert_int_equal(set[1].length, (1 << 20) + SZ_4K);
	/* Gaps now: 0->10M (10M - 4K) and 11M+4K -> 30M (19M - 4K): the first merges. */
	assert_int_equal(dmalog_ranges_combine(set, &n, 2), 0);
	assert_int_equal(n, 2);
	assert_int_equal(set[0].iova, 0);
	assert_int_equal(set[0].length, (11 << 20) + SZ_4K);
	assert_int_equal(set[1].iova, 30 << 20);

	struct dmalog_range tie[] = {{0, 10}, {20, 10}, {40, 10}, {60, 10}};
	n = 4;
	assert_int_equal(dmalog_ranges_combine(tie, &n, 3), 0);
	assert_int_equal(tie[0].length, 30);
	assert_int_equal(tie[1].iova, 40);
	assert_int_equal(tie[2].iova, 60);
}

static void combine_zero_max_rejected(void **state)
{
	struct dmalog_range set[] = {{0, 10}};
	uint32_t n = 1;

	assert_int_equal(dmalog_ranges_combine(set, &n, 0), -EINVAL);
	n = 0;
	assert_int_equal(dmalog_ranges_combine(set, &n, 0), 0);
}

/* 62: the address space a tracker needs is ilog2(roundup_pow_of_two(total)). */
static void b62_total_and_address_space(void **state)
{
	struct dmalog_range set[] = {{0, SZ_4K}, {SZ_2M, 2 * SZ_4K}};
	uint64_t first, last;

	assert_int_equal(dmalog_ranges_total_length(set, 2), 3 * SZ_4K);
	assert_int_equal(dmalog_log2_roundup(3 * SZ_4K), 14);
	assert_int_equal(dmalog_log2_roundup(SZ_4K), 12);
	assert_int_equal(dmalog_log2_roundup(SZ_4K + 1), 13);
	assert_int_equal(dmalog_log2_roundup(1), 0);
	assert_int_equal(dmalog_log2_roundup(UINT64_MAX), 64);
	dmalog_ranges_span(set, 2, &first, &last);
	assert_int_equal(first, 0);
	assert_int_equal(last, SZ_2M + 2 * SZ_4K - 1);

	struct dmalog_range huge[] = {{0, UINT64_MAX / 2 + 1},
				      {UINT64_MAX / 2 + 1, UINT64_MAX / 2}};
	assert_int_equal(dmalog_ranges_total_length(huge, 2), UINT64_MAX);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(insert_sorted_disjoint),
		cmocka_unit_test(b57_under_limit_unchanged),
		cmocka_unit_test(b58_combine_to_one),
		cmocka_unit_test(b59_smallest_gap_first),
		cmocka_unit_test(combine_zero_max_rejected),
		cmocka_unit_test(b62_total_and_address_space),
	};

	return cmocka_run_group_tests_name("ranges", tests, NULL, NULL);
}
