/* The state file writer (state/state.h): envelope, then every record and
 * data run through one LZ4F compression context into one reused output
 * buffer that is handed to the sink after each step. Memory: the LZ4F
 * context (one block), the output buffer (its compress bound) and the
 * record being packed; nothing grows with the image. */
#include <errno.h>
#include <lz4frame.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>

#include "core/mpk.h"
#include "state/internal.h"

struct sf_writer {
	sf_sink_fn sink;
	void *opaque;
	LZ4F_cctx *cctx;
	LZ4F_preferences_t prefs;
	char *out; /* reused for every compression step */
	size_t out_cap;
	msgpack_sbuffer rec; /* the record being packed, after a 4-byte length hole */
	msgpack_packer pk;
	msgpack_zone *zone;  /* the record decoded back for the reader's checks */
	bool in_record;
	enum sf_kind kind;
	uint64_t run_len;  /* data run the current/last record announced */
	uint64_t run_left; /* of it, still to come */
	uint64_t records, data_bytes, out_bytes;
	bool failed, finished;
};

static int emit(struct sf_writer *w, const void *p, size_t n, struct cv_error *err)
{
	if (n == 0)
		return 0;
	if (w->sink(w->opaque, p, n, err) < 0) {
		w->failed = true;
		return -1;
	}
	w->out_bytes += n;
	return 0;
}

static int lz4_fail(struct sf_writer *w, size_t code, const char *what, struct cv_error *err)
{
	w->failed = true;
	return cv_errf(err, 0, "state file: %s: lz4: %s", what, LZ4F_getErrorName(code));
}

/* Compresses p[0..n) in slices that fit the output buffer's bound. */
static int compress(struct sf_writer *w, const void *p, size_t n, struct cv_error *err)
{
	const char *c = p;
	while (n > 0) {
		size_t k = n < SF_SLICE ? n : SF_SLICE;
		size_t r = LZ4F_compressUpdate(w->cctx, w->out, w->out_cap, c, k, NULL);
		if (LZ4F_isError(r))
			return lz4_fail(w, r, "compressing", err);
		if (emit(w, w->out, r, err) < 0)
			return -1;
		c += k;
		n -= k;
	}
	return 0;
}

static bool reserved_key(const char *k)
{
	static const char *const own[] = { "version", "compression", "container_count",
					   "container_specs", "network", "kernel_release",
					   "arch", "memory_bytes" };
	if (k[0] == '_')
		return true;
	for (size_t i = 0; i < sizeof(own) / sizeof(own[0]); i++)
		if (strcmp(k, own[i]) == 0)
			return true;
	return false;
}

/* Packs the metadata map into sb. */
static int pack_meta(msgpack_sbuffer *sb, const struct sf_meta *m, struct cv_error *err)
{
	for (size_t i = 0; i < m->nextra; i++)
		if (!m->extra_keys[i] || !m->extra_values[i] || reserved_key(m->extra_keys[i]))
			return cv_errf(err, 0, "state file metadata: key \"%s\" is reserved",
				       m->extra_keys[i] ? m->extra_keys[i] : "(null)");
	for (size_t i = 0; i < m->nspecs; i++)
		if (!m->spec_ids[i] || !m->specs[i])
			return cv_errf(err, 0, "state file metadata: container spec %zu is missing", i);
	struct utsname u;
	if (uname(&u) < 0)
		return cv_errf(err, errno, "uname");
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct tm tm;
	gmtime_r(&ts.tv_sec, &tm);
	char stamp[64], date[32];
	strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(stamp, sizeof(stamp), "%s.%09ldZ", date, ts.tv_nsec);

	msgpack_packer pk;
	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 8 + (m->network != NULL) + (uint32_t)m->nextra);
	mpk_pack_key(&pk, "version");
	msgpack_pack_uint32(&pk, SF_VERSION);
	mpk_pack_key(&pk, "_timestamp");
	mpk_pack_str(&pk, stamp);
	mpk_pack_key(&pk, "compression");
	mpk_pack_str(&pk, "lz4");
	mpk_pack_key(&pk, "container_count");
	msgpack_pack_uint32(&pk, m->container_count);
	mpk_pack_key(&pk, "container_specs");
	msgpack_pack_map(&pk, (uint32_t)m->nspecs);
	for (size_t i = 0; i < m->nspecs; i++) {
		mpk_pack_str(&pk, m->spec_ids[i]);
		mpk_pack_str(&pk, m->specs[i]);
	}
	if (m->network) {
		mpk_pack_key(&pk, "network");
		mpk_pack_str(&pk, m->network);
	}
	mpk_pack_key(&pk, "kernel_release");
	mpk_pack_str(&pk, u.release);
	mpk_pack_key(&pk, "arch");
	mpk_pack_str(&pk, u.machine);
	mpk_pack_key(&pk, "memory_bytes");
	msgpack_pack_uint64(&pk, m->memory_bytes);
	for (size_t i = 0; i < m->nextra; i++) {
		mpk_pack_str(&pk, m->extra_keys[i]);
		mpk_pack_str(&pk, m->extra_values[i]);
	}
	if (sb->size > SF_META_MAX)
		return cv_errf(err, 0, "state file metadata is %zu bytes, over the limit of %u",
			       sb->size, SF_META_MAX);
	return 0;
}

