/* The state file (state/): round trips, streaming in bounded memory, any
 * split of the input, and a refusal for every kind of damage. Run with an
 * argument, the binary is also the generator of sample files for the
 * integration test and the fuzz corpus, and the encode/decode benchmark:
 *   test_state --write FILE         a small file with every record kind
 *   test_state --bench MIB [PIECE]  encode/decode throughput, one JSON line */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <lz4frame.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/mpk.h"
#include "state/state.h"
#include "test/unit/mem_sink.h"
#include "test/unit/unit.h"

/* The pattern of a data run: depends on the run and the offset, so that a
 * slice handed out at the wrong offset is caught. */
static unsigned char pat(uint64_t run, uint64_t off)
{
	return (unsigned char)((off * 131 + run * 7 + (off >> 12)) & 0xff);
}

static void fill(unsigned char *b, size_t n, uint64_t run, uint64_t off)
{
	for (size_t i = 0; i < n; i++)
		b[i] = pat(run, off + i);
}

static const char *const spec_ids[] = { "web" };
static const char *const specs[] = { "{\"ociVersion\":\"1.0.2\"}" };

static struct sf_meta test_meta(void)
{
	struct sf_meta m = { 0 };
	m.container_count = 1;
	m.network = "sandbox";
	m.nspecs = 1;
	m.spec_ids = spec_ids;
	m.specs = specs;
	m.memory_bytes = 3 * 4096;
	return m;
}

/* A file with one record of every kind; data runs of 3 pages, 100 bytes
 * (pipe) and 5000 bytes (file). Returns the number of records. */
static int write_sample(struct sf_writer *w, struct cv_error *err)
{
	unsigned char buf[3 * 4096];
	msgpack_packer *pk = sf_record_begin(w, SF_KIND_CONTAINER, 2, 0, err);
	if (!pk)
		return -1;
	mpk_pack_key(pk, "id");
	mpk_pack_str(pk, "web");
	mpk_pack_key(pk, "cgroup");
	mpk_pack_str(pk, "/cvisor/web");
	if (sf_record_end(w, err) < 0)
		return -1;
	pk = sf_record_begin(w, SF_KIND_TASK, 3, 0, err);
	if (!pk)
		return -1;
	mpk_pack_key(pk, "pid");
	msgpack_pack_uint32(pk, 1);
	mpk_pack_key(pk, "pids");
	msgpack_pack_array(pk, 2);
	msgpack_pack_uint32(pk, 4242);
	msgpack_pack_uint32(pk, 1);
	mpk_pack_key(pk, "regs");
	msgpack_pack_bin(pk, 8);
	msgpack_pack_bin_body(pk, "\x01\x02\x03\x04\x05\x06\x07\x08", 8);
	if (sf_record_end(w, err) < 0)
		return -1;
	pk = sf_record_begin(w, SF_KIND_THREAD, 1, 0, err);
	if (!pk)
		return -1;
	mpk_pack_key(pk, "tid");
	msgpack_pack_uint32(pk, 1);
	if (sf_record_end(w, err) < 0)
		return -1;
	struct sf_mapping m = { .start = 0x400000, .end = 0x403000, .prot = 3, .flags = 0x22,
				.offset = 0, .path = "[heap]" };
	if (sf_put_mapping(w, &m, err) < 0)
		return -1;
	if (sf_put_pages(w, 0x400000, sizeof(buf), err) < 0)
		return -1;
	fill(buf, sizeof(buf), 1, 0);
	if (sf_write_data(w, buf, sizeof(buf), err) < 0)
		return -1;
	pk = sf_record_begin(w, SF_KIND_FD, 2, 0, err);
	if (!pk)
		return -1;
	mpk_pack_key(pk, "fd");
	msgpack_pack_uint32(pk, 3);
	mpk_pack_key(pk, "path");
	mpk_pack_str(pk, "/root/log");
	if (sf_record_end(w, err) < 0)
		return -1;
	pk = sf_record_begin(w, SF_KIND_PIPE, 1, 100, err);
	if (!pk)
		return -1;
	mpk_pack_key(pk, "id");
	msgpack_pack_uint32(pk, 7);
	if (sf_record_end(w, err) < 0)
		return -1;
	fill(buf, 100, 2, 0);
	if (sf_write_data(w, buf, 100, err) < 0)
		return -1;
	pk = sf_record_begin(w, SF_KIND_FILE, 1, 5000, err);
	if (!pk)
		return -1;
	mpk_pack_key(pk, "path");
	mpk_pack_str(pk, "/tmp/a");
	if (sf_record_end(w, err) < 0)
		return -1;
	fill(buf, 5000, 3, 0);
	if (sf_write_data(w, buf, 2000, err) < 0 || sf_write_data(w, buf + 2000, 3000, err) < 0)
		return -1;
	pk = sf_record_begin(w, SF_KIND_BLOB, 1, 10, err);
	if (!pk)
		return -1;
	mpk_pack_key(pk, "name");
	mpk_pack_str(pk, "xstate");
	if (sf_record_end(w, err) < 0)
		return -1;
	fill(buf, 10, 4, 0);
	if (sf_write_data(w, buf, 10, err) < 0)
		return -1;
	return 9;
}

#define SAMPLE_DATA (3 * 4096 + 100 + 5000 + 10)

static int make_sample(struct mem *out, struct cv_error *err)
{
	struct sf_meta meta = test_meta();
	struct sf_writer *w = sf_writer_create(&meta, mem_sink, out, err);
	if (!w)
		return -1;
	int rc = write_sample(w, err) < 0 ? -1 : sf_writer_finish(w, err);
	sf_writer_free(w);
	return rc;
}

/* What a read saw. */
struct seen {
	int meta, end;
	uint64_t records, data_bytes, bad_data;
	uint64_t kinds[SF_KIND_COUNT];
	uint64_t end_records, end_data;
	uint64_t run; /* records so far, to know which pattern a run has */
	uint64_t run_kind_index[SF_KIND_COUNT];
	bool check_pattern;
};

