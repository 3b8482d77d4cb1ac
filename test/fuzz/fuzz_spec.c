/* Fuzz target for the OCI spec decoder on its wire form: the input is
 * msgpack bytes (what `cvisor boot` is handed, and what a hostile bundle
 * turns into), unpacked with msgpack-c and decoded by oci_spec_decode and
 * oci_resources_decode (core/spec.c, core/mpk.c). Must never crash or
 * leak, and a successful decode must keep its promises (fuzz_spec_check.h).
 *
 * Input: one msgpack object (trailing bytes are ignored, as boot does).
 * Inputs whose headers declare more than follows are skipped (fuzz_frame.h). */
#include <msgpack.h>

#include "fuzz_frame.h"
#include "fuzz_spec_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	msgpack_zone *zone = msgpack_zone_new(MSGPACK_ZONE_CHUNK_SIZE);
	if (!zone)
		abort();
	msgpack_object obj;
	size_t off = 0, len;
	/* As kernel/sandbox.c create_root, on bytes that frame (the CLI packs
	 * the spec from parsed JSON, so its headers never overstate). */
	if (fz_frame(data, size, &len) &&
	    msgpack_unpack((const char *)data, len, &off, zone, &obj) == MSGPACK_UNPACK_SUCCESS)
		fz_decode_all(&obj);
	msgpack_zone_free(zone);
	return 0;
}

#include "fuzz_replay.h"
