/* SPDX-License-Identifier: MIT */
/*
 * CRC-32C (Castagnoli, reflected), the checksum of device and migration streams: x86's
 * SSE4.2 computes it in hardware, so checksumming every page sent costs little.
 */
#ifndef DMALOG_CRC32C_H
#define DMALOG_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Continue a CRC: start with crc = 0. */
uint32_t dmalog_crc32c(uint32_t crc, const void *data, size_t len);

/*
 * Copy @len bytes (a multiple of 8) from @src, which others may be writing, to @dst and
 * continue @crc over what was copied, in one pass: each 8-byte word is loaded once (a relaxed
 * atomic load: whole words, as DMA stores them) and both stored and checksummed.
 */
uint32_t dmalog_crc32c_copy(uint32_t crc, void *dst, const void *src, size_t len);

/*
 * Copy @len bytes from @src, which nobody else writes, to @dst, which will not be read soon
 * (a page landing in the destination's guest memory), and continue @crc over them, in one
 * pass. Where the CPU can, the stores bypass the caches: a write to memory that is not cached
 * otherwise reads each line in first, and at gigabytes a second that doubles the traffic.
 */
uint32_t dmalog_crc32c_copy_cold(uint32_t crc, void *dst, const void *src, size_t len);

#endif