static void on_event(struct seen *s, const struct sf_event *ev)
{
	switch (ev->type) {
	case SF_EV_META:
		s->meta++;
		break;
	case SF_EV_RECORD:
		s->records++;
		s->kinds[ev->kind]++;
		/* The sample's runs are patterned by kind: pages 1, pipe 2, file 3, blob 4. */
		s->run = ev->kind == SF_KIND_PAGES ? 1 : ev->kind == SF_KIND_PIPE ? 2 :
			 ev->kind == SF_KIND_FILE ? 3 : ev->kind == SF_KIND_BLOB ? 4 : 0;
		break;
	case SF_EV_DATA:
		s->data_bytes += ev->len;
		if (s->check_pattern)
			for (size_t i = 0; i < ev->len; i++)
				if (((const unsigned char *)ev->data)[i] != pat(s->run, ev->data_off + i))
					s->bad_data++;
		break;
	case SF_EV_END:
		s->end++;
		s->end_records = ev->records;
		s->end_data = ev->data_bytes;
		break;
	case SF_EV_NONE:
	default:
		break;
	}
}

/* Feeds p[0..n) in pieces of step bytes; 0 or -1 with err. */
static int read_mem(const unsigned char *p, size_t n, size_t step, struct seen *s,
		    struct cv_error *err)
{
	struct sf_reader *r = sf_reader_create(err);
	if (!r)
		return -1;
	int rc = 0;
	size_t off = 0;
	while (rc == 0 && off < n) {
		size_t piece = n - off < step ? n - off : step;
		size_t k = piece;
		struct sf_event ev;
		rc = sf_reader_feed(r, p + off, &k, &ev, err);
		off += k;
		if (rc == 0)
			on_event(s, &ev);
		/* An event may leave input unconsumed; an empty feed with
		 * nothing left must end in NONE (drained). */
	}
	/* Drain: events that need no more input. */
	while (rc == 0) {
		size_t k = 0;
		struct sf_event ev;
		rc = sf_reader_feed(r, p + off, &k, &ev, err);
		if (rc < 0 || ev.type == SF_EV_NONE)
			break;
		on_event(s, &ev);
	}
	if (rc == 0)
		rc = sf_reader_finish(r, err);
	sf_reader_free(r);
	return rc;
}

TEST(test_kind_names)
{
	for (int k = 0; k < SF_KIND_COUNT; k++) {
		const char *n = sf_kind_name(k);
		CHECK(n != NULL);
		CHECK(sf_kind_lookup(n, strlen(n)) == k);
	}
	CHECK(sf_kind_lookup("tasks", 5) == -1);
	CHECK(sf_kind_lookup("task", 3) == -1);
	CHECK(sf_kind_name(SF_KIND_COUNT) == NULL);
}

TEST(test_roundtrip_empty)
{
	struct cv_error err = { 0 };
	struct mem out = { 0 };
	struct sf_meta meta = test_meta();
	struct sf_writer *w = sf_writer_create(&meta, mem_sink, &out, &err);
	CHECK(w != NULL);
	CHECK(sf_writer_finish(w, &err) == 0);
	CHECK(sf_writer_out_bytes(w) == out.len);
	sf_writer_free(w);
	CHECK(out.len > 8 && memcmp(out.p, "CVISORSF", 8) == 0);
	struct seen s = { 0 };
	CHECK(read_mem(out.p, out.len, out.len, &s, &err) == 0);
	CHECK(s.meta == 1 && s.end == 1 && s.records == 0 && s.end_records == 0);
	free(out.p);
}

TEST(test_roundtrip_sample_any_split)
{
	struct cv_error err = { 0 };
	struct mem out = { 0 };
	CHECK(make_sample(&out, &err) == 0);
	size_t steps[] = { 1, 2, 3, 7, 64, 4096, 65536, SIZE_MAX };
	for (size_t i = 0; i < ARRAY_SIZE(steps); i++) {
		struct seen s = { .check_pattern = true };
		cv_error_reset(&err);
		int rc = read_mem(out.p, out.len, steps[i], &s, &err);
		if (rc != 0)
			fprintf(stderr, "  step %zu: %s\n", steps[i], err.msg);
		CHECK(rc == 0);
		CHECK(s.meta == 1 && s.end == 1);
		CHECK(s.records == 9 && s.end_records == 9);
		CHECK(s.data_bytes == SAMPLE_DATA && s.end_data == SAMPLE_DATA);
		CHECK(s.bad_data == 0);
		for (int k = 0; k < SF_KIND_END; k++)
			CHECK(s.kinds[k] == 1);
	}
	free(out.p);
}

/* Reads the sample's metadata and its mapping record through the typed getters. */
static int check_fields(void *opaque, const struct sf_event *ev, struct cv_error *err)
{
	int *ok = opaque;
	if (ev->type == SF_EV_META) {
		uint64_t v;
		if (sf_get_u64(ev->obj, "version", &v, err) == 0 && v == SF_VERSION)
			(*ok)++;
		if (sf_get_u64(ev->obj, "container_count", &v, err) == 0 && v == 1)
			(*ok)++;
		if (sf_get_u64(ev->obj, "_timestamp", &v, err) < 0 && strstr(err->msg, "_timestamp"))
			(*ok)++;
	}
	if (ev->type == SF_EV_RECORD && ev->kind == SF_KIND_MAPPING) {
		struct sf_mapping m;
		if (sf_get_mapping(ev->obj, &m, err) == 0 && m.start == 0x400000 && m.end == 0x403000 &&
		    m.prot == 3 && m.flags == 0x22 && m.path_len == 6 && memcmp(m.path, "[heap]", 6) == 0)
			(*ok)++;
	}
	if (ev->type == SF_EV_RECORD && ev->kind == SF_KIND_TASK) {
		const msgpack_object *regs = NULL;
		for (uint32_t i = 0; i < ev->obj->via.map.size; i++)
			if (ev->obj->via.map.ptr[i].key.via.str.size == 4 &&
			    memcmp(ev->obj->via.map.ptr[i].key.via.str.ptr, "regs", 4) == 0)
				regs = &ev->obj->via.map.ptr[i].val;
		if (regs && regs->type == MSGPACK_OBJECT_BIN && regs->via.bin.size == 8 &&
		    regs->via.bin.ptr[7] == 8)
			(*ok)++;
	}
	return 0;
}

