// SPDX-License-Identifier: MIT
/*
 * The destination side of the migration stream: frames are assembled from whatever the
 * connection delivers, checked (checksums, order, geometry, bounds) and only then applied.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dmalog/mstream.h>

#include "core/crc32c.h"
#include "core/le.h"

enum phase { WANT_HELLO, STREAMING, VERIFYING, ENDED, FAILED };

struct dmalog_sink {
	struct dmalog_sink_mem mem[DMALOG_SINK_MAX_REGIONS];
	uint64_t first_page[DMALOG_SINK_MAX_REGIONS]; /* of each region, in stream pages */
	uint32_t nmem;
	uint64_t mem_bytes, npages;
	unsigned int page_shift;
	uint32_t ndevices;
	uint32_t index, channels; /* which connection of how many (dmalog_sink_set_channel) */
	const struct dmalog_sink_ops *ops;
	void *opaque;

	uint8_t hdr[DMALOG_FRAME_HDR_BYTES];
	uint32_t hdr_have;
	bool in_payload;
	/*
	 * A PAGES frame in the stream proper is received in place: its run header into
	 * payload, checked, then its pages straight into guest memory, checksummed there.
	 */
	bool direct;
	struct dmalog_frame_run run;
	uint32_t crc_have; /* CRC of what has arrived of the frame so far */
	uint16_t type;
	uint32_t seq, length, payload_crc, have;
	uint8_t *payload;
	uint32_t cap;

	enum phase phase;
	int err;
	uint64_t devices_done; /* bit per device */
	uint64_t round_pages;  /* pages since the last ROUND, which must say as many */
	struct dmalog_sink_stats st;
	char error[160];
};

int dmalog_sink_create_regions(const struct dmalog_sink_mem *mem, uint32_t nmem,
			       unsigned int page_shift, uint32_t ndevices,
			       const struct dmalog_sink_ops *ops, void *opaque,
			       struct dmalog_sink **out)
{
	struct dmalog_sink *s;
	uint64_t bytes = 0;

	if (!mem || !nmem || nmem > DMALOG_SINK_MAX_REGIONS || page_shift < 9 || page_shift > 30 ||
	    ndevices > DMALOG_STREAM_MAX_DEVICES || (ndevices && !ops))
		return -EINVAL;
	for (uint32_t i = 0; i < nmem; i++)
		if (!mem[i].host || !mem[i].length || (mem[i].length & ((1ULL << page_shift) - 1)))
			return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	for (uint32_t i = 0; i < nmem; i++) {
		s->mem[i] = mem[i];
		s->first_page[i] = bytes >> page_shift;
		bytes += mem[i].length;
	}
	s->nmem = nmem;
	s->mem_bytes = bytes;
	s->page_shift = page_shift;
	s->npages = bytes >> page_shift;
	s->ndevices = ndevices;
	s->channels = 1;
	s->ops = ops;
	s->opaque = opaque;
	*out = s;
	return 0;
}

int dmalog_sink_set_channel(struct dmalog_sink *s, uint32_t index, uint32_t channels)
{
	if (!channels || channels > DMALOG_STREAM_MAX_CHANNELS || index >= channels ||
	    s->phase != WANT_HELLO || s->st.frames || s->hdr_have)
		return -EINVAL;
	s->index = index;
	s->channels = channels;
	return 0;
}

int dmalog_sink_create(uint8_t *mem, uint64_t mem_bytes, unsigned int page_shift, uint32_t ndevices,
		       const struct dmalog_sink_ops *ops, void *opaque, struct dmalog_sink **out)
{
	struct dmalog_sink_mem one = {mem, mem_bytes};

	return dmalog_sink_create_regions(&one, 1, page_shift, ndevices, ops, opaque, out);
}

/* The region holding stream page @page (< npages), and how many pages it has from there. */
static uint8_t *page_at(const struct dmalog_sink *s, uint64_t page, uint64_t *left)
{
	uint32_t i = s->nmem - 1;

	while (page < s->first_page[i])
		i--;
	*left = (s->mem[i].length >> s->page_shift) - (page - s->first_page[i]);
	return (uint8_t *)s->mem[i].host + ((page - s->first_page[i]) << s->page_shift);
}

