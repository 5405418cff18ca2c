// SPDX-License-Identifier: MIT
/*
 * The migration stream: a whole stream applied at once and a byte at a time, the source's
 * verification result taken, the keyed page digest, every frame checked, and every malformed,
 * corrupt, mismatched, out-of-sequence or out-of-order input refused
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
	size_t frame_at[32]; /* where each frame starts, to damage them one by one */
};

/* A frame numbered as the next one of the stream. */
static void put_seq(struct stream *st, uint16_t type, uint32_t seq, const void *payload,
		    uint32_t len)
{
	st->buf = realloc(st->buf, st->len + DMALOG_FRAME_HDR_BYTES + len);
	dmalog_frame_header(st->buf + st->len, type, seq, payload, len);
	if (len)
		memcpy(st->buf + st->len + DMALOG_FRAME_HDR_BYTES, payload, len);
	if (st->frames < 32)
		st->frame_at[st->frames] = st->len;
	st->len += DMALOG_FRAME_HDR_BYTES + len;
	st->frames++;
}

static void put(struct stream *st, uint16_t type, const void *payload, uint32_t len)
{
	put_seq(st, type, (uint32_t)st->frames, payload, len);
}

/* A frame of only its typed fixed part. */
static void put_msg(struct stream *st, uint16_t type, const void *msg)
{
	uint8_t p[64];
	int fixed = dmalog_frame_fixed_bytes(type);

	assert_true(fixed >= 0 && fixed <= (int)sizeof(p));
	dmalog_frame_encode(type, msg, p);
	put(st, type, p, (uint32_t)fixed);
}

static void put_hello(struct stream *st, uint32_t version, uint32_t shift, uint64_t bytes,
		      uint32_t ndev)
{
	/* No regions; a device name of 32 NUL bytes per device. */
	struct dmalog_frame_hello h = {version, shift, bytes, ndev, 0, 1, 0};
	uint8_t p[sizeof(h) + 8 * DMALOG_HELLO_NAME_BYTES] = {0};

	assert_true(ndev <= 8);
	dmalog_frame_encode(DMALOG_FRAME_HELLO, &h, p);
	put(st, DMALOG_FRAME_HELLO, p, sizeof(h) + ndev * DMALOG_HELLO_NAME_BYTES);
}

static void put_pages(struct stream *st, uint64_t first, uint32_t count, const void *pages)
{
	struct dmalog_frame_run run = {.first_page = first, .count = count};
	uint8_t *p = calloc(1, sizeof(run) + count * PAGE);

	dmalog_frame_encode(DMALOG_FRAME_PAGES, &run, p);
	memcpy(p + sizeof(run), pages, count * PAGE);
	put(st, DMALOG_FRAME_PAGES, p, sizeof(run) + count * PAGE);
	free(p);
}

static void put_dev(struct stream *st, uint16_t type, uint32_t dev, const void *data, uint32_t len)
{
	struct dmalog_frame_device d = {.device = dev};
	uint8_t p[64];

	dmalog_frame_encode(type, &d, p);
	if (len)
		memcpy(p + sizeof(d), data, len);
	put(st, type, p, sizeof(d) + len);
}

static void put_end(struct stream *st)
{
	struct dmalog_frame_end end = {.frames = st->frames};

	put_msg(st, DMALOG_FRAME_END, &end);
}

struct fake_dev {
	char got[64];
	size_t len;
	int done_ret;
	bool done, resumed;
	uint64_t nonce; /* what VERIFY asked */
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

static int dev_complete(void *o)
{
	struct fake_dev *d = o;

	assert_true(d->done);
	d->resumed = true;
	return 0;
}

static int dev_verify(void *o, uint64_t nonce)
{
	((struct fake_dev *)o)->nonce = nonce;
	return 0;
}

static const struct dmalog_sink_ops ops = {dev_data, dev_done, dev_complete, dev_verify, NULL};

#define NONCE 0x1234abcd5678ef01ULL

/* A good stream of @src (PAGES pages) with one device whose state is "state". */
static struct stream good_stream(const uint8_t *src, uint64_t mismatched)
{
	struct stream st = {0};
	struct dmalog_frame_round round = {.round = 1, .pages = PAGES / 2};
	struct dmalog_frame_verify verify = {.nonce = NONCE};
	struct dmalog_frame_result result = {PAGES, mismatched, 1, (uint32_t)mismatched};

