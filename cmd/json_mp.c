/* JSON → MessagePack, key for key: boot and the RPC methods take the msgpack
 * form of config.json and of the other JSON documents the CLI reads. */
#include <inttypes.h>
#include <string.h>

#include "cmd/cli.h"

/* json-c nests arbitrarily; bound the recursion so a hostile document
 * cannot exhaust the stack. */
#define JSON_MP_MAX_DEPTH 128

static int pack_rec(json_object *j, msgpack_packer *pk, int depth, struct cv_error *err)
{
	if (depth > JSON_MP_MAX_DEPTH)
		return cv_errf(err, 0, "JSON nested deeper than %d levels", JSON_MP_MAX_DEPTH);
	switch (json_object_get_type(j)) {
	case json_type_null:
		msgpack_pack_nil(pk);
		return 0;
	case json_type_boolean:
		if (json_object_get_boolean(j))
			msgpack_pack_true(pk);
		else
			msgpack_pack_false(pk);
		return 0;
	case json_type_double:
		msgpack_pack_double(pk, json_object_get_double(j));
		return 0;
	case json_type_int: {
		/* json-c keeps integers above INT64_MAX as uint64; get_int64
		 * then saturates, get_uint64 has the real value. */
		int64_t v = json_object_get_int64(j);
		if (v == INT64_MAX && json_object_get_uint64(j) > (uint64_t)INT64_MAX)
			msgpack_pack_uint64(pk, json_object_get_uint64(j));
		else
			msgpack_pack_int64(pk, v);
		return 0;
	}
	case json_type_string: {
		int n = json_object_get_string_len(j);
		msgpack_pack_str(pk, (size_t)n);
		msgpack_pack_str_body(pk, json_object_get_string(j), (size_t)n);
		return 0;
	}
	case json_type_array: {
		size_t n = json_object_array_length(j);
		msgpack_pack_array(pk, n);
		for (size_t i = 0; i < n; i++)
			if (pack_rec(json_object_array_get_idx(j, i), pk, depth + 1, err) < 0)
				return -1;
		return 0;
	}
	case json_type_object: {
		msgpack_pack_map(pk, (size_t)json_object_object_length(j));
		json_object_object_foreach(j, key, val)
		{
			size_t kl = strlen(key);
			msgpack_pack_str(pk, kl);
			msgpack_pack_str_body(pk, key, kl);
			if (pack_rec(val, pk, depth + 1, err) < 0)
				return -1;
		}
		return 0;
	}
	}
	return cv_errf(err, 0, "JSON value of unknown type %d", (int)json_object_get_type(j));
}

int json_mp_pack(json_object *j, msgpack_packer *pk, struct cv_error *err)
{
	return pack_rec(j, pk, 0, err);
}

int json_mp_convert(const char *text, size_t len, msgpack_sbuffer *out, struct cv_error *err)
{
	json_object *j = NULL;
	if (cli_json_parse(text, len, "JSON", &j, err) < 0)
		return -1;
	msgpack_packer pk;
	msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
	int r = json_mp_pack(j, &pk, err);
	json_object_put(j);
	return r;
}