struct sf_writer *sf_writer_create(const struct sf_meta *meta, sf_sink_fn sink, void *opaque,
				   struct cv_error *err)
{
	struct sf_writer *w = calloc(1, sizeof(*w));
	if (!w) {
		cv_errf(err, ENOMEM, "state file writer");
		return NULL;
	}
	w->sink = sink;
	w->opaque = opaque;
	msgpack_sbuffer_init(&w->rec);
	msgpack_packer_init(&w->pk, &w->rec, msgpack_sbuffer_write);
	/* Linked 1 MiB blocks compress well and decode fast; both checksums
	 * are on so that any damage is refused (docs/STATEFILE.md). */
	w->prefs.frameInfo.blockSizeID = LZ4F_max1MB;
	w->prefs.frameInfo.blockMode = LZ4F_blockLinked;
	w->prefs.frameInfo.contentChecksumFlag = LZ4F_contentChecksumEnabled;
	w->prefs.frameInfo.blockChecksumFlag = LZ4F_blockChecksumEnabled;
	w->prefs.compressionLevel = 0;
	w->out_cap = LZ4F_compressBound(SF_SLICE, &w->prefs);
	if (w->out_cap < LZ4F_HEADER_SIZE_MAX)
		w->out_cap = LZ4F_HEADER_SIZE_MAX;
	w->out = malloc(w->out_cap);
	w->zone = msgpack_zone_new(8192);
	size_t r = LZ4F_createCompressionContext(&w->cctx, LZ4F_VERSION);
	if (!w->out || !w->zone || LZ4F_isError(r)) {
		cv_errf(err, ENOMEM, "state file writer");
		goto fail;
	}
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	if (pack_meta(&sb, meta, err) < 0) {
		msgpack_sbuffer_destroy(&sb);
		goto fail;
	}
	unsigned char head[SF_MAGIC_LEN + 8];
	memcpy(head, SF_MAGIC, SF_MAGIC_LEN);
	sf_put_be64(head + SF_MAGIC_LEN, sb.size);
	unsigned char crc[4];
	uint32_t c = sf_crc32(sf_crc32(0, head, sizeof(head)), sb.data, sb.size);
	crc[0] = (unsigned char)(c >> 24);
	crc[1] = (unsigned char)(c >> 16);
	crc[2] = (unsigned char)(c >> 8);
	crc[3] = (unsigned char)c;
	int e = emit(w, head, sizeof(head), err);
	if (e == 0)
		e = emit(w, sb.data, sb.size, err);
	if (e == 0)
		e = emit(w, crc, sizeof(crc), err);
	msgpack_sbuffer_destroy(&sb);
	if (e < 0)
		goto fail;
	r = LZ4F_compressBegin(w->cctx, w->out, w->out_cap, &w->prefs);
	if (LZ4F_isError(r)) {
		lz4_fail(w, r, "frame header", err);
		goto fail;
	}
	if (emit(w, w->out, r, err) < 0)
		goto fail;
	return w;
fail:
	sf_writer_free(w);
	return NULL;
}

void sf_writer_free(struct sf_writer *w)
{
	if (!w)
		return;
	LZ4F_freeCompressionContext(w->cctx);
	free(w->out);
	msgpack_sbuffer_destroy(&w->rec);
	if (w->zone)
		msgpack_zone_free(w->zone);
	free(w);
}

static int usable(struct sf_writer *w, struct cv_error *err)
{
	if (w->failed)
		return cv_errf(err, 0, "state file writer: an earlier write failed");
	if (w->finished)
		return cv_errf(err, 0, "state file writer: already finished");
	return 0;
}

static msgpack_packer *begin(struct sf_writer *w, enum sf_kind k, uint32_t nfields,
			     uint64_t data_len, struct cv_error *err)
{
	if (usable(w, err) < 0)
		return NULL;
	if ((unsigned)k >= SF_KIND_COUNT) {
		cv_errf(err, 0, "state file writer: unknown record kind %d", (int)k);
		return NULL;
	}
	if (w->in_record) {
		cv_errf(err, 0, "state file writer: the %s record before is not ended",
			sf_kind_name(w->kind));
		return NULL;
	}
	if (w->run_left) {
		cv_errf(err, 0, "state file writer: the %s record's data run lacks %llu of %llu bytes",
			sf_kind_name(w->kind), (unsigned long long)w->run_left,
			(unsigned long long)w->run_len);
		return NULL;
	}
	if (nfields > UINT32_MAX - 2) {
		cv_errf(err, 0, "state file writer: too many fields");
		return NULL;
	}
	msgpack_sbuffer_clear(&w->rec);
	static const char hole[4];
	msgpack_sbuffer_write(&w->rec, hole, sizeof(hole));
	msgpack_pack_map(&w->pk, nfields + 1 + (data_len > 0));
	mpk_pack_key(&w->pk, "kind");
	mpk_pack_str(&w->pk, sf_kind_name(k));
	if (data_len > 0) {
		mpk_pack_key(&w->pk, "data");
		msgpack_pack_uint64(&w->pk, data_len);
	}
	w->in_record = true;
	w->kind = k;
	w->run_len = data_len;
	return &w->pk;
}