	put_hello(&st, DMALOG_STREAM_VERSION, 12, PAGES * PAGE, 1);
	put_pages(&st, 0, PAGES / 2, src);
	put_dev(&st, DMALOG_FRAME_DEVICE_DATA, 0, "sta", 3);
	put_msg(&st, DMALOG_FRAME_ROUND, &round);
	put(&st, DMALOG_FRAME_SWITCHOVER, NULL, 0);
	put_pages(&st, PAGES / 2, PAGES / 2, src + PAGES / 2 * PAGE);
	put_dev(&st, DMALOG_FRAME_DEVICE_DATA, 0, "te", 2);
	put_dev(&st, DMALOG_FRAME_DEVICE_DONE, 0, NULL, 0);
	put(&st, DMALOG_FRAME_COMPLETE, NULL, 0);
	put_msg(&st, DMALOG_FRAME_VERIFY, &verify);
	put_msg(&st, DMALOG_FRAME_RESULT, &result);
	put_end(&st);
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
		struct stream st = good_stream(src, 0);
		uint8_t *dst = calloc(1, PAGES * PAGE);
		struct fake_dev dev = {0};
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
		assert_int_equal(dev.nonce, NONCE);
		dmalog_sink_get_stats(sink, &stats);
		assert_int_equal(stats.pages, PAGES);
		assert_int_equal(stats.pages_compared, PAGES);
		assert_int_equal(stats.pages_mismatched, 0);
		assert_int_equal(stats.devices_compared, 1);
		assert_int_equal(stats.devices_mismatched, 0);
		assert_int_equal(stats.rounds, 1);
		assert_true(stats.verify_asked && stats.result);
		/* Nothing may follow the end. */
		assert_int_equal(dmalog_sink_feed(sink, "x", 1), -EPROTO);
		dmalog_sink_destroy(sink);
		free(st.buf);
		free(dst);
	}
	free(src);
}