static int tmpfile_with(const struct mem *m, char *path)
{
	strcpy(path, "/tmp/cvisor-test-state-XXXXXX");
	int fd = mkstemp(path);
	if (fd < 0)
		return -1;
	if (write(fd, m->p, m->len) != (ssize_t)m->len) {
		close(fd);
		return -1;
	}
	lseek(fd, 0, SEEK_SET);
	return fd;
}

TEST(test_fd_helpers_and_fields)
{
	struct cv_error err = { 0 };
	struct mem out = { 0 };
	CHECK(make_sample(&out, &err) == 0);
	char path[64];
	int fd = tmpfile_with(&out, path);
	CHECK(fd >= 0);
	int ok = 0;
	CHECK(sf_read_fd(fd, check_fields, &ok, &err) == 0);
	CHECK(ok == 5);
	CHECK(fcntl(fd, F_GETFD) >= 0); /* the caller's fd stays the caller's */
	lseek(fd, 0, SEEK_SET);
	msgpack_zone *zone = NULL;
	const msgpack_object *meta = NULL;
	CHECK(sf_read_meta_fd(fd, &zone, &meta, &err) == 0);
	CHECK(zone && meta && meta->type == MSGPACK_OBJECT_MAP);
	uint64_t v = 0;
	CHECK(sf_get_u64(meta, "memory_bytes", &v, &err) == 0 && v == 3 * 4096);
	if (zone)
		msgpack_zone_free(zone);
	close(fd);
	unlink(path);

	/* The fd sink writes the same bytes as the memory sink's. */
	strcpy(path, "/tmp/cvisor-test-state-XXXXXX");
	fd = mkstemp(path);
	struct sf_meta m = test_meta();
	struct sf_writer *w = sf_writer_create(&m, sf_fd_sink, &fd, &err);
	CHECK(w && write_sample(w, &err) == 9 && sf_writer_finish(w, &err) == 0);
	struct stat st;
	CHECK(fstat(fd, &st) == 0 && (uint64_t)st.st_size == sf_writer_out_bytes(w));
	sf_writer_free(w);
	lseek(fd, 0, SEEK_SET);
	CHECK(sf_read_fd(fd, NULL, NULL, &err) == 0);
	close(fd);
	unlink(path);
	free(out.p);
}

TEST(test_many_records)
{
	struct cv_error err = { 0 };
	struct mem out = { 0 };
	struct sf_meta meta = test_meta();
	struct sf_writer *w = sf_writer_create(&meta, mem_sink, &out, &err);
	CHECK(w != NULL);
	const uint64_t n = 50000;
	for (uint64_t i = 0; i < n; i++) {
		struct sf_mapping m = { .start = (i + 1) << 12, .end = (i + 2) << 12, .prot = 1,
					.flags = 2, .offset = i, .path = i % 2 ? "/lib/x.so" : NULL };
		if (sf_put_mapping(w, &m, &err) < 0) {
			fprintf(stderr, "  %s\n", err.msg);
			CHECK(0);
			break;
		}
	}
	CHECK(sf_writer_records(w) == n);
	CHECK(sf_writer_finish(w, &err) == 0);
	sf_writer_free(w);
	struct seen s = { 0 };
	CHECK(read_mem(out.p, out.len, 1000, &s, &err) == 0);
	CHECK(s.records == n && s.kinds[SF_KIND_MAPPING] == n && s.end == 1);
	free(out.p);
}

/* The writer's sink feeds a reader directly: a 64 MiB page run goes
 * through in small pieces and neither side ever holds it. */
struct pipe_through {
	struct sf_reader *r;
	struct seen s;
	int rc;
	struct cv_error err;
};

static int feed_sink(void *opaque, const void *p, size_t n, struct cv_error *err)
{
	struct pipe_through *pt = opaque;
	const unsigned char *c = p;
	(void)err;
	while (pt->rc == 0) {
		size_t k = n;
		struct sf_event ev;
		pt->rc = sf_reader_feed(pt->r, c, &k, &ev, &pt->err);
		c += k;
		n -= k;
		if (pt->rc < 0)
			break;
		if (ev.type == SF_EV_NONE && n == 0)
			break;
		on_event(&pt->s, &ev);
	}
	return 0;
}

