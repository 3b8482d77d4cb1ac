/* CRC-32 (IEEE 802.3, the one zlib and Python's zlib.crc32 compute) over
 * the state file's envelope: the LZ4 frame checksums protect the records,
 * this protects the metadata in front of them, so that a flipped byte
 * anywhere in the file is refused. Table built once, on first use. */
#include <stdbool.h>

#include "state/internal.h"

static uint32_t table[256];
static bool ready;

static void build(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
		table[i] = c;
	}
	ready = true;
}

uint32_t sf_crc32(uint32_t crc, const void *p, size_t n)
{
	if (!ready)
		build();
	const unsigned char *c = p;
	crc = ~crc;
	while (n--)
		crc = table[(crc ^ *c++) & 0xff] ^ (crc >> 8);
	return ~crc;
}
