// SPDX-License-Identifier: MIT
/* Encoding and validating the emulated device's migration stream. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/crc32c.h"
#include "core/le.h"
#include "devstate.h"

/* Frame a payload already written at out + 8. */
static size_t seal(uint8_t *out, uint32_t type, uint32_t len)
{
	put32(out, type);
	put32(out + 4, len);
	put32(out + 8 + len, dmalog_crc32c(0, out, 8 + len));
	return DEVSTATE_FRAMING + len;
}

size_t devstate_put_header(uint8_t *out, const struct devstate *s)
{
	put64(out + 8, DEVSTATE_MAGIC);
	put32(out + 16, DEVSTATE_VERSION);
	put32(out + 20, DEVSTATE_NREGS);
	put64(out + 24, s->mem_bytes);
	return seal(out, DEVSTATE_HEADER, 24);
}

size_t devstate_put_chunk(uint8_t *out, const struct devstate *s, uint64_t index)
{
	uint64_t off = index * DEVSTATE_CHUNK;
	const uint64_t *src = (const uint64_t *)(s->mem + off);

	put64(out + 8, off);
	/* Word by word: the device may be changing its memory while it streams (PRE_COPY). */
	for (uint32_t i = 0; i < DEVSTATE_CHUNK / 8; i++)
		put64(out + 16 + 8 * i, __atomic_load_n(&src[i], __ATOMIC_RELAXED));
	return seal(out, DEVSTATE_CHUNK_REC, 8 + DEVSTATE_CHUNK);
}

size_t devstate_put_regs(uint8_t *out, const struct devstate *s)
{
	for (int i = 0; i < DEVSTATE_NREGS; i++)
		put64(out + 8 + 8 * i, s->regs[i]);
	put64(out + 8 + 8 * DEVSTATE_NREGS, s->queue_head);
	put64(out + 16 + 8 * DEVSTATE_NREGS, s->queue_tail);
	return seal(out, DEVSTATE_REGS, 8 * DEVSTATE_NREGS + 16);
}

size_t devstate_put_end(uint8_t *out, uint64_t records)
{
	put64(out + 8, records);
	return seal(out, DEVSTATE_END, 8);
}

#define FAIL(r, msg)                                                                               \
	do {                                                                                       \
		(r)->why = msg;                                                                    \
		return -EINVAL;                                                                    \
	} while (0)

/* The largest record there is: a chunk. Anything longer is refused before it is read. */
#define RECORD_MAX (8 + DEVSTATE_CHUNK)

void devstate_reader_init(struct devstate_reader *r, const struct devstate *s, uint8_t *scratch)
{
	memset(r, 0, sizeof(*r));
	r->mem_bytes = s->mem_bytes;
	r->scratch = scratch;
	/* Chunks not in the stream keep what the device has. */
	memcpy(scratch, s->mem, s->mem_bytes);
}

/* One whole record, checksum verified: check its place in the stream and stage it. */
static int take_record(struct devstate_reader *r, uint32_t type, const uint8_t *p, uint32_t rlen)
{
	if (r->ended)
		FAIL(r, "data after the end record");
	if (type != DEVSTATE_HEADER && !r->have_header)
		FAIL(r, "stream does not start with a header");
	switch (type) {
	case DEVSTATE_HEADER:
		if (r->have_header || rlen != 24)
			FAIL(r, "bad header");
		if (get64(p) != DEVSTATE_MAGIC)
			FAIL(r, "not a dmalog device stream");
		if (get32(p + 8) != DEVSTATE_VERSION)
			FAIL(r, "unsupported stream version");
		if (get32(p + 12) != DEVSTATE_NREGS || get64(p + 16) != r->mem_bytes)
			FAIL(r, "incompatible device (geometry differs)");
		r->have_header = true;
		break;
	case DEVSTATE_CHUNK_REC: {
		uint64_t at = get64(p);

		if (rlen != 8 + DEVSTATE_CHUNK || at % DEVSTATE_CHUNK || at >= r->mem_bytes)
			FAIL(r, "bad memory chunk");
		memcpy(r->scratch + at, p + 8, DEVSTATE_CHUNK);
		break;
	}
	case DEVSTATE_REGS:
		if (rlen != 8 * DEVSTATE_NREGS + 16)
			FAIL(r, "bad register record");
		for (int i = 0; i < DEVSTATE_NREGS; i++)
			r->regs[i] = get64(p + 8 * i);
		r->queue_head = get64(p + 8 * DEVSTATE_NREGS);
		r->queue_tail = get64(p + 8 * DEVSTATE_NREGS + 8);
		r->have_regs = true;
		break;
	case DEVSTATE_END:
		if (rlen != 8 || get64(p) != r->records)
			FAIL(r, "bad end record");
		r->ended = true;
		break;
	default:
		FAIL(r, "unknown record type");
	}
	r->records += type != DEVSTATE_END;
	return 0;
}

int devstate_reader_feed(struct devstate_reader *r, const uint8_t *buf, size_t len)
{
	if (r->why)
		return -EINVAL;
	while (len) {
		/* The 8-byte type and length first: they bound the rest before it is read. */
		size_t want = r->have < 8 ? 8 : DEVSTATE_FRAMING + get32(r->rec + 4), n;
		uint32_t type, rlen;

		n = want - r->have < len ? want - r->have : len;
		memcpy(r->rec + r->have, buf, n);
		r->have += n;
		buf += n;
		len -= n;
		if (r->have == 8 && get32(r->rec + 4) > RECORD_MAX)
			FAIL(r, "record too large");
		if (r->have < 8 || r->have < DEVSTATE_FRAMING + get32(r->rec + 4))
			continue;
		type = get32(r->rec);
		rlen = get32(r->rec + 4);
		r->have = 0;
		if (get32(r->rec + 8 + rlen) != dmalog_crc32c(0, r->rec, 8 + (size_t)rlen))
			FAIL(r, "checksum mismatch");
		if (take_record(r, type, r->rec + 8, rlen))
			return -EINVAL;
	}
	return 0;
}

int devstate_reader_finish(struct devstate_reader *r, struct devstate *s)
{
	if (r->why)
		return -EINVAL;
	if (r->have)
		FAIL(r, "truncated record");
	if (!r->have_header)
		FAIL(r, "empty stream");
	if (!r->ended)
		FAIL(r, "incomplete stream (no end record)");
	if (!r->have_regs)
		FAIL(r, "no register state");
	memcpy(s->mem, r->scratch, s->mem_bytes);
	memcpy(s->regs, r->regs, sizeof(r->regs));
	s->queue_head = r->queue_head;
	s->queue_tail = r->queue_tail;
	return 0;
}
