// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for the emulated device's state parser, which a migration destination
 * feeds with whatever DEVICE_DATA the network brought. Arbitrary bytes, fed in chunks whose
 * sizes come from the input, must end in a clean refusal or a whole stream, never a crash,
 * a write outside the staged memory (an exact-size buffer under ASan) or a record buffered
 * past its bound. The device's memory changes only for a stream that finishes whole.
 */
#include <stdlib.h>
#include <string.h>

#include "emu/devstate.h"

#define MEM (4 * DEVSTATE_CHUNK)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *mem = calloc(1, MEM), *scratch = malloc(MEM), *before = malloc(MEM);
	struct devstate s = {.mem_bytes = MEM};
	struct devstate_reader *r = malloc(sizeof(*r));
	size_t off = 1;
	unsigned int chunk;

	if (!size || !mem || !scratch || !before || !r)
		goto out;
	s.mem = mem;
	memset(mem, 0x5a, MEM);
	memcpy(before, mem, MEM);
	devstate_reader_init(r, &s, scratch);
	chunk = data[0] | 1;
	while (off < size) {
		size_t n = size - off < chunk ? size - off : chunk;

		if (devstate_reader_feed(r, data + off, n))
			break;
		off += n;
		chunk = chunk * 7 % 8191 + 1;
	}
	if (devstate_reader_finish(r, &s) && memcmp(mem, before, MEM))
		__builtin_trap(); /* a refused stream changed the device */
out:
	free(r);
	free(before);
	free(scratch);
	free(mem);
	return 0;
}
