// SPDX-License-Identifier: MIT
/*
 * CRC-32C. Three ways to the same value: carry-less multiplication folding 256 bytes at a
 * time (AVX-512 VPCLMULQDQ) where the CPU has it; else the SSE4.2 crc32 instruction eight
 * bytes at a time, three streams at once on long buffers; else tables sliced eight bytes at a
 * time. DMALOG_CRC32C=soft in the environment forces the tables and DMALOG_CRC32C=sse4.2 the
 * instruction, so tests cover every way on a machine that has them all.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#define CRC32C_POLY	   0x82f63b78u /* reflected */
#define CRC32C_POLY_NORMAL 0x1edc6f41u /* the same, bit d the coefficient of x^d */

/* ThreadSanitizer takes a vector load for a plain read: racing DMA would be reported. */
#if defined(__SANITIZE_THREAD__)
#define UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UNDER_TSAN 1
#endif
#endif
#ifndef UNDER_TSAN
#define UNDER_TSAN 0
#endif

static uint32_t table[8][256];
static bool use_hw;
static bool use_fold;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;

#if defined(__x86_64__)
static void init_shift(void);
static void init_fold(void);
#endif

static void init(void)
{
	const char *mode = getenv("DMALOG_CRC32C");

#if defined(__x86_64__)
	use_hw = __builtin_cpu_supports("sse4.2") && !(mode && !strcmp(mode, "soft"));
	use_fold = use_hw && __builtin_cpu_supports("avx512f") &&
		   __builtin_cpu_supports("vpclmulqdq") && !(mode && !strcmp(mode, "sse4.2"));
	if (use_hw)
		init_shift();
	if (use_fold)
		init_fold();
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
/*
 * Folding (as in Intel's "Fast CRC Computation for Generic Polynomials Using PCLMULQDQ"): a
 * 128-bit lane of message, bit i the coefficient of x^(127 - i) as a reflected CRC orders
 * them, is carried D bits further along the message by multiplying its halves by x^(D + 64)
 * and x^D modulo P, which keeps it 128 bits wide and congruent to what it stood for; the block
 * D bits on is XORed in. Four 512-bit registers (16 lanes) run FOLD_BLOCK bytes apart. At the
 * end the lanes fold into one 128-bit remainder congruent to the whole message, and the crc32
 * instruction over its 16 bytes, from a zero register, gives the CRC. The caller's CRC is
 * XORed into the first four bytes instead, which is what starting the register at it means.
 */
#define FOLD_TARGET __attribute__((target("avx512f,vpclmulqdq,pclmul,sse4.2")))
#define FOLD_BLOCK  256

/* Multiplier pairs {low half, high half} of a lane, by distance. */
static uint64_t fold_by_block[2], fold_by_64[2];
/* The last register's lanes 0-2 carried 48, 32 and 16 bytes on; lane 3 stays. */
static uint64_t fold_lanes[8];

static uint32_t xpow_mod(uint32_t e)
{
	uint32_t r = 1;

	while (e--)
		r = (r << 1) ^ (r & 0x80000000u ? CRC32C_POLY_NORMAL : 0);
	return r;
}

/*
 * The multiplier standing for x^e: x^e mod P reflected into the upper half of 64 bits, one
 * power short, because the product of two reflected operands comes out one place over.
 */
static uint64_t lane_mult(uint32_t e)
{
	uint32_t r = xpow_mod(e - 1), rev = 0;

	for (int b = 0; b < 32; b++)
		rev |= (r >> b & 1) << (31 - b);
	return (uint64_t)rev << 32;
}

/* The pair that carries a lane @bytes further: its low half is the message's earlier. */
static void fold_pair(uint64_t pair[2], uint32_t bytes)
{
	pair[0] = lane_mult(8 * bytes + 64);
	pair[1] = lane_mult(8 * bytes);
}

static void init_fold(void)
{
	fold_pair(fold_by_block, FOLD_BLOCK);
	fold_pair(fold_by_64, 64);
	for (int lane = 0; lane < 3; lane++)
		fold_pair(&fold_lanes[2 * lane], 16 * (3 - lane));
	fold_lanes[6] = fold_lanes[7] = 0;
}

FOLD_TARGET static inline __attribute__((always_inline)) __m512i fold(__m512i x, __m512i k,
								      __m512i next)
{
	return _mm512_ternarylogic_epi64(_mm512_clmulepi64_epi128(x, k, 0x00),
					 _mm512_clmulepi64_epi128(x, k, 0x11), next, 0x96);
}

/* What fold_run() does with the bytes it folds besides checksumming them. */
enum fold_copy {
	FOLD_ONLY,
	FOLD_COPY,	  /* stored to dst as loaded */
	FOLD_COPY_STREAM, /* the same, non-temporal: dst (64-byte aligned) is not read soon */
};

/* 64 bytes at @off, stored to @dst as loaded when copying. */
FOLD_TARGET static inline __attribute__((always_inline)) __m512i
load64(const uint8_t *p, uint8_t *dst, enum fold_copy copy, size_t off)
{
	__m512i v = _mm512_loadu_si512(p + off);

	if (copy == FOLD_COPY)
		_mm512_storeu_si512(dst + off, v);
	else if (copy == FOLD_COPY_STREAM)
		_mm512_stream_si512((void *)(dst + off), v);
	return v;
}

/*
 * The register @crc continued over the first *done bytes of @len >= FOLD_BLOCK, all but the
 * last under 64 (copied to @dst as well when @copy); the caller takes the rest.
 */
FOLD_TARGET static inline __attribute__((always_inline)) uint32_t
fold_run(uint32_t crc, uint8_t *dst, const uint8_t *p, size_t len, enum fold_copy copy,
	 size_t *done)
{
	const __m512i by_block = _mm512_broadcast_i32x4(_mm_loadu_si128((void *)fold_by_block));
	const __m512i by_64 = _mm512_broadcast_i32x4(_mm_loadu_si128((void *)fold_by_64));
	const __m512i lanes = _mm512_loadu_si512(fold_lanes);
	__m512i x0, x1, x2, x3, y;
	uint8_t rest[16];
	size_t off;

	x0 = _mm512_xor_si512(load64(p, dst, copy, 0), _mm512_set_epi64(0, 0, 0, 0, 0, 0, 0, crc));
	x1 = load64(p, dst, copy, 64);
	x2 = load64(p, dst, copy, 128);
	x3 = load64(p, dst, copy, 192);
	for (off = FOLD_BLOCK; len - off >= FOLD_BLOCK; off += FOLD_BLOCK) {
		x0 = fold(x0, by_block, load64(p, dst, copy, off));
		x1 = fold(x1, by_block, load64(p, dst, copy, off + 64));
		x2 = fold(x2, by_block, load64(p, dst, copy, off + 128));
		x3 = fold(x3, by_block, load64(p, dst, copy, off + 192));
	}
	x1 = fold(x0, by_64, x1);
	x2 = fold(x1, by_64, x2);
	x3 = fold(x2, by_64, x3);
	for (; len - off >= 64; off += 64)
		x3 = fold(x3, by_64, load64(p, dst, copy, off));
	/* Lanes 0-2 carried to the end of lane 3, which is taken as it is (qwords 6 and 7). */
	y = _mm512_ternarylogic_epi64(_mm512_clmulepi64_epi128(x3, lanes, 0x00),
				      _mm512_clmulepi64_epi128(x3, lanes, 0x11),
				      _mm512_maskz_mov_epi64(0xc0, x3), 0x96);
	_mm_storeu_si128((void *)rest,
			 _mm_xor_si128(_mm_xor_si128(_mm512_extracti32x4_epi32(y, 0),
						     _mm512_extracti32x4_epi32(y, 1)),
				       _mm_xor_si128(_mm512_extracti32x4_epi32(y, 2),
						     _mm512_extracti32x4_epi32(y, 3))));
	*done = off;
	return crc32c_hw1(0, rest, sizeof(rest));
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

FOLD_TARGET static uint32_t crc32c_fold(uint32_t crc, const uint8_t *p, size_t len)
{
	size_t done;

	crc = fold_run(crc, NULL, p, len, FOLD_ONLY, &done);
	return crc32c_hw1(crc, p + done, len - done);
}

FOLD_TARGET static uint32_t copy_fold(uint32_t crc, uint8_t *dst, const uint64_t *src, size_t len)
{
	size_t done;

	crc = fold_run(crc, dst, (const uint8_t *)src, len, FOLD_COPY, &done);
	return copy_hw(crc, dst + done, src + done / 8, len - done);
}

/* @dst 64-byte aligned; the stores are ordered before return (sfence). */
FOLD_TARGET static uint32_t copy_fold_stream(uint32_t crc, uint8_t *dst, const uint8_t *src,
					     size_t len)
{
	size_t done;

	crc = fold_run(crc, dst, src, len, FOLD_COPY_STREAM, &done);
	_mm_sfence();
	memcpy(dst + done, src + done, len - done);
	return crc32c_hw1(crc, src + done, len - done);
}
#endif

uint32_t dmalog_crc32c_copy(uint32_t crc, void *dst, const void *src, size_t len)
{
	const uint64_t *from = src;
	uint8_t *to = dst;

	pthread_once(&init_once, init);
#if defined(__x86_64__)
	/*
	 * A vector load does not tear the aligned 8-byte words it holds (DMA's unit) on x86;
	 * ThreadSanitizer builds take the word-by-word atomic loads, so it checks the rest.
	 */
	if (use_fold && !UNDER_TSAN && len >= FOLD_BLOCK)
		return ~copy_fold(~crc, to, from, len);
	if (use_hw)
		return ~copy_hw(~crc, to, from, len);
#endif
	for (size_t i = 0; i < len / 8; i++) {
		uint64_t x = __atomic_load_n(&from[i], __ATOMIC_RELAXED);

		memcpy(to + 8 * i, &x, 8);
	}
	return ~crc32c_sw(~crc, to, len);
}

#if defined(__x86_64__)
/*
 * @len bytes to @dst (16-byte aligned) with SSE2's non-temporal stores, which every x86-64
 * has, ordered before return; whatever is under 16 at the end as usual.
 */
static void copy_stream_sse2(uint8_t *dst, const uint8_t *src, size_t len)
{
	size_t off;

	for (off = 0; len - off >= 16; off += 16)
		_mm_stream_si128((__m128i *)(dst + off),
				 _mm_loadu_si128((const __m128i *)(src + off)));
	_mm_sfence();
	memcpy(dst + off, src + off, len - off);
}
#endif

uint32_t dmalog_crc32c_copy_cold(uint32_t crc, void *dst, const void *src, size_t len)
{
	uint8_t *to = dst;
	const uint8_t *from = src;

	pthread_once(&init_once, init);
#if defined(__x86_64__)
	if (len >= FOLD_BLOCK + 64) {
		/* Up to @dst's first 64-byte boundary as usual, the rest streamed. */
		size_t head = (size_t)(-(uintptr_t)to & 63);

		memcpy(to, from, head);
		crc = dmalog_crc32c(crc, from, head);
		if (use_fold)
			return ~copy_fold_stream(~crc, to + head, from + head, len - head);
		/* Without folding, the checksum reads the source again: it is the cached side. */
		copy_stream_sse2(to + head, from + head, len - head);
		return dmalog_crc32c(crc, from + head, len - head);
	}
#endif
	memcpy(to, from, len);
	return dmalog_crc32c(crc, from, len);
}

uint32_t dmalog_crc32c(uint32_t crc, const void *data, size_t len)
{
	pthread_once(&init_once, init);
	crc = ~crc;
#if defined(__x86_64__)
	if (use_fold && len >= FOLD_BLOCK)
		return ~crc32c_fold(crc, data, len);
	if (use_hw)
		return ~crc32c_hw(crc, data, len);
#endif
	return ~crc32c_sw(crc, data, len);
}