/* The counts are the source's: the destination learns what was found, and keeps running. */
static void result_counts_taken(void **state)
{
	uint8_t *src = source_memory(), *dst = calloc(1, PAGES * PAGE);
	struct stream st = good_stream(src, 1);
	struct fake_dev dev = {0};
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

/* The keyed digest: every byte and the key count. */
static void page_digest_keyed(void **state)
{
	uint8_t *page = source_memory();
	uint64_t base = dmalog_page_digest(NONCE, page, PAGE);

	assert_int_not_equal(base, dmalog_page_digest(NONCE + 1, page, PAGE));
	for (size_t i = 0; i < PAGE; i += 511) {
		page[i] ^= 1;
		assert_int_not_equal(base, dmalog_page_digest(NONCE, page, PAGE));
		page[i] ^= 1;
	}
	page[PAGE - 1] ^= 0x80; /* the last byte */
	assert_int_not_equal(base, dmalog_page_digest(NONCE, page, PAGE));
	free(page);
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
	struct dmalog_frame_verify verify = {.nonce = 1};
	uint64_t one = 1;
	struct stream st;

	st = (struct stream){0};
	put_pages(&st, 0, 1, src);
	expect_refused(&st, -EPROTO, "does not start with a hello", 0);

	st = (struct stream){0};
	put_hello(&st, 1, 12, PAGES * PAGE, 1);
	expect_refused(&st, -EPROTO, "unsupported stream version", 0);

	st = (struct stream){0};
	put_hello(&st, DMALOG_STREAM_VERSION, 12, 2 * PAGES * PAGE, 1);
	expect_refused(&st, -EPROTO, "mismatched stream", 0);

	st = good_stream(src, 0);
	st.buf[DMALOG_FRAME_HDR_BYTES * 2 + 24 + 100] ^= 1; /* inside the first PAGES payload */
	expect_refused(&st, -EBADMSG, "checksum mismatch in a PAGES frame", 0);

	st = good_stream(src, 0);
	st.buf[3] ^= 0x40;
	expect_refused(&st, -EBADMSG, "corrupt frame header", 0);

	st = (struct stream){0};
	put_hello(&st, DMALOG_STREAM_VERSION, 12, PAGES * PAGE, 1);
	put_pages(&st, PAGES - 1, 2, src);
	expect_refused(&st, -EPROTO, "outside guest memory", 0);

	st = (struct stream){0};
	put_hello(&st, DMALOG_STREAM_VERSION, 12, PAGES * PAGE, 1);
	put_pages(&st, UINT64_MAX, 1, src);
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
	put_pages(&st, 0, 1, src);
	expect_refused(&st, -EPROTO, "pages after the final state", 0);

	st = (struct stream){0};
	put_hello(&st, DMALOG_STREAM_VERSION, 12, PAGES * PAGE, 1);
	put(&st, DMALOG_FRAME_SWITCHOVER, NULL, 0);
	put_msg(&st, DMALOG_FRAME_VERIFY, &verify);
	expect_refused(&st, -EPROTO, "verification before the final state", 0);

	/* The proof's frames go the other way: a source may not send them. */
	st = (struct stream){0};
	put_hello(&st, DMALOG_STREAM_VERSION, 12, PAGES * PAGE, 1);
	put(&st, DMALOG_FRAME_VERIFY_DEVICE, &one, 8);
	expect_refused(&st, -EPROTO, "unexpected frame type 8 (VERIFY_DEVICE)", 0);

	/* A result without its verification, and an end without its result. */
	st = (struct stream){0};
	put_hello(&st, DMALOG_STREAM_VERSION, 12, PAGES * PAGE, 1);
	put(&st, DMALOG_FRAME_SWITCHOVER, NULL, 0);
	put_dev(&st, DMALOG_FRAME_DEVICE_DONE, 0, NULL, 0);
	put(&st, DMALOG_FRAME_COMPLETE, NULL, 0);
	put_msg(&st, DMALOG_FRAME_RESULT, &(struct dmalog_frame_result){0});
	expect_refused(&st, -EPROTO, "bad result frame", 0);

	st = (struct stream){0};
	put_hello(&st, DMALOG_STREAM_VERSION, 12, PAGES * PAGE, 1);
	put(&st, DMALOG_FRAME_SWITCHOVER, NULL, 0);
	put_dev(&st, DMALOG_FRAME_DEVICE_DONE, 0, NULL, 0);
	put(&st, DMALOG_FRAME_COMPLETE, NULL, 0);
	put_msg(&st, DMALOG_FRAME_VERIFY, &verify);
	put_end(&st);
	expect_refused(&st, -EPROTO, "before the result of its verification", 0);

	st = (struct stream){0};
	put_hello(&st, DMALOG_STREAM_VERSION, 12, PAGES * PAGE, 1);
	put_end(&st);
	expect_refused(&st, -EPROTO, "ended before the final state", 0);

	/* Reserved fields are zero. */
	st = (struct stream){0};
	put_hello(&st, DMALOG_STREAM_VERSION, 12, PAGES * PAGE, 1);
	put_dev(&st, DMALOG_FRAME_DEVICE_DATA, 0, "x", 1);
	st.buf[st.frame_at[1] + DMALOG_FRAME_HDR_BYTES + 5] = 1;
	dmalog_frame_reseal(st.buf + st.frame_at[1]);
	expect_refused(&st, -EPROTO, "malformed DEVICE_DATA frame", 0);

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
	dmalog_frame_header(st.buf + st.len, DMALOG_FRAME_PAGES, 1, NULL,
			    DMALOG_FRAME_MAX_PAYLOAD + 1);
	st.len += DMALOG_FRAME_HDR_BYTES;
	expect_refused(&st, -E2BIG, "too large", 0);
	free(src);
}

/*
 * Frames carry their number: a frame lost, repeated or swapped with the next is refused at
 * once, before the guest could resume on stale pages (issue: sequence numbers on frames).
 */
static void out_of_sequence_refused(void **state)
{
	uint8_t *src = source_memory(), *again;
	struct stream st;

	/* Lost: frame 1 never came. */
	st = (struct stream){0};
	put_hello(&st, DMALOG_STREAM_VERSION, 12, PAGES * PAGE, 1);
	put_seq(&st, DMALOG_FRAME_SWITCHOVER, 2, NULL, 0);
	expect_refused(&st, -EPROTO, "frame 2 (SWITCHOVER) arrived where frame 1 was expected", 0);

	/* Repeated: a whole PAGES frame sent twice. */
	st = (struct stream){0};
	put_hello(&st, DMALOG_STREAM_VERSION, 12, PAGES * PAGE, 1);
	put_pages(&st, 0, 1, src);
	again = malloc(16 + PAGE); /* a copy: put_seq() may move st.buf */
	memcpy(again, st.buf + st.frame_at[1] + DMALOG_FRAME_HDR_BYTES, 16 + PAGE);
	put_seq(&st, DMALOG_FRAME_PAGES, 1, again, (uint32_t)(16 + PAGE));
	free(again);
	expect_refused(&st, -EPROTO, "frame 1 (PAGES) arrived where frame 2 was expected", 0);

	/* Reordered: 2 before 1. */
	st = (struct stream){0};
	put_hello(&st, DMALOG_STREAM_VERSION, 12, PAGES * PAGE, 1);
	put_seq(&st, DMALOG_FRAME_SWITCHOVER, 2, NULL, 0);
	put_seq(&st, DMALOG_FRAME_ROUND, 1, NULL, 0);
	expect_refused(&st, -EPROTO, "lost, repeated or reordered", 0);
	free(src);
}

/* Every frame of a good stream, damaged in turn after its checksum, is refused. */
static void every_frame_checked(void **state)
{
	uint8_t *src = source_memory();
	struct stream good = good_stream(src, 0);

	for (uint64_t f = 0; f < good.frames; f++) {
		struct stream st = good;
		size_t at = good.frame_at[f];
		size_t end = f + 1 < good.frames ? good.frame_at[f + 1] : good.len;

		st.buf = malloc(good.len);
		memcpy(st.buf, good.buf, good.len);
		/* The last byte of the frame: its payload, or its header when it has none. */
		st.buf[end - 1] ^= 0x10;
		expect_refused(&st, -EBADMSG,
			       end - at > DMALOG_FRAME_HDR_BYTES ? "checksum mismatch"
								 : "corrupt frame header",
			       0);
	}
	free(good.buf);
	free(src);
}

/* Hand @len bytes of @in to the sink the way a receiver does: into its buffers, in pieces. */
static int receive_into(struct dmalog_sink *sink, const uint8_t *in, size_t len, uint64_t *seed)
{
	int ret = 0;

	while (len && ret >= 0) {
		void *at;
		size_t room, n;

		dmalog_sink_recv_buffer(sink, &at, &room);
		*seed = *seed * 6364136223846793005ULL + 1442695040888963407ULL;
		n = 1 + (*seed >> 33) % room; /* recv() returns what it has: any part of the room */
		if (n > len)
			n = len;
		memcpy(at, in, n);
		in += n;
		len -= n;
		ret = dmalog_sink_received(sink, n);
	}
	return ret;
}

/*
 * Received in place (dmalog_sink_recv_buffer): the same result as fed, pages straight into
 * guest memory; a damaged page payload still fails the stream; a run outside guest memory is
 * refused before a byte of it is written; and a receiver that claims more than the room it
 * was given is refused.
 */
static void received_in_place(void **state)
{
	uint8_t *src = source_memory(), *dst = calloc(1, PAGES * PAGE);
	struct stream st = good_stream(src, 0), bad = {0};
	struct fake_dev dev = {0};
	struct dmalog_sink *sink;
	uint64_t seed = 3;
	void *at;
	size_t room;

	for (int rep = 0; rep < 20; rep++) {
		memset(dst, 0, PAGES * PAGE);
		memset(&dev, 0, sizeof(dev));
		assert_int_equal(dmalog_sink_create(dst, PAGES * PAGE, 12, 1, &ops, &dev, &sink),
				 0);
		assert_int_equal(receive_into(sink, st.buf, st.len, &seed), 1);
		assert_memory_equal(dst, src, PAGES * PAGE);
		assert_true(dev.resumed);
		dmalog_sink_destroy(sink);
	}

	/* The last byte of the second PAGES frame's pages, flipped. */
	st.buf[st.frame_at[6] - 1] ^= 1;
	assert_int_equal(dmalog_sink_create(dst, PAGES * PAGE, 12, 1, &ops, &dev, &sink), 0);
	assert_int_equal(receive_into(sink, st.buf, st.len, &seed), -EBADMSG);
	assert_non_null(strstr(dmalog_sink_error(sink), "checksum mismatch"));
	dmalog_sink_destroy(sink);

	put_hello(&bad, DMALOG_STREAM_VERSION, 12, PAGES * PAGE, 1);
	put_pages(&bad, 1, PAGES, src); /* one page too far */
	memset(dst, 0xee, PAGES * PAGE);
	assert_int_equal(dmalog_sink_create(dst, PAGES * PAGE, 12, 1, &ops, &dev, &sink), 0);
	assert_int_equal(receive_into(sink, bad.buf, bad.len, &seed), -EPROTO);
	for (size_t i = 0; i < PAGES * PAGE; i++)
		assert_int_equal(dst[i], 0xee);
	dmalog_sink_destroy(sink);

	assert_int_equal(dmalog_sink_create(dst, PAGES * PAGE, 12, 1, &ops, &dev, &sink), 0);
	dmalog_sink_recv_buffer(sink, &at, &room);
	assert_int_equal(dmalog_sink_received(sink, room + 1), -EINVAL);
	dmalog_sink_destroy(sink);
	free(bad.buf);
	free(st.buf);
	free(src);
	free(dst);
}

/*
 * ZERO frames: their pages become zero bytes (whatever an earlier round put there) and count
 * as pages taken; a run outside guest memory, an empty run or one with data is refused.
 */
static void zero_pages(void **state)
{
	uint8_t *src = source_memory(), *dst = calloc(1, PAGES * PAGE);
	struct dmalog_frame_run zero = {.first_page = 2, .count = 3};
	struct dmalog_sink_stats st_stats;
	struct fake_dev dev = {0};
	struct dmalog_sink *sink;
	struct stream st = {0};
	uint8_t with_data[sizeof(zero) + 8] = {0};

	put_hello(&st, DMALOG_STREAM_VERSION, 12, PAGES * PAGE, 1);
	put_pages(&st, 0, PAGES, src);
	put_msg(&st, DMALOG_FRAME_ZERO, &zero);
	assert_int_equal(dmalog_sink_create(dst, PAGES * PAGE, 12, 1, &ops, &dev, &sink), 0);
	assert_int_equal(dmalog_sink_feed(sink, st.buf, st.len), 0);
	for (size_t i = 0; i < PAGES * PAGE; i++)
		assert_int_equal(dst[i], i / PAGE >= 2 && i / PAGE < 5 ? 0 : src[i]);
	dmalog_sink_get_stats(sink, &st_stats);
	assert_int_equal(st_stats.pages, PAGES + 3);
	assert_int_equal(st_stats.zero_pages, 3);
	dmalog_sink_destroy(sink);
	free(st.buf);

	for (int bad = 0; bad < 3; bad++) {
		struct dmalog_frame_run run = {.first_page = bad == 0 ? PAGES - 1 : 0,
					       .count = bad == 0   ? 2
							: bad == 1 ? 0
								   : 1};

		memset(&st, 0, sizeof(st));
		put_hello(&st, DMALOG_STREAM_VERSION, 12, PAGES * PAGE, 1);
		if (bad < 2) {
			put_msg(&st, DMALOG_FRAME_ZERO, &run);
		} else {
			dmalog_frame_encode(DMALOG_FRAME_ZERO, &run, with_data);
			put(&st, DMALOG_FRAME_ZERO, with_data, sizeof(with_data));
		}
		assert_int_equal(dmalog_sink_create(dst, PAGES * PAGE, 12, 1, &ops, &dev, &sink),
				 0);
		assert_int_equal(dmalog_sink_feed(sink, st.buf, st.len), -EPROTO);
		assert_non_null(strstr(dmalog_sink_error(sink),
				       bad == 2 ? "malformed ZERO" : "outside guest memory"));
		dmalog_sink_destroy(sink);
		free(st.buf);
	}
	free(src);
	free(dst);
}

/* A truncated stream is simply not finished: the caller sees no END at EOF. */
static void truncated_wants_more(void **state)
{
	uint8_t *src = source_memory(), *dst = calloc(1, PAGES * PAGE);
	struct stream st = good_stream(src, 0);
	struct fake_dev dev = {0};
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
	uint32_t len, crc, seq;

	dmalog_frame_header(hdr, DMALOG_FRAME_PAGES, 7, check, 9);
	assert_int_equal(dmalog_frame_parse_header(hdr, &type, &seq, &len, &crc), 0);
	assert_int_equal(seq, 7);
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
			dmalog_frame_header(hdr, DMALOG_FRAME_PAGES, 0, buf + off, n);
			assert_int_equal(dmalog_frame_parse_header(hdr, &type, &seq, &len, &crc),
					 0);
			assert_int_equal(crc, ~want);
		}
	}
}

