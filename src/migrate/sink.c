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
	uint8_t *mem;
	uint64_t mem_bytes, npages;
	unsigned int page_shift;
	uint32_t ndevices;
	const struct dmalog_sink_ops *ops;
	void *opaque;

	uint8_t hdr[DMALOG_FRAME_HDR_BYTES];
	uint32_t hdr_have;
	bool in_payload;
	uint16_t type;
	uint32_t length, payload_crc, have;
	uint8_t *payload;
	uint32_t cap;

	enum phase phase;
	int err;
	uint64_t devices_done; /* bit per device */
	struct dmalog_sink_stats st;
	char error[160];
};

int dmalog_sink_create(uint8_t *mem, uint64_t mem_bytes, unsigned int page_shift, uint32_t ndevices,
		       const struct dmalog_sink_ops *ops, void *opaque, struct dmalog_sink **out)
{
	struct dmalog_sink *s;

	if (!mem || page_shift < 9 || page_shift > 30 || !mem_bytes ||
	    (mem_bytes & ((1ULL << page_shift) - 1)) || ndevices > DMALOG_STREAM_MAX_DEVICES ||
	    (ndevices && !ops))
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->mem = mem;
	s->mem_bytes = mem_bytes;
	s->page_shift = page_shift;
	s->npages = mem_bytes >> page_shift;
	s->ndevices = ndevices;
	s->ops = ops;
	s->opaque = opaque;
	*out = s;
	return 0;
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
	if (s->type != DMALOG_FRAME_HELLO || len != 24)
		return fail(s, -EPROTO, "stream does not start with a hello");
	if (get32(p) != DMALOG_STREAM_VERSION)
		return fail(s, -EPROTO, "unsupported stream version %u", get32(p));
	if (get32(p + 4) != s->page_shift || get64(p + 8) != s->mem_bytes ||
	    get32(p + 16) != s->ndevices)
		return fail(s, -EPROTO,
			    "mismatched stream: page shift %u, %llu guest bytes, %u devices "
			    "(here: %u, %llu, %u)",
			    get32(p + 4), (unsigned long long)get64(p + 8), get32(p + 16),
			    s->page_shift, (unsigned long long)s->mem_bytes, s->ndevices);
	s->phase = STREAMING;
	return 0;
}

/* PAGES and VERIFY_PAGES share a shape: first page, count, then count items. */
static int page_run(struct dmalog_sink *s, const uint8_t *p, uint32_t len, unsigned int shift,
		    uint64_t *first, uint64_t *count)
{
	if (len < 16)
		return fail(s, -EPROTO, "short page frame");
	*first = get64(p);
	*count = get32(p + 8);
	if (!*count || *count > s->npages || *first > s->npages - *count)
		return fail(s, -EPROTO, "pages outside guest memory");
	if (len - 16 != *count << shift)
		return fail(s, -EPROTO, "page frame length does not match its count");
	return 0;
}

static int take_pages(struct dmalog_sink *s, const uint8_t *p, uint32_t len)
{
	uint64_t first, count;
	int ret = page_run(s, p, len, s->page_shift, &first, &count);

	if (ret)
		return ret;
	memcpy(s->mem + (first << s->page_shift), p + 16, count << s->page_shift);
	s->st.pages += count;
	return 0;
}

static int take_verify_pages(struct dmalog_sink *s, const uint8_t *p, uint32_t len)
{
	uint64_t first, count, size = 1ULL << s->page_shift;
	int ret = page_run(s, p, len, 3, &first, &count);

	if (ret)
		return ret;
	for (uint64_t i = 0; i < count; i++) {
		uint64_t h = dmalog_page_hash(s->mem + ((first + i) << s->page_shift), size);

		s->st.pages_compared++;
		s->st.pages_mismatched += h != get64(p + 16 + 8 * i);
	}
	return 0;
}

static int device_of(struct dmalog_sink *s, const uint8_t *p, uint32_t len, uint32_t want,
		     uint32_t *dev)
{
	if (len < want)
		return fail(s, -EPROTO, "short device frame");
	*dev = get32(p);
	if (*dev >= s->ndevices)
		return fail(s, -EPROTO, "no device %u in this guest", *dev);
	return 0;
}

static uint64_t all_devices(const struct dmalog_sink *s)
{
	return s->ndevices == 64 ? ~0ULL : (1ULL << s->ndevices) - 1;
}

