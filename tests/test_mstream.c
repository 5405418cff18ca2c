// SPDX-License-Identifier: MIT
/*
 * The migration stream: a whole stream applied at once and a byte at a time, verification
 * counting mismatches, and every malformed, corrupt, mismatched or out-of-order input refused
 * with a reason (never a write outside guest memory: ASan watches the exact-size buffer).
 */
#include <errno.h>
#include <string.h>

#include "helpers.h"

#define PAGE  4096
#define PAGES 16

struct stream {
	uint8_t *buf;
	size_t len;
	uint64_t frames;
};

static void put(struct stream *st, uint16_t type, const void *payload, uint32_t len)
{
	st->buf = realloc(st->buf, st->len + DMALOG_FRAME_HDR_BYTES + len);
	dmalog_frame_header(st->buf + st->len, type, payload, len);
	if (len)
		memcpy(st->buf + st->len + DMALOG_FRAME_HDR_BYTES, payload, len);
	st->len += DMALOG_FRAME_HDR_BYTES + len;
	st->frames++;
}

static void put_hello(struct stream *st, uint32_t version, uint32_t shift, uint64_t bytes,
		      uint32_t ndev)
{
	uint8_t p[24] = {0};

	memcpy(p, &version, 4);
	memcpy(p + 4, &shift, 4);
	memcpy(p + 8, &bytes, 8);
	memcpy(p + 16, &ndev, 4);
	put(st, DMALOG_FRAME_HELLO, p, sizeof(p));
}

static void put_pages(struct stream *st, uint16_t type, uint64_t first, uint32_t count,
		      const void *items, size_t item_bytes)
{
	uint8_t *p = calloc(1, 16 + count * item_bytes);

	memcpy(p, &first, 8);
	memcpy(p + 8, &count, 4);
	memcpy(p + 16, items, count * item_bytes);
	put(st, type, p, 16 + count * item_bytes);
	free(p);
}

static void put_dev(struct stream *st, uint16_t type, uint32_t dev, const void *data, uint32_t len)
{
	uint8_t p[64] = {0};

	memcpy(p, &dev, 4);
	if (len)
		memcpy(p + 8, data, len);
	put(st, type, p, 8 + len);
}

static void put_u64(struct stream *st, uint16_t type, uint64_t v)
{
	put(st, type, &v, 8);
}

struct fake_dev {
	char got[64];
	size_t len;
	int done_ret;
	bool done, resumed;
	uint64_t hash;
};

static int dev_data(void *o, uint32_t dev, const void *data, uint32_t len)
{
	struct fake_dev *d = o;

	memcpy(d->got + d->len, data, len);
	d->len += len;
	return 0;
}

static int dev_done(void *o, uint32_t dev)
{
	struct fake_dev *d = o;

	d->done = true;
	return d->done_ret;
}

static bool dev_verify(void *o, uint32_t dev, uint64_t hash)
{
	return ((struct fake_dev *)o)->hash == hash;
}

static int dev_complete(void *o)
{
	struct fake_dev *d = o;

	assert_true(d->done);
	d->resumed = true;
	return 0;
}

static const struct dmalog_sink_ops ops = {dev_data, dev_done, dev_verify, dev_complete};

/* A good stream of @src (PAGES pages) with one device whose state is "state". */
static struct stream good_stream(const uint8_t *src, bool corrupt_verify)
{
	struct stream st = {0};
	uint64_t hashes[PAGES], round[2] = {1, PAGES};
	uint64_t dev_hash = 42;

	put_hello(&st, DMALOG_STREAM_VERSION, 12, PAGES * PAGE, 1);
	put_pages(&st, DMALOG_FRAME_PAGES, 0, PAGES / 2, src, PAGE);
	put_dev(&st, DMALOG_FRAME_DEVICE_DATA, 0, "sta", 3);
	put(&st, DMALOG_FRAME_ROUND, round, sizeof(round));
	put(&st, DMALOG_FRAME_SWITCHOVER, NULL, 0);
	put_pages(&st, DMALOG_FRAME_PAGES, PAGES / 2, PAGES / 2, src + PAGES / 2 * PAGE, PAGE);
	put_dev(&st, DMALOG_FRAME_DEVICE_DATA, 0, "te", 2);
	put_dev(&st, DMALOG_FRAME_DEVICE_DONE, 0, NULL, 0);
	put(&st, DMALOG_FRAME_COMPLETE, NULL, 0);
	for (int i = 0; i < PAGES; i++)
		hashes[i] = dmalog_page_hash(src + i * PAGE, PAGE) ^ (corrupt_verify && i == 5);
	put_pages(&st, DMALOG_FRAME_VERIFY_PAGES, 0, PAGES, hashes, 8);
	put_dev(&st, DMALOG_FRAME_VERIFY_DEVICE, 0, &dev_hash, 8);
	put_u64(&st, DMALOG_FRAME_END, st.frames);
	return st;
}

