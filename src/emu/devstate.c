// SPDX-License-Identifier: MIT
/* Encoding and validating the emulated device's migration stream. */
#include <errno.h>
#include <stdbool.h>
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

#define FAIL(msg)                                                                                  \
	do {                                                                                       \
		*why = msg;                                                                        \
		return -EINVAL;                                                                    \
	} while (0)

int devstate_parse(const uint8_t *buf, size_t len, struct devstate *s, uint8_t *scratch,
		   const char **why)
{
	uint64_t regs[DEVSTATE_NREGS], head = 0, tail = 0, records = 0;
	bool have_header = false, have_regs = false, ended = false;
	size_t off = 0;

	/* Chunks not in the stream keep what the device has. */
	memcpy(scratch, s->mem, s->mem_bytes);
	while (off < len) {
		const uint8_t *r = buf + off, *p = r + 8;
		uint32_t type, rlen;

		if (ended)
			FAIL("data after the end record");
		if (len - off < DEVSTATE_FRAMING)
			FAIL("truncated record");
		type = get32(r);
		rlen = get32(r + 4);
		if (rlen > len - off - DEVSTATE_FRAMING)
			FAIL("truncated record");
		if (get32(p + rlen) != dmalog_crc32c(0, r, 8 + (size_t)rlen))
			FAIL("checksum mismatch");
		if (type != DEVSTATE_HEADER && !have_header)
			FAIL("stream does not start with a header");
		switch (type) {
		case DEVSTATE_HEADER:
			if (have_header || rlen != 24)
				FAIL("bad header");
			if (get64(p) != DEVSTATE_MAGIC)
				FAIL("not a dmalog device stream");
			if (get32(p + 8) != DEVSTATE_VERSION)
				FAIL("unsupported stream version");
			if (get32(p + 12) != DEVSTATE_NREGS || get64(p + 16) != s->mem_bytes)
				FAIL("incompatible device (geometry differs)");
			have_header = true;
			break;
		case DEVSTATE_CHUNK_REC: {
			uint64_t at = get64(p);

			if (rlen != 8 + DEVSTATE_CHUNK || at % DEVSTATE_CHUNK || at >= s->mem_bytes)
				FAIL("bad memory chunk");
			memcpy(scratch + at, p + 8, DEVSTATE_CHUNK);
			break;
		}
		case DEVSTATE_REGS:
			if (rlen != 8 * DEVSTATE_NREGS + 16)
				FAIL("bad register record");
			for (int i = 0; i < DEVSTATE_NREGS; i++)
				regs[i] = get64(p + 8 * i);
			head = get64(p + 8 * DEVSTATE_NREGS);
			tail = get64(p + 8 * DEVSTATE_NREGS + 8);
			have_regs = true;
			break;
		case DEVSTATE_END:
			if (rlen != 8 || get64(p) != records)
				FAIL("bad end record");
			ended = true;
			break;
		default:
			FAIL("unknown record type");
		}
		records += type != DEVSTATE_END;
		off += DEVSTATE_FRAMING + rlen;
	}
	if (!have_header)
		FAIL("empty stream");
	if (!ended)
		FAIL("incomplete stream (no end record)");
	if (!have_regs)
		FAIL("no register state");
	memcpy(s->mem, scratch, s->mem_bytes);
	memcpy(s->regs, regs, sizeof(regs));
	s->queue_head = head;
	s->queue_tail = tail;
	return 0;
}
