/* SPDX-License-Identifier: MIT */
/*
 * The migration stream between a source and a destination: versioned frames, each with a
 * sequence number, a checksummed header and a checksummed payload, all little-endian.
 *
 *   frame   := header payload
 *   header  := u32 magic "DMLG" | u16 type | u16 flags (0) | u32 seq | u32 length
 *              | u32 crc32c(payload) | u32 crc32c(the 20 bytes before it)
 *   stream  := HELLO (PAGES | ZERO | DEVICE_DATA | ROUND)* SWITCHOVER
 *              (PAGES | ZERO | DEVICE_DATA)*
 *              DEVICE_DONE (one per device, after SWITCHOVER) COMPLETE VERIFY RESULT END
 *
 * Several connections (channels) may carry the pages. The first one carries the stream above;
 * each other one (1 to channels - 1, opened in that order) carries only pages:
 *
 *   channel := CHANNEL ((PAGES | ZERO)* ROUND)* COMPLETE
 *
 * Pages are sharded by address: stream page p travels on channel
 * (p / DMALOG_STREAM_SHARD_PAGES) % channels, every round, so each page's copies arrive in
 * the order they were sent and the channels need no ordering among themselves; a run never
 * crosses a shard. A channel's COMPLETE says it has sent everything; the destination resumes
 * only once COMPLETE has come on every connection.
 *
 * Each direction of each connection numbers its frames from 0; a frame whose number is not
 * the next one (lost, repeated or reordered) is refused at once, before anything of it is
 * applied.
 *
 * HELLO      u32 version, u32 page_shift, u64 guest_bytes, u32 ndevices, u32 nregions,
 *            u32 channels, u32 0, then nregions (u64 gpa, u64 length) and ndevices names of
 *            32 bytes (NUL-padded): the destination refuses another layout, other devices or
 *            another number of channels at once
 * CHANNEL    u32 version, u32 index, u32 channels, u32 page_shift, u64 guest_bytes: the first
 *            frame of page channel @index, checked against the destination's own
 * PAGES      u64 first_page, u32 count, u32 0, then count pages of data
 * ZERO       u64 first_page, u32 count, u32 0: count pages that are all zero bytes (QEMU's
 *            "duplicate"); the destination zeroes them
 * DEVICE_DATA u32 device, u32 0, then bytes of that device's migration data stream
 * DEVICE_DONE u32 device, u32 0: its stream is complete
 * ROUND      u32 round, u32 0, u64 pages this connection carried in the round (since the
 *            previous ROUND on it): the destination checks both, so a lost run is named
 * SWITCHOVER (empty): the source has stopped; what follows is the final state
 * COMPLETE   (empty): the final state has been sent; the destination resumes the guest
 * VERIFY     u64 nonce: prove what you hold, keyed by this
 * RESULT     u64 pages compared, u64 mismatched pages, u32 devices compared, u32 mismatched
 *            devices: what the source found
 * END        u64 number of frames before it
 *
 * The destination answers on the same connection: RUNNING (empty) once it has resumed the
 * guest after COMPLETE; after VERIFY, VERIFY_PAGES frames (u64 first_page, u32 count, u32 0,
 * then count u64 digests of its pages, keyed by the nonce) covering every page in order and
 * one VERIFY_DEVICE (u32 device, u32 0, u64 keyed digest of the device's state) per device;
 * or ABORT (a reason) at any point before RUNNING.
 *
 * What the proof shows: the nonce is fresh, so the destination can only produce the digests
 * from the pages and device state it holds after the migration; the source compares them
 * with its own and names the pages that differ. What it does not show: the digest is not a
 * MAC and the connection is not authenticated, so it guards against a destination that lost
 * or skipped data (or a broken one that claims success), not against an attacker who can
 * compute the digests over data of their choice.
 *
 * dmalog_sink validates a stream as it arrives and applies it: nothing is written outside
 * the guest memory it was given, and any malformed, truncated, corrupt, out-of-order or
 * mismatched input ends the stream with a clear reason.
 */
#ifndef DMALOG_MSTREAM_H
#define DMALOG_MSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <dmalog/api.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DMALOG_STREAM_MAGIC	  0x474c4d44u /* "DMLG" */
#define DMALOG_STREAM_VERSION	  7
#define DMALOG_FRAME_HDR_BYTES	  24
#define DMALOG_FRAME_MAX_PAYLOAD  (32u << 20)
#define DMALOG_STREAM_MAX_DEVICES 64
/* Pages per shard: a channel's share of guest memory is every channels-th shard. */
#define DMALOG_STREAM_SHARD_PAGES 256
/* At most this many connections per migration. */
#define DMALOG_STREAM_MAX_CHANNELS 16

