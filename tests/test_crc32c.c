// SPDX-License-Identifier: MIT
/*
 * CRC-32C (the payload checksum a frame header carries) against a bit-at-a-time reference:
 * every length around the three-stream block boundaries and odd alignments. The suite runs
 * again with DMALOG_CRC32C=soft, so both the instruction and the tables are checked.
 */
#include <string.h>

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

static void lengths_and_alignments(void **state)
{
	static uint8_t buf[4 * 3072 + 64];
	uint64_t seed = 1;

	for (size_t i = 0; i < sizeof(buf); i++) {
		seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
		buf[i] = seed >> 56;
	}
	/* The check value of the standard: "123456789" -> 0xe3069283. */
	assert_int_equal(lib_crc("123456789", 9), 0xe3069283u);
	for (size_t len = 0; len <= 4 * 3072; len += len < 64 ? 1 : len % 3072 < 16 ? 1 : 97) {
		for (size_t align = 0; align < 8; align += 3) {
			const uint8_t *p = buf + align;

			assert_int_equal(lib_crc(p, len), len ? crc32c_ref(0, p, len) : 0);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(lengths_and_alignments),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
