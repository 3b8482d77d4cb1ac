/* Field-table msgpack decoding (see core/mpk.h).
 *
 * Every error names the field by its full path ("spec.process.user.uid"):
 * the path is built on the stack as the decoder descends, nested schema
 * names being replaced by the parent's path. All memory comes from the
 * caller's zone, so an error half-way leaves nothing to free. */
#include "core/mpk.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Bound on the element count of any decoded vector: keeps a hostile
 * message from making us allocate n * sizeof(struct) for a huge n. */
#define MPK_MAX_ELEMS (1u << 20)

#define MPK_PATH_MAX 512

const char *mpk_type_name(msgpack_object_type t)
{
	switch (t) {
	case MSGPACK_OBJECT_NIL:
		return "nil";
	case MSGPACK_OBJECT_BOOLEAN:
		return "bool";
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		return "integer";
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:
		return "float";
	case MSGPACK_OBJECT_STR:
		return "string";
	case MSGPACK_OBJECT_ARRAY:
		return "array";
	case MSGPACK_OBJECT_MAP:
		return "map";
	case MSGPACK_OBJECT_BIN:
		return "binary";
	case MSGPACK_OBJECT_EXT:
		return "extension";
	}
	return "unknown";
}

static bool key_is(const msgpack_object *k, const char *key, size_t klen, bool fold)
{
	if (k->type != MSGPACK_OBJECT_STR || k->via.str.size != klen)
		return false;
	if (fold)
		return strncasecmp(k->via.str.ptr, key, klen) == 0;
	return memcmp(k->via.str.ptr, key, klen) == 0;
}

const msgpack_object *mpk_map_get(const msgpack_object *map, const char *key)
{
	if (!map || map->type != MSGPACK_OBJECT_MAP)
		return NULL;
	size_t klen = strlen(key);
	const msgpack_object *found = NULL;
	/* Exact match first; the last occurrence wins, as in encoding/json. */
	for (uint32_t i = 0; i < map->via.map.size; i++)
		if (key_is(&map->via.map.ptr[i].key, key, klen, false))
			found = &map->via.map.ptr[i].val;
	if (found)
		return found;
	for (uint32_t i = 0; i < map->via.map.size; i++)
		if (key_is(&map->via.map.ptr[i].key, key, klen, true))
			found = &map->via.map.ptr[i].val;
	return found;
}

/* A NUL-terminated zone copy of a msgpack string. */
static int copy_str(const msgpack_object *o, const char *path, msgpack_zone *zone, char **out,
		    struct cv_error *err)
{
	if (o->type != MSGPACK_OBJECT_STR)
		return cv_errf(err, 0, "%s: expected string, got %s", path, mpk_type_name(o->type));
	uint32_t n = o->via.str.size;
	if (n && memchr(o->via.str.ptr, '\0', n))
		return cv_errf(err, 0, "%s: string contains a NUL byte", path);
	char *s = msgpack_zone_malloc(zone, (size_t)n + 1);
	if (!s)
		return cv_errf(err, ENOMEM, "%s: decoding a string of %u bytes", path, n);
	if (n)
		memcpy(s, o->via.str.ptr, n);
	s[n] = '\0';
	*out = s;
	return 0;
}

int mpk_decode_str(const msgpack_object *obj, const char *what, msgpack_zone *zone, char **out,
		   struct cv_error *err)
{
	*out = NULL;
	if (!obj)
		return cv_errf(err, 0, "%s: expected string, got nothing", what);
	return copy_str(obj, what, zone, out, err);
}

/* Signed view of an integer object, with a flag for values above INT64_MAX. */
static int get_int(const msgpack_object *o, const char *path, int64_t *sv, uint64_t *uv,
		   bool *neg, struct cv_error *err)
{
	if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
		*uv = o->via.u64;
		*neg = false;
		*sv = (int64_t)o->via.u64; /* meaningful only when <= INT64_MAX */
		return 0;
	}
	if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
		*sv = o->via.i64;
		*neg = o->via.i64 < 0;
		*uv = (uint64_t)o->via.i64;
		return 0;
	}
	return cv_errf(err, 0, "%s: expected integer, got %s", path, mpk_type_name(o->type));
}

