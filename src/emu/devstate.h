/* SPDX-License-Identifier: MIT */
/*
 * The emulated device's migration stream: a versioned, checksummed sequence of records.
 *
 *   record := u32 type | u32 length | payload[length] | u32 crc32c(type, length, payload)
 *   stream := HEADER (CHUNK | REGS)* END
 *
 * HEADER carries a magic, the version and the device's geometry (memory size, register count);
 * CHUNK one 4 KiB piece of device memory at an offset; REGS the registers and queue positions;
 * END the number of records before it. Everything is little-endian. A reader rejects a bad
 * magic, an unknown version, a geometry that is not its own (incompatible), a bad checksum,
 * a chunk outside memory, and a stream without END (incomplete).
 */
#ifndef DMALOG_DEVSTATE_H
#define DMALOG_DEVSTATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DEVSTATE_MAGIC	 0x5644474f4c414d44ULL /* "DMALOGDV" */
#define DEVSTATE_VERSION 1
#define DEVSTATE_CHUNK	 4096
#define DEVSTATE_NREGS	 16
#define DEVSTATE_FRAMING 12 /* type, length, crc */

enum devstate_type {
	DEVSTATE_HEADER = 1,
	DEVSTATE_CHUNK_REC = 2,
	DEVSTATE_REGS = 3,
	DEVSTATE_END = 4,
};

/* What the stream transfers. */
struct devstate {
	uint64_t mem_bytes;
	uint8_t *mem;
	uint64_t regs[DEVSTATE_NREGS];
	uint64_t queue_head, queue_tail;
};

/* Bytes of each record on the wire. */
#define DEVSTATE_HEADER_BYTES (DEVSTATE_FRAMING + 24)
#define DEVSTATE_CHUNK_BYTES  (DEVSTATE_FRAMING + 8 + DEVSTATE_CHUNK)
#define DEVSTATE_REGS_BYTES   (DEVSTATE_FRAMING + 8 * DEVSTATE_NREGS + 16)
#define DEVSTATE_END_BYTES    (DEVSTATE_FRAMING + 8)

/* Encoders: write one record into @out (room for its bytes), return its length. */
size_t devstate_put_header(uint8_t *out, const struct devstate *s);
size_t devstate_put_chunk(uint8_t *out, const struct devstate *s, uint64_t index);
size_t devstate_put_regs(uint8_t *out, const struct devstate *s);
size_t devstate_put_end(uint8_t *out, uint64_t records);

/*
 * An incremental reader: bytes are fed as they come, checked record by record and staged;
 * memory is the staging area (the device's size) plus one record, whatever the stream's
 * length. The first error sticks, with its reason in why.
 */
struct devstate_reader {
	uint64_t mem_bytes;
	uint8_t *scratch; /* staged device memory */
	uint64_t regs[DEVSTATE_NREGS], queue_head, queue_tail, records;
	bool have_header, have_regs, ended;
	uint8_t rec[DEVSTATE_CHUNK_BYTES]; /* the record being assembled */
	size_t have;
	const char *why;
};

/* Start reading a stream for the device @s (its geometry and memory); stage into @scratch. */
void devstate_reader_init(struct devstate_reader *r, const struct devstate *s, uint8_t *scratch);
/* Feed the next bytes: 0, or -EINVAL with r->why. */
int devstate_reader_feed(struct devstate_reader *r, const uint8_t *buf, size_t len);
/* The stream is over: 0 and @s takes the staged state, or -EINVAL with r->why. */
int devstate_reader_finish(struct devstate_reader *r, struct devstate *s);

#endif