static long maxrss_kib(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

TEST(test_64mib_run_streams_in_bounded_memory)
{
	struct cv_error err = { 0 };
	struct pipe_through pt = { 0 };
	pt.s.check_pattern = true;
	pt.r = sf_reader_create(&err);
	CHECK(pt.r != NULL);
	long before = maxrss_kib();
	struct sf_meta meta = test_meta();
	struct sf_writer *w = sf_writer_create(&meta, feed_sink, &pt, &err);
	CHECK(w != NULL);
	const uint64_t len = 64ull << 20;
	CHECK(sf_put_pages(w, 0x7f0000000000ull, len, &err) == 0);
	unsigned char piece[3000]; /* not a divisor of anything: slices straddle blocks */
	for (uint64_t off = 0; off < len;) {
		size_t k = len - off < sizeof(piece) ? (size_t)(len - off) : sizeof(piece);
		fill(piece, k, 1, off);
		if (sf_write_data(w, piece, k, &err) < 0) {
			CHECK(0);
			break;
		}
		off += k;
	}
	CHECK(sf_writer_finish(w, &err) == 0);
	sf_writer_free(w);
	CHECK(pt.rc == 0);
	CHECK(sf_reader_finish(pt.r, &pt.err) == 0);
	if (pt.err.msg[0])
		fprintf(stderr, "  %s\n", pt.err.msg);
	sf_reader_free(pt.r);
	CHECK(pt.s.records == 1 && pt.s.data_bytes == len && pt.s.bad_data == 0 && pt.s.end == 1);
	/* Writer and reader each hold a few MiB of buffers; 64 MiB held
	 * anywhere would show here. */
	long grew = maxrss_kib() - before;
	if (grew > 24 * 1024)
		fprintf(stderr, "  max RSS grew by %ld KiB\n", grew);
	CHECK(grew < 24 * 1024);
}

/* Reads a damaged copy; returns 0 only if it was (wrongly) accepted. */
static int read_damaged(const unsigned char *p, size_t n, size_t step, struct cv_error *err)
{
	struct seen s = { 0 };
	cv_error_reset(err);
	return read_mem(p, n, step, &s, err);
}

TEST(test_every_flipped_byte_is_refused)
{
	struct cv_error err = { 0 };
	struct mem out = { 0 };
	CHECK(make_sample(&out, &err) == 0);
	int fds = unit_count_fds();
	unsigned char *copy = malloc(out.len);
	size_t accepted = 0;
	for (size_t i = 0; i < out.len; i++) {
		for (int bit = 0; bit < 8; bit += 3) {
			memcpy(copy, out.p, out.len);
			copy[i] ^= (unsigned char)(1u << bit);
			if (read_damaged(copy, out.len, 4096, &err) == 0) {
				accepted++;
				fprintf(stderr, "  flip of bit %d at byte %zu of %zu accepted\n", bit, i,
					out.len);
			} else if (!err.msg[0]) {
				CHECK(0); /* a refusal always says why */
			}
		}
	}
	CHECK(accepted == 0);
	CHECK(unit_count_fds() == fds);
	free(copy);
	free(out.p);
}

TEST(test_every_truncation_is_refused)
{
	struct cv_error err = { 0 };
	struct mem out = { 0 };
	CHECK(make_sample(&out, &err) == 0);
	for (size_t n = 0; n < out.len; n++) {
		if (read_damaged(out.p, n, 977, &err) == 0) {
			fprintf(stderr, "  truncation at %zu of %zu accepted\n", n, out.len);
			CHECK(0);
		}
		if (n == 0)
			CHECK(strstr(err.msg, "empty") != NULL);
		else if (n < 8)
			CHECK(strstr(err.msg, "truncated") != NULL);
		else if (n > 100 && n + 20 < out.len)
			CHECK(strstr(err.msg, "truncated") != NULL);
	}
	free(out.p);
}

/* Builds an envelope by hand around meta bytes (with a right CRC), then
 * the frame of a real file, to test the metadata checks one by one. */
static uint32_t crc32_ref(const unsigned char *p, size_t n)
{
	uint32_t c = 0xffffffffu;
	for (size_t i = 0; i < n; i++) {
		c ^= p[i];
		for (int k = 0; k < 8; k++)
			c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
	}
	return ~c;
}

static void envelope(struct mem *o, const char *magic, const msgpack_sbuffer *meta,
		     const struct mem *frame_from)
{
	o->len = 0;
	unsigned char h[16];
	memcpy(h, magic, 8);
	for (int i = 0; i < 8; i++)
		h[8 + i] = (unsigned char)((uint64_t)meta->size >> (56 - 8 * i));
	struct cv_error err;
	mem_sink(o, h, 16, &err);
	mem_sink(o, meta->data, meta->size, &err);
	uint32_t c = crc32_ref(o->p, o->len);
	unsigned char cb[4] = { (unsigned char)(c >> 24), (unsigned char)(c >> 16),
				(unsigned char)(c >> 8), (unsigned char)c };
	mem_sink(o, cb, 4, &err);
	/* The frame of frame_from starts after its own envelope. */
	uint64_t ml = 0;
	for (int i = 0; i < 8; i++)
		ml = ml << 8 | frame_from->p[8 + i];
	size_t start = 16 + ml + 4;
	mem_sink(o, frame_from->p + start, frame_from->len - start, &err);
}

static void pack_meta(msgpack_sbuffer *sb, int version, const char *compression, bool count)
{
	msgpack_sbuffer_clear(sb);
	msgpack_packer pk;
	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 2 + count);
	mpk_pack_key(&pk, "version");
	msgpack_pack_int(&pk, version);
	mpk_pack_key(&pk, "compression");
	mpk_pack_str(&pk, compression);
	if (count) {
		mpk_pack_key(&pk, "container_count");
		msgpack_pack_uint32(&pk, 1);
	}
}

