// SPDX-License-Identifier: MIT
/*
 * Page-table pages carved from chunks that grow from 64 KiB to 2 MiB: a small address space
 * (most tests, a VM with few mappings) keeps a small footprint, a large one gets 2 MiB chunks
 * aligned to 2 MiB and advised to be huge pages.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "table_pool.h"

#define TABLE_BYTES 4096
#define FIRST_CHUNK (64UL << 10)
#define HUGE_CHUNK  (2UL << 20)

/* Chunk @i is FIRST_CHUNK << i bytes, up to HUGE_CHUNK: destroy recomputes sizes from this. */
static size_t chunk_bytes(size_t i)
{
	return i >= 5 ? HUGE_CHUNK : FIRST_CHUNK << i;
}

/* @bytes of zeroed memory aligned to @bytes (a power of two), or NULL. */
static void *map_aligned(size_t bytes)
{
	size_t span = 2 * bytes;
	char *p = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uintptr_t start, end;

	if (p == MAP_FAILED)
		return NULL;
	/* Keep the aligned middle of twice the size; give back what is before and after it. */
	start = ((uintptr_t)p + bytes - 1) & ~(uintptr_t)(bytes - 1);
	end = start + bytes;
	if (start > (uintptr_t)p)
		munmap(p, start - (uintptr_t)p);
	if ((uintptr_t)p + span > end)
		munmap((void *)end, (uintptr_t)p + span - end);
	return (void *)start;
}

static bool add_chunk(struct table_pool *pool)
{
	size_t bytes = chunk_bytes(pool->nchunks);
	void *chunk;

	if (pool->nchunks == pool->cap_chunks) {
		size_t cap = pool->cap_chunks ? 2 * pool->cap_chunks : 16;
		void **n = realloc(pool->chunks, cap * sizeof(*n));

		if (!n)
			return false;
		pool->chunks = n;
		pool->cap_chunks = cap;
	}
	chunk = map_aligned(bytes);
	if (!chunk)
		return false;
	/* Advice only: without huge pages the tables still work, one TLB entry each. */
	if (bytes == HUGE_CHUNK)
		madvise(chunk, bytes, MADV_HUGEPAGE);
	pool->chunks[pool->nchunks++] = chunk;
	pool->used = 0;
	return true;
}

uint64_t *table_pool_alloc(struct table_pool *pool)
{
	char *table;

	if ((!pool->nchunks || pool->used == chunk_bytes(pool->nchunks - 1)) && !add_chunk(pool))
		return NULL;
	table = (char *)pool->chunks[pool->nchunks - 1] + pool->used;
	pool->used += TABLE_BYTES;
	pool->ntables++;
	return (uint64_t *)table;
}

void table_pool_destroy(struct table_pool *pool)
{
	for (size_t i = 0; i < pool->nchunks; i++)
		munmap(pool->chunks[i], chunk_bytes(i));
	free(pool->chunks);
	*pool = (struct table_pool){0};
}
