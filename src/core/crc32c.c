// SPDX-License-Identifier: MIT
/*
 * CRC-32C: the SSE4.2 crc32 instruction eight bytes at a time, three streams at once on long
 * buffers, where the CPU has it; else tables sliced eight bytes at a time. Both give the same
 * value. DMALOG_CRC32C=soft in the environment forces the tables, so tests cover them on any
 * machine.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"

#define CRC32C_POLY 0x82f63b78u /* reflected */

static uint32_t table[8][256];
static bool use_hw;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;

#if defined(__x86_64__)
static void init_shift(void);
#endif

static void init(void)
{
	const char *mode = getenv("DMALOG_CRC32C");

#if defined(__x86_64__)
	use_hw = __builtin_cpu_supports("sse4.2") && !(mode && !strcmp(mode, "soft"));
	if (use_hw)
		init_shift();
#else
	(void)mode;
#endif
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = c & 1 ? CRC32C_POLY ^ (c >> 1) : c >> 1;
		table[0][i] = c;
	}
	/* table[k][i]: the CRC of byte i followed by k zero bytes. */
	for (uint32_t i = 0; i < 256; i++)
		for (int k = 1; k < 8; k++)
			table[k][i] = table[0][table[k - 1][i] & 0xff] ^ (table[k - 1][i] >> 8);
}

static uint32_t crc32c_sw(uint32_t crc, const uint8_t *p, size_t len)
{
	for (; len >= 8; len -= 8, p += 8) {
		uint32_t lo, hi;

		memcpy(&lo, p, 4);
		memcpy(&hi, p + 4, 4);
		if (__BYTE_ORDER__ == __ORDER_BIG_ENDIAN__) {
			lo = __builtin_bswap32(lo);
			hi = __builtin_bswap32(hi);
		}
		lo ^= crc;
		crc = table[7][lo & 0xff] ^ table[6][(lo >> 8) & 0xff] ^
		      table[5][(lo >> 16) & 0xff] ^ table[4][lo >> 24] ^ table[3][hi & 0xff] ^
		      table[2][(hi >> 8) & 0xff] ^ table[1][(hi >> 16) & 0xff] ^ table[0][hi >> 24];
	}
	while (len--)
		crc = table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return crc;
}

#if defined(__x86_64__)
/*
 * The crc32 instruction has a latency of three cycles and a throughput of one: one stream
 * runs at a third of what the unit can do. Long buffers go as three streams over consecutive
 * STREAM_BYTES blocks, combined with the zeros operator: advancing a CRC register over n zero
 * bytes is linear, so a table per register byte applies it in four lookups (shift[]).
 */
#define STREAM_BYTES 1024

static uint32_t shift[4][256]; /* register advanced over STREAM_BYTES zero bytes, per byte */

__attribute__((target("sse4.2"))) static uint32_t crc32c_hw1(uint32_t crc, const uint8_t *p,
							     size_t len)
{
	uint64_t c = crc;

	for (; len >= 8; len -= 8, p += 8) {
		uint64_t w;

		memcpy(&w, p, 8);
		c = __builtin_ia32_crc32di(c, w);
	}
	crc = (uint32_t)c;
	while (len--)
		crc = __builtin_ia32_crc32qi(crc, *p++);
	return crc;
}

static void init_shift(void)
{
	static const uint8_t zeros[STREAM_BYTES];
	uint32_t basis[32];

	for (int b = 0; b < 32; b++)
		basis[b] = crc32c_hw1(1u << b, zeros, STREAM_BYTES);
	for (int k = 0; k < 4; k++) {
		for (uint32_t v = 0; v < 256; v++) {
			uint32_t r = 0;

			for (int b = 0; b < 8; b++)
				if (v >> b & 1)
					r ^= basis[8 * k + b];
			shift[k][v] = r;
		}
	}
}