void dmalog_sink_destroy(struct dmalog_sink *s)
{
	if (!s)
		return;
	free(s->payload);
	free(s);
}

__attribute__((format(printf, 3, 4))) static int fail(struct dmalog_sink *s, int err,
						      const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->error, sizeof(s->error), fmt, ap);
	va_end(ap);
	s->phase = FAILED;
	s->err = err;
	return err;
}

static int take_hello(struct dmalog_sink *s, const uint8_t *p, uint32_t len)
{
	struct dmalog_frame_hello h;

	if (s->type != DMALOG_FRAME_HELLO || dmalog_frame_decode(s->type, p, len, &h))
		return fail(s, -EPROTO, "stream does not start with a hello");
	if (h.version != DMALOG_STREAM_VERSION)
		return fail(s, -EPROTO, "unsupported stream version %u", h.version);
	if (h.page_shift != s->page_shift || h.guest_bytes != s->mem_bytes ||
	    h.ndevices != s->ndevices)
		return fail(s, -EPROTO,
			    "mismatched stream: page shift %u, %llu guest bytes, %u devices "
			    "(here: %u, %llu, %u)",
			    h.page_shift, (unsigned long long)h.guest_bytes, h.ndevices,
			    s->page_shift, (unsigned long long)s->mem_bytes, s->ndevices);
	if (h.channels != s->channels)
		return fail(s, -EPROTO, "connections differ: %u at the source, %u here", h.channels,
			    s->channels);
	if (h.nregions > DMALOG_SINK_MAX_REGIONS ||
	    len - sizeof(h) != (uint64_t)h.nregions * sizeof(struct dmalog_frame_hello_region) +
				       (uint64_t)h.ndevices * DMALOG_HELLO_NAME_BYTES)
		return fail(s, -EPROTO, "malformed HELLO frame (its layout)");
	if (s->ops && s->ops->hello) {
		const uint8_t *regions = p + sizeof(h);
		int ret = s->ops->hello(s->opaque, regions, h.nregions,
					regions + h.nregions *
							  sizeof(struct dmalog_frame_hello_region));

		if (ret)
			return fail(s, ret, "mismatched stream");
	}
	s->phase = STREAMING;
	return 0;
}

/* A page channel's first frame: the same stream, and this connection of it. */
static int take_channel(struct dmalog_sink *s, const uint8_t *p, uint32_t len)
{
	struct dmalog_frame_channel c;

	if (s->type != DMALOG_FRAME_CHANNEL || dmalog_frame_decode(s->type, p, len, &c))
		return fail(s, -EPROTO, "page channel %u does not start with CHANNEL", s->index);
	if (c.version != DMALOG_STREAM_VERSION)
		return fail(s, -EPROTO, "unsupported stream version %u", c.version);
	if (c.index != s->index || c.channels != s->channels || c.page_shift != s->page_shift ||
	    c.guest_bytes != s->mem_bytes)
		return fail(s, -EPROTO,
			    "mismatched channel: %u of %u, page shift %u, %llu guest bytes "
			    "(here: %u of %u, %u, %llu)",
			    c.index, c.channels, c.page_shift, (unsigned long long)c.guest_bytes,
			    s->index, s->channels, s->page_shift, (unsigned long long)s->mem_bytes);
	s->phase = STREAMING;
	return 0;
}

/*
 * A PAGES or ZERO frame's page run, checked against guest memory and, for PAGES, against the
 * frame's length (ZERO carries no data: its codec takes the run alone).
 */
