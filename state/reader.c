/* The state file reader (state/state.h): a resumable stage machine in
 * lz4's LZ4F_decompress style. Input of any split goes through the
 * envelope stages, then through LZ4F_decompress into one reused buffer,
 * from which records are framed (u32 length, then the body gathered up to
 * SF_RECORD_MAX) and data runs are handed out as slices of that buffer
 * without copying. Every length is checked against its bound before
 * anything is allocated for it; every damage is an error naming it. */
#include <errno.h>
#include <inttypes.h>
#include <lz4frame.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "state/internal.h"

enum stage { ST_MAGIC, ST_METALEN, ST_META, ST_METACRC, ST_FRAME, ST_AFTER, ST_FAILED };
enum rstage { RS_LEN, RS_BODY, RS_DATA, RS_END_SEEN };

/* sf_reader_reset zeroes every field but the buffers and contexts it
 * names: a field that owns memory must be freed or kept there. */
struct sf_reader {
	enum stage st;
	unsigned char hdr[8]; /* magic, then the metadata length, then its CRC */
	size_t hdr_have;
	uint32_t crc;         /* of the envelope so far */
	uint64_t meta_len;
	unsigned char *mbuf; /* the metadata (its strings point into it) */
	unsigned char *buf;  /* each record's body, reused */
	size_t buf_have, buf_cap;
	msgpack_zone *meta_zone; /* with mbuf, owns meta (both NULL once taken) */
	msgpack_object meta;
	bool have_meta;
	msgpack_zone *rec_zone; /* the current record, cleared for the next */
	msgpack_object rec;
	LZ4F_dctx *dctx;
	unsigned char *dbuf; /* decompressed bytes not yet parsed: [dpos, dlen) */
	size_t dpos, dlen;
	bool lz_more;    /* LZ4F may hold output it could not give (dbuf was full) */
	bool frame_done; /* LZ4F reported the frame's end (checksums verified unless skipped) */
	bool skip_csum;  /* sf_reader_skip_checksums: LZ4F computes none */
	enum rstage rs;
	unsigned char lenb[4];
	size_t lenb_have;
	uint32_t rec_len;
	uint64_t run_len, run_off;
	uint64_t records, data_bytes; /* seen in the stream */
	uint64_t end_records, end_data;
	uint64_t offset;   /* input bytes consumed */
	uint64_t doffset;  /* decompressed bytes parsed */
};

struct sf_reader *sf_reader_create(struct cv_error *err)
{
	struct sf_reader *r = calloc(1, sizeof(*r));
	if (!r)
		goto nomem;
	r->dbuf = malloc(SF_READ_SLICE);
	r->rec_zone = msgpack_zone_new(8192);
	size_t e = LZ4F_createDecompressionContext(&r->dctx, LZ4F_VERSION);
	if (!r->dbuf || !r->rec_zone || LZ4F_isError(e)) {
		sf_reader_free(r);
		goto nomem;
	}
	return r;
nomem:
	cv_errf(err, ENOMEM, "state file reader");
	return NULL;
}

void sf_reader_free(struct sf_reader *r)
{
	if (!r)
		return;
	LZ4F_freeDecompressionContext(r->dctx);
	free(r->dbuf);
	free(r->buf);
	free(r->mbuf);
	if (r->meta_zone)
		msgpack_zone_free(r->meta_zone);
	if (r->rec_zone)
		msgpack_zone_free(r->rec_zone);
	free(r);
}

void sf_reader_reset(struct sf_reader *r)
{
	free(r->mbuf);
	if (r->meta_zone)
		msgpack_zone_free(r->meta_zone);
	msgpack_zone_clear(r->rec_zone);
	LZ4F_resetDecompressionContext(r->dctx);
	/* Everything but the buffers and contexts starts over. */
	struct sf_reader keep = *r;
	memset(r, 0, sizeof(*r));
	r->buf = keep.buf;
	r->buf_cap = keep.buf_cap;
	r->rec_zone = keep.rec_zone;
	r->dctx = keep.dctx;
	r->dbuf = keep.dbuf;
}

void sf_reader_skip_checksums(struct sf_reader *r)
{
	r->skip_csum = true;
}

const msgpack_object *sf_reader_meta(const struct sf_reader *r)
{
	return r->have_meta ? &r->meta : NULL;
}

uint64_t sf_reader_offset(const struct sf_reader *r)
{
	return r->offset;
}

