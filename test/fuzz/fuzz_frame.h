#pragma once
/* Whether data starts with one complete msgpack object, and its length.
 * msgpack-c's msgpack_unpack allocates what a container header declares
 * before it has seen the elements (a 5-byte "array of 2^32" asks for
 * 64 GiB), so the harnesses frame first with the RPC server's own framer
 * (rpc/scan.c), as the server does before it unpacks: a header can then
 * never declare more elements than the bytes that follow. */
#include <stdbool.h>
#include <stddef.h>

#include "rpc/rpc_internal.h"

static bool fz_frame(const unsigned char *data, size_t size, size_t *len)
{
	struct rpc_scan s = { 0 };
	rpc_scan_reset(&s);
	size_t used = 0;
	enum rpc_scan_result r = rpc_scan_feed(&s, data, size, &used);
	rpc_scan_reset(&s);
	*len = used;
	return r == RPC_SCAN_DONE;
}
