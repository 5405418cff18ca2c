// SPDX-License-Identifier: MIT
/*
 * The emulated IOMMU's page-table pool: every table zeroed, 4 KiB-aligned and its own across
 * the growing chunks (64 KiB up to 2 MiB) and across destroy and reuse; the 2 MiB chunks
 * aligned so that a huge page can back each. table_pool.c is compiled into this test: its
 * functions are not exported.
 */
#include <stdlib.h>

#include "table_pool.h"
#include "helpers.h"

/* Past the small chunks (496 tables) and into several 2 MiB ones. */
#define NTABLES 3000

static void fill_and_check(struct table_pool *pool)
{
	uint64_t **tables = calloc(NTABLES, sizeof(*tables));

	assert_non_null(tables);
	for (size_t i = 0; i < NTABLES; i++) {
		uint64_t *t = table_pool_alloc(pool);

		assert_non_null(t);
		assert_int_equal((uintptr_t)t % 4096, 0);
		for (unsigned int k = 0; k < 512; k++)
			assert_int_equal(t[k], 0);
		/* Tag the first and last PTE: an overlap shows as a wrong tag. */
		t[0] = i + 1;
		t[511] = ~(uint64_t)i;
		tables[i] = t;
	}
	assert_int_equal(pool->ntables, NTABLES);
	for (size_t i = 0; i < NTABLES; i++) {
		assert_int_equal(tables[i][0], i + 1);
		assert_int_equal(tables[i][511], ~(uint64_t)i);
	}
	/* Chunks 5 and on are 2 MiB: aligned to it, so one huge page can back each. */
	assert_true(pool->nchunks > 6);
	for (size_t c = 5; c < pool->nchunks; c++)
		assert_int_equal((uintptr_t)pool->chunks[c] % (2u << 20), 0);
	free(tables);
}

static void tables_distinct_zeroed_aligned(void **state)
{
	struct table_pool pool = {0};

	(void)state;
	fill_and_check(&pool);
	table_pool_destroy(&pool);
	assert_int_equal(pool.nchunks, 0);
	assert_int_equal(pool.ntables, 0);
	/* Reused after destroy: fresh, zeroed tables again. */
	fill_and_check(&pool);
	table_pool_destroy(&pool);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(tables_distinct_zeroed_aligned),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
