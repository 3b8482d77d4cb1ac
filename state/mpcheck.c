/* sf_mp_check (state/internal.h): walks one msgpack object in a complete
 * buffer with a stack of "items left" per open container, the way
 * rpc/scan.c frames RPC messages, but over a buffer known whole (records
 * are length-prefixed), so it need not resume. */
#include <string.h>

#include "state/internal.h"

static uint64_t be(const unsigned char *p, unsigned n)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < n; i++)
		v = (v << 8) | p[i];
	return v;
}

/* For the item starting with byte t: the header size, the payload size
 * given the header (set by the caller from the length bytes), and the
 * number of child items if it opens a container. Returns the number of
 * length bytes after t (0..4) through *lenbytes, or -1 for 0xc1. */
enum item { IT_SCALAR, IT_ARRAY, IT_MAP };

static int classify(unsigned char t, enum item *it, unsigned *lenbytes, uint64_t *fixed)
{
	*it = IT_SCALAR;
	*lenbytes = 0;
	*fixed = 0; /* payload bytes after the header when not given by a length */
	if (t <= 0x7f || t >= 0xe0 || t == 0xc0 || t == 0xc2 || t == 0xc3)
		return 0;
	if (t >= 0x80 && t <= 0x8f) {
		*it = IT_MAP;
		*fixed = t & 0x0f; /* child count */
		return 0;
	}
	if (t >= 0x90 && t <= 0x9f) {
		*it = IT_ARRAY;
		*fixed = t & 0x0f;
		return 0;
	}
	if (t >= 0xa0 && t <= 0xbf) {
		*fixed = t & 0x1f;
		return 0;
	}
	switch (t) {
	case 0xc4: case 0xd9: *lenbytes = 1; return 0;                 /* bin8, str8 */
	case 0xc5: case 0xda: *lenbytes = 2; return 0;                 /* bin16, str16 */
	case 0xc6: case 0xdb: *lenbytes = 4; return 0;                 /* bin32, str32 */
	case 0xc7: *lenbytes = 1; *fixed = 1; return 0;                /* ext8: len, type */
	case 0xc8: *lenbytes = 2; *fixed = 1; return 0;
	case 0xc9: *lenbytes = 4; *fixed = 1; return 0;
	case 0xcc: case 0xd0: *fixed = 1; return 0;
	case 0xcd: case 0xd1: *fixed = 2; return 0;
	case 0xca: case 0xce: case 0xd2: *fixed = 4; return 0;
	case 0xcb: case 0xcf: case 0xd3: *fixed = 8; return 0;
	case 0xd4: *fixed = 2; return 0;                               /* fixext1: type + 1 */
	case 0xd5: *fixed = 3; return 0;
	case 0xd6: *fixed = 5; return 0;
	case 0xd7: *fixed = 9; return 0;
	case 0xd8: *fixed = 17; return 0;
	case 0xdc: *it = IT_ARRAY; *lenbytes = 2; return 0;
	case 0xdd: *it = IT_ARRAY; *lenbytes = 4; return 0;
	case 0xde: *it = IT_MAP; *lenbytes = 2; return 0;
	case 0xdf: *it = IT_MAP; *lenbytes = 4; return 0;
	default: return -1; /* 0xc1: never used */
	}
}

int sf_mp_check(const unsigned char *p, size_t n, unsigned max_depth, const char *what,
		struct cv_error *err)
{
	uint64_t left[SF_RECORD_DEPTH + 1];
	if (max_depth > SF_RECORD_DEPTH)
		max_depth = SF_RECORD_DEPTH;
	unsigned depth = 1;
	left[0] = 1;
	size_t pos = 0, items = 0;
	while (depth > 0) {
		if (left[depth - 1] == 0) {
			depth--;
			continue;
		}
		left[depth - 1]--;
		if (++items > SF_RECORD_ITEMS)
			return cv_errf(err, 0, "%s: more than %u msgpack items", what, SF_RECORD_ITEMS);
		if (pos >= n)
			return cv_errf(err, 0, "%s: msgpack ends early (%zu bytes)", what, n);
		enum item it;
		unsigned lb;
		uint64_t fixed;
		if (classify(p[pos], &it, &lb, &fixed) < 0)
			return cv_errf(err, 0, "%s: invalid msgpack byte 0x%02x at offset %zu", what,
				       p[pos], pos);
		pos++;
		if (n - pos < lb)
			return cv_errf(err, 0, "%s: msgpack ends early (%zu bytes)", what, n);
		uint64_t len = lb ? be(p + pos, lb) : 0;
		pos += lb;
		if (it == IT_SCALAR) {
			uint64_t body = fixed + len;
			if (body > n - pos)
				return cv_errf(err, 0,
					       "%s: msgpack item of %llu bytes at offset %zu overruns its %zu bytes",
					       what, (unsigned long long)body, pos, n);
			pos += body;
			continue;
		}
		uint64_t count = lb ? len : fixed;
		uint64_t children = it == IT_MAP ? 2 * count : count;
		/* Each item takes at least one byte: a count beyond the bytes
		 * left is a lie, refused before anyone allocates for it. */
		if (children > n - pos)
			return cv_errf(err, 0,
				       "%s: msgpack %s of %llu entries at offset %zu overruns its %zu bytes",
				       what, it == IT_MAP ? "map" : "array", (unsigned long long)count,
				       pos, n);
		if (depth > max_depth)
			return cv_errf(err, 0, "%s: msgpack nested deeper than %u levels", what,
				       max_depth);
		left[depth++] = children;
	}
	if (pos != n)
		return cv_errf(err, 0, "%s: %zu bytes after the msgpack object", what, n - pos);
	return 0;
}