/* Page channel 1 of 2 over a guest with a shard for each and some more. */
#define CH_PAGES (2 * DMALOG_STREAM_SHARD_PAGES + 16)

static void put_channel(struct stream *st, uint32_t index, uint32_t channels)
{
	struct dmalog_frame_channel c = {DMALOG_STREAM_VERSION, index, channels, 12,
					 (uint64_t)CH_PAGES * PAGE};

	put_msg(st, DMALOG_FRAME_CHANNEL, &c);
}

static void put_run(struct stream *st, uint16_t type, uint64_t first, uint32_t count)
{
	struct dmalog_frame_run run = {.first_page = first, .count = count};
	uint8_t *p = calloc(1, sizeof(run) + (type == DMALOG_FRAME_PAGES ? count * PAGE : 0));

	dmalog_frame_encode(type, &run, p);
	if (type == DMALOG_FRAME_PAGES)
		memset(p + sizeof(run), 0x5a, count * PAGE);
	put(st, type, p, sizeof(run) + (type == DMALOG_FRAME_PAGES ? count * PAGE : 0));
	free(p);
}

static void put_round(struct stream *st, uint32_t round, uint64_t pages)
{
	struct dmalog_frame_round r = {.round = round, .pages = pages};

	put_msg(st, DMALOG_FRAME_ROUND, &r);
}