int sf_reader_take_meta(struct sf_reader *r, msgpack_zone **zone, const msgpack_object **meta,
			struct cv_error *err)
{
	if (!r->have_meta || !r->meta_zone)
		return cv_errf(err, 0, "state file: no metadata");
	/* The map's strings point into mbuf and its top object sits in the
	 * reader: hand both to the zone so that they live as long as it. */
	msgpack_object *o = msgpack_zone_malloc(r->meta_zone, sizeof(*o));
	if (!o || !msgpack_zone_push_finalizer(r->meta_zone, free, r->mbuf))
		return cv_errf(err, ENOMEM, "state file metadata");
	*o = r->meta;
	r->mbuf = NULL;
	*zone = r->meta_zone;
	*meta = o;
	r->meta_zone = NULL;
	r->have_meta = false;
	return 0;
}

static int fail(struct sf_reader *r, struct cv_error *err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(struct sf_reader *r, struct cv_error *err, const char *fmt, ...)
{
	char msg[CV_ERROR_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	r->st = ST_FAILED;
	return cv_errf(err, 0, "state file: %s", msg);
}

/* Makes room for n bytes in buf (n is bounded by the caller). */
static int reserve(struct sf_reader *r, size_t n, struct cv_error *err)
{
	if (n <= r->buf_cap)
		return 0;
	unsigned char *b = realloc(r->buf, n);
	if (!b) {
		r->st = ST_FAILED;
		return cv_errf(err, ENOMEM, "state file: %zu bytes for a record", n);
	}
	r->buf = b;
	r->buf_cap = n;
	return 0;
}

/* Copies into dst (have of want bytes so far) from src; returns bytes taken. */
static size_t gather(unsigned char *dst, size_t *have, size_t want, const unsigned char *src,
		     size_t avail)
{
	size_t k = want - *have;
	if (k > avail)
		k = avail;
	memcpy(dst + *have, src, k);
	*have += k;
	return k;
}

static int check_meta(struct sf_reader *r, struct cv_error *err)
{
	if (sf_mp_check(r->mbuf, r->meta_len, SF_RECORD_DEPTH, "metadata", err) < 0) {
		r->st = ST_FAILED;
		return cv_error_wrap(err, "state file");
	}
	r->meta_zone = msgpack_zone_new(8192);
	if (!r->meta_zone) {
		r->st = ST_FAILED;
		return cv_errf(err, ENOMEM, "state file metadata");
	}
	size_t off = 0;
	if (msgpack_unpack((const char *)r->mbuf, r->meta_len, &off, r->meta_zone, &r->meta) !=
	    MSGPACK_UNPACK_SUCCESS)
		return fail(r, err, "metadata does not decode");
	if (r->meta.type != MSGPACK_OBJECT_MAP)
		return fail(r, err, "metadata is not a map");
	if (sf_check_keys(&r->meta, "metadata", err) < 0) {
		r->st = ST_FAILED;
		return cv_error_wrap(err, "state file");
	}
	const msgpack_object *v = sf_map_get(&r->meta, "version");
	if (!v || v->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
		return fail(r, err, "metadata has no version");
	if (v->via.u64 != SF_VERSION)
		return fail(r, err, "unknown version %" PRIu64 " (this cvisor reads version %d)",
			    v->via.u64, SF_VERSION);
	v = sf_map_get(&r->meta, "compression");
	if (!v || v->type != MSGPACK_OBJECT_STR || v->via.str.size != 3 ||
	    memcmp(v->via.str.ptr, "lz4", 3) != 0)
		return fail(r, err, "metadata: compression must be \"lz4\"");
	v = sf_map_get(&r->meta, "container_count");
	if (!v || v->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
		return fail(r, err, "metadata: container_count missing or not an unsigned integer");
	v = sf_map_get(&r->meta, "container_specs");
	if (v && v->type != MSGPACK_OBJECT_MAP)
		return fail(r, err, "metadata: container_specs is not a map");
	r->have_meta = true;
	return 0;
}

/* The whole record body is in buf: check, decode and validate it. */
static int take_record(struct sf_reader *r, struct sf_event *ev, struct cv_error *err)
{
	uint64_t index = r->records + 1;
	char what[48];
	snprintf(what, sizeof(what), "record %" PRIu64, index);
	if (sf_mp_check(r->buf, r->rec_len, SF_RECORD_DEPTH, what, err) < 0) {
		r->st = ST_FAILED;
		return cv_error_wrap(err, "state file");
	}
	msgpack_zone_clear(r->rec_zone);
	size_t off = 0;
	if (msgpack_unpack((const char *)r->buf, r->rec_len, &off, r->rec_zone, &r->rec) !=
	    MSGPACK_UNPACK_SUCCESS)
		return fail(r, err, "record %" PRIu64 " does not decode", index);
	if (r->rec.type != MSGPACK_OBJECT_MAP)
		return fail(r, err, "record %" PRIu64 " is not a map", index);
	if (sf_check_keys(&r->rec, what, err) < 0) {
		r->st = ST_FAILED;
		return cv_error_wrap(err, "state file");
	}
	const msgpack_object *k = sf_map_get(&r->rec, "kind");
	if (!k || k->type != MSGPACK_OBJECT_STR)
		return fail(r, err, "record %" PRIu64 " has no kind", index);
	int kind = sf_kind_lookup(k->via.str.ptr, k->via.str.size);
	if (kind < 0)
		return fail(r, err, "record %" PRIu64 " has unknown kind \"%.*s\"", index,
			    (int)(k->via.str.size > 64 ? 64 : k->via.str.size), k->via.str.ptr);
	uint64_t dlen = 0;
	const msgpack_object *d = sf_map_get(&r->rec, "data");
	if (d) {
		if (d->type != MSGPACK_OBJECT_POSITIVE_INTEGER || d->via.u64 == 0)
			return fail(r, err, "record %" PRIu64 " (%s): data must be a positive integer",
				    index, sf_kind_name(kind));
		dlen = d->via.u64;
	}
	if (sf_kind_check(kind, &r->rec, dlen, index, err) < 0) {
		r->st = ST_FAILED;
		return cv_error_wrap(err, "state file");
	}
	if (kind == SF_KIND_END) {
		r->end_records = sf_map_get(&r->rec, "records")->via.u64;
		r->end_data = sf_map_get(&r->rec, "data_bytes")->via.u64;
		if (r->end_records != r->records || r->end_data != r->data_bytes)
			return fail(r, err,
				    "the end record counts %" PRIu64 " records and %" PRIu64
				    " data bytes, the stream holds %" PRIu64 " and %" PRIu64,
				    r->end_records, r->end_data, r->records, r->data_bytes);
		r->rs = RS_END_SEEN;
		return 0; /* SF_EV_END waits for the frame's checksum */
	}
	r->records++;
	ev->type = SF_EV_RECORD;
	ev->obj = &r->rec;
	ev->kind = kind;
	ev->data_len = dlen;
	r->run_len = dlen;
	r->run_off = 0;
	r->rs = dlen ? RS_DATA : RS_LEN;
	return 0;
}

/* Parses decompressed bytes in dbuf until one event or dbuf is empty. */
static int parse(struct sf_reader *r, struct sf_event *ev, struct cv_error *err)
{
	while (r->dpos < r->dlen && ev->type == SF_EV_NONE) {
		const unsigned char *p = r->dbuf + r->dpos;
		size_t avail = r->dlen - r->dpos, k;
		switch (r->rs) {
		case RS_LEN:
			k = gather(r->lenb, &r->lenb_have, 4, p, avail);
			if (r->lenb_have == 4) {
				r->rec_len = (uint32_t)r->lenb[0] << 24 | (uint32_t)r->lenb[1] << 16 |
					     (uint32_t)r->lenb[2] << 8 | r->lenb[3];
				r->lenb_have = 0;
				if (r->rec_len == 0)
					return fail(r, err, "record %" PRIu64 " is empty",
						    r->records + 1);
				if (r->rec_len > SF_RECORD_MAX)
					return fail(r, err,
						    "record %" PRIu64 " claims %" PRIu32
						    " bytes, over the limit of %u",
						    r->records + 1, r->rec_len, SF_RECORD_MAX);
				if (reserve(r, r->rec_len, err) < 0)
					return -1;
				r->buf_have = 0;
				r->rs = RS_BODY;
			}
			break;
		case RS_BODY:
			k = gather(r->buf, &r->buf_have, r->rec_len, p, avail);
			if (r->buf_have == r->rec_len) {
				r->dpos += k;
				r->doffset += k;
				if (take_record(r, ev, err) < 0)
					return -1;
				k = 0;
			}
			break;
		case RS_DATA:
			k = avail;
			if (k > r->run_len - r->run_off)
				k = (size_t)(r->run_len - r->run_off);
			ev->type = SF_EV_DATA;
			ev->data = p;
			ev->len = k;
			ev->data_off = r->run_off;
			r->run_off += k;
			r->data_bytes += k;
			if (r->run_off == r->run_len)
				r->rs = RS_LEN;
			break;
		case RS_END_SEEN:
		default:
			return fail(r, err, "%zu bytes follow the end record inside the frame", avail);
		}
		r->dpos += k;
		r->doffset += k;
	}
	return 0;
}

/* The frame ended (its checksum verified): the record stream must have
 * ended with the end record exactly there. */
static int frame_end(struct sf_reader *r, struct sf_event *ev, struct cv_error *err)
{
	switch (r->rs) {
	case RS_END_SEEN:
		break;
	case RS_LEN:
		if (r->lenb_have == 0)
			return fail(r, err, "no end record: the stream stops after %" PRIu64 " records",
				    r->records);
		/* fallthrough */
	case RS_BODY:
		return fail(r, err, "no end record: the stream stops inside record %" PRIu64,
			    r->records + 1);
	case RS_DATA:
	default:
		return fail(r, err,
			    "no end record: the stream stops inside the data run of record %" PRIu64
			    " (%" PRIu64 " of %" PRIu64 " bytes)",
			    r->records, r->run_off, r->run_len);
	}
	r->st = ST_AFTER;
	ev->type = SF_EV_END;
	ev->records = r->records;
	ev->data_bytes = r->data_bytes;
	return 0;
}

static int lz4_error(struct sf_reader *r, size_t code, struct cv_error *err)
{
	const char *name = LZ4F_getErrorName(code);
	if (strncmp(name, "ERROR_", 6) == 0)
		name += 6;
	if (strstr(name, "hecksum"))
		return fail(r, err, "checksum mismatch in the compressed stream near byte %" PRIu64
			    " (lz4: %s): the file is damaged", r->offset, name);
	return fail(r, err, "the compressed stream is damaged near byte %" PRIu64 " (lz4: %s)",
		    r->offset, name);
}

int sf_reader_feed(struct sf_reader *r, const void *in, size_t *in_len, struct sf_event *ev,
		   struct cv_error *err)
{
	const unsigned char *p = in;
	size_t avail = *in_len, used = 0;
	int rc = 0;
	memset(ev, 0, sizeof(*ev));
	ev->type = SF_EV_NONE;
	while (rc == 0 && ev->type == SF_EV_NONE) {
		size_t k;
		switch (r->st) {
		case ST_MAGIC:
			if (used == avail)
				goto out;
			k = gather(r->hdr, &r->hdr_have, SF_MAGIC_LEN, p + used, avail - used);
			used += k;
			r->offset += k;
			if (r->hdr_have < SF_MAGIC_LEN)
				break;
			if (memcmp(r->hdr, SF_MAGIC, SF_MAGIC_LEN) != 0) {
				rc = fail(r, err, "bad magic: not a cvisor state file (it starts %02x %02x %02x %02x %02x %02x %02x %02x, expected \"%s\")",
					  r->hdr[0], r->hdr[1], r->hdr[2], r->hdr[3], r->hdr[4],
					  r->hdr[5], r->hdr[6], r->hdr[7], SF_MAGIC);
				break;
			}
			r->crc = sf_crc32(0, r->hdr, SF_MAGIC_LEN);
			r->hdr_have = 0;
			r->st = ST_METALEN;
			break;
		case ST_METALEN:
			if (used == avail)
				goto out;
			k = gather(r->hdr, &r->hdr_have, 8, p + used, avail - used);
			used += k;
			r->offset += k;
			if (r->hdr_have < 8)
				break;
			r->meta_len = sf_be64(r->hdr);
			r->crc = sf_crc32(r->crc, r->hdr, 8);
			r->hdr_have = 0;
			if (r->meta_len == 0 || r->meta_len > SF_META_MAX) {
				rc = fail(r, err, "metadata length %" PRIu64 " is out of range (1 to %u bytes)",
					  r->meta_len, SF_META_MAX);
				break;
			}
			r->mbuf = malloc(r->meta_len);
			if (!r->mbuf) {
				r->st = ST_FAILED;
				rc = cv_errf(err, ENOMEM, "state file metadata");
				break;
			}
			r->buf_have = 0;
			r->st = ST_META;
			break;
		case ST_META:
			if (used == avail)
				goto out;
			k = gather(r->mbuf, &r->buf_have, r->meta_len, p + used, avail - used);
			used += k;
			r->offset += k;
			if (r->buf_have < r->meta_len)
				break;
			r->crc = sf_crc32(r->crc, r->mbuf, r->meta_len);
			r->st = ST_METACRC;
			break;
		case ST_METACRC:
			if (used == avail)
				goto out;
			k = gather(r->hdr, &r->hdr_have, 4, p + used, avail - used);
			used += k;
			r->offset += k;
			if (r->hdr_have < 4)
				break;
			if (((uint32_t)r->hdr[0] << 24 | (uint32_t)r->hdr[1] << 16 |
			     (uint32_t)r->hdr[2] << 8 | r->hdr[3]) != r->crc) {
				rc = fail(r, err, "metadata checksum mismatch: the envelope (magic, length, metadata) is damaged");
				break;
			}
			if ((rc = check_meta(r, err)) < 0)
				break;
			r->st = ST_FRAME;
			ev->type = SF_EV_META;
			ev->obj = &r->meta;
			break;
		case ST_FRAME: {
			if (r->dpos < r->dlen) {
				rc = parse(r, ev, err);
				break;
			}
			if (r->frame_done) {
				rc = frame_end(r, ev, err);
				break;
			}
			if (used == avail && !r->lz_more)
				goto out;
			size_t src_n = avail - used, dst_n = SF_READ_SLICE;
			/* LZ4F keeps skipChecksums for the rest of the frame once given. */
			LZ4F_decompressOptions_t opt = {.skipChecksums = r->skip_csum};
			size_t hint = LZ4F_decompress(r->dctx, r->dbuf, &dst_n, p + used, &src_n, &opt);
			used += src_n;
			r->offset += src_n;
			if (LZ4F_isError(hint)) {
				rc = lz4_error(r, hint, err);
				break;
			}
			if (src_n == 0 && dst_n == 0 && hint != 0 && used < avail) {
				/* Never seen; a stuck decoder must not spin the caller. */
				rc = fail(r, err, "the compressed stream makes no progress at byte %" PRIu64,
					  r->offset);
				break;
			}
			r->dpos = 0;
			r->dlen = dst_n;
			r->lz_more = dst_n == SF_READ_SLICE;
			if (hint == 0)
				r->frame_done = true;
			break;
		}
		case ST_AFTER:
			if (used == avail)
				goto out;
			rc = fail(r, err, "%zu bytes of garbage after the end of the LZ4 frame (at byte %" PRIu64 ")",
				  avail - used, r->offset);
			break;
		case ST_FAILED:
		default:
			rc = cv_errf(err, 0, "state file: the reader already failed");
			break;
		}
	}
out:
	*in_len = used;
	return rc;
}

int sf_reader_finish(struct sf_reader *r, struct cv_error *err)
{
	switch (r->st) {
	case ST_MAGIC:
		if (r->offset == 0)
			return fail(r, err, "the file is empty");
		return fail(r, err, "truncated: the file ends inside the magic (%zu of 8 bytes)",
			    r->hdr_have);
	case ST_METALEN:
		return fail(r, err, "truncated: the file ends inside the metadata length");
	case ST_META:
		return fail(r, err, "truncated: the file ends inside the metadata (%zu of %" PRIu64 " bytes)",
			    r->buf_have, r->meta_len);
	case ST_METACRC:
		return fail(r, err, "truncated: the file ends inside the metadata checksum");
	case ST_FRAME:
		if (r->dpos < r->dlen || r->lz_more || r->frame_done)
			return cv_errf(err, 0, "state file: finish called with events still to read");
		if (r->rs == RS_END_SEEN)
			return fail(r, err, "truncated: the LZ4 frame is cut after the end record (its end mark and checksum are missing) at byte %" PRIu64,
				    r->offset);
		return fail(r, err, "truncated: the file ends inside the LZ4 frame at byte %" PRIu64
			    ", after %" PRIu64 " records and no end record",
			    r->offset, r->records);
	case ST_AFTER:
		return 0;
	case ST_FAILED:
	default:
		return cv_errf(err, 0, "state file: the reader already failed");
	}
}
