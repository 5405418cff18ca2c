// SPDX-License-Identifier: MIT
/*
 * IOVA bitmap writer. The caller's buffer is seen as aligned u64 words (the buffer rounded
 * down to 8 bytes, bit 0 sitting head_bits into the first word). Words wholly inside the
 * buffer are updated as words; the one or two edge words that stick out are updated a byte at
 * a time so that nothing outside ceil(nbits / 8) bytes is ever read or written.
 *
 * Conversion between a tracker's granularity G and the report page size P (both powers of
 * two) works on 64-bit words. An unaligned source start is handled by the observation that a
 * source page which does not start on the destination grid touches exactly one more
 * destination page than an aligned one: the aligned result ORed with itself shifted by one.
 */
#include <errno.h>
#include <string.h>

#include <dmalog/iova_bitmap.h>

typedef __int128 s128;

static bool is_pow2(uint64_t x)
{
	return x && !(x & (x - 1));
}

static uint64_t nbits_for(uint64_t length, unsigned int pgshift)
{
	return length ? ((length - 1) >> pgshift) + 1 : 0;
}

uint64_t dmalog_iova_bitmap_bytes(uint64_t length, uint64_t page_size)
{
	if (!is_pow2(page_size))
		return 0;
	return (nbits_for(length, __builtin_ctzll(page_size)) + 7) / 8;
}

uint64_t dmalog_iova_bitmap_words(uint64_t length, uint64_t page_size)
{
	if (!is_pow2(page_size))
		return 0;
	return (nbits_for(length, __builtin_ctzll(page_size)) + 63) / 64;
}

int dmalog_iova_bitmap_init(struct dmalog_iova_bitmap *bm, uint64_t iova, uint64_t length,
			    uint64_t page_size, void *data, unsigned int flags)
{
	uint64_t end, misalign;

	if (!is_pow2(page_size) || __builtin_add_overflow(iova, length, &end))
		return -EINVAL;
	if (flags & ~DMALOG_IOVA_BITMAP_ATOMIC)
		return -EINVAL;
	if (length && !data)
		return -EFAULT;
	memset(bm, 0, sizeof(*bm));
	bm->iova = iova;
	bm->length = length;
	bm->pgshift = __builtin_ctzll(page_size);
	bm->nbits = nbits_for(length, bm->pgshift);
	/* Bit positions are held in int64_t on the way in; 2^62 bits is 512 PiB of bitmap. */
	if (bm->nbits > (1ULL << 62))
		return -EINVAL;
	bm->nbytes = (bm->nbits + 7) / 8;
	bm->atomic = flags & DMALOG_IOVA_BITMAP_ATOMIC;
	bm->bytes = data;
	misalign = (uintptr_t)data & 7;
	bm->words = (uint64_t *)((uintptr_t)data - misalign);
	bm->head_bits = 8 * misalign;
	bm->whole_first = misalign ? 1 : 0;
	bm->whole_end = (misalign + bm->nbytes) / 8;
	return 0;
}

/* OR the valid bytes of an edge word one at a time. */
static void or_edge_word(struct dmalog_iova_bitmap *bm, uint64_t w, uint64_t val)
{
	int64_t first_byte = (int64_t)(8 * w) - (int64_t)(bm->head_bits / 8);

	for (int b = 0; b < 8; b++) {
		uint8_t v = val >> (8 * b);
		int64_t idx = first_byte + b;

		if (!v || idx < 0 || (uint64_t)idx >= bm->nbytes)
			continue;
		if (bm->atomic)
			__atomic_fetch_or(&bm->bytes[idx], v, __ATOMIC_RELAXED);
		else
			bm->bytes[idx] |= v;
	}
}

static inline void or_word(struct dmalog_iova_bitmap *bm, uint64_t w, uint64_t val)
{
	uint64_t *p;

	if (!val)
		return;
	if (__builtin_expect(w < bm->whole_first || w >= bm->whole_end, 0)) {
		or_edge_word(bm, w, val);
		return;
	}
	p = &bm->words[w];
	/*
	 * Bits are never cleared while a bitmap is written, so ORing all ones is a store, even
	 * against concurrent writers; it also spares the read of a line that may not be cached.
	 */
	if (val == ~0ULL) {
		__atomic_store_n(p, ~0ULL, __ATOMIC_RELAXED);
		return;
	}
	if (!bm->atomic) {
		*p |= val;
		return;
	}
	/* A locked OR costs far more than a load; skip it when the bits are already there. */
	if ((__atomic_load_n(p, __ATOMIC_RELAXED) & val) != val)
		__atomic_fetch_or(p, val, __ATOMIC_RELAXED);
}