static uint8_t *source_memory(void)
{
	uint8_t *src = malloc(PAGES * PAGE);

	for (size_t i = 0; i < PAGES * PAGE; i++)
		src[i] = (uint8_t)(i * 7 + i / 4096);
	return src;
}

static void whole_and_bytewise(void **state)
{
	uint8_t *src = source_memory();

	for (int bytewise = 0; bytewise < 2; bytewise++) {
		struct stream st = good_stream(src, false);
		uint8_t *dst = calloc(1, PAGES * PAGE);
		struct fake_dev dev = {.hash = 42};
		struct dmalog_sink *sink;
		struct dmalog_sink_stats stats;
		int ret = 0;

		assert_int_equal(dmalog_sink_create(dst, PAGES * PAGE, 12, 1, &ops, &dev, &sink),
				 0);
		if (bytewise) {
			for (size_t i = 0; i < st.len; i++) {
				ret = dmalog_sink_feed(sink, st.buf + i, 1);
				assert_int_equal(ret, i + 1 == st.len ? 1 : 0);
			}
		} else {
			ret = dmalog_sink_feed(sink, st.buf, st.len);
		}
		assert_int_equal(ret, 1);
		assert_memory_equal(dst, src, PAGES * PAGE);
		assert_int_equal(dev.len, 5);
		assert_memory_equal(dev.got, "state", 5);
		assert_true(dev.done);
		assert_true(dev.resumed);
		dmalog_sink_get_stats(sink, &stats);
		assert_int_equal(stats.pages, PAGES);
		assert_int_equal(stats.pages_compared, PAGES);
		assert_int_equal(stats.pages_mismatched, 0);
		assert_int_equal(stats.devices_compared, 1);
		assert_int_equal(stats.devices_mismatched, 0);
		assert_int_equal(stats.rounds, 1);
		/* Nothing may follow the end. */
		assert_int_equal(dmalog_sink_feed(sink, "x", 1), -EPROTO);
		dmalog_sink_destroy(sink);
		free(st.buf);
		free(dst);
	}
	free(src);
}

static void verification_counts_mismatches(void **state)
{
	uint8_t *src = source_memory(), *dst = calloc(1, PAGES * PAGE);
	struct stream st = good_stream(src, true);
	struct fake_dev dev = {.hash = 41};
	struct dmalog_sink *sink;
	struct dmalog_sink_stats stats;

	assert_int_equal(dmalog_sink_create(dst, PAGES * PAGE, 12, 1, &ops, &dev, &sink), 0);
	assert_int_equal(dmalog_sink_feed(sink, st.buf, st.len), 1);
	dmalog_sink_get_stats(sink, &stats);
	assert_int_equal(stats.pages_mismatched, 1);
	assert_int_equal(stats.devices_mismatched, 1);
	dmalog_sink_destroy(sink);
	free(st.buf);
	free(src);
	free(dst);
}

/* Feed @st to a fresh sink; expect failure with @errno and @reason in the message. */
static void expect_refused(struct stream *st, int err, const char *reason, int done_ret)
{
	uint8_t *dst = calloc(1, PAGES * PAGE);
	struct fake_dev dev = {.done_ret = done_ret};
	struct dmalog_sink *sink;
	int ret;

	assert_int_equal(dmalog_sink_create(dst, PAGES * PAGE, 12, 1, &ops, &dev, &sink), 0);
	ret = dmalog_sink_feed(sink, st->buf, st->len);
	if (ret != err || !strstr(dmalog_sink_error(sink), reason))
		fail_msg("got %d '%s', want %d '%s'", ret, dmalog_sink_error(sink), err, reason);
	/* The stream stays refused. */
	assert_int_equal(dmalog_sink_feed(sink, "", 1), err);
	dmalog_sink_destroy(sink);
	free(st->buf);
	free(dst);
}