static int page_run(struct dmalog_sink *s, const uint8_t *p, uint32_t len, unsigned int shift,
		    struct dmalog_frame_run *run)
{
	if (dmalog_frame_decode(s->type, p, len, run))
		return fail(s, -EPROTO, "malformed %s frame", dmalog_frame_type_name(s->type));
	if (!run->count || run->count > s->npages || run->first_page > s->npages - run->count)
		return fail(s, -EPROTO, "pages outside guest memory");
	/* Another connection's pages: two threads must never write one page. */
	if (s->channels > 1 &&
	    ((run->first_page / DMALOG_STREAM_SHARD_PAGES) % s->channels != s->index ||
	     run->first_page / DMALOG_STREAM_SHARD_PAGES !=
		     (run->first_page + run->count - 1) / DMALOG_STREAM_SHARD_PAGES))
		return fail(s, -EPROTO, "pages %llu-%llu are not this connection's (%u of %u)",
			    (unsigned long long)run->first_page,
			    (unsigned long long)(run->first_page + run->count - 1), s->index,
			    s->channels);
	if (s->type == DMALOG_FRAME_PAGES && len - sizeof(*run) != (uint64_t)run->count << shift)
		return fail(s, -EPROTO, "page frame length does not match its count");
	return 0;
}

/* Pages @run (checked) of guest memory become @data, or zero bytes for NULL. */
static void put_pages(struct dmalog_sink *s, const struct dmalog_frame_run *run,
		      const uint8_t *data)
{
	for (uint64_t page = run->first_page, count = run->count; count;) {
		uint64_t left, n;
		uint8_t *dst = page_at(s, page, &left);

		n = count < left ? count : left;
		if (data) {
			memcpy(dst, data, n << s->page_shift);
			data += n << s->page_shift;
		} else {
			memset(dst, 0, n << s->page_shift);
		}
		page += n;
		count -= n;
	}
	s->st.pages += run->count;
	s->round_pages += run->count;
	if (!data)
		s->st.zero_pages += run->count;
}

/* PAGES carries its pages; ZERO (QEMU's "duplicate") says they are all zero bytes. */
static int take_pages(struct dmalog_sink *s, const uint8_t *p, uint32_t len)
{
	struct dmalog_frame_run run;
	int ret = page_run(s, p, len, s->page_shift, &run);

	if (ret)
		return ret;
	put_pages(s, &run, s->type == DMALOG_FRAME_PAGES ? p + sizeof(run) : NULL);
	return 0;
}

/* DEVICE_DATA and DEVICE_DONE start with the device's index. */
static int device_of(struct dmalog_sink *s, const uint8_t *p, uint32_t len, void *msg,
		     uint32_t *dev)
{
	if (dmalog_frame_decode(s->type, p, len, msg))
		return fail(s, -EPROTO, "malformed %s frame", dmalog_frame_type_name(s->type));
	*dev = *(const uint32_t *)msg;
	if (*dev >= s->ndevices)
		return fail(s, -EPROTO, "no device %u in this guest", *dev);
	return 0;
}

static uint64_t all_devices(const struct dmalog_sink *s)
{
	return s->ndevices == 64 ? ~0ULL : (1ULL << s->ndevices) - 1;
}

/* ROUND: the next round, and as many pages on this connection as it says were sent. */
static int take_round(struct dmalog_sink *s, const struct dmalog_frame_round *round)
{
	if (round->round != s->st.rounds + 1)
		return fail(s, -EPROTO, "round %u where round %llu was next", round->round,
			    (unsigned long long)s->st.rounds + 1);
	if (round->pages != s->round_pages)
		return fail(s, -EPROTO, "round %u: %llu pages sent, %llu arrived", round->round,
			    (unsigned long long)round->pages, (unsigned long long)s->round_pages);
	s->st.rounds++;
	s->round_pages = 0;
	return 0;
}

/* A page channel carries pages, ROUND after each round and COMPLETE once: nothing else. */
static int take_channel_frame(struct dmalog_sink *s, const uint8_t *p, uint32_t len)
{
	struct dmalog_frame_round round;

	switch (s->type) {
	case DMALOG_FRAME_PAGES:
	case DMALOG_FRAME_ZERO:
		return take_pages(s, p, len);
	case DMALOG_FRAME_ROUND:
		if (dmalog_frame_decode(s->type, p, len, &round))
			return fail(s, -EPROTO, "bad round frame");
		return take_round(s, &round);
	case DMALOG_FRAME_COMPLETE:
		if (len || s->round_pages)
			return fail(s, -EPROTO,
				    "bad complete frame (%llu pages after the last round)",
				    (unsigned long long)s->round_pages);
		s->st.complete = true;
		s->phase = ENDED;
		return 1;
	default:
		return fail(s, -EPROTO, "a %s frame on page channel %u",
			    dmalog_frame_type_name(s->type), s->index);
	}
}