/* OR the 64 bits of @val into bitmap bits [pos, pos + 64), clipped to [0, nbits). */
static inline void or_bits_at(struct dmalog_iova_bitmap *bm, int64_t pos, uint64_t val)
{
	uint64_t q, room;
	unsigned int sh;

	if (!val)
		return;
	if (pos < 0) {
		if (pos <= -64)
			return;
		val >>= -pos;
		pos = 0;
	}
	if ((uint64_t)pos >= bm->nbits)
		return;
	room = bm->nbits - (uint64_t)pos;
	if (room < 64)
		val &= (1ULL << room) - 1;
	q = (uint64_t)pos + bm->head_bits;
	sh = q & 63;
	or_word(bm, q >> 6, val << sh);
	if (sh)
		or_word(bm, (q >> 6) + 1, val >> (64 - sh));
}

/* Set bits [first, last], both inside [0, nbits). */
static inline __attribute__((always_inline)) void fill_run(struct dmalog_iova_bitmap *bm,
							   uint64_t first, uint64_t last)
{
	uint64_t q0 = first + bm->head_bits, q1 = last + bm->head_bits;
	uint64_t w0 = q0 >> 6, w1 = q1 >> 6;
	uint64_t m0 = ~0ULL << (q0 & 63), m1 = ~0ULL >> (63 - (q1 & 63));

	if (w0 == w1) {
		or_word(bm, w0, m0 & m1);
		return;
	}
	/* Words strictly between the two ends lie wholly inside the buffer. */
	if (!bm->atomic) {
		/*
		 * memset's wide stores keep more cache-line fills in flight than a loop of 8-byte
		 * stores can; fold full edge words into it.
		 */
		uint64_t from = w0 + 1, end = w1;

		if (m0 == ~0ULL && w0 >= bm->whole_first)
			from = w0;
		else
			or_word(bm, w0, m0);
		if (m1 == ~0ULL && w1 < bm->whole_end)
			end = w1 + 1;
		else
			or_word(bm, w1, m1);
		memset(&bm->words[from], 0xff, (end - from) * sizeof(uint64_t));
		return;
	}
	/* They become all ones: stores, even against concurrent writers, as no one clears bits. */
	or_word(bm, w0, m0);
	for (uint64_t w = w0 + 1; w < w1; w++)
		__atomic_store_n(&bm->words[w], ~0ULL, __ATOMIC_RELAXED);
	or_word(bm, w1, m1);
}

static void note_clipped(struct dmalog_iova_bitmap *bm)
{
	__atomic_fetch_add(&bm->clipped, 1, __ATOMIC_RELAXED);
}

void dmalog_iova_bitmap_set(struct dmalog_iova_bitmap *bm, uint64_t iova, uint64_t length)
{
	uint64_t off = iova - bm->iova, last, bm_last;

	/* Fast path, the common sparse case: inside the bitmap, within one word. */
	if (__builtin_expect(off < bm->length && length && length - 1 <= bm->length - 1 - off, 1)) {
		uint64_t q0 = (off >> bm->pgshift) + bm->head_bits;
		uint64_t q1 = ((off + length - 1) >> bm->pgshift) + bm->head_bits;

		if ((q0 >> 6) == (q1 >> 6)) {
			or_word(bm, q0 >> 6, (~0ULL << (q0 & 63)) & (~0ULL >> (63 - (q1 & 63))));
			return;
		}
		fill_run(bm, q0 - bm->head_bits, q1 - bm->head_bits);
		return;
	}
	if (!length || !bm->nbits)
		return;
	if (__builtin_add_overflow(iova, length - 1, &last))
		last = UINT64_MAX;
	bm_last = bm->iova + bm->length - 1;
	if (last < bm->iova || iova > bm_last) {
		note_clipped(bm);
		return;
	}
	if (iova < bm->iova || last > bm_last) {
		note_clipped(bm);
		if (iova < bm->iova)
			iova = bm->iova;
		if (last > bm_last)
			last = bm_last;
	}
	fill_run(bm, (iova - bm->iova) >> bm->pgshift, (last - bm->iova) >> bm->pgshift);
}