static int range_err(const char *path, bool neg, int64_t sv, uint64_t uv, const char *tname,
		     struct cv_error *err)
{
	if (neg)
		return cv_errf(err, 0, "%s: value %" PRId64 " out of range for %s", path, sv, tname);
	return cv_errf(err, 0, "%s: value %" PRIu64 " out of range for %s", path, uv, tname);
}

static int decode_int(const msgpack_object *o, enum mpk_kind kind, const char *path, void *dst,
		      struct cv_error *err)
{
	int64_t sv = 0;
	uint64_t uv = 0;
	bool neg = false;
	if (get_int(o, path, &sv, &uv, &neg, err) < 0)
		return -1;
	switch (kind) {
	case MPK_I32:
		if (neg ? sv < INT32_MIN : uv > INT32_MAX)
			return range_err(path, neg, sv, uv, "int32", err);
		*(int32_t *)dst = (int32_t)sv;
		return 0;
	case MPK_U32:
		if (neg || uv > UINT32_MAX)
			return range_err(path, neg, sv, uv, "uint32", err);
		*(uint32_t *)dst = (uint32_t)uv;
		return 0;
	case MPK_I64:
		if (!neg && uv > INT64_MAX)
			return range_err(path, neg, sv, uv, "int64", err);
		*(int64_t *)dst = sv;
		return 0;
	case MPK_U64:
		if (neg)
			return range_err(path, neg, sv, uv, "uint64", err);
		*(uint64_t *)dst = uv;
		return 0;
	case MPK_STR:
	case MPK_BOOL:
	case MPK_STRV:
	case MPK_I32V:
	case MPK_U32V:
	case MPK_OBJ:
	case MPK_STRUCT:
	case MPK_STRUCTV:
		break;
	}
	return cv_errf(err, 0, "%s: internal error: not an integer kind", path);
}

static int decode_map(const msgpack_object *obj, const struct mpk_schema *schema, void *out,
		      msgpack_zone *zone, const char *path, struct cv_error *err);

/* Checks an array and bounds its length; `what` describes the expected
 * elements for the message ("array of strings"). */
static int check_array(const msgpack_object *o, const char *path, const char *what,
		       struct cv_error *err)
{
	if (o->type != MSGPACK_OBJECT_ARRAY)
		return cv_errf(err, 0, "%s: expected %s, got %s", path, what, mpk_type_name(o->type));
	if (o->via.array.size > MPK_MAX_ELEMS)
		return cv_errf(err, 0, "%s: %u elements, at most %u are accepted", path,
			       o->via.array.size, MPK_MAX_ELEMS);
	return 0;
}

static void *zalloc(msgpack_zone *zone, size_t n)
{
	void *p = msgpack_zone_malloc(zone, n ? n : 1);
	if (p)
		memset(p, 0, n ? n : 1);
	return p;
}