enum dmalog_frame_type {
	DMALOG_FRAME_HELLO = 1,
	DMALOG_FRAME_PAGES = 2,
	DMALOG_FRAME_DEVICE_DATA = 3,
	DMALOG_FRAME_DEVICE_DONE = 4,
	DMALOG_FRAME_ROUND = 5,
	DMALOG_FRAME_SWITCHOVER = 6,
	DMALOG_FRAME_VERIFY_PAGES = 7,
	DMALOG_FRAME_VERIFY_DEVICE = 8,
	DMALOG_FRAME_END = 9,
	DMALOG_FRAME_RESULT = 10,
	DMALOG_FRAME_ABORT = 11,
	DMALOG_FRAME_COMPLETE = 12,
	DMALOG_FRAME_RUNNING = 13,
	DMALOG_FRAME_VERIFY = 14,
	DMALOG_FRAME_ZERO = 15,
	DMALOG_FRAME_CHANNEL = 16,
};

/*
 * The fixed part of each frame's payload as a typed struct. On the wire every field is
 * little-endian at the offset it has here (asserted below); dmalog_frame_encode() and
 * dmalog_frame_decode() convert, so no end of the stream does byte-offset arithmetic.
 * PAGES and VERIFY_PAGES carry dmalog_frame_run and then their pages or hashes; DEVICE_DATA
 * carries dmalog_frame_device and then the device's bytes; ABORT is only its reason text.
 */
struct dmalog_frame_hello {
	uint32_t version;
	uint32_t page_shift;
	uint64_t guest_bytes;
	uint32_t ndevices;
	uint32_t nregions;
	uint32_t channels;
	uint32_t reserved;
};

/* HELLO's tail: each RAM region, then each device's name. */
struct dmalog_frame_hello_region {
	uint64_t gpa;
	uint64_t length;
};

#define DMALOG_HELLO_NAME_BYTES 32

struct dmalog_frame_channel {
	uint32_t version;
	uint32_t index;
	uint32_t channels;
	uint32_t page_shift;
	uint64_t guest_bytes;
};

struct dmalog_frame_run {
	uint64_t first_page;
	uint32_t count;
	uint32_t reserved;
};

struct dmalog_frame_device {
	uint32_t device;
	uint32_t reserved;
};

struct dmalog_frame_round {
	uint32_t round;
	uint32_t reserved;
	uint64_t pages;
};

struct dmalog_frame_verify_device {
	uint32_t device;
	uint32_t reserved;
	uint64_t hash;
};

struct dmalog_frame_end {
	uint64_t frames;
};

struct dmalog_frame_verify {
	uint64_t nonce;
};

struct dmalog_frame_result {
	uint64_t pages_compared;
	uint64_t pages_mismatched;
	uint32_t devices_compared;
	uint32_t devices_mismatched;
};

#ifndef __cplusplus
_Static_assert(sizeof(struct dmalog_frame_hello) == 32, "hello");
_Static_assert(offsetof(struct dmalog_frame_hello, guest_bytes) == 8, "");
_Static_assert(offsetof(struct dmalog_frame_hello, ndevices) == 16, "");
_Static_assert(offsetof(struct dmalog_frame_hello, channels) == 24, "");
_Static_assert(sizeof(struct dmalog_frame_channel) == 24, "channel");
_Static_assert(offsetof(struct dmalog_frame_channel, guest_bytes) == 16, "");
_Static_assert(sizeof(struct dmalog_frame_run) == 16, "run");
_Static_assert(offsetof(struct dmalog_frame_run, count) == 8, "");
_Static_assert(sizeof(struct dmalog_frame_device) == 8, "device");
_Static_assert(sizeof(struct dmalog_frame_round) == 16, "round");
_Static_assert(offsetof(struct dmalog_frame_round, pages) == 8, "");
_Static_assert(sizeof(struct dmalog_frame_verify_device) == 16, "verify_device");
_Static_assert(offsetof(struct dmalog_frame_verify_device, hash) == 8, "");
_Static_assert(sizeof(struct dmalog_frame_end) == 8, "end");
_Static_assert(sizeof(struct dmalog_frame_verify) == 8, "verify");
_Static_assert(sizeof(struct dmalog_frame_result) == 24, "result");
_Static_assert(offsetof(struct dmalog_frame_result, devices_compared) == 16, "");
#endif

/**
 * dmalog_frame_fixed_bytes() - bytes of a frame type's fixed payload part
 * @type: a frame type
 *
 * Return: the size of its struct (0 for SWITCHOVER, COMPLETE, RUNNING and ABORT), or -1 for
 * an unknown type.
 */
DMALOG_API int dmalog_frame_fixed_bytes(uint16_t type);

/**
 * dmalog_frame_has_tail() - whether bytes may follow the fixed part (PAGES, DEVICE_DATA,
 *	VERIFY_PAGES, ABORT)
 * @type: a frame type
 */
