// SPDX-License-Identifier: MIT
/*
 * Migration stream framing: headers with two checksums, the typed codec of each frame's
 * fixed part, and the page digest. The codec is one table: each frame type's fields with
 * their offset and width, which are also the struct's (mstream.h asserts it), so encoding
 * and decoding are the same loop in two directions.
 */
#include <errno.h>
#include <string.h>
#if defined(__x86_64__)
#include <xxh_x86dispatch.h>
#else
#include <xxhash.h>
#endif

#include <dmalog/mstream.h>

#include "core/crc32c.h"
#include "core/le.h"

struct field {
	uint8_t off, width; /* width 4 or 8; 0 ends the list */
	bool reserved;	    /* must be 0 on the wire */
};

struct frame_desc {
	const char *name;
	uint8_t fixed;
	bool tail;
	struct field fields[8]; /* the last one ends the list */
};

#define F(type, member)                                                                            \
	{                                                                                          \
		offsetof(type, member), sizeof(((type *)0)->member), false                         \
	}
#define RESERVED(type, member)                                                                     \
	{                                                                                          \
		offsetof(type, member), sizeof(((type *)0)->member), true                          \
	}

static const struct frame_desc frames[] = {
	[DMALOG_FRAME_HELLO] =
		{"HELLO",
		 sizeof(struct dmalog_frame_hello),
		 true,
		 {F(struct dmalog_frame_hello, version), F(struct dmalog_frame_hello, page_shift),
		  F(struct dmalog_frame_hello, guest_bytes), F(struct dmalog_frame_hello, ndevices),
		  F(struct dmalog_frame_hello, nregions), F(struct dmalog_frame_hello, channels),
		  RESERVED(struct dmalog_frame_hello, reserved)}},
	[DMALOG_FRAME_PAGES] = {"PAGES",
				sizeof(struct dmalog_frame_run),
				true,
				{F(struct dmalog_frame_run, first_page),
				 F(struct dmalog_frame_run, count),
				 RESERVED(struct dmalog_frame_run, reserved)}},
	[DMALOG_FRAME_DEVICE_DATA] = {"DEVICE_DATA",
				      sizeof(struct dmalog_frame_device),
				      true,
				      {F(struct dmalog_frame_device, device),
				       RESERVED(struct dmalog_frame_device, reserved)}},
	[DMALOG_FRAME_DEVICE_DONE] = {"DEVICE_DONE",
				      sizeof(struct dmalog_frame_device),
				      false,
				      {F(struct dmalog_frame_device, device),
				       RESERVED(struct dmalog_frame_device, reserved)}},
	[DMALOG_FRAME_ROUND] = {"ROUND",
				sizeof(struct dmalog_frame_round),
				false,
				{F(struct dmalog_frame_round, round),
				 RESERVED(struct dmalog_frame_round, reserved),
				 F(struct dmalog_frame_round, pages)}},
	[DMALOG_FRAME_SWITCHOVER] = {"SWITCHOVER", 0, false, {{0}}},
	[DMALOG_FRAME_VERIFY_PAGES] = {"VERIFY_PAGES",
				       sizeof(struct dmalog_frame_run),
				       true,
				       {F(struct dmalog_frame_run, first_page),
					F(struct dmalog_frame_run, count),
					RESERVED(struct dmalog_frame_run, reserved)}},
	[DMALOG_FRAME_VERIFY_DEVICE] = {"VERIFY_DEVICE",
					sizeof(struct dmalog_frame_verify_device),
					false,
					{F(struct dmalog_frame_verify_device, device),
					 RESERVED(struct dmalog_frame_verify_device, reserved),
					 F(struct dmalog_frame_verify_device, hash)}},
	[DMALOG_FRAME_END] = {"END",
			      sizeof(struct dmalog_frame_end),
			      false,
			      {F(struct dmalog_frame_end, frames)}},
	[DMALOG_FRAME_RESULT] = {"RESULT",
				 sizeof(struct dmalog_frame_result),
				 false,
				 {F(struct dmalog_frame_result, pages_compared),
				  F(struct dmalog_frame_result, pages_mismatched),
				  F(struct dmalog_frame_result, devices_compared),
				  F(struct dmalog_frame_result, devices_mismatched)}},
	[DMALOG_FRAME_ABORT] = {"ABORT", 0, true, {{0}}},
	[DMALOG_FRAME_COMPLETE] = {"COMPLETE", 0, false, {{0}}},
	[DMALOG_FRAME_RUNNING] = {"RUNNING", 0, false, {{0}}},
	[DMALOG_FRAME_ZERO] = {"ZERO",
			       sizeof(struct dmalog_frame_run),
			       false,
			       {F(struct dmalog_frame_run, first_page),
				F(struct dmalog_frame_run, count),
				RESERVED(struct dmalog_frame_run, reserved)}},
	[DMALOG_FRAME_CHANNEL] = {"CHANNEL",
				  sizeof(struct dmalog_frame_channel),
				  false,
				  {F(struct dmalog_frame_channel, version),
				   F(struct dmalog_frame_channel, index),
				   F(struct dmalog_frame_channel, channels),
				   F(struct dmalog_frame_channel, page_shift),
				   F(struct dmalog_frame_channel, guest_bytes)}},
	[DMALOG_FRAME_VERIFY] = {"VERIFY",
				 sizeof(struct dmalog_frame_verify),
				 false,
				 {F(struct dmalog_frame_verify, nonce)}},
};

