/* Fuzz target for the CLI's JSON-to-msgpack converter alone
 * (cmd/json_mp.c json_mp_convert, behind it cli_json_parse): every JSON
 * document the CLI sends on (config.json, process.json, resources) goes
 * through it. Must never crash or leak, and on success:
 *   - the output unpacks as exactly one msgpack object, with no byte left;
 *   - that object is the document: the same tree as json-c's parse of the
 *     same text (types mapped as cmd/cli.h says, sizes, keys in order,
 *     string bytes, integer and double values).
 *
 * Input: the JSON text. */
#include <assert.h>
#include <math.h>
#include <msgpack.h>
#include <string.h>

#include "cmd/cli.h"

static void same(json_object *j, const msgpack_object *o)
{
	switch (json_object_get_type(j)) {
	case json_type_null:
		assert(o->type == MSGPACK_OBJECT_NIL);
		return;
	case json_type_boolean:
		assert(o->type == MSGPACK_OBJECT_BOOLEAN);
		assert(o->via.boolean == (bool)json_object_get_boolean(j));
		return;
	case json_type_double: {
		assert(o->type == MSGPACK_OBJECT_FLOAT64 || o->type == MSGPACK_OBJECT_FLOAT32);
		double d = json_object_get_double(j);
		assert((isnan(d) && isnan(o->via.f64)) || o->via.f64 == d);
		return;
	}
	case json_type_int: {
		int64_t v = json_object_get_int64(j);
		if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
			/* Non-negative, or above INT64_MAX (json-c's uint64 case). */
			if (v == INT64_MAX)
				assert(o->via.u64 == json_object_get_uint64(j));
			else
				assert(v >= 0 && o->via.u64 == (uint64_t)v);
		} else {
			assert(o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER);
			assert(v < 0 && o->via.i64 == v);
		}
		return;
	}
	case json_type_string: {
		assert(o->type == MSGPACK_OBJECT_STR);
		size_t n = (size_t)json_object_get_string_len(j);
		assert(o->via.str.size == n);
		assert(n == 0 || memcmp(o->via.str.ptr, json_object_get_string(j), n) == 0);
		return;
	}
	case json_type_array: {
		assert(o->type == MSGPACK_OBJECT_ARRAY);
		size_t n = json_object_array_length(j);
		assert(o->via.array.size == n);
		for (size_t i = 0; i < n; i++)
			same(json_object_array_get_idx(j, i), &o->via.array.ptr[i]);
		return;
	}
	case json_type_object: {
		assert(o->type == MSGPACK_OBJECT_MAP);
		uint32_t i = 0;
		json_object_object_foreach(j, key, val)
		{
			/* The map header's count is the number of pairs packed. */
			assert(i < o->via.map.size);
			const msgpack_object *k = &o->via.map.ptr[i].key;
			size_t kl = strlen(key);
			assert(k->type == MSGPACK_OBJECT_STR && k->via.str.size == kl);
			assert(kl == 0 || memcmp(k->via.str.ptr, key, kl) == 0);
			same(val, &o->via.map.ptr[i].val);
			i++;
		}
		assert(i == o->via.map.size);
		return;
	}
	}
	assert(!"json-c returned an unknown type");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	struct cv_error err = { 0 };
	if (json_mp_convert((const char *)data, size, &sb, &err) < 0) {
		assert(err.msg[0]); /* a refusal says why */
		msgpack_sbuffer_destroy(&sb);
		return 0;
	}
	assert(sb.size > 0);
	msgpack_zone *zone = msgpack_zone_new(MSGPACK_ZONE_CHUNK_SIZE);
	if (!zone)
		abort();
	msgpack_object obj;
	size_t off = 0;
	int r = msgpack_unpack(sb.data, sb.size, &off, zone, &obj);
	assert(r == MSGPACK_UNPACK_SUCCESS);
	assert(off == sb.size); /* exactly one object */

	/* The same text parsed again must give the same tree. */
	json_object *j = NULL;
	struct cv_error err2 = { 0 };
	r = cli_json_parse((const char *)data, size, "JSON", &j, &err2);
	assert(r == 0);
	same(j, &obj);
	json_object_put(j);
	msgpack_zone_free(zone);
	msgpack_sbuffer_destroy(&sb);
	return 0;
}

#include "fuzz_replay.h"