DMALOG_API bool dmalog_frame_has_tail(uint16_t type);

/**
 * dmalog_frame_encode() - write a frame's fixed part in wire order
 * @type: the frame type
 * @msg: its struct (the one named after the type)
 * @out: dmalog_frame_fixed_bytes(@type) bytes
 *
 * Reserved fields are written as 0, whatever @msg holds.
 */
DMALOG_API void dmalog_frame_encode(uint16_t type, const void *msg, uint8_t *out);

/**
 * dmalog_frame_decode() - read and check a frame's fixed part
 * @type: the frame type
 * @in: the payload
 * @length: its length
 * @msg: the struct to fill
 *
 * Return: 0, or -EPROTO for an unknown type, a payload shorter than the fixed part, bytes
 * after it in a frame that has no tail, or a non-zero reserved field.
 */
DMALOG_API int dmalog_frame_decode(uint16_t type, const uint8_t *in, uint32_t length, void *msg);

/** dmalog_frame_type_name() - "PAGES", "RUNNING", ...; "unknown" for anything else */
DMALOG_API const char *dmalog_frame_type_name(uint16_t type);

/**
 * dmalog_frame_header() - fill a frame's header
 * @hdr: DMALOG_FRAME_HDR_BYTES bytes
 * @type: the frame type
 * @seq: the frame's number in its direction (0 for the first)
 * @payload: its payload (NULL: a zero payload checksum)
 * @length: payload bytes
 */
DMALOG_API void dmalog_frame_header(uint8_t *hdr, uint16_t type, uint32_t seq, const void *payload,
				    uint32_t length);

/**
 * dmalog_frame_header_crc() - fill a frame's header when the payload's CRC-32C is known
 *	already (a sender that checksummed the payload as it built it)
 * @hdr: DMALOG_FRAME_HDR_BYTES bytes
 * @type: the frame type
 * @seq: the frame's number in its direction
 * @length: payload bytes
 * @payload_crc: CRC-32C of the payload (0 for an empty one)
 */
DMALOG_API void dmalog_frame_header_crc(uint8_t *hdr, uint16_t type, uint32_t seq, uint32_t length,
					uint32_t payload_crc);

/**
 * dmalog_frame_parse_header() - check a header and read its fields
 * @hdr: DMALOG_FRAME_HDR_BYTES bytes
 * @type: its type
 * @seq: its sequence number
 * @length: its payload length
 * @payload_crc: the payload's CRC-32C, to check once the payload is in
 *
 * Return: 0, -EBADMSG for a bad magic, checksum or flags, -E2BIG for a length over
 * DMALOG_FRAME_MAX_PAYLOAD.
 */
DMALOG_API int dmalog_frame_parse_header(const uint8_t *hdr, uint16_t *type, uint32_t *seq,
					 uint32_t *length, uint32_t *payload_crc);

/**
 * dmalog_frame_reseal() - recompute a whole frame's checksums in place, type and number kept
 * @frame: header and payload, as they will be sent
 *
 * For tests that change a payload on purpose and want it to arrive intact as far as the
 * stream can tell (so that what checks it further in is what must refuse it).
 */
DMALOG_API void dmalog_frame_reseal(uint8_t *frame);

/**
 * dmalog_page_digest() - a 64-bit digest of one page (or any bytes), keyed
 * @key: the verification nonce (any value; the same on both ends)
 * @page: the bytes
 * @size: how many
 *
 * XXH3's 64-bit hash seeded with @key (libxxhash's run-time choice of vector unit): every
 * byte counts, and so does the key, the same page under another key giving an unrelated
 * digest. Not a MAC.
 */
DMALOG_API uint64_t dmalog_page_digest(uint64_t key, const void *page, size_t size);

struct dmalog_sink;

/* What the destination does with a stream's device data. */
struct dmalog_sink_ops {
	/* Bytes of device @dev's migration stream, in order. */
	int (*device_data)(void *opaque, uint32_t dev, const void *data, uint32_t length);
	/* Device @dev's stream is complete. */
	int (*device_done)(void *opaque, uint32_t dev);
	/* Optional: the final state is complete (COMPLETE); resume the guest. */
	int (*complete)(void *opaque);
	/* Optional: VERIFY with @nonce; answer with the digests of what is held here. */
	int (*verify)(void *opaque, uint64_t nonce);
	/*
	 * Optional: the HELLO's regions and device names (@regions, @names of @nregions and
	 * ndevices entries, little-endian as on the wire); refuse another layout with -EPROTO.
	 */
	int (*hello)(void *opaque, const uint8_t *regions, uint32_t nregions, const uint8_t *names);
};