static const struct frame_desc *desc(uint16_t type)
{
	if (type >= sizeof(frames) / sizeof(frames[0]) || !frames[type].name)
		return NULL;
	return &frames[type];
}

int dmalog_frame_fixed_bytes(uint16_t type)
{
	const struct frame_desc *d = desc(type);

	return d ? d->fixed : -1;
}

bool dmalog_frame_has_tail(uint16_t type)
{
	const struct frame_desc *d = desc(type);

	return d && d->tail;
}

const char *dmalog_frame_type_name(uint16_t type)
{
	const struct frame_desc *d = desc(type);

	return d ? d->name : "unknown";
}

void dmalog_frame_encode(uint16_t type, const void *msg, uint8_t *out)
{
	const struct frame_desc *d = desc(type);
	const uint8_t *m = msg;

	for (const struct field *f = d ? d->fields : NULL; f && f->width; f++) {
		uint64_t v64 = 0;
		uint32_t v32 = 0;

		if (f->width == 8) {
			if (!f->reserved)
				memcpy(&v64, m + f->off, 8);
			put64(out + f->off, v64);
		} else {
			if (!f->reserved)
				memcpy(&v32, m + f->off, 4);
			put32(out + f->off, v32);
		}
	}
}

int dmalog_frame_decode(uint16_t type, const uint8_t *in, uint32_t length, void *msg)
{
	const struct frame_desc *d = desc(type);
	uint8_t *m = msg;

	if (!d || length < d->fixed || (!d->tail && length != d->fixed))
		return -EPROTO;
	for (const struct field *f = d->fields; f->width; f++) {
		uint64_t v = f->width == 8 ? get64(in + f->off) : get32(in + f->off);

		if (f->reserved && v)
			return -EPROTO;
		if (f->width == 8) {
			memcpy(m + f->off, &v, 8);
		} else {
			uint32_t v32 = (uint32_t)v;

			memcpy(m + f->off, &v32, 4);
		}
	}
	return 0;
}

void dmalog_frame_header_crc(uint8_t *hdr, uint16_t type, uint32_t seq, uint32_t length,
			     uint32_t payload_crc)
{
	put32(hdr, DMALOG_STREAM_MAGIC);
	put16(hdr + 4, type);
	put16(hdr + 6, 0);
	put32(hdr + 8, seq);
	put32(hdr + 12, length);
	put32(hdr + 16, payload_crc);
	put32(hdr + 20, dmalog_crc32c(0, hdr, 20));
}

void dmalog_frame_header(uint8_t *hdr, uint16_t type, uint32_t seq, const void *payload,
			 uint32_t length)
{
	dmalog_frame_header_crc(hdr, type, seq, length,
				length && payload ? dmalog_crc32c(0, payload, length) : 0);
}

int dmalog_frame_parse_header(const uint8_t *hdr, uint16_t *type, uint32_t *seq, uint32_t *length,
			      uint32_t *payload_crc)
{
	if (get32(hdr) != DMALOG_STREAM_MAGIC || get16(hdr + 6) ||
	    get32(hdr + 20) != dmalog_crc32c(0, hdr, 20))
		return -EBADMSG;
	*type = get16(hdr + 4);
	*seq = get32(hdr + 8);
	*length = get32(hdr + 12);
	*payload_crc = get32(hdr + 16);
	return *length > DMALOG_FRAME_MAX_PAYLOAD ? -E2BIG : 0;
}

void dmalog_frame_reseal(uint8_t *frame)
{
	dmalog_frame_header(frame, get16(frame + 4), get32(frame + 8),
			    frame + DMALOG_FRAME_HDR_BYTES, get32(frame + 12));
}

/*
 * XXH3 seeded with the key, through libxxhash's run-time dispatch (AVX-512, AVX2 or SSE2 as the
 * CPU has them): a page digests at about the speed memory is read (26 GB/s on the AMD machine of
 * the README, where the four-lane multiply-xorshift this replaced ran at 6), so that the proof
 * of a 1 GiB guest costs tens of milliseconds rather than the better part of 200.
 */
uint64_t dmalog_page_digest(uint64_t key, const void *page, size_t size)
{
#if defined(__x86_64__)
	return XXH3_64bits_withSeed_dispatch(page, size, key);
#else
	/* libxxhash's run-time dispatch exists on x86 only; elsewhere its one build. */
	return XXH3_64bits_withSeed(page, size, key);
#endif
}
