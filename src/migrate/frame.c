// SPDX-License-Identifier: MIT
/* Migration stream framing: headers with two checksums, and the page digest. */
#include <errno.h>
#include <string.h>

#include <dmalog/mstream.h>

#include "core/crc32c.h"
#include "core/le.h"

void dmalog_frame_header(uint8_t *hdr, uint16_t type, const void *payload, uint32_t length)
{
	put32(hdr, DMALOG_STREAM_MAGIC);
	put16(hdr + 4, type);
	put16(hdr + 6, 0);
	put32(hdr + 8, length);
	put32(hdr + 12, length && payload ? dmalog_crc32c(0, payload, length) : 0);
	put32(hdr + 16, dmalog_crc32c(0, hdr, 16));
}

int dmalog_frame_parse_header(const uint8_t *hdr, uint16_t *type, uint32_t *length,
			      uint32_t *payload_crc)
{
	if (get32(hdr) != DMALOG_STREAM_MAGIC || get16(hdr + 6) ||
	    get32(hdr + 16) != dmalog_crc32c(0, hdr, 16))
		return -EBADMSG;
	*type = get16(hdr + 4);
	*length = get32(hdr + 8);
	*payload_crc = get32(hdr + 12);
	return *length > DMALOG_FRAME_MAX_PAYLOAD ? -E2BIG : 0;
}

uint64_t dmalog_page_hash(const void *page, size_t size)
{
	const uint8_t *p = page;
	uint64_t h = 0xcbf29ce484222325ULL ^ size;

	for (size_t i = 0; i + 8 <= size; i += 8) {
		uint64_t w;

		memcpy(&w, p + i, 8);
		h = (h ^ w) * 0x100000001b3ULL;
		h ^= h >> 29;
	}
	for (size_t i = size & ~7ULL; i < size; i++)
		h = (h ^ p[i]) * 0x100000001b3ULL;
	return h;
}