static int take_frame(struct dmalog_sink *s, const uint8_t *p, uint32_t len)
{
	struct dmalog_frame_device d;
	struct dmalog_frame_round round;
	struct dmalog_frame_verify verify;
	struct dmalog_frame_result res;
	struct dmalog_frame_end end;
	uint32_t dev = 0;
	int ret;

	s->st.frames++;
	if (s->phase == WANT_HELLO)
		return s->index ? take_channel(s, p, len) : take_hello(s, p, len);
	if (s->index)
		return take_channel_frame(s, p, len);
	switch (s->type) {
	case DMALOG_FRAME_PAGES:
	case DMALOG_FRAME_ZERO:
		if (s->phase != STREAMING || s->st.complete)
			return fail(s, -EPROTO, "pages after the final state was complete");
		return take_pages(s, p, len);
	case DMALOG_FRAME_DEVICE_DATA:
		if ((ret = device_of(s, p, len, &d, &dev)))
			return ret;
		if (s->phase != STREAMING || s->st.complete || (s->devices_done >> dev & 1))
			return fail(s, -EPROTO, "data for device %u after its end", dev);
		ret = s->ops->device_data(s->opaque, dev, p + sizeof(d), len - (uint32_t)sizeof(d));
		if (ret)
			return fail(s, ret, "device %u refused its data (%d)", dev, ret);
		s->st.device_bytes += len - sizeof(d);
		return 0;
	case DMALOG_FRAME_DEVICE_DONE:
		if ((ret = device_of(s, p, len, &d, &dev)))
			return ret;
		if ((s->devices_done >> dev & 1) || s->st.complete)
			return fail(s, -EPROTO, "bad end of device %u", dev);
		if (!s->st.switched_over)
			return fail(s, -EPROTO, "device %u ended before switchover", dev);
		ret = s->ops->device_done(s->opaque, dev);
		if (ret)
			return fail(s, ret, "device %u rejected its state (%d)", dev, ret);
		s->devices_done |= 1ULL << dev;
		return 0;
	case DMALOG_FRAME_ROUND:
		if (dmalog_frame_decode(s->type, p, len, &round) || s->phase != STREAMING)
			return fail(s, -EPROTO, "bad round frame");
		return take_round(s, &round);
	case DMALOG_FRAME_SWITCHOVER:
		if (len || s->st.switched_over)
			return fail(s, -EPROTO, "bad switchover frame");
		s->st.switched_over = true;
		return 0;
	case DMALOG_FRAME_COMPLETE:
		if (len || s->st.complete)
			return fail(s, -EPROTO, "bad complete frame");
		if (!s->st.switched_over || s->devices_done != all_devices(s))
			return fail(s, -EPROTO, "final state incomplete");
		s->st.complete = true;
		ret = s->ops && s->ops->complete ? s->ops->complete(s->opaque) : 0;
		return ret ? fail(s, ret, "could not resume the guest (%d)", ret) : 0;
	case DMALOG_FRAME_VERIFY:
		if (dmalog_frame_decode(s->type, p, len, &verify) || s->st.verify_asked)
			return fail(s, -EPROTO, "bad verify frame");
		if (!s->st.complete)
			return fail(s, -EPROTO, "verification before the final state");
		s->phase = VERIFYING;
		s->st.verify_asked = true;
		ret = s->ops && s->ops->verify ? s->ops->verify(s->opaque, verify.nonce) : 0;
		return ret ? fail(s, ret, "could not answer the verification (%d)", ret) : 0;
	case DMALOG_FRAME_RESULT:
		if (dmalog_frame_decode(s->type, p, len, &res) || !s->st.verify_asked ||
		    s->st.result)
			return fail(s, -EPROTO, "bad result frame");
		s->st.result = true;
		s->st.pages_compared = res.pages_compared;
		s->st.pages_mismatched = res.pages_mismatched;
		s->st.devices_compared = res.devices_compared;
		s->st.devices_mismatched = res.devices_mismatched;
		return 0;
	case DMALOG_FRAME_END:
		if (dmalog_frame_decode(s->type, p, len, &end) || end.frames != s->st.frames - 1)
			return fail(s, -EPROTO, "bad end frame");
		if (!s->st.complete)
			return fail(s, -EPROTO, "stream ended before the final state arrived");
		if (s->st.verify_asked && !s->st.result)
			return fail(s, -EPROTO,
				    "stream ended before the result of its verification");
		s->phase = ENDED;
		return 1;
	default:
		return fail(s, -EPROTO, "unexpected frame type %u (%s)", s->type,
			    dmalog_frame_type_name(s->type));
	}
}