/* Feed @st to a sink that is connection @index of @channels: its return and reason. */
static void expect_channel(struct stream *st, uint32_t index, uint32_t channels, int want,
			   const char *reason)
{
	uint8_t *dst = calloc(1, (size_t)CH_PAGES * PAGE);
	struct fake_dev dev = {0};
	struct dmalog_sink *sink;
	int ret;

	assert_int_equal(dmalog_sink_create(dst, (uint64_t)CH_PAGES * PAGE, 12, index ? 0 : 1,
					    index ? NULL : &ops, &dev, &sink),
			 0);
	assert_int_equal(dmalog_sink_set_channel(sink, index, channels), 0);
	ret = dmalog_sink_feed(sink, st->buf, st->len);
	if (ret != want || (reason && !strstr(dmalog_sink_error(sink), reason)))
		fail_msg("got %d '%s', want %d '%s'", ret, dmalog_sink_error(sink), want,
			 reason ? reason : "");
	if (want == 1) {
		/* Its pages, and nothing outside its shards. */
		for (uint64_t p = 0; p < CH_PAGES; p++) {
			bool ours = p == 256 || p == 257;

			assert_int_equal(dst[p * PAGE + 100], ours ? 0x5a : 0);
		}
	}
	dmalog_sink_destroy(sink);
	free(st->buf);
	free(dst);
}

