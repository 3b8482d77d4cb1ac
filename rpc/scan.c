/* A resumable msgpack framer (rpc_internal.h): finds where each message
 * ends without building anything, so that msgpack-c only ever parses
 * complete messages.
 *
 * Why: msgpack-c allocates an array's or map's element table from the
 * count in its header, before any element arrives. A 5-byte header saying
 * "array of 2^32-1" would make it allocate 96 GiB. Once the whole message
 * is buffered every declared element is backed by at least one real byte,
 * so what msgpack-c allocates is proportional to the bytes received and
 * bounded by the message size limit. */
#include <stdlib.h>
#include <string.h>

#include "rpc/rpc_internal.h"

void rpc_scan_reset(struct rpc_scan *s)
{
	free(s->deep);
	memset(s, 0, sizeof(*s));
}

/* Items left in open container number i (0-based). */
static uint64_t *left_at(struct rpc_scan *s, unsigned i)
{
	return i < RPC_SCAN_MAX_DEPTH ? &s->left[i] : &s->deep[i - RPC_SCAN_MAX_DEPTH];
}

/* Opens one more container level; false when it cannot be tracked. */
static bool push_level(struct rpc_scan *s, uint64_t count)
{
	if (s->depth >= RPC_SCAN_HARD_DEPTH)
		return false;
	if (s->depth >= RPC_SCAN_MAX_DEPTH) {
		unsigned k = s->depth - RPC_SCAN_MAX_DEPTH;
		if (k >= s->deep_cap) {
			unsigned cap = s->deep_cap ? s->deep_cap * 2 : 64;
			uint64_t *d = realloc(s->deep, cap * sizeof(*d));
			if (!d)
				return false;
			s->deep = d;
			s->deep_cap = cap;
		}
		s->too_deep = true;
	}
	*left_at(s, s->depth++) = count;
	return true;
}

/* Bytes of the header that starts with t (t included), 0 if t is never
 * valid (0xc1). */
static unsigned hdr_size(unsigned char t)
{
	if (t <= 0xbf || t >= 0xe0)
		return 1; /* fixint, fixmap, fixarray, fixstr, negative fixint */
	switch (t) {
	case 0xc1: return 0;
	case 0xc0: case 0xc2: case 0xc3: return 1;
	case 0xc4: case 0xcc: case 0xd0: case 0xd9: return 2;
	case 0xc5: case 0xcd: case 0xd1: case 0xda: case 0xdc: case 0xde: return 3;
	case 0xc6: case 0xca: case 0xce: case 0xd2: case 0xdb: case 0xdd: case 0xdf: return 5;
	case 0xc7: return 3; /* len8, type */
	case 0xc8: return 4; /* len16, type */
	case 0xc9: return 6; /* len32, type */
	case 0xcb: case 0xcf: case 0xd3: return 9;
	case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8: return 2; /* fixext: type */
	default: return 0;
	}
}

static uint64_t be(const unsigned char *p, unsigned n)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < n; i++)
		v = (v << 8) | p[i];
	return v;
}

/* One item of the current container is complete; true when that completes
 * the whole message. */
static bool item_done(struct rpc_scan *s)
{
	for (;;) {
		if (s->depth == 0)
			return true;
		if (--*left_at(s, s->depth - 1) > 0)
			return false;
		s->depth--; /* the container itself is complete */
	}
}

enum rpc_scan_result rpc_scan_feed(struct rpc_scan *s, const unsigned char *p, size_t n,
				   size_t *used)
{
	size_t i = 0;
	while (i < n) {
		if (s->msg_bytes < RPC_HEAD_MAX)
			s->head[s->head_len++] = p[i];
		if (s->skip > 0) {
			/* Payload of a str/bin/ext: skip in bulk (the head above
			 * records at most one byte per pass, which is enough:
			 * the msgid sits before any payload). */
			size_t k = n - i;
			if (k > s->skip)
				k = (size_t)s->skip;
			if (s->msg_bytes < RPC_HEAD_MAX && k > 1) {
				size_t h = k - 1;
				if (h > RPC_HEAD_MAX - s->head_len)
					h = RPC_HEAD_MAX - s->head_len;
				memcpy(s->head + s->head_len, p + i + 1, h);
				s->head_len += h;
			}
			s->skip -= k;
			s->msg_bytes += k;
			i += k;
			if (s->skip == 0 && item_done(s)) {
				*used = i;
				return RPC_SCAN_DONE;
			}
			continue;
		}
		s->hdr[s->hdr_len++] = p[i++];
		s->msg_bytes++;
		if (s->hdr_len == 1) {
			s->hdr_need = hdr_size(s->hdr[0]);
			if (s->hdr_need == 0)
				return RPC_SCAN_BAD;
		}
		if (s->hdr_len < s->hdr_need)
			continue;

		/* A whole header: classify the item. */
		const unsigned char *h = s->hdr;
		unsigned char t = h[0];
		uint64_t count = 0, payload = 0;
		bool container = false;
		s->hdr_len = 0;
		if (t >= 0x80 && t <= 0x8f) {
			container = true;
			count = (uint64_t)(t & 0x0f) * 2;
		} else if (t >= 0x90 && t <= 0x9f) {
			container = true;
			count = t & 0x0f;
		} else if (t >= 0xa0 && t <= 0xbf) {
			payload = t & 0x1f;
		} else {
			switch (t) {
			case 0xc4: case 0xd9: case 0xc7: payload = h[1]; break;
			case 0xc5: case 0xda: case 0xc8: payload = be(h + 1, 2); break;
			case 0xc6: case 0xdb: case 0xc9: payload = be(h + 1, 4); break;
			case 0xd4: payload = 1; break;
			case 0xd5: payload = 2; break;
			case 0xd6: payload = 4; break;
			case 0xd7: payload = 8; break;
			case 0xd8: payload = 16; break;
			case 0xdc: container = true; count = be(h + 1, 2); break;
			case 0xdd: container = true; count = be(h + 1, 4); break;
			case 0xde: container = true; count = be(h + 1, 2) * 2; break;
			case 0xdf: container = true; count = be(h + 1, 4) * 2; break;
			default: break; /* scalar */
			}
		}
		if (container && count > 0) {
			if (!push_level(s, count))
				return RPC_SCAN_TOO_DEEP;
			continue;
		}
		if (payload > 0) {
			s->skip = payload;
			continue;
		}
		if (item_done(s)) {
			*used = i;
			return RPC_SCAN_DONE;
		}
	}
	*used = i;
	return RPC_SCAN_MORE;
}
