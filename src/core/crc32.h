/* SPDX-License-Identifier: MIT */
/* CRC-32 (IEEE 802.3, reflected), for the checksums of device and migration streams. */
#ifndef DMALOG_CRC32_H
#define DMALOG_CRC32_H

#include <stddef.h>
#include <stdint.h>

/* Continue a CRC: start with crc = 0. */
uint32_t dmalog_crc32(uint32_t crc, const void *data, size_t len);

#endif
