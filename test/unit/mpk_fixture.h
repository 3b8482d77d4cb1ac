#pragma once
/* Shared by the decoder tests: build msgpack input from JSON text and
 * unpack it into a zone, the way a request's argument arrives. The packer
 * is written here on purpose (not cmd/json_mp.c), so the tests do not
 * depend on the CLI's converter. */
#include <json.h>
#include <msgpack.h>
#include <stdint.h>
#include <string.h>

#include "core/mpk.h"
#include "test/unit/unit.h"

/* One decoded input: the packed bytes back the object's strings. */
struct fx {
	msgpack_sbuffer sb;
	msgpack_zone *zone;
	msgpack_object obj;
	msgpack_packer pk;
};

static void pack_json(msgpack_packer *pk, json_object *j)
{
	switch (json_object_get_type(j)) {
	case json_type_null:
		msgpack_pack_nil(pk);
		break;
	case json_type_boolean:
		if (json_object_get_boolean(j))
			msgpack_pack_true(pk);
		else
			msgpack_pack_false(pk);
		break;
	case json_type_double:
		msgpack_pack_double(pk, json_object_get_double(j));
		break;
	case json_type_int: {
		int64_t v = json_object_get_int64(j);
		if (v == INT64_MAX)
			msgpack_pack_uint64(pk, json_object_get_uint64(j));
		else
			msgpack_pack_int64(pk, v);
		break;
	}
	case json_type_string:
		mpk_pack_str(pk, json_object_get_string(j));
		break;
	case json_type_array: {
		size_t n = json_object_array_length(j);
		msgpack_pack_array(pk, n);
		for (size_t i = 0; i < n; i++)
			pack_json(pk, json_object_array_get_idx(j, i));
		break;
	}
	case json_type_object:
		msgpack_pack_map(pk, (size_t)json_object_object_length(j));
		json_object_object_foreach(j, k, v)
		{
			mpk_pack_key(pk, k);
			pack_json(pk, v);
		}
		break;
	}
}

static void fx_begin(struct fx *f)
{
	msgpack_sbuffer_init(&f->sb);
	msgpack_packer_init(&f->pk, &f->sb, msgpack_sbuffer_write);
	f->zone = msgpack_zone_new(4096);
}

/* Unpacks what was packed into f->obj. */
static void fx_unpack(struct fx *f)
{
	size_t off = 0;
	int r = msgpack_unpack(f->sb.data, f->sb.size, &off, f->zone, &f->obj);
	CHECK(r == MSGPACK_UNPACK_SUCCESS);
}

static void fx_json(struct fx *f, const char *json)
{
	fx_begin(f);
	json_object *j = json_tokener_parse(json);
	CHECK(j != NULL || strcmp(json, "null") == 0); /* null parses to NULL */
	pack_json(&f->pk, j);
	json_object_put(j);
	fx_unpack(f);
}

static void fx_end(struct fx *f)
{
	msgpack_zone_free(f->zone);
	msgpack_sbuffer_destroy(&f->sb);
}