void dmalog_iova_bitmap_set_list(struct dmalog_iova_bitmap *bm, const uint64_t *iovas, uint64_t n,
				 uint64_t length)
{
	enum { AHEAD = 8 };

	for (uint64_t i = 0; i < n; i++) {
		if (i + AHEAD < n) {
			uint64_t off = iovas[i + AHEAD] - bm->iova;

			if (off < bm->length)
				__builtin_prefetch(
					&bm->words[((off >> bm->pgshift) + bm->head_bits) >> 6], 1);
		}
		dmalog_iova_bitmap_set(bm, iovas[i], length);
	}
}

/* Source bits [off, end) of a tracker bitmap, read 64 at a time from any bit position. */
struct src_reader {
	const uint64_t *words;
	uint64_t off;
	uint64_t end;
};

/* 64 bits starting at source bit off + pos (pos may be negative); zeros outside the range. */
static inline uint64_t src_get64(const struct src_reader *s, int64_t pos)
{
	int64_t abs = (int64_t)s->off + pos;
	int64_t valid = (int64_t)s->end - abs;
	uint64_t v, w;
	unsigned int sh;

	if (valid <= 0 || pos <= -64)
		return 0;
	if (pos < 0) {
		/* Bits below off read as zero. */
		v = src_get64(s, 0) << -pos;
		return v;
	}
	w = (uint64_t)abs >> 6;
	sh = abs & 63;
	v = s->words[w] >> sh;
	if (sh && (w + 1) * 64 < s->end)
		v |= s->words[w + 1] << (64 - sh);
	if (valid < 64)
		v &= (1ULL << valid) - 1;
	return v;
}

/*
 * Bit-gather tables for a ratio r = 2^k with 1 <= k <= 5: squeezing the bits at positions
 * j * r of a word down to positions j (compress) and back (expand), in 6 - k mask-and-shift
 * steps, the way Morton codes are decoded.
 */
struct gather {
	unsigned int k;
	unsigned int steps;
	uint64_t group0;       /* bit 0 of every r-bit group */
	uint64_t odd[6];       /* step i: the odd groups of size 2^i at stride r * 2^i */
	unsigned int shift[6]; /* ... and how far they move */
};

/* Bit 0 repeated every @period bits (a power of two). */
static uint64_t repeat_every(unsigned int period)
{
	return period >= 64 ? 1 : ~0ULL / ((1ULL << period) - 1);
}

static void gather_init(struct gather *g, unsigned int k)
{
	unsigned int r = 1u << k;

	g->k = k;
	g->steps = 6 - k;
	g->group0 = repeat_every(r);
	for (unsigned int i = 0; i < g->steps; i++) {
		unsigned int size = 1u << i, stride = r << i;

		g->odd[i] = (((1ULL << size) - 1) << stride) * repeat_every(2 * stride);
		g->shift[i] = stride - size;
	}
}

/* OR each r-bit group of @v into one bit: 64 / r result bits at the bottom. */
static inline uint64_t gather_compress(const struct gather *g, uint64_t v)
{
	for (unsigned int s = 1; s < (1u << g->k); s <<= 1)
		v |= v >> s;
	v &= g->group0;
	for (unsigned int i = 0; i < g->steps; i++)
		v = (v & ~g->odd[i]) | ((v & g->odd[i]) >> g->shift[i]);
	return v;
}

/* Replicate each of the low 64 / r bits of @v into an r-bit group. */
static inline uint64_t gather_expand(const struct gather *g, uint64_t v)
{
	for (unsigned int i = g->steps; i-- > 0;) {
		uint64_t up = g->odd[i] >> g->shift[i];

		v = (v & ~up) | ((v & up) << g->shift[i]);
	}
	return v * ((1ULL << (1u << g->k)) - 1);
}

/*
 * Same granularity with source and destination both starting on a word boundary: a plain word
 * loop over the whole words, the general path for the rest. False when not aligned.
 */