/* A header has arrived whole: check it and get ready for the payload. */
static int take_header(struct dmalog_sink *s)
{
	int ret;

	s->hdr_have = 0;
	ret = dmalog_frame_parse_header(s->hdr, &s->type, &s->seq, &s->length, &s->payload_crc);
	if (ret == -E2BIG)
		return fail(s, ret, "frame too large: %u bytes (at most %u)", s->length,
			    DMALOG_FRAME_MAX_PAYLOAD);
	if (ret)
		return fail(s, ret, "corrupt frame header");
	/* Checked before its payload is even read: nothing of it is applied. */
	if (s->seq != s->st.frames)
		return fail(s, -EPROTO,
			    "frame %u (%s) arrived where frame %llu was expected: "
			    "lost, repeated or reordered",
			    s->seq, dmalog_frame_type_name(s->type),
			    (unsigned long long)s->st.frames);
	s->have = 0;
	s->in_payload = s->length > 0;
	s->direct = s->type == DMALOG_FRAME_PAGES && s->phase == STREAMING && !s->st.complete &&
		    s->length > sizeof(s->run);
	if (!s->direct && s->length > s->cap) {
		uint8_t *p = realloc(s->payload, s->length);

		if (!p)
			return fail(s, -ENOMEM, "out of memory");
		s->payload = p;
		s->cap = s->length;
	}
	return 0;
}

/* A whole buffered frame: check, then take it. */
static int end_frame(struct dmalog_sink *s)
{
	s->in_payload = false;
	if (s->length && dmalog_crc32c(0, s->payload, s->length) != s->payload_crc)
		return fail(s, -EBADMSG, "checksum mismatch in a %s frame",
			    dmalog_frame_type_name(s->type));
	if (!s->length && s->payload_crc)
		return fail(s, -EBADMSG, "corrupt frame header");
	return take_frame(s, s->payload, s->length);
}

/* Where the next page bytes of a direct PAGES frame go: guest memory, up to a region's end. */
static uint8_t *direct_dst(const struct dmalog_sink *s, size_t *len)
{
	uint64_t done = s->have - sizeof(s->run),
		 page = s->run.first_page + (done >> s->page_shift);
	uint64_t in_page = done & ((1ULL << s->page_shift) - 1), left;
	uint8_t *dst = page_at(s, page, &left);

	*len = (left << s->page_shift) - in_page;
	if (*len > s->length - s->have)
		*len = s->length - s->have;
	return dst + in_page;
}

/* Where the next bytes go (as dmalog_sink_recv_buffer()); true when that is guest memory. */
static bool next_buffer(struct dmalog_sink *s, void **buf, size_t *len)
{
	if (!s->in_payload) {
		*buf = s->hdr + s->hdr_have;
		*len = DMALOG_FRAME_HDR_BYTES - s->hdr_have;
	} else if (s->direct && s->have >= sizeof(s->run)) {
		*buf = direct_dst(s, len);
		return true;
	} else {
		uint32_t end = s->direct ? (uint32_t)sizeof(s->run) : s->length;

		*buf = (s->direct ? (uint8_t *)&s->run : s->payload) + s->have;
		*len = end - s->have;
	}
	return false;
}