/*
 * A page channel: CHANNEL, its own shards' pages, ROUND with their count, COMPLETE (the
 * sink's end). Pages of another connection, a run across a shard edge, any other frame, a
 * wrong count or round, or another channel's identity are refused, so that sinks on different
 * threads never write one page.
 */
static void page_channel(void **state)
{
	struct stream st = {0};
	struct dmalog_sink *sink;
	uint8_t mem[PAGE];

	put_channel(&st, 1, 2);
	put_run(&st, DMALOG_FRAME_PAGES, 256, 2);
	put_run(&st, DMALOG_FRAME_ZERO, 300, 8);
	put_round(&st, 1, 10);
	put_round(&st, 2, 0);
	put(&st, DMALOG_FRAME_COMPLETE, NULL, 0);
	expect_channel(&st, 1, 2, 1, NULL);

	st = (struct stream){0};
	put_channel(&st, 2, 3);
	expect_channel(&st, 1, 2, -EPROTO, "mismatched channel: 2 of 3");
	st = (struct stream){0};
	put_hello(&st, DMALOG_STREAM_VERSION, 12, (uint64_t)CH_PAGES * PAGE, 0);
	expect_channel(&st, 1, 2, -EPROTO, "does not start with CHANNEL");
	st = (struct stream){0};
	put_channel(&st, 1, 2);
	put_run(&st, DMALOG_FRAME_PAGES, 0, 1); /* shard 0: the main connection's */
	expect_channel(&st, 1, 2, -EPROTO, "not this connection's");
	st = (struct stream){0};
	put_channel(&st, 1, 2);
	put_run(&st, DMALOG_FRAME_ZERO, 500, 20); /* across the edge into shard 2 */
	expect_channel(&st, 1, 2, -EPROTO, "not this connection's");
	st = (struct stream){0};
	put_channel(&st, 1, 2);
	put(&st, DMALOG_FRAME_SWITCHOVER, NULL, 0);
	expect_channel(&st, 1, 2, -EPROTO, "a SWITCHOVER frame on page channel 1");
	st = (struct stream){0};
	put_channel(&st, 1, 2);
	put_run(&st, DMALOG_FRAME_ZERO, 256, 9);
	put_round(&st, 1, 10);
	expect_channel(&st, 1, 2, -EPROTO, "round 1: 10 pages sent, 9 arrived");
	st = (struct stream){0};
	put_channel(&st, 1, 2);
	put_round(&st, 2, 0);
	expect_channel(&st, 1, 2, -EPROTO, "round 2 where round 1 was next");
	st = (struct stream){0};
	put_channel(&st, 1, 2);
	put_run(&st, DMALOG_FRAME_ZERO, 256, 1);
	put(&st, DMALOG_FRAME_COMPLETE, NULL, 0); /* a page no ROUND accounted for */
	expect_channel(&st, 1, 2, -EPROTO, "1 pages after the last round");

	/* The main connection of two: HELLO must say two, and only shard 0 (and 2) is its. */
	st = (struct stream){0};
	put_hello(&st, DMALOG_STREAM_VERSION, 12, (uint64_t)CH_PAGES * PAGE, 1);
	expect_channel(&st, 0, 2, -EPROTO, "connections differ: 1 at the source, 2 here");

	/* Only before the first byte, and only a connection that exists. */
	assert_int_equal(dmalog_sink_create(mem, sizeof(mem), 12, 0, NULL, NULL, &sink), 0);
	assert_int_equal(dmalog_sink_set_channel(sink, 2, 2), -EINVAL);
	assert_int_equal(dmalog_sink_set_channel(sink, 0, 0), -EINVAL);
	assert_int_equal(dmalog_sink_set_channel(sink, 0, DMALOG_STREAM_MAX_CHANNELS + 1), -EINVAL);
	assert_int_equal(dmalog_sink_feed(sink, "D", 1), 0);
	assert_int_equal(dmalog_sink_set_channel(sink, 1, 2), -EINVAL);
	dmalog_sink_destroy(sink);
}