static bool or_aligned_words(struct dmalog_iova_bitmap *bm, const struct src_reader *s, int64_t D)
{
	uint64_t n = s->end - s->off, q, dw, sw, count;

	if (D < 0 || (s->off & 63) || (((uint64_t)D + bm->head_bits) & 63))
		return false;
	q = (uint64_t)D + bm->head_bits;
	dw = q >> 6;
	sw = s->off >> 6;
	/* Whole source words whose destination words are whole too. */
	count = n / 64;
	if (dw < bm->whole_first || dw >= bm->whole_end)
		return false;
	if (count > bm->whole_end - dw)
		count = bm->whole_end - dw;
	if (!bm->atomic) {
		uint64_t *restrict dst = &bm->words[dw];
		const uint64_t *restrict src = &s->words[sw];

		for (uint64_t i = 0; i < count; i++)
			dst[i] |= src[i];
	} else {
		for (uint64_t i = 0; i < count; i++)
			or_word(bm, dw + i, s->words[sw + i]);
	}
	/* The tail (a partial source word, or words past the whole ones) bit by word. */
	for (uint64_t u = count; u * 64 < n; u++)
		or_bits_at(bm, D + (int64_t)(64 * u), src_get64(s, (int64_t)(64 * u)));
	return true;
}

/*
 * G <= P, r = P / G = 2^k. Virtual source bit m = source bit m - a, ORed with source bit
 * m - a - 1 when the source is off the G grid (frac); destination bit D + i is the OR of
 * virtual bits [i * r, (i + 1) * r).
 */
static void convert_coarser(struct dmalog_iova_bitmap *bm, const struct src_reader *s, int64_t D,
			    int64_t a, bool frac, unsigned int k)
{
	uint64_t n = s->end - s->off;
	uint64_t vbits = (uint64_t)a + n + (frac ? 1 : 0);
	uint64_t r = 1ULL << k;
	uint64_t dbits = (vbits >> k) + ((vbits & (r - 1)) != 0);
	uint64_t dwords = (dbits + 63) / 64;
	struct gather g = {0};

#define VWORD(pos) (src_get64(s, (pos)-a) | (frac ? src_get64(s, (pos)-a - 1) : 0))
	if (k >= 6) {
		/*
		 * A destination bit spans whole source words: OR them until one is non-zero.
		 * Virtual bits below @a are zero, so each scan starts at a (rounded down to the
		 * word, which stays inside the destination bit as r is a multiple of 64).
		 */
		uint64_t val = 0;

		for (uint64_t i = (uint64_t)a >> k; i < dbits; i++) {
			uint64_t base = i << k, any = 0;
			uint64_t end = vbits - base < r ? vbits : base + r;
			uint64_t pos = base > (uint64_t)a ? base : (uint64_t)a & ~63ULL;

			for (; pos < end && !any; pos += 64)
				any = VWORD((int64_t)pos);
			if (any)
				val |= 1ULL << (i & 63);
			if ((i & 63) == 63 || i + 1 == dbits) {
				or_bits_at(bm, D + (int64_t)(i & ~63ULL), val);
				val = 0;
			}
		}
		return;
	}
	if (k == 0 && !frac && a == 0 && or_aligned_words(bm, s, D))
		return;
	if (k >= 1)
		gather_init(&g, k);

	for (uint64_t u = 0; u < dwords; u++) {
		uint64_t val = 0;

		if (k == 0) {
			val = VWORD((int64_t)(64 * u));
		} else {
			unsigned int per = 64 >> k;

			for (uint64_t c = 0; c < r; c++) {
				uint64_t v = VWORD((int64_t)(64 * (u * r + c)));

				if (v)
					val |= gather_compress(&g, v) << (c * per);
			}
		}
		or_bits_at(bm, D + (int64_t)(64 * u), val);
	}
#undef VWORD
}

/* Source bits [first, last] (relative), already known set. */
static void fill_replicated(struct dmalog_iova_bitmap *bm, s128 D, uint64_t first, uint64_t last,
			    unsigned int k, bool frac)
{
	s128 lo = D + ((s128)first << k);
	s128 hi = D + (((s128)last + 1) << k) - 1 + (frac ? 1 : 0);

	if (hi < 0 || lo >= (s128)bm->nbits)
		return;
	if (lo < 0)
		lo = 0;
	if (hi >= (s128)bm->nbits)
		hi = bm->nbits - 1;
	fill_run(bm, (uint64_t)lo, (uint64_t)hi);
}

/*
 * G > P, r = G / P = 2^k. Source bit j covers destination bits D + j * r .. D + j * r + r - 1,
 * plus one more when the source is off the P grid (frac).
 */
