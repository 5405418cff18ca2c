// SPDX-License-Identifier: MIT
/*
 * CRC-32C (the payload checksum a frame header carries, the copy-and-checksum the source sends
 * pages with, and the one the destination lands them in guest memory with) against a
 * bit-at-a-time reference: every length around the block boundaries of each way of computing
 * it (three 1 KiB streams for the instruction, 64 and 256 bytes for folding), odd alignments,
 * CRCs continued across splits, copies. The suite runs again with DMALOG_CRC32C=sse4.2 and
 * =soft, so folding (where the CPU has it), the instruction and the tables are each checked.
 * crc32c.c is compiled into this test: its functions are not exported.
 */
#include <string.h>

#include "crc32c.h"
#include "helpers.h"

/* The library's CRC-32C of @len bytes, as the frame header's payload checksum. */
static uint32_t lib_crc(const void *p, size_t len)
{
	uint8_t hdr[DMALOG_FRAME_HDR_BYTES];

	dmalog_frame_header(hdr, DMALOG_FRAME_PAGES, 0, len ? p : NULL, (uint32_t)len);
	return (uint32_t)hdr[16] | (uint32_t)hdr[17] << 8 | (uint32_t)hdr[18] << 16 |
	       (uint32_t)hdr[19] << 24;
}

static uint32_t crc32c_ref(uint32_t crc, const uint8_t *p, size_t n)
{
	crc = ~crc;
	while (n--) {
		crc ^= *p++;
		for (int k = 0; k < 8; k++)
			crc = crc & 1 ? 0x82f63b78u ^ (crc >> 1) : crc >> 1;
	}
	return ~crc;
}

static void fill_random(uint8_t *buf, size_t len, uint64_t seed)
{
	for (size_t i = 0; i < len; i++) {
		seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
		buf[i] = seed >> 56;
	}
}

/* The length to try after @len: each one near 0 and near a multiple of 64, steps between. */
static size_t next_len(size_t len)
{
	return len < 300 || len % 64 < 8 || len % 64 > 56 ? len + 1 : len + 29;
}

static void lengths_and_alignments(void **state)
{
	static uint8_t buf[4 * 3072 + 64];

	fill_random(buf, sizeof(buf), 1);
	/* The check value of the standard: "123456789" -> 0xe3069283. */
	assert_int_equal(lib_crc("123456789", 9), 0xe3069283u);
	for (size_t len = 0; len <= 4 * 3072; len += len < 64 ? 1 : len % 3072 < 16 ? 1 : 97) {
		for (size_t align = 0; align < 8; align += 3) {
			const uint8_t *p = buf + align;

			assert_int_equal(lib_crc(p, len), len ? crc32c_ref(0, p, len) : 0);
		}
	}
}

/* A CRC continued from any value over any split equals the CRC of the whole. */
static void continued_across_splits(void **state)
{
	static uint8_t buf[5000];

	fill_random(buf, sizeof(buf), 2);
	for (size_t len = 0; len <= sizeof(buf); len += len < 1100 ? 37 : 613) {
		uint32_t whole = crc32c_ref(0, buf, len);

		for (size_t cut = 0; cut <= len; cut += cut < 300 ? 13 : 457) {
			uint32_t first = dmalog_crc32c(0, buf, cut);

			assert_int_equal(first, crc32c_ref(0, buf, cut));
			assert_int_equal(dmalog_crc32c(first, buf + cut, len - cut), whole);
		}
	}
}

/* The copy stores exactly what it checksums, at any destination alignment. */
static void copy_and_checksum(void **state)
{
	static uint64_t src[2 * 4096 / 8 + 64];
	static uint8_t dst[sizeof(src) + 64];
	uint8_t *from = (uint8_t *)src;

	fill_random(from, sizeof(src), 3);
	for (size_t len = 0; len <= sizeof(src); len = next_len(len)) {
		size_t words = len / 8 * 8;

		for (size_t align = 0; align < 64; align += 21) {
			uint32_t seed_crc = (uint32_t)(len * 2654435761u);

			memset(dst, 0xee, sizeof(dst));
			assert_int_equal(dmalog_crc32c_copy(seed_crc, dst + align, src, words),
					 crc32c_ref(seed_crc, from, words));
			assert_memory_equal(dst + align, from, words);
			/* Not a byte past the end. */
			if (align + words < sizeof(dst))
				assert_int_equal(dst[align + words], 0xee);
		}
	}
}

/*
 * The copy to cold memory (past the caches where the CPU can) stores exactly what it
 * checksums: any length, not only whole words, from any source alignment to any destination
 * alignment, continued from any CRC, and not a byte outside its destination.
 */
static void copy_cold_and_checksum(void **state)
{
	static uint8_t src[2 * 4096 + 64 + 7];
	static uint8_t dst[sizeof(src) + 128];

	fill_random(src, sizeof(src), 5);
	for (size_t len = 0; len + 64 <= sizeof(src); len = next_len(len)) {
		for (size_t align = 0; align < 64; align += 13) {
			for (size_t from = 0; from < 64; from += 31) {
				uint32_t seed_crc = (uint32_t)(len * 40503u + align);

				memset(dst, 0xee, sizeof(dst));
				assert_int_equal(dmalog_crc32c_copy_cold(seed_crc, dst + align,
									 src + from, len),
						 crc32c_ref(seed_crc, src + from, len));
				assert_memory_equal(dst + align, src + from, len);
				for (size_t i = 0; i < align; i++)
					assert_int_equal(dst[i], 0xee);
				for (size_t i = align + len; i < sizeof(dst); i++)
					assert_int_equal(dst[i], 0xee);
			}
		}
	}
}

/* A megabyte and a bit: many folding blocks, then each tail. */
static void long_buffers(void **state)
{
	size_t big = (1u << 20) + 200;
	uint8_t *buf = malloc(big), *copy = malloc(big);

	assert_non_null(buf);
	assert_non_null(copy);
	fill_random(buf, big, 4);
	for (size_t len = (1u << 20) - 64; len <= big; len += 8) {
		uint32_t want = crc32c_ref(0x12345678u, buf, len);

		assert_int_equal(dmalog_crc32c(0x12345678u, buf, len), want);
		assert_int_equal(dmalog_crc32c_copy(0x12345678u, copy, buf, len), want);
		assert_memory_equal(copy, buf, len);
		/* An odd length from an odd place too, as a receive hands them over. */
		memset(copy, 0, big);
		assert_int_equal(dmalog_crc32c_copy_cold(want, copy + 3, buf + 5, len - 5),
				 crc32c_ref(want, buf + 5, len - 5));
		assert_memory_equal(copy + 3, buf + 5, len - 5);
	}
	free(buf);
	free(copy);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(lengths_and_alignments), cmocka_unit_test(continued_across_splits),
		cmocka_unit_test(copy_and_checksum),	  cmocka_unit_test(copy_cold_and_checksum),
		cmocka_unit_test(long_buffers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
