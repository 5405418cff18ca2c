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

#include <stdint.h>
#include <stddef.h>

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
 * Parse a whole stream into @s (whose mem_bytes and mem are the device's). 0, or -EINVAL with
 * a reason in *why. @s is changed only on success: chunks are staged in @scratch (mem_bytes).
 */
int devstate_parse(const uint8_t *buf, size_t len, struct devstate *s, uint8_t *scratch,
		   const char **why);

#endif