static void convert_finer(struct dmalog_iova_bitmap *bm, const struct src_reader *s, s128 D,
			  bool frac, unsigned int k)
{
	uint64_t n = s->end - s->off;
	uint64_t nwords = (n + 63) / 64;

	if (k >= 6) {
		/* Each source bit is at least a whole word: fill runs of set bits. */
		for (uint64_t w = 0; w < nwords; w++) {
			uint64_t x = src_get64(s, (int64_t)(64 * w));

			while (x) {
				unsigned int b = __builtin_ctzll(x);
				uint64_t ones = ~x >> b;
				unsigned int len =
					ones ? (unsigned int)__builtin_ctzll(ones) : 64 - b;

				fill_replicated(bm, D, 64 * w + b, 64 * w + b + len - 1, k, frac);
				x &= len + b >= 64 ? 0 : ~0ULL << (b + len);
			}
		}
		return;
	}

	struct gather g = {0};
	unsigned int per = 64 >> k;
	uint64_t r = 1ULL << k;

	gather_init(&g, k);
	for (uint64_t w = 0; w < nwords; w++) {
		uint64_t x = src_get64(s, (int64_t)(64 * w));

		for (uint64_t c = 0; x && c < r; c++) {
			uint64_t bits = (x >> (c * per)) & ((1ULL << per) - 1);
			int64_t pos = (int64_t)D + (int64_t)(64 * (w * r + c));
			uint64_t e;

			if (!bits)
				continue;
			e = gather_expand(&g, bits);
			or_bits_at(bm, pos, e);
			if (frac)
				or_bits_at(bm, pos + 1, e);
		}
	}
}

void dmalog_iova_bitmap_set_from(struct dmalog_iova_bitmap *bm, uint64_t src_iova,
				 unsigned int src_pgshift, const uint64_t *src, uint64_t src_nbits)
{
	s128 B = bm->iova, L = bm->length, S = src_iova, G;
	s128 k_lo, k_hi, d;
	struct src_reader s;

	if (!src_nbits || !bm->nbits || src_pgshift > 63)
		return;
	G = (s128)1 << src_pgshift;
	/* Clip to the source pages that overlap [B, B + L). */
	k_lo = S >= B ? 0 : (B - S) >> src_pgshift;
	if (S > B + L - 1)
		return;
	k_hi = (B + L - 1 - S) >> src_pgshift;
	if (k_hi >= (s128)src_nbits)
		k_hi = src_nbits - 1;
	if (k_lo > k_hi)
		return;
	s.words = src;
	s.off = (uint64_t)k_lo;
	s.end = (uint64_t)k_hi + 1;
	d = S + k_lo * G - B; /* in (-G, L) */

	if (src_pgshift <= bm->pgshift) {
		s128 D = d >> bm->pgshift; /* floor: -1 or more */
		s128 e = d - D * ((s128)1 << bm->pgshift);

		convert_coarser(bm, &s, (int64_t)D, (int64_t)(e >> src_pgshift), (e & (G - 1)) != 0,
				bm->pgshift - src_pgshift);
	} else {
		s128 D = d >> bm->pgshift;
		bool frac = d != D * ((s128)1 << bm->pgshift);

		convert_finer(bm, &s, D, frac, src_pgshift - bm->pgshift);
	}
}

void dmalog_iova_bitmap_span(const struct dmalog_iova_bitmap *bm, uint64_t *first, uint64_t *last)
{
	*first = bm->iova;
	*last = bm->iova + bm->length - 1;
	if (!bm->length) {
		*first = 1;
		*last = 0;
	}
}

int dmalog_iova_bitmap_for_each(struct dmalog_iova_bitmap *bm, uint64_t window_bits,
				dmalog_iova_bitmap_fn fn, void *opaque)
{
	uint64_t span, off = 0;

	window_bits &= ~63ULL;
	if (window_bits < 64)
		window_bits = 64;
	if (window_bits > (UINT64_MAX >> bm->pgshift))
		span = UINT64_MAX;
	else
		span = window_bits << bm->pgshift;

	while (off < bm->length) {
		uint64_t len = bm->length - off;
		int ret;

		if (len > span)
			len = span;
		ret = fn(bm, bm->iova + off, len, opaque);
		if (ret)
			return ret;
		off += len;
	}
	return 0;
}