msgpack_packer *sf_record_begin(struct sf_writer *w, enum sf_kind k, uint32_t nfields,
				uint64_t data_len, struct cv_error *err)
{
	if (k == SF_KIND_END) {
		cv_errf(err, 0, "state file writer: the end record is written by sf_writer_finish");
		return NULL;
	}
	return begin(w, k, nfields, data_len, err);
}

int sf_record_end(struct sf_writer *w, struct cv_error *err)
{
	if (usable(w, err) < 0)
		return -1;
	if (!w->in_record)
		return cv_errf(err, 0, "state file writer: no record begun");
	w->in_record = false;
	size_t len = w->rec.size - 4;
	if (len > SF_RECORD_MAX) {
		w->failed = true;
		return cv_errf(err, 0, "state file writer: %s record of %zu bytes is over the limit of %u (put large bytes in its data run)",
			       sf_kind_name(w->kind), len, SF_RECORD_MAX);
	}
	/* Also catches a caller who packed more or fewer fields than it said:
	 * the reader would refuse the file, so refuse it here. */
	if (sf_mp_check((const unsigned char *)w->rec.data + 4, len, SF_RECORD_DEPTH,
			sf_kind_name(w->kind), err) < 0) {
		w->failed = true;
		return cv_error_wrap(err, "state file writer: record not as declared");
	}
	/* The reader's own checks, so that what it would refuse at restore
	 * fails the checkpoint instead (a duplicate key, a missing field, a
	 * page run off page boundaries). */
	msgpack_zone_clear(w->zone);
	msgpack_object obj;
	size_t off = 0;
	if (msgpack_unpack(w->rec.data + 4, len, &off, w->zone, &obj) != MSGPACK_UNPACK_SUCCESS ||
	    off != len) {
		w->failed = true;
		return cv_errf(err, 0, "state file writer: %s record does not decode",
			       sf_kind_name(w->kind));
	}
	if (sf_check_keys(&obj, sf_kind_name(w->kind), err) < 0 ||
	    sf_kind_check(w->kind, &obj, w->run_len, w->records + 1, err) < 0) {
		w->failed = true;
		return cv_error_wrap(err, "state file writer");
	}
	unsigned char *h = (unsigned char *)w->rec.data;
	h[0] = (unsigned char)(len >> 24);
	h[1] = (unsigned char)(len >> 16);
	h[2] = (unsigned char)(len >> 8);
	h[3] = (unsigned char)len;
	if (compress(w, w->rec.data, w->rec.size, err) < 0)
		return -1;
	/* A record that grew the buffer past a slice gives the memory back. */
	if (w->rec.alloc > 2 * SF_SLICE) {
		msgpack_sbuffer_destroy(&w->rec);
		msgpack_sbuffer_init(&w->rec);
	}
	if (w->kind != SF_KIND_END)
		w->records++;
	w->run_left = w->run_len;
	return 0;
}

int sf_write_data(struct sf_writer *w, const void *p, size_t n, struct cv_error *err)
{
	if (usable(w, err) < 0)
		return -1;
	if (w->in_record)
		return cv_errf(err, 0, "state file writer: data before the %s record is ended",
			       sf_kind_name(w->kind));
	if (n > w->run_left)
		return cv_errf(err, 0, "state file writer: %zu bytes of data but the %s record announced %llu more",
			       n, sf_kind_name(w->kind), (unsigned long long)w->run_left);
	if (compress(w, p, n, err) < 0)
		return -1;
	w->run_left -= n;
	w->data_bytes += n;
	return 0;
}

int sf_writer_finish(struct sf_writer *w, struct cv_error *err)
{
	msgpack_packer *pk = begin(w, SF_KIND_END, 2, 0, err);
	if (!pk)
		return -1;
	mpk_pack_key(pk, "records");
	msgpack_pack_uint64(pk, w->records);
	mpk_pack_key(pk, "data_bytes");
	msgpack_pack_uint64(pk, w->data_bytes);
	if (sf_record_end(w, err) < 0)
		return -1;
	size_t r = LZ4F_compressEnd(w->cctx, w->out, w->out_cap, NULL);
	if (LZ4F_isError(r))
		return lz4_fail(w, r, "closing the frame", err);
	if (emit(w, w->out, r, err) < 0)
		return -1;
	w->finished = true;
	return 0;
}

uint64_t sf_writer_records(const struct sf_writer *w)
{
	return w->records;
}

uint64_t sf_writer_data_bytes(const struct sf_writer *w)
{
	return w->data_bytes;
}

uint64_t sf_writer_out_bytes(const struct sf_writer *w)
{
	return w->out_bytes;
}