static int take_frame(struct dmalog_sink *s, const uint8_t *p, uint32_t len)
{
	uint32_t dev = 0;
	int ret;

	s->st.frames++;
	if (s->phase == WANT_HELLO)
		return take_hello(s, p, len);
	switch (s->type) {
	case DMALOG_FRAME_PAGES:
		if (s->phase != STREAMING || s->st.complete)
			return fail(s, -EPROTO, "pages after the final state was complete");
		return take_pages(s, p, len);
	case DMALOG_FRAME_DEVICE_DATA:
		if ((ret = device_of(s, p, len, 8, &dev)))
			return ret;
		if (s->phase != STREAMING || s->st.complete || (s->devices_done >> dev & 1))
			return fail(s, -EPROTO, "data for device %u after its end", dev);
		ret = s->ops->device_data(s->opaque, dev, p + 8, len - 8);
		if (ret)
			return fail(s, ret, "device %u refused its data (%d)", dev, ret);
		s->st.device_bytes += len - 8;
		return 0;
	case DMALOG_FRAME_DEVICE_DONE:
		if ((ret = device_of(s, p, len, 8, &dev)))
			return ret;
		if (len != 8 || (s->devices_done >> dev & 1) || s->st.complete)
			return fail(s, -EPROTO, "bad end of device %u", dev);
		if (!s->st.switched_over)
			return fail(s, -EPROTO, "device %u ended before switchover", dev);
		ret = s->ops->device_done(s->opaque, dev);
		if (ret)
			return fail(s, ret, "device %u rejected its state (%d)", dev, ret);
		s->devices_done |= 1ULL << dev;
		return 0;
	case DMALOG_FRAME_ROUND:
		if (len != 16 || s->phase != STREAMING)
			return fail(s, -EPROTO, "bad round frame");
		s->st.rounds++;
		return 0;
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
	case DMALOG_FRAME_VERIFY_PAGES:
		if (!s->st.complete)
			return fail(s, -EPROTO, "verification before the final state");
		s->phase = VERIFYING;
		return take_verify_pages(s, p, len);
	case DMALOG_FRAME_VERIFY_DEVICE:
		if ((ret = device_of(s, p, len, 16, &dev)))
			return ret;
		if (len != 16 || !s->st.complete)
			return fail(s, -EPROTO, "device %u verified before the final state", dev);
		s->phase = VERIFYING;
		s->st.devices_compared++;
		s->st.devices_mismatched += !s->ops->device_verify(s->opaque, dev, get64(p + 8));
		return 0;
	case DMALOG_FRAME_END:
		if (len != 8 || get64(p) != s->st.frames - 1)
			return fail(s, -EPROTO, "bad end frame");
		if (!s->st.complete)
			return fail(s, -EPROTO, "stream ended before the final state arrived");
		s->phase = ENDED;
		return 1;
	default:
		return fail(s, -EPROTO, "unexpected frame type %u", s->type);
	}
}

int dmalog_sink_feed(struct dmalog_sink *s, const void *data, size_t length)
{
	const uint8_t *in = data;

	if (s->phase == FAILED)
		return s->err;
	while (length) {
		int ret;

		if (s->phase == ENDED)
			return fail(s, -EPROTO, "data after the end of the stream");
		if (!s->in_payload) {
			uint32_t n = DMALOG_FRAME_HDR_BYTES - s->hdr_have;

			if (n > length)
				n = length;
			memcpy(s->hdr + s->hdr_have, in, n);
			s->hdr_have += n;
			in += n;
			length -= n;
			if (s->hdr_have < DMALOG_FRAME_HDR_BYTES)
				break;
			s->hdr_have = 0;
			ret = dmalog_frame_parse_header(s->hdr, &s->type, &s->length,
							&s->payload_crc);
			if (ret)
				return fail(s, ret,
					    ret == -E2BIG ? "frame too large"
							  : "corrupt frame header");
			s->have = 0;
			s->in_payload = s->length > 0;
			if (s->length > s->cap) {
				uint8_t *p = realloc(s->payload, s->length);

				if (!p)
					return fail(s, -ENOMEM, "out of memory");
				s->payload = p;
				s->cap = s->length;
			}
			if (s->in_payload)
				continue;
		} else {
			uint32_t n = s->length - s->have;

			if (n > length)
				n = length;
			memcpy(s->payload + s->have, in, n);
			s->have += n;
			in += n;
			length -= n;
			if (s->have < s->length)
				break;
			s->in_payload = false;
		}
		/* A whole frame: check, then take it. */
		if (s->length && dmalog_crc32c(0, s->payload, s->length) != s->payload_crc)
			return fail(s, -EBADMSG, "checksum mismatch in a frame of type %u",
				    s->type);
		if (!s->length && s->payload_crc)
			return fail(s, -EBADMSG, "corrupt frame header");
		ret = take_frame(s, s->payload, s->length);
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
