/* SPDX-License-Identifier: MIT */
/*
 * The engine's end of the connection: frames queued into one buffer and written in large
 * pieces, answers read whole, and a deadline on every wait. A frame's payload is built in
 * place in the buffer, so a page is copied once out of guest memory and checksummed there.
 */
#ifndef DMALOG_MIGRATE_LINK_H
#define DMALOG_MIGRATE_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <dmalog/mstream.h>

/*
 * Queued bytes past which a sender should flush. Over TCP loopback, 256 KiB writes moved the
 * same bytes faster than 1 MiB ones, raw and in the engine (one connection: medians 2.9
 * against 2.5 GB/s on a 2-core Intel Xeon KVM guest); over a UNIX socket both sizes were
 * level. The buffer, built then sent, also stays in the second-level cache between the two.
 */
#define LINK_FLUSH_BYTES (256u << 10)

struct link {
	int fd;
	int timeout_ms; /* the longest silence tolerated on a read or a write */
	uint8_t *buf;
	size_t len, cap;
	uint64_t bytes;	    /* bytes written to the connection */
	uint64_t frames;    /* frames queued: the next one's sequence number */
	uint64_t rx_frames; /* frames read: the next one must carry this number */
	/* Called on each sealed frame before it can be sent. */
	void (*tap)(void *opaque, uint16_t type, uint8_t *frame, uint32_t length);
	void *tap_opaque;
	/*
	 * Optional: while *stop is non-zero (another connection of the migration failed), a
	 * wait to send gives up within about 100 ms with -ESHUTDOWN.
	 */
	const int *stop;
	char error[160];
};

void link_init(struct link *l, int fd, int timeout_ms);
void link_fini(struct link *l);

/* Queue a frame (nothing is sent before link_flush); fill its payload, then seal it. */
uint8_t *link_frame_begin(struct link *l, uint32_t length);
void link_frame_seal(struct link *l, uint16_t type);
/* The same when the payload's CRC-32C is known already (computed as it was filled). */
void link_frame_seal_crc(struct link *l, uint16_t type, uint32_t payload_crc);
/* A frame of only its typed fixed part (@msg may be NULL for an empty one). */
int link_msg(struct link *l, uint16_t type, const void *msg);
/* A frame whose payload is @length raw bytes (ABORT's reason). */
int link_raw(struct link *l, uint16_t type, const void *payload, uint32_t length);

/*
 * Send everything queued, each wait bounded by the timeout. 0, or -errno with l->error set
 * (-ETIMEDOUT when the peer stopped reading, -ESHUTDOWN when told to stop); what was not
 * sent is dropped.
 */
int link_flush(struct link *l);

/*
 * Read one whole frame within @timeout_ms (0: only if one has begun to arrive; then the
 * rest is waited for within the link's timeout): 0 and the frame, -EAGAIN for nothing,
 * -ETIMEDOUT for a frame that did not finish in time, -ECONNRESET at EOF, -EBADMSG for
 * garbage, a payload over @max or a frame out of sequence (l->error says which).
 */
int link_read_frame(struct link *l, int timeout_ms, uint16_t *type, uint8_t *payload, uint32_t max,
		    uint32_t *length);

/* Milliseconds on a monotonic clock. */
double link_now_ms(void);

#endif