static void refusals(void **state)
{
	uint8_t *src = source_memory();
	uint64_t one = 1;
	struct stream st;

	st = (struct stream){0};
	put_pages(&st, DMALOG_FRAME_PAGES, 0, 1, src, PAGE);
	expect_refused(&st, -EPROTO, "does not start with a hello", 0);

	st = (struct stream){0};
	put_hello(&st, 1, 12, PAGES * PAGE, 1);
	expect_refused(&st, -EPROTO, "unsupported stream version", 0);

	st = (struct stream){0};
	put_hello(&st, DMALOG_STREAM_VERSION, 12, 2 * PAGES * PAGE, 1);
	expect_refused(&st, -EPROTO, "mismatched stream", 0);

	st = good_stream(src, false);
	st.buf[DMALOG_FRAME_HDR_BYTES * 2 + 24 + 100] ^= 1; /* inside the first PAGES payload */
	expect_refused(&st, -EBADMSG, "checksum mismatch", 0);

	st = good_stream(src, false);
	st.buf[3] ^= 0x40;
	expect_refused(&st, -EBADMSG, "corrupt frame header", 0);

	st = (struct stream){0};
	put_hello(&st, DMALOG_STREAM_VERSION, 12, PAGES * PAGE, 1);
	put_pages(&st, DMALOG_FRAME_PAGES, PAGES - 1, 2, src, PAGE);
	expect_refused(&st, -EPROTO, "outside guest memory", 0);

	st = (struct stream){0};
	put_hello(&st, DMALOG_STREAM_VERSION, 12, PAGES * PAGE, 1);
	put_pages(&st, DMALOG_FRAME_PAGES, UINT64_MAX, 1, src, PAGE);
	expect_refused(&st, -EPROTO, "outside guest memory", 0);

	st = (struct stream){0};
	put_hello(&st, DMALOG_STREAM_VERSION, 12, PAGES * PAGE, 1);
	put_dev(&st, DMALOG_FRAME_DEVICE_DATA, 3, "x", 1);
	expect_refused(&st, -EPROTO, "no device 3", 0);

	st = (struct stream){0};
	put_hello(&st, DMALOG_STREAM_VERSION, 12, PAGES * PAGE, 1);
	put(&st, DMALOG_FRAME_SWITCHOVER, NULL, 0);
	put_dev(&st, DMALOG_FRAME_DEVICE_DONE, 0, NULL, 0);
	expect_refused(&st, -EINVAL, "rejected its state", -EINVAL);

	st = (struct stream){0};
	put_hello(&st, DMALOG_STREAM_VERSION, 12, PAGES * PAGE, 1);
	put_dev(&st, DMALOG_FRAME_DEVICE_DONE, 0, NULL, 0);
	expect_refused(&st, -EPROTO, "ended before switchover", 0);

	st = (struct stream){0};
	put_hello(&st, DMALOG_STREAM_VERSION, 12, PAGES * PAGE, 1);
	put(&st, DMALOG_FRAME_SWITCHOVER, NULL, 0);
	put(&st, DMALOG_FRAME_COMPLETE, NULL, 0);
	expect_refused(&st, -EPROTO, "final state incomplete", 0);

	/* Once the guest resumed at the destination, no page may change under it. */
	st = (struct stream){0};
	put_hello(&st, DMALOG_STREAM_VERSION, 12, PAGES * PAGE, 1);
	put(&st, DMALOG_FRAME_SWITCHOVER, NULL, 0);
	put_dev(&st, DMALOG_FRAME_DEVICE_DONE, 0, NULL, 0);
	put(&st, DMALOG_FRAME_COMPLETE, NULL, 0);
	put_pages(&st, DMALOG_FRAME_PAGES, 0, 1, src, PAGE);
	expect_refused(&st, -EPROTO, "pages after the final state", 0);

	st = (struct stream){0};
	put_hello(&st, DMALOG_STREAM_VERSION, 12, PAGES * PAGE, 1);
	put(&st, DMALOG_FRAME_SWITCHOVER, NULL, 0);
	put_pages(&st, DMALOG_FRAME_VERIFY_PAGES, 0, 1, &one, 8);
	expect_refused(&st, -EPROTO, "verification before the final state", 0);

	st = (struct stream){0};
	put_hello(&st, DMALOG_STREAM_VERSION, 12, PAGES * PAGE, 1);
	put_u64(&st, DMALOG_FRAME_END, 1);
	expect_refused(&st, -EPROTO, "ended before the final state", 0);

	st = (struct stream){0};
	put_hello(&st, DMALOG_STREAM_VERSION, 12, PAGES * PAGE, 1);
	put(&st, DMALOG_FRAME_SWITCHOVER, NULL, 0);
	put(&st, DMALOG_FRAME_SWITCHOVER, NULL, 0);
	expect_refused(&st, -EPROTO, "bad switchover", 0);

	st = (struct stream){0};
	put_hello(&st, DMALOG_STREAM_VERSION, 12, PAGES * PAGE, 1);
	put(&st, 77, &one, 8);
	expect_refused(&st, -EPROTO, "unexpected frame type 77", 0);

	/* A header announcing more than a frame may hold. */
	st = (struct stream){0};
	put_hello(&st, DMALOG_STREAM_VERSION, 12, PAGES * PAGE, 1);
	st.buf = realloc(st.buf, st.len + DMALOG_FRAME_HDR_BYTES);
	dmalog_frame_header(st.buf + st.len, DMALOG_FRAME_PAGES, NULL,
			    DMALOG_FRAME_MAX_PAYLOAD + 1);
	st.len += DMALOG_FRAME_HDR_BYTES;
	expect_refused(&st, -E2BIG, "too large", 0);
	free(src);
}