TEST(test_envelope_refusals_name_the_damage)
{
	struct cv_error err = { 0 };
	struct mem good = { 0 }, o = { 0 };
	CHECK(make_sample(&good, &err) == 0);
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);

	pack_meta(&sb, 1, "lz4", true);
	envelope(&o, "CVISORSF", &sb, &good);
	CHECK(read_damaged(o.p, o.len, 100, &err) == 0); /* the hand-made envelope is right */

	envelope(&o, "gVisorSF", &sb, &good);
	CHECK(read_damaged(o.p, o.len, 100, &err) < 0 && strstr(err.msg, "bad magic"));

	pack_meta(&sb, 2, "lz4", true);
	envelope(&o, "CVISORSF", &sb, &good);
	CHECK(read_damaged(o.p, o.len, 100, &err) < 0 && strstr(err.msg, "unknown version 2"));

	pack_meta(&sb, 1, "flate-best-speed", true);
	envelope(&o, "CVISORSF", &sb, &good);
	CHECK(read_damaged(o.p, o.len, 100, &err) < 0 && strstr(err.msg, "compression"));

	pack_meta(&sb, 1, "lz4", false);
	envelope(&o, "CVISORSF", &sb, &good);
	CHECK(read_damaged(o.p, o.len, 100, &err) < 0 && strstr(err.msg, "container_count"));

	/* Not a map. */
	msgpack_sbuffer_clear(&sb);
	msgpack_packer pk;
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_array(&pk, 0);
	envelope(&o, "CVISORSF", &sb, &good);
	CHECK(read_damaged(o.p, o.len, 100, &err) < 0 && strstr(err.msg, "not a map"));

	/* A map claiming 2^32-1 entries in 5 bytes is refused before any allocation. */
	msgpack_sbuffer_clear(&sb);
	msgpack_sbuffer_write(&sb, "\xdf\xff\xff\xff\xff", 5);
	envelope(&o, "CVISORSF", &sb, &good);
	CHECK(read_damaged(o.p, o.len, 100, &err) < 0 && strstr(err.msg, "overruns"));

	/* Metadata length over the bound, and zero. */
	memcpy(o.p, good.p, 24);
	o.p[8] = 0x7f;
	CHECK(read_damaged(o.p, 24, 100, &err) < 0 && strstr(err.msg, "metadata length"));
	memset(o.p + 8, 0, 8);
	CHECK(read_damaged(o.p, 24, 100, &err) < 0 && strstr(err.msg, "metadata length"));

	/* A flip in the metadata: the envelope's CRC. */
	o.len = 0;
	mem_sink(&o, good.p, good.len, &err);
	o.p[30] ^= 1;
	CHECK(read_damaged(o.p, o.len, 100, &err) < 0 && strstr(err.msg, "metadata checksum"));
	/* ... and in the middle of the frame: LZ4's checksums. */
	o.p[o.len / 2 + 40] ^= 0x10;
	o.p[30] ^= 1;
	CHECK(read_damaged(o.p, o.len, 100, &err) < 0 && strstr(err.msg, "checksum mismatch"));
	if (!strstr(err.msg, "checksum mismatch"))
		fprintf(stderr, "  %s\n", err.msg);

	/* Garbage after the frame. */
	o.len = 0;
	mem_sink(&o, good.p, good.len, &err);
	mem_sink(&o, "x", 1, &err);
	CHECK(read_damaged(o.p, o.len, 100, &err) < 0 && strstr(err.msg, "garbage"));
	CHECK(read_damaged(good.p, 0, 100, &err) < 0 && strstr(err.msg, "empty"));

	msgpack_sbuffer_destroy(&sb);
	free(o.p);
	free(good.p);
}

/* Writes a frame holding raw record bytes (bypassing the writer's checks)
 * to test the stream refusals: the envelope from a real writer, then an
 * LZ4 frame of exactly `stream`. */

static void raw_file(struct mem *o, const void *stream, size_t n)
{
	struct cv_error err;
	struct mem good = { 0 };
	struct sf_meta meta = test_meta();
	struct sf_writer *w = sf_writer_create(&meta, mem_sink, &good, &err);
	sf_writer_free(w);
	/* good holds the envelope and the frame header: keep the envelope. */
	uint64_t ml = 0;
	for (int i = 0; i < 8; i++)
		ml = ml << 8 | good.p[8 + i];
	o->len = 0;
	mem_sink(o, good.p, 16 + ml + 4, &err);
	LZ4F_preferences_t prefs = { 0 };
	prefs.frameInfo.contentChecksumFlag = LZ4F_contentChecksumEnabled;
	prefs.frameInfo.blockChecksumFlag = LZ4F_blockChecksumEnabled;
	size_t cap = LZ4F_compressFrameBound(n, &prefs);
	unsigned char *f = malloc(cap);
	size_t fl = LZ4F_compressFrame(f, cap, stream, n, &prefs);
	CHECK(!LZ4F_isError(fl));
	mem_sink(o, f, fl, &err);
	free(f);
	free(good.p);
}

/* Appends one record (u32 length + map packed by the callback) to sb. */
static void rec(msgpack_sbuffer *sb, const char *kind, int nextra, const char *k1, uint64_t v1,
		const char *k2, uint64_t v2)
{
	msgpack_sbuffer tmp;
	msgpack_sbuffer_init(&tmp);
	msgpack_packer pk;
	msgpack_packer_init(&pk, &tmp, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 1 + nextra);
	mpk_pack_key(&pk, "kind");
	mpk_pack_str(&pk, kind);
	if (nextra >= 1) {
		mpk_pack_key(&pk, k1);
		msgpack_pack_uint64(&pk, v1);
	}
	if (nextra >= 2) {
		mpk_pack_key(&pk, k2);
		msgpack_pack_uint64(&pk, v2);
	}
	unsigned char len[4] = { (unsigned char)(tmp.size >> 24), (unsigned char)(tmp.size >> 16),
				 (unsigned char)(tmp.size >> 8), (unsigned char)tmp.size };
	msgpack_sbuffer_write(sb, (const char *)len, 4);
	msgpack_sbuffer_write(sb, tmp.data, tmp.size);
	msgpack_sbuffer_destroy(&tmp);
}

static const char *stream_error(const msgpack_sbuffer *sb, struct cv_error *err)
{
	struct mem o = { 0 };
	raw_file(&o, sb->data, sb->size);
	int rc = read_damaged(o.p, o.len, 333, err);
	free(o.p);
	return rc < 0 ? err->msg : "(accepted)";
}