static int decode_value(const msgpack_object *o, const struct mpk_field *f, void *out,
			msgpack_zone *zone, const char *path, struct cv_error *err)
{
	char *base = out;
	void *dst = base + f->offset;
	char epath[MPK_PATH_MAX];

	switch (f->kind) {
	case MPK_STR:
		return copy_str(o, path, zone, (char **)dst, err);
	case MPK_BOOL:
		if (o->type != MSGPACK_OBJECT_BOOLEAN)
			return cv_errf(err, 0, "%s: expected bool, got %s", path, mpk_type_name(o->type));
		*(bool *)dst = o->via.boolean;
		return 0;
	case MPK_I32:
	case MPK_U32:
	case MPK_I64:
	case MPK_U64:
		return decode_int(o, f->kind, path, dst, err);
	case MPK_OBJ:
		*(const msgpack_object **)dst = o; /* borrowed: lives as long as the request */
		return 0;
	case MPK_STRUCT:
		if (o->type != MSGPACK_OBJECT_MAP)
			return cv_errf(err, 0, "%s: expected map, got %s", path, mpk_type_name(o->type));
		return decode_map(o, f->sub, dst, zone, path, err);
	case MPK_STRV: {
		if (check_array(o, path, "array of strings", err) < 0)
			return -1;
		uint32_t n = o->via.array.size;
		char **v = zalloc(zone, ((size_t)n + 1) * sizeof(char *));
		if (!v)
			return cv_errf(err, ENOMEM, "%s: decoding %u strings", path, n);
		for (uint32_t i = 0; i < n; i++) {
			snprintf(epath, sizeof(epath), "%s[%u]", path, i);
			if (copy_str(&o->via.array.ptr[i], epath, zone, &v[i], err) < 0)
				return -1;
		}
		v[n] = NULL;
		*(char ***)dst = v;
		if (f->count_offset != MPK_NONE)
			*(size_t *)(base + f->count_offset) = n;
		return 0;
	}
	case MPK_I32V:
	case MPK_U32V: {
		if (check_array(o, path, "array of integers", err) < 0)
			return -1;
		uint32_t n = o->via.array.size;
		enum mpk_kind ek = f->kind == MPK_I32V ? MPK_I32 : MPK_U32;
		void *v = zalloc(zone, (size_t)n * 4); /* int32_t and uint32_t are both 4 bytes */
		if (!v)
			return cv_errf(err, ENOMEM, "%s: decoding %u integers", path, n);
		for (uint32_t i = 0; i < n; i++) {
			snprintf(epath, sizeof(epath), "%s[%u]", path, i);
			if (decode_int(&o->via.array.ptr[i], ek, epath, (char *)v + (size_t)i * 4, err) < 0)
				return -1;
		}
		*(void **)dst = v;
		if (f->count_offset != MPK_NONE)
			*(size_t *)(base + f->count_offset) = n;
		return 0;
	}
	case MPK_STRUCTV: {
		if (check_array(o, path, "array", err) < 0)
			return -1;
		uint32_t n = o->via.array.size;
		size_t sz = f->sub->size;
		char *v = zalloc(zone, (size_t)n * sz);
		if (!v)
			return cv_errf(err, ENOMEM, "%s: decoding %u elements", path, n);
		for (uint32_t i = 0; i < n; i++) {
			const msgpack_object *e = &o->via.array.ptr[i];
			snprintf(epath, sizeof(epath), "%s[%u]", path, i);
			if (e->type != MSGPACK_OBJECT_MAP)
				return cv_errf(err, 0, "%s: expected map, got %s", epath,
					       mpk_type_name(e->type));
			if (decode_map(e, f->sub, v + (size_t)i * sz, zone, epath, err) < 0)
				return -1;
		}
		*(void **)dst = v;
		if (f->count_offset != MPK_NONE)
			*(size_t *)(base + f->count_offset) = n;
		return 0;
	}
	}
	return cv_errf(err, 0, "%s: internal error: unknown field kind %d", path, (int)f->kind);
}

static int decode_map(const msgpack_object *obj, const struct mpk_schema *schema, void *out,
		      msgpack_zone *zone, const char *path, struct cv_error *err)
{
	memset(out, 0, schema->size);
	char fpath[MPK_PATH_MAX];
	for (size_t i = 0; i < schema->nfields; i++) {
		const struct mpk_field *f = &schema->fields[i];
		snprintf(fpath, sizeof(fpath), "%s.%s", path, f->key);
		const msgpack_object *v = mpk_map_get(obj, f->key);
		if (!v || v->type == MSGPACK_OBJECT_NIL) {
			if (f->flags & MPK_REQUIRED)
				return cv_errf(err, 0, "%s: missing", fpath);
			continue;
		}
		if (decode_value(v, f, out, zone, fpath, err) < 0)
			return -1;
		if (f->has_offset != MPK_NONE)
			*(bool *)((char *)out + f->has_offset) = true;
	}
	return 0;
}

int mpk_decode(const msgpack_object *obj, const struct mpk_schema *schema, void *out,
	       msgpack_zone *zone, struct cv_error *err)
{
	memset(out, 0, schema->size);
	if (!obj)
		return cv_errf(err, 0, "%s: expected map, got nothing", schema->name);
	if (obj->type != MSGPACK_OBJECT_MAP)
		return cv_errf(err, 0, "%s: expected map, got %s", schema->name,
			       mpk_type_name(obj->type));
	return decode_map(obj, schema, out, zone, schema->name, err);
}

void mpk_pack_str(msgpack_packer *pk, const char *s)
{
	if (!s) {
		msgpack_pack_nil(pk);
		return;
	}
	size_t n = strlen(s);
	msgpack_pack_str(pk, n);
	msgpack_pack_str_body(pk, s, n);
}

void mpk_pack_key(msgpack_packer *pk, const char *key)
{
	size_t n = strlen(key);
	msgpack_pack_str(pk, n);
	msgpack_pack_str_body(pk, key, n);
}
