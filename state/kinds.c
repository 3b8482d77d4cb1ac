/* The record kinds and what the reader requires of each (docs/STATEFILE.md,
 * "Records"): one table, so that adding a kind is one line here and one
 * in enum sf_kind. */
#include <string.h>

#include "core/mpk.h"
#include "state/internal.h"

enum req_type { REQ_NONE, REQ_UINT, REQ_STR };
enum data_rule { DATA_MAY, DATA_MUST, DATA_NEVER };

struct req {
	const char *key;
	enum req_type type;
};

#define SF_REQ_MAX 5

static const struct {
	const char *name;
	enum data_rule data;
	struct req req[SF_REQ_MAX];
} kinds[SF_KIND_COUNT] = {
	[SF_KIND_CONTAINER] = { "container", DATA_MAY, { { "id", REQ_STR } } },
	[SF_KIND_TASK] = { "task", DATA_MAY, { { "pid", REQ_UINT } } },
	[SF_KIND_THREAD] = { "thread", DATA_MAY, { { "tid", REQ_UINT } } },
	[SF_KIND_MAPPING] = { "mapping", DATA_NEVER,
			      { { "start", REQ_UINT }, { "end", REQ_UINT }, { "prot", REQ_UINT },
				{ "flags", REQ_UINT }, { "offset", REQ_UINT } } },
	[SF_KIND_PAGES] = { "pages", DATA_MUST, { { "addr", REQ_UINT } } },
	[SF_KIND_FD] = { "fd", DATA_MAY, { { "fd", REQ_UINT } } },
	[SF_KIND_PIPE] = { "pipe", DATA_MAY, { { "id", REQ_UINT } } },
	[SF_KIND_FILE] = { "file", DATA_MAY, { { "path", REQ_STR } } },
	[SF_KIND_BLOB] = { "blob", DATA_MUST, { { "name", REQ_STR } } },
	[SF_KIND_END] = { "end", DATA_NEVER, { { "records", REQ_UINT }, { "data_bytes", REQ_UINT } } },
};

#define PAGE 4096u

const char *sf_kind_name(enum sf_kind k)
{
	return (unsigned)k < SF_KIND_COUNT ? kinds[k].name : NULL;
}

int sf_kind_lookup(const char *s, size_t len)
{
	for (int k = 0; k < SF_KIND_COUNT; k++)
		if (strlen(kinds[k].name) == len && memcmp(kinds[k].name, s, len) == 0)
			return k;
	return -1;
}

const msgpack_object *sf_map_get(const msgpack_object *map, const char *key)
{
	if (map->type != MSGPACK_OBJECT_MAP)
		return NULL;
	size_t kl = strlen(key);
	for (uint32_t i = 0; i < map->via.map.size; i++) {
		const msgpack_object *k = &map->via.map.ptr[i].key;
		if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == kl &&
		    memcmp(k->via.str.ptr, key, kl) == 0)
			return &map->via.map.ptr[i].val;
	}
	return NULL;
}

int sf_check_keys(const msgpack_object *map, const char *what, struct cv_error *err)
{
	uint32_t n = map->via.map.size;
	if (n > SF_FIELDS_MAX)
		return cv_errf(err, 0, "%s has %u fields, more than %u", what, n, SF_FIELDS_MAX);
	const msgpack_object_kv *kv = map->via.map.ptr;
	for (uint32_t i = 0; i < n; i++) {
		if (kv[i].key.type != MSGPACK_OBJECT_STR)
			return cv_errf(err, 0, "%s: a key is a %s, not a string", what,
				       mpk_type_name(kv[i].key.type));
		/* n ≤ 256: the quadratic scan costs at most 32640 compares. */
		for (uint32_t j = 0; j < i; j++)
			if (kv[j].key.via.str.size == kv[i].key.via.str.size &&
			    memcmp(kv[j].key.via.str.ptr, kv[i].key.via.str.ptr,
				   kv[i].key.via.str.size) == 0)
				return cv_errf(err, 0, "%s: key \"%.*s\" appears twice", what,
					       (int)(kv[i].key.via.str.size > 64 ? 64 : kv[i].key.via.str.size),
					       kv[i].key.via.str.ptr);
	}
	return 0;
}

int sf_kind_check(enum sf_kind k, const msgpack_object *rec, uint64_t data_len, uint64_t index,
		  struct cv_error *err)
{
	const char *name = kinds[k].name;
	for (int i = 0; i < SF_REQ_MAX && kinds[k].req[i].key; i++) {
		const struct req *q = &kinds[k].req[i];
		const msgpack_object *v = sf_map_get(rec, q->key);
		if (!v)
			return cv_errf(err, 0, "record %llu (%s): missing field %s",
				       (unsigned long long)index, name, q->key);
		if (q->type == REQ_UINT && v->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
			return cv_errf(err, 0, "record %llu (%s): %s: expected an unsigned integer, got %s",
				       (unsigned long long)index, name, q->key, mpk_type_name(v->type));
		if (q->type == REQ_STR && v->type != MSGPACK_OBJECT_STR)
			return cv_errf(err, 0, "record %llu (%s): %s: expected a string, got %s",
				       (unsigned long long)index, name, q->key, mpk_type_name(v->type));
	}
	if (kinds[k].data == DATA_MUST && data_len == 0)
		return cv_errf(err, 0, "record %llu (%s): no data run (data must be > 0)",
			       (unsigned long long)index, name);
	if (kinds[k].data == DATA_NEVER && data_len != 0)
		return cv_errf(err, 0, "record %llu (%s): kind %s carries no data run",
			       (unsigned long long)index, name, name);
	/* Kind-specific sense: what the restore would otherwise trip on. */
	if (k == SF_KIND_MAPPING) {
		uint64_t s = sf_map_get(rec, "start")->via.u64, e = sf_map_get(rec, "end")->via.u64;
		if (s >= e || s % PAGE || e % PAGE)
			return cv_errf(err, 0,
				       "record %llu (mapping): [0x%llx, 0x%llx) is not a page-aligned, non-empty range",
				       (unsigned long long)index, (unsigned long long)s,
				       (unsigned long long)e);
		const msgpack_object *path = sf_map_get(rec, "path");
		if (path && path->type != MSGPACK_OBJECT_STR && path->type != MSGPACK_OBJECT_NIL)
			return cv_errf(err, 0, "record %llu (mapping): path: expected a string",
				       (unsigned long long)index);
	}
	if (k == SF_KIND_PAGES) {
		uint64_t a = sf_map_get(rec, "addr")->via.u64;
		if (a % PAGE || data_len % PAGE || a + data_len < a)
			return cv_errf(err, 0,
				       "record %llu (pages): 0x%llx + %llu bytes is not a run of whole pages",
				       (unsigned long long)index, (unsigned long long)a,
				       (unsigned long long)data_len);
	}
	return 0;
}