TEST(test_stream_refusals_name_the_damage)
{
	struct cv_error err = { 0 };
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);

	/* Baseline: a hand-made stream with a right end record is accepted. */
	rec(&sb, "task", 1, "pid", 1, NULL, 0);
	rec(&sb, "end", 2, "records", 1, "data_bytes", 0);
	CHECK_STR(stream_error(&sb, &err), "(accepted)");

	msgpack_sbuffer_clear(&sb);
	rec(&sb, "task", 1, "pid", 1, NULL, 0);
	CHECK(strstr(stream_error(&sb, &err), "no end record") != NULL);

	msgpack_sbuffer_clear(&sb);
	rec(&sb, "task", 1, "pid", 1, NULL, 0);
	rec(&sb, "end", 2, "records", 2, "data_bytes", 0);
	CHECK(strstr(stream_error(&sb, &err), "end record counts 2 records") != NULL);

	msgpack_sbuffer_clear(&sb);
	rec(&sb, "task", 1, "pid", 1, NULL, 0);
	rec(&sb, "end", 2, "records", 1, "data_bytes", 5);
	CHECK(strstr(stream_error(&sb, &err), "5 data bytes") != NULL);

	msgpack_sbuffer_clear(&sb);
	rec(&sb, "socket", 1, "fd", 1, NULL, 0);
	CHECK(strstr(stream_error(&sb, &err), "unknown kind \"socket\"") != NULL);

	msgpack_sbuffer_clear(&sb);
	rec(&sb, "task", 0, NULL, 0, NULL, 0);
	CHECK(strstr(stream_error(&sb, &err), "missing field pid") != NULL);

	msgpack_sbuffer_clear(&sb);
	rec(&sb, "pages", 2, "addr", 4096, "data", 4096);
	msgpack_sbuffer_write(&sb, "short", 5);
	CHECK(strstr(stream_error(&sb, &err), "inside the data run") != NULL);

	msgpack_sbuffer_clear(&sb);
	rec(&sb, "pages", 2, "addr", 4097, "data", 4096);
	CHECK(strstr(stream_error(&sb, &err), "whole pages") != NULL);

	msgpack_sbuffer_clear(&sb);
	rec(&sb, "pages", 1, "addr", 4096, NULL, 0);
	CHECK(strstr(stream_error(&sb, &err), "no data run") != NULL);

	msgpack_sbuffer_clear(&sb);
	rec(&sb, "end", 2, "records", 0, "data_bytes", 0);
	rec(&sb, "task", 1, "pid", 1, NULL, 0);
	CHECK(strstr(stream_error(&sb, &err), "follow the end record") != NULL);

	/* A record length over the bound is refused before gathering it. */
	msgpack_sbuffer_clear(&sb);
	msgpack_sbuffer_write(&sb, "\x7f\xff\xff\xff", 4);
	CHECK(strstr(stream_error(&sb, &err), "over the limit") != NULL);

	msgpack_sbuffer_clear(&sb);
	msgpack_sbuffer_write(&sb, "\x00\x00\x00\x00", 4);
	CHECK(strstr(stream_error(&sb, &err), "empty") != NULL);

	/* A record whose map claims more entries than it has bytes. */
	msgpack_sbuffer_clear(&sb);
	msgpack_sbuffer_write(&sb, "\x00\x00\x00\x05\xdf\x00\x10\x00\x00", 9);
	CHECK(strstr(stream_error(&sb, &err), "overruns") != NULL);

	/* Nested deeper than the bound. */
	msgpack_sbuffer_clear(&sb);
	unsigned char deep[4 + 40];
	deep[0] = deep[1] = deep[2] = 0;
	deep[3] = 40;
	memset(deep + 4, 0x91, 39); /* fixarray of 1, 39 deep */
	deep[43] = 0xc0;
	msgpack_sbuffer_write(&sb, (const char *)deep, sizeof(deep));
	CHECK(strstr(stream_error(&sb, &err), "deeper") != NULL);

	/* The same key twice: a check of the first and a use of the last
	 * must never disagree. */
	msgpack_sbuffer_clear(&sb);
	rec(&sb, "task", 2, "pid", 1, "pid", 2);
	CHECK(strstr(stream_error(&sb, &err), "key \"pid\" appears twice") != NULL);

	/* A key that is not a string. */
	msgpack_sbuffer_clear(&sb);
	msgpack_sbuffer_write(&sb, "\x00\x00\x00\x0d\x82\xa4kind\xa4task\x01\x02", 17);
	CHECK(strstr(stream_error(&sb, &err), "not a string") != NULL);

	/* More items than a record may hold (each would cost msgpack-c 24
	 * bytes): an array of 70000 nils in 70 KB. */
	msgpack_sbuffer_clear(&sb);
	{
		size_t n = 70000, len = 5 + n;
		unsigned char *big = malloc(4 + len);
		big[0] = (unsigned char)(len >> 24);
		big[1] = (unsigned char)(len >> 16);
		big[2] = (unsigned char)(len >> 8);
		big[3] = (unsigned char)len;
		big[4] = 0xdd;
		big[5] = 0;
		big[6] = (unsigned char)(n >> 16);
		big[7] = (unsigned char)(n >> 8);
		big[8] = (unsigned char)n;
		memset(big + 9, 0xc0, n);
		msgpack_sbuffer_write(&sb, (const char *)big, 4 + len);
		free(big);
	}
	CHECK(strstr(stream_error(&sb, &err), "more than 65536 msgpack items") != NULL);

	msgpack_sbuffer_destroy(&sb);
}

