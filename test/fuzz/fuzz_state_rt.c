/* Round-trip fuzz target for the state file (state/): the input is a
 * script of writer calls (records of every kind with required and extra
 * fields, data runs written in pieces of any size), run through the
 * writer into memory; the file is then read back fed in pieces whose
 * sizes also come from the input. The reader must accept it and hand back
 * exactly the same records (kind, data length) and data bytes, and the
 * end record's counts. Must never crash or leak. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mpk.h"
#include "state/state.h"
#include "test/unit/mem_sink.h"

#define MAX_RECORDS 64

struct script {
	const uint8_t *p;
	size_t n, off;
};

static unsigned next(struct script *s)
{
	return s->off < s->n ? s->p[s->off++] : 0;
}

/* What was written, to compare with what is read. */
struct expect {
	int n;
	enum sf_kind kind[MAX_RECORDS];
	uint64_t data_len[MAX_RECORDS];
	uint32_t data_sum[MAX_RECORDS];
};

static unsigned char byte_at(uint64_t rec, uint64_t off)
{
	return (unsigned char)(off * 7 + rec * 31 + (off >> 9));
}

static void pack_required(msgpack_packer *pk, enum sf_kind k, uint64_t v)
{
	switch (k) {
	case SF_KIND_CONTAINER: mpk_pack_key(pk, "id"); mpk_pack_str(pk, "c"); break;
	case SF_KIND_TASK: mpk_pack_key(pk, "pid"); msgpack_pack_uint64(pk, v); break;
	case SF_KIND_THREAD: mpk_pack_key(pk, "tid"); msgpack_pack_uint64(pk, v); break;
	case SF_KIND_PAGES: mpk_pack_key(pk, "addr"); msgpack_pack_uint64(pk, v << 12); break;
	case SF_KIND_FD: mpk_pack_key(pk, "fd"); msgpack_pack_uint64(pk, v); break;
	case SF_KIND_PIPE: mpk_pack_key(pk, "id"); msgpack_pack_uint64(pk, v); break;
	case SF_KIND_FILE: mpk_pack_key(pk, "path"); mpk_pack_str(pk, "/tmp/f"); break;
	case SF_KIND_BLOB: mpk_pack_key(pk, "name"); mpk_pack_str(pk, "b"); break;
	case SF_KIND_MAPPING: case SF_KIND_END: case SF_KIND_COUNT: default: abort();
	}
}

static int write_script(struct script *s, struct mem *out, struct expect *e)
{
	struct cv_error err = { 0 };
	struct sf_meta meta = { .container_count = 1 };
	struct sf_writer *w = sf_writer_create(&meta, mem_sink, out, &err);
	if (!w)
		abort();
	static unsigned char buf[1 << 16];
	while (s->off < s->n && e->n < MAX_RECORDS) {
		enum sf_kind k = (enum sf_kind)(next(s) % SF_KIND_END);
		uint64_t v = next(s);
		uint64_t len = 0;
		if (k == SF_KIND_PAGES)
			len = (uint64_t)(next(s) % 8 + 1) << 12;
		else if (k == SF_KIND_BLOB)
			len = next(s) * 97 + 1;
		else if (k != SF_KIND_MAPPING && next(s) % 2)
			len = next(s) * 257;
		if (k == SF_KIND_MAPPING) {
			struct sf_mapping m = { .start = (v + 1) << 12, .end = (v + 2 + next(s)) << 12,
						.prot = next(s), .flags = next(s), .offset = v,
						.path = v % 2 ? "/lib/x" : NULL };
			if (sf_put_mapping(w, &m, &err) < 0)
				abort();
		} else {
			unsigned extra = next(s) % 4;
			msgpack_packer *pk = sf_record_begin(w, k, 1 + extra, len, &err);
			if (!pk)
				abort();
			pack_required(pk, k, v);
			for (unsigned i = 0; i < extra; i++) {
				char key[8];
				snprintf(key, sizeof(key), "x%u", i);
				mpk_pack_key(pk, key);
				unsigned bl = next(s) % 32;
				msgpack_pack_bin(pk, bl);
				msgpack_pack_bin_body(pk, buf, bl);
			}
			if (sf_record_end(w, &err) < 0)
				abort();
		}
		uint32_t sum = 0;
		for (uint64_t off = 0; off < len;) {
			size_t piece = (next(s) + 1) * 61;
			if (piece > len - off)
				piece = (size_t)(len - off);
			if (piece > sizeof(buf))
				piece = sizeof(buf);
			for (size_t i = 0; i < piece; i++) {
				buf[i] = byte_at((uint64_t)e->n, off + i);
				sum = sum * 31 + buf[i];
			}
			if (sf_write_data(w, buf, piece, &err) < 0)
				abort();
			off += piece;
		}
		e->kind[e->n] = k;
		e->data_len[e->n] = len;
		e->data_sum[e->n] = sum;
		e->n++;
	}
	if (sf_writer_finish(w, &err) < 0)
		abort();
	sf_writer_free(w);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct script s = { data, size, 0 };
	struct mem out = { 0 };
	struct expect e = { 0 };
	size_t step = 1 + (size ? data[0] : 0) * 13; /* the split of the read */
	write_script(&s, &out, &e);

	struct cv_error err = { 0 };
	struct sf_reader *r = sf_reader_create(&err);
	if (!r)
		abort();
	int got = -1, ended = 0;
	uint64_t off_in_run = 0;
	uint32_t sum = 0;
	size_t off = 0;
	for (;;) {
		size_t k = out.len - off < step ? out.len - off : step;
		struct sf_event ev;
		if (sf_reader_feed(r, out.p + off, &k, &ev, &err) < 0) {
			fprintf(stderr, "fuzz_state_rt: the reader refused the writer's file: %s\n", err.msg);
			abort();
		}
		off += k;
		if (ev.type == SF_EV_NONE && off == out.len)
			break;
		if (ev.type == SF_EV_RECORD) {
			if (got >= 0 && (off_in_run != e.data_len[got] || sum != e.data_sum[got]))
				abort(); /* the previous run came back different */
			got++;
			if (got >= e.n || ev.kind != e.kind[got] || ev.data_len != e.data_len[got])
				abort();
			off_in_run = 0;
			sum = 0;
		} else if (ev.type == SF_EV_DATA) {
			if (ev.data_off != off_in_run)
				abort();
			for (size_t i = 0; i < ev.len; i++)
				sum = sum * 31 + ((const unsigned char *)ev.data)[i];
			off_in_run += ev.len;
		} else if (ev.type == SF_EV_END) {
			if (ev.records != (uint64_t)e.n)
				abort();
			ended = 1;
		}
	}
	if (got >= 0 && (off_in_run != e.data_len[got] || sum != e.data_sum[got]))
		abort();
	if (got + 1 != e.n || !ended || sf_reader_finish(r, &err) < 0)
		abort();
	sf_reader_free(r);
	free(out.p);
	return 0;
}

#include "fuzz_replay.h"
