/* Typed helpers for the records whose fields the reader checks
 * (state/state.h): the engine writes and reads mappings and page runs
 * through these so that both sides agree on the field names. */
#include <string.h>

#include "core/mpk.h"
#include "state/internal.h"

int sf_put_mapping(struct sf_writer *w, const struct sf_mapping *m, struct cv_error *err)
{
	msgpack_packer *pk = sf_record_begin(w, SF_KIND_MAPPING, 5 + (m->path != NULL), 0, err);
	if (!pk)
		return -1;
	mpk_pack_key(pk, "start");
	msgpack_pack_uint64(pk, m->start);
	mpk_pack_key(pk, "end");
	msgpack_pack_uint64(pk, m->end);
	mpk_pack_key(pk, "prot");
	msgpack_pack_uint32(pk, m->prot);
	mpk_pack_key(pk, "flags");
	msgpack_pack_uint32(pk, m->flags);
	mpk_pack_key(pk, "offset");
	msgpack_pack_uint64(pk, m->offset);
	if (m->path) {
		mpk_pack_key(pk, "path");
		size_t n = m->path_len ? m->path_len : strlen(m->path);
		msgpack_pack_str(pk, n);
		msgpack_pack_str_body(pk, m->path, n);
	}
	return sf_record_end(w, err);
}

int sf_put_pages(struct sf_writer *w, uint64_t addr, uint64_t len, struct cv_error *err)
{
	msgpack_packer *pk = sf_record_begin(w, SF_KIND_PAGES, 1, len, err);
	if (!pk)
		return -1;
	mpk_pack_key(pk, "addr");
	msgpack_pack_uint64(pk, addr);
	return sf_record_end(w, err);
}

int sf_get_u64(const msgpack_object *map, const char *key, uint64_t *out, struct cv_error *err)
{
	const msgpack_object *v = sf_map_get(map, key);
	if (!v)
		return cv_errf(err, 0, "state file: %s: missing", key);
	if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
		return cv_errf(err, 0, "state file: %s: expected an unsigned integer, got %s", key,
			       mpk_type_name(v->type));
	*out = v->via.u64;
	return 0;
}

/* The reader has checked the fields' types; a path with an embedded NUL
 * cannot name a file, so it is refused here. */
int sf_get_mapping(const msgpack_object *rec, struct sf_mapping *m, struct cv_error *err)
{
	memset(m, 0, sizeof(*m));
	uint64_t prot, flags;
	if (sf_get_u64(rec, "start", &m->start, err) < 0 || sf_get_u64(rec, "end", &m->end, err) < 0 ||
	    sf_get_u64(rec, "prot", &prot, err) < 0 || sf_get_u64(rec, "flags", &flags, err) < 0 ||
	    sf_get_u64(rec, "offset", &m->offset, err) < 0)
		return -1;
	if (prot > UINT32_MAX || flags > UINT32_MAX)
		return cv_errf(err, 0, "state file: mapping prot/flags out of range");
	m->prot = (uint32_t)prot;
	m->flags = (uint32_t)flags;
	const msgpack_object *p = sf_map_get(rec, "path");
	if (p && p->type == MSGPACK_OBJECT_STR) {
		/* The record's strings are not NUL-terminated in place. */
		if (memchr(p->via.str.ptr, '\0', p->via.str.size))
			return cv_errf(err, 0, "state file: mapping path contains NUL");
		m->path = p->via.str.ptr;
		m->path_len = p->via.str.size;
	}
	return 0;
}