static inline uint32_t shift_block(uint32_t c)
{
	return shift[0][c & 0xff] ^ shift[1][(c >> 8) & 0xff] ^ shift[2][(c >> 16) & 0xff] ^
	       shift[3][c >> 24];
}

__attribute__((target("sse4.2"))) static uint32_t crc32c_hw(uint32_t crc, const uint8_t *p,
							    size_t len)
{
	while (len >= 3 * STREAM_BYTES) {
		uint64_t a = crc, b = 0, c = 0;

		for (size_t i = 0; i < STREAM_BYTES; i += 8) {
			uint64_t x, y, z;

			memcpy(&x, p + i, 8);
			memcpy(&y, p + STREAM_BYTES + i, 8);
			memcpy(&z, p + 2 * STREAM_BYTES + i, 8);
			a = __builtin_ia32_crc32di(a, x);
			b = __builtin_ia32_crc32di(b, y);
			c = __builtin_ia32_crc32di(c, z);
		}
		crc = shift_block(shift_block((uint32_t)a) ^ (uint32_t)b) ^ (uint32_t)c;
		p += 3 * STREAM_BYTES;
		len -= 3 * STREAM_BYTES;
	}
	return crc32c_hw1(crc, p, len);
}

#endif

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t copy_hw(uint32_t crc, uint8_t *dst,
							  const uint64_t *src, size_t len)
{
	/* Three streams over consecutive blocks, as crc32c_hw(), storing as they go. */
	while (len >= 3 * STREAM_BYTES) {
		uint64_t a = crc, b = 0, c = 0;
		const uint64_t *s0 = src, *s1 = src + STREAM_BYTES / 8,
			       *s2 = src + STREAM_BYTES / 4;

		for (size_t i = 0; i < STREAM_BYTES / 8; i++) {
			uint64_t x = __atomic_load_n(&s0[i], __ATOMIC_RELAXED);
			uint64_t y = __atomic_load_n(&s1[i], __ATOMIC_RELAXED);
			uint64_t z = __atomic_load_n(&s2[i], __ATOMIC_RELAXED);

			memcpy(dst + 8 * i, &x, 8);
			memcpy(dst + STREAM_BYTES + 8 * i, &y, 8);
			memcpy(dst + 2 * STREAM_BYTES + 8 * i, &z, 8);
			a = __builtin_ia32_crc32di(a, x);
			b = __builtin_ia32_crc32di(b, y);
			c = __builtin_ia32_crc32di(c, z);
		}
		crc = shift_block(shift_block((uint32_t)a) ^ (uint32_t)b) ^ (uint32_t)c;
		src += 3 * STREAM_BYTES / 8;
		dst += 3 * STREAM_BYTES;
		len -= 3 * STREAM_BYTES;
	}
	for (size_t i = 0; i < len / 8; i++) {
		uint64_t x = __atomic_load_n(&src[i], __ATOMIC_RELAXED);

		memcpy(dst + 8 * i, &x, 8);
		crc = (uint32_t)__builtin_ia32_crc32di(crc, x);
	}
	return crc;
}
#endif

uint32_t dmalog_crc32c_copy(uint32_t crc, void *dst, const void *src, size_t len)
{
	const uint64_t *from = src;
	uint8_t *to = dst;

	pthread_once(&init_once, init);
#if defined(__x86_64__)
	if (use_hw)
		return ~copy_hw(~crc, to, from, len);
#endif
	for (size_t i = 0; i < len / 8; i++) {
		uint64_t x = __atomic_load_n(&from[i], __ATOMIC_RELAXED);

		memcpy(to + 8 * i, &x, 8);
	}
	return ~crc32c_sw(~crc, to, len);
}

uint32_t dmalog_crc32c(uint32_t crc, const void *data, size_t len)
{
	pthread_once(&init_once, init);
	crc = ~crc;
#if defined(__x86_64__)
	if (use_hw)
		return ~crc32c_hw(crc, data, len);
#endif
	return ~crc32c_sw(crc, data, len);
}
