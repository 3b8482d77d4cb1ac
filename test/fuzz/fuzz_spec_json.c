/* Fuzz target for the OCI spec as the CLI reads it: config.json or
 * process.json text → json-c (cli_json_parse, strict) → the CLI's
 * JSON-to-msgpack converter (cmd/json_mp.c json_mp_convert) → msgpack-c →
 * oci_spec_decode and oci_resources_decode (`cvisor update --resources`
 * takes the same path). Must never crash or leak; what the converter
 * accepts must unpack as exactly one msgpack object, and a successful
 * decode must keep its promises (fuzz_spec_check.h).
 *
 * Input: the JSON text. */
#include <msgpack.h>

#include "cmd/cli.h"
#include "fuzz_spec_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	struct cv_error err = { 0 };
	if (json_mp_convert((const char *)data, size, &sb, &err) < 0) {
		assert(err.msg[0]);
		msgpack_sbuffer_destroy(&sb);
		return 0;
	}
	msgpack_zone *zone = msgpack_zone_new(MSGPACK_ZONE_CHUNK_SIZE);
	if (!zone)
		abort();
	msgpack_object obj;
	size_t off = 0;
	int r = msgpack_unpack(sb.data, sb.size, &off, zone, &obj);
	assert(r == MSGPACK_UNPACK_SUCCESS && off == sb.size);
	fz_decode_all(&obj);
	msgpack_zone_free(zone);
	msgpack_sbuffer_destroy(&sb);
	return 0;
}

#include "fuzz_replay.h"