/* The main connection of two takes its own shards and refuses the page channel's. */
static void main_connection_shards(void **state)
{
	struct stream st = {0};
	uint8_t *dst = calloc(1, (size_t)CH_PAGES * PAGE);
	struct fake_dev dev = {0};
	struct dmalog_sink *sink;
	struct dmalog_frame_hello h = {
		DMALOG_STREAM_VERSION, 12, (uint64_t)CH_PAGES * PAGE, 0, 0, 2, 0};
	uint8_t hello[sizeof(h)];

	dmalog_frame_encode(DMALOG_FRAME_HELLO, &h, hello);
	put(&st, DMALOG_FRAME_HELLO, hello, sizeof(hello));
	put_run(&st, DMALOG_FRAME_PAGES, 0, 4);
	put_run(&st, DMALOG_FRAME_ZERO, 512, 16); /* shard 2 */
	put_round(&st, 1, 20);
	assert_int_equal(
		dmalog_sink_create(dst, (uint64_t)CH_PAGES * PAGE, 12, 0, &ops, &dev, &sink), 0);
	assert_int_equal(dmalog_sink_set_channel(sink, 0, 2), 0);
	assert_int_equal(dmalog_sink_feed(sink, st.buf, st.len), 0);
	assert_int_equal(dst[3 * PAGE], 0x5a);
	free(st.buf);
	st = (struct stream){.frames = 4};
	put_run(&st, DMALOG_FRAME_PAGES, 256, 1); /* shard 1: page channel 1's */
	assert_int_equal(dmalog_sink_feed(sink, st.buf, st.len), -EPROTO);
	assert_non_null(strstr(dmalog_sink_error(sink), "not this connection's (0 of 2)"));
	assert_int_equal(dst[256 * PAGE], 0);
	dmalog_sink_destroy(sink);
	free(st.buf);
	free(dst);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(whole_and_bytewise),
		cmocka_unit_test(result_counts_taken),
		cmocka_unit_test(page_digest_keyed),
		cmocka_unit_test(refusals),
		cmocka_unit_test(out_of_sequence_refused),
		cmocka_unit_test(every_frame_checked),
		cmocka_unit_test(received_in_place),
		cmocka_unit_test(zero_pages),
		cmocka_unit_test(truncated_wants_more),
		cmocka_unit_test(payload_crc_is_crc32c),
		cmocka_unit_test(page_channel),
		cmocka_unit_test(main_connection_shards),
	};

	return cmocka_run_group_tests_name("mstream", tests, NULL, NULL);
}