void dmalog_sink_recv_buffer(struct dmalog_sink *s, void **buf, size_t *len)
{
	next_buffer(s, buf, len);
}

/*
 * @n bytes of a direct PAGES frame have landed where dmalog_sink_recv_buffer() said, @at;
 * @crc_done when the checksum already runs over those of them that are pages.
 */
static int direct_received(struct dmalog_sink *s, const uint8_t *at, size_t n, bool crc_done)
{
	struct dmalog_frame_run run;

	if (s->have < sizeof(s->run)) {
		s->have += (uint32_t)n;
		if (s->have < sizeof(s->run))
			return 0;
		/* The run is checked before a byte of it reaches guest memory. */
		memcpy(&run, &s->run, sizeof(run));
		if (page_run(s, (const uint8_t *)&run, s->length, s->page_shift, &s->run))
			return s->err;
		s->crc_have = dmalog_crc32c(0, &run, sizeof(run));
		return 0;
	}
	if (!crc_done)
		s->crc_have = dmalog_crc32c(s->crc_have, at, n);
	s->have += (uint32_t)n;
	if (s->have < s->length)
		return 0;
	/*
	 * The pages are already in place: a bad checksum fails the stream, and the guest they
	 * landed in never runs (the destination resumes only after COMPLETE).
	 */
	s->in_payload = false;
	if (s->crc_have != s->payload_crc)
		return fail(s, -EBADMSG, "checksum mismatch in a %s frame",
			    dmalog_frame_type_name(s->type));
	s->st.frames++;
	s->st.pages += s->run.count;
	s->round_pages += s->run.count;
	return 0;
}

static int received(struct dmalog_sink *s, size_t n, bool crc_done)
{
	void *at;
	size_t room;
	int ret = 0;

	if (s->phase == FAILED)
		return s->err;
	if (s->phase == ENDED)
		return fail(s, -EPROTO, "data after the end of the stream");
	dmalog_sink_recv_buffer(s, &at, &room);
	if (!n || n > room)
		return fail(s, -EINVAL, "received %zu bytes where %zu were room", n, room);
	if (!s->in_payload) {
		s->hdr_have += (uint32_t)n;
		if (s->hdr_have < DMALOG_FRAME_HDR_BYTES)
			return 0;
		ret = take_header(s);
		if (!ret && !s->in_payload)
			ret = end_frame(s);
	} else if (s->direct) {
		ret = direct_received(s, at, n, crc_done);
	} else {
		s->have += (uint32_t)n;
		if (s->have == s->length)
			ret = end_frame(s);
	}
	if (ret < 0)
		return ret;
	return s->phase == ENDED ? 1 : 0;
}

int dmalog_sink_received(struct dmalog_sink *s, size_t n)
{
	return received(s, n, false);
}

int dmalog_sink_feed(struct dmalog_sink *s, const void *data, size_t length)
{
	const uint8_t *in = data;

	if (s->phase == FAILED)
		return s->err;
	while (length) {
		void *buf;
		size_t room;
		bool pages;
		int ret;

		if (s->phase == ENDED)
			return fail(s, -EPROTO, "data after the end of the stream");
		pages = next_buffer(s, &buf, &room);
		if (room > length)
			room = length;
		/*
		 * Pages are copied into guest memory and checksummed in one pass, past the
		 * caches: nothing reads them before the guest runs.
		 */
		if (pages)
			s->crc_have = dmalog_crc32c_copy_cold(s->crc_have, buf, in, room);
		else
			memcpy(buf, in, room);
		in += room;
		length -= room;
		ret = received(s, room, pages);
		if (ret < 0)
			return ret;
	}
	return s->phase == ENDED ? 1 : 0;
}

const char *dmalog_sink_error(const struct dmalog_sink *s)
{
	return s->error;
}

void dmalog_sink_get_stats(const struct dmalog_sink *s, struct dmalog_sink_stats *st)
{
	*st = s->st;
}