/* What the stream brought; the compared and mismatched counts are the source's RESULT. */
struct dmalog_sink_stats {
	uint64_t frames, pages, device_bytes, rounds;
	uint64_t zero_pages; /* of pages, those that came as ZERO runs */
	uint64_t pages_compared, pages_mismatched;
	uint32_t devices_compared, devices_mismatched;
	bool switched_over;
	bool complete;
	bool verify_asked;
	bool result;
};

/* A piece of the destination's guest memory; the pieces follow each other in page order. */
struct dmalog_sink_mem {
	void *host;
	uint64_t length;
};

#define DMALOG_SINK_MAX_REGIONS 64

/**
 * dmalog_sink_create_regions() - a validating sink over guest memory in pieces
 * @mem: the pieces, in stream page order (each a multiple of the page size)
 * @nmem: 1 to DMALOG_SINK_MAX_REGIONS
 * @page_shift: the stream's page size, 2^@page_shift
 * @ndevices: devices the stream must carry
 * @ops: what to do with device data (mandatory with devices)
 * @opaque: passed to @ops
 * @out: the sink
 *
 * The stream's HELLO must match this geometry (the pieces' total length and @ndevices).
 * Return: 0, -EINVAL or -ENOMEM.
 */
DMALOG_API int dmalog_sink_create_regions(const struct dmalog_sink_mem *mem, uint32_t nmem,
					  unsigned int page_shift, uint32_t ndevices,
					  const struct dmalog_sink_ops *ops, void *opaque,
					  struct dmalog_sink **out);

/** dmalog_sink_create() - dmalog_sink_create_regions() over one piece: @mem, @mem_bytes long. */
DMALOG_API int dmalog_sink_create(uint8_t *mem, uint64_t mem_bytes, unsigned int page_shift,
				  uint32_t ndevices, const struct dmalog_sink_ops *ops,
				  void *opaque, struct dmalog_sink **out);
/**
 * dmalog_sink_set_channel() - make the sink one connection of a stream that has @channels
 * @s: a sink that has taken nothing yet
 * @index: which connection: 0 is the main one (HELLO and the whole protocol), 1 to
 *	@channels - 1 a page channel (CHANNEL first, then only PAGES, ZERO, ROUND and COMPLETE;
 *	dmalog_sink_feed() returns 1 once its COMPLETE is taken)
 * @channels: 1 to DMALOG_STREAM_MAX_CHANNELS; the HELLO or CHANNEL frame must say the same
 *
 * With more than one channel, each sink takes only the pages of its own shards, so sinks of
 * the same guest memory fed on different threads never write the same page.
 * Return: 0, or -EINVAL for a bad @index or @channels, or a sink that has begun.
 */
DMALOG_API int dmalog_sink_set_channel(struct dmalog_sink *s, uint32_t index, uint32_t channels);

/** dmalog_sink_destroy() - free the sink; NULL is fine */
DMALOG_API void dmalog_sink_destroy(struct dmalog_sink *s);

/**
 * dmalog_sink_feed() - Feed bytes as they arrive. Returns 0 when it wants more, 1 once END has been
 * taken (bytes after it are refused), or -errno with dmalog_sink_error() saying why (the stream is
 * over). The pages of a PAGES frame are copied on into guest memory and checksummed in the same
 * pass, with stores that bypass the caches where the CPU has them (nothing reads those pages
 * before the guest runs); a frame whose checksum fails fails the stream, as below.
 */
DMALOG_API int dmalog_sink_feed(struct dmalog_sink *s, const void *data, size_t length);

/**
 * dmalog_sink_recv_buffer() - Where the next bytes of the stream should land, for a caller that
 * receives straight into the sink (recv() into *@buf, at most *@len bytes, then
 * dmalog_sink_received()). The pages of a PAGES frame land in guest memory itself once the
 * frame's header and page run have been checked; its checksum is checked there, and a frame
 * whose checksum fails fails the stream (the guest they landed in must not run then, as with
 * any failed stream). Everything else lands in the sink's own buffers.
 */
DMALOG_API void dmalog_sink_recv_buffer(struct dmalog_sink *s, void **buf, size_t *len);

/**
 * dmalog_sink_received() - @n bytes (0 < @n <= the length dmalog_sink_recv_buffer() gave) have
 * landed where it said: returns as dmalog_sink_feed() does.
 */
DMALOG_API int dmalog_sink_received(struct dmalog_sink *s, size_t n);

/** dmalog_sink_error() - why the stream failed ("" while it has not) */
DMALOG_API const char *dmalog_sink_error(const struct dmalog_sink *s);
/** dmalog_sink_get_stats() - what the sink has taken and compared so far */
DMALOG_API void dmalog_sink_get_stats(const struct dmalog_sink *s, struct dmalog_sink_stats *st);

#ifdef __cplusplus
}
#endif

#endif
