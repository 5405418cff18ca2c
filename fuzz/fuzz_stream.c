// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for the destination's stream parser: arbitrary bytes must give a clean
 * error, never a crash or a write outside guest memory (the guest is an exact-size buffer
 * under ASan). The first input byte picks how the rest is used:
 *  - even: raw bytes, fed in chunks whose sizes come from the input;
 *  - odd: a list of frames (u8 type, u16 length, payload) that the harness wraps in valid
 *    headers, numbers and checksums, after a valid hello, so that the fuzzer reaches the
 *    checks that come after the checksums (a type byte with its top bit set gets a wrong
 *    number).
 * With bit 3 set the sink is page channel 1 of 2 (its guest large enough to have a shard of
 * its own) and the valid first frame is CHANNEL.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <dmalog/mstream.h>

#define PAGE_SHIFT 12
#define GUEST	   (16u << PAGE_SHIFT)
/* A page channel's guest: shard 0 (the main connection's), shard 1 (its own), and more. */
#define GUEST_CHANNEL ((2u * DMALOG_STREAM_SHARD_PAGES + 16) << PAGE_SHIFT)
#define DEVICES	      2
#define FRAME_TYPES   17 /* 0 (unknown) to DMALOG_FRAME_CHANNEL */

static int dev_data(void *o, uint32_t dev, const void *data, uint32_t len)
{
	return dev == 1 && len > 100 ? -22 : 0;
}

static int dev_done(void *o, uint32_t dev)
{
	return 0;
}

static int dev_verify(void *o, uint64_t nonce)
{
	return nonce & 1 ? -5 : 0;
}

static const struct dmalog_sink_ops ops = {
	.device_data = dev_data,
	.device_done = dev_done,
	.verify = dev_verify,
};

static int feed_frame(struct dmalog_sink *s, uint16_t type, uint32_t seq, const uint8_t *payload,
		      uint32_t len)
{
	uint8_t hdr[DMALOG_FRAME_HDR_BYTES];
	int ret;

	dmalog_frame_header(hdr, type, seq, payload, len);
	ret = dmalog_sink_feed(s, hdr, sizeof(hdr));
	if (ret || !len)
		return ret;
	return dmalog_sink_feed(s, payload, len);
}

/*
 * The codec both ways: whatever decodes must encode back to the same bytes (reserved fields
 * are 0 in both, so nothing is lost or invented on the way).
 */
static void round_trip(uint16_t type, const uint8_t *payload, uint32_t len)
{
	uint8_t msg[64], again[64];
	int fixed = dmalog_frame_fixed_bytes(type);

	if (fixed < 0 || dmalog_frame_decode(type, payload, len, msg))
		return;
	dmalog_frame_encode(type, msg, again);
	if (memcmp(again, payload, (size_t)fixed))
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A page channel's valid first frame. */
static int feed_channel(struct dmalog_sink *s)
{
	struct dmalog_frame_channel c = {.version = DMALOG_STREAM_VERSION,
					 .index = 1,
					 .channels = 2,
					 .page_shift = PAGE_SHIFT,
					 .guest_bytes = GUEST_CHANNEL};
	uint8_t frame[sizeof(c)];

	dmalog_frame_encode(DMALOG_FRAME_CHANNEL, &c, frame);
	return feed_frame(s, DMALOG_FRAME_CHANNEL, 0, frame, sizeof(frame));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	bool channel = size && (data[0] & 8);
	uint32_t bytes = channel ? GUEST_CHANNEL : GUEST;
	uint8_t *guest = malloc(bytes);
	/* Guest memory in two pieces with bit 2 of the first byte: runs are split between them. */
	struct dmalog_sink_mem mem[2] = {{guest, GUEST / 4},
					 {guest + GUEST / 4, bytes - GUEST / 4}};
	struct dmalog_sink *s;

	if (!size || !guest ||
	    dmalog_sink_create_regions(data[0] & 4 ? mem : &(struct dmalog_sink_mem){guest, bytes},
				       data[0] & 4 ? 2 : 1, PAGE_SHIFT, channel ? 0 : DEVICES,
				       channel ? NULL : &ops, NULL, &s)) {
		free(guest);
		return 0;
	}
	if (channel && dmalog_sink_set_channel(s, 1, 2))
		__builtin_trap();
	if (!(data[0] & 1)) {
		size_t off = 1;
		unsigned int chunk = data[0] | 1;

		while (off < size) {
			size_t n = size - off < chunk ? size - off : chunk;

			if (dmalog_sink_feed(s, data + off, n))
				break;
			off += n;
			chunk = chunk * 5 % 4093 + 1;
		}
	} else {
		struct dmalog_frame_hello h = {.version = DMALOG_STREAM_VERSION,
					       .page_shift = PAGE_SHIFT,
					       .guest_bytes = GUEST,
					       .ndevices = DEVICES,
					       .channels = 1};
		/* No regions, and a name of 32 NUL bytes per device. */
		uint8_t hello[sizeof(h) + DEVICES * DMALOG_HELLO_NAME_BYTES] = {0};
		uint32_t seq = 0;
		size_t off = 1;

		dmalog_frame_encode(DMALOG_FRAME_HELLO, &h, hello);
		if (!(data[0] & 2) &&
		    (channel ? feed_channel(s)
			     : feed_frame(s, DMALOG_FRAME_HELLO, seq, hello, sizeof(hello))))
			goto out;
		seq += !(data[0] & 2);
		while (off + 3 <= size) {
			uint16_t len;

			memcpy(&len, data + off + 1, 2);
			if (len > size - off - 3)
				len = size - off - 3;
			round_trip(data[off] % FRAME_TYPES, data + off + 3, len);
			/* Numbered in order, unless the input's top type bit asks for a wrong one.
			 */
			if (feed_frame(s, data[off] % FRAME_TYPES, data[off] & 0x80 ? seq + 1 : seq,
				       data + off + 3, len))
				break;
			seq++;
			off += 3 + len;
		}
	}
out:
	dmalog_sink_destroy(s);
	free(guest);
	return 0;
}