/* A truncated stream is simply not finished: the caller sees no END at EOF. */
static void truncated_wants_more(void **state)
{
	uint8_t *src = source_memory(), *dst = calloc(1, PAGES * PAGE);
	struct stream st = good_stream(src, false);
	struct fake_dev dev = {.hash = 42};
	struct dmalog_sink *sink;

	assert_int_equal(dmalog_sink_create(dst, PAGES * PAGE, 12, 1, &ops, &dev, &sink), 0);
	assert_int_equal(dmalog_sink_feed(sink, st.buf, st.len - 3), 0);
	dmalog_sink_destroy(sink);
	assert_int_equal(dmalog_sink_create(dst, 3, 12, 1, &ops, &dev, &sink), -EINVAL);
	free(st.buf);
	free(src);
	free(dst);
}

/* The payload checksum is CRC-32C, whatever the length and alignment (both implementations). */
static void payload_crc_is_crc32c(void **state)
{
	static const char check[] = "123456789";
	uint8_t hdr[DMALOG_FRAME_HDR_BYTES], buf[80];
	uint16_t type;
	uint32_t len, crc;

	dmalog_frame_header(hdr, DMALOG_FRAME_PAGES, check, 9);
	assert_int_equal(dmalog_frame_parse_header(hdr, &type, &len, &crc), 0);
	assert_int_equal(crc, 0xe3069283u);
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 131 + 17);
	for (uint32_t off = 0; off < 8; off++) {
		for (uint32_t n = 1; off + n <= sizeof(buf); n++) {
			uint32_t want = ~0u;

			for (uint32_t i = 0; i < n; i++) {
				want ^= buf[off + i];
				for (int k = 0; k < 8; k++)
					want = want & 1 ? 0x82f63b78u ^ (want >> 1) : want >> 1;
			}
			dmalog_frame_header(hdr, DMALOG_FRAME_PAGES, buf + off, n);
			assert_int_equal(dmalog_frame_parse_header(hdr, &type, &len, &crc), 0);
			assert_int_equal(crc, ~want);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(whole_and_bytewise),
		cmocka_unit_test(verification_counts_mismatches),
		cmocka_unit_test(refusals),
		cmocka_unit_test(truncated_wants_more),
		cmocka_unit_test(payload_crc_is_crc32c),
	};

	return cmocka_run_group_tests_name("mstream", tests, NULL, NULL);
}