TEST(test_writer_refuses_misuse)
{
	struct cv_error err = { 0 };
	struct mem out = { 0 };
	struct sf_meta meta = test_meta();
	const char *k[] = { "_secret" }, *v[] = { "x" };
	meta.nextra = 1;
	meta.extra_keys = k;
	meta.extra_values = v;
	CHECK(sf_writer_create(&meta, mem_sink, &out, &err) == NULL && strstr(err.msg, "reserved"));
	meta = test_meta();
	struct sf_writer *w = sf_writer_create(&meta, mem_sink, &out, &err);
	CHECK(w != NULL);
	CHECK(sf_record_begin(w, SF_KIND_END, 0, 0, &err) == NULL);
	/* Data beyond what the record announced. */
	CHECK(sf_put_pages(w, 4096, 4096, &err) == 0);
	unsigned char page[4097] = { 0 };
	CHECK(sf_write_data(w, page, 4097, &err) < 0 && strstr(err.msg, "announced"));
	/* A record before the run is complete. */
	CHECK(sf_write_data(w, page, 100, &err) == 0);
	CHECK(sf_record_begin(w, SF_KIND_TASK, 1, 0, &err) == NULL && strstr(err.msg, "lacks"));
	CHECK(sf_write_data(w, page, 3996, &err) == 0);
	/* Fewer fields packed than declared. */
	msgpack_packer *pk = sf_record_begin(w, SF_KIND_TASK, 2, 0, &err);
	CHECK(pk != NULL);
	mpk_pack_key(pk, "pid");
	msgpack_pack_uint32(pk, 1);
	CHECK(sf_record_end(w, &err) < 0 && strstr(err.msg, "not as declared"));
	CHECK(sf_writer_finish(w, &err) < 0); /* the writer failed: it stays failed */
	sf_writer_free(w);

	/* What the reader would refuse at restore fails the write instead. */
	struct {
		enum sf_kind k;
		const char *key;
		uint64_t v, data;
		const char *expect;
	} bad[] = {
		{ SF_KIND_TASK, "tid", 1, 0, "missing field pid" },
		{ SF_KIND_PAGES, "addr", 4097, 4096, "whole pages" },
		{ SF_KIND_PAGES, "addr", 4096, 0, "no data run" },
		{ SF_KIND_MAPPING, "start", 1, 0, "missing field end" },
		{ SF_KIND_BLOB, "name", 1, 1, "expected a string" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		out.len = 0;
		w = sf_writer_create(&meta, mem_sink, &out, &err);
		pk = sf_record_begin(w, bad[i].k, 1, bad[i].data, &err);
		CHECK(pk != NULL);
		mpk_pack_key(pk, bad[i].key);
		msgpack_pack_uint64(pk, bad[i].v);
		cv_error_reset(&err);
		CHECK(sf_record_end(w, &err) < 0 && strstr(err.msg, bad[i].expect));
		if (!strstr(err.msg, bad[i].expect))
			fprintf(stderr, "  %zu: %s\n", i, err.msg);
		sf_writer_free(w);
	}
	/* A key twice. */
	out.len = 0;
	w = sf_writer_create(&meta, mem_sink, &out, &err);
	pk = sf_record_begin(w, SF_KIND_TASK, 2, 0, &err);
	mpk_pack_key(pk, "pid");
	msgpack_pack_uint32(pk, 1);
	mpk_pack_key(pk, "pid");
	msgpack_pack_uint32(pk, 2);
	CHECK(sf_record_end(w, &err) < 0 && strstr(err.msg, "appears twice"));
	sf_writer_free(w);
	free(out.p);
}

/* A sink that fails once `left` bytes were taken (a full disk). */
static int failing_sink(void *opaque, const void *p, size_t n, struct cv_error *err)
{
	size_t *left = opaque;
	(void)p;
	if (n > *left)
		return cv_errf(err, ENOSPC, "writing the state file");
	*left -= n;
	return 0;
}

TEST(test_writer_sink_failure_sticks)
{
	struct cv_error err = { 0 };
	struct sf_meta meta = test_meta();
	size_t left = 10; /* not even the envelope */
	CHECK(sf_writer_create(&meta, failing_sink, &left, &err) == NULL);
	CHECK(strstr(err.msg, "No space left") != NULL);
	left = 4096; /* the envelope and a few records, not the 1 MiB run */
	cv_error_reset(&err);
	struct sf_writer *w = sf_writer_create(&meta, failing_sink, &left, &err);
	CHECK(w != NULL);
	static unsigned char run[1 << 20];
	CHECK(sf_put_pages(w, 0, sizeof(run), &err) == 0);
	int rc = 0;
	for (int i = 0; i < 4 && rc == 0; i++) /* LZ4F emits a block once it has one */
		rc = sf_write_data(w, run, sizeof(run) / 4, &err);
	if (rc == 0)
		rc = sf_writer_finish(w, &err);
	CHECK(rc < 0 && strstr(err.msg, "No space left"));
	cv_error_reset(&err);
	CHECK(sf_writer_finish(w, &err) < 0 && strstr(err.msg, "earlier write failed"));
	sf_writer_free(w);
}

/* --- generator and benchmark modes ------------------------------------- */

static int write_file(const char *path)
{
	struct cv_error err = { 0 };
	struct mem out = { 0 };
	if (make_sample(&out, &err) < 0) {
		fprintf(stderr, "%s\n", err.msg);
		return 1;
	}
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	int rc = fd >= 0 && write(fd, out.p, out.len) == (ssize_t)out.len ? 0 : 1;
	if (fd >= 0)
		close(fd);
	free(out.p);
	return rc;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The baseline: the same bytes through LZ4F alone, with the writer's
 * preferences (1 MiB linked blocks, both checksums), fed 256 KiB at a time
 * into a 1 MiB buffer as the reader is, without the state file around them. Returns the frame
 * size, the seconds taken through *enc and *dec. */
static size_t lz4f_alone(const unsigned char *src, uint64_t len, size_t piece, struct mem *out,
			 double *enc, double *dec)
{
	LZ4F_preferences_t prefs = { 0 };
	prefs.frameInfo.blockSizeID = LZ4F_max1MB;
	prefs.frameInfo.blockMode = LZ4F_blockLinked;
	prefs.frameInfo.contentChecksumFlag = LZ4F_contentChecksumEnabled;
	prefs.frameInfo.blockChecksumFlag = LZ4F_blockChecksumEnabled;
	LZ4F_cctx *c;
	LZ4F_dctx *d;
	LZ4F_createCompressionContext(&c, LZ4F_VERSION);
	LZ4F_createDecompressionContext(&d, LZ4F_VERSION);
	size_t cap = LZ4F_compressBound(1 << 20, &prefs);
	unsigned char *buf = malloc(cap);
	struct cv_error err;
	out->len = 0;
	double t0 = now();
	size_t r = LZ4F_compressBegin(c, buf, cap, &prefs);
	mem_sink(out, buf, r, &err);
	for (uint64_t off = 0; off < len; off += piece) {
		r = LZ4F_compressUpdate(c, buf, cap, src + off, piece, NULL);
		mem_sink(out, buf, r, &err);
	}
	r = LZ4F_compressEnd(c, buf, cap, NULL);
	mem_sink(out, buf, r, &err);
	double t1 = now();
	size_t in_off = 0;
	uint64_t got = 0;
	for (;;) {
		size_t src_n = out->len - in_off < (256u << 10) ? out->len - in_off : 256u << 10;
		size_t dst_n = 1u << 20; /* as the reader's: one block */
		unsigned char *dst = buf; /* cap > 1 MiB */
		size_t hint = LZ4F_decompress(d, dst, &dst_n, out->p + in_off, &src_n, NULL);
		in_off += src_n;
		got += dst_n;
		if (LZ4F_isError(hint) || hint == 0 || (src_n == 0 && dst_n == 0))
			break;
	}
	double t2 = now();
	CHECK(got == len);
	*enc = t1 - t0;
	*dec = t2 - t1;
	free(buf);
	LZ4F_freeCompressionContext(c);
	LZ4F_freeDecompressionContext(d);
	return out->len;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return v[n / 2];
}

/* Encode: MIB of page-like data (a quarter random pages, the rest
 * patterned, as a heap is) as page runs of 1 MiB written in pieces of
 * `piece` bytes into memory; decode: the file read back through the reader
 * in 256 KiB pieces. Then the same through LZ4F alone (the baseline: what
 * the format costs on top of its compressor). MB/s of data bytes, the
 * median of 5 rounds, each round running both. */
static int bench(long mib, size_t piece)
{
	struct cv_error err = { 0 };
	struct mem out = { 0 };
	uint64_t len = (uint64_t)mib << 20;
	unsigned char *src = malloc(len);
	if (!src)
		return 1;
	uint64_t x = 88172645463325252ull;
	for (uint64_t i = 0; i < len; i += 8) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		uint64_t v = (i / 4096) % 4 == 0 ? x : i / 64; /* a quarter random, the rest counting */
		memcpy(src + i, &v, 8);
	}
	/* Faulted in once, so that neither side pays the output's page faults. */
	out.cap = len + (len >> 2);
	out.p = malloc(out.cap);
	if (!out.p)
		return 1;
	memset(out.p, 0, out.cap);
	/* Rounds alternate the two so that both see the same machine; medians. */
	enum { ROUNDS = 5 };
	double sf_enc[ROUNDS], sf_dec[ROUNDS], lz_enc[ROUNDS], lz_dec[ROUNDS];
	size_t file = 0, frame = 0;
	for (int round = 0; round < ROUNDS; round++) {
		struct sf_meta meta = test_meta();
		out.len = 0;
		double t0 = now();
		struct sf_writer *w = sf_writer_create(&meta, mem_sink, &out, &err);
		int rc = w ? 0 : -1;
		for (uint64_t off = 0; rc == 0 && off < len; off += 1 << 20) {
			rc = sf_put_pages(w, 0x10000000 + off, 1 << 20, &err);
			for (uint64_t p = 0; rc == 0 && p < (1 << 20); p += piece)
				rc = sf_write_data(w, src + off + p, piece, &err);
		}
		if (rc == 0)
			rc = sf_writer_finish(w, &err);
		sf_writer_free(w);
		double t1 = now();
		struct seen s = { 0 };
		if (rc == 0)
			rc = read_mem(out.p, out.len, 256 << 10, &s, &err);
		double t2 = now();
		if (rc < 0 || s.data_bytes != len) {
			fprintf(stderr, "bench: %s\n", rc < 0 ? err.msg : "data lost");
			return 1;
		}
		file = out.len;
		sf_enc[round] = len / 1e6 / (t1 - t0);
		sf_dec[round] = len / 1e6 / (t2 - t1);
		double enc, dec;
		frame = lz4f_alone(src, len, piece, &out, &enc, &dec);
		lz_enc[round] = len / 1e6 / enc;
		lz_dec[round] = len / 1e6 / dec;
	}
	printf("{\"data_mib\":%ld,\"piece\":%zu,\"rounds\":%d,\"file_bytes\":%zu,\"encode_mb_s\":%.0f,"
	       "\"decode_mb_s\":%.0f,\"lz4f_bytes\":%zu,\"lz4f_encode_mb_s\":%.0f,\"lz4f_decode_mb_s\":%.0f}\n",
	       mib, piece, ROUNDS, file, median(sf_enc, ROUNDS), median(sf_dec, ROUNDS), frame,
	       median(lz_enc, ROUNDS), median(lz_dec, ROUNDS));
	free(src);
	free(out.p);
	return 0;
}

int unit_main(void);

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "--write") == 0)
		return write_file(argv[2]);
	if ((argc == 3 || argc == 4) && strcmp(argv[1], "--bench") == 0) {
		/* The size of each sf_write_data call: 4 KiB pages by default,
		 * a power of two up to 1 MiB. */
		long piece = argc == 4 ? atol(argv[3]) : 4096;
		if (piece < 4096 || piece > (1 << 20) || (piece & (piece - 1)))
			piece = 4096;
		return bench(atol(argv[2]) > 0 ? atol(argv[2]) : 256, (size_t)piece);
	}
	return unit_main();
}

#define main unit_main
UNIT_MAIN(test_kind_names, test_roundtrip_empty, test_roundtrip_sample_any_split,
	  test_fd_helpers_and_fields, test_many_records, test_64mib_run_streams_in_bounded_memory,
	  test_every_flipped_byte_is_refused, test_every_truncation_is_refused,
	  test_envelope_refusals_name_the_damage, test_stream_refusals_name_the_damage,
	  test_writer_refuses_misuse, test_writer_sink_failure_sticks)
